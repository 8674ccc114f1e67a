/* SPDX-License-Identifier: BSD-3-Clause */
/* The reply table and the one function that turns an entry into a reply line. */
#include <string.h>

#include "dataplane/smtp/reply.h"

#define SMTP_R_DEF_(id, c, e, t) [SMTP_R_##id] = { .code = c, .esc = e, .text = t, .name = #id },
const struct smtp_reply_def smtp_replies[SMTP_R_MAX] = { SMTP_REPLY_TABLE(SMTP_R_DEF_) };
#undef SMTP_R_DEF_

unsigned smtp_reply_code(enum smtp_reply_id id)
{
	if (id <= SMTP_R_NONE || id >= SMTP_R_MAX)
		return 0;
	return smtp_replies[id].code;
}

size_t smtp_reply_format(char *out, size_t cap, enum smtp_reply_id id, const char *arg,
			 size_t arglen, char sep)
{
	if (id <= SMTP_R_NONE || id >= SMTP_R_MAX)
		return 0;
	const struct smtp_reply_def *r = &smtp_replies[id];
	char line[SMTP_REPLY_LINE_MAX];
	size_t n = 0;

	line[n++] = '0' + r->code / 100;
	line[n++] = '0' + r->code / 10 % 10;
	line[n++] = '0' + r->code % 10;
	line[n++] = sep == '-' ? '-' : ' ';
	if (r->esc) {
		size_t el = strlen(r->esc);
		memcpy(line + n, r->esc, el);
		n += el;
		line[n++] = ' ';
	}
	if (arg == NULL)
		arglen = 0;
	if (arglen > SMTP_REPLY_ARG_MAX)
		arglen = SMTP_REPLY_ARG_MAX;
	/* Text is ours (table), the argument is sanitised; both fit: the table is short. */
	for (const char *t = r->text; *t; t++) {
		if (t[0] == '%' && t[1] == 's') {
			for (size_t i = 0; i < arglen && n < sizeof(line) - 2; i++) {
				unsigned char c = (unsigned char)arg[i];
				line[n++] = (c >= 0x20 && c <= 0x7e) ? (char)c : '?';
			}
			t++;
			continue;
		}
		if (n >= sizeof(line) - 2)
			break;
		line[n++] = *t;
	}
	line[n++] = '\r';
	line[n++] = '\n';
	if (n > cap)
		return 0;
	memcpy(out, line, n);
	return n;
}

bool smtp_reply_esc_valid(unsigned code, const char *p, size_t n)
{
	size_t i = 0;

	if (p == NULL || n < 5 || n > 9 || code < 200 || code > 599)
		return false;
	if (p[0] != (char)('0' + code / 100) || p[1] != '.')
		return false;
	i = 2;
	for (int part = 0; part < 2; part++) { /* subject and detail: 1*3digit each */
		size_t d = 0;

		while (i < n && p[i] >= '0' && p[i] <= '9' && d < 3)
			i++, d++;
		if (d == 0)
			return false;
		if (part == 0) {
			if (i >= n || p[i] != '.')
				return false;
			i++;
		}
	}
	return i == n;
}

/* Copies P[0..N) into LINE at *AT, sanitised, stopping where the CRLF must still fit. */
static void put_sanitised(char *line, size_t *at, const char *p, size_t n)
{
	for (size_t i = 0; i < n && *at < SMTP_REPLY_LINE_MAX - 2; i++) {
		unsigned char c = (unsigned char)p[i];

		line[(*at)++] = (c >= 0x20 && c <= 0x7e) ? (char)c : '?';
	}
}

size_t smtp_reply_format_text(char *out, size_t cap, const struct smtp_reply_text *r,
			      const char *prefix, char sep)
{
	char line[SMTP_REPLY_LINE_MAX];
	size_t n = 0;

	if (r == NULL || r->code < 200 || r->code > 599)
		return 0;
	line[n++] = (char)('0' + r->code / 100);
	line[n++] = (char)('0' + r->code / 10 % 10);
	line[n++] = (char)('0' + r->code % 10);
	line[n++] = sep == '-' ? '-' : ' ';
	if (smtp_reply_esc_valid(r->code, r->esc, r->esc_len)) {
		memcpy(line + n, r->esc, r->esc_len);
		n += r->esc_len;
	} else {
		line[n++] = (char)('0' + r->code / 100);
		memcpy(line + n, ".0.0", 4);
		n += 4;
	}
	line[n++] = ' ';
	if (prefix != NULL)
		put_sanitised(line, &n, prefix, strlen(prefix));
	if (r->text != NULL)
		put_sanitised(line, &n, r->text, r->text_len);
	line[n++] = '\r';
	line[n++] = '\n';
	if (n > cap)
		return 0;
	memcpy(out, line, n);
	return n;
}
