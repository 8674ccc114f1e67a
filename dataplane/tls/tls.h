/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * TLS over memory: OpenSSL 3 with a memory BIO each way, so the worker that
 * owns a connection runs its TLS inline, never blocking and never touching a
 * socket. Ciphertext from TCP goes in (tls_input), plaintext comes out
 * (tls_read), plaintext to send goes in (tls_write), ciphertext to hand to
 * TCP comes out (tls_output). No DPDK here: the tests run a client and a
 * server against each other in memory.
 *
 * One tls_ctx per worker (its SSL_CTXs, server and client). A connection
 * keeps its SSL_CTX alive by OpenSSL's reference count, so a context may be
 * freed (config reload) while its connections go on; the counters live with
 * the caller for the same reason.
 *
 * What the glue does:
 *   c = tls_server_new(t, &stats)  (after the 220 of STARTTLS, or at accept on 465)
 *   received: tls_input(c, ciphertext); then tls_read() until it returns 0,
 *             feeding the plaintext on; after each step send tls_output().
 *             tls_handshake_done() turns true once: the session starts over.
 *   send:     tls_write(c, reply); send tls_output().
 *   peer FIN: tls_peer_closed(c); timeout: tls_timed_out(c) (both count).
 */
#ifndef MX_TLS_H
#define MX_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "control/config/tls.h"
#include "dataplane/tls/tls_counters.h"

struct tls_ctx;
struct tls_conn;

/* Why a handshake or a session failed (one counter each). */
enum tls_fail {
	TLS_OK,
	TLS_FAIL_PROTOCOL, /* not TLS at all (garbage, HTTP, plaintext SMTP) or a malformed message */
	TLS_FAIL_VERSION,  /* no protocol version in common (min_version) */
	TLS_FAIL_CIPHER,   /* no cipher suite or group in common */
	TLS_FAIL_VERIFY,   /* the peer's certificate did not verify (client side) */
	TLS_FAIL_CLOSED,   /* the peer closed the connection before the handshake ended */
	TLS_FAIL_TIMEOUT,  /* the handshake took longer than handshake_timeout_ms */
	TLS_FAIL_ALERT,	   /* the peer sent a fatal alert */
	TLS_FAIL_OTHER,	   /* memory, internal error */
};

/* Session ticket keys shared by every worker, so a ticket resumes wherever RSS lands. */
#define TLS_TICKET_KEYS_LEN 80

/*
 * A worker's contexts from CFG: a server context when CFG has certificates
 * (they are loaded again here, as the config loader checked them), and a
 * client context for next hops. TICKET_KEYS: TLS_TICKET_KEYS_LEN random
 * octets, the same for every worker (NULL: OpenSSL's own, this context only).
 * Returns NULL with the reason in ERR (ERRLEN octets) on failure.
 */
struct tls_ctx *tls_ctx_new(const struct cfg_tls *cfg, const uint8_t *ticket_keys, char *err,
			    size_t errlen);

/* Drops the worker's reference; connections made from it keep working. NULL is a no-op. */
void tls_ctx_free(struct tls_ctx *t);

/* Whether T can serve TLS (a certificate was configured). */
bool tls_ctx_has_server(const struct tls_ctx *t);

/*
 * A server side connection; STATS (the worker's, outliving the connection)
 * gets its counts. NULL when memory ran out or T has no certificate.
 */
struct tls_conn *tls_server_new(struct tls_ctx *t, struct tls_stats *stats);

/*
 * A client side connection to a next hop. HOST: the name sent as SNI (not
 * sent for an address literal) and, with VERIFY, the name the certificate
 * must carry (RFC 6125 via SSL_set1_host); VERIFY also checks the chain
 * against tls.ca_file. NULL when memory ran out.
 */
struct tls_conn *tls_client_new(struct tls_ctx *t, struct tls_stats *stats, const char *host,
				bool verify);

/* Frees C; NULL is a no-op. A handshake never completed and never counted as failed is not. */
void tls_conn_free(struct tls_conn *c);

/* N octets of ciphertext from the peer, copied in. 0, or -ENOMEM. */
int tls_input(struct tls_conn *c, const uint8_t *p, size_t n);

/* Ciphertext octets taken by tls_input() that OpenSSL has not read yet. */
size_t tls_input_pending(const struct tls_conn *c);

/*
 * Runs the handshake as far as the input allows, then decrypts up to N
 * octets of plaintext into BUF. Returns the octets decrypted (> 0), 0 when
 * more input is needed (send tls_output() first: the handshake may have
 * something to say), -EPIPE when the peer closed TLS (close_notify), or
 * -EPROTO when the connection failed (tls_conn_fail() says why; an alert for
 * the peer may wait in tls_output()). Failures are counted once.
 */
ssize_t tls_read(struct tls_conn *c, void *buf, size_t n);

/*
 * Encrypts N octets of plaintext into the output. Before the handshake is
 * done this only drives it (and takes nothing). Returns the octets taken
 * (N, or 0 before the handshake), or -EPROTO.
 */
ssize_t tls_write(struct tls_conn *c, const void *p, size_t n);

/* Ciphertext waiting to be sent: sets *P, returns its length (0: none). Valid until the next call on C. */
size_t tls_output(struct tls_conn *c, const uint8_t **p);

/* N octets of the output were sent. */
void tls_output_done(struct tls_conn *c, size_t n);

/* Queues a close_notify alert (RFC 8446 §6.1) in the output. */
void tls_close(struct tls_conn *c);

/* The handshake completed (stays true). */
bool tls_handshake_done(const struct tls_conn *c);

/* The peer's FIN came: a handshake still running failed (counted as CLOSED). */
void tls_peer_closed(struct tls_conn *c);

/* The caller's handshake timer fired: a handshake still running failed (TIMEOUT). */
void tls_timed_out(struct tls_conn *c);

/* Why C failed; TLS_OK while it has not. */
enum tls_fail tls_conn_fail(const struct tls_conn *c);

/* "TLSv1.3", "TLS_AES_256_GCM_SHA384"... after the handshake; "" before. */
const char *tls_conn_version(const struct tls_conn *c);
const char *tls_conn_cipher(const struct tls_conn *c);
/* The handshake resumed a session (a ticket). */
bool tls_conn_resumed(const struct tls_conn *c);

/*
 * Client side resumption (RFC 8446 §2.2, RFC 5077): a session to offer on a
 * later connection to the same server. tls_conn_session() returns a copy
 * of C's session once it can be resumed (a ticket came), which outlives C
 * and is freed with tls_session_free(); NULL before that. tls_conn_resume()
 * offers S in C's ClientHello: call it before the first tls_read(); it
 * takes its own reference. 0, or -EINVAL (not a client, already started).
 */
struct tls_session;
struct tls_session *tls_conn_session(struct tls_conn *c);
int tls_conn_resume(struct tls_conn *c, struct tls_session *s);
void tls_session_free(struct tls_session *s);

/* OpenSSL's SSL of C, for tests and logging only. */
void *tls_conn_ssl(struct tls_conn *c);

#endif
