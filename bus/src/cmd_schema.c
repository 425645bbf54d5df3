/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * cmd_schema.c - `ketenbus schema check|register|serve`: validate the schemas/
 * folder (Avro validity, ketenbus attributes, compatibility between the
 * versions of each event type), push it to a registry keeping its ids, and
 * run the Kafka-backed registry server.
 */
#include <getopt.h>
#include <regex.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cmd.h"
#include "ketenbus/http.h"
#include "ketenbus/serve.h"
#include "ketenbus/kafka.h"
#include "ketenbus/log.h"
#include "ketenbus/metrics.h"
#include "ketenbus/registry.h"
#include "ketenbus/schema.h"
#include "ketenbus/stop.h"

#ifndef KB_SCHEMA_DIR
#define KB_SCHEMA_DIR "schemas"
#endif

static const char usage[] =
    "usage: ketenbus schema check [--level LEVEL] [DIR]\n"
    "       ketenbus schema register --url URL [DIR]\n"
    "       ketenbus schema serve [--listen HOST:PORT] [--level LEVEL] [-b HOST:PORT] [-X K=V]\n"
    "\n"
    "check     parse every .avsc under DIR (default: the source tree's schemas/): valid\n"
    "          Avro (names, defaults, unions), kb.eventType/kb.schemaId present, ids unique\n"
    "          and inside their folder's range (brp 1001-1099, kinderbijslag 2001-2099,\n"
    "          brk 3001-3099, ketenbus 9001-9099), constraint attributes well-formed\n"
    "          (kb.pattern compiles, kb.allowed is a list of strings, ...), and the\n"
    "          versions of each event type (files sharing kb.eventType, ordered by\n"
    "          kb.schemaId) compatible under LEVEL (default BACKWARD_TRANSITIVE).\n"
    "register  POST each schema to the registry at URL under subject = kb.eventType,\n"
    "          oldest version first, asking for its kb.schemaId as id; fails when the\n"
    "          registry gives another id.\n"
    "serve     the Confluent-compatible registry, stored in the compacted topic\n"
    "          <prefix>.schemas; listens on 127.0.0.1:8081 unless --listen says otherwise.\n"
    "          Prints \"listening on http(s)://HOST:PORT\" once ready; also serves /metrics,\n"
    "          /healthz, /readyz and takes the HTTP options below.\n"
    "\n"
    "  --level LEVEL              NONE, BACKWARD, BACKWARD_TRANSITIVE, FORWARD,\n"
    "                             FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE\n"
    "  -b, --bootstrap HOST:PORT  Kafka bootstrap servers (default $KB_BOOTSTRAP)\n"
    "  -X, --kafka-property K=V   any librdkafka property (TLS, SASL, ...)\n"
    "      --kafka-config FILE    properties file with librdkafka properties\n"
    "  -h, --help\n";

/* Id ranges per top-level folder (schemas/README.md). */
static const struct {
    const char *folder;
    int lo, hi;
} id_ranges[] = {{"brp", 1001, 1099},
                 {"kinderbijslag", 2001, 2099},
                 {"brk", 3001, 3099},
                 {"ketenbus", 9001, 9099},
                 {"internal", 9001, 9099}};

/* The kb.* attributes a field may carry, and what their values must be. */
static const char *const known_attrs[] = {
    "kb.check", "kb.personal", "kb.format",    "kb.pattern",   "kb.allowed",
    "kb.min",   "kb.max",      "kb.minLength", "kb.maxLength", "kb.codeTable"};

struct loaded {
    char *path;       /* file */
    char *text;       /* file contents */
    json_t *root;     /* parsed JSON */
    kb_avsc_t *avsc;  /* parsed schema */
    const char *type; /* kb.eventType (into root) */
    int id;           /* kb.schemaId */
};

static int check_field_attrs(const char *path, const char *where, json_t *obj)
{
    int errors = 0;
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        if (strncmp(k, "kb.", 3) != 0)
            continue;
        int known = 0;
        for (size_t i = 0; i < sizeof known_attrs / sizeof known_attrs[0]; i++)
            known |= !strcmp(k, known_attrs[i]);
        if (!strcmp(k, "kb.eventType") || !strcmp(k, "kb.schemaId"))
            continue;
        if (!known) {
            fprintf(stderr, "%s: %s: warning: unknown attribute %s\n", path, where, k);
            continue;
        }
        const char *bad = NULL;
        if (!strcmp(k, "kb.pattern")) {
            regex_t re;
            if (!json_is_string(v))
                bad = "must be a string";
            else if (regcomp(&re, json_string_value(v), REG_EXTENDED | REG_NOSUB) != 0)
                bad = "is not a valid POSIX extended regular expression";
            else
                regfree(&re);
        } else if (!strcmp(k, "kb.allowed")) {
            size_t i;
            json_t *e;
            if (!json_is_array(v) || json_array_size(v) == 0)
                bad = "must be a non-empty list of strings";
            else
                json_array_foreach(v, i, e) if (!json_is_string(e)) bad =
                    "must be a non-empty list of strings";
        } else if (!strcmp(k, "kb.min") || !strcmp(k, "kb.max")) {
            if (!json_is_number(v))
                bad = "must be a number";
        } else if (!strcmp(k, "kb.minLength") || !strcmp(k, "kb.maxLength")) {
            if (!json_is_integer(v) || json_integer_value(v) < 0)
                bad = "must be an integer >= 0";
        } else if (!json_is_string(v) || !*json_string_value(v)) {
            bad = "must be a non-empty string";
        }
        if (bad) {
            fprintf(stderr, "%s: %s: %s %s\n", path, where, k, bad);
            errors++;
        }
    }
    return errors;
}

/* Walk every record's fields (through unions, arrays and maps). */
static int check_attrs(const char *path, json_t *type, const char *where, int depth)
{
    int errors = 0;
    if (depth > 64)
        return 0;
    if (json_is_array(type)) {
        size_t i;
        json_t *b;
        json_array_foreach(type, i, b) errors += check_attrs(path, b, where, depth + 1);
        return errors;
    }
    if (!json_is_object(type))
        return 0;
    json_t *items = json_object_get(type, "items");
    if (!items)
        items = json_object_get(type, "values");
    if (items)
        errors += check_attrs(path, items, where, depth + 1);
    json_t *fields = json_object_get(type, "fields");
    size_t i;
    json_t *f;
    json_array_foreach(fields, i, f)
    {
        char w[512];
        snprintf(w, sizeof w, "%s/%s", where,
                 json_string_value(json_object_get(f, "name"))
                     ? json_string_value(json_object_get(f, "name"))
                     : "?");
        errors += check_field_attrs(path, w, f);
        errors += check_attrs(path, json_object_get(f, "type"), w, depth + 1);
    }
    return errors;
}

static int load_all(const char *dir, struct loaded **out, size_t *nout)
{
    char err[1024];
    /* kb_schemas_load_dir checks the ketenbus attributes and avro-c's view. */
    kb_schemas_t *set = kb_schemas_load_dir(dir, err, sizeof err);
    if (!set) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    size_t n = kb_schemas_count(set);
    struct loaded *l = calloc(n ? n : 1, sizeof *l);
    int errors = 0;
    for (size_t i = 0; l && i < n; i++) {
        const struct kb_schema *sc = kb_schemas_at(set, i);
        l[i].path = strdup(sc->path);
        l[i].text = strdup(sc->json);
        l[i].id = sc->id;
        l[i].root = json_loads(sc->json, 0, NULL);
        l[i].type = json_string_value(json_object_get(l[i].root, "kb.eventType"));
        l[i].avsc = kb_avsc_parse(sc->json, strlen(sc->json), err, sizeof err);
        if (!l[i].avsc) {
            fprintf(stderr, "%s: %s\n", sc->path, err);
            errors++;
            continue;
        }
        errors += check_attrs(sc->path, l[i].root, "", 0);
        /* id range of the folder right below dir */
        const char *rel = sc->path + strlen(dir);
        while (*rel == '/')
            rel++;
        for (size_t r = 0; r < sizeof id_ranges / sizeof id_ranges[0]; r++) {
            size_t fl = strlen(id_ranges[r].folder);
            if (!strncmp(rel, id_ranges[r].folder, fl) && rel[fl] == '/' &&
                (sc->id < id_ranges[r].lo || sc->id > id_ranges[r].hi)) {
                fprintf(stderr, "%s: kb.schemaId %d outside %s's range %d-%d\n", sc->path, sc->id,
                        id_ranges[r].folder, id_ranges[r].lo, id_ranges[r].hi);
                errors++;
            }
        }
    }
    kb_schemas_destroy(set);
    *out = l;
    *nout = n;
    return errors;
}

static void free_all(struct loaded *l, size_t n)
{
    for (size_t i = 0; l && i < n; i++) {
        free(l[i].path);
        free(l[i].text);
        json_decref(l[i].root);
        kb_avsc_destroy(l[i].avsc);
    }
    free(l);
}

static int by_type_then_id(const void *a, const void *b)
{
    const struct loaded *x = a, *y = b;
    int c = strcmp(x->type ? x->type : "", y->type ? y->type : "");
    return c ? c : (x->id > y->id) - (x->id < y->id);
}

static int cmd_check(const char *dir, enum kb_compat level)
{
    struct loaded *l = NULL;
    size_t n = 0;
    int errors = load_all(dir, &l, &n);
    if (!l) {
        fprintf(stderr, "schema check: failed\n");
        return 1;
    }
    qsort(l, n, sizeof *l, by_type_then_id);
    size_t subjects = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && l[j].type && l[i].type && !strcmp(l[j].type, l[i].type))
            j++;
        if (j == i)
            j = i + 1;
        subjects++;
        for (size_t k = i + 1; k < j; k++) {
            if (!l[k].avsc)
                continue;
            const kb_avsc_t *prev[64];
            size_t np = 0;
            for (size_t m = i; m < k && np < 64; m++)
                if (l[m].avsc)
                    prev[np++] = l[m].avsc;
            char why[1024];
            if (kb_compat_check(level, l[k].avsc, prev, np, why, sizeof why) != KB_OK) {
                fprintf(stderr, "%s: %s (event type %s, id %d)\n", l[k].path, why, l[k].type,
                        l[k].id);
                errors++;
            }
        }
        i = j;
    }
    if (errors)
        fprintf(stderr, "schema check: %d error(s) in %zu schemas\n", errors, n);
    else
        printf("schema check: %zu schemas, %zu event types, all valid and %s\n", n, subjects,
               kb_compat_name(level));
    free_all(l, n);
    return errors ? 1 : 0;
}

static int cmd_register(const char *dir, const char *url)
{
    struct loaded *l = NULL;
    size_t n = 0;
    int errors = load_all(dir, &l, &n);
    if (errors) {
        fprintf(stderr, "schema register: fix the schemas first (ketenbus schema check)\n");
        free_all(l, n);
        return 1;
    }
    qsort(l, n, sizeof *l, by_type_then_id);
    size_t ul = strlen(url);
    while (ul && url[ul - 1] == '/')
        ul--;
    int done = 0, failed = 0;
    for (size_t i = 0; i < n; i++) {
        char full[2048], err[512];
        snprintf(full, sizeof full, "%.*s/subjects/%s/versions", (int)ul, url, l[i].type);
        json_t *body = json_pack("{s:s,s:i}", "schema", l[i].text, "id", l[i].id);
        char *text = json_dumps(body, JSON_COMPACT);
        json_decref(body);
        struct kb_http_response r;
        kb_err_t e = text ? kb_http_fetch("POST", full, "application/vnd.schemaregistry.v1+json",
                                          text, strlen(text), 30000, &r, err, sizeof err)
                          : KB_ERR_NOMEM;
        free(text);
        if (e) {
            fprintf(stderr, "%s: %s\n", l[i].path, err);
            failed++;
            continue;
        }
        json_t *j = json_loads(r.body, 0, NULL);
        json_int_t got = json_integer_value(json_object_get(j, "id"));
        if (r.status != 200) {
            fprintf(stderr, "%s: registry answered %d: %s\n", l[i].path, r.status,
                    json_string_value(json_object_get(j, "message"))
                        ? json_string_value(json_object_get(j, "message"))
                        : r.body);
            failed++;
        } else if (got != l[i].id) {
            fprintf(stderr, "%s: registry gave id %lld instead of kb.schemaId %d\n", l[i].path,
                    (long long)got, l[i].id);
            failed++;
        } else {
            printf("registered %s id=%d\n", l[i].type, l[i].id);
            done++;
        }
        json_decref(j);
        kb_http_response_fini(&r);
    }
    printf("schema register: %d registered, %d failed\n", done, failed);
    free_all(l, n);
    return failed ? 1 : 0;
}

static int cmd_serve(const char *listen, enum kb_compat level, struct kb_kafka_opts *ko,
                     struct kb_serve_opts *so)
{
    char err[512], host[256];
    uint16_t port;
    if (!listen)
        listen = "127.0.0.1:8081";
    if (kb_serve_addr_parse(listen, host, sizeof host, &port, err, sizeof err)) {
        fprintf(stderr, "error: --listen wants HOST:PORT\n");
        return 2;
    }
    struct kb_registry_opts ro = {.kafka = ko, .default_compat = level};
    kb_registry_t *r = kb_registry_new(&ro, err, sizeof err);
    if (!r) {
        fprintf(stderr, "error: registry: %s\n", err);
        return 1;
    }
    so->max_body = 4 << 20;
    kb_http_t *h = kb_serve_new(listen, so, err, sizeof err);
    int rc = 1;
    if (!h || kb_registry_routes(r, h) != KB_OK || kb_http_start(h, err, sizeof err) != KB_OK) {
        fprintf(stderr, "error: http: %s\n", err);
        goto out;
    }
    static atomic_int stop;
    if (kb_stop_signals(&stop, "registry",
                        "none: registered schemas are in Kafka; a request left unanswered "
                        "fails at its client",
                        err, sizeof err)) {
        fprintf(stderr, "error: %s\n", err);
        goto out;
    }
    /* kb_registry_new read the schemas topic to its end: ready to answer. */
    kb_metrics_set_ready(1);
    printf("listening on %s://%s:%u\n", kb_serve_scheme(so), host, (unsigned)kb_http_port(h));
    fflush(stdout);
    while (!atomic_load(&stop))
        usleep(100 * 1000);
    rc = 0;
out:
    kb_http_destroy(h);
    kb_registry_destroy(r);
    return rc;
}

enum { OPT_LEVEL = 1000, OPT_URL, OPT_LISTEN, OPT_KCONF };

int kb_cmd_schema(int argc, char **argv)
{
    static const struct option longopts[] = {{"level", required_argument, NULL, OPT_LEVEL},
                                             {"url", required_argument, NULL, OPT_URL},
                                             {"listen", required_argument, NULL, OPT_LISTEN},
                                             {"bootstrap", required_argument, NULL, 'b'},
                                             {"kafka-property", required_argument, NULL, 'X'},
                                             {"kafka-config", required_argument, NULL, OPT_KCONF},
                                             {"help", no_argument, NULL, 'h'},
                                             KB_SERVE_LONGOPTS,
                                             {NULL, 0, NULL, 0}};
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        if (argc >= 2)
            fputs(kb_serve_usage, stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    struct kb_kafka_opts ko;
    kb_kafka_opts_init(&ko);
    enum kb_compat level = KB_COMPAT_BACKWARD_TRANSITIVE;
    const char *url = NULL, *listen = NULL;
    struct kb_serve_opts so = {0};
    char err[512];
    int c, rc = 2;
    optind = 1;
    while ((c = getopt_long(argc - 1, argv + 1, "b:X:h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_LEVEL:
            if (kb_compat_parse(optarg, &level) != KB_OK) {
                fprintf(stderr, "error: unknown level %s\n", optarg);
                goto out;
            }
            break;
        case OPT_URL: url = optarg; break;
        case OPT_LISTEN: listen = optarg; break;
        case 'b': snprintf(ko.bootstrap, sizeof ko.bootstrap, "%s", optarg); break;
        case 'X':
            if (kb_kafka_opts_set_kv(&ko, optarg, err, sizeof err)) {
                fprintf(stderr, "error: %s\n", err);
                goto out;
            }
            break;
        case OPT_KCONF:
            if (kb_kafka_opts_load(&ko, optarg, err, sizeof err)) {
                fprintf(stderr, "error: %s\n", err);
                goto out;
            }
            break;
        case 'h':
            fputs(usage, stdout);
            fputs(kb_serve_usage, stdout);
            rc = 0;
            goto out;
        default:
            if (kb_serve_opts_arg(&so, c, optarg))
                break;
            fputs(usage, stderr);
            goto out;
        }
    }
    const char *dir = optind < argc - 1 ? argv[1 + optind] : KB_SCHEMA_DIR;
    if (!strcmp(sub, "check")) {
        rc = cmd_check(dir, level);
    } else if (!strcmp(sub, "register")) {
        if (!url) {
            fprintf(stderr, "error: register needs --url\n");
            goto out;
        }
        rc = cmd_register(dir, url);
    } else if (!strcmp(sub, "serve")) {
        rc = cmd_serve(listen, level, &ko, &so);
    } else {
        fprintf(stderr, "error: unknown schema command \"%s\"\n", sub);
        fputs(usage, stderr);
    }
out:
    kb_kafka_opts_fini(&ko);
    return rc;
}
