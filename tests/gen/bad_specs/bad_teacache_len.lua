-- expect: teacache.coefficients has 4 values; TeaCache's rescale polynomial has 5
-- (specs/tiny_df.lua with one thing changed)
return {
    variant = "bad_teacache_len",
    family  = "df",
    dit = {
        dim = 128, ffn_dim = 256, num_heads = 2, num_layers = 2,
        freq_dim = 256, text_dim = 64, text_len = 32,
        in_dim = 16, out_dim = 16, eps = 1e-6,
        inject_sample_info = true,
    },
    video   = { height = 64, width = 48, base_num_frames = 21 },
    sampler = { steps = 30, shift = 8.0, guidance = 6.0 },
    teacache = { coefficients = { 1, 2, 3, 4 }, ret_coefficients = { 1, 2, 3, 4, 5 } },
}
