/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The Received: trace header field we prepend to each accepted message
 * (RFC 5321 §4.4), with the RFC 3848 / RFC 6531 protocol keyword, and the
 * RFC 5322 date-time it ends with.
 */
#ifndef MX_SMTP_RECEIVED_H
#define MX_SMTP_RECEIVED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataplane/smtp/parse.h"

/* Longest header field smtp_received_format() writes, folded, CRLF included. */
#define SMTP_RECEIVED_MAX 1024

struct smtp_received {
	const char *by;		  /* our host name */
	struct smtp_str helo;	  /* the client's HELO/EHLO argument (validated syntax) */
	const char *client;	  /* the client's address literal */
	const char *protocol;	  /* smtp_protocol_keyword() */
	const char *queue_id;
	struct smtp_str for_rcpt; /* the one recipient, or empty: no "for" clause */
	int64_t wall_s;		  /* seconds since the epoch */
};

/*
 * "SMTP", "ESMTP", "ESMTPA", "ESMTPS", "ESMTPSA" (RFC 3848), or with
 * SMTPUTF8 "UTF8SMTP", "UTF8SMTPA", "UTF8SMTPS", "UTF8SMTPSA" (RFC 6531 §3.7.3).
 */
const char *smtp_protocol_keyword(bool esmtp, bool tls, bool auth, bool utf8);

/* Writes "Thu, 01 Jan 2026 00:00:00 +0000" (UTC) into OUT: its length, or 0 if CAP is short. */
size_t smtp_date_format(char *out, size_t cap, int64_t unix_s);

/* Writes the whole header field, CRLF included, into OUT: its length, or 0 if CAP is short. */
size_t smtp_received_format(char *out, size_t cap, const struct smtp_received *r);

#endif
