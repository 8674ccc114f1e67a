/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Tests of dataplane/net/flow.c: the tuple a frame is steered by, the echo
 * reply identifier, and that no length in the frame is believed: every
 * input also runs at the end of a page followed by a guard page.
 */
#include "net_fixture.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

TestSuite(flow, .init = fx_setup, .fini = fx_teardown);

static uint8_t *guard_end; /* first byte of the PROT_NONE page */

/*
 * Classifies LEN bytes of F placed so that the byte after the last one is
 * unreadable. The mbuf is a bare descriptor (classify reads only the first
 * segment), so nothing is allocated.
 */
static enum net_flow_kind classify_guarded(const uint8_t *f, size_t len, struct rte_ipv4_tuple *t,
					   uint16_t *ident)
{
	if (guard_end == NULL) {
		long page = sysconf(_SC_PAGESIZE);
		uint8_t *p = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		cr_assert_neq(p, MAP_FAILED);
		cr_assert_eq(mprotect(p + page, (size_t)page, PROT_NONE), 0);
		guard_end = p + page;
	}
	static struct rte_mbuf m;
	memset(&m, 0, sizeof(m));
	memcpy(guard_end - len, f, len);
	m.buf_addr = guard_end - len;
	m.data_off = 0;
	m.data_len = (uint16_t)len;
	m.pkt_len = (uint32_t)len;
	m.nb_segs = 1;
	return net_flow_classify(&m, t, ident);
}

static enum net_flow_kind classify(const uint8_t *f, size_t len)
{
	struct rte_ipv4_tuple t;
	uint16_t ident;
	return classify_guarded(f, len, &t, &ident);
}

NET_TEST(flow, tcp_frame_classifies_with_host_order_tuple)
{
	uint8_t f[FRAME_MAX];
	size_t len = mk_tcp(f, REMOTE_IP, OUR_IP, 40000, 25, 1, 0, RTE_TCP_SYN_FLAG, NULL, 0);
	struct rte_ipv4_tuple t;
	uint16_t ident = 0;
	cr_assert_eq(classify_guarded(f, len, &t, &ident), NET_FLOW_L4);
	cr_expect_eq(t.src_addr, rte_be_to_cpu_32(REMOTE_IP));
	cr_expect_eq(t.dst_addr, rte_be_to_cpu_32(OUR_IP));
	cr_expect_eq(t.sport, 40000);
	cr_expect_eq(t.dport, 25);
}

NET_TEST(flow, udp_frame_to_anyone_classifies_too)
{
	uint8_t f[FRAME_MAX];
	size_t len = mk_udp(f, PEER_IP, IP4(198, 51, 100, 77), 5353, 53, "q", 1);
	f_eth(f)->dst_addr = OTHER_MAC;
	struct rte_ipv4_tuple t;
	uint16_t ident;
	cr_assert_eq(classify_guarded(f, len, &t, &ident), NET_FLOW_L4);
	cr_expect_eq(t.dst_addr, rte_be_to_cpu_32(IP4(198, 51, 100, 77)));
	cr_expect_eq(t.sport, 5353);
	cr_expect_eq(t.dport, 53);
}

NET_TEST(flow, tuple_with_ip_options_reads_the_ports_after_them)
{
	uint8_t f[FRAME_MAX];
	size_t len = mk_tcp(f, REMOTE_IP, OUR_IP, 40000, 587, 1, 0, RTE_TCP_SYN_FLAG, NULL, 0);
	len = add_ip_options(f, len, 12);
	struct rte_ipv4_tuple t;
	uint16_t ident;
	cr_assert_eq(classify_guarded(f, len, &t, &ident), NET_FLOW_L4);
	cr_expect_eq(t.sport, 40000);
	cr_expect_eq(t.dport, 587);
}

NET_TEST(flow, echo_reply_classifies_with_its_ident)
{
	uint8_t f[FRAME_MAX];
	size_t len = mk_icmp(f, PEER_IP, OUR_IP, RTE_IP_ICMP_ECHO_REPLY, 0, 0xbeef, 3, "x", 1);
	struct rte_ipv4_tuple t;
	uint16_t ident = 0;
	cr_assert_eq(classify_guarded(f, len, &t, &ident), NET_FLOW_ECHO_REPLY);
	cr_expect_eq(ident, 0xbeef);
}

NET_TEST(flow, what_has_no_flow_is_local)
{
	uint8_t f[FRAME_MAX];
	size_t len;

	len = mk_arp(f, RTE_ARP_OP_REQUEST, &PEER_MAC, PEER_IP, &ZERO_MAC, OUR_IP, &BCAST_MAC);
	cr_expect_eq(classify(f, len), NET_FLOW_LOCAL, "ARP");
	len = mk_icmp(f, PEER_IP, OUR_IP, RTE_IP_ICMP_ECHO_REQUEST, 0, 1, 1, "x", 1);
	cr_expect_eq(classify(f, len), NET_FLOW_LOCAL, "echo request");
	len = mk_icmp(f, PEER_IP, OUR_IP, 3, 3, 0, 0, NULL, 0);
	cr_expect_eq(classify(f, len), NET_FLOW_LOCAL, "ICMP error");
	len = mk_ip(f, PEER_IP, OUR_IP, 47, "0123", 4);
	cr_expect_eq(classify(f, len), NET_FLOW_LOCAL, "GRE");
	len = mk_udp(f, PEER_IP, OUR_IP, 1, 2, "q", 1);
	f_eth(f)->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV6);
	cr_expect_eq(classify(f, len), NET_FLOW_LOCAL, "IPv6");
	f_eth(f)->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_VLAN);
	cr_expect_eq(classify(f, len), NET_FLOW_LOCAL, "VLAN");
}

NET_TEST(flow, fragments_are_local)
{
	uint8_t f[FRAME_MAX];
	size_t len = mk_udp(f, PEER_IP, OUR_IP, 1, 2, "q", 1);
	f_ip(f)->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_MF_FLAG);
	cr_expect_eq(classify(f, len), NET_FLOW_LOCAL, "first fragment");
	f_ip(f)->fragment_offset = rte_cpu_to_be_16(3);
	cr_expect_eq(classify(f, len), NET_FLOW_LOCAL, "later fragment");
	f_ip(f)->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);
	cr_expect_eq(classify(f, len), NET_FLOW_L4, "DF alone is no fragment");
}

NET_TEST(flow, lengths_that_do_not_hold_are_local)
{
	uint8_t f[FRAME_MAX];
	size_t len = mk_tcp(f, REMOTE_IP, OUR_IP, 40000, 25, 1, 0, RTE_TCP_SYN_FLAG, NULL, 0);
	struct rte_ipv4_hdr *ip = f_ip(f);

	ip->total_length = rte_cpu_to_be_16(41);
	cr_expect_eq(classify(f, len), NET_FLOW_LOCAL, "total length beyond the frame");
	ip->total_length = rte_cpu_to_be_16(19);
	cr_expect_eq(classify(f, len), NET_FLOW_LOCAL, "total length below the header");
	ip->total_length = rte_cpu_to_be_16(39);
	cr_expect_eq(classify(f, len), NET_FLOW_LOCAL, "TCP header cut short");
	ip->total_length = rte_cpu_to_be_16(40);
	ip->version_ihl = 0x44;
	cr_expect_eq(classify(f, len), NET_FLOW_LOCAL, "IHL below 5");
	ip->version_ihl = 0x4f;
	cr_expect_eq(classify(f, len), NET_FLOW_LOCAL, "IHL beyond the datagram");
	ip->version_ihl = 0x65;
	cr_expect_eq(classify(f, len), NET_FLOW_LOCAL, "version 6");
	ip->version_ihl = 0x45;
	cr_expect_eq(classify(f, len), NET_FLOW_L4, "and back to well-formed");

	len = mk_udp(f, PEER_IP, OUR_IP, 1, 2, NULL, 0);
	f_ip(f)->total_length = rte_cpu_to_be_16(27);
	cr_expect_eq(classify(f, len), NET_FLOW_LOCAL, "UDP header cut short");
	len = mk_icmp(f, PEER_IP, OUR_IP, RTE_IP_ICMP_ECHO_REPLY, 0, 1, 1, NULL, 0);
	f_ip(f)->total_length = rte_cpu_to_be_16(27);
	cr_expect_eq(classify(f, len), NET_FLOW_LOCAL, "echo reply cut short");
}

NET_TEST(flow, classify_never_reads_past_the_frame)
{
	uint8_t tcp[FRAME_MAX], udp[FRAME_MAX], echo[FRAME_MAX], opt[FRAME_MAX];
	size_t tcp_len = mk_tcp(tcp, REMOTE_IP, OUR_IP, 40000, 25, 1, 0, RTE_TCP_SYN_FLAG, NULL, 0);
	size_t udp_len = mk_udp(udp, PEER_IP, OUR_IP, 1, 2, NULL, 0);
	size_t echo_len = mk_icmp(echo, PEER_IP, OUR_IP, RTE_IP_ICMP_ECHO_REPLY, 0, 1, 1, NULL, 0);
	size_t opt_len = add_ip_options(opt, mk_tcp(opt, REMOTE_IP, OUR_IP, 1, 2, 1, 0, 0, NULL, 0),
					40);
	struct {
		const uint8_t *f;
		size_t len;
		enum net_flow_kind whole;
	} cases[] = {
		{tcp, tcp_len, NET_FLOW_L4},
		{udp, udp_len, NET_FLOW_L4},
		{echo, echo_len, NET_FLOW_ECHO_REPLY},
		{opt, opt_len, NET_FLOW_L4},
	};
	for (unsigned c = 0; c < 4; c++) {
		/* every cut of a well-formed frame is LOCAL (and never faults) */
		for (size_t cut = 0; cut < cases[c].len; cut++)
			cr_expect_eq(classify(cases[c].f, cut), NET_FLOW_LOCAL,
				     "case %u cut at %zu", c, cut);
		cr_expect_eq(classify(cases[c].f, cases[c].len), cases[c].whole, "case %u whole",
			     c);
	}
}

NET_TEST(flow, chained_frame_is_judged_by_its_first_segment)
{
	uint8_t f[FRAME_MAX];
	size_t len = mk_tcp(f, REMOTE_IP, OUR_IP, 40000, 25, 1, 0, RTE_TCP_SYN_FLAG, NULL, 0);
	struct rte_mbuf *head = fx_frame(f, 30, 0);
	struct rte_mbuf *tail = fx_frame(f + 30, len - 30, 0);
	cr_assert_eq(rte_pktmbuf_chain(head, tail), 0);
	struct rte_ipv4_tuple t;
	uint16_t ident;
	cr_expect_eq(net_flow_classify(head, &t, &ident), NET_FLOW_LOCAL,
		     "the IP header is not all in the first segment");
	rte_pktmbuf_free(head);
}
