/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The "tls:" section. Certificates and keys are opened and matched here, at
 * load time, so a typo in a path or a key from another certificate is a
 * config error with its line and column (mxgatectl config check says so
 * before a reload), never a dataplane that starts and then fails handshakes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cyaml/cyaml.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "control/config/config.h"
#include "control/config/config_priv.h"

/* clang-format off */

static const cyaml_schema_field_t cert_fields[] = {
	CFG_STR("cert", struct cfg_raw_tls_cert, cert),
	CFG_STR("key", struct cfg_raw_tls_cert, key),
	CYAML_FIELD_END
};

static const cyaml_schema_value_t cert_entry = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct cfg_raw_tls_cert, cert_fields),
};

const cyaml_schema_field_t cfg_tls_fields[] = {
	CYAML_FIELD_SEQUENCE_COUNT("certificates", CFG_OPT_NULL, struct cfg_raw_tls, certificates,
				   n_certificates, &cert_entry, 0, CYAML_UNLIMITED),
	CFG_STR("min_version", struct cfg_raw_tls, min_version),
	CFG_STR("ciphers", struct cfg_raw_tls, ciphers),
	CFG_STR("ciphersuites", struct cfg_raw_tls, ciphersuites),
	CFG_STR("groups", struct cfg_raw_tls, groups),
	CFG_STR("session_tickets", struct cfg_raw_tls, session_tickets),
	CFG_STR("handshake_timeout_ms", struct cfg_raw_tls, handshake_timeout_ms),
	CFG_STR("ca_file", struct cfg_raw_tls, ca_file),
	CYAML_FIELD_END
};

/* clang-format on */

/* Never prompt for a pass phrase: an encrypted key is an error here. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

static const char *key_type_name(int id)
{
	switch (id) {
	case EVP_PKEY_RSA:
		return "RSA";
	case EVP_PKEY_EC:
		return "ECDSA";
	case EVP_PKEY_ED25519:
		return "Ed25519";
	case EVP_PKEY_ED448:
		return "Ed448";
	default:
		return "unknown";
	}
}

/* Opens PATH for reading, or says why not at the key that named it. */
static FILE *open_pem(struct cfg_ctx *x, const char *key_path, const char *file)
{
	FILE *f = fopen(file, "r");

	if (f == NULL)
		cfg_error(x, cfg_pos_value(x, key_path), key_path, "cannot read %s: %s", file,
			  strerror(errno));
	return f;
}

/* The certificate and key of one entry: readable, PEM, and one pair. */
static void check_pair(struct cfg_ctx *x, unsigned i, struct cfg_tls_cert *c)
{
	char cpath[64], kpath[64];
	X509 *crt = NULL;
	EVP_PKEY *key = NULL;
	FILE *f;

	cfg_pathf(cpath, sizeof(cpath), "tls.certificates[%u].cert", i);
	cfg_pathf(kpath, sizeof(kpath), "tls.certificates[%u].key", i);
	f = open_pem(x, cpath, c->cert);
	if (f != NULL) {
		crt = PEM_read_X509(f, NULL, no_passphrase, NULL);
		fclose(f);
		if (crt == NULL)
			cfg_error(x, cfg_pos_value(x, cpath), cpath,
				  "%s holds no PEM certificate (\"BEGIN CERTIFICATE\")", c->cert);
	}
	f = open_pem(x, kpath, c->key);
	if (f != NULL) {
		key = PEM_read_PrivateKey(f, NULL, no_passphrase, NULL);
		fclose(f);
		if (key == NULL)
			cfg_error(x, cfg_pos_value(x, kpath), kpath,
				  "%s holds no unencrypted PEM private key", c->key);
	}
	ERR_clear_error();
	if (crt != NULL && key != NULL) {
		if (X509_check_private_key(crt, key) != 1)
			cfg_error(x, cfg_pos_value(x, kpath), kpath,
				  "the key in %s does not match the certificate in %s", c->key,
				  c->cert);
		c->key_type = EVP_PKEY_get_base_id(key);
		ERR_clear_error();
	}
	X509_free(crt);
	EVP_PKEY_free(key);
}

/* Cipher, suite and group lists as OpenSSL reads them: a typo is an error now. */
static void check_lists(struct cfg_ctx *x, const struct cfg_tls *t)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_method());

	if (ctx == NULL) {
		x->oom = true;
		return;
	}
	if (t->ciphers != NULL && SSL_CTX_set_cipher_list(ctx, t->ciphers) != 1)
		cfg_error(x, cfg_pos_value(x, "tls.ciphers"), "tls.ciphers",
			  "'%s' names no cipher OpenSSL knows (see openssl ciphers -v)", t->ciphers);
	if (t->ciphersuites != NULL && (SSL_CTX_set_ciphersuites(ctx, t->ciphersuites) != 1 ||
					t->ciphersuites[0] == '\0'))
		cfg_error(x, cfg_pos_value(x, "tls.ciphersuites"), "tls.ciphersuites",
			  "'%s' is not a TLS 1.3 suite list (TLS_AES_128_GCM_SHA256:...)",
			  t->ciphersuites);
	if (t->groups != NULL && SSL_CTX_set1_groups_list(ctx, t->groups) != 1)
		cfg_error(x, cfg_pos_value(x, "tls.groups"), "tls.groups",
			  "'%s' is not a group list OpenSSL knows (X25519:P-256:...)", t->groups);
	ERR_clear_error();
	SSL_CTX_free(ctx);
}

void cfg_tls_build(struct cfg_ctx *x, const struct cfg_raw_tls *raw, struct cfg_tls *t)
{
	static const struct cfg_raw_tls none;
	static const struct cfg_enum versions[] = {
		{ "TLSv1", CFG_TLS_V1_0 },     { "TLSv1.0", CFG_TLS_V1_0 },
		{ "TLSv1.1", CFG_TLS_V1_1 },   { "TLSv1.2", CFG_TLS_V1_2 },
		{ "TLSv1.3", CFG_TLS_V1_3 },   { NULL, 0 },
	};
	char path[64];
	int v = CFG_TLS_V1_2;

	if (raw == NULL)
		raw = &none;
	if (raw->n_certificates > CFG_TLS_MAX_CERTS)
		cfg_error(x, cfg_pos_key(x, "tls.certificates"), "tls.certificates",
			  "%u certificates; at most %d (one per key type)", raw->n_certificates,
			  CFG_TLS_MAX_CERTS);
	t->n_certs = 0;
	for (unsigned i = 0; i < raw->n_certificates && i < CFG_TLS_MAX_CERTS; i++) {
		const struct cfg_raw_tls_cert *r = &raw->certificates[i];
		struct cfg_tls_cert *c = &t->certs[t->n_certs++];
		int a, b;

		cfg_pathf(path, sizeof(path), "tls.certificates[%u]", i);
		if (r->cert == NULL || r->key == NULL) {
			cfg_error(x, cfg_pos_value(x, path), path,
				  "needs both cert: and key: (PEM files)");
			continue;
		}
		a = cfg_get_str(x, cfg_pathf(path, sizeof(path), "tls.certificates[%u].cert", i),
				r->cert, NULL, &c->cert);
		b = cfg_get_str(x, cfg_pathf(path, sizeof(path), "tls.certificates[%u].key", i),
				r->key, NULL, &c->key);
		if (a == 0 && b == 0 && c->cert != NULL && c->key != NULL)
			check_pair(x, i, c);
	}
	/* OpenSSL keeps one certificate per key type: a second would replace the first */
	for (unsigned i = 0; i < t->n_certs; i++)
		for (unsigned j = 0; j < i; j++) {
			if (t->certs[i].key_type == 0 || t->certs[i].key_type != t->certs[j].key_type)
				continue;
			cfg_pathf(path, sizeof(path), "tls.certificates[%u]", i);
			cfg_error(x, cfg_pos_value(x, path), path,
				  "a second %s certificate (the first is certificates[%u]); one "
				  "per key type", key_type_name(t->certs[i].key_type), j);
		}
	cfg_get_enum(x, "tls.min_version", raw->min_version, versions, CFG_TLS_V1_2, &v);
	t->min_version = (unsigned)v;
	cfg_get_str(x, "tls.ciphers", raw->ciphers, NULL, &t->ciphers);
	cfg_get_str(x, "tls.ciphersuites", raw->ciphersuites, NULL, &t->ciphersuites);
	cfg_get_str(x, "tls.groups", raw->groups, NULL, &t->groups);
	check_lists(x, t);
	cfg_get_bool(x, "tls.session_tickets", raw->session_tickets, true, &t->session_tickets);
	/* Postfix's smtpd_starttls_timeout is 300 s; a handshake needs a few round trips */
	cfg_get_uint(x, "tls.handshake_timeout_ms", raw->handshake_timeout_ms, 100, 600000, 30000,
		     &t->handshake_timeout_ms);
	if (cfg_get_str(x, "tls.ca_file", raw->ca_file, NULL, &t->ca_file) == 0 &&
	    t->ca_file != NULL && access(t->ca_file, R_OK) != 0)
		cfg_error(x, cfg_pos_value(x, "tls.ca_file"), "tls.ca_file", "cannot read %s: %s",
			  t->ca_file, strerror(errno));
}

void cfg_tls_free(struct cfg_tls *t)
{
	for (unsigned i = 0; i < t->n_certs; i++) {
		free(t->certs[i].cert);
		free(t->certs[i].key);
	}
	free(t->ciphers);
	free(t->ciphersuites);
	free(t->groups);
	free(t->ca_file);
	memset(t, 0, sizeof(*t));
}

void cfg_listener_tls_build(struct cfg_ctx *x, const struct cfg_tls *t, unsigned i,
			    const char *raw, struct cfg_listener *l)
{
	static const struct cfg_enum modes[] = {
		{ "none", CFG_LISTENER_TLS_NONE },
		{ "starttls", CFG_LISTENER_TLS_STARTTLS },
		{ "implicit", CFG_LISTENER_TLS_IMPLICIT },
		{ NULL, 0 },
	};
	int def = t->n_certs > 0 ? CFG_LISTENER_TLS_STARTTLS : CFG_LISTENER_TLS_NONE;
	int v = def;
	char path[64];

	cfg_pathf(path, sizeof(path), "listeners[%u].tls", i);
	cfg_get_enum(x, path, raw, modes, def, &v);
	l->tls = (enum cfg_listener_tls)v;
	if (l->tls != CFG_LISTENER_TLS_NONE && t->n_certs == 0) {
		cfg_error(x, cfg_pos_value(x, path), path,
			  "%s needs a certificate: add tls.certificates", raw);
		l->tls = CFG_LISTENER_TLS_NONE;
	}
}

int cfg_hop_tls_build(struct cfg_ctx *x, const char *base, const char *tls, const char *name,
		      struct cfg_next_hop *h)
{
	static const struct cfg_enum levels[] = {
		{ "none", CFG_HOP_TLS_NONE },
		{ "may", CFG_HOP_TLS_MAY },
		{ "encrypt", CFG_HOP_TLS_ENCRYPT },
		{ NULL, 0 },
	};
	char path[160];
	int v = CFG_HOP_TLS_NONE, rc;

	rc = cfg_get_enum(x, cfg_pathf(path, sizeof(path), "%s.tls", base), tls, levels,
			  CFG_HOP_TLS_NONE, &v);
	h->tls = (uint8_t)v;
	h->tls_name[0] = '\0';
	if (name == NULL)
		return rc;
	cfg_pathf(path, sizeof(path), "%s.tls_name", base);
	if (name[0] == '\0' || strlen(name) >= CFG_TLS_NAME_MAX ||
	    strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.") !=
		    strlen(name)) {
		cfg_error(x, cfg_pos_value(x, path), path,
			  "'%s' is not a host name (letters, digits, '-' and '.')", name);
		return -1;
	}
	snprintf(h->tls_name, sizeof(h->tls_name), "%s", name);
	return rc;
}
