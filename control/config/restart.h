/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What a hitless reload cannot change. mxgate-dp builds its lcores, ports,
 * memory, TCP stacks, listening sockets, session pools, spool shards and
 * relay schedulers once, at start; mxgate-control binds its socket and
 * metrics address once. A reload that would change any of those is refused
 * as a whole (nothing is applied) and names every key that needs a restart,
 * so the running system always matches one file, never half of two.
 * The tls: section is made into per-worker contexts at start too;
 * listeners[].tls (none, starttls, implicit) applies to new sessions.
 */
#ifndef MX_CONFIG_RESTART_H
#define MX_CONFIG_RESTART_H

#include "control/config/config.h"

/* Whose restart a key needs. */
enum cfg_restart_who {
	CFG_RESTART_DP = 1,	 /* mxgate-dp */
	CFG_RESTART_CONTROL = 2, /* mxgate-control */
};

/*
 * Called once per key that differs: KEY is the path as the file spells it
 * ("dataplane.worker_cores", "listeners[1].port"), OLD and NEW the values
 * as text, WHY what makes it need a restart.
 */
typedef void (*cfg_restart_fn)(void *arg, const char *key, const char *old_val,
			       const char *new_val, const char *why);

/*
 * Compares RUN (the config in force) with NEXT (a loaded, valid config) on
 * the keys WHO (a mask of cfg_restart_who) cannot change without a restart,
 * calling FN for each difference (FN may be NULL to only count). Returns
 * how many differ: 0 means NEXT can be applied hitlessly.
 */
unsigned cfg_restart_diff(const struct cfg *run, const struct cfg *next, unsigned who,
			  cfg_restart_fn fn, void *arg);

#endif
