/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The mail sections: "routes:" (next hops by domain, their defaults and
 * order, the smarthost), "spool:" and "relay:" (defaults, and rules across
 * sections), and every mistake an operator can make in them, each reported
 * at its line and column.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "control/config/config.h"
#include "cfg_load.h"

#define PORTS                                                                                      \
	"dataplane:\n  ports:\n    - device: net_tap0\n      addresses: [198.51.100.2/24]\n"

static uint32_t ip(const char *s)
{
	struct in_addr a;

	cr_assert_eq(inet_pton(AF_INET, s, &a), 1);
	return a.s_addr;
}

Test(routes_config, none_by_default)
{
	struct cfg *c = load_ok(PORTS);

	cr_assert_eq(c->routes.n_domains, 0);
	cr_assert_eq(c->routes.n_smarthost, 0);
	cfg_free(c);
}

Test(routes_config, hops_get_defaults_and_are_sorted_by_priority)
{
	struct cfg *c = load_ok(PORTS "routes:\n"
				      "  domains:\n"
				      "    - domain: Example.COM\n"
				      "      next_hops:\n"
				      "        - {address: 198.51.100.20, priority: 20}\n"
				      "        - {address: 198.51.100.21, port: 2525, priority: 5, "
				      "weight: 3}\n"
				      "        - {address: 198.51.100.22}\n"
				      "    - domain: \"*.example.net\"\n"
				      "      next_hops: [{address: 203.0.113.7}]\n"
				      "  smarthost:\n"
				      "    - address: 203.0.113.30\n"
				      "      port: 587\n");
	const struct cfg_routes *r = &c->routes;

	cr_assert_eq(r->n_domains, 2);
	cr_assert_str_eq(r->domains[0].domain.name, "example.com");
	cr_assert_not(r->domains[0].domain.wildcard);
	cr_assert_eq(r->domains[0].n_hops, 3);
	/* priority 5, then the default 10, then 20 */
	cr_assert_eq(r->domains[0].hops[0].addr, ip("198.51.100.21"));
	cr_assert_eq(r->domains[0].hops[0].port, 2525);
	cr_assert_eq(r->domains[0].hops[0].weight, 3);
	cr_assert_eq(r->domains[0].hops[1].addr, ip("198.51.100.22"));
	cr_assert_eq(r->domains[0].hops[1].port, 25);
	cr_assert_eq(r->domains[0].hops[1].priority, 10);
	cr_assert_eq(r->domains[0].hops[1].weight, 1);
	cr_assert_eq(r->domains[0].hops[2].priority, 20);
	cr_assert_str_eq(r->domains[1].domain.name, "example.net");
	cr_assert(r->domains[1].domain.wildcard);
	cr_assert_eq(r->n_smarthost, 1);
	cr_assert_eq(r->smarthost[0].addr, ip("203.0.113.30"));
	cr_assert_eq(r->smarthost[0].port, 587);
	cfg_free(c);
}

Test(routes_config, every_mistake_is_reported_where_it_is)
{
	expect_errors(PORTS "routes:\n"
			    "  domains:\n"
			    "    - domain: example.com\n"
			    "      next_hops:\n"
			    "        - {address: mx.example.com}\n"
			    "        - {address: 198.51.100.20, port: 70000}\n"
			    "        - {address: 224.0.0.1}\n"
			    "    - domain: example.com\n"
			    "      next_hops: [{address: 198.51.100.20}]\n"
			    "    - domain: bad..name\n"
			    "      next_hops: [{address: 198.51.100.20}]\n"
			    "    - domain: example.org\n"
			    "    - next_hops: [{address: 198.51.100.20}]\n"
			    "  smarthost:\n"
			    "    - {address: 198.51.100.30}\n"
			    "    - {address: 198.51.100.30, port: 25}\n"
			    "    - {port: 25}\n",
		      "t.yaml:9:21: routes.domains[0].next_hops[0].address: 'mx.example.com' is "
		      "not an IPv4 address (names need DNS, which this build does not do yet)\n"
		      "t.yaml:10:42: routes.domains[0].next_hops[1].port: 70000 is not between 1 "
		      "and 65535\n"
		      "t.yaml:11:21: routes.domains[0].next_hops[2].address: '224.0.0.1' cannot be "
		      "a next hop (unspecified, broadcast or multicast)\n"
		      "t.yaml:12:15: routes.domains[1].domain: 'example.com' has a route already\n"
		      "t.yaml:14:15: routes.domains[2].domain: 'bad..name' is not a domain: it has "
		      "an empty label (two dots, or a dot at an end)\n"
		      "t.yaml:16:7: routes.domains[3].next_hops: no next hops; list at least one "
		      "{address, port}\n"
		      "t.yaml:17:7: routes.domains[4]: no domain; write the recipient domain this "
		      "route is for\n"
		      "t.yaml:20:7: routes.smarthost[1]: 198.51.100.30:25 is listed twice\n"
		      "t.yaml:21:7: routes.smarthost[2]: no address; write the next hop's IPv4 "
		      "address\n");
}

Test(routes_config, too_many_hops_are_refused)
{
	char yaml[2048];
	size_t n = (size_t)snprintf(yaml, sizeof(yaml), PORTS "routes:\n  smarthost:\n");

	for (int i = 0; i < CFG_MAX_NEXT_HOPS + 1; i++)
		n += (size_t)snprintf(yaml + n, sizeof(yaml) - n,
				      "    - {address: 198.51.100.%d}\n", 10 + i);
	expect_errors(yaml, "t.yaml:6:3: routes.smarthost: 9 next hops; at most 8 are supported\n");
}

Test(spool_config, defaults)
{
	struct cfg *c = load_ok(PORTS);
	const struct cfg_spool *s = &c->spool;

	cr_assert_str_eq(s->directory, "/var/spool/mxgate");
	cr_assert_eq(s->commit_window_us, 200);
	cr_assert_eq(s->commit_bytes_kb, 1024);
	cr_assert_eq(s->size_limit_mb, 0);
	cr_assert_eq(s->segment_mb, 64);
	cr_assert_eq(s->staging_mb, 32);
	cr_assert_eq(s->max_messages, 262144);
	cr_assert_eq(s->probe_interval_ms, 1000);
	cr_assert_eq(s->high_water_percent, 90);
	cr_assert_eq(s->commit_latency_ms, 200);
	cfg_free(c);
}

Test(spool_config, mistakes_are_reported)
{
	expect_errors(PORTS "spool:\n"
			    "  directory: spool\n"
			    "  segment_mb: 16\n"
			    "  size_limit_mb: 20\n"
			    "  commit_window_us: lots\n",
		      "t.yaml:6:14: spool.directory: 'spool' is not an absolute path; a daemon's "
		      "working directory is not the operator's\n"
		      "t.yaml:7:15: spool.segment_mb: 16 MiB must be more than spool.staging_mb "
		      "(32 MiB): a segment takes a whole staged batch\n"
		      "t.yaml:8:18: spool.size_limit_mb: 20 MiB holds fewer than two 16 MiB "
		      "segments (spool.segment_mb)\n"
		      "t.yaml:9:21: spool.commit_window_us: 'lots' is not a number; expected a "
		      "whole number between 0 and 1000000\n");
}

Test(spool_config, a_store_listener_message_must_fit_the_staging_memory)
{
	expect_errors(PORTS "listeners:\n"
			    "  - port: 25\n"
			    "    ack: store\n"
			    "    limits: {max_message_size: 104857600}\n"
			    "spool:\n"
			    "  staging_mb: 64\n"
			    "  segment_mb: 128\n",
		      "t.yaml:8:32: listeners[0].limits.max_message_size: 104857600 octets do not "
		      "fit spool.staging_mb (64 MiB) with room to spare; raise spool.staging_mb to "
		      "at least 101\n");
	struct cfg *c = load_ok(PORTS "listeners:\n"
				      "  - port: 25\n"
				      "    ack: sink\n"
				      "    limits: {max_message_size: 104857600}\n");
	cfg_free(c);
}

Test(relay_config, defaults_follow_postfix)
{
	struct cfg *c = load_ok(PORTS);
	const struct cfg_relay *r = &c->relay;

	cr_assert_null(r->helo_name);
	cr_assert_eq(r->retry_first_s, 300);
	cr_assert_eq(r->retry_max_s, 4000);
	cr_assert_eq(r->lifetime_h, 120);
	cr_assert_eq(r->delay_warning_h, 0);
	cr_assert_eq(r->connections_per_hop, 16);
	cr_assert_eq(r->messages_per_connection, 100);
	cr_assert_eq(r->idle_timeout_s, 5);
	cr_assert_eq(r->connect_timeout_s, 30);
	cr_assert_eq(r->command_timeout_s, 300, "RFC 5321 §4.5.3.2's minimums are the defaults");
	cr_assert_eq(r->data_block_timeout_s, 180);
	cr_assert_eq(r->data_end_timeout_s, 600);
	cr_assert(r->pipelining);
	cr_assert_not(r->chunking);
	cr_assert_not(r->send_8bit);
	cr_assert_eq(r->bounce_return_kb, 256);
	cr_assert_eq(r->queue_max, 100000);
	cfg_free(c);
}

Test(relay_config, mistakes_are_reported)
{
	expect_errors(PORTS "relay:\n"
			    "  helo_name: \"mx gate\"\n"
			    "  retry_first_s: 600\n"
			    "  retry_max_s: 60\n"
			    "  lifetime_h: 2\n"
			    "  delay_warning_h: 4\n"
			    "  pipelining: sometimes\n",
		      "t.yaml:6:14: relay.helo_name: 'mx gate' is not a host name (letters, "
		      "digits, '-' and '.')\n"
		      "t.yaml:8:16: relay.retry_max_s: 60 is below relay.retry_first_s (600)\n"
		      "t.yaml:10:20: relay.delay_warning_h: 4 h is not before the bounce at "
		      "relay.lifetime_h (2 h)\n"
		      "t.yaml:11:15: relay.pipelining: 'sometimes' is not true or false\n");
}
