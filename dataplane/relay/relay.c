/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * One worker's relay on its TCP stack and spool shard (relay.h): the
 * delivery engine (relay_sched.h) with the spool as its store and this
 * file as its transport. Active opens pick a source port whose replies RSS
 * brings back to this worker (port_reply_owner()), so a relay connection
 * never leaves its core (DESIGN.md §3.5). Output the stack cannot take yet
 * is kept as one chain per connection, sent on writable(); input is
 * acknowledged to TCP as soon as it arrives, because the SMTP client
 * engine takes every octet at once.
 */
#include "dataplane/relay/relay.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_mbuf.h>
#include <rte_random.h>

#include "dataplane/core/snap.h"
#include "dataplane/relay/relay_sched.h"
#include "dataplane/relay/relay_spool.h"
#include "dataplane/tls/tls.h"

#define HOSTNAME_MAX 256

/* The TCP side of one relay connection. */
struct relay_tconn {
	struct relay *r;
	struct relay_conn *rc;
	struct tcp_conn *tc;	  /* NULL once the stack let go of it */
	struct rte_mbuf *pending; /* output tcp_send() refused for space: sent on writable() */
	bool dead;		  /* close() came: the engine is done with it */
	struct tls_conn *tls;	  /* after STARTTLS: the engine's octets are plaintext */
	struct relay_tconn *next;
};

struct relay {
	struct dp_worker *w;
	struct relay_sched *s;
	struct relay_spool store;
	struct relay_tconn *tconns;	/* 2 x max_conns: closed ones wait a poll to be reused */
	struct relay_tconn *free, *graveyard;
	uint64_t tsc_per_us;
	uint64_t log_write_errors;
	char hostname[HOSTNAME_MAX];
	struct tls_ctx *tls;	     /* client side only: tls.ca_file, versions, lists */
	struct tls_ctx *snap_tls;    /* the held snapshot's (snap_tls_of()), or NULL: tls */
	relay_snap_tls_fn snap_tls_of;
	struct tls_stats tls_stats;  /* exported with the server's (smtpd.c) */
	/* the config snapshot whose routes the engine uses, held (snap.h) until the next one's
	 * are in; NULL: the start-up config's (dp->cfg, which outlives the relay) */
	struct dp_snap *snap;
	uint64_t failed_gen; /* a generation whose routes the engine refused: not tried again */
};

static uint64_t tsc_clock(void *arg)
{
	(void)arg;
	return rte_rdtsc();
}

static uint64_t tsc_us(void *arg)
{
	struct relay *r = arg;

	return rte_rdtsc() / r->tsc_per_us;
}

/* One log line to stdout with a single write(2), so workers' lines never interleave. */
static void log_stdout(void *arg, const char *line, size_t n)
{
	struct relay *r = arg;

	if (!dp_log_on(CFG_LOG_INFO)) /* message events are info lines (mxgatectl log level) */
		return;
	if (write(STDOUT_FILENO, line, n) != (ssize_t)n)
		r->log_write_errors++;
}

/* ---- output ---- */

/*
 * TLS records waiting (handshake, alerts, encrypted commands) onto the wire,
 * behind a chain tcp_send() refused. Without an mbuf they stay in TLS's
 * output for the next flush. 0, or the error of a broken connection.
 */
static int tls_flush(struct relay *r, struct relay_tconn *t)
{
	const uint8_t *p;
	size_t n = tls_output(t->tls, &p);
	struct rte_mbuf *m;
	int rc;

	if (n == 0 || t->tc == NULL)
		return 0;
	m = dp_mbuf_chain(r->w->pool, p, n);
	if (m == NULL)
		return 0;
	tls_output_done(t->tls, n);
	if (t->pending != NULL) {
		if (rte_pktmbuf_chain(t->pending, m) != 0) {
			rte_pktmbuf_free(m);
			return -ENOBUFS;
		}
		return 0;
	}
	rc = tcp_send(t->tc, m);
	if (rc == -EAGAIN) {
		t->pending = m;
		return 0;
	}
	if (rc != 0)
		rte_pktmbuf_free(m);
	return rc;
}

/* Ciphertext from the next hop: plaintext on to the engine, the handshake's end to it too. */
static void tls_received(struct relay_tconn *t, struct rte_mbuf *data)
{
	uint8_t buf[4096];
	bool done = tls_handshake_done(t->tls);

	for (struct rte_mbuf *m = data; m != NULL; m = m->next)
		if (tls_input(t->tls, rte_pktmbuf_mtod(m, const uint8_t *), m->data_len) != 0) {
			relay_conn_lost(t->rc, -ENOMEM);
			return;
		}
	while (!t->dead) {
		ssize_t k = tls_read(t->tls, buf, sizeof(buf));

		if (k < 0)
			(void)tls_flush(t->r, t); /* the alert, before the engine closes */
		if (!done && (tls_handshake_done(t->tls) || k < 0)) {
			done = true;
			relay_conn_tls_done(t->rc, k >= 0 || tls_handshake_done(t->tls));
			continue;
		}
		if (k > 0) {
			relay_conn_input(t->rc, buf, (size_t)k);
			continue;
		}
		if (k < 0)
			relay_conn_lost(t->rc, k == -EPIPE ? 0 : -EPROTO);
		break;
	}
	if (!t->dead)
		(void)tls_flush(t->r, t);
}

/* ---- TCP callbacks ---- */

static void on_connected(struct tcp_conn *tc, int err)
{
	struct relay_tconn *t = tcp_arg(tc);

	if (t == NULL)
		return;
	if (err != 0) {
		/* the stack destroys tc right after this: forget it first */
		tcp_set_arg(tc, NULL);
		t->tc = NULL;
	}
	relay_conn_connected(t->rc, err);
}

static void on_received(struct tcp_conn *tc, struct rte_mbuf *data)
{
	struct relay_tconn *t = tcp_arg(tc);

	/* the engine takes every octet: the window reopens at once */
	tcp_consumed(tc, data->pkt_len);
	if (t != NULL && !t->dead && t->tls != NULL) {
		tls_received(t, data);
		rte_pktmbuf_free(data);
		return;
	}
	for (struct rte_mbuf *m = data; m != NULL && t != NULL && !t->dead; m = m->next)
		if (m->data_len)
			relay_conn_input(t->rc, rte_pktmbuf_mtod(m, const uint8_t *), m->data_len);
	rte_pktmbuf_free(data);
}

static void on_writable(struct tcp_conn *tc)
{
	struct relay_tconn *t = tcp_arg(tc);

	if (t == NULL || t->dead)
		return;
	if (t->pending != NULL) {
		int rc = tcp_send(tc, t->pending);

		if (rc == -EAGAIN)
			return;
		if (rc != 0)
			rte_pktmbuf_free(t->pending);
		t->pending = NULL;
	}
	if (t->tls != NULL && tls_flush(t->r, t) != 0)
		return;
	relay_conn_writable(t->rc);
}

static void on_peer_closed(struct tcp_conn *tc)
{
	struct relay_tconn *t = tcp_arg(tc);

	if (t == NULL) {
		tcp_close(tc);
		return;
	}
	relay_conn_lost(t->rc, 0); /* after QUIT this is the end we asked for */
}

static void on_closed(struct tcp_conn *tc, enum tcp_close_reason reason)
{
	struct relay_tconn *t = tcp_arg(tc);

	if (t == NULL)
		return;
	tcp_set_arg(tc, NULL);
	t->tc = NULL;
	rte_pktmbuf_free(t->pending);
	t->pending = NULL;
	relay_conn_lost(t->rc, reason == TCP_CLOSE_NORMAL ? 0 : -ECONNRESET);
}

static const struct tcp_ops relay_tcp_ops = {
	.connected = on_connected,
	.received = on_received,
	.writable = on_writable,
	.peer_closed = on_peer_closed,
	.closed = on_closed,
};

/* ---- the engine's transport ---- */

/* RSS brings the replies to LPORT back to this worker (DESIGN.md §3.5). */
static bool port_is_ours(void *arg, uint32_t laddr, uint16_t lport, uint32_t raddr, uint16_t rport)
{
	struct dp_worker *w = arg;

	return port_reply_owner(laddr, lport, raddr, rport, w->dp->n_workers) == w->id;
}

static int tr_open(void *arg, struct relay_conn *c, uint32_t addr, uint16_t port)
{
	struct relay *r = arg;
	struct dp_worker *w = r->w;
	struct relay_tconn *t = r->free;
	uint32_t src = net_source_for(&w->net, addr);
	int rc;

	if (src == 0)
		return -ENETUNREACH;
	if (t == NULL)
		return -ENOMEM;
	r->free = t->next;
	*t = (struct relay_tconn){ .r = r, .rc = c };
	rc = tcp_connect(w->tcp, src, addr, rte_cpu_to_be_16(port), &relay_tcp_ops, t,
			 port_is_ours, w, &t->tc);
	if (rc != 0) {
		t->next = r->free;
		r->free = t;
		return rc;
	}
	relay_conn_set_udata(c, t);
	return 0;
}

static int tr_send(void *arg, struct relay_conn *c, const uint8_t *p, size_t n)
{
	struct relay *r = arg;
	struct relay_tconn *t = relay_conn_udata(c);

	if (t == NULL || t->tc == NULL)
		return -EPIPE;
	if (t->pending != NULL)
		return -EAGAIN; /* writable() sends it, then asks for more */
	if (t->tls != NULL) { /* taken once encrypted: TLS keeps what no mbuf carried yet */
		if (tls_write(t->tls, p, n) < 0)
			return -EPROTO;
		return tls_flush(r, t);
	}
	struct rte_mbuf *m = dp_mbuf_chain(r->w->pool, p, n);
	if (m == NULL)
		return -ENOMEM;
	int rc = tcp_send(t->tc, m);
	if (rc == -EAGAIN) {
		t->pending = m; /* taken: it goes first once there is room */
		return 0;
	}
	if (rc != 0) {
		rte_pktmbuf_free(m);
		return rc;
	}
	return 0;
}

static void tr_close(void *arg, struct relay_conn *c, bool abort)
{
	struct relay *r = arg;
	struct relay_tconn *t = relay_conn_udata(c);

	if (t == NULL)
		return;
	relay_conn_set_udata(c, NULL);
	t->dead = true;
	if (t->tc != NULL) {
		struct tcp_conn *tc = t->tc;

		tcp_set_arg(tc, NULL);
		t->tc = NULL;
		if (!abort && t->pending != NULL && tcp_send(tc, t->pending) == 0)
			t->pending = NULL;
		if (abort || t->pending != NULL)
			tcp_abort(tc); /* what is owed cannot be sent: a FIN would lie */
		else
			tcp_close(tc);
	}
	rte_pktmbuf_free(t->pending);
	t->pending = NULL;
	tls_conn_free(t->tls);
	t->tls = NULL;
	/* a callback of this connection may be on the stack: reuse it after the next poll */
	t->next = r->graveyard;
	r->graveyard = t;
}

/* RFC 3207 client side: the ClientHello goes out now; relay_conn_tls_done() follows. */
static int tr_starttls(void *arg, struct relay_conn *c, const char *host, bool verify)
{
	struct relay *r = arg;
	struct relay_tconn *t = relay_conn_udata(c);

	if (t == NULL || t->tc == NULL || t->tls != NULL)
		return -EPIPE;
	t->tls = tls_client_new(r->snap_tls != NULL ? r->snap_tls : r->tls, &r->tls_stats, host,
				verify);
	if (t->tls == NULL)
		return -ENOMEM;
	(void)tls_read(t->tls, NULL, 0); /* writes the ClientHello */
	return tls_flush(r, t);
}

static const struct relay_transport_ops relay_tcp_transport = {
	.open = tr_open,
	.send = tr_send,
	.close = tr_close,
	.starttls = tr_starttls,
};

static void bury(struct relay *r)
{
	while (r->graveyard != NULL) {
		struct relay_tconn *t = r->graveyard;

		r->graveyard = t->next;
		t->next = r->free;
		r->free = t;
	}
}

/* ---- the worker's side ---- */

/*
 * The retry schedule from the "relay:" section: exponential backoff from
 * retry_first_s doubling up to retry_max_s, lifetime_h, delay_warning_h.
 * A ceiling over the lifetime is cut to it and a warning not before the
 * expiry is dropped, as retry_config_validate() wants.
 */
static void retry_from_cfg(const struct cfg_relay *c, struct retry_config *rc)
{
	retry_config_default(rc);
	rc->lifetime = c->lifetime_h * 3600u;
	rc->first_interval = c->retry_first_s;
	rc->max_interval = c->retry_max_s < c->retry_first_s ? c->retry_first_s : c->retry_max_s;
	if (rc->max_interval > rc->lifetime)
		rc->max_interval = rc->lifetime;
	rc->delay_warning = c->delay_warning_h * 3600u;
	if (rc->delay_warning >= rc->lifetime)
		rc->delay_warning = 0;
}

struct relay *relay_new(struct dp_worker *w)
{
	const struct cfg *cfg = w->dp->cfg;
	struct relay_sched_config sc;
	struct timespec ts;
	struct relay *r;
	int err;

	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return NULL;
	r->w = w;
	r->tsc_per_us = RTE_MAX(w->dp->hz / 1000000, (uint64_t)1);
	if (cfg->relay.helo_name != NULL)
		snprintf(r->hostname, sizeof(r->hostname), "%s", cfg->relay.helo_name);
	else if (gethostname(r->hostname, sizeof(r->hostname) - 1) != 0 || r->hostname[0] == '\0')
		snprintf(r->hostname, sizeof(r->hostname), "localhost");
	r->store = (struct relay_spool){ .clock_us = tsc_us, .clock_arg = r };
	/* the client side of TLS for STARTTLS to next hops (routes' tls:) */
	struct cfg_tls client_tls = cfg->tls;
	char tls_err[256];

	client_tls.n_certs = 0; /* the server's certificates are smtpd's */
	r->tls = tls_ctx_new(&client_tls, NULL, tls_err, sizeof(tls_err));
	if (r->tls == NULL) {
		fprintf(stderr, "mxgate-dp: worker %u: relay tls: %s\n", w->id, tls_err);
		free(r);
		errno = EINVAL;
		return NULL;
	}

	memset(&sc, 0, sizeof(sc));
	relay_sched_config_default(&sc);
	sc.routes = &cfg->routes;
	sc.relay = &cfg->relay;
	retry_from_cfg(&cfg->relay, &sc.retry);
	dsn_config_default(&sc.dsn);
	sc.dsn.hostname = r->hostname;
	sc.dsn.return_max = (size_t)cfg->relay.bounce_return_kb * 1024;
	sc.helo_name = r->hostname;
	sc.worker_id = w->id;
	sc.qid_nonce = rte_rand();
	sc.seed = rte_rand();
	sc.overflow_max = cfg->spool.max_messages;
	/* the default cap (1024), not one sized from the start-up routes: a reload may add hops */
	sc.log_write = log_stdout;
	sc.log_arg = r;
	sc.wheel = &w->timers;
	sc.clock = tsc_clock;
	sc.t0 = rte_rdtsc();
	clock_gettime(CLOCK_REALTIME, &ts);
	sc.wall0 = ts.tv_sec;
	sc.store = &relay_spool_ops;
	sc.store_arg = &r->store;
	sc.transport = &relay_tcp_transport;
	sc.transport_arg = r;

	r->tconns = calloc(2 * (size_t)sc.max_conns, sizeof(*r->tconns));
	if (r->tconns == NULL) {
		err = ENOMEM;
		goto fail;
	}
	for (unsigned i = 2 * sc.max_conns; i-- > 0;) {
		r->tconns[i].next = r->free;
		r->free = &r->tconns[i];
	}
	r->s = relay_sched_new(&sc);
	if (r->s == NULL) {
		err = errno;
		goto fail;
	}
	return r;
fail:
	free(r->tconns);
	free(r);
	errno = err;
	return NULL;
}

void relay_free(struct relay *r)
{
	if (r == NULL)
		return;
	relay_sched_free(r->s); /* aborts its connections, drains its reads */
	dp_snap_drop(r->w, r->snap); /* last: the engine read its routes (the worker has stopped) */
	r->snap = NULL;
	r->snap_tls = NULL; /* went with the snapshot */
	tls_ctx_free(r->tls);
	r->s = NULL;
	free(r->tconns);
	free(r);
}

const struct tls_stats *relay_tls_stats(const struct relay *r)
{
	return &r->tls_stats;
}

struct relay_sched *relay_engine(struct relay *r)
{
	return r->s;
}

void relay_submit(struct relay *r, struct spool_shard *sh, struct spool_msg *m)
{
	if (r->store.sh == NULL)
		r->store.sh = sh;
	relay_sched_submit(r->s, m);
}

/*
 * A reload published a new config snapshot: the engine routes by its routes
 * from here on (relay_sched_set_routes(): attempts under way keep their
 * hops). The relay holds the snapshot as a session would (dp_snap_take(),
 * one count on this worker's line) so it outlives the engine's use of its
 * routes, and drops the previous one only once the engine has let go of
 * it. Runs in relay_poll(), outside every callback, like a session's start.
 */
static void follow_snapshot(struct relay *r)
{
	struct dp_snap *cur = __atomic_load_n(&r->w->dp->snap, __ATOMIC_ACQUIRE);
	struct dp_snap *s, *old = r->snap;
	int rc;

	if (cur == NULL || cur == old || cur->gen == r->failed_gen)
		return;
	s = dp_snap_take(r->w); /* may be newer than CUR still: that is the one used */
	if (s == NULL || s == old) {
		dp_snap_drop(r->w, s);
		return;
	}
	/* the first snapshot is the start-up config the engine was made with */
	rc = s->cfg == r->w->dp->cfg ? 0 : relay_sched_set_routes(r->s, &s->cfg->routes);
	if (rc != 0) { /* the old routes stay, and so does the hold on them */
		r->failed_gen = s->gen;
		fprintf(stderr, "mxgate-dp: worker %u: relay: config generation %" PRIu64
				": routes not taken (%s); still routing by the previous ones\n",
			r->w->id, s->gen, strerror(-rc));
		dp_snap_drop(r->w, s);
		return;
	}
	/* a reload's tls: (versions, ciphers, CA file) for STARTTLS from here on */
	if (r->snap_tls_of != NULL)
		r->snap_tls = s->cfg == r->w->dp->cfg ? NULL : r->snap_tls_of(s, r->w->id);
	r->snap = s;
	dp_snap_drop(r->w, old); /* its context goes with it: its SSLs hold their own counts */
}

void relay_set_snap_tls(struct relay *r, relay_snap_tls_fn fn)
{
	r->snap_tls_of = fn;
}

unsigned relay_poll(struct relay *r, uint64_t now_tsc)
{
	(void)now_tsc; /* the engine reads the clock itself, as the timer callbacks must */
	bury(r);
	follow_snapshot(r);
	return relay_sched_poll(r->s);
}

bool relay_congested(const struct relay *r)
{
	return relay_sched_congested(r->s);
}

const struct relay_stats *relay_stats(const struct relay *r)
{
	return relay_sched_stats(r->s);
}

const struct smtp_client_stats *relay_client_stats(const struct relay *r)
{
	return relay_sched_client_stats(r->s);
}

unsigned relay_n_hops(const struct relay *r)
{
	return relay_sched_n_hops(r->s);
}

const struct relay_hop_stats *relay_hop_stats(const struct relay *r, unsigned i)
{
	return relay_sched_hop_stats(r->s, i);
}
