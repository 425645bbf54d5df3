/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_kafka_conf.c - the security rules of kb_kafka_conf_new: secrets come
 * from files (and never from -X), are set on the librdkafka configuration
 * and never appear in logs or errors; plaintext beyond loopback is refused
 * before any client exists; hostname verification is on for TLS.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>

#include "kb_test.h"
#include "ketenbus/kafka.h"

static char dir[] = "/tmp/kb-test-kafka-conf-XXXXXX";

static const char *write_file(const char *name, const char *content, size_t len)
{
    static char path[4][256];
    static int next;
    char *p = path[next++ % 4];
    snprintf(p, 256, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    fwrite(content, 1, len, f);
    fclose(f);
    chmod(p, 0600);
    return p;
}

/* The value librdkafka holds for @p key in @p conf, into @p out ("" if none). */
static const char *conf_get(rd_kafka_conf_t *conf, const char *key, char *out, size_t size)
{
    size_t n = size;
    if (rd_kafka_conf_get(conf, key, out, &n) != RD_KAFKA_CONF_OK)
        out[0] = '\0';
    return out;
}

/* Build a conf from "k=v" pairs through the properties-file path (set), or
 * NULL with errstr. */
static rd_kafka_conf_t *conf_of(const char *bootstrap, const char *const *kv, char *errstr,
                                size_t errstr_size)
{
    struct kb_kafka_opts o;
    kb_kafka_opts_init(&o);
    rd_kafka_conf_t *conf = NULL;
    if (kb_kafka_opts_set(&o, "bootstrap.servers", bootstrap, errstr, errstr_size))
        goto out;
    for (; kv && *kv; kv++) {
        const char *eq = strchr(*kv, '=');
        char key[128];
        snprintf(key, sizeof key, "%.*s", (int)(eq - *kv), *kv);
        if (kb_kafka_opts_set(&o, key, eq + 1, errstr, errstr_size))
            goto out;
    }
    conf = kb_kafka_conf_new(&o, errstr, errstr_size);
out:
    kb_kafka_opts_fini(&o);
    return conf;
}

static void test_loopback(void)
{
    CHECK_INT(kb_kafka_host_is_loopback("127.0.0.1"), 1);
    CHECK_INT(kb_kafka_host_is_loopback("127.1.2.3"), 1);
    CHECK_INT(kb_kafka_host_is_loopback("localhost"), 1);
    CHECK_INT(kb_kafka_host_is_loopback("LocalHost"), 1);
    CHECK_INT(kb_kafka_host_is_loopback("::1"), 1);
    CHECK_INT(kb_kafka_host_is_loopback("::ffff:127.0.0.1"), 1);
    CHECK_INT(kb_kafka_host_is_loopback("192.0.2.1"), 0);
    CHECK_INT(kb_kafka_host_is_loopback("128.0.0.1"), 0);
    CHECK_INT(kb_kafka_host_is_loopback("10.0.0.1"), 0);
    CHECK_INT(kb_kafka_host_is_loopback("::2"), 0);
    CHECK_INT(kb_kafka_host_is_loopback("::ffff:192.0.2.1"), 0);
    CHECK_INT(kb_kafka_host_is_loopback("localhost.example.org"), 0);
    CHECK_INT(kb_kafka_host_is_loopback("kafka"), 0); /* names are never resolved */
    CHECK_INT(kb_kafka_host_is_loopback(""), 0);
}

static void test_plaintext_refusal(void)
{
    char errstr[512];
    rd_kafka_conf_t *c;
    /* loopback in every spelling: allowed */
    static const char *const ok_lists[] = {
        "127.0.0.1:9092", "localhost:9092", "[::1]:9092", "127.0.0.1:1,127.0.0.2:2",
        "PLAINTEXT://127.0.0.1:9092", " 127.0.0.1:9092 , localhost:9093",
    };
    for (size_t i = 0; i < sizeof ok_lists / sizeof ok_lists[0]; i++) {
        errstr[0] = '\0';
        c = conf_of(ok_lists[i], NULL, errstr, sizeof errstr);
        if (!c)
            fprintf(stderr, "refused %s: %s\n", ok_lists[i], errstr);
        CHECK(c != NULL);
        rd_kafka_conf_destroy(c);
    }
    /* anything else: refused, naming the host */
    static const char *const bad_lists[] = {
        "192.0.2.1:9092", "127.0.0.1:9092,192.0.2.1:9092", "kafka.example.org:9092",
        "[2001:db8::1]:9092", "PLAINTEXT://192.0.2.1:9092",
    };
    for (size_t i = 0; i < sizeof bad_lists / sizeof bad_lists[0]; i++) {
        errstr[0] = '\0';
        c = conf_of(bad_lists[i], NULL, errstr, sizeof errstr);
        CHECK(c == NULL);
        CHECK(strstr(errstr, "refusing plaintext") != NULL);
        CHECK(strstr(errstr, "outside loopback") != NULL);
        if (c)
            rd_kafka_conf_destroy(c);
    }
    c = conf_of("192.0.2.1:9092", (const char *[]){"security.protocol=SASL_PLAINTEXT", NULL},
                errstr, sizeof errstr);
    CHECK(c == NULL);
    CHECK(strstr(errstr, "refusing SASL_PLAINTEXT to broker 192.0.2.1") != NULL);
    /* explicitly allowed: accepted, and allow.plaintext is not passed on */
    c = conf_of("192.0.2.1:9092", (const char *[]){"allow.plaintext=true", NULL}, errstr,
                sizeof errstr);
    CHECK(c != NULL);
    if (c) {
        char v[64];
        size_t n = sizeof v;
        CHECK(rd_kafka_conf_get(c, "allow.plaintext", v, &n) == RD_KAFKA_CONF_UNKNOWN);
        rd_kafka_conf_destroy(c);
    }
    c = conf_of("192.0.2.1:9092", (const char *[]){"allow.plaintext=false", NULL}, errstr,
                sizeof errstr);
    CHECK(c == NULL);
    /* TLS to a remote broker: fine, and hostname verification is on */
    c = conf_of("192.0.2.1:9093", (const char *[]){"security.protocol=ssl", NULL}, errstr,
                sizeof errstr);
    CHECK(c != NULL);
    if (c) {
        char v[64];
        CHECK_STR(conf_get(c, "ssl.endpoint.identification.algorithm", v, sizeof v), "https");
        rd_kafka_conf_destroy(c);
    }
    /* turned off in so many words: honoured */
    c = conf_of("192.0.2.1:9093",
                (const char *[]){"security.protocol=sasl_ssl",
                                 "ssl.endpoint.identification.algorithm=none", NULL},
                errstr, sizeof errstr);
    CHECK(c != NULL);
    if (c) {
        char v[64];
        CHECK_STR(conf_get(c, "ssl.endpoint.identification.algorithm", v, sizeof v), "none");
        rd_kafka_conf_destroy(c);
    }
}

/* Run kb_kafka_conf_new with stderr captured into @p log_path. */
static rd_kafka_conf_t *conf_captured(const char *const *kv, const char *log_path, char *errstr,
                                      size_t errstr_size)
{
    fflush(stderr);
    int saved = dup(2);
    int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 2);
    close(fd);
    rd_kafka_conf_t *c = conf_of("127.0.0.1:9092", kv, errstr, errstr_size);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    return c;
}

static int file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, needle) != NULL;
}

static void test_secret_files(void)
{
    char errstr[512], v[256], kv[512], logp[300];
    snprintf(logp, sizeof logp, "%s/log", dir);
    const char *secret = "Zw8-not-a-real-password-41";

    /* one line with a newline: read, newline dropped, set on the conf */
    const char *pw = write_file("pw", "Zw8-not-a-real-password-41\n", 27);
    snprintf(kv, sizeof kv, "sasl.password.file=%s", pw);
    rd_kafka_conf_t *c = conf_captured(
        (const char *[]){"security.protocol=sasl_ssl", "sasl.mechanism=SCRAM-SHA-512",
                         "sasl.username=gba", kv, NULL},
        logp, errstr, sizeof errstr);
    CHECK(c != NULL);
    if (c) {
        CHECK_STR(conf_get(c, "sasl.password", v, sizeof v), secret);
        rd_kafka_conf_destroy(c);
    }
    CHECK(!file_contains(logp, secret));

    /* CRLF, and the key password */
    const char *kp = write_file("kp", "k3y-pass\r\n", 10);
    snprintf(kv, sizeof kv, "ssl.key.password.file=%s", kp);
    c = conf_of("127.0.0.1:9092", (const char *[]){kv, NULL}, errstr, sizeof errstr);
    CHECK(c != NULL);
    if (c) {
        CHECK_STR(conf_get(c, "ssl.key.password", v, sizeof v), "k3y-pass");
        rd_kafka_conf_destroy(c);
    }

    /* two lines: refused, the error names the file but not the content */
    const char *two = write_file("two", "Zw8-not-a-real-password-41\nsecond\n", 34);
    snprintf(kv, sizeof kv, "sasl.password.file=%s", two);
    c = conf_captured((const char *[]){kv, NULL}, logp, errstr, sizeof errstr);
    CHECK(c == NULL);
    CHECK(strstr(errstr, two) != NULL);
    CHECK(strstr(errstr, secret) == NULL);
    CHECK(!file_contains(logp, secret));

    /* empty and missing files */
    const char *empty = write_file("empty", "\n", 1);
    snprintf(kv, sizeof kv, "sasl.password.file=%s", empty);
    c = conf_of("127.0.0.1:9092", (const char *[]){kv, NULL}, errstr, sizeof errstr);
    CHECK(c == NULL);
    CHECK(strstr(errstr, "is empty") != NULL);
    snprintf(kv, sizeof kv, "sasl.password.file=%s/missing", dir);
    c = conf_of("127.0.0.1:9092", (const char *[]){kv, NULL}, errstr, sizeof errstr);
    CHECK(c == NULL);
    CHECK(strstr(errstr, "No such file") != NULL);

    /* a NUL byte inside */
    const char *nul = write_file("nul", "ab\0cd\n", 6);
    snprintf(kv, sizeof kv, "sasl.password.file=%s", nul);
    c = conf_of("127.0.0.1:9092", (const char *[]){kv, NULL}, errstr, sizeof errstr);
    CHECK(c == NULL);

    /* .file of something that is not a secret: refused (typo guard) */
    snprintf(kv, sizeof kv, "sasl.username.file=%s", pw);
    c = conf_of("127.0.0.1:9092", (const char *[]){kv, NULL}, errstr, sizeof errstr);
    CHECK(c == NULL);
    CHECK(strstr(errstr, "no such secret property") != NULL);

    /* a wrong value of a librdkafka property: the error names the property */
    c = conf_captured((const char *[]){"security.protocol=bogus", NULL}, logp, errstr,
                      sizeof errstr);
    CHECK(c == NULL);
    CHECK(strstr(errstr, "security.protocol") != NULL);
}

static void test_command_line(void)
{
    struct kb_kafka_opts o;
    kb_kafka_opts_init(&o);
    char errstr[512];
    static const char *const refused[] = {
        "sasl.password=x", "ssl.key.password=x", "ssl.keystore.password=x",
        "SASL.PASSWORD=x", "sasl.oauthbearer.client.secret=x", "ssl.key.pem=x",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        errstr[0] = '\0';
        CHECK_INT(kb_kafka_opts_set_kv(&o, refused[i], errstr, sizeof errstr), KB_ERR_CONF);
        CHECK(strstr(errstr, "refused on the command line") != NULL);
    }
    CHECK_INT(o.n, 0);
    CHECK_INT(kb_kafka_opts_set_kv(&o, "sasl.password.file=/run/secrets/pw", errstr,
                                   sizeof errstr), KB_OK);
    CHECK_INT(kb_kafka_opts_set_kv(&o, "sasl.username=gba", errstr, sizeof errstr), KB_OK);
    CHECK_INT(o.n, 2);
    kb_kafka_opts_fini(&o);
}

/* ketenbus creates its topics itself, so its clients never ask a broker
 * to auto-create one; -X can still allow it. Checked by hand on a broker
 * with auto.create.topics.enable=true (2026-11-30): a producer with
 * librdkafka's default made a missing topic it produced to, with the
 * broker's default configs; with this setting the produce fails instead. */
static void test_no_auto_create(void)
{
    static const char *const allow[] = {"allow.auto.create.topics=true", NULL};
    char errstr[512], v[16];
    for (int allowed = 0; allowed < 2; allowed++) {
        rd_kafka_conf_t *conf =
            conf_of("127.0.0.1:9092", allowed ? allow : NULL, errstr, sizeof errstr);
        CHECK(conf != NULL);
        if (!conf)
            return;
        CHECK_STR(conf_get(conf, "allow.auto.create.topics", v, sizeof v),
                  allowed ? "true" : "false");
        rd_kafka_conf_destroy(conf);
    }
}

/* A command's own default (the router's linger.ms) is set only where the
 * user gave neither the property nor its librdkafka alias; a value
 * librdkafka refuses is an error naming the property. */
static void test_command_default(void)
{
    static const struct {
        const char *given; /* -X K=V, or NULL */
        const char *want;  /* linger.ms afterwards */
    } cases[] = {
        {NULL, "100"},
        {"linger.ms=7", "7"},
        {"linger.ms=5", "5"}, /* the old value, which must stay reachable */
        {"queue.buffering.max.ms=9", "9"},
        {"batch.num.messages=50", "100"},
    };
    char errstr[512], v[32];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct kb_kafka_opts o;
        kb_kafka_opts_init(&o);
        CHECK_INT(
            kb_kafka_opts_set(&o, "bootstrap.servers", "127.0.0.1:9092", errstr, sizeof errstr),
            KB_OK);
        if (cases[i].given)
            CHECK_INT(kb_kafka_opts_set_kv(&o, cases[i].given, errstr, sizeof errstr), KB_OK);
        rd_kafka_conf_t *conf = kb_kafka_conf_new(&o, errstr, sizeof errstr);
        CHECK(conf != NULL);
        if (!conf)
            fprintf(stderr, "case %zu: %s\n", i, errstr);
        if (conf) {
            CHECK_INT(kb_kafka_conf_default(conf, &o, "linger.ms", "queue.buffering.max.ms", "100",
                                            errstr, sizeof errstr),
                      KB_OK);
            CHECK_STR(conf_get(conf, "linger.ms", v, sizeof v), cases[i].want);
            /* refused by librdkafka (out of range): an error, not a silent skip */
            if (!cases[i].given) {
                CHECK_INT(
                    kb_kafka_conf_default(conf, &o, "linger.ms", NULL, "-5", errstr, sizeof errstr),
                    KB_ERR_CONF);
                CHECK(strstr(errstr, "linger.ms=-5") != NULL);
                CHECK(strchr(errstr, '\n') == NULL);
            }
            rd_kafka_conf_destroy(conf);
        }
        kb_kafka_opts_fini(&o);
    }
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_loopback();
    test_plaintext_refusal();
    test_secret_files();
    test_command_line();
    test_no_auto_create();
    test_command_default();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    KB_TEST_DONE();
}
