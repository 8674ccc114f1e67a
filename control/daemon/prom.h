/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The /metrics page in the Prometheus text exposition format (version 0.0.4):
 * every family with its HELP and TYPE lines, counters named *_total, the
 * dataplane's per-worker counters and gauges labelled worker="N" (the "total"
 * row is left to sum()), drops as one family labelled by reason, ports
 * labelled by their configured name. A pure function of the store and the
 * daemon's state.
 */
#ifndef MX_CTLD_PROM_H
#define MX_CTLD_PROM_H

#include <stdbool.h>
#include <stdint.h>

#include "control/common/sbuf.h"
#include "control/daemon/store.h"

#define PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* What the daemon knows about itself and its link to the dataplane. */
struct prom_state {
	bool up;		/* telemetry connected and the latest sample good */
	uint64_t connects;	/* telemetry connections made since start */
	uint64_t samples;	/* samples stored */
	uint64_t sample_errors; /* samples that failed (bad reply, timeout) */
	double uptime_s;	/* of mxgate-control */
	const char *version;	/* of mxgate-control */
};

/*
 * Appends the page to OUT. The dataplane's families appear only while UP and
 * a sample is stored: a stale value would look current.
 */
void prom_render(struct sbuf *out, const struct ctl_store *s, const struct prom_state *st);

#endif
