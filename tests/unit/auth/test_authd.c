/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The authentication thread (dataplane/auth/authd.c): requests from several
 * "workers" come back on their own ring with the right verdict, the
 * password wiped; the per-worker depth bounds what is out; a new table
 * takes effect; orphans come back to be freed.
 */
#include <crypt.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>

#include "dataplane/auth/authd.h"

static struct auth_db *db_with(const char *user, const char *pass)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE], file[512], err[256];
	struct crypt_data d = { 0 };
	cr_assert_not_null(crypt_gensalt_rn("$6$", 0, NULL, 0, salt, sizeof(salt)));
	cr_assert_not_null(crypt_rn(pass, salt, &d, sizeof(d)));
	snprintf(file, sizeof(file), "%s:%s\n", user, d.output);
	struct auth_db *db = auth_db_parse("t", file, strlen(file), err, sizeof(err));
	cr_assert_not_null(db, "%s", err);
	return db;
}

struct got {
	unsigned n;
	struct authd_req *r[64];
};

static void done(struct authd_req *r, void *arg)
{
	struct got *g = arg;
	g->r[g->n++] = r;
}

/* Polls WORKER until N answers came (5 s at most). */
static void wait_for(struct authd *a, unsigned worker, struct got *g, unsigned n)
{
	for (int i = 0; i < 5000 && g->n < n; i++) {
		authd_poll(a, worker, done, g);
		if (g->n < n)
			nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	}
	cr_assert_eq(g->n, n, "%u of %u answers", g->n, n);
}

static struct authd_req *req(unsigned worker, const char *user, const char *pass)
{
	struct authd_req *r = calloc(1, sizeof(*r));
	r->worker = (uint16_t)worker;
	snprintf(r->user, sizeof(r->user), "%s", user);
	snprintf(r->pass, sizeof(r->pass), "%s", pass);
	return r;
}

Test(authd, answers_come_back_to_their_worker)
{
	struct authd *a = authd_new(2, 8, db_with("alice", "pw"), NULL);
	cr_assert_not_null(a);
	struct authd_req *r0 = req(0, "alice", "pw"), *r1 = req(1, "alice", "nope"),
			 *r2 = req(1, "mallory", "pw");
	cr_assert_eq(authd_submit(a, r0), 0);
	cr_assert_eq(authd_submit(a, r1), 0);
	cr_assert_eq(authd_submit(a, r2), 0);
	struct got g0 = { 0 }, g1 = { 0 };
	wait_for(a, 0, &g0, 1);
	wait_for(a, 1, &g1, 2);
	cr_assert_eq(g0.r[0], r0);
	cr_assert_eq(r0->verdict, AUTH_V_OK);
	cr_assert_eq(r1->verdict, AUTH_V_BAD);
	cr_assert_eq(r2->verdict, AUTH_V_BAD);
	cr_assert_eq(r0->pass[0], 0, "the password is wiped once hashed");
	cr_assert_eq(authd_verified(a), 3);
	free(r0), free(r1), free(r2);
	authd_free(a);
}

Test(authd, a_worker_cannot_have_more_than_depth_out)
{
	struct authd *a = authd_new(1, 2, db_with("alice", "pw"), NULL);
	struct authd_req *r[3] = { req(0, "alice", "pw"), req(0, "alice", "pw"),
				   req(0, "alice", "pw") };
	cr_assert_eq(authd_submit(a, r[0]), 0);
	cr_assert_eq(authd_submit(a, r[1]), 0);
	cr_assert_eq(authd_submit(a, r[2]), -ENOBUFS);
	struct got g = { 0 };
	wait_for(a, 0, &g, 2);
	cr_assert_eq(authd_submit(a, r[2]), 0, "room again once answers were taken");
	wait_for(a, 0, &g, 3);
	for (int i = 0; i < 3; i++)
		free(r[i]);
	authd_free(a);
}

Test(authd, a_new_table_takes_effect)
{
	struct authd *a = authd_new(1, 4, db_with("alice", "pw"), NULL);
	struct got g = { 0 };
	struct authd_req *r = req(0, "bob", "pw2");
	cr_assert_eq(authd_submit(a, r), 0);
	wait_for(a, 0, &g, 1);
	cr_assert_eq(r->verdict, AUTH_V_BAD);
	authd_set_db(a, db_with("bob", "pw2"));
	snprintf(r->pass, sizeof(r->pass), "pw2");
	cr_assert_eq(authd_submit(a, r), 0);
	wait_for(a, 0, &g, 2);
	cr_assert_eq(r->verdict, AUTH_V_OK);
	free(r);
	authd_free(a);
}

Test(authd, no_table_is_a_temporary_failure)
{
	struct authd *a = authd_new(1, 4, NULL, NULL);
	struct got g = { 0 };
	struct authd_req *r = req(0, "alice", "pw");
	cr_assert_eq(authd_submit(a, r), 0);
	wait_for(a, 0, &g, 1);
	cr_assert_eq(r->verdict, AUTH_V_ERROR);
	free(r);
	authd_free(a);
}

Test(authd, bad_arguments_are_refused)
{
	cr_assert_null(authd_new(0, 4, NULL, NULL));
	cr_assert_eq(errno, EINVAL);
	struct authd *a = authd_new(1, 4, NULL, NULL);
	struct authd_req *r = req(3, "alice", "pw");
	cr_assert_eq(authd_submit(a, r), -ENOBUFS, "no such worker");
	free(r);
	authd_free(a);
}

Test(authd, stop_hands_back_what_the_thread_never_took)
{
	struct authd *a = authd_new(2, 4, db_with("alice", "pw"), NULL);
	struct authd_req *r[2] = { req(0, "alice", "pw"), req(1, "alice", "pw") };
	authd_stop(a);
	/* nobody hashes any more: these stay in the request ring... */
	cr_assert_eq(authd_submit(a, r[0]), 0);
	cr_assert_eq(authd_submit(a, r[1]), 0);
	struct got g0 = { 0 }, g1 = { 0 };
	cr_assert_eq(authd_poll(a, 0, done, &g0), 0);
	/* ...until a stop hands them back to their workers, unverified */
	authd_stop(a);
	cr_assert_eq(authd_poll(a, 0, done, &g0), 1);
	cr_assert_eq(authd_poll(a, 1, done, &g1), 1);
	cr_assert_eq(g0.r[0], r[0]);
	cr_assert_eq(g1.r[0], r[1]);
	cr_assert_eq(r[0]->verdict, AUTH_V_ERROR);
	cr_assert_eq(r[1]->pass[0], 0, "wiped");
	authd_free(a);
	free(r[0]), free(r[1]);
}

Test(authd, a_lowered_depth_applies_to_new_requests_and_is_capped_at_the_start_depth)
{
	struct authd *a = authd_new(1, 2, db_with("alice", "pw"), NULL);
	struct authd_req *r[3] = { req(0, "alice", "pw"), req(0, "alice", "pw"),
				   req(0, "alice", "pw") };
	struct got g = { 0 };

	cr_assert_eq(authd_set_depth(a, 1), 1);
	cr_assert_eq(authd_submit(a, r[0]), 0);
	cr_assert_eq(authd_submit(a, r[1]), -ENOBUFS, "a reload lowered the depth to 1");
	wait_for(a, 0, &g, 1);
	cr_assert_eq(authd_set_depth(a, 99), 2, "the rings hold 2 a worker: no more");
	cr_assert_eq(authd_set_depth(a, 0), 1);
	cr_assert_eq(authd_set_depth(a, 2), 2);
	cr_assert_eq(authd_submit(a, r[1]), 0);
	cr_assert_eq(authd_submit(a, r[2]), 0);
	wait_for(a, 0, &g, 3);
	for (int i = 0; i < 3; i++)
		free(r[i]);
	authd_free(a);
}
