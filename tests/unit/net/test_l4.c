/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Tests of dataplane/net/l4.c: the RST a closed TCP port answers with
 * (RFC 9293 §3.10.7.1), the port unreachable of a closed UDP port, and the
 * drop reason of every malformed segment or datagram.
 */
#include "net_fixture.h"

#include <string.h>

TestSuite(l4, .init = fx_setup, .fini = fx_teardown);

/* The single frame sent, checked as a RST from OUR_IP:25 back to REMOTE_IP:40000 via GW_MAC. */
static struct rte_tcp_hdr *expect_rst(void)
{
	cr_assert_eq(fx_n_out, 1, "one RST");
	cr_expect_eq(fx_out[0].port, 0);
	uint8_t *r = out_frame(0);
	cr_expect_eq(out_len(0), 14 + 20 + 20, "no options, no data");
	cr_expect(rte_is_same_ether_addr(&f_eth(r)->dst_addr, &GW_MAC), "to the frame's sender");
	cr_expect(rte_is_same_ether_addr(&f_eth(r)->src_addr, &OUR_MAC));
	expect_ipv4_frame(r, out_len(0), IPPROTO_TCP, OUR_IP, REMOTE_IP);
	struct rte_tcp_hdr *th = f_l4(r);
	cr_expect_eq(rte_be_to_cpu_16(th->src_port), 25);
	cr_expect_eq(rte_be_to_cpu_16(th->dst_port), 40000);
	cr_expect_eq(th->data_off, 5 << 4);
	cr_expect_eq(th->rx_win, 0);
	cr_expect_eq(th->tcp_urp, 0);
	cr_expect_eq(fx_count(DP_C_TCP_RST_SENT), 1);
	cr_expect_eq(fx_count(DP_C_TCP_IN), 1);
	cr_expect_eq(fx_drops_total(), 0);
	return th;
}

static void tcp_in(uint32_t seq, uint32_t ack, uint8_t flags, const void *data, size_t n)
{
	uint8_t f[FRAME_MAX];
	size_t len = mk_tcp(f, REMOTE_IP, OUR_IP, 40000, 25, seq, ack, flags, data, n);
	f_eth(f)->src_addr = GW_MAC;
	fx_input(f, len);
}

NET_TEST(l4, syn_to_closed_port_gets_rst_ack_with_seq_plus_one)
{
	tcp_in(0xfffffff0, 0, RTE_TCP_SYN_FLAG, NULL, 0);
	struct rte_tcp_hdr *th = expect_rst();
	cr_expect_eq(th->tcp_flags, RTE_TCP_RST_FLAG | RTE_TCP_ACK_FLAG);
	cr_expect_eq(th->sent_seq, 0, "SEQ=0");
	cr_expect_eq(rte_be_to_cpu_32(th->recv_ack), 0xfffffff1, "ACK=SEG.SEQ+1 for the SYN");
}

NET_TEST(l4, segment_with_ack_gets_rst_with_seq_from_ack)
{
	tcp_in(1000, 0x89abcdef, RTE_TCP_ACK_FLAG | RTE_TCP_PSH_FLAG, "HELO x\r\n", 8);
	struct rte_tcp_hdr *th = expect_rst();
	cr_expect_eq(th->tcp_flags, RTE_TCP_RST_FLAG, "RST alone");
	cr_expect_eq(rte_be_to_cpu_32(th->sent_seq), 0x89abcdef, "SEQ=SEG.ACK");
	cr_expect_eq(th->recv_ack, 0);
}

NET_TEST(l4, data_and_fin_without_ack_count_in_the_rst_ack)
{
	tcp_in(0xfffffffa, 0, RTE_TCP_FIN_FLAG, "0123456789", 10);
	struct rte_tcp_hdr *th = expect_rst();
	cr_expect_eq(th->tcp_flags, RTE_TCP_RST_FLAG | RTE_TCP_ACK_FLAG);
	cr_expect_eq(rte_be_to_cpu_32(th->recv_ack), 5, "SEG.SEQ + 10 + FIN, modulo 2^32");
}

NET_TEST(l4, rst_to_closed_port_is_never_answered)
{
	tcp_in(1000, 0, RTE_TCP_RST_FLAG, NULL, 0);
	tcp_in(1000, 5, RTE_TCP_RST_FLAG | RTE_TCP_ACK_FLAG, NULL, 0);
	cr_expect_eq(fx_n_out, 0);
	cr_expect_eq(fx_drop(DP_DROP_TCP_RST_IN), 2);
	cr_expect_eq(fx_drops_total(), 2);
}

NET_TEST(l4, tcp_and_ip_options_are_stripped_from_the_rst)
{
	uint8_t f[FRAME_MAX];
	/* a SYN with MSS and SACK-permitted options, in a datagram with IP options */
	const uint8_t opts[] = {2, 4, 0x05, 0xb4, 4, 2, 1, 1};
	size_t len = mk_tcp(f, REMOTE_IP, OUR_IP, 40000, 25, 77, 0, RTE_TCP_SYN_FLAG, opts, 8);
	((struct rte_tcp_hdr *)f_l4(f))->data_off = 7 << 4;
	fix_l4_cksum(f);
	len = add_ip_options(f, len, 4);
	f_eth(f)->src_addr = GW_MAC;
	fx_input(f, len);
	struct rte_tcp_hdr *th = expect_rst();
	cr_expect_eq(rte_be_to_cpu_32(th->recv_ack), 78, "options are not sequence space");
	cr_expect_eq(fx_count(DP_C_IPV4_OPTIONS_SKIPPED), 1);
}

NET_TEST(l4, truncated_tcp_header_is_malformed)
{
	uint8_t f[FRAME_MAX];
	/* 12 of the 20 bytes of a TCP header */
	static const uint8_t part[12] = {0x9c, 0x40, 0x00, 0x19};
	size_t len = mk_ip(f, REMOTE_IP, OUR_IP, IPPROTO_TCP, part, sizeof(part));
	fx_input(f, len);
	fx_expect_one_drop(DP_DROP_TCP_MALFORMED);
	cr_expect_eq(fx_count(DP_C_TCP_IN), 1);
	cr_expect_eq(fx_n_out, 0);
}

NET_TEST(l4, tcp_data_offset_below_five_is_malformed)
{
	uint8_t f[FRAME_MAX];
	size_t len = mk_tcp(f, REMOTE_IP, OUR_IP, 40000, 25, 1, 0, RTE_TCP_SYN_FLAG, NULL, 0);
	((struct rte_tcp_hdr *)f_l4(f))->data_off = 4 << 4;
	fix_l4_cksum(f);
	fx_input(f, len);
	fx_expect_one_drop(DP_DROP_TCP_MALFORMED);
	cr_expect_eq(fx_n_out, 0);
}

NET_TEST(l4, tcp_data_offset_beyond_the_segment_is_malformed)
{
	uint8_t f[FRAME_MAX];
	size_t len = mk_tcp(f, REMOTE_IP, OUR_IP, 40000, 25, 1, 0, RTE_TCP_SYN_FLAG, "abcd", 4);
	((struct rte_tcp_hdr *)f_l4(f))->data_off = 7 << 4; /* 28 bytes, in a 24-byte segment */
	fix_l4_cksum(f);
	fx_input(f, len);
	fx_expect_one_drop(DP_DROP_TCP_MALFORMED);
	cr_expect_eq(fx_n_out, 0);
}

NET_TEST(l4, tcp_bad_checksum_is_malformed)
{
	uint8_t f[FRAME_MAX];
	size_t len = mk_tcp(f, REMOTE_IP, OUR_IP, 40000, 25, 1, 0, RTE_TCP_SYN_FLAG, NULL, 0);
	((struct rte_tcp_hdr *)f_l4(f))->cksum ^= 0x0400;
	fx_input(f, len);
	fx_expect_one_drop(DP_DROP_TCP_MALFORMED);
	cr_expect_eq(fx_n_out, 0, "no RST for a segment that may not be what was sent");
}

NET_TEST(l4, tcp_checksum_the_nic_found_bad_is_malformed)
{
	uint8_t f[FRAME_MAX];
	size_t len = mk_tcp(f, REMOTE_IP, OUR_IP, 40000, 25, 1, 0, RTE_TCP_SYN_FLAG, NULL, 0);
	struct rte_mbuf *m = fx_frame(f, len, 0);
	m->ol_flags |= RTE_MBUF_F_RX_L4_CKSUM_BAD;
	net_input(&fx, m, fx_now);
	fx_expect_one_drop(DP_DROP_TCP_MALFORMED);
}

NET_TEST(l4, udp_to_closed_port_gets_port_unreachable)
{
	uint8_t f[FRAME_MAX];
	size_t len = mk_udp(f, REMOTE_IP, OUR_IP, 40000, 53, "query", 5);
	f_eth(f)->src_addr = GW_MAC;
	fx_input(f, len);
	cr_assert_eq(fx_n_out, 1);
	uint8_t *r = out_frame(0);
	cr_expect(rte_is_same_ether_addr(&f_eth(r)->dst_addr, &GW_MAC));
	expect_ipv4_frame(r, out_len(0), IPPROTO_ICMP, OUR_IP, REMOTE_IP);
	struct rte_icmp_hdr *ih = f_l4(r);
	cr_expect_eq(ih->icmp_type, 3);
	cr_expect_eq(ih->icmp_code, 3, "port unreachable");
	cr_expect_eq(ih->icmp_ident, 0, "unused field zero");
	cr_expect_eq(ih->icmp_seq_nb, 0);
	cr_expect_eq(out_len(0), 14 + 20 + 8 + (len - 14));
	cr_expect_eq(memcmp(ih + 1, f + 14, len - 14), 0, "quotes the datagram");
	cr_expect_eq(fx_count(DP_C_UDP_IN), 1);
	cr_expect_eq(fx_count(DP_C_ICMP_UNREACH_SENT), 1);
	fx_expect_one_drop(DP_DROP_UDP_NO_LISTENER);
}

NET_TEST(l4, udp_without_checksum_is_accepted)
{
	uint8_t f[FRAME_MAX];
	size_t len = mk_udp(f, PEER_IP, OUR_IP, 40000, 53, "q", 1);
	((struct rte_udp_hdr *)f_l4(f))->dgram_cksum = 0;
	fx_input(f, len);
	fx_expect_one_drop(DP_DROP_UDP_NO_LISTENER);
	cr_expect_eq(fx_n_out, 1);
}

NET_TEST(l4, udp_shorter_than_the_ip_payload_is_accepted)
{
	uint8_t f[FRAME_MAX];
	size_t len = mk_udp(f, PEER_IP, OUR_IP, 40000, 53, "abcdef", 6);
	struct rte_ipv4_hdr *ip = f_ip(f);
	struct rte_udp_hdr *uh = f_l4(f);
	/* RFC 768: a 10-byte datagram followed by 4 bytes the UDP length leaves out */
	uh->dgram_len = rte_cpu_to_be_16(10);
	uh->dgram_cksum = 0;
	ip->total_length = rte_cpu_to_be_16(20 + 10); /* so DPDK sums the 10 bytes only */
	uh->dgram_cksum = rte_ipv4_udptcp_cksum(ip, uh);
	ip->total_length = rte_cpu_to_be_16(20 + 14);
	fx_input(f, len);
	fx_expect_one_drop(DP_DROP_UDP_NO_LISTENER);
	cr_expect_eq(fx_n_out, 1);
}

NET_TEST(l4, truncated_udp_header_is_malformed)
{
	uint8_t f[FRAME_MAX];
	size_t len = mk_ip(f, PEER_IP, OUR_IP, IPPROTO_UDP, "\x9c\x40\x00\x35\x00\x08\x00", 7);
	fx_input(f, len);
	fx_expect_one_drop(DP_DROP_UDP_MALFORMED);
	cr_expect_eq(fx_count(DP_C_UDP_IN), 1);
	cr_expect_eq(fx_n_out, 0);
}

NET_TEST(l4, udp_length_below_header_is_malformed)
{
	uint8_t f[FRAME_MAX];
	size_t len = mk_udp(f, PEER_IP, OUR_IP, 40000, 53, "q", 1);
	((struct rte_udp_hdr *)f_l4(f))->dgram_len = rte_cpu_to_be_16(7);
	((struct rte_udp_hdr *)f_l4(f))->dgram_cksum = 0;
	fx_input(f, len);
	fx_expect_one_drop(DP_DROP_UDP_MALFORMED);
	cr_expect_eq(fx_n_out, 0);
}

NET_TEST(l4, udp_length_beyond_the_ip_payload_is_malformed)
{
	uint8_t f[FRAME_MAX];
	size_t len = mk_udp(f, PEER_IP, OUR_IP, 40000, 53, "q", 1);
	((struct rte_udp_hdr *)f_l4(f))->dgram_len = rte_cpu_to_be_16(10);
	((struct rte_udp_hdr *)f_l4(f))->dgram_cksum = 0;
	fx_input(f, len);
	fx_expect_one_drop(DP_DROP_UDP_MALFORMED);
	cr_expect_eq(fx_n_out, 0);
}

NET_TEST(l4, udp_bad_checksum_is_malformed)
{
	uint8_t f[FRAME_MAX];
	size_t len = mk_udp(f, PEER_IP, OUR_IP, 40000, 53, "q", 1);
	((struct rte_udp_hdr *)f_l4(f))->dgram_cksum ^= 0x1000;
	fx_input(f, len);
	fx_expect_one_drop(DP_DROP_UDP_MALFORMED);
	cr_expect_eq(fx_n_out, 0, "no error about a datagram that may not be what was sent");
}
