/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * compat.c - Avro schemas as a checked model (parsed from JSON with jansson,
 * because avro-c keeps neither aliases nor defaults nor enum defaults where
 * we can read them) and the schema-resolution rules of the Avro
 * specification, from which every compatibility level follows: BACKWARD is
 * "new reads old", FORWARD "old reads new", FULL both, TRANSITIVE against
 * every earlier version instead of only the latest.
 *
 * Resolution of recursive schemas is checked coinductively: a (reader,
 * writer) pair met again while it is still being checked is assumed to
 * resolve, which is sound because every other rule is checked on the way.
 * Every pair's answer is remembered for the whole check (as Apache Avro's
 * checker does), so a schema whose records refer to one record many times
 * costs one visit per pair, not one per path; a work budget bounds what is
 * left (huge records and enums, union trials) because the registry checks
 * while holding its lock.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ketenbus/registry.h"

enum kind {
    K_NULL,
    K_BOOLEAN,
    K_INT,
    K_LONG,
    K_FLOAT,
    K_DOUBLE,
    K_BYTES,
    K_STRING,
    K_RECORD,
    K_ENUM,
    K_ARRAY,
    K_MAP,
    K_FIXED,
    K_UNION,
};

static const char *const kind_names[] = {"null",   "boolean", "int",    "long",   "float",
                                         "double", "bytes",   "string", "record", "enum",
                                         "array",  "map",     "fixed",  "union"};

struct field {
    char *name;        /* field name */
    char **aliases;    /* alternative names the field was known by */
    size_t naliases;   /* entries of aliases */
    struct node *type; /* field type (owned by the kb_avsc node list) */
    json_t *deflt;     /* default value (borrowed from the root JSON), or NULL */
};

struct node {
    enum kind kind;           /* which Avro type */
    char *fullname;           /* named types: namespace.name */
    char *name;               /* named types: the name without namespace (into fullname) */
    char **aliases;           /* named types: full names of aliases */
    size_t naliases;          /* entries of aliases */
    struct field *fields;     /* record fields */
    size_t nfields;           /* entries of fields */
    char **symbols;           /* enum symbols */
    size_t nsymbols;          /* entries of symbols */
    const char *enum_default; /* enum default symbol (into symbols), or NULL */
    struct node *items;       /* array items or map values */
    struct node **branches;   /* union branches */
    size_t nbranches;         /* entries of branches */
    int64_t size;             /* fixed size in bytes */
    const char *logical;      /* valid logical type ("date", "decimal", ...) or NULL */
    int precision, scale;     /* decimal parameters */
};

struct kb_avsc {
    json_t *root;        /* the parsed JSON (defaults point into it) */
    struct node **nodes; /* every node, for freeing and named lookup */
    size_t n, cap;       /* used / allocated entries of nodes */
    struct node *top;    /* the schema itself */
};

/* --- parsing --- */

struct parser {
    kb_avsc_t *s;    /* the schema being built */
    char *err;       /* errstr of the caller */
    size_t err_size; /* its size */
    char path[512];  /* JSON location of the current element, for errors */
    int failed;      /* an error has been reported */
    int depth;       /* nesting depth (bounded against hostile input) */
};

static int fail(struct parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct parser *p, const char *fmt, ...)
{
    if (p->failed)
        return -1;
    p->failed = 1;
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    kb_err_set(KB_ERR_SCHEMA, p->err, p->err_size, "%s: %s", p->path[0] ? p->path : "/", msg);
    return -1;
}

static size_t path_push(struct parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static size_t path_push(struct parser *p, const char *fmt, ...)
{
    size_t old = strlen(p->path);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->path + old, sizeof p->path - old, fmt, ap);
    va_end(ap);
    return old;
}

static void path_pop(struct parser *p, size_t old)
{
    p->path[old] = '\0';
}

static struct node *node_new(struct parser *p, enum kind k)
{
    kb_avsc_t *s = p->s;
    if (s->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 16;
        struct node **nn = realloc(s->nodes, ncap * sizeof *nn);
        if (!nn)
            return NULL;
        s->nodes = nn;
        s->cap = ncap;
    }
    struct node *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->kind = k;
    s->nodes[s->n++] = n;
    return n;
}

static void node_free(struct node *n)
{
    free(n->fullname);
    for (size_t i = 0; i < n->naliases; i++)
        free(n->aliases[i]);
    free(n->aliases);
    for (size_t i = 0; i < n->nfields; i++) {
        free(n->fields[i].name);
        for (size_t j = 0; j < n->fields[i].naliases; j++)
            free(n->fields[i].aliases[j]);
        free(n->fields[i].aliases);
    }
    free(n->fields);
    for (size_t i = 0; i < n->nsymbols; i++)
        free(n->symbols[i]);
    free(n->symbols);
    free(n->branches);
    free(n);
}

static int primitive_kind(const char *name)
{
    for (int k = K_NULL; k <= K_STRING; k++)
        if (!strcmp(name, kind_names[k]))
            return k;
    return -1;
}

/* A name part: [A-Za-z_][A-Za-z0-9_]* */
static int valid_name(const char *s, size_t len)
{
    if (len == 0 || !((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
        return 0;
    for (size_t i = 1; i < len; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return 0;
    }
    return 1;
}

/* A dotted full name or namespace: name parts separated by single dots. */
static int valid_dotted(const char *s)
{
    const char *p = s;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        if (!valid_name(p, len))
            return 0;
        if (!dot)
            return 1;
        p = dot + 1;
    }
}

static struct node *find_named(const kb_avsc_t *s, const char *fullname)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->nodes[i]->fullname && !strcmp(s->nodes[i]->fullname, fullname))
            return s->nodes[i];
    return NULL;
}

/* "ns" + "name" -> "ns.name" (or "name" when ns is empty), malloc'ed. */
static char *join_name(const char *ns, const char *name)
{
    if (strchr(name, '.') || !ns || !*ns)
        return strdup(name);
    size_t len = strlen(ns) + strlen(name) + 2;
    char *out = malloc(len);
    if (out)
        snprintf(out, len, "%s.%s", ns, name);
    return out;
}

static struct node *parse_type(struct parser *p, json_t *j, const char *ns);

static struct node *resolve_ref(struct parser *p, const char *name, const char *ns)
{
    char *full = join_name(ns, name);
    if (!full) {
        fail(p, "out of memory");
        return NULL;
    }
    struct node *n = find_named(p->s, full);
    if (!n && strchr(name, '.') == NULL)
        n = find_named(p->s, name); /* a name in the null namespace */
    if (!n)
        fail(p, "unknown type \"%s\" (named types must be defined before use)", full);
    free(full);
    return n;
}

/* Parse "aliases" of a named type (full names) or a field (simple names). */
static int parse_aliases(struct parser *p, json_t *obj, const char *ns, int is_field, char ***out,
                         size_t *nout)
{
    json_t *ja = json_object_get(obj, "aliases");
    if (!ja)
        return 0;
    if (!json_is_array(ja))
        return fail(p, "\"aliases\" must be an array of names");
    size_t n = json_array_size(ja);
    *out = calloc(n ? n : 1, sizeof **out);
    if (!*out)
        return fail(p, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const char *a = json_string_value(json_array_get(ja, i));
        if (!a || (is_field ? !valid_name(a, strlen(a)) : !valid_dotted(a)))
            return fail(p, "alias %zu is not a valid name", i);
        (*out)[i] = is_field ? strdup(a) : join_name(ns, a);
        if (!(*out)[i])
            return fail(p, "out of memory");
        *nout = i + 1;
    }
    return 0;
}

/* Record the logical type when it is valid for the underlying type; the
 * specification says an invalid one is ignored (the plain type is used). */
static void parse_logical(struct node *n, json_t *obj)
{
    const char *lt = json_string_value(json_object_get(obj, "logicalType"));
    if (!lt)
        return;
    static const struct {
        const char *name;
        enum kind kind;
    } simple[] = {{"date", K_INT},
                  {"time-millis", K_INT},
                  {"time-micros", K_LONG},
                  {"timestamp-millis", K_LONG},
                  {"timestamp-micros", K_LONG},
                  {"timestamp-nanos", K_LONG},
                  {"local-timestamp-millis", K_LONG},
                  {"local-timestamp-micros", K_LONG},
                  {"local-timestamp-nanos", K_LONG},
                  {"uuid", K_STRING}};
    for (size_t i = 0; i < sizeof simple / sizeof simple[0]; i++)
        if (!strcmp(lt, simple[i].name) && n->kind == simple[i].kind) {
            n->logical = simple[i].name;
            return;
        }
    if (!strcmp(lt, "uuid") && n->kind == K_FIXED && n->size == 16)
        n->logical = "uuid";
    else if (!strcmp(lt, "duration") && n->kind == K_FIXED && n->size == 12)
        n->logical = "duration";
    else if (!strcmp(lt, "decimal") && (n->kind == K_BYTES || n->kind == K_FIXED)) {
        json_t *jp = json_object_get(obj, "precision"), *js = json_object_get(obj, "scale");
        if (!json_is_integer(jp) || (js && !json_is_integer(js)))
            return;
        json_int_t prec = json_integer_value(jp), scale = js ? json_integer_value(js) : 0;
        if (prec <= 0 || prec > 1000 || scale < 0 || scale > prec)
            return;
        if (n->kind == K_FIXED) {
            /* The most digits a two's-complement number of `size` bytes
             * holds: floor(log10(2^(8 size - 1) - 1)), which equals
             * floor((8 size - 1) log10 2) as no power of two is a power of
             * ten (so no libm is needed). */
            long double maxdig = (long double)(8 * n->size - 1) * 0.30102999566398119521L;
            if (n->size == 0 || prec > (json_int_t)maxdig)
                return;
        }
        n->logical = "decimal";
        n->precision = (int)prec;
        n->scale = (int)scale;
    }
}

/* Define the named type of @p obj: its full name, checked for redefinition. */
static struct node *define_named(struct parser *p, json_t *obj, enum kind k, const char *ns,
                                 const char **own_ns)
{
    const char *name = json_string_value(json_object_get(obj, "name"));
    if (!name) {
        fail(p, "%s needs a \"name\"", kind_names[k]);
        return NULL;
    }
    json_t *jns = json_object_get(obj, "namespace");
    if (jns && !json_is_string(jns) && !json_is_null(jns)) {
        fail(p, "\"namespace\" must be a string");
        return NULL;
    }
    const char *space = json_is_string(jns) ? json_string_value(jns) : ns;
    if (space && *space && !valid_dotted(space)) {
        fail(p, "invalid namespace \"%s\"", space);
        return NULL;
    }
    if (!valid_dotted(name)) {
        fail(p, "invalid name \"%s\"", name);
        return NULL;
    }
    char *full = join_name(space, name);
    if (!full) {
        fail(p, "out of memory");
        return NULL;
    }
    const char *last = strrchr(full, '.');
    if (primitive_kind(last ? last + 1 : full) >= 0) {
        fail(p, "a named type may not be called \"%s\"", full);
        free(full);
        return NULL;
    }
    if (find_named(p->s, full)) {
        fail(p, "type \"%s\" is defined twice", full);
        free(full);
        return NULL;
    }
    struct node *n = node_new(p, k);
    if (!n) {
        free(full);
        fail(p, "out of memory");
        return NULL;
    }
    n->fullname = full;
    n->name = last ? (char *)strrchr(full, '.') + 1 : full;
    /* The namespace of children: the part of the full name before the name. */
    static _Thread_local char nsbuf[512];
    size_t nslen = last ? (size_t)(last - full) : 0;
    if (nslen >= sizeof nsbuf) {
        fail(p, "namespace too long");
        return NULL;
    }
    memcpy(nsbuf, full, nslen);
    nsbuf[nslen] = '\0';
    *own_ns = nsbuf;
    return n;
}

static struct node *parse_record(struct parser *p, json_t *obj, const char *ns)
{
    const char *own_ns_tmp;
    struct node *n = define_named(p, obj, K_RECORD, ns, &own_ns_tmp);
    if (!n)
        return NULL;
    char *own_ns = strdup(own_ns_tmp);
    if (!own_ns) {
        fail(p, "out of memory");
        return NULL;
    }
    struct node *ret = NULL;
    if (parse_aliases(p, obj, own_ns, 0, &n->aliases, &n->naliases))
        goto out;
    json_t *jf = json_object_get(obj, "fields");
    if (!json_is_array(jf)) {
        fail(p, "record \"%s\" needs a \"fields\" array", n->fullname);
        goto out;
    }
    size_t nf = json_array_size(jf);
    n->fields = calloc(nf ? nf : 1, sizeof *n->fields);
    if (!n->fields) {
        fail(p, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < nf; i++) {
        json_t *f = json_array_get(jf, i);
        const char *fname = json_string_value(json_object_get(f, "name"));
        size_t old = path_push(p, "/fields/%s", fname ? fname : "?");
        if (!json_is_object(f) || !fname || !valid_name(fname, strlen(fname))) {
            fail(p, "field %zu needs a valid \"name\"", i);
            goto out;
        }
        for (size_t k = 0; k < n->nfields; k++)
            if (!strcmp(n->fields[k].name, fname)) {
                fail(p, "field \"%s\" appears twice", fname);
                goto out;
            }
        struct field *fd = &n->fields[n->nfields];
        fd->name = strdup(fname);
        n->nfields++;
        if (!fd->name) {
            fail(p, "out of memory");
            goto out;
        }
        if (parse_aliases(p, f, own_ns, 1, &fd->aliases, &fd->naliases))
            goto out;
        json_t *order = json_object_get(f, "order");
        if (order && (!json_is_string(order) || (strcmp(json_string_value(order), "ascending") &&
                                                 strcmp(json_string_value(order), "descending") &&
                                                 strcmp(json_string_value(order), "ignore")))) {
            fail(p, "\"order\" must be ascending, descending or ignore");
            goto out;
        }
        json_t *jt = json_object_get(f, "type");
        if (!jt) {
            fail(p, "field needs a \"type\"");
            goto out;
        }
        size_t old2 = path_push(p, "/type");
        fd->type = parse_type(p, jt, own_ns);
        path_pop(p, old2);
        if (!fd->type)
            goto out;
        fd->deflt = json_object_get(f, "default");
        path_pop(p, old);
    }
    ret = n;
out:
    free(own_ns);
    return ret;
}

static struct node *parse_enum(struct parser *p, json_t *obj, const char *ns)
{
    const char *own_ns_tmp;
    struct node *n = define_named(p, obj, K_ENUM, ns, &own_ns_tmp);
    if (!n)
        return NULL;
    char *own_ns = strdup(own_ns_tmp);
    if (!own_ns) {
        fail(p, "out of memory");
        return NULL;
    }
    struct node *ret = NULL;
    if (parse_aliases(p, obj, own_ns, 0, &n->aliases, &n->naliases))
        goto out;
    json_t *js = json_object_get(obj, "symbols");
    if (!json_is_array(js) || json_array_size(js) == 0) {
        fail(p, "enum \"%s\" needs a non-empty \"symbols\" array", n->fullname);
        goto out;
    }
    size_t ns_ = json_array_size(js);
    n->symbols = calloc(ns_, sizeof *n->symbols);
    if (!n->symbols) {
        fail(p, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < ns_; i++) {
        const char *sym = json_string_value(json_array_get(js, i));
        if (!sym || !valid_name(sym, strlen(sym))) {
            fail(p, "enum symbol %zu is not a valid name", i);
            goto out;
        }
        for (size_t k = 0; k < n->nsymbols; k++)
            if (!strcmp(n->symbols[k], sym)) {
                fail(p, "enum symbol \"%s\" appears twice", sym);
                goto out;
            }
        n->symbols[i] = strdup(sym);
        if (!n->symbols[i]) {
            fail(p, "out of memory");
            goto out;
        }
        n->nsymbols = i + 1;
    }
    json_t *jd = json_object_get(obj, "default");
    if (jd) {
        const char *d = json_string_value(jd);
        for (size_t k = 0; d && k < n->nsymbols; k++)
            if (!strcmp(n->symbols[k], d))
                n->enum_default = n->symbols[k];
        if (!n->enum_default) {
            fail(p, "enum default must be one of its symbols");
            goto out;
        }
    }
    ret = n;
out:
    free(own_ns);
    return ret;
}

static struct node *parse_fixed(struct parser *p, json_t *obj, const char *ns)
{
    const char *own_ns_tmp;
    struct node *n = define_named(p, obj, K_FIXED, ns, &own_ns_tmp);
    if (!n)
        return NULL;
    char *own_ns = strdup(own_ns_tmp);
    if (!own_ns) {
        fail(p, "out of memory");
        return NULL;
    }
    struct node *ret = NULL;
    if (parse_aliases(p, obj, own_ns, 0, &n->aliases, &n->naliases))
        goto out;
    json_t *jsz = json_object_get(obj, "size");
    if (!json_is_integer(jsz) || json_integer_value(jsz) < 0 ||
        json_integer_value(jsz) > INT32_MAX) {
        fail(p, "fixed \"%s\" needs a \"size\" >= 0", n->fullname);
        goto out;
    }
    n->size = json_integer_value(jsz);
    parse_logical(n, obj);
    ret = n;
out:
    free(own_ns);
    return ret;
}

static struct node *parse_union(struct parser *p, json_t *arr, const char *ns)
{
    struct node *n = node_new(p, K_UNION);
    if (!n) {
        fail(p, "out of memory");
        return NULL;
    }
    size_t nb = json_array_size(arr);
    n->branches = calloc(nb ? nb : 1, sizeof *n->branches);
    if (!n->branches) {
        fail(p, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < nb; i++) {
        size_t old = path_push(p, "/%zu", i);
        struct node *b = parse_type(p, json_array_get(arr, i), ns);
        if (!b)
            return NULL;
        if (b->kind == K_UNION) {
            fail(p, "a union may not directly contain a union");
            return NULL;
        }
        for (size_t k = 0; k < n->nbranches; k++) {
            struct node *o = n->branches[k];
            if (o->kind == b->kind &&
                (!o->fullname || !b->fullname || !strcmp(o->fullname, b->fullname))) {
                fail(p, "union has two branches of type %s",
                     b->fullname ? b->fullname : kind_names[b->kind]);
                return NULL;
            }
        }
        n->branches[n->nbranches++] = b;
        path_pop(p, old);
    }
    return n;
}

static struct node *parse_type(struct parser *p, json_t *j, const char *ns)
{
    if (++p->depth > 64) {
        fail(p, "schema nested too deeply");
        return NULL;
    }
    struct node *n = NULL;
    if (json_is_string(j)) {
        const char *name = json_string_value(j);
        int k = primitive_kind(name);
        if (k >= 0) {
            n = node_new(p, (enum kind)k);
            if (!n)
                fail(p, "out of memory");
        } else {
            n = resolve_ref(p, name, ns);
        }
    } else if (json_is_array(j)) {
        n = parse_union(p, j, ns);
    } else if (json_is_object(j)) {
        json_t *jt = json_object_get(j, "type");
        const char *t = json_string_value(jt);
        if (!t) {
            fail(p, "\"type\" must be a type name");
        } else if (!strcmp(t, "record") || !strcmp(t, "error")) {
            n = parse_record(p, j, ns);
        } else if (!strcmp(t, "enum")) {
            n = parse_enum(p, j, ns);
        } else if (!strcmp(t, "fixed")) {
            n = parse_fixed(p, j, ns);
        } else if (!strcmp(t, "array") || !strcmp(t, "map")) {
            int is_array = t[0] == 'a';
            json_t *ji = json_object_get(j, is_array ? "items" : "values");
            if (!ji) {
                fail(p, "%s needs \"%s\"", t, is_array ? "items" : "values");
            } else {
                n = node_new(p, is_array ? K_ARRAY : K_MAP);
                size_t old = path_push(p, is_array ? "/items" : "/values");
                if (!n)
                    fail(p, "out of memory");
                else if (!(n->items = parse_type(p, ji, ns)))
                    n = NULL;
                path_pop(p, old);
            }
        } else if (primitive_kind(t) >= 0) {
            n = node_new(p, (enum kind)primitive_kind(t));
            if (!n)
                fail(p, "out of memory");
            else
                parse_logical(n, j);
        } else {
            n = resolve_ref(p, t, ns);
        }
    } else {
        fail(p, "not a schema (expected a string, object or array)");
    }
    p->depth--;
    return n;
}

/* Count UTF-8 code points; -1 when a code point is over U+00FF (bytes and
 * fixed defaults are strings of code points 0-255, one per byte). */
static long byte_string_len(const char *s)
{
    long n = 0;
    for (const unsigned char *u = (const unsigned char *)s; *u; n++) {
        if (*u < 0x80)
            u++;
        else if ((*u & 0xE0) == 0xC0 && *u <= 0xC3 && u[1])
            u += 2;
        else
            return -1;
    }
    return n;
}

static int default_ok(const struct node *n, json_t *v, int depth)
{
    if (depth > 64)
        return 0;
    switch (n->kind) {
    case K_NULL: return json_is_null(v);
    case K_BOOLEAN: return json_is_boolean(v);
    case K_INT:
        return json_is_integer(v) && json_integer_value(v) >= INT32_MIN &&
               json_integer_value(v) <= INT32_MAX;
    case K_LONG: return json_is_integer(v);
    case K_FLOAT:
    case K_DOUBLE: return json_is_number(v);
    case K_STRING: return json_is_string(v);
    case K_BYTES: return json_is_string(v) && byte_string_len(json_string_value(v)) >= 0;
    case K_FIXED:
        return json_is_string(v) && byte_string_len(json_string_value(v)) == (long)n->size;
    case K_ENUM:
        if (!json_is_string(v))
            return 0;
        for (size_t i = 0; i < n->nsymbols; i++)
            if (!strcmp(n->symbols[i], json_string_value(v)))
                return 1;
        return 0;
    case K_ARRAY: {
        if (!json_is_array(v))
            return 0;
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) if (!default_ok(n->items, e, depth + 1)) return 0;
        return 1;
    }
    case K_MAP: {
        if (!json_is_object(v))
            return 0;
        const char *k;
        json_t *e;
        json_object_foreach(v, k, e) if (!default_ok(n->items, e, depth + 1)) return 0;
        return 1;
    }
    case K_RECORD:
        if (!json_is_object(v))
            return 0;
        for (size_t i = 0; i < n->nfields; i++) {
            json_t *fv = json_object_get(v, n->fields[i].name);
            if (!fv)
                fv = n->fields[i].deflt;
            if (!fv || !default_ok(n->fields[i].type, fv, depth + 1))
                return 0;
        }
        return 1;
    case K_UNION: return n->nbranches > 0 && default_ok(n->branches[0], v, depth + 1);
    }
    return 0;
}

/* Second pass: every field default must be valid for its field's type. */
static int check_defaults(struct parser *p)
{
    for (size_t i = 0; i < p->s->n; i++) {
        const struct node *n = p->s->nodes[i];
        if (n->kind == K_UNION && n->nbranches == 0)
            return fail(p, "empty union");
        if (n->kind != K_RECORD)
            continue;
        for (size_t k = 0; k < n->nfields; k++) {
            const struct field *f = &n->fields[k];
            if (f->deflt && !default_ok(f->type, f->deflt, 0)) {
                snprintf(p->path, sizeof p->path, "/%s/fields/%s/default", n->fullname, f->name);
                return fail(p, "default does not match the field type%s",
                            f->type->kind == K_UNION ? " (a union's default is of its first branch)"
                                                     : "");
            }
        }
    }
    return 0;
}

kb_avsc_t *kb_avsc_parse(const char *json, size_t len, char *errstr, size_t errstr_size)
{
    kb_avsc_t *s = calloc(1, sizeof *s);
    if (!s) {
        kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
        return NULL;
    }
    json_error_t jerr;
    /* JSON_DECODE_ANY: a schema may be a bare string ("string"). */
    s->root = json_loadb(json, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    if (!s->root) {
        kb_err_set(KB_ERR_SCHEMA, errstr, errstr_size, "not JSON (line %d column %d: %s)",
                   jerr.line, jerr.column, jerr.text);
        kb_avsc_destroy(s);
        return NULL;
    }
    struct parser p = {.s = s, .err = errstr, .err_size = errstr_size};
    s->top = parse_type(&p, s->root, "");
    if (!s->top || check_defaults(&p)) {
        if (!p.failed)
            kb_err_set(KB_ERR_SCHEMA, errstr, errstr_size, "invalid schema");
        kb_avsc_destroy(s);
        return NULL;
    }
    return s;
}

void kb_avsc_destroy(kb_avsc_t *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        node_free(s->nodes[i]);
    free(s->nodes);
    json_decref(s->root);
    free(s);
}

const char *kb_avsc_name(const kb_avsc_t *s)
{
    return s->top->fullname ? s->top->fullname : kind_names[s->top->kind];
}

/* --- resolution --- */

/* What is known about one (reader, writer) pair during a check. */
enum memo_state {
    M_UNKNOWN = 0, /* not checked, or its answer was withdrawn (see struct resolver) */
    M_BUSY,        /* being checked further up: assumed to resolve (coinduction) */
    M_OK,          /* resolves */
    M_FAIL,        /* does not resolve, whatever was assumed meanwhile */
};

struct memo_slot {
    const struct node *r, *w; /* the pair; r == NULL: the slot is free */
    enum memo_state state;    /* what is known about it */
};

struct pair {
    const struct node *r, *w; /* reader and writer node */
};

/*
 * An M_OK answer may rest on M_BUSY assumptions. When the assumed pair then
 * fails (inside a union branch that is being tried), every M_OK answer found
 * since it started is withdrawn again (undo log), so a wrong assumption never
 * outlives its trial. An M_FAIL answer holds whatever was assumed, because
 * assuming more can only make more pairs resolve.
 */
struct resolver {
    struct memo_slot *memo; /* open-addressing hash table of pairs */
    size_t memo_cap;        /* slots (a power of two, or 0) */
    size_t memo_used;       /* occupied slots */
    struct pair *undo;      /* pairs answered M_OK, in order */
    size_t nundo, undo_cap; /* used / allocated entries */
    uint64_t *budget;       /* work units left for the whole check (shared) */
    int over_budget;        /* the budget ran out: the answer is "too complex" */
    char path[512];         /* location of the current check */
    char *why;              /* caller's buffer */
    size_t why_size;        /* its size */
    int quiet;              /* trying union branches: do not report */
    int nomem;              /* an allocation failed: answer "incompatible" */
};

/*
 * Work units one compatibility check (kb_compat_check over all versions, or
 * one kb_avsc_can_read) may spend: one per pair visited, one per name
 * compared. Real schemas need thousands; this bounds a hostile one to well
 * under a second.
 */
#define CHECK_BUDGET 16000000u

/* Spend @p units of work; 0 once the budget is gone. */
static int spend(struct resolver *rs, uint64_t units)
{
    if (rs->over_budget)
        return 0;
    if (*rs->budget < units) {
        *rs->budget = 0;
        rs->over_budget = 1;
        return 0;
    }
    *rs->budget -= units;
    return 1;
}

static size_t memo_hash(const struct node *r, const struct node *w)
{
    uint64_t h = (uint64_t)(uintptr_t)r * 0x9E3779B97F4A7C15u;
    h ^= (uint64_t)(uintptr_t)w + 0x7F4A7C159E3779B9u + (h << 6) + (h >> 2);
    h ^= h >> 29;
    return (size_t)(h * 0xBF58476D1CE4E5B9u >> 7);
}

/* The slot of (r, w); with @p add, created (M_UNKNOWN) when missing. NULL when
 * missing and not added, or on allocation failure (rs->nomem set). The slot is
 * valid until the next call with @p add. */
static struct memo_slot *memo_find(struct resolver *rs, const struct node *r, const struct node *w,
                                   int add)
{
    if (add && (rs->memo_used + 1) * 2 > rs->memo_cap) {
        size_t ncap = rs->memo_cap ? rs->memo_cap * 2 : 256;
        struct memo_slot *nm = calloc(ncap, sizeof *nm);
        if (!nm) {
            rs->nomem = 1;
            return NULL;
        }
        for (size_t i = 0; i < rs->memo_cap; i++) {
            if (!rs->memo[i].r)
                continue;
            size_t k = memo_hash(rs->memo[i].r, rs->memo[i].w) & (ncap - 1);
            while (nm[k].r)
                k = (k + 1) & (ncap - 1);
            nm[k] = rs->memo[i];
        }
        free(rs->memo);
        rs->memo = nm;
        rs->memo_cap = ncap;
    }
    if (!rs->memo_cap)
        return NULL;
    size_t k = memo_hash(r, w) & (rs->memo_cap - 1);
    while (rs->memo[k].r) {
        if (rs->memo[k].r == r && rs->memo[k].w == w)
            return &rs->memo[k];
        k = (k + 1) & (rs->memo_cap - 1);
    }
    if (!add)
        return NULL;
    rs->memo[k] = (struct memo_slot){r, w, M_UNKNOWN};
    rs->memo_used++;
    return &rs->memo[k];
}

static int incompatible(struct resolver *rs, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int incompatible(struct resolver *rs, const char *fmt, ...)
{
    if (rs->quiet)
        return 0;
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (rs->why_size)
        snprintf(rs->why, rs->why_size, "%s: %s", rs->path[0] ? rs->path : "/", msg);
    return 0;
}

static const char *type_label(const struct node *n)
{
    return n->fullname ? n->fullname : kind_names[n->kind];
}

static int names_match(const struct node *r, const struct node *w)
{
    if (!strcmp(r->name, w->name))
        return 1;
    for (size_t i = 0; i < r->naliases; i++)
        if (!strcmp(r->aliases[i], w->fullname))
            return 1;
    return 0;
}

static int logical_ok(struct resolver *rs, const struct node *r, const struct node *w)
{
    if (!r->logical && !w->logical)
        return 1;
    if (!r->logical || !w->logical || strcmp(r->logical, w->logical))
        return incompatible(rs, "logical type %s read as %s: values would change meaning",
                            w->logical ? w->logical : "(none)", r->logical ? r->logical : "(none)");
    if (!strcmp(r->logical, "decimal")) {
        if (r->scale != w->scale)
            return incompatible(rs, "decimal scale %d read with scale %d", w->scale, r->scale);
        if (r->precision < w->precision)
            return incompatible(rs, "decimal precision %d read with smaller precision %d",
                                w->precision, r->precision);
    }
    return 1;
}

static int promotable(enum kind w, enum kind r)
{
    switch (w) {
    case K_INT: return r == K_LONG || r == K_FLOAT || r == K_DOUBLE;
    case K_LONG: return r == K_FLOAT || r == K_DOUBLE;
    case K_FLOAT: return r == K_DOUBLE;
    case K_STRING: return r == K_BYTES;
    case K_BYTES: return r == K_STRING;
    default: return 0;
    }
}

static int can_read(struct resolver *rs, const struct node *r, const struct node *w);

static int can_read_at(struct resolver *rs, const struct node *r, const struct node *w,
                       const char *fmt, const char *arg)
{
    size_t old = strlen(rs->path);
    snprintf(rs->path + old, sizeof rs->path - old, fmt, arg);
    int ok = can_read(rs, r, w);
    if (ok)
        rs->path[old] = '\0'; /* keep the path of a failure for the message */
    return ok;
}

static int record_ok(struct resolver *rs, const struct node *r, const struct node *w)
{
    for (size_t i = 0; i < r->nfields; i++) {
        const struct field *rf = &r->fields[i];
        const struct field *wf = NULL;
        if (!spend(rs, 1 + (uint64_t)(1 + rf->naliases) * w->nfields))
            return 0;
        for (size_t k = 0; k < w->nfields && !wf; k++)
            if (!strcmp(w->fields[k].name, rf->name))
                wf = &w->fields[k];
        for (size_t a = 0; a < rf->naliases && !wf; a++)
            for (size_t k = 0; k < w->nfields && !wf; k++)
                if (!strcmp(w->fields[k].name, rf->aliases[a]))
                    wf = &w->fields[k];
        if (!wf) {
            if (!rf->deflt) {
                size_t old = strlen(rs->path);
                snprintf(rs->path + old, sizeof rs->path - old, "/fields/%s", rf->name);
                int ok = incompatible(rs,
                                      "reader field \"%s\" has no default and the writer "
                                      "does not have it (READER_FIELD_MISSING_DEFAULT_VALUE)",
                                      rf->name);
                return ok;
            }
            continue;
        }
        char seg[300];
        snprintf(seg, sizeof seg, "/fields/%s", rf->name);
        if (!can_read_at(rs, rf->type, wf->type, "%s", seg))
            return 0;
    }
    return 1;
}

static int can_read(struct resolver *rs, const struct node *r, const struct node *w)
{
    if (!spend(rs, 1))
        return 0;
    if (w->kind == K_UNION) {
        /* Every branch the writer may have chosen must be readable. */
        for (size_t i = 0; i < w->nbranches; i++) {
            char seg[48];
            snprintf(seg, sizeof seg, "/writer-branch-%zu", i);
            if (!can_read_at(rs, r, w->branches[i], "%s", seg))
                return 0;
        }
        return 1;
    }
    if (r->kind == K_UNION) {
        /* The first reader branch that resolves is used. */
        int quiet = rs->quiet;
        rs->quiet = 1;
        int ok = 0;
        size_t old = strlen(rs->path);
        for (size_t i = 0; i < r->nbranches && !ok; i++) {
            ok = can_read(rs, r->branches[i], w);
            rs->path[old] = '\0'; /* a failed attempt leaves its path behind */
        }
        rs->quiet = quiet;
        if (!ok)
            return incompatible(rs,
                                "writer type %s matches no branch of the reader's union "
                                "(MISSING_UNION_BRANCH)",
                                type_label(w));
        return 1;
    }

    struct memo_slot *m = memo_find(rs, r, w, 1);
    if (!m)
        return incompatible(rs, "out of memory");
    if (m->state == M_BUSY || m->state == M_OK)
        return 1; /* coinduction, or already shown */
    if (m->state == M_FAIL && rs->quiet)
        return 0; /* reported (when it matters) by checking it again */
    m->state = M_BUSY;
    size_t undo_mark = rs->nundo;
    int ok = 1;
    if (r->kind != w->kind) {
        if (promotable(w->kind, r->kind))
            ok = logical_ok(rs, r, w);
        else
            ok = incompatible(rs, "writer type %s cannot be read as %s (TYPE_MISMATCH)",
                              type_label(w), type_label(r));
        goto out;
    }
    switch (r->kind) {
    case K_RECORD:
        if (!names_match(r, w))
            ok = incompatible(rs, "record %s read as %s (NAME_MISMATCH; add an alias)", w->fullname,
                              r->fullname);
        else
            ok = record_ok(rs, r, w);
        break;
    case K_ENUM:
        if (!names_match(r, w)) {
            ok = incompatible(rs, "enum %s read as %s (NAME_MISMATCH; add an alias)", w->fullname,
                              r->fullname);
            break;
        }
        if (r->enum_default)
            break; /* unknown writer symbols read as the default */
        if (!spend(rs, (uint64_t)w->nsymbols * r->nsymbols)) {
            ok = 0;
            break;
        }
        for (size_t i = 0; i < w->nsymbols && ok; i++) {
            int found = 0;
            for (size_t k = 0; k < r->nsymbols && !found; k++)
                found = !strcmp(r->symbols[k], w->symbols[i]);
            if (!found)
                ok = incompatible(rs,
                                  "writer enum symbol %s is unknown to the reader, which "
                                  "has no enum default (MISSING_ENUM_SYMBOLS)",
                                  w->symbols[i]);
        }
        break;
    case K_FIXED:
        if (!names_match(r, w))
            ok = incompatible(rs, "fixed %s read as %s (NAME_MISMATCH; add an alias)", w->fullname,
                              r->fullname);
        else if (r->size != w->size)
            ok = incompatible(rs, "fixed size %lld read as size %lld (FIXED_SIZE_MISMATCH)",
                              (long long)w->size, (long long)r->size);
        else
            ok = logical_ok(rs, r, w);
        break;
    case K_ARRAY: ok = can_read_at(rs, r->items, w->items, "%s", "/items"); break;
    case K_MAP: ok = can_read_at(rs, r->items, w->items, "%s", "/values"); break;
    default: ok = logical_ok(rs, r, w); break;
    }
out:
    m = memo_find(rs, r, w, 0); /* the table may have grown meanwhile */
    if (ok && rs->nundo == rs->undo_cap) {
        size_t ncap = rs->undo_cap ? rs->undo_cap * 2 : 64;
        struct pair *nu = realloc(rs->undo, ncap * sizeof *nu);
        if (!nu) {
            rs->nomem = 1;
            ok = incompatible(rs, "out of memory");
        } else {
            rs->undo = nu;
            rs->undo_cap = ncap;
        }
    }
    if (ok) {
        m->state = M_OK;
        rs->undo[rs->nundo++] = (struct pair){r, w};
    } else {
        m->state = M_FAIL;
        /* Answers found since this pair started may rest on its assumption. */
        for (size_t i = undo_mark; i < rs->nundo; i++) {
            struct memo_slot *u = memo_find(rs, rs->undo[i].r, rs->undo[i].w, 0);
            if (u && u->state == M_OK)
                u->state = M_UNKNOWN;
        }
        rs->nundo = undo_mark;
    }
    return ok;
}

/* One reader/writer check, spending from @p budget. KB_ERR_RANGE (with
 * @p why) when the budget ran out before an answer. */
static kb_err_t can_read_budget(const kb_avsc_t *reader, const kb_avsc_t *writer, char *why,
                                size_t why_size, uint64_t *budget)
{
    struct resolver rs = {.why = why, .why_size = why_size, .budget = budget};
    if (why_size)
        why[0] = '\0';
    int ok = can_read(&rs, reader->top, writer->top);
    free(rs.memo);
    free(rs.undo);
    if (rs.nomem)
        return KB_ERR_NOMEM;
    if (rs.over_budget)
        return kb_err_set(KB_ERR_RANGE, why, why_size,
                          "the schemas are too complex to compare (the check gave up after "
                          "%u steps)",
                          CHECK_BUDGET);
    return ok ? KB_OK : KB_ERR_SCHEMA;
}

kb_err_t kb_avsc_can_read(const kb_avsc_t *reader, const kb_avsc_t *writer, char *why,
                          size_t why_size)
{
    uint64_t budget = CHECK_BUDGET;
    return can_read_budget(reader, writer, why, why_size, &budget);
}

/* Indexed by enum kb_compat; KB_COMPAT_DEFAULT is named by what it means. */
static const char *const compat_names[] = {[KB_COMPAT_DEFAULT] = "BACKWARD_TRANSITIVE",
                                           [KB_COMPAT_NONE] = "NONE",
                                           [KB_COMPAT_BACKWARD] = "BACKWARD",
                                           [KB_COMPAT_BACKWARD_TRANSITIVE] = "BACKWARD_TRANSITIVE",
                                           [KB_COMPAT_FORWARD] = "FORWARD",
                                           [KB_COMPAT_FORWARD_TRANSITIVE] = "FORWARD_TRANSITIVE",
                                           [KB_COMPAT_FULL] = "FULL",
                                           [KB_COMPAT_FULL_TRANSITIVE] = "FULL_TRANSITIVE"};

const char *kb_compat_name(enum kb_compat c)
{
    return (unsigned)c < sizeof compat_names / sizeof compat_names[0] ? compat_names[c] : "?";
}

kb_err_t kb_compat_parse(const char *name, enum kb_compat *out)
{
    /* From NONE: "DEFAULT" is not a level a client can set. */
    for (size_t i = KB_COMPAT_NONE; name && i < sizeof compat_names / sizeof compat_names[0]; i++)
        if (!strcmp(name, compat_names[i])) {
            *out = (enum kb_compat)i;
            return KB_OK;
        }
    return KB_ERR_INVALID;
}

kb_err_t kb_compat_check(enum kb_compat level, const kb_avsc_t *candidate,
                         const kb_avsc_t *const *versions, size_t n, char *why, size_t why_size)
{
    if (why_size)
        why[0] = '\0';
    if (level == KB_COMPAT_DEFAULT)
        level = KB_COMPAT_BACKWARD_TRANSITIVE;
    if (level == KB_COMPAT_NONE || n == 0)
        return KB_OK;
    int transitive = level == KB_COMPAT_BACKWARD_TRANSITIVE ||
                     level == KB_COMPAT_FORWARD_TRANSITIVE || level == KB_COMPAT_FULL_TRANSITIVE;
    int backward = level != KB_COMPAT_FORWARD && level != KB_COMPAT_FORWARD_TRANSITIVE;
    int forward = level != KB_COMPAT_BACKWARD && level != KB_COMPAT_BACKWARD_TRANSITIVE;
    char reason[512];
    /* One budget for all versions: a long history of hostile versions must
     * not multiply it. */
    uint64_t budget = CHECK_BUDGET;
    /* Newest first: the most relevant failure is reported. */
    for (size_t i = n; i-- > (transitive ? 0 : n - 1);) {
        kb_err_t err;
        if (backward && (err = can_read_budget(candidate, versions[i], reason, sizeof reason,
                                               &budget)) != KB_OK)
            return kb_err_set(err, why, why_size,
                              "%s: the new schema cannot read data written with version %zu: %s",
                              kb_compat_name(level), i + 1,
                              err == KB_ERR_NOMEM ? "out of memory" : reason);
        if (forward && (err = can_read_budget(versions[i], candidate, reason, sizeof reason,
                                              &budget)) != KB_OK)
            return kb_err_set(err, why, why_size,
                              "%s: version %zu cannot read data written with the new schema: %s",
                              kb_compat_name(level), i + 1,
                              err == KB_ERR_NOMEM ? "out of memory" : reason);
    }
    return KB_OK;
}
