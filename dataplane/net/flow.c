/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Which worker a received frame belongs to, decided before any worker
 * processes it: the tuple RSS would have hashed, read from bytes that are
 * not trusted, so every length is checked against the first segment.
 */
#include <string.h>

#include <rte_ether.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include "net_priv.h"

enum net_flow_kind net_flow_classify(const struct rte_mbuf *m, struct rte_ipv4_tuple *t,
				     uint16_t *ident)
{
	uint32_t have = rte_pktmbuf_data_len(m);

	if (have < RTE_ETHER_HDR_LEN + sizeof(struct rte_ipv4_hdr))
		return NET_FLOW_LOCAL;
	/* Read byte-wise: nothing here assumes even the alignment of the frame. */
	rte_be16_t type;
	memcpy(&type, rte_pktmbuf_mtod_offset(m, const uint8_t *, 2 * RTE_ETHER_ADDR_LEN),
	       sizeof(type));
	if (type != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4))
		return NET_FLOW_LOCAL;

	const struct rte_ipv4_hdr *ip =
		rte_pktmbuf_mtod_offset(m, const struct rte_ipv4_hdr *, RTE_ETHER_HDR_LEN);
	uint32_t hlen = (ip->version_ihl & RTE_IPV4_HDR_IHL_MASK) * RTE_IPV4_IHL_MULTIPLIER;
	uint32_t tot = rte_be_to_cpu_16(ip->total_length);
	if ((ip->version_ihl >> 4) != IPVERSION || hlen < sizeof(*ip) || tot < hlen ||
	    tot > have - RTE_ETHER_HDR_LEN)
		return NET_FLOW_LOCAL;
	/* Only the first fragment has ports, and we reassemble none. */
	if (ip->fragment_offset & rte_cpu_to_be_16(RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK))
		return NET_FLOW_LOCAL;

	const uint8_t *l4 = (const uint8_t *)ip + hlen;
	uint32_t l4_len = tot - hlen;
	switch (ip->next_proto_id) {
	case IPPROTO_TCP:
		if (l4_len < sizeof(struct rte_tcp_hdr))
			return NET_FLOW_LOCAL;
		break;
	case IPPROTO_UDP:
		if (l4_len < sizeof(struct rte_udp_hdr))
			return NET_FLOW_LOCAL;
		break;
	case IPPROTO_ICMP: {
		const struct rte_icmp_hdr *icmp = (const struct rte_icmp_hdr *)l4;
		if (l4_len < sizeof(*icmp) || icmp->icmp_type != RTE_IP_ICMP_ECHO_REPLY)
			return NET_FLOW_LOCAL;
		*ident = rte_be_to_cpu_16(icmp->icmp_ident);
		return NET_FLOW_ECHO_REPLY;
	}
	default:
		return NET_FLOW_LOCAL;
	}

	/* TCP and UDP both start with the two ports. */
	const struct rte_udp_hdr *ports = (const struct rte_udp_hdr *)l4;
	t->src_addr = rte_be_to_cpu_32(ip->src_addr);
	t->dst_addr = rte_be_to_cpu_32(ip->dst_addr);
	t->sport = rte_be_to_cpu_16(ports->src_port);
	t->dport = rte_be_to_cpu_16(ports->dst_port);
	return NET_FLOW_L4;
}
