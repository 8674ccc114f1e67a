/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mxgatectl's text for config reload and log level: what was applied, or
 * each error as config check prints it, or each key that needs a restart,
 * with the old and new value and why.
 */
#ifndef MX_CTL_RENDER_RELOAD_H
#define MX_CTL_RENDER_RELOAD_H

#include <jansson.h>

#include "control/common/sbuf.h"

/*
 * A config.reload result (control/daemon/reload_ops.h): the outcome into
 * OUT, the file's errors into ERR (FILE:LINE:COLUMN: key: what, one a line,
 * as config check prints them). Returns the exit status: 0 when applied, else 1.
 */
int render_reload(struct sbuf *out, struct sbuf *err, json_t *res);

/* A log.level result. Returns 0 when both daemons took the level, else 1. */
int render_log_level(struct sbuf *out, json_t *res);

#endif
