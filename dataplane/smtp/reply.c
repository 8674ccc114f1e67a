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
