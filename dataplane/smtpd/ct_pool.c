/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Cut-through's kept next-hop connections (ct_pool.h). One pool per worker,
 * made on its first use by that worker and only ever touched by it; a small
 * table of next hops (address:port), each with a struct hop_pool; a kept
 * connection is a struct ct_pconn (recycled through a free list) that reads
 * the replies still owed to it, its RSET's, and anything the hop says while
 * it waits -- through its TLS when it has one.
 */
#include "dataplane/smtpd/ct_pool.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_mbuf.h>

#include "control/config/routes.h"
#include "dataplane/relay/hop_pool.h"
#include "dataplane/smtp/client_reply.h"
#include "dataplane/tls/tls.h"

#define CT_POOL_HOPS	 64  /* next hops per worker with kept connections; more: not kept */
#define CT_POOL_LINE_MAX 512 /* one reply line, CRLF included (RFC 5321 §4.5.3.1.5) */
#define CT_POOL_T_RSET	 300000 /* ms: RFC 5321 §4.5.3.2.7 (or relay.command_timeout_s) */
#define CT_POOL_TLS_READ 2048	/* plaintext decrypted at a time */

struct ct_pool;

struct ct_phop {
	uint32_t addr;
	uint16_t port;
	bool used;
	struct hop_pool hp;
};

enum pc_state {
	PC_RESET, /* replies owed to commands sent, then RSET's own if one was sent */
	PC_IDLE,  /* waiting for a transaction */
};

struct ct_pconn {
	uint8_t kind; /* CT_KIND_POOLED: first, as struct ct's */
	enum pc_state st;
	struct ct_pool *pool;
	struct ct_phop *hop;
	struct tcp_conn *tc;
	struct hop_pool_conn hc;
	unsigned ext;
	struct tls_conn *tls; /* NULL: in the clear */
	uint8_t tls_policy;   /* enum cfg_hop_tls it was set up under */
	char tls_name[CFG_TLS_NAME_MAX]; /* ... and the name it was verified against */
	bool rset; /* hc.owed (replies still to read) ends with RSET's */
	struct timer timer;
	uint16_t line_len;
	bool in_reply;	/* a multi-line reply is being read */
	uint16_t code;	/* its first line's code */
	TAILQ_ENTRY(ct_pconn) all;
	struct ct_pconn *next_free;
	uint8_t line[CT_POOL_LINE_MAX];
};

struct ct_pool {
	struct dp_worker *w;
	bool closing;
	unsigned nkept;
	struct ct_phop hops[CT_POOL_HOPS];
	TAILQ_HEAD(, ct_pconn) live;
	struct ct_pconn *free;
};

/* Indexed by worker id: each worker reaches only its own slot. */
static struct ct_pool *pools[RTE_MAX_LCORE];

static struct ct_pool *pool_of(struct dp_worker *w, bool make)
{
	struct ct_pool *p;

	if (w->id >= RTE_MAX_LCORE)
		return NULL;
	p = pools[w->id];
	if (p == NULL && make) {
		p = calloc(1, sizeof(*p));
		if (p == NULL)
			return NULL;
		p->w = w;
		TAILQ_INIT(&p->live);
		for (unsigned i = 0; i < CT_POOL_HOPS; i++)
			hop_pool_init(&p->hops[i].hp);
		pools[w->id] = p;
	}
	return p;
}

static inline void count(struct ct_pool *p, enum dp_counter c)
{
	dp_count(&p->w->stats, c, 1);
}

/* The hop's entry; MAKE: a new one when absent (NULL when the table is full). */
static struct ct_phop *hop_of(struct ct_pool *p, uint32_t addr, uint16_t port, bool make)
{
	struct ct_phop *free_slot = NULL;

	for (unsigned i = 0; i < CT_POOL_HOPS; i++) {
		struct ct_phop *h = &p->hops[i];

		if (h->used && h->addr == addr && h->port == port)
			return h;
		if (!h->used && free_slot == NULL)
			free_slot = h;
	}
	if (!make || free_slot == NULL)
		return NULL;
	free_slot->used = true;
	free_slot->addr = addr;
	free_slot->port = port;
	return free_slot;
}

int ct_pool_send(struct dp_worker *w, struct tcp_conn *tc, const void *s, size_t n)
{
	struct rte_mbuf *m = dp_mbuf_chain(w->pool, s, n);

	if (m == NULL)
		return -ENOMEM;
	int rc = tcp_send(tc, m);

	if (rc != 0)
		rte_pktmbuf_free(m);
	return rc;
}

int ct_pool_tls_push(struct dp_worker *w, struct tcp_conn *tc, struct tls_conn *tls)
{
	const uint8_t *p;
	size_t n = tls_output(tls, &p);
	int rc;

	if (n == 0)
		return 0;
	rc = ct_pool_send(w, tc, p, n);
	if (rc == 0)
		tls_output_done(tls, n);
	return rc;
}

/* A command line to the hop: through TLS when TLS is not NULL. */
static int send_str(struct dp_worker *w, struct tcp_conn *tc, struct tls_conn *tls, const char *s,
		    size_t n)
{
	if (tls == NULL)
		return ct_pool_send(w, tc, s, n);
	if (tls_write(tls, s, n) != (ssize_t)n)
		return -EPROTO;
	return ct_pool_tls_push(w, tc, tls);
}

/*
 * QUIT (RFC 5321 §4.1.1.10: it also ends a transaction left open), under
 * TLS a close_notify after it (RFC 8446 §6.1), then a FIN. TLS is freed.
 */
static void quit_close(struct dp_worker *w, struct tcp_conn *tc, struct tls_conn *tls)
{
	static const char quit[] = "QUIT\r\n";

	tcp_set_arg(tc, NULL);
	if (send_str(w, tc, tls, quit, sizeof(quit) - 1) == 0 && tls != NULL) {
		tls_close(tls);
		(void)ct_pool_tls_push(w, tc, tls);
	}
	tls_conn_free(tls);
	tcp_close(tc);
}

static void pc_free(struct ct_pconn *pc)
{
	struct ct_pool *p = pc->pool;

	timer_cancel(&p->w->timers, &pc->timer);
	hop_pool_closed(&pc->hop->hp, &pc->hc);
	TAILQ_REMOVE(&p->live, pc, all);
	p->nkept--;
	pc->tc = NULL;
	pc->next_free = p->free;
	p->free = pc;
}

/* PC is done with: QUIT and FIN (POLITE) or a FIN alone; its connection is no longer ours. */
static void pc_close(struct ct_pconn *pc, bool polite)
{
	struct ct_pool *p = pc->pool;
	struct tcp_conn *tc = pc->tc;
	struct tls_conn *tls = pc->tls;

	count(p, DP_C_SMTPD_CT_POOL_CLOSED);
	pc->tls = NULL;
	pc_free(pc);
	if (polite) {
		quit_close(p->w, tc, tls);
	} else {
		tls_conn_free(tls);
		tcp_set_arg(tc, NULL);
		tcp_close(tc);
	}
}

static void arm_ms(struct ct_pconn *pc, uint64_t ms)
{
	uint64_t per_ms = RTE_MAX(pc->pool->w->dp->hz / 1000, (uint64_t)1);

	timer_arm_at(&pc->pool->w->timers, &pc->timer, rte_rdtsc() + ms * per_ms);
}

static void pc_idle(struct ct_pconn *pc)
{
	const struct cfg_relay *rc = &pc->pool->w->dp->cfg->relay;

	if (!hop_pool_put(&pc->hop->hp, &pc->hc)) { /* it owes replies: never reused */
		pc_close(pc, true);
		return;
	}
	pc->st = PC_IDLE;
	arm_ms(pc, (uint64_t)rc->idle_timeout_s * 1000);
}

static void on_timer(struct timer *t, void *arg)
{
	struct ct_pconn *pc = arg;

	(void)t;
	/*
	 * Idle for idle_timeout_s, or the replies owed did not come in time:
	 * never kept then (one could still come), QUIT (RFC 5321 §4.1.1.10).
	 */
	pc_close(pc, true);
}

/* A whole reply (its first line's CODE) came. */
static void on_reply(struct ct_pconn *pc, unsigned code)
{
	if (pc->st == PC_IDLE || !hop_pool_replied(&pc->hc)) {
		pc_close(pc, code != 421); /* unasked: a 421 (RFC 5321 §3.8), or garbage */
		return;
	}
	if (code == 421) { /* the hop is closing (RFC 5321 §3.8): no QUIT, nothing kept */
		pc_close(pc, false);
		return;
	}
	if (pc->hc.owed > 0)
		return; /* a reply owed to a command sent before: whatever it says */
	timer_cancel(&pc->pool->w->timers, &pc->timer);
	if (code != 421 && (!pc->rset || code / 100 == 2))
		pc_idle(pc); /* reset, or the last reply owed was read (whatever it said) */
	else
		pc_close(pc, code != 421);
}

static void pc_input(struct ct_pconn *pc, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (pc->line_len >= CT_POOL_LINE_MAX) {
			pc_close(pc, false);
			return;
		}
		pc->line[pc->line_len++] = p[i];
		if (pc->line_len < 2 || pc->line[pc->line_len - 2] != '\r' ||
		    pc->line[pc->line_len - 1] != '\n')
			continue;
		struct smtp_reply_line l;
		size_t len = pc->line_len - 2u;

		pc->line_len = 0;
		if (smtp_reply_parse_line(pc->line, len, &l) != SMTP_RLE_OK ||
		    (pc->in_reply && l.code != pc->code)) {
			pc_close(pc, false);
			return;
		}
		if (!pc->in_reply)
			pc->code = l.code;
		pc->in_reply = l.more;
		if (!l.more) {
			struct tcp_conn *tc = pc->tc;

			on_reply(pc, pc->code);
			if (pc->tc != tc)
				return; /* closed (pc_free() cleared it) */
		}
	}
}

/* What PC's TLS can decrypt now, read; its close_notify or a failure closes PC. */
static void pc_drain(struct ct_pconn *pc, struct tcp_conn *tc)
{
	uint8_t buf[CT_POOL_TLS_READ];

	while (pc->tc == tc) {
		ssize_t k = tls_read(pc->tls, buf, sizeof(buf));

		if (k > 0) {
			pc_input(pc, buf, (size_t)k);
			continue;
		}
		if (k < 0)
			pc_close(pc, false);
		break;
	}
	if (pc->tc == tc)
		(void)ct_pool_tls_push(pc->pool->w, tc, pc->tls); /* what TLS itself answers, if anything */
}

void ct_pool_received(void *arg, struct tcp_conn *tc, struct rte_mbuf *data, size_t off)
{
	struct ct_pconn *pc = arg;

	/* pc->tc: cleared when PC closes (it stays in memory, on the free list) */
	if (pc->tls != NULL) {
		for (struct rte_mbuf *m = data; m != NULL && pc->tc == tc; m = m->next, off = 0)
			if (m->data_len > off &&
			    tls_input(pc->tls, rte_pktmbuf_mtod(m, const uint8_t *) + off,
				      m->data_len - off) != 0) {
				pc_close(pc, false);
				return;
			}
		pc_drain(pc, tc);
		return;
	}
	for (struct rte_mbuf *m = data; m != NULL && pc->tc == tc; m = m->next, off = 0)
		if (m->data_len > off)
			pc_input(pc, rte_pktmbuf_mtod(m, const uint8_t *) + off, m->data_len - off);
}

void ct_pool_input(void *arg, struct tcp_conn *tc, const uint8_t *p, size_t n)
{
	struct ct_pconn *pc = arg;

	if (n > 0 && pc->tc == tc)
		pc_input(pc, p, n);
	if (pc->tc == tc && pc->tls != NULL)
		pc_drain(pc, tc);
}

void ct_pool_peer_closed(void *arg, struct tcp_conn *tc)
{
	struct ct_pconn *pc = arg;

	(void)tc;
	pc_close(pc, false); /* the hop left while we waited: nothing is lost */
}

void ct_pool_closed(void *arg, struct tcp_conn *tc)
{
	struct ct_pconn *pc = arg;

	tcp_set_arg(tc, NULL);
	count(pc->pool, DP_C_SMTPD_CT_POOL_CLOSED);
	tls_conn_free(pc->tls);
	pc->tls = NULL;
	pc_free(pc); /* TC is gone: nothing to send or close */
}

void *ct_pool_put(struct dp_worker *w, struct tcp_conn *tc, const struct cfg_next_hop *nh,
		  const struct ct_pool_conn *c, const struct ct_pool_debt *d)
{
	static const char rset_cmd[] = "RSET\r\n";
	const struct cfg_relay *rc = &w->dp->cfg->relay;
	struct ct_pool *p = pool_of(w, true);
	struct ct_phop *h = NULL;
	struct ct_pconn *pc;

	if (p != NULL && !p->closing && rc->idle_timeout_s > 0 &&
	    c->txs < rc->messages_per_connection)
		h = hop_of(p, nh->addr, nh->port, true);
	if (h == NULL || !hop_pool_may_open(&h->hp, rc->connections_per_hop) ||
	    d->line_len > CT_POOL_LINE_MAX) {
		quit_close(w, tc, c->tls);
		return NULL;
	}
	pc = p->free;
	if (pc != NULL) {
		p->free = pc->next_free;
	} else {
		pc = malloc(sizeof(*pc));
		if (pc == NULL) {
			quit_close(w, tc, c->tls);
			return NULL;
		}
	}
	memset(pc, 0, offsetof(struct ct_pconn, line));
	pc->kind = CT_KIND_POOLED;
	pc->pool = p;
	pc->hop = h;
	pc->tc = tc;
	pc->ext = c->ext;
	pc->tls = c->tls;
	pc->tls_policy = nh->tls;
	memcpy(pc->tls_name, nh->tls_name, sizeof(pc->tls_name));
	timer_init(&pc->timer, on_timer, pc);
	hop_pool_opened(&h->hp, &pc->hc);
	pc->hc.txs = c->txs;
	TAILQ_INSERT_TAIL(&p->live, pc, all);
	p->nkept++;
	/* the reply the caller was reading goes on here, where it left off */
	if (d->line_len)
		memcpy(pc->line, d->line, d->line_len);
	pc->line_len = (uint16_t)d->line_len;
	pc->in_reply = d->in_code != 0;
	pc->code = d->in_code;
	tcp_set_arg(tc, pc);
	count(p, DP_C_SMTPD_CT_POOL_KEPT);
	if (!d->rset && d->replies == 0 && d->line_len == 0 && d->in_code == 0) {
		pc_idle(pc);
		return pc;
	}
	/* RFC 5321 §4.1.1.5: RSET ends the transaction the client gave up on */
	if (d->rset && send_str(w, tc, pc->tls, rset_cmd, sizeof(rset_cmd) - 1) != 0) {
		pc_close(pc, false);
		return NULL;
	}
	if (d->rset)
		count(p, DP_C_SMTPD_CT_POOL_RSETS);
	pc->st = PC_RESET;
	pc->rset = d->rset;
	hop_pool_sent(&pc->hc, d->replies + (d->rset ? 1u : 0u));
	arm_ms(pc, rc->command_timeout_s ? (uint64_t)rc->command_timeout_s * 1000 : CT_POOL_T_RSET);
	return pc;
}

static struct ct_pconn *pc_of(struct hop_pool_conn *hc)
{
	return (struct ct_pconn *)((char *)hc - offsetof(struct ct_pconn, hc));
}

/*
 * PC may carry a transaction to NH: it was set up under NH's TLS policy
 * (and an "encrypt" one verified NH's name). One set up in the clear never
 * serves a hop a reload made "encrypt" (nor "may", which would try TLS).
 */
static bool tls_fits(const struct ct_pconn *pc, const struct cfg_next_hop *nh)
{
	if (pc->tls_policy != nh->tls)
		return false;
	return nh->tls != CFG_HOP_TLS_ENCRYPT || strcmp(pc->tls_name, nh->tls_name) == 0;
}

struct tcp_conn *ct_pool_take(struct dp_worker *w, const struct cfg_next_hop *nh,
			      struct ct_pool_conn *c)
{
	struct ct_pool *p = pool_of(w, false);
	struct ct_phop *h = p != NULL && !p->closing ? hop_of(p, nh->addr, nh->port, false) : NULL;
	struct hop_pool_conn *hc;
	struct ct_pconn *pc = NULL;

	if (h == NULL)
		return NULL;
	/* the most recently used that fits (LIFO); the others wait for their idle timeout */
	TAILQ_FOREACH(hc, &h->hp.idle, idle_link) {
		if (tls_fits(pc_of(hc), nh)) {
			pc = pc_of(hc);
			break;
		}
	}
	if (pc == NULL)
		return NULL;
	hop_pool_unidle(&h->hp, hc);
	struct tcp_conn *tc = pc->tc;

	c->ext = pc->ext;
	c->txs = pc->hc.txs;
	c->tls = pc->tls;
	pc->tls = NULL;
	pc_free(pc);
	tcp_set_arg(tc, NULL);
	count(p, DP_C_SMTPD_CT_POOL_REUSED);
	return tc;
}

unsigned ct_pool_kept(const struct dp_worker *w)
{
	const struct ct_pool *p = w->id < RTE_MAX_LCORE ? pools[w->id] : NULL;

	return p != NULL ? p->nkept : 0;
}

void ct_pool_drain(struct dp_worker *w)
{
	struct ct_pool *p = pool_of(w, false);
	struct ct_pconn *pc;

	if (p == NULL)
		return;
	p->closing = true;
	while ((pc = TAILQ_FIRST(&p->live)) != NULL) {
		struct tcp_conn *tc = pc->tc;

		tls_conn_free(pc->tls);
		pc->tls = NULL;
		pc_free(pc);
		tcp_set_arg(tc, NULL);
		tcp_abort(tc);
	}
}

void ct_pool_free(struct dp_worker *w)
{
	struct ct_pool *p = pool_of(w, false);
	struct ct_pconn *pc;

	if (p == NULL)
		return;
	while ((pc = TAILQ_FIRST(&p->live)) != NULL) {
		tls_conn_free(pc->tls);
		pc->tls = NULL;
		pc_free(pc); /* their connections went with the stack */
	}
	while ((pc = p->free) != NULL) {
		p->free = pc->next_free;
		free(pc);
	}
	pools[w->id] = NULL;
	free(p);
}
