/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The relay of one worker (DESIGN.md §3.5-3.6): delivers what its spool
 * shard holds to the next hops of the config's routes, over connections it
 * opens from this worker (source ports whose replies come back here), kept
 * in a pool per next hop; records each recipient's outcome in the spool;
 * retries deferrals with backoff; bounces failures and expired messages
 * with an RFC 3464 DSN (itself spooled and delivered like any message).
 * Everything runs on the owning worker; nothing blocks between relay_new()
 * and relay_free(). The engine itself is relay_sched.h (no DPDK); this is
 * its binding to a worker's TCP stack and spool shard.
 */
#ifndef MX_RELAY_H
#define MX_RELAY_H

#include <stdbool.h>
#include <stdint.h>

#include "dataplane/core/dp.h"
#include "dataplane/relay/relay_counters.h"
#include "dataplane/smtp/client.h"
#include "dataplane/tls/tls_counters.h"

struct relay;
struct spool_shard;
struct spool_msg;

/*
 * Makes worker W's relay from W's config (cfg->routes, cfg->relay, and
 * cfg->spool.max_messages for the overflow list). Runs on the main lcore
 * after W's TCP stack and network context exist and before W's spool
 * shard opens (its recovery submits to the relay); may allocate and
 * block. Returns NULL with errno on failure (EINVAL: a config the engine
 * cannot use, ENOMEM).
 */
struct relay *relay_new(struct dp_worker *w);

/*
 * Where R finds the client TLS context of a config snapshot it moves to
 * (STARTTLS to next hops, tls.*): FN(S, W's id) returns the context made
 * with snapshot S (on the main lcore, never on the worker: loading a CA
 * bundle takes milliseconds), which lives as long as S; NULL keeps the one
 * in use. Without FN, R keeps the context relay_new() made. Connections in
 * flight keep the context they began with (OpenSSL counts its users).
 */
struct dp_snap;
struct tls_ctx;
typedef struct tls_ctx *(*relay_snap_tls_fn)(const struct dp_snap *s, unsigned worker);
void relay_set_snap_tls(struct relay *r, relay_snap_tls_fn fn);

/*
 * Tears down R: pooled and active connections are aborted (their messages
 * stay in the spool as they are and are retried after a restart), reads in
 * flight are waited for (spool_poll() until the shard is idle: other
 * modules' spool callbacks run too), DSNs being committed are detached
 * (spool_detach(): written all the same, requeued at the next start).
 * Call on the main lcore after W's loop stopped, before W's TCP stack and
 * spool shard go away. NULL is fine.
 */
void relay_free(struct relay *r);

/*
 * M, in shard SH, is durable and has recipients to deliver: just committed
 * (the client got its 250), or found by recovery at start (the spool's
 * requeue callback). The relay owns the delivery from here until
 * spool_state() has made every recipient final. Never fails: past
 * queue_max the message waits as a bare pointer in a list bounded by the
 * spool's max_messages (relay_congested() is true then), and past that it
 * stays in the spool for the next start (counted). The first call fixes
 * the shard the relay reads from and spools its DSNs to.
 */
void relay_submit(struct relay *r, struct spool_shard *sh, struct spool_msg *m);

/*
 * Per loop iteration, after timer_wheel_run() and spool_poll(): starts due
 * retries and reads, retries output and state records that found no
 * buffers. Returns a count of work done (0: idle). NOW_TSC is unused (the
 * relay reads the TSC itself, as its timer callbacks must).
 */
unsigned relay_poll(struct relay *r, uint64_t now_tsc);

/* R's delivery engine, for the operator's queue commands (relay_admin.h). */
struct relay_sched *relay_engine(struct relay *r);

/* R's TLS counters (STARTTLS to next hops); the worker's telemetry adds the server's. */
const struct tls_stats *relay_tls_stats(const struct relay *r);

/* True while new transactions should be told 451 4.3.2 (the outbound queue is at queue_max). */
bool relay_congested(const struct relay *r);

/* R's counters (RELAY_COUNTERS), written by W only; read them with relaxed loads. */
const struct relay_stats *relay_stats(const struct relay *r);
/* R's SMTP client engine counters (SMTP_CLIENT_COUNTERS). */
const struct smtp_client_stats *relay_client_stats(const struct relay *r);
/* The config's next hops, deduplicated, and each one's counters (NULL past the end). */
unsigned relay_n_hops(const struct relay *r);
const struct relay_hop_stats *relay_hop_stats(const struct relay *r, unsigned i);

#endif
