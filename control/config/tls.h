/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The "tls:" section: the certificates the SMTP listeners present (RSA and
 * ECDSA side by side, OpenSSL picks by what the client supports), the
 * protocol floor, cipher and group lists, session tickets, and the CA file
 * the relay verifies next hops against. Types only; tls.c loads and checks.
 */
#ifndef MX_CONFIG_TLS_H
#define MX_CONFIG_TLS_H

#include <stdbool.h>
#include <stdint.h>

#define CFG_TLS_MAX_CERTS 4

/* Protocol versions as on the wire (RFC 8446 §4.2.1): 0x0303 is TLS 1.2. */
#define CFG_TLS_V1_0 0x0301
#define CFG_TLS_V1_1 0x0302
#define CFG_TLS_V1_2 0x0303
#define CFG_TLS_V1_3 0x0304

struct cfg_tls_cert {
	char *cert; /* PEM: the certificate, then its chain */
	char *key;  /* PEM: its private key, unencrypted */
	int key_type; /* what the loader found: an OpenSSL EVP_PKEY_* id */
};

struct cfg_tls {
	struct cfg_tls_cert certs[CFG_TLS_MAX_CERTS]; /* at most one per key type */
	unsigned n_certs;		/* 0: no STARTTLS, no implicit TLS listener */
	unsigned min_version;		/* CFG_TLS_V*: TLS 1.2 */
	char *ciphers;			/* TLS 1.2 cipher list, OpenSSL syntax; NULL: OpenSSL's */
	char *ciphersuites;		/* TLS 1.3 suites; NULL: OpenSSL's */
	char *groups;			/* key exchange groups, "X25519:P-256"; NULL: OpenSSL's */
	bool session_tickets;		/* RFC 5077/8446 resumption: true */
	unsigned handshake_timeout_ms;	/* a handshake that takes longer is dropped: 30000 */
	char *ca_file;			/* PEM CAs for next hops' certificates; NULL: system's */
};

/* Per listener (RFC 3207 STARTTLS, RFC 8314 §3.3 implicit TLS). */
enum cfg_listener_tls {
	CFG_LISTENER_TLS_NONE,	   /* "none": clear text only */
	CFG_LISTENER_TLS_STARTTLS, /* "starttls": offered in EHLO (default with a certificate) */
	CFG_LISTENER_TLS_IMPLICIT, /* "implicit": the handshake first, then the 220 (port 465) */
};

#endif
