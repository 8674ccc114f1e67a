/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Tests of dataplane/net/ipv4.c: every check a received datagram goes
 * through with its drop reason, option skipping, padding, protocol
 * unreachable, and routing of what we send.
 */
#include "net_fixture.h"

#include <errno.h>
#include <string.h>

TestSuite(ipv4, .init = fx_setup, .fini = fx_teardown);

/* An echo request from PEER_IP: what passes every IPv4 check yields one reply. */
static size_t echo(uint8_t *f)
{
	return mk_icmp(f, PEER_IP, OUR_IP, RTE_IP_ICMP_ECHO_REQUEST, 0, 9, 1, "ping", 4);
}

/* Feeds F with a change applied and the IP checksum made right again. */
#define INPUT_WITH(f, len, stmt)                                                                   \
	do {                                                                                       \
		struct rte_ipv4_hdr *ip = f_ip(f);                                                 \
		stmt;                                                                              \
		fix_ip_cksum(f);                                                                   \
		fx_input(f, len);                                                                  \
	} while (0)

NET_TEST(ipv4, header_shorter_than_20_bytes_is_truncated)
{
	uint8_t f[FRAME_MAX];
	echo(f);
	fx_input(f, RTE_ETHER_HDR_LEN + 19);
	fx_expect_one_drop(DP_DROP_IPV4_TRUNCATED);
	fx_input(f, RTE_ETHER_HDR_LEN);
	cr_expect_eq(fx_drop(DP_DROP_IPV4_TRUNCATED), 2, "no IP header at all");
	cr_expect_eq(fx_count(DP_C_IPV4_IN), 2);
	cr_expect_eq(fx_n_out, 0);
}

NET_TEST(ipv4, version_other_than_4_is_dropped)
{
	uint8_t f[FRAME_MAX];
	size_t len = echo(f);
	INPUT_WITH(f, len, ip->version_ihl = 0x65);
	fx_expect_one_drop(DP_DROP_IPV4_BAD_VERSION);
	cr_expect_eq(fx_n_out, 0);
}

NET_TEST(ipv4, header_length_below_five_words_is_dropped)
{
	uint8_t f[FRAME_MAX];
	size_t len = echo(f);
	INPUT_WITH(f, len, ip->version_ihl = 0x44);
	fx_expect_one_drop(DP_DROP_IPV4_BAD_IHL);
	cr_expect_eq(fx_n_out, 0);
}

NET_TEST(ipv4, header_length_beyond_the_frame_is_dropped)
{
	uint8_t f[FRAME_MAX];
	echo(f);
	/* 24 bytes of frame, a header that claims 60 */
	f_ip(f)->version_ihl = 0x4f;
	fx_input(f, RTE_ETHER_HDR_LEN + 24);
	fx_expect_one_drop(DP_DROP_IPV4_BAD_IHL);
}

NET_TEST(ipv4, total_length_shorter_than_header_is_dropped)
{
	uint8_t f[FRAME_MAX];
	size_t len = echo(f);
	INPUT_WITH(f, len, ip->total_length = rte_cpu_to_be_16(19));
	fx_expect_one_drop(DP_DROP_IPV4_BAD_LENGTH);
}

NET_TEST(ipv4, total_length_beyond_the_frame_is_dropped)
{
	uint8_t f[FRAME_MAX];
	size_t len = echo(f);
	INPUT_WITH(f, len, ip->total_length = rte_cpu_to_be_16((uint16_t)(len - 14 + 1)));
	fx_expect_one_drop(DP_DROP_IPV4_BAD_LENGTH);
	cr_expect_eq(fx_n_out, 0);
}

NET_TEST(ipv4, ethernet_padding_is_trimmed)
{
	uint8_t f[FRAME_MAX];
	size_t len = mk_icmp(f, PEER_IP, OUR_IP, RTE_IP_ICMP_ECHO_REQUEST, 0, 9, 1, NULL, 0);
	cr_assert_eq(len, 42);
	memset(f + len, 0xee, 60 - len); /* padding is not part of the datagram */
	fx_input(f, 60);
	cr_assert_eq(fx_n_out, 1, "the padding did not spoil the ICMP checksum");
	cr_expect_eq(out_len(0), 42, "and is not echoed back");
	expect_ipv4_frame(out_frame(0), out_len(0), IPPROTO_ICMP, OUR_IP, PEER_IP);
}

NET_TEST(ipv4, bad_header_checksum_is_dropped)
{
	uint8_t f[FRAME_MAX];
	size_t len = echo(f);
	f_ip(f)->hdr_checksum ^= 0x0100;
	fx_input(f, len);
	fx_expect_one_drop(DP_DROP_IPV4_BAD_CHECKSUM);
	cr_expect_eq(fx_n_out, 0);
}

NET_TEST(ipv4, checksum_the_nic_found_bad_is_dropped)
{
	uint8_t f[FRAME_MAX];
	size_t len = echo(f);
	struct rte_mbuf *m = fx_frame(f, len, 0);
	m->ol_flags |= RTE_MBUF_F_RX_IP_CKSUM_BAD;
	net_input(&fx, m, fx_now);
	fx_expect_one_drop(DP_DROP_IPV4_BAD_CHECKSUM);
}

NET_TEST(ipv4, checksum_the_nic_found_good_is_trusted)
{
	uint8_t f[FRAME_MAX];
	size_t len = echo(f);
	f_ip(f)->hdr_checksum = 0; /* what a NIC with checksum offload leaves unchecked */
	struct rte_mbuf *m = fx_frame(f, len, 0);
	m->ol_flags |= RTE_MBUF_F_RX_IP_CKSUM_GOOD;
	net_input(&fx, m, fx_now);
	cr_expect_eq(fx_drops_total(), 0);
	cr_assert_eq(fx_n_out, 1);
	expect_ipv4_frame(out_frame(0), out_len(0), IPPROTO_ICMP, OUR_IP, PEER_IP);
	cr_expect_eq(fx_out[0].m->ol_flags, 0, "receive flags do not leak into transmit");
}

NET_TEST(ipv4, ttl_zero_is_dropped)
{
	uint8_t f[FRAME_MAX];
	size_t len = echo(f);
	INPUT_WITH(f, len, ip->time_to_live = 0);
	fx_expect_one_drop(DP_DROP_IPV4_TTL_ZERO);
}

NET_TEST(ipv4, more_fragments_is_dropped)
{
	uint8_t f[FRAME_MAX];
	size_t len = echo(f);
	INPUT_WITH(f, len, ip->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_MF_FLAG));
	fx_expect_one_drop(DP_DROP_IPV4_FRAGMENT);
	cr_expect_eq(fx_n_out, 0);
}

NET_TEST(ipv4, non_first_fragment_is_dropped)
{
	uint8_t f[FRAME_MAX];
	size_t len = mk_udp(f, PEER_IP, OUR_IP, 40000, 53, "x", 1);
	INPUT_WITH(f, len, ip->fragment_offset = rte_cpu_to_be_16(185));
	fx_expect_one_drop(DP_DROP_IPV4_FRAGMENT);
	cr_expect_eq(fx_n_out, 0, "and no port unreachable about it");
}

NET_TEST(ipv4, dont_fragment_alone_is_fine)
{
	uint8_t f[FRAME_MAX];
	size_t len = echo(f);
	INPUT_WITH(f, len, ip->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG));
	cr_expect_eq(fx_drops_total(), 0);
	cr_expect_eq(fx_n_out, 1);
}

NET_TEST(ipv4, sources_that_are_no_single_host_are_dropped)
{
	const struct {
		const char *what;
		uint32_t src;
	} bad[] = {
		{"limited broadcast", IP4(255, 255, 255, 255)},
		{"our subnet's broadcast", IP4(198, 51, 100, 255)},
		{"zero", 0},
		{"this network", IP4(0, 0, 0, 7)},
		{"loopback", IP4(127, 0, 0, 1)},
		{"multicast", IP4(224, 0, 0, 1)},
		{"reserved class E", IP4(240, 0, 0, 1)},
		{"our own address", OUR_IP},
	};
	uint8_t f[FRAME_MAX];
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t len =
			mk_icmp(f, bad[i].src, OUR_IP, RTE_IP_ICMP_ECHO_REQUEST, 0, 9, 1, "x", 1);
		fx_input(f, len);
		cr_expect_eq(fx_drop(DP_DROP_IPV4_BAD_SOURCE), i + 1, "%s", bad[i].what);
	}
	cr_expect_eq(fx_drops_total(), sizeof(bad) / sizeof(bad[0]));
	cr_expect_eq(fx_n_out, 0, "nothing answered");
}

NET_TEST(ipv4, source_on_a_slash_31_is_a_host)
{
	/* RFC 3021: both addresses of a /31 are hosts, there is no broadcast */
	fx_if[0].addrs[0] = (typeof(fx_if[0].addrs[0])){.addr = IP4(198, 51, 100, 2), .len = 31};
	fx_rt[0].via = IP4(198, 51, 100, 3);
	cr_assert_eq(fx_init(), 0);
	uint8_t f[FRAME_MAX];
	size_t len = mk_icmp(f, IP4(198, 51, 100, 3), OUR_IP, RTE_IP_ICMP_ECHO_REQUEST, 0, 9, 1,
			     "x", 1);
	fx_input(f, len);
	cr_expect_eq(fx_drops_total(), 0);
	cr_expect_eq(fx_n_out, 1);
}

NET_TEST(ipv4, datagram_to_another_address_is_not_for_us)
{
	uint8_t f[FRAME_MAX];
	size_t len = mk_icmp(f, PEER_IP, IP4(198, 51, 100, 77), RTE_IP_ICMP_ECHO_REQUEST, 0, 9, 1,
			     "x", 1);
	fx_input(f, len);
	fx_expect_one_drop(DP_DROP_IPV4_NOT_FOR_US);
	cr_expect_eq(fx_n_out, 0, "a host does not forward");
}

NET_TEST(ipv4, broadcast_and_multicast_destinations_are_not_for_us)
{
	uint32_t dsts[] = {IP4(198, 51, 100, 255), IP4(255, 255, 255, 255), IP4(224, 0, 0, 1)};
	uint8_t f[FRAME_MAX];
	for (unsigned i = 0; i < 3; i++) {
		size_t len = mk_udp(f, PEER_IP, dsts[i], 40000, 53, "x", 1);
		f_eth(f)->dst_addr = BCAST_MAC;
		fx_input(f, len);
	}
	cr_expect_eq(fx_drop(DP_DROP_IPV4_NOT_FOR_US), 3);
	cr_expect_eq(fx_drops_total(), 3);
	cr_expect_eq(fx_n_out, 0, "no port unreachable to a broadcast");
}

NET_TEST(ipv4, address_of_another_port_is_not_for_us_here)
{
	fx_two_ports();
	uint8_t f[FRAME_MAX];
	size_t len = mk_icmp(f, PEER_IP, OUR_IP1, RTE_IP_ICMP_ECHO_REQUEST, 0, 9, 1, "x", 1);
	fx_input(f, len);
	fx_expect_one_drop(DP_DROP_IPV4_NOT_FOR_US);
}

NET_TEST(ipv4, ip_options_are_skipped_and_packet_processed)
{
	uint8_t f[FRAME_MAX];
	size_t len = add_ip_options(f, echo(f), 8);
	cr_assert_eq(f_ip(f)->version_ihl, 0x47);
	fx_input(f, len);
	cr_expect_eq(fx_count(DP_C_IPV4_OPTIONS_SKIPPED), 1);
	cr_expect_eq(fx_drops_total(), 0);
	cr_assert_eq(fx_n_out, 1, "answered");
	uint8_t *r = out_frame(0);
	cr_expect_eq(out_len(0), len - 8, "the reply carries no options");
	expect_ipv4_frame(r, out_len(0), IPPROTO_ICMP, OUR_IP, PEER_IP);
	struct rte_icmp_hdr *ih = f_l4(r);
	cr_expect_eq(ih->icmp_type, RTE_IP_ICMP_ECHO_REPLY);
	cr_expect_eq(memcmp(ih + 1, "ping", 4), 0, "payload intact after the header moved");
}

NET_TEST(ipv4, unknown_protocol_gets_protocol_unreachable)
{
	uint8_t f[FRAME_MAX];
	size_t len = mk_ip(f, PEER_IP, OUR_IP, 47 /* GRE */, "0123456789abcdef", 16);
	fx_input(f, len);
	fx_expect_one_drop(DP_DROP_IPV4_UNKNOWN_PROTO);
	cr_expect_eq(fx_count(DP_C_ICMP_UNREACH_SENT), 1);
	cr_assert_eq(fx_n_out, 1);
	uint8_t *r = out_frame(0);
	cr_expect(rte_is_same_ether_addr(&f_eth(r)->dst_addr, &PEER_MAC));
	expect_ipv4_frame(r, out_len(0), IPPROTO_ICMP, OUR_IP, PEER_IP);
	struct rte_icmp_hdr *ih = f_l4(r);
	cr_expect_eq(ih->icmp_type, 3);
	cr_expect_eq(ih->icmp_code, 2, "protocol unreachable");
	cr_expect_eq(out_len(0), 14 + 20 + 8 + (len - 14), "the whole small datagram is quoted");
	cr_expect_eq(memcmp(ih + 1, f + 14, len - 14), 0);
}

NET_TEST(ipv4, output_without_route_is_dropped)
{
	fx_n_rt = 0; /* no default route: only the on-link subnet */
	cr_assert_eq(fx_init(), 0);
	cr_expect_eq(net_ip_output(&fx, mk_out_packet(OUR_IP, REMOTE_IP, 1), REMOTE_IP, fx_now),
		     -ENETUNREACH);
	fx_expect_one_drop(DP_DROP_IPV4_NO_ROUTE);
	cr_expect_eq(fx_n_out, 0, "no ARP either");
}

NET_TEST(ipv4, output_to_what_arp_cannot_resolve_has_no_route)
{
	uint32_t dsts[] = {OUR_IP, 0, IP4(255, 255, 255, 255), IP4(224, 0, 0, 5)};
	for (unsigned i = 0; i < 4; i++)
		cr_expect_eq(net_ip_output(&fx, mk_out_packet(OUR_IP, dsts[i], 1), dsts[i], fx_now),
			     -ENETUNREACH, "destination %u", i);
	cr_expect_eq(fx_drop(DP_DROP_IPV4_NO_ROUTE), 4);
	cr_expect_eq(fx_n_out, 0);
}

NET_TEST(ipv4, on_link_destination_is_resolved_directly)
{
	net_ip_output(&fx, mk_out_packet(OUR_IP, PEER_IP, 1), PEER_IP, fx_now);
	cr_assert_eq(fx_n_out, 1);
	cr_expect_eq(f_arp(out_frame(0))->arp_data.arp_tip, PEER_IP, "not via the gateway");
}

NET_TEST(ipv4, longest_prefix_wins)
{
	uint32_t gw2 = IP4(198, 51, 100, 254), gw3 = IP4(198, 51, 100, 253);
	/* configured shortest first: the ctx sorts them */
	fx_rt[1] = (struct net_route){.dst = IP4(203, 0, 113, 0), .len = 25, .via = gw2};
	fx_rt[2] = (struct net_route){.dst = IP4(203, 0, 113, 0), .len = 26, .via = gw3};
	fx_n_rt = 3;
	cr_assert_eq(fx_init(), 0);
	const struct {
		uint32_t dst, next_hop;
	} want[] = {
		{IP4(203, 0, 113, 9), gw3},
		{IP4(203, 0, 113, 100), gw2},
		{IP4(203, 0, 113, 200), GW_IP},
		{IP4(198, 51, 100, 9), IP4(198, 51, 100, 9)},
	};
	for (unsigned i = 0; i < 4; i++) {
		uint16_t port = 99;
		uint32_t nh = 0;
		cr_assert(net_route_lookup(&fx, want[i].dst, &port, &nh));
		cr_expect_eq(nh, want[i].next_hop, "route %u", i);
		cr_expect_eq(port, 0);
	}

	net_ip_output(&fx, mk_out_packet(OUR_IP, IP4(203, 0, 113, 9), 1), IP4(203, 0, 113, 9),
		      fx_now);
	cr_assert_eq(fx_n_out, 1);
	cr_expect_eq(f_arp(out_frame(0))->arp_data.arp_tip, gw3);
}

NET_TEST(ipv4, routes_out_of_the_second_port_use_its_mac_and_address)
{
	fx_two_ports();
	net_ip_output(&fx, mk_out_packet(OUR_IP1, IP4(203, 0, 113, 50), 1), IP4(203, 0, 113, 50),
		      fx_now);
	cr_assert_eq(fx_n_out, 1);
	cr_expect_eq(fx_out[0].port, 1);
	struct rte_arp_hdr *a = f_arp(out_frame(0));
	cr_expect(rte_is_same_ether_addr(&a->arp_data.arp_sha, &OUR_MAC1));
	cr_expect_eq(a->arp_data.arp_sip, OUR_IP1, "the sender address is port 1's");
}

NET_TEST(ipv4, output_to_resolved_next_hop_builds_ethernet_header)
{
	net_arp_learn(&fx, 0, GW_IP, &GW_MAC, fx_now);
	struct rte_mbuf *m = mk_out_packet(OUR_IP, REMOTE_IP, 1);
	uint16_t ip_len = (uint16_t)rte_pktmbuf_pkt_len(m);
	cr_expect_eq(net_ip_output(&fx, m, REMOTE_IP, fx_now), 0);
	cr_assert_eq(fx_n_out, 1);
	uint8_t *r = out_frame(0);
	cr_expect_eq(out_len(0), ip_len + 14u);
	cr_expect(rte_is_same_ether_addr(&f_eth(r)->dst_addr, &GW_MAC));
	cr_expect(rte_is_same_ether_addr(&f_eth(r)->src_addr, &OUR_MAC));
	cr_expect_eq(f_eth(r)->ether_type, rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4));
	cr_expect_eq(f_ip(r)->dst_addr, REMOTE_IP);
}

NET_TEST(ipv4, output_without_headroom_is_refused)
{
	struct rte_mbuf *m = mk_out_packet(OUR_IP, REMOTE_IP, 1);
	rte_pktmbuf_prepend(m, (uint16_t)(rte_pktmbuf_headroom(m) - 4));
	cr_expect_eq(net_ip_output(&fx, m, REMOTE_IP, fx_now), -ENOBUFS);
	fx_expect_one_drop(DP_DROP_MBUF_ALLOC_FAILED);
}
