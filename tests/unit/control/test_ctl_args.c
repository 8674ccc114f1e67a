/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mxgatectl's command line as an operator types it: every command parses to
 * what it means, and every mistake is refused with a reason (main() then
 * prints the usage and exits 2) before anything connects anywhere.
 */
#include <stdarg.h>
#include <string.h>

#include <criterion/criterion.h>

#include "control/ctl/args.h"

#define MAX_ARGS 16

/* Parses the words given (a NULL ends them) as argv[1..]; ERR gets the reason. */
static int parse(struct ctl_args *a, char *err, size_t errlen, ...)
{
	char *argv[MAX_ARGS + 1] = { "mxgatectl" };
	int argc = 1;
	va_list ap;

	va_start(ap, errlen);
	for (char *w = va_arg(ap, char *); w != NULL; w = va_arg(ap, char *)) {
		cr_assert_lt(argc, MAX_ARGS);
		argv[argc++] = w;
	}
	va_end(ap);
	argv[argc] = NULL;
	return ctl_args_parse(argc, argv, a, err, errlen);
}

#define OK(a, ...)                                                                                 \
	do {                                                                                       \
		char err_[256];                                                                    \
		int rc_ = parse(a, err_, sizeof(err_), __VA_ARGS__, NULL);                         \
		cr_assert_eq(rc_, 0, "refused: %s", err_);                                         \
	} while (0)

/* The words are refused with exactly WANT as the reason. */
#define USAGE(want, ...)                                                                           \
	do {                                                                                       \
		struct ctl_args a_;                                                                \
		char err_[256];                                                                    \
		int rc_ = parse(&a_, err_, sizeof(err_), __VA_ARGS__, NULL);                       \
		cr_assert_eq(rc_, -1, "accepted, but should say: %s", want);                       \
		cr_assert_str_eq(err_, want);                                                      \
	} while (0)

/* ---- what parses ---- */

Test(ctl_args, status_with_defaults)
{
	struct ctl_args a;

	OK(&a, "status");
	cr_assert_eq(a.verb, VERB_STATUS);
	cr_assert_not(a.json);
	cr_assert_null(a.socket);
	cr_assert_null(a.config);
	cr_assert_eq(a.interval_s, 1);
	cr_assert_eq(a.count, 0);
}

Test(ctl_args, routes_is_a_command_of_its_own)
{
	struct ctl_args a;

	OK(&a, "routes");
	cr_assert_eq(a.verb, VERB_ROUTES);
	OK(&a, "--json", "routes");
	cr_assert(a.json);
}

Test(ctl_args, json_and_socket_go_before_or_after_the_command)
{
	struct ctl_args a;

	OK(&a, "--json", "-s", "/tmp/c.sock", "ports");
	cr_assert(a.json);
	cr_assert_str_eq(a.socket, "/tmp/c.sock");
	cr_assert_eq(a.verb, VERB_PORTS);
	OK(&a, "ports", "--socket=/tmp/d.sock", "--json");
	cr_assert(a.json);
	cr_assert_str_eq(a.socket, "/tmp/d.sock");
	OK(&a, "--config", "/etc/mxgate/mxgate.yaml", "status");
	cr_assert_str_eq(a.config, "/etc/mxgate/mxgate.yaml");
}

Test(ctl_args, stats_watch_with_its_options)
{
	struct ctl_args a;

	OK(&a, "stats", "--watch", "--count", "3", "--interval=2", "--all", "--span", "60");
	cr_assert_eq(a.verb, VERB_STATS);
	cr_assert(a.watch);
	cr_assert(a.all);
	cr_assert_eq(a.count, 3);
	cr_assert_eq(a.interval_s, 2);
	cr_assert_eq(a.span_s, 60);
}

Test(ctl_args, top_takes_count_and_interval)
{
	struct ctl_args a;

	OK(&a, "top", "--count", "2");
	cr_assert_eq(a.verb, VERB_TOP);
	cr_assert_eq(a.count, 2);
}

Test(ctl_args, config_check_takes_its_file)
{
	struct ctl_args a;

	OK(&a, "config", "check", "/etc/mxgate/mxgate.yaml");
	cr_assert_eq(a.verb, VERB_CONFIG_CHECK);
	cr_assert_str_eq(a.file, "/etc/mxgate/mxgate.yaml");
	/* a file named like an option, after "--" */
	OK(&a, "config", "check", "--", "--weird.yaml");
	cr_assert_str_eq(a.file, "--weird.yaml");
	OK(&a, "config", "show");
	cr_assert_eq(a.verb, VERB_CONFIG_SHOW);
}

Test(ctl_args, config_reload_takes_an_optional_file_and_log_level_a_level)
{
	struct ctl_args a;

	OK(&a, "config", "reload");
	cr_assert_eq(a.verb, VERB_CONFIG_RELOAD);
	cr_assert_null(a.file, "no FILE: the file in force");
	OK(&a, "--json", "config", "reload", "next.yaml");
	cr_assert_eq(a.verb, VERB_CONFIG_RELOAD);
	cr_assert_str_eq(a.file, "next.yaml");
	cr_assert(a.json);
	OK(&a, "log", "level", "debug");
	cr_assert_eq(a.verb, VERB_LOG_LEVEL);
	cr_assert_str_eq(a.level, "debug");
	USAGE("unexpected argument 'b.yaml'", "config", "reload", "a.yaml", "b.yaml");
	USAGE("config reload: the FILE is empty", "config", "reload", "");
	USAGE("unexpected argument 'x'", "log", "level", "info", "x");
}

Test(ctl_args, help_and_version)
{
	struct ctl_args a;

	OK(&a, "--help");
	cr_assert_eq(a.verb, VERB_HELP);
	OK(&a, "stats", "-h");
	cr_assert_eq(a.verb, VERB_HELP);
	OK(&a, "help");
	cr_assert_eq(a.verb, VERB_HELP);
	OK(&a, "--version");
	cr_assert_eq(a.verb, VERB_VERSION);
}

/* ---- what is refused ---- */

Test(ctl_args, no_command)
{
	USAGE("no command given", "--json");
	struct ctl_args a;
	char err[64];
	char *argv[] = { "mxgatectl", NULL };

	cr_assert_eq(ctl_args_parse(1, argv, &a, err, sizeof(err)), -1);
	cr_assert_str_eq(err, "no command given");
}

Test(ctl_args, json_is_known_even_when_the_rest_is_wrong)
{
	struct ctl_args a;
	char err[64];

	cr_assert_eq(parse(&a, err, sizeof(err), "frobnicate", "--json", NULL), -1);
	cr_assert(a.json, "a usage error is still answered in JSON when asked");
}

Test(ctl_args, unknown_command_and_option)
{
	USAGE("unknown command 'frobnicate'", "frobnicate");
	USAGE("unknown option '--colour'", "status", "--colour");
	USAGE("unknown option '-x'", "-x", "status");
}

Test(ctl_args, extra_words)
{
	USAGE("unexpected argument 'now'", "status", "now");
	USAGE("unexpected argument 'b.yaml'", "config", "check", "a.yaml", "b.yaml");
	USAGE("unexpected argument 'all'", "queue", "flush", "all");
}

Test(ctl_args, missing_operands)
{
	USAGE("config check needs a FILE", "config", "check");
	USAGE("config needs check FILE, show or reload", "config");
	USAGE("unknown config command 'edit' (check, show, reload)", "config", "edit");
	USAGE("queue needs list, show ID, flush, delete ID, hold ID or release ID", "queue");
	USAGE("queue show needs a message ID", "queue", "show");
	USAGE("unknown queue command 'purge' (list, show, flush, delete, hold, release)", "queue",
	      "purge");
	USAGE("log needs: level LEVEL", "log");
	USAGE("log level needs a LEVEL (error, warning, info, debug)", "log", "level");
	USAGE("'loud' is not a log level (error, warning, info, debug)", "log", "level", "loud");
}

Test(ctl_args, option_values)
{
	USAGE("-s needs a value", "status", "-s");
	USAGE("--config needs a value", "status", "--config");
	USAGE("the socket path is empty", "status", "--socket=");
	USAGE("--count: '0' is not a number from 1 to 1000000", "top", "--count", "0");
	USAGE("--count: 'ten' is not a number from 1 to 1000000", "top", "--count", "ten");
	USAGE("--count: '-1' is not a number from 1 to 1000000", "top", "--count=-1");
	USAGE("--interval: '0' is not a number of seconds from 1 to 3600", "top", "--interval",
	      "0");
	USAGE("--span: '99999999999' is not a number of seconds from 1 to 86400", "stats", "--span",
	      "99999999999");
}

Test(ctl_args, options_of_one_command_on_another)
{
	USAGE("--watch goes with stats only", "ports", "--watch");
	USAGE("--all goes with stats only", "status", "--all");
	USAGE("--span goes with stats only", "top", "--span", "5");
	USAGE("--count goes with stats --watch and top only", "stats", "--count", "2");
	USAGE("--interval goes with stats --watch and top only", "status", "--interval", "2");
}

Test(ctl_args, socket_and_config_together)
{
	USAGE("--socket and --config both say where the socket is; give one", "status", "-s",
	      "/a.sock", "-c", "/etc/mxgate/mxgate.yaml");
}

Test(ctl_args, usage_names_every_command)
{
	static const char *const words[] = { "status",
					     "stats",
					     "ports",
					     "top",
					     "config check",
					     "config show",
					     "config reload",
					     "sessions",
					     "routes",
					     "log level",
					     "queue list",
					     "--json",
					     "exit status: 0 success, 1 failure, 2 usage" };

	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		cr_assert_not_null(strstr(ctl_usage, words[i]), "usage lacks '%s'", words[i]);
}
