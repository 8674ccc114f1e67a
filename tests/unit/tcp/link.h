/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The stack harness: two TCP stacks joined by a simulated link with seeded
 * loss, duplication, reordering, delay and a bandwidth limit, on a virtual
 * clock. Same seed, same run.
 */
#ifndef MX_TEST_TCP_LINK_H
#define MX_TEST_TCP_LINK_H

#include <stdbool.h>
#include <stdint.h>

#include "dataplane/core/counters.h"
#include "dataplane/core/timer.h"
#include "dataplane/tcp/tcp.h"

#define LINK_HZ 1000000000ull /* the virtual TSC counts nanoseconds */
#define LINK_MAX_INFLIGHT 65536

struct link_props {
	double loss;        /* probability a packet is dropped */
	double dup;         /* probability a packet is delivered twice */
	double reorder;     /* probability a packet is held back by reorder_ns */
	uint64_t delay_ns;  /* one-way propagation delay */
	uint64_t reorder_ns;
	uint64_t bw_bps;    /* 0: unlimited */
};

struct link_pkt {
	uint64_t at; /* delivery time */
	uint64_t order;
	int to;      /* 0: stack A, 1: stack B */
	struct rte_mbuf *m;
};

struct link {
	uint64_t now;
	uint64_t rng;
	struct link_props props;
	struct rte_mempool *pool;
	struct timer_wheel wheel[2];
	struct dp_stats stats[2];
	struct tcp_stack *stack[2];
	uint32_t addr[2]; /* network order: 198.51.100.1, 198.51.100.2 */
	uint64_t busy_until[2]; /* the sender side of each direction, for bandwidth */
	struct link_pkt *q;
	unsigned n_q;
	uint64_t order;
	uint64_t delivered, dropped, duplicated, reordered;
};

/* Sets up two stacks with PARAMS (NULL: defaults) and the link; mbufs from a private pool. */
void link_init(struct link *l, const struct link_props *props, uint64_t seed,
	       const struct tcp_params *params);
/* Frees both stacks (aborting what is left), queued packets and the pool. */
void link_fini(struct link *l);
/* Runs the clock forward until DONE(arg) is true or the clock passes LIMIT_NS. */
bool link_run(struct link *l, bool (*done)(void *arg), void *arg, uint64_t limit_ns);
/* The pool the link and stacks use (for applications' send buffers). */
struct rte_mempool *link_pool(struct link *l);
/* A uniform double in [0, 1) from the link's seeded generator. */
double link_rand(struct link *l);

#endif
