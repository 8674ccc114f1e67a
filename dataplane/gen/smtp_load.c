/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The SMTP load client of one mxgate-gen worker (smtp_load.h). Each session
 * slot is the glue between one TCP connection and one client engine
 * session, as in dataplane/relay/relay.c: the engine's output goes out as a
 * chain of mbufs from our own pool (one tcp_send per flush; a chain TCP has
 * no room for waits for writable()), input is acknowledged to TCP at once
 * because the engine takes every octet. Replies are also read here, one
 * line at a time, for the latencies and the count by code: the engine does
 * not say which reply answered which command, but replies come in order,
 * so the first reply line after the connect is the greeting and the first
 * after MAIL is MAIL's.
 *
 * With TLS (STARTTLS, or implicit TLS right after the connect) a
 * tls_conn sits between the two as in relay.c: the engine's output is
 * encrypted before it becomes mbufs, and what TCP hands in is decrypted
 * before the engine (and the reply scanner) see it. Handshakes and their
 * failures are counted by the TLS module into the worker's stats, by
 * reason; the time from the ClientHello to the handshake's end goes into
 * a histogram of its own.
 *
 * A deferred transaction (4xx, or the connection lost before the final
 * reply) keeps its token: the session waits a backoff on a timer of its own
 * and sends it again; when the connection is gone, the token goes to the
 * worker's orphan ring and the next session to begin a message takes it
 * first. A message is acked (and counted) once, whatever its attempts.
 */
#include "dataplane/gen/smtp_load.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_malloc.h>
#include <rte_random.h>

#include "dataplane/core/tbucket.h"
#include "dataplane/gen/content.h"
#include "dataplane/gen/link.h"
#include "dataplane/gen/opener.h"
#include "dataplane/smtp/client.h"

#define TX_MBUF_DATA 8192 /* payload octets per output mbuf */
#define ADDR_MAX 256

enum { GS_IDLE, GS_RUN, GS_STOP };

/* One session slot: the TCP connection's arg while it lives, the engine after it. */
struct gs_sess {
	struct gen_smtp *g;
	struct tcp_conn *c;
	struct smtp_client *cli; /* in eng[], from connected() to closed() */
	struct rte_mbuf *pending; /* output tcp_send() had no room for */
	struct tls_conn *tls;	  /* once the ClientHello went: the engine's octets are plaintext */
	uint64_t t_tls;		  /* TSC at the ClientHello */
	bool ticket;		  /* its session was kept for resumption */
	struct timer timer;
	struct timer wake; /* the end of a retry's backoff */
	unsigned msgs;	 /* messages begun on this connection (retries not counted) */
	bool running, again;
	bool starved;	 /* out of mbufs with output to send: poll retries */
	bool closing;	 /* close once pending is out */
	bool closed;	 /* tcp_close()/tcp_abort() called */
	bool greeted;	 /* the first reply line came */
	bool mail_wait;	 /* MAIL sent, its reply not read yet */
	bool data_ended; /* smtp_client_data_end() done for the current message */
	bool retry;	 /* token must be sent again (attempts so far), at wake_tsc */
	bool defer_reply; /* a recipient of this transaction was deferred by a 4xx reply */
	unsigned attempts;
	uint64_t token, wake_tsc;
	const struct gen_file *file; /* the body, or NULL: the pattern (plan) */
	uint64_t t_open, t_mail, t_dot; /* TSC */
	/* the reply line being read: its first four octets */
	uint8_t rl[4];
	unsigned rl_n;
	/* the message being sent */
	struct gen_body_plan plan;
	size_t hdr_len, off; /* header octets; content octets the engine took */
	char hdr[GEN_HEADER_MAX];
	uint8_t eng[] __attribute__((aligned(16)));
};

struct gen_smtp {
	struct gen_smtp_params p;
	struct dp_worker *w;
	int state;	     /* GS_* (atomic: written by the main lcore) */
	bool starved;
	struct gen_opener op; /* slots, active opens, the count of open sessions */
	uint64_t tsc_per_us, tsc_per_ms;
	uint64_t started;    /* messages begun (the next token's index) */
	struct gs_orphan { uint64_t token, wake_tsc; unsigned attempts; } *orphans;
	unsigned orph_head, orph_n; /* a ring of p.sessions entries; orph_n atomic */
	unsigned next_file;
	struct tbucket rate;
	struct gen_smtp_stats st;
	struct gen_smtp_hists h;
	struct gen_relink relink; /* the memif link back after the gateway's restart */
	struct smtp_client_config ccfg;
	struct smtp_client_ops cops;
	struct smtp_client_ctx cctx;
	struct tls_ctx *tls;	       /* the worker's client context (p.tls != GEN_TLS_NONE) */
	struct tls_session *resume;    /* p.tls_resume: the latest resumable session */
	struct smtp_client_rcpt *rcpt; /* p.rcpts recipients, the same for every message */
	char *rcpt_addr;	       /* their strings, ADDR_MAX each */
	struct gen_body body;
	struct rte_mempool *txpool;
	size_t sess_size;
	uint8_t *slots;		       /* op's p.sessions slots of sess_size octets */
};

static inline void stat_add(uint64_t *c, uint64_t n)
{
	__atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

static inline struct gs_sess *slot(struct gen_smtp *g, unsigned i)
{
	return (struct gs_sess *)(g->slots + (size_t)i * g->sess_size);
}

static inline uint64_t now_ms(const struct gen_smtp *g)
{
	return rte_rdtsc() / g->tsc_per_ms;
}

static inline uint64_t us_since(const struct gen_smtp *g, uint64_t t)
{
	return (rte_rdtsc() - t) / g->tsc_per_us;
}

/* ---- output ---- */

/*
 * TLS records waiting (handshake, alerts, encrypted commands) onto the
 * wire, behind a chain tcp_send() refused. Returns 1 when octets went or
 * were queued, 0 for none, -ENOMEM (they stay in TLS for the poll), -EPIPE.
 */
static int tls_push(struct gs_sess *s)
{
	struct gen_smtp *g = s->g;
	const uint8_t *p;
	size_t n = tls_output(s->tls, &p);
	int rc;

	if (n == 0 || s->c == NULL)
		return 0;
	struct rte_mbuf *m = dp_mbuf_chain(g->txpool, p, n);
	if (m == NULL) {
		s->starved = g->starved = true;
		return -ENOMEM;
	}
	tls_output_done(s->tls, n);
	if (s->pending != NULL) {
		if (rte_pktmbuf_chain(s->pending, m) != 0) {
			rte_pktmbuf_free(m);
			return -EPIPE;
		}
		return 1;
	}
	rc = tcp_send(s->c, m);
	if (rc == -EAGAIN) {
		s->pending = m;
		return 1;
	}
	if (rc != 0) {
		rte_pktmbuf_free(m);
		return -EPIPE;
	}
	return 1;
}

/*
 * The engine's output through TLS: records left from before first; new
 * plaintext only once they are all out and the handshake is done, so TLS
 * holds at most one engine output.
 */
static int sess_flush_tls(struct gs_sess *s)
{
	const uint8_t *p;
	int rc = tls_push(s);

	if (rc < 0)
		return rc;
	if (s->pending != NULL)
		return rc > 0 ? 1 : -EAGAIN;
	if (!tls_handshake_done(s->tls))
		return rc;
	size_t n = smtp_client_output(s->cli, &p);
	if (n == 0)
		return rc;
	if (tls_write(s->tls, p, n) != (ssize_t)n)
		return -EPIPE;
	smtp_client_output_done(s->cli, n, now_ms(s->g));
	rc = tls_push(s);
	return rc == -EPIPE ? rc : 1; /* -ENOMEM: the records wait for the poll */
}

/* Sends the engine's output. Returns 1 when octets went, 0 for none, -EAGAIN, -ENOMEM or -EPIPE. */
static int sess_flush(struct gs_sess *s)
{
	struct gen_smtp *g = s->g;
	const uint8_t *p;
	int rc;

	if (s->pending != NULL) {
		rc = tcp_send(s->c, s->pending);
		if (rc == -EAGAIN)
			return rc;
		if (rc != 0) {
			rte_pktmbuf_free(s->pending);
			s->pending = NULL;
			return -EPIPE;
		}
		s->pending = NULL;
	}
	if (s->tls != NULL)
		return sess_flush_tls(s);
	size_t n = smtp_client_output(s->cli, &p);
	if (n == 0)
		return 0;
	struct rte_mbuf *m = dp_mbuf_chain(g->txpool, p, n);
	if (m == NULL) {
		s->starved = g->starved = true;
		return -ENOMEM;
	}
	smtp_client_output_done(s->cli, n, now_ms(g));
	rc = tcp_send(s->c, m);
	if (rc == -EAGAIN) {
		s->pending = m; /* it goes first once there is room */
		return 1;
	}
	if (rc != 0) {
		rte_pktmbuf_free(m);
		return -EPIPE;
	}
	return 1;
}

/* ---- messages ---- */

/* Takes an orphaned retry first, else the next token if the run wants another message. */
static bool take_message(struct gen_smtp *g, struct gs_sess *s)
{
	if (__atomic_load_n(&g->state, __ATOMIC_ACQUIRE) != GS_RUN)
		return false;
	if (g->orph_n > 0) {
		const struct gs_orphan *o = &g->orphans[g->orph_head];
		s->token = o->token;
		s->attempts = o->attempts;
		s->wake_tsc = o->wake_tsc;
		s->retry = true;
		g->orph_head = (g->orph_head + 1) % g->p.sessions;
		__atomic_store_n(&g->orph_n, g->orph_n - 1, __ATOMIC_RELAXED);
		return true;
	}
	if (g->started >= g->p.messages)
		return false;
	s->token = g->p.token_first + g->started * g->p.token_step;
	s->attempts = 0;
	s->retry = false;
	g->started++;
	stat_add(&g->st.msgs_started, 1);
	return true;
}

/* A session ends with a retry owed: its token waits in the ring for the next session. */
static void orphan(struct gen_smtp *g, struct gs_sess *s)
{
	if (!s->retry)
		return;
	s->retry = false;
	if (__atomic_load_n(&g->state, __ATOMIC_ACQUIRE) != GS_RUN ||
	    g->orph_n == g->p.sessions)
		return; /* the run is over: the message stays unfinished */
	g->orphans[(g->orph_head + g->orph_n) % g->p.sessions] =
		(struct gs_orphan){.token = s->token, .wake_tsc = s->wake_tsc,
				   .attempts = s->attempts};
	__atomic_store_n(&g->orph_n, g->orph_n + 1, __ATOMIC_RELAXED);
}

/* Backoff before attempt A (1: the first retry): doubling from min, capped, plus jitter. */
static uint64_t backoff_tsc(const struct gen_smtp *g, unsigned a)
{
	uint64_t ms = g->p.backoff_min_ms;

	for (unsigned i = 1; i < a && ms < g->p.backoff_max_ms; i++)
		ms *= 2;
	if (ms > g->p.backoff_max_ms)
		ms = g->p.backoff_max_ms;
	uint64_t t = ms * g->tsc_per_ms;
	return t + rte_rand_max(t / 2 + 1);
}

/* The content of message s->token: a header, then a file's body or the pattern's. */
static void plan_message(struct gen_smtp *g, struct gs_sess *s)
{
	if (g->p.files != NULL) {
		s->file = &g->p.files->f[g->next_file];
		g->next_file = (g->next_file + 1) % g->p.files->n;
		s->plan = (struct gen_body_plan){.len = s->file->len, .hash = s->file->hash};
		s->hdr_len = gen_header(s->hdr, sizeof(s->hdr), g->p.run, s->token, g->p.from,
					g->p.to, &s->plan);
		return;
	}
	s->file = NULL;
	unsigned size = g->p.size_min;
	if (g->p.size_max > g->p.size_min)
		size += (unsigned)rte_rand_max((uint64_t)(g->p.size_max - g->p.size_min) + 1);
	/* the header's length depends on the body's (digits), so plan twice */
	gen_body_plan(&g->body, size > 400 ? size - 400 : 2, &s->plan);
	s->hdr_len = gen_header(s->hdr, sizeof(s->hdr), g->p.run, s->token, g->p.from, g->p.to,
				&s->plan);
	gen_body_plan(&g->body, size > s->hdr_len + 2 ? size - s->hdr_len : 2, &s->plan);
	s->hdr_len = gen_header(s->hdr, sizeof(s->hdr), g->p.run, s->token, g->p.from, g->p.to,
				&s->plan);
}

/*
 * READY: the retry this session owes (once its backoff is over), else the
 * next message of this connection, else QUIT. Returns true when something
 * changed, false while a backoff runs (the wake timer calls back).
 */
static bool sess_next(struct gs_sess *s)
{
	struct gen_smtp *g = s->g;

	if (s->retry && __atomic_load_n(&g->state, __ATOMIC_ACQUIRE) != GS_RUN)
		s->retry = false; /* the run is over: it stays unfinished */
	if (!s->retry) {
		if (s->msgs >= g->p.per_session || !take_message(g, s)) {
			smtp_client_quit(s->cli, now_ms(g));
			return true;
		}
		s->msgs++;
	}
	if (s->retry) {
		uint64_t now = rte_rdtsc();
		if (now < s->wake_tsc) {
			timer_arm_at(&g->w->timers, &s->wake, s->wake_tsc);
			return false;
		}
		s->retry = false;
	}
	plan_message(g, s);
	s->off = 0;
	s->data_ended = false;
	s->defer_reply = false;

	struct smtp_client_msg msg = {
		.sender = {(const uint8_t *)g->p.from, strlen(g->p.from)},
		.rcpt = g->rcpt,
		.nrcpt = g->p.rcpts,
		.size = s->hdr_len + s->plan.len,
		.eightbit = s->file != NULL && s->file->eightbit,
	};
	s->t_mail = rte_rdtsc();
	int rc = smtp_client_tx_begin(s->cli, &msg, now_ms(g));
	if (rc != 0) {
		stat_add(&g->st.msgs_failed, 1);
		smtp_client_quit(s->cli, now_ms(g));
		return true;
	}
	s->mail_wait = true;
	return true;
}


/* CONTENT: header, whole lines, last line; then the end of data. Returns true when something moved. */
static bool sess_feed(struct gs_sess *s)
{
	struct gen_smtp *g = s->g;
	size_t lines = (size_t)s->plan.k * GEN_LINE, total = s->hdr_len + s->plan.len;
	bool moved = false;

	while (s->off < total) {
		const uint8_t *p;
		size_t n;

		if (s->off < s->hdr_len) {
			p = (const uint8_t *)s->hdr + s->off;
			n = s->hdr_len - s->off;
		} else if (s->file != NULL) {
			p = s->file->data + (s->off - s->hdr_len);
			n = total - s->off;
		} else if (s->off < s->hdr_len + lines) {
			p = g->body.lines + (s->off - s->hdr_len);
			n = s->hdr_len + lines - s->off;
		} else {
			size_t in_last = s->off - s->hdr_len - lines;
			p = g->body.last + GEN_LINE - s->plan.r + in_last;
			n = s->plan.r - in_last;
		}
		size_t t = smtp_client_data(s->cli, p, n, now_ms(g));
		s->off += t;
		moved = moved || t > 0;
		if (t < n)
			return moved;
	}
	if (!s->data_ended && smtp_client_data_end(s->cli, now_ms(g)) == 0) {
		s->data_ended = true;
		s->t_dot = rte_rdtsc();
		moved = true;
	}
	return moved;
}

/* ---- the session's course ---- */

static void sess_arm(struct gs_sess *s)
{
	struct gen_smtp *g = s->g;
	uint64_t at = smtp_client_deadline(s->cli);

	if (at == UINT64_MAX)
		timer_cancel(&g->w->timers, &s->timer);
	else
		timer_arm_at(&g->w->timers, &s->timer, (at + 1) * g->tsc_per_ms);
}

/* Closes the connection once the output is out (now, or from writable()). */
static void sess_close(struct gs_sess *s)
{
	bool was_closing = s->closing;

	s->closing = true;
	timer_cancel(&s->g->w->timers, &s->timer);
	timer_cancel(&s->g->w->timers, &s->wake);
	if (s->closed)
		return;
	/* RFC 8446 §6.1: a session that ends well says so before the FIN */
	if (!was_closing && s->tls != NULL && tls_handshake_done(s->tls) &&
	    tls_conn_fail(s->tls) == TLS_OK) {
		tls_close(s->tls);
		(void)tls_push(s);
	}
	if (s->pending != NULL)
		return;
	s->closed = true;
	tcp_close(s->c); /* closed() follows, perhaps from inside */
}

/* Starts TLS on the session: the ClientHello goes out with the next flush. 0, or -ENOMEM. */
static int sess_tls_start(struct gs_sess *s)
{
	struct gen_smtp *g = s->g;

	s->tls = tls_client_new(g->tls, &g->st.tls, g->p.tls_name, g->p.tls_verify);
	if (s->tls == NULL)
		return -ENOMEM;
	if (g->resume != NULL)
		(void)tls_conn_resume(s->tls, g->resume); /* refused: a full handshake */
	s->t_tls = rte_rdtsc();
	stat_add(&g->st.tls_started, 1);
	(void)tls_read(s->tls, NULL, 0); /* writes the ClientHello */
	return 0;
}

/* Drives the session after anything happened, until nothing moves. */
static void sess_run(struct gs_sess *s)
{
	if (s->cli == NULL || s->closing)
		return;
	if (s->running) {
		s->again = true;
		return;
	}
	s->running = true;
	for (;;) {
		bool moved = false;
		int fl = sess_flush(s);

		if (fl == -EPIPE) {
			smtp_client_lost(s->cli, now_ms(s->g));
			s->running = false;
			sess_close(s);
			return;
		}
		moved = fl > 0;
		unsigned ev = smtp_client_events(s->cli);
		if (ev & SMTP_CLIENT_EV_CLOSE) {
			if (fl == -ENOMEM)
				break; /* the last words first: the poll retries */
			s->running = false;
			sess_close(s);
			return;
		}
		if (s->pending == NULL && fl != -ENOMEM) {
			if (ev & SMTP_CLIENT_EV_STARTTLS) {
				/* RFC 3207 §4.2: the 220 came; the handshake answers it */
				if (s->tls == NULL) {
					if (sess_tls_start(s) != 0)
						smtp_client_tls_done(s->cli, false, now_ms(s->g));
					moved = true;
				}
			} else if (ev & SMTP_CLIENT_EV_READY)
				moved = sess_next(s) || moved;
			else if (ev & SMTP_CLIENT_EV_CONTENT)
				moved = sess_feed(s) || moved;
		}
		if (!moved && !s->again)
			break;
		s->again = false;
	}
	s->running = false;
	sess_arm(s);
}

static void sess_wake(struct timer *t, void *arg)
{
	struct gs_sess *s = arg;

	(void)t;
	sess_run(s);
}

static void sess_timer(struct timer *t, void *arg)
{
	struct gs_sess *s = arg;

	(void)t;
	if (smtp_client_timeout(s->cli, now_ms(s->g))) {
		if (s->tls != NULL)
			tls_timed_out(s->tls); /* counted as a TLS failure while the handshake ran */
		sess_run(s);
	}
	else
		sess_arm(s);
}

/* One complete reply line: count its code; the first after connect or MAIL times it. */
static void reply_line(struct gs_sess *s)
{
	struct gen_smtp *g = s->g;
	const uint8_t *l = s->rl;

	if (s->rl_n < 3 || l[0] < '2' || l[0] > '5' || l[1] < '0' || l[1] > '9' || l[2] < '0' ||
	    l[2] > '9')
		return; /* not a reply line: the engine says what is wrong */
	if (s->rl_n == 4 && l[3] == '-')
		return; /* a continuation: the last line counts */
	unsigned code = (unsigned)(l[0] - '0') * 100 + (unsigned)(l[1] - '0') * 10 + (l[2] - '0');
	stat_add(&g->st.codes[code - 200], 1);
	if (!s->greeted) {
		s->greeted = true;
		hist_add(&g->h.connect, us_since(g, s->t_open));
	} else if (s->mail_wait) {
		s->mail_wait = false;
		hist_add(&g->h.mail, us_since(g, s->t_mail));
	}
}

static void scan_replies(struct gs_sess *s, const uint8_t *p, size_t n)
{
	while (n) {
		const uint8_t *nl = memchr(p, '\n', n);
		size_t len = nl ? (size_t)(nl - p) + 1 : n;

		for (size_t i = 0; i < len && s->rl_n < 4; i++)
			s->rl[s->rl_n++] = p[i];
		if (nl) {
			reply_line(s);
			s->rl_n = 0;
		}
		p += len;
		n -= len;
	}
}

/* ---- engine callbacks ---- */

static void on_rcpt_done(void *arg, struct smtp_client *c, unsigned idx,
			 const struct smtp_client_result *r)
{
	struct gs_sess *s = smtp_client_udata(c);

	(void)arg;
	(void)idx; /* tx_done() has the sum; a 4xx from the server is told apart here */
	if (r->outcome == SMTP_CO_DEFERRED && r->reason == SMTP_CR_REPLY)
		s->defer_reply = true;
}

static void on_tx_done(void *arg, struct smtp_client *c, const struct smtp_client_tx_summary *sum)
{
	struct gen_smtp *g = arg;
	struct gs_sess *s = smtp_client_udata(c);

	s->mail_wait = false;
	if (sum->data_sent && sum->delivered == sum->nrcpt) {
		hist_add(&g->h.dot, us_since(g, s->t_dot));
		stat_add(&g->st.msgs_acked, 1);
		stat_add(&g->st.bytes_acked, s->hdr_len + s->plan.len);
		if (g->p.acked_bits != NULL && s->token < g->p.acked_nbits)
			__atomic_fetch_or(&g->p.acked_bits[s->token / 64], 1ull << (s->token % 64),
					  __ATOMIC_RELAXED);
	} else if (sum->failed == 0 && sum->deferred > 0 && s->attempts < g->p.max_retries) {
		/* RFC 5321 §4.5.4.1: a temporary failure is tried again later */
		s->attempts++;
		s->retry = true;
		s->wake_tsc = rte_rdtsc() + backoff_tsc(g, s->attempts);
		stat_add(s->defer_reply ? &g->st.retries_4xx : &g->st.retries_lost, 1);
	} else {
		if (sum->failed == 0 && sum->deferred > 0 && g->p.max_retries > 0)
			stat_add(&g->st.retries_exhausted, 1);
		stat_add(&g->st.msgs_failed, 1);
	}
}

/* ---- TCP callbacks ---- */

static void on_connected(struct tcp_conn *c, int err)
{
	struct gs_sess *s = tcp_arg(c);
	struct gen_smtp *g = s->g;

	if (err != 0)
		return; /* closed() follows: it counts the error and frees the slot */
	bool implicit = g->p.tls == GEN_TLS_IMPLICIT;
	s->cli = smtp_client_init(s->eng, &g->ccfg, &g->cctx, implicit ? SMTP_CLIENT_TLS_ON : 0,
				  now_ms(g));
	if (s->cli == NULL) { /* the config was checked in gen_smtp_new() */
		s->closed = true;
		tcp_abort(c);
		return;
	}
	smtp_client_set_udata(s->cli, s);
	/* RFC 8314 §3.3: the handshake first; the 220 comes under TLS */
	if (implicit && sess_tls_start(s) != 0) {
		smtp_client_abort(s->cli, now_ms(g));
		s->closed = true;
		tcp_abort(c);
		return;
	}
	sess_run(s);
}

/* Ciphertext from the server: plaintext on to the engine, the handshake's end to it too. */
static void tls_received(struct gs_sess *s, struct rte_mbuf *data)
{
	struct gen_smtp *g = s->g;
	uint8_t buf[16384];
	bool done = tls_handshake_done(s->tls);

	for (struct rte_mbuf *m = data; m != NULL; m = m->next)
		if (m->data_len &&
		    tls_input(s->tls, rte_pktmbuf_mtod(m, const uint8_t *), m->data_len) != 0) {
			smtp_client_lost(s->cli, now_ms(g));
			return;
		}
	while (s->cli != NULL && smtp_client_state(s->cli) != SMTP_CLIENT_ST_CLOSED) {
		ssize_t k = tls_read(s->tls, buf, sizeof(buf));

		if (!done && tls_handshake_done(s->tls)) {
			done = true;
			hist_add(&g->h.tls, us_since(g, s->t_tls));
			if (g->p.tls == GEN_TLS_STARTTLS)
				smtp_client_tls_done(s->cli, true, now_ms(g));
		}
		if (k > 0) {
			scan_replies(s, buf, (size_t)k);
			smtp_client_input(s->cli, buf, (size_t)k, now_ms(g));
			continue;
		}
		if (k == 0)
			break;
		(void)tls_push(s); /* the alert, before the engine closes */
		if (!done && g->p.tls == GEN_TLS_STARTTLS)
			smtp_client_tls_done(s->cli, false, now_ms(g)); /* 4.7.5 */
		else
			smtp_client_lost(s->cli, now_ms(g)); /* close_notify or a bad record */
		break;
	}
	/* TLS 1.3 tickets come after the handshake (RFC 8446 §4.6.1): keep the newest */
	if (g->p.tls_resume && done && !s->ticket) {
		struct tls_session *t = tls_conn_session(s->tls);
		if (t != NULL) {
			tls_session_free(g->resume);
			g->resume = t;
			s->ticket = true;
		}
	}
}

static void on_received(struct tcp_conn *c, struct rte_mbuf *data)
{
	struct gs_sess *s = tcp_arg(c);

	tcp_consumed(c, data->pkt_len); /* the engine takes every octet */
	if (s->tls != NULL && s->cli != NULL) {
		tls_received(s, data);
		rte_pktmbuf_free(data);
		sess_run(s);
		return;
	}
	for (struct rte_mbuf *m = data; m != NULL && s->cli != NULL; m = m->next) {
		if (m->data_len == 0)
			continue;
		const uint8_t *p = rte_pktmbuf_mtod(m, const uint8_t *);
		scan_replies(s, p, m->data_len);
		smtp_client_input(s->cli, p, m->data_len, now_ms(s->g));
	}
	rte_pktmbuf_free(data);
	sess_run(s);
}

static void on_writable(struct tcp_conn *c)
{
	struct gs_sess *s = tcp_arg(c);

	if (s->closing) {
		if (s->pending != NULL && tcp_send(c, s->pending) == -EAGAIN)
			return;
		s->pending = NULL; /* sent, or the connection is going anyway */
		if (!s->closed) {
			s->closed = true;
			tcp_close(c);
		}
		return;
	}
	sess_run(s);
}

static void on_peer_closed(struct tcp_conn *c)
{
	struct gs_sess *s = tcp_arg(c);

	if (s->tls != NULL)
		tls_peer_closed(s->tls); /* a handshake still running failed */
	if (s->cli != NULL && smtp_client_state(s->cli) != SMTP_CLIENT_ST_CLOSED)
		smtp_client_lost(s->cli, now_ms(s->g)); /* after QUIT this is the normal end */
	sess_close(s);
}

static void on_closed(struct tcp_conn *c, enum tcp_close_reason reason)
{
	struct gs_sess *s = tcp_arg(c);
	struct gen_smtp *g = s->g;
	bool ok = false;

	timer_cancel(&g->w->timers, &s->timer);
	timer_cancel(&g->w->timers, &s->wake);
	if (s->cli != NULL) {
		if (smtp_client_state(s->cli) != SMTP_CLIENT_ST_CLOSED)
			smtp_client_lost(s->cli, now_ms(g)); /* tx_done() for a transaction cut */
		const struct smtp_client_result *e = smtp_client_error(s->cli);
		ok = e == NULL;
		if (e != NULL && e->reason == SMTP_CR_NO_STARTTLS)
			stat_add(&g->st.tls_not_offered, 1);
		smtp_client_fini(s->cli);
		s->cli = NULL;
	}
	if (s->tls != NULL) {
		tls_peer_closed(s->tls); /* reset mid-handshake: counted as closed */
		tls_conn_free(s->tls);
		s->tls = NULL;
	}
	(void)reason; /* a reset after our QUIT was answered loses nothing */
	orphan(g, s);
	stat_add(ok ? &g->st.sessions_ok : &g->st.session_errors, 1);
	rte_pktmbuf_free(s->pending);
	s->pending = NULL;
	s->c = NULL;
	gen_opener_release(&g->op, (unsigned)(((uint8_t *)s - g->slots) / g->sess_size));
}

static const struct tcp_ops gs_ops = {
	.connected = on_connected,
	.received = on_received,
	.writable = on_writable,
	.peer_closed = on_peer_closed,
	.closed = on_closed,
};

/* ---- the worker's side ---- */

/* True while the run may want another session. */
static bool want_sessions(const struct gen_smtp *g)
{
	return g->started < g->p.messages || g->orph_n > 0;
}

static void open_one(struct gen_smtp *g, uint64_t now)
{
	struct gs_sess *s = slot(g, gen_opener_next(&g->op));

	memset(s, 0, sizeof(*s));
	s->g = g;
	timer_init(&s->timer, sess_timer, s);
	timer_init(&s->wake, sess_wake, s);
	s->t_open = now;
	if (gen_opener_connect(&g->op, &gs_ops, s, &s->c, now) != 0)
		stat_add(&g->st.session_errors, 1);
	else
		stat_add(&g->st.sessions_opened, 1);
}

static void gen_smtp_poll(struct dp_worker *w, uint64_t now)
{
	struct gen_smtp *g = w->app;

	gen_relink_poll(&g->relink, w, now);
	if (__atomic_load_n(&g->state, __ATOMIC_ACQUIRE) == GS_RUN && want_sessions(g)) {
		/* Sessions still owed by a bounded run: no more than its messages need. */
		for (unsigned n = 0; n < GEN_OPEN_BURST && gen_opener_ready(&g->op, now); n++) {
			if (gen_opener_used(&g->op) >= g->p.messages - g->started + g->orph_n)
				break; /* the sessions open can send what is left */
			if (!tbucket_take(&g->rate, now))
				break;
			open_one(g, now);
		}
	}
	if (g->starved) {
		g->starved = false;
		for (unsigned i = 0; i < g->p.sessions; i++) {
			struct gs_sess *s = slot(g, i);
			if (s->c != NULL && s->starved) {
				s->starved = false;
				sess_run(s);
			}
		}
	}
}

/* Recipient I: the given address for 0, local+I@domain after it. */
static int make_rcpts(struct gen_smtp *g)
{
	const char *to = g->p.to, *at = strrchr(to, '@');

	for (unsigned i = 0; i < g->p.rcpts; i++) {
		char *a = g->rcpt_addr + (size_t)i * ADDR_MAX;
		int n = i == 0 || at == NULL
				? snprintf(a, ADDR_MAX, "%s", to)
				: snprintf(a, ADDR_MAX, "%.*s+%u%s", (int)(at - to), to, i, at);
		if (n <= 0 || n >= ADDR_MAX)
			return -EINVAL;
		g->rcpt[i] = (struct smtp_client_rcpt){.addr = {(const uint8_t *)a, (size_t)n}};
	}
	return 0;
}

struct gen_smtp *gen_smtp_new(const struct gen_smtp_params *p, struct dp_worker *w)
{
	int socket = (int)rte_lcore_to_socket_id(w->lcore_id);
	unsigned n_slots = RTE_MAX(p->sessions, 1u);
	unsigned snd_buf = w->dp->cfg->dp.tcp.snd_buf_kb * 1024;
	char name[RTE_MEMPOOL_NAMESIZE];
	struct gen_smtp *g;

	if (p->rcpts == 0 || p->rcpts > 100 || p->per_session == 0 || p->size_min == 0 ||
	    p->size_max < p->size_min || !p->from || !p->to || !p->helo ||
	    (p->files != NULL && p->files->n == 0) ||
	    (p->max_retries > 0 &&
	     (p->backoff_min_ms == 0 || p->backoff_max_ms < p->backoff_min_ms)))
		return NULL;
	g = rte_zmalloc_socket("gen_smtp", sizeof(*g), RTE_CACHE_LINE_SIZE, socket);
	if (!g)
		return NULL;
	g->p = *p;
	g->w = w;
	g->tsc_per_us = RTE_MAX(w->dp->hz / 1000000, (uint64_t)1);
	g->tsc_per_ms = RTE_MAX(w->dp->hz / 1000, (uint64_t)1);
	tbucket_init(&g->rate, p->rate, RTE_MAX(p->rate / 100, 1u), w->dp->hz, rte_rdtsc());
	if (gen_opener_init(&g->op, w, p->dst, p->port, p->sessions) != 0)
		goto fail;

	smtp_client_config_default(&g->ccfg);
	g->ccfg.helo_name = p->helo;
	g->ccfg.pipelining = p->pipelining;
	/* required, not opportunistic: a load test over TLS never falls back to clear text */
	g->ccfg.tls = p->tls == GEN_TLS_STARTTLS ? SMTP_CLIENT_TLS_ENCRYPT : SMTP_CLIENT_TLS_NONE;
	if (p->tls != GEN_TLS_NONE) {
		char err[256];

		if (p->tls_cfg == NULL)
			goto fail;
		g->tls = tls_ctx_new(p->tls_cfg, NULL, err, sizeof(err));
		if (g->tls == NULL) {
			fprintf(stderr, "mxgate-gen: worker %u: tls: %s\n", w->id, err);
			goto fail;
		}
	}
	g->ccfg.output_size = 32768 + 4096;
	g->ccfg.envelope_size = 32768;
	if (p->reply_timeout_ms) {
		struct smtp_client_timeouts *t = &g->ccfg.timeout_ms;
		t->greeting = t->command = t->mail = t->rcpt = t->data_init = t->data_block =
			t->data_term = p->reply_timeout_ms;
	}
	g->cops = (struct smtp_client_ops){.rcpt_done = on_rcpt_done, .tx_done = on_tx_done};
	g->ccfg.ops = &g->cops;
	g->ccfg.ops_arg = g;
	struct smtp_client *probe = smtp_client_new(&g->ccfg, &g->cctx, 0, 0);
	if (!probe)
		goto fail;
	smtp_client_free(probe);
	g->cctx = (struct smtp_client_ctx){0};

	g->rcpt = rte_zmalloc_socket("gen_rcpt", sizeof(*g->rcpt) * p->rcpts, 0, socket);
	g->rcpt_addr = rte_zmalloc_socket("gen_rcpt_addr", (size_t)ADDR_MAX * p->rcpts, 0, socket);
	if (!g->rcpt || !g->rcpt_addr || make_rcpts(g) != 0)
		goto fail;
	if (gen_body_init(&g->body, p->size_max) != 0)
		goto fail;

	g->sess_size = RTE_ALIGN_CEIL(sizeof(struct gs_sess) + smtp_client_size(&g->ccfg), 64);
	g->slots = rte_zmalloc_socket("gen_smtp_slots", g->sess_size * n_slots, RTE_CACHE_LINE_SIZE,
				      socket);
	g->orphans = rte_malloc_socket("gen_smtp_orphans", sizeof(*g->orphans) * n_slots, 0, socket);
	if (!g->slots || !g->orphans)
		goto fail;

	/* A session holds at most its send buffer and one engine output in mbufs. */
	unsigned per_sess = (snd_buf + g->ccfg.output_size) / TX_MBUF_DATA + 2;
	unsigned n = p->sessions * per_sess + 256;
	snprintf(name, sizeof(name), "gen_smtp_tx_%u", w->id);
	g->txpool = rte_pktmbuf_pool_create(name, n, 64, 0, RTE_PKTMBUF_HEADROOM + TX_MBUF_DATA,
					    socket);
	if (!g->txpool)
		goto fail;
	w->app = g;
	w->app_poll = gen_smtp_poll;
	return g;
fail:
	gen_smtp_free(g);
	return NULL;
}

void gen_smtp_free(struct gen_smtp *g)
{
	if (!g)
		return;
	rte_mempool_free(g->txpool);
	tls_session_free(g->resume);
	tls_ctx_free(g->tls);
	gen_body_free(&g->body);
	rte_free(g->orphans);
	gen_opener_fini(&g->op);
	rte_free(g->slots);
	rte_free(g->rcpt_addr);
	rte_free(g->rcpt);
	rte_free(g);
}

void gen_smtp_start(struct gen_smtp *g)
{
	__atomic_store_n(&g->state, GS_RUN, __ATOMIC_RELEASE);
}

void gen_smtp_stop(struct gen_smtp *g)
{
	__atomic_store_n(&g->state, GS_STOP, __ATOMIC_RELEASE);
}

unsigned gen_smtp_active(const struct gen_smtp *g)
{
	return gen_opener_active(&g->op);
}

unsigned gen_smtp_orphans(const struct gen_smtp *g)
{
	return __atomic_load_n(&g->orph_n, __ATOMIC_RELAXED);
}

bool gen_smtp_done(const struct gen_smtp *g)
{
	return __atomic_load_n(&g->st.msgs_started, __ATOMIC_RELAXED) >= g->p.messages &&
	       gen_smtp_orphans(g) == 0 && gen_smtp_active(g) == 0;
}

void gen_smtp_read(const struct gen_smtp *g, struct gen_smtp_stats *out, struct gen_smtp_hists *h)
{
	const uint64_t *src = (const uint64_t *)&g->st;
	uint64_t *dst = (uint64_t *)out;

	for (size_t i = 0; i < sizeof(*out) / sizeof(uint64_t); i++)
		dst[i] += __atomic_load_n(&src[i], __ATOMIC_RELAXED);
	if (h) {
		hist_merge(&h->connect, &g->h.connect);
		hist_merge(&h->mail, &g->h.mail);
		hist_merge(&h->dot, &g->h.dot);
		hist_merge(&h->tls, &g->h.tls);
	}
}
