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
