/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mxgate-gen's load client: TCP connections opened from a worker of the same
 * stack the gateway runs, driven from the worker loop (dp_worker.app_poll).
 * Modes: one or more bulk streams (to a discard service), short
 * request/response connections (to an echo service), or bulk streams read
 * back from an echo service and checked byte by byte.
 */
#ifndef MX_GEN_CLIENT_H
#define MX_GEN_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "dataplane/core/dp.h"

enum gen_mode {
	GEN_MODE_STREAM, /* send as fast as the window allows; nothing comes back */
	GEN_MODE_RR,     /* open, send SIZE bytes, read SIZE bytes back, close; again */
	GEN_MODE_ECHO,   /* send as fast as the window allows and check what comes back */
};

struct gen_params {
	enum gen_mode mode;
	uint32_t dst;      /* server address, network order */
	uint16_t port;     /* server port, network order */
	unsigned conns;    /* connections kept open (stream, echo) or in flight (rr); 0: none */
	unsigned size;     /* rr: request (and response) bytes, 1..65536 */
};

/* Running totals of one client; its worker is the only writer. All-zero to start. */
struct gen_stats {
	uint64_t bytes_sent;     /* payload accepted by tcp_send() */
	uint64_t bytes_received; /* payload read back (rr, echo) */
	uint64_t opened;         /* tcp_connect() calls that started a handshake */
	uint64_t completed;      /* rr: responses read back in full and correct */
	uint64_t errors;         /* failed opens, resets, timeouts, wrong or missing data */
	uint64_t mismatches;     /* bytes read back that differ from what was sent */
};

struct gen_client;

/*
 * Makes the client of worker W (not started; it opens nothing until
 * gen_client_start()). Installs itself as W's app_poll. Returns the client or
 * NULL (out of memory, or no route to p->dst).
 */
struct gen_client *gen_client_new(const struct gen_params *p, struct dp_worker *w);

/*
 * Frees a client. Its worker must be freed first (dp_worker_free(): aborting
 * the connections left calls back into the client); NULL is fine.
 */
void gen_client_free(struct gen_client *g);

/* From any thread: start opening connections now. */
void gen_client_start(struct gen_client *g);

/*
 * From any thread: stop opening connections. Streams are closed (FIN after
 * what is queued); rr connections in flight finish their exchange.
 */
void gen_client_stop(struct gen_client *g);

/* From any thread: connections open now. */
unsigned gen_client_active(const struct gen_client *g);

/* From any thread: a copy of the running totals. */
void gen_client_read(const struct gen_client *g, struct gen_stats *out);

#endif
