/* SPDX-License-Identifier: BSD-3-Clause */
/* The relay's rate-limited event log (relay_log.h). */
#include "dataplane/relay/relay_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void relay_log_init(struct relay_log *l, unsigned per_sec, uint64_t hz, uint64_t now,
		    const char *prefix, relay_log_write_fn write, void *arg)
{
	memset(l, 0, sizeof(*l));
	tbucket_init(&l->tb, per_sec, per_sec, hz, now);
	l->write = write;
	l->arg = arg;
	snprintf(l->prefix, sizeof(l->prefix), "%s", prefix ? prefix : "");
}

static void emit(struct relay_log *l, const char *line, size_t n)
{
	l->lines++;
	if (l->write != NULL)
		l->write(l->arg, line, n);
}

bool relay_log_printf(struct relay_log *l, uint64_t now, const char *fmt, ...)
{
	char line[RELAY_LOG_LINE_MAX];
	va_list ap;
	int n;

	if (!tbucket_take(&l->tb, now)) {
		l->dropped++;
		l->unreported++;
		return false;
	}
	if (l->unreported != 0) {
		/* the summary takes this token; the line itself needs another */
		n = snprintf(line, sizeof(line), "%s%llu log lines dropped (rate limit)\n", l->prefix,
			     (unsigned long long)l->unreported);
		emit(l, line, (size_t)n);
		l->unreported = 0;
		if (!tbucket_take(&l->tb, now)) {
			l->dropped++;
			l->unreported++;
			return false;
		}
	}
	size_t p = strlen(l->prefix);
	memcpy(line, l->prefix, p);
	va_start(ap, fmt);
	n = vsnprintf(line + p, sizeof(line) - p - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	p += (size_t)n < sizeof(line) - p - 1 ? (size_t)n : sizeof(line) - p - 2;
	line[p++] = '\n';
	emit(l, line, p);
	return true;
}

const char *relay_log_quote(char *out, size_t cap, const void *p, size_t n, bool space_ok)
{
	static const char hex[] = "0123456789abcdef";
	const uint8_t *s = p;
	size_t o = 0;

	if (cap == 0)
		return out;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = s[i];
		bool plain = (c > 0x20 && c < 0x7f && c != '"' && c != '\\') || (c == ' ' && space_ok);

		if (plain) {
			if (o + 1 >= cap)
				break;
			out[o++] = (char)c;
			continue;
		}
		if (o + 4 >= cap)
			break;
		out[o++] = '\\';
		out[o++] = 'x';
		out[o++] = hex[c >> 4];
		out[o++] = hex[c & 15];
	}
	out[o] = '\0';
	return out;
}
