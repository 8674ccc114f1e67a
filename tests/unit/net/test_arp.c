/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Tests of dataplane/net/arp.c: answers for our addresses, what the table
 * learns (RFC 826 merge), resolution with waiting packets, retries, aging,
 * refresh, announcements and the limits.
 */
#include "net_fixture.h"

#include <errno.h>
#include <string.h>

TestSuite(arp, .init = fx_setup, .fini = fx_teardown);

static void arp_in_port(uint16_t op, const struct rte_ether_addr *sha, uint32_t sip,
			uint32_t tip, const struct rte_ether_addr *eth_dst, uint16_t port)
{
	uint8_t f[FRAME_MAX];
	size_t len = mk_arp(f, op, sha, sip, op == RTE_ARP_OP_REQUEST ? &ZERO_MAC : &OUR_MAC, tip,
			    eth_dst);
	fx_input_port(f, len, port);
}

static void arp_in(uint16_t op, const struct rte_ether_addr *sha, uint32_t sip, uint32_t tip,
		   const struct rte_ether_addr *eth_dst)
{
	arp_in_port(op, sha, sip, tip, eth_dst, 0);
}

/* The table entry for IP on port 0, or a zeroed one with ip 0 when there is none. */
static struct net_arp_entry entry_of(uint32_t ip)
{
	struct net_arp_entry all[NET_ARP_ENTRIES];
	unsigned n = net_arp_dump(&fx, all, NET_ARP_ENTRIES, fx_now);
	for (unsigned i = 0; i < n; i++)
		if (all[i].ip == ip && all[i].port_id == 0)
			return all[i];
	return (struct net_arp_entry){0};
}

static unsigned n_entries(void)
{
	static struct net_arp_entry all[NET_ARP_ENTRIES];
	return net_arp_dump(&fx, all, NET_ARP_ENTRIES, fx_now);
}

static void expect_arp_frame(unsigned i, uint16_t op, const struct rte_ether_addr *eth_dst,
			     uint32_t sip, const struct rte_ether_addr *tha, uint32_t tip)
{
	uint8_t *f = out_frame(i);
	struct rte_arp_hdr *a = f_arp(f);
	cr_expect_eq(out_len(i), RTE_ETHER_HDR_LEN + sizeof(*a));
	cr_expect(rte_is_same_ether_addr(&f_eth(f)->dst_addr, eth_dst), "Ethernet destination");
	cr_expect(rte_is_same_ether_addr(&f_eth(f)->src_addr, &OUR_MAC), "Ethernet source");
	cr_expect_eq(f_eth(f)->ether_type, rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP));
	cr_expect_eq(a->arp_hardware, rte_cpu_to_be_16(RTE_ARP_HRD_ETHER));
	cr_expect_eq(a->arp_protocol, rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4));
	cr_expect_eq(a->arp_hlen, 6);
	cr_expect_eq(a->arp_plen, 4);
	cr_expect_eq(a->arp_opcode, rte_cpu_to_be_16(op), "opcode");
	cr_expect(rte_is_same_ether_addr(&a->arp_data.arp_sha, &OUR_MAC), "sender MAC");
	cr_expect_eq(a->arp_data.arp_sip, sip, "sender IP");
	cr_expect(rte_is_same_ether_addr(&a->arp_data.arp_tha, tha), "target MAC");
	cr_expect_eq(a->arp_data.arp_tip, tip, "target IP");
}

/* The UDP destination port mk_out_packet() used as a tag. */
static uint16_t tag_of(unsigned i)
{
	struct rte_udp_hdr *uh = f_l4(out_frame(i));
	return rte_be_to_cpu_16(uh->dst_port);
}

NET_TEST(arp, request_for_our_address_gets_reply)
{
	uint8_t f[FRAME_MAX];
	size_t len =
		mk_arp(f, RTE_ARP_OP_REQUEST, &PEER_MAC, PEER_IP, &ZERO_MAC, OUR_IP, &BCAST_MAC);
	memset(f + len, 0, 60 - len); /* with the Ethernet padding a real NIC delivers */
	fx_input(f, 60);
	cr_assert_eq(fx_n_out, 1);
	cr_expect_eq(fx_out[0].port, 0);
	expect_arp_frame(0, RTE_ARP_OP_REPLY, &PEER_MAC, OUR_IP, &PEER_MAC, PEER_IP);
	cr_expect_eq(fx_count(DP_C_ARP_IN), 1);
	cr_expect_eq(fx_count(DP_C_ARP_REPLIES_SENT), 1);
	cr_expect_eq(fx_drops_total(), 0);
}

NET_TEST(arp, request_teaches_us_the_sender_and_the_other_workers)
{
	arp_in(RTE_ARP_OP_REQUEST, &PEER_MAC, PEER_IP, OUR_IP, &BCAST_MAC);
	struct net_arp_entry e = entry_of(PEER_IP);
	cr_assert_eq(e.ip, PEER_IP, "learned");
	cr_expect(e.resolved);
	cr_expect(rte_is_same_ether_addr(&e.mac, &PEER_MAC));
	cr_expect_eq(fx_count(DP_C_ARP_LEARNED), 1);
	cr_assert_eq(fx_n_learned, 1, "told the other workers");
	cr_expect_eq(fx_learned[0].port, 0);
	cr_expect_eq(fx_learned[0].ip, PEER_IP);
	cr_expect(rte_is_same_ether_addr(&fx_learned[0].mac, &PEER_MAC));

	/* and packets to it leave at once, without asking */
	cr_expect_eq(net_ip_output(&fx, mk_out_packet(OUR_IP, PEER_IP, 1), PEER_IP, fx_now), 0);
	cr_assert_eq(fx_n_out, 2);
	cr_expect(rte_is_same_ether_addr(&f_eth(out_frame(1))->dst_addr, &PEER_MAC));
	cr_expect_eq(fx_count(DP_C_ARP_REQUESTS_SENT), 0);
}

NET_TEST(arp, every_confirmation_from_the_wire_reaches_the_other_workers)
{
	arp_in(RTE_ARP_OP_REQUEST, &PEER_MAC, PEER_IP, OUR_IP, &BCAST_MAC);
	arp_in(RTE_ARP_OP_REQUEST, &PEER_MAC, PEER_IP, OUR_IP, &BCAST_MAC);
	cr_expect_eq(fx_count(DP_C_ARP_LEARNED), 1, "the second one is no news");
	cr_expect_eq(fx_n_learned, 2, "but another worker may be waiting on that answer");
}

NET_TEST(arp, request_for_other_address_is_not_for_us)
{
	arp_in(RTE_ARP_OP_REQUEST, &PEER_MAC, PEER_IP, IP4(198, 51, 100, 50), &BCAST_MAC);
	cr_expect_eq(fx_n_out, 0);
	fx_expect_one_drop(DP_DROP_ARP_NOT_FOR_US);
	cr_expect_eq(n_entries(), 0, "RFC 826: a stranger asking for someone else is not learned");
	cr_expect_eq(fx_n_learned, 0);
}

NET_TEST(arp, request_for_the_address_of_another_port_is_not_for_us)
{
	fx_two_ports();
	arp_in(RTE_ARP_OP_REQUEST, &PEER_MAC, PEER_IP, OUR_IP1, &BCAST_MAC);
	cr_expect_eq(fx_n_out, 0);
	fx_expect_one_drop(DP_DROP_ARP_NOT_FOR_US);
}

NET_TEST(arp, gratuitous_arp_updates_a_known_neighbour_only)
{
	uint32_t stranger = IP4(198, 51, 100, 60);
	arp_in(RTE_ARP_OP_REQUEST, &OTHER_MAC, stranger, stranger, &BCAST_MAC);
	cr_expect_eq(n_entries(), 0, "an announcement by a stranger is not learned");
	cr_expect_eq(fx_drop(DP_DROP_ARP_NOT_FOR_US), 1);

	arp_in(RTE_ARP_OP_REQUEST, &PEER_MAC, PEER_IP, OUR_IP, &BCAST_MAC);
	fx_n_learned = 0;
	/* the neighbour moved to another NIC and says so */
	arp_in(RTE_ARP_OP_REQUEST, &OTHER_MAC, PEER_IP, PEER_IP, &BCAST_MAC);
	struct net_arp_entry e = entry_of(PEER_IP);
	cr_expect(rte_is_same_ether_addr(&e.mac, &OTHER_MAC), "updated (RFC 826 merge)");
	cr_expect_eq(fx_count(DP_C_ARP_LEARNED), 2);
	cr_assert_eq(fx_n_learned, 1);
	cr_expect(rte_is_same_ether_addr(&fx_learned[0].mac, &OTHER_MAC));
	cr_expect_eq(fx_drop(DP_DROP_ARP_NOT_FOR_US), 2, "still not a question to us");
	cr_expect_eq(fx_count(DP_C_ARP_REPLIES_SENT), 1);
}

NET_TEST(arp, reply_with_a_changed_mac_replaces_the_old_one)
{
	arp_in(RTE_ARP_OP_REQUEST, &PEER_MAC, PEER_IP, OUR_IP, &BCAST_MAC);
	arp_in(RTE_ARP_OP_REPLY, &OTHER_MAC, PEER_IP, OUR_IP, &OUR_MAC);
	struct net_arp_entry e = entry_of(PEER_IP);
	cr_expect(rte_is_same_ether_addr(&e.mac, &OTHER_MAC));
	cr_expect_eq(fx_count(DP_C_ARP_LEARNED), 2);
	cr_expect_eq(fx_drops_total(), 0, "a reply to us is consumed, not dropped");
}

NET_TEST(arp, unsolicited_reply_to_us_is_learned)
{
	arp_in(RTE_ARP_OP_REPLY, &PEER_MAC, PEER_IP, OUR_IP, &OUR_MAC);
	cr_expect_eq(fx_n_out, 0, "a reply is not answered");
	cr_expect(entry_of(PEER_IP).resolved);
	cr_expect_eq(fx_drops_total(), 0);
}

NET_TEST(arp, truncated_arp_is_malformed)
{
	uint8_t f[FRAME_MAX];
	size_t len =
		mk_arp(f, RTE_ARP_OP_REQUEST, &PEER_MAC, PEER_IP, &ZERO_MAC, OUR_IP, &BCAST_MAC);
	fx_input(f, len - 1);
	cr_expect_eq(fx_n_out, 0);
	fx_expect_one_drop(DP_DROP_ARP_MALFORMED);
	fx_input(f, RTE_ETHER_HDR_LEN);
	cr_expect_eq(fx_drop(DP_DROP_ARP_MALFORMED), 2, "an empty ARP payload too");
	cr_expect_eq(fx_count(DP_C_ARP_IN), 2);
}

NET_TEST(arp, arp_with_foreign_header_fields_is_malformed)
{
	static const struct rte_ether_addr mcast = {{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01}};
	uint8_t f[FRAME_MAX];
	size_t len;
	unsigned n = 0;

#define SPOIL(stmt)                                                                                \
	do {                                                                                       \
		len = mk_arp(f, RTE_ARP_OP_REQUEST, &PEER_MAC, PEER_IP, &ZERO_MAC, OUR_IP,         \
			     &BCAST_MAC);                                                          \
		struct rte_arp_hdr *a = f_arp(f);                                                  \
		stmt;                                                                              \
		fx_input(f, len);                                                                  \
		n++;                                                                               \
		cr_expect_eq(fx_drop(DP_DROP_ARP_MALFORMED), n, "%s", #stmt);                      \
	} while (0)

	SPOIL(a->arp_hardware = rte_cpu_to_be_16(6));
	SPOIL(a->arp_protocol = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV6));
	SPOIL(a->arp_hlen = 8);
	SPOIL(a->arp_plen = 16);
	SPOIL(a->arp_opcode = rte_cpu_to_be_16(RTE_ARP_OP_REVREQUEST));
	SPOIL(a->arp_data.arp_sha = mcast);
	SPOIL(a->arp_data.arp_sha = ZERO_MAC);
#undef SPOIL

	cr_expect_eq(fx_drops_total(), n);
	cr_expect_eq(fx_n_out, 0);
	cr_expect_eq(n_entries(), 0);
}

NET_TEST(arp, probe_is_answered_but_not_learned)
{
	/* RFC 5227 §2.1.1: sender 0.0.0.0 while checking whether our address is taken */
	arp_in(RTE_ARP_OP_REQUEST, &PEER_MAC, 0, OUR_IP, &BCAST_MAC);
	cr_assert_eq(fx_n_out, 1, "the owner answers: the address is in use");
	expect_arp_frame(0, RTE_ARP_OP_REPLY, &PEER_MAC, OUR_IP, &PEER_MAC, 0);
	cr_expect_eq(n_entries(), 0);
	cr_expect_eq(fx_n_learned, 0);
	cr_expect_eq(fx_count(DP_C_ARP_LEARNED), 0);
}

NET_TEST(arp, sender_claiming_our_address_is_not_learned)
{
	arp_in(RTE_ARP_OP_REQUEST, &OTHER_MAC, OUR_IP, OUR_IP, &BCAST_MAC);
	cr_expect_eq(n_entries(), 0);
	cr_expect_eq(fx_n_learned, 0);
	cr_expect_eq(fx_count(DP_C_ARP_LEARNED), 0);
	/* our answer tells the impostor the address is taken */
	cr_assert_eq(fx_n_out, 1);
	expect_arp_frame(0, RTE_ARP_OP_REPLY, &OTHER_MAC, OUR_IP, &OTHER_MAC, OUR_IP);
}

NET_TEST(arp, output_to_unresolved_next_hop_waits_for_arp_reply)
{
	cr_expect_eq(net_ip_output(&fx, mk_out_packet(OUR_IP, PEER_IP, 1), PEER_IP, fx_now), 0);
	cr_expect_eq(net_ip_output(&fx, mk_out_packet(OUR_IP, PEER_IP, 2), PEER_IP, fx_now), 0);
	cr_assert_eq(fx_n_out, 1, "one request, the packets wait");
	expect_arp_frame(0, RTE_ARP_OP_REQUEST, &BCAST_MAC, OUR_IP, &ZERO_MAC, PEER_IP);
	cr_expect_eq(fx_count(DP_C_ARP_REQUESTS_SENT), 1);
	cr_expect_not(entry_of(PEER_IP).resolved);

	fx_advance_ms(3);
	arp_in(RTE_ARP_OP_REPLY, &PEER_MAC, PEER_IP, OUR_IP, &OUR_MAC);
	cr_assert_eq(fx_n_out, 3, "both packets sent on the reply");
	for (unsigned i = 1; i < 3; i++) {
		cr_expect_eq(fx_out[i].port, 0);
		cr_expect(rte_is_same_ether_addr(&f_eth(out_frame(i))->dst_addr, &PEER_MAC));
		cr_expect(rte_is_same_ether_addr(&f_eth(out_frame(i))->src_addr, &OUR_MAC));
		cr_expect_eq(f_eth(out_frame(i))->ether_type,
			     rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4));
		cr_expect_eq(f_ip(out_frame(i))->dst_addr, PEER_IP);
		cr_expect(l4_cksum_ok(out_frame(i)), "payload untouched");
	}
	cr_expect_eq(tag_of(1), 1, "in the order they came");
	cr_expect_eq(tag_of(2), 2);
	cr_expect_eq(fx_drops_total(), 0);
}

NET_TEST(arp, output_beyond_the_gateway_resolves_the_gateway)
{
	cr_expect_eq(net_ip_output(&fx, mk_out_packet(OUR_IP, REMOTE_IP, 1), REMOTE_IP, fx_now), 0);
	cr_assert_eq(fx_n_out, 1);
	expect_arp_frame(0, RTE_ARP_OP_REQUEST, &BCAST_MAC, OUR_IP, &ZERO_MAC, GW_IP);
	arp_in(RTE_ARP_OP_REPLY, &GW_MAC, GW_IP, OUR_IP, &OUR_MAC);
	cr_assert_eq(fx_n_out, 2);
	cr_expect(rte_is_same_ether_addr(&f_eth(out_frame(1))->dst_addr, &GW_MAC));
	cr_expect_eq(f_ip(out_frame(1))->dst_addr, REMOTE_IP, "the IP destination stays");
}

NET_TEST(arp, pending_queue_overflow_is_dropped_and_counted)
{
	for (uint16_t i = 1; i <= 4; i++)
		cr_expect_eq(net_ip_output(&fx, mk_out_packet(OUR_IP, PEER_IP, i), PEER_IP, fx_now),
			     0);
	cr_expect_eq(net_ip_output(&fx, mk_out_packet(OUR_IP, PEER_IP, 5), PEER_IP, fx_now),
		     -ENOBUFS);
	cr_expect_eq(net_ip_output(&fx, mk_out_packet(OUR_IP, PEER_IP, 6), PEER_IP, fx_now),
		     -ENOBUFS);
	cr_expect_eq(fx_drop(DP_DROP_ARP_PENDING_FULL), 2);
	cr_expect_eq(fx_drops_total(), 2);
	cr_expect_eq(fx_count(DP_C_ARP_REQUESTS_SENT), 1, "one request per resolution");

	arp_in(RTE_ARP_OP_REPLY, &PEER_MAC, PEER_IP, OUR_IP, &OUR_MAC);
	cr_assert_eq(fx_n_out, 5);
	for (unsigned i = 1; i < 5; i++)
		cr_expect_eq(tag_of(i), i);
}

NET_TEST(arp, unanswered_arp_drops_pending_after_retries)
{
	net_ip_output(&fx, mk_out_packet(OUR_IP, PEER_IP, 1), PEER_IP, fx_now);
	net_ip_output(&fx, mk_out_packet(OUR_IP, PEER_IP, 2), PEER_IP, fx_now);
	cr_expect_eq(fx_count(DP_C_ARP_REQUESTS_SENT), 1);

	fx_advance_ms(500);
	net_periodic(&fx, fx_now);
	cr_expect_eq(fx_count(DP_C_ARP_REQUESTS_SENT), 1, "not before a second has passed");
	fx_advance_ms(500);
	net_periodic(&fx, fx_now);
	cr_expect_eq(fx_count(DP_C_ARP_REQUESTS_SENT), 2, "second try after 1 s");
	fx_advance_ms(1000);
	net_periodic(&fx, fx_now);
	cr_expect_eq(fx_count(DP_C_ARP_REQUESTS_SENT), 3, "third try after 2 s");
	for (unsigned i = 0; i < 3; i++)
		expect_arp_frame(i, RTE_ARP_OP_REQUEST, &BCAST_MAC, OUR_IP, &ZERO_MAC, PEER_IP);
	cr_expect_eq(fx_drops_total(), 0, "still waiting");

	fx_advance_ms(1000);
	net_periodic(&fx, fx_now);
	cr_expect_eq(fx_count(DP_C_ARP_REQUESTS_SENT), 3, "three requests and no more");
	cr_expect_eq(fx_drop(DP_DROP_ARP_UNRESOLVED), 2, "each waiting packet counted");
	cr_expect_eq(fx_drops_total(), 2);
	cr_expect_eq(n_entries(), 0, "the entry is gone");

	/* the next packet starts over */
	cr_expect_eq(net_ip_output(&fx, mk_out_packet(OUR_IP, PEER_IP, 3), PEER_IP, fx_now), 0);
	cr_expect_eq(fx_count(DP_C_ARP_REQUESTS_SENT), 4);
}

NET_TEST(arp, idle_entry_expires_after_timeout)
{
	arp_in(RTE_ARP_OP_REQUEST, &PEER_MAC, PEER_IP, OUR_IP, &BCAST_MAC);
	rte_pktmbuf_free(fx_out[0].m); /* the reply */
	fx_n_out = 0;
	fx_advance_ms(59 * 1000);
	net_periodic(&fx, fx_now);
	cr_expect(entry_of(PEER_IP).resolved, "still trusted at 59 s");
	fx_advance_ms(1000);
	net_periodic(&fx, fx_now);
	cr_expect_eq(n_entries(), 0, "gone at 60 s");
	cr_expect_eq(fx_n_out, 0, "an idle entry is not re-probed");
	cr_expect_eq(fx_drops_total(), 0);
}

NET_TEST(arp, entry_in_use_is_refreshed_with_unicast_request)
{
	arp_in(RTE_ARP_OP_REQUEST, &PEER_MAC, PEER_IP, OUR_IP, &BCAST_MAC);
	fx_advance_ms(30 * 1000);
	net_ip_output(&fx, mk_out_packet(OUR_IP, PEER_IP, 1), PEER_IP, fx_now);
	cr_assert_eq(fx_n_out, 2);

	fx_advance_ms(30 * 1000);
	net_periodic(&fx, fx_now);
	cr_assert_eq(fx_n_out, 3, "a request once stale");
	expect_arp_frame(2, RTE_ARP_OP_REQUEST, &PEER_MAC, OUR_IP, &ZERO_MAC, PEER_IP);
	cr_expect_eq(fx_count(DP_C_ARP_REQUESTS_SENT), 1);

	/* meanwhile traffic keeps flowing to the known MAC */
	net_ip_output(&fx, mk_out_packet(OUR_IP, PEER_IP, 2), PEER_IP, fx_now);
	cr_assert_eq(fx_n_out, 4);
	cr_expect(rte_is_same_ether_addr(&f_eth(out_frame(3))->dst_addr, &PEER_MAC));

	arp_in(RTE_ARP_OP_REPLY, &PEER_MAC, PEER_IP, OUR_IP, &OUR_MAC);
	fx_advance_ms(5000);
	net_periodic(&fx, fx_now);
	cr_expect_eq(fx_count(DP_C_ARP_REQUESTS_SENT), 1, "confirmed: no more requests");
	cr_expect(entry_of(PEER_IP).resolved);
	cr_expect_eq(entry_of(PEER_IP).age_s, 5);
}

NET_TEST(arp, entry_in_use_whose_owner_went_silent_is_forgotten)
{
	arp_in(RTE_ARP_OP_REQUEST, &PEER_MAC, PEER_IP, OUR_IP, &BCAST_MAC);
	fx_advance_ms(1000);
	net_ip_output(&fx, mk_out_packet(OUR_IP, PEER_IP, 1), PEER_IP, fx_now);
	fx_advance_ms(59 * 1000);
	for (unsigned s = 0; s < 3; s++) {
		net_periodic(&fx, fx_now);
		fx_advance_ms(1000);
	}
	cr_expect_eq(fx_count(DP_C_ARP_REQUESTS_SENT), 3);
	cr_expect(entry_of(PEER_IP).resolved, "still used until the last try is out");
	net_periodic(&fx, fx_now);
	cr_expect_eq(n_entries(), 0);

	net_ip_output(&fx, mk_out_packet(OUR_IP, PEER_IP, 2), PEER_IP, fx_now);
	expect_arp_frame(fx_n_out - 1, RTE_ARP_OP_REQUEST, &BCAST_MAC, OUR_IP, &ZERO_MAC, PEER_IP);
	cr_expect_eq(fx_drops_total(), 0);
}

NET_TEST(arp, learned_from_another_worker_sends_pending_without_echoing)
{
	net_ip_output(&fx, mk_out_packet(OUR_IP, PEER_IP, 1), PEER_IP, fx_now);
	net_arp_learn(&fx, 0, PEER_IP, &PEER_MAC, fx_now);
	cr_assert_eq(fx_n_out, 2, "the waiting packet left");
	cr_expect(rte_is_same_ether_addr(&f_eth(out_frame(1))->dst_addr, &PEER_MAC));
	cr_expect_eq(fx_n_learned, 0, "not sent back to the other workers");
	cr_expect_eq(fx_count(DP_C_ARP_LEARNED), 0, "counted once, by the worker that heard it");
	cr_expect(entry_of(PEER_IP).resolved);
}

NET_TEST(arp, learn_of_what_no_neighbour_can_be_is_ignored)
{
	static const struct rte_ether_addr mcast = {{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01}};
	net_arp_learn(&fx, 0, OUR_IP, &PEER_MAC, fx_now);
	net_arp_learn(&fx, 0, 0, &PEER_MAC, fx_now);
	net_arp_learn(&fx, 7, PEER_IP, &PEER_MAC, fx_now);
	net_arp_learn(&fx, 0, PEER_IP, &mcast, fx_now);
	net_arp_learn(&fx, 0, PEER_IP, &ZERO_MAC, fx_now);
	cr_expect_eq(n_entries(), 0);
	cr_expect_eq(fx_drops_total(), 0);
}

NET_TEST(arp, full_table_drops_and_counts)
{
	static const struct rte_ether_addr mac2 = {{0x02, 0x00, 0x00, 0x00, 0x00, 0x03}};
	uint32_t our2 = IP4(198, 51, 100, 3);
	fx_two_ports();
	fx_if[2] = (struct net_iface){
		.port_id = 2, .mtu = 1500, .mac = mac2, .n_addrs = 1, .addrs = {{our2, 24}}};
	fx_n_if = 3;
	cr_assert_eq(fx_init(), 0);

	/* ports 1 and 2 take every address of both test ranges, port 0 the rest */
	unsigned learned = 0;
	for (uint16_t port = 1; port <= 3 && learned < NET_ARP_ENTRIES; port++) {
		for (unsigned i = 0; i < 512 && learned < NET_ARP_ENTRIES; i++) {
			uint32_t ip = i < 256 ? IP4(198, 51, 100, i) : IP4(203, 0, 113, i - 256);
			if (net_addr_is_ours(&fx, ip))
				continue;
			net_arp_learn(&fx, port == 3 ? 0 : port, ip, &PEER_MAC, fx_now);
			learned++;
		}
	}
	cr_assert_eq(n_entries(), NET_ARP_ENTRIES);
	cr_expect_eq(fx_drops_total(), 0);

	net_arp_learn(&fx, 0, IP4(198, 51, 100, 250), &PEER_MAC, fx_now);
	cr_expect_eq(fx_drop(DP_DROP_ARP_TABLE_FULL), 1, "one learned too many");

	cr_expect_eq(net_ip_output(&fx, mk_out_packet(OUR_IP, IP4(198, 51, 100, 251), 1),
				   IP4(198, 51, 100, 251), fx_now),
		     -ENOBUFS);
	cr_expect_eq(fx_drop(DP_DROP_ARP_TABLE_FULL), 2, "a packet with nowhere to wait");
	cr_expect_eq(fx_n_out, 0, "and no request for it");

	arp_in(RTE_ARP_OP_REQUEST, &OTHER_MAC, IP4(198, 51, 100, 252), OUR_IP, &BCAST_MAC);
	cr_expect_eq(fx_drop(DP_DROP_ARP_TABLE_FULL), 3, "an asker we cannot hold...");
	cr_expect_eq(fx_n_out, 1, "...still gets its answer");
	cr_expect_eq(n_entries(), NET_ARP_ENTRIES);
}

NET_TEST(arp, announce_sends_gratuitous_request_per_address)
{
	fx_if[0].addrs[1].addr = IP4(198, 51, 100, 3);
	fx_if[0].addrs[1].len = 24;
	fx_if[0].n_addrs = 2;
	fx_two_ports();
	net_announce(&fx, fx_now);
	cr_assert_eq(fx_n_out, 3);
	expect_arp_frame(0, RTE_ARP_OP_REQUEST, &BCAST_MAC, OUR_IP, &ZERO_MAC, OUR_IP);
	expect_arp_frame(1, RTE_ARP_OP_REQUEST, &BCAST_MAC, IP4(198, 51, 100, 3), &ZERO_MAC,
			 IP4(198, 51, 100, 3));
	cr_expect_eq(fx_out[2].port, 1);
	struct rte_arp_hdr *a = f_arp(out_frame(2));
	cr_expect(rte_is_same_ether_addr(&f_eth(out_frame(2))->src_addr, &OUR_MAC1));
	cr_expect(rte_is_same_ether_addr(&a->arp_data.arp_sha, &OUR_MAC1));
	cr_expect_eq(a->arp_data.arp_sip, OUR_IP1);
	cr_expect_eq(a->arp_data.arp_tip, OUR_IP1);
	cr_expect_eq(fx_count(DP_C_ARP_GRATUITOUS_SENT), 3);
	cr_expect_eq(fx_count(DP_C_ARP_REQUESTS_SENT), 0);
}

NET_TEST(arp, announce_without_mbufs_counts_the_failure)
{
	struct rte_mempool *tiny =
		rte_pktmbuf_pool_create("tiny", 2, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
	cr_assert_not_null(tiny);
	struct rte_mbuf *held[2];
	cr_assert_eq(rte_pktmbuf_alloc_bulk(tiny, held, 2), 0);
	struct rte_mempool *pool = fx_pool;
	fx_pool = tiny;
	cr_assert_eq(fx_init(), 0);

	net_announce(&fx, fx_now);
	cr_expect_eq(fx_n_out, 0);
	fx_expect_one_drop(DP_DROP_MBUF_ALLOC_FAILED);
	cr_expect_eq(fx_count(DP_C_ARP_GRATUITOUS_SENT), 0);

	rte_pktmbuf_free_bulk(held, 2);
	fx_pool = pool;
}

NET_TEST(arp, dump_reports_state_and_age)
{
	arp_in(RTE_ARP_OP_REQUEST, &PEER_MAC, PEER_IP, OUR_IP, &BCAST_MAC);
	net_ip_output(&fx, mk_out_packet(OUR_IP, REMOTE_IP, 1), REMOTE_IP, fx_now);
	fx_advance_ms(5500);

	struct net_arp_entry all[4];
	cr_assert_eq(net_arp_dump(&fx, all, 4, fx_now), 2);
	struct net_arp_entry peer = entry_of(PEER_IP), gw = entry_of(GW_IP);
	cr_expect(peer.resolved);
	cr_expect_eq(peer.age_s, 5);
	cr_expect(rte_is_same_ether_addr(&peer.mac, &PEER_MAC));
	cr_expect_not(gw.resolved);
	cr_expect_eq(gw.ip, GW_IP);
	cr_expect_eq(gw.age_s, 5);
	cr_expect_eq(net_arp_dump(&fx, all, 1, fx_now), 1, "never more than asked");
}
