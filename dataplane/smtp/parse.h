/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The SMTP command parser (RFC 5321 §4.1 grammar, with the ESMTP parameters
 * of RFC 1870 SIZE, RFC 6152 8BITMIME, RFC 3030 BINARYMIME, RFC 3461 DSN,
 * RFC 4954 AUTH and RFC 6531 SMTPUTF8). A pure function over bytes in the
 * style of picohttpparser: no allocation, no I/O, and every token is a slice
 * of the caller's buffer.
 */
#ifndef MX_SMTP_PARSE_H
#define MX_SMTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A slice of a buffer the caller owns. All-zero is the empty slice. */
struct smtp_str {
	const uint8_t *p;
	size_t len;
};

/* RFC 5321 §4.5.3.1 size limits, in octets. */
#define SMTP_LOCAL_MAX  64  /* local part */
#define SMTP_DOMAIN_MAX 255 /* domain */
#define SMTP_PATH_MAX   256 /* path, with the angle brackets */
#define SMTP_ENVID_MAX  100 /* RFC 3461 §4.4, as transmitted (xtext) */
#define SMTP_ORCPT_MAX  500 /* RFC 3461 §4.2, addr-type ";" xtext */
#define SMTP_AUTHP_MAX  500 /* MAIL AUTH= parameter (RFC 4954 §5), our bound */

/* The commands the parser knows. SMTP_V_UNKNOWN: anything else. */
enum smtp_verb {
	SMTP_V_UNKNOWN = 0,
	SMTP_V_HELO,
	SMTP_V_EHLO,
	SMTP_V_MAIL,
	SMTP_V_RCPT,
	SMTP_V_DATA,
	SMTP_V_BDAT,
	SMTP_V_RSET,
	SMTP_V_NOOP,
	SMTP_V_QUIT,
	SMTP_V_VRFY,
	SMTP_V_HELP,
	SMTP_V_STARTTLS,
	SMTP_V_AUTH,
	SMTP_V_EXPN, /* recognised, never offered */
	SMTP_V_ETRN, /* recognised, never offered */
	SMTP_V_TURN, /* recognised, never offered */
	SMTP_V_MAX
};

/*
 * What is wrong with a complete command line. SMTP_PE_OK: nothing. The server
 * maps each to one reply; the golden vectors print the names.
 */
#define SMTP_PARSE_ERRORS(X)                                                                       \
	X(OK)                                                                                      \
	X(EMPTY)            /* nothing but spaces before CRLF */                                   \
	X(BARE_LF)          /* LF not preceded by CR inside the line */                            \
	X(BARE_CR)          /* CR not followed by LF inside the line */                            \
	X(NUL)              /* a NUL octet in a command */                                         \
	X(BAD_UTF8)         /* an 8-bit octet that is not well-formed UTF-8 */                     \
	X(UNKNOWN_VERB)                                                                            \
	X(SYNTAX)           /* generic: wrong shape of the arguments for this verb */              \
	X(NO_ARGS_ALLOWED)  /* DATA, RSET, QUIT, STARTTLS with arguments */                        \
	X(BAD_DOMAIN)       /* HELO/EHLO argument is not a Domain / address-literal */             \
	X(BAD_PATH)         /* reverse-path / forward-path syntax */                               \
	X(PATH_TOO_LONG)    /* local part, domain or path over RFC 5321 §4.5.3.1 */                \
	X(UTF8_ADDRESS)     /* non-ASCII address without SMTPUTF8 */                               \
	X(PARAM_UNKNOWN)    /* esmtp-keyword we do not implement (cmd->bad_param) */               \
	X(PARAM_SYNTAX)     /* esmtp-param not of the form keyword[=value] */                      \
	X(PARAM_BAD_VALUE)  /* known keyword, bad value (cmd->bad_param) */                        \
	X(PARAM_DUPLICATE)  /* the same keyword twice (cmd->bad_param) */                          \
	X(BDAT_SIZE)        /* BDAT chunk-size missing, not digits or over 2^63 */

#define SMTP_PE_ENUM_(e) SMTP_PE_##e,
enum smtp_parse_err { SMTP_PARSE_ERRORS(SMTP_PE_ENUM_) SMTP_PE_MAX };
#undef SMTP_PE_ENUM_

extern const char *const smtp_parse_err_names[SMTP_PE_MAX];
extern const char *const smtp_verb_names[SMTP_V_MAX];

/* struct smtp_path.flags */
#define SMTP_PATH_NULL         0x01 /* the null reverse-path <> */
#define SMTP_PATH_POSTMASTER   0x02 /* <Postmaster> without a domain (RCPT only) */
#define SMTP_PATH_QUOTED       0x04 /* the local part is a Quoted-string */
#define SMTP_PATH_LITERAL      0x08 /* the domain is an address literal */
#define SMTP_PATH_UTF8         0x10 /* non-ASCII octets in the mailbox */
#define SMTP_PATH_SOURCE_ROUTE 0x20 /* an A-d-l was given (and is ignored) */

/* A reverse- or forward-path. Slices point into the command line. */
struct smtp_path {
	struct smtp_str mailbox; /* Local-part "@" domain: no <>, no source route; empty for <> */
	struct smtp_str local;   /* as sent: quotes kept */
	struct smtp_str domain;  /* as sent: brackets kept for literals; empty for <Postmaster> */
	uint8_t flags;
};

enum smtp_body { SMTP_BODY_NONE = 0, SMTP_BODY_7BIT, SMTP_BODY_8BITMIME, SMTP_BODY_BINARYMIME };
enum smtp_ret { SMTP_RET_NONE = 0, SMTP_RET_FULL, SMTP_RET_HDRS };

/* struct smtp_cmd.params: which ESMTP parameters were given */
#define SMTP_P_SIZE     0x001
#define SMTP_P_BODY     0x002
#define SMTP_P_SMTPUTF8 0x004
#define SMTP_P_RET      0x008
#define SMTP_P_ENVID    0x010
#define SMTP_P_AUTH     0x020
#define SMTP_P_NOTIFY   0x040
#define SMTP_P_ORCPT    0x080

/* RCPT NOTIFY= (RFC 3461 §4.1) */
#define SMTP_NOTIFY_NEVER   0x01
#define SMTP_NOTIFY_SUCCESS 0x02
#define SMTP_NOTIFY_FAILURE 0x04
#define SMTP_NOTIFY_DELAY   0x08

/* A parsed command line. Slices point into the buffer given to smtp_parse_cmd(). */
struct smtp_cmd {
	enum smtp_verb verb;
	enum smtp_parse_err err;
	struct smtp_str line;      /* the whole line without CRLF */
	struct smtp_str args;      /* after the verb and its spaces, trailing spaces trimmed */
	struct smtp_str bad_param; /* keyword named by PARAM_* errors */

	/* HELO/EHLO: the Domain or address-literal. */
	struct smtp_str helo;
	/* MAIL/RCPT */
	struct smtp_path path;
	unsigned params;    /* SMTP_P_* given */
	uint64_t size;      /* SIZE=, saturated at UINT64_MAX (RFC 1870: up to 20 digits) */
	enum smtp_body body;
	enum smtp_ret ret;
	struct smtp_str envid;      /* ENVID= xtext, as sent */
	struct smtp_str auth;       /* MAIL AUTH= xtext or "<>", as sent */
	uint8_t notify;             /* SMTP_NOTIFY_* */
	struct smtp_str orcpt_type; /* ORCPT= addr-type */
	struct smtp_str orcpt_addr; /* ORCPT= after ";", xtext as sent */
	/* BDAT */
	uint64_t chunk_size;
	bool last;
	/* AUTH: mechanism and optional initial response */
	struct smtp_str mech, initial;
};

/* smtp_parse_cmd() flags */
#define SMTP_PARSE_F_UTF8 0x1 /* RCPT: the transaction is SMTPUTF8, non-ASCII addresses allowed */

#define SMTP_PARSE_PARTIAL (-2)

/*
 * Parses the command line at the start of BUF (LEN bytes). Only CRLF ends a
 * line: a bare CR or LF is part of the line and makes it malformed.
 *
 * Returns the length of the line including its CRLF when BUF holds a whole
 * line: CMD is filled and CMD->err says whether the line is well formed
 * (SMTP_PE_OK) or what is wrong with it. Returns SMTP_PARSE_PARTIAL when BUF
 * holds no CRLF yet; CMD is then untouched. Never reads BUF[LEN] or beyond.
 * The caller bounds LEN to its line limit; lines longer than INT_MAX are
 * never complete.
 */
ssize_t smtp_parse_cmd(const uint8_t *buf, size_t len, unsigned flags, struct smtp_cmd *cmd);

/* Index of the CR of the first CRLF in BUF[0..LEN), or -1. Bare CR and LF are skipped. */
ssize_t smtp_find_crlf(const uint8_t *buf, size_t len);

/* True when P[0..N) is well-formed UTF-8 (RFC 3629: no overlongs, surrogates or > U+10FFFF). */
bool smtp_utf8_valid(const uint8_t *p, size_t n);

/* True when P[0..N) is a Domain (RFC 5321 §4.1.2); UTF8 also allows U-labels (RFC 6531 §3.3). */
bool smtp_domain_valid(const uint8_t *p, size_t n, bool utf8);

/* True when P[0..N) is an address-literal "[...]": IPv4 or "IPv6:" (RFC 5321 §4.1.3). */
bool smtp_addr_literal_valid(const uint8_t *p, size_t n);

/* True when P[0..N) is xtext (RFC 3461 §4): "+XX" (upper-case hex), or octets 33..126 but +, =. */
bool smtp_xtext_valid(const uint8_t *p, size_t n);

#endif
