/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The authentication thread (authd.h). Rings live in ordinary memory
 * (rte_ring_init), so the thread and its tests need no EAL. The thread
 * sleeps on a semaphore the workers post after each submit: an idle box
 * spends no CPU on it, and a sem_post without a waiter is no system call.
 */
#include "dataplane/auth/authd.h"

#include <arpa/inet.h>
#include <crypt.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_common.h>
#include <rte_ring.h>

#define BURST 16

struct authd {
	pthread_t thread;
	sem_t wake;
	bool stop;
	bool stopped; /* the thread is joined */
	unsigned n_workers, depth;
	unsigned limit;		    /* requests a worker may have out: at most depth */
	struct rte_ring *req;	    /* workers -> thread, multi-producer */
	struct rte_ring **reply;    /* thread -> worker k, single producer and consumer */
	uint32_t *out;		    /* requests out per worker; written by that worker only */
	struct auth_db *db;	    /* the thread's */
	struct auth_db *next_db;    /* handed over by authd_set_db() */
	uint64_t verified;
	FILE *log;
};

static struct rte_ring *ring_new(const char *name, unsigned count, unsigned flags)
{
	ssize_t size = rte_ring_get_memsize(count);
	struct rte_ring *r;

	if (size < 0)
		return NULL;
	r = aligned_alloc(RTE_CACHE_LINE_SIZE, RTE_ALIGN_CEIL((size_t)size, RTE_CACHE_LINE_SIZE));
	if (r == NULL)
		return NULL;
	if (rte_ring_init(r, name, count, flags) != 0) {
		free(r);
		return NULL;
	}
	return r;
}

static void take_db(struct authd *a)
{
	struct auth_db *db = __atomic_exchange_n(&a->next_db, NULL, __ATOMIC_ACQ_REL);

	if (db == NULL)
		return;
	auth_db_free(a->db);
	a->db = db;
}

/* User names are checked for ':' and controls only when listed: print them escaped. */
static void log_answer(struct authd *a, const struct authd_req *r)
{
	static const char *const what[] = { [AUTH_V_OK] = "ok", [AUTH_V_BAD] = "failed",
					    [AUTH_V_ERROR] = "error" };
	char user[4 * AUTH_USER_MAX + 1], ip[INET_ADDRSTRLEN];
	size_t n = 0;

	if (a->log == NULL)
		return;
	for (const unsigned char *p = (const unsigned char *)r->user; *p; p++) {
		if (*p > 0x20 && *p < 0x7f && *p != '\\')
			user[n++] = (char)*p;
		else
			n += (size_t)snprintf(user + n, sizeof(user) - n, "\\x%02x", *p);
	}
	user[n] = '\0';
	inet_ntop(AF_INET, &r->client, ip, sizeof(ip));
	fprintf(a->log, "mxgate-dp: auth: user=%s client=%s worker=%u %s\n", user, ip, r->worker,
		what[r->verdict]);
	fflush(a->log);
}

static void *run(void *arg)
{
	struct authd *a = arg;
	struct crypt_data *cd = calloc(1, sizeof(*cd));

	for (;;) {
		void *batch[BURST];
		unsigned n;

		while (sem_wait(&a->wake) != 0 && errno == EINTR)
			;
		if (__atomic_load_n(&a->stop, __ATOMIC_ACQUIRE))
			break;
		take_db(a);
		while ((n = rte_ring_sc_dequeue_burst(a->req, batch, BURST, NULL)) != 0) {
			for (unsigned i = 0; i < n; i++) {
				struct authd_req *r = batch[i];

				r->verdict = cd == NULL || a->db == NULL ?
						     AUTH_V_ERROR :
						     auth_db_verify(a->db, r->user, r->pass, cd);
				explicit_bzero(r->pass, sizeof(r->pass));
				log_answer(a, r);
				__atomic_fetch_add(&a->verified, 1, __ATOMIC_RELAXED);
				/* never full: a worker has at most depth requests out */
				rte_ring_sp_enqueue(a->reply[r->worker], r);
			}
		}
	}
	free(cd);
	return NULL;
}

struct authd *authd_new(unsigned n_workers, unsigned depth, struct auth_db *db, FILE *log)
{
	struct authd *a = calloc(1, sizeof(*a));
	char name[RTE_RING_NAMESIZE];
	int e = ENOMEM;

	if (a == NULL || n_workers == 0 || depth == 0) {
		free(a);
		errno = a == NULL ? ENOMEM : EINVAL;
		return NULL;
	}
	a->n_workers = n_workers;
	a->depth = depth;
	a->limit = depth;
	a->req = ring_new("mx_authd_req", n_workers * depth, RING_F_EXACT_SZ | RING_F_SC_DEQ);
	a->reply = calloc(n_workers, sizeof(*a->reply));
	a->out = calloc(n_workers, sizeof(*a->out));
	if (a->req == NULL || a->reply == NULL || a->out == NULL)
		goto fail;
	for (unsigned i = 0; i < n_workers; i++) {
		snprintf(name, sizeof(name), "mx_authd_%u", i);
		a->reply[i] = ring_new(name, depth, RING_F_EXACT_SZ | RING_F_SP_ENQ | RING_F_SC_DEQ);
		if (a->reply[i] == NULL)
			goto fail;
	}
	if (sem_init(&a->wake, 0, 0) != 0)
		goto fail;
	a->db = db;
	a->log = log;
	e = pthread_create(&a->thread, NULL, run, a);
	if (e != 0) {
		sem_destroy(&a->wake);
		goto fail;
	}
	pthread_setname_np(a->thread, "mx-authd");
	return a;
fail:
	if (a->reply != NULL)
		for (unsigned i = 0; i < n_workers; i++)
			free(a->reply[i]);
	free(a->reply);
	free(a->out);
	free(a->req);
	free(a);
	errno = e;
	return NULL;
}

void authd_stop(struct authd *a)
{
	void *r;

	if (a == NULL)
		return;
	if (!a->stopped) {
		__atomic_store_n(&a->stop, true, __ATOMIC_RELEASE);
		sem_post(&a->wake);
		pthread_join(a->thread, NULL);
		a->stopped = true;
	}
	while (rte_ring_sc_dequeue(a->req, &r) == 0) {
		struct authd_req *q = r;

		q->verdict = AUTH_V_ERROR;
		explicit_bzero(q->pass, sizeof(q->pass));
		rte_ring_sp_enqueue(a->reply[q->worker], q); /* room: depth per worker */
	}
}

void authd_free(struct authd *a)
{
	if (a == NULL)
		return;
	authd_stop(a);
	sem_destroy(&a->wake);
	for (unsigned i = 0; i < a->n_workers; i++)
		free(a->reply[i]);
	free(a->reply);
	free(a->out);
	free(a->req);
	auth_db_free(a->db);
	auth_db_free(a->next_db);
	free(a);
}

void authd_set_db(struct authd *a, struct auth_db *db)
{
	struct auth_db *old = __atomic_exchange_n(&a->next_db, db, __ATOMIC_ACQ_REL);

	auth_db_free(old); /* handed over and replaced before the thread took it */
	sem_post(&a->wake);
}

unsigned authd_set_depth(struct authd *a, unsigned depth)
{
	if (depth == 0)
		depth = 1;
	if (depth > a->depth)
		depth = a->depth; /* the rings were sized for the start's depth */
	__atomic_store_n(&a->limit, depth, __ATOMIC_RELAXED);
	return depth;
}

int authd_submit(struct authd *a, struct authd_req *r)
{
	if (r->worker >= a->n_workers ||
	    a->out[r->worker] >= __atomic_load_n(&a->limit, __ATOMIC_RELAXED))
		return -ENOBUFS;
	if (rte_ring_mp_enqueue(a->req, r) != 0)
		return -ENOBUFS;
	a->out[r->worker]++;
	sem_post(&a->wake);
	return 0;
}

unsigned authd_poll(struct authd *a, unsigned worker, authd_done_fn done, void *arg)
{
	void *batch[BURST];
	unsigned n, total = 0;

	if (worker >= a->n_workers || a->out[worker] == 0)
		return 0;
	while ((n = rte_ring_sc_dequeue_burst(a->reply[worker], batch, BURST, NULL)) != 0) {
		a->out[worker] -= n;
		for (unsigned i = 0; i < n; i++)
			done(batch[i], arg);
		total += n;
	}
	return total;
}

uint64_t authd_verified(const struct authd *a)
{
	return __atomic_load_n(&a->verified, __ATOMIC_RELAXED);
}
