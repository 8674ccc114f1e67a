/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The SMTP server engine: one session per connection, transport-agnostic and
 * pure. Bytes go in (smtp_server_input), replies come out of one output
 * buffer (smtp_server_output), message content goes to a sink, and the clock
 * is a millisecond count the caller passes in. No I/O, no DPDK, no timers of
 * its own: the session reports its next deadline and the caller calls
 * smtp_server_timeout() when it passes.
 *
 * What the glue does (DESIGN.md §3):
 *   accept:   s = smtp_server_init(mem, cfg, ctx, &peer, flags, now)
 *             flush; arm the timer at smtp_server_deadline(s)
 *   received: for each contiguous piece: used = smtp_server_input(s, p, n, now);
 *             on used < n: flush the output and feed the rest again; if the
 *             session is PENDING keep the rest until it is not. (Input in
 *             STARTTLS is taken and discarded: RFC 3207 §4.2, CVE-2011-0411.)
 *             Then flush once (all replies of a pipelined group in one send)
 *             and re-arm the timer at smtp_server_deadline(s).
 *   timer:    smtp_server_timeout(s, now); flush; re-arm.
 *   events:   SMTP_EV_CLOSE: flush, then close. SMTP_EV_STARTTLS: flush the
 *             220, start TLS, call smtp_server_tls_started(). SMTP_EV_PENDING:
 *             the sink's end() said "pending": call smtp_server_tx_done()
 *             when it completes, then flush and feed what was kept.
 *   closed:   smtp_server_fini(s) (aborts an unfinished transaction).
 */
#ifndef MX_SMTP_H
#define MX_SMTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataplane/smtp/data.h"
#include "dataplane/smtp/parse.h"
#include "dataplane/smtp/queueid.h"
#include "dataplane/smtp/reply.h"

/* Counters of one worker's engine: X(ENUM, "telemetry name"). */
#define SMTP_COUNTERS(X)                                                                           \
	X(SESSIONS, "smtp_sessions")                                                               \
	X(COMMANDS, "smtp_commands")                                                               \
	X(MESSAGES_ACCEPTED, "smtp_messages_accepted")                                             \
	X(MESSAGES_REJECTED, "smtp_messages_rejected")   /* refused after content */               \
	X(MESSAGE_BYTES, "smtp_message_bytes")           /* content of accepted messages */        \
	X(RCPTS_ACCEPTED, "smtp_rcpts_accepted")                                                   \
	X(REPLIES_4XX, "smtp_replies_4xx")                                                         \
	X(REPLIES_5XX, "smtp_replies_5xx")                                                         \
	X(UNKNOWN_COMMANDS, "smtp_unknown_commands")                                               \
	X(SYNTAX_ERRORS, "smtp_syntax_errors")                                                     \
	X(BAD_SEQUENCE, "smtp_bad_sequence")                                                       \
	X(NOT_OFFERED, "smtp_not_offered")                                                         \
	X(LINE_TOO_LONG, "smtp_line_too_long")           /* command line over max_cmd_line */      \
	X(INPUT_NO_CRLF, "smtp_input_no_crlf")           /* closed: max_input_no_crlf, no CRLF */  \
	X(CMD_BARE_EOL, "smtp_cmd_bare_eol")             /* bare CR or LF in a command */          \
	X(DATA_BARE_EOL, "smtp_data_bare_eol")           /* refused: bare CR/LF or NUL */          \
	X(DATA_NORMALIZED, "smtp_data_normalized")       /* messages with bare CR/LF rewritten */  \
	X(DATA_LINE_TOO_LONG, "smtp_data_line_too_long")                                           \
	X(SIZE_PARAM_EXCEEDED, "smtp_size_param_exceeded") /* MAIL SIZE= over the limit */         \
	X(SIZE_EXCEEDED, "smtp_size_exceeded")           /* content over the limit */              \
	X(TOO_MANY_RCPTS, "smtp_too_many_rcpts")                                                   \
	X(ENVELOPE_FULL, "smtp_envelope_full")           /* the tx arena ran out */                \
	X(TOO_MANY_ERRORS, "smtp_too_many_errors")                                                 \
	X(TIMEOUTS, "smtp_timeouts")                                                               \
	X(EARLY_TALKERS, "smtp_early_talkers")                                                     \
	X(UNAUTH_PIPELINING, "smtp_unauth_pipelining")                                             \
	X(MAIL_LOOPS, "smtp_mail_loops")                                                           \
	X(SINK_REFUSED, "smtp_sink_refused")                                                       \
	X(POLICY_REJECTS, "smtp_policy_rejects")         /* connect/mail/rcpt hooks said no */     \
	X(STARTTLS, "smtp_starttls")                                                               \
	X(STARTTLS_DISCARDED, "smtp_starttls_discarded") /* octets after STARTTLS: CVE-2011-0411 */ \
	X(AUTH_SUCCESS, "smtp_auth_success")                                                       \
	X(AUTH_FAILURE, "smtp_auth_failure")             /* every refused AUTH, whatever the cause */ \
	X(AUTH_CANCELLED, "smtp_auth_cancelled")         /* "*": 501 5.0.0 (RFC 4954 §4) */        \
	X(AUTH_BAD_BASE64, "smtp_auth_bad_base64")       /* 501 5.5.2 */                           \
	X(AUTH_LINE_TOO_LONG, "smtp_auth_line_too_long") /* 500 5.5.6 */                           \
	X(AUTH_NEEDS_TLS, "smtp_auth_needs_tls")         /* 538 5.7.11 in the clear */             \
	X(AUTH_NO_LINE_BUFFER, "smtp_auth_no_line_buffer") /* long AUTH line, pool empty: 454 */ \
	X(INPUT_IGNORED, "smtp_input_ignored")           /* octets after the session ended */

#define SMTP_C_ENUM_(e, name) SMTP_C_##e,
enum smtp_counter { SMTP_COUNTERS(SMTP_C_ENUM_) SMTP_C_MAX };
#undef SMTP_C_ENUM_

extern const char *const smtp_counter_names[SMTP_C_MAX];

/* One worker's counters. All-zero is the valid start. Single writer: the worker. */
struct smtp_stats {
	uint64_t c[SMTP_C_MAX];
};

/*
 * always_inline, here and in dp_count(): with -O2/-O3 GCC's identical code
 * folding merged this with dp_count() (the same body over another array)
 * before inlining, and -Warray-bounds then judged dp counter indices against
 * smtp_stats's bound -- a false error that broke the release build.
 */
static inline __attribute__((always_inline)) void smtp_count(struct smtp_stats *st, enum smtp_counter c, uint64_t n)
{
	__atomic_store_n(&st->c[c], __atomic_load_n(&st->c[c], __ATOMIC_RELAXED) + n,
			 __ATOMIC_RELAXED);
}

/* Per-worker engine state shared by the worker's sessions. */
struct smtp_server_ctx {
	struct smtp_stats stats;
	struct smtp_qid_gen qid;
};

/* The client's address, as the TCP layer knows it. */
struct smtp_peer {
	uint8_t family;	  /* 4 or 6 */
	uint8_t addr[16]; /* network order; IPv4 in the first 4 octets */
	uint16_t port;	  /* host order */
};

/* "[198.51.100.7]" or "[IPv6:2001:db8::1]" (RFC 5321 §4.1.3) */
#define SMTP_ADDR_LITERAL_MAX 52

/* One recipient of the envelope; strings live in the transaction's arena. */
struct smtp_rcpt {
	struct smtp_str addr;  /* the mailbox as sent ("Postmaster" for <Postmaster>) */
	struct smtp_str orcpt; /* ORCPT= value as sent (addr-type ";" xtext), or empty */
	uint8_t notify;	       /* SMTP_NOTIFY_*, 0 when not given */
};

/*
 * One mail transaction (RFC 5321 §3.3), separate from the session: MAIL
 * starts it, the final reply or RSET ends it. Storage is preallocated with
 * the session; strings are copied into a bounded arena, so the envelope
 * never points into input buffers. Sinks and hooks read it; only the engine
 * writes it.
 */
struct smtp_tx {
	bool active;		 /* between MAIL and the end of the transaction */
	bool begun;		 /* the sink's begin() accepted it */
	bool bdat;		 /* content comes in BDAT chunks */
	bool bdat_failed;	 /* a BDAT was refused: later chunks are discarded */
	struct smtp_str sender;	 /* reverse-path mailbox; empty for <> */
	struct smtp_str helo;	 /* HELO/EHLO argument */
	char client[SMTP_ADDR_LITERAL_MAX];
	struct smtp_peer peer;
	uint64_t size;		 /* MAIL SIZE=, 0 when not given */
	enum smtp_body body;
	enum smtp_ret ret;
	bool smtputf8;
	struct smtp_str envid;	 /* MAIL ENVID= xtext as sent, or empty */
	struct smtp_str auth;	 /* MAIL AUTH= as sent, or empty */
	unsigned nrcpt;
	unsigned rcpt_attempts;	 /* RCPT commands, accepted or not */
	struct smtp_rcpt *rcpt;	 /* rcpt[0..nrcpt) */
	char queue_id[SMTP_QID_LEN + 1]; /* set when the data phase begins */
	uint64_t start_ms;	 /* session clock at MAIL */
	int64_t wall_s;		 /* wall clock at MAIL, seconds since the epoch */
	uint64_t data_bytes;	 /* content octets so far (after dot-unstuffing) */
	/* storage, set up by the engine */
	unsigned max_rcpt;
	uint32_t arena_size, arena_used;
	uint8_t *arena;
};

/* A sink's end() return value: the final reply comes later through smtp_server_tx_done(). */
#define SMTP_SINK_PENDING (-1)

/*
 * Where accepted content goes (store, cut-through, sink modes). Every
 * function returns SMTP_R_NONE to go on, or a reply id (enum smtp_reply_id)
 * that ends the transaction. ARG is the config's sink_arg.
 */
struct smtp_sink_ops {
	/* The data phase of TX starts (DATA accepted, or its first BDAT). A refusal: the reply. */
	int (*begin)(void *arg, struct smtp_tx *tx);
	/*
	 * Content, in order; the first chunk is our Received: header field. P
	 * is valid only during the call. A refusal is sent after the end of
	 * the data, which is read and discarded.
	 */
	int (*chunk)(void *arg, struct smtp_tx *tx, const uint8_t *p, size_t n);
	/*
	 * All content given. Returns the final reply (SMTP_R_QUEUED) or
	 * SMTP_SINK_PENDING; in the latter case smtp_server_tx_done() comes
	 * later, never from inside end() itself (return the reply instead).
	 */
	int (*end)(void *arg, struct smtp_tx *tx);
	/*
	 * TX is dropped after begin() (refused content, RSET, a new EHLO, a
	 * timeout, the session's end) -- also while end() is pending. No call
	 * for TX follows; smtp_server_tx_done() must not be called for it.
	 */
	void (*abort)(void *arg, struct smtp_tx *tx);
};

/* The "sink" acknowledgement mode: takes everything, counts it, keeps nothing. */
struct smtp_discard_sink {
	uint64_t messages, bytes, aborted;
};
extern const struct smtp_sink_ops smtp_discard_sink_ops; /* arg: struct smtp_discard_sink * */

struct smtp_session;

/*
 * mail_check()/rcpt_check(): the reply comes later, through
 * smtp_server_cmd_done() (cut-through asks the next hop first).
 */
#define SMTP_HOOK_PENDING (-1)

/*
 * Policy and extension hooks; each may be NULL. Return values as for sinks.
 * ARG is the config's hooks_arg.
 */
struct smtp_hooks {
	/* At the greeting: a reply id replaces the 220 and ends the session. */
	int (*connect_check)(void *arg, struct smtp_session *s);
	/*
	 * MAIL passed syntax and limits; TX holds the sender. A 421 reply from
	 * this hook or the next ends the session (RFC 5321 §3.8), e.g. for a
	 * client over its message rate. SMTP_HOOK_PENDING: the session waits
	 * (state PENDING, later input kept) for smtp_server_cmd_done(), which
	 * must not be called from inside the hook.
	 */
	int (*mail_check)(void *arg, struct smtp_session *s, const struct smtp_tx *tx,
			  const struct smtp_path *sender);
	/*
	 * RCPT passed syntax and limits (the relay check lives here); TX does
	 * not hold RCPT yet. SMTP_HOOK_PENDING as for mail_check(): RCPT joins
	 * the envelope only if smtp_server_cmd_done() accepts it. With the
	 * config's rcpt_pending_max > 1 the session does not wait: later RCPTs
	 * of the client's pipelined group (RFC 2920 §3.1) are checked and
	 * handed to this hook while earlier ones are pending, and their replies
	 * go out in command order as each is decided (smtp_server_cmd_done()
	 * answers the oldest, smtp_server_rcpt_done() any by its id, which is
	 * TX->rcpt_attempts during this call).
	 */
	int (*rcpt_check)(void *arg, struct smtp_session *s, const struct smtp_tx *tx,
			  const struct smtp_path *rcpt);
	/*
	 * The transaction MAIL started is over, whatever ended it: its final
	 * reply, a refusal of MAIL, RSET, HELO/EHLO, STARTTLS, a timeout, the
	 * session's end -- also while a MAIL/RCPT reply or the sink's end() is
	 * pending (no smtp_server_cmd_done()/tx_done() may follow then). Runs
	 * after the sink's abort(), with TX still readable.
	 */
	void (*tx_end)(void *arg, struct smtp_session *s, const struct smtp_tx *tx);
	/*
	 * STARTTLS: SMTP_R_NONE to go ahead (the engine answers 220 and raises
	 * SMTP_EV_STARTTLS), or a reply id (e.g. SMTP_R_TLS_UNAVAILABLE).
	 * NULL: STARTTLS is neither offered nor accepted (502).
	 */
	int (*starttls)(void *arg, struct smtp_session *s);
	/*
	 * AUTH (RFC 4954). First call: CMD is the AUTH command, LINE NULL. Each
	 * further client line of the exchange: CMD NULL, LINE the line without
	 * CRLF. Both NULL: the client cancelled ("*") or the session ended.
	 * Returns SMTP_R_AUTH_OK, SMTP_R_AUTH_CHALLENGE with *CHALLENGE set
	 * (base64, hook-owned, valid until the next call), or a failure reply
	 * (a 421 ends the session). SMTP_HOOK_PENDING: the answer comes later
	 * through smtp_server_auth_done() (the password is hashed off the
	 * worker); the session waits in PENDING, later input kept. The engine
	 * itself answers "*" (501 5.0.0), lines over SMTP_AUTH_LINE_MAX (500
	 * 5.5.6), AUTH in the clear where TLS is required (538 5.7.11), and
	 * bad base64 in the AUTH line itself (501 5.5.2).
	 * NULL: AUTH is neither offered nor accepted (502).
	 */
	int (*auth)(void *arg, struct smtp_session *s, const struct smtp_cmd *cmd,
		    const struct smtp_str *line, struct smtp_str *challenge);
	const char *auth_mechs; /* EHLO "AUTH" keyword value, e.g. "PLAIN LOGIN" */
};

/* EHLO keywords that can be turned off (ENHANCEDSTATUSCODES is always offered and used). */
#define SMTP_F_PIPELINING 0x01
#define SMTP_F_SIZE	  0x02
#define SMTP_F_8BITMIME	  0x04
#define SMTP_F_SMTPUTF8	  0x08
#define SMTP_F_CHUNKING	  0x10
#define SMTP_F_DSN	  0x20
/* BINARYMIME needs CHUNKING; off by default: the relay must never forward it over DATA */
#define SMTP_F_BINARYMIME 0x40
#define SMTP_F_DEFAULT                                                                             \
	(SMTP_F_PIPELINING | SMTP_F_SIZE | SMTP_F_8BITMIME | SMTP_F_SMTPUTF8 | SMTP_F_CHUNKING |   \
	 SMTP_F_DSN)

/* RFC 5321 §4.5.3.2, server side, in milliseconds. */
struct smtp_timeouts {
	uint32_t initial;    /* after the 220, waiting for the first command: 5 min */
	uint32_t command;    /* waiting for a command otherwise (§4.5.3.2.7): 5 min */
	uint32_t mail;	     /* after MAIL, waiting for RCPT: 5 min */
	uint32_t rcpt;	     /* after RCPT, waiting for RCPT/DATA/BDAT: 5 min */
	uint32_t data_init;  /* after the 354, waiting for the first content: 2 min */
	uint32_t data_block; /* between content chunks, DATA or BDAT: 3 min */
	uint32_t data_term;  /* the sink's final reply, while pending: 10 min */
};

/*
 * A listener's settings. Immutable while sessions use it (the config swap
 * keeps old snapshots alive until their sessions end).
 */
struct smtp_server_config {
	const char *hostname;	     /* greeting, Received:, 421s */
	uint32_t features;	     /* SMTP_F_* */
	uint64_t max_message_size;   /* octets; offered as SIZE; 0: no limit */
	unsigned max_rcpts;	     /* per transaction; RFC 5321 §4.5.3.1.8 asks for >= 100 */
	unsigned max_errors;	     /* error replies before 421 4.7.0 and close */
	unsigned max_junk;	     /* NOOP/RSET/VRFY/HELP/HELO/EHLO before each is an error */
	unsigned max_received;	     /* Received: fields before 554 5.4.6 (mail loop) */
	unsigned max_cmd_line;	     /* octets incl. CRLF (RFC 5321 §4.5.3.1.4: 512) */
	unsigned max_text_line;	     /* text line incl. CRLF (§4.5.3.1.6: 1000); 0: none */
	unsigned max_input_no_crlf;  /* command input without CRLF before 421 and close */
	unsigned envelope_size;	     /* arena per transaction: addresses and DSN parameters */
	unsigned output_size;	     /* reply buffer; at least 4096 */
	uint32_t greeting_pause_ms;  /* talk before the 220 comes out: early talker */
	struct smtp_timeouts timeout_ms;
	bool forbid_unauth_pipelining; /* Postfix smtpd_forbid_unauth_pipelining */
	bool normalize_bare_eol;       /* content: rewrite bare CR/LF to CRLF instead of 554 */
	bool require_tls;	       /* 530 until STARTTLS (submission ports) */
	bool auth_requires_tls;	       /* offer and accept AUTH only under TLS */
	int64_t wall_offset_ms;	       /* wall clock = session clock + this */
	/*
	 * RCPTs of one pipelined group whose rcpt_check() replies may be
	 * pending at once (at most SMTP_RCPT_PENDING_MAX); 0 or 1: one at a
	 * time, the session waits in PENDING for each (the store and sink
	 * modes). A command other than RCPT after pending ones waits for all
	 * of their replies (state PENDING, its input kept).
	 */
	unsigned rcpt_pending_max;
	const struct smtp_sink_ops *sink;
	void *sink_arg;
	const struct smtp_hooks *hooks; /* NULL: none */
	void *hooks_arg;
	/*
	 * Where an AUTH line longer than max_cmd_line (up to SMTP_AUTH_LINE_MAX,
	 * RFC 4954 §4) is framed: a buffer lent by this pool while that line
	 * is held, so a session reserves only max_cmd_line for its line. None
	 * free: 454 4.7.0 (RFC 4954 §6). NULL: with an auth hook, every
	 * session reserves SMTP_AUTH_LINE_MAX itself (smtp_server_size()).
	 */
	struct smtp_line_pool *auth_lines;
};

/*
 * A worker's buffers for long AUTH lines (smtp_server_config.auth_lines):
 * N buffers of SMTP_AUTH_LINE_MAX octets in caller's memory of
 * smtp_line_pool_size(N) octets, 16-byte aligned. Single-threaded, like
 * the sessions that share it; lent only while such a line is being framed
 * (a line that arrives whole in one input is parsed where it lies).
 */
struct smtp_line_pool;
size_t smtp_line_pool_size(unsigned n);
/* Returns MEM as the pool (every buffer free). */
struct smtp_line_pool *smtp_line_pool_init(void *mem, unsigned n);
/* Buffers not lent right now. */
unsigned smtp_line_pool_available(const struct smtp_line_pool *p);

#define SMTP_RCPT_PENDING_MAX 32

/* Fills C with the defaults above (hostname "localhost", discard sink: set your own). */
void smtp_server_config_default(struct smtp_server_config *c);

/* Session states: the command table says which commands each one takes. */
enum smtp_state {
	SMTP_ST_PREGREET,  /* greeting not sent yet: any input is an early talker */
	SMTP_ST_CONNECTED, /* 220 sent, no HELO/EHLO yet (also right after STARTTLS) */
	SMTP_ST_HELO,	   /* HELO/EHLO done, no transaction */
	SMTP_ST_MAIL,	   /* MAIL accepted, no recipient yet */
	SMTP_ST_RCPT,	   /* at least one recipient */
	SMTP_ST_DATA,	   /* 354 sent: content until CRLF.CRLF */
	SMTP_ST_BDAT,	   /* inside a BDAT chunk's octets */
	SMTP_ST_CHUNKING,  /* between BDAT chunks of one transaction */
	SMTP_ST_PENDING,   /* the sink's final reply, or a hook's MAIL/RCPT reply: input waits */
	SMTP_ST_AUTH,	   /* AUTH exchange: lines go to the auth hook */
	SMTP_ST_STARTTLS,  /* 220 Ready sent: waiting for the TLS handshake */
	SMTP_ST_CLOSED,	   /* 221/421/554 sent: flush and close; input is ignored */
	SMTP_ST_MAX
};

extern const char *const smtp_state_names[SMTP_ST_MAX];

/* smtp_server_events() */
#define SMTP_EV_CLOSE	 0x1 /* flush the output, then close the connection */
#define SMTP_EV_STARTTLS 0x2 /* flush the 220, start TLS, then smtp_server_tls_started() */
#define SMTP_EV_PENDING	 0x4 /* waiting for smtp_server_tx_done()/cmd_done(); keep input */
				     /* (also while a pipelined group's RCPTs are pending) */

/* smtp_server_init() flags */
#define SMTP_SESSION_TLS 0x1 /* implicit TLS (port 465): the session starts under TLS */

/* Bytes smtp_server_init() needs for a session under CFG. */
size_t smtp_server_size(const struct smtp_server_config *cfg);

/*
 * Starts a session in MEM (smtp_server_size(cfg) bytes, 16-byte aligned) for
 * a client at PEER; CFG and CTX must outlive it. With no greeting pause the
 * 220 (or the connect hook's refusal) is in the output at once; otherwise
 * it comes out when smtp_server_timeout() passes the pause. Returns MEM as
 * the session, or NULL when CFG is unusable (no hostname, no sink, limits
 * below what the protocol needs).
 */
struct smtp_session *smtp_server_init(void *mem, const struct smtp_server_config *cfg,
				      struct smtp_server_ctx *ctx, const struct smtp_peer *peer,
				      unsigned flags, uint64_t now);

/* smtp_server_init() in memory from malloc; NULL on failure. Free with smtp_server_free(). */
struct smtp_session *smtp_server_new(const struct smtp_server_config *cfg,
				     struct smtp_server_ctx *ctx, const struct smtp_peer *peer,
				     unsigned flags, uint64_t now);

/* Ends S: aborts a transaction the sink has begun (pending or not). MEM stays the caller's. */
void smtp_server_fini(struct smtp_session *s);

/* smtp_server_fini() and free() for sessions from smtp_server_new(). NULL is a no-op. */
void smtp_server_free(struct smtp_session *s);

/*
 * Feeds N octets from the client. Returns how many were taken: all of them,
 * or fewer when the session must stop here -- the output buffer needs
 * flushing, or the sink's final reply is pending. Plaintext that follows an
 * accepted STARTTLS (same input, or any later call before
 * smtp_server_tls_started()) is taken and discarded, never answered: a
 * client must wait for the 220 (RFC 3207 §4.2), and commands injected there
 * would otherwise run inside the TLS session (CVE-2011-0411).
 * The caller keeps the rest and feeds it again when that is resolved; the
 * engine never looks at an octet twice and copies only partial command
 * lines. Once the session is CLOSED, input is taken and ignored.
 */
size_t smtp_server_input(struct smtp_session *s, const uint8_t *p, size_t n, uint64_t now);

/* Replies waiting to be sent: sets *P and returns their length (0: none). */
size_t smtp_server_output(const struct smtp_session *s, const uint8_t **p);

/* N octets of the output were sent; they are dropped from its front. */
void smtp_server_output_done(struct smtp_session *s, size_t n);

/* The session clock value at which smtp_server_timeout() must run; UINT64_MAX: none. */
uint64_t smtp_server_deadline(const struct smtp_session *s);

/*
 * Runs what is due at NOW: the greeting after the pause, or the RFC 5321
 * §4.5.3.2 timeout of the current state (421 4.4.2 and close). Returns true
 * when something happened (flush the output then), false when not due yet.
 */
bool smtp_server_timeout(struct smtp_session *s, uint64_t now);

/* SMTP_EV_* bits for what the caller must do now. */
unsigned smtp_server_events(const struct smtp_session *s);

/* The TLS handshake after STARTTLS completed: the client starts over with EHLO (RFC 3207 §4.2). */
void smtp_server_tls_started(struct smtp_session *s, uint64_t now);

/*
 * The sink's pending end() completed with REPLY (SMTP_R_QUEUED, or a 4xx/5xx
 * id). Queues the final reply; the session takes input again. Ignored unless
 * the session is PENDING.
 */
void smtp_server_tx_done(struct smtp_session *s, int reply, uint64_t now);

/*
 * The sink's pending end() completed with R, another server's reply (the
 * next hop's, in cut-through), which the client gets in its place: a 2xx
 * as "250 <esc> Ok: queued as <queue id>; next hop: <text>", anything else
 * with R's code, enhanced code and text. Sanitised and bounded by
 * smtp_reply_format_text(); a code outside 200..599 becomes 451 4.3.0. A
 * 421 ends the session after the reply. Ignored unless the end is pending.
 */
void smtp_server_tx_done_text(struct smtp_session *s, const struct smtp_reply_text *r,
			      uint64_t now);

/*
 * A hook's pending MAIL or RCPT reply (SMTP_HOOK_PENDING) is decided.
 * MIRROR NULL: REPLY decides -- SMTP_R_NONE accepts (250 2.1.0 / 2.1.5),
 * a reply id refuses as a hook's refusal does (a 421 ends the session).
 * MIRROR given: its code decides (2xx accepts) and the client gets its code,
 * enhanced code and text, sanitised (smtp_reply_format_text()); a code
 * outside 200..599 or of class 3 refuses with 451 4.3.0. The session takes
 * input again. Ignored unless a MAIL/RCPT reply is pending. With RCPTs of a
 * pipelined group pending (rcpt_pending_max > 1), it decides the oldest. A
 * 421 there ends the session at the oldest RCPT still unanswered: replies
 * to later commands are dropped, the 421 is the last line.
 */
void smtp_server_cmd_done(struct smtp_session *s, int reply, const struct smtp_reply_text *mirror,
			  uint64_t now);

/*
 * A pending AUTH (the hook said SMTP_HOOK_PENDING) is decided: REPLY is
 * SMTP_R_AUTH_OK, SMTP_R_AUTH_CHALLENGE with CHALLENGE (copied), or a
 * failure reply id (a 421 ends the session). The session takes input
 * again. Ignored unless an AUTH reply is pending.
 */
void smtp_server_auth_done(struct smtp_session *s, int reply, const struct smtp_str *challenge,
			   uint64_t now);

/*
 * rcpt_pending_max > 1: the pending RCPT whose id (TX->rcpt_attempts during
 * its rcpt_check()) is ID is decided, as smtp_server_cmd_done() decides.
 * Its reply goes out in its place: after every earlier command's, before
 * every later one's. Ignored when no pending RCPT has that id.
 */
void smtp_server_rcpt_done(struct smtp_session *s, unsigned id, int reply,
			   const struct smtp_reply_text *mirror, uint64_t now);

/* RCPTs of the pipelined group whose hook replies are pending (rcpt_pending_max > 1). */
unsigned smtp_server_rcpts_pending(const struct smtp_session *s);

/* The verb whose reply is pending (SMTP_V_MAIL, SMTP_V_RCPT, SMTP_V_AUTH), SMTP_V_UNKNOWN for none. */
enum smtp_verb smtp_server_pending_cmd(const struct smtp_session *s);

/* Ends the session now with 421 4.3.2 (drain on shutdown); aborts an open transaction. */
void smtp_server_shutdown(struct smtp_session *s);

enum smtp_state smtp_server_state(const struct smtp_session *s);
const struct smtp_tx *smtp_server_tx(const struct smtp_session *s);
/* The session a sink's TX belongs to (sinks are per listener; sessions have the udata). */
struct smtp_session *smtp_server_of_tx(struct smtp_tx *tx);
/* The RFC 3848 / RFC 6531 protocol keyword of S's current transaction ("ESMTPS"...). */
const char *smtp_server_protocol(const struct smtp_session *s);
const struct smtp_peer *smtp_server_peer(const struct smtp_session *s);
struct smtp_str smtp_server_helo(const struct smtp_session *s);
bool smtp_server_tls(const struct smtp_session *s);
bool smtp_server_authenticated(const struct smtp_session *s);
unsigned smtp_server_errors(const struct smtp_session *s);

/* A pointer for the caller (its connection); not used by the engine. */
void smtp_server_set_udata(struct smtp_session *s, void *udata);
void *smtp_server_udata(const struct smtp_session *s);

#endif
