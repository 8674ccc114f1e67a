/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Cut-through (cutthrough.h): a small SMTP client that runs one next-hop
 * transaction in step with the client's. The client engine of relay
 * (smtp/client.h) takes a whole envelope at once and reports recipients
 * only when they are final; cut-through must send each RCPT as the client
 * sends it and repeat the next hop's answer at once, so this file speaks
 * to the next hop itself, with the shared pieces: the reply line parser
 * (client_reply.h), the EHLO keyword reader and dot-stuffing
 * (client_stuff.h). The engine hands over every RCPT of the client's
 * pipelined group at once (smtp_server_config.rcpt_pending_max, RFC 2920
 * §3.1); they queue in cmd[] and go to the hop as one write when the feed
 * that brought them is done (ct_flush()) -- with MAIL when the hop is not
 * in a transaction yet -- if it offers PIPELINING, else one at a time. The
 * hop's replies come back in order and are mirrored in order (rres[]).
 *
 * Lifetime: the next hop's connection has CT as its TCP arg until it is let
 * go of. A transaction that ended cleanly -- a final reply, a refused MAIL
 * or DATA, or the client's RSET in the envelope phase (then with RSET) --
 * gives it to the worker's pool (park(), ct_pool.h), where the next
 * transaction to the same hop takes it (connect_next()) without a new
 * handshake; a pooled connection that turns out dead before its MAIL was
 * answered is replaced by a fresh one, at no cost to the client. Anything
 * else closes it (release()): a FIN without the end of data while content
 * flows (the next hop then drops the partial message), or after a failure.
 * A pooled connection's callbacks go to ct_pool.c (ct_pool_owns()).
 *
 * TLS (RFC 3207, client side) by the hop's route: tls: may or encrypt.
 * After the EHLO reply offers STARTTLS it is sent; on its 220 the handshake
 * runs over memory BIOs (dataplane/tls), then EHLO again with the first
 * one's keywords forgotten (§4.2), and from then on every octet either way
 * goes through TLS. Plaintext after the 220 and before the handshake is
 * never read as a reply (the client side of CVE-2011-0411): the hop fails.
 * "encrypt" (certificate verified against tls.ca_file and the hop's
 * tls_name) never sends mail in the clear: no STARTTLS, a refusal or a
 * failed handshake fail the hop like a refused connection, and with no
 * hop left the client hears 451 4.7.4/4.7.5, worded as the store-mode
 * relay words it (smtp/client.h). "may" goes on in the clear when STARTTLS
 * is not offered or refused, and after a failed handshake makes a new
 * connection in the clear for the transaction (as Postfix's opportunistic
 * level, and relay_sched.c's conn_tls_fallback()). A kept connection keeps
 * its TLS and serves only a hop with the TLS policy it was set up under.
 */
#include "dataplane/smtpd/cutthrough.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_mbuf.h>
#include <rte_random.h>

#include "dataplane/port/port.h"
#include "dataplane/relay/route.h"
#include "dataplane/smtpd/ct_pool.h"
#include "dataplane/smtp/authparam.h"
#include "dataplane/smtp/client.h"
#include "dataplane/smtp/client_reply.h"
#include "dataplane/smtp/client_stuff.h"
#include "dataplane/smtp/fmt.h"
#include "dataplane/smtp/received.h"
#include "dataplane/tls/tls.h"

/* Client input given to the engine at once: content from it must fit the stage, stuffed. */
#define CT_FEED_MAX  2048
#define CT_STAGE_MAX (2 * CT_FEED_MAX + SMTP_RECEIVED_MAX + 2 * SMTP_STUFF_END_MAX + 64)
#define CT_LINE_MAX  512  /* one reply line of the next hop, CRLF included (RFC 5321 §4.5.3.1.5) */
#define CT_TEXT_MAX  400  /* its reply's text kept for mirroring (lines joined) */
#define CT_CMD_MAX   1100 /* MAIL or RCPT line: path (<= 256) and parameters */
#define CT_PIPE_MAX  8	  /* RCPTs of one client group in flight (the engine's rcpt_pending_max) */
#define CT_RCPT_LINE 272  /* "RCPT TO:<" mailbox (<= 254, RFC 5321 §4.5.3.1.3) ">" CRLF */
#define CT_TLS_READ  4096 /* plaintext decrypted at a time from the hop's records */

/* RFC 5321 §4.5.3.2, client side: its minimums, used when the config has none (ms) */
#define CT_T_COMMAND 300000
#define CT_T_DATA    120000
#define CT_T_BLOCK   180000
#define CT_T_DOT     600000

enum ct_state {
	CT_IDLE,       /* no next-hop transaction */
	CT_CONNECTING, /* SYN sent to order[hop] */
	CT_GREETING,   /* waiting for its 220 */
	CT_EHLO,       /* EHLO sent */
	CT_HELO,       /* HELO sent (EHLO refused) */
	CT_STARTTLS,   /* STARTTLS sent: its 220 awaited */
	CT_HANDSHAKE,  /* TLS handshake running; EHLO again when it is done */
	CT_READY,      /* a pooled connection taken: ct_flush() sends MAIL and the RCPTs */
	CT_MAIL,       /* MAIL sent; out_n RCPTs went along (PIPELINING), the rest wait */
	CT_RCPT,       /* out_n RCPTs sent: the client's replies to them are pending */
	CT_TX,	       /* envelope open, no command outstanding */
	CT_DATA,       /* DATA sent, 354 awaited: content waits in the stage */
	CT_CONTENT,    /* content flows */
	CT_DOT,	       /* end of data sent: the final reply awaited */
};

/* A reply decided for the engine: a reply id or the next hop's text. */
struct ct_result {
	bool ready, final; /* final: for the sink's end(); else for MAIL/RCPT */
	int id;		   /* SMTP_R_* when !text */
	bool text;
	uint16_t code;
	char esc[SMTP_ESC_MAX + 1];
	char msg[CT_TEXT_MAX];
	size_t msg_len;
};

struct ct {
	uint8_t kind; /* CT_KIND_SESSION: first (ct_pool.h tells TCP args apart by it) */
	struct dp_worker *w;
	struct smtp_session *s;
	const char *helo;
	const struct cfg_routes *routes; /* the session's config snapshot's (ct_set_routes()) */
	ct_wake_fn wake;
	void *wake_arg;
	struct tcp_conn *tc;
	struct timer timer;
	enum ct_state state;
	uint16_t authid_len;		/* ct_set_authid(): the submitter, or 0 */
	char authid[SMTP_AUTHID_MAX];

	/* the transaction's route: fixed by its first recipient */
	bool routed;
	const struct cfg_mail_route *entry; /* NULL: the smarthost */
	struct route rt;
	unsigned order[CFG_MAX_NEXT_HOPS], hop;
	unsigned ext; /* SMTP_EXT_* of the next hop */
	unsigned txs; /* transactions begun on this connection (MAIL sent) */
	bool reused;  /* taken from the pool: its first MAIL may find it dead */
	/* the client's RCPTs the hop has not answered: cmd[] holds their lines */
	unsigned cmd_n;	  /* lines in cmd[] */
	unsigned out_n;	  /* ... of which the first out_n were sent (sent_len octets) */
	size_t cmd_len, sent_len;
	unsigned rres_head, rres_n; /* decided RCPT replies in rres[], oldest first */

	/* TLS to the next hop (RFC 3207) */
	struct tls_ctx *tls_ctx;     /* the session's snapshot's client context (ct_set_tls()) */
	struct tls_stats *tls_stats; /* the worker's: outlives every connection */
	uint32_t tls_hs_ms;	     /* the handshake's time limit */
	struct tls_conn *tls;	     /* the connection's, from the 220 to STARTTLS on */
	unsigned tls_plain;	     /* hop + 1 of a "may" hop whose handshake failed: it goes
				      * in the clear for this transaction; 0: none */
	uint8_t tls_why;	     /* an "encrypt" hop failed for TLS: SMTP_CR_*, 0: none did */

	int fail;		/* sticky for the transaction: SMTP_R_* every later step gets */
	bool data_refused;	/* the next hop refused DATA: content is dropped, end() mirrors */
	bool end_given;		/* end() came: the end of data is staged behind the content */
	bool blocked;		/* content waits for send space: the data block timer runs */
	struct ct_result res;	/* reply for the engine, waiting for ct_deliver() */
	struct ct_result saved; /* the next hop's refusal of DATA, for end() */

	/* the next hop's reply being read */
	uint16_t line_len;
	bool in_reply; /* a multi-line reply's first lines were read (code is its code) */
	void *handoff; /* on_received(): the pool's arg after park() gave the connection back */
	uint16_t code;
	char esc[SMTP_ESC_MAX + 1];
	char msg[CT_TEXT_MAX];
	size_t msg_len;
	uint8_t line[CT_LINE_MAX];

	char cmd[CT_PIPE_MAX * CT_RCPT_LINE];
	struct ct_result rres[CT_PIPE_MAX];
	struct smtp_stuff stuff;
	size_t stage_len;
	uint8_t stage[CT_STAGE_MAX];
};

size_t ct_size(void)
{
	return sizeof(struct ct);
}

static inline void count(struct ct *ct, enum dp_counter c)
{
	dp_count(&ct->w->stats, c, 1);
}

static uint64_t tsc_per_ms(const struct ct *ct)
{
	return RTE_MAX(ct->w->dp->hz / 1000, (uint64_t)1);
}

static void arm(struct ct *ct, uint64_t ms)
{
	timer_arm_at(&ct->w->timers, &ct->timer, rte_rdtsc() + ms * tsc_per_ms(ct));
}

/*
 * The next hop's waits (RFC 5321 §4.5.3.2) from the relay: section, as the
 * store-mode relay has them: a command's reply (§4.5.3.2.1-2, 4, 7-8), the
 * 354 (§4.5.3.2.3: 2 minutes, never more than a command's), content that
 * does not move (§4.5.3.2.5), the reply to the end of data (§4.5.3.2.6).
 */
static uint64_t secs_or(unsigned s, uint64_t dflt_ms)
{
	return s ? (uint64_t)s * 1000 : dflt_ms;
}

static uint64_t t_command(const struct ct *ct)
{
	return secs_or(ct->w->dp->cfg->relay.command_timeout_s, CT_T_COMMAND);
}

static uint64_t t_data(const struct ct *ct)
{
	return RTE_MIN(t_command(ct), (uint64_t)CT_T_DATA);
}

static uint64_t t_block(const struct ct *ct)
{
	return secs_or(ct->w->dp->cfg->relay.data_block_timeout_s, CT_T_BLOCK);
}

static uint64_t t_dot(const struct ct *ct)
{
	return secs_or(ct->w->dp->cfg->relay.data_end_timeout_s, CT_T_DOT);
}

/*
 * TLS records waiting (the handshake's, encrypted commands and content, an
 * alert) go to TCP as one chain. 0 (nothing waits any more), -EAGAIN (no
 * room: they wait in TLS for writable()), or another error.
 */
static int tls_flush(struct ct *ct)
{
	const uint8_t *p;

	if (ct->tc == NULL)
		return tls_output(ct->tls, &p) == 0 ? 0 : -EPIPE;
	return ct_pool_tls_push(ct->w, ct->tc, ct->tls);
}

/*
 * The connection's TLS ends with it: a close_notify first (RFC 8446 §6.1)
 * when the session is sound and one record fits, never waited for.
 */
static void tls_end(struct ct *ct)
{
	if (ct->tls == NULL)
		return;
	if (ct->tc != NULL && tls_handshake_done(ct->tls) && tls_conn_fail(ct->tls) == TLS_OK) {
		tls_close(ct->tls);
		(void)tls_flush(ct);
	}
	tls_conn_free(ct->tls);
	ct->tls = NULL;
}

/* The next hop's connection is no longer ours: its callbacks see NULL from now on. */
static void release(struct ct *ct)
{
	struct tcp_conn *tc;

	tls_end(ct);
	tc = ct->tc;
	timer_cancel(&ct->w->timers, &ct->timer);
	ct->tc = NULL;
	ct->stage_len = 0;
	if (tc != NULL) {
		tcp_set_arg(tc, NULL);
		tcp_close(tc);
	}
}

/* The route's hop being used or tried. */
static const struct cfg_next_hop *cur_hop(const struct ct *ct)
{
	return &ct->rt.hops[ct->order[ct->hop]];
}

/*
 * The hop's transaction is over, or ends with RSET (RSET true; OWED replies
 * still due to commands sent): the connection goes to the pool, which keeps
 * it or closes it politely (ct_pool_put()). The pool reads what is owed --
 * the reply line begun here, and (on_received()) the rest of the input that
 * brought the reply parking it -- and keeps it for another transaction only
 * once nothing is: a reply left unread would be taken for the next MAIL's.
 */
static void park(struct ct *ct, unsigned owed, bool rset)
{
	struct tcp_conn *tc = ct->tc;
	const struct cfg_next_hop *h = cur_hop(ct);
	struct ct_pool_debt d = {
		.replies = owed,
		.rset = rset,
		.line = ct->line,
		.line_len = ct->line_len,
		.in_code = ct->in_reply ? ct->code : 0,
	};
	struct ct_pool_conn pc = {
		.ext = ct->ext,
		.txs = ct->txs,
		.tls = ct->tls, /* the pool's from here on, with what it still holds to read */
	};

	timer_cancel(&ct->w->timers, &ct->timer);
	ct->tc = NULL;
	ct->tls = NULL;
	ct->stage_len = 0;
	ct->blocked = false;
	ct->line_len = 0;
	ct->in_reply = false;
	if (tc == NULL) {
		tls_conn_free(pc.tls);
		return;
	}
	tcp_set_arg(tc, NULL);
	ct->handoff = ct_pool_put(ct->w, tc, h, &pc, &d);
}

/*
 * Sends P[0..N) to the next hop. 0, -EAGAIN (no room: writable() follows) or another error.
 * Under TLS the octets are taken once no earlier record waits, and their records may wait
 * in TLS for writable(): at most one stage's worth is ever held there.
 */
static int send_raw(struct ct *ct, const void *p, size_t n)
{
	if (ct->tc == NULL)
		return -EPIPE;
	if (ct->tls != NULL) {
		int rc = tls_flush(ct);

		if (rc != 0)
			return rc;
		if (tls_write(ct->tls, p, n) != (ssize_t)n) /* before the handshake: nothing */
			return -EPROTO;
		rc = tls_flush(ct);
		return rc == -EAGAIN ? 0 : rc;
	}
	return ct_pool_send(ct->w, ct->tc, p, n);
}

/* One command line: commands are short and the send buffer is empty when they go. */
static int send_cmd(struct ct *ct, const char *line, size_t n, enum ct_state next, uint64_t t_ms)
{
	int rc = send_raw(ct, line, n);

	if (rc != 0)
		return rc;
	ct->state = next;
	arm(ct, t_ms);
	return 0;
}

static void set_result_id(struct ct *ct, bool final, int id)
{
	ct->res = (struct ct_result){ .ready = true, .final = final, .id = id };
}

/* The next RCPT reply, in command order, for ct_deliver() (R: NULL for ID). */
static void rcpt_result(struct ct *ct, const struct ct_result *r, int id)
{
	struct ct_result *q;

	if (ct->rres_n >= CT_PIPE_MAX) /* ct_rcpt() keeps as many as the engine has pending */
		return;
	q = &ct->rres[(ct->rres_head + ct->rres_n++) % CT_PIPE_MAX];
	if (r != NULL)
		*q = *r;
	else
		*q = (struct ct_result){ .id = id };
	q->ready = true;
	q->final = false;
}

/* Every RCPT the hop has not answered hears R (NULL: ID): the hop is gone or refused MAIL. */
static void fail_waiting(struct ct *ct, const struct ct_result *r, int id)
{
	for (unsigned i = 0; i < ct->cmd_n; i++)
		rcpt_result(ct, r, id);
	ct->cmd_n = ct->out_n = 0;
	ct->cmd_len = ct->sent_len = 0;
}

/* The hop answered the oldest RCPT sent: its line leaves cmd[]. */
static void cmd_pop(struct ct *ct)
{
	const char *e = memchr(ct->cmd, '\n', ct->cmd_len);
	size_t n = e != NULL ? (size_t)(e - ct->cmd) + 1 : ct->cmd_len;

	memmove(ct->cmd, ct->cmd + n, ct->cmd_len - n);
	ct->cmd_len -= n;
	ct->sent_len -= RTE_MIN(n, ct->sent_len);
	ct->cmd_n--;
	ct->out_n--;
}

/*
 * RCPTs waiting in cmd[] go: all of them as one write with PIPELINING (RFC
 * 2920 §3.1), else the next one once none is outstanding. CT_TX becomes
 * CT_RCPT; in CT_MAIL/CT_RCPT they join what is in flight.
 */
static int send_rcpts(struct ct *ct)
{
	size_t n = ct->cmd_len - ct->sent_len;
	bool pipe = (ct->ext & SMTP_EXT_PIPELINING) != 0;

	if (ct->cmd_n == ct->out_n || (!pipe && ct->out_n > 0))
		return 0;
	if (!pipe) {
		const char *e = memchr(ct->cmd + ct->sent_len, '\n', n);
		n = e != NULL ? (size_t)(e - (ct->cmd + ct->sent_len)) + 1 : n;
	}
	int rc = send_raw(ct, ct->cmd + ct->sent_len, n);

	if (rc != 0)
		return rc;
	ct->out_n = pipe ? ct->cmd_n : ct->out_n + 1;
	ct->sent_len += n;
	if (ct->state == CT_TX)
		ct->state = CT_RCPT;
	arm(ct, t_command(ct));
	return 0;
}

/* The reply just read, to be repeated; a 421 (the hop is closing) becomes our 451. */
static void set_result_text(struct ct_result *r, const struct ct *ct, bool final)
{
	*r = (struct ct_result){ .ready = true, .final = final, .text = true };
	r->code = ct->code == 421 ? 451 : ct->code;
	memcpy(r->esc, ct->esc, sizeof(r->esc));
	if (ct->code == 421)
		memcpy(r->esc, "4.4.2", 6);
	memcpy(r->msg, ct->msg, ct->msg_len);
	r->msg_len = ct->msg_len;
}

/* ---- opening a connection: the route's hops in order until one takes us ---- */

static const struct tcp_ops ct_tcp_ops;

static bool port_is_ours(void *arg, uint32_t laddr, uint16_t lport, uint32_t raddr, uint16_t rport)
{
	struct dp_worker *w = arg;

	return port_reply_owner(laddr, lport, raddr, rport, w->dp->n_workers) == w->id;
}

/*
 * The hop being tried is a "may" hop whose handshake failed in this
 * transaction: it gets a connection in the clear, without STARTTLS. Bound
 * to that hop, so no other hop -- an "encrypt" one least of all -- is ever
 * spoken to in the clear because of it.
 */
static bool clear_only(const struct ct *ct)
{
	return ct->tls_plain == ct->hop + 1 && cur_hop(ct)->tls == CFG_HOP_TLS_MAY;
}

/*
 * A connection to the next hop not tried yet: a pooled one (POOLED) when the
 * pool has one, else a new one. Returns 1 (pooled: MAIL may go at once),
 * 0 (connecting), or -ENOENT when no hop is left.
 */
static int connect_next(struct ct *ct, bool pooled)
{
	const struct cfg *cfg = ct->w->dp->cfg;

	for (; ct->hop < ct->rt.n_hops; ct->hop++) {
		const struct cfg_next_hop *h = &ct->rt.hops[ct->order[ct->hop]];
		uint32_t src = net_source_for(&ct->w->net, h->addr);

		ct->line_len = 0;
		ct->in_reply = false;
		ct->msg_len = 0;
		ct->code = 0;
		ct->txs = 0;
		ct->reused = false;
		if (pooled && !clear_only(ct)) { /* one kept under this hop's TLS policy */
			struct ct_pool_conn pc;

			ct->tc = ct_pool_take(ct->w, h, &pc);
			if (ct->tc != NULL) {
				tcp_set_arg(ct->tc, ct);
				ct->ext = pc.ext;
				ct->txs = pc.txs;
				ct->tls = pc.tls;
				ct->reused = true;
				return 1;
			}
		}

		if (src == 0 || tcp_connect(ct->w->tcp, src, h->addr, rte_cpu_to_be_16(h->port),
					    &ct_tcp_ops, ct, port_is_ours, ct->w, &ct->tc) != 0) {
			ct->tc = NULL;
			count(ct, DP_C_SMTPD_CT_HOP_FAILURES);
			continue;
		}
		count(ct, DP_C_SMTPD_CT_CONNECTS);
		ct->state = CT_CONNECTING;
		ct->ext = 0;
		arm(ct, (uint64_t)RTE_MAX(cfg->relay.connect_timeout_s, 1u) * 1000);
		return 0;
	}
	return -ENOENT;
}

/*
 * The hop being set up failed (refused, timed out, said no to the greeting
 * or EHLO): the next one is tried; with none left the RCPT waiting on it
 * hears 451 4.4.1, and so does the rest of the transaction.
 */
static void hop_ready(struct ct *ct);

/* The store-mode relay's words for its own reasons (smtp/client.h), TLS's among them. */
#define CT_REASON_(e, esc, text) [SMTP_CR_##e] = { esc, text },
static const struct {
	const char *esc, *text;
} reasons[SMTP_CR_MAX] = { SMTP_CLIENT_REASONS(CT_REASON_) };
#undef CT_REASON_

/* 451 and why an "encrypt" hop could not be used (WHY: SMTP_CR_TLS_FAILED, _NO_STARTTLS). */
static void tls_result(struct ct_result *r, unsigned why)
{
	*r = (struct ct_result){ .ready = true, .text = true, .code = 451 };
	snprintf(r->esc, sizeof(r->esc), "%s", reasons[why].esc);
	int n = snprintf(r->msg, sizeof(r->msg), "Error: next hop: %s, try again later",
			 reasons[why].text);

	r->msg_len = RTE_MIN((size_t)RTE_MAX(n, 0), sizeof(r->msg) - 1);
}

/*
 * No hop of the route is left: the RCPTs waiting hear 451 4.4.1 -- or, when
 * an "encrypt" hop failed for TLS, why (RFC 3207 §4: such mail never goes
 * in the clear) -- and so does the rest of the transaction.
 */
static void no_hop_left(struct ct *ct)
{
	count(ct, DP_C_SMTPD_CT_UNREACHABLE);
	ct->state = CT_IDLE;
	if (ct->tls_why == 0) {
		ct->fail = SMTP_R_NEXTHOP_UNREACHABLE;
		fail_waiting(ct, NULL, SMTP_R_NEXTHOP_UNREACHABLE);
		return;
	}
	tls_result(&ct->saved, ct->tls_why);
	fail_waiting(ct, &ct->saved, 0);
	ct->saved.ready = false;
	ct->fail = -1; /* see ct_rcpt(): later RCPTs hear the saved text */
}

static void hop_failed(struct ct *ct)
{
	int rc;

	count(ct, DP_C_SMTPD_CT_HOP_FAILURES);
	release(ct);
	ct->hop++;
	rc = connect_next(ct, true);
	if (rc == 0)
		return;
	if (rc == 1) {
		hop_ready(ct);
		return;
	}
	no_hop_left(ct);
}

/*
 * The next hop went away or stopped making sense once the transaction was
 * under way: whatever waits on it gets REPLY, and so does the rest.
 */
static void hop_lost(struct ct *ct, int reply)
{
	enum ct_state st = ct->state;

	if (ct->reused && (st == CT_MAIL || st == CT_READY)) {
		/*
		 * The pooled connection was dead before its MAIL was answered
		 * (it died while idle): that says nothing about the hop or the
		 * message. A fresh connection to the same hop, or the next hops.
		 */
		int rc;

		count(ct, DP_C_SMTPD_CT_POOL_STALE);
		release(ct);
		ct->out_n = 0; /* the RCPTs sent with MAIL go again with the new MAIL */
		ct->sent_len = 0;
		rc = connect_next(ct, false);
		if (rc == 0)
			return;
		no_hop_left(ct);
		return;
	}

	count(ct, reply == SMTP_R_NEXTHOP_TIMEOUT ? DP_C_SMTPD_CT_TIMEOUTS : DP_C_SMTPD_CT_LOST);
	release(ct);
	ct->state = CT_IDLE;
	ct->fail = reply;
	fail_waiting(ct, NULL, reply);
	if (st == CT_DOT || ct->end_given)
		set_result_id(ct, true, reply); /* end() said PENDING: the engine waits for this */
}

/* ---- commands ---- */

static size_t put(char *b, size_t at, const void *p, size_t n)
{
	if (at + n <= CT_CMD_MAX)
		memcpy(b + at, p, n);
	return at + n;
}

static size_t put_u64(char *b, size_t at, uint64_t v)
{
	char t[SMTP_U64_DIGITS];

	return put(b, at, t, smtp_fmt_u64(t, v));
}

/* MAIL FROM with what the client declared that the next hop understands. */
static int send_mail(struct ct *ct)
{
	const struct smtp_tx *tx = smtp_server_tx(ct->s);
	char b[CT_CMD_MAX + sizeof(ct->cmd)]; /* MAIL, and the RCPTs with PIPELINING */
	size_t n = put(b, 0, "MAIL FROM:<", 11);

	n = put(b, n, tx->sender.p, tx->sender.len);
	n = put(b, n, ">", 1);
	if (tx->size && (ct->ext & SMTP_EXT_SIZE)) {
		n = put(b, n, " SIZE=", 6);
		n = put_u64(b, n, tx->size);
	}
	/* without 8BITMIME at the hop, 8-bit goes undeclared (Postfix's default) */
	if (tx->body == SMTP_BODY_8BITMIME && (ct->ext & SMTP_EXT_8BITMIME))
		n = put(b, n, " BODY=8BITMIME", 14);
	if (tx->smtputf8)
		n = put(b, n, " SMTPUTF8", 9);
	if (ct->ext & SMTP_EXT_AUTH) { /* RFC 4954 §5, as the relay's client engine */
		ssize_t al = smtp_authp_format(b + n, SMTP_AUTHP_WIRE_MAX,
					       (struct smtp_str){ (const uint8_t *)ct->authid,
								  ct->authid_len });
		if (al > 0)
			n += (size_t)al;
	}
	n = put(b, n, "\r\n", 2);
	if (n > CT_CMD_MAX)
		return -E2BIG;
	/*
	 * RFC 2920 §3.1: MAIL and the RCPTs may go as one group; their replies
	 * follow MAIL's in order and are mirrored in order. Without PIPELINING
	 * the first RCPT waits for MAIL's 250 (one more round trip).
	 */
	bool pipe = (ct->ext & SMTP_EXT_PIPELINING) != 0;

	if (pipe) {
		memcpy(b + n, ct->cmd, ct->cmd_len);
		n += ct->cmd_len;
	}
	int rc = send_cmd(ct, b, n, CT_MAIL, t_command(ct));

	if (rc == 0) {
		ct->txs++;
		ct->out_n = pipe ? ct->cmd_n : 0;
		ct->sent_len = pipe ? ct->cmd_len : 0;
	}
	return rc;
}

/*
 * The hop greeted us and said EHLO, or a pooled connection was taken: the
 * transaction begins with MAIL (the first RCPT waits in cmd[] for its reply).
 */
static void hop_ready(struct ct *ct)
{
	if (smtp_server_tx(ct->s)->smtputf8 && !(ct->ext & SMTP_EXT_SMTPUTF8)) {
		/* RFC 6531 §3.4: it cannot take this message at all */
		park(ct, 0, false);
		ct->state = CT_IDLE;
		ct->fail = SMTP_R_NEXTHOP_NO_SMTPUTF8;
		count(ct, DP_C_SMTPD_CT_RCPTS_REFUSED);
		fail_waiting(ct, NULL, SMTP_R_NEXTHOP_NO_SMTPUTF8);
		return;
	}
	if (send_mail(ct) == 0)
		return;
	if (ct->reused) { /* the kept one would not take MAIL: a fresh one to the same hop */
		ct->state = CT_MAIL;
		hop_lost(ct, SMTP_R_NEXTHOP_LOST);
		return;
	}
	hop_failed(ct);
}

/* ---- STARTTLS (RFC 3207, client side) ---- */

static int send_ehlo(struct ct *ct)
{
	char b[300];
	size_t hl = strnlen(ct->helo, 255);

	memcpy(b, "EHLO ", 5);
	memcpy(b + 5, ct->helo, hl);
	memcpy(b + 5 + hl, "\r\n", 2);
	return send_cmd(ct, b, hl + 7, CT_EHLO, t_command(ct));
}

/* An "encrypt" hop cannot be used for TLS (WHY: SMTP_CR_*): the next one is tried. */
static void tls_refuse_hop(struct ct *ct, unsigned why)
{
	ct->tls_why = (uint8_t)why;
	hop_failed(ct);
}

/*
 * STARTTLS was refused or its handshake failed. "may": the transaction goes
 * on in the clear -- on this connection after a refusal (RECONNECT false),
 * on a new one after a failed handshake, whose connection is in an unknown
 * state -- and the client sees nothing of it. "encrypt": the hop fails.
 */
static void tls_failed(struct ct *ct, bool reconnect)
{
	count(ct, DP_C_SMTPD_CT_TLS_FAILED);
	if (cur_hop(ct)->tls != CFG_HOP_TLS_MAY) {
		tls_refuse_hop(ct, SMTP_CR_TLS_FAILED);
		return;
	}
	count(ct, DP_C_SMTPD_CT_TLS_FALLBACK);
	if (!reconnect) {
		hop_ready(ct);
		return;
	}
	release(ct);
	ct->tls_plain = ct->hop + 1; /* this hop, this transaction: never another hop */
	if (connect_next(ct, false) == 0)
		return;
	no_hop_left(ct);
}

/*
 * After the EHLO (or HELO) reply: STARTTLS when the hop's policy asks for TLS
 * and it is offered; an "encrypt" hop that does not offer it is not used
 * (RFC 3207 §4); else the transaction begins.
 */
static void after_hello(struct ct *ct)
{
	static const char starttls[] = "STARTTLS\r\n";
	const struct cfg_next_hop *h = cur_hop(ct);

	if (ct->tls == NULL && h->tls != CFG_HOP_TLS_NONE && !clear_only(ct)) {
		if (ct->ext & SMTP_EXT_STARTTLS) {
			count(ct, DP_C_SMTPD_CT_TLS_STARTED);
			if (send_cmd(ct, starttls, sizeof(starttls) - 1, CT_STARTTLS,
				     t_command(ct)) != 0)
				hop_failed(ct);
			return;
		}
		if (h->tls == CFG_HOP_TLS_ENCRYPT) {
			count(ct, DP_C_SMTPD_CT_TLS_NOT_OFFERED);
			tls_refuse_hop(ct, SMTP_CR_NO_STARTTLS);
			return;
		}
	}
	hop_ready(ct);
}

/* The 220 to STARTTLS: the ClientHello goes out; under "encrypt" the hop's name is verified. */
static void tls_begin(struct ct *ct)
{
	const struct cfg_next_hop *h = cur_hop(ct);
	const uint8_t *a = (const uint8_t *)&h->addr;
	char addr[16];

	snprintf(addr, sizeof(addr), "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
	ct->tls = ct->tls_ctx != NULL ? tls_client_new(ct->tls_ctx, ct->tls_stats,
						       h->tls_name[0] ? h->tls_name : addr,
						       h->tls == CFG_HOP_TLS_ENCRYPT)
				      : NULL;
	if (ct->tls == NULL) {
		if (ct->tls_stats != NULL)
			ct->tls_stats->c[TLS_C_TLS_FAIL_OTHER]++;
		tls_failed(ct, true);
		return;
	}
	ct->state = CT_HANDSHAKE;
	arm(ct, ct->tls_hs_ms ? ct->tls_hs_ms : t_command(ct));
	(void)tls_read(ct->tls, NULL, 0); /* writes the ClientHello */
	if (tls_flush(ct) != 0)
		tls_failed(ct, true);
}

/*
 * The handshake is done: EHLO again, the first one's keywords forgotten
 * (RFC 3207 §4.2: the server's may differ under TLS).
 */
static void tls_up(struct ct *ct)
{
	count(ct, DP_C_SMTPD_CT_TLS_OK);
	ct->ext = 0;
	if (send_ehlo(ct) != 0)
		hop_failed(ct);
}

/* ---- the next hop's replies ---- */

/* A whole reply is in (code, esc, msg): what it means where we are. */
static void on_reply(struct ct *ct)
{
	unsigned k = ct->code / 100;

	switch (ct->state) {
	case CT_GREETING:
		if (k == 2 && send_ehlo(ct) == 0)
			return;
		hop_failed(ct);
		return;
	case CT_STARTTLS:
		if (ct->code == 220)
			tls_begin(ct);
		else if (ct->code == 421) /* closing (RFC 5321 §3.8): not a TLS matter */
			hop_failed(ct);
		else /* RFC 3207 §4: 454, or 501 */
			tls_failed(ct, false);
		return;
	case CT_EHLO:
	case CT_HELO:
		if (k == 5 && ct->state == CT_EHLO) { /* RFC 5321 §3.2: fall back to HELO */
			char b[300];
			size_t hl = strnlen(ct->helo, 255);

			memcpy(b, "HELO ", 5);
			memcpy(b + 5, ct->helo, hl);
			memcpy(b + 5 + hl, "\r\n", 2);
			ct->ext = 0;
			if (send_cmd(ct, b, hl + 7, CT_HELO, t_command(ct)) == 0)
				return;
		} else if (k == 2) {
			after_hello(ct);
			return;
		}
		hop_failed(ct);
		return;
	case CT_MAIL:
		if (k == 2 && ct->out_n > 0) {
			ct->state = CT_RCPT; /* the piped RCPTs' replies are next */
			arm(ct, t_command(ct));
			return;
		}
		if (k == 2) { /* no PIPELINING: the first RCPT goes now */
			ct->state = CT_TX;
			timer_cancel(&ct->w->timers, &ct->timer);
			if (send_rcpts(ct) != 0)
				hop_lost(ct, SMTP_R_NEXTHOP_LOST);
			return;
		}
		if (ct->reused && ct->code == 421) { /* a pooled one the hop is closing */
			hop_lost(ct, SMTP_R_NEXTHOP_LOST);
			return;
		}
		/* the sender refused: the RCPTs waiting on it hear why, and so do later ones */
		{
			unsigned owed = ct->out_n; /* no transaction began; piped RCPTs' replies are due */

			set_result_text(&ct->saved, ct, false);
			for (unsigned i = 0; i < ct->cmd_n; i++)
				count(ct, DP_C_SMTPD_CT_RCPTS_REFUSED);
			fail_waiting(ct, &ct->saved, 0);
			ct->saved.ready = false;
			ct->fail = -1; /* see ct_rcpt(): the saved text */
			if (ct->code == 421)
				release(ct);
			else
				park(ct, owed, false);
		}
		ct->state = CT_IDLE;
		return;
	case CT_RCPT:
		/* the reply to the oldest RCPT sent (RFC 2920 §3.1: in order) */
		count(ct, k == 2 ? DP_C_SMTPD_CT_RCPTS_ACCEPTED : DP_C_SMTPD_CT_RCPTS_REFUSED);
		{
			struct ct_result r;

			set_result_text(&r, ct, false);
			rcpt_result(ct, &r, 0);
		}
		cmd_pop(ct);
		if (ct->code == 421) { /* it is closing on us: the rest never get a reply */
			release(ct);
			ct->state = CT_IDLE;
			ct->fail = SMTP_R_NEXTHOP_LOST;
			fail_waiting(ct, NULL, SMTP_R_NEXTHOP_LOST);
			return;
		}
		if (ct->out_n > 0) {
			arm(ct, t_command(ct));
			return;
		}
		ct->state = CT_TX;
		timer_cancel(&ct->w->timers, &ct->timer);
		if (send_rcpts(ct) != 0) /* without PIPELINING, the next one waiting */
			hop_lost(ct, SMTP_R_NEXTHOP_LOST);
		return;
	case CT_DATA:
		if (ct->code == 354) {
			ct->state = CT_CONTENT;
			timer_cancel(&ct->w->timers, &ct->timer);
			return; /* the caller pushes the stage */
		}
		count(ct, DP_C_SMTPD_CT_MESSAGES_REFUSED);
		set_result_text(&ct->saved, ct, true);
		ct->data_refused = true;
		ct->stage_len = 0;
		if (ct->code == 421)
			release(ct);
		else
			park(ct, 0, true); /* the envelope may still be open there */
		ct->state = CT_IDLE;
		if (ct->end_given) {
			ct->res = ct->saved;
			ct->res.ready = true;
		}
		return;
	case CT_DOT:
		count(ct,
		      k == 2 ? DP_C_SMTPD_CT_MESSAGES_ACCEPTED : DP_C_SMTPD_CT_MESSAGES_REFUSED);
		set_result_text(&ct->res, ct, true);
		if (ct->code == 421)
			release(ct);
		else
			park(ct, 0, false); /* the transaction is over (RFC 5321 §4.1.1.4) */
		ct->state = CT_IDLE;
		return;
	default: /* a reply nobody asked for */
		hop_lost(ct, SMTP_R_NEXTHOP_LOST);
		return;
	}
}

/* Appends the text of one reply line to the reply being read (lines joined by a space). */
static void add_text(struct ct *ct, const struct smtp_str *t)
{
	size_t room = sizeof(ct->msg) - ct->msg_len;

	if (ct->msg_len && room > 1) {
		ct->msg[ct->msg_len++] = ' ';
		room--;
	}
	size_t n = RTE_MIN(t->len, room);

	memcpy(ct->msg + ct->msg_len, t->p, n);
	ct->msg_len += n;
}

/* One line of the next hop's (P, N without CRLF). Returns false on a protocol error. */
static bool on_line(struct ct *ct, const uint8_t *p, size_t n)
{
	struct smtp_reply_line l;
	bool first = ct->msg_len == 0 && ct->code == 0;

	if (smtp_reply_parse_line(p, n, &l) != SMTP_RLE_OK)
		return false;
	if (first) {
		ct->code = l.code;
		ct->esc[0] = '\0';
		if (l.esc.len && l.esc.len <= SMTP_ESC_MAX) {
			memcpy(ct->esc, l.esc.p, l.esc.len);
			ct->esc[l.esc.len] = '\0';
		}
	} else if (l.code != ct->code) {
		return false;
	}
	if (ct->state == CT_EHLO && !first) {
		uint64_t size;

		ct->ext |= smtp_ehlo_keyword(l.text.p, l.text.len, &size);
	}
	if (ct->state != CT_EHLO || first)
		add_text(ct, &l.msg);
	ct->in_reply = l.more;
	if (l.more)
		return true;
	on_reply(ct);
	ct->code = 0;
	ct->msg_len = 0;
	return true;
}

/*
 * The hop sent plaintext after its 220 to STARTTLS, before the handshake:
 * never taken for a reply (the client side of CVE-2011-0411, RFC 3207 §5).
 * It is not a hop to trust with this transaction, under either policy.
 */
static void tls_injected(struct ct *ct)
{
	count(ct, DP_C_SMTPD_CT_TLS_FAILED);
	if (cur_hop(ct)->tls == CFG_HOP_TLS_ENCRYPT)
		ct->tls_why = SMTP_CR_TLS_FAILED;
	hop_failed(ct);
}

/*
 * The next hop's octets (CLEAR: as TCP brought them; else decrypted):
 * framed into lines of at most CT_LINE_MAX. Returns the octets read: fewer
 * than N when the connection was let go of (parked, lost) by the reply that
 * ended there.
 */
static size_t hop_input(struct ct *ct, const uint8_t *p, size_t n, bool clear)
{
	struct tcp_conn *tc = ct->tc;
	size_t i;

	for (i = 0; i < n && ct->tc == tc; i++) {
		if (clear && ct->tls != NULL) { /* the 220 to STARTTLS came before these */
			tls_injected(ct);
			return i;
		}
		if (ct->line_len >= CT_LINE_MAX) {
			hop_lost(ct, SMTP_R_NEXTHOP_LOST);
			return i;
		}
		ct->line[ct->line_len++] = p[i];
		if (ct->line_len < 2 || ct->line[ct->line_len - 2] != '\r' ||
		    ct->line[ct->line_len - 1] != '\n')
			continue;
		size_t len = ct->line_len - 2;

		ct->line_len = 0;
		if (!on_line(ct, ct->line, len)) {
			if (ct->state <= CT_HANDSHAKE)
				hop_failed(ct);
			else
				hop_lost(ct, SMTP_R_NEXTHOP_LOST);
			return i + 1;
		}
	}
	return i;
}

/* ---- content ---- */

/*
 * Sends what is staged once the next hop said 354; then, with the end of
 * data among it, waits for the final reply. -EAGAIN keeps it for writable().
 */
static void push(struct ct *ct)
{
	if (ct->state != CT_CONTENT || ct->tc == NULL)
		return;
	if (ct->stage_len) {
		int rc = send_raw(ct, ct->stage, ct->stage_len);

		if (rc == -EAGAIN) {
			/*
			 * The next hop takes nothing (its window is shut, or it
			 * is slow to ACK): the client is held too, so this may
			 * last only data_block_timeout_s (RFC 5321 §4.5.3.2.5),
			 * counted from the first refusal, not from the last.
			 */
			count(ct, DP_C_SMTPD_CT_STALLS);
			if (!ct->blocked) {
				ct->blocked = true;
				arm(ct, t_block(ct));
			}
			return;
		}
		if (rc != 0) {
			hop_lost(ct, SMTP_R_NEXTHOP_LOST);
			return;
		}
		ct->stage_len = 0;
	}
	if (ct->blocked) {
		ct->blocked = false;
		timer_cancel(&ct->w->timers, &ct->timer);
	}
	if (ct->end_given) {
		ct->state = CT_DOT;
		arm(ct, t_dot(ct));
	}
}

size_t ct_budget(const struct ct *ct)
{
	size_t used = ct->stage_len + SMTP_RECEIVED_MAX + SMTP_STUFF_END_MAX;

	/* content of one feed doubles at worst (a line of dots, stuffed) */
	if (ct->stage_len > 0 && ct->state == CT_CONTENT)
		return 0; /* the hop is slow: writable() wakes us */
	if (used >= CT_STAGE_MAX)
		return 0;
	return RTE_MIN((size_t)CT_FEED_MAX, (CT_STAGE_MAX - used) / 2);
}

/* ---- TCP callbacks of the next hop's connection ---- */

static void ct_wake(struct ct *ct)
{
	ct->wake(ct->wake_arg);
}

static void on_connected(struct tcp_conn *tc, int err)
{
	struct ct *ct = tcp_arg(tc);

	if (ct == NULL)
		return;
	if (err != 0) {
		tcp_set_arg(tc, NULL); /* the stack frees tc right after this */
		ct->tc = NULL;
		hop_failed(ct);
		ct_wake(ct);
		return;
	}
	ct->state = CT_GREETING;
	arm(ct, t_command(ct));
}

/* The connection failed or ended (FIN, reset, a TLS error): what that means where CT is. */
static void hop_gone(struct ct *ct)
{
	if (ct->state == CT_HANDSHAKE) {
		tls_peer_closed(ct->tls); /* counted as the hop leaving mid-handshake */
		tls_failed(ct, true);
	} else if (ct->state <= CT_HANDSHAKE && ct->state != CT_IDLE) {
		hop_failed(ct);
	} else if (ct->state != CT_IDLE) {
		hop_lost(ct, SMTP_R_NEXTHOP_LOST);
	} else {
		release(ct);
	}
}

/*
 * Ciphertext from the next hop: into TLS, the handshake driven, plaintext
 * on to hop_input(). A reply that gave the connection to the pool hands it
 * the plaintext after it too, and TLS with what it has not decrypted yet.
 */
static void tls_error(struct ct *ct)
{
	if (ct->state == CT_HANDSHAKE)
		tls_failed(ct, true); /* counted by TLS already, by its reason */
	else
		hop_gone(ct);
}

static void tls_received(struct ct *ct, struct tcp_conn *tc, struct rte_mbuf *data)
{
	uint8_t buf[CT_TLS_READ];
	bool was = tls_handshake_done(ct->tls);

	for (struct rte_mbuf *m = data; m != NULL; m = m->next)
		if (tls_input(ct->tls, rte_pktmbuf_mtod(m, const uint8_t *), m->data_len) != 0) {
			tls_error(ct);
			return;
		}
	while (ct->tc == tc) {
		ssize_t k = tls_read(ct->tls, buf, sizeof(buf));

		if (!was && tls_handshake_done(ct->tls)) {
			was = true;
			tls_up(ct);
			if (ct->tc != tc)
				return;
		}
		if (k > 0) {
			size_t used = hop_input(ct, buf, (size_t)k, false);

			if (ct->tc != tc && ct->handoff != NULL)
				ct_pool_input(ct->handoff, tc, buf + used, (size_t)k - used);
			continue;
		}
		if (k == 0)
			break;
		/* -EPIPE: its close_notify; -EPROTO: failed (TLS counted it; an alert may wait) */
		(void)tls_flush(ct);
		tls_error(ct);
		return;
	}
	if (ct->tc == tc) {
		int rc = tls_flush(ct); /* the handshake's next records */

		if (rc != 0 && rc != -EAGAIN)
			tls_error(ct);
	}
}

static void on_received(struct tcp_conn *tc, struct rte_mbuf *data)
{
	struct ct *ct = tcp_arg(tc);
	struct rte_mbuf *m;
	size_t used = 0;

	tcp_consumed(tc, data->pkt_len); /* every octet is taken at once */
	if (ct != NULL && ct_pool_owns(ct)) {
		ct_pool_received(ct, tc, data, 0);
		rte_pktmbuf_free(data);
		return;
	}
	if (ct == NULL) {
		rte_pktmbuf_free(data);
		return;
	}
	ct->handoff = NULL;
	if (ct->tls != NULL) {
		tls_received(ct, tc, data);
		ct->handoff = NULL;
		rte_pktmbuf_free(data);
		push(ct); /* after a 354 */
		ct_wake(ct);
		return;
	}
	for (m = data; m != NULL && ct->tc == tc; m = m->next) {
		used = hop_input(ct, rte_pktmbuf_mtod(m, const uint8_t *), m->data_len, true);
		if (ct->tc != tc)
			break;
	}
	/*
	 * A reply gave the connection to the pool mid-input (a refused MAIL
	 * with RCPTs pipelined after it): what came with it -- their replies,
	 * often in the same segment -- is the pool's to read, or it would wait
	 * for them in vain.
	 */
	if (m != NULL && ct->handoff != NULL)
		ct_pool_received(ct->handoff, tc, m, used);
	ct->handoff = NULL;
	rte_pktmbuf_free(data);
	push(ct); /* after a 354 */
	ct_wake(ct);
}

static void on_writable(struct tcp_conn *tc)
{
	struct ct *ct = tcp_arg(tc);

	if (ct == NULL || ct_pool_owns(ct))
		return;
	if (ct->tls != NULL) { /* records that waited for room go first */
		int rc = tls_flush(ct);

		if (rc == -EAGAIN)
			return;
		if (rc != 0) {
			hop_gone(ct);
			ct_wake(ct);
			return;
		}
	}
	push(ct);
	ct_wake(ct);
}

static void gone(struct ct *ct)
{
	hop_gone(ct);
	ct_wake(ct);
}

static void on_peer_closed(struct tcp_conn *tc)
{
	struct ct *ct = tcp_arg(tc);

	if (ct == NULL) {
		tcp_close(tc);
		return;
	}
	if (ct_pool_owns(ct)) {
		ct_pool_peer_closed(ct, tc);
		return;
	}
	gone(ct);
}

static void on_closed(struct tcp_conn *tc, enum tcp_close_reason reason)
{
	struct ct *ct = tcp_arg(tc);

	(void)reason;
	if (ct == NULL)
		return;
	if (ct_pool_owns(ct)) {
		ct_pool_closed(ct, tc);
		return;
	}
	tcp_set_arg(tc, NULL);
	ct->tc = NULL;
	gone(ct);
}

static const struct tcp_ops ct_tcp_ops = {
	.connected = on_connected,
	.received = on_received,
	.writable = on_writable,
	.peer_closed = on_peer_closed,
	.closed = on_closed,
};

static void on_timer(struct timer *t, void *arg)
{
	struct ct *ct = arg;

	(void)t;
	if (ct->state == CT_IDLE)
		return;
	if (ct->state == CT_HANDSHAKE) { /* tls.handshake_timeout_ms */
		tls_timed_out(ct->tls);
		tls_failed(ct, true);
	} else if (ct->state <= CT_HANDSHAKE) {
		count(ct, DP_C_SMTPD_CT_TIMEOUTS);
		hop_failed(ct);
	} else {
		hop_lost(ct, SMTP_R_NEXTHOP_TIMEOUT);
	}
	ct_wake(ct);
}

/* ---- the session's side ---- */

void ct_init(struct ct *ct, struct dp_worker *w, struct smtp_session *s, const char *helo,
	     ct_wake_fn wake, void *arg)
{
	memset(ct, 0, offsetof(struct ct, line));
	ct->kind = CT_KIND_SESSION;
	ct->w = w;
	ct->s = s;
	ct->helo = helo;
	ct->wake = wake;
	ct->wake_arg = arg;
	ct->routes = &w->dp->cfg->routes; /* the start-up config's until ct_set_routes() */
	timer_init(&ct->timer, on_timer, ct);
}

void ct_set_routes(struct ct *ct, const struct cfg_routes *routes)
{
	ct->routes = routes;
}

void ct_set_tls(struct ct *ct, struct tls_ctx *t, struct tls_stats *stats, uint32_t handshake_ms)
{
	ct->tls_ctx = t;
	ct->tls_stats = stats;
	ct->tls_hs_ms = handshake_ms;
}

/*
 * Ends the next hop's part of the transaction and forgets the transaction.
 * In the envelope phase RSET ends it there (RFC 5321 §4.1.1.5) and the
 * connection is kept, after the reply still owed to MAIL or RCPT.
 */
static void tx_reset(struct ct *ct)
{
	switch (ct->state) {
	case CT_IDLE:
		break;
	case CT_READY: /* taken from the pool, nothing sent: it goes back as it was */
		park(ct, 0, false);
		break;
	case CT_MAIL: /* MAIL's reply is due, and the pipelined RCPTs' */
		count(ct, DP_C_SMTPD_CT_ABORTED);
		park(ct, 1 + ct->out_n, true);
		break;
	case CT_RCPT: /* the replies to the RCPTs sent are due */
		count(ct, DP_C_SMTPD_CT_ABORTED);
		park(ct, ct->out_n, true);
		break;
	case CT_TX:
		count(ct, DP_C_SMTPD_CT_ABORTED);
		park(ct, 0, true);
		break;
	case CT_DOT: /* it has the whole message: what it does with it is its business */
	default:     /* mid-content: a FIN without the end of data drops it */
		count(ct, DP_C_SMTPD_CT_ABORTED);
		break;
	}
	release(ct);
	ct->state = CT_IDLE;
	ct->routed = false;
	ct->fail = 0;
	ct->data_refused = false;
	ct->end_given = false;
	ct->blocked = false;
	ct->res.ready = false;
	ct->stage_len = 0;
	ct->cmd_n = ct->out_n = 0;
	ct->cmd_len = ct->sent_len = 0;
	ct->rres_n = 0;
	ct->tls_plain = 0;
	ct->tls_why = 0;
}

void ct_fini(struct ct *ct)
{
	tx_reset(ct);
}

void ct_tx_end(struct ct *ct)
{
	tx_reset(ct);
}

int ct_rcpt(struct ct *ct, const struct smtp_tx *tx, const struct smtp_path *rcpt)
{
	struct route rt;
	size_t n;

	(void)tx;
	if (route_lookup(ct->routes, (const char *)rcpt->domain.p, rcpt->domain.len, &rt) != 0) {
		count(ct, DP_C_SMTPD_UNROUTABLE);
		return SMTP_R_UNROUTABLE;
	}
	if (ct->fail > 0)
		return ct->fail;
	if (ct->fail < 0) { /* the next hop refused the sender: each RCPT hears it */
		if (ct->rres_n >= CT_PIPE_MAX)
			return SMTP_R_LOCAL_ERROR;
		rcpt_result(ct, &ct->saved, 0);
		return SMTP_HOOK_PENDING;
	}
	if (ct->routed && rt.entry != ct->entry) {
		count(ct, DP_C_SMTPD_CT_OTHER_ROUTE);
		return SMTP_R_NEXTHOP_OTHER_ROUTE;
	}
	if (9 + rcpt->mailbox.len + 3 > CT_RCPT_LINE)
		return SMTP_R_RCPT_TOO_LONG;
	/* the engine has at most CT_PIPE_MAX pending (ct_pipe_max()): a guard, not a limit */
	if (ct->cmd_n + ct->rres_n >= CT_PIPE_MAX ||
	    ct->cmd_len + 9 + rcpt->mailbox.len + 3 > sizeof(ct->cmd))
		return SMTP_R_LOCAL_ERROR;
	/* queued: ct_flush() sends the feed's RCPTs together (or MAIL takes them along) */
	n = ct->cmd_len;
	memcpy(ct->cmd + n, "RCPT TO:<", 9);
	memcpy(ct->cmd + n + 9, rcpt->mailbox.p, rcpt->mailbox.len);
	memcpy(ct->cmd + n + 9 + rcpt->mailbox.len, ">\r\n", 3);
	ct->cmd_len = n + 9 + rcpt->mailbox.len + 3;
	ct->cmd_n++;
	if (ct->routed)
		return SMTP_HOOK_PENDING;
	ct->routed = true;
	ct->entry = rt.entry;
	ct->rt = rt;
	ct->hop = 0;
	route_order(&rt, rte_rand(), ct->order);
	ct->tls_plain = 0;
	ct->tls_why = 0;
	int rc = connect_next(ct, true);
	if (rc < 0) {
		count(ct, DP_C_SMTPD_CT_UNREACHABLE);
		ct->fail = SMTP_R_NEXTHOP_UNREACHABLE;
		ct->cmd_n = 0;
		ct->cmd_len = 0;
		return SMTP_R_NEXTHOP_UNREACHABLE;
	}
	if (rc == 1)
		ct->state = CT_READY; /* a pooled connection: ct_flush() sends MAIL and the group */
	return SMTP_HOOK_PENDING;
}

unsigned ct_pipe_max(void)
{
	return CT_PIPE_MAX;
}

void ct_flush(struct ct *ct)
{
	if (ct->state == CT_READY) {
		hop_ready(ct);
		return;
	}
	if (ct->cmd_n == ct->out_n)
		return;
	if (ct->state == CT_TX ||
	    ((ct->state == CT_MAIL || ct->state == CT_RCPT) && (ct->ext & SMTP_EXT_PIPELINING)))
		if (send_rcpts(ct) != 0)
			hop_lost(ct, SMTP_R_NEXTHOP_LOST);
}

void ct_set_authid(struct ct *ct, const char *id, size_t len)
{
	ct->authid_len = len <= sizeof(ct->authid) ? (uint16_t)len : 0;
	memcpy(ct->authid, id, ct->authid_len);
}

int ct_begin(struct ct *ct, struct smtp_tx *tx)
{
	static const char data[] = "DATA\r\n";

	(void)tx;
	if (ct->fail > 0)
		return ct->fail;
	if (ct->state != CT_TX)
		return SMTP_R_LOCAL_ERROR;
	smtp_stuff_init(&ct->stuff, true); /* BDAT from the client goes on as DATA */
	ct->stage_len = 0;
	ct->end_given = false;
	ct->data_refused = false;
	ct->blocked = false;
	if (send_cmd(ct, data, sizeof(data) - 1, CT_DATA, t_data(ct)) != 0) {
		hop_lost(ct, SMTP_R_NEXTHOP_LOST);
		return SMTP_R_NEXTHOP_LOST;
	}
	return SMTP_R_NONE;
}

int ct_chunk(struct ct *ct, struct smtp_tx *tx, const uint8_t *p, size_t n)
{
	(void)tx;
	if (ct->data_refused)
		return SMTP_R_NONE; /* read and dropped: end() repeats the refusal */
	if (ct->fail > 0)
		return ct->fail;
	if (ct->state != CT_DATA && ct->state != CT_CONTENT)
		return SMTP_R_LOCAL_ERROR;
	size_t out;
	size_t used = smtp_stuff(&ct->stuff, p, n, ct->stage + ct->stage_len,
				 CT_STAGE_MAX - SMTP_STUFF_END_MAX - ct->stage_len, &out);

	ct->stage_len += out;
	if (used < n) /* ct_budget() keeps this from happening */
		return SMTP_R_LOCAL_ERROR;
	push(ct);
	return ct->fail > 0 ? ct->fail : SMTP_R_NONE;
}

int ct_end(struct ct *ct, struct smtp_tx *tx)
{
	(void)tx;
	if (ct->data_refused) {
		ct->res = ct->saved;
		ct->res.ready = true;
		return SMTP_SINK_PENDING;
	}
	if (ct->fail > 0)
		return ct->fail;
	if (ct->state != CT_DATA && ct->state != CT_CONTENT)
		return SMTP_R_LOCAL_ERROR;
	ct->stage_len += smtp_stuff_end(&ct->stuff, ct->stage + ct->stage_len);
	ct->end_given = true;
	push(ct);
	if (ct->fail > 0) /* lost while pushing: hop_lost() left no result for us */
		return ct->fail;
	return SMTP_SINK_PENDING;
}

static struct smtp_reply_text reply_of(const struct ct_result *r)
{
	return (struct smtp_reply_text){
		.code = r->code,
		.esc = r->esc,
		.esc_len = strlen(r->esc),
		.text = r->msg,
		.text_len = r->msg_len,
	};
}

bool ct_deliver(struct ct *ct, uint64_t now)
{
	bool did = false;

	/* RCPT replies, oldest first: the engine's pending RCPTs are ours in the same order */
	while (ct->rres_n > 0 && smtp_server_pending_cmd(ct->s) == SMTP_V_RCPT) {
		struct ct_result r = ct->rres[ct->rres_head];
		struct smtp_reply_text t = reply_of(&r);

		ct->rres_head = (ct->rres_head + 1) % CT_PIPE_MAX;
		ct->rres_n--;
		did = true;
		smtp_server_cmd_done(ct->s, r.id, r.text ? &t : NULL, now); /* may end the tx */
	}
	struct ct_result *r = &ct->res;

	if (!r->ready || !r->final || smtp_server_state(ct->s) != SMTP_ST_PENDING ||
	    smtp_server_pending_cmd(ct->s) != SMTP_V_UNKNOWN)
		return did;
	struct smtp_reply_text t = reply_of(r);

	r->ready = false;
	if (r->text)
		smtp_server_tx_done_text(ct->s, &t, now);
	else
		smtp_server_tx_done(ct->s, r->id, now);
	return true;
}
