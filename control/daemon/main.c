/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mxgate-control: the control plane daemon. Loads the config, then runs until
 * SIGTERM: reads the dataplane's counters every second over its telemetry
 * socket, serves /metrics, and answers mxgatectl on a unix socket.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/common/log.h"
#include "control/config/config.h"
#include "control/daemon/ctld.h"

#define DEFAULT_CONFIG "/etc/mxgate/mxgate.yaml"
#define MAX_CONFIG     (4u << 20)

static void usage(FILE *f)
{
	fprintf(f, "usage: mxgate-control [-c FILE] [--check]\n"
		   "       mxgate-control --help | --version\n"
		   "  -c, --config FILE  the mxgate config (default " DEFAULT_CONFIG ")\n"
		   "      --check        validate FILE and exit: 0 valid, 2 not\n");
}

/* The whole file into *TEXT (NUL-terminated); 0 or -errno. */
static int read_file(const char *path, char **text, size_t *len)
{
	FILE *f = fopen(path, "rb");
	size_t cap = 8192, n = 0;
	char *buf = NULL;
	int e = 0;

	if (f == NULL)
		return -errno;
	for (;;) {
		char *p = realloc(buf, cap + 1);

		if (p == NULL) {
			e = -ENOMEM;
			break;
		}
		buf = p;
		n += fread(buf + n, 1, cap - n, f);
		if (ferror(f)) {
			e = -EIO;
			break;
		}
		if (n < cap)
			break;
		if (cap >= MAX_CONFIG) {
			e = -EFBIG;
			break;
		}
		cap *= 2;
	}
	fclose(f);
	if (e != 0) {
		free(buf);
		return e;
	}
	buf[n] = '\0';
	*text = buf;
	*len = n;
	return 0;
}

int main(int argc, char **argv)
{
	const char *path = DEFAULT_CONFIG;
	bool check = false;
	char *text = NULL;
	size_t len = 0;
	sigset_t sigs;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) {
			if (++i == argc) {
				fprintf(stderr, "mxgate-control: %s needs a FILE\n", argv[i - 1]);
				usage(stderr);
				return 2;
			}
			path = argv[i];
		} else if (strncmp(argv[i], "--config=", 9) == 0) {
			path = argv[i] + 9;
		} else if (strcmp(argv[i], "--check") == 0) {
			check = true;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("mxgate-control %s\n", MXGATE_VERSION);
			return 0;
		} else {
			fprintf(stderr, "mxgate-control: unknown argument '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	rc = read_file(path, &text, &len);
	if (rc != 0) {
		fprintf(stderr, "%s: cannot read: %s\n", path, strerror(-rc));
		return 2;
	}

	struct cfg *cfg = cfg_load_data(path, (const uint8_t *)text, len, stderr);

	if (cfg == NULL) {
		free(text);
		return 2;
	}
	if (check) {
		printf("%s: OK\n", path);
		cfg_free(cfg);
		free(text);
		return 0;
	}
	rc = mx_log_open("mxgate-control", &cfg->logging);
	if (rc != 0)
		mx_log(CFG_LOG_ERROR, "log_open", "cannot open %s: %s; logging to stderr",
		       cfg->logging.file, strerror(-rc));
	/* signals arrive through the loop's signalfd; a gone client must not kill us */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	sigprocmask(SIG_BLOCK, &sigs, NULL);

	struct ctld *d = ctld_new(cfg, text, len);

	if (d == NULL) {
		mx_log_close();
		return 1;
	}
	rc = ctld_run(d);
	ctld_free(d);
	mx_log(CFG_LOG_INFO, "stopped", "mxgate-control stopped");
	mx_log_close();
	return rc;
}
