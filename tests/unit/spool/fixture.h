/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Spool test support: a temporary directory per test, envelopes, a poll
 * loop that waits for io_uring completions, and a writer of crafted
 * segment files for recovery tests.
 */
#ifndef MX_TEST_SPOOL_FIXTURE_H
#define MX_TEST_SPOOL_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataplane/spool/spool.h"

/* Creates a fresh directory under /tmp; aborts the test process on failure. */
char *fx_tmpdir(void);
/* Removes DIR and everything under it (two levels: DIR/<shard>/files). */
void fx_rmtree(const char *dir);

/* A small shard config for tests: 128 KiB segments, 64 KiB staging, 32 KiB messages. */
void fx_config(struct spool_config *c, const char *dir);

/* An envelope with queue id "0000...N" and NRCPT recipients rcptI@example.com (I from 0). */
struct fx_env {
	struct spool_env env;
	struct smtp_rcpt rcpt[8];
	char addr[8][32];
};
void fx_env(struct fx_env *e, unsigned n, unsigned nrcpt);
/* The queue id fx_env(.., N, ..) uses. */
void fx_qid(char out[SMTP_QID_LEN + 1], unsigned n);

/* Content for message N: LEN octets, reproducible. */
void fx_content(uint8_t *out, size_t len, unsigned n);

/* Polls SH at NOW until *COUNT reaches WANT and nothing is in flight, or 20 s pass. */
void fx_poll_until(struct spool_shard *sh, uint64_t now, const unsigned *count, unsigned want);
/* Polls SH at NOW until no operation is in flight (20 s at most). */
void fx_drain(struct spool_shard *sh, uint64_t now);

/* Spools message N (NRCPT recipients, LEN octets of fx_content) and waits for its commit. */
struct spool_msg *fx_spool(struct spool_shard *sh, unsigned n, unsigned nrcpt, size_t len,
			   uint64_t now);

/* Requeue callback collecting what recovery handed over. */
struct fx_requeued {
	unsigned n;
	struct spool_msg *m[64];
	char qid[64][SMTP_QID_LEN + 1];
};
void fx_requeue(void *arg, struct spool_shard *sh, struct spool_msg *m);
/* Index of QID among R's messages, or -1. */
int fx_requeued_find(const struct fx_requeued *r, const char *qid);

/* ---- crafted segment files ---- */

struct segw {
	uint8_t *buf;
	size_t len, cap;
	uint32_t salt;
	uint64_t seq;
};
/* Starts segment ID of SHARD with SALT. */
void segw_init(struct segw *w, unsigned shard, uint64_t id, uint32_t salt);
/* Appends message N (fx_env(N, NRCPT), LEN octets of content); returns its offset. */
size_t segw_msg(struct segw *w, unsigned n, unsigned nrcpt, size_t len);
/* Appends a STATE record for message N; returns its offset. */
size_t segw_state(struct segw *w, unsigned n, unsigned rcpt, enum spool_rcpt_state st,
		  int64_t next_attempt);
/* Appends raw octets (already a record, or junk). */
void segw_raw(struct segw *w, const void *p, size_t n);
/* Writes the first LEN octets of W as DIR/<shard>/seg-<id>.dat, then ZEROS zero octets. */
void segw_write(const struct segw *w, const char *dir, unsigned shard, uint64_t id, size_t len,
		size_t zeros);
void segw_free(struct segw *w);

/* Path of segment ID of shard SHARD under DIR. */
void fx_seg_path(char *out, size_t cap, const char *dir, unsigned shard, uint64_t id);
bool fx_exists(const char *path);
/* Size of PATH, or -1. */
long fx_size(const char *path);

#endif
