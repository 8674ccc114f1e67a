/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The cut-through acknowledgement mode (DESIGN.md §3.4): no spool; one
 * client session's transaction runs alongside a transaction at the next
 * hop of its first recipient's domain, on a connection this worker opens.
 * The client's RCPT replies and final reply are the next hop's, mirrored
 * (smtp_server_cmd_done() / smtp_server_tx_done_text()); content is
 * streamed as it arrives, and the client's input is held (ct_budget()) while
 * the next hop is slow. The route's tls: policy decides STARTTLS to the
 * next hop (RFC 3207; ct_set_tls()). Internal to smtpd/: smtpd.c owns the
 * session and calls in from its hooks, its sink and its input loop.
 */
#ifndef MX_SMTPD_CUTTHROUGH_H
#define MX_SMTPD_CUTTHROUGH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataplane/core/dp.h"
#include "dataplane/smtp/smtp.h"

struct ct; /* one client session's next-hop side, in the session's memory */

/* Bytes one struct ct takes (it lives after the engine's session). */
size_t ct_size(void);

/* Called when the session must run again: a reply to mirror, or room for more content. */
typedef void (*ct_wake_fn)(void *arg);

/*
 * Sets up CT for session S on worker W (not connected to anything yet).
 * HELO: our EHLO name toward next hops (outlives CT). WAKE(ARG) runs from
 * the next hop's TCP callbacks and CT's timer, always as their last act:
 * it may end the session and ct_fini() CT.
 */
void ct_init(struct ct *ct, struct dp_worker *w, struct smtp_session *s, const char *helo,
	     ct_wake_fn wake, void *arg);

/*
 * The routes CT's transactions are routed by: the session's config
 * snapshot's (they outlive the session), so a reload does not move a
 * session under way. Until called: the start-up config's.
 */
void ct_set_routes(struct ct *ct, const struct cfg_routes *routes);

struct tls_ctx;
struct tls_stats;

/*
 * The client side of TLS for STARTTLS to next hops whose route says tls:
 * may or encrypt (RFC 3207): T, the session's snapshot's context (it must
 * outlive the session; a connection keeps its own reference to what it
 * uses), STATS, the worker's counters (they must outlive every connection,
 * kept ones included), and the handshake's time limit (0: the command
 * timeout). Until called, or with T NULL: such a hop fails its handshake
 * ("may" then goes on in the clear, "encrypt" is not used).
 */
void ct_set_tls(struct ct *ct, struct tls_ctx *t, struct tls_stats *stats, uint32_t handshake_ms);

/*
 * The submitter the transaction's MAIL vouches for (RFC 4954 §5,
 * smtp_authp_identity(): ID, LEN octets, copied; 0: nobody), sent as AUTH= to
 * a next hop that offers AUTH, as the relay does. Set before the RCPT that
 * makes MAIL go out; an identity over SMTP_AUTHID_MAX is taken as nobody.
 */
void ct_set_authid(struct ct *ct, const char *id, size_t len);

/* The session ends: the next hop's connection is let go of (its transaction aborted). */
void ct_fini(struct ct *ct);

/*
 * rcpt_check: routes RCPT (after policy accepted it). Returns a reply id
 * (550 5.4.4 no route, 452 4.5.3 routed to another hop than the first
 * recipient, 451 4.4.1 no hop reachable), or SMTP_HOOK_PENDING: the next
 * hop is asked and ct_deliver() answers later. Several RCPTs of the
 * client's pipelined group may be pending at once (the listener's
 * rcpt_pending_max is ct_pipe_max()); they are queued and go out at the
 * next ct_flush().
 */
int ct_rcpt(struct ct *ct, const struct smtp_tx *tx, const struct smtp_path *rcpt);

/* The smtp_server_config.rcpt_pending_max of cut-through listeners. */
unsigned ct_pipe_max(void);

/*
 * The engine finished with the client's input for now: the RCPTs ct_rcpt()
 * queued go to the next hop as one write (with MAIL when its transaction
 * has not begun), or one at a time to a hop without PIPELINING. Call
 * before ct_deliver(): a failure to send is a reply to deliver.
 */
void ct_flush(struct ct *ct);

/* tx_end: the client's transaction is over; an unfinished one at the next hop is aborted. */
void ct_tx_end(struct ct *ct);

/* The sink's functions (struct smtp_sink_ops) for the session's transaction. */
int ct_begin(struct ct *ct, struct smtp_tx *tx);
int ct_chunk(struct ct *ct, struct smtp_tx *tx, const uint8_t *p, size_t n);
int ct_end(struct ct *ct, struct smtp_tx *tx);

/*
 * Octets of client input the engine may be given now: content it produces
 * must fit what is staged for the next hop. 0: hold the input (the next
 * hop is slow, or has not said 354 yet); WAKE follows when that changes.
 */
size_t ct_budget(const struct ct *ct);

/*
 * Hands decided replies to the session's engine (smtp_server_cmd_done() for
 * each RCPT reply, in order, or smtp_server_tx_done_text()) if they are
 * ready and the engine waits for them. Returns true when it did (feed the
 * kept input again then).
 */
bool ct_deliver(struct ct *ct, uint64_t now);

#endif
