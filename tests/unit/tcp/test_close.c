/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Closing (RFC 9293 §3.6): active, passive and simultaneous close, half-close,
 * TIME_WAIT with its 2*MSL, its bounded table and reuse by a clearly newer
 * SYN (RFC 6191), and the timeout of an orphaned FIN_WAIT_2.
 */
#include "tcp_fixture.h"

#include <string.h>

TestSuite(close, .init = fx_setup, .fini = fx_teardown);

#define STATE_IS(p, st)                                                                            \
	cr_expect_eq(strcmp(fx_state_of(p), st), 0, "state %s, not %s", fx_state_of(p), st)

/* Takes our FIN (checked) and returns it. */
static struct fx_pkt take_fin(struct fx_peer *p)
{
	struct fx_pkt k = fx_peer_take(p);
	cr_assert(k.flags & F_FIN, "a FIN, got flags 0x%02x", k.flags);
	cr_expect(k.flags & F_ACK);
	return k;
}

/* An established connection that we close actively, walked to TIME_WAIT. */
static struct fx_conn *to_time_wait(struct fx_peer *p)
{
	struct fx_conn *fc = fx_accept(p);
	tcp_close(fc->c);
	take_fin(p);
	fx_peer_ack_all(p);
	fx_peer_send(p, F_FIN, NULL, 0);
	struct fx_pkt k = fx_peer_take(p);
	cr_assert_eq(k.flags, F_ACK);
	cr_assert_eq(k.ack, p->nxt);
	STATE_IS(p, "TIME_WAIT");
	return fc;
}

TCP_TEST(close, active_close_walks_fin_wait_1_and_2_to_time_wait)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = fx_accept(&p);

	tcp_close(fc->c);
	struct fx_pkt fin = take_fin(&p);
	cr_expect_eq(fin.seq, p.our_iss + 1);
	cr_expect_eq(fin.len, 0);
	STATE_IS(&p, "FIN_WAIT_1");
	fx_peer_ack_all(&p);
	fx_peer_ack(&p);
	STATE_IS(&p, "FIN_WAIT_2");
	fx_expect_silence("nothing to say in FIN_WAIT_2");
	fx_peer_send(&p, F_FIN, NULL, 0);
	struct fx_pkt k = fx_peer_take(&p);
	cr_expect_eq(k.flags, F_ACK, "the peer's FIN is acked");
	cr_expect_eq(k.ack, p.nxt);
	cr_expect_eq(k.seq, p.our_iss + 2, "after our FIN");
	STATE_IS(&p, "TIME_WAIT");
	cr_expect_eq(fc->closed, 1);
	cr_expect_eq(fc->reason, TCP_CLOSE_NORMAL);
}

TCP_TEST(close, time_wait_lasts_two_msl_then_the_tuple_is_free)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	to_time_wait(&p);

	fx_advance_ms(fx_params.time_wait_ms - 10);
	STATE_IS(&p, "TIME_WAIT");
	fx_advance_ms(20);
	STATE_IS(&p, "none");
	fx_expect_silence("TIME_WAIT ends silently");
	cr_expect_eq(fx_stack->n_conns, 0);
	cr_expect_eq(fx_stack->n_time_wait, 0);
}

TCP_TEST(close, time_wait_acks_a_retransmitted_fin_and_restarts_two_msl)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	to_time_wait(&p);

	fx_advance_ms(fx_params.time_wait_ms / 2);
	/* our ACK of its FIN was lost: the peer sends the FIN again */
	struct fx_seg g = fx_peer_seg(&p, F_FIN | F_ACK, NULL, 0);
	g.seq = p.nxt - 1;
	fx_input(&g);
	struct fx_pkt k = fx_peer_take(&p);
	cr_expect_eq(k.flags, F_ACK);
	cr_expect_eq(k.ack, p.nxt);
	/* RFC 9293 §3.10.7.4, TIME-WAIT: "Acknowledge it, and restart the 2 MSL timeout." */
	fx_advance_ms(fx_params.time_wait_ms - 10);
	STATE_IS(&p, "TIME_WAIT");
	fx_advance_ms(20);
	STATE_IS(&p, "none");
}

TCP_TEST(close, passive_close_goes_through_close_wait_and_last_ack)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = fx_accept(&p);

	fx_peer_send(&p, F_FIN, NULL, 0);
	struct fx_pkt k = fx_peer_take(&p);
	cr_expect_eq(k.flags, F_ACK, "a FIN is acked at once");
	cr_expect_eq(k.ack, p.nxt);
	cr_expect_eq(fc->peer_closed, 1, "the application hears of the FIN");
	cr_expect_eq(fc->closed, 0);
	STATE_IS(&p, "CLOSE_WAIT");

	/* the application still answers, then closes */
	cr_assert_eq(fx_send(fc, 40), 0);
	k = fx_peer_take(&p);
	cr_expect_eq(k.len, 40, "sending goes on in CLOSE_WAIT");
	tcp_close(fc->c);
	struct fx_pkt fin = take_fin(&p);
	cr_expect_eq(fin.seq, p.our_iss + 1 + 40);
	STATE_IS(&p, "LAST_ACK");
	fx_peer_ack_all(&p);
	fx_peer_ack(&p);
	STATE_IS(&p, "none");
	cr_expect_eq(fc->closed, 1);
	cr_expect_eq(fc->reason, TCP_CLOSE_NORMAL);
	cr_expect_eq(fx_stack->n_time_wait, 0, "the passive closer keeps no TIME_WAIT");
}

TCP_TEST(close, simultaneous_close_goes_through_closing_to_time_wait)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = fx_accept(&p);

	tcp_close(fc->c);
	take_fin(&p);
	/* the peer's FIN crosses ours: it does not ack our FIN */
	fx_peer_send(&p, F_FIN, NULL, 0);
	STATE_IS(&p, "CLOSING");
	struct fx_pkt k = fx_peer_take(&p);
	cr_expect_eq(k.ack, p.nxt, "its FIN is acked");
	fx_peer_ack_all(&p);
	fx_peer_ack(&p);
	STATE_IS(&p, "TIME_WAIT");
	cr_expect_eq(fc->closed, 1);
}

TCP_TEST(close, fin_acking_our_fin_goes_straight_to_time_wait)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	fx_accept(&p);

	tcp_close(fx_conns[0].c);
	take_fin(&p);
	fx_peer_ack_all(&p);
	fx_peer_send(&p, F_FIN, NULL, 0);
	STATE_IS(&p, "TIME_WAIT");
	struct fx_pkt k = fx_peer_take(&p);
	cr_expect_eq(k.ack, p.nxt);
}

TCP_TEST(close, queued_data_goes_out_before_the_fin)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = fx_accept(&p);
	uint32_t end = p.our_iss + 1 + 5000;
	unsigned got = 0;
	bool fin = false;

	cr_assert_eq(fx_send(fc, 5000), 0);
	tcp_close(fc->c);
	for (int round = 0; round < 10 && !fin; round++) {
		while (fx_pending()) {
			struct fx_pkt k = fx_peer_take(&p);
			if (k.len) {
				cr_expect_eq(k.seq, p.our_iss + 1 + got);
				cr_expect(fx_is_pattern(k.data, k.len, got));
				got += k.len;
			}
			if (k.flags & F_FIN) {
				cr_expect_eq(k.seq + k.len, end, "the FIN follows the last byte");
				fin = true;
			}
		}
		fx_peer_ack_all(&p);
		fx_peer_ack(&p);
	}
	cr_expect_eq(got, 5000);
	cr_expect(fin);
	STATE_IS(&p, "FIN_WAIT_2");
}

TCP_TEST(close, half_closed_connection_keeps_receiving)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = fx_accept(&p);

	tcp_shutdown(fc->c);
	take_fin(&p);
	fx_peer_ack_all(&p);
	fx_peer_ack(&p);
	STATE_IS(&p, "FIN_WAIT_2");
	cr_expect_eq(tcp_send_space(fc->c), 0, "nothing more to send after our FIN");

	fx_peer_send(&p, F_PSH, "250 OK\r\n", 8);
	cr_expect_eq(fc->rx_len, 8, "the peer's data still arrives");
	cr_expect_eq(memcmp(fc->rx, "250 OK\r\n", 8), 0);
	/* a half-closed connection has no FIN_WAIT_2 timeout: the application still reads */
	fx_advance_ms(120000);
	STATE_IS(&p, "FIN_WAIT_2");
	fx_discard();
	fx_peer_send(&p, F_FIN, NULL, 0);
	STATE_IS(&p, "TIME_WAIT");
	cr_expect_eq(fc->closed, 1);
}

TCP_TEST(close, orphaned_fin_wait_2_times_out)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = fx_accept(&p);

	tcp_close(fc->c);
	take_fin(&p);
	fx_peer_ack_all(&p);
	fx_peer_ack(&p);
	STATE_IS(&p, "FIN_WAIT_2");
	/* the peer never sends its FIN */
	fx_advance_ms(30000);
	STATE_IS(&p, "FIN_WAIT_2");
	fx_advance_ms(31000);
	STATE_IS(&p, "none");
	cr_expect_eq(fc->closed, 1);
}

TCP_TEST(close, unacknowledged_fin_is_retransmitted)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = fx_accept(&p);

	tcp_close(fc->c);
	struct fx_pkt fin = take_fin(&p);
	cr_assert_leq(fx_wait_output_ms(5000), 5000, "the FIN is retransmitted");
	struct fx_pkt k = fx_peer_take(&p);
	cr_expect(k.flags & F_FIN);
	cr_expect_eq(k.seq, fin.seq);
	cr_expect_eq(fx_count(DP_C_TCP_RETRANSMITS), 1);
}

TCP_TEST(close, time_wait_table_is_bounded_and_recycles_the_oldest)
{
	fx_params.time_wait_max = 2;
	fx_restart();
	struct fx_peer p[3] = {fx_peer_new(40001), fx_peer_new(40002), fx_peer_new(40003)};

	to_time_wait(&p[0]);
	fx_advance_ms(10);
	to_time_wait(&p[1]);
	fx_advance_ms(10);
	cr_expect_eq(fx_stack->n_time_wait, 2);
	to_time_wait(&p[2]);
	cr_expect_eq(fx_stack->n_time_wait, 2, "never more than time_wait_max");
	STATE_IS(&p[0], "none");
	STATE_IS(&p[1], "TIME_WAIT");
	STATE_IS(&p[2], "TIME_WAIT");
	cr_expect_eq(fx_count(DP_C_TCP_TIME_WAIT_RECYCLED), 1);
	fx_advance_ms(fx_params.time_wait_ms + 100);
	cr_expect_eq(fx_stack->n_time_wait, 0);
	cr_expect_eq(fx_stack->n_conns, 0);
}

TCP_TEST(close, new_syn_with_a_newer_timestamp_reuses_a_time_wait_tuple)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	to_time_wait(&p);
	fx_advance_ms(1000);

	/* RFC 6191: the same client port again, its timestamp clock has moved on */
	struct fx_peer q = fx_peer_new(PEER_PORT);
	q.isn = p.nxt - 100000; /* a lower ISN: only the timestamp says it is new */
	fx_peer_syn(&q);
	STATE_IS(&q, "SYN_RECEIVED");
	fx_peer_ack(&q);
	cr_expect_eq(fx_n_conns, 2, "a new connection was accepted");
	STATE_IS(&q, "ESTABLISHED");
	cr_expect_eq(fx_count(DP_C_TCP_TIME_WAIT_REUSED), 1);
}

TCP_TEST(close, syn_with_an_old_timestamp_does_not_reopen_a_time_wait_tuple)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	to_time_wait(&p);

	struct fx_seg g = {.seq = p.nxt + 100000, .flags = F_SYN, .win = 65535, .mss = 1460,
			   .has_ts = true, .tsval = fx_peer_tsval(&p) - 1000};
	fx_input(&g);
	STATE_IS(&p, "TIME_WAIT");
	while (fx_pending()) {
		struct fx_pkt k = fx_take();
		cr_expect_not(k.flags & F_SYN, "no SYN-ACK for an old incarnation");
	}
	cr_expect_eq(fx_n_conns, 1);
	cr_expect_eq(fx_count(DP_C_TCP_TIME_WAIT_REUSED), 0);
}

TCP_TEST(close, syn_without_timestamps_reuses_time_wait_above_the_old_sequence)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	p.ts_on = false;
	to_time_wait(&p);

	/* RFC 1122 §4.2.2.13: a SYN beyond the old connection's sequence space */
	struct fx_peer q = fx_peer_new(PEER_PORT);
	q.ts_on = false;
	q.isn = p.nxt + 100000;
	fx_peer_syn(&q);
	fx_peer_ack(&q);
	cr_expect_eq(fx_n_conns, 2);
	STATE_IS(&q, "ESTABLISHED");
}

TCP_TEST(close, retransmitted_fin_in_close_wait_is_acked_again)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = fx_accept(&p);

	fx_peer_send(&p, F_FIN, NULL, 0);
	fx_discard();
	struct fx_seg g = fx_peer_seg(&p, F_FIN | F_ACK, NULL, 0);
	g.seq = p.nxt - 1; /* our ACK was lost */
	fx_input(&g);
	struct fx_pkt k = fx_peer_take(&p);
	cr_expect_eq(k.flags, F_ACK);
	cr_expect_eq(k.ack, p.nxt);
	cr_expect_eq(fc->peer_closed, 1, "told once");
	STATE_IS(&p, "CLOSE_WAIT");
}

TCP_TEST(close, fin_with_data_delivers_the_data_then_the_end)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = fx_accept(&p);

	fx_peer_send(&p, F_FIN | F_PSH, "QUIT\r\n", 6);
	cr_expect_eq(fc->rx_len, 6);
	cr_expect_eq(fc->peer_closed, 1);
	cr_assert_gt(fx_pending(), 0, "a FIN is acknowledged at once");
	struct fx_pkt k;
	while (fx_pending())
		k = fx_peer_take(&p);
	cr_expect_eq(k.ack, p.nxt, "the data and the FIN acknowledged");
	STATE_IS(&p, "CLOSE_WAIT");
}

TCP_TEST(close, full_connection_table_recycles_a_time_wait_entry_for_a_new_syn)
{
	fx_params.max_conns = 2;
	fx_restart();
	struct fx_peer a = fx_peer_new(40001), b = fx_peer_new(40002), c = fx_peer_new(40003);
	fx_accept(&a);
	to_time_wait(&b);

	fx_peer_syn(&c); /* asserts the SYN-ACK */
	STATE_IS(&b, "none");
	STATE_IS(&c, "SYN_RECEIVED");
	STATE_IS(&a, "ESTABLISHED");
	cr_expect_eq(fx_count(DP_C_TCP_TIME_WAIT_RECYCLED), 1);
}

TCP_TEST(close, close_during_a_simultaneous_open_sends_fin_once_synchronized)
{
	/*
	 * Regression, found by fuzz_tcp_input: tcp_close() in SYN_RECEIVED (our
	 * SYN crossed the peer's, RFC 9293 §3.5 figure 8) went straight to
	 * FIN_WAIT_1 with SND.UNA still on our SYN, so the FIN was never sent and
	 * the ACK of our SYN was taken for the ACK of that FIN: FIN_WAIT_2 with
	 * the peer never told. RFC 9293 §3.10.4: the FIN is queued until
	 * ESTABLISHED, then goes out after the SYN, and its own ACK ends it.
	 */
	struct fx_peer p = fx_peer_new(2525);
	struct fx_pkt syn;
	struct fx_conn *fc = fx_open(&p, &syn);
	struct fx_seg g = {.sport = 2525, .dport = syn.sport, .seq = p.isn, .flags = F_SYN,
			   .win = 65535, .mss = 1460};
	fx_input(&g);
	struct fx_pkt k = fx_take();
	cr_assert_eq(k.flags, F_SYN | F_ACK);
	STATE_IS(&p, "SYN_RECEIVED");

	tcp_close(fc->c);
	fx_expect_silence("nothing to send before our SYN is acknowledged");
	STATE_IS(&p, "SYN_RECEIVED");

	/* the peer's ACK of our SYN: synchronized, and the FIN goes at once */
	g = (struct fx_seg){.sport = 2525, .dport = syn.sport, .seq = p.isn + 1,
			    .ack = syn.seq + 1, .flags = F_ACK, .win = 65535};
	fx_input(&g);
	k = fx_take();
	cr_expect(k.flags & F_FIN, "our FIN, got flags 0x%02x", k.flags);
	cr_expect_eq(k.seq, syn.seq + 1, "right after the SYN");
	cr_expect_eq(k.ack, p.isn + 1);
	STATE_IS(&p, "FIN_WAIT_1");

	/* its ACK, then the peer's FIN: the close completes normally */
	g.ack = syn.seq + 2;
	fx_input(&g);
	STATE_IS(&p, "FIN_WAIT_2");
	g.flags = F_ACK | F_FIN;
	fx_input(&g);
	k = fx_take();
	cr_expect_eq(k.flags, F_ACK);
	cr_expect_eq(k.ack, p.isn + 2, "the peer's FIN acknowledged");
	STATE_IS(&p, "TIME_WAIT");
	cr_expect_eq(fc->closed, 1);
	cr_expect_eq(fc->reason, TCP_CLOSE_NORMAL);
}

/*
 * The late handshake ACK (tcp_priv.h, TCP_STALE_SLOTS): the client's pure ACK
 * of our SYN-ACK arrives after its data and after the whole connection ended.
 */
static struct fx_seg late_handshake_ack(const struct fx_peer *p)
{
	struct fx_seg g = fx_peer_seg(p, F_ACK, NULL, 0);

	g.seq = p->isn + 1;
	g.ack = p->our_iss + 1;
	if (p->ts_ok) {
		g.has_ts = true;
		g.tsval = fx_peer_tsval(p);
	}
	return g;
}

/* SYN, SYN-ACK, then data (its ACK completes the handshake), FIN both ways, closed. */
static void handshake_by_data_then_passive_close(struct fx_peer *p)
{
	static const char hello[] = "EHLO client.example.org\r\n";

	fx_peer_syn(p);
	fx_peer_send(p, F_ACK | F_PSH, hello, sizeof(hello) - 1);
	cr_assert_eq(fx_n_conns, 1, "the data segment completes the handshake");
	struct fx_conn *fc = &fx_conns[0];
	cr_assert_eq(fc->rx_len, sizeof(hello) - 1);
	fx_discard();
	fx_peer_send(p, F_FIN, NULL, 0);
	fx_discard();
	tcp_close(fc->c);
	take_fin(p);
	fx_peer_ack_all(p);
	fx_peer_ack(p);
	STATE_IS(p, "none");
	cr_assert_eq(fc->closed, 1);
	cr_assert_eq(fc->reason, TCP_CLOSE_NORMAL);
}

TCP_TEST(close, a_late_handshake_ack_of_a_closed_connection_draws_no_reset)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	uint64_t rst_before = fx_count(DP_C_TCP_RST_SENT);

	handshake_by_data_then_passive_close(&p);
	struct fx_seg g = late_handshake_ack(&p);
	fx_input(&g);
	fx_expect_silence("the late ACK of a connection that ended is dropped, not reset");
	cr_expect_eq(fx_drop(DP_DROP_TCP_STALE_ACK), 1);
	cr_expect_eq(fx_count(DP_C_TCP_RST_SENT), rst_before);
	cr_expect_eq(fx_stack->n_conns, 0, "and it opens nothing");
}

TCP_TEST(close, only_that_exact_ack_is_spared_and_only_for_a_while)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);

	handshake_by_data_then_passive_close(&p);
	/* another ACK for the same tuple is still answered as RFC 9293 §3.10.7.2 says */
	struct fx_seg other = late_handshake_ack(&p);
	other.ack += 1;
	fx_input(&other);
	struct fx_pkt k = fx_take();
	cr_expect(k.flags & F_RST, "a different ACK still draws a RST");
	/* ... and so does the late ACK itself, once the memory expired */
	fx_advance_ms(TCP_STALE_US / 1000 + 10);
	struct fx_seg g = late_handshake_ack(&p);
	fx_input(&g);
	k = fx_take();
	cr_expect(k.flags & F_RST, "after %llu s the ACK is a stranger's",
		  (unsigned long long)(TCP_STALE_US / 1000000));
	cr_expect_eq(fx_drop(DP_DROP_TCP_STALE_ACK), 0);
}

TCP_TEST(close, a_handshake_completed_by_a_pure_ack_leaves_nothing_to_spare)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = fx_accept(&p); /* SYN, SYN-ACK, pure ACK */

	fx_peer_send(&p, F_FIN, NULL, 0);
	fx_discard();
	tcp_close(fc->c);
	take_fin(&p);
	fx_peer_ack_all(&p);
	fx_peer_ack(&p);
	STATE_IS(&p, "none");
	struct fx_seg g = late_handshake_ack(&p); /* a duplicate of an ACK already seen */
	fx_input(&g);
	struct fx_pkt k = fx_take();
	cr_expect(k.flags & F_RST, "nothing was remembered: RFC 9293 applies");
}

TCP_TEST(close, a_duplicate_of_the_ack_that_ended_a_passive_close_draws_no_reset)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = fx_accept(&p);

	fx_peer_send(&p, F_FIN, NULL, 0);
	fx_discard();
	tcp_close(fc->c);
	take_fin(&p);
	fx_peer_ack_all(&p);
	fx_peer_ack(&p); /* LAST_ACK -> CLOSED */
	STATE_IS(&p, "none");
	/* the client re-acks (our FIN was retransmitted while its ACK was late) */
	struct fx_seg g = fx_peer_seg(&p, F_ACK, NULL, 0);
	fx_input(&g);
	fx_expect_silence("a duplicate of the final ACK is dropped, not reset");
	cr_expect_eq(fx_drop(DP_DROP_TCP_STALE_ACK), 1);
}

TCP_TEST(close, the_gauges_count_connections_and_time_wait)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);

	cr_expect_eq(tcp_stack_conns(fx_stack), 0);
	to_time_wait(&p);
	cr_expect_eq(tcp_stack_conns(fx_stack), 1, "TIME_WAIT still holds its table entry");
	cr_expect_eq(tcp_stack_time_wait(fx_stack), 1);
	fx_advance_ms(fx_params.time_wait_ms + 10);
	cr_expect_eq(tcp_stack_conns(fx_stack), 0);
	cr_expect_eq(tcp_stack_time_wait(fx_stack), 0);
}
