/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The operator's view of one worker's delivery queue (mxgatectl queue ...):
 * list and look at the messages the relay engine holds, retry the deferred
 * ones now, hold a message (no attempts until released), release it, and
 * delete one (its recipients made final without delivery and without a
 * bounce). The engine's half lives at the end of relay_sched.c, next to the
 * structures it reads; relay_admin.c turns it into telemetry rows.
 *
 * Durability: hold, release and delete are spool state records, so they
 * survive a restart. A hold is a DEFERRED record whose next attempt is
 * RELAY_HOLD_NEXT (recovery keeps the latest DEFERRED record's next
 * attempt, so a later release -- a DEFERRED record due now -- undoes it);
 * a delete is a FAILED record per recipient not yet final, with the reply
 * RELAY_DELETED_REPLY, which recovery treats as final like any failure.
 * Each goes out with the spool's next group commit.
 *
 * Everything runs on the owning worker.
 */
#ifndef MX_RELAY_ADMIN_H
#define MX_RELAY_ADMIN_H

#include <stdbool.h>
#include <stdint.h>

#include "dataplane/relay/relay_sched.h"

/* A DEFERRED record's next attempt that means "held by the operator". */
#define RELAY_HOLD_NEXT INT64_MAX
#define RELAY_HELD_REPLY "4.0.0 held by the operator (mxgatectl queue hold)"
#define RELAY_RELEASED_REPLY "4.0.0 released by the operator (mxgatectl queue release)"
#define RELAY_DELETED_REPLY "5.0.0 deleted by the operator (mxgatectl queue delete)"

enum relay_qstate {
	RELAY_Q_STATE_READY,	  /* due: waits for a read slot */
	RELAY_Q_STATE_DELIVERING, /* read back, or being delivered now */
	RELAY_Q_STATE_SETTLING,	  /* outcomes or a bounce being written */
	RELAY_Q_STATE_DEFERRED,	  /* waits for its next attempt */
	RELAY_Q_STATE_HELD,	  /* no attempt until released */
	RELAY_Q_STATE_WAITING,	  /* past queue_max: waits for a tracking slot (not yet read) */
	RELAY_Q_STATE_MAX
};
extern const char *const relay_qstate_names[RELAY_Q_STATE_MAX];

/* The notes kept per message, cut to these lengths (with a NUL). */
#define RELAY_NOTE_ADDR_MAX  128
#define RELAY_NOTE_REPLY_MAX 128

/* One queued message as the operator sees it. Strings are copies. */
struct relay_qinfo {
	char qid[24];
	enum relay_qstate state;
	int64_t arrival;      /* unix s, from the queue id (0: unknown) */
	int64_t next_attempt; /* unix s: DEFERRED; RELAY_HOLD_NEXT: HELD; 0 otherwise */
	uint64_t size;	      /* spooled record octets (envelope and content) */
	unsigned nrcpt;	      /* recipients */
	unsigned pending;     /* ... not final yet */
	unsigned failures;    /* attempts that ended with deferrals, since this start */
	bool envelope_known;  /* read back since this start: sender and recipients known */
	char sender[RELAY_NOTE_ADDR_MAX]; /* "" for the null sender, or unknown */
	char last_reply[RELAY_NOTE_REPLY_MAX]; /* the latest deferral's reply; "" none */
};

/* One recipient of a queued message. */
struct relay_qrcpt {
	char addr[RELAY_NOTE_ADDR_MAX]; /* "" when the envelope is not known */
	const char *state; /* "pending", "deferred", "delivered", "failed", "final" (before a restart) */
	unsigned code;	   /* the latest reply's code, 0: none */
	char reply[RELAY_NOTE_REPLY_MAX]; /* "451 4.3.0 text", "" none */
};

/*
 * The first message at cursor *POS or after it: fills QI, sets *POS past it
 * and returns true; false when no message is left. A cursor stays usable
 * while the queue changes (messages may come or go between calls).
 */
bool relay_sched_q_next(const struct relay_sched *s, uint64_t *pos, struct relay_qinfo *qi);

/* Message QID: 0 with QI filled, or -ENOENT. */
int relay_sched_q_find(const struct relay_sched *s, const char *qid, struct relay_qinfo *qi);

/* Recipient I of message QID: 0, -ENOENT (no such message), -ERANGE (I past the last). */
int relay_sched_q_rcpt(const struct relay_sched *s, const char *qid, unsigned i,
		       struct relay_qrcpt *r);

/*
 * Holds QID: no delivery attempt until relay_sched_q_release(), across
 * restarts too. Returns 0, -ENOENT, -EALREADY (held already), -EBUSY (being
 * delivered or settled now, or waiting for a tracking slot: try again),
 * -ENOBUFS (the spool had no staging room: try again).
 */
int relay_sched_q_hold(struct relay_sched *s, const char *qid);

/* Releases held QID: due now. 0, -ENOENT, -EINVAL (not held), -ENOBUFS. */
int relay_sched_q_release(struct relay_sched *s, const char *qid);

/*
 * Deletes QID: every recipient not final is recorded FAILED with
 * RELAY_DELETED_REPLY, without delivery and without a DSN, and the event
 * is logged. Returns 0, -ENOENT, -EBUSY (as for hold), or -ENOBUFS when the
 * spool took only some of the records (*LEFT says how many recipients
 * remain; the message stays queued: delete it again).
 */
int relay_sched_q_delete(struct relay_sched *s, const char *qid, unsigned *left);

/*
 * Every deferred message (not the held ones) becomes due now, and every
 * next hop marked down is tried again. Returns how many messages moved.
 */
unsigned relay_sched_q_flush(struct relay_sched *s);

/* An envelope read started by relay_sched_q_load() ended: ERR 0 or -errno (-ECANCELED at free). */
typedef void (*relay_q_loaded_fn)(void *arg, int err);

/*
 * Reads QID's record back so its sender and recipients can be shown (a
 * message recovered at start is read only at its next attempt). Returns 1
 * when they are known already, 0 when the read started (DONE(ARG, err)
 * follows, from the store's completion, or from relay_sched_free()), or
 * -ENOENT, -EBUSY (being delivered: try again), or the store's -errno.
 */
int relay_sched_q_load(struct relay_sched *s, const char *qid, relay_q_loaded_fn done, void *arg);

/* The wall clock the engine keeps (unix s): what ages and next attempts compare with. */
int64_t relay_sched_wall(const struct relay_sched *s);

/*
 * Fills page P (core/svc.h) for its queue operation: list (a row per
 * message from P's cursor), show (the message of P's arg, then a row per
 * recipient), flush, hold, release, delete (one row each). Returns 0, or
 * -errno with P->error saying why for the operator: -ENOENT (no such
 * message), -EBUSY / -ENOBUFS (not now: try again), -EINVAL / -EALREADY
 * (nothing to do: not held, held already), -ENOTSUP (not a queue operation).
 */
struct dp_svc_page;
int relay_admin_page(struct relay_sched *s, struct dp_svc_page *p);

/*
 * As relay_admin_page(), except that show first reads the message's
 * envelope back when it is not known yet: then it returns -EINPROGRESS and
 * calls FINISH(ARG, result) once P is filled (from the store's completion).
 * Every other case returns the result at once and FINISH is not called.
 */
int relay_admin_page_async(struct relay_sched *s, struct dp_svc_page *p,
			   void (*finish)(void *arg, int rc), void *arg);

#endif
