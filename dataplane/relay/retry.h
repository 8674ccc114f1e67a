/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The relay's retry schedule, pure: when a deferred message is tried again,
 * when it has been queued too long and bounces, and when its sender is owed
 * a delay warning. No state and no clock of its own: the spool keeps each
 * message's arrival time and failed-attempt count, and the caller passes in
 * the wall clock (unix seconds) and, for jitter, a random value.
 *
 * Two kinds of schedule:
 *   exponential  first_interval, then each interval factor_pct/100 times the
 *                one before, never more than max_interval (Postfix:
 *                minimal_backoff_time 300 s, maximal_backoff_time 4000 s);
 *   explicit     intervals[0..n_intervals), the last one repeating.
 * Jitter spreads each interval over +-jitter_pct % so that many messages
 * deferred by one outage do not come back in lockstep.
 *
 * A message expires queue lifetime seconds after its arrival (RFC 5321
 * §4.5.4.1: give up after at least 4-5 days). It then bounces: a "failed"
 * DSN with status 4.4.7 (RFC 3463 §3.5 "Delivery time expired"; a 4.X.X
 * status with Action: failed is the "persistent transient failure" of RFC
 * 3464 §2.3.3). No retry is scheduled past the expiry: the last one falls
 * on the expiry itself, so a message bounces at its lifetime, not up to
 * max_interval later.
 */
#ifndef MX_RELAY_RETRY_H
#define MX_RELAY_RETRY_H

#include <stdbool.h>
#include <stdint.h>

#define RETRY_MAX_INTERVALS 16		   /* entries of an explicit schedule */
#define RETRY_LIFETIME_MAX  (90u * 86400u) /* queue lifetime at most 90 days */
#define RETRY_FACTOR_MIN    100u	   /* factor_pct: 1.0 (a constant interval) ... */
#define RETRY_FACTOR_MAX    1000u	   /* ... to 10.0 */
#define RETRY_JITTER_MAX    50u		   /* jitter_pct at most +-50 % */

/* The status and text of an expired message's bounce (RFC 3463 §3.5, X.4.7). */
#define RETRY_EXPIRED_STATUS "4.4.7"
#define RETRY_EXPIRED_TEXT   "delivery time expired"

/* Defaults (retry_config_default()), in seconds. */
#define RETRY_DEFAULT_FIRST	    300u	  /* 5 min, Postfix minimal_backoff_time */
#define RETRY_DEFAULT_FACTOR_PCT    200u	  /* doubling */
#define RETRY_DEFAULT_MAX	    4000u	  /* Postfix maximal_backoff_time */
#define RETRY_DEFAULT_LIFETIME	    (5u * 86400u) /* 5 days (RFC 5321 §4.5.4.1) */
#define RETRY_DEFAULT_DELAY_WARNING (4u * 3600u)  /* 4 h */
#define RETRY_DEFAULT_JITTER_PCT    10u

/*
 * A schedule. Immutable while in use (config snapshots). All-zero is not a
 * valid schedule (no lifetime): start from retry_config_default().
 */
struct retry_config {
	/* explicit schedule: n_intervals > 0 selects it (and first_interval must be 0) */
	unsigned n_intervals;
	uint32_t intervals[RETRY_MAX_INTERVALS]; /* seconds, non-decreasing */
	/* exponential schedule: used when n_intervals is 0 */
	uint32_t first_interval; /* seconds after the first failure */
	uint32_t factor_pct;	 /* growth per failure in percent: 200 doubles */
	uint32_t max_interval;	 /* cap, seconds */
	uint32_t lifetime;	 /* seconds from arrival to the bounce */
	uint32_t delay_warning;	 /* seconds from arrival to the one delay DSN; 0: never */
	uint32_t jitter_pct;	 /* each interval spread over +-this % */
};

/* Fills C with the RETRY_DEFAULT_* exponential schedule. */
void retry_config_default(struct retry_config *c);

/*
 * Checks C. Returns 0, or -EINVAL with *WHY (when WHY is not NULL) set to a
 * static sentence naming the problem: no lifetime, zero intervals, both or
 * neither kind of schedule, a factor below 1.0, a cap below the first
 * interval, intervals that shrink or exceed the lifetime, a lifetime shorter
 * than the first interval (messages would bounce untried), a delay warning
 * not before the expiry, too much jitter.
 */
int retry_config_validate(const struct retry_config *c, const char **why);

/*
 * Seconds to wait after the FAILURES-th failed attempt (1 for the first),
 * before jitter and before the expiry clamp. 0 when FAILURES is 0 (nothing
 * failed yet: try now). C must be valid.
 */
uint32_t retry_interval(const struct retry_config *c, unsigned failures);

/*
 * retry_interval() spread by jitter: a value in [i - s, i + s] where
 * s = i * jitter_pct / 100 (rounded down), chosen by RND uniformly over the
 * 32-bit range (RND 0 gives the lowest, UINT32_MAX the highest). Never 0
 * when FAILURES > 0.
 */
uint32_t retry_interval_jittered(const struct retry_config *c, unsigned failures, uint32_t rnd);

/* ARRIVAL + lifetime: the moment the message expires (saturated, never overflows). */
int64_t retry_expiry_time(const struct retry_config *c, int64_t arrival);

/* True when a message that arrived at ARRIVAL has expired at NOW (NOW >= the expiry time). */
bool retry_expired(const struct retry_config *c, int64_t arrival, int64_t now);

enum retry_verdict {
	RETRY_DEFER = 0, /* try again at *NEXT */
	RETRY_EXPIRED,	 /* lifetime over: bounce, RETRY_EXPIRED_STATUS, Action: failed */
};

/*
 * A delivery attempt of a message that arrived at ARRIVAL failed
 * temporarily at NOW; it was the FAILURES-th failure (0 is taken as 1). Returns
 * RETRY_EXPIRED when the lifetime is over at NOW, or RETRY_DEFER with *NEXT
 * = NOW + the jittered interval, clamped to the expiry time (the final
 * attempt happens when the lifetime ends). *NEXT is untouched on
 * RETRY_EXPIRED. C must be valid.
 */
enum retry_verdict retry_after_failure(const struct retry_config *c, int64_t arrival, int64_t now,
				       unsigned failures, uint32_t rnd, int64_t *next);

/* When the delay warning falls due: ARRIVAL + delay_warning, or INT64_MAX when it never does. */
int64_t retry_warning_time(const struct retry_config *c, int64_t arrival);

/*
 * True when the one delay warning (a "delayed" DSN, RFC 3464 §2.3.3) is due
 * at NOW for a message that arrived at ARRIVAL: warnings are on, none was
 * SENT yet, the warning time has come and the message has not expired (an
 * expired message gets its bounce instead).
 */
bool retry_warning_due(const struct retry_config *c, int64_t arrival, int64_t now, bool sent);

#endif
