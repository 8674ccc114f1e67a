/* SPDX-License-Identifier: BSD-3-Clause */
/* mxgatectl config reload and log level in mxgate-control (see reload_ops.h). */
#include "control/daemon/reload_ops.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/common/log.h"
#include "control/common/proto.h"
#include "control/config/restart.h"
#include "control/daemon/dpq.h"

#define TEXT_MAX (16u << 20) /* a config file kept for config show */

json_t *reload_error_json(const char *file, const char *line)
{
	size_t n = strlen(file);
	unsigned l, c;
	int used = 0;
	const char *rest, *sep;

	if (strncmp(line, file, n) != 0 || line[n] != ':' ||
	    sscanf(line + n + 1, "%u:%u: %n", &l, &c, &used) != 2 || used == 0)
		return json_pack("{s:s, s:s}", "file", file, "text", line);
	rest = line + n + 1 + used;
	sep = strstr(rest, ": ");
	if (sep == NULL)
		return json_pack("{s:s, s:s}", "file", file, "text", line);
	return json_pack("{s:s, s:i, s:i, s:s%, s:s, s:s}", "file", file, "line", l, "column", c,
			 "path", rest, (size_t)(sep - rest), "message", sep + 2, "text", line);
}

/* The whole of PATH, for config show; NULL when it cannot be read now. */
static char *read_text(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, n = 0;

	if (f == NULL)
		return NULL;
	for (;;) {
		if (n == cap) {
			char *nb = cap < TEXT_MAX ? realloc(buf, cap ? cap * 2 : 65536) : NULL;

			if (nb == NULL) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
			cap = cap ? cap * 2 : 65536;
		}
		size_t r = fread(buf + n, 1, cap - n, f);

		n += r;
		if (r == 0)
			break;
	}
	fclose(f);
	*len = n;
	return buf;
}

static void fail(struct reload_out *o, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fail(struct reload_out *o, const char *code, const char *fmt, ...)
{
	va_list ap;

	o->code = code;
	va_start(ap, fmt);
	vsnprintf(o->message, sizeof(o->message), fmt, ap);
	va_end(ap);
}

static json_t *outcome(const char *file, const char *status)
{
	return json_pack("{s:s, s:s, s:b}", "file", file, "status", status, "applied",
			 strcmp(status, "applied") == 0);
}

static void on_control_restart(void *arg, const char *key, const char *o, const char *n,
			       const char *why)
{
	json_array_append_new(arg, json_pack("{s:s, s:s, s:s, s:s, s:s}", "key", key, "old", o,
					     "new", n, "why", why, "component",
					     "mxgate-control"));
}

/* The dataplane's "invalid" errors ("LINE:COL: key: what") as reload_error_json() objects. */
static json_t *dp_errors(const char *file, json_t *lines)
{
	json_t *a = json_array(), *v;
	size_t i;

	json_array_foreach(lines, i, v) {
		char buf[1200];

		if (!json_is_string(v))
			continue;
		snprintf(buf, sizeof(buf), "%s:%s", file, json_string_value(v));
		json_array_append_new(a, reload_error_json(file, buf));
	}
	return a;
}

/* The dataplane's "restart" lines ("KEY: OLD -> NEW") and their reasons as objects. */
static json_t *dp_restart(json_t *lines, json_t *why)
{
	json_t *a = json_array(), *v;
	size_t i;

	json_array_foreach(lines, i, v) {
		const char *s = json_string_value(v), *colon, *arrow;
		const char *w = json_string_value(json_array_get(why, i));
		json_t *o;

		if (s == NULL)
			continue;
		colon = strstr(s, ": ");
		arrow = colon != NULL ? strstr(colon, " -> ") : NULL;
		if (arrow != NULL)
			o = json_pack("{s:s%, s:s%, s:s}", "key", s, (size_t)(colon - s), "old",
				      colon + 2, (size_t)(arrow - colon - 2), "new", arrow + 4);
		else /* the mail service's own sentence: "KEY: what" */
			o = json_pack("{s:s%, s:s}", "key", s,
				      colon != NULL ? (size_t)(colon - s) : strlen(s), "text", s);
		json_object_set_new(o, "why", json_string(w != NULL ? w : ""));
		json_object_set_new(o, "component", json_string("mxgate-dp"));
		json_array_append_new(a, o);
	}
	return a;
}

void reload_config(const struct cfg *run, const char *file, bool dp_up, struct reload_out *o)
{
	const char *path = file != NULL ? file : run->path;
	char *errs = NULL, err[300], cmd[4200];
	size_t errs_len = 0;
	const char *code = NULL;
	struct cfg *c;
	json_t *v;
	FILE *ef;

	memset(o, 0, sizeof(*o));
	if (path == NULL) {
		fail(o, CTL_E_BAD_REQUEST, "no file given, and mxgate-control knows none");
		return;
	}
	ef = open_memstream(&errs, &errs_len);
	if (ef == NULL) {
		fail(o, CTL_E_INTERNAL, "out of memory");
		return;
	}
	c = cfg_load(path, ef);
	fclose(ef);
	if (c == NULL) { /* the same messages as config check, and nothing is asked of mxgate-dp */
		json_t *a = json_array();
		char *save = NULL;
		unsigned n = 0;

		for (char *line = strtok_r(errs, "\n", &save); line != NULL;
		     line = strtok_r(NULL, "\n", &save), n++)
			json_array_append_new(a, reload_error_json(path, line));
		free(errs);
		o->result = outcome(path, "invalid");
		json_object_set_new(o->result, "errors", a);
		json_object_set_new(o->result, "checked_by", json_string("mxgate-control"));
		mx_log(CFG_LOG_WARNING, "config_reload", "%s is not valid (%u error%s); nothing changed",
		       path, n, n == 1 ? "" : "s");
		return;
	}
	free(errs);

	json_t *restart = json_array();

	if (cfg_restart_diff(run, c, CFG_RESTART_CONTROL, on_control_restart, restart) != 0) {
		cfg_free(c);
		o->result = outcome(path, "restart_needed");
		json_object_set_new(o->result, "restart", restart);
		mx_log(CFG_LOG_WARNING, "config_reload",
		       "%s changes settings mxgate-control applies only at start; nothing changed",
		       path);
		return;
	}
	json_decref(restart);
	if (!dp_up) {
		cfg_free(c);
		fail(o, CTL_E_DATAPLANE_DOWN,
		     "%s is valid, but mxgate-dp is not connected: nothing was reloaded", path);
		return;
	}

	struct dpq *q = dpq_open(run->control.telemetry_socket, err, sizeof(err));

	snprintf(cmd, sizeof(cmd), "/mxgate/reload,%s", path);
	v = q != NULL ? dpq_call(q, cmd, &code, err, sizeof(err)) : NULL;
	dpq_close(q);
	if (v == NULL) {
		cfg_free(c);
		fail(o, "reload_failed", "mxgate-dp did not reload %s: %s", path, err);
		return;
	}
	const char *status = json_string_value(json_object_get(v, "status"));

	if (status == NULL)
		status = "failed";
	if (strcmp(status, "applied") == 0) {
		o->result = outcome(path, "applied");
		json_object_set(o->result, "generation", json_object_get(v, "generation"));
		json_object_set(o->result, "retired", json_object_get(v, "retired"));
		o->text = read_text(path, &o->text_len);
		o->cfg = c;
		mx_log(CFG_LOG_INFO, "config_reload", "%s applied by mxgate-dp", path);
	} else if (strcmp(status, "invalid") == 0) {
		cfg_free(c);
		o->result = outcome(path, "invalid");
		json_object_set_new(o->result, "errors",
				    dp_errors(path, json_object_get(v, "errors")));
		json_object_set_new(o->result, "checked_by", json_string("mxgate-dp"));
	} else if (strcmp(status, "restart_needed") == 0) {
		cfg_free(c);
		o->result = outcome(path, "restart_needed");
		json_object_set_new(o->result, "restart",
				    dp_restart(json_object_get(v, "restart"),
					       json_object_get(v, "restart_why")));
	} else {
		const char *e = json_string_value(json_object_get(v, "error"));

		cfg_free(c);
		fail(o, "reload_failed", "mxgate-dp did not reload %s: %s", path,
		     e != NULL ? e : status);
	}
	json_decref(v);
}

json_t *reload_log_level(const char *telemetry, bool dp_up, enum cfg_log_level level)
{
	enum cfg_log_level was = mx_log_get_level();
	const char *name = cfg_log_level_name(level), *code = NULL;
	char cmd[64], err[300];
	json_t *r, *dp = NULL;

	mx_log_set_level(level);
	mx_log(CFG_LOG_WARNING, "log_level", "log level %s (was %s)", name,
	       cfg_log_level_name(was));
	r = json_pack("{s:s, s:{s:s, s:s}}", "level", name, "control", "level", name, "previous",
		      cfg_log_level_name(was));
	if (r == NULL)
		return NULL;
	if (dp_up) {
		struct dpq *q = dpq_open(telemetry, err, sizeof(err));

		snprintf(cmd, sizeof(cmd), "/mxgate/log_level,%s", name);
		dp = q != NULL ? dpq_call(q, cmd, &code, err, sizeof(err)) : NULL;
		dpq_close(q);
	} else {
		snprintf(err, sizeof(err), "mxgate-dp is not connected");
	}
	if (dp != NULL) {
		json_object_set_new(r, "dataplane", dp);
	} else {
		char note[400];

		snprintf(note, sizeof(note), "%s: mxgate-dp keeps its level", err);
		json_object_set_new(r, "dataplane", json_null());
		json_object_set_new(r, "note", json_string(note));
	}
	return r;
}
