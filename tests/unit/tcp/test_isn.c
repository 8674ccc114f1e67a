/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * RFC 6528 ISNs: they follow the 4 µs clock for one 4-tuple, and are
 * unrelated across 4-tuples and across secrets.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "dataplane/tcp/isn.h"

#define SEC 1000000ull /* microseconds */

static struct tcp_secret secret_from(uint8_t seed)
{
	uint8_t b[32];
	struct tcp_secret k;

	for (int i = 0; i < 32; i++)
		b[i] = (uint8_t)(seed * 31 + i * 7 + 1);
	tcp_secret_init(&k, b);
	return k;
}

/* splitmix64: a fixed sequence, so every run tests the same values. */
static uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

struct tuple {
	uint32_t laddr, raddr;
	uint16_t lport, rport;
};

static const struct tuple base = {
	.laddr = 0x0a6433cb, /* 203.0.113.10 as it sits in the header (ne) */
	.raddr = 0x146433c6, /* 198.51.100.20 */
	.lport = 0x1900,     /* 25 */
	.rport = 0x39d9,     /* 55609 */
};

static uint32_t isn_of(const struct tcp_secret *k, struct tuple t, uint64_t now_us)
{
	return tcp_isn(k, t.laddr, t.lport, t.raddr, t.rport, now_us);
}

Test(isn, for_one_tuple_it_advances_one_per_4_microseconds)
{
	struct tcp_secret k = secret_from(1);
	uint64_t t0 = 12345 * SEC;
	uint32_t a = isn_of(&k, base, t0);

	cr_assert_eq(isn_of(&k, base, t0 + 3), a, "same 4 µs tick");
	cr_assert_eq(isn_of(&k, base, t0 + 4), a + 1);
	cr_assert_eq(isn_of(&k, base, t0 + SEC), a + 250000, "250,000 per second");
	cr_assert_eq(isn_of(&k, base, t0 + 60 * SEC), a + 60 * 250000);
}

Test(isn, a_later_connection_on_the_same_tuple_starts_above_the_earlier)
{
	struct tcp_secret k = secret_from(2);

	for (uint64_t t = 0; t < 3600 * SEC; t += 7 * SEC + 12345) {
		uint32_t a = isn_of(&k, base, t);
		uint32_t b = isn_of(&k, base, t + 100000);

		cr_assert_gt((int32_t)(b - a), 0, "at t=%llu us", (unsigned long long)t);
	}
}

Test(isn, is_monotonic_for_a_tuple_over_a_long_run_except_at_the_32_bit_wrap)
{
	struct tcp_secret k = secret_from(3);
	uint64_t s = 42, t = 0, end = 24 * 3600 * SEC;
	uint32_t prev = isn_of(&k, base, 0);
	unsigned wraps = 0;

	while (t < end) {
		uint64_t step = 4 + rnd(&s) % (2 * SEC);
		uint32_t cur = isn_of(&k, base, t + step);

		/* exactly the clock's advance, modulo 2^32 */
		cr_assert_eq(cur - prev, (uint32_t)(((t + step) >> 2) - (t >> 2)));
		if (cur <= prev)
			wraps++;
		prev = cur;
		t += step;
	}
	/* 2^32 ticks of 4 µs is 4 h 46 min: a day wraps 5 or 6 times depending on F */
	cr_assert(wraps == 5 || wraps == 6, "%u wraps in 24 h", wraps);
}

Test(isn, differs_when_any_field_of_the_tuple_changes)
{
	struct tcp_secret k = secret_from(4);
	uint64_t now = 777 * SEC;
	uint32_t a = isn_of(&k, base, now);
	struct tuple t;

	t = base;
	t.laddr ^= htonl(1);
	cr_assert_neq(isn_of(&k, t, now), a, "local address");
	t = base;
	t.raddr ^= htonl(1);
	cr_assert_neq(isn_of(&k, t, now), a, "remote address");
	t = base;
	t.lport ^= htons(1);
	cr_assert_neq(isn_of(&k, t, now), a, "local port");
	t = base;
	t.rport ^= htons(1);
	cr_assert_neq(isn_of(&k, t, now), a, "remote port");
	t = base;
	t.laddr = base.raddr;
	t.raddr = base.laddr;
	t.lport = base.rport;
	t.rport = base.lport;
	cr_assert_neq(isn_of(&k, t, now), a, "the reversed direction");
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

Test(isn, is_spread_over_32_bits_across_many_tuples)
{
	enum {
		N = 50000
	};
	static uint32_t v[N];
	struct tcp_secret k = secret_from(5);
	unsigned same = 0, top_bit = 0;

	/* one instant, every client port of one peer: what a scanner sees */
	for (int i = 0; i < N; i++) {
		struct tuple t = base;

		t.rport = htons((uint16_t)(1024 + i));
		v[i] = isn_of(&k, t, 1000 * SEC);
		top_bit += v[i] >> 31;
	}
	qsort(v, N, sizeof(v[0]), cmp_u32);
	for (int i = 1; i < N; i++)
		same += v[i] == v[i - 1];
	/* N^2/2 / 2^32 = 0.29 expected collisions; P(more than 3) < 0.03% */
	cr_assert_leq(same, 3);
	/* binomial(N, 1/2): sd 112, so +-1000 is 9 sd */
	cr_assert(top_bit > N / 2 - 1000 && top_bit < N / 2 + 1000, "top bit set %u/%d", top_bit,
		  N);
}

Test(isn, differs_across_secrets)
{
	struct tcp_secret k1 = secret_from(6), k2 = secret_from(7);
	unsigned same = 0;

	for (uint64_t t = 0; t < 1000; t++)
		same += isn_of(&k1, base, t * SEC) == isn_of(&k2, base, t * SEC);
	cr_assert_eq(same, 0);
}

Test(isn, depends_only_on_the_first_half_of_the_secret)
{
	uint8_t b[32];
	struct tcp_secret k1, k2;

	memset(b, 0x5a, sizeof(b));
	tcp_secret_init(&k1, b);
	b[20] ^= 1; /* the cookie key */
	tcp_secret_init(&k2, b);
	cr_assert_eq(isn_of(&k1, base, 99 * SEC), isn_of(&k2, base, 99 * SEC));
	b[3] ^= 1; /* the ISN key */
	tcp_secret_init(&k2, b);
	cr_assert_neq(isn_of(&k1, base, 99 * SEC), isn_of(&k2, base, 99 * SEC));
}

Test(isn, the_timestamp_offset_is_fixed_for_a_tuple_and_unrelated_to_its_isn)
{
	struct tcp_secret k = secret_from(8);
	struct tuple t = base, rev = { base.raddr, base.laddr, base.rport, base.lport };
	uint32_t off = tcp_ts_offset(&k, t.laddr, t.lport, t.raddr, t.rport);

	cr_assert_eq(tcp_ts_offset(&k, t.laddr, t.lport, t.raddr, t.rport), off);
	cr_assert_neq(off, isn_of(&k, t, 0), "not F of the ISN");
	cr_assert_neq(off, isn_of(&k, rev, 0), "not F of the reversed tuple's ISN");
	t.rport ^= htons(1);
	cr_assert_neq(tcp_ts_offset(&k, t.laddr, t.lport, t.raddr, t.rport), off,
		      "another connection");
}
