/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Config snapshots: what a reload swaps in without stopping anything. A
 * snapshot is immutable: the config it was made from plus what the mail
 * service derived from it (dp->svc_snap_new: per-worker listener settings).
 * A new session takes the current one with an acquire load and keeps it for
 * its whole life; a reload publishes a new one and retires the old.
 *
 * A retired snapshot is freed once both hold:
 *  - every worker has reported a quiescent state (rte_rcu_qsbr, once per
 *    loop iteration, never inside a callback) since it was retired, so no
 *    worker can still be between loading the old pointer and counting its
 *    session on it; and
 *  - no session holds it: each worker counts its own sessions per snapshot
 *    in its own cache line of the snapshot (written by that worker only,
 *    no atomic read-modify-write), and the reclaimer sums the lines.
 * Once the first holds, nobody can take the old snapshot any more, so its
 * count only falls and a zero sum is final.
 */
#ifndef MX_CORE_SNAP_H
#define MX_CORE_SNAP_H

#include <stdint.h>

#include <rte_rcu_qsbr.h>

#include "dataplane/core/dp.h"

/* One worker's sessions on a snapshot: written by that worker only. */
struct dp_snap_hold {
	int64_t n;
} __rte_cache_aligned;

struct dp_snap {
	const struct cfg *cfg; /* the config it was made from */
	struct cfg *owned;     /* cfg, when the snapshot frees it (not the start-up config) */
	uint64_t gen;	       /* 1: the config mxgate-dp started with; +1 per reload */
	void *svc;	       /* the mail service's view of cfg, or NULL */
	uint64_t token;	       /* RCU token taken when it was retired */
	struct dp_snap *next;  /* the retired list */
	struct dp_snap_hold hold[DP_MAX_WORKERS];
};

/* What the reclaimer knows, for telemetry. */
struct dp_snap_status {
	uint64_t gen;	   /* of the current snapshot */
	unsigned retired;  /* retired, not yet freed */
	int64_t sessions;  /* sessions still on retired snapshots */
	uint64_t freed;	   /* retired snapshots freed so far */
};

/*
 * Sets up reclamation for DP's workers and publishes the first snapshot
 * over dp->cfg (not owned: its caller frees it after dp_snap_fini()).
 * Call after dp_setup() and before dp_launch(). Returns 0 or -errno.
 */
int dp_snap_init(struct dp *dp);

/* Frees every snapshot; the workers must have stopped and their sessions closed (dp_teardown). */
void dp_snap_fini(struct dp *dp);

/*
 * Makes CFG (valid, and with no key that needs a restart) the snapshot new
 * sessions take, and retires the current one. Takes CFG in every case.
 * Returns the new generation (> 1), or -errno with a reason in ERR: -E2BIG
 * when the mail service cannot serve CFG with what it reserved at start
 * (a restart is needed), -ENOMEM. Any thread but a worker's; one at a time.
 */
int64_t dp_snap_publish(struct dp *dp, struct cfg *cfg, char *err, size_t errlen);

/* Frees the retired snapshots nobody can reach any more. Returns how many stay retired. */
unsigned dp_snap_reclaim(struct dp *dp);

/* Fills ST; zeros when snapshots are not in use. */
void dp_snap_status(struct dp *dp, struct dp_snap_status *st);

/* The config of the current snapshot, for the main lcore's readers; dp->cfg without snapshots. */
const struct cfg *dp_snap_cfg(struct dp *dp);

/* ---- the worker's side ---- */

/* The worker's loop starts and ends (registers W's quiescent-state reports). */
void dp_snap_online(struct dp_worker *w);
void dp_snap_offline(struct dp_worker *w);

/* Once per loop iteration, outside every callback: W holds no snapshot pointer it has not counted. */
static inline void dp_snap_quiescent(struct dp_worker *w)
{
	struct rte_rcu_qsbr *v = w->dp->qsv;

	if (v != NULL)
		rte_rcu_qsbr_quiescent(v, w->id);
}

/*
 * The current snapshot, counted as held by one session of W until
 * dp_snap_drop(); NULL when the program runs without snapshots.
 */
static inline struct dp_snap *dp_snap_take(struct dp_worker *w)
{
	struct dp_snap *s = __atomic_load_n(&w->dp->snap, __ATOMIC_ACQUIRE);

	if (s != NULL)
		__atomic_store_n(&s->hold[w->id].n, s->hold[w->id].n + 1, __ATOMIC_RELAXED);
	return s;
}

/* A session of W that took S (NULL is fine) has ended. */
static inline void dp_snap_drop(struct dp_worker *w, struct dp_snap *s)
{
	if (s != NULL)
		__atomic_store_n(&s->hold[w->id].n, s->hold[w->id].n - 1, __ATOMIC_RELAXED);
}

#endif
