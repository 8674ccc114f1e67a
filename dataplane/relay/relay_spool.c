/* SPDX-License-Identifier: BSD-3-Clause */
/* The relay engine's store on a spool shard (relay_spool.h). */
#include "dataplane/relay/relay_spool.h"

#include <errno.h>
#include <sched.h>

static const char *rs_queue_id(void *arg, const struct spool_msg *m)
{
	(void)arg;
	return spool_msg_queue_id(m);
}

static unsigned rs_nrcpt(void *arg, const struct spool_msg *m)
{
	(void)arg;
	return spool_msg_nrcpt(m);
}

static bool rs_rcpt_final(void *arg, const struct spool_msg *m, unsigned rcpt)
{
	(void)arg;
	return spool_msg_rcpt_final(m, rcpt);
}

static int64_t rs_next_attempt(void *arg, const struct spool_msg *m)
{
	(void)arg;
	return spool_msg_next_attempt(m);
}

static size_t rs_record_size(void *arg, const struct spool_msg *m)
{
	(void)arg;
	return spool_msg_record_size(m);
}

static int rs_read(void *arg, struct spool_msg *m, void *buf, size_t cap, spool_read_cb cb,
		   void *cookie)
{
	struct relay_spool *rs = arg;

	return spool_read(rs->sh, m, buf, cap, cb, cookie);
}

static int rs_state(void *arg, struct spool_msg *m, unsigned rcpt, enum spool_rcpt_state st,
		    int64_t when, int64_t next_attempt, struct smtp_str reply)
{
	struct relay_spool *rs = arg;

	return spool_state(rs->sh, m, rcpt, st, when, next_attempt, reply);
}

static int rs_inject(void *arg, const struct spool_env *env, const uint8_t *content, size_t len,
		     uint64_t now_us, spool_commit_cb cb, void *cookie, struct spool_tx **tx)
{
	struct relay_spool *rs = arg;
	int rc = spool_begin(rs->sh, env, len, tx);

	if (rc != 0)
		return rc;
	rc = spool_append(rs->sh, *tx, content, len);
	if (rc != 0) {
		spool_abort(rs->sh, *tx);
		*tx = NULL;
		return rc;
	}
	spool_commit(rs->sh, *tx, now_us, cb, cookie);
	return 0;
}

static void rs_detach(void *arg, struct spool_tx *tx)
{
	struct relay_spool *rs = arg;

	spool_detach(rs->sh, tx);
}

/*
 * At teardown only (the worker has stopped): polls the shard until nothing
 * is in flight, so reads land before their buffers are freed. Every
 * callback due runs, the relay's and others' alike.
 */
static void rs_drain(void *arg)
{
	struct relay_spool *rs = arg;
	unsigned max = rs->drain_max_polls ? rs->drain_max_polls : 1000000;

	for (unsigned i = 0; i < max && spool_inflight(rs->sh) > 0; i++) {
		spool_poll(rs->sh, rs->clock_us(rs->clock_arg));
		sched_yield();
	}
}

const struct relay_store_ops relay_spool_ops = {
	.queue_id = rs_queue_id,
	.nrcpt = rs_nrcpt,
	.rcpt_final = rs_rcpt_final,
	.next_attempt = rs_next_attempt,
	.record_size = rs_record_size,
	.read = rs_read,
	.state = rs_state,
	.inject = rs_inject,
	.detach = rs_detach,
	.drain = rs_drain,
};
