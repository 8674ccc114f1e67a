/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mxgatectl sessions and queue without daemons: queue ids are checked and
 * routed to the worker they name, the command line and the control socket
 * refuse a missing or malformed id, and the tables say what an operator
 * needs (held, next attempt, not-yet-read envelopes, a list cut short).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "control/common/proto.h"
#include "control/common/qid.h"
#include "control/ctl/args.h"
#include "control/ctl/render_ops.h"

static json_t *js(const char *s)
{
	json_error_t e;
	json_t *j = json_loads(s, 0, &e);

	cr_assert_not_null(j, "test JSON: %s at %d", e.text, e.position);
	return j;
}

static char *render(void (*fn)(struct sbuf *, json_t *), const char *json)
{
	json_t *r = js(json);
	struct sbuf b = { 0 };

	fn(&b, r);
	json_decref(r);
	cr_assert_not(sbuf_failed(&b));
	char *s = strdup(sbuf_str(&b));
	sbuf_free(&b);
	return s;
}

/* ---- queue ids ---- */

Test(ctl_ops, a_queue_id_names_its_worker_and_is_read_in_any_case)
{
	char id[CTL_QID_LEN + 1];

	/* seconds(36) | worker(12) | nonce(20) | counter(32): the worker starts at bit 52 */
	cr_assert_eq(ctl_qid_parse("000000000C000000000", id), -1, "19 characters");
	cr_assert_eq(ctl_qid_parse("000000000C0000000000", id), 3);
	cr_assert_str_eq(id, "000000000C0000000000");
	cr_assert_eq(ctl_qid_parse("00000000100000000000", id), 8);
	/* 1700000000 s, worker 5, nonce 123, counter 77; lower case is read */
	cr_assert_eq(ctl_qid_parse("0sAKY4000m00fc00002d", id), 5);
	cr_assert_str_eq(id, "0SAKY4000M00FC00002D");
	/* a relay DSN's worker field has 0x800 set: the same worker owns it */
	cr_assert_eq(ctl_qid_parse("000000080C0000000000", id), 3);
	cr_assert_eq(ctl_qid_parse("ZZZZZZZZZZZZZZZZZZZZ", id), 0x7ff);
}

Test(ctl_ops, what_is_not_a_queue_id_is_refused)
{
	char id[CTL_QID_LEN + 1];
	static const char *const bad[] = {
		"",  "0000000000000000000I", "0000000000000000000L", "0000000000000000000O",
		"0000000000000000000U", "000000000000000000000", "00000000000000000000 ",
		"0000000000-000000000", NULL,
	};

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(ctl_qid_parse(bad[i], id), -1, "'%s' is not an id",
			     bad[i] ? bad[i] : "(null)");
}

/* ---- the command line ---- */

static int parse(char *err, struct ctl_args *a, int argc, char **argv)
{
	return ctl_args_parse(argc, argv, a, err, 256);
}

Test(ctl_ops, queue_and_sessions_commands_parse_with_their_id)
{
	struct ctl_args a;
	char err[256];

	cr_assert_eq(parse(err, &a, 2, (char *[]){ "mxgatectl", "sessions", NULL }), 0, "%s", err);
	cr_assert_eq(a.verb, VERB_SESSIONS);
	cr_assert_eq(parse(err, &a, 3, (char *[]){ "mxgatectl", "queue", "list", NULL }), 0);
	cr_assert_eq(a.verb, VERB_QUEUE);
	cr_assert_str_eq(a.later->name, "queue.list");
	cr_assert_str_eq(a.qid, "");
	cr_assert_eq(parse(err, &a, 5,
			   (char *[]){ "mxgatectl", "--json", "queue", "hold",
				       "0a1b2c3d4e5f6g7h8j9k", NULL }),
		     0, "%s", err);
	cr_assert_str_eq(a.later->name, "queue.hold");
	cr_assert_str_eq(a.qid, "0A1B2C3D4E5F6G7H8J9K");
	cr_assert(a.json);
}

Test(ctl_ops, a_missing_or_malformed_id_is_a_usage_error)
{
	struct ctl_args a;
	char err[256];

	cr_assert_eq(parse(err, &a, 3, (char *[]){ "mxgatectl", "queue", "delete", NULL }), -1);
	cr_assert_str_eq(err, "queue delete needs a message ID");
	cr_assert_eq(parse(err, &a, 4, (char *[]){ "mxgatectl", "queue", "show", "1234", NULL }),
		     -1);
	cr_assert_str_eq(err, "'1234' is not a message ID (20 characters of base32, as in "
			      "\"queued as ...\")");
	cr_assert_eq(parse(err, &a, 4, (char *[]){ "mxgatectl", "queue", "flush", "x", NULL }), -1);
	cr_assert_str_eq(err, "unexpected argument 'x'");
	cr_assert_eq(parse(err, &a, 3, (char *[]){ "mxgatectl", "sessions", "all", NULL }), -1);
	cr_assert_str_eq(err, "unexpected argument 'all'");
}

/* ---- the control socket ---- */

static int request(const char *line, struct ctl_request *req, struct ctl_error *e)
{
	return ctl_request_parse(line, strlen(line), req, e);
}

Test(ctl_ops, the_daemon_takes_a_queue_id_only_where_one_belongs)
{
	struct ctl_request req;
	struct ctl_error e;

	cr_assert_eq(request("{\"cmd\":\"queue.show\",\"args\":{\"id\":\"0a1b2c3d4e5f6g7h8j9k\"}}",
			     &req, &e),
		     0, "%s", e.message);
	cr_assert_str_eq(req.qid, "0A1B2C3D4E5F6G7H8J9K");
	cr_assert(ctl_queue_takes_id(req.cmd));
	ctl_request_fini(&req);

	cr_assert_eq(request("{\"cmd\":\"queue.release\"}", &req, &e), -EINVAL);
	cr_assert_str_eq(e.code, CTL_E_BAD_REQUEST);
	cr_assert_str_eq(e.message, "queue.release needs \"id\": the message's queue ID");
	ctl_request_fini(&req);

	cr_assert_eq(request("{\"cmd\":\"queue.hold\",\"args\":{\"id\":42}}", &req, &e), -EINVAL);
	cr_assert_not_null(strstr(e.message, "must be a queue ID"));
	ctl_request_fini(&req);

	cr_assert_eq(request("{\"cmd\":\"queue.list\",\"args\":{\"id\":\"0a1b2c3d4e5f6g7h8j9k\"}}",
			     &req, &e),
		     -EINVAL, "list takes no id");
	ctl_request_fini(&req);

	cr_assert_eq(request("{\"cmd\":\"sessions\"}", &req, &e), 0);
	cr_assert_null(req.cmd->missing, "sessions is available");
	ctl_request_fini(&req);
}

/* ---- the tables ---- */

Test(ctl_ops, the_queue_table_shows_state_wait_recipients_and_unknown_senders)
{
	char *out = render(
		render_queue_list,
		"{\"count\":3,\"truncated\":false,\"limit\":5000,\"messages\":["
		"{\"id\":\"0A1B2C3D4E5F6G7H8J9K\",\"worker\":0,\"state\":\"deferred\",\"held\":0,"
		"\"age_s\":3725,\"size\":1234,\"envelope_known\":1,\"sender\":\"a@b.example\","
		"\"rcpts\":3,\"pending\":2,\"next_attempt\":1,\"next_in_s\":125,\"attempts\":2,"
		"\"last_reply\":\"451 4.3.0 later\"},"
		"{\"id\":\"0A1B2C3D4E5F6G7H8J9M\",\"worker\":1,\"state\":\"held\",\"held\":1,"
		"\"age_s\":5,\"size\":99,\"envelope_known\":1,\"sender\":\"\",\"rcpts\":1,"
		"\"pending\":1,\"next_attempt\":0,\"next_in_s\":0,\"attempts\":0,\"last_reply\":\"\"},"
		"{\"id\":\"0A1B2C3D4E5F6G7H8J9N\",\"worker\":1,\"state\":\"deferred\",\"held\":0,"
		"\"age_s\":90000,\"size\":7,\"envelope_known\":0,\"sender\":\"\",\"rcpts\":1,"
		"\"pending\":1,\"next_attempt\":9,\"next_in_s\":30,\"attempts\":0,"
		"\"last_reply\":\"\"}]}");

	cr_assert_not_null(strstr(out, "\n0A1B2C3D4E5F6G7H8J9K 0   deferred     1h02m      1234 "
				       "in 2m05s  2/3     <a@b.example>                451 4.3.0 "
				       "later\n"),
			   "%s", out);
	cr_assert_not_null(strstr(out, "\n0A1B2C3D4E5F6G7H8J9M 1   held            5s        99 "
				       "held      1/1     <>                           -\n"),
			   "held, and the null sender: %s", out);
	cr_assert_not_null(strstr(out, " deferred     1d01h         7 in 30s    1/1     ?    "),
			   "an envelope not read yet: %s", out);
	cr_assert_not_null(strstr(out, "\n3 messages ("), "%s", out);
	free(out);

	out = render(render_queue_list, "{\"count\":0,\"truncated\":false,\"messages\":[]}");
	cr_assert_str_eq(out, "the queue is empty\n");
	free(out);
}

Test(ctl_ops, a_list_cut_at_the_limit_says_so)
{
	char *out = render(render_sessions,
			   "{\"count\":1,\"truncated\":true,\"limit\":5000,\"sessions\":["
			   "{\"worker\":1,\"id\":7,\"client\":\"198.51.100.1:40000\","
			   "\"listener\":\"mx\",\"port\":25,\"state\":\"RCPT\",\"age_ms\":61000,"
			   "\"bytes_in\":120,\"bytes_out\":300,\"messages\":2,"
			   "\"helo\":\"c.example\",\"tls\":1,\"auth\":0}]}");

	cr_assert_not_null(strstr(out, "\n1   7        198.51.100.1:40000    mx               RCPT"
				       "        1m01s        120        300    2  c.example [tls]\n"),
			   "%s", out);
	cr_assert_not_null(strstr(out, "1 session\n(the list stops at 5000 sessions: more exist"),
			   "%s", out);
	free(out);
	out = render(render_sessions, "{\"count\":0,\"truncated\":false,\"sessions\":[]}");
	cr_assert_str_eq(out, "no SMTP sessions open\n");
	free(out);
}

Test(ctl_ops, show_lists_the_recipients_and_how_to_release_a_held_message)
{
	char *out = render(
		render_queue_show,
		"{\"truncated\":false,\"message\":{\"id\":\"0A1B2C3D4E5F6G7H8J9K\",\"worker\":0,"
		"\"state\":\"held\",\"held\":1,\"age_s\":10,\"size\":50,\"envelope_known\":1,"
		"\"sender\":\"a@b.example\",\"rcpts\":2,\"pending\":1,\"next_attempt\":0,"
		"\"next_in_s\":0,\"attempts\":1,\"last_reply\":\"451 4.3.0 later\"},"
		"\"recipients\":[{\"index\":0,\"addr\":\"x@y.example\",\"state\":\"delivered\","
		"\"code\":250,\"reply\":\"250 2.0.0 ok\"},{\"index\":1,\"addr\":\"z@y.example\","
		"\"state\":\"deferred\",\"code\":451,\"reply\":\"451 4.3.0 later\"}]}");

	cr_assert_not_null(strstr(out, "state          held (no delivery until: mxgatectl queue "
				       "release ID)\n"),
			   "%s", out);
	cr_assert_not_null(strstr(out, "recipients     2, 1 not final\n"), "%s", out);
	cr_assert_not_null(strstr(out, "next attempt   held\n"), "%s", out);
	cr_assert_not_null(strstr(out, "0     x@y.example"), "%s", out);
	cr_assert_not_null(strstr(out, "deferred   451 4.3.0 later\n"), "%s", out);
	free(out);
	out = render(render_queue_done, "{\"flushed\":1,\"by_worker\":{\"0\":1}}");
	cr_assert_str_eq(out, "1 deferred message will be tried now\n");
	free(out);
	out = render(render_queue_done,
		     "{\"id\":\"0A1B2C3D4E5F6G7H8J9K\",\"worker\":0,\"done\":\"deleted\"}");
	cr_assert_str_eq(out, "0A1B2C3D4E5F6G7H8J9K: deleted\n");
	free(out);
}
