/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * One worker's SMTP sessions over its TCP stack (smtpd.h). The engine is
 * fed straight from the received mbufs; what it does not take yet stays in
 * the session's input list, unacknowledged to TCP (tcp_consumed() follows
 * only what the engine took), so a client that outruns us sees the window
 * close instead of our memory grow.
 */
#include "dataplane/smtpd/smtpd.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_reciprocal.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mempool.h>
#include <rte_random.h>

#include "dataplane/core/snap.h"
#include "dataplane/policy/clients.h"
#include "dataplane/relay/relay.h"
#include "dataplane/relay/relay_admin.h"
#include "dataplane/relay/route.h"
#include "dataplane/policy/policy.h"
#include "dataplane/smtp/authparam.h"
#include "dataplane/smtp/received.h"
#include "dataplane/smtp/smtp.h"
#include "dataplane/smtpd/ct_pool.h"
#include "dataplane/smtpd/cutthrough.h"
#include "dataplane/smtpd/smtpd_auth.h"
#include "dataplane/smtpd/smtpd_tls.h"
#include "dataplane/spool/spool.h"

#define STATS_SYNC_MS 100
/* Input kept while the engine cannot take it: the receive window bounds it, this backs it up. */
#define KEPT_INPUT_MAX (4u << 20)
#define HOSTNAME_MAX 256

/* The spool's counters too (smtpd_counters.h ends with them). */
#define SPOOL_COUNT_(f, name) +1
#define SPOOLD_N (0 SPOOL_COUNTERS(SPOOL_COUNT_))
#define SPOOLD_DP_BASE DP_C_messages /* the first of SPOOL_COUNTERS */

/* The engine's counters sit in the worker's table in the same order. */
#define SMTPD_DP_BASE DP_C_SESSIONS
_Static_assert(DP_C_INPUT_IGNORED - DP_C_SESSIONS + 1 == SMTP_C_MAX,
	       "SMTPD_COUNTERS must list SMTP_COUNTERS as one block");

struct smtpd_listener {
	struct smtpd *d;
	const struct cfg_listener *cfg;
	const struct cfg *root; /* the whole config CFG is part of: a snapshot's (snap.h) */
	struct tls_ctx *tls;	/* a reload's TLS (certificates as read then); NULL: d->tls */
	struct smtp_server_config scfg;
	struct smtp_hooks hooks;
};

struct smtpd {
	struct dp_worker *w;
	struct rte_mempool *pool; /* struct smtpd_sess + the engine's session */
	struct smtp_line_pool *auth_lines; /* long AUTH lines' buffers (smtpd_auth.h), or NULL */
	struct spool_shard *spool; /* store-mode listeners' spool shard, or NULL */
	struct relay *relay;	   /* delivers what the spool holds, or NULL */
	uint64_t spool_high_water; /* octets of spool past which new mail waits (451 4.3.2) */
	uint64_t slow_commit_tsc;  /* a commit slower than this... */
	uint64_t slow_until_tsc;   /* ...makes new mail wait until then */
	uint64_t tsc_per_ms;
	uint64_t tsc_per_us;
	/* the same as multiply-shift reciprocals: the poll loop divides by them each turn */
	struct rte_reciprocal_u64 per_ms, per_us;
	int64_t wall_offset_ms;	   /* wall clock = session clock + this */
	size_t engine_size;	   /* the largest engine session of the listeners */
	struct smtp_server_ctx ctx;
	struct timer stats_timer;
	char hostname[HOSTNAME_MAX];
	unsigned n_listeners;
	struct smtpd_listener l[CFG_MAX_LISTENERS];
	struct smtpd_sess *live; /* every session, newest first */
	uint64_t next_id;
	struct tls_ctx *tls;	       /* server (and client) TLS, or NULL: no certificate */
	struct tls_stats tls_stats;    /* this worker's TLS counters (dataplane/tls) */
};

/* A config snapshot's listener settings on every worker (smtpd_snap_new()). */
struct smtpd_view {
	/* n_listeners per worker, in config order; NULL: the worker's own d->l (start-up) */
	struct smtpd_listener *l[DP_MAX_WORKERS];
	/* per worker, read again at each reload: renewed certificate files take effect */
	struct tls_ctx *tls[DP_MAX_WORKERS];
};

/* One connection's glue; the engine's session follows it in the same mempool element. */
struct smtpd_sess {
	struct smtpd_listener *l;
	struct tcp_conn *conn;
	struct timer timer;
	struct rte_mbuf *in_head, *in_tail; /* received, not yet taken: single segments */
	uint32_t in_bytes;
	struct rte_mbuf *out; /* a reply chain tcp_send() refused for space */
	bool closing;	      /* close once the output is out */
	struct spool_tx *stx; /* store mode: the message being spooled */
	bool committed;	      /* ... and its commit is waiting for its fdatasync */
	uint64_t commit_tsc;  /* when it was committed */
	bool limited;	      /* subject to policy.client_limits (not an exempt network) */
	bool counted;	      /* counted in the client table: uncount when it ends */
	uint32_t raddr;	      /* the client, network order */
	struct ct *ct;	      /* cut-through listeners: the next hop's side, after the engine */
	struct dp_snap *snap; /* the config snapshot it started with, held until it ends */
	/* for mxgatectl sessions (smtpd_svc_cmd()): the worker's live list, and figures */
	struct smtpd_sess *live_prev, *live_next;
	uint64_t start_tsc, bytes_in, bytes_out;
	uint32_t msgs;	       /* messages whose content ended (store and cut-through) */
	uint16_t rport;	       /* host order */
	uint64_t id;	       /* 1, 2, ... per worker: the session list's cursor */
	struct tls_conn *tls;  /* under TLS: in_head holds plaintext, TCP's octets are ciphertext */
	uint32_t tls_unacked;  /* ciphertext given to TLS, not yet read by it nor consumed in TCP */
	uint64_t tls_deadline; /* ms: the handshake must be done by then */
	struct smtpd_auth *auth; /* AUTH's state from the first AUTH command (smtpd_auth.h) */
	uint8_t engine[] __attribute__((aligned(16)));
};

static inline struct smtp_session *engine(struct smtpd_sess *ss)
{
	return (struct smtp_session *)ss->engine;
}

static inline uint64_t now_ms(const struct smtpd *d)
{
	return rte_reciprocal_divide_u64(rte_rdtsc(), &d->per_ms);
}

static inline void count(struct smtpd *d, enum dp_counter c)
{
	dp_count(&d->w->stats, c, 1);
}

/*
 * Backpressure (issue #5 item 9): while the spool is past its high water,
 * or commits have been slow within the last second, new messages hear
 * 451 4.3.2 and retry later rather than queue in our memory.
 */
static bool store_congested(struct smtpd *d)
{
	const struct spool_stats *st = spool_stats(d->spool);

	if (d->spool_high_water != 0 && st->spool_bytes >= d->spool_high_water)
		return true;
	if (d->relay != NULL && relay_congested(d->relay))
		return true;
	return rte_rdtsc() < d->slow_until_tsc;
}

/* ---- policy hooks ---- */

static int hook_mail(void *arg, struct smtp_session *s, const struct smtp_tx *tx,
		     const struct smtp_path *sender)
{
	struct smtpd_listener *l = arg;
	struct smtpd_sess *ss = smtp_server_udata(s);
	struct client_table *clients = l->d->w->dp->clients;

	(void)sender; /* syntax was checked by the engine; the null sender is fine */
	/* RFC 6409 §4.3: submission takes mail from authenticated clients (or our networks) */
	if (l->cfg->auth && l->cfg->mode == CFG_MODE_SUBMISSION && !smtp_server_authenticated(s) &&
	    !policy_relay_network(&l->root->policy, ss->raddr)) {
		count(l->d, DP_C_SMTPD_AUTH_REQUIRED);
		return SMTP_R_AUTH_REQUIRED;
	}
	if (l->cfg->ack == CFG_ACK_STORE && store_congested(l->d)) {
		count(l->d, DP_C_SMTPD_CONGESTED);
		return SMTP_R_CONGESTED;
	}
	if (clients != NULL && ss->limited &&
	    client_message_lim(clients, &l->root->policy.client_limits, ss->raddr,
			       now_ms(l->d)) == CLIENT_MSG_RATE) {
		count(l->d, DP_C_SMTPD_CLIENT_MSG_RATE);
		return SMTP_R_CLIENT_MSG_RATE; /* 421: the engine ends the session */
	}
	if (l->cfg->ack == CFG_ACK_CUT_THROUGH) {
		/* RFC 4954 §5: the submitter, for the hop's AUTH= (as the store path spools it);
		 * once a transaction, before the RCPT that sends MAIL */
		char authid[SMTP_AUTHID_MAX];
		ct_set_authid(ss->ct, authid,
			      smtp_authp_identity(tx->auth, smtpd_auth_user(ss->auth),
						  l->scfg.hostname, authid, sizeof(authid)));
	}
	count(l->d, DP_C_SMTPD_TRANSACTIONS);
	return SMTP_R_NONE;
}

static int hook_rcpt(void *arg, struct smtp_session *s, const struct smtp_tx *tx,
		     const struct smtp_path *rcpt)
{
	struct smtpd_listener *l = arg;
	const struct smtp_peer *peer = smtp_server_peer(s);
	struct policy_client c = {.authenticated = smtp_server_authenticated(s)};

	(void)tx;
	if (peer->family == 4)
		memcpy(&c.addr, peer->addr, 4);
	switch (policy_rcpt(&l->root->policy, l->cfg->mode, &c,
			    (const char *)rcpt->local.p, rcpt->local.len,
			    (const char *)rcpt->domain.p, rcpt->domain.len)) {
	case POLICY_OK:
		break;
	case POLICY_RELAY_DENIED:
		count(l->d, DP_C_SMTPD_RELAY_DENIED);
		return SMTP_R_RELAY_DENIED;
	case POLICY_RCPT_UNKNOWN:
		count(l->d, DP_C_SMTPD_RCPT_UNKNOWN);
		return SMTP_R_RCPT_UNKNOWN;
	default:
		return SMTP_R_LOCAL_ERROR;
	}
	/* cut-through: the next hop answers (or we say why there is none) */
	if (l->cfg->ack == CFG_ACK_CUT_THROUGH)
		return ct_rcpt(((struct smtpd_sess *)smtp_server_udata(s))->ct, tx, rcpt);
	/* mail we keep must have somewhere to go (RFC 3463 5.4.4: unable to route), by the
	 * session's snapshot's routes: the relay routes by them too once it has seen it */
	struct route rt;
	if (l->cfg->ack == CFG_ACK_STORE &&
	    route_lookup(&l->root->routes, (const char *)rcpt->domain.p,
			 rcpt->domain.len, &rt) != 0) {
		count(l->d, DP_C_SMTPD_UNROUTABLE);
		return SMTP_R_UNROUTABLE;
	}
	return SMTP_R_NONE;
}

/* ---- AUTH (smtpd_auth.h) ---- */

static void auth_env(struct smtpd_listener *l, const struct smtp_session *s,
		     struct smtpd_auth_env *e)
{
	*e = (struct smtpd_auth_env){
		.w = l->d->w,
		.clients = l->d->w->dp->clients,
		.cfg = &l->root->auth,
		.now_ms = now_ms(l->d),
	};
	memcpy(&e->raddr, smtp_server_peer(s)->addr, 4);
}

/* A client locked out for its failed AUTHs hears 421 4.7.0 instead of the greeting. */
static int hook_connect(void *arg, struct smtp_session *s)
{
	struct smtpd_auth_env e;

	auth_env(arg, s, &e);
	return smtpd_auth_locked(&e) ? SMTP_R_AUTH_LOCKED : SMTP_R_NONE;
}

static int hook_auth(void *arg, struct smtp_session *s, const struct smtp_cmd *cmd,
		     const struct smtp_str *line, struct smtp_str *challenge)
{
	struct smtpd_sess *ss = smtp_server_udata(s);
	struct smtpd_auth_env e;

	auth_env(arg, s, &e);
	return smtpd_auth_hook(&ss->auth, &e, s, cmd, line, challenge);
}

/* ---- store mode: the spool (DESIGN.md §3.4) ---- */

static void sess_run(struct smtpd_sess *ss);

static struct smtpd_sess *sess_of_tx(struct smtp_tx *tx)
{
	return smtp_server_udata(smtp_server_of_tx(tx));
}

/* A spool error as the SMTP reply it deserves (spool.h lists them). */
static int spool_reply(int err)
{
	switch (err) {
	case -EFBIG:
		return SMTP_R_SIZE_EXCEEDED;
	case -ENOSPC:
	case -EIO:
	case -ENOBUFS:
		return SMTP_R_STORAGE;
	default:
		return SMTP_R_LOCAL_ERROR;
	}
}

static int store_begin(void *arg, struct smtp_tx *tx)
{
	struct smtpd_listener *l = arg;
	struct smtpd *d = l->d;
	struct smtpd_sess *ss = sess_of_tx(tx);
	struct smtp_session *s = engine(ss);
	struct spool_env env;
	int rc;

	if (store_congested(d)) {
		count(d, DP_C_SMTPD_CONGESTED);
		return SMTP_R_CONGESTED;
	}
	spool_env_from_tx(&env, tx, smtp_server_protocol(s));
	/* RFC 4954 §5: who submitted it, as the relay will tell the next hop (AUTH=) */
	char authid[SMTP_AUTHID_MAX];
	env.authid.p = (const uint8_t *)authid;
	env.authid.len = smtp_authp_identity(tx->auth, smtpd_auth_user(ss->auth), l->scfg.hostname,
					     authid, sizeof(authid));
	rc = spool_begin(d->spool, &env, tx->size, &ss->stx);
	if (rc != 0) {
		ss->stx = NULL;
		count(d, DP_C_SMTPD_STORE_REFUSED);
		return spool_reply(rc);
	}
	ss->committed = false;
	return SMTP_R_NONE;
}

static int store_chunk(void *arg, struct smtp_tx *tx, const uint8_t *p, size_t n)
{
	struct smtpd_listener *l = arg;
	struct smtpd_sess *ss = sess_of_tx(tx);
	int rc = spool_append(l->d->spool, ss->stx, p, n);

	return rc == 0 ? SMTP_R_NONE : spool_reply(rc);
}

/* The fdatasync covering SS's message completed (or failed): now the client hears it. */
static void store_committed(void *cookie, int status, struct spool_msg *m)
{
	struct smtpd_sess *ss = cookie;
	struct smtpd *d = ss->l->d;

	uint64_t now = rte_rdtsc();

	if (status == 0 && d->relay != NULL)
		relay_submit(d->relay, d->spool, m); /* the relay delivers it from here */

	if (now - ss->commit_tsc > d->slow_commit_tsc)
		d->slow_until_tsc = now + d->w->dp->hz;
	ss->stx = NULL;
	ss->committed = false;
	if (status != 0)
		count(d, DP_C_SMTPD_STORE_FAILED);
	/* a disk that filled up is "insufficient system storage" (452 4.3.1) */
	smtp_server_tx_done(engine(ss),
			    status == 0 ? SMTP_R_QUEUED
					: status == -ENOSPC ? SMTP_R_STORAGE : SMTP_R_LOCAL_ERROR,
			    now_ms(d));
	sess_run(ss); /* may close and free SS */
}

static int store_end(void *arg, struct smtp_tx *tx)
{
	struct smtpd_listener *l = arg;
	struct smtpd_sess *ss = sess_of_tx(tx);

	ss->committed = true;
	ss->msgs++;
	ss->commit_tsc = rte_rdtsc();
	spool_commit(l->d->spool, ss->stx, rte_rdtsc() / l->d->tsc_per_us, store_committed, ss);
	return SMTP_SINK_PENDING;
}

static void store_abort(void *arg, struct smtp_tx *tx)
{
	struct smtpd_listener *l = arg;
	struct smtpd_sess *ss = sess_of_tx(tx);

	if (ss->stx == NULL)
		return;
	/* committed: it reaches the disk anyway and is delivered (a duplicate at worst, the
	 * client saw no 250); not yet: nothing of it is written */
	if (ss->committed)
		spool_detach(l->d->spool, ss->stx);
	else
		spool_abort(l->d->spool, ss->stx);
	ss->stx = NULL;
	ss->committed = false;
}

static const struct smtp_sink_ops store_sink = {
	.begin = store_begin,
	.chunk = store_chunk,
	.end = store_end,
	.abort = store_abort,
};

/* ---- cut-through mode: the next hop's transaction alongside (cutthrough.h) ---- */

static void cut_tx_end(void *arg, struct smtp_session *s, const struct smtp_tx *tx)
{
	struct smtpd_sess *ss = smtp_server_udata(s);

	(void)arg;
	(void)tx;
	if (ss != NULL && ss->ct != NULL)
		ct_tx_end(ss->ct);
}

static int cut_begin(void *arg, struct smtp_tx *tx)
{
	(void)arg;
	return ct_begin(sess_of_tx(tx)->ct, tx);
}

static int cut_chunk(void *arg, struct smtp_tx *tx, const uint8_t *p, size_t n)
{
	(void)arg;
	return ct_chunk(sess_of_tx(tx)->ct, tx, p, n);
}

static int cut_end(void *arg, struct smtp_tx *tx)
{
	(void)arg;
	sess_of_tx(tx)->msgs++;
	return ct_end(sess_of_tx(tx)->ct, tx);
}

/* The message is dropped mid-way: the next hop's transaction goes with it at once. */
static void cut_abort(void *arg, struct smtp_tx *tx)
{
	(void)arg;
	ct_tx_end(sess_of_tx(tx)->ct);
}

static const struct smtp_sink_ops cut_sink = {
	.begin = cut_begin,
	.chunk = cut_chunk,
	.end = cut_end,
	.abort = cut_abort,
};

/* ---- output ---- */

/*
 * Sends what the engine has to say: one tcp_send() per flush, so a pipelined
 * group's replies leave together. Returns 0 when nothing is left, -EAGAIN
 * when TCP has no room (writable() comes back), -ENOMEM without mbufs.
 */
static int sess_flush(struct smtpd_sess *ss)
{
	struct rte_mempool *mp = ss->l->d->w->pool;
	const uint8_t *p;
	size_t n;
	int rc;

	if (ss->out != NULL) {
		rc = tcp_send(ss->conn, ss->out);
		if (rc == -EAGAIN)
			return rc;
		if (rc != 0)
			rte_pktmbuf_free(ss->out); /* the connection is going: nobody will read it */
		ss->out = NULL;
	}
	struct rte_mbuf *m;

	if (ss->tls != NULL) { /* the replies encrypted, or the handshake's own records */
		m = smtpd_tls_output(ss->tls, engine(ss), mp, &rc);
		if (m == NULL)
			return rc;
		ss->bytes_out += m->pkt_len;
	} else {
		n = smtp_server_output(engine(ss), &p);
		if (n == 0)
			return 0;
		m = dp_mbuf_chain(mp, p, n);
		if (m == NULL)
			return -ENOMEM;
		smtp_server_output_done(engine(ss), n);
		ss->bytes_out += n;
	}
	rc = tcp_send(ss->conn, m);
	if (rc == -EAGAIN) {
		ss->out = m;
		return rc;
	}
	if (rc != 0)
		rte_pktmbuf_free(m);
	return 0;
}

/* ---- input ---- */

static void in_pop(struct smtpd_sess *ss)
{
	struct rte_mbuf *m = ss->in_head;

	ss->in_head = m->next;
	if (ss->in_head == NULL)
		ss->in_tail = NULL;
	m->next = NULL;
	rte_pktmbuf_free_seg(m);
}

/* Drops kept input (the session ended) and tells TCP it was read, so close is a FIN, not a RST. */
static void in_drop(struct smtpd_sess *ss)
{
	/* TCP's octets: the kept plaintext, or under TLS the ciphertext TLS holds */
	uint32_t n = ss->tls != NULL ? ss->tls_unacked : ss->in_bytes;

	if (n)
		tcp_consumed(ss->conn, n);
	ss->tls_unacked = 0;
	while (ss->in_head != NULL)
		in_pop(ss);
	ss->in_bytes = 0;
}

/*
 * Feeds kept input until it is all taken or the engine must wait: its
 * output is blocked, or a final reply is pending. Returns -ENOMEM when no
 * mbuf could carry a reply.
 */
static int sess_feed(struct smtpd_sess *ss, uint64_t now)
{
	struct smtp_session *s = engine(ss);
	uint32_t taken = 0;
	unsigned stalls = 0;
	int rc = 0;

	for (;;) {
		/* cut-through: the RCPTs of the input fed so far go to the next hop as
		 * one write once it is all taken; a reply it decided goes out before more */
		if (ss->ct != NULL && ss->in_head == NULL)
			ct_flush(ss->ct);
		if (ss->ct != NULL && ct_deliver(ss->ct, now))
			stalls = 0;
		if (ss->in_head == NULL)
			break;
		struct rte_mbuf *m = ss->in_head;
		size_t give = m->data_len, used = 0;

		if (ss->ct != NULL) {
			size_t budget = ct_budget(ss->ct);

			if (budget == 0) { /* the next hop is slow: the input waits in TCP */
				count(ss->l->d, DP_C_SMTPD_CT_STALLS);
				break;
			}
			give = RTE_MIN(give, budget);
		}
		if (give != 0)
			used = smtp_server_input(s, rte_pktmbuf_mtod(m, const uint8_t *), give, now);
		taken += (uint32_t)used;
		if (used == m->data_len) {
			in_pop(ss);
			stalls = 0;
			continue;
		}
		m->data_off += (uint16_t)used;
		m->data_len -= (uint16_t)used;
		if (used == give) { /* took all of a budgeted piece: the next one */
			stalls = 0;
			continue;
		}
		if (smtp_server_events(s) & (SMTP_EV_PENDING | SMTP_EV_STARTTLS)) {
			if (ss->ct != NULL)
				ct_flush(ss->ct); /* e.g. DATA waits behind the group's RCPTs */
			if (ss->ct != NULL && ct_deliver(ss->ct, now))
				continue; /* decided at once (e.g. a sticky refusal) */
			break;
		}
		rc = sess_flush(ss);
		/* the engine stops only to have its output flushed: twice in a row is a bug */
		if (rc != 0 || (used == 0 && ++stalls > 1))
			break;
	}
	if (ss->ct != NULL)
		ct_flush(ss->ct);
	ss->in_bytes -= taken;
	if (taken && ss->tls == NULL) /* under TLS, ciphertext is consumed as it is decrypted */
		tcp_consumed(ss->conn, taken);
	return rc == -ENOMEM ? rc : 0;
}

/* ---- TLS: STARTTLS and implicit TLS (smtpd_tls.c moves the bytes) ---- */

/* SS's server side TLS, the handshake timed from now. 0, or -ENOMEM (counted). */
static int sess_tls_new(struct smtpd_sess *ss)
{
	struct smtpd *d = ss->l->d;

	ss->tls = tls_server_new(ss->l->tls != NULL ? ss->l->tls : d->tls, &d->tls_stats);
	if (ss->tls == NULL) {
		d->tls_stats.c[TLS_C_TLS_FAIL_OTHER]++;
		return -ENOMEM;
	}
	/* the session's snapshot's timeout: a reload changes it for handshakes begun later */
	ss->tls_deadline = now_ms(d) + ss->l->root->tls.handshake_timeout_ms;
	return 0;
}

/*
 * The 220 to STARTTLS is out (or waits in ss->out, in the clear, ahead of
 * anything TLS sends): TLS starts. Plaintext still kept is client talk from
 * before the handshake: dropped unread (RFC 3207 §4.2, CVE-2011-0411).
 */
static int sess_tls_start(struct smtpd_sess *ss)
{
	smtp_count(&ss->l->d->ctx.stats, SMTP_C_STARTTLS_DISCARDED, ss->in_bytes);
	in_drop(ss);
	return sess_tls_new(ss);
}

/*
 * Runs the handshake and decrypts what the engine has room for; consumes in
 * TCP the ciphertext TLS has read. Returns the plaintext octets added, or -1
 * when the session ends (closing is set; an alert may wait in the output).
 */
static int sess_tls_in(struct smtpd_sess *ss)
{
	struct smtpd *d = ss->l->d;
	bool was = tls_handshake_done(ss->tls);
	int rc = smtpd_tls_decrypt(ss->tls, d->w->pool, &ss->in_head, &ss->in_tail, &ss->in_bytes);
	uint32_t left = (uint32_t)tls_input_pending(ss->tls);

	if (ss->tls_unacked > left) {
		tcp_consumed(ss->conn, ss->tls_unacked - left);
		ss->tls_unacked = left;
	}
	/* after STARTTLS the client starts over with EHLO (RFC 3207 §4.2); on 465 the
	 * engine began under TLS and its 220 now goes out */
	if (!was && tls_handshake_done(ss->tls))
		smtp_server_tls_started(engine(ss), now_ms(d));
	if (rc >= 0)
		return rc;
	if (rc == -ENOMEM)
		count(d, DP_C_SMTPD_OUTPUT_NOMEM);
	ss->closing = true; /* -EPIPE: the client's close_notify; -EPROTO: counted by TLS */
	return -1;
}

/* ---- the session's course ---- */

static void sess_arm(struct smtpd_sess *ss)
{
	struct smtpd *d = ss->l->d;
	uint64_t at = smtp_server_deadline(engine(ss));

	if (ss->tls != NULL && !tls_handshake_done(ss->tls))
		at = RTE_MIN(at, ss->tls_deadline);
	if (at == UINT64_MAX)
		timer_cancel(&d->w->timers, &ss->timer);
	else /* one ms late rather than early: the engine rounds the same way down */
		timer_arm_at(&d->w->timers, &ss->timer, (at + 1) * d->tsc_per_ms);
}

/*
 * After input, a timeout or send space: flush, then close or re-arm. May end
 * in tcp_close()/tcp_abort(), which may free SS: callers return right after.
 */
static void sess_after(struct smtpd_sess *ss)
{
	struct tcp_conn *c = ss->conn;
	int rc = sess_flush(ss);

	if (rc == -ENOMEM) {
		count(ss->l->d, DP_C_SMTPD_OUTPUT_NOMEM);
		tcp_abort(c);
		return;
	}
	if (rc == -EPROTO)
		ss->closing = true; /* TLS failed: nothing more can be said */
	if ((smtp_server_events(engine(ss)) & SMTP_EV_STARTTLS) && ss->tls == NULL &&
	    !ss->closing && sess_tls_start(ss) != 0)
		ss->closing = true;
	if (smtp_server_events(engine(ss)) & SMTP_EV_CLOSE)
		ss->closing = true;
	if (ss->closing) {
		timer_cancel(&ss->l->d->w->timers, &ss->timer);
		if (rc == -EAGAIN)
			return; /* writable() finishes the job */
		in_drop(ss);
		tcp_close(c);
		return;
	}
	sess_arm(ss);
}

static void sess_run(struct smtpd_sess *ss)
{
	int got;

	do {
		got = ss->tls != NULL ? sess_tls_in(ss) : 0;
		if (got < 0)
			break; /* closing: sess_after sends the alert, then the FIN */
		if (sess_feed(ss, now_ms(ss->l->d)) != 0) {
			count(ss->l->d, DP_C_SMTPD_OUTPUT_NOMEM);
			tcp_abort(ss->conn);
			return;
		}
		/* more plaintext may wait in TLS while the engine took all it was given */
	} while (got > 0 && ss->in_head == NULL && !ss->closing);
	sess_after(ss);
}

static void sess_timer(struct timer *t, void *arg)
{
	struct smtpd_sess *ss = arg;

	(void)t;
	if (ss->tls != NULL && !tls_handshake_done(ss->tls) &&
	    now_ms(ss->l->d) >= ss->tls_deadline) {
		tls_timed_out(ss->tls); /* counted; no reply can be understood: just the FIN */
		ss->closing = true;
		sess_after(ss);
		return;
	}
	if (smtp_server_timeout(engine(ss), now_ms(ss->l->d)))
		sess_after(ss);
	else
		sess_arm(ss);
}

/* The next hop said something, or took more content: the session goes on (cutthrough.h). */
static void sess_wake(void *arg)
{
	struct smtpd_sess *ss = arg;

	if (ss->closing) {
		sess_after(ss);
		return;
	}
	sess_run(ss); /* may close and free SS */
}

/* ---- TCP callbacks ---- */

/*
 * Turns a connection away before any session exists: one 421 line (RFC 5321
 * §3.8, a server may say 421 instead of 220) and a FIN. Without an mbuf for
 * it, a reset says the same less politely. What the client sends meanwhile is
 * read and dropped (on_received), so the close stays a FIN.
 */
static void refuse_conn(struct smtpd_listener *l, struct tcp_conn *c, enum smtp_reply_id id)
{
	char line[SMTP_REPLY_LINE_MAX];
	size_t n = smtp_reply_format(line, sizeof(line), id, l->scfg.hostname,
				     strlen(l->scfg.hostname), ' ');
	struct rte_mbuf *m = n ? dp_mbuf_chain(l->d->w->pool, (const uint8_t *)line, n) : NULL;

	if (m == NULL || tcp_send(c, m) != 0) {
		rte_pktmbuf_free(m);
		count(l->d, DP_C_SMTPD_REFUSAL_NOMEM);
		tcp_abort(c);
		return;
	}
	tcp_close(c);
}

/*
 * policy.client_limits at the door: counts the connection against its
 * address, or says which limit it is over (SMTP_R_NONE: come in).
 */
static enum smtp_reply_id admit(struct smtpd_listener *l, struct smtpd_sess *probe,
				uint32_t raddr)
{
	struct smtpd *d = l->d;
	const struct cfg_policy *pol = &l->root->policy;
	const struct cfg_client_limits *lim = &pol->client_limits;
	struct client_table *clients = d->w->dp->clients;

	probe->raddr = raddr;
	probe->limited = clients != NULL &&
			 (lim->connections != 0 || lim->connection_rate != 0 ||
			  lim->message_rate != 0) &&
			 !(lim->exempt_relay_networks && policy_relay_network(pol, raddr));
	probe->counted = false;
	if (!probe->limited)
		return SMTP_R_NONE;
	switch (client_connect_lim(clients, lim, raddr, now_ms(d))) {
	case CLIENT_OK:
		probe->counted = true;
		return SMTP_R_NONE;
	case CLIENT_UNTRACKED:
		count(d, DP_C_SMTPD_CLIENT_UNTRACKED);
		return SMTP_R_NONE;
	case CLIENT_TOO_MANY_CONNS:
		count(d, DP_C_SMTPD_CLIENT_CONNS);
		return SMTP_R_CLIENT_CONNS;
	case CLIENT_CONN_RATE:
	case CLIENT_MSG_RATE:
		break;
	}
	count(d, DP_C_SMTPD_CLIENT_CONN_RATE);
	return SMTP_R_CLIENT_CONN_RATE;
}

static void live_unlink(struct smtpd *d, struct smtpd_sess *ss)
{
	if (ss->live_prev != NULL)
		ss->live_prev->live_next = ss->live_next;
	else
		d->live = ss->live_next;
	if (ss->live_next != NULL)
		ss->live_next->live_prev = ss->live_prev;
	ss->live_prev = ss->live_next = NULL;
}

static void uncount(struct smtpd *d, const struct smtpd_sess *ss)
{
	if (ss->counted)
		client_disconnect(d->w->dp->clients, ss->raddr);
}

/*
 * The listener settings of SNAP for the port DOOR listens on: a reload's
 * own copy, or the worker's start-up listener (the first snapshot's, and
 * the only one without snapshots).
 */
static struct smtpd_listener *snap_listener(struct smtpd *d, const struct dp_snap *snap,
					    struct smtpd_listener *door)
{
	const struct smtpd_view *v = snap != NULL ? snap->svc : NULL;

	if (v == NULL || v->l[d->w->id] == NULL)
		return door;
	return &v->l[d->w->id][door - d->l];
}

/* The relay's STARTTLS context for SNAP (relay_set_snap_tls()): the one its view made. */
static struct tls_ctx *snap_client_tls(const struct dp_snap *snap, unsigned worker)
{
	const struct smtpd_view *v = snap->svc;

	return v != NULL ? v->tls[worker] : NULL;
}

static void on_accepted(struct tcp_conn *c, void *arg)
{
	struct smtpd *d = ((struct smtpd_listener *)arg)->d;
	/* the session keeps the settings of now for its whole life, whatever reloads come */
	struct dp_snap *snap = dp_snap_take(d->w);
	struct smtpd_listener *l = snap_listener(d, snap, arg);
	struct smtpd_sess *ss, door;
	struct smtp_peer peer = {.family = 4};
	uint32_t laddr, raddr;
	uint16_t lport, rport;
	enum smtp_reply_id r;
	void *mem;

	tcp_set_arg(c, NULL);
	tcp_endpoints(c, &laddr, &lport, &raddr, &rport);
	r = admit(l, &door, raddr);
	if (r != SMTP_R_NONE) {
		refuse_conn(l, c, r);
		dp_snap_drop(d->w, snap);
		return;
	}
	if (rte_mempool_get(d->pool, &mem) != 0) {
		uncount(d, &door);
		count(d, DP_C_SMTPD_SESSIONS_REFUSED);
		refuse_conn(l, c, SMTP_R_BUSY);
		dp_snap_drop(d->w, snap);
		return;
	}
	ss = mem;
	memset(ss, 0, sizeof(*ss));
	ss->l = l;
	ss->conn = c;
	ss->raddr = raddr;
	ss->limited = door.limited;
	ss->counted = door.counted;
	ss->snap = snap;
	ss->start_tsc = rte_rdtsc();
	ss->id = ++d->next_id;
	ss->rport = rte_be_to_cpu_16(rport);
	ss->live_next = d->live;
	if (d->live != NULL)
		d->live->live_prev = ss;
	d->live = ss;
	timer_init(&ss->timer, sess_timer, ss);
	memcpy(peer.addr, &raddr, 4);
	peer.port = rte_be_to_cpu_16(rport);
	bool implicit = l->cfg->tls == CFG_LISTENER_TLS_IMPLICIT &&
			tls_ctx_has_server(l->tls != NULL ? l->tls : d->tls);

	/* RFC 8314 §3.3: on 465 the handshake comes first; the 220 waits for it */
	if (smtp_server_init(ss->engine, &l->scfg, &d->ctx, &peer, implicit ? SMTP_SESSION_TLS : 0,
			     now_ms(d)) == NULL ||
	    (implicit && sess_tls_new(ss) != 0)) {
		live_unlink(d, ss);
		uncount(d, ss);
		rte_mempool_put(d->pool, ss);
		count(d, DP_C_SMTPD_SESSIONS_REFUSED);
		refuse_conn(l, c, SMTP_R_BUSY);
		dp_snap_drop(d->w, snap);
		return;
	}
	smtp_server_set_udata(engine(ss), ss);
	if (l->cfg->ack == CFG_ACK_CUT_THROUGH) {
		const char *helo = d->w->dp->cfg->relay.helo_name;

		ss->ct = (struct ct *)(ss->engine + RTE_ALIGN_CEIL(d->engine_size, 16));
		ct_init(ss->ct, d->w, engine(ss), helo != NULL ? helo : l->scfg.hostname, sess_wake,
			ss);
		ct_set_routes(ss->ct, &l->root->routes); /* the session's snapshot's */
		/* STARTTLS to next hops: the snapshot's client context, the worker's counters */
		ct_set_tls(ss->ct, l->tls != NULL ? l->tls : d->tls, &d->tls_stats,
			   l->root->tls.handshake_timeout_ms);
	}
	tcp_set_arg(c, ss);
	sess_after(ss);
}

static void on_received(struct tcp_conn *c, struct rte_mbuf *data)
{
	struct smtpd_sess *ss = tcp_arg(c);
	uint32_t len = data->pkt_len;

	if (ss == NULL) { /* turned away at the door: read and drop */
		tcp_consumed(c, len);
		rte_pktmbuf_free(data);
		return;
	}
	if (ss->tls != NULL) { /* ciphertext: into TLS, consumed in TCP once TLS read it */
		ss->bytes_in += len;
		ss->tls_unacked += len;
		if (smtpd_tls_input(ss->tls, data) != 0) {
			count(ss->l->d, DP_C_SMTPD_INPUT_OVERFLOW);
			tcp_abort(c);
			return;
		}
		if (ss->closing)
			in_drop(ss);
		else
			sess_run(ss);
		return;
	}
	/* unchain into the kept list: one segment at a time is what the engine is fed */
	while (data != NULL) {
		struct rte_mbuf *next = data->next;

		data->next = NULL;
		data->nb_segs = 1;
		data->pkt_len = data->data_len;
		if (ss->in_tail != NULL)
			ss->in_tail->next = data;
		else
			ss->in_head = data;
		ss->in_tail = data;
		data = next;
	}
	ss->in_bytes += len;
	ss->bytes_in += len;
	if (ss->in_bytes > KEPT_INPUT_MAX) {
		count(ss->l->d, DP_C_SMTPD_INPUT_OVERFLOW);
		tcp_abort(c);
		return;
	}
	if (ss->closing) {
		in_drop(ss); /* the session said its last word; what follows is ignored */
		return;
	}
	sess_run(ss);
}

static void on_writable(struct tcp_conn *c)
{
	struct smtpd_sess *ss = tcp_arg(c);

	if (ss == NULL)
		return;
	if (ss->closing) {
		sess_after(ss);
		return;
	}
	sess_run(ss); /* input kept while the output was blocked */
}

static void on_peer_closed(struct tcp_conn *c)
{
	struct smtpd_sess *ss = tcp_arg(c);

	if (ss == NULL) {
		tcp_close(c);
		return;
	}
	/* No more commands can come: answer what came, then close. */
	if (ss->tls != NULL)
		tls_peer_closed(ss->tls); /* counted when it was mid-handshake */
	ss->closing = true;
	sess_after(ss);
}

static void on_closed(struct tcp_conn *c, enum tcp_close_reason reason)
{
	struct smtpd_sess *ss = tcp_arg(c);

	if (ss == NULL)
		return;
	struct smtpd *d = ss->l->d;

	if (reason != TCP_CLOSE_NORMAL && !ss->closing)
		count(d, DP_C_SMTPD_SESSIONS_ABORTED);
	timer_cancel(&d->w->timers, &ss->timer);
	live_unlink(d, ss);
	uncount(d, ss);
	smtp_server_fini(engine(ss)); /* its tx_end() lets the next hop go (cut-through) */
	smtpd_auth_release(&ss->auth); /* after fini: its hook call may still use it */
	if (ss->ct != NULL)
		ct_fini(ss->ct);
	while (ss->in_head != NULL)
		in_pop(ss);
	rte_pktmbuf_free(ss->out);
	ss->out = NULL;
	tls_conn_free(ss->tls);
	ss->tls = NULL;
	tcp_set_arg(c, NULL);
	dp_snap_drop(d->w, ss->snap); /* last: the hooks above may still read its settings */
	ss->snap = NULL;
	rte_mempool_put(d->pool, ss);
}

static const struct tcp_ops smtpd_ops = {
	.accepted = on_accepted,
	.received = on_received,
	.writable = on_writable,
	.peer_closed = on_peer_closed,
	.closed = on_closed,
};

/* ---- the worker's side ---- */

/* Copies the engine's counters into the worker's table, where telemetry reads them. */
static void stats_sync(struct timer *t, void *arg)
{
	struct smtpd *d = arg;

	for (unsigned i = 0; i < SMTP_C_MAX; i++)
		__atomic_store_n(&d->w->stats.c[SMTPD_DP_BASE + i],
				 __atomic_load_n(&d->ctx.stats.c[i], __ATOMIC_RELAXED),
				 __ATOMIC_RELAXED);
	if (d->spool != NULL) {
		/* struct spool_stats starts with the SPOOL_COUNTERS fields, in order */
		const uint64_t *sp = (const uint64_t *)spool_stats(d->spool);

		for (unsigned i = 0; i < SPOOLD_N; i++)
			__atomic_store_n(&d->w->stats.c[SPOOLD_DP_BASE + i], sp[i], __ATOMIC_RELAXED);
	}
	for (unsigned i = 0; i < TLS_C_MAX; i++) /* the server's and the relay's client side */
		__atomic_store_n(&d->w->stats.c[DP_C_TLS_HANDSHAKES + i],
				 __atomic_load_n(&d->tls_stats.c[i], __ATOMIC_RELAXED) +
					 (d->relay != NULL ? __atomic_load_n(
								     &relay_tls_stats(d->relay)->c[i],
								     __ATOMIC_RELAXED)
							   : 0),
				 __ATOMIC_RELAXED);
	if (d->relay != NULL) {
		const struct relay_stats *rs = relay_stats(d->relay);

		for (unsigned i = 0; i < RELAY_C_MAX; i++)
			__atomic_store_n(&d->w->stats.c[DP_C_RELAY_MSGS_QUEUED + i],
					 __atomic_load_n(&rs->c[i], __ATOMIC_RELAXED),
					 __ATOMIC_RELAXED);
	}
	timer_arm_ms(&d->w->timers, t, rte_rdtsc(), STATS_SYNC_MS);
}

static void listener_config(struct smtpd *d, struct smtpd_listener *l,
			    const struct cfg_listener *c, int64_t wall_offset_ms)
{
	struct smtp_server_config *s = &l->scfg;

	l->d = d;
	l->cfg = c;
	l->hooks = (struct smtp_hooks){.mail_check = hook_mail, .rcpt_check = hook_rcpt};
	/* RFC 3207: offered in EHLO where a certificate is configured */
	if (c->tls == CFG_LISTENER_TLS_STARTTLS &&
	    tls_ctx_has_server(l->tls != NULL ? l->tls : d->tls))
		l->hooks.starttls = smtpd_tls_hook_starttls;
	if (c->auth) { /* RFC 4954; offered under TLS only unless auth_plaintext */
		l->hooks.auth = hook_auth;
		l->hooks.auth_mechs = SMTP_AUTH_MECHS;
		l->hooks.connect_check = hook_connect;
	}
	smtp_server_config_default(s);
	s->auth_lines = d->auth_lines; /* sessions reserve a command line, not 12290 octets */
	s->auth_requires_tls = !c->auth_plaintext;
	s->hostname = c->hostname != NULL ? c->hostname : d->hostname;
	s->max_message_size = c->limits.max_message_size;
	s->max_rcpts = c->limits.max_recipients;
	s->max_errors = c->limits.max_errors;
	s->max_cmd_line = c->limits.command_line;
	s->max_text_line = c->limits.text_line;
	s->max_input_no_crlf = c->limits.input_no_crlf;
	s->greeting_pause_ms = c->greeting_pause_ms;
	s->normalize_bare_eol = c->normalize_bare_eol;
	s->wall_offset_ms = wall_offset_ms;
	if (c->ack == CFG_ACK_STORE) {
		s->sink = &store_sink;
		s->sink_arg = l;
	} else if (c->ack == CFG_ACK_CUT_THROUGH) {
		s->sink = &cut_sink;
		s->sink_arg = l;
		l->hooks.tx_end = cut_tx_end;
		/* RFC 2920: the client's RCPT group goes to the next hop as one */
		s->rcpt_pending_max = ct_pipe_max();
		/* NOTIFY/ORCPT/RET/ENVID are not passed on to the next hop: not offered */
		s->features &= ~(uint32_t)SMTP_F_DSN;
	} else {
		s->sink = &smtp_discard_sink_ops;
		s->sink_arg = NULL;
	}
	s->hooks = &l->hooks;
	s->hooks_arg = l;
}

/*
 * Opens this worker's spool shard when a listener stores mail: recovery
 * runs here, before the worker loop (it may block), and says what it found.
 */
/* The spool found a message to deliver (recovery at open, a detached commit). */
static void spool_requeue(void *arg, struct spool_shard *sh, struct spool_msg *m)
{
	struct smtpd *d = arg;

	if (d->relay != NULL) /* NULL while the shard closes: it stays for the next start */
		relay_submit(d->relay, sh, m);
}

static int spool_start(struct smtpd *d)
{
	const struct cfg *cfg = d->w->dp->cfg;
	struct spool_config sc;
	struct spool_recovery rep;
	bool store = false;

	spool_config_default(&sc);
	sc.max_message = 0;
	sc.max_rcpts = 0;
	sc.max_tx = 0;
	for (unsigned i = 0; i < cfg->n_listeners; i++) {
		const struct cfg_listener *l = &cfg->listeners[i];

		if (l->ack != CFG_ACK_STORE)
			continue;
		store = true;
		sc.max_message = RTE_MAX(sc.max_message,
					 l->limits.max_message_size + (uint32_t)SMTP_RECEIVED_MAX);
		sc.max_rcpts = RTE_MAX(sc.max_rcpts, l->limits.max_recipients);
		sc.max_tx += l->limits.sessions;
	}
	if (!store)
		return 0;
	sc.dir = cfg->spool.directory;
	sc.shard_id = d->w->id;
	sc.commit_window_us = cfg->spool.commit_window_us;
	sc.commit_bytes = cfg->spool.commit_bytes_kb * 1024u;
	sc.size_limit = (uint64_t)cfg->spool.size_limit_mb * (1u << 20) / d->w->dp->n_workers;
	sc.segment_size = cfg->spool.segment_mb * (1u << 20);
	sc.staging_bytes = cfg->spool.staging_mb * (1u << 20);
	sc.max_messages = cfg->spool.max_messages;
	sc.probe_interval_us = cfg->spool.probe_interval_ms * 1000u;
	sc.requeue = spool_requeue;
	sc.requeue_arg = d;
	/* before the shard opens: its recovery hands the relay what it finds */
	d->relay = relay_new(d->w);
	if (d->relay == NULL) {
		int e = errno ? errno : ENOMEM;

		fprintf(stderr, "mxgate-dp: worker %u: relay: %s\n", d->w->id,
			e == EINVAL ? "the relay: section is not usable" : strerror(e));
		return -e;
	}
	relay_set_snap_tls(d->relay, snap_client_tls);
	d->spool_high_water = sc.size_limit / 100 * cfg->spool.high_water_percent;
	d->slow_commit_tsc = d->tsc_per_ms * cfg->spool.commit_latency_ms;
	d->spool = spool_shard_open(&sc, &rep);
	if (d->spool == NULL) {
		int e = errno ? errno : EIO;

		fprintf(stderr, "mxgate-dp: worker %u: spool %s: %s\n", d->w->id, sc.dir,
			rep.error[0] ? rep.error : strerror(e));
		return -e;
	}
	printf("mxgate-dp: worker %u: spool %s/%u recovered in %.3f s: %" PRIu64
	       " segments, %" PRIu64 " messages, %" PRIu64 " requeued, %" PRIu64
	       " torn tails, %" PRIu64 " damaged regions, %" PRIu64 " quarantined%s%s\n",
	       d->w->id, sc.dir, sc.shard_id, (double)rep.duration_us / 1e6, rep.segments,
	       rep.messages, rep.requeued, rep.torn_tails, rep.corrupt, rep.quarantined,
	       rep.error[0] ? "; " : "", rep.error);
	fflush(stdout);
	return 0;
}

int smtpd_start(struct dp_worker *w)
{
	const struct cfg *cfg = w->dp->cfg;
	char name[RTE_MEMPOOL_NAMESIZE];
	struct timespec ts;
	struct smtpd *d;
	size_t size = 0;
	unsigned n = 0;
	int rc;

	if (cfg->n_listeners == 0)
		return 0;
	int socket = (int)rte_lcore_to_socket_id(w->lcore_id);
	d = rte_zmalloc_socket("smtpd", sizeof(*d), RTE_CACHE_LINE_SIZE, socket);
	if (d == NULL)
		return -ENOMEM;
	w->smtpd = d;
	d->w = w;
	d->tsc_per_ms = RTE_MAX(w->dp->hz / 1000, (uint64_t)1);
	d->tsc_per_us = RTE_MAX(w->dp->hz / 1000000, (uint64_t)1);
	d->per_ms = rte_reciprocal_value_u64(d->tsc_per_ms);
	d->per_us = rte_reciprocal_value_u64(d->tsc_per_us);
	if (gethostname(d->hostname, sizeof(d->hostname) - 1) != 0 || d->hostname[0] == '\0')
		snprintf(d->hostname, sizeof(d->hostname), "localhost");
	/* queue ids: the worker and a fresh nonce per start keep them apart (queueid.h) */
	smtp_qid_init(&d->ctx.qid, w->id, rte_rand());
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t wall = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	int64_t wall_offset = wall - (int64_t)now_ms(d);

	d->wall_offset_ms = wall_offset;

	char tls_err[256];

	/* before the listeners: their STARTTLS hook asks whether a certificate is there */
	d->tls = tls_ctx_new(&cfg->tls, smtpd_tls_ticket_keys(), tls_err, sizeof(tls_err));
	if (d->tls == NULL) {
		fprintf(stderr, "mxgate-dp: worker %u: tls: %s\n", w->id, tls_err);
		return -EINVAL;
	}
	rc = smtpd_auth_lines_new(cfg, w->id, socket, &d->auth_lines);
	if (rc != 0)
		return rc;
	d->n_listeners = cfg->n_listeners;
	bool cut = false;

	for (unsigned i = 0; i < cfg->n_listeners; i++) {
		listener_config(d, &d->l[i], &cfg->listeners[i], wall_offset);
		d->l[i].root = cfg;
		size = RTE_MAX(size, smtp_server_size(&d->l[i].scfg));
		n += cfg->listeners[i].limits.sessions;
		cut |= cfg->listeners[i].ack == CFG_ACK_CUT_THROUGH;
	}
	d->engine_size = size;
	if (cut) /* every element can hold a cut-through session's next-hop side */
		size = RTE_ALIGN_CEIL(size, 16) + ct_size();
	snprintf(name, sizeof(name), "mx_smtpd_%u", w->id);
	d->pool = rte_mempool_create(name, n, sizeof(struct smtpd_sess) + size, 0, 0, NULL, NULL,
				     NULL, NULL, socket,
				     RTE_MEMPOOL_F_SP_PUT | RTE_MEMPOOL_F_SC_GET);
	if (d->pool == NULL)
		return -ENOMEM;
	for (unsigned i = 0; i < d->n_listeners; i++) {
		struct tcp_listen_opts o = {
			.ops = &smtpd_ops,
			.arg = &d->l[i],
			.cc = cfg->dp.tcp.cc == CFG_CC_CUBIC ? TCP_CC_CUBIC : TCP_CC_NEWRENO,
		};
		rc = tcp_listen(w->tcp, 0, rte_cpu_to_be_16((uint16_t)d->l[i].cfg->port), &o);
		if (rc != 0)
			return rc;
	}
	rc = spool_start(d);
	if (rc != 0)
		return rc;
	timer_init(&d->stats_timer, stats_sync, d);
	timer_arm_ms(&w->timers, &d->stats_timer, rte_rdtsc(), STATS_SYNC_MS);
	return 0;
}

void smtpd_snap_free(struct dp *dp, void *view)
{
	struct smtpd_view *v = view;

	if (v == NULL)
		return;
	for (unsigned i = 0; i < dp->n_workers; i++) {
		free(v->l[i]);
		tls_ctx_free(v->tls[i]); /* sessions' SSLs hold their own references */
	}
	free(v);
}

void *smtpd_snap_new(struct dp *dp, const struct cfg *cfg, char *err, size_t errlen)
{
	struct smtpd_view *v = calloc(1, sizeof(*v));

	if (v == NULL)
		goto nomem;
	if (cfg == dp->cfg)
		return v; /* the start-up config: every worker's own listeners */
	for (unsigned w = 0; w < dp->n_workers; w++) {
		struct smtpd *d = dp->workers[w]->smtpd;

		if (d == NULL)
			continue; /* no listeners on this worker: no sessions either */
		if (cfg->n_listeners != d->n_listeners) {
			snprintf(err, errlen, "listeners: %u, started with %u", cfg->n_listeners,
				 d->n_listeners);
			goto restart;
		}
		v->l[w] = calloc(d->n_listeners, sizeof(*v->l[w]));
		if (v->l[w] == NULL)
			goto nomem;
		char tls_err[200];

		v->tls[w] = tls_ctx_new(&cfg->tls, smtpd_tls_ticket_keys(), tls_err, sizeof(tls_err));
		if (v->tls[w] == NULL) {
			snprintf(err, errlen, "tls: %s", tls_err);
			smtpd_snap_free(dp, v);
			errno = EINVAL;
			return NULL;
		}
		for (unsigned i = 0; i < d->n_listeners; i++) {
			struct smtpd_listener *l = &v->l[w][i];
			size_t need;

			l->tls = v->tls[w]; /* before listener_config(): STARTTLS is offered by it */

			listener_config(d, l, &cfg->listeners[i], d->wall_offset_ms);
			l->root = cfg;
			/* the session pool's elements were sized at start (smtpd_start) */
			need = smtp_server_size(&l->scfg);
			if (need > d->engine_size) {
				snprintf(err, errlen,
					 "listeners[%u].limits: max_recipients %u and command_line "
					 "%u need %zu octets a session, %zu were reserved at start",
					 i, cfg->listeners[i].limits.max_recipients,
					 cfg->listeners[i].limits.command_line, need,
					 d->engine_size);
				goto restart;
			}
		}
	}
	/* the password file is read again on every reload (mxgatectl user add, then reload) */
	switch (smtpd_auth_reload(cfg, err, errlen)) {
	case 0:
		break;
	case -ENOENT:
		goto restart;
	default:
		smtpd_snap_free(dp, v);
		errno = EINVAL;
		return NULL;
	}
	return v;
restart:
	smtpd_snap_free(dp, v);
	errno = E2BIG;
	return NULL;
nomem:
	smtpd_snap_free(dp, v);
	snprintf(err, errlen, "out of memory for the listeners of a config snapshot");
	errno = ENOMEM;
	return NULL;
}

unsigned smtpd_sessions_open(const struct dp_worker *w)
{
	const struct smtpd *d = __atomic_load_n(&w->smtpd, __ATOMIC_ACQUIRE);

	return d != NULL && d->pool != NULL ? rte_mempool_in_use_count(d->pool) : 0;
}

static void auth_resume(struct smtp_session *s)
{
	sess_wake(smtp_server_udata(s)); /* may close and free the session */
}

unsigned smtpd_poll(struct dp_worker *w, uint64_t now)
{
	struct smtpd *d = w->smtpd;

	if (d == NULL)
		return 0;
	/* AUTH answers from the authentication thread: each resumes its session */
	unsigned work = smtpd_auth_poll(w, rte_reciprocal_divide_u64(now, &d->per_ms), auth_resume);

	if (d->spool == NULL)
		return work;
	work += spool_poll(d->spool, rte_reciprocal_divide_u64(now, &d->per_us));

	if (d->relay != NULL)
		work += relay_poll(d->relay, now);
	return work;
}

int smtpd_init(struct dp *dp)
{
	const struct cfg_client_limits *lim = &dp->cfg->policy.client_limits;

	bool auth = false;
	int rc;

	dp->clients = NULL;
	for (unsigned i = 0; i < dp->cfg->n_listeners; i++)
		auth |= dp->cfg->listeners[i].auth;
	rc = smtpd_auth_init(dp->cfg, dp->cfg->dp.n_workers); /* dp_setup() comes later */
	if (rc != 0)
		return rc;
	/* AUTH failures are counted per address there too (auth.max_failures) */
	if (dp->cfg->n_listeners == 0 || (!auth && lim->connections == 0 &&
					  lim->connection_rate == 0 && lim->message_rate == 0))
		return 0;
	dp->clients = client_table_new(lim, rte_rand());
	return dp->clients != NULL ? 0 : -ENOMEM;
}

void smtpd_fini(struct dp *dp)
{
	smtpd_auth_fini(dp->cfg->dp.n_workers);
	client_table_free(dp->clients);
	dp->clients = NULL;
}

void smtpd_drain(struct dp_worker *w)
{
	struct smtpd *d = w->smtpd;

	if (d == NULL)
		return;
	relay_free(d->relay); /* its connections go before the stack; what it held stays spooled */
	d->relay = NULL;
	ct_pool_drain(w); /* so do cut-through's kept ones */
}

void smtpd_stop(struct dp_worker *w)
{
	struct smtpd *d = w->smtpd;

	if (d == NULL)
		return;
	w->smtpd = NULL;
	timer_cancel(&d->w->timers, &d->stats_timer);
	spool_shard_close(d->spool); /* the sessions are gone: commits left were detached */
	ct_pool_free(w);
	tls_ctx_free(d->tls);
	rte_mempool_free(d->pool);
	smtpd_auth_lines_free(d->auth_lines); /* after the sessions that borrowed from it */
	rte_free(d);
}

/* ---- mxgatectl sessions and queue (dp->svc_cmd) ---- */

/*
 * A page of W's sessions, newest first: those with an id below the cursor
 * (0: from the newest). The next page starts below the last id sent.
 */
static int sessions_page(struct smtpd *d, struct dp_svc_page *p)
{
	uint64_t now = rte_rdtsc();
	char buf[64];

	for (struct smtpd_sess *ss = d->live; ss != NULL; ss = ss->live_next) {
		const struct smtp_session *e = engine(ss);
		const uint8_t *a = (const uint8_t *)&ss->raddr;
		struct smtp_str helo = smtp_server_helo(e);
		enum smtp_state st = smtp_server_state(e);

		if (p->cursor != 0 && ss->id >= p->cursor)
			continue;
		dp_svc_int(p, "id", (int64_t)ss->id);
		snprintf(buf, sizeof(buf), "%u.%u.%u.%u:%u", a[0], a[1], a[2], a[3], ss->rport);
		dp_svc_str(p, "client", buf);
		dp_svc_str(p, "listener", ss->l->cfg->name);
		dp_svc_int(p, "port", ss->l->cfg->port);
		dp_svc_str(p, "state", st < SMTP_ST_MAX ? smtp_state_names[st] : "?");
		dp_svc_int(p, "age_ms", (int64_t)((now - ss->start_tsc) / d->tsc_per_ms));
		dp_svc_int(p, "bytes_in", (int64_t)ss->bytes_in);
		dp_svc_int(p, "bytes_out", (int64_t)ss->bytes_out);
		dp_svc_int(p, "messages", ss->msgs);
		snprintf(buf, sizeof(buf), "%.*s", (int)RTE_MIN(helo.len, sizeof(buf) - 1),
			 helo.len ? (const char *)helo.p : "");
		dp_svc_str(p, "helo", buf);
		dp_svc_int(p, "tls", smtp_server_tls(e));
		dp_svc_int(p, "auth", smtp_server_authenticated(e));
		bool more = ss->live_next != NULL;
		if (!dp_svc_row_end(p, more ? ss->id : DP_SVC_END))
			break;
	}
	return 0;
}

static void svc_finish(void *cmd, int rc)
{
	dp_cmd_finish(cmd, rc);
}

void smtpd_svc_cmd(struct dp_worker *w, struct dp_cmd *cmd)
{
	struct smtpd *d = w->smtpd;
	struct dp_svc_page *p = &cmd->svc[0];
	int rc;

	if (d == NULL) {
		snprintf(p->error, sizeof(p->error), "worker %u runs no SMTP listeners", w->id);
		dp_cmd_finish(cmd, -ENOTSUP);
		return;
	}
	if (p->op == DP_SVC_SESSIONS) {
		rc = sessions_page(d, p);
	} else if (d->relay == NULL) {
		snprintf(p->error, sizeof(p->error),
			 "no delivery queue: no listener stores mail (ack: store)");
		rc = -ENOTSUP;
	} else {
		rc = relay_admin_page_async(relay_engine(d->relay), p, svc_finish, cmd);
		if (rc == -EINPROGRESS)
			return; /* show reads the envelope back first: svc_finish() comes */
	}
	dp_cmd_finish(cmd, rc);
}
