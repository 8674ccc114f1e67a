/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The bottom of the network layer: the checks every received frame passes
 * before ARP or IPv4 sees it, the dispatch on ethertype, the ctx lifecycle,
 * and the few helpers every layer uses to get a buffer and send a frame.
 */
#include <errno.h>
#include <string.h>

#include <rte_ether.h>
#include <rte_mbuf.h>
#include <rte_random.h>

#include "net_priv.h"

const struct net_iface *net_iface_get(const struct net_ctx *n, uint16_t port)
{
	for (unsigned i = 0; i < n->n_ifaces; i++)
		if (n->ifaces[i].port_id == port)
			return &n->ifaces[i];
	return NULL;
}

bool net_addr_is_local(const struct net_iface *ifc, uint32_t ip)
{
	for (unsigned i = 0; i < ifc->n_addrs; i++)
		if (ifc->addrs[i].addr == ip)
			return true;
	return false;
}

bool net_addr_is_ours(const struct net_ctx *n, uint32_t ip)
{
	for (unsigned i = 0; i < n->n_ifaces; i++)
		if (net_addr_is_local(&n->ifaces[i], ip))
			return true;
	return false;
}

uint32_t net_iface_src_for(const struct net_iface *ifc, uint32_t next_hop)
{
	if (ifc->n_addrs == 0)
		return 0;
	for (unsigned i = 0; i < ifc->n_addrs; i++) {
		uint32_t mask = net_mask(ifc->addrs[i].len);
		if (((ifc->addrs[i].addr ^ next_hop) & mask) == 0)
			return ifc->addrs[i].addr;
	}
	return ifc->addrs[0].addr;
}

struct rte_mbuf *net_alloc(struct net_ctx *n)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(n->pool);
	if (m == NULL)
		dp_drop(n->stats, DP_DROP_MBUF_ALLOC_FAILED);
	return m;
}

struct rte_mbuf *net_writable(struct net_ctx *n, struct rte_mbuf *m)
{
	if (RTE_MBUF_DIRECT(m) && rte_mbuf_refcnt_read(m) == 1)
		return m;
	struct rte_mbuf *c = rte_pktmbuf_copy(m, n->pool, 0, UINT32_MAX);
	rte_pktmbuf_free(m);
	if (c != NULL && c->nb_segs > 1) {
		rte_pktmbuf_free(c);
		c = NULL;
	}
	if (c == NULL)
		dp_drop(n->stats, DP_DROP_MBUF_ALLOC_FAILED);
	return c;
}

void net_send(struct net_ctx *n, uint16_t port, struct rte_mbuf *m)
{
	m->port = port;
	n->tx(n->cb_arg, port, m);
}

static bool params_valid(const struct net_ctx *n)
{
	if (n->pool == NULL || n->stats == NULL || n->tx == NULL || n->hz == 0)
		return false;
	if (n->n_ifaces > NET_MAX_IFACES || (n->n_ifaces > 0 && n->ifaces == NULL))
		return false;
	if (n->n_routes > 0 && n->routes == NULL)
		return false;
	for (unsigned i = 0; i < n->n_ifaces; i++) {
		if (n->ifaces[i].n_addrs > NET_MAX_ADDRS)
			return false;
		/* a port listed twice would make net_iface_get() ambiguous */
		for (unsigned j = 0; j < i; j++)
			if (n->ifaces[j].port_id == n->ifaces[i].port_id)
				return false;
	}
	return true;
}

int net_ctx_init(struct net_ctx *n, uint64_t now)
{
	int rc;

	n->arp = NULL;
	if (!params_valid(n))
		return -EINVAL;
	rc = net_routes_init(n);
	if (rc != 0)
		return rc;
	rc = net_arp_init(n);
	if (rc != 0)
		return rc;
	tbucket_init(&n->echo_rl, n->params.icmp_echo_rate, n->params.icmp_echo_burst, n->hz, now);
	tbucket_init(&n->error_rl, n->params.icmp_error_rate, n->params.icmp_error_burst, n->hz,
		     now);
	memset(&n->ping, 0, sizeof(n->ping));
	/* workers share source addresses: start their ID sequences apart */
	n->ip_id = (uint16_t)rte_rand();
	return 0;
}

void net_ctx_fini(struct net_ctx *n)
{
	net_arp_fini(n);
}

/*
 * A frame comes from one station (IEEE 802.3 §3.2.3: the source address is an
 * individual address). Answering a group source would broadcast our reply.
 */
static bool eth_src_ok(const struct rte_ether_hdr *eth)
{
	return !rte_is_multicast_ether_addr(&eth->src_addr);
}

void net_input(struct net_ctx *n, struct rte_mbuf *m, uint64_t now)
{
	if (rte_pktmbuf_pkt_len(m) < RTE_ETHER_HDR_LEN) {
		net_drop(n, m, DP_DROP_ETH_RUNT);
		return;
	}
	const struct net_iface *ifc = net_iface_get(n, m->port);
	if (ifc == NULL) {
		/* not a port of this ctx: nothing here can be addressed to us */
		net_drop(n, m, DP_DROP_ETH_NOT_FOR_US);
		return;
	}
	uint32_t mtu = ifc->mtu ? ifc->mtu : RTE_ETHER_MTU;
	/* Chains are never parsed: every header below is read from the first segment. */
	if (m->nb_segs > 1 || rte_pktmbuf_pkt_len(m) > mtu + RTE_ETHER_HDR_LEN) {
		net_drop(n, m, DP_DROP_ETH_GIANT);
		return;
	}

	const struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);
	if (!rte_is_same_ether_addr(&eth->dst_addr, &ifc->mac) &&
	    !rte_is_broadcast_ether_addr(&eth->dst_addr)) {
		net_drop(n, m, DP_DROP_ETH_NOT_FOR_US);
		return;
	}
	if (!eth_src_ok(eth)) {
		net_drop(n, m, DP_DROP_ETH_BAD_SOURCE);
		return;
	}

	uint16_t type = rte_be_to_cpu_16(eth->ether_type);
	/* A NIC that stripped a tag still means the frame was tagged: no VLAN is configured. */
	if (type == RTE_ETHER_TYPE_VLAN || type == RTE_ETHER_TYPE_QINQ ||
	    (m->ol_flags & RTE_MBUF_F_RX_VLAN_STRIPPED)) {
		net_drop(n, m, DP_DROP_ETH_VLAN);
		return;
	}
	switch (type) {
	case RTE_ETHER_TYPE_ARP:
		dp_count(n->stats, DP_C_ARP_IN, 1);
		net_arp_input(n, ifc, m, now);
		break;
	case RTE_ETHER_TYPE_IPV4:
		dp_count(n->stats, DP_C_IPV4_IN, 1);
		net_ipv4_input(n, ifc, m, now);
		break;
	default:
		net_drop(n, m, DP_DROP_ETH_UNKNOWN_TYPE);
		break;
	}
}
