/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The config loader as an operator meets it: defaults on a short file, the
 * shipped files load, and every mistake comes back as one exact
 * "FILE:LINE:COLUMN: key.path: what" line, all of them in one run.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "control/config/config.h"
#include "cfg_load.h"

#ifndef EXAMPLE_PATH
#error "meson passes EXAMPLE_PATH (mxgate.yaml.example)"
#endif
#ifndef TAP_PATH
#error "meson passes TAP_PATH (scripts/mxgate-tap.yaml)"
#endif
#ifndef VECTORS_DIR
#error "meson passes VECTORS_DIR (tests/vectors/config)"
#endif


/* The smallest valid port, appended after the lines a test cares about. */
#define PORTS "  ports:\n    - device: net_tap0\n      addresses: [198.51.100.2/24]\n"
#define PCI_PORTS "  ports:\n    - device: 0000:01:00.0\n      addresses: [198.51.100.2/24]\n"

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	cr_assert_not_null(f, "cannot open %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	cr_assert_not_null(buf);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static uint32_t ip(const char *s)
{
	struct in_addr a;

	cr_assert_eq(inet_pton(AF_INET, s, &a), 1);
	return a.s_addr;
}

/* ---- files that load ---- */

Test(config_defaults, minimal_file_gets_every_documented_default)
{
	struct cfg *c = load_ok("dataplane:\n" PORTS);
	const struct cfg_dataplane *dp = &c->dp;

	cr_assert_str_eq(c->path, "t.yaml");
	cr_assert_eq(dp->main_core, 0);
	cr_assert_eq(dp->n_workers, 1);
	cr_assert_eq(dp->worker_cores[0], 1);
	cr_assert_eq(dp->memory_mode, CFG_MEM_HUGEPAGES);
	cr_assert_eq(dp->memory_mb, 512);
	cr_assert(dp->in_memory);
	cr_assert_str_eq(dp->file_prefix, "mxgate");
	cr_assert_eq(dp->idle_sleep_us, 0);
	cr_assert_eq(dp->tx_drain_us, 100);
	cr_assert_eq(dp->mbufs_per_worker, 8191);
	cr_assert_eq(dp->steer_ring_size, 1024);
	cr_assert_eq(dp->n_eal_args, 0);
	cr_assert_null(dp->eal_args);
	cr_assert_eq(dp->n_ports, 1);
	cr_assert_str_eq(dp->ports[0].name, "port0");
	cr_assert_str_eq(dp->ports[0].device, "net_tap0");
	cr_assert_not(dp->ports[0].is_pci);
	cr_assert_eq(dp->ports[0].mtu, 1500);
	cr_assert_eq(dp->ports[0].rx_desc, 1024);
	cr_assert_eq(dp->ports[0].tx_desc, 1024);
	cr_assert_eq(dp->ports[0].steering, CFG_STEER_AUTO);
	cr_assert_eq(dp->ports[0].n_addrs, 1);
	cr_assert_eq(dp->ports[0].addrs[0].addr, ip("198.51.100.2"));
	cr_assert_eq(dp->ports[0].addrs[0].len, 24);
	cr_assert_eq(dp->n_routes, 0);
	cr_assert_eq(dp->arp_timeout_s, 300);
	cr_assert_eq(dp->arp_pending_max, 8);
	cr_assert_eq(dp->icmp_echo_rate, 10000);
	cr_assert_eq(dp->icmp_echo_burst, 2000);
	cr_assert_eq(dp->icmp_error_rate, 100);
	cr_assert_eq(dp->icmp_error_burst, 50);
	cfg_free(c);
	no_leaks();
}

Test(config_defaults, empty_sections_and_lists_take_the_defaults)
{
	struct cfg *c = load_ok("dataplane:\n  memory:\n  arp: ~\n  icmp: {}\n  worker_cores:\n"
				"  eal_args: []\n  routes:\n" PORTS);

	cr_assert_eq(c->dp.memory_mb, 512);
	cr_assert_eq(c->dp.arp_timeout_s, 300);
	cr_assert_eq(c->dp.icmp_error_burst, 50);
	cr_assert_eq(c->dp.n_workers, 1);
	cr_assert_eq(c->dp.worker_cores[0], 1);
	cr_assert_eq(c->dp.n_eal_args, 0);
	cr_assert_eq(c->dp.n_routes, 0);
	cfg_free(c);
}

Test(config_files, example_file_loads_with_a_pci_port)
{
	struct cfg *c = cfg_load(EXAMPLE_PATH, stderr);

	cr_assert_not_null(c, "mxgate.yaml.example must load");
	cr_assert_str_eq(c->path, EXAMPLE_PATH);
	cr_assert_eq(c->dp.n_ports, 1);
	cr_assert(c->dp.ports[0].is_pci);
	cr_assert_geq(c->dp.n_routes, 1);
	cfg_free(c);
	no_leaks();
}

Test(config_files, example_file_sets_every_key)
{
	/* "every key present": an example that omits one hides it from operators */
	/* clang-format off */
	static const char *const keys[] = {
		"main_core:", "worker_cores:", "memory:", "mode:", "size_mb:", "in_memory:",
		"file_prefix:", "idle_sleep_us:", "tx_drain_us:", "mbufs_per_worker:",
		"steer_ring_size:", "eal_args:", "ports:", "name:", "device:", "mtu:",
		"rx_desc:", "tx_desc:", "steering:", "addresses:", "routes:", "dst:", "via:",
		"arp:", "timeout_s:", "pending_max:", "icmp:", "echo_rate:", "echo_burst:",
		"error_rate:", "error_burst:", "tcp:", "cc:", "syn_backlog:", "max_conns:",
		"rto_min_ms:", "delack_ms:", "time_wait_max:", "rcv_buf_kb:", "snd_buf_kb:",
		"echo_port:", "discard_port:",
		"listeners:", "port:", "ack:", "hostname:", "greeting_pause_ms:",
		"normalize_bare_eol:", "limits:",
		"max_message_size:", "max_recipients:", "max_errors:", "command_line:",
		"text_line:", "input_no_crlf:", "sessions:",
		"policy:", "relay_domains:", "relay_networks:", "recipients:", "domain:",
		"local_parts:", "client_limits:", "connections:", "connection_rate:",
		"connection_burst:", "message_rate:", "message_burst:", "exempt_relay_networks:",
		"table_size:",
		"routes:", "domains:", "next_hops:", "address:", "priority:", "weight:", "smarthost:",
		"spool:", "directory:", "commit_window_us:", "commit_bytes_kb:", "size_limit_mb:",
		"segment_mb:", "staging_mb:", "max_messages:", "probe_interval_ms:",
		"high_water_percent:", "commit_latency_ms:",
		"relay:", "helo_name:", "retry_first_s:", "retry_max_s:", "lifetime_h:",
		"delay_warning_h:", "connections_per_hop:", "messages_per_connection:",
		"idle_timeout_s:", "connect_timeout_s:", "pipelining:", "chunking:", "send_8bit:",
		"bounce_return_kb:", "queue_max:", "command_timeout_s:", "data_block_timeout_s:",
		"data_end_timeout_s:",
	};
	/* clang-format on */
	size_t len;
	char *text = slurp(EXAMPLE_PATH, &len);

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		bool found = false;

		for (char *line = text; line != NULL && !found; line = strchr(line, '\n')) {
			line += line[0] == '\n';
			while (*line == ' ' || *line == '-')
				line++;
			found = strncmp(line, keys[i], strlen(keys[i])) == 0;
		}
		cr_expect(found, "mxgate.yaml.example does not set %s", keys[i]);
	}
	free(text);
}

Test(config_files, tap_config_is_what_the_readme_runs)
{
	struct cfg *c = cfg_load(TAP_PATH, stderr);

	cr_assert_not_null(c, "scripts/mxgate-tap.yaml must load");
	cr_assert_eq(c->dp.main_core, 0);
	cr_assert_eq(c->dp.n_workers, 1);
	cr_assert_eq(c->dp.worker_cores[0], 1);
	cr_assert_eq(c->dp.memory_mode, CFG_MEM_HUGEPAGES);
	cr_assert_eq(c->dp.memory_mb, 512);
	cr_assert(c->dp.in_memory);
	cr_assert_str_eq(c->dp.file_prefix, "mxgate");
	cr_assert_eq(c->dp.idle_sleep_us, 20);
	cr_assert_eq(c->dp.n_ports, 1);
	cr_assert_str_eq(c->dp.ports[0].name, "tap0");
	cr_assert_str_eq(c->dp.ports[0].device, "net_tap0,iface=mxg0");
	cr_assert_not(c->dp.ports[0].is_pci);
	cr_assert_eq(c->dp.ports[0].n_addrs, 1);
	cr_assert_eq(c->dp.ports[0].addrs[0].addr, ip("198.51.100.2"));
	cr_assert_eq(c->dp.ports[0].addrs[0].len, 24);
	cr_assert_eq(c->dp.n_routes, 1);
	cr_assert_eq(c->dp.routes[0].dst.addr, 0);
	cr_assert_eq(c->dp.routes[0].dst.len, 0);
	cr_assert_eq(c->dp.routes[0].via, ip("198.51.100.1"));
	cfg_free(c);
	no_leaks();
}

Test(config_files, every_value_is_read_in_full)
{
	struct cfg *c = load_ok(
		"dataplane:\n"
		"  main_core: 2\n"
		"  worker_cores: [3, 3, 5]\n"
		"  memory: {mode: no-huge, size_mb: 1024, in_memory: no, file_prefix: mx-1_a}\n"
		"  idle_sleep_us: 7\n"
		"  tx_drain_us: 9\n"
		"  mbufs_per_worker: 1024\n"
		"  steer_ring_size: 65536\n"
		"  eal_args: [--log-level=8, \"--huge-unlink\"]\n"
		"  ports:\n"
		"    - name: lan\n"
		"      device: 01:00.1\n"
		"      mtu: 9000\n"
		"      rx_desc: 64\n"
		"      tx_desc: 4096\n"
		"      steering: hardware\n"
		"      addresses: [198.51.100.2/24, 198.51.100.130/25]\n"
		"    - device: net_memif0,role=server\n"
		"      steering: software\n"
		"      addresses: [203.0.113.2/32]\n"
		"  routes:\n"
		"    - {dst: 203.0.113.128/25, via: 198.51.100.1}\n"
		"  arp: {timeout_s: 1, pending_max: 256}\n"
		"  icmp: {echo_rate: 0, echo_burst: 1, error_rate: 0, error_burst: 1}\n");
	const struct cfg_dataplane *dp = &c->dp;

	cr_assert_eq(dp->main_core, 2);
	cr_assert_eq(dp->n_workers, 3);
	cr_assert_eq(dp->worker_cores[0], 3);
	cr_assert_eq(dp->worker_cores[1], 3, "a CPU may repeat");
	cr_assert_eq(dp->worker_cores[2], 5);
	cr_assert_eq(dp->memory_mode, CFG_MEM_NO_HUGE);
	cr_assert_eq(dp->memory_mb, 1024);
	cr_assert_not(dp->in_memory);
	cr_assert_str_eq(dp->file_prefix, "mx-1_a");
	cr_assert_eq(dp->idle_sleep_us, 7);
	cr_assert_eq(dp->tx_drain_us, 9);
	cr_assert_eq(dp->mbufs_per_worker, 1024);
	cr_assert_eq(dp->steer_ring_size, 65536);
	cr_assert_eq(dp->n_eal_args, 2);
	cr_assert_str_eq(dp->eal_args[0], "--log-level=8");
	cr_assert_str_eq(dp->eal_args[1], "--huge-unlink");
	cr_assert_eq(dp->n_ports, 2);
	cr_assert_str_eq(dp->ports[0].name, "lan");
	cr_assert(dp->ports[0].is_pci);
	cr_assert_eq(dp->ports[0].mtu, 9000);
	cr_assert_eq(dp->ports[0].rx_desc, 64);
	cr_assert_eq(dp->ports[0].tx_desc, 4096);
	cr_assert_eq(dp->ports[0].steering, CFG_STEER_HARDWARE);
	cr_assert_eq(dp->ports[0].n_addrs, 2);
	cr_assert_eq(dp->ports[0].addrs[1].addr, ip("198.51.100.130"));
	cr_assert_eq(dp->ports[0].addrs[1].len, 25);
	cr_assert_str_eq(dp->ports[1].name, "port1");
	cr_assert_not(dp->ports[1].is_pci);
	cr_assert_eq(dp->ports[1].steering, CFG_STEER_SOFTWARE);
	cr_assert_eq(dp->ports[1].addrs[0].len, 32);
	cr_assert_eq(dp->n_routes, 1);
	cr_assert_eq(dp->routes[0].dst.addr, ip("203.0.113.128"));
	cr_assert_eq(dp->routes[0].dst.len, 25);
	cr_assert_eq(dp->routes[0].via, ip("198.51.100.1"));
	cr_assert_eq(dp->arp_timeout_s, 1);
	cr_assert_eq(dp->arp_pending_max, 256);
	cr_assert_eq(dp->icmp_echo_rate, 0, "0 means unlimited");
	cr_assert_eq(dp->icmp_echo_burst, 1);
	cfg_free(c);
	no_leaks();
}

Test(config_files, booleans_take_the_usual_yaml_spellings)
{
	static const char *const yes[] = { "true", "True", "TRUE", "yes", "on" };
	static const char *const no[] = { "false", "False", "no", "off", "OFF" };
	char yaml[256];

	for (unsigned i = 0; i < 5; i++) {
		for (unsigned v = 0; v < 2; v++) {
			const char *word = v != 0 ? yes[i] : no[i];

			snprintf(yaml, sizeof(yaml),
				 "dataplane:\n  memory: {in_memory: %s}\n" PORTS, word);

			struct cfg *c = load_ok(yaml);

			cr_assert_eq(c->dp.in_memory, v != 0, "%s", word);
			cfg_free(c);
		}
	}
}

Test(config_files, pci_addresses_are_told_from_vdevs)
{
	/* clang-format off */
	static const struct {
		const char *dev;
		bool pci;
	} cases[] = {
		{ "0000:01:00.0", true },      { "01:00.0", true },
		{ "0000:AF:1f.7", true },      { "0000:01:00.0,txq_inline=0", true },
		{ "net_tap0,iface=mxg0", false }, { "net_af_packet0,iface=eth1", false },
		{ "0000:01:00", false },       { "01:00.8", false },
		{ "1:0.0", false },            { "0000:01:00.0x", false },
	};
	/* clang-format on */
	char yaml[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(yaml, sizeof(yaml),
			 "dataplane:\n  ports:\n    - device: \"%s\"\n"
			 "      addresses: [198.51.100.2/24]\n",
			 cases[i].dev);

		struct cfg *c = load_ok(yaml);

		cr_assert_eq(c->dp.ports[0].is_pci, cases[i].pci, "%s", cases[i].dev);
		cr_assert_str_eq(c->dp.ports[0].device, cases[i].dev);
		cfg_free(c);
	}
	no_leaks();
}

Test(config_files, prefix_prints_as_dotted_quad_and_length)
{
	struct cfg_prefix p = { .addr = ip("203.0.113.0"), .len = 24 };
	char buf[19];

	cr_assert_str_eq(cfg_prefix_str(&p, buf, sizeof(buf)), "203.0.113.0/24");
	p = (struct cfg_prefix){ .addr = ip("255.255.255.255"), .len = 32 };
	cr_assert_str_eq(cfg_prefix_str(&p, buf, sizeof(buf)), "255.255.255.255/32");
	cfg_free(NULL);
}

/* ---- reading the file ---- */

Test(config_read, missing_file_is_one_line_with_the_reason)
{
	char *err = NULL;
	size_t n;
	FILE *f = open_memstream(&err, &n);

	cr_assert_null(cfg_load("/nonexistent/mxgate.yaml", f));
	fclose(f);
	cr_assert_str_eq(err, "/nonexistent/mxgate.yaml: cannot read: No such file or directory\n");
	free(err);
	no_leaks();
}

Test(config_read, directory_is_one_line_with_the_reason)
{
	char *err = NULL;
	size_t n;
	FILE *f = open_memstream(&err, &n);

	cr_assert_null(cfg_load("/", f));
	fclose(f);
	cr_assert_str_eq(err, "/: cannot read: Is a directory\n");
	free(err);
}

Test(config_read, errors_name_the_file_as_given)
{
	char path[] = "/tmp/mxgate-test-XXXXXX";
	int fd = mkstemp(path);
	char *err = NULL, want[512];
	size_t n;

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "dataplane:\n  mtu: 1\n", 20), 20);
	close(fd);

	FILE *f = open_memstream(&err, &n);

	cr_assert_null(cfg_load(path, f));
	fclose(f);
	unlink(path);
	snprintf(want, sizeof(want),
		 "%s:1:1: dataplane.ports: missing; at least one port is required\n"
		 "%s:2:3: dataplane.mtu: unknown key; expected one of: main_core, worker_cores, "
		 "memory, idle_sleep_us, tx_drain_us, mbufs_per_worker, steer_ring_size, eal_args, "
		 "ports, routes, arp, icmp, tcp\n",
		 path, path);
	cr_assert_str_eq(err, want);
	free(err);
	no_leaks();
}

Test(config_read, null_error_stream_is_allowed)
{
	cr_assert_null(cfg_load_data("t.yaml", (const uint8_t *)"x: [", 4, NULL));
	cr_assert_null(cfg_load("/nonexistent/mxgate.yaml", NULL));
	no_leaks();
}

/* ---- structure: what libyaml and libcyaml see ---- */

Test(config_structure, empty_file_says_a_port_is_required)
{
	expect_errors("", "t.yaml:1:1: dataplane.ports: missing (the file is empty); "
			  "at least one port is required\n");
	expect_errors("# only a comment\n\n", "t.yaml:1:1: dataplane.ports: missing (the file is "
					      "empty); at least one port is required\n");
	expect_errors("---\n~\n", "t.yaml:2:1: dataplane.ports: missing (the file is empty); "
				  "at least one port is required\n");
}

Test(config_structure, unknown_key_suggests_the_closest_known_key)
{
	expect_errors("dataplane:\n  ports:\n    - device: net_tap0\n      mtux: 1500\n"
		      "      addresses: [198.51.100.2/24]\n",
		      "t.yaml:4:7: dataplane.ports[0].mtux: unknown key; did you mean 'mtu'?\n");
}

Test(config_structure, unknown_key_lists_the_keys_allowed_there)
{
	expect_errors("dataplane:\n" PORTS "queue: []\n",
		      "t.yaml:5:1: queue: unknown key; expected one of: dataplane, listeners, policy, "
		      "routes, spool, relay, control, logging, tls, auth\n");
	expect_errors("dataplane:\n  memory:\n    zzz: 1\n" PORTS,
		      "t.yaml:3:5: dataplane.memory.zzz: unknown key; expected one of: mode, "
		      "size_mb, in_memory, file_prefix\n");
}

Test(config_structure, every_unknown_key_is_reported_not_just_the_first)
{
	expect_errors(
		"dataplane:\n  main_cores: 0\n  memroy: {}\n" PORTS "  arp: {timeout: 5}\n",
		"t.yaml:2:3: dataplane.main_cores: unknown key; did you mean 'main_core'?\n"
		"t.yaml:3:3: dataplane.memroy: unknown key; did you mean 'memory'?\n"
		"t.yaml:7:9: dataplane.arp.timeout: unknown key; did you mean 'timeout_s'?\n");
}

Test(config_structure, word_for_mtu_says_it_is_not_a_number)
{
	expect_errors(
		"dataplane:\n  ports:\n    - device: net_tap0\n      mtu: abc\n"
		"      addresses: [198.51.100.2/24]\n",
		"t.yaml:4:12: dataplane.ports[0].mtu: 'abc' is not a number; expected a whole "
		"number between 68 and 9000\n");
}

Test(config_structure, list_where_a_value_belongs_names_the_key)
{
	/* reported by libcyaml, translated from its backtrace */
	expect_errors(
		"dataplane:\n  ports:\n    - device: net_tap0\n      mtu: [1500]\n"
		"      addresses: [198.51.100.2/24]\n",
		"t.yaml:4:12: dataplane.ports[0].mtu: expected a single value, found a list\n");
}

Test(config_structure, value_where_a_list_belongs_names_the_key)
{
	expect_errors("dataplane:\n  ports: tap0\n",
		      "t.yaml:2:10: dataplane.ports: expected a list, found a single value\n");
	expect_errors("dataplane:\n  ports:\n    - tap0\n",
		      "t.yaml:3:7: dataplane.ports[0]: expected a mapping of keys, found a single "
		      "value\n");
	expect_errors("- dataplane\n",
		      "t.yaml:1:1: (top level): expected a mapping of keys, found a list\n");
}

Test(config_structure, tab_indentation_points_at_the_tab)
{
	expect_errors("dataplane:\n\tports: []\n",
		      "t.yaml:2:1: dataplane: tab character; YAML indents with spaces only\n");
}

Test(config_structure, bad_indentation_points_at_the_line)
{
	expect_errors("dataplane:\n  main_core: 0\n worker_cores: [1]\n",
		      "t.yaml:3:2: (top level): expected a 'key:' lined up with the keys of the "
		      "mapping at line 1\n");
	expect_errors("dataplane:\n  main_core: 0\n    worker_cores: [1]\n",
		      "t.yaml:3:17: dataplane: unexpected ':'; check this line's indentation, or "
		      "quote the value\n");
	expect_errors(
		"dataplane:\n  ports:\n    - device: net_tap0\n     mtu: 1500\n",
		"t.yaml:4:6: dataplane.ports: expected a '- ' entry lined up with the list at "
		"line 3\n");
}

Test(config_structure, unclosed_quote_or_bracket_points_at_where_it_opened)
{
	expect_errors("dataplane:\n  memory:\n    file_prefix: \"mx\n",
		      "t.yaml:3:18: dataplane.memory.file_prefix: the quoted value has no closing "
		      "quote\n");
	expect_errors("dataplane:\n  worker_cores: [1, 2\n  main_core: 0\n",
		      "t.yaml:3:12: dataplane.worker_cores: expected ',' or ']' to go on or close "
		      "the list at 2:17\n");
}

Test(config_structure, key_without_colon_points_at_the_key)
{
	expect_errors("dataplane:\n  main_core: 0\n  worker_cores\n",
		      "t.yaml:3:3: dataplane: expected 'key: value', found no ':' after the key\n");
}

Test(config_structure, duplicate_key_names_where_it_was_first_set)
{
	expect_errors(
		"dataplane:\n  main_core: 0\n" PORTS "  main_core: 1\n",
		"t.yaml:6:3: dataplane.main_core: duplicate key; it is already set at line 2\n");
}

Test(config_structure, aliases_and_second_documents_are_refused)
{
	expect_errors("dataplane:\n  main_core: &c 1\n  worker_cores: [*c]\n" PORTS,
		      "t.yaml:3:18: dataplane.worker_cores: YAML aliases (*c) are not supported; "
		      "write the value out\n");
	expect_errors("dataplane:\n" PORTS "---\ndataplane: {}\n",
		      "t.yaml:5:1: (top level): a second YAML document starts here; the file must "
		      "hold one\n");
}

Test(config_structure, absurd_nesting_is_refused_before_it_costs_anything)
{
	char yaml[256] = "dataplane:\n  eal_args: ";
	size_t n = strlen(yaml);

	for (unsigned i = 0; i < 40; i++)
		yaml[n++] = '[';
	for (unsigned i = 0; i < 40; i++)
		yaml[n++] = ']';
	yaml[n] = '\0';

	char *err = NULL;
	struct cfg *c = load(yaml, &err);

	cr_assert_null(c);
	cr_assert(strncmp(err, "t.yaml:2:43: dataplane.eal_args[0][0]", 37) == 0, "%s", err);
	cr_assert_not_null(strstr(err, ": nested more than 32 levels deep\n"), "%s", err);
	free(err);
	no_leaks();
}

Test(config_structure, binary_junk_is_not_text)
{
	expect_errors("dataplane:\n  main_core: 1\x01\n",
		      "t.yaml:2:15: (top level): not valid text: control characters are not "
		      "allowed\n");
	expect_errors("dataplane:\n  main_core: \xc3\x28\n",
		      "t.yaml:2:15: (top level): not valid text: invalid trailing UTF-8 octet\n");
}

/* ---- meaning: each check, exactly as the operator reads it ---- */

Test(config_values, mtu_out_of_range_names_line_column_and_key)
{
	expect_errors("dataplane:\n  ports:\n    - device: net_tap0\n      mtu: 70000\n"
		      "      addresses: [198.51.100.2/24]\n",
		      "t.yaml:4:12: dataplane.ports[0].mtu: 70000 is not between 68 and 9000\n");
	expect_errors("dataplane:\n  ports:\n    - device: net_tap0\n      mtu: 67\n"
		      "      addresses: [198.51.100.2/24]\n",
		      "t.yaml:4:12: dataplane.ports[0].mtu: 67 is not between 68 and 9000\n");
}

Test(config_values, numbers_are_plain_decimal)
{
	/* libcyaml alone would take these as 2^64-1, 16 and 1 */
	expect_errors(
		"dataplane:\n  main_core: -1\n  tx_drain_us: 0x10\n  idle_sleep_us: 1.5\n"
		"  mbufs_per_worker: 99999999999999999999999\n" PORTS,
		"t.yaml:2:14: dataplane.main_core: -1 is not between 0 and 1023\n"
		"t.yaml:3:16: dataplane.tx_drain_us: '0x10' is not a number; expected a whole "
		"number between 1 and 100000\n"
		"t.yaml:4:18: dataplane.idle_sleep_us: '1.5' is not a number; expected a whole "
		"number between 0 and 100000\n"
		"t.yaml:5:21: dataplane.mbufs_per_worker: 99999999999999999999999 is not "
		"between 1024 and 16777216\n");
}

Test(config_values, key_left_empty_says_how_to_get_the_default)
{
	expect_errors(
		"dataplane:\n  tx_drain_us:\n  memory:\n    mode: ~\n    in_memory:\n"
		"    file_prefix:\n" PORTS,
		"t.yaml:2:3: dataplane.tx_drain_us: no value; write a number between 1 and "
		"100000, or remove the key for the default 100\n"
		"t.yaml:4:5: dataplane.memory.mode: no value; write one of: hugepages, no-huge, "
		"or remove the key for the default hugepages\n"
		"t.yaml:5:5: dataplane.memory.in_memory: no value; write true or false, or "
		"remove the key for the default true\n"
		"t.yaml:6:5: dataplane.memory.file_prefix: empty; write a value, or remove the "
		"key for the default 'mxgate'\n");
}

Test(config_values, control_characters_in_a_value_stay_on_one_line)
{
	expect_errors(
		"dataplane:\n  memory:\n    file_prefix: \"mx\\ngate\\t\\x01\"\n" PORTS,
		"t.yaml:3:18: dataplane.memory.file_prefix: 'mx\\ngate\\t\\x01' is not a valid "
		"file prefix: use up to 64 letters, digits, '_' or '-'\n");
}

Test(config_values, list_entry_left_empty_says_what_to_write)
{
	expect_errors(
		"dataplane:\n  worker_cores:\n    - 1\n    -\n" PORTS,
		"t.yaml:4:6: dataplane.worker_cores[1]: no value; write a number between 0 and "
		"1023\n");
}

Test(config_values, worker_count_is_one_to_sixteen)
{
	/* a PCI port: net_tap has its own, lower limit (net_tap_takes_at_most_four_workers) */
	expect_errors("dataplane:\n  worker_cores: []\n" PCI_PORTS,
		      "t.yaml:2:17: dataplane.worker_cores: empty; at least one worker core is "
		      "required\n");
	expect_errors("dataplane:\n  worker_cores: [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]\n" PCI_PORTS,
		      "t.yaml:2:3: dataplane.worker_cores: 17 worker cores; at most 16 are "
		      "supported\n");

	struct cfg *c =
		load_ok("dataplane:\n  worker_cores: [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]\n" PCI_PORTS);

	cr_assert_eq(c->dp.n_workers, CFG_MAX_WORKERS);
	cfg_free(c);
}

Test(config_values, core_ids_are_below_1024)
{
	expect_errors("dataplane:\n  main_core: 1024\n  worker_cores: [1023, 4096]\n" PORTS,
		      "t.yaml:2:14: dataplane.main_core: 1024 is not between 0 and 1023\n"
		      "t.yaml:3:24: dataplane.worker_cores[1]: 4096 is not between 0 and 1023\n");
}

Test(config_values, memory_settings_are_checked)
{
	expect_errors("dataplane:\n  memory:\n    mode: hugepage\n    size_mb: 63\n"
		      "    in_memory: maybe\n    file_prefix: mx/gate\n" PORTS,
		      "t.yaml:3:11: dataplane.memory.mode: 'hugepage' is not one of: hugepages, "
		      "no-huge\n"
		      "t.yaml:4:14: dataplane.memory.size_mb: 63 is not between 64 and 1048576\n"
		      "t.yaml:5:16: dataplane.memory.in_memory: 'maybe' is not true or false\n"
		      "t.yaml:6:18: dataplane.memory.file_prefix: 'mx/gate' is not a valid file "
		      "prefix: use up to 64 letters, digits, '_' or '-'\n");
	expect_errors("dataplane:\n  memory:\n    size_mb: 1048577\n    file_prefix: \"\"\n" PORTS,
		      "t.yaml:3:14: dataplane.memory.size_mb: 1048577 is not between 64 and "
		      "1048576\n"
		      "t.yaml:4:18: dataplane.memory.file_prefix: empty; write a value, or remove "
		      "the key for the default 'mxgate'\n");
}

Test(config_values, worker_tuning_is_checked)
{
	expect_errors(
		"dataplane:\n  tx_drain_us: 100001\n  mbufs_per_worker: 1023\n"
		"  steer_ring_size: 1000\n  idle_sleep_us: 100001\n" PORTS,
		"t.yaml:2:16: dataplane.tx_drain_us: 100001 is not between 1 and 100000\n"
		"t.yaml:3:21: dataplane.mbufs_per_worker: 1023 is not between 1024 and "
		"16777216\n"
		"t.yaml:4:20: dataplane.steer_ring_size: 1000 is not a power of two (64, 128, "
		"256, ... 65536)\n"
		"t.yaml:5:18: dataplane.idle_sleep_us: 100001 is not between 0 and 100000\n");
	expect_errors("dataplane:\n  steer_ring_size: 32\n" PORTS,
		      "t.yaml:2:20: dataplane.steer_ring_size: 32 is not between 64 and 65536\n");
}

Test(config_values, eal_args_must_not_be_empty_strings)
{
	expect_errors("dataplane:\n  eal_args: [--log-level=8, \"\"]\n" PORTS,
		      "t.yaml:2:29: dataplane.eal_args[1]: empty; a value is required\n");
}

Test(config_ports, at_least_one_and_at_most_four_ports)
{
	expect_errors("dataplane:\n  ports: []\n",
		      "t.yaml:2:10: dataplane.ports: empty; at least one port is required\n");
	expect_errors("dataplane:\n  main_core: 0\n",
		      "t.yaml:1:1: dataplane.ports: missing; at least one port is required\n");
	expect_errors("dataplane:\n  ports:\n"
		      "    - {device: net_tap0, addresses: [198.51.100.1/24]}\n"
		      "    - {device: net_tap1, addresses: [198.51.100.2/24]}\n"
		      "    - {device: net_tap2, addresses: [198.51.100.3/24]}\n"
		      "    - {device: net_tap3, addresses: [198.51.100.4/24]}\n"
		      "    - {device: net_tap4, addresses: [198.51.100.5/24]}\n",
		      "t.yaml:2:3: dataplane.ports: 5 ports; at most 4 are supported\n");
}

Test(config_ports, port_needs_a_device_and_an_address)
{
	expect_errors(
		"dataplane:\n  ports:\n    - name: wan\n",
		"t.yaml:3:7: dataplane.ports[0].device: missing; give a PCI address "
		"(0000:01:00.0) or a vdev (net_tap0,iface=mxg0)\n"
		"t.yaml:3:7: dataplane.ports[0].addresses: missing; give at least one address "
		"with its prefix, e.g. 198.51.100.2/24\n");
	expect_errors("dataplane:\n  ports:\n    - device: \"\"\n      addresses: []\n",
		      "t.yaml:3:15: dataplane.ports[0].device: empty; a value is required\n"
		      "t.yaml:4:18: dataplane.ports[0].addresses: empty; give at least one address "
		      "with its prefix, e.g. 198.51.100.2/24\n");
}

Test(config_ports, names_and_devices_are_unique)
{
	expect_errors(
		"dataplane:\n  ports:\n"
		"    - {name: wan, device: 0000:01:00.0, addresses: [198.51.100.2/24]}\n"
		"    - {name: wan, device: 01:00.0, addresses: [203.0.113.2/24]}\n"
		"    - {device: net_tap0, addresses: [203.0.113.3/24]}\n"
		"    - {name: port2, device: \"net_tap0,iface=x\", addresses: [203.0.113.4/24]}\n",
		"t.yaml:4:14: dataplane.ports[1].name: name 'wan' is already used by "
		"dataplane.ports[0] (line 3)\n"
		"t.yaml:4:27: dataplane.ports[1].device: device 0000:01:00.0 is already used by "
		"dataplane.ports[0] (line 3)\n"
		"t.yaml:6:14: dataplane.ports[3].name: name 'port2' is already used by "
		"dataplane.ports[2] (line 5)\n"
		"t.yaml:6:29: dataplane.ports[3].device: device net_tap0 is already used by "
		"dataplane.ports[2] (line 5)\n");
	expect_errors(
		"dataplane:\n  ports:\n    - name: my port\n      device: net_tap0\n"
		"      addresses: [198.51.100.2/24]\n",
		"t.yaml:3:13: dataplane.ports[0].name: 'my port' is not a valid name: use up to "
		"32 letters, digits, '_', '-' or '.'\n");
}

Test(config_ports, descriptor_rings_are_64_to_4096_in_steps_of_32)
{
	expect_errors(
		"dataplane:\n  ports:\n    - device: net_tap0\n      rx_desc: 1000\n"
		"      tx_desc: 8192\n      steering: rss\n"
		"      addresses: [198.51.100.2/24]\n",
		"t.yaml:4:16: dataplane.ports[0].rx_desc: 1000 is not a multiple of 32\n"
		"t.yaml:5:16: dataplane.ports[0].tx_desc: 8192 is not between 64 and 4096\n"
		"t.yaml:6:17: dataplane.ports[0].steering: 'rss' is not one of: auto, hardware, "
		"software\n");
}

Test(config_addresses, address_must_be_a_usable_host_with_a_prefix)
{
	expect_errors(
		"dataplane:\n  ports:\n    - device: net_tap0\n      addresses:\n"
		"        - 198.51.100.2\n"
		"        - 198.51.100.300/24\n"
		"        - 198.51.100.3/33\n"
		"        - 198.51.100.4/0\n"
		"        - 0.0.0.0/8\n"
		"        - 224.0.0.5/24\n"
		"        - 127.0.0.1/8\n"
		"        - 255.255.255.255/32\n",
		"t.yaml:5:11: dataplane.ports[0].addresses[0]: '198.51.100.2' has no prefix "
		"length; write it as 198.51.100.2/24 or the like\n"
		"t.yaml:6:11: dataplane.ports[0].addresses[1]: '198.51.100.300/24' is not an "
		"IPv4 address with a prefix length (a.b.c.d/len)\n"
		"t.yaml:7:11: dataplane.ports[0].addresses[2]: prefix length 33 is not between "
		"1 and 32\n"
		"t.yaml:8:11: dataplane.ports[0].addresses[3]: prefix length 0 is not between "
		"1 and 32\n"
		"t.yaml:9:11: dataplane.ports[0].addresses[4]: 0.0.0.0 is the unspecified "
		"address\n"
		"t.yaml:10:11: dataplane.ports[0].addresses[5]: 224.0.0.5 is a multicast "
		"address\n"
		"t.yaml:11:11: dataplane.ports[0].addresses[6]: 127.0.0.1 is a loopback "
		"address\n"
		"t.yaml:12:11: dataplane.ports[0].addresses[7]: 255.255.255.255 is the "
		"broadcast address\n");
}

Test(config_addresses, subnet_network_and_broadcast_addresses_are_refused)
{
	expect_errors(
		"dataplane:\n  ports:\n    - device: net_tap0\n"
		"      addresses: [198.51.100.0/24, 203.0.113.127/25]\n",
		"t.yaml:4:19: dataplane.ports[0].addresses[0]: 198.51.100.0 is the network "
		"address of 198.51.100.0/24; use a host address\n"
		"t.yaml:4:36: dataplane.ports[0].addresses[1]: 203.0.113.127 is the broadcast "
		"address of 203.0.113.0/25\n");

	struct cfg *c = load_ok("dataplane:\n  ports:\n    - device: net_tap0\n"
				"      addresses: [198.51.100.0/31, 198.51.100.255/32]\n");

	cr_assert_eq(c->dp.ports[0].n_addrs, 2, "/31 and /32 have no network or broadcast");
	cfg_free(c);
}

Test(config_addresses, address_given_twice_names_the_first)
{
	expect_errors("dataplane:\n  ports:\n    - device: net_tap0\n"
		      "      addresses: [198.51.100.2/24]\n"
		      "    - device: net_tap1\n"
		      "      addresses: [203.0.113.2/24, 198.51.100.2/25]\n",
		      "t.yaml:6:35: dataplane.ports[1].addresses[1]: 198.51.100.2 is already "
		      "assigned at dataplane.ports[0].addresses[0] (line 4)\n");
}

Test(config_addresses, too_many_addresses_on_a_port)
{
	expect_errors(
		"dataplane:\n  ports:\n    - device: net_tap0\n"
		"      addresses: [198.51.100.1/24, 198.51.100.2/24, 198.51.100.3/24, "
		"198.51.100.4/24, 198.51.100.5/24, 198.51.100.6/24, 198.51.100.7/24, "
		"198.51.100.8/24, 198.51.100.9/24]\n",
		"t.yaml:4:7: dataplane.ports[0].addresses: 9 addresses; at most 8 per port are "
		"supported\n");
}

Test(config_addresses, addresses_are_stored_in_network_byte_order)
{
	struct cfg *c = load_ok("dataplane:\n  ports:\n    - device: net_tap0\n"
				"      addresses: [203.0.113.9/24]\n"
				"  routes:\n    - {dst: 198.51.100.0/24, via: 203.0.113.1}\n");
	const uint8_t *a = (const uint8_t *)&c->dp.ports[0].addrs[0].addr;
	const uint8_t *v = (const uint8_t *)&c->dp.routes[0].via;
	const uint8_t *d = (const uint8_t *)&c->dp.routes[0].dst.addr;

	cr_assert(a[0] == 203 && a[1] == 0 && a[2] == 113 && a[3] == 9);
	cr_assert(v[0] == 203 && v[1] == 0 && v[2] == 113 && v[3] == 1);
	cr_assert(d[0] == 198 && d[1] == 51 && d[2] == 100 && d[3] == 0);
	cfg_free(c);
}

Test(config_routes, destination_with_host_bits_says_which)
{
	expect_errors("dataplane:\n" PORTS "  routes:\n    - dst: 203.0.113.5/24\n"
		      "      via: 198.51.100.1\n",
		      "t.yaml:6:12: dataplane.routes[0].dst: 203.0.113.5/24 has host bits set "
		      "(0.0.0.5); the network is 203.0.113.0/24\n");
	expect_errors("dataplane:\n" PORTS "  routes:\n    - dst: 203.0.113.0/0\n"
		      "      via: 198.51.100.1\n",
		      "t.yaml:6:12: dataplane.routes[0].dst: 203.0.113.0/0 has host bits set "
		      "(203.0.113.0); the network is 0.0.0.0/0\n");
}

Test(config_routes, gateway_off_every_subnet_is_not_on_link)
{
	expect_errors(
		"dataplane:\n" PORTS "  routes:\n    - dst: 0.0.0.0/0\n"
		"      via: 203.0.113.1\n",
		"t.yaml:7:12: dataplane.routes[0].via: 203.0.113.1 is not on-link: no port has "
		"an address in its subnet (198.51.100.0/24)\n");
}

Test(config_routes, gateway_must_be_a_unicast_neighbour)
{
	expect_errors(
		"dataplane:\n" PORTS "  routes:\n"
		"    - {dst: 0.0.0.0/0, via: 198.51.100.2}\n"
		"    - {dst: 203.0.113.0/24, via: 198.51.100.255}\n"
		"    - {dst: 203.0.113.0/25, via: 224.0.0.1}\n"
		"    - {dst: 203.0.113.0/26, via: 198.51.100.1/24}\n"
		"    - {dst: 203.0.113.0/27}\n"
		"    - {dst: 203.0.113.0, via: 198.51.100.1}\n",
		"t.yaml:6:29: dataplane.routes[0].via: 198.51.100.2 is this gateway's own "
		"address (dataplane.ports[0].addresses[0])\n"
		"t.yaml:7:34: dataplane.routes[1].via: 198.51.100.255 is the broadcast address "
		"of 198.51.100.0/24\n"
		"t.yaml:8:34: dataplane.routes[2].via: 224.0.0.1 is a multicast address, not a "
		"unicast gateway\n"
		"t.yaml:9:34: dataplane.routes[3].via: '198.51.100.1/24' is not an IPv4 address "
		"(a.b.c.d)\n"
		"t.yaml:10:7: dataplane.routes[4].via: missing; give the next-hop gateway's "
		"address\n"
		"t.yaml:11:13: dataplane.routes[5].dst: '203.0.113.0' has no prefix length; "
		"write 203.0.113.0/32 for a single host\n");
}

Test(config_routes, same_destination_twice_names_the_first)
{
	expect_errors("dataplane:\n" PORTS "  routes:\n"
		      "    - {dst: 0.0.0.0/0, via: 198.51.100.1}\n"
		      "    - {dst: 0.0.0.0/0, via: 198.51.100.3}\n",
		      "t.yaml:7:13: dataplane.routes[1].dst: 0.0.0.0/0 is already routed by "
		      "dataplane.routes[0] (line 6)\n");
}

Test(config_routes, at_most_64_routes)
{
	char *yaml = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&yaml, &n);

	fputs("dataplane:\n" PORTS "  routes:\n", f);
	for (unsigned i = 0; i <= CFG_MAX_ROUTES; i++)
		fprintf(f, "    - {dst: 203.0.113.%u/32, via: 198.51.100.1}\n", i);
	fclose(f);
	expect_errors(yaml, "t.yaml:5:3: dataplane.routes: 65 routes; at most 64 are supported\n");
	free(yaml);
}

Test(config_values, arp_and_icmp_limits_are_sane)
{
	expect_errors(
		"dataplane:\n" PORTS "  arp: {timeout_s: 0, pending_max: 0}\n"
		"  icmp: {echo_rate: 1000001, echo_burst: 0, error_rate: -1, error_burst: 0}\n",
		"t.yaml:5:20: dataplane.arp.timeout_s: 0 is not between 1 and 86400\n"
		"t.yaml:5:36: dataplane.arp.pending_max: 0 is not between 1 and 256\n"
		"t.yaml:6:21: dataplane.icmp.echo_rate: 1000001 is not between 0 and 1000000\n"
		"t.yaml:6:42: dataplane.icmp.echo_burst: 0 is not between 1 and 1000000\n"
		"t.yaml:6:57: dataplane.icmp.error_rate: -1 is not between 0 and 1000000\n"
		"t.yaml:6:74: dataplane.icmp.error_burst: 0 is not between 1 and 1000000\n");
}

/* ---- all together ---- */

Test(config_report, several_errors_are_reported_together_in_file_order)
{
	size_t yaml_len, ref_len;
	char *yaml = slurp(VECTORS_DIR "/many-errors.yaml", &yaml_len);
	char *ref = slurp(VECTORS_DIR "/many-errors.ref", &ref_len);
	char *err = NULL;
	size_t n;
	FILE *f = open_memstream(&err, &n);

	cr_assert_null(cfg_load_data("many-errors.yaml", (const uint8_t *)yaml, yaml_len, f));
	fclose(f);
	cr_assert_str_eq(err, ref);
	free(err);
	free(ref);
	free(yaml);
	no_leaks();
}

/* Every line of an error report has the promised shape: FILE:LINE:COLUMN: path: text. */
static void assert_error_lines(const char *err, const char *name, const char *input)
{
	size_t nl = strlen(name);
	int lines = 0;

	for (const char *l = err; *l != '\0'; lines++) {
		const char *end = strchr(l, '\n');
		unsigned line, col;
		int used = 0;

		cr_assert_not_null(end, "unterminated error line for:\n%s", input);
		cr_assert(strncmp(l, name, nl) == 0 && l[nl] == ':', "bad line '%.*s'",
			  (int)(end - l), l);
		cr_assert_eq(sscanf(l + nl, ":%u:%u: %n", &line, &col, &used), 2, "bad line '%.*s'",
			     (int)(end - l), l);
		cr_assert(used > 0 && line >= 1 && col >= 1, "bad line '%.*s'", (int)(end - l), l);

		const char *sep = strstr(l + nl + used, ": ");

		cr_assert(sep != NULL && sep < end && sep[2] != '\n', "no 'path: text' in '%.*s'",
			  (int)(end - l), l);
		l = end + 1;
	}
	cr_assert_gt(lines, 0, "a failed load must say why, for:\n%s", input);
}

Test(config_robustness, truncated_example_never_crashes_or_fails_silently)
{
	size_t len;
	char *text = slurp(EXAMPLE_PATH, &len);
	const char *ports = strstr(text, "      addresses:");
	unsigned loaded = 0;

	cr_assert_not_null(ports);
	for (size_t cut = 0; cut <= len; cut++) {
		/* a private copy, so any read past CUT lands outside the allocation */
		uint8_t *buf = malloc(cut != 0 ? cut : 1);
		char *err = NULL;
		size_t n;
		FILE *f = open_memstream(&err, &n);

		memcpy(buf, text, cut);

		struct cfg *c = cfg_load_data("cut.yaml", buf, cut, f);

		fclose(f);
		if (c == NULL) {
			assert_error_lines(err, "cut.yaml", text);
		} else {
			cr_assert_str_empty(err);
			/* loading needs the port's address line, whole */
			cr_assert_geq(cut, (size_t)(strchr(ports, '\n') - text),
				      "loaded without the port's addresses (cut %zu)", cut);
			cr_assert_geq(c->dp.n_ports, 1);
			cr_assert_geq(c->dp.ports[0].n_addrs, 1);
			loaded++;
		}
		cfg_free(c);
		free(err);
		free(buf);
	}
	cr_assert_gt(loaded, 0, "the whole file must load");
	free(text);
	no_leaks();
}

Test(config_robustness, mangled_example_never_crashes_or_fails_silently)
{
	/* clang-format off */
	static const char junk[] = { ':', '-', ' ', '\t', '\n', '[', ']', '{', '}', '"', '\'',
				     '#', '&', '*', '!', '|', '>', '%', '@', '`', ',', '?', 'x',
				     '0', '9', '\0', '\x80', '\xff' };
	/* clang-format on */
	size_t len;
	char *text = slurp(EXAMPLE_PATH, &len);
	uint32_t seed = 12345;

	for (unsigned round = 0; round < 3000; round++) {
		uint8_t *buf = malloc(len);
		char *err = NULL;
		size_t n;

		memcpy(buf, text, len);
		for (unsigned k = 0; k < 1 + round % 4; k++) {
			seed = seed * 1103515245u + 12345u;
			buf[(seed >> 8) % len] = (uint8_t)junk[(seed >> 20) % sizeof(junk)];
		}

		FILE *f = open_memstream(&err, &n);
		struct cfg *c = cfg_load_data("m.yaml", buf, len, f);

		fclose(f);
		if (c == NULL)
			assert_error_lines(err, "m.yaml", "(mangled example)");
		else
			cr_assert_str_empty(err);
		cfg_free(c);
		free(err);
		free(buf);
	}
	free(text);
	no_leaks();
}

Test(config_tcp, defaults_keep_the_test_services_off)
{
	struct cfg *c = load_ok("dataplane:\n" PORTS);
	cr_assert_eq(c->dp.tcp.cc, CFG_CC_NEWRENO);
	cr_assert_eq(c->dp.tcp.syn_backlog, 1024);
	cr_assert_eq(c->dp.tcp.max_conns, 65536);
	cr_assert_eq(c->dp.tcp.rto_min_ms, 200);
	cr_assert_eq(c->dp.tcp.delack_ms, 40);
	cr_assert_eq(c->dp.tcp.rcv_buf_kb, 256);
	cr_assert_eq(c->dp.tcp.echo_port, 0);
	cr_assert_eq(c->dp.tcp.discard_port, 0);
	cfg_free(c);
}

Test(config_tcp, cubic_and_test_services_are_read)
{
	struct cfg *c = load_ok("dataplane:\n  tcp: {cc: cubic, echo_port: 7, discard_port: 9, "
				"syn_backlog: 64}\n" PORTS);
	cr_assert_eq(c->dp.tcp.cc, CFG_CC_CUBIC);
	cr_assert_eq(c->dp.tcp.echo_port, 7);
	cr_assert_eq(c->dp.tcp.discard_port, 9);
	cr_assert_eq(c->dp.tcp.syn_backlog, 64);
	cfg_free(c);
}

Test(config_tcp, an_unknown_algorithm_and_a_shared_port_are_refused)
{
	char *err = NULL;
	struct cfg *c = load("dataplane:\n  tcp:\n    cc: bbr\n    echo_port: 7\n"
			     "    discard_port: 7\n" PORTS, &err);
	cr_assert_null(c);
	cr_assert(strstr(err, "t.yaml:3:9: dataplane.tcp.cc: 'bbr' is not one of: newreno, cubic"),
		  "got: %s", err);
	cr_assert(strstr(err, "t.yaml:5:19: dataplane.tcp.discard_port: 7 is already the echo port"),
		  "got: %s", err);
	free(err);
}

Test(config_structure, net_tap_takes_at_most_four_workers)
{
	expect_errors("dataplane:\n  worker_cores: [1, 2, 3, 4, 5]\n" PORTS,
		      "t.yaml:4:15: dataplane.ports[0].device: net_tap takes at most 4 workers "
		      "(DPDK 22.11 passes 8 queue descriptors at most); dataplane.worker_cores "
		      "lists 5\n");
}
