/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The TLS counters a worker shows in /mxgate/stats. Types only, so
 * core/counters.h can list them without OpenSSL. The label set is fixed:
 * versions and ciphers outside it count as "other", so a client cannot grow
 * the table.
 */
#ifndef MX_TLS_COUNTERS_H
#define MX_TLS_COUNTERS_H

#include <stdint.h>

/* X(ENUM, "telemetry name"). Single writer: the worker. */
#define TLS_COUNTERS(X)                                                                            \
	X(TLS_HANDSHAKES, "tls_handshakes")		    /* completed, both directions */       \
	X(TLS_HANDSHAKES_SERVER, "tls_handshakes_server")   /* STARTTLS and implicit TLS */        \
	X(TLS_HANDSHAKES_CLIENT, "tls_handshakes_client")   /* to next hops */                     \
	X(TLS_V1_2, "tls_version_tls1_2")                                                          \
	X(TLS_V1_3, "tls_version_tls1_3")                                                          \
	X(TLS_V_OTHER, "tls_version_other")		    /* only with min_version below 1.2 */  \
	X(TLS_CIPHER_AES128_GCM, "tls_cipher_aes128_gcm")                                          \
	X(TLS_CIPHER_AES256_GCM, "tls_cipher_aes256_gcm")                                          \
	X(TLS_CIPHER_CHACHA20, "tls_cipher_chacha20_poly1305")                                     \
	X(TLS_CIPHER_OTHER, "tls_cipher_other")                                                    \
	X(TLS_RESUMED, "tls_resumptions")		    /* an abbreviated handshake (ticket) */ \
	X(TLS_HANDSHAKE_CYCLES, "tls_handshake_cycles")	    /* TSC cycles inside handshakes */     \
	X(TLS_FAIL_PROTOCOL, "tls_fail_protocol")	    /* not TLS, bad record, bad message */ \
	X(TLS_FAIL_VERSION, "tls_fail_version")		    /* no protocol version in common */    \
	X(TLS_FAIL_CIPHER, "tls_fail_cipher")		    /* no cipher or group in common */     \
	X(TLS_FAIL_VERIFY, "tls_fail_verify")		    /* the peer's certificate */           \
	X(TLS_FAIL_CLOSED, "tls_fail_closed")		    /* the peer left mid-handshake */      \
	X(TLS_FAIL_TIMEOUT, "tls_fail_timeout")		    /* handshake_timeout_ms passed */      \
	X(TLS_FAIL_ALERT, "tls_fail_alert")		    /* the peer sent a fatal alert */      \
	X(TLS_FAIL_OTHER, "tls_fail_other")		    /* memory, internal errors */          \
	X(TLS_ERRORS_AFTER_HANDSHAKE, "tls_errors_after_handshake") /* bad record mid-session */

#define TLS_C_ENUM_(e, name) TLS_C_##e,
enum tls_counter { TLS_COUNTERS(TLS_C_ENUM_) TLS_C_MAX };
#undef TLS_C_ENUM_

/* One worker's TLS counters. All-zero is the valid start. */
struct tls_stats {
	uint64_t c[TLS_C_MAX];
};

#endif
