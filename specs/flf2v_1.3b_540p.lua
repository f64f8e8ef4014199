-- specs/flf2v_1.3b_540p.lua — SkyReels-V2 first-last-frame to video 1.3B, 540P
-- (Skywork/SkyReels-V2-FLF2V-1.3B-540P-Diffusers). Sizes: the diffusers converter's config for it
-- (shared/reference/round2-features.md §3.1: the I2V-1.3B network, in_channels 36, image_dim 1280,
-- pos_embed_seq_len 514); the uploaded config.json itself was not readable (unconfirmed beyond the script).
-- The original SkyReels-V2 has no FLF2V model; the converter builds it from the I2V-1.3B-540P weights
-- with a position embedding it fills with zeros (§3.1). Fields are explained in specs/README.md.
return {
    variant = "flf2v_1.3b_540p",
    family  = "i2v",
    dit = {
        dim = 1536, ffn_dim = 8960, num_heads = 12, num_layers = 30,
        freq_dim = 256, text_dim = 4096, text_len = 512,
        in_dim = 36, out_dim = 16, eps = 1e-6,
        inject_sample_info = false,
        image_dim = 1280, image_len = 257, pos_embed_seq_len = 514,   -- 2 x 257: first and last image
    },
    vae = {                                   -- Wan2.1 VAE (reference vae-text-image-files.md §1)
        base_dim = 96, z_dim = 16, dim_mult = { 1, 2, 4, 4 }, num_res_blocks = 2,
        temporal_downsample = { false, true, true },
    },
    t5 = {                                    -- umT5-XXL encoder (reference vae-text-image-files.md §2.1)
        vocab = 256384, dim = 4096, heads = 64, head_dim = 64, ffn_dim = 10240, layers = 24,
        buckets = 32, max_distance = 128, eps = 1e-6,
    },
    clip = {                                  -- CLIP ViT-H/14 visual tower, 31 of 32 blocks (§3.1)
        image_size = 224, patch = 14, dim = 1280, heads = 16, ffn_dim = 5120, layers = 32, use_layers = 31,
        eps = 1e-5,
    },
    video   = { height = 544, width = 960, base_num_frames = 97 },
    sampler = { steps = 30, shift = 8.0, guidance = 6.0 },
    -- TeaCache rescale polynomials, highest power first (reference dit-and-sampling.md §8):
    -- the original's row for "I2V + 540P" (the original has no FLF2V model and so no row of its own; this is
    -- the row of the I2V-1.3B weights the converter builds it from).
    teacache = {
        coefficients     = { -3.02331670e+02, 2.23948934e+02, -5.25463970e+01, 5.87348440e+00, -2.01973289e-01 },   -- measures e
        ret_coefficients = { 2.57151496e+05, -3.54229917e+04, 1.40286849e+03, -1.35890334e+01, 1.32517977e-01 },   -- measures e0 (--use_ret_steps)
    },
}
