/* runtime/text/unicode.h — the Unicode algorithms and properties the text module needs, on code points:
 * White_Space, Nd, NFC and extended grapheme clusters (internal to runtime/text/; the API is text.h).
 *
 * The data are generated tables (unicode_tables.inc, made by make_unicode_tables.py) from the modules the
 * reference runs: NFC from Python 3.11's unicodedata (Unicode 14.0.0), as ftfy's normalisation step does;
 * White_Space and the grapheme classes from the `regex` module. docs/text.md says why these tables and
 * not a Unicode library.
 */
#ifndef SKY_TEXT_UNICODE_H
#define SKY_TEXT_UNICODE_H

#include <stddef.h>
#include <stdint.h>

#include "text/utf8.h"

/* Is c inside one of the n sorted, disjoint [lo, hi] ranges r? (Binary search.) */
int sky_unicode_in_ranges(const uint32_t (*r)[2], size_t n, uint32_t c);

/* Unicode White_Space: regex's \s, Rust's char::is_whitespace. */
int sky_unicode_is_white_space(uint32_t c);

/* Python's str.isspace(): White_Space plus U+001C..U+001F. */
int sky_unicode_is_py_space(uint32_t c);

/* Python re's \d on str: General_Category Nd. */
int sky_unicode_is_decimal_digit(uint32_t c);

/* s = NFC(s), as Python 3.11's unicodedata.normalize("NFC"); tmp is scratch. Sets s->oom when memory
 * runs out. */
void sky_unicode_nfc(sky_cpbuf *s, sky_cpbuf *tmp);

/* End (exclusive) of the extended grapheme cluster of s[0..n) that starts at i < n (UAX #29 GB3..GB13;
 * GB9c, the Indic conjunct rule, is left out: it only joins clusters of 6 bytes or more, which the
 * charsmap normaliser takes code point by code point either way). */
size_t sky_unicode_grapheme_end(const uint32_t *s, size_t n, size_t i);

#endif /* SKY_TEXT_UNICODE_H */
