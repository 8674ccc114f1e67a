/* SPDX-License-Identifier: BSD-3-Clause */
/* The Received: trace field, its protocol keyword and its date. */
#include <string.h>

#include <criterion/criterion.h>

#include "dataplane/smtp/received.h"

static void expect_date(int64_t t, const char *want)
{
	char out[64];
	size_t n = smtp_date_format(out, sizeof(out), t);
	cr_assert_eq(n, strlen(want), "%lld", (long long)t);
	cr_assert(memcmp(out, want, n) == 0, "%lld: %.*s", (long long)t, (int)n, out);
}

Test(received, dates_are_rfc_5322_in_utc)
{
	expect_date(0, "Thu, 01 Jan 1970 00:00:00 +0000");
	expect_date(-1, "Wed, 31 Dec 1969 23:59:59 +0000");
	expect_date(951782400, "Tue, 29 Feb 2000 00:00:00 +0000");
	expect_date(1767225600, "Thu, 01 Jan 2026 00:00:00 +0000");
	expect_date(1772323199, "Sat, 28 Feb 2026 23:59:59 +0000");
	expect_date(4102444800, "Fri, 01 Jan 2100 00:00:00 +0000");
}

Test(received, protocol_keywords_follow_rfc_3848_and_6531)
{
	cr_assert_str_eq(smtp_protocol_keyword(false, false, false, false), "SMTP");
	cr_assert_str_eq(smtp_protocol_keyword(true, false, false, false), "ESMTP");
	cr_assert_str_eq(smtp_protocol_keyword(true, false, true, false), "ESMTPA");
	cr_assert_str_eq(smtp_protocol_keyword(true, true, false, false), "ESMTPS");
	cr_assert_str_eq(smtp_protocol_keyword(true, true, true, false), "ESMTPSA");
	cr_assert_str_eq(smtp_protocol_keyword(true, false, false, true), "UTF8SMTP");
	cr_assert_str_eq(smtp_protocol_keyword(true, false, true, true), "UTF8SMTPA");
	cr_assert_str_eq(smtp_protocol_keyword(true, true, false, true), "UTF8SMTPS");
	cr_assert_str_eq(smtp_protocol_keyword(true, true, true, true), "UTF8SMTPSA");
}

Test(received, the_field_is_folded_and_names_one_recipient)
{
	char out[SMTP_RECEIVED_MAX];
	struct smtp_received r = {
		.by = "mx.example.com",
		.helo = { (const uint8_t *)"[203.0.113.9]", 13 },
		.client = "[203.0.113.9]",
		.protocol = "ESMTPS",
		.queue_id = "0123456789ABCDEFGHJK",
		.for_rcpt = { (const uint8_t *)"user@example.com", 16 },
		.wall_s = 1767225600,
	};
	const char want[] = "Received: from [203.0.113.9] ([203.0.113.9])\r\n"
			    "\tby mx.example.com (mxgate) with ESMTPS id 0123456789ABCDEFGHJK\r\n"
			    "\tfor <user@example.com>; Thu, 01 Jan 2026 00:00:00 +0000\r\n";
	size_t n = smtp_received_format(out, sizeof(out), &r);
	cr_assert_eq(n, sizeof(want) - 1);
	cr_assert(memcmp(out, want, n) == 0, "%.*s", (int)n, out);

	r.for_rcpt.len = 0;
	n = smtp_received_format(out, sizeof(out), &r);
	cr_assert_null(memmem(out, n, "for <", 5), "no recipient named for several");
	cr_assert_eq(smtp_received_format(out, 40, &r), 0, "too small: nothing");
}
