/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Congestion control: the algorithm table, and the RFC 5681 arithmetic that
 * NewReno and CUBIC share (initial and restart windows, slow start with
 * byte counting, the window after recovery).
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "cc.h"

static const struct tcp_cc_ops *const algos[] = {
	[TCP_CC_NEWRENO] = &tcp_cc_newreno,
	[TCP_CC_CUBIC] = &tcp_cc_cubic,
};

const struct tcp_cc_ops *tcp_cc_get(enum tcp_cc_algo a)
{
	if ((unsigned)a >= sizeof(algos) / sizeof(algos[0]))
		return NULL;
	return algos[a];
}

int tcp_cc_by_name(const char *name, enum tcp_cc_algo *out)
{
	for (unsigned i = 0; i < sizeof(algos) / sizeof(algos[0]); i++) {
		if (algos[i] && strcmp(algos[i]->name, name) == 0) {
			*out = (enum tcp_cc_algo)i;
			return 0;
		}
	}
	return -ENOENT;
}

uint32_t tcp_cc_initial_window(uint32_t mss)
{
	/* RFC 6928 §2: min(10*MSS, max(2*MSS, 14600)); 64-bit so a huge MSS cannot wrap. */
	uint64_t lo = 2 * (uint64_t)mss > 14600 ? 2 * (uint64_t)mss : 14600;
	uint64_t iw = 10 * (uint64_t)mss < lo ? 10 * (uint64_t)mss : lo;

	return iw > UINT32_MAX ? UINT32_MAX : (uint32_t)iw;
}

bool tcp_cc_cwnd_limited(const struct tcp_cc_state *cc, uint32_t acked)
{
	uint64_t before = (uint64_t)cc->flight + acked; /* outstanding before this ACK */

	/*
	 * In slow start the window doubles every RTT, so a sender that used
	 * half of it is still probing (Linux tcp_is_cwnd_limited); in
	 * congestion avoidance it must have filled it, give or take the last
	 * segment that did not fit.
	 */
	if (cc->cwnd < cc->ssthresh)
		return 2 * before >= cc->cwnd;
	return before + cc->mss > cc->cwnd;
}

uint32_t tcp_cc_slow_start(struct tcp_cc_state *cc, uint32_t acked, bool after_rto)
{
	/* RFC 3465 §2.3: L = 2 SMSS, but 1 SMSS after an RTO, when one cumulative
	 * ACK may cover data the receiver had long held. */
	uint64_t limit = (after_rto ? 1 : 2) * (uint64_t)cc->mss;
	uint64_t inc = acked < limit ? acked : limit;
	uint64_t room = cc->ssthresh > cc->cwnd ? cc->ssthresh - cc->cwnd : 0;

	if (inc < room) {
		cc->cwnd += (uint32_t)inc;
		return 0;
	}
	/* Reaches ssthresh: congestion avoidance takes over the rest of this ACK. */
	cc->cwnd += (uint32_t)room;
	return acked - (uint32_t)room;
}

void tcp_cc_deflate_after_recovery(struct tcp_cc_state *cc)
{
	uint64_t w = (cc->flight > cc->mss ? cc->flight : cc->mss) + (uint64_t)cc->mss;

	cc->cwnd = w < cc->ssthresh ? (uint32_t)w : cc->ssthresh;
}

bool tcp_cc_restart_window(struct tcp_cc_state *cc, uint64_t idle_us, uint32_t rto_us)
{
	if (idle_us <= rto_us)
		return false;
	/* RFC 5681 §4.1: RW = min(IW, cwnd). */
	uint32_t rw = tcp_cc_initial_window(cc->mss);
	if (cc->cwnd > rw)
		cc->cwnd = rw;
	return true;
}
