/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * TLS between the SMTP engine and TCP on the server side (smtpd.c calls
 * these): ciphertext from TCP into the connection's TLS, plaintext out as
 * mbufs for the engine, the engine's replies encrypted into mbufs for TCP.
 * STARTTLS (RFC 3207) and implicit TLS on 465 (RFC 8314 §3.3) share it.
 */
#ifndef MX_SMTPD_TLS_H
#define MX_SMTPD_TLS_H

#include <stdint.h>

#include <rte_mbuf.h>

#include "dataplane/smtp/smtp.h"
#include "dataplane/tls/tls.h"

/* Plaintext decrypted ahead of the engine, at most: the rest waits as ciphertext in TCP. */
#define SMTPD_TLS_PLAIN_MAX (64u << 10)

/*
 * The session ticket keys every worker's server context shares, made once
 * per process, so a ticket resumes on whichever worker RSS picks.
 */
const uint8_t *smtpd_tls_ticket_keys(void);

/* Copies the ciphertext chain M into T and frees M. 0, or -ENOMEM (M freed all the same). */
int smtpd_tls_input(struct tls_conn *t, struct rte_mbuf *m);

/*
 * Runs the handshake and decrypts into single-segment mbufs from MP,
 * appended to the list *HEAD..*TAIL, while *KEPT (plaintext octets in the
 * list) is under SMTPD_TLS_PLAIN_MAX. Returns the octets added (>= 0),
 * -EPIPE when the client closed TLS, -EPROTO when TLS failed (counted; an
 * alert may wait in the output), -ENOMEM without mbufs.
 */
int smtpd_tls_decrypt(struct tls_conn *t, struct rte_mempool *mp, struct rte_mbuf **head,
		      struct rte_mbuf **tail, uint32_t *kept);

/*
 * The engine's replies encrypted (once the handshake is done: never a reply
 * in the clear), then every ciphertext octet waiting, as one chain from MP.
 * NULL with *ERR 0 when there is nothing to send, -ENOMEM without mbufs,
 * -EPROTO when encryption failed.
 */
struct rte_mbuf *smtpd_tls_output(struct tls_conn *t, struct smtp_session *s,
				  struct rte_mempool *mp, int *err);

/* The engine's STARTTLS hook: the listener offers STARTTLS, so it goes ahead. */
int smtpd_tls_hook_starttls(void *arg, struct smtp_session *s);

#endif
