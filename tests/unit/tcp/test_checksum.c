/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Checksums where the NIC offers to do them and in software otherwise
 * (issue #3 item 9): with tx_csum_offload every segment we send asks the NIC
 * for its IPv4 and TCP checksums, with the lengths and pseudo-header sum
 * DPDK's offload contract wants (except a chain with an odd-length piece
 * inside, which net_tap sums wrong); on receive, the NIC's verdict in
 * ol_flags is believed, good or bad, and only an unchecked segment is summed
 * here.
 */
#include "tcp_fixture.h"

#include <string.h>

#include <rte_ether.h>

TestSuite(checksum, .init = fx_setup, .fini = fx_teardown);

#define TX_CSUM_FLAGS (RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_TCP_CKSUM)
#define SEG_LEN 1448 /* a full segment: MSS 1460 less the timestamp option */

/* RFC 9293 §3.1: the pseudo-header's sum (not complemented), as the header field holds it. */
static uint16_t pseudo_header_sum(const struct fx_pkt *k)
{
	uint32_t src = rte_be_to_cpu_32(k->saddr), dst = rte_be_to_cpu_32(k->daddr);
	uint32_t sum = (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + IPPROTO_TCP +
		       20 + k->opt_len + k->len;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return rte_cpu_to_be_16((uint16_t)sum);
}

/* That K asks the NIC for both checksums, as DPDK's TX offload contract says. */
static void expect_offloaded(const struct fx_pkt *k, const char *what)
{
	cr_expect_eq(k->ol_flags & TX_CSUM_FLAGS, TX_CSUM_FLAGS,
		     "%s: TX_IPV4|TX_IP_CKSUM|TX_TCP_CKSUM, got ol_flags 0x%lx", what,
		     (unsigned long)k->ol_flags);
	cr_expect_eq(k->l2_len, RTE_ETHER_HDR_LEN, "%s: l2_len is the Ethernet header", what);
	cr_expect_eq(k->l3_len, 20, "%s: l3_len is the IPv4 header", what);
	cr_expect_eq(k->l4_len, 20 + k->opt_len, "%s: l4_len is the TCP header", what);
	cr_expect_eq(k->ip_cksum, 0, "%s: the IPv4 checksum is left 0", what);
	cr_expect_eq(k->tcp_cksum, pseudo_header_sum(k),
		     "%s: the TCP checksum field holds the pseudo-header sum", what);
}

TCP_TEST(checksum, offloaded_segments_leave_both_checksums_to_the_nic)
{
	fx_params.tx_csum_offload = true;
	fx_restart();
	struct fx_peer p = fx_peer_new(PEER_PORT);

	struct fx_pkt k = fx_peer_syn(&p);
	expect_offloaded(&k, "SYN-ACK");
	fx_peer_ack(&p);
	cr_assert_eq(fx_n_conns, 1);
	struct fx_conn *fc = &fx_conns[0];

	/* a short reply is copied into the header mbuf; a long one rides as indirect mbufs */
	cr_assert_eq(fx_send(fc, 100), 0);
	k = fx_peer_take(&p);
	cr_expect_eq(k.len, 100);
	expect_offloaded(&k, "short data");
	cr_assert_eq(fx_send(fc, 3000), 0);
	unsigned chained = 0;
	while (fx_pending()) {
		k = fx_peer_take(&p);
		expect_offloaded(&k, "long data");
		chained += k.nb_segs > 1;
	}
	cr_expect_gt(chained, 0, "the zero-copy path is offloaded too");

	/* a pure ACK, and the RST for a port nobody listens on */
	fx_peer_send(&p, F_PSH, "QUIT\r\n", 6);
	fx_advance_ms(fx_params.delack_ms + 1);
	k = fx_peer_take(&p);
	cr_expect_eq(k.len, 0);
	expect_offloaded(&k, "pure ACK");
	struct fx_seg g = {.sport = 41000, .dport = 26, .seq = 1, .flags = F_SYN, .win = 1000};
	fx_input(&g);
	k = fx_take();
	cr_expect(k.flags & F_RST);
	expect_offloaded(&k, "RST for a closed port");
}

/* Queues one chain of pattern bytes whose mbufs hold LENS[0..N-1] bytes. */
static void send_pieces(struct fx_conn *fc, const uint16_t *lens, unsigned n)
{
	struct rte_mbuf *head = NULL, *tail = NULL;

	for (unsigned i = 0; i < n; i++) {
		struct rte_mbuf *m = rte_pktmbuf_alloc(harness_pool());
		cr_assert_not_null(m);
		uint8_t *d = (uint8_t *)rte_pktmbuf_append(m, lens[i]);
		for (uint16_t j = 0; j < lens[i]; j++)
			d[j] = fx_pattern(fc->tx_off + j);
		fc->tx_off += lens[i];
		if (!head) {
			head = tail = m;
		} else {
			tail->next = m;
			tail = m;
			head->nb_segs++;
			head->pkt_len += lens[i];
		}
	}
	cr_assert_eq(tcp_send(fc->c, head), 0);
}

TCP_TEST(checksum, segment_spanning_an_odd_length_send_is_summed_in_software)
{
	fx_params.tx_csum_offload = true;
	fx_restart();
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = fx_accept(&p);

	/*
	 * Sends of 1001 and 2000 bytes: the first segment carries the 1001 and 447
	 * of the next, an odd piece inside the chain that net_tap (DPDK 22.11) would
	 * sum wrong. The others have no such piece and are left to the NIC.
	 */
	static const uint16_t lens[] = {1001, 2000};
	send_pieces(fc, lens, RTE_DIM(lens));
	struct fx_pkt k = fx_peer_take(&p);
	cr_expect_eq(k.len, SEG_LEN);
	cr_expect_gt(k.nb_segs, 2, "header, the 1001 bytes, the start of the 2000");
	cr_expect_eq(k.ol_flags & (TX_CSUM_FLAGS | RTE_MBUF_F_TX_L4_MASK), 0,
		     "summed here (fx_take() checked both sums)");
	cr_expect(fx_is_pattern(k.data, k.len, 0));
	unsigned off = k.len;
	while (fx_pending()) {
		k = fx_peer_take(&p);
		expect_offloaded(&k, "no odd piece inside");
		cr_expect(fx_is_pattern(k.data, k.len, off));
		off += k.len;
	}
	cr_expect_eq(off, 3001);
}

TCP_TEST(checksum, without_offload_segments_carry_software_checksums)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = fx_accept(&p);

	cr_assert_eq(fx_send(fc, 3000), 0);
	while (fx_pending()) {
		/* fx_take() verified both sums */
		struct fx_pkt k = fx_peer_take(&p);
		cr_expect_eq(k.ol_flags & (TX_CSUM_FLAGS | RTE_MBUF_F_TX_L4_MASK), 0,
			     "nothing is asked of the NIC (ol_flags 0x%lx)",
			     (unsigned long)k.ol_flags);
		cr_expect_neq(k.ip_cksum, 0);
	}
}

/* A data segment from P with the NIC's verdict RX (and a checksum that is right or not). */
static void input_checked(struct fx_peer *p, uint8_t flags, const char *data, uint64_t rx,
			  bool bad_cksum)
{
	struct fx_seg g = fx_peer_seg(p, F_ACK | flags, data, data ? (unsigned)strlen(data) : 0);
	g.bad_cksum = bad_cksum;
	struct rte_mbuf *m = fx_build(&g);
	m->ol_flags |= rx;
	tcp_input(fx_stack, m, fx_now);
}

TCP_TEST(checksum, segment_the_nic_marked_bad_is_dropped_even_with_a_right_checksum)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = fx_accept(&p);

	input_checked(&p, F_PSH, "QUIT\r\n", RTE_MBUF_F_RX_L4_CKSUM_BAD, false);
	input_checked(&p, F_RST, NULL, RTE_MBUF_F_RX_L4_CKSUM_BAD, false);
	fx_advance_ms(fx_params.delack_ms + 1);
	fx_expect_silence("a segment the NIC found corrupt is never answered");
	cr_expect_eq(fc->rx_len, 0, "nor delivered");
	cr_expect_eq(fc->closed, 0, "nor obeyed");
	cr_expect_eq(fx_drop(DP_DROP_TCP_MALFORMED), 2, "and it is counted");
	cr_expect_eq(fx_drops_total(), 2);
}

TCP_TEST(checksum, segment_the_nic_marked_good_is_not_summed_again)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = fx_accept(&p);

	/* The sum is wrong, but the NIC vouched for it: the NIC is believed. */
	input_checked(&p, F_PSH, "NOOP\r\n", RTE_MBUF_F_RX_L4_CKSUM_GOOD, true);
	p.nxt += 6;
	cr_expect_eq(fc->rx_len, 6);
	cr_expect_eq(fx_drops_total(), 0);
	/* Without a verdict, the same segment is summed here and dropped. */
	input_checked(&p, F_PSH, "QUIT\r\n", RTE_MBUF_F_RX_L4_CKSUM_UNKNOWN, true);
	cr_expect_eq(fc->rx_len, 6);
	cr_expect_eq(fx_drop(DP_DROP_TCP_MALFORMED), 1);
}

TCP_TEST(checksum, software_sum_of_a_chain_with_odd_pieces_inside_is_right)
{
	/*
	 * Regression, found by fuzz_tcp_input (and at net_tap, whose offload
	 * falls back to the same software sum): DPDK 22.11's
	 * rte_ipv4_udptcp_cksum_mbuf() truncates the sum of a piece that starts
	 * at an odd offset before swapping its bytes, so a segment made of the
	 * application's odd-length sends went out with a bad checksum, and so did
	 * every retransmission of it. No offload here: every sum is ours
	 * (fx_take() checks each against the sum of the flattened packet).
	 */
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = fx_accept(&p);
	static const uint16_t lens[] = {1, 3, 999, 2001, 5, 701, 1447, 33};
	send_pieces(fc, lens, RTE_DIM(lens));

	unsigned chained = 0, off = 0;
	uint32_t first_seq = 0;
	while (fx_pending()) {
		struct fx_pkt k = fx_peer_take(&p);
		cr_expect(fx_is_pattern(k.data, k.len, off));
		cr_expect_eq(k.ol_flags & RTE_MBUF_F_TX_L4_MASK, 0, "summed here");
		if (!off)
			first_seq = k.seq;
		chained += k.nb_segs > 2;
		off += k.len;
	}
	cr_expect_eq(off, 5190);
	cr_expect_gt(chained, 0, "payloads spanning several sends, odd ones among them");
	/* the same segments again after the RTO: still right */
	cr_assert_leq(fx_wait_output_ms(10000), 10000);
	struct fx_pkt r = fx_peer_take(&p);
	cr_expect_eq(r.seq, first_seq);
	cr_expect(fx_is_pattern(r.data, r.len, 0));
	cr_expect_gt(r.nb_segs, 2, "the retransmission spans the 1, 3 and 999-byte sends");
}
