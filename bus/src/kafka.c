/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * kafka.c - connection options, client configuration and topic creation on
 * top of librdkafka (see ketenbus/kafka.h).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ketenbus/event.h"
#include "ketenbus/kafka.h"
#include "ketenbus/log.h"

void kb_kafka_opts_init(struct kb_kafka_opts *o)
{
    memset(o, 0, sizeof *o);
    const char *env = getenv("KB_BOOTSTRAP");
    snprintf(o->bootstrap, sizeof o->bootstrap, "%s", env && *env ? env : "127.0.0.1:9092");
}

void kb_kafka_opts_fini(struct kb_kafka_opts *o)
{
    for (size_t i = 0; i < o->n; i++) {
        free(o->keys[i]);
        free(o->vals[i]);
    }
    o->n = 0;
}

kb_err_t kb_kafka_opts_set(struct kb_kafka_opts *o, const char *key, const char *val,
                           char *errstr, size_t errstr_size)
{
    if (!strcmp(key, "bootstrap.servers") || !strcmp(key, "metadata.broker.list")) {
        if (strlen(val) >= sizeof o->bootstrap)
            return kb_err_set(KB_ERR_CONF, errstr, errstr_size, "bootstrap.servers too long");
        snprintf(o->bootstrap, sizeof o->bootstrap, "%s", val);
        return KB_OK;
    }
    for (size_t i = 0; i < o->n; i++) {
        if (!strcmp(o->keys[i], key)) {
            char *v = strdup(val);
            if (!v)
                return KB_ERR_NOMEM;
            free(o->vals[i]);
            o->vals[i] = v;
            return KB_OK;
        }
    }
    if (o->n == KB_KAFKA_MAX_PROPS)
        return kb_err_set(KB_ERR_CONF, errstr, errstr_size, "more than %d Kafka properties",
                          KB_KAFKA_MAX_PROPS);
    o->keys[o->n] = strdup(key);
    o->vals[o->n] = strdup(val);
    if (!o->keys[o->n] || !o->vals[o->n]) {
        free(o->keys[o->n]);
        free(o->vals[o->n]);
        return KB_ERR_NOMEM;
    }
    o->n++;
    return KB_OK;
}

kb_err_t kb_kafka_opts_set_kv(struct kb_kafka_opts *o, const char *kv, char *errstr,
                              size_t errstr_size)
{
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv)
        return kb_err_set(KB_ERR_CONF, errstr, errstr_size,
                          "expected property=value, got \"%.*s\"", (int)strcspn(kv, "="), kv);
    char key[256];
    size_t klen = (size_t)(eq - kv);
    if (klen >= sizeof key)
        return kb_err_set(KB_ERR_CONF, errstr, errstr_size, "property name too long");
    memcpy(key, kv, klen);
    key[klen] = '\0';
    return kb_kafka_opts_set(o, key, eq + 1, errstr, errstr_size);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

kb_err_t kb_kafka_opts_load(struct kb_kafka_opts *o, const char *path, char *errstr,
                            size_t errstr_size)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return kb_err_set(KB_ERR_IO, errstr, errstr_size, "%s: %s", path, strerror(errno));
    char line[4096];
    int lineno = 0;
    kb_err_t err = KB_OK;
    while (!err && fgets(line, sizeof line, f)) {
        lineno++;
        char *s = trim(line);
        if (!*s || *s == '#' || *s == '!')
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            err = kb_err_set(KB_ERR_CONF, errstr, errstr_size, "%s:%d: expected key=value",
                             path, lineno);
            break;
        }
        *eq = '\0';
        char emsg[256];
        err = kb_kafka_opts_set(o, trim(s), trim(eq + 1), emsg, sizeof emsg);
        if (err)
            kb_err_set(err, errstr, errstr_size, "%s:%d: %s", path, lineno, emsg);
    }
    fclose(f);
    return err;
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    enum kb_log_level lvl = level <= 3 ? KB_LOG_ERROR : level <= 4 ? KB_LOG_WARN
                            : level <= 6 ? KB_LOG_INFO : KB_LOG_DEBUG;
    kb_log(lvl, "rdkafka", buf, "client=%s facility=%s", rd_kafka_name(rk), fac);
}

rd_kafka_conf_t *kb_kafka_conf_new(const struct kb_kafka_opts *o, char *errstr,
                                   size_t errstr_size)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char rerr[512];
    if (rd_kafka_conf_set(conf, "bootstrap.servers", o->bootstrap, rerr, sizeof rerr) !=
        RD_KAFKA_CONF_OK)
        goto out_fail;
    for (size_t i = 0; i < o->n; i++) {
        if (rd_kafka_conf_set(conf, o->keys[i], o->vals[i], rerr, sizeof rerr) !=
            RD_KAFKA_CONF_OK) {
            /* librdkafka's message names the property, never echoes the value. */
            goto out_fail;
        }
    }
    rd_kafka_conf_set_log_cb(conf, log_cb);
    return conf;
out_fail:
    kb_err_set(KB_ERR_CONF, errstr, errstr_size, "Kafka configuration: %s", rerr);
    rd_kafka_conf_destroy(conf);
    return NULL;
}

const char *kb_topic_prefix(void)
{
    const char *p = getenv("KETENBUS_TOPIC_PREFIX");
    return p && *p ? p : "kb";
}

void kb_topic_name(char *out, size_t out_size, const char *suffix)
{
    snprintf(out, out_size, "%s.%s", kb_topic_prefix(), suffix);
}

kb_err_t kb_kafka_err(rd_kafka_resp_err_t err)
{
    return err == RD_KAFKA_RESP_ERR__FATAL ? KB_ERR_FATAL : KB_ERR_KAFKA;
}

kb_err_t kb_kafka_ensure_topics(rd_kafka_t *rk, const char *const *topics, size_t n,
                                int partitions, int timeout_ms, char *errstr,
                                size_t errstr_size)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t rerr = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);
    if (rerr)
        return kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "metadata: %s",
                          rd_kafka_err2str(rerr));
    rd_kafka_NewTopic_t **nt = calloc(n ? n : 1, sizeof *nt);
    if (!nt) {
        rd_kafka_metadata_destroy(md);
        return KB_ERR_NOMEM;
    }
    size_t missing = 0;
    kb_err_t err = KB_OK;
    for (size_t i = 0; i < n; i++) {
        int found = 0;
        for (int t = 0; t < md->topic_cnt && !found; t++)
            found = !strcmp(md->topics[t].topic, topics[i]) && !md->topics[t].err;
        if (found)
            continue;
        char terr[256];
        nt[missing] = rd_kafka_NewTopic_new(topics[i], partitions, -1, terr, sizeof terr);
        if (!nt[missing]) {
            err = kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "topic %s: %s", topics[i], terr);
            goto out_free;
        }
        missing++;
    }
    if (missing) {
        rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
        rd_kafka_AdminOptions_t *ao = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
        rd_kafka_AdminOptions_set_operation_timeout(ao, timeout_ms, NULL, 0);
        rd_kafka_CreateTopics(rk, nt, missing, ao, q);
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms + 2000);
        if (!ev) {
            err = kb_err_set(KB_ERR_TIMEOUT, errstr, errstr_size, "CreateTopics timed out");
        } else if (rd_kafka_event_error(ev)) {
            err = kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "CreateTopics: %s",
                             rd_kafka_event_error_string(ev));
        } else {
            const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
            size_t cnt = 0;
            const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &cnt);
            for (size_t i = 0; i < cnt && !err; i++) {
                rd_kafka_resp_err_t te = rd_kafka_topic_result_error(tr[i]);
                if (te && te != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
                    err = kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "create topic %s: %s",
                                     rd_kafka_topic_result_name(tr[i]),
                                     rd_kafka_topic_result_error_string(tr[i]));
                else if (!te)
                    KB_LOG_INFO("kafka", "topic created", "topic=%s partitions=%d",
                                rd_kafka_topic_result_name(tr[i]), partitions);
            }
        }
        if (ev)
            rd_kafka_event_destroy(ev);
        rd_kafka_AdminOptions_destroy(ao);
        rd_kafka_queue_destroy(q);
    }
out_free:
    for (size_t i = 0; i < missing; i++)
        rd_kafka_NewTopic_destroy(nt[i]);
    free(nt);
    rd_kafka_metadata_destroy(md);
    return err;
}

size_t kb_kafka_headers(const rd_kafka_message_t *m, struct kb_header *out, size_t max)
{
    rd_kafka_headers_t *hdrs = NULL;
    if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR || !hdrs)
        return 0;
    size_t n = 0;
    const char *name;
    const void *val;
    size_t len;
    for (size_t i = 0; n < max && !rd_kafka_header_get_all(hdrs, i, &name, &val, &len); i++) {
        out[n].name = name;
        out[n].value = val ? val : "";
        out[n].len = val ? len : 0;
        n++;
    }
    return n;
}

rd_kafka_headers_t *kb_kafka_headers_new(const struct kb_header *hdrs, size_t n)
{
    rd_kafka_headers_t *h = rd_kafka_headers_new(n);
    for (size_t i = 0; i < n; i++)
        rd_kafka_header_add(h, hdrs[i].name, -1, hdrs[i].value, (ssize_t)hdrs[i].len);
    return h;
}
