/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The keys a reload cannot change (restart.h). Everything not compared here
 * is applied hitlessly by mxgate-dp's config snapshots: listener names,
 * modes, host names, greeting pauses, line endings and limits (within the
 * session memory reserved at start, which mxgate-dp checks itself), the
 * policy lists and the client limits' rates, the log level, and routes:
 * (domains, next hops, smarthost, each hop's tls: policy): a session routes
 * by its snapshot's routes (store mode's 5.4.4 check, cut-through), and
 * each worker's relay takes a new snapshot's routes at its next poll
 * (relay_sched_set_routes(): an attempt under way keeps its hops, later
 * ones use the new table). Nothing about routes is sized at start any
 * more: the relay's engine-wide connection cap is fixed (1024 per worker,
 * not derived from the routes), per-hop pools are made as hops appear, and
 * cut-through's pool finds hops by address. What routes still cannot do
 * without a restart lives elsewhere: connections_per_hop and the rest of
 * relay: (below). A relay keeps a dropped hop's slot and counters until a
 * restart (65535 distinct hops per run).
 *
 * tls: is hitless as a whole. Every snapshot makes each worker's TLS
 * contexts anew on the main lcore (certificates and keys read again,
 * min_version, ciphers, ciphersuites, groups, session_tickets, ca_file):
 * STARTTLS and implicit TLS take the session's snapshot's server context,
 * and each worker's relay takes the snapshot's client context when it moves
 * to the snapshot's routes (relay_set_snap_tls()); a handshake under way
 * keeps the context it began with (OpenSSL counts its users), and
 * handshake_timeout_ms is read when a handshake starts. The ticket keys are
 * made once per process and configured nowhere, so tickets issued before a
 * reload still resume after it.
 */
#include "control/config/restart.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define WHY_DP	   "mxgate-dp sets up lcores, ports, memory and TCP at start"
#define WHY_LISTEN "listening ports and their acknowledgement modes are set up at start"
#define WHY_POOL   "session memory is reserved at start"
#define WHY_SPOOL  "the spool shards are opened and sized at start"
#define WHY_RELAY  "the relay client is set up at start"
#define WHY_CLIENT "the per-client table is made at start"
#define WHY_CTL	   "mxgate-control binds its socket and metrics address at start"
#define WHY_LOG	   "the log destination is opened at start"
#define WHY_AUTH                                                                                   \
	"the authentication thread and the per-client table AUTH failures are counted in "         \
	"start with mxgate-dp when a listener offers AUTH"
#define WHY_AUTHQ "the authentication thread's queues are sized at start"

#define VAL_MAX 512

struct diff {
	cfg_restart_fn fn;
	void *arg;
	unsigned n;
};

static void differ(struct diff *d, const char *key, const char *o, const char *n, const char *why)
{
	d->n++;
	if (d->fn != NULL)
		d->fn(d->arg, key, o, n, why);
}

static void num(struct diff *d, const char *key, uint64_t o, uint64_t n, const char *why)
{
	char a[24], b[24];

	if (o == n)
		return;
	snprintf(a, sizeof(a), "%" PRIu64, o);
	snprintf(b, sizeof(b), "%" PRIu64, n);
	differ(d, key, a, b, why);
}

static void str(struct diff *d, const char *key, const char *o, const char *n, const char *why)
{
	if ((o == NULL && n == NULL) || (o != NULL && n != NULL && strcmp(o, n) == 0))
		return;
	differ(d, key, o != NULL ? o : "(default)", n != NULL ? n : "(default)", why);
}

/* printf into a key buffer */
#define KEY(buf, ...) (snprintf((buf), sizeof(buf), __VA_ARGS__), (buf))

static void join_prefixes(char *out, size_t cap, const struct cfg_prefix *p, unsigned n)
{
	size_t off = 0;

	out[0] = '\0';
	for (unsigned i = 0; i < n && off < cap; i++) {
		char one[32];

		off += (size_t)snprintf(out + off, cap - off, "%s%s", i ? " " : "",
					cfg_prefix_str(&p[i], one, sizeof(one)));
	}
}

static void ipv4(char *out, size_t cap, uint32_t a)
{
	struct in_addr in = { .s_addr = a };

	if (inet_ntop(AF_INET, &in, out, (socklen_t)cap) == NULL)
		snprintf(out, cap, "?");
}

static void dataplane(struct diff *d, const struct cfg_dataplane *o, const struct cfg_dataplane *n)
{
	char key[96], a[VAL_MAX], b[VAL_MAX];
	size_t oa = 0, ob = 0;

	num(d, "dataplane.main_core", o->main_core, n->main_core, WHY_DP);
	a[0] = b[0] = '\0';
	for (unsigned i = 0; i < o->n_workers && oa < sizeof(a); i++)
		oa += (size_t)snprintf(a + oa, sizeof(a) - oa, "%s%u", i ? "," : "",
				       o->worker_cores[i]);
	for (unsigned i = 0; i < n->n_workers && ob < sizeof(b); i++)
		ob += (size_t)snprintf(b + ob, sizeof(b) - ob, "%s%u", i ? "," : "",
				       n->worker_cores[i]);
	str(d, "dataplane.worker_cores", a, b, WHY_DP);
	num(d, "dataplane.memory.mode", o->memory_mode, n->memory_mode, WHY_DP);
	num(d, "dataplane.memory.size_mb", o->memory_mb, n->memory_mb, WHY_DP);
	num(d, "dataplane.memory.in_memory", o->in_memory, n->in_memory, WHY_DP);
	str(d, "dataplane.memory.file_prefix", o->file_prefix, n->file_prefix, WHY_DP);
	num(d, "dataplane.idle_sleep_us", o->idle_sleep_us, n->idle_sleep_us, WHY_DP);
	num(d, "dataplane.tx_drain_us", o->tx_drain_us, n->tx_drain_us, WHY_DP);
	num(d, "dataplane.mbufs_per_worker", o->mbufs_per_worker, n->mbufs_per_worker, WHY_DP);
	num(d, "dataplane.steer_ring_size", o->steer_ring_size, n->steer_ring_size, WHY_DP);
	oa = ob = 0;
	a[0] = b[0] = '\0';
	for (unsigned i = 0; i < o->n_eal_args && oa < sizeof(a); i++)
		oa += (size_t)snprintf(a + oa, sizeof(a) - oa, "%s%s", i ? " " : "", o->eal_args[i]);
	for (unsigned i = 0; i < n->n_eal_args && ob < sizeof(b); i++)
		ob += (size_t)snprintf(b + ob, sizeof(b) - ob, "%s%s", i ? " " : "", n->eal_args[i]);
	str(d, "dataplane.eal_args", a, b, WHY_DP);
	num(d, "dataplane.ports (how many)", o->n_ports, n->n_ports, WHY_DP);
	for (unsigned i = 0; i < o->n_ports && i < n->n_ports; i++) {
		const struct cfg_port *p = &o->ports[i], *q = &n->ports[i];

		str(d, KEY(key, "dataplane.ports[%u].name", i), p->name, q->name, WHY_DP);
		str(d, KEY(key, "dataplane.ports[%u].device", i), p->device, q->device, WHY_DP);
		num(d, KEY(key, "dataplane.ports[%u].mtu", i), p->mtu, q->mtu, WHY_DP);
		num(d, KEY(key, "dataplane.ports[%u].rx_desc", i), p->rx_desc, q->rx_desc, WHY_DP);
		num(d, KEY(key, "dataplane.ports[%u].tx_desc", i), p->tx_desc, q->tx_desc, WHY_DP);
		num(d, KEY(key, "dataplane.ports[%u].steering", i), p->steering, q->steering,
		    WHY_DP);
		join_prefixes(a, sizeof(a), p->addrs, p->n_addrs);
		join_prefixes(b, sizeof(b), q->addrs, q->n_addrs);
		str(d, KEY(key, "dataplane.ports[%u].addresses", i), a, b, WHY_DP);
	}
	oa = ob = 0;
	a[0] = b[0] = '\0';
	for (unsigned i = 0; i < o->n_routes && oa < sizeof(a); i++) {
		char pf[32], via[16];

		ipv4(via, sizeof(via), o->routes[i].via);
		oa += (size_t)snprintf(a + oa, sizeof(a) - oa, "%s%s via %s", i ? ", " : "",
				       cfg_prefix_str(&o->routes[i].dst, pf, sizeof(pf)), via);
	}
	for (unsigned i = 0; i < n->n_routes && ob < sizeof(b); i++) {
		char pf[32], via[16];

		ipv4(via, sizeof(via), n->routes[i].via);
		ob += (size_t)snprintf(b + ob, sizeof(b) - ob, "%s%s via %s", i ? ", " : "",
				       cfg_prefix_str(&n->routes[i].dst, pf, sizeof(pf)), via);
	}
	str(d, "dataplane.routes", a, b, WHY_DP);
	num(d, "dataplane.arp.timeout_s", o->arp_timeout_s, n->arp_timeout_s, WHY_DP);
	num(d, "dataplane.arp.pending_max", o->arp_pending_max, n->arp_pending_max, WHY_DP);
	num(d, "dataplane.icmp.echo_rate", o->icmp_echo_rate, n->icmp_echo_rate, WHY_DP);
	num(d, "dataplane.icmp.echo_burst", o->icmp_echo_burst, n->icmp_echo_burst, WHY_DP);
	num(d, "dataplane.icmp.error_rate", o->icmp_error_rate, n->icmp_error_rate, WHY_DP);
	num(d, "dataplane.icmp.error_burst", o->icmp_error_burst, n->icmp_error_burst, WHY_DP);
	num(d, "dataplane.tcp.cc", o->tcp.cc, n->tcp.cc, WHY_DP);
	num(d, "dataplane.tcp.syn_backlog", o->tcp.syn_backlog, n->tcp.syn_backlog, WHY_DP);
	num(d, "dataplane.tcp.max_conns", o->tcp.max_conns, n->tcp.max_conns, WHY_DP);
	num(d, "dataplane.tcp.rto_min_ms", o->tcp.rto_min_ms, n->tcp.rto_min_ms, WHY_DP);
	num(d, "dataplane.tcp.delack_ms", o->tcp.delack_ms, n->tcp.delack_ms, WHY_DP);
	num(d, "dataplane.tcp.time_wait_max", o->tcp.time_wait_max, n->tcp.time_wait_max, WHY_DP);
	num(d, "dataplane.tcp.rcv_buf_kb", o->tcp.rcv_buf_kb, n->tcp.rcv_buf_kb, WHY_DP);
	num(d, "dataplane.tcp.snd_buf_kb", o->tcp.snd_buf_kb, n->tcp.snd_buf_kb, WHY_DP);
	num(d, "dataplane.tcp.echo_port", o->tcp.echo_port, n->tcp.echo_port, WHY_DP);
	num(d, "dataplane.tcp.discard_port", o->tcp.discard_port, n->tcp.discard_port, WHY_DP);
}

static const char *ack_name(enum cfg_ack_mode a)
{
	return a == CFG_ACK_STORE ? "store" : a == CFG_ACK_CUT_THROUGH ? "cut-through" : "sink";
}

static void listeners(struct diff *d, const struct cfg *o, const struct cfg *n)
{
	char key[96];

	num(d, "listeners (how many)", o->n_listeners, n->n_listeners, WHY_LISTEN);
	for (unsigned i = 0; i < o->n_listeners && i < n->n_listeners; i++) {
		const struct cfg_listener *p = &o->listeners[i], *q = &n->listeners[i];

		num(d, KEY(key, "listeners[%u].port", i), p->port, q->port, WHY_LISTEN);
		if (p->ack != q->ack)
			differ(d, KEY(key, "listeners[%u].ack", i), ack_name(p->ack),
			       ack_name(q->ack), WHY_LISTEN);
		num(d, KEY(key, "listeners[%u].limits.sessions", i), p->limits.sessions,
		    q->limits.sessions, WHY_POOL);
		if (p->ack != CFG_ACK_STORE || q->ack != CFG_ACK_STORE)
			continue;
		/* the spool sized its staging and records for these: lowering them is fine */
		if (q->limits.max_message_size > p->limits.max_message_size)
			num(d, KEY(key, "listeners[%u].limits.max_message_size", i),
			    p->limits.max_message_size, q->limits.max_message_size,
			    WHY_SPOOL " (it may be lowered without one)");
		if (q->limits.max_recipients > p->limits.max_recipients)
			num(d, KEY(key, "listeners[%u].limits.max_recipients", i),
			    p->limits.max_recipients, q->limits.max_recipients,
			    WHY_SPOOL " (it may be lowered without one)");
	}
}

static bool limits_on(const struct cfg *c)
{
	const struct cfg_client_limits *l = &c->policy.client_limits;

	return c->n_listeners != 0 &&
	       (l->connections != 0 || l->connection_rate != 0 || l->message_rate != 0);
}

static bool any_auth(const struct cfg *c)
{
	for (unsigned i = 0; i < c->n_listeners; i++)
		if (c->listeners[i].auth)
			return true;
	return false;
}

/* mxgate-dp makes the per-client table when a limit is set or a listener offers AUTH */
static bool table_made(const struct cfg *c)
{
	return limits_on(c) || (c->n_listeners != 0 && any_auth(c));
}

static void client_limits(struct diff *d, const struct cfg *o, const struct cfg *n)
{
	const struct cfg_client_limits *p = &o->policy.client_limits, *q = &n->policy.client_limits;

	/* with no table at start (no limit, no AUTH) turning a limit on needs it */
	if (!table_made(o) && limits_on(n))
		differ(d, "policy.client_limits", "all off", "a limit set", WHY_CLIENT);
	if (table_made(o))
		num(d, "policy.client_limits.table_size", p->table_size, q->table_size,
		    WHY_CLIENT);
}

/*
 * auth: password_file is read again by every reload (smtpd_auth_reload()),
 * max_failures and lockout_s are read from the session's snapshot at each
 * failure (a lockout already running keeps the end it was given), and
 * queue_depth may be lowered (authd_set_depth()): all hitless. What is made
 * at start is the authentication thread with its rings and each worker's
 * buffers for long AUTH lines (both sized by queue_depth), and the client
 * table the failures are counted in: AUTH
 * offered by no listener at start cannot be turned on, and queue_depth
 * cannot grow past the rings.
 */
static void auth(struct diff *d, const struct cfg *o, const struct cfg *n)
{
	const struct cfg_auth *p = &o->auth, *q = &n->auth;

	if (!any_auth(o)) {
		if (any_auth(n))
			differ(d, "listeners[].auth", "offered by no listener",
			       "offered by a listener", WHY_AUTH);
		return;
	}
	if (q->queue_depth > p->queue_depth)
		num(d, "auth.queue_depth", p->queue_depth, q->queue_depth,
		    WHY_AUTHQ " (it may be lowered without one)");
}

static void spool(struct diff *d, const struct cfg_spool *o, const struct cfg_spool *n)
{
	str(d, "spool.directory", o->directory, n->directory, WHY_SPOOL);
	num(d, "spool.commit_window_us", o->commit_window_us, n->commit_window_us, WHY_SPOOL);
	num(d, "spool.commit_bytes_kb", o->commit_bytes_kb, n->commit_bytes_kb, WHY_SPOOL);
	num(d, "spool.size_limit_mb", o->size_limit_mb, n->size_limit_mb, WHY_SPOOL);
	num(d, "spool.segment_mb", o->segment_mb, n->segment_mb, WHY_SPOOL);
	num(d, "spool.staging_mb", o->staging_mb, n->staging_mb, WHY_SPOOL);
	num(d, "spool.max_messages", o->max_messages, n->max_messages, WHY_SPOOL);
	num(d, "spool.probe_interval_ms", o->probe_interval_ms, n->probe_interval_ms, WHY_SPOOL);
	num(d, "spool.high_water_percent", o->high_water_percent, n->high_water_percent,
	    WHY_SPOOL);
	num(d, "spool.commit_latency_ms", o->commit_latency_ms, n->commit_latency_ms, WHY_SPOOL);
}

static void relay(struct diff *d, const struct cfg_relay *o, const struct cfg_relay *n)
{
	str(d, "relay.helo_name", o->helo_name, n->helo_name, WHY_RELAY);
	num(d, "relay.retry_first_s", o->retry_first_s, n->retry_first_s, WHY_RELAY);
	num(d, "relay.retry_max_s", o->retry_max_s, n->retry_max_s, WHY_RELAY);
	num(d, "relay.lifetime_h", o->lifetime_h, n->lifetime_h, WHY_RELAY);
	num(d, "relay.delay_warning_h", o->delay_warning_h, n->delay_warning_h, WHY_RELAY);
	num(d, "relay.connections_per_hop", o->connections_per_hop, n->connections_per_hop,
	    WHY_RELAY);
	num(d, "relay.messages_per_connection", o->messages_per_connection,
	    n->messages_per_connection, WHY_RELAY);
	num(d, "relay.idle_timeout_s", o->idle_timeout_s, n->idle_timeout_s, WHY_RELAY);
	num(d, "relay.connect_timeout_s", o->connect_timeout_s, n->connect_timeout_s, WHY_RELAY);
	num(d, "relay.pipelining", o->pipelining, n->pipelining, WHY_RELAY);
	num(d, "relay.chunking", o->chunking, n->chunking, WHY_RELAY);
	num(d, "relay.send_8bit", o->send_8bit, n->send_8bit, WHY_RELAY);
	num(d, "relay.bounce_return_kb", o->bounce_return_kb, n->bounce_return_kb, WHY_RELAY);
	num(d, "relay.queue_max", o->queue_max, n->queue_max, WHY_RELAY);
	num(d, "relay.command_timeout_s", o->command_timeout_s, n->command_timeout_s, WHY_RELAY);
	num(d, "relay.data_block_timeout_s", o->data_block_timeout_s, n->data_block_timeout_s,
	    WHY_RELAY);
	num(d, "relay.data_end_timeout_s", o->data_end_timeout_s, n->data_end_timeout_s,
	    WHY_RELAY);
}

static void control(struct diff *d, const struct cfg_control *o, const struct cfg_control *n)
{
	char a[32], b[32];

	str(d, "control.socket", o->socket, n->socket, WHY_CTL);
	ipv4(a, sizeof(a), o->metrics_addr);
	ipv4(b, sizeof(b), n->metrics_addr);
	if (!o->metrics_on)
		snprintf(a, sizeof(a), "off");
	else
		snprintf(a + strlen(a), sizeof(a) - strlen(a), ":%u", o->metrics_port);
	if (!n->metrics_on)
		snprintf(b, sizeof(b), "off");
	else
		snprintf(b + strlen(b), sizeof(b) - strlen(b), ":%u", n->metrics_port);
	str(d, "control.metrics_listen", a, b, WHY_CTL);
	str(d, "control.telemetry_socket", o->telemetry_socket, n->telemetry_socket, WHY_CTL);
	num(d, "control.sample_interval_ms", o->sample_interval_ms, n->sample_interval_ms,
	    WHY_CTL);
	num(d, "control.history_s", o->history_s, n->history_s, WHY_CTL);
}

unsigned cfg_restart_diff(const struct cfg *run, const struct cfg *next, unsigned who,
			  cfg_restart_fn fn, void *arg)
{
	struct diff d = { .fn = fn, .arg = arg };

	if (who & CFG_RESTART_DP) {
		dataplane(&d, &run->dp, &next->dp);
		listeners(&d, run, next);
		client_limits(&d, run, next);
		auth(&d, run, next);
		spool(&d, &run->spool, &next->spool);
		relay(&d, &run->relay, &next->relay);
	}
	if (who & CFG_RESTART_CONTROL) {
		control(&d, &run->control, &next->control);
		num(&d, "logging.destination", run->logging.dest, next->logging.dest, WHY_LOG);
		str(&d, "logging.file", run->logging.file, next->logging.file, WHY_LOG);
	}
	return d.n;
}
