/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mxgatectl config reload and log level in mxgate-control. A reload is
 * checked here first (cfg_load: the same loader and messages as `config
 * check`; then the keys mxgate-control itself cannot change without a
 * restart), and only a file that passes is handed to the dataplane's
 * /mxgate/reload (dataplane/core/reload.h), which checks it again against
 * what it runs and swaps it in or says why not. Either way the answer is
 * all or nothing, and mxgate-control adopts the file only when mxgate-dp did.
 */
#ifndef MX_CTLD_RELOAD_OPS_H
#define MX_CTLD_RELOAD_OPS_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "control/config/config.h"

struct reload_out {
	/* the reply's result; NULL when the request failed: then CODE and MESSAGE */
	json_t *result;
	const char *code; /* a CTL_E_* or "reload_failed" */
	char message[300];
	/* "applied": the config and its text, for mxgate-control to keep (its now) */
	struct cfg *cfg;
	char *text;
	size_t text_len;
};

/*
 * Reloads FILE (NULL: RUN's file). RUN is the config mxgate-control runs
 * with; DP_UP whether the dataplane is connected. Results, all with "file",
 * "status" and "applied" (true only for "applied"):
 *   "applied":        "generation", "retired" (older generations still used)
 *   "invalid":        "errors": [{file, line, column, path, message, text}],
 *                     "checked_by": "mxgate-control" or "mxgate-dp"
 *   "restart_needed": "restart": [{key, old, new, why, component}]
 * Fills OUT; the caller owns what it holds.
 */
void reload_config(const struct cfg *run, const char *file, bool dp_up, struct reload_out *out);

/*
 * Sets mxgate-control's log level to LEVEL and, when DP_UP, the dataplane's
 * (through TELEMETRY). Result {"level", "control": {level, previous},
 * "dataplane": {level, previous} or null, "note" when the dataplane was not
 * set}; NULL only when out of memory.
 */
json_t *reload_log_level(const char *telemetry, bool dp_up, enum cfg_log_level level);

/* "FILE:LINE:COLUMN: key.path: message" as {file, line, column, path, message, text}; else {file, text}. */
json_t *reload_error_json(const char *file, const char *line);

#endif
