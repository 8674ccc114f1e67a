/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ICMP for a host (RFC 792, RFC 1122 §3.2.2): echo replies, the errors we
 * receive (kept for the TCP layer), the errors we send with the limits the
 * RFCs put on them, and the operator's ping.
 */
#include <errno.h>
#include <string.h>

#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_mbuf.h>

#include "net_priv.h"

#define ICMP_HDR_LEN sizeof(struct rte_icmp_hdr) /* type, code, checksum and 4 more bytes */
#define ICMP_QUOTE_MIN 8                         /* RFC 792: "64 bits of data" */

/* Query types (RFC 792, RFC 1256); every other type reports an error. */
static bool icmp_is_query(uint8_t type)
{
	switch (type) {
	case RTE_IP_ICMP_ECHO_REPLY:
	case RTE_IP_ICMP_ECHO_REQUEST:
	case 9:  /* router advertisement */
	case 10: /* router solicitation */
	case 13: /* timestamp */
	case 14: /* timestamp reply */
	case 15: /* information request */
	case 16: /* information reply */
	case 17: /* address mask request */
	case 18: /* address mask reply */
		return true;
	default:
		return false;
	}
}

static uint64_t elapsed(uint64_t now, uint64_t then)
{
	return now > then ? now - then : 0;
}

/* RFC 792 echo: the same message back with type 0, straight to the frame's sender. */
static void icmp_echo(struct net_ctx *n, const struct net_iface *ifc, struct rte_mbuf *m,
		      uint16_t len, uint64_t now)
{
	dp_count(n->stats, DP_C_ICMP_ECHO_IN, 1);
	if (!tbucket_take(&n->echo_rl, now)) {
		net_drop(n, m, DP_DROP_ICMP_RATE_LIMITED);
		return;
	}
	m = net_writable(n, m);
	if (m == NULL)
		return;
	struct rte_ipv4_hdr *ip = net_reply_ip(n, ifc, m, len);
	struct rte_icmp_hdr *icmp = (struct rte_icmp_hdr *)(ip + 1);
	icmp->icmp_type = RTE_IP_ICMP_ECHO_REPLY;
	icmp->icmp_code = 0;
	icmp->icmp_cksum = 0;
	icmp->icmp_cksum = (uint16_t)~rte_raw_cksum(icmp, len);
	net_send(n, ifc->port_id, m);
	dp_count(n->stats, DP_C_ICMP_ECHO_REPLIES_SENT, 1);
}

/* An answer to the operator's ping, or nobody's. */
static void icmp_echo_reply(struct net_ctx *n, struct rte_mbuf *m, const struct rte_ipv4_hdr *ip,
			    const struct rte_icmp_hdr *icmp, uint64_t now)
{
	struct net_ping *p = &n->ping;
	uint16_t ident = rte_be_to_cpu_16(icmp->icmp_ident);
	uint16_t seq = rte_be_to_cpu_16(icmp->icmp_seq_nb);

	if (!p->active || ident != p->ident || ip->src_addr != p->dst) {
		net_drop(n, m, DP_DROP_ICMP_UNHANDLED);
		return;
	}
	dp_count(n->stats, DP_C_ICMP_ECHO_REPLIES_IN, 1);
	/* a duplicate keeps the first RTT */
	if (seq < p->sent && p->rtt_us[seq] == UINT32_MAX) {
		uint64_t d = elapsed(now, p->sent_tsc[seq]);
		uint64_t us = d / n->hz * 1000000 + d % n->hz * 1000000 / n->hz;
		p->rtt_us[seq] = us >= UINT32_MAX ? UINT32_MAX - 1 : (uint32_t)us;
		p->received++;
	}
	rte_pktmbuf_free(m);
}

/*
 * Where the errors about our own datagrams go. The TCP layer (dataplane/tcp/)
 * will hook in here: unreachables abort a connecting attempt, "fragmentation
 * needed" lowers the MSS, after the checks of RFC 5927 §4.1 on the quoted
 * sequence number. INNER is the quoted IPv4 header, LEN the bytes quoted.
 */
static void icmp_error_deliver(struct net_ctx *n, uint8_t type, uint8_t code,
			       const struct rte_ipv4_hdr *inner, uint16_t len, uint64_t now)
{
	if (inner->next_proto_id == IPPROTO_TCP && n->upper.tcp_icmp_error)
		n->upper.tcp_icmp_error(n->upper.arg, type, code, inner, len, now);
}

void net_icmp_input(struct net_ctx *n, const struct net_iface *ifc, struct rte_mbuf *m,
		    uint64_t now)
{
	struct rte_ipv4_hdr *ip = net_ip_of(m);
	uint16_t len = net_l4_len(ip);
	struct rte_icmp_hdr *icmp = (struct rte_icmp_hdr *)((uint8_t *)ip + net_ip_hlen(ip));

	if (len < ICMP_HDR_LEN || rte_raw_cksum(icmp, len) != 0xffff) {
		net_drop(n, m, DP_DROP_ICMP_MALFORMED);
		return;
	}
	switch (icmp->icmp_type) {
	case RTE_IP_ICMP_ECHO_REQUEST:
		icmp_echo(n, ifc, m, len, now);
		return;
	case RTE_IP_ICMP_ECHO_REPLY:
		icmp_echo_reply(n, m, ip, icmp, now);
		return;
	case ICMP_DEST_UNREACH:
	case ICMP_SOURCE_QUENCH:
	case ICMP_TIME_EXCEEDED:
	case ICMP_PARAM_PROBLEM: {
		/* RFC 792: the internet header plus 64 bits of the original datagram. */
		const struct rte_ipv4_hdr *inner = (const struct rte_ipv4_hdr *)(icmp + 1);
		uint16_t quoted = (uint16_t)(len - ICMP_HDR_LEN);
		if (quoted < sizeof(*inner) + ICMP_QUOTE_MIN ||
		    (inner->version_ihl >> 4) != IPVERSION || net_ip_hlen(inner) < sizeof(*inner) ||
		    quoted < net_ip_hlen(inner) + ICMP_QUOTE_MIN) {
			net_drop(n, m, DP_DROP_ICMP_MALFORMED);
			return;
		}
		dp_count(n->stats, DP_C_ICMP_ERRORS_IN, 1);
		icmp_error_deliver(n, icmp->icmp_type, icmp->icmp_code, inner, quoted, now);
		rte_pktmbuf_free(m);
		return;
	}
	default:
		/* redirects (RFC 1122 §3.2.2.2) too: our routes are configured, not learned */
		net_drop(n, m, DP_DROP_ICMP_UNHANDLED);
		return;
	}
}

void net_icmp_error(struct net_ctx *n, const struct net_iface *ifc, const struct rte_mbuf *m,
		    uint8_t type, uint8_t code, uint64_t now)
{
	const struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);
	const struct rte_ipv4_hdr *ip =
		rte_pktmbuf_mtod_offset(m, const struct rte_ipv4_hdr *, RTE_ETHER_HDR_LEN);
	uint16_t hlen = net_ip_hlen(ip);
	uint16_t tot = rte_be_to_cpu_16(ip->total_length);

	/*
	 * RFC 1122 §3.2.2: no error about an ICMP error, a datagram to an IP or
	 * link-layer broadcast or multicast, a fragment other than the first, or
	 * one whose source is not a single host.
	 */
	if (rte_is_multicast_ether_addr(&eth->dst_addr) || !net_addr_is_local(ifc, ip->dst_addr) ||
	    net_ip_bad_source(n, ifc, ip->src_addr) ||
	    (ip->fragment_offset & rte_cpu_to_be_16(RTE_IPV4_HDR_OFFSET_MASK)))
		return;
	if (ip->next_proto_id == IPPROTO_ICMP &&
	    (tot <= hlen || !icmp_is_query(((const uint8_t *)ip)[hlen])))
		return;
	/* The input datagram keeps its own drop reason; this counts the error not sent. */
	if (!tbucket_take(&n->error_rl, now)) {
		dp_drop(n->stats, DP_DROP_ICMP_RATE_LIMITED);
		return;
	}

	/* As much of the datagram as fits in 576 bytes (RFC 1812 §4.3.2.3; RFC 1122 asks 8+). */
	uint16_t quote = tot;
	if (quote > NET_ICMP_ERROR_MAX - sizeof(struct rte_ipv4_hdr) - ICMP_HDR_LEN)
		quote = NET_ICMP_ERROR_MAX - sizeof(struct rte_ipv4_hdr) - ICMP_HDR_LEN;
	uint16_t l4_len = (uint16_t)(ICMP_HDR_LEN + quote);

	struct rte_mbuf *r = net_alloc(n);
	if (r == NULL)
		return;
	struct rte_ether_hdr *reth = (struct rte_ether_hdr *)rte_pktmbuf_append(
		r, (uint16_t)(RTE_ETHER_HDR_LEN + sizeof(struct rte_ipv4_hdr) + l4_len));
	if (reth == NULL) {
		net_drop(n, r, DP_DROP_MBUF_ALLOC_FAILED);
		return;
	}
	rte_ether_addr_copy(&eth->src_addr, &reth->dst_addr);
	rte_ether_addr_copy(&ifc->mac, &reth->src_addr);
	reth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);

	struct rte_ipv4_hdr *rip = (struct rte_ipv4_hdr *)(reth + 1);
	struct rte_icmp_hdr *icmp = (struct rte_icmp_hdr *)(rip + 1);
	icmp->icmp_type = type;
	icmp->icmp_code = code;
	icmp->icmp_cksum = 0;
	icmp->icmp_ident = 0; /* "unused" for the errors we send */
	icmp->icmp_seq_nb = 0;
	memcpy(icmp + 1, ip, quote);
	icmp->icmp_cksum = (uint16_t)~rte_raw_cksum(icmp, l4_len);
	net_ip_hdr_fill(n, rip, ip->dst_addr, ip->src_addr, IPPROTO_ICMP, 0, l4_len);

	net_send(n, ifc->port_id, r);
	if (type == ICMP_DEST_UNREACH)
		dp_count(n->stats, DP_C_ICMP_UNREACH_SENT, 1);
}

int net_ping_start(struct net_ctx *n, uint32_t dst, uint16_t ident)
{
	if (dst == 0)
		return -EINVAL;
	memset(&n->ping, 0, sizeof(n->ping));
	n->ping.active = true;
	n->ping.dst = dst;
	n->ping.ident = ident;
	for (unsigned i = 0; i < NET_PING_MAX; i++)
		n->ping.rtt_us[i] = UINT32_MAX;
	return 0;
}

int net_ping_send(struct net_ctx *n, uint64_t now)
{
	struct net_ping *p = &n->ping;
	uint16_t l4_len = ICMP_HDR_LEN + NET_PING_PAYLOAD;
	uint16_t port;
	uint32_t next_hop, src = 0;

	if (!p->active)
		return -EINVAL;
	if (p->sent >= NET_PING_MAX)
		return -ENOSPC;
	if (net_route_lookup(n, p->dst, &port, &next_hop))
		src = net_iface_src_for(net_iface_get(n, port), next_hop);

	struct rte_mbuf *m = net_alloc(n);
	if (m == NULL)
		return -ENOBUFS;
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)rte_pktmbuf_append(
		m, (uint16_t)(sizeof(struct rte_ipv4_hdr) + l4_len));
	if (ip == NULL) {
		net_drop(n, m, DP_DROP_MBUF_ALLOC_FAILED);
		return -ENOBUFS;
	}
	uint16_t seq = p->sent++;
	struct rte_icmp_hdr *icmp = (struct rte_icmp_hdr *)(ip + 1);
	uint8_t *data = (uint8_t *)(icmp + 1);
	icmp->icmp_type = RTE_IP_ICMP_ECHO_REQUEST;
	icmp->icmp_code = 0;
	icmp->icmp_cksum = 0;
	icmp->icmp_ident = rte_cpu_to_be_16(p->ident);
	icmp->icmp_seq_nb = rte_cpu_to_be_16(seq);
	for (unsigned i = 0; i < NET_PING_PAYLOAD; i++)
		data[i] = (uint8_t)i;
	icmp->icmp_cksum = (uint16_t)~rte_raw_cksum(icmp, l4_len);
	net_ip_hdr_fill(n, ip, src, p->dst, IPPROTO_ICMP, 0, l4_len);
	p->sent_tsc[seq] = now;

	int rc = net_ip_output(n, m, p->dst, now);
	if (rc == 0)
		dp_count(n->stats, DP_C_ICMP_ECHO_REQUESTS_SENT, 1);
	return rc;
}
