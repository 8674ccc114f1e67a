/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The "control:" and "logging:" sections as an operator writes them: the
 * defaults (telemetry socket from the dataplane's file prefix), the shipped
 * files still loading, and each mistake as one "FILE:LINE:COLUMN: key.path:
 * what" line.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "control/config/config.h"
#include "cfg_load.h"

#ifndef VECTORS_DIR
#error "meson passes VECTORS_DIR (tests/vectors/config)"
#endif

#define PORTS "dataplane:\n  ports:\n    - device: net_tap0\n      addresses: [198.51.100.2/24]\n"

/* ---- defaults ---- */

Test(control_section, absent_sections_get_every_documented_default)
{
	struct cfg *c = load_ok(PORTS);

	cr_assert_str_eq(c->control.socket, "/run/mxgate/control.sock");
	cr_assert(c->control.metrics_on);
	cr_assert_eq(c->control.metrics_addr, htonl(INADDR_LOOPBACK));
	cr_assert_eq(c->control.metrics_port, 9464);
	cr_assert_str_eq(c->control.telemetry_socket, "/var/run/dpdk/mxgate/dpdk_telemetry.v2");
	cr_assert_eq(c->control.sample_interval_ms, 1000);
	cr_assert_eq(c->control.history_s, 300);
	cr_assert_eq(c->logging.level, CFG_LOG_INFO);
	cr_assert_eq(c->logging.dest, CFG_LOG_STDOUT);
	cr_assert_null(c->logging.file);
	cfg_free(c);
}

Test(control_section, telemetry_socket_follows_the_dataplane_file_prefix)
{
	struct cfg *c =
		load_ok("dataplane:\n  memory: {file_prefix: mxg-edge_2}\n"
			"  ports:\n    - device: net_tap0\n      addresses: [198.51.100.2/24]\n");

	cr_assert_str_eq(c->control.telemetry_socket, "/var/run/dpdk/mxg-edge_2/dpdk_telemetry.v2");
	cfg_free(c);
}

Test(control_section, every_key_set_is_taken)
{
	struct cfg *c = load_ok(PORTS "control:\n"
				      "  socket: /tmp/mx/ctl.sock\n"
				      "  metrics_listen: 198.51.100.2:9100\n"
				      "  telemetry_socket: /var/run/dpdk/other/dpdk_telemetry.v2\n"
				      "  sample_interval_ms: 250\n"
				      "  history_s: 60\n"
				      "logging:\n"
				      "  level: debug\n"
				      "  destination: /tmp/mxgate-control.log\n");

	cr_assert_str_eq(c->control.socket, "/tmp/mx/ctl.sock");
	cr_assert(c->control.metrics_on);
	cr_assert_eq(c->control.metrics_addr, inet_addr("198.51.100.2"));
	cr_assert_eq(c->control.metrics_port, 9100);
	cr_assert_str_eq(c->control.telemetry_socket, "/var/run/dpdk/other/dpdk_telemetry.v2");
	cr_assert_eq(c->control.sample_interval_ms, 250);
	cr_assert_eq(c->control.history_s, 60);
	cr_assert_eq(c->logging.level, CFG_LOG_DEBUG);
	cr_assert_eq(c->logging.dest, CFG_LOG_FILE);
	cr_assert_str_eq(c->logging.file, "/tmp/mxgate-control.log");
	cfg_free(c);
}

Test(control_section, metrics_off_turns_the_http_server_off)
{
	struct cfg *c = load_ok(PORTS "control:\n  metrics_listen: \"off\"\n");

	cr_assert_not(c->control.metrics_on);
	cfg_free(c);
}

Test(control_section, stderr_is_a_log_destination)
{
	struct cfg *c = load_ok(PORTS "logging: {level: warning, destination: stderr}\n");

	cr_assert_eq(c->logging.dest, CFG_LOG_STDERR);
	cr_assert_eq(c->logging.level, CFG_LOG_WARNING);
	cfg_free(c);
}

Test(control_section, level_names_round_trip)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	enum cfg_log_level l;

	for (unsigned i = 0; i < 4; i++) {
		cr_assert_eq(cfg_log_level_parse(names[i], &l), 0);
		cr_assert_str_eq(cfg_log_level_name(l), names[i]);
	}
	cr_assert_eq(cfg_log_level_parse("verbose", &l), -1);
	cr_assert_eq(cfg_log_level_parse("", &l), -1);
	cr_assert_str_eq(cfg_log_level_name((enum cfg_log_level)42), "?");
}

/* ---- control: each mistake ---- */

Test(control_section, relative_socket_path_is_refused)
{
	expect_errors(PORTS "control:\n  socket: run/ctl.sock\n",
		      "t.yaml:6:11: control.socket: 'run/ctl.sock' is not an absolute path; "
		      "write one such as /run/mxgate/control.sock\n");
}

Test(control_section, socket_path_longer_than_sun_path_is_refused)
{
	char yaml[512];
	char path[121];

	memset(path, 'a', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	snprintf(yaml, sizeof(yaml), PORTS "control:\n  socket: %s\n", path);

	char want[512];

	snprintf(want, sizeof(want),
		 "t.yaml:6:11: control.socket: '%s' is 120 characters; a unix socket path holds "
		 "at most 107\n",
		 path);
	expect_errors(yaml, want);
}

Test(control_section, empty_socket_names_its_default)
{
	expect_errors(PORTS "control:\n  socket:\n",
		      "t.yaml:6:3: control.socket: empty; write a value, or remove the key for the "
		      "default '/run/mxgate/control.sock'\n");
}

Test(control_section, metrics_without_a_port_is_refused)
{
	expect_errors(PORTS "control:\n  metrics_listen: 127.0.0.1\n",
		      "t.yaml:6:19: control.metrics_listen: '127.0.0.1' has no port; write "
		      "ADDRESS:PORT such as 127.0.0.1:9464, or off\n");
}

Test(control_section, metrics_host_name_is_refused)
{
	expect_errors(PORTS "control:\n  metrics_listen: localhost:9464\n",
		      "t.yaml:6:19: control.metrics_listen: 'localhost' is not an IPv4 address; "
		      "write ADDRESS:PORT such as 127.0.0.1:9464\n");
}

Test(control_section, metrics_port_out_of_range_is_refused)
{
	expect_errors(PORTS "control:\n  metrics_listen: 127.0.0.1:70000\n",
		      "t.yaml:6:19: control.metrics_listen: '70000' is not a port number "
		      "(1..65535)\n");
	expect_errors(PORTS "control:\n  metrics_listen: 127.0.0.1:0\n",
		      "t.yaml:6:19: control.metrics_listen: '0' is not a port number (1..65535)\n");
	expect_errors(PORTS "control:\n  metrics_listen: \"127.0.0.1:\"\n",
		      "t.yaml:6:19: control.metrics_listen: '' is not a port number (1..65535)\n");
}

Test(control_section, metrics_without_an_address_is_refused)
{
	expect_errors(PORTS "control:\n  metrics_listen: \":9464\"\n",
		      "t.yaml:6:19: control.metrics_listen: ':9464' is not ADDRESS:PORT with an "
		      "IPv4 address (such as 127.0.0.1:9464)\n");
}

Test(control_section, relative_telemetry_socket_is_refused)
{
	expect_errors(PORTS "control:\n  telemetry_socket: dpdk_telemetry.v2\n",
		      "t.yaml:6:21: control.telemetry_socket: 'dpdk_telemetry.v2' is not an "
		      "absolute path; write one such as /var/run/dpdk/mxgate/dpdk_telemetry.v2\n");
}

Test(control_section, sample_interval_out_of_range_is_refused)
{
	expect_errors(PORTS "control:\n  sample_interval_ms: 10\n",
		      "t.yaml:6:23: control.sample_interval_ms: 10 is not between 100 and 60000\n");
	expect_errors(PORTS "control:\n  sample_interval_ms: 1s\n",
		      "t.yaml:6:23: control.sample_interval_ms: '1s' is not a number; expected a "
		      "whole number between 100 and 60000\n");
}

Test(control_section, history_too_short_for_a_rate_is_refused)
{
	expect_errors(PORTS "control:\n  sample_interval_ms: 5000\n  history_s: 5\n",
		      "t.yaml:7:14: control.history_s: 5 s keeps fewer than 2 samples at one "
		      "every 5000 ms; rates need two\n");
}

Test(control_section, history_beyond_the_sample_bound_is_refused)
{
	expect_errors(PORTS "control:\n  sample_interval_ms: 100\n  history_s: 86400\n",
		      "t.yaml:7:14: control.history_s: 86400 s at one sample every 100 ms is "
		      "864000 samples; at most 86400 are kept\n");
	expect_errors(PORTS "control:\n  history_s: 1\n",
		      "t.yaml:6:14: control.history_s: 1 is not between 2 and 86400\n");
}

Test(control_section, misspelt_key_gets_a_suggestion)
{
	expect_errors(PORTS "control:\n  sokcet: /run/x.sock\n",
		      "t.yaml:6:3: control.sokcet: unknown key; did you mean 'socket'?\n");
}

Test(control_section, section_written_as_a_list_is_refused)
{
	expect_errors(PORTS "control:\n  - socket: /run/x.sock\n",
		      "t.yaml:6:3: control: expected a mapping of keys, found a list\n");
}

/* ---- logging: each mistake ---- */

Test(control_section, unknown_level_lists_the_levels)
{
	expect_errors(PORTS "logging:\n  level: verbose\n",
		      "t.yaml:6:10: logging.level: 'verbose' is not one of: error, warning, info, "
		      "debug\n");
}

Test(control_section, relative_log_file_is_refused)
{
	expect_errors(PORTS "logging:\n  destination: logs/control.log\n",
		      "t.yaml:6:16: logging.destination: 'logs/control.log' is neither stdout, "
		      "stderr nor an absolute file path\n");
}

Test(control_section, log_file_in_a_missing_directory_is_refused)
{
	expect_errors(PORTS "logging:\n  destination: /nonexistent-mxgate-dir/control.log\n",
		      "t.yaml:6:16: logging.destination: directory /nonexistent-mxgate-dir does "
		      "not exist; create it or log elsewhere\n");
}

Test(control_section, log_file_under_a_file_is_refused)
{
	expect_errors(PORTS "logging:\n  destination: /etc/hostname/control.log\n",
		      "t.yaml:6:16: logging.destination: directory /etc/hostname is not a "
		      "directory; create it or log elsewhere\n");
}

Test(control_section, log_destination_that_is_a_directory_is_refused)
{
	expect_errors(PORTS "logging:\n  destination: /tmp\n",
		      "t.yaml:6:16: logging.destination: '/tmp' is a directory; name the log file "
		      "in it\n");
	expect_errors(PORTS "logging:\n  destination: /var/log/mxgate/\n",
		      "t.yaml:6:16: logging.destination: '/var/log/mxgate/' is a directory; name "
		      "the log file in it\n");
}

/* ---- all in one run, from a file ---- */

static char *slurp(const char *path)
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
	return buf;
}

Test(control_section, every_mistake_of_a_file_is_reported_in_one_run)
{
	char *err = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&err, &n);
	char *want = slurp(VECTORS_DIR "/control-errors.ref");

	cr_assert_eq(chdir(VECTORS_DIR), 0);
	struct cfg *c = cfg_load("control-errors.yaml", f);

	fclose(f);
	cr_assert_null(c);
	cr_assert_str_eq(err, want, "got:\n%s\nwant:\n%s", err, want);
	free(err);
	free(want);
}
