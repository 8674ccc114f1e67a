/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The userspace TCP of one worker (RFC 9293): a connection table, listeners,
 * the state machine, retransmission and congestion control, and the
 * application API of DESIGN.md §5. A tcp_stack consumes and produces IPv4
 * packets (mbufs starting at the IPv4 header); it does not know about
 * Ethernet, so the same stack runs under the net layer and in the test
 * harness's simulated link. Everything runs on the owning worker: no locks.
 */
#ifndef MX_TCP_H
#define MX_TCP_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_mbuf.h>

#include "dataplane/core/counters.h"
#include "dataplane/core/timer.h"

struct tcp_stack;
struct tcp_conn; /* opaque to applications */

/* Why a connection ended, for closed(). */
enum tcp_close_reason {
	TCP_CLOSE_NORMAL,     /* both FINs exchanged and acknowledged */
	TCP_CLOSE_RESET,      /* the peer sent a valid RST */
	TCP_CLOSE_TIMEOUT,    /* retransmissions or keepalives gave up */
	TCP_CLOSE_ABORTED,    /* tcp_abort() or the stack ran out of resources */
	TCP_CLOSE_REFUSED,    /* active open answered by RST */
	TCP_CLOSE_UNREACHABLE /* active open: ICMP unreachable or no route */
};

/* Callbacks, run on the owning worker. Each may call the tcp_* API on c. */
struct tcp_ops {
	/* A passive open completed; arg is the listener's. Set the conn's own arg here. */
	void (*accepted)(struct tcp_conn *c, void *listener_arg);
	/* An active open completed (err 0) or failed (-ECONNREFUSED, -ETIMEDOUT, ...). */
	void (*connected)(struct tcp_conn *c, int err);
	/* In-order payload; the callee owns data (a chain). Call tcp_consumed() as it is used. */
	void (*received)(struct tcp_conn *c, struct rte_mbuf *data);
	/* The peer sent FIN: no more data will come. */
	void (*peer_closed)(struct tcp_conn *c);
	/* Send space opened again after tcp_send() returned -EAGAIN. */
	void (*writable)(struct tcp_conn *c);
	/* The connection is gone; c is invalid after this returns. */
	void (*closed)(struct tcp_conn *c, enum tcp_close_reason reason);
};

/* Congestion control algorithm (one file per algorithm, behind struct tcp_cc_ops). */
enum tcp_cc_algo { TCP_CC_NEWRENO, TCP_CC_CUBIC };

struct tcp_listen_opts {
	const struct tcp_ops *ops;
	void *arg;            /* passed to accepted() */
	unsigned backlog;     /* established connections not yet accepted: unused, accept is
			       * immediate; kept for the config */
	unsigned syn_backlog; /* half-open connections before SYN cookies take over */
	enum tcp_cc_algo cc;
	bool nagle;           /* off by default */
};

/* Tunables of a stack; tcp_params_default() fills sane values. */
struct tcp_params {
	unsigned mss_default;     /* when the peer sends no MSS option: 536 (RFC 9293 §3.7.1) */
	unsigned rto_min_ms;      /* 200 */
	unsigned rto_max_ms;      /* 60000 */
	unsigned rto_initial_ms;  /* 1000 (RFC 6298 §2.1) */
	unsigned max_retries;     /* data retransmissions before giving up: 15 */
	unsigned syn_retries;     /* 6 */
	unsigned delack_ms;       /* 40 */
	unsigned keepalive_idle_s, keepalive_intvl_s, keepalive_probes; /* 0 idle: off */
	unsigned time_wait_ms;    /* 2*MSL: 60000 */
	unsigned time_wait_max;   /* TIME_WAIT entries before the oldest is recycled */
	unsigned rcv_buf;         /* receive window ceiling, bytes: 256 KiB */
	unsigned snd_buf;         /* bytes queued by tcp_send() before -EAGAIN: 256 KiB */
	unsigned max_conns;       /* connection table size */
	unsigned ooo_max_segs;    /* out-of-order segments held per connection: 64 */
	unsigned mbufs_per_conn;  /* cap on mbufs one connection may hold */
	uint8_t wscale;           /* our window scale: 7 */
	unsigned syn_backlog;     /* default for listeners that give 0: 1024 */
	enum tcp_cc_algo cc;      /* for active opens and the test services: NewReno */
	/*
	 * Every port computes IPv4 and TCP checksums on transmit: segments leave
	 * with ol_flags TX_IPV4|TX_IP_CKSUM|TX_TCP_CKSUM, l2_len (Ethernet, which
	 * the net layer prepends), l3_len and l4_len set, the IPv4 checksum 0 and
	 * the pseudo-header sum in the TCP checksum field. Off: software sums.
	 */
	bool tx_csum_offload;
};
void tcp_params_default(struct tcp_params *p);

/*
 * Sends an IPv4 packet (m starts at the IPv4 header, checksums done, or left
 * to the NIC under tx_csum_offload). Takes ownership.
 */
typedef void (*tcp_ip_output_fn)(void *arg, struct rte_mbuf *m, uint32_t dst);

/*
 * Creates a stack. Timers go on WHEEL (the worker's); packets come from POOL;
 * LOCAL_MTU bounds the MSS we announce; SECRET (32 bytes) keys ISNs
 * (RFC 6528) and SYN cookies. Returns NULL on allocation failure.
 */
struct tcp_stack *tcp_stack_new(const struct tcp_params *p, struct timer_wheel *wheel,
				struct rte_mempool *pool, struct dp_stats *stats,
				tcp_ip_output_fn out, void *out_arg, uint16_t local_mtu,
				const uint8_t secret[32]);
/* Aborts every connection (closed() with ABORTED) and frees the stack. */
void tcp_stack_free(struct tcp_stack *s);

/*
 * Tells the stack the worker clock (TSC). Optional: a tcp_* call the
 * application makes outside a TCP callback (tcp_connect(), or tcp_send() from
 * its own timer or after an asynchronous completion) reads the clock itself,
 * so timestamps, RTT samples and the timers it arms start from now; callbacks
 * run with the clock of the event that called them.
 */
void tcp_stack_clock(struct tcp_stack *s, uint64_t now);

/* Reads the worker clock, in the units of the timer wheel's hz. */
typedef uint64_t (*tcp_clock_fn)(void *arg);
/*
 * Where API calls made outside a TCP callback read the clock: rte_rdtsc()
 * unless set here (a test's virtual clock). READ must agree with the clock
 * given to tcp_input() and the timer wheel.
 */
void tcp_stack_set_clock(struct tcp_stack *s, tcp_clock_fn read, void *arg);

/*
 * Connections in S's table now (TIME_WAIT included), and those in TIME_WAIT:
 * gauges for telemetry. Any thread may read them; the worker writes them.
 */
unsigned tcp_stack_conns(const struct tcp_stack *s);
unsigned tcp_stack_time_wait(const struct tcp_stack *s);

/* Listens on ADDR:PORT (network order; addr 0 = any of ours). Returns 0 or -EADDRINUSE/-ENOMEM. */
int tcp_listen(struct tcp_stack *s, uint32_t addr, uint16_t port, const struct tcp_listen_opts *o);

/*
 * Processes one received segment. m starts at a validated IPv4 header
 * (net checked version, lengths and header checksum); the TCP checksum is
 * checked here, unless m->ol_flags says the NIC did: L4_CKSUM_GOOD is
 * trusted, L4_CKSUM_BAD is dropped (as malformed) whatever the sum says.
 * Takes ownership. NOW is the worker clock (TSC).
 */
void tcp_input(struct tcp_stack *s, struct rte_mbuf *m, uint64_t now);

/* Feeds an ICMP error about one of our segments (inner IPv4 header + 8 bytes). */
void tcp_icmp_error(struct tcp_stack *s, uint8_t type, uint8_t code, const void *inner,
		    unsigned len, uint64_t now);

/*
 * Opens a connection from LADDR to DADDR:DPORT (network order). The local
 * port is chosen by PICK_PORT when given (for RSS-aware active opens), else
 * from the ephemeral range. Returns 0 with *out set (connected() follows),
 * or -EADDRNOTAVAIL / -ENOMEM.
 */
typedef bool (*tcp_port_ok_fn)(void *arg, uint32_t laddr, uint16_t lport, uint32_t raddr,
			       uint16_t rport);
int tcp_connect(struct tcp_stack *s, uint32_t laddr, uint32_t daddr, uint16_t dport,
		const struct tcp_ops *ops, void *arg, tcp_port_ok_fn port_ok, void *port_ok_arg,
		struct tcp_conn **out);

/*
 * Queues DATA (a chain) for sending. Returns 0 and takes ownership, or
 * -EAGAIN when the send buffer is full (data stays the caller's; writable()
 * will follow), or -ENOTCONN / -EPIPE after shutdown or close.
 */
int tcp_send(struct tcp_conn *c, struct rte_mbuf *data);
/* Bytes tcp_send() would accept now. */
unsigned tcp_send_space(const struct tcp_conn *c);
/* Sends what is queued now rather than waiting (ends a pipelined reply group). */
void tcp_push(struct tcp_conn *c);
/* The application has consumed N bytes of received data: reopens the window. */
void tcp_consumed(struct tcp_conn *c, unsigned n);
/* Sends FIN after queued data (half-close); receiving continues. */
void tcp_shutdown(struct tcp_conn *c);
/* Shutdown, and the application will not read any more; closed() follows. */
void tcp_close(struct tcp_conn *c);
/* Sends RST and frees at once; closed() with ABORTED follows before return. */
void tcp_abort(struct tcp_conn *c);

void tcp_set_arg(struct tcp_conn *c, void *arg);
void *tcp_arg(const struct tcp_conn *c);
/* Addresses in network order. */
void tcp_endpoints(const struct tcp_conn *c, uint32_t *laddr, uint16_t *lport, uint32_t *raddr,
		   uint16_t *rport);

#endif
