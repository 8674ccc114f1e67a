/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * TCP congestion control: the window arithmetic of one connection behind a
 * small ops table, one file per algorithm (cc_newreno.c, cc_cubic.c). Pure:
 * no mbufs, no clock reads, no DPDK calls; the state lives inside the
 * connection and every input comes in as an argument.
 */
#ifndef MX_TCP_CC_H
#define MX_TCP_CC_H

#include <stdbool.h>
#include <stdint.h>

#include "tcp.h"

/*
 * Who does what.
 *
 * The state machine owns loss detection and recovery: duplicate ACK
 * counting, the recover point and the "ACK above recover" check (RFC 6582
 * §3.2 steps 1, 2 and 4), the SACK scoreboard and pipe (RFC 6675),
 * retransmissions and the RTO timer. The congestion controller owns the
 * numbers: cwnd and ssthresh. The state machine reads cwnd and ssthresh and
 * never assigns them; it changes them only through the calls below, made at
 * these moments:
 *
 *   event (detected by the state machine)            call
 *   ------------------------------------------------ ------------------------------------
 *   handshake done, send MSS known                   ops->init
 *   SYN or SYN-ACK had been retransmitted            tcp_cc_syn_was_lost(), after init
 *   ACK of new data, not in recovery                 ops->on_ack
 *   third duplicate ACK (or RFC 6675 loss) and the   ops->on_enter_recovery; then without
 *     ACK covers more than recover                     SACK tcp_cc_recovery_inflate(3 * mss)
 *   further duplicate ACK in recovery, no SACK       tcp_cc_recovery_inflate(mss)
 *   partial ACK (below recover) in recovery, no SACK tcp_cc_recovery_partial_ack(acked)
 *   partial ACK in recovery with SACK                nothing: cwnd stays, pipe governs
 *   full ACK (covers recover): recovery ends         ops->on_exit_recovery
 *   retransmission timer expired (every expiry)      ops->on_rto; recovery ends without
 *                                                      on_exit_recovery (RFC 6582 step 4)
 *   new data about to go out with nothing in flight  ops->on_idle_restart, once per idle
 *                                                      period
 *
 * So with SACK (RFC 6675 §5) cwnd is ssthresh for the whole recovery and the
 * sender sends while pipe + MSS <= cwnd; without SACK (RFC 5681 §3.2 with RFC
 * 6582) cwnd is inflated by each duplicate ACK and deflated by partial ACKs,
 * and the sender sends while SND.NXT - SND.UNA < cwnd. Both end the same way:
 * on_exit_recovery deflates to min(ssthresh, max(FlightSize, SMSS) + SMSS),
 * option (1) of RFC 6582 §3.2 step 3, which avoids a burst when little is
 * outstanding: we do not pace.
 *
 * Before every ops call the caller sets cc->flight to the bytes sent and not
 * yet cumulatively acknowledged (SND.MAX - SND.UNA, RFC 5681 "FlightSize")
 * after the ACK that triggered the call has been applied; for on_rto that
 * is simply what is outstanding, for on_enter_recovery the same less what
 * limited transmit sent (RFC 5681 §3.2 step 2, RFC 3042). Algorithms use it
 * for ssthresh (RFC 5681 eq. 4, RFC 9438 §4.6), for the post-recovery window,
 * and in on_ack to see whether the window was in use: cwnd only grows while
 * the sender is cwnd-limited (flight + acked, the data outstanding before
 * this ACK, is within one SMSS of cwnd; in slow start at least half of it),
 * as RFC 9438 §5.8 requires of CUBIC and Linux (tcp_is_cwnd_limited) does
 * for every algorithm. An application-limited sender, such as an SMTP
 * server sending short replies, keeps the window it has validated.
 *
 * Units: windows in bytes, times in microseconds on one monotonic clock (the
 * stack's now_us).
 */

/*
 * What every algorithm reads and writes; embedded in the connection. The
 * caller sets flight before each call and reads cwnd and ssthresh; the rest
 * is the algorithm's (mss is set by init). An all-zero value is not usable:
 * call init first.
 */
struct tcp_cc_state {
	uint32_t cwnd;	   /* congestion window, bytes */
	uint32_t ssthresh; /* slow start threshold, bytes; UINT32_MAX until the first loss */
	uint32_t mss;	   /* SMSS: payload bytes of a full-sized segment */
	uint32_t flight;   /* bytes outstanding, set by the caller before each call */
	uint64_t priv[8];  /* algorithm private state (each overlays a struct of uint64_t) */
};

/*
 * One congestion control algorithm. Every hook is required and cannot fail;
 * each leaves cwnd >= 1 SMSS and ssthresh >= 2 SMSS.
 */
struct tcp_cc_ops {
	const char *name; /* "newreno", "cubic": as in the configuration */

	/*
	 * Starts a connection with send MSS MSS (> 0): ssthresh "arbitrarily
	 * high" (RFC 5681 §3.1) and the initial window of RFC 6928 §2,
	 * min(10 * MSS, max(2 * MSS, 14600)). Clears the private area.
	 */
	void (*init)(struct tcp_cc_state *cc, uint32_t mss, uint64_t now_us);

	/*
	 * ACKED (> 0) new bytes were cumulatively acknowledged outside recovery.
	 * SRTT_US is the smoothed RTT (RFC 6298), 0 before the first sample.
	 * Slow start below ssthresh with Appropriate Byte Counting (RFC 3465,
	 * L = 2 SMSS, 1 SMSS in the slow start after an RTO); above it, the
	 * algorithm's congestion avoidance. No growth unless cwnd-limited.
	 */
	void (*on_ack)(struct tcp_cc_state *cc, uint32_t acked, uint32_t srtt_us, uint64_t now_us);

	/*
	 * Loss detected by duplicate ACKs or SACK (fast retransmit). Sets
	 * ssthresh from flight (NewReno: RFC 5681 eq. 4; CUBIC: RFC 9438 §4.6)
	 * and cwnd = ssthresh, the RFC 6675 recovery window; a caller without
	 * SACK then inflates it (see the table above).
	 */
	void (*on_enter_recovery)(struct tcp_cc_state *cc, uint64_t now_us);

	/*
	 * A full ACK ended fast recovery. flight is what is still outstanding.
	 * cwnd = min(ssthresh, max(flight, SMSS) + SMSS) (RFC 6582 §3.2 step 3,
	 * option 1); below ssthresh the connection slow-starts back to it.
	 */
	void (*on_exit_recovery)(struct tcp_cc_state *cc, uint64_t now_us);

	/*
	 * The retransmission timer expired. Call it on every expiry: the first
	 * one after new data was acked sets ssthresh from flight (RFC 5681 eq. 4;
	 * CUBIC with its beta, RFC 9438 §4.8); later expiries of the same backoff
	 * leave ssthresh alone (RFC 5681 §3.1: "held constant"). Every expiry
	 * sets cwnd to the loss window, 1 SMSS.
	 */
	void (*on_rto)(struct tcp_cc_state *cc, uint64_t now_us);

	/*
	 * New data is about to be sent and nothing is in flight. IDLE_US is the
	 * time since data was last sent, RTO_US the current RTO. When idle
	 * exceeds the RTO, cwnd = min(IW, cwnd) (RFC 5681 §4.1 restart window);
	 * ssthresh is kept. CUBIC also moves its epoch so that idle time does
	 * not count as growth time. Call it once after every idle period, short
	 * or long (the algorithm decides), not again before data has been sent.
	 */
	void (*on_idle_restart)(struct tcp_cc_state *cc, uint64_t idle_us, uint32_t rto_us,
				uint64_t now_us);
};

extern const struct tcp_cc_ops tcp_cc_newreno;
extern const struct tcp_cc_ops tcp_cc_cubic;

/* Returns the algorithm for A, or NULL when A is not a known enum tcp_cc_algo value. */
const struct tcp_cc_ops *tcp_cc_get(enum tcp_cc_algo a);

/*
 * Looks an algorithm up by its name ("newreno", "cubic"; exact, lower case).
 * Returns 0 and sets *out, or -ENOENT.
 */
int tcp_cc_by_name(const char *name, enum tcp_cc_algo *out);

/* Fast recovery without SACK, the same for every algorithm. */

/*
 * Adds BYTES to cwnd: 3 * SMSS right after on_enter_recovery (RFC 5681 §3.2
 * step 3, "ssthresh plus 3*SMSS"), then SMSS per further duplicate ACK (step 4).
 * Saturates at UINT32_MAX.
 */
static inline void tcp_cc_recovery_inflate(struct tcp_cc_state *cc, uint32_t bytes)
{
	cc->cwnd = cc->cwnd > UINT32_MAX - bytes ? UINT32_MAX : cc->cwnd + bytes;
}

/*
 * A partial ACK of ACKED new bytes arrived in recovery (RFC 6582 §3.2 step 3,
 * "Partial acknowledgments"): deflate cwnd by ACKED, then add back SMSS if
 * at least SMSS was acked. Never leaves cwnd below SMSS.
 */
static inline void tcp_cc_recovery_partial_ack(struct tcp_cc_state *cc, uint32_t acked)
{
	uint32_t w = cc->cwnd > acked ? cc->cwnd - acked : 0;

	if (acked >= cc->mss)
		w += cc->mss;
	cc->cwnd = w > cc->mss ? w : cc->mss;
}

/*
 * The SYN or SYN-ACK of this connection was retransmitted: the initial window
 * is one segment (RFC 5681 §3.1, last paragraph). Call right after init.
 */
static inline void tcp_cc_syn_was_lost(struct tcp_cc_state *cc)
{
	if (cc->cwnd > cc->mss)
		cc->cwnd = cc->mss;
}

/*
 * For the algorithm files (cc.c): the arithmetic RFC 5681 gives every
 * algorithm, so each file holds only what makes it different.
 */

/* The initial window of RFC 6928 §2 for SMSS MSS, in bytes. */
uint32_t tcp_cc_initial_window(uint32_t mss);

/*
 * Whether the sender was using its window when ACKED bytes were acked (see
 * "cwnd-limited" above): growth is allowed only then.
 */
bool tcp_cc_cwnd_limited(const struct tcp_cc_state *cc, uint32_t acked);

/*
 * Slow start with Appropriate Byte Counting (RFC 3465 §2.2): cwnd grows by
 * min(ACKED, L) with L = 2 SMSS, or 1 SMSS when AFTER_RTO (RFC 3465 §2.3),
 * and stops at ssthresh. Returns the acked bytes left over for congestion
 * avoidance (0 when cwnd is still below ssthresh).
 */
uint32_t tcp_cc_slow_start(struct tcp_cc_state *cc, uint32_t acked, bool after_rto);

/* cwnd = min(ssthresh, max(flight, SMSS) + SMSS): RFC 6582 §3.2 step 3, option (1). */
void tcp_cc_deflate_after_recovery(struct tcp_cc_state *cc);

/* The restart window of RFC 5681 §4.1, applied when IDLE_US > RTO_US. Returns whether it was. */
bool tcp_cc_restart_window(struct tcp_cc_state *cc, uint64_t idle_us, uint32_t rto_us);

#endif
