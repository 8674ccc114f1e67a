/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The operator's queue commands as telemetry rows (relay_admin.h): turns
 * the engine's queue view and operations into a page (core/svc.h) and
 * every refusal into a sentence for the operator. Pure: runs on the owning
 * worker, and in unit tests on the fake store.
 */
#include "dataplane/relay/relay_admin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/core/svc.h"

static void msg_row(struct dp_svc_page *p, const struct relay_qinfo *q, int64_t now)
{
	dp_svc_str(p, "id", q->qid);
	dp_svc_str(p, "state", relay_qstate_names[q->state]);
	dp_svc_int(p, "held", q->state == RELAY_Q_STATE_HELD);
	dp_svc_int(p, "age_s", q->arrival != 0 && now > q->arrival ? now - q->arrival : 0);
	dp_svc_int(p, "size", (int64_t)q->size);
	dp_svc_int(p, "envelope_known", q->envelope_known);
	dp_svc_str(p, "sender", q->sender);
	dp_svc_int(p, "rcpts", q->nrcpt);
	dp_svc_int(p, "pending", q->pending);
	/* the next attempt: unix s; 0 when none is set (ready, delivering, held) */
	bool timed = q->state == RELAY_Q_STATE_DEFERRED && q->next_attempt > 0;
	dp_svc_int(p, "next_attempt", timed ? q->next_attempt : 0);
	dp_svc_int(p, "next_in_s", timed && q->next_attempt > now ? q->next_attempt - now : 0);
	dp_svc_int(p, "attempts", q->failures);
	dp_svc_str(p, "last_reply", q->last_reply);
}

static int list_page(struct relay_sched *s, struct dp_svc_page *p)
{
	uint64_t pos = p->cursor;
	int64_t now = relay_sched_wall(s);
	struct relay_qinfo q;
	bool any = false;

	while (relay_sched_q_next(s, &pos, &q)) {
		any = true;
		msg_row(p, &q, now);
		if (!dp_svc_row_end(p, pos))
			return 0; /* full: the next page starts at pos */
	}
	if (any)
		p->next[p->nrows - 1] = DP_SVC_END;
	return 0;
}

static int not_found(struct dp_svc_page *p)
{
	snprintf(p->error, sizeof(p->error), "no message %.24s in this worker's queue", p->arg);
	return -ENOENT;
}

/*
 * Cursor 0: the message's row, then its recipients; cursor N: recipients
 * from index N - 1 on.
 */
static int show_page(struct relay_sched *s, struct dp_svc_page *p)
{
	struct relay_qinfo q;
	struct relay_qrcpt r;
	unsigned i = p->cursor > 0 ? (unsigned)(p->cursor - 1) : 0;

	if (relay_sched_q_find(s, p->arg, &q) != 0)
		return not_found(p);
	if (p->cursor == 0) {
		dp_svc_str(p, "kind", "message");
		msg_row(p, &q, relay_sched_wall(s));
		if (!dp_svc_row_end(p, q.nrcpt > 0 ? 1 : DP_SVC_END))
			return 0;
	}
	for (; relay_sched_q_rcpt(s, p->arg, i, &r) == 0; i++) {
		dp_svc_str(p, "kind", "rcpt");
		dp_svc_int(p, "index", i);
		dp_svc_str(p, "addr", r.addr);
		dp_svc_str(p, "state", r.state);
		dp_svc_int(p, "code", r.code);
		dp_svc_str(p, "reply", r.reply);
		if (!dp_svc_row_end(p, i + 1 < q.nrcpt ? i + 2 : DP_SVC_END))
			return 0;
	}
	return 0;
}

static int done_row(struct dp_svc_page *p, const char *what)
{
	dp_svc_str(p, "id", p->arg);
	dp_svc_str(p, "done", what);
	dp_svc_row_end(p, DP_SVC_END);
	return 0;
}

int relay_admin_page(struct relay_sched *s, struct dp_svc_page *p)
{
	unsigned left = 0;
	int rc;

	switch (p->op) {
	case DP_SVC_QUEUE_LIST:
		return list_page(s, p);
	case DP_SVC_QUEUE_SHOW:
		return show_page(s, p);
	case DP_SVC_QUEUE_FLUSH:
		dp_svc_int(p, "flushed", relay_sched_q_flush(s));
		dp_svc_row_end(p, DP_SVC_END);
		return 0;
	case DP_SVC_QUEUE_HOLD:
		rc = relay_sched_q_hold(s, p->arg);
		break;
	case DP_SVC_QUEUE_RELEASE:
		rc = relay_sched_q_release(s, p->arg);
		break;
	case DP_SVC_QUEUE_DELETE:
		rc = relay_sched_q_delete(s, p->arg, &left);
		break;
	default:
		snprintf(p->error, sizeof(p->error), "not a queue operation");
		return -ENOTSUP;
	}
	switch (rc) {
	case 0:
		return done_row(p, p->op == DP_SVC_QUEUE_HOLD	 ? "held" :
				   p->op == DP_SVC_QUEUE_RELEASE ? "released" :
								   "deleted");
	case -ENOENT:
		return not_found(p);
	case -EBUSY:
		snprintf(p->error, sizeof(p->error),
			 "message %.24s is being delivered or waits for a queue slot; try again in "
			 "a moment",
			 p->arg);
		break;
	case -EALREADY:
		snprintf(p->error, sizeof(p->error), "message %.24s is held already", p->arg);
		break;
	case -EINVAL:
		snprintf(p->error, sizeof(p->error), "message %.24s is not held", p->arg);
		break;
	case -ENOBUFS:
		if (left > 0)
			snprintf(p->error, sizeof(p->error),
				 "the spool took only part of the delete: %u recipients of %.24s "
				 "left; run delete again",
				 left, p->arg);
		else
			snprintf(p->error, sizeof(p->error),
				 "the spool has no room for the record now; try again");
		break;
	default:
		snprintf(p->error, sizeof(p->error), "the spool refused the record: %s",
			 strerror(-rc));
		break;
	}
	return rc;
}

/* A show that waits for its envelope to be read back. */
struct show_wait {
	struct relay_sched *s;
	struct dp_svc_page *p;
	void (*finish)(void *arg, int rc);
	void *arg;
};

static void show_loaded(void *arg, int err)
{
	struct show_wait *w = arg;
	int rc;

	if (err == -ECANCELED) {
		snprintf(w->p->error, sizeof(w->p->error), "mxgate-dp is stopping");
		rc = err;
	} else {
		rc = show_page(w->s, w->p); /* a failed read shows what is known without it */
	}
	w->finish(w->arg, rc);
	free(w);
}

int relay_admin_page_async(struct relay_sched *s, struct dp_svc_page *p,
			   void (*finish)(void *arg, int rc), void *arg)
{
	struct show_wait *w;

	if (p->op != DP_SVC_QUEUE_SHOW || p->cursor != 0)
		return relay_admin_page(s, p);
	w = malloc(sizeof(*w));
	if (w == NULL)
		return relay_admin_page(s, p);
	*w = (struct show_wait){ .s = s, .p = p, .finish = finish, .arg = arg };
	if (relay_sched_q_load(s, p->arg, show_loaded, w) == 0)
		return -EINPROGRESS;
	free(w);
	return relay_admin_page(s, p); /* known already, or not readable now: as it is */
}
