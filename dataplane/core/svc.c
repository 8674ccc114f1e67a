/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * How many rows of a service page fit one telemetry reply (svc.h): the
 * octets of each row as DPDK 22.11 writes compact JSON. Pure, so the unit
 * tests link it alone.
 */
#include <string.h>

#include "dataplane/core/svc.h"

static uint64_t val_u64(const struct dp_svc_val *v)
{
	return v->i > 0 ? (uint64_t)v->i : 0;
}

/* Octets of "rowN":{...}, in DPDK's compact JSON. */
static size_t row_bytes(const struct dp_svc_page *p, unsigned r)
{
	size_t n = 1 + sizeof("\"row31\":{}") - 1;

	for (unsigned c = 0; c < p->ncols[r]; c++) {
		const struct dp_svc_val *v = &p->rows[r][c];

		n += strlen(v->key) + 4; /* "key": and a comma */
		n += v->is_str ? strlen(v->s) + 2 : dp_u64_digits(val_u64(v));
	}
	return n;
}

unsigned dp_svc_rows_fitting(const struct dp_svc_page *p, size_t budget)
{
	size_t used = 0;
	unsigned n = 0;

	for (; n < p->nrows && n < DP_SVC_ROWS; n++) {
		used += row_bytes(p, n);
		if (used > budget)
			break;
	}
	return n;
}

