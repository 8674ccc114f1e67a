/* SPDX-License-Identifier: BSD-3-Clause */
/* mxgatectl's tables and blocks (see render.h). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "control/ctl/render.h"

#define DROP_PREFIX "drop_"
#define NAME_MIN    24

static const char *str(json_t *o, const char *key, const char *def)
{
	json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : def;
}

static json_int_t num(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? json_integer_value(v) : 0;
}

static double real(json_t *o, const char *key, double def)
{
	json_t *v = json_object_get(o, key);

	return json_is_number(v) ? json_number_value(v) : def;
}

void render_duration(struct sbuf *b, double seconds)
{
	unsigned long long s = seconds > 0 ? (unsigned long long)seconds : 0;

	if (s >= 86400)
		sbuf_printf(b, "%llud ", s / 86400);
	sbuf_printf(b, "%02lluh %02llum %02llus", s / 3600 % 24, s / 60 % 60, s % 60);
}

/* ---- status ---- */

static void status_ports(struct sbuf *b, json_t *ports)
{
	size_t i;
	json_t *p;

	json_array_foreach(ports, i, p) {
		json_t *up = json_object_get(p, "link_up");

		sbuf_printf(b, "  %-14s %s  link %s", i == 0 ? "ports" : "",
			    str(p, "name", str(p, "key", "?")),
			    json_is_true(up)  ? "up" :
			    json_is_false(up) ? "down" :
						"unknown");
		if (json_is_integer(json_object_get(p, "speed_mbps")))
			sbuf_printf(b, "  %lld Mb/s", (long long)num(p, "speed_mbps"));
		if (json_is_integer(json_object_get(p, "mtu")))
			sbuf_printf(b, "  mtu %lld", (long long)num(p, "mtu"));
		sbuf_printf(b, "  %s\n", str(p, "addresses", ""));
	}
}

/* "1,2" of an array of integers. */
static void int_list(struct sbuf *b, json_t *a)
{
	size_t i;
	json_t *v;

	json_array_foreach(a, i, v) {
		sbuf_printf(b, "%s%lld", i == 0 ? "" : ",", (long long)json_integer_value(v));
	}
}

/* The lcores the dataplane runs on, else (an older one) the cores its config asks for. */
static void status_lcores(struct sbuf *b, json_t *dp)
{
	json_t *lc = json_object_get(dp, "lcores_configured");

	sbuf_printf(b, "  %-14s %lld", "workers", (long long)num(dp, "workers"));
	if (json_is_array(json_object_get(dp, "worker_lcores"))) {
		sbuf_add(b, " on lcores ", 11);
		int_list(b, json_object_get(dp, "worker_lcores"));
		sbuf_add(b, " (cpus ", 7);
		int_list(b, json_object_get(dp, "worker_cpus"));
		sbuf_printf(b, "); main lcore %lld (cpu %lld)\n", (long long)num(dp, "main_lcore"),
			    (long long)num(dp, "main_cpu"));
		return;
	}
	sbuf_printf(b, " (configured cores: main %lld, workers ", (long long)num(lc, "main"));
	int_list(b, json_object_get(lc, "workers"));
	sbuf_add(b, ")\n", 2);
}

/* "N since start, R/s over the last S s; K open now (worker0 1, worker1 2)" */
static void status_sessions(struct sbuf *b, json_t *ss)
{
	json_t *by = json_object_get(ss, "open_by_worker"), *v;
	const char *w;
	bool first = true;

	sbuf_printf(b, "  %-14s %lld since start", "sessions", (long long)num(ss, "total"));
	if (json_is_number(json_object_get(ss, "per_s")))
		sbuf_printf(b, ", %.1f/s over the last %.0f s", real(ss, "per_s", 0),
			    real(ss, "span_s", 0));
	if (!json_is_integer(json_object_get(ss, "open"))) {
		sbuf_printf(b, "; open now: %s\n", str(ss, "open_note", "unknown"));
		return;
	}
	sbuf_printf(b, "; %lld open now", (long long)num(ss, "open"));
	if (json_object_size(by) > 1) {
		json_object_foreach(by, w, v) {
			sbuf_printf(b, "%s%s %lld", first ? " (" : ", ", w,
				    (long long)json_integer_value(v));
			first = false;
		}
		sbuf_add(b, ")", 1);
	}
	sbuf_add(b, "\n", 1);
}

bool render_status(struct sbuf *b, json_t *st)
{
	json_t *dp = json_object_get(st, "dataplane"), *ctl = json_object_get(st, "control");
	bool up = json_is_true(json_object_get(dp, "connected"));

	if (up) {
		sbuf_printf(b, "%-16s connected: version %s, up ", "mxgate-dp",
			    str(dp, "version", "?"));
		render_duration(b, (double)num(dp, "uptime_s"));
		sbuf_printf(b, ", pid %lld (%s)\n", (long long)num(dp, "pid"),
			    str(dp, "dpdk_version", "DPDK"));
		status_lcores(b, dp);
		sbuf_printf(b, "  %-14s %s", "config", str(dp, "config", "?"));
		if (json_is_integer(json_object_get(dp, "config_generation"))) {
			long long retired = (long long)num(dp, "snapshots_retired");

			sbuf_printf(b, " (generation %lld", (long long)num(dp, "config_generation"));
			if (retired > 0)
				sbuf_printf(b, "; %lld older in use by %lld session%s", retired,
					    (long long)num(dp, "sessions_on_retired"),
					    num(dp, "sessions_on_retired") == 1 ? "" : "s");
			sbuf_printf(b, ")");
		}
		sbuf_printf(b, "\n");
		status_ports(b, json_object_get(dp, "ports"));
		status_sessions(b, json_object_get(dp, "sessions"));
		sbuf_printf(b, "  %-14s %s\n", "queue",
			    str(json_object_get(dp, "queue"), "note", "?"));
	} else {
		sbuf_printf(b, "%-16s NOT CONNECTED", "mxgate-dp");
		if (json_is_number(json_object_get(dp, "for_s")))
			sbuf_printf(b, " for %.1f s", real(dp, "for_s", 0));
		if (str(dp, "last_error", "")[0] != '\0')
			sbuf_printf(b, ": %s\n", str(dp, "last_error", ""));
		else if (str(dp, "last_sample_error", "")[0] != '\0')
			sbuf_printf(b, ": its telemetry answers, but no sample could be read: %s\n",
				    str(dp, "last_sample_error", ""));
		else
			sbuf_printf(b, ": no sample yet\n");
	}
	sbuf_printf(b, "  %-14s %s (%lld connection%s made, %lld failed samples)\n", "telemetry",
		    str(dp, "telemetry_socket", "?"), (long long)num(dp, "connects"),
		    num(dp, "connects") == 1 ? "" : "s", (long long)num(dp, "sample_errors"));
	if (up && str(dp, "last_sample_error", "")[0] != '\0')
		sbuf_printf(b, "  %-14s the last sample failed: %s\n", "sampling",
			    str(dp, "last_sample_error", ""));
	sbuf_printf(b, "%-16s version %s, up ", "mxgate-control", str(ctl, "version", "?"));
	render_duration(b, real(ctl, "uptime_s", 0));
	sbuf_printf(b, ", pid %lld\n", (long long)num(ctl, "pid"));
	sbuf_printf(b, "  %-14s %s (loaded %s)\n", "config", str(ctl, "config", "?"),
		    str(ctl, "loaded_at", "?"));
	sbuf_printf(b, "  %-14s %s\n", "socket", str(ctl, "socket", "?"));
	if (strcmp(str(ctl, "metrics_listen", "off"), "off") == 0)
		sbuf_printf(b, "  %-14s off\n", "metrics");
	else
		sbuf_printf(b, "  %-14s http://%s/metrics\n", "metrics",
			    str(ctl, "metrics_listen", "?"));
	return up;
}

/* ---- stats ---- */

static bool row_nonzero(json_t *counters, json_t *rows, const char *name)
{
	size_t i;
	json_t *r;

	json_array_foreach(rows, i, r)
		if (num(json_object_get(counters, json_string_value(r)), name) != 0)
			return true;
	return false;
}

static void stats_line(struct sbuf *b, json_t *st, const char *name, const char *shown, int width)
{
	json_t *rows = json_object_get(st, "rows"), *counters = json_object_get(st, "counters");
	json_t *rates = json_object_get(st, "rates"), *r;
	size_t i;

	sbuf_printf(b, "%-*s", width, shown);
	json_array_foreach(rows, i, r) {
		const char *row = json_string_value(r);
		json_t *rv = json_object_get(json_object_get(rates, row), name);

		sbuf_printf(b, " %14lld", (long long)num(json_object_get(counters, row), name));
		if (json_is_number(rv))
			sbuf_printf(b, " %13.1f", json_number_value(rv));
		else
			sbuf_printf(b, " %13s", "-");
	}
	sbuf_add(b, "\n", 1);
}

/* Gauges: values of now, in the worker columns, with no rate. */
static void stats_gauges(struct sbuf *b, json_t *st, int width)
{
	json_t *rows = json_object_get(st, "rows"), *gauges = json_object_get(st, "gauges");
	json_t *first = json_object_get(gauges, json_string_value(json_array_get(rows, 0)));
	const char *name;
	json_t *v, *r;
	size_t i;

	if (json_object_size(first) == 0)
		return;
	sbuf_printf(b, "gauges (now)\n");
	json_object_foreach(first, name, v) {
		sbuf_printf(b, "  %-*s", width - 2, name);
		json_array_foreach(rows, i, r) {
			json_t *row = json_object_get(gauges, json_string_value(r));

			/* under each row's value column; its rate column stays empty */
			sbuf_printf(b, "%*s %14lld", i == 0 ? 0 : 14, "",
				    (long long)num(row, name));
		}
		sbuf_add(b, "\n", 1);
	}
}

void render_stats(struct sbuf *b, json_t *st, bool all)
{
	json_t *rows = json_object_get(st, "rows"), *counters = json_object_get(st, "counters");
	json_t *first = json_object_get(counters, json_string_value(json_array_get(rows, 0)));
	unsigned hidden = 0, width = NAME_MIN;
	const char *name;
	json_t *v, *r;
	size_t i;

	json_object_foreach(first, name, v)
		if (strlen(name) + 2 > width)
			width = (unsigned)strlen(name) + 2;
	if (json_is_number(json_object_get(st, "span_s")))
		sbuf_printf(b, "rates per second over the last %.1f s; sample %.1f s old\n",
			    real(st, "span_s", 0), (double)num(st, "sample_age_ms") / 1000.0);
	else
		sbuf_printf(b, "rates: none yet (two samples are needed); sample %.1f s old\n",
			    (double)num(st, "sample_age_ms") / 1000.0);
	sbuf_printf(b, "%-*s", (int)width, "counter");
	json_array_foreach(rows, i, r)
		sbuf_printf(b, " %14s %13s", json_string_value(r), "/s");
	sbuf_add(b, "\n", 1);
	json_object_foreach(first, name, v) {
		if (strncmp(name, DROP_PREFIX, strlen(DROP_PREFIX)) == 0)
			continue;
		if (!all && !row_nonzero(counters, rows, name)) {
			hidden++;
			continue;
		}
		stats_line(b, st, name, name, (int)width);
	}
	sbuf_printf(b, "drops by reason\n");

	bool any = false;

	json_object_foreach(first, name, v) {
		char shown[128];

		if (strncmp(name, DROP_PREFIX, strlen(DROP_PREFIX)) != 0)
			continue;
		if (!all && !row_nonzero(counters, rows, name)) {
			hidden++;
			continue;
		}
		snprintf(shown, sizeof(shown), "  %s", name + strlen(DROP_PREFIX));
		stats_line(b, st, name, shown, (int)width);
		any = true;
	}
	if (!any)
		sbuf_printf(b, "  (none)\n");
	stats_gauges(b, st, (int)width);
	if (hidden != 0)
		sbuf_printf(b, "(%u counters at zero not shown; --all shows them)\n", hidden);
}

/* ---- ports ---- */

void render_ports(struct sbuf *b, json_t *res)
{
	json_t *ports = json_object_get(res, "ports"), *p;
	const char *key;

	json_object_foreach(ports, key, p) {
		json_t *r = json_object_get(p, "rates");
		json_int_t q = num(p, "queues");

		sbuf_printf(b, "%s (%s): link %s, %lld Mb/s, mtu %lld, %lld queue%s, %s steering\n",
			    str(p, "name", key), key, num(p, "link_up") ? "up" : "down",
			    (long long)num(p, "link_speed_mbps"), (long long)num(p, "mtu"),
			    (long long)q, q == 1 ? "" : "s", str(p, "steering", "?"));
		sbuf_printf(b, "  %-10s %s\n", "device", str(p, "device", "?"));
		sbuf_printf(b, "  %-10s %s, mac %s, checksum offload %s\n", "driver",
			    str(p, "driver", "?"), str(p, "mac", "?"), str(p, "csum_offload", "?"));
		sbuf_printf(b, "  %-10s %s\n", "addresses", str(p, "addresses", ""));
		sbuf_printf(b, "  %-10s %lld packets, %lld bytes", "received",
			    (long long)num(p, "ipackets"), (long long)num(p, "ibytes"));
		if (json_is_object(r))
			sbuf_printf(b, " (%.1f packets/s, %.1f bytes/s)", real(r, "ipackets", 0),
				    real(r, "ibytes", 0));
		sbuf_printf(b, "\n  %-10s %lld packets, %lld bytes", "sent",
			    (long long)num(p, "opackets"), (long long)num(p, "obytes"));
		if (json_is_object(r))
			sbuf_printf(b, " (%.1f packets/s, %.1f bytes/s)", real(r, "opackets", 0),
				    real(r, "obytes", 0));
		sbuf_printf(
			b,
			"\n  %-10s missed %lld, rx errors %lld, tx errors %lld, rx no mbuf %lld\n",
			"errors", (long long)num(p, "imissed"), (long long)num(p, "ierrors"),
			(long long)num(p, "oerrors"), (long long)num(p, "rx_nombuf"));
	}
}

/* ---- config show ---- */

void render_config_show(struct sbuf *b, json_t *show)
{
	const char *text = str(show, "text", "");

	sbuf_printf(b, "# the config mxgate-control runs, loaded from %s at %s\n",
		    str(show, "path", "?"), str(show, "loaded_at", "?"));
	sbuf_add(b, text, strlen(text));
	if (text[0] != '\0' && text[strlen(text) - 1] != '\n')
		sbuf_add(b, "\n", 1);
}

static void route_line(struct sbuf *b, const char *domain, json_t *hops, int width)
{
	size_t i;
	json_t *h;

	sbuf_printf(b, "%-*s ", width, domain);
	json_array_foreach(hops, i, h) {
		sbuf_printf(b, "%s%s:%lld (priority %lld, weight %lld)", i ? ", " : "",
			    str(h, "address", "?"),
			    (long long)json_integer_value(json_object_get(h, "port")),
			    (long long)json_integer_value(json_object_get(h, "priority")),
			    (long long)json_integer_value(json_object_get(h, "weight")));
	}
	sbuf_add(b, "\n", 1);
}

void render_routes(struct sbuf *b, json_t *routes)
{
	json_t *doms = json_object_get(routes, "domains");
	json_t *smart = json_object_get(routes, "smarthost");
	int width = (int)strlen("(smarthost)");
	size_t i;
	json_t *d;

	json_array_foreach(doms, i, d) {
		int n = (int)strlen(str(d, "domain", ""));

		if (n > width)
			width = n;
	}
	sbuf_printf(b, "%-*s NEXT HOPS, IN ORDER\n", width, "DOMAIN");
	json_array_foreach(doms, i, d) {
		route_line(b, str(d, "domain", "?"), json_object_get(d, "next_hops"), width);
	}
	if (json_array_size(smart) != 0)
		route_line(b, "(smarthost)", smart, width);
	else
		sbuf_printf(b, "%-*s none: other domains are refused at RCPT (550 5.4.4)\n", width,
			    "(smarthost)");
}

/* ---- top ---- */

struct screen {
	struct sbuf *b;
	unsigned rows, cols, used;
};

static void line(struct screen *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void line(struct screen *s, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	size_t n;

	if (s->used >= s->rows)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	n = strlen(buf);
	if (n > s->cols)
		n = s->cols;
	sbuf_add(s->b, buf, n);
	sbuf_add(s->b, "\n", 1);
	s->used++;
}

/* Sum of the rates of the counters of ROW whose names start with PREFIX (or equal it). */
static double rate_sum(json_t *rates_row, const char *prefix, bool is_prefix)
{
	const char *name;
	double sum = 0;
	json_t *v;

	json_object_foreach(rates_row, name, v)
		if (is_prefix ? strncmp(name, prefix, strlen(prefix)) == 0 :
				strcmp(name, prefix) == 0)
			sum += json_number_value(v);
	return sum;
}

static void top_row(struct screen *s, const char *label, json_t *r)
{
	double loop = real(r, "loop_cycles", 0), busy = real(r, "busy_cycles", 0);

	line(s, "%-10s %10.1f %10.1f %10.2f %10.2f %8.1f %8.1f %8.1f %6.1f", label,
	     real(r, "rx_packets", 0), real(r, "tx_packets", 0), real(r, "rx_bytes", 0) * 8 / 1e6,
	     real(r, "tx_bytes", 0) * 8 / 1e6,
	     real(r, "tcp_passive_opens", 0) + real(r, "tcp_active_opens", 0),
	     real(r, "smtp_messages_accepted", 0), rate_sum(r, DROP_PREFIX, true),
	     loop > 0 ? 100.0 * busy / loop : 0.0);
}

void render_top(struct sbuf *b, json_t *status, json_t *stats, unsigned rows, unsigned cols)
{
	struct screen s = { .b = b, .rows = rows, .cols = cols };
	json_t *dp = json_object_get(status, "dataplane");
	json_t *rates = json_object_get(stats, "rates"), *r;
	json_t *srows = json_object_get(stats, "rows");
	unsigned n_rows = (unsigned)json_array_size(srows);
	char head[256];
	size_t i;

	if (!json_is_true(json_object_get(dp, "connected"))) {
		line(&s, "mxgate top   mxgate-dp NOT CONNECTED: %s   (q quits)",
		     str(dp, "last_error", "no sample yet"));
		return;
	}
	{
		struct sbuf up = { 0 };

		render_duration(&up, (double)num(dp, "uptime_s"));
		snprintf(
			head, sizeof(head),
			"mxgate top   mxgate-dp %s up %s, %lld worker%s, sample %.1f s old   (q quits)",
			str(dp, "version", "?"), sbuf_str(&up), (long long)num(dp, "workers"),
			num(dp, "workers") == 1 ? "" : "s",
			(double)num(stats, "sample_age_ms") / 1000.0);
		sbuf_free(&up);
	}
	line(&s, "%s", head);
	if (json_is_number(json_object_get(stats, "span_s")))
		line(&s, "rates per second over the last %.1f s", real(stats, "span_s", 0));
	else
		line(&s, "rates: waiting for a second sample");
	line(&s, "%-10s %10s %10s %10s %10s %8s %8s %8s %6s", "worker", "rx pkt/s", "tx pkt/s",
	     "rx Mbit/s", "tx Mbit/s", "conn/s", "msg/s", "drops/s", "busy%");

	/* workers as the screen allows, keeping room for total, ports and drops */
	unsigned room = rows > s.used + 6 ? rows - s.used - 6 : 1, shown = 0;

	json_array_foreach(srows, i, r) {
		const char *name = json_string_value(r);

		if (strcmp(name, "total") == 0)
			continue;
		if (shown == room && n_rows > room + 1) {
			line(&s, "... %u more workers", n_rows - 1 - room);
			break;
		}
		top_row(&s, name, json_object_get(rates, name));
		shown++;
	}
	top_row(&s, "total", json_object_get(rates, "total"));

	json_t *ports = json_object_get(dp, "ports"), *p;

	json_array_foreach(ports, i, p)
		line(&s, "port %s: link %s, %lld Mb/s, %s", str(p, "name", "?"),
		     json_is_true(json_object_get(p, "link_up")) ? "up" : "down",
		     (long long)num(p, "speed_mbps"), str(p, "addresses", ""));

	/* the busiest drop reasons of the last interval */
	struct {
		const char *name;
		double v;
	} top[5];
	unsigned n_top = 0;
	json_t *total = json_object_get(rates, "total"), *v;
	const char *name;
	char drops[400] = "";
	size_t off = 0;

	json_object_foreach(total, name, v) {
		double x = json_number_value(v);
		unsigned at = n_top;

		if (strncmp(name, DROP_PREFIX, strlen(DROP_PREFIX)) != 0 || x <= 0)
			continue;
		while (at > 0 && top[at - 1].v < x)
			at--;
		if (at == 5)
			continue;
		if (n_top < 5)
			n_top++;
		memmove(&top[at + 1], &top[at], (n_top - 1 - at) * sizeof(top[0]));
		top[at].name = name + strlen(DROP_PREFIX);
		top[at].v = x;
	}
	for (unsigned k = 0; k < n_top && off < sizeof(drops); k++)
		off += (size_t)snprintf(drops + off, sizeof(drops) - off, "%s %s %.1f/s",
					k != 0 ? "," : "", top[k].name, top[k].v);
	line(&s, "drops:%s", drops[0] != '\0' ? drops : " none");
	line(&s, "smtp sessions since start: %lld",
	     (long long)num(json_object_get(dp, "sessions"), "total"));
}
