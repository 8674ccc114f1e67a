/* SPDX-License-Identifier: BSD-3-Clause */
/* A loaded config as JSON, defaults included (see cfg_json.h). */
#include <arpa/inet.h>
#include <stdio.h>

#include "control/common/cfg_json.h"

static json_t *prefix(const struct cfg_prefix *p)
{
	char buf[32];

	return json_string(cfg_prefix_str(p, buf, sizeof(buf)));
}

static json_t *ipv4(uint32_t addr)
{
	char buf[INET_ADDRSTRLEN];
	struct in_addr in = { .s_addr = addr };

	inet_ntop(AF_INET, &in, buf, sizeof(buf));
	return json_string(buf);
}

static const char *steering_name(enum cfg_steering s)
{
	return s == CFG_STEER_HARDWARE ? "hardware" : s == CFG_STEER_SOFTWARE ? "software" : "auto";
}

static json_t *dataplane(const struct cfg_dataplane *dp)
{
	json_t *d = json_object(), *cores = json_array(), *ports = json_array(),
	       *routes = json_array(), *eal = json_array();

	for (unsigned i = 0; i < dp->n_workers; i++)
		json_array_append_new(cores, json_integer(dp->worker_cores[i]));
	for (unsigned i = 0; i < dp->n_eal_args; i++)
		json_array_append_new(eal, json_string(dp->eal_args[i]));
	for (unsigned i = 0; i < dp->n_ports; i++) {
		const struct cfg_port *p = &dp->ports[i];
		json_t *addrs = json_array();

		for (unsigned a = 0; a < p->n_addrs; a++)
			json_array_append_new(addrs, prefix(&p->addrs[a]));
		json_array_append_new(
			ports, json_pack("{s:s?, s:s?, s:i, s:i, s:i, s:s, s:o}", "name", p->name,
					 "device", p->device, "mtu", p->mtu, "rx_desc", p->rx_desc,
					 "tx_desc", p->tx_desc, "steering",
					 steering_name(p->steering), "addresses", addrs));
	}
	for (unsigned i = 0; i < dp->n_routes; i++)
		json_array_append_new(routes,
				      json_pack("{s:o, s:o}", "dst", prefix(&dp->routes[i].dst),
						"via", ipv4(dp->routes[i].via)));
	json_object_set_new(d, "main_core", json_integer(dp->main_core));
	json_object_set_new(d, "worker_cores", cores);
	json_object_set_new(d, "memory",
			    json_pack("{s:s, s:i, s:b, s:s?}", "mode",
				      dp->memory_mode == CFG_MEM_NO_HUGE ? "no-huge" : "hugepages",
				      "size_mb", dp->memory_mb, "in_memory", dp->in_memory,
				      "file_prefix", dp->file_prefix));
	json_object_set_new(d, "idle_sleep_us", json_integer(dp->idle_sleep_us));
	json_object_set_new(d, "tx_drain_us", json_integer(dp->tx_drain_us));
	json_object_set_new(d, "mbufs_per_worker", json_integer(dp->mbufs_per_worker));
	json_object_set_new(d, "steer_ring_size", json_integer(dp->steer_ring_size));
	json_object_set_new(d, "eal_args", eal);
	json_object_set_new(d, "ports", ports);
	json_object_set_new(d, "routes", routes);
	json_object_set_new(d, "arp",
			    json_pack("{s:i, s:i}", "timeout_s", dp->arp_timeout_s, "pending_max",
				      dp->arp_pending_max));
	json_object_set_new(d, "icmp",
			    json_pack("{s:i, s:i, s:i, s:i}", "echo_rate", dp->icmp_echo_rate,
				      "echo_burst", dp->icmp_echo_burst, "error_rate",
				      dp->icmp_error_rate, "error_burst", dp->icmp_error_burst));
	json_object_set_new(d, "tcp",
			    json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i}", "cc",
				      dp->tcp.cc == CFG_CC_CUBIC ? "cubic" : "newreno",
				      "syn_backlog", dp->tcp.syn_backlog, "max_conns",
				      dp->tcp.max_conns, "rto_min_ms", dp->tcp.rto_min_ms,
				      "delack_ms", dp->tcp.delack_ms, "time_wait_max",
				      dp->tcp.time_wait_max, "rcv_buf_kb", dp->tcp.rcv_buf_kb,
				      "snd_buf_kb", dp->tcp.snd_buf_kb, "echo_port",
				      dp->tcp.echo_port, "discard_port", dp->tcp.discard_port));
	return d;
}

static json_t *listeners(const struct cfg *c)
{
	json_t *a = json_array();

	for (unsigned i = 0; i < c->n_listeners; i++) {
		const struct cfg_listener *l = &c->listeners[i];
		const struct cfg_listener_limits *lim = &l->limits;

		json_array_append_new(
			a,
			json_pack("{s:s?, s:i, s:s, s:s, s:s?, s:i, s:{s:I, s:i, s:i, s:i, s:i, "
				  "s:i, s:i}}",
				  "name", l->name, "port", l->port, "mode",
				  l->mode == CFG_MODE_SUBMISSION ? "submission" : "relay", "ack",
				  l->ack == CFG_ACK_STORE ? "store" : "sink", "hostname", l->hostname, "greeting_pause_ms",
				  l->greeting_pause_ms, "limits", "max_message_size",
				  (json_int_t)lim->max_message_size, "max_recipients",
				  lim->max_recipients, "max_errors", lim->max_errors,
				  "command_line", lim->command_line, "text_line", lim->text_line,
				  "input_no_crlf", lim->input_no_crlf, "sessions", lim->sessions));
	}
	return a;
}

static json_t *domain(const struct cfg_domain *d)
{
	char buf[300];

	snprintf(buf, sizeof(buf), "%s%s", d->wildcard ? "*." : "", d->name ? d->name : "");
	return json_string(buf);
}

static json_t *policy(const struct cfg_policy *p)
{
	json_t *doms = json_array(), *nets = json_array(), *rcpts = json_array();

	for (unsigned i = 0; i < p->n_relay_domains; i++)
		json_array_append_new(doms, domain(&p->relay_domains[i]));
	for (unsigned i = 0; i < p->n_relay_networks; i++)
		json_array_append_new(nets, prefix(&p->relay_networks[i]));
	for (unsigned i = 0; i < p->n_recipients; i++) {
		const struct cfg_recipients *r = &p->recipients[i];
		json_t *locals = json_array();

		for (unsigned j = 0; j < r->n_locals; j++)
			json_array_append_new(locals, json_string(r->locals[j]));
		if (r->catch_all)
			json_array_append_new(locals, json_string("*"));
		json_array_append_new(rcpts, json_pack("{s:o, s:o}", "domain", domain(&r->domain),
						       "local_parts", locals));
	}
	return json_pack("{s:o, s:o, s:o}", "relay_domains", doms, "relay_networks", nets,
			 "recipients", rcpts);
}

static json_t *hops(const struct cfg_next_hop *h, unsigned n)
{
	json_t *a = json_array();

	for (unsigned i = 0; i < n; i++)
		json_array_append_new(a, json_pack("{s:o, s:i, s:i, s:i}", "address",
						   ipv4(h[i].addr), "port", h[i].port, "priority",
						   h[i].priority, "weight", h[i].weight));
	return a;
}

json_t *cfg_routes_json(const struct cfg_routes *r)
{
	json_t *doms = json_array();

	for (unsigned i = 0; i < r->n_domains; i++)
		json_array_append_new(doms, json_pack("{s:o, s:o}", "domain",
						      domain(&r->domains[i].domain), "next_hops",
						      hops(r->domains[i].hops, r->domains[i].n_hops)));
	return json_pack("{s:o, s:o}", "domains", doms, "smarthost",
			 hops(r->smarthost, r->n_smarthost));
}

static json_t *spool(const struct cfg_spool *s)
{
	return json_pack("{s:s?, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i}", "directory",
			 s->directory, "commit_window_us", s->commit_window_us, "commit_bytes_kb",
			 s->commit_bytes_kb, "size_limit_mb", s->size_limit_mb, "segment_mb",
			 s->segment_mb, "staging_mb", s->staging_mb, "max_messages", s->max_messages,
			 "probe_interval_ms", s->probe_interval_ms, "high_water_percent",
			 s->high_water_percent, "commit_latency_ms", s->commit_latency_ms);
}

static json_t *relay(const struct cfg_relay *r)
{
	json_t *o = json_pack("{s:s?, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i}", "helo_name",
			      r->helo_name, "retry_first_s", r->retry_first_s, "retry_max_s",
			      r->retry_max_s, "lifetime_h", r->lifetime_h, "delay_warning_h",
			      r->delay_warning_h, "connections_per_hop", r->connections_per_hop,
			      "messages_per_connection", r->messages_per_connection,
			      "idle_timeout_s", r->idle_timeout_s, "connect_timeout_s",
			      r->connect_timeout_s);

	json_object_set_new(o, "pipelining", json_boolean(r->pipelining));
	json_object_set_new(o, "chunking", json_boolean(r->chunking));
	json_object_set_new(o, "send_8bit", json_boolean(r->send_8bit));
	json_object_set_new(o, "bounce_return_kb", json_integer(r->bounce_return_kb));
	json_object_set_new(o, "queue_max", json_integer(r->queue_max));
	/* the next hop's waits (RFC 5321 §4.5.3.2): store mode and cut-through */
	json_object_set_new(o, "command_timeout_s", json_integer(r->command_timeout_s));
	json_object_set_new(o, "data_block_timeout_s", json_integer(r->data_block_timeout_s));
	json_object_set_new(o, "data_end_timeout_s", json_integer(r->data_end_timeout_s));
	return o;
}

static json_t *control(const struct cfg_control *c)
{
	char listen[32];
	struct in_addr in = { .s_addr = c->metrics_addr };
	char a[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &in, a, sizeof(a));
	if (c->metrics_on)
		snprintf(listen, sizeof(listen), "%s:%u", a, c->metrics_port);
	else
		snprintf(listen, sizeof(listen), "off");
	return json_pack("{s:s?, s:s, s:s?, s:i, s:i}", "socket", c->socket, "metrics_listen",
			 listen, "telemetry_socket", c->telemetry_socket, "sample_interval_ms",
			 c->sample_interval_ms, "history_s", c->history_s);
}

static json_t *logging(const struct cfg_logging *l)
{
	const char *dest = l->dest == CFG_LOG_FILE   ? l->file :
			   l->dest == CFG_LOG_STDERR ? "stderr" :
						       "stdout";

	return json_pack("{s:s, s:s?}", "level", cfg_log_level_name(l->level), "destination", dest);
}

json_t *cfg_to_json(const struct cfg *c)
{
	return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "dataplane",
			 dataplane(&c->dp), "listeners", listeners(c), "policy",
			 policy(&c->policy), "routes", cfg_routes_json(&c->routes), "spool",
			 spool(&c->spool), "relay", relay(&c->relay), "control",
			 control(&c->control), "logging", logging(&c->logging));
}
