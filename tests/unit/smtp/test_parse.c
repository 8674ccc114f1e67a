/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The SMTP command parser against the golden vectors in
 * tests/vectors/smtp/parse.{in,ref}, every input placed right before a guard
 * page. Set SMTP_VECTORS_WRITE=1 to write parse.ref.new next to parse.ref
 * (review it line by line before renaming it: the ref is the spec).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "dataplane/smtp/parse.h"
#include "guard.h"

#ifndef VECTORS_DIR
#error "meson passes VECTORS_DIR (tests/vectors/smtp)"
#endif

struct vector {
	char *text; /* the line as written in parse.in */
	uint8_t *bytes;
	size_t len;
	unsigned flags;
};

static struct vector vectors[512];
static size_t n_vectors;

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static void load_vectors(void)
{
	FILE *f = fopen(VECTORS_DIR "/parse.in", "r");
	cr_assert_not_null(f, "cannot open %s", VECTORS_DIR "/parse.in");
	char *line = NULL;
	size_t cap = 0;
	ssize_t got;
	n_vectors = 0;
	while ((got = getline(&line, &cap, f)) >= 0) {
		if (got > 0 && line[got - 1] == '\n')
			line[--got] = '\0';
		if (line[0] == '#')
			continue;
		cr_assert_lt(n_vectors, sizeof(vectors) / sizeof(vectors[0]));
		struct vector *v = &vectors[n_vectors++];
		v->text = strdup(line);
		const char *p = line;
		bool partial = false;
		for (;;) {
			if (strncmp(p, "@partial", 8) == 0 && (p[8] == ' ' || p[8] == '\0')) {
				partial = true;
				p += p[8] ? 9 : 8;
			} else if (strncmp(p, "@utf8 ", 6) == 0) {
				v->flags |= SMTP_PARSE_F_UTF8;
				p += 6;
			} else {
				break;
			}
		}
		v->bytes = malloc(strlen(p) + 3);
		size_t n = 0;
		while (*p) {
			if (*p != '\\') {
				v->bytes[n++] = (uint8_t)*p++;
				continue;
			}
			p++;
			switch (*p) {
			case 'r':
				v->bytes[n++] = '\r';
				p++;
				break;
			case 'n':
				v->bytes[n++] = '\n';
				p++;
				break;
			case 't':
				v->bytes[n++] = '\t';
				p++;
				break;
			case '0':
				v->bytes[n++] = 0;
				p++;
				break;
			case '\\':
				v->bytes[n++] = '\\';
				p++;
				break;
			case 'x': {
				int hi = hexval(p[1]), lo = hexval(p[2]);
				cr_assert(hi >= 0 && lo >= 0, "bad \\x escape in: %s", v->text);
				v->bytes[n++] = (uint8_t)(hi << 4 | lo);
				p += 3;
				break;
			}
			default:
				cr_assert_fail("unknown escape in: %s", v->text);
			}
		}
		if (!partial) {
			v->bytes[n++] = '\r';
			v->bytes[n++] = '\n';
		}
		v->len = n;
	}
	free(line);
	fclose(f);
	cr_assert_gt(n_vectors, 150, "at least 150 vectors");
}

/* Appends S[0..N) to OUT with non-printable octets as \xHH. */
static void put_esc(char **o, const uint8_t *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\\')
			*(*o)++ = (char)s[i];
		else
			*o += sprintf(*o, "\\x%02x", s[i]);
	}
}

static void put(char **o, const char *s)
{
	*o += sprintf(*o, "%s", s);
}

static void put_str(char **o, const char *key, struct smtp_str v)
{
	put(o, key);
	put_esc(o, v.p, v.len);
}

/* One line describing what the parser made of a vector. */
static void dump(char *out, ssize_t r, size_t total, const struct smtp_cmd *c)
{
	char *o = out;
	if (r == SMTP_PARSE_PARTIAL) {
		strcpy(out, "PARTIAL");
		return;
	}
	put(&o, smtp_verb_names[c->verb]);
	if (c->err != SMTP_PE_OK) {
		put(&o, " err=");
		put(&o, smtp_parse_err_names[c->err]);
		if (c->bad_param.len)
			put_str(&o, " param=", c->bad_param);
	} else {
		switch (c->verb) {
		case SMTP_V_HELO:
		case SMTP_V_EHLO:
			put_str(&o, " helo=", c->helo);
			break;
		case SMTP_V_MAIL:
		case SMTP_V_RCPT:
			put(&o, " path=<");
			put_esc(&o, c->path.mailbox.p, c->path.mailbox.len);
			put(&o, ">");
			if (c->path.local.len)
				put_str(&o, " local=", c->path.local);
			if (c->path.domain.len)
				put_str(&o, " domain=", c->path.domain);
			if (c->path.flags & SMTP_PATH_NULL)
				put(&o, " +null");
			if (c->path.flags & SMTP_PATH_POSTMASTER)
				put(&o, " +postmaster");
			if (c->path.flags & SMTP_PATH_QUOTED)
				put(&o, " +quoted");
			if (c->path.flags & SMTP_PATH_LITERAL)
				put(&o, " +literal");
			if (c->path.flags & SMTP_PATH_UTF8)
				put(&o, " +utf8");
			if (c->path.flags & SMTP_PATH_SOURCE_ROUTE)
				put(&o, " +route");
			if (c->params & SMTP_P_SIZE)
				o += sprintf(o, " size=%llu", (unsigned long long)c->size);
			if (c->params & SMTP_P_BODY)
				put(&o, c->body == SMTP_BODY_7BIT     ? " body=7BIT" :
					c->body == SMTP_BODY_8BITMIME ? " body=8BITMIME" :
									" body=BINARYMIME");
			if (c->params & SMTP_P_SMTPUTF8)
				put(&o, " smtputf8");
			if (c->params & SMTP_P_RET)
				put(&o, c->ret == SMTP_RET_FULL ? " ret=FULL" : " ret=HDRS");
			if (c->params & SMTP_P_ENVID)
				put_str(&o, " envid=", c->envid);
			if (c->params & SMTP_P_AUTH)
				put_str(&o, " auth=", c->auth);
			if (c->params & SMTP_P_NOTIFY) {
				put(&o, " notify=");
				const char *sep = "";
				if (c->notify & SMTP_NOTIFY_NEVER)
					put(&o, "NEVER");
				if (c->notify & SMTP_NOTIFY_SUCCESS)
					o += sprintf(o, "%sSUCCESS", sep), sep = ",";
				if (c->notify & SMTP_NOTIFY_FAILURE)
					o += sprintf(o, "%sFAILURE", sep), sep = ",";
				if (c->notify & SMTP_NOTIFY_DELAY)
					o += sprintf(o, "%sDELAY", sep);
			}
			if (c->params & SMTP_P_ORCPT) {
				put_str(&o, " orcpt=", c->orcpt_type);
				put_str(&o, ";", c->orcpt_addr);
			}
			break;
		case SMTP_V_BDAT:
			o += sprintf(o, " size=%llu", (unsigned long long)c->chunk_size);
			if (c->last)
				put(&o, " last");
			break;
		case SMTP_V_AUTH:
			put_str(&o, " mech=", c->mech);
			if (c->initial.len)
				put_str(&o, " ir=", c->initial);
			break;
		default:
			if (c->args.len)
				put_str(&o, " args=", c->args);
		}
	}
	if ((size_t)r != total)
		o += sprintf(o, " len=%zd", r);
	*o = '\0';
}

Test(parse, golden_vectors_match_parse_ref_on_guard_pages)
{
	struct guard g = { 0 };
	char out[4096];
	load_vectors();

	FILE *w = NULL;
	if (getenv("SMTP_VECTORS_WRITE"))
		w = fopen(VECTORS_DIR "/parse.ref.new", "w");
	FILE *ref = fopen(VECTORS_DIR "/parse.ref", "r");
	cr_assert(w || ref, "cannot open %s", VECTORS_DIR "/parse.ref");
	char *line = NULL;
	size_t cap = 0;
	unsigned bad = 0;

	for (size_t i = 0; i < n_vectors; i++) {
		const struct vector *v = &vectors[i];
		const uint8_t *p = guard_place(&g, v->bytes, v->len);
		struct smtp_cmd c;
		memset(&c, 0xa5, sizeof(c)); /* a partial parse must leave it alone */
		ssize_t r = smtp_parse_cmd(p, v->len, v->flags, &c);
		dump(out, r, v->len, &c);
		if (w)
			fprintf(w, "%s\n", out);
		if (!ref)
			continue;
		ssize_t got = getline(&line, &cap, ref);
		cr_assert_geq(got, 0, "parse.ref ends before vector %zu: %s", i + 1, v->text);
		if (got > 0 && line[got - 1] == '\n')
			line[--got] = '\0';
		if (strcmp(line, out) != 0) {
			bad++;
			cr_log_error("vector %zu: %s\n  expected: %s\n  got:      %s", i + 1,
				     v->text, line, out);
		}
	}
	if (ref) {
		cr_assert_eq(getline(&line, &cap, ref), -1,
			     "parse.ref has more lines than vectors");
		fclose(ref);
	}
	if (w)
		fclose(w);
	free(line);
	guard_release(&g);
	cr_assert_eq(bad, 0, "%u of %zu vectors differ from parse.ref", bad, n_vectors);
}

Test(parse, every_prefix_of_a_vector_is_partial_and_never_overreads)
{
	struct guard g = { 0 };
	load_vectors();
	for (size_t i = 0; i < n_vectors; i++) {
		const struct vector *v = &vectors[i];
		struct smtp_cmd c;
		ssize_t whole =
			smtp_parse_cmd(guard_place(&g, v->bytes, v->len), v->len, v->flags, &c);
		for (size_t n = 0; n < v->len; n++) {
			const uint8_t *p = guard_place(&g, v->bytes, n);
			ssize_t r = smtp_parse_cmd(p, n, v->flags, &c);
			if (whole > 0 && n >= (size_t)whole)
				cr_assert_eq(r, whole, "vector %s: prefix %zu", v->text, n);
			else
				cr_assert_eq(r, SMTP_PARSE_PARTIAL, "vector %s: prefix %zu",
					     v->text, n);
		}
	}
	guard_release(&g);
}

Test(parse, a_line_ends_only_at_crlf)
{
	struct smtp_cmd c;
	const uint8_t a[] = "NOOP\nNOOP\rNOOP\r\n";
	cr_assert_eq(smtp_parse_cmd(a, sizeof(a) - 1, 0, &c), (ssize_t)sizeof(a) - 1);
	cr_assert_eq(c.err, SMTP_PE_BARE_LF);
	const uint8_t b[] = "NOOP\n";
	cr_assert_eq(smtp_parse_cmd(b, sizeof(b) - 1, 0, &c), SMTP_PARSE_PARTIAL);
}

Test(parse, tokens_are_slices_of_the_input)
{
	struct smtp_cmd c;
	const uint8_t a[] = "MAIL FROM:<user@example.com> ENVID=QQ1\r\n";
	cr_assert_eq(smtp_parse_cmd(a, sizeof(a) - 1, 0, &c), (ssize_t)sizeof(a) - 1);
	cr_assert_eq(c.path.mailbox.p, a + 11);
	cr_assert_eq(c.path.mailbox.len, 16);
	cr_assert_eq(c.envid.p, a + 35);
}

Test(parse, utf8_validator_follows_rfc_3629)
{
	static const struct {
		const char *s;
		bool ok;
	} t[] = {
		{ "plain", true },
		{ "\xc3\xa9", true },
		{ "\xe2\x82\xac", true },
		{ "\xf0\x9f\x98\x80", true },
		{ "\xf4\x8f\xbf\xbf", true },  /* U+10FFFF */
		{ "\xc0\x80", false },	       /* overlong NUL */
		{ "\xc1\xbf", false },	       /* overlong */
		{ "\xe0\x9f\xbf", false },     /* overlong 3-octet */
		{ "\xf0\x8f\xbf\xbf", false }, /* overlong 4-octet */
		{ "\xed\xa0\x80", false },     /* U+D800 */
		{ "\xed\xbf\xbf", false },     /* U+DFFF */
		{ "\xf4\x90\x80\x80", false }, /* U+110000 */
		{ "\xf5\x80\x80\x80", false },
		{ "\xff", false },
		{ "\x80", false },
		{ "\xc3", false }, /* truncated */
		{ "\xe2\x82", false },
		{ "\xc3\x28", false }, /* bad continuation */
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		cr_expect_eq(smtp_utf8_valid((const uint8_t *)t[i].s, strlen(t[i].s)), t[i].ok,
			     "case %zu", i);
}

Test(parse, ipv4_literals_with_leading_zeros_are_refused)
{
	/* "010" reads as octal 8 to inet_aton(): two parsers would disagree on the host */
	const char *lit = "[198.51.100.010]";
	cr_assert_not(smtp_addr_literal_valid((const uint8_t *)lit, strlen(lit)));
	lit = "[198.51.100.0]";
	cr_assert(smtp_addr_literal_valid((const uint8_t *)lit, strlen(lit)));
}
