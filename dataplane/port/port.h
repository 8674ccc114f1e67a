/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Port and queue setup for any ethdev (PCI NICs and the net_tap, net_af_packet,
 * net_memif and net_ring vdevs): one RX/TX queue pair per worker, RSS with a
 * symmetric Toeplitz key where the device really steers, and the flow-owner
 * function that software steering and active opens share.
 */
#ifndef MX_PORT_H
#define MX_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <rte_ether.h>
#include <rte_mempool.h>
#include <rte_thash.h>

#include "control/config/config.h"

/* Every flow hash maps to an owner through this many slots (a RETA of 128). */
#define PORT_RETA_SLOTS 128
/* Toeplitz key length we use; 0x6d5a repeated makes the hash symmetric. */
#define PORT_RSS_KEY_LEN 40

extern const uint8_t port_sym_rss_key[PORT_RSS_KEY_LEN];

/* A started port. Filled by port_setup(); read-only while workers run. */
struct port_info {
	uint16_t port_id;
	uint16_t mtu;
	uint16_t n_queues;
	bool hw_steering; /* the NIC's RSS puts each flow on its owner's queue */
	bool started;
	/*
	 * Checksum offloads enabled because the device offers them, each on its
	 * own (RTE_ETH_TX_OFFLOAD_IPV4_CKSUM/TCP_CKSUM, RTE_ETH_RX_OFFLOAD_...);
	 * what is not here is done in software.
	 */
	uint64_t tx_csum; /* RTE_ETH_TX_OFFLOAD_* */
	uint64_t rx_csum; /* RTE_ETH_RX_OFFLOAD_* */
	struct rte_ether_addr mac;
	char name[32];    /* the operator's name from the config */
	char device[128]; /* the config's device string */
	char driver[32];
};

/*
 * Finds the ethdev for CFG (probed by EAL from --vdev or -a), configures one
 * RX/TX queue pair per entry of POOLS (RX queue q takes mbufs from pools[q]),
 * chooses hardware or software steering, and starts it. Returns 0, or -errno
 * with a one-line reason in err.
 */
int port_setup(struct port_info *p, const struct cfg_port *cfg, struct rte_mempool *const *pools,
	       uint16_t n_queues, char *err, size_t errlen);

/* Whether P's device computes both TX checksums, IPv4 and TCP. */
bool port_tx_csum_offload(const struct port_info *p);

/*
 * The checksum offloads of P for people: "tx:ip,tcp rx:ip,tcp", "rx:ip,tcp",
 * "none"... Returns OUT.
 */
char *port_csum_str(const struct port_info *p, char *out, size_t outlen);

/* Stops and closes a port set up by port_setup(); a no-op for one that never started. */
void port_close(struct port_info *p);

/* The device part of a device string: "net_tap0" of "net_tap0,iface=mxg0". */
void port_device_name(const char *device, char *out, size_t outlen);

/* True for drivers that cannot place flows by RSS (so software steering is needed). */
bool port_driver_cannot_steer(const char *driver);

/* Symmetric Toeplitz hash of a host-order IPv4 4-tuple: same value both ways. */
static inline uint32_t port_flow_hash(const struct rte_ipv4_tuple *t)
{
	return rte_softrss((uint32_t *)(uintptr_t)t, RTE_THASH_V4_L4_LEN, port_sym_rss_key);
}

/* The worker that owns a flow with this hash. A NIC RETA programmed by
 * port_setup() maps the hash to the same queue. */
static inline unsigned port_flow_owner(uint32_t hash, unsigned n_workers)
{
	return (hash & (PORT_RETA_SLOTS - 1)) % n_workers;
}

/*
 * The worker that will receive the replies of a connection we open from
 * LADDR:LPORT to RADDR:RPORT (all network order): an active open keeps a
 * source port only when this is the opening worker (DESIGN §3.5).
 */
static inline unsigned port_reply_owner(uint32_t laddr, uint16_t lport, uint32_t raddr,
					uint16_t rport, unsigned n_workers)
{
	/* the replies' tuple, as RSS and steering see it: host order, their source first */
	struct rte_ipv4_tuple t = {
		.src_addr = rte_be_to_cpu_32(raddr),
		.dst_addr = rte_be_to_cpu_32(laddr),
		.sport = rte_be_to_cpu_16(rport),
		.dport = rte_be_to_cpu_16(lport),
	};

	return port_flow_owner(port_flow_hash(&t), n_workers);
}

#endif
