#include "paropt/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_error[512];
static _Thread_local po_status last_status;

const char *po_status_str(po_status s) {
    switch (s) {
#define PO_STATUS_CASE(code, text)                                                                                     \
    case code: return text;
        PO_STATUS_LIST(PO_STATUS_CASE)
#undef PO_STATUS_CASE
    default: return "unknown status";
    }
}

const char *po_last_error(void) {
    if (last_error[0]) return last_error;
    return po_status_str(last_status);
}

po_status po_fail(po_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    last_status = s;
    return s;
}

void po_clear_error(void) {
    last_error[0] = 0;
    last_status = PO_OK;
}
