/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The "listeners:" and "policy:" sections as an operator writes them:
 * defaults, the shipped TAP config's three listeners, and each mistake as
 * one "FILE:LINE:COLUMN: key.path: what" line.
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

Test(listeners, none_by_default)
{
	struct cfg *c = load_ok(PORTS);

	cr_assert_eq(c->n_listeners, 0);
	cr_assert_eq(c->policy.n_relay_domains, 0);
	cfg_free(c);
}

Test(listeners, a_port_alone_gets_every_default)
{
	struct cfg *c = load_ok(PORTS "listeners:\n  - port: 25\n");
	const struct cfg_listener *l = &c->listeners[0];

	cr_assert_eq(c->n_listeners, 1);
	cr_assert_str_eq(l->name, "smtp-25");
	cr_assert_eq(l->mode, CFG_MODE_RELAY);
	cr_assert_eq(l->ack, CFG_ACK_SINK);
	cr_assert_null(l->hostname);
	cr_assert_eq(l->greeting_pause_ms, 0);
	cr_assert_not(l->normalize_bare_eol);
	cr_assert_eq(l->limits.max_message_size, 10u << 20);
	cr_assert_eq(l->limits.max_recipients, 100);
	cr_assert_eq(l->limits.max_errors, 20);
	cr_assert_eq(l->limits.command_line, 512);
	cr_assert_eq(l->limits.text_line, 1000);
	cr_assert_eq(l->limits.input_no_crlf, 65536);
	cr_assert_eq(l->limits.sessions, 1024);
	cfg_free(c);
}

Test(listeners, every_key_is_read)
{
	struct cfg *c = load_ok(PORTS "listeners:\n"
				      "  - name: sub\n    port: 587\n    mode: submission\n"
				      "    ack: sink\n    hostname: mx.example.com\n"
				      "    greeting_pause_ms: 300\n    normalize_bare_eol: yes\n"
				      "    limits:\n"
				      "      max_message_size: 2048\n      max_recipients: 7\n"
				      "      max_errors: 3\n      command_line: 1024\n"
				      "      text_line: 0\n      input_no_crlf: 4096\n"
				      "      sessions: 10\n");
	const struct cfg_listener *l = &c->listeners[0];

	cr_assert_str_eq(l->name, "sub");
	cr_assert_eq(l->port, 587);
	cr_assert_eq(l->mode, CFG_MODE_SUBMISSION);
	cr_assert_str_eq(l->hostname, "mx.example.com");
	cr_assert_eq(l->greeting_pause_ms, 300);
	cr_assert(l->normalize_bare_eol);
	cr_assert_eq(l->limits.max_message_size, 2048);
	cr_assert_eq(l->limits.max_recipients, 7);
	cr_assert_eq(l->limits.max_errors, 3);
	cr_assert_eq(l->limits.command_line, 1024);
	cr_assert_eq(l->limits.text_line, 0);
	cr_assert_eq(l->limits.input_no_crlf, 4096);
	cr_assert_eq(l->limits.sessions, 10);
	cfg_free(c);
}

Test(listeners, tap_config_has_the_three_mail_ports)
{
	char *err = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&err, &n);
	struct cfg *c = cfg_load(TAP_PATH, f);

	fclose(f);
	cr_assert_not_null(c, "%s", err);
	cr_assert_eq(c->n_listeners, 3);
	cr_assert_eq(c->listeners[0].port, 25);
	cr_assert_eq(c->listeners[0].mode, CFG_MODE_RELAY);
	cr_assert_eq(c->listeners[1].port, 587);
	cr_assert_eq(c->listeners[1].mode, CFG_MODE_SUBMISSION);
	cr_assert_eq(c->listeners[2].port, 2525);
	cr_assert_eq(c->listeners[2].mode, CFG_MODE_SUBMISSION);
	cfg_free(c);
	free(err);
}

Test(listeners, store_and_cut_through_are_read)
{
	struct cfg *c = load_ok(PORTS "listeners:\n  - port: 25\n    ack: store\n");

	cr_assert_eq(c->listeners[0].ack, CFG_ACK_STORE);
	cfg_free(c);
	c = load_ok(PORTS "listeners:\n  - port: 25\n    ack: cut-through\n"
			  "routes:\n  smarthost:\n    - {address: 198.51.100.1}\n");
	cr_assert_eq(c->listeners[0].ack, CFG_ACK_CUT_THROUGH);
	cfg_free(c);
	c = load_ok(PORTS "listeners:\n  - port: 25\n    ack: cut-through\n"
			  "routes:\n  domains:\n    - domain: example.com\n"
			  "      next_hops: [{address: 198.51.100.1}]\n");
	cr_assert_eq(c->listeners[0].ack, CFG_ACK_CUT_THROUGH);
	cfg_free(c);
}

Test(listeners, cut_through_without_routes_is_refused)
{
	expect_errors(PORTS "listeners:\n  - port: 25\n    ack: cut-through\n",
		      "t.yaml:7:10: listeners[0].ack: cut-through needs somewhere to relay to: add "
		      "routes.domains or routes.smarthost\n");
}

Test(listeners, unknown_ack_lists_the_modes)
{
	expect_errors(PORTS "listeners:\n  - port: 25\n    ack: later\n",
		      "t.yaml:7:10: listeners[0].ack: 'later' is not one of: sink, store, "
		      "cut-through\n");
}

Test(listeners, unknown_mode_lists_the_modes)
{
	expect_errors(PORTS "listeners:\n  - port: 25\n    mode: smarthost\n",
		      "t.yaml:7:11: listeners[0].mode: 'smarthost' is not one of: relay, "
		      "submission\n");
}

Test(listeners, missing_or_bad_port_is_named)
{
	expect_errors(PORTS "listeners:\n  - name: mx\n",
		      "t.yaml:6:5: listeners[0]: no port; write the TCP port to take mail on (25, "
		      "587, 2525...)\n");
	expect_errors(PORTS "listeners:\n  - port: 70000\n",
		      "t.yaml:6:11: listeners[0].port: 70000 is not between 1 and 65535\n");
}

Test(listeners, two_listeners_on_one_port_point_at_the_first)
{
	expect_errors(PORTS "listeners:\n  - port: 25\n  - port: 25\n",
		      "t.yaml:7:11: listeners[1].port: port 25 is already taken by listener "
		      "'smtp-25' at line 6\n");
	expect_errors(PORTS "listeners:\n  - {name: mx, port: 25}\n  - {name: mx, port: 26}\n",
		      "t.yaml:7:12: listeners[1].name: 'mx' is already the name of the listener "
		      "at line 6\n");
}

Test(listeners, limit_typo_suggests_the_key)
{
	expect_errors(PORTS "listeners:\n  - port: 25\n    limits:\n      max_recipient: 5\n",
		      "t.yaml:8:7: listeners[0].limits.max_recipient: unknown key; did you mean "
		      "'max_recipients'?\n");
}

Test(policy_config, domains_networks_and_recipients_are_read)
{
	struct cfg *c = load_ok(PORTS "policy:\n"
				      "  relay_domains: [Example.COM, \"*.example.net\"]\n"
				      "  relay_networks: [198.51.100.0/24, 203.0.113.9]\n"
				      "  recipients:\n"
				      "    - domain: example.com\n"
				      "      local_parts: [alice, bob, \"*\"]\n");
	const struct cfg_policy *p = &c->policy;

	cr_assert_eq(p->n_relay_domains, 2);
	cr_assert_str_eq(p->relay_domains[0].name, "example.com");
	cr_assert_not(p->relay_domains[0].wildcard);
	cr_assert_str_eq(p->relay_domains[1].name, "example.net");
	cr_assert(p->relay_domains[1].wildcard);
	cr_assert_eq(p->n_relay_networks, 2);
	cr_assert_eq(p->relay_networks[0].len, 24);
	cr_assert_eq(p->relay_networks[1].len, 32);
	cr_assert_eq(p->n_recipients, 1);
	cr_assert_eq(p->recipients[0].n_locals, 2);
	cr_assert(p->recipients[0].catch_all);
	cfg_free(c);
}

Test(policy_config, bad_entries_are_each_reported)
{
	expect_errors(PORTS "policy:\n"
			    "  relay_domains: [example..com, \"-x.example\"]\n"
			    "  relay_networks: [198.51.100.7/24, 198.51.100.0/33]\n"
			    "  recipients:\n"
			    "    - domain: example.com\n"
			    "      local_parts: [alice@example.com]\n",
		      "t.yaml:6:19: policy.relay_domains[0]: 'example..com' is not a domain: it "
		      "has an empty label (two dots, or a dot at an end)\n"
		      "t.yaml:6:33: policy.relay_domains[1]: '-x.example' is not a domain: it has "
		      "a label that starts with '-'\n"
		      "t.yaml:7:20: policy.relay_networks[0]: '198.51.100.7/24' has host bits "
		      "set; did you mean 198.51.100.0/24?\n"
		      "t.yaml:7:37: policy.relay_networks[1]: '198.51.100.0/33' is not an IPv4 "
		      "network; write a.b.c.d/len or a single address\n"
		      "t.yaml:10:21: policy.recipients[0].local_parts[0]: 'alice@example.com' "
		      "holds '@'; write the part before it, the domain goes in 'domain'\n");
}

Test(policy_config, client_limits_default_to_50_connections_and_no_rates)
{
	struct cfg *c = load_ok(PORTS);
	const struct cfg_client_limits *l = &c->policy.client_limits;

	cr_assert_eq(l->connections, 50);
	cr_assert_eq(l->connection_rate, 0);
	cr_assert_eq(l->message_rate, 0);
	cr_assert(l->exempt_relay_networks);
	cr_assert_eq(l->table_size, 65536);
	cfg_free(c);
}

Test(policy_config, client_limits_are_read_and_bursts_default_to_the_rate)
{
	struct cfg *c = load_ok(PORTS "policy:\n"
				      "  client_limits:\n"
				      "    connections: 0\n"
				      "    connection_rate: 120\n"
				      "    message_rate: 30\n"
				      "    message_burst: 5\n"
				      "    exempt_relay_networks: false\n"
				      "    table_size: 1024\n");
	const struct cfg_client_limits *l = &c->policy.client_limits;

	cr_assert_eq(l->connections, 0);
	cr_assert_eq(l->connection_rate, 120);
	cr_assert_eq(l->connection_burst, 120);
	cr_assert_eq(l->message_rate, 30);
	cr_assert_eq(l->message_burst, 5);
	cr_assert_not(l->exempt_relay_networks);
	cr_assert_eq(l->table_size, 1024);
	cfg_free(c);
}

Test(policy_config, bad_client_limits_are_each_reported)
{
	expect_errors(PORTS "policy:\n"
			    "  client_limits:\n"
			    "    connections: -1\n"
			    "    connection_burst: 0\n"
			    "    table_size: 1000\n"
			    "    exempt_relay_networks: maybe\n"
			    "    messages: 10\n",
		      "t.yaml:7:18: policy.client_limits.connections: -1 is not between 0 and "
		      "1000000\n"
		      "t.yaml:8:23: policy.client_limits.connection_burst: 0 is not between 1 and "
		      "100000000\n"
		      "t.yaml:9:17: policy.client_limits.table_size: 1000 is not a power of two\n"
		      "t.yaml:10:28: policy.client_limits.exempt_relay_networks: 'maybe' is not "
		      "true or false\n"
		      "t.yaml:11:5: policy.client_limits.messages: unknown key; expected one of: "
		      "connections, connection_rate, connection_burst, message_rate, message_burst, "
		      "exempt_relay_networks, table_size\n");
}
