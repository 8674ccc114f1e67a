/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * control/config/restart.c: which differences between the config in force
 * and a reloaded one need a restart, named by the key the file uses, and
 * which are applied by a reload.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "control/config/restart.h"
#include "cfg_load.h"

#define PORTS                                                                                      \
	"dataplane:\n  worker_cores: [1]\n  ports:\n    - device: net_tap0\n"                     \
	"      addresses: [198.51.100.2/24]\n"
#define LISTENER "listeners:\n  - port: 25\n    ack: sink\n"

/* Every reported difference as "KEY: OLD -> NEW\n", in order. */
struct report {
	char text[4096];
	size_t len;
	char why[256];
};

static void collect(void *arg, const char *key, const char *o, const char *n, const char *why)
{
	struct report *r = arg;

	r->len += (size_t)snprintf(r->text + r->len, sizeof(r->text) - r->len, "%s: %s -> %s\n",
				   key, o, n);
	snprintf(r->why, sizeof(r->why), "%s", why);
}

static unsigned diff(const char *old_yaml, const char *new_yaml, unsigned who, struct report *r)
{
	struct cfg *a = load_ok(old_yaml), *b = load_ok(new_yaml);
	unsigned n;

	memset(r, 0, sizeof(*r));
	n = cfg_restart_diff(a, b, who, collect, r);
	cfg_free(a);
	cfg_free(b);
	return n;
}

Test(restart, the_same_file_needs_nothing)
{
	struct report r;

	cr_assert_eq(diff(PORTS LISTENER, PORTS LISTENER, CFG_RESTART_DP | CFG_RESTART_CONTROL, &r),
		     0);
	cr_assert_str_empty(r.text);
}

Test(restart, limits_policy_and_log_level_are_hitless)
{
	struct report r;

	cr_assert_eq(diff(PORTS LISTENER,
			  PORTS "listeners:\n  - port: 25\n    ack: sink\n    mode: submission\n"
				"    hostname: mx2.example.com\n    greeting_pause_ms: 500\n"
				"    limits:\n      max_recipients: 5\n      max_message_size: 4096\n"
				"      max_errors: 3\n"
				"policy:\n  relay_domains: [example.com]\n"
				"  relay_networks: [203.0.113.0/24]\n"
				"  client_limits:\n    connections: 9\n"
				"logging:\n  level: debug\n",
			  CFG_RESTART_DP | CFG_RESTART_CONTROL, &r),
		     0, "%s", r.text);
}

Test(restart, more_worker_cores_need_a_restart_of_the_dataplane)
{
	struct report r;

	cr_assert_eq(diff(PORTS LISTENER,
			  "dataplane:\n  worker_cores: [1, 2]\n  ports:\n    - device: net_tap0\n"
			  "      addresses: [198.51.100.2/24]\n" LISTENER,
			  CFG_RESTART_DP, &r),
		     1);
	cr_assert_str_eq(r.text, "dataplane.worker_cores: 1 -> 1,2\n");
	cr_assert(strstr(r.why, "lcores") != NULL, "%s", r.why);
	/* mxgate-control does not care */
	cr_assert_eq(diff(PORTS LISTENER,
			  "dataplane:\n  worker_cores: [1, 2]\n  ports:\n    - device: net_tap0\n"
			  "      addresses: [198.51.100.2/24]\n" LISTENER,
			  CFG_RESTART_CONTROL, &r),
		     0);
}

Test(restart, a_port_address_and_a_listener_port_are_named)
{
	struct report r;

	cr_assert_eq(diff(PORTS LISTENER,
			  "dataplane:\n  worker_cores: [1]\n  ports:\n    - device: net_tap0\n"
			  "      addresses: [198.51.100.3/24]\n"
			  "listeners:\n  - port: 2525\n    ack: sink\n",
			  CFG_RESTART_DP, &r),
		     2);
	cr_assert_str_eq(r.text, "dataplane.ports[0].addresses: 198.51.100.2/24 -> 198.51.100.3/24\n"
				 "listeners[0].port: 25 -> 2525\n");
}

Test(restart, adding_a_listener_or_changing_its_sessions_or_ack_needs_a_restart)
{
	struct report r;

	cr_assert_eq(diff(PORTS LISTENER, PORTS LISTENER "  - port: 26\n", CFG_RESTART_DP, &r), 1);
	cr_assert_str_eq(r.text, "listeners (how many): 1 -> 2\n");
	cr_assert_eq(diff(PORTS LISTENER,
			  PORTS "listeners:\n  - port: 25\n    ack: sink\n    limits:\n"
				"      sessions: 10\n",
			  CFG_RESTART_DP, &r),
		     1);
	cr_assert_str_eq(r.text, "listeners[0].limits.sessions: 1024 -> 10\n");
	cr_assert_eq(diff(PORTS LISTENER,
			  PORTS "listeners:\n  - port: 25\n    ack: cut-through\n"
				"routes:\n  smarthost:\n    - {address: 198.51.100.9}\n",
			  CFG_RESTART_DP, &r),
		     1, "%s", r.text);
	cr_assert_str_eq(r.text, "listeners[0].ack: sink -> cut-through\n",
			 "the routes it needs come with it hitlessly");
}

#define STORE_ROUTED                                                                               \
	PORTS "listeners:\n  - port: 25\n    ack: store\n"                                          \
	      "routes:\n  domains:\n    - domain: example.org\n      next_hops:\n"                  \
	      "        - {address: 198.51.100.10}\n"

Test(restart, routes_are_hitless_domains_hops_smarthost_and_tls)
{
	struct report r;

	/* the next hop of a domain moves */
	cr_assert_eq(diff(STORE_ROUTED,
			  PORTS "listeners:\n  - port: 25\n    ack: store\n"
				"routes:\n  domains:\n    - domain: example.org\n      next_hops:\n"
				"        - {address: 198.51.100.11, port: 2525}\n",
			  CFG_RESTART_DP, &r),
		     0, "%s", r.text);
	/* domains added (more than the start-up file had), a smarthost, a tls: policy */
	cr_assert_eq(diff(STORE_ROUTED,
			  STORE_ROUTED "    - domain: \"*.example.net\"\n      next_hops:\n"
				       "        - {address: 198.51.100.12, priority: 5}\n"
				       "        - {address: 198.51.100.13, priority: 20}\n"
				       "    - domain: example.com\n      next_hops:\n"
				       "        - {address: 198.51.100.14, tls: may}\n"
				       "  smarthost:\n    - {address: 198.51.100.15}\n",
			  CFG_RESTART_DP, &r),
		     0, "%s", r.text);
	/* and every route gone but the smarthost */
	cr_assert_eq(diff(STORE_ROUTED,
			  PORTS "listeners:\n  - port: 25\n    ack: store\n"
				"routes:\n  smarthost:\n    - {address: 198.51.100.15}\n",
			  CFG_RESTART_DP, &r),
		     0, "%s", r.text);
	/* what sizes the relay still does need one, with routes changed alongside */
	cr_assert_eq(diff(STORE_ROUTED,
			  PORTS "listeners:\n  - port: 25\n    ack: store\n"
				"routes:\n  smarthost:\n    - {address: 198.51.100.15}\n"
				"relay:\n  connections_per_hop: 4\n",
			  CFG_RESTART_DP, &r),
		     1, "%s", r.text);
	cr_assert_str_eq(r.text, "relay.connections_per_hop: 16 -> 4\n");
}

Test(restart, a_store_listener_may_lower_its_size_limit_but_not_raise_it)
{
	const char *store = PORTS "listeners:\n  - port: 25\n    ack: store\n    limits:\n"
				  "      max_message_size: 100000\n";
	struct report r;

	cr_assert_eq(diff(store,
			  PORTS "listeners:\n  - port: 25\n    ack: store\n    limits:\n"
				"      max_message_size: 5000\n",
			  CFG_RESTART_DP, &r),
		     0, "%s", r.text);
	cr_assert_eq(diff(store,
			  PORTS "listeners:\n  - port: 25\n    ack: store\n    limits:\n"
				"      max_message_size: 200000\n",
			  CFG_RESTART_DP, &r),
		     1);
	cr_assert_str_eq(r.text, "listeners[0].limits.max_message_size: 100000 -> 200000\n");
}

Test(restart, spool_relay_and_client_table_size_need_a_restart)
{
	struct report r;

	cr_assert_eq(diff(PORTS LISTENER "policy:\n  client_limits:\n    connections: 5\n",
			  PORTS LISTENER "policy:\n  client_limits:\n    connections: 5\n"
					 "    table_size: 1024\n"
					 "spool:\n  directory: /tmp/other\n"
					 "relay:\n  retry_first_s: 60\n  command_timeout_s: 60\n",
			  CFG_RESTART_DP, &r),
		     4);
	cr_assert_str_eq(r.text, "policy.client_limits.table_size: 65536 -> 1024\n"
				 "spool.directory: /var/spool/mxgate -> /tmp/other\n"
				 "relay.retry_first_s: 300 -> 60\n"
				 "relay.command_timeout_s: 300 -> 60\n");
}

Test(restart, turning_client_limits_on_needs_the_table_made_at_start)
{
	struct report r;

	cr_assert_eq(diff(PORTS LISTENER "policy:\n  client_limits:\n    connections: 0\n",
			  PORTS LISTENER "policy:\n  client_limits:\n    connections: 4\n",
			  CFG_RESTART_DP, &r),
		     1);
	cr_assert_str_eq(r.text, "policy.client_limits: all off -> a limit set\n");
	/* and off again is fine: the table stays, unused */
	cr_assert_eq(diff(PORTS LISTENER "policy:\n  client_limits:\n    connections: 4\n",
			  PORTS LISTENER "policy:\n  client_limits:\n    connections: 0\n",
			  CFG_RESTART_DP, &r),
		     0, "%s", r.text);
}

Test(restart, the_control_section_needs_a_restart_of_mxgate_control_only)
{
	struct report r;

	cr_assert_eq(diff(PORTS LISTENER, PORTS LISTENER "control:\n  socket: /tmp/other.sock\n",
			  CFG_RESTART_CONTROL, &r),
		     1);
	cr_assert_str_eq(r.text, "control.socket: /run/mxgate/control.sock -> /tmp/other.sock\n");
	cr_assert(strstr(r.why, "mxgate-control") != NULL);
	cr_assert_eq(diff(PORTS LISTENER, PORTS LISTENER "control:\n  socket: /tmp/other.sock\n",
			  CFG_RESTART_DP, &r),
		     0);
}

Test(restart, counting_without_a_callback)
{
	struct cfg *a = load_ok(PORTS LISTENER), *b = load_ok(PORTS LISTENER "  - port: 26\n");

	cr_assert_eq(cfg_restart_diff(a, b, CFG_RESTART_DP, NULL, NULL), 1);
	cfg_free(a);
	cfg_free(b);
	no_leaks();
}

Test(restart, tls_settings_and_a_listeners_tls_mode_are_hitless)
{
	struct report r;

	/* every snapshot makes the TLS contexts anew; the relay takes its snapshot's client one */
	cr_assert_eq(diff(PORTS LISTENER,
			  PORTS LISTENER "tls:\n  min_version: TLSv1.3\n  handshake_timeout_ms: 5000\n"
					 "  ciphers: ECDHE+AESGCM\n  ciphersuites: TLS_AES_256_GCM_SHA384\n"
					 "  groups: X25519\n  session_tickets: false\n"
					 "  ca_file: /etc/ssl/certs/ca-certificates.crt\n",
			  CFG_RESTART_DP, &r),
		     0, "%s", r.text);
	cr_assert_eq(diff(PORTS LISTENER,
			  PORTS "listeners:\n  - port: 25\n    ack: sink\n    tls: none\n",
			  CFG_RESTART_DP, &r),
		     0, "%s", r.text);
}

#define SUBMISSION                                                                                 \
	"listeners:\n  - port: 25\n    ack: sink\n  - port: 587\n    ack: sink\n"              \
	"    mode: submission\n"
#define AUTH(extra) "auth:\n  password_file: /etc/mxgate/users\n" extra

Test(restart, auth_password_file_failures_and_lockout_are_hitless)
{
	struct report r;

	cr_assert_eq(diff(PORTS SUBMISSION AUTH(""),
			  PORTS SUBMISSION AUTH("  max_failures: 2\n  lockout_s: 3600\n")
				  "policy:\n  client_limits:\n    connections: 4\n",
			  CFG_RESTART_DP, &r),
		     0, "%s", r.text);
	cr_assert_eq(diff(PORTS SUBMISSION AUTH(""),
			  PORTS SUBMISSION "auth:\n  password_file: /etc/mxgate/users.new\n",
			  CFG_RESTART_DP, &r),
		     0, "%s", r.text);
}

Test(restart, auth_queue_depth_may_be_lowered_but_not_raised)
{
	struct report r;

	cr_assert_eq(diff(PORTS SUBMISSION AUTH(""), PORTS SUBMISSION AUTH("  queue_depth: 16\n"),
			  CFG_RESTART_DP, &r),
		     0, "%s", r.text);
	cr_assert_eq(diff(PORTS SUBMISSION AUTH("  queue_depth: 16\n"), PORTS SUBMISSION AUTH(""),
			  CFG_RESTART_DP, &r),
		     1);
	cr_assert_str_eq(r.text, "auth.queue_depth: 16 -> 256\n");
	cr_assert(strstr(r.why, "queues are sized at start") != NULL, "%s", r.why);
	/* without AUTH at start there is no thread, and the depth means nothing */
	cr_assert_eq(diff(PORTS LISTENER "auth:\n  queue_depth: 16\n", PORTS LISTENER,
			  CFG_RESTART_DP, &r),
		     0, "%s", r.text);
}

Test(restart, offering_auth_where_no_listener_did_at_start_needs_a_restart)
{
	struct report r;

	cr_assert_eq(diff(PORTS SUBMISSION, PORTS SUBMISSION AUTH(""), CFG_RESTART_DP, &r), 1);
	cr_assert_str_eq(r.text,
			 "listeners[].auth: offered by no listener -> offered by a listener\n");
	cr_assert(strstr(r.why, "authentication thread") != NULL, "%s", r.why);
	/* and turning it off is fine: the thread stays, unused */
	cr_assert_eq(diff(PORTS SUBMISSION AUTH(""), PORTS SUBMISSION, CFG_RESTART_DP, &r), 0,
		     "%s", r.text);
}

Test(restart, with_auth_the_client_table_exists_so_limits_turn_on_but_its_size_is_fixed)
{
	struct report r;

	cr_assert_eq(diff(PORTS SUBMISSION AUTH(""),
			  PORTS SUBMISSION AUTH("") "policy:\n  client_limits:\n    connections: 4\n"
						    "    table_size: 1024\n",
			  CFG_RESTART_DP, &r),
		     1);
	cr_assert_str_eq(r.text, "policy.client_limits.table_size: 65536 -> 1024\n");
}
