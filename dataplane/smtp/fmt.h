/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Number formatting for the command lines the SMTP clients build (MAIL's
 * SIZE=, BDAT's chunk size): no locale, no printf, no NUL. Shared by the
 * relay's client engine (client.c) and cut-through (smtpd/cutthrough.c).
 */
#ifndef MX_SMTP_FMT_H
#define MX_SMTP_FMT_H

#include <stddef.h>
#include <stdint.h>

#define SMTP_U64_DIGITS 20 /* 18446744073709551615 */

/* Writes V in decimal into OUT (room for SMTP_U64_DIGITS, no NUL). Returns the digits written. */
static inline size_t smtp_fmt_u64(char *out, uint64_t v)
{
	char t[SMTP_U64_DIGITS];
	size_t n = 0;

	do {
		t[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (size_t i = 0; i < n; i++)
		out[i] = t[n - 1 - i];
	return n;
}

#endif
