/* SPDX-License-Identifier: BSD-3-Clause */
/* The simulated link between two stacks; see link.h. */
#include "link.h"

#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "harness.h"

#include <rte_tcp.h>
#include <stdio.h>

/* LINK_TRACE=1 prints every packet as it enters the link: time, direction, flags, seq/ack, len. */
static void trace(const struct link *l, int to, const struct rte_mbuf *m, const char *what)
{
	static int on = -1;
	if (on < 0)
		on = getenv("LINK_TRACE") != NULL;
	if (!on)
		return;
	const struct rte_ipv4_hdr *ip = rte_pktmbuf_mtod(m, const struct rte_ipv4_hdr *);
	const struct rte_tcp_hdr *th = (const void *)(ip + 1);
	unsigned hl = (th->data_off >> 4) * 4u;
	uint8_t f = th->tcp_flags;
	fprintf(stderr, "%10.3f ms %c->%c %s%s%s%s%s seq=%u ack=%u win=%u len=%u %s\n",
		(double)(l->now - LINK_HZ) / 1e6, to ? 'A' : 'B', to ? 'B' : 'A',
		f & RTE_TCP_SYN_FLAG ? "S" : "", f & RTE_TCP_ACK_FLAG ? "." : "",
		f & RTE_TCP_FIN_FLAG ? "F" : "", f & RTE_TCP_RST_FLAG ? "R" : "",
		f & RTE_TCP_PSH_FLAG ? "P" : "", rte_be_to_cpu_32(th->sent_seq),
		rte_be_to_cpu_32(th->recv_ack), rte_be_to_cpu_16(th->rx_win),
		(unsigned)(m->pkt_len - sizeof(*ip) - hl), what);
}

static uint64_t next_rand(struct link *l)
{
	/* xorshift64*: small, fast, and the same sequence for the same seed */
	l->rng ^= l->rng >> 12;
	l->rng ^= l->rng << 25;
	l->rng ^= l->rng >> 27;
	return l->rng * 2685821657736338717ull;
}

double link_rand(struct link *l)
{
	return (double)(next_rand(l) >> 11) / (double)(1ull << 53);
}

static void enqueue(struct link *l, int to, struct rte_mbuf *m, uint64_t at)
{
	if (l->n_q == LINK_MAX_INFLIGHT) {
		rte_pktmbuf_free(m);
		l->dropped++;
		return;
	}
	l->q[l->n_q++] = (struct link_pkt){.at = at, .order = l->order++, .to = to, .m = m};
}

/* A stack's output: through the link's impairments towards the other stack. */
static void link_output(void *arg, struct rte_mbuf *m, uint32_t dst)
{
	struct link *l = arg;
	int to = dst == l->addr[0] ? 0 : 1;
	int dir = 1 - to;

	/* The payload may be indirect mbufs of the sender's queue: deliver a private copy,
	 * as a NIC would, so the receiver never shares the sender's buffers. */
	struct rte_mbuf *copy = rte_pktmbuf_copy(m, l->pool, 0, UINT32_MAX);
	rte_pktmbuf_free(m);
	if (!copy) {
		l->dropped++;
		return;
	}
	uint64_t depart = l->now;
	if (l->props.bw_bps) {
		if (l->busy_until[dir] > depart)
			depart = l->busy_until[dir];
		depart += (uint64_t)copy->pkt_len * 8 * LINK_HZ / l->props.bw_bps;
		l->busy_until[dir] = depart;
	}
	if (link_rand(l) < l->props.loss) {
		trace(l, to, copy, "LOST");
		rte_pktmbuf_free(copy);
		l->dropped++;
		return;
	}
	uint64_t at = depart + l->props.delay_ns;
	if (link_rand(l) < l->props.reorder) {
		at += l->props.reorder_ns;
		l->reordered++;
	}
	if (link_rand(l) < l->props.dup) {
		struct rte_mbuf *d = rte_pktmbuf_copy(copy, l->pool, 0, UINT32_MAX);
		if (d) {
			enqueue(l, to, d, at + 1000);
			l->duplicated++;
		}
	}
	trace(l, to, copy, "");
	enqueue(l, to, copy, at);
}

/* The virtual TSC, for application calls the stacks see outside their callbacks. */
static uint64_t link_clock(void *arg)
{
	const struct link *l = arg;
	return l->now;
}

struct rte_mempool *link_pool(struct link *l)
{
	return l->pool;
}

void link_init(struct link *l, const struct link_props *props, uint64_t seed,
	       const struct tcp_params *params)
{
	struct tcp_params p;
	uint8_t secret[2][32];

	harness_eal_init();
	memset(l, 0, sizeof(*l));
	l->props = *props;
	l->rng = seed * 0x9e3779b97f4a7c15ull + 1;
	l->now = LINK_HZ; /* start at 1 s: a zero clock looks like "never" to some code */
	l->pool = rte_pktmbuf_pool_create("link_pool", 16383, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
					  SOCKET_ID_ANY);
	cr_assert_not_null(l->pool);
	l->q = calloc(LINK_MAX_INFLIGHT, sizeof(*l->q));
	cr_assert_not_null(l->q);
	if (params)
		p = *params;
	else
		tcp_params_default(&p);
	l->addr[0] = rte_cpu_to_be_32(0xc6336401u); /* 198.51.100.1 */
	l->addr[1] = rte_cpu_to_be_32(0xc6336402u); /* 198.51.100.2 */
	for (int i = 0; i < 2; i++) {
		for (int b = 0; b < 32; b++)
			secret[i][b] = (uint8_t)next_rand(l);
		timer_wheel_init(&l->wheel[i], LINK_HZ, 1000, l->now);
		l->stack[i] = tcp_stack_new(&p, &l->wheel[i], l->pool, &l->stats[i], link_output,
					    l, 1500, secret[i]);
		cr_assert_not_null(l->stack[i]);
		tcp_stack_set_clock(l->stack[i], link_clock, l);
	}
}

void link_fini(struct link *l)
{
	for (int i = 0; i < 2; i++)
		tcp_stack_free(l->stack[i]);
	for (unsigned i = 0; i < l->n_q; i++)
		rte_pktmbuf_free(l->q[i].m);
	free(l->q);
	rte_mempool_free(l->pool);
}

/* Index of the packet to deliver first: earliest time, then order of sending. */
static int next_pkt(const struct link *l)
{
	int best = -1;
	for (unsigned i = 0; i < l->n_q; i++)
		if (best < 0 || l->q[i].at < l->q[best].at ||
		    (l->q[i].at == l->q[best].at && l->q[i].order < l->q[best].order))
			best = (int)i;
	return best;
}

bool link_run(struct link *l, bool (*done)(void *arg), void *arg, uint64_t limit_ns)
{
	uint64_t end = l->now + limit_ns;

	while (!done(arg)) {
		if (l->now >= end)
			return false;
		int i = next_pkt(l);
		uint64_t tick = (l->now / 1000000 + 1) * 1000000; /* the next wheel tick */
		if (i >= 0 && l->q[i].at <= tick) {
			struct link_pkt p = l->q[i];
			l->q[i] = l->q[--l->n_q];
			if (p.at > l->now)
				l->now = p.at;
			l->delivered++;
			tcp_input(l->stack[p.to], p.m, l->now);
			continue;
		}
		l->now = tick;
		for (int s = 0; s < 2; s++)
			timer_wheel_run(&l->wheel[s], l->now);
	}
	return true;
}
