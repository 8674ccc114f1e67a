/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The network layer of one worker: Ethernet, ARP, IPv4, ICMP, and the answers
 * a host owes for TCP and UDP ports nobody listens on. Each worker owns one
 * net_ctx; nothing in it is shared, so nothing here locks. Packets leave
 * through the ctx's tx callback, which takes ownership.
 */
#ifndef MX_NET_H
#define MX_NET_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_ether.h>
#include <rte_mbuf.h>
#include <rte_thash.h>

#include "dataplane/core/counters.h"
#include "dataplane/core/tbucket.h"

#define NET_MAX_IFACES 4
#define NET_MAX_ADDRS 8
#define NET_MAX_ROUTES 64
#define NET_PING_MAX 64
#define NET_ARP_ENTRIES 1024 /* per worker; beyond it ARP_TABLE_FULL */
/* the routing table: the configured routes plus one on-link route per address */
#define NET_RT_MAX (NET_MAX_ROUTES + NET_MAX_IFACES * NET_MAX_ADDRS)

/* One port as the network layer sees it. Addresses in network byte order. */
struct net_iface {
	uint16_t port_id;
	uint16_t mtu;
	struct rte_ether_addr mac;
	unsigned n_addrs;
	struct {
		uint32_t addr;
		uint8_t len;
	} addrs[NET_MAX_ADDRS];
};

/* A route: dst/len via gateway (0 = on-link) out of port_id. Network byte order. */
struct net_route {
	uint32_t dst;
	uint8_t len;
	uint32_t via;
	uint16_t port_id;
};

/* Sends a complete Ethernet frame out of PORT. Takes ownership of m in every case. */
typedef void (*net_tx_fn)(void *arg, uint16_t port, struct rte_mbuf *m);
/* Tells the other workers that IP is at MAC on PORT (each keeps its own ARP table). */
typedef void (*net_learn_fn)(void *arg, uint16_t port, uint32_t ip, const struct rte_ether_addr *mac);

/* Zero ARP fields take the default in brackets; a zero ICMP rate means unlimited. */
struct net_params {
	unsigned arp_timeout_s;   /* a resolved entry is trusted this long (60) */
	unsigned arp_pending_max; /* packets held per unresolved entry (8, at most 64) */
	unsigned arp_retries;     /* requests sent before giving up (3) */
	unsigned icmp_echo_rate, icmp_echo_burst;
	unsigned icmp_error_rate, icmp_error_burst;
};

struct arp_table; /* net/arp.c */

/*
 * The transport above the network layer (the worker's TCP stack). Unset
 * hooks leave net answering as for closed ports.
 */
struct net_upper {
	/* A checksum-verified TCP segment, m starting at its IPv4 header. Takes ownership. */
	void (*tcp_input)(void *arg, struct rte_mbuf *m, uint64_t now);
	/* An ICMP error about one of our TCP segments: the quoted IPv4 header + 8 bytes or more. */
	void (*tcp_icmp_error)(void *arg, uint8_t type, uint8_t code, const void *inner,
			       unsigned len, uint64_t now);
	void *arg;
};

/* The state of one dataplane-originated ping (an operator's reachability check). */
struct net_ping {
	bool active;
	uint32_t dst;
	uint16_t ident;
	uint16_t sent;
	uint16_t received;
	uint64_t sent_tsc[NET_PING_MAX];
	uint32_t rtt_us[NET_PING_MAX]; /* UINT32_MAX: no reply yet */
};

struct net_ctx {
	/* set by the caller before net_ctx_init(); read-only afterwards */
	const struct net_iface *ifaces;
	unsigned n_ifaces;
	const struct net_route *routes; /* any order; net_ctx_init() keeps a sorted copy */
	unsigned n_routes;
	struct rte_mempool *pool;       /* for packets we originate */
	struct dp_stats *stats;
	net_tx_fn tx;
	net_learn_fn learn;             /* may be NULL with a single worker */
	void *cb_arg;
	uint64_t hz;                    /* TSC ticks per second */
	struct net_params params;
	struct net_upper upper;         /* may be all zero */

	/* owned by net */
	struct net_route rt[NET_RT_MAX]; /* longest prefix first */
	unsigned n_rt;                   /* routes + one on-link route per address */
	uint16_t ip_id;                  /* next IPv4 identification we originate */
	struct arp_table *arp;
	struct tbucket echo_rl;
	struct tbucket error_rl;
	struct net_ping ping;
};

/* Prepares the per-worker state. Returns 0 or -ENOMEM / -EINVAL. */
int net_ctx_init(struct net_ctx *n, uint64_t now);
/* Frees the ARP table and every packet still waiting in it. */
void net_ctx_fini(struct net_ctx *n);

/*
 * Processes one received frame; m->port names the input port.
 * Takes ownership: m is freed, reused for a reply, or queued. Every drop is
 * counted under exactly one reason in n->stats.
 */
void net_input(struct net_ctx *n, struct rte_mbuf *m, uint64_t now);

/* Records that another worker learned IP at MAC on PORT. */
void net_arp_learn(struct net_ctx *n, uint16_t port, uint32_t ip, const struct rte_ether_addr *mac,
		   uint64_t now);

/*
 * Sends an IPv4 packet we originate. m holds the IPv4 header and payload
 * (checksums done) with at least RTE_ETHER_HDR_LEN of headroom. Routes to the
 * next hop, resolves it with ARP (queueing m while unresolved). Takes
 * ownership. Returns 0 when sent or queued, -ENETUNREACH / -ENOBUFS when m
 * was dropped (and counted).
 */
int net_ip_output(struct net_ctx *n, struct rte_mbuf *m, uint32_t dst, uint64_t now);

/*
 * The source address for a connection to DST (RFC 1122 §3.3.4.3: the
 * address of the outgoing interface on the next hop's subnet). Returns 0
 * when there is no route.
 */
uint32_t net_source_for(const struct net_ctx *n, uint32_t dst);

/* ARP retries and aging; call about every 100 ms. */
void net_periodic(struct net_ctx *n, uint64_t now);

/* Gratuitous ARP for every address of every interface (RFC 5227 §3 announcement). */
void net_announce(struct net_ctx *n, uint64_t now);

/* Starts a ping of DST with identifier IDENT (resets n->ping). Returns 0 or -errno. */
int net_ping_start(struct net_ctx *n, uint32_t dst, uint16_t ident);
/* Sends the next echo request of the current ping. Returns 0 or -errno. */
int net_ping_send(struct net_ctx *n, uint64_t now);

/* Copies the ARP table for telemetry: up to max entries; returns how many. */
struct net_arp_entry {
	uint32_t ip;
	uint16_t port_id;
	struct rte_ether_addr mac;
	bool resolved;
	uint32_t age_s;
};
unsigned net_arp_dump(const struct net_ctx *n, struct net_arp_entry *out, unsigned max, uint64_t now);

/* How a received frame is steered to the worker that owns its flow. */
enum net_flow_kind {
	NET_FLOW_LOCAL,      /* no flow state: any worker may process it (ARP, ICMP echo, junk) */
	NET_FLOW_L4,         /* TCP or UDP over unfragmented IPv4: *t holds the host-order tuple */
	NET_FLOW_ECHO_REPLY, /* ICMP echo reply: *ident names the worker's ping */
};

/*
 * Classifies a frame without trusting it: any length it cannot verify yields
 * NET_FLOW_LOCAL, and net_input() then drops and counts it.
 */
enum net_flow_kind net_flow_classify(const struct rte_mbuf *m, struct rte_ipv4_tuple *t,
				     uint16_t *ident);

#endif
