/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A fixed-bucket latency histogram for mxgate-gen: log-linear (16 linear
 * sub-buckets per power of two, so any value is within 1/16 of its bucket),
 * microseconds from 0 to 2^32-1. Recording is an index computation and one
 * counter increment: no allocation, no search. One writer (the worker); the
 * main lcore sums workers' histograms with relaxed loads for its reports.
 */
#ifndef MX_GEN_HIST_H
#define MX_GEN_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 4
#define HIST_SUB (1u << HIST_SUB_BITS)
/* Values below HIST_SUB have a bucket each; then HIST_SUB buckets per power of two up to 2^32. */
#define HIST_BUCKETS ((32 - HIST_SUB_BITS + 1) * HIST_SUB)

/* All-zero is an empty histogram. */
struct hist {
	uint64_t n;
	uint64_t max;
	uint64_t b[HIST_BUCKETS];
};

static inline unsigned hist_index(uint64_t v)
{
	if (v > UINT32_MAX)
		v = UINT32_MAX;
	if (v < HIST_SUB)
		return (unsigned)v;
	unsigned e = 63u - (unsigned)__builtin_clzll(v); /* >= HIST_SUB_BITS */
	unsigned sub = (unsigned)(v >> (e - HIST_SUB_BITS)) & (HIST_SUB - 1);
	return (e - HIST_SUB_BITS + 1) * HIST_SUB + sub;
}

/* The largest value that falls into bucket I. */
static inline uint64_t hist_bucket_high(unsigned i)
{
	if (i < HIST_SUB)
		return i;
	unsigned e = i / HIST_SUB + HIST_SUB_BITS - 1, sub = i % HIST_SUB;
	uint64_t low = (uint64_t)(HIST_SUB + sub) << (e - HIST_SUB_BITS);
	return low + (1ull << (e - HIST_SUB_BITS)) - 1;
}

/* Single writer: relaxed stores, so another lcore may read while it runs. */
static inline void hist_add(struct hist *h, uint64_t v)
{
	unsigned i = hist_index(v);

	__atomic_store_n(&h->b[i], h->b[i] + 1, __ATOMIC_RELAXED);
	__atomic_store_n(&h->n, h->n + 1, __ATOMIC_RELAXED);
	if (v > h->max)
		__atomic_store_n(&h->max, v, __ATOMIC_RELAXED);
}

/* Adds a snapshot of SRC (being written by its worker) to DST (private). */
void hist_merge(struct hist *dst, const struct hist *src);

/*
 * The value at quantile Q (0..1) of H: the upper bound of the bucket that
 * holds it (never below the truth, at most 1/16 above), capped at the
 * largest value seen. 0 for an empty histogram.
 */
uint64_t hist_quantile(const struct hist *h, double q);

#endif
