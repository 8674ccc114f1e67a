/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Dot-stuffing: runs without a line-initial "." are copied whole (memchr
 * finds the candidates), so ordinary text costs a memcpy, not a branch per
 * octet.
 */
#include <string.h>

#include "dataplane/smtp/client_stuff.h"

#define CRLF16 0x0d0a

void smtp_stuff_init(struct smtp_stuff *s, bool dot)
{
	s->dot = dot;
	s->bol = true;
	s->tail = CRLF16; /* empty content needs no CRLF added */
}

static inline bool is_eol(uint8_t c)
{
	return c == '\r' || c == '\n';
}

/* IN[0..N) was written: remember where lines start and how the content ends. */
static void advance(struct smtp_stuff *s, const uint8_t *in, size_t n)
{
	if (n >= 2)
		s->tail = (uint16_t)(in[n - 2] << 8 | in[n - 1]);
	else
		s->tail = (uint16_t)(s->tail << 8 | in[0]);
	s->bol = is_eol(in[n - 1]);
}

size_t smtp_stuff(struct smtp_stuff *s, const uint8_t *in, size_t n, uint8_t *out, size_t cap,
		  size_t *out_len)
{
	size_t i = 0, o = 0;

	if (!s->dot) {
		size_t k = n < cap ? n : cap;
		if (k) {
			memcpy(out, in, k);
			advance(s, in, k);
		}
		*out_len = k;
		return k;
	}
	while (i < n && o < cap) {
		if (s->bol && in[i] == '.') {
			if (cap - o < 2)
				break;
			out[o++] = '.';
			out[o++] = '.';
			advance(s, in + i, 1);
			i++;
			continue;
		}
		/* in[i] needs no stuffing: copy up to the next "." that starts a line. */
		size_t lim = n - i < cap - o ? n - i : cap - o;
		size_t end = i + lim, j = i + 1;
		while (j < end) {
			const uint8_t *d = memchr(in + j, '.', end - j);
			if (!d) {
				j = end;
				break;
			}
			size_t k = (size_t)(d - in);
			if (is_eol(in[k - 1])) {
				j = k;
				break;
			}
			j = k + 1;
		}
		memcpy(out + o, in + i, j - i);
		o += j - i;
		advance(s, in + i, j - i);
		i = j;
	}
	*out_len = o;
	return i;
}

bool smtp_stuff_ends_crlf(const struct smtp_stuff *s)
{
	return s->tail == CRLF16;
}

size_t smtp_stuff_end(const struct smtp_stuff *s, uint8_t *out)
{
	size_t n = 0;
	if (!smtp_stuff_ends_crlf(s)) {
		out[n++] = '\r';
		out[n++] = '\n';
	}
	if (s->dot) {
		out[n++] = '.';
		out[n++] = '\r';
		out[n++] = '\n';
	}
	return n;
}
