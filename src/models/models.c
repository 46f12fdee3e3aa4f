/* The model registry, spec parsing and the layer helpers shared by the model builders. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/node.h"
#include "models/model_config.h"

static const po_model_def *const models[] = {&po_model_mnist_mlp, &po_model_cifar_cnn, &po_model_tiny_gpt};
#define N_MODELS (int)(sizeof models / sizeof *models)

const char *const *po_model_names(void) {
    static const char *names[N_MODELS + 1];
    for (int i = 0; i < N_MODELS; i++)
        names[i] = models[i]->name;
    return names;
}

static const po_model_def *find_model(const char *name, size_t len) {
    for (int i = 0; i < N_MODELS; i++)
        if (strlen(models[i]->name) == len && strncmp(models[i]->name, name, len) == 0) return models[i];
    return NULL;
}

const char *po_model_keys(const char *name) {
    static _Thread_local char buf[256];
    const po_model_def *d = find_model(name, strlen(name));
    if (!d) return NULL;
    size_t used = 0;
    buf[0] = 0;
    for (const po_model_key *k = d->keys; k->name && used < sizeof buf; k++) {
        used += (size_t)snprintf(buf + used, sizeof buf - used, "%s%s=", used ? " " : "", k->name);
        if (k->defaults[0] < 0) { /* derived: "max_seq=seq" */
            used += (size_t)snprintf(buf + used, sizeof buf - used, "%s", d->keys[-1 - k->defaults[0]].name);
            continue;
        }
        for (int v = 0; v < k->n_values && used < sizeof buf; v++)
            used += (size_t)snprintf(buf + used, sizeof buf - used, v ? "x%lld" : "%lld", (long long)k->defaults[v]);
    }
    return buf;
}

void po__cfg_default(po_model_config *c, const char *name, const int64_t *values) {
    for (int k = 0; k < c->n_keys; k++)
        if (strcmp(c->keys[k].name, name) == 0 && !c->explicit_key[k])
            memcpy(c->values[k], values, sizeof(int64_t) * (size_t)c->keys[k].n_values);
}

int64_t po__cfg(const po_model_config *c, const char *name, int i) {
    for (int k = 0; k < c->n_keys; k++)
        if (strcmp(c->keys[k].name, name) == 0) return c->values[k][i];
    return 0; /* builders only ask for their own keys */
}

/* Parses "123" or, for multi-valued keys, "3x32x32". */
static po_status parse_value(const char *model, const po_model_key *key, const char *text, size_t len, int64_t *out) {
    char buf[64];
    if (len == 0 || len >= sizeof buf) goto bad;
    memcpy(buf, text, len);
    buf[len] = 0;
    char *p = buf;
    for (int v = 0; v < key->n_values; v++) {
        char *end;
        errno = 0;
        long long x = strtoll(p, &end, 10);
        if (end == p || errno || x <= 0 || x > (1LL << 40)) goto bad;
        out[v] = x;
        p = end;
        if (v + 1 < key->n_values) {
            if (*p != 'x') goto bad;
            p++;
        }
    }
    if (*p == 0) return PO_OK;
bad:
    return po_fail(PO_ERR_INVALID_ARG, "model %s: bad value \"%.*s\" for %s (expected %s)", model, (int)len, text,
                   key->name, key->n_values == 1 ? "a positive integer" : "CxHxW, e.g. 3x32x32");
}

static po_status parse_spec(const char *spec, const po_model_def **def, po_model_config *c) {
    const char *colon = strchr(spec, ':');
    size_t name_len = colon ? (size_t)(colon - spec) : strlen(spec);
    *def = find_model(spec, name_len);
    if (!*def) {
        char names[128] = "";
        for (int i = 0; i < N_MODELS; i++) {
            strcat(names, i ? ", " : "");
            strcat(names, models[i]->name);
        }
        return po_fail(PO_ERR_INVALID_ARG, "unknown model \"%.*s\" (available: %s)", (int)name_len, spec, names);
    }
    memset(c, 0, sizeof *c);
    c->keys = (*def)->keys;
    for (const po_model_key *k = c->keys; k->name; k++, c->n_keys++)
        memcpy(c->values[c->n_keys], k->defaults, sizeof k->defaults);
    const char *p = colon ? colon + 1 : NULL;
    while (p && *p) {
        const char *end = strchr(p, ','), *eq = strchr(p, '=');
        size_t item = end ? (size_t)(end - p) : strlen(p);
        if (!eq || (size_t)(eq - p) >= item)
            return po_fail(PO_ERR_INVALID_ARG, "model %s: expected key=value, got \"%.*s\"", (*def)->name, (int)item,
                           p);
        size_t klen = (size_t)(eq - p);
        int k = 0;
        while (k < c->n_keys && !(strlen(c->keys[k].name) == klen && strncmp(c->keys[k].name, p, klen) == 0))
            k++;
        if (k == c->n_keys)
            return po_fail(PO_ERR_INVALID_ARG, "model %s has no key \"%.*s\" (keys: %s)", (*def)->name, (int)klen, p,
                           po_model_keys((*def)->name));
        po_status st = parse_value((*def)->name, &c->keys[k], eq + 1, item - klen - 1, c->values[k]);
        if (st) return st;
        c->explicit_key[k] = true;
        p = end ? end + 1 : NULL;
    }
    return PO_OK;
}

/* A derived key (PO_MODEL_SAME_AS) the spec left unset: not written out. */
static bool implicit_key(const po_model_config *c, int k) { return c->keys[k].defaults[0] < 0 && !c->explicit_key[k]; }

/* "name:key=value,..." with every key (derived ones only when set), multi-valued ones as CxHxW. */
static void resolved_spec(const char *name, const po_model_config *c, char *buf, size_t size) {
    size_t used = (size_t)snprintf(buf, size, "%s", name);
    for (int k = 0, first = 1; k < c->n_keys && used < size; k++) {
        if (implicit_key(c, k)) continue;
        used += (size_t)snprintf(buf + used, size - used, "%c%s=", first ? ':' : ',', c->keys[k].name);
        first = 0;
        for (int v = 0; v < c->keys[k].n_values && used < size; v++)
            used += (size_t)snprintf(buf + used, size - used, v ? "x%lld" : "%lld", (long long)c->values[k][v]);
    }
}

static void config_json(const po_model_config *c, char *buf, size_t size) {
    size_t used = (size_t)snprintf(buf, size, "{");
    for (int k = 0, first = 1; k < c->n_keys && used < size; k++) {
        if (implicit_key(c, k)) continue;
        used += (size_t)snprintf(buf + used, size - used, "%s\"%s\": ", first ? "" : ", ", c->keys[k].name);
        first = 0;
        if (c->keys[k].n_values == 1) {
            used += (size_t)snprintf(buf + used, size - used, "%lld", (long long)c->values[k][0]);
            continue;
        }
        for (int v = 0; v < c->keys[k].n_values && used < size; v++)
            used += (size_t)snprintf(buf + used, size - used, "%s%lld", v ? ", " : "[", (long long)c->values[k][v]);
        if (used < size) used += (size_t)snprintf(buf + used, size - used, "]");
    }
    if (used < size) snprintf(buf + used, size - used, "}");
}

po_status po_model_build(const char *spec, int64_t batch, po_model **out) {
    return po_model_build_for(spec, batch, NULL, out);
}

po_status po_model_build_for(const char *spec, int64_t batch, const po_data_shape *data, po_model **out) {
    *out = NULL;
    const po_model_def *def;
    po_model_config c;
    po_status st = parse_spec(spec, &def, &c);
    if (st) return st;
    if (data && (st = def->fit(&c, data))) return st;
    if (batch < 0) return po_fail(PO_ERR_INVALID_ARG, "batch must be positive, got %lld", (long long)batch);
    for (int k = 0; k < c.n_keys; k++)
        if (batch > 0 && strcmp(c.keys[k].name, "batch") == 0) c.values[k][0] = batch;
    for (int k = 0; k < c.n_keys; k++)
        if (implicit_key(&c, k)) c.values[k][0] = c.values[-1 - c.keys[k].defaults[0]][0];
    po_model *m = calloc(1, sizeof *m);
    if (!m || !(m->graph = po_graph_new())) {
        free(m);
        return po_fail(PO_ERR_NO_MEMORY, "out of memory building model %s", def->name);
    }
    m->name = def->name;
    m->batch = po__cfg(&c, "batch", 0);
    config_json(&c, m->config, sizeof m->config);
    resolved_spec(def->name, &c, m->spec, sizeof m->spec);
    st = def->build(&c, m);
    if (!st && po_graph_status(m->graph))
        st = po_fail(po_graph_status(m->graph), "model %s: %s", def->name, po_graph_error(m->graph));
    if (!st) {
        po_graph_keep(m->graph, m->logits);
        po_graph_keep(m->graph, m->loss);
    }
    if (st) {
        po_model_free(m);
        return st;
    }
    *out = m;
    return PO_OK;
}

void po_model_free(po_model *m) {
    if (!m) return;
    po_graph_free(m->graph);
    free(m);
}

/* --- layer helpers (PyTorch's default initialisation: U(+-1/sqrt(fan_in)) for Linear and
 * Conv2d weights and biases, ones and zeros for LayerNorm) ------------------------------------ */

po_node *po__nn_linear(po_graph *g, const char *name, po_node *x, int64_t in, int64_t out) {
    po_graph_push_scope(g, name);
    po_node *w = po_param(g, "weight", PO_SHAPE(out, in), po_init_uniform_fan_in(in));
    po_node *b = po_param(g, "bias", PO_SHAPE(out), po_init_uniform_fan_in(in));
    po_graph_pop_scope(g);
    return po_linear(g, x, w, b);
}

po_node *po__nn_layer_norm(po_graph *g, const char *name, po_node *x, int64_t d) {
    po_graph_push_scope(g, name);
    po_node *w = po_param(g, "weight", PO_SHAPE(d), (po_init){PO_INIT_ONES, 0.0f});
    po_node *b = po_param(g, "bias", PO_SHAPE(d), (po_init){PO_INIT_ZEROS, 0.0f});
    po_graph_pop_scope(g);
    return po_layer_norm(g, x, w, b, 1e-5f);
}

po_node *po__nn_conv2d(po_graph *g, const char *name, po_node *x, int64_t in, int64_t out, int k, int pad) {
    po_graph_push_scope(g, name);
    int64_t fan_in = in * k * k;
    po_node *w = po_param(g, "weight", PO_SHAPE(out, in, k, k), po_init_uniform_fan_in(fan_in));
    po_node *b = po_param(g, "bias", PO_SHAPE(out), po_init_uniform_fan_in(fan_in));
    po_graph_pop_scope(g);
    po_conv2d_opts o = po_conv2d_opts_default();
    o.pad_h = o.pad_w = pad;
    return po_conv2d(g, x, w, b, o);
}
