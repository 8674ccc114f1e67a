/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Conversation-style SMTP scenario tests (OpenSMTPD smtpscript, HAProxy
 * .vtc): one server session on a virtual clock, a recording sink, and
 *
 *	conv_send(c, "EHLO client.example.com\r\n");
 *	conv_expect(c, "250-mx.example.com");
 *
 * conv_send() feeds one input chunk the way the glue will (retrying after a
 * flush when the output fills, keeping what the session will not take while
 * a final reply is pending) and then flushes once; conv_expect() checks the
 * next reply line the client received.
 */
#ifndef MX_TEST_SMTP_CONV_H
#define MX_TEST_SMTP_CONV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataplane/smtp/smtp.h"

#define CONV_HOST "mx.example.com"
#define CONV_MAX_MSGS 16

struct conv_msg {
	uint8_t data[200000]; /* everything the sink got, Received: first */
	size_t len;
	char sender[300];
	char rcpt[8][300];
	unsigned nrcpt;
	char queue_id[SMTP_QID_LEN + 1];
	struct smtp_tx tx; /* a copy at end() (pointers into the arena are stale later) */
	bool ended, aborted;
};

struct conv {
	struct smtp_server_config cfg;
	struct smtp_hooks hooks;
	struct smtp_server_ctx ctx;
	struct smtp_session *s;
	uint64_t now; /* ms */

	/* what the client has received and not yet expected */
	char in[1 << 17];
	size_t in_len, in_off;
	unsigned flushes;      /* flushes that carried something */
	unsigned last_flushes; /* ... during the last conv_send() */
	size_t last_taken;     /* octets the first smtp_server_input() of the last send took */

	/* input the session would not take yet (pending final reply) */
	uint8_t kept[1 << 16];
	size_t kept_len;

	/* the recording sink; set these to refuse or delay */
	int begin_reply;	/* SMTP_R_NONE: accept */
	int chunk_reply;	/* SMTP_R_NONE: accept */
	int end_reply;		/* SMTP_R_QUEUED, a refusal, or SMTP_SINK_PENDING */
	unsigned begins, ends, aborts;
	struct conv_msg msgs[CONV_MAX_MSGS];
	unsigned nmsgs;

	/* policy hooks */
	const char *reject_rcpt_domain; /* rcpt_check refuses recipients in it: RELAY_DENIED */
	int connect_reply;
	int starttls_reply;
	unsigned starttls_calls;
};

/* A config with our host name, a 1 MiB size limit, the recording sink. Edit before conv_start(). */
void conv_init(struct conv *c);
/* Starts the session at c->now with PEER 198.51.100.7 (implicit TLS with SMTP_SESSION_TLS). */
void conv_start(struct conv *c, unsigned flags);
void conv_end(struct conv *c);

/* Feeds N octets as one input chunk, then flushes. */
void conv_send_n(struct conv *c, const void *p, size_t n);
void conv_send(struct conv *c, const char *s);
/* Feeds kept input again (after smtp_server_tx_done()). */
void conv_resume(struct conv *c);
/* Flushes the session's output into what the client received. */
void conv_flush(struct conv *c);
/* Moves the clock MS forward and runs the session's deadline if due. */
void conv_advance(struct conv *c, uint64_t ms);

/* The next line the client received must be LINE (without CRLF). */
#define conv_expect(c, line) conv_expect_at(c, line, __FILE__, __LINE__)
void conv_expect_at(struct conv *c, const char *line, const char *file, int lineno);
/* Skips a whole (multi-line) reply whose code is CODE. */
void conv_skip_reply(struct conv *c, const char *code);
/* Nothing more was received. */
void conv_expect_nothing(struct conv *c);
/* The session wants to be closed. */
bool conv_closed(const struct conv *c);

/* EHLO client.example.com, skipping the reply. */
void conv_ehlo(struct conv *c);

#endif
