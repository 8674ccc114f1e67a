/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Delivery status notifications (dataplane/relay/dsn.c). Every DSN a test
 * makes is taken apart again by the small MIME splitter below (lines,
 * header fields, multipart/report parts, DSN field groups), so structure is
 * checked everywhere; the golden cases are also compared byte for byte with
 * tests/vectors/relay/<name>.ref (stored with LF; the DSN's CRLFs are
 * turned into LF after checking that no bare CR or LF exists). Set
 * RELAY_VECTORS_WRITE=1 to write <name>.ref.new next to each .ref.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <criterion/criterion.h>

#include "dataplane/relay/dsn.h"
#include "dataplane/relay/retry.h"
#include "guard.h"

#ifndef VECTORS_DIR
#error "meson passes VECTORS_DIR (tests/vectors/relay)"
#endif

#define S(x) ((struct smtp_str){ (const uint8_t *)(x), sizeof(x) - 1 })

static struct smtp_str str(const char *s)
{
	return (struct smtp_str){ (const uint8_t *)s, strlen(s) };
}

/* ---- inputs ---- */

#define T_ARRIVAL 1767225600 /* Thu, 01 Jan 2026 00:00:00 +0000 */
#define T_NOW	  (T_ARRIVAL + 3600)
#define T_SEED	  0x5eed0f0dd5eedull
#define QID	  "0KS3E6B2W1V8Q0AZ4NMP"

/* A vector file with LF line ends, returned with CRLF (malloc'd; *LEN set). */
static uint8_t *load_crlf(const char *name, size_t *len)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", VECTORS_DIR, name);
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "cannot open %s", path);
	size_t cap = 1 << 16, n = 0;
	uint8_t *b = malloc(cap);
	int c;
	while ((c = fgetc(f)) != EOF) {
		cr_assert_lt(n + 2, cap, "%s is too big for the test", path);
		if (c == '\n')
			b[n++] = '\r';
		b[n++] = (uint8_t)c;
	}
	fclose(f);
	*len = n;
	return b;
}

static struct dsn_config cfg_default(void)
{
	struct dsn_config c;
	dsn_config_default(&c);
	c.hostname = "mx.example.com";
	return c;
}

/* The usual message: alice's original.txt with the recipients the test gives. */
struct fixture {
	struct dsn_config cfg;
	struct dsn_msg m;
	uint8_t *content;
	struct guard g;
};

static void fixture_init(struct fixture *fx, const char *file, const struct dsn_rcpt *r, unsigned n)
{
	size_t len;
	memset(fx, 0, sizeof(*fx));
	fx->cfg = cfg_default();
	fx->content = load_crlf(file, &len);
	fx->m = (struct dsn_msg){
		.sender = S("alice@example.org"),
		.arrival = T_ARRIVAL,
		.client_helo = S("client.example.org"),
		.client_addr = S("[198.51.100.7]"),
		.queue_id = QID,
		/* the content ends right before a guard page: any over-read faults */
		.content = { guard_place(&fx->g, fx->content, len), len },
		.rcpt = r,
		.nrcpt = n,
	};
}

static void fixture_fini(struct fixture *fx)
{
	guard_release(&fx->g);
	free(fx->content);
}

static const struct dsn_rcpt bob_unknown = {
	.addr = S("bob@example.net"),
	.action = DSN_ACT_FAILED,
	.status = "5.1.1",
	.remote_mta = S("mx.example.net"),
	.diag = S("550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown"),
	.last_attempt = T_ARRIVAL + 5,
};

/* ---- the MIME splitter ---- */

#define MAXF 16
#define MAXG 64
#define VMAX 4096

struct field {
	char name[64];
	char value[VMAX]; /* unfolded: the CRLFs of folds removed, the white space kept */
};

struct fields {
	unsigned n;
	struct field f[MAXF];
};

struct part {
	struct fields h;
	const uint8_t *body;
	size_t len;
};

struct parsed {
	struct fields top;
	char boundary[128];
	unsigned nparts;
	struct part part[4];
	unsigned ngroups; /* DSN field groups: [0] per-message, then per-recipient */
	struct fields g[MAXG];
};

static const char *get(const struct fields *fs, const char *name)
{
	for (unsigned i = 0; i < fs->n; i++)
		if (!strcasecmp(fs->f[i].name, name))
			return fs->f[i].value;
	return NULL;
}

static unsigned count_fields(const struct fields *fs, const char *name)
{
	unsigned k = 0;
	for (unsigned i = 0; i < fs->n; i++)
		k += !strcasecmp(fs->f[i].name, name);
	return k;
}

/* Every line ends in CRLF, no CR or LF elsewhere, none longer than 998, no NUL. */
static void check_lines(const uint8_t *p, size_t n)
{
	size_t start = 0;
	cr_assert(n >= 2 && p[n - 2] == '\r' && p[n - 1] == '\n', "the DSN ends with CRLF");
	for (size_t i = 0; i < n; i++) {
		cr_assert_neq(p[i], 0, "NUL at %zu", i);
		if (p[i] == '\r') {
			cr_assert(i + 1 < n && p[i + 1] == '\n', "bare CR at %zu", i);
			cr_assert_leq(i - start, DSN_LINE_MAX, "line at %zu is %zu octets", start,
				      i - start);
			start = i + 2;
			i++;
		} else {
			cr_assert_neq(p[i], '\n', "bare LF at %zu", i);
		}
	}
}

/*
 * Header fields of P[0..N) up to the blank line into FS (unfolded). Returns
 * the offset of the body (after the blank line), or N when there is none.
 */
static size_t parse_fields(const uint8_t *p, size_t n, struct fields *fs)
{
	size_t i = 0;
	fs->n = 0;
	while (i < n) {
		const uint8_t *e = memmem(p + i, n - i, "\r\n", 2);
		size_t end = e ? (size_t)(e - p) : n;
		if (end == i)
			return i + 2;
		if (p[i] == ' ' || p[i] == '\t') {
			cr_assert_gt(fs->n, 0, "a continuation line before any field");
			struct field *f = &fs->f[fs->n - 1];
			size_t vl = strlen(f->value);
			cr_assert_lt(vl + (end - i), VMAX);
			memcpy(f->value + vl, p + i, end - i);
			f->value[vl + end - i] = 0;
		} else {
			const uint8_t *colon = memchr(p + i, ':', end - i);
			cr_assert_not_null(colon, "a header line without a colon: %.*s",
					   (int)(end - i), p + i);
			size_t nl = (size_t)(colon - (p + i));
			cr_assert_lt(fs->n, MAXF, "too many fields");
			struct field *f = &fs->f[fs->n++];
			cr_assert(nl > 0 && nl < sizeof(f->name));
			memcpy(f->name, p + i, nl);
			f->name[nl] = 0;
			for (size_t k = 0; k < nl; k++)
				cr_assert(p[i + k] > 32 && p[i + k] < 127, "field name octet");
			size_t v = nl + 1;
			while (i + v < end && p[i + v] == ' ')
				v++;
			cr_assert_lt(end - i - v, VMAX);
			memcpy(f->value, p + i + v, end - i - v);
			f->value[end - i - v] = 0;
		}
		i = end + 2;
	}
	return n;
}

/* The boundary="..." parameter of a Content-Type value. */
static void boundary_of(const char *ct, char *out, size_t cap)
{
	const char *b = strstr(ct, "boundary=\"");
	cr_assert_not_null(b, "no boundary in %s", ct);
	b += 10;
	const char *e = strchr(b, '"');
	cr_assert_not_null(e);
	cr_assert_lt((size_t)(e - b), cap);
	memcpy(out, b, e - b);
	out[e - b] = 0;
	cr_assert_leq(strlen(out), 70, "RFC 2046 §5.1.1: at most 70 characters");
}

/* DSN field groups of a message/delivery-status body: blocks split by blank lines. */
static void parse_groups(const uint8_t *p, size_t n, struct parsed *ps)
{
	size_t i = 0;
	ps->ngroups = 0;
	while (i < n) {
		cr_assert_lt(ps->ngroups, MAXG);
		const uint8_t *e = memmem(p + i, n - i, "\r\n\r\n", 4);
		size_t end = e ? (size_t)(e - p) + 2 : n;
		size_t used = parse_fields(p + i, end - i, &ps->g[ps->ngroups]);
		cr_assert_eq(used, end - i);
		cr_assert_gt(ps->g[ps->ngroups].n, 0, "an empty DSN group");
		ps->ngroups++;
		i = e ? end + 2 : n;
	}
}

/*
 * Splits a whole DSN: lines, top header, multipart/report parts (RFC 2046
 * §5.1.1: delimiters are CRLF "--" boundary at the start of a line, the
 * last one followed by "--"), and the delivery-status groups.
 */
static struct parsed *parse_dsn(const uint8_t *p, size_t n)
{
	struct parsed *ps = calloc(1, sizeof(*ps));
	cr_assert_not_null(ps);
	check_lines(p, n);
	size_t body = parse_fields(p, n, &ps->top);
	cr_assert_lt(body, n, "a DSN has a body");
	const char *ct = get(&ps->top, "Content-Type");
	cr_assert_not_null(ct);
	cr_assert(!strncmp(ct, "multipart/report; report-type=delivery-status;", 46), "%s", ct);
	boundary_of(ct, ps->boundary, sizeof(ps->boundary));

	char delim[140];
	size_t dl = (size_t)snprintf(delim, sizeof(delim), "\r\n--%s", ps->boundary);
	const uint8_t *q = p + body - 2; /* the CRLF ending the header belongs to no part */
	const uint8_t *end = p + n;
	const uint8_t *d = memmem(q, (size_t)(end - q), delim, dl);
	cr_assert_not_null(d, "no first delimiter");
	for (;;) {
		const uint8_t *after = d + dl;
		if (end - after >= 2 && after[0] == '-' && after[1] == '-') {
			cr_assert_eq(end - after, 4, "nothing after the close delimiter but CRLF");
			cr_assert(after[2] == '\r' && after[3] == '\n');
			break;
		}
		cr_assert(end - after >= 2 && after[0] == '\r' && after[1] == '\n',
			  "a delimiter line has nothing after the boundary");
		const uint8_t *ps_start = after + 2;
		const uint8_t *next = memmem(ps_start, (size_t)(end - ps_start), delim, dl);
		cr_assert_not_null(next, "a part without an end");
		cr_assert_lt(ps->nparts, 4, "too many parts");
		struct part *pt = &ps->part[ps->nparts++];
		size_t pn = (size_t)(next - ps_start);
		size_t b = parse_fields(ps_start, pn + 2, &pt->h); /* +2: the delimiter's CRLF */
		cr_assert_leq(b, pn + 2, "a part has a blank line after its header");
		pt->body = ps_start + b;
		pt->len = b <= pn ? pn - b : 0;
		d = next;
	}
	cr_assert(ps->nparts == 2 || ps->nparts == 3, "%u parts", ps->nparts);
	cr_assert(!strncmp(get(&ps->part[0].h, "Content-Type"), "text/plain;", 11));
	cr_assert_str_eq(get(&ps->part[1].h, "Content-Type"), "message/delivery-status");
	parse_groups(ps->part[1].body, ps->part[1].len, ps);
	cr_assert_geq(ps->ngroups, 2, "per-message fields and at least one recipient");
	cr_assert_not_null(get(&ps->g[0], "Reporting-MTA"));
	for (unsigned i = 1; i < ps->ngroups; i++) {
		cr_assert_eq(count_fields(&ps->g[i], "Final-Recipient"), 1);
		cr_assert_eq(count_fields(&ps->g[i], "Action"), 1);
		cr_assert_eq(count_fields(&ps->g[i], "Status"), 1);
	}
	/* the boundary occurs only where the splitter found it, and in the parameter */
	unsigned seen = 0;
	for (const uint8_t *s = p;
	     (s = memmem(s, (size_t)(end - s), ps->boundary, strlen(ps->boundary))) != NULL; s++)
		seen++;
	cr_assert_eq(seen, ps->nparts + 2, "the boundary occurs elsewhere");
	static const char *const required[] = { "From",	       "To",	     "Subject",
						"Date",	       "Message-ID", "Auto-Submitted",
						"MIME-Version" };
	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++)
		cr_assert_eq(count_fields(&ps->top, required[i]), 1, "%s", required[i]);
	cr_assert_str_eq(get(&ps->top, "Auto-Submitted"), "auto-replied");
	cr_assert_str_eq(get(&ps->top, "From"),
			 "\"Mail Delivery Subsystem\" <MAILER-DAEMON@mx.example.com>");
	return ps;
}

/* Builds FX's DSN (at T_NOW with T_SEED), checks its structure, returns it and its parse. */
static uint8_t *build(struct fixture *fx, struct dsn_result *res, struct parsed **ps)
{
	uint8_t *out = NULL;
	int rc = dsn_build_alloc(&fx->cfg, &fx->m, T_NOW, T_SEED, &out, res);
	cr_assert_eq(rc, 0, "dsn_build_alloc: %d (%s, rcpt %u)", rc, dsn_err_names[res->err],
		     res->err_rcpt);
	cr_assert_eq(res->none, DSN_SEND, "no DSN: %s", dsn_none_names[res->none]);
	cr_assert_not_null(out);
	cr_assert_eq(res->rcpt_to.p, fx->m.sender.p, "submitted to the original sender");
	*ps = parse_dsn(out, res->len);
	return out;
}

/* ---- golden files ---- */

static void golden(const char *name, const uint8_t *p, size_t n)
{
	/* CRLF -> LF (check_lines() already made sure every CR is part of a CRLF) */
	uint8_t *lf = malloc(n);
	size_t m = 0;
	for (size_t i = 0; i < n; i++)
		if (p[i] != '\r')
			lf[m++] = p[i];
	char path[512];
	if (getenv("RELAY_VECTORS_WRITE")) {
		snprintf(path, sizeof(path), "%s/%s.ref.new", VECTORS_DIR, name);
		FILE *w = fopen(path, "wb");
		cr_assert_not_null(w, "cannot write %s", path);
		fwrite(lf, 1, m, w);
		fclose(w);
	}
	snprintf(path, sizeof(path), "%s/%s.ref", VECTORS_DIR, name);
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "cannot open %s", path);
	uint8_t *want = malloc(m + 2);
	size_t wn = fread(want, 1, m + 1, f);
	fclose(f);
	size_t at = 0;
	while (at < wn && at < m && want[at] == lf[at])
		at++;
	cr_assert(wn == m && at == m, "%s differs at octet %zu:\n got: %.60s\nwant: %.60s", name,
		  at, lf + at, want + at);
	free(want);
	free(lf);
}

static void golden_case(const char *name, struct fixture *fx, enum dsn_kind kind,
			enum dsn_returned returned)
{
	struct dsn_result res;
	struct parsed *ps;
	uint8_t *out = build(fx, &res, &ps);
	cr_assert_eq(res.kind, kind);
	cr_assert_eq(res.returned, returned);
	golden(name, out, res.len);
	free(ps);
	free(out);
}

Test(dsn_golden, failure_returns_the_whole_message)
{
	struct dsn_rcpt r[] = { bob_unknown };
	r[0].orcpt_type = S("rfc822");
	r[0].orcpt = S("bob@example.net");
	struct fixture fx;
	fixture_init(&fx, "original.txt", r, 1);
	fx.m.envid = S("QQ314159");
	golden_case("failed-full", &fx, DSN_KIND_FAILURE, DSN_RETURN_FULL);
	fixture_fini(&fx);
}

Test(dsn_golden, ret_hdrs_failure_returns_the_header)
{
	struct dsn_rcpt r[] = { bob_unknown };
	r[0].notify = SMTP_NOTIFY_FAILURE;
	struct fixture fx;
	fixture_init(&fx, "original.txt", r, 1);
	fx.m.ret = SMTP_RET_HDRS;
	golden_case("failed-hdrs", &fx, DSN_KIND_FAILURE, DSN_RETURN_HEADERS);
	fixture_fini(&fx);
}

Test(dsn_golden, delay_warning_says_until_when)
{
	struct dsn_rcpt r[] = { {
		.addr = S("carol@example.net"),
		.action = DSN_ACT_DELAYED,
		.status = "4.4.1",
		.diag_type = "x-unix",
		.diag = S("connect to mx.example.net[203.0.113.5]:25: Connection refused"),
		.last_attempt = T_NOW - 60,
		.retry_until = T_ARRIVAL + RETRY_DEFAULT_LIFETIME,
	} };
	struct fixture fx;
	fixture_init(&fx, "original.txt", r, 1);
	golden_case("delayed", &fx, DSN_KIND_DELAY, DSN_RETURN_HEADERS);
	fixture_fini(&fx);
}

Test(dsn_golden, success_report_for_notify_success)
{
	struct dsn_rcpt r[] = {
		{ .addr = S("dave@example.net"),
		  .notify = SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE,
		  .action = DSN_ACT_DELIVERED,
		  .status = "2.0.0",
		  .remote_mta = S("mx.example.net"),
		  .diag = S("250 2.0.0 Ok: queued as 4Xk2"),
		  .last_attempt = T_NOW - 1 },
		{ .addr = S("erin@example.net"),
		  .orcpt_type = S("rfc822"),
		  .orcpt = S("erin@lists.example.net"),
		  .notify = SMTP_NOTIFY_SUCCESS,
		  .action = DSN_ACT_RELAYED,
		  .status = "2.0.0",
		  .remote_mta = S("legacy.example.net"),
		  .last_attempt = T_NOW - 1 },
	};
	struct fixture fx;
	fixture_init(&fx, "original.txt", r, 2);
	fx.m.envid = S("batch-7/item-42");
	golden_case("success", &fx, DSN_KIND_SUCCESS, DSN_RETURN_HEADERS);
	fixture_fini(&fx);
}

Test(dsn_golden, mixed_outcomes_report_each_by_its_notify)
{
	struct dsn_rcpt r[] = {
		bob_unknown,
		{ .addr = S("carol@example.net"),
		  .notify = SMTP_NOTIFY_NEVER,
		  .action = DSN_ACT_FAILED,
		  .status = "5.2.2",
		  .diag = S("552 5.2.2 mailbox full") },
		{ .addr = S("dave@example.net"),
		  .notify = SMTP_NOTIFY_DELAY | SMTP_NOTIFY_FAILURE,
		  .action = DSN_ACT_DELAYED,
		  .status = "4.2.1",
		  .remote_mta = S("mx.example.net"),
		  .diag = S("450 4.2.1 <dave@example.net>: mailbox busy"),
		  .last_attempt = T_NOW - 30,
		  .retry_until = T_ARRIVAL + RETRY_DEFAULT_LIFETIME },
		{ .addr = S("erin@example.net"),
		  .notify = SMTP_NOTIFY_SUCCESS,
		  .action = DSN_ACT_DELIVERED,
		  .status = "2.0.0",
		  .remote_mta = S("mx.example.net") },
		{ .addr = S("frank@example.net"), /* success without NOTIFY=SUCCESS: not reported */
		  .action = DSN_ACT_DELIVERED,
		  .status = "2.0.0" },
	};
	struct fixture fx;
	fixture_init(&fx, "original.txt", r, 5);
	struct dsn_result res;
	struct parsed *ps;
	uint8_t *out = build(&fx, &res, &ps);
	cr_assert_eq(res.nreported, 3);
	cr_assert_eq(ps->ngroups, 4);
	cr_assert_str_eq(get(&ps->g[1], "Final-Recipient"), "rfc822; bob@example.net");
	cr_assert_str_eq(get(&ps->g[2], "Final-Recipient"), "rfc822; dave@example.net");
	cr_assert_str_eq(get(&ps->g[3], "Final-Recipient"), "rfc822; erin@example.net");
	/* (carol is in the returned original's To:, so look at the report parts only) */
	for (int p = 0; p < 2; p++) {
		cr_assert_null(memmem(ps->part[p].body, ps->part[p].len, "carol@", 6),
			       "NOTIFY=NEVER: not reported");
		cr_assert_null(memmem(ps->part[p].body, ps->part[p].len, "frank@", 6),
			       "no NOTIFY=SUCCESS: not reported");
	}
	free(ps);
	free(out);
	golden_case("mixed", &fx, DSN_KIND_FAILURE, DSN_RETURN_FULL);
	fixture_fini(&fx);
}

Test(dsn_golden, expired_message_bounces_with_4_4_7)
{
	/* the retry schedule's verdict at the end of the lifetime, turned into the bounce */
	struct retry_config rc;
	retry_config_default(&rc);
	int64_t next = 0, expiry = retry_expiry_time(&rc, T_ARRIVAL);
	cr_assert_eq(retry_after_failure(&rc, T_ARRIVAL, expiry, 40, 7, &next), RETRY_EXPIRED);
	struct dsn_rcpt r[] = { {
		.addr = S("carol@example.net"),
		.action = DSN_ACT_FAILED,
		.status = RETRY_EXPIRED_STATUS,
		.remote_mta = S("mx.example.net"),
		.diag = S("451 4.3.0 <carol@example.net>: Temporary lookup failure"),
		.last_attempt = expiry,
	} };
	struct fixture fx;
	fixture_init(&fx, "original.txt", r, 1);
	struct dsn_result res;
	struct parsed *ps;
	uint8_t *out = build(&fx, &res, &ps);
	cr_assert_str_eq(get(&ps->g[1], "Action"), "failed");
	cr_assert_str_eq(get(&ps->g[1], "Status"), "4.4.7");
	cr_assert_not_null(memmem(ps->part[0].body, ps->part[0].len, RETRY_EXPIRED_TEXT,
				  strlen(RETRY_EXPIRED_TEXT)));
	cr_assert_str_eq(get(&ps->top, "Subject"), "Undelivered Mail Returned to Sender");
	free(ps);
	free(out);
	golden_case("expired", &fx, DSN_KIND_FAILURE, DSN_RETURN_FULL);
	fixture_fini(&fx);
}

Test(dsn_golden, utf8_addresses_use_the_utf8_type_and_message_global)
{
	struct dsn_rcpt r[] = { {
		.addr = S("李@例子.example"),
		.orcpt_type = S("utf-8"),
		.orcpt = S("李@例子.example"),
		.action = DSN_ACT_FAILED,
		.status = "5.1.1",
		.remote_mta = S("mx.xn--fsqu00a.example"),
		.diag = S("550 5.1.1 mailbox unavailable"),
		.last_attempt = T_ARRIVAL + 5,
	} };
	struct fixture fx;
	fixture_init(&fx, "original-utf8.txt", r, 1);
	fx.m.sender = S("jörg@bücher.example");
	fx.m.smtputf8 = true;
	struct dsn_result res;
	struct parsed *ps;
	uint8_t *out = build(&fx, &res, &ps);
	cr_assert(res.smtputf8, "a UTF-8 sender needs SMTPUTF8");
	cr_assert(res.eightbit);
	cr_assert_str_eq(get(&ps->top, "To"), "<jörg@bücher.example>");
	cr_assert_str_eq(get(&ps->top, "Content-Transfer-Encoding"), "8bit");
	cr_assert_str_eq(get(&ps->part[0].h, "Content-Type"), "text/plain; charset=utf-8");
	cr_assert_str_eq(get(&ps->part[2].h, "Content-Type"), "message/global");
	/* RFC 6533 §3: U+674E is \x{674E}; the delivery-status part stays 7-bit */
	cr_assert_str_eq(get(&ps->g[1], "Final-Recipient"),
			 "utf-8; \\x{674E}@\\x{4F8B}\\x{5B50}.example");
	cr_assert_str_eq(get(&ps->g[1], "Original-Recipient"),
			 "utf-8; \\x{674E}@\\x{4F8B}\\x{5B50}.example");
	for (size_t i = 0; i < ps->part[1].len; i++)
		cr_assert_lt(ps->part[1].body[i], 128, "the delivery-status part is 7-bit");
	free(ps);
	free(out);
	golden_case("utf8", &fx, DSN_KIND_FAILURE, DSN_RETURN_FULL);
	fixture_fini(&fx);
}

Test(dsn_golden, header_only_original_is_returned_whole)
{
	struct dsn_rcpt r[] = { bob_unknown };
	struct fixture fx;
	fixture_init(&fx, "original-headers-only.txt", r, 1);
	struct dsn_result res;
	struct parsed *ps;
	uint8_t *out = build(&fx, &res, &ps);
	cr_assert_eq(res.returned, DSN_RETURN_FULL);
	cr_assert_eq(ps->part[2].len, fx.m.content.len, "all of it");
	cr_assert(!memcmp(ps->part[2].body, fx.m.content.p, ps->part[2].len));
	cr_assert_null(memmem(fx.m.content.p, fx.m.content.len, "\r\n\r\n", 4), "no body");
	free(ps);
	free(out);
	golden_case("headers-only", &fx, DSN_KIND_FAILURE, DSN_RETURN_FULL);
	fixture_fini(&fx);
}

Test(dsn_golden, long_diagnostic_is_folded_under_998)
{
	char diag[2000];
	int n = snprintf(diag, sizeof(diag), "550-5.7.1 <bob@example.net>: ");
	while (n < 700)
		n += snprintf(diag + n, sizeof(diag) - n, "policy%d ", n);
	/* then one word of some 1300 octets, longer than a line: it must be cut */
	while (n < (int)sizeof(diag) - 1)
		diag[n++] = 'x';
	diag[n] = 0;
	struct dsn_rcpt r[] = { bob_unknown };
	r[0].diag = str(diag);
	struct fixture fx;
	fixture_init(&fx, "original.txt", r, 1);
	struct dsn_result res;
	struct parsed *ps;
	uint8_t *out = build(&fx, &res, &ps); /* check_lines(): no line over 998 */
	const char *dc = get(&ps->g[1], "Diagnostic-Code");
	/* unfolding gives the text back, up to the spaces a fold or a cut adds */
	char a[4096] = "", b[4096] = "";
	size_t an = 0, bn = 0;
	for (const char *s = "smtp; "; *s; s++)
		if (*s != ' ')
			a[an++] = *s;
	for (const char *s = diag; *s; s++)
		if (*s != ' ')
			a[an++] = *s;
	for (const char *s = dc; *s; s++)
		if (*s != ' ')
			b[bn++] = *s;
	a[an] = b[bn] = 0;
	cr_assert_str_eq(b, a);
	/* the cut happened: the x-word is spread over more than one line */
	const uint8_t *xs = memmem(out, res.len, "xxxxxxxxxx\r\n", 12);
	cr_assert_not_null(xs, "a line ends inside the long word");
	free(ps);
	free(out);
	golden_case("long-diag", &fx, DSN_KIND_FAILURE, DSN_RETURN_FULL);
	fixture_fini(&fx);
}

/* ---- who is reported (RFC 3461 §4.1) ---- */

Test(dsn_notify, the_reporting_rule_over_every_notify_and_action)
{
	/* the rule written out as a table: rows NOTIFY, columns the actions */
	static const struct {
		uint8_t notify;
		bool failed, delayed, success;
	} want[] = {
		{ 0, true, true, false },
		{ SMTP_NOTIFY_NEVER, false, false, false },
		{ SMTP_NOTIFY_SUCCESS, false, false, true },
		{ SMTP_NOTIFY_FAILURE, true, false, false },
		{ SMTP_NOTIFY_DELAY, false, true, false },
		{ SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE, true, false, true },
		{ SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_DELAY, false, true, true },
		{ SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY, true, true, false },
		{ SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY, true, true, true },
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		struct dsn_rcpt r = { .notify = want[i].notify };
		r.action = DSN_ACT_FAILED;
		cr_assert_eq(dsn_rcpt_reported(&r), want[i].failed, "notify %#x failed",
			     want[i].notify);
		r.action = DSN_ACT_DELAYED;
		cr_assert_eq(dsn_rcpt_reported(&r), want[i].delayed, "notify %#x delayed",
			     want[i].notify);
		for (int a = DSN_ACT_DELIVERED; a <= DSN_ACT_EXPANDED; a++) {
			r.action = a;
			cr_assert_eq(dsn_rcpt_reported(&r), want[i].success, "notify %#x %s",
				     want[i].notify, dsn_action_names[a]);
		}
	}
}

/* Builds one DSN for R[0..N) and returns how many recipient groups it has (0: none made). */
static unsigned groups_for(const struct dsn_rcpt *r, unsigned n, enum dsn_none *none)
{
	struct fixture fx;
	fixture_init(&fx, "original.txt", r, n);
	uint8_t *out;
	struct dsn_result res;
	cr_assert_eq(dsn_build_alloc(&fx.cfg, &fx.m, T_NOW, T_SEED, &out, &res), 0);
	*none = res.none;
	unsigned g = 0;
	if (out) {
		struct parsed *ps = parse_dsn(out, res.len);
		g = ps->ngroups - 1;
		cr_assert_eq(g, res.nreported);
		free(ps);
		free(out);
	} else {
		cr_assert_eq(res.len, 0);
	}
	fixture_fini(&fx);
	return g;
}

Test(dsn_notify, notify_unset_gets_failures_and_delays_but_no_success)
{
	enum dsn_none none;
	struct dsn_rcpt r = bob_unknown;
	cr_assert_eq(groups_for(&r, 1, &none), 1);
	r.action = DSN_ACT_DELAYED;
	r.status = "4.4.1";
	cr_assert_eq(groups_for(&r, 1, &none), 1);
	r.action = DSN_ACT_DELIVERED;
	r.status = "2.0.0";
	cr_assert_eq(groups_for(&r, 1, &none), 0);
	cr_assert_eq(none, DSN_NONE_NOT_REQUESTED);
}

Test(dsn_notify, notify_failure_alone_gets_no_delay_notice)
{
	enum dsn_none none;
	struct dsn_rcpt r = bob_unknown;
	r.notify = SMTP_NOTIFY_FAILURE;
	r.action = DSN_ACT_DELAYED;
	r.status = "4.4.1";
	cr_assert_eq(groups_for(&r, 1, &none), 0);
	cr_assert_eq(none, DSN_NONE_NOT_REQUESTED);
}

Test(dsn_notify, notify_delay_alone_gets_no_bounce)
{
	enum dsn_none none;
	struct dsn_rcpt r = bob_unknown;
	r.notify = SMTP_NOTIFY_DELAY;
	cr_assert_eq(groups_for(&r, 1, &none), 0);
	r.action = DSN_ACT_DELAYED;
	r.status = "4.4.1";
	cr_assert_eq(groups_for(&r, 1, &none), 1);
}

Test(dsn_notify, all_recipients_never_means_no_dsn)
{
	struct dsn_rcpt r[3] = { bob_unknown, bob_unknown, bob_unknown };
	for (int i = 0; i < 3; i++)
		r[i].notify = SMTP_NOTIFY_NEVER;
	r[1].action = DSN_ACT_DELAYED;
	r[1].status = "4.4.1";
	enum dsn_none none;
	cr_assert_eq(groups_for(r, 3, &none), 0);
	cr_assert_eq(none, DSN_NONE_NOT_REQUESTED);
}

Test(dsn_notify, null_sender_never_gets_a_dsn)
{
	struct dsn_rcpt r = bob_unknown;
	struct fixture fx;
	fixture_init(&fx, "original.txt", &r, 1);
	fx.m.sender = (struct smtp_str){ 0 };
	uint8_t buf[64];
	struct dsn_result res;
	cr_assert_eq(dsn_build(&fx.cfg, &fx.m, T_NOW, T_SEED, buf, sizeof(buf), &res), 0);
	cr_assert_eq(res.none, DSN_NONE_NULL_SENDER);
	cr_assert_eq(res.len, 0);
	cr_assert_str_eq(dsn_none_names[res.none], "null sender");
	uint8_t *out = (uint8_t *)1;
	cr_assert_eq(dsn_build_alloc(&fx.cfg, &fx.m, T_NOW, T_SEED, &out, &res), 0);
	cr_assert_null(out);
	/* even broken input gets "no DSN" for a null sender: nothing is ever sent */
	r.status = "9.9.9";
	cr_assert_eq(dsn_build(&fx.cfg, &fx.m, T_NOW, T_SEED, buf, sizeof(buf), &res), 0);
	cr_assert_eq(res.none, DSN_NONE_NULL_SENDER);
	fixture_fini(&fx);
}

/* ---- DSN fields present or not ---- */

Test(dsn_fields, envid_and_orcpt_appear_only_when_given)
{
	struct dsn_rcpt r[2] = { bob_unknown, bob_unknown };
	r[1].addr = S("carol@example.net");
	r[1].orcpt_type = S("rfc822");
	r[1].orcpt = S("Carol.Original@Example.NET");
	struct fixture fx;
	fixture_init(&fx, "original.txt", r, 2);
	struct dsn_result res;
	struct parsed *ps;
	uint8_t *out = build(&fx, &res, &ps);
	cr_assert_null(get(&ps->g[0], "Original-Envelope-Id"));
	cr_assert_null(get(&ps->g[1], "Original-Recipient"));
	cr_assert_str_eq(get(&ps->g[2], "Original-Recipient"), "rfc822; Carol.Original@Example.NET",
			 "case kept (RFC 3464 §2.3.1)");
	free(ps);
	free(out);

	fx.m.envid = S("Env.ID/Case=Kept");
	out = build(&fx, &res, &ps);
	cr_assert_str_eq(get(&ps->g[0], "Original-Envelope-Id"), "Env.ID/Case=Kept");
	/* RFC 3464 §2.2: Original-Envelope-Id comes first of the per-message fields */
	cr_assert_str_eq(ps->g[0].f[0].name, "Original-Envelope-Id");
	free(ps);
	free(out);
	fixture_fini(&fx);
}

Test(dsn_fields, per_message_and_per_recipient_fields)
{
	struct dsn_rcpt r[] = { bob_unknown };
	struct fixture fx;
	fixture_init(&fx, "original.txt", r, 1);
	struct dsn_result res;
	struct parsed *ps;
	uint8_t *out = build(&fx, &res, &ps);
	cr_assert_str_eq(get(&ps->g[0], "Reporting-MTA"), "dns; mx.example.com");
	cr_assert_str_eq(get(&ps->g[0], "Received-From-MTA"),
			 "dns; client.example.org ([198.51.100.7])");
	cr_assert_str_eq(get(&ps->g[0], "Arrival-Date"), "Thu, 01 Jan 2026 00:00:00 +0000");
	cr_assert_str_eq(get(&ps->g[0], "X-Mxgate-Queue-ID"), QID);
	cr_assert_str_eq(get(&ps->g[1], "Action"), "failed");
	cr_assert_str_eq(get(&ps->g[1], "Status"), "5.1.1");
	cr_assert_str_eq(get(&ps->g[1], "Remote-MTA"), "dns; mx.example.net");
	cr_assert_str_eq(get(&ps->g[1], "Last-Attempt-Date"), "Thu, 01 Jan 2026 00:00:05 +0000");
	cr_assert_null(get(&ps->g[1], "Will-Retry-Until"), "only for delayed (§2.3.9)");
	cr_assert_str_eq(get(&ps->top, "Date"), "Thu, 01 Jan 2026 01:00:00 +0000");
	cr_assert_str_eq(get(&ps->top, "Message-ID"), res.message_id);
	cr_assert_str_eq(get(&ps->top, "To"), "<alice@example.org>");
	free(ps);
	free(out);

	/* without the optional inputs the optional fields go */
	fx.m.arrival = 0;
	fx.m.client_helo = (struct smtp_str){ 0 };
	r[0].remote_mta = (struct smtp_str){ 0 };
	r[0].diag = (struct smtp_str){ 0 };
	r[0].last_attempt = 0;
	out = build(&fx, &res, &ps);
	cr_assert_null(get(&ps->g[0], "Arrival-Date"));
	cr_assert_null(get(&ps->g[0], "Received-From-MTA"));
	cr_assert_null(get(&ps->g[1], "Remote-MTA"));
	cr_assert_null(get(&ps->g[1], "Diagnostic-Code"));
	cr_assert_null(get(&ps->g[1], "Last-Attempt-Date"));
	cr_assert_not_null(memmem(ps->part[0].body, ps->part[0].len,
				  "<bob@example.net>: delivery failed (status 5.1.1)", 48));
	free(ps);
	free(out);
	fixture_fini(&fx);
}

/* Decodes RFC 6533 utf-8-addr-xtext back to UTF-8 (written apart from the encoder). */
static size_t unescape_6533(const char *s, char *out)
{
	size_t n = 0;
	while (*s) {
		if (s[0] == '\\' && s[1] == 'x' && s[2] == '{') {
			char *e;
			unsigned long cp = strtoul(s + 3, &e, 16);
			cr_assert_eq(*e, '}');
			cr_assert(s[3] != '0' || cp < 0x20, "no leading zeros in HEXPOINT");
			for (const char *h = s + 3; h < e; h++)
				cr_assert(!(*h >= 'a' && *h <= 'f'), "upper-case hex");
			if (cp < 0x80) {
				out[n++] = (char)cp;
			} else if (cp < 0x800) {
				out[n++] = (char)(0xc0 | cp >> 6);
				out[n++] = (char)(0x80 | (cp & 0x3f));
			} else if (cp < 0x10000) {
				out[n++] = (char)(0xe0 | cp >> 12);
				out[n++] = (char)(0x80 | ((cp >> 6) & 0x3f));
				out[n++] = (char)(0x80 | (cp & 0x3f));
			} else {
				out[n++] = (char)(0xf0 | cp >> 18);
				out[n++] = (char)(0x80 | ((cp >> 12) & 0x3f));
				out[n++] = (char)(0x80 | ((cp >> 6) & 0x3f));
				out[n++] = (char)(0x80 | (cp & 0x3f));
			}
			s = e + 1;
		} else {
			cr_assert(*s > 0x20 && *s < 0x7f && *s != '+' && *s != '=', "QCHAR: %c",
				  *s);
			out[n++] = *s++;
		}
	}
	out[n] = 0;
	return n;
}

Test(dsn_fields, utf8_recipients_round_trip_through_the_xtext_form)
{
	static const char *const addrs[] = {
		"jörg@bücher.example",		   /* 2-octet characters */
		"李@例子.example",		   /* 3-octet */
		"\"a b+c=d\\\\e\"@example.org.例", /* specials under the utf-8 type */
		"emoji😀@example.org",		   /* 4-octet: \x{1F600} */
	};
	for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
		struct dsn_rcpt r = bob_unknown;
		r.addr = str(addrs[i]);
		struct fixture fx;
		fixture_init(&fx, "original.txt", &r, 1);
		struct dsn_result res;
		struct parsed *ps;
		uint8_t *out = build(&fx, &res, &ps);
		const char *fr = get(&ps->g[1], "Final-Recipient");
		cr_assert(!strncmp(fr, "utf-8; ", 7), "%s", fr);
		char back[512];
		unescape_6533(fr + 7, back);
		cr_assert_str_eq(back, addrs[i]);
		cr_assert(!res.smtputf8, "an ASCII sender: no SMTPUTF8 needed");
		cr_assert(res.eightbit, "the text part names the address in UTF-8");
		cr_assert_str_eq(get(&ps->part[0].h, "Content-Transfer-Encoding"), "8bit");
		cr_assert_str_eq(get(&ps->part[2].h, "Content-Type"), "message/rfc822",
				 "not an SMTPUTF8 original");
		free(ps);
		free(out);
		fixture_fini(&fx);
	}
}

Test(dsn_fields, orcpt_forms)
{
	struct dsn_rcpt r = bob_unknown;
	struct fixture fx;
	fixture_init(&fx, "original.txt", &r, 1);
	struct dsn_result res;
	struct parsed *ps;
	uint8_t *out;
	static const struct {
		const char *type, *value, *want;
	} cases[] = {
		/* rfc822 with a non-ASCII address becomes the utf-8 type (RFC 6533 §3) */
		{ "rfc822", "bjørn@example.net", "utf-8; bj\\x{F8}rn@example.net" },
		/* utf-8-addr-unitext: raw characters escaped, existing escapes kept */
		{ "utf-8", "bj\\x{F8}rn+tag@例.example",
		  "utf-8; bj\\x{F8}rn+tag@\\x{4F8B}.example" },
		/* an ASCII value under any type as given, type spelling kept */
		{ "RFC822", "Bob@Example.NET", "RFC822; Bob@Example.NET" },
		{ "x-custom", "some value", "x-custom; some value" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		r.orcpt_type = str(cases[i].type);
		r.orcpt = str(cases[i].value);
		out = build(&fx, &res, &ps);
		cr_assert_str_eq(get(&ps->g[1], "Original-Recipient"), cases[i].want);
		free(ps);
		free(out);
	}
	fixture_fini(&fx);
}

Test(dsn_fields, remote_diagnostics_are_cleaned_not_refused)
{
	struct dsn_rcpt r = bob_unknown;
	/* a multi-line reply with its CRLFs, a tab, a NUL, DEL and 8-bit octets */
	static const uint8_t diag[] = "550-5.7.1 first line\r\n550-5.7.1\tsecond \x7f"
				      "line\r\n550 5.7.1 caf\xc3\xa9\0end  \r\n";
	r.diag = (struct smtp_str){ diag, sizeof(diag) - 1 };
	struct fixture fx;
	fixture_init(&fx, "original.txt", &r, 1);
	struct dsn_result res;
	struct parsed *ps;
	uint8_t *out = build(&fx, &res, &ps);
	cr_assert_str_eq(get(&ps->g[1], "Diagnostic-Code"),
			 "smtp; 550-5.7.1 first line 550-5.7.1 second line 550 5.7.1 caf?? end");
	cr_assert(!res.eightbit, "all of it 7-bit");
	free(ps);
	free(out);

	/* blank remote text is no diagnostic at all */
	r.diag = S(" \r\n\t ");
	out = build(&fx, &res, &ps);
	cr_assert_null(get(&ps->g[1], "Diagnostic-Code"));
	free(ps);
	free(out);

	/* longer than DSN_DIAG_MAX: cut there */
	char *big = malloc(DSN_DIAG_MAX + 500);
	memset(big, 'y', DSN_DIAG_MAX + 500);
	r.diag = (struct smtp_str){ (const uint8_t *)big, DSN_DIAG_MAX + 500 };
	r.diag_type = "x-mxgate";
	out = build(&fx, &res, &ps);
	const char *dc = get(&ps->g[1], "Diagnostic-Code");
	size_t ys = 0;
	for (const char *s = dc; *s; s++)
		ys += *s == 'y';
	cr_assert_eq(ys, DSN_DIAG_MAX);
	cr_assert(!strncmp(dc, "x-mxgate; ", 10));
	free(ps);
	free(out);
	free(big);
	fixture_fini(&fx);
}

Test(dsn_fields, status_is_written_without_leading_zeros)
{
	/* a next hop may write its enhanced code with leading zeros; the DSN may not (§2.3.4) */
	static const struct {
		const char *in, *out;
	} cases[] = { { "5.01.001", "5.1.1" },
		      { "5.000.000", "5.0.0" },
		      { "5.7.010", "5.7.10" },
		      { "5.999.999", "5.999.999" } };
	struct dsn_rcpt r = bob_unknown;
	struct fixture fx;
	fixture_init(&fx, "original.txt", &r, 1);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		r.status = cases[i].in;
		struct dsn_result res;
		struct parsed *ps;
		uint8_t *out = build(&fx, &res, &ps);
		cr_assert_str_eq(get(&ps->g[1], "Status"), cases[i].out);
		char text[32];
		int n = snprintf(text, sizeof(text), "(status %s)", cases[i].out);
		cr_assert_not_null(memmem(ps->part[0].body, ps->part[0].len, text, n));
		if (strcmp(cases[i].in, cases[i].out))
			for (int p = 0; p < 2; p++)
				cr_assert_null(memmem(ps->part[p].body, ps->part[p].len,
						      cases[i].in, strlen(cases[i].in)),
					       "the form with zeros is not in the report");
		free(ps);
		free(out);
	}
	fixture_fini(&fx);
}

/* ---- what is returned (RFC 3461 §4.3) ---- */

Test(dsn_return, ret_full_and_unset_return_the_content_octet_for_octet)
{
	struct dsn_rcpt r = bob_unknown;
	struct fixture fx;
	fixture_init(&fx, "original.txt", &r, 1);
	for (int ret = SMTP_RET_NONE; ret <= SMTP_RET_FULL; ret++) {
		fx.m.ret = ret;
		struct dsn_result res;
		struct parsed *ps;
		uint8_t *out = build(&fx, &res, &ps);
		cr_assert_eq(res.returned, DSN_RETURN_FULL);
		cr_assert_str_eq(get(&ps->part[2].h, "Content-Type"), "message/rfc822");
		cr_assert_null(get(&ps->part[2].h, "Content-Transfer-Encoding"), "7-bit content");
		/* the CRLF before the delimiter is the delimiter's (RFC 2046 §5.1.1) */
		cr_assert_eq(ps->part[2].len, fx.m.content.len);
		cr_assert(!memcmp(ps->part[2].body, fx.m.content.p, fx.m.content.len));
		cr_assert(!res.eightbit);
		free(ps);
		free(out);
	}
	fixture_fini(&fx);
}

/* Where the original's header section ends (through its last field's CRLF). */
static size_t header_len(struct smtp_str c)
{
	const uint8_t *e = memmem(c.p, c.len, "\r\n\r\n", 4);
	return e ? (size_t)(e - c.p) + 2 : c.len;
}

Test(dsn_return, ret_hdrs_returns_the_header_section_only)
{
	struct dsn_rcpt r = bob_unknown;
	struct fixture fx;
	fixture_init(&fx, "original.txt", &r, 1);
	fx.m.ret = SMTP_RET_HDRS;
	struct dsn_result res;
	struct parsed *ps;
	uint8_t *out = build(&fx, &res, &ps);
	cr_assert_eq(res.returned, DSN_RETURN_HEADERS);
	cr_assert_eq(res.why, DSN_WHY_RET_HDRS);
	cr_assert_str_eq(get(&ps->part[2].h, "Content-Type"), "text/rfc822-headers");
	size_t h = header_len(fx.m.content);
	cr_assert_eq(ps->part[2].len, h);
	cr_assert(!memcmp(ps->part[2].body, fx.m.content.p, h));
	cr_assert_null(memmem(out, res.len, "Hello all", 9), "no body");
	cr_assert_not_null(memmem(ps->part[0].body, ps->part[0].len, "RET=HDRS", 8));
	free(ps);
	free(out);
	fixture_fini(&fx);
}

Test(dsn_return, delay_and_success_reports_carry_the_header_even_with_ret_full)
{
	struct dsn_rcpt r = bob_unknown;
	r.action = DSN_ACT_DELAYED;
	r.status = "4.4.1";
	struct fixture fx;
	fixture_init(&fx, "original.txt", &r, 1);
	fx.m.ret = SMTP_RET_FULL;
	struct dsn_result res;
	struct parsed *ps;
	uint8_t *out = build(&fx, &res, &ps);
	cr_assert_eq(res.returned, DSN_RETURN_HEADERS);
	cr_assert_eq(res.why, DSN_WHY_NOT_FAILURE);
	cr_assert_str_eq(get(&ps->top, "Subject"), "Delayed Mail (still being retried)");
	free(ps);
	free(out);
	fixture_fini(&fx);
}

Test(dsn_return, oversize_original_falls_back_to_its_header_then_to_nothing)
{
	struct dsn_rcpt r = bob_unknown;
	struct fixture fx;
	fixture_init(&fx, "original.txt", &r, 1);
	size_t h = header_len(fx.m.content);
	struct dsn_result res;
	struct parsed *ps;
	uint8_t *out;

	fx.cfg.return_max = fx.m.content.len; /* exactly at the cap: still whole */
	out = build(&fx, &res, &ps);
	cr_assert_eq(res.returned, DSN_RETURN_FULL);
	free(ps);
	free(out);

	fx.cfg.return_max = fx.m.content.len - 1;
	out = build(&fx, &res, &ps);
	cr_assert_eq(res.returned, DSN_RETURN_HEADERS);
	cr_assert_eq(res.why, DSN_WHY_TOO_BIG);
	cr_assert_str_eq(get(&ps->part[2].h, "Content-Type"), "text/rfc822-headers");
	char note[128];
	int nl = snprintf(note, sizeof(note), "larger than %zu octets; only its header",
			  fx.cfg.return_max);
	cr_assert_not_null(memmem(ps->part[0].body, ps->part[0].len, note, nl),
			   "the text part says so");
	free(ps);
	free(out);

	fx.cfg.return_max = h - 1; /* not even the header fits */
	out = build(&fx, &res, &ps);
	cr_assert_eq(res.returned, DSN_RETURN_NONE);
	cr_assert_eq(res.why, DSN_WHY_HEADER_TOO_BIG);
	cr_assert_eq(ps->nparts, 2);
	cr_assert_not_null(memmem(ps->part[0].body, ps->part[0].len, "is not attached", 15));
	free(ps);
	free(out);

	fx.cfg.return_max = 0; /* never */
	out = build(&fx, &res, &ps);
	cr_assert_eq(res.why, DSN_WHY_NEVER);
	cr_assert_eq(ps->nparts, 2);
	free(ps);
	free(out);
	fixture_fini(&fx);
}

/* Builds a DSN over CONTENT (a copy is placed before a guard page) for bob_unknown. */
static uint8_t *build_over(const void *content, size_t len, struct dsn_result *res,
			   struct parsed **ps, struct guard *g)
{
	static struct dsn_rcpt r;
	r = bob_unknown;
	struct dsn_config cfg = cfg_default();
	cfg.return_max = 1 << 20;
	struct dsn_msg m = {
		.sender = S("alice@example.org"),
		.queue_id = QID,
		.content = { guard_place(g, content, len), len },
		.rcpt = &r,
		.nrcpt = 1,
	};
	uint8_t *out;
	int rc = dsn_build_alloc(&cfg, &m, T_NOW, T_SEED, &out, res);
	cr_assert_eq(rc, 0, "%d %s", rc, dsn_err_names[res->err]);
	*ps = parse_dsn(out, res->len);
	return out;
}

Test(dsn_return, lines_a_message_cannot_carry_are_not_returned_as_they_are)
{
	struct guard g = { 0 };
	struct dsn_result res;
	struct parsed *ps;
	uint8_t *out;
	char *c = malloc(4096);

	/* a body line of 999 octets: the header only */
	int n = sprintf(c, "Subject: long\r\n\r\n");
	memset(c + n, 'b', 999);
	n += 999;
	n += sprintf(c + n, "\r\n");
	out = build_over(c, n, &res, &ps, &g);
	cr_assert_eq(res.why, DSN_WHY_BAD_LINES);
	cr_assert_eq(res.returned, DSN_RETURN_HEADERS);
	cr_assert_eq(ps->part[2].len, strlen("Subject: long\r\n"));
	free(ps);
	free(out);

	/* 998 is still fine */
	n = sprintf(c, "Subject: long\r\n\r\n");
	memset(c + n, 'b', 998);
	n += 998;
	n += sprintf(c + n, "\r\n");
	out = build_over(c, n, &res, &ps, &g);
	cr_assert_eq(res.returned, DSN_RETURN_FULL);
	free(ps);
	free(out);

	/* a bare LF, a bare CR, a NUL in the body: the header only */
	static const char *const bodies[] = { "a\nb\r\n", "a\rb\r\n", "a\0b\r\n" };
	for (int k = 0; k < 3; k++) {
		n = sprintf(c, "Subject: x\r\n\r\n");
		memcpy(c + n, bodies[k], 5);
		n += 5;
		out = build_over(c, n, &res, &ps, &g);
		cr_assert_eq(res.why, DSN_WHY_BAD_LINES, "body %d", k);
		free(ps);
		free(out);
	}

	/* a header line of 999 octets: nothing returned */
	n = sprintf(c, "X-Long: ");
	memset(c + n, 'h', 991);
	n += 991;
	n += sprintf(c + n, "\r\n\r\nbody\r\n");
	out = build_over(c, n, &res, &ps, &g);
	cr_assert_eq(res.why, DSN_WHY_HEADER_BAD_LINES);
	cr_assert_eq(res.returned, DSN_RETURN_NONE);
	cr_assert_eq(ps->nparts, 2);
	free(ps);
	free(out);

	/* content without a final CRLF (BDAT): returned whole, the delimiter ends the line */
	n = sprintf(c, "Subject: x\r\n\r\nno end");
	out = build_over(c, n, &res, &ps, &g);
	cr_assert_eq(res.returned, DSN_RETURN_FULL);
	cr_assert_eq(ps->part[2].len, (size_t)n);
	cr_assert(!memcmp(ps->part[2].body, c, n));
	free(ps);
	free(out);

	free(c);
	guard_release(&g);
}

Test(dsn_return, eight_bit_content_is_labelled_8bit)
{
	struct guard g = { 0 };
	struct dsn_result res;
	struct parsed *ps;
	static const char c[] = "Subject: x\r\n\r\nGr\xc3\xbc\xc3\x9f"
				"e\r\n";
	uint8_t *out = build_over(c, sizeof(c) - 1, &res, &ps, &g);
	cr_assert(res.eightbit, "BODY=8BITMIME");
	cr_assert(!res.smtputf8);
	cr_assert_str_eq(get(&ps->top, "Content-Transfer-Encoding"), "8bit");
	cr_assert_str_eq(get(&ps->part[2].h, "Content-Transfer-Encoding"), "8bit");
	cr_assert_null(get(&ps->part[0].h, "Content-Transfer-Encoding"), "the text is ASCII");
	cr_assert_str_eq(get(&ps->part[2].h, "Content-Type"), "message/rfc822",
			 "not SMTPUTF8: 8-bit body in message/rfc822");
	free(ps);
	free(out);
	guard_release(&g);
}

/* ---- the boundary (RFC 2046 §5.1.1) ---- */

Test(dsn_boundary, a_boundary_found_in_the_content_is_replaced)
{
	char b0[DSN_BOUNDARY_LEN + 1], b1[DSN_BOUNDARY_LEN + 1], b2[DSN_BOUNDARY_LEN + 1];
	dsn_boundary(T_SEED, 0, b0);
	dsn_boundary(T_SEED, 1, b1);
	dsn_boundary(T_SEED, 2, b2);
	cr_assert_eq(strlen(b0), DSN_BOUNDARY_LEN);
	cr_assert_str_neq(b0, b1);
	cr_assert(!strncmp(b0, "=_", 2));

	struct guard g = { 0 };
	struct dsn_result res;
	struct parsed *ps;
	char c[512];
	/* a forged delimiter line with try 0's boundary in the original */
	int n = snprintf(c, sizeof(c), "Subject: x\r\n\r\n--%s\r\nContent-Type: text/html\r\n", b0);
	uint8_t *out = build_over(c, n, &res, &ps, &g);
	cr_assert_str_eq(res.boundary, b1);
	cr_assert_str_eq(ps->boundary, b1);
	cr_assert_eq(ps->nparts, 3, "the forged delimiter did not split the DSN");
	cr_assert_eq(ps->part[2].len, (size_t)n);
	free(ps);
	free(out);

	/* try 0 and try 1 both in the content (mid-line): try 2 */
	n = snprintf(c, sizeof(c), "Subject: %s\r\n\r\nsee %s\r\n", b0, b1);
	out = build_over(c, n, &res, &ps, &g);
	cr_assert_str_eq(res.boundary, b2);
	free(ps);
	free(out);
	guard_release(&g);
}

Test(dsn_boundary, a_boundary_in_remote_text_is_replaced_too)
{
	char b0[DSN_BOUNDARY_LEN + 1], b1[DSN_BOUNDARY_LEN + 1], diag[128];
	dsn_boundary(T_SEED, 0, b0);
	dsn_boundary(T_SEED, 1, b1);
	snprintf(diag, sizeof(diag), "550 5.7.1 --%s", b0);
	struct dsn_rcpt r = bob_unknown;
	r.diag = str(diag);
	struct fixture fx;
	fixture_init(&fx, "original.txt", &r, 1);
	struct dsn_result res;
	struct parsed *ps;
	uint8_t *out = build(&fx, &res, &ps);
	cr_assert_str_eq(res.boundary, b1);
	free(ps);
	free(out);
	fixture_fini(&fx);
}

Test(dsn_boundary, when_every_try_collides_the_error_says_so)
{
	char c[4096];
	int n = sprintf(c, "Subject: x\r\n\r\n");
	for (unsigned t = 0; t < DSN_BOUNDARY_TRIES; t++) {
		char b[DSN_BOUNDARY_LEN + 1];
		dsn_boundary(T_SEED, t, b);
		n += sprintf(c + n, "%s\r\n", b);
	}
	struct dsn_rcpt r = bob_unknown;
	struct dsn_config cfg = cfg_default();
	struct dsn_msg m = { .sender = S("alice@example.org"),
			     .queue_id = QID,
			     .content = { (const uint8_t *)c, (size_t)n },
			     .rcpt = &r,
			     .nrcpt = 1 };
	uint8_t *out;
	struct dsn_result res;
	cr_assert_eq(dsn_build_alloc(&cfg, &m, T_NOW, T_SEED, &out, &res), -EINVAL);
	cr_assert_eq(res.err, DSN_E_BOUNDARY);
	cr_assert_null(out);
	/* another seed gets through */
	cr_assert_eq(dsn_build_alloc(&cfg, &m, T_NOW, T_SEED + 1, &out, &res), 0);
	cr_assert_not_null(out);
	free(out);
}

/* ---- buffers, sizes, determinism ---- */

Test(dsn_buffer, a_short_buffer_gets_enospc_and_the_exact_size)
{
	struct dsn_rcpt r = bob_unknown;
	struct fixture fx;
	fixture_init(&fx, "original.txt", &r, 1);
	struct dsn_result res;
	cr_assert_eq(dsn_build(&fx.cfg, &fx.m, T_NOW, T_SEED, NULL, 0, &res), -ENOSPC);
	size_t need = res.len;
	cr_assert_gt(need, fx.m.content.len);

	uint8_t *ref;
	struct dsn_result r2;
	cr_assert_eq(dsn_build_alloc(&fx.cfg, &fx.m, T_NOW, T_SEED, &ref, &r2), 0);
	cr_assert_eq(r2.len, need);

	/* exactly NEED octets before a guard page: no write past the end */
	struct guard g = { 0 };
	uint8_t *buf = (uint8_t *)guard_place(&g, ref, need);
	memset(buf, 0, need);
	cr_assert_eq(dsn_build(&fx.cfg, &fx.m, T_NOW, T_SEED, buf, need, &res), 0);
	cr_assert_eq(res.len, need);
	cr_assert(!memcmp(buf, ref, need), "the same octets as the allocating call");
	/* one short, and a short window before the guard page: ENOSPC, no over-write */
	buf = (uint8_t *)guard_place(&g, ref, need - 1);
	cr_assert_eq(dsn_build(&fx.cfg, &fx.m, T_NOW, T_SEED, buf, need - 1, &res), -ENOSPC);
	cr_assert_eq(res.len, need);
	buf = (uint8_t *)guard_place(&g, ref, 100);
	cr_assert_eq(dsn_build(&fx.cfg, &fx.m, T_NOW, T_SEED, buf, 100, &res), -ENOSPC);
	guard_release(&g);

	/* the allocation bound */
	fx.cfg.max_size = need - 1;
	uint8_t *out = (uint8_t *)1;
	cr_assert_eq(dsn_build_alloc(&fx.cfg, &fx.m, T_NOW, T_SEED, &out, &res), -EFBIG);
	cr_assert_null(out);
	fx.cfg.max_size = need;
	cr_assert_eq(dsn_build_alloc(&fx.cfg, &fx.m, T_NOW, T_SEED, &out, &res), 0);
	free(out);
	free(ref);
	fixture_fini(&fx);
}

Test(dsn_buffer, same_input_same_octets_and_the_seed_changes_ids)
{
	struct dsn_rcpt r = bob_unknown;
	struct fixture fx;
	fixture_init(&fx, "original.txt", &r, 1);
	uint8_t *a, *b, *c;
	struct dsn_result ra, rb, rc;
	cr_assert_eq(dsn_build_alloc(&fx.cfg, &fx.m, T_NOW, T_SEED, &a, &ra), 0);
	cr_assert_eq(dsn_build_alloc(&fx.cfg, &fx.m, T_NOW, T_SEED, &b, &rb), 0);
	cr_assert_eq(dsn_build_alloc(&fx.cfg, &fx.m, T_NOW, T_SEED + 1, &c, &rc), 0);
	cr_assert_eq(ra.len, rb.len);
	cr_assert(!memcmp(a, b, ra.len));
	cr_assert_eq(rc.len, ra.len, "boundaries and ids have fixed lengths");
	cr_assert_str_neq(rc.boundary, ra.boundary);
	cr_assert_str_neq(rc.message_id, ra.message_id);
	cr_assert(!strncmp(ra.message_id, "<" QID ".", 22));
	cr_assert(strstr(ra.message_id, "@mx.example.com>"));
	free(a);
	free(b);
	free(c);
	fixture_fini(&fx);
}

Test(dsn_buffer, many_recipients_each_get_a_group)
{
	enum {
		N = 60
	};
	static struct dsn_rcpt r[N];
	static char addr[N][32];
	for (int i = 0; i < N; i++) {
		r[i] = bob_unknown;
		snprintf(addr[i], sizeof(addr[i]), "user%02d@example.net", i);
		r[i].addr = str(addr[i]);
		if (i % 3 == 1) {
			r[i].action = DSN_ACT_DELAYED;
			r[i].status = "4.2.2";
		}
	}
	struct fixture fx;
	fixture_init(&fx, "original.txt", r, N);
	struct dsn_result res;
	struct parsed *ps;
	uint8_t *out = build(&fx, &res, &ps);
	cr_assert_eq(res.nreported, N);
	cr_assert_eq(ps->ngroups, N + 1);
	for (int i = 0; i < N; i++) {
		char want[64];
		snprintf(want, sizeof(want), "rfc822; %.31s", addr[i]);
		cr_assert_str_eq(get(&ps->g[i + 1], "Final-Recipient"), want, "in order");
		cr_assert_str_eq(get(&ps->g[i + 1], "Action"), i % 3 == 1 ? "delayed" : "failed");
	}
	free(ps);
	free(out);
	fixture_fini(&fx);
}

/* ---- bad input: a defined error each ---- */

struct bad_case {
	const char *what;
	void (*spoil)(struct dsn_config *cfg, struct dsn_msg *m, struct dsn_rcpt *r);
	enum dsn_err err;
	unsigned rcpt;
};

#define SPOIL(name, body)                                                                          \
	static void name(struct dsn_config *cfg, struct dsn_msg *m, struct dsn_rcpt *r)            \
	{                                                                                          \
		(void)cfg;                                                                         \
		(void)m;                                                                           \
		(void)r;                                                                           \
		body;                                                                              \
	}

SPOIL(no_host, cfg->hostname = NULL)
SPOIL(bad_host, cfg->hostname = "mx example.com")
SPOIL(dotted_host, cfg->hostname = "mx..example.com")
SPOIL(hyphen_host, cfg->hostname = "-mx.example.com")
SPOIL(no_qid, m->queue_id = "")
SPOIL(bad_qid, m->queue_id = "ABC.DEF")
SPOIL(ctl_sender, m->sender = S("ali\x01"
				"ce@example.org"))
SPOIL(bad_utf8_sender, m->sender = S("al\xc3("
				     "@example.org"))
SPOIL(overlong_sender, m->sender = S("\xc0\xaf@example.org"))
SPOIL(envid_ctl, m->envid = S("id\r\nX-Injected: 1"))
SPOIL(envid_8bit, m->envid = S("id\xc3\xa9"))
SPOIL(bad_ret, m->ret = (enum smtp_ret)7)
SPOIL(neg_arrival, m->arrival = -5)
SPOIL(helo_space, m->client_helo = S("two words"))
SPOIL(no_content, m->content = (struct smtp_str){ 0 })
SPOIL(no_rcpts, m->nrcpt = 0)
SPOIL(null_rcpts, m->rcpt = NULL)
SPOIL(empty_addr, r[1].addr = (struct smtp_str){ 0 })
SPOIL(crlf_addr, r[1].addr = S("bob@example.net\r\nBcc: x"))
SPOIL(orcpt_no_value, r[1].orcpt_type = S("rfc822"))
SPOIL(orcpt_bad_type, (r[1].orcpt_type = S("rfc 822"), r[1].orcpt = S("a@b")))
SPOIL(orcpt_ctl, (r[1].orcpt_type = S("rfc822"), r[1].orcpt = S("a\r\n@b")))
SPOIL(orcpt_8bit_x400, (r[1].orcpt_type = S("x400"), r[1].orcpt = S("b\xc3\xb8")))
SPOIL(notify_never_and_failure, r[1].notify = SMTP_NOTIFY_NEVER | SMTP_NOTIFY_FAILURE)
SPOIL(notify_unknown_bit, r[1].notify = 0x40)
SPOIL(no_action, r[1].action = DSN_ACT_NONE)
SPOIL(big_action, r[1].action = DSN_ACT_MAX)
SPOIL(no_status, r[1].status = NULL)
SPOIL(status_shape, r[1].status = "5.1")
SPOIL(status_letter, r[1].status = "5.1.x")
SPOIL(status_long, r[1].status = "5.1.1234")
SPOIL(status_class, r[1].status = "3.1.1")
SPOIL(status_trailing, r[1].status = "5.1.1 ")
SPOIL(failed_with_2, r[1].status = "2.0.0")
SPOIL(delayed_with_5, (r[1].action = DSN_ACT_DELAYED, r[1].status = "5.1.1"))
SPOIL(delivered_with_4, (r[1].action = DSN_ACT_DELIVERED, r[1].status = "4.0.0"))
SPOIL(mta_space, r[1].remote_mta = S("mx example"))
SPOIL(diag_type, r[1].diag_type = "smtp;")
SPOIL(neg_attempt, r[1].last_attempt = -1)
SPOIL(retry_until_on_failed, r[1].retry_until = T_NOW)

static const struct bad_case bad_cases[] = {
	{ "no host name", no_host, DSN_E_HOSTNAME, 0 },
	{ "host name with a space", bad_host, DSN_E_HOSTNAME, 0 },
	{ "host name with an empty label", dotted_host, DSN_E_HOSTNAME, 0 },
	{ "host name starting with -", hyphen_host, DSN_E_HOSTNAME, 0 },
	{ "empty queue id", no_qid, DSN_E_QUEUE_ID, 0 },
	{ "queue id with a dot", bad_qid, DSN_E_QUEUE_ID, 0 },
	{ "control octet in the sender", ctl_sender, DSN_E_SENDER, 0 },
	{ "sender not UTF-8", bad_utf8_sender, DSN_E_SENDER, 0 },
	{ "overlong UTF-8 sender", overlong_sender, DSN_E_SENDER, 0 },
	{ "ENVID with CRLF", envid_ctl, DSN_E_ENVID, 0 },
	{ "ENVID with 8-bit", envid_8bit, DSN_E_ENVID, 0 },
	{ "RET out of range", bad_ret, DSN_E_RET, 0 },
	{ "negative arrival", neg_arrival, DSN_E_TIME, 0 },
	{ "HELO with a space", helo_space, DSN_E_CLIENT, 0 },
	{ "no content", no_content, DSN_E_CONTENT, 0 },
	{ "no recipients", no_rcpts, DSN_E_NO_RCPTS, 0 },
	{ "NULL recipients", null_rcpts, DSN_E_NO_RCPTS, 0 },
	{ "empty recipient", empty_addr, DSN_E_RCPT_ADDR, 1 },
	{ "recipient with CRLF", crlf_addr, DSN_E_RCPT_ADDR, 1 },
	{ "ORCPT type without value", orcpt_no_value, DSN_E_ORCPT, 1 },
	{ "ORCPT type not an atom", orcpt_bad_type, DSN_E_ORCPT, 1 },
	{ "ORCPT with CRLF", orcpt_ctl, DSN_E_ORCPT, 1 },
	{ "non-ASCII ORCPT of type x400", orcpt_8bit_x400, DSN_E_ORCPT, 1 },
	{ "NOTIFY=NEVER,FAILURE", notify_never_and_failure, DSN_E_NOTIFY, 1 },
	{ "unknown NOTIFY bit", notify_unknown_bit, DSN_E_NOTIFY, 1 },
	{ "no action", no_action, DSN_E_ACTION, 1 },
	{ "action out of range", big_action, DSN_E_ACTION, 1 },
	{ "no status", no_status, DSN_E_STATUS, 1 },
	{ "status 5.1", status_shape, DSN_E_STATUS, 1 },
	{ "status with a letter", status_letter, DSN_E_STATUS, 1 },
	{ "status with 4 digits", status_long, DSN_E_STATUS, 1 },
	{ "status class 3", status_class, DSN_E_STATUS, 1 },
	{ "status with trailing space", status_trailing, DSN_E_STATUS, 1 },
	{ "failed with 2.0.0", failed_with_2, DSN_E_STATUS, 1 },
	{ "delayed with 5.1.1", delayed_with_5, DSN_E_STATUS, 1 },
	{ "delivered with 4.0.0", delivered_with_4, DSN_E_STATUS, 1 },
	{ "Remote-MTA with a space", mta_space, DSN_E_REMOTE_MTA, 1 },
	{ "diagnostic type not an atom", diag_type, DSN_E_DIAG_TYPE, 1 },
	{ "negative last attempt", neg_attempt, DSN_E_TIME, 1 },
	{ "Will-Retry-Until for failed", retry_until_on_failed, DSN_E_RETRY_UNTIL, 1 },
};

Test(dsn_errors, each_bad_input_gets_its_error)
{
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		struct dsn_rcpt r[2] = { bob_unknown, bob_unknown };
		struct fixture fx;
		fixture_init(&fx, "original.txt", r, 2);
		bad_cases[i].spoil(&fx.cfg, &fx.m, r);
		uint8_t buf[16];
		struct dsn_result res;
		int rc = dsn_build(&fx.cfg, &fx.m, T_NOW, T_SEED, buf, sizeof(buf), &res);
		cr_assert_eq(rc, -EINVAL, "%s: %d", bad_cases[i].what, rc);
		cr_assert_eq(res.err, bad_cases[i].err, "%s: got %s", bad_cases[i].what,
			     dsn_err_names[res.err]);
		cr_assert_eq(res.err_rcpt, bad_cases[i].rcpt, "%s", bad_cases[i].what);
		uint8_t *out = (uint8_t *)1;
		cr_assert_eq(dsn_build_alloc(&fx.cfg, &fx.m, T_NOW, T_SEED, &out, &res), -EINVAL);
		cr_assert_null(out);
		fixture_fini(&fx);
	}
	/* and the same recipients unspoiled build fine: the errors are the spoils' */
	struct dsn_rcpt r[2] = { bob_unknown, bob_unknown };
	struct fixture fx;
	fixture_init(&fx, "original.txt", r, 2);
	struct dsn_result res;
	struct parsed *ps;
	uint8_t *out = build(&fx, &res, &ps);
	free(ps);
	free(out);
	fixture_fini(&fx);
}

Test(dsn_errors, a_negative_clock_is_refused)
{
	struct dsn_rcpt r = bob_unknown;
	struct fixture fx;
	fixture_init(&fx, "original.txt", &r, 1);
	struct dsn_result res;
	cr_assert_eq(dsn_build(&fx.cfg, &fx.m, -1, T_SEED, NULL, 0, &res), -EINVAL);
	cr_assert_eq(res.err, DSN_E_TIME);
	fixture_fini(&fx);
}
