/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Which next hops a recipient domain goes to (the config's "routes:"): an
 * exact domain entry first, then the most specific "*." entry that covers
 * it, then the smarthost. Pure: no state, no allocation.
 */
#ifndef MX_RELAY_ROUTE_H
#define MX_RELAY_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "control/config/routes.h"

/* The route of one destination: its hops in priority order. */
struct route {
	const struct cfg_next_hop *hops;
	unsigned n_hops;
	const struct cfg_mail_route *entry; /* NULL: the smarthost */
};

/*
 * The route for DOMAIN (LEN octets, any case, an optional final dot).
 * Returns 0 and fills *OUT, or -ENOENT when neither a domain entry nor a
 * smarthost covers it (the SMTP layer says 550 5.4.4 at RCPT). Address
 * literals ("[198.51.100.7]") are routed only by the smarthost.
 */
int route_lookup(const struct cfg_routes *r, const char *domain, size_t len, struct route *out);

/*
 * The order to try ROUTE's hops in: by priority, and within one priority a
 * weighted random order (RFC 5321 §5.1 asks for spreading among equal
 * preferences), drawn from RND. Writes indexes into ORDER (n_hops of them).
 */
void route_order(const struct route *route, uint64_t rnd, unsigned *order);

#endif
