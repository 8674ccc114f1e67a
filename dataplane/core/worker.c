/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The worker lcore: burst RX from its queue on every port, steer each flow
 * packet to the worker that owns the flow, run the network layer, and send
 * in batches with a drain timer. Nothing here blocks or takes a lock.
 */
#include "dp.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_pause.h>
#include <rte_random.h>

#include "dataplane/core/snap.h"
#include "dataplane/tcp/testsvc.h"

#define LEARN_RING_SIZE 1024
#define CMD_RING_SIZE 64
#define PERIODIC_MS 100
#define PING_INTERVAL_MS 100
#define PING_WAIT_MS 1000 /* after the last request */
#define IDLE_LOOPS_BEFORE_SLEEP 64

static void worker_tx_cb(void *arg, uint16_t port, struct rte_mbuf *m)
{
	dp_tx(arg, port, m);
}

/* Tells every other worker what this one learned, so each ARP table stays its own. */
static void worker_learn_cb(void *arg, uint16_t port, uint32_t ip, const struct rte_ether_addr *mac)
{
	struct dp_worker *w = arg;
	struct dp_learn l = {.ip = ip, .port_id = port, .mac = *mac};

	for (unsigned i = 0; i < w->dp->n_workers; i++) {
		struct dp_worker *o = w->dp->workers[i];
		if (o != w)
			rte_ring_mp_enqueue_elem(o->learn_ring, &l, sizeof(l));
	}
}

struct dp_worker *dp_worker_new(struct dp *dp, unsigned id, unsigned lcore_id, char *err,
				size_t errlen)
{
	const struct cfg_dataplane *c = &dp->cfg->dp;
	int socket = (int)rte_lcore_to_socket_id(lcore_id);
	char name[RTE_MEMZONE_NAMESIZE];
	struct dp_worker *w;

	RTE_BUILD_BUG_ON(sizeof(struct dp_learn) % 4 != 0);
	w = rte_zmalloc_socket("dp_worker", sizeof(*w), RTE_CACHE_LINE_SIZE, socket);
	if (!w) {
		snprintf(err, errlen, "worker %u: out of memory", id);
		return NULL;
	}
	w->id = id;
	w->lcore_id = lcore_id;
	w->dp = dp;

	snprintf(name, sizeof(name), "mx_pool_%u", id);
	w->pool = rte_pktmbuf_pool_create(name, c->mbufs_per_worker, 256, 0,
					  RTE_MBUF_DEFAULT_BUF_SIZE, socket);
	snprintf(name, sizeof(name), "mx_steer_%u", id);
	if (w->pool)
		w->steer_ring = rte_ring_create(name, c->steer_ring_size, socket, RING_F_SC_DEQ);
	snprintf(name, sizeof(name), "mx_learn_%u", id);
	if (w->steer_ring)
		w->learn_ring = rte_ring_create_elem(name, sizeof(struct dp_learn), LEARN_RING_SIZE,
						     socket, RING_F_SC_DEQ);
	snprintf(name, sizeof(name), "mx_cmd_%u", id);
	if (w->learn_ring)
		w->cmd_ring = rte_ring_create(name, CMD_RING_SIZE, socket, RING_F_SC_DEQ);
	if (!w->cmd_ring) {
		snprintf(err, errlen, "worker %u: cannot create %s: %s", id, name,
			 rte_strerror(rte_errno));
		dp_worker_free(w);
		return NULL;
	}
	return w;
}

/* The stack's packets go out through the network layer: route, ARP, Ethernet. */
static void worker_ip_out(void *arg, struct rte_mbuf *m, uint32_t dst)
{
	struct dp_worker *w = arg;
	net_ip_output(&w->net, m, dst, rte_rdtsc());
}

static void worker_tcp_input(void *arg, struct rte_mbuf *m, uint64_t now)
{
	struct dp_worker *w = arg;
	tcp_input(w->tcp, m, now);
}

static void worker_tcp_icmp(void *arg, uint8_t type, uint8_t code, const void *inner,
			    unsigned len, uint64_t now)
{
	struct dp_worker *w = arg;
	tcp_icmp_error(w->tcp, type, code, inner, len, now);
}

/*
 * The machine's TCP secret for this boot: 32 random octets kept in a root-only
 * file on /run (a tmpfs, so a boot starts a new one), made by the first
 * mxgate process that needs it and read by every later one. ISNs (RFC 6528)
 * and timestamp offsets are F(4-tuple, secret) plus a clock since boot, so
 * with one secret a process started later sends, on a 4-tuple an earlier one
 * used, timestamps and sequence numbers that are newer -- what a peer still
 * in TIME-WAIT on that 4-tuple requires to accept the SYN (RFC 6191 §2,
 * PAWS). With a secret per process, about half of those SYNs failed PAWS:
 * a challenge ACK, our RST, and a second SYN a retransmission timeout
 * (1 s) later, for every reused port (scripts/bench: a generator started
 * after one that made 300,000 connections met it on most of its own).
 * Linux keeps its secret per boot too. Returns 0, or -1 when the file cannot
 * be made or read (the caller then draws a secret of its own).
 */
#define TCP_SECRET_FILE "/run/mxgate-tcp-secret"

static int boot_secret(uint8_t *out, size_t n)
{
	for (int tries = 0; tries < 2; tries++) {
		int fd = open(TCP_SECRET_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd >= 0) {
			ssize_t got = read(fd, out, n);
			close(fd);
			if (got == (ssize_t)n)
				return 0;
			/* being written by another process (made with O_EXCL just now) */
			rte_delay_ms(10);
			continue;
		}
		if (errno != ENOENT)
			return -1;
		for (size_t i = 0; i < n; i += 8) {
			uint64_t r = rte_rand();
			memcpy(out + i, &r, RTE_MIN(n - i, sizeof(r)));
		}
		fd = open(TCP_SECRET_FILE, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0) {
			if (errno == EEXIST)
				continue; /* another process made it first: read theirs */
			return -1;
		}
		ssize_t put = write(fd, out, n);
		if (close(fd) != 0 || put != (ssize_t)n) {
			unlink(TCP_SECRET_FILE);
			return -1;
		}
		return 0;
	}
	return -1;
}

static int worker_tcp_init(struct dp_worker *w)
{
	const struct cfg_tcp *c = &w->dp->cfg->dp.tcp;
	struct tcp_params p;
	uint8_t secret[32];
	uint16_t mtu = UINT16_MAX;

	tcp_params_default(&p);
	p.cc = c->cc == CFG_CC_CUBIC ? TCP_CC_CUBIC : TCP_CC_NEWRENO;
	p.syn_backlog = c->syn_backlog;
	p.max_conns = c->max_conns;
	p.rto_min_ms = c->rto_min_ms;
	p.delack_ms = c->delack_ms;
	p.time_wait_max = c->time_wait_max;
	p.rcv_buf = c->rcv_buf_kb * 1024;
	p.snd_buf = c->snd_buf_kb * 1024;
	/* A segment may leave by any port: the NIC sums only if every port can. */
	p.tx_csum_offload = w->dp->n_ports > 0;
	for (unsigned i = 0; i < w->dp->n_ports; i++) {
		mtu = RTE_MIN(mtu, w->dp->ports[i].mtu);
		p.tx_csum_offload = p.tx_csum_offload && port_tx_csum_offload(&w->dp->ports[i]);
	}
	/* Keys ISNs (RFC 6528), timestamp offsets and SYN cookies: the boot's, shared
	 * by every worker and mxgate process (a flow never leaves its worker, so one
	 * of its own would do, but not one of its own process: boot_secret()). */
	if (boot_secret(secret, sizeof(secret)) != 0)
		for (unsigned i = 0; i < sizeof(secret); i += 8) {
			uint64_t r = rte_rand();
			memcpy(secret + i, &r, 8);
		}
	w->tcp = tcp_stack_new(&p, &w->timers, w->pool, &w->stats, worker_ip_out, w, mtu, secret);
	if (!w->tcp)
		return -ENOMEM;
	w->net.upper = (struct net_upper){
		.tcp_input = worker_tcp_input,
		.tcp_icmp_error = worker_tcp_icmp,
		.arg = w,
	};
	int rc = tcp_testsvc_start(w->tcp, (uint16_t)c->echo_port, (uint16_t)c->discard_port);
	return rc != 0 || !w->dp->svc_start ? rc : w->dp->svc_start(w);
}

int dp_worker_net_init(struct dp_worker *w)
{
	const struct cfg_dataplane *c = &w->dp->cfg->dp;
	struct net_ctx *n = &w->net;

	n->ifaces = w->dp->ifaces;
	n->n_ifaces = w->dp->n_ports;
	n->routes = w->dp->routes;
	n->n_routes = w->dp->n_routes;
	n->pool = w->pool;
	n->stats = &w->stats;
	n->tx = worker_tx_cb;
	n->learn = w->dp->n_workers > 1 ? worker_learn_cb : NULL;
	n->cb_arg = w;
	n->hz = w->dp->hz;
	n->params = (struct net_params){
		.arp_timeout_s = c->arp_timeout_s,
		.arp_pending_max = c->arp_pending_max,
		.arp_retries = 3,
		.icmp_echo_rate = c->icmp_echo_rate,
		.icmp_echo_burst = c->icmp_echo_burst,
		.icmp_error_rate = c->icmp_error_rate,
		.icmp_error_burst = c->icmp_error_burst,
	};
	uint64_t now = rte_rdtsc();
	int rc = net_ctx_init(n, now);
	if (rc != 0)
		return rc;
	timer_wheel_init(&w->timers, w->dp->hz, 1000, now);
	return worker_tcp_init(w);
}

void dp_cmd_finish(struct dp_cmd *cmd, int result)
{
	int expect = DP_CMD_ST_PENDING;

	cmd->result = result;
	if (!__atomic_compare_exchange_n(&cmd->state, &expect, DP_CMD_ST_DONE, false,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		rte_free(cmd); /* the submitter gave up waiting: it is ours to free */
}

void dp_worker_free(struct dp_worker *w)
{
	struct dp_cmd *cmd;
	struct rte_mbuf *m;

	if (!w)
		return;
	if (w->ping_cmd)
		dp_cmd_finish(w->ping_cmd, -ECANCELED);
	if (w->echo_cmd) {
		w->echo_cmd->u.echo.error = -ECANCELED;
		dp_cmd_finish(w->echo_cmd, 0);
		w->echo_cmd = NULL;
	}
	if (w->cmd_ring)
		while (rte_ring_dequeue(w->cmd_ring, (void **)&cmd) == 0)
			dp_cmd_finish(cmd, -ECANCELED);
	if (w->steer_ring)
		while (rte_ring_dequeue(w->steer_ring, (void **)&m) == 0)
			rte_pktmbuf_free(m);
	if (w->dp->svc_drain && w->tcp)
		w->dp->svc_drain(w); /* the mail service's own connections first */
	tcp_stack_free(w->tcp); /* before the queues: aborting may still send */
	w->tcp = NULL;
	if (w->dp->svc_stop)
		w->dp->svc_stop(w); /* after the stack: its sessions closed with it */
	for (unsigned i = 0; i < DP_MAX_PORTS; i++)
		rte_pktmbuf_free_bulk(w->txq[i].pkts, w->txq[i].n);
	if (w->net.arp)
		net_ctx_fini(&w->net);
	rte_ring_free(w->cmd_ring);
	rte_ring_free(w->learn_ring);
	rte_ring_free(w->steer_ring);
	rte_mempool_free(w->pool);
	rte_free(w);
}

static void txq_flush(struct dp_worker *w, uint16_t port_id, struct dp_txq *q)
{
	uint64_t bytes = 0;

	/* Lengths are read before the burst: a sent mbuf belongs to the driver. */
	for (uint16_t i = 0; i < q->n; i++)
		bytes += q->pkts[i]->pkt_len;
	uint16_t sent = rte_eth_tx_burst(port_id, (uint16_t)w->id, q->pkts, q->n);
	for (uint16_t i = sent; i < q->n; i++) {
		bytes -= q->pkts[i]->pkt_len;
		dp_drop(&w->stats, DP_DROP_TX_FULL);
		rte_pktmbuf_free(q->pkts[i]);
	}
	dp_count(&w->stats, DP_C_TX_PACKETS, sent);
	dp_count(&w->stats, DP_C_TX_BYTES, bytes);
	q->n = 0;
}

void dp_tx(struct dp_worker *w, uint16_t port_id, struct rte_mbuf *m)
{
	struct dp_txq *q = &w->txq[w->dp->slot_of_port[port_id]];

	q->pkts[q->n++] = m;
	if (q->n == DP_BURST)
		txq_flush(w, port_id, q);
}

void dp_tx_flush(struct dp_worker *w)
{
	for (unsigned i = 0; i < w->dp->n_ports; i++)
		if (w->txq[i].n)
			txq_flush(w, w->dp->ports[i].port_id, &w->txq[i]);
}

/* Which worker owns this frame's flow; w->id for frames without flow state. */
static unsigned flow_owner(const struct dp_worker *w, const struct rte_mbuf *m)
{
	struct rte_ipv4_tuple t;
	uint16_t ident;

	switch (net_flow_classify(m, &t, &ident)) {
	case NET_FLOW_L4:
		if (m->ol_flags & RTE_MBUF_F_RX_RSS_HASH &&
		    w->dp->ports[w->dp->slot_of_port[m->port]].hw_steering)
			return port_flow_owner(m->hash.rss, w->dp->n_workers);
		return port_flow_owner(port_flow_hash(&t), w->dp->n_workers);
	case NET_FLOW_ECHO_REPLY:
		return ident % w->dp->n_workers;
	case NET_FLOW_LOCAL:
		break;
	}
	return w->id;
}

/* Hands frames of flows owned elsewhere to their owners; processes the rest. */
static void rx_steer(struct dp_worker *w, struct rte_mbuf **pkts, uint16_t n, uint64_t now)
{
	struct rte_mbuf *out[DP_MAX_WORKERS][DP_BURST];
	uint16_t n_out[DP_MAX_WORKERS] = {0};
	unsigned nw = w->dp->n_workers;

	for (uint16_t i = 0; i < n; i++) {
		unsigned o = nw > 1 ? flow_owner(w, pkts[i]) : w->id;
		if (o == w->id)
			net_input(&w->net, pkts[i], now);
		else
			out[o][n_out[o]++] = pkts[i];
	}
	for (unsigned o = 0; o < nw; o++) {
		if (!n_out[o])
			continue;
		unsigned done = rte_ring_mp_enqueue_burst(w->dp->workers[o]->steer_ring,
							  (void **)out[o], n_out[o], NULL);
		dp_count(&w->stats, DP_C_STEERED_OUT, done);
		for (unsigned i = done; i < n_out[o]; i++) {
			dp_drop(&w->stats, DP_DROP_STEER_RING_FULL);
			rte_pktmbuf_free(out[o][i]);
		}
	}
}

static unsigned poll_ports(struct dp_worker *w, uint64_t now)
{
	struct rte_mbuf *pkts[DP_BURST];
	unsigned total = 0;

	for (unsigned p = 0; p < w->dp->n_ports; p++) {
		uint16_t n = rte_eth_rx_burst(w->dp->ports[p].port_id, (uint16_t)w->id, pkts,
					      DP_BURST);
		if (!n)
			continue;
		uint64_t bytes = 0;
		for (uint16_t i = 0; i < n; i++)
			bytes += pkts[i]->pkt_len;
		dp_count(&w->stats, DP_C_RX_PACKETS, n);
		dp_count(&w->stats, DP_C_RX_BYTES, bytes);
		rx_steer(w, pkts, n, now);
		total += n;
	}
	return total;
}

static unsigned poll_rings(struct dp_worker *w, uint64_t now)
{
	struct rte_mbuf *pkts[DP_BURST];
	struct dp_learn l[16];
	unsigned n, k;

	n = rte_ring_sc_dequeue_burst(w->steer_ring, (void **)pkts, DP_BURST, NULL);
	dp_count(&w->stats, DP_C_STEERED_IN, n);
	for (unsigned i = 0; i < n; i++)
		net_input(&w->net, pkts[i], now);

	k = rte_ring_sc_dequeue_burst_elem(w->learn_ring, l, sizeof(l[0]), RTE_DIM(l), NULL);
	for (unsigned i = 0; i < k; i++)
		net_arp_learn(&w->net, l[i].port_id, l[i].ip, &l[i].mac, now);
	return n + k;
}

static void ping_finish(struct dp_worker *w, int result)
{
	struct dp_cmd *cmd = w->ping_cmd;

	cmd->u.ping.sent = w->net.ping.sent;
	cmd->u.ping.received = w->net.ping.received;
	memcpy(cmd->u.ping.rtt_us, w->net.ping.rtt_us, sizeof(cmd->u.ping.rtt_us));
	w->net.ping.active = false;
	w->ping_cmd = NULL;
	dp_cmd_finish(cmd, result);
}

/* Paces the ping in progress: one request per interval, then wait for stragglers. */
static void ping_step(struct dp_worker *w, uint64_t now)
{
	struct dp_cmd *cmd = w->ping_cmd;
	uint64_t ms = w->dp->hz / 1000;

	if (w->net.ping.sent < cmd->u.ping.count && now >= w->ping_next_tsc) {
		int rc = net_ping_send(&w->net, now);
		if (rc != 0 && rc != -ENOBUFS) {
			ping_finish(w, rc);
			return;
		}
		w->ping_next_tsc = now + PING_INTERVAL_MS * ms;
		w->ping_deadline_tsc = now + PING_WAIT_MS * ms;
	}
	if (w->net.ping.received >= cmd->u.ping.count ||
	    (w->net.ping.sent >= cmd->u.ping.count && now >= w->ping_deadline_tsc))
		ping_finish(w, 0);
}

static void cmd_start(struct dp_worker *w, struct dp_cmd *cmd, uint64_t now)
{
	switch (cmd->type) {
	case DP_CMD_PING: {
		if (w->ping_cmd) {
			dp_cmd_finish(cmd, -EBUSY);
			return;
		}
		/* ident % n_workers == w->id, so echo replies are steered back here */
		unsigned slots = 65536u / w->dp->n_workers;
		uint16_t ident = (uint16_t)(w->id + w->dp->n_workers * (w->ping_seq_base++ % slots));
		int rc = net_ping_start(&w->net, cmd->u.ping.dst, ident);
		if (rc != 0) {
			dp_cmd_finish(cmd, rc);
			return;
		}
		w->ping_cmd = cmd;
		w->ping_next_tsc = now;
		ping_step(w, now);
		return;
	}
	case DP_CMD_TCP_ECHO:
		dp_echo_start(w, cmd, now);
		return;
	case DP_CMD_ARP_DUMP:
		cmd->u.arp.n = net_arp_dump(&w->net, cmd->u.arp.e, DP_CMD_ARP_MAX, now);
		dp_cmd_finish(cmd, 0);
		return;
	case DP_CMD_SVC:
		if (w->dp->svc_cmd == NULL) {
			dp_cmd_finish(cmd, -ENOTSUP);
			return;
		}
		w->dp->svc_cmd(w, cmd);
		return;
	}
	dp_cmd_finish(cmd, -EINVAL);
}

static void idle_nap(unsigned us)
{
	struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (long)(us % 1000000) * 1000};
	nanosleep(&ts, NULL);
}

int dp_worker_main(void *arg)
{
	struct dp_worker *w = arg;
	struct dp *dp = w->dp;
	uint64_t periodic_tsc = dp->hz / 1000 * PERIODIC_MS;
	uint64_t now = rte_rdtsc();
	uint64_t last_drain = now, last_periodic = now, last_iter = now;
	unsigned idle = 0, work = 0;

	if (w->id == 0)
		net_announce(&w->net, now);
	dp_snap_online(w);

	while (!__atomic_load_n(&dp->quit, __ATOMIC_RELAXED)) {
		now = rte_rdtsc();
		/* The iteration that just ended: busy if it received or sent anything. */
		dp_count(&w->stats, DP_C_LOOP_CYCLES, now - last_iter);
		if (work)
			dp_count(&w->stats, DP_C_BUSY_CYCLES, now - last_iter);
		last_iter = now;
		uint64_t tx_before = w->stats.c[DP_C_TX_PACKETS];
		/* Packets handed over by other workers arrived earlier than what our own
		 * queue holds now: take them first, so a flow is reordered less. */
		work = poll_rings(w, now);
		work += poll_ports(w, now);

		struct dp_cmd *cmd;
		if (rte_ring_sc_dequeue(w->cmd_ring, (void **)&cmd) == 0)
			cmd_start(w, cmd, now);
		if (w->ping_cmd)
			ping_step(w, now);
		timer_wheel_run(&w->timers, now);
		if (w->echo_cmd)
			dp_echo_step(w, now);
		if (w->app_poll)
			w->app_poll(w, now);
		if (dp->svc_poll)
			work += dp->svc_poll(w, now);

		if (now - last_periodic >= periodic_tsc) {
			net_periodic(&w->net, now);
			last_periodic = now;
		}
		if (work == 0 || now - last_drain >= dp->tx_drain_tsc) {
			dp_tx_flush(w);
			last_drain = now;
		}
		work += w->stats.c[DP_C_TX_PACKETS] != tx_before; /* a flush is work too */
		if (work) {
			idle = 0;
		} else if (dp->idle_sleep_us && ++idle > IDLE_LOOPS_BEFORE_SLEEP) {
			idle_nap(dp->idle_sleep_us);
		} else {
			rte_pause();
		}
		/* between iterations no session callback runs: old config snapshots may go */
		dp_snap_quiescent(w);
	}
	dp_snap_offline(w);
	dp_tx_flush(w);
	return 0;
}

int dp_cmd_submit(struct dp *dp, unsigned wid, struct dp_cmd *cmd)
{
	__atomic_store_n(&cmd->state, DP_CMD_ST_PENDING, __ATOMIC_RELAXED);
	if (wid >= dp->n_workers || rte_ring_mp_enqueue(dp->workers[wid]->cmd_ring, cmd) != 0)
		return -ENOBUFS;
	return 0;
}

int dp_cmd_wait(struct dp_cmd *cmd, unsigned timeout_ms)
{
	int expect = DP_CMD_ST_PENDING;

	for (unsigned t = 0; t < timeout_ms; t++) {
		if (__atomic_load_n(&cmd->state, __ATOMIC_ACQUIRE) == DP_CMD_ST_DONE)
			return 0;
		rte_delay_us_sleep(1000);
	}
	if (__atomic_compare_exchange_n(&cmd->state, &expect, DP_CMD_ST_ABANDONED, false,
					__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return -ETIMEDOUT; /* the worker frees it when it gets to it */
	return 0;                  /* it finished just now */
}
