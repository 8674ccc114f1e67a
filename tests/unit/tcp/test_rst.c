/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Resets (RFC 9293 §3.10.7) hardened against blind injection (RFC 5961):
 * only an exact RST ends a connection, an in-window one or a SYN draws a
 * rate-limited challenge ACK, and ACK values outside what was sent are
 * refused. Also the RSTs we send for segments nobody owns.
 */
#include "tcp_fixture.h"

#include <errno.h>
#include <string.h>

TestSuite(rst, .init = fx_setup, .fini = fx_teardown);

/* A peer with a connection carrying a little data each way: neither window edge is the ISN. */
static struct fx_conn *established(struct fx_peer *p)
{
	struct fx_conn *fc = fx_accept(p);
	fx_peer_send(p, F_PSH, "EHLO a\r\n", 8);
	cr_assert_eq(fx_send(fc, 10), 0);
	while (fx_pending())
		fx_peer_take(p);
	fx_peer_ack_all(p);
	fx_peer_ack(p);
	fx_discard();
	return fc;
}

static void peer_rst(struct fx_peer *p, uint32_t seq, uint8_t flags)
{
	struct fx_seg g = fx_peer_seg(p, flags, NULL, 0);
	g.seq = seq;
	fx_input(&g);
}

TCP_TEST(rst, rst_at_the_expected_sequence_resets_the_connection)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = established(&p);

	peer_rst(&p, p.nxt, F_RST);
	cr_expect_eq(fc->closed, 1);
	cr_expect_eq(fc->reason, TCP_CLOSE_RESET);
	cr_expect_eq(strcmp(fx_state_of(&p), "none"), 0);
	fx_expect_silence("a RST is never answered");
	cr_expect_eq(fx_count(DP_C_TCP_RSTS_IN), 1);
}

TCP_TEST(rst, rst_ack_at_the_expected_sequence_resets_too)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = established(&p);

	peer_rst(&p, p.nxt, F_RST | F_ACK);
	cr_expect_eq(fc->closed, 1);
	cr_expect_eq(fc->reason, TCP_CLOSE_RESET);
}

TCP_TEST(rst, in_window_rst_draws_challenge_ack_not_reset)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = established(&p);

	peer_rst(&p, p.nxt + 1000, F_RST);
	cr_expect_eq(fc->closed, 0, "RFC 5961 §3.2: only an exact match resets");
	struct fx_pkt k = fx_peer_take(&p);
	cr_expect_eq(k.flags, F_ACK, "a challenge ACK");
	cr_expect_eq(k.seq, p.ack, "<SEQ=SND.NXT>");
	cr_expect_eq(k.ack, p.nxt, "<ACK=RCV.NXT>");
	cr_expect_eq(k.len, 0);
	cr_expect_eq(fx_count(DP_C_TCP_CHALLENGE_ACKS), 1);
	cr_expect_eq(fx_drop(DP_DROP_TCP_RST_IN_WINDOW), 1);
	cr_expect_eq(fx_count(DP_C_TCP_RSTS_IN), 0);
	/* the connection still works */
	fx_peer_send(&p, F_PSH, "NOOP\r\n", 6);
	cr_expect_eq(fc->rx_len, 14);
}

TCP_TEST(rst, out_of_window_rst_is_silently_dropped)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = established(&p);

	peer_rst(&p, p.nxt + 0x40000000, F_RST);
	peer_rst(&p, p.nxt - 1, F_RST);
	cr_expect_eq(fc->closed, 0);
	fx_expect_silence("RFC 5961 §3.2: out of window, silently dropped");
	cr_expect_eq(fx_drop(DP_DROP_TCP_OUT_OF_WINDOW), 2);
}

TCP_TEST(rst, in_window_syn_draws_challenge_ack_and_changes_nothing)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = established(&p);

	struct fx_seg g = fx_peer_seg(&p, F_SYN, NULL, 0);
	g.seq = p.nxt + 10;
	fx_input(&g);
	struct fx_pkt k = fx_peer_take(&p);
	cr_expect_eq(k.flags, F_ACK, "RFC 5961 §4.2: a challenge ACK, not a RST");
	cr_expect_eq(k.ack, p.nxt);
	cr_expect_eq(fc->closed, 0);
	cr_expect_eq(fx_count(DP_C_TCP_CHALLENGE_ACKS), 1);
	cr_expect_eq(fx_drop(DP_DROP_TCP_SYN_IN_WINDOW), 1);
	cr_expect_eq(strcmp(fx_state_of(&p), "ESTABLISHED"), 0);
}

TCP_TEST(rst, challenge_acks_are_rate_limited)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = established(&p);
	unsigned sent = 0;

	for (unsigned i = 0; i < 3000; i++) {
		peer_rst(&p, p.nxt + 1 + i, F_RST);
		sent += fx_pending();
		fx_discard();
	}
	cr_expect_eq(fc->closed, 0);
	cr_expect_gt(sent, 0);
	cr_expect_lt(sent, 3000, "RFC 5961 §7: challenge ACKs are throttled (%u sent)", sent);
	cr_expect_eq(fx_count(DP_C_TCP_CHALLENGE_ACKS), sent, "the counter says what was sent");
	cr_expect_eq(fx_drop(DP_DROP_TCP_RST_IN_WINDOW), 3000, "every one counted as dropped");
	fx_advance_ms(1001);
	peer_rst(&p, p.nxt + 5, F_RST);
	cr_expect_eq(fx_pending(), 1, "a new second, a new allowance");
}

TCP_TEST(rst, ack_of_data_never_sent_is_answered_and_dropped)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = established(&p);

	struct fx_seg g = fx_peer_seg(&p, F_ACK | F_PSH, "RSET\r\n", 6);
	g.ack = p.ack + 5000;
	fx_input(&g);
	struct fx_pkt k = fx_peer_take(&p);
	cr_expect_eq(k.flags, F_ACK);
	cr_expect_eq(k.seq, p.ack);
	cr_expect_eq(k.ack, p.nxt, "the data was not taken");
	cr_expect_eq(fc->rx_len, 8);
	cr_expect_eq(fx_drop(DP_DROP_TCP_BAD_ACK), 1);
	cr_expect_eq(fc->closed, 0);
}

TCP_TEST(rst, ack_older_than_the_largest_window_draws_challenge_ack)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = established(&p);

	struct fx_seg g = fx_peer_seg(&p, F_ACK | F_PSH, "RSET\r\n", 6);
	g.ack = p.ack - 2 * p.rwnd; /* below SND.UNA - MAX.SND.WND (RFC 5961 §5.2) */
	fx_input(&g);
	struct fx_pkt k = fx_peer_take(&p);
	cr_expect_eq(k.flags, F_ACK);
	cr_expect_eq(k.ack, p.nxt, "the data was not taken");
	cr_expect_eq(fc->rx_len, 8);
	cr_expect_eq(fx_count(DP_C_TCP_CHALLENGE_ACKS), 1);
	cr_expect_eq(fx_drop(DP_DROP_TCP_BAD_ACK), 1);
}

TCP_TEST(rst, ack_to_a_listener_gets_rst_carrying_its_ack)
{
	struct fx_seg g = {.seq = 1234, .ack = 0xdeadbeef, .flags = F_ACK, .win = 1000};
	fx_input(&g);
	struct fx_pkt k = fx_take();
	cr_expect_eq(k.flags, F_RST, "<SEQ=SEG.ACK><CTL=RST> (RFC 9293 §3.10.7.2)");
	cr_expect_eq(k.seq, 0xdeadbeef);
	cr_expect_eq(k.win, 0);
	cr_expect_eq(k.len, 0);
	cr_expect_eq(fx_drop(DP_DROP_TCP_NO_CONN), 1);
	cr_expect_eq(fx_count(DP_C_TCP_RST_SENT), 1);
	cr_expect_eq(fx_stack->n_conns, 0);
}

TCP_TEST(rst, rst_to_a_listener_or_a_closed_port_is_never_answered)
{
	struct fx_seg g = {.seq = 1234, .flags = F_RST};
	fx_input(&g);
	g.dport = 587;
	fx_input(&g);
	g.flags = F_RST | F_ACK;
	g.ack = 99;
	fx_input(&g);
	fx_expect_silence("RFC 9293 §3.10.7.1: a RST is never answered");
	cr_expect_eq(fx_drop(DP_DROP_TCP_RST_IN), 3);
}

TCP_TEST(rst, ack_to_a_closed_port_gets_rst_carrying_its_ack)
{
	struct fx_seg g = {.dport = 587, .seq = 1234, .ack = 777, .flags = F_ACK | F_PSH,
			   .data = "hello", .len = 5};
	fx_input(&g);
	struct fx_pkt k = fx_take();
	cr_expect_eq(k.flags, F_RST);
	cr_expect_eq(k.seq, 777);
	cr_expect_eq(fx_drop(DP_DROP_TCP_NO_CONN), 1);
}

TCP_TEST(rst, segment_without_ack_to_a_closed_port_gets_rst_ack)
{
	/* RFC 9293 §3.10.7.1: anything but a RST is answered, <SEQ=0><ACK=SEG.SEQ+SEG.LEN>. */
	struct fx_seg g = {.dport = 587, .seq = 5000, .flags = F_FIN | F_PSH, .data = "hello",
			   .len = 5};
	fx_input(&g);
	struct fx_pkt k = fx_take();
	cr_expect_eq(k.flags, F_RST | F_ACK);
	cr_expect_eq(k.seq, 0);
	cr_expect_eq(k.ack, 5006, "the data and the FIN count");
	cr_expect_eq(fx_drop(DP_DROP_TCP_NO_CONN), 1);
}

TCP_TEST(rst, rst_in_syn_received_frees_the_half_open_slot)
{
	fx_listen(2525, 1);
	struct fx_peer p = fx_peer_new(PEER_PORT);
	p.our_port = 2525;
	fx_peer_syn(&p);
	peer_rst(&p, p.isn + 1, F_RST);
	cr_expect_eq(strcmp(fx_state_of(&p), "none"), 0);
	cr_expect_eq(fx_n_conns, 0, "the application never heard of it");
	fx_expect_silence("a RST is never answered");

	/* The backlog of 1 is free again: the next SYN gets a real SYN-ACK, not a cookie. */
	struct fx_peer q = fx_peer_new(PEER_PORT + 1);
	q.our_port = 2525;
	fx_peer_syn(&q);
	cr_expect_eq(fx_count(DP_C_TCP_SYNCOOKIES_SENT), 0);
	cr_expect_eq(strcmp(fx_state_of(&q), "SYN_RECEIVED"), 0);
}

TCP_TEST(rst, rst_ack_answering_our_syn_refuses_the_connection)
{
	struct fx_peer p = fx_peer_new(2525);
	struct fx_pkt syn;
	struct fx_conn *fc = fx_open(&p, &syn);

	struct fx_seg g = {.sport = 2525, .dport = p.our_port, .seq = 0, .ack = syn.seq + 1,
			   .flags = F_RST | F_ACK};
	fx_input(&g);
	cr_expect_eq(fc->connect_err, -ECONNREFUSED);
	cr_expect_eq(fc->closed, 1);
	cr_expect_eq(fc->reason, TCP_CLOSE_REFUSED);
	fx_expect_silence("a RST is never answered");
}

TCP_TEST(rst, rst_in_syn_sent_without_acceptable_ack_is_ignored)
{
	struct fx_peer p = fx_peer_new(2525);
	struct fx_pkt syn;
	struct fx_conn *fc = fx_open(&p, &syn);

	struct fx_seg g = {.sport = 2525, .dport = p.our_port, .seq = 0, .flags = F_RST};
	fx_input(&g); /* no ACK: RFC 9293 §3.10.7.3 drops it */
	g.flags = F_RST | F_ACK;
	g.ack = syn.seq + 1000; /* an ACK that is not ours */
	fx_input(&g);
	cr_expect_eq(fc->closed, 0);
	cr_expect_eq(fc->connect_err, 0);
	cr_expect_eq(strcmp(fx_state_of(&p), "SYN_SENT"), 0);
	fx_expect_silence("a RST is never answered");
	tcp_abort(fc->c);
}

TCP_TEST(rst, abort_sends_rst_from_the_next_sequence_number)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = established(&p);

	tcp_abort(fc->c);
	struct fx_pkt k = fx_peer_take(&p);
	cr_expect(k.flags & F_RST);
	cr_expect_eq(k.seq, p.ack, "<SEQ=SND.NXT>");
	cr_expect_eq(fc->closed, 1);
	cr_expect_eq(fc->reason, TCP_CLOSE_ABORTED);
	cr_expect_eq(strcmp(fx_state_of(&p), "none"), 0);
	cr_expect_eq(fx_count(DP_C_TCP_RST_SENT), 1);
}

TCP_TEST(rst, close_with_unread_data_resets_the_connection)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = fx_accept(&p);
	fc->manual_consume = true;
	fx_peer_send(&p, F_PSH, "DATA\r\n", 6);
	fx_discard();

	/* RFC 1122 §4.2.2.13 / RFC 2525 §2.17: unread data at close means a RST, not a FIN. */
	tcp_close(fc->c);
	struct fx_pkt k = fx_peer_take(&p);
	cr_expect(k.flags & F_RST);
	cr_expect_not(k.flags & F_FIN);
	cr_expect_eq(fc->closed, 1);
	cr_expect_eq(fc->reason, TCP_CLOSE_ABORTED);
}

TCP_TEST(rst, syn_outside_the_window_also_draws_an_ack)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = established(&p);

	struct fx_seg g = fx_peer_seg(&p, F_SYN, NULL, 0);
	g.seq = p.nxt + 0x50000000;
	fx_input(&g);
	/* RFC 5961 §4.2: "irrespective of the sequence number", an ACK and nothing else */
	struct fx_pkt k = fx_peer_take(&p);
	cr_expect_eq(k.flags, F_ACK);
	cr_expect_eq(k.ack, p.nxt);
	cr_expect_eq(fc->closed, 0);
	cr_expect_eq(strcmp(fx_state_of(&p), "ESTABLISHED"), 0);
}

TCP_TEST(rst, bad_ack_in_syn_received_draws_rst_and_keeps_the_half_open_connection)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	fx_peer_syn(&p);
	struct fx_seg g = fx_peer_seg(&p, F_ACK, NULL, 0);
	g.ack = p.ack + 1000;
	fx_input(&g);
	/* RFC 9293 §3.10.7.4: <SEQ=SEG.ACK><CTL=RST> */
	struct fx_pkt k = fx_peer_take(&p);
	cr_expect_eq(k.flags, F_RST);
	cr_expect_eq(k.seq, p.ack + 1000);
	cr_expect_eq(fx_drop(DP_DROP_TCP_BAD_ACK), 1);
	cr_expect_eq(strcmp(fx_state_of(&p), "SYN_RECEIVED"), 0);
	fx_peer_ack(&p);
	cr_expect_eq(fx_n_conns, 1, "the right ACK still completes it");
}
