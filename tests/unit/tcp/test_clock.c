/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The stack's clock (dataplane/tcp/timers.c, tcp_priv.h): TSC values become
 * microseconds by a multiply and a shift prepared once per stack, with no
 * division left on the poll loop. It must give exactly what the division
 * TSC / (hz / 10^6) gives, for every TSC value up to 2^64 - 1 and for the
 * clock rates machines have. Pure arithmetic: no EAL, no mbufs.
 */
#include <stdint.h>

#include <criterion/criterion.h>

#include "dataplane/tcp/tcp_priv.h"

/* Clock rates: virtual clocks, round and odd TSC rates, and a few awkward divisors. */
static const uint64_t rates[] = {
	1000000ull,           /* a microsecond clock: the divisor is 1 */
	2000000ull,           /* a power of two */
	1000000000ull,        /* the tests' virtual nanosecond clock */
	1999999999ull,        /* just under a power-of-two multiple of 10^6 */
	2095078125ull,        /* a TSC whose rate is not a whole number of MHz */
	2400000000ull,
	2899999000ull,
	3000000000ull,
	3192614000ull,
	4294967296ull,        /* 2^32 Hz */
	5000000000ull,
	67108864000000ull,    /* a divisor of exactly 2^26 */
	1000000000000000ull,  /* a divisor of 10^9 */
};

/* xorshift64*: the same values every run */
static uint64_t next(uint64_t *x)
{
	*x ^= *x >> 12;
	*x ^= *x << 25;
	*x ^= *x >> 27;
	return *x * 2685821657736338717ull;
}

/* Counts the values where the clock disagrees with the division; prints the first. */
static unsigned check(const struct tcp_clock *k, uint64_t hz, uint64_t tsc, unsigned bad)
{
	uint64_t want = tsc / (hz / 1000000);
	uint64_t got = tcp_clock_us(k, tsc);
	if (got != want && bad == 0)
		cr_log_error("hz %lu: tsc %lu gives %lu us, the division %lu", (unsigned long)hz,
			     (unsigned long)tsc, (unsigned long)got, (unsigned long)want);
	return bad + (got != want);
}

Test(clock, microseconds_match_the_division_for_small_values)
{
	for (unsigned r = 0; r < sizeof(rates) / sizeof(rates[0]); r++) {
		struct tcp_clock k;
		tcp_clock_init(&k, rates[r]);
		cr_assert_eq(k.tsc_per_us, rates[r] / 1000000, "the timers' TSC per microsecond");
		unsigned bad = 0;
		for (uint64_t t = 0; t < 100000; t++)
			bad = check(&k, rates[r], t, bad);
		cr_expect_eq(bad, 0, "hz %lu: %u of the first 100000 values differ",
			     (unsigned long)rates[r], bad);
	}
}

Test(clock, microseconds_match_the_division_at_every_boundary)
{
	/* each side of multiples of the divisor, where a rounding error would show first */
	uint64_t x = 0x9e3779b97f4a7c15ull;
	for (unsigned r = 0; r < sizeof(rates) / sizeof(rates[0]); r++) {
		struct tcp_clock k;
		tcp_clock_init(&k, rates[r]);
		uint64_t d = k.tsc_per_us;
		unsigned bad = 0;
		for (unsigned i = 0; i < 200000; i++) {
			uint64_t q = next(&x) % (UINT64_MAX / d);
			for (int delta = -1; delta <= 1; delta++)
				bad = check(&k, rates[r], q * d + (uint64_t)delta, bad);
		}
		cr_expect_eq(bad, 0, "hz %lu: %u boundary values differ", (unsigned long)rates[r],
			     bad);
	}
}

Test(clock, microseconds_match_the_division_up_to_the_largest_tsc)
{
	/* a TSC runs for centuries before 2^64; the product must not overflow anywhere */
	uint64_t x = 12345;
	for (unsigned r = 0; r < sizeof(rates) / sizeof(rates[0]); r++) {
		struct tcp_clock k;
		tcp_clock_init(&k, rates[r]);
		unsigned bad = 0;
		for (uint64_t t = 0; t < 100000; t++) {
			bad = check(&k, rates[r], UINT64_MAX - t, bad);
			bad = check(&k, rates[r], (1ull << 63) + t - 50000, bad);
			bad = check(&k, rates[r], (1ull << 32) + t - 50000, bad);
		}
		for (unsigned i = 0; i < 1000000; i++)
			bad = check(&k, rates[r], next(&x), bad);
		for (unsigned b = 0; b < 64; b++)
			bad = check(&k, rates[r], 1ull << b, bad);
		cr_expect_eq(bad, 0, "hz %lu: %u large values differ", (unsigned long)rates[r],
			     bad);
	}
}

Test(clock, a_clock_slower_than_a_megahertz_counts_one_microsecond_per_unit)
{
	/* hz / 10^6 would be 0: the stack takes 1 rather than dividing by zero */
	struct tcp_clock k;
	tcp_clock_init(&k, 1000);
	cr_expect_eq(k.tsc_per_us, 1);
	cr_expect_eq(tcp_clock_us(&k, 0), 0);
	cr_expect_eq(tcp_clock_us(&k, 123456789), 123456789);
	cr_expect_eq(tcp_clock_us(&k, UINT64_MAX), UINT64_MAX);
}
