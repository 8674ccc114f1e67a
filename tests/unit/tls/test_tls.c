/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dataplane/tls/ in memory: our server against our client or a plain
 * OpenSSL client, bytes moved by hand between them. Certificates (a test CA,
 * an RSA-2048 and an ECDSA P-256 server certificate for mx.example.test)
 * are made by the openssl tool in a temporary directory per test.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "dataplane/tls/tls.h"

static char dir[64];
static char ca_pem[128], rsa_pem[128], rsa_key[128], ec_pem[128], ec_key[128];
static struct cfg_tls cfg;
static struct tls_stats sst, cst; /* server's, client's */

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
}

static void make_certs(void)
{
	snprintf(dir, sizeof(dir), "/tmp/mxgate-tls-unit-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(ca_pem, sizeof(ca_pem), "%s/ca.pem", dir);
	snprintf(rsa_pem, sizeof(rsa_pem), "%s/rsa.pem", dir);
	snprintf(rsa_key, sizeof(rsa_key), "%s/rsa.key", dir);
	snprintf(ec_pem, sizeof(ec_pem), "%s/ec.pem", dir);
	snprintf(ec_key, sizeof(ec_key), "%s/ec.key", dir);
	sh("cd %s && printf 'subjectAltName=DNS:mx.example.test\\n' > san.ext && "
	   "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key "
	   "-out ca.pem -days 2 -subj /CN=mxgate-test-ca 2>/dev/null && "
	   "openssl req -newkey rsa:2048 -nodes -keyout rsa.key -out rsa.csr "
	   "-subj /CN=mx.example.test 2>/dev/null && "
	   "openssl x509 -req -in rsa.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
	   "-extfile san.ext -out rsa.pem 2>/dev/null && "
	   "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ec.key "
	   "-out ec.csr -subj /CN=mx.example.test 2>/dev/null && "
	   "openssl x509 -req -in ec.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
	   "-extfile san.ext -out ec.pem 2>/dev/null",
	   dir);
	memset(&cfg, 0, sizeof(cfg));
	cfg.certs[0] = (struct cfg_tls_cert){.cert = rsa_pem, .key = rsa_key};
	cfg.certs[1] = (struct cfg_tls_cert){.cert = ec_pem, .key = ec_key};
	cfg.n_certs = 2;
	cfg.min_version = CFG_TLS_V1_2;
	cfg.session_tickets = true;
	cfg.handshake_timeout_ms = 30000;
	cfg.ca_file = ca_pem;
	memset(&sst, 0, sizeof(sst));
	memset(&cst, 0, sizeof(cst));
}

static void rm_certs(void)
{
	sh("rm -rf %s", dir);
}

TestSuite(tls, .init = make_certs, .fini = rm_certs, .timeout = 60);

static struct tls_ctx *ctx_new(const uint8_t *keys)
{
	char err[256] = "";
	struct tls_ctx *t = tls_ctx_new(&cfg, keys, err, sizeof(err));

	cr_assert_not_null(t, "tls_ctx_new: %s", err);
	return t;
}

/* Moves FROM's pending ciphertext to TO; returns the octets moved. */
static size_t move(struct tls_conn *from, struct tls_conn *to)
{
	const uint8_t *p;
	size_t n = tls_output(from, &p);

	if (n) {
		cr_assert_eq(tls_input(to, p, n), 0);
		tls_output_done(from, n);
	}
	return n;
}

/* Runs both sides until neither has anything to say. */
static void pump(struct tls_conn *a, struct tls_conn *b)
{
	uint8_t buf[256];

	for (int i = 0; i < 20; i++) {
		(void)tls_read(a, buf, 0);
		(void)tls_read(b, buf, 0);
		if (move(a, b) + move(b, a) == 0)
			return;
	}
	cr_assert_fail("the handshake did not settle");
}

/* ---- a plain OpenSSL client, for what our client API does not offer ---- */

struct raw {
	SSL_CTX *ctx;
	SSL *ssl;
	BIO *in, *out;
};

static void raw_new(struct raw *r, int max_version, SSL_SESSION *sess, const char *sigalgs)
{
	r->ctx = SSL_CTX_new(TLS_client_method());
	cr_assert_not_null(r->ctx);
	SSL_CTX_set_min_proto_version(r->ctx, TLS1_VERSION);
	SSL_CTX_set_security_level(r->ctx, 0); /* lets it offer TLS 1.0/1.1 to be refused */
	if (max_version)
		SSL_CTX_set_max_proto_version(r->ctx, max_version);
	r->ssl = SSL_new(r->ctx);
	if (sigalgs)
		cr_assert_eq(SSL_set1_sigalgs_list(r->ssl, sigalgs), 1);
	r->in = BIO_new(BIO_s_mem());
	r->out = BIO_new(BIO_s_mem());
	BIO_set_mem_eof_return(r->in, -1);
	SSL_set_bio(r->ssl, r->in, r->out);
	SSL_set_connect_state(r->ssl);
	if (sess)
		cr_assert_eq(SSL_set_session(r->ssl, sess), 1);
}

static void raw_free(struct raw *r)
{
	/* a session not shut down is marked unresumable when its SSL goes */
	(void)SSL_shutdown(r->ssl);
	SSL_free(r->ssl);
	SSL_CTX_free(r->ctx);
}

/* Client and server until quiet; the client's handshake result. */
static int raw_pump(struct raw *r, struct tls_conn *s)
{
	uint8_t buf[256];
	int rc = 0;

	for (int i = 0; i < 20; i++) {
		char *p;
		long n;
		size_t moved = 0;

		rc = SSL_do_handshake(r->ssl);
		if (rc == 1)
			(void)SSL_read(r->ssl, buf, sizeof(buf)); /* takes TLS 1.3 tickets */
		n = BIO_get_mem_data(r->out, &p);
		if (n > 0) {
			cr_assert_eq(tls_input(s, (uint8_t *)p, (size_t)n), 0);
			(void)BIO_reset(r->out);
			moved += (size_t)n;
		}
		(void)tls_read(s, buf, 0);
		const uint8_t *q;
		size_t m = tls_output(s, &q);

		if (m) {
			BIO_write(r->in, q, (int)m);
			tls_output_done(s, m);
			moved += m;
		}
		if (moved == 0)
			break;
	}
	return rc;
}

/* ---- tests ---- */

Test(tls, handshake_completes_and_data_flows_both_ways)
{
	struct tls_ctx *t = ctx_new(NULL);
	struct tls_conn *s = tls_server_new(t, &sst);
	struct tls_conn *c = tls_client_new(t, &cst, "mx.example.test", true);
	uint8_t buf[64];

	cr_assert_not_null(s);
	cr_assert_not_null(c);
	pump(c, s);
	cr_assert(tls_handshake_done(s));
	cr_assert(tls_handshake_done(c));
	cr_assert_str_eq(tls_conn_version(s), "TLSv1.3");
	cr_assert_eq(tls_write(s, "220 ready\r\n", 11), 11);
	move(s, c);
	cr_assert_eq(tls_read(c, buf, sizeof(buf)), 11);
	cr_assert_arr_eq(buf, "220 ready\r\n", 11);
	cr_assert_eq(tls_write(c, "EHLO x\r\n", 8), 8);
	move(c, s);
	cr_assert_eq(tls_read(s, buf, sizeof(buf)), 8);
	cr_assert_arr_eq(buf, "EHLO x\r\n", 8);
	cr_assert_eq(tls_read(s, buf, sizeof(buf)), 0, "nothing more: wait");
	cr_assert_eq(sst.c[TLS_C_TLS_HANDSHAKES_SERVER], 1);
	cr_assert_eq(sst.c[TLS_C_TLS_V1_3], 1);
	cr_assert_eq(sst.c[TLS_C_TLS_CIPHER_AES128_GCM] + sst.c[TLS_C_TLS_CIPHER_AES256_GCM] +
			     sst.c[TLS_C_TLS_CIPHER_CHACHA20],
		     1);
	cr_assert_gt(sst.c[TLS_C_TLS_HANDSHAKE_CYCLES], 0);
	cr_assert_eq(cst.c[TLS_C_TLS_HANDSHAKES_CLIENT], 1);
	/* close_notify ends the peer's reads */
	tls_close(c);
	move(c, s);
	cr_assert_eq(tls_read(s, buf, sizeof(buf)), -EPIPE);
	tls_conn_free(s);
	tls_conn_free(c);
	tls_ctx_free(t);
}

Test(tls, a_large_write_arrives_whole_across_records)
{
	struct tls_ctx *t = ctx_new(NULL);
	struct tls_conn *s = tls_server_new(t, &sst);
	struct tls_conn *c = tls_client_new(t, &cst, "mx.example.test", false);
	static uint8_t big[100000], got[100000];
	size_t have = 0;

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7);
	pump(c, s);
	cr_assert_eq(tls_write(c, big, sizeof(big)), (ssize_t)sizeof(big));
	move(c, s);
	while (have < sizeof(got)) {
		ssize_t n = tls_read(s, got + have, 1000); /* a small window: several calls */

		cr_assert_gt(n, 0);
		have += (size_t)n;
	}
	cr_assert_arr_eq(got, big, sizeof(big));
	cr_assert_eq(tls_input_pending(s), 0);
	tls_conn_free(s);
	tls_conn_free(c);
	tls_ctx_free(t);
}

Test(tls, a_tls12_client_is_served_and_counted)
{
	struct tls_ctx *t = ctx_new(NULL);
	struct tls_conn *s = tls_server_new(t, &sst);
	struct raw r;

	raw_new(&r, TLS1_2_VERSION, NULL, NULL);
	cr_assert_eq(raw_pump(&r, s), 1);
	cr_assert(tls_handshake_done(s));
	cr_assert_str_eq(tls_conn_version(s), "TLSv1.2");
	cr_assert_eq(sst.c[TLS_C_TLS_V1_2], 1);
	cr_assert_eq(sst.c[TLS_C_TLS_V1_3], 0);
	raw_free(&r);
	tls_conn_free(s);
	tls_ctx_free(t);
}

Test(tls, a_client_offering_only_tls11_is_refused_by_default)
{
	struct tls_ctx *t = ctx_new(NULL);
	struct tls_conn *s = tls_server_new(t, &sst);
	struct raw r;
	uint8_t buf[16];

	raw_new(&r, TLS1_1_VERSION, NULL, NULL);
	cr_assert_neq(raw_pump(&r, s), 1);
	cr_assert_not(tls_handshake_done(s));
	cr_assert_eq(tls_conn_fail(s), TLS_FAIL_VERSION);
	cr_assert_eq(tls_read(s, buf, sizeof(buf)), -EPROTO);
	cr_assert_eq(sst.c[TLS_C_TLS_FAIL_VERSION], 1, "counted once");
	cr_assert_eq(sst.c[TLS_C_TLS_HANDSHAKES], 0);
	raw_free(&r);
	tls_conn_free(s);
	tls_ctx_free(t);
}

Test(tls, garbage_instead_of_a_client_hello_fails_as_protocol)
{
	struct tls_ctx *t = ctx_new(NULL);
	struct tls_conn *s = tls_server_new(t, &sst);
	static const char junk[] = "EHLO client.example.com\r\nMAIL FROM:<a@b>\r\n";
	uint8_t buf[16];
	const uint8_t *p;

	cr_assert_eq(tls_input(s, (const uint8_t *)junk, sizeof(junk) - 1), 0);
	cr_assert_eq(tls_read(s, buf, sizeof(buf)), -EPROTO);
	cr_assert_eq(tls_conn_fail(s), TLS_FAIL_PROTOCOL);
	cr_assert_eq(sst.c[TLS_C_TLS_FAIL_PROTOCOL], 1);
	/* never plaintext back: at most an alert record (content type 21) */
	if (tls_output(s, &p) > 0)
		cr_assert_eq(p[0], 21);
	cr_assert_eq(tls_write(s, "250 ok\r\n", 8), -EPROTO);
	tls_peer_closed(s);
	cr_assert_eq(sst.c[TLS_C_TLS_FAIL_CLOSED], 0, "one failure, one count");
	tls_conn_free(s);
	tls_ctx_free(t);
}

Test(tls, a_client_hello_cut_short_and_a_close_counts_as_closed)
{
	struct tls_ctx *t = ctx_new(NULL);
	struct tls_conn *s = tls_server_new(t, &sst);
	struct tls_conn *c = tls_client_new(t, &cst, "mx.example.test", false);
	uint8_t buf[16];
	const uint8_t *p;
	size_t n;

	(void)tls_read(c, buf, 0);
	n = tls_output(c, &p);
	cr_assert_gt(n, 20);
	cr_assert_eq(tls_input(s, p, n / 2), 0);
	cr_assert_eq(tls_read(s, buf, sizeof(buf)), 0, "half a ClientHello: wait for more");
	cr_assert_not(tls_handshake_done(s));
	tls_peer_closed(s);
	cr_assert_eq(tls_conn_fail(s), TLS_FAIL_CLOSED);
	cr_assert_eq(sst.c[TLS_C_TLS_FAIL_CLOSED], 1);
	tls_conn_free(s);
	tls_conn_free(c);
	tls_ctx_free(t);
}

Test(tls, a_stalled_handshake_counts_as_a_timeout)
{
	struct tls_ctx *t = ctx_new(NULL);
	struct tls_conn *s = tls_server_new(t, &sst);

	tls_timed_out(s);
	cr_assert_eq(tls_conn_fail(s), TLS_FAIL_TIMEOUT);
	cr_assert_eq(sst.c[TLS_C_TLS_FAIL_TIMEOUT], 1);
	tls_conn_free(s);
	tls_ctx_free(t);
}

/* One TLS 1.2 or 1.3 session against server context T; returns the client's session. */
static SSL_SESSION *session_with(struct tls_ctx *t, int max_version, SSL_SESSION *resume,
				 bool *resumed)
{
	struct tls_conn *s = tls_server_new(t, &sst);
	struct raw r;
	SSL_SESSION *got;

	raw_new(&r, max_version, resume, NULL);
	cr_assert_eq(raw_pump(&r, s), 1);
	cr_assert(tls_handshake_done(s));
	*resumed = tls_conn_resumed(s);
	got = SSL_get1_session(r.ssl);
	raw_free(&r);
	tls_conn_free(s);
	return got;
}

Test(tls, a_ticket_from_one_worker_resumes_on_another)
{
	uint8_t keys[TLS_TICKET_KEYS_LEN];
	struct tls_ctx *w0, *w1;
	SSL_SESSION *sess, *again;
	bool resumed;

	for (size_t i = 0; i < sizeof(keys); i++)
		keys[i] = (uint8_t)(i * 13 + 5);
	w0 = ctx_new(keys);
	w1 = ctx_new(keys);
	for (int v = TLS1_2_VERSION; v <= TLS1_3_VERSION; v++) {
		sess = session_with(w0, v, NULL, &resumed);
		cr_assert_not(resumed);
		cr_assert_not_null(sess);
		cr_assert(SSL_SESSION_is_resumable(sess), "a ticket came with version %x", v);
		again = session_with(w1, v, sess, &resumed);
		cr_assert(resumed, "version %x resumed on the other worker", v);
		SSL_SESSION_free(sess);
		SSL_SESSION_free(again);
	}
	cr_assert_eq(sst.c[TLS_C_TLS_RESUMED], 2);
	cr_assert_eq(sst.c[TLS_C_TLS_HANDSHAKES], 4);
	tls_ctx_free(w0);
	tls_ctx_free(w1);
}

/* One client connection through our API, offering RESUME; returns its resumable session. */
static struct tls_session *client_session(struct tls_ctx *t, struct tls_session *resume,
					  bool *resumed)
{
	struct tls_conn *s = tls_server_new(t, &sst);
	struct tls_conn *c = tls_client_new(t, &cst, "mx.example.test", false);
	struct tls_session *got;
	uint8_t buf[64];

	cr_assert_null(tls_conn_session(c), "nothing to resume before the handshake");
	if (resume != NULL)
		cr_assert_eq(tls_conn_resume(c, resume), 0);
	pump(c, s);
	cr_assert(tls_handshake_done(c));
	cr_assert_eq(tls_conn_resume(c, resume), -EINVAL, "too late once it started");
	/* the TLS 1.3 ticket follows the handshake (RFC 8446 §4.6.1): read with the 220 */
	cr_assert_eq(tls_write(s, "220 ready\r\n", 11), 11);
	move(s, c);
	cr_assert_eq(tls_read(c, buf, sizeof(buf)), 11);
	*resumed = tls_conn_resumed(c);
	got = tls_conn_session(c);
	cr_assert_not_null(got, "a ticket came");
	cr_assert_null(tls_conn_session(s), "the server side has none to give");
	tls_conn_free(s);
	tls_conn_free(c);
	return got;
}

Test(tls, a_client_resumes_with_the_session_of_its_last_connection)
{
	struct tls_ctx *t = ctx_new(NULL);
	struct tls_session *first, *second;
	bool resumed;

	first = client_session(t, NULL, &resumed);
	cr_assert_not(resumed);
	second = client_session(t, first, &resumed);
	cr_assert(resumed, "the ticket of the first connection resumed the second");
	cr_assert_eq(cst.c[TLS_C_TLS_RESUMED], 1);
	cr_assert_eq(sst.c[TLS_C_TLS_RESUMED], 1);
	tls_session_free(first);
	tls_session_free(second);
	tls_session_free(NULL);
	tls_ctx_free(t);
}

Test(tls, without_tickets_nothing_resumes)
{
	struct tls_ctx *t;
	SSL_SESSION *sess, *again;
	bool resumed;

	cfg.session_tickets = false;
	t = ctx_new(NULL);
	sess = session_with(t, TLS1_3_VERSION, NULL, &resumed);
	again = session_with(t, TLS1_3_VERSION, sess, &resumed);
	cr_assert_not(resumed);
	cr_assert_eq(sst.c[TLS_C_TLS_RESUMED], 0);
	SSL_SESSION_free(sess);
	SSL_SESSION_free(again);
	tls_ctx_free(t);
}

/* The server's certificate key type when the client accepts only SIGALGS. */
static int cert_type_for(struct tls_ctx *t, const char *sigalgs)
{
	struct tls_conn *s = tls_server_new(t, &sst);
	struct raw r;
	X509 *x;
	int type;

	raw_new(&r, 0, NULL, sigalgs);
	cr_assert_eq(raw_pump(&r, s), 1, "handshake with %s", sigalgs);
	x = SSL_get1_peer_certificate(r.ssl);
	cr_assert_not_null(x);
	type = EVP_PKEY_get_base_id(X509_get0_pubkey(x));
	X509_free(x);
	raw_free(&r);
	tls_conn_free(s);
	return type;
}

Test(tls, rsa_and_ecdsa_certificates_sit_side_by_side)
{
	struct tls_ctx *t = ctx_new(NULL);

	cr_assert_eq(cert_type_for(t, "ECDSA+SHA256"), EVP_PKEY_EC);
	cr_assert_eq(cert_type_for(t, "RSA-PSS+SHA256:RSA+SHA256"), EVP_PKEY_RSA);
	tls_ctx_free(t);
}

Test(tls, the_client_verifies_the_next_hops_name)
{
	struct tls_ctx *t = ctx_new(NULL);
	struct tls_conn *s = tls_server_new(t, &sst);
	struct tls_conn *c = tls_client_new(t, &cst, "other.example.test", true);

	pump(c, s);
	cr_assert_not(tls_handshake_done(c));
	cr_assert_eq(tls_conn_fail(c), TLS_FAIL_VERIFY);
	cr_assert_eq(cst.c[TLS_C_TLS_FAIL_VERIFY], 1);
	cr_assert_eq(tls_conn_fail(s), TLS_FAIL_ALERT, "the server heard why");
	tls_conn_free(s);
	tls_conn_free(c);
	/* the same name without verification: encrypted, not authenticated ("may") */
	s = tls_server_new(t, &sst);
	c = tls_client_new(t, &cst, "other.example.test", false);
	pump(c, s);
	cr_assert(tls_handshake_done(c));
	tls_conn_free(s);
	tls_conn_free(c);
	tls_ctx_free(t);
}

Test(tls, an_unknown_ca_fails_verification)
{
	struct tls_ctx *t;
	struct tls_conn *s, *c;

	cfg.ca_file = NULL; /* the system's CAs: our test CA is not among them */
	t = ctx_new(NULL);
	s = tls_server_new(t, &sst);
	c = tls_client_new(t, &cst, "mx.example.test", true);
	pump(c, s);
	cr_assert_eq(tls_conn_fail(c), TLS_FAIL_VERIFY);
	tls_conn_free(s);
	tls_conn_free(c);
	tls_ctx_free(t);
}

Test(tls, no_certificate_means_no_server_side)
{
	struct tls_ctx *t;

	cfg.n_certs = 0;
	t = ctx_new(NULL);
	cr_assert_not(tls_ctx_has_server(t));
	cr_assert_null(tls_server_new(t, &sst));
	tls_ctx_free(t);
}

Test(tls, a_bad_cipher_list_is_reported)
{
	char err[256] = "";

	cfg.ciphers = "NOT-A-CIPHER";
	cr_assert_null(tls_ctx_new(&cfg, NULL, err, sizeof(err)));
	cr_assert_not_null(strstr(err, "tls.ciphers"), "%s", err);
}
