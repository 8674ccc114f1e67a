/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mxgatectl sessions and queue in mxgate-control: walks the pages of the
 * dataplane's /mxgate/sessions and /mxgate/queue (dataplane/core/tel_svc.c)
 * worker by worker over a connection of its own (dpq.h), gathers the rows
 * into one result, and stops at OPS_MAX_ROWS, saying so ("truncated").
 * A command about one message goes to the worker its queue id names.
 */
#ifndef MX_CTLD_OPS_H
#define MX_CTLD_OPS_H

#include <stddef.h>

#include <jansson.h>

#define OPS_MAX_ROWS 5000 /* rows of one result: sessions, messages or recipients */

/* The outcome of an operation that failed: a CTL_E_* code and a sentence. */
struct ops_error {
	const char *code;
	char message[300];
};

/*
 * Every SMTP session of WORKERS workers through the telemetry socket PATH:
 * {"sessions": [{"worker": W, "id", "client", "listener", "port", "state",
 * "age_ms", "bytes_in", "bytes_out", "messages", "helo", "tls", "auth"}...],
 * "count": N, "truncated": bool, "limit": OPS_MAX_ROWS}; NULL with E set.
 */
json_t *ops_sessions(const char *path, unsigned workers, struct ops_error *e);

/*
 * Queue operation OP ("list", "show", "flush", "hold", "release", "delete")
 * with queue id QID (show, hold, release, delete; already checked by
 * ctl_qid_parse()). Results: list {"messages": [...], "count", "truncated",
 * "limit"}; show {"message": {...}, "recipients": [...], "truncated"};
 * flush {"flushed": N, "by_worker": {"0": N, ...}}; the others {"id",
 * "worker", "done": "held" | "released" | "deleted"}. NULL with E set.
 */
json_t *ops_queue(const char *path, unsigned workers, const char *op, const char *qid,
		  struct ops_error *e);

#endif
