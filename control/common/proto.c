/* SPDX-License-Identifier: BSD-3-Clause */
/* The mxgatectl <-> mxgate-control protocol: framing, requests, replies (see proto.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/common/proto.h"
#include "control/config/control.h"
#include "control/common/qid.h"


/* Every wire name; the first entry of a command is its canonical name. */
static const struct ctl_cmd_info cmds[] = {
	{ CTL_CMD_STATUS, "status", NULL },
	{ CTL_CMD_STATS, "stats", NULL },
	{ CTL_CMD_PORTS, "ports", NULL },
	{ CTL_CMD_CONFIG_SHOW, "config.show", NULL },
	{ CTL_CMD_CONFIG_RELOAD, "config.reload", NULL },
	{ CTL_CMD_SESSIONS, "sessions", NULL },
	{ CTL_CMD_QUEUE, "queue.list", NULL },
	{ CTL_CMD_QUEUE, "queue.show", NULL },
	{ CTL_CMD_QUEUE, "queue.flush", NULL },
	{ CTL_CMD_QUEUE, "queue.delete", NULL },
	{ CTL_CMD_QUEUE, "queue.hold", NULL },
	{ CTL_CMD_QUEUE, "queue.release", NULL },
	{ CTL_CMD_ROUTES, "routes", NULL },
	{ CTL_CMD_LOG_LEVEL, "log.level", NULL },
};

#define N_CMDS (sizeof(cmds) / sizeof(cmds[0]))

const struct ctl_cmd_info *ctl_cmd_info(enum ctl_cmd cmd)
{
	for (size_t i = 0; i < N_CMDS; i++)
		if (cmds[i].cmd == cmd)
			return &cmds[i];
	return NULL;
}

const struct ctl_cmd_info *ctl_cmd_find(const char *name)
{
	for (size_t i = 0; i < N_CMDS; i++)
		if (strcmp(cmds[i].name, name) == 0)
			return &cmds[i];
	return NULL;
}

int ctl_error_set(struct ctl_error *err, const char *code, const char *fmt, ...)
{
	va_list ap;

	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	/* it may quote the client's bytes, cut anywhere: keep the reply valid UTF-8 */
	for (char *p = err->message; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			*p = '?';
	return -EINVAL;
}

ssize_t ctl_frame(const char *buf, size_t len, size_t max, size_t *line_len)
{
	const char *nl = memchr(buf, '\n', len < max ? len : max);
	size_t n;

	if (nl == NULL)
		return len >= max ? -EMSGSIZE : 0;
	n = (size_t)(nl - buf);
	*line_len = n > 0 && buf[n - 1] == '\r' ? n - 1 : n;
	return (ssize_t)(n + 1);
}

bool ctl_line_blank(const char *line, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (line[i] != ' ' && line[i] != '\t')
			return false;
	return true;
}

static const char *json_type_words(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	default:
		return "null";
	}
}

static int parse_id(json_t *id, struct ctl_request *req, struct ctl_error *err)
{
	if (id == NULL)
		return 0;
	if (json_is_string(id) && json_string_length(id) <= CTL_MAX_ID_LEN) {
		req->id = json_incref(id);
		return 0;
	}
	if (json_is_integer(id)) {
		req->id = json_incref(id);
		return 0;
	}
	if (json_is_string(id))
		return ctl_error_set(err, CTL_E_BAD_REQUEST, "\"id\" is longer than %d characters",
				     CTL_MAX_ID_LEN);
	return ctl_error_set(err, CTL_E_BAD_REQUEST, "\"id\" is %s; use a string or an integer",
			     json_type_words(id));
}

static int parse_args_obj(json_t *args, struct ctl_request *req, struct ctl_error *err);

static int parse_args(json_t *args, struct ctl_request *req, struct ctl_error *err)
{
	if (req->cmd->missing != NULL)
		return 0; /* a command of a later issue is answered without looking */
	if (args == NULL)
		args = json_object(); /* what must be there is checked below */
	else
		json_incref(args);
	int rc = parse_args_obj(args, req, err);

	json_decref(args);
	return rc;
}

static int parse_args_obj(json_t *args, struct ctl_request *req, struct ctl_error *err)
{
	const char *key;
	json_t *v;

	if (!json_is_object(args))
		return ctl_error_set(err, CTL_E_BAD_REQUEST, "\"args\" is %s; it must be an object",
				     json_type_words(args));
	json_object_foreach(args, key, v) {
		if (req->cmd->cmd == CTL_CMD_STATS && strcmp(key, "span_s") == 0) {
			json_int_t s = json_is_integer(v) ? json_integer_value(v) : -1;

			if (s < 1 || s > (json_int_t)CTL_MAX_SPAN_S)
				return ctl_error_set(err, CTL_E_BAD_REQUEST,
						     "\"span_s\" must be an integer from 1 to %u",
						     CTL_MAX_SPAN_S);
			req->span_s = (unsigned)s;
			continue;
		}
		if (ctl_queue_takes_id(req->cmd) && strcmp(key, "id") == 0) {
			char id[CTL_QID_LEN + 1];

			if (!json_is_string(v) || ctl_qid_parse(json_string_value(v), id) < 0)
				return ctl_error_set(err, CTL_E_BAD_REQUEST,
						     "\"id\" must be a queue ID: 20 characters of "
						     "base32, as in \"queued as ...\"");
			snprintf(req->qid, sizeof(req->qid), "%s", id);
			continue;
		}
		if (req->cmd->cmd == CTL_CMD_CONFIG_RELOAD && strcmp(key, "file") == 0) {
			const char *f = json_is_string(v) ? json_string_value(v) : NULL;

			if (f == NULL || f[0] != '/' || strlen(f) != json_string_length(v) ||
			    strlen(f) >= 4096)
				return ctl_error_set(err, CTL_E_BAD_REQUEST,
						     "\"file\" must be an absolute path");
			free(req->file);
			req->file = strdup(f);
			if (req->file == NULL)
				return ctl_error_set(err, CTL_E_INTERNAL, "out of memory");
			continue;
		}
		if (req->cmd->cmd == CTL_CMD_LOG_LEVEL && strcmp(key, "level") == 0) {
			enum cfg_log_level l;

			if (!json_is_string(v) || cfg_log_level_parse(json_string_value(v), &l) != 0)
				return ctl_error_set(
					err, CTL_E_BAD_REQUEST,
					"\"level\" must be error, warning, info or debug");
			req->level = (int)l;
			continue;
		}
		return ctl_error_set(err, CTL_E_BAD_REQUEST, "%s takes no argument \"%.64s\"",
				     req->cmd->name, key);
	}
	if (req->cmd->cmd == CTL_CMD_LOG_LEVEL && req->level < 0)
		return ctl_error_set(err, CTL_E_BAD_REQUEST,
				     "log.level needs \"level\": error, warning, info or debug");
	if (ctl_queue_takes_id(req->cmd) && req->qid[0] == '\0')
		return ctl_error_set(err, CTL_E_BAD_REQUEST,
				     "%s needs \"id\": the message's queue ID", req->cmd->name);
	return 0;
}

bool ctl_queue_takes_id(const struct ctl_cmd_info *c)
{
	return c != NULL && c->cmd == CTL_CMD_QUEUE && strcmp(c->name, "queue.list") != 0 &&
	       strcmp(c->name, "queue.flush") != 0;
}

int ctl_request_parse(const char *line, size_t len, struct ctl_request *req, struct ctl_error *err)
{
	json_error_t jerr;
	json_t *root, *cmd;
	const char *key;
	json_t *v;
	int rc;

	*req = (struct ctl_request){ .level = -1 };
	if (len > CTL_MAX_REQUEST)
		return ctl_error_set(err, CTL_E_TOO_LARGE, "request longer than %d bytes",
				     CTL_MAX_REQUEST);
	root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL)
		return ctl_error_set(err, CTL_E_BAD_JSON, "not JSON: %s at byte %d", jerr.text,
				     jerr.position);
	if (!json_is_object(root)) {
		rc = ctl_error_set(
			err, CTL_E_BAD_REQUEST,
			"the request is %s; send an object such as {\"cmd\": \"status\"}",
			json_type_words(root));
		goto out;
	}
	rc = parse_id(json_object_get(root, "id"), req, err);
	if (rc != 0)
		goto out;
	json_object_foreach(root, key, v) {
		if (strcmp(key, "cmd") != 0 && strcmp(key, "id") != 0 && strcmp(key, "args") != 0) {
			rc = ctl_error_set(
				err, CTL_E_BAD_REQUEST,
				"unknown field \"%.64s\"; a request has cmd, id and args", key);
			goto out;
		}
	}
	cmd = json_object_get(root, "cmd");
	if (cmd == NULL) {
		rc = ctl_error_set(err, CTL_E_BAD_REQUEST,
				   "no \"cmd\"; e.g. {\"cmd\": \"status\"}");
		goto out;
	}
	if (!json_is_string(cmd)) {
		rc = ctl_error_set(err, CTL_E_BAD_REQUEST, "\"cmd\" is %s; it must be a string",
				   json_type_words(cmd));
		goto out;
	}
	req->cmd = ctl_cmd_find(json_string_value(cmd));
	if (req->cmd == NULL || strlen(json_string_value(cmd)) != json_string_length(cmd)) {
		req->cmd = NULL;
		rc = ctl_error_set(err, CTL_E_UNKNOWN_COMMAND, "unknown command \"%.64s\"",
				   json_string_value(cmd));
		goto out;
	}
	rc = parse_args(json_object_get(root, "args"), req, err);
out:
	json_decref(root);
	return rc;
}

void ctl_request_fini(struct ctl_request *req)
{
	json_decref(req->id);
	free(req->file);
	*req = (struct ctl_request){ 0 };
}

static char *reply_line(json_t *reply)
{
	char *s, *line;
	size_t n;

	if (reply == NULL)
		return NULL;
	s = json_dumps(reply, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(reply);
	if (s == NULL)
		return NULL;
	n = strlen(s);
	line = realloc(s, n + 2);
	if (line == NULL) {
		free(s);
		return NULL;
	}
	line[n] = '\n';
	line[n + 1] = '\0';
	return line;
}

char *ctl_reply_ok(json_t *id, json_t *result)
{
	json_t *r = json_object();

	if (r == NULL || result == NULL) {
		json_decref(r);
		json_decref(result);
		return NULL;
	}
	json_object_set_new(r, "ok", json_true());
	if (id != NULL)
		json_object_set(r, "id", id);
	json_object_set_new(r, "result", result);
	return reply_line(r);
}

char *ctl_reply_error(json_t *id, const char *code, const char *message)
{
	json_t *r = json_pack("{s:b, s:{s:s, s:s}}", "ok", 0, "error", "code", code, "message",
			      message);

	if (r != NULL && id != NULL)
		json_object_set(r, "id", id);
	return reply_line(r);
}
