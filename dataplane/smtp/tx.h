/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The mail transaction's storage (engine-internal): a bounded recipient
 * array and a bump arena for envelope strings, both preallocated with the
 * session. RSET, a new EHLO or the end of a transaction empties it in O(1).
 */
#ifndef MX_SMTP_TX_H
#define MX_SMTP_TX_H

#include "dataplane/smtp/smtp.h"

/* Gives TX its storage (kept across clears). */
void smtp_tx_setup(struct smtp_tx *tx, struct smtp_rcpt *rcpts, unsigned max_rcpt, uint8_t *arena,
		   uint32_t arena_size);

/* Empties TX: no transaction. Storage stays. */
void smtp_tx_clear(struct smtp_tx *tx);

/* Copies P[0..N) into the arena and points *DST at the copy. Returns 0 or -ENOSPC. */
int smtp_tx_copy(struct smtp_tx *tx, struct smtp_str *dst, const uint8_t *p, size_t n);

/*
 * Starts a transaction from a parsed MAIL command: sender and parameters
 * are copied. Returns 0 or -ENOSPC (TX is left empty then).
 */
int smtp_tx_begin(struct smtp_tx *tx, const struct smtp_cmd *mail, struct smtp_str helo,
		  const char *client, const struct smtp_peer *peer, uint64_t now_ms,
		  int64_t wall_s);

/* Adds the recipient of a parsed RCPT command. Returns 0, -E2BIG (max_rcpt) or -ENOSPC. */
int smtp_tx_add_rcpt(struct smtp_tx *tx, const struct smtp_cmd *rcpt);

#endif
