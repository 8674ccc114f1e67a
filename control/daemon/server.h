/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The unix socket mxgatectl talks to: accepts clients, cuts their input into
 * request lines (proto.h), answers each through the daemon's handler, and
 * writes replies without blocking. Bounded everywhere: clients at once,
 * request size, reply backlog per client, idle time. A malformed request gets
 * an error reply; only an oversized one also ends its connection.
 */
#ifndef MX_CTLD_SERVER_H
#define MX_CTLD_SERVER_H

#include <poll.h>
#include <stdint.h>

#include "control/common/proto.h"

#define SRV_MAX_CLIENTS 16
#define SRV_IDLE_MS	60000	    /* a client that sends nothing for this long is closed */
#define SRV_MAX_BACKLOG (16u << 20) /* reply bytes a client may leave unread */

/* Answers a parsed request: returns the reply line (ctl_reply_*()), or NULL when out of memory. */
typedef char *(*srv_handler_fn)(void *ctx, const struct ctl_request *req);

struct srv;

/*
 * Listens on PATH (mode 0660). A stale socket file left by a killed daemon is
 * replaced; one a live daemon answers on is not. Creates PATH's directory
 * (0755) when missing. Returns the server, or NULL with *ERR set to -errno
 * (-EADDRINUSE: another daemon answers there).
 */
struct srv *srv_new(const char *path, srv_handler_fn fn, void *ctx, int *err);

/* Closes every connection and removes the socket file. */
void srv_free(struct srv *s);

/* Fills up to 1 + SRV_MAX_CLIENTS entries of FDS; returns how many. */
unsigned srv_pollfds(const struct srv *s, struct pollfd *fds);

/* Handles the poll() results for the N entries srv_pollfds() filled, at NOW_MS. */
void srv_run(struct srv *s, const struct pollfd *fds, unsigned n, uint64_t now_ms);

/* Milliseconds until a client's idle timer runs out. */
int srv_timeout_ms(const struct srv *s, uint64_t now_ms);

/* Counters, for status and tests of robustness. */
struct srv_counters {
	uint64_t accepted;
	uint64_t refused_busy;
	uint64_t requests;
	uint64_t errors; /* requests answered with an error of the request's own making */
};
const struct srv_counters *srv_counters(const struct srv *s);
unsigned srv_clients(const struct srv *s);

#endif
