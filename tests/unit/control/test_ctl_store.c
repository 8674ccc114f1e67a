/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The sample window behind `mxgatectl stats` and `top`: rates over a span of
 * it, a bounded number of samples, gauges kept beside the counters, and a
 * fresh start when the dataplane restarts (its uptime goes back) or changes
 * its counters or gauges.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>

#include <criterion/criterion.h>

#include "control/daemon/store.h"

static json_t *info(long long uptime)
{
	return json_pack("{s:s, s:i, s:I}", "version", "0.1.0", "workers", 1, "uptime_s",
			 (json_int_t)uptime);
}

static json_t *stats(long long rx, long long drops)
{
	return json_pack("{s:{s:I, s:I}, s:{s:I, s:I}}", "worker0", "rx_packets", (json_int_t)rx,
			 "drop_eth_runt", (json_int_t)drops, "total", "rx_packets", (json_int_t)rx,
			 "drop_eth_runt", (json_int_t)drops);
}

static json_t *gauges(long long open)
{
	return json_pack("{s:{s:I}, s:{s:I}}", "worker0", "smtp_sessions_open", (json_int_t)open,
			 "total", "smtp_sessions_open", (json_int_t)open);
}

static json_t *ports(long long ipackets)
{
	return json_pack("{s:{s:s, s:I, s:s}}", "port0", "name", "tap0", "ipackets",
			 (json_int_t)ipackets, "mac", "02:00:00:00:00:01");
}

/* Pushes one sample taken at T_MS; returns what ctl_store_push() said. */
static int push(struct ctl_store *s, uint64_t t_ms, long long uptime, long long rx, long long drops)
{
	json_t *i = info(uptime), *st = stats(rx, drops), *g = gauges(rx % 7), *p = ports(rx * 2);
	int rc = ctl_store_push(s, t_ms, i, st, g, p);

	json_decref(i);
	json_decref(st);
	json_decref(g);
	json_decref(p);
	return rc;
}

Test(ctl_store, no_rate_from_a_single_sample)
{
	struct ctl_store *s = ctl_store_new(10);
	double r[4];

	cr_assert_eq(push(s, 1000, 1, 100, 0), 0);
	cr_assert_eq(ctl_store_count(s), 1);
	cr_assert_eq(ctl_store_rates(s, CTL_T_STATS, 10000, r), 0);
	ctl_store_free(s);
}

Test(ctl_store, rates_come_from_the_oldest_sample_within_the_span)
{
	struct ctl_store *s = ctl_store_new(10);
	const struct ctl_layout *l;
	double r[4];

	/* 100 packets a second for 5 s, then 1000 a second */
	for (int i = 0; i <= 5; i++)
		push(s, 1000 + (uint64_t)i * 1000, 1 + i, 100LL * i, 0);
	push(s, 7000, 7, 1500, 3);
	l = ctl_store_layout(s, CTL_T_STATS);
	cr_assert_eq(l->n_rows, 2);
	cr_assert_eq(l->n_cols, 2);
	cr_assert_str_eq(l->cols[0], "rx_packets");
	cr_assert_str_eq(l->cols[1], "drop_eth_runt");

	/* over the last second: 1000/s and 3 drops/s */
	cr_assert_eq(ctl_store_rates(s, CTL_T_STATS, 1000, r), 1000);
	cr_assert_float_eq(r[0], 1000.0, 1e-9);
	cr_assert_float_eq(r[1], 3.0, 1e-9);
	/* over the whole window (6 s): 1500 packets */
	cr_assert_eq(ctl_store_rates(s, CTL_T_STATS, 60000, r), 6000);
	cr_assert_float_eq(r[0], 250.0, 1e-9);
	/* port counters have their own table */
	cr_assert_eq(ctl_store_rates(s, CTL_T_PORTS, 1000, r), 1000);
	cr_assert_float_eq(r[0], 2000.0, 1e-9);
	ctl_store_free(s);
}

Test(ctl_store, timer_jitter_does_not_lose_the_span)
{
	struct ctl_store *s = ctl_store_new(10);
	double r[4];

	push(s, 1000, 1, 0, 0);
	push(s, 2040, 2, 104, 0); /* 1.04 s later: still "the last second" */
	cr_assert_eq(ctl_store_rates(s, CTL_T_STATS, 1000, r), 1040);
	cr_assert_float_eq(r[0], 100.0, 1e-9);
	ctl_store_free(s);
}

Test(ctl_store, window_holds_its_capacity_and_no_more)
{
	struct ctl_store *s = ctl_store_new(3);
	double r[4];

	for (int i = 0; i < 10; i++)
		push(s, 1000 + (uint64_t)i * 1000, 1 + i, 10LL * i * i, 0);
	cr_assert_eq(ctl_store_count(s), 3);
	/* the oldest kept is t=8000 (rx 490); the latest t=10000 (rx 810) */
	cr_assert_eq(ctl_store_rates(s, CTL_T_STATS, 60000, r), 2000);
	cr_assert_float_eq(r[0], 160.0, 1e-9);
	cr_assert_eq(ctl_store_latest(s, CTL_T_STATS)[0], 810);
	cr_assert_eq(ctl_store_latest_ms(s), 10000);
	ctl_store_free(s);
}

Test(ctl_store, a_dataplane_restart_starts_the_window_over)
{
	struct ctl_store *s = ctl_store_new(10);
	double r[4];

	push(s, 1000, 500, 9000, 0);
	push(s, 2000, 501, 9100, 0);
	/* uptime went back: a new process, whose counters start at zero */
	cr_assert_eq(push(s, 3000, 1, 10, 0), 1);
	cr_assert_eq(ctl_store_count(s), 1);
	cr_assert_eq(ctl_store_rates(s, CTL_T_STATS, 60000, r), 0,
		     "no rate across a restart (it would be negative)");
	push(s, 4000, 2, 60, 0);
	cr_assert_eq(ctl_store_rates(s, CTL_T_STATS, 60000, r), 1000);
	cr_assert_float_eq(r[0], 50.0, 1e-9);
	ctl_store_free(s);
}

Test(ctl_store, new_counters_start_the_window_over)
{
	struct ctl_store *s = ctl_store_new(10);
	json_t *i = info(10), *p = ports(1), *g = gauges(0);
	json_t *more = json_pack("{s:{s:i, s:i, s:i}, s:{s:i, s:i, s:i}}", "worker0", "rx_packets",
				 5, "drop_eth_runt", 0, "tcp_in", 1, "total", "rx_packets", 5,
				 "drop_eth_runt", 0, "tcp_in", 1);

	push(s, 1000, 9, 1, 0);
	cr_assert_eq(ctl_store_push(s, 2000, i, more, g, p), 1);
	cr_assert_eq(ctl_store_layout(s, CTL_T_STATS)->n_cols, 3);
	cr_assert_eq(ctl_layout_col(ctl_store_layout(s, CTL_T_STATS), "tcp_in"), 2);
	json_decref(i);
	json_decref(p);
	json_decref(g);
	json_decref(more);
	ctl_store_free(s);
}

Test(ctl_store, replies_of_the_wrong_shape_are_refused_and_change_nothing)
{
	struct ctl_store *s = ctl_store_new(10);
	json_t *i = info(10), *p = ports(1), *st = stats(1, 0), *g = gauges(0);
	json_t *no_uptime = json_pack("{s:s}", "version", "x");
	json_t *flat = json_pack("{s:i}", "rx_packets", 1);
	json_t *empty = json_object();

	push(s, 1000, 9, 1, 0);
	cr_assert_eq(ctl_store_push(s, 2000, no_uptime, st, g, p), -EINVAL);
	cr_assert_eq(ctl_store_push(s, 2000, i, flat, g, p), -EINVAL);
	cr_assert_eq(ctl_store_push(s, 2000, i, empty, g, p), -EINVAL);
	cr_assert_eq(ctl_store_push(s, 2000, i, st, flat, p), -EINVAL, "gauges not in rows");
	cr_assert_eq(ctl_store_push(s, 2000, i, st, NULL, p), -EINVAL, "no gauges at all");
	cr_assert_eq(ctl_store_push(s, 2000, i, st, g, flat), -EINVAL);
	cr_assert_eq(ctl_store_count(s), 1);
	cr_assert_eq(ctl_store_latest_ms(s), 1000);
	json_decref(i);
	json_decref(p);
	json_decref(st);
	json_decref(g);
	json_decref(no_uptime);
	json_decref(flat);
	json_decref(empty);
	ctl_store_free(s);
}

Test(ctl_store, gauges_are_kept_as_the_latest_value_beside_the_counters)
{
	struct ctl_store *s = ctl_store_new(10);
	const struct ctl_layout *l;

	push(s, 1000, 1, 3, 0);	 /* 3 % 7 sessions open */
	push(s, 2000, 2, 12, 0); /* then 5 */
	l = ctl_store_layout(s, CTL_T_GAUGES);
	cr_assert_eq(l->n_rows, 2);
	cr_assert_eq(l->n_cols, 1);
	cr_assert_str_eq(l->cols[0], "smtp_sessions_open");
	cr_assert_eq(ctl_layout_row(l, "total"), 1);
	cr_assert_eq(ctl_store_latest(s, CTL_T_GAUGES)[0], 5);
	cr_assert_eq(ctl_store_latest(s, CTL_T_GAUGES)[1], 5);
	cr_assert_eq(ctl_store_latest(s, CTL_T_STATS)[0], 12, "the counters are unchanged by it");
	ctl_store_free(s);
}

Test(ctl_store, a_dataplane_without_gauges_stores_rows_without_columns)
{
	struct ctl_store *s = ctl_store_new(10);
	json_t *i = info(1), *st = stats(1, 0), *p = ports(1);
	json_t *none = json_pack("{s:{}, s:{}}", "worker0", "total");

	/* mxgate-gen has no mail service: its gauge rows are empty */
	cr_assert_eq(ctl_store_push(s, 1000, i, st, none, p), 0);
	cr_assert_eq(ctl_store_layout(s, CTL_T_GAUGES)->n_cols, 0);
	cr_assert_eq(ctl_layout_col(ctl_store_layout(s, CTL_T_GAUGES), "smtp_sessions_open"), -1);
	json_decref(i);
	json_decref(st);
	json_decref(p);
	json_decref(none);
	ctl_store_free(s);
}

Test(ctl_store, a_new_gauge_starts_the_window_over)
{
	struct ctl_store *s = ctl_store_new(10);
	json_t *i = info(10), *st = stats(5, 0), *p = ports(1);
	json_t *more = json_pack("{s:{s:i, s:i}, s:{s:i, s:i}}", "worker0", "smtp_sessions_open", 1,
				 "tcp_conns_open", 2, "total", "smtp_sessions_open", 1,
				 "tcp_conns_open", 2);

	push(s, 1000, 9, 1, 0);
	cr_assert_eq(ctl_store_push(s, 2000, i, st, more, p), 1);
	cr_assert_eq(ctl_store_count(s), 1);
	cr_assert_eq(ctl_store_layout(s, CTL_T_GAUGES)->n_cols, 2);
	json_decref(i);
	json_decref(st);
	json_decref(p);
	json_decref(more);
	ctl_store_free(s);
}

Test(ctl_store, clear_forgets_everything)
{
	struct ctl_store *s = ctl_store_new(10);

	push(s, 1000, 9, 1, 0);
	ctl_store_clear(s);
	cr_assert_eq(ctl_store_count(s), 0);
	cr_assert_null(ctl_store_latest(s, CTL_T_STATS));
	cr_assert_null(ctl_store_info(s));
	cr_assert_eq(ctl_store_latest_ms(s), 0);
	ctl_store_free(s);
}
