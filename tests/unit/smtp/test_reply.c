/* SPDX-License-Identifier: BSD-3-Clause */
/* The reply table: codes and enhanced codes agree, and no argument can break a reply line. */
#include <string.h>

#include <criterion/criterion.h>

#include "dataplane/smtp/reply.h"

Test(reply, every_enhanced_code_has_the_class_of_its_reply_code)
{
	for (int id = SMTP_R_NONE + 1; id < SMTP_R_MAX; id++) {
		const struct smtp_reply_def *r = &smtp_replies[id];
		cr_assert(r->code >= 200 && r->code <= 599, "%s", r->name);
		cr_assert_not_null(r->text, "%s", r->name);
		if (!r->esc) {
			/* RFC 2034 §3: greeting, HELO/EHLO, 354 and 334 carry none */
			cr_assert(r->code == 220 || r->code == 250 || r->code == 354 ||
					  r->code == 334,
				  "%s has no enhanced code", r->name);
			continue;
		}
		cr_assert_eq(r->esc[0] - '0', r->code / 100, "%s: %d vs %s", r->name, r->code,
			     r->esc);
		cr_assert_eq(r->esc[1], '.', "%s", r->name);
	}
}

Test(reply, a_reply_is_code_enhanced_code_text_and_crlf)
{
	char out[600];
	size_t n = smtp_reply_format(out, sizeof(out), SMTP_R_NEED_MAIL, NULL, 0, ' ');
	cr_assert_eq(n, strlen("503 5.5.1 Error: need MAIL command\r\n"));
	cr_assert(memcmp(out, "503 5.5.1 Error: need MAIL command\r\n", n) == 0);
	n = smtp_reply_format(out, sizeof(out), SMTP_R_EHLO, "PIPELINING", 10, '-');
	cr_assert(memcmp(out, "250-PIPELINING\r\n", n) == 0);
}

Test(reply, client_octets_in_an_argument_cannot_end_the_line)
{
	char out[600];
	const char evil[] = "FOO\r\n250 2.0.0 injected";
	size_t n = smtp_reply_format(out, sizeof(out), SMTP_R_PARAM_UNKNOWN, evil, sizeof(evil) - 1,
				     ' ');
	cr_assert_eq(memmem(out, n, "\r\n", 2), out + n - 2, "one line only");
	cr_assert(memcmp(out, "555 5.5.4 Unsupported option: FOO??250", 38) == 0);
}

Test(reply, a_long_argument_is_cut_and_the_line_stays_under_512)
{
	char out[600], arg[2000];
	memset(arg, 'a', sizeof(arg));
	for (int id = SMTP_R_NONE + 1; id < SMTP_R_MAX; id++) {
		size_t n = smtp_reply_format(out, sizeof(out), id, arg, sizeof(arg), ' ');
		cr_assert_gt(n, 0);
		cr_assert_leq(n, SMTP_REPLY_LINE_MAX, "%s", smtp_replies[id].name);
	}
}

Test(reply, nothing_is_written_when_it_does_not_fit)
{
	char out[8] = "xxxxxxx";
	cr_assert_eq(smtp_reply_format(out, sizeof(out), SMTP_R_NEED_MAIL, NULL, 0, ' '), 0);
	cr_assert_eq(out[0], 'x');
	cr_assert_eq(smtp_reply_format(out, sizeof(out), SMTP_R_MAX, NULL, 0, ' '), 0);
	cr_assert_eq(smtp_reply_code(SMTP_R_NONE), 0);
}
