-- specs/tiny_flf2v.lua — a tiny random-weight first-last-frame (FLF2V) DiT: tiny_i2v plus the learned position
-- embedding over the first and the last image's CLIP tokens (2 x 5), as specs/flf2v_1.3b_540p.lua.
-- The text length stays 512: diffusers splits image and text context as ctx_len - 512.
-- The latent is 6x8 (not square) so that a height/width mix-up shows in the numerics.
return {
    variant = "tiny_flf2v",
    family  = "i2v",
    dit = {
        dim = 128, ffn_dim = 256, num_heads = 2, num_layers = 2,
        freq_dim = 256, text_dim = 64, text_len = 512,
        in_dim = 36, out_dim = 16, eps = 1e-6,
        inject_sample_info = false,
        image_dim = 32, image_len = 5, pos_embed_seq_len = 10,
    },
    vae = {                                   -- the Wan VAE structure with base_dim 8 (tiny)
        base_dim = 8, z_dim = 16, dim_mult = { 1, 2, 4, 4 }, num_res_blocks = 2,
        temporal_downsample = { false, true, true },
    },
    t5 = {                                    -- a tiny umT5 (the tokenizer tests/fixtures/tokenizer/tiny_umt5.model has 2000 pieces)
        vocab = 2000, dim = 64, heads = 4, head_dim = 16, ffn_dim = 96, layers = 2,
        buckets = 32, max_distance = 128, eps = 1e-6,
    },
    clip = {                                  -- a tiny ViT: 28 x 28 pixels, 4 patches + class = 9 tokens
        image_size = 28, patch = 14, dim = 32, heads = 2, ffn_dim = 64, layers = 2, use_layers = 1, eps = 1e-5,
    },
    video   = { height = 48, width = 64, base_num_frames = 9 },
    sampler = { steps = 30, shift = 8.0, guidance = 6.0 },
    -- TeaCache rescale polynomials, highest power first (reference dit-and-sampling.md §8):
    -- the I2V + 540P row, as specs/flf2v_1.3b_540p.lua.
    teacache = {
        coefficients     = { -3.02331670e+02, 2.23948934e+02, -5.25463970e+01, 5.87348440e+00, -2.01973289e-01 },   -- measures e
        ret_coefficients = { 2.57151496e+05, -3.54229917e+04, 1.40286849e+03, -1.35890334e+01, 1.32517977e-01 },   -- measures e0 (--use_ret_steps)
    },
}
