/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The message content scanner for DATA (dot-stuffed, ended by CRLF.CRLF) and
 * BDAT (counted chunks) content. Resumable: all state lives in struct
 * smtp_data_scan, so content split across any number of input chunks is
 * never rescanned and gives the same result as unsplit.
 *
 * Only CRLF ends a line and only CRLF "." CRLF ends DATA, whatever chunk
 * boundaries fall between the octets: a bare CR or LF is either a violation
 * (the message is refused) or, where the listener says so, rewritten to
 * CRLF without ever ending a line for the purposes of dot-stuffing and the
 * end of data. NUL is refused in text content too: a next hop that drops
 * NULs would read "CRLF NUL . CRLF" as the end of data. That is what keeps
 * the gateway out of SMTP smuggling, as a receiver and as a relay.
 */
#ifndef MX_SMTP_DATA_H
#define MX_SMTP_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum smtp_data_mode {
	SMTP_DATA_DOT = 0, /* DATA: undo dot-stuffing, end at CRLF.CRLF */
	SMTP_DATA_TEXT,	   /* BDAT, BODY=7BIT/8BITMIME: CRLF rules, no stuffing, no end marker */
	SMTP_DATA_BINARY,  /* BDAT, BODY=BINARYMIME: octets as they come (headers still counted) */
};

/* struct smtp_data_scan.flags: what was wrong with the content */
#define SMTP_DATA_BARE_LF   0x01 /* LF without CR before it */
#define SMTP_DATA_BARE_CR   0x02 /* CR without LF after it */
#define SMTP_DATA_LONG_LINE 0x04 /* a line over max_line octets, CRLF included */
#define SMTP_DATA_NORMALIZED 0x08 /* normalize mode: a bare CR or LF was rewritten (no violation) */
#define SMTP_DATA_NUL        0x10 /* a NUL octet: not 7bit/8bit data (RFC 2045 §2.7, 2.8) */

/* Scanner state of one message. Set up with smtp_data_init(). */
struct smtp_data_scan {
	uint8_t mode;	   /* enum smtp_data_mode */
	uint8_t st;	   /* position in the line grammar (data.c) */
	uint8_t flags;	   /* SMTP_DATA_* seen so far */
	uint8_t hdr_match; /* octets of "Received:" matched on this header line; 0xff: none */
	bool normalize;	   /* rewrite bare CR / LF to CRLF instead of flagging them */
	bool discard;	   /* emit nothing more (set on a violation, or by the caller) */
	bool in_header;	   /* still in the header section (before the first empty line) */
	bool done;	   /* DOT mode: the end of data was found */
	uint32_t max_line; /* RFC 5321 §4.5.3.1.6 text line limit incl. CRLF; 0: none */
	uint32_t received; /* Received: header fields seen in the header section */
	uint64_t line_len; /* content octets of the current line so far */
	uint64_t emitted;  /* octets handed to emit() */
};

/* Receives content in order; P is valid only during the call. */
typedef void (*smtp_data_emit_fn)(void *arg, const uint8_t *p, size_t n);

/* Prepares D for a new message. */
void smtp_data_init(struct smtp_data_scan *d, enum smtp_data_mode mode, unsigned max_line,
		    bool normalize);

/*
 * Scans P[0..N) of content and hands the message octets to EMIT (slices of P
 * where possible: dot-stuffing removed; in normalize mode CR or LF inserted
 * from static storage). Returns the octets consumed: N, or in DOT mode the
 * offset just past the CRLF.CRLF that ends the data (D->done set; what
 * follows is the next command). Returns 0 once done. Emits nothing once
 * D->discard is set, but keeps looking for the end of data. On a violation
 * the content handed on ends right before the offending octet, whatever the
 * chunking.
 */
size_t smtp_data_scan(struct smtp_data_scan *d, const uint8_t *p, size_t n, smtp_data_emit_fn emit,
		      void *arg);

/*
 * The content ended without an end marker (BDAT ... LAST): settles a CR that
 * was the very last octet (bare: flagged, or completed to CRLF in normalize
 * mode). DOT mode needs no end call: CRLF.CRLF settles everything.
 */
void smtp_data_end(struct smtp_data_scan *d, smtp_data_emit_fn emit, void *arg);

#endif
