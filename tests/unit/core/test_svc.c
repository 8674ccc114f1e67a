/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The rows of /mxgate/sessions and /mxgate/queue pages (core/svc.h): values
 * are kept as printable ASCII, a row ends with its cursor, and a page is cut
 * by the octets its rows take in telemetry's JSON, so a reply never
 * outgrows DPDK's 16 KiB: fat rows make a shorter page, never a cut row.
 */
#include <string.h>

#include <criterion/criterion.h>

#include "dataplane/core/svc.h"

static struct dp_svc_page p;

static void fill(unsigned rows, unsigned cols, size_t len)
{
	char s[DP_SVC_STR_MAX];

	memset(&p, 0, sizeof(p));
	memset(s, 'x', len);
	s[len] = '\0';
	for (unsigned r = 0; r < rows; r++) {
		for (unsigned c = 0; c < cols; c++)
			dp_svc_str(&p, "sender", s);
		dp_svc_int(&p, "id", 12345);
		dp_svc_row_end(&p, r + 1);
	}
}

Test(core_svc, thin_rows_fill_the_page_and_fat_rows_cut_it_short)
{
	fill(DP_SVC_ROWS, 1, 20);
	cr_assert_eq(p.nrows, DP_SVC_ROWS);
	cr_assert_eq(dp_svc_rows_fitting(&p, DP_SVC_REPLY_BUDGET), DP_SVC_ROWS);

	fill(DP_SVC_ROWS, DP_SVC_COLS - 1, DP_SVC_STR_MAX - 1);
	unsigned n = dp_svc_rows_fitting(&p, DP_SVC_REPLY_BUDGET);
	cr_assert_geq(n, 1, "one full row always fits");
	cr_assert_lt(n, DP_SVC_ROWS);
	/* each row: "rowNN":{ } plus 13 x ("sender": 129 octets) plus "id":12345 */
	size_t row = 1 + sizeof("\"row31\":{}") - 1 + 13 * (6 + 4 + 127 + 2) + (2 + 4 + 5);
	cr_assert_eq(n, DP_SVC_REPLY_BUDGET / row, "%u rows of %zu octets", n, row);
	cr_assert_eq(dp_svc_rows_fitting(&p, row - 1), 0);
	cr_assert_eq(dp_svc_rows_fitting(&p, row), 1);
}

Test(core_svc, strings_are_kept_printable_and_cut_to_fit)
{
	char big[300];

	memset(&p, 0, sizeof(p));
	dp_svc_str(&p, "a", "q\"uo\\te\r\n\xc3\xa9");
	memset(big, 'y', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	dp_svc_str(&p, "b", big);
	dp_svc_str(&p, "c", NULL);
	cr_assert_str_eq(p.rows[0][0].s, "q?uo?te????");
	cr_assert_eq(strlen(p.rows[0][1].s), DP_SVC_STR_MAX - 1);
	cr_assert_str_eq(p.rows[0][2].s, "");
}

Test(core_svc, a_full_page_and_a_full_row_take_no_more)
{
	memset(&p, 0, sizeof(p));
	for (unsigned c = 0; c < DP_SVC_COLS + 3; c++)
		dp_svc_int(&p, "k", c);
	cr_assert_eq(p.ncols[0], DP_SVC_COLS);
	for (unsigned r = 0; r < DP_SVC_ROWS - 1; r++)
		cr_assert(dp_svc_row_end(&p, r));
	cr_assert_not(dp_svc_row_end(&p, 99), "the last row fills the page");
	cr_assert_not(dp_svc_row_end(&p, 100));
	cr_assert_eq(p.nrows, DP_SVC_ROWS);
	cr_assert_eq(p.next[DP_SVC_ROWS - 1], 99);
	cr_assert_null(dp_svc_col(&p, "late"));
}
