/* safetensors: the whole file is read into memory, the JSON header is checked completely at
 * open time (so later accessors cannot fail on bad input), and tensors are handed out as
 * independent copies, so the alignment of the data in the file never matters.
 *
 * Tensors are listed in the order of their data offsets (ties, possible only for empty
 * tensors, in JSON order), which is the order a writer laid them out; po_st_write keeps the
 * caller's order, so a written file reads back in the same order. */
#include "paropt/io.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/printable.h"
#include "io/atomic_file.h"

/* The data is copied byte for byte into host tensors. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors data is little-endian");

/* The reference implementation rejects headers over 100 MB before parsing them; real headers
 * take a few hundred bytes per tensor. */
#define ST_MAX_HEADER 100000000u
#define ST_META_KEY   "__metadata__"

typedef struct {
    char *name;
    po_dtype dtype;
    po_shape shape;
    uint64_t begin, end; /* byte range within the data section */
    size_t json_pos;     /* position in the header, to keep the sort deterministic */
} st_entry;

typedef struct {
    const char *name; /* points into the entry */
    int index;
} st_name_ix;

struct po_st_file {
    char *label;               /* the path, or "<memory>"; starts every message */
    unsigned char *image;      /* the whole file */
    const unsigned char *data; /* the data section, inside image */
    size_t data_len;
    int n; /* entries filled so far (all of them once parsed) */
    st_entry *t;
    st_name_ix *by_name; /* sorted by name for po_st_find */
    int n_meta;
    char **meta_key, **meta_val;
};

/* Names, dtype strings and parser messages come from the file: control characters and stray
 * bytes are escaped and long text cut, so that every message stays one short printable line.
 * size must be at least 16. */
static const char *printable(const char *s, char *buf, size_t size) { return po__printable(s, buf, size, 80); }

static const char *json_kind(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

void po_st_free(po_st_file *f) {
    if (!f) return;
    for (int i = 0; i < f->n; i++)
        free(f->t[i].name);
    for (int i = 0; i < f->n_meta; i++) {
        free(f->meta_key[i]);
        free(f->meta_val[i]);
    }
    free(f->t);
    free(f->by_name);
    free(f->meta_key);
    free(f->meta_val);
    free(f->image);
    free(f->label);
    free(f);
}

static po_status parse_meta(po_st_file *f, json_t *meta) {
    if (!json_is_object(meta))
        return po_fail(PO_ERR_FORMAT, "%s: \"%s\" is %s, not an object of strings", f->label, ST_META_KEY,
                       json_kind(meta));
    size_t n = json_object_size(meta);
    f->meta_key = calloc(n ? n : 1, sizeof *f->meta_key);
    f->meta_val = calloc(n ? n : 1, sizeof *f->meta_val);
    if (!f->meta_key || !f->meta_val) return po_fail(PO_ERR_NO_MEMORY, "%s: out of memory for metadata", f->label);
    const char *key;
    json_t *v;
    json_object_foreach(meta, key, v) {
        char kb[96];
        if (!json_is_string(v))
            return po_fail(PO_ERR_FORMAT, "%s: %s entry \"%s\" is %s, not a string", f->label, ST_META_KEY,
                           printable(key, kb, sizeof kb), json_kind(v));
        char *k = strdup(key), *s = strdup(json_string_value(v));
        if (!k || !s) {
            free(k);
            free(s);
            return po_fail(PO_ERR_NO_MEMORY, "%s: out of memory for metadata", f->label);
        }
        f->meta_key[f->n_meta] = k;
        f->meta_val[f->n_meta] = s;
        f->n_meta++;
    }
    return PO_OK;
}

static int64_t json_nonneg_int(const json_t *v) {
    if (!json_is_integer(v)) return -1;
    json_int_t x = json_integer_value(v);
    return x < 0 ? -1 : (int64_t)x;
}

/* Fills e from one header entry; every message names the tensor. */
static po_status parse_entry(const po_st_file *f, const char *name, json_t *v, st_entry *e) {
    char nb[96], sb[160];
    const char *L = f->label, *N = printable(name, nb, sizeof nb);
    if (!json_is_object(v))
        return po_fail(PO_ERR_FORMAT, "%s: tensor \"%s\": entry is %s, not an object", L, N, json_kind(v));
    json_t *dt = json_object_get(v, "dtype");
    json_t *sh = json_object_get(v, "shape");
    json_t *off = json_object_get(v, "data_offsets");
    if (!json_is_string(dt))
        return po_fail(PO_ERR_FORMAT, "%s: tensor \"%s\": \"dtype\" is %s, not a string", L, N,
                       dt ? json_kind(dt) : "missing");
    if (!json_is_array(sh))
        return po_fail(PO_ERR_FORMAT, "%s: tensor \"%s\": \"shape\" is %s, not an array", L, N,
                       sh ? json_kind(sh) : "missing");
    if (!json_is_array(off) || json_array_size(off) != 2)
        return po_fail(PO_ERR_FORMAT, "%s: tensor \"%s\": \"data_offsets\" is %s, not a pair [begin, end]", L, N,
                       !off                 ? "missing"
                       : json_is_array(off) ? "an array of another length"
                                            : json_kind(off));
    if (po_dtype_parse(json_string_value(dt), &e->dtype) != PO_OK) {
        char db[96];
        return po_fail(PO_ERR_DTYPE,
                       "%s: tensor \"%s\": dtype \"%s\" is not supported (paropt reads F32, I32 "
                       "and I64)",
                       L, N, printable(json_string_value(dt), db, sizeof db));
    }

    size_t rank = json_array_size(sh);
    if (rank > PO_MAX_DIMS)
        return po_fail(PO_ERR_UNSUPPORTED, "%s: tensor \"%s\": shape has %zu dimensions; paropt handles at most %d", L,
                       N, rank, PO_MAX_DIMS);
    e->shape.ndim = (int)rank;
    for (size_t d = 0; d < rank; d++) {
        json_t *x = json_array_get(sh, d);
        int64_t ext = json_nonneg_int(x);
        if (ext < 0)
            return po_fail(PO_ERR_FORMAT, "%s: tensor \"%s\": shape extent %zu is %s, not a non-negative integer", L, N,
                           d, json_is_integer(x) ? "negative" : json_kind(x));
        e->shape.dim[d] = ext;
    }
    /* Bound the product of the non-zero extents, not just the element count: the tensor code
     * multiplies extents in both directions (strides), and [0, 2^40, 2^40] must not overflow
     * there either. */
    const size_t es = po_dtype_size(e->dtype);
    int64_t prod = 1;
    int has_zero = 0;
    for (int d = 0; d < e->shape.ndim; d++) {
        int64_t ext = e->shape.dim[d];
        if (ext == 0) {
            has_zero = 1;
        } else if (prod > INT64_MAX / (int64_t)es / ext) {
            return po_fail(PO_ERR_FORMAT, "%s: tensor \"%s\": shape %s of %s is too large", L, N,
                           po_shape_format(&e->shape, sb, sizeof sb), po_dtype_name(e->dtype));
        } else {
            prod *= ext;
        }
    }
    const uint64_t bytes = has_zero ? 0 : (uint64_t)prod * es;

    int64_t b = json_nonneg_int(json_array_get(off, 0));
    int64_t en = json_nonneg_int(json_array_get(off, 1));
    if (b < 0 || en < 0)
        return po_fail(PO_ERR_FORMAT, "%s: tensor \"%s\": \"data_offsets\" must be two non-negative integers", L, N);
    e->begin = (uint64_t)b;
    e->end = (uint64_t)en;
    if (e->begin > e->end)
        return po_fail(PO_ERR_FORMAT,
                       "%s: tensor \"%s\": data_offsets [%lld, %lld] end before "
                       "they begin",
                       L, N, (long long)b, (long long)en);
    if (e->end - e->begin != bytes)
        return po_fail(PO_ERR_FORMAT,
                       "%s: tensor \"%s\": data_offsets [%lld, %lld] do not match shape %s of %s "
                       "(%llu bytes)",
                       L, N, (long long)b, (long long)en, po_shape_format(&e->shape, sb, sizeof sb),
                       po_dtype_name(e->dtype), (unsigned long long)bytes);
    if (e->end > f->data_len)
        return po_fail(PO_ERR_FORMAT,
                       "%s: tensor \"%s\": data_offsets [%lld, %lld] run past the end of the data "
                       "(%zu bytes; truncated file?)",
                       L, N, (long long)b, (long long)en, f->data_len);
    e->name = strdup(name);
    if (!e->name) return po_fail(PO_ERR_NO_MEMORY, "%s: out of memory", L);
    return PO_OK;
}

static int cmp_offsets(const void *pa, const void *pb) {
    const st_entry *a = pa, *b = pb;
    if (a->begin != b->begin) return a->begin < b->begin ? -1 : 1;
    if (a->end != b->end) return a->end < b->end ? -1 : 1;
    return a->json_pos < b->json_pos ? -1 : a->json_pos > b->json_pos;
}

static int cmp_names(const void *pa, const void *pb) {
    return strcmp(((const st_name_ix *)pa)->name, ((const st_name_ix *)pb)->name);
}

/* Sorts the entries into file order and rejects tensors sharing bytes. Empty tensors own no
 * bytes, so they may sit anywhere. */
static po_status order_and_check_overlap(po_st_file *f) {
    if (f->n > 1) qsort(f->t, (size_t)f->n, sizeof *f->t, cmp_offsets);
    int last = -1; /* the non-empty tensor reaching furthest so far */
    for (int i = 0; i < f->n; i++) {
        const st_entry *e = &f->t[i];
        if (e->begin == e->end) continue;
        if (last >= 0 && e->begin < f->t[last].end) {
            char n1[96], n2[96];
            const st_entry *o = &f->t[last];
            return po_fail(PO_ERR_FORMAT,
                           "%s: tensor \"%s\": data_offsets [%llu, %llu] overlap those of tensor "
                           "\"%s\" [%llu, %llu]",
                           f->label, printable(e->name, n1, sizeof n1), (unsigned long long)e->begin,
                           (unsigned long long)e->end, printable(o->name, n2, sizeof n2), (unsigned long long)o->begin,
                           (unsigned long long)o->end);
        }
        last = i;
    }
    f->by_name = calloc(f->n > 0 ? (size_t)f->n : 1, sizeof *f->by_name);
    if (!f->by_name) return po_fail(PO_ERR_NO_MEMORY, "%s: out of memory", f->label);
    for (int i = 0; i < f->n; i++)
        f->by_name[i] = (st_name_ix){f->t[i].name, i};
    if (f->n > 1) qsort(f->by_name, (size_t)f->n, sizeof *f->by_name, cmp_names);
    return PO_OK;
}

static po_status parse_header(po_st_file *f, const unsigned char *hdr, size_t hdr_len) {
    json_error_t jerr;
    json_t *root = json_loadb((const char *)hdr, hdr_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        char tb[160];
        return po_fail(PO_ERR_FORMAT, "%s: header is not valid JSON (line %d, column %d): %s", f->label, jerr.line,
                       jerr.column, printable(jerr.text, tb, sizeof tb));
    }
    po_status st = PO_OK;
    if (!json_is_object(root)) {
        st = po_fail(PO_ERR_FORMAT, "%s: header is %s, not a JSON object", f->label, json_kind(root));
        goto done;
    }
    size_t cap = json_object_size(root);
    if (cap > (size_t)INT_MAX) {
        st = po_fail(PO_ERR_FORMAT, "%s: header lists %zu tensors, too many", f->label, cap);
        goto done;
    }
    f->t = calloc(cap ? cap : 1, sizeof *f->t);
    if (!f->t) {
        st = po_fail(PO_ERR_NO_MEMORY, "%s: out of memory for %zu tensors", f->label, cap);
        goto done;
    }
    const char *key;
    json_t *v;
    size_t pos = 0;
    json_object_foreach(root, key, v) {
        if (strcmp(key, ST_META_KEY) == 0) {
            st = parse_meta(f, v);
        } else {
            st_entry *e = &f->t[f->n];
            e->json_pos = pos;
            st = parse_entry(f, key, v, e);
            if (st == PO_OK) f->n++;
        }
        if (st) goto done;
        pos++;
    }
    st = order_and_check_overlap(f);
done:
    json_decref(root);
    return st;
}

/* Takes ownership of label and image, whatever the outcome. */
static po_status parse_image(char *label, unsigned char *image, size_t len, po_st_file **out) {
    *out = NULL;
    po_st_file *f = calloc(1, sizeof *f);
    if (!f || !label) {
        free(f);
        free(label);
        free(image);
        return po_fail(PO_ERR_NO_MEMORY, "out of memory opening a safetensors file");
    }
    f->label = label;
    f->image = image;
    po_status st;
    if (len < 8) {
        st = po_fail(PO_ERR_FORMAT,
                     "%s: file is %zu bytes, too short for the 8-byte header "
                     "length",
                     label, len);
        goto fail;
    }
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | image[i];
    if (n > ST_MAX_HEADER) {
        st = po_fail(PO_ERR_FORMAT,
                     "%s: header length %llu is absurdly large (limit %u; not a "
                     "safetensors file?)",
                     label, (unsigned long long)n, ST_MAX_HEADER);
        goto fail;
    }
    if (n > len - 8) {
        st = po_fail(PO_ERR_FORMAT,
                     "%s: header length %llu runs past the end of the file (%zu "
                     "bytes follow the length; truncated file?)",
                     label, (unsigned long long)n, len - 8);
        goto fail;
    }
    f->data = image + 8 + n;
    f->data_len = len - 8 - (size_t)n;
    st = parse_header(f, image + 8, (size_t)n);
    if (st) goto fail;
    *out = f;
    return PO_OK;
fail:
    po_st_free(f);
    return st;
}

po_status po_st_parse(const void *data, size_t len, po_st_file **out) {
    *out = NULL;
    if (!data && len) return po_fail(PO_ERR_INVALID_ARG, "<memory>: NULL data of %zu bytes", len);
    unsigned char *copy = malloc(len ? len : 1);
    if (!copy) return po_fail(PO_ERR_NO_MEMORY, "<memory>: cannot copy %zu bytes", len);
    if (len) memcpy(copy, data, len);
    return parse_image(strdup("<memory>"), copy, len, out);
}

po_status po_st_read(const char *path, po_st_file **out) {
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) return po_fail(PO_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(fp), &sb) != 0) {
        int err = errno;
        fclose(fp);
        return po_fail(PO_ERR_IO, "%s: cannot stat: %s", path, strerror(err));
    }
    if (!S_ISREG(sb.st_mode)) {
        fclose(fp);
        return po_fail(PO_ERR_IO, "%s: not a regular file", path);
    }
    if ((uintmax_t)sb.st_size >= SIZE_MAX) {
        fclose(fp);
        return po_fail(PO_ERR_NO_MEMORY, "%s: file too large to load", path);
    }
    size_t len = (size_t)sb.st_size;
    unsigned char *buf = malloc(len ? len : 1);
    if (!buf) {
        fclose(fp);
        return po_fail(PO_ERR_NO_MEMORY, "%s: cannot allocate %zu bytes to load it", path, len);
    }
    size_t got = fread(buf, 1, len, fp);
    if (got != len) {
        int err = ferror(fp) ? errno : 0;
        fclose(fp);
        free(buf);
        if (err) return po_fail(PO_ERR_IO, "%s: read failed: %s", path, strerror(err));
        return po_fail(PO_ERR_IO, "%s: file shrank from %zu to %zu bytes while being read", path, len, got);
    }
    fclose(fp);
    return parse_image(strdup(path), buf, len, out);
}

int po_st_count(const po_st_file *f) { return f ? f->n : 0; }

const char *po_st_name(const po_st_file *f, int i) { return f && i >= 0 && i < f->n ? f->t[i].name : NULL; }

int po_st_find(const po_st_file *f, const char *name) {
    if (!f || !name) return -1;
    st_name_ix key = {name, -1};
    const st_name_ix *hit = bsearch(&key, f->by_name, (size_t)f->n, sizeof key, cmp_names);
    return hit ? hit->index : -1;
}

/* Out-of-range indices get an invalid dtype (po_dtype_size() == 0) and an empty shape. */
po_dtype po_st_dtype(const po_st_file *f, int i) { return f && i >= 0 && i < f->n ? f->t[i].dtype : PO_DTYPE_COUNT; }

po_shape po_st_shape(const po_st_file *f, int i) {
    if (f && i >= 0 && i < f->n) return f->t[i].shape;
    po_shape s;
    memset(&s, 0, sizeof s);
    return s;
}

po_status po_st_tensor(const po_st_file *f, int i, po_tensor **out) {
    *out = NULL;
    if (!f || i < 0 || i >= f->n)
        return po_fail(PO_ERR_INVALID_ARG, "%s: tensor index %d is outside 0..%d", f ? f->label : "safetensors", i,
                       f ? f->n - 1 : -1);
    const st_entry *e = &f->t[i];
    po_status st = po_tensor_new(e->dtype, e->shape, out);
    if (st) {
        char why[256], nb[96];
        snprintf(why, sizeof why, "%s", po_last_error());
        return po_fail(st, "%s: tensor \"%s\": %s", f->label, printable(e->name, nb, sizeof nb), why);
    }
    if (e->end > e->begin) memcpy((*out)->data, f->data + e->begin, (size_t)(e->end - e->begin));
    return PO_OK;
}

po_status po_st_get(const po_st_file *f, const char *name, po_tensor **out) {
    *out = NULL;
    int i = po_st_find(f, name);
    if (i < 0) {
        char nb[96];
        return po_fail(PO_ERR_NOT_FOUND, "%s has no tensor \"%s\"", f ? f->label : "safetensors",
                       name ? printable(name, nb, sizeof nb) : "(null)");
    }
    return po_st_tensor(f, i, out);
}

const char *po_st_meta(const po_st_file *f, const char *key) {
    if (!f || !key) return NULL;
    for (int i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta_key[i], key) == 0) return f->meta_val[i];
    return NULL;
}

/* ---- writing ---- */

/* Builds the header object in the caller's order (jansson keeps insertion order), checking
 * the arguments as it goes. Data offsets assume the tensors are packed in that order. */
static po_status build_header(const char *path, int n, const char *const *names, const po_tensor *const *tensors,
                              int n_meta, const char *const *meta_keys, const char *const *meta_values, json_t **out) {
    char nb[96];
    json_t *root = json_object();
    if (!root) return po_fail(PO_ERR_NO_MEMORY, "%s: out of memory", path);
    po_status st = PO_OK;
    if (n_meta > 0) {
        json_t *meta = json_object();
        if (!meta || json_object_set_new(root, ST_META_KEY, meta) != 0) {
            st = po_fail(PO_ERR_NO_MEMORY, "%s: out of memory", path);
            goto fail;
        }
        for (int i = 0; i < n_meta; i++) {
            const char *k = meta_keys[i], *v = meta_values[i];
            if (!k || !v) {
                st = po_fail(PO_ERR_INVALID_ARG, "%s: metadata entry %d is NULL", path, i);
                goto fail;
            }
            if (json_object_get(meta, k)) {
                st = po_fail(PO_ERR_INVALID_ARG, "%s: metadata key \"%s\" given twice", path,
                             printable(k, nb, sizeof nb));
                goto fail;
            }
            json_t *s = json_string(v);
            if (!s || json_object_set_new(meta, k, s) != 0) {
                st = po_fail(PO_ERR_INVALID_ARG, "%s: metadata entry \"%s\" is not valid UTF-8", path,
                             printable(k, nb, sizeof nb));
                goto fail;
            }
        }
    }
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        const char *name = names[i];
        const po_tensor *t = tensors[i];
        if (!name || !t) {
            st = po_fail(PO_ERR_INVALID_ARG, "%s: tensor %d has a NULL name or tensor", path, i);
            goto fail;
        }
        if (strcmp(name, ST_META_KEY) == 0 || json_object_get(root, name)) {
            st = po_fail(PO_ERR_INVALID_ARG, "%s: tensor name \"%s\" is %s", path, printable(name, nb, sizeof nb),
                         strcmp(name, ST_META_KEY) == 0 ? "reserved" : "used twice");
            goto fail;
        }
        size_t es = po_dtype_size(t->dtype);
        int64_t numel = po_tensor_numel(t);
        if (es == 0 || numel < 0) {
            st = po_fail(PO_ERR_INVALID_ARG, "%s: tensor \"%s\" has an invalid dtype or shape", path,
                         printable(name, nb, sizeof nb));
            goto fail;
        }
        uint64_t bytes = (uint64_t)numel * es;
        if (bytes > (uint64_t)INT64_MAX - off) {
            st = po_fail(PO_ERR_INVALID_ARG, "%s: the tensors add up to more than 2^63 bytes", path);
            goto fail;
        }
        const uint64_t end = off + bytes;
        json_t *shape = json_array();
        for (int d = 0; shape && d < t->shape.ndim; d++)
            if (json_array_append_new(shape, json_integer(t->shape.dim[d])) != 0) {
                json_decref(shape);
                shape = NULL;
            }
        json_t *e = shape ? json_pack("{s:s, s:o, s:[I, I]}", "dtype", po_dtype_name(t->dtype), "shape", shape,
                                      "data_offsets", (json_int_t)off, (json_int_t)end)
                          : NULL;
        if (!e) {
            st = po_fail(PO_ERR_NO_MEMORY, "%s: out of memory", path);
            goto fail;
        }
        if (json_object_set_new(root, name, e) != 0) {
            st = po_fail(PO_ERR_INVALID_ARG, "%s: tensor name \"%s\" is not valid UTF-8", path,
                         printable(name, nb, sizeof nb));
            goto fail;
        }
        off = end;
    }
    *out = root;
    return PO_OK;
fail:
    json_decref(root);
    return st;
}

static po_status write_tensor(po_atomic_file *af, const po_tensor *t) {
    po_tensor *c = NULL;
    po_status st = po_tensor_contiguous(t, &c);
    if (st) return st;
    st = po_atomic_write(af, c->data, (size_t)po_tensor_numel(c) * po_dtype_size(c->dtype));
    po_tensor_free(c);
    return st;
}

po_status po_st_write(const char *path, int n, const char *const *names, const po_tensor *const *tensors, int n_meta,
                      const char *const *meta_keys, const char *const *meta_values) {
    if (!path) return po_fail(PO_ERR_INVALID_ARG, "po_st_write: NULL path");
    if (n < 0 || n_meta < 0 || (n > 0 && (!names || !tensors)) || (n_meta > 0 && (!meta_keys || !meta_values)))
        return po_fail(PO_ERR_INVALID_ARG, "%s: bad tensor or metadata counts or arrays", path);
    json_t *root = NULL;
    po_status st = build_header(path, n, names, tensors, n_meta, meta_keys, meta_values, &root);
    if (st) return st;
    char *hdr = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (!hdr) return po_fail(PO_ERR_NO_MEMORY, "%s: out of memory for the header", path);
    /* Spaces pad the header to 8 bytes, as the reference writer does, so that the data
     * section starts 8-byte aligned in the file. */
    size_t hlen = strlen(hdr), pad = (8 - hlen % 8) % 8;
    unsigned char prefix[8];
    for (int i = 0; i < 8; i++)
        prefix[i] = (unsigned char)((uint64_t)(hlen + pad) >> (8 * i));

    po_atomic_file af;
    st = po_atomic_begin(path, &af);
    if (st == PO_OK) st = po_atomic_write(&af, prefix, sizeof prefix);
    if (st == PO_OK) st = po_atomic_write(&af, hdr, hlen);
    if (st == PO_OK) st = po_atomic_write(&af, "       ", pad);
    free(hdr);
    for (int i = 0; st == PO_OK && i < n; i++)
        st = write_tensor(&af, tensors[i]);
    if (st) {
        po_atomic_abort(&af);
        return st;
    }
    return po_atomic_commit(&af);
}
