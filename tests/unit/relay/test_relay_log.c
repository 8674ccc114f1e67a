/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The relay's event log: the rate limit drops and counts what is over it
 * and says so once it may, and a line stays one line whatever the
 * addresses and replies in it carry.
 */
#include <string.h>

#include <criterion/criterion.h>

#include "dataplane/relay/relay_log.h"

#define HZ 1000 /* a clock in ms */

static char out[16][RELAY_LOG_LINE_MAX + 1];
static unsigned n_out;

static void keep(void *arg, const char *line, size_t n)
{
	(void)arg;
	cr_assert_lt(n_out, 16);
	memcpy(out[n_out], line, n);
	out[n_out][n] = '\0';
	n_out++;
}

Test(relay_log, lines_over_the_rate_are_dropped_counted_and_summarised)
{
	struct relay_log l;

	relay_log_init(&l, 3, HZ, 0, "relay: ", keep, NULL);
	for (int i = 0; i < 5; i++)
		relay_log_printf(&l, 0, "line %d", i);
	cr_assert_eq(n_out, 3, "a burst of the rate goes out");
	cr_assert_eq(l.dropped, 2);
	cr_assert_str_eq(out[2], "relay: line 2\n");

	cr_assert(relay_log_printf(&l, 1000, "line %d", 5), "a second later there is room");
	cr_assert_eq(n_out, 5);
	cr_assert_str_eq(out[3], "relay: 2 log lines dropped (rate limit)\n");
	cr_assert_str_eq(out[4], "relay: line 5\n");
	cr_assert_eq(l.lines, 5);
	cr_assert_eq(l.dropped, 2);
	cr_assert_eq(l.unreported, 0);
}

Test(relay_log, no_rate_means_no_limit)
{
	struct relay_log l;

	relay_log_init(&l, 0, HZ, 0, "", keep, NULL);
	for (int i = 0; i < 10; i++)
		cr_assert(relay_log_printf(&l, 0, "x"));
	cr_assert_eq(l.dropped, 0);
}

Test(relay_log, an_overlong_line_is_cut_and_still_ends_the_line)
{
	struct relay_log l;
	static char big[3 * RELAY_LOG_LINE_MAX];

	memset(big, 'a', sizeof(big) - 1);
	relay_log_init(&l, 0, HZ, 0, "p: ", keep, NULL);
	relay_log_printf(&l, 0, "%s", big);
	size_t n = strlen(out[0]);
	cr_assert_eq(n, RELAY_LOG_LINE_MAX - 1);
	cr_assert_eq(out[0][n - 1], '\n');
	cr_assert_null(memchr(out[0], '\n', n - 1));
}

Test(relay_log, quoting_keeps_a_forged_line_and_quotes_inside_one_token)
{
	char q[128];
	static const char evil[] = "a@b\r\nqid=X status=delivered \"\\\xc3\xa9";

	relay_log_quote(q, sizeof(q), evil, sizeof(evil) - 1, false);
	cr_assert_str_eq(q, "a@b\\x0d\\x0aqid=X\\x20status=delivered\\x20\\x22\\x5c\\xc3\\xa9");
	relay_log_quote(q, sizeof(q), "250 2.0.0 ok \"x\"", 16, true);
	cr_assert_str_eq(q, "250 2.0.0 ok \\x22x\\x22", "spaces stay inside a quoted reply");
	relay_log_quote(q, 6, "abcdefgh", 8, false);
	cr_assert_str_eq(q, "abcde", "cut to fit");
	relay_log_quote(q, 6, "ab\ncd", 5, false);
	cr_assert_str_eq(q, "ab", "an escape that does not fit whole is left out");
}
