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
 * A connection given back owing replies (RCPTs that went with a MAIL the
 * hop refused, or a transaction aborted mid-group) joins the idle ones only
 * once it has read them all, those that came in the same segment as the
 * reply that gave it back included (hop_pool_put() refuses one that owes
 * any). One with its transaction still open at the hop (the client said
 * RSET, or left, in the envelope phase) is reset with RSET first (RFC 5321
 * §4.1.1.5) and kept only on the RSET's 250. Anything else while it waits
 * -- a 421, a reply nobody asked for, a FIN, a reset, command_timeout_s
 * without the replies -- closes it (with QUIT unless the hop is leaving).
 *
 * A connection under TLS (STARTTLS, RFC 3207) keeps its TLS here: what the
 * pool reads and says (RSET, QUIT, then a close_notify) goes through it. A
 * kept connection serves only a hop whose route has the TLS policy it was
 * set up under (and, for "encrypt", the same tls_name it was verified
 * against): a reload that changes a hop's policy never lets a connection
 * made in the clear carry mail the new policy wants encrypted.
 *
 * Internal to smtpd/: cutthrough.c gives connections back and takes them;
 * its TCP callbacks hand a pooled connection's events here (ct_pool_owns()).
 */
#ifndef MX_SMTPD_CT_POOL_H
#define MX_SMTPD_CT_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataplane/core/dp.h"

struct cfg_next_hop;
struct tls_conn;

/* The first octet of whatever a cut-through connection's TCP arg points to. */
#define CT_KIND_SESSION 1 /* struct ct: a client's transaction uses it */
#define CT_KIND_POOLED	2 /* struct ct_pconn: kept here */

/* True when ARG (a cut-through connection's TCP arg, not NULL) is a pooled connection. */
static inline bool ct_pool_owns(const void *arg)
{
	return *(const uint8_t *)arg == CT_KIND_POOLED;
}

/* What goes with a connection into the pool and out of it again. */
struct ct_pool_conn {
	unsigned ext;	      /* the hop's EHLO keywords (SMTP_EXT_*); under TLS the second EHLO's */
	unsigned txs;	      /* transactions it carried */
	struct tls_conn *tls; /* its TLS, handshake done, owned by whoever has the connection;
			       * NULL: in the clear */
};

/*
 * An idle connection of worker W to next hop H (address, port, TLS policy
 * and tls_name), taken out of the pool; its TCP arg is NULL until the
 * caller sets its own. *C: what it carries, its TLS now the caller's.
 * NULL when none is idle that was set up under H's TLS policy.
 */
struct tcp_conn *ct_pool_take(struct dp_worker *w, const struct cfg_next_hop *h,
			      struct ct_pool_conn *c);

/*
 * What a connection given back still owes. A connection joins the idle ones
 * only once it owes nothing: every reply to what was sent has been read --
 * here, or by the caller before -- so the next transaction never takes a
 * late reply for its own (RFC 2920 §3.1: replies come in command order).
 */
struct ct_pool_debt {
	unsigned replies;    /* replies still due to commands sent (the one being read included) */
	bool rset;	     /* its transaction is open: RSET first, kept only on its 2xx */
	const uint8_t *line; /* octets of a reply line already read, its CRLF not yet */
	size_t line_len;     /* <= the pool's line limit (512), else the connection closes */
	uint16_t in_code;    /* the code of a multi-line reply being read; 0: none */
};

/*
 * TC (to next hop H, set up under H's TLS policy, carrying C; its TCP arg
 * is the caller's until this call) is given back owing D. The pool keeps
 * it, or says QUIT and closes it (limits reached, the worker stopping, no
 * memory). Either way TC and C->tls are no longer the caller's. Returns
 * TC's new TCP arg when kept (input that came with what the caller read
 * goes to ct_pool_received(), or decrypted to ct_pool_input(), with it),
 * NULL when closed.
 */
void *ct_pool_put(struct dp_worker *w, struct tcp_conn *tc, const struct cfg_next_hop *h,
		  const struct ct_pool_conn *c, const struct ct_pool_debt *d);

/*
 * The TCP callbacks of a pooled connection (ARG: its TCP arg). For
 * received(), OFF octets of DATA's first segment were read already by the
 * transaction that gave TC back in the same callback (0 otherwise): the
 * rest is the pool's (replies owed, in the same packet).
 */
void ct_pool_received(void *arg, struct tcp_conn *tc, struct rte_mbuf *data, size_t off);

/*
 * N octets of plaintext the caller decrypted from a TLS connection it gave
 * the pool in the same callback (ARG: ct_pool_put()'s return), after the
 * reply that gave it back; then whatever its TLS still holds is read.
 */
void ct_pool_input(void *arg, struct tcp_conn *tc, const uint8_t *p, size_t n);
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

/* N octets at P to TC as one chain of W's mbufs: 0, or the error (nothing was taken). */
int ct_pool_send(struct dp_worker *w, struct tcp_conn *tc, const void *p, size_t n);

/* TLS's records waiting, to TC (ct_pool_send()): 0, or the error (they stay in TLS). */
int ct_pool_tls_push(struct dp_worker *w, struct tcp_conn *tc, struct tls_conn *tls);

#endif
