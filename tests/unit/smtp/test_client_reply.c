/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The client's reply-line parser, EHLO keyword reader and xtext codec
 * against the golden vectors in tests/vectors/smtp/client/reply.{in,ref},
 * every input placed right before a guard page; then the properties the
 * session relies on. Set SMTP_VECTORS_WRITE=1 to write reply.ref.new next
 * to reply.ref (review it line by line before renaming it: the ref is the
 * spec).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "dataplane/smtp/client_reply.h"
#include "guard.h"

#ifndef VECTORS_DIR
#error "meson passes VECTORS_DIR (tests/vectors/smtp)"
#endif
#define IN_FILE	 VECTORS_DIR "/client/reply.in"
#define REF_FILE VECTORS_DIR "/client/reply.ref"

enum kind {
	K_LINE,
	K_EHLO,
	K_XTEXT,
	K_UNXTEXT
};

struct vector {
	enum kind kind;
	uint8_t bytes[1024];
	size_t len;
};

static struct vector vectors[256];
static size_t n_vectors;

static int hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

static void load_vectors(void)
{
	static const struct {
		const char *prefix;
		enum kind kind;
	} prefixes[] = { { "@ehlo", K_EHLO }, { "@xtext", K_XTEXT }, { "@unxtext", K_UNXTEXT } };
	FILE *f = fopen(IN_FILE, "r");
	cr_assert_not_null(f, "cannot open %s", IN_FILE);
	char line[2048];
	n_vectors = 0;
	while (fgets(line, sizeof(line), f)) {
		size_t l = strlen(line);
		if (l && line[l - 1] == '\n')
			line[--l] = '\0';
		if (line[0] == '#')
			continue;
		cr_assert_lt(n_vectors, sizeof(vectors) / sizeof(vectors[0]));
		struct vector *v = &vectors[n_vectors++];
		const char *p = line;
		v->kind = K_LINE;
		for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
			size_t pl = strlen(prefixes[i].prefix);
			if (strncmp(p, prefixes[i].prefix, pl) == 0 && (p[pl] == ' ' || !p[pl])) {
				v->kind = prefixes[i].kind;
				p += p[pl] ? pl + 1 : pl;
			}
		}
		size_t n = 0;
		while (*p) {
			cr_assert_lt(n, sizeof(v->bytes));
			if (*p != '\\') {
				v->bytes[n++] = (uint8_t)*p++;
				continue;
			}
			switch (p[1]) {
			case 'r':
				v->bytes[n++] = '\r';
				break;
			case 'n':
				v->bytes[n++] = '\n';
				break;
			case 't':
				v->bytes[n++] = '\t';
				break;
			case '0':
				v->bytes[n++] = 0;
				break;
			case '\\':
				v->bytes[n++] = '\\';
				break;
			case 'x': {
				int hi = hexval(p[2]), lo = hexval(p[3]);
				cr_assert(hi >= 0 && lo >= 0, "bad \\x escape in: %s", line);
				v->bytes[n++] = (uint8_t)(hi << 4 | lo);
				p += 2;
				break;
			}
			default:
				cr_assert_fail("unknown escape in: %s", line);
			}
			p += 2;
		}
		v->len = n;
	}
	fclose(f);
	cr_assert_gt(n_vectors, 80, "at least 80 vectors");
}

static void put_esc(char **o, const uint8_t *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\\' && s[i] != '"')
			*(*o)++ = (char)s[i];
		else
			*o += sprintf(*o, "\\x%02x", s[i]);
	}
	**o = '\0';
}

static void put_str(char **o, const char *key, struct smtp_str v)
{
	*o += sprintf(*o, "%s\"", key);
	put_esc(o, v.p, v.len);
	*o += sprintf(*o, "\"");
}

static const char *ext_name(unsigned bit)
{
	switch (bit) {
	case SMTP_EXT_PIPELINING:
		return "PIPELINING";
	case SMTP_EXT_SIZE:
		return "SIZE";
	case SMTP_EXT_8BITMIME:
		return "8BITMIME";
	case SMTP_EXT_SMTPUTF8:
		return "SMTPUTF8";
	case SMTP_EXT_CHUNKING:
		return "CHUNKING";
	case SMTP_EXT_DSN:
		return "DSN";
	case SMTP_EXT_STARTTLS:
		return "STARTTLS";
	case SMTP_EXT_ENHANCEDSTATUSCODES:
		return "ENHANCEDSTATUSCODES";
	default:
		return "none";
	}
}

/* What the code under test made of V, as one line. */
static void dump(char *out, const struct vector *v, const uint8_t *p)
{
	char *o = out;
	switch (v->kind) {
	case K_LINE: {
		struct smtp_reply_line l;
		enum smtp_reply_line_err e = smtp_reply_parse_line(p, v->len, &l);
		if (e != SMTP_RLE_OK) {
			sprintf(o, "%s", smtp_reply_line_err_names[e]);
			return;
		}
		o += sprintf(o, "code=%u %s", l.code, l.more ? "more" : "last");
		if (l.esc.len)
			put_str(&o, " esc=", l.esc);
		put_str(&o, " msg=", l.msg);
		/* the slices are views of the input */
		cr_assert(l.text.len == 0 || l.text.p == p + 4);
		cr_assert(l.msg.len == 0 || (l.msg.p >= p && l.msg.p + l.msg.len == p + v->len));
		return;
	}
	case K_EHLO: {
		uint64_t size = 7777;
		unsigned bit = smtp_ehlo_keyword(p, v->len, &size);
		o += sprintf(o, "ext=%s", ext_name(bit));
		if (bit == SMTP_EXT_SIZE)
			sprintf(o, " size=%llu", (unsigned long long)size);
		else
			cr_assert_eq(size, 7777, "size touched for another keyword");
		return;
	}
	case K_XTEXT: {
		char x[3 * sizeof(v->bytes)];
		ssize_t n = smtp_xtext_encode(p, v->len, x, sizeof(x));
		cr_assert_geq(n, 0);
		o += sprintf(o, "xtext=\"");
		put_esc(&o, (const uint8_t *)x, (size_t)n);
		sprintf(o, "\"");
		/* and back */
		uint8_t back[sizeof(v->bytes)];
		ssize_t b = smtp_xtext_decode((const uint8_t *)x, (size_t)n, back, sizeof(back));
		cr_assert_eq(b, (ssize_t)v->len);
		cr_assert(memcmp(back, p, v->len) == 0);
		return;
	}
	case K_UNXTEXT: {
		uint8_t d[sizeof(v->bytes)];
		ssize_t n = smtp_xtext_decode(p, v->len, d, sizeof(d));
		if (n < 0) {
			sprintf(o, "not xtext");
			return;
		}
		o += sprintf(o, "decoded=\"");
		put_esc(&o, d, (size_t)n);
		sprintf(o, "\"");
		return;
	}
	}
}

Test(vectors, reply_lines_keywords_and_xtext_match_the_reference)
{
	load_vectors();
	struct guard g = { 0 };
	static char got[256][4096];
	for (size_t i = 0; i < n_vectors; i++) {
		const uint8_t *p = guard_place(&g, vectors[i].bytes, vectors[i].len);
		dump(got[i], &vectors[i], p);
	}
	guard_release(&g);

	if (getenv("SMTP_VECTORS_WRITE")) {
		FILE *w = fopen(REF_FILE ".new", "w");
		cr_assert_not_null(w);
		for (size_t i = 0; i < n_vectors; i++)
			fprintf(w, "%s\n", got[i]);
		fclose(w);
	}
	FILE *f = fopen(REF_FILE, "r");
	cr_assert_not_null(f, "cannot open %s (SMTP_VECTORS_WRITE=1 writes a draft)", REF_FILE);
	char want[4096];
	size_t i = 0;
	while (fgets(want, sizeof(want), f)) {
		size_t l = strlen(want);
		if (l && want[l - 1] == '\n')
			want[--l] = '\0';
		cr_assert_lt(i, n_vectors, "reply.ref has more lines than reply.in has vectors");
		cr_expect_str_eq(got[i], want, "vector %zu: got %s, want %s", i + 1, got[i], want);
		i++;
	}
	fclose(f);
	cr_assert_eq(i, n_vectors, "reply.ref has %zu lines for %zu vectors", i, n_vectors);
}

/* ---- properties ---- */

Test(reply_line, every_prefix_of_a_line_is_judged_without_reading_past_it)
{
	const char *line = "550-5.1.1 <user@example.com>: Recipient address rejected";
	struct guard g = { 0 };
	for (size_t n = 0; n <= strlen(line); n++) {
		const uint8_t *p = guard_place(&g, line, n);
		struct smtp_reply_line l;
		enum smtp_reply_line_err e = smtp_reply_parse_line(p, n, &l);
		if (n < 3)
			cr_assert_eq(e, SMTP_RLE_BAD_CODE, "prefix %zu", n);
		else
			cr_assert_eq(e, SMTP_RLE_OK, "prefix %zu", n);
		if (n >= 14)
			cr_assert_eq(l.esc.len, 5, "prefix %zu", n);
	}
	guard_release(&g);
}

Test(reply_line, every_octet_value_after_the_code_is_accepted_or_framing)
{
	for (unsigned v = 0; v < 256; v++) {
		uint8_t line[] = { '2', '5', '0', ' ', 'a', (uint8_t)v, 'b' };
		struct smtp_reply_line l;
		enum smtp_reply_line_err e = smtp_reply_parse_line(line, sizeof(line), &l);
		if (v == '\r')
			cr_assert_eq(e, SMTP_RLE_BARE_CR);
		else if (v == '\n')
			cr_assert_eq(e, SMTP_RLE_BARE_LF);
		else
			cr_assert_eq(e, SMTP_RLE_OK, "octet %u", v);
	}
}

Test(reply_line, only_codes_200_to_559_with_second_digit_0_to_5_parse)
{
	unsigned ok = 0;
	for (unsigned code = 0; code < 1000; code++) {
		char line[8];
		snprintf(line, sizeof(line), "%03u x", code);
		struct smtp_reply_line l;
		bool good = smtp_reply_parse_line((const uint8_t *)line, 5, &l) == SMTP_RLE_OK;
		bool want = code >= 200 && code <= 559 && code / 10 % 10 <= 5;
		cr_assert_eq(good, want, "code %03u", code);
		if (good) {
			cr_assert_eq(l.code, code);
			ok++;
		}
	}
	cr_assert_eq(ok, 4 * 60);
}

Test(xtext, encoding_fails_cleanly_when_the_output_is_too_small)
{
	const uint8_t in[] = "a+b";
	char out[8];
	cr_assert_eq(smtp_xtext_encode(in, 3, out, 5), 5);
	cr_assert_eq(smtp_xtext_encode(in, 3, out, 4), -1);
	cr_assert_eq(smtp_xtext_encode(in, 3, out, 0), -1);
	uint8_t d[4];
	cr_assert_eq(smtp_xtext_decode((const uint8_t *)"a+2Bb", 5, d, 3), 3);
	cr_assert_eq(smtp_xtext_decode((const uint8_t *)"a+2Bb", 5, d, 2), -1);
}

Test(xtext, every_octet_survives_a_round_trip)
{
	uint8_t in[256], back[256];
	char x[768];
	for (unsigned i = 0; i < 256; i++)
		in[i] = (uint8_t)i;
	ssize_t n = smtp_xtext_encode(in, sizeof(in), x, sizeof(x));
	cr_assert_gt(n, 0);
	cr_assert(smtp_xtext_valid((const uint8_t *)x, (size_t)n));
	cr_assert_eq(smtp_xtext_decode((const uint8_t *)x, (size_t)n, back, sizeof(back)), 256);
	cr_assert(memcmp(in, back, sizeof(in)) == 0);
}
