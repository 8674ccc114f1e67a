/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The retry schedule (dataplane/relay/retry.c): backoff growth and its cap,
 * explicit lists, jitter bounds and spread, the queue lifetime to the
 * second, the delay warning, and the configurations it refuses. Times are
 * plain numbers: nothing here waits.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include <criterion/criterion.h>

#include "dataplane/relay/retry.h"

#define T0 1767225600 /* 2026-01-01 00:00:00 UTC */

static struct retry_config expo(uint32_t first, uint32_t factor_pct, uint32_t max)
{
	struct retry_config c;
	retry_config_default(&c);
	c.first_interval = first;
	c.factor_pct = factor_pct;
	c.max_interval = max;
	c.jitter_pct = 0;
	return c;
}

Test(retry, defaults_are_valid_and_as_documented)
{
	struct retry_config c;
	retry_config_default(&c);
	const char *why = "untouched";
	cr_assert_eq(retry_config_validate(&c, &why), 0);
	cr_assert_str_eq(why, "untouched", "no message when valid");
	cr_assert_eq(c.lifetime, 5 * 86400, "RFC 5321 §4.5.4.1: 4-5 days");
	cr_assert_eq(c.delay_warning, 4 * 3600);
	cr_assert_eq(retry_interval(&c, 1), 300);
	cr_assert_eq(retry_interval(&c, 2), 600);
	cr_assert_eq(retry_interval(&c, 4), 2400);
	cr_assert_eq(retry_interval(&c, 5), 4000, "capped at Postfix's 4000 s");
}

Test(retry, exponential_intervals_grow_by_the_factor_until_the_cap)
{
	struct retry_config c = expo(60, 200, 3600);
	cr_assert_eq(retry_config_validate(&c, NULL), 0);
	/* 60 * 2^(n-1), computed here the slow way, capped */
	uint64_t want = 60;
	for (unsigned n = 1; n <= 40; n++) {
		uint64_t capped = want < 3600 ? want : 3600;
		cr_assert_eq(retry_interval(&c, n), capped, "failure %u", n);
		want *= 2;
	}
	cr_assert_eq(retry_interval(&c, 6), 1920);
	cr_assert_eq(retry_interval(&c, 7), 3600, "3840 is over the cap");
}

Test(retry, the_cap_holds_for_any_number_of_failures)
{
	struct retry_config c = expo(300, 200, 4000); /* Postfix's backoff times */
	cr_assert_eq(retry_interval(&c, 4), 2400);
	cr_assert_eq(retry_interval(&c, 5), 4000);
	cr_assert_eq(retry_interval(&c, 1000), 4000);
	cr_assert_eq(retry_interval(&c, UINT_MAX), 4000, "no overflow, no endless loop");
	struct retry_config slow = expo(1, 101, 86400);
	cr_assert_eq(retry_interval(&slow, UINT_MAX), 86400, "1%% growth still reaches the cap");
}

Test(retry, fractional_factors_round_up_and_always_grow)
{
	struct retry_config c = expo(100, 150, 1000);
	cr_assert_eq(retry_interval(&c, 1), 100);
	cr_assert_eq(retry_interval(&c, 2), 150);
	cr_assert_eq(retry_interval(&c, 3), 225);
	cr_assert_eq(retry_interval(&c, 4), 338, "337.5 rounds up");
	cr_assert_eq(retry_interval(&c, 5), 507);
	cr_assert_eq(retry_interval(&c, 6), 761);
	cr_assert_eq(retry_interval(&c, 7), 1000);
	struct retry_config tiny = expo(1, 101, 50);
	for (unsigned n = 1; n < 50; n++)
		cr_assert_gt(retry_interval(&tiny, n + 1), retry_interval(&tiny, n), "%u", n);
}

Test(retry, a_factor_of_one_keeps_the_interval)
{
	struct retry_config c = expo(900, 100, 3600);
	cr_assert_eq(retry_config_validate(&c, NULL), 0);
	for (unsigned n = 1; n < 100; n++)
		cr_assert_eq(retry_interval(&c, n), 900);
}

Test(retry, an_explicit_list_is_followed_and_its_last_entry_repeats)
{
	struct retry_config c;
	retry_config_default(&c);
	c.first_interval = c.factor_pct = c.max_interval = 0;
	c.jitter_pct = 0;
	static const uint32_t list[] = { 60, 300, 900, 3600 };
	c.n_intervals = 4;
	memcpy(c.intervals, list, sizeof(list));
	cr_assert_eq(retry_config_validate(&c, NULL), 0);
	for (unsigned n = 1; n <= 4; n++)
		cr_assert_eq(retry_interval(&c, n), list[n - 1]);
	cr_assert_eq(retry_interval(&c, 5), 3600);
	cr_assert_eq(retry_interval(&c, UINT_MAX), 3600);
}

Test(retry, before_any_failure_the_interval_is_zero)
{
	struct retry_config c;
	retry_config_default(&c);
	cr_assert_eq(retry_interval(&c, 0), 0);
	/* retry_after_failure takes 0 failures as the first */
	int64_t next;
	c.jitter_pct = 0;
	cr_assert_eq(retry_after_failure(&c, T0, T0, 0, 0, &next), RETRY_DEFER);
	cr_assert_eq(next, T0 + 300);
}

Test(retry, jitter_stays_within_its_bounds_and_reaches_both)
{
	struct retry_config c = expo(1000, 200, 100000);
	c.jitter_pct = 10;
	cr_assert_eq(retry_interval_jittered(&c, 1, 0), 900);
	cr_assert_eq(retry_interval_jittered(&c, 1, UINT32_MAX), 1100);
	cr_assert_eq(retry_interval_jittered(&c, 1, 1u << 31), 1000, "the middle");
	uint32_t prev = 0;
	for (uint64_t r = 0; r <= UINT32_MAX; r += 65521) {
		uint32_t v = retry_interval_jittered(&c, 1, (uint32_t)r);
		cr_assert(v >= 900 && v <= 1100, "rnd %llu: %u", (unsigned long long)r, v);
		cr_assert_geq(v, prev, "grows with rnd");
		prev = v;
	}
	/* after the cap too: the spread is around the capped interval */
	cr_assert_eq(retry_interval_jittered(&c, 30, 0), 90000);
	cr_assert_eq(retry_interval_jittered(&c, 30, UINT32_MAX), 110000);
	/* 50 %: never 0, even for a 1 s interval */
	struct retry_config one = expo(1, 200, 1);
	one.jitter_pct = 50;
	cr_assert_eq(retry_interval_jittered(&one, 1, 0), 1);
	struct retry_config three = expo(3, 200, 3);
	three.jitter_pct = 50;
	cr_assert_eq(retry_interval_jittered(&three, 1, 0), 2);
	cr_assert_eq(retry_interval_jittered(&three, 1, UINT32_MAX), 4);
	/* no jitter: RND changes nothing */
	c.jitter_pct = 0;
	cr_assert_eq(retry_interval_jittered(&c, 1, 12345), 1000);
	cr_assert_eq(retry_interval_jittered(&c, 1, UINT32_MAX), 1000);
}

Test(retry, jitter_spreads_messages_deferred_together)
{
	/* 2000 messages deferred by one outage at the same second, each with its own random value */
	struct retry_config c;
	retry_config_default(&c); /* 300 s +-10 %: 61 possible seconds */
	static uint8_t seen[400];
	uint32_t x = 2463534242u; /* xorshift32 */
	unsigned distinct = 0, lo = 0, hi = 0;
	for (int i = 0; i < 2000; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		int64_t next;
		cr_assert_eq(retry_after_failure(&c, T0, T0 + 10, 1, x, &next), RETRY_DEFER);
		int64_t d = next - (T0 + 10);
		cr_assert(d >= 270 && d <= 330, "%lld", (long long)d);
		distinct += !seen[d]++;
		lo += d < 300;
		hi += d > 300;
	}
	cr_assert_geq(distinct, 55, "spread over the window, not in lockstep (%u)", distinct);
	cr_assert(lo > 800 && hi > 800, "both sides of the interval: %u %u", lo, hi);
}

Test(retry, the_lifetime_ends_on_the_exact_second)
{
	struct retry_config c;
	retry_config_default(&c);
	c.jitter_pct = 0;
	int64_t expiry = T0 + 5 * 86400;
	cr_assert_eq(retry_expiry_time(&c, T0), expiry);
	cr_assert(!retry_expired(&c, T0, expiry - 1));
	cr_assert(retry_expired(&c, T0, expiry));
	cr_assert(retry_expired(&c, T0, expiry + 1));

	int64_t next = 0;
	cr_assert_eq(retry_after_failure(&c, T0, expiry, 50, 0, &next), RETRY_EXPIRED);
	cr_assert_eq(next, 0, "untouched when expired");
	/* one second before: one more try, and it falls on the expiry itself */
	cr_assert_eq(retry_after_failure(&c, T0, expiry - 1, 50, 0, &next), RETRY_DEFER);
	cr_assert_eq(next, expiry);
	/* a failure at that try bounces */
	cr_assert_eq(retry_after_failure(&c, T0, next, 51, 0, &next), RETRY_EXPIRED);
}

Test(retry, no_retry_is_scheduled_past_the_expiry)
{
	struct retry_config c;
	retry_config_default(&c);
	int64_t expiry = retry_expiry_time(&c, T0);
	for (int64_t now = expiry - 7200; now < expiry; now += 97) {
		int64_t next;
		cr_assert_eq(retry_after_failure(&c, T0, now, 30, UINT32_MAX, &next), RETRY_DEFER);
		cr_assert_leq(next, expiry);
		cr_assert_gt(next, now);
	}
}

Test(retry, a_whole_message_life_bounces_at_its_lifetime)
{
	/* fail every attempt from arrival: count attempts, check the bounce time */
	struct retry_config c;
	retry_config_default(&c);
	int64_t now = T0;
	unsigned failures = 0;
	int64_t next;
	uint32_t rnd = 1;
	while (retry_after_failure(&c, T0, now, ++failures, rnd, &next) == RETRY_DEFER) {
		cr_assert_gt(next, now);
		now = next;
		rnd = rnd * 1103515245u + 12345u;
		cr_assert_lt(failures, 1000, "the loop ends");
	}
	cr_assert_eq(now, retry_expiry_time(&c, T0), "the bounce comes at the lifetime");
	/*
	 * 300+600+1200+2400 s, then 4000 s (+-10 %) for the rest of 5 days:
	 * 4 + 427500/4000 = 110.9 on average, and the last try on the expiry.
	 * Jitter moves the count by a few at most.
	 */
	cr_assert(failures >= 106 && failures <= 118, "%u attempts", failures);
}

Test(retry, the_delay_warning_is_due_once_between_its_time_and_the_expiry)
{
	struct retry_config c;
	retry_config_default(&c);
	int64_t at = T0 + 4 * 3600;
	cr_assert_eq(retry_warning_time(&c, T0), at);
	cr_assert(!retry_warning_due(&c, T0, at - 1, false));
	cr_assert(retry_warning_due(&c, T0, at, false));
	cr_assert(retry_warning_due(&c, T0, at + 86400, false));
	cr_assert(!retry_warning_due(&c, T0, at, true), "sent already");
	cr_assert(!retry_warning_due(&c, T0, retry_expiry_time(&c, T0), false),
		  "expired: the bounce instead");
	c.delay_warning = 0;
	cr_assert_eq(retry_warning_time(&c, T0), INT64_MAX);
	cr_assert(!retry_warning_due(&c, T0, T0 + 4 * 86400, false), "0: never");
}

Test(retry, times_at_the_edges_saturate_instead_of_overflowing)
{
	struct retry_config c;
	retry_config_default(&c);
	int64_t far = INT64_MAX - 10;
	cr_assert_eq(retry_expiry_time(&c, far), INT64_MAX);
	cr_assert(!retry_expired(&c, far, far));
	int64_t next;
	cr_assert_eq(retry_after_failure(&c, far, far, 3, 0, &next), RETRY_DEFER);
	cr_assert_eq(next, INT64_MAX);
	cr_assert_eq(retry_warning_time(&c, far), INT64_MAX);
	/* a clock behind the arrival (skew): an ordinary deferral */
	c.jitter_pct = 0;
	cr_assert_eq(retry_after_failure(&c, T0, T0 - 100, 1, 0, &next), RETRY_DEFER);
	cr_assert_eq(next, T0 + 200);
}

/* ---- configurations that are refused ---- */

struct bad_config {
	const char *what;
	void (*spoil)(struct retry_config *c);
	const char *says; /* a part of the message */
};

#define SPOIL(name, body)                                                                          \
	static void name(struct retry_config *c)                                                   \
	{                                                                                          \
		body;                                                                              \
	}

SPOIL(zero_lifetime, c->lifetime = 0)
SPOIL(huge_lifetime, c->lifetime = RETRY_LIFETIME_MAX + 1)
SPOIL(zero_first, c->first_interval = 0)
SPOIL(factor_below_one, c->factor_pct = 99)
SPOIL(factor_zero, c->factor_pct = 0)
SPOIL(factor_huge, c->factor_pct = 1001)
SPOIL(cap_below_first, c->max_interval = c->first_interval - 1)
SPOIL(first_at_lifetime,
      (c->lifetime = 3600, c->first_interval = 3600, c->max_interval = 3600, c->delay_warning = 0))
SPOIL(cap_over_lifetime, (c->lifetime = 7200, c->max_interval = 7201, c->delay_warning = 0))
SPOIL(warning_at_lifetime, c->delay_warning = c->lifetime)
SPOIL(jitter_over_half, c->jitter_pct = 51)
SPOIL(both_kinds, (c->n_intervals = 1, c->intervals[0] = 60))
SPOIL(too_many_intervals, (c->first_interval = c->factor_pct = c->max_interval = 0,
			   c->n_intervals = RETRY_MAX_INTERVALS + 1))
SPOIL(zero_in_list, (c->first_interval = c->factor_pct = c->max_interval = 0, c->n_intervals = 2,
		     c->intervals[0] = 60, c->intervals[1] = 0))
SPOIL(shrinking_list, (c->first_interval = c->factor_pct = c->max_interval = 0, c->n_intervals = 2,
		       c->intervals[0] = 600, c->intervals[1] = 60))
SPOIL(list_first_at_lifetime, (c->first_interval = c->factor_pct = c->max_interval = 0,
			       c->n_intervals = 1, c->intervals[0] = c->lifetime))
SPOIL(list_over_lifetime,
      (c->first_interval = c->factor_pct = c->max_interval = 0, c->n_intervals = 2,
       c->intervals[0] = 60, c->intervals[1] = c->lifetime + 1))

static const struct bad_config bad[] = {
	{ "lifetime 0", zero_lifetime, "lifetime is 0" },
	{ "lifetime over 90 days", huge_lifetime, "over 90 days" },
	{ "no first interval, no list", zero_first, "no retry schedule" },
	{ "factor 0.99", factor_below_one, "factor" },
	{ "factor 0", factor_zero, "factor" },
	{ "factor 10.01", factor_huge, "factor" },
	{ "cap below the first interval", cap_below_first, "below the first" },
	{ "first interval = lifetime", first_at_lifetime, "without a retry" },
	{ "cap over the lifetime", cap_over_lifetime, "longer than the queue lifetime" },
	{ "warning at the lifetime", warning_at_lifetime, "delay warning" },
	{ "jitter 51 %", jitter_over_half, "jitter" },
	{ "list and exponential rule", both_kinds, "both" },
	{ "17 intervals", too_many_intervals, "more than 16" },
	{ "a zero interval in the list", zero_in_list, "is 0" },
	{ "a shrinking list", shrinking_list, "shorter" },
	{ "list starting at the lifetime", list_first_at_lifetime, "without a retry" },
	{ "list entry over the lifetime", list_over_lifetime, "longer than the queue lifetime" },
};

Test(retry, odd_configurations_are_refused_with_a_reason)
{
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct retry_config c;
		retry_config_default(&c);
		cr_assert_eq(retry_config_validate(&c, NULL), 0);
		bad[i].spoil(&c);
		const char *why = NULL;
		cr_assert_eq(retry_config_validate(&c, &why), -EINVAL, "%s", bad[i].what);
		cr_assert_not_null(why, "%s", bad[i].what);
		cr_assert_not_null(strstr(why, bad[i].says), "%s: \"%s\"", bad[i].what, why);
		cr_assert_eq(retry_config_validate(&c, NULL), -EINVAL, "WHY may be NULL");
	}
	/* an all-zero config is not a schedule */
	struct retry_config zero = { 0 };
	cr_assert_eq(retry_config_validate(&zero, NULL), -EINVAL);
}
