/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The SMTP server session: an explicit state and one command table (Postfix
 * smtpd_cmd_table with OpenSMTPD's check/proceed split). Input is framed
 * into CRLF lines (partial lines are the only thing copied), each line is
 * parsed, checked against the state and the listener's policy, and answered
 * into the output buffer; DATA and BDAT content goes through the scanner to
 * the sink. Protocol errors are replies and counters, never program errors.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/smtp/auth.h"
#include "dataplane/smtp/received.h"
#include "dataplane/smtp/smtp.h"
#include "dataplane/smtp/tx.h"

#define SMTP_C_NAME_(e, name) name,
const char *const smtp_counter_names[SMTP_C_MAX] = { SMTP_COUNTERS(SMTP_C_NAME_) };
#undef SMTP_C_NAME_

const char *const smtp_state_names[SMTP_ST_MAX] = {
	[SMTP_ST_PREGREET] = "PREGREET", [SMTP_ST_CONNECTED] = "CONNECTED",
	[SMTP_ST_HELO] = "HELO",	 [SMTP_ST_MAIL] = "MAIL",
	[SMTP_ST_RCPT] = "RCPT",	 [SMTP_ST_DATA] = "DATA",
	[SMTP_ST_BDAT] = "BDAT",	 [SMTP_ST_CHUNKING] = "CHUNKING",
	[SMTP_ST_PENDING] = "PENDING",	 [SMTP_ST_AUTH] = "AUTH",
	[SMTP_ST_STARTTLS] = "STARTTLS", [SMTP_ST_CLOSED] = "CLOSED",
};

/*
 * Output kept free before a command is looked at: the longest reply one
 * command produces (an EHLO list, or an error reply plus the 421 it can
 * trigger).
 */
#define OUT_RESERVE 2048
#define OUT_MIN	    4096

struct smtp_session {
	const struct smtp_server_config *cfg;
	struct smtp_server_ctx *ctx;
	void *udata;
	enum smtp_state state;
	enum smtp_state bdat_return; /* where a skipped BDAT chunk leaves us */
	uint64_t now, deadline;
	struct smtp_peer peer;
	char client[SMTP_ADDR_LITERAL_MAX];
	uint8_t helo[SMTP_DOMAIN_MAX + 1];
	uint16_t helo_len;
	bool esmtp;  /* EHLO (not HELO) done */
	bool tls;    /* under TLS: implicit, or after STARTTLS */
	bool authed; /* AUTH succeeded */
	unsigned errors, junk;

	/* command line framing */
	uint32_t line_len;  /* partial line held in line[] */
	bool discarding;    /* inside an over-long line, waiting for its CRLF */
	bool discard_cr;    /* ... and the last octet seen was CR */
	uint64_t discarded; /* octets of that line so far */

	/* content */
	struct smtp_data_scan scan;
	uint64_t bdat_left, bdat_size;
	bool bdat_last, bdat_skip; /* skip: a refused chunk, read and dropped */
	int fail;		   /* reply that will refuse the message being received */

	/* a hook's MAIL/RCPT reply that comes later (SMTP_HOOK_PENDING) */
	enum smtp_verb pend_cmd; /* SMTP_V_UNKNOWN: none (a PENDING state is the sink's end) */
	bool pend_full;		 /* the pending RCPT did not fit the envelope: 452 whatever comes */

	/*
	 * RCPTs of a pipelined group whose hook replies are pending at once
	 * (cfg->rcpt_pending_max > 1), in command order. Each one's reply goes
	 * into out[] at OFF when it comes; what lies after the first one's OFF
	 * (replies to later commands) is held back until then (RFC 2920 §3.1:
	 * replies in command order).
	 */
	struct {
		uint32_t off; /* where its reply goes in out[] */
		uint32_t id;  /* tx.rcpt_attempts when the hook was asked */
		int32_t ri;   /* its place in tx.rcpt; -1: it did not fit the envelope */
	} grp[SMTP_RCPT_PENDING_MAX];
	unsigned grp_n;
	bool grp_wait; /* a command after the group waits for its replies (state PENDING) */

	/* replies not sent yet */
	uint32_t out_len, out_size;

	uint8_t *line;	   /* line_own, or a buffer lent by cfg->auth_lines for a long AUTH line */
	uint8_t *line_own; /* in the session's memory: own_line_cap() octets */
	uint8_t *out;
	char *hdr; /* the Received: field of the current message */
	struct smtp_tx tx;
};

/* ---- buffers lent for long AUTH lines (smtp.h) --------------------------------------------- */

struct smtp_line_pool {
	unsigned n, n_free;
	uint8_t **free; /* free[0..n_free): buffers not lent */
};

#define LINE_POOL_BUF (((size_t)SMTP_AUTH_LINE_MAX + 15) & ~(size_t)15)
#define LINE_POOL_HDR                                                                              \
	((sizeof(struct smtp_line_pool) + 15) & ~(size_t)15)

size_t smtp_line_pool_size(unsigned n)
{
	return LINE_POOL_HDR + (((size_t)n * sizeof(uint8_t *) + 15) & ~(size_t)15) +
	       (size_t)n * LINE_POOL_BUF;
}

struct smtp_line_pool *smtp_line_pool_init(void *mem, unsigned n)
{
	struct smtp_line_pool *p = mem;
	uint8_t *m = (uint8_t *)mem + LINE_POOL_HDR;

	p->n = p->n_free = n;
	p->free = (uint8_t **)m;
	m += ((size_t)n * sizeof(uint8_t *) + 15) & ~(size_t)15;
	for (unsigned i = 0; i < n; i++)
		p->free[i] = m + (size_t)i * LINE_POOL_BUF;
	return p;
}

unsigned smtp_line_pool_available(const struct smtp_line_pool *p)
{
	return p->n_free;
}

static uint8_t *line_pool_get(struct smtp_line_pool *p)
{
	return p->n_free != 0 ? p->free[--p->n_free] : NULL;
}

/* S's line is back in its own buffer; call only with nothing held (line_len 0). */
static void line_return(struct smtp_session *s)
{
	struct smtp_line_pool *p = s->cfg->auth_lines;

	if (s->line == s->line_own)
		return;
	p->free[p->n_free++] = s->line;
	s->line = s->line_own;
}

/* ---- small helpers ------------------------------------------------------------------------ */

static inline void count(struct smtp_session *s, enum smtp_counter c)
{
	smtp_count(&s->ctx->stats, c, 1);
}

static inline size_t out_free(const struct smtp_session *s)
{
	return s->out_size - s->out_len;
}

static const struct smtp_hooks no_hooks;

static inline const struct smtp_hooks *hooks(const struct smtp_session *s)
{
	return s->cfg->hooks ? s->cfg->hooks : &no_hooks;
}

static int64_t wall_s(const struct smtp_session *s)
{
	return ((int64_t)s->now + s->cfg->wall_offset_ms) / 1000;
}

static uint32_t state_timeout(const struct smtp_session *s, enum smtp_state st)
{
	const struct smtp_timeouts *t = &s->cfg->timeout_ms;
	switch (st) {
	case SMTP_ST_CONNECTED:
		return t->initial;
	case SMTP_ST_MAIL:
		return t->mail;
	case SMTP_ST_RCPT:
		return t->rcpt;
	case SMTP_ST_DATA:
		return t->data_init;
	case SMTP_ST_BDAT:
		return t->data_block;
	case SMTP_ST_PENDING:
		return s->pend_cmd == SMTP_V_MAIL ? t->mail :
		       s->pend_cmd == SMTP_V_RCPT || s->grp_wait ? t->rcpt :
		       s->pend_cmd == SMTP_V_AUTH ? t->command : t->data_term;
	default:
		return t->command;
	}
}

/* Enters ST; the state's timeout starts now (RFC 5321 §4.5.3.2). */
static void set_state(struct smtp_session *s, enum smtp_state st)
{
	s->state = st;
	s->deadline = st == SMTP_ST_CLOSED ? UINT64_MAX : s->now + state_timeout(s, st);
}

/* One reply line; ARG fills "%s" (sanitised by the formatter). */
static void reply_line(struct smtp_session *s, int id, const char *arg, size_t arglen, char sep)
{
	size_t n =
		smtp_reply_format((char *)s->out + s->out_len, out_free(s), id, arg, arglen, sep);
	s->out_len += (uint32_t)n;
	if (sep == '-')
		return;
	unsigned code = smtp_reply_code(id);
	if (code >= 500)
		count(s, SMTP_C_REPLIES_5XX);
	else if (code >= 400)
		count(s, SMTP_C_REPLIES_4XX);
}

static void reply_arg(struct smtp_session *s, int id, const char *arg, size_t arglen)
{
	reply_line(s, id, arg, arglen, ' ');
}

/* Replies whose "%s" (if any) is our host name. */
static void reply(struct smtp_session *s, int id)
{
	reply_arg(s, id, s->cfg->hostname, strlen(s->cfg->hostname));
}

/* Empties the transaction; the tx_end hook hears of one MAIL had started. */
static void tx_clear(struct smtp_session *s)
{
	if (s->tx.active && hooks(s)->tx_end)
		hooks(s)->tx_end(s->cfg->hooks_arg, s, &s->tx);
	smtp_tx_clear(&s->tx);
}

/* Drops the transaction; the sink hears of it when it had begun. */
static void tx_abort(struct smtp_session *s)
{
	if (s->tx.begun)
		s->cfg->sink->abort(s->cfg->sink_arg, &s->tx);
	tx_clear(s);
	s->fail = 0;
}

/*
 * The session ends while RCPTs of a group are pending: replies after the
 * first one still unanswered can never go out in order, so they are
 * dropped; what ends the session comes right after the last one in order.
 */
static void grp_drop(struct smtp_session *s)
{
	if (s->grp_n)
		s->out_len = s->grp[0].off;
	s->grp_n = 0;
	s->grp_wait = false;
}

static void session_close(struct smtp_session *s)
{
	if ((s->state == SMTP_ST_AUTH ||
	     (s->state == SMTP_ST_PENDING && s->pend_cmd == SMTP_V_AUTH)) &&
	    hooks(s)->auth)
		hooks(s)->auth(s->cfg->hooks_arg, s, NULL, NULL, NULL);
	s->pend_cmd = SMTP_V_UNKNOWN; /* a pending hook reply is moot: tx_end() says so */
	s->pend_full = false;
	grp_drop(s);
	tx_abort(s);
	set_state(s, SMTP_ST_CLOSED);
}

static void close_with(struct smtp_session *s, int id)
{
	grp_drop(s);
	reply(s, id);
	session_close(s);
}

/* An error reply (arguments as reply_arg) that counts toward max_errors. */
static void error_arg(struct smtp_session *s, int id, const char *arg, size_t arglen)
{
	reply_arg(s, id, arg, arglen);
	if (s->state == SMTP_ST_CLOSED)
		return;
	if (++s->errors >= s->cfg->max_errors) {
		count(s, SMTP_C_TOO_MANY_ERRORS);
		close_with(s, SMTP_R_TOO_MANY_ERRORS);
	}
}

static void error(struct smtp_session *s, int id)
{
	error_arg(s, id, s->cfg->hostname, strlen(s->cfg->hostname));
}

/*
 * A hook's refusal: an error reply, except that a 421 closes the session, as
 * RFC 5321 §3.8 says it does (e.g. a client over its message rate).
 */
static void hook_refusal(struct smtp_session *s, int id)
{
	if (smtp_reply_code((enum smtp_reply_id)id) == 421)
		close_with(s, id);
	else
		error(s, id);
}

/*
 * Another server's reply (MIRROR) as ours, sanitised; PREFIX (ours) goes
 * before its text. Counts like reply_line().
 */
static void reply_text(struct smtp_session *s, const struct smtp_reply_text *m,
		       const char *prefix)
{
	s->out_len += (uint32_t)smtp_reply_format_text((char *)s->out + s->out_len, out_free(s), m,
						       prefix, ' ');
	if (m->code >= 500)
		count(s, SMTP_C_REPLIES_5XX);
	else if (m->code >= 400)
		count(s, SMTP_C_REPLIES_4XX);
}

/* A mirrored refusal: an error toward max_errors; a 421 closes, as hook_refusal() does. */
static void text_refusal(struct smtp_session *s, const struct smtp_reply_text *m)
{
	reply_text(s, m, NULL);
	if (m->code == 421) {
		session_close(s);
		return;
	}
	if (++s->errors >= s->cfg->max_errors) {
		count(s, SMTP_C_TOO_MANY_ERRORS);
		close_with(s, SMTP_R_TOO_MANY_ERRORS);
	}
}

/* A mirrored reply we can repeat: a real code, and not 3xx (no command here continues). */
static bool text_usable(const struct smtp_reply_text *m)
{
	return m != NULL && m->code >= 200 && m->code <= 599 && m->code / 100 != 3;
}

static size_t fmt_u64(char *b, uint64_t v)
{
	char t[24];
	size_t n = 0;
	do {
		t[n++] = '0' + v % 10;
		v /= 10;
	} while (v);
	for (size_t i = 0; i < n; i++)
		b[i] = t[n - 1 - i];
	return n;
}

static void format_client(struct smtp_session *s)
{
	char a[INET6_ADDRSTRLEN];
	const char *pre = s->peer.family == 6 ? "[IPv6:" : "[";
	if (!inet_ntop(s->peer.family == 6 ? AF_INET6 : AF_INET, s->peer.addr, a, sizeof(a)))
		strcpy(a, "0.0.0.0");
	size_t pl = strlen(pre), al = strlen(a);
	memcpy(s->client, pre, pl);
	memcpy(s->client + pl, a, al);
	s->client[pl + al] = ']';
	s->client[pl + al + 1] = '\0';
}

static bool pipelining_offered(const struct smtp_session *s)
{
	return s->esmtp && (s->cfg->features & SMTP_F_PIPELINING);
}

static bool auth_offered(const struct smtp_session *s)
{
	return hooks(s)->auth && (s->tls || !s->cfg->auth_requires_tls);
}

/* ---- message content ---------------------------------------------------------------------- */

static void fail_message(struct smtp_session *s, int id)
{
	if (!s->fail)
		s->fail = id;
	s->scan.discard = true;
}

/* The scanner's emit(): size limit, then the sink. */
static void content(void *arg, const uint8_t *p, size_t n)
{
	struct smtp_session *s = arg;
	s->tx.data_bytes += n;
	if (s->cfg->max_message_size && s->tx.data_bytes > s->cfg->max_message_size) {
		fail_message(s, SMTP_R_SIZE_EXCEEDED);
		return;
	}
	int r = s->cfg->sink->chunk(s->cfg->sink_arg, &s->tx, p, n);
	if (r != SMTP_R_NONE)
		fail_message(s, r);
}

/* After each scan: the first thing wrong with the message decides its reply. */
static void check_scan(struct smtp_session *s)
{
	if (s->fail)
		return;
	if (s->scan.flags & (SMTP_DATA_BARE_LF | SMTP_DATA_BARE_CR))
		fail_message(s, SMTP_R_DATA_BARE_EOL);
	else if (s->scan.flags & SMTP_DATA_NUL)
		fail_message(s, SMTP_R_DATA_NUL);
	else if (s->scan.flags & SMTP_DATA_LONG_LINE)
		fail_message(s, SMTP_R_DATA_LINE_TOO_LONG);
	else if (s->cfg->max_received && s->scan.received > s->cfg->max_received)
		fail_message(s, SMTP_R_MAIL_LOOP);
}

/* The data phase starts: queue id, sink begin(), our Received: as the first chunk. */
static int data_begin(struct smtp_session *s, enum smtp_data_mode mode)
{
	struct smtp_tx *tx = &s->tx;
	smtp_qid_next(&s->ctx->qid, (uint64_t)wall_s(s), tx->queue_id);
	int r = s->cfg->sink->begin(s->cfg->sink_arg, tx);
	if (r != SMTP_R_NONE) {
		count(s, SMTP_C_SINK_REFUSED);
		return r;
	}
	tx->begun = true;
	s->fail = 0;
	smtp_data_init(&s->scan, mode, s->cfg->max_text_line, s->cfg->normalize_bare_eol);

	struct smtp_received ri = {
		.by = s->cfg->hostname,
		.helo = { s->helo, s->helo_len },
		.client = s->client,
		.protocol = smtp_protocol_keyword(s->esmtp, s->tls, s->authed, tx->smtputf8),
		.queue_id = tx->queue_id,
		.for_rcpt = tx->nrcpt == 1 ? tx->rcpt[0].addr : (struct smtp_str){ 0 },
		.wall_s = wall_s(s),
	};
	size_t hl = smtp_received_format(s->hdr, SMTP_RECEIVED_MAX, &ri);
	r = s->cfg->sink->chunk(s->cfg->sink_arg, tx, (const uint8_t *)s->hdr, hl);
	if (r != SMTP_R_NONE)
		fail_message(s, r);
	return SMTP_R_NONE;
}

/* "Ok: queued as " + queue id + "; next hop: " */
#define QUEUED_PREFIX_MAX (14 + SMTP_QID_LEN + 12 + 1)

/*
 * The final reply of a message the sink's end() produced: reply id R, or
 * MIRROR (another server's reply, R unused) when given.
 */
static void complete(struct smtp_session *s, int r, const struct smtp_reply_text *mirror)
{
	unsigned code;
	char qid[SMTP_QID_LEN + 1];

	if (mirror != NULL && !text_usable(mirror))
		mirror = NULL, r = SMTP_R_LOCAL_ERROR;
	code = mirror != NULL ? mirror->code : smtp_reply_code(r);
	if (code == 0)
		r = SMTP_R_LOCAL_ERROR, code = smtp_reply_code(r);
	memcpy(qid, s->tx.queue_id, sizeof(qid));
	if (code / 100 == 2) {
		count(s, SMTP_C_MESSAGES_ACCEPTED);
		smtp_count(&s->ctx->stats, SMTP_C_MESSAGE_BYTES, s->tx.data_bytes);
	} else {
		count(s, SMTP_C_MESSAGES_REJECTED);
	}
	s->tx.begun = false; /* end() answered: no abort() for it */
	tx_clear(s);
	set_state(s, SMTP_ST_HELO);
	if (mirror != NULL && code / 100 == 2) {
		/* ours is the promise the client reads: 250, our queue id, then theirs */
		struct smtp_reply_text ok = *mirror;
		char prefix[QUEUED_PREFIX_MAX];
		size_t ql = strlen(qid);

		ok.code = 250;
		memcpy(prefix, "Ok: queued as ", 14);
		memcpy(prefix + 14, qid, ql);
		memcpy(prefix + 14 + ql, "; next hop: ", 13);
		reply_text(s, &ok, prefix);
	} else if (mirror != NULL) {
		text_refusal(s, mirror);
	} else if (code / 100 == 2) {
		reply_arg(s, r, qid, strlen(qid));
	} else {
		error_arg(s, r, qid, strlen(qid));
	}
}

/* All content is in: refuse it, or ask the sink for the final reply. */
static void finish_message(struct smtp_session *s)
{
	if (s->scan.flags & SMTP_DATA_NORMALIZED)
		count(s, SMTP_C_DATA_NORMALIZED);
	int r = s->fail;
	if (r) {
		switch (r) {
		case SMTP_R_DATA_BARE_EOL:
		case SMTP_R_DATA_NUL:
			count(s, SMTP_C_DATA_BARE_EOL);
			break;
		case SMTP_R_DATA_LINE_TOO_LONG:
			count(s, SMTP_C_DATA_LINE_TOO_LONG);
			break;
		case SMTP_R_SIZE_EXCEEDED:
			count(s, SMTP_C_SIZE_EXCEEDED);
			break;
		case SMTP_R_MAIL_LOOP:
			count(s, SMTP_C_MAIL_LOOPS);
			break;
		default:
			count(s, SMTP_C_SINK_REFUSED);
		}
		count(s, SMTP_C_MESSAGES_REJECTED);
		tx_abort(s);
		set_state(s, SMTP_ST_HELO);
		error(s, r);
		return;
	}
	r = s->cfg->sink->end(s->cfg->sink_arg, &s->tx);
	if (r == SMTP_SINK_PENDING) {
		set_state(s, SMTP_ST_PENDING);
		return;
	}
	complete(s, r, NULL);
}

static size_t data_input(struct smtp_session *s, const uint8_t *p, size_t n)
{
	size_t used = smtp_data_scan(&s->scan, p, n, content, s);
	check_scan(s);
	s->deadline = s->now + s->cfg->timeout_ms.data_block;
	if (s->scan.done)
		finish_message(s);
	return used;
}

/* A BDAT chunk's octets were all read. */
static void bdat_chunk_done(struct smtp_session *s)
{
	if (s->bdat_skip) {
		s->bdat_skip = false;
		set_state(s, s->bdat_return);
		return;
	}
	if (s->bdat_last) {
		smtp_data_end(&s->scan, content, s);
		check_scan(s);
		finish_message(s);
		return;
	}
	set_state(s, SMTP_ST_CHUNKING);
	char num[24];
	reply_arg(s, SMTP_R_BDAT_OK, num, fmt_u64(num, s->bdat_size));
}

static size_t bdat_input(struct smtp_session *s, const uint8_t *p, size_t n)
{
	size_t take = n < s->bdat_left ? n : (size_t)s->bdat_left;
	if (!s->bdat_skip) {
		smtp_data_scan(&s->scan, p, take, content, s);
		check_scan(s);
	}
	s->bdat_left -= take;
	s->deadline = s->now + s->cfg->timeout_ms.data_block;
	if (s->bdat_left == 0)
		bdat_chunk_done(s);
	return take;
}

/*
 * A refused BDAT's octets follow it in the stream and must not be read as
 * commands (RFC 3030 §2): read SIZE octets and drop them, then go to RET.
 * A chunk larger than the message size limit is not worth reading: close.
 */
static void bdat_skip(struct smtp_session *s, uint64_t size, enum smtp_state ret)
{
	uint64_t cap = s->cfg->max_message_size;
	if (s->state == SMTP_ST_CLOSED)
		return;
	if (cap && size > (cap > (1u << 20) ? cap : (1u << 20))) {
		session_close(s);
		return;
	}
	if (size == 0) {
		set_state(s, ret);
		return;
	}
	s->bdat_skip = true;
	s->bdat_left = size;
	s->bdat_return = ret;
	set_state(s, SMTP_ST_BDAT);
}

/* ---- commands ----------------------------------------------------------------------------- */

#define CMD_F_LAST    0x01 /* must end a pipelined group (RFC 2920 §3.1) */
#define CMD_F_PRE_TLS 0x02 /* allowed before STARTTLS where TLS is required */
#define CMD_F_JUNK    0x04 /* costs us nothing but may be repeated forever: max_junk */
#define CMD_F_EXT     0x08 /* an ESMTP extension: needs EHLO */

#define S(st) (1u << SMTP_ST_##st)
#define S_ANY (S(CONNECTED) | S(HELO) | S(MAIL) | S(RCPT) | S(CHUNKING))
#define S_TX  (S(MAIL) | S(RCPT) | S(CHUNKING))

struct smtp_cmd_def {
	uint16_t states;  /* where the command is in sequence */
	uint8_t flags;	  /* CMD_F_* */
	uint32_t feature; /* SMTP_F_* that must be on, 0: none */
	/* SMTP_R_NONE, the reply that refuses the command, or -1: it replied itself */
	int (*check)(struct smtp_session *s, const struct smtp_cmd *c);
	/* does the command and replies; NULL: recognised but not implemented */
	void (*proceed)(struct smtp_session *s, const struct smtp_cmd *c);
};

static void hello(struct smtp_session *s, const struct smtp_cmd *c, bool esmtp)
{
	tx_abort(s); /* RFC 5321 §4.1.4: as if RSET */
	memcpy(s->helo, c->helo.p, c->helo.len);
	s->helo_len = (uint16_t)c->helo.len;
	s->esmtp = esmtp;
	set_state(s, SMTP_ST_HELO);
	if (!esmtp) {
		reply(s, SMTP_R_HELO);
		return;
	}

	const struct smtp_server_config *cfg = s->cfg;
	const char *kw[16];
	char size[32], auth[SMTP_REPLY_ARG_MAX];
	int n = 0;

	if (cfg->features & SMTP_F_PIPELINING)
		kw[n++] = "PIPELINING";
	if (cfg->features & SMTP_F_SIZE) {
		if (cfg->max_message_size) {
			memcpy(size, "SIZE ", 5);
			size[5 + fmt_u64(size + 5, cfg->max_message_size)] = '\0';
			kw[n++] = size;
		} else {
			kw[n++] = "SIZE";
		}
	}
	if (hooks(s)->starttls && !s->tls)
		kw[n++] = "STARTTLS";
	if (auth_offered(s)) {
		const char *m = hooks(s)->auth_mechs ? hooks(s)->auth_mechs : "";
		size_t ml = strnlen(m, sizeof(auth) - 6);
		memcpy(auth, "AUTH ", 5);
		memcpy(auth + 5, m, ml);
		auth[5 + ml] = '\0';
		kw[n++] = auth;
	}
	kw[n++] = "ENHANCEDSTATUSCODES";
	if (cfg->features & SMTP_F_8BITMIME)
		kw[n++] = "8BITMIME";
	if (cfg->features & SMTP_F_DSN)
		kw[n++] = "DSN";
	if (cfg->features & SMTP_F_SMTPUTF8)
		kw[n++] = "SMTPUTF8";
	if (cfg->features & SMTP_F_CHUNKING) {
		kw[n++] = "CHUNKING";
		if (cfg->features & SMTP_F_BINARYMIME)
			kw[n++] = "BINARYMIME";
	}
	reply_line(s, SMTP_R_EHLO, cfg->hostname, strlen(cfg->hostname), '-');
	for (int i = 0; i < n; i++)
		reply_line(s, SMTP_R_EHLO, kw[i], strlen(kw[i]), i == n - 1 ? ' ' : '-');
}

static void proceed_helo(struct smtp_session *s, const struct smtp_cmd *c)
{
	hello(s, c, false);
}

static void proceed_ehlo(struct smtp_session *s, const struct smtp_cmd *c)
{
	hello(s, c, true);
}

/* The keyword of the first parameter in BITS, for "555 Unsupported option". */
static const char *param_name(unsigned bits)
{
	static const char *const names[] = { "SIZE",  "BODY", "SMTPUTF8", "RET",
					     "ENVID", "AUTH", "NOTIFY",	  "ORCPT" };
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (bits & (1u << i))
			return names[i];
	return "";
}

/* Parameters given but not offered in this session (HELO, or the extension turned off). */
static unsigned params_not_offered(const struct smtp_session *s, const struct smtp_cmd *c)
{
	unsigned f = s->cfg->features, bad = 0;
	if (!s->esmtp)
		return c->params;
	if (!(f & SMTP_F_SIZE))
		bad |= SMTP_P_SIZE;
	if (!(f & SMTP_F_8BITMIME))
		bad |= SMTP_P_BODY;
	if (!(f & SMTP_F_SMTPUTF8))
		bad |= SMTP_P_SMTPUTF8;
	if (!(f & SMTP_F_DSN))
		bad |= SMTP_P_RET | SMTP_P_ENVID | SMTP_P_NOTIFY | SMTP_P_ORCPT;
	if (!auth_offered(s))
		bad |= SMTP_P_AUTH;
	return c->params & bad;
}

static int check_mail(struct smtp_session *s, const struct smtp_cmd *c)
{
	unsigned bad = params_not_offered(s, c);
	if (bad) {
		const char *kw = param_name(bad);
		error_arg(s, SMTP_R_PARAM_UNKNOWN, kw, strlen(kw));
		return -1;
	}
	if (c->body == SMTP_BODY_BINARYMIME &&
	    (s->cfg->features & (SMTP_F_BINARYMIME | SMTP_F_CHUNKING)) !=
		    (SMTP_F_BINARYMIME | SMTP_F_CHUNKING)) {
		static const char kw[] = "BODY=BINARYMIME";
		error_arg(s, SMTP_R_PARAM_UNKNOWN, kw, sizeof(kw) - 1);
		return -1;
	}
	if (s->cfg->max_message_size && (c->params & SMTP_P_SIZE) &&
	    c->size > s->cfg->max_message_size) {
		count(s, SMTP_C_SIZE_PARAM_EXCEEDED);
		return SMTP_R_SIZE_EXCEEDED;
	}
	return SMTP_R_NONE;
}

static void proceed_mail(struct smtp_session *s, const struct smtp_cmd *c)
{
	struct smtp_str helo = { s->helo, s->helo_len };
	if (smtp_tx_begin(&s->tx, c, helo, s->client, &s->peer, s->now, wall_s(s)) != 0) {
		count(s, SMTP_C_ENVELOPE_FULL);
		error(s, SMTP_R_STORAGE);
		return;
	}
	if (hooks(s)->mail_check) {
		int r = hooks(s)->mail_check(s->cfg->hooks_arg, s, &s->tx, &c->path);
		if (r == SMTP_HOOK_PENDING) {
			s->pend_cmd = SMTP_V_MAIL;
			set_state(s, SMTP_ST_PENDING);
			return;
		}
		if (r != SMTP_R_NONE) {
			count(s, SMTP_C_POLICY_REJECTS);
			tx_clear(s);
			hook_refusal(s, r);
			return;
		}
	}
	set_state(s, SMTP_ST_MAIL);
	reply(s, SMTP_R_MAIL_OK);
}

static int check_rcpt(struct smtp_session *s, const struct smtp_cmd *c)
{
	unsigned bad = params_not_offered(s, c);
	if (bad) {
		const char *kw = param_name(bad);
		error_arg(s, SMTP_R_PARAM_UNKNOWN, kw, strlen(kw));
		return -1;
	}
	if (s->tx.nrcpt >= s->tx.max_rcpt) {
		count(s, SMTP_C_TOO_MANY_RCPTS);
		return SMTP_R_TOO_MANY_RCPTS;
	}
	return SMTP_R_NONE;
}

static void proceed_rcpt(struct smtp_session *s, const struct smtp_cmd *c)
{
	if (hooks(s)->rcpt_check) {
		int r = hooks(s)->rcpt_check(s->cfg->hooks_arg, s, &s->tx, &c->path);
		if (r == SMTP_HOOK_PENDING && s->cfg->rcpt_pending_max > 1) {
			/* one of a pipelined group: the next command is read at once
			 * (grp_hold() caps the group); the reply takes its place later */
			unsigned i = s->grp_n++;
			s->grp[i].off = s->out_len;
			s->grp[i].id = s->tx.rcpt_attempts;
			s->grp[i].ri = smtp_tx_add_rcpt(&s->tx, c) == 0 ? (int32_t)s->tx.nrcpt - 1 : -1;
			return;
		}
		if (r == SMTP_HOOK_PENDING) {
			/* C's slices are gone by the time the reply comes: copy RCPT now,
			 * and take it back out if the reply refuses it */
			s->pend_cmd = SMTP_V_RCPT;
			s->pend_full = smtp_tx_add_rcpt(&s->tx, c) != 0;
			set_state(s, SMTP_ST_PENDING);
			return;
		}
		if (r != SMTP_R_NONE) {
			count(s, SMTP_C_POLICY_REJECTS);
			hook_refusal(s, r);
			return;
		}
	}
	if (smtp_tx_add_rcpt(&s->tx, c) != 0) {
		count(s, SMTP_C_ENVELOPE_FULL);
		error(s, SMTP_R_STORAGE);
		return;
	}
	count(s, SMTP_C_RCPTS_ACCEPTED);
	set_state(s, SMTP_ST_RCPT);
	reply(s, SMTP_R_RCPT_OK);
}

static int check_data(struct smtp_session *s, const struct smtp_cmd *c)
{
	(void)c;
	if (s->tx.body == SMTP_BODY_BINARYMIME) /* RFC 3030 §3 */
		return SMTP_R_DATA_BINARYMIME;
	return SMTP_R_NONE;
}

static void proceed_data(struct smtp_session *s, const struct smtp_cmd *c)
{
	(void)c;
	int r = data_begin(s, SMTP_DATA_DOT);
	if (r != SMTP_R_NONE) {
		error(s, r);
		return;
	}
	set_state(s, SMTP_ST_DATA);
	reply(s, SMTP_R_DATA_GO);
}

static void proceed_bdat(struct smtp_session *s, const struct smtp_cmd *c)
{
	struct smtp_tx *tx = &s->tx;
	uint64_t max = s->cfg->max_message_size;

	if (tx->bdat_failed) {
		enum smtp_state ret = SMTP_ST_CHUNKING;
		if (c->last) {
			tx_abort(s);
			ret = SMTP_ST_HELO;
		}
		error(s, SMTP_R_BDAT_AFTER_ERROR);
		bdat_skip(s, c->chunk_size, ret);
		return;
	}
	if (max && (c->chunk_size > max || tx->data_bytes + c->chunk_size > max)) {
		/* The chunk is on its way and we will not read it: answer and close. */
		count(s, SMTP_C_SIZE_EXCEEDED);
		count(s, SMTP_C_MESSAGES_REJECTED);
		close_with(s, SMTP_R_SIZE_EXCEEDED);
		return;
	}
	if (s->state == SMTP_ST_RCPT) { /* the first chunk */
		tx->bdat = true;
		int r = data_begin(s, tx->body == SMTP_BODY_BINARYMIME ? SMTP_DATA_BINARY :
									 SMTP_DATA_TEXT);
		if (r != SMTP_R_NONE) {
			enum smtp_state ret = SMTP_ST_CHUNKING;
			tx->bdat_failed = true;
			if (c->last) {
				tx_abort(s);
				ret = SMTP_ST_HELO;
			}
			error(s, r);
			bdat_skip(s, c->chunk_size, ret);
			return;
		}
	}
	s->bdat_skip = false;
	s->bdat_left = c->chunk_size;
	s->bdat_size = c->chunk_size;
	s->bdat_last = c->last;
	set_state(s, SMTP_ST_BDAT);
	if (c->chunk_size == 0)
		bdat_chunk_done(s);
}

static void proceed_rset(struct smtp_session *s, const struct smtp_cmd *c)
{
	(void)c;
	tx_abort(s);
	if (s->state != SMTP_ST_CONNECTED)
		set_state(s, SMTP_ST_HELO);
	reply(s, SMTP_R_OK);
}

static void proceed_noop(struct smtp_session *s, const struct smtp_cmd *c)
{
	(void)c;
	reply(s, SMTP_R_OK);
}

static void proceed_quit(struct smtp_session *s, const struct smtp_cmd *c)
{
	(void)c;
	close_with(s, SMTP_R_QUIT);
}

static void proceed_vrfy(struct smtp_session *s, const struct smtp_cmd *c)
{
	(void)c;
	reply(s, SMTP_R_VRFY);
}

static void proceed_help(struct smtp_session *s, const struct smtp_cmd *c)
{
	(void)c;
	reply(s, SMTP_R_HELP);
}

static int check_starttls(struct smtp_session *s, const struct smtp_cmd *c)
{
	(void)c;
	return s->tls ? SMTP_R_TLS_ACTIVE : SMTP_R_NONE;
}

static void proceed_starttls(struct smtp_session *s, const struct smtp_cmd *c)
{
	(void)c;
	int r = hooks(s)->starttls(s->cfg->hooks_arg, s);
	if (r != SMTP_R_NONE) {
		error(s, r);
		return;
	}
	count(s, SMTP_C_STARTTLS);
	tx_abort(s);
	reply(s, SMTP_R_TLS_READY);
	set_state(s, SMTP_ST_STARTTLS);
}

static void auth_result(struct smtp_session *s, int r, const struct smtp_str *challenge)
{
	if (r == SMTP_HOOK_PENDING) {
		s->pend_cmd = SMTP_V_AUTH;
		set_state(s, SMTP_ST_PENDING);
		return;
	}
	if (r == SMTP_R_AUTH_CHALLENGE) {
		set_state(s, SMTP_ST_AUTH);
		reply_arg(s, r, (const char *)challenge->p, challenge->len);
		return;
	}
	set_state(s, SMTP_ST_HELO);
	if (r == SMTP_R_AUTH_OK) {
		s->authed = true;
		count(s, SMTP_C_AUTH_SUCCESS);
		reply(s, r);
		return;
	}
	count(s, SMTP_C_AUTH_FAILURE);
	if (r == SMTP_R_AUTH_BAD_BASE64)
		count(s, SMTP_C_AUTH_BAD_BASE64);
	hook_refusal(s, smtp_reply_code(r) ? r : SMTP_R_AUTH_FAILED);
}

static int check_auth(struct smtp_session *s, const struct smtp_cmd *c)
{
	(void)c;
	return s->authed ? SMTP_R_AUTH_TWICE : SMTP_R_NONE;
}

static void proceed_auth(struct smtp_session *s, const struct smtp_cmd *c)
{
	struct smtp_str ch = { 0 };
	int r = hooks(s)->auth(s->cfg->hooks_arg, s, c, NULL, &ch);
	auth_result(s, r, &ch);
}

static const struct smtp_cmd_def cmd_table[SMTP_V_MAX] = {
	[SMTP_V_HELO] = { S_ANY, CMD_F_LAST | CMD_F_PRE_TLS | CMD_F_JUNK, 0, NULL, proceed_helo },
	[SMTP_V_EHLO] = { S_ANY, CMD_F_LAST | CMD_F_PRE_TLS | CMD_F_JUNK, 0, NULL, proceed_ehlo },
	[SMTP_V_MAIL] = { S(HELO), 0, 0, check_mail, proceed_mail },
	[SMTP_V_RCPT] = { S(MAIL) | S(RCPT), 0, 0, check_rcpt, proceed_rcpt },
	[SMTP_V_DATA] = { S(RCPT), CMD_F_LAST, 0, check_data, proceed_data },
	[SMTP_V_BDAT] = { S(RCPT) | S(CHUNKING), CMD_F_EXT, SMTP_F_CHUNKING, NULL, proceed_bdat },
	[SMTP_V_RSET] = { S_ANY, CMD_F_PRE_TLS | CMD_F_JUNK, 0, NULL, proceed_rset },
	[SMTP_V_NOOP] = { S_ANY, CMD_F_LAST | CMD_F_PRE_TLS | CMD_F_JUNK, 0, NULL, proceed_noop },
	[SMTP_V_QUIT] = { S_ANY, CMD_F_PRE_TLS, 0, NULL, proceed_quit },
	[SMTP_V_VRFY] = { S_ANY, CMD_F_LAST | CMD_F_JUNK, 0, NULL, proceed_vrfy },
	[SMTP_V_HELP] = { S_ANY, CMD_F_PRE_TLS | CMD_F_JUNK, 0, NULL, proceed_help },
	[SMTP_V_STARTTLS] = { S(CONNECTED) | S(HELO), CMD_F_LAST | CMD_F_PRE_TLS | CMD_F_EXT, 0,
			      check_starttls, proceed_starttls },
	[SMTP_V_AUTH] = { S(HELO), CMD_F_EXT, 0, check_auth, proceed_auth },
	[SMTP_V_EXPN] = { S_ANY, CMD_F_LAST, 0, NULL, NULL },
	[SMTP_V_ETRN] = { S_ANY, 0, 0, NULL, NULL },
	[SMTP_V_TURN] = { S_ANY, CMD_F_LAST, 0, NULL, NULL },
};

/* 502 when not offered here at all, 503/530 when it needs EHLO/TLS first. */
static int not_offered(const struct smtp_session *s, const struct smtp_cmd *c)
{
	const struct smtp_cmd_def *d = &cmd_table[c->verb];
	if (!d->proceed || (d->feature && !(s->cfg->features & d->feature)))
		return SMTP_R_NOT_IMPLEMENTED;
	if (c->verb == SMTP_V_STARTTLS && !hooks(s)->starttls)
		return SMTP_R_NOT_IMPLEMENTED;
	if (c->verb == SMTP_V_AUTH && !hooks(s)->auth)
		return SMTP_R_NOT_IMPLEMENTED;
	if ((d->flags & CMD_F_EXT) && !s->esmtp)
		return SMTP_R_SEND_EHLO_FIRST;
	if (c->verb == SMTP_V_AUTH && !auth_offered(s))
		return SMTP_R_AUTH_ENCRYPT; /* RFC 4954 §6: 538 5.7.11 */
	return SMTP_R_NONE;
}

/* Out of sequence (RFC 5321 §4.1.4): the most helpful 503. */
static int seq_error(const struct smtp_session *s, enum smtp_verb v)
{
	switch (v) {
	case SMTP_V_MAIL:
		return s->state == SMTP_ST_CONNECTED ? SMTP_R_SEND_HELO_FIRST : SMTP_R_NESTED_MAIL;
	case SMTP_V_RCPT:
		return s->state == SMTP_ST_CHUNKING ? SMTP_R_BDAT_IN_PROGRESS : SMTP_R_NEED_MAIL;
	case SMTP_V_DATA:
	case SMTP_V_BDAT:
		if (s->state == SMTP_ST_CHUNKING)
			return SMTP_R_DATA_AFTER_BDAT;
		if (s->state == SMTP_ST_MAIL)
			return s->tx.rcpt_attempts ? SMTP_R_NO_VALID_RCPTS : SMTP_R_NEED_RCPT;
		return SMTP_R_NEED_MAIL;
	default: /* STARTTLS, AUTH inside a transaction */
		return SMTP_R_TX_IN_PROGRESS;
	}
}

/* The reply for a complete line the parser found fault with. */
static int syntax_reply(const struct smtp_cmd *c, struct smtp_str *arg)
{
	bool mail = c->verb == SMTP_V_MAIL;
	*arg = c->bad_param;
	switch (c->err) {
	case SMTP_PE_BAD_DOMAIN:
		return SMTP_R_BAD_HOSTNAME;
	case SMTP_PE_BAD_PATH:
		return mail ? SMTP_R_BAD_SENDER : SMTP_R_BAD_RCPT;
	case SMTP_PE_PATH_TOO_LONG:
		return mail ? SMTP_R_SENDER_TOO_LONG : SMTP_R_RCPT_TOO_LONG;
	case SMTP_PE_UTF8_ADDRESS:
		return mail ? SMTP_R_SENDER_UTF8 : SMTP_R_RCPT_UTF8;
	case SMTP_PE_PARAM_UNKNOWN:
		return SMTP_R_PARAM_UNKNOWN;
	case SMTP_PE_PARAM_SYNTAX:
		return SMTP_R_PARAM_SYNTAX;
	case SMTP_PE_PARAM_BAD_VALUE:
		return SMTP_R_PARAM_BAD_VALUE;
	case SMTP_PE_PARAM_DUPLICATE:
		return SMTP_R_PARAM_DUPLICATE;
	case SMTP_PE_BDAT_SIZE:
		return SMTP_R_SYNTAX_BDAT;
	case SMTP_PE_NO_ARGS_ALLOWED:
		arg->p = (const uint8_t *)smtp_verb_names[c->verb];
		arg->len = strlen(smtp_verb_names[c->verb]);
		return SMTP_R_NO_ARGS;
	default:
		break;
	}
	switch (c->verb) {
	case SMTP_V_HELO:
		return SMTP_R_SYNTAX_HELO;
	case SMTP_V_EHLO:
		return SMTP_R_SYNTAX_EHLO;
	case SMTP_V_MAIL:
		return SMTP_R_SYNTAX_MAIL;
	case SMTP_V_RCPT:
		return SMTP_R_SYNTAX_RCPT;
	case SMTP_V_BDAT:
		return SMTP_R_SYNTAX_BDAT;
	case SMTP_V_AUTH:
		/* a mechanism was named: what follows it is not base64 (RFC 4954 §4) */
		return c->mech.len ? SMTP_R_AUTH_BAD_BASE64 : SMTP_R_SYNTAX_AUTH;
	default:
		return SMTP_R_SYNTAX_VRFY;
	}
}

/* Line-level faults, whatever the verb: bare CR/LF, NUL, bad UTF-8, empty line. */
static int line_fault(struct smtp_session *s, const struct smtp_cmd *c)
{
	switch (c->err) {
	case SMTP_PE_BARE_LF:
		count(s, SMTP_C_CMD_BARE_EOL);
		return SMTP_R_BARE_LF;
	case SMTP_PE_BARE_CR:
		count(s, SMTP_C_CMD_BARE_EOL);
		return SMTP_R_BARE_CR;
	case SMTP_PE_NUL:
		count(s, SMTP_C_SYNTAX_ERRORS);
		return SMTP_R_NUL;
	case SMTP_PE_BAD_UTF8:
		count(s, SMTP_C_SYNTAX_ERRORS);
		return SMTP_R_BAD_UTF8;
	case SMTP_PE_EMPTY:
		count(s, SMTP_C_SYNTAX_ERRORS);
		return SMTP_R_BAD_SYNTAX;
	default:
		return SMTP_R_NONE;
	}
}

/* A refused command; a refused BDAT still owns the octets that follow it. */
static void refuse(struct smtp_session *s, const struct smtp_cmd *c, int r, struct smtp_str arg)
{
	if (arg.len)
		error_arg(s, r, (const char *)arg.p, arg.len);
	else
		error(s, r);
	if (c->verb == SMTP_V_BDAT && (c->err == SMTP_PE_OK || c->err == SMTP_PE_SYNTAX))
		bdat_skip(s, c->chunk_size, s->state);
}

/*
 * One line of an AUTH exchange (RFC 4954 §4). It is base64 or "*", not a
 * command: only bare CR/LF are line faults here (smuggling); an empty line
 * is an empty response, and NUL or 8-bit octets are the hook's bad base64.
 */
static void auth_line(struct smtp_session *s, const struct smtp_cmd *c)
{
	const struct smtp_hooks *h = hooks(s);
	int r = c->err == SMTP_PE_BARE_LF || c->err == SMTP_PE_BARE_CR ? line_fault(s, c) :
									  SMTP_R_NONE;
	bool cancel = c->line.len == 1 && c->line.p[0] == '*';
	if (r != SMTP_R_NONE || cancel) {
		h->auth(s->cfg->hooks_arg, s, NULL, NULL, NULL);
		set_state(s, SMTP_ST_HELO);
		count(s, cancel ? SMTP_C_AUTH_CANCELLED : SMTP_C_AUTH_FAILURE);
		error(s, r != SMTP_R_NONE ? r : SMTP_R_AUTH_ABORTED);
		return;
	}
	struct smtp_str ch = { 0 };
	r = h->auth(s->cfg->hooks_arg, s, NULL, &c->line, &ch);
	auth_result(s, r, &ch);
}

/*
 * One complete command line (LEN includes the CRLF). MORE: octets of this
 * input call follow it -- the client did not wait for our reply.
 */
static void process_line(struct smtp_session *s, const uint8_t *p, size_t len, bool more)
{
	struct smtp_cmd c;
	smtp_parse_cmd(p, len, s->tx.smtputf8 ? SMTP_PARSE_F_UTF8 : 0, &c);
	count(s, SMTP_C_COMMANDS);

	if (s->state == SMTP_ST_AUTH) {
		auth_line(s, &c);
		return;
	}
	int r = line_fault(s, &c);
	if (r != SMTP_R_NONE) {
		error(s, r);
		return;
	}
	if (c.verb == SMTP_V_UNKNOWN) {
		count(s, SMTP_C_UNKNOWN_COMMANDS);
		error(s, SMTP_R_UNKNOWN_CMD);
		return;
	}
	const struct smtp_cmd_def *d = &cmd_table[c.verb];

	/*
	 * RFC 2920 §3.1 and Postfix smtpd_forbid_unauth_pipelining: a client
	 * that sends more after a group-ending command, or pipelines at all
	 * without having been told PIPELINING, is not waiting for replies and
	 * would read our answers out of step. STARTTLS is the exception: what
	 * follows it is discarded unread once it is accepted (smtp_server_input,
	 * CVE-2011-0411), so the handshake goes ahead and nothing is answered.
	 */
	if (more && c.verb != SMTP_V_STARTTLS && s->cfg->forbid_unauth_pipelining &&
	    ((d->flags & CMD_F_LAST) || !pipelining_offered(s))) {
		count(s, SMTP_C_UNAUTH_PIPELINING);
		close_with(s, SMTP_R_PIPELINING);
		return;
	}
	struct smtp_str none = { 0 };
	r = not_offered(s, &c);
	if (r != SMTP_R_NONE) {
		count(s, SMTP_C_NOT_OFFERED);
		if (r == SMTP_R_AUTH_ENCRYPT)
			count(s, SMTP_C_AUTH_NEEDS_TLS);
		refuse(s, &c, r, none);
		return;
	}
	if (s->cfg->require_tls && !s->tls && !(d->flags & CMD_F_PRE_TLS)) {
		refuse(s, &c, SMTP_R_TLS_REQUIRED, none);
		return;
	}
	if (!(d->states & (1u << s->state))) {
		count(s, SMTP_C_BAD_SEQUENCE);
		refuse(s, &c, seq_error(s, c.verb), none);
		return;
	}
	if (c.verb == SMTP_V_RCPT)
		s->tx.rcpt_attempts++;
	if (c.err != SMTP_PE_OK) {
		struct smtp_str arg;
		count(s, SMTP_C_SYNTAX_ERRORS);
		r = syntax_reply(&c, &arg);
		refuse(s, &c, r, arg);
		return;
	}
	if (d->check) {
		r = d->check(s, &c);
		if (r < 0) /* the check replied itself */
			return;
		if (r != SMTP_R_NONE) {
			refuse(s, &c, r, none);
			return;
		}
	}
	d->proceed(s, &c);

	if ((d->flags & CMD_F_JUNK) && ++s->junk > s->cfg->max_junk && s->state != SMTP_ST_CLOSED &&
	    ++s->errors >= s->cfg->max_errors) {
		count(s, SMTP_C_TOO_MANY_ERRORS);
		close_with(s, SMTP_R_TOO_MANY_ERRORS);
	}
}

/* Inside an over-long command line: drop octets up to its CRLF. */
static size_t discard_input(struct smtp_session *s, const uint8_t *p, size_t n)
{
	size_t end = 0;
	if (s->discard_cr && p[0] == '\n') {
		end = 1;
	} else {
		ssize_t k = smtp_find_crlf(p, n);
		if (k >= 0)
			end = (size_t)k + 2;
	}
	if (end) {
		/* The line's 500 went out when it passed the limit: resume silently. */
		s->discarding = false;
		if (s->state != SMTP_ST_CLOSED)
			s->deadline = s->now + state_timeout(s, s->state);
		return end;
	}
	s->discarded += n;
	s->discard_cr = p[n - 1] == '\r';
	if (s->discarded > s->cfg->max_input_no_crlf) {
		count(s, SMTP_C_INPUT_NO_CRLF);
		close_with(s, SMTP_R_INPUT_NO_CRLF);
	}
	return n;
}

/*
 * A command line passed max_cmd_line octets with no CRLF: answer 500 now
 * (RFC 5321 §4.5.3.1.4, "500 Line too long"), not when the CRLF finally
 * comes, so a client that never sends one still hears why before the 421 of
 * the hard cap; the rest of the line is discarded unread.
 */
static void start_discard(struct smtp_session *s, bool cr, uint64_t already, bool auth)
{
	s->discarding = true;
	s->discard_cr = cr;
	s->discarded = already;
	s->line_len = 0;
	line_return(s);
	count(s, SMTP_C_LINE_TOO_LONG);
	if (auth) {
		/* RFC 4954 §4: longer than our authentication buffer fails AUTH with 500 5.5.6 */
		count(s, SMTP_C_AUTH_LINE_TOO_LONG);
		count(s, SMTP_C_AUTH_FAILURE);
		if (s->state == SMTP_ST_AUTH) {
			hooks(s)->auth(s->cfg->hooks_arg, s, NULL, NULL, NULL);
			set_state(s, SMTP_ST_HELO);
		}
		error(s, SMTP_R_AUTH_LINE_TOO_LONG);
	} else {
		error(s, SMTP_R_LINE_TOO_LONG);
	}
	if (s->state == SMTP_ST_CLOSED) /* that error was one too many: nothing more to read */
		s->discarding = false;
}

/* The longest line: AUTH lines may be longer than commands (RFC 4954 §4). */
static size_t line_cap(const struct smtp_server_config *cfg)
{
	bool auth = cfg->hooks && cfg->hooks->auth;
	return auth && cfg->max_cmd_line < SMTP_AUTH_LINE_MAX ? SMTP_AUTH_LINE_MAX :
								 cfg->max_cmd_line;
}

/* The session's own line buffer: a command line, unless no pool lends the AUTH ones. */
static size_t own_line_cap(const struct smtp_server_config *cfg)
{
	return cfg->auth_lines != NULL ? cfg->max_cmd_line : line_cap(cfg);
}

/*
 * A line about to need NEED octets of line[]: past the session's own
 * buffer (only an AUTH line gets there) it moves to a buffer lent by
 * cfg->auth_lines. false when none is free.
 */
static bool line_room(struct smtp_session *s, size_t need)
{
	struct smtp_line_pool *p = s->cfg->auth_lines;
	uint8_t *b;

	if (need <= own_line_cap(s->cfg) || s->line != s->line_own)
		return true;
	b = line_pool_get(p);
	if (b == NULL)
		return false;
	memcpy(b, s->line_own, s->line_len);
	s->line = b;
	return true;
}

/*
 * No buffer for a long AUTH line: 454 4.7.0 now (RFC 4954 §6: a temporary
 * server failure, try again), the exchange is over and the rest of the
 * line is discarded unread, as for one too long (start_discard()).
 */
static void no_line_buffer(struct smtp_session *s, bool cr, uint64_t already)
{
	s->discarding = true;
	s->discard_cr = cr;
	s->discarded = already;
	s->line_len = 0;
	count(s, SMTP_C_AUTH_NO_LINE_BUFFER);
	count(s, SMTP_C_AUTH_FAILURE);
	if (s->state == SMTP_ST_AUTH) {
		hooks(s)->auth(s->cfg->hooks_arg, s, NULL, NULL, NULL);
		set_state(s, SMTP_ST_HELO);
	}
	reply(s, SMTP_R_AUTH_TEMP);
}

/*
 * Is the line that starts with the held octets and then P[0..N) an AUTH
 * line: a response inside the exchange, or the AUTH command itself (its
 * initial response)? Every other line keeps max_cmd_line; the verb is
 * known long before that limit, which is at least 512.
 */
static bool auth_line_ahead(const struct smtp_session *s, const uint8_t *p, size_t n)
{
	static const char verb[] = "AUTH ";
	size_t k = 0;

	if (!hooks(s)->auth)
		return false;
	if (s->state == SMTP_ST_AUTH)
		return true;
	for (; k < 5; k++) {
		uint8_t c = k < s->line_len ? s->line[k] : k - s->line_len < n ? p[k - s->line_len] : 0;
		if (c >= 'a' && c <= 'z')
			c = (uint8_t)(c - 'a' + 'A');
		if (c != (uint8_t)verb[k])
			return false;
	}
	return true;
}

/*
 * RCPTs of a group are pending and the complete line P[0..LEN) comes next:
 * only another RCPT, while the group has room, goes on now (RFC 2920 §3.1:
 * DATA, BDAT and the commands that end a group, as anything else, need the
 * replies before them first -- DATA needs the number of recipients, RFC 5321
 * §3.3). Otherwise the session waits in PENDING and the line stays unread
 * (it is parsed again when the group is answered).
 */
static bool grp_hold(struct smtp_session *s, const uint8_t *p, size_t len)
{
	struct smtp_cmd c;

	if (s->grp_n == 0)
		return false;
	smtp_parse_cmd(p, len, s->tx.smtputf8 ? SMTP_PARSE_F_UTF8 : 0, &c);
	if (c.verb == SMTP_V_RCPT && s->grp_n < s->cfg->rcpt_pending_max)
		return false;
	s->grp_wait = true;
	set_state(s, SMTP_ST_PENDING);
	return true;
}

/* Frames command lines: whole lines are parsed in place, partial ones are held in line[]. */
static size_t line_input(struct smtp_session *s, const uint8_t *p, size_t n)
{
	const bool auth = auth_line_ahead(s, p, n);
	const size_t max = auth ? line_cap(s->cfg) : s->cfg->max_cmd_line;
	size_t end;

	if (s->discarding)
		return discard_input(s, p, n);
	if (s->line_len == 0) {
		ssize_t k = smtp_find_crlf(p, n < max ? n : max);
		if (k >= 0) {
			end = (size_t)k + 2;
			if (grp_hold(s, p, end))
				return 0;
			process_line(s, p, end, end < n);
			goto done;
		}
		if (n >= max) {
			start_discard(s, false, 0, auth);
			return 0;
		}
		if (!line_room(s, n)) {
			no_line_buffer(s, false, 0);
			return 0;
		}
		memcpy(s->line, p, n);
		s->line_len = (uint32_t)n;
		return n;
	}

	size_t room = max - s->line_len;
	if (s->line[s->line_len - 1] == '\r' && p[0] == '\n') {
		end = 1;
	} else {
		ssize_t k = smtp_find_crlf(p, n < room ? n : room);
		if (k < 0) {
			if (n >= room) {
				start_discard(s, s->line[s->line_len - 1] == '\r', s->line_len, auth);
				return 0;
			}
			if (!line_room(s, s->line_len + n)) {
				no_line_buffer(s, s->line[s->line_len - 1] == '\r', s->line_len);
				return 0;
			}
			memcpy(s->line + s->line_len, p, n);
			s->line_len += (uint32_t)n;
			return n;
		}
		end = (size_t)k + 2;
	}
	if (!line_room(s, s->line_len + end)) {
		no_line_buffer(s, s->line[s->line_len - 1] == '\r', s->line_len);
		return 0;
	}
	memcpy(s->line + s->line_len, p, end);
	size_t total = s->line_len + end;
	if (grp_hold(s, s->line, total))
		return 0; /* line[0..line_len) stays: the same octets complete it again */
	s->line_len = 0;
	process_line(s, s->line, total, end < n);
	line_return(s); /* the hook took what it needed from the line (smtp_auth copies) */
done:
	/* A command was answered: the wait for the next one starts now. */
	if (s->state != SMTP_ST_CLOSED && s->state != SMTP_ST_DATA && s->state != SMTP_ST_BDAT &&
	    s->state != SMTP_ST_PENDING)
		s->deadline = s->now + state_timeout(s, s->state);
	return end;
}

/* ---- the session API ---------------------------------------------------------------------- */

static size_t align16(size_t n)
{
	return (n + 15) & ~(size_t)15;
}

static size_t out_size(const struct smtp_server_config *cfg)
{
	return cfg->output_size < OUT_MIN ? OUT_MIN : cfg->output_size;
}

size_t smtp_server_size(const struct smtp_server_config *cfg)
{
	return align16(sizeof(struct smtp_session)) + align16(own_line_cap(cfg)) +
	       align16(out_size(cfg)) + align16(SMTP_RECEIVED_MAX) +
	       align16((size_t)cfg->max_rcpts * sizeof(struct smtp_rcpt)) +
	       align16(cfg->envelope_size);
}

static bool config_usable(const struct smtp_server_config *cfg)
{
	const struct smtp_sink_ops *k = cfg->sink;
	return cfg->hostname && cfg->hostname[0] && strlen(cfg->hostname) <= SMTP_DOMAIN_MAX && k &&
	       k->begin && k->chunk && k->end && k->abort && cfg->max_cmd_line >= 512 &&
	       cfg->max_cmd_line <= 65536 && cfg->max_input_no_crlf >= cfg->max_cmd_line &&
	       cfg->max_rcpts >= 1 && cfg->envelope_size >= 2048 && cfg->max_errors >= 1 &&
	       cfg->envelope_size <= UINT32_MAX / 2 &&
	       cfg->rcpt_pending_max <= SMTP_RCPT_PENDING_MAX;
}

void smtp_server_config_default(struct smtp_server_config *c)
{
	memset(c, 0, sizeof(*c));
	c->hostname = "localhost";
	c->features = SMTP_F_DEFAULT;
	c->max_message_size = 10 << 20;
	c->max_rcpts = 100;
	c->max_errors = 20;
	c->max_junk = 100;
	c->max_received = 50;
	c->max_cmd_line = 512;
	c->max_text_line = 1000;
	c->max_input_no_crlf = 65536;
	c->envelope_size = 32768;
	c->output_size = 8192;
	c->timeout_ms = (struct smtp_timeouts){
		.initial = 300000,
		.command = 300000,
		.mail = 300000,
		.rcpt = 300000,
		.data_init = 120000,
		.data_block = 180000,
		.data_term = 600000,
	};
	c->forbid_unauth_pipelining = true;
	c->auth_requires_tls = true;
	c->sink = &smtp_discard_sink_ops;
}

static void greet(struct smtp_session *s)
{
	int r = hooks(s)->connect_check ? hooks(s)->connect_check(s->cfg->hooks_arg, s) :
					  SMTP_R_NONE;
	if (r != SMTP_R_NONE) {
		count(s, SMTP_C_POLICY_REJECTS);
		close_with(s, r);
		return;
	}
	reply(s, SMTP_R_GREETING);
	set_state(s, SMTP_ST_CONNECTED);
}

struct smtp_session *smtp_server_init(void *mem, const struct smtp_server_config *cfg,
				      struct smtp_server_ctx *ctx, const struct smtp_peer *peer,
				      unsigned flags, uint64_t now)
{
	if (!mem || !cfg || !ctx || !peer || !config_usable(cfg))
		return NULL;
	struct smtp_session *s = mem;
	uint8_t *m = (uint8_t *)mem + align16(sizeof(*s));

	memset(s, 0, sizeof(*s));
	s->cfg = cfg;
	s->ctx = ctx;
	s->now = now;
	s->peer = *peer;
	s->tls = flags & SMTP_SESSION_TLS;
	format_client(s);
	s->line = s->line_own = m;
	m += align16(own_line_cap(cfg));
	s->out = m;
	s->out_size = (uint32_t)out_size(cfg);
	m += align16(s->out_size);
	s->hdr = (char *)m;
	m += align16(SMTP_RECEIVED_MAX);
	struct smtp_rcpt *rcpts = (struct smtp_rcpt *)m;
	m += align16((size_t)cfg->max_rcpts * sizeof(struct smtp_rcpt));
	smtp_tx_setup(&s->tx, rcpts, cfg->max_rcpts, m, cfg->envelope_size);
	count(s, SMTP_C_SESSIONS);

	s->state = SMTP_ST_PREGREET;
	s->deadline = now + cfg->greeting_pause_ms;
	if (cfg->greeting_pause_ms == 0)
		greet(s);
	return s;
}

struct smtp_session *smtp_server_new(const struct smtp_server_config *cfg,
				     struct smtp_server_ctx *ctx, const struct smtp_peer *peer,
				     unsigned flags, uint64_t now)
{
	if (!cfg || !config_usable(cfg))
		return NULL;
	void *mem = aligned_alloc(16, align16(smtp_server_size(cfg)));
	if (!mem)
		return NULL;
	struct smtp_session *s = smtp_server_init(mem, cfg, ctx, peer, flags, now);
	if (!s)
		free(mem);
	return s;
}

void smtp_server_fini(struct smtp_session *s)
{
	if (s->state != SMTP_ST_CLOSED)
		session_close(s);
	s->line_len = 0;
	line_return(s); /* a long AUTH line cut short */
}

void smtp_server_free(struct smtp_session *s)
{
	if (!s)
		return;
	smtp_server_fini(s);
	free(s);
}

size_t smtp_server_input(struct smtp_session *s, const uint8_t *p, size_t n, uint64_t now)
{
	size_t off = 0;

	s->now = now;
	if (s->state == SMTP_ST_PREGREET && n) {
		count(s, SMTP_C_EARLY_TALKERS);
		close_with(s, SMTP_R_EARLY_TALKER);
	}
	while (off < n) {
		switch (s->state) {
		case SMTP_ST_CLOSED:
			smtp_count(&s->ctx->stats, SMTP_C_INPUT_IGNORED, n - off);
			return n;
		case SMTP_ST_PENDING:
			return off;
		case SMTP_ST_STARTTLS: /* plaintext after STARTTLS: never answered */
			smtp_count(&s->ctx->stats, SMTP_C_STARTTLS_DISCARDED, n - off);
			return n;
		default:
			break;
		}
		/* each pending RCPT of a group keeps room for its reply line */
		if (out_free(s) < OUT_RESERVE + (size_t)s->grp_n * SMTP_REPLY_LINE_MAX)
			return off;
		if (s->state == SMTP_ST_DATA)
			off += data_input(s, p + off, n - off);
		else if (s->state == SMTP_ST_BDAT)
			off += bdat_input(s, p + off, n - off);
		else
			off += line_input(s, p + off, n - off);
	}
	return off;
}

size_t smtp_server_output(const struct smtp_session *s, const uint8_t **p)
{
	*p = s->out;
	return s->grp_n ? s->grp[0].off : s->out_len; /* later replies wait for the group's */
}

void smtp_server_output_done(struct smtp_session *s, size_t n)
{
	for (unsigned i = 0; i < s->grp_n; i++) {
		uint32_t o = s->grp[i].off;
		s->grp[i].off = n < o ? o - (uint32_t)n : 0;
	}
	if (n >= s->out_len) {
		s->out_len = 0;
		return;
	}
	memmove(s->out, s->out + n, s->out_len - n);
	s->out_len -= (uint32_t)n;
}

uint64_t smtp_server_deadline(const struct smtp_session *s)
{
	return s->deadline;
}

bool smtp_server_timeout(struct smtp_session *s, uint64_t now)
{
	if (now < s->deadline)
		return false;
	s->now = now;
	switch (s->state) {
	case SMTP_ST_PREGREET:
		greet(s);
		return true;
	case SMTP_ST_STARTTLS: /* no plaintext reply into a TLS handshake */
		count(s, SMTP_C_TIMEOUTS);
		session_close(s);
		return true;
	default:
		count(s, SMTP_C_TIMEOUTS);
		close_with(s, SMTP_R_TIMEOUT);
		return true;
	}
}

unsigned smtp_server_events(const struct smtp_session *s)
{
	switch (s->state) {
	case SMTP_ST_CLOSED:
		return SMTP_EV_CLOSE;
	case SMTP_ST_STARTTLS:
		return SMTP_EV_STARTTLS;
	case SMTP_ST_PENDING:
		return SMTP_EV_PENDING;
	default:
		return s->grp_n ? SMTP_EV_PENDING : 0;
	}
}

void smtp_server_tls_started(struct smtp_session *s, uint64_t now)
{
	if (s->state != SMTP_ST_STARTTLS)
		return;
	s->now = now;
	s->tls = true;
	s->esmtp = false; /* RFC 3207 §4.2: forget what the client said before */
	s->authed = false;
	s->helo_len = 0;
	set_state(s, SMTP_ST_CONNECTED);
}

void smtp_server_tx_done(struct smtp_session *s, int r, uint64_t now)
{
	if (s->state != SMTP_ST_PENDING || s->pend_cmd != SMTP_V_UNKNOWN || s->grp_wait)
		return;
	s->now = now;
	complete(s, r, NULL);
}

void smtp_server_tx_done_text(struct smtp_session *s, const struct smtp_reply_text *r,
			      uint64_t now)
{
	if (s->state != SMTP_ST_PENDING || s->pend_cmd != SMTP_V_UNKNOWN || s->grp_wait)
		return;
	s->now = now;
	complete(s, SMTP_R_LOCAL_ERROR, r);
}

void smtp_server_cmd_done(struct smtp_session *s, int r, const struct smtp_reply_text *mirror,
			  uint64_t now)
{
	enum smtp_verb v = s->pend_cmd;
	bool full = s->pend_full;
	bool ok;

	if (s->grp_n) {
		smtp_server_rcpt_done(s, s->grp[0].id, r, mirror, now);
		return;
	}
	if (s->state != SMTP_ST_PENDING || v == SMTP_V_UNKNOWN || v == SMTP_V_AUTH)
		return;
	s->now = now;
	s->pend_cmd = SMTP_V_UNKNOWN;
	s->pend_full = false;
	if (mirror != NULL && !text_usable(mirror))
		mirror = NULL, r = SMTP_R_LOCAL_ERROR;
	ok = mirror != NULL ? mirror->code / 100 == 2 : r == SMTP_R_NONE;
	if (!ok)
		count(s, SMTP_C_POLICY_REJECTS);

	if (v == SMTP_V_MAIL) {
		if (!ok) {
			tx_clear(s);
			set_state(s, SMTP_ST_HELO);
		} else {
			set_state(s, SMTP_ST_MAIL);
		}
	} else {
		if (ok && full) {
			count(s, SMTP_C_ENVELOPE_FULL);
			set_state(s, s->tx.nrcpt ? SMTP_ST_RCPT : SMTP_ST_MAIL);
			error(s, SMTP_R_STORAGE);
			return;
		}
		if (!ok && !full)
			s->tx.nrcpt--; /* its strings stay in the arena until the transaction ends */
		if (ok)
			count(s, SMTP_C_RCPTS_ACCEPTED);
		set_state(s, s->tx.nrcpt ? SMTP_ST_RCPT : SMTP_ST_MAIL);
	}
	if (mirror != NULL) {
		if (ok)
			reply_text(s, mirror, NULL);
		else
			text_refusal(s, mirror);
	} else if (ok) {
		reply(s, v == SMTP_V_MAIL ? SMTP_R_MAIL_OK : SMTP_R_RCPT_OK);
	} else {
		hook_refusal(s, r);
	}
}

void smtp_server_auth_done(struct smtp_session *s, int r, const struct smtp_str *challenge,
			   uint64_t now)
{
	static const struct smtp_str none;

	if (s->state != SMTP_ST_PENDING || s->pend_cmd != SMTP_V_AUTH)
		return;
	s->now = now;
	s->pend_cmd = SMTP_V_UNKNOWN;
	if (r == SMTP_HOOK_PENDING) /* not an answer */
		r = SMTP_R_AUTH_TEMP;
	auth_result(s, r, challenge ? challenge : &none);
}

/*
 * Writes a group RCPT's reply at OFF, in front of the replies held behind
 * it; returns its length. The held ones are parked at the end of out[]
 * meanwhile (the room grp_n reply lines kept, smtp_server_input()).
 */
static uint32_t grp_insert(struct smtp_session *s, uint32_t off, int r,
			   const struct smtp_reply_text *mirror)
{
	uint32_t tail = s->out_len - off, size = s->out_size;

	memmove(s->out + size - tail, s->out + off, tail);
	s->out_size = size - tail;
	s->out_len = off;
	if (mirror != NULL)
		reply_text(s, mirror, NULL);
	else
		reply(s, r);
	s->out_size = size;
	memmove(s->out + s->out_len, s->out + size - tail, tail);
	uint32_t added = s->out_len - off;
	s->out_len += tail;
	return added;
}

void smtp_server_rcpt_done(struct smtp_session *s, unsigned id, int r,
			   const struct smtp_reply_text *mirror, uint64_t now)
{
	unsigned i = 0;

	while (i < s->grp_n && s->grp[i].id != id)
		i++;
	if (i == s->grp_n || s->state == SMTP_ST_CLOSED)
		return;
	s->now = now;
	uint32_t off = s->grp[i].off;
	int32_t ri = s->grp[i].ri;

	memmove(&s->grp[i], &s->grp[i + 1], (s->grp_n - i - 1) * sizeof(s->grp[0]));
	s->grp_n--;
	if (mirror != NULL && !text_usable(mirror))
		mirror = NULL, r = SMTP_R_LOCAL_ERROR;
	bool ok = mirror != NULL ? mirror->code / 100 == 2 : r == SMTP_R_NONE;
	if (!ok)
		count(s, SMTP_C_POLICY_REJECTS);
	if (ok && ri < 0) {
		count(s, SMTP_C_ENVELOPE_FULL);
		ok = false, mirror = NULL, r = SMTP_R_STORAGE;
	} else if (ok) {
		count(s, SMTP_C_RCPTS_ACCEPTED);
	}
	if (!ok && ri >= 0) { /* out of the envelope; its strings stay in the arena */
		struct smtp_tx *tx = &s->tx;
		memmove(&tx->rcpt[ri], &tx->rcpt[ri + 1],
			(tx->nrcpt - (unsigned)ri - 1) * sizeof(tx->rcpt[0]));
		tx->nrcpt--;
		for (unsigned j = 0; j < s->grp_n; j++)
			if (s->grp[j].ri > ri)
				s->grp[j].ri--;
	}
	if (!ok && (mirror != NULL ? mirror->code : smtp_reply_code(r)) == 421) {
		/* RFC 5321 §3.8: it ends the session, at the first reply still owed */
		s->out_len = i == 0 ? off : s->grp[0].off;
		s->grp_n = 0;
		s->grp_wait = false;
		if (mirror != NULL) {
			reply_text(s, mirror, NULL);
			session_close(s);
		} else {
			close_with(s, r);
		}
		return;
	}
	uint32_t added = grp_insert(s, off, ok ? SMTP_R_RCPT_OK : r, mirror);
	for (unsigned j = i; j < s->grp_n; j++)
		s->grp[j].off += added;
	if (!ok && ++s->errors >= s->cfg->max_errors) {
		count(s, SMTP_C_TOO_MANY_ERRORS);
		close_with(s, SMTP_R_TOO_MANY_ERRORS);
		return;
	}
	/* decided recipients so far; a command held behind the group is read again */
	unsigned undecided = 0;
	for (unsigned j = 0; j < s->grp_n; j++)
		undecided += s->grp[j].ri >= 0;
	s->grp_wait = false;
	set_state(s, s->tx.nrcpt > undecided ? SMTP_ST_RCPT : SMTP_ST_MAIL);
}

unsigned smtp_server_rcpts_pending(const struct smtp_session *s)
{
	return s->grp_n;
}

enum smtp_verb smtp_server_pending_cmd(const struct smtp_session *s)
{
	if (s->grp_n)
		return SMTP_V_RCPT;
	return s->state == SMTP_ST_PENDING ? s->pend_cmd : SMTP_V_UNKNOWN;
}

void smtp_server_shutdown(struct smtp_session *s)
{
	if (s->state == SMTP_ST_CLOSED)
		return;
	if (s->state == SMTP_ST_STARTTLS)
		session_close(s);
	else
		close_with(s, SMTP_R_SHUTDOWN);
}

enum smtp_state smtp_server_state(const struct smtp_session *s)
{
	return s->state;
}

const struct smtp_tx *smtp_server_tx(const struct smtp_session *s)
{
	return &s->tx;
}

struct smtp_session *smtp_server_of_tx(struct smtp_tx *tx)
{
	return (struct smtp_session *)(void *)((char *)tx - offsetof(struct smtp_session, tx));
}

const char *smtp_server_protocol(const struct smtp_session *s)
{
	return smtp_protocol_keyword(s->esmtp, s->tls, s->authed, s->tx.smtputf8);
}

const struct smtp_peer *smtp_server_peer(const struct smtp_session *s)
{
	return &s->peer;
}

struct smtp_str smtp_server_helo(const struct smtp_session *s)
{
	return (struct smtp_str){ s->helo, s->helo_len };
}

bool smtp_server_tls(const struct smtp_session *s)
{
	return s->tls;
}

bool smtp_server_authenticated(const struct smtp_session *s)
{
	return s->authed;
}

unsigned smtp_server_errors(const struct smtp_session *s)
{
	return s->errors;
}

void smtp_server_set_udata(struct smtp_session *s, void *udata)
{
	s->udata = udata;
}

void *smtp_server_udata(const struct smtp_session *s)
{
	return s->udata;
}
