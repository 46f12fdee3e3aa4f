/* Buffer planning: which bytes of one arena each intermediate output occupies.
 *
 * Each arena buffer lives from the node that writes it to the last node that reads it (or a
 * view of it); buffers whose lifetimes overlap get disjoint byte ranges, others may share. The
 * executor allocates exactly arena_bytes and uses these offsets, so the plan's size is also
 * the activation memory a step needs. */
#ifndef PO_GRAPH_MEMPLAN_H
#define PO_GRAPH_MEMPLAN_H

#include <stddef.h>

#include "graph/node.h"

#define PO_NO_OFFSET ((size_t)-1)

typedef struct po_memplan {
    int n_nodes;
    size_t *out_offset;   /* per node: arena byte offset of its output, or PO_NO_OFFSET */
    size_t *aux_offset;   /* per node: arena byte offset of its aux buffer, or PO_NO_OFFSET */
    int *last_use;        /* per node: id of the last node reading its storage (n_nodes if kept) */
    size_t arena_bytes;   /* bytes the arena needs */
    size_t scratch_bytes; /* largest scratch any node needs (one shared buffer) */
} po_memplan;

/* Plans g's arena. Free with po_memplan_free. */
po_status po_memplan_build(const po_graph *g, po_memplan *out);
void po_memplan_free(po_memplan *mp);

/* The node whose storage n's output is (n itself unless n is a view). */
const po_node *po__storage_root(const po_node *n);

#endif
