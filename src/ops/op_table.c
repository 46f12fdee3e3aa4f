/* The op table, built from PO_OP_LIST: each entry points at the definition in the op's file. */
#include "ops/op_def.h"
#include "ops/ops_util.h"

static const po_op_def *const op_table[PO_OP_COUNT] = {
#define PO_OP_ENTRY(e, name) [PO_OP_##e] = &po_op_def_##name,
    PO_OP_LIST(PO_OP_ENTRY)
#undef PO_OP_ENTRY
};

const po_op_def *po__op_def(po_op op) { return op_table[op]; }

bool po__op_has_work(const po_op_def *def) {
    return def->cpu_run || (def->cpu_units && def->cpu_run_units) || def->cpu_run_range;
}

po_status po__op_run(const po_op_def *def, const po_kargs *a) {
    if (def->cpu_run) return def->cpu_run(a);
    if (def->cpu_units && def->cpu_run_units) return def->cpu_run_units(a, 0, def->cpu_units(a->node));
    if (def->cpu_run_range) return def->cpu_run_range(a, 0, po__numel(a->node));
    return PO_OK;
}

const char *po_op_name(po_op op) {
    if ((int)op < 0 || op >= PO_OP_COUNT) return "?";
    return op_table[op]->name;
}
