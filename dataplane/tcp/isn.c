/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * RFC 6528 initial sequence numbers, timestamp offsets, and the derivation
 * of the stack's secret. F is the low 32 bits of SipHash-2-4 over the
 * 4-tuple: a keyed PRF in place of the RFC's MD5 example, as Linux does.
 */
#include <string.h>

#include "dataplane/tcp/isn.h"

void tcp_secret_init(struct tcp_secret *k, const uint8_t secret[32])
{
	siphash_key_load(&k->isn, secret);
	siphash_key_load(&k->cookie, secret + 16);
}

/*
 * The message F reads: the tuple in header byte order (so F does not depend
 * on the host's endianness) and a tag that keeps the ISN and the timestamp
 * offset apart.
 */
static uint32_t tuple_prf(const struct tcp_secret *k, uint8_t tag, uint32_t laddr, uint16_t lport,
			  uint32_t raddr, uint16_t rport)
{
	uint8_t msg[13];

	memcpy(msg, &laddr, 4);
	memcpy(msg + 4, &raddr, 4);
	memcpy(msg + 8, &lport, 2);
	memcpy(msg + 10, &rport, 2);
	msg[12] = tag;
	return (uint32_t)siphash24(&k->isn, msg, sizeof(msg));
}

uint32_t tcp_isn(const struct tcp_secret *k, uint32_t laddr, uint16_t lport, uint32_t raddr,
		 uint16_t rport, uint64_t now_us)
{
	return (uint32_t)(now_us >> 2) + tuple_prf(k, 'I', laddr, lport, raddr, rport);
}

uint32_t tcp_ts_offset(const struct tcp_secret *k, uint32_t laddr, uint16_t lport, uint32_t raddr,
		       uint16_t rport)
{
	return tuple_prf(k, 'T', laddr, lport, raddr, rport);
}
