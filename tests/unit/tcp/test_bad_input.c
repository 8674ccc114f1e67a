/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Segments a peer or an attacker should not send: bad checksums, impossible
 * flags, missing ACKs, sequence numbers outside the window, overlapping and
 * duplicate retransmissions, a shrinking window, malformed options, data
 * after close. Each is handled as RFC 9293/5961 say and counted under its
 * drop reason; none disturbs the connection it aimed at.
 */
#include "tcp_fixture.h"

#include <string.h>

TestSuite(bad_input, .init = fx_setup, .fini = fx_teardown);

/* N bytes of the peer's stream at stream offset OFF, with FLAGS (ACK added), not moving it. */
static void peer_data_at(struct fx_peer *p, uint32_t off, unsigned n, uint8_t flags)
{
	uint8_t buf[2048];
	cr_assert_leq(n, sizeof(buf));
	for (unsigned i = 0; i < n; i++)
		buf[i] = fx_pattern(off + i);
	struct fx_seg g = fx_peer_seg(p, F_ACK | flags, buf, n);
	g.seq = p->isn + 1 + off;
	fx_input(&g);
}

/* An established connection that has already exchanged a first segment each way. */
static struct fx_conn *established(struct fx_peer *p)
{
	struct fx_conn *fc = fx_accept(p);
	peer_data_at(p, 0, 100, 0);
	p->nxt += 100;
	fx_advance_ms(fx_params.delack_ms + 1);
	fx_discard();
	return fc;
}

TCP_TEST(bad_input, segment_with_a_bad_checksum_is_dropped_unanswered)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = established(&p);

	struct fx_seg g = fx_peer_seg(&p, F_ACK | F_PSH, "QUIT\r\n", 6);
	g.bad_cksum = true;
	fx_input(&g);
	g.flags = F_RST;
	g.len = 0;
	fx_input(&g); /* not even an exact RST counts when its checksum is wrong */
	struct fx_seg syn = {.sport = 41000, .seq = 1, .flags = F_SYN, .win = 1000,
			     .bad_cksum = true};
	fx_input(&syn);
	fx_expect_silence("a corrupt segment is never answered");
	cr_expect_eq(fc->rx_len, 100);
	cr_expect_eq(fc->closed, 0);
	cr_expect_eq(fx_drop(DP_DROP_TCP_MALFORMED), 3);
	cr_expect_eq(fx_drops_total(), 3);
}

TCP_TEST(bad_input, truncated_or_inconsistent_headers_are_malformed)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	established(&p);
	struct fx_seg g = fx_peer_seg(&p, F_ACK, "abcd", 4);

	/* data offset below 5 words */
	struct rte_mbuf *m = fx_build(&g);
	struct rte_tcp_hdr *th = rte_pktmbuf_mtod_offset(m, struct rte_tcp_hdr *, 20);
	th->data_off = 4 << 4;
	tcp_input(fx_stack, m, fx_now);
	/* data offset past the end of the packet */
	m = fx_build(&g);
	th = rte_pktmbuf_mtod_offset(m, struct rte_tcp_hdr *, 20);
	th->data_off = 15 << 4;
	tcp_input(fx_stack, m, fx_now);
	/* an IPv4 total length that leaves no room for the TCP header */
	m = fx_build(&g);
	struct rte_ipv4_hdr *ip = rte_pktmbuf_mtod(m, struct rte_ipv4_hdr *);
	ip->total_length = rte_cpu_to_be_16(30);
	ip->hdr_checksum = 0;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	tcp_input(fx_stack, m, fx_now);

	fx_expect_silence("malformed segments are never answered");
	cr_expect_eq(fx_drop(DP_DROP_TCP_MALFORMED), 3);
	cr_expect_eq(strcmp(fx_state_of(&p), "ESTABLISHED"), 0);
}

TCP_TEST(bad_input, syn_fin_and_syn_rst_are_dropped_everywhere)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = established(&p);

	struct fx_seg g = {.sport = 41000, .seq = 1, .flags = F_SYN | F_FIN, .win = 1000};
	fx_input(&g); /* to the listener */
	g.flags = F_SYN | F_RST;
	fx_input(&g);
	g.dport = 587; /* to a closed port */
	fx_input(&g);
	struct fx_seg h = fx_peer_seg(&p, F_SYN | F_FIN | F_ACK, NULL, 0);
	fx_input(&h); /* on the connection, at its exact sequence */
	h.flags = F_SYN | F_RST | F_ACK;
	fx_input(&h);
	fx_expect_silence("impossible flag combinations are never answered");
	cr_expect_eq(fx_drop(DP_DROP_TCP_BAD_FLAGS), 5);
	cr_expect_eq(fx_drops_total(), 5);
	cr_expect_eq(fc->closed, 0, "a SYN+RST does not reset the connection");
	cr_expect_eq(fc->peer_closed, 0, "a SYN+FIN does not close it");
	cr_expect_eq(fx_stack->n_conns, 1, "no SYN+FIN opened a connection");
}

TCP_TEST(bad_input, segment_without_ack_in_a_synchronized_state_is_dropped)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = established(&p);

	struct fx_seg g = fx_peer_seg(&p, F_PSH, "QUIT\r\n", 6);
	fx_input(&g);
	g = fx_peer_seg(&p, F_FIN, NULL, 0);
	fx_input(&g);
	/* RFC 9293 §3.10.7.4, fifth check: "if the ACK bit is off, drop the segment and return" */
	cr_expect_eq(fc->rx_len, 100);
	cr_expect_eq(fc->peer_closed, 0);
	fx_expect_silence("dropped without an answer");
	cr_expect_eq(fx_drop(DP_DROP_TCP_BAD_FLAGS), 2);
}

TCP_TEST(bad_input, data_outside_the_window_is_answered_with_an_ack_and_dropped)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = established(&p);

	peer_data_at(&p, 100 + fx_params.rcv_buf + 5000, 100, 0); /* beyond the right edge */
	struct fx_pkt k = fx_peer_take(&p);
	cr_expect_eq(k.flags, F_ACK);
	cr_expect_eq(k.ack, p.nxt, "<SEQ=SND.NXT><ACK=RCV.NXT> (RFC 9293 §3.10.7.4)");
	cr_expect_eq(k.n_sack, 0, "nothing of it was kept");
	cr_expect_eq(fc->rx_len, 100);
	cr_expect_eq(fx_drop(DP_DROP_TCP_OUT_OF_WINDOW), 1);
	cr_expect_eq(fx_count(DP_C_TCP_OOO_SEGMENTS), 0);
}

TCP_TEST(bad_input, duplicate_retransmission_is_acked_and_not_delivered_twice)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = established(&p);

	peer_data_at(&p, 0, 100, 0); /* all of it already received */
	struct fx_pkt k = fx_peer_take(&p);
	cr_expect_eq(k.ack, p.nxt, "acknowledged again, so the peer stops resending");
	cr_expect_eq(fc->rx_len, 100, "delivered once");
	cr_expect_eq(fx_drop(DP_DROP_TCP_OUT_OF_WINDOW), 1);
}

TCP_TEST(bad_input, overlapping_retransmission_delivers_only_the_new_bytes)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = established(&p);

	peer_data_at(&p, 50, 150, 0); /* bytes 50-99 again, then 100-199 */
	p.nxt += 100;
	cr_expect_eq(fc->rx_len, 200);
	cr_expect(fx_is_pattern(fc->rx, fc->rx_len, 0), "each byte once, in order");
	cr_expect_eq(fx_drops_total(), 0);
}

TCP_TEST(bad_input, overlapping_out_of_order_segments_are_reassembled_once)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = established(&p);

	peer_data_at(&p, 1000, 1000, 0);  /* 1000-1999 */
	peer_data_at(&p, 1500, 1000, 0);  /* 1500-2499: overlaps its tail */
	peer_data_at(&p, 600, 600, 0);    /* 600-1199: overlaps its head */
	peer_data_at(&p, 1000, 1000, 0);  /* an exact duplicate */
	peer_data_at(&p, 1200, 200, 0);   /* inside what is held */
	fx_discard();
	peer_data_at(&p, 100, 500, 0);    /* fills the hole */
	p.nxt = p.isn + 1 + 2500;
	cr_expect_eq(fc->rx_len, 2500);
	cr_expect(fx_is_pattern(fc->rx, fc->rx_len, 0), "each byte once, in order");
	struct fx_pkt k;
	while (fx_pending())
		k = fx_peer_take(&p);
	cr_expect_eq(k.ack, p.nxt);
	cr_expect_eq(k.n_sack, 0);
}

TCP_TEST(bad_input, out_of_order_queue_is_bounded)
{
	fx_params.ooo_max_segs = 4;
	fx_restart();
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = established(&p);

	for (unsigned i = 0; i < 6; i++)
		peer_data_at(&p, 1000 + 200 * i, 100, 0); /* six separate islands */
	fx_discard();
	cr_expect_eq(fx_count(DP_C_TCP_OOO_SEGMENTS), 4);
	cr_expect_eq(fx_drop(DP_DROP_TCP_OOO_FULL), 2);
	/* the islands that were kept are delivered once the hole is filled */
	peer_data_at(&p, 100, 900, 0);
	cr_expect_geq(fc->rx_len, 1100);
	cr_expect(fx_is_pattern(fc->rx, fc->rx_len, 0));
}

TCP_TEST(bad_input, options_with_impossible_lengths_drop_the_segment)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = established(&p);
	static const uint8_t zero_len[] = {1, 1, 30, 0};
	static const uint8_t one_len[] = {1, 1, 30, 1};
	static const uint8_t past_end[] = {1, 1, 8, 10, 0, 0, 0, 1};
	static const uint8_t short_ts[] = {8, 9, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0};
	static const uint8_t bad_sack[] = {1, 1, 5, 11, 0, 0, 0, 1, 0, 0, 0, 2, 9, 0, 0, 0};
	static const uint8_t mss_len3[] = {2, 3, 5, 0};
	const uint8_t *opts[] = {zero_len, one_len, past_end, short_ts, bad_sack, mss_len3};
	unsigned lens[] = {sizeof(zero_len), sizeof(one_len), sizeof(past_end), sizeof(short_ts),
			   sizeof(bad_sack), sizeof(mss_len3)};

	for (unsigned i = 0; i < RTE_DIM(opts); i++) {
		struct fx_seg g = fx_peer_seg(&p, F_ACK | F_PSH, "QUIT\r\n", 6);
		g.has_ts = false;
		g.raw_opts = opts[i];
		g.raw_opts_len = lens[i];
		fx_input(&g);
	}
	/* and a SYN with one to the listener */
	struct fx_seg syn = {.sport = 41000, .seq = 1, .flags = F_SYN, .win = 1000,
			     .raw_opts = mss_len3, .raw_opts_len = sizeof(mss_len3)};
	fx_input(&syn);
	fx_expect_silence("RFC 9293 §3.1 (MUST-7): handled without crashing, here dropped");
	cr_expect_eq(fc->rx_len, 100);
	cr_expect_eq(fx_drop(DP_DROP_TCP_BAD_OPTIONS), RTE_DIM(opts) + 1);
	cr_expect_eq(fx_stack->n_conns, 1);
}

TCP_TEST(bad_input, data_after_the_application_closed_draws_a_reset)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = established(&p);

	tcp_close(fc->c);
	fx_peer_take(&p); /* our FIN */
	fx_peer_ack_all(&p);
	fx_peer_ack(&p);
	cr_expect_eq(strcmp(fx_state_of(&p), "FIN_WAIT_2"), 0);
	fx_peer_send(&p, F_PSH, "MAIL FROM:<>\r\n", 14);
	/* RFC 1122 §4.2.2.13: data nobody will read is answered by a RST */
	struct fx_pkt k = fx_peer_take(&p);
	cr_expect(k.flags & F_RST);
	cr_expect_eq(k.seq, p.ack);
	cr_expect_eq(fx_drop(DP_DROP_TCP_DATA_AFTER_CLOSE), 1);
	cr_expect_eq(strcmp(fx_state_of(&p), "none"), 0);
	cr_expect_eq(fc->rx_len, 100, "not delivered");
}

TCP_TEST(bad_input, shrinking_peer_window_stops_new_data_at_the_new_edge)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = established(&p);
	p.rwnd = 8 * 1448;
	fx_peer_ack(&p);

	cr_assert_eq(fx_send(fc, 20 * 1448), 0);
	uint32_t high = p.our_iss + 1;
	while (fx_pending()) {
		struct fx_pkt k = fx_peer_take(&p);
		high = k.seq + k.len;
	}
	cr_expect_leq(high - (p.our_iss + 1), 8 * 1448, "within the offered window");
	/* the peer acks two segments but moves its right edge left (RFC 9293 §3.8.6.2.1) */
	p.ack = p.our_iss + 1 + 2 * 1448;
	p.rwnd = 2 * 1448;
	fx_peer_ack(&p);
	while (fx_pending()) {
		struct fx_pkt k = fx_peer_take(&p);
		cr_expect(seq_leq(k.seq + k.len, p.ack + p.rwnd) || seq_leq(k.seq + k.len, high),
			  "no new data past the shrunken edge");
		cr_expect(seq_leq(k.seq + k.len, high), "nothing new while the window is full");
	}
	/* it reopens: sending resumes where it left off */
	p.ack = high;
	p.rwnd = 64 * 1024;
	fx_peer_ack(&p);
	cr_assert_gt(fx_pending(), 0);
	struct fx_pkt k = fx_peer_take(&p);
	cr_expect_eq(k.seq, high);
	cr_expect(fx_is_pattern(k.data, k.len, high - (p.our_iss + 1)));
	fx_discard();
}

TCP_TEST(bad_input, window_shrunk_to_zero_with_data_in_flight_is_still_probed)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = established(&p);

	cr_assert_eq(fx_send(fc, 4 * 1448), 0);
	fx_discard();
	/* the peer takes nothing and closes its window (its buffer shrank) */
	p.rwnd = 0;
	fx_peer_ack(&p);
	/* RFC 9293 §3.8.6.1: the sender must still transmit regularly into a zero window */
	for (unsigned i = 0; i < fx_params.max_retries + 5; i++) {
		uint64_t waited = fx_wait_output_ms(70000);
		cr_assert_leq(waited, 70000, "transmission %u into the closed window", i + 1);
		struct fx_pkt k = fx_peer_take(&p);
		cr_expect(seq_leq(p.ack, k.seq + k.len) || k.seq == p.ack - 1,
			  "a retransmission or a probe at the window edge");
		fx_discard();
		fx_peer_ack(&p); /* still zero, but alive */
	}
	/* RFC 1122 §4.2.2.17: not closed while the receiver answers */
	cr_expect_eq(fc->closed, 0);
}
