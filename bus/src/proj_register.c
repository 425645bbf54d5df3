/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * proj_register.c - puts every projected schema a set of subscriptions can
 * produce into the schema registry, under the id the router frames those
 * copies with, so a subscriber decodes its topic with an ordinary registry
 * client (see proj_register.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ketenbus/log.h"
#include "proj_register.h"
#include "sub_view.h"

#define COMP "route"

static int projects(const struct kb_sub *sub)
{
    return sub->n_fields || sub->n_pseudonymise;
}

/* Register the view of @p sub on @p schema. A projection that does not fit
 * this schema version is skipped: the router dead-letters such events with
 * rule projection-build, so no copy ever names that schema. */
static kb_err_t register_one(kb_registry_t *reg, const struct kb_sub *sub,
                             const struct kb_schema *schema, const kb_validator_t *v,
                             const uint8_t *key, size_t key_len, size_t *n, char *errstr,
                             size_t errstr_size)
{
    struct kb__sub_view w;
    char why[512];
    if (kb__sub_view_init(&w, sub, schema, v, key, key_len, why, sizeof why)) {
        KB_LOG_WARN(COMP, "projection does not fit a schema version; not registered",
                    "subscriber=%s schema_id=%d error=\"%s\"", sub->name, (int)schema->id, why);
        return KB_OK;
    }
    kb_err_t err = KB_OK;
    if (w.pj) {
        /* Confluent's TopicRecordNameStrategy: <topic>-<record full name>. */
        char subject[512];
        snprintf(subject, sizeof subject, "%s-%s", sub->topic, kb__sub_view_record_name(&w));
        struct kb_registry_status st;
        int version = 0;
        err = kb_registry_register_derived(reg, subject, kb_projection_schema_json(w.pj),
                                           w.out_schema_id, &version, &st);
        if (err)
            kb_err_set(err, errstr, errstr_size,
                       "registering the projected schema of subscriber %s (schema %d, id %d): %s",
                       sub->name, (int)schema->id, (int)w.out_schema_id, st.message);
        else
            (*n)++;
    }
    kb__sub_view_fini(&w);
    return err;
}

kb_err_t kb__projections_register(const struct kb_kafka_opts *kafka, const struct kb_subs *subs,
                                  const kb_schemas_t *schemas, const uint8_t *key, size_t key_len,
                                  char *errstr, size_t errstr_size)
{
    size_t wanted = 0;
    for (size_t i = 0; i < subs->n; i++)
        wanted += projects(&subs->items[i]);
    if (!wanted)
        return KB_OK; /* nothing to register: no connection needed */

    struct kb_registry_opts ro = {.kafka = kafka};
    char rerr[512];
    kb_registry_t *reg = kb_registry_new(&ro, rerr, sizeof rerr);
    if (!reg)
        return kb_err_set(KB_ERR_KAFKA, errstr, errstr_size,
                          "the schema registry topic cannot be used to register projections: %s",
                          rerr);
    kb_err_t err = KB_OK;
    size_t n = 0;
    for (size_t s = 0; s < kb_schemas_count(schemas) && !err; s++) {
        const struct kb_schema *schema = kb_schemas_at(schemas, s);
        const kb_validator_t *v = NULL;
        for (size_t i = 0; i < subs->n && !err; i++) {
            const struct kb_sub *sub = &subs->items[i];
            if (!projects(sub) || !kb_sub_wants(sub, schema->type))
                continue;
            if (!v && !(v = kb_schema_validator(schema, NULL)))
                break; /* the router dead-letters this schema's events (gate_of) */
            err = register_one(reg, sub, schema, v, key, key_len, &n, errstr, errstr_size);
        }
    }
    kb_registry_destroy(reg);
    if (!err)
        KB_LOG_INFO(COMP, "projected schemas registered", "schemas=%zu", n);
    return err;
}
