/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The relay's delivery engine (relay_sched.h). Four kinds of object:
 *
 *   rmsg   a tracked message: its spool handle, where it is in its life,
 *          its next attempt, failures so far. queue_max of them, made at
 *          start; past that, messages wait as bare pointers (overflow).
 *   rload  a message read back for one delivery attempt: the record, the
 *          decoded envelope, one outcome per recipient, and its jobs.
 *   rjob   the recipients of one route (at most max_rcpts): one SMTP
 *          transaction, tried on the route's hops in order.
 *   rhop   one next hop (address:port) of the config: its pool of
 *          connections (hop_pool.h, shared with cut-through: idle ones
 *          LIFO, so surplus ones time out), the jobs waiting for one, and
 *          its counters.
 *
 * Outcomes are written to the spool as they come (delivered, deferred),
 * except failures: those wait until their DSN is durable, so that a crash
 * can repeat a bounce but never lose one (DESIGN.md §3.4).
 */
#include "dataplane/relay/relay_sched.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "dataplane/relay/hop_pool.h"
#include "dataplane/relay/route.h"
#include "dataplane/smtp/client_reply.h"

#define RELAY_C_NAME_(e, name) name,
const char *const relay_counter_names[RELAY_C_MAX] = { RELAY_COUNTERS(RELAY_C_NAME_) };
#undef RELAY_C_NAME_

#define NO_HOP	       UINT16_MAX
#define HEAP_PER_POLL  256u /* deferred messages moved to ready per poll, at most */
#define ENV_PER_RCPT   832u /* "RCPT TO:<254>" NOTIFY (29) ORCPT (7 + 500) CRLF, rounded up */
#define ENV_MAIL       1024u
#define ARENA_CHUNK    4096u
#define REPLY_TEXT_MAX (SMTP_CLIENT_TEXT_MAX + 64u)
#define WHY_MAX	       160u
#define HOP_NAME_MAX   24u /* "[255.255.255.255]:65535" */
/* Relay DSN queue ids use worker ids from here: never those of smtpd's generator (queueid.h). */
#define QID_WORKER_BASE 0x800u

/* ---- objects ---------------------------------------------------------------------------- */

enum msg_st {
	MS_FREE = 0,
	MS_READY,    /* due: waits for a read slot */
	MS_READING,  /* store->read() in flight */
	MS_ACTIVE,   /* loaded: jobs running */
	MS_SETTLING, /* outcomes being written, or DSNs being spooled */
	MS_DEFERRED, /* in the heap until next_at */
};

struct rload;
struct rnote;

struct rmsg {
	struct spool_msg *sm; /* NULL once final (the spool freed it) */
	char qid[SMTP_QID_LEN + 1]; /* kept: the log names the message after it went final */
	enum msg_st st;
	unsigned heap_i;
	int64_t next_at;  /* MS_DEFERRED: unix seconds */
	int64_t arrival;  /* unix seconds, from the envelope (or the queue id) */
	unsigned failures; /* attempts that ended with deferrals */
	unsigned dsn_pending;
	bool warned;	  /* the delay warning went out (or is not owed) */
	bool logged;	  /* "queued" was logged */
	bool had_failure; /* a recipient failed: the message counts as bounced */
	bool final;
	bool on_settle;
	struct rload *ld;
	struct rnote *note; /* what the operator sees of it (relay_admin.h); NULL: not read yet */
	TAILQ_ENTRY(rmsg) q;  /* ready list or free list */
	TAILQ_ENTRY(rmsg) sq; /* settle retry list */
};

enum rcpt_st {
	RS_SKIP = 0,  /* final before this attempt: not ours to touch */
	RS_PENDING,   /* in a job, no outcome yet */
	RS_DELIVERED,
	RS_DEFERRED,
	RS_FAILED,
};

/* One recipient's outcome in the attempt. Text lives in the load's arena. */
struct rres {
	uint8_t st;	  /* enum rcpt_st */
	bool written;	  /* store->state() took it */
	bool expired;	  /* FAILED because the lifetime ended (4.4.7) */
	bool dsn_wait;	  /* FAILED: waits for its DSN to be durable */
	bool dsn_decided; /* FAILED: its DSN was spooled, or is not owed */
	uint16_t hop;	  /* the hop that answered, NO_HOP: none */
	uint16_t code;	  /* reply code; 0: our own reason */
	char status[SMTP_ESC_MAX + 1];
	const char *text;
	uint16_t text_len;
	struct smtp_str orcpt_type; /* into the record */
	struct smtp_str orcpt;	    /* decoded, in the arena */
};

struct achunk {
	struct achunk *next;
	size_t used, cap;
	char data[];
};

enum job_st { JS_NEW = 0, JS_WAIT, JS_RUN, JS_DONE };

struct relay_conn;

struct rjob {
	struct rload *ld;
	unsigned first, n; /* recipients: ld->idx[first .. first + n) */
	uint16_t order[CFG_MAX_NEXT_HOPS]; /* hop ids in the order to try */
	unsigned n_order, next;
	struct rhop *hop;
	struct relay_conn *conn;
	enum job_st st;
	bool begun;	/* tx_begin() took it */
	bool tx_done;	/* the engine reported every recipient */
	bool data_end;	/* smtp_client_data_end() done */
	bool stale;	/* the reused connection was gone before MAIL was answered */
	bool stale_used; /* ... which is forgiven once */
	bool failover;	/* the hop went away mid-transaction, before the end of data: next hop */
	size_t off;	/* content octets given to the engine */
	char why[WHY_MAX]; /* the last hop failure, for a deferral */
	/* the last reply copied, shared by the recipients it decided */
	bool have_last;
	uint16_t last_code;
	char last_esc[SMTP_ESC_MAX + 1];
	const char *last_text;
	TAILQ_ENTRY(rjob) wq;
};

struct rload {
	struct relay_sched *s;
	struct rmsg *m;
	uint8_t *buf;
	size_t cap;
	struct spool_env env;
	struct smtp_str content;
	bool eightbit;
	uint8_t envid[SMTP_ENVID_MAX];
	size_t envid_len;
	unsigned nrcpt;
	struct smtp_rcpt *rcpts;
	struct rres *res;
	unsigned *idx;
	struct rjob *jobs;
	unsigned njobs, jobs_open;
	unsigned hold;	   /* planning in progress: the attempt cannot end under it */
	unsigned attempt;  /* this attempt's number, 1 for the first */
	unsigned nonfinal; /* recipients not final in the spool */
	bool ended;	   /* attempt_end() ran */
	bool have_verdict;
	enum retry_verdict verdict;
	int64_t next;	/* RETRY_DEFER: the next attempt */
	struct achunk *arena;
};

TAILQ_HEAD(rjob_q, rjob);
TAILQ_HEAD(rconn_q, relay_conn);
TAILQ_HEAD(rmsg_q, rmsg);
TAILQ_HEAD(rhop_q, rhop);

struct rhop {
	uint16_t id;
	uint32_t addr;
	uint16_t port;
	char name[HOP_NAME_MAX]; /* "[203.0.113.9]:25" */
	/* idle connections; open (every one not released, quitting ones too: the cap) and idle */
	struct hop_pool pool;
	struct rjob_q wait;
	unsigned nwait;
	unsigned nconnecting; /* connecting or handshaking */
	unsigned nusable;     /* idle or busy */
	uint64_t down_until;  /* clock value; 0 or past: up */
	char down_why[WHY_MAX];
	bool starved; /* jobs wait on the engine-wide connection cap: on s->starved */
	uint8_t tls;  /* enum cfg_hop_tls: the strictest of the routes naming it */
	char tls_name[CFG_TLS_NAME_MAX]; /* SNI and the name verified; "": the address */
	uint64_t tls_plain_until; /* ms: "may" whose handshake failed goes in the clear till then */
	uint32_t tls_gen; /* +1 each time new routes change tls or tls_name */
	TAILQ_ENTRY(rhop) sl;
	struct relay_hop_stats st;
};

enum conn_st {
	CS_FREE = 0,
	CS_CONNECTING, /* open() done, connected() awaited */
	CS_HANDSHAKE,  /* greeting and EHLO */
	CS_IDLE,       /* in the pool */
	CS_BUSY,       /* carrying a job, or between jobs */
	CS_QUIT,       /* leaving: QUIT sent, or closing */
};

struct relay_conn {
	struct relay_sched *s;
	struct rhop *hop;
	enum conn_st st;
	struct smtp_client *cli; /* live between connected() and release */
	struct rjob *job;
	struct hop_pool_conn hc; /* in its hop's pool; hc.txs: transactions begun */
	bool transport;	 /* open() succeeded, close() not made yet */
	bool blocked;	 /* send() said -EAGAIN: writable() comes */
	bool nomem;	 /* send() said -ENOMEM: on the nomem list */
	bool running;	 /* inside conn_run() */
	bool again;	 /* conn_run() was asked for while running */
	bool abort;	 /* close() with a reset: a connect that timed out */
	bool tls_wait;	 /* starttls() made: relay_conn_tls_done() comes */
	bool tls_failed; /* a "may" hop's handshake failed: retry in the clear, not a hop failure */
	uint32_t tls_gen; /* its hop's when it chose its TLS policy: an older one is not reused */
	struct timer timer;
	void *udata;
	TAILQ_ENTRY(relay_conn) link; /* the free list */
	TAILQ_ENTRY(relay_conn) il;   /* the engine-wide idle list, least recently used first */
	bool reaped;		      /* closed to make room for a starved hop */
	TAILQ_ENTRY(relay_conn) nl;   /* nomem list */
	TAILQ_ENTRY(relay_conn) all;
	uint8_t mem[] __attribute__((aligned(16))); /* the SMTP client session */
};

/* A DSN being spooled: the commit callback's cookie. */
struct rdsn {
	struct relay_sched *s;
	struct rmsg *m;
	struct spool_tx *tx;
	bool used, delay;
	char qid[SMTP_QID_LEN + 1];
	struct rdsn *next_free;
};

struct relay_sched {
	struct relay_sched_config cfg;
	const struct cfg_relay *rc;
	struct smtp_client_config ccfg;
	struct smtp_client_config ccfg_may, ccfg_encrypt; /* the same with STARTTLS (RFC 3207) */
	struct smtp_client_ops cops;
	struct smtp_client_ctx cctx;
	struct smtp_qid_gen qid;
	uint64_t hz, ms_div;
	uint64_t rnd;
	bool closing;

	struct rmsg *msgs;
	unsigned nmsgs, tracked;
	struct rmsg_q free_msgs, ready, settle;
	unsigned nready;
	struct rmsg **heap;
	unsigned nheap;
	struct spool_msg **ovf;
	unsigned ovf_cap, ovf_head, ovf_n;
	unsigned loaded, reading;
	size_t loaded_bytes;

	struct rhop **hops; /* by id; each stays put (connections point at it) until free */
	unsigned nhops, hops_cap;
	uint16_t (*route_hops)[CFG_MAX_NEXT_HOPS]; /* per domain entry, then the smarthost */
	unsigned nroutes;

	struct rconn_q conns_all, conns_free, conns_nomem;
	struct rhop_q starved; /* hops whose jobs wait for max_conns: served as connections end */
	unsigned nstarved;
	struct rconn_q idle_all; /* every idle connection, least recently used first */
	unsigned reaping;	 /* idle connections quitting to make room */
	unsigned nconns; /* in use */
	unsigned nidle;
	size_t conn_size;

	struct rdsn *dsns, *dsn_free;

	struct smtp_client_rcpt *scratch; /* max_rcpts: tx_begin()'s recipients */
	struct relay_log log;
	struct relay_stats st;
};

/* ---- small helpers ------------------------------------------------------------------------ */

static inline void cnt_n(struct relay_sched *s, enum relay_counter c, uint64_t n)
{
	__atomic_store_n(&s->st.c[c], __atomic_load_n(&s->st.c[c], __ATOMIC_RELAXED) + n,
			 __ATOMIC_RELAXED);
}

static inline void cnt(struct relay_sched *s, enum relay_counter c)
{
	cnt_n(s, c, 1);
}

static inline void gauge(struct relay_sched *s, enum relay_counter c, uint64_t v)
{
	__atomic_store_n(&s->st.c[c], v, __ATOMIC_RELAXED);
}

static inline void hcnt(uint64_t *f)
{
	__atomic_store_n(f, __atomic_load_n(f, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
}

static inline uint64_t clock_now(const struct relay_sched *s)
{
	return s->cfg.clock(s->cfg.clock_arg);
}

/* The SMTP client engine's clock: milliseconds. */
static inline uint64_t now_ms(const struct relay_sched *s)
{
	return clock_now(s) / s->ms_div;
}

/* The spool's clock: microseconds. */
static inline uint64_t now_us(const struct relay_sched *s)
{
	uint64_t d = s->hz / 1000000;

	return clock_now(s) / (d ? d : 1);
}

static inline int64_t wall_now(const struct relay_sched *s)
{
	uint64_t t = clock_now(s);

	if (t < s->cfg.t0)
		return s->cfg.wall0;
	return s->cfg.wall0 + (int64_t)((t - s->cfg.t0) / s->hz);
}

/* splitmix64: hop order, jitter and DSN seeds from one seed. */
static uint64_t rnd64(struct relay_sched *s)
{
	uint64_t x = (s->rnd += 0x9e3779b97f4a7c15ull);

	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static const char *qid_of(const struct relay_sched *s, const struct rmsg *m)
{
	(void)s;
	return m->qid;
}

/* The unix time in a queue id: its first 36 bits (queueid.h). 0 when it does not read. */
static int64_t qid_time(const char *qid)
{
	static const char b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
	uint64_t v = 0;

	if (qid == NULL || strlen(qid) < 8)
		return 0;
	for (int i = 0; i < 8; i++) {
		const char *p = strchr(b32, qid[i]);

		if (p == NULL || qid[i] == '\0')
			return 0;
		v = v << 5 | (uint64_t)(p - b32);
	}
	return (int64_t)(v >> 4);
}

static void *arena_alloc(struct rload *ld, size_t n)
{
	struct achunk *c = ld->arena;

	n = (n + 7) & ~(size_t)7;
	if (c == NULL || c->cap - c->used < n) {
		size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;

		c = malloc(sizeof(*c) + cap);
		if (c == NULL)
			return NULL;
		c->cap = cap;
		c->used = 0;
		c->next = ld->arena;
		ld->arena = c;
	}
	void *p = c->data + c->used;
	c->used += n;
	return p;
}

static const char *arena_str(struct rload *ld, const char *p, size_t n)
{
	char *d = arena_alloc(ld, n + 1);

	if (d == NULL)
		return NULL;
	memcpy(d, p, n);
	d[n] = '\0';
	return d;
}

/* ---- the deferred heap, ordered by next_at ------------------------------------------------ */

static void heap_swap(struct relay_sched *s, unsigned a, unsigned b)
{
	struct rmsg *t = s->heap[a];

	s->heap[a] = s->heap[b];
	s->heap[b] = t;
	s->heap[a]->heap_i = a;
	s->heap[b]->heap_i = b;
}

static void heap_up(struct relay_sched *s, unsigned i)
{
	while (i > 0) {
		unsigned p = (i - 1) / 2;

		if (s->heap[p]->next_at <= s->heap[i]->next_at)
			break;
		heap_swap(s, i, p);
		i = p;
	}
}

static void heap_down(struct relay_sched *s, unsigned i)
{
	for (;;) {
		unsigned l = 2 * i + 1, r = l + 1, m = i;

		if (l < s->nheap && s->heap[l]->next_at < s->heap[m]->next_at)
			m = l;
		if (r < s->nheap && s->heap[r]->next_at < s->heap[m]->next_at)
			m = r;
		if (m == i)
			return;
		heap_swap(s, i, m);
		i = m;
	}
}

static void heap_push(struct relay_sched *s, struct rmsg *m)
{
	m->heap_i = s->nheap;
	s->heap[s->nheap++] = m;
	heap_up(s, m->heap_i);
}

static struct rmsg *heap_pop(struct relay_sched *s)
{
	struct rmsg *m = s->heap[0];

	s->heap[0] = s->heap[--s->nheap];
	s->heap[0]->heap_i = 0;
	if (s->nheap > 0)
		heap_down(s, 0);
	return m;
}

/* ---- the log ------------------------------------------------------------------------------ */

static void log_rcpt(struct relay_sched *s, struct rload *ld, unsigned ri, const char *what)
{
	const struct rres *r = &ld->res[ri];
	const struct smtp_rcpt *rc = &ld->rcpts[ri];
	char from[2 * SMTP_PATH_MAX], to[2 * SMTP_PATH_MAX], text[2 * REPLY_TEXT_MAX];
	char code[8] = "", auth[2 * SPOOL_AUTHID_MAX + 8] = "";

	if (r->code)
		snprintf(code, sizeof(code), "%u ", r->code);
	if (ld->env.authid.len) { /* the authenticated submitter (RFC 4954 §5) */
		char q[2 * SPOOL_AUTHID_MAX + 1];
		snprintf(auth, sizeof(auth), " auth=<%s>",
			 relay_log_quote(q, sizeof(q), ld->env.authid.p, ld->env.authid.len, false));
	}
	relay_log_printf(&s->log, clock_now(s),
			 "qid=%s status=%s from=<%s>%s to=<%s> relay=%s delay=%llds attempts=%u "
			 "reply=\"%s%s %s\"",
			 qid_of(s, ld->m), what,
			 relay_log_quote(from, sizeof(from), ld->env.sender.p, ld->env.sender.len,
					 false),
			 auth, relay_log_quote(to, sizeof(to), rc->addr.p, rc->addr.len, false),
			 r->hop != NO_HOP ? s->hops[r->hop]->name : "none",
			 (long long)(wall_now(s) - ld->env.received), ld->attempt, code,
			 r->status, relay_log_quote(text, sizeof(text), r->text, r->text_len, true));
}

/* ---- forward declarations ----------------------------------------------------------------- */

static void note_load(struct rmsg *m, const struct rload *ld);
static void note_outcome(const struct rload *ld, unsigned ri, const char *line, size_t n);

static void conn_run(struct relay_conn *c);
static void job_start(struct rjob *j);
static void job_finish(struct rjob *j);
static void settle(struct rmsg *m);
static void hop_dispatch(struct rhop *h);
static void msg_track(struct relay_sched *s, struct spool_msg *sm);

/* ---- recipients' outcomes ----------------------------------------------------------------- */

/* The attempt's retry verdict, decided at its first deferral (retry.h). */
static void need_verdict(struct rload *ld)
{
	struct relay_sched *s = ld->s;

	if (ld->have_verdict)
		return;
	ld->have_verdict = true;
	ld->m->failures++;
	ld->verdict = retry_after_failure(&s->cfg.retry, ld->m->arrival, wall_now(s),
					  ld->m->failures, (uint32_t)rnd64(s), &ld->next);
}

/* A next attempt when the verdict gives none (a DSN that could not be spooled). */
static int64_t fallback_next(struct rload *ld)
{
	struct relay_sched *s = ld->s;

	if (ld->have_verdict && ld->verdict == RETRY_DEFER)
		return ld->next;
	return wall_now(s) + retry_interval_jittered(&s->cfg.retry, 1, (uint32_t)rnd64(s));
}

/* "550 5.1.1 text" or, for our own reasons, "4.4.1 text": the spool's reply and a DSN's diagnostic. */
static size_t reply_line(const struct rres *r, char *out, size_t cap)
{
	int n;

	if (r->code)
		n = snprintf(out, cap, "%u %s %.*s", r->code, r->status, (int)r->text_len,
			     r->text ? r->text : "");
	else
		n = snprintf(out, cap, "%s %.*s", r->status, (int)r->text_len,
			     r->text ? r->text : "");
	if (n < 0)
		return 0;
	return (size_t)n < cap ? (size_t)n : cap - 1;
}

/*
 * Writes recipient RI's outcome to the spool. Returns 0 (written or given
 * up on), or -ENOBUFS (try again later).
 */
static int write_state(struct rload *ld, unsigned ri)
{
	struct relay_sched *s = ld->s;
	struct rres *r = &ld->res[ri];
	char line[SPOOL_REPLY_MAX];
	enum spool_rcpt_state st;
	int64_t next = 0;

	switch (r->st) {
	case RS_DELIVERED:
		st = SPOOL_RCPT_DELIVERED;
		break;
	case RS_DEFERRED:
		st = SPOOL_RCPT_DEFERRED;
		next = ld->next;
		break;
	case RS_FAILED:
		st = SPOOL_RCPT_FAILED;
		break;
	default:
		return 0;
	}
	size_t n = reply_line(r, line, sizeof(line));
	int rc = s->cfg.store->state(s->cfg.store_arg, ld->m->sm, ri, st, wall_now(s), next,
				     (struct smtp_str){ (const uint8_t *)line, n });
	if (rc == -ENOBUFS) {
		cnt(s, RELAY_STATE_RETRIES);
		return rc;
	}
	if (rc != 0)
		cnt(s, RELAY_STATE_ERRORS); /* kept in memory; the next start redoes it */
	r->written = true;
	note_outcome(ld, ri, line, n);
	switch (r->st) {
	case RS_DELIVERED:
		log_rcpt(s, ld, ri, "delivered");
		break;
	case RS_DEFERRED:
		log_rcpt(s, ld, ri, "deferred");
		break;
	default:
		log_rcpt(s, ld, ri, r->expired ? "bounced(expired)" : "bounced");
		break;
	}
	if (r->st != RS_DEFERRED && ld->nonfinal > 0 && --ld->nonfinal == 0) {
		/* every recipient final: the spool has let go of the message */
		ld->m->final = true;
		ld->m->sm = NULL;
	}
	return 0;
}

/*
 * Recipient RI's outcome in this attempt: OUT (DELIVERED, DEFERRED,
 * FAILED) with reply CODE (0: ours), STATUS and TEXT from hop HOP.
 */
static void rcpt_decide(struct rload *ld, unsigned ri, enum smtp_client_outcome out, unsigned code,
			const char *status, const char *text, size_t text_len, uint16_t hop)
{
	struct relay_sched *s = ld->s;
	struct rres *r = &ld->res[ri];

	if (r->st != RS_PENDING)
		return;
	r->code = (uint16_t)code;
	r->hop = hop;
	if (status && status[0]) {
		snprintf(r->status, sizeof(r->status), "%s", status);
	} else {
		unsigned cls = code / 100;
		snprintf(r->status, sizeof(r->status), "%u.0.0", cls >= 2 && cls <= 5 ? cls : 4);
	}
	r->text = text;
	r->text_len = (uint16_t)(text_len < UINT16_MAX ? text_len : UINT16_MAX);
	struct relay_hop_stats *hs = hop != NO_HOP ? &s->hops[hop]->st : NULL;
	if (hs && code / 100 == 4)
		hcnt(&hs->replies_4xx);
	else if (hs && code / 100 == 5)
		hcnt(&hs->replies_5xx);

	switch (out) {
	case SMTP_CO_DELIVERED:
		r->st = RS_DELIVERED;
		cnt(s, RELAY_RCPTS_DELIVERED);
		if (hs)
			hcnt(&hs->rcpts_delivered);
		break;
	case SMTP_CO_FAILED:
		r->st = RS_FAILED;
		ld->m->had_failure = true;
		cnt(s, RELAY_RCPTS_FAILED);
		if (hs)
			hcnt(&hs->rcpts_failed);
		return; /* written once its DSN is settled */
	default:
		need_verdict(ld);
		if (hs)
			hcnt(&hs->rcpts_deferred);
		if (ld->verdict == RETRY_EXPIRED) {
			r->st = RS_FAILED;
			r->expired = true;
			ld->m->had_failure = true;
			cnt(s, RELAY_RCPTS_EXPIRED);
			return;
		}
		r->st = RS_DEFERRED;
		cnt(s, RELAY_RCPTS_DEFERRED);
		break;
	}
	write_state(ld, ri); /* -ENOBUFS: settle() tries again */
}

/* Every recipient of J still pending gets our own reason. */
static void job_decide_all(struct rjob *j, enum smtp_client_outcome out, const char *status,
			   const char *text)
{
	struct rload *ld = j->ld;
	const char *t = arena_str(ld, text, strlen(text));
	uint16_t hop = j->hop ? j->hop->id : NO_HOP;

	for (unsigned k = 0; k < j->n; k++)
		rcpt_decide(ld, ld->idx[j->first + k], out, 0, status, t ? t : "", t ? strlen(t) : 0,
			    hop);
}

/* ---- the SMTP client engine's results ----------------------------------------------------- */

/* A hop of J's route after the current one that is not down. */
static bool job_has_next_hop(const struct rjob *j)
{
	const struct relay_sched *s = j->ld->s;
	uint64_t now = clock_now(s);

	for (unsigned k = j->next + 1; k < j->n_order; k++)
		if (s->hops[j->order[k]]->down_until <= now)
			return true;
	return false;
}

/*
 * Does result R of J's transaction send its recipient to the route's next
 * hop within this attempt (Postfix's fallback behaviour)? Only when the hop
 * went away mid-transaction -- the connection lost, timed out, or closed
 * with 421 (RFC 5321 §3.8) -- and before the end of data was given to the
 * engine: up to then the hop cannot have taken the message. Once the end
 * of data may have gone out, the outcome is unknown (the hop may have
 * queued it and lost only its reply: RFC 1047), so the recipient is
 * deferred and no other hop is tried in the same attempt; the retry may
 * still duplicate the message, which RFC 1047 accepts over losing it.
 */
static bool tx_failover(const struct rjob *j, const struct smtp_client_result *r)
{
	if (r->outcome != SMTP_CO_DEFERRED || j->data_end)
		return false;
	switch (r->stage) {
	case SMTP_CS_MAIL:
	case SMTP_CS_RCPT:
	case SMTP_CS_DATA:
	case SMTP_CS_CONTENT:
	case SMTP_CS_BDAT:
		break;
	default: /* DOT above all: unknown */
		return false;
	}
	if (r->reason != SMTP_CR_CONN_LOST && r->reason != SMTP_CR_TIMEOUT &&
	    !(r->reason == SMTP_CR_REPLY && r->reply->code == 421))
		return false;
	return job_has_next_hop(j);
}

static void on_rcpt_done(void *arg, struct smtp_client *cli, unsigned idx,
			 const struct smtp_client_result *r)
{
	struct relay_sched *s = arg;
	struct relay_conn *c = smtp_client_udata(cli);
	struct rjob *j = c ? c->job : NULL;

	if (s->closing || j == NULL || idx >= j->n)
		return;
	/*
	 * A pooled connection the next hop had already dropped: the
	 * transaction died before its MAIL was answered. That says nothing
	 * about the message: start over on a fresh connection, once.
	 */
	if (r->outcome == SMTP_CO_DEFERRED && c->hc.txs > 1 && !j->stale_used &&
	    r->stage == SMTP_CS_MAIL &&
	    (r->reason == SMTP_CR_CONN_LOST || (r->reason == SMTP_CR_REPLY && r->reply->code == 421))) {
		j->stale = true;
		return;
	}
	struct rload *ld = j->ld;
	if (j->failover || tx_failover(j, r)) {
		if (!j->failover) {
			j->failover = true;
			snprintf(j->why, sizeof(j->why), "%s: %.120s", j->hop->name, r->reply->text);
		}
		return; /* undecided: the next hop gets it in this attempt */
	}
	if (!j->have_last || r->reply->code != j->last_code ||
	    strcmp(r->reply->esc, j->last_esc) != 0 ||
	    strcmp(r->reply->text, j->last_text ? j->last_text : "") != 0) {
		j->have_last = true;
		j->last_code = r->reply->code;
		snprintf(j->last_esc, sizeof(j->last_esc), "%s", r->reply->esc);
		j->last_text = arena_str(ld, r->reply->text, r->reply->text_len);
	}
	const char *t = j->last_text ? j->last_text : "";
	rcpt_decide(ld, ld->idx[j->first + idx], r->outcome, r->reply->code, r->reply->esc, t,
		    strlen(t), j->hop->id);
}

static void on_tx_done(void *arg, struct smtp_client *cli, const struct smtp_client_tx_summary *sum)
{
	struct relay_sched *s = arg;
	struct relay_conn *c = smtp_client_udata(cli);

	(void)sum;
	if (s->closing || c == NULL || c->job == NULL)
		return;
	c->job->tx_done = true;
}

/* ---- connections -------------------------------------------------------------------------- */

static void conn_set_state(struct relay_conn *c, enum conn_st st)
{
	struct rhop *h = c->hop;
	enum conn_st old = c->st;
	bool was_open = old != CS_FREE;
	bool is_open = st != CS_FREE;
	bool was_conn = old == CS_CONNECTING || old == CS_HANDSHAKE;
	bool is_conn = st == CS_CONNECTING || st == CS_HANDSHAKE;
	bool was_use = old == CS_IDLE || old == CS_BUSY;
	bool is_use = st == CS_IDLE || st == CS_BUSY;

	c->st = st;
	if (h == NULL)
		return;
	h->nconnecting += (unsigned)is_conn - (unsigned)was_conn;
	h->nusable += (unsigned)is_use - (unsigned)was_use;
	if (is_open && !was_open)
		hop_pool_opened(&h->pool, &c->hc);
	if (old == CS_IDLE) {
		hop_pool_unidle(&h->pool, &c->hc);
		TAILQ_REMOVE(&c->s->idle_all, c, il);
	}
	if (st == CS_IDLE) {
		hop_pool_put(&h->pool, &c->hc); /* LIFO: the surplus ones time out */
		TAILQ_INSERT_TAIL(&c->s->idle_all, c, il);
	}
	if (was_open && !is_open)
		hop_pool_closed(&h->pool, &c->hc);
	if (st == CS_FREE && c->reaped) {
		c->reaped = false;
		c->s->reaping--;
	}
	c->s->nidle += (unsigned)(st == CS_IDLE) - (unsigned)(old == CS_IDLE);
	__atomic_store_n(&h->st.conns_idle, h->pool.nidle, __ATOMIC_RELAXED);
	__atomic_store_n(&h->st.conns_active, h->pool.nopen - h->pool.nidle, __ATOMIC_RELAXED);
}

static void conn_arm_ms(struct relay_conn *c, uint64_t ms)
{
	struct relay_sched *s = c->s;

	timer_arm_ms(s->cfg.wheel, &c->timer, clock_now(s), ms);
}

/* The timer follows the engine's deadline (RFC 5321 §4.5.3.2), outside the pool. */
static void conn_arm(struct relay_conn *c)
{
	struct relay_sched *s = c->s;

	if (c->st == CS_IDLE || c->st == CS_CONNECTING || c->cli == NULL)
		return;
	uint64_t d = smtp_client_deadline(c->cli);
	if (d == UINT64_MAX)
		timer_cancel(s->cfg.wheel, &c->timer);
	else /* a ms late rather than early: the engine compares in whole ms */
		timer_arm_at(s->cfg.wheel, &c->timer, (d + 1) * s->ms_div);
}

static struct relay_conn *conn_get(struct relay_sched *s, struct rhop *h)
{
	struct relay_conn *c = TAILQ_FIRST(&s->conns_free);

	if (c != NULL) {
		TAILQ_REMOVE(&s->conns_free, c, link);
	} else {
		c = aligned_alloc(16, s->conn_size);
		if (c == NULL)
			return NULL;
		TAILQ_INSERT_TAIL(&s->conns_all, c, all);
	}
	memset(c, 0, offsetof(struct relay_conn, all));
	c->s = s;
	c->hop = h;
	c->st = CS_FREE;
	s->nconns++;
	return c;
}

/*
 * C is done: its transport is closed, its session ended, its counts
 * undone. Its job, if any, must have been taken off it.
 */
static void conn_release(struct relay_conn *c)
{
	struct relay_sched *s = c->s;

	timer_cancel(s->cfg.wheel, &c->timer);
	if (c->nomem)
		TAILQ_REMOVE(&s->conns_nomem, c, nl);
	c->nomem = false;
	if (c->transport) {
		c->transport = false;
		s->cfg.transport->close(s->cfg.transport_arg, c, s->closing || c->abort);
	}
	if (c->cli != NULL) {
		smtp_client_fini(c->cli);
		c->cli = NULL;
	}
	conn_set_state(c, CS_FREE);
	c->hop = NULL;
	c->job = NULL;
	TAILQ_INSERT_HEAD(&s->conns_free, c, link);
	s->nconns--;
}

/*
 * A connection to H failed before a transaction could begin (WHY says
 * how). Unless other connections of H work or are still on their way, H
 * is down for hop_down_s -- later jobs skip it -- and the jobs waiting for
 * it move on to their next hops (RFC 5321 §5.1: try the next MX).
 */
static void hop_fail(struct relay_sched *s, struct rhop *h, const char *why)
{
	struct rjob *j;

	hcnt(&h->st.conns_failed);
	cnt(s, RELAY_CONNS_FAILED);
	snprintf(h->down_why, sizeof(h->down_why), "%s", why);
	if (h->nusable > 0 || h->nconnecting > 0)
		return; /* the others decide: they serve the waiting jobs, or fail too */
	h->down_until = clock_now(s) + (uint64_t)s->cfg.hop_down_s * s->hz;
	cnt(s, RELAY_HOPS_DOWN);
	while ((j = TAILQ_FIRST(&h->wait)) != NULL) {
		TAILQ_REMOVE(&h->wait, j, wq);
		h->nwait--;
		snprintf(j->why, sizeof(j->why), "%s", why);
		hcnt(&h->st.failovers);
		cnt(s, RELAY_HOP_FAILOVERS);
		j->next++;
		job_start(j);
	}
}

/*
 * C's STARTTLS handshake with a "may" hop failed (an alert, or the hop left
 * mid-handshake): not a hop failure. relay_conn_tls_done()/relay_conn_lost()
 * set the hop's tls_plain_until, so the connection hop_dispatch() opens for
 * its waiting jobs now goes in the clear, as Postfix's opportunistic TLS
 * level retries (RFC 3207 §4 leaves the choice to the client). Once per
 * tls_plain_until, so it cannot loop.
 */
static void conn_tls_fallback(struct relay_conn *c, const char *why)
{
	struct relay_sched *s = c->s;
	struct rhop *h = c->hop;

	hcnt(&h->st.conns_failed);
	cnt(s, RELAY_CONNS_FAILED);
	snprintf(h->down_why, sizeof(h->down_why), "%s", why);
	conn_release(c);
	hop_dispatch(h);
}

/* C failed before it was usable: release it, then the hop decides what its waiting jobs do. */
static void conn_fail(struct relay_conn *c, const char *why)
{
	struct relay_sched *s = c->s;
	struct rhop *h = c->hop;

	conn_release(c);
	hop_fail(s, h, why);
}

/*
 * J's hop went away mid-transaction (tx_failover()): the recipients it did
 * not decide go to the route's next hop, in this attempt; those it did
 * decide (a 550 or 450 at RCPT) keep their outcome.
 */
static void job_failover(struct relay_sched *s, struct rjob *j)
{
	struct rload *ld = j->ld;
	unsigned *idx = ld->idx + j->first, n = 0;

	/* the undecided ones first, in their order: the job's recipients from now on */
	for (unsigned k = 0; k < j->n; k++) {
		unsigned ri = idx[k];

		if (ld->res[ri].st == RS_PENDING) {
			idx[k] = idx[n];
			idx[n++] = ri;
		}
	}
	hcnt(&j->hop->st.failovers);
	cnt(s, RELAY_HOP_FAILOVERS);
	relay_log_printf(&s->log, clock_now(s), "qid=%s status=failover relay=%s nrcpt=%u why=\"%s\"",
			 qid_of(s, ld->m), j->hop->name, n, j->why);
	j->failover = false;
	j->begun = j->tx_done = j->data_end = false;
	j->stale_used = false;
	j->have_last = false;
	j->off = 0;
	j->hop = NULL;
	if (n == 0) {
		job_finish(j);
		return;
	}
	j->n = n;
	j->next++;
	job_start(j);
}

/* The job on C ended (its recipients decided, or it must start over): C lets go of it. */
static void conn_drop_job(struct relay_conn *c)
{
	struct rjob *j = c->job;

	if (j == NULL)
		return;
	c->job = NULL;
	j->conn = NULL;
	if (j->stale) {
		/* back to the front of the hop's queue, for a fresh connection */
		struct rhop *h = j->hop;
		j->stale = false;
		j->stale_used = true;
		j->begun = j->tx_done = j->data_end = false;
		j->off = 0;
		j->st = JS_WAIT;
		cnt(c->s, RELAY_CONNS_STALE);
		TAILQ_INSERT_HEAD(&h->wait, j, wq);
		h->nwait++;
		return;
	}
	if (j->failover) {
		job_failover(c->s, j);
		return;
	}
	if (!j->tx_done) {
		/* the engine ended without reporting (cannot happen): nothing is known */
		job_decide_all(j, SMTP_CO_DEFERRED, "4.3.0", "delivery ended without a result");
	}
	job_finish(j);
}

/* Starts J's transaction on C (READY). */
static void job_begin(struct relay_conn *c, struct rjob *j)
{
	struct relay_sched *s = c->s;
	struct rload *ld = j->ld;
	struct smtp_client_msg msg = {
		.sender = ld->env.sender,
		.rcpt = s->scratch,
		.nrcpt = j->n,
		.size = ld->content.len,
		.eightbit = ld->eightbit,
		.smtputf8 = ld->env.smtputf8,
		.ret = (uint8_t)ld->env.ret,
		.envid = { ld->envid, ld->envid_len },
		.auth = ld->env.authid, /* RFC 4954 §5: AUTH= to a hop offering AUTH */
	};

	for (unsigned k = 0; k < j->n; k++) {
		unsigned ri = ld->idx[j->first + k];
		s->scratch[k] = (struct smtp_client_rcpt){
			.addr = ld->rcpts[ri].addr,
			.notify = ld->rcpts[ri].notify,
			.orcpt_type = ld->res[ri].orcpt_type,
			.orcpt = ld->res[ri].orcpt,
		};
	}
	int rc = smtp_client_tx_begin(c->cli, &msg, now_ms(s));
	if (rc == -EAGAIN)
		return; /* output must drain first: conn_run() comes back */
	j->begun = true;
	if (rc != 0) {
		/* the envelope cannot be written at all (never from what our server took) */
		j->tx_done = true;
		job_decide_all(j, SMTP_CO_FAILED, "5.5.2", "envelope cannot be sent");
		return;
	}
	hop_pool_began(&c->hc);
	cnt(s, RELAY_TRANSACTIONS);
	hcnt(&c->hop->st.transactions);
	if (c->hc.txs > 1)
		cnt(s, RELAY_CONNS_REUSED);
}

/* C is READY with no job: the next waiting job, the pool, or QUIT at messages_per_connection. */
static bool conn_ready(struct relay_conn *c)
{
	struct relay_sched *s = c->s;
	struct rhop *h = c->hop;
	struct rjob *j;

	if (hop_pool_worn(&c->hc, s->rc->messages_per_connection) || c->tls_gen != h->tls_gen) {
		/* its place under the cap frees when it is closed (conn_end() dispatches then);
		 * one opened under a TLS policy new routes changed goes the same way */
		cnt(s, RELAY_CONNS_RECYCLED);
		conn_set_state(c, CS_QUIT);
		smtp_client_quit(c->cli, now_ms(s));
		return true;
	}
	j = TAILQ_FIRST(&h->wait);
	if (j == NULL) {
		if (c->st != CS_IDLE) {
			conn_set_state(c, CS_IDLE);
			conn_arm_ms(c, (uint64_t)s->rc->idle_timeout_s * 1000);
		}
		return false;
	}
	TAILQ_REMOVE(&h->wait, j, wq);
	h->nwait--;
	conn_set_state(c, CS_BUSY);
	c->job = j;
	j->conn = c;
	j->st = JS_RUN;
	job_begin(c, j);
	return true;
}

/* Sends the engine's output. Returns 1 when octets went, 0 when there were none, <0 blocked. */
static int conn_flush(struct relay_conn *c)
{
	struct relay_sched *s = c->s;
	const uint8_t *p;

	if (c->blocked || c->nomem || !c->transport)
		return -EAGAIN;
	size_t n = smtp_client_output(c->cli, &p);
	if (n == 0)
		return 0;
	int rc = s->cfg.transport->send(s->cfg.transport_arg, c, p, n);
	switch (rc) {
	case 0:
		smtp_client_output_done(c->cli, n, now_ms(s));
		return 1;
	case -EAGAIN:
		c->blocked = true;
		return rc;
	case -ENOMEM:
		cnt(s, RELAY_SEND_NOMEM);
		c->nomem = true;
		TAILQ_INSERT_TAIL(&s->conns_nomem, c, nl);
		return rc;
	default:
		/* broken: the session ends as if the connection were lost */
		smtp_client_lost(c->cli, now_ms(s));
		return -EPIPE;
	}
}

/* Feeds J's content while the engine takes it. Returns true when something moved. */
static bool conn_feed(struct relay_conn *c, struct rjob *j)
{
	struct relay_sched *s = c->s;
	const struct smtp_str *ct = &j->ld->content;
	bool moved = false;

	if (j->off < ct->len) {
		size_t n = smtp_client_data(c->cli, ct->p + j->off, ct->len - j->off, now_ms(s));
		j->off += n;
		moved = n > 0;
	}
	if (j->off == ct->len && !j->data_end && smtp_client_data_end(c->cli, now_ms(s)) == 0) {
		j->data_end = true;
		moved = true;
	}
	return moved;
}

/* The session ended: release C, then its job goes on (finished, or again elsewhere). */
static void conn_end(struct relay_conn *c)
{
	struct relay_sched *s = c->s;
	struct rhop *h = c->hop;
	struct rjob *j = c->job;
	const struct smtp_client_result *e = smtp_client_error(c->cli);

	if (c->st == CS_HANDSHAKE) {
		char why[WHY_MAX];
		snprintf(why, sizeof(why), "%s: %.120s", h->name,
			 e ? e->reply->text : "connection closed during the greeting");
		if (c->tls_failed) {
			conn_tls_fallback(c, why);
			return;
		}
		conn_fail(c, why);
		return;
	}
	if (e != NULL && c->st == CS_BUSY && j != NULL)
		cnt(s, RELAY_CONNS_LOST);
	conn_drop_job(c);
	conn_release(c);
	hop_dispatch(h);
}

/*
 * The 220 to our STARTTLS came: the transport runs the handshake, verifying
 * the hop's certificate under "encrypt", and says relay_conn_tls_done().
 */
static int conn_starttls(struct relay_conn *c)
{
	struct relay_sched *s = c->s;
	const struct rhop *h = c->hop;
	const uint8_t *a = (const uint8_t *)&h->addr;
	char addr[16];

	if (s->cfg.transport->starttls == NULL)
		return -ENOTSUP;
	snprintf(addr, sizeof(addr), "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
	c->tls_wait = true;
	if (s->cfg.transport->starttls(s->cfg.transport_arg, c, h->tls_name[0] ? h->tls_name : addr,
				       h->tls == CFG_HOP_TLS_ENCRYPT) != 0) {
		c->tls_wait = false;
		return -EPROTO;
	}
	return 0;
}

/*
 * Drives C after anything happened to it: sends what the engine has, takes
 * the next step its events call for, until nothing moves. May release C.
 */
static void conn_run(struct relay_conn *c)
{
	struct relay_sched *s = c->s;

	if (c->running) {
		c->again = true;
		return;
	}
	c->running = true;
	for (;;) {
		bool moved = false;
		int fl = conn_flush(c);

		if (fl > 0)
			moved = true;
		unsigned ev = smtp_client_events(c->cli);
		if (ev & SMTP_CLIENT_EV_CLOSE) {
			c->running = false;
			conn_end(c);
			return;
		}
		if (c->st == CS_HANDSHAKE && smtp_client_error(c->cli) != NULL) {
			/* refused at the greeting or EHLO: the session says QUIT and closes */
			char why[WHY_MAX];
			struct rhop *h = c->hop;
			snprintf(why, sizeof(why), "%s: %.120s", h->name,
				 smtp_client_error(c->cli)->reply->text);
			conn_set_state(c, CS_QUIT);
			if (c->tls_failed)
				hop_dispatch(h); /* a new connection, in the clear (conn_tls_fallback) */
			else
				hop_fail(s, h, why);
			moved = true;
		}
		if (c->job != NULL && c->job->tx_done) {
			conn_drop_job(c);
			moved = true;
		}
		if (ev & SMTP_CLIENT_EV_STARTTLS) {
			if (!c->tls_wait && conn_starttls(c) != 0) {
				smtp_client_tls_done(c->cli, false, now_ms(s));
				moved = true;
			}
		} else if ((ev & SMTP_CLIENT_EV_READY) && c->st != CS_QUIT) {
			if (c->st == CS_HANDSHAKE) {
				conn_set_state(c, CS_BUSY);
				moved = true;
			}
			if (c->job == NULL) {
				if (c->st != CS_IDLE && conn_ready(c))
					moved = true;
			} else if (!c->job->begun) {
				job_begin(c, c->job);
				moved = moved || c->job == NULL || c->job->begun;
			}
		} else if ((ev & SMTP_CLIENT_EV_CONTENT) && c->job != NULL) {
			if (conn_feed(c, c->job))
				moved = true;
		}
		if (!moved && !c->again)
			break;
		c->again = false;
	}
	c->running = false;
	conn_arm(c);
}

static void conn_timer(struct timer *t, void *arg)
{
	struct relay_conn *c = arg;
	struct relay_sched *s = c->s;
	char why[WHY_MAX];

	(void)t;
	switch (c->st) {
	case CS_CONNECTING:
		snprintf(why, sizeof(why), "%s: connection timed out", c->hop->name);
		c->abort = true;
		conn_fail(c, why);
		return;
	case CS_IDLE:
		cnt(s, RELAY_CONNS_IDLE_CLOSED);
		conn_set_state(c, CS_QUIT);
		smtp_client_quit(c->cli, now_ms(s));
		conn_run(c);
		return;
	default:
		if (c->cli != NULL && smtp_client_timeout(c->cli, now_ms(s)))
			conn_run(c);
		else
			conn_arm(c);
	}
}

/* Opens a connection to H for its waiting jobs. False when it failed at once. */
static bool conn_open(struct relay_sched *s, struct rhop *h)
{
	struct relay_conn *c = conn_get(s, h);
	char why[WHY_MAX];
	int rc;

	if (c == NULL) {
		snprintf(why, sizeof(why), "%s: out of memory for a connection", h->name);
		hop_fail(s, h, why);
		return false;
	}
	timer_init(&c->timer, conn_timer, c);
	conn_set_state(c, CS_CONNECTING);
	cnt(s, RELAY_CONNS_OPENED);
	hcnt(&h->st.conns_opened);
	rc = s->cfg.transport->open(s->cfg.transport_arg, c, h->addr, h->port);
	if (rc != 0) {
		snprintf(why, sizeof(why), "%s: connect: %s", h->name, strerror(-rc));
		conn_fail(c, why);
		return false;
	}
	c->transport = true;
	conn_arm_ms(c, (uint64_t)s->rc->connect_timeout_s * 1000);
	return true;
}

/*
 * The engine-wide cap is reached and a hop waits: the least recently used
 * idle connection (of another hop: the waiting one has none idle) says
 * QUIT, one per starved hop at a time, rather than keeping its place for
 * its whole idle timeout.
 */
static void conn_reap(struct relay_sched *s)
{
	struct relay_conn *c = TAILQ_FIRST(&s->idle_all);

	if (c == NULL || s->reaping >= s->nstarved)
		return;
	timer_cancel(s->cfg.wheel, &c->timer);
	conn_set_state(c, CS_QUIT);
	c->reaped = true;
	s->reaping++;
	cnt(s, RELAY_CONNS_IDLE_CLOSED);
	smtp_client_quit(c->cli, now_ms(s));
	conn_run(c);
}

/* H's waiting jobs get pooled connections, or new ones under the caps. */
static void hop_dispatch(struct rhop *h)
{
	struct relay_sched *s;
	struct rjob *j;

	while ((j = TAILQ_FIRST(&h->wait)) != NULL) {
		s = j->ld->s;
		struct hop_pool_conn *hc = hop_pool_take(&h->pool);
		if (hc != NULL) {
			struct relay_conn *c =
				(struct relay_conn *)((char *)hc - offsetof(struct relay_conn, hc));
			timer_cancel(s->cfg.wheel, &c->timer);
			conn_set_state(c, CS_BUSY);
			conn_ready(c);
			conn_run(c);
			continue;
		}
		if (h->nconnecting >= h->nwait)
			return; /* enough on their way */
		if (!hop_pool_may_open(&h->pool, s->rc->connections_per_hop))
			return; /* a busy one takes the next job when it is done */
		if (s->nconns >= s->cfg.max_conns) {
			/* another hop's connection must end first: relay_sched_poll() comes back */
			if (!h->starved) {
				h->starved = true;
				s->nstarved++;
				TAILQ_INSERT_TAIL(&s->starved, h, sl);
			}
			conn_reap(s);
			return;
		}
		if (!conn_open(s, h))
			return; /* the jobs moved on, or wait for the connections there are */
	}
}

/* ---- jobs --------------------------------------------------------------------------------- */

/* J goes to its next hop that is not down, or is deferred when none is left. */
static void job_start(struct rjob *j)
{
	struct relay_sched *s = j->ld->s;
	uint64_t now = clock_now(s);

	while (j->next < j->n_order) {
		struct rhop *h = s->hops[j->order[j->next]];

		if (h->down_until > now) {
			snprintf(j->why, sizeof(j->why), "%s", h->down_why);
			j->next++;
			continue;
		}
		j->hop = h;
		j->st = JS_WAIT;
		TAILQ_INSERT_TAIL(&h->wait, j, wq);
		h->nwait++;
		if (h->pool.nidle == 0 && !hop_pool_may_open(&h->pool, s->rc->connections_per_hop))
			cnt(s, RELAY_CONN_WAITS);
		hop_dispatch(h);
		return;
	}
	char why[WHY_MAX + 32];
	snprintf(why, sizeof(why), "all next hops failed: %s", j->why[0] ? j->why : "none");
	job_decide_all(j, SMTP_CO_DEFERRED, "4.4.1", why);
	job_finish(j);
}

static void attempt_end(struct rload *ld);

static void ld_check_end(struct rload *ld)
{
	if (ld->jobs_open == 0 && ld->hold == 0 && !ld->ended)
		attempt_end(ld);
}

static void job_finish(struct rjob *j)
{
	struct rload *ld = j->ld;

	if (j->st == JS_DONE)
		return;
	j->st = JS_DONE;
	ld->jobs_open--;
	ld_check_end(ld);
}

/* ---- DSNs --------------------------------------------------------------------------------- */

static struct rdsn *dsn_get(struct relay_sched *s)
{
	struct rdsn *d = s->dsn_free;

	if (d != NULL) {
		s->dsn_free = d->next_free;
		d->used = true;
	}
	return d;
}

static void dsn_put(struct relay_sched *s, struct rdsn *d)
{
	d->used = false;
	d->m = NULL;
	d->tx = NULL;
	d->next_free = s->dsn_free;
	s->dsn_free = d;
}

static void msg_maybe_free(struct relay_sched *s, struct rmsg *m);

/* A DSN's commit completed (STATUS 0: durable as NEWM). */
static void dsn_committed(void *cookie, int status, struct spool_msg *newm)
{
	struct rdsn *d = cookie;
	struct relay_sched *s = d->s;
	struct rmsg *m = d->m;
	bool delay = d->delay;

	if (status == 0) {
		cnt(s, delay ? RELAY_DSN_DELAYS : RELAY_DSN_BOUNCES);
		relay_log_printf(&s->log, clock_now(s), "qid=%s status=dsn-queued kind=%s dsn=%s",
				 qid_of(s, m), delay ? "delay" : "failure", d->qid);
	} else {
		cnt(s, RELAY_DSN_ERRORS);
	}
	dsn_put(s, d);
	m->dsn_pending--;
	if (delay) {
		if (status == 0)
			m->warned = true;
	} else if (m->ld != NULL) {
		struct rload *ld = m->ld;
		for (unsigned i = 0; i < ld->nrcpt; i++) {
			struct rres *r = &ld->res[i];
			if (!r->dsn_wait)
				continue;
			r->dsn_wait = false;
			if (status != 0) {
				/* not bounced yet: try the recipient again later, and its bounce then */
				r->st = RS_DEFERRED;
				r->expired = false;
				r->dsn_decided = false;
				ld->next = fallback_next(ld);
				ld->have_verdict = true;
				ld->verdict = RETRY_DEFER;
			}
		}
		settle(m);
	}
	if (status == 0)
		msg_track(s, newm);
	msg_maybe_free(s, m);
}

/* Spools a DSN of LEN octets OUT for RES: returns 0 (commit pending), or -errno. */
static int dsn_spool(struct rload *ld, const uint8_t *out, const struct dsn_result *res, bool delay)
{
	struct relay_sched *s = ld->s;
	struct rdsn *d = dsn_get(s);
	struct smtp_rcpt rcpt = { .addr = res->rcpt_to };
	static const char proto[] = "ESMTP";
	const char *host = s->cfg.dsn.hostname;

	if (d == NULL)
		return -ENOBUFS;
	struct spool_env env = {
		.received = wall_now(s),
		.body = res->eightbit ? SMTP_BODY_8BITMIME : SMTP_BODY_NONE,
		.smtputf8 = res->smtputf8,
		.protocol = { (const uint8_t *)proto, sizeof(proto) - 1 },
		.helo = { (const uint8_t *)host, strlen(host) },
		.nrcpt = 1,
		.rcpt = &rcpt,
	};
	smtp_qid_next(&s->qid, (uint64_t)env.received, env.queue_id);
	memcpy(d->qid, env.queue_id, sizeof(d->qid));
	d->s = s;
	d->m = ld->m;
	d->delay = delay;
	int rc = s->cfg.store->inject(s->cfg.store_arg, &env, out, res->len, now_us(s),
				      dsn_committed, d, &d->tx);
	if (rc != 0) {
		dsn_put(s, d);
		return rc;
	}
	ld->m->dsn_pending++;
	return 0;
}

/* Fills DR for recipient RI with ACTION; DIAG receives its diagnostic. */
static void dsn_rcpt_fill(struct rload *ld, unsigned ri, enum dsn_action action,
			  struct dsn_rcpt *dr, char *diag, size_t cap, char *status)
{
	const struct rres *r = &ld->res[ri];
	struct relay_sched *s = ld->s;

	*dr = (struct dsn_rcpt){
		.addr = ld->rcpts[ri].addr,
		.orcpt_type = r->orcpt.len ? r->orcpt_type : (struct smtp_str){ 0 },
		.orcpt = r->orcpt,
		.notify = ld->rcpts[ri].notify,
		.action = action,
		.status = status,
		.last_attempt = wall_now(s),
	};
	if (r->orcpt.len && r->orcpt_type.len == 0)
		dr->orcpt_type = (struct smtp_str){ (const uint8_t *)"rfc822", 6 };
	snprintf(status, SMTP_ESC_MAX + 1, "%s", r->expired ? RETRY_EXPIRED_STATUS : r->status);
	if (action == DSN_ACT_DELAYED) {
		status[0] = '4'; /* RFC 3464 §2.3.4: a delayed recipient's status is 4.X.X */
		dr->retry_until = retry_expiry_time(&s->cfg.retry, ld->m->arrival);
	}
	if (r->hop != NO_HOP) {
		const char *n = s->hops[r->hop]->name;
		dr->remote_mta = (struct smtp_str){ (const uint8_t *)n, (size_t)(strchr(n, ':') - n) };
	}
	if (r->code) {
		size_t n = reply_line(r, diag, cap);
		dr->diag = (struct smtp_str){ (const uint8_t *)diag, n };
	}
}

/*
 * A DSN (failure: the recipients whose state is FAILED and not yet
 * decided; delay: those DEFERRED) for LD's message. Returns 0 when it is
 * being spooled (its recipients wait for it), 1 when none is owed, or
 * -errno when it could not be made or spooled now.
 */
static int dsn_make(struct rload *ld, bool delay)
{
	struct relay_sched *s = ld->s;
	unsigned n = 0;
	int rc;

	for (unsigned i = 0; i < ld->nrcpt; i++) {
		const struct rres *r = &ld->res[i];
		if (delay ? r->st == RS_DEFERRED : (r->st == RS_FAILED && !r->dsn_decided))
			n++;
	}
	if (n == 0)
		return 1;
	struct dsn_rcpt *dr = calloc(n, sizeof(*dr));
	char *diag = malloc((size_t)n * REPLY_TEXT_MAX);
	char(*status)[SMTP_ESC_MAX + 1] = calloc(n, sizeof(*status));
	uint8_t envid[SMTP_ENVID_MAX];
	if (dr == NULL || diag == NULL || status == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	unsigned k = 0;
	for (unsigned i = 0; i < ld->nrcpt; i++) {
		const struct rres *r = &ld->res[i];
		if (delay ? r->st == RS_DEFERRED : (r->st == RS_FAILED && !r->dsn_decided)) {
			dsn_rcpt_fill(ld, i, delay ? DSN_ACT_DELAYED : DSN_ACT_FAILED, &dr[k],
				      diag + (size_t)k * REPLY_TEXT_MAX, REPLY_TEXT_MAX, status[k]);
			k++;
		}
	}
	memcpy(envid, ld->envid, ld->envid_len);
	struct dsn_msg msg = {
		.sender = ld->env.sender,
		.envid = { envid, ld->envid_len },
		.ret = ld->env.ret,
		.smtputf8 = ld->env.smtputf8,
		.arrival = ld->env.received > 0 ? ld->env.received : 0,
		.client_helo = ld->env.helo,
		.client_addr = ld->env.client,
		.queue_id = qid_of(s, ld->m),
		.content = ld->content,
		.rcpt = dr,
		.nrcpt = n,
	};
	struct dsn_result res;
	uint8_t *out = NULL;
	uint64_t seed = rnd64(s);
	rc = dsn_build_alloc(&s->cfg.dsn, &msg, wall_now(s), seed, &out, &res);
	if (rc == -EINVAL && res.err != DSN_E_HOSTNAME && res.err != DSN_E_SENDER &&
	    res.err != DSN_E_RCPT_ADDR) {
		/*
		 * Something optional does not pass (an odd ORCPT or ENVID, a
		 * remote text): the bounce matters more than those fields.
		 */
		msg.envid = (struct smtp_str){ 0 };
		msg.client_helo = msg.client_addr = (struct smtp_str){ 0 };
		for (unsigned i = 0; i < n; i++) {
			dr[i].orcpt_type = dr[i].orcpt = (struct smtp_str){ 0 };
			dr[i].remote_mta = dr[i].diag = (struct smtp_str){ 0 };
		}
		rc = dsn_build_alloc(&s->cfg.dsn, &msg, wall_now(s), seed, &out, &res);
	}
	if (rc == 0 && res.none != DSN_SEND) {
		rc = 1;
		if (!delay)
			cnt(s, RELAY_DSN_SUPPRESSED);
	} else if (rc == 0) {
		rc = dsn_spool(ld, out, &res, delay);
		if (rc != 0)
			cnt(s, RELAY_DSN_ERRORS);
	} else {
		cnt(s, RELAY_DSN_ERRORS);
		relay_log_printf(&s->log, clock_now(s), "qid=%s status=dsn-error kind=%s error=%s field=%s",
				 qid_of(s, ld->m), delay ? "delay" : "failure", strerror(-rc),
				 res.err < DSN_E_MAX ? dsn_err_names[res.err] : "?");
		if (rc == -EINVAL)
			rc = 2; /* can never be made: the recipients fail without one */
	}
	free(out);
out:
	free(dr);
	free(diag);
	free(status);
	return rc;
}

/* ---- settling a message ------------------------------------------------------------------- */

static void msg_free(struct relay_sched *s, struct rmsg *m);

static void unload(struct rload *ld)
{
	struct relay_sched *s = ld->s;

	ld->m->ld = NULL;
	s->loaded--;
	s->loaded_bytes -= ld->cap;
	while (ld->arena != NULL) {
		struct achunk *c = ld->arena;
		ld->arena = c->next;
		free(c);
	}
	free(ld->buf);
	free(ld);
}

static void msg_maybe_free(struct relay_sched *s, struct rmsg *m)
{
	if (m->final && m->ld == NULL && m->dsn_pending == 0 && m->st == MS_SETTLING)
		msg_free(s, m);
}

static void settle_later(struct relay_sched *s, struct rmsg *m)
{
	if (!m->on_settle) {
		m->on_settle = true;
		TAILQ_INSERT_TAIL(&s->settle, m, sq);
	}
}

/*
 * Writes what is decided and not yet written; once all is, the message
 * ends (final) or waits for its next attempt.
 */
static void settle(struct rmsg *m)
{
	struct rload *ld = m->ld;
	struct relay_sched *s;
	bool waiting = false;

	if (ld == NULL)
		return;
	s = ld->s;
	m->st = MS_SETTLING;
	for (unsigned i = 0; i < ld->nrcpt; i++) {
		struct rres *r = &ld->res[i];

		if (r->st == RS_SKIP || r->st == RS_PENDING || r->written)
			continue;
		if (r->dsn_wait) {
			waiting = true;
			continue;
		}
		if (write_state(ld, i) == -ENOBUFS) {
			settle_later(s, m);
			return;
		}
	}
	if (m->on_settle) {
		TAILQ_REMOVE(&s->settle, m, sq);
		m->on_settle = false;
	}
	if (waiting)
		return; /* dsn_committed() settles again */
	int64_t next = ld->next;
	bool final = m->final;
	unload(ld);
	if (final) {
		cnt(s, m->had_failure ? RELAY_MSGS_BOUNCED : RELAY_MSGS_DELIVERED);
		msg_maybe_free(s, m);
		return;
	}
	m->next_at = next;
	m->st = MS_DEFERRED;
	heap_push(s, m);
}

/* Every job of the attempt is done: bounces, the delay warning, then settle. */
static void attempt_end(struct rload *ld)
{
	struct relay_sched *s = ld->s;
	struct rmsg *m = ld->m;
	bool deferred = false, expired = false, failed = false;

	ld->ended = true;
	for (unsigned i = 0; i < ld->nrcpt; i++) {
		const struct rres *r = &ld->res[i];
		deferred |= r->st == RS_DEFERRED;
		expired |= r->expired;
		failed |= r->st == RS_FAILED;
	}
	if (deferred)
		cnt(s, RELAY_MSGS_DEFERRED);
	if (expired)
		cnt(s, RELAY_MSGS_EXPIRED);
	if (failed) {
		int rc = dsn_make(ld, false);
		for (unsigned i = 0; i < ld->nrcpt; i++) {
			struct rres *r = &ld->res[i];
			if (r->st != RS_FAILED || r->dsn_decided)
				continue;
			if (rc == 0) { /* spooling: the state waits for it */
				r->dsn_decided = true;
				r->dsn_wait = true;
			} else if (rc > 0) { /* not owed, or impossible: fail without one */
				r->dsn_decided = true;
			} else { /* not now: the recipient is tried again, and its bounce */
				r->st = RS_DEFERRED;
				r->expired = false;
				ld->next = fallback_next(ld);
				ld->have_verdict = true;
				ld->verdict = RETRY_DEFER;
				deferred = true;
			}
		}
	}
	if (deferred && !m->warned &&
	    retry_warning_due(&s->cfg.retry, m->arrival, wall_now(s), m->warned)) {
		/* RFC 3464 §2.3.3 "delayed": once; not owed (NOTIFY, null sender): never */
		if (dsn_make(ld, true) > 0)
			m->warned = true;
	}
	settle(m);
}

/* ---- loading and planning ----------------------------------------------------------------- */

static int pair_cmp(const void *a, const void *b)
{
	const unsigned *x = a, *y = b;

	if (x[0] != y[0])
		return x[0] < y[0] ? -1 : 1;
	return x[1] < y[1] ? -1 : (x[1] > y[1]);
}

/* ORCPT as stored ("type;xtext") into the decoded form the client and DSNs want. */
static void orcpt_split(struct rload *ld, const struct smtp_rcpt *rc, struct rres *r)
{
	const uint8_t *semi = rc->orcpt.len ? memchr(rc->orcpt.p, ';', rc->orcpt.len) : NULL;

	if (semi == NULL)
		return;
	size_t tl = (size_t)(semi - rc->orcpt.p), xl = rc->orcpt.len - tl - 1;
	uint8_t *d = arena_alloc(ld, xl + 1);
	if (d == NULL)
		return;
	ssize_t n = smtp_xtext_decode(semi + 1, xl, d, xl + 1);
	if (n <= 0)
		return; /* not xtext: the ORCPT is left out rather than sent wrong */
	r->orcpt_type = (struct smtp_str){ rc->orcpt.p, tl };
	r->orcpt = (struct smtp_str){ d, (size_t)n };
}

/* Recipients grouped by route into jobs; unroutable ones fail (5.4.4). Returns -ENOMEM or 0. */
static int plan(struct rload *ld)
{
	struct relay_sched *s = ld->s;
	const struct cfg_routes *routes = s->cfg.routes;
	unsigned (*pairs)[2] = malloc((size_t)ld->nrcpt * sizeof(*pairs));
	unsigned np = 0;

	if (pairs == NULL)
		return -ENOMEM;
	for (unsigned i = 0; i < ld->nrcpt; i++) {
		const struct smtp_rcpt *rc = &ld->rcpts[i];
		struct rres *r = &ld->res[i];
		struct route rt;

		r->hop = NO_HOP;
		if (s->cfg.store->rcpt_final(s->cfg.store_arg, ld->m->sm, i)) {
			r->st = RS_SKIP;
			continue;
		}
		r->st = RS_PENDING;
		ld->nonfinal++;
		orcpt_split(ld, rc, r);
		const uint8_t *at = NULL;
		for (size_t k = rc->addr.len; k > 0; k--)
			if (rc->addr.p[k - 1] == '@') {
				at = rc->addr.p + k;
				break;
			}
		size_t dl = at ? rc->addr.len - (size_t)(at - rc->addr.p) : 0;
		if (route_lookup(routes, at ? (const char *)at : "", dl, &rt) != 0) {
			static const char t[] = "no route to the recipient's domain";
			cnt(s, RELAY_RCPTS_UNROUTABLE);
			rcpt_decide(ld, i, SMTP_CO_FAILED, 0, "5.4.4", t, sizeof(t) - 1, NO_HOP);
			continue;
		}
		pairs[np][0] = rt.entry ? (unsigned)(rt.entry - routes->domains) : routes->n_domains;
		pairs[np][1] = i;
		np++;
	}
	qsort(pairs, np, sizeof(*pairs), pair_cmp);
	unsigned nj = 0;
	for (unsigned k = 0; k < np; k++) {
		ld->idx[k] = pairs[k][1];
		bool fresh = k == 0 || pairs[k][0] != pairs[k - 1][0] ||
			     ld->jobs[nj - 1].n == s->cfg.max_rcpts;
		if (fresh) {
			struct rjob *j = &ld->jobs[nj++];
			const struct cfg_next_hop *hops;
			unsigned nh;
			unsigned e = pairs[k][0];

			if (e < routes->n_domains) {
				hops = routes->domains[e].hops;
				nh = routes->domains[e].n_hops;
			} else {
				hops = routes->smarthost;
				nh = routes->n_smarthost;
			}
			struct route rt = { .hops = hops, .n_hops = nh };
			unsigned order[CFG_MAX_NEXT_HOPS];
			route_order(&rt, rnd64(s), order);
			*j = (struct rjob){ .ld = ld, .first = k, .n_order = nh };
			for (unsigned h = 0; h < nh; h++)
				j->order[h] = s->route_hops[e][order[h]];
		}
		ld->jobs[nj - 1].n++;
	}
	free(pairs);
	ld->njobs = ld->jobs_open = nj;
	return 0;
}

static bool has_8bit(struct smtp_str c)
{
	for (size_t i = 0; i < c.len; i++)
		if (c.p[i] & 0x80)
			return true;
	return false;
}

/* Estimated failures so far of a message found deferred (after a restart): intervals in its age. */
static unsigned failures_for_age(const struct retry_config *rc, int64_t age)
{
	unsigned n = 0;
	int64_t t = 0;

	while (n < 100000) {
		uint32_t i = retry_interval(rc, n + 1);
		if (t + i > age)
			break;
		t += i;
		n++;
	}
	return n ? n : 1;
}

static void read_failed(struct relay_sched *s, struct rmsg *m, int err);

/* The record of LD's message is in its buffer: decode, plan, start the jobs. */
static void read_done(void *cookie, int status, const uint8_t *payload, size_t len)
{
	struct rload *ld = cookie;
	struct relay_sched *s = ld->s;
	struct rmsg *m = ld->m;
	enum spool_rec_err e;

	s->reading--;
	if (s->closing) {
		unload(ld);
		return;
	}
	if (status != 0) {
		unload(ld);
		read_failed(s, m, status);
		return;
	}
	cnt(s, RELAY_READS);
	e = spool_rec_decode_msg(payload, len, &ld->env, ld->rcpts, ld->nrcpt, &ld->content);
	if (e != SPOOL_RE_OK || ld->env.nrcpt != ld->nrcpt) {
		unload(ld);
		read_failed(s, m, -EBADMSG);
		return;
	}
	m->arrival = ld->env.received;
	note_load(m, ld);
	if (m->failures == 0 && s->cfg.store->next_attempt(s->cfg.store_arg, m->sm) != 0)
		m->failures = failures_for_age(&s->cfg.retry, wall_now(s) - m->arrival);
	ld->attempt = m->failures + 1;
	ld->eightbit = has_8bit(ld->content);
	if (ld->env.envid.len) {
		ssize_t n = smtp_xtext_decode(ld->env.envid.p, ld->env.envid.len, ld->envid,
					      sizeof(ld->envid));
		ld->envid_len = n > 0 ? (size_t)n : 0;
	}
	m->st = MS_ACTIVE;
	if (!m->logged) {
		char from[2 * SMTP_PATH_MAX];
		m->logged = true;
		relay_log_printf(&s->log, clock_now(s),
				 "qid=%s status=queued from=<%s> nrcpt=%u size=%zu", qid_of(s, m),
				 relay_log_quote(from, sizeof(from), ld->env.sender.p,
						 ld->env.sender.len, false),
				 ld->nrcpt, ld->content.len);
	}
	ld->hold++;
	if (plan(ld) != 0) {
		ld->hold--;
		for (unsigned i = 0; i < ld->nrcpt; i++)
			ld->res[i].st = RS_SKIP; /* nothing decided: nothing to write */
		ld->nonfinal = 1;
		ld->next = wall_now(s) + 1;
		ld->ended = true;
		settle(m);
		return;
	}
	for (unsigned k = 0; k < ld->njobs; k++)
		job_start(&ld->jobs[k]);
	ld->hold--;
	ld_check_end(ld);
}


/*
 * M's record could not be read or decoded (ERR). Its recipients cannot be
 * told apart or bounced without it: the read is retried on the retry
 * schedule, counted from the arrival time in its queue id; past the
 * lifetime its recipients fail without a DSN (there is no sender to send
 * one to).
 */
static void read_failed(struct relay_sched *s, struct rmsg *m, int err)
{
	static const char expired[] = "4.4.7 delivery time expired; the spooled record is unreadable";
	const char *qid = qid_of(s, m);
	int64_t now = wall_now(s), next = now;

	cnt(s, RELAY_READ_ERRORS);
	if (m->arrival == 0)
		m->arrival = qid_time(qid) ? qid_time(qid) : now;
	m->failures++;
	if (retry_after_failure(&s->cfg.retry, m->arrival, now, m->failures, (uint32_t)rnd64(s),
				&next) == RETRY_DEFER) {
		relay_log_printf(&s->log, clock_now(s),
				 "qid=%s status=deferred reply=\"4.3.0 spool record unreadable: %s\"",
				 qid, strerror(-err));
		m->next_at = next;
		m->st = MS_DEFERRED;
		heap_push(s, m);
		return;
	}
	unsigned n = s->cfg.store->nrcpt(s->cfg.store_arg, m->sm), left = 0;
	for (unsigned i = 0; i < n; i++)
		left += !s->cfg.store->rcpt_final(s->cfg.store_arg, m->sm, i);
	relay_log_printf(&s->log, clock_now(s),
			 "qid=%s status=bounced(expired) nrcpt=%u reply=\"%s\" dsn=none", qid, left,
			 expired);
	for (unsigned i = 0; i < n && left > 0; i++) {
		if (s->cfg.store->rcpt_final(s->cfg.store_arg, m->sm, i))
			continue;
		int rc = s->cfg.store->state(s->cfg.store_arg, m->sm, i, SPOOL_RCPT_FAILED, now, 0,
					     (struct smtp_str){ (const uint8_t *)expired,
								sizeof(expired) - 1 });
		if (rc == -ENOBUFS) {
			/* the rest in a second: the verdict stays "expired" */
			cnt(s, RELAY_STATE_RETRIES);
			m->next_at = now + 1;
			m->st = MS_DEFERRED;
			heap_push(s, m);
			return;
		}
		if (rc != 0)
			cnt(s, RELAY_STATE_ERRORS);
		cnt(s, RELAY_RCPTS_EXPIRED);
		left--;
	}
	cnt(s, RELAY_MSGS_EXPIRED);
	cnt(s, RELAY_MSGS_BOUNCED);
	m->final = true;
	m->sm = NULL;
	m->st = MS_SETTLING;
	msg_maybe_free(s, m);
}

/* ---- messages ----------------------------------------------------------------------------- */

static void msg_free(struct relay_sched *s, struct rmsg *m)
{
	free(m->note);
	m->note = NULL;
	m->st = MS_FREE;
	m->sm = NULL;
	TAILQ_INSERT_HEAD(&s->free_msgs, m, q);
	s->tracked--;
}

static void ready_push(struct relay_sched *s, struct rmsg *m)
{
	m->st = MS_READY;
	TAILQ_INSERT_TAIL(&s->ready, m, q);
	s->nready++;
}

/* SM gets a tracking slot (one is free): due now, or at the deferral the spool recorded. */
static void track_now(struct relay_sched *s, struct spool_msg *sm)
{
	struct rmsg *m = TAILQ_FIRST(&s->free_msgs);
	int64_t now = wall_now(s);

	TAILQ_REMOVE(&s->free_msgs, m, q);
	memset(m, 0, offsetof(struct rmsg, q));
	m->sm = sm;
	s->tracked++;
	snprintf(m->qid, sizeof(m->qid), "%s", s->cfg.store->queue_id(s->cfg.store_arg, sm));
	m->arrival = qid_time(m->qid);
	/*
	 * Whether a delay warning went out before a restart is not in the
	 * spool: a message found already past its warning time counts as
	 * warned. A restart may cost a warning, never send a second one.
	 */
	m->warned = m->arrival != 0 && retry_warning_time(&s->cfg.retry, m->arrival) <= now;
	int64_t next = s->cfg.store->next_attempt(s->cfg.store_arg, sm);
	if (next > now) {
		m->next_at = next;
		m->st = MS_DEFERRED;
		heap_push(s, m);
	} else {
		ready_push(s, m);
	}
}

static void msg_track(struct relay_sched *s, struct spool_msg *sm)
{
	cnt(s, RELAY_MSGS_QUEUED);
	if (s->ovf_n == 0 && !TAILQ_EMPTY(&s->free_msgs)) {
		track_now(s, sm);
		return;
	}
	if (s->ovf_n == s->ovf_cap) {
		/* still in the spool: the next start's recovery hands it over again */
		cnt(s, RELAY_OVERFLOW_LOST);
		return;
	}
	cnt(s, RELAY_OVERFLOWED);
	s->ovf[(s->ovf_head + s->ovf_n++) % s->ovf_cap] = sm;
}

/* Starts reading M back. Returns 0, or -EBUSY / -ENOMEM when nothing more can load now. */
static int start_read(struct relay_sched *s, struct rmsg *m)
{
	unsigned n = s->cfg.store->nrcpt(s->cfg.store_arg, m->sm);
	size_t size = s->cfg.store->record_size(s->cfg.store_arg, m->sm);
	size_t hdr = sizeof(struct rload);
	size_t arrays = (size_t)n * (sizeof(struct smtp_rcpt) + sizeof(struct rres) +
				     sizeof(unsigned) + sizeof(struct rjob));
	struct rload *ld = calloc(1, hdr + arrays + 16);
	uint8_t *buf = malloc(size ? size : 1);

	if (ld == NULL || buf == NULL) {
		free(ld);
		free(buf);
		return -ENOMEM;
	}
	uint8_t *p = (uint8_t *)(ld + 1);
	ld->jobs = (struct rjob *)p;
	p += (size_t)n * sizeof(struct rjob);
	ld->rcpts = (struct smtp_rcpt *)p;
	p += (size_t)n * sizeof(struct smtp_rcpt);
	ld->res = (struct rres *)p;
	p += (size_t)n * sizeof(struct rres);
	ld->idx = (unsigned *)p;
	ld->s = s;
	ld->m = m;
	ld->buf = buf;
	ld->cap = size;
	ld->nrcpt = n;
	TAILQ_REMOVE(&s->ready, m, q);
	s->nready--;
	m->ld = ld;
	s->loaded++;
	s->loaded_bytes += size;
	int rc = s->cfg.store->read(s->cfg.store_arg, m->sm, buf, size, read_done, ld);
	if (rc == -EBUSY) {
		unload(ld);
		TAILQ_INSERT_HEAD(&s->ready, m, q);
		s->nready++;
		cnt(s, RELAY_READ_BUSY);
		return rc;
	}
	if (rc != 0) {
		unload(ld);
		read_failed(s, m, rc);
		return 0;
	}
	m->st = MS_READING;
	s->reading++;
	return 0;
}

/* ---- the transport's side ----------------------------------------------------------------- */

void relay_conn_connected(struct relay_conn *c, int err)
{
	struct relay_sched *s = c->s;
	char why[WHY_MAX];

	if (c->st != CS_CONNECTING)
		return;
	timer_cancel(s->cfg.wheel, &c->timer);
	if (err != 0) {
		snprintf(why, sizeof(why), "%s: connect: %s", c->hop->name, strerror(-err));
		conn_fail(c, why);
		return;
	}
	/* the hop's TLS policy; a "may" hop whose handshake failed goes in the clear a while */
	const struct smtp_client_config *ccfg =
		c->hop->tls == CFG_HOP_TLS_ENCRYPT			      ? &s->ccfg_encrypt :
		c->hop->tls == CFG_HOP_TLS_MAY && now_ms(s) >= c->hop->tls_plain_until ? &s->ccfg_may :
											   &s->ccfg;
	c->tls_gen = c->hop->tls_gen;
	c->cli = smtp_client_init(c->mem, ccfg, &s->cctx, 0, now_ms(s));
	if (c->cli == NULL) {
		snprintf(why, sizeof(why), "%s: no SMTP session", c->hop->name);
		conn_fail(c, why);
		return;
	}
	smtp_client_set_udata(c->cli, c);
	conn_set_state(c, CS_HANDSHAKE);
	conn_run(c);
}

/* How long a "may" hop whose TLS handshake failed is sent mail in the clear (ms). */
#define TLS_PLAIN_MS 600000

void relay_conn_tls_done(struct relay_conn *c, bool ok)
{
	struct relay_sched *s = c->s;

	if (c->st == CS_FREE || c->cli == NULL || !c->tls_wait)
		return;
	c->tls_wait = false;
	/* Postfix's "may": a failed handshake is retried in the clear (10 minutes) */
	if (!ok && c->hop->tls == CFG_HOP_TLS_MAY) {
		c->hop->tls_plain_until = now_ms(s) + TLS_PLAIN_MS;
		c->tls_failed = true;
	}
	smtp_client_tls_done(c->cli, ok, now_ms(s));
	conn_run(c);
}

void relay_conn_input(struct relay_conn *c, const uint8_t *p, size_t n)
{
	if (c->st == CS_FREE || c->cli == NULL)
		return;
	smtp_client_input(c->cli, p, n, now_ms(c->s));
	conn_run(c);
}

void relay_conn_writable(struct relay_conn *c)
{
	if (c->st == CS_FREE || c->cli == NULL)
		return;
	c->blocked = false;
	conn_run(c);
}

void relay_conn_lost(struct relay_conn *c, int err)
{
	if (c->st == CS_FREE)
		return;
	if (c->st == CS_CONNECTING) {
		relay_conn_connected(c, err != 0 ? err : -ECONNRESET);
		return;
	}
	c->blocked = false;
	if (c->tls_wait) {
		/* the hop went away mid-handshake: for "may" as much a failed handshake
		 * as an alert is, so its next sessions go in the clear (as in tls_done) */
		c->tls_wait = false;
		if (c->hop->tls == CFG_HOP_TLS_MAY) {
			c->hop->tls_plain_until = now_ms(c->s) + TLS_PLAIN_MS;
			c->tls_failed = true;
		}
	}
	smtp_client_lost(c->cli, now_ms(c->s));
	conn_run(c);
}

void relay_conn_set_udata(struct relay_conn *c, void *udata)
{
	c->udata = udata;
}

void *relay_conn_udata(const struct relay_conn *c)
{
	return c->udata;
}

/* ---- the API ------------------------------------------------------------------------------ */

void relay_sched_config_default(struct relay_sched_config *c)
{
	c->max_loaded = 32;
	c->load_budget = 64u << 20;
	c->max_conns = 1024;
	c->max_rcpts = 50;
	c->hop_down_s = 60;
	c->max_dsn_pending = 256;
	c->log_per_sec = 1000;
	c->overflow_max = 262144;
}

/*
 * The hop table for routes R: each route's hops as ids into s->hops, which
 * keeps the hops it has (by address and port: a connection, a waiting job
 * or an attempt in progress may point at one) and gains the new ones.
 * Hops R no longer names stay, unused by later attempts, until the engine
 * is freed. All or nothing: on failure nothing changed (-ENOMEM, -E2BIG
 * past NO_HOP hops in one run).
 */
static int set_routes(struct relay_sched *s, const struct cfg_routes *r)
{
	unsigned nroutes = r->n_domains + 1, n0 = s->nhops;
	unsigned max = n0 + nroutes * CFG_MAX_NEXT_HOPS, size = 16;
	uint16_t(*rh)[CFG_MAX_NEXT_HOPS];
	uint32_t *tab;
	uint8_t *named;
	struct hop_tls {
		uint8_t tls;
		char name[CFG_TLS_NAME_MAX];
	} *prev;
	int rc = 0;

	while (size < 2 * max)
		size *= 2;
	if (max > s->hops_cap) {
		/* an array of pointers: the hops themselves stay where they are */
		struct rhop **nh = realloc(s->hops, max * sizeof(*nh));

		if (nh == NULL)
			return -ENOMEM;
		s->hops = nh;
		s->hops_cap = max;
	}
	rh = calloc(nroutes, sizeof(*rh));
	tab = malloc(size * sizeof(*tab));
	named = calloc(max, 1);
	prev = calloc(max, sizeof(*prev));
	if (rh == NULL || tab == NULL || named == NULL || prev == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	memset(tab, 0xff, size * sizeof(*tab));
#define HOP_SLOT(addr, port)                                                                      \
	((unsigned)((((uint64_t)(addr) << 16 | (port)) * 0x9e3779b97f4a7c15ull) >> 40) & (size - 1))
	for (unsigned id = 0; id < n0; id++) {
		unsigned i = HOP_SLOT(s->hops[id]->addr, s->hops[id]->port);

		while (tab[i] != UINT32_MAX)
			i = (i + 1) & (size - 1);
		tab[i] = id;
	}
	for (unsigned e = 0; e < nroutes; e++) {
		bool dom = e < r->n_domains;
		const struct cfg_next_hop *hops = dom ? r->domains[e].hops : r->smarthost;
		unsigned n = dom ? r->domains[e].n_hops : r->n_smarthost;

		for (unsigned k = 0; k < n && k < CFG_MAX_NEXT_HOPS; k++) {
			unsigned i = HOP_SLOT(hops[k].addr, hops[k].port);

			while (tab[i] != UINT32_MAX && !(s->hops[tab[i]]->addr == hops[k].addr &&
							 s->hops[tab[i]]->port == hops[k].port))
				i = (i + 1) & (size - 1);
			if (tab[i] == UINT32_MAX) {
				struct rhop *h;
				const uint8_t *a = (const uint8_t *)&hops[k].addr;

				if (s->nhops >= NO_HOP) {
					rc = -E2BIG;
					goto out;
				}
				h = calloc(1, sizeof(*h));
				if (h == NULL) {
					rc = -ENOMEM;
					goto out;
				}
				tab[i] = s->nhops;
				s->hops[s->nhops] = h;
				h->id = (uint16_t)s->nhops++;
				h->addr = hops[k].addr;
				h->port = hops[k].port;
				h->st.addr = h->addr;
				h->st.port = h->port;
				snprintf(h->name, sizeof(h->name), "[%u.%u.%u.%u]:%u", a[0], a[1], a[2],
					 a[3], h->port);
				hop_pool_init(&h->pool);
				TAILQ_INIT(&h->wait);
			}
			rh[e][k] = (uint16_t)tab[i];
		}
	}
#undef HOP_SLOT
	/* committed: a hop R names takes the strictest TLS policy of R's routes naming it */
	for (unsigned e = 0; e < nroutes; e++) {
		bool dom = e < r->n_domains;
		const struct cfg_next_hop *hops = dom ? r->domains[e].hops : r->smarthost;
		unsigned n = dom ? r->domains[e].n_hops : r->n_smarthost;

		for (unsigned k = 0; k < n && k < CFG_MAX_NEXT_HOPS; k++) {
			struct rhop *th = s->hops[rh[e][k]];

			if (!named[th->id]) {
				named[th->id] = 1;
				prev[th->id].tls = th->tls;
				memcpy(prev[th->id].name, th->tls_name, sizeof(th->tls_name));
				th->tls = CFG_HOP_TLS_NONE;
				th->tls_name[0] = '\0';
			}
			if (hops[k].tls > th->tls || (hops[k].tls == th->tls && !th->tls_name[0])) {
				th->tls = hops[k].tls;
				snprintf(th->tls_name, sizeof(th->tls_name), "%s", hops[k].tls_name);
			}
		}
	}
	for (unsigned id = 0; id < s->nhops; id++) /* connections under the old policy retire */
		if (named[id] && id < n0 &&
		    (prev[id].tls != s->hops[id]->tls ||
		     strcmp(prev[id].name, s->hops[id]->tls_name) != 0))
			s->hops[id]->tls_gen++;
	free(s->route_hops);
	s->route_hops = rh;
	s->nroutes = nroutes;
	s->cfg.routes = r;
	rh = NULL;
out:
	if (rc != 0)
		while (s->nhops > n0) /* the hops made for R: nothing points at them yet */
			free(s->hops[--s->nhops]);
	free(rh);
	free(tab);
	free(named);
	free(prev);
	return rc;
}

int relay_sched_set_routes(struct relay_sched *s, const struct cfg_routes *routes)
{
	int rc;

	if (s == NULL || routes == NULL)
		return -EINVAL;
	if (s->closing)
		return -ESHUTDOWN;
	rc = set_routes(s, routes);
	if (rc == 0)
		relay_log_printf(&s->log, clock_now(s),
				 "routes set: %u domain routes, %u next hops known",
				 routes->n_domains, s->nhops);
	return rc;
}

struct relay_sched *relay_sched_new(const struct relay_sched_config *cfg)
{
	struct relay_sched *s;
	int err = EINVAL;

	if (cfg == NULL || cfg->routes == NULL || cfg->relay == NULL || cfg->store == NULL ||
	    cfg->transport == NULL || cfg->wheel == NULL || cfg->clock == NULL ||
	    cfg->helo_name == NULL || cfg->relay->queue_max == 0 || cfg->max_rcpts == 0 ||
	    cfg->max_rcpts > 1000 || cfg->max_loaded == 0 || cfg->max_conns == 0 ||
	    cfg->relay->connections_per_hop == 0 || cfg->relay->messages_per_connection == 0 ||
	    cfg->wheel->hz < 1000 || retry_config_validate(&cfg->retry, NULL) != 0) {
		errno = EINVAL;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->cfg = *cfg;
	s->rc = cfg->relay;
	s->hz = cfg->wheel->hz;
	s->ms_div = s->hz / 1000;
	s->rnd = cfg->seed;
	smtp_qid_init(&s->qid, QID_WORKER_BASE | cfg->worker_id, cfg->qid_nonce);
	TAILQ_INIT(&s->free_msgs);
	TAILQ_INIT(&s->ready);
	TAILQ_INIT(&s->settle);
	TAILQ_INIT(&s->conns_all);
	TAILQ_INIT(&s->conns_free);
	TAILQ_INIT(&s->conns_nomem);
	TAILQ_INIT(&s->starved);
	TAILQ_INIT(&s->idle_all);

	/* the client profile: RFC 5321 §4.5.3.2 timeouts, the config's extensions */
	smtp_client_config_default(&s->ccfg);
	s->ccfg.helo_name = cfg->helo_name;
	s->ccfg.pipelining = cfg->relay->pipelining;
	s->ccfg.chunking = cfg->relay->chunking;
	s->ccfg.send_8bit = cfg->relay->send_8bit;
	if (cfg->relay->command_timeout_s) { /* 0: the engine's, RFC 5321's minimums */
		uint32_t ms = cfg->relay->command_timeout_s * 1000u;

		s->ccfg.timeout_ms.greeting = s->ccfg.timeout_ms.command = ms;
		s->ccfg.timeout_ms.mail = s->ccfg.timeout_ms.rcpt = ms;
		if (s->ccfg.timeout_ms.data_init > ms) /* §4.5.3.2.3: 2 minutes at most */
			s->ccfg.timeout_ms.data_init = ms;
	}
	if (cfg->relay->data_block_timeout_s)
		s->ccfg.timeout_ms.data_block = cfg->relay->data_block_timeout_s * 1000u;
	if (cfg->relay->data_end_timeout_s)
		s->ccfg.timeout_ms.data_term = cfg->relay->data_end_timeout_s * 1000u;
	s->ccfg.max_rcpts = cfg->max_rcpts;
	s->ccfg.envelope_size = cfg->max_rcpts * ENV_PER_RCPT + ENV_MAIL;
	s->ccfg.output_size = s->ccfg.envelope_size + 16384;
	s->cops = (struct smtp_client_ops){ .rcpt_done = on_rcpt_done, .tx_done = on_tx_done };
	s->ccfg.ops = &s->cops;
	s->ccfg.ops_arg = s;
	s->ccfg_may = s->ccfg;
	s->ccfg_may.tls = SMTP_CLIENT_TLS_MAY;
	s->ccfg_encrypt = s->ccfg;
	s->ccfg_encrypt.tls = SMTP_CLIENT_TLS_ENCRYPT;
	struct smtp_client *probe = smtp_client_new(&s->ccfg, &s->cctx, 0, 0);
	if (probe == NULL)
		goto fail; /* a helo_name the engine refuses */
	smtp_client_free(probe);
	memset(&s->cctx, 0, sizeof(s->cctx));
	s->conn_size = (offsetof(struct relay_conn, mem) + smtp_client_size(&s->ccfg) + 15) &
		       ~(size_t)15;

	err = ENOMEM;
	s->nmsgs = cfg->relay->queue_max;
	s->msgs = calloc(s->nmsgs, sizeof(*s->msgs));
	s->heap = calloc(s->nmsgs, sizeof(*s->heap));
	s->ovf_cap = cfg->overflow_max;
	s->ovf = s->ovf_cap ? calloc(s->ovf_cap, sizeof(*s->ovf)) : NULL;
	s->dsns = calloc(cfg->max_dsn_pending ? cfg->max_dsn_pending : 1, sizeof(*s->dsns));
	s->scratch = calloc(cfg->max_rcpts, sizeof(*s->scratch));
	if (s->msgs == NULL || s->heap == NULL || (s->ovf_cap && s->ovf == NULL) ||
	    s->dsns == NULL || s->scratch == NULL)
		goto fail;
	for (unsigned i = s->nmsgs; i-- > 0;)
		TAILQ_INSERT_HEAD(&s->free_msgs, &s->msgs[i], q);
	for (unsigned i = cfg->max_dsn_pending; i-- > 0;) {
		s->dsns[i].next_free = s->dsn_free;
		s->dsn_free = &s->dsns[i];
	}
	int rc = set_routes(s, cfg->routes);
	if (rc != 0) {
		err = -rc;
		goto fail;
	}
	char prefix[32];
	snprintf(prefix, sizeof(prefix), "mxgate relay[%u]: ", cfg->worker_id);
	relay_log_init(&s->log, cfg->log_per_sec, s->hz, cfg->clock(cfg->clock_arg), prefix,
		       cfg->log_write, cfg->log_arg);
	return s;
fail:
	relay_sched_free(s);
	errno = err;
	return NULL;
}

void relay_sched_free(struct relay_sched *s)
{
	struct relay_conn *c;

	if (s == NULL)
		return;
	s->closing = true;
	TAILQ_FOREACH(c, &s->conns_all, all)
		if (c->st != CS_FREE)
			conn_release(c); /* aborts: closing */
	if (s->reading > 0 && s->cfg.store->drain != NULL)
		s->cfg.store->drain(s->cfg.store_arg);
	for (unsigned i = 0; s->dsns && i < s->cfg.max_dsn_pending; i++)
		if (s->dsns[i].used && s->dsns[i].tx != NULL && s->cfg.store->detach != NULL)
			s->cfg.store->detach(s->cfg.store_arg, s->dsns[i].tx);
	for (unsigned i = 0; s->msgs && i < s->nmsgs; i++) {
		if (s->msgs[i].ld != NULL && s->msgs[i].st != MS_READING)
			unload(s->msgs[i].ld);
		free(s->msgs[i].note);
	}
	while ((c = TAILQ_FIRST(&s->conns_all)) != NULL) {
		TAILQ_REMOVE(&s->conns_all, c, all);
		free(c);
	}
	free(s->msgs);
	free(s->heap);
	free(s->ovf);
	free(s->dsns);
	free(s->scratch);
	for (unsigned i = 0; s->hops && i < s->nhops; i++)
		free(s->hops[i]);
	free(s->hops);
	free(s->route_hops);
	free(s);
}

void relay_sched_submit(struct relay_sched *s, struct spool_msg *m)
{
	if (s->closing || m == NULL)
		return;
	msg_track(s, m);
}

static void refresh_gauges(struct relay_sched *s)
{
	gauge(s, RELAY_Q_TRACKED, s->tracked);
	gauge(s, RELAY_Q_READY, s->nready);
	gauge(s, RELAY_Q_DEFERRED, s->nheap);
	gauge(s, RELAY_Q_OVERFLOW, s->ovf_n);
	gauge(s, RELAY_LOADED, s->loaded);
	gauge(s, RELAY_LOADED_BYTES, s->loaded_bytes);
	gauge(s, RELAY_LOG_LINES, s->log.lines);
	gauge(s, RELAY_LOG_DROPPED, s->log.dropped);
	gauge(s, RELAY_CONNS_IDLE, s->nidle);
	gauge(s, RELAY_CONNS_ACTIVE, s->nconns - s->nidle);
}

unsigned relay_sched_poll(struct relay_sched *s)
{
	unsigned work = 0;
	int64_t wall = wall_now(s);

	if (s->closing)
		return 0;
	/* retries that are due */
	for (unsigned k = 0; k < HEAP_PER_POLL && s->nheap > 0 && s->heap[0]->next_at <= wall; k++) {
		ready_push(s, heap_pop(s));
		work++;
	}
	/* overflow into tracking slots freed since */
	for (unsigned k = 0; k < HEAP_PER_POLL && s->ovf_n > 0 && !TAILQ_EMPTY(&s->free_msgs); k++) {
		struct spool_msg *sm = s->ovf[s->ovf_head];

		s->ovf_head = (s->ovf_head + 1) % s->ovf_cap;
		s->ovf_n--;
		track_now(s, sm);
		work++;
	}
	/* reads, within the slots and the budget (one message over the budget loads alone) */
	while (!TAILQ_EMPTY(&s->ready) && s->loaded < s->cfg.max_loaded) {
		struct rmsg *m = TAILQ_FIRST(&s->ready);
		size_t size = s->cfg.store->record_size(s->cfg.store_arg, m->sm);

		if (s->loaded > 0 && s->loaded_bytes + size > s->cfg.load_budget)
			break;
		if (start_read(s, m) != 0)
			break;
		work++;
	}
	/* hops that waited for the engine-wide cap, while there is room under it */
	struct rhop *h;
	while (s->nconns < s->cfg.max_conns && (h = TAILQ_FIRST(&s->starved)) != NULL) {
		TAILQ_REMOVE(&s->starved, h, sl);
		h->starved = false;
		s->nstarved--;
		hop_dispatch(h);
		work++;
	}
	/* output that found no buffers, state records that found no staging */
	if (!TAILQ_EMPTY(&s->conns_nomem)) {
		struct rconn_q q = TAILQ_HEAD_INITIALIZER(q);
		struct relay_conn *c;

		TAILQ_CONCAT(&q, &s->conns_nomem, nl);
		while ((c = TAILQ_FIRST(&q)) != NULL) {
			TAILQ_REMOVE(&q, c, nl);
			c->nomem = false;
			conn_run(c);
			work++;
		}
	}
	if (!TAILQ_EMPTY(&s->settle)) {
		struct rmsg_q q = TAILQ_HEAD_INITIALIZER(q);
		struct rmsg *m;

		TAILQ_CONCAT(&q, &s->settle, sq);
		TAILQ_FOREACH(m, &q, sq)
			m->on_settle = false;
		while ((m = TAILQ_FIRST(&q)) != NULL) {
			TAILQ_REMOVE(&q, m, sq);
			settle(m);
			work++;
		}
	}
	refresh_gauges(s);
	return work;
}

bool relay_sched_congested(const struct relay_sched *s)
{
	return s->tracked + s->ovf_n >= s->rc->queue_max;
}

const struct relay_stats *relay_sched_stats(const struct relay_sched *s)
{
	return &s->st;
}

const struct smtp_client_stats *relay_sched_client_stats(const struct relay_sched *s)
{
	return &s->cctx.stats;
}

unsigned relay_sched_n_hops(const struct relay_sched *s)
{
	return s->nhops;
}

const struct relay_hop_stats *relay_sched_hop_stats(const struct relay_sched *s, unsigned i)
{
	return i < s->nhops ? &s->hops[i]->st : NULL;
}

/* ---- the operator's view of the queue (relay_admin.h) ------------------------------------- */

#include "dataplane/relay/relay_admin.h"

const char *const relay_qstate_names[RELAY_Q_STATE_MAX] = {
	[RELAY_Q_STATE_READY] = "ready",       [RELAY_Q_STATE_DELIVERING] = "delivering",
	[RELAY_Q_STATE_SETTLING] = "settling", [RELAY_Q_STATE_DEFERRED] = "deferred",
	[RELAY_Q_STATE_HELD] = "held",	       [RELAY_Q_STATE_WAITING] = "waiting",
};

/* Per recipient: its latest outcome in this run. */
struct rnote_rcpt {
	uint8_t st; /* enum rcpt_st: RS_SKIP (none yet), DELIVERED, DEFERRED, FAILED */
	uint16_t code;
	char *addr;
	char reply[RELAY_NOTE_REPLY_MAX];
};

/* What a read back taught about a message; made at its first read in this run. */
struct rnote {
	unsigned nrcpt;
	char sender[RELAY_NOTE_ADDR_MAX];
	char last[RELAY_NOTE_REPLY_MAX]; /* the latest deferral's reply */
	struct rnote_rcpt r[];		 /* then the addresses */
};

/* Printable ASCII only, cut to CAP - 1: the note ends up in telemetry's JSON strings. */
static void note_copy(char *out, size_t cap, const void *p, size_t n)
{
	const uint8_t *b = p;
	size_t k = 0;

	for (size_t i = 0; i < n && k + 1 < cap; i++)
		out[k++] = b[i] >= 0x20 && b[i] < 0x7f && b[i] != '"' && b[i] != '\\' ? (char)b[i] :
										      '?';
	out[k] = '\0';
}

static size_t note_len(size_t n)
{
	return n < RELAY_NOTE_ADDR_MAX - 1 ? n : RELAY_NOTE_ADDR_MAX - 1;
}

static void note_load(struct rmsg *m, const struct rload *ld)
{
	size_t addrs = 0;

	if (m->note != NULL && m->note->nrcpt == ld->nrcpt)
		return; /* a retry: the outcomes so far stay */
	free(m->note);
	for (unsigned i = 0; i < ld->nrcpt; i++)
		addrs += note_len(ld->rcpts[i].addr.len) + 1;
	m->note = calloc(1, sizeof(*m->note) + ld->nrcpt * sizeof(m->note->r[0]) + addrs);
	if (m->note == NULL)
		return; /* the listing shows the envelope as unknown: nothing else depends on it */
	m->note->nrcpt = ld->nrcpt;
	note_copy(m->note->sender, sizeof(m->note->sender), ld->env.sender.p, ld->env.sender.len);
	char *a = (char *)&m->note->r[ld->nrcpt];
	for (unsigned i = 0; i < ld->nrcpt; i++) {
		size_t n = note_len(ld->rcpts[i].addr.len) + 1;

		note_copy(a, n, ld->rcpts[i].addr.p, ld->rcpts[i].addr.len);
		m->note->r[i].addr = a;
		a += n;
	}
}

static void note_outcome(const struct rload *ld, unsigned ri, const char *line, size_t n)
{
	struct rnote *nt = ld->m->note;
	const struct rres *r = &ld->res[ri];

	if (nt == NULL || ri >= nt->nrcpt)
		return;
	nt->r[ri].st = r->st;
	nt->r[ri].code = r->code;
	note_copy(nt->r[ri].reply, sizeof(nt->r[ri].reply), line, n);
	if (r->st == RS_DEFERRED)
		note_copy(nt->last, sizeof(nt->last), line, n);
}

static bool msg_held(const struct rmsg *m)
{
	return m->st == MS_DEFERRED && m->next_at == RELAY_HOLD_NEXT;
}

static void qinfo_fill(const struct relay_sched *s, const struct rmsg *m,
		       const struct spool_msg *sm, struct relay_qinfo *qi)
{
	const struct relay_store_ops *st = s->cfg.store;
	void *arg = s->cfg.store_arg;

	memset(qi, 0, sizeof(*qi));
	snprintf(qi->qid, sizeof(qi->qid), "%s", m != NULL ? m->qid : st->queue_id(arg, sm));
	qi->size = st->record_size(arg, sm);
	qi->nrcpt = st->nrcpt(arg, sm);
	for (unsigned i = 0; i < qi->nrcpt; i++)
		qi->pending += !st->rcpt_final(arg, sm, i);
	if (m == NULL) {
		qi->state = RELAY_Q_STATE_WAITING;
		qi->arrival = qid_time(qi->qid);
		qi->next_attempt = st->next_attempt(arg, sm);
		return;
	}
	qi->arrival = m->arrival;
	qi->failures = m->failures;
	switch (m->st) {
	case MS_READY:
		qi->state = RELAY_Q_STATE_READY;
		break;
	case MS_READING:
	case MS_ACTIVE:
		qi->state = RELAY_Q_STATE_DELIVERING;
		break;
	case MS_SETTLING:
		qi->state = RELAY_Q_STATE_SETTLING;
		break;
	default:
		qi->state = msg_held(m) ? RELAY_Q_STATE_HELD : RELAY_Q_STATE_DEFERRED;
		qi->next_attempt = m->next_at;
		break;
	}
	if (m->note != NULL) {
		qi->envelope_known = true;
		snprintf(qi->sender, sizeof(qi->sender), "%s", m->note->sender);
		snprintf(qi->last_reply, sizeof(qi->last_reply), "%s", m->note->last);
	}
}

/* A tracked message the spool still holds (a final one on its way out is not queued). */
static bool msg_listed(const struct rmsg *m)
{
	return m->st != MS_FREE && m->sm != NULL && !m->final;
}

bool relay_sched_q_next(const struct relay_sched *s, uint64_t *pos, struct relay_qinfo *qi)
{
	for (uint64_t p = *pos; p < (uint64_t)s->nmsgs + s->ovf_n; p++) {
		if (p < s->nmsgs) {
			const struct rmsg *m = &s->msgs[p];

			if (!msg_listed(m))
				continue;
			qinfo_fill(s, m, m->sm, qi);
		} else {
			qinfo_fill(s, NULL, s->ovf[(s->ovf_head + (p - s->nmsgs)) % s->ovf_cap], qi);
		}
		*pos = p + 1;
		return true;
	}
	*pos = (uint64_t)s->nmsgs + s->ovf_n;
	return false;
}

/* The tracked message QID, or NULL; *OVF is the overflow entry when it waits there. */
static struct rmsg *q_lookup(const struct relay_sched *s, const char *qid, struct spool_msg **ovf)
{
	*ovf = NULL;
	if (qid == NULL || strlen(qid) != SMTP_QID_LEN)
		return NULL;
	for (unsigned i = 0; i < s->nmsgs; i++)
		if (msg_listed(&s->msgs[i]) && strcmp(s->msgs[i].qid, qid) == 0)
			return &s->msgs[i];
	for (unsigned k = 0; k < s->ovf_n; k++) {
		struct spool_msg *sm = s->ovf[(s->ovf_head + k) % s->ovf_cap];

		if (strcmp(s->cfg.store->queue_id(s->cfg.store_arg, sm), qid) == 0) {
			*ovf = sm;
			return NULL;
		}
	}
	return NULL;
}

int relay_sched_q_find(const struct relay_sched *s, const char *qid, struct relay_qinfo *qi)
{
	struct spool_msg *ovf;
	struct rmsg *m = q_lookup(s, qid, &ovf);

	if (m == NULL && ovf == NULL)
		return -ENOENT;
	qinfo_fill(s, m, m != NULL ? m->sm : ovf, qi);
	return 0;
}

int relay_sched_q_rcpt(const struct relay_sched *s, const char *qid, unsigned i,
		       struct relay_qrcpt *r)
{
	struct spool_msg *ovf;
	struct rmsg *m = q_lookup(s, qid, &ovf);
	struct spool_msg *sm = m != NULL ? m->sm : ovf;

	if (sm == NULL)
		return -ENOENT;
	if (i >= s->cfg.store->nrcpt(s->cfg.store_arg, sm))
		return -ERANGE;
	memset(r, 0, sizeof(*r));
	bool final = s->cfg.store->rcpt_final(s->cfg.store_arg, sm, i);
	const struct rnote_rcpt *nr = m != NULL && m->note != NULL && i < m->note->nrcpt ?
					      &m->note->r[i] : NULL;
	if (nr != NULL) {
		snprintf(r->addr, sizeof(r->addr), "%s", nr->addr);
		r->code = nr->code;
		snprintf(r->reply, sizeof(r->reply), "%s", nr->reply);
	}
	if (nr != NULL && nr->st == RS_DELIVERED)
		r->state = "delivered";
	else if (nr != NULL && nr->st == RS_FAILED && final)
		r->state = "failed";
	else if (final)
		r->state = "final";
	else if (nr != NULL && nr->st == RS_DEFERRED)
		r->state = "deferred";
	else
		r->state = "pending";
	return 0;
}

/* Takes M off the ready list or the deferred heap (it is READY or DEFERRED). */
static void q_unlink(struct relay_sched *s, struct rmsg *m)
{
	if (m->st == MS_READY) {
		TAILQ_REMOVE(&s->ready, m, q);
		s->nready--;
		return;
	}
	unsigned i = m->heap_i;

	if (i != --s->nheap) {
		s->heap[i] = s->heap[s->nheap];
		s->heap[i]->heap_i = i;
		heap_down(s, i);
		heap_up(s, i);
	}
}

/* A message hold, release or delete may touch now, or the reason why not. */
static int q_editable(const struct relay_sched *s, const char *qid, struct rmsg **out)
{
	struct spool_msg *ovf;
	struct rmsg *m = q_lookup(s, qid, &ovf);

	if (m == NULL)
		return ovf != NULL ? -EBUSY : -ENOENT;
	if (m->st != MS_READY && m->st != MS_DEFERRED)
		return -EBUSY;
	*out = m;
	return 0;
}

/* The first recipient of M not final: the one a hold or release record names. */
static unsigned q_first_pending(const struct relay_sched *s, const struct rmsg *m)
{
	unsigned n = s->cfg.store->nrcpt(s->cfg.store_arg, m->sm), i = 0;

	while (i < n && s->cfg.store->rcpt_final(s->cfg.store_arg, m->sm, i))
		i++;
	return i;
}

/* One DEFERRED record for M: NEXT is what recovery will find as its next attempt. */
static int q_defer_record(struct relay_sched *s, struct rmsg *m, int64_t next, const char *reply)
{
	return s->cfg.store->state(s->cfg.store_arg, m->sm, q_first_pending(s, m),
				   SPOOL_RCPT_DEFERRED, wall_now(s), next,
				   (struct smtp_str){ (const uint8_t *)reply, strlen(reply) });
}

int relay_sched_q_hold(struct relay_sched *s, const char *qid)
{
	struct rmsg *m;
	int rc = q_editable(s, qid, &m);

	if (rc != 0)
		return rc;
	if (msg_held(m))
		return -EALREADY;
	rc = q_defer_record(s, m, RELAY_HOLD_NEXT, RELAY_HELD_REPLY);
	if (rc != 0)
		return rc == -ENOBUFS ? rc : -EIO;
	q_unlink(s, m);
	m->st = MS_DEFERRED;
	m->next_at = RELAY_HOLD_NEXT;
	heap_push(s, m);
	relay_log_printf(&s->log, clock_now(s), "qid=%s status=held by=operator", m->qid);
	return 0;
}

int relay_sched_q_release(struct relay_sched *s, const char *qid)
{
	struct rmsg *m;
	int rc = q_editable(s, qid, &m);

	if (rc == -EBUSY)
		return -EINVAL; /* only a deferred message can be held */
	if (rc != 0)
		return rc;
	if (!msg_held(m))
		return -EINVAL;
	rc = q_defer_record(s, m, wall_now(s), RELAY_RELEASED_REPLY);
	if (rc != 0)
		return rc == -ENOBUFS ? rc : -EIO;
	q_unlink(s, m);
	ready_push(s, m);
	relay_log_printf(&s->log, clock_now(s), "qid=%s status=released by=operator", m->qid);
	return 0;
}

int relay_sched_q_delete(struct relay_sched *s, const char *qid, unsigned *left)
{
	static const char reply[] = RELAY_DELETED_REPLY;
	struct rmsg *m;
	int rc = q_editable(s, qid, &m);
	unsigned n, pending = 0, done = 0;

	*left = 0;
	if (rc != 0)
		return rc;
	n = s->cfg.store->nrcpt(s->cfg.store_arg, m->sm);
	for (unsigned i = 0; i < n; i++)
		pending += !s->cfg.store->rcpt_final(s->cfg.store_arg, m->sm, i);
	/* off its list first: the last record frees the spool's handle */
	bool was_ready = m->st == MS_READY;
	q_unlink(s, m);
	for (unsigned i = 0; i < n && done < pending; i++) {
		if (s->cfg.store->rcpt_final(s->cfg.store_arg, m->sm, i))
			continue;
		rc = s->cfg.store->state(s->cfg.store_arg, m->sm, i, SPOOL_RCPT_FAILED, wall_now(s),
					 0, (struct smtp_str){ (const uint8_t *)reply,
							       sizeof(reply) - 1 });
		if (rc == -ENOBUFS)
			break;
		if (rc != 0)
			cnt(s, RELAY_STATE_ERRORS);
		done++;
	}
	if (done < pending) {
		/* the rest another time: the message stays where it was */
		*left = pending - done;
		if (was_ready)
			ready_push(s, m);
		else
			heap_push(s, m);
		relay_log_printf(&s->log, clock_now(s),
				 "qid=%s status=delete-incomplete by=operator deleted=%u left=%u",
				 m->qid, done, *left);
		return -ENOBUFS;
	}
	relay_log_printf(&s->log, clock_now(s), "qid=%s status=deleted by=operator nrcpt=%u dsn=none",
			 m->qid, done);
	m->final = true;
	m->sm = NULL;
	m->st = MS_SETTLING;
	msg_maybe_free(s, m);
	return 0;
}

unsigned relay_sched_q_flush(struct relay_sched *s)
{
	unsigned moved = 0, k = 0;

	for (unsigned i = 0; i < s->nhops; i++)
		s->hops[i]->down_until = 0;
	/* what stays (held: all the same key) is a heap in any order */
	for (unsigned i = 0; i < s->nheap; i++) {
		struct rmsg *m = s->heap[i];

		if (m->next_at == RELAY_HOLD_NEXT) {
			m->heap_i = k;
			s->heap[k++] = m;
		} else {
			ready_push(s, m);
			moved++;
		}
	}
	s->nheap = k;
	if (moved > 0)
		relay_log_printf(&s->log, clock_now(s), "status=flush by=operator messages=%u",
				 moved);
	return moved;
}

int64_t relay_sched_wall(const struct relay_sched *s)
{
	return wall_now(s);
}

/* An envelope read for the operator (relay_sched_q_load()). */
struct qload {
	struct relay_sched *s;
	struct rmsg *m;
	char qid[SMTP_QID_LEN + 1];
	unsigned nrcpt;
	relay_q_loaded_fn done;
	void *arg;
	uint8_t buf[];
};

static void q_load_done(void *cookie, int status, const uint8_t *payload, size_t len)
{
	struct qload *q = cookie;
	struct relay_sched *s = q->s;
	struct rmsg *m = q->m;
	int rc = status;

	s->reading--;
	if (s->closing) {
		rc = -ECANCELED;
	} else if (rc == 0 && msg_listed(m) && strcmp(m->qid, q->qid) == 0 && m->note == NULL) {
		struct smtp_rcpt *rcpts = calloc(q->nrcpt ? q->nrcpt : 1, sizeof(*rcpts));
		struct rload tmp = { .s = s, .m = m, .nrcpt = q->nrcpt, .rcpts = rcpts };

		if (rcpts == NULL)
			rc = -ENOMEM;
		else if (spool_rec_decode_msg(payload, len, &tmp.env, rcpts, q->nrcpt,
					      &tmp.content) != SPOOL_RE_OK ||
			 tmp.env.nrcpt != q->nrcpt)
			rc = -EBADMSG;
		else
			note_load(m, &tmp);
		free(rcpts);
	}
	q->done(q->arg, rc);
	free(q);
}

int relay_sched_q_load(struct relay_sched *s, const char *qid, relay_q_loaded_fn done, void *arg)
{
	struct spool_msg *ovf;
	struct rmsg *m = q_lookup(s, qid, &ovf);

	if (m == NULL)
		return ovf != NULL ? -EBUSY : -ENOENT;
	if (m->note != NULL)
		return 1;
	if (m->st != MS_READY && m->st != MS_DEFERRED)
		return -EBUSY; /* being read or delivered: its note comes with that */
	size_t size = s->cfg.store->record_size(s->cfg.store_arg, m->sm);
	struct qload *q = malloc(sizeof(*q) + (size ? size : 1));

	if (q == NULL)
		return -ENOMEM;
	*q = (struct qload){ .s = s, .m = m, .nrcpt = s->cfg.store->nrcpt(s->cfg.store_arg, m->sm),
			     .done = done, .arg = arg };
	snprintf(q->qid, sizeof(q->qid), "%s", m->qid);
	int rc = s->cfg.store->read(s->cfg.store_arg, m->sm, q->buf, size, q_load_done, q);
	if (rc != 0) {
		free(q);
		return rc;
	}
	s->reading++; /* relay_sched_free() drains it like a delivery's read */
	return 0;
}
