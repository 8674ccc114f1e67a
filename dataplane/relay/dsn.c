/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * RFC 3464 delivery status notifications: who is reported, what is
 * returned, and the multipart/report itself (see dsn.h for the rules).
 * Everything is written through one counting writer, so the size of a DSN
 * is known exactly before any buffer is allocated.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dataplane/relay/dsn.h"
#include "dataplane/smtp/received.h"

const char *const dsn_action_names[DSN_ACT_MAX] = {
	[DSN_ACT_NONE] = "",	       [DSN_ACT_FAILED] = "failed",
	[DSN_ACT_DELAYED] = "delayed", [DSN_ACT_DELIVERED] = "delivered",
	[DSN_ACT_RELAYED] = "relayed", [DSN_ACT_EXPANDED] = "expanded",
};

const char *const dsn_none_names[] = {
	[DSN_SEND] = "send",
	[DSN_NONE_NULL_SENDER] = "null sender",
	[DSN_NONE_NOT_REQUESTED] = "no recipient to report",
};

#define DSN_E_NAME_(e) [DSN_E_##e] = #e,
const char *const dsn_err_names[DSN_E_MAX] = { DSN_ERRORS(DSN_E_NAME_) };
#undef DSN_E_NAME_

void dsn_config_default(struct dsn_config *c)
{
	*c = (struct dsn_config){
		.hostname = "localhost",
		.return_max = DSN_DEFAULT_RETURN_MAX,
		.max_size = DSN_DEFAULT_MAX_SIZE,
	};
}

/* ---- the writer: copies while there is room and always counts ---- */

struct w {
	uint8_t *p; /* NULL: count only */
	size_t cap;
	size_t n; /* octets written, or that would have been */
};

static void put(struct w *w, const void *s, size_t len)
{
	/* Once one piece did not fit, n stays above cap and nothing more is copied. */
	if (w->p && len && w->n + len <= w->cap)
		memcpy(w->p + w->n, s, len);
	w->n += len;
}

static void puts_(struct w *w, const char *s)
{
	put(w, s, strlen(s));
}

static void put_str(struct w *w, struct smtp_str s)
{
	put(w, s.p, s.len);
}

static void put_dec(struct w *w, uint64_t v)
{
	char b[24];
	int i = sizeof(b);
	do {
		b[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	put(w, b + i, sizeof(b) - i);
}

static void put_hex(struct w *w, uint64_t v, int digits)
{
	static const char hx[] = "0123456789ABCDEF";
	char b[16];
	int i = sizeof(b);
	do {
		b[--i] = hx[v & 15];
		v >>= 4;
	} while ((v || (int)sizeof(b) - i < digits) && i > 0);
	put(w, b + i, sizeof(b) - i);
}

static void put_date(struct w *w, int64_t t)
{
	char d[40];
	put(w, d, smtp_date_format(d, sizeof(d), t));
}

/*
 * One logical line (a header or DSN field, or a paragraph of the text part)
 * is composed here first, then folded. The longest is a Diagnostic-Code or
 * the text line about it: DSN_DIAG_MAX octets, a 32-octet type, an address
 * of at most SMTP_PATH_MAX octets (written at most 6 octets per octet), an
 * MTA name and a date; or an Original-Recipient of SMTP_ORCPT_MAX octets
 * written at most 6 per octet. Both fit well within this.
 */
#define LINE_SCRATCH 8192u
_Static_assert(LINE_SCRATCH > 2 * DSN_DIAG_MAX + 6 * SMTP_PATH_MAX + DSN_MTA_MAX + 256,
	       "a diagnostic line fits the scratch line");
_Static_assert(LINE_SCRATCH > 6 * SMTP_ORCPT_MAX + DSN_TYPE_MAX + 64,
	       "an Original-Recipient fits the scratch line");

struct line {
	struct w w;
	uint8_t buf[LINE_SCRATCH];
};

static struct w *line_start(struct line *l)
{
	l->w = (struct w){ .p = l->buf, .cap = sizeof(l->buf) };
	return &l->w;
}

/* Octets composed in L; never more than its buffer (the asserts above keep it so anyway). */
static size_t line_len(const struct line *l)
{
	return l->w.n < l->w.cap ? l->w.n : l->w.cap;
}

/* put_folded() styles */
#define FOLD_HEADER (-1) /* a header field: the space stays as folding white space */
#define FOLD_TEXT   0	 /* a paragraph: the space becomes the line break */
#define FOLD_HANG   4	 /* a paragraph whose continuation lines are indented by 4 */

/*
 * Writes the composed line L folded, CRLF at the end. Breaks go before a
 * space where the line would pass DSN_FOLD_AT octets, but never before
 * octet START (after the field name) and never on a line that has no word
 * yet. In a header (FOLD_HEADER) the space stays as the folding white
 * space, so unfolding gives the value back (RFC 5322 §2.2.3); in text the
 * space becomes the break and continuation lines get STYLE spaces. A word
 * longer than a line is cut at DSN_LINE_MAX: in a header that adds a space
 * on unfolding, the price of the 998-octet limit (§2.1.1).
 */
static void put_folded(struct w *w, const struct line *l, size_t start, int style)
{
	static const char spaces[] = "    ";
	const char *s = (const char *)l->buf;
	size_t n = line_len(l), i = start, col = start;
	size_t indent = style == FOLD_HEADER ? 1 : (size_t)style; /* after a hard cut */
	bool word = false;

	put(w, s, start);
	while (i < n) {
		size_t j = i + (s[i] == ' ');
		while (j < n && s[j] != ' ')
			j++;
		size_t seg = j - i;
		if (s[i] == ' ' && word && col + seg > DSN_FOLD_AT) {
			put(w, "\r\n", 2);
			col = 0;
			if (style != FOLD_HEADER) {
				put(w, spaces, (size_t)style);
				col = (size_t)style;
				i++;
				seg--;
			}
			word = false;
		}
		while (seg) {
			if (col == DSN_LINE_MAX) {
				put(w, "\r\n", 2);
				put(w, spaces, indent);
				col = indent;
			}
			size_t k = DSN_LINE_MAX - col < seg ? DSN_LINE_MAX - col : seg;
			put(w, s + i, k);
			col += k;
			i += k;
			seg -= k;
			word = true;
		}
	}
	put(w, "\r\n", 2);
}

/* "Name: " then the composed value, folded as a header field. */
static void put_field(struct w *w, const char *name, const struct line *value)
{
	struct line l;
	struct w *f = line_start(&l);
	puts_(f, name);
	puts_(f, ": ");
	put(f, value->buf, line_len(value));
	put_folded(w, &l, strlen(name) + 1, FOLD_HEADER);
}

/* ---- input checks ---- */

static bool is_alnum(uint8_t c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* RFC 5322 atext: the octets of an atom such as an address type. */
static bool is_atext(uint8_t c)
{
	return is_alnum(c) || (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* Well-formed UTF-8 (RFC 3629 §4): no overlong forms, no surrogates, at most U+10FFFF. */
static size_t utf8_seq(const uint8_t *p, size_t n, uint32_t *cp)
{
	uint8_t c = p[0];
	size_t len;
	uint32_t v, min;
	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if (c >= 0xc2 && c <= 0xdf) {
		len = 2, v = c & 0x1f, min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3, v = c & 0x0f, min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4, v = c & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		v = v << 6 | (p[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return len;
}

/* No C0 controls or DEL, UTF-8 where 8-bit. *EIGHT: any octet over 127. */
static bool text_ok(struct smtp_str s, bool *eight)
{
	bool e = false;
	for (size_t i = 0; i < s.len;) {
		uint32_t cp;
		size_t k = utf8_seq(s.p + i, s.len - i, &cp);
		if (k == 0 || cp < 0x20 || cp == 0x7f)
			return false;
		e |= k > 1;
		i += k;
	}
	if (eight)
		*eight = e;
	return true;
}

/* Printable US-ASCII; with NOSPACE, without the space either. */
static bool ascii_ok(const uint8_t *p, size_t n, bool nospace)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] < (nospace ? 0x21 : 0x20) || p[i] > 0x7e)
			return false;
	return true;
}

static bool atom_ok(const uint8_t *p, size_t n)
{
	if (n == 0 || n > DSN_TYPE_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_atext(p[i]))
			return false;
	return true;
}

/* A host name: labels of letters, digits and "-", joined by dots. */
static bool hostname_ok(const char *h)
{
	size_t n = h ? strlen(h) : 0, label = 0;
	if (n == 0 || n > DSN_HOST_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = (uint8_t)h[i];
		if (c == '.') {
			if (label == 0 || h[i - 1] == '-')
				return false;
			label = 0;
		} else if (is_alnum(c) || (c == '-' && label > 0)) {
			label++;
		} else {
			return false;
		}
	}
	return label > 0 && h[n - 1] != '-';
}

/* "5.1.1": the longest canonical status is "5.999.999" */
#define STATUS_MAX 9

/*
 * Reads S as class "." subject "." detail (RFC 3463 §2), 1 to 3 digits in
 * each of the last two, and writes it to OUT without leading zeros, as
 * RFC 3464 §2.3.4 wants it in a DSN: "5.01.1" (a next hop's reply may say
 * so) becomes "5.1.1". False when S is not of that shape or its class does
 * not fit action A: delayed is 4, failed 4 or 5 (a 4.X.X given up on is a
 * "persistent transient failure", §2.3.3), the others 2.
 */
static bool status_canon(const char *s, enum dsn_action a, char out[STATUS_MAX + 1])
{
	if (!s || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
		return false;
	size_t o = 0;
	out[o++] = s[0];
	const char *p = s + 2;
	for (int part = 0; part < 2; part++) {
		int d = 0;
		while (p[d] >= '0' && p[d] <= '9')
			d++;
		if (d == 0 || d > 3)
			return false;
		out[o++] = '.';
		int z = 0;
		while (z < d - 1 && p[z] == '0')
			z++;
		memcpy(out + o, p + z, (size_t)(d - z));
		o += (size_t)(d - z);
		p += d;
		if (part == 0 && *p++ != '.')
			return false;
	}
	if (*p)
		return false;
	out[o] = 0;
	switch (a) {
	case DSN_ACT_FAILED:
		return s[0] != '2';
	case DSN_ACT_DELAYED:
		return s[0] == '4';
	default:
		return s[0] == '2';
	}
}

bool dsn_rcpt_reported(const struct dsn_rcpt *r)
{
	if (r->notify & SMTP_NOTIFY_NEVER)
		return false;
	switch (r->action) {
	case DSN_ACT_FAILED:
		return r->notify == 0 || (r->notify & SMTP_NOTIFY_FAILURE);
	case DSN_ACT_DELAYED:
		return r->notify == 0 || (r->notify & SMTP_NOTIFY_DELAY);
	case DSN_ACT_DELIVERED:
	case DSN_ACT_RELAYED:
	case DSN_ACT_EXPANDED:
		return r->notify & SMTP_NOTIFY_SUCCESS;
	default:
		return false;
	}
}

static int fail(struct dsn_result *res, enum dsn_err e, unsigned rcpt)
{
	res->err = e;
	res->err_rcpt = rcpt;
	return -EINVAL;
}

static int check_rcpt(const struct dsn_rcpt *r, unsigned i, struct dsn_result *res)
{
	if (r->addr.len == 0 || r->addr.len > SMTP_PATH_MAX || !r->addr.p ||
	    !text_ok(r->addr, NULL))
		return fail(res, DSN_E_RCPT_ADDR, i);
	if (r->orcpt_type.len || r->orcpt.len) {
		bool eight;
		if (!r->orcpt_type.p || !atom_ok(r->orcpt_type.p, r->orcpt_type.len) ||
		    r->orcpt.len == 0 || r->orcpt.len > SMTP_ORCPT_MAX || !r->orcpt.p ||
		    !text_ok(r->orcpt, &eight))
			return fail(res, DSN_E_ORCPT, i);
		/* RFC 6533 §3 gives non-ASCII addresses the utf-8 type; rfc822 ones become it. */
		if (eight &&
		    !(r->orcpt_type.len == 6 &&
		      !strncasecmp((const char *)r->orcpt_type.p, "rfc822", 6)) &&
		    !(r->orcpt_type.len == 5 &&
		      !strncasecmp((const char *)r->orcpt_type.p, "utf-8", 5)))
			return fail(res, DSN_E_ORCPT, i);
	}
	if ((r->notify & ~(SMTP_NOTIFY_NEVER | SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE |
			   SMTP_NOTIFY_DELAY)) ||
	    ((r->notify & SMTP_NOTIFY_NEVER) && r->notify != SMTP_NOTIFY_NEVER))
		return fail(res, DSN_E_NOTIFY, i);
	if (r->action <= DSN_ACT_NONE || r->action >= DSN_ACT_MAX)
		return fail(res, DSN_E_ACTION, i);
	char st[STATUS_MAX + 1];
	if (!status_canon(r->status, r->action, st))
		return fail(res, DSN_E_STATUS, i);
	if (r->remote_mta.len > DSN_MTA_MAX || (r->remote_mta.len && !r->remote_mta.p) ||
	    !ascii_ok(r->remote_mta.p, r->remote_mta.len, true))
		return fail(res, DSN_E_REMOTE_MTA, i);
	if (r->diag_type && !atom_ok((const uint8_t *)r->diag_type, strlen(r->diag_type)))
		return fail(res, DSN_E_DIAG_TYPE, i);
	if (r->diag.len && !r->diag.p)
		return fail(res, DSN_E_RCPT_ADDR, i);
	if (r->last_attempt < 0 || r->retry_until < 0)
		return fail(res, DSN_E_TIME, i);
	if (r->retry_until && r->action != DSN_ACT_DELAYED)
		return fail(res, DSN_E_RETRY_UNTIL, i);
	return 0;
}

static int check_msg(const struct dsn_config *cfg, const struct dsn_msg *m, struct dsn_result *res)
{
	if (!hostname_ok(cfg->hostname))
		return fail(res, DSN_E_HOSTNAME, 0);
	size_t ql = m->queue_id ? strlen(m->queue_id) : 0;
	if (ql == 0 || ql > DSN_QID_MAX)
		return fail(res, DSN_E_QUEUE_ID, 0);
	for (size_t i = 0; i < ql; i++)
		if (!is_alnum((uint8_t)m->queue_id[i]))
			return fail(res, DSN_E_QUEUE_ID, 0);
	if (m->sender.len > SMTP_PATH_MAX || !m->sender.p || !text_ok(m->sender, NULL))
		return fail(res, DSN_E_SENDER, 0);
	/* ENVID goes into the DSN as it was given (RFC 3464 §2.2.1): printable ASCII only. */
	if (m->envid.len > SMTP_ENVID_MAX || (m->envid.len && !m->envid.p) ||
	    !ascii_ok(m->envid.p, m->envid.len, false))
		return fail(res, DSN_E_ENVID, 0);
	if (m->ret != SMTP_RET_NONE && m->ret != SMTP_RET_FULL && m->ret != SMTP_RET_HDRS)
		return fail(res, DSN_E_RET, 0);
	if (m->arrival < 0)
		return fail(res, DSN_E_TIME, 0);
	if (m->client_helo.len > SMTP_DOMAIN_MAX + 2 || (m->client_helo.len && !m->client_helo.p) ||
	    !ascii_ok(m->client_helo.p, m->client_helo.len, true) ||
	    m->client_addr.len > DSN_MTA_MAX || (m->client_addr.len && !m->client_addr.p) ||
	    !ascii_ok(m->client_addr.p, m->client_addr.len, true))
		return fail(res, DSN_E_CLIENT, 0);
	if (m->content.len == 0 || !m->content.p)
		return fail(res, DSN_E_CONTENT, 0);
	if (m->nrcpt == 0 || m->nrcpt > DSN_RCPT_MAX || !m->rcpt)
		return fail(res, DSN_E_NO_RCPTS, 0);
	for (unsigned i = 0; i < m->nrcpt; i++) {
		int rc = check_rcpt(&m->rcpt[i], i, res);
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- the original: where its header ends, and whether its lines can travel ---- */

struct scan {
	size_t hdr_len;		  /* the header section: through the CRLF of its last field */
	bool hdr_ok, body_ok;	  /* every line CRLF-ended (the last may be open), <= 998, no NUL */
	bool hdr_8bit, body_8bit; /* octets over 127 in the header / anywhere */
};

/* Scans P[FROM..N) line by line; stops after the blank line when HEADER. Returns the stop. */
static size_t scan_lines(const uint8_t *p, size_t from, size_t n, bool header, bool *ok,
			 bool *eight)
{
	size_t i = from;
	*ok = true;
	*eight = false;
	while (i < n) {
		const uint8_t *lf = memchr(p + i, '\n', n - i);
		size_t end = lf ? (size_t)(lf - p) : n; /* the LF, or the end */
		size_t text_end = end;
		if (lf) {
			if (end == i || p[end - 1] != '\r')
				*ok = false; /* a bare LF */
			else
				text_end = end - 1;
		}
		if (text_end - i > DSN_LINE_MAX)
			*ok = false;
		for (size_t k = i; k < text_end; k++) {
			if (p[k] == '\r' || p[k] == 0)
				*ok = false;
			*eight |= p[k] > 127;
		}
		if (header && lf && text_end == i)
			return i; /* the blank line: the header ends before it */
		i = lf ? end + 1 : n;
	}
	return n;
}

static void scan_header(struct smtp_str c, struct scan *s)
{
	s->hdr_len = scan_lines(c.p, 0, c.len, true, &s->hdr_ok, &s->hdr_8bit);
}

static void scan_body(struct smtp_str c, struct scan *s)
{
	bool ok, eight;
	scan_lines(c.p, s->hdr_len, c.len, false, &ok, &eight);
	s->body_ok = s->hdr_ok && ok;
	s->body_8bit = s->hdr_8bit || eight;
}

/* ---- composing the parts ---- */

static bool is_ascii(struct smtp_str s)
{
	for (size_t i = 0; i < s.len; i++)
		if (s.p[i] > 127)
			return false;
	return true;
}

/* RFC 6533 §3 QCHAR: printable ASCII other than space, "+", "=" and "\". */
static bool is_qchar(uint32_t c)
{
	return c >= 0x21 && c <= 0x7e && c != '+' && c != '=' && c != '\\';
}

/*
 * S (well-formed UTF-8) as utf-8-addr-xtext (RFC 6533 §3): QCHARs as they
 * are, every other character as "\x{HEX}" in upper case without leading
 * zeros (the HEXPOINT forms). With RAW_ASCII, ASCII passes through (a
 * value already in utf-8-addr-xtext or -unitext form: only its non-ASCII
 * characters are encoded).
 */
static void put_utf8_xtext(struct w *w, struct smtp_str s, bool raw_ascii)
{
	for (size_t i = 0; i < s.len;) {
		uint32_t cp;
		size_t k = utf8_seq(s.p + i, s.len - i, &cp);
		if (k == 0) { /* checked before: cannot happen; keep the output 7-bit anyway */
			k = 1;
			cp = 0xfffd;
		}
		if (is_qchar(cp) || (raw_ascii && cp < 0x80)) {
			put(w, s.p + i, 1);
		} else {
			puts_(w, "\\x{");
			put_hex(w, cp, 1);
			puts_(w, "}");
		}
		i += k;
	}
}

/* "rfc822; addr", or "utf-8; addr-in-xtext" for a non-ASCII address (RFC 6533 §3). */
static void put_typed_addr(struct w *w, struct smtp_str a)
{
	if (is_ascii(a)) {
		puts_(w, "rfc822; ");
		put_str(w, a);
	} else {
		puts_(w, "utf-8; ");
		put_utf8_xtext(w, a, false);
	}
}

/* The ORCPT for Original-Recipient (RFC 3464 §2.3.1), checked by check_rcpt(). */
static void put_orcpt(struct w *w, const struct dsn_rcpt *r)
{
	bool utf8_type =
		r->orcpt_type.len == 5 && !strncasecmp((const char *)r->orcpt_type.p, "utf-8", 5);
	if (is_ascii(r->orcpt)) {
		put_str(w, r->orcpt_type);
		puts_(w, "; ");
		put_str(w, r->orcpt);
	} else if (utf8_type) {
		/* utf-8-addr-unitext: its raw UTF-8 characters get the 7-bit escape */
		put_str(w, r->orcpt_type);
		puts_(w, "; ");
		put_utf8_xtext(w, r->orcpt, true);
	} else {
		/* rfc822 with a non-ASCII address: the utf-8 type (RFC 6533 §3) */
		puts_(w, "utf-8; ");
		put_utf8_xtext(w, r->orcpt, false);
	}
}

/*
 * The diagnostic, made fit for a field: remote text, so it is cleaned, not
 * refused. Controls and runs of white space (a multi-line reply's CRLFs)
 * become one space, octets over 127 become "?", the ends are trimmed and
 * at most DSN_DIAG_MAX octets are kept. Returns the octets written.
 */
static size_t put_diag(struct w *w, struct smtp_str d)
{
	size_t n = d.len < DSN_DIAG_MAX ? d.len : DSN_DIAG_MAX, out = 0;
	bool space = false;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = d.p[i];
		if (c <= 0x20 || c == 0x7f) {
			space = out > 0;
			continue;
		}
		if (space) {
			put(w, " ", 1);
			out++;
			space = false;
		}
		put(w, c > 127 ? "?" : (const char *)&d.p[i], 1);
		out++;
	}
	return out;
}

static bool diag_empty(struct smtp_str d)
{
	size_t n = d.len < DSN_DIAG_MAX ? d.len : DSN_DIAG_MAX;
	for (size_t i = 0; i < n; i++)
		if (d.p[i] > 0x20 && d.p[i] != 0x7f)
			return false;
	return true;
}

static void put_line(struct w *w, const char *s)
{
	puts_(w, s);
	puts_(w, "\r\n");
}

/* A paragraph of the text part, wrapped. */
static void put_para(struct w *w, const struct line *l)
{
	put_folded(w, l, 0, FOLD_TEXT);
}

static void put_para_str(struct w *w, const char *s)
{
	struct line l;
	puts_(line_start(&l), s);
	put_para(w, &l);
}

/* One recipient's line of the text part. */
static void put_text_rcpt(struct w *w, const struct dsn_rcpt *r)
{
	struct line l;
	struct w *t = line_start(&l);
	bool diag = !diag_empty(r->diag);
	char st[STATUS_MAX + 1];
	status_canon(r->status, r->action, st); /* checked by check_rcpt() */
	bool expired = r->action == DSN_ACT_FAILED && !strcmp(st, "4.4.7");
	puts_(t, "<");
	put_str(t, r->addr);
	puts_(t, ">: ");
	switch (r->action) {
	case DSN_ACT_FAILED:
	case DSN_ACT_DELAYED:
		if (expired)
			puts_(t, diag ? "delivery time expired; the last attempt: " :
					"delivery time expired");
		if (r->remote_mta.len && diag) {
			puts_(t, "host ");
			put_str(t, r->remote_mta);
			puts_(t, " said: ");
		}
		if (diag) {
			put_diag(t, r->diag);
		} else if (!expired) {
			puts_(t,
			      r->action == DSN_ACT_FAILED ? "delivery failed" : "delivery delayed");
			if (r->remote_mta.len) {
				puts_(t, " at host ");
				put_str(t, r->remote_mta);
			}
		}
		puts_(t, " (status ");
		puts_(t, st);
		puts_(t, ")");
		if (r->action == DSN_ACT_DELAYED && r->retry_until) {
			puts_(t, "; the mail system will keep trying until ");
			put_date(t, r->retry_until);
		}
		break;
	default:
		puts_(t, r->action == DSN_ACT_DELIVERED ? "delivered" :
			 r->action == DSN_ACT_RELAYED	? "relayed to a system that does not "
							  "report delivery" :
							  "delivered and forwarded to further "
							  "recipients");
		if (r->remote_mta.len) {
			puts_(t, r->action == DSN_ACT_DELIVERED ? " to host " : " (host ");
			put_str(t, r->remote_mta);
			if (r->action != DSN_ACT_DELIVERED)
				puts_(t, ")");
		}
		if (diag) {
			puts_(t, ": ");
			put_diag(t, r->diag);
		}
		break;
	}
	put_folded(w, &l, 0, FOLD_HANG);
}

static const char *const section_intro[] = {
	[DSN_KIND_FAILURE] = "Your message could not be delivered to the recipients below. The "
			     "mail system has given up on them: no further attempts will be made.",
	[DSN_KIND_DELAY] = "Your message has not been delivered yet to the recipients below. The "
			   "mail system will keep trying; there is no need to send it again.",
	[DSN_KIND_SUCCESS] = "Your message was delivered to the recipients below, as you asked "
			     "to be told.",
};

static enum dsn_kind kind_of(enum dsn_action a)
{
	return a == DSN_ACT_FAILED  ? DSN_KIND_FAILURE :
	       a == DSN_ACT_DELAYED ? DSN_KIND_DELAY :
				      DSN_KIND_SUCCESS;
}

static void put_return_note(struct w *w, const struct dsn_config *cfg, const struct dsn_result *res)
{
	struct line l;
	struct w *t = line_start(&l);
	switch (res->why) {
	case DSN_WHY_FULL:
		puts_(t, "The original message is attached.");
		break;
	case DSN_WHY_NEVER:
		puts_(t, "The original message is not attached.");
		break;
	case DSN_WHY_RET_HDRS:
		puts_(t, "The header of the original message is attached, as the sender asked "
			 "(RET=HDRS).");
		break;
	case DSN_WHY_NOT_FAILURE:
		puts_(t, "The header of the original message is attached.");
		break;
	case DSN_WHY_TOO_BIG:
		puts_(t, "The original message was larger than ");
		put_dec(t, cfg->return_max);
		puts_(t, " octets; only its header is attached.");
		break;
	case DSN_WHY_BAD_LINES:
		puts_(t, "The original message has lines that cannot be sent back as they are; "
			 "only its header is attached.");
		break;
	case DSN_WHY_HEADER_TOO_BIG:
		puts_(t, "The original message is not attached: even its header is larger than ");
		put_dec(t, cfg->return_max);
		puts_(t, " octets.");
		break;
	case DSN_WHY_HEADER_BAD_LINES:
		puts_(t, "The original message is not attached: its header has lines that cannot "
			 "be sent back as they are.");
		break;
	}
	put_para(w, &l);
}

/* part 1: text/plain */
static void put_text_part(struct w *w, const struct dsn_config *cfg, const struct dsn_msg *m,
			  const struct dsn_result *res)
{
	struct line l;
	struct w *t = line_start(&l);
	puts_(t, "This is the mail system at host ");
	puts_(t, cfg->hostname);
	puts_(t, ".");
	put_para(w, &l);
	for (int k = DSN_KIND_FAILURE; k <= DSN_KIND_SUCCESS; k++) {
		bool any = false;
		for (unsigned i = 0; i < m->nrcpt; i++) {
			const struct dsn_rcpt *r = &m->rcpt[i];
			if (!dsn_rcpt_reported(r) || kind_of(r->action) != (enum dsn_kind)k)
				continue;
			if (!any) {
				put_line(w, "");
				put_para_str(w, section_intro[k]);
				put_line(w, "");
				any = true;
			}
			put_text_rcpt(w, r);
		}
	}
	put_line(w, "");
	put_return_note(w, cfg, res);
}

static void field_str(struct w *w, const char *name, const char *a, struct smtp_str b)
{
	struct line v;
	struct w *f = line_start(&v);
	puts_(f, a);
	put_str(f, b);
	put_field(w, name, &v);
}

static void field_date(struct w *w, const char *name, int64_t t)
{
	struct line v;
	put_date(line_start(&v), t);
	put_field(w, name, &v);
}

/* part 2: message/delivery-status (RFC 3464 §2.1: per-message, then per-recipient blocks) */
static void put_status_part(struct w *w, const struct dsn_config *cfg, const struct dsn_msg *m)
{
	struct line v;
	if (m->envid.len)
		field_str(w, "Original-Envelope-Id", "", m->envid);
	puts_(line_start(&v), "dns; ");
	puts_(&v.w, cfg->hostname);
	put_field(w, "Reporting-MTA", &v);
	if (m->client_helo.len) {
		struct w *f = line_start(&v);
		puts_(f, "dns; ");
		put_str(f, m->client_helo);
		if (m->client_addr.len) {
			puts_(f, " (");
			put_str(f, m->client_addr);
			puts_(f, ")");
		}
		put_field(w, "Received-From-MTA", &v);
	}
	if (m->arrival)
		field_date(w, "Arrival-Date", m->arrival);
	/* RFC 3464 §2.4 (c): an MTA's own field, so the report leads to our log */
	puts_(line_start(&v), m->queue_id);
	put_field(w, "X-Mxgate-Queue-ID", &v);

	for (unsigned i = 0; i < m->nrcpt; i++) {
		const struct dsn_rcpt *r = &m->rcpt[i];
		if (!dsn_rcpt_reported(r))
			continue;
		put(w, "\r\n", 2);
		if (r->orcpt_type.len) {
			put_orcpt(line_start(&v), r);
			put_field(w, "Original-Recipient", &v);
		}
		put_typed_addr(line_start(&v), r->addr);
		put_field(w, "Final-Recipient", &v);
		puts_(line_start(&v), dsn_action_names[r->action]);
		put_field(w, "Action", &v);
		char st[STATUS_MAX + 1];
		status_canon(r->status, r->action, st); /* checked by check_rcpt() */
		puts_(line_start(&v), st);
		put_field(w, "Status", &v);
		if (r->remote_mta.len)
			field_str(w, "Remote-MTA", "dns; ", r->remote_mta);
		if (!diag_empty(r->diag)) {
			struct w *f = line_start(&v);
			puts_(f, r->diag_type ? r->diag_type : "smtp");
			puts_(f, "; ");
			put_diag(f, r->diag);
			put_field(w, "Diagnostic-Code", &v);
		}
		if (r->last_attempt)
			field_date(w, "Last-Attempt-Date", r->last_attempt);
		if (r->retry_until)
			field_date(w, "Will-Retry-Until", r->retry_until);
	}
}

/* splitmix64: spreads a seed over 64 bits (Steele, Lea, Flood 2014). */
static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

void dsn_boundary(uint64_t seed, unsigned try, char *out)
{
	struct w w = { .p = (uint8_t *)out, .cap = DSN_BOUNDARY_LEN };
	puts_(&w, "=_mxgate-dsn-");
	put_hex(&w, mix64(seed + try * 0x632be59bd9b4e019ull), 16);
	out[DSN_BOUNDARY_LEN] = 0;
}

static void make_message_id(const struct dsn_config *cfg, const struct dsn_msg *m, uint64_t seed,
			    char *out)
{
	struct w w = { .p = (uint8_t *)out, .cap = DSN_MSGID_MAX };
	puts_(&w, "<");
	puts_(&w, m->queue_id);
	puts_(&w, ".");
	put_hex(&w, mix64(~seed), 16);
	puts_(&w, "@");
	puts_(&w, cfg->hostname);
	puts_(&w, ">");
	out[w.n] = 0;
}

/* Decides what of the original goes back (RFC 3461 §4.3 and the size cap). */
static void choose_return(const struct dsn_config *cfg, const struct dsn_msg *m,
			  struct dsn_result *res, struct scan *sc)
{
	scan_header(m->content, sc);
	res->returned = DSN_RETURN_HEADERS;
	if (cfg->return_max == 0) {
		res->returned = DSN_RETURN_NONE;
		res->why = DSN_WHY_NEVER;
		return;
	}
	if (res->kind != DSN_KIND_FAILURE) {
		res->why = DSN_WHY_NOT_FAILURE;
	} else if (m->ret == SMTP_RET_HDRS) {
		res->why = DSN_WHY_RET_HDRS;
	} else if (m->content.len > cfg->return_max) {
		res->why = DSN_WHY_TOO_BIG;
	} else {
		scan_body(m->content, sc);
		if (sc->body_ok) {
			res->returned = DSN_RETURN_FULL;
			res->why = DSN_WHY_FULL;
			return;
		}
		res->why = DSN_WHY_BAD_LINES;
	}
	if (sc->hdr_len > cfg->return_max) {
		res->returned = DSN_RETURN_NONE;
		res->why = DSN_WHY_HEADER_TOO_BIG;
	} else if (!sc->hdr_ok) {
		res->returned = DSN_RETURN_NONE;
		res->why = DSN_WHY_HEADER_BAD_LINES;
	}
}

static const char *const subjects[] = {
	[DSN_KIND_FAILURE] = "Undelivered Mail Returned to Sender",
	[DSN_KIND_DELAY] = "Delayed Mail (still being retried)",
	[DSN_KIND_SUCCESS] = "Successful Mail Delivery Report",
};

/* The whole message with boundary B. */
static void put_dsn(struct w *w, const struct dsn_config *cfg, const struct dsn_msg *m, int64_t now,
		    const struct dsn_result *res, const struct scan *sc, bool text_8bit,
		    const char *b)
{
	bool ret_8bit = res->returned == DSN_RETURN_FULL ? sc->body_8bit : sc->hdr_8bit;
	bool part3_8bit = res->returned != DSN_RETURN_NONE && ret_8bit;
	bool global = m->smtputf8 && sc->hdr_8bit;
	struct line v;

	struct w *f = line_start(&v);
	puts_(f, "\"Mail Delivery Subsystem\" <MAILER-DAEMON@");
	puts_(f, cfg->hostname);
	puts_(f, ">");
	put_field(w, "From", &v);
	f = line_start(&v);
	puts_(f, "<");
	put_str(f, m->sender);
	puts_(f, ">");
	put_field(w, "To", &v);
	puts_(line_start(&v), subjects[res->kind]);
	put_field(w, "Subject", &v);
	field_date(w, "Date", now);
	puts_(line_start(&v), res->message_id);
	put_field(w, "Message-ID", &v);
	put_line(w, "Auto-Submitted: auto-replied");
	put_line(w, "MIME-Version: 1.0");
	f = line_start(&v);
	puts_(f, "multipart/report; report-type=delivery-status; boundary=\"");
	puts_(f, b);
	puts_(f, "\"");
	put_field(w, "Content-Type", &v);
	/* RFC 2045 §6.4: a multipart holding 8bit parts is itself 8bit */
	if (text_8bit || part3_8bit)
		put_line(w, "Content-Transfer-Encoding: 8bit");
	put_line(w, "");
	put_line(w, "This is a MIME-encapsulated message.");

	/* each delimiter's leading CRLF belongs to it (RFC 2046 §5.1.1) */
	puts_(w, "\r\n--");
	put_line(w, b);
	put_line(w, "Content-Description: Notification");
	put_line(w, text_8bit ? "Content-Type: text/plain; charset=utf-8" :
				"Content-Type: text/plain; charset=us-ascii");
	if (text_8bit)
		put_line(w, "Content-Transfer-Encoding: 8bit");
	put_line(w, "");
	put_text_part(w, cfg, m, res);

	puts_(w, "\r\n--");
	put_line(w, b);
	put_line(w, "Content-Description: Delivery report");
	put_line(w, "Content-Type: message/delivery-status");
	put_line(w, "");
	put_status_part(w, cfg, m);

	if (res->returned != DSN_RETURN_NONE) {
		bool full = res->returned == DSN_RETURN_FULL;
		puts_(w, "\r\n--");
		put_line(w, b);
		put_line(w, full ? "Content-Description: Undelivered Message" :
				   "Content-Description: Message Headers");
		put_line(w, full ? (global ? "Content-Type: message/global" :
					     "Content-Type: message/rfc822") :
				   (global ? "Content-Type: message/global-headers" :
					     "Content-Type: text/rfc822-headers"));
		if (part3_8bit)
			put_line(w, "Content-Transfer-Encoding: 8bit");
		put_line(w, "");
		put(w, m->content.p, full ? m->content.len : sc->hdr_len);
	}
	puts_(w, "\r\n--");
	puts_(w, b);
	put_line(w, "--");
}

/* Occurrences of B (LEN octets) in P[0..N). */
static unsigned count_in(const uint8_t *p, size_t n, const char *b, size_t len)
{
	unsigned k = 0;
	const uint8_t *q = p, *end = p + n;
	while ((q = memmem(q, (size_t)(end - q), b, len)) != NULL) {
		k++;
		q += len;
	}
	return k;
}

int dsn_build(const struct dsn_config *cfg, const struct dsn_msg *m, int64_t now, uint64_t seed,
	      uint8_t *out, size_t cap, struct dsn_result *res)
{
	*res = (struct dsn_result){ .rcpt_to = m->sender };

	/* RFC 5321 §4.5.5: never a notification about a notification */
	if (m->sender.len == 0) {
		res->none = DSN_NONE_NULL_SENDER;
		return 0;
	}
	if (now < 0)
		return fail(res, DSN_E_TIME, 0);
	int rc = check_msg(cfg, m, res);
	if (rc)
		return rc;

	bool text_8bit = false;
	res->kind = DSN_KIND_SUCCESS;
	for (unsigned i = 0; i < m->nrcpt; i++) {
		const struct dsn_rcpt *r = &m->rcpt[i];
		if (!dsn_rcpt_reported(r))
			continue;
		res->nreported++;
		if (kind_of(r->action) < res->kind)
			res->kind = kind_of(r->action);
		text_8bit |= !is_ascii(r->addr);
	}
	if (res->nreported == 0) {
		res->none = DSN_NONE_NOT_REQUESTED;
		return 0;
	}

	struct scan sc = { 0 };
	choose_return(cfg, m, res, &sc);
	make_message_id(cfg, m, seed, res->message_id);
	res->smtputf8 = !is_ascii(m->sender);
	res->eightbit = text_8bit || res->smtputf8 ||
			(res->returned == DSN_RETURN_FULL && sc.body_8bit) ||
			(res->returned == DSN_RETURN_HEADERS && sc.hdr_8bit);

	/*
	 * Every boundary has the same length, so the size is the same for
	 * each try; a try is rejected when its boundary shows up anywhere but
	 * in the Content-Type parameter and the delimiters.
	 */
	unsigned parts = res->returned == DSN_RETURN_NONE ? 2 : 3;
	for (unsigned t = 0; t < DSN_BOUNDARY_TRIES; t++) {
		struct w w = { .p = out, .cap = out ? cap : 0 };
		dsn_boundary(seed, t, res->boundary);
		put_dsn(&w, cfg, m, now, res, &sc, text_8bit, res->boundary);
		res->len = w.n;
		if (w.n > w.cap)
			return -ENOSPC;
		if (count_in(out, w.n, res->boundary, DSN_BOUNDARY_LEN) == parts + 2)
			return 0;
	}
	res->len = 0;
	return fail(res, DSN_E_BOUNDARY, 0);
}

int dsn_build_alloc(const struct dsn_config *cfg, const struct dsn_msg *m, int64_t now,
		    uint64_t seed, uint8_t **out, struct dsn_result *res)
{
	*out = NULL;
	int rc = dsn_build(cfg, m, now, seed, NULL, 0, res);
	if (rc != -ENOSPC)
		return rc; /* no DSN, or an error: nothing to allocate */
	if (cfg->max_size && res->len > cfg->max_size)
		return -EFBIG;
	uint8_t *buf = malloc(res->len);
	if (!buf)
		return -ENOMEM;
	rc = dsn_build(cfg, m, now, seed, buf, res->len, res);
	if (rc || res->none != DSN_SEND) {
		free(buf);
		return rc;
	}
	*out = buf;
	return 0;
}
