/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target: what mxgate-control makes of the bytes a client sends on
 * its control socket. The input after the first octet is one client's byte
 * stream, cut into lines by ctl_frame() the way the daemon's server does it
 * (control/daemon/server.c), each line parsed by ctl_request_parse() from an
 * exact-size heap copy (ASan catches a read past it), and the reply the
 * daemon would send checked to be one line of JSON that says the same thing.
 * The first octet picks the line limit: the daemon's own, or a short one so
 * small inputs reach the too-large path.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control/common/proto.h"

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x))                                                                          \
			__builtin_trap();                                                          \
	} while (0)

static const char *const codes[] = { CTL_E_BAD_JSON,	   CTL_E_BAD_REQUEST, CTL_E_UNKNOWN_COMMAND,
				     CTL_E_NOT_AVAILABLE,  CTL_E_TOO_LARGE,   CTL_E_BUSY,
				     CTL_E_DATAPLANE_DOWN, CTL_E_INTERNAL };

static bool known_code(const char *code)
{
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (code != NULL && strcmp(code, codes[i]) == 0)
			return true;
	return false;
}

/* REPLY is one line of JSON: {"ok": OK, ...} carrying ID back when there is one. */
static void check_reply(char *reply, bool ok, json_t *id)
{
	json_error_t jerr;
	size_t n;
	json_t *r;

	CHECK(reply != NULL);
	n = strlen(reply);
	CHECK(n >= 2 && reply[n - 1] == '\n' && memchr(reply, '\n', n - 1) == NULL);
	r = json_loadb(reply, n - 1, JSON_REJECT_DUPLICATES, &jerr);
	CHECK(json_is_object(r));
	CHECK(json_is_boolean(json_object_get(r, "ok")));
	CHECK(json_is_true(json_object_get(r, "ok")) == ok);
	CHECK(id == NULL ? json_object_get(r, "id") == NULL :
			   json_equal(json_object_get(r, "id"), id));
	json_decref(r);
	free(reply);
}

static void serve_line(const char *data, size_t len)
{
	char *line = malloc(len ? len : 1);
	struct ctl_request req;
	struct ctl_error err = { 0 };
	int rc;

	if (line == NULL)
		return;
	memcpy(line, data, len);
	rc = ctl_request_parse(line, len, &req, &err);
	if (rc == 0) {
		CHECK(req.cmd != NULL && req.cmd->name != NULL);
		CHECK(ctl_cmd_find(req.cmd->name) != NULL);
		CHECK(req.span_s <= CTL_MAX_SPAN_S);
		CHECK(req.span_s == 0 || req.cmd->cmd == CTL_CMD_STATS);
		check_reply(ctl_reply_ok(req.id, json_object()), true, req.id);
	} else {
		CHECK(rc == -EINVAL);
		CHECK(known_code(err.code));
		CHECK(memchr(err.message, '\0', sizeof(err.message)) != NULL);
		for (const char *p = err.message; *p != '\0'; p++)
			CHECK(*p >= 0x20 &&
			      *p < 0x7f); /* it may quote the client: printable only */
		check_reply(ctl_reply_error(req.id, err.code, err.message), false, req.id);
	}
	CHECK(req.id == NULL || json_is_integer(req.id) ||
	      (json_is_string(req.id) && json_string_length(req.id) <= CTL_MAX_ID_LEN));
	ctl_request_fini(&req);
	CHECK(req.id == NULL && req.cmd == NULL);
	free(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	size_t max = data[0] & 0x80 ? CTL_MAX_REQUEST : (size_t)(data[0] & 0x7f) + 1;
	const char *in = (const char *)data + 1;
	size_t left = size - 1;

	while (left != 0) {
		/* what the server holds at most: one buffer of MAX bytes */
		size_t held = left < max ? left : max;
		char *buf = malloc(held);
		size_t len = (size_t)-1;
		ssize_t n;

		if (buf == NULL)
			return 0;
		memcpy(buf, in, held);
		n = ctl_frame(buf, held, max, &len);
		if (n == 0) {
			/* no newline yet, and room for more: at the end of input the server
			 * answers what is left as the last request */
			CHECK(held < max && memchr(buf, '\n', held) == NULL);
			CHECK(len == (size_t)-1);
			if (!ctl_line_blank(buf, held))
				serve_line(buf, held);
			free(buf);
			break;
		}
		if (n < 0) {
			/* a full buffer without a newline: too large, and the connection ends */
			CHECK(n == -EMSGSIZE && held == max && memchr(buf, '\n', held) == NULL);
			free(buf);
			break;
		}
		CHECK((size_t)n <= held && buf[n - 1] == '\n');
		CHECK(memchr(buf, '\n', (size_t)n - 1) == NULL);
		CHECK(len == (size_t)n - 1 || (len == (size_t)n - 2 && buf[len] == '\r'));
		if (!ctl_line_blank(buf, len))
			serve_line(buf, len);
		free(buf);
		in += n;
		left -= (size_t)n;
	}
	return 0;
}
