/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The sink of one mxgate-gen worker (sink.h): the glue between its TCP
 * stack and the SMTP server engine, as dataplane/smtpd/smtpd.c does for the
 * gateway, without policy or spool. Input the engine does not take yet
 * (its output must be flushed first) stays in the session's list and is
 * acknowledged to TCP only when taken.
 */
#include "dataplane/gen/sink.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_malloc.h>
#include <rte_mempool.h>
#include <rte_random.h>

#include "dataplane/gen/content.h"
#include "dataplane/gen/link.h"
#include "dataplane/smtp/smtp.h"

struct gen_sink {
	struct gen_sink_params p;
	struct dp_worker *w;
	struct rte_mempool *pool; /* struct sk_sess + the engine's session */
	uint64_t tsc_per_ms;
	unsigned active;	  /* atomic: read by the main lcore */
	struct smtp_server_config scfg;
	struct smtp_server_ctx ctx;
	struct gen_sink_stats st;
	struct gen_relink relink; /* the memif link back after the gateway's restart */
};

struct sk_sess {
	struct gen_sink *k;
	struct tcp_conn *c;
	struct timer timer;
	struct rte_mbuf *in_head, *in_tail; /* received, not yet taken: single segments */
	uint32_t in_bytes;
	struct rte_mbuf *out; /* replies tcp_send() had no room for */
	bool closing;
	bool quit;	      /* the client said QUIT (or the session ended normally) */
	struct gen_scan scan; /* the message being received */
	uint8_t eng[] __attribute__((aligned(16)));
};

static inline void stat_add(uint64_t *c, uint64_t n)
{
	__atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

static inline struct smtp_session *engine(struct sk_sess *s)
{
	return (struct smtp_session *)s->eng;
}

static inline uint64_t now_ms(const struct gen_sink *k)
{
	return rte_rdtsc() / k->tsc_per_ms;
}

static struct sk_sess *sess_of_tx(struct smtp_tx *tx)
{
	return smtp_server_udata(smtp_server_of_tx(tx));
}

/* ---- the content sink ---- */

static int sink_begin(void *arg, struct smtp_tx *tx)
{
	(void)arg;
	gen_scan_init(&sess_of_tx(tx)->scan);
	return SMTP_R_NONE;
}

static int sink_chunk(void *arg, struct smtp_tx *tx, const uint8_t *p, size_t n)
{
	(void)arg;
	gen_scan_feed(&sess_of_tx(tx)->scan, p, n);
	return SMTP_R_NONE;
}

/* Marks TOKEN seen; returns true the first time. */
static bool token_first(struct gen_tokens *t, uint64_t token)
{
	uint64_t bit = 1ull << (token % 64);

	return !(__atomic_fetch_or(&t->bits[token / 64], bit, __ATOMIC_RELAXED) & bit);
}

static int sink_end(void *arg, struct smtp_tx *tx)
{
	struct gen_sink *k = arg;
	struct gen_tokens *t = k->p.tokens;
	const struct gen_scan *sc = &sess_of_tx(tx)->scan;

	stat_add(&k->st.messages, 1);
	stat_add(&k->st.bytes, tx->data_bytes);
	if (!sc->have_token) {
		stat_add(&k->st.no_token, 1);
		return SMTP_R_QUEUED;
	}
	stat_add(gen_scan_ok(sc) ? &k->st.body_ok : &k->st.body_bad, 1);
	uint64_t run = 0;
	if (!__atomic_compare_exchange_n(&t->run, &run, sc->run, false, __ATOMIC_RELAXED,
					 __ATOMIC_RELAXED) &&
	    run != sc->run) {
		stat_add(&k->st.other_run, 1);
		return SMTP_R_QUEUED;
	}
	if (sc->token + 1 > k->st.token_max)
		__atomic_store_n(&k->st.token_max, sc->token + 1, __ATOMIC_RELAXED);
	if (sc->token >= t->nbits)
		stat_add(&k->st.out_of_range, 1);
	else if (token_first(t, sc->token))
		stat_add(&k->st.unique, 1);
	else
		stat_add(&k->st.duplicates, 1);
	return SMTP_R_QUEUED;
}

static void sink_abort(void *arg, struct smtp_tx *tx)
{
	struct gen_sink *k = arg;

	(void)tx;
	stat_add(&k->st.aborted, 1);
}

static const struct smtp_sink_ops gen_sink_ops = {
	.begin = sink_begin,
	.chunk = sink_chunk,
	.end = sink_end,
	.abort = sink_abort,
};

/* ---- output and input ---- */

/* Sends the engine's replies in one tcp_send(). Returns 0, -EAGAIN (writable() follows) or -ENOMEM. */
static int sess_flush(struct sk_sess *s)
{
	const uint8_t *p;
	int rc;

	if (s->out != NULL) {
		rc = tcp_send(s->c, s->out);
		if (rc == -EAGAIN)
			return rc;
		if (rc != 0)
			rte_pktmbuf_free(s->out);
		s->out = NULL;
	}
	size_t n = smtp_server_output(engine(s), &p);
	if (n == 0)
		return 0;
	struct rte_mbuf *m = dp_mbuf_chain(s->k->w->pool, p, n);
	if (m == NULL)
		return -ENOMEM;
	smtp_server_output_done(engine(s), n);
	rc = tcp_send(s->c, m);
	if (rc == -EAGAIN) {
		s->out = m;
		return rc;
	}
	if (rc != 0)
		rte_pktmbuf_free(m);
	return 0;
}

static void in_pop(struct sk_sess *s)
{
	struct rte_mbuf *m = s->in_head;

	s->in_head = m->next;
	if (s->in_head == NULL)
		s->in_tail = NULL;
	m->next = NULL;
	rte_pktmbuf_free_seg(m);
}

static void in_drop(struct sk_sess *s)
{
	if (s->in_bytes)
		tcp_consumed(s->c, s->in_bytes);
	while (s->in_head != NULL)
		in_pop(s);
	s->in_bytes = 0;
}

/* Feeds kept input until all is taken or the output blocks. Returns 0 or -ENOMEM. */
static int sess_feed(struct sk_sess *s)
{
	uint32_t taken = 0;
	uint64_t now = now_ms(s->k);
	int rc = 0;

	while (s->in_head != NULL) {
		struct rte_mbuf *m = s->in_head;
		size_t used = smtp_server_input(engine(s), rte_pktmbuf_mtod(m, const uint8_t *),
						m->data_len, now);
		taken += (uint32_t)used;
		if (used == m->data_len) {
			in_pop(s);
			continue;
		}
		m->data_off += (uint16_t)used;
		m->data_len -= (uint16_t)used;
		rc = sess_flush(s); /* the engine stops only for that: no STARTTLS, no pending */
		if (rc != 0 || used == 0)
			break;
	}
	s->in_bytes -= taken;
	if (taken)
		tcp_consumed(s->c, taken);
	return rc == -ENOMEM ? rc : 0;
}

static void sess_arm(struct sk_sess *s)
{
	struct gen_sink *k = s->k;
	uint64_t at = smtp_server_deadline(engine(s));

	if (at == UINT64_MAX)
		timer_cancel(&k->w->timers, &s->timer);
	else
		timer_arm_at(&k->w->timers, &s->timer, (at + 1) * k->tsc_per_ms);
}

/* Flush, then close or re-arm. May free S (through tcp_close/abort): callers return after. */
static void sess_after(struct sk_sess *s)
{
	int rc = sess_flush(s);

	if (rc == -ENOMEM) {
		tcp_abort(s->c);
		return;
	}
	if (smtp_server_events(engine(s)) & SMTP_EV_CLOSE) {
		s->closing = true;
		s->quit = true;
	}
	if (s->closing) {
		timer_cancel(&s->k->w->timers, &s->timer);
		if (rc == -EAGAIN)
			return;
		in_drop(s);
		tcp_close(s->c);
		return;
	}
	sess_arm(s);
}

static void sess_timer(struct timer *t, void *arg)
{
	struct sk_sess *s = arg;

	(void)t;
	if (smtp_server_timeout(engine(s), now_ms(s->k)))
		sess_after(s);
	else
		sess_arm(s);
}

/* ---- TCP callbacks ---- */

static void on_accepted(struct tcp_conn *c, void *arg)
{
	struct gen_sink *k = arg;
	struct smtp_peer peer = {.family = 4};
	uint32_t laddr, raddr;
	uint16_t lport, rport;
	void *mem;

	tcp_set_arg(c, NULL);
	if (rte_mempool_get(k->pool, &mem) != 0) {
		stat_add(&k->st.sessions_refused, 1);
		tcp_abort(c);
		return;
	}
	struct sk_sess *s = mem;
	memset(s, 0, sizeof(*s));
	s->k = k;
	s->c = c;
	timer_init(&s->timer, sess_timer, s);
	tcp_endpoints(c, &laddr, &lport, &raddr, &rport);
	memcpy(peer.addr, &raddr, 4);
	peer.port = rte_be_to_cpu_16(rport);
	if (smtp_server_init(engine(s), &k->scfg, &k->ctx, &peer, 0, now_ms(k)) == NULL) {
		rte_mempool_put(k->pool, s);
		stat_add(&k->st.sessions_refused, 1);
		tcp_abort(c);
		return;
	}
	smtp_server_set_udata(engine(s), s);
	tcp_set_arg(c, s);
	stat_add(&k->st.sessions, 1);
	__atomic_store_n(&k->active, k->active + 1, __ATOMIC_RELAXED);
	sess_after(s);
}

static void on_received(struct tcp_conn *c, struct rte_mbuf *data)
{
	struct sk_sess *s = tcp_arg(c);
	uint32_t len = data->pkt_len;

	if (s == NULL) {
		tcp_consumed(c, len);
		rte_pktmbuf_free(data);
		return;
	}
	while (data != NULL) {
		struct rte_mbuf *next = data->next;

		data->next = NULL;
		data->nb_segs = 1;
		data->pkt_len = data->data_len;
		if (data->data_len == 0) {
			rte_pktmbuf_free_seg(data);
		} else {
			if (s->in_tail != NULL)
				s->in_tail->next = data;
			else
				s->in_head = data;
			s->in_tail = data;
		}
		data = next;
	}
	s->in_bytes += len;
	if (s->closing) {
		in_drop(s);
		return;
	}
	if (sess_feed(s) != 0) {
		tcp_abort(c);
		return;
	}
	sess_after(s);
}

static void on_writable(struct tcp_conn *c)
{
	struct sk_sess *s = tcp_arg(c);

	if (s == NULL)
		return;
	if (!s->closing && sess_feed(s) != 0) {
		tcp_abort(c);
		return;
	}
	sess_after(s);
}

static void on_peer_closed(struct tcp_conn *c)
{
	struct sk_sess *s = tcp_arg(c);

	if (s == NULL) {
		tcp_close(c);
		return;
	}
	s->closing = true;
	sess_after(s);
}

static void on_closed(struct tcp_conn *c, enum tcp_close_reason reason)
{
	struct sk_sess *s = tcp_arg(c);

	if (s == NULL)
		return;
	struct gen_sink *k = s->k;

	if (reason != TCP_CLOSE_NORMAL && !s->quit)
		stat_add(&k->st.sessions_aborted, 1);
	timer_cancel(&k->w->timers, &s->timer);
	smtp_server_fini(engine(s));
	while (s->in_head != NULL)
		in_pop(s);
	rte_pktmbuf_free(s->out);
	tcp_set_arg(c, NULL);
	rte_mempool_put(k->pool, s);
	__atomic_store_n(&k->active, k->active - 1, __ATOMIC_RELAXED);
}

static const struct tcp_ops sink_tcp_ops = {
	.accepted = on_accepted,
	.received = on_received,
	.writable = on_writable,
	.peer_closed = on_peer_closed,
	.closed = on_closed,
};

/* ---- the worker's side ---- */

static void sink_poll(struct dp_worker *w, uint64_t now)
{
	struct gen_sink *k = w->app;

	gen_relink_poll(&k->relink, w, now);
}

struct gen_sink *gen_sink_new(const struct gen_sink_params *p, struct dp_worker *w)
{
	int socket = (int)rte_lcore_to_socket_id(w->lcore_id);
	char name[RTE_MEMPOOL_NAMESIZE];
	struct gen_sink *k;

	if (p->sessions == 0 || !p->tokens || !p->hostname)
		return NULL;
	k = rte_zmalloc_socket("gen_sink", sizeof(*k), RTE_CACHE_LINE_SIZE, socket);
	if (!k)
		return NULL;
	k->p = *p;
	k->w = w;
	k->tsc_per_ms = RTE_MAX(w->dp->hz / 1000, (uint64_t)1);
	smtp_server_config_default(&k->scfg);
	k->scfg.hostname = p->hostname;
	k->scfg.max_message_size = 0;
	k->scfg.max_rcpts = 1000;
	k->scfg.max_text_line = 0;
	k->scfg.sink = &gen_sink_ops;
	k->scfg.sink_arg = k;
	smtp_qid_init(&k->ctx.qid, w->id, rte_rand());
	snprintf(name, sizeof(name), "gen_sink_%u", w->id);
	k->pool = rte_mempool_create(name, p->sessions,
				     sizeof(struct sk_sess) + smtp_server_size(&k->scfg), 0, 0, NULL,
				     NULL, NULL, NULL, socket,
				     RTE_MEMPOOL_F_SP_PUT | RTE_MEMPOOL_F_SC_GET);
	if (!k->pool)
		goto fail;
	struct tcp_listen_opts o = {.ops = &sink_tcp_ops, .arg = k};
	if (tcp_listen(w->tcp, 0, p->port, &o) != 0)
		goto fail;
	w->app = k;
	w->app_poll = sink_poll;
	return k;
fail:
	gen_sink_free(k);
	return NULL;
}

void gen_sink_free(struct gen_sink *k)
{
	if (!k)
		return;
	rte_mempool_free(k->pool);
	rte_free(k);
}

unsigned gen_sink_active(const struct gen_sink *k)
{
	return __atomic_load_n(&k->active, __ATOMIC_RELAXED);
}

void gen_sink_read(const struct gen_sink *k, struct gen_sink_stats *out)
{
	const uint64_t *src = (const uint64_t *)&k->st;
	uint64_t *dst = (uint64_t *)out;
	uint64_t tmax = out->token_max;

	for (size_t i = 0; i < sizeof(*out) / sizeof(uint64_t); i++)
		dst[i] += __atomic_load_n(&src[i], __ATOMIC_RELAXED);
	uint64_t m = __atomic_load_n(&k->st.token_max, __ATOMIC_RELAXED);
	out->token_max = m > tmax ? m : tmax;
}
