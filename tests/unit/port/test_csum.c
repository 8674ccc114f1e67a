/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What a port reports of its checksum offloads: the TCP stack leaves TX sums
 * to the NIC only when both IPv4 and TCP are offloaded, and /mxgate/ports
 * shows operators which were enabled.
 */
#include <string.h>

#include <criterion/criterion.h>
#include <rte_ethdev.h>

#include "dataplane/port/port.h"

static const char *csum_of(uint64_t tx, uint64_t rx)
{
	static char buf[64];
	struct port_info p = {.tx_csum = tx, .rx_csum = rx};
	return port_csum_str(&p, buf, sizeof(buf));
}

Test(csum, offloads_read_as_direction_and_layers)
{
	const uint64_t tx_ip = RTE_ETH_TX_OFFLOAD_IPV4_CKSUM, tx_tcp = RTE_ETH_TX_OFFLOAD_TCP_CKSUM;
	const uint64_t rx_ip = RTE_ETH_RX_OFFLOAD_IPV4_CKSUM, rx_tcp = RTE_ETH_RX_OFFLOAD_TCP_CKSUM;

	cr_expect_str_eq(csum_of(0, 0), "none");
	cr_expect_str_eq(csum_of(tx_ip | tx_tcp, rx_ip | rx_tcp), "tx:ip,tcp rx:ip,tcp");
	cr_expect_str_eq(csum_of(tx_ip | tx_tcp, 0), "tx:ip,tcp");
	cr_expect_str_eq(csum_of(0, rx_ip | rx_tcp), "rx:ip,tcp");
	cr_expect_str_eq(csum_of(tx_ip, rx_tcp), "tx:ip rx:tcp");
}

Test(csum, the_stack_offloads_only_when_both_tx_sums_are_on_the_nic)
{
	struct port_info p = {0};

	cr_expect_not(port_tx_csum_offload(&p));
	p.tx_csum = RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
	cr_expect_not(port_tx_csum_offload(&p), "the TCP sum would be missing");
	p.tx_csum = RTE_ETH_TX_OFFLOAD_TCP_CKSUM;
	cr_expect_not(port_tx_csum_offload(&p), "the IPv4 sum would be missing");
	p.tx_csum |= RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
	cr_expect(port_tx_csum_offload(&p));
	p.rx_csum = 0;
	cr_expect(port_tx_csum_offload(&p), "receive offloads do not matter for sending");
}
