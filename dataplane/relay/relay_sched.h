/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The relay's delivery engine, without a network or a disk of its own: the
 * queue of spooled messages, reading them back, grouping recipients by
 * route, per-next-hop connection pools driving the SMTP client engine,
 * failover between a route's hops, retries with backoff, queue lifetime,
 * bounces and delay warnings (RFC 3464 DSNs, spooled as new messages), the
 * event log and the counters. The transport (bytes to and from a next hop)
 * and the store (the spool) are the caller's, through two small operation
 * tables, so the whole engine runs in unit tests on a virtual clock with a
 * scripted next hop and an in-memory store; relay.c binds it to a worker's
 * TCP stack and spool shard.
 *
 * The life of a message:
 *   submit      tracked (queue_max of them, in memory) or, past that, kept
 *               as a bare pointer in a bounded overflow list (congested)
 *   ready       due now: waits for a read slot (max_loaded, load_budget)
 *   reading     store->read() in flight
 *   delivering  recipients not final grouped by route (route_lookup), one
 *               job per route and up to max_rcpts recipients; each job goes
 *               to its route's hops in route_order(), waiting for a pooled
 *               connection of the hop (or a new one under the cap)
 *   settling    outcomes written with store->state(); failures wait for
 *               their DSN to be spooled first
 *   deferred    recipients left: back to ready at the next attempt
 * A failure before a transaction begins -- connect refused or timed out,
 * a greeting or EHLO refused, the connection lost during the handshake --
 * marks the hop down for hop_down_s and moves the job to the route's next
 * hop; when none is left the job's recipients are deferred.
 * A hop that goes away mid-transaction -- the connection lost or timed out,
 * or a 421, after MAIL and before the end of data was given to the client
 * engine -- cannot have the message: the recipients it did not answer go
 * to the route's next hop that is up, in the same attempt (Postfix's
 * fallback); those it answered keep their outcome. After the end of data
 * the outcome is unknown (the hop may have queued the message and lost
 * only its reply): the recipients are deferred and no other hop is tried
 * in that attempt, so a retry may deliver a duplicate -- RFC 1047's
 * trade, a duplicate rather than a loss.
 *
 * Everything runs on the owning worker; nothing blocks except
 * relay_sched_free(), which may wait for the store's reads to finish.
 */
#ifndef MX_RELAY_SCHED_H
#define MX_RELAY_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "control/config/relay.h"
#include "control/config/routes.h"
#include "dataplane/core/timer.h"
#include "dataplane/relay/dsn.h"
#include "dataplane/relay/relay_counters.h"
#include "dataplane/relay/relay_log.h"
#include "dataplane/relay/retry.h"
#include "dataplane/smtp/client.h"
#include "dataplane/spool/spool.h"

struct relay_sched;
struct relay_conn; /* one connection to a next hop */

/*
 * The store: the worker's spool shard or a test's stand-in. ARG is the
 * table's arg. Calls come from the engine only; callbacks (read, commit)
 * must come later, never from inside the call that started them.
 */
struct relay_store_ops {
	const char *(*queue_id)(void *arg, const struct spool_msg *m);
	unsigned (*nrcpt)(void *arg, const struct spool_msg *m);
	bool (*rcpt_final)(void *arg, const struct spool_msg *m, unsigned rcpt);
	int64_t (*next_attempt)(void *arg, const struct spool_msg *m); /* unix s, 0: none */
	size_t (*record_size)(void *arg, const struct spool_msg *m);
	/* as spool_read(): 0, -EBUSY (try later), or another -errno */
	int (*read)(void *arg, struct spool_msg *m, void *buf, size_t cap, spool_read_cb cb,
		    void *cookie);
	/* as spool_state(): 0, -ENOBUFS (try later), -EINVAL */
	int (*state)(void *arg, struct spool_msg *m, unsigned rcpt, enum spool_rcpt_state st,
		     int64_t when, int64_t next_attempt, struct smtp_str reply);
	/*
	 * A new message (a DSN): spool_begin(ENV), append CONTENT[0..LEN),
	 * spool_commit(NOW_US, CB, COOKIE). Returns 0 with *TX (for detach),
	 * or the begin/append error (nothing is left begun then).
	 */
	int (*inject)(void *arg, const struct spool_env *env, const uint8_t *content, size_t len,
		      uint64_t now_us, spool_commit_cb cb, void *cookie, struct spool_tx **tx);
	/* Forgets the callback of an injected TX (spool_detach()): at free. */
	void (*detach)(void *arg, struct spool_tx *tx);
	/* Makes every read in flight complete (its callback runs) before returning: at free. */
	void (*drain)(void *arg);
};

/*
 * The transport. open() starts a connection for C to ADDR (network order)
 * :PORT (host order): 0, then relay_conn_connected() comes later; or
 * -errno at once. send() returns 0 when all of P[0..N) was taken, -EAGAIN
 * when none was (relay_conn_writable() follows), -ENOMEM when none was for
 * want of buffers (tried again at the next poll), another -errno when the
 * connection is broken (relay_conn_lost() follows or came). close() ends
 * C's transport (ABORT: at once, with a reset); no call for C comes after
 * it, and it is made exactly once per open() that returned 0. None of
 * them may call back into the engine.
 */
struct relay_transport_ops {
	int (*open)(void *arg, struct relay_conn *c, uint32_t addr, uint16_t port);
	int (*send)(void *arg, struct relay_conn *c, const uint8_t *p, size_t n);
	void (*close)(void *arg, struct relay_conn *c, bool abort);
	/*
	 * The next hop said 220 to STARTTLS: TLS starts on C, HOST as SNI and,
	 * with VERIFY, the name its certificate must carry (against tls.ca_file).
	 * 0, then relay_conn_tls_done() comes later; or -errno at once. From
	 * then on send() takes plaintext and input is plaintext. NULL: no TLS.
	 */
	int (*starttls)(void *arg, struct relay_conn *c, const char *host, bool verify);
};

struct relay_sched_config {
	const struct cfg_routes *routes; /* until relay_sched_set_routes() replaces it */
	const struct cfg_relay *relay;	 /* pools, timeouts, queue_max, client options */
	struct retry_config retry;	 /* valid (retry_config_validate()) */
	struct dsn_config dsn;		 /* hostname: the Reporting-MTA */
	const char *helo_name;		 /* EHLO argument; must outlive the engine */
	unsigned worker_id;		 /* for DSN queue ids and the log prefix */
	uint64_t qid_nonce;		 /* random per start: DSN queue ids */
	uint64_t seed;			 /* random per start: hop order, jitter, DSN boundaries */
	unsigned overflow_max;		 /* bare pointers kept past queue_max (the spool's max) */
	unsigned max_loaded;		 /* messages read back at once: 32 */
	size_t load_budget;		 /* octets of them: 64 MiB (one bigger message may load alone) */
	unsigned max_conns;		 /* connections of all hops together: 1024 */
	unsigned max_rcpts;		 /* recipients per transaction: 50 */
	unsigned hop_down_s;		 /* a hop that failed is skipped this long: 60 */
	unsigned max_dsn_pending;	 /* DSNs being spooled at once: 256 */
	unsigned log_per_sec;		 /* log lines per second: 1000 (0: unlimited) */
	relay_log_write_fn log_write;	 /* NULL: lines are only counted */
	void *log_arg;
	/* the clock: the wheel's (hz units); WALL0 is the unix time at clock value T0 */
	struct timer_wheel *wheel;
	uint64_t (*clock)(void *arg);
	void *clock_arg;
	uint64_t t0;
	int64_t wall0;
	const struct relay_store_ops *store;
	void *store_arg;
	const struct relay_transport_ops *transport;
	void *transport_arg;
};

/* Fills C's tunables with the defaults above; routes, relay, retry, dsn, clock and ops are the caller's. */
void relay_sched_config_default(struct relay_sched_config *c);

/* Builds the engine (allocates; call before the worker runs). Returns NULL with errno. */
struct relay_sched *relay_sched_new(const struct relay_sched_config *cfg);

/*
 * Aborts every connection (their recipients stay as the spool has them and
 * are retried at the next start), waits for reads in flight through
 * store->drain(), detaches DSNs being spooled, frees S. NULL is fine.
 */
void relay_sched_free(struct relay_sched *s);

/*
 * Routes ROUTES from here on (a config reload): attempts that begin later
 * group and route their recipients by it; an attempt already delivering
 * keeps the hops it was given (its jobs, failover included, and the
 * connections they are on). Next hops are matched by address and port:
 * one ROUTES still names keeps its pool, idle connections, down mark and
 * counters, and takes ROUTES' TLS policy (when that changed, its
 * connections opened under the old one carry no further transaction:
 * they QUIT at their next turn, counted as recycled); new ones
 * are added (relay_sched_n_hops() grows); dropped ones are kept, unused
 * by later attempts, until free (at most NO_HOP, 65535, in one run).
 * ROUTES must stay valid until the next successful call or free; the
 * previous one is not read after a successful call returns. Returns 0, or
 * -ENOMEM / -E2BIG (too many hops in one run) / -ESHUTDOWN, with the
 * previous routes kept. On the owning worker, outside the engine's callbacks.
 */
int relay_sched_set_routes(struct relay_sched *s, const struct cfg_routes *routes);

/* M is durable with recipients to deliver; the engine owns its delivery from here. */
void relay_sched_submit(struct relay_sched *s, struct spool_msg *m);

/* Starts due work: retries, reads, overflow, blocked output and state writes. Returns work done. */
unsigned relay_sched_poll(struct relay_sched *s);

/* True while the outbound queue (tracked + overflow) is at queue_max or past it. */
bool relay_sched_congested(const struct relay_sched *s);

const struct relay_stats *relay_sched_stats(const struct relay_sched *s);
/* The SMTP client engine's counters of this worker. */
const struct smtp_client_stats *relay_sched_client_stats(const struct relay_sched *s);
/* Next hops of the config (deduplicated) and their counters; I < relay_sched_n_hops(). */
unsigned relay_sched_n_hops(const struct relay_sched *s);
const struct relay_hop_stats *relay_sched_hop_stats(const struct relay_sched *s, unsigned i);

/* ---- the transport's side of a connection ---- */

/* The active open finished: ERR 0 (established) or -errno (refused, unreachable, ...). */
void relay_conn_connected(struct relay_conn *c, int err);
/* The handshake starttls() began ended: OK, or failed (the session ends 4.7.5). */
void relay_conn_tls_done(struct relay_conn *c, bool ok);
/* Octets from the next hop; all are taken. */
void relay_conn_input(struct relay_conn *c, const uint8_t *p, size_t n);
/* Send space came back after send() said -EAGAIN. */
void relay_conn_writable(struct relay_conn *c);
/* The connection ended under us (reset, timeout, the peer's FIN); close() still follows. */
void relay_conn_lost(struct relay_conn *c, int err);

/* A pointer for the transport (its connection); the engine does not use it. */
void relay_conn_set_udata(struct relay_conn *c, void *udata);
void *relay_conn_udata(const struct relay_conn *c);

#endif
