/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The SMTP counters a worker shows in /mxgate/stats: the engine's own
 * (SMTP_COUNTERS, copied from its per-worker context) and the glue's. Types
 * only, so core/counters.h can list them without including the worker.
 */
#ifndef MX_SMTPD_COUNTERS_H
#define MX_SMTPD_COUNTERS_H

#include "dataplane/relay/relay_counters.h"
#include "dataplane/smtp/smtp.h"
#include "dataplane/spool/spool.h"
#include "dataplane/tls/tls_counters.h"

/* X(ENUM, "telemetry name"); the engine's block first, in its order. */
#define SMTPD_COUNTERS(X)                                                                          \
	SMTP_COUNTERS(X)                                                                           \
	X(SMTPD_TRANSACTIONS, "smtp_transactions")         /* MAIL accepted */                    \
	X(SMTPD_RELAY_DENIED, "smtp_relay_denied")         /* RCPT: 554 5.7.1 */                  \
	X(SMTPD_RCPT_UNKNOWN, "smtp_rcpt_unknown")         /* RCPT: 550 5.1.1 */                  \
	X(SMTPD_SESSIONS_REFUSED, "smtp_sessions_refused") /* no session free: 421 4.3.2 */       \
	X(SMTPD_CLIENT_CONNS, "smtp_client_conn_limit")    /* per-address connections: 421 */    \
	X(SMTPD_CLIENT_CONN_RATE, "smtp_client_conn_rate") /* per-address connect rate: 421 */   \
	X(SMTPD_CLIENT_MSG_RATE, "smtp_client_msg_rate")   /* per-address message rate: 421 */   \
	X(SMTPD_CLIENT_UNTRACKED, "smtp_client_untracked") /* client table bucket full: let in */ \
	X(SMTPD_REFUSAL_NOMEM, "smtp_refusal_nomem")       /* no mbuf for a 421: reset instead */ \
	X(SMTPD_SESSIONS_ABORTED, "smtp_sessions_aborted") /* TCP reset or timeout mid-session */ \
	X(SMTPD_OUTPUT_NOMEM, "smtp_output_nomem")         /* no mbuf for a reply: reset */       \
	X(SMTPD_INPUT_OVERFLOW, "smtp_input_overflow")     /* kept input over its bound: reset */ \
	X(SMTPD_STORE_REFUSED, "smtp_store_refused")       /* spool said no at begin: 452/552 */ \
	X(SMTPD_STORE_FAILED, "smtp_store_failed")         /* commit failed: 451, nothing promised */ \
	X(SMTPD_CONGESTED, "smtp_congested")               /* backpressure: 451 4.3.2 */          \
	X(SMTPD_UNROUTABLE, "smtp_unroutable")             /* store mode, no route: 550 5.4.4 */  \
	/* AUTH (smtpd_auth.h); the engine counts successes and failures itself */              \
	X(SMTPD_AUTH_REQUIRED, "smtp_auth_required")       /* submission MAIL before AUTH: 530 */ \
	X(SMTPD_AUTH_LOCKOUTS, "smtp_auth_lockouts")       /* Nth failure: 421, address locked */ \
	X(SMTPD_AUTH_LOCKED_OUT, "smtp_auth_locked_out")   /* locked address at the greeting: 421 */ \
	X(SMTPD_AUTH_BUSY, "smtp_auth_busy")               /* hash thread's queue full: 454 */    \
	/* cut-through (cutthrough.h): the next hop's transaction alongside the client's */        \
	X(SMTPD_CT_CONNECTS, "smtp_ct_connects")           /* next-hop connections opened */      \
	X(SMTPD_CT_HOP_FAILURES, "smtp_ct_hop_failures")   /* a hop refused or timed out: next */ \
	X(SMTPD_CT_UNREACHABLE, "smtp_ct_unreachable")     /* every hop failed: 451 4.4.1 */      \
	X(SMTPD_CT_TLS_STARTED, "smtp_ct_starttls")        /* STARTTLS sent to a next hop */      \
	X(SMTPD_CT_TLS_OK, "smtp_ct_tls_ok")               /* its handshake done: TLS from here */ \
	X(SMTPD_CT_TLS_FAILED, "smtp_ct_tls_failed")       /* refused, handshake failed, injected */ \
	X(SMTPD_CT_TLS_FALLBACK, "smtp_ct_tls_fallback")   /* "may": on in the clear after that */ \
	X(SMTPD_CT_TLS_NOT_OFFERED, "smtp_ct_tls_not_offered") /* "encrypt" hop, no STARTTLS */   \
	X(SMTPD_CT_RCPTS_ACCEPTED, "smtp_ct_rcpts_accepted") /* next hop's 2xx at RCPT, mirrored */ \
	X(SMTPD_CT_RCPTS_REFUSED, "smtp_ct_rcpts_refused") /* its 4xx/5xx at MAIL/RCPT, mirrored */ \
	X(SMTPD_CT_OTHER_ROUTE, "smtp_ct_other_route")     /* another next hop: 452 4.5.3 */      \
	X(SMTPD_CT_MESSAGES_ACCEPTED, "smtp_ct_messages_accepted") /* its 2xx after the data */   \
	X(SMTPD_CT_MESSAGES_REFUSED, "smtp_ct_messages_refused") /* its 4xx/5xx to DATA or dot */ \
	X(SMTPD_CT_ABORTED, "smtp_ct_aborted")             /* the client left mid-transaction */  \
	X(SMTPD_CT_LOST, "smtp_ct_lost")                   /* hop gone or garbled mid-transaction */ \
	X(SMTPD_CT_TIMEOUTS, "smtp_ct_timeouts")           /* a hop's reply did not come in time */ \
	X(SMTPD_CT_STALLS, "smtp_ct_stalls")               /* client input held for a slow hop */ \
	X(SMTPD_CT_POOL_KEPT, "smtp_ct_pool_kept")         /* connections given back and kept */ \
	X(SMTPD_CT_POOL_REUSED, "smtp_ct_pool_reused")     /* transactions on a kept one */       \
	X(SMTPD_CT_POOL_RSETS, "smtp_ct_pool_rsets")       /* kept after RSET (aborted tx) */     \
	X(SMTPD_CT_POOL_CLOSED, "smtp_ct_pool_closed")     /* kept ones closed: idle, 421, FIN */ \
	X(SMTPD_CT_POOL_STALE, "smtp_ct_pool_stale")       /* taken, found gone: a fresh one */   \
	/* the worker's spool shard (dataplane/spool/spool.h), in its order */                    \
	SPOOL_COUNTERS(X)                                                                          \
	/* and its relay (dataplane/relay/relay_counters.h), in its order */                      \
	RELAY_COUNTERS(X)                                                                          \
	/* TLS, server and client sides (dataplane/tls/tls_counters.h), in its order */           \
	TLS_COUNTERS(X)

#endif
