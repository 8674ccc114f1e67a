/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The "auth:" section and the listeners' "auth:" and "auth_plaintext:"
 * keys (control/config/auth.c): defaults per listener mode, and each
 * mistake as one "FILE:LINE:COLUMN: key.path: what" line.
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "control/config/config.h"
#include "cfg_load.h"

#define PORTS                                                                                      \
	"dataplane:\n  ports:\n    - device: net_tap0\n      addresses: [198.51.100.2/24]\n"

Test(auth_config, defaults_without_a_password_file)
{
	struct cfg *c = load_ok(PORTS "listeners:\n  - port: 25\n  - port: 587\n"
				      "    mode: submission\n");

	cr_assert_null(c->auth.password_file);
	cr_assert_eq(c->auth.max_failures, 5);
	cr_assert_eq(c->auth.lockout_s, 300);
	cr_assert_eq(c->auth.queue_depth, 256);
	cr_assert_not(c->listeners[0].auth);
	cr_assert_not(c->listeners[1].auth, "no password file: nothing to check against");
	cfg_free(c);
}

Test(auth_config, submission_offers_auth_relay_only_when_asked)
{
	struct cfg *c = load_ok(PORTS "auth:\n  password_file: /etc/mxgate/users\n"
				      "  max_failures: 3\n  lockout_s: 60\n  queue_depth: 16\n"
				      "listeners:\n  - port: 25\n  - port: 587\n"
				      "    mode: submission\n  - port: 2525\n    auth: yes\n"
				      "    auth_plaintext: true\n  - port: 2526\n"
				      "    mode: submission\n    auth: no\n");

	cr_assert_str_eq(c->auth.password_file, "/etc/mxgate/users");
	cr_assert_eq(c->auth.max_failures, 3);
	cr_assert_eq(c->auth.lockout_s, 60);
	cr_assert_eq(c->auth.queue_depth, 16);
	cr_assert_not(c->listeners[0].auth, "relay: STARTTLS but no AUTH unless configured");
	cr_assert(c->listeners[1].auth);
	cr_assert_not(c->listeners[1].auth_plaintext, "TLS only by default");
	cr_assert(c->listeners[2].auth);
	cr_assert(c->listeners[2].auth_plaintext);
	cr_assert_not(c->listeners[3].auth);
	cfg_free(c);
}

Test(auth_config, auth_without_a_password_file_is_an_error)
{
	expect_errors(PORTS "listeners:\n  - port: 587\n    auth: true\n",
		      "t.yaml:7:11: listeners[0].auth: AUTH needs the users' passwords: add "
		      "auth.password_file\n");
}

Test(auth_config, a_relative_password_file_is_an_error)
{
	expect_errors(PORTS "auth:\n  password_file: users.txt\n",
		      "t.yaml:6:18: auth.password_file: 'users.txt': write an absolute path\n");
}

Test(auth_config, limits_out_of_range_are_errors)
{
	char *err = NULL;
	struct cfg *c = load(PORTS "auth:\n  max_failures: 0\n  lockout_s: 86401\n"
				   "  queue_depth: x\n",
			     &err);
	cr_assert_null(c);
	cr_assert_not_null(strstr(err, "t.yaml:6:17: auth.max_failures:"), "%s", err);
	cr_assert_not_null(strstr(err, "t.yaml:7:14: auth.lockout_s:"), "%s", err);
	cr_assert_not_null(strstr(err, "t.yaml:8:16: auth.queue_depth:"), "%s", err);
	free(err);
}

Test(auth_config, plaintext_auth_on_a_listener_without_auth_is_an_error)
{
	expect_errors(PORTS "listeners:\n  - port: 25\n    auth_plaintext: yes\n",
		      "t.yaml:7:21: listeners[0].auth_plaintext: this listener does not offer "
		      "AUTH: auth_plaintext has no effect\n");
}

Test(auth_config, a_bad_boolean_is_an_error)
{
	char *err = NULL;
	struct cfg *c = load(PORTS "auth:\n  password_file: /u\nlisteners:\n  - port: 587\n"
				   "    auth: maybe\n",
			     &err);
	cr_assert_null(c);
	cr_assert_not_null(strstr(err, "t.yaml:9:11: listeners[0].auth:"), "%s", err);
	free(err);
}

Test(auth_config, unknown_keys_in_the_section_are_errors)
{
	char *err = NULL;
	struct cfg *c = load(PORTS "auth:\n  passwd_file: /u\n", &err);
	cr_assert_null(c);
	cr_assert_not_null(strstr(err, "passwd_file"), "%s", err);
	free(err);
}
