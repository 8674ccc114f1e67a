/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The "routes:" section (routes.h): next hops per recipient domain and the
 * smarthost. Hops are kept sorted by priority, so the relay tries them in
 * order and spreads by weight within one priority.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include <cyaml/cyaml.h>

#include "control/config/config.h"
#include "control/config/config_priv.h"

#define MAX_DOMAINS 65536

/* clang-format off */
static const cyaml_schema_field_t hop_fields[] = {
	CFG_STR("address", struct cfg_raw_next_hop, address),
	CFG_STR("port", struct cfg_raw_next_hop, port),
	CFG_STR("priority", struct cfg_raw_next_hop, priority),
	CFG_STR("weight", struct cfg_raw_next_hop, weight),
	CFG_STR("tls", struct cfg_raw_next_hop, tls),
	CFG_STR("tls_name", struct cfg_raw_next_hop, tls_name),
	CYAML_FIELD_END
};

static const cyaml_schema_value_t hop_entry = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct cfg_raw_next_hop, hop_fields),
};

static const cyaml_schema_field_t route_fields[] = {
	CFG_STR("domain", struct cfg_raw_mail_route, domain),
	CYAML_FIELD_SEQUENCE_COUNT("next_hops", CFG_OPT_NULL, struct cfg_raw_mail_route,
				   next_hops, n_next_hops, &hop_entry, 0, CYAML_UNLIMITED),
	CYAML_FIELD_END
};

static const cyaml_schema_value_t route_entry = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct cfg_raw_mail_route, route_fields),
};

const cyaml_schema_field_t cfg_routes_fields[] = {
	CYAML_FIELD_SEQUENCE_COUNT("domains", CFG_OPT_NULL, struct cfg_raw_routes, domains,
				   n_domains, &route_entry, 0, CYAML_UNLIMITED),
	CYAML_FIELD_SEQUENCE_COUNT("smarthost", CFG_OPT_NULL, struct cfg_raw_routes, smarthost,
				   n_smarthost, &hop_entry, 0, CYAML_UNLIMITED),
	CYAML_FIELD_END
};
/* clang-format on */

static int build_hop(struct cfg_ctx *x, const char *base, const struct cfg_raw_next_hop *raw,
		     struct cfg_next_hop *h)
{
	char path[128];
	struct in_addr in;
	unsigned v;
	int rc = 0;

	cfg_pathf(path, sizeof(path), "%s.address", base);
	if (raw->address == NULL) {
		cfg_error(x, cfg_pos_value(x, base), base,
			  "no address; write the next hop's IPv4 address");
		rc = -1;
	} else if (inet_pton(AF_INET, raw->address, &in) != 1) {
		cfg_error(x, cfg_pos_value(x, path), path,
			  "'%s' is not an IPv4 address (names need DNS, which this build does "
			  "not do yet)",
			  raw->address);
		rc = -1;
	} else if (in.s_addr == 0 || in.s_addr == INADDR_BROADCAST ||
		   (ntohl(in.s_addr) >> 28) == 0xe) {
		cfg_error(x, cfg_pos_value(x, path), path,
			  "'%s' cannot be a next hop (unspecified, broadcast or multicast)",
			  raw->address);
		rc = -1;
	} else {
		h->addr = in.s_addr;
	}
	rc |= cfg_get_uint(x, cfg_pathf(path, sizeof(path), "%s.port", base), raw->port, 1, 65535,
			   25, &v);
	h->port = (uint16_t)v;
	rc |= cfg_get_uint(x, cfg_pathf(path, sizeof(path), "%s.priority", base), raw->priority,
			   0, 65535, 10, &v);
	h->priority = (uint16_t)v;
	rc |= cfg_get_uint(x, cfg_pathf(path, sizeof(path), "%s.weight", base), raw->weight, 1,
			   65535, 1, &v);
	h->weight = (uint16_t)v;
	rc |= cfg_hop_tls_build(x, base, raw->tls, raw->tls_name, h); /* tls.c */
	return rc;
}

static int by_priority(const void *a, const void *b)
{
	const struct cfg_next_hop *x = a, *y = b;

	return (int)x->priority - (int)y->priority;
}

/* A list of hops at PATH into OUT (sorted by priority, stable). Returns the count kept. */
static unsigned build_hops(struct cfg_ctx *x, const char *path,
			   const struct cfg_raw_next_hop *raw, unsigned n, struct cfg_next_hop *out)
{
	char base[128];
	unsigned kept = 0;

	if (n > CFG_MAX_NEXT_HOPS) {
		cfg_error(x, cfg_pos_key(x, path), path, "%u next hops; at most %d are supported", n,
			  CFG_MAX_NEXT_HOPS);
		n = CFG_MAX_NEXT_HOPS;
	}
	for (unsigned i = 0; i < n; i++) {
		struct cfg_next_hop h = { 0 };

		cfg_pathf(base, sizeof(base), "%s[%u]", path, i);
		if (build_hop(x, base, &raw[i], &h) != 0)
			continue;
		for (unsigned j = 0; j < kept; j++)
			if (out[j].addr == h.addr && out[j].port == h.port) {
				cfg_error(x, cfg_pos_value(x, base), base,
					  "%s:%u is listed twice", raw[i].address, h.port);
				goto next;
			}
		out[kept++] = h;
next:;
	}
	/* insertion sort keeps equal priorities in the order written */
	for (unsigned i = 1; i < kept; i++)
		for (unsigned j = i; j > 0 && by_priority(&out[j - 1], &out[j]) > 0; j--) {
			struct cfg_next_hop t = out[j];

			out[j] = out[j - 1];
			out[j - 1] = t;
		}
	return kept;
}

void cfg_routes_build(struct cfg_ctx *x, const struct cfg_raw_routes *raw, struct cfg_routes *r)
{
	static const struct cfg_raw_routes none;
	char base[64], path[96];

	if (raw == NULL)
		raw = &none;
	r->n_smarthost = build_hops(x, "routes.smarthost", raw->smarthost, raw->n_smarthost,
				    r->smarthost);
	if (raw->n_domains == 0)
		return;
	if (raw->n_domains > MAX_DOMAINS) {
		cfg_error(x, cfg_pos_key(x, "routes.domains"), "routes.domains",
			  "more than %d domains; that belongs in a map file", MAX_DOMAINS);
		return;
	}
	r->domains = calloc(raw->n_domains, sizeof(*r->domains));
	if (r->domains == NULL) {
		x->oom = true;
		return;
	}
	for (unsigned i = 0; i < raw->n_domains; i++) {
		const struct cfg_raw_mail_route *d = &raw->domains[i];
		struct cfg_mail_route *o = &r->domains[r->n_domains];

		cfg_pathf(base, sizeof(base), "routes.domains[%u]", i);
		if (d->domain == NULL) {
			cfg_error(x, cfg_pos_value(x, base), base,
				  "no domain; write the recipient domain this route is for");
			continue;
		}
		if (cfg_domain_parse(x, cfg_pathf(path, sizeof(path), "%s.domain", base), d->domain,
				     true, &o->domain) != 0)
			continue;
		for (unsigned j = 0; j < r->n_domains; j++) {
			const struct cfg_mail_route *q = &r->domains[j];

			if (q->domain.wildcard == o->domain.wildcard &&
			    strcmp(q->domain.name, o->domain.name) == 0) {
				cfg_error(x, cfg_pos_value(x, path), path,
					  "'%s' has a route already", d->domain);
				break;
			}
		}
		cfg_pathf(path, sizeof(path), "%s.next_hops", base);
		if (d->n_next_hops == 0) {
			cfg_error(x, cfg_pos_value(x, path), path,
				  "no next hops; list at least one {address, port}");
			free(o->domain.name);
			o->domain.name = NULL;
			continue;
		}
		o->n_hops = build_hops(x, path, d->next_hops, d->n_next_hops, o->hops);
		r->n_domains++;
	}
}

void cfg_routes_free(struct cfg_routes *r)
{
	for (unsigned i = 0; i < r->n_domains; i++)
		free(r->domains[i].domain.name);
	free(r->domains);
	memset(r, 0, sizeof(*r));
}
