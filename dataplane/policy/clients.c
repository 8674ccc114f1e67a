/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The shared per-client table (clients.h). Token buckets count in units of
 * 1/60000 of a token so a per-minute rate refills by `rate` units per
 * millisecond, without division.
 */
#include "dataplane/policy/clients.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

#define UNIT 60000u /* bucket units per token: ms per minute */

struct bucket_state {
	uint64_t units; /* tokens * UNIT */
	uint64_t last;	/* ms of the last refill */
};

struct slot {
	uint32_t addr;
	uint32_t conns;
	bool used;
	uint64_t seen; /* ms of the last event, for eviction */
	struct bucket_state conn, msg;
	uint32_t auth_fails;   /* failed AUTHs since auth_since */
	uint64_t auth_since;   /* ms of the first of them */
	uint64_t locked_until; /* ms; 0: not locked out */
};

struct bucket {
	uint32_t lock;
	struct slot s[CLIENT_WAYS];
} __attribute__((aligned(64)));

struct client_table {
	struct cfg_client_limits lim;
	uint64_t seed;
	uint32_t mask; /* buckets - 1 */
	struct bucket *b;
	uint64_t full; /* newcomers left untracked: no slot could be taken (atomic) */
};

static void lock(struct bucket *b)
{
	while (__atomic_exchange_n(&b->lock, 1, __ATOMIC_ACQUIRE) != 0)
		while (__atomic_load_n(&b->lock, __ATOMIC_RELAXED) != 0)
			cpu_relax();
}

static void unlock(struct bucket *b)
{
	__atomic_store_n(&b->lock, 0, __ATOMIC_RELEASE);
}

/* Multiply-xorshift keyed by a random seed: a client cannot aim at a bucket it cannot name. */
static struct bucket *bucket_of(const struct client_table *t, uint32_t addr)
{
	uint64_t h = ((uint64_t)addr ^ t->seed) * 0x9e3779b97f4a7c15ull;

	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 32;
	return &t->b[h & t->mask];
}

struct client_table *client_table_new(const struct cfg_client_limits *lim, uint64_t seed)
{
	struct client_table *t = calloc(1, sizeof(*t));
	uint32_t buckets = lim->table_size / CLIENT_WAYS;

	if (t == NULL)
		return NULL;
	if (buckets == 0)
		buckets = 1;
	t->lim = *lim;
	t->seed = seed;
	t->mask = buckets - 1;
	t->b = aligned_alloc(64, (size_t)buckets * sizeof(*t->b));
	if (t->b == NULL) {
		free(t);
		return NULL;
	}
	memset(t->b, 0, (size_t)buckets * sizeof(*t->b));
	return t;
}

void client_table_free(struct client_table *t)
{
	if (t == NULL)
		return;
	free(t->b);
	free(t);
}

/* A bucket that starts full: BURST tokens. */
static void tb_init(struct bucket_state *s, unsigned burst, uint64_t now)
{
	s->units = (uint64_t)burst * UNIT;
	s->last = now;
}

/* Refills at RATE tokens a minute up to BURST, then takes a token if there is one. */
static bool tb_take(struct bucket_state *s, unsigned rate, unsigned burst, uint64_t now)
{
	uint64_t cap = (uint64_t)burst * UNIT;

	if (s->units > cap) /* the burst was lowered by a reload */
		s->units = cap;
	if (now > s->last) {
		uint64_t add = (now - s->last) * rate;

		s->units = add >= cap - s->units ? cap : s->units + add;
		s->last = now;
	}
	if (s->units < UNIT)
		return false;
	s->units -= UNIT;
	return true;
}

static void slot_reset(const struct cfg_client_limits *lim, struct slot *s, uint32_t addr,
		       uint64_t now)
{
	memset(s, 0, sizeof(*s));
	s->used = true;
	s->addr = addr;
	s->seen = now;
	tb_init(&s->conn, lim->connection_burst, now);
	tb_init(&s->msg, lim->message_burst, now);
}

static struct slot *find(struct bucket *b, uint32_t addr)
{
	for (unsigned i = 0; i < CLIENT_WAYS; i++)
		if (b->s[i].used && b->s[i].addr == addr)
			return &b->s[i];
	return NULL;
}

/* C is a better slot to give a newcomer than V: fewer AUTH failures, then older. */
static bool cheaper(const struct slot *c, const struct slot *v)
{
	if (v == NULL)
		return true;
	if (c->auth_fails != v->auth_fails)
		return c->auth_fails < v->auth_fails;
	return c->seen < v->seen;
}

/*
 * ADDR's slot, or a new one: a free slot, else, among those without live
 * connections and not locked out, the one with the fewest AUTH failures
 * (then the least recently seen). A lockout is never given up for a
 * newcomer, or an attacker cycling through source addresses that share a
 * bucket would free itself (or another's) by pushing the entry out. NULL
 * when no slot may be taken: the newcomer goes untracked (and is counted).
 */
static struct slot *find_or_take(struct client_table *t, const struct cfg_client_limits *lim,
				 struct bucket *b, uint32_t addr, uint64_t now)
{
	struct slot *s = find(b, addr), *victim = NULL;

	if (s != NULL)
		return s;
	for (unsigned i = 0; i < CLIENT_WAYS; i++) {
		struct slot *c = &b->s[i];

		if (!c->used) {
			victim = c;
			break;
		}
		if (c->conns == 0 && c->locked_until <= now && cheaper(c, victim))
			victim = c;
	}
	if (victim == NULL) {
		__atomic_fetch_add(&t->full, 1, __ATOMIC_RELAXED);
		return NULL;
	}
	slot_reset(lim, victim, addr, now);
	return victim;
}

uint64_t client_table_full(const struct client_table *t)
{
	return __atomic_load_n(&t->full, __ATOMIC_RELAXED);
}

enum client_verdict client_connect(struct client_table *t, uint32_t addr, uint64_t now_ms)
{
	return client_connect_lim(t, &t->lim, addr, now_ms);
}

enum client_verdict client_connect_lim(struct client_table *t, const struct cfg_client_limits *lim,
				       uint32_t addr, uint64_t now_ms)
{
	struct bucket *b = bucket_of(t, addr);
	enum client_verdict v = CLIENT_OK;

	lock(b);
	struct slot *s = find_or_take(t, lim, b, addr, now_ms);
	if (s == NULL) {
		v = CLIENT_UNTRACKED;
		goto out;
	}
	s->seen = now_ms;
	if (lim->connections != 0 && s->conns >= lim->connections) {
		v = CLIENT_TOO_MANY_CONNS;
		goto out;
	}
	if (lim->connection_rate != 0 &&
	    !tb_take(&s->conn, lim->connection_rate, lim->connection_burst, now_ms)) {
		v = CLIENT_CONN_RATE;
		goto out;
	}
	s->conns++;
out:
	unlock(b);
	return v;
}

void client_disconnect(struct client_table *t, uint32_t addr)
{
	struct bucket *b = bucket_of(t, addr);

	lock(b);
	struct slot *s = find(b, addr);
	/* a counted connection pins its slot (conns > 0), so it is there */
	if (s != NULL && s->conns > 0)
		s->conns--;
	unlock(b);
}

enum client_verdict client_message(struct client_table *t, uint32_t addr, uint64_t now_ms)
{
	return client_message_lim(t, &t->lim, addr, now_ms);
}

enum client_verdict client_message_lim(struct client_table *t, const struct cfg_client_limits *lim,
				       uint32_t addr, uint64_t now_ms)
{
	struct bucket *b = bucket_of(t, addr);
	enum client_verdict v = CLIENT_OK;

	if (lim->message_rate == 0)
		return CLIENT_OK;
	lock(b);
	struct slot *s = find_or_take(t, lim, b, addr, now_ms);
	if (s == NULL) {
		v = CLIENT_UNTRACKED;
		goto out;
	}
	s->seen = now_ms;
	if (!tb_take(&s->msg, lim->message_rate, lim->message_burst, now_ms))
		v = CLIENT_MSG_RATE;
out:
	unlock(b);
	return v;
}

bool client_auth_failed(struct client_table *t, uint32_t addr, uint64_t now_ms, unsigned max,
			uint64_t lockout_ms)
{
	return client_auth_fail(t, addr, now_ms, max, lockout_ms) == CLIENT_AUTH_LOCKED;
}

enum client_auth_result client_auth_fail(struct client_table *t, uint32_t addr, uint64_t now_ms,
					 unsigned max, uint64_t lockout_ms)
{
	struct bucket *b = bucket_of(t, addr);
	enum client_auth_result res = CLIENT_AUTH_COUNTED;

	lock(b);
	struct slot *s = find_or_take(t, &t->lim, b, addr, now_ms);
	if (s == NULL) {
		res = CLIENT_AUTH_UNTRACKED;
		goto out;
	}
	s->seen = now_ms;
	if (s->auth_fails == 0 || now_ms - s->auth_since > lockout_ms) {
		s->auth_fails = 0; /* the earlier ones are too old to count */
		s->auth_since = now_ms;
	}
	if (++s->auth_fails >= max) {
		s->locked_until = now_ms + lockout_ms;
		s->auth_fails = 0;
		res = CLIENT_AUTH_LOCKED;
	}
out:
	unlock(b);
	return res;
}

bool client_auth_locked(struct client_table *t, uint32_t addr, uint64_t now_ms)
{
	struct bucket *b = bucket_of(t, addr);
	bool locked = false;

	lock(b);
	struct slot *s = find(b, addr);
	if (s != NULL && s->locked_until > now_ms)
		locked = true;
	unlock(b);
	return locked;
}

unsigned client_connections(struct client_table *t, uint32_t addr)
{
	struct bucket *b = bucket_of(t, addr);
	unsigned n = 0;

	lock(b);
	struct slot *s = find(b, addr);
	if (s != NULL)
		n = s->conns;
	unlock(b);
	return n;
}
