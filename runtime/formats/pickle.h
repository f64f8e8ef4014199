/* runtime/formats/pickle.h — the restricted unpickler of a torch.save archive's data.pkl, for pth.c.
 *
 * It runs the pickle as a stack machine that only builds values and refuses everything a state dict
 * does not need (the rules are pth.h's; format: reference vae-text-image-files.md §5.2): opcodes of
 * protocol 2 plus protocol 4's framing, short-string and memo opcodes; GLOBALs only from an allow-list
 * (the table ALLOWED in pickle.c); REDUCE and BUILD only on those. Persistent ids must name a storage
 * record "<prefix>/data/<key>" of the archive holding exactly numel x element size bytes, one dtype per
 * record. Caps below keep memory within a small multiple of the pickle's size. Every error message
 * starts with the archive's path and names the data.pkl byte and the opcode.
 */
#ifndef SKY_PICKLE_H
#define SKY_PICKLE_H

#include "core/status.h"
#include "formats/zip.h"

/* Limits on what the pickle may ask for (real state dict pickles are well below). */
#define SKY_PICKLE_MAX_VALUES (1 << 21)         /* values the pickle builds (~20 per tensor) */
#define SKY_PICKLE_MAX_STACK  (1 << 20)         /* values on the pickle stack */
#define SKY_PICKLE_MAX_MARKS  64                /* nested MARKs */
#define SKY_PICKLE_MAX_MEMO   (1 << 20)         /* memo entries */
#define SKY_PICKLE_MAX_STRING ((size_t)1 << 20) /* bytes of one string */

/* An allow-listed global (opaque: pickle.c's table). */
typedef struct sky_pickle_global sky_pickle_global;

/* The values the machine builds. */
typedef enum sky_pickle_kind {
    SKY_PICKLE_NONE,
    SKY_PICKLE_BOOL,
    SKY_PICKLE_INT,
    SKY_PICKLE_FLOAT,
    SKY_PICKLE_STR,
    SKY_PICKLE_TUPLE,
    SKY_PICKLE_LIST,
    SKY_PICKLE_DICT,
    SKY_PICKLE_GLOBAL,
    SKY_PICKLE_STORAGE,
    SKY_PICKLE_TENSOR
} sky_pickle_kind;

typedef struct sky_pickle_val sky_pickle_val;
struct sky_pickle_val {
    sky_pickle_kind kind;
    union {
        int64_t i; /* BOOL (0/1), INT */
        double  f; /* FLOAT */
        struct {
            const char *s;
            size_t      len;
        } str; /* STR: into data.pkl, not NUL-terminated */
        struct {
            sky_pickle_val **v;
            size_t           n, cap;
        } seq;                      /* TUPLE, LIST; DICT: v[2k] key, v[2k+1] value */
        const sky_pickle_global *g; /* GLOBAL */
        struct {
            const sky_zip_entry *rec; /* "<prefix>/data/<key>" */
            sky_dtype            dtype;
        } sto; /* STORAGE */
        struct {
            sky_pickle_val *storage, *offset, *size, *stride; /* checked kinds: STORAGE, INT, TUPLE, TUPLE */
            sky_dtype       dtype;
        } ten; /* TENSOR */
    } u;
};
/* "None", "bool", ... for messages. */
const char *sky_pickle_kind_name(sky_pickle_kind k);

/* Copy n bytes of s into out (cap bytes) for a message: at most 120, non-printable bytes as '?';
 * returns out. */
const char *sky_pickle_shown(char *out, size_t cap, const char *s, size_t n);

/* The machine; it owns every value it built. */
typedef struct sky_pickle sky_pickle;

/* Run the n bytes of data.pkl at p to its STOP and set *root to the one value it leaves. z is the
 * archive, whose records all lie under prefix (prefix_len bytes, the '/' included); path names it in
 * messages. *out is set also on failure (NULL when out of memory): free it with sky_pickle_free, which
 * frees every value, so use *root before that. */
sky_status sky_pickle_run(sky_pickle **out, const sky_pickle_val **root, const unsigned char *p, size_t n,
                          const sky_zip *z, const char *prefix, size_t prefix_len, const char *path, sky_err *err);

/* Free the machine and every value it built. NULL is fine. */
void sky_pickle_free(sky_pickle *m);

#endif /* SKY_PICKLE_H */
