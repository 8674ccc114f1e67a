/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The connection slots of one worker's load client, shared by the TCP load
 * client (client.c) and the SMTP one (smtp_load.c): a stack of free slot
 * indexes, how many connections are open (the main lcore reads it), and
 * active opens from our address toward the server, at most GEN_OPEN_BURST
 * per loop iteration, pausing GEN_OPEN_BACKOFF_MS after tcp_connect()
 * failed. Source ports are only those whose flow hash brings the replies back
 * to this worker (port_reply_owner()). Worker-only but for gen_opener_active().
 */
#ifndef MX_GEN_OPENER_H
#define MX_GEN_OPENER_H

#include <stdbool.h>
#include <stdint.h>

#include "dataplane/core/dp.h"

#define GEN_OPEN_BURST 32     /* handshakes started per loop iteration, at most */
#define GEN_OPEN_BACKOFF_MS 1 /* after tcp_connect() failed */

struct gen_opener {
	struct dp_worker *w;
	uint32_t src, dst; /* network order */
	uint16_t port;	   /* network order */
	unsigned n;	   /* slots */
	unsigned *free;	   /* a stack of free slot indexes */
	unsigned n_free;
	unsigned active;   /* open connections (atomic: read by the main lcore) */
	uint64_t next_tsc; /* no handshake before this (the backoff) */
};

/*
 * N slots (0 is fine: a worker whose share is none) toward DST:PORT from W's
 * address on the route to DST. Returns 0, -EHOSTUNREACH (no route) or -ENOMEM.
 */
int gen_opener_init(struct gen_opener *o, struct dp_worker *w, uint32_t dst, uint16_t port,
		    unsigned n);
void gen_opener_fini(struct gen_opener *o);

/* A handshake may start now: a free slot, and no backoff running. */
static inline bool gen_opener_ready(const struct gen_opener *o, uint64_t now)
{
	return o->n_free > 0 && now >= o->next_tsc;
}

/* The slot the next gen_opener_connect() takes (only while ready). */
static inline unsigned gen_opener_next(const struct gen_opener *o)
{
	return o->free[o->n_free - 1];
}

/* Slots in use: connections open or opening. */
static inline unsigned gen_opener_used(const struct gen_opener *o)
{
	return o->n - o->n_free;
}

/*
 * Starts a handshake from slot gen_opener_next() with ARG as the
 * connection's arg (tcp_arg()). Returns 0 (the slot is taken), or -errno
 * from tcp_connect(): the slot stays free and the backoff starts.
 */
int gen_opener_connect(struct gen_opener *o, const struct tcp_ops *ops, void *arg,
		       struct tcp_conn **c, uint64_t now);

/* Slot I's connection closed: the slot is free again. */
void gen_opener_release(struct gen_opener *o, unsigned i);

/* From any thread: connections open now. */
static inline unsigned gen_opener_active(const struct gen_opener *o)
{
	return __atomic_load_n(&o->active, __ATOMIC_RELAXED);
}

#endif
