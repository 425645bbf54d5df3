/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * sub_view.c - a subscription's view of one schema (see sub_view.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sub_view.h"

/* Per-subscriber secret, derived from the subject key, so that no two
 * subscribers see the same pseudonym for one person (they cannot link their
 * data on it), and the router needs only the one key. */
static void subscriber_key(const uint8_t *subject_key, size_t subject_key_len, const char *name,
                           uint8_t out[KB_HMAC_LEN])
{
    struct kb__hmac h;
    static const char label[] = "ketenbus-subscriber:";
    kb__hmac_init(&h, subject_key, subject_key_len);
    kb__hmac_sha256(&h, label, sizeof label - 1, name, strlen(name), out);
    kb__hmac_wipe(&h);
}

/* Schema id of a projected schema: derived from its text, so every router
 * instance agrees without coordination; the 0x40000000 bit keeps these ids
 * apart from the registered source schemas. */
int32_t kb__projected_schema_id(const char *json)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)json; *p; p++)
        h = (h ^ *p) * 16777619u;
    return (int32_t)(0x40000000u | (h & 0x3fffffffu));
}

kb_err_t kb__sub_view_init(struct kb__sub_view *w, const struct kb_sub *sub,
                           const struct kb_schema *schema, const kb_validator_t *v,
                           const uint8_t *subject_key, size_t subject_key_len, char *errstr,
                           size_t errstr_size)
{
    memset(w, 0, sizeof *w);
    w->sub = sub;
    w->schema_id = schema->id;
    w->out_schema_id = schema->id;
    uint8_t key[KB_HMAC_LEN];
    subscriber_key(subject_key, subject_key_len, sub->name, key);
    kb__hmac_init(&w->subject_key, key, sizeof key);
    if (sub->n_fields || sub->n_pseudonymise) {
        /* No field list but pseudonyms: every top-level field is selected. */
        char *name = w->record_name;
        const char *rec = avro_schema_name(schema->avro);
        /* An Avro name part cannot start with a digit; a subscriber's can. */
        snprintf(name, sizeof w->record_name, "nl.ketenbus.out.%s%s.%s",
                 sub->name[0] >= '0' && sub->name[0] <= '9' ? "_" : "", sub->name,
                 rec ? rec : "Event");
        for (char *c = name; *c; c++)
            if (*c == '-')
                *c = '_';
        w->pj = kb_projection_new(v, (const char *const *)sub->fields, sub->n_fields,
                                  (const char *const *)sub->pseudonymise, sub->n_pseudonymise,
                                  key, sizeof key, name, errstr, errstr_size);
        if (!w->pj) {
            kb__hmac_wipe(&w->subject_key);
            memset(key, 0, sizeof key);
            return KB_ERR_INVALID;
        }
        w->out_schema_id = kb__projected_schema_id(kb_projection_schema_json(w->pj));
    }
    memset(key, 0, sizeof key);
    return KB_OK;
}

const char *kb__sub_view_record_name(const struct kb__sub_view *w)
{
    return w->record_name;
}

void kb__sub_view_fini(struct kb__sub_view *w)
{
    kb_projection_destroy(w->pj);
    kb__hmac_wipe(&w->subject_key);
    memset(w, 0, sizeof *w);
}

void kb__sub_view_bufs_fini(struct kb__sub_view_bufs *b)
{
    free(b->datum);
    free(b->framed);
    memset(b, 0, sizeof *b);
}

kb_err_t kb__sub_view_value(const struct kb__sub_view *w, const void *value, size_t len,
                            const uint8_t *payload, size_t plen, struct kb__sub_view_bufs *b,
                            const void **out, size_t *out_len)
{
    if (!w->pj) {
        *out = value;
        *out_len = len;
        return KB_OK;
    }
    size_t n = 0;
    kb_err_t err = kb_projection_apply(w->pj, payload, plen, &b->datum, &b->datum_cap, &n);
    if (err)
        return err == KB_ERR_NOMEM ? err : KB_ERR_INVALID;
    if (b->framed_cap < n + 5) {
        uint8_t *nb = realloc(b->framed, n + 5);
        if (!nb)
            return KB_ERR_NOMEM;
        b->framed = nb;
        b->framed_cap = n + 5;
    }
    kb_event_frame(w->out_schema_id, b->datum, n, b->framed);
    *out = b->framed;
    *out_len = n + 5;
    return KB_OK;
}

void kb__sub_view_subject(const struct kb__sub_view *w, const char *subject,
                          char out[KB_PSEUDONYM_LEN + 1])
{
    /* Same construction as kb_event_pseudonym(key, "subject", subject). */
    static const char domain[] = "subject:";
    kb__hmac_hex(&w->subject_key, domain, sizeof domain - 1, subject, strlen(subject), out,
                 KB_PSEUDONYM_LEN);
}

void kb__sub_view_key(const struct kb__sub_view *w, const void *key, size_t key_len,
                      char out[KB_PSEUDONYM_LEN + 1])
{
    /* Its own domain: a key is not a subject, and the two must not meet. */
    static const char domain[] = "key:";
    kb__hmac_hex(&w->subject_key, domain, sizeof domain - 1, key, key_len, out,
                 KB_PSEUDONYM_LEN);
}

rd_kafka_headers_t *kb__sub_view_headers(const rd_kafka_message_t *m, const char *pseudonym,
                                         const struct kb_header *set, size_t n_set)
{
    rd_kafka_headers_t *orig = NULL;
    if (rd_kafka_message_headers(m, &orig) != RD_KAFKA_RESP_ERR_NO_ERROR)
        orig = NULL;
    return kb__sub_view_headers_from(orig, pseudonym, set, n_set);
}

rd_kafka_headers_t *kb__sub_view_headers_from(const rd_kafka_headers_t *orig,
                                              const char *pseudonym, const struct kb_header *set,
                                              size_t n_set)
{
    struct kb__in_headers in = {.of = NULL};
    rd_kafka_headers_t *hdrs = NULL;
    if (!kb__in_headers_read(&in, orig, orig))
        hdrs = kb__in_headers_copy(&in, pseudonym, pseudonym ? strlen(pseudonym) : 0, set,
                                   n_set);
    kb__in_headers_fini(&in);
    return hdrs;
}

kb_err_t kb__in_headers_read(struct kb__in_headers *in, const rd_kafka_headers_t *orig,
                             const void *of)
{
    if (!in->h) {
        in->h = in->inline_h;
        in->cap = sizeof in->inline_h / sizeof in->inline_h[0];
    }
    in->of = NULL;
    in->n = 0;
    size_t want = orig ? rd_kafka_header_cnt(orig) : 0;
    if (want > in->cap) {
        struct kb__in_header *h = malloc(want * sizeof *h);
        if (!h)
            return KB_ERR_NOMEM;
        if (in->h != in->inline_h)
            free(in->h);
        in->h = h;
        in->cap = want;
    }
    int tp_seen = 0;
    for (size_t i = 0; i < want; i++) {
        struct kb__in_header *h = &in->h[in->n];
        if (rd_kafka_header_get_all(orig, i, &h->name, &h->value, &h->len))
            break;
        h->name_len = strlen(h->name);
        h->subject = h->name_len == 10 && !memcmp(h->name, "ce_subject", 10);
        h->known = h->subject || kb_event_header_known(h->name);
        /* the envelope check ignores a traceparent that is not valid, and
         * any after the first valid one: so does the copy */
        if (h->known && h->name_len == 11 && !memcmp(h->name, "traceparent", 11)) {
            h->known = !tp_seen && kb_event_traceparent_valid(h->value, h->len);
            tp_seen |= h->known;
        }
        in->n++;
    }
    in->of = of;
    return KB_OK;
}

rd_kafka_headers_t *kb__in_headers_copy(const struct kb__in_headers *in, const char *pseudonym,
                                        size_t pseudonym_len, const struct kb_header *set,
                                        size_t n_set)
{
    /* One pass over the original headers into a list sized for the result,
     * leaving out those replaced: the router makes one of these per copy,
     * and copying the list, then removing and appending, cost it an
     * allocation, a free and a reallocation of the list more each time. */
    int pseud = pseudonym && pseudonym_len;
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(in->n + n_set + 1);
    if (!hdrs)
        return NULL;
    for (size_t i = 0; i < in->n; i++) {
        const struct kb__in_header *h = &in->h[i];
        /* Only the envelope travels: the gate checked it (the router's
         * input may come from any producer, and whatever else it put in a
         * header, a BSN say, would reach every subscriber as it is). */
        if (!h->known)
            continue;
        int replaced = pseud && h->subject;
        for (size_t j = 0; j < n_set && !replaced; j++)
            replaced = !strcmp(h->name, set[j].name);
        if (!replaced)
            rd_kafka_header_add(hdrs, h->name, (ssize_t)h->name_len, h->value,
                                h->value ? (ssize_t)h->len : 0);
    }
    if (pseud)
        rd_kafka_header_add(hdrs, "ce_subject", 10, pseudonym, (ssize_t)pseudonym_len);
    for (size_t i = 0; i < n_set; i++)
        rd_kafka_header_add(hdrs, set[i].name, -1, set[i].value, (ssize_t)set[i].len);
    return hdrs;
}

void kb__in_headers_fini(struct kb__in_headers *in)
{
    if (in->h && in->h != in->inline_h)
        free(in->h);
    in->h = NULL;
    in->n = in->cap = 0;
    in->of = NULL;
}
