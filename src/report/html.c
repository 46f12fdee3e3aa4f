#include "report/html.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char REPLACEMENT[] = "\xEF\xBF\xBD"; /* U+FFFD */

/* Length of the valid UTF-8 sequence at s (1 to 4), or 0 when it is not one. */
static size_t utf8_len(const unsigned char *s) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t n;
    unsigned min;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2, min = 0x80, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3, min = 0x800, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4, min = 0x10000, cp = c & 0x07;
    else
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    /* U+FFFE and U+FFFF are not XML characters. */
    if (cp == 0xFFFE || cp == 0xFFFF) return 0;
    return n;
}

void po__html_text(FILE *f, const char *s) {
    if (!s) return;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p;
        switch (c) {
        case '&':
            fputs("&amp;", f);
            p++;
            continue;
        case '<':
            fputs("&lt;", f);
            p++;
            continue;
        case '>':
            fputs("&gt;", f);
            p++;
            continue;
        case '"':
            fputs("&quot;", f);
            p++;
            continue;
        case '\'':
            fputs("&#39;", f);
            p++;
            continue;
        default: break;
        }
        if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
            fputs(REPLACEMENT, f);
            p++;
            continue;
        }
        size_t n = utf8_len(p);
        if (!n) {
            fputs(REPLACEMENT, f);
            p++;
            continue;
        }
        fwrite(p, 1, n, f);
        p += n;
    }
}

void po__html_textf(FILE *f, const char *fmt, ...) {
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof small) {
        po__html_text(f, small);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        po__html_text(f, small); /* truncated rather than nothing */
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    po__html_text(f, big);
    free(big);
}

const char *po__fmt_num(char *buf, size_t size, double v, int digits) {
    if (!isfinite(v)) {
        snprintf(buf, size, "n/a");
        return buf;
    }
    double a = fabs(v);
    if (a == 0.0 || (a >= 1e-4 && a < 1e9)) {
        /* Fixed notation with `digits` significant digits, then drop trailing zeros. */
        int mag = a == 0.0 ? 0 : (int)floor(log10(a));
        int dec = digits - 1 - mag;
        if (dec < 0) dec = 0;
        snprintf(buf, size, "%.*f", dec, v);
        if (strchr(buf, '.')) {
            char *e = buf + strlen(buf) - 1;
            while (*e == '0')
                *e-- = '\0';
            if (*e == '.') *e = '\0';
        }
        if (strcmp(buf, "-0") == 0) snprintf(buf, size, "0");
    } else {
        snprintf(buf, size, "%.*g", digits, v);
    }
    return buf;
}
