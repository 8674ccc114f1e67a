/* SPDX-License-Identifier: BSD-3-Clause */
/* Counter names for telemetry, generated from the same X-macro table as the enums. */
#include "counters.h"

#define DP_NAME_(e, name) [DP_C_##e] = name,
#define DP_DROP_NAME_(e, name) [DP_DROP_##e] = name,
const char *const dp_counter_names[DP_C_MAX] = {DP_TRAFFIC_COUNTERS(DP_NAME_)};
const char *const dp_drop_names[DP_DROP_MAX] = {DP_DROP_COUNTERS(DP_DROP_NAME_)};

void dp_stats_read(const struct dp_stats *s, struct dp_stats *out)
{
	for (unsigned i = 0; i < DP_C_MAX; i++)
		out->c[i] = __atomic_load_n(&s->c[i], __ATOMIC_RELAXED);
	for (unsigned i = 0; i < DP_DROP_MAX; i++)
		out->drop[i] = __atomic_load_n(&s->drop[i], __ATOMIC_RELAXED);
}

void dp_stats_add(struct dp_stats *a, const struct dp_stats *b)
{
	for (unsigned i = 0; i < DP_C_MAX; i++)
		a->c[i] += b->c[i];
	for (unsigned i = 0; i < DP_DROP_MAX; i++)
		a->drop[i] += b->drop[i];
}
