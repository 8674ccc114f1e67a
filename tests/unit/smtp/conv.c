/* SPDX-License-Identifier: BSD-3-Clause */
/* The conversation harness behind the SMTP scenario tests: a session, a recording sink, a clock. */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "conv.h"

/* ---- the recording sink ---- */

static struct conv_msg *cur(struct conv *c)
{
	cr_assert_gt(c->nmsgs, 0);
	return &c->msgs[c->nmsgs - 1];
}

static void copy_str(char *dst, size_t cap, struct smtp_str s)
{
	size_t n = s.len < cap - 1 ? s.len : cap - 1;
	if (n)
		memcpy(dst, s.p, n);
	dst[n] = '\0';
}

static int sink_begin(void *arg, struct smtp_tx *tx)
{
	struct conv *c = arg;
	c->begins++;
	if (c->begin_reply != SMTP_R_NONE)
		return c->begin_reply;
	cr_assert_lt(c->nmsgs, CONV_MAX_MSGS);
	struct conv_msg *m = &c->msgs[c->nmsgs++];
	memset(m, 0, sizeof(*m));
	copy_str(m->sender, sizeof(m->sender), tx->sender);
	for (unsigned i = 0; i < tx->nrcpt && i < 8; i++)
		copy_str(m->rcpt[i], sizeof(m->rcpt[i]), tx->rcpt[i].addr);
	m->nrcpt = tx->nrcpt;
	memcpy(m->queue_id, tx->queue_id, sizeof(m->queue_id));
	return SMTP_R_NONE;
}

static int sink_chunk(void *arg, struct smtp_tx *tx, const uint8_t *p, size_t n)
{
	struct conv *c = arg;
	(void)tx;
	struct conv_msg *m = cur(c);
	cr_assert_leq(m->len + n, sizeof(m->data));
	memcpy(m->data + m->len, p, n);
	m->len += n;
	return c->chunk_reply;
}

static int sink_end(void *arg, struct smtp_tx *tx)
{
	struct conv *c = arg;
	c->ends++;
	cur(c)->ended = true;
	cur(c)->tx = *tx;
	return c->end_reply;
}

static void sink_abort(void *arg, struct smtp_tx *tx)
{
	struct conv *c = arg;
	(void)tx;
	c->aborts++;
	if (c->nmsgs)
		cur(c)->aborted = true;
}

static const struct smtp_sink_ops conv_sink = {
	.begin = sink_begin,
	.chunk = sink_chunk,
	.end = sink_end,
	.abort = sink_abort,
};

/* ---- hooks ---- */

static int hook_connect(void *arg, struct smtp_session *s)
{
	struct conv *c = arg;
	(void)s;
	return c->connect_reply;
}

static int hook_rcpt(void *arg, struct smtp_session *s, const struct smtp_tx *tx,
		     const struct smtp_path *rcpt)
{
	struct conv *c = arg;
	(void)s;
	(void)tx;
	const char *d = c->reject_rcpt_domain;
	if (d && rcpt->domain.len == strlen(d) && memcmp(rcpt->domain.p, d, rcpt->domain.len) == 0)
		return SMTP_R_RELAY_DENIED;
	return SMTP_R_NONE;
}

void conv_init(struct conv *c)
{
	memset(c, 0, sizeof(*c));
	smtp_server_config_default(&c->cfg);
	c->cfg.hostname = CONV_HOST;
	c->cfg.max_message_size = 1 << 20;
	c->cfg.sink = &conv_sink;
	c->cfg.sink_arg = c;
	c->hooks.connect_check = hook_connect;
	c->hooks.rcpt_check = hook_rcpt;
	c->cfg.hooks = &c->hooks;
	c->cfg.hooks_arg = c;
	/* 2026-01-01T00:00:00Z at clock 0, so trace headers are reproducible */
	c->cfg.wall_offset_ms = 1767225600000LL;
	c->end_reply = SMTP_R_QUEUED;
	smtp_qid_init(&c->ctx.qid, 3, 0x0123456789abcdefull);
	c->now = 1000;
}

void conv_start(struct conv *c, unsigned flags)
{
	struct smtp_peer peer = { .family = 4, .addr = { 198, 51, 100, 7 }, .port = 40000 };
	c->s = smtp_server_new(&c->cfg, &c->ctx, &peer, flags, c->now);
	cr_assert_not_null(c->s, "session did not start: config unusable?");
	conv_flush(c);
}

void conv_end(struct conv *c)
{
	smtp_server_free(c->s);
	c->s = NULL;
}

void conv_flush(struct conv *c)
{
	const uint8_t *p;
	size_t n = smtp_server_output(c->s, &p);
	if (n == 0)
		return;
	cr_assert_leq(c->in_len + n, sizeof(c->in));
	memcpy(c->in + c->in_len, p, n);
	c->in_len += n;
	c->flushes++;
	c->last_flushes++;
	/* send in two parts to show partial sends are fine */
	smtp_server_output_done(c->s, n / 2);
	smtp_server_output_done(c->s, n - n / 2);
}

static void feed(struct conv *c, const uint8_t *p, size_t n, bool first)
{
	while (n) {
		size_t used = smtp_server_input(c->s, p, n, c->now);
		if (first) {
			c->last_taken = used;
			first = false;
		}
		p += used;
		n -= used;
		if (n == 0)
			break;
		unsigned ev = smtp_server_events(c->s);
		if (ev & (SMTP_EV_PENDING | SMTP_EV_STARTTLS)) {
			cr_assert_leq(c->kept_len + n, sizeof(c->kept));
			memcpy(c->kept + c->kept_len, p, n);
			c->kept_len += n;
			return;
		}
		cr_assert_gt(used + smtp_server_output(c->s, &(const uint8_t *){ NULL }), 0,
			     "the session took nothing and has nothing to send");
		conv_flush(c); /* the output was full: send, then go on */
	}
}

void conv_send_n(struct conv *c, const void *p, size_t n)
{
	c->last_flushes = 0;
	if (c->kept_len) { /* it queues behind what is kept */
		cr_assert_leq(c->kept_len + n, sizeof(c->kept));
		memcpy(c->kept + c->kept_len, p, n);
		c->kept_len += n;
		return;
	}
	feed(c, p, n, true);
	conv_flush(c);
}

void conv_send(struct conv *c, const char *s)
{
	conv_send_n(c, s, strlen(s));
}

void conv_resume(struct conv *c)
{
	uint8_t tmp[sizeof(c->kept)];
	size_t n = c->kept_len;
	memcpy(tmp, c->kept, n);
	c->kept_len = 0;
	c->last_flushes = 0;
	feed(c, tmp, n, true);
	conv_flush(c);
}

void conv_advance(struct conv *c, uint64_t ms)
{
	c->now += ms;
	if (smtp_server_deadline(c->s) <= c->now)
		smtp_server_timeout(c->s, c->now);
	conv_flush(c);
}

void conv_expect_at(struct conv *c, const char *line, const char *file, int lineno)
{
	const char *p = c->in + c->in_off;
	size_t left = c->in_len - c->in_off;
	const char *eol = memmem(p, left, "\r\n", 2);
	cr_assert_not_null(eol, "%s:%d: expected \"%s\", received nothing more", file, lineno,
			   line);
	size_t n = (size_t)(eol - p);
	cr_assert(n == strlen(line) && memcmp(p, line, n) == 0,
		  "%s:%d: expected \"%s\", received \"%.*s\"", file, lineno, line, (int)n, p);
	c->in_off += n + 2;
}

void conv_skip_reply(struct conv *c, const char *code)
{
	for (;;) {
		const char *p = c->in + c->in_off;
		size_t left = c->in_len - c->in_off;
		const char *eol = memmem(p, left, "\r\n", 2);
		cr_assert_not_null(eol, "expected a %s reply, received nothing more", code);
		cr_assert(strncmp(p, code, 3) == 0, "expected a %s reply, received \"%.*s\"", code,
			  (int)(eol - p), p);
		c->in_off += (size_t)(eol - p) + 2;
		if (p[3] == ' ')
			return;
	}
}

void conv_expect_nothing(struct conv *c)
{
	cr_assert_eq(c->in_off, c->in_len, "expected nothing, received \"%.*s\"",
		     (int)(c->in_len - c->in_off), c->in + c->in_off);
}

bool conv_closed(const struct conv *c)
{
	return smtp_server_events(c->s) & SMTP_EV_CLOSE;
}

void conv_ehlo(struct conv *c)
{
	conv_send(c, "EHLO client.example.com\r\n");
	conv_skip_reply(c, "250");
}
