/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Tests of dataplane/net/eth.c: which frames get past the Ethernet checks,
 * the drop reason of each that does not, and the ctx configuration checks.
 */
#include "net_fixture.h"

#include <errno.h>
#include <string.h>

TestSuite(eth, .init = fx_setup, .fini = fx_teardown);

/* An echo request to us: the simplest frame that shows it was accepted (a reply comes out). */
static size_t echo_frame(uint8_t *f)
{
	return mk_icmp(f, PEER_IP, OUR_IP, RTE_IP_ICMP_ECHO_REQUEST, 0, 7, 1, "abcd", 4);
}

NET_TEST(eth, frame_to_other_mac_is_dropped_and_counted)
{
	uint8_t f[FRAME_MAX];
	size_t len = echo_frame(f);
	f_eth(f)->dst_addr = OTHER_MAC;
	fx_input(f, len);
	cr_expect_eq(fx_n_out, 0);
	fx_expect_one_drop(DP_DROP_ETH_NOT_FOR_US);
	cr_expect_eq(fx_count(DP_C_IPV4_IN), 0, "never reached IPv4");
}

NET_TEST(eth, multicast_frame_is_not_for_us)
{
	static const struct rte_ether_addr mcast = {{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01}};
	uint8_t f[FRAME_MAX];
	size_t len = echo_frame(f);
	f_eth(f)->dst_addr = mcast;
	fx_input(f, len);
	cr_expect_eq(fx_n_out, 0);
	fx_expect_one_drop(DP_DROP_ETH_NOT_FOR_US);
}

NET_TEST(eth, broadcast_frame_is_accepted)
{
	uint8_t f[FRAME_MAX];
	size_t len = echo_frame(f);
	f_eth(f)->dst_addr = BCAST_MAC;
	fx_input(f, len);
	cr_assert_eq(fx_n_out, 1, "echo reply");
	cr_expect(rte_is_same_ether_addr(&f_eth(out_frame(0))->dst_addr, &PEER_MAC),
		  "the reply goes to the sender, not to broadcast");
	cr_expect(rte_is_same_ether_addr(&f_eth(out_frame(0))->src_addr, &OUR_MAC));
	cr_expect_eq(fx_drops_total(), 0);
}

NET_TEST(eth, runt_frame_is_dropped)
{
	uint8_t f[FRAME_MAX];
	echo_frame(f);
	fx_input(f, RTE_ETHER_HDR_LEN - 1);
	fx_expect_one_drop(DP_DROP_ETH_RUNT);
	fx_input(f, 0);
	cr_expect_eq(fx_drop(DP_DROP_ETH_RUNT), 2, "an empty frame is a runt too");
	cr_expect_eq(fx_n_out, 0);
}

NET_TEST(eth, frame_of_exactly_mtu_is_accepted)
{
	uint8_t f[FRAME_MAX];
	static uint8_t data[1500 - 20 - 8];
	size_t len = mk_icmp(f, PEER_IP, OUR_IP, RTE_IP_ICMP_ECHO_REQUEST, 0, 7, 1, data,
			     sizeof(data));
	cr_assert_eq(len, 1514);
	fx_input(f, len);
	cr_expect_eq(fx_n_out, 1, "a full-size echo is answered");
	cr_expect_eq(fx_drops_total(), 0);
}

NET_TEST(eth, frame_longer_than_mtu_is_giant)
{
	uint8_t f[FRAME_MAX];
	static uint8_t data[1500 - 20 - 8 + 1];
	size_t len = mk_icmp(f, PEER_IP, OUR_IP, RTE_IP_ICMP_ECHO_REQUEST, 0, 7, 1, data,
			     sizeof(data));
	fx_input(f, len);
	cr_expect_eq(fx_n_out, 0);
	fx_expect_one_drop(DP_DROP_ETH_GIANT);
}

NET_TEST(eth, chained_mbuf_is_giant)
{
	uint8_t f[FRAME_MAX];
	size_t len = echo_frame(f);
	struct rte_mbuf *head = fx_frame(f, 34, 0);
	struct rte_mbuf *tail = fx_frame(f + 34, len - 34, 0);
	cr_assert_eq(rte_pktmbuf_chain(head, tail), 0);
	net_input(&fx, head, fx_now);
	cr_expect_eq(fx_n_out, 0);
	fx_expect_one_drop(DP_DROP_ETH_GIANT);
}

NET_TEST(eth, vlan_tagged_frame_is_dropped)
{
	uint8_t f[FRAME_MAX];
	size_t len = echo_frame(f);
	f_eth(f)->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_VLAN);
	fx_input(f, len);
	fx_expect_one_drop(DP_DROP_ETH_VLAN);
	f_eth(f)->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_QINQ);
	fx_input(f, len);
	cr_expect_eq(fx_drop(DP_DROP_ETH_VLAN), 2, "802.1ad too");
	cr_expect_eq(fx_n_out, 0);
}

NET_TEST(eth, frame_whose_tag_the_nic_stripped_is_dropped)
{
	uint8_t f[FRAME_MAX];
	size_t len = echo_frame(f);
	struct rte_mbuf *m = fx_frame(f, len, 0);
	m->ol_flags |= RTE_MBUF_F_RX_VLAN | RTE_MBUF_F_RX_VLAN_STRIPPED;
	m->vlan_tci = 42;
	net_input(&fx, m, fx_now);
	cr_expect_eq(fx_n_out, 0);
	fx_expect_one_drop(DP_DROP_ETH_VLAN);
}

NET_TEST(eth, unknown_ethertype_is_dropped)
{
	uint8_t f[FRAME_MAX];
	size_t len = echo_frame(f);
	f_eth(f)->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV6);
	fx_input(f, len);
	cr_expect_eq(fx_n_out, 0);
	fx_expect_one_drop(DP_DROP_ETH_UNKNOWN_TYPE);
}

NET_TEST(eth, frame_from_group_source_mac_is_never_answered)
{
	uint8_t f[FRAME_MAX];
	size_t len = mk_tcp(f, PEER_IP, OUR_IP, 40000, 25, 1000, 0, RTE_TCP_SYN_FLAG, NULL, 0);
	f_eth(f)->src_addr = BCAST_MAC;
	fx_input(f, len);
	cr_expect_eq(fx_n_out, 0, "no RST to the whole segment");
	fx_expect_one_drop(DP_DROP_ETH_BAD_SOURCE);
}

NET_TEST(eth, frame_on_a_port_we_do_not_own_is_not_for_us)
{
	uint8_t f[FRAME_MAX];
	size_t len = echo_frame(f);
	fx_input_port(f, len, 3);
	cr_expect_eq(fx_n_out, 0);
	fx_expect_one_drop(DP_DROP_ETH_NOT_FOR_US);
}

NET_TEST(eth, second_port_answers_with_its_own_mac_and_address)
{
	fx_two_ports();
	uint8_t f[FRAME_MAX];
	size_t len = mk_icmp(f, IP4(203, 0, 113, 50), OUR_IP1, RTE_IP_ICMP_ECHO_REQUEST, 0, 7, 1,
			     "abcd", 4);
	f_eth(f)->dst_addr = OUR_MAC1;
	fx_input_port(f, len, 1);
	cr_assert_eq(fx_n_out, 1);
	cr_expect_eq(fx_out[0].port, 1, "out of the port it came in");
	cr_expect(rte_is_same_ether_addr(&f_eth(out_frame(0))->src_addr, &OUR_MAC1));
	expect_ipv4_frame(out_frame(0), out_len(0), IPPROTO_ICMP, OUR_IP1, IP4(203, 0, 113, 50));

	/* port 0's MAC is not port 1's */
	f_eth(f)->dst_addr = OUR_MAC;
	fx_input_port(f, len, 1);
	cr_expect_eq(fx_n_out, 1);
	fx_expect_one_drop(DP_DROP_ETH_NOT_FOR_US);
}

NET_TEST(eth, zero_mtu_means_standard_ethernet)
{
	fx_if[0].mtu = 0;
	cr_assert_eq(fx_init(), 0);
	uint8_t f[FRAME_MAX];
	static uint8_t data[1500 - 20 - 8 + 1];
	size_t len = mk_icmp(f, PEER_IP, OUR_IP, RTE_IP_ICMP_ECHO_REQUEST, 0, 7, 1, data,
			     sizeof(data));
	fx_input(f, len);
	fx_expect_one_drop(DP_DROP_ETH_GIANT);
	len = mk_icmp(f, PEER_IP, OUR_IP, RTE_IP_ICMP_ECHO_REQUEST, 0, 7, 1, data,
		      sizeof(data) - 1);
	fx_input(f, len);
	cr_expect_eq(fx_n_out, 1, "1500 bytes of IP pass");
}

NET_TEST(eth, ctx_init_rejects_a_broken_configuration)
{
	struct rte_mempool *pool = fx_pool;

	fx_pool = NULL;
	cr_expect_eq(fx_init(), -EINVAL, "no pool");
	fx_pool = pool;

	fx_rt[0].len = 33;
	cr_expect_eq(fx_init(), -EINVAL, "prefix longer than 32");
	fx_rt[0].len = 0;

	fx_rt[0].port_id = 9;
	cr_expect_eq(fx_init(), -EINVAL, "route out of a port we do not have");
	fx_rt[0].port_id = 0;

	fx_if[1] = fx_if[0];
	fx_n_if = 2;
	cr_expect_eq(fx_init(), -EINVAL, "one port listed twice");
	fx_n_if = 1;

	static struct net_route many[NET_MAX_ROUTES + 1];
	for (unsigned i = 0; i <= NET_MAX_ROUTES; i++)
		many[i] = (struct net_route){.dst = IP4(203, 0, 113, i), .len = 32, .via = GW_IP};
	memcpy(fx_rt, many, sizeof(fx_rt));
	fx_n_rt = NET_MAX_ROUTES;
	cr_expect_eq(fx_init(), 0, "as many routes as configuration allows...");
	cr_expect_eq(fx.n_rt, NET_MAX_ROUTES + 1, "...and the on-link one");
	fx.routes = many;
	fx.n_routes = NET_MAX_ROUTES + 1;
	net_ctx_fini(&fx);
	cr_expect_eq(net_ctx_init(&fx, fx_now), -EINVAL, "one more does not fit");
}
