-- specs/tiny_i2v128.lua — a tiny Image-to-Video DiT with the released models' head dim (128), so the
-- CUDA backend's image branch (image embedder, the second cross-attention over the image tokens, the
-- 36-channel patch embedding) can be compared with diffusers on a small model (tests/emu/run.sh,
-- tests/fixtures/cuda/). 2 heads of 128, 2 blocks, latent 6x8; the text length stays 512 (diffusers
-- splits image and text context at ctx_len - 512). DiT only: no VAE or encoders.
return {
    variant = "tiny_i2v128",
    family  = "i2v",
    dit = {
        dim = 256, ffn_dim = 512, num_heads = 2, num_layers = 2,
        freq_dim = 256, text_dim = 64, text_len = 512,
        in_dim = 36, out_dim = 16, eps = 1e-6,
        inject_sample_info = false,
        image_dim = 32, image_len = 5,
    },
    video   = { height = 48, width = 64, base_num_frames = 9 },
    sampler = { steps = 30, shift = 8.0, guidance = 6.0 },
    -- TeaCache rescale polynomials, highest power first (reference dit-and-sampling.md §8):
    -- the original's row for a model directory matching "I2V + 540P" (the row the TeaCache fixture ran the original with).
    teacache = {
        coefficients     = { -3.02331670e+02, 2.23948934e+02, -5.25463970e+01, 5.87348440e+00, -2.01973289e-01 },   -- measures e
        ret_coefficients = { 2.57151496e+05, -3.54229917e+04, 1.40286849e+03, -1.35890334e+01, 1.32517977e-01 },   -- measures e0 (--use_ret_steps)
    },
}
