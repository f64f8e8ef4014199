-- specs/df_14b_720p.lua — SkyReels-V2 Diffusion Forcing 14B, 720P (Skywork/SkyReels-V2-DF-14B-720P).
-- Sizes: shared/reference/dit-and-sampling.md §1 (and the checkpoint's config.json).
-- Fields are explained in specs/README.md.
return {
    variant = "df_14b_720p",
    family  = "df",
    dit = {
        dim = 5120, ffn_dim = 13824, num_heads = 40, num_layers = 40,
        freq_dim = 256, text_dim = 4096, text_len = 512,
        in_dim = 16, out_dim = 16, eps = 1e-6,
        inject_sample_info = false,
    },
    vae = {                                   -- Wan2.1 VAE (reference vae-text-image-files.md §1)
        base_dim = 96, z_dim = 16, dim_mult = { 1, 2, 4, 4 }, num_res_blocks = 2,
        temporal_downsample = { false, true, true },
    },
    t5 = {                                    -- umT5-XXL encoder (reference vae-text-image-files.md §2.1)
        vocab = 256384, dim = 4096, heads = 64, head_dim = 64, ffn_dim = 10240, layers = 24,
        buckets = 32, max_distance = 128, eps = 1e-6,
    },
    video   = { height = 720, width = 1280, base_num_frames = 121 },
    sampler = { steps = 30, shift = 8.0, guidance = 6.0 },
    -- TeaCache rescale polynomials, highest power first (reference dit-and-sampling.md §8):
    -- the original's row for a model directory matching "not I2V + 14B".
    teacache = {
        coefficients     = { -5784.54975374, 5449.50911966, -1811.16591783, 256.27178429, -13.02252404 },   -- measures e
        ret_coefficients = { -3.03318725e+05, 4.90537029e+04, -2.65530556e+03, 5.87365115e+01, -3.15583525e-01 },   -- measures e0 (--use_ret_steps)
    },
}
