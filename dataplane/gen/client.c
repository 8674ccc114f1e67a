/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The load client of one mxgate-gen worker; see client.h. It runs inside the
 * worker loop and its TCP callbacks, so it never locks; the main lcore only
 * flips its state and reads its totals with relaxed atomics.
 */
#include "client.h"
#include "opener.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_malloc.h>

/* Payload is a pattern of prime period, so a byte read back at the wrong offset shows. */
#define PATTERN_PERIOD 251
/*
 * Payload mbufs come from the client's own pool, written with the pattern
 * once when the pool is made and never again: a stream costs no per-byte
 * work here. Each holds a whole number of periods, so every mbuf of a stream
 * starts at pattern phase 0. They are large because the stack walks its send
 * queue mbuf by mbuf for every segment it cuts.
 */
#define PAYLOAD_MAX (PATTERN_PERIOD * 256u) /* 64256 bytes */
#define CHECK_PIECE 2048  /* bytes checked per memcmp() against the pattern table */

enum { GEN_ST_IDLE, GEN_ST_RUN, GEN_ST_STOP };

/* One connection slot; the conn's arg while it lives. */
struct gen_conn {
	struct gen_client *g;
	struct tcp_conn *c;
	uint64_t sent, received;
	uint64_t limit;   /* bytes to send on this connection */
	bool established; /* the handshake completed */
	bool done;        /* rr: the whole response came back */
	bool failed;      /* an error was counted for it already */
	bool starved;     /* out of mbufs while it had data to send */
};

struct gen_client {
	struct gen_params p;
	struct dp_worker *w;
	int state;    /* GEN_ST_* (atomic: written by the main lcore) */
	bool stopped; /* the worker has acted on GEN_ST_STOP */
	bool starved; /* some connection waits for mbufs: pump from poll */
	struct gen_opener op; /* slots, active opens, the count of open connections */
	struct gen_stats st;
	struct rte_mempool *payload; /* pattern-filled mbufs of payload_len bytes */
	uint32_t payload_len;
	struct gen_conn *slots; /* op's slots */
	uint8_t pattern[PATTERN_PERIOD + CHECK_PIECE]; /* what received data is checked against */
};

/* Single writer (the worker): a relaxed load and store, as dp_count() does. */
static inline void stat_add(uint64_t *c, uint64_t n)
{
	__atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

static void conn_error(struct gen_conn *k)
{
	if (!k->failed) {
		k->failed = true;
		stat_add(&k->g->st.errors, 1);
	}
}

/* Queues payload until the send buffer, the mbufs or the limit say stop. */
static void pump(struct gen_conn *k)
{
	struct gen_client *g = k->g;

	k->starved = false;
	while (k->sent < k->limit) {
		uint32_t n = (uint32_t)RTE_MIN((uint64_t)g->payload_len, k->limit - k->sent);
		struct rte_mbuf *m = rte_pktmbuf_alloc(g->payload);
		if (!m) {
			k->starved = g->starved = true;
			return;
		}
		rte_pktmbuf_append(m, (uint16_t)n); /* the pattern is there already */
		if (tcp_send(k->c, m) != 0) {
			rte_pktmbuf_free(m); /* -EAGAIN: writable() follows; else it is closing */
			return;
		}
		k->sent += n;
		stat_add(&g->st.bytes_sent, n);
	}
}

static void on_connected(struct tcp_conn *c, int err)
{
	struct gen_conn *k = tcp_arg(c);

	if (err) {
		conn_error(k); /* closed() follows and frees the slot */
		return;
	}
	k->established = true;
	if (k->g->stopped && k->g->p.mode != GEN_MODE_RR) {
		tcp_shutdown(c);
		return;
	}
	pump(k);
}

static void on_writable(struct tcp_conn *c)
{
	pump(tcp_arg(c));
}

/* Compares what came back with what was sent; returns the bytes that differ. */
static uint64_t check(const struct gen_client *g, uint64_t off, const uint8_t *p, uint32_t n)
{
	uint64_t bad = 0;

	while (n) {
		uint32_t piece = RTE_MIN(n, (uint32_t)CHECK_PIECE);
		const uint8_t *want = g->pattern + off % PATTERN_PERIOD;
		if (memcmp(p, want, piece) != 0)
			for (uint32_t i = 0; i < piece; i++)
				bad += p[i] != want[i];
		p += piece;
		off += piece;
		n -= piece;
	}
	return bad;
}

static void on_received(struct tcp_conn *c, struct rte_mbuf *data)
{
	struct gen_conn *k = tcp_arg(c);
	struct gen_client *g = k->g;
	uint64_t bad = 0;
	uint32_t total = 0;

	for (struct rte_mbuf *s = data; s; s = s->next) {
		if (g->p.mode != GEN_MODE_STREAM)
			bad += check(g, k->received + total, rte_pktmbuf_mtod(s, const uint8_t *),
				     s->data_len);
		total += s->data_len;
	}
	rte_pktmbuf_free(data);
	k->received += total;
	stat_add(&g->st.bytes_received, total);
	if (bad) {
		stat_add(&g->st.mismatches, bad);
		conn_error(k);
	}
	tcp_consumed(c, total);
	if (g->p.mode != GEN_MODE_RR || k->done)
		return;
	if (k->received > g->p.size) {
		conn_error(k); /* more than we sent: not an echo */
		tcp_abort(c);
	} else if (k->received == g->p.size) {
		k->done = true;
		if (!k->failed)
			stat_add(&g->st.completed, 1);
		tcp_close(c); /* closed() comes with TIME_WAIT and frees the slot */
	}
}

static void on_peer_closed(struct tcp_conn *c)
{
	struct gen_conn *k = tcp_arg(c);

	/* The server ends first only when something went wrong, or after our own FIN. */
	if (k->g->p.mode == GEN_MODE_RR ? !k->done : !k->g->stopped)
		conn_error(k);
	tcp_close(c);
}

static void on_closed(struct tcp_conn *c, enum tcp_close_reason reason)
{
	struct gen_conn *k = tcp_arg(c);
	struct gen_client *g = k->g;

	if (reason != TCP_CLOSE_NORMAL)
		conn_error(k);
	k->c = NULL;
	gen_opener_release(&g->op, (unsigned)(k - g->slots));
}

static const struct tcp_ops gen_ops = {
	.connected = on_connected,
	.received = on_received,
	.writable = on_writable,
	.peer_closed = on_peer_closed,
	.closed = on_closed,
};

static void open_one(struct gen_client *g, uint64_t now)
{
	struct gen_conn *k = &g->slots[gen_opener_next(&g->op)];

	*k = (struct gen_conn){
		.g = g,
		.limit = g->p.mode == GEN_MODE_RR ? g->p.size : UINT64_MAX,
	};
	if (gen_opener_connect(&g->op, &gen_ops, k, &k->c, now) != 0)
		stat_add(&g->st.errors, 1);
	else
		stat_add(&g->st.opened, 1);
}

/* Half-closes every established stream: FIN after what is queued; reading goes on. */
static void stop_streams(struct gen_client *g)
{
	for (unsigned i = 0; i < g->p.conns; i++) {
		struct gen_conn *k = &g->slots[i];
		if (k->c && k->established)
			tcp_shutdown(k->c);
	}
}

static void gen_poll(struct dp_worker *w, uint64_t now)
{
	struct gen_client *g = w->app;
	int st = __atomic_load_n(&g->state, __ATOMIC_ACQUIRE);

	if (st == GEN_ST_RUN) {
		for (unsigned n = 0; n < GEN_OPEN_BURST && gen_opener_ready(&g->op, now); n++)
			open_one(g, now);
	} else if (st == GEN_ST_STOP && !g->stopped) {
		g->stopped = true;
		if (g->p.mode != GEN_MODE_RR)
			stop_streams(g);
	}
	if (g->starved) {
		g->starved = false;
		for (unsigned i = 0; i < g->p.conns; i++)
			if (g->slots[i].c && g->slots[i].starved)
				pump(&g->slots[i]);
	}
}

static void fill_pattern(struct rte_mempool *mp, void *arg, void *obj, unsigned idx)
{
	const struct gen_client *g = arg;
	struct rte_mbuf *m = obj;
	uint8_t *p = rte_pktmbuf_mtod(m, uint8_t *);

	(void)mp;
	(void)idx;
	for (uint32_t i = 0; i < g->payload_len; i++)
		p[i] = g->pattern[i % PATTERN_PERIOD];
}

/* Enough payload mbufs for every connection's send buffer, and some to spare. */
static int payload_pool_new(struct gen_client *g, int socket)
{
	unsigned snd_buf = g->w->dp->cfg->dp.tcp.snd_buf_kb * 1024;
	unsigned per_conn = g->p.mode == GEN_MODE_RR
				    ? (g->p.size + g->payload_len - 1) / g->payload_len
				    : snd_buf / g->payload_len + 2;
	unsigned n = g->p.conns * per_conn + 64;
	char name[RTE_MEMPOOL_NAMESIZE];

	snprintf(name, sizeof(name), "gen_payload_%u", g->w->id);
	g->payload = rte_pktmbuf_pool_create(name, n, n >= 96 ? 32 : 0, 0,
					     (uint16_t)(RTE_PKTMBUF_HEADROOM + g->payload_len),
					     socket);
	if (!g->payload)
		return -rte_errno;
	rte_mempool_obj_iter(g->payload, fill_pattern, g);
	return 0;
}

struct gen_client *gen_client_new(const struct gen_params *p, struct dp_worker *w)
{
	int socket = (int)rte_lcore_to_socket_id(w->lcore_id);
	unsigned n_slots = RTE_MAX(p->conns, 1u); /* a worker's share may be none */
	struct gen_client *g;

	if (p->mode == GEN_MODE_RR && (p->size == 0 || p->size > 65536))
		return NULL;
	g = rte_zmalloc_socket("gen_client", sizeof(*g), RTE_CACHE_LINE_SIZE, socket);
	if (!g)
		return NULL;
	g->p = *p;
	g->w = w;
	g->payload_len = p->mode == GEN_MODE_RR ? RTE_MIN(p->size, PAYLOAD_MAX) : PAYLOAD_MAX;
	for (unsigned i = 0; i < sizeof(g->pattern); i++)
		g->pattern[i] = (uint8_t)('a' + (i % PATTERN_PERIOD) % 26);
	g->slots = rte_zmalloc_socket("gen_slots", sizeof(*g->slots) * n_slots, RTE_CACHE_LINE_SIZE,
				      socket);
	if (gen_opener_init(&g->op, w, p->dst, p->port, p->conns) != 0 || !g->slots ||
	    payload_pool_new(g, socket) != 0) {
		gen_client_free(g);
		return NULL;
	}
	w->app = g;
	w->app_poll = gen_poll;
	return g;
}

void gen_client_free(struct gen_client *g)
{
	if (!g)
		return;
	rte_mempool_free(g->payload); /* every mbuf is back: the stack is gone */
	gen_opener_fini(&g->op);
	rte_free(g->slots);
	rte_free(g);
}

void gen_client_start(struct gen_client *g)
{
	__atomic_store_n(&g->state, GEN_ST_RUN, __ATOMIC_RELEASE);
}

void gen_client_stop(struct gen_client *g)
{
	__atomic_store_n(&g->state, GEN_ST_STOP, __ATOMIC_RELEASE);
}

unsigned gen_client_active(const struct gen_client *g)
{
	return gen_opener_active(&g->op);
}

void gen_client_read(const struct gen_client *g, struct gen_stats *out)
{
	out->bytes_sent = __atomic_load_n(&g->st.bytes_sent, __ATOMIC_RELAXED);
	out->bytes_received = __atomic_load_n(&g->st.bytes_received, __ATOMIC_RELAXED);
	out->opened = __atomic_load_n(&g->st.opened, __ATOMIC_RELAXED);
	out->completed = __atomic_load_n(&g->st.completed, __ATOMIC_RELAXED);
	out->errors = __atomic_load_n(&g->st.errors, __ATOMIC_RELAXED);
	out->mismatches = __atomic_load_n(&g->st.mismatches, __ATOMIC_RELAXED);
}
