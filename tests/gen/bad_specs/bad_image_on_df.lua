-- expect: dit.image_dim, dit.image_len and dit.pos_embed_seq_len are only for family i2v (family is df)
-- (specs/tiny_df.lua with one thing changed)
return {
    variant = "bad_image_on_df",
    family  = "df",
    dit = {
        dim = 128, ffn_dim = 256, num_heads = 2, num_layers = 2,
        freq_dim = 256, text_dim = 64, text_len = 32,
        in_dim = 16, out_dim = 16, eps = 1e-6,
        inject_sample_info = true, image_dim = 32, image_len = 9,
    },
    video   = { height = 64, width = 48, base_num_frames = 21 },
    sampler = { steps = 30, shift = 8.0, guidance = 6.0 },
}
