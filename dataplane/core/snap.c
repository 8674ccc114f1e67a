/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Config snapshots and their reclamation (snap.h). Publishing and
 * reclaiming run on the main lcore or the telemetry thread, under one mutex;
 * the workers only load the current pointer, count their sessions, and
 * report quiescent states. Snapshot memory is ordinary heap: it is made and
 * freed off the fast path.
 */
#include "dataplane/core/snap.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dp_snaps {
	pthread_mutex_t lock;
	struct dp_snap *retired; /* newest first */
	uint64_t gen;
	uint64_t freed;
};

static struct dp_snap *snap_new(struct dp *dp, const struct cfg *cfg, char *err, size_t errlen)
{
	struct dp_snap *s = aligned_alloc(RTE_CACHE_LINE_SIZE, sizeof(*s));

	if (s == NULL) {
		snprintf(err, errlen, "out of memory for a config snapshot");
		errno = ENOMEM;
		return NULL;
	}
	memset(s, 0, sizeof(*s));
	s->cfg = cfg;
	if (dp->svc_snap_new != NULL) {
		errno = 0;
		s->svc = dp->svc_snap_new(dp, cfg, err, errlen);
		if (s->svc == NULL) {
			int e = errno ? errno : ENOMEM;

			free(s);
			errno = e;
			return NULL;
		}
	}
	return s;
}

static void snap_free(struct dp *dp, struct dp_snap *s)
{
	if (s == NULL)
		return;
	if (s->svc != NULL && dp->svc_snap_free != NULL)
		dp->svc_snap_free(dp, s->svc);
	cfg_free(s->owned);
	free(s);
}

static int64_t snap_sessions(const struct dp *dp, const struct dp_snap *s)
{
	int64_t n = 0;

	for (unsigned i = 0; i < dp->n_workers; i++)
		n += __atomic_load_n(&s->hold[i].n, __ATOMIC_RELAXED);
	return n;
}

int dp_snap_init(struct dp *dp)
{
	size_t sz = rte_rcu_qsbr_get_memsize(dp->n_workers);
	char err[128];
	int rc = -ENOMEM;

	dp->snaps = calloc(1, sizeof(*dp->snaps));
	dp->qsv = aligned_alloc(RTE_CACHE_LINE_SIZE, RTE_ALIGN_CEIL(sz, RTE_CACHE_LINE_SIZE));
	if (dp->snaps == NULL || dp->qsv == NULL)
		goto fail;
	pthread_mutex_init(&dp->snaps->lock, NULL);
	memset(dp->qsv, 0, sz);
	if (rte_rcu_qsbr_init(dp->qsv, dp->n_workers) != 0) {
		rc = -EINVAL;
		goto fail;
	}
	/* registered but offline until its loop starts: an offline worker never holds up a swap */
	for (unsigned i = 0; i < dp->n_workers; i++)
		if (rte_rcu_qsbr_thread_register(dp->qsv, i) != 0) {
			rc = -EINVAL;
			goto fail;
		}
	struct dp_snap *s = snap_new(dp, dp->cfg, err, sizeof(err));

	if (s == NULL) {
		rc = -errno;
		goto fail;
	}
	s->gen = dp->snaps->gen = 1;
	__atomic_store_n(&dp->snap, s, __ATOMIC_RELEASE);
	return 0;
fail:
	free(dp->qsv);
	dp->qsv = NULL;
	free(dp->snaps);
	dp->snaps = NULL;
	return rc;
}

void dp_snap_fini(struct dp *dp)
{
	if (dp->snaps == NULL)
		return;
	while (dp->snaps->retired != NULL) {
		struct dp_snap *s = dp->snaps->retired;

		dp->snaps->retired = s->next;
		snap_free(dp, s);
	}
	snap_free(dp, dp->snap);
	dp->snap = NULL;
	pthread_mutex_destroy(&dp->snaps->lock);
	free(dp->snaps);
	dp->snaps = NULL;
	free(dp->qsv);
	dp->qsv = NULL;
}

int64_t dp_snap_publish(struct dp *dp, struct cfg *cfg, char *err, size_t errlen)
{
	struct dp_snap *s, *old;

	if (dp->snaps == NULL) {
		cfg_free(cfg);
		snprintf(err, errlen, "this program runs without config snapshots");
		return -ENOTSUP;
	}
	s = snap_new(dp, cfg, err, errlen);
	if (s == NULL) {
		int e = errno;

		cfg_free(cfg);
		return -e;
	}
	s->owned = cfg;
	pthread_mutex_lock(&dp->snaps->lock);
	s->gen = ++dp->snaps->gen;
	old = dp->snap;
	/* new sessions see S from here; the token orders the swap before every later report */
	__atomic_store_n(&dp->snap, s, __ATOMIC_RELEASE);
	old->token = rte_rcu_qsbr_start(dp->qsv);
	old->next = dp->snaps->retired;
	dp->snaps->retired = old;
	pthread_mutex_unlock(&dp->snaps->lock);
	return (int64_t)s->gen;
}

unsigned dp_snap_reclaim(struct dp *dp)
{
	struct dp_snap **pp, *dead = NULL;
	unsigned left = 0;

	if (dp->snaps == NULL)
		return 0;
	pthread_mutex_lock(&dp->snaps->lock);
	for (pp = &dp->snaps->retired; *pp != NULL;) {
		struct dp_snap *s = *pp;

		/* the grace period first: before it, a count of zero may still grow */
		if (rte_rcu_qsbr_check(dp->qsv, s->token, false) == 1 &&
		    snap_sessions(dp, s) == 0) {
			*pp = s->next;
			s->next = dead;
			dead = s;
			dp->snaps->freed++;
			continue;
		}
		left++;
		pp = &s->next;
	}
	pthread_mutex_unlock(&dp->snaps->lock);
	while (dead != NULL) {
		struct dp_snap *s = dead;

		dead = s->next;
		snap_free(dp, s);
	}
	return left;
}

void dp_snap_status(struct dp *dp, struct dp_snap_status *st)
{
	memset(st, 0, sizeof(*st));
	if (dp->snaps == NULL)
		return;
	pthread_mutex_lock(&dp->snaps->lock);
	st->gen = dp->snap->gen;
	st->freed = dp->snaps->freed;
	for (const struct dp_snap *s = dp->snaps->retired; s != NULL; s = s->next) {
		st->retired++;
		st->sessions += snap_sessions(dp, s);
	}
	pthread_mutex_unlock(&dp->snaps->lock);
}

const struct cfg *dp_snap_cfg(struct dp *dp)
{
	const struct dp_snap *s = __atomic_load_n(&dp->snap, __ATOMIC_ACQUIRE);

	return s != NULL ? s->cfg : dp->cfg;
}

void dp_snap_online(struct dp_worker *w)
{
	if (w->dp->qsv != NULL)
		rte_rcu_qsbr_thread_online(w->dp->qsv, w->id);
}

void dp_snap_offline(struct dp_worker *w)
{
	if (w->dp->qsv != NULL)
		rte_rcu_qsbr_thread_offline(w->dp->qsv, w->id);
}
