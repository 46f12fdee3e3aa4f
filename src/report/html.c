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

/* No '<' or '&' in here: the pages stay well-formed XML. */
const char po__html_base_css[] =
    "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;margin:0 auto;"
    "max-width:1180px;padding:16px 24px;color:#222;background:#fff;line-height:1.45}\n"
    "h1{font-size:1.6em;margin:.3em 0}\n"
    "h2{font-size:1.25em;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:1.8em}\n"
    "h3{font-size:1.05em;margin:1.2em 0 .3em}\n"
    "nav a{margin-right:1em}\n"
    "code{font-size:.9em;background:#f4f4f4;padding:0 3px;border-radius:3px;overflow-wrap:anywhere}\n"
    "table{border-collapse:collapse;margin:.5em 0;font-size:.92em}\n"
    "th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}\n"
    "th{background:#f4f4f4}\n"
    "td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\n"
    ".note{color:#555;font-size:.92em}\n"
    ".source{display:inline-block;font-size:.8em;color:#0b5394;background:#eef4fb;border:1px solid #c9dcf0;"
    "border-radius:3px;padding:0 5px;margin-left:4px;white-space:nowrap}\n"
    "svg.chart{display:block;max-width:100%;height:auto;margin:.6em 0}\n"
    "svg text{font-size:12px;fill:#333}\n"
    "svg .plot{fill:#fcfcfc;stroke:#bbb}\n"
    "svg .grid{stroke:#e4e4e4}\n"
    "svg .tick{stroke:#888}\n"
    "svg .ytick{text-anchor:end}\n"
    "svg .xtick{text-anchor:middle}\n"
    "svg .axis-label{text-anchor:middle;font-size:13px}\n"
    "svg .line{fill:none;stroke-width:1.8}\n"
    "svg .track{text-anchor:end}\n"
    "footer{margin-top:2.5em;color:#777;font-size:.85em}\n";
