-- expect: dit.pos_embed_seq_len = 9 must be 2 * dit.image_len = 10 (the first and the last image's CLIP tokens, FLF2V)
-- (specs/tiny_flf2v.lua with one thing changed)
return {
    variant = "bad_pos_embed_len",
    family  = "i2v",
    dit = {
        dim = 128, ffn_dim = 256, num_heads = 2, num_layers = 2,
        freq_dim = 256, text_dim = 64, text_len = 512,
        in_dim = 36, out_dim = 16, eps = 1e-6,
        inject_sample_info = false,
        image_dim = 32, image_len = 5, pos_embed_seq_len = 9,
    },
    video   = { height = 48, width = 64, base_num_frames = 9 },
    sampler = { steps = 30, shift = 8.0, guidance = 6.0 },
}
