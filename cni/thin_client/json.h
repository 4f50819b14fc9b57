/* The little JSON the thin client needs: check a document, find a top-level object's
 * members, read a string or an integer member, and write a string. RFC 8259 as Go's
 * encoding/json reads it (the client this one replaced): nothing more lenient. */
#ifndef NETSCHED_CNI_JSON_H
#define NETSCHED_CNI_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A growable byte string, always NUL-terminated after its len bytes. */
struct buffer {
    char *data;
    size_t len;
    size_t cap;
};

void put(struct buffer *out, const void *bytes, size_t n);
void put_str(struct buffer *out, const char *text);

/* A member's value as it stands in the document; start is NULL when the key is absent. */
struct span {
    const char *start;
    size_t len;
};

/* The length of the valid UTF-8 sequence at p (Go's utf8 rules: no overlong forms, no
 * surrogates, nothing past U+10FFFF) with its code point in *rune, or 0 if invalid. */
size_t utf8_rune(const char *p, const char *end, uint32_t *rune);
bool utf8_valid(const char *text, size_t n);

/* True when doc is one JSON object; values[i] is then keys[i]'s value (the last one when
 * a key repeats, as a decoder into a map keeps it). */
bool json_members(const char *doc, size_t n, const char *const keys[], struct span values[],
                  size_t count);

/* The value decoded into out when it is a JSON string (null is not one). */
bool json_string(struct span value, struct buffer *out);

/* The value when it is a JSON integer that fits 64 bits (no fraction, no exponent). */
bool json_int(struct span value, long long *out);

/* text as a JSON string, quotes included: escaped as Go's encoder escapes (without its
 * HTML escaping); each byte of invalid UTF-8 becomes U+FFFD. */
void put_json_string(struct buffer *out, const char *text, size_t n);

#endif
