/* SPDX-License-Identifier: BSD-3-Clause */
/* EAL command line from the config: never a device the config does not name. */
#include <errno.h>
#include <string.h>

#include <criterion/criterion.h>

#include "dataplane/core/eal.h"

static struct cfg cfg;

static void base_cfg(void)
{
	memset(&cfg, 0, sizeof(cfg));
	cfg.dp.main_core = 0;
	cfg.dp.n_workers = 2;
	cfg.dp.worker_cores[0] = 1;
	cfg.dp.worker_cores[1] = 1;
	cfg.dp.memory_mode = CFG_MEM_HUGEPAGES;
	cfg.dp.in_memory = true;
	cfg.dp.file_prefix = "mxtest";
	cfg.dp.n_ports = 1;
	cfg.dp.ports[0].name = "tap0";
	cfg.dp.ports[0].device = "net_tap0,iface=mxg0";
}

static int find(const struct eal_argv *a, const char *arg)
{
	for (int i = 0; i < a->argc; i++)
		if (strcmp(a->argv[i], arg) == 0)
			return i;
	return -1;
}

TestSuite(eal_argv, .init = base_cfg);

Test(eal_argv, vdev_only_config_never_scans_pci)
{
	struct eal_argv a;
	cr_assert_gt(eal_argv_build(&a, &cfg, "mxgate-dp", NULL, 0), 0);
	cr_assert_geq(find(&a, "--no-pci"), 0);
	cr_assert_geq(find(&a, "--vdev=net_tap0,iface=mxg0"), 0);
	cr_assert_lt(find(&a, "-a"), 0);
	cr_assert_null(a.argv[a.argc]);
}

Test(eal_argv, pci_port_is_allowlisted_and_nothing_else)
{
	struct eal_argv a;
	cfg.dp.ports[0].device = "0000:01:00.0";
	cfg.dp.ports[0].is_pci = true;
	cr_assert_gt(eal_argv_build(&a, &cfg, "mxgate-dp", NULL, 0), 0);
	int i = find(&a, "-a");
	cr_assert_geq(i, 0);
	cr_assert_str_eq(a.argv[i + 1], "0000:01:00.0");
	cr_assert_lt(find(&a, "--no-pci"), 0, "an allowlist replaces --no-pci");
}

Test(eal_argv, workers_map_to_configured_cpus_after_the_main_lcore)
{
	struct eal_argv a;
	cr_assert_gt(eal_argv_build(&a, &cfg, "mxgate-dp", NULL, 0), 0);
	cr_assert_geq(find(&a, "--lcores=0@0,1@1,2@1"), 0);
	cr_assert_geq(find(&a, "--main-lcore=0"), 0);
}

Test(eal_argv, memory_mode_and_prefix_follow_the_config)
{
	struct eal_argv a;
	cr_assert_gt(eal_argv_build(&a, &cfg, "mxgate-dp", NULL, 0), 0);
	cr_assert_lt(find(&a, "--no-huge"), 0);
	cr_assert_geq(find(&a, "--in-memory"), 0);
	cr_assert_geq(find(&a, "--file-prefix=mxtest"), 0);

	cfg.dp.memory_mode = CFG_MEM_NO_HUGE;
	cfg.dp.memory_mb = 256;
	cfg.dp.in_memory = false;
	cr_assert_gt(eal_argv_build(&a, &cfg, "mxgate-dp", NULL, 0), 0);
	int i = find(&a, "--no-huge");
	cr_assert_geq(i, 0);
	cr_assert_str_eq(a.argv[i + 1], "-m");
	cr_assert_str_eq(a.argv[i + 2], "256");
	cr_assert_lt(find(&a, "--in-memory"), 0);
}

Test(eal_argv, command_line_arguments_come_after_the_configs_own)
{
	struct eal_argv a;
	char *cfg_args[] = {"--log-level=debug"};
	char *extra[] = {"--log-level=error", "--huge-unlink"};
	cfg.dp.eal_args = cfg_args;
	cfg.dp.n_eal_args = 1;
	int argc = eal_argv_build(&a, &cfg, "mxgate-dp", extra, 2);
	cr_assert_gt(argc, 3);
	cr_assert_str_eq(a.argv[argc - 1], "--huge-unlink");
	cr_assert_str_eq(a.argv[argc - 2], "--log-level=error");
	cr_assert_str_eq(a.argv[argc - 3], "--log-level=debug");
}

Test(eal_argv, too_many_arguments_is_refused_not_truncated)
{
	struct eal_argv a;
	char *extra[EAL_MAX_ARGS + 4];
	for (int i = 0; i < EAL_MAX_ARGS + 4; i++)
		extra[i] = "--x";
	cr_assert_eq(eal_argv_build(&a, &cfg, "mxgate-dp", extra, EAL_MAX_ARGS + 4), -E2BIG);
}
