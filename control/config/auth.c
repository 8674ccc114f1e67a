/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The "auth:" section and each listener's "auth:" and "auth_plaintext:"
 * keys. A submission listener offers AUTH when a password file is
 * configured; a relay listener only when it says "auth: true" (issue #7
 * item 5). AUTH is offered only under TLS unless auth_plaintext says
 * otherwise (RFC 4954 §4, RFC 3207 §6: credentials never in the clear).
 */
#include <stdlib.h>
#include <string.h>

#include <cyaml/cyaml.h>

#include "control/config/config.h"
#include "control/config/config_priv.h"

/* clang-format off */
const cyaml_schema_field_t cfg_auth_fields[] = {
	CFG_STR("password_file", struct cfg_raw_auth, password_file),
	CFG_STR("max_failures", struct cfg_raw_auth, max_failures),
	CFG_STR("lockout_s", struct cfg_raw_auth, lockout_s),
	CFG_STR("queue_depth", struct cfg_raw_auth, queue_depth),
	CYAML_FIELD_END
};
/* clang-format on */

void cfg_auth_build(struct cfg_ctx *x, const struct cfg_raw_auth *raw, struct cfg_auth *a)
{
	static const struct cfg_raw_auth none;
	const char *path = "auth.password_file";

	if (raw == NULL)
		raw = &none;
	if (cfg_get_str(x, path, raw->password_file, NULL, &a->password_file) == 0 &&
	    a->password_file != NULL && a->password_file[0] != '/') {
		/* the dataplane and the control plane read it from different directories */
		cfg_error(x, cfg_pos_value(x, path), path, "'%s': write an absolute path",
			  a->password_file);
	}
	cfg_get_uint(x, "auth.max_failures", raw->max_failures, 1, 1000, 5, &a->max_failures);
	cfg_get_uint(x, "auth.lockout_s", raw->lockout_s, 1, 86400, 300, &a->lockout_s);
	cfg_get_uint(x, "auth.queue_depth", raw->queue_depth, 1, 65536, 256, &a->queue_depth);
}

void cfg_listener_auth_build(struct cfg_ctx *x, const struct cfg_auth *a, unsigned i,
			     const char *raw_auth, const char *raw_plaintext, struct cfg_listener *l)
{
	bool def = l->mode == CFG_MODE_SUBMISSION && a->password_file != NULL;
	char path[64];

	cfg_pathf(path, sizeof(path), "listeners[%u].auth", i);
	cfg_get_bool(x, path, raw_auth, def, &l->auth);
	if (l->auth && a->password_file == NULL) {
		cfg_error(x, cfg_pos_value(x, path), path,
			  "AUTH needs the users' passwords: add auth.password_file");
		l->auth = false;
	}
	cfg_pathf(path, sizeof(path), "listeners[%u].auth_plaintext", i);
	cfg_get_bool(x, path, raw_plaintext, false, &l->auth_plaintext);
	if (l->auth_plaintext && !l->auth && raw_plaintext != NULL)
		cfg_error(x, cfg_pos_value(x, path), path,
			  "this listener does not offer AUTH: auth_plaintext has no effect");
}

void cfg_auth_free(struct cfg_auth *a)
{
	free(a->password_file);
	memset(a, 0, sizeof(*a));
}
