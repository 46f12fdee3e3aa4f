#include "core/alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void *po_aligned_calloc(size_t bytes) {
    size_t n = po_align_up(bytes ? bytes : 1);
    void *p = aligned_alloc(PO_ALIGN, n);
    if (p) memset(p, 0, n);
    return p;
}

void po_aligned_free(void *p) { free(p); }

typedef struct arena_block {
    struct arena_block *next;
    size_t used, size;
    _Alignas(16) unsigned char data[];
} arena_block;

struct po_arena {
    arena_block *head;
};

po_arena *po_arena_new(void) { return calloc(1, sizeof(po_arena)); }

void po_arena_free(po_arena *a) {
    if (!a) return;
    for (arena_block *b = a->head; b;) {
        arena_block *next = b->next;
        free(b);
        b = next;
    }
    free(a);
}

void *po_arena_alloc(po_arena *a, size_t bytes) {
    bytes = (bytes + 15) & ~(size_t)15;
    if (!a->head || a->head->size - a->head->used < bytes) {
        size_t size = bytes > 64 * 1024 ? bytes : 64 * 1024;
        arena_block *b = malloc(sizeof *b + size);
        if (!b) return NULL;
        b->next = a->head;
        b->used = 0;
        b->size = size;
        a->head = b;
    }
    void *p = a->head->data + a->head->used;
    a->head->used += bytes;
    memset(p, 0, bytes);
    return p;
}

char *po_arena_strdup(po_arena *a, const char *s) {
    size_t n = strlen(s) + 1;
    char *p = po_arena_alloc(a, n);
    if (p) memcpy(p, s, n);
    return p;
}
