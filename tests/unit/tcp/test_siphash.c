/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * SipHash-2-4 against the reference vectors (key 00..0f, message 00..n-1),
 * the same the paper's appendix and OpenSSL's SIPHASH MAC give.
 */
#include <string.h>

#include <criterion/criterion.h>

#include "dataplane/tcp/siphash.h"

static struct siphash_key ref_key(void)
{
	uint8_t b[16];
	struct siphash_key k;

	for (int i = 0; i < 16; i++)
		b[i] = (uint8_t)i;
	siphash_key_load(&k, b);
	return k;
}

Test(siphash, matches_the_reference_vectors_for_every_tail_length)
{
	static const struct {
		size_t len;
		uint64_t out;
	} v[] = {
		{ 0, 0x726fdb47dd0e0e31ull },  { 1, 0x74f839c593dc67fdull },
		{ 7, 0xab0200f58b01d137ull },  { 8, 0x93f5f5799a932462ull },
		{ 15, 0xa129ca6149be45e5ull }, { 21, 0xd0f2cbb02e3b67c7ull },
		{ 63, 0x958a324ceb064572ull },
	};
	struct siphash_key k = ref_key();
	uint8_t msg[64];

	for (int i = 0; i < 64; i++)
		msg[i] = (uint8_t)i;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		cr_assert_eq(siphash24(&k, msg, v[i].len), v[i].out, "length %zu", v[i].len);
}

Test(siphash, an_empty_message_may_be_null)
{
	struct siphash_key k = ref_key();

	cr_assert_eq(siphash24(&k, NULL, 0), 0x726fdb47dd0e0e31ull);
}

Test(siphash, unaligned_input_hashes_the_same)
{
	struct siphash_key k = ref_key();
	uint8_t buf[64 + 1];

	for (int i = 0; i < 64; i++)
		buf[i + 1] = (uint8_t)i;
	cr_assert_eq(siphash24(&k, buf + 1, 63), 0x958a324ceb064572ull);
}

Test(siphash, the_key_changes_the_output)
{
	struct siphash_key k = ref_key();
	struct siphash_key k2 = k;

	k2.k1 ^= 1;
	cr_assert_neq(siphash24(&k, "mxgate", 6), siphash24(&k2, "mxgate", 6));
}
