/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mxgate-gen's memif client ports across a restart of the server side. A
 * DPDK memif client connects to its server only when the port starts
 * (DPDK 22.11's net_memif has no reconnect): when the gateway is killed and
 * started again, the link stays down for good. From the worker loop, a
 * worker that is the only one of its process (so nothing else polls the
 * port) restarts each memif client port whose link went down, every
 * GEN_RELINK_MS, until the server takes it again. TCP connections survive
 * on our side; the new server answers their retransmissions with RST.
 */
#ifndef MX_GEN_LINK_H
#define MX_GEN_LINK_H

#include <stdint.h>

#include "dataplane/core/dp.h"

#define GEN_RELINK_MS 500

struct gen_relink {
	uint64_t next_tsc; /* the next check */
	uint64_t restarts; /* ports restarted (atomic: the main lcore reads it) */
};

/* From W's loop: checks the links when due and restarts the down memif clients. */
void gen_relink_poll(struct gen_relink *r, struct dp_worker *w, uint64_t now);

#endif
