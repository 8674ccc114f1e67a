/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A page of rows the mail service on a worker fills for the main lcore's
 * telemetry (/mxgate/sessions, /mxgate/queue): the request, then up to
 * DP_SVC_ROWS rows of named values, each row with the cursor that follows
 * it, so telemetry can send as many rows as fit a reply (16 KiB in DPDK
 * 22.11) and name where the next page starts. It travels inside a
 * DP_CMD_SVC command (dp.h), in the same allocation, so whoever frees the
 * command frees the page.
 */
#ifndef MX_CORE_SVC_H
#define MX_CORE_SVC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DP_SVC_ROWS    32
#define DP_SVC_COLS    14
#define DP_SVC_STR_MAX 128 /* with its NUL: RTE_TEL_MAX_STRING_LEN */
#define DP_SVC_ARG_MAX 32
#define DP_SVC_END     UINT64_MAX /* no page follows */
/* Octets of rows in one telemetry reply: DPDK 22.11's 16 KiB, less its bookkeeping and ours */
#define DP_SVC_REPLY_BUDGET (16384 - 512)

enum dp_svc_op {
	DP_SVC_SESSIONS,      /* the worker's SMTP sessions */
	DP_SVC_QUEUE_LIST,    /* its queued messages */
	DP_SVC_QUEUE_SHOW,    /* ARG's message (row 0), then its recipients */
	DP_SVC_QUEUE_FLUSH,   /* deferred messages due now: one row with the count */
	DP_SVC_QUEUE_HOLD,    /* ARG: one row saying what was done */
	DP_SVC_QUEUE_RELEASE, /* ARG */
	DP_SVC_QUEUE_DELETE,  /* ARG */
	DP_SVC_OP_MAX
};

/* One value: KEY names it (a string literal of the service: it outlives the command). */
struct dp_svc_val {
	const char *key;
	bool is_str;
	int64_t i;
	char s[DP_SVC_STR_MAX];
};

struct dp_svc_page {
	/* the request */
	enum dp_svc_op op;
	char arg[DP_SVC_ARG_MAX]; /* a queue id */
	uint64_t cursor;	  /* where the page starts (0: the beginning) */
	/* the reply: rows[0..nrows), row r followed by cursor next[r] (DP_SVC_END: the last) */
	unsigned nrows;
	unsigned ncols[DP_SVC_ROWS];
	uint64_t next[DP_SVC_ROWS];
	struct dp_svc_val rows[DP_SVC_ROWS][DP_SVC_COLS];
	char error[DP_SVC_STR_MAX]; /* with the command's result < 0: why, for the operator */
};

/* Decimal digits of V: what it takes in a JSON reply (telemetry replies are sized ahead). */
static inline unsigned dp_u64_digits(uint64_t v)
{
	unsigned n = 1;

	while (v >= 10) {
		v /= 10;
		n++;
	}
	return n;
}

/*
 * How many of P's rows, from the first, fit BUDGET octets as telemetry's
 * compact JSON ("rowN":{"key":value,...}) -- what tel_svc.c sends of a page
 * before naming the next cursor. At least one row always fits
 * DP_SVC_REPLY_BUDGET: DP_SVC_COLS values of DP_SVC_STR_MAX octets do.
 */
unsigned dp_svc_rows_fitting(const struct dp_svc_page *p, size_t budget);

/* Appends a value to the row being filled (row P->nrows); past DP_SVC_COLS it is dropped. */
static inline struct dp_svc_val *dp_svc_col(struct dp_svc_page *p, const char *key)
{
	unsigned r = p->nrows, c;

	if (r >= DP_SVC_ROWS)
		return NULL;
	c = p->ncols[r];
	if (c >= DP_SVC_COLS)
		return NULL;
	p->ncols[r] = c + 1;
	p->rows[r][c].key = key;
	return &p->rows[r][c];
}

static inline void dp_svc_int(struct dp_svc_page *p, const char *key, int64_t v)
{
	struct dp_svc_val *x = dp_svc_col(p, key);

	if (x != NULL) {
		x->is_str = false;
		x->i = v;
	}
}

/* S is copied as printable ASCII ('"', '\\' and the rest become '?'), cut to fit. */
static inline void dp_svc_str(struct dp_svc_page *p, const char *key, const char *s)
{
	struct dp_svc_val *x = dp_svc_col(p, key);
	unsigned k = 0;

	if (x == NULL)
		return;
	x->is_str = true;
	for (; s != NULL && s[k] != '\0' && k + 1 < DP_SVC_STR_MAX; k++) {
		unsigned char c = (unsigned char)s[k];

		x->s[k] = c >= 0x20 && c < 0x7f && c != '"' && c != '\\' ? (char)c : '?';
	}
	x->s[k] = '\0';
}

/* Ends the row being filled; NEXT is the cursor after it. False when the page is full. */
static inline bool dp_svc_row_end(struct dp_svc_page *p, uint64_t next)
{
	if (p->nrows >= DP_SVC_ROWS)
		return false;
	p->next[p->nrows++] = next;
	return p->nrows < DP_SVC_ROWS;
}

_Static_assert(DP_SVC_COLS * (16 + 4 + DP_SVC_STR_MAX + 2) + 16 <= DP_SVC_REPLY_BUDGET,
	       "one full row must fit a telemetry reply");

#endif
