/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target: the DATA/BDAT scanner and a whole server session under
 * arbitrary chunking.
 *
 * Input: [flags][k][k chunk sizes][payload]. The scanner runs the payload
 * unsplit and split at the chunk sizes, in every mode, and both runs must
 * agree octet for octet (the end of data, the flags, the content): that is
 * the no-rescan, no-smuggling property. Then a session (greeting sent, the
 * flags choosing listener options and a pending sink) eats the payload in
 * the same chunks with the clock moving, and every reply it writes must be a
 * well-formed reply line.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/smtp/data.h"
#include "dataplane/smtp/smtp.h"

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x))                                                                          \
			__builtin_trap();                                                          \
	} while (0)

struct digest {
	uint64_t h, n;
};

static void absorb(void *arg, const uint8_t *p, size_t n)
{
	struct digest *d = arg;
	for (size_t i = 0; i < n; i++)
		d->h = (d->h ^ p[i]) * 0x100000001b3ull;
	d->n += n;
}

struct chunker {
	const uint8_t *sizes;
	size_t k, i;
};

static size_t next_chunk(struct chunker *c, size_t left)
{
	size_t n = c->k ? (size_t)c->sizes[c->i++ % c->k] + 1 : left;
	return n < left ? n : left;
}

static void scan_both_ways(enum smtp_data_mode mode, bool normalize, const uint8_t *p, size_t n,
			   struct chunker ch)
{
	struct smtp_data_scan a, b;
	struct digest da = { 0xcbf29ce484222325ull, 0 }, db = da;

	smtp_data_init(&a, mode, 1000, normalize);
	size_t ua = smtp_data_scan(&a, p, n, absorb, &da);
	if (!a.done && mode != SMTP_DATA_DOT)
		smtp_data_end(&a, absorb, &da);

	smtp_data_init(&b, mode, 1000, normalize);
	size_t ub = 0, off = 0;
	while (off < n && !b.done) {
		size_t len = next_chunk(&ch, n - off);
		uint8_t *piece = malloc(len); /* exact size: ASan sees any over-read */
		if (!piece)
			return;
		memcpy(piece, p + off, len);
		size_t used = smtp_data_scan(&b, piece, len, absorb, &db);
		free(piece);
		CHECK(used <= len);
		CHECK(b.done || used == len);
		ub += used;
		off += len;
	}
	if (!b.done && mode != SMTP_DATA_DOT)
		smtp_data_end(&b, absorb, &db);

	CHECK(a.done == b.done);
	CHECK(ua == ub);
	CHECK(a.flags == b.flags);
	CHECK(a.received == b.received);
	CHECK(da.n == db.n && da.h == db.h);
	if (mode == SMTP_DATA_DOT && a.done) /* it ended on CRLF.CRLF, at a line start */
		CHECK(ua >= 3 && p[ua - 3] == '.' && p[ua - 2] == '\r' && p[ua - 1] == '\n' &&
		      (ua == 3 || (p[ua - 5] == '\r' && p[ua - 4] == '\n')));
}

/* A sink that answers later, sometimes. */
struct fsink {
	bool pend;
	unsigned pending;
};

static int fs_begin(void *arg, struct smtp_tx *tx)
{
	(void)arg;
	CHECK(tx->active && tx->nrcpt > 0);
	return SMTP_R_NONE;
}

static int fs_chunk(void *arg, struct smtp_tx *tx, const uint8_t *p, size_t n)
{
	(void)arg;
	(void)tx;
	(void)p;
	(void)n;
	return SMTP_R_NONE;
}

static int fs_end(void *arg, struct smtp_tx *tx)
{
	struct fsink *f = arg;
	(void)tx;
	if (f->pend) {
		f->pending++;
		return SMTP_SINK_PENDING;
	}
	return SMTP_R_QUEUED;
}

static void fs_abort(void *arg, struct smtp_tx *tx)
{
	struct fsink *f = arg;
	(void)tx;
	if (f->pending)
		f->pending--;
}

static const struct smtp_sink_ops fsink_ops = { fs_begin, fs_chunk, fs_end, fs_abort };

static void check_output(struct smtp_session *s)
{
	const uint8_t *p;
	size_t n = smtp_server_output(s, &p);
	size_t i = 0;
	while (i < n) {
		const uint8_t *eol = memmem(p + i, n - i, "\r\n", 2);
		CHECK(eol != NULL);
		size_t len = (size_t)(eol - (p + i));
		CHECK(len >= 4 && len <= 510);
		for (int k = 0; k < 3; k++)
			CHECK(p[i + k] >= '0' && p[i + k] <= '9');
		CHECK(p[i + 3] == ' ' || p[i + 3] == '-');
		for (size_t k = 0; k < len; k++)
			CHECK(p[i + k] >= 0x20 && p[i + k] < 0x7f);
		i += len + 2;
	}
	smtp_server_output_done(s, n);
}

static void run_session(uint8_t flags, const uint8_t *p, size_t n, struct chunker ch)
{
	static struct smtp_server_ctx ctx;
	struct smtp_server_config cfg;
	struct fsink fs = { .pend = flags & 0x04 };
	smtp_server_config_default(&cfg);
	cfg.hostname = "mx.example.com";
	cfg.max_message_size = 4096;
	cfg.max_rcpts = 4;
	cfg.envelope_size = 2048;
	cfg.max_errors = 1000;
	cfg.normalize_bare_eol = flags & 0x01;
	cfg.forbid_unauth_pipelining = flags & 0x02;
	if (flags & 0x08)
		cfg.features |= SMTP_F_BINARYMIME;
	cfg.sink = &fsink_ops;
	cfg.sink_arg = &fs;

	struct smtp_peer peer = { .family = 4, .addr = { 203, 0, 113, 5 } };
	uint64_t now = 1000;
	struct smtp_session *s = smtp_server_new(&cfg, &ctx, &peer, 0, now);
	CHECK(s != NULL);
	check_output(s);

	uint8_t kept[1 << 16];
	size_t kept_len = 0, off = 0;
	unsigned rounds = 0;
	while ((off < n || kept_len) && rounds++ < 100000) {
		if (kept_len == 0) {
			size_t len = next_chunk(&ch, n - off);
			memcpy(kept, p + off, len);
			kept_len = len;
			off += len;
		}
		uint8_t *piece = malloc(kept_len);
		if (!piece)
			break;
		memcpy(piece, kept, kept_len);
		size_t used = smtp_server_input(s, piece, kept_len, now);
		free(piece);
		CHECK(used <= kept_len);
		memmove(kept, kept + used, kept_len - used);
		kept_len -= used;
		check_output(s);
		unsigned ev = smtp_server_events(s);
		if (ev & SMTP_EV_CLOSE)
			break;
		if (ev & SMTP_EV_PENDING) {
			smtp_server_tx_done(s, (flags & 0x10) ? SMTP_R_LOCAL_ERROR : SMTP_R_QUEUED,
					    now);
			fs.pending--;
			check_output(s);
		}
		if (ev & SMTP_EV_STARTTLS)
			smtp_server_tls_started(s, now);
		now += (flags & 0x20) ? 61000 : 10;
		if (smtp_server_deadline(s) <= now)
			smtp_server_timeout(s, now);
		check_output(s);
	}
	smtp_server_free(s);
	CHECK(fs.pending == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	uint8_t flags = data[0];
	size_t k = data[1] % 8;
	if (size < 2 + k)
		return 0;
	struct chunker ch = { .sizes = data + 2, .k = k };
	const uint8_t *p = data + 2 + k;
	size_t n = size - 2 - k;
	if (n > 60000)
		n = 60000;

	for (int mode = SMTP_DATA_DOT; mode <= SMTP_DATA_BINARY; mode++) {
		scan_both_ways(mode, false, p, n, ch);
		scan_both_ways(mode, true, p, n, ch);
	}
	run_session(flags, p, n, ch);
	return 0;
}
