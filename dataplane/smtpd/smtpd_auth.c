/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * AUTH glue (smtpd_auth.h). Per-session state is allocated at the first
 * AUTH command, not with every session: AUTH is the slow path, and most
 * sessions of a relay never send it.
 */
#include "dataplane/smtpd/smtpd_auth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_malloc.h>

#include "dataplane/auth/authd.h"
#include "dataplane/core/dp.h"
#include "dataplane/policy/clients.h"
#include "dataplane/smtp/auth.h"

struct smtpd_auth {
	struct smtp_auth x;	 /* the exchange being decoded */
	struct authd_req *req;	 /* out at the thread, or NULL */
	struct smtp_session *s;
	struct client_table *clients;
	uint32_t raddr;
	unsigned max_failures;
	uint64_t lockout_ms;
	bool authed;
	char user[AUTH_USER_MAX + 1]; /* asked for while pending; who it is once authed */
};

/* The process's authentication thread: made before the workers run, gone after they stop. */
static struct authd *authd;

static bool any_auth(const struct cfg *cfg)
{
	for (unsigned i = 0; i < cfg->n_listeners; i++)
		if (cfg->listeners[i].auth)
			return true;
	return false;
}

int smtpd_auth_init(const struct cfg *cfg, unsigned n_workers)
{
	char err[512];
	struct auth_db *db;

	if (!any_auth(cfg))
		return 0;
	db = auth_db_load(cfg->auth.password_file, err, sizeof(err));
	if (db == NULL) {
		fprintf(stderr, "mxgate-dp: auth.password_file: %s\n", err);
		return -EINVAL;
	}
	printf("mxgate-dp: auth: %u users from %s\n", auth_db_users(db), cfg->auth.password_file);
	fflush(stdout);
	authd = authd_new(n_workers, cfg->auth.queue_depth, db, stdout);
	if (authd == NULL) {
		int e = errno;

		auth_db_free(db);
		fprintf(stderr, "mxgate-dp: auth: cannot start the authentication thread: %s\n",
			strerror(e));
		return -e;
	}
	return 0;
}

int smtpd_auth_lines_new(const struct cfg *cfg, unsigned worker, int socket,
			 struct smtp_line_pool **out)
{
	unsigned n = cfg->auth.queue_depth;
	void *mem;

	*out = NULL;
	if (!any_auth(cfg))
		return 0;
	mem = rte_malloc_socket("mx_auth_lines", smtp_line_pool_size(n), 64, socket);
	if (mem == NULL) {
		fprintf(stderr, "mxgate-dp: worker %u: auth: no memory for %u line buffers\n",
			worker, n);
		return -ENOMEM;
	}
	*out = smtp_line_pool_init(mem, n);
	printf("mxgate-dp: worker %u: auth: %u buffers of %u octets for long AUTH lines\n", worker,
	       n, (unsigned)SMTP_AUTH_LINE_MAX);
	fflush(stdout);
	return 0;
}

void smtpd_auth_lines_free(struct smtp_line_pool *p)
{
	rte_free(p);
}

/* At the end, answers nobody polled for: their sessions are gone. */
static void leftover(struct authd_req *r, void *arg)
{
	(void)arg;
	explicit_bzero(r, sizeof(*r));
	free(r);
}

void smtpd_auth_fini(unsigned n_workers)
{
	if (authd == NULL)
		return;
	authd_stop(authd);
	for (unsigned w = 0; w < n_workers; w++)
		authd_poll(authd, w, leftover, NULL);
	authd_free(authd);
	authd = NULL;
}

int smtpd_auth_reload(const struct cfg *cfg, char *err, size_t errlen)
{
	struct auth_db *db;

	if (authd == NULL) {
		if (!any_auth(cfg))
			return 0;
		snprintf(err, errlen,
			 "AUTH was not offered at start: its thread starts with mxgate-dp "
			 "(restart it)");
		return -ENOENT;
	}
	/* lowering applies now; raising past the start's depth is refused by mxgate-control */
	authd_set_depth(authd, cfg->auth.queue_depth);
	if (cfg->auth.password_file == NULL)
		return 0; /* no listener offers AUTH any more: the old table is harmless */
	db = auth_db_load(cfg->auth.password_file, err, errlen);
	if (db == NULL)
		return -EINVAL;
	printf("mxgate-dp: auth: reloaded %u users from %s\n", auth_db_users(db),
	       cfg->auth.password_file);
	fflush(stdout);
	authd_set_db(authd, db);
	return 0;
}

static void count(const struct smtpd_auth_env *e, enum dp_counter c)
{
	dp_count(&e->w->stats, c, 1);
}

/* A wrong password (or a malformed message): counts toward the lockout. */
static int failed(struct smtpd_auth *sa, uint64_t now_ms, struct dp_worker *w)
{
	sa->user[0] = '\0';
	if (sa->clients == NULL)
		return SMTP_R_AUTH_FAILED;
	switch (client_auth_fail(sa->clients, sa->raddr, now_ms, sa->max_failures, sa->lockout_ms)) {
	case CLIENT_AUTH_LOCKED:
		dp_count(&w->stats, DP_C_SMTPD_AUTH_LOCKOUTS, 1);
		return SMTP_R_AUTH_LOCKED; /* 421: the engine ends the session */
	case CLIENT_AUTH_UNTRACKED: /* its bucket is full of lockouts and live clients */
		dp_count(&w->stats, DP_C_SMTPD_CLIENT_UNTRACKED, 1);
		break;
	case CLIENT_AUTH_COUNTED:
		break;
	}
	return SMTP_R_AUTH_FAILED;
}

int smtpd_auth_hook(struct smtpd_auth **sap, const struct smtpd_auth_env *e,
		    struct smtp_session *s, const struct smtp_cmd *cmd,
		    const struct smtp_str *line, struct smtp_str *challenge)
{
	struct smtpd_auth *sa = *sap;
	int r;

	if (cmd == NULL && line == NULL) { /* "*", or the session ends mid-exchange */
		if (sa != NULL) {
			smtp_auth_clear(&sa->x);
			if (sa->req != NULL)
				sa->req->orphan = true; /* freed when it comes back */
			sa->req = NULL;
		}
		return SMTP_R_NONE;
	}
	if (sa == NULL) {
		sa = calloc(1, sizeof(*sa));
		if (sa == NULL)
			return SMTP_R_AUTH_TEMP;
		*sap = sa;
	}
	sa->s = s;
	sa->clients = e->clients;
	sa->raddr = e->raddr;
	sa->max_failures = e->cfg->max_failures;
	sa->lockout_ms = (uint64_t)e->cfg->lockout_s * 1000;

	r = cmd != NULL ? smtp_auth_start(&sa->x, &cmd->mech, &cmd->initial, challenge) :
			  smtp_auth_step(&sa->x, line, challenge);
	if (r == SMTP_R_AUTH_FAILED)
		return failed(sa, e->now_ms, e->w);
	if (r != SMTP_R_NONE)
		return r; /* a challenge, 504, 501 */

	/* the credentials are complete: the thread hashes them */
	struct authd_req *req = authd != NULL ? malloc(sizeof(*req)) : NULL;
	if (req == NULL) {
		smtp_auth_clear(&sa->x);
		return SMTP_R_AUTH_TEMP;
	}
	memset(req, 0, sizeof(*req));
	req->worker = (uint16_t)e->w->id;
	req->cookie = sa;
	req->client = e->raddr;
	memcpy(req->user, sa->x.authcid, sa->x.authcid_len + 1u);
	memcpy(req->pass, sa->x.passwd, sa->x.passwd_len + 1u);
	memcpy(sa->user, sa->x.authcid, sa->x.authcid_len + 1u);
	smtp_auth_clear(&sa->x);
	if (authd_submit(authd, req) != 0) {
		explicit_bzero(req, sizeof(*req));
		free(req);
		sa->user[0] = '\0';
		count(e, DP_C_SMTPD_AUTH_BUSY);
		return SMTP_R_AUTH_TEMP; /* 454 4.7.0: the hash thread is saturated */
	}
	sa->req = req;
	return SMTP_HOOK_PENDING;
}

bool smtpd_auth_locked(const struct smtpd_auth_env *e)
{
	if (e->clients == NULL || !client_auth_locked(e->clients, e->raddr, e->now_ms))
		return false;
	count(e, DP_C_SMTPD_AUTH_LOCKED_OUT);
	return true;
}

void smtpd_auth_release(struct smtpd_auth **sap)
{
	struct smtpd_auth *sa = *sap;

	if (sa == NULL)
		return;
	if (sa->req != NULL)
		sa->req->orphan = true;
	smtp_auth_clear(&sa->x);
	free(sa);
	*sap = NULL;
}

const char *smtpd_auth_user(const struct smtpd_auth *sa)
{
	return sa != NULL && sa->authed ? sa->user : NULL;
}

struct poll_ctx {
	struct dp_worker *w;
	uint64_t now_ms;
	void (*resume)(struct smtp_session *s);
};

static void answered(struct authd_req *r, void *arg)
{
	struct poll_ctx *p = arg;
	struct smtpd_auth *sa = r->cookie;
	int reply;

	if (r->orphan) {
		explicit_bzero(r, sizeof(*r));
		free(r);
		return;
	}
	sa->req = NULL;
	switch (r->verdict) {
	case AUTH_V_OK:
		sa->authed = true;
		reply = SMTP_R_AUTH_OK;
		break;
	case AUTH_V_BAD:
		reply = failed(sa, p->now_ms, p->w);
		break;
	default:
		sa->user[0] = '\0';
		reply = SMTP_R_AUTH_TEMP;
		break;
	}
	explicit_bzero(r, sizeof(*r));
	free(r);
	smtp_server_auth_done(sa->s, reply, NULL, p->now_ms);
	p->resume(sa->s); /* may end the session and free SA */
}

unsigned smtpd_auth_poll(struct dp_worker *w, uint64_t now_ms,
			 void (*resume)(struct smtp_session *s))
{
	struct poll_ctx p = { w, now_ms, resume };

	return authd != NULL ? authd_poll(authd, w->id, answered, &p) : 0;
}
