/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * spool-bench: group commit on this machine's disk. C simulated sessions
 * each spool a message (begin, one content chunk, commit), wait for its
 * callback (the 250), mark it delivered and start the next, with one
 * thread polling the shard as a worker would. Prints messages/s, commits/s
 * (fdatasyncs), messages per commit and commit latency p50/p99 (commit() to
 * callback). With -r the messages stay undelivered, and the shard is then
 * closed and opened again: the recovery that a restart after a crash would
 * run, timed (issue #5 asks for 1,000,000 messages). For scripts/bench; not
 * a test.
 *
 *   spool-bench [-n messages] [-s size] [-w window_us] [-c sessions] [-d dir] [-r]
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>
#include <fcntl.h>

#include "dataplane/spool/spool.h"

struct sess {
	struct spool_shard *sh;
	unsigned id;
	uint64_t started;
};

static uint64_t *lat;
static size_t nlat, done, failed, target, requeued;
static bool keep; /* -r: leave the messages live, for the recovery run */
static unsigned seqno;
static uint8_t *content;
static size_t content_len;

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void start(struct sess *s);

static void committed(void *cookie, int status, struct spool_msg *m)
{
	struct sess *s = cookie;
	if (status == 0) {
		lat[nlat++] = now_us() - s->started;
		/* the relay's 250 from the next hop: the message becomes final */
		if (!keep)
			spool_state(s->sh, m, 0, SPOOL_RCPT_DELIVERED, time(NULL), 0,
			    (struct smtp_str){ (const uint8_t *)"250 2.0.0 Ok", 12 });
	} else {
		failed++;
	}
	done++;
	start(s);
}

static void start(struct sess *s)
{
	if (seqno >= target)
		return;
	static const struct smtp_rcpt rcpt = {
		.addr = { (const uint8_t *)"user@example.com", 16 },
	};
	struct spool_env env = {
		.received = time(NULL),
		.protocol = { (const uint8_t *)"ESMTP", 5 },
		.client = { (const uint8_t *)"[198.51.100.7]", 14 },
		.helo = { (const uint8_t *)"client.example.org", 18 },
		.sender = { (const uint8_t *)"sender@example.org", 18 },
		.nrcpt = 1,
		.rcpt = &rcpt,
	};
	snprintf(env.queue_id, sizeof(env.queue_id), "%020u", seqno++);
	struct spool_tx *tx;
	int r = spool_begin(s->sh, &env, content_len, &tx);
	if (r == 0)
		r = spool_append(s->sh, tx, content, content_len);
	if (r) {
		fprintf(stderr, "spool-bench: begin/append: %s\n", strerror(-r));
		exit(1);
	}
	s->started = now_us();
	spool_commit(s->sh, tx, s->started, committed, s);
}

static void count_requeued(void *arg, struct spool_shard *sh, struct spool_msg *m)
{
	(void)arg;
	(void)sh;
	(void)m;
	requeued++;
}

static int cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void rmtree(const char *dir)
{
	char sub[4096];
	snprintf(sub, sizeof(sub), "%s/0", dir);
	DIR *d = opendir(sub);
	if (d) {
		struct dirent *de;
		while ((de = readdir(d)) != NULL)
			if (de->d_name[0] != '.')
				unlinkat(dirfd(d), de->d_name, 0);
		closedir(d);
	}
	rmdir(sub);
	rmdir(dir);
}

int main(int argc, char **argv)
{
	unsigned sessions = 64, window = 200;
	size_t n = 20000, size = 1024;
	const char *dir = NULL;
	int opt;
	while ((opt = getopt(argc, argv, "n:s:w:c:d:r")) != -1) {
		switch (opt) {
		case 'r':
			keep = true;
			break;
		case 'n':
			n = strtoul(optarg, NULL, 10);
			break;
		case 's':
			size = strtoul(optarg, NULL, 10);
			break;
		case 'w':
			window = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'c':
			sessions = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'd':
			dir = optarg;
			break;
		default:
			fprintf(stderr,
				"usage: %s [-n messages] [-s size] [-w window_us] "
				"[-c sessions] [-d dir] [-r]\n",
				argv[0]);
			return 2;
		}
	}
	char tmpl[] = "/var/tmp/spool-bench.XXXXXX";
	bool own = dir == NULL;
	if (own && (dir = mkdtemp(tmpl)) == NULL) {
		perror("spool-bench: mkdtemp");
		return 1;
	}
	if (n == 0 || sessions == 0) {
		fprintf(stderr, "spool-bench: -n and -c must be > 0\n");
		return 2;
	}

	struct spool_config cfg;
	spool_config_default(&cfg);
	cfg.dir = dir;
	cfg.commit_window_us = window;
	if (keep && cfg.max_messages < n + 16)
		cfg.max_messages = (uint32_t)n + 16;
	struct spool_recovery rep;
	struct spool_shard *sh = spool_shard_open(&cfg, &rep);
	if (sh == NULL) {
		fprintf(stderr, "spool-bench: %s\n", rep.error);
		return 1;
	}
	target = n;
	lat = calloc(n, sizeof(*lat));
	content_len = size;
	content = malloc(size);
	for (size_t i = 0; i < size; i++)
		content[i] = (i % 78 == 76) ? '\r' :
			     (i % 78 == 77) ? '\n' :
					      (uint8_t)('a' + i % 26);
	struct sess *ss = calloc(sessions, sizeof(*ss));

	uint64_t t0 = now_us();
	for (unsigned i = 0; i < sessions; i++) {
		ss[i] = (struct sess){ .sh = sh, .id = i };
		start(&ss[i]);
	}
	while (done < n)
		spool_poll(sh, now_us());
	uint64_t el = now_us() - t0;
	const struct spool_stats *st = spool_stats(sh);
	uint64_t commits = st->commits;
	uint64_t deleted = st->segments_deleted;
	spool_shard_close(sh);

	qsort(lat, nlat, sizeof(*lat), cmp);
	double secs = (double)el / 1e6;
	printf("spool-bench: %zu messages of %zu B, window %u us, %u sessions, dir %s\n", n, size,
	       window, sessions, dir);
	printf("messages/s       %.0f\n", (double)nlat / secs);
	printf("commits/s        %.0f\n", (double)commits / secs);
	printf("messages/commit  %.1f\n", commits ? (double)nlat / (double)commits : 0.0);
	if (nlat)
		printf("commit latency   p50 %llu us  p99 %llu us  max %llu us\n",
		       (unsigned long long)lat[nlat / 2],
		       (unsigned long long)lat[(nlat * 99) / 100],
		       (unsigned long long)lat[nlat - 1]);
	printf("failed           %zu\n", failed);
	printf("segments deleted %llu\n", (unsigned long long)deleted);
	if (keep) {
		/* what a restart finds: every message live, each handed to the relay */
		cfg.requeue = count_requeued;
		sh = spool_shard_open(&cfg, &rep);
		if (sh == NULL) {
			fprintf(stderr, "spool-bench: reopen: %s\n", rep.error);
			return 1;
		}
		printf("recovery         %llu segments, %llu messages, %zu requeued in %.3f s "
		       "(%.0f messages/s)\n",
		       (unsigned long long)rep.segments, (unsigned long long)rep.messages,
		       requeued, (double)rep.duration_us / 1e6,
		       rep.duration_us ? (double)requeued * 1e6 / (double)rep.duration_us : 0.0);
		spool_shard_close(sh);
	}
	if (own)
		rmtree(dir);
	free(lat);
	free(content);
	free(ss);
	return failed ? 1 : 0;
}
