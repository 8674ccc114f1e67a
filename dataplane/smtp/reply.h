/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Every reply the SMTP server engine sends comes from this one table
 * (OpenSMTPD's esc_code()): code, RFC 3463 enhanced status code and text.
 * Texts may hold one "%s", filled from a bounded, sanitised argument, so no
 * reply is ever assembled by an ad-hoc snprintf and no client octet can end
 * a reply line early.
 */
#ifndef MX_SMTP_REPLY_H
#define MX_SMTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * X(ID, code, "enhanced code" or NULL, "text"). RFC 2034 §3: no enhanced
 * code on the greeting, HELO/EHLO replies, 354 and 334.
 */
#define SMTP_REPLY_TABLE(X)                                                                        \
	/* 2xx, 3xx */                                                                             \
	X(OK, 250, "2.0.0", "Ok")                                                                  \
	X(GREETING, 220, NULL, "%s ESMTP")                                                         \
	X(HELO, 250, NULL, "%s")                                                                   \
	X(EHLO, 250, NULL, "%s")                                                                   \
	X(MAIL_OK, 250, "2.1.0", "Ok")                                                             \
	X(RCPT_OK, 250, "2.1.5", "Ok")                                                             \
	X(DATA_GO, 354, NULL, "End data with <CR><LF>.<CR><LF>")                                   \
	X(QUEUED, 250, "2.0.0", "Ok: queued as %s")                                                \
	X(BDAT_OK, 250, "2.0.0", "Ok: %s octets received")                                         \
	X(VRFY, 252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery")    \
	X(HELP, 214, "2.0.0",                                                                      \
	  "Commands: AUTH BDAT DATA EHLO HELO HELP MAIL NOOP QUIT RCPT RSET STARTTLS VRFY")        \
	X(QUIT, 221, "2.0.0", "Bye")                                                               \
	X(TLS_READY, 220, "2.0.0", "Ready to start TLS")                                           \
	X(AUTH_OK, 235, "2.7.0", "Authentication successful")                                      \
	X(AUTH_CHALLENGE, 334, NULL, "%s")                                                         \
	/* sequence and availability (RFC 5321 §4.2.4, §4.3.2) */                                  \
	X(UNKNOWN_CMD, 500, "5.5.1", "Error: command not recognized")                              \
	X(NOT_IMPLEMENTED, 502, "5.5.1", "Error: command not implemented")                         \
	X(SEND_HELO_FIRST, 503, "5.5.1", "Error: send HELO/EHLO first")                            \
	X(SEND_EHLO_FIRST, 503, "5.5.1", "Error: send EHLO first")                                 \
	X(NESTED_MAIL, 503, "5.5.1", "Error: nested MAIL command")                                 \
	X(NEED_MAIL, 503, "5.5.1", "Error: need MAIL command")                                     \
	X(NEED_RCPT, 503, "5.5.1", "Error: need RCPT command")                                     \
	X(NO_VALID_RCPTS, 554, "5.5.1", "Error: no valid recipients")                              \
	X(BDAT_IN_PROGRESS, 503, "5.5.1", "Error: BDAT transfer in progress")                      \
	X(DATA_AFTER_BDAT, 503, "5.5.1", "Error: DATA and BDAT cannot be mixed")                   \
	X(DATA_BINARYMIME, 503, "5.5.1", "Error: BODY=BINARYMIME requires BDAT")                   \
	X(BDAT_AFTER_ERROR, 503, "5.5.1", "Error: BDAT after an earlier error: data discarded")    \
	X(TX_IN_PROGRESS, 503, "5.5.1", "Error: MAIL transaction in progress")                     \
	X(TLS_ACTIVE, 503, "5.5.1", "Error: TLS already active")                                   \
	X(AUTH_TWICE, 503, "5.5.1", "Error: already authenticated")                                \
	X(TLS_REQUIRED, 530, "5.7.0", "Must issue a STARTTLS command first")                       \
	/* command syntax */                                                                       \
	X(BAD_SYNTAX, 500, "5.5.2", "Error: bad syntax")                                           \
	X(LINE_TOO_LONG, 500, "5.5.2", "Error: line too long")                                     \
	X(BARE_LF, 500, "5.5.2", "Error: bare <LF> received")                                      \
	X(BARE_CR, 500, "5.5.2", "Error: bare <CR> received")                                      \
	X(NUL, 500, "5.5.2", "Error: NUL character received")                                      \
	X(BAD_UTF8, 500, "5.5.2", "Error: bad UTF-8 syntax")                                       \
	X(SYNTAX_HELO, 501, "5.5.4", "Syntax: HELO hostname")                                      \
	X(SYNTAX_EHLO, 501, "5.5.4", "Syntax: EHLO hostname")                                      \
	X(BAD_HOSTNAME, 501, "5.5.4", "Error: invalid HELO/EHLO hostname")                         \
	X(SYNTAX_MAIL, 501, "5.5.4", "Syntax: MAIL FROM:<address>")                                \
	X(SYNTAX_RCPT, 501, "5.5.4", "Syntax: RCPT TO:<address>")                                  \
	X(SYNTAX_VRFY, 501, "5.5.4", "Syntax: VRFY address")                                       \
	X(SYNTAX_BDAT, 501, "5.5.4", "Syntax: BDAT chunk-size [LAST]")                             \
	X(SYNTAX_AUTH, 501, "5.5.4", "Syntax: AUTH mechanism [initial-response]")                  \
	X(NO_ARGS, 501, "5.5.4", "Syntax: %s takes no arguments")                                  \
	X(BAD_SENDER, 501, "5.1.7", "Bad sender address syntax")                                   \
	X(BAD_RCPT, 501, "5.1.3", "Bad recipient address syntax")                                  \
	X(SENDER_TOO_LONG, 501, "5.1.7", "Sender address too long")                                \
	X(RCPT_TOO_LONG, 501, "5.1.3", "Recipient address too long")                               \
	X(SENDER_UTF8, 553, "5.6.7", "Non-ASCII sender address requires SMTPUTF8")                 \
	X(RCPT_UTF8, 553, "5.6.7", "Non-ASCII recipient address requires SMTPUTF8")                \
	X(PARAM_UNKNOWN, 555, "5.5.4", "Unsupported option: %s")                                   \
	X(PARAM_SYNTAX, 501, "5.5.4", "Bad parameter syntax")                                      \
	X(PARAM_BAD_VALUE, 501, "5.5.4", "Bad %s parameter value")                                 \
	X(PARAM_DUPLICATE, 501, "5.5.4", "Duplicate %s parameter")                                 \
	/* limits */                                                                               \
	X(SIZE_EXCEEDED, 552, "5.3.4", "Message size exceeds fixed limit")                         \
	X(TOO_MANY_RCPTS, 452, "4.5.3", "Error: too many recipients")                              \
	X(DATA_BARE_EOL, 554, "5.6.0", "Error: bare <CR> or <LF> in message content")              \
	X(DATA_NUL, 554, "5.6.0", "Error: NUL octet in message content")                           \
	X(DATA_LINE_TOO_LONG, 500, "5.5.2", "Error: message line longer than 1000 octets")         \
	X(MAIL_LOOP, 554, "5.4.6", "Error: too many hops")                                         \
	/* session ends (RFC 5321 §3.8) */                                                         \
	X(EARLY_TALKER, 554, "5.7.0", "Error: SMTP protocol synchronization")                      \
	X(PIPELINING, 554, "5.5.0", "Error: SMTP protocol synchronization")                        \
	X(TIMEOUT, 421, "4.4.2", "%s Error: timeout exceeded")                                     \
	X(TOO_MANY_ERRORS, 421, "4.7.0", "%s Error: too many errors")                              \
	X(INPUT_NO_CRLF, 421, "4.7.0", "%s Error: too much input without CRLF")                    \
	X(SHUTDOWN, 421, "4.3.2", "%s Service shutting down")                                      \
	X(BUSY, 421, "4.3.2", "%s Error: all server sessions are busy, try again later")           \
	X(CLIENT_CONNS, 421, "4.7.0", "%s Error: too many connections from your address")          \
	X(CLIENT_CONN_RATE, 421, "4.7.0", "%s Error: too many connections from your address, slow down") \
	X(CLIENT_MSG_RATE, 421, "4.7.0", "%s Error: too much mail from your address, slow down")   \
	/* for hooks and sinks */                                                                  \
	X(LOCAL_ERROR, 451, "4.3.0", "Error: local error, try again later")                        \
	X(STORAGE, 452, "4.3.1", "Error: insufficient system storage")                             \
	X(CONGESTED, 451, "4.3.2", "Error: system busy, try again later")                          \
	X(UNROUTABLE, 550, "5.4.4", "Error: no route to this recipient's domain")                  \
	X(TLS_UNAVAILABLE, 454, "4.7.0", "TLS not available due to local problem")                 \
	X(AUTH_FAILED, 535, "5.7.8", "Error: authentication failed")                               \
	X(AUTH_ABORTED, 501, "5.0.0", "Authentication aborted")  /* RFC 4954 §4: "*" */            \
	X(AUTH_BAD_BASE64, 501, "5.5.2", "Error: cannot decode the response (base64)") /* §4 */    \
	X(AUTH_LINE_TOO_LONG, 500, "5.5.6", "Error: authentication exchange line is too long")    \
	X(AUTH_ENCRYPT, 538, "5.7.11", "Encryption required for requested authentication mechanism") \
	X(AUTH_LOCKED, 421, "4.7.0", "%s Error: too many failed authentications, try again later") \
	X(AUTH_MECH, 504, "5.5.4", "Unrecognized authentication type")                             \
	X(AUTH_TEMP, 454, "4.7.0", "Temporary authentication failure")                             \
	X(AUTH_REQUIRED, 530, "5.7.0", "Authentication required")                                  \
	X(RELAY_DENIED, 554, "5.7.1", "Error: relay access denied")                                \
	X(RCPT_UNKNOWN, 550, "5.1.1", "Error: recipient address rejected: user unknown")           \
	X(SENDER_REJECTED, 553, "5.7.1", "Error: sender address rejected")                         \
	X(ACCESS_DENIED, 554, "5.7.1", "Error: access denied")                                     \
	X(TRY_AGAIN, 450, "4.7.1", "Error: try again later")                                     \
	/* cut-through (DESIGN.md §3.4): the next hop's transaction runs alongside ours */         \
	X(NEXTHOP_UNREACHABLE, 451, "4.4.1", "Error: next hop not reachable, try again later")    \
	X(NEXTHOP_LOST, 451, "4.4.2", "Error: lost connection with the next hop, try again later") \
	X(NEXTHOP_TIMEOUT, 451, "4.4.2", "Error: the next hop timed out, try again later")        \
	X(NEXTHOP_OTHER_ROUTE, 452, "4.5.3",                                                       \
	  "Error: recipient goes to another next hop, send it in a separate transaction")          \
	X(NEXTHOP_NO_SMTPUTF8, 553, "5.6.7", "Error: the next hop does not support SMTPUTF8")

/* Reply ids. SMTP_R_NONE (0): no reply / accept; the table starts at 1. */
#define SMTP_R_ENUM_(id, code, esc, text) SMTP_R_##id,
enum smtp_reply_id { SMTP_R_NONE = 0, SMTP_REPLY_TABLE(SMTP_R_ENUM_) SMTP_R_MAX };
#undef SMTP_R_ENUM_

struct smtp_reply_def {
	uint16_t code;
	const char *esc;  /* NULL: none */
	const char *text; /* may hold one "%s" */
	const char *name; /* "QUEUED": for logs and tests */
};

extern const struct smtp_reply_def smtp_replies[SMTP_R_MAX];

/* The longest line smtp_reply_format() writes, CRLF included (RFC 5321 §4.5.3.1.5: 512). */
#define SMTP_REPLY_LINE_MAX 512
/* Longest argument kept; longer ones are cut (a reply must fit a reply line). */
#define SMTP_REPLY_ARG_MAX 300

/* The numeric code of ID (0 for SMTP_R_NONE or an invalid id). */
unsigned smtp_reply_code(enum smtp_reply_id id);

/*
 * Writes reply ID as one line into OUT (CAP bytes): "code[SEP]esc text\r\n",
 * SEP being ' ' for the last line of a reply and '-' for the others. ARG
 * (ARGLEN octets, may be NULL) fills "%s"; octets outside 0x20..0x7e become
 * '?' and it is cut at SMTP_REPLY_ARG_MAX. Returns the bytes written, or 0
 * when ID is invalid or the line does not fit (nothing is written then).
 */
size_t smtp_reply_format(char *out, size_t cap, enum smtp_reply_id id, const char *arg,
			 size_t arglen, char sep);

/*
 * A reply that is not ours: code, enhanced code and text as another server
 * (the next hop in cut-through) said them, to be repeated to our client.
 * Nothing here is trusted: smtp_reply_format_text() checks and sanitises it.
 */
struct smtp_reply_text {
	uint16_t code;	  /* 200..599; anything else makes the reply unusable */
	const char *esc;  /* RFC 3463 code, ESC_LEN octets; NULL or not valid: one of ours */
	size_t esc_len;
	const char *text; /* TEXT_LEN octets, any octets at all */
	size_t text_len;
};

/* True when P[0..N) is an RFC 3463 status code "c.s.d" whose class C is CODE's first digit. */
bool smtp_reply_esc_valid(unsigned code, const char *p, size_t n);

/*
 * Writes R as one reply line into OUT (CAP bytes): "code[SEP]esc PREFIXtext\r\n".
 * The enhanced code is R's when smtp_reply_esc_valid() holds, else "C.0.0"
 * of the code's class (we always offer ENHANCEDSTATUSCODES). PREFIX (ours,
 * NUL-terminated, may be NULL) and the text are sanitised like arguments:
 * octets outside 0x20..0x7e become '?', so no CR, LF or NUL of the other
 * server can end or split the line; the whole line is cut at
 * SMTP_REPLY_LINE_MAX. Returns the bytes written, or 0 when R's code is
 * outside 200..599 or the line does not fit CAP (nothing is written then).
 */
size_t smtp_reply_format_text(char *out, size_t cap, const struct smtp_reply_text *r,
			      const char *prefix, char sep);

#endif
