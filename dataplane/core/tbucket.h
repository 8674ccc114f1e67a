/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Token bucket on the TSC clock, for rate limits on the fast path
 * (ICMP replies and errors). Per worker, so no atomics.
 */
#ifndef MX_CORE_TBUCKET_H
#define MX_CORE_TBUCKET_H

#include <stdbool.h>
#include <stdint.h>

struct tbucket {
	uint64_t tokens; /* in units of 1/hz of a token: avoids division on the fast path */
	uint64_t last;   /* TSC of the last refill */
	uint64_t rate;   /* tokens per second; 0 means unlimited */
	uint64_t burst;  /* bucket depth in tokens */
	uint64_t hz;     /* TSC ticks per second */
};

/* Starts full. rate 0 disables the limit. */
static inline void tbucket_init(struct tbucket *b, uint64_t rate, uint64_t burst, uint64_t hz,
				uint64_t now)
{
	b->rate = rate;
	b->burst = burst ? burst : 1;
	b->hz = hz;
	b->tokens = b->burst * hz;
	b->last = now;
}

/* Takes one token if there is one: returns true when the action may proceed. */
static inline bool tbucket_take(struct tbucket *b, uint64_t now)
{
	if (b->rate == 0)
		return true;
	uint64_t cap = b->burst * b->hz;
	if (now > b->last) {
		uint64_t add = (now - b->last) * b->rate;
		b->tokens = (add >= cap - b->tokens) ? cap : b->tokens + add;
		b->last = now;
	}
	if (b->tokens < b->hz)
		return false;
	b->tokens -= b->hz;
	return true;
}

#endif
