/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * One timer wheel per worker, shared by TCP (retransmission, delayed ACK,
 * keepalive, TIME_WAIT) and SMTP (RFC 5321 §4.5.3.2 timeouts). A hashed wheel
 * of TIMER_SLOTS slots; a timer further out than one turn waits its turns in
 * its slot. Timers are intrusive (embedded in their owner): arming never
 * allocates, and cancelling is O(1). Single-threaded: only the owning worker
 * touches its wheel.
 */
#ifndef MX_CORE_TIMER_H
#define MX_CORE_TIMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TIMER_SLOTS 4096 /* power of two */

struct timer;
typedef void (*timer_fn)(struct timer *t, void *arg);

/* All-zero is a valid, unarmed timer. */
struct timer {
	struct timer *next;
	struct timer **pprev; /* NULL when not armed */
	uint64_t expire;      /* in ticks */
	timer_fn fn;
	void *arg;
};

struct timer_wheel {
	uint64_t hz;         /* clock units per second (TSC hz, or 1e6 for a virtual µs clock) */
	uint64_t tick;       /* clock units per tick */
	uint64_t now;        /* last tick processed */
	unsigned armed;      /* timers currently armed */
	struct timer *slot[TIMER_SLOTS];
};

/* Prepares W with a tick of tick_us microseconds, starting at clock value NOW. */
void timer_wheel_init(struct timer_wheel *w, uint64_t hz, unsigned tick_us, uint64_t now);

/* Sets what t calls when it fires. */
static inline void timer_init(struct timer *t, timer_fn fn, void *arg)
{
	t->next = NULL;
	t->pprev = NULL;
	t->fn = fn;
	t->arg = arg;
}

static inline bool timer_armed(const struct timer *t)
{
	return t->pprev != NULL;
}

/*
 * Arms t to fire at clock value AT (rounded up to a tick; never earlier than
 * the next tick). Re-arming an armed timer moves it.
 */
void timer_arm_at(struct timer_wheel *w, struct timer *t, uint64_t at);

/* Arms t to fire DELAY_MS milliseconds after clock value NOW. */
void timer_arm_ms(struct timer_wheel *w, struct timer *t, uint64_t now, uint64_t delay_ms);

/* Disarms t; a no-op when it is not armed. */
void timer_cancel(struct timer_wheel *w, struct timer *t);

/*
 * Fires every timer due at or before clock value NOW, in expiry-tick order.
 * A callback may re-arm or cancel any timer, including its own. Returns how
 * many fired.
 */
unsigned timer_wheel_run(struct timer_wheel *w, uint64_t now);

#endif
