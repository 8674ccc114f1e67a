/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * SMTP command parser: one complete line in, a struct smtp_cmd of slices out.
 * Strict where leniency would let two parsers disagree about what a line
 * says (bare CR/LF, leading zeros in IPv4 literals, malformed UTF-8), lenient
 * only where nothing downstream can be confused (spaces after "FROM:", runs
 * of spaces between parameters, trailing spaces).
 */
#include <limits.h>
#include <string.h>

#include "dataplane/smtp/parse.h"

#define SMTP_PE_NAME_(e) #e,
const char *const smtp_parse_err_names[SMTP_PE_MAX] = { SMTP_PARSE_ERRORS(SMTP_PE_NAME_) };
#undef SMTP_PE_NAME_

const char *const smtp_verb_names[SMTP_V_MAX] = {
	[SMTP_V_UNKNOWN] = "UNKNOWN",	[SMTP_V_HELO] = "HELO", [SMTP_V_EHLO] = "EHLO",
	[SMTP_V_MAIL] = "MAIL",		[SMTP_V_RCPT] = "RCPT", [SMTP_V_DATA] = "DATA",
	[SMTP_V_BDAT] = "BDAT",		[SMTP_V_RSET] = "RSET", [SMTP_V_NOOP] = "NOOP",
	[SMTP_V_QUIT] = "QUIT",		[SMTP_V_VRFY] = "VRFY", [SMTP_V_HELP] = "HELP",
	[SMTP_V_STARTTLS] = "STARTTLS", [SMTP_V_AUTH] = "AUTH", [SMTP_V_EXPN] = "EXPN",
	[SMTP_V_ETRN] = "ETRN",		[SMTP_V_TURN] = "TURN",
};

/* Character classes, locale-free. */
static inline bool is_alpha(uint8_t c)
{
	return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
}

static inline bool is_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

static inline bool is_alnum(uint8_t c)
{
	return is_alpha(c) || is_digit(c);
}

static inline bool is_hex(uint8_t c)
{
	return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

static inline bool is_upper_hex(uint8_t c)
{
	return is_digit(c) || (c >= 'A' && c <= 'F');
}

/* RFC 5322 atext */
static inline bool is_atext(uint8_t c)
{
	static const char specials[] = "!#$%&'*+-/=?^_`{|}~";
	return is_alnum(c) || (c && memchr(specials, c, sizeof(specials) - 1));
}

/* Case-insensitive compare of P[0..N) with the upper-case ASCII word W. */
static bool word_eq(const uint8_t *p, size_t n, const char *w)
{
	size_t wl = strlen(w);
	if (n != wl)
		return false;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];
		if (c >= 'a' && c <= 'z')
			c -= 0x20;
		if (c != (uint8_t)w[i])
			return false;
	}
	return true;
}

static bool prefix_eq(const uint8_t *p, size_t n, const char *w)
{
	size_t wl = strlen(w);
	return n >= wl && word_eq(p, wl, w);
}

bool smtp_utf8_valid(const uint8_t *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		uint8_t c = p[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t need;
		uint8_t lo = 0x80, hi = 0xbf; /* bounds of the second octet */
		if (c >= 0xc2 && c <= 0xdf) {
			need = 1;
		} else if (c >= 0xe0 && c <= 0xef) {
			need = 2;
			if (c == 0xe0)
				lo = 0xa0; /* overlong */
			else if (c == 0xed)
				hi = 0x9f; /* surrogates */
		} else if (c >= 0xf0 && c <= 0xf4) {
			need = 3;
			if (c == 0xf0)
				lo = 0x90; /* overlong */
			else if (c == 0xf4)
				hi = 0x8f; /* > U+10FFFF */
		} else {
			return false; /* continuation octet, C0/C1 overlong lead, F5..FF */
		}
		if (n - i <= need)
			return false;
		if (p[i + 1] < lo || p[i + 1] > hi)
			return false;
		for (size_t k = 2; k <= need; k++)
			if (p[i + k] < 0x80 || p[i + k] > 0xbf)
				return false;
		i += need + 1;
	}
	return true;
}

bool smtp_domain_valid(const uint8_t *p, size_t n, bool utf8)
{
	if (n == 0 || n > SMTP_DOMAIN_MAX)
		return false;
	size_t lab = 0;
	bool hyphen = false, ulabel = false;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];
		if (c == '.') {
			if (lab == 0 || hyphen || (!ulabel && lab > 63))
				return false;
			lab = 0;
			ulabel = false;
			continue;
		}
		if (c == '-') {
			if (lab == 0)
				return false; /* Let-dig first */
		} else if (c >= 0x80) {
			if (!utf8)
				return false;
			ulabel = true;
		} else if (!is_alnum(c)) {
			return false;
		}
		hyphen = c == '-';
		lab++;
	}
	return lab > 0 && !hyphen && (ulabel || lab <= 63);
}

/* Snum "." Snum "." Snum "." Snum, each 0..255, no leading zeros (octal to inet_aton()). */
static bool ipv4_valid(const uint8_t *p, size_t n)
{
	size_t i = 0;
	for (int part = 0; part < 4; part++) {
		if (part > 0) {
			if (i >= n || p[i] != '.')
				return false;
			i++;
		}
		size_t s = i;
		unsigned v = 0;
		while (i < n && is_digit(p[i]) && i - s < 4)
			v = v * 10 + (p[i++] - '0');
		size_t len = i - s;
		if (len == 0 || len > 3 || v > 255 || (len > 1 && p[s] == '0'))
			return false;
	}
	return i == n;
}

/*
 * RFC 5321 §4.1.3 IPv6-addr: 8 groups, or "::" standing for at least two
 * groups with at most 6 others; a trailing IPv4 literal counts as two.
 */
static bool ipv6_valid(const uint8_t *p, size_t n)
{
	size_t i = 0;
	int groups = 0;
	bool dc = false;

	if (n >= 2 && p[0] == ':' && p[1] == ':') {
		dc = true;
		i = 2;
		if (i == n)
			return true;
	}
	for (;;) {
		size_t j = i;
		while (j < n && is_hex(p[j]) && j - i < 5)
			j++;
		if (j < n && p[j] == '.') {
			if (!ipv4_valid(p + i, n - i))
				return false;
			groups += 2;
			break;
		}
		if (j == i || j - i > 4)
			return false;
		groups++;
		i = j;
		if (i == n)
			break;
		if (p[i] != ':')
			return false;
		i++;
		if (i < n && p[i] == ':') {
			if (dc)
				return false;
			dc = true;
			i++;
			if (i == n)
				break;
		} else if (i == n) {
			return false;
		}
		if (groups > 8)
			return false;
	}
	return dc ? groups <= 6 : groups == 8;
}

bool smtp_addr_literal_valid(const uint8_t *p, size_t n)
{
	if (n < 3 || p[0] != '[' || p[n - 1] != ']')
		return false;
	p++;
	n -= 2;
	if (prefix_eq(p, n, "IPV6:"))
		return ipv6_valid(p + 5, n - 5);
	/* General-address-literal (a registered tag other than IPv6) is not supported. */
	return ipv4_valid(p, n);
}

bool smtp_xtext_valid(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];
		if (c == '+') {
			if (n - i < 3 || !is_upper_hex(p[i + 1]) || !is_upper_hex(p[i + 2]))
				return false;
			i += 2;
		} else if (c < 33 || c > 126 || c == '=') {
			return false;
		}
	}
	return true;
}

/* The verb table; verbs are matched case-insensitively on the whole first token. */
static enum smtp_verb verb_lookup(const uint8_t *p, size_t n)
{
	for (int v = SMTP_V_UNKNOWN + 1; v < SMTP_V_MAX; v++)
		if (word_eq(p, n, smtp_verb_names[v]))
			return v;
	return SMTP_V_UNKNOWN;
}

/*
 * Path = "<" [ A-d-l ":" ] Mailbox ">"; also "<>" when NULL_OK and
 * "<Postmaster>" when POSTMASTER_OK. On success *NEXT is just after ">".
 * Non-ASCII octets are accepted here and flagged; the caller decides.
 */
static enum smtp_parse_err parse_path(const uint8_t *p, const uint8_t *end, const uint8_t **next,
				      struct smtp_path *path, bool null_ok, bool postmaster_ok)
{
	const uint8_t *start = p;
	memset(path, 0, sizeof(*path));

	if (p >= end || *p != '<')
		return SMTP_PE_BAD_PATH;
	p++;
	if (p < end && *p == '>') {
		if (!null_ok)
			return SMTP_PE_BAD_PATH;
		path->flags = SMTP_PATH_NULL;
		*next = p + 1;
		return SMTP_PE_OK;
	}

	/* A-d-l = At-domain *( "," At-domain ) ":" ; accepted and ignored (RFC 5321 §C) */
	if (p < end && *p == '@') {
		for (;;) {
			p++; /* the '@' */
			const uint8_t *d = p;
			while (p < end && *p != ',' && *p != ':' && *p != '>')
				p++;
			if (p >= end || *p == '>')
				return SMTP_PE_BAD_PATH;
			if (!smtp_domain_valid(d, p - d, false) &&
			    !smtp_addr_literal_valid(d, p - d))
				return SMTP_PE_BAD_PATH;
			if (*p++ == ':')
				break;
			if (p >= end || *p != '@') /* after ',' comes the next At-domain */
				return SMTP_PE_BAD_PATH;
		}
		path->flags |= SMTP_PATH_SOURCE_ROUTE;
	}

	/* Local-part = Dot-string / Quoted-string */
	const uint8_t *local = p;
	if (p < end && *p == '"') {
		p++;
		for (;;) {
			if (p >= end)
				return SMTP_PE_BAD_PATH;
			uint8_t c = *p;
			if (c == '"')
				break;
			if (c == '\\') {
				if (p + 1 >= end || p[1] < 32 || p[1] > 126)
					return SMTP_PE_BAD_PATH;
				p += 2;
				continue;
			}
			if (c >= 0x80)
				path->flags |= SMTP_PATH_UTF8;
			else if (c < 32 || c > 126)
				return SMTP_PE_BAD_PATH;
			p++;
		}
		p++; /* closing quote */
		path->flags |= SMTP_PATH_QUOTED;
	} else {
		bool atom_empty = true;
		while (p < end) {
			uint8_t c = *p;
			if (c == '.') {
				if (atom_empty)
					return SMTP_PE_BAD_PATH;
				atom_empty = true;
			} else if (is_atext(c)) {
				atom_empty = false;
			} else if (c >= 0x80) {
				path->flags |= SMTP_PATH_UTF8;
				atom_empty = false;
			} else {
				break;
			}
			p++;
		}
		if (atom_empty) /* empty, or ends in a dot */
			return SMTP_PE_BAD_PATH;
	}
	path->local.p = local;
	path->local.len = p - local;

	if (p < end && *p == '>' && postmaster_ok && !(path->flags & SMTP_PATH_SOURCE_ROUTE) &&
	    word_eq(local, p - local, "POSTMASTER")) {
		path->flags |= SMTP_PATH_POSTMASTER;
		path->mailbox = path->local;
		*next = p + 1;
		return SMTP_PE_OK;
	}
	if (p >= end || *p != '@')
		return SMTP_PE_BAD_PATH;
	p++;

	const uint8_t *dom = p;
	if (p < end && *p == '[') {
		while (p < end && *p != ']' && *p != '>')
			p++;
		if (p >= end || *p != ']')
			return SMTP_PE_BAD_PATH;
		p++;
		if (!smtp_addr_literal_valid(dom, p - dom))
			return SMTP_PE_BAD_PATH;
		path->flags |= SMTP_PATH_LITERAL;
	} else {
		while (p < end && *p != '>' && *p != ' ')
			p++;
		for (const uint8_t *q = dom; q < p; q++)
			if (*q >= 0x80)
				path->flags |= SMTP_PATH_UTF8;
		if (!smtp_domain_valid(dom, p - dom, true))
			return SMTP_PE_BAD_PATH;
	}
	if (p >= end || *p != '>')
		return SMTP_PE_BAD_PATH;
	path->domain.p = dom;
	path->domain.len = p - dom;
	path->mailbox.p = local;
	path->mailbox.len = p - local;
	p++;

	if (path->local.len > SMTP_LOCAL_MAX || path->domain.len > SMTP_DOMAIN_MAX ||
	    (size_t)(p - start) > SMTP_PATH_MAX)
		return SMTP_PE_PATH_TOO_LONG;
	*next = p;
	return SMTP_PE_OK;
}

static bool all_digits(const uint8_t *p, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_digit(p[i]))
			return false;
	return true;
}

/* NOTIFY=NEVER / 1#(SUCCESS / FAILURE / DELAY), no repeats */
static bool parse_notify(const uint8_t *p, size_t n, uint8_t *out)
{
	if (word_eq(p, n, "NEVER")) {
		*out = SMTP_NOTIFY_NEVER;
		return true;
	}
	uint8_t m = 0;
	size_t i = 0;
	while (i <= n) {
		size_t s = i;
		while (i < n && p[i] != ',')
			i++;
		uint8_t bit;
		if (word_eq(p + s, i - s, "SUCCESS"))
			bit = SMTP_NOTIFY_SUCCESS;
		else if (word_eq(p + s, i - s, "FAILURE"))
			bit = SMTP_NOTIFY_FAILURE;
		else if (word_eq(p + s, i - s, "DELAY"))
			bit = SMTP_NOTIFY_DELAY;
		else
			return false;
		if (m & bit)
			return false;
		m |= bit;
		i++; /* the comma, or one past the end */
	}
	*out = m;
	return true;
}

/*
 * ORCPT=addr-type ";" xtext (RFC 3461 §4.2); raw UTF-8 only for addr-type
 * "utf-8" in an SMTPUTF8 transaction (RFC 6533 utf-8-addr-unitext).
 */
static bool parse_orcpt(const uint8_t *p, size_t n, bool utf8, struct smtp_cmd *cmd)
{
	if (n > SMTP_ORCPT_MAX)
		return false;
	size_t i = 0;
	while (i < n && is_atext(p[i]))
		i++;
	if (i == 0 || i >= n || p[i] != ';' || i + 1 >= n)
		return false;
	cmd->orcpt_type.p = p;
	cmd->orcpt_type.len = i;
	cmd->orcpt_addr.p = p + i + 1;
	cmd->orcpt_addr.len = n - i - 1;
	bool utf8_ok = utf8 && word_eq(p, i, "UTF-8");
	const uint8_t *a = p + i + 1;
	size_t an = n - i - 1;
	for (size_t k = 0; k < an; k++) {
		if (a[k] >= 0x80) {
			if (!utf8_ok)
				return false;
			continue;
		}
		if (a[k] == '+') {
			if (an - k < 3 || !is_upper_hex(a[k + 1]) || !is_upper_hex(a[k + 2]))
				return false;
			k += 2;
		} else if (a[k] < 33 || a[k] > 126 || a[k] == '=') {
			return false;
		}
	}
	return true;
}

/* One esmtp-param of MAIL (IS_MAIL) or RCPT. */
static enum smtp_parse_err mail_rcpt_param(struct smtp_cmd *cmd, bool is_mail, unsigned flags,
					   const uint8_t *kw, size_t kwl, bool has_val,
					   const uint8_t *v, size_t vl)
{
	unsigned bit;
	bool ok;

	if (is_mail && word_eq(kw, kwl, "SIZE")) {
		bit = SMTP_P_SIZE;
		ok = has_val && vl <= 20 && all_digits(v, vl);
		if (ok) {
			uint64_t s = 0;
			for (size_t i = 0; i < vl; i++) {
				unsigned d = v[i] - '0';
				s = (s > (UINT64_MAX - d) / 10) ? UINT64_MAX : s * 10 + d;
			}
			cmd->size = s;
		}
	} else if (is_mail && word_eq(kw, kwl, "BODY")) {
		bit = SMTP_P_BODY;
		ok = has_val;
		if (ok && word_eq(v, vl, "7BIT"))
			cmd->body = SMTP_BODY_7BIT;
		else if (ok && word_eq(v, vl, "8BITMIME"))
			cmd->body = SMTP_BODY_8BITMIME;
		else if (ok && word_eq(v, vl, "BINARYMIME"))
			cmd->body = SMTP_BODY_BINARYMIME;
		else
			ok = false;
	} else if (is_mail && word_eq(kw, kwl, "SMTPUTF8")) {
		bit = SMTP_P_SMTPUTF8;
		ok = !has_val;
	} else if (is_mail && word_eq(kw, kwl, "RET")) {
		bit = SMTP_P_RET;
		ok = has_val;
		if (ok && word_eq(v, vl, "FULL"))
			cmd->ret = SMTP_RET_FULL;
		else if (ok && word_eq(v, vl, "HDRS"))
			cmd->ret = SMTP_RET_HDRS;
		else
			ok = false;
	} else if (is_mail && word_eq(kw, kwl, "ENVID")) {
		bit = SMTP_P_ENVID;
		ok = has_val && vl > 0 && vl <= SMTP_ENVID_MAX && smtp_xtext_valid(v, vl);
		cmd->envid.p = v;
		cmd->envid.len = vl;
	} else if (is_mail && word_eq(kw, kwl, "AUTH")) {
		bit = SMTP_P_AUTH;
		ok = has_val && vl > 0 && vl <= SMTP_AUTHP_MAX &&
		     ((vl == 2 && v[0] == '<' && v[1] == '>') || smtp_xtext_valid(v, vl));
		cmd->auth.p = v;
		cmd->auth.len = vl;
	} else if (!is_mail && word_eq(kw, kwl, "NOTIFY")) {
		bit = SMTP_P_NOTIFY;
		ok = has_val && parse_notify(v, vl, &cmd->notify);
	} else if (!is_mail && word_eq(kw, kwl, "ORCPT")) {
		bit = SMTP_P_ORCPT;
		ok = has_val && parse_orcpt(v, vl, flags & SMTP_PARSE_F_UTF8, cmd);
	} else {
		return SMTP_PE_PARAM_UNKNOWN;
	}
	if (cmd->params & bit)
		return SMTP_PE_PARAM_DUPLICATE;
	cmd->params |= bit;
	return ok ? SMTP_PE_OK : SMTP_PE_PARAM_BAD_VALUE;
}

/* Mail-parameters / Rcpt-parameters: *( SP esmtp-param ), P at the first space or END. */
static enum smtp_parse_err parse_params(struct smtp_cmd *cmd, bool is_mail, unsigned flags,
					const uint8_t *p, const uint8_t *end)
{
	if (p < end && *p != ' ')
		return SMTP_PE_SYNTAX;
	while (p < end) {
		while (p < end && *p == ' ')
			p++;
		if (p >= end)
			break;
		const uint8_t *kw = p;
		if (!is_alnum(*p))
			return SMTP_PE_PARAM_SYNTAX;
		while (p < end && (is_alnum(*p) || *p == '-'))
			p++;
		size_t kwl = p - kw;
		bool has_val = false;
		const uint8_t *v = p;
		if (p < end && *p == '=') {
			has_val = true;
			v = ++p;
			/* 1*(%d33-60 / %d62-126), plus UTF-8 (each keyword checks its own) */
			while (p < end && *p != ' ') {
				if (*p == '=' || (*p < 33) || *p == 127)
					return SMTP_PE_PARAM_SYNTAX;
				p++;
			}
		} else if (p < end && *p != ' ') {
			return SMTP_PE_PARAM_SYNTAX;
		}
		enum smtp_parse_err e =
			mail_rcpt_param(cmd, is_mail, flags, kw, kwl, has_val, v, p - v);
		if (e != SMTP_PE_OK) {
			cmd->bad_param.p = kw;
			cmd->bad_param.len = kwl;
			return e;
		}
	}
	return SMTP_PE_OK;
}

static enum smtp_parse_err parse_mail_rcpt(struct smtp_cmd *cmd, bool is_mail, unsigned flags)
{
	const uint8_t *p = cmd->args.p, *end = cmd->args.p + cmd->args.len;
	const char *kw = is_mail ? "FROM:" : "TO:";
	if (!prefix_eq(p, end - p, kw))
		return SMTP_PE_SYNTAX;
	p += strlen(kw);
	while (p < end && *p == ' ') /* not in RFC 5321, harmless and common */
		p++;
	if (p >= end)
		return SMTP_PE_SYNTAX;

	const uint8_t *next;
	enum smtp_parse_err e = parse_path(p, end, &next, &cmd->path, is_mail, !is_mail);
	if (e != SMTP_PE_OK)
		return e;
	e = parse_params(cmd, is_mail, flags, next, end);
	if (e != SMTP_PE_OK)
		return e;
	bool utf8_ok = is_mail ? (cmd->params & SMTP_P_SMTPUTF8) : (flags & SMTP_PARSE_F_UTF8);
	if ((cmd->path.flags & SMTP_PATH_UTF8) && !utf8_ok)
		return SMTP_PE_UTF8_ADDRESS;
	return SMTP_PE_OK;
}

static enum smtp_parse_err parse_bdat(struct smtp_cmd *cmd)
{
	const uint8_t *p = cmd->args.p, *end = cmd->args.p + cmd->args.len;
	uint64_t v = 0;
	const uint8_t *s = p;
	while (p < end && is_digit(*p)) {
		unsigned d = *p++ - '0';
		if (v > (((uint64_t)INT64_MAX) - d) / 10)
			return SMTP_PE_BDAT_SIZE;
		v = v * 10 + d;
	}
	if (p == s || (p < end && *p != ' '))
		return SMTP_PE_BDAT_SIZE;
	cmd->chunk_size = v;
	while (p < end && *p == ' ')
		p++;
	if (p < end) {
		if (!word_eq(p, end - p, "LAST"))
			return SMTP_PE_SYNTAX;
		cmd->last = true;
	}
	return SMTP_PE_OK;
}

/* AUTH mechanism [SP initial-response] (RFC 4954 §4) */
static enum smtp_parse_err parse_auth(struct smtp_cmd *cmd)
{
	const uint8_t *p = cmd->args.p, *end = cmd->args.p + cmd->args.len;
	const uint8_t *m = p;
	while (p < end && (is_alnum(*p) || *p == '-' || *p == '_'))
		p++;
	if (p == m || p - m > 20 || (p < end && *p != ' '))
		return SMTP_PE_SYNTAX;
	cmd->mech.p = m;
	cmd->mech.len = p - m;
	while (p < end && *p == ' ')
		p++;
	if (p < end) {
		const uint8_t *r = p;
		for (; p < end; p++)
			if (!is_alnum(*p) && *p != '+' && *p != '/' && *p != '=')
				return SMTP_PE_SYNTAX;
		cmd->initial.p = r;
		cmd->initial.len = p - r;
	}
	return SMTP_PE_OK;
}

static enum smtp_parse_err parse_args(struct smtp_cmd *cmd, unsigned flags)
{
	const struct smtp_str *a = &cmd->args;

	switch (cmd->verb) {
	case SMTP_V_HELO:
	case SMTP_V_EHLO:
		if (a->len == 0)
			return SMTP_PE_SYNTAX;
		cmd->helo = *a;
		if (a->p[0] == '[' ? !smtp_addr_literal_valid(a->p, a->len) :
				     !smtp_domain_valid(a->p, a->len, false))
			return SMTP_PE_BAD_DOMAIN;
		return SMTP_PE_OK;
	case SMTP_V_MAIL:
		return parse_mail_rcpt(cmd, true, flags);
	case SMTP_V_RCPT:
		return parse_mail_rcpt(cmd, false, flags);
	case SMTP_V_DATA:
	case SMTP_V_RSET:
	case SMTP_V_QUIT:
	case SMTP_V_STARTTLS:
		return a->len ? SMTP_PE_NO_ARGS_ALLOWED : SMTP_PE_OK;
	case SMTP_V_VRFY:
	case SMTP_V_EXPN:
		return a->len ? SMTP_PE_OK : SMTP_PE_SYNTAX;
	case SMTP_V_BDAT:
		return parse_bdat(cmd);
	case SMTP_V_AUTH:
		return parse_auth(cmd);
	default: /* NOOP, HELP: [SP String]; ETRN, TURN: never run */
		return SMTP_PE_OK;
	}
}

ssize_t smtp_find_crlf(const uint8_t *buf, size_t len)
{
	const uint8_t *p = buf, *end = buf + len;
	while (p < end) {
		const uint8_t *lf = memchr(p, '\n', end - p);
		if (lf == NULL)
			return -1;
		if (lf > buf && lf[-1] == '\r')
			return lf - 1 - buf;
		p = lf + 1;
	}
	return -1;
}

ssize_t smtp_parse_cmd(const uint8_t *buf, size_t len, unsigned flags, struct smtp_cmd *cmd)
{
	if (len > INT_MAX)
		len = INT_MAX;
	ssize_t cr = smtp_find_crlf(buf, len);
	if (cr < 0)
		return SMTP_PARSE_PARTIAL;

	memset(cmd, 0, sizeof(*cmd));
	size_t n = (size_t)cr;
	cmd->line.p = buf;
	cmd->line.len = n;

	/* Octet-level checks first: they apply whatever the verb. */
	bool eight = false, nul = false;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = buf[i];
		if (c == '\n') {
			cmd->err = SMTP_PE_BARE_LF;
			break;
		}
		if (c == '\r') {
			cmd->err = SMTP_PE_BARE_CR;
			break;
		}
		nul |= c == 0;
		eight |= c >= 0x80;
	}
	if (cmd->err == SMTP_PE_OK && nul)
		cmd->err = SMTP_PE_NUL;
	if (cmd->err == SMTP_PE_OK && eight && !smtp_utf8_valid(buf, n))
		cmd->err = SMTP_PE_BAD_UTF8;

	size_t v = 0;
	while (v < n && buf[v] != ' ')
		v++;
	cmd->verb = verb_lookup(buf, v);
	size_t a = v;
	while (a < n && buf[a] == ' ')
		a++;
	size_t e = n;
	while (e > a && (buf[e - 1] == ' ' || buf[e - 1] == '\t'))
		e--;
	cmd->args.p = buf + a;
	cmd->args.len = e - a;

	if (cmd->err != SMTP_PE_OK)
		return cr + 2;
	if (a == n && v == 0) {
		cmd->err = SMTP_PE_EMPTY;
		return cr + 2;
	}
	if (cmd->verb == SMTP_V_UNKNOWN) {
		cmd->err = SMTP_PE_UNKNOWN_VERB;
		return cr + 2;
	}
	cmd->err = parse_args(cmd, flags);
	return cr + 2;
}
