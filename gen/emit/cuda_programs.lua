-- gen/emit/cuda_programs.lua
-- ===========================
-- The CUDA emitter of each program that has one (emit/cuda.lua is their shared skeleton): main.lua emits each
-- program's CUDA files with it, emit/variant.lua asks it for the device bytes of the program's weights, blocks and
-- fp8 codes.
return {
    dit_forward = require("emit.cuda_dit"),
    dit_forward_usp = require("emit.cuda_dit"),
    vae_decode = require("emit.cuda_vae"),
    vae_decode_tile = require("emit.cuda_vae"),
    vae_encode = require("emit.cuda_vae"),
    vae_encode_tile = require("emit.cuda_vae"),
    text_encode = require("emit.cuda_enc"),
    clip_encode = require("emit.cuda_enc"),
}
