-- specs/tiny_df.lua — a tiny random-weight Diffusion Forcing DiT with the fps embedding
-- (inject_sample_info, as DF-1.3B-540P), per-frame timesteps, latent 8x6, windows of up to 9 latent
-- frames (room for an asynchronous long video of 3-frame blocks in the pipeline tests).
return {
    variant = "tiny_df",
    family  = "df",
    dit = {
        dim = 128, ffn_dim = 256, num_heads = 2, num_layers = 2,
        freq_dim = 256, text_dim = 64, text_len = 32,
        in_dim = 16, out_dim = 16, eps = 1e-6,
        inject_sample_info = true,
    },
    vae = {                                   -- the Wan VAE structure with base_dim 8 (tiny)
        base_dim = 8, z_dim = 16, dim_mult = { 1, 2, 4, 4 }, num_res_blocks = 2,
        temporal_downsample = { false, true, true },
    },
    t5 = {                                    -- a tiny umT5 (the tokenizer tests/fixtures/tokenizer/tiny_umt5.model has 2000 pieces)
        vocab = 2000, dim = 64, heads = 4, head_dim = 16, ffn_dim = 96, layers = 2,
        buckets = 32, max_distance = 128, eps = 1e-6,
    },
    video   = { height = 64, width = 48, base_num_frames = 33 },
    sampler = { steps = 30, shift = 8.0, guidance = 6.0 },
    -- TeaCache rescale polynomials, highest power first (reference dit-and-sampling.md §8):
    -- the original's row for a model directory matching "not I2V + 1.3B" (the row the TeaCache fixture ran the original with).
    teacache = {
        coefficients     = { 2.39676752e+03, -1.31110545e+03, 2.01331979e+02, -8.29855975e+00, 1.37887774e-01 },   -- measures e
        ret_coefficients = { -5.21862437e+04, 9.23041404e+03, -5.28275948e+02, 1.36987616e+01, -4.99875664e-02 },   -- measures e0 (--use_ret_steps)
    },
}
