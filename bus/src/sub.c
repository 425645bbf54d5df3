/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * sub.c - YAML subscription files (libyaml document API), checked strictly
 * so a typo in a reviewed file is an error at load time, not a silent
 * non-delivery.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <yaml.h>

#include "ketenbus/kafka.h"
#include "ketenbus/sub.h"

/* Everything the checker needs to say where a problem is. */
struct ctx {
    const char *file;
    yaml_document_t *doc;
    char *errstr;
    size_t errstr_size;
};

static kb_err_t fail(struct ctx *c, const yaml_node_t *node, const char *what, const char *arg)
{
    return kb_err_set(KB_ERR_CONF, c->errstr, c->errstr_size, "%s:%zu:%zu: %s%s%s", c->file,
                      node ? node->start_mark.line + 1 : 0,
                      node ? node->start_mark.column + 1 : 0, what, arg ? " " : "",
                      arg ? arg : "");
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

static kb_err_t parse_purpose(struct ctx *c, yaml_node_t *node, struct kb_sub *sub)
{
    static const char *const keys[] = {"id", "legal_basis", NULL};
    if (node->type != YAML_MAPPING_NODE)
        return fail(c, node, "purpose must be a mapping with id and legal_basis", NULL);
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
        kb_err_t err = KB_OK;
        const char *kn = key_name(c, node, p, &err);
        if (!kn)
            return err;
        if (!strcmp(kn, "id"))
            err = scalar(c, v, "purpose.id", &sub->purpose_id);
        else if (!strcmp(kn, "legal_basis"))
            err = scalar(c, v, "purpose.legal_basis", &sub->legal_basis);
        else
            err = unknown_key(c, k, keys);
        if (err)
            return err;
    }
    if (!sub->purpose_id || !sub->legal_basis)
        return fail(c, node, "purpose needs both id and legal_basis", NULL);
    return KB_OK;
}

static kb_err_t parse_delivery(struct ctx *c, yaml_node_t *node, struct kb_sub *sub)
{
    static const char *const keys[] = {"kafka_topic", NULL};
    if (node->type != YAML_MAPPING_NODE)
        return fail(c, node, "delivery must be a mapping", NULL);
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
        kb_err_t kerr = KB_OK;
        const char *kn = key_name(c, node, p, &kerr);
        if (!kn)
            return kerr;
        if (strcmp(kn, "kafka_topic") != 0)
            return unknown_key(c, k, keys);
        free(sub->topic);
        sub->topic = NULL;
        kb_err_t err = scalar(c, v, "delivery.kafka_topic", &sub->topic);
        if (err)
            return err;
    }
    return KB_OK;
}

static kb_err_t parse_types(struct ctx *c, yaml_node_t *node, struct kb_sub *sub)
{
    if (node->type != YAML_SEQUENCE_NODE)
        return fail(c, node, "types must be a list of event types", NULL);
    size_t n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    if (n == 0)
        return fail(c, node, "types must not be empty", NULL);
    sub->types = calloc(n, sizeof *sub->types);
    if (!sub->types)
        return KB_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = yaml_document_get_node(c->doc, node->data.sequence.items.start[i]);
        kb_err_t err = scalar(c, item, "each type", &sub->types[i]);
        if (err)
            return err;
        sub->n_types++;
    }
    return KB_OK;
}

static void sub_fini(struct kb_sub *sub)
{
    free(sub->purpose_id);
    free(sub->legal_basis);
    for (size_t i = 0; i < sub->n_types; i++)
        free(sub->types[i]);
    free(sub->types);
    free(sub->topic);
    memset(sub, 0, sizeof *sub);
}

static kb_err_t parse_sub(struct ctx *c, yaml_node_t *node, struct kb_sub *sub)
{
    static const char *const keys[] = {"name", "purpose", "types", "delivery", NULL};
    if (node->type != YAML_MAPPING_NODE)
        return fail(c, node, "a subscription must be a mapping", NULL);
    char *name = NULL;
    kb_err_t err = KB_OK;
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start;
         !err && p < node->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
        const char *kn = key_name(c, node, p, &err);
        if (!kn)
            break;
        if (!strcmp(kn, "name")) {
            free(name);
            name = NULL;
            err = scalar(c, v, "name", &name);
            if (!err && !valid_name(name))
                err = fail(c, v, "name must be 1-63 characters of a-z, 0-9 and -", NULL);
        } else if (!strcmp(kn, "purpose")) {
            err = parse_purpose(c, v, sub);
        } else if (!strcmp(kn, "types")) {
            err = parse_types(c, v, sub);
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
    if (!err) {
        snprintf(sub->name, sizeof sub->name, "%s", name);
        if (!sub->topic) {
            char topic[KB_SUB_NAME_MAX + 72], suffix[KB_SUB_NAME_MAX + 8];
            snprintf(suffix, sizeof suffix, "out.%s", name);
            kb_topic_name(topic, sizeof topic, suffix);
            sub->topic = strdup(topic);
            if (!sub->topic)
                err = KB_ERR_NOMEM;
        }
    }
    free(name);
    return err;
}

static kb_err_t load_file(const char *path, struct kb_subs *subs, char *errstr,
                          size_t errstr_size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return kb_err_set(KB_ERR_IO, errstr, errstr_size, "%s: %s", path, strerror(errno));
    yaml_parser_t parser;
    yaml_document_t doc;
    kb_err_t err = KB_OK;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &doc)) {
        err = kb_err_set(KB_ERR_CONF, errstr, errstr_size, "%s:%zu:%zu: %s", path,
                         parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                         parser.problem ? parser.problem : "YAML error");
        goto out_parser;
    }
    struct ctx c = {path, &doc, errstr, errstr_size};
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
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start;
         !err && p < root->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(&doc, p->key);
        yaml_node_t *v = yaml_document_get_node(&doc, p->value);
        const char *kn = key_name(&c, root, p, &err);
        if (!kn)
            break;
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
            struct kb_sub *nitems = realloc(subs->items, (subs->n + 1) * sizeof *nitems);
            if (!nitems) {
                err = KB_ERR_NOMEM;
                break;
            }
            subs->items = nitems;
            struct kb_sub *sub = &subs->items[subs->n];
            memset(sub, 0, sizeof *sub);
            yaml_node_t *sn = yaml_document_get_node(&doc, *it);
            err = parse_sub(&c, sn, sub);
            if (err) {
                sub_fini(sub);
                break;
            }
            for (size_t i = 0; i < subs->n && !err; i++)
                if (!strcmp(subs->items[i].name, sub->name))
                    err = fail(&c, sn, "duplicate subscription name", sub->name);
            if (err) {
                sub_fini(sub);
                break;
            }
            subs->n++;
        }
    }
out_doc:
    yaml_document_delete(&doc);
out_parser:
    yaml_parser_delete(&parser);
    fclose(f);
    return err;
}

kb_err_t kb_subs_load(const char *path, struct kb_subs *subs, char *errstr, size_t errstr_size)
{
    memset(subs, 0, sizeof *subs);
    struct stat st;
    if (stat(path, &st) != 0)
        return kb_err_set(KB_ERR_IO, errstr, errstr_size, "%s: %s", path, strerror(errno));
    kb_err_t err = KB_OK;
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
                err = load_file(file, subs, errstr, errstr_size);
            }
            free(names[i]);
        }
        free(names);
    } else {
        err = load_file(path, subs, errstr, errstr_size);
    }
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
}

int kb_sub_wants(const struct kb_sub *sub, const char *type)
{
    for (size_t i = 0; i < sub->n_types; i++)
        if (!strcmp(sub->types[i], type))
            return 1;
    return 0;
}
