// runtime/text/spm_shim.cc — plain-C wrapper over sentencepiece::SentencePieceProcessor (spm_shim.h).
// Every entry point is noexcept towards C: exceptions (std::bad_alloc, anything the library throws)
// become a message or a neutral answer. Build: g++ -std=c++17 -c runtime/text/spm_shim.cc; link
// -lsentencepiece -lstdc++.
#include "text/spm_shim.h"

#include <sentencepiece_processor.h>

#include <cstdio>
#include <exception>
#include <string>
#include <string_view>

struct sky_spm {
    sentencepiece::SentencePieceProcessor proc;
};

namespace {

// Copy a message into a caller's buffer, always NUL-terminated.
void put_msg(char *msg, size_t size, const std::string &text)
{
    if (msg == nullptr || size == 0) return;
    std::snprintf(msg, size, "%s", text.c_str());
}

} // namespace

extern "C" sky_spm *sky_spm_load(const void *proto, size_t len, char *msg, size_t msg_size)
{
    sky_spm *s = nullptr;
    try {
        s = new sky_spm();
        const auto status = s->proc.LoadFromSerializedProto(std::string_view(static_cast<const char *>(proto), len));
        if (status.ok()) return s;
        put_msg(msg, msg_size, "sentencepiece rejected the model: " + status.ToString());
    } catch (const std::exception &e) {
        put_msg(msg, msg_size, std::string("sentencepiece: ") + e.what());
    } catch (...) {
        put_msg(msg, msg_size, "sentencepiece: unknown C++ exception while loading the model");
    }
    delete s;
    return nullptr;
}

extern "C" int sky_spm_piece_size(const sky_spm *s)
{
    try {
        return s->proc.GetPieceSize();
    } catch (...) {
        return 0;
    }
}

extern "C" const char *sky_spm_piece(const sky_spm *s, int id, size_t *len)
{
    try {
        if (id < 0 || id >= s->proc.GetPieceSize()) return nullptr;
        const std::string &p = s->proc.IdToPiece(id); // a reference into the loaded model
        *len = p.size();
        return p.data();
    } catch (...) {
        return nullptr;
    }
}

extern "C" float sky_spm_score(const sky_spm *s, int id)
{
    try {
        if (id < 0 || id >= s->proc.GetPieceSize()) return 0.0f;
        return s->proc.GetScore(id);
    } catch (...) {
        return 0.0f;
    }
}

extern "C" void sky_spm_free(sky_spm *s)
{
    delete s; // ~SentencePieceProcessor does not throw
}
