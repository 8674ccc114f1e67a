/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The bookkeeping of one next hop's connection pool on one worker, shared by
 * the store-mode relay (relay_sched.c) and cut-through (smtpd/ct_pool.c):
 * idle connections kept LIFO (the most recently used goes out first, so the
 * surplus ones reach their idle timeout and close), how many are open and
 * idle, and the two limits of the relay: section -- connections per hop and
 * transactions per connection (Postfix's smtp_connection_cache_* and
 * smtp_connection_reuse_count_limit). No I/O, no timers, no allocation: the
 * owner embeds a struct hop_pool_conn in its connection and keeps the rest.
 */
#ifndef MX_RELAY_HOP_POOL_H
#define MX_RELAY_HOP_POOL_H

#include <stdbool.h>
#include <sys/queue.h>

/* One connection as the pool knows it; all-zero is a connection not counted yet. */
struct hop_pool_conn {
	TAILQ_ENTRY(hop_pool_conn) idle_link;
	unsigned txs;  /* transactions begun on it */
	unsigned owed; /* replies due to commands sent, not read yet: never idle while > 0 */
	bool open;     /* counted in nopen */
	bool idle;     /* on the idle list */
};

TAILQ_HEAD(hop_pool_idle, hop_pool_conn);

/* One next hop's pool. hop_pool_init() before use. */
struct hop_pool {
	struct hop_pool_idle idle; /* LIFO */
	unsigned nopen;		   /* counted connections, idle ones too */
	unsigned nidle;
};

static inline void hop_pool_init(struct hop_pool *p)
{
	TAILQ_INIT(&p->idle);
	p->nopen = p->nidle = 0;
}

/* True while a new connection stays within CAP (connections per hop). */
static inline bool hop_pool_may_open(const struct hop_pool *p, unsigned cap)
{
	return p->nopen < cap;
}

/* C (zeroed by the caller) is a new connection of P. */
static inline void hop_pool_opened(struct hop_pool *p, struct hop_pool_conn *c)
{
	c->open = true;
	c->idle = false;
	c->txs = 0;
	c->owed = 0;
	p->nopen++;
}

/* N commands were sent on C: N more replies are due before it may wait idle. */
static inline void hop_pool_sent(struct hop_pool_conn *c, unsigned n)
{
	c->owed += n;
}

/* A reply due on C was read. Returns false when none was due: the peer's, not ours. */
static inline bool hop_pool_replied(struct hop_pool_conn *c)
{
	if (c->owed == 0)
		return false;
	c->owed--;
	return true;
}

/* A transaction begins on C. */
static inline void hop_pool_began(struct hop_pool_conn *c)
{
	c->txs++;
}

/* C has carried MAX transactions (messages per connection): it must QUIT, not be kept. */
static inline bool hop_pool_worn(const struct hop_pool_conn *c, unsigned max)
{
	return c->txs >= max;
}

/*
 * C waits for its next transaction (head of the list: LIFO). Returns false,
 * and C stays off the list, while it owes replies: one read late would be
 * taken for the next transaction's (RFC 2920 §3.1: replies in command
 * order); the owner reads them first, or closes C.
 */
static inline bool hop_pool_put(struct hop_pool *p, struct hop_pool_conn *c)
{
	if (c->owed > 0)
		return false;
	if (c->idle)
		return true;
	c->idle = true;
	TAILQ_INSERT_HEAD(&p->idle, c, idle_link);
	p->nidle++;
	return true;
}

/* C leaves the idle list (taken, or closing). */
static inline void hop_pool_unidle(struct hop_pool *p, struct hop_pool_conn *c)
{
	if (!c->idle)
		return;
	c->idle = false;
	TAILQ_REMOVE(&p->idle, c, idle_link);
	p->nidle--;
}

/* The most recently used idle connection, off the list; NULL when none is idle. */
static inline struct hop_pool_conn *hop_pool_take(struct hop_pool *p)
{
	struct hop_pool_conn *c = TAILQ_FIRST(&p->idle);

	if (c != NULL)
		hop_pool_unidle(p, c);
	return c;
}

/* C is gone (closed, failed): no longer counted. Idempotent. */
static inline void hop_pool_closed(struct hop_pool *p, struct hop_pool_conn *c)
{
	hop_pool_unidle(p, c);
	if (c->open) {
		c->open = false;
		p->nopen--;
	}
}

#endif
