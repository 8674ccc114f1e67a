/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The DATA/BDAT content scanner: dot-stuffing, the end of data, line
 * endings, line length, Received: counting -- and the SMTP smuggling class:
 * every bare-CR/LF variant of the end-of-data marker, split into 2 and 3
 * chunks at every position, gives the same result as unsplit and never ends
 * the message early. Inputs sit right before a guard page.
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "dataplane/smtp/data.h"
#include "guard.h"

struct result {
	uint8_t out[8192];
	size_t out_len;
	size_t consumed; /* up to and including the end of data */
	bool done;
	uint8_t flags;
	uint32_t received;
};

static void collect(void *arg, const uint8_t *p, size_t n)
{
	struct result *r = arg;
	cr_assert_leq(r->out_len + n, sizeof(r->out));
	memcpy(r->out + r->out_len, p, n);
	r->out_len += n;
}

/*
 * Scans MSG[0..LEN) cut at CUTS (ascending offsets, NCUTS of them), each
 * piece on its own guard page, as the session would: stop at the end of data.
 */
static void scan_split(struct result *r, enum smtp_data_mode mode, bool normalize,
		       const uint8_t *msg, size_t len, const size_t *cuts, int ncuts)
{
	struct smtp_data_scan d;
	struct guard g = { 0 };
	memset(r, 0, sizeof(*r));
	smtp_data_init(&d, mode, 1000, normalize);
	size_t from = 0;
	for (int k = 0; k <= ncuts && !d.done; k++) {
		size_t to = k < ncuts ? cuts[k] : len;
		const uint8_t *p = guard_place(&g, msg + from, to - from);
		size_t used = smtp_data_scan(&d, p, to - from, collect, r);
		r->consumed += used;
		if (!d.done)
			cr_assert_eq(used, to - from,
				     "took less than offered without the end of data");
		from = to;
	}
	if (mode != SMTP_DATA_DOT && !d.done)
		smtp_data_end(&d, collect, r);
	r->done = d.done;
	r->flags = d.flags;
	r->received = d.received;
	guard_release(&g);
}

static void scan_all(struct result *r, enum smtp_data_mode mode, bool normalize, const char *msg,
		     size_t len)
{
	scan_split(r, mode, normalize, (const uint8_t *)msg, len, NULL, 0);
}

#define S(lit) lit, sizeof(lit) - 1

static void assert_same(const struct result *a, const struct result *b, const char *what)
{
	cr_assert_eq(a->done, b->done, "%s: done differs", what);
	cr_assert_eq(a->consumed, b->consumed, "%s: end of data found at %zu, unsplit at %zu", what,
		     b->consumed, a->consumed);
	cr_assert_eq(a->flags, b->flags, "%s: flags %#x vs %#x", what, b->flags, a->flags);
	cr_assert_eq(a->received, b->received, "%s", what);
	cr_assert_eq(a->out_len, b->out_len, "%s: content length %zu vs %zu", what, b->out_len,
		     a->out_len);
	cr_assert(memcmp(a->out, b->out, a->out_len) == 0, "%s: content differs", what);
}

/* The end-of-data look-alikes of the SMTP smuggling research (SEC Consult, 2023) and more. */
static const struct {
	const char *seq;
	size_t len;
} smuggle[] = {
	{ S("\n.\n") },		{ S("\n.\r\n") },	{ S("\r.\r") },		{ S("\r\n.\n") },
	{ S("\r\n.\r") },	{ S("\r.\r\n") },	{ S("\n.\r") },		{ S("\r.\n") },
	{ S("\r\n\x00.\r\n") }, { S("\r\n.\x00\r\n") }, { S("\r\r\n.\r\r\n") }, { S("\n\n.\n\n") },
	{ S("\r\n.\n\r\n") },	{ S("\r\n.\r\r\n") },	{ S("\r\n \r\n.\r") },
};

/* A message with SEQ inside, then a smuggled second transaction, then the real end. */
static size_t build(uint8_t *buf, const char *seq, size_t seqlen)
{
	static const char head[] = "Subject: hi\r\n\r\nfirst";
	static const char tail[] =
		"MAIL FROM:<evil@example.com>\r\nRCPT TO:<victim@example.com>\r\n"
		"DATA\r\nspoofed\r\n.\r\n";
	size_t n = 0;
	memcpy(buf + n, head, sizeof(head) - 1);
	n += sizeof(head) - 1;
	memcpy(buf + n, seq, seqlen);
	n += seqlen;
	memcpy(buf + n, tail, sizeof(tail) - 1);
	n += sizeof(tail) - 1;
	return n;
}

static void smuggling_case(bool normalize)
{
	uint8_t msg[512];
	for (size_t v = 0; v < sizeof(smuggle) / sizeof(smuggle[0]); v++) {
		size_t len = build(msg, smuggle[v].seq, smuggle[v].len);
		struct result whole, part;
		scan_split(&whole, SMTP_DATA_DOT, normalize, msg, len, NULL, 0);

		/* one message, ended only by the real CRLF.CRLF at the very end */
		cr_assert(whole.done, "variant %zu: no end of data", v);
		cr_assert_eq(whole.consumed, len, "variant %zu: message ended early at %zu of %zu",
			     v, whole.consumed, len);
		if (normalize)
			cr_assert(whole.flags & (SMTP_DATA_NORMALIZED | SMTP_DATA_NUL),
				  "variant %zu: nothing normalised or refused", v);
		else
			cr_assert(whole.flags &
					  (SMTP_DATA_BARE_LF | SMTP_DATA_BARE_CR | SMTP_DATA_NUL),
				  "variant %zu: not refused", v);

		for (size_t a = 0; a <= len; a++) {
			size_t cuts[1] = { a };
			scan_split(&part, SMTP_DATA_DOT, normalize, msg, len, cuts, 1);
			assert_same(&whole, &part, "2-way split");
		}
		for (size_t a = 0; a <= len; a++)
			for (size_t b = a; b <= len; b++) {
				size_t cuts[2] = { a, b };
				scan_split(&part, SMTP_DATA_DOT, normalize, msg, len, cuts, 2);
				assert_same(&whole, &part, "3-way split");
			}
	}
}

Test(data, smuggled_end_of_data_never_ends_the_message_at_any_split)
{
	smuggling_case(false);
}

Test(data, normalised_bare_line_ends_never_end_the_message_at_any_split)
{
	smuggling_case(true);
}

Test(data, normalising_rewrites_bare_cr_and_lf_to_crlf_without_ending_lines)
{
	struct result r;
	/*
	 * ".\n" after a real CRLF: stuffing dot dropped, bare LF rewritten. The
	 * ".\r\n" after that rewritten LF is not at a line start: content. Only
	 * the last ".\r\n", after a real CRLF, ends the data.
	 */
	scan_all(&r, SMTP_DATA_DOT, true, S("a\nb\rc\r\n.\n.\r\n.\r\n"));
	cr_assert(r.done);
	const char want[] = "a\r\nb\r\nc\r\n\r\n.\r\n";
	cr_assert_eq(r.out_len, sizeof(want) - 1);
	cr_assert(memcmp(r.out, want, r.out_len) == 0);
	cr_assert(r.flags & SMTP_DATA_NORMALIZED);
	cr_assert_not(r.flags & (SMTP_DATA_BARE_LF | SMTP_DATA_BARE_CR));
}

Test(data, end_of_data_is_only_crlf_dot_crlf)
{
	struct result r;
	scan_all(&r, SMTP_DATA_DOT, false, S("line\r\n.\r\nNEXT COMMAND\r\n"));
	cr_assert(r.done);
	cr_assert_eq(r.consumed, 9, "stops right after the marker: the rest is commands");
	cr_assert_eq(r.out_len, 6);
	cr_assert(memcmp(r.out, "line\r\n", 6) == 0, "the last line's CRLF belongs to the message");
}

Test(data, an_empty_message_ends_at_the_first_dot_line)
{
	struct result r;
	scan_all(&r, SMTP_DATA_DOT, false, S(".\r\n"));
	cr_assert(r.done);
	cr_assert_eq(r.out_len, 0);
}

Test(data, dot_stuffing_is_undone)
{
	struct result r;
	scan_all(&r, SMTP_DATA_DOT, false, S("..leading\r\n...\r\n..\r\nmid.dle\r\n.\r\n"));
	cr_assert(r.done);
	const char want[] = ".leading\r\n..\r\n.\r\nmid.dle\r\n";
	cr_assert_eq(r.out_len, sizeof(want) - 1);
	cr_assert(memcmp(r.out, want, r.out_len) == 0);
	cr_assert_eq(r.flags, 0);
}

Test(data, a_dot_held_at_a_chunk_end_is_resolved_by_the_next_chunk)
{
	const char msg[] = "a\r\n..b\r\n.\r\n";
	struct result whole, part;
	scan_all(&whole, SMTP_DATA_DOT, false, msg, sizeof(msg) - 1);
	for (size_t a = 0; a <= sizeof(msg) - 1; a++) {
		size_t cuts[1] = { a };
		scan_split(&part, SMTP_DATA_DOT, false, (const uint8_t *)msg, sizeof(msg) - 1, cuts,
			   1);
		assert_same(&whole, &part, "dot split");
	}
}

Test(data, a_line_of_1000_octets_passes_and_1001_is_refused)
{
	static char msg[2200];
	size_t n = 0;
	memset(msg, 'x', 998);
	n = 998;
	memcpy(msg + n, "\r\n.\r\n", 5);
	n += 5;
	struct result r;
	scan_all(&r, SMTP_DATA_DOT, false, msg, n);
	cr_assert(r.done);
	cr_assert_not(r.flags & SMTP_DATA_LONG_LINE, "998 + CRLF = 1000 is the limit");

	memset(msg, 'x', 999);
	memcpy(msg + 999, "\r\n.\r\n", 5);
	scan_all(&r, SMTP_DATA_DOT, false, msg, 1004);
	cr_assert(r.done);
	cr_assert(r.flags & SMTP_DATA_LONG_LINE);

	/* the transparency dot does not count (RFC 5321 §4.5.3.1.6) */
	msg[0] = '.';
	memset(msg + 1, 'x', 998);
	memcpy(msg + 999, "\r\n.\r\n", 5);
	scan_all(&r, SMTP_DATA_DOT, false, msg, 1004);
	cr_assert_not(r.flags & SMTP_DATA_LONG_LINE);
}

Test(data, received_fields_are_counted_in_the_header_section_only)
{
	const char msg[] = "Received: from a\r\n"
			   "\tby b; Thu, 1 Jan 2026 00:00:00 +0000\r\n"
			   "RECEIVED: from c\r\n"
			   "X-Received: no\r\n"
			   "Received-SPF: no\r\n"
			   "received:x\r\n"
			   "\r\n"
			   "Received: in the body does not count\r\n"
			   ".\r\n";
	struct result whole, part;
	scan_all(&whole, SMTP_DATA_DOT, false, msg, sizeof(msg) - 1);
	cr_assert_eq(whole.received, 3);
	for (size_t a = 0; a <= sizeof(msg) - 1; a++) {
		size_t cuts[1] = { a };
		scan_split(&part, SMTP_DATA_DOT, false, (const uint8_t *)msg, sizeof(msg) - 1, cuts,
			   1);
		assert_same(&whole, &part, "received split");
	}
}

Test(data, bdat_text_has_no_end_marker_and_no_dot_stuffing)
{
	struct result r;
	scan_all(&r, SMTP_DATA_TEXT, false, S("a\r\n.\r\n..b\r\n"));
	cr_assert_not(r.done);
	cr_assert_eq(r.out_len, 11);
	cr_assert_eq(r.flags, 0);
}

Test(data, bdat_text_still_refuses_bare_line_ends_and_nul)
{
	struct result r;
	scan_all(&r, SMTP_DATA_TEXT, false, S("a\nb\r\n"));
	cr_assert(r.flags & SMTP_DATA_BARE_LF);
	scan_all(&r, SMTP_DATA_TEXT, false, S("a\r\nb\r"));
	cr_assert(r.flags & SMTP_DATA_BARE_CR, "a CR as the very last octet is bare");
	scan_all(&r, SMTP_DATA_TEXT, false,
		 S("a\x00"
		   "b\r\n"));
	cr_assert(r.flags & SMTP_DATA_NUL);
}

Test(data, bdat_binary_passes_every_octet_and_still_counts_headers)
{
	const char msg[] = "Received: x\r\nReceived: y\r\n\r\n\x00\r\n.\r\n\n\r";
	struct result r;
	scan_all(&r, SMTP_DATA_BINARY, false, msg, sizeof(msg) - 1);
	cr_assert_eq(r.out_len, sizeof(msg) - 1);
	cr_assert(memcmp(r.out, msg, r.out_len) == 0);
	cr_assert_eq(r.flags, 0);
	cr_assert_eq(r.received, 2);
}

Test(data, once_refused_nothing_more_is_emitted_but_the_end_is_still_found)
{
	struct result r;
	scan_all(&r, SMTP_DATA_DOT, false, S("good\r\nbad\nrest\r\n.\r\nNEXT"));
	cr_assert(r.done);
	cr_assert_eq(r.consumed, 19);
	cr_assert_eq(r.out_len, 9, "only what came before the violation");
	cr_assert(memcmp(r.out, "good\r\nbad", 9) == 0);
}
