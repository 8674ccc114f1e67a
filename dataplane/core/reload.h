/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The dataplane's side of a config reload and of run-time log levels: the
 * bodies of the /mxgate/reload and /mxgate/log_level telemetry commands
 * (telemetry.c registers them and calls these under its lock, so one runs
 * at a time and never during shutdown).
 *
 * /mxgate/reload[,PATH] loads PATH (default: the file of the config in
 * force) with cfg_load(). Replies, as a dict with "status":
 *   "applied":        new sessions use the file from now on ("generation")
 *   "invalid":        the file has errors ("errors", "LINE:COLUMN: key: what"
 *                     each); nothing changed
 *   "restart_needed": the file changes keys that need a restart ("restart",
 *                     "KEY: OLD -> NEW" each, and "restart_why" alongside);
 *                     nothing changed: a reload is all or nothing
 */
#ifndef MX_CORE_RELOAD_H
#define MX_CORE_RELOAD_H

#include <rte_telemetry.h>

#include "dataplane/core/dp.h"

/* /mxgate/reload[,PATH]; returns 0 (the outcome is in D) or -errno. */
int dp_reload_tel(struct dp *dp, const char *params, struct rte_tel_data *d);

/* /mxgate/log_level[,LEVEL]: sets the level when given; replies {"level": ...}. */
int dp_log_level_tel(struct dp *dp, const char *params, struct rte_tel_data *d);

/* Adds the reload counters and the snapshot state to /mxgate/info's dict D. */
void dp_reload_info(struct dp *dp, struct rte_tel_data *d);

/* Sets the dataplane's log level (ours, the relay's event lines, and DPDK's global level). */
void dp_log_set_level(enum cfg_log_level level);

#endif
