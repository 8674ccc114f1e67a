/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * IPv4 for a host (RFC 791, RFC 1122 §3.2.1): validation of what we
 * receive, dispatch to ICMP/TCP/UDP, the routing table, and the output path
 * of the packets we originate.
 */
#include <errno.h>
#include <string.h>

#include <rte_ip.h>
#include <rte_mbuf.h>

#include "net_priv.h"

#define IP_IS_MULTICAST(h) (((h) >> 28) == 0xe) /* 224.0.0.0/4 */

int net_routes_init(struct net_ctx *n)
{
	unsigned k = 0;

	if (n->n_routes > NET_MAX_ROUTES)
		return -EINVAL;
	/*
	 * The on-link route of every address first, so they win over a configured
	 * route of the same length (RFC 1122 §3.3.1.1: a destination on a
	 * connected subnet is reached directly).
	 */
	for (unsigned i = 0; i < n->n_ifaces; i++) {
		const struct net_iface *ifc = &n->ifaces[i];
		for (unsigned a = 0; a < ifc->n_addrs; a++) {
			if (ifc->addrs[a].len > 32)
				return -EINVAL;
			n->rt[k++] = (struct net_route){
				.dst = ifc->addrs[a].addr & net_mask(ifc->addrs[a].len),
				.len = ifc->addrs[a].len,
				.via = 0,
				.port_id = ifc->port_id,
			};
		}
	}
	for (unsigned i = 0; i < n->n_routes; i++) {
		struct net_route r = n->routes[i];
		if (r.len > 32 || net_iface_get(n, r.port_id) == NULL)
			return -EINVAL;
		r.dst &= net_mask(r.len);
		n->rt[k++] = r;
	}
	/* Stable insertion sort, longest prefix first: lookup takes the first match. */
	for (unsigned i = 1; i < k; i++) {
		struct net_route r = n->rt[i];
		unsigned j = i;
		for (; j > 0 && n->rt[j - 1].len < r.len; j--)
			n->rt[j] = n->rt[j - 1];
		n->rt[j] = r;
	}
	n->n_rt = k;
	return 0;
}

bool net_route_lookup(const struct net_ctx *n, uint32_t dst, uint16_t *port, uint32_t *next_hop)
{
	for (unsigned i = 0; i < n->n_rt; i++) {
		const struct net_route *r = &n->rt[i];
		if (((dst ^ r->dst) & net_mask(r->len)) == 0) {
			*port = r->port_id;
			*next_hop = r->via ? r->via : dst;
			return true;
		}
	}
	return false;
}

int net_ip_output(struct net_ctx *n, struct rte_mbuf *m, uint32_t dst, uint64_t now)
{
	uint32_t h = rte_be_to_cpu_32(dst);
	uint16_t port;
	uint32_t next_hop;

	/*
	 * No loopback and no broadcast or multicast output: a destination ARP
	 * cannot resolve has no route here, rather than an ARP entry that would
	 * fail after three seconds.
	 */
	if (h == 0 || IP_IS_MULTICAST(h) || h == UINT32_MAX || net_addr_is_ours(n, dst) ||
	    !net_route_lookup(n, dst, &port, &next_hop)) {
		net_drop(n, m, DP_DROP_IPV4_NO_ROUTE);
		return -ENETUNREACH;
	}
	return net_arp_output(n, net_iface_get(n, port), next_hop, m, now);
}

uint32_t net_source_for(const struct net_ctx *n, uint32_t dst)
{
	uint16_t port;
	uint32_t next_hop;

	if (!net_route_lookup(n, dst, &port, &next_hop))
		return 0;
	return net_iface_src_for(net_iface_get(n, port), next_hop);
}

void net_ip_hdr_fill(struct net_ctx *n, struct rte_ipv4_hdr *ip, uint32_t src, uint32_t dst,
		     uint8_t proto, uint8_t tos, uint16_t l4_len)
{
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->type_of_service = tos;
	ip->total_length = rte_cpu_to_be_16((uint16_t)(sizeof(*ip) + l4_len));
	ip->packet_id = rte_cpu_to_be_16(n->ip_id++);
	ip->fragment_offset = 0;
	ip->time_to_live = NET_TTL;
	ip->next_proto_id = proto;
	ip->src_addr = src;
	ip->dst_addr = dst;
	ip->hdr_checksum = 0;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
}

struct rte_ipv4_hdr *net_reply_ip(struct net_ctx *n, const struct net_iface *ifc,
				  struct rte_mbuf *m, uint16_t l4_len)
{
	struct rte_ipv4_hdr *ip = net_ip_of(m);
	uint16_t opt = (uint16_t)(net_ip_hlen(ip) - sizeof(*ip));

	/*
	 * Options are not echoed back (RFC 1122 §3.2.2.6 would have record route
	 * and timestamp updated into an echo reply: we skip them, as on input).
	 * Sliding Ethernet + basic IP header over them keeps L4 where it is.
	 */
	if (opt > 0) {
		uint8_t *p = rte_pktmbuf_mtod(m, uint8_t *);
		memmove(p + opt, p, RTE_ETHER_HDR_LEN + sizeof(*ip));
		rte_pktmbuf_adj(m, opt);
		ip = net_ip_of(m);
	}
	rte_pktmbuf_trim(m, (uint16_t)(rte_pktmbuf_pkt_len(m) -
				       (RTE_ETHER_HDR_LEN + sizeof(*ip) + l4_len)));

	struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	rte_ether_addr_copy(&eth->src_addr, &eth->dst_addr);
	rte_ether_addr_copy(&ifc->mac, &eth->src_addr);

	/* the asker's TOS comes back with the answer (RFC 1349 §5.1) */
	net_ip_hdr_fill(n, ip, ip->dst_addr, ip->src_addr, ip->next_proto_id, ip->type_of_service,
			l4_len);
	/* Receive offload flags mean nothing for transmit. */
	m->ol_flags = 0;
	m->packet_type = 0;
	return ip;
}

uint16_t net_l4_cksum(const struct rte_ipv4_hdr *ip, const void *l4, uint16_t len)
{
	struct {
		rte_be32_t src;
		rte_be32_t dst;
		uint8_t zero;
		uint8_t proto;
		rte_be16_t len;
	} __rte_packed ph = {
		.src = ip->src_addr,
		.dst = ip->dst_addr,
		.zero = 0,
		.proto = ip->next_proto_id,
		.len = rte_cpu_to_be_16(len),
	};
	uint32_t sum = (uint32_t)rte_raw_cksum(&ph, sizeof(ph)) + rte_raw_cksum(l4, len);
	sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

bool net_ip_bad_source(const struct net_ctx *n, const struct net_iface *ifc, uint32_t src)
{
	uint32_t h = rte_be_to_cpu_32(src);
	uint8_t top = (uint8_t)(h >> 24);

	/*
	 * RFC 1122 §3.2.1.3: 0/8 ("this network"), 127/8 (loopback), 224/4
	 * (multicast) and 240/4 (reserved, with 255.255.255.255) never name a
	 * single remote host. Nor does a subnet broadcast, nor our own address.
	 */
	if (top == 0 || top == 127 || top >= 224)
		return true;
	for (unsigned i = 0; i < ifc->n_addrs; i++) {
		uint8_t len = ifc->addrs[i].len;
		/* RFC 3021: a /31 has no broadcast address; a /32 neither */
		if (len <= 30 && src == (ifc->addrs[i].addr | ~net_mask(len)))
			return true;
	}
	return net_addr_is_ours(n, src);
}

void net_ipv4_input(struct net_ctx *n, const struct net_iface *ifc, struct rte_mbuf *m,
		    uint64_t now)
{
	uint32_t l3_len = rte_pktmbuf_pkt_len(m) - RTE_ETHER_HDR_LEN;

	if (l3_len < sizeof(struct rte_ipv4_hdr)) {
		net_drop(n, m, DP_DROP_IPV4_TRUNCATED);
		return;
	}
	struct rte_ipv4_hdr *ip = net_ip_of(m);
	if ((ip->version_ihl >> 4) != IPVERSION) {
		net_drop(n, m, DP_DROP_IPV4_BAD_VERSION);
		return;
	}
	uint16_t hlen = net_ip_hlen(ip);
	if (hlen < sizeof(*ip) || hlen > l3_len) {
		net_drop(n, m, DP_DROP_IPV4_BAD_IHL);
		return;
	}
	uint16_t tot = rte_be_to_cpu_16(ip->total_length);
	if (tot < hlen || tot > l3_len) {
		net_drop(n, m, DP_DROP_IPV4_BAD_LENGTH);
		return;
	}
	/* RFC 791: total length is the datagram; the rest is Ethernet padding. */
	if (tot < l3_len)
		rte_pktmbuf_trim(m, (uint16_t)(l3_len - tot));

	uint64_t ck = m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK;
	if (ck == RTE_MBUF_F_RX_IP_CKSUM_BAD ||
	    (ck == RTE_MBUF_F_RX_IP_CKSUM_UNKNOWN && rte_raw_cksum(ip, hlen) != 0xffff)) {
		net_drop(n, m, DP_DROP_IPV4_BAD_CHECKSUM);
		return;
	}
	if (ip->time_to_live == 0) {
		net_drop(n, m, DP_DROP_IPV4_TTL_ZERO);
		return;
	}
	/* No reassembly: nothing we serve needs datagrams larger than the MTU. */
	if (ip->fragment_offset &
	    rte_cpu_to_be_16(RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)) {
		net_drop(n, m, DP_DROP_IPV4_FRAGMENT);
		return;
	}
	if (net_ip_bad_source(n, ifc, ip->src_addr)) {
		net_drop(n, m, DP_DROP_IPV4_BAD_SOURCE);
		return;
	}
	/* A host, not a router (RFC 1122 §3.2.1.3): only our unicast addresses on this port. */
	if (!net_addr_is_local(ifc, ip->dst_addr)) {
		net_drop(n, m, DP_DROP_IPV4_NOT_FOR_US);
		return;
	}
	/* RFC 1122 §3.2.1.8: options we do not implement are ignored, the datagram is not. */
	if (hlen > sizeof(*ip))
		dp_count(n->stats, DP_C_IPV4_OPTIONS_SKIPPED, 1);

	switch (ip->next_proto_id) {
	case IPPROTO_ICMP:
		net_icmp_input(n, ifc, m, now);
		break;
	case IPPROTO_TCP:
		net_tcp_input(n, ifc, m, now);
		break;
	case IPPROTO_UDP:
		net_udp_input(n, ifc, m, now);
		break;
	default:
		/* RFC 1122 §3.2.2.1: a host SHOULD say protocol unreachable */
		net_icmp_error(n, ifc, m, ICMP_DEST_UNREACH, ICMP_UNREACH_PROTO, now);
		net_drop(n, m, DP_DROP_IPV4_UNKNOWN_PROTO);
		break;
	}
}
