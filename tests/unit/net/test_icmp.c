/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Tests of dataplane/net/icmp.c: echo replies and their limit, the errors
 * we receive, the errors we send and the ones we must never send, and the
 * operator's ping.
 */
#include "net_fixture.h"

#include <errno.h>
#include <string.h>

TestSuite(icmp, .init = fx_setup, .fini = fx_teardown);

static const char payload[] = "abcdefghijklmnopqrstuvwxyz012345";

NET_TEST(icmp, echo_request_gets_reply_with_swapped_addresses)
{
	uint8_t f[FRAME_MAX];
	size_t len = mk_icmp(f, REMOTE_IP, OUR_IP, RTE_IP_ICMP_ECHO_REQUEST, 0, 0x4242, 17, payload,
			     sizeof(payload));
	f_eth(f)->src_addr = GW_MAC; /* from beyond the gateway */
	fx_input(f, len);

	cr_assert_eq(fx_n_out, 1);
	cr_expect_eq(fx_out[0].port, 0);
	uint8_t *r = out_frame(0);
	cr_expect_eq(out_len(0), len);
	cr_expect(rte_is_same_ether_addr(&f_eth(r)->dst_addr, &GW_MAC),
		  "straight back to the sender");
	cr_expect(rte_is_same_ether_addr(&f_eth(r)->src_addr, &OUR_MAC));
	expect_ipv4_frame(r, out_len(0), IPPROTO_ICMP, OUR_IP, REMOTE_IP);
	struct rte_icmp_hdr *ih = f_l4(r);
	cr_expect_eq(ih->icmp_type, RTE_IP_ICMP_ECHO_REPLY);
	cr_expect_eq(ih->icmp_code, 0);
	cr_expect_eq(rte_be_to_cpu_16(ih->icmp_ident), 0x4242);
	cr_expect_eq(rte_be_to_cpu_16(ih->icmp_seq_nb), 17);
	cr_expect_eq(memcmp(ih + 1, payload, sizeof(payload)), 0, "data returned as received");
	cr_expect_eq(fx_count(DP_C_ICMP_ECHO_IN), 1);
	cr_expect_eq(fx_count(DP_C_ICMP_ECHO_REPLIES_SENT), 1);
	cr_expect_eq(fx_drops_total(), 0);
	cr_expect_eq(fx_count(DP_C_ARP_REQUESTS_SENT), 0, "no ARP needed to answer");
}

NET_TEST(icmp, echo_with_odd_length_gets_a_right_checksum)
{
	uint8_t f[FRAME_MAX];
	size_t len = mk_icmp(f, PEER_IP, OUR_IP, RTE_IP_ICMP_ECHO_REQUEST, 0, 1, 1, "odd", 3);
	fx_input(f, len);
	cr_assert_eq(fx_n_out, 1);
	expect_ipv4_frame(out_frame(0), out_len(0), IPPROTO_ICMP, OUR_IP, PEER_IP);
}

NET_TEST(icmp, echo_flood_is_rate_limited)
{
	uint8_t f[FRAME_MAX];
	size_t len = mk_icmp(f, PEER_IP, OUR_IP, RTE_IP_ICMP_ECHO_REQUEST, 0, 1, 1, "x", 1);
	for (unsigned i = 0; i < 20; i++)
		fx_input(f, len);
	cr_expect_eq(fx_n_out, 5, "the burst");
	cr_expect_eq(fx_drop(DP_DROP_ICMP_RATE_LIMITED), 15);
	cr_expect_eq(fx_drops_total(), 15);
	cr_expect_eq(fx_count(DP_C_ICMP_ECHO_IN), 20);
	cr_expect_eq(fx_count(DP_C_ICMP_ECHO_REPLIES_SENT), 5);

	fx_advance_ms(20); /* 100/s: two more tokens */
	for (unsigned i = 0; i < 5; i++)
		fx_input(f, len);
	cr_expect_eq(fx_n_out, 7, "the rate refills the bucket");
}

NET_TEST(icmp, truncated_icmp_is_malformed)
{
	uint8_t f[FRAME_MAX];
	size_t len = mk_ip(f, PEER_IP, OUR_IP, IPPROTO_ICMP, "\x08\x00\xf7\xff", 4);
	fx_input(f, len);
	fx_expect_one_drop(DP_DROP_ICMP_MALFORMED);
	cr_expect_eq(fx_n_out, 0);
}

NET_TEST(icmp, bad_icmp_checksum_is_malformed)
{
	uint8_t f[FRAME_MAX];
	size_t len = mk_icmp(f, PEER_IP, OUR_IP, RTE_IP_ICMP_ECHO_REQUEST, 0, 1, 1, "x", 1);
	((struct rte_icmp_hdr *)f_l4(f))->icmp_cksum ^= 0x0001;
	fx_input(f, len);
	fx_expect_one_drop(DP_DROP_ICMP_MALFORMED);
	cr_expect_eq(fx_n_out, 0);
	cr_expect_eq(fx_count(DP_C_ICMP_ECHO_IN), 0);
}

NET_TEST(icmp, unhandled_type_is_dropped)
{
	uint8_t f[FRAME_MAX];
	size_t len = mk_icmp(f, PEER_IP, OUR_IP, 13 /* timestamp */, 0, 1, 1, "0123456789ab", 12);
	fx_input(f, len);
	fx_expect_one_drop(DP_DROP_ICMP_UNHANDLED);
	cr_expect_eq(fx_n_out, 0);
}

/* An ICMP error about a TCP segment we sent to REMOTE_IP, quoting QUOTED bytes. */
static size_t icmp_error_frame(uint8_t *f, uint8_t type, uint8_t code, size_t quoted)
{
	uint8_t orig[FRAME_MAX];
	mk_tcp(orig, OUR_IP, REMOTE_IP, 25, 40000, 1, 2, RTE_TCP_ACK_FLAG, NULL, 0);
	return mk_icmp(f, GW_IP, OUR_IP, type, code, 0, 0, orig + RTE_ETHER_HDR_LEN, quoted);
}

NET_TEST(icmp, errors_about_our_datagrams_are_consumed)
{
	uint8_t types[] = {3, 4, 11, 12};
	uint8_t f[FRAME_MAX];
	for (unsigned i = 0; i < 4; i++) {
		size_t len = icmp_error_frame(f, types[i], 1, 28);
		fx_input(f, len);
	}
	cr_expect_eq(fx_count(DP_C_ICMP_ERRORS_IN), 4);
	cr_expect_eq(fx_drops_total(), 0);
	cr_expect_eq(fx_n_out, 0, "an error is never answered");
}

NET_TEST(icmp, error_quoting_less_than_header_and_8_bytes_is_malformed)
{
	uint8_t f[FRAME_MAX];
	size_t len = icmp_error_frame(f, 3, 1, 27);
	fx_input(f, len);
	fx_expect_one_drop(DP_DROP_ICMP_MALFORMED);
	cr_expect_eq(fx_count(DP_C_ICMP_ERRORS_IN), 0);

	/* a quote whose inner header is not IPv4 */
	len = icmp_error_frame(f, 3, 1, 28);
	((uint8_t *)f_l4(f))[8] = 0x65;
	fix_l4_cksum(f);
	fx_input(f, len);
	cr_expect_eq(fx_drop(DP_DROP_ICMP_MALFORMED), 2);

	/* an inner header with options needs its options and 8 bytes more */
	len = icmp_error_frame(f, 3, 1, 28);
	((uint8_t *)f_l4(f))[8] = 0x46;
	fix_l4_cksum(f);
	fx_input(f, len);
	cr_expect_eq(fx_drop(DP_DROP_ICMP_MALFORMED), 3);
}

NET_TEST(icmp, udp_flood_port_unreachables_are_rate_limited)
{
	uint8_t f[FRAME_MAX];
	size_t len = mk_udp(f, PEER_IP, OUR_IP, 40000, 53, "q", 1);
	for (unsigned i = 0; i < 12; i++)
		fx_input(f, len);
	cr_expect_eq(fx_n_out, 5);
	cr_expect_eq(fx_count(DP_C_ICMP_UNREACH_SENT), 5);
	cr_expect_eq(fx_drop(DP_DROP_UDP_NO_LISTENER), 12, "every datagram, answered or not");
	cr_expect_eq(fx_drop(DP_DROP_ICMP_RATE_LIMITED), 7, "every error not sent");
}

NET_TEST(icmp, error_is_capped_at_576_bytes)
{
	uint8_t f[FRAME_MAX];
	static uint8_t data[1200];
	for (unsigned i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)i;
	size_t len = mk_udp(f, PEER_IP, OUR_IP, 40000, 9, data, sizeof(data));
	fx_input(f, len);
	cr_assert_eq(fx_n_out, 1);
	uint8_t *r = out_frame(0);
	cr_expect_eq(out_len(0), 14 + 576);
	expect_ipv4_frame(r, out_len(0), IPPROTO_ICMP, OUR_IP, PEER_IP);
	cr_expect_eq(memcmp((uint8_t *)f_l4(r) + 8, f + 14, 576 - 28), 0,
		     "the offending header and as much data as fits");
}

NET_TEST(icmp, no_error_about_a_link_layer_broadcast)
{
	uint8_t f[FRAME_MAX];
	size_t len = mk_udp(f, PEER_IP, OUR_IP, 40000, 53, "q", 1);
	f_eth(f)->dst_addr = BCAST_MAC;
	fx_input(f, len);
	cr_expect_eq(fx_n_out, 0);
	fx_expect_one_drop(DP_DROP_UDP_NO_LISTENER);
	cr_expect_eq(fx_count(DP_C_ICMP_UNREACH_SENT), 0);
}

NET_TEST(icmp, no_error_about_an_icmp_error)
{
	uint8_t f[FRAME_MAX];
	size_t len = icmp_error_frame(f, 3, 1, 28);
	struct rte_mbuf *m = fx_frame(f, len, 0);
	net_icmp_error(&fx, &fx_if[0], m, 3, 2, fx_now);
	cr_expect_eq(fx_n_out, 0);
	rte_pktmbuf_free(m);

	/* about a query it may */
	len = mk_icmp(f, PEER_IP, OUR_IP, RTE_IP_ICMP_ECHO_REQUEST, 0, 1, 1, "x", 1);
	m = fx_frame(f, len, 0);
	net_icmp_error(&fx, &fx_if[0], m, 3, 2, fx_now);
	cr_expect_eq(fx_n_out, 1);
	rte_pktmbuf_free(m);
	cr_expect_eq(fx_drops_total(), 0);
}

NET_TEST(icmp, no_error_about_a_fragment_other_than_the_first)
{
	uint8_t f[FRAME_MAX];
	size_t len = mk_udp(f, PEER_IP, OUR_IP, 40000, 53, "q", 1);
	f_ip(f)->fragment_offset = rte_cpu_to_be_16(100);
	fix_ip_cksum(f);
	struct rte_mbuf *m = fx_frame(f, len, 0);
	net_icmp_error(&fx, &fx_if[0], m, 3, 3, fx_now);
	cr_expect_eq(fx_n_out, 0);
	rte_pktmbuf_free(m);
}

NET_TEST(icmp, no_error_about_a_datagram_from_no_single_host)
{
	uint8_t f[FRAME_MAX];
	size_t len = mk_udp(f, IP4(198, 51, 100, 255), OUR_IP, 40000, 53, "q", 1);
	struct rte_mbuf *m = fx_frame(f, len, 0);
	net_icmp_error(&fx, &fx_if[0], m, 3, 3, fx_now);
	rte_pktmbuf_free(m);
	len = mk_udp(f, PEER_IP, IP4(198, 51, 100, 255), 40000, 53, "q", 1);
	m = fx_frame(f, len, 0);
	net_icmp_error(&fx, &fx_if[0], m, 3, 3, fx_now);
	rte_pktmbuf_free(m);
	cr_expect_eq(fx_n_out, 0);
	cr_expect_eq(fx_drops_total(), 0, "nothing was rate-limited either");
}

NET_TEST(icmp, error_without_mbufs_counts_the_failure)
{
	struct rte_mempool *tiny =
		rte_pktmbuf_pool_create("tiny", 1, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
	cr_assert_not_null(tiny);
	struct rte_mbuf *held = rte_pktmbuf_alloc(tiny);
	cr_assert_not_null(held);
	struct rte_mempool *pool = fx_pool;
	fx_pool = tiny;
	cr_assert_eq(fx_init(), 0);

	uint8_t f[FRAME_MAX];
	size_t len = mk_udp(f, PEER_IP, OUR_IP, 40000, 53, "q", 1);
	fx_input(f, len);
	cr_expect_eq(fx_n_out, 0);
	cr_expect_eq(fx_drop(DP_DROP_MBUF_ALLOC_FAILED), 1);
	cr_expect_eq(fx_drop(DP_DROP_UDP_NO_LISTENER), 1);
	cr_expect_eq(fx_count(DP_C_ICMP_UNREACH_SENT), 0);

	rte_pktmbuf_free(held);
	fx_pool = pool;
}

NET_TEST(icmp, ping_sends_echo_requests_through_arp)
{
	cr_assert_eq(net_ping_start(&fx, REMOTE_IP, 0xbeef), 0);
	cr_expect_eq(net_ping_send(&fx, fx_now), 0);
	cr_assert_eq(fx_n_out, 1);
	cr_expect_eq(f_arp(out_frame(0))->arp_data.arp_tip, GW_IP, "resolves the gateway first");

	uint8_t f[FRAME_MAX];
	size_t len = mk_arp(f, RTE_ARP_OP_REPLY, &GW_MAC, GW_IP, &OUR_MAC, OUR_IP, &OUR_MAC);
	fx_input(f, len);
	cr_expect_eq(net_ping_send(&fx, fx_now), 0);
	cr_assert_eq(fx_n_out, 3);
	for (unsigned i = 1; i < 3; i++) {
		uint8_t *r = out_frame(i);
		cr_expect(rte_is_same_ether_addr(&f_eth(r)->dst_addr, &GW_MAC));
		expect_ipv4_frame(r, out_len(i), IPPROTO_ICMP, OUR_IP, REMOTE_IP);
		cr_expect_eq(out_len(i), 14 + 20 + 8 + 56, "56 bytes of data");
		struct rte_icmp_hdr *ih = f_l4(r);
		cr_expect_eq(ih->icmp_type, RTE_IP_ICMP_ECHO_REQUEST);
		cr_expect_eq(rte_be_to_cpu_16(ih->icmp_ident), 0xbeef);
		cr_expect_eq(rte_be_to_cpu_16(ih->icmp_seq_nb), i - 1, "seq is the sent index");
	}
	cr_expect_eq(fx_count(DP_C_ICMP_ECHO_REQUESTS_SENT), 2);
	cr_expect_eq(fx.ping.sent, 2);
}

NET_TEST(icmp, echo_reply_matching_ping_records_rtt)
{
	cr_assert_eq(net_ping_start(&fx, PEER_IP, 0x1234), 0);
	net_arp_learn(&fx, 0, PEER_IP, &PEER_MAC, fx_now);
	cr_expect_eq(net_ping_send(&fx, fx_now), 0);
	fx_advance_ms(1);
	cr_expect_eq(net_ping_send(&fx, fx_now), 0);

	uint8_t f[FRAME_MAX];
	fx_advance_ms(2);
	/* the answer to seq 1 comes first: 2 ms */
	size_t len = mk_icmp(f, PEER_IP, OUR_IP, RTE_IP_ICMP_ECHO_REPLY, 0, 0x1234, 1, "x", 1);
	fx_input(f, len);
	fx_advance_ms(1);
	len = mk_icmp(f, PEER_IP, OUR_IP, RTE_IP_ICMP_ECHO_REPLY, 0, 0x1234, 0, "x", 1);
	fx_input(f, len);
	fx_input(f, len); /* a duplicate */

	cr_expect_eq(fx.ping.received, 2);
	cr_expect_eq(fx.ping.rtt_us[0], 4000);
	cr_expect_eq(fx.ping.rtt_us[1], 2000);
	cr_expect_eq(fx.ping.rtt_us[2], UINT32_MAX, "never sent");
	cr_expect_eq(fx_count(DP_C_ICMP_ECHO_REPLIES_IN), 3);
	cr_expect_eq(fx_drops_total(), 0);
}

NET_TEST(icmp, echo_reply_that_is_not_for_our_ping_is_unhandled)
{
	uint8_t f[FRAME_MAX];
	size_t len = mk_icmp(f, PEER_IP, OUR_IP, RTE_IP_ICMP_ECHO_REPLY, 0, 0x1234, 0, "x", 1);
	fx_input(f, len);
	cr_expect_eq(fx_drop(DP_DROP_ICMP_UNHANDLED), 1, "no ping running");

	cr_assert_eq(net_ping_start(&fx, PEER_IP, 0x1234), 0);
	len = mk_icmp(f, PEER_IP, OUR_IP, RTE_IP_ICMP_ECHO_REPLY, 0, 0x9999, 0, "x", 1);
	fx_input(f, len);
	cr_expect_eq(fx_drop(DP_DROP_ICMP_UNHANDLED), 2, "another identifier");
	len = mk_icmp(f, REMOTE_IP, OUR_IP, RTE_IP_ICMP_ECHO_REPLY, 0, 0x1234, 0, "x", 1);
	fx_input(f, len);
	cr_expect_eq(fx_drop(DP_DROP_ICMP_UNHANDLED), 3, "another host");
	cr_expect_eq(fx_count(DP_C_ICMP_ECHO_REPLIES_IN), 0);
	cr_expect_eq(fx.ping.received, 0);
}

NET_TEST(icmp, ping_refuses_what_it_cannot_do)
{
	cr_expect_eq(net_ping_send(&fx, fx_now), -EINVAL, "not started");
	cr_expect_eq(net_ping_start(&fx, 0, 1), -EINVAL);
	cr_assert_eq(net_ping_start(&fx, PEER_IP, 1), 0);
	net_arp_learn(&fx, 0, PEER_IP, &PEER_MAC, fx_now);
	for (unsigned i = 0; i < NET_PING_MAX; i++)
		cr_assert_eq(net_ping_send(&fx, fx_now), 0);
	cr_expect_eq(net_ping_send(&fx, fx_now), -ENOSPC);
	cr_expect_eq(fx_n_out, NET_PING_MAX);

	fx_n_rt = 0;
	cr_assert_eq(fx_init(), 0);
	cr_assert_eq(net_ping_start(&fx, REMOTE_IP, 1), 0);
	cr_expect_eq(net_ping_send(&fx, fx_now), -ENETUNREACH);
	cr_expect_eq(fx_drop(DP_DROP_IPV4_NO_ROUTE), 1);
	cr_expect_eq(fx_count(DP_C_ICMP_ECHO_REQUESTS_SENT), NET_PING_MAX);
}

NET_TEST(icmp, shared_frame_is_answered_from_a_copy)
{
	uint8_t f[FRAME_MAX];
	size_t len = mk_icmp(f, PEER_IP, OUR_IP, RTE_IP_ICMP_ECHO_REQUEST, 0, 1, 1, "x", 1);
	struct rte_mbuf *m = fx_frame(f, len, 0);
	rte_mbuf_refcnt_update(m, 1); /* someone else (a capture, a clone) still holds it */
	net_input(&fx, m, fx_now);
	cr_assert_eq(fx_n_out, 1);
	cr_expect_neq(fx_out[0].m, m, "answered from a copy");
	cr_expect_eq(memcmp(rte_pktmbuf_mtod(m, uint8_t *), f, len), 0, "shared data untouched");
	struct rte_icmp_hdr *ih = f_l4(out_frame(0));
	cr_expect_eq(ih->icmp_type, RTE_IP_ICMP_ECHO_REPLY);
	cr_expect_eq(rte_mbuf_refcnt_read(m), 1, "our reference was released");
	rte_pktmbuf_free(m);
}
