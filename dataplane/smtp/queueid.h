/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Queue ids for "250 2.0.0 Ok: queued as <id>": unique across the workers of
 * one process and across restarts, without any coordination. Each worker owns
 * one generator; an id is 100 bits written as 20 characters of Crockford
 * base32, most significant first, so ids sort by time:
 *
 *   seconds since the epoch (36) | worker (12) | boot nonce (20) | counter (32)
 *
 * Within one boot an id never repeats: the counter would need 2^32 messages
 * on one worker within one second. Across boots the 20-bit nonce (folded from
 * the 64-bit one given at start) separates two runs that share a second.
 */
#ifndef MX_SMTP_QUEUEID_H
#define MX_SMTP_QUEUEID_H

#include <stdint.h>

#define SMTP_QID_LEN 20

/* One worker's generator. All-zero is valid (worker 0, nonce 0). */
struct smtp_qid_gen {
	uint32_t worker; /* 12 bits used */
	uint32_t nonce;	 /* 20 bits used */
	uint32_t counter;
};

/* Prepares G for worker WORKER (0..4095) with the process's random BOOT_NONCE. */
void smtp_qid_init(struct smtp_qid_gen *g, unsigned worker, uint64_t boot_nonce);

/* Writes the next id for wall-clock second UNIX_S into OUT (NUL-terminated). */
void smtp_qid_next(struct smtp_qid_gen *g, uint64_t unix_s, char out[SMTP_QID_LEN + 1]);

#endif
