/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The control plane's log: one logfmt line per event
 * (ts=... level=... prog=... event=... msg="..."), to stdout, stderr or a
 * file, at a level that can change at run time, and rate-limited so a flood
 * of one event cannot fill a disk: past the limit lines are counted, and the
 * count is logged once lines flow again.
 */
#ifndef MX_CTL_LOG_H
#define MX_CTL_LOG_H

#include <stdbool.h>
#include <stdint.h>

#include "control/config/control.h"

#define MX_LOG_RATE  100 /* lines per second, sustained */
#define MX_LOG_BURST 200 /* lines at once */

/* A token bucket over a millisecond clock. All-zero starts full on first use. */
struct mx_log_limit {
	uint64_t last_ms;
	unsigned tokens_milli; /* thousandths of a line */
	bool started;
	uint64_t suppressed; /* lines refused since the last one let through */
};

/*
 * Takes one line's token at NOW_MS. Returns true when the line may be written
 * (and then *SUPPRESSED holds how many were refused before it, now reset to 0),
 * false when it is to be dropped (and counted).
 */
bool mx_log_limit_take(struct mx_log_limit *l, uint64_t now_ms, uint64_t *suppressed);

/*
 * Starts logging as PROG to where CFG says (stdout when CFG is NULL). Returns
 * 0, or -errno when the log file cannot be opened (logging then goes to stderr).
 */
int mx_log_open(const char *prog, const struct cfg_logging *cfg);

/* Reopens the log file (after logrotate moved it); 0 or -errno. Nothing to do for stdout. */
int mx_log_reopen(void);

void mx_log_set_level(enum cfg_log_level level);
enum cfg_log_level mx_log_get_level(void);

/* Writes one line if LEVEL is enabled and the rate allows; EVENT is a short snake_case tag. */
void mx_log(enum cfg_log_level level, const char *event, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Closes the log file, if any. */
void mx_log_close(void);

#endif
