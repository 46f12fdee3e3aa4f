/* The op table, built from PO_OP_LIST: each entry points at the definition in the op's file. */
#include "ops/op_def.h"

static const po_op_def *const op_table[PO_OP_COUNT] = {
#define PO_OP_ENTRY(e, name) [PO_OP_##e] = &po_op_def_##name,
    PO_OP_LIST(PO_OP_ENTRY)
#undef PO_OP_ENTRY
};

const po_op_def *po__op_def(po_op op) { return op_table[op]; }

const char *po_op_name(po_op op) {
    if ((int)op < 0 || op >= PO_OP_COUNT) return "?";
    return op_table[op]->name;
}
