/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mxgatectl config reload and log level as text (control/ctl/render_reload.c)
 * and mxgate-control's error objects (reload_error_json): what the operator
 * reads for each outcome, and the exit status that goes with it.
 */
#include <string.h>

#include <criterion/criterion.h>

#include "control/ctl/render_reload.h"
#include "control/daemon/reload_ops.h"

struct out {
	struct sbuf out, err;
	int rc;
};

static void render(const char *json, struct out *o)
{
	json_error_t e;
	json_t *res = json_loads(json, 0, &e);

	cr_assert_not_null(res, "%s", e.text);
	memset(o, 0, sizeof(*o));
	o->rc = render_reload(&o->out, &o->err, res);
	json_decref(res);
}

static void done(struct out *o)
{
	sbuf_free(&o->out);
	sbuf_free(&o->err);
}

Test(ctl_render_reload, applied_says_the_generation_and_exits_0)
{
	struct out o;

	render("{\"file\":\"/etc/m.yaml\",\"status\":\"applied\",\"applied\":true,"
	       "\"generation\":3,\"retired\":1}",
	       &o);
	cr_assert_eq(o.rc, 0);
	cr_assert_str_eq(sbuf_str(&o.out),
			 "/etc/m.yaml: applied (generation 3)\n"
			 "new sessions use it now; sessions already open keep the settings they "
			 "started with until they end\n");
	cr_assert_eq(o.err.len, 0);
	done(&o);
}

Test(ctl_render_reload, invalid_prints_each_error_as_config_check_does_and_exits_1)
{
	struct out o;

	render("{\"file\":\"/etc/m.yaml\",\"status\":\"invalid\",\"applied\":false,"
	       "\"checked_by\":\"mxgate-dp\",\"errors\":["
	       "{\"text\":\"/etc/m.yaml:3:9: listeners[0].port: 70000 is not a port number\"},"
	       "{\"text\":\"/etc/m.yaml:9:3: polcy: unknown key\"}]}",
	       &o);
	cr_assert_eq(o.rc, 1);
	cr_assert_str_eq(sbuf_str(&o.err),
			 "/etc/m.yaml:3:9: listeners[0].port: 70000 is not a port number\n"
			 "/etc/m.yaml:9:3: polcy: unknown key\n");
	cr_assert_str_eq(sbuf_str(&o.out),
			 "/etc/m.yaml: not valid (2 errors, found by mxgate-dp); nothing changed\n");
	done(&o);
}

Test(ctl_render_reload, restart_needed_names_each_key_with_its_values_and_why)
{
	struct out o;

	render("{\"file\":\"/m.yaml\",\"status\":\"restart_needed\",\"applied\":false,"
	       "\"restart\":[{\"key\":\"listeners[0].port\",\"old\":\"25\",\"new\":\"2525\","
	       "\"why\":\"ports are set up at start\",\"component\":\"mxgate-dp\"},"
	       "{\"key\":\"listeners[0].limits\",\"text\":\"listeners[0].limits: too big\","
	       "\"why\":\"session memory is reserved at start\",\"component\":\"mxgate-dp\"}]}",
	       &o);
	cr_assert_eq(o.rc, 1);
	cr_assert_str_eq(sbuf_str(&o.out),
			 "/m.yaml: changes 2 settings that only a restart of mxgate-dp applies; "
			 "nothing changed:\n"
			 "  listeners[0].port                        25 -> 2525\n"
			 "                                           (ports are set up at start)\n"
			 "  listeners[0].limits: too big\n"
			 "                                           (session memory is reserved at "
			 "start)\n"
			 "restart mxgate-dp with this file, or take those changes out of it to "
			 "reload the rest\n");
	done(&o);
}

Test(ctl_render_reload, a_level_the_dataplane_did_not_take_exits_1_with_the_reason)
{
	struct sbuf b = { 0 };
	json_t *res = json_pack("{s:s, s:{s:s, s:s}, s:n, s:s}", "level", "debug", "control",
				"level", "debug", "previous", "info", "dataplane", "note",
				"mxgate-dp is not connected: mxgate-dp keeps its level");

	cr_assert_eq(render_log_level(&b, res), 1);
	cr_assert_str_eq(sbuf_str(&b), "log level debug\n"
				       "  mxgate-control  debug (was info)\n"
				       "  mxgate-dp       not set: mxgate-dp is not connected: "
				       "mxgate-dp keeps its level\n");
	sbuf_free(&b);
	json_decref(res);
	res = json_pack("{s:s, s:{s:s, s:s}, s:{s:s, s:s}}", "level", "error", "control", "level",
			"error", "previous", "info", "dataplane", "level", "error", "previous",
			"warning");
	cr_assert_eq(render_log_level(&b, res), 0);
	cr_assert(strstr(sbuf_str(&b), "  mxgate-dp       error (was warning)\n") != NULL);
	sbuf_free(&b);
	json_decref(res);
}

Test(ctl_render_reload, a_loader_line_becomes_an_object_with_its_position_and_key)
{
	json_t *e = reload_error_json("/m.yaml", "/m.yaml:3:9: listeners[0].port: 70000 is bad");

	cr_assert_eq(json_integer_value(json_object_get(e, "line")), 3);
	cr_assert_eq(json_integer_value(json_object_get(e, "column")), 9);
	cr_assert_str_eq(json_string_value(json_object_get(e, "path")), "listeners[0].port");
	cr_assert_str_eq(json_string_value(json_object_get(e, "message")), "70000 is bad");
	json_decref(e);
	/* a file that cannot be read has no position: its text alone */
	e = reload_error_json("/m.yaml", "/m.yaml: No such file or directory");
	cr_assert_null(json_object_get(e, "line"));
	cr_assert_str_eq(json_string_value(json_object_get(e, "text")),
			 "/m.yaml: No such file or directory");
	json_decref(e);
}
