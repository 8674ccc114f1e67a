/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Per-client-address limits shared by every worker (policy.client_limits):
 * concurrent connections, a token bucket for new connections and one for
 * messages. RSS spreads one client's connections over all workers, so the
 * count must be shared; this is the only table that is. It is touched once
 * per connection and once per MAIL, never per packet: each bucket of slots
 * has its own spinlock, held for a few dozen instructions.
 *
 * The table has a fixed size. An address is looked up in one bucket of
 * CLIENT_WAYS slots chosen by a keyed hash; a new address takes a free slot
 * or, among those without live connections and not locked out for failed
 * AUTHs, the one with the fewest failures, then the least recently seen. A
 * lockout is never evicted for a newcomer, so cycling source addresses
 * cannot lift one. When no slot of its bucket may be taken the client is
 * let through untracked (the table counts it, client_table_full(), and so
 * does the caller): a full table must not lock strangers out -- the price
 * is that an untracked address's AUTH failures are not counted until a
 * slot frees up (a lockout ends, a connection closes).
 */
#ifndef MX_POLICY_CLIENTS_H
#define MX_POLICY_CLIENTS_H

#include <stdbool.h>
#include <stdint.h>

#include "control/config/config.h"

#define CLIENT_WAYS 4

struct client_table;

enum client_verdict {
	CLIENT_OK = 0,	       /* counted: call client_disconnect() when it ends */
	CLIENT_UNTRACKED,      /* let through, but no slot was free: nothing to undo */
	CLIENT_TOO_MANY_CONNS, /* 421 4.7.0: over limits.connections */
	CLIENT_CONN_RATE,      /* 421 4.7.0: over connection_rate */
	CLIENT_MSG_RATE,       /* 421 4.7.0: over message_rate */
};

/*
 * A table for LIM (copied; table_size slots, a power of two) whose hash is
 * keyed by SEED. NULL when out of memory.
 */
struct client_table *client_table_new(const struct cfg_client_limits *lim, uint64_t seed);
void client_table_free(struct client_table *t);

/*
 * A new connection from ADDR (IPv4, network order) at NOW_MS: CLIENT_OK (the
 * connection is counted), CLIENT_UNTRACKED, or a refusal, which changes
 * nothing but the rate bucket's refill. Any thread.
 */
enum client_verdict client_connect(struct client_table *t, uint32_t addr, uint64_t now_ms);

/*
 * client_connect() and client_message() under limits LIM instead of the
 * table's own: the rates and counts of a reloaded config (its table_size
 * stays the table's). LIM must outlive the call only.
 */
enum client_verdict client_connect_lim(struct client_table *t, const struct cfg_client_limits *lim,
				       uint32_t addr, uint64_t now_ms);
enum client_verdict client_message_lim(struct client_table *t, const struct cfg_client_limits *lim,
				       uint32_t addr, uint64_t now_ms);

/* A connection counted by client_connect() (CLIENT_OK) has ended. */
void client_disconnect(struct client_table *t, uint32_t addr);

/* A new message (MAIL) from ADDR: CLIENT_OK or CLIENT_MSG_RATE. */
enum client_verdict client_message(struct client_table *t, uint32_t addr, uint64_t now_ms);

/*
 * Failed AUTH attempts (auth.max_failures, auth.lockout_s): a client with MAX
 * failures within LOCKOUT_MS of its first is locked out until LOCKOUT_MS
 * after the last one. client_auth_failed() counts one and returns true when
 * that locks ADDR out; client_auth_locked() says whether it still is. A
 * full bucket leaves a client untracked (never locked), as for connections.
 */
bool client_auth_failed(struct client_table *t, uint32_t addr, uint64_t now_ms, unsigned max,
			uint64_t lockout_ms);

enum client_auth_result {
	CLIENT_AUTH_COUNTED,   /* the failure was counted; not (yet) locked out */
	CLIENT_AUTH_LOCKED,    /* that failure locked ADDR out */
	CLIENT_AUTH_UNTRACKED, /* no slot could be taken: not counted, not locked */
};

/* client_auth_failed() saying whether the failure was counted at all. */
enum client_auth_result client_auth_fail(struct client_table *t, uint32_t addr, uint64_t now_ms,
					 unsigned max, uint64_t lockout_ms);
bool client_auth_locked(struct client_table *t, uint32_t addr, uint64_t now_ms);

/* Newcomers left untracked since the start because their bucket had no slot to give. */
uint64_t client_table_full(const struct client_table *t);

/* ADDR's live connections as counted (0 when not in the table): for telemetry and tests. */
unsigned client_connections(struct client_table *t, uint32_t addr);

#endif
