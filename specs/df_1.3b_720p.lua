-- specs/df_1.3b_720p.lua — SkyReels-V2 Diffusion Forcing 1.3B, 720P (Skywork/SkyReels-V2-DF-1.3B-720P).
-- CHECKPOINT UNCONFIRMED: the name appears only as a model_id in the diffusers docs' FLF2V and V2V
-- examples ("Skywork/SkyReels-V2-DF-1.3B-720P-Diffusers"); no checkpoint list names it and no config
-- was found (shared/reference/round2-features.md §3.7). The model sections are those of
-- df_1.3b_540p.lua (its presumed config); the video size is the 14B-720P DF one (df_14b_720p.lua).
-- Fields are explained in specs/README.md.
return {
    variant = "df_1.3b_720p",
    family  = "df",
    dit = {
        dim = 1536, ffn_dim = 8960, num_heads = 12, num_layers = 30,
        freq_dim = 256, text_dim = 4096, text_len = 512,
        in_dim = 16, out_dim = 16, eps = 1e-6,
        inject_sample_info = true,
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
    -- the original's row for a model directory matching "not I2V + 1.3B" (its name matches it; the row
    -- was fitted on the 540P model).
    teacache = {
        coefficients     = { 2.39676752e+03, -1.31110545e+03, 2.01331979e+02, -8.29855975e+00, 1.37887774e-01 },   -- measures e
        ret_coefficients = { -5.21862437e+04, 9.23041404e+03, -5.28275948e+02, 1.36987616e+01, -4.99875664e-02 },   -- measures e0 (--use_ret_steps)
    },
}
