/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Dot-stuffing and the end of data (dataplane/smtp/client_stuff.c) against
 * a reference written the slow, obvious way: any split of the input and
 * any size of the output space must give the same bytes, and those bytes
 * must read back, through the server's own DATA scanner, as the content.
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "dataplane/smtp/client_stuff.h"
#include "dataplane/smtp/data.h"
#include "guard.h"

/* The reference: octet by octet, a "." after the start, CR or LF is doubled; then the end. */
static size_t reference(const uint8_t *in, size_t n, bool dot, uint8_t *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (dot && in[i] == '.' && (i == 0 || in[i - 1] == '\r' || in[i - 1] == '\n'))
			out[o++] = '.';
		out[o++] = in[i];
	}
	if (n && !(n >= 2 && in[n - 2] == '\r' && in[n - 1] == '\n')) {
		out[o++] = '\r';
		out[o++] = '\n';
	}
	if (dot) {
		memcpy(out + o, ".\r\n", 3);
		o += 3;
	}
	return o;
}

/*
 * Stuffs IN through smtp_stuff() with the input cut at the offsets in CUTS
 * and an output window of CAP octets at a time (with GUARDED, each window
 * placed right before a guard page: an over-write faults), then the end.
 * Returns the octets written to OUT.
 */
static size_t run(const uint8_t *in, size_t n, bool dot, const size_t *cuts, size_t ncuts,
		  size_t cap, bool guarded, uint8_t *out)
{
	static const uint8_t zeros[1024];
	static uint8_t plain[1024];
	struct smtp_stuff s;
	struct guard g = { 0 };
	size_t o = 0, from = 0;
	cr_assert_leq(cap, sizeof(zeros));
	smtp_stuff_init(&s, dot);
	for (size_t k = 0; k <= ncuts; k++) {
		size_t to = k < ncuts ? cuts[k] : n;
		const uint8_t *piece = in + from;
		size_t left = to - from;
		while (left) {
			uint8_t *win = guarded ? (uint8_t *)guard_place(&g, zeros, cap) : plain;
			size_t w;
			size_t used = smtp_stuff(&s, piece, left, win, cap, &w);
			cr_assert_leq(w, cap);
			cr_assert(used > 0 || cap < 2, "no progress with %zu octets of room", cap);
			memcpy(out + o, win, w);
			o += w;
			piece += used;
			left -= used;
		}
		from = to;
	}
	guard_release(&g);
	uint8_t end[SMTP_STUFF_END_MAX];
	size_t e = smtp_stuff_end(&s, end);
	memcpy(out + o, end, e);
	return o + e;
}

static void check(const char *text, bool dot)
{
	const uint8_t *in = (const uint8_t *)text;
	size_t n = strlen(text);
	uint8_t want[512], got[512];
	size_t wl = reference(in, n, dot, want);
	for (size_t cut = 0; cut <= n; cut++) {
		for (size_t cap = 2; cap <= 9; cap++) {
			size_t gl = run(in, n, dot, &cut, 1, cap, true, got);
			cr_assert(gl == wl && memcmp(got, want, wl) == 0,
				  "\"%s\" cut at %zu, room %zu: got \"%.*s\"", text, cut, cap,
				  (int)gl, got);
		}
	}
}

Test(stuff, dots_at_line_starts_are_doubled_at_every_split_and_room)
{
	check(".", true);
	check("..", true);
	check(".\r\n", true);
	check("a\r\n.\r\n", true);
	check("a\r\n.b\r\n..\r\n.\r\nc.\r\n.", true);
	check("\r\n.\r\n", true);
	check("x.y.z\r\n", true);
	check("a\n.b\r.c\r\n.", true);
	check("no newline", true);
	check("", true);
}

Test(stuff, bdat_content_is_copied_as_it_is_and_only_completed_with_crlf)
{
	check(".\r\n", false);
	check("a\r\n.b", false);
	check("", false);
	check("x\r\n", false);
}

Test(stuff, the_end_marker_depends_only_on_how_the_content_ends)
{
	struct smtp_stuff s;
	uint8_t out[8], end[SMTP_STUFF_END_MAX];
	size_t w;
	smtp_stuff_init(&s, true);
	cr_assert(smtp_stuff_ends_crlf(&s));
	cr_assert_eq(smtp_stuff_end(&s, end), 3);
	smtp_stuff(&s, (const uint8_t *)"\r", 1, out, sizeof(out), &w);
	cr_assert(!smtp_stuff_ends_crlf(&s));
	smtp_stuff(&s, (const uint8_t *)"\n", 1, out, sizeof(out), &w);
	cr_assert(smtp_stuff_ends_crlf(&s));
	smtp_stuff(&s, (const uint8_t *)"\n", 1, out, sizeof(out), &w);
	cr_assert(!smtp_stuff_ends_crlf(&s));
	cr_assert_eq(smtp_stuff_end(&s, end), 5);
	cr_assert(memcmp(end, "\r\n.\r\n", 5) == 0);
}

Test(stuff, a_stuffed_dot_never_splits_across_the_output_room)
{
	struct smtp_stuff s;
	uint8_t out[4];
	size_t w;
	smtp_stuff_init(&s, true);
	cr_assert_eq(smtp_stuff(&s, (const uint8_t *)".x", 2, out, 1, &w), 0);
	cr_assert_eq(w, 0);
	cr_assert_eq(smtp_stuff(&s, (const uint8_t *)".x", 2, out, 2, &w), 1);
	cr_assert_eq(w, 2);
	cr_assert(memcmp(out, "..", 2) == 0);
}

struct sink {
	uint8_t *p;
	size_t n;
};

static void collect(void *arg, const uint8_t *p, size_t n)
{
	struct sink *k = arg;
	memcpy(k->p + k->n, p, n);
	k->n += n;
}

Test(stuff, random_content_reads_back_through_the_server_scanner)
{
	static uint8_t in[20000], wire[45000], back[45000];
	static const char alphabet[] = "..\r\n\r\nab.\r";
	uint64_t x = 0x9e3779b97f4a7c15ull;
	for (int round = 0; round < 300; round++) {
		size_t n = 0, target = (size_t)(x % sizeof(in));
		/* CRLF-only lines (the server engine's guarantee), dots everywhere */
		while (n + 3 < target) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			char ch = alphabet[x % (sizeof(alphabet) - 1)];
			if (ch == '\r' || ch == '\n') {
				in[n++] = '\r';
				in[n++] = '\n';
			} else {
				in[n++] = (uint8_t)ch;
			}
		}
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		size_t cuts[3] = { n / 3, n / 2, n - (n ? 1 : 0) };
		size_t wl = run(in, n, true, cuts, 3, 2 + x % 700, false, wire);
		uint8_t ref[45000];
		cr_assert_eq(reference(in, n, true, ref), wl);
		cr_assert(memcmp(ref, wire, wl) == 0, "round %d", round);

		struct smtp_data_scan d;
		struct sink k = { back, 0 };
		smtp_data_init(&d, SMTP_DATA_DOT, 0, false);
		size_t used = smtp_data_scan(&d, wire, wl, collect, &k);
		cr_assert(d.done, "round %d: no end of data", round);
		cr_assert_eq(used, wl, "round %d: the end of data came early", round);
		cr_assert_eq(d.flags, 0);
		size_t expect = n;
		if (n && !(n >= 2 && in[n - 2] == '\r' && in[n - 1] == '\n'))
			expect += 2;
		cr_assert_eq(k.n, expect, "round %d", round);
		cr_assert(memcmp(back, in, n) == 0, "round %d", round);
	}
}
