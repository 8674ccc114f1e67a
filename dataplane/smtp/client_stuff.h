/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Message content on its way out: dot-stuffing for DATA (RFC 5321 §4.5.2)
 * and the end of data, resumable across any chunking of the input and any
 * size of the output space. The state is two octets, so content split at
 * any point gives the same bytes on the wire as unsplit.
 *
 * A line starts after any CR or LF here, not only after CRLF: content with
 * a bare CR or LF (which the server engine refuses, so it should never come
 * this far) still cannot end the data early at a next hop that takes a bare
 * LF as a line end -- "\n.\r\n" goes out as "\n..\r\n". That is the client
 * half of staying out of SMTP smuggling.
 */
#ifndef MX_SMTP_CLIENT_STUFF_H
#define MX_SMTP_CLIENT_STUFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The end-of-data marker the engine may have to write: CRLF "." CRLF. */
#define SMTP_STUFF_END_MAX 5

/* Stuffing state of one message. Set up with smtp_stuff_init(). */
struct smtp_stuff {
	bool dot;      /* DATA: stuff dots; false for BDAT (octets go as they are) */
	bool bol;      /* the next octet starts a line */
	uint16_t tail; /* the last two content octets, the first in the high byte */
};

/* Prepares S for a new message; DOT: DATA (stuffing) or BDAT (none). */
void smtp_stuff_init(struct smtp_stuff *s, bool dot);

/*
 * Copies IN[0..N) of content to OUT (CAP octets), doubling every "." that
 * starts a line when S->dot. Stops before an octet that does not fit with
 * its stuffing. Returns the octets of IN consumed; *OUT_LEN is set to the
 * octets written.
 */
size_t smtp_stuff(struct smtp_stuff *s, const uint8_t *in, size_t n, uint8_t *out, size_t cap,
		  size_t *out_len);

/* True when the content so far is empty or ends with CRLF. */
bool smtp_stuff_ends_crlf(const struct smtp_stuff *s);

/*
 * Writes the end of the content into OUT (SMTP_STUFF_END_MAX octets of
 * room): a CRLF when the content does not end with one, and for DATA the
 * "." CRLF after it. Returns the octets written (0..5).
 */
size_t smtp_stuff_end(const struct smtp_stuff *s, uint8_t *out);

#endif
