/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mxgatectl sessions and queue as tables: pure functions from the daemon's
 * JSON results (control/daemon/ops.h) into a buffer.
 */
#ifndef MX_CTL_RENDER_OPS_H
#define MX_CTL_RENDER_OPS_H

#include <jansson.h>

#include "control/common/sbuf.h"

/* "sessions": one line per session, then a count (and a note when the list was cut). */
void render_sessions(struct sbuf *b, json_t *r);
/* "queue list": one line per message, then a count (and a note when cut). */
void render_queue_list(struct sbuf *b, json_t *r);
/* "queue show ID": the message's fields, then one line per recipient. */
void render_queue_show(struct sbuf *b, json_t *r);
/* "queue flush|hold|release|delete": one sentence. */
void render_queue_done(struct sbuf *b, json_t *r);

#endif
