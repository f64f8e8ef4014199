-- expect: vae.z_dim = 8 must equal dit.out_dim = 16
-- expect: vae.latents_mean is required when vae.z_dim is not 16
-- (specs/tiny_df.lua with one thing changed)
return {
    variant = "bad_vae_z_dim",
    family  = "df",
    dit = {
        dim = 128, ffn_dim = 256, num_heads = 2, num_layers = 2,
        freq_dim = 256, text_dim = 64, text_len = 32,
        in_dim = 16, out_dim = 16, eps = 1e-6,
        inject_sample_info = true,
    },
    vae = {                                   -- the Wan VAE structure with base_dim 8 (tiny)
        base_dim = 8, z_dim = 8, dim_mult = { 1, 2, 4, 4 }, num_res_blocks = 2,
        temporal_downsample = { false, true, true },
    },
    video   = { height = 64, width = 48, base_num_frames = 21 },
    sampler = { steps = 30, shift = 8.0, guidance = 6.0 },
}
