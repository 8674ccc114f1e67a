/* SPDX-License-Identifier: BSD-3-Clause */
/* Received: header field (RFC 5321 §4.4 Time-stamp-line). */
#include <string.h>

#include "dataplane/smtp/received.h"

const char *smtp_protocol_keyword(bool esmtp, bool tls, bool auth, bool utf8)
{
	static const char *const kw[2][4] = {
		{ "ESMTP", "ESMTPA", "ESMTPS", "ESMTPSA" },
		{ "UTF8SMTP", "UTF8SMTPA", "UTF8SMTPS", "UTF8SMTPSA" },
	};
	if (!esmtp)
		return "SMTP";
	return kw[utf8][(tls ? 2 : 0) + (auth ? 1 : 0)];
}

/* Days since 1970-01-01 to the proleptic Gregorian date (Howard Hinnant's civil_from_days). */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static size_t put(char *out, size_t cap, size_t n, const void *s, size_t len)
{
	if (n + len > cap)
		return cap + 1;
	memcpy(out + n, s, len);
	return n + len;
}

static size_t puts_(char *out, size_t cap, size_t n, const char *s)
{
	return put(out, cap, n, s, strlen(s));
}

static size_t put_num(char *out, size_t cap, size_t n, int64_t v, int width)
{
	char b[24];
	int i = sizeof(b);
	bool neg = v < 0;
	uint64_t u = neg ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
	do {
		b[--i] = '0' + u % 10;
		u /= 10;
	} while (u && i > 1);
	while ((int)sizeof(b) - i < width && i > 1)
		b[--i] = '0';
	if (neg)
		b[--i] = '-';
	return put(out, cap, n, b + i, sizeof(b) - i);
}

size_t smtp_date_format(char *out, size_t cap, int64_t unix_s)
{
	static const char wd[7][4] = { "Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed" };
	static const char mon[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	int64_t days = unix_s / 86400, secs = unix_s % 86400;
	if (secs < 0) {
		secs += 86400;
		days--;
	}
	int64_t y;
	unsigned m, d;
	civil_from_days(days, &y, &m, &d);
	size_t n = 0;
	n = put(out, cap, n, wd[((days % 7) + 7) % 7], 3);
	n = put(out, cap, n, ", ", 2);
	n = put_num(out, cap, n, d, 2);
	n = put(out, cap, n, " ", 1);
	n = put(out, cap, n, mon[m - 1], 3);
	n = put(out, cap, n, " ", 1);
	n = put_num(out, cap, n, y, 4);
	n = put(out, cap, n, " ", 1);
	n = put_num(out, cap, n, secs / 3600, 2);
	n = put(out, cap, n, ":", 1);
	n = put_num(out, cap, n, secs / 60 % 60, 2);
	n = put(out, cap, n, ":", 1);
	n = put_num(out, cap, n, secs % 60, 2);
	n = put(out, cap, n, " +0000", 6);
	return n > cap ? 0 : n;
}

size_t smtp_received_format(char *out, size_t cap, const struct smtp_received *r)
{
	char date[40];
	size_t dl = smtp_date_format(date, sizeof(date), r->wall_s);
	size_t n = 0;

	n = puts_(out, cap, n, "Received: from ");
	n = put(out, cap, n, r->helo.p, r->helo.len);
	n = puts_(out, cap, n, " (");
	n = puts_(out, cap, n, r->client);
	n = puts_(out, cap, n, ")\r\n\tby ");
	n = puts_(out, cap, n, r->by);
	n = puts_(out, cap, n, " (mxgate) with ");
	n = puts_(out, cap, n, r->protocol);
	n = puts_(out, cap, n, " id ");
	n = puts_(out, cap, n, r->queue_id);
	if (r->for_rcpt.len) {
		n = puts_(out, cap, n, "\r\n\tfor <");
		n = put(out, cap, n, r->for_rcpt.p, r->for_rcpt.len);
		n = puts_(out, cap, n, ">");
	}
	n = puts_(out, cap, n, "; ");
	n = put(out, cap, n, date, dl);
	n = puts_(out, cap, n, "\r\n");
	return n > cap ? 0 : n;
}
