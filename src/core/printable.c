#include "core/printable.h"

#include <stdio.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at p, or 0. Loose about overlong forms: the aim is only
 * to keep messages printable, and the JSON parser has already validated names and strings. */
static size_t utf8_len(const unsigned char *p) {
    size_t n = *p >= 0xC2 && *p <= 0xDF ? 2 : *p >= 0xE0 && *p <= 0xEF ? 3 : *p >= 0xF0 && *p <= 0xF4 ? 4 : 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xC0) != 0x80) return 0;
    return n;
}

const char *po__printable(const char *s, char *buf, size_t size, size_t max_len) {
    const size_t limit = size < max_len ? size : max_len;
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        if (o + 4 + sizeof "..." > limit) {
            memcpy(buf + o, "...", sizeof "...");
            return buf;
        }
        size_t n = *p < 0x80 ? 1 : utf8_len(p);
        if (*p < 0x20 || *p == 0x7F || n == 0) {
            snprintf(buf + o, size - o, "\\x%02x", *p);
            o += 4;
            p++;
        } else {
            memcpy(buf + o, p, n);
            o += n;
            p += n;
        }
    }
    buf[o] = '\0';
    return buf;
}
