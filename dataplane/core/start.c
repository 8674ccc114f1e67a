/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Bringing a dataplane up and down (dp.h: dp_setup, dp_launch, dp_teardown):
 * the same steps for mxgate-dp and mxgate-gen, in the order DPDK needs them.
 * Workers first (their mempools feed the RX queues), then ports, then what
 * the network layer must know about ports (MACs) and routes.
 */
#include <stdio.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_launch.h>
#include <rte_lcore.h>

#include "dataplane/core/dp.h"

/* Ports and routes as the network layer sees them. */
static void describe_network(struct dp *dp)
{
	const struct cfg_dataplane *d = &dp->cfg->dp;

	for (unsigned i = 0; i < dp->n_ports; i++) {
		struct net_iface *ifc = &dp->ifaces[i];

		ifc->port_id = dp->ports[i].port_id;
		ifc->mtu = dp->ports[i].mtu;
		ifc->mac = dp->ports[i].mac;
		ifc->n_addrs = d->ports[i].n_addrs;
		for (unsigned a = 0; a < ifc->n_addrs; a++) {
			ifc->addrs[a].addr = d->ports[i].addrs[a].addr;
			ifc->addrs[a].len = d->ports[i].addrs[a].len;
		}
	}
	/* A gateway's port is the port whose subnet holds it (the config checked one does). */
	dp->n_routes = 0;
	for (unsigned r = 0; r < d->n_routes && r < NET_MAX_ROUTES; r++) {
		struct net_route *rt = &dp->routes[dp->n_routes++];

		rt->dst = d->routes[r].dst.addr;
		rt->len = d->routes[r].dst.len;
		rt->via = d->routes[r].via;
		rt->port_id = dp->ports[0].port_id;
		for (unsigned i = 0; i < dp->n_ports; i++)
			for (unsigned a = 0; a < dp->ifaces[i].n_addrs; a++) {
				uint8_t len = dp->ifaces[i].addrs[a].len;
				uint32_t mask = len ? rte_cpu_to_be_32(~0u << (32 - len)) : 0;

				if ((rt->via & mask) == (dp->ifaces[i].addrs[a].addr & mask))
					rt->port_id = dp->ports[i].port_id;
			}
	}
}

int dp_setup(struct dp *dp, const struct cfg *cfg, char *err, size_t errlen)
{
	struct rte_mempool *pools[DP_MAX_WORKERS];
	int rc;

	dp->cfg = cfg;
	dp->n_workers = cfg->dp.n_workers;
	dp->n_ports = 0; /* counts ports set up, so teardown closes only those */
	dp->hz = rte_get_tsc_hz();
	dp->start_tsc = rte_rdtsc();
	dp->tx_drain_tsc = dp->hz / 1000000 * cfg->dp.tx_drain_us;
	dp->idle_sleep_us = cfg->dp.idle_sleep_us;
	if (rte_lcore_count() != dp->n_workers + 1) {
		snprintf(err, errlen, "EAL gave %u lcores, the config needs %u", rte_lcore_count(),
			 dp->n_workers + 1);
		return -1;
	}
	unsigned lcore = rte_get_next_lcore(-1, 1, 0);
	for (unsigned i = 0; i < dp->n_workers; i++, lcore = rte_get_next_lcore(lcore, 1, 0)) {
		dp->workers[i] = dp_worker_new(dp, i, lcore, err, errlen);
		if (dp->workers[i] == NULL)
			return -1;
		pools[i] = dp->workers[i]->pool;
	}
	for (unsigned i = 0; i < cfg->dp.n_ports; i++) {
		rc = port_setup(&dp->ports[i], &cfg->dp.ports[i], pools, (uint16_t)dp->n_workers,
				err, errlen);
		if (rc != 0)
			return -1;
		dp->n_ports = i + 1;
		dp->slot_of_port[dp->ports[i].port_id] = (uint16_t)i;
	}
	describe_network(dp);
	for (unsigned i = 0; i < dp->n_workers; i++) {
		rc = dp_worker_net_init(dp->workers[i]);
		if (rc != 0) {
			snprintf(err, errlen, "worker %u: network set-up failed: %s", i,
				 strerror(-rc));
			return -1;
		}
	}
	return 0;
}

void dp_launch(struct dp *dp)
{
	for (unsigned i = 0; i < dp->n_workers; i++)
		rte_eal_remote_launch(dp_worker_main, dp->workers[i], dp->workers[i]->lcore_id);
}

void dp_teardown(struct dp *dp)
{
	__atomic_store_n(&dp->quit, 1, __ATOMIC_RELEASE);
	rte_eal_mp_wait_lcore();
	dp_telemetry_shutdown();
	for (unsigned i = 0; i < dp->n_ports; i++)
		port_close(&dp->ports[i]);
	for (unsigned i = 0; i < dp->n_workers; i++) {
		dp_worker_free(dp->workers[i]); /* aborts what is left: applications hear it */
		dp->workers[i] = NULL;
	}
}
