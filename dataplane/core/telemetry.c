/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * /mxgate/... commands on DPDK's telemetry socket, so mxgate-control and stock
 * dpdk-telemetry.py read the same figures. Callbacks run on the telemetry
 * thread: they read counters with relaxed loads and ask workers, through
 * their command rings, for anything a worker owns (ARP table, ping). No reply
 * may outgrow what DPDK sends in one message: see /mxgate/stats below.
 */
#include "dp.h"
#include "reload.h"
#include "snap.h"
#include "svc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_telemetry.h>

#ifndef MXGATE_VERSION
#define MXGATE_VERSION "unknown"
#endif

#define PING_MAX_COUNT 20
#define CMD_TIMEOUT_MS 1000

/* Guards tel_dp against the shutdown path closing ports under a callback. */
static pthread_mutex_t tel_lock = PTHREAD_MUTEX_INITIALIZER;
static struct dp *tel_dp;

static struct dp *tel_enter(void)
{
	pthread_mutex_lock(&tel_lock);
	if (!tel_dp)
		pthread_mutex_unlock(&tel_lock);
	return tel_dp;
}

static void tel_leave(void)
{
	pthread_mutex_unlock(&tel_lock);
}

static void mac_str(const struct rte_ether_addr *mac, char *buf, size_t len)
{
	rte_ether_format_addr(buf, (uint16_t)len, mac);
}

/*
 * DPDK 22.11 sends a reply as one message of at most 16 KiB (its MAX_OUTPUT_LEN,
 * announced as max_output_len in the greeting), and a dict entry that does not fit
 * is left out without a word, as is a dict entry past RTE_TEL_MAX_DICT_ENTRIES. So
 * /mxgate/stats is paged by row: one worker's row (or the total) always fits, which
 * the build checks below, and the whole table is sent only when its exact size fits;
 * otherwise the reply says so and names the pages. Nothing is ever cut short.
 */
#define TEL_REPLY_MAX	16384
#define TEL_REPLY_SLACK 256 /* bytes kept free under TEL_REPLY_MAX: DPDK's own bookkeeping */
#define U64_DIGITS_MAX	20
#define STATS_CMD	"/mxgate/stats"
#define GAUGES_CMD	"/mxgate/gauges"

/* Gauges: values of now, not counts since start. X(ENUM, "telemetry name") */
#define DP_GAUGES(X)                                                                               \
	X(SMTP_SESSIONS_OPEN, "smtp_sessions_open") /* dp->svc_sessions() */                       \
	X(TCP_CONNS, "tcp_conns")                   /* in the table, TIME_WAIT included */         \
	X(TCP_TIME_WAIT, "tcp_time_wait")

#define GAUGE_ENUM_(e, name) G_##e,
enum {
	DP_GAUGES(GAUGE_ENUM_) G_MAX
};
#undef GAUGE_ENUM_

/* A dict entry is `,"name":value` (the first has `{` for the comma); `}` closes the dict. */
#define KEY_BYTES_(e, name)	 +(sizeof(name) - 1 + 4)
#define DROP_KEY_BYTES_(e, name) +(sizeof("drop_" name) - 1 + 4)
enum {
	ROW_ENTRIES = DP_C_MAX + DP_DROP_MAX,
	ROW_KEY_BYTES = 0 DP_TRAFFIC_COUNTERS(KEY_BYTES_) DP_DROP_COUNTERS(DROP_KEY_BYTES_),
	ROW_BYTES_MAX = 1 + ROW_KEY_BYTES + ROW_ENTRIES * U64_DIGITS_MAX,
	/* {"/mxgate/stats":ROW} */
	PAGE_BYTES_MAX = sizeof("{\"" STATS_CMD "\":}") - 1 + ROW_BYTES_MAX,
	GAUGE_ROW_BYTES_MAX = 1 + 0 DP_GAUGES(KEY_BYTES_) + G_MAX * U64_DIGITS_MAX,
	/* {"/mxgate/gauges":{"worker15":ROW,...,"total":ROW}} */
	GAUGES_BYTES_MAX =
		sizeof("{\"" GAUGES_CMD "\":{}}") - 1 +
		(DP_MAX_WORKERS + 1) * (sizeof(",\"worker15\":") - 1 + GAUGE_ROW_BYTES_MAX),
};
_Static_assert(ROW_ENTRIES <= RTE_TEL_MAX_DICT_ENTRIES,
	       "a /mxgate/stats row has more counters than a telemetry dict holds: split the row");
_Static_assert(PAGE_BYTES_MAX + TEL_REPLY_SLACK <= TEL_REPLY_MAX,
	       "one /mxgate/stats row could outgrow a telemetry reply: split the row");
_Static_assert(G_MAX <= RTE_TEL_MAX_DICT_ENTRIES && DP_MAX_WORKERS + 1 <= RTE_TEL_MAX_DICT_ENTRIES,
	       "/mxgate/gauges has more entries than a telemetry dict holds");
_Static_assert(GAUGES_BYTES_MAX + TEL_REPLY_SLACK <= TEL_REPLY_MAX,
	       "/mxgate/gauges could outgrow a telemetry reply: page it like /mxgate/stats");

/* Bytes of S as a JSON dict in DPDK's compact form. */
static size_t row_bytes(const struct dp_stats *s)
{
	size_t n = 1 + ROW_KEY_BYTES;

	for (unsigned i = 0; i < DP_C_MAX; i++)
		n += dp_u64_digits(s->c[i]);
	for (unsigned i = 0; i < DP_DROP_MAX; i++)
		n += dp_u64_digits(s->drop[i]);
	return n;
}

/* Fills D (started as a dict) with every counter of S. Returns 0, or -ENOSPC if one is refused. */
static int stats_fill(struct rte_tel_data *d, const struct dp_stats *s)
{
	char name[RTE_TEL_MAX_STRING_LEN];
	int rc = 0;

	for (unsigned i = 0; i < DP_C_MAX; i++)
		rc |= rte_tel_data_add_dict_u64(d, dp_counter_names[i], s->c[i]);
	for (unsigned i = 0; i < DP_DROP_MAX; i++) {
		snprintf(name, sizeof(name), "drop_%s", dp_drop_names[i]);
		rc |= rte_tel_data_add_dict_u64(d, name, s->drop[i]);
	}
	return rc != 0 ? -ENOSPC : 0;
}

/* The reply {"error": MSG, ...} (MSG under RTE_TEL_MAX_STRING_LEN); the callback returns 0. */
static int tel_error(struct rte_tel_data *d, const char *msg)
{
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_string(d, "error", msg);
	return 0;
}

static void stats_pages(struct rte_tel_data *d, unsigned n_workers)
{
	struct rte_tel_data *pages = rte_tel_data_alloc();
	char page[64];

	if (!pages)
		return;
	rte_tel_data_start_array(pages, RTE_TEL_STRING_VAL);
	for (unsigned i = 0; i < n_workers; i++) {
		snprintf(page, sizeof(page), STATS_CMD ",%u", i);
		rte_tel_data_add_array_string(pages, page);
	}
	rte_tel_data_add_array_string(pages, STATS_CMD ",total");
	rte_tel_data_add_dict_container(d, "pages", pages, 0);
}

/*
 * Every row in one reply, when it fits: {"worker0": {...}, ..., "total": {...}}.
 * ROWS holds n_workers snapshots and their total after them.
 */
static int stats_table(struct rte_tel_data *d, const struct dp_stats *rows, unsigned n_workers)
{
	size_t bytes = sizeof("{\"" STATS_CMD "\":{}}") - 1;
	char name[32], msg[RTE_TEL_MAX_STRING_LEN];

	for (unsigned i = 0; i <= n_workers; i++)
		bytes += sizeof(",\"worker15\":") - 1 + row_bytes(&rows[i]);
	if (bytes + TEL_REPLY_SLACK > TEL_REPLY_MAX) {
		snprintf(msg, sizeof(msg),
			 "%u workers' counters exceed one %u-byte reply: read " STATS_CMD
			 ",N (N = 0..%u) and " STATS_CMD ",total",
			 n_workers, TEL_REPLY_MAX, n_workers - 1);
		tel_error(d, msg);
		rte_tel_data_add_dict_u64(d, "workers", n_workers);
		stats_pages(d, n_workers);
		return 0;
	}
	/* Every row is made before any goes into D: a container that never reaches the reply
	 * is ours to free, and DPDK frees none on an error return. */
	struct rte_tel_data *made[DP_MAX_WORKERS + 1] = { NULL };
	int rc = 0;

	for (unsigned i = 0; i <= n_workers && rc == 0; i++) {
		made[i] = rte_tel_data_alloc();
		if (!made[i]) {
			rc = -ENOMEM;
			break;
		}
		rte_tel_data_start_dict(made[i]);
		rc = stats_fill(made[i], &rows[i]);
	}
	if (rc == 0)
		rte_tel_data_start_dict(d);
	for (unsigned i = 0; i <= n_workers && rc == 0; i++) {
		if (i < n_workers)
			snprintf(name, sizeof(name), "worker%u", i);
		else
			snprintf(name, sizeof(name), "total");
		if (rte_tel_data_add_dict_container(d, name, made[i], 0) != 0)
			rc = -ENOSPC;
		else
			made[i] = NULL; /* the reply's now */
	}
	for (unsigned i = 0; i <= n_workers; i++)
		rte_tel_data_free(made[i]);
	if (rc == -ENOSPC) /* the build checks rule it out: say so rather than cut a row */
		return tel_error(d, "a row did not fit a telemetry dict; this is a bug");
	return rc;
}

/*
 * /mxgate/stats: every row if it fits, else an error naming the pages.
 * /mxgate/stats,N: worker N's counters. /mxgate/stats,total: their sum.
 */
static int cmd_stats(const char *cmd __rte_unused, const char *params, struct rte_tel_data *d)
{
	struct dp *dp = tel_enter();
	struct dp_stats *rows, one;
	unsigned n, want;
	char msg[RTE_TEL_MAX_STRING_LEN];
	int rc;

	if (!dp)
		return -ESHUTDOWN;
	n = dp->n_workers;
	if (params && *params) {
		char *end;
		unsigned long w = strtoul(params, &end, 10);

		if (strcmp(params, "total") == 0) {
			want = n;
		} else if (params[0] >= '0' && params[0] <= '9' && *end == '\0' && w < n) {
			want = (unsigned)w;
		} else {
			tel_leave();
			snprintf(msg, sizeof(msg),
				 "no such row: give a worker number from 0 to %u, or total", n - 1);
			return tel_error(d, msg);
		}
		struct dp_stats sum = { 0 };

		for (unsigned i = 0; i < n; i++) {
			if (want != n && i != want)
				continue;
			dp_stats_read(&dp->workers[i]->stats, &one);
			dp_stats_add(&sum, &one);
		}
		tel_leave();
		rte_tel_data_start_dict(d);
		if (stats_fill(d, &sum) != 0)
			return tel_error(d, "the row did not fit a telemetry dict; this is a bug");
		return 0;
	}

	rows = calloc(n + 1, sizeof(*rows));
	if (!rows) {
		tel_leave();
		return -ENOMEM;
	}
	for (unsigned i = 0; i < n; i++) {
		dp_stats_read(&dp->workers[i]->stats, &rows[i]);
		dp_stats_add(&rows[n], &rows[i]);
	}
	tel_leave();
	rc = stats_table(d, rows, n);
	free(rows);
	return rc;
}

/*
 * /mxgate/gauges: what is open now, per worker and in total. A gauge whose
 * source the program lacks (no mail service: dp->svc_sessions is NULL) is left out.
 */
static int cmd_gauges(const char *cmd __rte_unused, const char *params, struct rte_tel_data *d)
{
	static const char *const names[G_MAX] = {
#define GAUGE_NAME_(e, name) [G_##e] = name,
		DP_GAUGES(GAUGE_NAME_)
#undef GAUGE_NAME_
	};
	uint64_t v[DP_MAX_WORKERS + 1][G_MAX] = { { 0 } };
	bool have[G_MAX] = { false };
	struct dp *dp;
	unsigned n;
	char name[32];

	if (params && *params)
		return tel_error(d, GAUGES_CMD " takes no parameters");
	dp = tel_enter();
	if (!dp)
		return -ESHUTDOWN;
	n = dp->n_workers;
	have[G_SMTP_SESSIONS_OPEN] = dp->svc_sessions != NULL;
	have[G_TCP_CONNS] = have[G_TCP_TIME_WAIT] = true;
	for (unsigned i = 0; i < n; i++) {
		if (dp->svc_sessions)
			v[i][G_SMTP_SESSIONS_OPEN] = dp->svc_sessions(dp->workers[i]);
		if (dp->workers[i]->tcp) {
			v[i][G_TCP_CONNS] = tcp_stack_conns(dp->workers[i]->tcp);
			v[i][G_TCP_TIME_WAIT] = tcp_stack_time_wait(dp->workers[i]->tcp);
		}
		for (unsigned g = 0; g < G_MAX; g++)
			v[n][g] += v[i][g];
	}
	tel_leave();

	rte_tel_data_start_dict(d);
	for (unsigned i = 0; i <= n; i++) {
		struct rte_tel_data *row = rte_tel_data_alloc();

		if (!row)
			return -ENOMEM;
		rte_tel_data_start_dict(row);
		for (unsigned g = 0; g < G_MAX; g++)
			if (have[g])
				rte_tel_data_add_dict_u64(row, names[g], v[i][g]);
		if (i < n)
			snprintf(name, sizeof(name), "worker%u", i);
		else
			snprintf(name, sizeof(name), "total");
		rte_tel_data_add_dict_container(d, name, row, 0);
	}
	return 0;
}

static int cmd_info(const char *cmd __rte_unused, const char *params __rte_unused,
		    struct rte_tel_data *d)
{
	struct dp *dp = tel_enter();
	struct rte_tel_data *lcores, *cpus;

	if (!dp)
		return -ESHUTDOWN;
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_string(d, "version", MXGATE_VERSION);
	rte_tel_data_add_dict_u64(d, "workers", dp->n_workers);
	rte_tel_data_add_dict_u64(d, "ports", dp->n_ports);
	rte_tel_data_add_dict_u64(d, "uptime_s", (rte_rdtsc() - dp->start_tsc) / dp->hz);
	/* the file of the config in force: a reload may have named another */
	rte_tel_data_add_dict_string(d, "config",
				     dp_snap_cfg(dp)->path ? dp_snap_cfg(dp)->path : "");
	/* EAL's lcore ids, and the CPU each runs on (several workers may share one) */
	rte_tel_data_add_dict_u64(d, "main_lcore", rte_get_main_lcore());
	rte_tel_data_add_dict_u64(d, "main_cpu", dp->cfg->dp.main_core);
	lcores = rte_tel_data_alloc();
	cpus = rte_tel_data_alloc();
	if (lcores && cpus) {
		rte_tel_data_start_array(lcores, RTE_TEL_U64_VAL);
		rte_tel_data_start_array(cpus, RTE_TEL_U64_VAL);
		for (unsigned i = 0; i < dp->n_workers; i++) {
			rte_tel_data_add_array_u64(lcores, dp->workers[i]->lcore_id);
			rte_tel_data_add_array_u64(cpus, dp->cfg->dp.worker_cores[i]);
		}
		rte_tel_data_add_dict_container(d, "worker_lcores", lcores, 0);
		rte_tel_data_add_dict_container(d, "worker_cpus", cpus, 0);
	} else {
		rte_tel_data_free(lcores);
		rte_tel_data_free(cpus);
	}
	dp_reload_info(dp, d);
	tel_leave();
	return 0;
}

/* /mxgate/reload[,PATH] and /mxgate/log_level[,LEVEL] (reload.c), one at a time. */
static int cmd_reload(const char *cmd __rte_unused, const char *params, struct rte_tel_data *d)
{
	struct dp *dp = tel_enter();
	int rc;

	if (!dp)
		return -ESHUTDOWN;
	rc = dp_reload_tel(dp, params, d);
	tel_leave();
	return rc;
}

static int cmd_log_level(const char *cmd __rte_unused, const char *params, struct rte_tel_data *d)
{
	struct dp *dp = tel_enter();
	int rc;

	if (!dp)
		return -ESHUTDOWN;
	rc = dp_log_level_tel(dp, params, d);
	tel_leave();
	return rc;
}

static struct rte_tel_data *port_dict(const struct dp *dp, unsigned slot)
{
	const struct port_info *p = &dp->ports[slot];
	const struct net_iface *ifc = &dp->ifaces[slot];
	struct rte_tel_data *d = rte_tel_data_alloc();
	struct rte_eth_stats st;
	struct rte_eth_link link;
	char buf[RTE_TEL_MAX_STRING_LEN];
	size_t off = 0;

	if (!d)
		return NULL;
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_string(d, "name", p->name);
	rte_tel_data_add_dict_string(d, "device", p->device);
	rte_tel_data_add_dict_string(d, "driver", p->driver);
	mac_str(&p->mac, buf, sizeof(buf));
	rte_tel_data_add_dict_string(d, "mac", buf);
	if (rte_eth_link_get_nowait(p->port_id, &link) == 0) {
		rte_tel_data_add_dict_u64(d, "link_up", link.link_status);
		rte_tel_data_add_dict_u64(d, "link_speed_mbps", link.link_speed);
	}
	rte_tel_data_add_dict_u64(d, "mtu", p->mtu);
	rte_tel_data_add_dict_u64(d, "queues", p->n_queues);
	rte_tel_data_add_dict_string(d, "steering", p->hw_steering ? "hardware" : "software");
	rte_tel_data_add_dict_string(d, "csum_offload", port_csum_str(p, buf, sizeof(buf)));
	buf[0] = '\0';
	for (unsigned i = 0; i < ifc->n_addrs && off < sizeof(buf); i++) {
		struct cfg_prefix pf = {.addr = ifc->addrs[i].addr, .len = ifc->addrs[i].len};
		char one[32];
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%s", i ? " " : "",
					cfg_prefix_str(&pf, one, sizeof(one)));
	}
	rte_tel_data_add_dict_string(d, "addresses", buf);
	if (rte_eth_stats_get(p->port_id, &st) == 0) {
		rte_tel_data_add_dict_u64(d, "ipackets", st.ipackets);
		rte_tel_data_add_dict_u64(d, "opackets", st.opackets);
		rte_tel_data_add_dict_u64(d, "ibytes", st.ibytes);
		rte_tel_data_add_dict_u64(d, "obytes", st.obytes);
		rte_tel_data_add_dict_u64(d, "imissed", st.imissed);
		rte_tel_data_add_dict_u64(d, "ierrors", st.ierrors);
		rte_tel_data_add_dict_u64(d, "oerrors", st.oerrors);
		rte_tel_data_add_dict_u64(d, "rx_nombuf", st.rx_nombuf);
	}
	return d;
}

static int cmd_ports(const char *cmd __rte_unused, const char *params __rte_unused,
		     struct rte_tel_data *d)
{
	struct dp *dp = tel_enter();
	char name[32];

	if (!dp)
		return -ESHUTDOWN;
	rte_tel_data_start_dict(d);
	for (unsigned i = 0; i < dp->n_ports; i++) {
		struct rte_tel_data *p = port_dict(dp, i);
		snprintf(name, sizeof(name), "port%u", i);
		if (p)
			rte_tel_data_add_dict_container(d, name, p, 0);
	}
	tel_leave();
	return 0;
}

/* Submits under the lock (the dp is alive), waits without it (shutdown may proceed). */
static int run_on_worker(unsigned wid, struct dp_cmd *cmd, unsigned timeout_ms)
{
	struct dp *dp = tel_enter();
	int rc;

	if (!dp) {
		rte_free(cmd);
		return -ESHUTDOWN;
	}
	rc = dp_cmd_submit(dp, wid, cmd);
	tel_leave();
	if (rc != 0) {
		rte_free(cmd);
		return rc;
	}
	return dp_cmd_wait(cmd, timeout_ms);
}

int dp_telemetry_run(unsigned wid, struct dp_cmd *cmd, unsigned timeout_ms)
{
	return run_on_worker(wid, cmd, timeout_ms);
}

unsigned dp_telemetry_workers(void)
{
	struct dp *dp = tel_enter();
	unsigned n;

	if (!dp)
		return 0;
	n = dp->n_workers;
	tel_leave();
	return n;
}

/* The operator's name of an ethdev port; the ports never change while telemetry runs. */
static const char *port_name(uint16_t port_id)
{
	static __thread char fallback[16];
	struct dp *dp = tel_enter();
	const char *name = NULL;

	if (dp) {
		for (unsigned i = 0; i < dp->n_ports; i++)
			if (dp->ports[i].port_id == port_id)
				name = dp->ports[i].name;
		tel_leave();
	}
	if (!name) {
		snprintf(fallback, sizeof(fallback), "port%u", port_id);
		name = fallback;
	}
	return name;
}

static int cmd_arp(const char *cmd __rte_unused, const char *params __rte_unused,
		   struct rte_tel_data *d)
{
	struct dp *dp = tel_enter();
	unsigned n_workers;
	char name[32], ip[INET_ADDRSTRLEN], mac[RTE_ETHER_ADDR_FMT_SIZE];

	if (!dp)
		return -ESHUTDOWN;
	n_workers = dp->n_workers;
	tel_leave();

	rte_tel_data_start_dict(d);
	for (unsigned w = 0; w < n_workers; w++) {
		struct dp_cmd *c = rte_zmalloc("dp_cmd", sizeof(*c), 0);
		if (!c)
			return -ENOMEM;
		c->type = DP_CMD_ARP_DUMP;
		int rc = run_on_worker(w, c, CMD_TIMEOUT_MS);
		if (rc != 0)
			return rc;
		/* Dict keys may not hold dots in 22.11, so each entry is one string:
		 * "ADDRESS MAC|incomplete PORT age_s=N". */
		struct rte_tel_data *t = rte_tel_data_alloc();
		if (t) {
			rte_tel_data_start_array(t, RTE_TEL_STRING_VAL);
			for (unsigned i = 0; i < c->u.arp.n; i++) {
				const struct net_arp_entry *e = &c->u.arp.e[i];
				char line[RTE_TEL_MAX_STRING_LEN];
				inet_ntop(AF_INET, &e->ip, ip, sizeof(ip));
				if (e->resolved)
					mac_str(&e->mac, mac, sizeof(mac));
				else
					snprintf(mac, sizeof(mac), "incomplete");
				snprintf(line, sizeof(line), "%s %s %s age_s=%u", ip, mac,
					 port_name(e->port_id), e->age_s);
				rte_tel_data_add_array_string(t, line);
			}
			snprintf(name, sizeof(name), "worker%u", w);
			rte_tel_data_add_dict_container(d, name, t, 0);
		}
		rte_free(c);
	}
	return 0;
}

/* /mxgate/ping,ADDR[,COUNT]: the dataplane's own reachability check of a next hop. */
static int cmd_ping(const char *cmd __rte_unused, const char *params, struct rte_tel_data *d)
{
	char addr[INET_ADDRSTRLEN] = "";
	unsigned long count = 3;
	struct in_addr dst;
	const char *comma;

	if (!params || !*params)
		return -EINVAL;
	comma = strchr(params, ',');
	size_t alen = comma ? (size_t)(comma - params) : strlen(params);
	if (alen >= sizeof(addr))
		return -EINVAL;
	memcpy(addr, params, alen);
	addr[alen] = '\0';
	if (inet_pton(AF_INET, addr, &dst) != 1)
		return -EINVAL;
	if (comma) {
		char *end;
		count = strtoul(comma + 1, &end, 10);
		if (*end || count < 1 || count > PING_MAX_COUNT)
			return -EINVAL;
	}

	struct dp_cmd *c = rte_zmalloc("dp_cmd", sizeof(*c), 0);
	if (!c)
		return -ENOMEM;
	c->type = DP_CMD_PING;
	c->u.ping.dst = dst.s_addr;
	c->u.ping.count = (uint16_t)count;
	int rc = run_on_worker(0, c, (unsigned)count * 100 + 2000);
	if (rc != 0)
		return rc;
	if (c->result != 0) {
		rc = c->result;
		rte_free(c);
		return rc;
	}
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_string(d, "dst", addr);
	rte_tel_data_add_dict_u64(d, "sent", c->u.ping.sent);
	rte_tel_data_add_dict_u64(d, "received", c->u.ping.received);
	struct rte_tel_data *rtt = rte_tel_data_alloc();
	if (rtt) {
		rte_tel_data_start_array(rtt, RTE_TEL_U64_VAL);
		for (unsigned i = 0; i < c->u.ping.sent && i < NET_PING_MAX; i++)
			if (c->u.ping.rtt_us[i] != UINT32_MAX)
				rte_tel_data_add_array_u64(rtt, c->u.ping.rtt_us[i]);
		rte_tel_data_add_dict_container(d, "rtt_us", rtt, 0);
	}
	rte_free(c);
	return 0;
}

/*
 * /mxgate/tcp_echo_test,ADDR,PORT,BYTES: the dataplane opens a connection to
 * an echo server, sends BYTES and checks what comes back.
 */
static int cmd_tcp_echo(const char *cmd __rte_unused, const char *params, struct rte_tel_data *d)
{
	char buf[96], addr[INET_ADDRSTRLEN];
	struct in_addr dst;
	char *save = NULL, *a, *p, *b, *end;

	if (!params || strlen(params) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, params);
	a = strtok_r(buf, ",", &save);
	p = strtok_r(NULL, ",", &save);
	b = strtok_r(NULL, ",", &save);
	if (!a || !p || !b || inet_pton(AF_INET, a, &dst) != 1)
		return -EINVAL;
	unsigned long port = strtoul(p, &end, 10);
	if (*end || port == 0 || port > 65535)
		return -EINVAL;
	unsigned long long bytes = strtoull(b, &end, 10);
	if (*end || bytes > (1ull << 32))
		return -EINVAL;
	snprintf(addr, sizeof(addr), "%s", a);

	struct dp_cmd *c = rte_zmalloc("dp_cmd", sizeof(*c), 0);
	if (!c)
		return -ENOMEM;
	c->type = DP_CMD_TCP_ECHO;
	c->u.echo.dst = dst.s_addr;
	c->u.echo.port = (uint16_t)port;
	c->u.echo.bytes = bytes;
	int rc = run_on_worker(0, c, 65000);
	if (rc != 0)
		return rc;
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_string(d, "dst", addr);
	rte_tel_data_add_dict_u64(d, "port", port);
	rte_tel_data_add_dict_u64(d, "connected", c->u.echo.connected);
	rte_tel_data_add_dict_u64(d, "sent", c->u.echo.sent);
	rte_tel_data_add_dict_u64(d, "received", c->u.echo.received);
	rte_tel_data_add_dict_u64(d, "mismatches", c->u.echo.mismatches);
	rte_tel_data_add_dict_u64(d, "elapsed_us", c->u.echo.elapsed_us);
	int err = c->result ? c->result : c->u.echo.error;
	rte_tel_data_add_dict_string(d, "error", err ? strerror(-err) : "");
	rte_free(c);
	return 0;
}

int dp_telemetry_register(struct dp *dp)
{
	int rc = 0;

	pthread_mutex_lock(&tel_lock);
	tel_dp = dp;
	pthread_mutex_unlock(&tel_lock);
	rc |= rte_telemetry_register_cmd("/mxgate/info", cmd_info,
					 "mxgate-dp version, workers, lcores, uptime. No parameters");
	rc |= rte_telemetry_register_cmd(STATS_CMD, cmd_stats,
					 "Counters: every row if they fit a reply, else an error "
					 "naming pages. Parameters: [N|total]");
	rc |= rte_telemetry_register_cmd(GAUGES_CMD, cmd_gauges,
					 "Open SMTP sessions now, per worker and total. No parameters");
	rc |= rte_telemetry_register_cmd("/mxgate/ports", cmd_ports,
					 "Ports: device, MAC, link, steering, addresses, NIC stats");
	rc |= rte_telemetry_register_cmd("/mxgate/arp", cmd_arp,
					 "ARP table of every worker. No parameters");
	rc |= rte_telemetry_register_cmd("/mxgate/ping", cmd_ping,
					 "Ping from the dataplane. Parameters: ADDRESS[,COUNT<=20]");
	rc |= rte_telemetry_register_cmd("/mxgate/reload", cmd_reload,
					 "Load, check and apply a config file. Parameters: [PATH]");
	rc |= rte_telemetry_register_cmd("/mxgate/log_level", cmd_log_level,
					 "Show or set the log level. Parameters: [error|warning|info|debug]");
	rc |= rte_telemetry_register_cmd("/mxgate/tcp_echo_test", cmd_tcp_echo,
					 "Active TCP open to an echo server. Parameters: ADDRESS,PORT,BYTES");
	rc |= dp_telemetry_register_svc(); /* tel_svc.c: sessions and the queue */
	return rc ? -EINVAL : 0;
}

void dp_telemetry_shutdown(void)
{
	pthread_mutex_lock(&tel_lock);
	tel_dp = NULL;
	pthread_mutex_unlock(&tel_lock);
}
