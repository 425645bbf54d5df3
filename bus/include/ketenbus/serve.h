/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * ketenbus/serve.h - the HTTP "serving options" every long-running process
 * takes (route, deliver, schema serve): TLS, client certificates, a bearer
 * token file and the public path prefixes, parsed the same way everywhere
 * and turned into a kb_http_t that already serves the metrics endpoints.
 *
 * Use in a command:
 *
 *     static const struct option longopts[] = { ..., KB_SERVE_LONGOPTS, {NULL, 0, NULL, 0}};
 *     struct kb_serve_opts so = {0};
 *     ... default: if (kb_serve_opts_arg(&so, opt, optarg)) break; ...
 *     kb_http_t *h = kb_serve_new(addr, &so, errstr, sizeof errstr);  (metrics routes added)
 *     kb_http_route(h, ...);                                            (the command's own)
 *     kb_http_start(h, errstr, sizeof errstr);
 */
#ifndef KETENBUS_SERVE_H
#define KETENBUS_SERVE_H

#include <stddef.h>
#include <stdint.h>

#include "ketenbus/err.h"
#include "ketenbus/http.h"

/** Serving options; zero-initialise. Strings are not copied (argv lives long enough). */
struct kb_serve_opts {
    const char *tls_cert_file;      /* --http-tls-cert: serve HTTPS with this PEM chain */
    const char *tls_key_file;       /* --http-tls-key: its private key */
    const char *tls_client_ca_file; /* --http-client-ca: client certificates signed by it
                                     * authenticate */
    const char *token_file;         /* --http-token-file: "Authorization: Bearer" token */
    const char *public_prefixes;    /* --http-public: served without authentication;
                                     * NULL = KB_SERVE_PUBLIC_DEFAULT plus extra_public */
    const char *extra_public;       /* set by the command, not a flag: prefixes the command
                                     * itself knows hold no data (the dashboard page), added
                                     * to the default only, never to an explicit --http-public */
    size_t max_body;                /* set by the command: largest request body; 0 = 1 MiB */
};

/** Public by default when authentication is on: what Prometheus, `ketenbus top`
 *  and orchestrator probes read. "--http-public ''" makes everything protected. */
#define KB_SERVE_PUBLIC_DEFAULT "/metrics,/metrics.json,/healthz,/readyz"

/* getopt_long values of the serving options (clear of every command's own). */
enum {
    KB_SERVE_OPT_TLS_CERT = 3000,
    KB_SERVE_OPT_TLS_KEY,
    KB_SERVE_OPT_CLIENT_CA,
    KB_SERVE_OPT_TOKEN_FILE,
    KB_SERVE_OPT_PUBLIC,
};

/** The entries to put in a command's struct option table (needs <getopt.h>). */
#define KB_SERVE_LONGOPTS                                                                    \
    {"http-tls-cert", required_argument, NULL, KB_SERVE_OPT_TLS_CERT},                       \
        {"http-tls-key", required_argument, NULL, KB_SERVE_OPT_TLS_KEY},                     \
        {"http-client-ca", required_argument, NULL, KB_SERVE_OPT_CLIENT_CA},                 \
        {"http-token-file", required_argument, NULL, KB_SERVE_OPT_TOKEN_FILE},               \
        {"http-public", required_argument, NULL, KB_SERVE_OPT_PUBLIC}

/** Help text of the serving options, for a command's usage (ends with a newline). */
extern const char kb_serve_usage[];

/** Take getopt_long's @p opt / @p arg when it is a serving option: 1 when taken, 0 otherwise. */
int kb_serve_opts_arg(struct kb_serve_opts *o, int opt, const char *arg);

/** 1 when @p o asks for authentication (a token file or a client CA). */
int kb_serve_secured(const struct kb_serve_opts *o);

/**
 * The public prefixes in force for @p o into @p buf: the explicit
 * --http-public, else KB_SERVE_PUBLIC_DEFAULT plus o->extra_public.
 * KB_ERR_CONF when @p buf is too small.
 */
kb_err_t kb_serve_public(const struct kb_serve_opts *o, char *buf, size_t size);

/**
 * Split "host:port", ":port" (127.0.0.1) or "[v6]:port" into @p host and
 * @p port. KB_ERR_CONF with errstr when malformed.
 */
kb_err_t kb_serve_addr_parse(const char *addr, char *host, size_t host_size, uint16_t *port,
                             char *errstr, size_t errstr_size);

/**
 * A server on @p addr with the options of @p o and the metrics routes
 * (/metrics, /metrics.json, /healthz, /readyz) registered, not yet started:
 * the caller adds its own routes, then kb_http_start(). Checks that a TLS
 * certificate comes with its key. NULL with errstr on failure.
 * @thread the owning thread (like kb_http_new)
 */
kb_http_t *kb_serve_new(const char *addr, const struct kb_serve_opts *o, char *errstr,
                        size_t errstr_size);

/** kb_serve_new + kb_http_start, for processes that serve only metrics. */
kb_http_t *kb_serve_start(const char *addr, const struct kb_serve_opts *o, char *errstr,
                          size_t errstr_size);

/** "http" or "https" for @p o, for "listening on ..." lines. */
const char *kb_serve_scheme(const struct kb_serve_opts *o);

#endif
