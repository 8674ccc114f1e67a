/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * An in-memory store for the relay engine's tests: messages as the spool
 * would keep them (a MESSAGE payload each, encoded by the spool's own
 * record code), per-recipient states as spool_state() records them, and
 * reads and commits that complete one step later -- or only when the test
 * lets them. It also checks the engine's manners: no call for a message
 * after its last recipient went final, no state for a final recipient.
 */
#ifndef MX_TEST_RELAY_FAKE_STORE_H
#define MX_TEST_RELAY_FAKE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataplane/relay/relay_sched.h"

#define FS_MAX_MSGS  512
#define FS_MAX_RCPTS 8
#define FS_MAX_OPS   256

/* A message of the fake store (the engine sees only the pointer). */
struct spool_msg {
	bool used;
	char qid[SMTP_QID_LEN + 1];
	uint8_t *rec; /* the MESSAGE payload: envelope, then content */
	size_t len;
	unsigned nrcpt;
	enum spool_rcpt_state st[FS_MAX_RCPTS];
	char reply[FS_MAX_RCPTS][SPOOL_REPLY_MAX + 1];
	int64_t next_attempt;
	unsigned states; /* spool_state() calls that took */
	bool final;
	bool injected; /* a DSN the engine spooled */
	unsigned read_errors; /* reads that are to fail (-EIO) */
};

struct fs_read {
	struct spool_msg *m;
	void *buf;
	size_t cap;
	spool_read_cb cb;
	void *cookie;
};

struct fs_commit {
	struct spool_msg *m;
	spool_commit_cb cb;
	void *cookie;
	bool detached;
};

struct fake_store {
	struct spool_msg msgs[FS_MAX_MSGS];
	unsigned n;
	struct fs_read reads[FS_MAX_OPS];
	unsigned n_reads;
	struct fs_commit commits[FS_MAX_OPS];
	unsigned n_commits;
	/* knobs */
	unsigned max_reads;	 /* reads in flight before -EBUSY: 0 = FS_MAX_OPS */
	bool hold_reads;	 /* reads do not complete until cleared */
	bool hold_commits;
	int inject_error;	 /* inject() says this (-ENOSPC ...) while set */
	int commit_error;	 /* commits complete with this while set */
	unsigned state_enobufs;	 /* the next N state() calls say -ENOBUFS */
	/* what happened */
	unsigned reads_started, reads_peak, busy;
	unsigned misuse; /* calls for a final message or a final recipient */
	unsigned injected, detached;
};

extern struct fake_store fs;
extern const struct relay_store_ops fs_ops;

void fs_reset(void);
void fs_free(void);

/* A message to add with fs_add(). Unset fields take the defaults noted. */
struct fs_msg {
	const char *sender; /* NULL: "alice@sender.example"; "" for the null sender */
	const char *rcpt[FS_MAX_RCPTS];
	uint8_t notify[FS_MAX_RCPTS];
	const char *orcpt[FS_MAX_RCPTS]; /* "rfc822;xtext" as the server stores it */
	const char *content;		 /* NULL: a small message with our Received: */
	size_t content_len;		 /* 0: strlen(content) */
	enum smtp_ret ret;
	const char *envid; /* xtext */
	const char *authid; /* RFC 4954 §5 submitter mailbox; NULL: none */
	bool smtputf8;
	int64_t received; /* 0: the clock's wall time now */
};

/* Adds M (recipients up to the first NULL) as if just committed; returns the handle. */
struct spool_msg *fs_add(const struct fs_msg *m);

/* Completes the reads and commits due (those not held). Returns how many. */
unsigned fs_step(void);

/* Recipient I's state and reply (the reply recorded with it). */
enum spool_rcpt_state fs_state(const struct spool_msg *m, unsigned i);

/* The injected messages (DSNs), in order: the Nth one, or NULL. */
struct spool_msg *fs_injected(unsigned n);

/* Decodes M's envelope into ENV (RCPTS: FS_MAX_RCPTS) and its content. */
void fs_decode(const struct spool_msg *m, struct spool_env *env, struct smtp_rcpt *rcpts,
	       struct smtp_str *content);

/* True when M's content contains S. */
bool fs_content_has(const struct spool_msg *m, const char *s);

#endif
