/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ARP (RFC 826) for one worker: a bounded neighbour table, answers for our
 * addresses, resolution with a short queue of waiting packets, retries,
 * aging, and gratuitous announcements (RFC 5227 §3).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <rte_arp.h>
#include <rte_ether.h>
#include <rte_mbuf.h>
#include <rte_random.h>

#include "net_priv.h"

#define ARP_BUCKET_BITS 11 /* twice the entries: chains stay short */
#define ARP_BUCKETS (1u << ARP_BUCKET_BITS)
#define ARP_NIL UINT16_MAX
#define ARP_PENDING_DEFAULT 8
#define ARP_PENDING_CAP 64
#define ARP_TIMEOUT_DEFAULT_S 60
#define ARP_RETRIES_DEFAULT 3
#define ARP_FRAME_LEN (RTE_ETHER_HDR_LEN + sizeof(struct rte_arp_hdr))

enum arp_state {
	ARP_ST_FREE,       /* on the free list */
	ARP_ST_INCOMPLETE, /* request sent, packets may wait in the pending queue */
	ARP_ST_RESOLVED,   /* mac is good; may be re-probed by unicast once stale */
};

struct arp_entry {
	uint32_t ip; /* network order */
	uint16_t port;
	uint16_t next; /* next in the hash chain, or in the free list */
	uint8_t state;
	uint8_t tries;      /* requests sent for the current resolution or refresh */
	uint16_t n_pending; /* packets waiting, oldest first */
	struct rte_ether_addr mac;
	uint64_t confirmed; /* TSC of the last answer (creation while incomplete) */
	uint64_t used;      /* TSC of the last packet sent through the entry */
	uint64_t last_req;  /* TSC of the last request we sent */
};

struct arp_table {
	uint64_t timeout; /* TSC ticks a confirmation is trusted */
	unsigned pending_max;
	unsigned retries;
	unsigned n_used;
	uint32_t seed; /* per table, so chains cannot be aimed at from the wire */
	uint16_t free_head;
	uint16_t bucket[ARP_BUCKETS];
	struct arp_entry e[NET_ARP_ENTRIES];
	struct rte_mbuf *pending[]; /* pending_max slots per entry */
};

static const struct rte_ether_addr arp_bcast = {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
static const struct rte_ether_addr arp_zero;

static inline uint64_t elapsed(uint64_t now, uint64_t then)
{
	return now > then ? now - then : 0;
}

static unsigned arp_hash(const struct arp_table *t, uint16_t port, uint32_t ip)
{
	/* murmur3 finaliser: every input bit reaches the top bits we keep */
	uint32_t h = (ip ^ t->seed) + ((uint32_t)port << 16);
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	h ^= h >> 16;
	return h >> (32 - ARP_BUCKET_BITS);
}

static struct rte_mbuf **arp_pending(struct arp_table *t, const struct arp_entry *e)
{
	return &t->pending[(size_t)(e - t->e) * t->pending_max];
}

static struct arp_entry *arp_find(struct arp_table *t, uint16_t port, uint32_t ip)
{
	for (uint16_t i = t->bucket[arp_hash(t, port, ip)]; i != ARP_NIL; i = t->e[i].next)
		if (t->e[i].ip == ip && t->e[i].port == port)
			return &t->e[i];
	return NULL;
}

/* A new incomplete entry, or NULL when the table is full. */
static struct arp_entry *arp_insert(struct arp_table *t, uint16_t port, uint32_t ip, uint64_t now)
{
	uint16_t i = t->free_head;
	if (i == ARP_NIL)
		return NULL;
	struct arp_entry *e = &t->e[i];
	unsigned b = arp_hash(t, port, ip);
	t->free_head = e->next;
	*e = (struct arp_entry){
		.ip = ip,
		.port = port,
		.next = t->bucket[b],
		.state = ARP_ST_INCOMPLETE,
		.confirmed = now,
	};
	t->bucket[b] = i;
	t->n_used++;
	return e;
}

/* Unlinks E; its pending queue must be empty. */
static void arp_remove(struct arp_table *t, struct arp_entry *e)
{
	uint16_t idx = (uint16_t)(e - t->e);
	uint16_t *pp = &t->bucket[arp_hash(t, e->port, e->ip)];
	while (*pp != idx)
		pp = &t->e[*pp].next;
	*pp = e->next;
	e->state = ARP_ST_FREE;
	e->n_pending = 0;
	e->next = t->free_head;
	t->free_head = idx;
	t->n_used--;
}

static void arp_fill(struct rte_arp_hdr *a, uint16_t op, const struct rte_ether_addr *sha,
		     uint32_t sip, const struct rte_ether_addr *tha, uint32_t tip)
{
	a->arp_hardware = rte_cpu_to_be_16(RTE_ARP_HRD_ETHER);
	a->arp_protocol = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	a->arp_hlen = RTE_ETHER_ADDR_LEN;
	a->arp_plen = sizeof(uint32_t);
	a->arp_opcode = rte_cpu_to_be_16(op);
	rte_ether_addr_copy(sha, &a->arp_data.arp_sha);
	a->arp_data.arp_sip = sip;
	rte_ether_addr_copy(tha, &a->arp_data.arp_tha);
	a->arp_data.arp_tip = tip;
}

/* Originates one ARP frame; false when no mbuf could be had (counted). */
static bool arp_send(struct net_ctx *n, const struct net_iface *ifc, uint16_t op, uint32_t sip,
		     uint32_t tip, const struct rte_ether_addr *eth_dst,
		     const struct rte_ether_addr *tha)
{
	struct rte_mbuf *m = net_alloc(n);
	if (m == NULL)
		return false;
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)rte_pktmbuf_append(m, ARP_FRAME_LEN);
	if (eth == NULL) { /* a pool of mbufs too small for 42 bytes */
		net_drop(n, m, DP_DROP_MBUF_ALLOC_FAILED);
		return false;
	}
	rte_ether_addr_copy(eth_dst, &eth->dst_addr);
	rte_ether_addr_copy(&ifc->mac, &eth->src_addr);
	eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP);
	arp_fill((struct rte_arp_hdr *)(eth + 1), op, &ifc->mac, sip, tha, tip);
	net_send(n, ifc->port_id, m);
	return true;
}

/* Asks who has E's address: broadcast to resolve, unicast to DST to refresh (RFC 1122 §2.3.2.1) */
static void arp_request(struct net_ctx *n, const struct net_iface *ifc, struct arp_entry *e,
			const struct rte_ether_addr *dst, uint64_t now)
{
	e->tries++;
	e->last_req = now;
	if (arp_send(n, ifc, RTE_ARP_OP_REQUEST, net_iface_src_for(ifc, e->ip), e->ip,
		     dst ? dst : &arp_bcast, &arp_zero))
		dp_count(n->stats, DP_C_ARP_REQUESTS_SENT, 1);
}

/* Prepends the Ethernet header to an IPv4 packet and sends it to DST. Headroom was checked. */
static void arp_xmit(struct net_ctx *n, const struct net_iface *ifc,
		     const struct rte_ether_addr *dst, struct rte_mbuf *m)
{
	struct rte_ether_hdr *eth =
		(struct rte_ether_hdr *)rte_pktmbuf_prepend(m, RTE_ETHER_HDR_LEN);
	rte_ether_addr_copy(dst, &eth->dst_addr);
	rte_ether_addr_copy(&ifc->mac, &eth->src_addr);
	eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	net_send(n, ifc->port_id, m);
}

/*
 * Someone vouched that E's address is at MAC: resolve E and send what waited
 * on it, in the order it came. Returns true when that is news (a new
 * binding or a changed MAC), false for a mere refresh.
 */
static bool arp_confirm(struct net_ctx *n, struct arp_entry *e, const struct rte_ether_addr *mac,
			uint64_t now)
{
	struct arp_table *t = n->arp;
	bool news = e->state != ARP_ST_RESOLVED || !rte_is_same_ether_addr(&e->mac, mac);

	rte_ether_addr_copy(mac, &e->mac);
	e->state = ARP_ST_RESOLVED;
	e->confirmed = now;
	e->tries = 0;
	if (e->n_pending > 0) {
		const struct net_iface *ifc = net_iface_get(n, e->port);
		struct rte_mbuf **q = arp_pending(t, e);
		for (unsigned k = 0; k < e->n_pending; k++) {
			arp_xmit(n, ifc, &e->mac, q[k]);
			q[k] = NULL;
		}
		e->n_pending = 0;
		e->used = now;
	}
	return news;
}

/*
 * The wire told us where E's address is. Every confirmation, not only news,
 * goes to the other workers: the answer to a request another worker sent may
 * land here, on a worker that already knew the binding, and only the learn
 * message resolves the other worker's incomplete entry.
 */
static void arp_learned_from_wire(struct net_ctx *n, struct arp_entry *e,
				  const struct rte_ether_addr *mac, uint64_t now)
{
	if (arp_confirm(n, e, mac, now))
		dp_count(n->stats, DP_C_ARP_LEARNED, 1);
	if (n->learn != NULL)
		n->learn(n->cb_arg, e->port, e->ip, mac);
}

/* Drops what waited on E (ARP_UNRESOLVED each) and forgets E. */
static void arp_give_up(struct net_ctx *n, struct arp_entry *e)
{
	struct rte_mbuf **q = arp_pending(n->arp, e);
	for (unsigned k = 0; k < e->n_pending; k++) {
		net_drop(n, q[k], DP_DROP_ARP_UNRESOLVED);
		q[k] = NULL;
	}
	e->n_pending = 0;
	arp_remove(n->arp, e);
}

int net_arp_init(struct net_ctx *n)
{
	unsigned pmax = n->params.arp_pending_max ? n->params.arp_pending_max : ARP_PENDING_DEFAULT;
	if (pmax > ARP_PENDING_CAP)
		pmax = ARP_PENDING_CAP;
	struct arp_table *t =
		calloc(1, sizeof(*t) + (size_t)NET_ARP_ENTRIES * pmax * sizeof(t->pending[0]));
	if (t == NULL)
		return -ENOMEM;

	unsigned timeout_s = n->params.arp_timeout_s ? n->params.arp_timeout_s
						    : ARP_TIMEOUT_DEFAULT_S;
	unsigned retries = n->params.arp_retries ? n->params.arp_retries : ARP_RETRIES_DEFAULT;
	t->timeout = (uint64_t)timeout_s * n->hz;
	t->pending_max = pmax;
	t->retries = retries > UINT8_MAX ? UINT8_MAX : retries;
	t->seed = (uint32_t)rte_rand();
	memset(t->bucket, 0xff, sizeof(t->bucket));
	for (unsigned i = 0; i < NET_ARP_ENTRIES; i++)
		t->e[i].next = (uint16_t)(i + 1 < NET_ARP_ENTRIES ? i + 1 : ARP_NIL);
	t->free_head = 0;
	n->arp = t;
	return 0;
}

void net_arp_fini(struct net_ctx *n)
{
	struct arp_table *t = n->arp;
	if (t == NULL)
		return;
	for (unsigned i = 0; i < NET_ARP_ENTRIES; i++) {
		struct rte_mbuf **q = arp_pending(t, &t->e[i]);
		for (unsigned k = 0; k < t->e[i].n_pending; k++)
			rte_pktmbuf_free(q[k]);
	}
	free(t);
	n->arp = NULL;
}

void net_arp_input(struct net_ctx *n, const struct net_iface *ifc, struct rte_mbuf *m,
		   uint64_t now)
{
	struct arp_table *t = n->arp;

	if (rte_pktmbuf_pkt_len(m) < ARP_FRAME_LEN) {
		net_drop(n, m, DP_DROP_ARP_MALFORMED);
		return;
	}
	struct rte_arp_hdr *a = rte_pktmbuf_mtod_offset(m, struct rte_arp_hdr *, RTE_ETHER_HDR_LEN);
	uint16_t op = rte_be_to_cpu_16(a->arp_opcode);
	/* RFC 826: only Ethernet hardware and IPv4 protocol addresses are ours to handle. */
	if (a->arp_hardware != rte_cpu_to_be_16(RTE_ARP_HRD_ETHER) ||
	    a->arp_protocol != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) ||
	    a->arp_hlen != RTE_ETHER_ADDR_LEN || a->arp_plen != sizeof(uint32_t) ||
	    (op != RTE_ARP_OP_REQUEST && op != RTE_ARP_OP_REPLY) ||
	    !rte_is_valid_assigned_ether_addr(&a->arp_data.arp_sha)) {
		net_drop(n, m, DP_DROP_ARP_MALFORMED);
		return;
	}
	struct rte_ether_addr sha = a->arp_data.arp_sha;
	uint32_t sip = a->arp_data.arp_sip;
	uint32_t tip = a->arp_data.arp_tip;

	/*
	 * A probe (sender 0.0.0.0, RFC 5227 §2.1.1) claims no address; a sender
	 * using one of our addresses is a conflict, not a neighbour (RFC 5227
	 * §2.4: the place to log or defend it). Neither is learned.
	 */
	bool learnable = sip != 0 && !net_addr_is_ours(n, sip);

	/* RFC 826 packet reception: update the sender if we know it (the merge flag)... */
	bool merged = false;
	if (learnable) {
		struct arp_entry *e = arp_find(t, ifc->port_id, sip);
		if (e != NULL) {
			arp_learned_from_wire(n, e, &sha, now);
			merged = true;
		}
	}
	/* ...then "Am I the target protocol address?" */
	if (!net_addr_is_local(ifc, tip)) {
		net_drop(n, m, DP_DROP_ARP_NOT_FOR_US);
		return;
	}
	/* ...if the merge flag is false, add the sender. */
	if (learnable && !merged) {
		struct arp_entry *e = arp_insert(t, ifc->port_id, sip, now);
		if (e == NULL) {
			/* still answered below: the asker is owed a reply we cannot remember */
			dp_drop(n->stats, DP_DROP_ARP_TABLE_FULL);
			if (op == RTE_ARP_OP_REPLY) {
				rte_pktmbuf_free(m);
				return;
			}
		} else {
			arp_learned_from_wire(n, e, &sha, now);
		}
	}
	if (op == RTE_ARP_OP_REPLY) {
		rte_pktmbuf_free(m); /* consumed: its news is in the table */
		return;
	}

	/* "Swap hardware and protocol fields, ... set the opcode to reply, send it." */
	m = net_writable(n, m);
	if (m == NULL)
		return;
	rte_pktmbuf_trim(m, (uint16_t)(rte_pktmbuf_pkt_len(m) - ARP_FRAME_LEN));
	struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	rte_ether_addr_copy(&sha, &eth->dst_addr);
	rte_ether_addr_copy(&ifc->mac, &eth->src_addr);
	arp_fill((struct rte_arp_hdr *)(eth + 1), RTE_ARP_OP_REPLY, &ifc->mac, tip, &sha, sip);
	m->ol_flags = 0;
	net_send(n, ifc->port_id, m);
	dp_count(n->stats, DP_C_ARP_REPLIES_SENT, 1);
}

void net_arp_learn(struct net_ctx *n, uint16_t port, uint32_t ip, const struct rte_ether_addr *mac,
		   uint64_t now)
{
	struct arp_table *t = n->arp;
	if (t == NULL || net_iface_get(n, port) == NULL || ip == 0 || net_addr_is_ours(n, ip) ||
	    !rte_is_valid_assigned_ether_addr(mac))
		return;
	struct arp_entry *e = arp_find(t, port, ip);
	if (e == NULL)
		e = arp_insert(t, port, ip, now);
	if (e == NULL) {
		dp_drop(n->stats, DP_DROP_ARP_TABLE_FULL);
		return;
	}
	/* ARP_LEARNED counts what came off the wire, once across all workers: not here. */
	arp_confirm(n, e, mac, now);
}

int net_arp_output(struct net_ctx *n, const struct net_iface *ifc, uint32_t next_hop,
		   struct rte_mbuf *m, uint64_t now)
{
	struct arp_table *t = n->arp;

	if (rte_pktmbuf_headroom(m) < RTE_ETHER_HDR_LEN) { /* broken contract: no room for L2 */
		net_drop(n, m, DP_DROP_MBUF_ALLOC_FAILED);
		return -ENOBUFS;
	}
	struct arp_entry *e = arp_find(t, ifc->port_id, next_hop);
	if (e != NULL && e->state == ARP_ST_RESOLVED) {
		e->used = now;
		arp_xmit(n, ifc, &e->mac, m);
		return 0;
	}
	if (e == NULL) {
		e = arp_insert(t, ifc->port_id, next_hop, now);
		if (e == NULL) {
			net_drop(n, m, DP_DROP_ARP_TABLE_FULL);
			return -ENOBUFS;
		}
		arp_request(n, ifc, e, NULL, now);
	}
	if (e->n_pending >= t->pending_max) {
		net_drop(n, m, DP_DROP_ARP_PENDING_FULL);
		return -ENOBUFS;
	}
	arp_pending(t, e)[e->n_pending++] = m;
	e->used = now;
	return 0;
}

void net_periodic(struct net_ctx *n, uint64_t now)
{
	struct arp_table *t = n->arp;
	if (t == NULL)
		return;
	for (unsigned i = 0; i < NET_ARP_ENTRIES && t->n_used > 0; i++) {
		struct arp_entry *e = &t->e[i];
		if (e->state == ARP_ST_FREE)
			continue;
		const struct net_iface *ifc = net_iface_get(n, e->port);
		bool retry_due = e->tries == 0 || elapsed(now, e->last_req) >= n->hz;

		if (e->state == ARP_ST_INCOMPLETE) {
			if (!retry_due)
				continue;
			if (e->tries >= t->retries)
				arp_give_up(n, e);
			else
				arp_request(n, ifc, e, NULL, now);
			continue;
		}
		if (elapsed(now, e->confirmed) < t->timeout)
			continue;
		/*
		 * Stale. An idle entry just goes (the next packet resolves it
		 * again); one still in use keeps serving while we ask its owner
		 * directly, so traffic to the gateway never stalls on a timeout.
		 */
		if (e->used <= e->confirmed)
			arp_remove(t, e);
		else if (retry_due && e->tries >= t->retries)
			arp_remove(t, e);
		else if (retry_due)
			arp_request(n, ifc, e, &e->mac, now);
	}
}

void net_announce(struct net_ctx *n, uint64_t now)
{
	(void)now;
	/* RFC 5227 §3: an ARP request with sender and target both our address, target MAC zero. */
	for (unsigned i = 0; i < n->n_ifaces; i++) {
		const struct net_iface *ifc = &n->ifaces[i];
		for (unsigned k = 0; k < ifc->n_addrs; k++) {
			uint32_t a = ifc->addrs[k].addr;
			if (arp_send(n, ifc, RTE_ARP_OP_REQUEST, a, a, &arp_bcast, &arp_zero))
				dp_count(n->stats, DP_C_ARP_GRATUITOUS_SENT, 1);
		}
	}
}

unsigned net_arp_dump(const struct net_ctx *n, struct net_arp_entry *out, unsigned max,
		      uint64_t now)
{
	const struct arp_table *t = n->arp;
	unsigned k = 0;
	if (t == NULL)
		return 0;
	for (unsigned i = 0; i < NET_ARP_ENTRIES && k < max; i++) {
		const struct arp_entry *e = &t->e[i];
		if (e->state == ARP_ST_FREE)
			continue;
		out[k] = (struct net_arp_entry){
			.ip = e->ip,
			.port_id = e->port,
			.mac = e->mac,
			.resolved = e->state == ARP_ST_RESOLVED,
			.age_s = (uint32_t)(elapsed(now, e->confirmed) / n->hz),
		};
		k++;
	}
	return k;
}
