/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The control plane's log under a flood: a burst goes through, then lines
 * are refused at the sustained rate and counted, and the count is handed to
 * the first line that goes through again, so nothing vanishes silently.
 */
#include <criterion/criterion.h>

#include "control/common/log.h"

Test(ctl_log, a_burst_passes_then_the_rest_is_counted)
{
	struct mx_log_limit l = { 0 };
	uint64_t suppressed = 99;

	for (unsigned i = 0; i < MX_LOG_BURST; i++) {
		cr_assert(mx_log_limit_take(&l, 5000, &suppressed), "line %u of the burst", i);
		cr_assert_eq(suppressed, 0);
	}
	for (unsigned i = 0; i < 1000; i++)
		cr_assert_not(mx_log_limit_take(&l, 5000, &suppressed));
	/* 10 ms later: one line's worth at 100/s, carrying the count of the refused */
	cr_assert(mx_log_limit_take(&l, 5010, &suppressed));
	cr_assert_eq(suppressed, 1000);
	cr_assert_not(mx_log_limit_take(&l, 5010, &suppressed));
	cr_assert(mx_log_limit_take(&l, 5020, &suppressed));
	cr_assert_eq(suppressed, 1, "counted again from zero");
}

Test(ctl_log, the_sustained_rate_is_the_configured_one)
{
	struct mx_log_limit l = { 0 };
	uint64_t suppressed, passed = 0;

	/* a flood of one line per millisecond for 10 s after the first burst */
	for (uint64_t t = 0; t < 10000; t++)
		for (int k = 0; k < 5; k++)
			passed += mx_log_limit_take(&l, 1000 + t, &suppressed);
	cr_assert_eq(passed, MX_LOG_BURST + 10 * MX_LOG_RATE - 1, "burst + 10 s at %u/s, got %llu",
		     MX_LOG_RATE, (unsigned long long)passed);
}

Test(ctl_log, a_quiet_spell_refills_the_burst_but_no_more)
{
	struct mx_log_limit l = { 0 };
	uint64_t suppressed;
	unsigned passed = 0;

	while (mx_log_limit_take(&l, 0, &suppressed))
		passed++;
	cr_assert_eq(passed, MX_LOG_BURST);
	passed = 0;
	/* an hour later the bucket is full again, not an hour's worth */
	while (mx_log_limit_take(&l, 3600 * 1000, &suppressed))
		passed++;
	cr_assert_eq(passed, MX_LOG_BURST);
}
