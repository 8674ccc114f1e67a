/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * smtp_fmt_u64() (dataplane/smtp/fmt.h), the decimal writer MAIL's SIZE=
 * and BDAT's chunk size go through in both SMTP clients: against
 * snprintf("%llu") at the edges and on a sweep, never a NUL, never past
 * SMTP_U64_DIGITS octets.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "dataplane/smtp/fmt.h"

static void check(uint64_t v)
{
	char want[32];
	char got[SMTP_U64_DIGITS + 8];
	int wn = snprintf(want, sizeof(want), "%" PRIu64, v);

	memset(got, '#', sizeof(got));
	size_t n = smtp_fmt_u64(got, v);

	cr_assert_eq(n, (size_t)wn, "%" PRIu64 ": %zu digits, want %d", v, n, wn);
	cr_assert(memcmp(got, want, n) == 0, "%" PRIu64 ": got %.*s", v, (int)n, got);
	for (size_t i = n; i < sizeof(got); i++)
		cr_assert_eq(got[i], '#', "%" PRIu64 ": wrote past its digits at %zu", v, i);
}

Test(fmt, zero_is_one_digit)
{
	check(0);
}

Test(fmt, the_largest_value_takes_every_digit_there_is_room_for)
{
	check(UINT64_MAX);
	cr_assert_eq(smtp_fmt_u64((char[SMTP_U64_DIGITS]){ 0 }, UINT64_MAX), SMTP_U64_DIGITS);
}

Test(fmt, powers_of_ten_and_their_neighbours_match_printf)
{
	for (uint64_t p = 1; p != 0 && p <= UINT64_MAX / 10; p *= 10) {
		check(p - 1);
		check(p);
		check(p + 1);
	}
}

Test(fmt, a_sweep_of_sizes_matches_printf)
{
	uint64_t x = 0x9e3779b97f4a7c15u;

	for (unsigned i = 0; i < 100000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		check(x >> (i % 64));
	}
}
