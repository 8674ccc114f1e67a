/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * SipHash-2-4 (Aumasson and Bernstein, "SipHash: a fast short-input PRF",
 * 2012): the keyed PRF behind TCP initial sequence numbers and SYN cookies.
 * Short inputs, no allocation, no state between calls.
 */
#ifndef MX_TCP_SIPHASH_H
#define MX_TCP_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

/* A 128-bit key: k0 is bytes 0-7 of the key read little-endian, k1 bytes 8-15. */
struct siphash_key {
	uint64_t k0, k1;
};

/* Loads a key from 16 bytes as the paper's reference code does (little-endian halves). */
void siphash_key_load(struct siphash_key *key, const uint8_t bytes[16]);

/*
 * Returns SipHash-2-4 of the LEN bytes at MSG under KEY, as the 64-bit integer
 * of the paper (its little-endian encoding is the byte string of the test
 * vectors). MSG may be NULL when LEN is 0.
 */
uint64_t siphash24(const struct siphash_key *key, const void *msg, size_t len);

#endif
