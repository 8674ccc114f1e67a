/* SPDX-License-Identifier: BSD-3-Clause */
/* Counter names are what operators and dashboards read: keep them unique and stable. */
#include <string.h>

#include <criterion/criterion.h>

#include "dataplane/core/counters.h"

Test(counters, every_counter_and_drop_reason_has_a_unique_name)
{
	for (unsigned i = 0; i < DP_C_MAX; i++) {
		cr_assert_not_null(dp_counter_names[i]);
		for (unsigned j = i + 1; j < DP_C_MAX; j++)
			cr_assert_str_neq(dp_counter_names[i], dp_counter_names[j]);
	}
	for (unsigned i = 0; i < DP_DROP_MAX; i++) {
		cr_assert_not_null(dp_drop_names[i]);
		for (unsigned j = i + 1; j < DP_DROP_MAX; j++)
			cr_assert_str_neq(dp_drop_names[i], dp_drop_names[j]);
	}
}

Test(counters, totals_add_up_per_field)
{
	struct dp_stats a = {0}, b = {0}, snap;
	dp_count(&a, DP_C_RX_PACKETS, 3);
	dp_drop(&a, DP_DROP_ETH_RUNT);
	dp_count(&b, DP_C_RX_PACKETS, 4);
	dp_drop(&b, DP_DROP_ETH_RUNT);
	dp_drop(&b, DP_DROP_TX_FULL);
	dp_stats_read(&b, &snap);
	dp_stats_add(&a, &snap);
	cr_assert_eq(a.c[DP_C_RX_PACKETS], 7);
	cr_assert_eq(a.drop[DP_DROP_ETH_RUNT], 2);
	cr_assert_eq(a.drop[DP_DROP_TX_FULL], 1);
	cr_assert_eq(a.c[DP_C_TX_PACKETS], 0);
}
