/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mxgate-control's core: the loaded config, the sample store fed by the
 * telemetry client, the mxgatectl socket and the /metrics server, all driven
 * by one poll() loop on one thread (so nothing here takes a lock).
 */
#ifndef MX_CTLD_CTLD_H
#define MX_CTLD_CTLD_H

#include <stddef.h>

#include "control/config/config.h"

#ifndef MXGATE_VERSION
#define MXGATE_VERSION "unknown"
#endif

struct ctld;

/*
 * Sets up everything CFG asks for: the control socket, the metrics server,
 * the telemetry client. Takes CFG and TEXT (the file as read, LEN bytes) in
 * every case. Returns the daemon, or NULL after logging why it cannot start.
 */
struct ctld *ctld_new(struct cfg *cfg, char *text, size_t len);

/*
 * Runs until SIGTERM or SIGINT (SIGHUP reopens the log file); the caller has
 * blocked those signals. Returns 0 on a clean stop, 1 on a fatal error.
 */
int ctld_run(struct ctld *d);

/* Closes everything and removes the control socket. */
void ctld_free(struct ctld *d);

#endif
