/* Atomic file replacement: write a whole new file, then swap it in.
 *
 * The content goes to a temporary file created next to the target (same directory, hence the
 * same file system, so rename() is atomic); commit flushes and fsyncs it, renames it over the
 * target and fsyncs the directory. A reader, or a crash at any moment, sees either the old
 * file or the complete new one, never a mixture, and a failure leaves no temporary file behind.
 *
 *     po_atomic_file af;
 *     po_status st = po_atomic_begin(path, &af);
 *     if (st) return st;
 *     st = po_atomic_write(&af, buf, len);          // or fprintf(af.fp, ...)
 *     if (st) { po_atomic_abort(&af); return st; }
 *     return po_atomic_commit(&af);                 // releases af whatever the result
 *
 * The new file gets the permission bits of the file it replaces, or 0666 minus the umask when
 * there is none (as fopen would). A symbolic link at path is replaced by the new file, not
 * followed. Errors are PO_ERR_IO (PO_ERR_NO_MEMORY for allocation) with a one-line message
 * naming the path and the system error. Not for concurrent writers of one path: the last
 * commit wins. */
#ifndef PO_IO_ATOMIC_FILE_H
#define PO_IO_ATOMIC_FILE_H

#include <stddef.h>
#include <stdio.h>

#include "paropt/status.h"

typedef struct po_atomic_file {
    FILE *fp;       /* write the new content here (binary mode); owned by the helper */
    char *path;     /* the target path (a private copy) */
    char *tmp_path; /* the temporary file, "<dir>/.<base>.tmp.XXXXXX" */
} po_atomic_file;

/* Creates the temporary file for path. On failure af is left empty (nothing to abort). */
po_status po_atomic_begin(const char *path, po_atomic_file *af);

/* fwrite that reports a short write at once, with the system error. Leaves af open: the
 * caller still commits or aborts. */
po_status po_atomic_write(po_atomic_file *af, const void *data, size_t len);

/* Flushes, fsyncs and closes the temporary file, renames it over the target and fsyncs the
 * directory. Any failure before the rename (including an earlier write error recorded on fp)
 * removes the temporary file and leaves the target untouched. Always releases af. */
po_status po_atomic_commit(po_atomic_file *af);

/* Closes and deletes the temporary file; the target is untouched. Safe on an af that is
 * zero-initialised, left empty by a failed begin, or already committed or aborted. */
void po_atomic_abort(po_atomic_file *af);

#endif
