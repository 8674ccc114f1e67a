/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mxgate-dp: the dataplane process. Loads the config, starts EAL with exactly
 * the devices it names, sets up ports and one worker per worker lcore, and
 * runs until SIGINT/SIGTERM, then releases everything and exits 0.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>

#include "control/config/config.h"
#include "dataplane/core/dp.h"
#include "control/common/log.h"
#include "dataplane/core/eal.h"
#include "dataplane/core/reload.h"
#include "dataplane/core/snap.h"
#include "dataplane/smtpd/smtpd.h"

#define EXIT_USAGE 2 /* bad command line or invalid config */

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
	got_signal = sig;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: mxgate-dp -c FILE [options] [-- EAL arguments]\n"
		"  -c, --config FILE       configuration (YAML), required\n"
		"      --check             validate the configuration and exit (0 valid, 2 not)\n"
		"      --main-core N       CPU of the main lcore (overrides the config)\n"
		"      --worker-cores LIST CPUs of the workers, e.g. 1,2 (overrides the config)\n"
		"      --memory MODE       hugepages | no-huge (overrides the config)\n"
		"      --file-prefix NAME  EAL file prefix (names the telemetry socket directory)\n"
		"      --idle-sleep-us N   nap N microseconds when a worker is idle (0: poll)\n"
		"  -h, --help              this text\n");
}

static int parse_uint(const char *s, unsigned max, unsigned *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > max)
		return -1;
	*out = (unsigned)v;
	return 0;
}

static int parse_cores(const char *s, struct cfg_dataplane *d)
{
	char buf[256];
	unsigned n = 0;

	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (n == CFG_MAX_WORKERS || parse_uint(t, 1023, &d->worker_cores[n]) != 0)
			return -1;
		n++;
	}
	if (n == 0)
		return -1;
	d->n_workers = n;
	return 0;
}

enum { OPT_CHECK = 256, OPT_MAIN_CORE, OPT_WORKER_CORES, OPT_MEMORY, OPT_PREFIX, OPT_IDLE };

static const struct option long_opts[] = {
	{"config", required_argument, NULL, 'c'},
	{"check", no_argument, NULL, OPT_CHECK},
	{"main-core", required_argument, NULL, OPT_MAIN_CORE},
	{"worker-cores", required_argument, NULL, OPT_WORKER_CORES},
	{"memory", required_argument, NULL, OPT_MEMORY},
	{"file-prefix", required_argument, NULL, OPT_PREFIX},
	{"idle-sleep-us", required_argument, NULL, OPT_IDLE},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

/* Command-line overrides, applied after the config loads. */
struct overrides {
	const char *main_core, *worker_cores, *memory, *file_prefix, *idle;
};

static int apply_overrides(struct cfg *cfg, const struct overrides *o)
{
	struct cfg_dataplane *d = &cfg->dp;

	if (o->main_core && parse_uint(o->main_core, 1023, &d->main_core) != 0) {
		fprintf(stderr, "mxgate-dp: --main-core: '%s' is not a CPU number\n", o->main_core);
		return -1;
	}
	if (o->worker_cores && parse_cores(o->worker_cores, d) != 0) {
		fprintf(stderr, "mxgate-dp: --worker-cores: '%s' is not a list of 1 to %d CPUs\n",
			o->worker_cores, CFG_MAX_WORKERS);
		return -1;
	}
	if (o->memory) {
		if (strcmp(o->memory, "hugepages") == 0) {
			d->memory_mode = CFG_MEM_HUGEPAGES;
		} else if (strcmp(o->memory, "no-huge") == 0) {
			d->memory_mode = CFG_MEM_NO_HUGE;
		} else {
			fprintf(stderr, "mxgate-dp: --memory: '%s' is not hugepages or no-huge\n",
				o->memory);
			return -1;
		}
	}
	if (o->file_prefix) {
		if (!*o->file_prefix || strspn(o->file_prefix,
					       "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
					       "0123456789_-") != strlen(o->file_prefix)) {
			fprintf(stderr, "mxgate-dp: --file-prefix: '%s' is not [A-Za-z0-9_-]+\n",
				o->file_prefix);
			return -1;
		}
		char *p = strdup(o->file_prefix);
		if (!p)
			return -1;
		free(d->file_prefix);
		d->file_prefix = p;
	}
	if (o->idle && parse_uint(o->idle, 1000000, &d->idle_sleep_us) != 0) {
		fprintf(stderr, "mxgate-dp: --idle-sleep-us: '%s' is not 0..1000000\n", o->idle);
		return -1;
	}
	return 0;
}

/* The command line's overrides, kept for the configs a reload loads (dp->cfg_fixup). */
static struct overrides saved_ov;

static int reload_fixup(struct cfg *cfg)
{
	return apply_overrides(cfg, &saved_ov);
}

static void print_ready(const struct dp *dp)
{
	printf("mxgate-dp: %u worker%s, telemetry at /var/run/dpdk/%s/dpdk_telemetry.v2\n",
	       dp->n_workers, dp->n_workers == 1 ? "" : "s", dp->cfg->dp.file_prefix);
	for (unsigned i = 0; i < dp->n_ports; i++) {
		const struct port_info *p = &dp->ports[i];
		char mac[RTE_ETHER_ADDR_FMT_SIZE], pf[32];
		rte_ether_format_addr(mac, sizeof(mac), &p->mac);
		struct cfg_prefix a = dp->cfg->dp.ports[i].addrs[0];
		printf("mxgate-dp: port %s (%s, %s) mac %s address %s, %u queue%s, %s steering\n",
		       p->name, p->device, p->driver, mac, cfg_prefix_str(&a, pf, sizeof(pf)),
		       p->n_queues, p->n_queues == 1 ? "" : "s",
		       p->hw_steering ? "hardware" : "software");
	}
	printf("mxgate-dp: ready\n");
	fflush(stdout);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

static struct dp dp; /* static: the telemetry thread may look until it is told not to */

int main(int argc, char **argv)
{
	struct overrides ov = {0};
	const char *path = NULL;
	bool check = false;
	char err[256] = "";
	int opt, status = EXIT_FAILURE;

	while ((opt = getopt_long(argc, argv, "c:h", long_opts, NULL)) != -1) {
		switch (opt) {
		case 'c': path = optarg; break;
		case OPT_CHECK: check = true; break;
		case OPT_MAIN_CORE: ov.main_core = optarg; break;
		case OPT_WORKER_CORES: ov.worker_cores = optarg; break;
		case OPT_MEMORY: ov.memory = optarg; break;
		case OPT_PREFIX: ov.file_prefix = optarg; break;
		case OPT_IDLE: ov.idle = optarg; break;
		case 'h': usage(stdout); return EXIT_SUCCESS;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (!path) {
		fprintf(stderr, "mxgate-dp: a configuration is required (-c FILE)\n");
		usage(stderr);
		return EXIT_USAGE;
	}

	struct cfg *cfg = cfg_load(path, stderr);
	if (!cfg)
		return EXIT_USAGE;
	saved_ov = ov;
	if (apply_overrides(cfg, &ov) != 0) {
		cfg_free(cfg);
		return EXIT_USAGE;
	}
	if (check) {
		printf("%s: ok\n", path);
		cfg_free(cfg);
		return EXIT_SUCCESS;
	}

	static struct eal_argv ea;
	if (eal_argv_build(&ea, cfg, argv[0], argv + optind, argc - optind) < 0) {
		fprintf(stderr, "mxgate-dp: EAL command line too long\n");
		cfg_free(cfg);
		return EXIT_USAGE;
	}
	if (rte_eal_init(ea.argc, ea.argv) < 0) {
		fprintf(stderr, "mxgate-dp: EAL start failed: %s\n", rte_strerror(rte_errno));
		cfg_free(cfg);
		return EXIT_FAILURE;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (mx_log_open("mxgate-dp", &cfg->logging) != 0)
		fprintf(stderr, "mxgate-dp: warning: cannot open the log file %s; logging to stderr\n",
			cfg->logging.file);
	dp_log_set_level(cfg->logging.level);

	dp.svc_start = smtpd_start;
	dp.svc_stop = smtpd_stop;
	dp.svc_poll = smtpd_poll;
	dp.svc_drain = smtpd_drain;
	dp.svc_sessions = smtpd_sessions_open;
	dp.svc_snap_new = smtpd_snap_new;
	dp.svc_snap_free = smtpd_snap_free;
	dp.cfg_fixup = reload_fixup;
	dp.svc_cmd = smtpd_svc_cmd; /* mxgatectl sessions and queue */
	dp.cfg = cfg;
	if (smtpd_init(&dp) != 0) {
		snprintf(err, sizeof(err), "out of memory for the client table (policy.client_limits)");
		goto fail_msg;
	}
	if (dp_setup(&dp, cfg, err, sizeof(err)) != 0)
		goto fail_msg;
	if (dp_snap_init(&dp) != 0) {
		snprintf(err, sizeof(err), "out of memory for config snapshots");
		goto fail_msg;
	}
	if (dp_telemetry_register(&dp) != 0)
		fprintf(stderr, "mxgate-dp: warning: some telemetry commands did not register\n");

	dp_launch(&dp);
	print_ready(&dp);

	while (!got_signal) {
		sleep_ms(20);
		dp_snap_reclaim(&dp); /* config snapshots of reloads that no session uses any more */
	}
	printf("mxgate-dp: %s, stopping\n", strsignal(got_signal));
	fflush(stdout);
	status = EXIT_SUCCESS;
	goto stop;

fail_msg:
	fprintf(stderr, "mxgate-dp: %s\n", err);
	status = EXIT_FAILURE;
stop:
	dp_teardown(&dp);
	dp_snap_fini(&dp); /* after the sessions closed with the workers */
	smtpd_fini(&dp);
	rte_eal_cleanup();
	cfg_free(cfg);
	return status;
}
