/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * webhook_receiver.c - kb-webhook-receiver, the HTTPS webhook subscriber of
 * the delivery tests: answers the CloudEvents validation handshake, checks
 * the HMAC signatures (v1 over the body, v2 over the signed headers and the
 * body, each rebuilt here independently of ketenbus), misbehaves on request
 * (fail with a status, throttle with Retry-After, hang until the sender
 * times out) for chosen events, and logs every request as one JSON line so
 * the tests can assert order, timing and signatures.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/ssl.h>

static const char usage[] =
    "usage: kb-webhook-receiver --cert PEM --key PEM --log FILE [options]\n"
    "\n"
    "  --port N             listen port on 127.0.0.1 (0 = any; see --port-file)\n"
    "  --bind-any           listen on all addresses (containers), not just loopback\n"
    "  --port-file FILE     write the chosen port here once listening\n"
    "  --secret-file FILE   verify X-Ketenbus-Signature with this secret: v1 always,\n"
    "                       v2 when sent (401 if either is wrong); logged as sig and\n"
    "                       sig_v2 (ok, bad, stale, none)\n"
    "  --require-v2         401 for a POST without a v2 signature too\n"
    "  --tamper NAME=VALUE  replace header NAME before checking, as an intermediary\n"
    "                       rewriting it would (v1 does not notice, v2 must)\n"
    "  --rule MATCH=ACTION  misbehave for matching events, counted per event id:\n"
    "                       MATCH is subject:<pseudonym>, id:<event id> or *;\n"
    "                       ACTION is <status>x<n>[@<retry-after s>] (answer status for\n"
    "                       the first n attempts), hangx<n> (never answer),\n"
    "                       dripx<n> (200 with a 100-byte body sent a byte every\n"
    "                       300 ms), hugex<n> (200 with a 1 MiB body), or\n"
    "                       <status>xinf (always). First matching rule wins.\n"
    "  --reject-handshake   answer the validation OPTIONS with 403\n"
    "  --client-ca FILE     require a client certificate signed by this CA\n";

#define MAX_RULES 16
#define DRIP (-1) /* rule status: a body that never ends, a byte at a time */
#define HUGE (-2) /* rule status: 200 with a 1 MiB body */
#define MAX_IDS 4096

struct rule {
    char kind;         /* 's' subject, 'i' id, '*' any */
    char value[128];   /* subject or id to match */
    int status;        /* status to answer, or 0 for hang, DRIP, HUGE */
    long times;        /* attempts that misbehave; -1 = always */
    int retry_after;   /* Retry-After seconds, or -1 for none */
};

struct attempt_count {
    char id[64];
    long n;
};

static struct rule rules[MAX_RULES];
static size_t n_rules;
static struct attempt_count counts[MAX_IDS];
static size_t n_counts;
static unsigned char secret[256];
static size_t secret_len;
static int have_secret, reject_handshake, require_v2;
static char tamper_name[64], tamper_value[256]; /* --tamper NAME=VALUE, or "" */
static FILE *log_file;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long bump(const char *id)
{
    for (size_t i = 0; i < n_counts; i++)
        if (!strcmp(counts[i].id, id))
            return ++counts[i].n;
    if (n_counts == MAX_IDS)
        return 1;
    snprintf(counts[n_counts].id, sizeof counts[n_counts].id, "%s", id);
    counts[n_counts].n = 1;
    return counts[n_counts++].n;
}

static int parse_rule(const char *arg)
{
    if (n_rules == MAX_RULES)
        return -1;
    struct rule *r = &rules[n_rules];
    const char *eq = strrchr(arg, '=');
    if (!eq)
        return -1;
    if (!strncmp(arg, "subject:", 8) || !strncmp(arg, "id:", 3)) {
        r->kind = arg[0] == 's' ? 's' : 'i';
        const char *v = strchr(arg, ':') + 1;
        snprintf(r->value, sizeof r->value, "%.*s", (int)(eq - v), v);
    } else if (eq - arg == 1 && arg[0] == '*') {
        r->kind = '*';
    } else {
        return -1;
    }
    const char *act = eq + 1;
    r->retry_after = -1;
    char *end;
    if (!strncmp(act, "hang", 4)) {
        r->status = 0;
        end = (char *)act + 4;
    } else if (!strncmp(act, "drip", 4) || !strncmp(act, "huge", 4)) {
        r->status = act[0] == 'd' ? DRIP : HUGE;
        end = (char *)act + 4;
    } else {
        r->status = (int)strtol(act, &end, 10);
    }
    if (*end != 'x')
        return -1;
    if (!strncmp(end + 1, "inf", 3)) {
        r->times = -1;
        end += 4;
    } else {
        r->times = strtol(end + 1, &end, 10);
    }
    if (*end == '@')
        r->retry_after = (int)strtol(end + 1, &end, 10);
    if (*end)
        return -1;
    n_rules++;
    return 0;
}

static void log_line(json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    if (s) {
        fprintf(log_file, "%s\n", s);
        fflush(log_file);
        free(s);
    }
}

static void reply(struct evhttp_request *req, int status, const char *text)
{
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b, "%s\n", text);
    evhttp_send_reply(req, status, text, b);
    evbuffer_free(b);
}

static void on_options(struct evhttp_request *req)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    const char *origin = evhttp_find_header(in, "WebHook-Request-Origin");
    json_t *o = json_pack("{s:I,s:s,s:s?}", "t_ms", (json_int_t)now_ms(), "method", "OPTIONS",
                          "origin", origin);
    int status = !origin ? 400 : reject_handshake ? 403 : 200;
    json_object_set_new(o, "status", json_integer(status));
    log_line(o);
    json_decref(o);
    if (status == 200) {
        struct evkeyvalq *out = evhttp_request_get_output_headers(req);
        evhttp_add_header(out, "WebHook-Allowed-Origin", origin);
        evhttp_add_header(out, "WebHook-Allowed-Rate", "*");
        evhttp_add_header(out, "Allow", "POST");
    }
    reply(req, status, status == 200 ? "OK" : "Forbidden");
}

static void hmac_hex(const void *a, size_t a_len, const void *b, size_t b_len, char out[65])
{
    unsigned char mac[32], *msg = malloc(a_len + b_len + 1);
    unsigned int mac_len = 0;
    memcpy(msg, a, a_len);
    memcpy(msg + a_len, b, b_len);
    HMAC(EVP_sha256(), secret, (int)secret_len, msg, a_len + b_len, mac, &mac_len);
    free(msg);
    for (unsigned i = 0; i < mac_len && i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", mac[i]);
}

/* The value of scheme @p scheme ("v1", "v2") in the X-Ketenbus-Signature
 * list "v1=<hex>, v2=<hex>" (entries separated by commas, spaces around
 * them ignored; unknown schemes skipped), copied to @p out; 0 if absent. */
static int sig_entry(const char *list, const char *scheme, char *out, size_t cap)
{
    size_t sl = strlen(scheme);
    for (const char *p = list; *p;) {
        p += strspn(p, " ,");
        size_t el = strcspn(p, ",");
        size_t vl = el;
        while (vl && p[vl - 1] == ' ')
            vl--;
        if (vl > sl && !strncmp(p, scheme, sl) && p[sl] == '=' && vl - sl - 1 < cap) {
            snprintf(out, cap, "%.*s", (int)(vl - sl - 1), p + sl + 1);
            return 1;
        }
        p += el;
    }
    return 0;
}

static int same(const char *a, const char *b)
{
    return strlen(a) == strlen(b) && CRYPTO_memcmp(a, b, strlen(a)) == 0;
}

static size_t header_count(struct evkeyvalq *in, const char *name)
{
    size_t n = 0;
    for (struct evkeyval *kv = in->tqh_first; kv; kv = kv->next.tqe_next)
        n += !strcasecmp(kv->key, name);
    return n;
}

/* Headers this receiver acts on: all must be signed by v2. */
static int acted_on(const char *name)
{
    return !strncasecmp(name, "ce-", 3) || !strcasecmp(name, "content-type") ||
           !strcasecmp(name, "idempotency-key");
}

/* v2 over the canonical string of the README ("v2\n<ts>\n<names>\n", a
 * "<name>:<value>\n" line per listed header in list order, "\n", body):
 * "ok", "bad" or "none" (no v2 entry). Built here from the request, as a
 * receiver would, not with ketenbus's code. */
static const char *check_v2(struct evkeyvalq *in, const char *ts, const char *list,
                            const unsigned char *body, size_t len)
{
    char got[129];
    if (!sig_entry(list, "v2", got, sizeof got))
        return "none";
    const char *names = evhttp_find_header(in, "X-Ketenbus-Signed-Headers");
    if (!names || header_count(in, "X-Ketenbus-Signed-Headers") != 1)
        return "bad";
    /* Every header acted on must be in the list: one added on the way
     * (a second ce-type, a ce-* the sender never sent) is refused. */
    for (struct evkeyval *kv = in->tqh_first; kv; kv = kv->next.tqe_next) {
        if (!acted_on(kv->key))
            continue;
        size_t kl = strlen(kv->key);
        int listed = 0;
        for (const char *p = names; *p && !listed; p += strcspn(p, ","), p += *p == ',')
            listed = strcspn(p, ",") == kl && !strncasecmp(p, kv->key, kl);
        if (!listed)
            return "bad";
    }
    struct evbuffer *c = evbuffer_new();
    evbuffer_add_printf(c, "v2\n%s\n%s\n", ts, names);
    const char *verdict = NULL;
    for (const char *p = names; *p && !verdict; p += strcspn(p, ","), p += *p == ',') {
        char name[64];
        size_t nl = strcspn(p, ",");
        if (nl == 0 || nl >= sizeof name) {
            verdict = "bad";
            break;
        }
        snprintf(name, sizeof name, "%.*s", (int)nl, p);
        const char *v = evhttp_find_header(in, name);
        if (!v || header_count(in, name) != 1)
            verdict = "bad"; /* listed but missing, or sent twice */
        else
            evbuffer_add_printf(c, "%s:%s\n", name, v);
    }
    if (!verdict) {
        evbuffer_add(c, "\n", 1);
        char want[65];
        size_t cl = evbuffer_get_length(c);
        hmac_hex(evbuffer_pullup(c, -1), cl, body, len, want);
        verdict = same(got, want) ? "ok" : "bad";
    }
    evbuffer_free(c);
    return verdict;
}

/* *v1 and *v2: "ok", "bad", "stale" (v1 only), "none" (no header, or for
 * v2 no v2 entry) or "unchecked" (no --secret-file). */
static void check_signature(struct evkeyvalq *in, const unsigned char *body, size_t len,
                            const char **v1, const char **v2)
{
    const char *ts = evhttp_find_header(in, "X-Ketenbus-Timestamp");
    const char *sig = evhttp_find_header(in, "X-Ketenbus-Signature");
    *v1 = *v2 = "none";
    if (!ts || !sig)
        return;
    if (!have_secret) {
        *v1 = *v2 = "unchecked";
        return;
    }
    *v2 = check_v2(in, ts, sig, body, len);
    char got[129], want[65], prefix[64];
    snprintf(prefix, sizeof prefix, "%.40s.", ts); /* v1: "<ts>.<body>" */
    hmac_hex(prefix, strlen(prefix), body, len, want);
    if (!sig_entry(sig, "v1", got, sizeof got) || !same(got, want)) {
        *v1 = "bad";
        return;
    }
    /* A signature older than 5 minutes is a replay. */
    long long age = now_ms() / 1000 - atoll(ts);
    *v1 = age > 300 || age < -300 ? "stale" : "ok";
}

/* A reply that takes 30 s: a byte every 300 ms, until the sender gives up. */
struct drip {
    struct evhttp_request *req;
    struct event *ev;
};

static void drip_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct drip *dr = arg;
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, "x", 1);
    evhttp_send_reply_chunk(dr->req, b);
    evbuffer_free(b);
}

/* A request left unanswered when its client hangs up: libevent detaches it
 * from the connection (its evcon becomes NULL) and leaves it to us. At our
 * own shutdown it is still attached, and the connection frees it. */
static void free_if_detached(struct evhttp_request *req)
{
    if (!evhttp_request_get_connection(req))
        evhttp_request_free(req);
}

static void drip_closed(struct evhttp_connection *conn, void *arg)
{
    (void)conn;
    struct drip *dr = arg;
    event_free(dr->ev);
    free_if_detached(dr->req);
    free(dr);
}

static void hang_closed(struct evhttp_connection *conn, void *arg)
{
    (void)conn;
    free_if_detached(arg);
}

static void drip_start(struct evhttp_request *req)
{
    struct drip *dr = calloc(1, sizeof *dr);
    struct evhttp_connection *conn = evhttp_request_get_connection(req);
    struct event_base *base = evhttp_connection_get_base(conn);
    dr->req = req;
    dr->ev = event_new(base, -1, EV_PERSIST, drip_tick, dr);
    struct timeval tv = {0, 300 * 1000};
    /* small enough for any body cap: only its pace (30 s for 100 bytes) is hostile */
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Length", "100");
    evhttp_send_reply_start(req, 200, "OK");
    event_add(dr->ev, &tv);
    evhttp_connection_set_closecb(conn, drip_closed, dr);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    (void)arg;
    if (evhttp_request_get_command(req) == EVHTTP_REQ_OPTIONS) {
        on_options(req);
        return;
    }
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        reply(req, 405, "Method Not Allowed");
        return;
    }
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    struct evbuffer *buf = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(buf);
    unsigned char *body = malloc(len + 1);
    evbuffer_copyout(buf, body, len);
    body[len] = 0;
    if (tamper_name[0]) {
        /* What an intermediary that rewrites a header would hand over. */
        evhttp_remove_header(in, tamper_name);
        evhttp_add_header(in, tamper_name, tamper_value);
    }
    const char *sig, *sig_v2;
    check_signature(in, body, len, &sig, &sig_v2);

    /* Structured mode: attributes in the JSON body; binary: ce-* headers. */
    const char *ctype = evhttp_find_header(in, "Content-Type");
    int structured = ctype && !strncmp(ctype, "application/cloudevents+json", 28);
    json_error_t jerr;
    json_t *doc = json_loadb((const char *)body, len, 0, &jerr);
    const char *id, *subject, *type, *seq;
    if (structured) {
        id = json_string_value(json_object_get(doc, "id"));
        subject = json_string_value(json_object_get(doc, "subject"));
        type = json_string_value(json_object_get(doc, "type"));
        seq = json_string_value(json_object_get(doc, "sequence"));
    } else {
        id = evhttp_find_header(in, "ce-id");
        subject = evhttp_find_header(in, "ce-subject");
        type = evhttp_find_header(in, "ce-type");
        seq = evhttp_find_header(in, "ce-sequence");
    }
    json_t *data = structured ? json_object_get(doc, "data") : doc;
    long attempt = bump(id ? id : "");

    int status = 200, retry_after = -1;
    if (!id || !doc)
        status = 400;
    else if (have_secret &&
             (strcmp(sig, "ok") || !strcmp(sig_v2, "bad") || (require_v2 && strcmp(sig_v2, "ok"))))
        status = 401;
    for (size_t i = 0; status == 200 && i < n_rules; i++) {
        const struct rule *r = &rules[i];
        int match = r->kind == '*' || (r->kind == 's' && subject && !strcmp(subject, r->value)) ||
                    (r->kind == 'i' && !strcmp(id, r->value));
        if (!match)
            continue;
        if (r->times < 0 || attempt <= r->times) {
            status = r->status;
            retry_after = r->retry_after;
        }
        break;
    }
    json_t *o =
        json_pack("{s:I,s:s,s:s?,s:s?,s:s?,s:s?,s:I,s:s,s:s,s:i,s:s,s:O?}", "t_ms",
                  (json_int_t)now_ms(), "method", "POST", "id", id, "subject", subject, "type",
                  type, "seq", seq, "attempt", (json_int_t)attempt, "sig", sig, "sig_v2", sig_v2,
                  "status", status, "mode", structured ? "structured" : "binary", "data", data);
    const char *idem = evhttp_find_header(in, "Idempotency-Key");
    if (idem)
        json_object_set_new(o, "idempotency_key", json_string(idem));
    log_line(o);
    json_decref(o);
    json_decref(doc);
    free(body);
    if (status == 0) { /* hang: the sender's timeout ends it */
        evhttp_connection_set_closecb(evhttp_request_get_connection(req), hang_closed, req);
        return;
    }
    if (status == DRIP) {
        drip_start(req);
        return;
    }
    if (status == HUGE) {
        struct evbuffer *b = evbuffer_new();
        static char mib[1 << 20];
        memset(mib, 'x', sizeof mib);
        evbuffer_add(b, mib, sizeof mib);
        evhttp_send_reply(req, 200, "OK", b);
        evbuffer_free(b);
        return;
    }
    if (retry_after >= 0) {
        char v[16];
        snprintf(v, sizeof v, "%d", retry_after);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", v);
    }
    reply(req, status, status == 200 ? "OK" : "Not OK");
}

static struct bufferevent *make_tls_bev(struct event_base *base, void *arg)
{
    SSL_CTX *ctx = arg;
    return bufferevent_openssl_socket_new(base, -1, SSL_new(ctx), BUFFEREVENT_SSL_ACCEPTING,
                                          BEV_OPT_CLOSE_ON_FREE);
}

static void on_term(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopexit(arg, NULL);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"port", required_argument, NULL, 'p'},        {"port-file", required_argument, NULL, 'P'},
        {"cert", required_argument, NULL, 'c'},        {"key", required_argument, NULL, 'k'},
        {"secret-file", required_argument, NULL, 's'}, {"rule", required_argument, NULL, 'r'},
        {"log", required_argument, NULL, 'l'},         {"reject-handshake", no_argument, NULL, 'R'},
        {"client-ca", required_argument, NULL, 'C'},   {"help", no_argument, NULL, 'h'},
        {"bind-any", no_argument, NULL, 'A'},          {"require-v2", no_argument, NULL, 'V'},
        {"tamper", required_argument, NULL, 'T'},      {NULL, 0, NULL, 0}};
    const char *cert = NULL, *key = NULL, *log_path = NULL, *port_file = NULL, *client_ca = NULL;
    int port = 0, opt, bind_any = 0;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'p': port = atoi(optarg); break;
        case 'P': port_file = optarg; break;
        case 'c': cert = optarg; break;
        case 'k': key = optarg; break;
        case 'l': log_path = optarg; break;
        case 'R': reject_handshake = 1; break;
        case 'C': client_ca = optarg; break;
        case 'A': bind_any = 1; break;
        case 'V': require_v2 = 1; break;
        case 'T': {
            const char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg || (size_t)(eq - optarg) >= sizeof tamper_name ||
                strlen(eq + 1) >= sizeof tamper_value) {
                fprintf(stderr, "bad --tamper \"%s\"\n", optarg);
                return 2;
            }
            snprintf(tamper_name, sizeof tamper_name, "%.*s", (int)(eq - optarg), optarg);
            snprintf(tamper_value, sizeof tamper_value, "%s", eq + 1);
            break;
        }
        case 'r':
            if (parse_rule(optarg)) {
                fprintf(stderr, "bad rule \"%s\"\n", optarg);
                return 2;
            }
            break;
        case 's': {
            FILE *f = fopen(optarg, "rb");
            if (!f) {
                perror(optarg);
                return 2;
            }
            secret_len = fread(secret, 1, sizeof secret, f);
            fclose(f);
            /* Same rule as ketenbus's key files: hex digits (white space
             * around them ignored) are hex, anything else raw as stored. */
            size_t trimmed = secret_len, hex = 0;
            while (trimmed && strchr(" \t\r\n", secret[trimmed - 1]))
                trimmed--;
            while (hex < trimmed && strchr("0123456789abcdefABCDEF", secret[hex]))
                hex++;
            if (hex == trimmed && trimmed % 2 == 0 && trimmed) {
                secret_len = trimmed;
                for (size_t i = 0; i < secret_len / 2; i++) {
                    unsigned int b;
                    sscanf((const char *)secret + 2 * i, "%2x", &b);
                    secret[i] = (unsigned char)b;
                }
                secret_len /= 2;
            }
            have_secret = 1;
            break;
        }
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (!cert || !key || !log_path) {
        fputs(usage, stderr);
        return 2;
    }
    log_file = fopen(log_path, "a");
    if (!log_file) {
        perror(log_path);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        fprintf(stderr, "cannot load %s / %s\n", cert, key);
        return 1;
    }
    if (client_ca) {
        SSL_CTX_load_verify_locations(ctx, client_ca, NULL);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    struct event_base *base = event_base_new();
    struct evhttp *http = evhttp_new(base);
    evhttp_set_bevcb(http, make_tls_bev, ctx);
    evhttp_set_allowed_methods(http, EVHTTP_REQ_POST | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_GET);
    evhttp_set_gencb(http, on_request, NULL);
    struct evhttp_bound_socket *sock = evhttp_bind_socket_with_handle(http, bind_any ? "0.0.0.0" : "127.0.0.1", (ev_uint16_t)port);
    if (!sock) {
        fprintf(stderr, "cannot listen on port %d\n", port);
        return 1;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&ss, &sl);
    int bound = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (port_file) {
        char tmp[512];
        snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
        FILE *f = fopen(tmp, "w");
        if (f) {
            fprintf(f, "%d\n", bound);
            fclose(f);
            rename(tmp, port_file);
        }
    }
    fprintf(stderr, "kb-webhook-receiver listening on 127.0.0.1:%d\n", bound);
    struct event *term = evsignal_new(base, SIGTERM, on_term, base);
    struct event *intr = evsignal_new(base, SIGINT, on_term, base);
    event_add(term, NULL);
    event_add(intr, NULL);
    event_base_dispatch(base);
    event_free(term);
    event_free(intr);
    evhttp_free(http);
    event_base_free(base);
    SSL_CTX_free(ctx);
    fclose(log_file);
    return 0;
}
