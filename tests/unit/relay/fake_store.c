/* SPDX-License-Identifier: BSD-3-Clause */
/* The relay engine's in-memory test store (fake_store.h). */
#include "fake_store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "relay_fixture.h"

struct fake_store fs;

static struct smtp_qid_gen qid_gen;

void fs_reset(void)
{
	fs_free();
	memset(&fs, 0, sizeof(fs));
	smtp_qid_init(&qid_gen, 1, 0xabcdef);
}

void fs_free(void)
{
	for (unsigned i = 0; i < fs.n; i++)
		free(fs.msgs[i].rec);
	fs.n = 0;
}

static struct smtp_str str(const char *s)
{
	return (struct smtp_str){ (const uint8_t *)s, s ? strlen(s) : 0 };
}

/* A message from ENV and CONTENT, encoded as the spool encodes it. */
static struct spool_msg *store_msg(const struct spool_env *env, const uint8_t *content, size_t len)
{
	if (fs.n == FS_MAX_MSGS)
		abort();
	struct spool_msg *m = &fs.msgs[fs.n++];
	size_t el = spool_rec_env_size(env);

	memset(m, 0, sizeof(*m));
	m->used = true;
	memcpy(m->qid, env->queue_id, sizeof(m->qid));
	m->nrcpt = env->nrcpt;
	m->rec = malloc(el + len);
	if (m->rec == NULL || spool_rec_encode_env(m->rec, el, env) != el)
		abort();
	memcpy(m->rec + el, content, len);
	m->len = el + len;
	return m;
}

struct spool_msg *fs_add(const struct fs_msg *in)
{
	static const char dflt[] = "Received: from client.example ([198.51.100.7])\r\n"
				   "\tby mx.example.org with ESMTP id TEST\r\n"
				   "From: Alice <alice@sender.example>\r\n"
				   "Subject: test\r\n"
				   "\r\n"
				   "Hello.\r\n";
	struct smtp_rcpt rcpt[FS_MAX_RCPTS];
	struct spool_env env = {
		.received = in->received ? in->received : rx_wall(),
		.peer = { .family = 4, .addr = { 198, 51, 100, 7 }, .port = 40000 },
		.ret = in->ret,
		.body = SMTP_BODY_NONE,
		.smtputf8 = in->smtputf8,
		.protocol = str("ESMTP"),
		.client = str("[198.51.100.7]"),
		.helo = str("client.example"),
		.sender = str(in->sender ? in->sender : "alice@sender.example"),
		.envid = str(in->envid),
		.authid = str(in->authid),
		.rcpt = rcpt,
	};
	unsigned n = 0;

	while (n < FS_MAX_RCPTS && in->rcpt[n] != NULL) {
		rcpt[n] = (struct smtp_rcpt){ .addr = str(in->rcpt[n]),
					      .orcpt = str(in->orcpt[n]),
					      .notify = in->notify[n] };
		n++;
	}
	env.nrcpt = n;
	smtp_qid_next(&qid_gen, (uint64_t)env.received, env.queue_id);
	const char *c = in->content ? in->content : dflt;
	size_t cl = in->content ? (in->content_len ? in->content_len : strlen(c)) : strlen(dflt);
	return store_msg(&env, (const uint8_t *)c, cl);
}

static bool known(const struct spool_msg *m)
{
	return m >= fs.msgs && m < fs.msgs + fs.n && m->used;
}

/* The engine touched M after it went final (or a stranger): counted, never crashes. */
static bool usable(const struct spool_msg *m)
{
	if (!known(m) || m->final) {
		fs.misuse++;
		return false;
	}
	return true;
}

static const char *f_queue_id(void *arg, const struct spool_msg *m)
{
	(void)arg;
	return usable(m) ? m->qid : "";
}

static unsigned f_nrcpt(void *arg, const struct spool_msg *m)
{
	(void)arg;
	return usable(m) ? m->nrcpt : 0;
}

static bool f_rcpt_final(void *arg, const struct spool_msg *m, unsigned i)
{
	(void)arg;
	if (!usable(m) || i >= m->nrcpt)
		return true;
	return m->st[i] == SPOOL_RCPT_DELIVERED || m->st[i] == SPOOL_RCPT_FAILED;
}

static int64_t f_next_attempt(void *arg, const struct spool_msg *m)
{
	(void)arg;
	return usable(m) ? m->next_attempt : 0;
}

static size_t f_record_size(void *arg, const struct spool_msg *m)
{
	(void)arg;
	return usable(m) ? m->len : 0;
}

static int f_read(void *arg, struct spool_msg *m, void *buf, size_t cap, spool_read_cb cb,
		  void *cookie)
{
	unsigned max = fs.max_reads ? fs.max_reads : FS_MAX_OPS;

	(void)arg;
	if (!usable(m))
		return -EINVAL;
	if (cap < m->len)
		return -EINVAL;
	if (fs.n_reads >= max) {
		fs.busy++;
		return -EBUSY;
	}
	fs.reads[fs.n_reads++] = (struct fs_read){ m, buf, cap, cb, cookie };
	fs.reads_started++;
	if (fs.n_reads > fs.reads_peak)
		fs.reads_peak = fs.n_reads;
	return 0;
}

static int f_state(void *arg, struct spool_msg *m, unsigned i, enum spool_rcpt_state st,
		   int64_t when, int64_t next, struct smtp_str reply)
{
	(void)arg;
	(void)when;
	if (!usable(m))
		return -EINVAL;
	if (i >= m->nrcpt || m->st[i] == SPOOL_RCPT_DELIVERED || m->st[i] == SPOOL_RCPT_FAILED ||
	    reply.len > SPOOL_REPLY_MAX || (st == SPOOL_RCPT_DEFERRED) != (next != 0)) {
		fs.misuse++;
		return -EINVAL;
	}
	if (fs.state_enobufs > 0) {
		fs.state_enobufs--;
		return -ENOBUFS;
	}
	m->st[i] = st;
	memcpy(m->reply[i], reply.p, reply.len);
	m->reply[i][reply.len] = '\0';
	m->states++;
	if (st == SPOOL_RCPT_DEFERRED)
		m->next_attempt = next;
	bool final = true;
	for (unsigned k = 0; k < m->nrcpt; k++)
		final &= m->st[k] == SPOOL_RCPT_DELIVERED || m->st[k] == SPOOL_RCPT_FAILED;
	m->final = final;
	return 0;
}

static int f_inject(void *arg, const struct spool_env *env, const uint8_t *content, size_t len,
		    uint64_t now_us, spool_commit_cb cb, void *cookie, struct spool_tx **tx)
{
	(void)arg;
	(void)now_us;
	if (fs.inject_error)
		return fs.inject_error;
	struct spool_msg *m = store_msg(env, content, len);
	m->injected = true;
	fs.injected++;
	fs.commits[fs.n_commits++] = (struct fs_commit){ m, cb, cookie, false };
	*tx = (struct spool_tx *)m;
	return 0;
}

static void f_detach(void *arg, struct spool_tx *tx)
{
	(void)arg;
	for (unsigned i = 0; i < fs.n_commits; i++)
		if (fs.commits[i].m == (struct spool_msg *)tx)
			fs.commits[i].detached = true;
	fs.detached++;
}

static unsigned complete_reads(void)
{
	unsigned n = fs.n_reads;
	struct fs_read r[FS_MAX_OPS];

	memcpy(r, fs.reads, n * sizeof(r[0]));
	fs.n_reads = 0;
	for (unsigned i = 0; i < n; i++) {
		if (r[i].m->read_errors > 0) {
			r[i].m->read_errors--;
			r[i].cb(r[i].cookie, -EIO, NULL, 0);
			continue;
		}
		memcpy(r[i].buf, r[i].m->rec, r[i].m->len);
		r[i].cb(r[i].cookie, 0, r[i].buf, r[i].m->len);
	}
	return n;
}

static void f_drain(void *arg)
{
	(void)arg;
	complete_reads();
}

const struct relay_store_ops fs_ops = {
	.queue_id = f_queue_id,
	.nrcpt = f_nrcpt,
	.rcpt_final = f_rcpt_final,
	.next_attempt = f_next_attempt,
	.record_size = f_record_size,
	.read = f_read,
	.state = f_state,
	.inject = f_inject,
	.detach = f_detach,
	.drain = f_drain,
};

unsigned fs_step(void)
{
	unsigned done = 0;

	if (!fs.hold_reads)
		done += complete_reads();
	if (!fs.hold_commits && fs.n_commits > 0) {
		struct fs_commit c[FS_MAX_OPS];
		unsigned n = fs.n_commits;

		memcpy(c, fs.commits, n * sizeof(c[0]));
		fs.n_commits = 0;
		for (unsigned i = 0; i < n; i++) {
			if (c[i].detached)
				continue;
			int st = fs.commit_error;
			if (st != 0)
				c[i].m->used = false; /* not spooled */
			c[i].cb(c[i].cookie, st, st == 0 ? c[i].m : NULL);
			done++;
		}
	}
	return done;
}

enum spool_rcpt_state fs_state(const struct spool_msg *m, unsigned i)
{
	return m->st[i];
}

struct spool_msg *fs_injected(unsigned n)
{
	for (unsigned i = 0; i < fs.n; i++)
		if (fs.msgs[i].injected && fs.msgs[i].used && n-- == 0)
			return &fs.msgs[i];
	return NULL;
}

void fs_decode(const struct spool_msg *m, struct spool_env *env, struct smtp_rcpt *rcpts,
	       struct smtp_str *content)
{
	if (spool_rec_decode_msg(m->rec, m->len, env, rcpts, FS_MAX_RCPTS, content) != SPOOL_RE_OK)
		abort();
}

bool fs_content_has(const struct spool_msg *m, const char *s)
{
	struct spool_env env;
	struct smtp_rcpt r[FS_MAX_RCPTS];
	struct smtp_str c;

	fs_decode(m, &env, r, &c);
	return memmem(c.p, c.len, s, strlen(s)) != NULL;
}
