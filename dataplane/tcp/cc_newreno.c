/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NewReno window arithmetic (RFC 5681 with the byte counting of RFC 3465):
 * slow start, congestion avoidance of one SMSS per RTT, halving on loss. The
 * "New" part, partial ACKs in recovery (RFC 6582), is the state machine's;
 * see cc.h.
 */
#include "cc.h"

struct newreno {
	uint64_t bytes_acked; /* RFC 3465 §2.1 accumulator for congestion avoidance */
	uint64_t flags;
};

#define NR_AFTER_RTO   0x1 /* slow start follows an RTO: ABC limit 1 SMSS */
#define NR_RTO_BACKOFF 0x2 /* an RTO set ssthresh and no new data was acked since */

_Static_assert(sizeof(struct newreno) <= sizeof(((struct tcp_cc_state *)0)->priv),
	       "NewReno state does not fit the private area");

static struct newreno *nr(struct tcp_cc_state *cc)
{
	return (struct newreno *)cc->priv;
}

/* RFC 5681 eq. 4: ssthresh = max(FlightSize / 2, 2 * SMSS). */
static uint32_t half_flight(const struct tcp_cc_state *cc)
{
	uint32_t half = cc->flight / 2;

	return half > 2 * cc->mss ? half : 2 * cc->mss;
}

static void newreno_init(struct tcp_cc_state *cc, uint32_t mss, uint64_t now_us)
{
	(void)now_us;
	*cc = (struct tcp_cc_state){
		.cwnd = tcp_cc_initial_window(mss),
		.ssthresh = UINT32_MAX,
		.mss = mss,
	};
}

static void newreno_on_ack(struct tcp_cc_state *cc, uint32_t acked, uint32_t srtt_us,
			   uint64_t now_us)
{
	struct newreno *p = nr(cc);

	(void)srtt_us;
	(void)now_us;
	p->flags &= ~(uint64_t)NR_RTO_BACKOFF;
	if (!tcp_cc_cwnd_limited(cc, acked))
		return;
	acked = tcp_cc_slow_start(cc, acked, p->flags & NR_AFTER_RTO);
	if (acked == 0)
		return;
	p->flags &= ~(uint64_t)NR_AFTER_RTO;
	/*
	 * Congestion avoidance by byte counting (RFC 3465 §2.1, RFC 5681 §3.1):
	 * one SMSS for each cwnd of acknowledged data, which is one SMSS per
	 * RTT whether or not the receiver delays its ACKs.
	 */
	p->bytes_acked += acked;
	if (p->bytes_acked >= cc->cwnd) {
		p->bytes_acked -= cc->cwnd;
		cc->cwnd = cc->cwnd > UINT32_MAX - cc->mss ? UINT32_MAX : cc->cwnd + cc->mss;
	}
}

static void newreno_on_enter_recovery(struct tcp_cc_state *cc, uint64_t now_us)
{
	struct newreno *p = nr(cc);

	(void)now_us;
	cc->ssthresh = half_flight(cc);
	cc->cwnd = cc->ssthresh;
	p->bytes_acked = 0;
	p->flags = 0;
}

static void newreno_on_exit_recovery(struct tcp_cc_state *cc, uint64_t now_us)
{
	(void)now_us;
	tcp_cc_deflate_after_recovery(cc);
	nr(cc)->bytes_acked = 0;
}

static void newreno_on_rto(struct tcp_cc_state *cc, uint64_t now_us)
{
	struct newreno *p = nr(cc);

	(void)now_us;
	if (!(p->flags & NR_RTO_BACKOFF))
		cc->ssthresh = half_flight(cc);
	cc->cwnd = cc->mss; /* the loss window, RFC 5681 §3.1 */
	p->bytes_acked = 0;
	p->flags |= NR_RTO_BACKOFF | NR_AFTER_RTO;
}

static void newreno_on_idle_restart(struct tcp_cc_state *cc, uint64_t idle_us, uint32_t rto_us,
				    uint64_t now_us)
{
	(void)now_us;
	if (tcp_cc_restart_window(cc, idle_us, rto_us))
		nr(cc)->bytes_acked = 0;
}

const struct tcp_cc_ops tcp_cc_newreno = {
	.name = "newreno",
	.init = newreno_init,
	.on_ack = newreno_on_ack,
	.on_enter_recovery = newreno_on_enter_recovery,
	.on_exit_recovery = newreno_on_exit_recovery,
	.on_rto = newreno_on_rto,
	.on_idle_restart = newreno_on_idle_restart,
};
