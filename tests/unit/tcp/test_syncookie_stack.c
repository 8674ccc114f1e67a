/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * SYN cookies in the stack (RFC 4987 §3.6): past the SYN backlog a listener
 * answers without keeping state, and the client's ACK rebuilds a connection
 * that works with what the SYN negotiated; a forged or stale ACK gets a RST.
 */
#include "tcp_fixture.h"

#include <string.h>

TestSuite(syncookie_stack, .init = fx_setup, .fini = fx_teardown);

#define COOKIE_PORT 2525

/* Fills the backlog of 1 on COOKIE_PORT with a half-open connection from port 39999. */
static void fill_backlog(void)
{
	fx_listen(COOKIE_PORT, 1);
	struct fx_peer first = fx_peer_new(39999);
	first.our_port = COOKIE_PORT;
	fx_peer_syn(&first);
	cr_assert_eq(fx_count(DP_C_TCP_SYNCOOKIES_SENT), 0, "the first SYN gets real state");
}

/* A peer for the cookie listener. */
static struct fx_peer cookie_peer(void)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	p.our_port = COOKIE_PORT;
	return p;
}

TCP_TEST(syncookie_stack, syn_beyond_the_backlog_gets_a_cookie_and_no_state)
{
	fill_backlog();
	unsigned conns = fx_stack->n_conns;
	struct fx_peer p = cookie_peer();
	struct fx_pkt sa = fx_peer_syn(&p);

	cr_expect_eq(sa.flags, F_SYN | F_ACK);
	cr_expect_eq(fx_count(DP_C_TCP_SYNCOOKIES_SENT), 1);
	cr_expect_eq(fx_stack->n_conns, conns, "no state kept for it");
	cr_expect_null(fx_lookup(&p));
	cr_expect(sa.has_mss);
	cr_expect_eq(sa.mss, FX_OUR_MSS);
}

TCP_TEST(syncookie_stack, syncookie_round_trip_yields_connection_with_negotiated_options)
{
	fill_backlog();
	struct fx_peer p = cookie_peer();
	p.rwnd = 4000; /* sent as 31 << 7 */
	struct fx_pkt sa = fx_peer_syn(&p);
	cr_assert(sa.has_ts && sa.has_ws && sa.sack_perm, "all offered: timestamps carry them");
	fx_peer_ack(&p);

	cr_assert_eq(fx_n_conns, 1, "the ACK makes a connection");
	struct fx_conn *fc = &fx_conns[0];
	cr_expect(fc->accepted);
	cr_expect_eq(fx_count(DP_C_TCP_SYNCOOKIES_OK), 1);
	cr_expect_eq(strcmp(fx_state_of(&p), "ESTABLISHED"), 0);

	/* MSS 1460 and timestamps: 1448-byte segments; WS 7: the 31-unit window is 3968 bytes */
	cr_assert_eq(fx_send(fc, 10000), 0);
	unsigned total = 0, first = 0;
	while (fx_pending()) {
		struct fx_pkt k = fx_peer_take(&p);
		cr_expect(k.has_ts, "timestamps on every segment");
		cr_expect_eq(k.tsecr, fx_peer_tsval(&p));
		if (k.len && !first)
			first = k.len;
		total += k.len;
	}
	cr_expect_eq(first, 1448);
	cr_expect_gt(total, 31, "the peer's window is scaled");
	cr_expect_leq(total, 3968);

	/* our own windows are scaled, and SACK works: an out-of-order segment is reported */
	struct fx_seg g = fx_peer_seg(&p, F_ACK, "abcdefghij", 10);
	g.seq += 1000;
	fx_input(&g);
	struct fx_pkt k = fx_peer_take(&p);
	cr_expect_eq(k.n_sack, 1, "SACK blocks to a peer that permitted them");
	cr_expect_eq(k.win, fx_params.rcv_buf >> sa.ws, "our window in units of 2^%u", sa.ws);
}

TCP_TEST(syncookie_stack, cookie_connection_takes_client_data_after_the_ack)
{
	fill_backlog();
	struct fx_peer p = cookie_peer();
	fx_peer_syn(&p);
	fx_peer_ack(&p);
	cr_assert_eq(fx_n_conns, 1);

	fx_peer_send(&p, F_PSH, "EHLO client.example\r\n", 21);
	cr_expect_eq(fx_conns[0].rx_len, 21, "within the window our SYN-ACK offered");
	cr_expect_eq(fx_drop(DP_DROP_TCP_OUT_OF_WINDOW), 0);
}

TCP_TEST(syncookie_stack, cookie_ack_carrying_data_delivers_it)
{
	fill_backlog();
	struct fx_peer p = cookie_peer();
	fx_peer_syn(&p);
	fx_peer_send(&p, F_PSH, "EHLO x\r\n", 8);

	cr_assert_eq(fx_n_conns, 1);
	cr_expect_eq(fx_conns[0].rx_len, 8);
	cr_expect_eq(memcmp(fx_conns[0].rx, "EHLO x\r\n", 8), 0);
	struct fx_pkt k = fx_peer_take(&p);
	cr_expect_eq(k.ack, p.nxt, "and acknowledges it");
}

TCP_TEST(syncookie_stack, cookie_without_timestamps_keeps_window_scaling_consistent)
{
	fill_backlog();
	struct fx_peer p = cookie_peer();
	p.ts_on = false; /* WS and SACK offered, but nowhere to keep them */
	struct fx_pkt sa = fx_peer_syn(&p);
	fx_peer_ack(&p);
	cr_assert_eq(fx_n_conns, 1);
	struct tcp_conn *c = fx_lookup(&p);
	cr_assert_not_null(c);

	/* RFC 7323 §2.2: scaling is on for both directions iff both SYNs carried WS. */
	cr_expect_eq(c->snd_wscale, sa.has_ws ? p.ws : 0,
		     "our SYN-ACK %s WS, and the peer's windows are shifted by %u",
		     sa.has_ws ? "had" : "had no", c->snd_wscale);
	fx_peer_send(&p, F_PSH, "NOOP\r\n", 6);
	fx_advance_ms(fx_params.delack_ms + 1);
	struct fx_pkt k = fx_peer_take(&p);
	if (sa.has_ws)
		cr_expect_eq(k.win, fx_params.rcv_buf >> sa.ws, "scaled as announced");
	else
		cr_expect_eq(k.win, 65535, "unscaled, as announced");
	/* RFC 2018: SACK blocks only if both sides agreed */
	struct fx_seg g = fx_peer_seg(&p, F_ACK, "abcdefghij", 10);
	g.seq += 1000;
	fx_input(&g);
	k = fx_peer_take(&p);
	cr_expect_eq(k.n_sack > 0, sa.sack_perm, "SACK blocks iff our SYN-ACK permitted SACK");
}

TCP_TEST(syncookie_stack, cookie_mss_never_exceeds_what_the_client_announced)
{
	fill_backlog();
	struct fx_peer p = cookie_peer();
	p.mss = 1400;
	fx_peer_syn(&p);
	fx_peer_ack(&p);
	cr_assert_eq(fx_n_conns, 1);
	cr_assert_eq(fx_send(&fx_conns[0], 5000), 0);
	struct fx_pkt k = fx_peer_take(&p);
	cr_expect_leq(k.len, 1400 - 12, "MSS 1400 less the timestamps");
	cr_expect_geq(k.len, 1380 - 12, "rounded down to the cookie's table, not further");
}

TCP_TEST(syncookie_stack, forged_cookie_ack_gets_a_reset)
{
	fill_backlog();
	struct fx_peer p = cookie_peer();
	fx_peer_syn(&p);
	p.ack += 12345; /* not the cookie we sent */
	fx_peer_ack(&p);

	struct fx_pkt k = fx_peer_take(&p);
	cr_expect_eq(k.flags, F_RST, "<SEQ=SEG.ACK><CTL=RST>");
	cr_expect_eq(k.seq, p.ack);
	cr_expect_eq(fx_n_conns, 0);
	cr_expect_null(fx_lookup(&p));
	cr_expect_eq(fx_count(DP_C_TCP_SYNCOOKIES_OK), 0);
	cr_expect_eq(fx_drop(DP_DROP_TCP_NO_CONN), 1);
}

TCP_TEST(syncookie_stack, stale_cookie_is_refused)
{
	fill_backlog();
	struct fx_peer p = cookie_peer();
	fx_peer_syn(&p);
	fx_advance_ms(300 * 1000); /* past the cookie's 256 s at most */
	fx_discard();
	fx_peer_ack(&p);

	struct fx_pkt k = fx_take();
	cr_expect_eq(k.flags, F_RST);
	cr_expect_eq(fx_count(DP_C_TCP_SYNCOOKIES_OK), 0);
	cr_expect_null(fx_lookup(&p));
}

TCP_TEST(syncookie_stack, cookie_ack_carrying_data_and_fin_delivers_both)
{
	/*
	 * Regression, found by fuzz_tcp_input: the ACK that completes a SYN-cookie
	 * handshake had its data handed over raw, its FIN ignored (the peer's
	 * close never seen, never acknowledged) and nothing trimmed to the window
	 * the SYN-ACK offered. It is now processed as in ESTABLISHED
	 * (RFC 9293 §3.10.7.4, seventh and eighth checks).
	 */
	fill_backlog();
	struct fx_peer p = cookie_peer();
	fx_peer_syn(&p);
	fx_peer_send(&p, F_PSH | F_FIN, "QUIT\r\n", 6);

	cr_assert_eq(fx_n_conns, 1, "the cookie made a connection");
	struct fx_conn *fc = &fx_conns[0];
	cr_expect_eq(fc->rx_len, 6);
	cr_expect_eq(memcmp(fc->rx, "QUIT\r\n", 6), 0);
	cr_expect_eq(fc->peer_closed, 1, "the peer's FIN is seen");
	cr_expect_eq(strcmp(fx_state_of(&p), "CLOSE_WAIT"), 0, "state %s", fx_state_of(&p));
	struct fx_pkt k = {0};
	while (fx_pending())
		k = fx_peer_take(&p); /* a window update may come first, as the data is read */
	cr_expect_eq(k.ack, p.nxt, "the data and the FIN acknowledged");
}

TCP_TEST(syncookie_stack, cookie_ack_data_past_the_offered_window_is_trimmed)
{
	/* the other half of the same fix: only what the SYN-ACK's window offered is taken */
	fx_params.rcv_buf = 1000;
	fx_restart();
	fill_backlog();
	struct fx_peer p = cookie_peer();
	struct fx_pkt sa = fx_peer_syn(&p);
	cr_assert_eq(sa.win, 1000);
	uint8_t buf[1500];
	for (unsigned i = 0; i < sizeof(buf); i++)
		buf[i] = fx_pattern(i);
	fx_peer_send(&p, F_PSH, buf, sizeof(buf));

	cr_assert_eq(fx_n_conns, 1);
	cr_expect_eq(fx_conns[0].rx_len, 1000, "RFC 9293 §3.10.7.4: text past the window goes");
	cr_expect(fx_is_pattern(fx_conns[0].rx, fx_conns[0].rx_len, 0));
	struct fx_pkt k = fx_peer_take(&p);
	cr_expect_eq(k.ack, p.isn + 1 + 1000, "and is not acknowledged");
}
