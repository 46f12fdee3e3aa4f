/* Status codes and error messages.
 *
 * Every fallible library function returns a po_status. PO_OK is zero; anything else is an
 * error whose one-line detail (what failed and why, suitable for printing as is) is kept in a
 * thread-local buffer readable with po_last_error() until the next failure on that thread.
 * The library never exits or aborts on bad input. */
#ifndef PAROPT_STATUS_H
#define PAROPT_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

/* X(code, short description) — the single list of status codes. */
#define PO_STATUS_LIST(X)                                                                                              \
    X(PO_OK, "ok")                                                                                                     \
    X(PO_ERR_INVALID_ARG, "invalid argument")                                                                          \
    X(PO_ERR_NO_MEMORY, "out of memory")                                                                               \
    X(PO_ERR_IO, "input/output error")                                                                                 \
    X(PO_ERR_FORMAT, "malformed file")                                                                                 \
    X(PO_ERR_SHAPE, "shape mismatch")                                                                                  \
    X(PO_ERR_DTYPE, "unsupported or mismatched data type")                                                             \
    X(PO_ERR_NOT_FOUND, "not found")                                                                                   \
    X(PO_ERR_UNSUPPORTED, "not supported")                                                                             \
    X(PO_ERR_BACKEND, "backend library failure")                                                                       \
    X(PO_ERR_RANGE, "value out of range")

typedef enum {
#define PO_STATUS_ENUM(code, text) code,
    PO_STATUS_LIST(PO_STATUS_ENUM)
#undef PO_STATUS_ENUM
        PO_STATUS_COUNT
} po_status;

/* Short fixed description of a status code ("shape mismatch"). Never NULL. */
const char *po_status_str(po_status s);

/* Detail of the most recent failure on this thread ("l1.weight: expected shape [64, 784],
 * file has [64, 783]"), or the status description if no detail was recorded. Never NULL. */
const char *po_last_error(void);

/* Records a detail message for status s and returns s, so library code can write
 * `return po_fail(PO_ERR_SHAPE, "...", ...)`. Also usable by applications. */
po_status po_fail(po_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Clears the recorded detail. */
void po_clear_error(void);

#ifdef __cplusplus
}
#endif
#endif
