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

/* One bucket: every address collides (table_size = CLIENT_WAYS). */
static struct client_table *one_bucket(void)
{
	struct cfg_client_limits l = { .table_size = CLIENT_WAYS, .connection_burst = 1,
				       .message_burst = 1 };
	struct client_table *t = client_table_new(&l, 7);
	cr_assert_not_null(t);
	return t;
}

static uint32_t nth(unsigned i)
{
	/* 203.0.113.0/24 then 198.51.100.0/24: enough distinct attackers */
	return htonl((i < 256 ? 0xcb007100u : 0xc6336400u) | (i & 0xff));
}

Test(lockout, addresses_cycling_through_a_full_bucket_never_evict_a_lockout)
{
	struct client_table *t = one_bucket();
	const uint64_t lockout = 600000;

	for (unsigned i = 0; i < CLIENT_WAYS; i++)
		cr_assert(client_auth_failed(t, nth(i), 1000 + i, 1, lockout), "slot %u locked", i);
	/* 500 colliding addresses connect, fail AUTH, send mail, at later and later times */
	for (unsigned i = CLIENT_WAYS; i < 500; i++) {
		uint64_t now = 2000 + i;

		cr_assert_eq(client_connect(t, nth(i), now), CLIENT_UNTRACKED);
		cr_assert_eq(client_auth_fail(t, nth(i), now, 1, lockout), CLIENT_AUTH_UNTRACKED);
		cr_assert_not(client_auth_locked(t, nth(i), now), "a newcomer is not locked out");
	}
	for (unsigned i = 0; i < CLIENT_WAYS; i++)
		cr_assert(client_auth_locked(t, nth(i), 3000), "address %u is still locked out", i);
	cr_assert_eq(client_table_full(t), 2 * (500 - CLIENT_WAYS));
	/* once a lockout ends its slot may go to a newcomer, whose failures count again */
	cr_assert_eq(client_auth_fail(t, nth(600), 1000 + lockout, 2, lockout),
		     CLIENT_AUTH_COUNTED);
	cr_assert(client_auth_failed(t, nth(600), 1001 + lockout, 2, lockout));
	client_table_free(t);
}

Test(lockout, a_newcomer_takes_the_slot_with_the_fewest_failures_never_a_locked_one)
{
	struct client_table *t = one_bucket();
	const uint64_t lockout = 600000;
	uint32_t locked1 = nth(1), locked2 = nth(2), tried = nth(3), idle = nth(4);

	cr_assert(client_auth_failed(t, locked1, 10, 1, lockout));
	cr_assert(client_auth_failed(t, locked2, 20, 1, lockout));
	/* TRIED has 2 failures of 3 and is the older; IDLE has none */
	cr_assert_not(client_auth_failed(t, tried, 30, 3, lockout));
	cr_assert_not(client_auth_failed(t, tried, 40, 3, lockout));
	cr_assert_eq(client_connect(t, idle, 50), CLIENT_OK);
	client_disconnect(t, idle);
	/* the newcomer takes IDLE's slot: TRIED keeps its count, so one more failure locks it */
	cr_assert_eq(client_connect(t, nth(5), 60), CLIENT_OK);
	cr_assert_eq(client_connections(t, idle), 0);
	cr_assert(client_auth_failed(t, tried, 70, 3, lockout), "the third failure locks");
	cr_assert(client_auth_locked(t, locked1, 80));
	cr_assert(client_auth_locked(t, locked2, 80));
	cr_assert_eq(client_table_full(t), 0);
	client_table_free(t);
}
