/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A spool shard at work (dataplane/spool/shard.c) through a real io_uring:
 * group commit, callback ordering, limits, I/O errors and the way back,
 * read-back, segment deletion and restart. The shard's clock is the test's
 * (microseconds passed to spool_poll), so windows are exact; completions
 * still take real time, and fx_poll_until() waits for them.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "fixture.h"

static char *dir;
static struct spool_config cfg;
static struct spool_shard *sh;
static struct fx_requeued rq;

static void setup(void)
{
	dir = fx_tmpdir();
	fx_config(&cfg, dir);
	cfg.requeue = fx_requeue;
	cfg.requeue_arg = &rq;
	memset(&rq, 0, sizeof(rq));
	sh = NULL;
}

static void teardown(void)
{
	spool_shard_close(sh);
	fx_rmtree(dir);
	free(dir);
}

TestSuite(commit, .init = setup, .fini = teardown);
TestSuite(limits, .init = setup, .fini = teardown);
TestSuite(errors, .init = setup, .fini = teardown);
TestSuite(readback, .init = setup, .fini = teardown);
TestSuite(lifecycle, .init = setup, .fini = teardown);

static void open_shard(void)
{
	struct spool_recovery rep;
	memset(&rq, 0, sizeof(rq));
	sh = spool_shard_open(&cfg, &rep);
	cr_assert_not_null(sh, "open: %s", rep.error);
	fx_drain(sh, 0); /* the spare segment is ready */
}

static void reopen(void)
{
	spool_shard_close(sh);
	sh = NULL;
	open_shard();
}

/* Commit callbacks, recorded in order. */
struct done {
	unsigned n;
	int status[64];
	unsigned who[64];
	uint64_t commits_seen[64]; /* the shard's sync count when the callback ran */
	struct spool_msg *m[64];
};
static struct done dn;

struct cookie {
	unsigned id;
};
static struct cookie ck[64];

static void on_commit(void *cookie, int status, struct spool_msg *m)
{
	struct cookie *c = cookie;
	cr_assert_lt(dn.n, 64u);
	dn.status[dn.n] = status;
	dn.who[dn.n] = c->id;
	dn.commits_seen[dn.n] = spool_stats(sh)->commits;
	dn.m[dn.n] = m;
	dn.n++;
}

/* Begins message N with LEN octets of content; commits it at NOW. */
static void commit_msg(unsigned n, size_t len, uint64_t now)
{
	struct fx_env e;
	fx_env(&e, n, 1);
	struct spool_tx *tx;
	int r = spool_begin(sh, &e.env, 0, &tx);
	cr_assert_eq(r, 0, "begin %u: %d", n, r);
	uint8_t *c = malloc(len + 1);
	fx_content(c, len, n);
	cr_assert_eq(spool_append(sh, tx, c, len), 0);
	free(c);
	ck[n % 64].id = n;
	spool_commit(sh, tx, now, on_commit, &ck[n % 64]);
}

/* The descriptor number the shard uses for segment ID (found through /proc/self/fd). */
static int seg_fd(uint64_t id)
{
	char want[512], link[300], got[512];
	fx_seg_path(want, sizeof(want), dir, 0, id);
	char *real = realpath(want, NULL);
	cr_assert_not_null(real);
	DIR *d = opendir("/proc/self/fd");
	cr_assert_not_null(d);
	struct dirent *de;
	int fd = -1;
	while ((de = readdir(d)) != NULL) {
		snprintf(link, sizeof(link), "/proc/self/fd/%s", de->d_name);
		ssize_t n = readlink(link, got, sizeof(got) - 1);
		if (n > 0) {
			got[n] = '\0';
			if (strcmp(got, real) == 0 && atoi(de->d_name) != dirfd(d))
				fd = atoi(de->d_name);
		}
	}
	closedir(d);
	free(real);
	cr_assert_geq(fd, 0, "no descriptor for segment %llu", (unsigned long long)id);
	return fd;
}

/* Replaces descriptor FD by one on PATH opened with FLAGS (the shard sees the swap). */
static void swap_fd(int fd, const char *path, int flags)
{
	int nfd = open(path, flags);
	cr_assert_geq(nfd, 0);
	cr_assert_eq(dup2(nfd, fd), fd);
	close(nfd);
}

/* ---- group commit ---- */

Test(commit, messages_committed_within_one_window_share_one_fdatasync)
{
	open_shard();
	const uint64_t t0 = 1000;
	for (unsigned i = 0; i < 10; i++)
		commit_msg(i, 700, t0 + i * 10);
	/* the window (200 µs) has not passed: nothing is written, nobody is answered */
	fx_drain(sh, t0 + 199);
	cr_assert_eq(dn.n, 0);
	cr_assert_eq(spool_stats(sh)->commits, 0);
	cr_assert_eq(spool_stats(sh)->messages, 0);

	fx_poll_until(sh, t0 + 200, &dn.n, 10);
	cr_assert_eq(dn.n, 10);
	cr_assert_eq(spool_stats(sh)->commits, 1, "one fdatasync for the window");
	for (unsigned i = 0; i < 10; i++) {
		cr_assert_eq(dn.status[i], 0);
		cr_assert_eq(dn.who[i], i, "callbacks come in commit order");
		cr_assert_eq(dn.commits_seen[i], 1, "callback %u before its sync completed", i);
		cr_assert_not_null(dn.m[i]);
	}
	const struct spool_stats *st = spool_stats(sh);
	cr_assert_eq(st->messages, 10);
	cr_assert_eq(st->messages_live, 10);
	cr_assert_eq(st->batch_hist[4], 1, "one batch of 8-15 messages");
	uint64_t lat = 0;
	for (unsigned b = 0; b < SPOOL_LAT_BUCKETS; b++)
		lat += st->latency_hist[b];
	cr_assert_eq(lat, 10);
	/* waits of 200, 190, ... 110 µs: eight in [128, 256), two in [64, 128) */
	cr_assert_eq(st->latency_hist[spool_latency_bucket(200)], 8);
	cr_assert_eq(st->latency_hist[spool_latency_bucket(110)], 2);
}

Test(commit, a_callback_reports_the_sync_result_so_it_never_runs_before_the_sync)
{
	open_shard();
	commit_msg(1, 100, 0);
	fx_poll_until(sh, 200, &dn.n, 1);
	cr_assert_eq(dn.status[0], 0);
	cr_assert_eq(dn.commits_seen[0], 1);

	/* writes to /dev/null succeed, its fdatasync fails (EINVAL): the callback must carry
	 * the sync's result, which it can only know once the sync completed */
	swap_fd(seg_fd(1), "/dev/null", O_WRONLY);
	commit_msg(2, 100, 1000);
	fx_poll_until(sh, 1200, &dn.n, 2);
	cr_assert_eq(dn.status[1], -EINVAL, "status %d", dn.status[1]);
	cr_assert_null(dn.m[1]);
	cr_assert_eq(spool_stats(sh)->commits, 1, "the failed sync is not a commit");
	cr_assert_eq(spool_stats(sh)->write_errors, 1);
}

Test(commit, the_byte_threshold_submits_before_the_window_ends)
{
	cfg.commit_bytes = 8192;
	open_shard();
	commit_msg(1, 3000, 0);
	fx_drain(sh, 0);
	cr_assert_eq(dn.n, 0, "3 KiB waits for the window");
	commit_msg(2, 3000, 0);
	commit_msg(3, 3000, 0);
	fx_poll_until(sh, 0, &dn.n, 3); /* the clock never moves */
	cr_assert_eq(dn.n, 3);
	cr_assert_eq(spool_stats(sh)->commits, 1);
}

Test(commit, commits_during_a_sync_go_out_together_with_the_next_one)
{
	open_shard();
	commit_msg(1, 100, 0);
	spool_poll(sh, 200); /* submitted: the sync is in flight */
	commit_msg(2, 100, 300);
	commit_msg(3, 100, 310);
	fx_poll_until(sh, 10000, &dn.n, 3);
	cr_assert_eq(spool_stats(sh)->commits, 2);
	cr_assert_eq(dn.who[0], 1);
	cr_assert_eq(dn.commits_seen[0], 1);
	cr_assert_eq(dn.commits_seen[1], 2);
	cr_assert_eq(dn.commits_seen[2], 2);
}

Test(commit, close_writes_what_was_committed_and_answers_it)
{
	open_shard();
	commit_msg(1, 100, 0);
	spool_shard_close(sh);
	sh = NULL;
	cr_assert_eq(dn.n, 1);
	cr_assert_eq(dn.status[0], 0);
	open_shard();
	cr_assert_eq(rq.n, 1);
}

Test(commit, a_detached_commit_is_written_and_handed_to_the_relay_without_a_callback)
{
	open_shard();
	struct fx_env e;
	fx_env(&e, 9, 1);
	struct spool_tx *tx;
	cr_assert_eq(spool_begin(sh, &e.env, 0, &tx), 0);
	cr_assert_eq(spool_append(sh, tx, "hello\r\n", 7), 0);
	spool_commit(sh, tx, 0, on_commit, &ck[9]);
	spool_detach(sh, tx); /* the client hung up while waiting for the 250 */
	fx_drain(sh, 1000);
	cr_assert_eq(dn.n, 0, "no callback for a gone session");
	cr_assert_eq(rq.n, 1, "the relay got the message");
	cr_assert_str_eq(rq.qid[0], e.env.queue_id);
	cr_assert_eq(spool_stats(sh)->messages_live, 1);
}

/* ---- limits ---- */

Test(limits, begin_refuses_at_the_size_limit)
{
	cfg.size_limit = 32 << 10;
	open_shard();
	unsigned ok = 0;
	int r = 0;
	for (unsigned i = 0; i < 20 && r == 0; i++) {
		struct fx_env e;
		fx_env(&e, i, 1);
		struct spool_tx *tx;
		r = spool_begin(sh, &e.env, 4000, &tx);
		if (r == 0) {
			uint8_t c[4000];
			fx_content(c, sizeof(c), i);
			cr_assert_eq(spool_append(sh, tx, c, sizeof(c)), 0);
			spool_commit(sh, tx, 0, on_commit, &ck[i]);
			fx_poll_until(sh, 1000, &dn.n, ++ok);
		}
	}
	cr_assert_eq(r, -ENOSPC);
	cr_assert_geq(ok, 5);
	cr_assert_leq(ok, 8);
	cr_assert_eq(spool_stats(sh)->refused, 1);
	cr_assert_leq(spool_stats(sh)->spool_bytes, cfg.size_limit);
}

Test(limits, sizes_over_max_message_are_refused_with_efbig)
{
	open_shard();
	struct fx_env e;
	fx_env(&e, 1, 1);
	struct spool_tx *tx;
	cr_assert_eq(spool_begin(sh, &e.env, cfg.max_message + 1, &tx), -EFBIG);
	cr_assert_eq(spool_begin(sh, &e.env, 0, &tx), 0);
	static uint8_t big[40 << 10];
	cr_assert_eq(spool_append(sh, tx, big, cfg.max_message), 0);
	cr_assert_eq(spool_append(sh, tx, big, 1), -EFBIG);
	spool_abort(sh, tx);
	cr_assert_eq(spool_stats(sh)->aborted, 1);
}

Test(limits, slots_and_staging_memory_run_out_as_enobufs)
{
	cfg.max_tx = 2;
	open_shard();
	struct fx_env e;
	fx_env(&e, 1, 1);
	struct spool_tx *a, *b, *c;
	cr_assert_eq(spool_begin(sh, &e.env, 0, &a), 0);
	cr_assert_eq(spool_begin(sh, &e.env, 0, &b), 0);
	cr_assert_eq(spool_begin(sh, &e.env, 0, &c), -ENOBUFS, "transaction slots");
	/* 64 KiB of staging is 16 blocks: each 28 KiB message (and its 184-octet header and
	 * envelope) takes 8, with 3912 octets left in its last block */
	static uint8_t chunk[28 << 10];
	cr_assert_eq(spool_append(sh, a, chunk, sizeof(chunk)), 0);
	cr_assert_eq(spool_append(sh, b, chunk, sizeof(chunk)), 0);
	cr_assert_eq(spool_append(sh, a, chunk, 3000), 0, "fits its last block");
	cr_assert_eq(spool_append(sh, b, chunk, 4000), -ENOBUFS, "a 17th block");
	cr_assert_eq(spool_append(sh, b, chunk, 3912), 0, "still begun after the refusal");
	spool_abort(sh, a);
	cr_assert_eq(spool_append(sh, b, chunk, 88), 0, "freed by the abort");
	spool_abort(sh, b);
}

Test(limits, message_slots_run_out_as_enobufs_and_come_back_when_messages_are_final)
{
	cfg.max_messages = 2;
	open_shard();
	struct spool_msg *a = fx_spool(sh, 1, 1, 10, 0);
	fx_spool(sh, 2, 1, 10, 1000);
	struct fx_env e;
	fx_env(&e, 3, 1);
	struct spool_tx *tx;
	cr_assert_eq(spool_begin(sh, &e.env, 0, &tx), -ENOBUFS);
	struct smtp_str ok = { (const uint8_t *)"250 ok", 6 };
	cr_assert_eq(spool_state(sh, a, 0, SPOOL_RCPT_DELIVERED, 1, 0, ok), 0);
	cr_assert_eq(spool_begin(sh, &e.env, 0, &tx), -ENOBUFS, "final once durable, not before");
	fx_drain(sh, 5000);
	cr_assert_eq(spool_begin(sh, &e.env, 0, &tx), 0);
	spool_abort(sh, tx);
}

Test(limits, delivery_state_waits_with_enobufs_when_staging_is_full)
{
	open_shard();
	struct spool_msg *m = fx_spool(sh, 1, 1, 10, 0);
	struct fx_env e;
	fx_env(&e, 2, 1);
	struct spool_tx *a, *b;
	/* two messages fill the 16 staging blocks but for 28 octets each */
	static uint8_t chunk[(28 << 10) + 3912 - 28];
	cr_assert_eq(spool_begin(sh, &e.env, 0, &a), 0);
	cr_assert_eq(spool_begin(sh, &e.env, 0, &b), 0);
	cr_assert_eq(spool_append(sh, a, chunk, sizeof(chunk)), 0);
	cr_assert_eq(spool_append(sh, b, chunk, sizeof(chunk)), 0);
	struct smtp_str ok = { (const uint8_t *)"250 ok", 6 };
	cr_assert_eq(spool_state(sh, m, 0, SPOOL_RCPT_DELIVERED, 1, 0, ok), -ENOBUFS);
	cr_assert(!spool_msg_rcpt_final(m, 0), "nothing changed");
	spool_abort(sh, a);
	cr_assert_eq(spool_state(sh, m, 0, SPOOL_RCPT_DELIVERED, 1, 0, ok), 0);
	spool_abort(sh, b);
}

Test(limits, envelopes_the_record_cannot_hold_are_einval)
{
	open_shard();
	struct fx_env e;
	struct spool_tx *tx;
	fx_env(&e, 1, 1);
	e.env.nrcpt = 0;
	cr_assert_eq(spool_begin(sh, &e.env, 0, &tx), -EINVAL);
	fx_env(&e, 1, 8);
	cr_assert_eq(spool_begin(sh, &e.env, 0, &tx), 0);
	spool_abort(sh, tx);
	uint8_t long_sender[SMTP_PATH_MAX + 1];
	memset(long_sender, 'a', sizeof(long_sender));
	e.env.sender = (struct smtp_str){ long_sender, sizeof(long_sender) };
	cr_assert_eq(spool_begin(sh, &e.env, 0, &tx), -EINVAL);
}

Test(limits, delivery_state_refuses_what_cannot_be)
{
	open_shard();
	struct spool_msg *m = fx_spool(sh, 1, 2, 10, 0);
	struct smtp_str none = { 0 };
	cr_assert_eq(spool_state(sh, m, 2, SPOOL_RCPT_DELIVERED, 1, 0, none), -EINVAL, "index");
	cr_assert_eq(spool_state(sh, m, 0, SPOOL_RCPT_DEFERRED, 1, 0, none), -EINVAL,
		     "deferred without a next attempt");
	cr_assert_eq(spool_state(sh, m, 0, SPOOL_RCPT_DELIVERED, 1, 0, none), 0);
	cr_assert_eq(spool_state(sh, m, 0, SPOOL_RCPT_FAILED, 1, 0, none), -EINVAL,
		     "already final");
	cr_assert_eq(spool_state(sh, m, 1, SPOOL_RCPT_DEFERRED, 1, 99, none), 0);
	cr_assert_eq(spool_msg_next_attempt(m), 99);
}

/* ---- I/O errors ---- */

Test(errors, a_failed_write_fails_its_commits_then_a_later_write_restores_service)
{
	open_shard();
	fx_spool(sh, 1, 1, 100, 0);

	char path[512];
	fx_seg_path(path, sizeof(path), dir, 0, 1);
	swap_fd(seg_fd(1), path, O_RDONLY); /* writes now fail with EBADF */
	commit_msg(2, 100, 1000);
	commit_msg(3, 100, 1001);
	fx_poll_until(sh, 1200, &dn.n, 2);
	cr_assert_eq(dn.status[0], -EBADF);
	cr_assert_eq(dn.status[1], -EBADF);
	cr_assert_eq(spool_refusing(sh), -EBADF);
	cr_assert_eq(spool_stats(sh)->write_errors, 1);
	cr_assert_eq(spool_stats(sh)->messages_failed, 2);

	struct fx_env e;
	fx_env(&e, 4, 1);
	struct spool_tx *tx;
	cr_assert_eq(spool_begin(sh, &e.env, 0, &tx), -EIO, "refusing: 452 4.3.1");

	/* after the probe interval a probe write goes to a fresh segment and succeeds */
	fx_drain(sh, 1200 + cfg.probe_interval_us);
	fx_drain(sh, 1200 + cfg.probe_interval_us);
	cr_assert(!spool_refusing(sh));
	fx_spool(sh, 5, 1, 100, 5000);

	reopen();
	cr_assert_eq(rq.n, 2, "exactly the acknowledged messages: %u", rq.n);
	char q[SMTP_QID_LEN + 1];
	fx_qid(q, 1);
	cr_assert_geq(fx_requeued_find(&rq, q), 0);
	fx_qid(q, 5);
	cr_assert_geq(fx_requeued_find(&rq, q), 0);
}

Test(errors, a_full_filesystem_fails_commits_with_enospc_and_service_returns_when_space_does)
{
	if (geteuid() != 0)
		cr_skip_test("needs root: a tiny tmpfs in a private mount namespace");
	if (unshare(CLONE_NEWNS) < 0)
		cr_skip_test("unshare(CLONE_NEWNS): %s", strerror(errno));
	cr_assert_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
	cr_assert_eq(mount("tmpfs", dir, "tmpfs", 0, "size=400k"), 0, "%s", strerror(errno));

	/* two segments (256 KiB) and a 128 KiB filler leave no room for a third */
	open_shard();
	char filler[512];
	snprintf(filler, sizeof(filler), "%s/filler", dir);
	int fd = open(filler, O_WRONLY | O_CREAT, 0600);
	static uint8_t junk[128 << 10];
	cr_assert_eq(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	close(fd);

	unsigned acked[64], nacked = 0;
	uint64_t now = 0;
	int failure = 0;
	for (unsigned i = 0; i < 40 && failure == 0; i++) {
		commit_msg(i, 10 << 10, now);
		fx_poll_until(sh, now + 300, &dn.n, dn.n + 1);
		now += 1000;
		if (dn.status[dn.n - 1] == 0)
			acked[nacked++] = i;
		else
			failure = dn.status[dn.n - 1];
	}
	cr_assert_eq(failure, -ENOSPC, "got %d", failure);
	cr_assert_geq(nacked, 20, "two segments' worth");
	cr_assert_eq(spool_refusing(sh), -ENOSPC);
	cr_assert_geq(spool_stats(sh)->segment_errors, 1);
	struct fx_env e;
	fx_env(&e, 99, 1);
	struct spool_tx *tx;
	cr_assert_eq(spool_begin(sh, &e.env, 0, &tx), -EIO);

	cr_assert_eq(unlink(filler), 0);
	for (int k = 0; k < 4; k++) {
		now += 2 * cfg.probe_interval_us;
		fx_drain(sh, now);
	}
	cr_assert(!spool_refusing(sh), "a later write succeeded");
	fx_spool(sh, 100, 1, 10 << 10, now);
	acked[nacked++] = 100;

	reopen();
	cr_assert_eq(rq.n, nacked, "recovered %u, acknowledged %u", rq.n, nacked);
	for (unsigned i = 0; i < nacked; i++) {
		char q[SMTP_QID_LEN + 1];
		fx_qid(q, acked[i]);
		cr_assert_geq(fx_requeued_find(&rq, q), 0, "message %u lost", acked[i]);
	}
	spool_shard_close(sh);
	sh = NULL;
	cr_assert_eq(umount2(dir, MNT_DETACH), 0);
}

Test(errors, while_refusing_writes_are_retried_once_per_probe_interval)
{
	cfg.probe_interval_us = 50000;
	open_shard();
	struct spool_msg *m = fx_spool(sh, 1, 1, 100, 0);
	swap_fd(seg_fd(1), "/dev/null", O_WRONLY);
	commit_msg(2, 100, 1000);
	fx_poll_until(sh, 1200, &dn.n, 1);
	cr_assert_eq(dn.status[0], -EINVAL);
	cr_assert(spool_refusing(sh));
	/* a delivery record waits: no write until the probe interval has passed */
	struct smtp_str ok = { (const uint8_t *)"250 ok", 6 };
	cr_assert_eq(spool_state(sh, m, 0, SPOOL_RCPT_DELIVERED, 1767229200, 0, ok), 0);
	for (uint64_t t = 1300; t < 1200 + 50000; t += 5000)
		fx_drain(sh, t);
	cr_assert_eq(spool_stats(sh)->write_errors, 1, "no retry inside the interval");
	cr_assert_eq(spool_stats(sh)->commits, 1);
	fx_drain(sh, 1200 + 50000);
	cr_assert_eq(spool_stats(sh)->commits, 2, "the state record went out as the probe");
	cr_assert(!spool_refusing(sh));
	cr_assert_eq(spool_stats(sh)->messages_live, 0);
	reopen();
	cr_assert_eq(rq.n, 0, "message 1 delivered, message 2 never acknowledged");
}

/* ---- read-back ---- */

struct rb {
	unsigned n;
	int status;
	uint8_t *payload;
	size_t len;
};

static void on_read(void *cookie, int status, const uint8_t *p, size_t len)
{
	struct rb *r = cookie;
	r->n++;
	r->status = status;
	r->payload = (uint8_t *)p;
	r->len = len;
}

/* Reads M back and checks it is message N with CONTENT[0..LEN). */
static void read_and_check(struct spool_msg *m, unsigned n, const uint8_t *content, size_t len)
{
	size_t cap = spool_msg_record_size(m);
	uint8_t *buf = malloc(cap);
	struct rb r = { 0 };
	cr_assert_eq(spool_read(sh, m, buf, cap - 1, on_read, &r), -EINVAL, "short buffer");
	cr_assert_eq(spool_read(sh, m, buf, cap, on_read, &r), 0);
	fx_poll_until(sh, 0, &r.n, 1);
	cr_assert_eq(r.status, 0);
	struct spool_env env;
	struct smtp_rcpt rc[8];
	struct smtp_str c;
	cr_assert_eq(spool_rec_decode_msg(r.payload, r.len, &env, rc, 8, &c), SPOOL_RE_OK);
	struct fx_env want;
	fx_env(&want, n, 1);
	cr_assert_str_eq(env.queue_id, want.env.queue_id);
	cr_assert_eq(env.nrcpt, 1);
	cr_assert_eq(rc[0].addr.len, want.rcpt[0].addr.len);
	cr_assert(memcmp(rc[0].addr.p, want.rcpt[0].addr.p, rc[0].addr.len) == 0);
	cr_assert_eq(env.sender.len, want.env.sender.len);
	cr_assert_eq(c.len, len);
	cr_assert(memcmp(c.p, content, len) == 0, "content differs");
	free(buf);
}

Test(readback, a_spooled_message_reads_back_byte_for_byte_also_after_a_restart)
{
	open_shard();
	enum {
		LEN = 9003
	};
	static uint8_t content[LEN];
	fx_content(content, LEN, 7);
	struct fx_env e;
	fx_env(&e, 7, 1);
	struct spool_tx *tx;
	cr_assert_eq(spool_begin(sh, &e.env, 0, &tx), 0);
	/* chunks as TCP would hand them over, across staging blocks */
	size_t cuts[] = { 0, 1, 1000, 4095, 4096, 8191, LEN };
	for (size_t i = 0; i + 1 < sizeof(cuts) / sizeof(cuts[0]); i++)
		cr_assert_eq(spool_append(sh, tx, content + cuts[i], cuts[i + 1] - cuts[i]), 0);
	ck[0].id = 7;
	spool_commit(sh, tx, 0, on_commit, &ck[0]);
	fx_poll_until(sh, 500, &dn.n, 1);
	cr_assert_eq(dn.status[0], 0);
	read_and_check(dn.m[0], 7, content, LEN);
	cr_assert_eq(spool_stats(sh)->reads, 1);

	reopen();
	cr_assert_eq(rq.n, 1);
	read_and_check(rq.m[0], 7, content, LEN);
}

Test(readback, reads_are_bounded)
{
	open_shard();
	struct spool_msg *m = fx_spool(sh, 1, 1, 100, 0);
	size_t cap = spool_msg_record_size(m);
	uint8_t *buf = malloc(cap * 5);
	struct rb r = { 0 };
	for (unsigned i = 0; i < cfg.max_reads; i++)
		cr_assert_eq(spool_read(sh, m, buf + i * cap, cap, on_read, &r), 0);
	cr_assert_eq(spool_read(sh, m, buf + 4 * cap, cap, on_read, &r), -EBUSY);
	fx_poll_until(sh, 0, &r.n, cfg.max_reads);
	cr_assert_eq(r.status, 0);
	free(buf);
}

Test(readback, a_record_damaged_on_disk_reads_back_as_ebadmsg)
{
	open_shard();
	struct spool_msg *m = fx_spool(sh, 1, 1, 100, 0);
	char path[512];
	fx_seg_path(path, sizeof(path), dir, 0, 1);
	int fd = open(path, O_RDWR);
	uint8_t x = 0x55;
	cr_assert_eq(pwrite(fd, &x, 1, SPOOL_SEG_REC_SIZE + 100), 1);
	close(fd);
	size_t cap = spool_msg_record_size(m);
	uint8_t *buf = malloc(cap);
	struct rb r = { 0 };
	cr_assert_eq(spool_read(sh, m, buf, cap, on_read, &r), 0);
	fx_poll_until(sh, 0, &r.n, 1);
	cr_assert_eq(r.status, -EBADMSG);
	cr_assert_eq(spool_stats(sh)->read_errors, 1);
	free(buf);
}

Test(readback, a_record_cut_short_on_disk_reads_back_as_eio)
{
	open_shard();
	struct spool_msg *m = fx_spool(sh, 1, 1, 100, 0);
	char path[512];
	fx_seg_path(path, sizeof(path), dir, 0, 1);
	cr_assert_eq(truncate(path, SPOOL_SEG_REC_SIZE + 40), 0);
	size_t cap = spool_msg_record_size(m);
	uint8_t *buf = malloc(cap);
	struct rb r = { 0 };
	cr_assert_eq(spool_read(sh, m, buf, cap, on_read, &r), 0);
	fx_poll_until(sh, 0, &r.n, 1);
	cr_assert_eq(r.status, -EIO);
	free(buf);
}

/* ---- lifecycle ---- */

Test(lifecycle, a_restart_recovers_exactly_what_was_acknowledged)
{
	open_shard();
	struct spool_msg *a = fx_spool(sh, 1, 2, 300, 0);
	struct spool_msg *b = fx_spool(sh, 2, 1, 300, 1000);
	fx_spool(sh, 3, 1, 300, 2000);
	(void)a;
	struct smtp_str ok = { (const uint8_t *)"250 2.0.0 Ok", 12 };
	cr_assert_eq(spool_state(sh, b, 0, SPOOL_RCPT_DELIVERED, 1767229200, 0, ok), 0);
	cr_assert_eq(spool_state(sh, a, 1, SPOOL_RCPT_DELIVERED, 1767229200, 0, ok), 0);
	/* begun, never committed: the client went away */
	struct fx_env e;
	fx_env(&e, 4, 1);
	struct spool_tx *tx;
	cr_assert_eq(spool_begin(sh, &e.env, 0, &tx), 0);
	cr_assert_eq(spool_append(sh, tx, "abc", 3), 0);
	spool_abort(sh, tx);
	/* begun and left for close to abort */
	fx_env(&e, 5, 1);
	cr_assert_eq(spool_begin(sh, &e.env, 0, &tx), 0);
	fx_drain(sh, 5000);

	reopen();
	cr_assert_eq(rq.n, 2);
	char q[SMTP_QID_LEN + 1];
	fx_qid(q, 1);
	int i = fx_requeued_find(&rq, q);
	cr_assert_geq(i, 0);
	cr_assert(!spool_msg_rcpt_final(rq.m[i], 0) && spool_msg_rcpt_final(rq.m[i], 1));
	fx_qid(q, 3);
	cr_assert_geq(fx_requeued_find(&rq, q), 0);
	cr_assert_eq(spool_stats(sh)->messages_live, 2);
}

static unsigned count_segments(void)
{
	char sub[512];
	snprintf(sub, sizeof(sub), "%s/0", dir);
	DIR *d = opendir(sub);
	cr_assert_not_null(d);
	unsigned n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		n += strncmp(de->d_name, "seg-", 4) == 0;
	closedir(d);
	return n;
}

Test(lifecycle, segments_rotate_and_are_deleted_once_every_message_in_them_is_final)
{
	open_shard();
	struct spool_msg *m[30];
	uint64_t now = 0;
	for (unsigned i = 0; i < 30; i++, now += 1000)
		m[i] = fx_spool(sh, i, 1, 10 << 10, now);
	const struct spool_stats *st = spool_stats(sh);
	cr_assert_geq(st->segments_created, 4, "three rotations and a spare");
	unsigned before = count_segments();
	cr_assert_geq(before, 4);
	char first[512];
	fx_seg_path(first, sizeof(first), dir, 0, 1);
	cr_assert(fx_exists(first));

	struct smtp_str ok = { (const uint8_t *)"250 2.0.0 Ok", 12 };
	for (unsigned i = 0; i < 30; i++)
		cr_assert_eq(spool_state(sh, m[i], 0, SPOOL_RCPT_DELIVERED, 1767229200, 0, ok), 0);
	now += 1000;
	fx_drain(sh, now);
	fx_drain(sh, now + 1000);
	cr_assert(!fx_exists(first), "segment 1 holds nothing live");
	cr_assert_geq(st->segments_deleted, 2);
	cr_assert_eq(count_segments(), before - st->segments_deleted);
	cr_assert_eq(st->messages_live, 0);
	cr_assert_eq(st->bytes_live, 0);

	reopen();
	cr_assert_eq(rq.n, 0);
}

Test(lifecycle, a_deferral_survives_a_restart)
{
	open_shard();
	struct spool_msg *m = fx_spool(sh, 1, 2, 100, 0);
	struct smtp_str r = { (const uint8_t *)"451 4.4.1 no answer", 19 };
	cr_assert_eq(spool_state(sh, m, 0, SPOOL_RCPT_DEFERRED, 1767229200, 1767229800, r), 0);
	cr_assert_eq(spool_state(sh, m, 1, SPOOL_RCPT_FAILED, 1767229200, 0, r), 0);
	fx_drain(sh, 1000);
	cr_assert_eq(spool_stats(sh)->state_records, 2);
	reopen();
	cr_assert_eq(rq.n, 1);
	cr_assert_eq(spool_msg_next_attempt(rq.m[0]), 1767229800);
	cr_assert(!spool_msg_rcpt_final(rq.m[0], 0) && spool_msg_rcpt_final(rq.m[0], 1));
}

Test(lifecycle, a_config_that_cannot_work_is_refused_with_a_reason)
{
	struct spool_recovery rep;
	cfg.segment_size = cfg.staging_bytes;
	errno = 0;
	cr_assert_null(spool_shard_open(&cfg, &rep));
	cr_assert_eq(errno, EINVAL);
	cr_assert(strstr(rep.error, "segment_size") != NULL, "%s", rep.error);
	fx_config(&cfg, NULL);
	cr_assert_null(spool_shard_open(&cfg, &rep));
	cr_assert(strstr(rep.error, "directory") != NULL, "%s", rep.error);
}

Test(lifecycle, a_spool_directory_that_cannot_be_made_fails_the_open_with_its_path)
{
	char file[512];
	snprintf(file, sizeof(file), "%s/plain-file", dir);
	int fd = open(file, O_WRONLY | O_CREAT, 0600);
	close(fd);
	char sub[600];
	snprintf(sub, sizeof(sub), "%s/spool", file);
	cfg.dir = sub;
	struct spool_recovery rep;
	errno = 0;
	cr_assert_null(spool_shard_open(&cfg, &rep));
	cr_assert_eq(errno, ENOTDIR);
	cr_assert(strstr(rep.error, "mkdir") && strstr(rep.error, "plain-file"), "%s", rep.error);
}

/* ---- the submitter identity (RFC 4954 §5) across a restart ---- */

/* Reads M back; returns its authid as a string ("" for none). */
static const char *read_authid(struct spool_msg *m)
{
	static char out[SPOOL_AUTHID_MAX + 1];
	size_t cap = spool_msg_record_size(m);
	uint8_t *buf = malloc(cap);
	struct rb r = { 0 };
	cr_assert_eq(spool_read(sh, m, buf, cap, on_read, &r), 0);
	fx_poll_until(sh, 0, &r.n, 1);
	cr_assert_eq(r.status, 0);
	struct spool_env env;
	struct smtp_rcpt rc[8];
	struct smtp_str c;
	cr_assert_eq(spool_rec_decode_msg(r.payload, r.len, &env, rc, 8, &c), SPOOL_RE_OK);
	if (env.authid.len)
		memcpy(out, env.authid.p, env.authid.len);
	out[env.authid.len] = '\0';
	free(buf);
	return out;
}

Test(readback, a_version_1_message_and_one_with_a_submitter_are_both_recovered)
{
	/* message 1 as every release before the identity wrote it (no authid: version 1) */
	struct segw w;
	segw_init(&w, 0, 1, 0x5a17c0deu);
	segw_msg(&w, 1, 1, 300);
	cr_assert_eq(w.buf[SPOOL_SEG_REC_SIZE + SPOOL_REC_HDR], SPOOL_REC_VERSION);
	segw_write(&w, dir, 0, 1, w.len, 0);
	segw_free(&w);
	open_shard();
	cr_assert_eq(rq.n, 1);
	/* message 2 through the writer, with a submitter */
	struct fx_env e;
	fx_env(&e, 2, 1);
	e.env.authid = (struct smtp_str){ (const uint8_t *)"carol@mx.example.com", 20 };
	struct spool_tx *tx;
	cr_assert_eq(spool_begin(sh, &e.env, 0, &tx), 0);
	cr_assert_eq(spool_append(sh, tx, "Subject: x\r\n\r\nbody\r\n", 20), 0);
	ck[0].id = 2;
	spool_commit(sh, tx, 0, on_commit, &ck[0]);
	fx_poll_until(sh, 500, &dn.n, 1);
	cr_assert_eq(dn.status[0], 0);

	reopen();
	cr_assert_eq(rq.n, 2, "both versions recovered");
	char q1[SMTP_QID_LEN + 1], q2[SMTP_QID_LEN + 1];
	fx_qid(q1, 1);
	fx_qid(q2, 2);
	int i1 = fx_requeued_find(&rq, q1), i2 = fx_requeued_find(&rq, q2);
	cr_assert(i1 >= 0 && i2 >= 0);
	cr_assert_str_eq(read_authid(rq.m[i1]), "");
	cr_assert_str_eq(read_authid(rq.m[i2]), "carol@mx.example.com");
}
