/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * SMTP on the wire: the glue between one worker's TCP stack and the pure
 * SMTP engine (dataplane/smtp/smtp.h). Per worker, it listens on the ports
 * of the config's "listeners:", takes session memory from a per-worker
 * mempool, feeds received mbufs to the engine, sends its replies (one
 * tcp_send per flush), runs its timeouts on the worker's wheel, and asks
 * dataplane/policy at RCPT. Everything runs on the owning worker.
 */
#ifndef MX_SMTPD_H
#define MX_SMTPD_H

#include "dataplane/core/dp.h"

struct smtpd; /* one worker's listeners and sessions */

/*
 * Process-wide set-up before any worker starts: the per-client table of
 * policy.client_limits (dp->clients). Returns 0 or -ENOMEM.
 */
int smtpd_init(struct dp *dp);

/* Frees what smtpd_init() made, once every worker has stopped. */
void smtpd_fini(struct dp *dp);

/*
 * Starts the listeners of W's config on W's TCP stack (after it exists) and
 * sets w->smtpd; no listeners in the config: nothing to do. Returns 0, or
 * -ENOMEM (session pool) or tcp_listen()'s error; what was made is kept for
 * smtpd_free().
 */
int smtpd_start(struct dp_worker *w);

/*
 * SMTP sessions open on W now (a gauge; 0 without listeners). Any lcore may
 * read it: it counts the session pool's elements in use.
 */
unsigned smtpd_sessions_open(const struct dp_worker *w);

/* W's loop stopped (dp->svc_drain): closes the relay's connections before the stack goes. */
void smtpd_drain(struct dp_worker *w);

/* Per loop iteration (dp->svc_poll): the spool's completions and submissions. */
unsigned smtpd_poll(struct dp_worker *w, uint64_t now);

/*
 * dp->svc_cmd: a page of W's sessions or delivery queue for telemetry
 * (core/svc.h); finishes CMD before it returns, except a queue show that
 * reads its message's envelope back first: that finishes from the spool's
 * completion (or from smtpd_drain(), cancelled).
 */
void smtpd_svc_cmd(struct dp_worker *w, struct dp_cmd *cmd);

/*
 * dp->svc_snap_new: every worker's listener settings for a config snapshot
 * of CFG (core/snap.h), which must keep the listener set of the start-up
 * config (control/config/restart.h checks). For the start-up config itself,
 * the workers' own listeners serve. Returns the view, or NULL with a reason
 * in ERR and errno E2BIG when a listener's sessions would outgrow the memory
 * reserved for them at start, ENOMEM when out of memory. Any thread, after
 * smtpd_start() on every worker and before smtpd_stop().
 */
void *smtpd_snap_new(struct dp *dp, const struct cfg *cfg, char *err, size_t errlen);

/* dp->svc_snap_free: frees a view of smtpd_snap_new(); no session may use it any more. */
void smtpd_snap_free(struct dp *dp, void *view);

/* Frees w->smtpd once W's TCP stack is gone (its sessions closed with it); NULL is fine. */
void smtpd_stop(struct dp_worker *w);

#endif
