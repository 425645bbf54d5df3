/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * kafka.c - connection options, client configuration and topic creation on
 * top of librdkafka (see ketenbus/kafka.h). The security rules (secrets only
 * from files, no plaintext beyond loopback, hostname verification on) are
 * enforced in kb_kafka_conf_new, the one door to librdkafka.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <sys/stat.h>

#include <openssl/crypto.h>

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

/* librdkafka properties that hold a secret; each has a "<name>.file" form
 * that ketenbus resolves (kb_kafka_conf_new). */
static const char *const secret_props[] = {
    "sasl.password", "ssl.key.password", "ssl.keystore.password",
    "sasl.oauthbearer.client.secret", "ssl.key.pem",
};
#define N_SECRET_PROPS (sizeof secret_props / sizeof secret_props[0])

static int is_secret_prop(const char *key)
{
    for (size_t i = 0; i < N_SECRET_PROPS; i++)
        if (!strcasecmp(key, secret_props[i]))
            return 1;
    return 0;
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
    /* A command line is visible to every local user (ps, /proc/<pid>/cmdline)
     * and lands in shell histories: secrets only come from files. */
    if (is_secret_prop(key))
        return kb_err_set(KB_ERR_CONF, errstr, errstr_size,
                          "%s is refused on the command line: put %s.file=PATH in a "
                          "--kafka-config file (or on -X) instead", key, key);
    return kb_kafka_opts_set(o, key, eq + 1, errstr, errstr_size);
}

kb_err_t kb_kafka_opts_arg(struct kb_kafka_opts *o, int kind, const char *arg, char *errstr,
                           size_t errstr_size)
{
    switch (kind) {
    case 'b': return kb_kafka_opts_set(o, "bootstrap.servers", arg, errstr, errstr_size);
    case 'X': return kb_kafka_opts_set_kv(o, arg, errstr, errstr_size);
    case 'F': return kb_kafka_opts_load(o, arg, errstr, errstr_size);
    }
    return kb_err_set(KB_ERR_CONF, errstr, errstr_size, "not a Kafka connection option");
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

/* The value of property @p key in @p o (case-insensitive name), or NULL. */
static const char *opt_get(const struct kb_kafka_opts *o, const char *key)
{
    const char *v = NULL;
    for (size_t i = 0; i < o->n; i++)
        if (!strcasecmp(o->keys[i], key))
            v = o->vals[i];
    return v;
}

static int is_true(const char *v)
{
    return v && (!strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes"));
}

size_t kb_kafka_conf_size(rd_kafka_t *rk, const char *name, size_t dflt)
{
    char v[32], *end = NULL;
    size_t vlen = sizeof v;
    if (rd_kafka_conf_get(rd_kafka_conf(rk), name, v, &vlen) != RD_KAFKA_CONF_OK)
        return dflt;
    unsigned long long n = strtoull(v, &end, 10);
    return end != v && !*end ? (size_t)n : dflt;
}

int kb_kafka_host_is_loopback(const char *host)
{
    if (!strcasecmp(host, "localhost"))
        return 1;
    struct in_addr a4;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    struct in6_addr a6;
    if (inet_pton(AF_INET6, host, &a6) == 1) {
        if (IN6_IS_ADDR_LOOPBACK(&a6))
            return 1;
        return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
    }
    return 0; /* a name: not resolved here (that would already be traffic) */
}

/* Check every entry of the bootstrap list "[proto://]host:port,..." for
 * loopback; on the first that is not, copy its host into @p bad. */
static int bootstrap_is_loopback(const char *list, char *bad, size_t bad_size)
{
    const char *p = list;
    while (*p) {
        size_t n = strcspn(p, ",");
        char entry[512];
        snprintf(entry, sizeof entry, "%.*s", (int)(n < sizeof entry ? n : sizeof entry - 1), p);
        p += n;
        if (*p == ',')
            p++;
        char *e = entry;
        while (isspace((unsigned char)*e))
            e++;
        char *end = e + strlen(e);
        while (end > e && isspace((unsigned char)end[-1]))
            *--end = '\0';
        if (!*e)
            continue;
        char *scheme = strstr(e, "://");
        if (scheme)
            e = scheme + 3;
        char *host = e;
        if (*e == '[') { /* [v6]:port */
            host = e + 1;
            char *rb = strchr(host, ']');
            if (rb)
                *rb = '\0';
        } else {
            char *colon = strrchr(e, ':');
            /* exactly one colon: host:port; more: a bare IPv6 address */
            if (colon && colon == strchr(e, ':'))
                *colon = '\0';
        }
        if (!kb_kafka_host_is_loopback(host)) {
            snprintf(bad, bad_size, "%s", host);
            return 0;
        }
    }
    return 1;
}

/* Read a secret from @p path into @p out: at most one line, the trailing
 * newline dropped. Errors name the file, never its content. */
static kb_err_t read_secret(const char *path, const char *prop, char *out, size_t out_size,
                            char *errstr, size_t errstr_size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return kb_err_set(KB_ERR_IO, errstr, errstr_size, "%s.file: %s: %s", prop, path,
                          strerror(errno));
    struct stat st;
    if (fstat(fd, &st) == 0 && (st.st_mode & S_IROTH))
        KB_LOG_WARN("kafka", "secret file is readable by every user", "property=%s.file path=%s",
                    prop, path);
    size_t len = 0;
    ssize_t r;
    while (len + 1 < out_size && (r = read(fd, out + len, out_size - 1 - len)) > 0)
        len += (size_t)r;
    char extra;
    int too_long = len + 1 >= out_size && read(fd, &extra, 1) > 0;
    close(fd);
    out[len] = '\0';
    while (len && (out[len - 1] == '\n' || out[len - 1] == '\r'))
        out[--len] = '\0';
    if (too_long || memchr(out, '\n', len) || strlen(out) != len) {
        OPENSSL_cleanse(out, out_size);
        return kb_err_set(KB_ERR_CONF, errstr, errstr_size,
                          "%s.file: %s: more than one line, a NUL byte or over %zu bytes", prop,
                          path, out_size - 2);
    }
    if (!len)
        return kb_err_set(KB_ERR_CONF, errstr, errstr_size, "%s.file: %s is empty", prop, path);
    return KB_OK;
}

/* ketenbus's own connection properties: consumed here, never given to librdkafka. */
static int is_kb_prop(const char *key)
{
    return !strcasecmp(key, "allow.plaintext");
}

rd_kafka_conf_t *kb_kafka_conf_new(const struct kb_kafka_opts *o, char *errstr,
                                   size_t errstr_size)
{
    char rerr[512];
    const char *proto = opt_get(o, "security.protocol");
    int mock = opt_get(o, "test.mock.num.brokers") != NULL;
    int tls = proto && (!strcasecmp(proto, "ssl") || !strcasecmp(proto, "sasl_ssl"));
    /* Refused before any client exists, so not one packet goes out. */
    if (!tls && !mock && !is_true(opt_get(o, "allow.plaintext"))) {
        char bad[256];
        if (!bootstrap_is_loopback(o->bootstrap, bad, sizeof bad)) {
            kb_err_set(KB_ERR_CONF, errstr, errstr_size,
                       "refusing %s to broker %s outside loopback: set security.protocol=ssl "
                       "or sasl_ssl (or allow.plaintext=true for a trusted network)",
                       proto ? proto : "plaintext", bad);
            return NULL;
        }
    }

    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", o->bootstrap, rerr, sizeof rerr) !=
        RD_KAFKA_CONF_OK)
        goto out_fail;
    /* ketenbus creates every topic it uses itself, with the partitions and
     * configs that topic needs (a compacted registry, an audit topic kept
     * forever). With librdkafka's producer default, a produce to a topic
     * that is gone (deleted by hand, say) has a broker with
     * auto.create.topics.enable make it again with the broker's defaults,
     * and the audit trail would then expire after the default retention.
     * Refused, the produce fails and the error shows. Set before the
     * caller's properties, so -X allow.auto.create.topics=true still wins. */
    if (rd_kafka_conf_set(conf, "allow.auto.create.topics", "false", rerr, sizeof rerr) !=
        RD_KAFKA_CONF_OK)
        goto out_fail;
    for (size_t i = 0; i < o->n; i++) {
        const char *key = o->keys[i];
        if (is_kb_prop(key))
            continue;
        size_t klen = strlen(key);
        if (klen > 5 && !strcasecmp(key + klen - 5, ".file")) {
            char prop[128];
            snprintf(prop, sizeof prop, "%.*s", (int)(klen - 5), key);
            if (!is_secret_prop(prop)) {
                snprintf(rerr, sizeof rerr, "%s: no such secret property (secrets with a "
                         ".file form: sasl.password, ssl.key.password, "
                         "ssl.keystore.password, sasl.oauthbearer.client.secret, ssl.key.pem)",
                         key);
                goto out_fail;
            }
            char secret[8192];
            kb_err_t err = read_secret(o->vals[i], prop, secret, sizeof secret, errstr,
                                       errstr_size);
            if (err) {
                rd_kafka_conf_destroy(conf);
                return NULL;
            }
            rd_kafka_conf_res_t res = rd_kafka_conf_set(conf, prop, secret, rerr, sizeof rerr);
            OPENSSL_cleanse(secret, sizeof secret);
            if (res != RD_KAFKA_CONF_OK) {
                /* librdkafka may quote the value it rejects: not for secrets. */
                snprintf(rerr, sizeof rerr, "%s (from %s) rejected", prop, key);
                goto out_fail;
            }
            continue;
        }
        if (rd_kafka_conf_set(conf, key, o->vals[i], rerr, sizeof rerr) != RD_KAFKA_CONF_OK) {
            if (is_secret_prop(key))
                snprintf(rerr, sizeof rerr, "%s rejected", key);
            goto out_fail;
        }
    }
    if (tls) {
        /* Hostname verification is on unless the operator turned it off in so
         * many words; librdkafka's own default differs between versions. */
        const char *alg = opt_get(o, "ssl.endpoint.identification.algorithm");
        if (!alg) {
            if (rd_kafka_conf_set(conf, "ssl.endpoint.identification.algorithm", "https", rerr,
                                  sizeof rerr) != RD_KAFKA_CONF_OK)
                goto out_fail;
        } else if (!strcasecmp(alg, "none")) {
            KB_LOG_WARN("kafka", "broker hostname verification is off",
                        "property=ssl.endpoint.identification.algorithm value=none");
        }
        const char *verify = opt_get(o, "enable.ssl.certificate.verification");
        if (verify && !is_true(verify))
            KB_LOG_WARN("kafka", "broker certificate verification is off",
                        "property=enable.ssl.certificate.verification");
    }
    const char *mech = opt_get(o, "sasl.mechanism");
    if (!mech)
        mech = opt_get(o, "sasl.mechanisms");
    if (mech && !strncasecmp(mech, "SCRAM-", 6) && rd_kafka_version() < 0x020601ff)
        /* Kafka 4 checks the SCRAM nonce strictly; older librdkafka fails it. */
        KB_LOG_WARN("kafka", "SCRAM with this librdkafka fails against Kafka 4.x brokers",
                    "librdkafka=%s needs=2.6.1 workaround=\"PLAIN inside sasl_ssl, or ssl "
                    "client certificates\"", rd_kafka_version_str());
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

kb_err_t kb_kafka_admin_wait(rd_kafka_queue_t *q, const char *what, int timeout_ms,
                             rd_kafka_event_t **evp, char *errstr, size_t errstr_size)
{
    /* The request gives up after timeout_ms; the slack lets its own answer
     * (a per-resource timeout) arrive rather than a bare "timed out". */
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms + 2000);
    *evp = NULL;
    if (!ev)
        return kb_err_set(KB_ERR_TIMEOUT, errstr, errstr_size, "%s timed out", what);
    if (rd_kafka_event_error(ev)) {
        kb_err_t err = kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "%s: %s", what,
                                  rd_kafka_event_error_string(ev));
        rd_kafka_event_destroy(ev);
        return err;
    }
    *evp = ev;
    return KB_OK;
}

/* Refusals that a managed cluster gives for topics it creates itself. */
static int is_managed_refusal(rd_kafka_resp_err_t te)
{
    return te == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
           te == RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED ||
           te == RD_KAFKA_RESP_ERR_POLICY_VIOLATION;
}

/* The NewTopic of @p spec, configs set; NULL with errstr naming the topic. */
static rd_kafka_NewTopic_t *new_topic(const struct kb_topic_spec *spec, char *errstr,
                                      size_t errstr_size)
{
    char terr[256];
    rd_kafka_NewTopic_t *nt =
        rd_kafka_NewTopic_new(spec->name, spec->partitions, -1, terr, sizeof terr);
    if (!nt) {
        kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "topic %s: %s", spec->name, terr);
        return NULL;
    }
    for (const char *const *c = spec->configs; c && c[0]; c += 2) {
        if (!c[1] || rd_kafka_NewTopic_set_config(nt, c[0], c[1])) {
            kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "topic %s: config %s %s", spec->name,
                       c[0], c[1] ? "refused" : "without a value");
            rd_kafka_NewTopic_destroy(nt);
            return NULL;
        }
    }
    return nt;
}

/* Check the per-topic results of a CreateTopics answer. */
static kb_err_t created_topics(rd_kafka_event_t *ev, const struct kb_topic_spec *specs, size_t n,
                               int flags, char *errstr, size_t errstr_size)
{
    size_t cnt = 0;
    const rd_kafka_topic_result_t **tr =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
    for (size_t i = 0; i < cnt; i++) {
        const char *name = rd_kafka_topic_result_name(tr[i]);
        rd_kafka_resp_err_t te = rd_kafka_topic_result_error(tr[i]);
        if (te == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
            continue; /* another process created it meanwhile: fine */
        if (te && (flags & KB_TOPICS_MANAGED_OK) && is_managed_refusal(te)) {
            KB_LOG_INFO("kafka", "topic not created here", "topic=%s reason=\"%s\"", name,
                        rd_kafka_err2str(te));
            continue;
        }
        if (te)
            return kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "create topic %s: %s", name,
                              rd_kafka_topic_result_error_string(tr[i]));
        int partitions = -1;
        for (size_t s = 0; s < n; s++)
            if (!strcmp(specs[s].name, name))
                partitions = specs[s].partitions;
        if (partitions > 0)
            KB_LOG_INFO("kafka", "topic created", "topic=%s partitions=%d", name, partitions);
        else
            KB_LOG_INFO("kafka", "topic created", "topic=%s partitions=default", name);
    }
    return KB_OK;
}

/* Send one CreateTopics request of @p nt (made from @p specs) and check its answer. */
static kb_err_t create_request(rd_kafka_t *rk, rd_kafka_NewTopic_t **nt,
                               const struct kb_topic_spec *specs, size_t n, int flags,
                               int timeout_ms, char *errstr, size_t errstr_size)
{
    char what[300];
    snprintf(what, sizeof what, "CreateTopics %s%s", specs[0].name, n > 1 ? " (and others)" : "");
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *ao = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_operation_timeout(ao, timeout_ms, NULL, 0);
    rd_kafka_CreateTopics(rk, nt, n, ao, q);
    rd_kafka_event_t *ev = NULL;
    kb_err_t err = kb_kafka_admin_wait(q, what, timeout_ms, &ev, errstr, errstr_size);
    if (!err) {
        err = created_topics(ev, specs, n, flags, errstr, errstr_size);
        rd_kafka_event_destroy(ev);
    } else if (err == KB_ERR_KAFKA && (flags & KB_TOPICS_MANAGED_OK)) {
        /* The request as a whole refused (a proxy or managed service
         * without the CreateTopics API, say): the topics are someone
         * else's to make, as for a per-topic refusal, and a missing one
         * shows at its first use. A timeout stays an error. */
        KB_LOG_WARN("kafka", "topics not created here", "request=\"%s\"", errstr);
        err = KB_OK;
    }
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_queue_destroy(q);
    return err;
}

kb_err_t kb_kafka_create_topics(rd_kafka_t *rk, const struct kb_topic_spec *specs, size_t n,
                                int flags, int timeout_ms, char *errstr, size_t errstr_size)
{
    if (!n)
        return KB_OK;
    rd_kafka_NewTopic_t **nt = calloc(n, sizeof *nt);
    if (!nt)
        return kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
    size_t made = 0;
    while (made < n && (nt[made] = new_topic(&specs[made], errstr, errstr_size)))
        made++;
    kb_err_t err = made < n
                       ? KB_ERR_KAFKA
                       : create_request(rk, nt, specs, n, flags, timeout_ms, errstr, errstr_size);
    for (size_t i = 0; i < made; i++)
        rd_kafka_NewTopic_destroy(nt[i]);
    free(nt);
    return err;
}

kb_err_t kb_kafka_ensure_topic_specs(rd_kafka_t *rk, const struct kb_topic_spec *specs, size_t n,
                                     int timeout_ms, char *errstr, size_t errstr_size)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t rerr = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);
    if (rerr)
        return kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "metadata: %s",
                          rd_kafka_err2str(rerr));
    struct kb_topic_spec *missing = calloc(n ? n : 1, sizeof *missing);
    if (!missing) {
        rd_kafka_metadata_destroy(md);
        return kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
    }
    size_t n_missing = 0;
    for (size_t i = 0; i < n; i++) {
        int found = 0;
        for (int t = 0; t < md->topic_cnt && !found; t++)
            found = !strcmp(md->topics[t].topic, specs[i].name) && !md->topics[t].err;
        if (!found)
            missing[n_missing++] = specs[i];
    }
    rd_kafka_metadata_destroy(md);
    kb_err_t err =
        kb_kafka_create_topics(rk, missing, n_missing, 0, timeout_ms, errstr, errstr_size);
    free(missing);
    return err;
}

kb_err_t kb_kafka_conf_default(rd_kafka_conf_t *conf, const struct kb_kafka_opts *o,
                               const char *key, const char *alias, const char *value, char *errstr,
                               size_t errstr_size)
{
    if (opt_get(o, key) || (alias && opt_get(o, alias)))
        return KB_OK;
    char rerr[512];
    if (rd_kafka_conf_set(conf, key, value, rerr, sizeof rerr) == RD_KAFKA_CONF_OK)
        return KB_OK;
    /* librdkafka ends some of its reasons in a newline; the log line must not */
    size_t n = strlen(rerr);
    while (n && (rerr[n - 1] == '\n' || rerr[n - 1] == ' '))
        rerr[--n] = '\0';
    return kb_err_set(KB_ERR_CONF, errstr, errstr_size, "%s=%s: %s", key, value, rerr);
}

kb_err_t kb_kafka_codec_check(const char *codec, const char *what, char *errstr, size_t errstr_size)
{
    /* librdkafka's own check, so a codec it learns is taken here too */
    rd_kafka_topic_conf_t *tc = rd_kafka_topic_conf_new();
    if (!tc)
        return kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
    /* "inherit" is a topic-level value only: it would take the producer's */
    int ok = codec && strcmp(codec, "inherit") &&
             rd_kafka_topic_conf_set(tc, "compression.type", codec, NULL, 0) == RD_KAFKA_CONF_OK;
    rd_kafka_topic_conf_destroy(tc);
    if (ok)
        return KB_OK;
    return kb_err_set(KB_ERR_CONF, errstr, errstr_size,
                      "%s \"%s\": not a codec (none, gzip, snappy, lz4, zstd)", what,
                      codec ? codec : "");
}

kb_err_t kb_kafka_ensure_topics(rd_kafka_t *rk, const char *const *topics, size_t n, int partitions,
                                int timeout_ms, char *errstr, size_t errstr_size)
{
    struct kb_topic_spec *specs = calloc(n ? n : 1, sizeof *specs);
    if (!specs)
        return kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
    for (size_t i = 0; i < n; i++)
        specs[i] = (struct kb_topic_spec){.name = topics[i], .partitions = partitions};
    kb_err_t err = kb_kafka_ensure_topic_specs(rk, specs, n, timeout_ms, errstr, errstr_size);
    free(specs);
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

rd_kafka_t *kb_kafka_scanner_new(const struct kb_kafka_opts *o, const char *group_id,
                                 char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *conf = kb_kafka_conf_new(o, errstr, errstr_size);
    if (!conf)
        return NULL;
    static const char *const props[][2] = {
        {"isolation.level", "read_committed"}, {"enable.partition.eof", "true"},
        {"enable.auto.commit", "false"},       {"fetch.wait.max.ms", "10"},
        {"auto.offset.reset", "earliest"},
    };
    for (size_t i = 0; i < sizeof props / sizeof props[0]; i++)
        rd_kafka_conf_set(conf, props[i][0], props[i][1], NULL, 0);
    rd_kafka_conf_set(conf, "group.id", group_id, NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size);
    if (!rk)
        rd_kafka_conf_destroy(conf); /* rd_kafka_new() keeps it only on success */
    return rk;
}
