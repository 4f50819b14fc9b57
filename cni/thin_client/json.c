#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Go's decoder refuses documents nested deeper than this; so does this one. */
#define MAX_DEPTH 10000

void put(struct buffer *out, const void *bytes, size_t n) {
    if (out->len + n + 1 > out->cap) {
        size_t cap = out->cap ? out->cap : 256;
        while (cap < out->len + n + 1)
            cap *= 2;
        char *grown = realloc(out->data, cap);
        if (grown == NULL) { /* a CNI message is KiBs; no memory for it is no recovering */
            fputs("netsched-cni: out of memory\n", stderr);
            exit(1);
        }
        out->data = grown;
        out->cap = cap;
    }
    memcpy(out->data + out->len, bytes, n);
    out->len += n;
    out->data[out->len] = '\0';
}

void put_str(struct buffer *out, const char *text) { put(out, text, strlen(text)); }

static void put_utf8(struct buffer *out, uint32_t rune) {
    unsigned char bytes[4];
    size_t n;
    if (rune < 0x80) {
        bytes[0] = (unsigned char)rune;
        n = 1;
    } else if (rune < 0x800) {
        bytes[0] = (unsigned char)(0xc0 | rune >> 6);
        bytes[1] = (unsigned char)(0x80 | (rune & 0x3f));
        n = 2;
    } else if (rune < 0x10000) {
        bytes[0] = (unsigned char)(0xe0 | rune >> 12);
        bytes[1] = (unsigned char)(0x80 | (rune >> 6 & 0x3f));
        bytes[2] = (unsigned char)(0x80 | (rune & 0x3f));
        n = 3;
    } else {
        bytes[0] = (unsigned char)(0xf0 | rune >> 18);
        bytes[1] = (unsigned char)(0x80 | (rune >> 12 & 0x3f));
        bytes[2] = (unsigned char)(0x80 | (rune >> 6 & 0x3f));
        bytes[3] = (unsigned char)(0x80 | (rune & 0x3f));
        n = 4;
    }
    put(out, bytes, n);
}

size_t utf8_rune(const char *p, const char *end, uint32_t *rune) {
    const unsigned char *s = (const unsigned char *)p;
    unsigned char low = 0x80, high = 0xbf; /* the second byte's range */
    uint32_t value;
    size_t n;
    if (p >= end)
        return 0;
    if (s[0] < 0x80) {
        *rune = s[0];
        return 1;
    }
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        n = 2;
        value = s[0] & 0x1f;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        n = 3;
        value = s[0] & 0x0f;
        low = s[0] == 0xe0 ? 0xa0 : 0x80; /* no overlong form */
        high = s[0] == 0xed ? 0x9f : 0xbf; /* no surrogate */
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        n = 4;
        value = s[0] & 0x07;
        low = s[0] == 0xf0 ? 0x90 : 0x80;
        high = s[0] == 0xf4 ? 0x8f : 0xbf; /* nothing past U+10FFFF */
    } else {
        return 0;
    }
    if ((size_t)(end - p) < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if (s[i] < low || s[i] > high)
            return 0;
        low = 0x80;
        high = 0xbf;
        value = value << 6 | (s[i] & 0x3f);
    }
    *rune = value;
    return n;
}

bool utf8_valid(const char *text, size_t n) {
    const char *end = text + n;
    uint32_t rune;
    for (size_t step; text < end; text += step)
        if ((step = utf8_rune(text, end, &rune)) == 0)
            return false;
    return true;
}

/* -- checking a document ------------------------------------------------------------- */

struct scanner {
    const char *p;
    const char *end;
    int depth;
};

static bool at(const struct scanner *s, char c) { return s->p < s->end && *s->p == c; }

static void skip_space(struct scanner *s) {
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static bool is_digit(const struct scanner *s) {
    return s->p < s->end && *s->p >= '0' && *s->p <= '9';
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool scan_string(struct scanner *s) {
    s->p++; /* the opening quote */
    while (s->p < s->end) {
        unsigned char c = (unsigned char)*s->p++;
        if (c == '"')
            return true;
        if (c < 0x20)
            return false;
        if (c != '\\')
            continue; /* invalid UTF-8 passes here: decoding replaces it, as Go's does */
        if (s->p >= s->end)
            return false;
        c = (unsigned char)*s->p++;
        if (c == 'u') {
            for (int i = 0; i < 4; i++)
                if (s->p >= s->end || hex_value(*s->p++) < 0)
                    return false;
        } else if (!strchr("\"\\/bfnrt", c) || c == '\0') {
            return false;
        }
    }
    return false;
}

static bool scan_number(struct scanner *s) {
    if (at(s, '-'))
        s->p++;
    if (at(s, '0')) {
        s->p++;
    } else if (is_digit(s)) {
        while (is_digit(s))
            s->p++;
    } else {
        return false;
    }
    if (at(s, '.')) {
        s->p++;
        if (!is_digit(s))
            return false;
        while (is_digit(s))
            s->p++;
    }
    if (at(s, 'e') || at(s, 'E')) {
        s->p++;
        if (at(s, '+') || at(s, '-'))
            s->p++;
        if (!is_digit(s))
            return false;
        while (is_digit(s))
            s->p++;
    }
    return true;
}

static bool scan_word(struct scanner *s, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return false;
    s->p += n;
    return true;
}

static bool scan_value(struct scanner *s);

/* Decodes the key at name (a checked string) and compares it with key. */
static bool key_is(struct span name, const char *key) {
    struct buffer decoded = {0};
    bool same = json_string(name, &decoded) && decoded.len == strlen(key) &&
                memcmp(decoded.data, key, decoded.len) == 0;
    free(decoded.data);
    return same;
}

/* One "key": value member of an object; at the top level (keys not NULL) the value of
 * each wanted key is kept. */
static bool scan_member(struct scanner *s, const char *const keys[], struct span values[],
                        size_t count) {
    struct span name = {s->p, 0}, value;
    if (!at(s, '"') || !scan_string(s))
        return false;
    name.len = (size_t)(s->p - name.start);
    skip_space(s);
    if (!at(s, ':'))
        return false;
    s->p++;
    skip_space(s);
    value.start = s->p;
    if (!scan_value(s))
        return false;
    value.len = (size_t)(s->p - value.start);
    for (size_t i = 0; keys != NULL && i < count; i++)
        if (key_is(name, keys[i]))
            values[i] = value;
    return true;
}

/* An object or an array, s->p at its '{' or '['. */
static bool scan_container(struct scanner *s, const char *const keys[], struct span values[],
                           size_t count) {
    char close = *s->p == '{' ? '}' : ']';
    if (++s->depth > MAX_DEPTH)
        return false;
    s->p++;
    skip_space(s);
    for (bool first = true;; first = false) {
        if (first && at(s, close))
            break;
        skip_space(s);
        if (!(close == '}' ? scan_member(s, keys, values, count) : scan_value(s)))
            return false;
        skip_space(s);
        if (!at(s, ','))
            break;
        s->p++;
    }
    if (!at(s, close))
        return false;
    s->p++;
    s->depth--;
    return true;
}

static bool scan_value(struct scanner *s) {
    if (s->p >= s->end)
        return false;
    switch (*s->p) {
    case '{':
    case '[':
        return scan_container(s, NULL, NULL, 0);
    case '"':
        return scan_string(s);
    case 't':
        return scan_word(s, "true");
    case 'f':
        return scan_word(s, "false");
    case 'n':
        return scan_word(s, "null");
    default:
        return scan_number(s);
    }
}

bool json_members(const char *doc, size_t n, const char *const keys[], struct span values[],
                  size_t count) {
    struct scanner s = {doc, doc + n, 0};
    for (size_t i = 0; i < count; i++)
        values[i] = (struct span){NULL, 0};
    skip_space(&s);
    if (!at(&s, '{') || !scan_container(&s, keys, values, count))
        return false;
    skip_space(&s);
    return s.p == s.end;
}

/* -- reading values ------------------------------------------------------------------ */

static long u4(const char *p, const char *end) {
    long value = 0;
    if (end - p < 6 || p[0] != '\\' || p[1] != 'u')
        return -1;
    for (int i = 2; i < 6; i++) {
        int digit = hex_value(p[i]);
        if (digit < 0)
            return -1;
        value = value << 4 | digit;
    }
    return value;
}

bool json_string(struct span value, struct buffer *out) {
    if (value.start == NULL || value.len < 2 || value.start[0] != '"')
        return false;
    const char *p = value.start + 1, *end = value.start + value.len - 1;
    put(out, "", 0); /* an empty string is data too */
    while (p < end) {
        uint32_t rune;
        size_t n;
        if (*p != '\\') {
            n = utf8_rune(p, end, &rune);
            if (n == 0) { /* invalid UTF-8: U+FFFD for the byte, as Go's decoder does */
                put_utf8(out, 0xfffd);
                p++;
            } else {
                put(out, p, n);
                p += n;
            }
            continue;
        }
        char escaped = p[1];
        const char *plain = strchr("\"\\/bfnrt", escaped);
        if (escaped != 'u') {
            put(out, &"\"\\/\b\f\n\r\t"[plain - "\"\\/bfnrt"], 1);
            p += 2;
            continue;
        }
        long unit = u4(p, end);
        p += 6;
        if (unit >= 0xd800 && unit < 0xdc00) { /* a high surrogate: its pair follows, or U+FFFD */
            long low = u4(p, end);
            if (low >= 0xdc00 && low < 0xe000) {
                put_utf8(out, (uint32_t)(0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00)));
                p += 6;
                continue;
            }
            unit = 0xfffd;
        } else if (unit >= 0xdc00 && unit < 0xe000) {
            unit = 0xfffd;
        }
        put_utf8(out, (uint32_t)unit);
    }
    return true;
}

bool json_int(struct span value, long long *out) {
    const char *p = value.start, *end = value.start + value.len;
    unsigned long long magnitude = 0;
    bool negative = p != NULL && p < end && *p == '-';
    if (p == NULL)
        return false;
    p += negative;
    if (p == end)
        return false;
    for (; p < end; p++) { /* a checked number: digits, then '.', 'e' or 'E' if any */
        if (*p < '0' || *p > '9')
            return false;
        unsigned long long limit = negative ? 9223372036854775808ULL : 9223372036854775807ULL;
        unsigned digit = (unsigned)(*p - '0');
        if (magnitude > (limit - digit) / 10)
            return false;
        magnitude = magnitude * 10 + digit;
    }
    *out = negative ? (long long)(0 - magnitude) : (long long)magnitude;
    return true;
}

/* -- writing ------------------------------------------------------------------------- */

void put_json_string(struct buffer *out, const char *text, size_t n) {
    static const char hex[] = "0123456789abcdef";
    const char *end = text + n;
    put(out, "\"", 1);
    while (text < end) {
        unsigned char c = (unsigned char)*text;
        uint32_t rune;
        size_t step;
        if (c == '"' || c == '\\') {
            char pair[2] = {'\\', (char)c};
            put(out, pair, 2);
            text++;
        } else if (c < 0x20) {
            const char *short_form = c == '\b' ? "\\b" : c == '\f' ? "\\f" : c == '\n' ? "\\n"
                                   : c == '\r' ? "\\r" : c == '\t' ? "\\t" : NULL;
            char unicode[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xf]};
            if (short_form)
                put_str(out, short_form);
            else
                put(out, unicode, 6);
            text++;
        } else if ((step = utf8_rune(text, end, &rune)) == 0) {
            put_str(out, "\\ufffd");
            text++;
        } else if (rune == 0x2028 || rune == 0x2029) { /* line breaks to JavaScript */
            put_str(out, rune == 0x2028 ? "\\u2028" : "\\u2029");
            text += step;
        } else {
            put(out, text, step);
            text += step;
        }
    }
    put(out, "\"", 1);
}
