/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Test harness for unit tests that need real mbufs: EAL without hugepages,
 * without PCI and without shared files, so tests run in parallel and never
 * touch a NIC.
 */
#ifndef MX_TEST_HARNESS_H
#define MX_TEST_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include <rte_mbuf.h>

/* Starts EAL once per process (Criterion runs each test in its own process). */
void harness_eal_init(void);

/* A pool of 2048-byte mbufs, created on first use. */
struct rte_mempool *harness_pool(void);

/* An mbuf holding a copy of LEN bytes of FRAME, received on PORT. */
struct rte_mbuf *harness_frame(const void *frame, size_t len, uint16_t port);

#endif
