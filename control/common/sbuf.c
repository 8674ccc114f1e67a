/* SPDX-License-Identifier: BSD-3-Clause */
/* A growable text buffer (see sbuf.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/common/sbuf.h"

static bool reserve(struct sbuf *b, size_t more)
{
	size_t need = b->len + more + 1;
	char *p;

	if (b->oom)
		return false;
	if (need <= b->cap)
		return true;

	size_t cap = b->cap != 0 ? b->cap : 256;

	while (cap < need)
		cap *= 2;
	p = realloc(b->data, cap);
	if (p == NULL) {
		b->oom = true;
		return false;
	}
	b->data = p;
	b->cap = cap;
	return true;
}

void sbuf_add(struct sbuf *b, const char *s, size_t len)
{
	if (!reserve(b, len))
		return;
	memcpy(b->data + b->len, s, len);
	b->len += len;
	b->data[b->len] = '\0';
}

void sbuf_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void sbuf_add_escaped(struct sbuf *b, const char *s, char quote)
{
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p == '\\' || (quote != '\0' && *p == (unsigned char)quote))
			sbuf_printf(b, "\\%c", *p);
		else if (*p == '\n')
			sbuf_add(b, "\\n", 2);
		else if (*p < 0x20 || *p >= 0x7f)
			sbuf_printf(b, "\\x%02x", *p);
		else
			sbuf_add(b, (const char *)p, 1);
	}
}

char *sbuf_take(struct sbuf *b)
{
	char *s = b->oom ? NULL : b->data;

	if (b->oom)
		free(b->data);
	*b = (struct sbuf){ 0 };
	return s;
}

void sbuf_free(struct sbuf *b)
{
	free(b->data);
	*b = (struct sbuf){ 0 };
}
