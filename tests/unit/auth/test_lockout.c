/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * AUTH failures counted per client address in the shared client table
 * (dataplane/policy/clients.c): N failures within the lockout time lock the
 * address out for that long; old failures expire; other addresses and the
 * connection counts are untouched.
 */
#include <arpa/inet.h>

#include <criterion/criterion.h>

#include "dataplane/policy/clients.h"

static uint32_t ip(const char *s)
{
	struct in_addr a;

	cr_assert_eq(inet_pton(AF_INET, s, &a), 1);
	return a.s_addr;
}

static struct client_table *table(void)
{
	struct cfg_client_limits l = { .table_size = 1024, .connection_burst = 1,
				       .message_burst = 1 };
	struct client_table *t = client_table_new(&l, 42);
	cr_assert_not_null(t);
	return t;
}

Test(lockout, the_nth_failure_locks_the_address_out_for_the_lockout_time)
{
	struct client_table *t = table();
	uint32_t a = ip("203.0.113.5"), b = ip("203.0.113.6");

	cr_assert_not(client_auth_failed(t, a, 1000, 3, 60000));
	cr_assert_not(client_auth_failed(t, a, 2000, 3, 60000));
	cr_assert_not(client_auth_locked(t, a, 2500));
	cr_assert(client_auth_failed(t, a, 3000, 3, 60000), "third failure locks");
	cr_assert(client_auth_locked(t, a, 3001));
	cr_assert(client_auth_locked(t, a, 62999));
	cr_assert_not(client_auth_locked(t, a, 63000), "lifted after lockout_ms");
	cr_assert_not(client_auth_locked(t, b, 3001), "another address is not affected");
	/* counting starts over after a lockout */
	cr_assert_not(client_auth_failed(t, a, 64000, 3, 60000));
	client_table_free(t);
}

Test(lockout, failures_older_than_the_window_do_not_count)
{
	struct client_table *t = table();
	uint32_t a = ip("198.51.100.9");

	cr_assert_not(client_auth_failed(t, a, 0, 2, 10000));
	cr_assert_not(client_auth_failed(t, a, 20000, 2, 10000), "the first one expired");
	cr_assert(client_auth_failed(t, a, 25000, 2, 10000));
	client_table_free(t);
}

Test(lockout, a_limit_of_one_locks_at_once_and_connections_stay_counted)
{
	struct client_table *t = table();
	uint32_t a = ip("198.51.100.10");

	cr_assert_eq(client_connect(t, a, 0), CLIENT_OK);
	cr_assert(client_auth_failed(t, a, 10, 1, 1000));
	cr_assert_eq(client_connections(t, a), 1);
	client_disconnect(t, a);
	cr_assert_eq(client_connections(t, a), 0);
	cr_assert(client_auth_locked(t, a, 500));
	client_table_free(t);
}
