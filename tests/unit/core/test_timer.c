/* SPDX-License-Identifier: BSD-3-Clause */
/* The worker's timer wheel, on a virtual microsecond clock. */
#include <stdlib.h>

#include <criterion/criterion.h>

#include "dataplane/core/timer.h"

#define HZ 1000000ull /* a virtual clock in microseconds */
#define MS 1000ull

static struct timer_wheel w;
static uint64_t fired_at[64];
static unsigned n_fired;
static uint64_t clock_now;

static void record(struct timer *t, void *arg)
{
	(void)t;
	fired_at[(uintptr_t)arg] = clock_now;
	n_fired++;
}

static void setup(void)
{
	timer_wheel_init(&w, HZ, 1000, 0);
	n_fired = 0;
	clock_now = 0;
}

static void advance_to(uint64_t t)
{
	for (; clock_now < t; clock_now += MS)
		timer_wheel_run(&w, clock_now);
	timer_wheel_run(&w, clock_now = t);
}

TestSuite(timer, .init = setup);

Test(timer, fires_at_its_time_and_not_before)
{
	struct timer t;
	timer_init(&t, record, (void *)0);
	timer_arm_ms(&w, &t, 0, 200);
	advance_to(199 * MS);
	cr_assert_eq(n_fired, 0);
	advance_to(200 * MS);
	cr_assert_eq(n_fired, 1);
	cr_assert_eq(fired_at[0], 200 * MS);
	cr_assert_not(timer_armed(&t));
}

Test(timer, a_timer_many_turns_away_waits_its_turns)
{
	struct timer t;
	timer_init(&t, record, (void *)0);
	timer_arm_ms(&w, &t, 0, 5 * 60 * 1000); /* an SMTP data timeout */
	advance_to(5 * 60 * 1000 * MS - MS);
	cr_assert_eq(n_fired, 0);
	advance_to(5 * 60 * 1000 * MS);
	cr_assert_eq(n_fired, 1);
}

Test(timer, a_long_stall_fires_everything_due_in_order)
{
	struct timer t[3];
	for (unsigned i = 0; i < 3; i++)
		timer_init(&t[i], record, (void *)(uintptr_t)i);
	timer_arm_ms(&w, &t[0], 0, 30);
	timer_arm_ms(&w, &t[1], 0, 10);
	timer_arm_ms(&w, &t[2], 0, 9000);
	clock_now = 10000 * MS;
	cr_assert_eq(timer_wheel_run(&w, clock_now), 3);
}

Test(timer, cancel_and_rearm_move_a_timer)
{
	struct timer t;
	timer_init(&t, record, (void *)0);
	timer_arm_ms(&w, &t, 0, 50);
	timer_cancel(&w, &t);
	timer_cancel(&w, &t); /* twice is fine */
	advance_to(100 * MS);
	cr_assert_eq(n_fired, 0);
	timer_arm_ms(&w, &t, clock_now, 50);
	timer_arm_ms(&w, &t, clock_now, 10); /* re-arm moves it */
	advance_to(110 * MS);
	cr_assert_eq(n_fired, 1);
	advance_to(200 * MS);
	cr_assert_eq(n_fired, 1);
	cr_assert_eq(w.armed, 0);
}

static struct timer chain[2];

static void cancel_other(struct timer *t, void *arg)
{
	(void)arg;
	n_fired++;
	timer_cancel(&w, t == &chain[0] ? &chain[1] : &chain[0]);
	timer_arm_ms(&w, t, clock_now, 1); /* and re-arm itself */
}

Test(timer, a_callback_may_cancel_a_timer_due_in_the_same_tick_and_rearm_itself)
{
	timer_init(&chain[0], cancel_other, NULL);
	timer_init(&chain[1], cancel_other, NULL);
	timer_arm_ms(&w, &chain[0], 0, 5);
	timer_arm_ms(&w, &chain[1], 0, 5);
	advance_to(5 * MS);
	cr_assert_eq(n_fired, 1, "the second was cancelled by the first");
	advance_to(6 * MS);
	cr_assert_eq(n_fired, 2, "the survivor re-armed itself");
	cr_assert_eq(w.armed, 1);
}

Test(timer, thousands_of_random_timers_fire_once_each_at_their_tick)
{
	enum { N = 20000 };
	struct timer *t = calloc(N, sizeof(*t));
	uint64_t *due = calloc(N, sizeof(*due));
	srand(11);
	for (unsigned i = 0; i < N; i++) {
		timer_init(&t[i], record, (void *)(uintptr_t)(i % 64));
		due[i] = (uint64_t)(rand() % 20000 + 1) * MS; /* never "now": see timer_arm_at() */
		timer_arm_at(&w, &t[i], due[i]);
	}
	cr_assert_eq(w.armed, N);
	for (uint64_t now = 0; now <= 20000 * MS; now += 7 * MS) {
		timer_wheel_run(&w, now);
		for (unsigned i = 0; i < N; i++)
			if (due[i] <= now && timer_armed(&t[i]))
				cr_assert_fail("timer %u due %lu still armed at %lu", i, due[i], now);
	}
	timer_wheel_run(&w, 20000 * MS);
	cr_assert_eq(n_fired, N);
	cr_assert_eq(w.armed, 0);
	free(t);
	free(due);
}
