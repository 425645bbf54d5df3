/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * sub.c - YAML subscription files (libyaml document API), checked strictly
 * so a typo in a reviewed file is an error at load time, not a silent
 * non-delivery or, worse, a delivery beyond the subscriber's purpose.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <yaml.h>

#include "ketenbus/check.h"
#include "ketenbus/clock.h"
#include "ketenbus/event.h"
#include "ketenbus/kafka.h"
#include "ketenbus/sub.h"

#include "hmac.h"
#include "idset.h"
#include "sub_int.h"

/* Everything the checker needs to say where a problem is. */
struct ctx {
    const char *file;
    yaml_document_t *doc;
    char *errstr;
    size_t errstr_size;
    const uint8_t *key;   /* subject key for follow-list pseudonyms (may be NULL) */
    size_t key_len;
    int untrusted;       /* the file came from a request, not the operator: no follow files */
    size_t filter_nodes; /* filter nodes of the subscription being parsed */
    const struct kb__subs_bound *bound; /* when to give up; NULL = never */
};

/* KB_ERR_TIMEOUT with errstr set once @p bound says to give up, else 0. */
static kb_err_t out_of_time(const struct kb__subs_bound *bound, const char *file, char *errstr,
                            size_t errstr_size)
{
    if (!bound)
        return KB_OK;
    if (bound->stop && atomic_load(bound->stop))
        return kb_err_set(KB_ERR_TIMEOUT, errstr, errstr_size, "%s: load abandoned (stopping)",
                          file);
    if (bound->deadline_ms && kb_mono_ms() >= bound->deadline_ms)
        return kb_err_set(KB_ERR_TIMEOUT, errstr, errstr_size,
                          "%s: not loaded within the time allowed", file);
    return KB_OK;
}

static kb_err_t fail(struct ctx *c, const yaml_node_t *node, const char *what, const char *arg)
{
    return kb_err_set(KB_ERR_CONF, c->errstr, c->errstr_size, "%s:%zu:%zu: %s%s%s", c->file,
                      node ? node->start_mark.line + 1 : 0,
                      node ? node->start_mark.column + 1 : 0, what, arg ? " " : "",
                      arg ? arg : "");
}

static kb_err_t fail_at(struct ctx *c, size_t line, size_t column, const char *what)
{
    return kb_err_set(KB_ERR_CONF, c->errstr, c->errstr_size, "%s:%zu:%zu: %s", c->file, line,
                      column, what);
}

static int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The stat fields of @p id from @p st (racy and sha256 cleared). */
static void file_id_of(const struct stat *st, struct kb_file_id *id)
{
    memset(id, 0, sizeof *id);
    id->dev = (uint64_t)st->st_dev;
    id->ino = (uint64_t)st->st_ino;
    id->size = (int64_t)st->st_size;
    id->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
    id->ctime_ns = (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
}

static int same_stat(const struct kb_file_id *a, const struct kb_file_id *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns;
}

/* 1 when a read of @p id's file that began at @p read_ns (wall clock) may
 * be followed by a write in the same time stamp tick as its last change,
 * which no stat field would show. The change time alone tells when that
 * was: every write and every utimensat sets it from the kernel's clock, and
 * nobody can set it, whereas an mtime in the future (touch -d, rsync -t)
 * would keep the file racy, read and hashed at every look, for good. A
 * change time ahead (a file server's clock) is racy until the clock passed
 * it. */
static int file_id_racy(const struct kb_file_id *id, int64_t read_ns)
{
    return read_ns - id->ctime_ns < KB_FILE_TICK_NS;
}

/*
 * Read all of @p path into a new NUL-terminated buffer (*@p len bytes before
 * the NUL), refusing anything but a regular file of at most @p max bytes.
 * A FIFO, /dev/stdin or /dev/zero is refused rather than read: loads run on
 * the router's routing thread and on the admin API's subscriptions worker,
 * which must never wait. stat() first, so a device is not even opened (opening
 * some has effects of its own); then opened non-blocking and checked again
 * with fstat, in case the name was swapped meanwhile. Symbolic links are
 * followed (no O_NOFOLLOW): Kubernetes mounts ConfigMap files as links.
 * The file's identity at fstat goes into @p id (may be NULL), with racy set
 * when it was read within a tick of its last change (file_id_racy); the
 * caller hashes the content then. KB_ERR_IO
 * (cannot open or read) or KB_ERR_CONF (not a regular file, too large) with
 * the reason in @p why.
 */
static kb_err_t read_regular(const char *path, size_t max, char **out, size_t *len,
                             struct kb_file_id *id, char *why, size_t why_size)
{
    /* Before the read: a write during it must count as after this. */
    int64_t read_ns = wall_ns();
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(why, why_size, "%s", strerror(errno));
        return KB_ERR_IO;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(why, why_size, "not a regular file (a FIFO or device could block the reader)");
        return KB_ERR_CONF;
    }
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        snprintf(why, why_size, "%s", strerror(errno));
        return KB_ERR_IO;
    }
    kb_err_t err = KB_OK;
    char *buf = NULL;
    size_t got = 0;
    if (fstat(fd, &st) != 0) {
        snprintf(why, why_size, "%s", strerror(errno));
        err = KB_ERR_IO;
    } else if (!S_ISREG(st.st_mode)) {
        snprintf(why, why_size, "not a regular file (a FIFO or device could block the reader)");
        err = KB_ERR_CONF;
    } else if (st.st_size < 0 || (uint64_t)st.st_size > max) {
        snprintf(why, why_size, "larger than the limit of %zu bytes", max);
        err = KB_ERR_CONF;
    } else if (!(buf = malloc((size_t)st.st_size + 1))) {
        err = KB_ERR_NOMEM;
    }
    /* At most the size fstat saw: a file that grows meanwhile changes its
     * stamp, so the router reads it again. */
    while (!err && got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(why, why_size, "%s", strerror(errno));
            err = KB_ERR_IO;
        } else if (r == 0) {
            break;
        } else {
            got += (size_t)r;
        }
    }
    close(fd);
    if (err) {
        free(buf);
        return err;
    }
    buf[got] = '\0';
    *out = buf;
    *len = got;
    if (id) {
        file_id_of(&st, id);
        id->racy = file_id_racy(id, read_ns);
    }
    return KB_OK;
}

uint64_t kb_file_changed(const char *path, struct kb_file_id *id, size_t max)
{
    int64_t look_ns = wall_ns();
    struct kb_file_id now = {0};
    struct stat st;
    if (stat(path, &st) == 0)
        file_id_of(&st, &now);
    if (same_stat(&now, id) && !id->racy)
        return 0;
    if (same_stat(&now, id)) {
        /* Racy: only the content can tell. */
        char *buf, why[128];
        size_t len;
        struct kb_file_id read_id;
        if (read_regular(path, max, &buf, &len, &read_id, why, sizeof why) == KB_OK) {
            kb__sha256(buf, len, now.sha256);
            /* A follow list holds identifiers in clear. */
            explicit_bzero(buf, len);
            free(buf);
            if (same_stat(&read_id, id) && !memcmp(now.sha256, id->sha256, sizeof now.sha256)) {
                if (!file_id_racy(id, look_ns))
                    id->racy = 0;
                return 0;
            }
        } else {
            memset(&now, 0, sizeof now); /* unreadable: as if gone */
        }
    }
    uint64_t h = 14695981039346656037ull;
#define MIX(v) (h = (h ^ (uint64_t)(v)) * 1099511628211ull)
    MIX(now.dev);
    MIX(now.ino);
    MIX(now.size);
    MIX(now.mtime_ns);
    MIX(now.ctime_ns);
    for (size_t i = 0; i < sizeof now.sha256; i++)
        MIX(now.sha256[i]);
#undef MIX
    return h | 1;
}

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return 99;
    size_t d[64][64];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
            d[i][j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
    return d[la][lb];
}

/* Error for an unknown key, suggesting the nearest allowed one. */
static kb_err_t unknown_key(struct ctx *c, const yaml_node_t *key, const char *const *allowed)
{
    const char *name = (const char *)key->data.scalar.value;
    const char *best = NULL;
    size_t best_d = 99;
    for (size_t i = 0; allowed[i]; i++) {
        size_t d = edit_distance(name, allowed[i]);
        if (d < best_d) {
            best_d = d;
            best = allowed[i];
        }
    }
    char msg[256];
    if (best && best_d <= 3)
        snprintf(msg, sizeof msg, "unknown key \"%s\" (did you mean \"%s\"?)", name, best);
    else
        snprintf(msg, sizeof msg, "unknown key \"%s\"", name);
    return fail(c, key, msg, NULL);
}

/*
 * Name of mapping key @p k, or NULL after setting an error: a key must be a
 * string, and may appear only once in its mapping (a repeated key would
 * silently override what a reviewer read first).
 */
static const char *key_name(struct ctx *c, yaml_node_t *map, yaml_node_pair_t *pair,
                            kb_err_t *err)
{
    yaml_node_t *k = yaml_document_get_node(c->doc, pair->key);
    if (!k || k->type != YAML_SCALAR_NODE) {
        *err = fail(c, k, "keys must be strings", NULL);
        return NULL;
    }
    const char *name = (const char *)k->data.scalar.value;
    for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < pair; q++) {
        yaml_node_t *qk = yaml_document_get_node(c->doc, q->key);
        if (qk && qk->type == YAML_SCALAR_NODE && !strcmp((const char *)qk->data.scalar.value, name)) {
            char msg[160];
            snprintf(msg, sizeof msg, "duplicate key \"%.100s\"", name);
            *err = fail(c, k, msg, NULL);
            return NULL;
        }
    }
    return name;
}

static kb_err_t scalar(struct ctx *c, yaml_node_t *node, const char *what, char **out)
{
    if (!node || node->type != YAML_SCALAR_NODE)
        return fail(c, node, what, "must be a string");
    *out = strdup((const char *)node->data.scalar.value);
    return *out ? KB_OK : KB_ERR_NOMEM;
}

static int valid_name(const char *s)
{
    if (!*s || strlen(s) >= KB_SUB_NAME_MAX)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-'))
            return 0;
    return 1;
}

/* Iterate the pairs of mapping @p node, checking key type and uniqueness. */
#define FOR_PAIRS(c, node, p, k, v, kn, err)                                             \
    for (yaml_node_pair_t *p = (node)->data.mapping.pairs.start;                         \
         !(err) && p < (node)->data.mapping.pairs.top; p++)                              \
        for (yaml_node_t *k = yaml_document_get_node((c)->doc, p->key),                  \
                         *v = yaml_document_get_node((c)->doc, p->value);                \
             k; k = NULL)                                                                \
            for (const char *kn = key_name(c, node, p, &(err)); kn; kn = NULL)

/* The strings of sequence @p node into *@p out (*@p n of them): at least one
 * unless @p allow_empty, at most @p max (refused before anything is copied). */
static kb_err_t string_list(struct ctx *c, yaml_node_t *node, const char *what, char ***out,
                            size_t *n, int allow_empty, size_t max)
{
    if (node->type != YAML_SEQUENCE_NODE) {
        char msg[96];
        snprintf(msg, sizeof msg, "%s must be a list of strings", what);
        return fail(c, node, msg, NULL);
    }
    size_t cnt = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    if (!cnt && !allow_empty) {
        char msg[96];
        snprintf(msg, sizeof msg, "%s must not be empty", what);
        return fail(c, node, msg, NULL);
    }
    if (cnt > max) {
        char msg[128];
        snprintf(msg, sizeof msg, "%s has %zu entries; at most %zu are allowed", what, cnt, max);
        return fail(c, node, msg, NULL);
    }
    *out = calloc(cnt ? cnt : 1, sizeof **out);
    if (!*out)
        return KB_ERR_NOMEM;
    for (size_t i = 0; i < cnt; i++) {
        yaml_node_t *item = yaml_document_get_node(c->doc, node->data.sequence.items.start[i]);
        char msg[96];
        snprintf(msg, sizeof msg, "each entry of %s", what);
        kb_err_t err = scalar(c, item, msg, &(*out)[i]);
        if (err)
            return err;
        (*n)++;
    }
    return KB_OK;
}

static void free_list(char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

/* ------------------------------------------------------------------ filters */

static const char *const context_attrs[] = {"specversion", "id",      "source",
                                            "type",        "subject", "time",
                                            "dataref",     "datacontenttype", "sequence", NULL};

static void filter_fini(struct kb_filter *f)
{
    free(f->attr);
    free(f->path);
    free_list(f->values, f->n_values);
    for (size_t i = 0; i < f->n_children; i++)
        filter_fini(&f->children[i]);
    free(f->children);
}

static int valid_path(const char *p)
{
    if (!*p || *p == '.')
        return 0;
    for (; *p; p++) {
        if (*p == '.' && (p[1] == '.' || p[1] == '\0'))
            return 0;
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '.')
            return 0;
    }
    return 1;
}

static kb_err_t parse_filter(struct ctx *c, yaml_node_t *node, struct kb_filter *f, int depth);

/* exact/prefix/suffix: a mapping of attribute -> value; several pairs mean
 * all must hold, so they become an ALL of single-attribute filters. */
static kb_err_t parse_attr_filter(struct ctx *c, yaml_node_t *node, enum kb_filter_kind kind,
                                  const char *dialect, struct kb_filter *f)
{
    if (node->type != YAML_MAPPING_NODE)
        return fail(c, node, dialect, "needs a mapping of context attribute to value");
    size_t n = (size_t)(node->data.mapping.pairs.top - node->data.mapping.pairs.start);
    if (n == 0)
        return fail(c, node, dialect, "needs at least one attribute");
    struct kb_filter *items = calloc(n, sizeof *items);
    if (!items)
        return KB_ERR_NOMEM;
    kb_err_t err = KB_OK;
    size_t used = 0;
    FOR_PAIRS(c, node, p, k, v, kn, err)
    {
        struct kb_filter *it = &items[used++];
        it->kind = kind;
        it->line = k->start_mark.line + 1;
        it->column = k->start_mark.column + 1;
        int known = 0;
        for (size_t i = 0; context_attrs[i]; i++)
            known |= !strcmp(kn, context_attrs[i]);
        if (!known) {
            err = unknown_key(c, k, context_attrs);
            break;
        }
        it->attr = strdup(kn);
        it->values = calloc(1, sizeof *it->values);
        if (!it->attr || !it->values) {
            err = KB_ERR_NOMEM;
            break;
        }
        err = scalar(c, v, "an attribute value", &it->values[0]);
        if (!err)
            it->n_values = 1;
    }
    if (err) {
        for (size_t i = 0; i < used; i++)
            filter_fini(&items[i]);
        free(items);
        return err;
    }
    if (n == 1) {
        *f = items[0];
        free(items);
    } else {
        f->kind = KB_FILTER_ALL;
        f->children = items;
        f->n_children = n;
    }
    return KB_OK;
}

static kb_err_t parse_field_filter(struct ctx *c, yaml_node_t *node, struct kb_filter *f)
{
    static const char *const keys[] = {"path", "op", "value", "values", NULL};
    static const struct {
        const char *name;
        enum kb_filter_op op;
    } ops[] = {{"=", KB_OP_EQ},  {"!=", KB_OP_NE}, {"<", KB_OP_LT},  {"<=", KB_OP_LE},
               {">", KB_OP_GT},  {">=", KB_OP_GE}, {"in", KB_OP_IN}, {"exists", KB_OP_EXISTS}};
    if (node->type != YAML_MAPPING_NODE)
        return fail(c, node, "field needs a mapping with path, op and value", NULL);
    f->kind = KB_FILTER_FIELD;
    char *op = NULL;
    yaml_node_t *value = NULL, *values = NULL, *opnode = node;
    kb_err_t err = KB_OK;
    FOR_PAIRS(c, node, p, k, v, kn, err)
    {
        if (!strcmp(kn, "path")) {
            err = scalar(c, v, "path", &f->path);
            if (!err && !valid_path(f->path))
                err = fail(c, v, "path must be field names separated by dots", NULL);
        } else if (!strcmp(kn, "op")) {
            err = scalar(c, v, "op", &op);
            opnode = v;
        } else if (!strcmp(kn, "value")) {
            value = v;
        } else if (!strcmp(kn, "values")) {
            values = v;
        } else {
            err = unknown_key(c, k, keys);
        }
    }
    if (!err && !f->path)
        err = fail(c, node, "field needs a path", NULL);
    if (!err && !op)
        err = fail(c, node, "field needs an op (=, !=, <, <=, >, >=, in, exists)", NULL);
    int found = 0;
    for (size_t i = 0; !err && i < sizeof ops / sizeof ops[0]; i++)
        if (!strcmp(op, ops[i].name)) {
            f->op = ops[i].op;
            found = 1;
        }
    if (!err && !found)
        err = fail(c, opnode, "op must be one of =, !=, <, <=, >, >=, in, exists", NULL);
    if (!err && f->op == KB_OP_IN) {
        if (!values || value)
            err = fail(c, node, "op in needs values (a list) and no value", NULL);
        else
            err = string_list(c, values, "values", &f->values, &f->n_values, 0, SIZE_MAX);
    } else if (!err && f->op == KB_OP_EXISTS) {
        f->exists = 1;
        if (values)
            err = fail(c, values, "op exists takes no values", NULL);
        else if (value) {
            const char *b = value->type == YAML_SCALAR_NODE ? (const char *)value->data.scalar.value : "";
            if (!strcmp(b, "true"))
                f->exists = 1;
            else if (!strcmp(b, "false"))
                f->exists = 0;
            else
                err = fail(c, value, "op exists takes value true or false", NULL);
        }
    } else if (!err) {
        if (!value || values)
            err = fail(c, node, "this op needs one value and no values", NULL);
        else {
            f->values = calloc(1, sizeof *f->values);
            if (!f->values)
                err = KB_ERR_NOMEM;
            else if (!(err = scalar(c, value, "value", &f->values[0])))
                f->n_values = 1;
        }
    }
    free(op);
    return err;
}

static kb_err_t parse_filter(struct ctx *c, yaml_node_t *node, struct kb_filter *f, int depth)
{
    static const char *const dialects[] = {"exact", "prefix", "suffix", "all",
                                           "any",   "not",    "field",  NULL};
    f->line = node->start_mark.line + 1;
    f->column = node->start_mark.column + 1;
    if (depth > 32)
        return fail(c, node, "filter nested deeper than 32 levels", NULL);
    /* Matching walks every node for every event of the subscription's types;
     * a filter this large is a mistake or an attack, not a purpose. */
    if (++c->filter_nodes > KB_SUB_FILTER_NODES_MAX) {
        char msg[64];
        snprintf(msg, sizeof msg, "filter has more than %d nodes", KB_SUB_FILTER_NODES_MAX);
        return fail(c, node, msg, NULL);
    }
    if (node->type != YAML_MAPPING_NODE ||
        node->data.mapping.pairs.top - node->data.mapping.pairs.start != 1)
        return fail(c, node, "a filter is a mapping with exactly one dialect:", "exact, prefix, "
                    "suffix, all, any, not or field");
    kb_err_t err = KB_OK;
    FOR_PAIRS(c, node, p, k, v, kn, err)
    {
        if (!strcmp(kn, "exact"))
            err = parse_attr_filter(c, v, KB_FILTER_EXACT, "exact", f);
        else if (!strcmp(kn, "prefix"))
            err = parse_attr_filter(c, v, KB_FILTER_PREFIX, "prefix", f);
        else if (!strcmp(kn, "suffix"))
            err = parse_attr_filter(c, v, KB_FILTER_SUFFIX, "suffix", f);
        else if (!strcmp(kn, "field"))
            err = parse_field_filter(c, v, f);
        else if (!strcmp(kn, "not")) {
            f->kind = KB_FILTER_NOT;
            f->children = calloc(1, sizeof *f->children);
            if (!f->children)
                return KB_ERR_NOMEM;
            f->n_children = 1;
            err = parse_filter(c, v, &f->children[0], depth + 1);
        } else if (!strcmp(kn, "all") || !strcmp(kn, "any")) {
            f->kind = !strcmp(kn, "all") ? KB_FILTER_ALL : KB_FILTER_ANY;
            if (v->type != YAML_SEQUENCE_NODE ||
                v->data.sequence.items.top == v->data.sequence.items.start) {
                err = fail(c, v, kn, "needs a non-empty list of filters");
                break;
            }
            size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
            f->children = calloc(n, sizeof *f->children);
            if (!f->children)
                return KB_ERR_NOMEM;
            for (size_t i = 0; i < n && !err; i++) {
                f->n_children++;
                err = parse_filter(c, yaml_document_get_node(c->doc, v->data.sequence.items.start[i]),
                                   &f->children[i], depth + 1);
            }
        } else
            err = unknown_key(c, k, dialects);
    }
    return err;
}

/* ------------------------------------------------------------- follow lists */

static int follow_cmp(const void *a, const void *b)
{
    return strcmp(((const struct kb_follow *)a)->subject, ((const struct kb_follow *)b)->subject);
}

/*
 * A follow list file: one subject per line, "identifier,from,until" with
 * the identifier as bsn:<9 digits> or anummer:<10 digits> (or bare 9 digits:
 * a BSN), dates YYYY-MM-DD or empty for open; # comments. Identifiers are
 * pseudonymised at once and never kept in clear. The file must be regular
 * and at most KB_SUB_FOLLOW_FILE_MAX bytes (read_regular); a NUL byte or a
 * line longer than 511 bytes is an error naming the line.
 */
static kb_err_t load_follow(struct ctx *c, yaml_node_t *node, struct kb_sub *sub)
{
    /* A posted file naming /etc/... or a FIFO would make the server read
     * or wait on a file of the poster's choosing. */
    if (c->untrusted)
        return fail(c, node,
                    "follow: FILE is not accepted in a subscription sent to the server; use "
                    "follow: {topic: NAME}",
                    NULL);
    char path[4096];
    const char *file = sub->follow_file;
    if (file[0] != '/') {
        const char *slash = strrchr(c->file, '/');
        snprintf(path, sizeof path, "%.*s%s", slash ? (int)(slash - c->file + 1) : 0, c->file, file);
        file = path;
    }
    if (!c->key)
        return fail(c, node, "a follow list needs the subject key (--subject-key-file)", NULL);
    if (!(sub->follow_path = strdup(file)))
        return KB_ERR_NOMEM;
    char *buf, why[128];
    size_t len;
    kb_err_t err =
        read_regular(file, KB_SUB_FOLLOW_FILE_MAX, &buf, &len, &sub->follow_id, why, sizeof why);
    if (err == KB_ERR_NOMEM)
        return err;
    if (err) {
        char msg[400];
        snprintf(msg, sizeof msg, "%s follow list %.200s: %s",
                 err == KB_ERR_IO ? "cannot open" : "refused", file, why);
        return fail(c, node, msg, NULL);
    }
    /* Only a racy read is hashed: the usual look stays one stat. */
    if (sub->follow_id.racy)
        kb__sha256(buf, len, sub->follow_id.sha256);
    size_t lineno = 0, cap = 0; /* cap: entries sub->follow has room for */
    for (size_t off = 0; !err && off < len;) {
        const char *start = buf + off;
        const char *nl = memchr(start, '\n', len - off);
        size_t l = nl ? (size_t)(nl - start) : len - off;
        off += l + (nl != NULL);
        lineno++;
        if (!(lineno & 4095) && (err = out_of_time(c->bound, file, c->errstr, c->errstr_size)))
            break;
        /* fgets saw a NUL as the end of a line, so /dev/zero or a binary
         * file read as endless empty lines; say which line is bad instead. */
        const char *bad = memchr(start, '\0', l) ? "holds a NUL byte"
                          : l >= 512             ? "is longer than 511 bytes"
                                                 : NULL;
        if (bad) {
            err = kb_err_set(KB_ERR_CONF, c->errstr, c->errstr_size, "%s:%zu: follow list line %s",
                             file, lineno, bad);
            break;
        }
        char line[512];
        memcpy(line, start, l);
        line[l] = '\0';
        line[strcspn(line, "\r")] = '\0';
        char *s = line;
        while (isspace((unsigned char)*s))
            s++;
        if (!*s || *s == '#')
            continue;
        char *fields[3] = {s, NULL, NULL};
        for (int i = 1; i < 3; i++) {
            char *comma = fields[i - 1] ? strchr(fields[i - 1], ',') : NULL;
            if (comma) {
                *comma = '\0';
                fields[i] = comma + 1;
            }
        }
        const char *domain = "bsn", *id = fields[0];
        if (!strncmp(id, "bsn:", 4))
            id += 4;
        else if (!strncmp(id, "anummer:", 8)) {
            domain = "anummer";
            id += 8;
        }
        int ok = !strcmp(domain, "bsn") ? kb_check_bsn(id, strlen(id)) : kb_check_anummer(id, strlen(id));
        struct kb_follow fw = {"", INT64_MIN, INT64_MAX};
        if (ok && fields[1] && *fields[1] && kb_parse_time(fields[1], &fw.from_ms))
            ok = 0;
        if (ok && fields[2] && *fields[2] && kb_parse_time(fields[2], &fw.until_ms))
            ok = 0;
        if (!ok) {
            /* The line holds an identifier: name the line, never its content. */
            err = kb_err_set(KB_ERR_CONF, c->errstr, c->errstr_size,
                             "%s:%zu: follow list entry is not identifier,from,until with a "
                             "valid BSN (bsn:) or A-nummer (anummer:) and dates YYYY-MM-DD",
                             file, lineno);
            break;
        }
        if (kb_event_pseudonym(c->key, c->key_len, domain, id, fw.subject)) {
            err = kb_err_set(KB_ERR_CONF, c->errstr, c->errstr_size, "subject key unusable");
            break;
        }
        if (sub->n_follow == cap) {
            /* Doubling: one entry at a time copied the list per line where
             * realloc cannot grow in place (quadratic in a long list). */
            size_t ncap = cap ? cap * 2 : 64;
            struct kb_follow *nf = realloc(sub->follow, ncap * sizeof *nf);
            if (!nf) {
                err = KB_ERR_NOMEM;
                break;
            }
            sub->follow = nf;
            cap = ncap;
        }
        sub->follow[sub->n_follow++] = fw;
    }
    /* The line buffer held identifiers in clear. */
    explicit_bzero(buf, len);
    free(buf);
    if (!err && sub->follow)
        qsort(sub->follow, sub->n_follow, sizeof *sub->follow, follow_cmp);
    if (!err && !sub->follow) {
        /* An empty list follows nobody; keep a non-NULL marker for that. */
        sub->follow = calloc(1, sizeof *sub->follow);
        if (!sub->follow)
            err = KB_ERR_NOMEM;
    }
    return err;
}

/*
 * follow: {topic: NAME} - the list lives in the compacted topic
 * <prefix>.follow.NAME and is read at run time (kb_follow_topics_load).
 * Until then the subscription follows nobody: the empty list, never "all".
 */
static kb_err_t parse_follow_topic(struct ctx *c, yaml_node_t *node, struct kb_sub *sub)
{
    static const char *const keys[] = {"topic", NULL};
    kb_err_t err = KB_OK;
    char *name = NULL;
    FOR_PAIRS(c, node, p, k, v, kn, err)
    {
        if (strcmp(kn, "topic") != 0) {
            err = unknown_key(c, k, keys);
            break;
        }
        err = scalar(c, v, "follow.topic", &name);
        if (err)
            break;
        int ok = name[0] && strlen(name) <= 100 && name[0] != '.';
        for (const char *q = name; ok && *q; q++)
            ok = (*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9') || *q == '-' || *q == '_' ||
                 (*q == '.' && q[1] != '.' && q[1] != '\0');
        if (!ok)
            err = fail(c, v,
                       "follow.topic must be 1-100 characters of a-z, 0-9, -, _ and "
                       "single dots",
                       NULL);
    }
    if (!err && !name)
        err = fail(c, node, "follow needs topic: NAME (or a file name instead of a mapping)", NULL);
    if (!err) {
        char topic[256], suffix[120];
        snprintf(suffix, sizeof suffix, "follow.%s", name);
        kb_topic_name(topic, sizeof topic, suffix);
        sub->follow_topic = strdup(topic);
        sub->follow = calloc(1, sizeof *sub->follow);
        if (!sub->follow_topic || !sub->follow)
            err = KB_ERR_NOMEM;
    }
    free(name);
    return err;
}

/* -------------------------------------------------------------- delivery */

static kb_err_t parse_int(struct ctx *c, yaml_node_t *v, const char *what, long long lo,
                          long long hi, long long *out)
{
    if (v->type != YAML_SCALAR_NODE)
        return fail(c, v, what, "must be a number");
    char *end;
    errno = 0;
    long long x = strtoll((const char *)v->data.scalar.value, &end, 10);
    if (errno || *end || end == (char *)v->data.scalar.value || x < lo || x > hi) {
        char msg[128];
        snprintf(msg, sizeof msg, "must be a whole number from %lld to %lld", lo, hi);
        return fail(c, v, what, msg);
    }
    *out = x;
    return KB_OK;
}

static kb_err_t parse_webhook(struct ctx *c, yaml_node_t *node, struct kb_sub_webhook *w)
{
    static const char *const keys[] = {"url",         "secret_file", "ca_file",
                                       "cert_file",   "key_file",    "mode",
                                       "concurrency", "rate_per_s",  "retry_window_s", NULL};
    if (node->type != YAML_MAPPING_NODE)
        return fail(c, node, "webhook must be a mapping", NULL);
    w->concurrency = 4;
    w->retry_window_s = 5 * 24 * 3600;
    kb_err_t err = KB_OK;
    FOR_PAIRS(c, node, p, k, v, kn, err)
    {
        long long x;
        char *mode = NULL;
        if (!strcmp(kn, "url")) {
            err = scalar(c, v, "webhook.url", &w->url);
            if (!err && strncmp(w->url, "https://", 8) != 0)
                err = fail(c, v, "webhook.url must be https://", NULL);
        } else if (!strcmp(kn, "secret_file"))
            err = scalar(c, v, "webhook.secret_file", &w->secret_file);
        else if (!strcmp(kn, "ca_file"))
            err = scalar(c, v, "webhook.ca_file", &w->ca_file);
        else if (!strcmp(kn, "cert_file"))
            err = scalar(c, v, "webhook.cert_file", &w->cert_file);
        else if (!strcmp(kn, "key_file"))
            err = scalar(c, v, "webhook.key_file", &w->key_file);
        else if (!strcmp(kn, "mode")) {
            err = scalar(c, v, "webhook.mode", &mode);
            if (!err && strcmp(mode, "structured") && strcmp(mode, "binary"))
                err = fail(c, v, "webhook.mode must be structured or binary", NULL);
            if (!err)
                w->binary_mode = !strcmp(mode, "binary");
            free(mode);
        } else if (!strcmp(kn, "concurrency")) {
            if (!(err = parse_int(c, v, "webhook.concurrency", 1, 1024, &x)))
                w->concurrency = (int)x;
        } else if (!strcmp(kn, "rate_per_s")) {
            if (!(err = parse_int(c, v, "webhook.rate_per_s", 0, 1000000, &x)))
                w->rate_per_s = (double)x;
        } else if (!strcmp(kn, "retry_window_s")) {
            if (!(err = parse_int(c, v, "webhook.retry_window_s", 1, 366LL * 24 * 3600, &x)))
                w->retry_window_s = x;
        } else
            err = unknown_key(c, k, keys);
    }
    if (!err && !w->url)
        err = fail(c, node, "webhook needs a url", NULL);
    if (!err && !w->secret_file)
        err = fail(c, node, "webhook needs a secret_file (payloads are signed)", NULL);
    return err;
}

static kb_err_t parse_delivery(struct ctx *c, yaml_node_t *node, struct kb_sub *sub)
{
    static const char *const keys[] = {"kafka_topic", "webhook", "legacy", NULL};
    static const char *const legacy_keys[] = {"adapter", "format", NULL};
    if (node->type != YAML_MAPPING_NODE)
        return fail(c, node, "delivery must be a mapping", NULL);
    int kinds = 0;
    kb_err_t err = KB_OK;
    FOR_PAIRS(c, node, p, k, v, kn, err)
    {
        if (!strcmp(kn, "kafka_topic")) {
            err = scalar(c, v, "delivery.kafka_topic", &sub->topic);
            sub->topic_line = v->start_mark.line + 1;
            sub->topic_column = v->start_mark.column + 1;
        } else if (!strcmp(kn, "webhook")) {
            sub->delivery = KB_DELIVERY_WEBHOOK;
            kinds++;
            err = parse_webhook(c, v, &sub->webhook);
        } else if (!strcmp(kn, "legacy")) {
            sub->delivery = KB_DELIVERY_LEGACY;
            kinds++;
            if (v->type != YAML_MAPPING_NODE) {
                err = fail(c, v, "legacy must be a mapping with adapter and format", NULL);
                break;
            }
            FOR_PAIRS(c, v, lp, lk, lv, lkn, err)
            {
                if (!strcmp(lkn, "adapter"))
                    err = scalar(c, lv, "legacy.adapter", &sub->legacy_adapter);
                else if (!strcmp(lkn, "format"))
                    err = scalar(c, lv, "legacy.format", &sub->legacy_format);
                else
                    err = unknown_key(c, lk, legacy_keys);
            }
            if (!err && (!sub->legacy_adapter || !sub->legacy_format))
                err = fail(c, v, "legacy needs adapter and format", NULL);
        } else
            err = unknown_key(c, k, keys);
    }
    if (!err && kinds > 1)
        err = fail(c, node, "delivery has both webhook and legacy; choose one", NULL);
    return err;
}

/* ---------------------------------------------------------- subscriptions */

static void sub_fini(struct kb_sub *sub)
{
    free(sub->file);
    free(sub->purpose_id);
    free(sub->legal_basis);
    free_list(sub->types, sub->n_types);
    if (sub->filter) {
        filter_fini(sub->filter);
        free(sub->filter);
    }
    free_list(sub->fields, sub->n_fields);
    free_list(sub->pseudonymise, sub->n_pseudonymise);
    free_list(sub->audit_fields, sub->n_audit_fields);
    free(sub->follow_file);
    free(sub->follow_path);
    free(sub->follow_topic);
    free(sub->follow);
    free(sub->topic);
    free(sub->webhook.url);
    free(sub->webhook.secret_file);
    free(sub->webhook.ca_file);
    free(sub->webhook.cert_file);
    free(sub->webhook.key_file);
    free(sub->legacy_adapter);
    free(sub->legacy_format);
    memset(sub, 0, sizeof *sub);
}

static kb_err_t parse_purpose(struct ctx *c, yaml_node_t *node, struct kb_sub *sub)
{
    static const char *const keys[] = {"id", "legal_basis", NULL};
    if (node->type != YAML_MAPPING_NODE)
        return fail(c, node, "purpose must be a mapping with id and legal_basis", NULL);
    kb_err_t err = KB_OK;
    FOR_PAIRS(c, node, p, k, v, kn, err)
    {
        if (!strcmp(kn, "id"))
            err = scalar(c, v, "purpose.id", &sub->purpose_id);
        else if (!strcmp(kn, "legal_basis"))
            err = scalar(c, v, "purpose.legal_basis", &sub->legal_basis);
        else
            err = unknown_key(c, k, keys);
    }
    if (!err && (!sub->purpose_id || !sub->legal_basis))
        return fail(c, node, "purpose needs both id and legal_basis", NULL);
    /* An empty id (`id: #...` is a YAML comment) would put deliveries in
     * the audit trail without a purpose. */
    if (!err && (!sub->purpose_id[0] || !sub->legal_basis[0]))
        return fail(c, node, "purpose id and legal_basis must not be empty", NULL);
    return err;
}

/*
 * A subscription's lists sorted and hashed, for the checks that relate a
 * path to the entries of a list (a pseudonymised field must be in fields, a
 * filter must not look past either), instead of a scan of the list per
 * path, which let one posted subscription with 200,000 entries in each list
 * hold the server for two minutes. The fields above a path (its
 * dot-prefixes) are looked up by hash, computed as the path is read, so a
 * path of many dots costs its length, not its length squared (a binary
 * search per prefix took 1.6 s for a path of 250,000 dots); the fields
 * inside a path sit together in the sorted order. An entry keeps its place
 * in the list as written, so errors name the entry a reviewer meets first,
 * as a scan did.
 */
struct sorted_entry {
    const char *str; /* the list's own string (not owned) */
    size_t pos;      /* its index in the list as written */
    uint64_t hash;   /* fnv1a() of str */
};

struct sorted_list {
    struct sorted_entry *e; /* by str (strcmp order), equal ones by pos */
    size_t n;
    size_t *slots; /* hash table: 1 + an index into e, 0 empty; at most half full */
    size_t mask;   /* slots - 1 */
};

#define FNV1A_BASIS 0xcbf29ce484222325ull

/* FNV-1a (as kb__idset_hash) of @p n more bytes at @p s after hash @p h. */
static uint64_t fnv1a(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static int sorted_entry_cmp(const void *a, const void *b)
{
    const struct sorted_entry *x = a, *y = b;
    int d = strcmp(x->str, y->str);
    return d ? d : (x->pos > y->pos) - (x->pos < y->pos);
}

static kb_err_t sorted_list_init(struct sorted_list *sl, char *const *list, size_t n)
{
    size_t slots = 16;
    while (slots < 2 * n)
        slots <<= 1;
    sl->n = n;
    sl->mask = slots - 1;
    sl->e = malloc((n ? n : 1) * sizeof *sl->e);
    sl->slots = calloc(slots, sizeof *sl->slots);
    if (!sl->e || !sl->slots)
        return KB_ERR_NOMEM; /* sorted_list_fini frees what was had */
    for (size_t i = 0; i < n; i++)
        sl->e[i] = (struct sorted_entry){list[i], i, fnv1a(FNV1A_BASIS, list[i], strlen(list[i]))};
    qsort(sl->e, n, sizeof *sl->e, sorted_entry_cmp);
    for (size_t i = 0; i < n; i++) {
        size_t k = sl->e[i].hash & sl->mask;
        while (sl->slots[k])
            k = (k + 1) & sl->mask;
        sl->slots[k] = i + 1;
    }
    return KB_OK;
}

static void sorted_list_fini(struct sorted_list *sl)
{
    free(sl->e);
    free(sl->slots);
    memset(sl, 0, sizeof *sl);
}

/* strcmp(@p str, k) for k the first @p len bytes of @p key, or, with
 * @p dot, for k those bytes and a '.' where every str starting with k
 * compares equal (the entries inside a path sit together in the order). */
static int key_cmp(const char *str, const char *key, size_t len, int dot)
{
    int d = strncmp(str, key, len);
    if (d)
        return d;
    unsigned char next = (unsigned char)str[len];
    if (!dot)
        return next != '\0';
    return next < '.' ? -1 : next > '.';
}

/* The first entry (as written) that key_cmp() calls equal, or NULL. */
static const struct sorted_entry *sorted_find(const struct sorted_list *sl, const char *key,
                                              size_t len, int dot)
{
    size_t lo = 0, hi = sl->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (key_cmp(sl->e[mid].str, key, len, dot) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == sl->n || key_cmp(sl->e[lo].str, key, len, dot) != 0)
        return NULL;
    if (!dot)
        return &sl->e[lo]; /* equal strings are in written order */
    /* Inside a path: several strings; the one written first. */
    const struct sorted_entry *first = &sl->e[lo];
    for (size_t i = lo + 1; i < sl->n && !key_cmp(sl->e[i].str, key, len, 1); i++)
        if (sl->e[i].pos < first->pos)
            first = &sl->e[i];
    return first;
}

/* The first entry (as written) that is the first @p len bytes of @p key,
 * whose fnv1a() is @p hash, or NULL. */
static const struct sorted_entry *sorted_lookup(const struct sorted_list *sl, const char *key,
                                                size_t len, uint64_t hash)
{
    const struct sorted_entry *first = NULL;
    for (size_t k = hash & sl->mask; sl->slots[k]; k = (k + 1) & sl->mask) {
        const struct sorted_entry *e = &sl->e[sl->slots[k] - 1];
        if (e->hash == hash && !key_cmp(e->str, key, len, 0) && (!first || e->pos < first->pos))
            first = e;
    }
    return first;
}

/* The first entry (as written) that holds @p path, a field above it ("a"
 * holds "a.b"), or with @p self also one equal to it; NULL when none. */
static const struct sorted_entry *sorted_holding(const struct sorted_list *sl, const char *path,
                                                 int self)
{
    const struct sorted_entry *first = NULL;
    uint64_t h = FNV1A_BASIS;
    size_t len = strlen(path), hashed = 0; /* h is of path's first hashed bytes */
    for (size_t l = 1; l <= len; l++) {
        if (l < len ? path[l] != '.' : !self)
            continue;
        h = fnv1a(h, path + hashed, l - hashed);
        hashed = l;
        const struct sorted_entry *e = sorted_lookup(sl, path, l, h);
        if (e && (!first || e->pos < first->pos))
            first = e;
    }
    return first;
}

/* The position of the first entry (as written) that repeats an earlier one,
 * or SIZE_MAX when all differ. */
static size_t sorted_repeat(const struct sorted_list *sl)
{
    size_t first = SIZE_MAX;
    for (size_t i = 1; i < sl->n; i++)
        if (!strcmp(sl->e[i].str, sl->e[i - 1].str) && sl->e[i].pos < first)
            first = sl->e[i].pos;
    return first;
}

/* A subscription's fields and pseudonymise lists, sorted (parse_sub). */
struct sub_lists {
    struct sorted_list fields;
    struct sorted_list pseudonymise;
};

/* 1 when field @p path may be delivered to @p sub: kb_sub_receives() by
 * hash lookups. */
static int receives(const struct kb_sub *sub, const struct sub_lists *sl, const char *path)
{
    return !sub->n_fields || sorted_holding(&sl->fields, path, 1) != NULL;
}

/*
 * A filter may only look at fields the subscriber may receive: otherwise
 * the filter itself would leak what the projection withholds. Nor may it
 * compare a pseudonymised field (or one above or below it): each copy
 * delivered would tell the subscriber that its pseudonym belongs to the
 * value compared with (= 999995303), or to a narrow range of them, which
 * links the pseudonym to a clear identifier. `exists` on the field itself
 * or above it is allowed: a copy shows already whether the pseudonymised
 * field (or its parent) is there, since null stays null. Below a
 * pseudonymised field even `exists` is refused: the copy shows only the
 * pseudonym, not what is inside the value.
 */
static kb_err_t check_filter_fields(struct ctx *c, const struct kb_sub *sub,
                                    const struct sub_lists *sl, const struct kb_filter *f)
{
    if (f->kind == KB_FILTER_FIELD && !receives(sub, sl, f->path)) {
        char msg[256];
        snprintf(msg, sizeof msg, "filter on field \"%.100s\" which this subscriber may not "
                 "receive (add it to fields)", f->path);
        return kb_err_set(KB_ERR_CONF, c->errstr, c->errstr_size, "%s:%zu:%zu: %s", c->file,
                          f->line, f->column, msg);
    }
    if (f->kind == KB_FILTER_FIELD) {
        /* The pseudonymised field it must not test that comes first in the list. */
        const struct sorted_list *ps = &sl->pseudonymise;
        const struct sorted_entry *hit = sorted_holding(ps, f->path, 0); /* f inside it */
        int below = hit != NULL;
        if (f->op != KB_OP_EXISTS) {
            const struct sorted_entry *same = sorted_find(ps, f->path, strlen(f->path), 0);
            const struct sorted_entry *held = sorted_find(ps, f->path, strlen(f->path), 1);
            if (same && (!hit || same->pos < hit->pos))
                hit = same, below = 0;
            if (held && (!hit || held->pos < hit->pos))
                hit = held, below = 0;
        }
        if (hit) {
            char what[256], msg[512];
            if (!strcmp(f->path, hit->str))
                snprintf(what, sizeof what, "pseudonymised field \"%.100s\"", hit->str);
            else
                snprintf(what, sizeof what, "field \"%.100s\" %s pseudonymised field \"%.100s\"",
                         f->path, below ? "inside" : "holding", hit->str);
            snprintf(msg, sizeof msg,
                     "filter on %s: comparing it would link the subscriber's "
                     "pseudonyms to clear values (only op exists may test a pseudonymised field "
                     "or one holding it)",
                     what);
            return fail_at(c, f->line, f->column, msg);
        }
    }
    for (size_t i = 0; i < f->n_children; i++) {
        kb_err_t err = check_filter_fields(c, sub, sl, &f->children[i]);
        if (err)
            return err;
    }
    return KB_OK;
}

/* Kafka's own rule for topic names. */
static int valid_topic(const char *t)
{
    size_t n = strlen(t);
    if (!n || n > 249 || !strcmp(t, ".") || !strcmp(t, ".."))
        return 0;
    for (; *t; t++)
        if (!isalnum((unsigned char)*t) && *t != '.' && *t != '_' && *t != '-')
            return 0;
    return 1;
}

/*
 * An explicit delivery.kafka_topic (sub->name is set). Per-subscriber ACLs
 * and `ketenbus deliver` assume <prefix>.out.<name> is that subscriber's
 * alone, and the bus reads and writes its other topics under the same
 * prefix (in.*, quarantine.*, dlq, dlq.*, retry.*, audit, replay, schemas,
 * follow.*): a subscription naming one of them would mix its copies into
 * another's stream or the audit trail. So inside "<prefix>." only the
 * subscriber's own default is allowed; outside it any valid name, except
 * Kafka's internal __* topics. The prefix is kb_topic_prefix(), the one the
 * router writes with. Uniqueness across the set: load_file().
 */
static kb_err_t check_topic(struct ctx *c, const struct kb_sub *sub)
{
    const char *t = sub->topic, *prefix = kb_topic_prefix();
    size_t pl = strlen(prefix);
    char own[KB_SUB_NAME_MAX + 272], suffix[KB_SUB_NAME_MAX + 8], msg[512];
    snprintf(suffix, sizeof suffix, "out.%s", sub->name);
    kb_topic_name(own, sizeof own, suffix);
    if (!valid_topic(t))
        snprintf(msg, sizeof msg,
                 "delivery.kafka_topic must be 1-249 characters of a-z, A-Z, "
                 "0-9, '.', '_' and '-'");
    else if (!strncmp(t, "__", 2))
        snprintf(msg, sizeof msg,
                 "delivery.kafka_topic \"%.100s\" is one of Kafka's internal "
                 "topics",
                 t);
    else if (!strncmp(t, prefix, pl) && t[pl] == '.' && strcmp(t, own) != 0)
        snprintf(msg, sizeof msg,
                 "delivery.kafka_topic \"%.100s\" is one of the bus's own "
                 "topics (%.60s.*: input, audit, dead letters or another subscriber's); "
                 "there only %.200s may be named",
                 t, prefix, own);
    else
        return KB_OK;
    return fail_at(c, sub->topic_line, sub->topic_column, msg);
}

/* An error at the first entry of list @p node (sorted as @p sl) that repeats
 * an earlier one: a list naming a type or field twice was written in haste,
 * as a repeated key would be, and its reviewer may have read the wrong one. */
static kb_err_t list_repeats(struct ctx *c, yaml_node_t *node, const char *what,
                             const struct sorted_list *sl)
{
    size_t pos = sorted_repeat(sl);
    if (pos == SIZE_MAX)
        return KB_OK;
    yaml_node_t *item = yaml_document_get_node(c->doc, node->data.sequence.items.start[pos]);
    const char *str = (const char *)item->data.scalar.value;
    char msg[200];
    snprintf(msg, sizeof msg, "%s: \"%.100s\" is listed twice", what, str);
    return fail(c, item, msg, NULL);
}

/* list_repeats() for a list not sorted yet. */
static kb_err_t repeated_entry(struct ctx *c, yaml_node_t *node, const char *what,
                               char *const *list, size_t n)
{
    struct sorted_list sl;
    kb_err_t err = sorted_list_init(&sl, list, n);
    if (!err)
        err = list_repeats(c, node, what, &sl);
    sorted_list_fini(&sl);
    return err;
}

static kb_err_t parse_time_value(struct ctx *c, yaml_node_t *v, const char *what, int64_t *out)
{
    if (v->type != YAML_SCALAR_NODE || kb_parse_time((const char *)v->data.scalar.value, out))
        return fail(c, v, what, "must be a date YYYY-MM-DD or an RFC 3339 time");
    return KB_OK;
}

/* The field list the audit trail records for @p sub: what it may receive,
 * and which of that it receives as a pseudonym. Replay compares it with the
 * subscription as it is then, so a copy is never rebuilt with a field in
 * the clear that was routed as a pseudonym (or the other way round). */
static kb_err_t audit_fields_init(struct kb_sub *sub)
{
    if (!sub->n_fields)
        return KB_OK; /* the whole event: recorded as "*" (pseudonymise needs fields) */
    size_t n = sub->n_fields + sub->n_pseudonymise;
    sub->audit_fields = calloc(n, sizeof *sub->audit_fields);
    if (!sub->audit_fields)
        return KB_ERR_NOMEM;
    sub->n_audit_fields = n;
    for (size_t i = 0; i < sub->n_fields; i++)
        if (!(sub->audit_fields[i] = strdup(sub->fields[i])))
            return KB_ERR_NOMEM;
    for (size_t i = 0; i < sub->n_pseudonymise; i++) {
        size_t len = strlen(sub->pseudonymise[i]) + sizeof "#pseudonym";
        char *f = malloc(len);
        if (!f)
            return KB_ERR_NOMEM;
        snprintf(f, len, "%s#pseudonym", sub->pseudonymise[i]);
        sub->audit_fields[sub->n_fields + i] = f;
    }
    return KB_OK;
}

static kb_err_t parse_sub(struct ctx *c, yaml_node_t *node, struct kb_sub *sub)
{
    static const char *const keys[] = {"name",   "purpose",      "types",      "filter",
                                       "fields", "pseudonymise", "follow",     "valid_from",
                                       "valid_until", "delivery", NULL};
    if (node->type != YAML_MAPPING_NODE)
        return fail(c, node, "a subscription must be a mapping", NULL);
    sub->line = node->start_mark.line + 1;
    sub->valid_from_ms = INT64_MIN;
    sub->valid_until_ms = INT64_MAX;
    c->filter_nodes = 0;
    char *name = NULL;
    kb_err_t err = KB_OK;
    yaml_node_t *follow_node = NULL, *fields_node = NULL, *types_node = NULL,
                *pseudonymise_node = NULL;
    struct sub_lists sl = {{0}, {0}};
    FOR_PAIRS(c, node, p, k, v, kn, err)
    {
        if (!strcmp(kn, "name")) {
            err = scalar(c, v, "name", &name);
            if (!err && !valid_name(name))
                err = fail(c, v, "name must be 1-63 characters of a-z, 0-9 and -", NULL);
        } else if (!strcmp(kn, "purpose")) {
            err = parse_purpose(c, v, sub);
        } else if (!strcmp(kn, "types")) {
            types_node = v;
            err = string_list(c, v, "types", &sub->types, &sub->n_types, 0, KB_SUB_LIST_MAX);
        } else if (!strcmp(kn, "filter")) {
            sub->filter = calloc(1, sizeof *sub->filter);
            err = sub->filter ? parse_filter(c, v, sub->filter, 0) : KB_ERR_NOMEM;
        } else if (!strcmp(kn, "fields")) {
            fields_node = v;
            err = string_list(c, v, "fields", &sub->fields, &sub->n_fields, 0, KB_SUB_LIST_MAX);
        } else if (!strcmp(kn, "pseudonymise")) {
            pseudonymise_node = v;
            err = string_list(c, v, "pseudonymise", &sub->pseudonymise, &sub->n_pseudonymise, 1,
                              KB_SUB_LIST_MAX);
        } else if (!strcmp(kn, "follow")) {
            follow_node = v;
            if (v->type == YAML_MAPPING_NODE)
                err = parse_follow_topic(c, v, sub);
            else
                err = scalar(c, v, "follow (a file, or {topic: NAME})", &sub->follow_file);
        } else if (!strcmp(kn, "valid_from")) {
            err = parse_time_value(c, v, "valid_from", &sub->valid_from_ms);
        } else if (!strcmp(kn, "valid_until")) {
            err = parse_time_value(c, v, "valid_until", &sub->valid_until_ms);
        } else if (!strcmp(kn, "delivery")) {
            err = parse_delivery(c, v, sub);
        } else {
            err = unknown_key(c, k, keys);
        }
    }
    if (!err && !name)
        err = fail(c, node, "subscription has no name", NULL);
    if (!err && !sub->purpose_id)
        err = fail(c, node, "subscription has no purpose", NULL);
    if (!err && !sub->n_types)
        err = fail(c, node, "subscription has no types", NULL);
    for (size_t i = 0; !err && i < sub->n_fields; i++)
        if (!valid_path(sub->fields[i]))
            err = fail(c, fields_node, "fields must be field paths (names separated by dots)",
                       NULL);
    if (!err)
        err = repeated_entry(c, types_node, "types", sub->types, sub->n_types);
    if (!err && !(err = sorted_list_init(&sl.fields, sub->fields, sub->n_fields)))
        err = list_repeats(c, fields_node, "fields", &sl.fields);
    if (!err && !(err = sorted_list_init(&sl.pseudonymise, sub->pseudonymise, sub->n_pseudonymise)))
        err = list_repeats(c, pseudonymise_node, "pseudonymise", &sl.pseudonymise);
    for (size_t i = 0; !err && i < sub->n_pseudonymise; i++)
        if (!receives(sub, &sl, sub->pseudonymise[i]))
            err = fail(c, node, "pseudonymise names a field that is not in fields:",
                       sub->pseudonymise[i]);
    if (!err && sub->filter)
        err = check_filter_fields(c, sub, &sl, sub->filter);
    sorted_list_fini(&sl.fields);
    sorted_list_fini(&sl.pseudonymise);
    if (!err)
        err = audit_fields_init(sub);
    if (!err && sub->valid_from_ms >= sub->valid_until_ms)
        err = fail(c, node, "valid_from must be before valid_until", NULL);
    if (!err && sub->follow_file)
        err = load_follow(c, follow_node, sub);
    if (!err) {
        snprintf(sub->name, sizeof sub->name, "%s", name);
        sub->file = strdup(c->file);
        if (!sub->topic) {
            char topic[KB_SUB_NAME_MAX + 72], suffix[KB_SUB_NAME_MAX + 8];
            snprintf(suffix, sizeof suffix, "out.%s", name);
            kb_topic_name(topic, sizeof topic, suffix);
            sub->topic = strdup(topic);
        } else {
            err = check_topic(c, sub);
        }
        if (!err && (!sub->topic || !sub->file))
            err = KB_ERR_NOMEM;
    }
    free(name);
    return err;
}

/* YAML nesting of a subscription file: a filter of 32 levels (its limit)
 * needs about 70. */
#define YAML_DEPTH_MAX      100
/* Lines beginning with '%' (YAML directives): a subscription file needs
 * none, %YAML at most. */
#define YAML_DIRECTIVES_MAX 16

/*
 * Before the document is built, in file order: refuse anchors, aliases, a
 * second document and deep nesting. The document API hands out an aliased
 * node again at every use, so aliases of lists of aliases multiply (ten of
 * ten of ten ...: 10^6 filter nodes and 466 MB from 572 bytes), and a
 * reviewer should see what a subscription holds where it is written; an
 * anchor serves only aliases, and libyaml's loader compares each anchor
 * with all before it (150,000 took 31 s). yaml_parser_load() reads one
 * document, so one after `---` would be ignored without a word.
 *
 * libyaml's scanner walks its stack of flow levels at every token: 40,000
 * nested `[` took 4.7 s, a 1 MiB body of them hours. It reads at most a
 * line or 1,024 characters ahead of the events, so stopping at depth
 * YAML_DEPTH_MAX bounds that walk. Its %TAG directives are each compared
 * with all before them before the first event comes (44,000 took 4.6 s),
 * so those are counted in the bytes first: a line that begins with '%'.
 */
static kb_err_t prescan(const char *path, const char *buf, size_t len, char *errstr,
                        size_t errstr_size)
{
    size_t directives = 0, line = 1;
    for (size_t i = 0; i < len; i++) {
        if ((i == 0 || buf[i - 1] == '\n') && buf[i] == '%' && ++directives > YAML_DIRECTIVES_MAX)
            return kb_err_set(KB_ERR_CONF, errstr, errstr_size,
                              "%s:%zu:1: more than %d lines begin with %% (YAML directives); a "
                              "subscription file needs none",
                              path, line, YAML_DIRECTIVES_MAX);
        line += buf[i] == '\n';
    }
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        return KB_ERR_NOMEM;
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    kb_err_t err = KB_OK;
    int docs = 0, depth = 0;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            err = kb_err_set(KB_ERR_CONF, errstr, errstr_size, "%s:%zu:%zu: %s", path,
                             parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                             parser.problem ? parser.problem : "YAML error");
            break;
        }
        yaml_event_type_t type = ev.type;
        yaml_mark_t at = ev.start_mark;
        int anchor = (type == YAML_SCALAR_EVENT && ev.data.scalar.anchor) ||
                     (type == YAML_SEQUENCE_START_EVENT && ev.data.sequence_start.anchor) ||
                     (type == YAML_MAPPING_START_EVENT && ev.data.mapping_start.anchor);
        yaml_event_delete(&ev);
        if (type == YAML_SEQUENCE_START_EVENT || type == YAML_MAPPING_START_EVENT)
            depth++;
        else if (type == YAML_SEQUENCE_END_EVENT || type == YAML_MAPPING_END_EVENT)
            depth--;
        if (type == YAML_ALIAS_EVENT || anchor)
            err = kb_err_set(KB_ERR_CONF, errstr, errstr_size,
                             "%s:%zu:%zu: YAML %s (%sname) are not allowed in subscription "
                             "files; write the value out",
                             path, at.line + 1, at.column + 1, anchor ? "anchors" : "aliases",
                             anchor ? "&" : "*");
        else if (depth > YAML_DEPTH_MAX)
            err = kb_err_set(KB_ERR_CONF, errstr, errstr_size,
                             "%s:%zu:%zu: YAML nested deeper than %d levels", path, at.line + 1,
                             at.column + 1, YAML_DEPTH_MAX);
        else if (type == YAML_DOCUMENT_START_EVENT && ++docs > 1)
            err = kb_err_set(KB_ERR_CONF, errstr, errstr_size,
                             "%s:%zu:%zu: a second YAML document (after ---) would not be read; "
                             "one document per file",
                             path, at.line + 1, at.column + 1);
        if (err || type == YAML_STREAM_END_EVENT)
            break;
    }
    yaml_parser_delete(&parser);
    return err;
}

/*
 * The set a load builds, across its files. Its subscriptions are found by
 * name and by topic in constant time, so each new one is checked against
 * all before it: a scan of them all made 16,000 small subscriptions (a
 * 1 MiB body) take 0.7 s. Open addressing with linear probing, at most half
 * full; a slot holds 1 + an index into subs->items (which moves as it
 * grows), 0 when empty. The hash (FNV-1a) has no key: names made to collide
 * cost at most the scan this replaces. items grows by doubling: one more at
 * a time copied the array for each subscription where realloc cannot grow
 * in place (under ASan, always).
 */
struct subs_build {
    struct kb_subs *subs; /* the set: subs->n subscriptions, all in the tables */
    size_t cap;           /* subs->items has room for this many */
    size_t *by_name;      /* slots, keyed by sub->name */
    size_t *by_topic;     /* slots, keyed by sub->topic */
    size_t mask;          /* slots per table - 1 (a power of two); 0: no tables yet */
};

static const char *build_key(const struct kb_sub *sub, int topic)
{
    return topic ? sub->topic : sub->name;
}

/* The subscription of the set whose name (or with @p topic, whose topic) is
 * @p key, or NULL. */
static const struct kb_sub *build_find(const struct subs_build *b, const char *key, int topic)
{
    if (!b->mask)
        return NULL;
    const size_t *slots = topic ? b->by_topic : b->by_name;
    for (size_t i = kb__idset_hash(key) & b->mask; slots[i]; i = (i + 1) & b->mask) {
        const struct kb_sub *sub = &b->subs->items[slots[i] - 1];
        if (!strcmp(build_key(sub, topic), key))
            return sub;
    }
    return NULL;
}

/* Room for the next subscription: subs->items[subs->n], zeroed, or NULL. */
static struct kb_sub *build_next(struct subs_build *b)
{
    struct kb_subs *subs = b->subs;
    if (subs->n == b->cap) {
        size_t ncap = b->cap ? b->cap * 2 : 16;
        struct kb_sub *items = realloc(subs->items, ncap * sizeof *items);
        if (!items)
            return NULL;
        subs->items = items;
        b->cap = ncap;
    }
    memset(&subs->items[subs->n], 0, sizeof *subs->items);
    return &subs->items[subs->n];
}

static void build_put(size_t *slots, size_t mask, const struct kb_sub *items, size_t at, int topic)
{
    size_t i = kb__idset_hash(build_key(&items[at], topic)) & mask;
    while (slots[i])
        i = (i + 1) & mask;
    slots[i] = at + 1;
}

/* Take subs->items[subs->n] (filled in after build_next) into the set. */
static kb_err_t build_add(struct subs_build *b)
{
    struct kb_subs *subs = b->subs;
    size_t slots = b->mask ? b->mask + 1 : 0;
    if ((subs->n + 1) * 2 > slots) {
        size_t nslots = slots ? slots * 2 : 64;
        size_t *by_name = calloc(nslots, sizeof *by_name);
        size_t *by_topic = calloc(nslots, sizeof *by_topic);
        if (!by_name || !by_topic) {
            free(by_name);
            free(by_topic);
            return KB_ERR_NOMEM;
        }
        for (size_t i = 0; i < subs->n; i++) {
            build_put(by_name, nslots - 1, subs->items, i, 0);
            build_put(by_topic, nslots - 1, subs->items, i, 1);
        }
        free(b->by_name);
        free(b->by_topic);
        b->by_name = by_name;
        b->by_topic = by_topic;
        b->mask = nslots - 1;
    }
    build_put(b->by_name, b->mask, subs->items, subs->n, 0);
    build_put(b->by_topic, b->mask, subs->items, subs->n, 1);
    subs->n++;
    return KB_OK;
}

/* Free the tables; the set stays the caller's. */
static void build_fini(struct subs_build *b)
{
    free(b->by_name);
    free(b->by_topic);
    memset(b, 0, sizeof *b);
}

/* Record that @p path was read as @p id (content @p buf when racy, see
 * struct kb_subs_file). */
static kb_err_t note_file(struct kb_subs *subs, const char *path, struct kb_file_id *id,
                          const char *buf, size_t len)
{
    struct kb_subs_file *nf = realloc(subs->files, (subs->n_files + 1) * sizeof *nf);
    if (!nf)
        return KB_ERR_NOMEM;
    subs->files = nf;
    if (!(nf[subs->n_files].path = strdup(path)))
        return KB_ERR_NOMEM;
    if (id->racy)
        kb__sha256(buf, len, id->sha256);
    nf[subs->n_files++].id = *id;
    return KB_OK;
}

/*
 * The subscriptions of the file named @p path, whose @p len bytes are at
 * @p buf (read from it, or posted), into @p b's set. The name is what
 * errors and each subscription's file say, and, trusted, what a relative
 * follow list is found beside.
 */
static kb_err_t load_text(const char *path, const char *buf, size_t len, const uint8_t *key,
                          size_t key_len, int untrusted, const struct kb__subs_bound *bound,
                          struct subs_build *b, char *errstr, size_t errstr_size)
{
    kb_err_t err = prescan(path, buf, len, errstr, errstr_size);
    if (err)
        return err;
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser))
        return KB_ERR_NOMEM;
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    if (!yaml_parser_load(&parser, &doc)) {
        err = kb_err_set(KB_ERR_CONF, errstr, errstr_size, "%s:%zu:%zu: %s", path,
                         parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                         parser.problem ? parser.problem : "YAML error");
        goto out_parser;
    }
    struct ctx c = {path, &doc, errstr, errstr_size, key, key_len, untrusted, 0, bound};
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root) {
        err = kb_err_set(KB_ERR_CONF, errstr, errstr_size, "%s: empty file", path);
        goto out_doc;
    }
    if (root->type != YAML_MAPPING_NODE) {
        err = fail(&c, root, "top level must be a mapping with key subscriptions", NULL);
        goto out_doc;
    }
    static const char *const keys[] = {"subscriptions", NULL};
    FOR_PAIRS(&c, root, p, k, v, kn, err)
    {
        if (strcmp(kn, "subscriptions") != 0) {
            err = unknown_key(&c, k, keys);
            break;
        }
        if (v->type != YAML_SEQUENCE_NODE) {
            err = fail(&c, v, "subscriptions must be a list", NULL);
            break;
        }
        for (yaml_node_item_t *it = v->data.sequence.items.start;
             !err && it < v->data.sequence.items.top; it++) {
            struct kb_sub *sub = build_next(b);
            if (!sub) {
                err = KB_ERR_NOMEM;
                break;
            }
            yaml_node_t *sn = yaml_document_get_node(&doc, *it);
            err = parse_sub(&c, sn, sub);
            if (!err && build_find(b, sub->name, 0))
                err = fail(&c, sn, "duplicate subscription name", sub->name);
            /* Two subscriptions on one topic would each read the other's
             * copies, past its purpose and past the per-topic ACLs. */
            const struct kb_sub *o = err ? NULL : build_find(b, sub->topic, 1);
            if (o) {
                char msg[512];
                snprintf(msg, sizeof msg,
                         "topic \"%.100s\" is already the topic of subscription "
                         "%s (%.200s:%zu)",
                         sub->topic, o->name, o->file, o->topic_line ? o->topic_line : o->line);
                err = sub->topic_line ? fail_at(&c, sub->topic_line, sub->topic_column, msg)
                                      : fail(&c, sn, msg, NULL);
            }
            if (!err)
                err = build_add(b);
            if (err) {
                sub_fini(sub);
                break;
            }
        }
    }
out_doc:
    yaml_document_delete(&doc);
out_parser:
    yaml_parser_delete(&parser);
    return err;
}

static kb_err_t load_file(const char *path, const uint8_t *key, size_t key_len, int untrusted,
                          const struct kb__subs_bound *bound, struct subs_build *b, char *errstr,
                          size_t errstr_size)
{
    char *buf, why[128];
    size_t len;
    kb_err_t err = out_of_time(bound, path, errstr, errstr_size);
    if (err)
        return err;
    struct kb_file_id id;
    err = read_regular(path, KB_SUB_FILE_MAX, &buf, &len, &id, why, sizeof why);
    if (err)
        return err == KB_ERR_NOMEM ? err
                                   : kb_err_set(err, errstr, errstr_size, "%s: %s", path, why);
    err = note_file(b->subs, path, &id, buf, len);
    if (!err)
        err = load_text(path, buf, len, key, key_len, untrusted, bound, b, errstr, errstr_size);
    free(buf);
    return err;
}

static kb_err_t load(const char *path, const uint8_t *subject_key, size_t key_len, int untrusted,
                     const struct kb__subs_bound *bound, struct kb_subs *subs, char *errstr,
                     size_t errstr_size)
{
    memset(subs, 0, sizeof *subs);
    struct stat st;
    if (stat(path, &st) != 0)
        return kb_err_set(KB_ERR_IO, errstr, errstr_size, "%s: %s", path, strerror(errno));
    kb_err_t err = KB_OK;
    struct subs_build b = {.subs = subs};
    if (S_ISDIR(st.st_mode)) {
        struct dirent **names;
        int n = scandir(path, &names, NULL, alphasort);
        if (n < 0)
            return kb_err_set(KB_ERR_IO, errstr, errstr_size, "%s: %s", path, strerror(errno));
        for (int i = 0; i < n; i++) {
            const char *nm = names[i]->d_name;
            size_t l = strlen(nm);
            if (!err && nm[0] != '.' &&
                ((l > 5 && !strcmp(nm + l - 5, ".yaml")) || (l > 4 && !strcmp(nm + l - 4, ".yml")))) {
                char file[4096];
                snprintf(file, sizeof file, "%s/%s", path, nm);
                err = load_file(file, subject_key, key_len, untrusted, bound, &b, errstr,
                                errstr_size);
            }
            free(names[i]);
        }
        free(names);
    } else {
        err = load_file(path, subject_key, key_len, untrusted, bound, &b, errstr, errstr_size);
    }
    build_fini(&b);
    if (err)
        kb_subs_fini(subs);
    return err;
}

kb_err_t kb_subs_load(const char *path, const uint8_t *subject_key, size_t key_len,
                      struct kb_subs *subs, char *errstr, size_t errstr_size)
{
    return load(path, subject_key, key_len, 0, NULL, subs, errstr, errstr_size);
}

kb_err_t kb__subs_load_bounded(const char *path, const uint8_t *subject_key, size_t key_len,
                               const struct kb__subs_bound *bound, struct kb_subs *subs,
                               char *errstr, size_t errstr_size)
{
    return load(path, subject_key, key_len, 0, bound, subs, errstr, errstr_size);
}

kb_err_t kb_subs_load_untrusted(const char *path, const uint8_t *subject_key, size_t key_len,
                                struct kb_subs *subs, char *errstr, size_t errstr_size)
{
    return load(path, subject_key, key_len, 1, NULL, subs, errstr, errstr_size);
}

kb_err_t kb_subs_load_untrusted_buffer(const char *name, const void *text, size_t len,
                                       const uint8_t *subject_key, size_t key_len,
                                       struct kb_subs *subs, char *errstr, size_t errstr_size)
{
    memset(subs, 0, sizeof *subs);
    if (len > KB_SUB_FILE_MAX)
        return kb_err_set(KB_ERR_CONF, errstr, errstr_size, "%s: larger than the limit of %u bytes",
                          name, KB_SUB_FILE_MAX);
    struct subs_build b = {.subs = subs};
    kb_err_t err =
        load_text(name, text, len, subject_key, key_len, 1, NULL, &b, errstr, errstr_size);
    build_fini(&b);
    if (err)
        kb_subs_fini(subs);
    return err;
}

void kb_subs_fini(struct kb_subs *subs)
{
    for (size_t i = 0; i < subs->n; i++)
        sub_fini(&subs->items[i]);
    free(subs->items);
    subs->items = NULL;
    subs->n = 0;
    for (size_t i = 0; i < subs->n_files; i++)
        free(subs->files[i].path);
    free(subs->files);
    subs->files = NULL;
    subs->n_files = 0;
}

int kb_sub_wants(const struct kb_sub *sub, const char *type)
{
    for (size_t i = 0; i < sub->n_types; i++)
        if (!strcmp(sub->types[i], type))
            return 1;
    return 0;
}

int kb_sub_receives(const struct kb_sub *sub, const char *path)
{
    if (!sub->n_fields)
        return 1;
    for (size_t i = 0; i < sub->n_fields; i++) {
        size_t l = strlen(sub->fields[i]);
        if (!strncmp(path, sub->fields[i], l) && (path[l] == '\0' || path[l] == '.'))
            return 1;
    }
    return 0;
}

int kb_sub_follows(const struct kb_sub *sub, const char *subject, int64_t time_ms)
{
    if (!sub->follow)
        return 1;
    struct kb_follow key;
    snprintf(key.subject, sizeof key.subject, "%s", subject);
    const struct kb_follow *hit =
        bsearch(&key, sub->follow, sub->n_follow, sizeof *sub->follow, follow_cmp);
    if (!hit)
        return 0;
    /* Several periods for one subject sit next to each other. */
    while (hit > sub->follow && !strcmp(hit[-1].subject, subject))
        hit--;
    for (; hit < sub->follow + sub->n_follow && !strcmp(hit->subject, subject); hit++)
        if (time_ms >= hit->from_ms && time_ms < hit->until_ms)
            return 1;
    return 0;
}

kb_err_t kb_parse_time(const char *s, int64_t *ms)
{
    /* The bus's rules: a leap second (60) counts as the next minute's first. */
    struct kb_time_fields f;
    if (!kb_time_fields_parse(s, &f, NULL) || f.month < 1 || f.month > 12 || f.day < 1 ||
        f.day > kb_days_in_month(f.year, f.month) || f.hour > 23 || f.minute > 59 ||
        f.second > 60 || f.zone_hh > 23 || f.zone_mm > 59) /* RFC 3339's time-numoffset */
        return KB_ERR_INVALID;
    *ms = kb_time_fields_ms(&f);
    return KB_OK;
}
