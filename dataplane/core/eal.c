/* SPDX-License-Identifier: BSD-3-Clause */
/* Builds EAL's argv from the config; see eal.h. */
#include "eal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int add(struct eal_argv *a, const char *fmt, ...)
{
	va_list ap;
	size_t room = sizeof(a->buf) - a->used;

	if (a->argc >= EAL_MAX_ARGS)
		return -E2BIG;
	va_start(ap, fmt);
	int n = vsnprintf(a->buf + a->used, room, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= room)
		return -E2BIG;
	a->argv[a->argc++] = a->buf + a->used;
	a->argv[a->argc] = NULL;
	a->used += (size_t)n + 1;
	return 0;
}

int eal_argv_build(struct eal_argv *a, const struct cfg *cfg, const char *prog,
		   char *const *extra, int n_extra)
{
	const struct cfg_dataplane *d = &cfg->dp;
	char lcores[1024];
	size_t off = 0;
	bool any_pci = false;
	int rc = 0;

	memset(a, 0, sizeof(*a));
	rc |= add(a, "%s", prog);

	/* --lcores maps logical ids to CPUs, so workers may share a CPU on small boxes. */
	off += (size_t)snprintf(lcores, sizeof(lcores), "0@%u", d->main_core);
	for (unsigned i = 0; i < d->n_workers && off < sizeof(lcores); i++)
		off += (size_t)snprintf(lcores + off, sizeof(lcores) - off, ",%u@%u", i + 1,
					d->worker_cores[i]);
	if (off >= sizeof(lcores))
		return -E2BIG;
	rc |= add(a, "--lcores=%s", lcores);
	rc |= add(a, "--main-lcore=0");

	if (d->memory_mode == CFG_MEM_NO_HUGE) {
		rc |= add(a, "--no-huge");
		rc |= add(a, "-m");
		rc |= add(a, "%u", d->memory_mb);
	}
	if (d->in_memory)
		rc |= add(a, "--in-memory");
	rc |= add(a, "--file-prefix=%s", d->file_prefix);

	/* Only what the config names: a PCI allowlist, or no PCI bus scan at all. */
	for (unsigned i = 0; i < d->n_ports; i++) {
		if (d->ports[i].is_pci) {
			any_pci = true;
			rc |= add(a, "-a");
			rc |= add(a, "%s", d->ports[i].device);
		} else {
			rc |= add(a, "--vdev=%s", d->ports[i].device);
		}
	}
	if (!any_pci)
		rc |= add(a, "--no-pci");
	rc |= add(a, "--log-level=notice");

	for (unsigned i = 0; i < d->n_eal_args; i++)
		rc |= add(a, "%s", d->eal_args[i]);
	for (int i = 0; i < n_extra; i++)
		rc |= add(a, "%s", extra[i]);
	return rc ? -E2BIG : a->argc;
}
