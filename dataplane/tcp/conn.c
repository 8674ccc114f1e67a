/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The connection table (4-tuple hash with chaining), listeners, connection
 * life cycle, and the bounded TIME_WAIT list with recycling of the oldest.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_jhash.h>
#include <rte_malloc.h>
#include <rte_mempool.h>
#include <stdio.h>

#include "tcp_priv.h"

const char *const tcp_state_names[] = {
	[TCP_ST_CLOSED] = "CLOSED",           [TCP_ST_LISTEN] = "LISTEN",
	[TCP_ST_SYN_SENT] = "SYN_SENT",       [TCP_ST_SYN_RECEIVED] = "SYN_RECEIVED",
	[TCP_ST_ESTABLISHED] = "ESTABLISHED", [TCP_ST_FIN_WAIT_1] = "FIN_WAIT_1",
	[TCP_ST_FIN_WAIT_2] = "FIN_WAIT_2",   [TCP_ST_CLOSE_WAIT] = "CLOSE_WAIT",
	[TCP_ST_CLOSING] = "CLOSING",         [TCP_ST_LAST_ACK] = "LAST_ACK",
	[TCP_ST_TIME_WAIT] = "TIME_WAIT",
};

void tcp_params_default(struct tcp_params *p)
{
	*p = (struct tcp_params){
		.mss_default = 536,
		.rto_min_ms = 200,
		.rto_max_ms = 60000,
		.rto_initial_ms = 1000,
		.max_retries = 15,
		.syn_retries = 6,
		.delack_ms = 40,
		.keepalive_idle_s = 0,
		.keepalive_intvl_s = 75,
		.keepalive_probes = 9,
		.time_wait_ms = 60000,
		.time_wait_max = 8192,
		.rcv_buf = 256 * 1024,
		.snd_buf = 256 * 1024,
		.max_conns = 65536,
		.ooo_max_segs = 64,
		.mbufs_per_conn = 512,
		.wscale = 7,
		.syn_backlog = 1024,
		.cc = TCP_CC_NEWRENO,
	};
}

static uint32_t bucket(const struct tcp_stack *s, uint32_t laddr, uint16_t lport, uint32_t raddr,
		       uint16_t rport)
{
	uint32_t ports = ((uint32_t)lport << 16) | rport;
	return rte_jhash_3words(laddr, raddr, ports, s->secret[0] | (uint32_t)s->secret[1] << 8) &
	       s->table_mask;
}

struct tcp_stack *tcp_stack_new(const struct tcp_params *p, struct timer_wheel *wheel,
				struct rte_mempool *pool, struct dp_stats *stats,
				tcp_ip_output_fn out, void *out_arg, uint16_t local_mtu,
				const uint8_t secret[32])
{
	struct tcp_stack *s = rte_zmalloc("tcp_stack", sizeof(*s), RTE_CACHE_LINE_SIZE);
	uint32_t n = 1;

	if (!s)
		return NULL;
	s->p = *p;
	s->wheel = wheel;
	s->pool = pool;
	s->stats = stats;
	s->out = out;
	s->out_arg = out_arg;
	s->local_mtu = local_mtu;
	s->hz = wheel->hz;
	tcp_clock_init(&s->clock, s->hz);
	s->read_clock = tcp_read_tsc;
	tcp_clock_set(s, wheel->now * wheel->tick);
	memcpy(s->secret, secret, sizeof(s->secret));
	tcp_secret_init(&s->key, secret);
	while (n < p->max_conns)
		n <<= 1;
	s->table = rte_zmalloc("tcp_table", sizeof(*s->table) * n, RTE_CACHE_LINE_SIZE);
	if (!s->table) {
		rte_free(s);
		return NULL;
	}
	s->table_mask = n - 1;
	/* Connections come from the stack's own pool: one worker puts and gets, so no locks. */
	char name[RTE_MEMPOOL_NAMESIZE];
	snprintf(name, sizeof(name), "tcpc_%p", (void *)s);
	s->conns = rte_mempool_create(name, p->max_conns, sizeof(struct tcp_conn), 0, 0, NULL,
				      NULL, NULL, NULL, SOCKET_ID_ANY,
				      RTE_MEMPOOL_F_SP_PUT | RTE_MEMPOOL_F_SC_GET);
	if (!s->conns) {
		rte_free(s->table);
		rte_free(s);
		return NULL;
	}
	s->tw_tail = &s->tw_head;
	s->next_ephemeral = TCP_EPHEMERAL_LO + (uint16_t)(secret[2] | secret[3] << 8) %
						       (TCP_EPHEMERAL_HI - TCP_EPHEMERAL_LO);
	return s;
}

void tcp_stack_free(struct tcp_stack *s)
{
	if (!s)
		return;
	for (uint32_t b = 0; b <= s->table_mask; b++)
		while (s->table[b])
			tcp_conn_destroy(s->table[b], TCP_CLOSE_ABORTED);
	rte_mempool_free(s->conns);
	rte_free(s->table);
	rte_free(s);
}

struct tcp_listener *tcp_listener_find(struct tcp_stack *s, uint32_t addr, uint16_t port)
{
	struct tcp_listener *wild = NULL;

	for (unsigned i = 0; i < TCP_MAX_LISTENERS; i++) {
		struct tcp_listener *l = &s->listeners[i];
		if (!l->used || l->port != port)
			continue;
		if (l->addr == addr)
			return l;
		if (l->addr == 0)
			wild = l;
	}
	return wild;
}

int tcp_listen(struct tcp_stack *s, uint32_t addr, uint16_t port, const struct tcp_listen_opts *o)
{
	for (unsigned i = 0; i < TCP_MAX_LISTENERS; i++)
		if (s->listeners[i].used && s->listeners[i].port == port &&
		    s->listeners[i].addr == addr)
			return -EADDRINUSE;
	for (unsigned i = 0; i < TCP_MAX_LISTENERS; i++) {
		struct tcp_listener *l = &s->listeners[i];
		if (l->used)
			continue;
		*l = (struct tcp_listener){.addr = addr, .port = port, .used = true, .o = *o};
		if (l->o.syn_backlog == 0)
			l->o.syn_backlog = s->p.syn_backlog;
		return 0;
	}
	return -ENOMEM;
}

struct tcp_conn *tcp_conn_lookup(struct tcp_stack *s, uint32_t laddr, uint16_t lport,
				 uint32_t raddr, uint16_t rport)
{
	for (struct tcp_conn *c = s->table[bucket(s, laddr, lport, raddr, rport)]; c; c = c->hnext)
		if (c->lport == lport && c->rport == rport && c->raddr == raddr &&
		    c->laddr == laddr)
			return c;
	return NULL;
}

/* Recycles the oldest TIME_WAIT connection when the list is at its bound. */
static void time_wait_trim(struct tcp_stack *s)
{
	while (s->n_time_wait >= s->p.time_wait_max && s->tw_head) {
		dp_count(s->stats, DP_C_TCP_TIME_WAIT_RECYCLED, 1);
		tcp_conn_destroy(s->tw_head, TCP_CLOSE_NORMAL);
	}
}

struct tcp_conn *tcp_conn_new(struct tcp_stack *s, uint32_t laddr, uint16_t lport,
			      uint32_t raddr, uint16_t rport)
{
	struct tcp_conn *c;

	if (s->n_conns >= s->p.max_conns) {
		/* the table is full: the oldest TIME_WAIT entry makes room, if there is one */
		if (s->tw_head) {
			dp_count(s->stats, DP_C_TCP_TIME_WAIT_RECYCLED, 1);
			tcp_conn_destroy(s->tw_head, TCP_CLOSE_NORMAL);
		}
		if (s->n_conns >= s->p.max_conns)
			return NULL;
	}
	if (rte_mempool_get(s->conns, (void **)&c) != 0)
		return NULL;
	memset(c, 0, sizeof(*c));
	c->s = s;
	c->laddr = laddr;
	c->lport = lport;
	c->raddr = raddr;
	c->rport = rport;
	c->state = TCP_ST_CLOSED;
	c->rto_us = s->p.rto_initial_ms * 1000;
	c->mss = (uint16_t)s->p.mss_default;
	tcp_timers_init(c);
	uint32_t b = bucket(s, laddr, lport, raddr, rport);
	c->hnext = s->table[b];
	s->table[b] = c;
	__atomic_store_n(&s->n_conns, s->n_conns + 1, __ATOMIC_RELAXED); /* telemetry reads it */
	return c;
}

static void tw_unlink(struct tcp_conn *c)
{
	struct tcp_stack *s = c->s;

	if (!c->in_tw_list)
		return;
	*c->tw_pprev = c->tw_next;
	if (c->tw_next)
		c->tw_next->tw_pprev = c->tw_pprev;
	else
		s->tw_tail = c->tw_pprev;
	c->in_tw_list = false;
	__atomic_store_n(&s->n_time_wait, s->n_time_wait - 1, __ATOMIC_RELAXED);
}

void tcp_conn_set_state(struct tcp_conn *c, enum tcp_state st)
{
	c->state = st;
}

void tcp_enter_time_wait(struct tcp_conn *c)
{
	struct tcp_stack *s = c->s;

	tcp_conn_set_state(c, TCP_ST_TIME_WAIT);
	timer_cancel(s->wheel, &c->t_rexmt);
	timer_cancel(s->wheel, &c->t_keep);
	timer_cancel(s->wheel, &c->t_delack);
	/* Nothing to send or deliver any more: let the mbufs go now. */
	tcp_sq_purge(c);
	tcp_reass_free(c);
	if (!c->in_tw_list) {
		time_wait_trim(s);
		c->tw_next = NULL;
		c->tw_pprev = s->tw_tail;
		*s->tw_tail = c;
		s->tw_tail = &c->tw_next;
		c->in_tw_list = true;
		__atomic_store_n(&s->n_time_wait, s->n_time_wait + 1, __ATOMIC_RELAXED);
	}
	timer_arm_ms(s->wheel, &c->t_2msl, s->now_tsc, s->p.time_wait_ms);
	/* The application is done with it once both sides closed. */
	if (!c->notified && c->ops && c->ops->closed) {
		c->notified = true;
		c->ops->closed(c, TCP_CLOSE_NORMAL);
	}
}

static struct tcp_stale *stale_slot(struct tcp_stack *s, uint32_t laddr, uint16_t lport,
				     uint32_t raddr, uint16_t rport)
{
	return &s->stale[bucket(s, laddr, lport, raddr, rport) % TCP_STALE_SLOTS];
}

void tcp_stale_remember(struct tcp_conn *c)
{
	struct tcp_stale *t = stale_slot(c->s, c->laddr, c->lport, c->raddr, c->rport);

	/* one slot per hash: a newer connection overwrites an older one (best effort) */
	*t = (struct tcp_stale){
		.laddr = c->laddr, .raddr = c->raddr, .lport = c->lport, .rport = c->rport,
		.seq = c->irs + 1, .ack = c->iss + 1, .hs = c->hs_by_data,
		.fseq = c->rcv_nxt, .fack = c->snd_max, .fin = c->last_acked,
		.until_us = c->s->now_us + TCP_STALE_US,
	};
}

bool tcp_stale_match(struct tcp_stack *s, const struct tcp_seg *g)
{
	if (g->len != 0 ||
	    (g->flags & (RTE_TCP_SYN_FLAG | RTE_TCP_FIN_FLAG | RTE_TCP_RST_FLAG)) != 0)
		return false;
	const struct tcp_stale *t = stale_slot(s, g->daddr, g->dport, g->saddr, g->sport);

	if (t->until_us <= s->now_us || t->laddr != g->daddr || t->raddr != g->saddr ||
	    t->lport != g->dport || t->rport != g->sport)
		return false;
	return (t->hs && t->seq == g->seq && t->ack == g->ack) ||
	       (t->fin && t->fseq == g->seq && t->fack == g->ack);
}

void tcp_conn_destroy(struct tcp_conn *c, enum tcp_close_reason reason)
{
	struct tcp_stack *s = c->s;

	if (c->doomed)
		return;
	if (c->hs_by_data || c->last_acked)
		tcp_stale_remember(c);
	if (c->listener && c->state == TCP_ST_SYN_RECEIVED && c->listener->syn_pending)
		c->listener->syn_pending--;
	c->listener = NULL;
	c->doomed = true;
	c->state = TCP_ST_CLOSED;
	if (!c->notified && c->ops && c->ops->closed) {
		c->notified = true;
		c->ops->closed(c, reason);
	}
	struct tcp_conn **pp = &s->table[bucket(s, c->laddr, c->lport, c->raddr, c->rport)];
	while (*pp && *pp != c)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = c->hnext;
	tw_unlink(c);
	tcp_timers_cancel(c);
	tcp_sq_purge(c);
	tcp_reass_free(c);
	__atomic_store_n(&s->n_conns, s->n_conns - 1, __ATOMIC_RELAXED);
	/* Input or a timer may still be looking at c: free it when they let go. */
	if (c->busy == 0)
		rte_mempool_put(s->conns, c);
}

void tcp_conn_hold(struct tcp_conn *c)
{
	c->busy++;
}

void tcp_conn_release(struct tcp_conn *c)
{
	if (--c->busy == 0 && c->doomed)
		rte_mempool_put(c->s->conns, c);
}

void tcp_set_arg(struct tcp_conn *c, void *arg)
{
	c->arg = arg;
}

void *tcp_arg(const struct tcp_conn *c)
{
	return c->arg;
}

void tcp_endpoints(const struct tcp_conn *c, uint32_t *laddr, uint16_t *lport, uint32_t *raddr,
		   uint16_t *rport)
{
	*laddr = c->laddr;
	*lport = c->lport;
	*raddr = c->raddr;
	*rport = c->rport;
}

unsigned tcp_stack_conns(const struct tcp_stack *s)
{
	return __atomic_load_n(&s->n_conns, __ATOMIC_RELAXED);
}

unsigned tcp_stack_time_wait(const struct tcp_stack *s)
{
	return __atomic_load_n(&s->n_time_wait, __ATOMIC_RELAXED);
}
