/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * TCP timers on the worker's wheel: retransmission with RFC 6298 RTO and
 * exponential backoff (also SYN retries and zero-window probes), delayed ACK,
 * keepalive and FIN_WAIT_2 timeout, and TIME_WAIT's 2*MSL.
 */
#include <errno.h>

#include <rte_cycles.h>
#include <rte_tcp.h>

#include "tcp_priv.h"

#define FIN_WAIT_2_TIMEOUT_MS 60000 /* an orphaned FIN_WAIT_2 does not live forever */
#define RTO_K 4                     /* RFC 6298 §2 */
#define CLOCK_G_US 1000             /* our clock granularity: 1 ms ticks */
#define SWS_OVERRIDE_MIN_US 100000  /* RFC 1122 §4.2.3.4: "in the range 0.1 - 1.0 seconds" */
#define SWS_OVERRIDE_MAX_US 1000000

void tcp_clock_init(struct tcp_clock *k, uint64_t hz)
{
	uint64_t d = hz / 1000000 ? hz / 1000000 : 1;
	uint8_t l = 0;

	while (l < 63 && (1ull << l) < d)
		l++; /* l = ceil(log2(d)) */
	/* m = ceil(2^(64+l) / d), in [2^64, 2^65): keep its low 64 bits */
	unsigned __int128 m = (((unsigned __int128)1 << (64 + l)) - 1) / d + 1;
	k->tsc_per_us = d;
	k->magic = (uint64_t)(m - ((unsigned __int128)1 << 64));
	k->shift = l;
}

uint64_t tcp_read_tsc(void *arg)
{
	(void)arg;
	return rte_rdtsc();
}

/* The wheel's clock: the tick it is running now, which a timer callback takes for its own. */
static uint64_t wheel_now(const struct tcp_stack *s)
{
	return s->wheel->now * s->wheel->tick;
}

/*
 * Timers are armed from the stack clock (the event's, or the one an API call
 * read), not from the wheel's last tick: an application's call made some time
 * after the wheel last ran still gets a whole RTO.
 */
void tcp_arm_rexmt(struct tcp_conn *c)
{
	struct tcp_stack *s = c->s;

	timer_arm_at(s->wheel, &c->t_rexmt, s->now_tsc + tcp_us_to_tsc(s, c->rto_us));
}

/*
 * The SWS override timeout (RFC 9293 §3.8.6.2.1 rule 4, RFC 1122 §4.2.3.4)
 * runs on the persist timer, as RFC 1122 suggests: one RTO, kept inside the
 * 0.1 - 1 s the RFC asks for, and not backed off (what it sends is timed by
 * the retransmission timer as usual).
 */
void tcp_arm_sws_override(struct tcp_conn *c)
{
	struct tcp_stack *s = c->s;
	uint64_t us = RTE_MIN(RTE_MAX((uint64_t)c->rto_us, (uint64_t)SWS_OVERRIDE_MIN_US),
			      (uint64_t)SWS_OVERRIDE_MAX_US);

	timer_arm_at(s->wheel, &c->t_rexmt, s->now_tsc + tcp_us_to_tsc(s, us));
}

void tcp_arm_delack(struct tcp_conn *c)
{
	struct tcp_stack *s = c->s;
	if (!timer_armed(&c->t_delack))
		timer_arm_ms(s->wheel, &c->t_delack, s->now_tsc, s->p.delack_ms);
}

void tcp_arm_keepalive(struct tcp_conn *c)
{
	struct tcp_stack *s = c->s;
	if (s->p.keepalive_idle_s)
		timer_arm_ms(s->wheel, &c->t_keep, s->now_tsc,
			     (uint64_t)s->p.keepalive_idle_s * 1000);
}

/* RFC 6298 §2.2-2.4: smoothed RTT, variance, and the RTO bounded by min and max. */
void tcp_rtt_sample(struct tcp_conn *c, uint32_t rtt_us)
{
	const struct tcp_params *p = &c->s->p;

	if (rtt_us == 0)
		rtt_us = 1;
	if (c->srtt_us == 0) {
		c->srtt_us = rtt_us;
		c->rttvar_us = rtt_us / 2;
	} else {
		uint32_t delta = c->srtt_us > rtt_us ? c->srtt_us - rtt_us : rtt_us - c->srtt_us;
		c->rttvar_us = (3 * c->rttvar_us + delta) / 4;
		c->srtt_us = (7 * c->srtt_us + rtt_us) / 8;
	}
	uint64_t rto = c->srtt_us + RTE_MAX((uint32_t)CLOCK_G_US, RTO_K * c->rttvar_us);
	rto = RTE_MAX(rto, (uint64_t)p->rto_min_ms * 1000);
	rto = RTE_MIN(rto, (uint64_t)p->rto_max_ms * 1000);
	c->rto_us = (uint32_t)rto;
}

static void backoff(struct tcp_conn *c)
{
	uint64_t rto = (uint64_t)c->rto_us * 2;
	c->rto_us = (uint32_t)RTE_MIN(rto, (uint64_t)c->s->p.rto_max_ms * 1000);
}

/*
 * Retransmission timeout (RFC 6298 §5), or a SYN retry, or a zero-window
 * probe, or the SWS override.
 */
static void rexmt_expired(struct tcp_conn *c)
{
	struct tcp_stack *s = c->s;

	if (c->persist && c->snd_wnd != 0) {
		/*
		 * RFC 9293 §3.8.6.2.1 rule 4: the window stayed too small for SWS
		 * avoidance to send into; send what it allows now.
		 */
		c->persist = false;
		c->sws_override = true;
		tcp_output(c);
		c->sws_override = false;
		return;
	}
	if (c->persist) {
		/*
		 * RFC 9293 §3.8.6.1: probe the closed window. An old sequence number
		 * (SND.UNA - 1) draws an ACK with the current window from any receiver;
		 * a byte of new data would be acked past SND.MAX when it is taken.
		 */
		if (++c->probes > s->p.max_retries) {
			tcp_send_ctl(c, RTE_TCP_RST_FLAG, c->snd_nxt);
			tcp_conn_destroy(c, TCP_CLOSE_TIMEOUT);
			return;
		}
		tcp_send_ctl(c, RTE_TCP_ACK_FLAG, c->snd_una - 1);
		backoff(c);
		tcp_arm_rexmt(c);
		return;
	}

	c->retries++;
	dp_count(s->stats, DP_C_TCP_RTO_TIMEOUTS, 1);
	switch (c->state) {
	case TCP_ST_SYN_SENT:
		if (c->retries > s->p.syn_retries) {
			if (c->ops && c->ops->connected)
				c->ops->connected(c, -ETIMEDOUT);
			tcp_conn_destroy(c, TCP_CLOSE_TIMEOUT);
			return;
		}
		backoff(c);
		tcp_send_ctl(c, RTE_TCP_SYN_FLAG, c->iss);
		tcp_arm_rexmt(c);
		return;
	case TCP_ST_SYN_RECEIVED:
		if (c->retries > s->p.syn_retries) {
			tcp_conn_destroy(c, TCP_CLOSE_TIMEOUT);
			return;
		}
		backoff(c);
		tcp_send_ctl(c, RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG, c->iss);
		tcp_arm_rexmt(c);
		return;
	default:
		break;
	}
	if (c->retries > s->p.max_retries) {
		tcp_send_ctl(c, RTE_TCP_RST_FLAG, c->snd_nxt);
		tcp_conn_destroy(c, TCP_CLOSE_TIMEOUT);
		return;
	}
	/* RFC 5681 §3.1 eq. 4 and the loss window; RFC 6298 §5.5 backoff; Karn. */
	c->ccs.flight = c->snd_max - c->snd_una;
	c->cc->on_rto(&c->ccs, s->now_us);
	backoff(c);
	c->rtt_timing = false;
	c->in_recovery = false;
	c->dupacks = 0;
	/* RFC 2018 §8: after a timeout the receiver may have reneged; forget SACK state. */
	tcp_sack_clear(c);
	c->recover = c->snd_max;
	c->high_rxt = c->snd_una;
	/* Go back to the first unacknowledged byte; the loss window sends one segment. */
	c->snd_nxt = c->snd_una;
	dp_count(s->stats, DP_C_TCP_RETRANSMITS, 1);
	tcp_output(c);
	/* RFC 9293 §3.8.6.1: a window shrunk shut still gets something, a probe, each RTO. */
	if (c->snd_nxt == c->snd_una && !c->doomed)
		tcp_send_ctl(c, RTE_TCP_ACK_FLAG, c->snd_una - 1);
}

static void delack_expired(struct tcp_conn *c)
{
	tcp_send_ack(c);
}

/* Keepalive (RFC 1122 §4.2.3.6), and the end of an orphaned FIN_WAIT_2. */
static void keep_expired(struct tcp_conn *c)
{
	struct tcp_stack *s = c->s;

	if (c->state == TCP_ST_FIN_WAIT_2) {
		tcp_conn_destroy(c, TCP_CLOSE_TIMEOUT);
		return;
	}
	if (!s->p.keepalive_idle_s)
		return;
	if (++c->probes > s->p.keepalive_probes) {
		tcp_send_ctl(c, RTE_TCP_RST_FLAG, c->snd_nxt);
		tcp_conn_destroy(c, TCP_CLOSE_TIMEOUT);
		return;
	}
	/* A probe: SEG.SEQ = SND.NXT-1 with no data draws an ACK. */
	tcp_send_ctl(c, RTE_TCP_ACK_FLAG, c->snd_nxt - 1);
	timer_arm_ms(s->wheel, &c->t_keep, s->now_tsc, (uint64_t)s->p.keepalive_intvl_s * 1000);
}

static void time_wait_expired(struct tcp_conn *c)
{
	tcp_conn_destroy(c, TCP_CLOSE_NORMAL);
}

/*
 * Each timer runs as an event of the stack on the wheel's clock: what its
 * callbacks (closed()...) call runs on that clock too. The stack outlives c,
 * which the handler may free.
 */
#define TIMER_EVENT(name, handler)                                                                 \
	static void name(struct timer *t, void *arg)                                               \
	{                                                                                          \
		struct tcp_conn *c = arg;                                                          \
		struct tcp_stack *s = c->s;                                                        \
		(void)t;                                                                           \
		tcp_event_enter(s, wheel_now(s));                                                  \
		handler(c);                                                                        \
		tcp_event_leave(s);                                                                \
	}
TIMER_EVENT(on_rexmt, rexmt_expired)
TIMER_EVENT(on_delack, delack_expired)
TIMER_EVENT(on_keep, keep_expired)
TIMER_EVENT(on_2msl, time_wait_expired)

void tcp_timers_init(struct tcp_conn *c)
{
	timer_init(&c->t_rexmt, on_rexmt, c);
	timer_init(&c->t_delack, on_delack, c);
	timer_init(&c->t_keep, on_keep, c);
	timer_init(&c->t_2msl, on_2msl, c);
}

void tcp_timers_cancel(struct tcp_conn *c)
{
	struct timer_wheel *w = c->s->wheel;
	timer_cancel(w, &c->t_rexmt);
	timer_cancel(w, &c->t_delack);
	timer_cancel(w, &c->t_keep);
	timer_cancel(w, &c->t_2msl);
}

/* Arms the FIN_WAIT_2 timeout for a connection the application has let go of. */
void tcp_arm_fin_wait_2(struct tcp_conn *c)
{
	timer_arm_ms(c->s->wheel, &c->t_keep, c->s->now_tsc, FIN_WAIT_2_TIMEOUT_MS);
}
