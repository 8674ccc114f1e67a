/* SPDX-License-Identifier: BSD-3-Clause */
/* Hashed timer wheel; see timer.h. */
#include "timer.h"

#include <string.h>

void timer_wheel_init(struct timer_wheel *w, uint64_t hz, unsigned tick_us, uint64_t now)
{
	memset(w, 0, sizeof(*w));
	w->hz = hz;
	w->tick = hz / 1000000 * tick_us;
	if (w->tick == 0)
		w->tick = 1;
	w->now = now / w->tick;
}

static void unlink_timer(struct timer_wheel *w, struct timer *t)
{
	*t->pprev = t->next;
	if (t->next)
		t->next->pprev = t->pprev;
	t->next = NULL;
	t->pprev = NULL;
	w->armed--;
}

static void link_timer(struct timer_wheel *w, struct timer *t, uint64_t expire)
{
	struct timer **head = &w->slot[expire & (TIMER_SLOTS - 1)];

	t->expire = expire;
	t->next = *head;
	if (*head)
		(*head)->pprev = &t->next;
	*head = t;
	t->pprev = head;
	w->armed++;
}

void timer_arm_at(struct timer_wheel *w, struct timer *t, uint64_t at)
{
	uint64_t expire = (at + w->tick - 1) / w->tick;

	if (timer_armed(t))
		unlink_timer(w, t);
	if (expire <= w->now)
		expire = w->now + 1;
	link_timer(w, t, expire);
}

void timer_arm_ms(struct timer_wheel *w, struct timer *t, uint64_t now, uint64_t delay_ms)
{
	timer_arm_at(w, t, now + delay_ms * (w->hz / 1000));
}

void timer_cancel(struct timer_wheel *w, struct timer *t)
{
	if (timer_armed(t))
		unlink_timer(w, t);
}

/*
 * Fires the due timers of one slot. Due timers are first moved to a private
 * list, so a callback that arms a timer into this same slot (for a later
 * turn) or cancels a neighbour never disturbs the walk.
 */
static unsigned run_slot(struct timer_wheel *w, uint64_t tick)
{
	struct timer *due = NULL, **tail = &due, *t, *next;
	unsigned fired = 0;

	for (t = w->slot[tick & (TIMER_SLOTS - 1)]; t; t = next) {
		next = t->next;
		if (t->expire > tick)
			continue; /* a later turn */
		unlink_timer(w, t);
		w->armed++; /* still counted until it fires or is cancelled */
		t->pprev = tail;
		*tail = t;
		tail = &t->next;
	}
	while (due) {
		t = due;
		unlink_timer(w, t); /* advances due: t->pprev is &due */
		t->fn(t, t->arg);
		fired++;
	}
	return fired;
}

unsigned timer_wheel_run(struct timer_wheel *w, uint64_t now)
{
	uint64_t target = now / w->tick;
	unsigned fired = 0;

	while (w->now < target) {
		if (w->armed == 0) {
			w->now = target;
			break;
		}
		w->now++;
		fired += run_slot(w, w->now);
	}
	return fired;
}
