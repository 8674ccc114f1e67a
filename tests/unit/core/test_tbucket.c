/* SPDX-License-Identifier: BSD-3-Clause */
/* The token bucket behind ICMP rate limits. */
#include <criterion/criterion.h>

#include "dataplane/core/tbucket.h"

#define HZ 1000000000ull

Test(tbucket, a_full_bucket_allows_exactly_its_burst)
{
	struct tbucket b;
	tbucket_init(&b, 100, 10, HZ, 0);
	for (int i = 0; i < 10; i++)
		cr_assert(tbucket_take(&b, 0));
	cr_assert_not(tbucket_take(&b, 0));
}

Test(tbucket, tokens_come_back_at_the_configured_rate)
{
	struct tbucket b;
	tbucket_init(&b, 100, 10, HZ, 0);
	for (int i = 0; i < 10; i++)
		tbucket_take(&b, 0);
	cr_assert_not(tbucket_take(&b, HZ / 200), "half a token after 5 ms at 100/s");
	cr_assert(tbucket_take(&b, HZ / 100), "one token after 10 ms");
	cr_assert_not(tbucket_take(&b, HZ / 100));
	/* a long pause refills only up to the burst */
	int n = 0;
	while (tbucket_take(&b, 100 * HZ))
		n++;
	cr_assert_eq(n, 10);
}

Test(tbucket, rate_zero_means_unlimited)
{
	struct tbucket b;
	tbucket_init(&b, 0, 1, HZ, 0);
	for (int i = 0; i < 100000; i++)
		cr_assert(tbucket_take(&b, 0));
}

Test(tbucket, a_clock_that_goes_backwards_does_not_mint_tokens)
{
	struct tbucket b;
	tbucket_init(&b, 100, 1, HZ, 5 * HZ);
	cr_assert(tbucket_take(&b, 5 * HZ));
	cr_assert_not(tbucket_take(&b, 4 * HZ));
}
