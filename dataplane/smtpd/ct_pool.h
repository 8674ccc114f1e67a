/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Cut-through's next-hop connections kept between transactions, per worker
 * and per next hop (relay/hop_pool.h does the bookkeeping, as for the
 * store-mode relay): a connection whose transaction ended cleanly waits,
 * idle, for the next client transaction routed to the same hop, instead of
 * a QUIT and a new handshake. The relay: section's limits apply:
 * messages_per_connection (then QUIT), idle_timeout_s (then QUIT; 0 keeps
 * nothing), connections_per_hop (connections kept per hop and worker; a
 * client beyond it still gets a connection of its own, closed after its
 * transaction: a client never waits for another one's).
 *
 * A connection given back with its transaction still open at the hop (the
 * client said RSET, or left, in the envelope phase) is reset with RSET
 * first (RFC 5321 §4.1.1.5), after the replies still owed to it; it joins
 * the idle ones only on the RSET's 250. Anything else while it waits -- a
 * reply nobody asked for (a 421), a FIN, a reset -- closes it.
 *
 * Internal to smtpd/: cutthrough.c gives connections back and takes them;
 * its TCP callbacks hand a pooled connection's events here (ct_pool_owns()).
 */
#ifndef MX_SMTPD_CT_POOL_H
#define MX_SMTPD_CT_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include "dataplane/core/dp.h"

/* The first octet of whatever a cut-through connection's TCP arg points to. */
#define CT_KIND_SESSION 1 /* struct ct: a client's transaction uses it */
#define CT_KIND_POOLED	2 /* struct ct_pconn: kept here */

/* True when ARG (a cut-through connection's TCP arg, not NULL) is a pooled connection. */
static inline bool ct_pool_owns(const void *arg)
{
	return *(const uint8_t *)arg == CT_KIND_POOLED;
}

/*
 * An idle connection of worker W to ADDR (network order):PORT (host order),
 * taken out of the pool; its TCP arg is NULL until the caller sets its own.
 * *EXT: the hop's EHLO keywords (SMTP_EXT_*), *TXS: the transactions it
 * carried. NULL when none is idle.
 */
struct tcp_conn *ct_pool_take(struct dp_worker *w, uint32_t addr, uint16_t port, unsigned *ext,
			      unsigned *txs);

/*
 * TC (to ADDR:PORT, EHLO keywords EXT, TXS transactions carried; its TCP
 * arg is the caller's until this call) is given back. OWED: replies the hop
 * still owes to commands sent; RSET: its transaction is open and must be
 * reset. The pool keeps it, or says QUIT and closes it (limits reached, the
 * worker stopping, no memory). Either way TC is no longer the caller's.
 */
void ct_pool_put(struct dp_worker *w, struct tcp_conn *tc, uint32_t addr, uint16_t port,
		 unsigned ext, unsigned txs, unsigned owed, bool rset);

/* The TCP callbacks of a pooled connection (ARG: its TCP arg). */
void ct_pool_received(void *arg, struct tcp_conn *tc, struct rte_mbuf *data);
void ct_pool_peer_closed(void *arg, struct tcp_conn *tc);
void ct_pool_closed(void *arg, struct tcp_conn *tc);

/* Pooled connections of W's pool kept now (all hops): for tests and counters. */
unsigned ct_pool_kept(const struct dp_worker *w);

/*
 * W stops: its pooled connections are aborted and nothing is kept from now
 * on (connections given back are closed). Call before W's TCP stack goes.
 */
void ct_pool_drain(struct dp_worker *w);

/* Frees W's pool (after its TCP stack is gone). */
void ct_pool_free(struct dp_worker *w);

#endif
