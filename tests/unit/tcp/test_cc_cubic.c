/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * CUBIC (dataplane/tcp/cc_cubic.c) against RFC 9438, driven by a simulated
 * sender on a virtual microsecond clock; the expected windows are computed
 * here in floating point from the RFC's equations.
 */
#include <math.h>

#include <criterion/criterion.h>

#include "dataplane/tcp/cc.h"

#define MSS  1448u
#define C    0.4
#define BETA 0.7

struct sim {
	const struct tcp_cc_ops *ops;
	struct tcp_cc_state cc;
	uint64_t now_us;
	uint32_t rtt_us;
	uint64_t loss_us; /* when the last loss was handled */
};

static void sim_start(struct sim *s, uint32_t rtt_us)
{
	s->ops = &tcp_cc_cubic;
	s->now_us = 1000000;
	s->rtt_us = rtt_us;
	s->ops->init(&s->cc, MSS, s->now_us);
}

static double segs(uint32_t bytes)
{
	return (double)bytes / MSS;
}

/* One ACK of ACKED bytes for a sender that always has data: the window was full. */
static void sim_ack(struct sim *s, uint32_t acked)
{
	s->cc.flight = s->cc.cwnd - acked;
	s->ops->on_ack(&s->cc, acked, s->rtt_us, s->now_us);
}

/* One round trip: the window of the round's start is acked segment by segment over one RTT. */
static void sim_round(struct sim *s)
{
	uint32_t left = s->cc.cwnd;
	unsigned n = (left + MSS - 1) / MSS;
	uint64_t start = s->now_us;

	for (unsigned i = 0; i < n; i++) {
		uint32_t acked = left < MSS ? left : MSS;
		left -= acked;
		s->now_us = start + (uint64_t)s->rtt_us * (i + 1) / n;
		sim_ack(s, acked);
	}
}

/* Round trips until T_S seconds have passed since the last loss. */
static void sim_run_until(struct sim *s, double t_s)
{
	while ((double)(s->now_us - s->loss_us) / 1e6 < t_s)
		sim_round(s);
}

static double sim_t(const struct sim *s)
{
	return (double)(s->now_us - s->loss_us) / 1e6;
}

/* Slow start, one segment per ACK (no time passes), until cwnd holds N segments. */
static void sim_slow_start_to(struct sim *s, unsigned n)
{
	cr_assert_leq(n * MSS, s->cc.ssthresh, "not a slow start");
	for (unsigned i = 0; s->cc.cwnd < n * MSS; i++) {
		cr_assert_lt(i, n, "slow start stalled at %.1f segments", segs(s->cc.cwnd));
		sim_ack(s, MSS);
	}
}

/* Round trips until cwnd holds N segments; fails if that takes more than a minute. */
static void sim_run_until_cwnd(struct sim *s, unsigned n)
{
	uint64_t deadline = s->now_us + 60000000;

	while (s->cc.cwnd < n * MSS) {
		cr_assert_lt(s->now_us, deadline, "stalled at %.1f segments", segs(s->cc.cwnd));
		sim_round(s);
	}
}

/* A loss with the window full, recovered with SACK and the pipe kept full. */
static void sim_loss(struct sim *s)
{
	s->cc.flight = s->cc.cwnd;
	s->ops->on_enter_recovery(&s->cc, s->now_us);
	s->cc.flight = s->cc.cwnd;
	s->ops->on_exit_recovery(&s->cc, s->now_us);
	s->loss_us = s->now_us;
}

/* RFC 9438 eq. 2 and eq. 1, in segments and seconds. */
static double ref_k(double w_max, double cwnd_epoch)
{
	return cbrt((w_max - cwnd_epoch) / C);
}

static double ref_w_cubic(double w_max, double cwnd_epoch, double t)
{
	double k = ref_k(w_max, cwnd_epoch);
	return C * (t - k) * (t - k) * (t - k) + w_max;
}

#define assert_near(actual, expected, tol, ...)                                                    \
	cr_assert(fabs((actual) - (expected)) <= (tol), __VA_ARGS__)

Test(cc_cubic, starts_like_reno_with_the_rfc6928_initial_window)
{
	struct sim s;

	sim_start(&s, 100000);
	cr_assert_eq(s.cc.cwnd, 10 * MSS);
	cr_assert_eq(s.cc.ssthresh, UINT32_MAX);
	sim_round(&s);
	cr_assert_eq(s.cc.cwnd, 20 * MSS, "slow start doubles per RTT");
}

Test(cc_cubic, a_loss_leaves_seven_tenths_of_the_window)
{
	struct sim s;

	sim_start(&s, 100000);
	sim_slow_start_to(&s, 1000);
	sim_loss(&s);
	cr_assert_eq(s.cc.cwnd, 700 * MSS, "cwnd = beta_cubic * W_max");
	cr_assert_eq(s.cc.ssthresh, 700 * MSS);
}

Test(cc_cubic, the_window_follows_w_cubic_at_0_k_and_2k)
{
	struct sim s;
	const double w_max = 1000, epoch = BETA * w_max;
	const double k = ref_k(w_max, epoch); /* 9.09 s */

	/* A 100 ms path with 1000 segments in flight: far outside the Reno-friendly region. */
	sim_start(&s, 100000);
	sim_slow_start_to(&s, 1000);
	sim_loss(&s);
	assert_near(segs(s.cc.cwnd), ref_w_cubic(w_max, epoch, 0), 0.01, "t = 0");

	sim_run_until(&s, k);
	assert_near(segs(s.cc.cwnd), ref_w_cubic(w_max, epoch, sim_t(&s)), 0.5,
		    "t = %.2f s (K = %.2f s): %.2f segments", sim_t(&s), k, segs(s.cc.cwnd));
	assert_near(segs(s.cc.cwnd), w_max, 0.5, "at K the window is back at W_max");

	sim_run_until(&s, 2 * k);
	assert_near(segs(s.cc.cwnd), ref_w_cubic(w_max, epoch, sim_t(&s)), 0.5,
		    "t = %.2f s: %.2f segments", sim_t(&s), segs(s.cc.cwnd));
	/* W_cubic(2K) = W_max + C K^3 = W_max + (W_max - cwnd_epoch) = 1300: within one RTT of it. */
	assert_near(segs(s.cc.cwnd), 1300, 10, "t = 2K");
}

/* Growth in segments over the round trip that starts T_S seconds after the loss. */
static double growth_per_rtt_at(struct sim *s, double t_s)
{
	sim_run_until(s, t_s);
	double before = segs(s->cc.cwnd);
	sim_round(s);
	return segs(s->cc.cwnd) - before;
}

Test(cc_cubic, growth_is_concave_up_to_w_max_and_convex_beyond)
{
	struct sim s;
	const double k = ref_k(1000, 700);

	sim_start(&s, 100000);
	sim_slow_start_to(&s, 1000);
	sim_loss(&s);
	double g1 = growth_per_rtt_at(&s, 0.2 * k);
	double g2 = growth_per_rtt_at(&s, 0.6 * k);
	double g3 = growth_per_rtt_at(&s, k);
	double g4 = growth_per_rtt_at(&s, 1.4 * k);
	double g5 = growth_per_rtt_at(&s, 1.8 * k);

	cr_assert(g1 > g2 && g2 > g3,
		  "concave: fast at first, slowing towards W_max (%.2f %.2f %.2f)", g1, g2, g3);
	cr_assert(g3 < 0.1, "a plateau around W_max (%.3f segments per RTT)", g3);
	cr_assert(g3 < g4 && g4 < g5, "convex: probing faster and faster (%.2f %.2f %.2f)", g3, g4,
		  g5);
}

Test(cc_cubic, a_loss_before_reaching_w_max_lowers_the_next_plateau)
{
	struct sim s;

	sim_start(&s, 100000);
	sim_slow_start_to(&s, 1000);
	sim_loss(&s);
	/* Another flow arrives: the next loss comes at about 900 segments, short of W_max. */
	sim_run_until_cwnd(&s, 900);
	double at_loss = segs(s.cc.cwnd);
	sim_loss(&s);
	assert_near(segs(s.cc.cwnd), BETA * at_loss, 0.01, "beta_cubic * cwnd at the loss");

	/* Fast convergence: W_max = cwnd * (1 + beta) / 2, not cwnd (RFC 9438 §4.7). */
	double w_max = at_loss * (1 + BETA) / 2;
	double k = ref_k(w_max, BETA * at_loss);
	sim_run_until(&s, k);
	assert_near(segs(s.cc.cwnd), w_max, 1, "plateau at %.1f, not at %.1f: got %.1f", w_max,
		    at_loss, segs(s.cc.cwnd));
	/* And a loss at or above W_max keeps W_max = cwnd: the plateau is the loss point. */
	sim_run_until_cwnd(&s, 800);
	at_loss = segs(s.cc.cwnd);
	sim_loss(&s);
	sim_run_until(&s, ref_k(at_loss, BETA * at_loss));
	assert_near(segs(s.cc.cwnd), at_loss, 1, "plateau at the loss point %.1f: got %.1f",
		    at_loss, segs(s.cc.cwnd));
}

Test(cc_cubic, on_a_short_path_cubic_grows_at_least_as_fast_as_reno)
{
	struct sim s;

	/* 20 segments on a 1 ms path: W_cubic hardly moves in 10 ms, Reno would. */
	sim_start(&s, 1000);
	sim_slow_start_to(&s, 20);
	sim_loss(&s);
	for (int r = 0; r < 10; r++)
		sim_round(&s);
	double w_cubic = ref_w_cubic(20, 14, sim_t(&s));
	double w_est = 14 + 10 * 3 * (1 - BETA) / (1 + BETA); /* RFC 9438 eq. 4, per RTT */
	cr_assert(w_cubic < 14.1, "the cubic curve is still flat (%.2f)", w_cubic);
	assert_near(segs(s.cc.cwnd), w_est, 0.3, "Reno-friendly: cwnd = W_est = %.2f, got %.2f",
		    w_est, segs(s.cc.cwnd));

	/* Past cwnd_prior (20 segments) alpha_cubic is 1: Reno's one segment per RTT. */
	sim_run_until_cwnd(&s, 21);
	double before = segs(s.cc.cwnd);
	for (int r = 0; r < 10; r++)
		sim_round(&s);
	assert_near(segs(s.cc.cwnd) - before, 10, 0.3, "grew %.2f segments in 10 RTTs",
		    segs(s.cc.cwnd) - before);
}

Test(cc_cubic, the_window_never_drops_below_two_segments)
{
	struct sim s;

	sim_start(&s, 100000);
	s.cc.flight = MSS;
	s.ops->on_enter_recovery(&s.cc, s.now_us);
	cr_assert_eq(s.cc.cwnd, 2 * MSS);
	cr_assert_eq(s.cc.ssthresh, 2 * MSS);
	for (int i = 0; i < 20; i++) {
		sim_loss(&s);
		sim_round(&s);
		cr_assert_geq(s.cc.cwnd, 2 * MSS, "loss %d", i);
		cr_assert_geq(s.cc.ssthresh, 2 * MSS, "loss %d", i);
	}
}

Test(cc_cubic, an_rto_collapses_the_window_and_sets_ssthresh_with_beta)
{
	struct sim s;

	sim_start(&s, 100000);
	sim_slow_start_to(&s, 1000);
	s.cc.flight = 1000 * MSS;
	s.ops->on_rto(&s.cc, s.now_us);
	cr_assert_eq(s.cc.cwnd, MSS);
	cr_assert_eq(s.cc.ssthresh, 700 * MSS);
	s.cc.flight = MSS;
	s.ops->on_rto(&s.cc, s.now_us);
	cr_assert_eq(s.cc.ssthresh, 700 * MSS, "a backed-off RTO keeps ssthresh");
	sim_ack(&s, 4 * MSS);
	cr_assert_eq(s.cc.cwnd, 2 * MSS, "slow start after an RTO counts one segment per ACK");
}

Test(cc_cubic, after_an_rto_the_curve_restarts_convex_from_where_slow_start_ended)
{
	struct sim s;

	sim_start(&s, 100000);
	sim_slow_start_to(&s, 1000);
	sim_loss(&s); /* W_max = 1000 */
	sim_run_until_cwnd(&s, 800);
	s.cc.flight = 800 * MSS;
	s.ops->on_rto(&s.cc, s.now_us);
	cr_assert_eq(s.cc.ssthresh, 560 * MSS);
	sim_slow_start_to(&s, 560);
	s.loss_us = s.now_us; /* the congestion avoidance stage starts here */

	/*
	 * RFC 9438 §4.8: the old W_max of 1000 is forgotten; K = 0 and W_max =
	 * cwnd_epoch, so W = 560 + C t^3: convex at once, not concave towards 1000.
	 */
	sim_run_until(&s, 6);
	double t = sim_t(&s);
	assert_near(segs(s.cc.cwnd), 560 + C * t * t * t, 1, "t = %.2f s: %.1f segments", t,
		    segs(s.cc.cwnd));
	cr_assert(segs(s.cc.cwnd) > 560 + 1.0 * t / 0.1, "faster than Reno by now");
}

Test(cc_cubic, a_short_idle_period_does_not_count_as_growth_time)
{
	struct sim busy, idle;

	sim_start(&busy, 100000);
	sim_slow_start_to(&busy, 1000);
	sim_loss(&busy);
	idle = busy;
	for (int r = 0; r < 30; r++)
		sim_round(&busy);

	for (int r = 0; r < 20; r++)
		sim_round(&idle);
	idle.now_us += 800000; /* 0.8 s with nothing to send, under the RTO */
	idle.ops->on_idle_restart(&idle.cc, 800000, 1000000, idle.now_us);
	for (int r = 0; r < 10; r++)
		sim_round(&idle);
	assert_near(segs(idle.cc.cwnd), segs(busy.cc.cwnd), 0.5,
		    "same active time, same window: %.2f vs %.2f", segs(idle.cc.cwnd),
		    segs(busy.cc.cwnd));
}

Test(cc_cubic, a_restart_after_an_idle_longer_than_the_rto_starts_from_the_initial_window)
{
	struct sim s;

	sim_start(&s, 100000);
	sim_slow_start_to(&s, 1000);
	sim_loss(&s);
	sim_run_until(&s, 2);
	s.now_us += 3000000;
	s.ops->on_idle_restart(&s.cc, 3000000, 1000000, s.now_us);
	cr_assert_eq(s.cc.cwnd, 10 * MSS, "RFC 5681 §4.1: min(IW, cwnd)");
	cr_assert_eq(s.cc.ssthresh, 700 * MSS, "ssthresh kept");

	/* Slow start back to ssthresh, then a new epoch towards the same W_max of 1000. */
	sim_slow_start_to(&s, 700);
	s.loss_us = s.now_us;
	sim_run_until(&s, ref_k(1000, 700));
	assert_near(segs(s.cc.cwnd), 1000, 1, "back at W_max after K: %.1f", segs(s.cc.cwnd));
}

Test(cc_cubic, the_window_grows_at_most_by_half_per_rtt_however_far_ahead_the_curve_is)
{
	struct sim s;

	/* A 20 s round trip puts W_cubic(t + RTT) far above the window from the start. */
	sim_start(&s, 20000000);
	sim_slow_start_to(&s, 1000);
	sim_loss(&s);
	cr_assert_gt(ref_w_cubic(1000, 700, 20), 1.5 * 700);
	for (int r = 0; r < 5; r++) {
		double before = segs(s.cc.cwnd);
		sim_round(&s);
		double ratio = segs(s.cc.cwnd) / before;
		cr_assert(ratio > 1.2 && ratio <= 1.5, "RFC 9438 §4.2: target <= 1.5 cwnd (x%.2f)",
			  ratio);
	}
}

Test(cc_cubic, time_spent_application_limited_does_not_count_as_growth_time)
{
	struct sim busy, limited;

	sim_start(&busy, 100000);
	sim_slow_start_to(&busy, 1000);
	sim_loss(&busy);
	limited = busy;
	for (int r = 0; r < 30; r++)
		sim_round(&busy);

	for (int r = 0; r < 20; r++)
		sim_round(&limited);
	for (int i = 0; i < 300; i++) {
		/* 3 s of a trickle: one segment every 10 ms, the window far from full */
		limited.now_us += 10000;
		limited.cc.flight = 10 * MSS;
		limited.ops->on_ack(&limited.cc, MSS, limited.rtt_us, limited.now_us);
	}
	for (int r = 0; r < 10; r++)
		sim_round(&limited);
	assert_near(segs(limited.cc.cwnd), segs(busy.cc.cwnd), 0.5,
		    "same time cwnd-limited, same window: %.2f vs %.2f", segs(limited.cc.cwnd),
		    segs(busy.cc.cwnd));
}

Test(cc_cubic, an_application_limited_sender_does_not_grow_its_window)
{
	struct sim s;

	sim_start(&s, 100000);
	sim_slow_start_to(&s, 1000);
	sim_loss(&s);
	for (int i = 0; i < 10000; i++) {
		s.now_us += 1000;
		s.cc.flight = 100 * MSS;
		s.ops->on_ack(&s.cc, MSS, s.rtt_us, s.now_us);
	}
	cr_assert_eq(s.cc.cwnd, 700 * MSS, "10 s of ACKs, but the window was never full");
}
