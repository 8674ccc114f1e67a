/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * SipHash-2-4, written from the paper's description (§2): four 64-bit words
 * of state, two SipRounds per 8-byte message word, four finalisation rounds.
 * Words are read little-endian whatever the host, so results match the
 * paper's test vectors everywhere.
 */
#include <endian.h>
#include <string.h>

#include "dataplane/tcp/siphash.h"

#define ROTL64(x, b) (((x) << (b)) | ((x) >> (64 - (b))))

#define SIPROUND(v0, v1, v2, v3)                                                                   \
	do {                                                                                       \
		v0 += v1;                                                                          \
		v1 = ROTL64(v1, 13);                                                               \
		v1 ^= v0;                                                                          \
		v0 = ROTL64(v0, 32);                                                               \
		v2 += v3;                                                                          \
		v3 = ROTL64(v3, 16);                                                               \
		v3 ^= v2;                                                                          \
		v0 += v3;                                                                          \
		v3 = ROTL64(v3, 21);                                                               \
		v3 ^= v0;                                                                          \
		v2 += v1;                                                                          \
		v1 = ROTL64(v1, 17);                                                               \
		v1 ^= v2;                                                                          \
		v2 = ROTL64(v2, 32);                                                               \
	} while (0)

static inline uint64_t load_le64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

void siphash_key_load(struct siphash_key *key, const uint8_t bytes[16])
{
	key->k0 = load_le64(bytes);
	key->k1 = load_le64(bytes + 8);
}

uint64_t siphash24(const struct siphash_key *key, const void *msg, size_t len)
{
	const uint8_t *p = msg;
	size_t words = len / 8;
	uint64_t v0 = key->k0 ^ 0x736f6d6570736575ull; /* "somepseudorandomlygeneratedbytes" */
	uint64_t v1 = key->k1 ^ 0x646f72616e646f6dull;
	uint64_t v2 = key->k0 ^ 0x6c7967656e657261ull;
	uint64_t v3 = key->k1 ^ 0x7465646279746573ull;
	uint64_t m;

	for (size_t i = 0; i < words; i++) {
		m = load_le64(p + 8 * i);
		v3 ^= m;
		SIPROUND(v0, v1, v2, v3);
		SIPROUND(v0, v1, v2, v3);
		v0 ^= m;
	}

	/* Last word: the 0-7 trailing bytes, zero padded, length mod 256 in the top byte. */
	m = (uint64_t)(len & 0xff) << 56;
	if (words)
		p += 8 * words; /* not when p is NULL: arithmetic on NULL is undefined */
	switch (len & 7) {
	case 7:
		m |= (uint64_t)p[6] << 48;
		/* fallthrough */
	case 6:
		m |= (uint64_t)p[5] << 40;
		/* fallthrough */
	case 5:
		m |= (uint64_t)p[4] << 32;
		/* fallthrough */
	case 4:
		m |= (uint64_t)p[3] << 24;
		/* fallthrough */
	case 3:
		m |= (uint64_t)p[2] << 16;
		/* fallthrough */
	case 2:
		m |= (uint64_t)p[1] << 8;
		/* fallthrough */
	case 1:
		m |= (uint64_t)p[0];
		break;
	case 0:
		break;
	}
	v3 ^= m;
	SIPROUND(v0, v1, v2, v3);
	SIPROUND(v0, v1, v2, v3);
	v0 ^= m;

	v2 ^= 0xff;
	SIPROUND(v0, v1, v2, v3);
	SIPROUND(v0, v1, v2, v3);
	SIPROUND(v0, v1, v2, v3);
	SIPROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}
