/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * OpenSSL over memory BIOs (tls.h). The read BIO holds ciphertext the peer
 * sent, the write BIO what we have to send; SSL never sees a socket, so
 * every call returns at once and the worker's loop stays in charge.
 */
#include "dataplane/tls/tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
static inline uint64_t cycles(void)
{
	return __rdtsc();
}
#else
static inline uint64_t cycles(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
#endif

struct tls_ctx {
	SSL_CTX *server; /* NULL without a certificate */
	SSL_CTX *client;
};

struct tls_conn {
	SSL *ssl;
	BIO *rbio, *wbio; /* owned by SSL */
	struct tls_stats *stats;
	bool server;
	bool done;	    /* handshake completed */
	bool counted_fail;  /* a failure was counted */
	bool closed;	    /* close_notify received */
	enum tls_fail fail;
};

static inline void count(struct tls_stats *st, enum tls_counter c, uint64_t n)
{
	__atomic_store_n(&st->c[c], __atomic_load_n(&st->c[c], __ATOMIC_RELAXED) + n,
			 __ATOMIC_RELAXED);
}

/* The first OpenSSL error in the queue as text, for tls_ctx_new()'s message. */
static void ssl_err(char *err, size_t len, const char *what, const char *arg)
{
	char buf[160] = "";
	unsigned long e = ERR_peek_last_error();

	if (e != 0)
		ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(err, len, "%s%s%s%s%s", what, arg ? " " : "", arg ? arg : "", buf[0] ? ": " : "",
		 buf);
	ERR_clear_error();
}

/* What both sides share: version floor, cipher lists, groups, renegotiation off. */
static int common_setup(SSL_CTX *ctx, const struct cfg_tls *cfg, char *err, size_t len)
{
	unsigned min = cfg->min_version ? cfg->min_version : CFG_TLS_V1_2;

	if (SSL_CTX_set_min_proto_version(ctx, (int)min) != 1) {
		ssl_err(err, len, "tls.min_version", NULL);
		return -1;
	}
	/* renegotiation is a CPU sink a client could drive at will (RFC 8446 drops it) */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	/* idle sessions hold no 34 KiB read/write buffers */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (cfg->ciphers != NULL && SSL_CTX_set_cipher_list(ctx, cfg->ciphers) != 1) {
		ssl_err(err, len, "tls.ciphers", cfg->ciphers);
		return -1;
	}
	if (cfg->ciphersuites != NULL && SSL_CTX_set_ciphersuites(ctx, cfg->ciphersuites) != 1) {
		ssl_err(err, len, "tls.ciphersuites", cfg->ciphersuites);
		return -1;
	}
	if (cfg->groups != NULL && SSL_CTX_set1_groups_list(ctx, cfg->groups) != 1) {
		ssl_err(err, len, "tls.groups", cfg->groups);
		return -1;
	}
	return 0;
}

static SSL_CTX *server_ctx(const struct cfg_tls *cfg, const uint8_t *keys, char *err, size_t len)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL) {
		ssl_err(err, len, "SSL_CTX_new", NULL);
		return NULL;
	}
	if (common_setup(ctx, cfg, err, len) != 0)
		goto fail;
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* OpenSSL keeps one certificate per key type: RSA and ECDSA side by side */
	for (unsigned i = 0; i < cfg->n_certs; i++) {
		const struct cfg_tls_cert *c = &cfg->certs[i];

		if (SSL_CTX_use_certificate_chain_file(ctx, c->cert) != 1) {
			ssl_err(err, len, "certificate", c->cert);
			goto fail;
		}
		if (SSL_CTX_use_PrivateKey_file(ctx, c->key, SSL_FILETYPE_PEM) != 1) {
			ssl_err(err, len, "key", c->key);
			goto fail;
		}
		if (SSL_CTX_check_private_key(ctx) != 1) {
			ssl_err(err, len, "key does not match", c->cert);
			goto fail;
		}
	}
	/* Resumption by tickets only (RFC 5077, RFC 8446 §4.6.1): no per-worker cache to miss */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (!cfg->session_tickets) {
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
		SSL_CTX_set_num_tickets(ctx, 0);
	} else {
		SSL_CTX_set_num_tickets(ctx, 1);
		if (keys != NULL &&
		    SSL_CTX_set_tlsext_ticket_keys(ctx, (void *)keys, TLS_TICKET_KEYS_LEN) != 1) {
			ssl_err(err, len, "session ticket keys", NULL);
			goto fail;
		}
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

static SSL_CTX *client_ctx(const struct cfg_tls *cfg, char *err, size_t len)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL) {
		ssl_err(err, len, "SSL_CTX_new", NULL);
		return NULL;
	}
	if (common_setup(ctx, cfg, err, len) != 0)
		goto fail;
	if (cfg->ca_file != NULL ? SSL_CTX_load_verify_file(ctx, cfg->ca_file) != 1
				 : SSL_CTX_set_default_verify_paths(ctx) != 1) {
		ssl_err(err, len, "tls.ca_file", cfg->ca_file);
		goto fail;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL); /* per connection: tls_client_new() */
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

struct tls_ctx *tls_ctx_new(const struct cfg_tls *cfg, const uint8_t *ticket_keys, char *err,
			    size_t errlen)
{
	struct tls_ctx *t = calloc(1, sizeof(*t));

	if (t == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (cfg->n_certs > 0) {
		t->server = server_ctx(cfg, ticket_keys, err, errlen);
		if (t->server == NULL)
			goto fail;
	}
	t->client = client_ctx(cfg, err, errlen);
	if (t->client == NULL)
		goto fail;
	return t;
fail:
	tls_ctx_free(t);
	return NULL;
}

void tls_ctx_free(struct tls_ctx *t)
{
	if (t == NULL)
		return;
	SSL_CTX_free(t->server);
	SSL_CTX_free(t->client);
	free(t);
}

bool tls_ctx_has_server(const struct tls_ctx *t)
{
	return t != NULL && t->server != NULL;
}

static struct tls_conn *conn_new(SSL_CTX *ctx, struct tls_stats *stats, bool server)
{
	struct tls_conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->ssl = SSL_new(ctx);
	c->rbio = BIO_new(BIO_s_mem());
	c->wbio = BIO_new(BIO_s_mem());
	if (c->ssl == NULL || c->rbio == NULL || c->wbio == NULL) {
		SSL_free(c->ssl);
		BIO_free(c->rbio);
		BIO_free(c->wbio);
		free(c);
		ERR_clear_error();
		return NULL;
	}
	/* an empty read BIO means "wait", never end of file */
	BIO_set_mem_eof_return(c->rbio, -1);
	SSL_set_bio(c->ssl, c->rbio, c->wbio);
	c->stats = stats;
	c->server = server;
	if (server)
		SSL_set_accept_state(c->ssl);
	else
		SSL_set_connect_state(c->ssl);
	return c;
}

struct tls_conn *tls_server_new(struct tls_ctx *t, struct tls_stats *stats)
{
	if (t == NULL || t->server == NULL)
		return NULL;
	return conn_new(t->server, stats, true);
}

struct tls_conn *tls_client_new(struct tls_ctx *t, struct tls_stats *stats, const char *host,
				bool verify)
{
	struct in_addr a;
	struct tls_conn *c = conn_new(t->client, stats, false);

	if (c == NULL)
		return NULL;
	/* RFC 6066 §3: no address literals in SNI */
	if (host != NULL && inet_pton(AF_INET, host, &a) != 1 &&
	    SSL_set_tlsext_host_name(c->ssl, host) != 1)
		goto fail;
	if (verify) {
		SSL_set_verify(c->ssl, SSL_VERIFY_PEER, NULL);
		/* an address literal is matched against the certificate's IP SANs */
		if (host != NULL && (inet_pton(AF_INET, host, &a) == 1
					     ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl),
									     host) != 1
					     : SSL_set1_host(c->ssl, host) != 1))
			goto fail;
	}
	return c;
fail:
	ERR_clear_error();
	tls_conn_free(c);
	return NULL;
}

void tls_conn_free(struct tls_conn *c)
{
	if (c == NULL)
		return;
	SSL_free(c->ssl); /* and its BIOs */
	free(c);
}

int tls_input(struct tls_conn *c, const uint8_t *p, size_t n)
{
	while (n > 0) {
		int k = n > INT32_MAX ? INT32_MAX : (int)n;
		int w = BIO_write(c->rbio, p, k);

		if (w <= 0)
			return -ENOMEM;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

size_t tls_input_pending(const struct tls_conn *c)
{
	return BIO_ctrl_pending(c->rbio);
}

/* OpenSSL's reason for a failed handshake or record, as one of ours. */
static enum tls_fail classify(unsigned long e)
{
	int r;

	if (e == 0)
		return TLS_FAIL_OTHER;
	if (ERR_GET_LIB(e) != ERR_LIB_SSL)
		return TLS_FAIL_OTHER;
	r = ERR_GET_REASON(e);
	switch (r) {
	case SSL_R_UNSUPPORTED_PROTOCOL:
	case SSL_R_VERSION_TOO_LOW:
	case SSL_R_NO_PROTOCOLS_AVAILABLE:
	case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
		return TLS_FAIL_VERSION;
	case SSL_R_NO_SHARED_CIPHER:
	case SSL_R_NO_SHARED_GROUPS:
	case SSL_R_NO_SUITABLE_KEY_SHARE:
		return TLS_FAIL_CIPHER;
	case SSL_R_CERTIFICATE_VERIFY_FAILED:
		return TLS_FAIL_VERIFY;
	case SSL_R_UNEXPECTED_EOF_WHILE_READING:
		return TLS_FAIL_CLOSED;
	default:
		break;
	}
	if (r >= SSL_AD_REASON_OFFSET) /* an alert the peer sent us */
		return TLS_FAIL_ALERT;
	return TLS_FAIL_PROTOCOL; /* wrong version number, HTTP request, bad length... */
}

static const enum tls_counter fail_counter[] = {
	[TLS_OK] = TLS_C_TLS_FAIL_OTHER,
	[TLS_FAIL_PROTOCOL] = TLS_C_TLS_FAIL_PROTOCOL,
	[TLS_FAIL_VERSION] = TLS_C_TLS_FAIL_VERSION,
	[TLS_FAIL_CIPHER] = TLS_C_TLS_FAIL_CIPHER,
	[TLS_FAIL_VERIFY] = TLS_C_TLS_FAIL_VERIFY,
	[TLS_FAIL_CLOSED] = TLS_C_TLS_FAIL_CLOSED,
	[TLS_FAIL_TIMEOUT] = TLS_C_TLS_FAIL_TIMEOUT,
	[TLS_FAIL_ALERT] = TLS_C_TLS_FAIL_ALERT,
	[TLS_FAIL_OTHER] = TLS_C_TLS_FAIL_OTHER,
};

static void fail(struct tls_conn *c, enum tls_fail why)
{
	if (c->fail == TLS_OK)
		c->fail = why;
	if (c->counted_fail)
		return;
	c->counted_fail = true;
	count(c->stats, c->done ? TLS_C_TLS_ERRORS_AFTER_HANDSHAKE : fail_counter[why], 1);
}

/* The handshake just completed: count it by version, cipher and resumption. */
static void count_done(struct tls_conn *c)
{
	const SSL_CIPHER *ci = SSL_get_current_cipher(c->ssl);
	const char *name = ci != NULL ? SSL_CIPHER_get_name(ci) : "";
	enum tls_counter v, k;

	count(c->stats, TLS_C_TLS_HANDSHAKES, 1);
	count(c->stats, c->server ? TLS_C_TLS_HANDSHAKES_SERVER : TLS_C_TLS_HANDSHAKES_CLIENT, 1);
	switch (SSL_version(c->ssl)) {
	case TLS1_2_VERSION:
		v = TLS_C_TLS_V1_2;
		break;
	case TLS1_3_VERSION:
		v = TLS_C_TLS_V1_3;
		break;
	default:
		v = TLS_C_TLS_V_OTHER;
		break;
	}
	count(c->stats, v, 1);
	/* OpenSSL's names: "TLS_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256"... */
	if (strstr(name, "AES_128_GCM") || strstr(name, "AES128-GCM"))
		k = TLS_C_TLS_CIPHER_AES128_GCM;
	else if (strstr(name, "AES_256_GCM") || strstr(name, "AES256-GCM"))
		k = TLS_C_TLS_CIPHER_AES256_GCM;
	else if (strstr(name, "CHACHA20"))
		k = TLS_C_TLS_CIPHER_CHACHA20;
	else
		k = TLS_C_TLS_CIPHER_OTHER;
	count(c->stats, k, 1);
	if (SSL_session_reused(c->ssl))
		count(c->stats, TLS_C_TLS_RESUMED, 1);
}

/* Drives the handshake: 1 done, 0 wants input, -EPROTO failed. */
static int handshake(struct tls_conn *c)
{
	uint64_t t0;
	int r, e;

	if (c->done)
		return 1;
	if (c->fail != TLS_OK)
		return -EPROTO;
	t0 = cycles();
	r = SSL_do_handshake(c->ssl);
	count(c->stats, TLS_C_TLS_HANDSHAKE_CYCLES, cycles() - t0);
	if (r == 1) {
		c->done = true;
		count_done(c);
		return 1;
	}
	e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return 0;
	fail(c, e == SSL_ERROR_SSL ? classify(ERR_peek_last_error()) : TLS_FAIL_OTHER);
	ERR_clear_error();
	return -EPROTO;
}

ssize_t tls_read(struct tls_conn *c, void *buf, size_t n)
{
	int r, e;

	if (c->closed)
		return -EPIPE;
	r = handshake(c);
	if (r <= 0)
		return r;
	if (n == 0)
		return 0;
	r = SSL_read(c->ssl, buf, n > INT32_MAX ? INT32_MAX : (int)n);
	if (r > 0)
		return r;
	e = SSL_get_error(c->ssl, r);
	switch (e) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return 0;
	case SSL_ERROR_ZERO_RETURN:
		c->closed = true;
		return -EPIPE;
	default:
		fail(c, e == SSL_ERROR_SSL ? classify(ERR_peek_last_error()) : TLS_FAIL_OTHER);
		ERR_clear_error();
		return -EPROTO;
	}
}

ssize_t tls_write(struct tls_conn *c, const void *p, size_t n)
{
	int r = handshake(c);

	if (r <= 0)
		return r;
	if (n == 0)
		return 0;
	/* a memory BIO takes everything: one call, no partial writes */
	r = SSL_write(c->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
	if (r > 0)
		return r;
	fail(c, TLS_FAIL_OTHER);
	ERR_clear_error();
	return -EPROTO;
}

size_t tls_output(struct tls_conn *c, const uint8_t **p)
{
	char *data = NULL;
	long n = BIO_get_mem_data(c->wbio, &data);

	*p = (const uint8_t *)data;
	return n > 0 ? (size_t)n : 0;
}

void tls_output_done(struct tls_conn *c, size_t n)
{
	uint8_t scratch[4096];

	if (n >= BIO_ctrl_pending(c->wbio)) {
		(void)BIO_reset(c->wbio);
		return;
	}
	while (n > 0) {
		int k = BIO_read(c->wbio, scratch, n < sizeof(scratch) ? (int)n : (int)sizeof(scratch));

		if (k <= 0)
			break;
		n -= (size_t)k;
	}
}

void tls_close(struct tls_conn *c)
{
	if (c->done && c->fail == TLS_OK)
		(void)SSL_shutdown(c->ssl);
	ERR_clear_error();
}

bool tls_handshake_done(const struct tls_conn *c)
{
	return c->done;
}

void tls_peer_closed(struct tls_conn *c)
{
	if (!c->done && c->fail == TLS_OK)
		fail(c, TLS_FAIL_CLOSED);
}

void tls_timed_out(struct tls_conn *c)
{
	if (!c->done && c->fail == TLS_OK)
		fail(c, TLS_FAIL_TIMEOUT);
}

enum tls_fail tls_conn_fail(const struct tls_conn *c)
{
	return c->fail;
}

const char *tls_conn_version(const struct tls_conn *c)
{
	return c->done ? SSL_get_version(c->ssl) : "";
}

const char *tls_conn_cipher(const struct tls_conn *c)
{
	return c->done ? SSL_get_cipher_name(c->ssl) : "";
}

bool tls_conn_resumed(const struct tls_conn *c)
{
	return c->done && SSL_session_reused(c->ssl);
}

struct tls_session *tls_conn_session(struct tls_conn *c)
{
	SSL_SESSION *s, *d;

	if (c->server || !c->done)
		return NULL;
	s = SSL_get1_session(c->ssl);
	if (s == NULL)
		return NULL;
	/* a copy: freeing C without a close_notify marks its own session unresumable */
	d = SSL_SESSION_is_resumable(s) == 1 ? SSL_SESSION_dup(s) : NULL;
	SSL_SESSION_free(s);
	ERR_clear_error();
	return (struct tls_session *)d;
}

int tls_conn_resume(struct tls_conn *c, struct tls_session *s)
{
	if (c->server || c->done || SSL_in_before(c->ssl) != 1 ||
	    SSL_set_session(c->ssl, (SSL_SESSION *)s) != 1) {
		ERR_clear_error();
		return -EINVAL;
	}
	return 0;
}

void tls_session_free(struct tls_session *s)
{
	SSL_SESSION_free((SSL_SESSION *)s);
}

void *tls_conn_ssl(struct tls_conn *c)
{
	return c->ssl;
}
