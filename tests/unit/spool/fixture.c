/* SPDX-License-Identifier: BSD-3-Clause */
/* Spool test support (see fixture.h). */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "dataplane/spool/crc32c.h"
#include "fixture.h"

char *fx_tmpdir(void)
{
	char *t = strdup("/tmp/mxgate-spool-test.XXXXXX");
	if (t == NULL || mkdtemp(t) == NULL) {
		perror("mkdtemp");
		abort();
	}
	return t;
}

static void rm_dir(const char *path, int depth)
{
	DIR *d = opendir(path);
	if (d == NULL)
		return;
	struct dirent *de;
	char sub[1024];
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
		struct stat st;
		if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode) && depth > 0)
			rm_dir(sub, depth - 1);
		else
			unlink(sub);
	}
	closedir(d);
	rmdir(path);
}

void fx_rmtree(const char *dir)
{
	rm_dir(dir, 2);
}

void fx_config(struct spool_config *c, const char *dir)
{
	spool_config_default(c);
	c->dir = dir;
	c->segment_size = 128u << 10;
	c->staging_bytes = 64u << 10;
	c->max_message = 32u << 10;
	c->max_messages = 1024;
	c->max_tx = 64;
	c->max_rcpts = 8;
	c->max_reads = 4;
	c->probe_interval_us = 1000;
}

void fx_qid(char out[SMTP_QID_LEN + 1], unsigned n)
{
	snprintf(out, SMTP_QID_LEN + 1, "%020u", n);
}

void fx_env(struct fx_env *e, unsigned n, unsigned nrcpt)
{
	memset(e, 0, sizeof(*e));
	fx_qid(e->env.queue_id, n);
	e->env.received = 1767225600 + n;
	e->env.peer.family = 4;
	memcpy(e->env.peer.addr, (uint8_t[]){ 198, 51, 100, 7 }, 4);
	e->env.peer.port = 40000;
	e->env.ret = SMTP_RET_HDRS;
	e->env.body = SMTP_BODY_8BITMIME;
	e->env.protocol = (struct smtp_str){ (const uint8_t *)"ESMTPS", 6 };
	e->env.client = (struct smtp_str){ (const uint8_t *)"[198.51.100.7]", 14 };
	e->env.helo = (struct smtp_str){ (const uint8_t *)"client.example.org", 18 };
	e->env.sender = (struct smtp_str){ (const uint8_t *)"sender@example.org", 18 };
	e->env.envid = (struct smtp_str){ (const uint8_t *)"ENV+2B1", 7 };
	for (unsigned i = 0; i < nrcpt && i < 8; i++) {
		int l = snprintf(e->addr[i], sizeof(e->addr[i]), "rcpt%u@example.com", i);
		e->rcpt[i].addr = (struct smtp_str){ (const uint8_t *)e->addr[i], (size_t)l };
		e->rcpt[i].notify = i % 2 ? SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY : 0;
		if (i % 2)
			e->rcpt[i].orcpt = e->rcpt[i].addr;
	}
	e->env.nrcpt = nrcpt;
	e->env.rcpt = e->rcpt;
}

void fx_content(uint8_t *out, size_t len, unsigned n)
{
	uint32_t x = 2463534242u ^ n;
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		out[i] = (uint8_t)x;
	}
}

void fx_poll_until(struct spool_shard *sh, uint64_t now, const unsigned *count, unsigned want)
{
	for (int i = 0; i < 200000; i++) {
		spool_poll(sh, now);
		if ((count == NULL || *count >= want) && spool_inflight(sh) == 0)
			return;
		usleep(100);
	}
	cr_assert_fail("spool: operations still in flight after 20 s");
}

void fx_drain(struct spool_shard *sh, uint64_t now)
{
	fx_poll_until(sh, now, NULL, 0);
}

struct one {
	unsigned n;
	int status;
	struct spool_msg *m;
};

static void one_cb(void *cookie, int status, struct spool_msg *m)
{
	struct one *o = cookie;
	o->n++;
	o->status = status;
	o->m = m;
}

struct spool_msg *fx_spool(struct spool_shard *sh, unsigned n, unsigned nrcpt, size_t len,
			   uint64_t now)
{
	struct fx_env e;
	fx_env(&e, n, nrcpt);
	struct spool_tx *tx;
	cr_assert_eq(spool_begin(sh, &e.env, len, &tx), 0);
	uint8_t *c = malloc(len + 1);
	fx_content(c, len, n);
	cr_assert_eq(spool_append(sh, tx, c, len), 0);
	free(c);
	struct one o = { 0 };
	spool_commit(sh, tx, now, one_cb, &o);
	fx_poll_until(sh, now + 1000000, &o.n, 1);
	cr_assert_eq(o.status, 0, "commit of message %u: %d", n, o.status);
	return o.m;
}

void fx_requeue(void *arg, struct spool_shard *sh, struct spool_msg *m)
{
	struct fx_requeued *r = arg;
	(void)sh;
	cr_assert_lt(r->n, 64u);
	r->m[r->n] = m;
	memcpy(r->qid[r->n], spool_msg_queue_id(m), SMTP_QID_LEN + 1);
	r->n++;
}

int fx_requeued_find(const struct fx_requeued *r, const char *qid)
{
	for (unsigned i = 0; i < r->n; i++)
		if (strcmp(r->qid[i], qid) == 0)
			return (int)i;
	return -1;
}

/* ---- crafted segments ---- */

static void segw_room(struct segw *w, size_t n)
{
	if (w->len + n <= w->cap)
		return;
	w->cap = (w->len + n) * 2;
	w->buf = realloc(w->buf, w->cap);
	cr_assert_not_null(w->buf);
}

void segw_init(struct segw *w, unsigned shard, uint64_t id, uint32_t salt)
{
	memset(w, 0, sizeof(*w));
	w->salt = salt;
	w->seq = id * 1000;
	segw_room(w, SPOOL_SEG_REC_SIZE);
	struct spool_seg_rec s = { .shard = shard, .id = id, .salt = salt };
	w->len = spool_rec_encode_segment(w->buf, w->cap, &s);
	cr_assert_eq(w->len, SPOOL_SEG_REC_SIZE);
}

size_t segw_msg(struct segw *w, unsigned n, unsigned nrcpt, size_t len)
{
	struct fx_env e;
	fx_env(&e, n, nrcpt);
	size_t envlen = spool_rec_env_size(&e.env);
	uint8_t *pl = malloc(envlen + len + 1);
	cr_assert_eq(spool_rec_encode_env(pl, envlen, &e.env), envlen);
	fx_content(pl + envlen, len, n);
	size_t off = w->len;
	segw_room(w, spool_rec_size(envlen + len));
	w->len += spool_rec_encode(w->buf + off, w->cap - off, SPOOL_REC_MESSAGE, ++w->seq, w->salt,
				   pl, envlen + len);
	free(pl);
	return off;
}

size_t segw_state(struct segw *w, unsigned n, unsigned rcpt, enum spool_rcpt_state st,
		  int64_t next_attempt)
{
	struct spool_state_rec s = {
		.rcpt = rcpt, .state = st, .when = 1767229200, .next_attempt = next_attempt
	};
	fx_qid(s.queue_id, n);
	if (st != SPOOL_RCPT_DELIVERED)
		s.reply = (struct smtp_str){ (const uint8_t *)"451 4.4.1 try later", 19 };
	uint8_t pl[SPOOL_STATE_MAX];
	size_t len = spool_rec_encode_state(pl, sizeof(pl), &s);
	cr_assert_gt(len, 0);
	size_t off = w->len;
	segw_room(w, spool_rec_size(len));
	w->len += spool_rec_encode(w->buf + off, w->cap - off, SPOOL_REC_STATE, ++w->seq, w->salt,
				   pl, len);
	return off;
}

void segw_raw(struct segw *w, const void *p, size_t n)
{
	segw_room(w, n);
	memcpy(w->buf + w->len, p, n);
	w->len += n;
}

void fx_seg_path(char *out, size_t cap, const char *dir, unsigned shard, uint64_t id)
{
	snprintf(out, cap, "%s/%u/seg-%016llx.dat", dir, shard, (unsigned long long)id);
}

void segw_write(const struct segw *w, const char *dir, unsigned shard, uint64_t id, size_t len,
		size_t zeros)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%u", dir, shard);
	mkdir(path, 0750);
	fx_seg_path(path, sizeof(path), dir, shard, id);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0640);
	cr_assert_geq(fd, 0);
	cr_assert_leq(len, w->len);
	cr_assert_eq(write(fd, w->buf, len), (ssize_t)len);
	if (zeros)
		cr_assert_eq(ftruncate(fd, (off_t)(len + zeros)), 0);
	close(fd);
}

void segw_free(struct segw *w)
{
	free(w->buf);
	memset(w, 0, sizeof(*w));
}

bool fx_exists(const char *path)
{
	return access(path, F_OK) == 0;
}

long fx_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (long)st.st_size : -1;
}
