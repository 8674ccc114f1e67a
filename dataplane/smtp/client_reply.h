/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What the SMTP client reads and writes besides the session itself: one
 * reply line (RFC 5321 §4.2 with RFC 3463 enhanced status codes), one EHLO
 * keyword line (RFC 5321 §4.1.1.1), and xtext (RFC 3461 §4). Pure functions
 * over bytes, in the style of the command parser: no allocation, no I/O, and
 * every token is a slice of the caller's buffer.
 */
#ifndef MX_SMTP_CLIENT_REPLY_H
#define MX_SMTP_CLIENT_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "dataplane/smtp/parse.h"

/* What is wrong with a reply line. SMTP_RLE_OK: nothing. The golden vectors print the names. */
#define SMTP_REPLY_LINE_ERRORS(X)                                                                  \
	X(OK)                                                                                      \
	X(BAD_CODE) /* not Reply-code [("-" / SP) text]: %x32-35 %x30-35 %x30-39 */                \
	X(BARE_CR)  /* CR not followed by LF inside the line */                                    \
	X(BARE_LF)  /* LF not preceded by CR inside the line */

#define SMTP_RLE_ENUM_(e) SMTP_RLE_##e,
enum smtp_reply_line_err {
	SMTP_REPLY_LINE_ERRORS(SMTP_RLE_ENUM_) SMTP_RLE_MAX
};
#undef SMTP_RLE_ENUM_

extern const char *const smtp_reply_line_err_names[SMTP_RLE_MAX];

/* One reply line. Slices point into the buffer given to smtp_reply_parse_line(). */
struct smtp_reply_line {
	uint16_t code;	      /* 200..559 */
	bool more;	      /* "-": more lines of this reply follow */
	struct smtp_str text; /* after the code and its separator; may be empty */
	struct smtp_str esc;  /* RFC 3463 status-code at the start of TEXT, or empty */
	struct smtp_str msg;  /* TEXT after the status code and its space (TEXT without one) */
};

/* The longest enhanced status code: "5.999.999" (RFC 3463 §2: 1*3digit twice). */
#define SMTP_ESC_MAX 9

/*
 * Parses one reply line: P[0..LEN) without its CRLF. A line is three digits
 * (RFC 5321 §4.2: the first 2..5, the second 0..5), then nothing, a space or
 * "-", then text. An enhanced status code (RFC 2034 §4, RFC 3463 §2) is only
 * taken when its class is the first digit of the reply code: "550 2.0.0" is
 * text. Returns SMTP_RLE_OK with OUT filled, or the error (OUT undefined).
 * Octets of the text are not judged: the caller sanitises what it keeps.
 * Never reads P[LEN] or beyond.
 */
enum smtp_reply_line_err smtp_reply_parse_line(const uint8_t *p, size_t len,
					       struct smtp_reply_line *out);

/* EHLO keywords the client knows (smtp_ehlo_keyword()); the rest are ignored. */
#define SMTP_EXT_PIPELINING	     0x001 /* RFC 2920 */
#define SMTP_EXT_SIZE		     0x002 /* RFC 1870 */
#define SMTP_EXT_8BITMIME	     0x004 /* RFC 6152 */
#define SMTP_EXT_SMTPUTF8	     0x008 /* RFC 6531 */
#define SMTP_EXT_CHUNKING	     0x010 /* RFC 3030 */
#define SMTP_EXT_DSN		     0x020 /* RFC 3461 */
#define SMTP_EXT_STARTTLS	     0x040 /* RFC 3207 */
#define SMTP_EXT_ENHANCEDSTATUSCODES 0x080 /* RFC 2034 */
#define SMTP_EXT_AUTH		     0x100 /* RFC 4954: MAIL takes AUTH= (§5) */

/*
 * The extension one EHLO reply line offers: its text (after "250-"/"250 "),
 * "keyword *(SP param)", keyword case-insensitive. Returns its SMTP_EXT_* bit
 * or 0 for anything else (unknown keywords, junk). For SIZE, *SIZE is the
 * fixed maximum (saturated at UINT64_MAX), or 0 -- no fixed maximum -- when
 * none is given, it is 0 (RFC 1870 §4) or it is not a number; *SIZE is
 * untouched for other keywords.
 */
unsigned smtp_ehlo_keyword(const uint8_t *p, size_t len, uint64_t *size);

/*
 * Encodes P[0..N) as xtext (RFC 3461 §4): octets 33..126 other than "+" and
 * "=" as they are, every other octet as "+" and two upper-case hex digits.
 * Writes into OUT (CAP octets, no NUL). Returns the encoded length, or -1
 * when it does not fit (OUT's content is undefined then).
 */
ssize_t smtp_xtext_encode(const uint8_t *p, size_t n, char *out, size_t cap);

/*
 * Decodes the xtext P[0..N) into OUT (CAP octets): the inverse of
 * smtp_xtext_encode(), for values stored as the client sent them (the
 * server keeps ORCPT and ENVID as xtext). Returns the decoded length, or -1
 * when P is not xtext (smtp_xtext_valid()) or the result does not fit.
 */
ssize_t smtp_xtext_decode(const uint8_t *p, size_t n, uint8_t *out, size_t cap);

#endif
