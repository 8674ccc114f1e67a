/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The config as JSON (control/common/cfg_json.c, what "mxgatectl config
 * show" prints): the relay section carries the next hop's timeouts.
 */
#include <criterion/criterion.h>
#include <jansson.h>

#include "cfg_load.h"
#include "control/common/cfg_json.h"

#define BASE                                                                                       \
	"dataplane:\n  worker_cores: [1]\n  ports:\n    - device: net_tap0\n"                     \
	"      addresses: [198.51.100.2/24]\n"                                                      \
	"listeners:\n  - port: 25\n    ack: sink\n"

static json_int_t relay_int(json_t *j, const char *key)
{
	json_t *v = json_object_get(json_object_get(j, "relay"), key);

	cr_assert(json_is_integer(v), "relay.%s is not in the dump", key);
	return json_integer_value(v);
}

Test(cfg_json, relay_timeouts_as_configured)
{
	struct cfg *c = load_ok(BASE "relay:\n"
				"  command_timeout_s: 20\n"
				"  data_block_timeout_s: 45\n"
				"  data_end_timeout_s: 700\n");
	json_t *j = cfg_to_json(c);

	cr_assert_not_null(j);
	cr_assert_eq(relay_int(j, "command_timeout_s"), 20);
	cr_assert_eq(relay_int(j, "data_block_timeout_s"), 45);
	cr_assert_eq(relay_int(j, "data_end_timeout_s"), 700);
	json_decref(j);
	cfg_free(c);
	no_leaks();
}

Test(cfg_json, relay_timeouts_default_to_rfc_5321_minimums)
{
	struct cfg *c = load_ok(BASE);
	json_t *j = cfg_to_json(c);

	cr_assert_not_null(j);
	/* RFC 5321 §4.5.3.2: 5 minutes for a command, 3 for a data block, 10 for the end */
	cr_assert_eq(relay_int(j, "command_timeout_s"), 300);
	cr_assert_eq(relay_int(j, "data_block_timeout_s"), 180);
	cr_assert_eq(relay_int(j, "data_end_timeout_s"), 600);
	json_decref(j);
	cfg_free(c);
	no_leaks();
}
