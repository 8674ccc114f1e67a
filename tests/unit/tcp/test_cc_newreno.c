/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NewReno window arithmetic (dataplane/tcp/cc_newreno.c and the shared parts
 * in cc.c), driven by a simulated sender on a virtual microsecond clock.
 */
#include <criterion/criterion.h>

#include "dataplane/tcp/cc.h"

#define MSS    1460u
#define RTT_US 50000u /* 50 ms */

/* A sender with one connection, its window and a virtual clock. */
struct sim {
	const struct tcp_cc_ops *ops;
	struct tcp_cc_state cc;
	uint64_t now_us;
};

static void sim_start(struct sim *s)
{
	s->ops = &tcp_cc_newreno;
	s->now_us = 1000000;
	s->ops->init(&s->cc, MSS, s->now_us);
}

/*
 * One ACK of ACKED bytes for a sender that always has data: before the ACK
 * the whole window was in flight, so after it cwnd - acked still is.
 */
static void sim_ack(struct sim *s, uint32_t acked)
{
	s->cc.flight = s->cc.cwnd - acked;
	s->ops->on_ack(&s->cc, acked, RTT_US, s->now_us);
}

/*
 * One round trip: the window the sender had at its start comes back acked,
 * SEGS_PER_ACK segments per ACK (2: a receiver delaying its ACKs), the ACKs
 * spread evenly over the RTT.
 */
static void sim_round(struct sim *s, unsigned segs_per_ack)
{
	uint32_t left = s->cc.cwnd;
	uint32_t per = segs_per_ack * MSS;
	unsigned n = (left + per - 1) / per;
	uint64_t start = s->now_us;

	for (unsigned i = 0; i < n; i++) {
		uint32_t acked = left < per ? left : per;
		left -= acked;
		s->now_us = start + (uint64_t)RTT_US * (i + 1) / n;
		sim_ack(s, acked);
	}
}

/* Grows the window in slow start, one segment per ACK, until it holds SEGS segments. */
static void sim_slow_start_to(struct sim *s, unsigned segs)
{
	for (unsigned i = 0; s->cc.cwnd < segs * MSS; i++) {
		cr_assert_lt(i, segs, "slow start stalled at %u bytes", s->cc.cwnd);
		sim_ack(s, MSS);
	}
}

/* A loss detected by duplicate ACKs with the window full, and its recovery with SACK. */
static void sim_loss(struct sim *s)
{
	s->cc.flight = s->cc.cwnd;
	s->ops->on_enter_recovery(&s->cc, s->now_us);
	s->cc.flight = s->cc.cwnd; /* the pipe was kept full during recovery */
	s->ops->on_exit_recovery(&s->cc, s->now_us);
}

Test(cc_newreno, the_initial_window_follows_rfc6928)
{
	struct tcp_cc_state cc;

	tcp_cc_newreno.init(&cc, 1460, 0);
	cr_assert_eq(cc.cwnd, 14600, "ten segments of 1460");
	cr_assert_eq(cc.ssthresh, UINT32_MAX, "no threshold before the first loss");
	tcp_cc_newreno.init(&cc, 536, 0);
	cr_assert_eq(cc.cwnd, 5360, "small MSS: still ten segments");
	tcp_cc_newreno.init(&cc, 8960, 0);
	cr_assert_eq(cc.cwnd, 17920, "jumbo MSS: two segments, more than 14600 bytes");
	tcp_cc_newreno.init(&cc, 4000, 0);
	cr_assert_eq(cc.cwnd, 14600, "in between: 14600 bytes");
}

Test(cc_newreno, a_retransmitted_syn_leaves_an_initial_window_of_one_segment)
{
	struct sim s;

	sim_start(&s);
	tcp_cc_syn_was_lost(&s.cc);
	cr_assert_eq(s.cc.cwnd, MSS);
}

Test(cc_newreno, slow_start_doubles_the_window_every_rtt_when_every_segment_is_acked)
{
	struct sim s;

	sim_start(&s);
	for (unsigned r = 1; r <= 5; r++) {
		sim_round(&s, 1);
		cr_assert_eq(s.cc.cwnd, (10u << r) * MSS, "round %u", r);
	}
}

Test(cc_newreno, slow_start_still_doubles_every_rtt_with_delayed_acks)
{
	struct sim s;

	sim_start(&s);
	for (unsigned r = 1; r <= 5; r++) {
		sim_round(&s, 2);
		cr_assert_eq(s.cc.cwnd, (10u << r) * MSS, "round %u: ABC counts both segments", r);
	}
}

Test(cc_newreno, a_stretch_ack_grows_slow_start_by_at_most_two_segments)
{
	struct sim s;

	sim_start(&s);
	sim_ack(&s, 8 * MSS);
	cr_assert_eq(s.cc.cwnd, 12 * MSS, "RFC 3465 L = 2 SMSS");
	sim_ack(&s, 100);
	cr_assert_eq(s.cc.cwnd, 12 * MSS + 100, "a small ACK counts its bytes");
}

Test(cc_newreno, congestion_avoidance_grows_by_one_segment_per_rtt)
{
	struct sim s;

	sim_start(&s);
	sim_slow_start_to(&s, 100);
	sim_loss(&s);
	cr_assert_eq(s.cc.cwnd, 50 * MSS);
	for (unsigned r = 1; r <= 10; r++) {
		sim_round(&s, 1);
		cr_assert_eq(s.cc.cwnd, (50 + r) * MSS, "round %u", r);
	}
	/* Delayed ACKs do not slow it down: bytes are counted, not ACKs. */
	for (unsigned r = 1; r <= 10; r++) {
		sim_round(&s, 2);
		cr_assert_eq(s.cc.cwnd, (60 + r) * MSS, "delayed-ACK round %u", r);
	}
}

Test(cc_newreno, slow_start_ends_exactly_at_ssthresh)
{
	struct sim s;

	sim_start(&s);
	sim_slow_start_to(&s, 100);
	s.cc.flight = 60 * MSS;
	s.ops->on_rto(&s.cc, s.now_us);
	cr_assert_eq(s.cc.ssthresh, 30 * MSS);
	for (int i = 0; i < 40; i++)
		sim_ack(&s, MSS);
	/* 29 ACKs bring cwnd from 1 to 30 segments; the other 11 count towards one more. */
	cr_assert_eq(s.cc.cwnd, 30 * MSS);
	sim_round(&s, 1);
	cr_assert_eq(s.cc.cwnd, 31 * MSS);
}

Test(cc_newreno, entering_recovery_halves_the_flight_size)
{
	struct sim s;

	sim_start(&s);
	sim_slow_start_to(&s, 100);
	s.cc.flight = 100 * MSS;
	s.ops->on_enter_recovery(&s.cc, s.now_us);
	cr_assert_eq(s.cc.ssthresh, 50 * MSS, "RFC 5681 eq. 4");
	cr_assert_eq(s.cc.cwnd, 50 * MSS);
}

Test(cc_newreno, the_reduction_follows_what_was_in_flight_not_the_window)
{
	struct sim s;

	sim_start(&s);
	sim_slow_start_to(&s, 100);
	s.cc.flight = 40 * MSS; /* the application had little to send */
	s.ops->on_enter_recovery(&s.cc, s.now_us);
	cr_assert_eq(s.cc.ssthresh, 20 * MSS);
}

Test(cc_newreno, ssthresh_never_drops_below_two_segments)
{
	struct sim s;

	sim_start(&s);
	s.cc.flight = 3 * MSS;
	s.ops->on_enter_recovery(&s.cc, s.now_us);
	cr_assert_eq(s.cc.ssthresh, 2 * MSS);
	cr_assert_eq(s.cc.cwnd, 2 * MSS);
	s.cc.flight = MSS;
	s.ops->on_rto(&s.cc, s.now_us);
	cr_assert_eq(s.cc.ssthresh, 2 * MSS);
}

Test(cc_newreno, fast_recovery_without_sack_inflates_and_deflates_the_window)
{
	struct sim s;

	sim_start(&s);
	sim_slow_start_to(&s, 40);
	s.cc.flight = 40 * MSS;
	s.ops->on_enter_recovery(&s.cc, s.now_us);
	tcp_cc_recovery_inflate(&s.cc, 3 * MSS);
	cr_assert_eq(s.cc.cwnd, 23 * MSS, "ssthresh + 3 SMSS for the three duplicate ACKs");
	for (int i = 0; i < 5; i++)
		tcp_cc_recovery_inflate(&s.cc, MSS);
	cr_assert_eq(s.cc.cwnd, 28 * MSS, "one SMSS per further duplicate ACK");
	tcp_cc_recovery_partial_ack(&s.cc, 4 * MSS);
	cr_assert_eq(s.cc.cwnd, 25 * MSS, "deflated by what was acked, one SMSS added back");
	tcp_cc_recovery_partial_ack(&s.cc, 500);
	cr_assert_eq(s.cc.cwnd, 25 * MSS - 500, "less than SMSS acked: nothing added back");
	s.cc.flight = 5 * MSS;
	s.ops->on_exit_recovery(&s.cc, s.now_us);
	cr_assert_eq(s.cc.cwnd, 6 * MSS, "deflated to flight + SMSS: no burst after recovery");
	cr_assert_eq(s.cc.ssthresh, 20 * MSS);
	s.cc.flight = 30 * MSS;
	s.ops->on_exit_recovery(&s.cc, s.now_us);
	cr_assert_eq(s.cc.cwnd, 20 * MSS, "never above ssthresh");
}

Test(cc_newreno, a_partial_ack_never_deflates_below_one_segment)
{
	struct sim s;

	sim_start(&s);
	s.cc.cwnd = 3 * MSS;
	tcp_cc_recovery_partial_ack(&s.cc, 10 * MSS);
	cr_assert_eq(s.cc.cwnd, MSS);
}

Test(cc_newreno, an_rto_collapses_the_window_to_one_segment_and_sets_ssthresh)
{
	struct sim s;

	sim_start(&s);
	sim_slow_start_to(&s, 80);
	s.cc.flight = 80 * MSS;
	s.ops->on_rto(&s.cc, s.now_us);
	cr_assert_eq(s.cc.cwnd, MSS, "loss window");
	cr_assert_eq(s.cc.ssthresh, 40 * MSS);
}

Test(cc_newreno, backed_off_rtos_of_the_same_loss_keep_ssthresh)
{
	struct sim s;

	sim_start(&s);
	sim_slow_start_to(&s, 80);
	s.cc.flight = 80 * MSS;
	s.ops->on_rto(&s.cc, s.now_us);
	s.cc.flight = MSS; /* only the retransmission is out now */
	s.ops->on_rto(&s.cc, s.now_us);
	s.ops->on_rto(&s.cc, s.now_us);
	cr_assert_eq(s.cc.ssthresh, 40 * MSS, "RFC 5681: held constant across backoff");
	cr_assert_eq(s.cc.cwnd, MSS);
	/* Once new data is acked, a later timeout is a new loss. */
	sim_ack(&s, MSS);
	s.cc.flight = 4 * MSS;
	s.ops->on_rto(&s.cc, s.now_us);
	cr_assert_eq(s.cc.ssthresh, 2 * MSS);
}

Test(cc_newreno, slow_start_after_an_rto_counts_at_most_one_segment_per_ack)
{
	struct sim s;

	sim_start(&s);
	sim_slow_start_to(&s, 80);
	s.cc.flight = 80 * MSS;
	s.ops->on_rto(&s.cc, s.now_us);
	sim_ack(&s, 6 * MSS); /* one cumulative ACK for data the receiver already held */
	cr_assert_eq(s.cc.cwnd, 2 * MSS, "RFC 3465 §2.3: L = 1 SMSS after an RTO");
}

Test(cc_newreno, a_restart_after_an_idle_longer_than_the_rto_starts_from_the_initial_window)
{
	struct sim s;

	sim_start(&s);
	sim_slow_start_to(&s, 100);
	sim_loss(&s);
	sim_round(&s, 1);
	cr_assert_eq(s.cc.cwnd, 51 * MSS);
	s.ops->on_idle_restart(&s.cc, 500000, 1000000, s.now_us);
	cr_assert_eq(s.cc.cwnd, 51 * MSS, "idle shorter than the RTO: window kept");
	s.ops->on_idle_restart(&s.cc, 2000000, 1000000, s.now_us);
	cr_assert_eq(s.cc.cwnd, 10 * MSS, "RFC 5681 §4.1: min(IW, cwnd)");
	cr_assert_eq(s.cc.ssthresh, 50 * MSS, "ssthresh kept: slow start back to it");
	sim_round(&s, 1);
	cr_assert_eq(s.cc.cwnd, 20 * MSS);
}

Test(cc_newreno, a_restart_never_raises_a_window_below_the_initial_one)
{
	struct sim s;

	sim_start(&s);
	s.cc.flight = 20 * MSS;
	s.ops->on_rto(&s.cc, s.now_us);
	s.ops->on_idle_restart(&s.cc, 10000000, 1000000, s.now_us);
	cr_assert_eq(s.cc.cwnd, MSS);
}

Test(cc_newreno, an_application_limited_sender_does_not_grow_its_window)
{
	struct sim s;

	sim_start(&s);
	for (int i = 0; i < 100; i++) {
		s.cc.flight = 0; /* a short reply, acked: nothing else outstanding */
		s.ops->on_ack(&s.cc, 200, RTT_US, s.now_us);
	}
	cr_assert_eq(s.cc.cwnd, 10 * MSS, "slow start: less than half the window was used");

	sim_slow_start_to(&s, 100);
	sim_loss(&s);
	for (int i = 0; i < 1000; i++) {
		s.cc.flight = 40 * MSS - MSS;
		s.ops->on_ack(&s.cc, MSS, RTT_US, s.now_us);
	}
	cr_assert_eq(s.cc.cwnd, 50 * MSS, "congestion avoidance: the window was not full");
}

Test(cc_newreno, algorithms_are_found_by_enum_and_by_name)
{
	enum tcp_cc_algo a;

	cr_assert_eq(tcp_cc_get(TCP_CC_NEWRENO), &tcp_cc_newreno);
	cr_assert_eq(tcp_cc_get(TCP_CC_CUBIC), &tcp_cc_cubic);
	cr_assert_null(tcp_cc_get((enum tcp_cc_algo)42));
	cr_assert_eq(tcp_cc_by_name("newreno", &a), 0);
	cr_assert_eq(a, TCP_CC_NEWRENO);
	cr_assert_eq(tcp_cc_by_name("cubic", &a), 0);
	cr_assert_eq(a, TCP_CC_CUBIC);
	cr_assert_eq(tcp_cc_by_name("bbr", &a), -ENOENT);
	cr_assert_eq(tcp_cc_by_name("CUBIC", &a), -ENOENT);
}
