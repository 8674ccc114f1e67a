/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The /metrics page for a given set of samples, compared line for line with
 * the page a Prometheus server should read: HELP and TYPE for every family,
 * counters as *_total, per-worker and per-port labels, drops by reason,
 * escaped label values, and nothing of the dataplane while it is not up.
 */
#include <string.h>

#include <criterion/criterion.h>

#include "control/daemon/prom.h"
#include "control/daemon/store.h"

#define INFO "{\"version\":\"0.1.0\",\"workers\":2,\"ports\":1,\"uptime_s\":42,\"config\":\"/e\"}"

/* Two workers and a total; a counter name with a dot, to be made a valid metric name. */
#define STATS                                                                                      \
	"{\"worker0\":{\"rx_packets\":10,\"smtp.sessions\":1,\"drop_eth_runt\":1,"                 \
	"\"drop_ipv4_bad_checksum\":0},"                                                           \
	"\"worker1\":{\"rx_packets\":5,\"smtp.sessions\":0,\"drop_eth_runt\":0,"                   \
	"\"drop_ipv4_bad_checksum\":2},"                                                           \
	"\"total\":{\"rx_packets\":15,\"smtp.sessions\":1,\"drop_eth_runt\":1,"                    \
	"\"drop_ipv4_bad_checksum\":2}}"

/* Open sessions per worker; the total row is left to sum() like the counters'. */
#define GAUGES                                                                                     \
	"{\"worker0\":{\"smtp_sessions_open\":3},\"worker1\":{\"smtp_sessions_open\":4},"          \
	"\"total\":{\"smtp_sessions_open\":7}}"

/* A port whose name needs escaping, and a field this version does not know. */
#define PORTS                                                                                        \
	"{\"port0\":{\"name\":\"w\\\"a\\\\n\",\"device\":\"0000:01:00.0\",\"driver\":\"net_ixgbe\"," \
	"\"mac\":\"02:00:00:00:00:01\",\"link_up\":1,\"link_speed_mbps\":10000,\"mtu\":1500,"        \
	"\"queues\":2,\"steering\":\"hardware\",\"csum_offload\":\"ipv4 tcp\","                      \
	"\"addresses\":\"198.51.100.2/24\",\"ipackets\":100,\"opackets\":90,\"ibytes\":6400,"        \
	"\"obytes\":5760,\"imissed\":0,\"ierrors\":0,\"oerrors\":0,\"rx_nombuf\":0,"                 \
	"\"fec_errors\":7}}"

static const char self_up[] =
	"# HELP mxgate_up 1 while mxgate-control reads the dataplane's telemetry, else 0.\n"
	"# TYPE mxgate_up gauge\n"
	"mxgate_up 1\n"
	"# HELP mxgate_control_info mxgate-control's version, as a label; always 1.\n"
	"# TYPE mxgate_control_info gauge\n"
	"mxgate_control_info{version=\"0.1.0\"} 1\n"
	"# HELP mxgate_control_uptime_seconds Seconds since mxgate-control started.\n"
	"# TYPE mxgate_control_uptime_seconds gauge\n"
	"mxgate_control_uptime_seconds 12.500\n"
	"# HELP mxgate_control_telemetry_connects_total Connections made to the dataplane's "
	"telemetry socket.\n"
	"# TYPE mxgate_control_telemetry_connects_total counter\n"
	"mxgate_control_telemetry_connects_total 2\n"
	"# HELP mxgate_control_samples_total Counter samples read and stored.\n"
	"# TYPE mxgate_control_samples_total counter\n"
	"mxgate_control_samples_total 30\n"
	"# HELP mxgate_control_sample_errors_total Samples that failed: no reply in time, or a "
	"reply of the wrong shape.\n"
	"# TYPE mxgate_control_sample_errors_total counter\n"
	"mxgate_control_sample_errors_total 1\n";

static const char dataplane[] =
	"# HELP mxgate_dataplane_info mxgate-dp's version, as a label; always 1.\n"
	"# TYPE mxgate_dataplane_info gauge\n"
	"mxgate_dataplane_info{version=\"0.1.0\"} 1\n"
	"# HELP mxgate_dataplane_uptime_seconds Seconds since mxgate-dp started.\n"
	"# TYPE mxgate_dataplane_uptime_seconds gauge\n"
	"mxgate_dataplane_uptime_seconds 42\n"
	"# HELP mxgate_dataplane_workers Worker lcores of mxgate-dp.\n"
	"# TYPE mxgate_dataplane_workers gauge\n"
	"mxgate_dataplane_workers 2\n"
	"# HELP mxgate_rx_packets_total mxgate-dp counter rx_packets (/mxgate/stats), per worker.\n"
	"# TYPE mxgate_rx_packets_total counter\n"
	"mxgate_rx_packets_total{worker=\"0\"} 10\n"
	"mxgate_rx_packets_total{worker=\"1\"} 5\n"
	"# HELP mxgate_smtp_sessions_total mxgate-dp counter smtp.sessions (/mxgate/stats), per "
	"worker.\n"
	"# TYPE mxgate_smtp_sessions_total counter\n"
	"mxgate_smtp_sessions_total{worker=\"0\"} 1\n"
	"mxgate_smtp_sessions_total{worker=\"1\"} 0\n"
	"# HELP mxgate_drops_total Packets mxgate-dp dropped, per worker and reason "
	"(dataplane/core/counters.h).\n"
	"# TYPE mxgate_drops_total counter\n"
	"mxgate_drops_total{worker=\"0\",reason=\"eth_runt\"} 1\n"
	"mxgate_drops_total{worker=\"1\",reason=\"eth_runt\"} 0\n"
	"mxgate_drops_total{worker=\"0\",reason=\"ipv4_bad_checksum\"} 0\n"
	"mxgate_drops_total{worker=\"1\",reason=\"ipv4_bad_checksum\"} 2\n"
	"# HELP mxgate_smtp_sessions_open mxgate-dp gauge smtp_sessions_open (/mxgate/gauges), per "
	"worker.\n"
	"# TYPE mxgate_smtp_sessions_open gauge\n"
	"mxgate_smtp_sessions_open{worker=\"0\"} 3\n"
	"mxgate_smtp_sessions_open{worker=\"1\"} 4\n"
	"# HELP mxgate_port_info A port's device, driver, MAC, steering and addresses, as "
	"labels; always 1.\n"
	"# TYPE mxgate_port_info gauge\n"
	"mxgate_port_info{port=\"w\\\"a\\\\n\",device=\"0000:01:00.0\",driver=\"net_ixgbe\","
	"mac=\"02:00:00:00:00:01\",steering=\"hardware\",csum_offload=\"ipv4 tcp\","
	"addresses=\"198.51.100.2/24\"} 1\n"
	"# HELP mxgate_port_up 1 when the port's link is up.\n"
	"# TYPE mxgate_port_up gauge\n"
	"mxgate_port_up{port=\"w\\\"a\\\\n\"} 1\n"
	"# HELP mxgate_port_speed_bytes_per_second Link speed the port negotiated (10 Gbit/s is "
	"1.25e9).\n"
	"# TYPE mxgate_port_speed_bytes_per_second gauge\n"
	"mxgate_port_speed_bytes_per_second{port=\"w\\\"a\\\\n\"} 1250000000\n"
	"# HELP mxgate_port_mtu_bytes IP MTU of the port.\n"
	"# TYPE mxgate_port_mtu_bytes gauge\n"
	"mxgate_port_mtu_bytes{port=\"w\\\"a\\\\n\"} 1500\n"
	"# HELP mxgate_port_queues RX/TX queue pairs: one per worker.\n"
	"# TYPE mxgate_port_queues gauge\n"
	"mxgate_port_queues{port=\"w\\\"a\\\\n\"} 2\n"
	"# HELP mxgate_port_received_packets_total Packets the NIC received (rte_eth_stats "
	"ipackets).\n"
	"# TYPE mxgate_port_received_packets_total counter\n"
	"mxgate_port_received_packets_total{port=\"w\\\"a\\\\n\"} 100\n"
	"# HELP mxgate_port_transmitted_packets_total Packets the NIC sent (rte_eth_stats "
	"opackets).\n"
	"# TYPE mxgate_port_transmitted_packets_total counter\n"
	"mxgate_port_transmitted_packets_total{port=\"w\\\"a\\\\n\"} 90\n"
	"# HELP mxgate_port_received_bytes_total Bytes the NIC received.\n"
	"# TYPE mxgate_port_received_bytes_total counter\n"
	"mxgate_port_received_bytes_total{port=\"w\\\"a\\\\n\"} 6400\n"
	"# HELP mxgate_port_transmitted_bytes_total Bytes the NIC sent.\n"
	"# TYPE mxgate_port_transmitted_bytes_total counter\n"
	"mxgate_port_transmitted_bytes_total{port=\"w\\\"a\\\\n\"} 5760\n"
	"# HELP mxgate_port_missed_packets_total Packets the NIC dropped because an RX queue "
	"was full.\n"
	"# TYPE mxgate_port_missed_packets_total counter\n"
	"mxgate_port_missed_packets_total{port=\"w\\\"a\\\\n\"} 0\n"
	"# HELP mxgate_port_receive_errors_total Erroneous packets received.\n"
	"# TYPE mxgate_port_receive_errors_total counter\n"
	"mxgate_port_receive_errors_total{port=\"w\\\"a\\\\n\"} 0\n"
	"# HELP mxgate_port_transmit_errors_total Packets the NIC failed to send.\n"
	"# TYPE mxgate_port_transmit_errors_total counter\n"
	"mxgate_port_transmit_errors_total{port=\"w\\\"a\\\\n\"} 0\n"
	"# HELP mxgate_port_rx_nombuf_total RX mbuf allocation failures in the driver.\n"
	"# TYPE mxgate_port_rx_nombuf_total counter\n"
	"mxgate_port_rx_nombuf_total{port=\"w\\\"a\\\\n\"} 0\n"
	"# HELP mxgate_port_fec_errors mxgate-dp port field fec_errors (/mxgate/ports).\n"
	"# TYPE mxgate_port_fec_errors gauge\n"
	"mxgate_port_fec_errors{port=\"w\\\"a\\\\n\"} 7\n";

static json_t *js(const char *s)
{
	json_error_t e;
	json_t *j = json_loads(s, 0, &e);

	cr_assert_not_null(j, "test JSON: %s at %d", e.text, e.position);
	return j;
}

static struct ctl_store *store_with_sample(void)
{
	struct ctl_store *s = ctl_store_new(4);
	json_t *info = js(INFO), *stats = js(STATS), *gauges = js(GAUGES), *ports = js(PORTS);

	cr_assert_not_null(s);
	cr_assert_eq(ctl_store_push(s, 1000, info, stats, gauges, ports), 0);
	json_decref(info);
	json_decref(stats);
	json_decref(gauges);
	json_decref(ports);
	return s;
}

static const struct prom_state state = {
	.up = true,
	.connects = 2,
	.samples = 30,
	.sample_errors = 1,
	.uptime_s = 12.5,
	.version = "0.1.0",
};

/* Compares line by line, so a failure names the first line that differs. */
static void same_page(const char *got, const char *want)
{
	unsigned line = 1;

	while (*got != '\0' && *want != '\0') {
		size_t g = strcspn(got, "\n"), w = strcspn(want, "\n");

		cr_assert(g == w && memcmp(got, want, g) == 0, "line %u:\n got: %.*s\nwant: %.*s",
			  line, (int)g, got, (int)w, want);
		got += g + (got[g] == '\n');
		want += w + (want[w] == '\n');
		line++;
	}
	cr_assert_str_eq(got, want, "the pages differ in length after line %u", line);
}

Test(ctl_prom, page_for_a_sample_is_the_golden_page)
{
	struct ctl_store *s = store_with_sample();
	struct sbuf b = { 0 };
	struct sbuf want = { 0 };

	prom_render(&b, s, &state);
	sbuf_printf(&want, "%s%s", self_up, dataplane);
	cr_assert_not(sbuf_failed(&b));
	same_page(sbuf_str(&b), sbuf_str(&want));
	sbuf_free(&b);
	sbuf_free(&want);
	ctl_store_free(s);
}

Test(ctl_prom, dataplane_down_shows_up_zero_and_no_stale_values)
{
	struct ctl_store *s = store_with_sample();
	struct prom_state down = state;
	struct sbuf b = { 0 };

	down.up = false;
	prom_render(&b, s, &down);
	cr_assert_not_null(strstr(sbuf_str(&b), "\nmxgate_up 0\n"));
	cr_assert_null(strstr(sbuf_str(&b), "mxgate_rx_packets_total"),
		       "a value read before the dataplane went away must not be served");
	cr_assert_null(strstr(sbuf_str(&b), "mxgate_port_"));
	cr_assert_null(strstr(sbuf_str(&b), "mxgate_smtp_sessions_open"),
		       "an open-sessions gauge of a dataplane that went away must not be served");
	sbuf_free(&b);
	ctl_store_free(s);
}

Test(ctl_prom, every_family_has_help_and_type_before_its_samples)
{
	struct ctl_store *s = store_with_sample();
	struct sbuf b = { 0 };
	char family[128] = "";

	prom_render(&b, s, &state);
	for (const char *p = sbuf_str(&b); *p != '\0'; p += strcspn(p, "\n") + 1) {
		char name[128];

		if (sscanf(p, "# HELP %127s", name) == 1) {
			snprintf(family, sizeof(family), "%s", name);
			continue;
		}
		if (sscanf(p, "# TYPE %127s", name) == 1) {
			cr_assert_str_eq(name, family, "TYPE without its HELP");
			cr_assert(strncmp(p + 7 + strlen(name), " counter\n", 9) != 0 ||
					  strstr(name, "_total") != NULL,
				  "counter %s does not end in _total", name);
			continue;
		}
		cr_assert_eq(strncmp(p, family, strlen(family)), 0,
			     "a sample outside its family (%s): %.60s", family, p);
		cr_assert(p[strlen(family)] == ' ' || p[strlen(family)] == '{', "%.60s", p);
	}
	sbuf_free(&b);
	ctl_store_free(s);
}
