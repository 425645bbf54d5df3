/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * validate_project.c - projections: a subscriber's view of an event, made
 * from the validated Avro bytes by copying the byte ranges of the selected
 * fields and rewriting only what must change (array block headers, and the
 * pseudonymised strings, which become the hex HMAC-SHA-256 of their bytes
 * under the subscriber's key). No value tree is ever built.
 *
 * A projection is a small tree over the validator's type nodes (struct
 * pnode): COPY a whole value, or descend into a RECORD (keeping some fields),
 * a UNION, an ARRAY or MAP (projecting every item), down to PSEUDO strings.
 *
 * The tree is then flattened into a straight program (struct pjins), as the
 * validator's is: records inlined, unions and array loops as jumps, and the
 * output as byte ranges. Kept bytes are never copied value by value: MARK
 * opens a range, the values in it are only stepped over, and FLUSH copies
 * the whole range once a dropped field, a pseudonym or a rewritten array
 * header interrupts it. The tree walk (apply()) remains for the schemas the
 * program cannot express (recursive types, very long programs); both give
 * the same result on every input (test_validate_project, the fuzz target).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <avro.h>

#include "hmac.h"
#include "validate_internal.h"

#define HMAC_HEX_LEN 64
#define MAX_PROJ_DEPTH 32

enum pkind { P_COPY, P_RECORD, P_UNION, P_ARRAY, P_MAP, P_PSEUDO };

struct pnode {
    uint8_t kind;         /* enum pkind */
    uint32_t type;        /* the validator's type node this projects */
    struct pnode **kids;  /* RECORD: one per source field (NULL: dropped); UNION: one per
                           * branch; ARRAY/MAP: kids[0] for the items (owned) */
    uint32_t n_kids;      /* entries of kids */
};

/* What the subscriber asked for below one point of the schema. */
struct sel {
    int whole;          /* the whole value is selected */
    int pseudo;         /* the string value(s) here are pseudonymised */
    uint32_t rec;       /* record node the children refer to (when kids) */
    struct sel **kids;  /* per field of rec (owned; NULL: not named) */
};

/* Operations of the flat projection program. p is the read position, mark
 * the start of the pending output range. */
enum pjop {
    J_END,       /* the datum must end here: copy nothing more, accept */
    J_FAIL,      /* reject when reached (nesting beyond max_depth) */
    J_VARINT,    /* step over a varint (int, long, enum) */
    J_SKIPN,     /* step over a fixed number (a) of bytes: boolean, float, double, fixed */
    J_STR,       /* step over a length-prefixed value (string, bytes, map key) */
    J_OPTSTR,    /* step over ["null", string or bytes]: branch byte 0, or 2 and a J_STR */
    J_UNION,     /* an index below a; branch i continues at jumps[b + i] */
    J_JUMP,      /* continue at a */
    J_ARRAY,     /* first block header of an array/map stepped over; none: continue at a */
    J_NEXT,      /* end of one item: next item at a, else the next block header */
    J_MARK,      /* mark = p */
    J_FLUSH,     /* copy [mark, p) */
    J_PSEUDO,    /* copy [mark, p); the string at p becomes its pseudonym; mark after it */
    J_OPTPSEUDO, /* ["null", string]: null stays in the range, a string as J_PSEUDO */
    J_PARRAY,    /* projected array/map: copy [mark, p), write each block's count anew
                  * (byte sizes dropped: they change); none: continue at a; mark after it */
    J_PNEXT,     /* end of one projected item: next item at a, else the next block */
};

struct pjins {
    uint8_t op;  /* enum pjop */
    uint32_t a, b;
};

/* Array loops nested deeper than this, and programs longer than
 * MAX_PJ_PROG, keep the projection on the tree walk. */
#define MAX_PJ_LOOPS 32
#define MAX_PJ_PROG 65536u

struct kb_projection {
    const kb_validator_t *v; /* the source schema (borrowed; outlives this) */
    struct pnode *root;      /* the projection program (owned) */
    char *schema_json;       /* the projected schema text (owned) */
    struct kb__hmac hmac;    /* the pseudonym key, prepared (read-only after _new) */
    struct pjins *prog;      /* the flat program (owned), or NULL: walk the tree */
    size_t n_prog, cap_prog;
    uint32_t *jumps;         /* union branch targets of prog (owned) */
    size_t n_jumps, cap_jumps;
};

/* ---------------------------------------------------------------- building */

static void sel_free(struct sel *s, const kb_validator_t *v)
{
    if (!s)
        return;
    if (s->kids)
        for (uint32_t i = 0; i < v->nodes[s->rec].n; i++)
            sel_free(s->kids[i], v);
    free(s->kids);
    free(s);
}

static void pnode_free(struct pnode *pn)
{
    if (!pn)
        return;
    for (uint32_t i = 0; i < pn->n_kids; i++)
        pnode_free(pn->kids[i]);
    free(pn->kids);
    free(pn);
}

/* The one record a path can step into from type t: through unions whose
 * other branches are null, arrays and maps. NO record: UINT32_MAX. */
static uint32_t reach_record(const kb_validator_t *v, uint32_t t, int depth)
{
    const struct kb__vnode *n = &v->nodes[t];
    if (depth > 8)
        return UINT32_MAX;
    switch (n->op) {
    case VOP_RECORD: return t;
    case VOP_ARRAY:
    case VOP_MAP: return reach_record(v, n->first, depth + 1);
    case VOP_UNION: {
        uint32_t found = UINT32_MAX;
        for (uint32_t i = 0; i < n->n; i++) {
            uint32_t b = v->branches[n->first + i];
            if (v->nodes[b].op == VOP_NULL)
                continue;
            if (found != UINT32_MAX)
                return UINT32_MAX; /* two non-null branches: ambiguous */
            found = reach_record(v, b, depth + 1);
        }
        return found;
    }
    default: return UINT32_MAX;
    }
}

/* Only strings (and nulls) at the leaves of t, through unions and arrays.
 * Not through maps: only a map's values would be pseudonymised, and its
 * keys (a BSN per child, say) would go out as they are. */
static int string_leaves(const kb_validator_t *v, uint32_t t, int depth)
{
    const struct kb__vnode *n = &v->nodes[t];
    if (depth > 8)
        return 0;
    switch (n->op) {
    case VOP_STRING: return 1;
    case VOP_ARRAY: return string_leaves(v, n->first, depth + 1);
    case VOP_UNION: {
        int strings = 0;
        for (uint32_t i = 0; i < n->n; i++) {
            uint32_t b = v->branches[n->first + i];
            if (v->nodes[b].op == VOP_NULL)
                continue;
            if (!string_leaves(v, b, depth + 1))
                return 0;
            strings = 1;
        }
        return strings;
    }
    default: return 0;
    }
}

/* Mark @p path (dots between field names) in the selection tree under
 * @p root (the top record). @p pseudo: mark the end as pseudonymised. */
static int sel_add(const kb_validator_t *v, struct sel *root, const char *path, int pseudo,
                   char *errstr, size_t errstr_size)
{
    struct sel *s = root;
    uint32_t rec = v->root;
    const char *p = path;
    if (!*path)
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "empty field path");
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t seg = dot ? (size_t)(dot - p) : strlen(p);
        const struct kb__vnode *rn = &v->nodes[rec];
        uint32_t fi = UINT32_MAX;
        for (uint32_t i = 0; i < rn->n; i++) {
            const char *name = v->fields[rn->first + i].name;
            if (strlen(name) == seg && !memcmp(name, p, seg)) {
                fi = i;
                break;
            }
        }
        if (fi == UINT32_MAX)
            return kb_err_set(KB_ERR_NOTFOUND, errstr, errstr_size,
                              "field path \"%s\": no field \"%.*s\" in %s", path, (int)seg, p,
                              rn->fullname);
        s->rec = rec;
        if (!s->kids && !(s->kids = calloc(rn->n ? rn->n : 1, sizeof *s->kids)))
            return kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
        if (!s->kids[fi] && !(s->kids[fi] = calloc(1, sizeof *s->kids[fi])))
            return kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
        s = s->kids[fi];
        uint32_t ftype = v->fields[rn->first + fi].type;
        if (!dot) {
            if (pseudo) {
                if (!string_leaves(v, ftype, 0))
                    return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                                      "pseudonymise \"%s\": only string fields (also nullable, "
                                      "or arrays of strings) can be pseudonymised; a map's keys "
                                      "would go out as they are",
                                      path);
                s->pseudo = 1;
            } else {
                s->whole = 1;
            }
            return 0;
        }
        rec = reach_record(v, ftype, 0);
        if (rec == UINT32_MAX)
            return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                              "field path \"%s\": \"%.*s\" is not a record (nor a nullable "
                              "record, nor an array or map of records) to select inside",
                              path, (int)seg, p);
        p = dot + 1;
    }
}

/* Does anything under s ask for a change (pseudonymisation)? */
static int sel_has_pseudo(const struct sel *s, const kb_validator_t *v)
{
    if (!s)
        return 0;
    if (s->pseudo)
        return 1;
    if (s->kids)
        for (uint32_t i = 0; i < v->nodes[s->rec].n; i++)
            if (sel_has_pseudo(s->kids[i], v))
                return 1;
    return 0;
}

static struct pnode *pnode_new(uint8_t kind, uint32_t type, uint32_t n_kids)
{
    struct pnode *pn = calloc(1, sizeof *pn);
    if (!pn)
        return NULL;
    pn->kind = kind;
    pn->type = type;
    pn->n_kids = n_kids;
    if (n_kids && !(pn->kids = calloc(n_kids, sizeof *pn->kids))) {
        free(pn);
        return NULL;
    }
    return pn;
}

/* Build the program for type t under selection s (s->whole or s->pseudo or
 * s->kids set). @p inherit_whole: an ancestor selected everything. */
static struct pnode *build(const kb_validator_t *v, uint32_t t, const struct sel *s, int whole,
                           int pseudo, int depth)
{
    const struct kb__vnode *n = &v->nodes[t];
    if (depth > MAX_PROJ_DEPTH)
        return NULL;
    whole = whole || (s && s->whole);
    pseudo = pseudo || (s && s->pseudo);
    if (whole && !pseudo && !sel_has_pseudo(s, v))
        return pnode_new(P_COPY, t, 0);
    switch (n->op) {
    case VOP_STRING: return pnode_new(pseudo ? P_PSEUDO : P_COPY, t, 0);
    case VOP_RECORD: {
        struct pnode *pn = pnode_new(P_RECORD, t, n->n);
        if (!pn)
            return NULL;
        int all_copy = whole;
        for (uint32_t i = 0; i < n->n; i++) {
            const struct sel *ks = (s && s->kids && s->rec == t) ? s->kids[i] : NULL;
            if (!whole && !ks)
                continue;
            pn->kids[i] = build(v, v->fields[n->first + i].type, ks, whole, 0, depth + 1);
            if (!pn->kids[i]) {
                pnode_free(pn);
                return NULL;
            }
            if (pn->kids[i]->kind != P_COPY)
                all_copy = 0;
        }
        if (all_copy) { /* everything kept unchanged: one copy */
            pnode_free(pn);
            return pnode_new(P_COPY, t, 0);
        }
        return pn;
    }
    case VOP_UNION: {
        struct pnode *pn = pnode_new(P_UNION, t, n->n);
        if (!pn)
            return NULL;
        int all_copy = 1;
        for (uint32_t i = 0; i < n->n; i++) {
            pn->kids[i] = build(v, v->branches[n->first + i], s, whole, pseudo, depth + 1);
            if (!pn->kids[i]) {
                pnode_free(pn);
                return NULL;
            }
            all_copy = all_copy && pn->kids[i]->kind == P_COPY;
        }
        if (all_copy) {
            pnode_free(pn);
            return pnode_new(P_COPY, t, 0);
        }
        return pn;
    }
    case VOP_ARRAY:
    case VOP_MAP: {
        struct pnode *pn = pnode_new(n->op == VOP_ARRAY ? P_ARRAY : P_MAP, t, 1);
        if (!pn)
            return NULL;
        pn->kids[0] = build(v, n->first, s, whole, pseudo, depth + 1);
        if (!pn->kids[0]) {
            pnode_free(pn);
            return NULL;
        }
        if (pn->kids[0]->kind == P_COPY) {
            pnode_free(pn);
            return pnode_new(P_COPY, t, 0);
        }
        return pn;
    }
    default: return pnode_new(P_COPY, t, 0);
    }
}

/* ------------------------------------------------------ projected schema */

/* Emitting JSON: named types are defined at their first use, then referred
 * to by full name. */
struct emit {
    const kb_validator_t *v;
    char **done;   /* full names already defined in the output */
    size_t n_done, cap_done;
    const char *top; /* full name of the projected record */
    int failed;    /* out of memory */
};

static int emit_seen(struct emit *e, const char *fullname)
{
    for (size_t i = 0; i < e->n_done; i++)
        if (!strcmp(e->done[i], fullname))
            return 1;
    if (e->n_done == e->cap_done) {
        size_t ncap = e->cap_done ? e->cap_done * 2 : 16;
        char **nd = realloc(e->done, ncap * sizeof *nd);
        if (!nd) {
            e->failed = 1;
            return 1;
        }
        e->done = nd;
        e->cap_done = ncap;
    }
    if (!(e->done[e->n_done] = strdup(fullname))) {
        e->failed = 1;
        return 1;
    }
    e->n_done++;
    return 0;
}

static int constraint_key(const char *key)
{
    return !strncmp(key, "kb.", 3) && strcmp(key, "kb.personal") != 0;
}

static json_t *emit_type(struct emit *e, uint32_t t);

/* A field object like the source's, with a new type. @p keep_cons: keep
 * the kb.* constraints; @p keep_default: keep "default". */
static json_t *emit_field(struct emit *e, const struct kb__vfield *f, json_t *type, int keep_cons,
                          int keep_default)
{
    json_t *o = json_object();
    if (!o || !type) {
        json_decref(o);
        json_decref(type);
        e->failed = 1;
        return NULL;
    }
    const char *key;
    json_t *val;
    json_object_foreach(f->def, key, val)
    {
        if (!strcmp(key, "type") || (!keep_cons && constraint_key(key)) ||
            (!strcmp(key, "default") && !keep_default))
            continue;
        json_object_set(o, key, val);
    }
    json_object_set_new(o, "type", type);
    if (!keep_cons)
        json_object_set_new(o, "kb.pseudonym", json_string("hmac-sha256-hex"));
    return o;
}

/* The whole type t, as in the source (named types by full name). */
static json_t *emit_type(struct emit *e, uint32_t t)
{
    const kb_validator_t *v = e->v;
    const struct kb__vnode *n = &v->nodes[t];
    if (n->fullname && emit_seen(e, n->fullname))
        return json_string(n->fullname);
    switch (n->op) {
    case VOP_RECORD: {
        json_t *o = json_object(), *fields = json_array();
        json_object_set_new(o, "type", json_string("record"));
        json_object_set_new(o, "name", json_string(n->fullname));
        json_t *doc = json_object_get(n->def, "doc");
        if (doc)
            json_object_set(o, "doc", doc);
        for (uint32_t i = 0; i < n->n; i++) {
            const struct kb__vfield *f = &v->fields[n->first + i];
            json_array_append_new(fields, emit_field(e, f, emit_type(e, f->type), 1, 1));
        }
        json_object_set_new(o, "fields", fields);
        return o;
    }
    case VOP_ENUM:
    case VOP_FIXED: {
        json_t *o = json_deep_copy(n->def);
        json_object_del(o, "namespace");
        json_object_set_new(o, "name", json_string(n->fullname));
        return o;
    }
    case VOP_ARRAY:
    case VOP_MAP: {
        json_t *o = json_object();
        json_object_set_new(o, "type", json_string(n->op == VOP_ARRAY ? "array" : "map"));
        json_object_set_new(o, n->op == VOP_ARRAY ? "items" : "values", emit_type(e, n->first));
        return o;
    }
    case VOP_UNION: {
        json_t *a = json_array();
        for (uint32_t i = 0; i < n->n; i++)
            json_array_append_new(a, emit_type(e, v->branches[n->first + i]));
        return a;
    }
    default: return json_deep_copy(n->def); /* primitive, maybe with a logical type */
    }
}

/* The projected type of pn; @p name is the full name a changed record gets. */
static json_t *emit_proj(struct emit *e, const struct pnode *pn, const char *name)
{
    const kb_validator_t *v = e->v;
    const struct kb__vnode *n = &v->nodes[pn->type];
    switch (pn->kind) {
    case P_COPY: return emit_type(e, pn->type);
    case P_PSEUDO: return json_string("string");
    case P_RECORD: {
        json_t *o = json_object(), *fields = json_array();
        json_object_set_new(o, "type", json_string("record"));
        json_object_set_new(o, "name", json_string(name));
        for (uint32_t i = 0; i < n->n; i++) {
            const struct pnode *k = pn->kids[i];
            if (!k)
                continue;
            const struct kb__vfield *f = &v->fields[n->first + i];
            char sub[512];
            snprintf(sub, sizeof sub, "%s_%s", name, f->name);
            int pseudo_leaf = k->kind == P_PSEUDO || (k->kind != P_COPY && k->kind != P_RECORD &&
                                                      string_leaves(v, f->type, 0));
            json_t *def = json_object_get(f->def, "default");
            int keep_default = k->kind == P_COPY || json_is_null(def);
            json_array_append_new(fields,
                                  emit_field(e, f, emit_proj(e, k, sub), !pseudo_leaf, keep_default));
        }
        json_object_set_new(o, "fields", fields);
        return o;
    }
    case P_UNION: {
        json_t *a = json_array();
        for (uint32_t i = 0; i < n->n; i++)
            json_array_append_new(a, emit_proj(e, pn->kids[i], name));
        return a;
    }
    case P_ARRAY:
    case P_MAP: {
        json_t *o = json_object();
        json_object_set_new(o, "type", json_string(pn->kind == P_ARRAY ? "array" : "map"));
        json_object_set_new(o, pn->kind == P_ARRAY ? "items" : "values",
                            emit_proj(e, pn->kids[0], name));
        return o;
    }
    }
    return NULL;
}

/* -------------------------------------------------------------- flattening */

/* State while flattening the projection tree into pj->prog. */
struct pflat {
    kb_projection_t *pj;
    uint8_t *open;  /* per type node: 1 while that record is being inlined */
    unsigned loops; /* array loops around the current point */
    int status;     /* 0: fine so far; 1: not expressible; -1: out of memory */
};

static int pgrow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 64;
    while (ncap < need)
        ncap *= 2;
    void *na = realloc(*arr, ncap * elem);
    if (!na)
        return -1;
    *arr = na;
    *cap = ncap;
    return 0;
}

static uint32_t pins_add(struct pflat *f, uint8_t op, uint32_t a)
{
    kb_projection_t *pj = f->pj;
    if (f->status)
        return 0;
    if (pj->n_prog >= MAX_PJ_PROG) {
        f->status = 1;
        return 0;
    }
    if (pgrow((void **)&pj->prog, &pj->cap_prog, pj->n_prog + 1, sizeof *pj->prog)) {
        f->status = -1;
        return 0;
    }
    pj->prog[pj->n_prog] = (struct pjins){.op = op, .a = a};
    return (uint32_t)pj->n_prog++;
}

/* Room for @p n union branch targets; the index of the first, or
 * UINT32_MAX (status set). */
static uint32_t pjumps_add(struct pflat *f, uint32_t n)
{
    kb_projection_t *pj = f->pj;
    if (f->status)
        return UINT32_MAX;
    if (pgrow((void **)&pj->jumps, &pj->cap_jumps, pj->n_jumps + n, sizeof *pj->jumps)) {
        f->status = -1;
        return UINT32_MAX;
    }
    uint32_t first = (uint32_t)pj->n_jumps;
    pj->n_jumps += n;
    return first;
}

static void flat_skip(struct pflat *f, uint32_t t, unsigned depth);
static void flat_proj(struct pflat *f, const struct pnode *pn, unsigned depth);

/* Emit a union of type node @p t: the index, then per branch its program
 * (flat_skip of the branch, or flat_proj of @p kids[i] when @p kids) and a
 * jump past the others; null branches jump straight past. */
static void flat_union(struct pflat *f, uint32_t t, struct pnode *const *kids, unsigned depth)
{
    kb_projection_t *pj = f->pj;
    const kb_validator_t *v = pj->v;
    const struct kb__vnode *n = &v->nodes[t];
    uint32_t u = pins_add(f, J_UNION, n->n);
    uint32_t first = pjumps_add(f, n->n);
    if (f->status)
        return;
    pj->prog[u].b = first;
    uint32_t *exits = calloc(n->n ? n->n : 1, sizeof *exits);
    if (!exits) {
        f->status = -1;
        return;
    }
    for (uint32_t k = 0; k < n->n && !f->status; k++) {
        uint32_t bt = v->branches[n->first + k];
        pj->jumps[first + k] = (uint32_t)pj->n_prog;
        exits[k] = UINT32_MAX;
        if (v->nodes[bt].op == VOP_NULL)
            continue;
        if (kids)
            flat_proj(f, kids[k], depth);
        else
            flat_skip(f, bt, depth);
        if (k + 1 < n->n)
            exits[k] = pins_add(f, J_JUMP, 0);
    }
    if (!f->status) {
        uint32_t after = (uint32_t)pj->n_prog;
        for (uint32_t k = 0; k < n->n; k++) {
            if (v->nodes[v->branches[n->first + k]].op == VOP_NULL)
                pj->jumps[first + k] = after;
            else if (exits[k] != UINT32_MAX)
                pj->prog[exits[k]].a = after;
        }
    }
    free(exits);
}

/* Emit an array or map loop (@p begin_op J_ARRAY or J_PARRAY): the items
 * are flat_skip of the item type, or flat_proj of @p item. */
static void flat_loop(struct pflat *f, uint32_t t, const struct pnode *item, unsigned depth)
{
    kb_projection_t *pj = f->pj;
    const struct kb__vnode *n = &pj->v->nodes[t];
    if (f->loops >= MAX_PJ_LOOPS) {
        f->status = 1;
        return;
    }
    uint32_t begin = pins_add(f, item ? J_PARRAY : J_ARRAY, 0);
    uint32_t start = (uint32_t)pj->n_prog;
    if (n->op == VOP_MAP)
        pins_add(f, J_STR, 0); /* the key, kept */
    f->loops++;
    if (item)
        flat_proj(f, item, depth + 1);
    else
        flat_skip(f, n->first, depth + 1);
    f->loops--;
    pins_add(f, item ? J_PNEXT : J_NEXT, start);
    if (!f->status)
        pj->prog[begin].a = (uint32_t)pj->n_prog;
}

/* Step over a value of type @p t at nesting @p depth, as kb__validate_skip()
 * does check by check (its bytes are copied or not by the ranges around). */
static void flat_skip(struct pflat *f, uint32_t t, unsigned depth)
{
    kb_projection_t *pj = f->pj;
    const kb_validator_t *v = pj->v;
    const struct kb__vnode *n = &v->nodes[t];
    if (f->status)
        return;
    if (depth > v->max_depth) {
        pins_add(f, J_FAIL, 0);
        return;
    }
    switch ((enum kb__vop)n->op) {
    case VOP_NULL: return;
    case VOP_BOOLEAN: pins_add(f, J_SKIPN, 1); return;
    case VOP_INT:
    case VOP_LONG:
    case VOP_ENUM: pins_add(f, J_VARINT, 0); return;
    case VOP_FLOAT: pins_add(f, J_SKIPN, 4); return;
    case VOP_DOUBLE: pins_add(f, J_SKIPN, 8); return;
    case VOP_FIXED: pins_add(f, J_SKIPN, n->n); return;
    case VOP_BYTES:
    case VOP_STRING: pins_add(f, J_STR, 0); return;
    case VOP_RECORD:
        if (f->open[t]) {
            f->status = 1; /* a recursive type */
            return;
        }
        f->open[t] = 1;
        for (uint32_t k = 0; k < n->n && !f->status; k++)
            flat_skip(f, v->fields[n->first + k].type, depth + 1);
        f->open[t] = 0;
        return;
    case VOP_UNION:
        if (n->n == 2 && v->nodes[v->branches[n->first]].op == VOP_NULL) {
            uint8_t op1 = v->nodes[v->branches[n->first + 1]].op;
            if (op1 == VOP_STRING || op1 == VOP_BYTES) {
                pins_add(f, J_OPTSTR, 0);
                return;
            }
        }
        flat_union(f, t, NULL, depth);
        return;
    case VOP_ARRAY:
    case VOP_MAP: flat_loop(f, t, NULL, depth); return;
    }
    f->status = 1;
}

/* Emit projection node @p pn at nesting @p depth, as apply() does it. On
 * entry and on exit an output range is open (mark set). */
static void flat_proj(struct pflat *f, const struct pnode *pn, unsigned depth)
{
    kb_projection_t *pj = f->pj;
    const kb_validator_t *v = pj->v;
    const struct kb__vnode *n = &v->nodes[pn->type];
    if (f->status)
        return;
    if (depth > v->max_depth) {
        pins_add(f, J_FAIL, 0);
        return;
    }
    switch (pn->kind) {
    case P_COPY: flat_skip(f, pn->type, depth); return;
    case P_PSEUDO: pins_add(f, J_PSEUDO, 0); return;
    case P_RECORD: {
        int open = 1; /* an output range is open */
        for (uint32_t i = 0; i < n->n && !f->status; i++) {
            if (pn->kids[i]) {
                if (!open)
                    pins_add(f, J_MARK, 0);
                open = 1;
                flat_proj(f, pn->kids[i], depth + 1);
            } else {
                if (open)
                    pins_add(f, J_FLUSH, 0);
                open = 0;
                flat_skip(f, v->fields[n->first + i].type, depth + 1);
            }
        }
        if (!open)
            pins_add(f, J_MARK, 0);
        return;
    }
    case P_UNION:
        if (n->n == 2 && v->nodes[v->branches[n->first]].op == VOP_NULL &&
            pn->kids[0]->kind == P_COPY && pn->kids[1]->kind == P_PSEUDO) {
            pins_add(f, J_OPTPSEUDO, 0);
            return;
        }
        flat_union(f, pn->type, pn->kids, depth);
        return;
    case P_ARRAY:
    case P_MAP: flat_loop(f, pn->type, pn->kids[0], depth); return;
    }
    f->status = 1;
}

/* Build pj->prog from pj->root; leaves it NULL when the tree cannot be
 * flattened. Returns -1 when out of memory. */
static int flatten_projection(kb_projection_t *pj)
{
    struct pflat f = {.pj = pj};
    f.open = calloc(pj->v->n_nodes ? pj->v->n_nodes : 1, 1);
    if (!f.open)
        return -1;
    pins_add(&f, J_MARK, 0);
    flat_proj(&f, pj->root, 0);
    pins_add(&f, J_FLUSH, 0);
    pins_add(&f, J_END, 0);
    free(f.open);
    if (f.status) {
        free(pj->prog);
        free(pj->jumps);
        pj->prog = NULL;
        pj->jumps = NULL;
        pj->n_prog = pj->cap_prog = pj->n_jumps = pj->cap_jumps = 0;
    }
    return f.status < 0 ? -1 : 0;
}

void kb_projection_destroy(kb_projection_t *pj)
{
    if (!pj)
        return;
    pnode_free(pj->root);
    free(pj->schema_json);
    free(pj->prog);
    free(pj->jumps);
    kb__hmac_wipe(&pj->hmac);
    free(pj);
}

kb_projection_t *kb_projection_new(const kb_validator_t *v, const char *const *fields,
                                   size_t n_fields, const char *const *pseudo, size_t n_pseudo,
                                   const uint8_t *key, size_t key_len, const char *name,
                                   char *errstr, size_t errstr_size)
{
    kb_projection_t *pj = NULL;
    struct emit e = {.v = v, .top = name};
    struct sel *root = calloc(1, sizeof *root);
    if (!root) {
        kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
        return NULL;
    }
    root->rec = v->root;
    if (v->nodes[v->root].op != VOP_RECORD) {
        kb_err_set(KB_ERR_SCHEMA, errstr, errstr_size, "projections need a record schema");
        goto out_free_sel;
    }
    if (!name || !*name || !key || !key_len) {
        kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "a projection needs a name and a key");
        goto out_free_sel;
    }
    for (size_t i = 0; i < n_fields; i++)
        if (sel_add(v, root, fields[i], 0, errstr, errstr_size))
            goto out_free_sel;
    for (size_t i = 0; i < n_pseudo; i++) {
        /* A pseudonymised field must also be selected (itself or an ancestor). */
        char *dup = strdup(pseudo[i]);
        int selected = 0;
        if (!dup) {
            kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
            goto out_free_sel;
        }
        for (size_t k = 0; k < n_fields && !selected; k++) {
            size_t fl = strlen(fields[k]);
            selected = !strcmp(fields[k], dup) ||
                       (!strncmp(fields[k], dup, fl) && dup[fl] == '.');
        }
        free(dup);
        if (!selected) {
            kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                       "pseudonymise \"%s\": the field is not among the selected fields",
                       pseudo[i]);
            goto out_free_sel;
        }
        if (sel_add(v, root, pseudo[i], 1, errstr, errstr_size))
            goto out_free_sel;
    }
    if (!n_fields) {
        kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "a projection needs at least one field");
        goto out_free_sel;
    }
    pj = calloc(1, sizeof *pj);
    if (!pj) {
        kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto out_free_sel;
    }
    pj->v = v;
    kb__hmac_init(&pj->hmac, key, key_len);
    /* The top record is always a new record (it has its own name). */
    pj->root = pnode_new(P_RECORD, v->root, v->nodes[v->root].n);
    if (!pj->root) {
        kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto out_fail;
    }
    {
        const struct kb__vnode *rn = &v->nodes[v->root];
        for (uint32_t i = 0; i < rn->n; i++) {
            if (!root->kids || !root->kids[i])
                continue;
            pj->root->kids[i] = build(v, v->fields[rn->first + i].type, root->kids[i], 0, 0, 1);
            if (!pj->root->kids[i]) {
                kb_err_set(KB_ERR_RANGE, errstr, errstr_size,
                           "projection of field %s: out of memory or nested too deep",
                           v->fields[rn->first + i].name);
                goto out_fail;
            }
        }
    }
    json_t *schema = emit_proj(&e, pj->root, name);
    if (e.failed || !schema) {
        json_decref(schema);
        kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto out_fail;
    }
    pj->schema_json = json_dumps(schema, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(schema);
    if (!pj->schema_json) {
        kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto out_fail;
    }
    /* The projected schema must be one avro-c (and so every Avro reader) takes. */
    avro_schema_t check = NULL;
    if (avro_schema_from_json_length(pj->schema_json, strlen(pj->schema_json), &check)) {
        kb_err_set(KB_ERR_SCHEMA, errstr, errstr_size, "projected schema rejected by avro-c: %s",
                   avro_strerror());
        goto out_fail;
    }
    avro_schema_decref(check);
    if (flatten_projection(pj)) {
        kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto out_fail;
    }
    goto out_free_sel;
out_fail:
    kb_projection_destroy(pj);
    pj = NULL;
out_free_sel:
    for (size_t i = 0; i < e.n_done; i++)
        free(e.done[i]);
    free(e.done);
    sel_free(root, v);
    return pj;
}

const char *kb_projection_schema_json(const kb_projection_t *pj)
{
    return pj->schema_json;
}

/* ---------------------------------------------------------------- applying */

/* Output buffer of one kb_projection_apply() call. */
struct out {
    uint8_t **buf;
    size_t *cap;
    size_t len;
    int nomem;
};

static int out_reserve(struct out *o, size_t more)
{
    if (o->len + more <= *o->cap)
        return 0;
    size_t ncap = *o->cap ? *o->cap * 2 : 512;
    while (ncap < o->len + more)
        ncap *= 2;
    uint8_t *nb = realloc(*o->buf, ncap);
    if (!nb) {
        o->nomem = 1;
        return -1;
    }
    *o->buf = nb;
    *o->cap = ncap;
    return 0;
}

static int out_put(struct out *o, const uint8_t *p, size_t n)
{
    if (out_reserve(o, n))
        return -1;
    memcpy(*o->buf + o->len, p, n);
    o->len += n;
    return 0;
}

static int out_long(struct out *o, int64_t x)
{
    uint8_t b[10];
    uint64_t u = ((uint64_t)x << 1) ^ (uint64_t)(x >> 63);
    size_t n = 0;
    while (u >= 0x80) {
        b[n++] = (uint8_t)(u | 0x80);
        u >>= 7;
    }
    b[n++] = (uint8_t)u;
    return out_put(o, b, n);
}

static const uint8_t *apply(const kb_projection_t *pj, const struct pnode *pn, const uint8_t *p,
                            const uint8_t *end, struct out *o, unsigned depth);

/* The 32 bytes of @p md as 64 lower-case hex digits at @p out, four bytes
 * (eight digits) per word: byte i's nibbles spread to bytes 2i (high) and
 * 2i + 1 (low), then '0' added, and 'a' - '0' - 10 more where a nibble is
 * above 9 (adding 6 carries into bit 4 exactly then). */
static void hex_lower(const uint8_t md[KB_HMAC_LEN], uint8_t *out)
{
    const uint64_t lo4 = 0x000F000F000F000Full;
    for (size_t i = 0; i < KB_HMAC_LEN; i += 4) {
        uint64_t s = (uint64_t)md[i] | (uint64_t)md[i + 1] << 16 | (uint64_t)md[i + 2] << 32 |
                     (uint64_t)md[i + 3] << 48;
        uint64_t n = ((s >> 4) & lo4) | ((s & lo4) << 8); /* one nibble per byte */
        uint64_t over9 = ((n + 0x0606060606060606ull) >> 4) & 0x0101010101010101ull;
        uint64_t c = n + 0x3030303030303030ull + over9 * ('a' - '0' - 10);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        c = __builtin_bswap64(c);
#endif
        memcpy(out + 2 * i, &c, 8);
    }
}

static const uint8_t *apply_pseudo(const kb_projection_t *pj, const uint8_t *p,
                                   const uint8_t *end, struct out *o)
{
    int64_t len;
    const uint8_t *s = kb__validate_varint(p, end, &len);
    if (!s || len < 0 || (uint64_t)len > (uint64_t)(end - s))
        return NULL;
    if (out_long(o, HMAC_HEX_LEN) || out_reserve(o, HMAC_HEX_LEN + 1))
        return NULL;
    uint8_t md[KB_HMAC_LEN];
    kb__hmac_sha256(&pj->hmac, s, (size_t)len, NULL, 0, md);
    hex_lower(md, *o->buf + o->len);
    o->len += HMAC_HEX_LEN;
    return s + len;
}

static const uint8_t *apply_blocks(const kb_projection_t *pj, const struct pnode *pn,
                                   const uint8_t *p, const uint8_t *end, struct out *o,
                                   unsigned depth)
{
    const kb_validator_t *v = pj->v;
    uint64_t total = 0;
    for (;;) {
        int64_t count;
        p = kb__validate_varint(p, end, &count);
        if (!p)
            return NULL;
        if (count == 0)
            return out_long(o, 0) ? NULL : p;
        if (count < 0) {
            int64_t size;
            if (count == INT64_MIN)
                return NULL;
            count = -count;
            p = kb__validate_varint(p, end, &size); /* byte size: no longer true, dropped */
            if (!p)
                return NULL;
        }
        total += (uint64_t)count;
        if (total > v->max_items || out_long(o, count))
            return NULL;
        for (int64_t i = 0; i < count; i++) {
            if (pn->kind == P_MAP) {
                int64_t kl;
                const uint8_t *ks = kb__validate_varint(p, end, &kl);
                if (!ks || kl < 0 || (uint64_t)kl > (uint64_t)(end - ks) ||
                    out_put(o, p, (size_t)(ks - p) + (size_t)kl))
                    return NULL;
                p = ks + kl;
            }
            p = apply(pj, pn->kids[0], p, end, o, depth + 1);
            if (!p)
                return NULL;
        }
    }
}

static const uint8_t *apply(const kb_projection_t *pj, const struct pnode *pn, const uint8_t *p,
                            const uint8_t *end, struct out *o, unsigned depth)
{
    const kb_validator_t *v = pj->v;
    const struct kb__vnode *n = &v->nodes[pn->type];
    if (depth > v->max_depth)
        return NULL;
    switch (pn->kind) {
    case P_COPY: {
        const uint8_t *q = kb__validate_skip(v, pn->type, p, end, depth);
        if (!q || out_put(o, p, (size_t)(q - p)))
            return NULL;
        return q;
    }
    case P_PSEUDO: return apply_pseudo(pj, p, end, o);
    case P_RECORD:
        for (uint32_t i = 0; i < n->n && p; i++) {
            if (pn->kids[i])
                p = apply(pj, pn->kids[i], p, end, o, depth + 1);
            else
                p = kb__validate_skip(v, v->fields[n->first + i].type, p, end, depth + 1);
        }
        return p;
    case P_UNION: {
        int64_t idx;
        const uint8_t *q = kb__validate_varint(p, end, &idx);
        if (!q || idx < 0 || idx >= (int64_t)n->n || out_put(o, p, (size_t)(q - p)))
            return NULL;
        return apply(pj, pn->kids[idx], q, end, o, depth);
    }
    case P_ARRAY:
    case P_MAP: return apply_blocks(pj, pn, p, end, o, depth);
    }
    return NULL;
}

/* kb__validate_varint() with the one-byte case inline. */
static inline const uint8_t *pj_varint(const uint8_t *p, const uint8_t *end, int64_t *out)
{
    if (__builtin_expect(p < end && *p < 0x80, 1)) {
        *out = (int64_t)((uint64_t)(*p >> 1) ^ (0 - (uint64_t)(*p & 1)));
        return p + 1;
    }
    return kb__validate_varint(p, end, out);
}

/* Block header of an array or map at p, checked as kb__validate_skip()
 * (@p strict) and apply_blocks() (the byte size only read) check it:
 * *count items (0: the end), their byte size dropped; *total counts items
 * against the limit. */
static const uint8_t *pj_block(const kb_validator_t *v, const uint8_t *p, const uint8_t *end,
                               int strict, uint64_t *total, int64_t *count)
{
    int64_t c, size;
    if (!(p = pj_varint(p, end, &c)))
        return NULL;
    if (c < 0) {
        if (c == INT64_MIN)
            return NULL;
        c = -c;
        p = pj_varint(p, end, &size);
        if (!p || (strict && (size < 0 || (uint64_t)size > (uint64_t)(end - p))))
            return NULL;
    }
    *total += (uint64_t)c;
    if (*total > v->max_items)
        return NULL;
    *count = c;
    return p;
}

/* One array or map being walked. */
struct pj_loop {
    uint64_t total; /* items so far, all blocks */
    int64_t left;   /* items left in this block */
};

/* Copy [mark, p) to the output. */
#define PJ_FLUSH()                                                                             \
    do {                                                                                       \
        if (p != mark && out_put(o, mark, (size_t)(p - mark)))                                 \
            return NULL;                                                                       \
    } while (0)

/* Run the flat program (struct pjins) on payload[0..end): the end of the
 * datum, or NULL when it is invalid or the output could not grow. */
static const uint8_t *run_flat(const kb_projection_t *pj, const uint8_t *p, const uint8_t *end,
                               struct out *o)
{
    const kb_validator_t *v = pj->v;
    const struct pjins *const prog = pj->prog;
    const struct pjins *ins = prog;
    const uint8_t *mark = p;
    struct pj_loop loop[MAX_PJ_LOOPS];
    unsigned nl = 0;
    int64_t x;
    for (;;) {
        switch ((enum pjop)ins->op) {
        case J_END: return p;
        case J_FAIL: return NULL;
        case J_VARINT:
            if (!(p = pj_varint(p, end, &x)))
                return NULL;
            ins++;
            continue;
        case J_SKIPN:
            if ((size_t)(end - p) < ins->a)
                return NULL;
            p += ins->a;
            ins++;
            continue;
        case J_OPTSTR:
            if (p >= end)
                return NULL;
            if (*p == 0) {
                p++;
                ins++;
                continue;
            }
            if (*p++ != 2)
                return NULL;
            /* fall through */
        case J_STR:
            if (!(p = pj_varint(p, end, &x)) || x < 0 || (uint64_t)x > (uint64_t)(end - p))
                return NULL;
            p += x;
            ins++;
            continue;
        case J_UNION:
            if (!(p = pj_varint(p, end, &x)) || x < 0 || x >= (int64_t)ins->a)
                return NULL;
            ins = prog + pj->jumps[ins->b + (uint32_t)x];
            continue;
        case J_JUMP: ins = prog + ins->a; continue;
        case J_ARRAY:
        case J_PARRAY: {
            uint64_t total = 0;
            int64_t count;
            if (ins->op == J_PARRAY)
                PJ_FLUSH();
            if (!(p = pj_block(v, p, end, ins->op == J_ARRAY, &total, &count)))
                return NULL;
            if (ins->op == J_PARRAY) {
                if (out_long(o, count))
                    return NULL;
                mark = p;
            }
            if (!count) {
                ins = prog + ins->a;
                continue;
            }
            loop[nl].total = total;
            loop[nl].left = count;
            nl++;
            ins++;
            continue;
        }
        case J_NEXT:
        case J_PNEXT: {
            struct pj_loop *l = &loop[nl - 1];
            int64_t count;
            if (--l->left) {
                ins = prog + ins->a;
                continue;
            }
            if (ins->op == J_PNEXT)
                PJ_FLUSH();
            if (!(p = pj_block(v, p, end, ins->op == J_NEXT, &l->total, &count)))
                return NULL;
            if (ins->op == J_PNEXT) {
                if (out_long(o, count))
                    return NULL;
                mark = p;
            }
            if (!count) {
                nl--;
                ins++;
                continue;
            }
            l->left = count;
            ins = prog + ins->a;
            continue;
        }
        case J_MARK:
            mark = p;
            ins++;
            continue;
        case J_FLUSH:
            PJ_FLUSH();
            ins++;
            continue;
        case J_OPTPSEUDO:
            if (p >= end)
                return NULL;
            if (*p == 0) {
                p++;
                ins++;
                continue;
            }
            if (*p++ != 2)
                return NULL;
            /* fall through */
        case J_PSEUDO:
            PJ_FLUSH();
            if (!(p = apply_pseudo(pj, p, end, o)))
                return NULL;
            mark = p;
            ins++;
            continue;
        }
        return NULL;
    }
}
#undef PJ_FLUSH

/* Both halves below: @p flat 1 runs the flat program, 0 the tree walk. */
static kb_err_t project(const kb_projection_t *pj, int flat, const uint8_t *payload, size_t len,
                        uint8_t **out, size_t *out_cap, size_t *out_len)
{
    static const uint8_t empty[1];
    struct out o = {.buf = out, .cap = out_cap};
    if (!payload)
        payload = empty;
    const uint8_t *end = payload + len;
    const uint8_t *p =
        flat ? run_flat(pj, payload, end, &o) : apply(pj, pj->root, payload, end, &o, 0);
    if (o.nomem)
        return KB_ERR_NOMEM;
    if (!p || p != end)
        return KB_ERR_INVALID;
    *out_len = o.len;
    return KB_OK;
}

kb_err_t kb_projection_apply(const kb_projection_t *pj, const uint8_t *payload, size_t len,
                             uint8_t **out, size_t *out_cap, size_t *out_len)
{
    return project(pj, pj->prog != NULL, payload, len, out, out_cap, out_len);
}

kb_err_t kb__projection_apply_mode(const kb_projection_t *pj, int flat, const uint8_t *payload,
                                   size_t len, uint8_t **out, size_t *out_cap, size_t *out_len)
{
    if (flat && !pj->prog)
        return KB_ERR_STATE;
    return project(pj, flat, payload, len, out, out_cap, out_len);
}
