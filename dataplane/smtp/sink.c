/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The "sink" acknowledgement mode (DESIGN.md §3.4): accept every message,
 * count it (when given a struct smtp_discard_sink), keep nothing. For
 * benchmarks, tests and the first wiring.
 */
#include "dataplane/smtp/smtp.h"

static int discard_begin(void *arg, struct smtp_tx *tx)
{
	(void)arg;
	(void)tx;
	return SMTP_R_NONE;
}

static int discard_chunk(void *arg, struct smtp_tx *tx, const uint8_t *p, size_t n)
{
	struct smtp_discard_sink *d = arg;
	(void)tx;
	(void)p;
	if (d)
		d->bytes += n;
	return SMTP_R_NONE;
}

static int discard_end(void *arg, struct smtp_tx *tx)
{
	struct smtp_discard_sink *d = arg;
	(void)tx;
	if (d)
		d->messages++;
	return SMTP_R_QUEUED;
}

static void discard_abort(void *arg, struct smtp_tx *tx)
{
	struct smtp_discard_sink *d = arg;
	(void)tx;
	if (d)
		d->aborted++;
}

const struct smtp_sink_ops smtp_discard_sink_ops = {
	.begin = discard_begin,
	.chunk = discard_chunk,
	.end = discard_end,
	.abort = discard_abort,
};
