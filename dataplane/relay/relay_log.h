/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The relay's event log: one line per message event (queued, delivered,
 * deferred, bounced), rate-limited per worker so a flood of failures cannot
 * turn logging into the bottleneck. Lines over the rate are dropped and
 * counted, and a summary line says how many once the rate allows again.
 * Pure: the clock is passed in, and lines go to the caller's writer.
 */
#ifndef MX_RELAY_LOG_H
#define MX_RELAY_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataplane/core/tbucket.h"

#define RELAY_LOG_LINE_MAX 1024 /* octets of one line, newline included; longer is cut */

/* Receives one complete line (ending in "\n"), N octets. */
typedef void (*relay_log_write_fn)(void *arg, const char *line, size_t n);

struct relay_log {
	struct tbucket tb;
	relay_log_write_fn write; /* NULL: lines are counted, not written */
	void *arg;
	uint64_t lines;	  /* written */
	uint64_t dropped; /* over the rate */
	uint64_t unreported; /* dropped since the last summary line */
	char prefix[32];
};

/*
 * Prepares L: at most PER_SEC lines a second (bursts up to PER_SEC; 0:
 * unlimited) on a clock of HZ units per second starting at NOW; every line
 * starts with PREFIX (cut at 31 octets).
 */
void relay_log_init(struct relay_log *l, unsigned per_sec, uint64_t hz, uint64_t now,
		    const char *prefix, relay_log_write_fn write, void *arg);

/*
 * Writes one line: the prefix, then FMT, then "\n". Returns true when it
 * was written, false when the rate dropped it (counted). A pending summary
 * of dropped lines goes out first when the rate allows both.
 */
bool relay_log_printf(struct relay_log *l, uint64_t now, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Writes P[0..N) into OUT (CAP octets, NUL-terminated, cut to fit) so that
 * it cannot break a log line apart or forge one: octets outside 0x21..0x7e
 * (UTF-8 included), '"' and '\\' become \xHH; a space stays when SPACE_OK
 * (text inside quotes). Returns OUT.
 */
const char *relay_log_quote(char *out, size_t cap, const void *p, size_t n, bool space_ok);

#endif
