/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mxgatectl's command line, parsed without side effects so every mistake is
 * caught (and tested) before anything connects anywhere. Options may come
 * before or after the command; "--" ends them.
 */
#ifndef MX_CTL_ARGS_H
#define MX_CTL_ARGS_H

#include <stdbool.h>
#include <stddef.h>

#include "control/common/proto.h"

#define CTL_DEFAULT_SOCKET "/run/mxgate/control.sock"
#define CTL_MAX_COUNT	   1000000u
#define CTL_MAX_INTERVAL_S 3600u

enum ctl_verb {
	VERB_HELP,
	VERB_VERSION,
	VERB_STATUS,
	VERB_STATS,
	VERB_PORTS,
	VERB_TOP,
	VERB_CONFIG_CHECK,
	VERB_CONFIG_SHOW,
	VERB_ROUTES,
	VERB_SESSIONS,
	VERB_QUEUE, /* args.later is the queue.* command; args.qid its message, if it takes one */
	VERB_CONFIG_RELOAD, /* args.file: the file to load, or NULL for the one in force */
	VERB_LOG_LEVEL,	    /* args.level */
	VERB_LATER, /* a command of a later issue: args.later says which */
};

struct ctl_args {
	enum ctl_verb verb;
	bool json;	     /* --json */
	bool watch;	     /* stats --watch */
	bool all;	     /* stats --all: counters at zero too */
	unsigned count;	     /* --count N: frames of watch/top; 0 = until q or Ctrl-C */
	unsigned interval_s; /* --interval S: watch/top redraw period; default 1 */
	unsigned span_s;     /* stats --span S: rate window; 0 = the daemon's default */
	const char *socket;  /* -s/--socket PATH, else from --config, else the default */
	const char *config;  /* -c/--config FILE: where control.socket is written */
	const char *file;    /* config check FILE, config reload [FILE] */
	const char *level;   /* log level LEVEL: checked to be a level name */
	const struct ctl_cmd_info *later;
	char qid[32]; /* queue show|hold|release|delete: the ID, checked and upper-cased */
};

/*
 * Parses ARGV[1..ARGC). Returns 0 with A filled, or -1 with a one-line reason
 * in ERR (ERRLEN bytes) for the usage message; A->json is still set when
 * --json was seen, so the caller can answer in the form asked for.
 */
/* Formats an error into ERR (ERRLEN bytes) and returns -1: "return ctl_errf(...)". */
int ctl_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

int ctl_args_parse(int argc, char *const argv[], struct ctl_args *a, char *err, size_t errlen);

/* The usage text. */
extern const char ctl_usage[];

#endif
