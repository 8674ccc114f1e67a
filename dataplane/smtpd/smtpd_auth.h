/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * AUTH on the wire (issue #7 items 4 and 5): the engine's auth hook for
 * listeners that offer it. The exchange is decoded on the worker
 * (smtp/auth.h); the password goes to the authentication thread
 * (auth/authd.h) and the session waits (SMTP_HOOK_PENDING) until the
 * worker's poll brings the answer back. Failures are counted per client
 * address in the shared client table; max_failures of them within
 * lockout_s get 421 4.7.0, and the address is refused at the greeting of
 * AUTH listeners until the lockout ends.
 *
 * One authentication thread and one password table serve the whole
 * process: they are made before the workers start and replaced on reload.
 */
#ifndef MX_SMTPD_AUTH_H
#define MX_SMTPD_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "control/config/config.h"
#include "dataplane/smtp/auth.h"
#include "dataplane/smtp/smtp.h"

struct dp_worker;
struct client_table;

/*
 * Loads CFG's password file and starts the authentication thread for
 * N_WORKERS when a listener offers AUTH; nothing otherwise. Main thread,
 * before the workers run. 0, or -errno with the reason printed to stderr.
 */
int smtpd_auth_init(const struct cfg *cfg, unsigned n_workers);

/* Stops the thread, frees what was still out, and the table; after the workers stopped. */
void smtpd_auth_fini(unsigned n_workers);

/*
 * Reads CFG's password file again and makes it the one AUTH checks against
 * (mxgatectl user add/del/passwd, then a reload). Any thread but a worker.
 * 0; -ENOENT when no thread runs (no listener offered AUTH at start: a
 * restart is needed); -errno with ERR (ERRLEN bytes) saying why the file
 * was not taken -- the old table stays then.
 */
int smtpd_auth_reload(const struct cfg *cfg, char *err, size_t errlen);

/*
 * Worker W's buffers for AUTH lines longer than a command line (RFC 4954
 * §4: up to 12288 octets), lent to a session only while it frames one
 * (smtp_server_config.auth_lines), so no session reserves that much
 * itself: as many as auth.queue_depth, the AUTHs a worker may have out at
 * once, on SOCKET. *OUT stays NULL when no listener of CFG offers AUTH.
 * 0 or -ENOMEM. Main lcore, before W's listeners are set up.
 */
int smtpd_auth_lines_new(const struct cfg *cfg, unsigned worker, int socket,
			 struct smtp_line_pool **out);
void smtpd_auth_lines_free(struct smtp_line_pool *p);

/* One session's AUTH state; NULL until its first AUTH command. */
struct smtpd_auth;

/* What the glue knows of the session when the hook runs. */
struct smtpd_auth_env {
	struct dp_worker *w;
	struct client_table *clients; /* NULL: failures are not counted per address */
	uint32_t raddr;		      /* the client, IPv4 network order */
	const struct cfg_auth *cfg;
	uint64_t now_ms;
};

/* The engine's auth hook (smtp.h) for a session whose state is *SA. */
int smtpd_auth_hook(struct smtpd_auth **sa, const struct smtpd_auth_env *e,
		    struct smtp_session *s, const struct smtp_cmd *cmd,
		    const struct smtp_str *line, struct smtp_str *challenge);

/* True when the client of E is locked out: refuse it with SMTP_R_AUTH_LOCKED. */
bool smtpd_auth_locked(const struct smtpd_auth_env *e);

/* The session ended: an answer still out is dropped when it comes. *SA becomes NULL. */
void smtpd_auth_release(struct smtpd_auth **sa);

/* The user the session authenticated as; NULL before (or without) AUTH. */
const char *smtpd_auth_user(const struct smtpd_auth *sa);

/*
 * Takes worker W's answers: each decided session gets its reply
 * (smtp_server_auth_done()) and then RESUME(S), which flushes it and feeds
 * the input it kept. Returns how many answers came.
 */
unsigned smtpd_auth_poll(struct dp_worker *w, uint64_t now_ms,
			 void (*resume)(struct smtp_session *s));

#endif
