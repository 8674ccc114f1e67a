/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target: the SMTP client engine against an arbitrary server.
 *
 * Input: [f0][f1][f2][f3][payload]. The flags choose the client profile
 * (PIPELINING, CHUNKING, TLS policy, 8-bit policy, small buffers and
 * limits), the messages it sends (recipients, 8-bit, SMTPUTF8, DSN, SIZE,
 * content length and how it is fed), how fast the clock runs, whether a
 * TLS handshake ever completes, whether an idle session is kept, and
 * whether the connection is lost at the end:
 *   f0: 0x01 pipelining, 0x02 chunking, 0x0c TLS policy, 0x10 handshake ok,
 *       0x20 send_8bit, 0xc0 clock step (10 ms, 1 s, 61 s, 200 s)
 *   f1: 0x01 the handshake never ends, 0x02 lost at the end, 0x04 8-bit,
 *       0x08 SMTPUTF8, 0x10 DSN, 0x20 SIZE=, 0xc0 server octets fed whole,
 *       by 1, by 3 or by 64
 *   f2: 0x03 recipients - 1, 0x10 implicit TLS, 0x20 small buffers and
 *       reply-line limit, 0xc0 messages - 1
 *   f3: 0x0f content piece size, 0x30 content length, 0x40 stay idle,
 *       0x80 the content does not end with CRLF
 * The payload is what the server says, in segments split at 0xff; each
 * segment is fed whole or in small pieces, and after each one the harness
 * does what the glue does: flush the output, start transactions when
 * READY, feed content when asked, finish the STARTTLS handshake, run the
 * timer. So a seed conversation walks the client through every state, and
 * mutations hit each state with whatever bytes they like.
 *
 * Checked: every recipient of every transaction is reported exactly once,
 * tx_done follows the last of them and comes once per transaction begun
 * (also when the session fails, times out, is lost or freed), results are
 * well formed, the output never outgrows its buffer, and a closed session
 * has no deadline. ASan and UBSan watch every buffer.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/smtp/client.h"

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x))                                                                          \
			__builtin_trap();                                                          \
	} while (0)

#define MAX_RCPT 4

struct fz {
	struct smtp_client_config cfg;
	struct smtp_client_ops ops;
	struct smtp_client_ctx ctx;
	struct smtp_client *c;
	uint64_t now;
	uint8_t f0, f1, f2, f3;
	size_t content_len;
	/* the transaction in flight */
	bool tx_open;
	unsigned nrcpt, reported, tx_begun, tx_done;
	bool seen[MAX_RCPT];
	/* content */
	size_t content_off;
};

static const char pattern[] = "Subject: caf\xc3\xa9\r\n\r\n.\r\n..\r\n.x\r\nline\r\n.\r\n"
			      "a.b\r\n\r\n.. end\r\n";
static char content[100 * sizeof(pattern)];

static void check_reply(const struct smtp_client_result *r)
{
	CHECK(r->outcome >= SMTP_CO_DELIVERED && r->outcome <= SMTP_CO_FAILED);
	CHECK(r->reason < SMTP_CR_MAX && r->stage < SMTP_CS_MAX);
	const struct smtp_client_reply *p = r->reply;
	CHECK(p->text_len <= SMTP_CLIENT_TEXT_MAX && p->text[p->text_len] == '\0');
	for (size_t i = 0; i < p->text_len; i++)
		CHECK(p->text[i] >= 0x20 && p->text[i] <= 0x7e);
	CHECK(strlen(p->esc) <= SMTP_ESC_MAX);
	if (r->reason == SMTP_CR_REPLY)
		CHECK(p->code >= 200 && p->code <= 559);
	else
		CHECK(p->code == 0 && p->esc[0] != '\0');
	if (r->outcome == SMTP_CO_DELIVERED)
		CHECK(r->reason == SMTP_CR_REPLY && p->code / 100 == 2);
}

static void on_rcpt(void *arg, struct smtp_client *c, unsigned idx,
		    const struct smtp_client_result *r)
{
	struct fz *z = arg;
	CHECK(c == z->c && z->tx_open && idx < z->nrcpt && !z->seen[idx]);
	z->seen[idx] = true;
	z->reported++;
	check_reply(r);
}

static void on_tx(void *arg, struct smtp_client *c, const struct smtp_client_tx_summary *s)
{
	struct fz *z = arg;
	CHECK(c == z->c && z->tx_open && z->reported == z->nrcpt && s->nrcpt == z->nrcpt);
	CHECK(s->delivered + s->deferred + s->failed == s->nrcpt);
	if (s->delivered)
		CHECK(s->data_sent);
	z->tx_open = false;
	z->tx_done++;
}

static void flush(struct fz *z)
{
	const uint8_t *p;
	size_t n = smtp_client_output(z->c, &p);
	CHECK(n <= z->cfg.output_size);
	if (n == 0)
		return;
	/* the bytes must be readable: touch the first and the last */
	volatile uint8_t sink = p[0] ^ p[n - 1];
	(void)sink;
	smtp_client_output_done(z->c, n / 2, z->now);
	smtp_client_output_done(z->c, n - n / 2, z->now);
}

static void begin_tx(struct fz *z)
{
	static const char *const addrs[MAX_RCPT] = { "a@example.com", "b@example.com",
						     "j\xc3\xb6rg@example.com", "d@example.net" };
	struct smtp_client_rcpt r[MAX_RCPT];
	struct smtp_client_msg m = { 0 };
	unsigned n = 1 + z->f2 % MAX_RCPT;
	bool utf8 = z->f1 & 0x08;

	memset(r, 0, sizeof(r));
	for (unsigned i = 0; i < n; i++) {
		const char *a = (i == 2 && !utf8) ? "c@example.com" : addrs[i];
		r[i].addr = (struct smtp_str){ (const uint8_t *)a, strlen(a) };
		if (z->f1 & 0x10) {
			r[i].notify = i == 1 ? SMTP_NOTIFY_NEVER : SMTP_NOTIFY_FAILURE;
			r[i].orcpt = r[i].addr;
		}
	}
	m.sender = (struct smtp_str){ (const uint8_t *)"s@example.org", z->tx_begun % 2 ? 0 : 13 };
	m.rcpt = r;
	m.nrcpt = n;
	m.eightbit = z->f1 & 0x04;
	m.smtputf8 = utf8;
	m.size = (z->f1 & 0x20) ? z->content_len + z->tx_begun * 1000000 : 0;
	if (z->f1 & 0x10) {
		m.ret = SMTP_RET_HDRS;
		m.envid = (struct smtp_str){ (const uint8_t *)"env id+1", 8 };
	}

	z->tx_open = true;
	z->nrcpt = n;
	z->reported = 0;
	memset(z->seen, 0, sizeof(z->seen));
	z->content_off = 0;
	int rc = smtp_client_tx_begin(z->c, &m, z->now);
	CHECK(rc == 0 || rc == -ENOSPC);
	if (rc != 0) {
		CHECK(z->reported == 0);
		z->tx_open = false;
		return;
	}
	z->tx_begun++;
}

/* What the glue does after a read: flush, then act on the events, a few rounds. */
static void drive(struct fz *z)
{
	for (int round = 0; round < 64; round++) {
		flush(z);
		unsigned ev = smtp_client_events(z->c);
		if (ev & SMTP_CLIENT_EV_CLOSE) {
			CHECK(smtp_client_deadline(z->c) == UINT64_MAX);
			CHECK(!z->tx_open);
			return;
		}
		if (ev & SMTP_CLIENT_EV_STARTTLS) {
			if (z->f1 & 0x01)
				return; /* a handshake that never ends: the timer's business */
			smtp_client_tls_done(z->c, z->f0 & 0x10, z->now);
			continue;
		}
		if (ev & SMTP_CLIENT_EV_READY) {
			CHECK(!z->tx_open);
			/* a message refused before sending leaves the session READY: the next one */
			if (z->tx_begun < 1u + (z->f2 >> 6))
				begin_tx(z);
			else if (z->f3 & 0x40)
				return; /* kept idle, as a pool does */
			else
				CHECK(smtp_client_quit(z->c, z->now) == 0);
			continue;
		}
		if (ev & SMTP_CLIENT_EV_CONTENT) {
			CHECK(z->tx_open);
			size_t left = z->content_len - z->content_off;
			if (left) {
				size_t piece = 1 + (z->f3 & 0x0f) * 397;
				size_t k = left < piece ? left : piece;
				z->content_off += smtp_client_data(
					z->c, (const uint8_t *)content + z->content_off, k, z->now);
			} else {
				int rc = smtp_client_data_end(z->c, z->now);
				CHECK(rc == 0 || rc == -EAGAIN);
			}
			continue;
		}
		return; /* waiting for the server */
	}
}

static void feed(struct fz *z, const uint8_t *p, size_t n)
{
	static const size_t pieces[4] = { SIZE_MAX, 1, 3, 64 };
	size_t piece = pieces[z->f1 >> 6];
	while (n) {
		size_t k = n < piece ? n : piece;
		uint8_t *copy = malloc(k); /* exact size: ASan sees any over-read */
		if (!copy)
			return;
		memcpy(copy, p, k);
		smtp_client_input(z->c, copy, k, z->now);
		free(copy);
		p += k;
		n -= k;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint64_t steps[4] = { 10, 1000, 61000, 200000 };
	static const unsigned repeats[4] = { 1, 8, 40, 100 };
	struct fz *z;
	if (!content[0])
		for (size_t i = 0; i < 100; i++)
			memcpy(content + i * (sizeof(pattern) - 1), pattern, sizeof(pattern) - 1);
	if (size < 4 || !(z = calloc(1, sizeof(*z))))
		return 0;
	z->f0 = data[0];
	z->f1 = data[1];
	z->f2 = data[2];
	z->f3 = data[3];
	z->content_len = (sizeof(pattern) - 1) * repeats[z->f3 >> 4 & 3] - (z->f3 & 0x80 ? 2 : 0);
	data += 4;
	size -= 4;
	if (size > 60000)
		size = 60000;

	smtp_client_config_default(&z->cfg);
	z->cfg.helo_name = "client.example.org";
	z->cfg.pipelining = z->f0 & 0x01;
	z->cfg.chunking = z->f0 & 0x02;
	z->cfg.tls = (enum smtp_client_tls)((z->f0 >> 2 & 3) == 3 ? 1 : z->f0 >> 2 & 3);
	z->cfg.send_8bit = z->f0 & 0x20;
	if (z->f2 & 0x20) {
		z->cfg.envelope_size = 2048;
		z->cfg.output_size = 4096 + 16;
		z->cfg.max_reply_lines = 4;
	}
	z->cfg.max_rcpts = MAX_RCPT;
	z->ops = (struct smtp_client_ops){ on_rcpt, on_tx };
	z->cfg.ops = &z->ops;
	z->cfg.ops_arg = z;
	z->now = 1000;
	z->c = smtp_client_new(&z->cfg, &z->ctx, (z->f2 & 0x10) ? SMTP_CLIENT_TLS_ON : 0, z->now);
	CHECK(z->c != NULL);

	uint64_t step = steps[z->f0 >> 6];
	size_t off = 0;
	while (off < size) {
		const uint8_t *end = memchr(data + off, 0xff, size - off);
		size_t seg = end ? (size_t)(end - (data + off)) : size - off;
		feed(z, data + off, seg);
		drive(z);
		off += seg + (end ? 1 : 0);
		z->now += step;
		uint64_t d = smtp_client_deadline(z->c);
		if (d <= z->now) {
			CHECK(smtp_client_timeout(z->c, z->now));
			drive(z);
		} else {
			CHECK(!smtp_client_timeout(z->c, z->now));
		}
	}
	if (z->f1 & 0x02)
		smtp_client_lost(z->c, z->now);
	smtp_client_free(z->c);
	CHECK(!z->tx_open && z->tx_done == z->tx_begun);
	free(z);
	return 0;
}
