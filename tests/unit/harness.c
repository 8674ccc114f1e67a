/* SPDX-License-Identifier: BSD-3-Clause */
/* EAL and mbufs for unit tests; see harness.h. */
#include "harness.h"

#include <string.h>

#include <criterion/criterion.h>
#include <rte_eal.h>
#include <rte_lcore.h>

static struct rte_mempool *pool;

void harness_eal_init(void)
{
	static int done;
	if (done)
		return;
	char *argv[] = {"unit", "--no-pci", "--no-huge", "--no-shconf", "-m", "256", "-l", "0",
			"--log-level=lib.*:error", "--no-telemetry", NULL};
	int argc = (int)(sizeof(argv) / sizeof(argv[0])) - 1;
	cr_assert(rte_eal_init(argc, argv) >= 0, "rte_eal_init failed");
	done = 1;
}

struct rte_mempool *harness_pool(void)
{
	harness_eal_init();
	if (!pool)
		pool = rte_pktmbuf_pool_create("unit_pool", 1023, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
					       SOCKET_ID_ANY);
	cr_assert_not_null(pool, "mbuf pool");
	return pool;
}

struct rte_mbuf *harness_frame(const void *frame, size_t len, uint16_t port)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(harness_pool());
	cr_assert_not_null(m);
	char *p = rte_pktmbuf_append(m, (uint16_t)len);
	cr_assert_not_null(p, "frame of %zu bytes does not fit one mbuf", len);
	memcpy(p, frame, len);
	m->port = port;
	return m;
}
