/* TensorBoard event files: a scalar writer and a reader.
 *
 * An event file is a sequence of TFRecords, each
 *     uint64 length (little-endian) | uint32 masked CRC-32C of those 8 bytes |
 *     `length` bytes of data        | uint32 masked CRC-32C of the data
 * whose data is one serialized tensorflow.Event protocol buffer:
 *     Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
 *     Summary { repeated Value value = 1; }
 *     Value   { string tag = 1; float simple_value = 2; }
 * The writer emits proto3's canonical form: wall_time and step are left out when zero (a
 * reader takes the default, 0), simple_value, a oneof member, is always written.
 *
 * Writer objects are not thread-safe: use one from one thread at a time. Errors are
 * PO_ERR_INVALID_ARG (bad arguments, nothing written), PO_ERR_IO (the system refused; the
 * message names the path and the system error), PO_ERR_NO_MEMORY, and, from the reader,
 * PO_ERR_FORMAT for a corrupt or truncated file; the detail is in po_last_error(). */
#ifndef PAROPT_TFEVENTS_H
#define PAROPT_TFEVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "paropt/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct po_tfevents po_tfevents;

/* Creates DIR/events.out.tfevents.<unix seconds>.<hostname> (the name TensorBoard looks for;
 * '/' in the host name becomes '_') and writes and flushes the first event: the current wall
 * time, step 0 and file_version "brain.Event:2". DIR and any missing parent is created
 * (mode 0777 minus the umask). An existing file is never opened or overwritten: if the name
 * is taken, ".1", ".2", ... is appended until a free name is found. On success *out owns the
 * open file; release it with po_tfevents_close. On failure *out is NULL and any file created
 * has been removed. */
po_status po_tfevents_open(const char *dir, po_tfevents **out);

/* The path of the file being written, owned by w and valid until po_tfevents_close. */
const char *po_tfevents_path(const po_tfevents *w);

/* Appends one Event {wall_time, step, summary {value {tag, simple_value: value}}}.
 * wall_time is seconds since the Unix epoch (as TensorBoard expects; the caller chooses it so
 * that a replayed or merged log keeps its times). tag must be non-empty, valid UTF-8 (the
 * protocol buffer string type requires it; TensorBoard rejects the whole file otherwise) and
 * shorter than 2^30 bytes: anything else is PO_ERR_INVALID_ARG and nothing is written. Any
 * step and value are accepted, NaN and infinities included. The record goes into a buffer;
 * call po_tfevents_flush to make it visible to readers. After a write error (PO_ERR_IO) the
 * file may end in a partial record, so every later scalar or flush on w also fails. */
po_status po_tfevents_scalar(po_tfevents *w, const char *tag, int64_t step, double wall_time, float value);

/* Hands the buffered records to the operating system (fflush; no fsync), so a reader such as
 * TensorBoard sees complete records. PO_ERR_IO on failure, or after an earlier write error. */
po_status po_tfevents_flush(po_tfevents *w);

/* Flushes and closes the file and frees w. NULL is a no-op. A failure of that last flush
 * cannot be reported: call po_tfevents_flush first where it matters. */
void po_tfevents_close(po_tfevents *w);

/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78, initial value and final xor
 * 0xFFFFFFFF) of n bytes; crc32c("123456789") = 0xE3069283. data may be NULL when n is 0. */
uint32_t po_crc32c(const void *data, size_t n);

/* The TFRecord masked form of po_crc32c: ((crc >> 15) | (crc << 17)) + 0xa282ead8. */
uint32_t po_crc32c_masked(const void *data, size_t n);

/* Called by po_tfevents_read once per Value of each Event's summary, with that Event's
 * wall_time, step and file_version (NULL when the Event has none), the Value's tag (NULL
 * when absent) and simple_value (NaN when absent, e.g. an image or tensor value). An Event
 * with no Value (such as the first one, which carries the file_version) gives one call with
 * tag NULL and value NaN. Missing wall_time and step read as 0. The strings are valid only
 * during the call (copy them to keep them); one holding a NUL byte appears cut at it. Returning anything but PO_OK
 * stops the reading, and po_tfevents_read returns that status (the callback may record a message with po_fail). */
typedef po_status (*po_tfevent_cb)(void *ctx, double wall_time, int64_t step, const char *file_version, const char *tag,
                                   float value);

/* Reads the event file at path record by record, checks both CRCs of every record before
 * decoding it, and calls cb(ctx, ...) for its events in file order. Fields the reader does not
 * know (any wire type, groups included) are skipped. Errors: PO_ERR_INVALID_ARG (NULL path or
 * cb), PO_ERR_IO (cannot open or read), PO_ERR_NO_MEMORY, PO_ERR_FORMAT for a corrupt file:
 * a CRC mismatch ("...: record 3 at byte 120: data CRC mismatch ..."), a file that ends inside
 * a record ("...: truncated ..."), a record length beyond the end of the file, or data that is
 * not a valid Event encoding. Callbacks already made for earlier records stand. Never
 * crashes on any input. */
po_status po_tfevents_read(const char *path, po_tfevent_cb cb, void *ctx);

#ifdef __cplusplus
}
#endif
#endif
