/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What mxgatectl prints for the daemon's results: `status` names the lcores
 * the dataplane runs on and the SMTP sessions open now (per worker when there
 * are several), and says why when it cannot; `stats` shows the gauges under
 * the worker columns.
 */
#include <string.h>

#include <criterion/criterion.h>

#include "control/ctl/render.h"

static json_t *js(const char *s)
{
	json_error_t e;
	json_t *j = json_loads(s, 0, &e);

	cr_assert_not_null(j, "test JSON: %s at %d", e.text, e.position);
	return j;
}

/* The line of OUT that starts with PREFIX, without its newline, into LINE. */
static void line_of(const char *out, const char *prefix, char *line, size_t len)
{
	for (const char *p = out; *p != '\0';
	     p += strcspn(p, "\n") + (p[strcspn(p, "\n")] != '\0')) {
		if (strncmp(p, prefix, strlen(prefix)) == 0) {
			snprintf(line, len, "%.*s", (int)strcspn(p, "\n"), p);
			return;
		}
	}
	cr_assert_fail("no line starting with '%s' in:\n%s", prefix, out);
}

#define STATUS_HEAD                                                                                \
	"{\"control\":{\"version\":\"0.1.0\",\"pid\":7,\"uptime_s\":3.0,\"config\":\"/e\","        \
	"\"loaded_at\":\"x\",\"socket\":\"/s\",\"metrics_listen\":\"off\"},"                       \
	"\"dataplane\":{\"connected\":true,\"version\":\"0.1.0\",\"uptime_s\":65,\"pid\":9,"       \
	"\"dpdk_version\":\"DPDK 22.11.11\",\"workers\":2,\"config\":\"/e\",\"ports\":[],"         \
	"\"lcores_configured\":{\"main\":0,\"workers\":[1,1]},"                                    \
	"\"queue\":{\"size\":null,\"note\":\"later\"},\"telemetry_socket\":\"/t\",\"connects\":1,"

static void status_lines(const char *json, char *workers, char *sessions, size_t len)
{
	json_t *st = js(json);
	struct sbuf b = { 0 };

	cr_assert(render_status(&b, st), "a connected dataplane is a success");
	line_of(sbuf_str(&b), "  workers", workers, len);
	line_of(sbuf_str(&b), "  sessions", sessions, len);
	sbuf_free(&b);
	json_decref(st);
}

Test(ctl_render, status_names_the_running_lcores_and_the_open_sessions_per_worker)
{
	char workers[256], sessions[256];

	status_lines(STATUS_HEAD
		     "\"main_lcore\":0,\"main_cpu\":0,\"worker_lcores\":[1,2],"
		     "\"worker_cpus\":[1,1],"
		     "\"sessions\":{\"total\":12,\"per_s\":0.5,\"span_s\":10.0,\"open\":3,"
		     "\"open_by_worker\":{\"worker0\":1,\"worker1\":2}}}}",
		     workers, sessions, sizeof(workers));
	cr_assert_str_eq(workers,
			 "  workers        2 on lcores 1,2 (cpus 1,1); main lcore 0 (cpu 0)");
	cr_assert_str_eq(sessions, "  sessions       12 since start, 0.5/s over the last 10 s; "
				   "3 open now (worker0 1, worker1 2)");
}

Test(ctl_render, one_worker_shows_the_open_sessions_without_a_breakdown)
{
	char workers[256], sessions[256];

	status_lines(STATUS_HEAD "\"main_lcore\":0,\"main_cpu\":2,\"worker_lcores\":[1],"
				 "\"worker_cpus\":[3],"
				 "\"sessions\":{\"total\":0,\"open\":0,"
				 "\"open_by_worker\":{\"worker0\":0}}}}",
		     workers, sessions, sizeof(workers));
	cr_assert_str_eq(workers, "  workers        2 on lcores 1 (cpus 3); main lcore 0 (cpu 2)");
	cr_assert_str_eq(sessions, "  sessions       0 since start; 0 open now");
}

Test(ctl_render, status_says_why_it_cannot_show_lcores_or_open_sessions)
{
	char workers[256], sessions[256];

	/* a dataplane without lcores in its info, and without a mail service */
	status_lines(STATUS_HEAD "\"main_lcore\":null,\"worker_lcores\":null,"
				 "\"sessions\":{\"total\":0,\"open\":null,\"open_by_worker\":null,"
				 "\"open_note\":\"mxgate-dp runs no mail service: no sessions\"}}}",
		     workers, sessions, sizeof(workers));
	cr_assert_str_eq(workers, "  workers        2 (configured cores: main 0, workers 1,1)");
	cr_assert_str_eq(sessions, "  sessions       0 since start; open now: mxgate-dp runs no "
				   "mail service: no sessions");
}

Test(ctl_render, stats_show_gauges_under_the_worker_columns)
{
	json_t *st = js("{\"sample_age_ms\":100,\"span_s\":null,\"rows\":[\"worker0\",\"worker1\","
			"\"total\"],\"counters\":{\"worker0\":{\"rx_packets\":1},\"worker1\":"
			"{\"rx_packets\":2},\"total\":{\"rx_packets\":3}},\"rates\":null,"
			"\"gauges\":{\"worker0\":{\"smtp_sessions_open\":4},\"worker1\":"
			"{\"smtp_sessions_open\":5},\"total\":{\"smtp_sessions_open\":9}}}");
	struct sbuf b = { 0 };
	char head[256], rx[256], open[256];

	render_stats(&b, st, false);
	line_of(sbuf_str(&b), "counter", head, sizeof(head));
	line_of(sbuf_str(&b), "rx_packets", rx, sizeof(rx));
	line_of(sbuf_str(&b), "  smtp_sessions_open", open, sizeof(open));
	cr_assert_not_null(strstr(sbuf_str(&b), "\ngauges (now)\n  smtp_sessions_open"));
	/* each value ends where its column's header and the counters' values end */
	cr_assert_eq(strlen(open), strlen(rx) - 14, "got\n%s\n%s\n%s", head, rx, open);
	cr_assert_eq(strstr(open, "4") - open, strstr(rx, "1") - rx);
	cr_assert_eq(strstr(open, "5") - open, strstr(rx, "2") - rx);
	cr_assert_eq(strstr(open, "9") - open, strstr(rx, "3") - rx);
	sbuf_free(&b);
	json_decref(st);
}

Test(ctl_render, stats_without_gauges_have_no_gauge_block)
{
	json_t *st =
		js("{\"sample_age_ms\":100,\"span_s\":null,\"rows\":[\"worker0\",\"total\"],"
		   "\"counters\":{\"worker0\":{\"rx_packets\":1},\"total\":{\"rx_packets\":1}},"
		   "\"rates\":null,\"gauges\":{\"worker0\":{},\"total\":{}}}");
	struct sbuf b = { 0 };

	render_stats(&b, st, true);
	cr_assert_null(strstr(sbuf_str(&b), "gauges"), "%s", sbuf_str(&b));
	cr_assert_not_null(strstr(sbuf_str(&b), "\nrx_packets "));
	sbuf_free(&b);
	json_decref(st);
}

Test(ctl_render, status_says_why_samples_fail)
{
	json_t *up = js(STATUS_HEAD "\"sample_errors\":2,\"last_sample_error\":\"/mxgate/stats,1: "
				    "the dataplane says: no such row\",\"sessions\":{}}}");
	json_t *down = js("{\"control\":{},\"dataplane\":{\"connected\":false,\"last_error\":\"\","
			  "\"last_sample_error\":\"/mxgate/gauges: the dataplane could not answer "
			  "(null)\",\"sample_errors\":5}}");
	struct sbuf b = { 0 };
	char line[256];

	/* connected, with an older sample in store: the latest one failed */
	render_status(&b, up);
	line_of(sbuf_str(&b), "  sampling", line, sizeof(line));
	cr_assert_str_eq(line, "  sampling       the last sample failed: /mxgate/stats,1: the "
			       "dataplane says: no such row");
	sbuf_free(&b);
	/* no sample ever stored: the reason, not "no sample yet" */
	cr_assert_not(render_status(&b, down));
	line_of(sbuf_str(&b), "mxgate-dp", line, sizeof(line));
	cr_assert_str_eq(line, "mxgate-dp        NOT CONNECTED: its telemetry answers, but no "
			       "sample could be read: /mxgate/gauges: the dataplane could not "
			       "answer (null)");
	sbuf_free(&b);
	json_decref(up);
	json_decref(down);
}

Test(ctl_render, routes_list_each_domain_with_its_hops_in_order_and_the_smarthost)
{
	json_t *r = js("{\"domains\":[{\"domain\":\"example.com\",\"next_hops\":["
		       "{\"address\":\"198.51.100.20\",\"port\":25,\"priority\":10,\"weight\":1},"
		       "{\"address\":\"198.51.100.21\",\"port\":2525,\"priority\":20,\"weight\":3}]},"
		       "{\"domain\":\"*.example.net\",\"next_hops\":["
		       "{\"address\":\"203.0.113.7\",\"port\":25,\"priority\":10,\"weight\":1}]}],"
		       "\"smarthost\":[]}");
	struct sbuf b = { 0 };

	render_routes(&b, r);
	cr_assert_str_eq(sbuf_str(&b),
			 "DOMAIN        NEXT HOPS, IN ORDER\n"
			 "example.com   198.51.100.20:25 (priority 10, weight 1), 198.51.100.21:2525 "
			 "(priority 20, weight 3)\n"
			 "*.example.net 203.0.113.7:25 (priority 10, weight 1)\n"
			 "(smarthost)   none: other domains are refused at RCPT (550 5.4.4)\n");
	sbuf_free(&b);
	json_decref(r);
}
