/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The per-client table: connection counts, connection and message rates per
 * minute with bursts, slots reused only when idle, a full bucket letting
 * clients through untracked, and counts that stay exact when several
 * threads (the workers) connect and disconnect the same address at once.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <string.h>

#include <criterion/criterion.h>

#include "dataplane/policy/clients.h"

static uint32_t ip(const char *s)
{
	struct in_addr a;

	cr_assert_eq(inet_pton(AF_INET, s, &a), 1);
	return a.s_addr;
}

static struct cfg_client_limits limits(unsigned conns, unsigned rate, unsigned burst,
				       unsigned msg_rate, unsigned msg_burst)
{
	return (struct cfg_client_limits){
		.connections = conns,
		.connection_rate = rate,
		.connection_burst = burst,
		.message_rate = msg_rate,
		.message_burst = msg_burst,
		.exempt_relay_networks = true,
		.table_size = 1024,
	};
}

Test(clients, concurrent_connections_are_capped_per_address)
{
	struct cfg_client_limits l = limits(3, 0, 1, 0, 1);
	struct client_table *t = client_table_new(&l, 42);
	uint32_t a = ip("203.0.113.5"), b = ip("203.0.113.6");

	for (int i = 0; i < 3; i++)
		cr_assert_eq(client_connect(t, a, 1000), CLIENT_OK);
	cr_assert_eq(client_connect(t, a, 1000), CLIENT_TOO_MANY_CONNS);
	cr_assert_eq(client_connections(t, a), 3, "a refusal is not counted");
	cr_assert_eq(client_connect(t, b, 1000), CLIENT_OK, "another address has its own count");
	client_disconnect(t, a);
	cr_assert_eq(client_connect(t, a, 1001), CLIENT_OK, "a freed place can be taken again");
	cr_assert_eq(client_connections(t, a), 3);
	client_table_free(t);
}

Test(clients, zero_connections_means_no_limit)
{
	struct cfg_client_limits l = limits(0, 0, 1, 0, 1);
	struct client_table *t = client_table_new(&l, 1);

	for (int i = 0; i < 10000; i++)
		cr_assert_eq(client_connect(t, ip("203.0.113.9"), 5), CLIENT_OK);
	cr_assert_eq(client_connections(t, ip("203.0.113.9")), 10000);
	client_table_free(t);
}

Test(clients, connection_rate_allows_the_burst_then_the_rate_per_minute)
{
	/* 60 a minute = one a second, 5 at once */
	struct cfg_client_limits l = limits(0, 60, 5, 0, 1);
	struct client_table *t = client_table_new(&l, 7);
	uint32_t a = ip("198.51.100.20");
	uint64_t now = 10000;

	for (int i = 0; i < 5; i++)
		cr_assert_eq(client_connect(t, a, now), CLIENT_OK, "burst connection %d", i);
	cr_assert_eq(client_connect(t, a, now), CLIENT_CONN_RATE);
	cr_assert_eq(client_connect(t, a, now + 999), CLIENT_CONN_RATE, "one token takes 1 s");
	cr_assert_eq(client_connect(t, a, now + 1000), CLIENT_OK);
	cr_assert_eq(client_connect(t, a, now + 1000), CLIENT_CONN_RATE);
	/* a long pause refills to the burst, not beyond */
	now += 3600 * 1000;
	for (int i = 0; i < 5; i++)
		cr_assert_eq(client_connect(t, a, now), CLIENT_OK);
	cr_assert_eq(client_connect(t, a, now), CLIENT_CONN_RATE);
	cr_assert_eq(client_connections(t, a), 11, "rate refusals are not counted as connections");
	client_table_free(t);
}

Test(clients, message_rate_is_separate_from_connections)
{
	struct cfg_client_limits l = limits(0, 0, 1, 2, 2); /* 2 messages a minute */
	struct client_table *t = client_table_new(&l, 9);
	uint32_t a = ip("198.51.100.21");

	cr_assert_eq(client_connect(t, a, 0), CLIENT_OK);
	cr_assert_eq(client_message(t, a, 0), CLIENT_OK);
	cr_assert_eq(client_message(t, a, 0), CLIENT_OK);
	cr_assert_eq(client_message(t, a, 1000), CLIENT_MSG_RATE);
	cr_assert_eq(client_message(t, a, 30000), CLIENT_OK, "half a minute refills one");
	cr_assert_eq(client_message(t, a, 30000), CLIENT_MSG_RATE);
	cr_assert_eq(client_message(t, ip("198.51.100.22"), 30000), CLIENT_OK);
	client_table_free(t);
}

Test(clients, message_rate_zero_never_refuses)
{
	struct cfg_client_limits l = limits(1, 0, 1, 0, 1);
	struct client_table *t = client_table_new(&l, 9);

	for (int i = 0; i < 1000; i++)
		cr_assert_eq(client_message(t, ip("198.51.100.23"), 0), CLIENT_OK);
	client_table_free(t);
}

/* N addresses 203.0.113.1...; with table_size 4 (one bucket) they all share it. */
static void addrs(uint32_t *out, unsigned n)
{
	for (uint32_t i = 0; i < n; i++)
		out[i] = htonl(0xcb007101u + i);
}

Test(clients, a_full_bucket_lets_clients_through_untracked)
{
	struct cfg_client_limits l = limits(1, 0, 1, 0, 1);
	l.table_size = 4; /* one bucket of CLIENT_WAYS slots: every address shares it */
	struct client_table *t = client_table_new(&l, 3);
	uint32_t a[CLIENT_WAYS + 1];

	addrs(a, CLIENT_WAYS + 1);
	for (unsigned i = 0; i < CLIENT_WAYS; i++)
		cr_assert_eq(client_connect(t, a[i], 0), CLIENT_OK);
	/* every slot holds a live connection: the newcomer is not locked out */
	cr_assert_eq(client_connect(t, a[CLIENT_WAYS], 0), CLIENT_UNTRACKED);
	cr_assert_eq(client_connect(t, a[CLIENT_WAYS], 0), CLIENT_UNTRACKED);
	/* the tracked ones keep their limits */
	cr_assert_eq(client_connect(t, a[0], 0), CLIENT_TOO_MANY_CONNS);
	/* once one ends, its slot is free for the newcomer, whose limit then applies */
	client_disconnect(t, a[1]);
	cr_assert_eq(client_connect(t, a[CLIENT_WAYS], 1), CLIENT_OK);
	cr_assert_eq(client_connect(t, a[CLIENT_WAYS], 1), CLIENT_TOO_MANY_CONNS);
	cr_assert_eq(client_connections(t, a[1]), 0, "the evicted address starts afresh");
	client_table_free(t);
}

Test(clients, eviction_takes_the_least_recently_seen_idle_slot)
{
	struct cfg_client_limits l = limits(0, 60, 1, 0, 1); /* one connection a minute */
	l.table_size = 4;
	struct client_table *t = client_table_new(&l, 3);
	uint32_t a[CLIENT_WAYS + 1];

	addrs(a, CLIENT_WAYS + 1);
	for (unsigned i = 0; i < CLIENT_WAYS; i++) {
		cr_assert_eq(client_connect(t, a[i], 100 + i), CLIENT_OK);
		client_disconnect(t, a[i]);
	}
	/* a[0] is the oldest: the newcomer takes its slot, the others keep their state */
	cr_assert_eq(client_connect(t, a[CLIENT_WAYS], 200), CLIENT_OK);
	for (unsigned i = 1; i < CLIENT_WAYS; i++)
		cr_assert_eq(client_connect(t, a[i], 200), CLIENT_CONN_RATE, "slot %u kept", i);
	client_table_free(t);
}

struct churn {
	struct client_table *t;
	uint32_t addr;
	unsigned rounds;
	unsigned kept; /* connections left open */
};

static void *churn_main(void *arg)
{
	struct churn *c = arg;

	for (unsigned i = 0; i < c->rounds; i++) {
		if (client_connect(c->t, c->addr, i) == CLIENT_OK) {
			if (i % 2 == 0)
				client_disconnect(c->t, c->addr);
			else
				c->kept++;
		}
	}
	return NULL;
}

Test(clients, workers_counting_one_address_at_once_agree_with_the_table)
{
	struct cfg_client_limits l = limits(0, 0, 1, 0, 1);
	struct client_table *t = client_table_new(&l, 11);
	struct churn c[4];
	pthread_t th[4];
	unsigned kept = 0;

	for (int i = 0; i < 4; i++) {
		c[i] = (struct churn){ .t = t, .addr = ip("203.0.113.77"), .rounds = 200000 };
		cr_assert_eq(pthread_create(&th[i], NULL, churn_main, &c[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		kept += c[i].kept;
	}
	cr_assert_eq(kept, 4 * 100000);
	cr_assert_eq(client_connections(t, ip("203.0.113.77")), kept);
	client_table_free(t);
}

Test(clients, a_limit_of_n_holds_when_threads_race_for_the_last_place)
{
	struct cfg_client_limits l = limits(1000, 0, 1, 0, 1);
	struct client_table *t = client_table_new(&l, 12);
	struct churn c[4];
	pthread_t th[4];
	unsigned total = 0;

	for (int i = 0; i < 4; i++) {
		/* odd rounds only keep connections: each thread tries 1000 */
		c[i] = (struct churn){ .t = t, .addr = ip("203.0.113.78"), .rounds = 2000 };
		cr_assert_eq(pthread_create(&th[i], NULL, churn_main, &c[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		total += c[i].kept;
	}
	cr_assert_eq(total, 1000, "exactly the limit was kept open, not one more");
	cr_assert_eq(client_connections(t, ip("203.0.113.78")), 1000);
	client_table_free(t);
}

Test(clients, a_reloaded_config_limits_the_same_table_with_its_own_numbers)
{
	struct cfg_client_limits boot = limits(5, 0, 1, 0, 1), next = limits(2, 0, 1, 60, 1);
	struct client_table *t = client_table_new(&boot, 7);
	uint32_t a = ip("203.0.113.5");

	for (int i = 0; i < 3; i++)
		cr_assert_eq(client_connect(t, a, 1000), CLIENT_OK);
	/* the counts made under the old limits stay; the new limit judges the next one */
	cr_assert_eq(client_connect_lim(t, &next, a, 1000), CLIENT_TOO_MANY_CONNS);
	cr_assert_eq(client_connect(t, a, 1000), CLIENT_OK, "sessions of the old config go on");
	/* a message rate the table started without: one a minute, burst 1 */
	cr_assert_eq(client_message(t, a, 1000), CLIENT_OK, "off in the start-up limits");
	cr_assert_eq(client_message_lim(t, &next, a, 1000), CLIENT_OK);
	cr_assert_eq(client_message_lim(t, &next, a, 1001), CLIENT_MSG_RATE);
	client_table_free(t);
}

Test(clients, a_burst_lowered_by_a_reload_is_not_exceeded)
{
	struct cfg_client_limits boot = limits(0, 60, 10, 0, 1), next = limits(0, 60, 2, 0, 1);
	struct client_table *t = client_table_new(&boot, 9);
	uint32_t a = ip("203.0.113.7");

	cr_assert_eq(client_connect(t, a, 1000), CLIENT_OK); /* a full bucket of 10, 9 left */
	cr_assert_eq(client_connect_lim(t, &next, a, 1000), CLIENT_OK);
	cr_assert_eq(client_connect_lim(t, &next, a, 1000), CLIENT_OK);
	cr_assert_eq(client_connect_lim(t, &next, a, 1000), CLIENT_CONN_RATE,
		     "what was left of the old burst is cut to the new one");
	client_table_free(t);
}
