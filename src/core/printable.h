/* Text from files (names, keys, a parser's quote of the input) made safe to put in an error
 * message: one printable line, so that every error stays one line. */
#ifndef PO_CORE_PRINTABLE_H
#define PO_CORE_PRINTABLE_H

#include <stddef.h>

/* Copies s into buf (size bytes, at least 16) with control characters and bytes that are not
 * valid UTF-8 written as \xNN, cut with "..." where it would pass max_len bytes (or size);
 * returns buf. */
const char *po__printable(const char *s, char *buf, size_t size, size_t max_len);

#endif
