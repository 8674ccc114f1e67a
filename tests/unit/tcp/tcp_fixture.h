/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What the crafted-segment TCP tests share: one stack on a virtual TSC clock
 * (1 GHz, so the clock reads in ns) with its own timer wheel, an output
 * callback that captures every packet, an application that records every
 * callback, builders of crafted IPv4+TCP segments, and a scripted remote
 * peer that speaks through them. Only 198.51.100.0/24 and 203.0.113.0/24.
 * FX_TRACE=1 in the environment prints every segment in and out.
 */
#ifndef MX_TEST_TCP_FIXTURE_H
#define MX_TEST_TCP_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <criterion/criterion.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_tcp.h>

#include "dataplane/core/counters.h"
#include "dataplane/core/timer.h"
#include "dataplane/tcp/tcp.h"
#include "dataplane/tcp/tcp_priv.h"
#include "harness.h"

#define FX_HZ 1000000000ull /* virtual TSC: the clock is in ns */
#define FX_MS 1000000ull
#define FX_T0 (1000 * FX_HZ) /* a clock of 0 looks like "never" to some code */

/* RTE_IPV4() shifts a signed int into the sign bit (UBSan objects): build it unsigned. */
#define IP4(a, b, c, d)                                                                            \
	rte_cpu_to_be_32(((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) |    \
			 (uint32_t)(d))
#define OUR_IP IP4(198, 51, 100, 2)
#define PEER_IP IP4(203, 0, 113, 9)
#define OUR_PORT 25        /* the fixture's listener, host order */
#define PEER_PORT 40000    /* the scripted peer's default port, host order */
#define FX_MTU 1500
#define FX_OUR_MSS 1460    /* what the stack announces: MTU - 40 */
#define FX_OUT_MAX 4096    /* packets captured and not yet taken */
#define FX_CONNS 32        /* connections the application can follow */
#define FX_RX_MAX (512 * 1024)

#define F_FIN RTE_TCP_FIN_FLAG
#define F_SYN RTE_TCP_SYN_FLAG
#define F_RST RTE_TCP_RST_FLAG
#define F_PSH RTE_TCP_PSH_FLAG
#define F_ACK RTE_TCP_ACK_FLAG
#define F_URG RTE_TCP_URG_FLAG

/* ---- the stack, the clock and the counters ---- */

extern struct tcp_stack *fx_stack;
extern struct timer_wheel fx_wheel;
extern struct dp_stats fx_stats;
extern struct tcp_params fx_params; /* what the stack was (or will be) made with */
extern uint16_t fx_mtu;             /* its local MTU: FX_MTU unless a test changes it */
extern uint64_t fx_now;
extern unsigned fx_clock_reads; /* the stack read fx_now itself: API calls outside callbacks */

/* .init: tcp_params_default(), a stack with MTU 1500, a listener on OUR_IP:25. */
void fx_setup(void);
/* .fini: frees what a test that stopped early left behind. */
void fx_teardown(void);
/* Frees the stack and everything captured, then asserts that no mbuf leaked. */
void fx_expect_no_leak(void);
/* Makes a new stack from fx_params and fx_mtu (edit them first) with the same listener. */
void fx_restart(void);
/* Listens on OUR_IP:PORT with SYN_BACKLOG (0: the stack's default). */
void fx_listen(uint16_t port, unsigned syn_backlog);

/*
 * A test of SUITE whose last assertion is that no mbuf leaked: Criterion
 * ignores assertions made in .fini, so the check runs in the test itself.
 */
#define TCP_TEST(suite, name)                                                                      \
	static void suite##_##name##_body(void);                                                   \
	Test(suite, name)                                                                          \
	{                                                                                          \
		suite##_##name##_body();                                                           \
		fx_expect_no_leak();                                                               \
	}                                                                                          \
	static void suite##_##name##_body(void)

/* Moves the clock on and fires what is due (the worker's poll loop in small). */
void fx_advance_ns(uint64_t ns);
static inline void fx_advance_ms(uint64_t ms)
{
	fx_advance_ns(ms * FX_MS);
}
/*
 * Moves the clock on without running the timer wheel: the worker was busy
 * elsewhere, and the next thing the stack hears of is an application call.
 */
void fx_skip_ms(uint64_t ms);
/*
 * Advances 1 ms at a time until the stack sends something or MAX_MS passed.
 * Returns the ms waited (MAX_MS + 1 when nothing came).
 */
uint64_t fx_wait_output_ms(uint64_t max_ms);

static inline uint64_t fx_count(enum dp_counter c)
{
	return fx_stats.c[c];
}
static inline uint64_t fx_drop(enum dp_drop d)
{
	return fx_stats.drop[d];
}
uint64_t fx_drops_total(void);

/* ---- the application ---- */

/* What the application saw of one connection. */
struct fx_conn {
	struct tcp_conn *c; /* NULL once closed() ran */
	bool accepted, connected;
	int connect_err;
	unsigned peer_closed, writable, closed;
	enum tcp_close_reason reason;
	uint8_t rx[FX_RX_MAX];
	size_t rx_len;
	unsigned rx_calls;
	bool manual_consume; /* else tcp_consumed() right from received() */
	uint64_t tx_off;     /* stream offset of the next byte fx_send() queues */
};
extern struct fx_conn fx_conns[FX_CONNS];
extern unsigned fx_n_conns;
/* Called from accepted() when set: the application's first move (an SMTP greeting). */
extern void (*fx_on_accept)(struct fx_conn *fc);
extern const struct tcp_ops fx_ops;

/* The byte at stream offset OFF of what fx_send() sends. */
static inline uint8_t fx_pattern(uint64_t off)
{
	return (uint8_t)(off * 7 + (off >> 8) + 1);
}
/* Queues LEN pattern bytes with tcp_send(). Returns tcp_send()'s result. */
int fx_send(struct fx_conn *fc, size_t len);
/* Whether RX holds LEN pattern bytes starting at stream offset OFF. */
bool fx_is_pattern(const uint8_t *p, size_t len, uint64_t off);

/* ---- crafted segments ---- */

/* A segment the test builds: all-zero fields take the peer/ours defaults below. */
struct fx_seg {
	uint32_t saddr, daddr; /* network order; 0: PEER_IP / OUR_IP */
	uint16_t sport, dport; /* host order; 0: PEER_PORT / OUR_PORT */
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t win;
	/* options, in this order on the wire */
	uint16_t mss; /* 0: none */
	bool sack_perm;
	bool has_ts;
	uint32_t tsval, tsecr;
	bool has_ws;
	uint8_t ws;
	unsigned n_sack;
	struct tcp_range sack[4];
	const uint8_t *raw_opts; /* when set, these bytes are the options (padded with EOL) */
	unsigned raw_opts_len;
	const void *data;
	unsigned len;
	bool bad_cksum; /* the TCP checksum is off by one bit */
	unsigned pad;   /* bytes after the datagram, as Ethernet pads a short frame */
	/*
	 * When set, the packet arrives as a chain of mbufs (a NIC's scatter
	 * list): the IPv4 and TCP headers alone, then pieces of these sizes in
	 * turn until the payload and padding are placed.
	 */
	const uint16_t *pieces;
	unsigned n_pieces;
};
/* Builds the IPv4 packet of G into an mbuf (a chain when G says) from the harness pool. */
struct rte_mbuf *fx_build(const struct fx_seg *g);
/* Builds G and hands it to tcp_input() at fx_now. */
void fx_input(const struct fx_seg *g);

/* ---- captured output ---- */

/* One packet the stack sent, parsed. */
struct fx_pkt {
	uint32_t saddr, daddr, dst; /* network order; dst: what the output callback was given */
	uint16_t sport, dport;      /* host order */
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t win;
	uint8_t ttl;
	bool df;
	unsigned opt_len;
	uint8_t opts[40];
	bool has_mss, has_ws, sack_perm, has_ts;
	uint16_t mss;
	uint8_t ws;
	uint32_t tsval, tsecr;
	unsigned n_sack;
	struct tcp_range sack[4];
	unsigned len; /* payload bytes */
	uint8_t data[2048];
	unsigned nb_segs; /* mbufs of the packet (zero-copy payload shows as > 1) */
	/* checksum offload (tx_csum_offload): what the NIC is asked to do */
	uint64_t ol_flags;
	uint8_t l2_len, l3_len, l4_len;
	uint16_t ip_cksum, tcp_cksum; /* the header fields as the stack left them */
};
/* Packets captured and not yet taken. */
unsigned fx_pending(void);
/*
 * Takes the oldest captured packet (asserts there is one; checksums checked:
 * when the packet asks the NIC for them, that the IPv4 one is 0 and the TCP
 * one the pseudo-header sum the NIC starts from).
 */
struct fx_pkt fx_take(void);
/* Frees every captured packet not yet taken. */
void fx_discard(void);
/* Asserts that nothing was sent since the last fx_take()/fx_discard(). */
void fx_expect_silence(const char *why);

/* ---- the scripted peer ---- */

/* The remote end, as the test plays it. */
struct fx_peer {
	uint16_t port;  /* host order */
	uint16_t our_port; /* host order: OUR_PORT, or the ephemeral port of an active open */
	uint32_t isn;   /* its ISN */
	uint32_t nxt;   /* the next sequence number it sends */
	uint32_t ack;   /* what it acknowledges: the next byte it expects from us */
	uint32_t high;  /* highest sequence end it has seen from us */
	uint32_t our_iss;
	/* what it offers in its SYN */
	uint16_t mss;   /* 0: no option */
	bool ws_on, sack_on, ts_on;
	uint8_t ws;
	/* what was negotiated */
	bool ts_ok, sack_ok, ws_ok;
	uint8_t our_ws;   /* our shift, when ws_ok */
	uint16_t our_mss; /* what our SYN(-ACK) announced */
	uint32_t rwnd;    /* its receive window in bytes (sent scaled) */
	uint32_t ts_base; /* its TSval = ts_base + ms since FX_T0 */
	uint32_t ts_recent; /* our last TSval it saw */
};
/* A peer on PORT offering MSS 1460, WS 7, SACK and timestamps, window 256 KiB, ISN near 2^32. */
struct fx_peer fx_peer_new(uint16_t port);
/* Its TSval now. */
uint32_t fx_peer_tsval(const struct fx_peer *p);
/* A segment from the peer: its seq, ack, window, timestamp; not yet sent. */
struct fx_seg fx_peer_seg(const struct fx_peer *p, uint8_t flags, const void *data, unsigned len);
/* Sends FLAGS with DATA from the peer (ACK implied once synchronized) and advances its seq. */
void fx_peer_send(struct fx_peer *p, uint8_t flags, const void *data, unsigned len);
/* Sends a pure ACK of what the peer has (p->ack). */
void fx_peer_ack(struct fx_peer *p);
/* Takes the next captured packet, checks it is ours to the peer, and notes its TSval/end. */
struct fx_pkt fx_peer_take(struct fx_peer *p);
/* Acknowledges everything seen so far: p->ack = p->high. */
static inline void fx_peer_ack_all(struct fx_peer *p)
{
	p->ack = p->high;
}
/* The window field the peer puts in its segments. */
uint16_t fx_peer_win(const struct fx_peer *p);

/*
 * A passive open to OUR_IP:25 from P: SYN, our SYN-ACK (checked), ACK.
 * Returns the application's record of the accepted connection.
 */
struct fx_conn *fx_accept(struct fx_peer *p);
/* The SYN alone; returns our SYN-ACK (checked: SYN|ACK, ack = isn + 1). */
struct fx_pkt fx_peer_syn(struct fx_peer *p);
/*
 * Starts an active open from OUR_IP to P: tcp_connect(), a record for the
 * application, and our SYN (checked: SYN alone) taken into *SYN when given.
 * Leaves the connection in SYN-SENT.
 */
struct fx_conn *fx_open(struct fx_peer *p, struct fx_pkt *syn);
/* An active open from OUR_IP to P (which answers SYN-ACK); returns the connected record. */
struct fx_conn *fx_connect(struct fx_peer *p);

/* The record of connection C (its arg). */
static inline struct fx_conn *fx_conn_of(struct tcp_conn *c)
{
	return tcp_arg(c);
}
/* The connection of P's 4-tuple, or NULL (TIME_WAIT connections included). */
struct tcp_conn *fx_lookup(const struct fx_peer *p);
/* Its RFC 9293 state name, "none" without one. */
const char *fx_state_of(const struct fx_peer *p);

#endif
