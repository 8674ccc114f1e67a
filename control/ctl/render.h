/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mxgatectl's human-readable output: the daemon's JSON results turned into
 * aligned text. Pure functions into a buffer; --json prints the results
 * themselves instead.
 */
#ifndef MX_CTL_RENDER_H
#define MX_CTL_RENDER_H

#include <stdbool.h>

#include <jansson.h>

#include "control/common/sbuf.h"

/* "status". Returns true when the dataplane is connected. */
bool render_status(struct sbuf *b, json_t *status);

/* "stats": a row per counter (ALL: counters at zero too), a column per worker, rates. */
void render_stats(struct sbuf *b, json_t *stats, bool all);

/* "ports": a block per port. */
void render_ports(struct sbuf *b, json_t *ports);

/* "config.show": the file as loaded, under a comment saying where from. */
void render_config_show(struct sbuf *b, json_t *show);
/* The mail routes: one line per domain (and the smarthost), its next hops in order. */
void render_routes(struct sbuf *b, json_t *routes);

/*
 * One screen of "top" from a status and a stats result (rates over the last
 * interval), at most ROWS lines of COLS columns.
 */
void render_top(struct sbuf *b, json_t *status, json_t *stats, unsigned rows, unsigned cols);

/* "1d 02h 03m 04s" for a number of seconds. */
void render_duration(struct sbuf *b, double seconds);

#endif
