/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Blocking questions to the dataplane's telemetry socket for operator
 * commands (sessions, the queue): its own connection, so the sampler
 * (tel.h) never waits behind a long listing, and a deadline for the whole
 * conversation, so mxgate-control's event loop is never held longer than
 * DPQ_DEADLINE_MS (mxgatectl waits 5 s for a reply).
 */
#ifndef MX_CTLD_DPQ_H
#define MX_CTLD_DPQ_H

#include <stdint.h>

#include <jansson.h>

#define DPQ_DEADLINE_MS 3500

struct dpq;

/* Connects to the socket at PATH; NULL with a reason in ERR. */
struct dpq *dpq_open(const char *path, char *err, size_t errlen);

/*
 * Sends CMD ("/mxgate/queue,0,list") and returns the value of its reply (a
 * new reference), or NULL with a reason in ERR (timeout, closed, not JSON,
 * or the dataplane's {"error": ...} answer: then *CODE is its code).
 */
json_t *dpq_call(struct dpq *q, const char *cmd, const char **code, char *err, size_t errlen);

void dpq_close(struct dpq *q);

#endif
