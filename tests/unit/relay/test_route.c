/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Routing by recipient domain: exact entries before wildcards, the most
 * specific wildcard, the smarthost for the rest, nothing for an unroutable
 * domain; hops tried by priority and spread by weight within one.
 */
#include <errno.h>
#include <string.h>

#include <criterion/criterion.h>

#include "dataplane/relay/route.h"

#define HOP(a, prio, w) { .addr = (a), .port = 25, .priority = (prio), .weight = (w) }

static struct cfg_mail_route domains[] = {
	{ .domain = { .name = "example.com" }, .hops = { HOP(1, 10, 1) }, .n_hops = 1 },
	{ .domain = { .name = "example.net", .wildcard = true }, .hops = { HOP(2, 10, 1) },
	  .n_hops = 1 },
	{ .domain = { .name = "eu.example.net", .wildcard = true }, .hops = { HOP(3, 10, 1) },
	  .n_hops = 1 },
	{ .domain = { .name = "mail.example.net" }, .hops = { HOP(4, 10, 1) }, .n_hops = 1 },
};

static struct cfg_routes routes = { .domains = domains, .n_domains = 4 };

static uint32_t first_hop(const char *d)
{
	struct route r;

	cr_assert_eq(route_lookup(&routes, d, strlen(d), &r), 0, "%s: no route", d);
	return r.hops[0].addr;
}

Test(route, exact_then_most_specific_wildcard_then_smarthost)
{
	routes.n_smarthost = 0;
	cr_assert_eq(first_hop("example.com"), 1);
	cr_assert_eq(first_hop("EXAMPLE.Com."), 1, "case and a final dot do not matter");
	cr_assert_eq(first_hop("a.example.net"), 2);
	cr_assert_eq(first_hop("a.eu.example.net"), 3, "the longer wildcard wins");
	cr_assert_eq(first_hop("mail.example.net"), 4, "an exact entry beats any wildcard");

	struct route r;
	cr_assert_eq(route_lookup(&routes, "example.net", 11, &r), -ENOENT,
		     "*.example.net does not cover example.net itself");
	cr_assert_eq(route_lookup(&routes, "xexample.net", 12, &r), -ENOENT);
	cr_assert_eq(route_lookup(&routes, "sub.example.com", 15, &r), -ENOENT);

	routes.smarthost[0] = (struct cfg_next_hop)HOP(9, 0, 1);
	routes.n_smarthost = 1;
	cr_assert_eq(first_hop("example.org"), 9);
	cr_assert_eq(first_hop("[198.51.100.7]"), 9, "address literals go to the smarthost");
	cr_assert_eq(route_lookup(&routes, "example.net", 11, &r), 0);
	cr_assert_null(r.entry);
	routes.n_smarthost = 0;
}

Test(route, order_is_by_priority_and_weighted_within_one)
{
	struct cfg_mail_route e = {
		.hops = { HOP(1, 5, 1), HOP(2, 10, 1), HOP(3, 10, 3), HOP(4, 20, 1) },
		.n_hops = 4,
	};
	struct route r = { .hops = e.hops, .n_hops = 4, .entry = &e };
	unsigned first3 = 0, runs = 20000;

	for (uint64_t seed = 0; seed < runs; seed++) {
		unsigned order[4];
		bool seen[4] = { false };

		route_order(&r, seed * 7919, order);
		cr_assert_eq(order[0], 0, "priority 5 first");
		cr_assert_eq(order[3], 3, "priority 20 last");
		for (int i = 0; i < 4; i++) {
			cr_assert_lt(order[i], 4);
			cr_assert_not(seen[order[i]], "hop %u twice", order[i]);
			seen[order[i]] = true;
		}
		first3 += order[1] == 2;
	}
	/* weight 3 against 1: the heavier hop leads three times in four */
	cr_assert(first3 > runs * 70 / 100 && first3 < runs * 80 / 100, "%u of %u", first3, runs);
}
