/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * One next hop's pool bookkeeping (dataplane/relay/hop_pool.h), as the
 * store-mode relay and cut-through both use it: the most recently used idle
 * connection goes out first, the cap counts every open connection, a
 * connection is worn after messages_per_connection transactions, and
 * closing is safe to repeat.
 */
#include <stddef.h>

#include <criterion/criterion.h>

#include "dataplane/relay/hop_pool.h"

static struct hop_pool p;
static struct hop_pool_conn c[3];

static void setup(void)
{
	hop_pool_init(&p);
	for (unsigned i = 0; i < 3; i++) {
		c[i] = (struct hop_pool_conn){ 0 };
		hop_pool_opened(&p, &c[i]);
	}
}

TestSuite(hop_pool, .init = setup);

Test(hop_pool, the_most_recently_used_idle_connection_goes_out_first)
{
	hop_pool_put(&p, &c[0]);
	hop_pool_put(&p, &c[1]);
	hop_pool_put(&p, &c[2]);
	cr_assert_eq(p.nidle, 3);
	cr_assert_eq(hop_pool_take(&p), &c[2], "LIFO: the oldest idle ones are left to time out");
	cr_assert_eq(hop_pool_take(&p), &c[1]);
	hop_pool_put(&p, &c[2]);
	cr_assert_eq(hop_pool_take(&p), &c[2]);
	cr_assert_eq(hop_pool_take(&p), &c[0]);
	cr_assert_null(hop_pool_take(&p), "none idle");
	cr_assert_eq(p.nidle, 0);
	cr_assert_eq(p.nopen, 3, "taking does not close");
}

Test(hop_pool, the_cap_counts_every_open_connection_idle_or_busy)
{
	cr_assert_not(hop_pool_may_open(&p, 3), "three open: a fourth is over a cap of 3");
	hop_pool_put(&p, &c[0]);
	cr_assert_not(hop_pool_may_open(&p, 3), "an idle one counts too");
	hop_pool_closed(&p, &c[0]);
	cr_assert(hop_pool_may_open(&p, 3));
	cr_assert_eq(p.nidle, 0, "closing an idle one takes it off the list");
	cr_assert_null(hop_pool_take(&p));
}

Test(hop_pool, a_connection_is_worn_after_messages_per_connection_transactions)
{
	hop_pool_began(&c[0]);
	cr_assert_not(hop_pool_worn(&c[0], 2));
	hop_pool_began(&c[0]);
	cr_assert(hop_pool_worn(&c[0], 2), "QUIT rather than keep it");
	cr_assert_not(hop_pool_worn(&c[1], 2));
}

Test(hop_pool, putting_twice_or_closing_twice_counts_once)
{
	hop_pool_put(&p, &c[1]);
	hop_pool_put(&p, &c[1]);
	cr_assert_eq(p.nidle, 1);
	hop_pool_closed(&p, &c[1]);
	hop_pool_closed(&p, &c[1]);
	cr_assert_eq(p.nopen, 2);
	cr_assert_eq(p.nidle, 0);
	hop_pool_unidle(&p, &c[2]); /* not idle: nothing happens */
	cr_assert_eq(p.nopen, 2);
}

Test(hop_pool, a_connection_owing_replies_is_never_idle_so_never_taken)
{
	/* a refused MAIL with two RCPTs pipelined after it: their replies are due */
	hop_pool_sent(&c[0], 2);
	cr_assert_not(hop_pool_put(&p, &c[0]), "kept idle, its late replies would be the next MAIL's");
	cr_assert_eq(p.nidle, 0);
	cr_assert_null(hop_pool_take(&p), "nobody can take it while it owes replies");
	cr_assert(hop_pool_replied(&c[0]));
	cr_assert_not(hop_pool_put(&p, &c[0]), "one reply still due");
	cr_assert(hop_pool_replied(&c[0]));
	cr_assert(hop_pool_put(&p, &c[0]), "every reply read: it may wait idle");
	cr_assert_eq(hop_pool_take(&p), &c[0]);
	cr_assert_eq(p.nopen, 3, "refusing to idle it does not close it: its owner does");
}

Test(hop_pool, a_reply_nobody_asked_for_is_told_apart)
{
	cr_assert_not(hop_pool_replied(&c[1]), "no command outstanding: the hop's own (a 421)");
	hop_pool_sent(&c[1], 1);
	cr_assert(hop_pool_replied(&c[1]));
	cr_assert_not(hop_pool_replied(&c[1]), "the count never goes below zero");
	cr_assert(hop_pool_put(&p, &c[1]));
}

Test(hop_pool, a_reopened_connection_owes_nothing)
{
	hop_pool_sent(&c[2], 3);
	hop_pool_closed(&p, &c[2]);
	c[2] = (struct hop_pool_conn){ 0 };
	hop_pool_opened(&p, &c[2]);
	cr_assert(hop_pool_put(&p, &c[2]));
}
