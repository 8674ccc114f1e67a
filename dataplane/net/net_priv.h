/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What the files of dataplane/net/ share with each other and with their unit
 * tests, and nobody else: per-layer entry points, address helpers and the
 * builders of the packets a host answers with.
 */
#ifndef MX_NET_PRIV_H
#define MX_NET_PRIV_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>

#include "net.h"

#define NET_TTL 64               /* RFC 1700 default TTL for what we originate */
#define NET_ICMP_ERROR_MAX 576   /* RFC 1812 §4.3.2.3: an ICMP error never exceeds this */
#define NET_PING_PAYLOAD 56      /* the classic ping(8) payload */

#define ICMP_DEST_UNREACH 3
#define ICMP_SOURCE_QUENCH 4
#define ICMP_REDIRECT 5
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAM_PROBLEM 12
#define ICMP_UNREACH_PROTO 2
#define ICMP_UNREACH_PORT 3

/* Network-order mask of a prefix length (0..32). */
static inline uint32_t net_mask(uint8_t len)
{
	return len == 0 ? 0 : rte_cpu_to_be_32(UINT32_MAX << (32 - len));
}

/* eth.c: interfaces, addresses and the way out */

/* The interface of PORT, or NULL when the ctx does not own that port. */
const struct net_iface *net_iface_get(const struct net_ctx *n, uint16_t port);
/* Whether IP (network order) is an address of IFC. */
bool net_addr_is_local(const struct net_iface *ifc, uint32_t ip);
/* Whether IP is an address of any interface of the ctx. */
bool net_addr_is_ours(const struct net_ctx *n, uint32_t ip);
/*
 * The source address to use on IFC towards NEXT_HOP (RFC 1122 §3.3.4.3: the
 * address of the subnet the next hop is on, else the first). 0 if IFC has none.
 */
uint32_t net_iface_src_for(const struct net_iface *ifc, uint32_t next_hop);
/* A fresh mbuf from n->pool, or NULL after counting MBUF_ALLOC_FAILED. */
struct rte_mbuf *net_alloc(struct net_ctx *n);
/*
 * Makes M safe to rewrite in place: returns M itself when nothing else shares
 * its data, else a private single-segment copy (M is freed). NULL when the
 * copy failed: M is freed and MBUF_ALLOC_FAILED counted.
 */
struct rte_mbuf *net_writable(struct net_ctx *n, struct rte_mbuf *m);
/* Hands a complete frame to the tx callback (which takes ownership). */
void net_send(struct net_ctx *n, uint16_t port, struct rte_mbuf *m);
/* Frees M and counts it under REASON: the one way net drops a packet. */
static inline void net_drop(struct net_ctx *n, struct rte_mbuf *m, enum dp_drop reason)
{
	dp_drop(n->stats, reason);
	rte_pktmbuf_free(m);
}

/* arp.c: the per-worker neighbour table (RFC 826) */

/* Allocates the table sized by n->params. Returns 0 or -ENOMEM. */
int net_arp_init(struct net_ctx *n);
/* Frees the table and the packets waiting in it (not counted: shutdown is no drop). */
void net_arp_fini(struct net_ctx *n);
/* An ARP frame (m at its Ethernet header) received on IFC. Takes ownership. */
void net_arp_input(struct net_ctx *n, const struct net_iface *ifc, struct rte_mbuf *m,
		   uint64_t now);
/*
 * Sends the IPv4 packet M (no Ethernet header yet) to NEXT_HOP on IFC, or
 * queues it until the next hop answers. Takes ownership. Returns 0 when sent
 * or queued, -ENOBUFS when dropped (counted).
 */
int net_arp_output(struct net_ctx *n, const struct net_iface *ifc, uint32_t next_hop,
		   struct rte_mbuf *m, uint64_t now);

/* ipv4.c */

/* Builds n->rt from the addresses and the routes (at most NET_MAX_ROUTES). 0 or -EINVAL. */
int net_routes_init(struct net_ctx *n);
/*
 * Longest-prefix match for DST: fills the output port and the next hop
 * (the gateway, or DST itself when on-link). Returns false when no route.
 */
bool net_route_lookup(const struct net_ctx *n, uint32_t dst, uint16_t *port, uint32_t *next_hop);
/* A received IPv4 frame (m at its Ethernet header) on IFC. Takes ownership. */
void net_ipv4_input(struct net_ctx *n, const struct net_iface *ifc, struct rte_mbuf *m,
		    uint64_t now);
/* Fills a 20-byte IPv4 header (addresses in network order) with its checksum. */
void net_ip_hdr_fill(struct net_ctx *n, struct rte_ipv4_hdr *ip, uint32_t src, uint32_t dst,
		     uint8_t proto, uint8_t tos, uint16_t l4_len);
/*
 * Turns the received frame M into the head of a reply to its sender, in place:
 * IP options dropped, frame cut to 14 + 20 + L4_LEN bytes (the L4 header
 * stays where it was), MACs and addresses swapped, TTL reset, IP checksum
 * done. The caller then writes the L4 part. Returns the IPv4 header.
 */
struct rte_ipv4_hdr *net_reply_ip(struct net_ctx *n, const struct net_iface *ifc,
				  struct rte_mbuf *m, uint16_t l4_len);
/*
 * The TCP/UDP checksum of LEN bytes at L4 under IP's pseudo header, folded
 * and complemented: 0 when verifying a segment whose checksum field is set.
 */
uint16_t net_l4_cksum(const struct rte_ipv4_hdr *ip, const void *l4, uint16_t len);
/* Whether SRC may not be the source of a datagram received on IFC (RFC 1122 §3.2.1.3). */
bool net_ip_bad_source(const struct net_ctx *n, const struct net_iface *ifc, uint32_t src);

/* icmp.c */

/* An ICMP message to us; m at its Ethernet header, IP header already valid. Takes ownership. */
void net_icmp_input(struct net_ctx *n, const struct net_iface *ifc, struct rte_mbuf *m,
		    uint64_t now);
/*
 * Sends an ICMP error of TYPE/CODE about the received frame M (at its
 * Ethernet header, IP header valid) back to its sender, unless RFC 1122
 * §3.2.2 forbids it or error_rl says no (ICMP_RATE_LIMITED). Never takes M.
 */
void net_icmp_error(struct net_ctx *n, const struct net_iface *ifc, const struct rte_mbuf *m,
		    uint8_t type, uint8_t code, uint64_t now);

/* l4.c: TCP and UDP to a host with nothing listening yet */

void net_tcp_input(struct net_ctx *n, const struct net_iface *ifc, struct rte_mbuf *m,
		   uint64_t now);
void net_udp_input(struct net_ctx *n, const struct net_iface *ifc, struct rte_mbuf *m,
		   uint64_t now);

/* Header accessors for a single-segment frame at its Ethernet header. */
static inline struct rte_ipv4_hdr *net_ip_of(struct rte_mbuf *m)
{
	return rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *, RTE_ETHER_HDR_LEN);
}

static inline uint16_t net_ip_hlen(const struct rte_ipv4_hdr *ip)
{
	return (uint16_t)((ip->version_ihl & RTE_IPV4_HDR_IHL_MASK) * RTE_IPV4_IHL_MULTIPLIER);
}

/* Bytes of IP payload (valid once net_ipv4_input trimmed the frame to the total length). */
static inline uint16_t net_l4_len(const struct rte_ipv4_hdr *ip)
{
	return (uint16_t)(rte_be_to_cpu_16(ip->total_length) - net_ip_hlen(ip));
}

#endif
