/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * CRC32C: hardware (SSE4.2 crc32q) with a slice-by-8 fallback. The tables
 * are built once by a constructor, before any worker runs.
 */
#include <string.h>

#include "dataplane/spool/crc32c.h"

#define CRC32C_POLY 0x82F63B78u /* Castagnoli, bit-reflected */

static uint32_t tab[8][256];
static int have_sse42;

__attribute__((constructor)) static void crc32c_tables(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (CRC32C_POLY & (0u - (c & 1)));
		tab[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			tab[t][i] = (tab[t - 1][i] >> 8) ^ tab[0][tab[t - 1][i] & 0xff];
#if defined(__x86_64__)
	__builtin_cpu_init(); /* GCC: required before __builtin_cpu_supports in a constructor */
	have_sse42 = __builtin_cpu_supports("sse4.2");
#endif
}

uint32_t spool_crc32c_sw(uint32_t crc, const void *p, size_t n)
{
	const uint8_t *b = p;
	uint32_t c = ~crc;

	while (n >= 8) {
		uint64_t w;
		memcpy(&w, b, 8); /* little-endian host: x86_64, aarch64 */
		w ^= c;
		c = tab[7][w & 0xff] ^ tab[6][(w >> 8) & 0xff] ^ tab[5][(w >> 16) & 0xff] ^
		    tab[4][(w >> 24) & 0xff] ^ tab[3][(w >> 32) & 0xff] ^ tab[2][(w >> 40) & 0xff] ^
		    tab[1][(w >> 48) & 0xff] ^ tab[0][w >> 56];
		b += 8;
		n -= 8;
	}
	while (n--)
		c = (c >> 8) ^ tab[0][(c ^ *b++) & 0xff];
	return ~c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const void *p, size_t n)
{
	const uint8_t *b = p;
	uint64_t c = ~crc;

	while (n >= 8) {
		uint64_t w;
		memcpy(&w, b, 8);
		c = __builtin_ia32_crc32di(c, w);
		b += 8;
		n -= 8;
	}
	uint32_t c32 = (uint32_t)c;
	while (n--)
		c32 = __builtin_ia32_crc32qi(c32, *b++);
	return ~c32;
}

uint32_t spool_crc32c(uint32_t crc, const void *p, size_t n)
{
	return have_sse42 ? crc32c_hw(crc, p, n) : spool_crc32c_sw(crc, p, n);
}
#else
uint32_t spool_crc32c(uint32_t crc, const void *p, size_t n)
{
	return spool_crc32c_sw(crc, p, n);
}
#endif
