/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The relay engine's store on a real spool shard (spool.h): the
 * relay_store_ops that relay.c gives the engine, kept apart from the TCP
 * glue so tests can run the engine against a real shard without DPDK.
 */
#ifndef MX_RELAY_SPOOL_H
#define MX_RELAY_SPOOL_H

#include "dataplane/relay/relay_sched.h"

/*
 * The store's argument. SH may be set after the engine is made (the shard
 * opens after the relay, as its recovery hands messages over): it must be
 * set before the first message is submitted.
 */
struct relay_spool {
	struct spool_shard *sh;
	uint64_t (*clock_us)(void *arg); /* for drain's spool_poll() */
	void *clock_arg;
	unsigned drain_max_polls; /* drain() gives up after this many polls: 0 = 1000000 */
};

extern const struct relay_store_ops relay_spool_ops;

#endif
