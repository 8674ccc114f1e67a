/* SPDX-License-Identifier: BSD-3-Clause */
/* mxgatectl's command line (see args.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/ctl/args.h"
#include "control/common/qid.h"

const char ctl_usage[] =
	"usage: mxgatectl [--json] [-s SOCKET | -c CONFIG] COMMAND\n"
	"commands:\n"
	"  status                         versions, uptime, workers, ports, sessions\n"
	"  stats [--watch] [--all] [--span S] [--count N] [--interval S]\n"
	"                                 counters per worker and in total, with rates\n"
	"  ports                          link state and NIC counters of every port\n"
	"  top [--count N] [--interval S] a live view, redrawn every second; q quits\n"
	"  config check FILE              validate FILE: every error as FILE:LINE:COLUMN\n"
	"  config show                    the config mxgate-control loaded\n"
	"  routes                         the mail routes: each domain's next hops\n"
	"  sessions                       the SMTP sessions open now: client, state, age, bytes\n"
	"  queue list                     the messages waiting for delivery\n"
	"  queue show ID                  one message: envelope, recipients, last replies\n"
	"  queue flush                    retry every deferred message now\n"
	"  queue hold|release ID          stop and resume delivery attempts of one message\n"
	"  queue delete ID                drop a message: no delivery, no bounce\n"
	"  user add|del|passwd USER [--file F] [--password-stdin]\n"
	"                                 edit the AUTH password file (mxgatectl user --help)\n"
	"  config reload [FILE]           check FILE (default: the file in force) and apply it\n"
	"                                 without a restart; or say which keys need one\n"
	"  log level LEVEL                error, warning, info or debug, in both daemons\n"
	"options:\n"
	"  --json                         JSON output, one object per line\n"
	"  -s, --socket PATH              mxgate-control's socket (default " CTL_DEFAULT_SOCKET
	")\n"
	"  -c, --config FILE              read the socket path from FILE's control.socket\n"
	"  -h, --help                     this text;  --version  mxgatectl's version\n"
	"exit status: 0 success, 1 failure, 2 usage\n";

int ctl_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* A whole number in [MIN, MAX]; 0 or -1. */
static int number(const char *s, unsigned min, unsigned max, unsigned *out)
{
	char *end;
	unsigned long v;

	if (s[0] < '0' || s[0] > '9' || strlen(s) > 10)
		return -1;
	v = strtoul(s, &end, 10);
	if (*end != '\0' || v < min || v > max)
		return -1;
	*out = (unsigned)v;
	return 0;
}

/* An option's value: "--opt=V" or the next argument. Returns V or NULL (reported). */
static const char *opt_value(int argc, char *const argv[], int *i, const char *name, char *err,
			     size_t errlen)
{
	const char *arg = argv[*i];
	size_t n = strlen(name);

	if (strncmp(arg, name, n) == 0 && arg[n] == '=')
		return arg + n + 1;
	if (*i + 1 >= argc) {
		ctl_errf(err, errlen, "%s needs a value", name);
		return NULL;
	}
	return argv[++*i];
}

static bool is_opt(const char *arg, const char *name)
{
	size_t n = strlen(name);

	return strncmp(arg, name, n) == 0 && (arg[n] == '\0' || arg[n] == '=');
}

static bool is_level(const char *s)
{
	static const char *const levels[] = { "error", "warning", "info", "debug" };

	for (unsigned i = 0; i < 4; i++)
		if (strcmp(s, levels[i]) == 0)
			return true;
	return false;
}

/* The command words in POS[0..N): fills A->verb and its operands. */
static int command(const char **pos, int n, struct ctl_args *a, char *err, size_t errlen)
{
	const char *w = n > 0 ? pos[0] : NULL;
	int want = 1; /* words the command takes */

	if (w == NULL)
		return ctl_errf(err, errlen, "no command given");
	if (strcmp(w, "help") == 0) {
		a->verb = VERB_HELP;
	} else if (strcmp(w, "version") == 0) {
		a->verb = VERB_VERSION;
	} else if (strcmp(w, "status") == 0) {
		a->verb = VERB_STATUS;
	} else if (strcmp(w, "stats") == 0) {
		a->verb = VERB_STATS;
	} else if (strcmp(w, "ports") == 0) {
		a->verb = VERB_PORTS;
	} else if (strcmp(w, "top") == 0) {
		a->verb = VERB_TOP;
	} else if (strcmp(w, "routes") == 0) {
		a->verb = VERB_ROUTES;
	} else if (strcmp(w, "sessions") == 0) {
		a->verb = VERB_SESSIONS;
	} else if (strcmp(w, "config") == 0) {
		const char *sub = n > 1 ? pos[1] : NULL;

		want = 2;
		if (sub == NULL)
			return ctl_errf(err, errlen, "config needs check FILE, show or reload");
		if (strcmp(sub, "check") == 0) {
			if (n < 3)
				return ctl_errf(err, errlen, "config check needs a FILE");
			a->verb = VERB_CONFIG_CHECK;
			a->file = pos[2];
			want = 3;
		} else if (strcmp(sub, "show") == 0) {
			a->verb = VERB_CONFIG_SHOW;
		} else if (strcmp(sub, "reload") == 0) {
			a->verb = VERB_CONFIG_RELOAD;
			if (n > 2) {
				if (pos[2][0] == '\0')
					return ctl_errf(err, errlen, "config reload: the FILE is empty");
				a->file = pos[2];
				want = 3;
			}
		} else {
			return ctl_errf(err, errlen,
				    "unknown config command '%s' (check, show, reload)", sub);
		}
	} else if (strcmp(w, "queue") == 0) {
		static const char *const with_id[] = { "show", "delete", "hold", "release" };
		const char *sub = n > 1 ? pos[1] : NULL;
		char name[32];

		want = 2;
		if (sub == NULL)
			return ctl_errf(
				err, errlen,
				"queue needs list, show ID, flush, delete ID, hold ID or release ID");
		for (unsigned i = 0; i < 4; i++)
			if (strcmp(sub, with_id[i]) == 0) {
				if (n < 3)
					return ctl_errf(err, errlen, "queue %s needs a message ID",
						    sub);
				if (ctl_qid_parse(pos[2], a->qid) < 0)
					return ctl_errf(err, errlen,
						    "'%.40s' is not a message ID (20 characters "
						    "of base32, as in \"queued as ...\")",
						    pos[2]);
				want = 3;
			}
		name[0] = '\0';
		if (strlen(sub) <= 16)
			snprintf(name, sizeof(name), "queue.%s", sub);
		a->later = name[0] != '\0' ? ctl_cmd_find(name) : NULL;
		if (a->later == NULL)
			return ctl_errf(err, errlen,
				    "unknown queue command '%s' (list, show, flush, delete, hold, "
				    "release)",
				    sub);
		a->verb = VERB_QUEUE;
	} else if (strcmp(w, "log") == 0) {
		want = 3;
		if (n < 2 || strcmp(pos[1], "level") != 0)
			return ctl_errf(err, errlen, "log needs: level LEVEL");
		if (n < 3)
			return ctl_errf(err, errlen,
				    "log level needs a LEVEL (error, warning, info, debug)");
		if (!is_level(pos[2]))
			return ctl_errf(err, errlen,
				    "'%s' is not a log level (error, warning, info, debug)",
				    pos[2]);
		a->verb = VERB_LOG_LEVEL;
		a->level = pos[2];
	} else {
		return ctl_errf(err, errlen, "unknown command '%s'", w);
	}
	if (n > want)
		return ctl_errf(err, errlen, "unexpected argument '%s'", pos[want]);
	return 0;
}

int ctl_args_parse(int argc, char *const argv[], struct ctl_args *a, char *err, size_t errlen)
{
	const char **pos = calloc((size_t)argc + 1, sizeof(*pos));
	bool seen_count = false, seen_interval = false, seen_span = false, seen_all = false;
	bool opts_done = false;
	int n_pos = 0, rc = -1;

	*a = (struct ctl_args){ .interval_s = 1 };
	err[0] = '\0';
	if (pos == NULL)
		return ctl_errf(err, errlen, "out of memory");
	/* --json first, so a usage error can still answer in JSON */
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "--json") == 0)
			a->json = true;
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *v;

		if (opts_done || arg[0] != '-' || strcmp(arg, "-") == 0) {
			pos[n_pos++] = arg;
		} else if (strcmp(arg, "--") == 0) {
			opts_done = true;
		} else if (strcmp(arg, "--json") == 0) {
			a->json = true;
		} else if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
			a->verb = VERB_HELP;
			rc = 0;
			goto out;
		} else if (strcmp(arg, "--version") == 0) {
			pos[n_pos++] = "version";
		} else if (strcmp(arg, "-s") == 0 || is_opt(arg, "--socket")) {
			if ((v = opt_value(argc, argv, &i, arg[1] == 's' ? "-s" : "--socket", err,
					   errlen)) == NULL)
				goto out;
			if (v[0] == '\0') {
				ctl_errf(err, errlen, "the socket path is empty");
				goto out;
			}
			a->socket = v;
		} else if (strcmp(arg, "-c") == 0 || is_opt(arg, "--config")) {
			if ((v = opt_value(argc, argv, &i, arg[1] == 'c' ? "-c" : "--config", err,
					   errlen)) == NULL)
				goto out;
			a->config = v;
		} else if (strcmp(arg, "--watch") == 0 || strcmp(arg, "-w") == 0) {
			a->watch = true;
		} else if (strcmp(arg, "--all") == 0) {
			a->all = seen_all = true;
		} else if (is_opt(arg, "--count")) {
			if ((v = opt_value(argc, argv, &i, "--count", err, errlen)) == NULL)
				goto out;
			if (number(v, 1, CTL_MAX_COUNT, &a->count) != 0) {
				ctl_errf(err, errlen, "--count: '%s' is not a number from 1 to %u", v,
				     CTL_MAX_COUNT);
				goto out;
			}
			seen_count = true;
		} else if (is_opt(arg, "--interval")) {
			if ((v = opt_value(argc, argv, &i, "--interval", err, errlen)) == NULL)
				goto out;
			if (number(v, 1, CTL_MAX_INTERVAL_S, &a->interval_s) != 0) {
				ctl_errf(err, errlen,
				     "--interval: '%s' is not a number of seconds from 1 to %u", v,
				     CTL_MAX_INTERVAL_S);
				goto out;
			}
			seen_interval = true;
		} else if (is_opt(arg, "--span")) {
			if ((v = opt_value(argc, argv, &i, "--span", err, errlen)) == NULL)
				goto out;
			if (number(v, 1, CTL_MAX_SPAN_S, &a->span_s) != 0) {
				ctl_errf(err, errlen,
				     "--span: '%s' is not a number of seconds from 1 to %u", v,
				     CTL_MAX_SPAN_S);
				goto out;
			}
			seen_span = true;
		} else {
			ctl_errf(err, errlen, "unknown option '%s'", arg);
			goto out;
		}
	}
	if (command(pos, n_pos, a, err, errlen) != 0)
		goto out;
	if (a->socket != NULL && a->config != NULL) {
		ctl_errf(err, errlen, "--socket and --config both say where the socket is; give one");
		goto out;
	}
	/* options that belong to one command */
	if (a->watch && a->verb != VERB_STATS) {
		ctl_errf(err, errlen, "--watch goes with stats only");
		goto out;
	}
	if ((seen_all || seen_span) && a->verb != VERB_STATS) {
		ctl_errf(err, errlen, "%s goes with stats only", seen_all ? "--all" : "--span");
		goto out;
	}
	if ((seen_count || seen_interval) && !(a->verb == VERB_TOP || a->watch)) {
		ctl_errf(err, errlen, "%s goes with stats --watch and top only",
		     seen_count ? "--count" : "--interval");
		goto out;
	}
	rc = 0;
out:
	free(pos);
	return rc;
}
