/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mxgate-control's link to the dataplane: a client of DPDK's telemetry socket
 * (v2: SOCK_SEQPACKET; the server greets with a JSON object holding
 * max_output_len, then answers each command with one JSON object) that never
 * blocks the event loop. Every sample interval it asks, in turn,
 * /mxgate/info, /mxgate/stats,N for each worker N the info names (a reply of
 * DPDK 22.11 holds at most 16 KiB, so the counters are read a row at a time),
 * /mxgate/gauges and /mxgate/ports, and hands the sample over whole, or not at
 * all: a reply that is missing, an error or of the wrong shape fails the
 * sample, counted and logged. When the socket is missing, refuses or drops
 * (the dataplane stopped or restarted) it reconnects with a backoff, and says
 * so in the log.
 */
#ifndef MX_CTLD_TEL_H
#define MX_CTLD_TEL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#define TEL_REPLY_TIMEOUT_MS 2000
#define TEL_BACKOFF_MIN_MS   100
#define TEL_BACKOFF_MAX_MS   2000
#define TEL_MAX_WORKERS	     256 /* an info reply naming more is refused */

/*
 * A full sample (every value borrowed for the call): INFO, GAUGES and PORTS are
 * the values of those replies; STATS is {"worker0": {...}, ..., "total": {...}},
 * a row per page read, each holding the same counter names, and their sum.
 * NOW_MS is when the sample began: every counter in it was read after then.
 */
typedef void (*tel_sample_fn)(void *ctx, uint64_t now_ms, json_t *info, json_t *stats,
			      json_t *gauges, json_t *ports);
/* The link went up (UP) or down (tel_last_error() says why; the log has said so too). */
typedef void (*tel_state_fn)(void *ctx, bool up);

struct tel;

/*
 * A client for the socket at PATH that samples every INTERVAL_MS. It does
 * nothing until tel_run() is first called. NULL when out of memory.
 */
struct tel *tel_new(const char *path, unsigned interval_ms, tel_sample_fn on_sample,
		    tel_state_fn on_state, void *ctx);

void tel_free(struct tel *t);

/* The descriptor to poll for POLLIN, or -1 while not connected. */
int tel_fd(const struct tel *t);

/* Milliseconds until tel_run() has something to do by the clock (0: now). */
int tel_timeout_ms(const struct tel *t, uint64_t now_ms);

/* Does what is due at NOW_MS; REVENTS are the poll() results for tel_fd() (0 if not polled). */
void tel_run(struct tel *t, uint64_t now_ms, short revents);

bool tel_up(const struct tel *t);

/* Facts for status: */
uint64_t tel_connects(const struct tel *t);	   /* connections made */
uint64_t tel_sample_errors(const struct tel *t);   /* samples that failed */
uint64_t tel_since_ms(const struct tel *t);	   /* when the link last went up or down */
pid_t tel_peer_pid(const struct tel *t);	   /* the dataplane's pid from its greeting; 0 */
const char *tel_peer_version(const struct tel *t); /* DPDK's version from its greeting; "" */
const char *tel_last_error(const struct tel *t);   /* why the link is or last went down; "" */
const char *
tel_sample_error(const struct tel *t); /* why the last sample failed; "" if it did not */
const char *tel_path(const struct tel *t);

#endif
