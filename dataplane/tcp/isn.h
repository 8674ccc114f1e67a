/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Initial sequence numbers (RFC 6528 §3): ISN = M + F(4-tuple, secret), M a
 * 4 µs clock, F SipHash-2-4. Unpredictable to an off-path attacker, yet
 * increasing for one 4-tuple so a new incarnation starts above the old one's
 * sequence space (RFC 9293 §3.4.1). Also the per-connection timestamp
 * offset, and the stack's secret, shared with the SYN cookies of
 * syncookie.h. Pure functions: no state, no allocation.
 */
#ifndef MX_TCP_ISN_H
#define MX_TCP_ISN_H

#include <stdint.h>

#include "dataplane/tcp/siphash.h"

/*
 * The per-stack secret, derived once from the 32 bytes given to
 * tcp_stack_new(): ISNs and SYN cookies get independent 128-bit keys, so
 * what one reveals (an ISN minus the clock is F itself) says nothing about
 * the other.
 */
struct tcp_secret {
	struct siphash_key isn;	   /* bytes 0-15 of the secret */
	struct siphash_key cookie; /* bytes 16-31 */
};

/* Fills K from SECRET (32 random bytes). Never fails; an all-zero secret works but is public. */
void tcp_secret_init(struct tcp_secret *k, const uint8_t secret[32]);

/*
 * Returns the ISN for a connection from LADDR:LPORT (ours) to RADDR:RPORT
 * (the peer's), all four in network order as they sit in the IPv4 and TCP
 * headers. NOW_US is the worker clock in microseconds; M is NOW_US / 4 and
 * wraps every 2^32 * 4 µs (about 4 h 46 min), so the ISN for one tuple grows
 * by 250,000 per second modulo 2^32.
 */
uint32_t tcp_isn(const struct tcp_secret *k, uint32_t laddr, uint16_t lport, uint32_t raddr,
		 uint16_t rport, uint64_t now_us);

/*
 * Returns the offset to add to our millisecond timestamp clock on the
 * connection LADDR:LPORT - RADDR:RPORT (network order), so TSvals reveal
 * neither our uptime nor a relation between connections (RFC 7323 §7.1,
 * Linux's secure_tcp_ts_off). Constant for a tuple, so a SYN-cookie
 * connection rebuilt from its ACK gets the offset its SYN-ACK used.
 * Independent of tcp_isn()'s F for every tuple, reversed ones included.
 */
uint32_t tcp_ts_offset(const struct tcp_secret *k, uint32_t laddr, uint16_t lport, uint32_t raddr,
		       uint16_t rport);

#endif
