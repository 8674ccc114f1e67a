/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * /mxgate/sessions and /mxgate/queue: what the mail service on one worker
 * holds (SMTP sessions, queued messages), asked of that worker through its
 * command ring (DP_CMD_SVC, svc.h) and sent a page at a time. A worker
 * fills up to DP_SVC_ROWS rows, each with the cursor that follows it; this
 * side sends as many as fit one telemetry reply (16 KiB in DPDK 22.11, see
 * telemetry.c) and names the cursor of the next page in "next", so nothing
 * is ever cut short without a word. Callers (mxgate-control) walk the pages.
 *
 *   /mxgate/sessions,W[,CURSOR]
 *   /mxgate/queue,W,list[,CURSOR]     /mxgate/queue,W,show,QID[,CURSOR]
 *   /mxgate/queue,W,flush             /mxgate/queue,W,hold|release|delete,QID
 *
 * Reply: {"worker": W, "rows": N, "next": CURSOR (absent on the last page),
 * "row0": {...}, ...}, or {"error": "...", "code": "not_found" | "busy" |
 * "invalid" | "unsupported" | "failed"}.
 */
#include "dp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_malloc.h>
#include <rte_telemetry.h>

#define SVC_TIMEOUT_MS 2000
#define REPLY_BUDGET   DP_SVC_REPLY_BUDGET

static const char *const op_names[DP_SVC_OP_MAX] = {
	[DP_SVC_SESSIONS] = "sessions",	  [DP_SVC_QUEUE_LIST] = "list",
	[DP_SVC_QUEUE_SHOW] = "show",	  [DP_SVC_QUEUE_FLUSH] = "flush",
	[DP_SVC_QUEUE_HOLD] = "hold",	  [DP_SVC_QUEUE_RELEASE] = "release",
	[DP_SVC_QUEUE_DELETE] = "delete",
};

static int reply_error(struct rte_tel_data *d, const char *code, const char *msg)
{
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_string(d, "error", msg);
	rte_tel_data_add_dict_string(d, "code", code);
	return 0;
}

static uint64_t val_u64(const struct dp_svc_val *v)
{
	return v->i > 0 ? (uint64_t)v->i : 0;
}

/* A whole number in S[0..), at most MAX: 0, or -1. */
static int number(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (s == NULL || s[0] < '0' || s[0] > '9' || strlen(s) > 20)
		return -1;
	v = strtoull(s, &end, 10);
	if (*end != '\0' || v > max)
		return -1;
	*out = v;
	return 0;
}

static int run_page(struct rte_tel_data *d, unsigned w, enum dp_svc_op op, const char *arg,
		    uint64_t cursor)
{
	struct dp_cmd *c = rte_zmalloc("dp_cmd", sizeof(*c) + sizeof(struct dp_svc_page), 0);
	char msg[RTE_TEL_MAX_STRING_LEN], name[16];
	int rc;

	if (c == NULL)
		return -ENOMEM;
	c->type = DP_CMD_SVC;
	c->svc[0].op = op;
	c->svc[0].cursor = cursor;
	snprintf(c->svc[0].arg, sizeof(c->svc[0].arg), "%s", arg != NULL ? arg : "");
	rc = dp_telemetry_run(w, c, SVC_TIMEOUT_MS);
	if (rc == -ETIMEDOUT) /* the command is the worker's now */
		return reply_error(d, "busy", "the worker did not answer within 2 s");
	if (rc != 0)
		return rc;
	const struct dp_svc_page *p = &c->svc[0];
	if (c->result != 0) {
		static const struct {
			int err;
			const char *code;
		} codes[] = { { -ENOENT, "not_found" }, { -EBUSY, "busy" },   { -ENOBUFS, "busy" },
			      { -EINVAL, "invalid" },	{ -EALREADY, "invalid" },
			      { -ENOTSUP, "unsupported" } };
		const char *code = "failed";

		for (size_t i = 0; i < RTE_DIM(codes); i++)
			if (codes[i].err == c->result)
				code = codes[i].code;
		snprintf(msg, sizeof(msg), "%s", p->error[0] ? p->error : strerror(-c->result));
		rte_free(c);
		return reply_error(d, code, msg);
	}
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_u64(d, "worker", w);
	unsigned fit = dp_svc_rows_fitting(p, REPLY_BUDGET), sent = 0;
	for (; sent < fit; sent++) {
		struct rte_tel_data *row = rte_tel_data_alloc();

		if (row == NULL)
			break;
		rte_tel_data_start_dict(row);
		for (unsigned k = 0; k < p->ncols[sent]; k++) {
			const struct dp_svc_val *v = &p->rows[sent][k];

			if (v->is_str)
				rte_tel_data_add_dict_string(row, v->key, v->s);
			else
				rte_tel_data_add_dict_u64(row, v->key, val_u64(v));
		}
		snprintf(name, sizeof(name), "row%u", sent);
		rte_tel_data_add_dict_container(d, name, row, 0);
	}
	rte_tel_data_add_dict_u64(d, "rows", sent);
	/* the cursor after the last row sent: the page's own end, or where it was cut; one
	 * row always fits (svc.h's limits), so a page with rows never sends none */
	uint64_t next = sent > 0 ? p->next[sent - 1] : DP_SVC_END;
	if (next != DP_SVC_END)
		rte_tel_data_add_dict_u64(d, "next", next);
	rte_free(c);
	return 0;
}

/* The worker W of PARAM ("W"): 0, or an error reply made. */
static int worker_param(struct rte_tel_data *d, const char *s, unsigned *w)
{
	unsigned n = dp_telemetry_workers();
	char msg[RTE_TEL_MAX_STRING_LEN];
	uint64_t v;

	if (n == 0)
		return -ESHUTDOWN;
	if (number(s, n - 1, &v) != 0) {
		snprintf(msg, sizeof(msg), "no such worker '%.32s': give a number from 0 to %u",
			 s != NULL ? s : "", n - 1);
		reply_error(d, "invalid", msg);
		return 1;
	}
	*w = (unsigned)v;
	return 0;
}

/* Splits a copy of PARAMS at commas into at most MAX fields; returns how many. */
static unsigned split(const char *params, char *buf, size_t cap, char **f, unsigned max)
{
	unsigned n = 0;
	char *save = NULL;

	if (params == NULL || strlen(params) >= cap)
		return 0;
	strcpy(buf, params);
	for (char *t = strtok_r(buf, ",", &save); t != NULL && n < max;
	     t = strtok_r(NULL, ",", &save))
		f[n++] = t;
	return strtok_r(NULL, ",", &save) != NULL ? max + 1 : n;
}

static int cmd_sessions(const char *cmd __rte_unused, const char *params, struct rte_tel_data *d)
{
	char buf[96], *f[3];
	unsigned n = split(params, buf, sizeof(buf), f, 2), w;
	uint64_t cursor = 0;
	int rc;

	if (n == 0 || n > 2)
		return reply_error(d, "invalid", "parameters: WORKER[,CURSOR]");
	rc = worker_param(d, f[0], &w);
	if (rc != 0)
		return rc < 0 ? rc : 0;
	if (n == 2 && number(f[1], DP_SVC_END - 1, &cursor) != 0)
		return reply_error(d, "invalid", "the cursor is not a number");
	return run_page(d, w, DP_SVC_SESSIONS, NULL, cursor);
}

static int cmd_queue(const char *cmd __rte_unused, const char *params, struct rte_tel_data *d)
{
	char buf[160], *f[5];
	unsigned n = split(params, buf, sizeof(buf), f, 4), w;
	enum dp_svc_op op = DP_SVC_OP_MAX;
	uint64_t cursor = 0;
	int rc;

	if (n < 2 || n > 4)
		return reply_error(d, "invalid",
				   "parameters: WORKER,list[,CURSOR] | WORKER,show,ID[,CURSOR] | "
				   "WORKER,flush | WORKER,hold|release|delete,ID");
	rc = worker_param(d, f[0], &w);
	if (rc != 0)
		return rc < 0 ? rc : 0;
	for (unsigned i = DP_SVC_QUEUE_LIST; i < DP_SVC_OP_MAX; i++)
		if (strcmp(f[1], op_names[i]) == 0)
			op = (enum dp_svc_op)i;
	if (op == DP_SVC_OP_MAX)
		return reply_error(d, "invalid",
				   "no such queue operation: list, show, flush, hold, release, delete");
	bool with_id = op != DP_SVC_QUEUE_LIST && op != DP_SVC_QUEUE_FLUSH;
	bool paged = op == DP_SVC_QUEUE_LIST || op == DP_SVC_QUEUE_SHOW;
	unsigned want = 2 + with_id;

	if (n < want)
		return reply_error(d, "invalid", "this operation needs a message ID");
	if (n > want + paged)
		return reply_error(d, "invalid", "too many parameters");
	if (with_id && strlen(f[2]) >= DP_SVC_ARG_MAX)
		return reply_error(d, "invalid", "the message ID is too long");
	if (n == want + 1 && number(f[want], DP_SVC_END - 1, &cursor) != 0)
		return reply_error(d, "invalid", "the cursor is not a number");
	return run_page(d, w, op, with_id ? f[2] : NULL, cursor);
}

int dp_telemetry_register_svc(void)
{
	int rc = 0;

	rc |= rte_telemetry_register_cmd("/mxgate/sessions", cmd_sessions,
					 "One worker's SMTP sessions, a page at a time. "
					 "Parameters: WORKER[,CURSOR]");
	rc |= rte_telemetry_register_cmd("/mxgate/queue", cmd_queue,
					 "A worker's queue. Parameters: W,list[,CURSOR] | W,show,ID[,CURSOR]"
					 " | W,flush | W,hold|release|delete,ID");
	return rc ? -EINVAL : 0;
}
_Static_assert(sizeof("A worker's queue. Parameters: W,list[,CURSOR] | W,show,ID[,CURSOR]"
		      " | W,flush | W,hold|release|delete,ID") <= RTE_TEL_MAX_STRING_LEN,
	       "DPDK refuses a help text longer than RTE_TEL_MAX_STRING_LEN");
