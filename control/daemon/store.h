/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The window of counter samples mxgate-control keeps: each sample is the
 * dataplane's /mxgate/stats (rows worker0.., total; a column per counter),
 * /mxgate/gauges (the same rows; a column per gauge) and /mxgate/ports (a row
 * per port; a column per numeric field) read one after the other, flattened
 * to arrays of u64. Names come from the dataplane, so a
 * counter it adds shows up here without a change. Rates are differences over
 * a span of the window. The latest info and ports replies are kept whole for
 * the strings (version, MAC, link) the arrays leave out.
 */
#ifndef MX_CTLD_STORE_H
#define MX_CTLD_STORE_H

#include <stdint.h>

#include <jansson.h>

/* Row and column names of one kind of table; the same for every sample in the window. */
struct ctl_layout {
	char **rows;
	unsigned n_rows;
	char **cols;
	unsigned n_cols;
};

enum ctl_table_kind {
	CTL_T_STATS,  /* /mxgate/stats */
	CTL_T_GAUGES, /* /mxgate/gauges: values of now, no rates */
	CTL_T_PORTS,  /* /mxgate/ports */
	CTL_T_MAX,
};

struct ctl_store;

/* A store that keeps the last CAPACITY (>= 2) samples; NULL when out of memory. */
struct ctl_store *ctl_store_new(unsigned capacity);

void ctl_store_free(struct ctl_store *s);

/*
 * Adds the sample read at T_MS (a monotonic clock) from the replies to
 * /mxgate/info, /mxgate/stats, /mxgate/gauges and /mxgate/ports (the values,
 * without the command key; STATS as tel.h assembles it from its pages). Takes
 * its own references. Returns 0; 1 when the window started over first (the
 * names changed, or the dataplane's uptime went back: it restarted); -EINVAL
 * when a reply is not shaped as expected (nothing is stored); -ENOMEM.
 */
int ctl_store_push(struct ctl_store *s, uint64_t t_ms, json_t *info, json_t *stats, json_t *gauges,
		   json_t *ports);

/* Forgets every sample (the dataplane went away: its counters will start over). */
void ctl_store_clear(struct ctl_store *s);

/* Samples held (0..capacity). */
unsigned ctl_store_count(const struct ctl_store *s);

/* Time of the latest sample; 0 when there is none. */
uint64_t ctl_store_latest_ms(const struct ctl_store *s);

/* The names of a table kind; n_rows is 0 before the first sample. */
const struct ctl_layout *ctl_store_layout(const struct ctl_store *s, enum ctl_table_kind k);

/* The latest sample's values, n_rows * n_cols row by row; NULL when there is none. */
const uint64_t *ctl_store_latest(const struct ctl_store *s, enum ctl_table_kind k);

/* The latest replies (borrowed; NULL when there is none). */
json_t *ctl_store_info(const struct ctl_store *s);
json_t *ctl_store_ports(const struct ctl_store *s);

/*
 * Per-second rates of every cell of table K between the latest sample and the
 * oldest one at most SPAN_MS (plus a tenth, for timer jitter) before it.
 * RATES holds n_rows * n_cols. A counter that went down (cannot happen within
 * one run of the dataplane) counts as 0. Returns the span used in ms (> 0), or
 * 0 when the window holds no two samples that close (RATES untouched).
 */
uint64_t ctl_store_rates(const struct ctl_store *s, enum ctl_table_kind k, uint64_t span_ms,
			 double *rates);

/* Index of NAME among the layout's columns (or rows), or -1. */
int ctl_layout_col(const struct ctl_layout *l, const char *name);
int ctl_layout_row(const struct ctl_layout *l, const char *name);

#endif
