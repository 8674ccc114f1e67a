/* SPDX-License-Identifier: BSD-3-Clause */
/* mxgatectl config reload and log level, as text (see render_reload.h). */
#include "control/ctl/render_reload.h"

#include <string.h>

static const char *str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s != NULL ? s : "";
}

int render_reload(struct sbuf *out, struct sbuf *err, json_t *res)
{
	const char *status = str(res, "status"), *file = str(res, "file");
	json_t *v;
	size_t i;

	if (strcmp(status, "applied") == 0) {
		json_int_t retired = json_integer_value(json_object_get(res, "retired"));

		sbuf_printf(out, "%s: applied (generation %lld)\n", file,
			    (long long)json_integer_value(json_object_get(res, "generation")));
		sbuf_printf(out, "new sessions use it now; sessions already open keep the settings "
				 "they started with%s\n",
			    retired > 0 ? " until they end" : "");
		return 0;
	}
	if (strcmp(status, "invalid") == 0) {
		json_array_foreach(json_object_get(res, "errors"), i, v)
			sbuf_printf(err, "%s\n", str(v, "text"));
		sbuf_printf(out, "%s: not valid (%zu error%s, found by %s); nothing changed\n", file,
			    json_array_size(json_object_get(res, "errors")),
			    json_array_size(json_object_get(res, "errors")) == 1 ? "" : "s",
			    str(res, "checked_by"));
		return 1;
	}
	if (strcmp(status, "restart_needed") == 0) {
		json_t *keys = json_object_get(res, "restart");
		const char *who = str(json_array_get(keys, 0), "component");

		sbuf_printf(out, "%s: changes %zu setting%s that only a restart of %s applies; "
				 "nothing changed:\n",
			    file, json_array_size(keys), json_array_size(keys) == 1 ? "" : "s",
			    who[0] != '\0' ? who : "a daemon");
		json_array_foreach(keys, i, v) {
			if (json_object_get(v, "old") != NULL)
				sbuf_printf(out, "  %-40s %s -> %s\n", str(v, "key"), str(v, "old"),
					    str(v, "new"));
			else
				sbuf_printf(out, "  %s\n", str(v, "text"));
			sbuf_printf(out, "  %-40s (%s)\n", "", str(v, "why"));
		}
		sbuf_printf(out, "restart %s with this file, or take those changes out of it to "
				 "reload the rest\n",
			    who[0] != '\0' ? who : "the daemon");
		return 1;
	}
	sbuf_printf(out, "%s: %s\n", file, status);
	return 1;
}

int render_log_level(struct sbuf *out, json_t *res)
{
	json_t *ctl = json_object_get(res, "control"), *dp = json_object_get(res, "dataplane");

	sbuf_printf(out, "log level %s\n", str(res, "level"));
	sbuf_printf(out, "  mxgate-control  %s (was %s)\n", str(ctl, "level"), str(ctl, "previous"));
	if (json_is_object(dp)) {
		sbuf_printf(out, "  mxgate-dp       %s (was %s)\n", str(dp, "level"),
			    str(dp, "previous"));
		return 0;
	}
	sbuf_printf(out, "  mxgate-dp       not set: %s\n", str(res, "note"));
	return 1;
}
