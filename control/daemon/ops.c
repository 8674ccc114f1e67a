/* SPDX-License-Identifier: BSD-3-Clause */
/* mxgatectl sessions and queue, gathered from the dataplane's pages (see ops.h). */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "control/common/proto.h"
#include "control/common/qid.h"
#include "control/daemon/dpq.h"
#include "control/daemon/ops.h"

static void fail(struct ops_error *e, const char *code, const char *fmt, const char *a)
{
	e->code = code;
	snprintf(e->message, sizeof(e->message), fmt, a);
}

/* The dataplane's refusal CODE as ours. */
static const char *map_code(const char *code)
{
	if (code == NULL)
		return CTL_E_DATAPLANE_DOWN;
	if (strcmp(code, "not_found") == 0)
		return CTL_E_NOT_FOUND;
	if (strcmp(code, "busy") == 0)
		return CTL_E_TRY_AGAIN;
	if (strcmp(code, "invalid") == 0)
		return CTL_E_INVALID;
	if (strcmp(code, "unsupported") == 0)
		return CTL_E_NOT_AVAILABLE;
	return CTL_E_INTERNAL;
}

/*
 * Walks the pages of BASE (",CURSOR" appended past the first) into ROWS,
 * each row tagged with its worker. Returns 0, 1 when OPS_MAX_ROWS cut it
 * short, or -1 with E set.
 */
static int walk(struct dpq *q, const char *base, json_t *rows, struct ops_error *e)
{
	char cmd[160];
	json_int_t cursor = -1;

	for (;;) {
		const char *code;
		json_t *page, *next;
		char err[256];

		if (cursor < 0)
			snprintf(cmd, sizeof(cmd), "%s", base);
		else
			snprintf(cmd, sizeof(cmd), "%s,%lld", base, (long long)cursor);
		page = dpq_call(q, cmd, &code, err, sizeof(err));
		if (page == NULL) {
			fail(e, map_code(code), "%s", err);
			return -1;
		}
		json_t *w = json_object_get(page, "worker");
		json_int_t n = json_integer_value(json_object_get(page, "rows"));
		for (json_int_t i = 0; i < n; i++) {
			char key[32];
			json_t *row;

			snprintf(key, sizeof(key), "row%lld", (long long)i);
			row = json_object_get(page, key);
			if (!json_is_object(row))
				continue;
			if (json_array_size(rows) >= OPS_MAX_ROWS) {
				json_decref(page);
				return 1;
			}
			json_object_set(row, "worker", w);
			json_array_append(rows, row);
		}
		next = json_object_get(page, "next");
		cursor = json_is_integer(next) ? json_integer_value(next) : -1;
		json_decref(page);
		if (cursor < 0)
			return 0;
		if (n == 0) {
			fail(e, CTL_E_INTERNAL, "%s", "the dataplane sent an empty page with a next one");
			return -1;
		}
	}
}

static struct dpq *connect_dp(const char *path, struct ops_error *e)
{
	char err[256];
	struct dpq *q = dpq_open(path, err, sizeof(err));

	if (q == NULL)
		fail(e, CTL_E_DATAPLANE_DOWN, "%s", err);
	return q;
}

json_t *ops_sessions(const char *path, unsigned workers, struct ops_error *e)
{
	struct dpq *q = connect_dp(path, e);
	json_t *rows = json_array();
	bool cut = false;
	char base[64];

	if (q == NULL) {
		json_decref(rows);
		return NULL;
	}
	for (unsigned w = 0; w < workers && !cut; w++) {
		snprintf(base, sizeof(base), "/mxgate/sessions,%u", w);
		int rc = walk(q, base, rows, e);

		if (rc < 0) {
			dpq_close(q);
			json_decref(rows);
			return NULL;
		}
		cut = rc > 0;
	}
	dpq_close(q);
	return json_pack("{s:I, s:b, s:i, s:o}", "count", (json_int_t)json_array_size(rows),
			 "truncated", cut, "limit", OPS_MAX_ROWS, "sessions", rows);
}

static json_t *queue_list(struct dpq *q, unsigned workers, struct ops_error *e)
{
	json_t *rows = json_array();
	bool cut = false;
	char base[64];

	for (unsigned w = 0; w < workers && !cut; w++) {
		snprintf(base, sizeof(base), "/mxgate/queue,%u,list", w);
		int rc = walk(q, base, rows, e);

		if (rc < 0) {
			json_decref(rows);
			return NULL;
		}
		cut = rc > 0;
	}
	return json_pack("{s:I, s:b, s:i, s:o}", "count", (json_int_t)json_array_size(rows),
			 "truncated", cut, "limit", OPS_MAX_ROWS, "messages", rows);
}

static json_t *queue_flush(struct dpq *q, unsigned workers, struct ops_error *e)
{
	json_t *by = json_object();
	json_int_t total = 0;

	for (unsigned w = 0; w < workers; w++) {
		char cmd[64], err[256], key[16];
		const char *code;
		json_t *page;

		snprintf(cmd, sizeof(cmd), "/mxgate/queue,%u,flush", w);
		page = dpq_call(q, cmd, &code, err, sizeof(err));
		if (page == NULL) {
			json_decref(by);
			fail(e, map_code(code), "%s", err);
			return NULL;
		}
		json_int_t n = json_integer_value(
			json_object_get(json_object_get(page, "row0"), "flushed"));
		snprintf(key, sizeof(key), "%u", w);
		json_object_set_new(by, key, json_integer(n));
		total += n;
		json_decref(page);
	}
	return json_pack("{s:I, s:o}", "flushed", total, "by_worker", by);
}

static json_t *queue_one(struct dpq *q, unsigned workers, const char *op, const char *qid,
			 struct ops_error *e)
{
	char id[CTL_QID_LEN + 1], base[96];
	int w = ctl_qid_parse(qid, id);

	if (w < 0) {
		fail(e, CTL_E_INVALID, "'%.40s' is not a queue ID (20 characters of base32)", qid);
		return NULL;
	}
	if ((unsigned)w >= workers) {
		e->code = CTL_E_NOT_FOUND;
		snprintf(e->message, sizeof(e->message),
			 "no message %s: its ID names worker %d, and mxgate-dp runs %u", id, w,
			 workers);
		return NULL;
	}
	snprintf(base, sizeof(base), "/mxgate/queue,%d,%s,%s", w, op, id);
	if (strcmp(op, "show") != 0) {
		char err[256];
		const char *code;
		json_t *page = dpq_call(q, base, &code, err, sizeof(err));
		json_t *row = json_object_get(page, "row0");

		if (page == NULL) {
			fail(e, map_code(code), "%s", err);
			return NULL;
		}
		json_t *r = json_pack("{s:s, s:i, s:O?}", "id", id, "worker", w, "done",
				      json_object_get(row, "done"));
		json_decref(page);
		return r;
	}
	json_t *rows = json_array(), *msg = NULL, *rcpts = json_array();
	int rc = walk(q, base, rows, e);

	if (rc < 0) {
		json_decref(rows);
		json_decref(rcpts);
		return NULL;
	}
	size_t i;
	json_t *row;
	json_array_foreach(rows, i, row) {
		const char *kind = json_string_value(json_object_get(row, "kind"));
		bool is_msg = kind != NULL && strcmp(kind, "message") == 0 && msg == NULL;

		json_object_del(row, "kind");
		if (is_msg)
			msg = json_incref(row);
		else
			json_array_append(rcpts, row);
	}
	json_decref(rows);
	if (msg == NULL) {
		json_decref(rcpts);
		fail(e, CTL_E_INTERNAL, "%s", "the dataplane's answer holds no message row");
		return NULL;
	}
	return json_pack("{s:o, s:o, s:b}", "message", msg, "recipients", rcpts, "truncated",
			 rc > 0);
}

json_t *ops_queue(const char *path, unsigned workers, const char *op, const char *qid,
		  struct ops_error *e)
{
	struct dpq *q = connect_dp(path, e);
	json_t *r;

	if (q == NULL)
		return NULL;
	if (strcmp(op, "list") == 0)
		r = queue_list(q, workers, e);
	else if (strcmp(op, "flush") == 0)
		r = queue_flush(q, workers, e);
	else
		r = queue_one(q, workers, op, qid, e);
	dpq_close(q);
	if (r == NULL && e->code == NULL)
		fail(e, CTL_E_INTERNAL, "%s", "out of memory");
	return r;
}
