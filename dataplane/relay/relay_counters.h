/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The relay's counters as a worker shows them in /mxgate/stats, and the
 * per-next-hop table. Types only, so core/counters.h can list them without
 * including the relay.
 */
#ifndef MX_RELAY_COUNTERS_H
#define MX_RELAY_COUNTERS_H

#include <stdint.h>

/* X(ENUM, "telemetry name"). Gauges last. Single writer: the worker. */
#define RELAY_COUNTERS(X)                                                                          \
	X(RELAY_MSGS_QUEUED, "relay_messages_queued")	    /* handed over: committed, recovered */ \
	X(RELAY_MSGS_DELIVERED, "relay_messages_delivered") /* final, every recipient delivered */  \
	X(RELAY_MSGS_BOUNCED, "relay_messages_bounced")	    /* final, a recipient failed */         \
	X(RELAY_MSGS_DEFERRED, "relay_messages_deferred")   /* attempts leaving recipients */       \
	X(RELAY_MSGS_EXPIRED, "relay_messages_expired")	    /* lifetime over: 4.4.7 */              \
	X(RELAY_RCPTS_DELIVERED, "relay_rcpts_delivered")                                          \
	X(RELAY_RCPTS_DEFERRED, "relay_rcpts_deferred")                                            \
	X(RELAY_RCPTS_FAILED, "relay_rcpts_failed")	    /* permanent: 5xx, refused locally */   \
	X(RELAY_RCPTS_EXPIRED, "relay_rcpts_expired")                                              \
	X(RELAY_RCPTS_UNROUTABLE, "relay_rcpts_unroutable") /* no route: 5.4.4 */                   \
	X(RELAY_TRANSACTIONS, "relay_transactions")                                                \
	X(RELAY_CONNS_OPENED, "relay_conns_opened")                                                \
	X(RELAY_CONNS_REUSED, "relay_conns_reused")	/* transactions after a connection's first */ \
	X(RELAY_CONNS_FAILED, "relay_conns_failed")	/* connect, greeting or EHLO failed */      \
	X(RELAY_CONNS_LOST, "relay_conns_lost")		/* ended badly after the handshake */       \
	X(RELAY_CONNS_IDLE_CLOSED, "relay_conns_idle_closed")                                      \
	X(RELAY_CONNS_RECYCLED, "relay_conns_recycled")	/* messages_per_connection reached */     \
	X(RELAY_CONNS_STALE, "relay_conns_stale")	/* a reused one was gone: retried fresh */  \
	X(RELAY_CONN_WAITS, "relay_conn_waits")		/* a delivery waited: hop at its cap */     \
	X(RELAY_HOP_FAILOVERS, "relay_hop_failovers")	/* a delivery moved to the next hop */      \
	X(RELAY_HOPS_DOWN, "relay_hops_down")		/* a hop was marked down */                 \
	X(RELAY_DSN_BOUNCES, "relay_dsn_bounces")	/* failure DSNs spooled */                  \
	X(RELAY_DSN_DELAYS, "relay_dsn_delays")		/* delay warnings spooled */                \
	X(RELAY_DSN_SUPPRESSED, "relay_dsn_suppressed")	/* null sender, or NOTIFY said no */       \
	X(RELAY_DSN_ERRORS, "relay_dsn_errors")		/* not built, or not spooled */             \
	X(RELAY_READS, "relay_reads")			/* messages read back from the spool */     \
	X(RELAY_READ_ERRORS, "relay_read_errors")	/* read or decode failed */                 \
	X(RELAY_READ_BUSY, "relay_read_busy")		/* the spool's read slots were full */      \
	X(RELAY_STATE_ERRORS, "relay_state_errors")	/* spool_state() refused a record */        \
	X(RELAY_STATE_RETRIES, "relay_state_retries")	/* spool_state() said -ENOBUFS: later */    \
	X(RELAY_OVERFLOWED, "relay_overflowed")		/* past queue_max: kept as a bare pointer */ \
	X(RELAY_OVERFLOW_LOST, "relay_overflow_lost")	/* past that too: left for the next start */ \
	X(RELAY_SEND_NOMEM, "relay_send_nomem")		/* no mbuf for output: tried again later */ \
	X(RELAY_LOG_LINES, "relay_log_lines")                                                      \
	X(RELAY_LOG_DROPPED, "relay_log_dropped")	/* over the logger's rate */                \
	/* gauges */                                                                               \
	X(RELAY_Q_TRACKED, "relay_queue_tracked")	/* messages with full state in memory */   \
	X(RELAY_Q_READY, "relay_queue_ready")		/* due, waiting for a read slot */          \
	X(RELAY_Q_DEFERRED, "relay_queue_deferred")	/* waiting for their next attempt */        \
	X(RELAY_Q_OVERFLOW, "relay_queue_overflow")	/* bare pointers past queue_max */          \
	X(RELAY_LOADED, "relay_loaded")			/* read back, being delivered */            \
	X(RELAY_LOADED_BYTES, "relay_loaded_bytes")                                                \
	X(RELAY_CONNS_ACTIVE, "relay_conns_active")	/* opening, or carrying a transaction */    \
	X(RELAY_CONNS_IDLE, "relay_conns_idle")

#define RELAY_C_ENUM_(e, name) e,
enum relay_counter { RELAY_COUNTERS(RELAY_C_ENUM_) RELAY_C_MAX };
#undef RELAY_C_ENUM_

extern const char *const relay_counter_names[RELAY_C_MAX];

/* One worker's relay counters. All-zero is the valid start. */
struct relay_stats {
	uint64_t c[RELAY_C_MAX];
};

/* One next hop's counters: X(FIELD, "telemetry name"). */
#define RELAY_HOP_COUNTERS(X)                                                                      \
	X(conns_opened, "conns_opened")                                                            \
	X(conns_failed, "conns_failed")                                                            \
	X(transactions, "transactions")                                                            \
	X(rcpts_delivered, "rcpts_delivered")                                                      \
	X(rcpts_deferred, "rcpts_deferred")                                                        \
	X(rcpts_failed, "rcpts_failed")                                                            \
	X(replies_4xx, "replies_4xx") /* recipient outcomes decided by a 4xx reply */              \
	X(replies_5xx, "replies_5xx") /* ... by a 5xx reply */                                     \
	X(failovers, "failovers")     /* deliveries that left this hop for the next */             \
	X(conns_active, "conns_active") /* gauge */                                                \
	X(conns_idle, "conns_idle")	/* gauge */

#define RELAY_HOP_FIELD_(f, name) uint64_t f;
struct relay_hop_stats {
	uint32_t addr; /* IPv4, network order */
	uint16_t port; /* host order */
	RELAY_HOP_COUNTERS(RELAY_HOP_FIELD_)
};
#undef RELAY_HOP_FIELD_

#endif
