/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The authentication thread: password hashing takes milliseconds by design
 * (yescrypt, bcrypt), which a worker lcore polling thousands of sessions
 * cannot spend. Workers put requests on one multi-producer rte_ring; one
 * ordinary pthread (not an lcore) verifies them against the current
 * password table and puts each answer on its worker's own ring, which the
 * worker polls. Nothing here blocks a worker: a full ring is a "try later".
 *
 * Requests are the caller's memory until they come back. A session that
 * ends while its request is out marks it orphan; the worker frees it when
 * it returns (only the worker ever reads that flag).
 */
#ifndef MX_AUTH_AUTHD_H
#define MX_AUTH_AUTHD_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "dataplane/auth/passwd.h"

struct authd;

struct authd_req {
	uint16_t worker;		/* whose ring the answer goes to */
	bool orphan;			/* worker-only: the session is gone, free on return */
	enum auth_verdict verdict;	/* the thread's answer */
	void *cookie;			/* the worker's */
	uint32_t client;		/* IPv4, network order: for the log line */
	char user[AUTH_USER_MAX + 1];
	char pass[AUTH_USER_MAX + 1];	/* wiped by the thread once hashed */
};

/*
 * Starts the thread for N_WORKERS workers, each with up to DEPTH requests
 * out at once, checking passwords against DB (taken over; may be NULL: every
 * request fails until authd_set_db()). Each answer is logged to LOG (NULL:
 * not logged) as "auth: user=NAME client=ADDR ok|failed|error" -- from the
 * thread, so no worker ever waits on the log. NULL with errno on failure.
 */
struct authd *authd_new(unsigned n_workers, unsigned depth, struct auth_db *db, FILE *log);

/*
 * Stops the thread (it finishes the request at hand). Requests it never
 * took go to their workers' rings with AUTH_V_ERROR, so a last
 * authd_poll() hands every request back to its owner. May be called again
 * (it moves what was submitted since).
 */
void authd_stop(struct authd *a);

/* authd_stop(), then frees the rings and the table; requests still in rings are lost. */
void authd_free(struct authd *a);

/*
 * Replaces the password table (taken over): requests from now on use DB;
 * the old one is freed by the thread when it switches. Any thread.
 */
void authd_set_db(struct authd *a, struct auth_db *db);

/*
 * A reload's auth.queue_depth: from now on each worker may have DEPTH
 * requests out (those already out stay). The rings were sized by
 * authd_new()'s depth, so DEPTH is capped there (and raised to 1); returns
 * the depth in force. Any thread.
 */
unsigned authd_set_depth(struct authd *a, unsigned depth);

/*
 * Worker R->worker hands R over: 0, or -ENOBUFS when that worker already
 * has its depth (authd_set_depth()) out or the ring is full (answer 454 4.7.0 then).
 */
int authd_submit(struct authd *a, struct authd_req *r);

typedef void (*authd_done_fn)(struct authd_req *r, void *arg);

/* Worker WORKER takes its answers: DONE for each (orphans included). Returns how many. */
unsigned authd_poll(struct authd *a, unsigned worker, authd_done_fn done, void *arg);

/* Requests the thread has answered since the start. */
uint64_t authd_verified(const struct authd *a);

#endif
