/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * SMTP server session scenarios, written as the conversation they check:
 * what the client sends, what it gets back, what reached the sink.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "conv.h"
#include "dataplane/smtp/received.h"

static struct conv *c;

static void setup(void)
{
	c = calloc(1, sizeof(*c));
	conv_init(c);
}

static void teardown(void)
{
	if (c->s)
		conv_end(c);
	free(c);
}

TestSuite(session, .init = setup, .fini = teardown);
TestSuite(pipelining, .init = setup, .fini = teardown);
TestSuite(bdat, .init = setup, .fini = teardown);
TestSuite(limits, .init = setup, .fini = teardown);
TestSuite(line_endings, .init = setup, .fini = teardown);
TestSuite(timeouts, .init = setup, .fini = teardown);
TestSuite(sink, .init = setup, .fini = teardown);
TestSuite(extensions, .init = setup, .fini = teardown);

static uint64_t counter(enum smtp_counter k)
{
	return c->ctx.stats.c[k];
}

/* MAIL + RCPT for user@example.com, replies checked. */
static void envelope(void)
{
	conv_send(c, "MAIL FROM:<sender@example.org>\r\n");
	conv_expect(c, "250 2.1.0 Ok");
	conv_send(c, "RCPT TO:<user@example.com>\r\n");
	conv_expect(c, "250 2.1.5 Ok");
}

static void expect_queued(unsigned msg)
{
	char line[80];
	snprintf(line, sizeof(line), "250 2.0.0 Ok: queued as %s", c->msgs[msg].queue_id);
	conv_expect(c, line);
}

/* The message content the sink got, without our Received: field. */
static const char *body_of(unsigned msg, size_t *len)
{
	struct conv_msg *m = &c->msgs[msg];
	const char *end = memmem(m->data, m->len, "\r\n", 2);
	while (end && end + 2 < (const char *)m->data + m->len && (end[2] == '\t' || end[2] == ' '))
		end = memmem(end + 2, (const char *)m->data + m->len - (end + 2), "\r\n", 2);
	cr_assert_not_null(end);
	end += 2;
	*len = m->len - (size_t)(end - (const char *)m->data);
	return end;
}

/* ---- the basic conversation ---- */

Test(session, greets_with_220_and_says_goodbye_with_221)
{
	conv_start(c, 0);
	conv_expect(c, "220 mx.example.com ESMTP");
	conv_send(c, "QUIT\r\n");
	conv_expect(c, "221 2.0.0 Bye");
	cr_assert(conv_closed(c));
}

Test(session, ehlo_lists_the_extensions_in_one_reply)
{
	conv_start(c, 0);
	conv_expect(c, "220 mx.example.com ESMTP");
	conv_send(c, "EHLO client.example.com\r\n");
	conv_expect(c, "250-mx.example.com");
	conv_expect(c, "250-PIPELINING");
	conv_expect(c, "250-SIZE 1048576");
	conv_expect(c, "250-ENHANCEDSTATUSCODES");
	conv_expect(c, "250-8BITMIME");
	conv_expect(c, "250-DSN");
	conv_expect(c, "250-SMTPUTF8");
	conv_expect(c, "250 CHUNKING");
	conv_expect_nothing(c);
	cr_assert_eq(c->last_flushes, 1);
}

Test(session, helo_gets_one_line_and_no_esmtp_parameters)
{
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_send(c, "HELO client.example.com\r\n");
	conv_expect(c, "250 mx.example.com");
	conv_send(c, "MAIL FROM:<sender@example.org> SIZE=100\r\n");
	conv_expect(c, "555 5.5.4 Unsupported option: SIZE");
	conv_send(c, "MAIL FROM:<sender@example.org>\r\n");
	conv_expect(c, "250 2.1.0 Ok");
}

Test(session, a_message_is_queued_with_our_received_header_first)
{
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	envelope();
	conv_send(c, "DATA\r\n");
	conv_expect(c, "354 End data with <CR><LF>.<CR><LF>");
	conv_send(c, "Subject: test\r\n\r\n..dot-stuffed line\r\nlast line\r\n.\r\n");
	expect_queued(0);
	conv_expect_nothing(c);

	struct conv_msg *m = &c->msgs[0];
	char want[512];
	int n = snprintf(want, sizeof(want),
			 "Received: from client.example.com ([198.51.100.7])\r\n"
			 "\tby mx.example.com (mxgate) with ESMTP id %s\r\n"
			 "\tfor <user@example.com>; Thu, 01 Jan 2026 00:00:01 +0000\r\n"
			 "Subject: test\r\n\r\n.dot-stuffed line\r\nlast line\r\n",
			 m->queue_id);
	cr_assert_eq(m->len, (size_t)n);
	cr_assert(memcmp(m->data, want, m->len) == 0, "got:\n%.*s", (int)m->len, m->data);
	cr_assert_str_eq(m->sender, "sender@example.org");
	cr_assert_eq(strlen(m->queue_id), SMTP_QID_LEN);
	cr_assert_eq(counter(SMTP_C_MESSAGES_ACCEPTED), 1);
}

Test(session, several_transactions_run_in_one_session_with_distinct_queue_ids)
{
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	for (unsigned i = 0; i < 3; i++) {
		envelope();
		conv_send(c, "DATA\r\n");
		conv_expect(c, "354 End data with <CR><LF>.<CR><LF>");
		conv_send(c, "hello\r\n.\r\n");
		expect_queued(i);
	}
	cr_assert_str_neq(c->msgs[0].queue_id, c->msgs[1].queue_id);
	cr_assert_str_neq(c->msgs[1].queue_id, c->msgs[2].queue_id);
	cr_assert_eq(c->ends, 3);
}

Test(session, rset_mid_transaction_forgets_the_envelope)
{
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	envelope();
	conv_send(c, "RSET\r\n");
	conv_expect(c, "250 2.0.0 Ok");
	conv_send(c, "RCPT TO:<user@example.com>\r\n");
	conv_expect(c, "503 5.5.1 Error: need MAIL command");
	conv_send(c, "MAIL FROM:<other@example.org>\r\n");
	conv_expect(c, "250 2.1.0 Ok");
	cr_assert_eq(smtp_server_tx(c->s)->nrcpt, 0);
}

Test(session, commands_out_of_sequence_get_503)
{
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_send(c, "MAIL FROM:<sender@example.org>\r\n");
	conv_expect(c, "503 5.5.1 Error: send HELO/EHLO first");
	conv_ehlo(c);
	conv_send(c, "RCPT TO:<user@example.com>\r\n");
	conv_expect(c, "503 5.5.1 Error: need MAIL command");
	conv_send(c, "DATA\r\n");
	conv_expect(c, "503 5.5.1 Error: need MAIL command");
	conv_send(c, "MAIL FROM:<sender@example.org>\r\n");
	conv_expect(c, "250 2.1.0 Ok");
	conv_send(c, "DATA\r\n");
	conv_expect(c, "503 5.5.1 Error: need RCPT command");
	conv_send(c, "MAIL FROM:<sender@example.org>\r\n");
	conv_expect(c, "503 5.5.1 Error: nested MAIL command");
	cr_assert_eq(counter(SMTP_C_BAD_SEQUENCE), 5);
}

Test(session, data_after_only_refused_recipients_says_no_valid_recipients)
{
	c->reject_rcpt_domain = "elsewhere.example";
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	conv_send(c, "MAIL FROM:<sender@example.org>\r\n");
	conv_expect(c, "250 2.1.0 Ok");
	conv_send(c, "RCPT TO:<user@elsewhere.example>\r\n");
	conv_expect(c, "554 5.7.1 Error: relay access denied");
	conv_send(c, "DATA\r\n");
	conv_expect(c, "554 5.5.1 Error: no valid recipients");
	cr_assert_eq(counter(SMTP_C_POLICY_REJECTS), 1);
}

/* The second MAIL of a session is over the client's message rate. */
static int mail_rate_hook(void *arg, struct smtp_session *s, const struct smtp_tx *tx,
			  const struct smtp_path *sender)
{
	static int calls;
	(void)arg;
	(void)s;
	(void)tx;
	(void)sender;
	return ++calls >= 2 ? SMTP_R_CLIENT_MSG_RATE : SMTP_R_NONE;
}

Test(session, a_421_from_a_policy_hook_ends_the_session)
{
	c->hooks.mail_check = mail_rate_hook;
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	conv_send(c, "MAIL FROM:<sender@example.org>\r\n");
	conv_expect(c, "250 2.1.0 Ok");
	conv_send(c, "RSET\r\n");
	conv_expect(c, "250 2.0.0 Ok");
	conv_send(c, "MAIL FROM:<sender@example.org>\r\nRCPT TO:<a@example.com>\r\n");
	conv_expect(c, "421 4.7.0 mx.example.com Error: too much mail from your address, slow down");
	conv_expect_nothing(c); /* the pipelined RCPT is not answered: the session is over */
	cr_assert(conv_closed(c));
	cr_assert_eq(counter(SMTP_C_POLICY_REJECTS), 1);
}

Test(session, unknown_and_unimplemented_commands_are_told_apart)
{
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	conv_send(c, "XYZZY\r\n");
	conv_expect(c, "500 5.5.1 Error: command not recognized");
	conv_send(c, "EXPN staff\r\n");
	conv_expect(c, "502 5.5.1 Error: command not implemented");
	conv_send(c, "STARTTLS\r\n");
	conv_expect(c, "502 5.5.1 Error: command not implemented");
	conv_send(c, "AUTH PLAIN\r\n");
	conv_expect(c, "502 5.5.1 Error: command not implemented");
	conv_send(c, "VRFY user\r\n");
	conv_expect(c, "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery");
	conv_send(c, "HELP\r\n");
	conv_skip_reply(c, "214");
	conv_send(c, "NOOP\r\n");
	conv_expect(c, "250 2.0.0 Ok");
}

Test(session, syntax_errors_get_precise_replies)
{
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_send(c, "EHLO\r\n");
	conv_expect(c, "501 5.5.4 Syntax: EHLO hostname");
	conv_send(c, "EHLO bad_name.example.com\r\n");
	conv_expect(c, "501 5.5.4 Error: invalid HELO/EHLO hostname");
	conv_ehlo(c);
	conv_send(c, "MAIL FROM:<a..b@example.org>\r\n");
	conv_expect(c, "501 5.1.7 Bad sender address syntax");
	conv_send(c, "MAIL FROM:<sender@example.org> FOO=BAR\r\n");
	conv_expect(c, "555 5.5.4 Unsupported option: FOO");
	conv_send(c, "MAIL FROM:<sender@example.org> BODY=9BIT\r\n");
	conv_expect(c, "501 5.5.4 Bad BODY parameter value");
	conv_send(c, "MAIL FROM:<sender@example.org>\r\n");
	conv_expect(c, "250 2.1.0 Ok");
	conv_send(c, "RCPT TO:<user@[198.51.100.010]>\r\n");
	conv_expect(c, "501 5.1.3 Bad recipient address syntax");
	conv_send(c, "RCPT TO:<j\xc3\xb6rg@example.com>\r\n");
	conv_expect(c, "553 5.6.7 Non-ASCII recipient address requires SMTPUTF8");
	conv_send(c, "RCPT TO:<user@example.com> NOTIFY=SOMETIMES\r\n");
	conv_expect(c, "501 5.5.4 Bad NOTIFY parameter value");
	conv_send(c, "RCPT TO:<user@example.com>\r\n");
	conv_expect(c, "250 2.1.5 Ok");
	conv_send(c, "DATA now\r\n");
	conv_expect(c, "501 5.5.4 Syntax: DATA takes no arguments");
}

Test(session, dsn_parameters_travel_in_the_envelope)
{
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	conv_send(c, "MAIL FROM:<sender@example.org> RET=HDRS ENVID=QQ+2B314 SIZE=100\r\n");
	conv_expect(c, "250 2.1.0 Ok");
	conv_send(c,
		  "RCPT TO:<a@example.com> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;a+40example.com\r\n");
	conv_expect(c, "250 2.1.5 Ok");
	conv_send(c, "RCPT TO:<b@example.com> NOTIFY=NEVER\r\n");
	conv_expect(c, "250 2.1.5 Ok");
	const struct smtp_tx *tx = smtp_server_tx(c->s);
	cr_assert_eq(tx->ret, SMTP_RET_HDRS);
	cr_assert_eq(tx->envid.len, 8);
	cr_assert(memcmp(tx->envid.p, "QQ+2B314", 8) == 0);
	cr_assert_eq(tx->size, 100);
	cr_assert_eq(tx->nrcpt, 2);
	cr_assert_eq(tx->rcpt[0].notify, SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_DELAY);
	cr_assert_eq(tx->rcpt[0].orcpt.len, strlen("rfc822;a+40example.com"));
	cr_assert(memcmp(tx->rcpt[0].orcpt.p, "rfc822;a+40example.com", tx->rcpt[0].orcpt.len) ==
		  0);
	cr_assert_eq(tx->rcpt[1].notify, SMTP_NOTIFY_NEVER);
	cr_assert_eq(tx->rcpt[1].orcpt.len, 0);
	cr_assert_eq(tx->helo.len, strlen("client.example.com"));
	cr_assert_str_eq(tx->client, "[198.51.100.7]");
}

Test(session, dsn_turned_off_makes_its_parameters_unknown)
{
	c->cfg.features &= ~SMTP_F_DSN;
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	conv_send(c, "MAIL FROM:<sender@example.org> RET=FULL\r\n");
	conv_expect(c, "555 5.5.4 Unsupported option: RET");
	conv_send(c, "MAIL FROM:<sender@example.org>\r\n");
	conv_expect(c, "250 2.1.0 Ok");
	conv_send(c, "RCPT TO:<user@example.com> NOTIFY=NEVER\r\n");
	conv_expect(c, "555 5.5.4 Unsupported option: NOTIFY");
}

Test(session, smtputf8_mail_is_traced_as_utf8smtp)
{
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	conv_send(c, "MAIL FROM:<j\xc3\xb6rg@example.org> SMTPUTF8\r\n");
	conv_expect(c, "250 2.1.0 Ok");
	conv_send(c, "RCPT TO:<\xe7\x94\xa8\xe6\x88\xb7@example.com>\r\n");
	conv_expect(c, "250 2.1.5 Ok");
	conv_send(c, "DATA\r\n");
	conv_skip_reply(c, "354");
	conv_send(c, "Subject: \xc3\xa9t\xc3\xa9\r\n\r\nhi\r\n.\r\n");
	expect_queued(0);
	cr_assert_not_null(memmem(c->msgs[0].data, c->msgs[0].len, "with UTF8SMTP id", 16));
	cr_assert(c->msgs[0].tx.smtputf8);
}

Test(session, the_connect_hook_can_refuse_the_session)
{
	c->connect_reply = SMTP_R_ACCESS_DENIED;
	conv_start(c, 0);
	conv_expect(c, "554 5.7.1 Error: access denied");
	cr_assert(conv_closed(c));
}

Test(session, eight_bit_helo_or_nul_in_a_command_is_refused)
{
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_send_n(c, "NOOP\0\r\n", 7);
	conv_expect(c, "500 5.5.2 Error: NUL character received");
	conv_send(c, "NOOP \xff\r\n");
	conv_expect(c, "500 5.5.2 Error: bad UTF-8 syntax");
	conv_send(c, "\r\n");
	conv_expect(c, "500 5.5.2 Error: bad syntax");
}

Test(session, input_after_quit_is_ignored)
{
	c->cfg.forbid_unauth_pipelining = false;
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_send(c, "QUIT\r\nNOOP\r\n");
	conv_expect(c, "221 2.0.0 Bye");
	conv_expect_nothing(c);
	cr_assert_eq(counter(SMTP_C_INPUT_IGNORED), 6);
}

Test(session, shutdown_says_421_and_aborts_the_transaction)
{
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	envelope();
	conv_send(c, "DATA\r\n");
	conv_skip_reply(c, "354");
	conv_send(c, "partial content\r\n");
	smtp_server_shutdown(c->s);
	conv_flush(c);
	conv_expect(c, "421 4.3.2 mx.example.com Service shutting down");
	cr_assert(conv_closed(c));
	cr_assert_eq(c->aborts, 1);
}

/* ---- pipelining (RFC 2920) ---- */

Test(pipelining, a_pipelined_group_gets_all_its_replies_in_one_flush)
{
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	conv_send(c, "MAIL FROM:<sender@example.org>\r\nRCPT TO:<a@example.com>\r\n"
		     "RCPT TO:<b@example.com>\r\nDATA\r\n");
	cr_assert_eq(c->last_flushes, 1);
	conv_expect(c, "250 2.1.0 Ok");
	conv_expect(c, "250 2.1.5 Ok");
	conv_expect(c, "250 2.1.5 Ok");
	conv_expect(c, "354 End data with <CR><LF>.<CR><LF>");
	conv_expect_nothing(c);
}

Test(pipelining, pipelined_rcpt_after_bad_mail_is_rejected)
{
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	conv_send(c, "MAIL FROM:<sender@example.org\r\nRCPT TO:<a@example.com>\r\nDATA\r\n");
	conv_expect(c, "501 5.1.7 Bad sender address syntax");
	conv_expect(c, "503 5.5.1 Error: need MAIL command");
	conv_expect(c, "503 5.5.1 Error: need MAIL command");
	cr_assert_eq(c->begins, 0);
}

Test(pipelining, a_client_pipelining_before_ehlo_is_disconnected)
{
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_send(c, "HELO client.example.com\r\nMAIL FROM:<sender@example.org>\r\n");
	conv_expect(c, "554 5.5.0 Error: SMTP protocol synchronization");
	conv_expect_nothing(c);
	cr_assert(conv_closed(c));
	cr_assert_eq(counter(SMTP_C_UNAUTH_PIPELINING), 1);
}

Test(pipelining, a_helo_client_that_was_never_told_pipelining_is_disconnected)
{
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_send(c, "HELO client.example.com\r\n");
	conv_expect(c, "250 mx.example.com");
	conv_send(c, "MAIL FROM:<sender@example.org>\r\nRCPT TO:<a@example.com>\r\n");
	conv_expect(c, "554 5.5.0 Error: SMTP protocol synchronization");
	cr_assert(conv_closed(c));
}

Test(pipelining, ehlo_must_end_its_group)
{
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_send(c, "EHLO client.example.com\r\nMAIL FROM:<sender@example.org>\r\n");
	conv_expect(c, "554 5.5.0 Error: SMTP protocol synchronization");
	cr_assert(conv_closed(c));
}

Test(pipelining, content_sent_with_data_before_the_354_is_disconnected)
{
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	conv_send(c, "MAIL FROM:<sender@example.org>\r\nRCPT TO:<a@example.com>\r\n"
		     "DATA\r\nSubject: eager\r\n\r\nhi\r\n.\r\n");
	conv_expect(c, "250 2.1.0 Ok");
	conv_expect(c, "250 2.1.5 Ok");
	conv_expect(c, "554 5.5.0 Error: SMTP protocol synchronization");
	cr_assert(conv_closed(c));
	cr_assert_eq(c->begins, 0);
}

Test(pipelining, with_the_check_off_content_after_data_is_taken_as_content)
{
	c->cfg.forbid_unauth_pipelining = false;
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_send(c, "EHLO client.example.com\r\nMAIL FROM:<sender@example.org>\r\n"
		     "RCPT TO:<a@example.com>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n");
	conv_skip_reply(c, "250");
	conv_expect(c, "250 2.1.0 Ok");
	conv_expect(c, "250 2.1.5 Ok");
	conv_skip_reply(c, "354");
	expect_queued(0);
	conv_expect(c, "221 2.0.0 Bye");
	cr_assert_eq(c->last_flushes, 1);
}

Test(pipelining, an_early_talker_gets_554_and_no_greeting)
{
	c->cfg.greeting_pause_ms = 2000;
	conv_start(c, 0);
	conv_expect_nothing(c);
	cr_assert_eq(smtp_server_deadline(c->s), c->now + 2000);
	conv_advance(c, 500);
	conv_send(c, "EHLO spammer.example\r\n");
	conv_expect(c, "554 5.7.0 Error: SMTP protocol synchronization");
	conv_expect_nothing(c);
	cr_assert(conv_closed(c));
	cr_assert_eq(counter(SMTP_C_EARLY_TALKERS), 1);
}

Test(pipelining, a_patient_client_gets_the_greeting_after_the_pause)
{
	c->cfg.greeting_pause_ms = 2000;
	conv_start(c, 0);
	conv_advance(c, 1999);
	conv_expect_nothing(c);
	conv_advance(c, 1);
	conv_expect(c, "220 mx.example.com ESMTP");
	conv_send(c, "EHLO client.example.com\r\n");
	conv_skip_reply(c, "250");
}

Test(pipelining, when_the_output_fills_input_waits_for_a_flush)
{
	c->cfg.output_size = 4096;
	c->cfg.max_junk = 1000;
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	char buf[300 * 6 + 1];
	for (int i = 0; i < 300; i++)
		memcpy(buf + 6 * i, "RSET\r\n", 6);
	conv_send_n(c, buf, 300 * 6);
	cr_assert_lt(c->last_taken, 300 * 6, "the first call stopped at a full output buffer");
	cr_assert_gt(c->last_flushes, 1);
	for (int i = 0; i < 300; i++)
		conv_expect(c, "250 2.0.0 Ok");
	conv_expect_nothing(c);
}

/* ---- BDAT (RFC 3030) ---- */

Test(bdat, chunks_make_one_message)
{
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	envelope();
	conv_send(c, "BDAT 7\r\nhello, ");
	conv_expect(c, "250 2.0.0 Ok: 7 octets received");
	conv_send(c, "BDAT 9 LAST\r\nworld\r\n\r\n");
	expect_queued(0);
	size_t len;
	const char *b = body_of(0, &len);
	cr_assert_eq(len, 16);
	cr_assert(memcmp(b, "hello, world\r\n\r\n", 16) == 0);
	cr_assert(c->msgs[0].tx.bdat);
}

Test(bdat, bdat_0_last_ends_the_message)
{
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	envelope();
	conv_send(c, "BDAT 4\r\nhi\r\n");
	conv_expect(c, "250 2.0.0 Ok: 4 octets received");
	conv_send(c, "BDAT 0 LAST\r\n");
	expect_queued(0);
}

Test(bdat, commands_after_the_chunk_in_the_same_input_are_answered_in_order)
{
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	conv_send(
		c,
		"MAIL FROM:<sender@example.org>\r\nRCPT TO:<a@example.com>\r\n"
		"BDAT 5 LAST\r\nhelloMAIL FROM:<sender@example.org>\r\nRCPT TO:<b@example.com>\r\n"
		"BDAT 3 LAST\r\nbyeQUIT\r\n");
	cr_assert_eq(c->last_flushes, 1);
	conv_expect(c, "250 2.1.0 Ok");
	conv_expect(c, "250 2.1.5 Ok");
	expect_queued(0);
	conv_expect(c, "250 2.1.0 Ok");
	conv_expect(c, "250 2.1.5 Ok");
	expect_queued(1);
	conv_expect(c, "221 2.0.0 Bye");
	size_t len;
	cr_assert(memcmp(body_of(0, &len), "hello", 5) == 0 && len == 5);
	cr_assert(memcmp(body_of(1, &len), "bye", 3) == 0 && len == 3);
}

Test(bdat, a_chunk_split_over_many_inputs_is_counted_not_parsed)
{
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	envelope();
	conv_send(c, "BDAT 31 LAST\r\n"); /* the next two lines, 25 + 6 octets */
	conv_expect_nothing(c);
	conv_send(c, "RCPT TO:<x@example.com>\r\n");
	conv_expect_nothing(c);
	conv_send(c, "QUIT\r\n");
	expect_queued(0);
	cr_assert_eq(c->msgs[0].nrcpt, 1, "the RCPT inside the chunk was content");
	cr_assert_not(conv_closed(c), "and so was the QUIT");
	conv_send(c, "QUIT\r\n");
	conv_expect(c, "221 2.0.0 Bye");
}

Test(bdat, mixing_data_into_a_bdat_transaction_is_refused)
{
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	envelope();
	conv_send(c, "BDAT 3\r\nabc");
	conv_expect(c, "250 2.0.0 Ok: 3 octets received");
	conv_send(c, "DATA\r\n");
	conv_expect(c, "503 5.5.1 Error: DATA and BDAT cannot be mixed");
	conv_send(c, "RCPT TO:<b@example.com>\r\n");
	conv_expect(c, "503 5.5.1 Error: BDAT transfer in progress");
	conv_send(c, "BDAT 0 LAST\r\n");
	expect_queued(0);
}

Test(bdat, binarymime_needs_bdat)
{
	c->cfg.features |= SMTP_F_BINARYMIME;
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	conv_send(c, "MAIL FROM:<sender@example.org> BODY=BINARYMIME\r\n");
	conv_expect(c, "250 2.1.0 Ok");
	conv_send(c, "RCPT TO:<user@example.com>\r\n");
	conv_expect(c, "250 2.1.5 Ok");
	conv_send(c, "DATA\r\n");
	conv_expect(c, "503 5.5.1 Error: BODY=BINARYMIME requires BDAT");
	conv_send_n(c, "BDAT 6 LAST\r\n\0\n\r.\r\n", 19);
	expect_queued(0);
	size_t len;
	cr_assert(memcmp(body_of(0, &len), "\0\n\r.\r\n", 6) == 0 && len == 6);
}

Test(bdat, binarymime_not_offered_is_an_unsupported_option)
{
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	conv_send(c, "MAIL FROM:<sender@example.org> BODY=BINARYMIME\r\n");
	conv_expect(c, "555 5.5.4 Unsupported option: BODY=BINARYMIME");
}

Test(bdat, a_refused_bdat_does_not_let_its_octets_run_as_commands)
{
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	conv_send(c, "MAIL FROM:<sender@example.org>\r\n");
	conv_expect(c, "250 2.1.0 Ok");
	/* no recipient yet: the BDAT is out of sequence, its 30 octets are skipped */
	conv_send(c, "BDAT 30\r\nRCPT TO:<victim@example.com>\r\nRSET\r\n");
	conv_expect(c, "503 5.5.1 Error: need RCPT command");
	conv_expect(c, "250 2.0.0 Ok");
	conv_expect_nothing(c);
	cr_assert_eq(counter(SMTP_C_RCPTS_ACCEPTED), 0);
}

Test(bdat, after_a_refused_first_chunk_later_chunks_are_discarded)
{
	c->begin_reply = SMTP_R_LOCAL_ERROR;
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	envelope();
	conv_send(c, "BDAT 3\r\nabcBDAT 3\r\ndefBDAT 3 LAST\r\nghiNOOP\r\n");
	conv_expect(c, "451 4.3.0 Error: local error, try again later");
	conv_expect(c, "503 5.5.1 Error: BDAT after an earlier error: data discarded");
	conv_expect(c, "503 5.5.1 Error: BDAT after an earlier error: data discarded");
	conv_expect(c, "250 2.0.0 Ok");
	cr_assert_eq(smtp_server_state(c->s), SMTP_ST_HELO);
	conv_send(c, "MAIL FROM:<sender@example.org>\r\n");
	conv_expect(c, "250 2.1.0 Ok");
}

Test(bdat, bdat_text_with_a_bare_lf_is_refused_at_the_last_chunk)
{
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	envelope();
	conv_send(c, "BDAT 4\r\na\nb\n");
	conv_expect(c, "250 2.0.0 Ok: 4 octets received");
	conv_send(c, "BDAT 0 LAST\r\n");
	conv_expect(c, "554 5.6.0 Error: bare <CR> or <LF> in message content");
	cr_assert_eq(c->aborts, 1);
	cr_assert_eq(c->ends, 0);
}

Test(bdat, bdat_is_refused_without_ehlo)
{
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_send(c, "HELO client.example.com\r\n");
	conv_skip_reply(c, "250");
	conv_send(c, "BDAT 4\r\n");
	conv_expect(c, "503 5.5.1 Error: send EHLO first");
	conv_send(c, "NOOP"); /* the chunk's octets */
	conv_expect_nothing(c);
	conv_send(c, "RSET\r\n");
	conv_expect(c, "250 2.0.0 Ok");
}

/* ---- limits ---- */

Test(limits, a_512_octet_command_passes_and_513_is_too_long)
{
	char line[1100];
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	memcpy(line, "NOOP ", 5);
	memset(line + 5, 'x', 505);
	memcpy(line + 510, "\r\n", 2);
	conv_send_n(c, line, 512);
	conv_expect(c, "250 2.0.0 Ok");

	memset(line + 5, 'x', 506);
	memcpy(line + 511, "\r\n", 2);
	conv_send_n(c, line, 513);
	conv_expect(c, "500 5.5.2 Error: line too long");
	conv_send(c, "NOOP\r\n");
	conv_expect(c, "250 2.0.0 Ok");
	cr_assert_eq(counter(SMTP_C_LINE_TOO_LONG), 1);
}

Test(limits, a_long_line_split_across_inputs_is_refused_once_as_it_passes_the_limit)
{
	char junk[200];
	memset(junk, 'y', sizeof(junk));
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_send(c, "NOOP ");
	conv_send_n(c, junk, sizeof(junk));
	conv_send_n(c, junk, sizeof(junk));
	conv_expect_nothing(c); /* 405 octets: still a command line */
	conv_send_n(c, junk, sizeof(junk));
	conv_expect(c, "500 5.5.2 Error: line too long"); /* past 512, before any CRLF */
	for (int i = 0; i < 7; i++)
		conv_send_n(c, junk, sizeof(junk));
	conv_send(c, "\r");
	conv_expect_nothing(c);
	conv_send(c, "\n"); /* the end of the refused line: discarded, not answered again */
	conv_expect_nothing(c);
	conv_send(c, "NOOP\r\n");
	conv_expect(c, "250 2.0.0 Ok");
	cr_assert_eq(counter(SMTP_C_LINE_TOO_LONG), 1);
}

Test(limits, endless_input_without_crlf_is_cut_off)
{
	static char junk[70000];
	memset(junk, 'z', sizeof(junk));
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_send_n(c, junk, sizeof(junk));
	conv_expect(c, "500 5.5.2 Error: line too long");
	conv_expect(c, "421 4.7.0 mx.example.com Error: too much input without CRLF");
	cr_assert(conv_closed(c));
	cr_assert_eq(counter(SMTP_C_INPUT_NO_CRLF), 1);
}

Test(limits, a_size_parameter_over_the_limit_is_refused_at_mail)
{
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	conv_send(c, "MAIL FROM:<sender@example.org> SIZE=1048577\r\n");
	conv_expect(c, "552 5.3.4 Message size exceeds fixed limit");
	conv_send(c, "MAIL FROM:<sender@example.org> SIZE=1048576\r\n");
	conv_expect(c, "250 2.1.0 Ok");
	cr_assert_eq(counter(SMTP_C_SIZE_PARAM_EXCEEDED), 1);
}

Test(limits, content_over_the_size_limit_is_refused_after_the_end_of_data)
{
	c->cfg.max_message_size = 1000;
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	envelope();
	conv_send(c, "DATA\r\n");
	conv_skip_reply(c, "354");
	char line[102];
	memset(line, 'a', 100);
	memcpy(line + 100, "\r\n", 2);
	for (int i = 0; i < 20; i++)
		conv_send_n(c, line, sizeof(line));
	conv_expect_nothing(c);
	conv_send(c, ".\r\n");
	conv_expect(c, "552 5.3.4 Message size exceeds fixed limit");
	cr_assert_eq(c->aborts, 1);
	cr_assert_eq(c->ends, 0);
	cr_assert_leq(c->msgs[0].len, 1000 + SMTP_RECEIVED_MAX, "the rest was not handed on");
	envelope(); /* the session goes on */
}

Test(limits, a_bdat_chunk_over_the_size_limit_is_refused_and_the_session_closed)
{
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	envelope();
	conv_send(c, "BDAT 2000000 LAST\r\n");
	conv_expect(c, "552 5.3.4 Message size exceeds fixed limit");
	cr_assert(conv_closed(c));
}

Test(limits, too_many_recipients_get_452)
{
	c->cfg.max_rcpts = 3;
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	conv_send(c, "MAIL FROM:<sender@example.org>\r\n");
	conv_expect(c, "250 2.1.0 Ok");
	conv_send(c, "RCPT TO:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n"
		     "RCPT TO:<c@example.com>\r\nRCPT TO:<d@example.com>\r\n");
	conv_expect(c, "250 2.1.5 Ok");
	conv_expect(c, "250 2.1.5 Ok");
	conv_expect(c, "250 2.1.5 Ok");
	conv_expect(c, "452 4.5.3 Error: too many recipients");
	cr_assert_eq(counter(SMTP_C_TOO_MANY_RCPTS), 1);
	conv_send(c, "DATA\r\n");
	conv_skip_reply(c, "354");
	conv_send(c, "x\r\n.\r\n");
	expect_queued(0);
	cr_assert_eq(c->msgs[0].nrcpt, 3);
}

Test(limits, too_many_errors_end_the_session_with_421)
{
	c->cfg.max_errors = 3;
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_send(c, "FOO\r\n");
	conv_send(c, "BAR\r\n");
	conv_send(c, "BAZ\r\n");
	conv_expect(c, "500 5.5.1 Error: command not recognized");
	conv_expect(c, "500 5.5.1 Error: command not recognized");
	conv_expect(c, "500 5.5.1 Error: command not recognized");
	conv_expect(c, "421 4.7.0 mx.example.com Error: too many errors");
	cr_assert(conv_closed(c));
	cr_assert_eq(counter(SMTP_C_TOO_MANY_ERRORS), 1);
}

Test(limits, endless_noops_turn_into_errors)
{
	c->cfg.max_junk = 5;
	c->cfg.max_errors = 3;
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	for (int i = 0; i < 8; i++)
		conv_send(c, "NOOP\r\n");
	for (int i = 0; i < 8; i++)
		conv_expect(c, "250 2.0.0 Ok");
	conv_expect(c, "421 4.7.0 mx.example.com Error: too many errors");
}

Test(limits, a_text_line_over_1000_octets_refuses_the_message)
{
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	envelope();
	conv_send(c, "DATA\r\n");
	conv_skip_reply(c, "354");
	static char line[1003];
	memset(line, 'q', 1001);
	memcpy(line + 1001, "\r\n", 2);
	conv_send_n(c, line, sizeof(line));
	conv_send(c, ".\r\n");
	conv_expect(c, "500 5.5.2 Error: message line longer than 1000 octets");
	cr_assert_eq(counter(SMTP_C_DATA_LINE_TOO_LONG), 1);
}

Test(limits, more_than_50_received_headers_is_a_mail_loop)
{
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	for (int round = 0; round < 2; round++) {
		envelope();
		conv_send(c, "DATA\r\n");
		conv_skip_reply(c, "354");
		int n = round == 0 ? 50 : 51;
		for (int i = 0; i < n; i++)
			conv_send(c,
				  "Received: from a.example by b.example; 1 Jan 2026 00:00 Z\r\n");
		conv_send(c, "\r\nbody\r\n.\r\n");
		if (round == 0)
			expect_queued(0);
		else
			conv_expect(c, "554 5.4.6 Error: too many hops");
	}
	cr_assert_eq(counter(SMTP_C_MAIL_LOOPS), 1);
}

Test(limits, the_envelope_arena_running_out_is_a_temporary_error)
{
	c->cfg.envelope_size = 2048;
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	conv_send(c, "MAIL FROM:<sender@example.org>\r\n");
	conv_expect(c, "250 2.1.0 Ok");
	char cmd[400];
	unsigned ok = 0;
	for (int i = 0; i < 20; i++) {
		snprintf(cmd, sizeof(cmd),
			 "RCPT TO:<%02d%s@example.com> ORCPT=rfc822;%02d%s+40example.com\r\n", i,
			 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", i,
			 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
		conv_send(c, cmd);
		const char *p = c->in + c->in_off;
		if (strncmp(p, "250", 3) == 0) {
			ok++;
			conv_expect(c, "250 2.1.5 Ok");
		} else {
			conv_expect(c, "452 4.3.1 Error: insufficient system storage");
		}
	}
	cr_assert_gt(ok, 5);
	cr_assert_lt(ok, 20);
	cr_assert_gt(counter(SMTP_C_ENVELOPE_FULL), 0);
}

/* ---- line endings ---- */

Test(line_endings, a_bare_lf_in_a_command_is_refused_and_the_session_goes_on)
{
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	conv_send(c, "MAIL FROM:<a@example.org>\nRCPT TO:<b@example.com>\r\n");
	conv_expect(c, "500 5.5.2 Error: bare <LF> received");
	conv_send(c, "NOOP\r\rNOOP\r\n");
	conv_expect(c, "500 5.5.2 Error: bare <CR> received");
	conv_send(c, "MAIL FROM:<a@example.org>\r\n");
	conv_expect(c, "250 2.1.0 Ok");
	cr_assert_eq(counter(SMTP_C_CMD_BARE_EOL), 2);
}

Test(line_endings, a_command_split_between_cr_and_lf_still_ends_there)
{
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_send(c, "NOOP\r");
	conv_expect_nothing(c);
	conv_send(c, "\n");
	conv_expect(c, "250 2.0.0 Ok");
}

/* The session-level smuggling attempt: one message with a fake end, then the real one. */
static const char smuggle_data[] =
	"Subject: hi\r\n\r\nfirst\n.\nMAIL FROM:<evil@example.com>\r\n"
	"RCPT TO:<victim@example.com>\r\nDATA\r\nspoofed\r\n.\r\nNOOP\r\n";

Test(line_endings, smtp_smuggling_with_bare_lf_refuses_one_message_and_queues_none)
{
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	envelope();
	conv_send(c, "DATA\r\n");
	conv_skip_reply(c, "354");
	c->cfg.forbid_unauth_pipelining = false; /* the NOOP after the end rides along */
	conv_send(c, smuggle_data);
	conv_expect(c, "554 5.6.0 Error: bare <CR> or <LF> in message content");
	conv_expect(c, "250 2.0.0 Ok");
	conv_expect_nothing(c);
	cr_assert_eq(c->begins, 1, "one transaction, not two");
	cr_assert_eq(c->ends, 0);
	cr_assert_eq(counter(SMTP_C_DATA_BARE_EOL), 1);
}

Test(line_endings, smtp_smuggling_with_normalisation_makes_one_message)
{
	c->cfg.normalize_bare_eol = true;
	c->cfg.forbid_unauth_pipelining = false;
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	envelope();
	conv_send(c, "DATA\r\n");
	conv_skip_reply(c, "354");
	conv_send(c, smuggle_data);
	expect_queued(0);
	conv_expect(c, "250 2.0.0 Ok");
	cr_assert_eq(c->begins, 1);
	size_t len;
	const char *b = body_of(0, &len);
	const char want[] = "Subject: hi\r\n\r\nfirst\r\n.\r\nMAIL FROM:<evil@example.com>\r\n"
			    "RCPT TO:<victim@example.com>\r\nDATA\r\nspoofed\r\n";
	cr_assert_eq(len, sizeof(want) - 1);
	cr_assert(memcmp(b, want, len) == 0);
	cr_assert_eq(counter(SMTP_C_DATA_NORMALIZED), 1);
}

/*
 * A light harness for the split tests (thousands of sessions): a counting
 * sink, the transcript of replies, the client side cut into pieces.
 */
struct split_run {
	unsigned begins, ends, aborts;
	uint64_t content_hash, content_len;
	uint8_t tail[32]; /* the last octets of the content */
	char replies[4096];
	size_t replies_len;
};

static int sr_begin(void *arg, struct smtp_tx *tx)
{
	(void)tx;
	((struct split_run *)arg)->begins++;
	return SMTP_R_NONE;
}

static int sr_chunk(void *arg, struct smtp_tx *tx, const uint8_t *p, size_t n)
{
	struct split_run *r = arg;
	(void)tx;
	if (n >= 10 && memcmp(p, "Received: ", 10) == 0)
		return SMTP_R_NONE; /* ours: carries the queue id, differs per run */
	for (size_t i = 0; i < n; i++) {
		r->content_hash = (r->content_hash ^ p[i]) * 0x100000001b3ull;
		memmove(r->tail, r->tail + 1, sizeof(r->tail) - 1);
		r->tail[sizeof(r->tail) - 1] = p[i];
	}
	r->content_len += n;
	return SMTP_R_NONE;
}

static int sr_end(void *arg, struct smtp_tx *tx)
{
	(void)tx;
	((struct split_run *)arg)->ends++;
	return SMTP_R_OK; /* "250 2.0.0 Ok": no queue id, so transcripts compare */
}

static void sr_abort(void *arg, struct smtp_tx *tx)
{
	(void)tx;
	((struct split_run *)arg)->aborts++;
}

static const struct smtp_sink_ops split_sink = { sr_begin, sr_chunk, sr_end, sr_abort };

static void split_session(struct split_run *r, bool normalize, const char *msg, size_t len,
			  const size_t *cuts, int ncuts)
{
	static const char head[] = "EHLO client.example.com\r\n";
	static const char env[] =
		"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n";
	struct smtp_server_config cfg;
	struct smtp_server_ctx ctx = { 0 };
	struct smtp_peer peer = { .family = 4, .addr = { 198, 51, 100, 7 } };

	memset(r, 0, sizeof(*r));
	r->content_hash = 0xcbf29ce484222325ull;
	smtp_server_config_default(&cfg);
	cfg.hostname = CONV_HOST;
	cfg.normalize_bare_eol = normalize;
	cfg.sink = &split_sink;
	cfg.sink_arg = r;
	struct smtp_session *s = smtp_server_new(&cfg, &ctx, &peer, 0, 0);
	cr_assert_not_null(s);
	const char *pieces[2] = { head, env };
	for (int k = 0; k < 2; k++)
		cr_assert_eq(smtp_server_input(s, (const uint8_t *)pieces[k], strlen(pieces[k]), 0),
			     strlen(pieces[k]));
	size_t from = 0;
	for (int k = 0; k <= ncuts; k++) {
		size_t to = k < ncuts ? cuts[k] : len;
		cr_assert_eq(smtp_server_input(s, (const uint8_t *)msg + from, to - from, 0),
			     to - from);
		from = to;
	}
	const uint8_t *out;
	size_t n = smtp_server_output(s, &out);
	cr_assert_lt(n, sizeof(r->replies));
	memcpy(r->replies, out, n);
	r->replies_len = n;
	smtp_server_free(s);
}

/* RFC 5321 §4.1.1.4 end-of-data look-alikes (the SMTP smuggling class), from the issue. */
static const struct {
	const char *seq;
	size_t len;
} eod_lookalikes[] = {
#define V(lit)                                                                                     \
	{                                                                                          \
		lit, sizeof(lit) - 1                                                               \
	}
	V("\n.\n"),	    V("\n.\r\n"),	V("\r.\r"),	    V("\r\n.\n"),
	V("\r\n.\r"),	    V("\r.\r\n"),	V("\n.\r"),	    V("\r.\n"),
	V("\r\n\x00.\r\n"), V("\r\n.\x00\r\n"), V("\r\r\n.\r\r\n"),
#undef V
};

static void smuggling_at_every_split(bool normalize)
{
	for (size_t v = 0; v < sizeof(eod_lookalikes) / sizeof(eod_lookalikes[0]); v++) {
		char msg[256];
		size_t len = 0;
		memcpy(msg, "Subject: x\r\n\r\nbody", 18);
		len = 18;
		memcpy(msg + len, eod_lookalikes[v].seq, eod_lookalikes[v].len);
		len += eod_lookalikes[v].len;
		static const char tail[] = "RCPT TO:<v@example.com>\r\n.\r\nNOOP\r\n";
		memcpy(msg + len, tail, sizeof(tail) - 1);
		len += sizeof(tail) - 1;

		struct split_run whole, part;
		split_session(&whole, normalize, msg, len, NULL, 0);
		cr_assert_eq(whole.begins, 1, "variant %zu", v);
		bool nul = memchr(eod_lookalikes[v].seq, 0, eod_lookalikes[v].len) != NULL;
		if (normalize && !nul) {
			cr_assert_eq(whole.ends, 1, "variant %zu: normalised and taken whole", v);
		} else {
			cr_assert_eq(whole.ends, 0, "variant %zu: refused", v);
			cr_assert_eq(whole.aborts, 1, "variant %zu", v);
		}
		/*
		 * After the 354 exactly two replies: the message's, then the NOOP
		 * that follows the real end. Anything more means part of the
		 * content was read as commands.
		 */
		char want[256];
		snprintf(want, sizeof(want),
			 "354 End data with <CR><LF>.<CR><LF>\r\n%s\r\n250 2.0.0 Ok\r\n",
			 normalize && !nul ? "250 2.0.0 Ok" :
			 nul		   ? "554 5.6.0 Error: NUL octet in message content" :
					     "554 5.6.0 Error: bare <CR> or <LF> in message content");
		size_t wl = strlen(want);
		cr_assert_geq(whole.replies_len, wl);
		cr_assert(memcmp(whole.replies + whole.replies_len - wl, want, wl) == 0,
			  "variant %zu: transcript ends \"%.*s\"", v, (int)wl,
			  whole.replies + whole.replies_len - wl);
		if (normalize && !nul) { /* the body up to the real end is one message */
			static const char end[] = "RCPT TO:<v@example.com>\r\n";
			cr_assert(memcmp(whole.tail + sizeof(whole.tail) - (sizeof(end) - 1), end,
					 sizeof(end) - 1) == 0,
				  "variant %zu: the message did not run to the real end", v);
		}

		for (size_t a = 0; a <= len; a++) {
			for (size_t b = a; b <= len; b++) {
				size_t cuts[2] = { a, b };
				split_session(&part, normalize, msg, len, cuts, a == b ? 1 : 2);
				cr_assert_eq(part.begins, whole.begins, "variant %zu cut %zu/%zu",
					     v, a, b);
				cr_assert_eq(part.ends, whole.ends, "variant %zu cut %zu/%zu", v, a,
					     b);
				cr_assert_eq(part.aborts, whole.aborts);
				cr_assert_eq(part.content_len, whole.content_len);
				cr_assert_eq(part.content_hash, whole.content_hash);
				cr_assert_eq(part.replies_len, whole.replies_len,
					     "variant %zu cut %zu/%zu", v, a, b);
				cr_assert(memcmp(part.replies, whole.replies, whole.replies_len) ==
						  0,
					  "variant %zu cut %zu/%zu: replies differ", v, a, b);
			}
		}
	}
}

Test(line_endings, every_end_of_data_lookalike_at_every_2_and_3_way_split_refuses_one_message)
{
	smuggling_at_every_split(false);
}

Test(line_endings, every_end_of_data_lookalike_at_every_split_normalises_to_one_message)
{
	smuggling_at_every_split(true);
}

/* ---- timeouts (RFC 5321 §4.5.3.2) ---- */

Test(timeouts, a_silent_client_is_dropped_after_5_minutes)
{
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	cr_assert_eq(smtp_server_deadline(c->s), c->now + 300000);
	conv_advance(c, 299999);
	conv_expect_nothing(c);
	conv_advance(c, 1);
	conv_expect(c, "421 4.4.2 mx.example.com Error: timeout exceeded");
	cr_assert(conv_closed(c));
	cr_assert_eq(smtp_server_deadline(c->s), UINT64_MAX);
	cr_assert_eq(counter(SMTP_C_TIMEOUTS), 1);
}

Test(timeouts, a_partial_command_does_not_extend_the_deadline)
{
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_advance(c, 200000);
	conv_send(c, "NO");
	conv_advance(c, 99999);
	conv_send(c, "O");
	conv_advance(c, 1);
	conv_expect(c, "421 4.4.2 mx.example.com Error: timeout exceeded");
}

Test(timeouts, data_waits_2_minutes_for_content_then_3_minutes_between_chunks)
{
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	envelope();
	cr_assert_eq(smtp_server_deadline(c->s), c->now + 300000, "RCPT: 5 minutes");
	conv_send(c, "DATA\r\n");
	conv_skip_reply(c, "354");
	cr_assert_eq(smtp_server_deadline(c->s), c->now + 120000);
	conv_advance(c, 119000);
	conv_send(c, "some content\r\n");
	cr_assert_eq(smtp_server_deadline(c->s), c->now + 180000);
	conv_advance(c, 179999);
	conv_send(c, "more\r\n");
	conv_advance(c, 180000);
	conv_expect(c, "421 4.4.2 mx.example.com Error: timeout exceeded");
	cr_assert_eq(c->aborts, 1, "the sink hears the message is gone");
}

Test(timeouts, after_mail_the_wait_is_5_minutes)
{
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	conv_send(c, "MAIL FROM:<sender@example.org>\r\n");
	conv_expect(c, "250 2.1.0 Ok");
	cr_assert_eq(smtp_server_deadline(c->s), c->now + 300000);
}

Test(timeouts, a_sink_that_never_answers_is_given_10_minutes)
{
	c->end_reply = SMTP_SINK_PENDING;
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	envelope();
	conv_send(c, "DATA\r\n");
	conv_skip_reply(c, "354");
	conv_send(c, "x\r\n.\r\n");
	conv_expect_nothing(c);
	cr_assert_eq(smtp_server_deadline(c->s), c->now + 600000);
	conv_advance(c, 600000);
	conv_expect(c, "421 4.4.2 mx.example.com Error: timeout exceeded");
	cr_assert_eq(c->aborts, 1);
	smtp_server_tx_done(c->s, SMTP_R_QUEUED, c->now); /* too late: ignored */
	conv_flush(c);
	conv_expect_nothing(c);
}

/* ---- the sink ---- */

Test(sink, an_asynchronous_final_reply_holds_back_later_pipelined_replies)
{
	c->end_reply = SMTP_SINK_PENDING;
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	envelope();
	conv_send(c, "DATA\r\n");
	conv_skip_reply(c, "354");
	conv_send(c, "x\r\n.\r\nMAIL FROM:<next@example.org>\r\nRSET\r\n");
	conv_expect_nothing(c);
	cr_assert(smtp_server_events(c->s) & SMTP_EV_PENDING);
	cr_assert_gt(c->kept_len, 0, "the session took only the message");
	conv_send(c, "QUIT\r\n"); /* arrives later: queues behind */
	conv_expect_nothing(c);

	smtp_server_tx_done(c->s, SMTP_R_QUEUED, c->now);
	conv_resume(c);
	expect_queued(0);
	conv_expect(c, "250 2.1.0 Ok");
	conv_expect(c, "250 2.0.0 Ok");
	conv_expect(c, "221 2.0.0 Bye");
	cr_assert_eq(c->last_flushes, 1);
}

Test(sink, a_pending_message_can_still_fail)
{
	c->end_reply = SMTP_SINK_PENDING;
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	envelope();
	conv_send(c, "DATA\r\n");
	conv_skip_reply(c, "354");
	conv_send(c, "x\r\n.\r\n");
	smtp_server_tx_done(c->s, SMTP_R_LOCAL_ERROR, c->now);
	conv_flush(c);
	conv_expect(c, "451 4.3.0 Error: local error, try again later");
	cr_assert_eq(c->aborts, 0, "end() answered: no abort");
	cr_assert_eq(counter(SMTP_C_MESSAGES_REJECTED), 1);
}

Test(sink, a_sink_refusing_at_begin_answers_the_data_command)
{
	c->begin_reply = SMTP_R_STORAGE;
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	envelope();
	conv_send(c, "DATA\r\n");
	conv_expect(c, "452 4.3.1 Error: insufficient system storage");
	cr_assert_eq(smtp_server_state(c->s), SMTP_ST_RCPT);
}

Test(sink, a_sink_refusing_content_is_answered_after_the_end_of_data)
{
	c->chunk_reply = SMTP_R_LOCAL_ERROR;
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	envelope();
	conv_send(c, "DATA\r\n");
	conv_skip_reply(c, "354");
	conv_send(c, "a\r\nb\r\n");
	conv_expect_nothing(c);
	conv_send(c, ".\r\n");
	conv_expect(c, "451 4.3.0 Error: local error, try again later");
	cr_assert_eq(c->aborts, 1);
}

Test(sink, the_discard_sink_counts_and_keeps_nothing)
{
	struct smtp_discard_sink d = { 0 };
	c->cfg.sink = &smtp_discard_sink_ops;
	c->cfg.sink_arg = &d;
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	envelope();
	conv_send(c, "BDAT 5 LAST\r\nhello");
	cr_assert_eq(d.messages, 1);
	cr_assert_gt(d.bytes, 5, "Received: and content");
	conv_skip_reply(c, "250");
}

Test(sink, the_session_ending_mid_message_aborts_it)
{
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	envelope();
	conv_send(c, "DATA\r\n");
	conv_skip_reply(c, "354");
	conv_send(c, "partial\r\n");
	conv_end(c);
	cr_assert_eq(c->aborts, 1);
}

/* ---- STARTTLS and AUTH hooks ---- */

static int hook_starttls(void *arg, struct smtp_session *s)
{
	struct conv *cv = arg;
	(void)s;
	cv->starttls_calls++;
	return cv->starttls_reply;
}

/* PLAIN with "dGVzdAB0ZXN0AHRlc3Q=" (test/test/test), or via one 334 challenge. */
static int hook_auth(void *arg, struct smtp_session *s, const struct smtp_cmd *cmd,
		     const struct smtp_str *line, struct smtp_str *challenge)
{
	static const char good[] = "dGVzdAB0ZXN0AHRlc3Q=";
	(void)arg;
	(void)s;
	if (!cmd && !line)
		return SMTP_R_NONE; /* cancelled */
	if (cmd) {
		if (cmd->mech.len != 5 || memcmp(cmd->mech.p, "PLAIN", 5) != 0)
			return SMTP_R_AUTH_MECH;
		if (cmd->initial.len == 0) {
			challenge->p = (const uint8_t *)"";
			challenge->len = 0;
			return SMTP_R_AUTH_CHALLENGE;
		}
		line = &cmd->initial;
	}
	return line->len == sizeof(good) - 1 && memcmp(line->p, good, line->len) == 0 ?
		       SMTP_R_AUTH_OK :
		       SMTP_R_AUTH_FAILED;
}

Test(extensions, starttls_hands_over_and_the_client_starts_again)
{
	c->hooks.starttls = hook_starttls;
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_send(c, "EHLO client.example.com\r\n");
	cr_assert_not_null(memmem(c->in + c->in_off, c->in_len - c->in_off, "250-STARTTLS", 12));
	conv_skip_reply(c, "250");
	conv_send(c, "STARTTLS\r\n");
	conv_expect(c, "220 2.0.0 Ready to start TLS");
	cr_assert(smtp_server_events(c->s) & SMTP_EV_STARTTLS);
	smtp_server_tls_started(c->s, c->now);
	cr_assert(smtp_server_tls(c->s));
	conv_send(c, "MAIL FROM:<sender@example.org>\r\n");
	conv_expect(c, "503 5.5.1 Error: send HELO/EHLO first");
	conv_send(c, "EHLO client.example.com\r\n");
	cr_assert_null(memmem(c->in + c->in_off, c->in_len - c->in_off, "STARTTLS", 8));
	conv_skip_reply(c, "250");
	conv_send(c, "STARTTLS\r\n");
	conv_expect(c, "503 5.5.1 Error: TLS already active");
	envelope();
	conv_send(c, "DATA\r\n");
	conv_skip_reply(c, "354");
	conv_send(c, "x\r\n.\r\n");
	expect_queued(0);
	cr_assert_not_null(memmem(c->msgs[0].data, c->msgs[0].len, "with ESMTPS id", 14));
}

/*
 * CVE-2011-0411: commands sent in the clear behind STARTTLS must never run
 * inside the TLS session. They are discarded unread and never answered,
 * whether they come in the same input or later, before the handshake.
 */
static void injection_is_discarded(bool forbid_unauth_pipelining)
{
	static const char inj[] = "STARTTLS\r\nRSET\r\nMAIL FROM:<injected@example.org>\r\n";

	c->hooks.starttls = hook_starttls;
	c->cfg.forbid_unauth_pipelining = forbid_unauth_pipelining;
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	conv_send(c, inj);
	conv_expect(c, "220 2.0.0 Ready to start TLS");
	conv_expect_nothing(c);
	cr_assert_eq(c->kept_len, 0, "nothing kept to be fed after the handshake");
	cr_assert(smtp_server_events(c->s) & SMTP_EV_STARTTLS);
	conv_send(c, "NOOP\r\n"); /* still before the handshake */
	conv_expect_nothing(c);
	cr_assert_eq(counter(SMTP_C_STARTTLS_DISCARDED), sizeof(inj) - 1 - 10 + 6);
	smtp_server_tls_started(c->s, c->now);
	conv_expect_nothing(c);
	conv_send(c, "EHLO client.example.com\r\n");
	conv_skip_reply(c, "250");
	conv_expect_nothing(c);
	conv_send(c, "RCPT TO:<a@example.com>\r\n");
	conv_expect(c, "503 5.5.1 Error: need MAIL command"); /* the injected MAIL never ran */
	cr_assert_eq(c->starttls_calls, 1);
	cr_assert(smtp_server_tls(c->s));
}

Test(extensions, plaintext_after_starttls_is_discarded_never_answered)
{
	injection_is_discarded(true);
}

Test(extensions, plaintext_after_starttls_is_discarded_with_pipelining_allowed)
{
	injection_is_discarded(false);
}

Test(extensions, starttls_is_required_where_the_listener_says_so)
{
	c->hooks.starttls = hook_starttls;
	c->cfg.require_tls = true;
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	conv_send(c, "MAIL FROM:<sender@example.org>\r\n");
	conv_expect(c, "530 5.7.0 Must issue a STARTTLS command first");
	conv_send(c, "NOOP\r\n");
	conv_expect(c, "250 2.0.0 Ok");
}

Test(extensions, auth_is_offered_only_under_tls_by_default)
{
	c->hooks.auth = hook_auth;
	c->hooks.auth_mechs = "PLAIN";
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_send(c, "EHLO client.example.com\r\n");
	cr_assert_null(memmem(c->in + c->in_off, c->in_len - c->in_off, "AUTH", 4));
	conv_skip_reply(c, "250");
	conv_send(c, "AUTH PLAIN dGVzdAB0ZXN0AHRlc3Q=\r\n");
	conv_expect(c, "538 5.7.11 Encryption required for requested authentication mechanism");
}

Test(extensions, auth_under_implicit_tls_and_the_trace_says_esmtpsa)
{
	c->hooks.auth = hook_auth;
	c->hooks.auth_mechs = "PLAIN";
	conv_start(c, SMTP_SESSION_TLS);
	conv_skip_reply(c, "220");
	conv_send(c, "EHLO client.example.com\r\n");
	cr_assert_not_null(memmem(c->in + c->in_off, c->in_len - c->in_off, "250-AUTH PLAIN", 14));
	conv_skip_reply(c, "250");
	conv_send(c, "AUTH PLAIN wrong\r\n");
	conv_expect(c, "535 5.7.8 Error: authentication failed");
	conv_send(c, "AUTH PLAIN\r\n");
	conv_expect(c, "334 ");
	conv_send(c, "*\r\n");
	conv_expect(c, "501 5.0.0 Authentication aborted");
	conv_send(c, "AUTH PLAIN\r\n");
	conv_expect(c, "334 ");
	conv_send(c, "dGVzdAB0ZXN0AHRlc3Q=\r\n");
	conv_expect(c, "235 2.7.0 Authentication successful");
	cr_assert(smtp_server_authenticated(c->s));
	conv_send(c, "AUTH PLAIN dGVzdAB0ZXN0AHRlc3Q=\r\n");
	conv_expect(c, "503 5.5.1 Error: already authenticated");
	envelope();
	conv_send(c, "DATA\r\n");
	conv_skip_reply(c, "354");
	conv_send(c, "x\r\n.\r\n");
	expect_queued(0);
	cr_assert_not_null(memmem(c->msgs[0].data, c->msgs[0].len, "with ESMTPSA id", 15));
	cr_assert_eq(counter(SMTP_C_AUTH_SUCCESS), 1);
	cr_assert_eq(counter(SMTP_C_AUTH_FAILURE), 1);
}

Test(extensions, an_unusable_config_gives_no_session)
{
	struct smtp_peer peer = { .family = 6 };
	c->cfg.hostname = NULL;
	cr_assert_null(smtp_server_new(&c->cfg, &c->ctx, &peer, 0, 0));
	c->cfg.hostname = CONV_HOST;
	c->cfg.max_cmd_line = 100;
	cr_assert_null(smtp_server_new(&c->cfg, &c->ctx, &peer, 0, 0));
}

Test(extensions, an_ipv6_client_is_traced_as_an_ipv6_literal)
{
	struct smtp_peer peer = { .family = 6, .addr = { 0x20, 0x01, 0x0d, 0xb8, [15] = 7 } };
	c->s = smtp_server_new(&c->cfg, &c->ctx, &peer, 0, c->now);
	cr_assert_not_null(c->s);
	conv_flush(c);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	envelope();
	cr_assert_str_eq(smtp_server_tx(c->s)->client, "[IPv6:2001:db8::7]");
}

/* ---- replies that come later: MAIL/RCPT hooks answering SMTP_HOOK_PENDING (cut-through) ---- */

TestSuite(pending_cmd, .init = setup, .fini = teardown);

/* What the pending hooks saw: the recipients asked about, and transaction ends. */
static struct {
	char rcpt[8][64];
	unsigned nrcpt, mails, tx_ends;
	unsigned nrcpt_in_tx_at_end;
} asked;

static int pending_mail(void *arg, struct smtp_session *s, const struct smtp_tx *tx,
			const struct smtp_path *sender)
{
	(void)arg, (void)s, (void)tx, (void)sender;
	asked.mails++;
	return SMTP_HOOK_PENDING;
}

static int pending_rcpt(void *arg, struct smtp_session *s, const struct smtp_tx *tx,
			const struct smtp_path *rcpt)
{
	(void)arg, (void)s, (void)tx;
	cr_assert_lt(asked.nrcpt, 8);
	snprintf(asked.rcpt[asked.nrcpt++], 64, "%.*s", (int)rcpt->mailbox.len,
		 (const char *)rcpt->mailbox.p);
	return SMTP_HOOK_PENDING;
}

static void record_tx_end(void *arg, struct smtp_session *s, const struct smtp_tx *tx)
{
	(void)arg, (void)s;
	asked.tx_ends++;
	asked.nrcpt_in_tx_at_end = tx->nrcpt;
}

static void pending_hooks(bool mail)
{
	memset(&asked, 0, sizeof(asked));
	c->hooks.rcpt_check = pending_rcpt;
	if (mail)
		c->hooks.mail_check = pending_mail;
	c->hooks.tx_end = record_tx_end;
}

static struct smtp_reply_text text(uint16_t code, const char *esc, const char *t)
{
	return (struct smtp_reply_text){ .code = code,
					 .esc = esc,
					 .esc_len = esc ? strlen(esc) : 0,
					 .text = t,
					 .text_len = strlen(t) };
}

Test(pending_cmd, a_pipelined_group_whose_rcpt_replies_come_later_stays_in_order)
{
	pending_hooks(false);
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	conv_send(c, "MAIL FROM:<sender@example.org>\r\nRCPT TO:<a@example.com>\r\n"
		     "RCPT TO:<b@example.com>\r\nRCPT TO:<c@example.com>\r\n");
	conv_expect(c, "250 2.1.0 Ok");
	conv_expect_nothing(c); /* RCPT a is waiting: b and c wait behind it */
	cr_assert_eq(smtp_server_pending_cmd(c->s), SMTP_V_RCPT);
	cr_assert(smtp_server_events(c->s) & SMTP_EV_PENDING);
	cr_assert_eq(asked.nrcpt, 1, "later commands are not looked at while one is pending");
	cr_assert_gt(c->kept_len, 0);
	conv_send(c, "NOOP\r\n"); /* arrives later: queues behind the group */
	conv_expect_nothing(c);

	struct smtp_reply_text ok = text(250, "2.1.5", "a@example.com... Recipient ok");
	smtp_server_cmd_done(c->s, SMTP_R_NONE, &ok, c->now);
	smtp_server_cmd_done(c->s, SMTP_R_NONE, &ok, c->now); /* twice: ignored */
	conv_resume(c);
	conv_expect(c, "250 2.1.5 a@example.com... Recipient ok");
	conv_expect_nothing(c); /* now RCPT b waits */
	cr_assert_eq(asked.nrcpt, 2);
	cr_assert_str_eq(asked.rcpt[1], "b@example.com");

	struct smtp_reply_text no = text(550, "5.1.1", "<b@example.com>: User unknown");
	smtp_server_cmd_done(c->s, SMTP_R_NONE, &no, c->now);
	conv_resume(c);
	conv_expect(c, "550 5.1.1 <b@example.com>: User unknown");
	conv_expect_nothing(c); /* RCPT c */
	smtp_server_cmd_done(c->s, SMTP_R_NONE, NULL, c->now); /* accepted, our own words */
	conv_resume(c);
	conv_expect(c, "250 2.1.5 Ok");
	conv_expect(c, "250 2.0.0 Ok"); /* the NOOP that came later, in its turn */
	conv_expect_nothing(c);
	cr_assert_eq(c->kept_len, 0);
	conv_send(c, "DATA\r\n");
	conv_expect(c, "354 End data with <CR><LF>.<CR><LF>");
	conv_send(c, "x\r\n.\r\n");
	expect_queued(0);
	cr_assert_eq(c->msgs[0].nrcpt, 2, "the refused recipient is not in the envelope");
	cr_assert_str_eq(c->msgs[0].rcpt[0], "a@example.com");
	cr_assert_str_eq(c->msgs[0].rcpt[1], "c@example.com");
	cr_assert_eq(counter(SMTP_C_RCPTS_ACCEPTED), 2);
	cr_assert_eq(counter(SMTP_C_POLICY_REJECTS), 1);
	cr_assert_eq(smtp_server_errors(c->s), 1);
	cr_assert_eq(asked.tx_ends, 1, "the completed transaction ended once");
}

Test(pending_cmd, a_pending_mail_holds_back_its_rcpt_and_a_refusal_ends_the_transaction)
{
	pending_hooks(true);
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	conv_send(c, "MAIL FROM:<sender@example.org>\r\nRCPT TO:<a@example.com>\r\n");
	conv_expect_nothing(c);
	cr_assert_eq(smtp_server_pending_cmd(c->s), SMTP_V_MAIL);
	cr_assert_eq(asked.nrcpt, 0);
	smtp_server_tx_done(c->s, SMTP_R_QUEUED, c->now); /* not the sink's end: ignored */
	conv_flush(c);
	conv_expect_nothing(c);

	smtp_server_cmd_done(c->s, SMTP_R_NEXTHOP_UNREACHABLE, NULL, c->now);
	conv_resume(c);
	conv_expect(c, "451 4.4.1 Error: next hop not reachable, try again later");
	conv_expect(c, "503 5.5.1 Error: need MAIL command"); /* the RCPT behind it */
	cr_assert_eq(asked.tx_ends, 1);
	cr_assert_eq(smtp_server_state(c->s), SMTP_ST_HELO);

	conv_send(c, "MAIL FROM:<sender@example.org>\r\n");
	conv_expect_nothing(c);
	smtp_server_cmd_done(c->s, SMTP_R_NONE, NULL, c->now);
	conv_resume(c);
	conv_expect(c, "250 2.1.0 Ok");
	cr_assert_eq(smtp_server_state(c->s), SMTP_ST_MAIL);
}

Test(pending_cmd, a_timeout_while_a_rcpt_reply_is_pending_ends_the_transaction)
{
	pending_hooks(false);
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	conv_send(c, "MAIL FROM:<sender@example.org>\r\n");
	conv_expect(c, "250 2.1.0 Ok");
	conv_send(c, "RCPT TO:<a@example.com>\r\n");
	conv_expect_nothing(c);
	cr_assert_eq(smtp_server_deadline(c->s), c->now + 300000);
	conv_advance(c, 300000);
	conv_expect(c, "421 4.4.2 mx.example.com Error: timeout exceeded");
	cr_assert(conv_closed(c));
	cr_assert_eq(asked.tx_ends, 1, "the hook hears the transaction is gone");
	struct smtp_reply_text ok = text(250, "2.1.5", "late");
	smtp_server_cmd_done(c->s, SMTP_R_NONE, &ok, c->now); /* too late: ignored */
	conv_flush(c);
	conv_expect_nothing(c);
}

Test(pending_cmd, a_mirrored_421_closes_and_a_3xx_is_not_repeated)
{
	pending_hooks(false);
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	conv_send(c, "MAIL FROM:<sender@example.org>\r\nRCPT TO:<a@example.com>\r\n");
	conv_expect(c, "250 2.1.0 Ok");
	struct smtp_reply_text odd = text(354, NULL, "go ahead");
	smtp_server_cmd_done(c->s, SMTP_R_NONE, &odd, c->now);
	conv_resume(c);
	conv_expect(c, "451 4.3.0 Error: local error, try again later");
	conv_send(c, "RCPT TO:<b@example.com>\r\n");
	struct smtp_reply_text bye = text(421, "4.3.2", "shutting down");
	smtp_server_cmd_done(c->s, SMTP_R_NONE, &bye, c->now);
	conv_resume(c);
	conv_expect(c, "421 4.3.2 shutting down");
	cr_assert(conv_closed(c));
}

/* ---- mirrored reply text: nothing the next hop says can break our reply lines ---- */

Test(pending_cmd, mirrored_text_is_sanitised_bounded_and_cannot_end_a_line_early)
{
	pending_hooks(false);
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	conv_send(c, "MAIL FROM:<sender@example.org>\r\nRCPT TO:<a@example.com>\r\n");
	conv_expect(c, "250 2.1.0 Ok");

	static const char evil[] = "no\r\n250 2.1.5 smuggled\0tab\there\x80\xff";
	struct smtp_reply_text m = { .code = 550,
				     .esc = "5.1.1",
				     .esc_len = 5,
				     .text = evil,
				     .text_len = sizeof(evil) - 1 };
	smtp_server_cmd_done(c->s, SMTP_R_NONE, &m, c->now);
	conv_resume(c);
	conv_expect(c, "550 5.1.1 no??250 2.1.5 smuggled?tab?here??");

	/* a long text is cut so the line with its CRLF is at most 512 octets */
	static char longtext[3000];
	memset(longtext, 'x', sizeof(longtext) - 1);
	conv_send(c, "RCPT TO:<b@example.com>\r\n");
	struct smtp_reply_text l = text(452, "4.2.2", longtext);
	smtp_server_cmd_done(c->s, SMTP_R_NONE, &l, c->now);
	conv_resume(c);
	const char *line = c->in + c->in_off;
	const char *eol = memmem(line, c->in_len - c->in_off, "\r\n", 2);
	cr_assert_not_null(eol);
	cr_assert_eq((size_t)(eol - line) + 2, SMTP_REPLY_LINE_MAX);
	cr_assert_eq(strncmp(line, "452 4.2.2 xxx", 13), 0);
	c->in_off += (size_t)(eol - line) + 2;

	/* an enhanced code of the wrong class, or malformed, is replaced by ours */
	conv_send(c, "RCPT TO:<d@example.com>\r\n");
	struct smtp_reply_text w = text(550, "2.0.0", "odd");
	smtp_server_cmd_done(c->s, SMTP_R_NONE, &w, c->now);
	conv_resume(c);
	conv_expect(c, "550 5.0.0 odd");
	conv_send(c, "RCPT TO:<e@example.com>\r\n");
	struct smtp_reply_text x = text(250, "2.1.5\r\n", "ok");
	smtp_server_cmd_done(c->s, SMTP_R_NONE, &x, c->now);
	conv_resume(c);
	conv_expect(c, "250 2.0.0 ok");
	conv_expect_nothing(c);
}

Test(pending_cmd, reply_text_formatter_checks_code_and_enhanced_code)
{
	char out[SMTP_REPLY_LINE_MAX];
	struct smtp_reply_text r = text(199, "2.0.0", "x");
	cr_assert_eq(smtp_reply_format_text(out, sizeof(out), &r, NULL, ' '), 0);
	r.code = 600;
	cr_assert_eq(smtp_reply_format_text(out, sizeof(out), &r, NULL, ' '), 0);
	r = text(250, "2.0.0", "x");
	cr_assert_eq(smtp_reply_format_text(out, 5, &r, NULL, ' '), 0, "does not fit: nothing");
	cr_assert(smtp_reply_esc_valid(550, "5.1.1", 5));
	cr_assert(smtp_reply_esc_valid(450, "4.999.999", 9));
	cr_assert_not(smtp_reply_esc_valid(450, "4.1000.1", 8));
	cr_assert_not(smtp_reply_esc_valid(450, "4..1", 4));
	cr_assert_not(smtp_reply_esc_valid(450, "5.1.1", 5));
	cr_assert_not(smtp_reply_esc_valid(450, "4.1.", 4));
	size_t n = smtp_reply_format_text(out, sizeof(out), &r, "pre\r\n", ' ');
	cr_assert_eq(n, 18);
	cr_assert_eq(memcmp(out, "250 2.0.0 pre??x\r\n", 18), 0);
}

Test(pending_cmd, a_mirrored_final_reply_carries_our_queue_id_or_their_refusal)
{
	c->end_reply = SMTP_SINK_PENDING;
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	envelope();
	conv_send(c, "DATA\r\n");
	conv_skip_reply(c, "354");
	conv_send(c, "x\r\n.\r\nNOOP\r\n");
	conv_expect_nothing(c);
	struct smtp_reply_text ok = text(250, "2.0.0", "Ok: stored as 42\r\n");
	smtp_server_cmd_done(c->s, SMTP_R_NONE, &ok, c->now); /* not a command: ignored */
	smtp_server_tx_done_text(c->s, &ok, c->now);
	conv_resume(c);
	char want[160];
	snprintf(want, sizeof(want), "250 2.0.0 Ok: queued as %s; next hop: Ok: stored as 42??",
		 c->msgs[0].queue_id);
	conv_expect(c, want);
	conv_expect(c, "250 2.0.0 Ok");
	cr_assert_eq(counter(SMTP_C_MESSAGES_ACCEPTED), 1);

	envelope();
	conv_send(c, "DATA\r\n");
	conv_skip_reply(c, "354");
	conv_send(c, "x\r\n.\r\n");
	struct smtp_reply_text no = text(554, "5.7.1", "Message rejected as spam");
	smtp_server_tx_done_text(c->s, &no, c->now);
	conv_flush(c);
	conv_expect(c, "554 5.7.1 Message rejected as spam");
	cr_assert_eq(counter(SMTP_C_MESSAGES_REJECTED), 1);
	cr_assert_eq(c->aborts, 0, "end() answered: no abort");
}

/* ==== helper CT2: a pipelined group's RCPTs pending at once (rcpt_pending_max > 1) ==== */

TestSuite(rcpt_group, .init = setup, .fini = teardown);

/* What the group's hook saw: each RCPT's id (tx->rcpt_attempts) and mailbox. */
static struct {
	unsigned id[8];
	char rcpt[8][64];
	unsigned n;
} grp_seen;

static int group_rcpt(void *arg, struct smtp_session *s, const struct smtp_tx *tx,
		      const struct smtp_path *rcpt)
{
	(void)arg, (void)s;
	cr_assert_lt(grp_seen.n, 8);
	grp_seen.id[grp_seen.n] = tx->rcpt_attempts;
	snprintf(grp_seen.rcpt[grp_seen.n++], 64, "%.*s", (int)rcpt->mailbox.len,
		 (const char *)rcpt->mailbox.p);
	return SMTP_HOOK_PENDING;
}

static void group_hooks(unsigned max)
{
	pending_hooks(false);
	memset(&grp_seen, 0, sizeof(grp_seen));
	c->hooks.rcpt_check = group_rcpt;
	c->cfg.rcpt_pending_max = max;
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
}

Test(rcpt_group, three_rcpts_pending_at_once_answered_out_of_order_are_replied_in_order)
{
	group_hooks(8);
	conv_send(c, "MAIL FROM:<sender@example.org>\r\nRCPT TO:<a@example.com>\r\n"
		     "RCPT TO:<b@example.com>\r\nRCPT TO:<c@example.com>\r\n");
	conv_expect(c, "250 2.1.0 Ok");
	conv_expect_nothing(c);
	cr_assert_eq(grp_seen.n, 3, "every RCPT of the group reached the hook at once");
	cr_assert_str_eq(grp_seen.rcpt[2], "c@example.com");
	cr_assert_eq(c->kept_len, 0, "nothing was held back");
	cr_assert_eq(smtp_server_rcpts_pending(c->s), 3);
	cr_assert_eq(smtp_server_pending_cmd(c->s), SMTP_V_RCPT);
	cr_assert(smtp_server_events(c->s) & SMTP_EV_PENDING);

	struct smtp_reply_text okc = text(250, "2.1.5", "c ok");
	struct smtp_reply_text nob = text(550, "5.1.1", "<b@example.com>: User unknown");
	struct smtp_reply_text oka = text(250, "2.1.5", "a ok");
	smtp_server_rcpt_done(c->s, grp_seen.id[2], SMTP_R_NONE, &okc, c->now);
	conv_flush(c);
	conv_expect_nothing(c); /* c's reply waits for a's and b's */
	smtp_server_rcpt_done(c->s, grp_seen.id[1], SMTP_R_NONE, &nob, c->now);
	smtp_server_rcpt_done(c->s, grp_seen.id[1], SMTP_R_NONE, &oka, c->now); /* twice: ignored */
	conv_flush(c);
	conv_expect_nothing(c);
	smtp_server_rcpt_done(c->s, grp_seen.id[0], SMTP_R_NONE, &oka, c->now);
	conv_flush(c);
	conv_expect(c, "250 2.1.5 a ok");
	conv_expect(c, "550 5.1.1 <b@example.com>: User unknown");
	conv_expect(c, "250 2.1.5 c ok");
	conv_expect_nothing(c);
	cr_assert_eq(smtp_server_rcpts_pending(c->s), 0);
	cr_assert_eq(smtp_server_state(c->s), SMTP_ST_RCPT);

	conv_send(c, "DATA\r\n");
	conv_expect(c, "354 End data with <CR><LF>.<CR><LF>");
	conv_send(c, "x\r\n.\r\n");
	expect_queued(0);
	cr_assert_eq(c->msgs[0].nrcpt, 2, "the refused one left the envelope, order kept");
	cr_assert_str_eq(c->msgs[0].rcpt[0], "a@example.com");
	cr_assert_str_eq(c->msgs[0].rcpt[1], "c@example.com");
	cr_assert_eq(counter(SMTP_C_RCPTS_ACCEPTED), 2);
	cr_assert_eq(counter(SMTP_C_POLICY_REJECTS), 1);
	cr_assert_eq(smtp_server_errors(c->s), 1);
}

Test(rcpt_group, an_rcpt_we_refuse_ourselves_mid_group_keeps_its_place_and_skips_the_hook)
{
	group_hooks(8);
	conv_send(c, "MAIL FROM:<sender@example.org>\r\nRCPT TO:<a@example.com>\r\n"
		     "RCPT TO:<no spaces@example.com>\r\nRCPT TO:<c@example.com>\r\n");
	conv_expect(c, "250 2.1.0 Ok");
	conv_expect_nothing(c); /* the 501 is decided but waits behind a's reply */
	cr_assert_eq(grp_seen.n, 2, "the hook never saw the refused RCPT");
	cr_assert_str_eq(grp_seen.rcpt[0], "a@example.com");
	cr_assert_str_eq(grp_seen.rcpt[1], "c@example.com");
	cr_assert_eq(grp_seen.id[1], 3, "ids count every RCPT, refused ones too");
	smtp_server_cmd_done(c->s, SMTP_R_NONE, NULL, c->now); /* the oldest: a */
	conv_flush(c);
	conv_expect(c, "250 2.1.5 Ok");
	conv_expect(c, "501 5.1.3 Bad recipient address syntax");
	conv_expect_nothing(c);
	smtp_server_cmd_done(c->s, SMTP_R_RELAY_DENIED, NULL, c->now);
	conv_flush(c);
	conv_skip_reply(c, "554");
	conv_expect_nothing(c);
	cr_assert_eq(smtp_server_tx(c->s)->nrcpt, 1);
	cr_assert_eq(counter(SMTP_C_SYNTAX_ERRORS), 1);
}

Test(rcpt_group, data_after_pending_rcpts_waits_for_them_and_counts_only_accepted_ones)
{
	group_hooks(8);
	conv_send(c, "MAIL FROM:<sender@example.org>\r\nRCPT TO:<a@example.com>\r\n"
		     "RCPT TO:<b@example.com>\r\nDATA\r\n");
	conv_expect(c, "250 2.1.0 Ok");
	conv_expect_nothing(c);
	cr_assert_eq(grp_seen.n, 2);
	cr_assert_gt(c->kept_len, 0, "DATA is held until the group is answered");
	cr_assert_eq(c->begins, 0);
	struct smtp_reply_text no = text(550, "5.1.1", "no such user");
	smtp_server_cmd_done(c->s, SMTP_R_NONE, &no, c->now);
	conv_resume(c);
	conv_expect(c, "550 5.1.1 no such user");
	conv_expect_nothing(c);
	cr_assert_gt(c->kept_len, 0);
	smtp_server_cmd_done(c->s, SMTP_R_NONE, &no, c->now);
	conv_resume(c);
	conv_expect(c, "550 5.1.1 no such user");
	conv_expect(c, "554 5.5.1 Error: no valid recipients"); /* RFC 5321 §3.3 */
	conv_expect_nothing(c);
	cr_assert_eq(c->begins, 0);

	/* the same with one accepted: DATA goes on with one recipient */
	memset(&grp_seen, 0, sizeof(grp_seen));
	conv_send(c, "RSET\r\nMAIL FROM:<sender@example.org>\r\nRCPT TO:<a@example.com>\r\n"
		     "RCPT TO:<b@example.com>\r\nDATA\r\n");
	conv_expect(c, "250 2.0.0 Ok");
	conv_expect(c, "250 2.1.0 Ok");
	conv_expect_nothing(c);
	smtp_server_rcpt_done(c->s, grp_seen.id[1], SMTP_R_NONE, NULL, c->now);
	conv_resume(c);
	conv_expect_nothing(c);
	smtp_server_rcpt_done(c->s, grp_seen.id[0], SMTP_R_NONE, &no, c->now);
	conv_resume(c);
	conv_expect(c, "550 5.1.1 no such user");
	conv_expect(c, "250 2.1.5 Ok");
	conv_expect(c, "354 End data with <CR><LF>.<CR><LF>");
	conv_send(c, "x\r\n.\r\n");
	expect_queued(0);
	cr_assert_eq(c->msgs[0].nrcpt, 1);
	cr_assert_str_eq(c->msgs[0].rcpt[0], "b@example.com");
}

Test(rcpt_group, the_session_ending_while_rcpts_are_pending_ends_the_transaction_once)
{
	group_hooks(8);
	c->cfg.timeout_ms.rcpt = 1000;
	conv_send(c, "MAIL FROM:<sender@example.org>\r\nRCPT TO:<a@example.com>\r\n"
		     "RCPT TO:<b@example.com>\r\nRCPT TO:<c@example.com>\r\n");
	conv_expect(c, "250 2.1.0 Ok");
	smtp_server_rcpt_done(c->s, grp_seen.id[2], SMTP_R_NONE, NULL, c->now); /* c: held */
	smtp_server_rcpt_done(c->s, grp_seen.id[0], SMTP_R_NONE, NULL, c->now); /* a: out */
	conv_flush(c);
	conv_expect(c, "250 2.1.5 Ok");
	conv_expect_nothing(c);
	conv_advance(c, 1001); /* b never answered */
	conv_expect(c, "421 4.4.2 mx.example.com Error: timeout exceeded");
	conv_expect_nothing(c); /* c's reply would be out of order: dropped */
	cr_assert(conv_closed(c));
	cr_assert_eq(asked.tx_ends, 1, "tx_end: no cmd_done may follow");
	cr_assert_eq(smtp_server_rcpts_pending(c->s), 0);
	smtp_server_cmd_done(c->s, SMTP_R_NONE, NULL, c->now); /* too late: ignored */
	smtp_server_rcpt_done(c->s, grp_seen.id[1], SMTP_R_NONE, NULL, c->now);
	conv_flush(c);
	conv_expect_nothing(c);
	cr_assert_eq(asked.tx_ends, 1);
}

Test(rcpt_group, a_421_mid_group_ends_the_session_at_the_first_reply_still_owed)
{
	group_hooks(8);
	conv_send(c, "MAIL FROM:<sender@example.org>\r\nRCPT TO:<a@example.com>\r\n"
		     "RCPT TO:<b@example.com>\r\nRCPT TO:<c@example.com>\r\n");
	conv_expect(c, "250 2.1.0 Ok");
	smtp_server_cmd_done(c->s, SMTP_R_NONE, NULL, c->now);
	struct smtp_reply_text bye = text(421, "4.3.0", "closing");
	smtp_server_rcpt_done(c->s, grp_seen.id[2], SMTP_R_NONE, &bye, c->now); /* b still owed */
	conv_flush(c);
	conv_expect(c, "250 2.1.5 Ok");
	conv_expect(c, "421 4.3.0 closing");
	conv_expect_nothing(c);
	cr_assert(conv_closed(c));
	cr_assert_eq(asked.tx_ends, 1);
}

Test(rcpt_group, max_recipients_reached_inside_a_group_is_refused_in_its_place)
{
	c->cfg.max_rcpts = 2;
	group_hooks(8);
	conv_send(c, "MAIL FROM:<sender@example.org>\r\nRCPT TO:<a@example.com>\r\n"
		     "RCPT TO:<b@example.com>\r\nRCPT TO:<c@example.com>\r\n"
		     "RCPT TO:<d@example.com>\r\n");
	conv_expect(c, "250 2.1.0 Ok");
	conv_expect_nothing(c);
	cr_assert_eq(grp_seen.n, 2, "pending RCPTs count toward the limit: c and d never asked");
	smtp_server_cmd_done(c->s, SMTP_R_NONE, NULL, c->now);
	conv_flush(c);
	conv_expect(c, "250 2.1.5 Ok");
	conv_expect_nothing(c);
	smtp_server_cmd_done(c->s, SMTP_R_NONE, NULL, c->now);
	conv_flush(c);
	conv_expect(c, "250 2.1.5 Ok");
	conv_expect(c, "452 4.5.3 Error: too many recipients");
	conv_expect(c, "452 4.5.3 Error: too many recipients");
	conv_expect_nothing(c);
	cr_assert_eq(counter(SMTP_C_TOO_MANY_RCPTS), 2);
	cr_assert_eq(smtp_server_tx(c->s)->nrcpt, 2);
}

Test(rcpt_group, a_group_larger_than_rcpt_pending_max_waits_for_room)
{
	group_hooks(2);
	conv_send(c, "MAIL FROM:<sender@example.org>\r\nRCPT TO:<a@example.com>\r\n"
		     "RCPT TO:<b@example.com>\r\nRCPT TO:<c@example.com>\r\n");
	conv_expect(c, "250 2.1.0 Ok");
	cr_assert_eq(grp_seen.n, 2);
	cr_assert_gt(c->kept_len, 0, "the third RCPT waits");
	smtp_server_cmd_done(c->s, SMTP_R_NONE, NULL, c->now);
	conv_resume(c);
	conv_expect(c, "250 2.1.5 Ok");
	cr_assert_eq(grp_seen.n, 3, "room for one more: c is asked");
	smtp_server_cmd_done(c->s, SMTP_R_NONE, NULL, c->now);
	smtp_server_cmd_done(c->s, SMTP_R_NONE, NULL, c->now);
	conv_flush(c);
	conv_expect(c, "250 2.1.5 Ok");
	conv_expect(c, "250 2.1.5 Ok");
	conv_expect_nothing(c);
	cr_assert_eq(smtp_server_tx(c->s)->nrcpt, 3);
}

Test(rcpt_group, a_config_over_the_cap_is_unusable)
{
	struct smtp_peer peer = { .family = 4 };
	c->cfg.rcpt_pending_max = SMTP_RCPT_PENDING_MAX + 1;
	cr_assert_null(smtp_server_new(&c->cfg, &c->ctx, &peer, 0, 0));
}

/*
 * Random groups (a fixed seed): MAIL and up to 8 RCPTs, some refused by our
 * own syntax check, the cap 2..8, the pending ones answered in a random
 * order, accepted or refused at random. Whatever the order, the client gets
 * exactly one reply per command, in command order, each the one decided for it.
 */
Test(rcpt_group, random_groups_answered_in_random_order_reply_in_command_order)
{
	unsigned seed = 12345;

	for (int trial = 0; trial < 300; trial++) {
		char cmds[2048], want[8][64];
		unsigned k, cap, answered = 0;
		bool done[8] = { false };
		size_t n;

		seed = seed * 1103515245u + 12345u;
		k = 1 + (seed >> 16) % 8;
		seed = seed * 1103515245u + 12345u;
		cap = 2 + (seed >> 16) % 7;
		if (c->s)
			conv_end(c);
		group_hooks(cap);
		n = (size_t)snprintf(cmds, sizeof(cmds), "MAIL FROM:<s@example.org>\r\n");
		for (unsigned i = 0; i < k; i++) {
			seed = seed * 1103515245u + 12345u;
			bool bad = (seed >> 16) % 4 == 0;
			n += (size_t)snprintf(cmds + n, sizeof(cmds) - n,
					      bad ? "RCPT TO:<bad %u>\r\n" : "RCPT TO:<u%u@example.com>\r\n", i);
			snprintf(want[i], sizeof(want[i]), "%s",
				 bad ? "501 5.1.3 Bad recipient address syntax" : "");
			done[i] = bad;
		}
		conv_send(c, cmds);
		conv_expect(c, "250 2.1.0 Ok");
		for (;;) {
			unsigned pend[8], np = 0;
			for (unsigned j = 0; j < grp_seen.n; j++)
				if (!done[grp_seen.id[j] - 1])
					pend[np++] = grp_seen.id[j] - 1;
			if (np == 0)
				break;
			cr_assert_leq(np, cap);
			seed = seed * 1103515245u + 12345u;
			unsigned i = pend[(seed >> 16) % np];
			bool ok = (seed >> 8) % 2;
			char t[48];
			snprintf(t, sizeof(t), "%s u%u", ok ? "ok" : "no", i);
			struct smtp_reply_text r = text(ok ? 250 : 550, ok ? "2.1.5" : "5.1.1", t);
			snprintf(want[i], sizeof(want[i]), "%s %s %s", ok ? "250" : "550",
				 ok ? "2.1.5" : "5.1.1", t);
			smtp_server_rcpt_done(c->s, i + 1, SMTP_R_NONE, &r, c->now);
			done[i] = true;
			answered++;
			if (c->kept_len)
				conv_resume(c);
			else
				conv_flush(c);
		}
		cr_assert_eq(grp_seen.n, answered, "the hook saw each valid RCPT once");
		for (unsigned i = 0; i < k; i++)
			conv_expect(c, want[i]);
		conv_expect_nothing(c);
		cr_assert_eq(smtp_server_rcpts_pending(c->s), 0);
	}
}

/* ==== end of helper CT2's block ==== */
