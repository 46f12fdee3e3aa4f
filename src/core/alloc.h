/* Aligned allocation and an arena for graph metadata. */
#ifndef PO_CORE_ALLOC_H
#define PO_CORE_ALLOC_H

#include <stddef.h>

/* Alignment of every tensor buffer: one cache line, and a whole AVX-512 vector. */
#define PO_ALIGN 64

/* Zero-filled PO_ALIGN-aligned memory (a zero size still returns a valid pointer);
 * NULL on failure. Release with po_aligned_free. */
void *po_aligned_calloc(size_t bytes);
void po_aligned_free(void *p);

/* Rounds n up to a multiple of PO_ALIGN. */
static inline size_t po_align_up(size_t n) { return (n + PO_ALIGN - 1) & ~(size_t)(PO_ALIGN - 1); }

/* Bump allocator: many small allocations freed together (graph nodes, names, input lists). */
typedef struct po_arena po_arena;
po_arena *po_arena_new(void);
void po_arena_free(po_arena *a);
/* Zero-filled, 16-byte aligned; NULL when out of memory. */
void *po_arena_alloc(po_arena *a, size_t bytes);
char *po_arena_strdup(po_arena *a, const char *s);

#endif
