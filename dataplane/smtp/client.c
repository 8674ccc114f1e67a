/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The SMTP client session: an explicit state, a queue of the replies owed
 * to us (one entry per command sent, matched in order: RFC 2920 §3.2), and
 * one transaction object whose recipients each end delivered, deferred or
 * failed exactly once. Replies are framed into CRLF lines with a bounded
 * line buffer, assembled into multi-line replies (RFC 5321 §4.2.1), and
 * acted on by the kind of the command they answer. Whatever the server
 * sends gets a defined outcome: malformed or unexpected replies end the
 * session as protocol errors with the open recipients deferred.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/smtp/authparam.h"
#include "dataplane/smtp/client.h"
#include "dataplane/smtp/fmt.h"

#define SMTP_CC_NAME_(e, name) name,
const char *const smtp_client_counter_names[SMTP_CC_MAX] = { SMTP_CLIENT_COUNTERS(SMTP_CC_NAME_) };
#undef SMTP_CC_NAME_

#define SMTP_CS_NAME_(e, name) name,
const char *const smtp_client_stage_names[SMTP_CS_MAX] = { SMTP_CLIENT_STAGES(SMTP_CS_NAME_) };
#undef SMTP_CS_NAME_

#define SMTP_CR_NAME_(e, esc, text) #e,
const char *const smtp_client_reason_names[SMTP_CR_MAX] = { SMTP_CLIENT_REASONS(SMTP_CR_NAME_) };
#undef SMTP_CR_NAME_

#define SMTP_CR_DEF_(e, esc, text) { esc, text },
static const struct {
	const char *esc, *text;
} reasons[SMTP_CR_MAX] = { SMTP_CLIENT_REASONS(SMTP_CR_DEF_) };
#undef SMTP_CR_DEF_

const char *const smtp_client_outcome_names[] = {
	[SMTP_CO_NONE] = "none",
	[SMTP_CO_DELIVERED] = "delivered",
	[SMTP_CO_DEFERRED] = "deferred",
	[SMTP_CO_FAILED] = "failed",
};

const char *const smtp_client_state_names[SMTP_CLIENT_ST_MAX] = {
	[SMTP_CLIENT_ST_GREETING] = "GREETING", [SMTP_CLIENT_ST_EHLO] = "EHLO",
	[SMTP_CLIENT_ST_HELO] = "HELO",		[SMTP_CLIENT_ST_STARTTLS] = "STARTTLS",
	[SMTP_CLIENT_ST_TLS] = "TLS",		[SMTP_CLIENT_ST_READY] = "READY",
	[SMTP_CLIENT_ST_ENVELOPE] = "ENVELOPE", [SMTP_CLIENT_ST_CONTENT] = "CONTENT",
	[SMTP_CLIENT_ST_END] = "END",		[SMTP_CLIENT_ST_RESET] = "RESET",
	[SMTP_CLIENT_ST_QUIT] = "QUIT",		[SMTP_CLIENT_ST_CLOSED] = "CLOSED",
};

bool smtp_client_reason_is_protocol(enum smtp_client_reason r)
{
	return r >= SMTP_CR_BAD_CODE && r < SMTP_CR_MAX;
}

/*
 * Output kept free of message content: room for the commands that replies
 * make us write (the next RCPT, ".", RSET, QUIT) while content waits to be
 * sent. The longest is an RCPT line (< 900 octets).
 */
#define OUT_RESERVE 2048
#define OUT_MIN	    4096
/* Room kept before a BDAT chunk's content for "BDAT <20 digits> LAST\r\n". */
#define BDAT_HDR    32
/* BDAT chunks sent and not answered yet, with PIPELINING (RFC 3030 §4.2). */
#define BDAT_WINDOW 8
/* Reply queue beyond MAIL + one RCPT per recipient: DATA, ".", RSET, QUIT, BDATs. */
#define Q_EXTRA	    (8 + BDAT_WINDOW)
/* RFC 5321 §4.5.3.1.3: a path is at most 256 octets with its angle brackets. */
#define ADDR_MAX    (SMTP_PATH_MAX - 2)

/* A reply owed to us: the command it answers. */
struct pend {
	uint64_t mark; /* output position just after the command: it must be sent first */
	uint32_t idx;  /* RCPT: the recipient */
	uint8_t kind;  /* enum smtp_client_stage */
	bool last;     /* BDAT ... LAST */
};

enum {
	RS_PENDING = 0,
	RS_ACCEPTED,
	RS_DONE
};

/* One recipient of the current transaction. */
struct crcpt {
	uint32_t off; /* its RCPT line in the arena */
	uint16_t len;
	uint8_t st; /* RS_* */
};

/* The current transaction (RFC 5321 §3.3); all-zero is none. */
struct client_tx {
	bool active;	/* between tx_begin and tx_done */
	bool failed;	/* ended before a final reply: RSET owed (RFC 5321 §4.1.1.5) */
	bool rset_sent; /* ... and sent */
	bool pipelined; /* MAIL, RCPTs (and DATA) in one group */
	bool bdat;	/* content in BDAT chunks */
	bool content;	/* the content phase began */
	bool data_sent; /* the end of data went out */
	bool chunk_open;
	unsigned nrcpt, next_rcpt, rcpt_replies, accepted, open;
	unsigned delivered, deferred, failed_n;
	unsigned bdat_out;    /* BDAT replies awaited */
	uint32_t mail_len;    /* the MAIL line: arena[0..mail_len) */
	uint32_t chunk_start; /* output offset of the open chunk's header room */
	uint32_t chunk_len;   /* content octets in the open chunk */
	uint64_t bytes;	      /* content octets taken */
	struct smtp_stuff stuff;
};

struct smtp_client {
	const struct smtp_client_config *cfg;
	struct smtp_client_ctx *ctx;
	void *udata;
	enum smtp_client_state state;
	uint64_t now;
	uint64_t t_progress; /* the current wait began: its timeout counts from here */
	bool tls;
	unsigned ext;	     /* SMTP_EXT_* of the last EHLO reply */
	uint64_t size_limit; /* SIZE fixed maximum, 0: none */

	/* reply framing */
	uint32_t line_len;		/* partial line held in line[] */
	unsigned reply_lines;		/* lines of the reply being read */
	struct smtp_client_reply reply; /* the reply being read, then acted on */

	/* replies owed, oldest first */
	struct pend *q;
	unsigned q_cap, q_head, q_len;
	uint64_t written, sent; /* octets made sendable / reported sent, since the start */

	uint32_t out_len, out_size;
	uint8_t *line, *out, *arena;
	uint32_t arena_size;
	struct crcpt *rcpt;
	struct client_tx tx;

	struct smtp_client_reply local; /* our own reasons */
	bool failed;
	struct smtp_client_result err;
	struct smtp_client_reply err_reply;
};

/* ---- small helpers ------------------------------------------------------------------------ */

static inline void count_n(struct smtp_client *c, enum smtp_client_counter k, uint64_t n)
{
	uint64_t *v = &c->ctx->stats.c[k];
	__atomic_store_n(v, __atomic_load_n(v, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

static inline void count(struct smtp_client *c, enum smtp_client_counter k)
{
	count_n(c, k, 1);
}

/* Output the caller may send: everything before an open BDAT chunk. */
static inline size_t out_visible(const struct smtp_client *c)
{
	return c->tx.chunk_open ? c->tx.chunk_start : c->out_len;
}

/* Content never fills the output past this: OUT_RESERVE stays for commands. */
static inline size_t content_limit(const struct smtp_client *c)
{
	return c->out_size - OUT_RESERVE;
}

static inline const struct pend *front(const struct smtp_client *c)
{
	return c->q_len ? &c->q[c->q_head] : NULL;
}

static void q_pop(struct smtp_client *c)
{
	c->q_head = (c->q_head + 1) % c->q_cap;
	c->q_len--;
}

static enum smtp_client_outcome outcome_of(unsigned code)
{
	switch (code / 100) {
	case 2:
		return SMTP_CO_DELIVERED;
	case 4:
		return SMTP_CO_DEFERRED;
	default:
		return SMTP_CO_FAILED;
	}
}

/* A bounded writer for command lines. */
struct wb {
	uint8_t *p;
	size_t len, cap;
	bool full;
};

static void wb_put(struct wb *b, const void *s, size_t n)
{
	if (b->full || n > b->cap - b->len) {
		b->full = true;
		return;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void wb_str(struct wb *b, const char *s)
{
	wb_put(b, s, strlen(s));
}

static void wb_u64(struct wb *b, uint64_t v)
{
	char t[SMTP_U64_DIGITS];

	wb_put(b, t, smtp_fmt_u64(t, v));
}

/* ---- results ------------------------------------------------------------------------------ */

static void copy_reply(struct smtp_client_reply *dst, const struct smtp_client_reply *src)
{
	dst->code = src->code;
	memcpy(dst->esc, src->esc, sizeof(dst->esc));
	dst->text_len = src->text_len;
	memcpy(dst->text, src->text, src->text_len);
	dst->text[dst->text_len] = '\0';
}

/* The server's reply just read, as a result. */
static struct smtp_client_result reply_result(struct smtp_client *c, enum smtp_client_stage st)
{
	return (struct smtp_client_result){
		.outcome = outcome_of(c->reply.code),
		.reason = SMTP_CR_REPLY,
		.stage = st,
		.reply = &c->reply,
	};
}

/* One of our reasons as a result: "text (stage)", code 0, the reason's status code. */
static struct smtp_client_result local_result(struct smtp_client *c, enum smtp_client_reason r,
					      enum smtp_client_stage st)
{
	struct smtp_client_reply *l = &c->local;
	struct wb b = { (uint8_t *)l->text, 0, SMTP_CLIENT_TEXT_MAX, false };

	memset(l->esc, 0, sizeof(l->esc));
	l->code = 0;
	strcpy(l->esc, reasons[r].esc);
	wb_str(&b, reasons[r].text);
	wb_str(&b, " (");
	wb_str(&b, smtp_client_stage_names[st]);
	wb_str(&b, ")");
	l->text_len = (uint16_t)b.len;
	l->text[b.len] = '\0';
	bool permanent = reasons[r].esc[0] == '5';
	return (struct smtp_client_result){
		.outcome = permanent ? SMTP_CO_FAILED : SMTP_CO_DEFERRED,
		.reason = r,
		.stage = st,
		.reply = l,
	};
}

/* Recipient I's outcome is R; reported once, whatever comes later. */
static void decide(struct smtp_client *c, unsigned i, const struct smtp_client_result *r)
{
	struct crcpt *rc = &c->rcpt[i];
	if (rc->st == RS_DONE)
		return;
	rc->st = RS_DONE;
	c->tx.open--;
	switch (r->outcome) {
	case SMTP_CO_DELIVERED:
		c->tx.delivered++;
		count(c, SMTP_CC_RCPTS_DELIVERED);
		break;
	case SMTP_CO_DEFERRED:
		c->tx.deferred++;
		count(c, SMTP_CC_RCPTS_DEFERRED);
		break;
	default:
		c->tx.failed_n++;
		count(c, SMTP_CC_RCPTS_FAILED);
		break;
	}
	c->cfg->ops->rcpt_done(c->cfg->ops_arg, c, i, r);
}

/* Every recipient of the transaction still open gets R; tx_done follows. */
static void decide_open(struct smtp_client *c, const struct smtp_client_result *r)
{
	if (!c->tx.active)
		return;
	for (unsigned i = 0; i < c->tx.nrcpt && c->tx.open; i++)
		decide(c, i, r);
}

/* The transaction is over once nothing is open: tx_done, once. */
static void tx_finish(struct smtp_client *c)
{
	if (!c->tx.active || c->tx.open)
		return;
	c->tx.active = false;
	struct smtp_client_tx_summary s = {
		.nrcpt = c->tx.nrcpt,
		.delivered = c->tx.delivered,
		.deferred = c->tx.deferred,
		.failed = c->tx.failed_n,
		.data_sent = c->tx.data_sent,
	};
	c->cfg->ops->tx_done(c->cfg->ops_arg, c, &s);
}

/* The session failed for R (the first reason is kept). */
static void set_error(struct smtp_client *c, const struct smtp_client_result *r)
{
	if (c->failed)
		return;
	c->failed = true;
	count(c, SMTP_CC_SESSION_FAILURES);
	copy_reply(&c->err_reply, r->reply);
	c->err = *r;
	c->err.reply = &c->err_reply;
}

static void discard_open_chunk(struct smtp_client *c)
{
	if (!c->tx.chunk_open)
		return;
	c->out_len = c->tx.chunk_start;
	c->tx.chunk_open = false;
}

/* Close the connection now, without QUIT: nothing more goes out. */
static void close_now(struct smtp_client *c)
{
	c->tx.chunk_open = false;
	c->out_len = 0;
	c->q_len = 0;
	c->line_len = 0;
	c->reply_lines = 0;
	c->state = SMTP_CLIENT_ST_CLOSED;
}

/*
 * The session cannot go on (protocol error, timeout, 421, lost, aborted):
 * open recipients are deferred with R, and the connection closes without
 * QUIT (RFC 5321 §3.8: after a 421 or a broken exchange it is not owed).
 */
static void end_session(struct smtp_client *c, struct smtp_client_result r)
{
	r.outcome = SMTP_CO_DEFERRED; /* nothing here says the message itself is refused */
	decide_open(c, &r);
	tx_finish(c);
	set_error(c, &r);
	close_now(c);
}

/* Where the session waits now: for timeouts and lost connections. */
static enum smtp_client_stage current_stage(const struct smtp_client *c)
{
	if (c->state == SMTP_CLIENT_ST_TLS)
		return SMTP_CS_TLS;
	if (c->tx.active && c->tx.content &&
	    (c->state == SMTP_CLIENT_ST_CONTENT || out_visible(c) > 0))
		return SMTP_CS_CONTENT;
	if (c->q_len)
		return (enum smtp_client_stage)front(c)->kind;
	return SMTP_CS_NONE;
}

static void protocol_error(struct smtp_client *c, enum smtp_client_reason r)
{
	count(c, SMTP_CC_PROTOCOL_ERRORS);
	end_session(c, local_result(c, r, current_stage(c)));
}

/* ---- output ------------------------------------------------------------------------------- */

/*
 * Queues command P[0..N) whose reply is of KIND. False when it does not
 * fit: the session has then ended (cannot happen within the limits
 * smtp_client_init() checks, but the outcome is defined all the same).
 */
static bool emit(struct smtp_client *c, enum smtp_client_stage kind, uint32_t idx, bool last,
		 const void *p, size_t n)
{
	if (c->tx.chunk_open || n > c->out_size - c->out_len || c->q_len == c->q_cap) {
		end_session(c, local_result(c, SMTP_CR_OUTPUT_FULL, kind));
		return false;
	}
	memcpy(c->out + c->out_len, p, n);
	c->out_len += (uint32_t)n;
	c->written += n;
	struct pend *e = &c->q[(c->q_head + c->q_len) % c->q_cap];
	c->q_len++;
	*e = (struct pend){ .mark = c->written, .idx = idx, .kind = (uint8_t)kind, .last = last };
	return true;
}

static bool emit_str(struct smtp_client *c, enum smtp_client_stage kind, const char *s)
{
	return emit(c, kind, 0, false, s, strlen(s));
}

/* EHLO or HELO: what the server offered before is forgotten (RFC 3207 §4.2 after TLS). */
static void send_hello(struct smtp_client *c, bool ehlo)
{
	uint8_t buf[SMTP_DOMAIN_MAX + 16];
	struct wb b = { buf, 0, sizeof(buf), false };
	wb_str(&b, ehlo ? "EHLO " : "HELO ");
	wb_str(&b, c->cfg->helo_name);
	wb_str(&b, "\r\n");
	c->ext = 0;
	c->size_limit = 0;
	if (emit(c, ehlo ? SMTP_CS_EHLO : SMTP_CS_HELO, 0, false, buf, b.len))
		c->state = ehlo ? SMTP_CLIENT_ST_EHLO : SMTP_CLIENT_ST_HELO;
}

/* A failure before or between transactions: record it and end politely with QUIT. */
static void fail_and_quit(struct smtp_client *c, const struct smtp_client_result *r)
{
	set_error(c, r);
	if (emit_str(c, SMTP_CS_QUIT, "QUIT\r\n"))
		c->state = SMTP_CLIENT_ST_QUIT;
}

static void send_next_rcpt(struct smtp_client *c)
{
	unsigned i = c->tx.next_rcpt++;
	emit(c, SMTP_CS_RCPT, i, false, c->arena + c->rcpt[i].off, c->rcpt[i].len);
}

static void start_content(struct smtp_client *c)
{
	c->state = SMTP_CLIENT_ST_CONTENT;
	c->tx.content = true;
	smtp_stuff_init(&c->tx.stuff, !c->tx.bdat);
}

/*
 * After a reply: a transaction that has ended leaves the envelope states.
 * A failed one owes RSET (RFC 5321 §4.1.1.5), sent once every reply of its
 * pipelined group is in: RSET after a DATA whose 354 is still to come
 * would be read as message content.
 */
static void settle(struct smtp_client *c)
{
	if (c->tx.active)
		return;
	switch (c->state) {
	case SMTP_CLIENT_ST_ENVELOPE:
	case SMTP_CLIENT_ST_CONTENT:
	case SMTP_CLIENT_ST_END:
	case SMTP_CLIENT_ST_RESET:
		break;
	default:
		return;
	}
	if (!c->tx.failed) {
		if (c->q_len == 0)
			c->state = SMTP_CLIENT_ST_READY;
		return;
	}
	c->state = SMTP_CLIENT_ST_RESET;
	discard_open_chunk(c);
	if (c->q_len == 0 && !c->tx.rset_sent) {
		c->tx.rset_sent = true;
		emit_str(c, SMTP_CS_RSET, "RSET\r\n");
	}
}

/* ---- replies ------------------------------------------------------------------------------ */

/* After EHLO/HELO: STARTTLS when the policy wants it and it is offered, else ready. */
static void after_hello(struct smtp_client *c, enum smtp_client_stage st)
{
	if (!c->tls && c->cfg->tls != SMTP_CLIENT_TLS_NONE && (c->ext & SMTP_EXT_STARTTLS)) {
		if (emit_str(c, SMTP_CS_STARTTLS, "STARTTLS\r\n"))
			c->state = SMTP_CLIENT_ST_STARTTLS;
		return;
	}
	if (!c->tls && c->cfg->tls == SMTP_CLIENT_TLS_ENCRYPT) {
		count(c, SMTP_CC_NO_TLS);
		struct smtp_client_result r = local_result(c, SMTP_CR_NO_STARTTLS, st);
		fail_and_quit(c, &r);
		return;
	}
	c->state = SMTP_CLIENT_ST_READY;
}

/* The server is closing the connection (421, RFC 5321 §3.8). */
static void server_closed(struct smtp_client *c, enum smtp_client_stage st)
{
	count(c, SMTP_CC_SERVER_CLOSED);
	end_session(c, reply_result(c, st));
}

/* Is CODE a possible answer to a command of KIND? */
static bool code_fits(enum smtp_client_stage kind, unsigned code)
{
	unsigned cls = code / 100;
	switch (kind) {
	case SMTP_CS_GREETING:
	case SMTP_CS_STARTTLS:
		return code == 220 || cls == 4 || cls == 5;
	case SMTP_CS_DATA:
		return code == 354 || cls == 4 || cls == 5;
	case SMTP_CS_QUIT:
		return true;
	default:
		return cls == 2 || cls == 4 || cls == 5;
	}
}

static void on_final(struct smtp_client *c, enum smtp_client_stage st)
{
	struct smtp_client_result r = reply_result(c, st);
	if (r.outcome == SMTP_CO_DELIVERED) {
		count(c, SMTP_CC_MESSAGES_DELIVERED);
		count_n(c, SMTP_CC_MESSAGE_BYTES, c->tx.bytes);
	}
	c->tx.failed = false; /* the server ended the transaction itself (RFC 5321 §4.1.1.4) */
	decide_open(c, &r);
	tx_finish(c);
}

/* The transaction failed at ST with the reply just read (class 4 or 5). */
static void tx_refused(struct smtp_client *c, enum smtp_client_stage st)
{
	struct smtp_client_result r = reply_result(c, st);
	c->tx.failed = true;
	decide_open(c, &r);
	tx_finish(c);
}

/* Every RCPT was answered. */
static void envelope_done(struct smtp_client *c)
{
	if (c->tx.accepted == 0) {
		/* all refused: no DATA (a pipelined one is answered first, then RSET) */
		c->tx.failed = true;
		tx_finish(c);
		return;
	}
	if (c->tx.bdat)
		start_content(c); /* BDAT waits for the RCPT replies: no content for nobody */
	else if (!c->tx.pipelined)
		emit_str(c, SMTP_CS_DATA, "DATA\r\n");
}

static void on_rcpt(struct smtp_client *c, uint32_t idx)
{
	unsigned code = c->reply.code;
	if (!c->tx.active || idx >= c->tx.nrcpt)
		return; /* the MAIL was refused: these are its leftovers */
	c->tx.rcpt_replies++;
	if (code / 100 == 2) {
		c->rcpt[idx].st = RS_ACCEPTED;
		c->tx.accepted++;
	} else {
		struct smtp_client_result r = reply_result(c, SMTP_CS_RCPT);
		/*
		 * RFC 5321 §4.5.3.1.10: 552 to RCPT is RFC 821's "too many
		 * recipients", which is 452 now: the recipient is retried.
		 */
		if (code == 552)
			r.outcome = SMTP_CO_DEFERRED;
		decide(c, idx, &r);
	}
	if (c->tx.rcpt_replies == c->tx.nrcpt)
		envelope_done(c);
	else if (!c->tx.pipelined)
		send_next_rcpt(c);
}

static void on_data(struct smtp_client *c)
{
	if (!c->tx.active) {
		/*
		 * RFC 2920 §3.1: a DATA the server accepted although every
		 * recipient was refused gets a lone "." so the server is back
		 * in command state before RSET.
		 */
		if (c->reply.code == 354)
			emit_str(c, SMTP_CS_DOT, ".\r\n");
		return;
	}
	if (c->reply.code == 354)
		start_content(c);
	else
		tx_refused(c, SMTP_CS_DATA);
}

static void on_bdat(struct smtp_client *c, bool last)
{
	if (c->tx.bdat_out)
		c->tx.bdat_out--;
	if (!c->tx.active)
		return;
	if (last) {
		on_final(c, SMTP_CS_BDAT);
		return;
	}
	if (c->reply.code / 100 != 2) {
		/* RFC 3030 §2: no further chunk after a refused one; the open one is dropped */
		discard_open_chunk(c);
		tx_refused(c, SMTP_CS_BDAT);
	}
}

/* A whole reply was read: act on it by the command it answers. */
static void reply_done(struct smtp_client *c)
{
	unsigned code = c->reply.code;
	count(c, SMTP_CC_REPLIES_2XX + (code / 100 - 2));

	const struct pend *f = front(c);
	if (!f || f->mark > c->sent) {
		/* nothing asked, or not yet sent: only a server closing may speak now */
		if (code == 421)
			server_closed(c, f ? (enum smtp_client_stage)f->kind : SMTP_CS_NONE);
		else
			protocol_error(c, f ? SMTP_CR_EARLY : SMTP_CR_UNEXPECTED);
		return;
	}
	struct pend e = *f;
	enum smtp_client_stage kind = (enum smtp_client_stage)e.kind;
	if (!code_fits(kind, code)) {
		protocol_error(c, SMTP_CR_UNEXPECTED);
		return;
	}
	q_pop(c);
	c->t_progress = c->now;
	if (code == 421 && kind != SMTP_CS_QUIT) {
		server_closed(c, kind);
		return;
	}
	struct smtp_client_result r = reply_result(c, kind);
	switch (kind) {
	case SMTP_CS_GREETING:
		if (code == 220)
			send_hello(c, true);
		else
			fail_and_quit(c, &r); /* RFC 5321 §3.1: a 554 greeting still wants QUIT */
		break;
	case SMTP_CS_EHLO:
		if (code / 100 == 2) {
			after_hello(c, SMTP_CS_EHLO);
		} else if (code / 100 == 5) {
			/* RFC 5321 §4.1.1.1, §3.2: an older server; HELO it is */
			count(c, SMTP_CC_HELO_FALLBACKS);
			send_hello(c, false);
		} else {
			fail_and_quit(c, &r);
		}
		break;
	case SMTP_CS_HELO:
		if (code / 100 == 2)
			after_hello(c, SMTP_CS_HELO);
		else
			fail_and_quit(c, &r);
		break;
	case SMTP_CS_STARTTLS:
		if (code == 220) {
			count(c, SMTP_CC_STARTTLS);
			c->state = SMTP_CLIENT_ST_TLS;
		} else if (c->cfg->tls == SMTP_CLIENT_TLS_ENCRYPT) {
			fail_and_quit(c, &r);
		} else {
			c->state = SMTP_CLIENT_ST_READY; /* opportunistic: go on in plaintext */
		}
		break;
	case SMTP_CS_MAIL:
		if (!c->tx.active)
			break;
		if (code / 100 != 2)
			tx_refused(c, SMTP_CS_MAIL);
		else if (!c->tx.pipelined)
			send_next_rcpt(c);
		break;
	case SMTP_CS_RCPT:
		on_rcpt(c, e.idx);
		break;
	case SMTP_CS_DATA:
		on_data(c);
		break;
	case SMTP_CS_DOT:
		if (c->tx.active)
			on_final(c, SMTP_CS_DOT);
		break;
	case SMTP_CS_BDAT:
		on_bdat(c, e.last);
		break;
	case SMTP_CS_RSET:
		if (code / 100 == 2)
			c->state = SMTP_CLIENT_ST_READY;
		else
			fail_and_quit(c, &r); /* a server that cannot reset cannot be reused */
		break;
	case SMTP_CS_QUIT:
		close_now(c);
		break;
	default:
		protocol_error(c, SMTP_CR_UNEXPECTED);
		break;
	}
	if (c->state != SMTP_CLIENT_ST_CLOSED)
		settle(c);
}

/* Appends reply text P[0..N) to the kept copy: sanitised, lines joined by a space, bounded. */
static void keep_text(struct smtp_client *c, const uint8_t *p, size_t n)
{
	struct smtp_client_reply *r = &c->reply;
	if (n && r->text_len && r->text_len < SMTP_CLIENT_TEXT_MAX)
		r->text[r->text_len++] = ' ';
	for (size_t i = 0; i < n && r->text_len < SMTP_CLIENT_TEXT_MAX; i++) {
		uint8_t ch = p[i];
		if (ch == '\t')
			ch = ' ';
		else if (ch < 0x20 || ch > 0x7e)
			ch = '?';
		r->text[r->text_len++] = (char)ch;
	}
	r->text[r->text_len] = '\0';
}

/* One complete reply line, P[0..LEN) without its CRLF. */
static void line_done(struct smtp_client *c, const uint8_t *p, size_t len)
{
	static const enum smtp_client_reason line_errs[SMTP_RLE_MAX] = {
		[SMTP_RLE_BAD_CODE] = SMTP_CR_BAD_CODE,
		[SMTP_RLE_BARE_CR] = SMTP_CR_BARE_CR,
		[SMTP_RLE_BARE_LF] = SMTP_CR_BARE_LF,
	};
	struct smtp_reply_line l;
	enum smtp_reply_line_err e = smtp_reply_parse_line(p, len, &l);
	if (e != SMTP_RLE_OK) {
		protocol_error(c, line_errs[e]);
		return;
	}
	if (c->reply_lines == 0) {
		memset(c->reply.esc, 0, sizeof(c->reply.esc));
		memcpy(c->reply.esc, l.esc.p ? (const char *)l.esc.p : "", l.esc.len);
		c->reply.code = l.code;
		c->reply.text_len = 0;
		c->reply.text[0] = '\0';
	} else if (l.code != c->reply.code) {
		protocol_error(c, SMTP_CR_CODE_MISMATCH); /* RFC 5321 §4.2.1: one code per reply */
		return;
	}
	if (++c->reply_lines > c->cfg->max_reply_lines) {
		protocol_error(c, SMTP_CR_TOO_MANY_LINES);
		return;
	}
	keep_text(c, l.msg.p, l.msg.len);

	/* EHLO keywords, one per line after the first (RFC 5321 §4.1.1.1) */
	const struct pend *f = front(c);
	if (c->reply_lines > 1 && l.code / 100 == 2 && f && f->kind == SMTP_CS_EHLO) {
		uint64_t size = 0;
		unsigned bit = smtp_ehlo_keyword(l.text.p, l.text.len, &size);
		c->ext |= bit;
		if (bit == SMTP_EXT_SIZE)
			c->size_limit = size;
	}
	if (!l.more) {
		c->reply_lines = 0;
		reply_done(c);
	}
}

/* Frames reply lines: only CRLF ends one; a line over max_reply_line is an error. */
static size_t line_input(struct smtp_client *c, const uint8_t *p, size_t n)
{
	size_t room = c->cfg->max_reply_line - c->line_len;
	const uint8_t *lf = memchr(p, '\n', n < room ? n : room);
	if (!lf) {
		if (n >= room) {
			protocol_error(c, SMTP_CR_LINE_TOO_LONG);
			return n;
		}
		memcpy(c->line + c->line_len, p, n);
		c->line_len += (uint32_t)n;
		return n;
	}
	size_t k = (size_t)(lf - p) + 1;
	memcpy(c->line + c->line_len, p, k);
	size_t total = c->line_len + k;
	c->line_len = 0;
	if (total < 2 || c->line[total - 2] != '\r') {
		protocol_error(c, SMTP_CR_BARE_LF);
		return k;
	}
	line_done(c, c->line, total - 2);
	return k;
}

/* ---- the session API ---------------------------------------------------------------------- */

static size_t align16(size_t n)
{
	return (n + 15) & ~(size_t)15;
}

size_t smtp_client_size(const struct smtp_client_config *cfg)
{
	return align16(sizeof(struct smtp_client)) + align16(cfg->max_reply_line) +
	       align16(cfg->output_size) + align16((size_t)cfg->max_rcpts * sizeof(struct crcpt)) +
	       align16(((size_t)cfg->max_rcpts + Q_EXTRA) * sizeof(struct pend)) +
	       align16(cfg->envelope_size);
}

static bool name_ok(const char *n)
{
	if (!n)
		return false;
	size_t l = strnlen(n, SMTP_DOMAIN_MAX + 1);
	if (l == 0 || l > SMTP_DOMAIN_MAX)
		return false;
	return smtp_domain_valid((const uint8_t *)n, l, false) ||
	       smtp_addr_literal_valid((const uint8_t *)n, l);
}

static bool config_usable(const struct smtp_client_config *cfg)
{
	const struct smtp_client_ops *o = cfg->ops;
	return o && o->rcpt_done && o->tx_done && name_ok(cfg->helo_name) &&
	       cfg->tls <= SMTP_CLIENT_TLS_ENCRYPT && cfg->max_rcpts >= 1 &&
	       cfg->max_rcpts <= 100000 && cfg->max_reply_line >= 512 &&
	       cfg->max_reply_line <= 65536 && cfg->max_reply_lines >= 1 &&
	       cfg->max_reply_lines <= 100000 && cfg->envelope_size >= 2048 &&
	       cfg->envelope_size <= (1u << 24) && cfg->output_size >= OUT_MIN &&
	       cfg->output_size <= (1u << 30) &&
	       cfg->output_size >= cfg->envelope_size + OUT_RESERVE + 16;
}

void smtp_client_config_default(struct smtp_client_config *c)
{
	memset(c, 0, sizeof(*c));
	c->helo_name = "localhost";
	c->tls = SMTP_CLIENT_TLS_NONE;
	c->pipelining = true;
	c->chunking = false;
	c->send_8bit = false;
	c->max_rcpts = 100;
	c->max_reply_line = 512;
	c->max_reply_lines = 100;
	c->output_size = 65536;
	c->envelope_size = 32768;
	c->timeout_ms = (struct smtp_client_timeouts){
		.greeting = 300000,
		.command = 300000,
		.mail = 300000,
		.rcpt = 300000,
		.data_init = 120000,
		.data_block = 180000,
		.data_term = 600000,
	};
}

struct smtp_client *smtp_client_init(void *mem, const struct smtp_client_config *cfg,
				     struct smtp_client_ctx *ctx, unsigned flags, uint64_t now)
{
	if (!mem || !cfg || !ctx || !config_usable(cfg))
		return NULL;
	struct smtp_client *c = mem;
	uint8_t *m = (uint8_t *)mem + align16(sizeof(*c));

	memset(c, 0, sizeof(*c));
	c->cfg = cfg;
	c->ctx = ctx;
	c->now = now;
	c->t_progress = now;
	c->tls = flags & SMTP_CLIENT_TLS_ON;
	c->line = m;
	m += align16(cfg->max_reply_line);
	c->out = m;
	c->out_size = cfg->output_size;
	m += align16(cfg->output_size);
	c->rcpt = (struct crcpt *)m;
	m += align16((size_t)cfg->max_rcpts * sizeof(struct crcpt));
	c->q = (struct pend *)m;
	c->q_cap = cfg->max_rcpts + Q_EXTRA;
	m += align16(((size_t)cfg->max_rcpts + Q_EXTRA) * sizeof(struct pend));
	c->arena = m;
	c->arena_size = cfg->envelope_size;
	count(c, SMTP_CC_SESSIONS);

	/* the greeting is owed from the start (RFC 5321 §3.1) */
	c->q[0] = (struct pend){ .mark = 0, .kind = SMTP_CS_GREETING };
	c->q_len = 1;
	c->state = SMTP_CLIENT_ST_GREETING;
	return c;
}

struct smtp_client *smtp_client_new(const struct smtp_client_config *cfg,
				    struct smtp_client_ctx *ctx, unsigned flags, uint64_t now)
{
	if (!cfg || !config_usable(cfg))
		return NULL;
	void *mem = aligned_alloc(16, align16(smtp_client_size(cfg)));
	if (!mem)
		return NULL;
	struct smtp_client *c = smtp_client_init(mem, cfg, ctx, flags, now);
	if (!c)
		free(mem);
	return c;
}

void smtp_client_fini(struct smtp_client *c)
{
	smtp_client_abort(c, c->now);
}

void smtp_client_free(struct smtp_client *c)
{
	if (!c)
		return;
	smtp_client_fini(c);
	free(c);
}

void smtp_client_input(struct smtp_client *c, const uint8_t *p, size_t n, uint64_t now)
{
	size_t off = 0;
	c->now = now;
	while (off < n) {
		if (c->state == SMTP_CLIENT_ST_CLOSED) {
			count_n(c, SMTP_CC_INPUT_IGNORED, n - off);
			return;
		}
		if (c->state == SMTP_CLIENT_ST_TLS) {
			/*
			 * Octets after the 220 to STARTTLS and before the
			 * handshake are an injection (the client side of
			 * CVE-2011-0411): nothing read in plaintext may be
			 * taken for a reply under TLS.
			 */
			protocol_error(c, SMTP_CR_TLS_INJECTION);
			continue;
		}
		off += line_input(c, p + off, n - off);
	}
}

size_t smtp_client_output(const struct smtp_client *c, const uint8_t **p)
{
	*p = c->out;
	return out_visible(c);
}

void smtp_client_output_done(struct smtp_client *c, size_t n, uint64_t now)
{
	size_t vis = out_visible(c);
	if (n > vis)
		n = vis;
	if (n == 0)
		return;
	c->now = now;
	memmove(c->out, c->out + n, c->out_len - n);
	c->out_len -= (uint32_t)n;
	if (c->tx.chunk_open)
		c->tx.chunk_start -= (uint32_t)n;
	c->sent += n;
	c->t_progress = now;
}

static uint32_t wait_timeout(const struct smtp_client *c, const struct pend *e)
{
	const struct smtp_client_timeouts *t = &c->cfg->timeout_ms;
	switch (e->kind) {
	case SMTP_CS_GREETING:
		return t->greeting;
	case SMTP_CS_MAIL:
		return t->mail;
	case SMTP_CS_RCPT:
		return t->rcpt;
	case SMTP_CS_DATA:
		return t->data_init;
	case SMTP_CS_DOT:
		return t->data_term;
	case SMTP_CS_BDAT:
		return e->last ? t->data_term : t->data_block;
	default:
		return t->command;
	}
}

uint64_t smtp_client_deadline(const struct smtp_client *c)
{
	uint32_t t;
	switch (c->state) {
	case SMTP_CLIENT_ST_CLOSED:
		return UINT64_MAX;
	case SMTP_CLIENT_ST_TLS:
		t = c->cfg->timeout_ms.command;
		break;
	default:
		/* §4.5.3.2.5: content must keep moving, fed by the caller or taken by the network */
		if (c->tx.active && c->tx.content &&
		    (c->state == SMTP_CLIENT_ST_CONTENT || out_visible(c) > 0))
			t = c->cfg->timeout_ms.data_block;
		else if (c->q_len)
			t = wait_timeout(c, front(c));
		else
			return UINT64_MAX; /* idle: the pool's own timer */
	}
	return c->t_progress + t;
}

bool smtp_client_timeout(struct smtp_client *c, uint64_t now)
{
	if (now < smtp_client_deadline(c))
		return false;
	c->now = now;
	count(c, SMTP_CC_TIMEOUTS);
	if (c->state == SMTP_CLIENT_ST_QUIT) {
		close_now(c); /* no 221: nothing is lost */
		return true;
	}
	end_session(c, local_result(c, SMTP_CR_TIMEOUT, current_stage(c)));
	return true;
}

static bool content_wanted(const struct smtp_client *c)
{
	if (c->state != SMTP_CLIENT_ST_CONTENT)
		return false;
	if (!c->tx.bdat || c->tx.chunk_open)
		return true;
	/* RFC 3030 §4.2: chunks are pipelined only where PIPELINING is offered */
	return c->tx.bdat_out < (c->tx.pipelined ? BDAT_WINDOW : 1);
}

unsigned smtp_client_events(const struct smtp_client *c)
{
	switch (c->state) {
	case SMTP_CLIENT_ST_CLOSED:
		return SMTP_CLIENT_EV_CLOSE;
	case SMTP_CLIENT_ST_TLS:
		return SMTP_CLIENT_EV_STARTTLS;
	case SMTP_CLIENT_ST_READY:
		return SMTP_CLIENT_EV_READY;
	case SMTP_CLIENT_ST_CONTENT:
		return content_wanted(c) ? SMTP_CLIENT_EV_CONTENT : 0;
	default:
		return 0;
	}
}

/* ---- transactions ------------------------------------------------------------------------- */

/* An address we can put between <>: no line breaks or NUL (command injection), bounded. */
static bool addr_ok(struct smtp_str a, bool may_be_empty)
{
	if (a.len == 0)
		return may_be_empty;
	if (!a.p || a.len > ADDR_MAX)
		return false;
	for (size_t i = 0; i < a.len; i++)
		if (a.p[i] == '\r' || a.p[i] == '\n' || a.p[i] == '\0')
			return false;
	return true;
}

static bool is_ascii(struct smtp_str a)
{
	for (size_t i = 0; i < a.len; i++)
		if (a.p[i] & 0x80)
			return false;
	return true;
}

/* RFC 3461 §4.2 addr-type = atom: what we accept of it. */
static bool addr_type_ok(struct smtp_str t)
{
	if (t.len > 32)
		return false;
	for (size_t i = 0; i < t.len; i++) {
		uint8_t ch = t.p[i];
		if (!((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z') && !(ch >= '0' && ch <= '9') &&
		    ch != '-')
			return false;
	}
	return true;
}

static int msg_check(const struct smtp_client *c, const struct smtp_client_msg *m, bool *utf8)
{
	if (!m || m->nrcpt == 0 || !m->rcpt || m->ret > SMTP_RET_HDRS)
		return -EINVAL;
	if (m->nrcpt > c->cfg->max_rcpts)
		return -E2BIG;
	if (!addr_ok(m->sender, true) || m->envid.len > 4096 || (m->envid.len && !m->envid.p) ||
	    (m->auth.len && !m->auth.p))
		return -EINVAL;
	*utf8 = m->smtputf8 || !is_ascii(m->sender);
	for (unsigned i = 0; i < m->nrcpt; i++) {
		const struct smtp_client_rcpt *r = &m->rcpt[i];
		if (!addr_ok(r->addr, false) || !addr_type_ok(r->orcpt_type))
			return -EINVAL;
		if (r->notify & ~(SMTP_NOTIFY_NEVER | SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE |
				  SMTP_NOTIFY_DELAY))
			return -EINVAL;
		if ((r->notify & SMTP_NOTIFY_NEVER) && r->notify != SMTP_NOTIFY_NEVER)
			return -EINVAL; /* RFC 3461 §4.1 */
		if (r->orcpt.len > 4096 || (r->orcpt.len && !r->orcpt.p))
			return -EINVAL;
		if (!is_ascii(r->addr))
			*utf8 = true;
	}
	return 0;
}

/* Every recipient refused before anything was sent (SIZE, SMTPUTF8, 8BITMIME). */
static void refuse_all(struct smtp_client *c, enum smtp_client_reason why)
{
	struct smtp_client_result r = local_result(c, why, SMTP_CS_LOCAL);
	decide_open(c, &r);
	tx_finish(c);
}

/* MAIL FROM:<sender> and its parameters (RFC 1870, 6152, 6531, 3461 §4.3-4.4, 4954 §5). */
static void build_mail(struct smtp_client *c, struct wb *b, const struct smtp_client_msg *m,
		       bool body8, bool utf8)
{
	wb_str(b, "MAIL FROM:<");
	wb_put(b, m->sender.p, m->sender.len);
	wb_str(b, ">");
	if ((c->ext & SMTP_EXT_SIZE) && m->size) {
		wb_str(b, " SIZE=");
		wb_u64(b, m->size);
	}
	if (body8)
		wb_str(b, " BODY=8BITMIME");
	if (utf8)
		wb_str(b, " SMTPUTF8");
	if (c->ext & SMTP_EXT_DSN) {
		if (m->ret == SMTP_RET_FULL)
			wb_str(b, " RET=FULL");
		else if (m->ret == SMTP_RET_HDRS)
			wb_str(b, " RET=HDRS");
		if (m->envid.len) {
			char x[SMTP_ENVID_MAX];
			ssize_t xl = smtp_xtext_encode(m->envid.p, m->envid.len, x, sizeof(x));
			if (xl < 0) {
				count(c, SMTP_CC_DSN_DROPPED); /* RFC 3461 §4.4: 100 octets */
			} else {
				wb_str(b, " ENVID=");
				wb_put(b, x, (size_t)xl);
			}
		}
	}
	if (c->ext & SMTP_EXT_AUTH) {
		char a[SMTP_AUTHP_WIRE_MAX];
		ssize_t al = smtp_authp_format(a, sizeof(a), m->auth);
		if (al > 0)
			wb_put(b, a, (size_t)al);
	}
	wb_str(b, "\r\n");
}

/* RCPT TO:<addr> with NOTIFY= and ORCPT=type;xtext (RFC 3461 §4.1-4.2) when DSN is offered. */
static void build_rcpt(struct smtp_client *c, struct wb *b, const struct smtp_client_rcpt *r)
{
	wb_str(b, "RCPT TO:<");
	wb_put(b, r->addr.p, r->addr.len);
	wb_str(b, ">");
	if (!(c->ext & SMTP_EXT_DSN)) {
		wb_str(b, "\r\n");
		return;
	}
	if (r->notify) {
		static const struct {
			uint8_t bit;
			const char *name;
		} kw[] = { { SMTP_NOTIFY_SUCCESS, "SUCCESS" },
			   { SMTP_NOTIFY_FAILURE, "FAILURE" },
			   { SMTP_NOTIFY_DELAY, "DELAY" } };
		wb_str(b, " NOTIFY=");
		if (r->notify == SMTP_NOTIFY_NEVER) {
			wb_str(b, "NEVER");
		} else {
			bool first = true;
			for (size_t i = 0; i < sizeof(kw) / sizeof(kw[0]); i++) {
				if (!(r->notify & kw[i].bit))
					continue;
				if (!first)
					wb_str(b, ",");
				wb_str(b, kw[i].name);
				first = false;
			}
		}
	}
	if (r->orcpt.len) {
		char x[SMTP_ORCPT_MAX];
		struct smtp_str type = r->orcpt_type;
		if (type.len == 0)
			type = (struct smtp_str){ (const uint8_t *)"rfc822", 6 };
		size_t room = sizeof(x) - type.len - 1; /* ORCPT value: type ";" xtext <= 500 */
		ssize_t xl = smtp_xtext_encode(r->orcpt.p, r->orcpt.len, x, room);
		if (xl < 0) {
			count(c, SMTP_CC_DSN_DROPPED);
		} else {
			wb_str(b, " ORCPT=");
			wb_put(b, type.p, type.len);
			wb_str(b, ";");
			wb_put(b, x, (size_t)xl);
		}
	}
	wb_str(b, "\r\n");
}

int smtp_client_tx_begin(struct smtp_client *c, const struct smtp_client_msg *m, uint64_t now)
{
	if (c->state != SMTP_CLIENT_ST_READY)
		return -EBUSY;
	bool utf8 = false;
	int err = msg_check(c, m, &utf8);
	if (err)
		return err;
	c->now = now;

	memset(&c->tx, 0, sizeof(c->tx));
	for (unsigned i = 0; i < m->nrcpt; i++)
		c->rcpt[i] = (struct crcpt){ 0 };
	c->tx.nrcpt = c->tx.open = m->nrcpt;
	c->tx.pipelined = c->cfg->pipelining && (c->ext & SMTP_EXT_PIPELINING);
	c->tx.bdat = c->cfg->chunking && (c->ext & SMTP_EXT_CHUNKING);

	/* refusals that need nothing sent: the message could not be taken as it is */
	bool body8 = m->eightbit && (c->ext & SMTP_EXT_8BITMIME);
	enum smtp_client_reason refuse = SMTP_CR_REPLY;
	if ((c->ext & SMTP_EXT_SIZE) && c->size_limit && m->size > c->size_limit) {
		count(c, SMTP_CC_SIZE_REFUSED); /* RFC 1870 §6 */
		refuse = SMTP_CR_SIZE;
	} else if (utf8 && !(c->ext & SMTP_EXT_SMTPUTF8)) {
		count(c, SMTP_CC_UTF8_REFUSED); /* RFC 6531 §3.4 */
		refuse = SMTP_CR_NO_SMTPUTF8;
	} else if (m->eightbit && !body8) {
		if (c->cfg->send_8bit) {
			count(c, SMTP_CC_8BIT_UNDECLARED);
		} else {
			count(c, SMTP_CC_8BIT_REFUSED); /* RFC 6152 §3 */
			refuse = SMTP_CR_NO_8BITMIME;
		}
	}

	if (refuse != SMTP_CR_REPLY) {
		c->tx.active = true;
		count(c, SMTP_CC_TRANSACTIONS);
		refuse_all(c, refuse);
		return 0;
	}

	/* MAIL, then each RCPT line, into the arena (all sent now when pipelining) */
	struct wb b = { c->arena, 0, c->arena_size, false };
	build_mail(c, &b, m, body8, utf8);
	c->tx.mail_len = (uint32_t)b.len;
	for (unsigned i = 0; i < m->nrcpt && !b.full; i++) {
		size_t s = b.len;
		build_rcpt(c, &b, &m->rcpt[i]);
		c->rcpt[i].off = (uint32_t)s;
		c->rcpt[i].len = (uint16_t)(b.len - s);
	}
	if (b.full) {
		memset(&c->tx, 0, sizeof(c->tx));
		return -ENOSPC;
	}
	size_t need = c->tx.pipelined ? b.len + (c->tx.bdat ? 0 : 6) : c->tx.mail_len;
	if (need > c->out_size - c->out_len) {
		memset(&c->tx, 0, sizeof(c->tx));
		return -EAGAIN;
	}
	c->tx.active = true;
	c->t_progress = now;
	count(c, SMTP_CC_TRANSACTIONS);
	c->state = SMTP_CLIENT_ST_ENVELOPE;
	if (!emit(c, SMTP_CS_MAIL, 0, false, c->arena, c->tx.mail_len) || !c->tx.pipelined)
		return 0;
	/* RFC 2920 §3.1: RCPTs anywhere in the group, DATA last */
	while (c->tx.next_rcpt < c->tx.nrcpt && c->state != SMTP_CLIENT_ST_CLOSED)
		send_next_rcpt(c);
	if (!c->tx.bdat && c->state != SMTP_CLIENT_ST_CLOSED)
		emit_str(c, SMTP_CS_DATA, "DATA\r\n");
	return 0;
}

/* Opens a BDAT chunk at the end of the output: its header is written when it closes. */
static void open_chunk(struct smtp_client *c)
{
	c->tx.chunk_open = true;
	c->tx.chunk_start = c->out_len;
	c->tx.chunk_len = 0;
	c->out_len += BDAT_HDR;
}

/* "BDAT <size>[ LAST]" goes in front of the chunk's octets (RFC 3030 §2); it becomes sendable. */
static void close_chunk(struct smtp_client *c, bool last)
{
	uint8_t hdr[BDAT_HDR];
	struct wb b = { hdr, 0, sizeof(hdr), false };
	wb_str(&b, "BDAT ");
	wb_u64(&b, c->tx.chunk_len);
	if (last)
		wb_str(&b, " LAST");
	wb_str(&b, "\r\n");
	uint8_t *start = c->out + c->tx.chunk_start;
	memmove(start + b.len, start + BDAT_HDR, c->tx.chunk_len);
	memcpy(start, hdr, b.len);
	c->out_len = c->tx.chunk_start + (uint32_t)(b.len + c->tx.chunk_len);
	c->tx.chunk_open = false;
	c->written += b.len + c->tx.chunk_len;
	c->tx.bdat_out++;
	struct pend *e = &c->q[(c->q_head + c->q_len) % c->q_cap];
	c->q_len++;
	*e = (struct pend){ .mark = c->written, .kind = SMTP_CS_BDAT, .last = last };
}

static size_t bdat_data(struct smtp_client *c, const uint8_t *p, size_t n)
{
	size_t limit = content_limit(c), used = 0;
	while (used < n) {
		if (!c->tx.chunk_open) {
			if (!content_wanted(c) || c->q_len == c->q_cap ||
			    c->out_len + BDAT_HDR + 1 > limit)
				break;
			open_chunk(c);
		}
		size_t w;
		used += smtp_stuff(&c->tx.stuff, p + used, n - used, c->out + c->out_len,
				   limit - c->out_len, &w);
		c->out_len += (uint32_t)w;
		c->tx.chunk_len += (uint32_t)w;
		if (c->out_len >= limit)
			close_chunk(c, false); /* full: let it go */
	}
	/* small pieces gather until a chunk is worth its header */
	if (c->tx.chunk_open && c->tx.chunk_len >= limit / 2)
		close_chunk(c, false);
	return used;
}

size_t smtp_client_data(struct smtp_client *c, const uint8_t *p, size_t n, uint64_t now)
{
	if (n == 0 || !content_wanted(c))
		return 0;
	c->now = now;
	size_t used;
	if (c->tx.bdat) {
		used = bdat_data(c, p, n);
	} else {
		size_t limit = content_limit(c), w = 0;
		used = 0;
		if (c->out_len < limit)
			used = smtp_stuff(&c->tx.stuff, p, n, c->out + c->out_len,
					  limit - c->out_len, &w);
		c->out_len += (uint32_t)w;
		c->written += w;
	}
	if (used) {
		c->tx.bytes += used;
		c->t_progress = now;
	}
	return used;
}

int smtp_client_data_end(struct smtp_client *c, uint64_t now)
{
	if (c->state != SMTP_CLIENT_ST_CONTENT)
		return -EINVAL;
	uint8_t end[SMTP_STUFF_END_MAX];
	size_t e = smtp_stuff_end(&c->tx.stuff, end);
	c->now = now;
	if (c->q_len == c->q_cap)
		return -EAGAIN;
	if (!c->tx.bdat) {
		if (e > c->out_size - c->out_len)
			return -EAGAIN;
		emit(c, SMTP_CS_DOT, 0, false, end, e);
	} else {
		if (!c->tx.chunk_open) {
			if (!content_wanted(c) || c->out_len + BDAT_HDR + e > c->out_size)
				return -EAGAIN;
			open_chunk(c);
		} else if (e > c->out_size - c->out_len) {
			return -EAGAIN;
		}
		memcpy(c->out + c->out_len, end, e);
		c->out_len += (uint32_t)e;
		c->tx.chunk_len += (uint32_t)e;
		close_chunk(c, true);
	}
	c->tx.data_sent = true;
	c->state = SMTP_CLIENT_ST_END;
	c->t_progress = now;
	return 0;
}

int smtp_client_quit(struct smtp_client *c, uint64_t now)
{
	if (c->state != SMTP_CLIENT_ST_READY)
		return -EBUSY;
	c->now = now;
	c->t_progress = now;
	if (emit_str(c, SMTP_CS_QUIT, "QUIT\r\n"))
		c->state = SMTP_CLIENT_ST_QUIT;
	return 0;
}

void smtp_client_tls_done(struct smtp_client *c, bool ok, uint64_t now)
{
	if (c->state != SMTP_CLIENT_ST_TLS)
		return;
	c->now = now;
	c->t_progress = now;
	if (!ok) {
		count(c, SMTP_CC_TLS_FAILURES);
		end_session(c, local_result(c, SMTP_CR_TLS_FAILED, SMTP_CS_TLS));
		return;
	}
	c->tls = true;
	send_hello(c, true); /* RFC 3207 §4.2: start over, forget the old EHLO */
}

static void lost(struct smtp_client *c, enum smtp_client_reason why, uint64_t now)
{
	if (c->state == SMTP_CLIENT_ST_CLOSED)
		return;
	c->now = now;
	if (c->state == SMTP_CLIENT_ST_QUIT) {
		close_now(c); /* the end we asked for */
		return;
	}
	if (why == SMTP_CR_CONN_LOST)
		count(c, SMTP_CC_CONN_LOST);
	end_session(c, local_result(c, why, current_stage(c)));
}

void smtp_client_lost(struct smtp_client *c, uint64_t now)
{
	lost(c, SMTP_CR_CONN_LOST, now);
}

void smtp_client_abort(struct smtp_client *c, uint64_t now)
{
	lost(c, SMTP_CR_ABORTED, now);
}

const struct smtp_client_result *smtp_client_error(const struct smtp_client *c)
{
	return c->failed ? &c->err : NULL;
}

enum smtp_client_state smtp_client_state(const struct smtp_client *c)
{
	return c->state;
}

unsigned smtp_client_ext(const struct smtp_client *c)
{
	return c->ext;
}

uint64_t smtp_client_size_limit(const struct smtp_client *c)
{
	return c->size_limit;
}

bool smtp_client_tls(const struct smtp_client *c)
{
	return c->tls;
}

void smtp_client_set_udata(struct smtp_client *c, void *udata)
{
	c->udata = udata;
}

void *smtp_client_udata(const struct smtp_client *c)
{
	return c->udata;
}
