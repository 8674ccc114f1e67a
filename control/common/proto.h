/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The mxgatectl <-> mxgate-control protocol on a unix stream socket: one JSON
 * object per line each way.
 *
 *   request: {"cmd": "stats", "id": 7, "args": {"span_s": 10}}
 *   reply:   {"ok": true, "id": 7, "result": {...}}
 *            {"ok": false, "id": 7, "error": {"code": "unknown_command", "message": "..."}}
 *
 * "id" (a string or integer) is optional and echoed. A request line holds at
 * most CTL_MAX_REQUEST bytes with its newline; a longer one is answered with
 * "too_large" and the connection is closed, since its end cannot be trusted.
 * Everything here is pure: no I/O, so the daemon and the tests share it.
 */
#ifndef MX_CTL_PROTO_H
#define MX_CTL_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

#define CTL_MAX_REQUEST 4096	   /* bytes of one request line, newline included */
#define CTL_MAX_REPLY	(8u << 20) /* bytes of one reply line a client accepts */
#define CTL_MAX_ID_LEN	64	   /* characters of a string id */
#define CTL_MAX_SPAN_S	86400u	   /* stats: longest rate window asked for */

enum ctl_cmd {
	CTL_CMD_STATUS,
	CTL_CMD_STATS,
	CTL_CMD_PORTS,
	CTL_CMD_CONFIG_SHOW,
	/* known, answered with not_available until the issue named in the table lands */
	CTL_CMD_CONFIG_RELOAD,
	CTL_CMD_SESSIONS,
	CTL_CMD_QUEUE,
	CTL_CMD_ROUTES,
	CTL_CMD_LOG_LEVEL,
	CTL_CMD_MAX,
};

struct ctl_cmd_info {
	enum ctl_cmd cmd;
	const char *name;    /* on the wire: "status", "config.show", ... */
	const char *missing; /* NULL when available; else what it waits for, said to the operator */
};

/* The entry for CMD. */
const struct ctl_cmd_info *ctl_cmd_info(enum ctl_cmd cmd);

/* The entry named NAME (a wire name, e.g. "queue.list" finds CTL_CMD_QUEUE), or NULL. */
const struct ctl_cmd_info *ctl_cmd_find(const char *name);

/* True for the queue commands that name a message ("id"): show, hold, release, delete. */
bool ctl_queue_takes_id(const struct ctl_cmd_info *c);

/* Error codes of a reply; the strings are part of the protocol. */
#define CTL_E_BAD_JSON	      "bad_json"    /* the line is not JSON */
#define CTL_E_BAD_REQUEST     "bad_request" /* JSON, but not a request */
#define CTL_E_UNKNOWN_COMMAND "unknown_command"
#define CTL_E_NOT_AVAILABLE   "not_available"  /* a command of a later issue */
#define CTL_E_TOO_LARGE	      "too_large"      /* line over CTL_MAX_REQUEST */
#define CTL_E_BUSY	      "busy"	       /* too many clients at once */
#define CTL_E_DATAPLANE_DOWN  "dataplane_down" /* no telemetry connection */
#define CTL_E_INTERNAL	      "internal"       /* out of memory, or a bug */
#define CTL_E_NOT_FOUND	      "not_found"      /* no such message (queue show/hold/...) */
#define CTL_E_INVALID	      "invalid"	       /* nothing to do: not held, held already, bad ID */
#define CTL_E_TRY_AGAIN	      "try_again"      /* the message is busy now: try again */

struct ctl_error {
	const char *code; /* one of CTL_E_* */
	char message[256];
};

/*
 * Finds the first line in BUF[0..LEN), where LEN <= MAX. Returns the bytes it
 * takes including its '\n' (> 0) and sets *LINE_LEN to its length without the
 * '\n' and a '\r' before it; returns 0 when no '\n' has come yet and LEN < MAX
 * (read more); returns -EMSGSIZE when MAX bytes hold no '\n'.
 */
ssize_t ctl_frame(const char *buf, size_t len, size_t max, size_t *line_len);

/* True when LINE[0..LEN) holds only spaces and tabs: a client's stray Enter, skipped. */
bool ctl_line_blank(const char *line, size_t len);

struct ctl_request {
	const struct ctl_cmd_info *cmd;
	json_t *id;	 /* a reference, or NULL; ctl_request_fini() drops it */
	unsigned span_s; /* stats: rate window in seconds; 0 = the daemon's default */
	char *file;	 /* config.reload: "file" (absolute), or NULL: the file in force */
	int level;	 /* log.level: "level", an enum cfg_log_level; -1 before parsing */
	char qid[32];	 /* queue.show/hold/release/delete: "id", checked (control/common/qid.h) */
};

/*
 * Parses one request line LINE[0..LEN) (no newline). Returns 0 and fills REQ,
 * or -EINVAL with ERR set (code and message) and REQ's id set when the line
 * had a usable one, so the error reply can carry it. A command of a later
 * issue parses (the daemon answers it with not_available). Call
 * ctl_request_fini() in both cases.
 */
int ctl_request_parse(const char *line, size_t len, struct ctl_request *req, struct ctl_error *err);

void ctl_request_fini(struct ctl_request *req);

/* The reply line (newline-terminated) to free(), or NULL when out of memory. RESULT is stolen. */
char *ctl_reply_ok(json_t *id, json_t *result);
char *ctl_reply_error(json_t *id, const char *code, const char *message);

/* Fills ERR with CODE and printf-style MESSAGE; returns -EINVAL for the caller to pass on. */
int ctl_error_set(struct ctl_error *err, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
