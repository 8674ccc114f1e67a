/* SPDX-License-Identifier: BSD-3-Clause */
/* Route lookup (route.h). */
#include "dataplane/relay/route.h"

#include <errno.h>
#include <string.h>

static int ieq(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char x = a[i], y = b[i];

		if (x >= 'A' && x <= 'Z')
			x = (char)(x - 'A' + 'a');
		if (x != y)
			return 0;
	}
	return 1;
}

int route_lookup(const struct cfg_routes *r, const char *domain, size_t len, struct route *out)
{
	const struct cfg_mail_route *best = NULL;
	size_t best_len = 0;

	if (len > 0 && domain[len - 1] == '.')
		len--;
	if (len > 0 && domain[0] != '[') {
		for (unsigned i = 0; i < r->n_domains; i++) {
			const struct cfg_mail_route *e = &r->domains[i];
			size_t n = strlen(e->domain.name);

			if (!e->domain.wildcard) {
				if (n == len && ieq(domain, e->domain.name, n)) {
					best = e;
					break; /* an exact entry beats every wildcard */
				}
				continue;
			}
			/* "*.example.net": a name ending in ".example.net" */
			if (len > n + 1 && domain[len - n - 1] == '.' &&
			    ieq(domain + len - n, e->domain.name, n) && n + 1 > best_len) {
				best = e;
				best_len = n + 1;
			}
		}
	}
	if (best != NULL) {
		*out = (struct route){ .hops = best->hops, .n_hops = best->n_hops, .entry = best };
		return 0;
	}
	if (r->n_smarthost == 0)
		return -ENOENT;
	*out = (struct route){ .hops = r->smarthost, .n_hops = r->n_smarthost, .entry = NULL };
	return 0;
}

/* A 64-bit mix (splitmix64's finaliser) to draw several numbers from one. */
static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

void route_order(const struct route *route, uint64_t rnd, unsigned *order)
{
	unsigned i = 0;

	while (i < route->n_hops) {
		unsigned j = i, total = 0;

		/* hops are sorted by priority: [i, j) is one priority */
		while (j < route->n_hops && route->hops[j].priority == route->hops[i].priority)
			total += route->hops[j++].weight;
		bool used[CFG_MAX_NEXT_HOPS] = { false };
		for (unsigned k = i; k < j; k++) {
			/* weighted draw among the hops of this priority not yet placed */
			rnd = mix(rnd);
			unsigned pick = (unsigned)(rnd % total), h = i;

			for (;; h++) {
				if (used[h - i])
					continue;
				if (pick < route->hops[h].weight)
					break;
				pick -= route->hops[h].weight;
			}
			used[h - i] = true;
			total -= route->hops[h].weight;
			order[k] = h;
		}
		i = j;
	}
}
