/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * EAL's command line, built from the config: lcores pinned to the configured
 * CPUs, memory mode, file prefix, and exactly the devices the config names
 * (--no-pci unless a port is a PCI device, then an allowlist).
 */
#ifndef MX_CORE_EAL_H
#define MX_CORE_EAL_H

#include <stddef.h>

#include "control/config/config.h"

#define EAL_MAX_ARGS 96

struct eal_argv {
	int argc;
	char *argv[EAL_MAX_ARGS + 1]; /* NULL-terminated; points into buf */
	char buf[8192];
	size_t used;
};

/*
 * Fills A with PROG, the arguments CFG implies, then N_EXTRA extra arguments
 * (the config's eal_args and the command line's, which win by coming last).
 * Lcore 0 is the main lcore on main_core; lcore i+1 is worker i.
 * Returns argc, or -E2BIG if it does not fit.
 */
int eal_argv_build(struct eal_argv *a, const struct cfg *cfg, const char *prog,
		   char *const *extra, int n_extra);

#endif
