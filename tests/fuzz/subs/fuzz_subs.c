/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * fuzz_subs.c - libFuzzer target for the subscription loader
 * (kb_subs_load): the input is written as a YAML file in a private
 * temporary folder and loaded with a subject key, next to a fixed follow
 * list "follow.csv" (fictitious BSNs), so `follow: follow.csv` is reachable.
 *
 * Checked: a rejection names the problem and leaves the set empty; an
 * accepted set has names of [a-z0-9-] only, a purpose, at least one type
 * it wants, every selected field receivable, filter trees of the
 * documented shape and size, no comparison on a pseudonymised field, and
 * delivery topics unique and outside the bus's own (but <prefix>.out.NAME).
 * Inputs naming /dev, /proc or /sys are no longer skipped: the loader
 * refuses anything but a regular file without reading (or opening) it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ketenbus/kafka.h"
#include "ketenbus/sub.h"

static char dir[64];
static char yaml_path[128];

static void cleanup(void)
{
    char p[160];
    snprintf(p, sizeof p, "%s/follow.csv", dir);
    unlink(p);
    unlink(yaml_path);
    rmdir(dir);
}

static void setup(void)
{
    /* tmpfs when there is one: on ext4, rewriting a truncated file flushes
     * it to disk at close (auto_da_alloc), which made disk writes most of
     * an execution's time. */
    struct stat st;
    const char *base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) &&
                               access("/dev/shm", W_OK) == 0
                           ? "/dev/shm"
                           : "/tmp";
    snprintf(dir, sizeof dir, "%s/kb-fuzz-subs-XXXXXX", base);
    if (!mkdtemp(dir))
        abort();
    snprintf(yaml_path, sizeof yaml_path, "%s/subs.yaml", dir);
    char p[160];
    snprintf(p, sizeof p, "%s/follow.csv", dir);
    FILE *f = fopen(p, "w");
    if (!f)
        abort();
    /* Fictitious BSNs (9999... range, passing the 11-proef). */
    fputs("# test follow list\nbsn:999990019,2024-01-01,\n999990032,,2025-12-31\n", f);
    fclose(f);
    atexit(cleanup);
}

static int name_ok(const char *n)
{
    if (!n[0])
        return 0;
    for (const char *p = n; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
            return 0;
    return 1;
}

/* 1 when @p a is @p b or lies under it (b.x...). */
static int at_or_under(const char *a, const char *b)
{
    size_t l = strlen(b);
    return !strncmp(a, b, l) && (a[l] == '\0' || a[l] == '.');
}

static size_t filter_nodes;

static void check_filter(const struct kb_sub *s, const struct kb_filter *f, int depth)
{
    if (depth > 10000 || ++filter_nodes > KB_SUB_FILTER_NODES_MAX)
        abort();
    switch (f->kind) {
    case KB_FILTER_EXACT:
    case KB_FILTER_PREFIX:
    case KB_FILTER_SUFFIX:
        if (!f->attr || f->n_values != 1 || !f->values || !f->values[0])
            abort();
        break;
    case KB_FILTER_NOT:
        if (f->n_children != 1)
            abort();
        break;
    case KB_FILTER_ALL:
    case KB_FILTER_ANY: break;
    case KB_FILTER_FIELD:
        if (!f->path || !kb_sub_receives(s, f->path))
            abort(); /* a filter on a field the subscriber may not receive */
        for (size_t i = 0; i < s->n_pseudonymise; i++)
            if ((f->op != KB_OP_EXISTS && (at_or_under(f->path, s->pseudonymise[i]) ||
                                           at_or_under(s->pseudonymise[i], f->path))) ||
                (f->op == KB_OP_EXISTS && at_or_under(f->path, s->pseudonymise[i]) &&
                 strcmp(f->path, s->pseudonymise[i]) != 0))
                abort(); /* the filter would link a pseudonym to a clear value */
        if (f->op == KB_OP_EXISTS)
            break;
        if (f->n_values < 1 || (f->op != KB_OP_IN && f->n_values != 1))
            abort();
        for (size_t i = 0; i < f->n_values; i++)
            if (!f->values[i])
                abort();
        break;
    default: abort();
    }
    for (size_t i = 0; i < f->n_children; i++)
        check_filter(s, &f->children[i], depth + 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t key[32] = "fuzz-subject-key-not-a-secret!!";
    if (!dir[0])
        setup();
    FILE *f = fopen(yaml_path, "wb");
    if (!f)
        abort();
    if (size && fwrite(data, 1, size, f) != size)
        abort();
    fclose(f);

    struct kb_subs subs;
    memset(&subs, 0x5a, sizeof subs); /* the loader must set it either way */
    char err[512];
    err[0] = '\0';
    if (kb_subs_load(yaml_path, key, sizeof key, &subs, err, sizeof err) != KB_OK) {
        if (!err[0] || subs.n != 0)
            abort(); /* a rejection names the problem and leaves the set empty */
        kb_subs_fini(&subs);
        return 0;
    }
    for (size_t i = 0; i < subs.n; i++) {
        const struct kb_sub *s = &subs.items[i];
        if (!memchr(s->name, '\0', sizeof s->name) || !name_ok(s->name))
            abort();
        if (!s->purpose_id || !s->purpose_id[0])
            abort();
        for (size_t t = 0; t < s->n_types; t++)
            if (!kb_sub_wants(s, s->types[t]))
                abort();
        for (size_t k = 0; k < s->n_fields; k++)
            if (!kb_sub_receives(s, s->fields[k]))
                abort();
        filter_nodes = 0;
        if (s->filter)
            check_filter(s, s->filter, 0);
        char own[200], pfx[120];
        snprintf(own, sizeof own, "%s.out.%s", kb_topic_prefix(), s->name);
        snprintf(pfx, sizeof pfx, "%s.", kb_topic_prefix());
        if (!s->topic || (!strncmp(s->topic, pfx, strlen(pfx)) && strcmp(s->topic, own) != 0) ||
            !strncmp(s->topic, "__", 2))
            abort(); /* a delivery into the bus's own or another subscriber's topic */
        for (size_t j = 0; j < i; j++)
            if (!strcmp(subs.items[j].topic, s->topic))
                abort(); /* two subscriptions on one topic */
        for (size_t k = 1; k < s->n_follow; k++)
            if (strcmp(s->follow[k - 1].subject, s->follow[k].subject) > 0)
                abort(); /* follow list must stay sorted (binary search) */
        for (size_t k = 0; k < s->n_follow; k++)
            if (s->follow[k].from_ms < s->follow[k].until_ms &&
                !kb_sub_follows(s, s->follow[k].subject, s->follow[k].from_ms))
                abort(); /* a listed period does not follow its own start */
        kb_sub_follows(s, "ps_unknown", 0);
    }
    kb_subs_fini(&subs);
    return 0;
}
