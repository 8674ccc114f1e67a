/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What the net unit tests share: a worker ctx on fake ports whose tx
 * callback captures frames, a virtual clock moved by hand, and builders of
 * crafted frames. Only 198.51.100.0/24 and 203.0.113.0/24 appear here.
 */
#ifndef MX_TEST_NET_FIXTURE_H
#define MX_TEST_NET_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <criterion/criterion.h>
#include <rte_arp.h>
#include <rte_ether.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include "dataplane/net/net.h"
#include "dataplane/net/net_priv.h"
#include "harness.h"

#define HZ 1000000ull /* virtual TSC: one tick per microsecond */
#define T0 (1000 * HZ)
#define FRAME_MAX 2048
#define FX_OUT_MAX 1100
#define FX_LEARN_MAX 64

/* RTE_IPV4() shifts a signed int into the sign bit (UBSan objects): build it unsigned. */
#define IP4(a, b, c, d)                                                                            \
	rte_cpu_to_be_32(((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) |    \
			 (uint32_t)(d))
#define OUR_IP IP4(198, 51, 100, 2)  /* port 0, /24 */
#define GW_IP IP4(198, 51, 100, 1)   /* the default route's gateway */
#define PEER_IP IP4(198, 51, 100, 7) /* an on-link neighbour */
#define REMOTE_IP IP4(203, 0, 113, 9) /* beyond the gateway */
#define OUR_IP1 IP4(203, 0, 113, 2)   /* port 1 in two-port tests, /24 */

extern const struct rte_ether_addr OUR_MAC, OUR_MAC1, PEER_MAC, GW_MAC, OTHER_MAC, BCAST_MAC,
	ZERO_MAC;

extern struct net_ctx fx;
extern struct dp_stats fx_stats;
extern struct net_iface fx_if[NET_MAX_IFACES];
extern unsigned fx_n_if;
extern struct net_route fx_rt[NET_MAX_ROUTES];
extern unsigned fx_n_rt;
extern struct net_params fx_params;
extern struct rte_mempool *fx_pool; /* what fx.pool is set to by fx_init() */
extern uint64_t fx_now;

struct fx_sent {
	uint16_t port;
	struct rte_mbuf *m;
};
extern struct fx_sent fx_out[FX_OUT_MAX];
extern unsigned fx_n_out;

struct fx_learn_rec {
	uint16_t port;
	uint32_t ip;
	struct rte_ether_addr mac;
};
extern struct fx_learn_rec fx_learned[FX_LEARN_MAX];
extern unsigned fx_n_learned;

/* Stand-ins for harness_pool()/harness_frame(), same contract (see net_fixture.c). */
struct rte_mempool *fx_mbuf_pool(void);
struct rte_mbuf *fx_frame(const void *frame, size_t len, uint16_t port);

/* .init: one port (0, OUR_MAC, OUR_IP/24, MTU 1500), default route via GW_IP. */
void fx_setup(void);
/* .fini: frees the ctx and every captured frame (after a test that stopped early). */
void fx_teardown(void);
/* Frees the ctx (and what waits in it) and every captured frame; asserts no mbuf leaked. */
void fx_expect_no_leak(void);

/*
 * A test of SUITE whose last assertion is that no mbuf leaked: Criterion
 * ignores assertions made in .fini, so the check runs in the test itself.
 */
#define NET_TEST(suite, name)                                                                      \
	static void suite##_##name##_body(void);                                                   \
	Test(suite, name)                                                                          \
	{                                                                                          \
		suite##_##name##_body();                                                           \
		fx_expect_no_leak();                                                               \
	}                                                                                          \
	static void suite##_##name##_body(void)
/* (Re)builds fx from fx_if/fx_rt/fx_params/fx_pool. Returns net_ctx_init()'s result. */
int fx_init(void);
/* Adds port 1 (OUR_MAC1, OUR_IP1/24) and re-inits. */
void fx_two_ports(void);

/* Feeds a crafted frame to net_input() on PORT at fx_now. */
void fx_input_port(const void *frame, size_t len, uint16_t port);
static inline void fx_input(const void *frame, size_t len)
{
	fx_input_port(frame, len, 0);
}
void fx_advance_ms(uint64_t ms);

uint64_t fx_drops_total(void);
static inline uint64_t fx_drop(enum dp_drop d)
{
	return fx_stats.drop[d];
}
static inline uint64_t fx_count(enum dp_counter c)
{
	return fx_stats.c[c];
}
/* Asserts that exactly one drop happened, under REASON. */
void fx_expect_one_drop(enum dp_drop reason);

static inline uint8_t *out_frame(unsigned i)
{
	return rte_pktmbuf_mtod(fx_out[i].m, uint8_t *);
}
static inline size_t out_len(unsigned i)
{
	return rte_pktmbuf_pkt_len(fx_out[i].m);
}

/* Frame views (the IP header is assumed at offset 14). */
static inline struct rte_ether_hdr *f_eth(uint8_t *f)
{
	return (struct rte_ether_hdr *)f;
}
static inline struct rte_ipv4_hdr *f_ip(uint8_t *f)
{
	return (struct rte_ipv4_hdr *)(f + RTE_ETHER_HDR_LEN);
}
static inline void *f_l4(uint8_t *f)
{
	struct rte_ipv4_hdr *ip = f_ip(f);
	return (uint8_t *)ip + (ip->version_ihl & 0xf) * 4;
}
static inline struct rte_arp_hdr *f_arp(uint8_t *f)
{
	return (struct rte_arp_hdr *)(f + RTE_ETHER_HDR_LEN);
}

/*
 * Builders: write a complete frame (Ethernet to OUR_MAC from PEER_MAC,
 * checksums right) into F (FRAME_MAX bytes) and return its length.
 */
size_t mk_ip(uint8_t *f, uint32_t src, uint32_t dst, uint8_t proto, const void *l4, size_t l4_len);
size_t mk_icmp(uint8_t *f, uint32_t src, uint32_t dst, uint8_t type, uint8_t code, uint16_t ident,
	       uint16_t seq, const void *data, size_t n);
size_t mk_tcp(uint8_t *f, uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, uint32_t seq,
	      uint32_t ack, uint8_t flags, const void *data, size_t n);
size_t mk_udp(uint8_t *f, uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport,
	      const void *data, size_t n);
size_t mk_arp(uint8_t *f, uint16_t op, const struct rte_ether_addr *sha, uint32_t sip,
	      const struct rte_ether_addr *tha, uint32_t tip, const struct rte_ether_addr *eth_dst);
/* Inserts N bytes of IP options (NOPs then EOL) after the basic header; returns the new length. */
size_t add_ip_options(uint8_t *f, size_t len, unsigned n);
/* Recompute checksums after a test changed a field. */
void fix_ip_cksum(uint8_t *f);
void fix_l4_cksum(uint8_t *f);

/* Checks on a frame net produced. */
void expect_ipv4_frame(uint8_t *f, size_t len, uint8_t proto, uint32_t src, uint32_t dst);
bool l4_cksum_ok(uint8_t *f);
/* An IPv4 packet for net_ip_output(): a UDP datagram with headroom, from fx_pool. */
struct rte_mbuf *mk_out_packet(uint32_t src, uint32_t dst, uint16_t tag);

#endif
