/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The "policy:" section: which domains we take mail for (relay_domains),
 * which clients may send anywhere (relay_networks), and the known recipients
 * of some domains. Names are lower-cased here so the dataplane compares bytes.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cyaml/cyaml.h>

#include "control/config/config.h"
#include "control/config/config_priv.h"

#define MAX_DOMAIN_LEN 253 /* RFC 1035 §2.3.4 */
#define MAX_LABEL_LEN 63
#define MAX_LOCAL_LEN 64   /* RFC 5321 §4.5.3.1.1 */
#define MAX_ENTRIES 65536

/* ---- schema ---- */

/* clang-format off */

static const cyaml_schema_value_t str_entry = {
	CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 0, CYAML_UNLIMITED),
};

static const cyaml_schema_field_t recipients_fields[] = {
	CYAML_FIELD_STRING_PTR("domain", CYAML_FLAG_OPTIONAL, struct cfg_raw_recipients, domain,
			       0, CYAML_UNLIMITED),
	CYAML_FIELD_SEQUENCE_COUNT("local_parts", CFG_OPT_NULL, struct cfg_raw_recipients,
				   local_parts, n_local_parts, &str_entry, 0, CYAML_UNLIMITED),
	CYAML_FIELD_END
};

static const cyaml_schema_value_t recipients_entry = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct cfg_raw_recipients, recipients_fields),
};

static const cyaml_schema_field_t client_limits_fields[] = {
	CFG_STR("connections", struct cfg_raw_client_limits, connections),
	CFG_STR("connection_rate", struct cfg_raw_client_limits, connection_rate),
	CFG_STR("connection_burst", struct cfg_raw_client_limits, connection_burst),
	CFG_STR("message_rate", struct cfg_raw_client_limits, message_rate),
	CFG_STR("message_burst", struct cfg_raw_client_limits, message_burst),
	CFG_STR("exempt_relay_networks", struct cfg_raw_client_limits, exempt_relay_networks),
	CFG_STR("table_size", struct cfg_raw_client_limits, table_size),
	CYAML_FIELD_END
};

const cyaml_schema_field_t cfg_policy_fields[] = {
	CYAML_FIELD_MAPPING_PTR("client_limits", CFG_OPT_NULL, struct cfg_raw_policy, client_limits,
				client_limits_fields),
	CYAML_FIELD_SEQUENCE_COUNT("relay_domains", CFG_OPT_NULL, struct cfg_raw_policy,
				   relay_domains, n_relay_domains, &str_entry, 0, CYAML_UNLIMITED),
	CYAML_FIELD_SEQUENCE_COUNT("relay_networks", CFG_OPT_NULL, struct cfg_raw_policy,
				   relay_networks, n_relay_networks, &str_entry, 0,
				   CYAML_UNLIMITED),
	CYAML_FIELD_SEQUENCE_COUNT("recipients", CFG_OPT_NULL, struct cfg_raw_policy, recipients,
				   n_recipients, &recipients_entry, 0, CYAML_UNLIMITED),
	CYAML_FIELD_END
};
/* clang-format on */

/* Why S is not a DNS name of letters, digits and hyphens (RFC 1123 §2.1), or NULL. */
static const char *domain_problem(const char *s)
{
	size_t len = strlen(s), label = 0;

	if (len == 0)
		return "empty";
	if (len > MAX_DOMAIN_LEN)
		return "longer than 253 characters";
	for (size_t i = 0; i <= len; i++) {
		char ch = s[i];

		if (ch == '.' || ch == '\0') {
			if (label == 0)
				return "has an empty label (two dots, or a dot at an end)";
			if (s[i - 1] == '-')
				return "has a label that ends with '-'";
			label = 0;
			continue;
		}
		if (label == 0 && ch == '-')
			return "has a label that starts with '-'";
		if (!isalnum((unsigned char)ch) && ch != '-')
			return "holds a character other than letters, digits, '-' and '.'";
		if (++label > MAX_LABEL_LEN)
			return "has a label longer than 63 characters";
	}
	return NULL;
}

int cfg_domain_parse(struct cfg_ctx *x, const char *path, const char *raw, bool allow_wild,
			struct cfg_domain *d)
{
	const char *name = raw;
	const char *why;

	if (raw == NULL || raw[0] == '\0') {
		cfg_error(x, cfg_pos_value(x, path), path, "empty; write a domain such as example.com");
		return -1;
	}
	d->wildcard = false;
	if (allow_wild && strncmp(raw, "*.", 2) == 0) {
		d->wildcard = true;
		name = raw + 2;
	}
	why = domain_problem(name);
	if (why != NULL) {
		cfg_error(x, cfg_pos_value(x, path), path, "'%s' is not a domain: it %s%s", raw,
			  why[0] == 'e' || why[0] == 'l' ? "is " : "", why);
		return -1;
	}
	d->name = strdup(name);
	if (d->name == NULL) {
		x->oom = true;
		return -1;
	}
	for (char *p = d->name; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	return 0;
}

/* "198.51.100.0/24", or an address alone for /32. */
static int network_parse(struct cfg_ctx *x, const char *path, const char *raw,
			 struct cfg_prefix *out)
{
	char a[INET_ADDRSTRLEN];
	const char *slash = strchr(raw, '/');
	size_t n = slash != NULL ? (size_t)(slash - raw) : strlen(raw);
	unsigned len = 32;
	struct in_addr in;

	if (n >= sizeof(a))
		goto bad;
	memcpy(a, raw, n);
	a[n] = '\0';
	if (inet_pton(AF_INET, a, &in) != 1)
		goto bad;
	if (slash != NULL) {
		const char *d = slash + 1;

		if (d[0] < '0' || d[0] > '9' || strspn(d, "0123456789") != strlen(d) ||
		    strlen(d) > 2 || (len = (unsigned)atoi(d)) > 32)
			goto bad;
	}
	uint32_t host = ntohl(in.s_addr);
	uint32_t mask = len == 0 ? 0 : ~0u << (32 - len);

	if ((host & ~mask) != 0) {
		struct cfg_prefix p = { .addr = htonl(host & mask), .len = (uint8_t)len };
		char buf[32];

		cfg_error(x, cfg_pos_value(x, path), path,
			  "'%s' has host bits set; did you mean %s?", raw,
			  cfg_prefix_str(&p, buf, sizeof(buf)));
		return -1;
	}
	*out = (struct cfg_prefix){ .addr = in.s_addr, .len = (uint8_t)len };
	return 0;
bad:
	cfg_error(x, cfg_pos_value(x, path), path,
		  "'%s' is not an IPv4 network; write a.b.c.d/len or a single address", raw);
	return -1;
}

/* A local part as it appears before the "@", or "*" for any. */
static const char *local_problem(const char *s)
{
	size_t len = strlen(s);

	if (len == 0)
		return "is empty";
	if (len > MAX_LOCAL_LEN)
		return "is longer than 64 octets";
	for (const char *p = s; *p != '\0'; p++) {
		unsigned char ch = (unsigned char)*p;

		if (ch == '@')
			return "holds '@'; write the part before it, the domain goes in 'domain'";
		if (ch <= ' ' || ch == 0x7f)
			return "holds a space or a control character";
	}
	return NULL;
}

static void build_recipients(struct cfg_ctx *x, const struct cfg_raw_policy *raw,
			     struct cfg_policy *p)
{
	char base[64], path[96];

	if (raw->n_recipients == 0)
		return;
	p->recipients = calloc(raw->n_recipients, sizeof(*p->recipients));
	if (p->recipients == NULL) {
		x->oom = true;
		return;
	}
	for (unsigned i = 0; i < raw->n_recipients; i++) {
		const struct cfg_raw_recipients *r = &raw->recipients[i];
		struct cfg_recipients *o = &p->recipients[p->n_recipients];

		cfg_pathf(base, sizeof(base), "policy.recipients[%u]", i);
		if (r->domain == NULL) {
			cfg_error(x, cfg_pos_value(x, base), base,
				  "no domain; write the domain these local parts belong to");
			continue;
		}
		if (cfg_domain_parse(x, cfg_pathf(path, sizeof(path), "%s.domain", base), r->domain, true,
				 &o->domain) != 0)
			continue;
		p->n_recipients++;
		for (unsigned j = 0; j + 1 < p->n_recipients; j++) {
			const struct cfg_recipients *q = &p->recipients[j];

			if (q->domain.name != NULL && q->domain.wildcard == o->domain.wildcard &&
			    strcmp(q->domain.name, o->domain.name) == 0)
				cfg_error(x, cfg_pos_value(x, path), path,
					  "'%s' is listed twice", r->domain);
		}
		cfg_pathf(base, sizeof(base), "policy.recipients[%u].local_parts", i);
		if (r->n_local_parts == 0) {
			cfg_error(x, cfg_pos_value(x, base), base,
				  "empty; list the local parts, or \"*\" to take any");
			continue;
		}
		o->locals = calloc(r->n_local_parts, sizeof(*o->locals));
		if (o->locals == NULL) {
			x->oom = true;
			continue;
		}
		for (unsigned j = 0; j < r->n_local_parts; j++) {
			const char *lp = r->local_parts[j];
			const char *why = local_problem(lp);

			cfg_pathf(path, sizeof(path), "%s[%u]", base, j);
			if (why != NULL) {
				cfg_error(x, cfg_pos_value(x, path), path, "'%s' %s", lp, why);
				continue;
			}
			if (strcmp(lp, "*") == 0) {
				o->catch_all = true;
				continue;
			}
			o->locals[o->n_locals] = strdup(lp);
			if (o->locals[o->n_locals] == NULL)
				x->oom = true;
			else
				o->n_locals++;
		}
	}
}

#define MAX_CLIENT_TABLE (1u << 24)

static void build_client_limits(struct cfg_ctx *x, const struct cfg_raw_client_limits *raw,
				struct cfg_client_limits *o)
{
	static const struct cfg_raw_client_limits none;
	const char *base = "policy.client_limits";
	char path[64];

	if (raw == NULL)
		raw = &none;
	cfg_get_uint(x, cfg_pathf(path, sizeof(path), "%s.connections", base), raw->connections, 0,
		     1000000, 50, &o->connections);
	cfg_get_uint(x, cfg_pathf(path, sizeof(path), "%s.connection_rate", base),
		     raw->connection_rate, 0, 100000000, 0, &o->connection_rate);
	cfg_get_uint(x, cfg_pathf(path, sizeof(path), "%s.connection_burst", base),
		     raw->connection_burst, 1, 100000000, o->connection_rate ? o->connection_rate : 1,
		     &o->connection_burst);
	cfg_get_uint(x, cfg_pathf(path, sizeof(path), "%s.message_rate", base), raw->message_rate,
		     0, 100000000, 0, &o->message_rate);
	cfg_get_uint(x, cfg_pathf(path, sizeof(path), "%s.message_burst", base),
		     raw->message_burst, 1, 100000000, o->message_rate ? o->message_rate : 1,
		     &o->message_burst);
	cfg_get_bool(x, cfg_pathf(path, sizeof(path), "%s.exempt_relay_networks", base),
		     raw->exempt_relay_networks, true, &o->exempt_relay_networks);
	/* a power of two keeps the bucket index a mask */
	if (cfg_get_uint(x, cfg_pathf(path, sizeof(path), "%s.table_size", base), raw->table_size,
			 64, MAX_CLIENT_TABLE, 65536, &o->table_size) == 0 &&
	    (o->table_size & (o->table_size - 1)) != 0) {
		cfg_error(x, cfg_pos_value(x, path), path, "%u is not a power of two", o->table_size);
		o->table_size = 65536;
	}
}

void cfg_policy_build(struct cfg_ctx *x, const struct cfg_raw_policy *raw, struct cfg_policy *p)
{
	static const struct cfg_raw_policy none;
	char path[64];

	if (raw == NULL)
		raw = &none;
	build_client_limits(x, raw->client_limits, &p->client_limits);
	if (raw->n_relay_domains > MAX_ENTRIES || raw->n_relay_networks > MAX_ENTRIES ||
	    raw->n_recipients > MAX_ENTRIES) {
		cfg_error(x, cfg_pos_key(x, "policy"), "policy",
			  "more than %d entries in a list; that belongs in a map file", MAX_ENTRIES);
		return;
	}
	if (raw->n_relay_domains != 0) {
		p->relay_domains = calloc(raw->n_relay_domains, sizeof(*p->relay_domains));
		if (p->relay_domains == NULL) {
			x->oom = true;
			return;
		}
	}
	for (unsigned i = 0; i < raw->n_relay_domains; i++)
		if (cfg_domain_parse(x, cfg_pathf(path, sizeof(path), "policy.relay_domains[%u]", i),
				 raw->relay_domains[i], true,
				 &p->relay_domains[p->n_relay_domains]) == 0)
			p->n_relay_domains++;
	if (raw->n_relay_networks != 0) {
		p->relay_networks = calloc(raw->n_relay_networks, sizeof(*p->relay_networks));
		if (p->relay_networks == NULL) {
			x->oom = true;
			return;
		}
	}
	for (unsigned i = 0; i < raw->n_relay_networks; i++)
		if (network_parse(x, cfg_pathf(path, sizeof(path), "policy.relay_networks[%u]", i),
				  raw->relay_networks[i],
				  &p->relay_networks[p->n_relay_networks]) == 0)
			p->n_relay_networks++;
	build_recipients(x, raw, p);
}

void cfg_policy_free(struct cfg_policy *p)
{
	for (unsigned i = 0; i < p->n_relay_domains; i++)
		free(p->relay_domains[i].name);
	free(p->relay_domains);
	free(p->relay_networks);
	for (unsigned i = 0; i < p->n_recipients; i++) {
		free(p->recipients[i].domain.name);
		for (unsigned j = 0; j < p->recipients[i].n_locals; j++)
			free(p->recipients[i].locals[j]);
		free(p->recipients[i].locals);
	}
	free(p->recipients);
	memset(p, 0, sizeof(*p));
}
