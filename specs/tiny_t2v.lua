-- specs/tiny_t2v.lua — a tiny random-weight Text-to-Video DiT for CI numerics and golden tests.
-- Same structure as the released models, small sizes: 2 heads of 64, 2 blocks, 8x8 latent.
-- The fixtures in tests/fixtures/dit/tiny_t2v/ were made by diffusers with this configuration.
return {
    variant = "tiny_t2v",
    family  = "t2v",
    dit = {
        dim = 128, ffn_dim = 256, num_heads = 2, num_layers = 2,
        freq_dim = 256, text_dim = 64, text_len = 32,
        in_dim = 16, out_dim = 16, eps = 1e-6,
        inject_sample_info = false,
    },
    vae = {                                   -- the Wan VAE structure with base_dim 8 (tiny)
        base_dim = 8, z_dim = 16, dim_mult = { 1, 2, 4, 4 }, num_res_blocks = 2,
        temporal_downsample = { false, true, true },
    },
    t5 = {                                    -- a tiny umT5 (the tokenizer tests/fixtures/tokenizer/tiny_umt5.model has 2000 pieces)
        vocab = 2000, dim = 64, heads = 4, head_dim = 16, ffn_dim = 96, layers = 2,
        buckets = 32, max_distance = 128, eps = 1e-6,
    },
    video   = { height = 64, width = 64, base_num_frames = 17 },
    sampler = { steps = 30, shift = 8.0, guidance = 6.0 },
    -- TeaCache rescale polynomials, highest power first (reference dit-and-sampling.md §8):
    -- coefficients: the original's row for a model directory matching "not I2V + 1.3B"; ret_coefficients: the
    -- row for "I2V + 720P" (on this random model the 1.3B row is negative wherever its distances fall, so every
    -- call would skip; tests/fixtures/make_teacache_fixtures.py ran the original with these rows).
    teacache = {
        coefficients     = { 2.39676752e+03, -1.31110545e+03, 2.01331979e+02, -8.29855975e+00, 1.37887774e-01 },   -- measures e
        ret_coefficients = { 8.10705460e+03, 2.13393892e+03, -3.72934672e+02, 1.66203073e+01, -4.17769401e-02 },   -- measures e0 (--use_ret_steps)
    },
}
