/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What mxgate-control makes of the bytes a client sends on its socket: lines
 * cut where they end, and every malformed, oversized or unknown request
 * turned into an error reply that says what is wrong (never a crash). Each
 * input sits right before a guard page, so reading past it faults.
 */
#include <errno.h>
#include <string.h>

#include <criterion/criterion.h>

#include "control/common/proto.h"
#include "control/config/control.h"
#include "guard.h"

static struct guard g;

static void release(void)
{
	guard_release(&g);
}

TestSuite(ctl_request, .fini = release);

/* Parses S (without a newline) placed before the guard page. */
static int parse_n(const char *s, size_t n, struct ctl_request *req, struct ctl_error *err)
{
	const char *p = (const char *)guard_place(&g, s, n);

	memset(err, 0, sizeof(*err));
	return ctl_request_parse(p, n, req, err);
}

static int parse(const char *s, struct ctl_request *req, struct ctl_error *err)
{
	return parse_n(s, strlen(s), req, err);
}

/* S is refused with CODE and exactly MESSAGE. */
static void refused(const char *s, const char *code, const char *message)
{
	struct ctl_request req;
	struct ctl_error err;

	cr_assert_eq(parse(s, &req, &err), -EINVAL, "accepted: %s", s);
	cr_assert_str_eq(err.code, code, "for %s", s);
	cr_assert_str_eq(err.message, message, "for %s: got '%s'", s, err.message);
	ctl_request_fini(&req);
}

/* ---- framing ---- */

static ssize_t frame(const char *s, size_t max, size_t *line_len)
{
	return ctl_frame((const char *)guard_place(&g, s, strlen(s)), strlen(s), max, line_len);
}

Test(ctl_request, a_line_ends_at_its_newline)
{
	size_t n = 99;

	cr_assert_eq(frame("{\"cmd\":\"status\"}\n{\"cmd\"", 4096, &n), 17);
	cr_assert_eq(n, 16);
}

Test(ctl_request, crlf_is_taken_as_a_newline)
{
	size_t n = 99;

	cr_assert_eq(frame("{}\r\n", 4096, &n), 4);
	cr_assert_eq(n, 2);
}

Test(ctl_request, a_line_without_its_newline_waits_for_more)
{
	size_t n = 99;

	cr_assert_eq(frame("{\"cmd\":\"sta", 4096, &n), 0);
	cr_assert_eq(n, 99, "no line, no length");
	cr_assert_eq(ctl_frame((const char *)guard_place(&g, "", 0), 0, 4096, &n), 0);
}

Test(ctl_request, a_full_buffer_without_a_newline_is_too_large)
{
	size_t n;

	cr_assert_eq(frame("0123456789", 10, &n), -EMSGSIZE);
	/* the newline as the very last byte that fits is fine */
	cr_assert_eq(frame("012345678\n", 10, &n), 10);
	cr_assert_eq(n, 9);
}

Test(ctl_request, blank_lines_are_recognised)
{
	cr_assert(ctl_line_blank("", 0));
	cr_assert(ctl_line_blank(" \t ", 3));
	cr_assert_not(ctl_line_blank(" x", 2));
}

/* ---- requests that parse ---- */

Test(ctl_request, every_available_command_parses)
{
	static const char *const names[] = { "status", "stats", "ports", "config.show" };
	static const enum ctl_cmd cmds[] = { CTL_CMD_STATUS, CTL_CMD_STATS, CTL_CMD_PORTS,
					     CTL_CMD_CONFIG_SHOW };

	for (unsigned i = 0; i < 4; i++) {
		struct ctl_request req;
		struct ctl_error err;
		char line[64];

		snprintf(line, sizeof(line), "{\"cmd\": \"%s\"}", names[i]);
		cr_assert_eq(parse(line, &req, &err), 0, "%s: %s", line, err.message);
		cr_assert_eq(req.cmd->cmd, cmds[i]);
		cr_assert_null(req.cmd->missing);
		cr_assert_null(req.id);
		ctl_request_fini(&req);
	}
}

Test(ctl_request, id_and_args_are_taken)
{
	struct ctl_request req;
	struct ctl_error err;

	cr_assert_eq(
		parse("{\"id\": 7, \"cmd\": \"stats\", \"args\": {\"span_s\": 60}}", &req, &err), 0,
		"%s", err.message);
	cr_assert_eq(req.cmd->cmd, CTL_CMD_STATS);
	cr_assert_eq(req.span_s, 60);
	cr_assert_eq(json_integer_value(req.id), 7);
	ctl_request_fini(&req);
	cr_assert_eq(parse("{\"cmd\":\"status\",\"id\":\"a-1\",\"args\":{}}", &req, &err), 0);
	cr_assert_str_eq(json_string_value(req.id), "a-1");
	ctl_request_fini(&req);
}

Test(ctl_request, config_reload_and_log_level_take_their_arguments)
{
	struct ctl_request req;
	struct ctl_error err;

	cr_assert_eq(parse("{\"cmd\":\"config.reload\"}", &req, &err), 0);
	cr_assert_null(req.cmd->missing);
	cr_assert_null(req.file, "no file: the one in force");
	ctl_request_fini(&req);
	cr_assert_eq(parse("{\"cmd\":\"config.reload\",\"args\":{\"file\":\"/etc/m.yaml\"}}", &req,
			   &err),
		     0);
	cr_assert_str_eq(req.file, "/etc/m.yaml");
	ctl_request_fini(&req);
	cr_assert_eq(parse("{\"cmd\":\"log.level\",\"args\":{\"level\":\"warning\"}}", &req, &err),
		     0);
	cr_assert_eq(req.level, CFG_LOG_WARNING);
	ctl_request_fini(&req);
}

Test(ctl_request, a_relative_file_or_an_unknown_level_is_refused)
{
	refused("{\"cmd\":\"config.reload\",\"args\":{\"file\":\"m.yaml\"}}", CTL_E_BAD_REQUEST,
		"\"file\" must be an absolute path");
	refused("{\"cmd\":\"config.reload\",\"args\":{\"file\":7}}", CTL_E_BAD_REQUEST,
		"\"file\" must be an absolute path");
	refused("{\"cmd\":\"log.level\",\"args\":{\"level\":\"loud\"}}", CTL_E_BAD_REQUEST,
		"\"level\" must be error, warning, info or debug");
	refused("{\"cmd\":\"log.level\"}", CTL_E_BAD_REQUEST,
		"log.level needs \"level\": error, warning, info or debug");
}

/* ---- requests that are refused ---- */

Test(ctl_request, not_json)
{
	refused("hello", CTL_E_BAD_JSON, "not JSON: '[' or '{' expected near 'hello' at byte 5");
	refused("{\"cmd\": \"status\"", CTL_E_BAD_JSON,
		"not JSON: '}' expected near end of file at byte 16");
	refused("{\"cmd\":\"status\"} {}", CTL_E_BAD_JSON,
		"not JSON: end of file expected near '{' at byte 18");
}

Test(ctl_request, nul_bytes_and_bad_utf8_are_not_json)
{
	struct ctl_request req;
	struct ctl_error err;

	cr_assert_eq(parse_n("{\"cmd\":\"st\0atus\"}", 17, &req, &err), -EINVAL);
	cr_assert_str_eq(err.code, CTL_E_BAD_JSON);
	ctl_request_fini(&req);
	cr_assert_eq(parse("{\"cmd\":\"\xff\xfe\"}", &req, &err), -EINVAL);
	cr_assert_str_eq(err.code, CTL_E_BAD_JSON);
	for (const char *p = err.message; *p; p++)
		cr_assert(*p >= 0x20 && *p < 0x7f, "the message quotes raw bytes: %s", err.message);
	ctl_request_fini(&req);
}

Test(ctl_request, duplicate_keys_are_refused)
{
	refused("{\"cmd\":\"status\",\"cmd\":\"stats\"}", CTL_E_BAD_JSON,
		"not JSON: duplicate object key near '\"cmd\"' at byte 21");
}

Test(ctl_request, json_that_is_not_an_object)
{
	refused("[\"status\"]", CTL_E_BAD_REQUEST,
		"the request is an array; send an object such as {\"cmd\": \"status\"}");
	refused("\"status\"", CTL_E_BAD_JSON,
		"not JSON: '[' or '{' expected near '\"status\"' at byte 8");
}

Test(ctl_request, missing_or_mistyped_cmd)
{
	refused("{}", CTL_E_BAD_REQUEST, "no \"cmd\"; e.g. {\"cmd\": \"status\"}");
	refused("{\"cmd\": 5}", CTL_E_BAD_REQUEST, "\"cmd\" is an integer; it must be a string");
	refused("{\"cmd\": null}", CTL_E_BAD_REQUEST, "\"cmd\" is null; it must be a string");
}

Test(ctl_request, unknown_command)
{
	refused("{\"cmd\": \"reboot\"}", CTL_E_UNKNOWN_COMMAND, "unknown command \"reboot\"");
	refused("{\"cmd\": \"STATUS\"}", CTL_E_UNKNOWN_COMMAND, "unknown command \"STATUS\"");
	/* quoted back, but as printable ASCII only */
	refused("{\"cmd\": \"st\\u00e9tus\"}", CTL_E_UNKNOWN_COMMAND,
		"unknown command \"st??tus\"");
}

Test(ctl_request, unknown_field)
{
	refused("{\"cmd\": \"status\", \"verbose\": true}", CTL_E_BAD_REQUEST,
		"unknown field \"verbose\"; a request has cmd, id and args");
}

Test(ctl_request, bad_args)
{
	refused("{\"cmd\": \"stats\", \"args\": [60]}", CTL_E_BAD_REQUEST,
		"\"args\" is an array; it must be an object");
	refused("{\"cmd\": \"stats\", \"args\": {\"span_s\": 0}}", CTL_E_BAD_REQUEST,
		"\"span_s\" must be an integer from 1 to 86400");
	refused("{\"cmd\": \"stats\", \"args\": {\"span_s\": \"10\"}}", CTL_E_BAD_REQUEST,
		"\"span_s\" must be an integer from 1 to 86400");
	refused("{\"cmd\": \"stats\", \"args\": {\"span_s\": 86401}}", CTL_E_BAD_REQUEST,
		"\"span_s\" must be an integer from 1 to 86400");
	refused("{\"cmd\": \"status\", \"args\": {\"span_s\": 5}}", CTL_E_BAD_REQUEST,
		"status takes no argument \"span_s\"");
}

Test(ctl_request, bad_id_is_refused_but_a_good_one_is_kept_for_the_reply)
{
	struct ctl_request req;
	struct ctl_error err;

	refused("{\"cmd\": \"status\", \"id\": [1]}", CTL_E_BAD_REQUEST,
		"\"id\" is an array; use a string or an integer");
	refused("{\"cmd\": \"status\", \"id\": "
		"\"0123456789012345678901234567890123456789012345678901234567890123X\"}",
		CTL_E_BAD_REQUEST, "\"id\" is longer than 64 characters");
	cr_assert_eq(parse("{\"id\": 42, \"cmd\": \"reboot\"}", &req, &err), -EINVAL);
	cr_assert_eq(json_integer_value(req.id), 42, "the error reply can carry the id");
	ctl_request_fini(&req);
}

Test(ctl_request, oversized_line_is_refused_without_parsing)
{
	static char big[CTL_MAX_REQUEST + 2];
	struct ctl_request req;
	struct ctl_error err;

	memset(big, ' ', sizeof(big) - 1);
	memcpy(big, "{\"cmd\":\"status\"}", 16);
	cr_assert_eq(parse_n(big, CTL_MAX_REQUEST + 1, &req, &err), -EINVAL);
	cr_assert_str_eq(err.code, CTL_E_TOO_LARGE);
	cr_assert_str_eq(err.message, "request longer than 4096 bytes");
	ctl_request_fini(&req);
}

/* ---- replies ---- */

Test(ctl_request, replies_are_one_json_line_each)
{
	json_t *id = json_integer(3);
	char *ok = ctl_reply_ok(id, json_pack("{s:i}", "workers", 2));
	char *bad = ctl_reply_error(NULL, CTL_E_UNKNOWN_COMMAND, "unknown command \"x\"");

	cr_assert_str_eq(ok, "{\"ok\":true,\"id\":3,\"result\":{\"workers\":2}}\n");
	cr_assert_str_eq(bad, "{\"ok\":false,\"error\":{\"code\":\"unknown_command\","
			      "\"message\":\"unknown command \\\"x\\\"\"}}\n");
	free(ok);
	free(bad);
	json_decref(id);
}
