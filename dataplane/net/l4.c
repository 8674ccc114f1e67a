/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * TCP and UDP at the door: validation, then the answers a host owes for a
 * port nobody listens on (a RST, an ICMP port unreachable). The TCP stack
 * and UDP listeners will take their segments before those fallbacks.
 */
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include "net_priv.h"

#define TCP_HDR_LEN sizeof(struct rte_tcp_hdr)

/* Whether the L4 checksum is right: trusted from the NIC when it checked, else computed. */
static bool l4_cksum_ok(const struct rte_mbuf *m, const struct rte_ipv4_hdr *ip, const void *l4,
			uint16_t len)
{
	uint64_t ck = m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK;
	if (ck == RTE_MBUF_F_RX_L4_CKSUM_BAD)
		return false;
	if (ck != RTE_MBUF_F_RX_L4_CKSUM_UNKNOWN)
		return true;
	return net_l4_cksum(ip, l4, len) == 0;
}

/*
 * RFC 9293 §3.10.7.1, state CLOSED: a segment without RST is answered with a
 * RST the sender will find acceptable; one with RST is dropped unanswered.
 * Built in place over the segment, back to the frame's sender.
 */
static void tcp_closed_port_reset(struct net_ctx *n, const struct net_iface *ifc,
				  struct rte_mbuf *m, struct rte_tcp_hdr *th, uint32_t seg_len)
{
	if (th->tcp_flags & RTE_TCP_RST_FLAG) {
		net_drop(n, m, DP_DROP_TCP_RST_IN);
		return;
	}
	uint8_t flags = th->tcp_flags;
	uint32_t seq = rte_be_to_cpu_32(th->sent_seq);
	rte_be32_t ack = th->recv_ack;
	rte_be16_t sport = th->src_port;
	rte_be16_t dport = th->dst_port;

	m = net_writable(n, m);
	if (m == NULL)
		return;
	struct rte_ipv4_hdr *ip = net_reply_ip(n, ifc, m, TCP_HDR_LEN);
	th = (struct rte_tcp_hdr *)(ip + 1);
	th->src_port = dport;
	th->dst_port = sport;
	if (flags & RTE_TCP_ACK_FLAG) {
		/* <SEQ=SEG.ACK><CTL=RST> */
		th->sent_seq = ack;
		th->recv_ack = 0;
		th->tcp_flags = RTE_TCP_RST_FLAG;
	} else {
		/* <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>; SYN and FIN each count one */
		seg_len += !!(flags & RTE_TCP_SYN_FLAG) + !!(flags & RTE_TCP_FIN_FLAG);
		th->sent_seq = 0;
		th->recv_ack = rte_cpu_to_be_32(seq + seg_len);
		th->tcp_flags = RTE_TCP_RST_FLAG | RTE_TCP_ACK_FLAG;
	}
	th->data_off = (TCP_HDR_LEN / 4) << 4;
	th->rx_win = 0;
	th->tcp_urp = 0;
	th->cksum = 0;
	th->cksum = rte_ipv4_udptcp_cksum(ip, th);
	net_send(n, ifc->port_id, m);
	dp_count(n->stats, DP_C_TCP_RST_SENT, 1);
}

void net_tcp_input(struct net_ctx *n, const struct net_iface *ifc, struct rte_mbuf *m,
		   uint64_t now)
{
	struct rte_ipv4_hdr *ip = net_ip_of(m);
	uint16_t len = net_l4_len(ip);
	struct rte_tcp_hdr *th = (struct rte_tcp_hdr *)((uint8_t *)ip + net_ip_hlen(ip));

	dp_count(n->stats, DP_C_TCP_IN, 1);
	if (len < TCP_HDR_LEN) {
		net_drop(n, m, DP_DROP_TCP_MALFORMED);
		return;
	}
	uint16_t doff = (uint16_t)((th->data_off >> 4) * 4);
	if (doff < TCP_HDR_LEN || doff > len || !l4_cksum_ok(m, ip, th, len)) {
		net_drop(n, m, DP_DROP_TCP_MALFORMED);
		return;
	}
	if (n->upper.tcp_input) {
		/* The stack owns connections, listeners and the RST for closed ports. */
		rte_pktmbuf_adj(m, (uint16_t)((uint8_t *)ip - rte_pktmbuf_mtod(m, uint8_t *)));
		m->ol_flags |= RTE_MBUF_F_RX_L4_CKSUM_GOOD; /* verified just above */
		n->upper.tcp_input(n->upper.arg, m, now);
		return;
	}
	tcp_closed_port_reset(n, ifc, m, th, (uint32_t)(len - doff));
}

/* RFC 1122 §4.1.3.1: a datagram for a port nobody listens on gets a port unreachable. */
static void udp_no_listener(struct net_ctx *n, const struct net_iface *ifc, struct rte_mbuf *m,
			    uint64_t now)
{
	net_icmp_error(n, ifc, m, ICMP_DEST_UNREACH, ICMP_UNREACH_PORT, now);
	net_drop(n, m, DP_DROP_UDP_NO_LISTENER);
}

void net_udp_input(struct net_ctx *n, const struct net_iface *ifc, struct rte_mbuf *m,
		   uint64_t now)
{
	struct rte_ipv4_hdr *ip = net_ip_of(m);
	uint16_t len = net_l4_len(ip);
	struct rte_udp_hdr *uh = (struct rte_udp_hdr *)((uint8_t *)ip + net_ip_hlen(ip));

	dp_count(n->stats, DP_C_UDP_IN, 1);
	if (len < sizeof(*uh)) {
		net_drop(n, m, DP_DROP_UDP_MALFORMED);
		return;
	}
	/* RFC 768: the UDP length may be shorter than the IP payload, never longer. */
	uint16_t ulen = rte_be_to_cpu_16(uh->dgram_len);
	if (ulen < sizeof(*uh) || ulen > len ||
	    (uh->dgram_cksum != 0 && !l4_cksum_ok(m, ip, uh, ulen))) {
		net_drop(n, m, DP_DROP_UDP_MALFORMED);
		return;
	}
	/* UDP listeners (none yet) take their datagrams here. */
	udp_no_listener(n, ifc, m, now);
}
