/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The application API's clock (dataplane/tcp/api.c): a call the application
 * makes on its own, outside any TCP callback (from its own timer, another
 * connection's callback, an I/O completion), reads the worker clock itself,
 * so the timestamps it sends (RFC 7323), the RTT it times (RFC 6298) and the
 * timers it arms start from now and not from the stack's last event. Inside
 * a callback the event's clock stands and the clock is not read.
 */
#include "tcp_fixture.h"

#include <string.h>

TestSuite(api, .init = fx_setup, .fini = fx_teardown);

/* Sends LEN bytes and takes what went out; returns the last data segment. */
static struct fx_pkt send_and_take(struct fx_peer *p, struct fx_conn *fc, size_t len)
{
	struct fx_pkt last = {0};
	cr_assert_eq(fx_send(fc, len), 0);
	cr_assert_gt(fx_pending(), 0, "tcp_send() sends at once");
	while (fx_pending()) {
		struct fx_pkt k = fx_peer_take(p);
		if (k.len)
			last = k;
	}
	return last;
}

/* An established connection with one RTT sample of 10 ms: its RTO is the 200 ms floor. */
static struct fx_conn *with_rtt(struct fx_peer *p)
{
	struct fx_conn *fc = fx_accept(p);
	send_and_take(p, fc, 100);
	fx_advance_ms(10);
	fx_peer_ack_all(p);
	fx_peer_ack(p);
	fx_discard();
	cr_assert_eq(fx_lookup(p)->rto_us, fx_params.rto_min_ms * 1000);
	return fc;
}

TCP_TEST(api, send_outside_a_callback_arms_its_rto_from_the_current_clock)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = with_rtt(&p);
	struct fx_pkt before = send_and_take(&p, fc, 10);
	p.ack = before.seq + before.len;
	fx_peer_ack(&p);

	/* 5 s pass in which the worker did other work and ran no timer */
	fx_skip_ms(5000);
	unsigned reads = fx_clock_reads;
	struct fx_pkt k = send_and_take(&p, fc, 500);
	cr_expect_eq(fx_clock_reads, reads + 1, "the call read the clock, once");
	cr_expect_eq(k.tsval - before.tsval, 5000, "RFC 7323: its timestamp is now, not 5 s ago");
	/* RFC 6298 §5.1: the timer runs one RTO from the send, not from the last event */
	uint64_t waited = fx_wait_output_ms(10000);
	cr_expect_eq(waited, fx_params.rto_min_ms, "retransmitted %lu ms after the send",
		     (unsigned long)waited);
	struct fx_pkt r = fx_peer_take(&p);
	cr_expect_eq(r.seq, k.seq);
	cr_expect_eq(r.len, 500);
}

TCP_TEST(api, rtt_of_a_send_outside_a_callback_is_timed_from_the_current_clock)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	p.ts_on = false; /* RFC 6298 §3: the RTT of one timed segment (Karn), no timestamps */
	struct fx_conn *fc = fx_accept(&p);

	fx_advance_ms(5000); /* idle: the last event was the handshake */
	struct fx_pkt k = send_and_take(&p, fc, 500);
	fx_advance_ms(30);
	p.ack = k.seq + k.len;
	fx_peer_ack(&p);
	struct tcp_conn *c = fx_lookup(&p);
	/* RFC 6298 §2.2: the first sample is SRTT, half of it RTTVAR */
	cr_expect_eq(c->srtt_us, 30000, "the sample is 30 ms, not %u us", c->srtt_us);
	cr_expect_eq(c->rttvar_us, 15000);
	/* RTO = 30 + 4 * 15 ms, raised to the floor: what the next send waits */
	send_and_take(&p, fc, 500);
	uint64_t waited = fx_wait_output_ms(100000);
	cr_expect_eq(waited, fx_params.rto_min_ms, "RTO %lu ms", (unsigned long)waited);
}

TCP_TEST(api, connect_outside_a_callback_times_its_syn_from_the_current_clock)
{
	struct fx_peer p = fx_peer_new(2525);
	fx_skip_ms(3000);
	unsigned reads = fx_clock_reads;
	struct fx_pkt syn;
	fx_open(&p, &syn);
	cr_expect_eq(fx_clock_reads, reads + 1);
	/* RFC 6298 §2.1: the SYN is retransmitted one initial RTO after it was sent */
	uint64_t waited = fx_wait_output_ms(10000);
	cr_expect_eq(waited, fx_params.rto_initial_ms, "SYN again after %lu ms",
		     (unsigned long)waited);
	struct fx_pkt again = fx_take();
	cr_expect_eq(again.flags, F_SYN);
	cr_expect_eq(again.seq, syn.seq);
	cr_expect_eq(again.tsval - syn.tsval, fx_params.rto_initial_ms,
		     "both timestamps from the clock at the time they were sent");
}

/* accepted() greets at once: a call inside a callback of the stack. */
static void greet(struct fx_conn *fc)
{
	cr_assert_eq(fx_send(fc, 50), 0);
}

TCP_TEST(api, calls_inside_a_callback_use_the_clock_of_the_event)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	fx_on_accept = greet;
	fx_peer_syn(&p);
	fx_advance_ms(20);
	fx_peer_ack(&p); /* accepted() runs from here and sends the greeting */
	cr_assert_eq(fx_n_conns, 1);
	struct fx_pkt k = fx_peer_take(&p);
	cr_expect_eq(k.len, 50);
	cr_expect_eq(fx_clock_reads, 0, "the stack never read the clock: the segment brought it");
	/* the greeting's timer runs from the ACK's arrival */
	cr_expect_eq(fx_wait_output_ms(10000), fx_params.rto_initial_ms);
	fx_discard();

	/* the same call from outside reads it */
	fx_send(&fx_conns[0], 10);
	cr_expect_eq(fx_clock_reads, 1);
}

TCP_TEST(api, close_outside_a_callback_times_fin_wait_2_from_the_current_clock)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = fx_accept(&p);
	tcp_shutdown(fc->c);
	struct fx_pkt fin = fx_peer_take(&p);
	cr_assert(fin.flags & F_FIN);
	fx_peer_ack_all(&p);
	fx_peer_ack(&p);
	cr_assert_eq(strcmp(fx_state_of(&p), "FIN_WAIT_2"), 0);

	/* later, the application lets go: the orphaned FIN_WAIT_2 lasts 60 s from now */
	fx_skip_ms(30000);
	tcp_close(fc->c);
	fx_advance_ms(59999);
	cr_expect_eq(strcmp(fx_state_of(&p), "FIN_WAIT_2"), 0, "still waiting for the peer's FIN");
	fx_advance_ms(1);
	cr_expect_eq(strcmp(fx_state_of(&p), "none"), 0, "given up 60 s after tcp_close()");
	cr_expect_eq(fc->reason, TCP_CLOSE_TIMEOUT);
}
