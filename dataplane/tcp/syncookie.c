/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * SYN cookies: encoding and checking of the layout described in
 * syncookie.h. One SipHash per make and per check: the slot bits in the
 * cookie say which slot to try, so a flood of forged ACKs costs one MAC
 * each and gets one 2^-27 chance each.
 */
#include <string.h>

#include "dataplane/tcp/syncookie.h"

#define MSS_BITS   3
#define SLOT_BITS  2
#define MAC_SHIFT  (MSS_BITS + SLOT_BITS) /* the MAC takes the remaining 27 bits */
#define MSS_MASK   ((1u << MSS_BITS) - 1)
#define SLOT_MASK  ((1u << SLOT_BITS) - 1)
#define TS_MASK	   ((1u << TCP_SYNCOOKIE_TS_BITS) - 1)
#define TS_WS_MASK 0xfu /* bits 0-3: window shift */
#define TS_WS_NONE 0xfu /* no window scaling */
#define TS_SACK	   0x10u

_Static_assert(TCP_SYNCOOKIE_MSS_N == 1u << MSS_BITS, "every mss index must be valid");
_Static_assert(TCP_SYNCOOKIE_SLOTS == 1u << SLOT_BITS, "slot bits must cover the window");

const uint16_t tcp_syncookie_mss_table[TCP_SYNCOOKIE_MSS_N] = {
	536, 1220, 1300, 1380, 1440, 1452, 1460, 8960,
};

/* The MAC over everything the cookie vouches for, in its top 27 bits, zeros below. */
static uint32_t cookie_mac(const struct tcp_secret *k, uint32_t laddr, uint16_t lport,
			   uint32_t raddr, uint16_t rport, uint32_t client_isn, uint32_t slot,
			   unsigned mss_idx)
{
	uint8_t msg[21];

	memcpy(msg, &laddr, 4);
	memcpy(msg + 4, &raddr, 4);
	memcpy(msg + 8, &lport, 2);
	memcpy(msg + 10, &rport, 2);
	memcpy(msg + 12, &client_isn, 4);
	memcpy(msg + 16, &slot, 4);
	msg[20] = (uint8_t)mss_idx;
	return (uint32_t)(siphash24(&k->cookie, msg, sizeof(msg)) >> 32) & ~((1u << MAC_SHIFT) - 1);
}

static unsigned mss_index(uint16_t mss)
{
	unsigned i = TCP_SYNCOOKIE_MSS_N - 1;

	while (i > 0 && tcp_syncookie_mss_table[i] > mss)
		i--;
	return i;
}

uint16_t tcp_syncookie_mss_of(const struct tcp_syncookie_in *in)
{
	return tcp_syncookie_mss_table[mss_index(in->mss)];
}

uint32_t tcp_syncookie_make(const struct tcp_secret *k, const struct tcp_syncookie_in *in,
			    uint64_t now_s)
{
	uint32_t slot = (uint32_t)(now_s >> TCP_SYNCOOKIE_SLOT_SHIFT);
	unsigned idx = mss_index(in->mss);

	return cookie_mac(k, in->laddr, in->lport, in->raddr, in->rport, in->client_isn, slot,
			  idx) |
	       (slot & SLOT_MASK) << MSS_BITS | idx;
}

uint32_t tcp_syncookie_tsval(const struct tcp_syncookie_in *in, uint32_t ts_now)
{
	uint32_t opts, ts;

	if (!in->has_ts)
		return ts_now;
	opts = in->has_ws ? (in->wscale > 14 ? 14u : in->wscale) : TS_WS_NONE;
	if (in->sack_ok)
		opts |= TS_SACK;
	ts = (ts_now & ~TS_MASK) | opts;
	if ((int32_t)(ts - ts_now) > 0)
		ts -= TS_MASK + 1;
	return ts;
}

int tcp_syncookie_check(const struct tcp_secret *k, const struct tcp_syncookie_check_in *in,
			uint64_t now_s, struct tcp_syncookie_opts *out)
{
	uint32_t now_slot = (uint32_t)(now_s >> TCP_SYNCOOKIE_SLOT_SHIFT);
	/*
	 * The cookie's slot is the latest one at or before now with its low bits:
	 * 0-3 slots old. Anything older aliases to a younger slot and fails the MAC,
	 * which covers the full slot number.
	 */
	uint32_t age = (now_slot - (in->cookie >> MSS_BITS)) & SLOT_MASK;
	unsigned idx = in->cookie & MSS_MASK;
	uint32_t mac = cookie_mac(k, in->laddr, in->lport, in->raddr, in->rport, in->client_isn,
				  now_slot - age, idx);

	if (mac != (in->cookie & ~((1u << MAC_SHIFT) - 1)))
		return -1;

	out->mss = tcp_syncookie_mss_table[idx];
	out->has_ts = in->has_ts;
	out->has_ws = false;
	out->wscale = 0;
	out->sack_ok = false;
	if (in->has_ts) {
		uint32_t ws = in->tsecr & TS_WS_MASK;

		if (ws != TS_WS_NONE) {
			/* 15 is "none"; the 4 bits cannot say more than 14 otherwise. */
			out->has_ws = true;
			out->wscale = (uint8_t)ws;
		}
		out->sack_ok = (in->tsecr & TS_SACK) != 0;
	}
	return 0;
}
