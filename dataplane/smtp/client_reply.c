/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Reply lines, EHLO keywords and xtext for the SMTP client. Strict on what
 * frames a reply (the code, the separator, line endings): a client that
 * guesses there reads the next reply out of step. Lenient on what only a
 * human reads (the text), which the session sanitises before keeping it.
 */
#include <string.h>

#include "dataplane/smtp/client_reply.h"

#define SMTP_RLE_NAME_(e) #e,
const char *const smtp_reply_line_err_names[SMTP_RLE_MAX] = { SMTP_REPLY_LINE_ERRORS(
	SMTP_RLE_NAME_) };
#undef SMTP_RLE_NAME_

static inline bool is_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

static inline bool is_alnum(uint8_t c)
{
	return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
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

/* 1*3DIGIT at P[*I..N); advances *I. */
static bool digits_1_3(const uint8_t *p, size_t n, size_t *i)
{
	size_t s = *i;
	while (*i < n && is_digit(p[*i]) && *i - s < 3)
		(*i)++;
	return *i > s && (*i >= n || !is_digit(p[*i]));
}

/*
 * RFC 3463 §2 status-code = class "." subject "." detail, class being
 * CLASS; then the end of the text or a space (RFC 2034 §4).
 */
static size_t esc_len(const uint8_t *p, size_t n, uint8_t class)
{
	size_t i = 0;
	if (n < 5 || p[0] != class || p[1] != '.')
		return 0;
	i = 2;
	if (!digits_1_3(p, n, &i) || i >= n || p[i] != '.')
		return 0;
	i++;
	if (!digits_1_3(p, n, &i))
		return 0;
	if (i < n && p[i] != ' ')
		return 0;
	return i;
}

enum smtp_reply_line_err smtp_reply_parse_line(const uint8_t *p, size_t len,
					       struct smtp_reply_line *out)
{
	if (len < 3 || p[0] < '2' || p[0] > '5' || p[1] < '0' || p[1] > '5' || !is_digit(p[2]))
		return SMTP_RLE_BAD_CODE;
	if (len > 3 && p[3] != ' ' && p[3] != '-')
		return SMTP_RLE_BAD_CODE;
	for (size_t i = 3; i < len; i++) {
		if (p[i] == '\r')
			return SMTP_RLE_BARE_CR;
		if (p[i] == '\n')
			return SMTP_RLE_BARE_LF;
	}
	memset(out, 0, sizeof(*out));
	out->code = (uint16_t)((p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0'));
	out->more = len > 3 && p[3] == '-';
	if (len > 4)
		out->text = (struct smtp_str){ p + 4, len - 4 };
	out->msg = out->text;
	size_t el = esc_len(out->text.p, out->text.len, p[0]);
	if (el) {
		out->esc = (struct smtp_str){ out->text.p, el };
		size_t skip = el < out->text.len ? el + 1 : el;
		out->msg = (struct smtp_str){ out->text.p + skip, out->text.len - skip };
	}
	return SMTP_RLE_OK;
}

unsigned smtp_ehlo_keyword(const uint8_t *p, size_t len, uint64_t *size)
{
	static const struct {
		const char *kw;
		unsigned bit;
	} known[] = {
		{ "PIPELINING", SMTP_EXT_PIPELINING },
		{ "SIZE", SMTP_EXT_SIZE },
		{ "8BITMIME", SMTP_EXT_8BITMIME },
		{ "SMTPUTF8", SMTP_EXT_SMTPUTF8 },
		{ "CHUNKING", SMTP_EXT_CHUNKING },
		{ "DSN", SMTP_EXT_DSN },
		{ "STARTTLS", SMTP_EXT_STARTTLS },
		{ "ENHANCEDSTATUSCODES", SMTP_EXT_ENHANCEDSTATUSCODES },
		{ "AUTH", SMTP_EXT_AUTH },
	};
	size_t k = 0;
	while (k < len && (is_alnum(p[k]) || (k > 0 && p[k] == '-')))
		k++;
	if (k == 0 || (k < len && p[k] != ' '))
		return 0;
	unsigned bit = 0;
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (word_eq(p, k, known[i].kw))
			bit = known[i].bit;
	if (bit != SMTP_EXT_SIZE)
		return bit;

	/* "SIZE" [SP number]: the first parameter only; junk means no usable limit. */
	size_t i = k;
	while (i < len && p[i] == ' ')
		i++;
	uint64_t v = 0;
	size_t s = i;
	while (i < len && is_digit(p[i])) {
		unsigned d = p[i] - '0';
		v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
		i++;
	}
	if (i == s || (i < len && p[i] != ' '))
		v = 0;
	*size = v;
	return bit;
}

ssize_t smtp_xtext_encode(const uint8_t *p, size_t n, char *out, size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];
		if (c >= 33 && c <= 126 && c != '+' && c != '=') {
			if (o >= cap)
				return -1;
			out[o++] = (char)c;
			continue;
		}
		if (cap - o < 3)
			return -1;
		out[o++] = '+';
		out[o++] = hex[c >> 4];
		out[o++] = hex[c & 15];
	}
	return (ssize_t)o;
}

static unsigned hexval(uint8_t c)
{
	return is_digit(c) ? c - '0' : c - 'A' + 10;
}

ssize_t smtp_xtext_decode(const uint8_t *p, size_t n, uint8_t *out, size_t cap)
{
	if (!smtp_xtext_valid(p, n))
		return -1;
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (o >= cap)
			return -1;
		if (p[i] == '+') {
			out[o++] = (uint8_t)(hexval(p[i + 1]) << 4 | hexval(p[i + 2]));
			i += 2;
		} else {
			out[o++] = p[i];
		}
	}
	return (ssize_t)o;
}
