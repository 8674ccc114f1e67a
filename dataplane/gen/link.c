/* SPDX-License-Identifier: BSD-3-Clause */
/* memif client ports started again after their server came back (link.h). */
#include "dataplane/gen/link.h"

#include <string.h>

#include <rte_ethdev.h>

void gen_relink_poll(struct gen_relink *r, struct dp_worker *w, uint64_t now)
{
	const struct dp *dp = w->dp;

	if (now < r->next_tsc)
		return;
	r->next_tsc = now + GEN_RELINK_MS * (dp->hz / 1000);
	if (dp->n_workers != 1)
		return; /* another worker may be polling the port: not ours to stop */
	for (unsigned i = 0; i < dp->n_ports; i++) {
		const struct port_info *p = &dp->ports[i];
		struct rte_eth_link link;

		if (strncmp(p->device, "net_memif", 9) != 0 || !strstr(p->device, "role=client"))
			continue;
		if (rte_eth_link_get_nowait(p->port_id, &link) != 0 ||
		    link.link_status == RTE_ETH_LINK_UP)
			continue;
		/* stop and start: the client connects to the socket again (or fails, and the
		 * next check retries); queues and their mempools stay as configured */
		if (rte_eth_dev_stop(p->port_id) == 0 && rte_eth_dev_start(p->port_id) == 0)
			__atomic_store_n(&r->restarts, r->restarts + 1, __ATOMIC_RELAXED);
	}
}
