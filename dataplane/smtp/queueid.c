/* SPDX-License-Identifier: BSD-3-Clause */
/* Queue id generator: (time, worker, boot nonce, counter) in Crockford base32. */
#include "dataplane/smtp/queueid.h"

/* Crockford's alphabet: no I, L, O, U, so ids read back unambiguously. */
static const char b32[32] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

void smtp_qid_init(struct smtp_qid_gen *g, unsigned worker, uint64_t boot_nonce)
{
	uint64_t f = boot_nonce ^ (boot_nonce >> 20) ^ (boot_nonce >> 40) ^ (boot_nonce >> 60);
	g->worker = worker & 0xfff;
	g->nonce = (uint32_t)(f & 0xfffff);
	g->counter = 0;
}

void smtp_qid_next(struct smtp_qid_gen *g, uint64_t unix_s, char out[SMTP_QID_LEN + 1])
{
	/* hi: time(36) | worker(12) | nonce(16 high bits) -- 64 bits; lo: nonce(4) | counter(32) */
	uint64_t hi = ((unix_s & 0xfffffffffull) << 28) | ((uint64_t)(g->worker & 0xfff) << 16) |
		      (g->nonce >> 4 & 0xffff);
	uint64_t lo = ((uint64_t)(g->nonce & 0xf) << 32) | g->counter++;

	/* 100 bits = hi(64) lo(36), five at a time from the top */
	for (int i = 0; i < SMTP_QID_LEN; i++) {
		int bit = 99 - 5 * i - 4; /* lowest bit of this digit, counted from bit 0 of lo */
		unsigned v;
		if (bit >= 36)
			v = (unsigned)(hi >> (bit - 36)) & 31;
		else if (bit + 5 <= 36)
			v = (unsigned)(lo >> bit) & 31;
		else /* straddles: low bits from lo's top, high bits from hi's bottom */
			v = (unsigned)(((hi << (36 - bit)) | (lo >> bit)) & 31);
		out[i] = b32[v];
	}
	out[SMTP_QID_LEN] = '\0';
}
