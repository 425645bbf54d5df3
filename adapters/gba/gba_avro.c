/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * gba_avro.c - compiled Avro binary writer (see gba_avro.h).
 *
 * A plan is the schema tree unfolded into `nodes` (a named type used twice
 * is unfolded twice). Every node owns one slot in the layout of its scope:
 * scope 0 is the top record, each array opens a scope for its items. A
 * union's branches take the slots right after its own, so switching the
 * branch resets one contiguous range, which is what avro-c does when it
 * makes a new branch value. A zeroed slot is the state of a fresh avro-c
 * value: empty string, 0, no union branch (stored as discriminant + 1),
 * empty array.
 *
 * Field paths are resolved when the plan is compiled: `paths` is an
 * open-addressing hash of (scope, "a.b.c") -> the unions to switch on the
 * way (first non-null branch each, as kb_value_path does for writing) and
 * the node reached. A setter then costs one hash lookup and a few stores.
 *
 * Invariants:
 *  1. A value's slots are only ever read through the plan that made them.
 *  2. Slots of an unselected union branch are zero (reset on every switch),
 *     so the writer never sees stale cells.
 *  3. Strings are copied into the arena; the caller's buffers may be reused
 *     right after a setter returns (kb_avw_put_stringn_ref() alone keeps
 *     the caller's pointer, whose bytes must then outlive the encoding).
 */
#include "gba_avro.h"

#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 32 /* nesting of the unfolded schema; deeper is refused */
#define MAX_STEPS 16 /* unions switched on one path */
#define NO_NODE   UINT32_MAX

/* The value cell of one node. */
union kb_avw_slot {
    struct {
        const char *s; /* string/bytes: the arena copy (NULL: empty) */
        int64_t n;     /* string/bytes: length; int/long/boolean: value;
                        * float/double: IEEE bits; union: discriminant + 1 */
    } v;
    struct {
        struct item *head, *tail; /* array: items in order */
    } a;
};

_Static_assert(sizeof(union kb_avw_slot) == 16, "slot is two words");

/* One array item: its slots follow (layout of the array's item scope). */
struct item {
    struct item *next;
    size_t pad; /* keeps the slots 16-byte aligned */
    union kb_avw_slot slots[];
};

/* Where the count of an array lives: next to the head, in the item list. */
struct node {
    uint8_t type;      /* avro_type_t */
    uint32_t slot;     /* cell index in its scope */
    uint32_t slot_end; /* one past the last cell of its subtree */
    uint32_t kids;     /* index into plan->kids: record fields or union branches */
    uint32_t n_kids;
    uint32_t name;        /* record field: offset of its name in plan->names */
    int32_t null_branch;  /* union: index of the null branch, -1 none */
    int32_t write_branch; /* union: branch a path switches to (first non-null, else 0) */
    uint32_t items;       /* array: root node of the item scope */
    uint32_t item_scope;  /* array: that scope */
    uint32_t wops;        /* record, union: its kids as writer ops, from
                           * plan->wops[wops] on (make_wops) */
};

/* How the writer writes one record field or union branch without looking
 * at its node: leaves by their cell, everything else through write_node. */
enum wop_kind { W_NULL, W_STR, W_LONG, W_INT, W_BOOL, W_UNION, W_NODE, W_OPT_STR };

struct wop {
    uint8_t kind;  /* enum wop_kind; W_OPT_STR: a union ["null", "string"],
                    * the usual optional field, written without going
                    * through its branch's op */
    uint32_t nk;   /* W_UNION: its branches */
    uint32_t slot; /* leaf, W_UNION, W_OPT_STR: the cell */
    uint32_t arg;  /* W_UNION: plan->wops index of its branches;
                    * W_OPT_STR: the string's cell */
    uint32_t node; /* the node it writes */
};

/* One resolved path, as the setters read it: the header, then the n_steps
 * union switches spelled out as cells. Variable length (sw[] has exactly
 * n_steps entries), so the handles kb_avw_plan_bind() keeps lie close
 * together: a setter touches one short record, not a sparse table entry. */
struct kb_avw_path {
    uint32_t scope;
    uint8_t n_steps;      /* unions switched, in path order */
    uint8_t target_type;  /* avro_type_t of target */
    uint8_t n_parent;     /* how many of them belong to the parent path */
    uint8_t dotted;       /* text has a '.' (kb_avw_put_null) */
    uint32_t target_slot; /* its cell */
    uint32_t field;       /* node reached by the last name, before its union
                           * switch; NO_NODE for "" */
    uint32_t target;      /* node after every union switch */
    uint32_t len;         /* strlen(text) */
    const char *text;     /* "a.b.c" (owned by the plan's path table) */
    struct {
        uint32_t slot;  /* the union's cell */
        uint16_t cells; /* cells of its branches, right after it */
        uint16_t tag;   /* write_branch + 1, as the cell holds it */
    } sw[];
};

/* A path while the plan is compiled (enumerate): the union nodes on it. */
struct path_build {
    const char *text;
    uint32_t scope;
    uint32_t field, target;
    uint8_t n_parent;
    uint8_t n_steps;
    uint32_t steps[MAX_STEPS]; /* union nodes; each switches to write_branch */
};

struct scope {
    uint32_t root;    /* node of the scope's value */
    uint32_t nslots;  /* cells in one instance */
    uint32_t nulls;   /* kb_avw_init_nulls: index into plan->nulls ... */
    uint32_t n_nulls; /* ... of this many union nodes, in tree order */
    uint32_t image;   /* its fresh value after kb_avw_init_nulls(): index
                       * into plan->null_images */
};

struct kb_avw_plan {
    struct node *nodes;
    size_t n_nodes, cap_nodes;
    uint32_t *kids;
    size_t n_kids, cap_kids;
    char *names; /* NUL-separated field names */
    size_t n_names, cap_names;
    struct scope *scopes;
    size_t n_scopes, cap_scopes;
    struct kb_avw_path **paths; /* hash table, power-of-two size (each
                                 * entry malloc'ed with its text after it) */
    size_t n_paths, cap_paths;
    uint32_t *nulls; /* per scope: the unions init_nulls visits */
    size_t n_nulls, cap_nulls;
    struct wop *wops;                 /* make_wops(): per record and union */
    union kb_avw_slot *null_images;   /* per scope: the cells of a fresh value
                                       * with its nulls set (no pointers in them) */
    const struct kb_avw_path **bound; /* kb_avw_plan_bind(): handles by id,
                                       * pointing into bound_store */
    void *bound_store;                /* copies of the bound paths, one block */
    size_t n_bound;
};

/* ---- arena ---- */

struct block {
    struct block *next;
    size_t pad;
    _Alignas(16) uint8_t data[];
};

void kb_avw_arena_init(struct kb_avw_arena *a)
{
    a->cur = a->inline_block;
    a->end = a->inline_block + sizeof a->inline_block;
    a->blocks = NULL;
}

void kb_avw_arena_fini(struct kb_avw_arena *a)
{
    struct block *b = a->blocks;
    while (b) {
        struct block *next = b->next;
        free(b);
        b = next;
    }
    kb_avw_arena_init(a);
}

/* @p size bytes, 16-byte aligned, zeroed when @p zero. NULL: out of memory. */
static void *arena_alloc(struct kb_avw_arena *a, size_t size, int zero)
{
    size = (size + 15) & ~(size_t)15;
    if ((size_t)(a->end - a->cur) < size) {
        size_t bsize = size > 16384 ? size : 16384;
        struct block *b = malloc(sizeof *b + bsize);
        if (!b)
            return NULL;
        b->next = a->blocks;
        a->blocks = b;
        a->cur = b->data;
        a->end = b->data + bsize;
    }
    void *p = a->cur;
    a->cur += size;
    if (zero)
        memset(p, 0, size);
    return p;
}

/* ---- compiling ---- */

static int grow(void **arr, size_t *cap, size_t need, size_t entry)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 32;
    while (nc < need)
        nc *= 2;
    void *n = realloc(*arr, nc * entry);
    if (!n)
        return -1;
    *arr = n;
    *cap = nc;
    return 0;
}

struct compiler {
    kb_avw_plan_t *plan;
    char *errstr;
    size_t errstr_size;
};

static uint32_t compile(struct compiler *c, avro_schema_t s, uint32_t scope, uint32_t name,
                        int depth, kb_err_t *err);

/* Append @p n child node indices as the kids of @p node. */
static kb_err_t set_kids(kb_avw_plan_t *p, uint32_t node, const uint32_t *kid, size_t n)
{
    if (grow((void **)&p->kids, &p->cap_kids, p->n_kids + n, sizeof *p->kids))
        return KB_ERR_NOMEM;
    memcpy(p->kids + p->n_kids, kid, n * sizeof *kid);
    p->nodes[node].kids = (uint32_t)p->n_kids;
    p->nodes[node].n_kids = (uint32_t)n;
    p->n_kids += n;
    return KB_OK;
}

static uint32_t add_name(kb_avw_plan_t *p, const char *name, kb_err_t *err)
{
    size_t len = strlen(name) + 1;
    if (grow((void **)&p->names, &p->cap_names, p->n_names + len, 1)) {
        *err = KB_ERR_NOMEM;
        return 0;
    }
    memcpy(p->names + p->n_names, name, len);
    p->n_names += len;
    return (uint32_t)(p->n_names - len);
}

static uint32_t compile(struct compiler *c, avro_schema_t s, uint32_t scope, uint32_t name,
                        int depth, kb_err_t *err)
{
    kb_avw_plan_t *p = c->plan;
    while (s && is_avro_link(s))
        s = avro_schema_link_target(s);
    if (!s || depth > MAX_DEPTH) {
        *err = kb_err_set(KB_ERR_SCHEMA, c->errstr, c->errstr_size,
                          "schema nests deeper than %d (recursive?)", MAX_DEPTH);
        return NO_NODE;
    }
    if (grow((void **)&p->nodes, &p->cap_nodes, p->n_nodes + 1, sizeof *p->nodes)) {
        *err = KB_ERR_NOMEM;
        return NO_NODE;
    }
    uint32_t me = (uint32_t)p->n_nodes++;
    struct node n = {0};
    n.type = (uint8_t)avro_typeof(s);
    n.slot = p->scopes[scope].nslots++;
    n.name = name;
    n.null_branch = -1;
    n.items = NO_NODE;
    p->nodes[me] = n;

    uint32_t kid[256];
    size_t nk = 0;
    switch (avro_typeof(s)) {
    case AVRO_NULL:
    case AVRO_BOOLEAN:
    case AVRO_INT32:
    case AVRO_INT64:
    case AVRO_FLOAT:
    case AVRO_DOUBLE:
    case AVRO_STRING:
    case AVRO_BYTES: break;
    case AVRO_RECORD: {
        size_t nf = avro_schema_record_size(s);
        if (nf > sizeof kid / sizeof kid[0]) {
            *err = kb_err_set(KB_ERR_SCHEMA, c->errstr, c->errstr_size,
                              "record with %zu fields is too wide", nf);
            return NO_NODE;
        }
        for (size_t i = 0; i < nf && !*err; i++) {
            uint32_t nm = add_name(p, avro_schema_record_field_name(s, (int)i), err);
            if (*err)
                break;
            kid[nk++] = compile(c, avro_schema_record_field_get_by_index(s, (int)i), scope, nm,
                                depth + 1, err);
        }
        break;
    }
    case AVRO_UNION: {
        size_t nb = avro_schema_union_size(s);
        if (nb > sizeof kid / sizeof kid[0]) {
            *err = kb_err_set(KB_ERR_SCHEMA, c->errstr, c->errstr_size, "union too wide");
            return NO_NODE;
        }
        int32_t nul = -1, first = -1;
        for (size_t i = 0; i < nb && !*err; i++) {
            avro_schema_t b = avro_schema_union_branch(s, (int)i);
            if (is_avro_null(b) && nul < 0)
                nul = (int32_t)i;
            if (!is_avro_null(b) && first < 0)
                first = (int32_t)i;
            kid[nk++] = compile(c, b, scope, 0, depth + 1, err);
        }
        p->nodes[me].null_branch = nul;
        p->nodes[me].write_branch = first < 0 ? 0 : first;
        break;
    }
    case AVRO_ARRAY: {
        if (grow((void **)&p->scopes, &p->cap_scopes, p->n_scopes + 1, sizeof *p->scopes)) {
            *err = KB_ERR_NOMEM;
            return NO_NODE;
        }
        uint32_t is = (uint32_t)p->n_scopes++;
        p->scopes[is].nslots = 0;
        p->scopes[is].root = (uint32_t)p->n_nodes;
        uint32_t items = compile(c, avro_schema_array_items(s), is, 0, depth + 1, err);
        p->nodes[me].items = items;
        p->nodes[me].item_scope = is;
        break;
    }
    default:
        *err = kb_err_set(KB_ERR_SCHEMA, c->errstr, c->errstr_size,
                          "Avro type %s is not supported by the GBA event writer",
                          avro_schema_type_name(s));
        return NO_NODE;
    }
    if (*err)
        return NO_NODE;
    if (nk)
        *err = set_kids(p, me, kid, nk);
    p->nodes[me].slot_end = p->scopes[scope].nslots;
    return me;
}

/* Hash of a path: length, first and last 8 bytes, scope. Paths of one
 * schema differ in those almost always; a collision costs a probe, never a
 * wrong answer. No per-byte multiply chain: this runs for every setter. */
static uint64_t path_hash(uint32_t scope, const char *s, size_t len)
{
    uint64_t a = 0, b = 0;
    if (len >= 8) {
        memcpy(&a, s, 8);
        memcpy(&b, s + len - 8, 8);
    } else {
        for (size_t i = 0; i < len; i++)
            a = a << 8 | (uint8_t)s[i];
    }
    uint64_t h = a * 0x9E3779B97F4A7C15ull ^ b * 0xC2B2AE3D27D4EB4Full ^
                 ((uint64_t)len << 32 | scope) * 0x165667B19E3779F9ull;
    return h ^ h >> 29;
}

static size_t path_size(uint8_t n_steps)
{
    return sizeof(struct kb_avw_path) + n_steps * sizeof(((struct kb_avw_path *)0)->sw[0]);
}

static kb_err_t path_put(kb_avw_plan_t *p, const struct path_build *e)
{
    size_t mask = p->cap_paths - 1;
    size_t len = strlen(e->text);
    for (size_t i = path_hash(e->scope, e->text, len) & mask;; i = (i + 1) & mask) {
        struct kb_avw_path *b = p->paths[i];
        if (!b) {
            for (uint8_t k = 0; k < e->n_steps; k++) {
                const struct node *u = &p->nodes[e->steps[k]];
                if (u->slot_end - u->slot - 1 > UINT16_MAX || u->n_kids >= UINT16_MAX)
                    return KB_ERR_SCHEMA; /* a union this wide is no event schema */
            }
            if (len > UINT32_MAX)
                return KB_ERR_SCHEMA;
            size_t hs = path_size(e->n_steps);
            b = malloc(hs + len + 1);
            if (!b)
                return KB_ERR_NOMEM;
            b->scope = e->scope;
            b->n_steps = e->n_steps;
            b->n_parent = e->n_parent;
            b->field = e->field;
            b->target = e->target;
            b->len = (uint32_t)len;
            b->dotted = memchr(e->text, '.', len) != NULL;
            b->target_type = p->nodes[e->target].type;
            b->target_slot = p->nodes[e->target].slot;
            for (uint8_t k = 0; k < e->n_steps; k++) {
                const struct node *u = &p->nodes[e->steps[k]];
                b->sw[k].slot = u->slot;
                b->sw[k].cells = (uint16_t)(u->slot_end - u->slot - 1);
                b->sw[k].tag = (uint16_t)(u->write_branch + 1);
            }
            char *text = (char *)b + hs;
            memcpy(text, e->text, len + 1);
            b->text = text;
            p->paths[i] = b;
            p->n_paths++;
            return KB_OK;
        }
        if (b->scope == e->scope && !strcmp(b->text, e->text))
            return KB_OK; /* first definition wins, as a name lookup would */
    }
}

/* Every path below @p field (reached through @p prefix with the unions in
 * @p e already switched). */
static kb_err_t enumerate(kb_avw_plan_t *p, uint32_t scope, uint32_t field, char *prefix,
                          size_t plen, struct path_build *e, size_t *count, int dry)
{
    const struct node *nodes = p->nodes;
    uint8_t parent_steps = e->n_steps;
    uint32_t cur = field;
    struct path_build here = *e;
    if (nodes[cur].type == AVRO_UNION) {
        if (here.n_steps >= MAX_STEPS)
            return KB_ERR_SCHEMA;
        here.steps[here.n_steps++] = cur;
        cur = p->kids[nodes[cur].kids + (uint32_t)nodes[cur].write_branch];
    }
    here.text = prefix;
    here.scope = scope;
    here.field = plen || field != p->scopes[scope].root ? field : NO_NODE;
    here.target = cur;
    here.n_parent = parent_steps;
    (*count)++;
    if (!dry) {
        kb_err_t err = path_put(p, &here);
        if (err)
            return err;
    }
    if (nodes[cur].type != AVRO_RECORD)
        return KB_OK;
    for (uint32_t i = 0; i < nodes[cur].n_kids; i++) {
        uint32_t f = p->kids[nodes[cur].kids + i];
        const char *nm = p->names + nodes[f].name;
        size_t nl = strlen(nm);
        if (plen + 1 + nl + 1 > 512)
            return KB_ERR_SCHEMA;
        size_t np = plen;
        if (plen)
            prefix[np++] = '.';
        memcpy(prefix + np, nm, nl + 1);
        kb_err_t err = enumerate(p, scope, f, prefix, np + nl, &here, count, dry);
        prefix[plen] = '\0';
        if (err)
            return err;
    }
    return KB_OK;
}

/* The unions kb_value_init_nulls() visits below @p node: through records,
 * not into union branches (it never descends into them). */
static kb_err_t collect_nulls(kb_avw_plan_t *p, uint32_t node)
{
    const struct node *n = &p->nodes[node];
    if (n->type == AVRO_RECORD) {
        for (uint32_t i = 0; i < n->n_kids; i++) {
            kb_err_t err = collect_nulls(p, p->kids[n->kids + i]);
            if (err)
                return err;
        }
    } else if (n->type == AVRO_UNION && n->null_branch >= 0) {
        if (grow((void **)&p->nulls, &p->cap_nulls, p->n_nulls + 1, sizeof *p->nulls))
            return KB_ERR_NOMEM;
        p->nulls[p->n_nulls++] = node;
    }
    return KB_OK;
}

static void init_nulls_slots(const kb_avw_plan_t *p, uint32_t scope, union kb_avw_slot *slots);

/* Every scope's fresh value with its nulls set, made by the very code of
 * kb_avw_init_nulls(): kb_avw_value_new_nulls() then copies instead. */
static kb_err_t make_null_images(kb_avw_plan_t *p)
{
    size_t total = 0;
    for (size_t s = 0; s < p->n_scopes; s++) {
        p->scopes[s].image = (uint32_t)total;
        total += p->scopes[s].nslots;
    }
    p->null_images = calloc(total ? total : 1, sizeof *p->null_images);
    if (!p->null_images)
        return KB_ERR_NOMEM;
    for (size_t s = 0; s < p->n_scopes; s++)
        init_nulls_slots(p, (uint32_t)s, p->null_images + p->scopes[s].image);
    return KB_OK;
}

/* The op that writes node @p k as write_node() would. */
static struct wop wop_of(const kb_avw_plan_t *p, uint32_t k)
{
    const struct node *n = &p->nodes[k];
    struct wop w = {W_NODE, 0, n->slot, 0, k};
    switch (n->type) {
    case AVRO_NULL: w.kind = W_NULL; break;
    case AVRO_STRING:
    case AVRO_BYTES: w.kind = W_STR; break;
    case AVRO_INT64: w.kind = W_LONG; break;
    case AVRO_INT32: w.kind = W_INT; break;
    case AVRO_BOOLEAN: w.kind = W_BOOL; break;
    case AVRO_UNION:
        w.kind = W_UNION;
        w.nk = n->n_kids;
        w.arg = n->wops;
        if (n->n_kids == 2 && p->nodes[p->kids[n->kids]].type == AVRO_NULL &&
            p->nodes[p->kids[n->kids + 1]].type == AVRO_STRING) {
            w.kind = W_OPT_STR;
            w.arg = p->nodes[p->kids[n->kids + 1]].slot;
        }
        break;
    default: break;
    }
    return w;
}

/* Writer ops for the kids of every record and union (first their places,
 * as a union's branches may come after the record that holds it). */
static kb_err_t make_wops(kb_avw_plan_t *p)
{
    size_t total = 0;
    for (size_t i = 0; i < p->n_nodes; i++) {
        struct node *n = &p->nodes[i];
        n->wops = (uint32_t)total;
        if (n->type == AVRO_RECORD || n->type == AVRO_UNION)
            total += n->n_kids;
    }
    p->wops = calloc(total ? total : 1, sizeof *p->wops);
    if (!p->wops)
        return KB_ERR_NOMEM;
    for (size_t i = 0; i < p->n_nodes; i++) {
        const struct node *n = &p->nodes[i];
        if (n->type != AVRO_RECORD && n->type != AVRO_UNION)
            continue;
        for (uint32_t k = 0; k < n->n_kids; k++)
            p->wops[n->wops + k] = wop_of(p, p->kids[n->kids + k]);
    }
    return KB_OK;
}

kb_avw_plan_t *kb_avw_plan_new(const struct kb_schema *schema, char *errstr, size_t errstr_size)
{
    kb_avw_plan_t *p = calloc(1, sizeof *p);
    if (!p) {
        kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
        return NULL;
    }
    struct compiler c = {p, errstr, errstr_size};
    kb_err_t err = KB_OK;
    if (grow((void **)&p->scopes, &p->cap_scopes, 1, sizeof *p->scopes))
        err = KB_ERR_NOMEM;
    if (!err) {
        p->n_scopes = 1;
        p->scopes[0].root = 0;
        p->scopes[0].nslots = 0;
        compile(&c, schema->avro, 0, 0, 0, &err);
    }
    if (!err && p->nodes[0].type != AVRO_RECORD)
        err = kb_err_set(KB_ERR_SCHEMA, errstr, errstr_size, "%s is not a record schema",
                         schema->type);
    /* Size the path table for at most half load, then fill it. */
    char prefix[512];
    size_t count = 0;
    for (size_t s = 0; s < p->n_scopes && !err; s++) {
        struct path_build none = {0};
        prefix[0] = '\0';
        err = enumerate(p, (uint32_t)s, p->scopes[s].root, prefix, 0, &none, &count, 1);
    }
    for (size_t s = 0; s < p->n_scopes && !err; s++) {
        p->scopes[s].nulls = (uint32_t)p->n_nulls;
        err = collect_nulls(p, p->scopes[s].root);
        p->scopes[s].n_nulls = (uint32_t)(p->n_nulls - p->scopes[s].nulls);
    }
    if (!err) {
        p->cap_paths = 16;
        while (p->cap_paths < 2 * count)
            p->cap_paths *= 2;
        p->paths = calloc(p->cap_paths, sizeof *p->paths);
        if (!p->paths)
            err = KB_ERR_NOMEM;
    }
    for (size_t s = 0; s < p->n_scopes && !err; s++) {
        struct path_build none = {0};
        prefix[0] = '\0';
        err = enumerate(p, (uint32_t)s, p->scopes[s].root, prefix, 0, &none, &count, 0);
    }
    if (!err)
        err = make_null_images(p);
    if (!err)
        err = make_wops(p);
    if (err) {
        if (err == KB_ERR_NOMEM)
            kb_err_set(err, errstr, errstr_size, "out of memory compiling %s", schema->type);
        else if (errstr && errstr_size && !errstr[0])
            kb_err_set(err, errstr, errstr_size, "schema %s cannot be compiled", schema->type);
        kb_avw_plan_destroy(p);
        return NULL;
    }
    return p;
}

void kb_avw_plan_destroy(kb_avw_plan_t *p)
{
    if (!p)
        return;
    for (size_t i = 0; p->paths && i < p->cap_paths; i++) /* NULL: its calloc failed */
        free(p->paths[i]);
    free(p->paths);
    free(p->bound_store);
    free(p->nodes);
    free(p->kids);
    free(p->names);
    free(p->nulls);
    free(p->scopes);
    free(p->null_images);
    free(p->wops);
    free(p->bound);
    free(p);
}

/* ---- building values ---- */

static const struct kb_avw_path *path_get(const kb_avw_plan_t *p, uint32_t scope, const char *s)
{
    size_t len = strlen(s);
    size_t mask = p->cap_paths - 1;
    for (size_t i = path_hash(scope, s, len) & mask;; i = (i + 1) & mask) {
        const struct kb_avw_path *b = p->paths[i];
        if (!b)
            return NULL;
        if (b->len == len && b->scope == scope && !memcmp(b->text, s, len))
            return b;
    }
}

kb_err_t kb_avw_value_new(const kb_avw_plan_t *plan, struct kb_avw_arena *arena,
                          struct kb_avw_value *out)
{
    out->plan = plan;
    out->scope = 0;
    out->arena = arena;
    out->bound = plan->bound;
    out->slots = arena_alloc(arena, plan->scopes[0].nslots * sizeof *out->slots, 1);
    return out->slots ? KB_OK : KB_ERR_NOMEM;
}

/* Select branch @p b of union @p node; another branch than the current one
 * starts afresh (zeroed cells, invariant 2). */
static inline void switch_branch(const kb_avw_plan_t *p, union kb_avw_slot *slots, uint32_t node,
                                 int32_t b)
{
    const struct node *n = &p->nodes[node];
    if (slots[n->slot].v.n == (int64_t)b + 1)
        return;
    uint32_t cells = n->slot_end - n->slot - 1;
    if (cells <= 2) {
        /* the usual ["null", "string"]: two stores, not a call */
        static const union kb_avw_slot zero;
        if (cells > 0)
            slots[n->slot + 1] = zero;
        if (cells > 1)
            slots[n->slot + 2] = zero;
    } else {
        memset(&slots[n->slot + 1], 0, cells * sizeof *slots);
    }
    slots[n->slot].v.n = (int64_t)b + 1;
}

static void init_nulls_slots(const kb_avw_plan_t *p, uint32_t scope, union kb_avw_slot *slots)
{
    /* the recursion of kb_value_init_nulls, flattened at compile time; the
     * listed unions are never inside each other's branches, so the order
     * of the switches does not matter */
    const struct scope *sc = &p->scopes[scope];
    for (uint32_t i = 0; i < sc->n_nulls; i++) {
        uint32_t node = p->nulls[sc->nulls + i];
        switch_branch(p, slots, node, p->nodes[node].null_branch);
    }
}

void kb_avw_init_nulls(struct kb_avw_value *v)
{
    init_nulls_slots(v->plan, v->scope, v->slots);
}

kb_err_t kb_avw_value_new_nulls(const kb_avw_plan_t *plan, struct kb_avw_arena *arena,
                                struct kb_avw_value *out)
{
    const struct scope *sc = &plan->scopes[0];
    out->plan = plan;
    out->scope = 0;
    out->arena = arena;
    out->bound = plan->bound;
    out->slots = arena_alloc(arena, sc->nslots * sizeof *out->slots, 0);
    if (!out->slots)
        return KB_ERR_NOMEM;
    memcpy(out->slots, plan->null_images + sc->image, sc->nslots * sizeof *out->slots);
    return KB_OK;
}

const kb_avw_path_t *kb_avw_path(const kb_avw_plan_t *plan, uint32_t scope, const char *path)
{
    return scope < plan->n_scopes ? path_get(plan, scope, path) : NULL;
}

kb_err_t kb_avw_plan_bind(kb_avw_plan_t *plan, const char *const *paths, const int *parents,
                          size_t n)
{
    const struct kb_avw_path **b = calloc(n ? n : 1, sizeof *b);
    if (!b)
        return KB_ERR_NOMEM;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t scope = 0;
        if (parents[i] >= 0)
            scope = (size_t)parents[i] < i ? kb_avw_item_scope(plan, b[parents[i]]) : UINT32_MAX;
        b[i] = kb_avw_path(plan, scope, paths[i]);
        if (b[i])
            total += (path_size(b[i]->n_steps) + 7) & ~(size_t)7;
    }
    /* the handles in bind order, one after the other: the fields a caller
     * writes in a row share cache lines */
    uint8_t *store = malloc(total ? total : 1);
    if (!store) {
        free(b);
        return KB_ERR_NOMEM;
    }
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        if (!b[i])
            continue;
        size_t sz = path_size(b[i]->n_steps);
        memcpy(store + at, b[i], sz);
        b[i] = (const struct kb_avw_path *)(void *)(store + at);
        at += (sz + 7) & ~(size_t)7;
    }
    free(plan->bound);
    free(plan->bound_store);
    plan->bound = b;
    plan->bound_store = store;
    plan->n_bound = n;
    return KB_OK;
}

const kb_avw_path_t *kb_avw_bound(const kb_avw_plan_t *plan, size_t id)
{
    return id < plan->n_bound ? plan->bound[id] : NULL;
}

uint32_t kb_avw_item_scope(const kb_avw_plan_t *plan, const kb_avw_path_t *array)
{
    if (!array || plan->nodes[array->target].type != AVRO_ARRAY)
        return UINT32_MAX;
    return plan->nodes[array->target].item_scope;
}

int kb_avw_path_is_array(const kb_avw_plan_t *plan, const kb_avw_path_t *h)
{
    return h && plan->nodes[h->target].type == AVRO_ARRAY;
}

/* The union switches of @p e in @p slots (walk() without its checks and
 * its node): what every setter does before its store. */
static inline void switch_path(union kb_avw_slot *slots, const kb_avw_path_t *e)
{
    for (uint8_t i = 0, n = e->n_steps; i < n; i++) {
        union kb_avw_slot *u = &slots[e->sw[i].slot];
        uint16_t tag = e->sw[i].tag;
        if (u->v.n == tag)
            continue;
        static const union kb_avw_slot zero;
        uint16_t cells = e->sw[i].cells;
        if (cells <= 2) {
            /* ["null", "string"]: two stores, not a call */
            if (cells > 0)
                u[1] = zero;
            if (cells > 1)
                u[2] = zero;
        } else {
            memset(u + 1, 0, cells * sizeof *u);
        }
        u->v.n = tag;
    }
}

/* Resolve @p e for writing in @p v: switch its unions; the node reached,
 * or NULL with *err (no such path, or a handle of another scope). */
static inline const struct node *walk(struct kb_avw_value *v, const kb_avw_path_t *e, kb_err_t *err)
{
    const kb_avw_plan_t *p = v->plan;
    if (!e || e->scope != v->scope) {
        *err = KB_ERR_NOTFOUND;
        return NULL;
    }
    switch_path(v->slots, e);
    return &p->nodes[e->target];
}

kb_err_t kb_avw_put_stringn(struct kb_avw_value *v, const kb_avw_path_t *h, const char *str,
                            size_t len)
{
    kb_err_t err = KB_OK;
    const struct node *n = walk(v, h, &err);
    if (!n)
        return err;
    if (n->type != AVRO_STRING)
        return KB_ERR_SCHEMA;
    char *copy = NULL;
    if (len) {
        copy = arena_alloc(v->arena, len, 0);
        if (!copy)
            return KB_ERR_NOMEM;
        memcpy(copy, str, len);
    }
    v->slots[n->slot].v.s = copy;
    v->slots[n->slot].v.n = (int64_t)len;
    return KB_OK;
}

/* kb_avw_put_stringn_ref() for a path that switches a wider union (to a
 * record branch): apart, so that the usual case below needs no call and
 * saves no registers. */
static __attribute__((noinline)) kb_err_t
put_ref_wide(struct kb_avw_value *v, const kb_avw_path_t *h, const char *str, size_t len)
{
    union kb_avw_slot *slots = v->slots;
    switch_path(slots, h);
    if (h->target_type != AVRO_STRING)
        return KB_ERR_SCHEMA;
    slots[h->target_slot].v.s = len ? str : NULL;
    slots[h->target_slot].v.n = (int64_t)len;
    return KB_OK;
}

kb_err_t kb_avw_put_stringn_ref(struct kb_avw_value *v, const kb_avw_path_t *h, const char *str,
                                size_t len)
{
    /* walk() as kb_avw_put_stringn() does, without the node: the path
     * carries the target's type and cell (called for most fields) */
    if (!h || h->scope != v->scope)
        return KB_ERR_NOTFOUND;
    union kb_avw_slot *slots = v->slots;
    for (uint8_t i = 0, n = h->n_steps; i < n; i++) {
        /* switch_path() inline for unions already switched or of up to two
         * cells of branches; a wider one (a record's union, once per value)
         * goes apart, which redoes the switches (those done are no-ops) */
        union kb_avw_slot *u = &slots[h->sw[i].slot];
        if (u->v.n == h->sw[i].tag)
            continue;
        uint16_t cells = h->sw[i].cells;
        if (cells > 2)
            return put_ref_wide(v, h, str, len);
        if (cells > 0)
            u[1].v.s = NULL, u[1].v.n = 0;
        if (cells > 1)
            u[2].v.s = NULL, u[2].v.n = 0; /* ["null", "string"]: the usual */
        u->v.n = h->sw[i].tag;
    }
    if (h->target_type != AVRO_STRING)
        return KB_ERR_SCHEMA;
    slots[h->target_slot].v.s = len ? str : NULL;
    slots[h->target_slot].v.n = (int64_t)len;
    return KB_OK;
}

kb_err_t kb_avw_set_stringn(struct kb_avw_value *v, const char *path, const char *str, size_t len)
{
    return kb_avw_put_stringn(v, path_get(v->plan, v->scope, path), str, len);
}

kb_err_t kb_avw_put_null(struct kb_avw_value *v, const kb_avw_path_t *e)
{
    /* like kb_value_set_string with NULL: the parent path is walked for
     * writing and the field itself must be a union with a null branch */
    const kb_avw_plan_t *p = v->plan;
    if (!e || e->scope != v->scope)
        return KB_ERR_NOTFOUND;
    uint32_t root = p->scopes[v->scope].root;
    if (e->field == NO_NODE || (!e->dotted && p->nodes[root].type != AVRO_RECORD))
        return KB_ERR_NOTFOUND;
    for (uint8_t i = 0; i < e->n_parent; i++) {
        /* switch_branch() to write_branch, with the node's numbers taken
         * from the path (as walk() does) */
        union kb_avw_slot *u = &v->slots[e->sw[i].slot];
        if (u->v.n == e->sw[i].tag)
            continue;
        uint16_t cells = e->sw[i].cells;
        if (cells)
            memset(u + 1, 0, cells * sizeof *u);
        u->v.n = e->sw[i].tag;
    }
    const struct node *f = &p->nodes[e->field];
    if (f->type != AVRO_UNION || f->null_branch < 0)
        return KB_ERR_SCHEMA;
    switch_branch(p, v->slots, e->field, f->null_branch);
    return KB_OK;
}

kb_err_t kb_avw_set_string(struct kb_avw_value *v, const char *path, const char *str)
{
    const kb_avw_path_t *e = path_get(v->plan, v->scope, path);
    return str ? kb_avw_put_stringn(v, e, str, strlen(str)) : kb_avw_put_null(v, e);
}

static kb_err_t put_number(struct kb_avw_value *v, const kb_avw_path_t *h, int type, int64_t val)
{
    kb_err_t err = KB_OK;
    const struct node *n = walk(v, h, &err);
    if (!n)
        return err;
    if (n->type != type)
        return KB_ERR_SCHEMA;
    v->slots[n->slot].v.n = val;
    return KB_OK;
}

kb_err_t kb_avw_put_long(struct kb_avw_value *v, const kb_avw_path_t *h, int64_t val)
{
    return put_number(v, h, AVRO_INT64, val);
}

kb_err_t kb_avw_put_int(struct kb_avw_value *v, const kb_avw_path_t *h, int32_t val)
{
    return put_number(v, h, AVRO_INT32, val);
}

kb_err_t kb_avw_put_boolean(struct kb_avw_value *v, const kb_avw_path_t *h, int val)
{
    return put_number(v, h, AVRO_BOOLEAN, val ? 1 : 0);
}

kb_err_t kb_avw_set_long(struct kb_avw_value *v, const char *path, int64_t val)
{
    return kb_avw_put_long(v, path_get(v->plan, v->scope, path), val);
}

kb_err_t kb_avw_set_int(struct kb_avw_value *v, const char *path, int32_t val)
{
    return kb_avw_put_int(v, path_get(v->plan, v->scope, path), val);
}

kb_err_t kb_avw_set_boolean(struct kb_avw_value *v, const char *path, int val)
{
    return kb_avw_put_boolean(v, path_get(v->plan, v->scope, path), val);
}

/* Append a fresh item to the array @p h names: zeroed, or (@p nulls) with
 * its nulls set. */
static kb_err_t append_item(struct kb_avw_value *v, const kb_avw_path_t *h,
                            struct kb_avw_value *item, int nulls)
{
    kb_err_t err = KB_OK;
    const struct node *n = walk(v, h, &err);
    if (!n)
        return err;
    if (n->type != AVRO_ARRAY)
        return KB_ERR_SCHEMA;
    const kb_avw_plan_t *p = v->plan;
    const struct scope *sc = &p->scopes[n->item_scope];
    size_t nslots = sc->nslots;
    struct item *it = arena_alloc(v->arena, sizeof *it + nslots * sizeof it->slots[0], !nulls);
    if (!it)
        return KB_ERR_NOMEM;
    if (nulls) {
        it->next = NULL;
        memcpy(it->slots, p->null_images + sc->image, nslots * sizeof it->slots[0]);
    }
    union kb_avw_slot *s = &v->slots[n->slot];
    if (s->a.tail)
        s->a.tail->next = it;
    else
        s->a.head = it;
    s->a.tail = it;
    item->plan = p;
    item->scope = n->item_scope;
    item->slots = it->slots;
    item->arena = v->arena;
    item->bound = p->bound;
    return KB_OK;
}

kb_err_t kb_avw_put_append(struct kb_avw_value *v, const kb_avw_path_t *h,
                           struct kb_avw_value *item)
{
    return append_item(v, h, item, 0);
}

kb_err_t kb_avw_put_append_nulls(struct kb_avw_value *v, const kb_avw_path_t *h,
                                 struct kb_avw_value *item)
{
    return append_item(v, h, item, 1);
}

kb_err_t kb_avw_append_stringn(struct kb_avw_value *v, const kb_avw_path_t *h, const char *str,
                               size_t len)
{
    kb_err_t err = KB_OK;
    const struct node *n = walk(v, h, &err);
    if (!n)
        return err;
    const kb_avw_plan_t *p = v->plan;
    if (n->type != AVRO_ARRAY)
        return KB_ERR_SCHEMA;
    const struct node *in = &p->nodes[n->items];
    if (in->type != AVRO_STRING || p->scopes[n->item_scope].nslots != 1)
        return KB_ERR_SCHEMA;
    /* the item, its one slot and the string's copy in one allocation */
    struct item *it = arena_alloc(v->arena, sizeof *it + sizeof it->slots[0] + len, 0);
    if (!it)
        return KB_ERR_NOMEM;
    it->next = NULL;
    char *copy = (char *)(it->slots + 1);
    if (len)
        memcpy(copy, str, len);
    it->slots[0].v.s = len ? copy : NULL;
    it->slots[0].v.n = (int64_t)len;
    union kb_avw_slot *s = &v->slots[n->slot];
    if (s->a.tail)
        s->a.tail->next = it;
    else
        s->a.head = it;
    s->a.tail = it;
    return KB_OK;
}

kb_err_t kb_avw_append_strings(struct kb_avw_value *v, const kb_avw_path_t *h, const char *strs,
                               size_t each, size_t n)
{
    kb_err_t err = KB_OK;
    const struct node *nd = walk(v, h, &err);
    if (!nd)
        return err;
    const kb_avw_plan_t *p = v->plan;
    if (nd->type != AVRO_ARRAY || p->nodes[nd->items].type != AVRO_STRING ||
        p->scopes[nd->item_scope].nslots != 1)
        return KB_ERR_SCHEMA;
    if (!n)
        return KB_OK;
    /* n items of one slot each, then the strings' copies: one allocation */
    size_t item_size = sizeof(struct item) + sizeof(union kb_avw_slot);
    uint8_t *block = arena_alloc(v->arena, n * item_size + n * each, 0);
    if (!block)
        return KB_ERR_NOMEM;
    char *copy = (char *)block + n * item_size;
    if (each)
        memcpy(copy, strs, n * each);
    union kb_avw_slot *s = &v->slots[nd->slot];
    for (size_t i = 0; i < n; i++) {
        struct item *it = (struct item *)(void *)(block + i * item_size);
        it->next = NULL;
        it->slots[0].v.s = each ? copy + i * each : NULL;
        it->slots[0].v.n = (int64_t)each;
        if (s->a.tail)
            s->a.tail->next = it;
        else
            s->a.head = it;
        s->a.tail = it;
    }
    return KB_OK;
}

kb_err_t kb_avw_append(struct kb_avw_value *v, const char *path, struct kb_avw_value *item)
{
    return kb_avw_put_append(v, path_get(v->plan, v->scope, path), item);
}

int kb_avw_has_array(const struct kb_avw_value *v, const char *path)
{
    return kb_avw_path_is_array(v->plan, path_get(v->plan, v->scope, path));
}

/* ---- writing ---- */

struct out {
    uint8_t *buf; /* caller's storage, or malloc'ed once grown (heap) */
    size_t len, cap;
    int heap;   /* buf is malloc'ed */
    int failed; /* out of memory */
};

static uint8_t *grow_out(struct out *o, size_t n)
{
    size_t nc = o->cap ? o->cap * 2 : 1024;
    while (nc < o->len + n)
        nc *= 2;
    uint8_t *b = o->heap ? realloc(o->buf, nc) : malloc(nc);
    if (!b) {
        o->failed = 1;
        return NULL;
    }
    if (!o->heap && o->len)
        memcpy(b, o->buf, o->len);
    o->buf = b;
    o->cap = nc;
    o->heap = 1;
    return o->buf + o->len;
}

/* Room for @p n more bytes at o->buf + o->len; NULL (and o->failed) when
 * out of memory. */
static inline uint8_t *reserve(struct out *o, size_t n)
{
    if (o->len + n <= o->cap)
        return o->buf + o->len;
    return grow_out(o, n);
}

/* Avro long at @p b: zig-zag, then base-128 varint, low group first.
 * Returns the bytes written (at most 10). */
static inline size_t varint(uint8_t *b, int64_t v)
{
    if ((uint64_t)v < 64) {
        b[0] = (uint8_t)(v << 1); /* lengths, branches, counts: one byte */
        return 1;
    }
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    size_t n = 0;
    while (z > 0x7F) {
        b[n++] = (uint8_t)((z & 0x7F) | 0x80);
        z >>= 7;
    }
    b[n++] = (uint8_t)z;
    return n;
}

static inline void put_long(struct out *o, int64_t v)
{
    uint8_t *b = reserve(o, 10);
    if (b)
        o->len += varint(b, v);
}

/* memcpy(@p d, @p s, @p len) for the short strings of an event (codes,
 * dates, names) without a library call: fixed-size copies that overlap. */
static inline void copy_short(uint8_t *d, const void *src, size_t len)
{
    const uint8_t *s = src;
    if (len >= 8 && len <= 16) {
        uint64_t a, b;
        memcpy(&a, s, 8);
        memcpy(&b, s + len - 8, 8);
        memcpy(d, &a, 8);
        memcpy(d + len - 8, &b, 8);
    } else if (len >= 4 && len < 8) {
        uint32_t a, b;
        memcpy(&a, s, 4);
        memcpy(&b, s + len - 4, 4);
        memcpy(d, &a, 4);
        memcpy(d + len - 4, &b, 4);
    } else if (len < 4) {
        for (size_t i = 0; i < len; i++)
            d[i] = s[i];
    } else {
        memcpy(d, s, len);
    }
}

static inline void put_bytes(struct out *o, const void *s, size_t len)
{
    uint8_t *b = reserve(o, len + 10);
    if (!b)
        return;
    size_t n = varint(b, (int64_t)len);
    copy_short(b + n, s, len);
    o->len += n + len;
}

static kb_err_t write_node(const kb_avw_plan_t *p, const union kb_avw_slot *slots, uint32_t node,
                           struct out *o, char *errstr, size_t errstr_size);

/* The fields of record @p n in order, by their ops: a leaf (also as the
 * branch of a union) is written from its cell, without its node. One
 * reservation per field covers its branch, a length and a string of up to
 * 16 bytes (most values: codes, dates, numbers, short names); longer
 * strings and nodes reserve for themselves. */
static kb_err_t write_record(const kb_avw_plan_t *p, const union kb_avw_slot *slots,
                             const struct node *n, struct out *o, char *errstr, size_t errstr_size)
{
    const struct wop *ops = p->wops + n->wops;
    /* The output's place in locals, given back to @p o around every call
     * that writes it (put_bytes, write_node, grow_out) and on return: the
     * bytes stored through b may alias anything in memory, so o->len would
     * be reloaded and stored again after each of them. */
    uint8_t *buf = o->buf;
    size_t len = o->len, cap = o->cap;
#define SYNC_OUT() (o->len = len)
#define LOAD_OUT() (buf = o->buf, len = o->len, cap = o->cap)
    for (uint32_t i = 0, nk = n->n_kids; i < nk; i++) {
        const struct wop *w = &ops[i];
        /* reserve(o, 10 + 10 + 16) on the locals; NULL: out of memory
         * (o->failed), and the walk goes on writing nothing, as before */
        uint8_t *b;
        if (cap - len >= 10 + 10 + 16) {
            b = buf + len;
        } else {
            SYNC_OUT();
            b = grow_out(o, 10 + 10 + 16);
            LOAD_OUT();
        }
        size_t at = 0;
        if (w->kind == W_OPT_STR) {
            /* branch 0 (null) or 1 (the string), as W_UNION + W_STR would */
            int64_t tag = slots[w->slot].v.n;
            if (tag != 1 && tag != 2) {
                SYNC_OUT();
                return kb_err_set(KB_ERR_SCHEMA, errstr, errstr_size,
                                  "avro write: union without a selected branch");
            }
            if (tag == 1) {
                if (b) {
                    b[0] = 0;
                    len++;
                }
                continue;
            }
            const union kb_avw_slot *s = &slots[w->arg];
            const char *str = s->v.s;
            size_t sl = (size_t)s->v.n;
            if (b && sl <= 16) {
                b[0] = 2;
                at = 1 + varint(b + 1, (int64_t)sl);
                copy_short(b + at, str, sl);
                len += at + sl;
            } else {
                if (b)
                    b[0] = 2, len++;
                SYNC_OUT();
                put_bytes(o, str, sl);
                LOAD_OUT();
            }
            continue;
        }
        if (w->kind == W_UNION) {
            int64_t br = slots[w->slot].v.n - 1;
            if (br < 0 || br >= (int64_t)w->nk) {
                SYNC_OUT();
                return kb_err_set(KB_ERR_SCHEMA, errstr, errstr_size,
                                  "avro write: union without a selected branch");
            }
            if (b)
                at = varint(b, br);
            w = &p->wops[w->arg + (uint32_t)br];
        }
        const union kb_avw_slot *s = &slots[w->slot];
        switch (w->kind) {
        case W_NULL: break;
        case W_STR: {
            const char *str = s->v.s;
            size_t sl = (size_t)s->v.n;
            if (b && sl <= 16) {
                at += varint(b + at, (int64_t)sl);
                copy_short(b + at, str, sl);
                at += sl;
            } else {
                len += at;
                at = 0;
                SYNC_OUT();
                put_bytes(o, str, sl);
                LOAD_OUT();
            }
            break;
        }
        case W_LONG:
            if (b)
                at += varint(b + at, s->v.n);
            break;
        case W_INT:
            if (b)
                at += varint(b + at, (int32_t)s->v.n);
            break;
        case W_BOOL:
            if (b)
                b[at++] = s->v.n ? 1 : 0;
            break;
        default: {
            /* records, arrays, floats (and a union as a branch, which Avro
             * does not allow anyway): as before */
            len += at;
            at = 0;
            SYNC_OUT();
            kb_err_t err = write_node(p, slots, w->node, o, errstr, errstr_size);
            LOAD_OUT();
            if (err)
                return err;
        }
        }
        len += at;
    }
    SYNC_OUT();
#undef SYNC_OUT
#undef LOAD_OUT
    return KB_OK;
}

static kb_err_t write_node(const kb_avw_plan_t *p, const union kb_avw_slot *slots, uint32_t node,
                           struct out *o, char *errstr, size_t errstr_size)
{
    const struct node *n = &p->nodes[node];
    const union kb_avw_slot *s = &slots[n->slot];
    switch (n->type) {
    case AVRO_NULL: return KB_OK;
    case AVRO_BOOLEAN: {
        uint8_t *b = reserve(o, 1);
        if (b) {
            *b = s->v.n ? 1 : 0;
            o->len++;
        }
        return KB_OK;
    }
    case AVRO_INT32: put_long(o, (int32_t)s->v.n); return KB_OK;
    case AVRO_INT64: put_long(o, s->v.n); return KB_OK;
    case AVRO_FLOAT:
    case AVRO_DOUBLE: {
        /* IEEE bits, little-endian; float keeps its 4 low bytes */
        size_t w = n->type == AVRO_FLOAT ? 4 : 8;
        uint8_t *b = reserve(o, w);
        if (b) {
            uint64_t bits = (uint64_t)s->v.n;
            for (size_t i = 0; i < w; i++)
                b[i] = (uint8_t)(bits >> (8 * i));
            o->len += w;
        }
        return KB_OK;
    }
    case AVRO_STRING:
    case AVRO_BYTES: put_bytes(o, s->v.s, (size_t)s->v.n); return KB_OK;
    case AVRO_RECORD: return write_record(p, slots, n, o, errstr, errstr_size);
    case AVRO_UNION: {
        int64_t b = s->v.n - 1;
        if (b < 0 || b >= n->n_kids)
            return kb_err_set(KB_ERR_SCHEMA, errstr, errstr_size,
                              "avro write: union without a selected branch");
        put_long(o, b);
        return write_node(p, slots, p->kids[n->kids + (uint32_t)b], o, errstr, errstr_size);
    }
    case AVRO_ARRAY: {
        /* as avro-c: one block with every item, then the 0 terminator */
        size_t count = 0;
        for (const struct item *it = s->a.head; it; it = it->next)
            count++;
        if (count) {
            put_long(o, (int64_t)count);
            const struct node *in = &p->nodes[n->items];
            /* what write_node() would do per item, chosen once: arrays
             * of strings (rubrieken) and of records (warnings, parents) */
            if (in->type == AVRO_STRING) {
                /* put_bytes() per item, with the output's place in locals
                 * (as in write_record) */
                uint8_t *buf = o->buf;
                size_t len = o->len, cap = o->cap;
                for (const struct item *it = s->a.head; it; it = it->next) {
                    const char *str = it->slots[in->slot].v.s;
                    size_t sl = (size_t)it->slots[in->slot].v.n;
                    if (sl <= 16 && cap - len >= 10 + 16) {
                        size_t at = varint(buf + len, (int64_t)sl);
                        copy_short(buf + len + at, str, sl);
                        len += at + sl;
                    } else {
                        o->len = len;
                        put_bytes(o, str, sl);
                        buf = o->buf, len = o->len, cap = o->cap;
                    }
                }
                o->len = len;
            } else {
                for (const struct item *it = s->a.head; it; it = it->next) {
                    kb_err_t err = in->type == AVRO_RECORD
                                       ? write_record(p, it->slots, in, o, errstr, errstr_size)
                                       : write_node(p, it->slots, n->items, o, errstr, errstr_size);
                    if (err)
                        return err;
                }
            }
        }
        put_long(o, 0);
        return KB_OK;
    }
    default: return kb_err_set(KB_ERR_SCHEMA, errstr, errstr_size, "avro write: unsupported type");
    }
}

kb_err_t kb_avw_encode_append(const struct kb_avw_value *v, int32_t schema_id,
                              struct kb_avw_buf *buf, char *errstr, size_t errstr_size)
{
    struct out o = {buf->data, buf->len, buf->cap, buf->heap, 0};
    size_t start = o.len;
    uint8_t *b = reserve(&o, 5 + 256); /* a short event needs no further check */
    kb_err_t err = KB_OK;
    if (b) {
        /* Confluent framing: magic 0, schema id big-endian */
        b[0] = 0;
        b[1] = (uint8_t)((uint32_t)schema_id >> 24);
        b[2] = (uint8_t)((uint32_t)schema_id >> 16);
        b[3] = (uint8_t)((uint32_t)schema_id >> 8);
        b[4] = (uint8_t)schema_id;
        o.len += 5;
        err =
            write_node(v->plan, v->slots, v->plan->scopes[v->scope].root, &o, errstr, errstr_size);
    }
    if (!err && o.failed)
        err = KB_ERR_NOMEM;
    /* grown or not, the storage is the caller's now */
    buf->data = o.buf;
    buf->cap = o.cap;
    buf->heap = o.heap;
    buf->len = err ? start : o.len;
    return err;
}

kb_err_t kb_avw_encode(const struct kb_avw_value *v, int32_t schema_id, uint8_t **out,
                       size_t *out_len, char *errstr, size_t errstr_size)
{
    struct kb_avw_buf b = {NULL, 0, 0, 1};
    kb_err_t err = kb_avw_encode_append(v, schema_id, &b, errstr, errstr_size);
    if (err) {
        free(b.data);
        return err;
    }
    *out = b.data;
    *out_len = b.len;
    return KB_OK;
}
