/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mxgatectl's side of the control socket: one connection, one request line
 * out and one reply line back per call, each bounded in time and size.
 */
#ifndef MX_CTL_CLIENT_H
#define MX_CTL_CLIENT_H

#include <jansson.h>

#define CTL_CALL_TIMEOUT_MS 5000

struct ctl_conn;

/*
 * Connects to the daemon at PATH. Returns the connection, or NULL with *ERR:
 * -ENOENT or -ECONNREFUSED (mxgate-control is not running), -EACCES, ...
 */
struct ctl_conn *ctl_conn_open(const char *path, int *err);

void ctl_conn_close(struct ctl_conn *c);

/*
 * Sends {"cmd": CMD, "args": ARGS} (ARGS may be NULL; it is not stolen) and
 * waits for the reply. Returns 0 with *REPLY the reply object (decref it), or
 * -ETIMEDOUT, -EPIPE/-ECONNRESET (the daemon went away), -EPROTO (the reply is
 * not JSON), -EMSGSIZE (over CTL_MAX_REPLY).
 */
int ctl_conn_call(struct ctl_conn *c, const char *cmd, json_t *args, json_t **reply);

#endif
