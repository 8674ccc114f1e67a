/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * TCP options: the MSS (RFC 9293 §3.7.1, RFC 6691) clamped to our MTU, window
 * scaling and timestamps with PAWS (RFC 7323), SACK-permitted (RFC 2018), each
 * used only when both ends offered it.
 */
#include "tcp_fixture.h"

#include <string.h>

TestSuite(options, .init = fx_setup, .fini = fx_teardown);

/* Sends LEN bytes from the application and returns the payload sizes of what went out. */
static unsigned sent_sizes(struct fx_peer *p, struct fx_conn *fc, size_t len, unsigned *sizes,
			   unsigned max)
{
	unsigned n = 0;
	cr_assert_eq(fx_send(fc, len), 0);
	while (fx_pending()) {
		struct fx_pkt k = fx_peer_take(p);
		if (k.len && n < max)
			sizes[n++] = k.len;
	}
	return n;
}

TCP_TEST(options, mss_we_announce_follows_our_mtu)
{
	fx_mtu = 1280;
	fx_restart();
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_pkt k = fx_peer_syn(&p);
	cr_expect(k.has_mss);
	cr_expect_eq(k.mss, 1240, "MTU 1280 - 20 - 20");
	fx_peer_ack(&p);
	cr_assert_eq(fx_n_conns, 1);
	unsigned sz[16];
	unsigned n = sent_sizes(&p, &fx_conns[0], 5000, sz, 16);
	cr_assert_geq(n, 2);
	cr_expect_eq(sz[0], 1240 - 12, "the peer's 1460 is clamped to our MTU, less timestamps");
	for (unsigned i = 0; i < n; i++)
		cr_expect_leq(sz[i], 1240 - 12);
}

TCP_TEST(options, segments_never_exceed_the_peers_mss_less_timestamp_option)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	p.mss = 536;
	struct fx_conn *fc = fx_accept(&p);
	unsigned sz[16];
	unsigned n = sent_sizes(&p, fc, 2000, sz, 16);

	cr_assert_geq(n, 3);
	/* RFC 6691: the MSS counts payload only; the 12 bytes of timestamps come out of it. */
	cr_expect_eq(sz[0], 524);
	cr_expect_eq(sz[1], 524);
	for (unsigned i = 0; i < n; i++)
		cr_expect_leq(sz[i], 524);
}

TCP_TEST(options, a_larger_peer_mss_is_clamped_to_our_mtu)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	p.mss = 8960;
	p.ts_on = false;
	struct fx_conn *fc = fx_accept(&p);
	unsigned sz[16];
	unsigned n = sent_sizes(&p, fc, 5000, sz, 16);

	cr_assert_geq(n, 2);
	cr_expect_eq(sz[0], 1460, "our MTU allows 1460, whatever the peer takes");
	for (unsigned i = 0; i < n; i++)
		cr_expect_leq(sz[i], 1460);
}

TCP_TEST(options, no_mss_option_means_536)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	p.mss = 0;
	p.ts_on = false;
	struct fx_conn *fc = fx_accept(&p);
	unsigned sz[16];
	unsigned n = sent_sizes(&p, fc, 2000, sz, 16);

	cr_assert_geq(n, 3);
	cr_expect_eq(sz[0], 536, "RFC 9293 §3.7.1: the default send MSS");
	for (unsigned i = 0; i < n; i++)
		cr_expect_leq(sz[i], 536);
}

TCP_TEST(options, peer_window_is_scaled_by_its_shift_after_the_syn)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	p.rwnd = 4000; /* sent as 31 << 7 = 3968 bytes */
	struct fx_conn *fc = fx_accept(&p);
	unsigned sz[16], total = 0;
	unsigned n = sent_sizes(&p, fc, 10000, sz, 16);

	for (unsigned i = 0; i < n; i++)
		total += sz[i];
	cr_expect_gt(total, 31, "the window field is scaled, not taken as 31 bytes");
	cr_expect_leq(total, 3968, "never past the peer's right edge");
}

TCP_TEST(options, our_windows_after_the_syn_are_scaled)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	fx_accept(&p);
	fx_peer_send(&p, F_PSH, "NOOP\r\n", 6);
	fx_advance_ms(fx_params.delack_ms + 1);
	struct fx_pkt k = fx_peer_take(&p);
	cr_assert(k.flags & F_ACK);
	cr_expect_eq(p.our_ws, fx_params.wscale);
	cr_expect_eq(k.win, fx_params.rcv_buf >> fx_params.wscale,
		     "the whole (consumed) buffer, in units of 2^%u", fx_params.wscale);
}

TCP_TEST(options, no_window_scaling_unless_both_ends_offer_it)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	p.ws_on = false;
	p.rwnd = 60000;
	struct fx_pkt sa = fx_peer_syn(&p);
	cr_expect_not(sa.has_ws, "RFC 7323 §2.2: only in answer to a SYN that had it");
	fx_peer_ack(&p);
	cr_assert_eq(fx_n_conns, 1);
	fx_peer_send(&p, F_PSH, "NOOP\r\n", 6);
	fx_advance_ms(fx_params.delack_ms + 1);
	struct fx_pkt k = fx_peer_take(&p);
	cr_expect_eq(k.win, 65535, "an unscaled window tops out at 65535");

	/* and the peer's window is taken as it is: 60000 bytes */
	unsigned sz[64], total = 0;
	fx_conns[0].tx_off = 0;
	unsigned n = sent_sizes(&p, &fx_conns[0], 100000, sz, 64);
	for (unsigned i = 0; i < n; i++)
		total += sz[i];
	cr_expect_leq(total, 60000);
}

TCP_TEST(options, window_shift_above_14_counts_as_14)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	p.ws = 15;
	p.rwnd = 1u << 15; /* the field says 1 */
	fx_accept(&p);
	struct tcp_conn *c = fx_lookup(&p);
	cr_assert_not_null(c);
	cr_expect_eq(c->snd_wnd, 1u << 14, "RFC 7323 §2.3: a shift of 15 is taken as 14");
}

TCP_TEST(options, timestamps_echo_the_peer_and_follow_our_clock)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = fx_accept(&p);
	uint32_t ts0 = p.ts_recent;

	fx_advance_ms(250);
	uint32_t peer_ts = fx_peer_tsval(&p);
	fx_peer_send(&p, F_PSH, "NOOP\r\n", 6);
	cr_assert_eq(fx_send(fc, 10), 0);
	struct fx_pkt k = fx_peer_take(&p);
	cr_expect(k.has_ts, "every segment carries timestamps once negotiated");
	cr_expect_eq(k.tsecr, peer_ts, "TSecr echoes the peer's latest TSval");
	cr_expect_eq(k.tsval - ts0, 250, "TSval is a millisecond clock");
}

TCP_TEST(options, paws_drops_segment_with_old_timestamp)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = fx_accept(&p);
	fx_advance_ms(100);
	fx_peer_send(&p, F_PSH, "NOOP\r\n", 6);
	fx_discard();

	struct fx_seg g = fx_peer_seg(&p, F_ACK | F_PSH, "RSET\r\n", 6);
	g.tsval -= 50; /* an old duplicate from an earlier incarnation */
	fx_input(&g);
	cr_expect_eq(fc->rx_len, 6, "its data is not taken");
	cr_expect_eq(fx_drop(DP_DROP_TCP_PAWS), 1);
	struct fx_pkt k = fx_peer_take(&p);
	cr_expect_eq(k.flags, F_ACK, "RFC 7323 §5.3 R1: acknowledged, then dropped");
	cr_expect_eq(k.ack, p.nxt);

	fx_peer_send(&p, F_PSH, "RSET\r\n", 6);
	cr_expect_eq(fc->rx_len, 12, "the same bytes with a current timestamp are taken");
}

TCP_TEST(options, paws_does_not_apply_to_rst)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = fx_accept(&p);
	fx_advance_ms(100);
	fx_peer_send(&p, F_PSH, "NOOP\r\n", 6);

	struct fx_seg g = fx_peer_seg(&p, F_RST, NULL, 0);
	g.tsval -= 50;
	fx_input(&g);
	cr_expect_eq(fc->closed, 1, "RFC 7323 §5.3 R1 exempts RST");
	cr_expect_eq(fc->reason, TCP_CLOSE_RESET);
}

TCP_TEST(options, timestamp_of_an_out_of_order_segment_is_not_echoed)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	fx_accept(&p);
	fx_advance_ms(10);
	uint32_t t1 = fx_peer_tsval(&p);
	fx_peer_send(&p, F_PSH, "0123456789", 10);
	fx_discard();

	fx_advance_ms(10);
	struct fx_seg g = fx_peer_seg(&p, F_ACK, "abcdefghij", 10);
	g.seq += 10; /* the segment before it was lost */
	fx_input(&g);
	struct fx_pkt k = fx_peer_take(&p);
	cr_expect_eq(k.ack, p.nxt, "a duplicate ACK");
	/* RFC 7323 §4.3: only a segment at the left edge (SEG.SEQ <= Last.ACK.sent) updates it. */
	cr_expect_eq(k.tsecr, t1, "TSecr stays that of the last in-order segment");
}

TCP_TEST(options, no_timestamps_unless_the_peer_offers_them)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	p.ts_on = false;
	struct fx_pkt sa = fx_peer_syn(&p);
	cr_expect_not(sa.has_ts);
	fx_peer_ack(&p);
	cr_assert_eq(fx_n_conns, 1);
	cr_assert_eq(fx_send(&fx_conns[0], 3000), 0);
	struct fx_pkt k = fx_peer_take(&p);
	cr_expect_not(k.has_ts);
	cr_expect_eq(k.len, 1460, "the whole MSS carries data");
}

TCP_TEST(options, sack_is_used_only_when_the_peer_permits_it)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	p.sack_on = false;
	struct fx_pkt sa = fx_peer_syn(&p);
	cr_expect_not(sa.sack_perm, "RFC 2018 §2: only in answer to SACK-permitted");
	fx_peer_ack(&p);

	struct fx_seg g = fx_peer_seg(&p, F_ACK, "abcdefghij", 10);
	g.seq += 100;
	fx_input(&g);
	struct fx_pkt k = fx_peer_take(&p);
	cr_expect_eq(k.ack, p.nxt);
	cr_expect_eq(k.n_sack, 0, "no SACK blocks to a peer that did not permit them");
}

TCP_TEST(options, unknown_options_are_skipped_by_their_length)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	/* MSS 1000, an unknown kind 30 of 6 bytes, NOP, EOL */
	static const uint8_t opts[] = {2, 4, 0x03, 0xe8, 30, 6, 1, 2, 3, 4, 1, 0};
	struct fx_seg g = {.seq = p.isn, .flags = F_SYN, .win = 65535, .raw_opts = opts,
			   .raw_opts_len = sizeof(opts)};
	fx_input(&g);
	struct fx_pkt k = fx_take();
	cr_expect_eq(k.flags, F_SYN | F_ACK);
	cr_expect_eq(fx_drops_total(), 0);
	p.nxt = p.isn + 1;
	p.ack = k.seq + 1;
	p.ws_ok = p.ts_ok = p.sack_ok = false;
	fx_peer_ack(&p);
	cr_assert_eq(fx_n_conns, 1);
	cr_assert_eq(fx_send(&fx_conns[0], 3000), 0);
	struct fx_pkt d = fx_peer_take(&p);
	cr_expect_eq(d.len, 1000, "the MSS before the unknown option was read");
}

/*
 * Takes every segment the peer is sent until TOTAL bytes of ours arrived,
 * acknowledging each; checks each is exact and, header and options included,
 * within our MTU; returns the largest payload seen.
 */
static unsigned take_all_within_mtu(struct fx_peer *p, unsigned total)
{
	unsigned got = 0, largest = 0;
	for (int round = 0; got < total; round++) {
		cr_assert_lt(round, 1000, "stalled at %u of %u bytes", got, total);
		if (!fx_pending())
			fx_wait_output_ms(10000);
		while (fx_pending()) {
			struct fx_pkt k = fx_peer_take(p);
			cr_assert_leq(20 + 20 + k.opt_len + k.len, fx_mtu,
				      "a packet of %u bytes for an MTU of %u",
				      20 + 20 + k.opt_len + k.len, fx_mtu);
			if (!k.len)
				continue;
			cr_assert(fx_is_pattern(k.data, k.len, k.seq - (p->our_iss + 1)));
			got += k.len;
			largest = RTE_MAX(largest, k.len);
			p->ack = k.seq + k.len;
			fx_peer_ack(p);
		}
	}
	cr_assert_eq(got, total);
	return largest;
}

TCP_TEST(options, peer_mss_too_small_for_the_timestamp_option_does_not_wrap)
{
	/*
	 * Regression, found by fuzz_tcp_input: with timestamps on, the 12 bytes
	 * of the option came out of a peer MSS under 12 by a subtraction that
	 * wrapped to 65525 and more: segments far past the MTU. RFC 6691: options
	 * come out of the MSS; what is left is floored at 64 bytes, and a peer
	 * MSS of exactly 12, no room at all, gets the same floor.
	 */
	static const uint16_t mss[] = {1, 4, 11, 12};
	for (unsigned i = 0; i < RTE_DIM(mss); i++) {
		fx_restart();
		struct fx_peer p = fx_peer_new(PEER_PORT);
		p.mss = mss[i];
		struct fx_conn *fc = fx_accept(&p);
		cr_assert(p.ts_ok, "timestamps negotiated");
		cr_assert_eq(fx_send(fc, 1000), 0);
		unsigned largest = take_all_within_mtu(&p, 1000);
		cr_expect_eq(largest, 64, "peer MSS %u: segments of %u bytes", mss[i], largest);
	}
}

TCP_TEST(options, sack_blocks_never_push_a_data_segment_past_the_mtu)
{
	/*
	 * Regression, found by fuzz_tcp_input: a full-sized data segment sent
	 * while we hold out-of-order data carried timestamps and SACK blocks on
	 * top of an MSS that leaves room for timestamps only: 1528 bytes for an
	 * MTU of 1500. RFC 9293 §3.7.1: options come out of the segment; the
	 * blocks are left off as far as needed (RFC 2018 §3 lets an ACK carry
	 * fewer), and a short segment still carries them all.
	 */
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = fx_accept(&p);
	uint8_t buf[100];
	memset(buf, 'x', sizeof(buf));
	/* three holes in what the peer sends: three SACK blocks to report */
	for (uint32_t i = 1; i <= 3; i++) {
		struct fx_seg g = fx_peer_seg(&p, F_ACK, buf, sizeof(buf));
		g.seq = p.nxt + 200 * i;
		fx_input(&g);
	}
	cr_assert_eq(fx_pending(), 3);
	struct fx_pkt k = {0};
	while (fx_pending())
		k = fx_peer_take(&p); /* an immediate ACK for each (RFC 5681 §4.2) */
	cr_assert_eq(k.n_sack, 3, "the out-of-order data is reported");

	cr_assert_eq(fx_send(fc, 100), 0);
	k = fx_peer_take(&p);
	cr_expect_eq(k.len, 100);
	cr_expect_eq(k.n_sack, 3, "a short segment has room for every block");
	p.ack = k.seq + k.len;
	fx_peer_ack(&p);
	fc->tx_off = 100;
	cr_assert_eq(fx_send(fc, 6000), 0);
	unsigned full = 0;
	while (fx_pending()) {
		k = fx_peer_take(&p);
		cr_expect_leq(20 + 20 + k.opt_len + k.len, FX_MTU, "%u bytes of payload and %u of "
			      "options", k.len, k.opt_len);
		cr_expect(fx_is_pattern(k.data, k.len, k.seq - (p.our_iss + 1)));
		if (k.len == 1448) {
			full++;
			cr_expect_eq(k.n_sack, 0, "a full segment has room for timestamps only");
			cr_expect(k.has_ts);
		}
	}
	cr_expect_gt(full, 0, "full-sized segments went out");
}
