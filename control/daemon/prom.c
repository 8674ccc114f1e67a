/* SPDX-License-Identifier: BSD-3-Clause */
/* The /metrics page (see prom.h). */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "control/daemon/prom.h"

#define NS	    "mxgate_"
#define DROP_PREFIX "drop_"

/* The known numeric fields of a /mxgate/ports entry. */
struct port_metric {
	const char *field;
	const char *name; /* without NS */
	const char *type;
	const char *help;
	uint64_t scale;
};

static const struct port_metric port_metrics[] = {
	{ "link_up", "port_up", "gauge", "1 when the port's link is up.", 1 },
	{ "link_speed_mbps", "port_speed_bytes_per_second", "gauge",
	  "Link speed the port negotiated (10 Gbit/s is 1.25e9).", 125000 },
	{ "mtu", "port_mtu_bytes", "gauge", "IP MTU of the port.", 1 },
	{ "queues", "port_queues", "gauge", "RX/TX queue pairs: one per worker.", 1 },
	{ "ipackets", "port_received_packets_total", "counter",
	  "Packets the NIC received (rte_eth_stats ipackets).", 1 },
	{ "opackets", "port_transmitted_packets_total", "counter",
	  "Packets the NIC sent (rte_eth_stats opackets).", 1 },
	{ "ibytes", "port_received_bytes_total", "counter", "Bytes the NIC received.", 1 },
	{ "obytes", "port_transmitted_bytes_total", "counter", "Bytes the NIC sent.", 1 },
	{ "imissed", "port_missed_packets_total", "counter",
	  "Packets the NIC dropped because an RX queue was full.", 1 },
	{ "ierrors", "port_receive_errors_total", "counter", "Erroneous packets received.", 1 },
	{ "oerrors", "port_transmit_errors_total", "counter", "Packets the NIC failed to send.",
	  1 },
	{ "rx_nombuf", "port_rx_nombuf_total", "counter",
	  "RX mbuf allocation failures in the driver.", 1 },
};

/* The port's string fields that become labels of mxgate_port_info. */
static const char *const port_labels[] = { "device",   "driver",       "mac",
					   "steering", "csum_offload", "addresses" };

/* A metric name part: [a-zA-Z0-9_], anything else becomes '_'. */
static void add_name(struct sbuf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		char c = *s;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
			c = '_';
		sbuf_add(b, &c, 1);
	}
}

/* A label value: backslash, double quote and line feed escaped (the format's three). */
static void add_label_value(struct sbuf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\')
			sbuf_add(b, "\\\\", 2);
		else if (*s == '"')
			sbuf_add(b, "\\\"", 2);
		else if (*s == '\n')
			sbuf_add(b, "\\n", 2);
		else
			sbuf_add(b, s, 1);
	}
}

static void family(struct sbuf *b, const char *name, const char *suffix, const char *type,
		   const char *help)
{
	sbuf_add(b, "# HELP " NS, sizeof("# HELP " NS) - 1);
	add_name(b, name);
	sbuf_printf(b, "%s %s\n# TYPE " NS, suffix, help);
	add_name(b, name);
	sbuf_printf(b, "%s %s\n", suffix, type);
}

static void sample_start(struct sbuf *b, const char *name, const char *suffix)
{
	sbuf_add(b, NS, sizeof(NS) - 1);
	add_name(b, name);
	sbuf_printf(b, "%s", suffix);
}

/* "worker3" becomes "3"; any other row name is kept as it is. */
static const char *worker_label(const char *row)
{
	if (strncmp(row, "worker", 6) == 0 && row[6] >= '0' && row[6] <= '9')
		return row + 6;
	return row;
}

static void self_metrics(struct sbuf *b, const struct prom_state *st)
{
	family(b, "up", "", "gauge",
	       "1 while mxgate-control reads the dataplane's telemetry, else 0.");
	sbuf_printf(b, NS "up %d\n", st->up ? 1 : 0);
	family(b, "control_info", "", "gauge", "mxgate-control's version, as a label; always 1.");
	sbuf_add(b, NS "control_info{version=\"", sizeof(NS "control_info{version=\"") - 1);
	add_label_value(b, st->version);
	sbuf_add(b, "\"} 1\n", 5);
	family(b, "control_uptime_seconds", "", "gauge", "Seconds since mxgate-control started.");
	sbuf_printf(b, NS "control_uptime_seconds %.3f\n", st->uptime_s);
	family(b, "control_telemetry_connects_total", "", "counter",
	       "Connections made to the dataplane's telemetry socket.");
	sbuf_printf(b, NS "control_telemetry_connects_total %llu\n",
		    (unsigned long long)st->connects);
	family(b, "control_samples_total", "", "counter", "Counter samples read and stored.");
	sbuf_printf(b, NS "control_samples_total %llu\n", (unsigned long long)st->samples);
	family(b, "control_sample_errors_total", "", "counter",
	       "Samples that failed: no reply in time, or a reply of the wrong shape.");
	sbuf_printf(b, NS "control_sample_errors_total %llu\n",
		    (unsigned long long)st->sample_errors);
}

/* Config reloads of the dataplane (dataplane/core/reload.h), from /mxgate/info. */
static void reload_metrics(struct sbuf *b, json_t *info)
{
	static const char *const outcome[][2] = {
		{ "reloads_applied", "applied" },
		{ "reloads_invalid", "invalid" },
		{ "reloads_refused", "restart_needed" },
		{ "reloads_failed", "failed" },
	};
	json_t *v = json_object_get(info, "config_generation");
	bool first = true;

	if (json_is_integer(v)) {
		family(b, "dataplane_config_generation", "", "gauge",
		       "The config in force: 1 at start, one more per applied reload.");
		sbuf_printf(b, NS "dataplane_config_generation %lld\n",
			    (long long)json_integer_value(v));
	}
	for (size_t i = 0; i < sizeof(outcome) / sizeof(outcome[0]); i++) {
		v = json_object_get(info, outcome[i][0]);
		if (!json_is_integer(v))
			continue;
		if (first)
			family(b, "dataplane_config_reloads_total", "", "counter",
			       "Config reloads asked of mxgate-dp, by outcome.");
		first = false;
		sbuf_printf(b, NS "dataplane_config_reloads_total{outcome=\"%s\"} %lld\n",
			    outcome[i][1], (long long)json_integer_value(v));
	}
	v = json_object_get(info, "snapshots_retired");
	if (json_is_integer(v)) {
		family(b, "dataplane_config_snapshots_retired", "", "gauge",
		       "Older configs still in use by the sessions that started under them.");
		sbuf_printf(b, NS "dataplane_config_snapshots_retired %lld\n",
			    (long long)json_integer_value(v));
	}
}

static void info_metrics(struct sbuf *b, json_t *info)
{
	json_t *v;

	v = json_object_get(info, "version");
	if (json_is_string(v)) {
		family(b, "dataplane_info", "", "gauge",
		       "mxgate-dp's version, as a label; always 1.");
		sbuf_add(b, NS "dataplane_info{version=\"",
			 sizeof(NS "dataplane_info{version=\"") - 1);
		add_label_value(b, json_string_value(v));
		sbuf_add(b, "\"} 1\n", 5);
	}
	v = json_object_get(info, "uptime_s");
	if (json_is_integer(v)) {
		family(b, "dataplane_uptime_seconds", "", "gauge",
		       "Seconds since mxgate-dp started.");
		sbuf_printf(b, NS "dataplane_uptime_seconds %lld\n",
			    (long long)json_integer_value(v));
	}
	v = json_object_get(info, "workers");
	if (json_is_integer(v)) {
		family(b, "dataplane_workers", "", "gauge", "Worker lcores of mxgate-dp.");
		sbuf_printf(b, NS "dataplane_workers %lld\n", (long long)json_integer_value(v));
	}
	reload_metrics(b, info);
}

static void stats_metrics(struct sbuf *b, const struct ctl_store *s)
{
	const struct ctl_layout *l = ctl_store_layout(s, CTL_T_STATS);
	const uint64_t *v = ctl_store_latest(s, CTL_T_STATS);
	int total = ctl_layout_row(l, "total");
	bool drops = false;
	char help[160];

	for (unsigned c = 0; c < l->n_cols; c++) {
		if (strncmp(l->cols[c], DROP_PREFIX, sizeof(DROP_PREFIX) - 1) == 0) {
			drops = true;
			continue;
		}
		snprintf(help, sizeof(help), "mxgate-dp counter %s (/mxgate/stats), per worker.",
			 l->cols[c]);
		family(b, l->cols[c], "_total", "counter", help);
		for (unsigned r = 0; r < l->n_rows; r++) {
			if ((int)r == total)
				continue;
			sample_start(b, l->cols[c], "_total{worker=\"");
			add_label_value(b, worker_label(l->rows[r]));
			sbuf_printf(b, "\"} %llu\n",
				    (unsigned long long)v[(size_t)r * l->n_cols + c]);
		}
	}
	if (!drops)
		return;
	family(b, "drops", "_total", "counter",
	       "Packets mxgate-dp dropped, per worker and reason (dataplane/core/counters.h).");
	for (unsigned c = 0; c < l->n_cols; c++) {
		if (strncmp(l->cols[c], DROP_PREFIX, sizeof(DROP_PREFIX) - 1) != 0)
			continue;
		for (unsigned r = 0; r < l->n_rows; r++) {
			if ((int)r == total)
				continue;
			sbuf_add(b, NS "drops_total{worker=\"",
				 sizeof(NS "drops_total{worker=\"") - 1);
			add_label_value(b, worker_label(l->rows[r]));
			sbuf_add(b, "\",reason=\"", 10);
			add_label_value(b, l->cols[c] + sizeof(DROP_PREFIX) - 1);
			sbuf_printf(b, "\"} %llu\n",
				    (unsigned long long)v[(size_t)r * l->n_cols + c]);
		}
	}
}

/* /mxgate/gauges: a gauge family each, per worker like the counters. */
static void gauges_metrics(struct sbuf *b, const struct ctl_store *s)
{
	const struct ctl_layout *l = ctl_store_layout(s, CTL_T_GAUGES);
	const uint64_t *v = ctl_store_latest(s, CTL_T_GAUGES);
	int total = ctl_layout_row(l, "total");
	char help[160];

	for (unsigned c = 0; c < l->n_cols; c++) {
		snprintf(help, sizeof(help), "mxgate-dp gauge %s (/mxgate/gauges), per worker.",
			 l->cols[c]);
		family(b, l->cols[c], "", "gauge", help);
		for (unsigned r = 0; r < l->n_rows; r++) {
			if ((int)r == total)
				continue;
			sample_start(b, l->cols[c], "{worker=\"");
			add_label_value(b, worker_label(l->rows[r]));
			sbuf_printf(b, "\"} %llu\n",
				    (unsigned long long)v[(size_t)r * l->n_cols + c]);
		}
	}
}

/* The port's configured name, else its key in the reply ("port0"). */
static const char *port_name(json_t *ports, const char *key)
{
	json_t *n = json_object_get(json_object_get(ports, key), "name");

	return json_is_string(n) ? json_string_value(n) : key;
}

static void ports_metrics(struct sbuf *b, const struct ctl_store *s)
{
	const struct ctl_layout *l = ctl_store_layout(s, CTL_T_PORTS);
	const uint64_t *v = ctl_store_latest(s, CTL_T_PORTS);
	json_t *ports = ctl_store_ports(s);
	const char *key;
	json_t *p;

	if (l->n_rows == 0)
		return;
	family(b, "port_info", "", "gauge",
	       "A port's device, driver, MAC, steering and addresses, as labels; always 1.");
	json_object_foreach(ports, key, p) {
		sbuf_add(b, NS "port_info{port=\"", sizeof(NS "port_info{port=\"") - 1);
		add_label_value(b, port_name(ports, key));
		sbuf_add(b, "\"", 1);
		for (size_t i = 0; i < sizeof(port_labels) / sizeof(port_labels[0]); i++) {
			json_t *x = json_object_get(p, port_labels[i]);

			if (!json_is_string(x))
				continue;
			sbuf_printf(b, ",%s=\"", port_labels[i]);
			add_label_value(b, json_string_value(x));
			sbuf_add(b, "\"", 1);
		}
		sbuf_add(b, "} 1\n", 4);
	}
	for (unsigned c = 0; c < l->n_cols; c++) {
		const struct port_metric *m = NULL;
		char name[96], help[160];

		for (size_t i = 0; i < sizeof(port_metrics) / sizeof(port_metrics[0]); i++)
			if (strcmp(port_metrics[i].field, l->cols[c]) == 0)
				m = &port_metrics[i];
		if (m != NULL) {
			snprintf(name, sizeof(name), "%s", m->name);
			family(b, name, "", m->type, m->help);
		} else {
			/* a field this version does not know: shown as it is, as a gauge */
			snprintf(name, sizeof(name), "port_%s", l->cols[c]);
			snprintf(help, sizeof(help), "mxgate-dp port field %s (/mxgate/ports).",
				 l->cols[c]);
			family(b, name, "", "gauge", help);
		}
		for (unsigned r = 0; r < l->n_rows; r++) {
			sample_start(b, name, "{port=\"");
			add_label_value(b, port_name(ports, l->rows[r]));
			sbuf_printf(b, "\"} %llu\n",
				    (unsigned long long)(v[(size_t)r * l->n_cols + c] *
							 (m != NULL ? m->scale : 1)));
		}
	}
}

void prom_render(struct sbuf *out, const struct ctl_store *s, const struct prom_state *st)
{
	self_metrics(out, st);
	if (!st->up || ctl_store_count(s) == 0)
		return;
	info_metrics(out, ctl_store_info(s));
	stats_metrics(out, s);
	gauges_metrics(out, s);
	ports_metrics(out, s);
}
