/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * CUBIC congestion control (RFC 9438): after a loss the window follows
 * W_cubic(t) = C * (t - K)^3 + W_max, concave up to the last saturation
 * point W_max and convex beyond it, and never grows slower than Reno would.
 * Integer arithmetic only: per ACK a few multiplications and divisions; an
 * integer cube root once per congestion event.
 */
#include "cc.h"

/*
 * The constants of RFC 9438 §4.1 as fractions: C = 0.4 segments/s^3,
 * beta_cubic = 7/10, the fast-convergence factor (1 + beta_cubic) / 2 =
 * 17/20, and alpha_cubic = 3 (1 - beta) / (1 + beta) = 9/17 (§4.3 eq. 3).
 */
#define BETA_NUM  7
#define BETA_DEN  10
#define FC_NUM	  17
#define FC_DEN	  20
#define ALPHA_NUM 9
#define ALPHA_DEN 17

/*
 * Time in W_cubic is kept in milliseconds: K is at most a few hundred
 * seconds for any window below 4 GiB, and (t - K)^3 with t - K capped at
 * 2^19 ms (8.7 minutes) times 4 * SMSS still fits 64 bits (see cubic_w).
 * Further out the window is clamped by the 1.5 * cwnd per RTT rule anyway.
 */
#define D_MAX_MS (1u << 19)

/* W_est grows by a fraction of a byte per ACK in large windows: keep 10 bits of fraction. */
#define W_EST_SHIFT 10

struct cubic {
	uint64_t flags;
	uint64_t epoch_us;    /* t_epoch: start of the current congestion avoidance stage */
	uint64_t k_ms;	      /* K (§4.2 eq. 2), milliseconds */
	uint64_t w_max;	      /* bytes (§4.1) */
	uint64_t w_est_fp;    /* Reno-friendly estimate W_est (§4.3), bytes << W_EST_SHIFT */
	uint64_t cwnd_prior;  /* cwnd when ssthresh was last set (§4.1); 0: not yet */
	uint64_t cwnd_rem;    /* fraction of a byte of cwnd growth, over cwnd */
	uint64_t last_ack_us; /* to measure application-limited time (§5.8) */
};

#define CU_EPOCH       0x1 /* epoch_us, k_ms and w_est are valid */
#define CU_AFTER_RTO   0x2 /* slow start follows an RTO: ABC limit 1 SMSS */
#define CU_RTO_BACKOFF 0x4 /* an RTO set ssthresh and no new data was acked since */
#define CU_WMAX_RESET  0x8 /* next epoch: W_max = cwnd_epoch, K = 0 (§4.8, §4.10) */

_Static_assert(sizeof(struct cubic) <= sizeof(((struct tcp_cc_state *)0)->priv),
	       "CUBIC state does not fit the private area");

static struct cubic *cu(struct tcp_cc_state *cc)
{
	return (struct cubic *)cc->priv;
}

/* floor(cbrt(x)), digit by digit (Hacker's Delight, icbrt64): no libm, no floating point. */
static uint64_t icbrt64(uint64_t x)
{
	uint64_t y = 0;

	for (int s = 63; s >= 0; s -= 3) {
		y <<= 1;
		uint64_t b = 3 * y * (y + 1) + 1;
		if ((x >> s) >= b) {
			x -= b << s;
			y++;
		}
	}
	return y;
}

/* W_cubic(t) of §4.2 eq. 1 in bytes, T_US after the epoch started. */
static uint64_t cubic_w(const struct cubic *p, uint32_t mss, uint64_t t_us)
{
	uint64_t t_ms = t_us / 1000;
	bool convex = t_ms >= p->k_ms;
	uint64_t d = convex ? t_ms - p->k_ms : p->k_ms - t_ms;

	if (d > D_MAX_MS)
		d = D_MAX_MS;
	/*
	 * C * d^3 segments with d in ms is 0.4 * d^3 / 10^9 segments, i.e.
	 * 4 * d^3 * SMSS / 10^10 bytes. Dividing d^3 by 10^4 first keeps it
	 * in 64 bits (2^57 / 10^4 * 4 * 65535 < 2^62) and costs under a byte.
	 */
	uint64_t delta = d * d * d / 10000 * 4 * mss / 1000000;

	if (convex)
		return p->w_max + delta;
	return delta < p->w_max ? p->w_max - delta : 0;
}

/* The first ACK of a congestion avoidance stage: t_epoch, K and W_est start here. */
static void epoch_start(struct tcp_cc_state *cc, struct cubic *p, uint64_t now_us)
{
	uint64_t cwnd_epoch = cc->cwnd;

	p->flags |= CU_EPOCH;
	p->epoch_us = now_us;
	if ((p->flags & CU_WMAX_RESET) || p->w_max <= cwnd_epoch) {
		/*
		 * No saturation point to return to: after an RTO (§4.8), or when
		 * slow start ended without a loss (§4.10). Start at the plateau,
		 * so growth is convex from here.
		 */
		p->w_max = cwnd_epoch;
		p->k_ms = 0;
		p->flags &= ~(uint64_t)CU_WMAX_RESET;
	} else {
		/*
		 * Eq. 2 with windows in bytes: K = cbrt(diff / (C * SMSS)) s =
		 * cbrt(2.5e9 * diff / SMSS) ms, diff = W_max - cwnd_epoch < 2^32,
		 * so 2.5e9 * diff < 2^64.
		 */
		p->k_ms = icbrt64((p->w_max - cwnd_epoch) * 2500000000u / cc->mss);
	}
	p->w_est_fp = cwnd_epoch << W_EST_SHIFT;
	p->cwnd_rem = 0;
	if (p->cwnd_prior == 0)
		p->cwnd_prior = cwnd_epoch;
}

static void cubic_init(struct tcp_cc_state *cc, uint32_t mss, uint64_t now_us)
{
	(void)now_us;
	*cc = (struct tcp_cc_state){
		.cwnd = tcp_cc_initial_window(mss),
		.ssthresh = UINT32_MAX,
		.mss = mss,
	};
}

static void cubic_on_ack(struct tcp_cc_state *cc, uint32_t acked, uint32_t srtt_us, uint64_t now_us)
{
	struct cubic *p = cu(cc);
	uint64_t gap_us = now_us > p->last_ack_us ? now_us - p->last_ack_us : 0;

	p->last_ack_us = now_us;
	p->flags &= ~(uint64_t)CU_RTO_BACKOFF;
	if (!tcp_cc_cwnd_limited(cc, acked)) {
		/*
		 * RFC 9438 §5.8: t must not include time the application held
		 * the sender back, or W_cubic(t) would be far ahead when it
		 * sends in bulk again. Slide the epoch by it.
		 */
		if (p->flags & CU_EPOCH)
			p->epoch_us = p->epoch_us + gap_us < now_us ? p->epoch_us + gap_us : now_us;
		return;
	}
	/* §4.10: below ssthresh, the slow start of RFC 5681 (with ABC). */
	acked = tcp_cc_slow_start(cc, acked, p->flags & CU_AFTER_RTO);
	if (acked == 0)
		return;
	p->flags &= ~(uint64_t)CU_AFTER_RTO;
	if (!(p->flags & CU_EPOCH))
		epoch_start(cc, p, now_us);
	uint64_t t_us = now_us > p->epoch_us ? now_us - p->epoch_us : 0;

	/*
	 * §4.3 eq. 4: W_est += alpha * segments_acked / cwnd segments, i.e.
	 * alpha * acked * SMSS / cwnd bytes; alpha becomes 1 once W_est has
	 * reached cwnd_prior, where Reno would have been at the loss.
	 */
	bool reno_pace = (p->w_est_fp >> W_EST_SHIFT) >= p->cwnd_prior;
	uint64_t a_num = reno_pace ? 1 : ALPHA_NUM;
	uint64_t a_den = reno_pace ? 1 : ALPHA_DEN;
	p->w_est_fp += (a_num * acked * cc->mss << W_EST_SHIFT) / (a_den * cc->cwnd);
	uint64_t w_est = p->w_est_fp >> W_EST_SHIFT;

	uint64_t w;
	if (cubic_w(p, cc->mss, t_us) < w_est) {
		/* Reno-friendly region (§4.3): cwnd = W_est, never backwards. */
		w = w_est > cc->cwnd ? w_est : cc->cwnd;
	} else {
		/*
		 * Concave (cwnd < W_max, §4.4) or convex (§4.5) region: aim for
		 * where the curve will be one RTT from now, no further than
		 * 1.5 * cwnd (§4.2), and get there over this RTT's ACKs:
		 * cwnd += (target - cwnd) / cwnd per SMSS acked.
		 */
		uint64_t target = cubic_w(p, cc->mss, t_us + srtt_us);
		uint64_t cap = cc->cwnd + cc->cwnd / 2;
		if (target > cap)
			target = cap;
		if (target <= cc->cwnd)
			return;
		uint64_t num = (target - cc->cwnd) * acked + p->cwnd_rem;
		w = cc->cwnd + num / cc->cwnd;
		p->cwnd_rem = num % cc->cwnd;
	}
	cc->cwnd = w > UINT32_MAX ? UINT32_MAX : (uint32_t)w;
}

/* ssthresh = max(flight * beta_cubic, 2 * SMSS) (§4.6). */
static uint32_t beta_flight(const struct tcp_cc_state *cc)
{
	uint64_t ss = (uint64_t)cc->flight * BETA_NUM / BETA_DEN;

	return ss > 2 * cc->mss ? (uint32_t)ss : 2 * cc->mss;
}

static void cubic_on_enter_recovery(struct tcp_cc_state *cc, uint64_t now_us)
{
	struct cubic *p = cu(cc);

	(void)now_us;
	/*
	 * §4.7 fast convergence, before the reduction: a loss below the last
	 * W_max means the available bandwidth shrank (another flow arrived),
	 * so release some by aiming lower.
	 */
	if (cc->cwnd < p->w_max)
		p->w_max = (uint64_t)cc->cwnd * FC_NUM / FC_DEN;
	else
		p->w_max = cc->cwnd;
	/* §4.6: the reduction on loss, cwnd and ssthresh at least 2 SMSS. */
	p->cwnd_prior = cc->cwnd;
	cc->ssthresh = beta_flight(cc);
	cc->cwnd = cc->ssthresh;
	p->flags = 0; /* a new epoch begins with congestion avoidance */
}

static void cubic_on_exit_recovery(struct tcp_cc_state *cc, uint64_t now_us)
{
	(void)now_us;
	tcp_cc_deflate_after_recovery(cc);
}

static void cubic_on_rto(struct tcp_cc_state *cc, uint64_t now_us)
{
	struct cubic *p = cu(cc);

	(void)now_us;
	/* §4.8: Reno's reaction to a timeout, with ssthresh from beta_cubic. */
	if (!(p->flags & CU_RTO_BACKOFF)) {
		p->cwnd_prior = cc->cwnd;
		cc->ssthresh = beta_flight(cc);
	}
	cc->cwnd = cc->mss;
	p->flags &= ~(uint64_t)CU_EPOCH;
	p->flags |= CU_RTO_BACKOFF | CU_AFTER_RTO | CU_WMAX_RESET;
}

static void cubic_on_idle_restart(struct tcp_cc_state *cc, uint64_t idle_us, uint32_t rto_us,
				  uint64_t now_us)
{
	struct cubic *p = cu(cc);

	if (tcp_cc_restart_window(cc, idle_us, rto_us)) {
		/* Back to slow start; the next stage starts a new epoch towards
		 * the same W_max. */
		p->flags &= ~(uint64_t)CU_EPOCH;
		return;
	}
	/*
	 * A short pause: slide the epoch so that time with nothing to send
	 * does not count as growth time (RFC 9438 §5.8; Linux does the same
	 * on CA_EVENT_TX_START). The pause is accounted for here, so the next
	 * ACK's gap starts now.
	 */
	if (p->flags & CU_EPOCH)
		p->epoch_us = p->epoch_us + idle_us < now_us ? p->epoch_us + idle_us : now_us;
	p->last_ack_us = now_us;
}

const struct tcp_cc_ops tcp_cc_cubic = {
	.name = "cubic",
	.init = cubic_init,
	.on_ack = cubic_on_ack,
	.on_enter_recovery = cubic_on_enter_recovery,
	.on_exit_recovery = cubic_on_exit_recovery,
	.on_rto = cubic_on_rto,
	.on_idle_restart = cubic_on_idle_restart,
};
