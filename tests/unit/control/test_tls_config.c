/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The "tls:" section and the listeners' "tls:" mode as an operator writes
 * them: defaults, RSA and ECDSA side by side, and each mistake as one
 * "FILE:LINE:COLUMN: key.path: what" line -- files that cannot be read, a
 * key that belongs to another certificate, lists OpenSSL does not know.
 * Certificates are made by the openssl tool in a temporary directory.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <openssl/evp.h>

#include "control/config/config.h"
#include "cfg_load.h"

#define PORTS                                                                                      \
	"dataplane:\n  ports:\n    - device: net_tap0\n      addresses: [198.51.100.2/24]\n"

static char dir[64];

static void make_certs(void)
{
	char cmd[1024];

	snprintf(dir, sizeof(dir), "/tmp/mxgate-tls-cfg-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(cmd, sizeof(cmd),
		 "cd %s && openssl req -x509 -newkey rsa:2048 -nodes -keyout rsa.key -out rsa.pem "
		 "-days 2 -subj /CN=mx.example.com 2>/dev/null && "
		 "openssl req -x509 -newkey rsa:2048 -nodes -keyout rsa2.key -out rsa2.pem "
		 "-days 2 -subj /CN=mx.example.com 2>/dev/null && "
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ec.key "
		 "-out ec.pem -days 2 -subj /CN=mx.example.com 2>/dev/null",
		 dir);
	cr_assert_eq(system(cmd), 0);
}

static void rm_certs(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(tls_config, .init = make_certs, .fini = rm_certs, .timeout = 60);

/* printf into a buffer the test frees. */
static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, f);
	cr_assert_geq(vasprintf(&s, f, ap), 0);
	va_end(ap);
	return s;
}

/* "tls:" with one certificate entry: line 6 is "- cert:", line 7 "key:" (after PORTS). */
static char *one_pair(const char *cert, const char *key, const char *more)
{
	return fmt(PORTS "tls:\n  certificates:\n    - cert: %s/%s\n      key: %s/%s\n%s", dir, cert,
		   dir, key, more);
}

Test(tls_config, without_a_section_no_listener_speaks_tls)
{
	struct cfg *c = load_ok(PORTS "listeners:\n  - port: 25\n");

	cr_assert_eq(c->tls.n_certs, 0);
	cr_assert_eq(c->tls.min_version, CFG_TLS_V1_2);
	cr_assert(c->tls.session_tickets);
	cr_assert_eq(c->tls.handshake_timeout_ms, 30000);
	cr_assert_null(c->tls.ca_file);
	cr_assert_eq(c->listeners[0].tls, CFG_LISTENER_TLS_NONE);
	cfg_free(c);
	no_leaks();
}

Test(tls_config, rsa_and_ecdsa_side_by_side_and_every_key_read)
{
	char *y = fmt(PORTS "tls:\n  certificates:\n"
			    "    - {cert: %s/rsa.pem, key: %s/rsa.key}\n"
			    "    - {cert: %s/ec.pem, key: %s/ec.key}\n"
			    "  min_version: TLSv1.3\n  ciphers: ECDHE+AESGCM\n"
			    "  ciphersuites: TLS_AES_128_GCM_SHA256\n  groups: X25519:P-256\n"
			    "  session_tickets: false\n  handshake_timeout_ms: 5000\n"
			    "  ca_file: %s/rsa.pem\n"
			    "listeners:\n  - port: 25\n  - port: 465\n    tls: implicit\n"
			    "  - port: 2525\n    tls: none\n",
		      dir, dir, dir, dir, dir);
	struct cfg *c = load_ok(y);

	cr_assert_eq(c->tls.n_certs, 2);
	cr_assert_eq(c->tls.certs[0].key_type, EVP_PKEY_RSA);
	cr_assert_eq(c->tls.certs[1].key_type, EVP_PKEY_EC);
	cr_assert_eq(c->tls.min_version, CFG_TLS_V1_3);
	cr_assert_str_eq(c->tls.ciphers, "ECDHE+AESGCM");
	cr_assert_str_eq(c->tls.ciphersuites, "TLS_AES_128_GCM_SHA256");
	cr_assert_str_eq(c->tls.groups, "X25519:P-256");
	cr_assert_not(c->tls.session_tickets);
	cr_assert_eq(c->tls.handshake_timeout_ms, 5000);
	cr_assert_not_null(c->tls.ca_file);
	cr_assert_eq(c->listeners[0].tls, CFG_LISTENER_TLS_STARTTLS, "the default with a certificate");
	cr_assert_eq(c->listeners[1].tls, CFG_LISTENER_TLS_IMPLICIT);
	cr_assert_eq(c->listeners[2].tls, CFG_LISTENER_TLS_NONE);
	cfg_free(c);
	free(y);
	no_leaks();
}

Test(tls_config, an_unreadable_certificate_file_is_an_error_at_its_key)
{
	char *y = one_pair("missing.pem", "rsa.key", "");
	char *want = fmt("t.yaml:7:13: tls.certificates[0].cert: cannot read %s/missing.pem: No "
			 "such file or directory\n",
			 dir);

	expect_errors(y, want);
	free(y);
	free(want);
}

Test(tls_config, an_unreadable_key_file_is_an_error_at_its_key)
{
	char *y = one_pair("rsa.pem", "missing.key", "");
	char *want = fmt("t.yaml:8:12: tls.certificates[0].key: cannot read %s/missing.key: No "
			 "such file or directory\n",
			 dir);

	expect_errors(y, want);
	free(y);
	free(want);
}

Test(tls_config, a_key_that_does_not_match_its_certificate_is_an_error)
{
	char *y = one_pair("rsa.pem", "rsa2.key", "");
	char *want = fmt("t.yaml:8:12: tls.certificates[0].key: the key in %s/rsa2.key does not "
			 "match the certificate in %s/rsa.pem\n",
			 dir, dir);

	expect_errors(y, want);
	free(y);
	free(want);
}

Test(tls_config, a_key_where_the_certificate_belongs_is_not_pem_certificate)
{
	char *y = one_pair("rsa.key", "rsa.key", "");
	char *want = fmt("t.yaml:7:13: tls.certificates[0].cert: %s/rsa.key holds no PEM "
			 "certificate (\"BEGIN CERTIFICATE\")\n",
			 dir);

	expect_errors(y, want);
	free(y);
	free(want);
}

Test(tls_config, two_certificates_of_one_key_type_are_refused)
{
	char *y = fmt(PORTS "tls:\n  certificates:\n"
			    "    - {cert: %s/rsa.pem, key: %s/rsa.key}\n"
			    "    - {cert: %s/rsa2.pem, key: %s/rsa2.key}\n",
		      dir, dir, dir, dir);

	expect_errors(y, "t.yaml:8:7: tls.certificates[1]: a second RSA certificate (the first "
			 "is certificates[0]); one per key type\n");
	free(y);
}

Test(tls_config, versions_and_lists_openssl_does_not_know_are_refused)
{
	char *y = one_pair("ec.pem", "ec.key",
			   "  min_version: SSLv3\n  ciphers: NOT-A-CIPHER\n  groups: P-999\n");

	expect_errors(y, "t.yaml:9:16: tls.min_version: 'SSLv3' is not one of: TLSv1, TLSv1.0, "
			 "TLSv1.1, TLSv1.2, TLSv1.3\n"
			 "t.yaml:10:12: tls.ciphers: 'NOT-A-CIPHER' names no cipher OpenSSL knows "
			 "(see openssl ciphers -v)\n"
			 "t.yaml:11:11: tls.groups: 'P-999' is not a group list OpenSSL knows "
			 "(X25519:P-256:...)\n");
	free(y);
}

Test(tls_config, a_tls_listener_without_a_certificate_is_refused)
{
	expect_errors(PORTS "listeners:\n  - port: 465\n    tls: implicit\n"
			    "  - port: 25\n    tls: starttls\n",
		      "t.yaml:7:10: listeners[0].tls: implicit needs a certificate: add "
		      "tls.certificates\n"
		      "t.yaml:9:10: listeners[1].tls: starttls needs a certificate: add "
		      "tls.certificates\n");
}

Test(tls_config, an_unknown_listener_mode_is_refused)
{
	char *y = one_pair("ec.pem", "ec.key", "listeners:\n  - port: 25\n    tls: always\n");

	expect_errors(y, "t.yaml:11:10: listeners[0].tls: 'always' is not one of: none, "
			 "starttls, implicit\n");
	free(y);
}

Test(tls_config, next_hops_take_a_tls_policy_and_a_name_to_verify)
{
	struct cfg *c = load_ok(PORTS "routes:\n  smarthost:\n"
				      "    - {address: 198.51.100.9, tls: encrypt, "
				      "tls_name: hop.example.net}\n"
				      "  domains:\n    - domain: example.com\n      next_hops:\n"
				      "        - {address: 198.51.100.10, tls: may}\n"
				      "        - {address: 198.51.100.11}\n");

	cr_assert_eq(c->routes.smarthost[0].tls, CFG_HOP_TLS_ENCRYPT);
	cr_assert_str_eq(c->routes.smarthost[0].tls_name, "hop.example.net");
	cr_assert_eq(c->routes.domains[0].hops[0].tls, CFG_HOP_TLS_MAY);
	cr_assert_str_eq(c->routes.domains[0].hops[0].tls_name, "");
	cr_assert_eq(c->routes.domains[0].hops[1].tls, CFG_HOP_TLS_NONE, "none by default");
	cfg_free(c);
	no_leaks();
}

Test(tls_config, a_next_hop_tls_policy_or_name_that_makes_no_sense_is_refused)
{
	expect_errors(PORTS "routes:\n  smarthost:\n"
			    "    - {address: 198.51.100.9, tls: always, tls_name: \"hop example\"}\n",
		      "t.yaml:7:36: routes.smarthost[0].tls: 'always' is not one of: none, may, "
		      "encrypt\n"
		      "t.yaml:7:54: routes.smarthost[0].tls_name: 'hop example' is not a host name "
		      "(letters, digits, '-' and '.')\n");
}
