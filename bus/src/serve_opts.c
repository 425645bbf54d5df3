/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * serve_opts.c - the shared HTTP serving options (TLS, client CA, bearer
 * token, public prefixes) of every long-running process, and the one place
 * that turns them and a listen address into a server with the metrics routes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ketenbus/metrics.h"
#include "ketenbus/serve.h"

const char kb_serve_usage[] =
    "  --http-tls-cert FILE         serve HTTPS with this PEM certificate chain\n"
    "  --http-tls-key FILE          its PEM private key (mode 600)\n"
    "  --http-client-ca FILE        clients presenting a certificate signed by this CA\n"
    "                               are authenticated (mutual TLS)\n"
    "  --http-token-file FILE       \"Authorization: Bearer <token>\" with the token in\n"
    "                               FILE (one line) authenticates; compared in constant time\n"
    "  --http-public PREFIXES       comma-separated path prefixes served without\n"
    "                               authentication when a token or client CA is set\n"
    "                               (default " KB_SERVE_PUBLIC_DEFAULT ";\n"
    "                               \"\" protects everything). Repeated failed\n"
    "                               authentication from one address gets 429\n";

int kb_serve_opts_arg(struct kb_serve_opts *o, int opt, const char *arg)
{
    switch (opt) {
    case KB_SERVE_OPT_TLS_CERT: o->tls_cert_file = arg; return 1;
    case KB_SERVE_OPT_TLS_KEY: o->tls_key_file = arg; return 1;
    case KB_SERVE_OPT_CLIENT_CA: o->tls_client_ca_file = arg; return 1;
    case KB_SERVE_OPT_TOKEN_FILE: o->token_file = arg; return 1;
    case KB_SERVE_OPT_PUBLIC: o->public_prefixes = arg; return 1;
    default: return 0;
    }
}

int kb_serve_secured(const struct kb_serve_opts *o)
{
    return o && (o->token_file || o->tls_client_ca_file);
}

const char *kb_serve_scheme(const struct kb_serve_opts *o)
{
    return o && o->tls_cert_file ? "https" : "http";
}

kb_err_t kb_serve_public(const struct kb_serve_opts *o, char *buf, size_t size)
{
    int n;
    if (o && o->public_prefixes)
        n = snprintf(buf, size, "%s", o->public_prefixes);
    else if (o && o->extra_public && o->extra_public[0])
        n = snprintf(buf, size, "%s,%s", KB_SERVE_PUBLIC_DEFAULT, o->extra_public);
    else
        n = snprintf(buf, size, "%s", KB_SERVE_PUBLIC_DEFAULT);
    return n < 0 || (size_t)n >= size ? KB_ERR_CONF : KB_OK;
}

kb_err_t kb_serve_addr_parse(const char *addr, char *host, size_t host_size, uint16_t *port,
                             char *errstr, size_t errstr_size)
{
    const char *colon = addr ? strrchr(addr, ':') : NULL;
    char *end = NULL;
    long p = colon && colon[1] ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || !end || *end || p < 0 || p > 65535)
        return kb_err_set(KB_ERR_CONF, errstr, errstr_size,
                          "listen address \"%s\" is not HOST:PORT", addr ? addr : "");
    const char *h = addr;
    size_t hl = (size_t)(colon - addr);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') { /* [::1]:8080 */
        h++;
        hl -= 2;
    }
    if (hl == 0) {
        h = "127.0.0.1";
        hl = strlen(h);
    }
    if (hl >= host_size)
        return kb_err_set(KB_ERR_CONF, errstr, errstr_size, "listen host too long");
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (uint16_t)p;
    return KB_OK;
}

kb_http_t *kb_serve_new(const char *addr, const struct kb_serve_opts *o, char *errstr,
                        size_t errstr_size)
{
    char host[256], pub[1024];
    uint16_t port;
    if (kb_serve_addr_parse(addr, host, sizeof host, &port, errstr, errstr_size))
        return NULL;
    if (o && (!o->tls_cert_file != !o->tls_key_file)) {
        kb_err_set(KB_ERR_CONF, errstr, errstr_size,
                   "--http-tls-cert and --http-tls-key go together");
        return NULL;
    }
    if (o && o->tls_client_ca_file && !o->tls_cert_file) {
        kb_err_set(KB_ERR_CONF, errstr, errstr_size,
                   "--http-client-ca needs TLS (--http-tls-cert, --http-tls-key)");
        return NULL;
    }
    if (kb_serve_public(o, pub, sizeof pub)) {
        kb_err_set(KB_ERR_CONF, errstr, errstr_size, "--http-public too long");
        return NULL;
    }
    struct kb_http_opts ho = {
        .addr = host,
        .port = port,
        .max_body = o ? o->max_body : 0,
        .tls_cert_file = o ? o->tls_cert_file : NULL,
        .tls_key_file = o ? o->tls_key_file : NULL,
        .tls_client_ca_file = o ? o->tls_client_ca_file : NULL,
        .token_file = o ? o->token_file : NULL,
        .public_prefixes = kb_serve_secured(o) ? pub : NULL,
    };
    kb_http_t *h = kb_http_new(&ho, errstr, errstr_size);
    if (!h)
        return NULL;
    if (kb_metrics_routes(h)) {
        kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "registering metrics routes failed");
        kb_http_destroy(h);
        return NULL;
    }
    return h;
}

kb_http_t *kb_serve_start(const char *addr, const struct kb_serve_opts *o, char *errstr,
                          size_t errstr_size)
{
    kb_http_t *h = kb_serve_new(addr, o, errstr, errstr_size);
    if (h && kb_http_start(h, errstr, errstr_size)) {
        kb_http_destroy(h);
        return NULL;
    }
    return h;
}
