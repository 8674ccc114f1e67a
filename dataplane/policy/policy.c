/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Relay and recipient decisions (policy.h). Everything compares octets: the
 * config loader lower-cased the names, and only ASCII letters fold here.
 */
#include "dataplane/policy/policy.h"

#include <arpa/inet.h>
#include <string.h>

#define LOCAL_MAX 256 /* unquoted local part; longer ones match nothing */

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* A (ALEN octets) equals the NUL-terminated, lower-case B, ignoring ASCII case. */
static bool eq_nocase(const char *a, size_t alen, const char *b)
{
	size_t i;

	for (i = 0; i < alen; i++)
		if (b[i] == '\0' || lower(a[i]) != b[i])
			return false;
	return b[i] == '\0';
}

/* Does domain D (LEN octets, no final dot) match entry E? */
static bool domain_match(const struct cfg_domain *e, const char *d, size_t len)
{
	size_t n = strlen(e->name);

	if (!e->wildcard)
		return eq_nocase(d, len, e->name);
	/* "*.example.net": "x.example.net", "a.b.example.net", never "example.net" */
	return len > n + 1 && d[len - n - 1] == '.' && eq_nocase(d + len - n, n, e->name);
}

static size_t trim_dot(const char *d, size_t len)
{
	return len > 1 && d[len - 1] == '.' ? len - 1 : len;
}

bool policy_relay_network(const struct cfg_policy *p, uint32_t addr)
{
	uint32_t a = ntohl(addr);

	for (unsigned i = 0; i < p->n_relay_networks; i++) {
		const struct cfg_prefix *n = &p->relay_networks[i];
		uint32_t mask = n->len == 0 ? 0 : ~0u << (32 - n->len);

		if ((a & mask) == (ntohl(n->addr) & mask))
			return true;
	}
	return false;
}

bool policy_relay_domain(const struct cfg_policy *p, const char *domain, size_t len)
{
	if (len == 0 || domain[0] == '[')
		return false;
	len = trim_dot(domain, len);
	for (unsigned i = 0; i < p->n_relay_domains; i++)
		if (domain_match(&p->relay_domains[i], domain, len))
			return true;
	return false;
}

const struct cfg_recipients *policy_recipients_of(const struct cfg_policy *p, const char *domain,
						  size_t len)
{
	const struct cfg_recipients *wild = NULL;

	if (len == 0 || domain[0] == '[')
		return NULL;
	len = trim_dot(domain, len);
	for (unsigned i = 0; i < p->n_recipients; i++) {
		const struct cfg_recipients *r = &p->recipients[i];

		if (!domain_match(&r->domain, domain, len))
			continue;
		if (!r->domain.wildcard)
			return r;
		if (wild == NULL)
			wild = r;
	}
	return wild;
}

/* "\"a\\\"b\"" -> a"b in OUT; returns its length, or SIZE_MAX when it does not fit. */
static size_t unquote(const char *s, size_t len, char *out, size_t cap)
{
	size_t n = 0;

	if (len < 2 || s[0] != '"' || s[len - 1] != '"') {
		if (len > cap)
			return SIZE_MAX;
		memcpy(out, s, len);
		return len;
	}
	for (size_t i = 1; i + 1 < len; i++) {
		if (s[i] == '\\' && i + 2 < len)
			i++;
		if (n == cap)
			return SIZE_MAX;
		out[n++] = s[i];
	}
	return n;
}

bool policy_local_known(const struct cfg_recipients *r, const char *local, size_t local_len)
{
	char buf[LOCAL_MAX];
	size_t n;

	if (r->catch_all)
		return true;
	n = unquote(local, local_len, buf, sizeof(buf));
	if (n == SIZE_MAX)
		return false;
	for (unsigned i = 0; i < r->n_locals; i++) {
		const char *e = r->locals[i];
		size_t el = strlen(e);

		if (el != n)
			continue;
		size_t k = 0;
		while (k < n && lower(buf[k]) == lower(e[k]))
			k++;
		if (k == n)
			return true;
	}
	return false;
}

enum policy_verdict policy_rcpt(const struct cfg_policy *p, enum cfg_listener_mode mode,
				const struct policy_client *c, const char *local, size_t local_len,
				const char *domain, size_t domain_len)
{
	bool trusted = c->authenticated || policy_relay_network(p, c->addr);
	bool ours;
	const struct cfg_recipients *r;

	if (domain_len == 0)
		return POLICY_OK; /* <Postmaster> (RFC 5321 §4.5.1) */
	ours = policy_relay_domain(p, domain, domain_len);
	if (mode == CFG_MODE_SUBMISSION ? !trusted : !ours && !trusted)
		return POLICY_RELAY_DENIED;
	if (ours && eq_nocase(local, local_len, "postmaster"))
		return POLICY_OK;
	r = policy_recipients_of(p, domain, domain_len);
	if (r != NULL && !policy_local_known(r, local, local_len))
		return POLICY_RCPT_UNKNOWN;
	return POLICY_OK;
}
