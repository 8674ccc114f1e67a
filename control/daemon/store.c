/* SPDX-License-Identifier: BSD-3-Clause */
/* The window of counter samples and the rates over it (see store.h). */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "control/daemon/store.h"

struct sample {
	uint64_t t_ms;
	uint64_t *v[CTL_T_MAX]; /* n_rows * n_cols of the kind's layout */
};

struct ctl_store {
	unsigned cap;
	unsigned head; /* index of the next slot to write */
	unsigned count;
	struct sample *ring;
	struct ctl_layout layout[CTL_T_MAX];
	json_t *info;
	json_t *ports;
	json_int_t uptime_s; /* of the latest sample, -1 when unknown */
};

static void layout_free(struct ctl_layout *l)
{
	for (unsigned i = 0; i < l->n_rows; i++)
		free(l->rows[i]);
	for (unsigned i = 0; i < l->n_cols; i++)
		free(l->cols[i]);
	free(l->rows);
	free(l->cols);
	memset(l, 0, sizeof(*l));
}

static bool layout_eq(const struct ctl_layout *a, const struct ctl_layout *b)
{
	if (a->n_rows != b->n_rows || a->n_cols != b->n_cols)
		return false;
	for (unsigned i = 0; i < a->n_rows; i++)
		if (strcmp(a->rows[i], b->rows[i]) != 0)
			return false;
	for (unsigned i = 0; i < a->n_cols; i++)
		if (strcmp(a->cols[i], b->cols[i]) != 0)
			return false;
	return true;
}

int ctl_layout_col(const struct ctl_layout *l, const char *name)
{
	for (unsigned i = 0; i < l->n_cols; i++)
		if (strcmp(l->cols[i], name) == 0)
			return (int)i;
	return -1;
}

int ctl_layout_row(const struct ctl_layout *l, const char *name)
{
	for (unsigned i = 0; i < l->n_rows; i++)
		if (strcmp(l->rows[i], name) == 0)
			return (int)i;
	return -1;
}

static int push_name(char ***names, unsigned *n, const char *name)
{
	char **p = realloc(*names, (*n + 1) * sizeof(**names));

	if (p == NULL)
		return -ENOMEM;
	*names = p;
	p[*n] = strdup(name);
	if (p[*n] == NULL)
		return -ENOMEM;
	(*n)++;
	return 0;
}

/*
 * {"row": {"counter": N, "label": "text", ...}, ...} into a layout (rows in
 * order, the union of integer-valued keys as columns, in order of first
 * appearance) and the values, 0 where a row lacks a column. Strings and other
 * values are left to the caller, who keeps the reply.
 */
static int flatten(json_t *obj, struct ctl_layout *l, uint64_t **values)
{
	const char *rk, *ck;
	json_t *row, *v;
	int rc;

	memset(l, 0, sizeof(*l));
	*values = NULL;
	if (!json_is_object(obj))
		return -EINVAL;
	json_object_foreach(obj, rk, row) {
		if (!json_is_object(row))
			return -EINVAL;
		if ((rc = push_name(&l->rows, &l->n_rows, rk)) != 0)
			return rc;
		json_object_foreach(row, ck, v) {
			if (json_is_integer(v) && ctl_layout_col(l, ck) < 0 &&
			    (rc = push_name(&l->cols, &l->n_cols, ck)) != 0)
				return rc;
		}
	}
	*values = calloc((size_t)l->n_rows * l->n_cols + 1, sizeof(**values));
	if (*values == NULL)
		return -ENOMEM;

	unsigned r = 0;

	json_object_foreach(obj, rk, row) {
		for (unsigned c = 0; c < l->n_cols; c++) {
			json_t *x = json_object_get(row, l->cols[c]);
			json_int_t n = json_is_integer(x) ? json_integer_value(x) : 0;

			(*values)[(size_t)r * l->n_cols + c] = n > 0 ? (uint64_t)n : 0;
		}
		r++;
	}
	return 0;
}

struct ctl_store *ctl_store_new(unsigned capacity)
{
	struct ctl_store *s = calloc(1, sizeof(*s));

	if (s == NULL || capacity < 2)
		goto fail;
	s->cap = capacity;
	s->ring = calloc(capacity, sizeof(*s->ring));
	if (s->ring == NULL)
		goto fail;
	s->uptime_s = -1;
	return s;
fail:
	free(s);
	return NULL;
}

void ctl_store_clear(struct ctl_store *s)
{
	for (unsigned i = 0; i < s->cap; i++)
		for (unsigned k = 0; k < CTL_T_MAX; k++) {
			free(s->ring[i].v[k]);
			s->ring[i].v[k] = NULL;
		}
	s->head = 0;
	s->count = 0;
	s->uptime_s = -1;
	json_decref(s->info);
	json_decref(s->ports);
	s->info = NULL;
	s->ports = NULL;
}

void ctl_store_free(struct ctl_store *s)
{
	if (s == NULL)
		return;
	ctl_store_clear(s);
	for (unsigned k = 0; k < CTL_T_MAX; k++)
		layout_free(&s->layout[k]);
	free(s->ring);
	free(s);
}

int ctl_store_push(struct ctl_store *s, uint64_t t_ms, json_t *info, json_t *stats, json_t *gauges,
		   json_t *ports)
{
	struct ctl_layout l[CTL_T_MAX] = { 0 };
	uint64_t *v[CTL_T_MAX] = { NULL };
	json_t *up = json_object_get(info, "uptime_s");
	int rc, restarted = 0;

	if (!json_is_object(info) || !json_is_integer(up)) {
		rc = -EINVAL;
		goto out;
	}
	if ((rc = flatten(stats, &l[CTL_T_STATS], &v[CTL_T_STATS])) != 0 ||
	    (rc = flatten(gauges, &l[CTL_T_GAUGES], &v[CTL_T_GAUGES])) != 0 ||
	    (rc = flatten(ports, &l[CTL_T_PORTS], &v[CTL_T_PORTS])) != 0)
		goto out;
	if (l[CTL_T_STATS].n_rows == 0 || l[CTL_T_STATS].n_cols == 0) {
		rc = -EINVAL;
		goto out;
	}
	/* A restart shows as uptime going back; a reconnect has cleared the window already. */
	if (s->count != 0 && (json_integer_value(up) < s->uptime_s ||
			      !layout_eq(&l[CTL_T_STATS], &s->layout[CTL_T_STATS]) ||
			      !layout_eq(&l[CTL_T_GAUGES], &s->layout[CTL_T_GAUGES]) ||
			      !layout_eq(&l[CTL_T_PORTS], &s->layout[CTL_T_PORTS]))) {
		ctl_store_clear(s);
		restarted = 1;
	}
	for (unsigned k = 0; k < CTL_T_MAX; k++) {
		if (s->count == 0 || !layout_eq(&l[k], &s->layout[k])) {
			layout_free(&s->layout[k]);
			s->layout[k] = l[k];
			memset(&l[k], 0, sizeof(l[k]));
		}
	}

	struct sample *slot = &s->ring[s->head];

	for (unsigned k = 0; k < CTL_T_MAX; k++) {
		free(slot->v[k]);
		slot->v[k] = v[k];
		v[k] = NULL;
	}
	slot->t_ms = t_ms;
	s->head = (s->head + 1) % s->cap;
	if (s->count < s->cap)
		s->count++;
	s->uptime_s = json_integer_value(up);
	json_decref(s->info);
	json_decref(s->ports);
	s->info = json_incref(info);
	s->ports = json_incref(ports);
	rc = restarted;
out:
	for (unsigned k = 0; k < CTL_T_MAX; k++) {
		layout_free(&l[k]);
		free(v[k]);
	}
	return rc;
}

unsigned ctl_store_count(const struct ctl_store *s)
{
	return s->count;
}

/* The Ith newest sample: 0 is the latest. */
static const struct sample *nth_newest(const struct ctl_store *s, unsigned i)
{
	return &s->ring[(s->head + s->cap - 1 - i) % s->cap];
}

uint64_t ctl_store_latest_ms(const struct ctl_store *s)
{
	return s->count != 0 ? nth_newest(s, 0)->t_ms : 0;
}

const struct ctl_layout *ctl_store_layout(const struct ctl_store *s, enum ctl_table_kind k)
{
	return &s->layout[k];
}

const uint64_t *ctl_store_latest(const struct ctl_store *s, enum ctl_table_kind k)
{
	return s->count != 0 ? nth_newest(s, 0)->v[k] : NULL;
}

json_t *ctl_store_info(const struct ctl_store *s)
{
	return s->info;
}

json_t *ctl_store_ports(const struct ctl_store *s)
{
	return s->ports;
}

uint64_t ctl_store_rates(const struct ctl_store *s, enum ctl_table_kind k, uint64_t span_ms,
			 double *rates)
{
	const struct ctl_layout *l = &s->layout[k];
	const struct sample *now, *then = NULL;
	size_t cells = (size_t)l->n_rows * l->n_cols;

	if (s->count < 2)
		return 0;
	now = nth_newest(s, 0);
	for (unsigned i = 1; i < s->count; i++) {
		const struct sample *o = nth_newest(s, i);

		if (now->t_ms - o->t_ms > span_ms + span_ms / 10)
			break;
		then = o;
	}
	if (then == NULL || now->t_ms <= then->t_ms)
		return 0;

	double secs = (double)(now->t_ms - then->t_ms) / 1000.0;

	for (size_t c = 0; c < cells; c++)
		rates[c] = now->v[k][c] >= then->v[k][c] ?
				   (double)(now->v[k][c] - then->v[k][c]) / secs :
				   0.0;
	return now->t_ms - then->t_ms;
}
