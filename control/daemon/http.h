/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * GET /metrics over HTTP (libmicrohttpd), run from the daemon's own poll()
 * loop: MHD in "external" epoll mode hands over one descriptor to poll and a
 * timeout, so the page is rendered on the same thread that owns the samples
 * and no lock is needed.
 */
#ifndef MX_CTLD_HTTP_H
#define MX_CTLD_HTTP_H

#include <stdint.h>

#include "control/common/sbuf.h"

#define HTTP_MAX_CONNS	    16
#define HTTP_CONN_TIMEOUT_S 10

/* Renders the /metrics page into OUT. */
typedef void (*http_render_fn)(void *ctx, struct sbuf *out);

struct http;

/*
 * Serves on ADDR:PORT (IPv4 and port in network order). Returns the server,
 * or NULL after logging why (address in use, no epoll support).
 */
struct http *http_new(uint32_t addr, uint16_t port, http_render_fn fn, void *ctx);

void http_free(struct http *h);

/* The descriptor to poll for POLLIN. */
int http_fd(const struct http *h);

/* Milliseconds until MHD needs to run by the clock; -1 when only traffic matters. */
int http_timeout_ms(const struct http *h);

/* Does MHD's work: call after every poll() that included http_fd(). */
void http_run(struct http *h);

/* Pages served, for status. */
uint64_t http_scrapes(const struct http *h);

#endif
