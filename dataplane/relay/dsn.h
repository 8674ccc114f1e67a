/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Delivery status notifications (RFC 3464) for the relay: bounces, delay
 * warnings and success reports, as a complete message ready to submit with
 * the null reverse-path. Pure: no I/O, no DPDK, no clock (the caller passes
 * the time and a random seed), and the output goes to the caller's buffer
 * or to one allocation of a size known before it is made.
 *
 * The message (RFC 6522 multipart/report, report-type=delivery-status):
 *   header   From: "Mail Delivery Subsystem" <MAILER-DAEMON@host>, To: the
 *            original sender, Subject, Date, Message-ID, Auto-Submitted:
 *            auto-replied (RFC 3834 §5), MIME-Version, Content-Type
 *   part 1   text/plain: what happened, one paragraph per recipient
 *   part 2   message/delivery-status: per-message fields, then one block
 *            per reported recipient (RFC 3464 §2.2, §2.3)
 *   part 3   the original: message/rfc822 (whole) or text/rfc822-headers
 *            (header only); message/global and message/global-headers for
 *            an SMTPUTF8 original with UTF-8 in its header (RFC 6532 §3.7,
 *            RFC 6533 §6.3); left out when even the header cannot be
 *            returned. RFC 6522 §3 makes this part optional.
 * Lines end in CRLF and none is longer than 998 octets (RFC 5322 §2.1.1):
 * header and DSN fields are folded (§2.2.3), text is wrapped.
 *
 * Who gets reported (RFC 3461 §4.1): a recipient with NOTIFY=NEVER never;
 * "failed" with NOTIFY=FAILURE or no NOTIFY; "delayed" with NOTIFY=DELAY or
 * no NOTIFY (RFC 3461 lets an MTA send delay notices by default, as Postfix
 * and Sendmail do; the retry schedule sends at most one); "delivered",
 * "relayed" and "expanded" only with NOTIFY=SUCCESS. A message with the
 * null reverse-path never gets a DSN (RFC 5321 §4.5.5, RFC 3464 §1).
 *
 * What is returned (RFC 3461 §4.3): RET=FULL or no RET, in a DSN that
 * reports a failure, returns the whole message; RET=HDRS, and every DSN
 * without a failure, returns the header only. An original over
 * cfg->return_max octets, or with lines a message cannot carry (over 998
 * octets, bare CR or LF, NUL), falls back to its header; a header that
 * is itself too big or malformed is not returned. The text part says which.
 */
#ifndef MX_RELAY_DSN_H
#define MX_RELAY_DSN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataplane/smtp/parse.h"

#define DSN_LINE_MAX	   998u	   /* octets of a line without its CRLF (RFC 5322 §2.1.1) */
#define DSN_FOLD_AT	   78u	   /* lines are folded or wrapped here where words allow */
#define DSN_DIAG_MAX	   2048u   /* diagnostic octets kept; the rest is cut (remote text) */
#define DSN_HOST_MAX	   253u	   /* reporting host name */
#define DSN_QID_MAX	   64u	   /* queue id (letters and digits) */
#define DSN_MTA_MAX	   300u	   /* Remote-MTA / Received-From-MTA name */
#define DSN_TYPE_MAX	   32u	   /* ORCPT address type, diagnostic type */
#define DSN_RCPT_MAX	   100000u /* recipients of one message (the spool's limit) */
#define DSN_BOUNDARY_LEN   29u	   /* "=_mxgate-dsn-" and 16 hex digits */
#define DSN_BOUNDARY_TRIES 8u	   /* boundaries tried before giving up (DSN_E_BOUNDARY) */
#define DSN_MSGID_MAX	   (1u + DSN_QID_MAX + 1u + 16u + 1u + DSN_HOST_MAX + 1u) /* <qid.hex@host> */

/* Defaults (dsn_config_default()). */
#define DSN_DEFAULT_RETURN_MAX (256u << 10) /* relay.bounce_return_kb; Postfix: 50000 */
#define DSN_DEFAULT_MAX_SIZE   (4u << 20)   /* dsn_build_alloc() refuses bigger DSNs */

/* RFC 3464 §2.3.3 action-value */
enum dsn_action {
	DSN_ACT_NONE = 0, /* invalid: every recipient needs an action */
	DSN_ACT_FAILED,
	DSN_ACT_DELAYED,
	DSN_ACT_DELIVERED,
	DSN_ACT_RELAYED,
	DSN_ACT_EXPANDED,
	DSN_ACT_MAX
};

extern const char *const dsn_action_names[DSN_ACT_MAX]; /* "failed", ... ("" for NONE) */

/*
 * One recipient's outcome. Slices and strings are read during dsn_build()
 * only. Times are unix seconds; 0 leaves the field out.
 */
struct dsn_rcpt {
	struct smtp_str addr;	    /* the envelope recipient (mailbox, no <>); UTF-8 allowed */
	struct smtp_str orcpt_type; /* ORCPT addr-type ("rfc822", "utf-8"); empty: no ORCPT */
	struct smtp_str orcpt;	    /* ORCPT address, xtext-decoded (RFC 3461 §4.2) */
	uint8_t notify;		    /* SMTP_NOTIFY_* as given at RCPT; 0: no NOTIFY */
	enum dsn_action action;
	const char *status;	    /* RFC 3463 "5.1.1", written without leading zeros */
	struct smtp_str remote_mta; /* next hop that answered ("mx.example.net"); empty: none */
	const char *diag_type;	    /* diagnostic-type; NULL: "smtp" */
	struct smtp_str diag;	    /* the next hop's reply ("550 5.1.1 ..."); empty: none */
	int64_t last_attempt;	    /* Last-Attempt-Date */
	int64_t retry_until;	    /* Will-Retry-Until: "delayed" only */
};

/* The original message. Slices and strings are read during dsn_build() only. */
struct dsn_msg {
	struct smtp_str sender;	     /* reverse-path mailbox; empty: the null sender <> */
	struct smtp_str envid;	     /* ENVID, xtext-decoded (RFC 3461 §4.4); empty: none */
	enum smtp_ret ret;	     /* RET= (RFC 3461 §4.3); SMTP_RET_NONE: not given */
	bool smtputf8;		     /* the original transaction was SMTPUTF8 (RFC 6531) */
	int64_t arrival;	     /* Arrival-Date, unix seconds; 0: left out */
	struct smtp_str client_helo; /* HELO/EHLO of the client; empty: no Received-From-MTA */
	struct smtp_str client_addr; /* "[198.51.100.7]", shown beside the HELO; may be empty */
	const char *queue_id;	     /* our queue id of the original */
	struct smtp_str content;     /* as spooled: dot-unstuffed, our Received: first */
	const struct dsn_rcpt *rcpt; /* rcpt[0..nrcpt): every recipient, reported or not */
	unsigned nrcpt;
};

/* The reporting MTA's settings. Immutable while in use. */
struct dsn_config {
	const char *hostname; /* Reporting-MTA, From: MAILER-DAEMON@hostname, Message-ID */
	size_t return_max;    /* largest original returned whole (else its header); 0: never */
	size_t max_size;      /* dsn_build_alloc() refuses a DSN over this; 0: no limit */
};

/* Fills C with the defaults (hostname "localhost": set your own). */
void dsn_config_default(struct dsn_config *c);

/* Why no DSN was made although the input was valid. */
enum dsn_none {
	DSN_SEND = 0,		/* a DSN was made */
	DSN_NONE_NULL_SENDER,	/* the original had the null reverse-path */
	DSN_NONE_NOT_REQUESTED, /* no recipient is to be reported (NOTIFY) */
};

extern const char *const dsn_none_names[];

/* What a DSN is about: the most serious outcome it reports decides. */
enum dsn_kind {
	DSN_KIND_FAILURE = 0, /* "Undelivered Mail Returned to Sender" */
	DSN_KIND_DELAY,	      /* "Delayed Mail (still being retried)" */
	DSN_KIND_SUCCESS,     /* "Successful Mail Delivery Report" */
};

/* What of the original the DSN carries, and why. */
enum dsn_returned {
	DSN_RETURN_NONE = 0,
	DSN_RETURN_HEADERS,
	DSN_RETURN_FULL,
};

enum dsn_return_why {
	DSN_WHY_FULL = 0,	  /* returned whole */
	DSN_WHY_NEVER,		  /* cfg->return_max is 0: originals are never returned */
	DSN_WHY_RET_HDRS,	  /* the sender asked for the header only (RET=HDRS) */
	DSN_WHY_NOT_FAILURE,	  /* delay and success reports carry the header only */
	DSN_WHY_TOO_BIG,	  /* over return_max: the header only */
	DSN_WHY_BAD_LINES,	  /* lines a message cannot carry in the body: the header only */
	DSN_WHY_HEADER_TOO_BIG,	  /* even the header is over return_max: nothing */
	DSN_WHY_HEADER_BAD_LINES, /* the header has such lines: nothing */
};

/*
 * What is wrong with the input when dsn_build() says -EINVAL. Each names a
 * field; res->err_rcpt tells which recipient for the per-recipient ones.
 */
#define DSN_ERRORS(X)                                                                              \
	X(OK)                                                                                      \
	X(HOSTNAME)  /* cfg->hostname missing, over DSN_HOST_MAX, not a domain name */             \
	X(QUEUE_ID)  /* missing, over DSN_QID_MAX, not letters and digits */                       \
	X(SENDER)    /* over SMTP_PATH_MAX, control octets, not UTF-8 */                           \
	X(ENVID)     /* over SMTP_ENVID_MAX, or octets outside printable US-ASCII */               \
	X(RET)	     /* not an enum smtp_ret */                                                    \
	X(TIME)	     /* a negative time */                                                         \
	X(CLIENT)    /* client_helo / client_addr: too long, spaces or controls */                 \
	X(CONTENT)   /* empty, or a NULL pointer with a length */                                  \
	X(NO_RCPTS)  /* nrcpt 0, over DSN_RCPT_MAX, or rcpt NULL */                                \
	X(RCPT_ADDR) /* empty, over SMTP_PATH_MAX, control octets, not UTF-8 */                    \
	X(ORCPT)     /* type not an atom, value empty/too long/controls/not UTF-8, or a */         \
		     /* non-ASCII value under a type other than rfc822 or utf-8 */                 \
	X(NOTIFY)    /* unknown bits, or NEVER with another bit (RFC 3461 §4.1) */                \
	X(ACTION)                                                                                  \
	X(STATUS) /* not class.subject.detail of 1-3 digits each (RFC 3463 §2), or a */           \
	/* class the action cannot have: delayed 4, failed 4 or 5, others 2 */                     \
	X(REMOTE_MTA)  /* over DSN_MTA_MAX, spaces or controls */                                  \
	X(DIAG_TYPE)   /* not an atom of letters, digits and "-" */                                \
	X(RETRY_UNTIL) /* given for an action other than delayed (RFC 3464 §2.3.9) */             \
	X(BOUNDARY)    /* DSN_BOUNDARY_TRIES boundaries all occur in the content */

#define DSN_E_ENUM_(e) DSN_E_##e,
enum dsn_err {
	DSN_ERRORS(DSN_E_ENUM_) DSN_E_MAX
};
#undef DSN_E_ENUM_

extern const char *const dsn_err_names[DSN_E_MAX];

/* What dsn_build() made. */
struct dsn_result {
	enum dsn_none none; /* DSN_SEND: a DSN is in the buffer */
	enum dsn_err err;   /* -EINVAL: the field at fault (DSN_E_OK otherwise) */
	unsigned err_rcpt;  /* ... and the recipient's index, for per-recipient fields */
	size_t len;	    /* octets written; on -ENOSPC, octets needed */
	unsigned nreported; /* recipients in the DSN */
	enum dsn_kind kind;
	enum dsn_returned returned;
	enum dsn_return_why why;
	/* the envelope to submit it with: MAIL FROM:<> (null reverse-path, RFC 3464 §1) */
	struct smtp_str rcpt_to; /* RCPT TO: the original sender (points into the input) */
	bool eightbit;		 /* 8-bit octets in it: submit with BODY=8BITMIME */
	bool smtputf8;		 /* a UTF-8 address in envelope and To:: needs SMTPUTF8 */
	char boundary[DSN_BOUNDARY_LEN + 1];
	char message_id[DSN_MSGID_MAX + 1]; /* with the angle brackets */
};

/* True when recipient R is to be reported (its NOTIFY and action); R need not be valid. */
bool dsn_rcpt_reported(const struct dsn_rcpt *r);

/*
 * Builds the DSN for M into OUT (CAP octets; OUT may be NULL when CAP is 0,
 * to learn the size). NOW is the Date: and SEED (random per DSN) makes the
 * Message-ID and the MIME boundary; equal inputs give equal bytes.
 *
 * Returns 0 with res->none saying whether a DSN was made (res->len octets
 * in OUT) or why not (a null sender is checked first, before anything
 * else); -EINVAL with res->err (and res->err_rcpt) naming the bad field;
 * -ENOSPC with res->len the octets needed when CAP is short (OUT's content
 * is undefined then). RES is always filled.
 */
int dsn_build(const struct dsn_config *cfg, const struct dsn_msg *m, int64_t now, uint64_t seed,
	      uint8_t *out, size_t cap, struct dsn_result *res);

/*
 * dsn_build() into a buffer of exactly the needed size from malloc(): on 0
 * with res->none == DSN_SEND, *OUT is the DSN (res->len octets), the
 * caller's to free(); otherwise *OUT is NULL. Besides dsn_build()'s
 * returns: -EFBIG when the DSN would be over cfg->max_size, -ENOMEM.
 */
int dsn_build_alloc(const struct dsn_config *cfg, const struct dsn_msg *m, int64_t now,
		    uint64_t seed, uint8_t **out, struct dsn_result *res);

/*
 * Writes the MIME boundary of try TRY (0 .. DSN_BOUNDARY_TRIES-1) for SEED
 * into OUT (DSN_BOUNDARY_LEN + 1 octets, NUL-terminated): dsn_build() uses
 * try 0 unless it occurs anywhere else in the DSN (the returned content,
 * a diagnostic), then try 1, and so on (RFC 2046 §5.1.1). It starts with
 * "=_", which quoted-printable and base64 text never contain.
 */
void dsn_boundary(uint64_t seed, unsigned try, char *out);

#endif
