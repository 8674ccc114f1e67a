/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target: TCP input (issue #3, "Bad input"). Each input gets a fresh
 * stack with a listener on port 25; a scripted handshake establishes one
 * connection, then the input is read as records: crafted segments to that
 * connection, to an active open, to new 4-tuples on the listener and to a
 * closed port; application calls; and clock jumps that fire the timers.
 * What a peer or the application could notice is checked as it happens
 * (checksums, MTU, a RST never answering a RST, silence after a bad
 * checksum, both byte streams exact), the stack's bookkeeping after every
 * record, and at the end every connection, timer and mbuf must be gone.
 * Any violation traps.
 *
 * Input: four config octets, then records until the input ends.
 *   cfg[0] stack: bit 0 CUBIC, 1 Nagle, 2 keepalive, 3 short timers,
 *          4-5 receive buffer, 6 small caps (mbufs, out-of-order, send buffer),
 *          7 MTU 576
 *   cfg[1] peer A's SYN: 0 timestamps, 1 SACK-permitted, 2 window scale,
 *          3 MSS, 4-5 its value, 6 handshake through a SYN cookie, 7 scale 14
 *   cfg[2] application: 0 greeting on accept, 1 echo, 2 close on the peer's FIN,
 *          3 consume only when told, 4 abort after 3000 octets in,
 *          5 close after 1000 octets in, 6-7 SYN backlog
 *   cfg[3] 0-1 connection table size, 2 TIME_WAIT bound 1, 3 delayed ACK
 *          200 ms, 4-6 greeting size, 7 checksums left to the NIC
 * A record starts with an octet OP whose low two bits say what it is:
 *   0, 1  a segment. OP bit 0: it arrives as a chain of mbufs (headers, then
 *         pieces of 1 to 601 octets); bits 2-3: to A, to B (the active open's
 *         peer), from a listener peer (bits 4-5 pick which), to a closed port;
 *         bit 6: SEQ absolute, bit 7: ACK absolute. Then FLAGS, CTL, SEQ
 *         (int16 after the peer's next sequence number, or 32 bits), ACK
 *         (int16 after the highest sequence number it saw from us, or 32
 *         bits), WINDOW (16), LENGTH (16, low 11 bits). CTL bits, each
 *         adding fields in this order:
 *         4 timestamps (+1: TSval offset), 6 SYN options (+1: which, +2 MSS),
 *         5 SACK blocks (+1: count, +4 per block), 7 raw options (+1: length,
 *         then the octets), 2 IPv4 options (+1), 3 padding after the datagram
 *         (+1); 0 bad checksum; 1 checksum already verified (as net marks it).
 *         Payload octets are a function of their sequence number, so what the
 *         application reads can be checked.
 *   2     an application call on a peer's connection (OP bits 2-4: A, B, L0-L3),
 *         then ACTION, low four bits: 0 send (+2: length, +1: mbuf size / 8),
 *         1 consume (+2), 2 toggle manual consume, 3 push, 4 shutdown, 5 close,
 *         6 abort, 7 connect to B, 8 ICMP error about it (+1 type, +1 code,
 *         +1 mode, +4 quoted sequence number when mode bit 0), others query.
 *   3     the clock jumps: (OP bits 2-5) << 4 * (OP bits 6-7) ms.
 * Every record also moves the clock 250 us and runs the timer wheel. The seeds
 * in corpus/fuzz_tcp_input/ are scenarios written in this format, one each
 * (echo, reassembly, recovery, syncookies, simultaneous_close, ...);
 * FUZZ_TCP_TRACE=1 in the environment prints every segment and call.
 */
#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_eal.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_tcp.h>

#include "dataplane/core/counters.h"
#include "dataplane/core/timer.h"
#include "dataplane/tcp/tcp.h"
#include "dataplane/tcp/tcp_priv.h"

/* Says which check failed, then crashes: libFuzzer keeps the input. */
#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x)) {                                                                        \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #x);     \
			__builtin_trap();                                                          \
		}                                                                                  \
	} while (0)

#define HZ 1000000000ull     /* virtual TSC: the clock reads in ns */
#define MS 1000000ull
#define T0 (1000 * HZ)       /* a clock of 0 looks like "never" to some code */
#define STEP (MS / 4)        /* what every record moves the clock */
#define POOL_MBUFS 8191
#define MAX_RECORDS 1024

/* RTE_IPV4() shifts a signed int into the sign bit (UBSan objects): build it unsigned. */
#define IP4(a, b, c, d)                                                                            \
	rte_cpu_to_be_32(((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) |    \
			 (uint32_t)(d))
#define OUR_IP IP4(198, 51, 100, 2)
#define PEER_IP IP4(203, 0, 113, 9)
#define PEER_IP2 IP4(203, 0, 113, 10)
#define LISTEN_PORT 25
#define CLOSED_PORT 26
#define B_PORT 2525 /* what the active open connects to */

#define F_FIN RTE_TCP_FIN_FLAG
#define F_SYN RTE_TCP_SYN_FLAG
#define F_RST RTE_TCP_RST_FLAG
#define F_ACK RTE_TCP_ACK_FLAG

/* The remote ends: A (established by the script), B (our active open), L0-L3 (new
 * 4-tuples on the listener), X (a closed port). */
enum { P_A, P_B, P_L0, P_L1, P_L2, P_L3, P_X, N_PEERS };
#define N_APP_PEERS (P_L3 + 1) /* those that can have a connection */

/* What the application knows of one peer's connection. */
struct app {
	struct tcp_conn *c; /* NULL: none, or closed() ran */
	uint32_t iss, irs;
	uint32_t tx_off;  /* octets queued with tcp_send() */
	uint32_t rx_off;  /* octets received */
	uint32_t held;    /* received and not yet tcp_consumed() */
	uint32_t pending; /* refused with -EAGAIN, sent again on writable() */
	bool manual;
	bool shut;        /* tcp_shutdown() or tcp_close() called */
	bool fin_seen;    /* peer_closed() ran */
};

struct peer {
	uint32_t raddr;        /* network order */
	uint16_t rport, lport; /* host order */
	uint32_t nxt;          /* the next sequence number it sends */
	uint32_t high;         /* highest sequence end it saw from us */
	uint32_t ts_recent;    /* our last TSval it saw */
	bool synced;           /* it saw our SYN */
	bool ts_seen;          /* our SYN(-ACK) carried timestamps */
	struct app app;
};

struct cfg {
	bool greet, echo, close_on_fin, manual, abort_rx, close_rx;
	unsigned greet_len;
	bool cookie_a;
	uint8_t a_opts;
	uint16_t a_mss;
	uint8_t a_ws;
	unsigned syn_backlog;
};

static struct rte_mempool *pool;
static unsigned pool_full;
static struct timer_wheel wheel;
static struct dp_stats stats;
static struct tcp_params params;
static uint16_t mtu;
static struct tcp_stack *stk;
static uint64_t now;
static struct peer peers[N_PEERS];
static struct cfg cfg;
static bool trace;  /* FUZZ_TCP_TRACE=1: print every segment and call */
static bool in_rst; /* tcp_input() is processing a RST */
static bool in_bad; /* tcp_input() is processing a segment with a bad checksum */

static const uint8_t secret[32] = {
	0x6d, 0x78, 0x67, 0x61, 0x74, 0x65, 0x2d, 0x66, 0x75, 0x7a, 0x7a, 0x2d, 0x74, 0x63, 0x70,
	0x21, 0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab,
	0xcd, 0xef,
};

/* Stream contents: what we send at stream offset K, what a peer sends at sequence S. */
static uint8_t pat_tx(uint32_t k)
{
	return (uint8_t)(k * 7 + (k >> 8) + 1);
}

static uint8_t pat_rx(uint32_t s)
{
	return (uint8_t)(s * 13 + (s >> 11) + 5);
}

/*
 * FUZZ_TCP_TRACE=1: the clock, direction, ports, flags, seq/ack, window and
 * length of P. Output shows the stack's clock: a timer fires inside a jump.
 */
static void trace_pkt(const char *dir, const uint8_t *p)
{
	uint64_t t = dir[0] == 'o' ? stk->now_us * 1000 : now;
	const struct rte_ipv4_hdr *ip = (const struct rte_ipv4_hdr *)p;
	const struct rte_tcp_hdr *th =
		(const struct rte_tcp_hdr *)(p + (ip->version_ihl & 0x0f) * 4);
	unsigned hl = (ip->version_ihl & 0x0f) * 4u + (th->data_off >> 4) * 4u;

	fprintf(stderr, "%9.3f ms %s %u>%u %c%c%c%c%c seq %u ack %u win %u len %d opt %u\n",
		(double)(t - T0) / MS, dir, rte_be_to_cpu_16(th->src_port),
		rte_be_to_cpu_16(th->dst_port), th->tcp_flags & F_SYN ? 'S' : '.',
		th->tcp_flags & F_ACK ? 'A' : '.', th->tcp_flags & F_FIN ? 'F' : '.',
		th->tcp_flags & F_RST ? 'R' : '.', th->tcp_flags & RTE_TCP_PSH_FLAG ? 'P' : '.',
		rte_be_to_cpu_32(th->sent_seq), rte_be_to_cpu_32(th->recv_ack),
		rte_be_to_cpu_16(th->rx_win), (int)rte_be_to_cpu_16(ip->total_length) - (int)hl,
		(th->data_off >> 4) * 4u - 20);
}

/* ---- the input ---- */

struct rd {
	const uint8_t *p;
	size_t n;
};

static uint8_t u8(struct rd *r)
{
	if (!r->n)
		return 0;
	r->n--;
	return *r->p++;
}

static uint16_t u16(struct rd *r)
{
	uint16_t hi = u8(r);
	return (uint16_t)(hi << 8 | u8(r));
}

static uint32_t u32(struct rd *r)
{
	uint32_t hi = u16(r);
	return hi << 16 | u16(r);
}

/* ---- the peers ---- */

static struct peer *peer_of(uint32_t raddr, uint16_t rport, uint16_t lport)
{
	for (unsigned i = 0; i < N_PEERS; i++) {
		struct peer *p = &peers[i];
		/* B's local port is the stack's choice: its remote port is B's alone */
		if (p->raddr == raddr && p->rport == rport && (p->lport == lport || i == P_B))
			return p;
	}
	return NULL;
}

static void peers_reset(void)
{
	static const struct {
		uint32_t addr;
		uint16_t rport, lport;
		uint32_t isn;
	} init[N_PEERS] = {
		[P_A] = {0, 40000, LISTEN_PORT, 0xfffff000u}, /* its data soon wraps 2^32 */
		[P_B] = {0, B_PORT, 33000, 0x80000000u},
		[P_L0] = {0, 41000, LISTEN_PORT, 0x00001000u},
		[P_L1] = {0, 41001, LISTEN_PORT, 0x40000000u},
		[P_L2] = {1, 41002, LISTEN_PORT, 0xc0000000u},
		[P_L3] = {1, 41003, LISTEN_PORT, 0xffffff00u},
		[P_X] = {0, 42000, CLOSED_PORT, 0x12345678u},
	};
	for (unsigned i = 0; i < N_PEERS; i++)
		peers[i] = (struct peer){
			.raddr = init[i].addr ? PEER_IP2 : PEER_IP,
			.rport = init[i].rport,
			.lport = init[i].lport,
			.nxt = init[i].isn,
		};
}

/* Its TSval now: a clock of its own in ms. */
static uint32_t peer_tsval(void)
{
	return 5000000u + (uint32_t)((now - T0) / MS);
}

/* ---- the output callback: what the network sees ---- */

/* Our own options must parse; returns the TSval in *ts when there is one. */
static bool out_options(const uint8_t *o, unsigned len, uint32_t *ts)
{
	bool has_ts = false;

	for (unsigned i = 0; i < len;) {
		if (o[i] == TCPOPT_EOL)
			break;
		if (o[i] == TCPOPT_NOP) {
			i++;
			continue;
		}
		CHECK(i + 1 < len && o[i + 1] >= 2 && i + o[i + 1] <= len);
		switch (o[i]) {
		case TCPOPT_MSS:
			CHECK(o[i + 1] == 4);
			break;
		case TCPOPT_WS:
			CHECK(o[i + 1] == 3 && o[i + 2] <= 14);
			break;
		case TCPOPT_SACK_PERM:
			CHECK(o[i + 1] == 2);
			break;
		case TCPOPT_SACK:
			CHECK(o[i + 1] >= 10 && (o[i + 1] - 2) % 8 == 0);
			break;
		case TCPOPT_TS:
			CHECK(o[i + 1] == 10);
			has_ts = true;
			*ts = (uint32_t)o[i + 2] << 24 | (uint32_t)o[i + 3] << 16 |
			      (uint32_t)o[i + 4] << 8 | o[i + 5];
			break;
		default:
			CHECK(0); /* we never send another kind */
		}
		i += o[i + 1];
	}
	return has_ts;
}

static void out(void *arg, struct rte_mbuf *m, uint32_t dst)
{
	uint8_t buf[RTE_MBUF_DEFAULT_BUF_SIZE];
	(void)arg;

	CHECK(!in_bad);
	/* the chain agrees with itself */
	uint32_t sum = 0;
	unsigned segs = 0;
	for (struct rte_mbuf *x = m; x; x = x->next) {
		sum += x->data_len;
		segs++;
	}
	CHECK(sum == m->pkt_len && segs == m->nb_segs);
	CHECK(m->pkt_len >= 40 && m->pkt_len <= mtu);
	/* a copy, for the checksums the NIC may still have to write */
	const uint8_t *d = rte_pktmbuf_read(m, 0, m->pkt_len, buf);
	CHECK(d != NULL);
	if (d != buf)
		memcpy(buf, d, m->pkt_len);
	const uint8_t *p = buf;
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)buf;
	CHECK(ip->version_ihl == RTE_IPV4_VHL_DEF);
	if (trace)
		trace_pkt("out", p);
	CHECK(rte_be_to_cpu_16(ip->total_length) == m->pkt_len);
	CHECK(ip->next_proto_id == IPPROTO_TCP && ip->time_to_live > 0);
	CHECK(ip->src_addr == OUR_IP && ip->dst_addr == dst);
	struct rte_tcp_hdr *th = (struct rte_tcp_hdr *)(ip + 1);
	unsigned thl = (th->data_off >> 4) * 4u;
	CHECK(thl >= sizeof(*th) && sizeof(*ip) + thl <= m->pkt_len);
	if (m->ol_flags & RTE_MBUF_F_TX_L4_MASK) {
		/* Left to the NIC: what DPDK's TX offload contract asks, then the NIC's part. */
		CHECK(params.tx_csum_offload);
		CHECK((m->ol_flags & RTE_MBUF_F_TX_L4_MASK) == RTE_MBUF_F_TX_TCP_CKSUM);
		CHECK((m->ol_flags & (RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM)) ==
		      (RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM));
		CHECK(m->l2_len == RTE_ETHER_HDR_LEN && m->l3_len == sizeof(*ip) && m->l4_len == thl);
		CHECK(ip->hdr_checksum == 0 && th->cksum == rte_ipv4_phdr_cksum(ip, m->ol_flags));
		ip->hdr_checksum = rte_ipv4_cksum(ip);
		th->cksum = 0;
		th->cksum = rte_ipv4_udptcp_cksum(ip, th);
	}
	CHECK(rte_ipv4_cksum(ip) == 0);
	CHECK(rte_ipv4_udptcp_cksum_verify(ip, th) == 0);
	uint8_t flags = th->tcp_flags;
	CHECK(!((flags & F_SYN) && (flags & (F_FIN | F_RST))));
	/* RFC 9293 §3.10.7.1 and throughout: a RST is never answered */
	CHECK(!((flags & F_RST) && in_rst));
	uint32_t tsval = 0;
	bool has_ts = out_options((const uint8_t *)(th + 1), thl - (unsigned)sizeof(*th), &tsval);
	uint32_t seq = rte_be_to_cpu_32(th->sent_seq);
	uint32_t len = m->pkt_len - (uint32_t)sizeof(*ip) - thl;
	const uint8_t *data = p + sizeof(*ip) + thl;

	struct peer *pr = peer_of(ip->dst_addr, rte_be_to_cpu_16(th->dst_port),
				  rte_be_to_cpu_16(th->src_port));
	CHECK(pr != NULL); /* we only ever answer the peers of this file */
	if (flags & F_SYN) {
		CHECK(len == 0);
		pr->high = seq + 1;
		pr->synced = true;
		pr->ts_seen = has_ts;
		if (pr == &peers[P_B])
			pr->lport = rte_be_to_cpu_16(th->src_port);
	} else if (!(flags & F_RST)) {
		uint32_t end = seq + len + !!(flags & F_FIN);
		if (!pr->synced || seq_gt(end, pr->high))
			pr->high = end;
		pr->synced = true;
	}
	if (has_ts)
		pr->ts_recent = tsval;

	/* Payload and FIN: exactly the stream the application queued. */
	if (len || (flags & F_FIN)) {
		CHECK(!(flags & F_RST));
		struct app *a = &pr->app;
		CHECK(a->c != NULL);
		uint32_t k = seq - (a->iss + 1);
		CHECK(k <= a->tx_off && len <= a->tx_off - k);
		for (uint32_t i = 0; i < len; i++)
			CHECK(data[i] == pat_tx(k + i));
		if (flags & F_FIN)
			CHECK(a->shut && k + len == a->tx_off);
	}
	rte_pktmbuf_free(m);
}

/* ---- the application ---- */

static struct peer *rec_of(struct tcp_conn *c)
{
	struct peer *p = tcp_arg(c);
	CHECK(p != NULL && p->app.c == c);
	return p;
}

/* Queues N pattern octets in mbufs of CHUNK; -EAGAIN leaves them for writable(). */
static int app_send(struct peer *p, uint32_t n, unsigned chunk)
{
	struct app *a = &p->app;
	struct rte_mbuf *head = NULL, *tail = NULL;
	uint32_t off = a->tx_off;

	for (uint32_t left = n; left;) {
		struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
		if (!m) {
			rte_pktmbuf_free(head);
			return -ENOBUFS;
		}
		uint16_t k = (uint16_t)RTE_MIN(left, (uint32_t)chunk);
		uint8_t *d = (uint8_t *)rte_pktmbuf_append(m, k);
		for (uint16_t i = 0; i < k; i++)
			d[i] = pat_tx(off++);
		left -= k;
		if (!head) {
			head = tail = m;
		} else {
			tail->next = m;
			tail = m;
			head->nb_segs++;
			head->pkt_len += k;
		}
	}
	if (!head)
		return 0;
	/* tcp_send() may transmit at once: the output check must know the octets */
	a->tx_off += n;
	int rc = tcp_send(a->c, head);
	if (rc != 0) {
		a->tx_off -= n;
		rte_pktmbuf_free(head);
		if (rc == -EAGAIN)
			a->pending += n;
	}
	return rc;
}

static void app_start(struct peer *p, struct tcp_conn *c)
{
	p->app = (struct app){.c = c, .iss = c->iss, .irs = c->irs, .manual = cfg.manual};
	tcp_set_arg(c, p);
	CHECK(c->state == TCP_ST_ESTABLISHED);
	if (cfg.greet)
		app_send(p, cfg.greet_len, 2000);
}

static void app_accepted(struct tcp_conn *c, void *larg)
{
	uint32_t laddr, raddr;
	uint16_t lport, rport;

	CHECK(larg == &peers);
	tcp_endpoints(c, &laddr, &lport, &raddr, &rport);
	CHECK(laddr == OUR_IP && rte_be_to_cpu_16(lport) == LISTEN_PORT);
	struct peer *p = peer_of(raddr, rte_be_to_cpu_16(rport), LISTEN_PORT);
	CHECK(p != NULL && p != &peers[P_B] && p != &peers[P_X]);
	CHECK(p->app.c == NULL); /* one connection per 4-tuple */
	app_start(p, c);
}

static void app_connected(struct tcp_conn *c, int err)
{
	struct peer *p = rec_of(c);
	CHECK(p == &peers[P_B]);
	if (err != 0)
		return; /* closed() follows */
	/* shut down in SYN_RECEIVED (a simultaneous open): the FIN goes now */
	CHECK(c->state == TCP_ST_ESTABLISHED || (p->app.shut && c->state == TCP_ST_FIN_WAIT_1));
	p->app.irs = c->irs; /* what was queued in SYN-SENT stays queued */
	if (cfg.greet)
		app_send(p, cfg.greet_len, 2000);
}

static void app_received(struct tcp_conn *c, struct rte_mbuf *m)
{
	struct peer *p = rec_of(c);
	struct app *a = &p->app;
	uint32_t n = 0;
	unsigned segs = 0;

	/* in order, nothing lost or doubled: the octet at sequence s is pat_rx(s) */
	for (struct rte_mbuf *x = m; x; x = x->next) {
		const uint8_t *d = rte_pktmbuf_mtod(x, const uint8_t *);
		for (uint32_t i = 0; i < x->data_len; i++, n++)
			CHECK(d[i] == pat_rx(a->irs + 1 + a->rx_off + n));
		segs++;
	}
	CHECK(n == m->pkt_len && segs == m->nb_segs && n > 0);
	a->rx_off += n;
	CHECK(c->rcv_nxt == a->irs + 1 + a->rx_off);
	CHECK(!a->fin_seen);
	rte_pktmbuf_free(m);
	if (a->manual)
		a->held += n;
	else
		tcp_consumed(c, n);
	if (cfg.abort_rx && a->rx_off >= 3000) {
		tcp_abort(c);
		CHECK(a->c == NULL);
		return;
	}
	if (cfg.echo)
		app_send(p, n, 2000);
	if (cfg.close_rx && a->rx_off >= 1000 && !a->shut) {
		a->shut = true;
		tcp_close(c);
	}
}

static void app_peer_closed(struct tcp_conn *c)
{
	struct peer *p = rec_of(c);
	struct app *a = &p->app;

	CHECK(!a->fin_seen);
	a->fin_seen = true;
	/* the FIN comes after every octet before it was delivered */
	CHECK(c->rcv_nxt == a->irs + 1 + a->rx_off + 1);
	if (cfg.close_on_fin && !a->shut) {
		a->shut = true;
		tcp_close(c);
	}
}

static void app_writable(struct tcp_conn *c)
{
	struct peer *p = rec_of(c);
	uint32_t n = p->app.pending;

	p->app.pending = 0;
	if (n)
		app_send(p, n, 2000);
}

static void app_closed(struct tcp_conn *c, enum tcp_close_reason reason)
{
	struct peer *p = tcp_arg(c);
	if (!p)
		return; /* a passive open that never completed: the application never knew it */
	(void)reason;
	CHECK(p->app.c == c); /* once, for a connection it knew */
	p->app.c = NULL;
}

static const struct tcp_ops app_ops = {
	.accepted = app_accepted,
	.connected = app_connected,
	.received = app_received,
	.peer_closed = app_peer_closed,
	.writable = app_writable,
	.closed = app_closed,
};

/* ---- the stack's own bookkeeping, between records ---- */

static unsigned timers_of(const struct tcp_conn *c)
{
	return timer_armed(&c->t_rexmt) + timer_armed(&c->t_delack) + timer_armed(&c->t_keep) +
	       timer_armed(&c->t_2msl);
}

/* Returns the mbufs c holds. */
static unsigned check_conn(const struct tcp_conn *c)
{
	unsigned mbufs = 0, n = 0, ooo_mbufs = 0;
	uint32_t bytes = 0;
	const struct rte_mbuf *last = NULL;

	CHECK(!c->doomed && c->busy == 0);
	CHECK(c->state > TCP_ST_LISTEN && c->state <= TCP_ST_TIME_WAIT);
	for (const struct rte_mbuf *m = c->sq_head; m; m = m->next) {
		CHECK(m->data_len > 0);
		bytes += m->data_len;
		n++;
		last = m;
	}
	CHECK(bytes == c->sq_bytes && n == c->sq_mbufs && last == c->sq_tail);
	CHECK(c->sq_mbufs <= params.mbufs_per_conn / 2);
	mbufs += n;
	/* a send-queue cursor rests on an mbuf of the queue, at the number of its first octet */
	for (unsigned i = 0; i < TCP_SQ_CURSORS; i++) {
		const struct tcp_sq_pos *q = &c->sq_cur[i];
		if (!q->m)
			continue;
		uint32_t seq = c->snd_una;
		const struct rte_mbuf *m = c->sq_head;
		while (m && m != q->m) {
			seq += m->data_len;
			m = m->next;
		}
		CHECK(m == q->m && seq == q->seq);
	}
	if (c->state != TCP_ST_SYN_SENT && c->state != TCP_ST_TIME_WAIT) {
		CHECK(seq_leq(c->snd_una, c->snd_nxt) && seq_leq(c->snd_nxt, c->snd_max));
		/* nothing counts as sent that was never queued: the SYN, the data, the FIN */
		CHECK(c->snd_max - c->snd_una <= c->sq_bytes + 2);
	}
	CHECK(c->n_ooo <= params.ooo_max_segs);
	for (unsigned i = 0; i < c->n_ooo; i++) {
		const struct tcp_ooo_seg *g = &c->ooo[i];
		CHECK(g->len > 0 && g->m->pkt_len == g->len);
		CHECK(seq_gt(g->seq, c->rcv_nxt));
		if (i + 1 < c->n_ooo)
			CHECK(seq_leq(g->seq + g->len, c->ooo[i + 1].seq));
		mbufs += g->m->nb_segs;
		ooo_mbufs += g->m->nb_segs;
	}
	CHECK(ooo_mbufs == c->ooo_mbufs);
	CHECK(c->rcv_unconsumed <= params.rcv_buf);
	CHECK(c->n_sacked <= TCP_SCOREBOARD_MAX);
	if (c->state == TCP_ST_TIME_WAIT)
		CHECK(c->in_tw_list && timer_armed(&c->t_2msl) && c->sq_head == NULL &&
		      c->n_ooo == 0);
	else
		CHECK(!c->in_tw_list);
	/* the application's record and the connection agree */
	struct peer *p = tcp_arg(c);
	if (p && p->app.c == c && !c->app_closed && c->state > TCP_ST_SYN_RECEIVED) {
		CHECK(p->app.rx_off == c->rcv_nxt - (p->app.irs + 1) - !!c->fin_rcvd);
		CHECK(c->rcv_unconsumed == p->app.held); /* what the window is built on */
	}
	return mbufs;
}

static void check_stack(void)
{
	unsigned conns = 0, tw = 0, timers = 0, mbufs = 0;
	unsigned half_open[TCP_MAX_LISTENERS] = {0};

	for (uint32_t b = 0; b <= stk->table_mask; b++)
		for (const struct tcp_conn *c = stk->table[b]; c; c = c->hnext) {
			conns++;
			tw += c->state == TCP_ST_TIME_WAIT;
			timers += timers_of(c);
			mbufs += check_conn(c);
			if (c->listener) {
				CHECK(c->state == TCP_ST_SYN_RECEIVED);
				half_open[c->listener - stk->listeners]++;
			}
		}
	CHECK(conns == stk->n_conns && conns <= params.max_conns);
	CHECK(tw == stk->n_time_wait);
	CHECK(rte_mempool_in_use_count(stk->conns) == conns);
	/* no timer armed on a connection that is gone */
	CHECK(timers == wheel.armed);
	/* every mbuf out of the pool is in a send or reassembly queue */
	CHECK(pool_full - rte_mempool_avail_count(pool) == mbufs);
	for (unsigned i = 0; i < TCP_MAX_LISTENERS; i++)
		CHECK(stk->listeners[i].syn_pending == half_open[i]);
}

/* ---- segments ---- */

struct seg {
	struct peer *p;
	uint16_t dport;
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t win;
	uint8_t opts[40];
	unsigned olen;
	unsigned len;
	unsigned ip_words; /* IPv4 option words */
	unsigned pad;      /* octets after the datagram */
	bool bad_cksum, verified;
	bool chained;      /* received as a chain of mbufs, as a NIC's scatter-gather gives it */
};

/*
 * M copied into a chain: the headers (HLEN octets) alone, then pieces whose
 * odd and even lengths cycle, so the checksum and every trim see odd pieces
 * inside. Frees M; NULL when the pool is dry.
 */
static struct rte_mbuf *as_chain(struct rte_mbuf *m, unsigned hlen)
{
	static const uint16_t pieces[] = {1, 7, 2, 601, 3, 64, 5};
	struct rte_mbuf *head = NULL, *tail = NULL;
	unsigned off = 0, k = 0;

	while (off < m->pkt_len) {
		unsigned n = off == 0 ? hlen : pieces[k++ % RTE_DIM(pieces)];
		n = RTE_MIN(n, m->pkt_len - off);
		struct rte_mbuf *x = rte_pktmbuf_alloc(pool);
		if (!x) {
			rte_pktmbuf_free(head);
			rte_pktmbuf_free(m);
			return NULL;
		}
		char *to = rte_pktmbuf_append(x, (uint16_t)n);
		memcpy(to, rte_pktmbuf_mtod_offset(m, char *, off), n);
		if (!head) {
			head = tail = x;
		} else {
			tail->next = x;
			tail = x;
			head->nb_segs++;
			head->pkt_len += n;
		}
		off += n;
	}
	head->ol_flags = m->ol_flags;
	rte_pktmbuf_free(m);
	return head;
}

static void feed(const struct seg *g)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
	if (!m)
		return;
	unsigned olen = (g->olen + 3) & ~3u;
	unsigned ihl = 20 + 4 * g->ip_words, thl = 20 + olen;
	unsigned room = rte_pktmbuf_tailroom(m);
	unsigned len = RTE_MIN(g->len, room - ihl - thl);
	unsigned total = ihl + thl + len;
	unsigned pad = RTE_MIN(g->pad, room - total);
	uint8_t *p = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)(total + pad));
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)p;
	struct rte_tcp_hdr *th = (struct rte_tcp_hdr *)(p + ihl);

	memset(p, 0, ihl + thl);
	ip->version_ihl = (uint8_t)(0x40 | (ihl / 4));
	ip->total_length = rte_cpu_to_be_16((uint16_t)total);
	ip->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);
	ip->time_to_live = 64;
	ip->next_proto_id = IPPROTO_TCP;
	ip->src_addr = g->p->raddr;
	ip->dst_addr = OUR_IP;
	memset(ip + 1, 1, ihl - 20); /* NOPs: options net skips */
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	th->src_port = rte_cpu_to_be_16(g->p->rport);
	th->dst_port = rte_cpu_to_be_16(g->dport);
	th->sent_seq = rte_cpu_to_be_32(g->seq);
	th->recv_ack = rte_cpu_to_be_32(g->ack);
	th->data_off = (uint8_t)((thl / 4) << 4);
	th->tcp_flags = g->flags;
	th->rx_win = rte_cpu_to_be_16(g->win);
	memcpy(th + 1, g->opts, g->olen); /* the rest is EOL */
	for (unsigned i = 0; i < len; i++)
		p[ihl + thl + i] = pat_rx(g->seq + i);
	memset(p + total, 0xa5, pad);
	th->cksum = rte_ipv4_udptcp_cksum(ip, th);
	if (g->bad_cksum)
		th->cksum ^= rte_cpu_to_be_16(0x0100);
	else if (g->verified)
		m->ol_flags |= RTE_MBUF_F_RX_L4_CKSUM_GOOD;

	/* the peer has sent it: its next sequence number moves on (a little at most) */
	struct peer *pr = g->p;
	if (!g->bad_cksum && !(g->flags & F_RST)) {
		uint32_t end = g->seq + len + !!(g->flags & F_FIN);
		if (g->flags & F_SYN)
			pr->nxt = g->seq + 1;
		else if (seq_gt(end, pr->nxt) && end - pr->nxt < 0x10000)
			pr->nxt = end;
	}
	if (trace)
		trace_pkt(g->bad_cksum ? "in!" : "in ", p);
	if (g->chained && !(m = as_chain(m, ihl + thl)))
		return;
	in_rst = g->flags & F_RST;
	in_bad = g->bad_cksum;
	tcp_input(stk, m, now);
	in_rst = in_bad = false;
}

static void put32(uint8_t *o, uint32_t v)
{
	o[0] = (uint8_t)(v >> 24);
	o[1] = (uint8_t)(v >> 16);
	o[2] = (uint8_t)(v >> 8);
	o[3] = (uint8_t)v;
}

static void seg_record(struct rd *r, uint8_t op)
{
	static const unsigned targets[4] = {P_A, P_B, P_L0, P_X};
	unsigned t = targets[(op >> 2) & 3];
	if (t == P_L0)
		t += (op >> 4) & 3;
	struct seg g = {.p = &peers[t]};
	struct peer *p = g.p;

	g.dport = p->lport;
	g.flags = u8(r);
	uint8_t ctl = u8(r);
	g.seq = (op & 0x40) ? u32(r) : p->nxt + (uint32_t)(int16_t)u16(r);
	g.ack = (op & 0x80) ? u32(r) : p->high + (uint32_t)(int16_t)u16(r);
	g.win = u16(r);
	g.len = u16(r) & 0x7ff;
	g.bad_cksum = ctl & 0x01;
	g.verified = ctl & 0x02;
	g.chained = op & 0x01;

	uint8_t *o = g.opts;
	unsigned n = 0;
	if (ctl & 0x10) {
		int8_t d = (int8_t)u8(r);
		o[n++] = TCPOPT_NOP;
		o[n++] = TCPOPT_NOP;
		o[n++] = TCPOPT_TS;
		o[n++] = 10;
		put32(o + n, peer_tsval() + (uint32_t)(int32_t)d);
		put32(o + n + 4, p->ts_recent);
		n += 8;
	}
	if (ctl & 0x40) {
		uint8_t which = u8(r);
		uint16_t mss = u16(r);
		if (which & 0x40) {
			o[n++] = TCPOPT_MSS;
			o[n++] = 4;
			o[n++] = (uint8_t)(mss >> 8);
			o[n++] = (uint8_t)mss;
		}
		if (which & 0x10) {
			o[n++] = TCPOPT_NOP;
			o[n++] = TCPOPT_WS;
			o[n++] = 3;
			o[n++] = which & 0x0f;
		}
		if (which & 0x20) {
			o[n++] = TCPOPT_NOP;
			o[n++] = TCPOPT_NOP;
			o[n++] = TCPOPT_SACK_PERM;
			o[n++] = 2;
		}
	}
	if (ctl & 0x20) {
		/* blocks around what we sent: start after p->high - 32 KiB, length up to 64 KiB */
		unsigned k = (u8(r) & 3) + 1;
		bool fits = n + 4 + 8 * k <= sizeof(g.opts);
		if (fits) {
			o[n++] = TCPOPT_NOP;
			o[n++] = TCPOPT_NOP;
			o[n++] = TCPOPT_SACK;
			o[n++] = (uint8_t)(2 + 8 * k);
		}
		for (unsigned i = 0; i < k; i++) {
			uint32_t s = p->high + (uint32_t)(int16_t)u16(r);
			uint32_t e = s + u16(r);
			if (fits) {
				put32(o + n, s);
				put32(o + n + 4, e);
				n += 8;
			}
		}
	}
	if (ctl & 0x80) {
		unsigned k = u8(r) % 41;
		for (unsigned i = 0; i < k; i++) {
			uint8_t b = u8(r);
			if (n < sizeof(g.opts))
				o[n++] = b;
		}
	}
	g.olen = n;
	if (ctl & 0x04)
		g.ip_words = 1 + u8(r) % 10;
	if (ctl & 0x08)
		g.pad = u8(r);
	feed(&g);
}

/* ---- application records ---- */

static void icmp_error(struct rd *r, struct peer *p)
{
	uint8_t type = u8(r), code = u8(r), mode = u8(r);
	uint8_t inner[40]; /* an IPv4 header and the 8 octets of TCP an ICMP error quotes */
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)inner;
	struct rte_tcp_hdr *th = (struct rte_tcp_hdr *)(ip + 1);

	memset(inner, 0, sizeof(inner));
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->next_proto_id = IPPROTO_TCP;
	ip->src_addr = OUR_IP;
	ip->dst_addr = p->raddr;
	th->src_port = rte_cpu_to_be_16(p->lport);
	th->dst_port = rte_cpu_to_be_16(p->rport);
	/* the quoted sequence number: our ISS (what a real error quotes after a SYN) or any */
	th->sent_seq = rte_cpu_to_be_32((mode & 1) ? u32(r) : p->app.iss);
	unsigned len = (mode & 2) ? (unsigned)(mode >> 2) % 29 : 28;
	tcp_icmp_error(stk, type, code, inner, len, now);
}

static void app_record(struct rd *r, uint8_t op)
{
	struct peer *p = &peers[((op >> 2) & 7) % N_APP_PEERS];
	struct app *a = &p->app;
	uint8_t action = u8(r) & 15;

	if (trace)
		fprintf(stderr, "%9.3f ms app %u action %u%s\n", (double)(now - T0) / MS,
			(unsigned)(p - peers), action, a->c ? "" : " (no connection)");
	if (action == 7) {
		/* an active open to B, when it has none */
		struct peer *b = &peers[P_B];
		struct tcp_conn *c = NULL;
		if (b->app.c)
			return;
		b->app = (struct app){.manual = cfg.manual};
		b->synced = false;
		if (tcp_connect(stk, OUR_IP, b->raddr, rte_cpu_to_be_16(B_PORT), &app_ops, b, NULL,
				NULL, &c) == 0) {
			uint32_t laddr, raddr;
			uint16_t lport, rport;
			tcp_endpoints(c, &laddr, &lport, &raddr, &rport);
			CHECK(laddr == OUR_IP && raddr == b->raddr && rport == rte_cpu_to_be_16(B_PORT));
			CHECK(c->state == TCP_ST_SYN_SENT);
			b->lport = rte_be_to_cpu_16(lport);
			b->app.c = c;
			b->app.iss = c->iss;
		}
		return;
	}
	if (action == 8) {
		icmp_error(r, p);
		return;
	}
	if (!a->c)
		return;
	switch (action) {
	case 0: {
		uint32_t n = u16(r) & 0x3fff;
		uint8_t ch = u8(r);
		app_send(p, n, ch ? RTE_MIN(ch * 8u, 2000u) : 2000u);
		break;
	}
	case 1: {
		uint32_t n = u16(r);
		a->held = n >= a->held ? 0 : a->held - n;
		tcp_consumed(a->c, n);
		break;
	}
	case 2:
		a->manual = !a->manual;
		break;
	case 3:
		tcp_push(a->c);
		break;
	case 4:
		a->shut = true;
		tcp_shutdown(a->c);
		break;
	case 5:
		a->shut = true;
		tcp_close(a->c);
		break;
	case 6:
		tcp_abort(a->c);
		CHECK(a->c == NULL); /* closed() ran before tcp_abort() returned */
		break;
	default: {
		unsigned space = tcp_send_space(a->c);
		CHECK(space <= params.snd_buf);
		break;
	}
	}
}

/* ---- one input ---- */

/* The tick of the earliest armed timer, UINT64_MAX when none is. A scan of the
 * wheel, nothing to guide the fuzzer by: not traced for coverage. */
__attribute__((no_sanitize("coverage"), noinline)) static uint64_t next_expiry(void)
{
	uint64_t first = UINT64_MAX;

	for (unsigned i = 0; i < TIMER_SLOTS; i++)
		for (const struct timer *t = wheel.slot[i]; t; t = t->next)
			first = RTE_MIN(first, t->expire);
	return first;
}

/*
 * Moves the clock on, firing what falls due in order. timer_wheel_run() walks
 * a jump one tick at a time, which was most of a run with jumps of a minute:
 * beyond a turn of the wheel, the ticks before the next expiry are skipped,
 * as nothing can be due in them.
 */
static void advance(uint64_t ns)
{
	uint64_t target;

	now += ns;
	target = now / wheel.tick;
	while (target - wheel.now > TIMER_SLOTS) {
		uint64_t next = next_expiry();
		if (next > target) {
			wheel.now = target;
			break;
		}
		if (next - 1 > wheel.now)
			wheel.now = next - 1;
		timer_wheel_run(&wheel, next * wheel.tick);
	}
	timer_wheel_run(&wheel, now);
}

static void configure(struct rd *r)
{
	uint8_t c0 = u8(r), c1 = u8(r), c2 = u8(r), c3 = u8(r);
	static const unsigned rcv_bufs[4] = {256 * 1024, 32 * 1024, 4096, 1200};
	static const unsigned max_conns[4] = {16, 4, 2, 8};
	static const uint16_t mss[4] = {1460, 536, 9000, 1};
	static const unsigned backlog[4] = {1, 2, 4, 0};

	tcp_params_default(&params);
	params.cc = (c0 & 0x01) ? TCP_CC_CUBIC : TCP_CC_NEWRENO;
	if (c0 & 0x04) {
		params.keepalive_idle_s = 2;
		params.keepalive_intvl_s = 1;
		params.keepalive_probes = 2;
	}
	if (c0 & 0x08) {
		params.rto_max_ms = 3000;
		params.max_retries = 3;
		params.syn_retries = 2;
		params.time_wait_ms = 2000;
	}
	params.rcv_buf = rcv_bufs[(c0 >> 4) & 3];
	if (c0 & 0x40) {
		/* both bounds reachable: the queues share 12, reassembly holds 6 at most */
		params.mbufs_per_conn = 12;
		params.ooo_max_segs = 6;
		params.snd_buf = 8192;
	}
	mtu = (c0 & 0x80) ? 576 : 1500;
	params.max_conns = max_conns[c3 & 3];
	params.time_wait_max = (c3 & 0x04) ? 1 : 64;
	params.delack_ms = (c3 & 0x08) ? 200 : 40;
	params.tx_csum_offload = c3 & 0x80;

	cfg = (struct cfg){
		.greet = c2 & 0x01,
		.echo = c2 & 0x02,
		.close_on_fin = c2 & 0x04,
		.manual = c2 & 0x08,
		.abort_rx = c2 & 0x10,
		.close_rx = c2 & 0x20,
		.syn_backlog = backlog[c2 >> 6],
		.greet_len = 1 + ((c3 >> 4) & 7) * 200u,
		.cookie_a = c1 & 0x40,
		.a_opts = c1,
		.a_mss = mss[(c1 >> 4) & 3],
		.a_ws = (c1 & 0x80) ? 14 : 7,
	};
}

/* A SYN from P with the options of cfg[1]. */
static void syn_from(struct peer *p, bool with_opts)
{
	struct seg g = {.p = p, .dport = LISTEN_PORT, .seq = p->nxt, .flags = F_SYN, .win = 65535};
	uint8_t *o = g.opts;
	unsigned n = 0, f = with_opts ? cfg.a_opts : 0x0f;

	if (f & 0x08) {
		o[n++] = TCPOPT_MSS;
		o[n++] = 4;
		o[n++] = (uint8_t)(cfg.a_mss >> 8);
		o[n++] = (uint8_t)cfg.a_mss;
	}
	if (f & 0x02) {
		o[n++] = TCPOPT_NOP;
		o[n++] = TCPOPT_NOP;
		o[n++] = TCPOPT_SACK_PERM;
		o[n++] = 2;
	}
	if (f & 0x01) {
		o[n++] = TCPOPT_NOP;
		o[n++] = TCPOPT_NOP;
		o[n++] = TCPOPT_TS;
		o[n++] = 10;
		put32(o + n, peer_tsval());
		put32(o + n + 4, 0);
		n += 8;
	}
	if (f & 0x04) {
		o[n++] = TCPOPT_NOP;
		o[n++] = TCPOPT_WS;
		o[n++] = 3;
		o[n++] = cfg.a_ws;
	}
	g.olen = n;
	feed(&g);
}

/* The virtual clock, for the application calls the stack sees outside its callbacks. */
static uint64_t read_clock(void *arg)
{
	(void)arg;
	return now;
}

static void start(uint8_t c0)
{
	memset(&stats, 0, sizeof(stats));
	now = T0;
	timer_wheel_init(&wheel, HZ, 1000, now);
	stk = tcp_stack_new(&params, &wheel, pool, &stats, out, NULL, mtu, secret);
	CHECK(stk != NULL);
	tcp_stack_set_clock(stk, read_clock, NULL);
	struct tcp_listen_opts lo = {
		.ops = &app_ops,
		.arg = &peers,
		.syn_backlog = cfg.syn_backlog,
		.cc = params.cc,
		.nagle = c0 & 0x02,
	};
	CHECK(tcp_listen(stk, 0, rte_cpu_to_be_16(LISTEN_PORT), &lo) == 0);
	peers_reset();

	/* Under a SYN cookie when asked: half-open connections from L0.. fill the backlog. */
	unsigned dummies = 0;
	if (cfg.cookie_a && cfg.syn_backlog)
		for (; dummies < cfg.syn_backlog; dummies++)
			syn_from(&peers[P_L0 + dummies], false);

	/* The scripted handshake of A: SYN, our SYN-ACK, ACK. */
	struct peer *a = &peers[P_A];
	syn_from(a, true);
	advance(STEP);
	struct seg g = {.p = a, .dport = LISTEN_PORT, .seq = a->nxt, .ack = a->high,
			.flags = F_ACK, .win = 65535};
	if (a->ts_seen) {
		g.opts[0] = TCPOPT_NOP;
		g.opts[1] = TCPOPT_NOP;
		g.opts[2] = TCPOPT_TS;
		g.opts[3] = 10;
		put32(g.opts + 4, peer_tsval());
		put32(g.opts + 8, a->ts_recent);
		g.olen = 12;
	}
	feed(&g);
	/* a valid handshake completes whenever the table has room */
	if (dummies < params.max_conns)
		CHECK(a->app.c != NULL);
	check_stack();
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char *eal[] = {"fuzz_tcp_input", "--no-pci", "--no-huge", "--no-shconf", "-m", "256", "-l",
		       "0", "--log-level=lib.*:error", "--no-telemetry", NULL};
	cpu_set_t cpus;
	(void)argc;
	(void)argv;
	/* EAL pins this thread to CPU 0; a fuzzer needs no pinning, and where a
	 * dataplane busy-polls CPU 0 (a shared test machine) it would crawl. */
	CHECK(sched_getaffinity(0, sizeof(cpus), &cpus) == 0);
	CHECK(rte_eal_init((int)RTE_DIM(eal) - 1, eal) >= 0);
	CHECK(sched_setaffinity(0, sizeof(cpus), &cpus) == 0);
	pool = rte_pktmbuf_pool_create("fuzz_tcp", POOL_MBUFS, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
				       SOCKET_ID_ANY);
	CHECK(pool != NULL);
	pool_full = rte_mempool_avail_count(pool);
	trace = getenv("FUZZ_TCP_TRACE") != NULL;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rd r = {data, size};
	uint8_t c0 = size ? data[0] : 0;

	configure(&r);
	start(c0);
	for (unsigned i = 0; i < MAX_RECORDS && r.n; i++) {
		uint8_t op = u8(&r);
		switch (op & 3) {
		case 0:
		case 1:
			seg_record(&r, op);
			break;
		case 2:
			app_record(&r, op);
			break;
		default:
			advance(((uint64_t)((op >> 2) & 15) << (4 * (op >> 6))) * MS);
			break;
		}
		advance(STEP);
		check_stack();
	}
	/* Everything goes: each connection the application knew is told, nothing stays. */
	tcp_stack_free(stk);
	stk = NULL;
	for (unsigned i = 0; i < N_PEERS; i++)
		CHECK(peers[i].app.c == NULL);
	CHECK(wheel.armed == 0);
	CHECK(rte_mempool_avail_count(pool) == pool_full);
	return 0;
}
