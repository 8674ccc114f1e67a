/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mxgatectl: the operator's command line for mxgate. `config check` works on
 * a file alone; every other command asks mxgate-control over its unix socket
 * and prints a table, or the JSON result with --json. Exit status: 0 success,
 * 1 failure, 2 usage.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "control/common/cfg_json.h"
#include "control/common/proto.h"
#include "control/common/sbuf.h"
#include "control/config/config.h"
#include "control/ctl/args.h"
#include "control/ctl/client.h"
#include "control/ctl/render.h"
#include "control/ctl/render_ops.h"
#include "control/ctl/render_reload.h"
#include "control/ctl/user.h"

#ifndef MXGATE_VERSION
#define MXGATE_VERSION "unknown"
#endif

static const char *prog = "mxgatectl";

/* Prints J on one line to stdout and drops it. */
static void print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII);

	if (s != NULL)
		printf("%s\n", s);
	free(s);
	json_decref(j);
}

/* The one-line failure: to stderr, and as {"ok": false, ...} on stdout with --json. Returns 1. */
static int failure(const struct ctl_args *a, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int failure(const struct ctl_args *a, const char *code, const char *fmt, ...)
{
	char msg[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: %s\n", prog, msg);
	if (a->json)
		print_json(json_pack("{s:b, s:{s:s, s:s}}", "ok", 0, "error", "code", code,
				     "message", msg));
	return 1;
}

static void put(struct sbuf *b)
{
	fwrite(sbuf_str(b), 1, b->len, stdout);
	sbuf_free(b);
}

/* ---- config check: the file alone, no daemon ---- */

/* "FILE:LINE:COLUMN: key.path: message" into an object; NULL when LINE is not of that form. */
static json_t *error_json(const char *file, const char *line)
{
	size_t n = strlen(file);
	unsigned l, c;
	int used = 0;

	if (strncmp(line, file, n) != 0 || line[n] != ':' ||
	    sscanf(line + n + 1, "%u:%u: %n", &l, &c, &used) != 2 || used == 0)
		return NULL;

	const char *rest = line + n + 1 + used;
	const char *sep = strstr(rest, ": ");

	if (sep == NULL)
		return NULL;
	return json_pack("{s:s, s:i, s:i, s:s%, s:s, s:s}", "file", file, "line", l, "column", c,
			 "path", rest, (size_t)(sep - rest), "message", sep + 2, "text", line);
}

static int config_check(const struct ctl_args *a)
{
	char *err = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&err, &n);
	struct cfg *c;

	if (f == NULL)
		return failure(a, CTL_E_INTERNAL, "out of memory");
	c = cfg_load(a->file, f);
	fclose(f);
	if (c != NULL) {
		if (a->json)
			print_json(json_pack("{s:b, s:s, s:o}", "ok", 1, "file", a->file, "config",
					     cfg_to_json(c)));
		else
			printf("%s: OK\n", a->file);
		cfg_free(c);
		free(err);
		return 0;
	}
	fputs(err, stderr);
	if (a->json) {
		json_t *errors = json_array();
		char *save = NULL;

		for (char *line = strtok_r(err, "\n", &save); line != NULL;
		     line = strtok_r(NULL, "\n", &save)) {
			json_t *e = error_json(a->file, line);

			/* a file that cannot be read has no position: only its text */
			json_array_append_new(errors, e != NULL ? e :
								  json_pack("{s:s, s:s}", "file",
									    a->file, "text", line));
		}
		print_json(
			json_pack("{s:b, s:s, s:o}", "ok", 0, "file", a->file, "errors", errors));
	}
	free(err);
	return 1;
}

/* ---- talking to the daemon ---- */

/* The socket path: --socket, else control.socket of --config, else the default. */
static int socket_path(const struct ctl_args *a, char **out)
{
	if (a->config == NULL) {
		*out = strdup(a->socket != NULL ? a->socket : CTL_DEFAULT_SOCKET);
		return *out != NULL ? 0 : failure(a, CTL_E_INTERNAL, "out of memory");
	}

	struct cfg *c = cfg_load(a->config, stderr);

	if (c == NULL)
		return failure(a, "bad_config",
			       "%s is not a valid config (see above), so it cannot say where "
			       "mxgate-control's socket is",
			       a->config);
	*out = strdup(c->control.socket);
	cfg_free(c);
	return *out != NULL ? 0 : failure(a, CTL_E_INTERNAL, "out of memory");
}

static struct ctl_conn *connect_daemon(const struct ctl_args *a, int *rc)
{
	char *path = NULL;
	struct ctl_conn *c;
	int err = 0;

	*rc = socket_path(a, &path);
	if (*rc != 0)
		return NULL;
	c = ctl_conn_open(path, &err);
	if (c == NULL) {
		if (err == -ENOENT || err == -ECONNREFUSED)
			*rc = failure(a, "not_running",
				      "mxgate-control is not running (nothing answers on %s)",
				      path);
		else if (err == -EACCES || err == -EPERM)
			*rc = failure(
				a, "permission_denied",
				"permission denied on %s (run as root, or as a member of its group)",
				path);
		else
			*rc = failure(a, "connect_failed", "cannot connect to %s: %s", path,
				      strerror(-err));
	}
	free(path);
	return c;
}

/* One call; returns the result (decref it) or NULL after printing the failure into *RC. */
static json_t *call(const struct ctl_args *a, struct ctl_conn *c, const char *cmd, json_t *args,
		    int *rc)
{
	json_t *reply = NULL, *result;
	int e = ctl_conn_call(c, cmd, args, &reply);

	if (e != 0) {
		*rc = e == -EINTR ?
			      0 :
			      failure(a, "no_reply", "no reply from mxgate-control: %s",
				      e == -ETIMEDOUT  ? "it did not answer within 5 s" :
				      e == -EPROTO     ? "the reply is not JSON" :
				      e == -ECONNRESET ? "it closed the connection (did it stop?)" :
							 strerror(-e));
		return NULL;
	}
	if (!json_is_true(json_object_get(reply, "ok"))) {
		json_t *err = json_object_get(reply, "error");
		const char *code = json_string_value(json_object_get(err, "code"));
		const char *msg = json_string_value(json_object_get(err, "message"));

		*rc = failure(a, code != NULL ? code : "error", "%s", msg != NULL ? msg : "failed");
		json_decref(reply);
		return NULL;
	}
	result = json_incref(json_object_get(reply, "result"));
	json_decref(reply);
	return result;
}

/* ---- watch and top ---- */

static volatile sig_atomic_t stop;
static struct termios saved_tio;
static bool tio_saved;

static void on_stop(int sig)
{
	(void)sig;
	stop = 1;
}

static void restore_tty(void)
{
	if (tio_saved)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
	tio_saved = false;
}

/* Keys without Enter and without echo, while Ctrl-C still raises SIGINT. */
static void raw_tty(void)
{
	struct termios t;

	if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_tio) != 0)
		return;
	t = saved_tio;
	t.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	if (tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0) {
		tio_saved = true;
		atexit(restore_tty);
	}
}

/* Waits INTERVAL_S for the next frame; false when it is time to stop (Ctrl-C, SIGTERM, q). */
static bool wait_next(unsigned interval_s)
{
	struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
	bool keys = tio_saved;
	int ms = (int)interval_s * 1000;

	while (!stop) {
		int n = poll(keys ? &pfd : NULL, keys ? 1 : 0, ms);
		char ch;

		if (n == 0)
			return true;
		if (n < 0)
			continue; /* EINTR: the loop condition decides */
		if (read(STDIN_FILENO, &ch, 1) != 1)
			keys = false; /* stdin ended: time still runs */
		else if (ch == 'q' || ch == 'Q')
			return false;
	}
	return false;
}

static void screen_size(unsigned *rows, unsigned *cols)
{
	struct winsize ws;

	*rows = 24;
	*cols = 80;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row != 0 && ws.ws_col != 0) {
		*rows = ws.ws_row;
		*cols = ws.ws_col;
	}
}

static void catch_stops(void)
{
	struct sigaction sa = { .sa_handler = on_stop };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

static int watch_stats(const struct ctl_args *a, struct ctl_conn *c, json_t *args)
{
	bool tty = isatty(STDOUT_FILENO) && !a->json;
	unsigned frames = 0;
	int rc = 0;

	catch_stops();
	raw_tty();
	while (!stop) {
		json_t *res = call(a, c, "stats", args, &rc);
		struct sbuf b = { 0 };

		if (res == NULL)
			break;
		if (a->json) {
			print_json(res);
		} else {
			if (tty)
				sbuf_add(&b, "\033[H\033[2J", 7);
			else if (frames != 0)
				sbuf_add(&b, "\n", 1);
			render_stats(&b, res, a->all);
			put(&b);
			json_decref(res);
		}
		fflush(stdout);
		if (++frames == a->count || !wait_next(a->interval_s))
			break;
	}
	restore_tty();
	return rc;
}

static int top(const struct ctl_args *a, struct ctl_conn *c)
{
	bool tty = isatty(STDOUT_FILENO) && !a->json;
	json_t *args = json_pack("{s:i}", "span_s", (int)a->interval_s);
	unsigned frames = 0;
	int rc = 0;

	catch_stops();
	raw_tty();
	if (tty)
		fputs("\033[?25l", stdout); /* hide the cursor while redrawing */
	while (!stop) {
		json_t *status = call(a, c, "status", NULL, &rc), *stats = NULL;
		unsigned rows, cols;
		struct sbuf b = { 0 };

		if (status == NULL)
			break;
		if (json_is_true(
			    json_object_get(json_object_get(status, "dataplane"), "connected")))
			stats = call(a, c, "stats", args, &rc);
		rc = 0; /* the dataplane may come and go while we watch; the frame says so */
		screen_size(&rows, &cols);
		if (!tty) {
			rows = 200; /* not a screen: no reason to cut */
			cols = 200;
		}
		if (a->json) {
			print_json(json_pack("{s:O, s:O?}", "status", status, "stats", stats));
		} else {
			if (tty)
				sbuf_add(&b, "\033[H\033[2J", 7);
			else if (frames != 0)
				sbuf_add(&b, "\n", 1);
			render_top(&b, status, stats, rows - (tty ? 1 : 0), cols);
			put(&b);
		}
		json_decref(status);
		json_decref(stats);
		fflush(stdout);
		if (++frames == a->count || !wait_next(a->interval_s))
			break;
	}
	if (tty)
		fputs("\033[?25h", stdout);
	restore_tty();
	json_decref(args);
	return rc;
}

/* ---- config reload, log level ---- */

/* FILE as an absolute path: the daemon's working directory is not ours. NULL: out of memory. */
static char *absolute(const char *file)
{
	char *r = realpath(file, NULL), *cwd;
	size_t n;

	if (r != NULL || file[0] == '/')
		return r != NULL ? r : strdup(file);
	cwd = getcwd(NULL, 0); /* the daemon says it cannot read it: with the name as meant */
	if (cwd == NULL)
		return strdup(file);
	n = strlen(cwd) + strlen(file) + 2;
	r = malloc(n);
	if (r != NULL)
		snprintf(r, n, "%s/%s", cwd, file);
	free(cwd);
	return r;
}

static int reload_cmd(const struct ctl_args *a, struct ctl_conn *c)
{
	struct sbuf b = { 0 }, eb = { 0 };
	json_t *args = NULL, *res;
	int rc = 0;

	if (a->verb == VERB_LOG_LEVEL) {
		args = json_pack("{s:s}", "level", a->level);
	} else if (a->file != NULL) {
		char *f = absolute(a->file);

		if (f == NULL)
			return failure(a, CTL_E_INTERNAL, "out of memory");
		args = json_pack("{s:s}", "file", f);
		free(f);
	}
	res = call(a, c, a->verb == VERB_LOG_LEVEL ? "log.level" : "config.reload", args, &rc);
	json_decref(args);
	if (res == NULL)
		return rc;
	if (a->verb == VERB_LOG_LEVEL)
		rc = render_log_level(&b, res);
	else
		rc = render_reload(&b, &eb, res);
	if (a->json) {
		json_t *o = json_deep_copy(res);

		json_object_set_new(o, "ok", json_boolean(rc == 0));
		print_json(o);
		sbuf_free(&b);
		sbuf_free(&eb);
	} else {
		if (eb.len != 0)
			fputs(sbuf_str(&eb), stderr);
		sbuf_free(&eb);
		put(&b);
	}
	json_decref(res);
	return rc;
}

/* ---- commands ---- */

/* sessions and queue ...: one call, a table or the JSON result. */
static int ops(const struct ctl_args *a, struct ctl_conn *c)
{
	const char *cmd = a->verb == VERB_SESSIONS ? "sessions" : a->later->name;
	json_t *args = a->qid[0] != '\0' ? json_pack("{s:s}", "id", a->qid) : NULL;
	struct sbuf b = { 0 };
	int rc = 0;
	json_t *res = call(a, c, cmd, args, &rc);

	json_decref(args);
	if (res == NULL)
		return rc;
	if (a->json) {
		print_json(res);
		return 0;
	}
	if (a->verb == VERB_SESSIONS)
		render_sessions(&b, res);
	else if (strcmp(cmd, "queue.list") == 0)
		render_queue_list(&b, res);
	else if (strcmp(cmd, "queue.show") == 0)
		render_queue_show(&b, res);
	else
		render_queue_done(&b, res);
	put(&b);
	json_decref(res);
	return 0;
}

static int run(const struct ctl_args *a)
{
	struct ctl_conn *c;
	json_t *res = NULL, *args = NULL;
	struct sbuf b = { 0 };
	int rc = 0;

	switch (a->verb) {
	case VERB_HELP:
		fputs(ctl_usage, stdout);
		return 0;
	case VERB_VERSION:
		if (a->json)
			print_json(json_pack("{s:s}", "version", MXGATE_VERSION));
		else
			printf("mxgatectl %s\n", MXGATE_VERSION);
		return 0;
	case VERB_CONFIG_CHECK:
		return config_check(a);
	case VERB_LATER: {
		char typed[32];

		/* as the operator typed it: "queue list", not the wire's "queue.list" */
		snprintf(typed, sizeof(typed), "%s", a->later->name);
		for (char *p = typed; *p != '\0'; p++)
			if (*p == '.')
				*p = ' ';
		return failure(a, CTL_E_NOT_AVAILABLE, "%s: not available yet: %s", typed,
			       a->later->missing);
	}
	default:
		break;
	}
	c = connect_daemon(a, &rc);
	if (c == NULL)
		return rc;
	switch (a->verb) {
	case VERB_STATUS:
		res = call(a, c, "status", NULL, &rc);
		if (res == NULL)
			break;
		if (a->json) {
			rc = json_is_true(json_object_get(json_object_get(res, "dataplane"),
							  "connected")) ?
				     0 :
				     1;
			print_json(json_incref(res));
		} else {
			rc = render_status(&b, res) ? 0 : 1;
			put(&b);
		}
		break;
	case VERB_STATS:
		if (a->span_s != 0)
			args = json_pack("{s:i}", "span_s", (int)a->span_s);
		if (a->watch) {
			rc = watch_stats(a, c, args);
			break;
		}
		res = call(a, c, "stats", args, &rc);
		if (res == NULL)
			break;
		if (a->json) {
			print_json(json_incref(res));
		} else {
			render_stats(&b, res, a->all);
			put(&b);
		}
		break;
	case VERB_PORTS:
		res = call(a, c, "ports", NULL, &rc);
		if (res == NULL)
			break;
		if (a->json) {
			print_json(json_incref(res));
		} else {
			render_ports(&b, res);
			put(&b);
		}
		break;
	case VERB_CONFIG_SHOW:
		res = call(a, c, "config.show", NULL, &rc);
		if (res == NULL)
			break;
		if (a->json) {
			print_json(json_incref(res));
		} else {
			render_config_show(&b, res);
			put(&b);
		}
		break;
	case VERB_ROUTES:
		res = call(a, c, "routes", NULL, &rc);
		if (res == NULL)
			break;
		if (a->json) {
			print_json(json_incref(res));
		} else {
			render_routes(&b, res);
			put(&b);
		}
		break;
	case VERB_CONFIG_RELOAD:
	case VERB_LOG_LEVEL:
		rc = reload_cmd(a, c);
		break;
	case VERB_TOP:
		rc = top(a, c);
		break;
	case VERB_SESSIONS:
	case VERB_QUEUE:
		rc = ops(a, c);
		break;
	default:
		rc = failure(a, CTL_E_INTERNAL, "command without a handler");
		break;
	}
	json_decref(res);
	json_decref(args);
	ctl_conn_close(c);
	return rc;
}

int main(int argc, char **argv)
{
	struct ctl_args a;
	char err[256];

	signal(SIGPIPE, SIG_IGN);
	/* user add|del|passwd edits a local file: no socket, options of its own */
	if (argc >= 2 && strcmp(argv[1], "user") == 0)
		return ctl_user_main(argc - 2, argv + 2);
	if (ctl_args_parse(argc, argv, &a, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s: %s\n%s", prog, err, ctl_usage);
		if (a.json)
			print_json(json_pack("{s:b, s:{s:s, s:s}}", "ok", 0, "error", "code",
					     "usage", "message", err));
		return 2;
	}
	return run(&a);
}
