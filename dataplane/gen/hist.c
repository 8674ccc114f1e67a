/* SPDX-License-Identifier: BSD-3-Clause */
/* mxgate-gen's latency histogram: summing and reading (hist.h). */
#include "dataplane/gen/hist.h"

#include <math.h>

void hist_merge(struct hist *dst, const struct hist *src)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		uint64_t c = __atomic_load_n(&src->b[i], __ATOMIC_RELAXED);
		dst->b[i] += c;
		n += c;
	}
	/* the count from the buckets themselves, so quantiles never run past the end */
	dst->n += n;
	uint64_t m = __atomic_load_n(&src->max, __ATOMIC_RELAXED);
	if (m > dst->max)
		dst->max = m;
}

uint64_t hist_quantile(const struct hist *h, double q)
{
	if (h->n == 0)
		return 0;
	uint64_t rank = (uint64_t)ceil(q * (double)h->n);
	if (rank == 0)
		rank = 1;
	uint64_t seen = 0;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= rank) {
			uint64_t v = hist_bucket_high(i);
			return v < h->max ? v : h->max;
		}
	}
	return h->max;
}
