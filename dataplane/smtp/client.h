/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The SMTP client engine for relay: one session per outbound connection,
 * transport-agnostic and pure like the server engine. The server's octets
 * go in (smtp_client_input, any chunking), the octets to send come out of
 * one output buffer (smtp_client_output), recipient results come out
 * through callbacks, and the clock is a millisecond count passed in on every
 * call. No I/O, no DPDK, no timers of its own: the session reports the
 * deadline of its current wait and the caller calls smtp_client_timeout()
 * when it passes.
 *
 * What the glue does:
 *   connected: c = smtp_client_init(mem, cfg, ctx, flags, now); arm the
 *              timer at smtp_client_deadline(c)
 *   received:  smtp_client_input(c, p, n, now) for each contiguous piece
 *              (it takes everything), then flush
 *   flush:     n = smtp_client_output(c, &p); send; smtp_client_output_done(c, sent, now).
 *              Report sent octets before feeding the replies to them: a
 *              reply to a command not yet sent is a protocol error.
 *   events:    after every call, smtp_client_events(c):
 *     READY    idle: smtp_client_tx_begin() a message, smtp_client_quit(),
 *              or keep the connection for later (the pool's idle timer)
 *     CONTENT  feed smtp_client_data() until it takes less than given
 *              (flush, go on), then smtp_client_data_end()
 *     STARTTLS flush, run the TLS handshake, smtp_client_tls_done()
 *     CLOSE    flush what is left, then close; smtp_client_error() says why
 *              unless the session ended with our QUIT
 *   timer:     smtp_client_timeout(c, now); flush; re-arm
 *   closed:    by the peer or reset: smtp_client_lost(c, now); to end a
 *              session ourselves mid-way (shutdown): smtp_client_abort(c, now)
 *   results:   ops->rcpt_done() once per recipient when its outcome is
 *              final, ops->tx_done() once per transaction after the last
 *              of them. Callbacks must not call into the engine.
 *   end:       smtp_client_fini(c) (decides whatever is still open as lost)
 *
 * RFC 5321 with PIPELINING (RFC 2920), SIZE (RFC 1870), 8BITMIME (RFC 6152),
 * SMTPUTF8 (RFC 6531), CHUNKING (RFC 3030), DSN (RFC 3461), STARTTLS
 * (RFC 3207) and ENHANCEDSTATUSCODES (RFC 2034, RFC 3463).
 */
#ifndef MX_SMTP_CLIENT_H
#define MX_SMTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataplane/smtp/client_reply.h"
#include "dataplane/smtp/client_stuff.h"
#include "dataplane/smtp/parse.h"

/* Counters of one worker's client sessions: X(ENUM, "telemetry name"). */
#define SMTP_CLIENT_COUNTERS(X)                                                                    \
	X(SESSIONS, "smtp_client_sessions")                                                        \
	X(SESSION_FAILURES, "smtp_client_session_failures") /* ended other than by our QUIT */     \
	X(TRANSACTIONS, "smtp_client_transactions")                                                \
	X(MESSAGES_DELIVERED, "smtp_client_messages_delivered") /* final 2xx */                    \
	X(MESSAGE_BYTES, "smtp_client_message_bytes")		/* content of those */             \
	X(RCPTS_DELIVERED, "smtp_client_rcpts_delivered")                                          \
	X(RCPTS_DEFERRED, "smtp_client_rcpts_deferred")                                            \
	X(RCPTS_FAILED, "smtp_client_rcpts_failed")                                                \
	X(REPLIES_2XX, "smtp_client_replies_2xx")                                                  \
	X(REPLIES_3XX, "smtp_client_replies_3xx")                                                  \
	X(REPLIES_4XX, "smtp_client_replies_4xx")                                                  \
	X(REPLIES_5XX, "smtp_client_replies_5xx")                                                  \
	X(PROTOCOL_ERRORS, "smtp_client_protocol_errors")                                          \
	X(TIMEOUTS, "smtp_client_timeouts")                                                        \
	X(CONN_LOST, "smtp_client_conn_lost")                                                      \
	X(SERVER_CLOSED, "smtp_client_server_closed") /* 421 */                                    \
	X(HELO_FALLBACKS, "smtp_client_helo_fallbacks")                                            \
	X(STARTTLS, "smtp_client_starttls")                                                        \
	X(TLS_FAILURES, "smtp_client_tls_failures")                                                \
	X(NO_TLS, "smtp_client_no_tls")			  /* TLS required, STARTTLS not offered */ \
	X(SIZE_REFUSED, "smtp_client_size_refused")	  /* over the server's SIZE, not sent */   \
	X(UTF8_REFUSED, "smtp_client_utf8_refused")	  /* SMTPUTF8 needed, not offered */       \
	X(8BIT_REFUSED, "smtp_client_8bit_refused")	  /* 8-bit, 8BITMIME not offered */        \
	X(8BIT_UNDECLARED, "smtp_client_8bit_undeclared") /* ... sent anyway (send_8bit) */        \
	X(DSN_DROPPED, "smtp_client_dsn_dropped")     /* ORCPT/ENVID over the RFC 3461 limits */   \
	X(INPUT_IGNORED, "smtp_client_input_ignored") /* octets after the session ended */

#define SMTP_CC_ENUM_(e, name) SMTP_CC_##e,
enum smtp_client_counter {
	SMTP_CLIENT_COUNTERS(SMTP_CC_ENUM_) SMTP_CC_MAX
};
#undef SMTP_CC_ENUM_

extern const char *const smtp_client_counter_names[SMTP_CC_MAX];

/* One worker's counters. All-zero is the valid start. Single writer: the worker. */
struct smtp_client_stats {
	uint64_t c[SMTP_CC_MAX];
};

/* Per-worker engine state shared by the worker's client sessions. */
struct smtp_client_ctx {
	struct smtp_client_stats stats;
};

/* Where a session or transaction was when something was decided. */
#define SMTP_CLIENT_STAGES(X)                                                                      \
	X(NONE, "none")                                                                            \
	X(GREETING, "greeting")                                                                    \
	X(EHLO, "EHLO")                                                                            \
	X(HELO, "HELO")                                                                            \
	X(STARTTLS, "STARTTLS")                                                                    \
	X(TLS, "TLS handshake")                                                                    \
	X(MAIL, "MAIL FROM")                                                                       \
	X(RCPT, "RCPT TO")                                                                         \
	X(DATA, "DATA")                                                                            \
	X(CONTENT, "message content")                                                              \
	X(DOT, "end of data")                                                                      \
	X(BDAT, "BDAT")                                                                            \
	X(RSET, "RSET")                                                                            \
	X(QUIT, "QUIT")                                                                            \
	X(LOCAL, "before MAIL FROM") /* decided without sending: SIZE, SMTPUTF8, 8BITMIME */

#define SMTP_CS_ENUM_(e, name) SMTP_CS_##e,
enum smtp_client_stage {
	SMTP_CLIENT_STAGES(SMTP_CS_ENUM_) SMTP_CS_MAX
};
#undef SMTP_CS_ENUM_

extern const char *const smtp_client_stage_names[SMTP_CS_MAX];

/*
 * Why: X(ENUM, enhanced status code, text). REPLY: the server's reply
 * decided. Every other reason is ours: the result's reply then has code 0,
 * this status code and "text (stage)".
 */
#define SMTP_CLIENT_REASONS(X)                                                                     \
	X(REPLY, NULL, NULL)                                                                       \
	X(TIMEOUT, "4.4.2", "conversation timed out")                                              \
	X(CONN_LOST, "4.4.2", "lost connection")                                                   \
	X(ABORTED, "4.3.2", "delivery aborted locally")                                            \
	X(TLS_FAILED, "4.7.5", "TLS handshake failed")                                             \
	X(NO_STARTTLS, "4.7.4", "TLS is required, but was not offered")                            \
	X(OUTPUT_FULL, "4.3.0", "local error: output buffer full")                                 \
	X(SIZE, "5.3.4", "message size exceeds the server's fixed maximum")                        \
	X(NO_SMTPUTF8, "5.6.7", "SMTPUTF8 is required, but was not offered")                       \
	X(NO_8BITMIME, "5.6.3", "8-bit content, but 8BITMIME was not offered")                     \
	/* protocol errors: the session closes without QUIT */                                     \
	X(BAD_CODE, "4.5.0", "protocol error: malformed reply code")                               \
	X(CODE_MISMATCH, "4.5.0", "protocol error: reply lines with different codes")              \
	X(LINE_TOO_LONG, "4.5.0", "protocol error: reply line too long")                           \
	X(TOO_MANY_LINES, "4.5.0", "protocol error: reply with too many lines")                    \
	X(BARE_CR, "4.5.0", "protocol error: bare <CR> in reply")                                  \
	X(BARE_LF, "4.5.0", "protocol error: bare <LF> in reply")                                  \
	X(UNEXPECTED, "4.5.0", "protocol error: unexpected reply")                                 \
	X(EARLY, "4.5.0", "protocol error: reply to a command not sent yet")                       \
	X(TLS_INJECTION, "4.5.0", "protocol error: plaintext after the STARTTLS reply")

#define SMTP_CR_ENUM_(e, esc, text) SMTP_CR_##e,
enum smtp_client_reason {
	SMTP_CLIENT_REASONS(SMTP_CR_ENUM_) SMTP_CR_MAX
};
#undef SMTP_CR_ENUM_

extern const char *const smtp_client_reason_names[SMTP_CR_MAX];

/* True for the reasons that are protocol errors. */
bool smtp_client_reason_is_protocol(enum smtp_client_reason r);

enum smtp_client_outcome {
	SMTP_CO_NONE = 0,  /* not decided (never reported) */
	SMTP_CO_DELIVERED, /* 2xx after the end of data */
	SMTP_CO_DEFERRED,  /* try again later: 4xx, timeout, lost, protocol error */
	SMTP_CO_FAILED,	   /* permanent: 5xx, or refused before sending (bounce) */
};

extern const char *const smtp_client_outcome_names[];

/* Reply text kept per reply: the lines' texts joined by a space, sanitised, cut here. */
#define SMTP_CLIENT_TEXT_MAX 512

/* A bounded copy of the reply that decided something (or our own, code 0). */
struct smtp_client_reply {
	uint16_t code;			     /* 0: not the server's (see the reason) */
	char esc[SMTP_ESC_MAX + 1];	     /* "5.1.1", or "" when the reply had none */
	uint16_t text_len;		     /* octets in text */
	char text[SMTP_CLIENT_TEXT_MAX + 1]; /* octets 0x20..0x7e only, NUL-terminated */
};

/* An outcome: of one recipient (rcpt_done), or of the session (smtp_client_error). */
struct smtp_client_result {
	enum smtp_client_outcome outcome;
	enum smtp_client_reason reason;
	enum smtp_client_stage stage;	       /* what the reply answered, or where we were */
	const struct smtp_client_reply *reply; /* valid during the callback / until the next call */
};

/* How a transaction ended (tx_done). */
struct smtp_client_tx_summary {
	unsigned nrcpt, delivered, deferred, failed;
	bool data_sent; /* content went out (a final reply was waited for) */
};

struct smtp_client;

/* Results. ARG is the config's ops_arg. Neither may call into the engine. */
struct smtp_client_ops {
	/* Recipient IDX (its index in the message given to tx_begin) has its final outcome. */
	void (*rcpt_done)(void *arg, struct smtp_client *c, unsigned idx,
			  const struct smtp_client_result *r);
	/* Every recipient of the transaction was reported. */
	void (*tx_done)(void *arg, struct smtp_client *c, const struct smtp_client_tx_summary *s);
};

/* When to use STARTTLS (RFC 3207). */
enum smtp_client_tls {
	SMTP_CLIENT_TLS_NONE = 0, /* never */
	SMTP_CLIENT_TLS_MAY,	  /* when offered; plaintext when not offered or refused */
	SMTP_CLIENT_TLS_ENCRYPT,  /* required: no STARTTLS, or refused, defers (4.7.4) */
};

/* RFC 5321 §4.5.3.2, client side, in milliseconds. */
struct smtp_client_timeouts {
	uint32_t greeting;   /* initial 220: 5 min */
	uint32_t command;    /* EHLO/HELO, STARTTLS, the TLS handshake, RSET, QUIT: 5 min */
	uint32_t mail;	     /* MAIL reply: 5 min */
	uint32_t rcpt;	     /* RCPT reply: 5 min */
	uint32_t data_init;  /* DATA reply (354): 2 min */
	uint32_t data_block; /* content not moving (nothing fed or sent), BDAT chunk reply: 3 min */
	uint32_t data_term;  /* final reply after the end of data: 10 min */
};

/* A client profile (per next hop or policy). Immutable while sessions use it. */
struct smtp_client_config {
	const char *helo_name; /* EHLO/HELO argument: a domain or an address literal */
	enum smtp_client_tls tls;
	bool pipelining; /* use PIPELINING when offered (default on) */
	bool chunking;	 /* use BDAT when CHUNKING is offered (default off: DATA) */
	/*
	 * 8-bit content (msg->eightbit) for a server without 8BITMIME: false
	 * (default) fails the recipients 5.6.3 without sending (RFC 6152 §3:
	 * such content must be converted or returned, and we do not convert);
	 * true sends it anyway without BODY= (Postfix's default behaviour).
	 */
	bool send_8bit;
	unsigned max_rcpts;	  /* per transaction (RFC 5321 §4.5.3.1.8: servers take >= 100) */
	unsigned max_reply_line;  /* octets incl. CRLF (RFC 5321 §4.5.3.1.5: 512) */
	unsigned max_reply_lines; /* lines of one reply (an EHLO reply has one per keyword) */
	unsigned output_size;	  /* output buffer; at least envelope_size + 4096 */
	unsigned envelope_size;	  /* arena for one transaction's MAIL and RCPT lines */
	struct smtp_client_timeouts timeout_ms;
	const struct smtp_client_ops *ops;
	void *ops_arg;
};

/* Fills C with the defaults above (helo_name "localhost"; set ops yourself). */
void smtp_client_config_default(struct smtp_client_config *c);

/* One recipient to deliver to. Slices are read during smtp_client_tx_begin() only. */
struct smtp_client_rcpt {
	struct smtp_str addr;	    /* mailbox, without <> */
	uint8_t notify;		    /* SMTP_NOTIFY_* for DSN NOTIFY=; 0: none */
	struct smtp_str orcpt_type; /* ORCPT addr-type; empty: "rfc822" */
	struct smtp_str orcpt;	    /* ORCPT address, decoded (sent as xtext); empty: none */
};

/* One message to send. Slices are read during smtp_client_tx_begin() only. */
struct smtp_client_msg {
	struct smtp_str sender; /* reverse-path mailbox without <>; empty: the null path <> */
	const struct smtp_client_rcpt *rcpt;
	unsigned nrcpt;
	uint64_t size; /* content octets as they will be given; 0: unknown (no SIZE=) */
	bool eightbit; /* the content has octets over 127: BODY=8BITMIME */
	bool smtputf8; /* needs SMTPUTF8 (UTF-8 header fields); implied by a UTF-8 address */
	uint8_t ret;   /* enum smtp_ret: DSN RET=; SMTP_RET_NONE: not given */
	struct smtp_str envid; /* DSN ENVID=, decoded (sent as xtext); empty: none */
	/* RFC 4954 §5 submitter mailbox (smtp_authp_identity()), decoded; empty: unknown. Sent
	 * as AUTH=xtext to a server whose EHLO offers AUTH only; unknown sends nothing */
	struct smtp_str auth;
};

/* Session states. */
enum smtp_client_state {
	SMTP_CLIENT_ST_GREETING, /* waiting for the 220 */
	SMTP_CLIENT_ST_EHLO,	 /* EHLO sent */
	SMTP_CLIENT_ST_HELO,	 /* HELO sent (EHLO was refused) */
	SMTP_CLIENT_ST_STARTTLS, /* STARTTLS sent */
	SMTP_CLIENT_ST_TLS,	 /* 220 to STARTTLS: the caller's TLS handshake */
	SMTP_CLIENT_ST_READY,	 /* idle: a transaction may start */
	SMTP_CLIENT_ST_ENVELOPE, /* MAIL/RCPT (and pipelined DATA) replies awaited */
	SMTP_CLIENT_ST_CONTENT,	 /* the message content is being sent */
	SMTP_CLIENT_ST_END,	 /* end of data sent: the final reply awaited */
	SMTP_CLIENT_ST_RESET,	 /* the transaction failed: leftover replies, then RSET */
	SMTP_CLIENT_ST_QUIT,	 /* QUIT sent */
	SMTP_CLIENT_ST_CLOSED,	 /* close the connection; input is ignored */
	SMTP_CLIENT_ST_MAX
};

extern const char *const smtp_client_state_names[SMTP_CLIENT_ST_MAX];

/* smtp_client_events() */
#define SMTP_CLIENT_EV_READY	0x1 /* idle: tx_begin() or quit() */
#define SMTP_CLIENT_EV_CONTENT	0x2 /* data() and data_end() take content now (after a flush) */
#define SMTP_CLIENT_EV_STARTTLS 0x4 /* flush, do the TLS handshake, then smtp_client_tls_done() */
#define SMTP_CLIENT_EV_CLOSE	0x8 /* flush, then close the connection */

/* smtp_client_init() flags */
#define SMTP_CLIENT_TLS_ON 0x1 /* implicit TLS: the session starts under TLS (no STARTTLS) */

/* Bytes smtp_client_init() needs for a session under CFG. */
size_t smtp_client_size(const struct smtp_client_config *cfg);

/*
 * Starts a session in MEM (smtp_client_size(cfg) bytes, 16-byte aligned) on
 * a connection that was just established: it waits for the greeting. CFG
 * and CTX must outlive it. Returns MEM as the session, or NULL when CFG is
 * unusable (no ops, a bad helo_name, limits below what the protocol needs).
 */
struct smtp_client *smtp_client_init(void *mem, const struct smtp_client_config *cfg,
				     struct smtp_client_ctx *ctx, unsigned flags, uint64_t now);

/* smtp_client_init() in memory from malloc; NULL on failure. Free with smtp_client_free(). */
struct smtp_client *smtp_client_new(const struct smtp_client_config *cfg,
				    struct smtp_client_ctx *ctx, unsigned flags, uint64_t now);

/*
 * Ends C as smtp_client_abort() does (nothing happens for a CLOSED session):
 * undecided recipients are reported deferred first. MEM stays the caller's.
 */
void smtp_client_fini(struct smtp_client *c);

/* smtp_client_fini() and free() for sessions from smtp_client_new(). NULL is a no-op. */
void smtp_client_free(struct smtp_client *c);

/*
 * Feeds N octets from the server; all are taken. Complete replies are acted
 * on at once: results, the next commands in the output, state changes. Once
 * the session is CLOSED, input is ignored (and counted).
 */
void smtp_client_input(struct smtp_client *c, const uint8_t *p, size_t n, uint64_t now);

/* Octets waiting to be sent: sets *P and returns their length (0: none). */
size_t smtp_client_output(const struct smtp_client *c, const uint8_t **p);

/* N octets of the output were sent; they are dropped from its front. */
void smtp_client_output_done(struct smtp_client *c, size_t n, uint64_t now);

/* The session clock value at which smtp_client_timeout() must run; UINT64_MAX: none. */
uint64_t smtp_client_deadline(const struct smtp_client *c);

/*
 * Runs the RFC 5321 §4.5.3.2 timeout of the current wait if it is due at
 * NOW: the transaction's undecided recipients are deferred ("conversation
 * timed out") and the session closes without QUIT. Returns true when it
 * was due, false when not yet.
 */
bool smtp_client_timeout(struct smtp_client *c, uint64_t now);

/* SMTP_CLIENT_EV_* bits for what the caller must do now. */
unsigned smtp_client_events(const struct smtp_client *c);

/*
 * Starts a transaction for MSG (READY only). Before anything is sent: a
 * SIZE over the server's fixed maximum (RFC 1870 §6, 5.3.4), a UTF-8
 * message for a server without SMTPUTF8 (RFC 6531 §3.4, 5.6.7), or 8-bit
 * content for one without 8BITMIME (RFC 6152 §3, 5.6.3, unless
 * cfg->send_8bit) fail every recipient at once, through the callbacks,
 * and the session stays READY. Otherwise MAIL goes out -- with every RCPT
 * and DATA in the same output when PIPELINING is offered (RFC 2920).
 * MSG and what it points to are copied; the caller may reuse them at once.
 *
 * Returns 0 (started, or decided at once), -EBUSY when the session is not
 * READY, -EINVAL for a message that cannot be sent (no recipient, an
 * address with CR, LF or NUL or over 254 octets, NOTIFY=NEVER with other
 * NOTIFY bits, a bad ORCPT type), -E2BIG for more than cfg->max_rcpts
 * recipients, -ENOSPC when the envelope does not fit cfg->envelope_size,
 * -EAGAIN when the output holds unsent octets that leave no room for it.
 */
int smtp_client_tx_begin(struct smtp_client *c, const struct smtp_client_msg *msg, uint64_t now);

/*
 * Message content, in order, as stored (not dot-stuffed, CRLF line ends);
 * any chunking. Takes what fits in the output -- stuffed for DATA, framed
 * in BDAT chunks for CHUNKING -- and returns the octets taken: fewer than N
 * when the output needs a flush, 0 also when content is not wanted now
 * (events without SMTP_CLIENT_EV_CONTENT: a BDAT reply is awaited, or the
 * transaction ended).
 */
size_t smtp_client_data(struct smtp_client *c, const uint8_t *p, size_t n, uint64_t now);

/*
 * All content was given: writes the end of data (a CRLF when the content
 * did not end with one, then "." CRLF for DATA; the LAST chunk for BDAT)
 * and waits for the final reply. Returns 0, -EAGAIN when the output must
 * be flushed or a BDAT reply come in first (call again on the next
 * SMTP_CLIENT_EV_CONTENT), or -EINVAL outside the content phase.
 */
int smtp_client_data_end(struct smtp_client *c, uint64_t now);

/* Ends an idle (READY) session with QUIT. Returns 0, or -EBUSY in any other state. */
int smtp_client_quit(struct smtp_client *c, uint64_t now);

/*
 * The TLS handshake after STARTTLS finished. OK: the session starts over
 * with EHLO and forgets the extensions it was told before (RFC 3207 §4.2).
 * Not OK: the session fails (4.7.5) and closes. Ignored unless in TLS.
 */
void smtp_client_tls_done(struct smtp_client *c, bool ok, uint64_t now);

/*
 * The connection was closed or reset under us. Recipients not decided yet
 * -- also those accepted at RCPT whose final reply never came -- are
 * deferred; ones whose final 2xx was read stay delivered. After our QUIT
 * this is the normal end, not an error.
 */
void smtp_client_lost(struct smtp_client *c, uint64_t now);

/* As smtp_client_lost(), for a session we end ourselves (shutdown): reason ABORTED. */
void smtp_client_abort(struct smtp_client *c, uint64_t now);

/*
 * Why the session ended or cannot go on (a refused greeting, EHLO or HELO,
 * TLS required and not offered, a failed handshake, RSET refused, 421, a
 * protocol error, a timeout, the connection lost); NULL when it did not
 * fail. For replies the outcome follows their class; ours are deferrals.
 */
const struct smtp_client_result *smtp_client_error(const struct smtp_client *c);

enum smtp_client_state smtp_client_state(const struct smtp_client *c);
/* SMTP_EXT_* the server offered in its last EHLO reply (0 after HELO). */
unsigned smtp_client_ext(const struct smtp_client *c);
/* The server's SIZE fixed maximum, 0 when none. */
uint64_t smtp_client_size_limit(const struct smtp_client *c);
/* The session runs under TLS (implicit, or after STARTTLS). */
bool smtp_client_tls(const struct smtp_client *c);

/* A pointer for the caller (its connection); not used by the engine. */
void smtp_client_set_udata(struct smtp_client *c, void *udata);
void *smtp_client_udata(const struct smtp_client *c);

#endif
