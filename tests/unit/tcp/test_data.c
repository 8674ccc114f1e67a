/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Data transfer (RFC 9293 §3.8-3.10): in-order delivery, reassembly of
 * out-of-order segments with the SACK blocks we report (RFC 2018 §4),
 * delayed ACKs (RFC 5681 §4.2), a receive window that follows what the
 * application consumed, zero windows and their probes (RFC 9293 §3.8.6.1),
 * small windows and the sender's SWS override (§3.8.6.2.1), and text after
 * the peer's FIN.
 */
#include "tcp_fixture.h"

#include <errno.h>
#include <string.h>

TestSuite(data, .init = fx_setup, .fini = fx_teardown);

/* The peer's stream offset of its next byte. */
static uint32_t peer_off(const struct fx_peer *p)
{
	return p->nxt - (p->isn + 1);
}

/* Sends N bytes of the peer's stream (fx_pattern from its offset) in one segment. */
static void peer_data(struct fx_peer *p, unsigned n)
{
	uint8_t buf[2048];
	cr_assert_leq(n, sizeof(buf));
	for (unsigned i = 0; i < n; i++)
		buf[i] = fx_pattern(peer_off(p) + i);
	fx_peer_send(p, F_ACK, buf, n);
}

/* The same, at stream offset OFF without moving the peer's sequence. */
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

/*
 * A first exchange, after which our window is the whole buffer: the SYN-ACK
 * could only offer 65535 bytes, so the first read announces the rest.
 */
static void warm_up(struct fx_peer *p)
{
	peer_data(p, 10);
	fx_advance_ms(fx_params.delack_ms + 1);
	fx_discard();
}

TCP_TEST(data, in_order_data_is_delivered_whole_and_in_order)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = fx_accept(&p);

	for (int i = 0; i < 10; i++)
		peer_data(&p, 1448); /* crosses 2^32: the peer's ISN is just below it */
	cr_expect_eq(fc->rx_len, 14480);
	cr_expect(fx_is_pattern(fc->rx, fc->rx_len, 0), "byte for byte");
	cr_expect_eq(fx_drops_total(), 0);
}

TCP_TEST(data, a_lone_segment_is_acked_after_the_delayed_ack_timeout)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	fx_accept(&p);
	warm_up(&p);

	peer_data(&p, 100);
	fx_expect_silence("RFC 5681 §4.2: the ACK may wait");
	uint64_t waited = fx_wait_output_ms(1000);
	cr_expect_eq(waited, fx_params.delack_ms, "ACK after %u ms, not %lu", fx_params.delack_ms,
		     (unsigned long)waited);
	struct fx_pkt k = fx_peer_take(&p);
	cr_expect_eq(k.flags, F_ACK);
	cr_expect_eq(k.ack, p.nxt);
}

/* Takes what was sent and returns the highest ACK among it (the peer's ISN when nothing came). */
static uint32_t highest_ack(struct fx_peer *p)
{
	uint32_t a = p->isn;
	while (fx_pending()) {
		struct fx_pkt k = fx_peer_take(p);
		if ((k.flags & F_ACK) && seq_gt(k.ack, a))
			a = k.ack;
	}
	return a;
}

TCP_TEST(data, every_second_full_segment_is_acked_at_once)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	fx_accept(&p);
	warm_up(&p);

	peer_data(&p, 1448);
	fx_expect_silence("one full segment: the ACK may wait");
	/*
	 * RFC 5681 §4.2: at least every second full-sized segment is acked without
	 * delay, so never more than one full segment waits for its ACK.
	 */
	uint32_t acked = p.isn;
	for (int i = 0; i < 16; i++) {
		peer_data(&p, 1448);
		uint32_t a = highest_ack(&p);
		if (seq_gt(a, acked))
			acked = a;
		cr_expect(seq_leq(acked, p.nxt), "never acks ahead");
		cr_expect_leq(p.nxt - acked, 1448, "segment %d: two full segments unacked", i + 2);
	}
	fx_advance_ms(fx_params.delack_ms + 1);
	fx_discard();
}

TCP_TEST(data, delayed_ack_rides_on_the_reply)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = fx_accept(&p);
	warm_up(&p);

	peer_data(&p, 20);
	cr_assert_eq(fx_send(fc, 30), 0);
	struct fx_pkt k = fx_peer_take(&p);
	cr_expect_eq(k.len, 30);
	cr_expect_eq(k.ack, p.nxt, "the reply carries the ACK");
	fx_peer_ack_all(&p);
	fx_peer_ack(&p);
	fx_advance_ms(1000);
	fx_expect_silence("no separate delayed ACK");
}

TCP_TEST(data, out_of_order_segment_draws_immediate_ack_with_sack_block)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = fx_accept(&p);

	peer_data_at(&p, 1000, 500, 0);
	struct fx_pkt k = fx_peer_take(&p);
	cr_expect_eq(k.ack, p.nxt, "a duplicate ACK, at once (RFC 5681 §4.2)");
	cr_assert_eq(k.n_sack, 1);
	cr_expect_eq(k.sack[0].start, p.isn + 1 + 1000);
	cr_expect_eq(k.sack[0].end, p.isn + 1 + 1500);
	cr_expect_eq(fc->rx_len, 0, "nothing delivered past a hole");
	cr_expect_eq(fx_count(DP_C_TCP_OOO_SEGMENTS), 1);
}

TCP_TEST(data, sack_blocks_put_the_latest_segment_first)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	fx_accept(&p);

	peer_data_at(&p, 1000, 100, 0);
	fx_discard();
	peer_data_at(&p, 3000, 100, 0);
	fx_discard();
	peer_data_at(&p, 2000, 100, 0);
	struct fx_pkt k = fx_peer_take(&p);
	cr_assert_eq(k.n_sack, 3, "three blocks fit beside timestamps");
	uint32_t b = p.isn + 1;
	/* RFC 2018 §4: the first block holds the segment that triggered this ACK. */
	cr_expect_eq(k.sack[0].start, b + 2000);
	cr_expect_eq(k.sack[0].end, b + 2100);
	/* and the others follow, the most recent first */
	cr_expect_eq(k.sack[1].start, b + 3000);
	cr_expect_eq(k.sack[2].start, b + 1000);

	/* a segment joining two blocks reports the merged one */
	peer_data_at(&p, 1100, 900, 0);
	k = fx_peer_take(&p);
	cr_assert_geq(k.n_sack, 1);
	cr_expect_eq(k.sack[0].start, b + 1000);
	cr_expect_eq(k.sack[0].end, b + 2100);
}

TCP_TEST(data, filling_the_hole_delivers_everything_and_acks_at_once)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = fx_accept(&p);

	peer_data_at(&p, 1448, 1448, 0);
	peer_data_at(&p, 2896, 1448, 0);
	fx_discard();
	peer_data_at(&p, 0, 1448, 0);
	p.nxt += 3 * 1448;
	cr_assert_gt(fx_pending(), 0, "RFC 5681 §4.2: an ACK at once when a hole is filled");
	struct fx_pkt k;
	while (fx_pending())
		k = fx_peer_take(&p);
	cr_expect_eq(k.ack, p.nxt, "the hole is filled: everything acked");
	cr_expect_eq(k.n_sack, 0, "no blocks once nothing is held");
	cr_expect_eq(fc->rx_len, 3 * 1448);
	cr_expect(fx_is_pattern(fc->rx, fc->rx_len, 0));
}

TCP_TEST(data, receive_window_follows_what_the_application_consumed)
{
	fx_params.rcv_buf = 16384;
	fx_restart();
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = fx_accept(&p);
	fc->manual_consume = true;

	peer_data(&p, 1448);
	peer_data(&p, 1448);
	struct fx_pkt k = fx_peer_take(&p);
	uint32_t wnd = (uint32_t)k.win << p.our_ws;
	cr_expect_leq(wnd, 16384 - 2896, "unread data is not offered again (got %u)", wnd);
	cr_expect_geq(wnd, 16384 - 2896 - (1u << p.our_ws));

	/* The application reads it all: the window opens again, and the peer is told. */
	tcp_consumed(fc->c, 2896);
	k = fx_peer_take(&p);
	cr_expect_eq(k.flags, F_ACK, "a window update");
	cr_expect_eq((uint32_t)k.win << p.our_ws, 16384);
}

TCP_TEST(data, a_full_buffer_closes_the_window_and_excess_is_not_taken)
{
	fx_params.rcv_buf = 8192;
	fx_restart();
	struct fx_peer p = fx_peer_new(PEER_PORT);
	p.ws_on = false; /* a byte-exact window */
	struct fx_conn *fc = fx_accept(&p);
	fc->manual_consume = true;

	for (int i = 0; i < 8; i++)
		peer_data(&p, 1024);
	fx_discard();
	cr_expect_eq(fc->rx_len, 8192);
	fx_advance_ms(fx_params.delack_ms + 1);
	fx_discard();
	/* one more byte: beyond the (now zero) window */
	uint32_t nxt = p.nxt;
	peer_data(&p, 1);
	struct fx_pkt k = fx_peer_take(&p);
	cr_expect_eq(k.win, 0, "a zero window");
	cr_expect_eq(k.ack, nxt, "the probe's byte is not taken");
	cr_expect_eq(fc->rx_len, 8192);
	p.nxt = nxt;

	tcp_consumed(fc->c, 8192);
	k = fx_peer_take(&p);
	cr_expect_eq(k.win, 8192, "the window reopens once the application read");
	peer_data(&p, 1);
	cr_expect_eq(fc->rx_len, 8193);
}

/* A connection whose peer has just acked everything with a zero window, with data still queued. */
static struct fx_conn *stalled(struct fx_peer *p)
{
	struct fx_conn *fc = fx_accept(p);
	cr_assert_eq(fx_send(fc, 3000), 0);
	while (fx_pending())
		fx_peer_take(p);
	fx_peer_ack_all(p);
	p->rwnd = 0;
	fx_peer_ack(p);
	cr_assert_eq(fx_send(fc, 1000), 0);
	fx_expect_silence("nothing goes into a zero window");
	return fc;
}

TCP_TEST(data, zero_window_is_probed_with_backoff_while_the_peer_answers)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = stalled(&p);
	uint64_t prev = 0;

	for (int i = 0; i < 20; i++) {
		uint64_t waited = fx_wait_output_ms(120000);
		cr_assert_leq(waited, 120000, "probe %d never came", i + 1);
		struct fx_pkt k = fx_peer_take(&p);
		cr_expect(k.flags & F_ACK);
		cr_expect_leq(k.len, 1, "a probe carries at most one byte");
		if (i > 0 && prev < (uint64_t)fx_params.rto_max_ms / 2)
			cr_expect_geq(waited, 2 * prev - 1, "probe %d: the wait doubles", i + 1);
		cr_expect_leq(waited, fx_params.rto_max_ms, "and stops at the RTO ceiling");
		prev = waited;
		fx_peer_ack(&p); /* still zero */
	}
	/* RFC 1122 §4.2.2.17: never give up while the receiver answers the probes. */
	cr_expect_eq(fc->closed, 0, "the connection is alive after %d answered probes", 20);
	cr_expect_eq(strcmp(fx_state_of(&p), "ESTABLISHED"), 0);
}

TCP_TEST(data, zero_window_is_probed_and_reopens)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = stalled(&p);

	uint64_t waited = fx_wait_output_ms(5000);
	cr_assert_leq(waited, 5000, "a probe within the RTO");
	fx_peer_take(&p);
	/* the window opens; the peer says so in its answer to the probe */
	p.rwnd = 65536;
	fx_peer_ack(&p);
	unsigned got = 0;
	while (fx_pending()) {
		struct fx_pkt k = fx_peer_take(&p);
		if (k.len && k.seq == p.our_iss + 1 + 3000 + got) {
			cr_expect(fx_is_pattern(k.data, k.len, 3000 + got));
			got += k.len;
		}
	}
	cr_expect_eq(got, 1000, "the queued data flows");
	cr_expect_eq(fc->closed, 0);
}

TCP_TEST(data, window_opening_as_a_probe_arrives_resumes_without_gap)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = stalled(&p);

	uint64_t waited = fx_wait_output_ms(5000);
	cr_assert_leq(waited, 5000);
	struct fx_pkt k = fx_peer_take(&p);
	/* Space opened just as the probe arrived: the peer takes whatever it carries. */
	if (seq_gt(k.seq + k.len, p.ack))
		p.ack = k.seq + k.len;
	p.rwnd = 65536;
	fx_peer_ack(&p);
	cr_expect_eq(fx_drop(DP_DROP_TCP_BAD_ACK), 0, "the ACK of a probe acks nothing unsent");
	unsigned got = p.ack - (p.our_iss + 1 + 3000);
	while (fx_pending()) {
		struct fx_pkt d = fx_peer_take(&p);
		if (d.len) {
			cr_expect_eq(d.seq, p.our_iss + 1 + 3000 + got, "no gap, no overlap");
			cr_expect(fx_is_pattern(d.data, d.len, 3000 + got));
			got += d.len;
		}
	}
	cr_expect_eq(got, 1000, "the rest follows at once");
	cr_expect_eq(fc->closed, 0);
}

TCP_TEST(data, sws_override_sends_into_a_small_window_after_the_timeout)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	p.ws_on = false; /* byte-exact windows */
	p.rwnd = 60000;
	struct fx_conn *fc = fx_accept(&p);
	cr_assert_eq(fx_send(fc, 3000), 0);
	while (fx_pending())
		fx_peer_take(&p);
	/* The peer takes it all, but its reader is slow: it offers only 1000 bytes. */
	fx_peer_ack_all(&p);
	p.rwnd = 1000;
	fx_peer_ack(&p);
	cr_assert_eq(fx_send(fc, 5000), 0);
	fx_expect_silence("SWS avoidance: 1000 bytes is below an MSS and half the largest window");

	/* RFC 9293 §3.8.6.2.1 rule 4: the override timeout sends what the window takes. */
	uint32_t off = 3000;
	for (int i = 0; i < 3; i++) {
		uint64_t waited = fx_wait_output_ms(5000);
		cr_assert_leq(waited, 1000, "round %d: RFC 1122 §4.2.3.4: at most 1 s, not %lu ms",
			      i + 1, (unsigned long)waited);
		cr_expect_geq(waited, 100, "round %d: and at least 0.1 s", i + 1);
		struct fx_pkt k = fx_peer_take(&p);
		cr_expect_eq(k.seq, p.our_iss + 1 + off, "round %d: the next queued byte", i + 1);
		cr_expect_eq(k.len, 1000, "round %d: as much as the window allows", i + 1);
		cr_expect(fx_is_pattern(k.data, k.len, off));
		fx_expect_silence("one window's worth per timeout");
		off += k.len;
		/* acknowledged, and the window is still 1000 */
		fx_peer_ack_all(&p);
		fx_peer_ack(&p);
		fx_expect_silence("still a sliver: wait for the override again");
	}
	/* The reader catches up: the window opens and the rest goes at once. */
	p.rwnd = 60000;
	fx_peer_ack(&p);
	while (fx_pending()) {
		struct fx_pkt k = fx_peer_take(&p);
		cr_expect_eq(k.seq, p.our_iss + 1 + off, "no gap, no overlap");
		cr_expect(fx_is_pattern(k.data, k.len, off));
		off += k.len;
	}
	cr_expect_eq(off, 8000, "every queued byte went out");
	cr_expect_eq(fx_count(DP_C_TCP_RETRANSMITS), 0, "and nothing twice");
	cr_expect_eq(fc->closed, 0);
}

TCP_TEST(data, text_after_the_peers_fin_is_ignored)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = fx_accept(&p);

	peer_data(&p, 10);
	fx_peer_send(&p, F_FIN, NULL, 0);
	cr_expect_eq(fc->peer_closed, 1);
	fx_discard();
	peer_data(&p, 10); /* sequence numbers after the FIN */
	cr_expect_eq(fc->rx_len, 10, "RFC 9293 §3.10.7.4: CLOSE-WAIT ignores segment text");
	cr_expect_eq(fc->peer_closed, 1);
	cr_expect_eq(fc->closed, 0);
	while (fx_pending()) {
		struct fx_pkt k = fx_peer_take(&p);
		cr_expect_not(k.flags & F_RST);
	}
}

TCP_TEST(data, sending_more_than_the_buffer_returns_eagain_then_writable)
{
	fx_params.snd_buf = 8192;
	fx_restart();
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = fx_accept(&p);

	cr_assert_eq(fx_send(fc, 8000), 0);
	cr_expect_eq(fx_send(fc, 1000), -EAGAIN, "the send buffer is full");
	cr_expect_eq(fc->tx_off, 8000);
	while (fx_pending())
		fx_peer_take(&p);
	fx_peer_ack_all(&p);
	fx_peer_ack(&p);
	cr_expect_eq(fc->writable, 1, "writable() once the data was acknowledged");
	cr_expect_eq(fx_send(fc, 1000), 0);
}

TCP_TEST(data, small_reads_do_not_announce_a_sliver_of_window)
{
	fx_params.rcv_buf = 16384;
	fx_restart();
	struct fx_peer p = fx_peer_new(PEER_PORT);
	p.ws_on = false;
	struct fx_conn *fc = fx_accept(&p);
	fc->manual_consume = true;

	for (int i = 0; i < 8; i++)
		peer_data(&p, 1448);
	fx_advance_ms(fx_params.delack_ms + 1);
	fx_discard();
	/* RFC 9293 §3.8.6.2.2: receiver SWS avoidance; reads of 100 bytes announce nothing */
	for (int i = 0; i < 5; i++)
		tcp_consumed(fc->c, 100);
	fx_expect_silence("no window update for a sliver");
	tcp_consumed(fc->c, 8 * 1448 - 500);
	struct fx_pkt k = fx_peer_take(&p);
	cr_expect_eq(k.win, 16384, "a real opening is announced");
}

TCP_TEST(data, our_right_window_edge_never_moves_left)
{
	fx_params.rcv_buf = 16384;
	fx_restart();
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = fx_accept(&p);
	fc->manual_consume = true;
	uint32_t edge = p.nxt;

	for (int i = 0; i < 30; i++) {
		if (seq_lt(p.nxt + 700, edge))
			peer_data(&p, 700);
		if (i % 3 == 2)
			tcp_consumed(fc->c, 1000);
		fx_advance_ms(fx_params.delack_ms + 1);
		while (fx_pending()) {
			struct fx_pkt k = fx_peer_take(&p);
			uint32_t e = k.ack + ((uint32_t)k.win << p.our_ws);
			/* RFC 9293 §3.8.6.2.2: a receiver should not shrink the window */
			cr_expect(seq_geq(e, edge), "right edge %u moved left of %u", e, edge);
			if (seq_gt(e, edge))
				edge = e;
		}
	}
}

TCP_TEST(data, a_closed_receive_window_still_takes_the_peers_acks)
{
	fx_params.rcv_buf = 4096;
	fx_restart();
	struct fx_peer p = fx_peer_new(PEER_PORT);
	p.ws_on = false;
	struct fx_conn *fc = fx_accept(&p);
	fc->manual_consume = true;

	for (int i = 0; i < 4; i++)
		peer_data(&p, 1024);
	cr_assert_eq(fx_send(fc, 500), 0);
	struct fx_pkt k;
	while (fx_pending())
		k = fx_peer_take(&p);
	cr_assert_eq(k.win, 0, "our window is closed");
	/* the peer probes our window, acknowledging our data in the same segment */
	fx_peer_ack_all(&p);
	uint32_t nxt = p.nxt;
	peer_data(&p, 1);
	p.nxt = nxt;
	/* RFC 9293 §3.10.7.4: "special allowance should be made to accept valid ACKs" */
	struct tcp_conn *c = fx_lookup(&p);
	cr_expect_eq(c->snd_una, p.ack, "the ACK in the probe was taken");
	k = fx_peer_take(&p);
	cr_expect_eq(k.win, 0, "RFC 9293 §3.8.6.1: answered with the zero window");
	cr_expect_eq(k.ack, nxt, "and its byte not taken");
}

TCP_TEST(data, send_after_shutdown_is_refused)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = fx_accept(&p);

	tcp_shutdown(fc->c);
	fx_discard();
	cr_expect_eq(fx_send(fc, 10), -EPIPE);
	cr_expect_eq(tcp_send_space(fc->c), 0);
}

/*
 * Received chains (a NIC's scatter-gather, or jumbo frames over small mbufs):
 * the headers in one mbuf, the payload over several, odd lengths among them.
 * Checked in software here (no NIC verdict), trimmed, reassembled and
 * delivered as any other payload.
 */
static const uint16_t rx_pieces[] = {1, 7, 2, 601, 3, 64, 5};

/* Sends N bytes of the peer's stream at stream offset OFF as a chain, not moving its sequence. */
static void peer_chain_at(struct fx_peer *p, uint32_t off, unsigned n, uint8_t flags, unsigned pad)
{
	uint8_t buf[2048];
	cr_assert_leq(n, sizeof(buf));
	for (unsigned i = 0; i < n; i++)
		buf[i] = fx_pattern(off + i);
	struct fx_seg g = fx_peer_seg(p, F_ACK | flags, buf, n);
	g.seq = p->isn + 1 + off;
	g.pieces = rx_pieces;
	g.n_pieces = RTE_DIM(rx_pieces);
	g.pad = pad;
	fx_input(&g);
}

TCP_TEST(data, chained_payload_in_order_is_delivered_whole)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = fx_accept(&p);

	/* full segments, a short one, and one with Ethernet padding in its last pieces */
	peer_chain_at(&p, 0, 1448, 0, 0);
	peer_chain_at(&p, 1448, 1448, 0, 0);
	peer_chain_at(&p, 2896, 7, F_PSH, 0);
	peer_chain_at(&p, 2903, 20, F_PSH, 9);
	p.nxt += 2923;
	cr_expect_eq(fx_drops_total(), 0, "every chain passes the software checksum");
	cr_expect_eq(fc->rx_len, 2923);
	cr_expect(fx_is_pattern(fc->rx, fc->rx_len, 0), "byte for byte, padding left out");
	fx_advance_ms(fx_params.delack_ms + 1);
	struct fx_pkt k = {0};
	while (fx_pending())
		k = fx_peer_take(&p);
	cr_expect_eq(k.ack, p.nxt, "all acknowledged");
}

TCP_TEST(data, chained_payload_out_of_order_is_reassembled_once)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = fx_accept(&p);

	/* 3 then 1 arrive ahead of 0; each a chain */
	peer_chain_at(&p, 3 * 1000, 1000, 0, 0);
	peer_chain_at(&p, 1000, 1000, 0, 0);
	cr_expect_eq(fc->rx_len, 0, "nothing deliverable yet");
	/* a retransmission overlapping both ends of what is held: only the gap is kept */
	peer_chain_at(&p, 1500, 1800, 0, 0);
	/* then 0, overlapping the start of 1 by 333 bytes */
	peer_chain_at(&p, 0, 1333, 0, 0);
	cr_expect_eq(fc->rx_len, 4000, "the hole filled: everything held is delivered");
	cr_expect(fx_is_pattern(fc->rx, fc->rx_len, 0), "once, in order");
	cr_expect_eq(fx_lookup(&p)->n_ooo, 0);
	cr_expect_eq(fx_lookup(&p)->ooo_mbufs, 0);
	/* an old chain entirely below RCV.NXT, and one that straddles it */
	peer_chain_at(&p, 100, 900, 0, 0);
	peer_chain_at(&p, 3500, 1448, F_PSH, 0);
	p.nxt += 4948;
	cr_expect_eq(fc->rx_len, 4948);
	cr_expect(fx_is_pattern(fc->rx, fc->rx_len, 0), "duplicates trimmed across the pieces");
	cr_expect_eq(fx_drop(DP_DROP_TCP_OUT_OF_WINDOW), 1, "the old one is only acknowledged");
	cr_expect_eq(fx_drops_total(), 1, "no chain failed its checksum");
}

TCP_TEST(data, chained_payload_past_the_window_is_trimmed_across_pieces)
{
	fx_params.rcv_buf = 3000;
	fx_restart();
	struct fx_peer p = fx_peer_new(PEER_PORT);
	p.ws_on = false; /* byte-exact windows */
	struct fx_conn *fc = fx_accept(&p);
	fc->manual_consume = true;

	peer_chain_at(&p, 0, 1448, 0, 0);
	peer_chain_at(&p, 1448, 1448, 0, 0);
	/* 104 bytes of window left: the rest of this chain goes, whatever piece it is in */
	peer_chain_at(&p, 2896, 1448, F_PSH, 0);
	cr_expect_eq(fc->rx_len, 3000, "up to the right edge and no further");
	cr_expect(fx_is_pattern(fc->rx, fc->rx_len, 0));
	struct fx_pkt k = {0};
	while (fx_pending())
		k = fx_peer_take(&p);
	cr_expect_eq(k.ack, p.isn + 1 + 3000);
	cr_expect_eq(k.win, 0, "and the window is closed");
}
