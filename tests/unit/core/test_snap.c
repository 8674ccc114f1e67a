/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dataplane/core/snap.c: a config snapshot outlives every session that took
 * it and every worker's view of it, and not a moment longer. Workers are
 * played by the test (and by real threads in the last test); no EAL.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "dataplane/core/snap.h"

#define YAML "dataplane:\n  ports:\n    - device: net_tap0\n      addresses: [198.51.100.2/24]\n"
#define VIEW_MAGIC 0x5ca1ab1eu

/* The service's view: a marker the workers check, and a tally of views alive. */
struct view {
	unsigned magic;
	const struct cfg *cfg;
};

static int views_alive;
static int views_made;
static bool refuse_next;

static void *view_new(struct dp *dp, const struct cfg *cfg, char *err, size_t errlen)
{
	struct view *v;

	(void)dp;
	if (refuse_next) {
		refuse_next = false;
		snprintf(err, errlen, "listeners[0].limits: too big");
		errno = E2BIG;
		return NULL;
	}
	v = malloc(sizeof(*v));
	cr_assert_not_null(v);
	v->magic = VIEW_MAGIC;
	v->cfg = cfg;
	__atomic_add_fetch(&views_alive, 1, __ATOMIC_RELAXED);
	views_made++;
	return v;
}

static void view_free(struct dp *dp, void *p)
{
	struct view *v = p;

	(void)dp;
	v->magic = 0;
	free(v);
	__atomic_sub_fetch(&views_alive, 1, __ATOMIC_RELAXED);
}

static struct cfg *new_cfg(void)
{
	struct cfg *c = cfg_load_data("t.yaml", (const uint8_t *)YAML, strlen(YAML), stderr);

	cr_assert_not_null(c);
	return c;
}

static struct dp dp;
static struct cfg *boot;

static void setup(void)
{
	memset(&dp, 0, sizeof(dp));
	views_alive = views_made = 0;
	refuse_next = false;
	boot = new_cfg();
	dp.cfg = boot;
	dp.n_workers = 2;
	dp.svc_snap_new = view_new;
	dp.svc_snap_free = view_free;
	for (unsigned i = 0; i < dp.n_workers; i++) {
		dp.workers[i] = aligned_alloc(RTE_CACHE_LINE_SIZE, sizeof(struct dp_worker));
		cr_assert_not_null(dp.workers[i]);
		memset(dp.workers[i], 0, sizeof(struct dp_worker));
		dp.workers[i]->id = i;
		dp.workers[i]->dp = &dp;
	}
	cr_assert_eq(dp_snap_init(&dp), 0);
}

static void teardown(void)
{
	dp_snap_fini(&dp);
	cr_assert_eq(views_alive, 0, "every view is freed with its snapshot");
	for (unsigned i = 0; i < dp.n_workers; i++)
		free(dp.workers[i]);
	cfg_free(boot);
}

TestSuite(snap, .init = setup, .fini = teardown);

static int64_t publish(void)
{
	char err[128] = "";
	int64_t gen = dp_snap_publish(&dp, new_cfg(), err, sizeof(err));

	cr_assert_gt(gen, 1, "%s", err);
	return gen;
}

Test(snap, the_first_snapshot_is_the_start_up_config)
{
	struct dp_snap *s = dp_snap_take(dp.workers[0]);

	cr_assert_eq(s->cfg, boot);
	cr_assert_eq(s->gen, 1);
	cr_assert_eq(dp_snap_cfg(&dp), boot);
	dp_snap_drop(dp.workers[0], s);
}

Test(snap, a_session_keeps_its_snapshot_until_it_ends)
{
	struct dp_worker *w0 = dp.workers[0], *w1 = dp.workers[1];
	struct dp_snap_status st;

	dp_snap_online(w0);
	dp_snap_online(w1);
	struct dp_snap *old = dp_snap_take(w0); /* a session opened before the reload */

	cr_assert_eq(publish(), 2);
	struct dp_snap *now = dp_snap_take(w1); /* one opened after it */

	cr_assert_neq(now, old);
	cr_assert_eq(now->gen, 2);
	cr_assert_neq(now->cfg, boot);
	dp_snap_quiescent(w0);
	dp_snap_quiescent(w1);
	/* every worker moved on, but the first session still reads the old settings */
	cr_assert_eq(dp_snap_reclaim(&dp), 1);
	cr_assert_eq(((struct view *)old->svc)->magic, VIEW_MAGIC);
	dp_snap_status(&dp, &st);
	cr_assert_eq(st.gen, 2);
	cr_assert_eq(st.retired, 1);
	cr_assert_eq(st.sessions, 1);
	dp_snap_drop(w0, old); /* it ends */
	cr_assert_eq(dp_snap_reclaim(&dp), 0);
	cr_assert_eq(views_alive, 1, "only the current snapshot's view is left");
	dp_snap_status(&dp, &st);
	cr_assert_eq(st.freed, 1);
	dp_snap_drop(w1, now);
	dp_snap_offline(w0);
	dp_snap_offline(w1);
}

Test(snap, a_retired_snapshot_waits_for_every_worker_to_pass_a_quiescent_state)
{
	struct dp_worker *w0 = dp.workers[0], *w1 = dp.workers[1];

	dp_snap_online(w0);
	dp_snap_online(w1);
	publish();
	/* no session holds it, but worker 1 may be between loading the pointer and counting */
	dp_snap_quiescent(w0);
	cr_assert_eq(dp_snap_reclaim(&dp), 1);
	cr_assert_eq(views_alive, 2);
	dp_snap_quiescent(w1);
	cr_assert_eq(dp_snap_reclaim(&dp), 0);
	cr_assert_eq(views_alive, 1);
	dp_snap_offline(w0);
	dp_snap_offline(w1);
}

Test(snap, a_stopped_worker_holds_nothing_up)
{
	struct dp_worker *w0 = dp.workers[0];

	dp_snap_online(w0); /* worker 1 never started its loop */
	publish();
	publish();
	cr_assert_eq(dp_snap_reclaim(&dp), 2);
	dp_snap_quiescent(w0);
	cr_assert_eq(dp_snap_reclaim(&dp), 0);
	dp_snap_offline(w0);
}

Test(snap, a_snapshot_the_service_refuses_changes_nothing)
{
	struct dp_snap *before = dp.snap;
	char err[128] = "";

	refuse_next = true;
	cr_assert_eq(dp_snap_publish(&dp, new_cfg(), err, sizeof(err)), -E2BIG);
	cr_assert_str_eq(err, "listeners[0].limits: too big");
	cr_assert_eq(dp.snap, before);
	cr_assert_eq(dp_snap_reclaim(&dp), 0);
	cr_assert_eq(publish(), 2, "generations count applied reloads only");
}

Test(snap, snapshots_left_at_shutdown_are_freed)
{
	struct dp_snap *s = dp_snap_take(dp.workers[0]);

	publish();
	publish();
	(void)s; /* the session is aborted with its worker; fini frees what is left */
	dp_snap_drop(dp.workers[0], s);
}

/* ---- real threads: workers take and drop while the main thread swaps and frees ---- */

struct racer {
	struct dp_worker *w;
	unsigned sessions;
	unsigned bad;
};

static int stop_racers;

static void *race(void *arg)
{
	struct racer *r = arg;
	struct dp_snap *held[8] = { NULL };
	unsigned k = 0;

	dp_snap_online(r->w);
	while (!__atomic_load_n(&stop_racers, __ATOMIC_ACQUIRE)) {
		/* a session starts, reads its settings, and a later one ends */
		if (held[k] != NULL) {
			const struct view *v = held[k]->svc;

			if (v->magic != VIEW_MAGIC || v->cfg != held[k]->cfg)
				r->bad++;
			dp_snap_drop(r->w, held[k]);
		}
		held[k] = dp_snap_take(r->w);
		r->sessions++;
		k = (k + 1) % 8;
		dp_snap_quiescent(r->w);
	}
	for (unsigned i = 0; i < 8; i++)
		dp_snap_drop(r->w, held[i]);
	dp_snap_offline(r->w);
	return NULL;
}

Test(snap, swaps_under_concurrent_sessions_never_free_what_is_in_use, .timeout = 60)
{
	struct racer r[2] = { { .w = dp.workers[0] }, { .w = dp.workers[1] } };
	pthread_t t[2];

	stop_racers = 0;
	for (unsigned i = 0; i < 2; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, race, &r[i]), 0);
	for (unsigned i = 0; i < 2000; i++) {
		publish();
		dp_snap_reclaim(&dp);
	}
	__atomic_store_n(&stop_racers, 1, __ATOMIC_RELEASE);
	for (unsigned i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	cr_assert_eq(r[0].bad + r[1].bad, 0);
	cr_assert_gt(r[0].sessions + r[1].sessions, 0);
	/* every session ended and every worker stopped: all but the current go */
	cr_assert_eq(dp_snap_reclaim(&dp), 0);
	cr_assert_eq(views_alive, 1);
	cr_assert_eq(views_made, 2001);
}
