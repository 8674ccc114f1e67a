/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * SYN cookies (RFC 4987 §3.6): when the SYN backlog is full, the listener
 * answers a SYN without keeping state, encoding what it must remember in the
 * ISN of its SYN-ACK (and, with timestamps, in its TSval), and rebuilds the
 * connection from the client's ACK. Pure functions over the stack's secret
 * (isn.h) and a clock: no state, no allocation.
 *
 * The cookie (our ISN), modelled on Linux net/ipv4/syncookies.c and FreeBSD
 * tcp_syncache.c but our own layout:
 *
 *    31                                      5 4    3 2     0
 *   +-----------------------------------------+------+-------+
 *   |                 MAC (27 bits)           | slot |  mss  |
 *   +-----------------------------------------+------+-------+
 *
 * - slot: the low 2 bits of the time slot, now_s / 64. A cookie is accepted
 *   in its own slot and the next three, so it lives between 192 and 256 s.
 * - mss: index into tcp_syncookie_mss_table; the client's MSS rounds down.
 * - MAC: the top 27 bits of SipHash-2-4 (cookie key) over the 4-tuple, the
 *   client's ISN, the full slot number and the mss index, so neither of the
 *   two clear fields can be altered, and a forged cookie passes with
 *   probability 2^-27 per try.
 *
 * Options that do not fit: with timestamps, the low 5 bits of our SYN-ACK's
 * TSval carry them and come back in the ACK's TSecr: bits 0-3 the client's
 * window shift (15 = none), bit 4 SACK-permitted. No ECN bit: we do not
 * negotiate ECN. These bits are not covered by the MAC, as in Linux: they
 * only describe the sender's own connection. Without timestamps there is
 * nowhere to keep them, so the connection gets no window scaling and no
 * SACK, the limitation RFC 4987 §3.6 describes: windows stay under 64 KiB
 * and loss recovery is NewReno's. This only applies while cookies are in
 * use, i.e. while the SYN backlog is full.
 *
 * Server-speaks-first caveat: an SMTP client whose final ACK is lost waits
 * for our 220 and sends nothing that could carry the cookie again, so the
 * connection stalls until the client's greeting timeout. Cookies are for
 * floods only; keep syn_backlog large enough for normal load.
 */
#ifndef MX_TCP_SYNCOOKIE_H
#define MX_TCP_SYNCOOKIE_H

#include <stdbool.h>
#include <stdint.h>

#include "dataplane/tcp/isn.h"

#define TCP_SYNCOOKIE_SLOT_SHIFT 6 /* 64-second slots */
#define TCP_SYNCOOKIE_SLOTS	 4 /* accepted: the cookie's slot and the next 3 */
#define TCP_SYNCOOKIE_TS_BITS	 5 /* low TSval bits that carry options */
#define TCP_SYNCOOKIE_MSS_N	 8

/*
 * The MSS values a cookie can carry, ascending (bytes of TCP payload):
 *  536   no MSS option (RFC 9293 §3.7.1), and the floor: every host takes it
 *  1220  1280-byte paths (IPv6 minimum MTU, tunnels, 464XLAT)
 *  1300  mobile carriers and GRE/IPsec clamps
 *  1380  VPN concentrators' default clamp
 *  1440  IPv6 on Ethernet, IPv4 behind some tunnels
 *  1452  PPPoE (1492-byte MTU)
 *  1460  IPv4 on Ethernet: nearly all SMTP peers
 *  8960  9000-byte jumbo frames (internal MTAs on a jumbo LAN)
 */
extern const uint16_t tcp_syncookie_mss_table[TCP_SYNCOOKIE_MSS_N];

/* What the listener saw in the SYN. All-zero means no options at all (MSS 536). */
struct tcp_syncookie_in {
	uint32_t laddr;	     /* ours, network order */
	uint32_t raddr;	     /* the client's, network order */
	uint16_t lport;	     /* network order */
	uint16_t rport;	     /* network order */
	uint32_t client_isn; /* SEG.SEQ of the SYN, host order */
	uint16_t mss;	     /* the client's MSS option, host order; 0 when absent */
	bool has_ws;	     /* the SYN carried a window scale option */
	uint8_t wscale;	     /* its shift count; above 14 counts as 14 (RFC 7323 §2.3) */
	bool sack_ok;	     /* the SYN carried SACK-permitted */
	bool has_ts;	     /* the SYN carried timestamps: our SYN-ACK will too */
};

/* What the listener sees in the ACK that completes the handshake. */
struct tcp_syncookie_check_in {
	uint32_t laddr;	     /* ours, network order */
	uint32_t raddr;	     /* the client's, network order */
	uint16_t lport;	     /* network order */
	uint16_t rport;	     /* network order */
	uint32_t client_isn; /* SEG.SEQ - 1, host order */
	uint32_t cookie;     /* SEG.ACK - 1, host order: our ISN */
	bool has_ts;	     /* the ACK carried a timestamp option */
	uint32_t tsecr;	     /* its TSecr, host order, when has_ts */
};

/* The connection rebuilt from a valid cookie. */
struct tcp_syncookie_opts {
	uint16_t mss;	/* a tcp_syncookie_mss_table entry: at most the client's MSS */
	bool has_ws;	/* window scaling on (only with timestamps) */
	uint8_t wscale; /* the client's shift count, 0-14, when has_ws */
	bool sack_ok;	/* SACK permitted (only with timestamps) */
	bool has_ts;	/* timestamps on */
};

/*
 * Returns the cookie to use as our ISN in the SYN-ACK answering IN at NOW_S
 * (the worker clock in seconds). The MSS it carries is the largest table
 * entry not above in->mss (536 for anything smaller, or no option).
 * Retransmitted SYNs in the same slot get the same cookie.
 */
uint32_t tcp_syncookie_make(const struct tcp_secret *k, const struct tcp_syncookie_in *in,
			    uint64_t now_s);

/* Returns the MSS a cookie made from IN carries: the tcp_syncookie_mss_table entry for in->mss. */
uint16_t tcp_syncookie_mss_of(const struct tcp_syncookie_in *in);

/*
 * Returns the TSval for that SYN-ACK when in->has_ts: TS_NOW (our timestamp
 * clock) with its low TCP_SYNCOOKIE_TS_BITS replaced by in's window scale
 * and SACK, moved back by 32 if that put it ahead of TS_NOW, so our later
 * TSvals never go backwards (the peer's PAWS would drop them). Returns
 * TS_NOW unchanged when !in->has_ts.
 */
uint32_t tcp_syncookie_tsval(const struct tcp_syncookie_in *in, uint32_t ts_now);

/*
 * Checks the cookie of the handshake-completing ACK described by IN at
 * NOW_S (same clock as tcp_syncookie_make). Returns 0 and fills *OUT when
 * the cookie is ours for this 4-tuple and client ISN and at most 3 slots
 * old; returns -1 otherwise (bad MAC and expired are indistinguishable by
 * design), leaving *OUT untouched. The caller counts and drops (or resets).
 */
int tcp_syncookie_check(const struct tcp_secret *k, const struct tcp_syncookie_check_in *in,
			uint64_t now_s, struct tcp_syncookie_opts *out);

#endif
