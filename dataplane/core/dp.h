/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The dataplane runtime: the workers (one per worker lcore, shared-nothing,
 * each owning one RX/TX queue pair per port) and the immutable description of
 * ports and routes they all read. Anything that must cross cores goes through
 * a ring: packets of a flow to the flow's owner, ARP learnings to every
 * worker, and commands from the main lcore.
 */
#ifndef MX_CORE_DP_H
#define MX_CORE_DP_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_common.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "control/config/config.h"
#include "dataplane/core/counters.h"
#include "dataplane/core/timer.h"
#include "dataplane/net/net.h"
#include "dataplane/port/port.h"
#include "dataplane/core/svc.h"
#include "dataplane/tcp/tcp.h"

#define DP_MAX_WORKERS CFG_MAX_WORKERS
#define DP_MAX_PORTS CFG_MAX_PORTS
#define DP_BURST 32

/* Frames waiting for the next tx burst on one port (a worker's own TX queue). */
struct dp_txq {
	uint16_t n;
	struct rte_mbuf *pkts[DP_BURST];
};

/* What the main lcore (telemetry) asks of a worker. */
enum dp_cmd_type {
	DP_CMD_PING,     /* send echo requests, wait for replies */
	DP_CMD_ARP_DUMP, /* copy the worker's ARP table */
	DP_CMD_TCP_ECHO, /* active open to an echo server: send, read back, compare */
	DP_CMD_SVC,	 /* a page of the mail service's sessions or queue: dp->svc_cmd */
};

#define DP_CMD_ARP_MAX 256

/*
 * A command in flight. The submitter allocates it; state decides who frees it:
 * the worker moves PENDING→DONE, a submitter that gives up moves
 * PENDING→ABANDONED, and whoever loses that race frees it.
 */
struct dp_cmd {
	enum dp_cmd_type type;
	int state; /* DP_CMD_ST_* (atomic) */
	int result; /* 0 or -errno, valid when DONE */
	union {
		struct {
			uint32_t dst; /* network order */
			uint16_t count;
			uint16_t sent, received;
			uint32_t rtt_us[NET_PING_MAX];
		} ping;
		struct {
			unsigned n;
			struct net_arp_entry e[DP_CMD_ARP_MAX];
		} arp;
		struct {
			uint32_t dst;  /* network order */
			uint16_t port; /* host order */
			uint64_t bytes;
			bool connected;
			uint64_t sent, received, mismatches, elapsed_us;
			int error; /* -errno */
		} echo;
	} u;
	/* DP_CMD_SVC only: one page, allocated with the command (dp_svc_cmd_new()) */
	struct dp_svc_page svc[];
};
enum { DP_CMD_ST_PENDING, DP_CMD_ST_DONE, DP_CMD_ST_ABANDONED };

struct dp;
struct dp_snap;
struct dp_snaps;
struct rte_rcu_qsbr;

struct dp_worker {
	unsigned id; /* 0..n_workers-1; also the RX/TX queue index on every port */
	unsigned lcore_id;
	struct dp *dp;
	struct rte_mempool *pool;
	struct rte_ring *steer_ring; /* MP/SC: mbufs of flows this worker owns */
	struct rte_ring *learn_ring; /* MP/SC: struct dp_learn, ARP news from other workers */
	struct rte_ring *cmd_ring;   /* MP/SC: struct dp_cmd * from the main lcore */
	struct dp_cmd *ping_cmd;     /* the ping in progress, if any */
	uint64_t ping_next_tsc;
	uint64_t ping_deadline_tsc;
	unsigned ping_seq_base;
	struct dp_cmd *echo_cmd;         /* the echo test in progress, if any */
	struct tcp_conn *echo_conn;
	uint64_t echo_start_tsc, echo_deadline_tsc;
	struct dp_txq txq[DP_MAX_PORTS]; /* indexed by ethdev port id slot, see dp_port_slot() */
	struct net_ctx net;
	struct tcp_stack *tcp;
	struct timer_wheel timers; /* TCP and SMTP timers of this worker, 1 ms ticks */
	struct smtpd *smtpd;       /* SMTP listeners and sessions (dataplane/smtpd), or NULL */
	/* An application run on this worker (mxgate-gen's load client), called every
	 * loop iteration with the clock; NULL for none. Set before the worker starts. */
	void (*app_poll)(struct dp_worker *w, uint64_t now);
	void *app;
	struct dp_stats stats;
} __rte_cache_aligned;

/* An ARP learning passed between workers: 12 bytes, a ring element. */
struct dp_learn {
	uint32_t ip;
	uint16_t port_id;
	struct rte_ether_addr mac;
};

struct dp {
	const struct cfg *cfg;
	unsigned n_workers;
	unsigned n_ports;
	struct port_info ports[DP_MAX_PORTS];
	struct net_iface ifaces[DP_MAX_PORTS];
	struct net_route routes[NET_MAX_ROUTES];
	unsigned n_routes;
	uint16_t slot_of_port[RTE_MAX_ETHPORTS]; /* ethdev port id → index in ports[] */
	struct dp_worker *workers[DP_MAX_WORKERS];
	uint64_t hz;
	uint64_t start_tsc;
	uint64_t tx_drain_tsc;
	unsigned idle_sleep_us;
	int quit; /* atomic: workers leave their loop when set */
	/* The mail service on each worker's TCP stack, started after the stack and freed after
	 * it (mxgate-dp: smtpd_start/smtpd_stop); NULL in programs without one. */
	int (*svc_start)(struct dp_worker *w);
	void (*svc_stop)(struct dp_worker *w);
	/* Called when W's loop has stopped, before its TCP stack is freed (the relay's
	 * connections go first); NULL: nothing to do. */
	void (*svc_drain)(struct dp_worker *w);
	/* Called every loop iteration with the TSC (spool and relay progress); returns work done. */
	unsigned (*svc_poll)(struct dp_worker *w, uint64_t now);
	/* Sessions the mail service has open on W now (a gauge for telemetry); NULL: none. */
	unsigned (*svc_sessions)(const struct dp_worker *w);
	/* Runs a DP_CMD_SVC command on W (its page says what) and, now or later on W,
	 * finishes it with dp_cmd_finish(); NULL: such commands fail with -ENOTSUP. */
	void (*svc_cmd)(struct dp_worker *w, struct dp_cmd *cmd);
	/* Per-client-address limits every worker's mail service shares (policy/clients.h);
	 * made before the workers start, freed after they stop. NULL: no limits. */
	struct client_table *clients;
	/* Config snapshots (snap.h): the one new sessions take, the workers' quiescent-state
	 * variable, the retired ones; all NULL in programs without reloads (mxgate-gen). */
	struct dp_snap *snap;
	struct rte_rcu_qsbr *qsv;
	struct dp_snaps *snaps;
	/* The mail service's view of CFG for a new snapshot (smtpd: listener settings per
	 * worker), or NULL with a reason in ERR and errno E2BIG when only a restart can serve
	 * CFG; freed by svc_snap_free. NULL hooks: snapshots carry the config alone. */
	void *(*svc_snap_new)(struct dp *dp, const struct cfg *cfg, char *err, size_t errlen);
	void (*svc_snap_free)(struct dp *dp, void *view);
	/* Applies the command line's overrides to a config loaded for a reload; 0 or -1. */
	int (*cfg_fixup)(struct cfg *cfg);
};

/*
 * Creates worker W's mempool, rings and network context on its lcore's
 * socket. Returns the worker or NULL with a reason in err.
 */
struct dp_worker *dp_worker_new(struct dp *dp, unsigned id, unsigned lcore_id, char *err,
				size_t errlen);
/* Initialises the network context once ports are up (needs their MACs). Returns 0 or -errno. */
int dp_worker_net_init(struct dp_worker *w);
/* Frees what dp_worker_new() and dp_worker_net_init() made; the worker must have stopped. */
void dp_worker_free(struct dp_worker *w);

/*
 * Start-up shared by mxgate-dp and mxgate-gen (start.c), after rte_eal_init():
 * fills DP from CFG (keeping the svc_* hooks and clients the caller set), makes
 * one worker per worker lcore, sets up every port with a queue pair per
 * worker, describes ports and routes to the network layer and initialises
 * each worker's network context. Nothing runs yet. Returns 0, or -1 with the
 * reason in ERR; dp_teardown() undoes a partial set-up too.
 */
int dp_setup(struct dp *dp, const struct cfg *cfg, char *err, size_t errlen);
/* Launches every worker's poll loop on its lcore. */
void dp_launch(struct dp *dp);
/*
 * Stops the workers (sets dp->quit and waits), turns telemetry away, closes
 * the ports and frees the workers. Safe after a failed or partial dp_setup().
 */
void dp_teardown(struct dp *dp);

/* The worker poll loop, for rte_eal_remote_launch(); returns 0 when dp->quit is set. */
int dp_worker_main(void *arg);

/*
 * N octets at P copied into a chain of mbufs from POOL (what an application
 * hands tcp_send()); NULL when the pool ran dry (nothing is kept then).
 */
struct rte_mbuf *dp_mbuf_chain(struct rte_mempool *pool, const void *p, size_t n);

/* Queues a frame on this worker's TX queue of PORT; takes ownership. */
void dp_tx(struct dp_worker *w, uint16_t port_id, struct rte_mbuf *m);
/* Sends every queued frame now. */
void dp_tx_flush(struct dp_worker *w);

/*
 * Hands CMD to worker W. Returns 0 (wait with dp_cmd_wait()), or -ENOBUFS
 * when the worker's command ring is full (cmd is still the caller's).
 */
int dp_cmd_submit(struct dp *dp, unsigned w, struct dp_cmd *cmd);
/*
 * Waits up to timeout_ms for a submitted command. Returns 0 with the results
 * in cmd (the caller frees it with rte_free), or -ETIMEDOUT, after which the
 * command belongs to the worker (do not touch it). Touches only cmd, never
 * the dp, so it may run while the dataplane shuts down.
 */
int dp_cmd_wait(struct dp_cmd *cmd, unsigned timeout_ms);

/* Completes CMD (result 0 or -errno); frees it if its submitter gave up. */
void dp_cmd_finish(struct dp_cmd *cmd, int result);

/* The echo-test client (echo_client.c): starts CMD on worker W; checks its deadline. */
void dp_echo_start(struct dp_worker *w, struct dp_cmd *cmd, uint64_t now);
void dp_echo_step(struct dp_worker *w, uint64_t now);

/* The dataplane's log level (an enum cfg_log_level; reload.c sets it at run time). */
extern int dp_log_level;

/* True when lines of LEVEL are to be written. Any thread. */
static inline bool dp_log_on(enum cfg_log_level level)
{
	return (int)level <= __atomic_load_n(&dp_log_level, __ATOMIC_RELAXED);
}

/* Registers the /mxgate/... telemetry commands over dp. */
int dp_telemetry_register(struct dp *dp);
/* Registers /mxgate/sessions and /mxgate/queue (tel_svc.c). */
int dp_telemetry_register_svc(void);
/* For tel_svc.c: the workers there are (0 while shutting down), and running CMD on worker W
 * as telemetry's own commands do (freed on a submit error; the worker's after -ETIMEDOUT). */
unsigned dp_telemetry_workers(void);
int dp_telemetry_run(unsigned w, struct dp_cmd *cmd, unsigned timeout_ms);
/* Makes telemetry commands answer "shutting down" from now on (before ports close). */
void dp_telemetry_shutdown(void);

#endif
