/* SPDX-License-Identifier: BSD-3-Clause */
/* The retry schedule: backoff, jitter, queue lifetime and the delay warning (pure). */
#include <errno.h>
#include <stddef.h>

#include "dataplane/relay/retry.h"

void retry_config_default(struct retry_config *c)
{
	*c = (struct retry_config){
		.first_interval = RETRY_DEFAULT_FIRST,
		.factor_pct = RETRY_DEFAULT_FACTOR_PCT,
		.max_interval = RETRY_DEFAULT_MAX,
		.lifetime = RETRY_DEFAULT_LIFETIME,
		.delay_warning = RETRY_DEFAULT_DELAY_WARNING,
		.jitter_pct = RETRY_DEFAULT_JITTER_PCT,
	};
}

static int bad(const char **why, const char *text)
{
	if (why)
		*why = text;
	return -EINVAL;
}

int retry_config_validate(const struct retry_config *c, const char **why)
{
	if (c->lifetime == 0)
		return bad(why, "queue lifetime is 0: every deferred message would bounce at once");
	if (c->lifetime > RETRY_LIFETIME_MAX)
		return bad(why, "queue lifetime is over 90 days");
	if (c->n_intervals > RETRY_MAX_INTERVALS)
		return bad(why, "more than 16 retry intervals");
	if (c->n_intervals) {
		if (c->first_interval || c->factor_pct || c->max_interval)
			return bad(why,
				   "both a list of retry intervals and an exponential rule given");
		for (unsigned i = 0; i < c->n_intervals; i++) {
			if (c->intervals[i] == 0)
				return bad(why, "a retry interval is 0");
			if (i && c->intervals[i] < c->intervals[i - 1])
				return bad(why, "retry intervals must not get shorter");
		}
		if (c->intervals[0] >= c->lifetime)
			return bad(why, "the first retry interval is not shorter than the queue "
					"lifetime: messages would bounce without a retry");
		if (c->intervals[c->n_intervals - 1] > c->lifetime)
			return bad(why, "a retry interval is longer than the queue lifetime");
	} else {
		if (c->first_interval == 0)
			return bad(why,
				   "no retry schedule: the first interval is 0 and no list given");
		if (c->factor_pct < RETRY_FACTOR_MIN || c->factor_pct > RETRY_FACTOR_MAX)
			return bad(why, "backoff factor out of range 1.0 to 10.0");
		if (c->max_interval < c->first_interval)
			return bad(why, "maximum retry interval is below the first interval");
		if (c->first_interval >= c->lifetime)
			return bad(why, "the first retry interval is not shorter than the queue "
					"lifetime: messages would bounce without a retry");
		if (c->max_interval > c->lifetime)
			return bad(why, "maximum retry interval is longer than the queue lifetime");
	}
	if (c->delay_warning && c->delay_warning >= c->lifetime)
		return bad(why, "delay warning time is not before the queue lifetime ends");
	if (c->jitter_pct > RETRY_JITTER_MAX)
		return bad(why, "retry jitter is over 50 %");
	return 0;
}

uint32_t retry_interval(const struct retry_config *c, unsigned failures)
{
	if (failures == 0)
		return 0;
	if (c->n_intervals)
		return c->intervals[(failures < c->n_intervals ? failures : c->n_intervals) - 1];

	uint64_t v = c->first_interval;
	if (v >= c->max_interval || c->factor_pct <= 100)
		return v < c->max_interval ? (uint32_t)v : c->max_interval;
	/*
	 * Rounding up makes every step grow by at least one second, so the
	 * loop reaches the cap within max_interval steps even at a factor of
	 * 1.01, and within a few dozen at usual factors.
	 */
	for (unsigned i = 1; i < failures; i++) {
		v = (v * c->factor_pct + 99) / 100;
		if (v >= c->max_interval)
			return c->max_interval;
	}
	return (uint32_t)v;
}

uint32_t retry_interval_jittered(const struct retry_config *c, unsigned failures, uint32_t rnd)
{
	uint64_t base = retry_interval(c, failures);
	uint64_t spread = base * c->jitter_pct / 100;
	/* Multiply-shift maps RND onto [0, 2*spread] without a modulo's bias at the top. */
	uint64_t off = ((uint64_t)rnd * (2 * spread + 1)) >> 32;
	return (uint32_t)(base - spread + off);
}

static int64_t add_sat(int64_t a, int64_t b)
{
	int64_t r;
	if (__builtin_add_overflow(a, b, &r))
		return b > 0 ? INT64_MAX : INT64_MIN;
	return r;
}

int64_t retry_expiry_time(const struct retry_config *c, int64_t arrival)
{
	return add_sat(arrival, c->lifetime);
}

bool retry_expired(const struct retry_config *c, int64_t arrival, int64_t now)
{
	return now >= retry_expiry_time(c, arrival);
}

enum retry_verdict retry_after_failure(const struct retry_config *c, int64_t arrival, int64_t now,
				       unsigned failures, uint32_t rnd, int64_t *next)
{
	int64_t expiry = retry_expiry_time(c, arrival);
	if (now >= expiry)
		return RETRY_EXPIRED;
	int64_t t = add_sat(now, retry_interval_jittered(c, failures ? failures : 1, rnd));
	*next = t < expiry ? t : expiry;
	return RETRY_DEFER;
}

int64_t retry_warning_time(const struct retry_config *c, int64_t arrival)
{
	if (c->delay_warning == 0)
		return INT64_MAX;
	return add_sat(arrival, c->delay_warning);
}

bool retry_warning_due(const struct retry_config *c, int64_t arrival, int64_t now, bool sent)
{
	return !sent && c->delay_warning && now >= retry_warning_time(c, arrival) &&
	       !retry_expired(c, arrival, now);
}
