-- expect: cuda.attention90 = "sm90_s4" must be one of sm90_fa3, sm90_inc, sm90_kpre, sm90_n176, sm90_s2, sm90_s3
-- (specs/tiny_df128.lua with one thing changed: a Hopper attention schedule gen/schedule_sm90.lua does not have)
return {
    variant = "bad_attention90",
    family  = "df",
    dit = {
        dim = 256, ffn_dim = 512, num_heads = 2, num_layers = 2,
        freq_dim = 256, text_dim = 64, text_len = 32,
        in_dim = 16, out_dim = 16, eps = 1e-6,
        inject_sample_info = true,
    },
    cuda    = { attention90 = "sm90_s4" },
    video   = { height = 64, width = 48, base_num_frames = 21 },
    sampler = { steps = 30, shift = 8.0, guidance = 6.0 },
}
