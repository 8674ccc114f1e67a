/* SPDX-License-Identifier: BSD-3-Clause */
/* Transaction storage: the envelope copied out of the input into a bounded arena. */
#include <errno.h>
#include <string.h>

#include "dataplane/smtp/tx.h"

void smtp_tx_setup(struct smtp_tx *tx, struct smtp_rcpt *rcpts, unsigned max_rcpt, uint8_t *arena,
		   uint32_t arena_size)
{
	memset(tx, 0, sizeof(*tx));
	tx->rcpt = rcpts;
	tx->max_rcpt = max_rcpt;
	tx->arena = arena;
	tx->arena_size = arena_size;
}

void smtp_tx_clear(struct smtp_tx *tx)
{
	struct smtp_rcpt *rcpts = tx->rcpt;
	unsigned max_rcpt = tx->max_rcpt;
	uint8_t *arena = tx->arena;
	uint32_t arena_size = tx->arena_size;

	smtp_tx_setup(tx, rcpts, max_rcpt, arena, arena_size);
}

int smtp_tx_copy(struct smtp_tx *tx, struct smtp_str *dst, const uint8_t *p, size_t n)
{
	if (n == 0) {
		dst->p = NULL;
		dst->len = 0;
		return 0;
	}
	if (n > tx->arena_size - tx->arena_used)
		return -ENOSPC;
	uint8_t *d = tx->arena + tx->arena_used;
	memcpy(d, p, n);
	tx->arena_used += (uint32_t)n;
	dst->p = d;
	dst->len = n;
	return 0;
}

int smtp_tx_begin(struct smtp_tx *tx, const struct smtp_cmd *mail, struct smtp_str helo,
		  const char *client, const struct smtp_peer *peer, uint64_t now_ms, int64_t wall_s)
{
	smtp_tx_clear(tx);
	if (smtp_tx_copy(tx, &tx->sender, mail->path.mailbox.p, mail->path.mailbox.len) ||
	    smtp_tx_copy(tx, &tx->helo, helo.p, helo.len) ||
	    smtp_tx_copy(tx, &tx->envid, mail->envid.p, mail->envid.len) ||
	    smtp_tx_copy(tx, &tx->auth, mail->auth.p, mail->auth.len)) {
		smtp_tx_clear(tx);
		return -ENOSPC;
	}
	size_t cl = strlen(client);
	if (cl >= sizeof(tx->client))
		cl = sizeof(tx->client) - 1;
	memcpy(tx->client, client, cl);
	tx->client[cl] = '\0';
	tx->peer = *peer;
	tx->size = (mail->params & SMTP_P_SIZE) ? mail->size : 0;
	tx->body = mail->body;
	tx->ret = mail->ret;
	tx->smtputf8 = (mail->params & SMTP_P_SMTPUTF8) != 0;
	tx->start_ms = now_ms;
	tx->wall_s = wall_s;
	tx->active = true;
	return 0;
}

int smtp_tx_add_rcpt(struct smtp_tx *tx, const struct smtp_cmd *rcpt)
{
	if (tx->nrcpt >= tx->max_rcpt)
		return -E2BIG;
	uint32_t mark = tx->arena_used;
	struct smtp_rcpt *r = &tx->rcpt[tx->nrcpt];
	memset(r, 0, sizeof(*r));
	struct smtp_str orcpt = { 0 };
	if (rcpt->params & SMTP_P_ORCPT) /* type ";" addr, contiguous in the line */
		orcpt = (struct smtp_str){ rcpt->orcpt_type.p,
					   rcpt->orcpt_type.len + 1 + rcpt->orcpt_addr.len };
	if (smtp_tx_copy(tx, &r->addr, rcpt->path.mailbox.p, rcpt->path.mailbox.len) ||
	    smtp_tx_copy(tx, &r->orcpt, orcpt.p, orcpt.len)) {
		tx->arena_used = mark;
		return -ENOSPC;
	}
	r->notify = rcpt->notify;
	tx->nrcpt++;
	return 0;
}
