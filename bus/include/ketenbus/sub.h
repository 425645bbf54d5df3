/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * ketenbus/sub.h - subscriptions: who receives which event types, for which
 * legal purpose, on which topic. Read from YAML and checked strictly:
 * unknown keys and wrong types are errors with file, line and column. (The
 * full language with filters, projection and follow lists grows here.)
 */
#ifndef KETENBUS_SUB_H
#define KETENBUS_SUB_H

#include <stddef.h>

#include "ketenbus/err.h"

#define KB_SUB_NAME_MAX 64

struct kb_sub {
    char name[KB_SUB_NAME_MAX];  /* subscriber name: [a-z0-9-], names its topic */
    char *purpose_id;            /* processing purpose id (doelbinding) */
    char *legal_basis;           /* the law article that allows the processing */
    char **types;                /* event types it receives */
    size_t n_types;
    char *topic;                 /* delivery topic, default <prefix>.out.<name> */
};

struct kb_subs {
    struct kb_sub *items;
    size_t n;
};

/**
 * Load subscriptions from @p path: a YAML file with `subscriptions:` (a
 * list) or a folder of such files (*.yaml, *.yml). On error returns non-zero
 * and errstr names file:line:column and the problem; @p subs is left empty.
 */
kb_err_t kb_subs_load(const char *path, struct kb_subs *subs, char *errstr, size_t errstr_size);

/** Free what kb_subs_load() filled. Safe on an empty set. */
void kb_subs_fini(struct kb_subs *subs);

/** 1 when @p sub receives events of @p type. */
int kb_sub_wants(const struct kb_sub *sub, const char *type);

#endif
