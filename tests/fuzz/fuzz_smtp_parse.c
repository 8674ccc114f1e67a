/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target: the SMTP command parser. The input is a stream of
 * command lines; each is parsed from an exact-size heap copy (ASan catches
 * any read past it) and the slices it returns are checked to lie inside it.
 * The first octet picks the parser flags.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/smtp/parse.h"

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x))                                                                          \
			__builtin_trap();                                                          \
	} while (0)

static void in_line(const struct smtp_str *s, const uint8_t *p, size_t n)
{
	if (s->len == 0)
		return;
	CHECK(s->p >= p && s->p + s->len <= p + n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	unsigned flags = data[0] & 1 ? SMTP_PARSE_F_UTF8 : 0;
	data++;
	size--;

	uint8_t *buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);

	size_t off = 0;
	while (off < size) {
		struct smtp_cmd c;
		ssize_t r = smtp_parse_cmd(buf + off, size - off, flags, &c);
		if (r == SMTP_PARSE_PARTIAL)
			break;
		CHECK(r >= 2 && (size_t)r <= size - off);
		const uint8_t *p = buf + off;
		size_t n = (size_t)r - 2;
		CHECK(p[n] == '\r' && p[n + 1] == '\n');
		CHECK(memmem(p, n + 1, "\r\n", 2) == NULL); /* the first CRLF ends it */
		CHECK(c.err < SMTP_PE_MAX && c.verb < SMTP_V_MAX);
		in_line(&c.line, p, n);
		in_line(&c.args, p, n);
		in_line(&c.helo, p, n);
		in_line(&c.path.mailbox, p, n);
		in_line(&c.path.local, p, n);
		in_line(&c.path.domain, p, n);
		in_line(&c.envid, p, n);
		in_line(&c.auth, p, n);
		in_line(&c.orcpt_type, p, n);
		in_line(&c.orcpt_addr, p, n);
		in_line(&c.bad_param, p, n);
		in_line(&c.mech, p, n);
		in_line(&c.initial, p, n);
		if (c.err == SMTP_PE_OK) {
			/* what the parser accepts is clean: no controls, valid UTF-8 */
			for (size_t i = 0; i < n; i++)
				CHECK(p[i] != '\r' && p[i] != '\n' && p[i] != 0);
			CHECK(smtp_utf8_valid(p, n));
			if (c.verb == SMTP_V_MAIL || c.verb == SMTP_V_RCPT) {
				CHECK(c.path.local.len <= SMTP_LOCAL_MAX);
				CHECK(c.path.domain.len <= SMTP_DOMAIN_MAX);
				if (c.path.flags & SMTP_PATH_UTF8)
					CHECK((c.params & SMTP_P_SMTPUTF8) ||
					      (flags & SMTP_PARSE_F_UTF8));
			}
		}
		off += (size_t)r;
	}
	free(buf);
	return 0;
}
