/* Writing HTML and SVG text: escaping and number formatting for the run report. */
#ifndef PO_REPORT_HTML_H
#define PO_REPORT_HTML_H

#include <stddef.h>
#include <stdio.h>

/* Writes s (NULL writes nothing) with & < > " ' escaped, so it is safe as element text and
 * inside a quoted attribute, in HTML and in SVG. Control characters other than tab, newline and
 * carriage return, and bytes that are not valid UTF-8, become U+FFFD: the page stays well-formed
 * XML whatever a device or op name holds. */
void po__html_text(FILE *f, const char *s);

/* printf, then po__html_text of the result (for text built from untrusted pieces). */
void po__html_textf(FILE *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A number for people: `digits` significant digits, no exponent between 1e-4 and 1e9, trailing
 * zeros dropped; "n/a" for NaN or infinity. Returns buf. */
const char *po__fmt_num(char *buf, size_t size, double v, int digits);

/* The stylesheet the HTML pages share (page, headings, tables, source tags, SVG charts); each page
 * adds its own rules after it. */
extern const char po__html_base_css[];

#endif
