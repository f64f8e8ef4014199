-- specs/tiny_usp.lua — a tiny random-weight Diffusion Forcing DiT for the --use_usp tests (tests/runtime/test_usp.sh):
-- 12 heads of 16 (as 1.3B's 12 heads: 2, 3, 4, 6 and 12 ranks divide them) and a latent of 6x2, 3 tokens per
-- frame, so that 2 and 4 ranks pad the tokens of an odd frame count (the padding rows must not change the
-- result). Windows of up to 9 latent frames, as tiny_df (a long video of several windows, async).
return {
    variant = "tiny_usp",
    family  = "df",
    dit = {
        dim = 192, ffn_dim = 256, num_heads = 12, num_layers = 2,
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
    video   = { height = 48, width = 16, base_num_frames = 33 },
    sampler = { steps = 30, shift = 8.0, guidance = 6.0 },
}
