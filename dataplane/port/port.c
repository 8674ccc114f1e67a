/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Port set-up: queues, RSS with a symmetric key, RETA in step with
 * port_flow_owner(), and the choice between hardware and software steering.
 */
#include "port.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <rte_ethdev.h>

/* Repeating 0x6d5a makes Toeplitz symmetric in (src, dst) and (sport, dport). */
const uint8_t port_sym_rss_key[PORT_RSS_KEY_LEN] = {
	0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
	0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
	0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
};

/*
 * Virtual devices whose "RSS" cannot be relied on: net_tap advertises RSS but
 * needs rte_flow (a multiq qdisc) to do it, the others spread by their own hash
 * or not at all.
 */
static const char *const no_steer_drivers[] = {
	"net_tap", "net_af_packet", "net_af_xdp", "net_memif", "net_ring", "net_null", "net_pcap",
};

bool port_driver_cannot_steer(const char *driver)
{
	for (size_t i = 0; i < RTE_DIM(no_steer_drivers); i++)
		if (strcmp(driver, no_steer_drivers[i]) == 0)
			return true;
	return false;
}

void port_device_name(const char *device, char *out, size_t outlen)
{
	size_t n = strcspn(device, ",");
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, device, n);
	out[n] = '\0';
}

static const uint64_t want_rss_hf =
	RTE_ETH_RSS_IPV4 | RTE_ETH_RSS_NONFRAG_IPV4_TCP | RTE_ETH_RSS_NONFRAG_IPV4_UDP;

/* The checksums we would rather the NIC did; each is enabled when offered. */
static const uint64_t want_tx_csum = RTE_ETH_TX_OFFLOAD_IPV4_CKSUM | RTE_ETH_TX_OFFLOAD_TCP_CKSUM;
static const uint64_t want_rx_csum = RTE_ETH_RX_OFFLOAD_IPV4_CKSUM | RTE_ETH_RX_OFFLOAD_TCP_CKSUM;

bool port_tx_csum_offload(const struct port_info *p)
{
	return (p->tx_csum & want_tx_csum) == want_tx_csum;
}

char *port_csum_str(const struct port_info *p, char *out, size_t outlen)
{
	static const char *const names[] = {"", "ip", "tcp", "ip,tcp"};
	unsigned tx = (p->tx_csum & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM ? 1u : 0u) |
		      (p->tx_csum & RTE_ETH_TX_OFFLOAD_TCP_CKSUM ? 2u : 0u);
	unsigned rx = (p->rx_csum & RTE_ETH_RX_OFFLOAD_IPV4_CKSUM ? 1u : 0u) |
		      (p->rx_csum & RTE_ETH_RX_OFFLOAD_TCP_CKSUM ? 2u : 0u);

	if (!tx && !rx)
		snprintf(out, outlen, "none");
	else
		snprintf(out, outlen, "%s%s%s%s%s", tx ? "tx:" : "", names[tx], tx && rx ? " " : "",
			 rx ? "rx:" : "", names[rx]);
	return out;
}

static bool can_steer(const struct rte_eth_dev_info *info, const char *driver)
{
	return !port_driver_cannot_steer(driver) &&
	       (info->flow_type_rss_offloads & RTE_ETH_RSS_NONFRAG_IPV4_TCP) &&
	       info->reta_size >= PORT_RETA_SLOTS && info->hash_key_size >= PORT_RSS_KEY_LEN;
}

/* Maps every RETA slot i to the owner of hashes with (hash & 127) == (i & 127). */
static int program_reta(uint16_t port_id, uint16_t reta_size, uint16_t n_queues)
{
	struct rte_eth_rss_reta_entry64 reta[RTE_ETH_RSS_RETA_SIZE_512 / RTE_ETH_RETA_GROUP_SIZE];
	if (reta_size > RTE_ETH_RSS_RETA_SIZE_512)
		return -ENOTSUP;
	memset(reta, 0, sizeof(reta));
	for (uint16_t i = 0; i < reta_size; i++) {
		struct rte_eth_rss_reta_entry64 *g = &reta[i / RTE_ETH_RETA_GROUP_SIZE];
		g->mask |= 1ULL << (i % RTE_ETH_RETA_GROUP_SIZE);
		g->reta[i % RTE_ETH_RETA_GROUP_SIZE] = (i & (PORT_RETA_SLOTS - 1)) % n_queues;
	}
	return rte_eth_dev_rss_reta_update(port_id, reta, reta_size);
}

int port_setup(struct port_info *p, const struct cfg_port *cfg, struct rte_mempool *const *pools,
	       uint16_t n_queues, char *err, size_t errlen)
{
	char devname[RTE_ETH_NAME_MAX_LEN];
	struct rte_eth_dev_info info;
	struct rte_eth_conf conf;
	uint16_t nrxd = cfg->rx_desc, ntxd = cfg->tx_desc;
	int rc;

	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", cfg->name);
	snprintf(p->device, sizeof(p->device), "%s", cfg->device);
	p->mtu = cfg->mtu;
	p->n_queues = n_queues;

	port_device_name(cfg->device, devname, sizeof(devname));
	if (rte_eth_dev_get_port_by_name(devname, &p->port_id) != 0) {
		snprintf(err, errlen, "port %s: no ethdev named %s (was it probed?)", cfg->name,
			 devname);
		return -ENODEV;
	}
	rc = rte_eth_dev_info_get(p->port_id, &info);
	if (rc != 0) {
		snprintf(err, errlen, "port %s: cannot read device info: %s", cfg->name,
			 strerror(-rc));
		return rc;
	}
	snprintf(p->driver, sizeof(p->driver), "%s", info.driver_name);
	if (n_queues > info.max_rx_queues || n_queues > info.max_tx_queues) {
		snprintf(err, errlen, "port %s: %u workers need %u queue pairs, %s offers %u/%u",
			 cfg->name, n_queues, n_queues, p->driver, info.max_rx_queues,
			 info.max_tx_queues);
		return -EINVAL;
	}

	bool hw = can_steer(&info, p->driver);
	if (cfg->steering == CFG_STEER_HARDWARE && !hw) {
		snprintf(err, errlen,
			 "port %s: steering is hardware but %s cannot steer by symmetric RSS "
			 "(use auto or software)",
			 cfg->name, p->driver);
		return -ENOTSUP;
	}
	if (cfg->steering == CFG_STEER_SOFTWARE)
		hw = false;

	memset(&conf, 0, sizeof(conf));
	conf.rxmode.mtu = cfg->mtu;
	if (hw && n_queues > 1) {
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_key = (uint8_t *)(uintptr_t)port_sym_rss_key;
		conf.rx_adv_conf.rss_conf.rss_key_len = PORT_RSS_KEY_LEN;
		conf.rx_adv_conf.rss_conf.rss_hf = want_rss_hf & info.flow_type_rss_offloads;
	}
	/* No MBUF_FAST_FREE: TCP sends indirect mbufs attached to the application's
	 * data (and refcounted ones), which fast free would return wrongly. */
	/* Issue #3 item 9: checksums on the NIC where it offers them, else in software. */
	conf.txmode.offloads |= info.tx_offload_capa & want_tx_csum;
	conf.rxmode.offloads |= info.rx_offload_capa & want_rx_csum;

	rc = rte_eth_dev_configure(p->port_id, n_queues, n_queues, &conf);
	if (rc != 0) {
		snprintf(err, errlen, "port %s: configure failed: %s", cfg->name, strerror(-rc));
		return rc;
	}
	rc = rte_eth_dev_adjust_nb_rx_tx_desc(p->port_id, &nrxd, &ntxd);
	if (rc != 0) {
		snprintf(err, errlen, "port %s: descriptor counts: %s", cfg->name, strerror(-rc));
		return rc;
	}
	int socket = rte_eth_dev_socket_id(p->port_id);
	for (uint16_t q = 0; q < n_queues; q++) {
		rc = rte_eth_rx_queue_setup(p->port_id, q, nrxd, socket, NULL, pools[q]);
		if (rc == 0)
			rc = rte_eth_tx_queue_setup(p->port_id, q, ntxd, socket, NULL);
		if (rc != 0) {
			snprintf(err, errlen, "port %s: queue %u set-up failed: %s", cfg->name, q,
				 strerror(-rc));
			return rc;
		}
	}
	rc = rte_eth_dev_start(p->port_id);
	if (rc != 0) {
		snprintf(err, errlen, "port %s: start failed: %s", cfg->name, strerror(-rc));
		return rc;
	}
	p->started = true;
	if (hw && n_queues > 1) {
		rc = program_reta(p->port_id, info.reta_size, n_queues);
		if (rc != 0) {
			snprintf(err, errlen, "port %s: RETA update failed: %s", cfg->name,
				 strerror(-rc));
			port_close(p);
			return rc;
		}
	}
	p->hw_steering = hw;
	p->tx_csum = conf.txmode.offloads & want_tx_csum;
	p->rx_csum = conf.rxmode.offloads & want_rx_csum;
	rte_eth_macaddr_get(p->port_id, &p->mac);
	return 0;
}

void port_close(struct port_info *p)
{
	if (!p->started)
		return;
	rte_eth_dev_stop(p->port_id);
	rte_eth_dev_close(p->port_id);
	p->started = false;
}
