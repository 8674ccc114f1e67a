/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * SMTP client engine scenarios, written as the conversation they check:
 * what the server says (server()), the exact octets the client sends back
 * (expect_sent()), and what each recipient ended as. One client session
 * on a virtual clock; its output is "sent" (flushed) after every call, the
 * way the glue does it, and every rcpt_done/tx_done callback is recorded
 * and checked for once-and-only-once.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "dataplane/smtp/client.h"
#include "dataplane/smtp/smtp.h"

#define HELO_NAME "client.example.org"
#define MAX_RCPT  64

struct res {
	bool seen;
	unsigned order;
	enum smtp_client_outcome outcome;
	enum smtp_client_reason reason;
	enum smtp_client_stage stage;
	uint16_t code;
	char esc[SMTP_ESC_MAX + 1];
	char text[SMTP_CLIENT_TEXT_MAX + 1];
};

struct cc {
	struct smtp_client_config cfg;
	struct smtp_client_ops ops;
	struct smtp_client_ctx ctx;
	struct smtp_client *c;
	uint64_t now;

	/* what the client sent and the test has not expected yet */
	char wire[1 << 19];
	size_t wire_len, wire_off;
	unsigned flushes, last_flushes;
	size_t split; /* server octets are fed in pieces of this size; 0: whole */

	/* the message */
	struct smtp_client_msg msg;
	struct smtp_client_rcpt rcpt[MAX_RCPT];

	/* results of the current transaction */
	struct res res[MAX_RCPT];
	unsigned nres, tx_dones;
	struct smtp_client_tx_summary sum;
};

static struct cc *c;

/* ---- the harness ---- */

static const char *vis(const char *p, size_t n)
{
	static char b[4][4096];
	static int k;
	char *o = b[k++ & 3];
	size_t j = 0;
	for (size_t i = 0; i < n && j < sizeof(b[0]) - 8; i++) {
		unsigned char ch = (unsigned char)p[i];
		if (ch == '\r') {
			o[j++] = '\\';
			o[j++] = 'r';
		} else if (ch == '\n') {
			o[j++] = '\\';
			o[j++] = 'n';
		} else if (ch < 0x20 || ch > 0x7e) {
			j += (size_t)snprintf(o + j, 8, "\\x%02x", ch);
		} else {
			o[j++] = (char)ch;
		}
	}
	o[j] = '\0';
	return o;
}

static void on_rcpt_done(void *arg, struct smtp_client *cl, unsigned idx,
			 const struct smtp_client_result *r)
{
	struct cc *t = arg;
	cr_assert_eq(cl, t->c);
	cr_assert_lt(idx, t->msg.nrcpt, "result for recipient %u of %u", idx, t->msg.nrcpt);
	struct res *x = &t->res[idx];
	cr_assert(!x->seen, "recipient %u reported twice", idx);
	cr_assert_neq(r->outcome, SMTP_CO_NONE);
	cr_assert_eq(strlen(r->reply->text), r->reply->text_len);
	x->seen = true;
	x->order = t->nres++;
	x->outcome = r->outcome;
	x->reason = r->reason;
	x->stage = r->stage;
	x->code = r->reply->code;
	memcpy(x->esc, r->reply->esc, sizeof(x->esc));
	memcpy(x->text, r->reply->text, r->reply->text_len + 1);
}

static void on_tx_done(void *arg, struct smtp_client *cl, const struct smtp_client_tx_summary *s)
{
	struct cc *t = arg;
	cr_assert_eq(cl, t->c);
	cr_assert_eq(t->nres, s->nrcpt, "tx_done after %u of %u results", t->nres, s->nrcpt);
	cr_assert_eq(s->delivered + s->deferred + s->failed, s->nrcpt);
	t->tx_dones++;
	t->sum = *s;
}

static void setup(void)
{
	c = calloc(1, sizeof(*c));
	smtp_client_config_default(&c->cfg);
	c->cfg.helo_name = HELO_NAME;
	c->ops = (struct smtp_client_ops){ on_rcpt_done, on_tx_done };
	c->cfg.ops = &c->ops;
	c->cfg.ops_arg = c;
	c->now = 1000;
}

static void teardown(void)
{
	if (c->c)
		smtp_client_free(c->c);
	free(c);
}

/* Sends the client's output, as the glue does (in two parts: partial sends are fine). */
static void flush(void)
{
	const uint8_t *p;
	size_t n = smtp_client_output(c->c, &p);
	if (n == 0)
		return;
	cr_assert_leq(c->wire_len + n, sizeof(c->wire));
	memcpy(c->wire + c->wire_len, p, n);
	c->wire_len += n;
	c->flushes++;
	c->last_flushes++;
	smtp_client_output_done(c->c, n / 2, c->now);
	smtp_client_output_done(c->c, n - n / 2, c->now);
}

static void start(unsigned flags)
{
	c->c = smtp_client_new(&c->cfg, &c->ctx, flags, c->now);
	cr_assert_not_null(c->c, "client did not start: config unusable?");
	flush();
}

/* The server sends N octets (in pieces of c->split); the client's answer is flushed. */
static void server_n(const void *p, size_t n)
{
	const uint8_t *b = p;
	c->last_flushes = 0;
	while (n) {
		size_t k = c->split && c->split < n ? c->split : n;
		smtp_client_input(c->c, b, k, c->now);
		b += k;
		n -= k;
	}
	flush();
}

static void server(const char *s)
{
	server_n(s, strlen(s));
}

#define expect_sent(s) expect_sent_at(s, strlen(s), __FILE__, __LINE__)
static void expect_sent_at(const char *s, size_t n, const char *file, int line)
{
	size_t left = c->wire_len - c->wire_off;
	const char *w = c->wire + c->wire_off;
	cr_assert(left >= n && memcmp(w, s, n) == 0,
		  "%s:%d: expected the client to send\n  \"%s\"\nit sent\n  \"%s\"", file, line,
		  vis(s, n), vis(w, left));
	c->wire_off += n;
}

#define expect_nothing() expect_nothing_at(__FILE__, __LINE__)
static void expect_nothing_at(const char *file, int line)
{
	cr_assert_eq(c->wire_off, c->wire_len, "%s:%d: expected nothing, the client sent \"%s\"",
		     file, line, vis(c->wire + c->wire_off, c->wire_len - c->wire_off));
}

static unsigned events(void)
{
	return smtp_client_events(c->c);
}

static enum smtp_client_state state(void)
{
	return smtp_client_state(c->c);
}

static uint64_t counter(enum smtp_client_counter k)
{
	return c->ctx.stats.c[k];
}

/* Moves the clock MS forward and runs the deadline when due. */
static void advance(uint64_t ms)
{
	c->now += ms;
	if (smtp_client_deadline(c->c) <= c->now)
		cr_assert(smtp_client_timeout(c->c, c->now));
	flush();
}

#define EHLO_ALL                                                                                   \
	"250-mx.example.com\r\n250-PIPELINING\r\n250-SIZE 1048576\r\n"                             \
	"250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n"
#define EHLO_NONE "250 mx.example.com\r\n"
#define EHLO_PIPE "250-mx.example.com\r\n250 PIPELINING\r\n"

/* Greeting and EHLO, with EHLO_REPLY as the server's answer; the client is then READY. */
static void hello(const char *ehlo_reply)
{
	server("220 mx.example.com ESMTP\r\n");
	expect_sent("EHLO " HELO_NAME "\r\n");
	server(ehlo_reply);
	cr_assert_eq(state(), SMTP_CLIENT_ST_READY, "state %s", smtp_client_state_names[state()]);
	cr_assert_eq(events(), SMTP_CLIENT_EV_READY);
}

static struct smtp_str str(const char *s)
{
	return (struct smtp_str){ (const uint8_t *)s, strlen(s) };
}

static void msg(const char *sender)
{
	c->msg = (struct smtp_client_msg){ .sender = str(sender), .rcpt = c->rcpt };
}

static struct smtp_client_rcpt *rcpt(const char *addr)
{
	cr_assert_lt(c->msg.nrcpt, MAX_RCPT);
	struct smtp_client_rcpt *r = &c->rcpt[c->msg.nrcpt++];
	*r = (struct smtp_client_rcpt){ .addr = str(addr) };
	return r;
}

static int begin(void)
{
	memset(c->res, 0, sizeof(c->res));
	c->nres = 0;
	c->tx_dones = 0;
	c->last_flushes = 0;
	int r = smtp_client_tx_begin(c->c, &c->msg, c->now);
	flush();
	return r;
}

/* Feeds message content (the glue's loop: flush when the output is full). */
static void content_n(const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n) {
		size_t u = smtp_client_data(c->c, b, n, c->now);
		b += u;
		n -= u;
		if (n) {
			const uint8_t *o;
			cr_assert(u || smtp_client_output(c->c, &o),
				  "the client took nothing and has nothing to send");
			flush();
		}
	}
	flush();
}

static void content(const char *s)
{
	content_n(s, strlen(s));
}

static void content_end(void)
{
	int r;
	while ((r = smtp_client_data_end(c->c, c->now)) == -EAGAIN) {
		const uint8_t *o;
		cr_assert(smtp_client_output(c->c, &o), "data_end: -EAGAIN with nothing to send");
		flush();
	}
	cr_assert_eq(r, 0);
	flush();
}

#define expect_result(i, out, code, esc, text)                                                     \
	expect_result_at(i, out, SMTP_CR_REPLY, code, esc, text, __FILE__, __LINE__)
#define expect_local(i, out, reason, esc)                                                          \
	expect_result_at(i, out, reason, 0, esc, NULL, __FILE__, __LINE__)
static void expect_result_at(unsigned i, enum smtp_client_outcome out, enum smtp_client_reason why,
			     unsigned code, const char *esc, const char *text, const char *file,
			     int line)
{
	struct res *x = &c->res[i];
	cr_assert(x->seen, "%s:%d: recipient %u has no result", file, line, i);
	cr_assert_eq(x->outcome, out, "%s:%d: recipient %u %s, expected %s", file, line, i,
		     smtp_client_outcome_names[x->outcome], smtp_client_outcome_names[out]);
	cr_assert_eq(x->reason, why, "%s:%d: recipient %u reason %s, expected %s", file, line, i,
		     smtp_client_reason_names[x->reason], smtp_client_reason_names[why]);
	cr_assert_eq(x->code, code, "%s:%d: recipient %u code %u, expected %u", file, line, i,
		     x->code, code);
	cr_assert_str_eq(x->esc, esc, "%s:%d: recipient %u esc \"%s\", expected \"%s\"", file, line,
			 i, x->esc, esc);
	if (text)
		cr_assert_str_eq(x->text, text, "%s:%d: recipient %u text \"%s\"", file, line, i,
				 x->text);
}

static void expect_tx_done(unsigned delivered, unsigned deferred, unsigned failed)
{
	cr_assert_eq(c->tx_dones, 1, "tx_done ran %u times", c->tx_dones);
	cr_assert_eq(c->sum.delivered, delivered);
	cr_assert_eq(c->sum.deferred, deferred);
	cr_assert_eq(c->sum.failed, failed);
}

/* The session ended without QUIT, with nothing left to send; its error is REASON. */
static void expect_closed_with(enum smtp_client_reason reason)
{
	const uint8_t *p;
	cr_assert_eq(events(), SMTP_CLIENT_EV_CLOSE, "state %s", smtp_client_state_names[state()]);
	cr_assert_eq(smtp_client_output(c->c, &p), 0);
	cr_assert(c->wire_len < 6 || memcmp(c->wire + c->wire_len - 6, "QUIT\r\n", 6) != 0,
		  "QUIT is not owed after this");
	c->wire_off = c->wire_len;
	const struct smtp_client_result *e = smtp_client_error(c->c);
	cr_assert_not_null(e);
	cr_assert_eq(e->reason, reason, "error %s, expected %s",
		     smtp_client_reason_names[e->reason], smtp_client_reason_names[reason]);
	cr_assert_eq(smtp_client_deadline(c->c), UINT64_MAX);
}

/* A one-recipient message from sender@example.org to user@example.com. */
static void simple_msg(void)
{
	msg("sender@example.org");
	rcpt("user@example.com");
}

TestSuite(session, .init = setup, .fini = teardown);
TestSuite(pipelining, .init = setup, .fini = teardown);
TestSuite(recipients, .init = setup, .fini = teardown);
TestSuite(data, .init = setup, .fini = teardown);
TestSuite(bdat, .init = setup, .fini = teardown);
TestSuite(rules, .init = setup, .fini = teardown);
TestSuite(dsn, .init = setup, .fini = teardown);
TestSuite(replies, .init = setup, .fini = teardown);
TestSuite(timeouts, .init = setup, .fini = teardown);
TestSuite(lost, .init = setup, .fini = teardown);
TestSuite(reuse, .init = setup, .fini = teardown);
TestSuite(starttls, .init = setup, .fini = teardown);

/* ---- session ---- */

Test(session, plain_session_delivers_and_quits)
{
	start(0);
	expect_nothing();
	cr_assert_eq(state(), SMTP_CLIENT_ST_GREETING);
	hello(EHLO_NONE);
	cr_assert_eq(smtp_client_ext(c->c), 0);

	simple_msg();
	cr_assert_eq(begin(), 0);
	expect_sent("MAIL FROM:<sender@example.org>\r\n");
	expect_nothing();
	server("250 2.1.0 Ok\r\n");
	expect_sent("RCPT TO:<user@example.com>\r\n");
	server("250 2.1.5 Ok\r\n");
	expect_sent("DATA\r\n");
	cr_assert_eq(events(), 0);
	server("354 End data with <CR><LF>.<CR><LF>\r\n");
	cr_assert_eq(events(), SMTP_CLIENT_EV_CONTENT);
	content("Subject: hi\r\n\r\nhello\r\n");
	content_end();
	expect_sent("Subject: hi\r\n\r\nhello\r\n.\r\n");
	cr_assert_eq(state(), SMTP_CLIENT_ST_END);
	cr_assert_eq(c->tx_dones, 0);
	server("250 2.0.0 Ok: queued as 4B2C1\r\n");
	expect_result(0, SMTP_CO_DELIVERED, 250, "2.0.0", "Ok: queued as 4B2C1");
	cr_assert_eq(c->res[0].stage, SMTP_CS_DOT);
	expect_tx_done(1, 0, 0);
	cr_assert(c->sum.data_sent);
	cr_assert_eq(events(), SMTP_CLIENT_EV_READY);

	cr_assert_eq(smtp_client_quit(c->c, c->now), 0);
	flush();
	expect_sent("QUIT\r\n");
	server("221 2.0.0 Bye\r\n");
	cr_assert_eq(events(), SMTP_CLIENT_EV_CLOSE);
	cr_assert_null(smtp_client_error(c->c));
	expect_nothing();
	cr_assert_eq(counter(SMTP_CC_MESSAGES_DELIVERED), 1);
	cr_assert_eq(counter(SMTP_CC_MESSAGE_BYTES), 22);
	cr_assert_eq(counter(SMTP_CC_RCPTS_DELIVERED), 1);
	cr_assert_eq(counter(SMTP_CC_TRANSACTIONS), 1);
	cr_assert_eq(counter(SMTP_CC_REPLIES_2XX), 6);
	cr_assert_eq(counter(SMTP_CC_REPLIES_3XX), 1);
	cr_assert_eq(counter(SMTP_CC_SESSION_FAILURES), 0);
}

Test(session, ehlo_keywords_are_case_insensitive_and_size_is_read)
{
	start(0);
	hello("250-mx.example.com Hello\r\n250-pipelining\r\n250-Size 2048\r\n250-8bitmime\r\n"
	      "250-smtputf8\r\n250-chunking\r\n250-dsn\r\n250-starttls\r\n"
	      "250-enhancedstatuscodes\r\n250-X-UNKNOWN 1 2\r\n250 AUTH PLAIN\r\n");
	cr_assert_eq(smtp_client_ext(c->c),
		     SMTP_EXT_PIPELINING | SMTP_EXT_SIZE | SMTP_EXT_8BITMIME | SMTP_EXT_SMTPUTF8 |
			     SMTP_EXT_CHUNKING | SMTP_EXT_DSN | SMTP_EXT_STARTTLS |
			     SMTP_EXT_ENHANCEDSTATUSCODES | SMTP_EXT_AUTH);
	cr_assert_eq(smtp_client_size_limit(c->c), 2048);
}

Test(session, the_first_ehlo_line_is_the_greeting_not_a_keyword)
{
	start(0);
	hello("250 PIPELINING\r\n");
	cr_assert_eq(smtp_client_ext(c->c), 0);
}

Test(session, ehlo_refused_with_5xx_falls_back_to_helo_without_esmtp_parameters)
{
	start(0);
	server("220 mx.example.com ESMTP\r\n");
	expect_sent("EHLO " HELO_NAME "\r\n");
	server("502 5.5.1 Error: command not implemented\r\n");
	expect_sent("HELO " HELO_NAME "\r\n");
	cr_assert_eq(state(), SMTP_CLIENT_ST_HELO);
	server("250 mx.example.com\r\n");
	cr_assert_eq(events(), SMTP_CLIENT_EV_READY);
	cr_assert_eq(smtp_client_ext(c->c), 0);
	cr_assert_eq(counter(SMTP_CC_HELO_FALLBACKS), 1);

	msg("sender@example.org");
	struct smtp_client_rcpt *r = rcpt("user@example.com");
	r->notify = SMTP_NOTIFY_FAILURE;
	r->orcpt = str("user@example.com");
	c->msg.size = 100;
	c->msg.ret = SMTP_RET_HDRS;
	cr_assert_eq(begin(), 0);
	expect_sent("MAIL FROM:<sender@example.org>\r\n");
	server("250 Ok\r\n");
	expect_sent("RCPT TO:<user@example.com>\r\n");
	expect_nothing();
}

Test(session, ehlo_500_also_falls_back_to_helo)
{
	start(0);
	server("220 mx.example.com\r\n");
	expect_sent("EHLO " HELO_NAME "\r\n");
	server("500 Syntax error, command unrecognized\r\n");
	expect_sent("HELO " HELO_NAME "\r\n");
}

Test(session, ehlo_4xx_is_a_session_failure_and_quits)
{
	start(0);
	server("220 mx.example.com\r\n");
	expect_sent("EHLO " HELO_NAME "\r\n");
	server("451 4.3.0 try later\r\n");
	expect_sent("QUIT\r\n");
	const struct smtp_client_result *e = smtp_client_error(c->c);
	cr_assert_not_null(e);
	cr_assert_eq(e->outcome, SMTP_CO_DEFERRED);
	cr_assert_eq(e->reason, SMTP_CR_REPLY);
	cr_assert_eq(e->stage, SMTP_CS_EHLO);
	cr_assert_eq(e->reply->code, 451);
	cr_assert_str_eq(e->reply->text, "try later");
	server("221 Bye\r\n");
	cr_assert_eq(events(), SMTP_CLIENT_EV_CLOSE);
}

Test(session, helo_refused_too_is_a_session_failure)
{
	start(0);
	server("220 mx.example.com\r\n");
	expect_sent("EHLO " HELO_NAME "\r\n");
	server("502 no\r\n");
	expect_sent("HELO " HELO_NAME "\r\n");
	server("550 5.7.1 go away\r\n");
	expect_sent("QUIT\r\n");
	const struct smtp_client_result *e = smtp_client_error(c->c);
	cr_assert_eq(e->outcome, SMTP_CO_FAILED);
	cr_assert_eq(e->stage, SMTP_CS_HELO);
	cr_assert_str_eq(e->reply->esc, "5.7.1");
}

Test(session, a_554_greeting_fails_the_session_and_still_sends_quit)
{
	start(0);
	server("554 5.7.1 no service for you\r\n");
	expect_sent("QUIT\r\n");
	const struct smtp_client_result *e = smtp_client_error(c->c);
	cr_assert_eq(e->outcome, SMTP_CO_FAILED);
	cr_assert_eq(e->stage, SMTP_CS_GREETING);
	cr_assert_eq(e->reply->code, 554);
	cr_assert_eq(events(), 0);
	cr_assert_eq(smtp_client_tx_begin(c->c, &c->msg, c->now), -EBUSY);
	server("221 bye\r\n");
	cr_assert_eq(events(), SMTP_CLIENT_EV_CLOSE);
}

Test(session, a_4xx_greeting_defers)
{
	start(0);
	server("450 4.3.2 busy\r\n");
	expect_sent("QUIT\r\n");
	cr_assert_eq(smtp_client_error(c->c)->outcome, SMTP_CO_DEFERRED);
}

Test(session, a_421_greeting_closes_without_quit)
{
	start(0);
	server("421 4.3.2 mx.example.com shutting down\r\n");
	expect_closed_with(SMTP_CR_REPLY);
	cr_assert_eq(smtp_client_error(c->c)->reply->code, 421);
	cr_assert_eq(counter(SMTP_CC_SERVER_CLOSED), 1);
}

Test(session, a_garbage_greeting_is_a_protocol_error)
{
	start(0);
	server("HTTP/1.1 400 Bad Request\r\n");
	expect_closed_with(SMTP_CR_BAD_CODE);
	cr_assert_eq(smtp_client_error(c->c)->stage, SMTP_CS_GREETING);
	cr_assert_eq(smtp_client_error(c->c)->outcome, SMTP_CO_DEFERRED);
	cr_assert_eq(counter(SMTP_CC_PROTOCOL_ERRORS), 1);
	/* anything after that is ignored, and counted */
	server("220 hello\r\n");
	expect_nothing();
	cr_assert_eq(counter(SMTP_CC_INPUT_IGNORED), 11);
}

Test(session, a_250_greeting_is_unexpected)
{
	start(0);
	server("250 mx.example.com\r\n");
	expect_closed_with(SMTP_CR_UNEXPECTED);
}

Test(session, a_multi_line_greeting_is_one_reply)
{
	start(0);
	server("220-mx.example.com ESMTP\r\n220-no UCE\r\n");
	expect_nothing();
	server("220 welcome\r\n");
	expect_sent("EHLO " HELO_NAME "\r\n");
}

Test(session, an_idle_connection_closed_with_421_is_closed_quietly)
{
	start(0);
	hello(EHLO_ALL);
	server("421 4.4.2 mx.example.com Error: timeout exceeded\r\n");
	expect_closed_with(SMTP_CR_REPLY);
	cr_assert_eq(c->tx_dones, 0);
}

Test(session, an_unsolicited_reply_while_idle_is_a_protocol_error)
{
	start(0);
	hello(EHLO_ALL);
	server("250 surprise\r\n");
	expect_closed_with(SMTP_CR_UNEXPECTED);
}

Test(session, quit_is_only_for_an_idle_session)
{
	start(0);
	cr_assert_eq(smtp_client_quit(c->c, c->now), -EBUSY);
	hello(EHLO_ALL);
	cr_assert_eq(smtp_client_quit(c->c, c->now), 0);
	flush();
	expect_sent("QUIT\r\n");
	cr_assert_eq(smtp_client_quit(c->c, c->now), -EBUSY);
	/* a server that closes instead of answering QUIT: the end we asked for */
	smtp_client_lost(c->c, c->now);
	cr_assert_eq(events(), SMTP_CLIENT_EV_CLOSE);
	cr_assert_null(smtp_client_error(c->c));
}

Test(session, the_callers_pointer_is_kept_and_odd_arguments_are_refused)
{
	start(0);
	int mine;
	cr_assert_null(smtp_client_udata(c->c));
	smtp_client_set_udata(c->c, &mine);
	cr_assert_eq(smtp_client_udata(c->c), &mine);
	static _Alignas(16) uint8_t mem[1 << 17];
	cr_assert_leq(smtp_client_size(&c->cfg), sizeof(mem));
	cr_assert_null(smtp_client_init(NULL, &c->cfg, &c->ctx, 0, 0));
	cr_assert_null(smtp_client_init(mem, NULL, &c->ctx, 0, 0));
	cr_assert_null(smtp_client_init(mem, &c->cfg, NULL, 0, 0));
	struct smtp_client *in_place = smtp_client_init(mem, &c->cfg, &c->ctx, 0, 0);
	cr_assert_eq((void *)in_place, (void *)mem);
	smtp_client_fini(in_place);
	cr_assert_eq(smtp_client_events(in_place), SMTP_CLIENT_EV_CLOSE);
	smtp_client_free(NULL);
}

Test(session, configs_the_engine_cannot_honour_are_refused)
{
	struct smtp_client_config none = c->cfg;
	none.helo_name = NULL;
	cr_assert_null(smtp_client_new(&none, &c->ctx, 0, 0));
	struct smtp_client_config k = c->cfg;
	k.helo_name = "bad name\r\nMAIL FROM:<x>";
	cr_assert_null(smtp_client_new(&k, &c->ctx, 0, 0));
	k = c->cfg;
	k.helo_name = "";
	cr_assert_null(smtp_client_new(&k, &c->ctx, 0, 0));
	k = c->cfg;
	k.helo_name = "[198.51.100.7]";
	struct smtp_client *ok = smtp_client_new(&k, &c->ctx, 0, 0);
	cr_assert_not_null(ok);
	smtp_client_free(ok);
	k = c->cfg;
	k.ops = NULL;
	cr_assert_null(smtp_client_new(&k, &c->ctx, 0, 0));
	k = c->cfg;
	k.max_reply_line = 100;
	cr_assert_null(smtp_client_new(&k, &c->ctx, 0, 0));
	k = c->cfg;
	k.output_size = k.envelope_size; /* a pipelined group would not fit */
	cr_assert_null(smtp_client_new(&k, &c->ctx, 0, 0));
	k = c->cfg;
	k.max_rcpts = 0;
	cr_assert_null(smtp_client_new(&k, &c->ctx, 0, 0));
}

/* ---- pipelining ---- */

Test(pipelining, mail_rcpts_and_data_go_in_one_send)
{
	start(0);
	hello(EHLO_ALL);
	msg("sender@example.org");
	rcpt("a@example.com");
	rcpt("b@example.com");
	rcpt("c@example.com");
	cr_assert_eq(begin(), 0);
	cr_assert_eq(c->last_flushes, 1);
	expect_sent("MAIL FROM:<sender@example.org>\r\n"
		    "RCPT TO:<a@example.com>\r\n"
		    "RCPT TO:<b@example.com>\r\n"
		    "RCPT TO:<c@example.com>\r\n"
		    "DATA\r\n");
	expect_nothing();
	server("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"
	       "354 End data with <CR><LF>.<CR><LF>\r\n");
	expect_nothing();
	cr_assert_eq(events(), SMTP_CLIENT_EV_CONTENT);
	content("x\r\n");
	content_end();
	expect_sent("x\r\n.\r\n");
	server("250 2.0.0 Ok: queued\r\n");
	for (unsigned i = 0; i < 3; i++)
		expect_result(i, SMTP_CO_DELIVERED, 250, "2.0.0", "Ok: queued");
	expect_tx_done(3, 0, 0);
}

Test(pipelining, replies_trickling_in_one_by_one_are_matched_in_order)
{
	start(0);
	hello(EHLO_PIPE);
	msg("sender@example.org");
	rcpt("a@example.com");
	rcpt("b@example.com");
	cr_assert_eq(begin(), 0);
	expect_sent("MAIL FROM:<sender@example.org>\r\nRCPT TO:<a@example.com>\r\n"
		    "RCPT TO:<b@example.com>\r\nDATA\r\n");
	server("250 ok\r\n");
	server("550 5.1.1 no such user\r\n");
	cr_assert(c->res[1].seen == false && c->res[0].seen);
	expect_result(0, SMTP_CO_FAILED, 550, "5.1.1", "no such user");
	server("250 ok\r\n");
	server("354 go\r\n");
	expect_nothing();
	cr_assert_eq(events(), SMTP_CLIENT_EV_CONTENT);
}

Test(pipelining, without_pipelining_each_command_waits_for_its_reply)
{
	start(0);
	hello("250-mx.example.com\r\n250 8BITMIME\r\n");
	msg("sender@example.org");
	rcpt("a@example.com");
	rcpt("b@example.com");
	cr_assert_eq(begin(), 0);
	expect_sent("MAIL FROM:<sender@example.org>\r\n");
	expect_nothing();
	server("250 ok\r\n");
	expect_sent("RCPT TO:<a@example.com>\r\n");
	expect_nothing();
	server("250 ok\r\n");
	expect_sent("RCPT TO:<b@example.com>\r\n");
	expect_nothing();
	server("250 ok\r\n");
	expect_sent("DATA\r\n");
	expect_nothing();
}

Test(pipelining, a_client_told_not_to_pipeline_does_not)
{
	c->cfg.pipelining = false;
	start(0);
	hello(EHLO_ALL);
	simple_msg();
	cr_assert_eq(begin(), 0);
	expect_sent("MAIL FROM:<sender@example.org>\r\n");
	expect_nothing();
}

Test(pipelining, a_reply_to_a_command_not_yet_sent_is_a_protocol_error)
{
	start(0);
	hello(EHLO_NONE);
	simple_msg();
	cr_assert_eq(begin(), 0);
	expect_sent("MAIL FROM:<sender@example.org>\r\n");
	/* two replies at once: the second one answers an RCPT we had not sent */
	server("250 ok\r\n250 ok\r\n");
	expect_closed_with(SMTP_CR_EARLY);
	expect_local(0, SMTP_CO_DEFERRED, SMTP_CR_EARLY, "4.5.0");
	cr_assert_eq(c->res[0].stage, SMTP_CS_RCPT);
}

Test(pipelining, greeting_and_ehlo_reply_in_one_read_is_a_protocol_error)
{
	start(0);
	server("220 mx.example.com\r\n250 mx.example.com\r\n");
	expect_closed_with(SMTP_CR_EARLY);
}

/* ---- recipients ---- */

Test(recipients, some_accepted_some_deferred_some_failed)
{
	start(0);
	hello(EHLO_ALL);
	msg("sender@example.org");
	rcpt("ok1@example.com");
	rcpt("full@example.com");
	rcpt("gone@example.com");
	rcpt("ok2@example.com");
	cr_assert_eq(begin(), 0);
	expect_sent("MAIL FROM:<sender@example.org>\r\nRCPT TO:<ok1@example.com>\r\n"
		    "RCPT TO:<full@example.com>\r\nRCPT TO:<gone@example.com>\r\n"
		    "RCPT TO:<ok2@example.com>\r\nDATA\r\n");
	server("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n452 4.2.2 Mailbox full\r\n"
	       "550-5.1.1 The email account that you tried to reach does not exist.\r\n"
	       "550 5.1.1 Please try double-checking the recipient's address.\r\n"
	       "250 2.1.5 Ok\r\n354 go ahead\r\n");
	expect_result(1, SMTP_CO_DEFERRED, 452, "4.2.2", "Mailbox full");
	cr_assert_eq(c->res[1].stage, SMTP_CS_RCPT);
	expect_result(2, SMTP_CO_FAILED, 550, "5.1.1",
		      "The email account that you tried to reach does not exist. "
		      "Please try double-checking the recipient's address.");
	cr_assert(!c->res[0].seen && !c->res[3].seen, "accepted ones wait for the end of data");
	content("hi\r\n");
	content_end();
	expect_sent("hi\r\n.\r\n");
	server("250 2.0.0 Ok: queued as X\r\n");
	expect_result(0, SMTP_CO_DELIVERED, 250, "2.0.0", "Ok: queued as X");
	expect_result(3, SMTP_CO_DELIVERED, 250, "2.0.0", "Ok: queued as X");
	expect_tx_done(2, 1, 1);
	cr_assert_eq(counter(SMTP_CC_RCPTS_DEFERRED), 1);
	cr_assert_eq(counter(SMTP_CC_RCPTS_FAILED), 1);
	cr_assert_eq(counter(SMTP_CC_RCPTS_DELIVERED), 2);
}

Test(recipients, a_552_to_rcpt_is_too_many_recipients_and_is_retried)
{
	start(0);
	hello(EHLO_ALL);
	msg("sender@example.org");
	rcpt("a@example.com");
	rcpt("b@example.com");
	cr_assert_eq(begin(), 0);
	server("250 ok\r\n250 ok\r\n552 5.5.3 Too many recipients\r\n354 go\r\n");
	expect_result(1, SMTP_CO_DEFERRED, 552, "5.5.3", "Too many recipients");
	content_end();
	server("250 ok\r\n");
	expect_tx_done(1, 1, 0);
}

Test(recipients, all_refused_without_pipelining_sends_rset_not_data)
{
	start(0);
	hello(EHLO_NONE);
	msg("sender@example.org");
	rcpt("a@example.com");
	rcpt("b@example.com");
	cr_assert_eq(begin(), 0);
	expect_sent("MAIL FROM:<sender@example.org>\r\n");
	server("250 ok\r\n");
	expect_sent("RCPT TO:<a@example.com>\r\n");
	server("550 5.1.1 unknown\r\n");
	expect_sent("RCPT TO:<b@example.com>\r\n");
	server("451 4.3.0 later\r\n");
	expect_sent("RSET\r\n");
	expect_nothing();
	expect_result(0, SMTP_CO_FAILED, 550, "5.1.1", "unknown");
	expect_result(1, SMTP_CO_DEFERRED, 451, "4.3.0", "later");
	expect_tx_done(0, 1, 1);
	cr_assert(!c->sum.data_sent);
	cr_assert_eq(state(), SMTP_CLIENT_ST_RESET);
	cr_assert_eq(events(), 0);
	server("250 2.0.0 Ok\r\n");
	cr_assert_eq(events(), SMTP_CLIENT_EV_READY);
}

Test(recipients, all_refused_pipelined_waits_for_the_data_reply_then_rsets)
{
	start(0);
	hello(EHLO_ALL);
	msg("sender@example.org");
	rcpt("a@example.com");
	cr_assert_eq(begin(), 0);
	expect_sent("MAIL FROM:<sender@example.org>\r\nRCPT TO:<a@example.com>\r\nDATA\r\n");
	server("250 ok\r\n550 5.7.1 relay denied\r\n");
	expect_tx_done(0, 0, 1);
	expect_nothing(); /* not RSET yet: it would be content if DATA got a 354 */
	server("554 5.5.1 Error: no valid recipients\r\n");
	expect_sent("RSET\r\n");
	server("250 ok\r\n");
	cr_assert_eq(events(), SMTP_CLIENT_EV_READY);
	cr_assert_eq(c->tx_dones, 1);
}

Test(recipients, all_refused_but_data_accepted_gets_a_lone_dot_then_rset)
{
	start(0);
	hello(EHLO_ALL);
	simple_msg();
	cr_assert_eq(begin(), 0);
	expect_sent("MAIL FROM:<sender@example.org>\r\nRCPT TO:<user@example.com>\r\nDATA\r\n");
	server("250 ok\r\n550 no\r\n354 go ahead anyway\r\n");
	expect_sent(".\r\n");
	expect_nothing();
	cr_assert_eq(events(), 0, "no content is asked for");
	server("554 no valid recipients\r\n");
	expect_sent("RSET\r\n");
	server("250 ok\r\n");
	cr_assert_eq(events(), SMTP_CLIENT_EV_READY);
	expect_result(0, SMTP_CO_FAILED, 550, "", "no");
	expect_tx_done(0, 0, 1);
}

Test(recipients, mail_refused_pipelined_fails_everyone_and_eats_the_leftovers)
{
	start(0);
	hello(EHLO_ALL);
	msg("bad@example.org");
	rcpt("a@example.com");
	rcpt("b@example.com");
	cr_assert_eq(begin(), 0);
	expect_sent("MAIL FROM:<bad@example.org>\r\nRCPT TO:<a@example.com>\r\n"
		    "RCPT TO:<b@example.com>\r\nDATA\r\n");
	server("553 5.7.1 sender rejected\r\n");
	expect_result(0, SMTP_CO_FAILED, 553, "5.7.1", "sender rejected");
	expect_result(1, SMTP_CO_FAILED, 553, "5.7.1", "sender rejected");
	cr_assert_eq(c->res[0].stage, SMTP_CS_MAIL);
	expect_tx_done(0, 0, 2);
	server("503 5.5.1 need MAIL\r\n503 5.5.1 need MAIL\r\n");
	expect_nothing();
	server("503 5.5.1 need MAIL\r\n");
	expect_sent("RSET\r\n");
	server("250 ok\r\n");
	cr_assert_eq(events(), SMTP_CLIENT_EV_READY);
	cr_assert_eq(c->nres, 2);
}

Test(recipients, mail_deferred_without_pipelining_defers_everyone)
{
	start(0);
	hello(EHLO_NONE);
	msg("");
	rcpt("a@example.com");
	rcpt("b@example.com");
	cr_assert_eq(begin(), 0);
	expect_sent("MAIL FROM:<>\r\n");
	server("451 4.7.1 greylisted\r\n");
	expect_sent("RSET\r\n");
	expect_result(0, SMTP_CO_DEFERRED, 451, "4.7.1", "greylisted");
	expect_result(1, SMTP_CO_DEFERRED, 451, "4.7.1", "greylisted");
	expect_tx_done(0, 2, 0);
}

/* ---- data ---- */

/* A fresh session: the previous one ended, its output and results forgotten. */
static void reset(void)
{
	if (c->c)
		smtp_client_free(c->c);
	c->c = NULL;
	c->wire_len = c->wire_off = 0;
	memset(c->res, 0, sizeof(c->res));
	c->nres = c->tx_dones = 0;
}

/* Greeting, EHLO_ALL, one recipient accepted, 354: content is wanted. */
static void to_content(void)
{
	start(0);
	hello(EHLO_ALL);
	simple_msg();
	cr_assert_eq(begin(), 0);
	expect_sent("MAIL FROM:<sender@example.org>\r\nRCPT TO:<user@example.com>\r\nDATA\r\n");
	server("250 ok\r\n250 ok\r\n354 go\r\n");
	cr_assert_eq(events(), SMTP_CLIENT_EV_CONTENT);
}

/* Sends CONTENT (in two pieces split at SPLIT) and checks WIRE is what went out. */
static void stuffed_as(const char *content, size_t split, const char *wire)
{
	to_content();
	size_t n = strlen(content);
	if (split > n)
		split = n;
	content_n(content, split);
	content_n(content + split, n - split);
	content_end();
	expect_sent(wire);
	expect_nothing();
}

Test(data, data_refused_fails_the_accepted_recipients_and_rsets)
{
	start(0);
	hello(EHLO_ALL);
	msg("sender@example.org");
	rcpt("a@example.com");
	rcpt("b@example.com");
	cr_assert_eq(begin(), 0);
	c->wire_off = c->wire_len;
	server("250 ok\r\n250 ok\r\n550 5.1.1 no\r\n554 5.3.0 no data today\r\n");
	expect_result(0, SMTP_CO_FAILED, 554, "5.3.0", "no data today");
	cr_assert_eq(c->res[0].stage, SMTP_CS_DATA);
	expect_result(1, SMTP_CO_FAILED, 550, "5.1.1", "no");
	expect_tx_done(0, 0, 2);
	expect_sent("RSET\r\n");
	server("250 ok\r\n");
	cr_assert_eq(events(), SMTP_CLIENT_EV_READY);
}

Test(data, data_deferred_defers_the_accepted_recipients)
{
	start(0);
	hello(EHLO_NONE);
	simple_msg();
	cr_assert_eq(begin(), 0);
	server("250 ok\r\n");
	server("250 ok\r\n");
	c->wire_off = c->wire_len;
	server("451 4.3.0 try later\r\n");
	expect_result(0, SMTP_CO_DEFERRED, 451, "4.3.0", "try later");
	expect_sent("RSET\r\n");
}

Test(data, final_reply_4xx_defers_and_needs_no_rset)
{
	to_content();
	content("hello\r\n");
	content_end();
	expect_sent("hello\r\n.\r\n");
	server("451 4.3.0 Error: queue file write error\r\n");
	expect_result(0, SMTP_CO_DEFERRED, 451, "4.3.0", "Error: queue file write error");
	cr_assert_eq(c->res[0].stage, SMTP_CS_DOT);
	expect_nothing();
	cr_assert_eq(events(), SMTP_CLIENT_EV_READY);
	cr_assert_eq(counter(SMTP_CC_MESSAGES_DELIVERED), 0);
}

Test(data, final_reply_5xx_fails)
{
	to_content();
	content("hello\r\n");
	content_end();
	server("554 5.7.1 Error: message content rejected\r\n");
	expect_result(0, SMTP_CO_FAILED, 554, "5.7.1", "Error: message content rejected");
	expect_tx_done(0, 0, 1);
	cr_assert_eq(events(), SMTP_CLIENT_EV_READY);
}

Test(data, lines_starting_with_a_dot_are_doubled)
{
	stuffed_as(".\r\n..\r\nx.y\r\n.z\r\n", 0, "..\r\n...\r\nx.y\r\n..z\r\n.\r\n");
}

Test(data, a_dot_line_split_at_every_position_across_two_chunks)
{
	const char *in = "a\r\n.b\r\n..\r\n.\r\nc.\r\n.";
	const char *out = "a\r\n..b\r\n...\r\n..\r\nc.\r\n..\r\n.\r\n";
	for (size_t k = 0; k <= strlen(in); k++) {
		reset();
		stuffed_as(in, k, out);
	}
}

Test(data, content_without_a_final_crlf_gets_one)
{
	stuffed_as("no newline at the end", 5, "no newline at the end\r\n.\r\n");
}

Test(data, empty_content_is_just_the_end_marker)
{
	stuffed_as("", 0, ".\r\n");
}

Test(data, a_bare_lf_or_cr_before_a_dot_still_gets_it_stuffed)
{
	/* a next hop that ends lines on bare LF must not see "\n.\r\n" as the end */
	stuffed_as("a\n.\r\nb\r.\r\n", 2, "a\n..\r\nb\r..\r\n.\r\n");
}

Test(data, a_large_message_streams_through_a_small_output_buffer)
{
	c->cfg.envelope_size = 2048;
	c->cfg.output_size = 4096 + 16; /* 2 KiB of content per flush */
	static char in[200000], want[400000];
	size_t n = 0, w = 0;
	for (unsigned line = 0; n < sizeof(in) - 200; line++) {
		int len = snprintf(in + n, 200, "%sline %u of the message%s\r\n",
				   line % 3 == 0 ? "." : "", line, line % 7 ? "" : " ...");
		n += (size_t)len;
	}
	for (size_t i = 0; i < n; i++) {
		if (in[i] == '.' && (i == 0 || in[i - 1] == '\n'))
			want[w++] = '.';
		want[w++] = in[i];
	}
	memcpy(want + w, ".\r\n", 4);
	to_content();
	c->flushes = 0;
	content_n(in, n);
	content_end();
	cr_assert_gt(c->flushes, 50);
	expect_sent_at(want, w + 3, __FILE__, __LINE__);
	expect_nothing();
	server("250 ok\r\n");
	expect_result(0, SMTP_CO_DELIVERED, 250, "", "ok");
	cr_assert_eq(counter(SMTP_CC_MESSAGE_BYTES), n);
}

Test(data, content_is_only_taken_after_the_354)
{
	start(0);
	hello(EHLO_ALL);
	simple_msg();
	cr_assert_eq(begin(), 0);
	cr_assert_eq(smtp_client_data(c->c, (const uint8_t *)"x", 1, c->now), 0);
	cr_assert_eq(smtp_client_data_end(c->c, c->now), -EINVAL);
	server("250 ok\r\n250 ok\r\n354 go\r\n");
	cr_assert_eq(smtp_client_data(c->c, (const uint8_t *)"x", 1, c->now), 1);
}

Test(data, a_reply_in_the_middle_of_the_content_is_a_protocol_error)
{
	to_content();
	content("half a message\r\n");
	server("554 5.0.0 I changed my mind\r\n");
	expect_closed_with(SMTP_CR_UNEXPECTED);
	expect_local(0, SMTP_CO_DEFERRED, SMTP_CR_UNEXPECTED, "4.5.0");
	cr_assert_eq(c->res[0].stage, SMTP_CS_CONTENT);
}

Test(data, a_421_in_the_middle_of_the_content_defers)
{
	to_content();
	content("half a message\r\n");
	server("421 4.3.2 shutting down\r\n");
	expect_closed_with(SMTP_CR_REPLY);
	expect_result(0, SMTP_CO_DEFERRED, 421, "4.3.2", "shutting down");
}

/* ---- bdat ---- */

/* Greeting, EHLO_REPLY, CHUNKING enabled: MAIL and RCPT, no DATA. */
static void to_bdat(const char *ehlo_reply)
{
	c->cfg.chunking = true;
	start(0);
	hello(ehlo_reply);
	simple_msg();
	cr_assert_eq(begin(), 0);
}

Test(bdat, a_message_goes_as_one_last_chunk_without_stuffing)
{
	to_bdat(EHLO_ALL);
	expect_sent("MAIL FROM:<sender@example.org>\r\nRCPT TO:<user@example.com>\r\n");
	expect_nothing();
	server("250 ok\r\n250 ok\r\n");
	cr_assert_eq(events(), SMTP_CLIENT_EV_CONTENT);
	content("hello\r\n.dot\r\n");
	expect_nothing(); /* a small chunk waits for more, or for the end */
	content_end();
	expect_sent("BDAT 13 LAST\r\nhello\r\n.dot\r\n");
	expect_nothing();
	server("250 2.0.0 Ok: 13 octets\r\n");
	expect_result(0, SMTP_CO_DELIVERED, 250, "2.0.0", "Ok: 13 octets");
	cr_assert_eq(c->res[0].stage, SMTP_CS_BDAT);
	cr_assert_eq(events(), SMTP_CLIENT_EV_READY);
}

Test(bdat, content_without_a_final_crlf_gets_one_in_the_last_chunk)
{
	to_bdat(EHLO_ALL);
	server("250 ok\r\n250 ok\r\n");
	c->wire_off = c->wire_len;
	content("abc");
	content_end();
	expect_sent("BDAT 5 LAST\r\nabc\r\n");
}

Test(bdat, empty_content_is_an_empty_last_chunk)
{
	to_bdat(EHLO_ALL);
	server("250 ok\r\n250 ok\r\n");
	c->wire_off = c->wire_len;
	content_end();
	expect_sent("BDAT 0 LAST\r\n");
}

/* Reads the BDAT chunks in the wire; their content concatenated goes into OUT. */
static unsigned read_chunks(char *out, size_t *out_len, bool *last_seen)
{
	unsigned chunks = 0;
	*out_len = 0;
	*last_seen = false;
	while (c->wire_off < c->wire_len) {
		const char *w = c->wire + c->wire_off;
		const char *eol = memmem(w, c->wire_len - c->wire_off, "\r\n", 2);
		cr_assert_not_null(eol);
		unsigned long long size;
		char last[8] = "";
		cr_assert(sscanf(w, "BDAT %llu %4s", &size, last) >= 1, "not a BDAT: %s",
			  vis(w, (size_t)(eol - w)));
		cr_assert(!*last_seen, "a chunk after LAST");
		*last_seen = strncmp(last, "LAST", 4) == 0 && eol - w > 5 &&
			     memmem(w, (size_t)(eol - w), " LAST", 5);
		c->wire_off += (size_t)(eol - w) + 2;
		cr_assert_leq(c->wire_off + size, c->wire_len);
		memcpy(out + *out_len, c->wire + c->wire_off, size);
		*out_len += size;
		c->wire_off += size;
		chunks++;
	}
	return chunks;
}

Test(bdat, a_large_message_is_pipelined_in_several_chunks)
{
	static char in[300000], got[300000];
	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (i % 80 == 78) ? '\r' : (i % 80 == 79) ? '\n' : (char)('.' + i % 40);
	to_bdat(EHLO_ALL);
	server("250 ok\r\n250 ok\r\n");
	c->wire_off = c->wire_len;
	content_n(in, sizeof(in));
	content_end();
	size_t n;
	bool last;
	unsigned chunks = read_chunks(got, &n, &last);
	cr_assert_geq(chunks, 4);
	cr_assert(last);
	cr_assert_eq(n, sizeof(in));
	cr_assert(memcmp(got, in, n) == 0);
	/* every chunk answered in order; the last reply decides */
	for (unsigned i = 0; i + 1 < chunks; i++)
		server("250 2.0.0 chunk ok\r\n");
	cr_assert(!c->res[0].seen);
	server("250 2.0.0 message ok\r\n");
	expect_result(0, SMTP_CO_DELIVERED, 250, "2.0.0", "message ok");
}

Test(bdat, without_pipelining_each_chunk_waits_for_its_reply)
{
	static char in[100000];
	memset(in, 'x', sizeof(in));
	to_bdat("250-mx.example.com\r\n250 CHUNKING\r\n");
	expect_sent("MAIL FROM:<sender@example.org>\r\n");
	server("250 ok\r\n");
	expect_sent("RCPT TO:<user@example.com>\r\n");
	server("250 ok\r\n");
	size_t u = smtp_client_data(c->c, (const uint8_t *)in, sizeof(in), c->now);
	cr_assert_gt(u, 0);
	cr_assert_lt(u, sizeof(in));
	flush();
	/* the first chunk went; nothing more until it is answered */
	cr_assert_eq(events(), 0);
	cr_assert_eq(smtp_client_data(c->c, (const uint8_t *)in + u, sizeof(in) - u, c->now), 0);
	cr_assert_eq(smtp_client_data_end(c->c, c->now), -EAGAIN);
	char hdr[40];
	snprintf(hdr, sizeof(hdr), "BDAT %zu\r\n", u);
	expect_sent(hdr);
	c->wire_off += u;
	expect_nothing();
	server("250 ok\r\n");
	cr_assert_eq(events(), SMTP_CLIENT_EV_CONTENT);
	/* the rest is worth a chunk of its own; the end waits for its reply */
	content_n(in + u, sizeof(in) - u);
	snprintf(hdr, sizeof(hdr), "BDAT %zu\r\n", sizeof(in) - u);
	expect_sent(hdr);
	c->wire_off += sizeof(in) - u;
	cr_assert_eq(smtp_client_data_end(c->c, c->now), -EAGAIN);
	server("250 ok\r\n");
	content_end();
	expect_sent("BDAT 2 LAST\r\n\r\n");
	expect_nothing();
	server("250 ok\r\n");
	expect_result(0, SMTP_CO_DELIVERED, 250, "", "ok");
}

Test(bdat, a_refused_chunk_ends_the_transaction_and_rsets)
{
	static char in[150000];
	memset(in, 'y', sizeof(in));
	to_bdat(EHLO_ALL);
	server("250 ok\r\n250 ok\r\n");
	size_t u = smtp_client_data(c->c, (const uint8_t *)in, sizeof(in), c->now);
	flush();
	u += smtp_client_data(c->c, (const uint8_t *)in + u, sizeof(in) - u, c->now);
	flush();
	cr_assert_lt(u, sizeof(in));
	c->wire_off = c->wire_len;
	server("552 5.3.4 Message size exceeds fixed limit\r\n");
	expect_result(0, SMTP_CO_FAILED, 552, "5.3.4", "Message size exceeds fixed limit");
	cr_assert_eq(c->res[0].stage, SMTP_CS_BDAT);
	expect_tx_done(0, 0, 1);
	cr_assert_eq(events(), 0);
	cr_assert_eq(smtp_client_data(c->c, (const uint8_t *)in + u, sizeof(in) - u, c->now), 0);
	expect_nothing(); /* RFC 3030 §2: no further chunk; the second one's reply first */
	server("503 5.5.1 Error: BDAT after an earlier error\r\n");
	expect_sent("RSET\r\n");
	server("250 ok\r\n");
	cr_assert_eq(events(), SMTP_CLIENT_EV_READY);
}

Test(bdat, a_chunk_still_gathering_when_an_earlier_one_is_refused_never_goes_out)
{
	static char in[70000];
	memset(in, 'q', sizeof(in));
	to_bdat(EHLO_ALL);
	server("250 ok\r\n250 ok\r\n");
	c->wire_off = c->wire_len;
	/* the first chunk fills the output and closes; the rest gathers in a second one */
	size_t u = smtp_client_data(c->c, (const uint8_t *)in, sizeof(in), c->now);
	cr_assert_lt(u, sizeof(in));
	const uint8_t *p;
	size_t vis = smtp_client_output(c->c, &p);
	smtp_client_output_done(c->c, vis, c->now);
	c->wire_off = c->wire_len = 0;
	cr_assert_eq(smtp_client_data(c->c, (const uint8_t *)in + u, 100, c->now), 100);
	cr_assert_eq(smtp_client_output(c->c, &p), 0, "an open chunk is not sendable yet");
	server("554 5.6.0 no\r\n");
	expect_result(0, SMTP_CO_FAILED, 554, "5.6.0", "no");
	expect_sent("RSET\r\n"); /* and not the 100 octets gathered */
	expect_nothing();
}

Test(bdat, sending_more_than_is_there_is_clamped_and_an_open_chunk_stays_put)
{
	static char in[64000];
	memset(in, 'r', sizeof(in));
	to_bdat(EHLO_ALL);
	server("250 ok\r\n250 ok\r\n");
	c->wire_off = c->wire_len;
	size_t u = smtp_client_data(c->c, (const uint8_t *)in, sizeof(in), c->now);
	cr_assert_lt(u, sizeof(in));
	/* the network takes the first 1000 octets of chunk one: room for chunk two to open */
	const uint8_t *p;
	cr_assert_gt(smtp_client_output(c->c, &p), 1000);
	memcpy(c->wire + c->wire_len, p, 1000);
	c->wire_len += 1000;
	smtp_client_output_done(c->c, 1000, c->now);
	cr_assert_eq(smtp_client_data(c->c, (const uint8_t *)in + u, sizeof(in) - u, c->now),
		     sizeof(in) - u);
	/* chunk one's rest is sendable, chunk two is open behind it */
	flush();
	char hdr[40];
	snprintf(hdr, sizeof(hdr), "BDAT %zu\r\n", u);
	expect_sent(hdr);
	c->wire_off += u;
	expect_nothing();
	cr_assert_eq(smtp_client_output(c->c, &p), 0);
	smtp_client_output_done(c->c, 1000, c->now); /* nothing there: a no-op */
	content_end();
	snprintf(hdr, sizeof(hdr), "BDAT %zu LAST\r\n", sizeof(in) - u + 2);
	expect_sent(hdr);
	cr_assert(memcmp(c->wire + c->wire_off, in, sizeof(in) - u) == 0);
	c->wire_off += sizeof(in) - u;
	expect_sent("\r\n");
	expect_nothing();
}

Test(bdat, chunking_offered_but_not_enabled_uses_data)
{
	start(0);
	hello(EHLO_ALL);
	simple_msg();
	cr_assert_eq(begin(), 0);
	expect_sent("MAIL FROM:<sender@example.org>\r\nRCPT TO:<user@example.com>\r\nDATA\r\n");
}

Test(bdat, no_chunk_goes_out_when_every_recipient_was_refused)
{
	to_bdat(EHLO_ALL);
	c->wire_off = c->wire_len;
	server("250 ok\r\n550 no\r\n");
	cr_assert_eq(events(), 0);
	expect_sent("RSET\r\n");
	expect_result(0, SMTP_CO_FAILED, 550, "", "no");
}

/* ---- rules ---- */

Test(rules, a_message_over_the_server_size_fails_without_sending)
{
	start(0);
	hello(EHLO_ALL);
	simple_msg();
	rcpt("other@example.com");
	c->msg.size = 1048577;
	cr_assert_eq(begin(), 0);
	expect_nothing();
	expect_local(0, SMTP_CO_FAILED, SMTP_CR_SIZE, "5.3.4");
	expect_local(1, SMTP_CO_FAILED, SMTP_CR_SIZE, "5.3.4");
	cr_assert_str_eq(c->res[0].text, "message size exceeds the server's fixed maximum "
					 "(before MAIL FROM)");
	cr_assert_eq(c->res[0].stage, SMTP_CS_LOCAL);
	expect_tx_done(0, 0, 2);
	cr_assert_eq(counter(SMTP_CC_SIZE_REFUSED), 1);
	/* the session is untouched: the next message goes */
	cr_assert_eq(events(), SMTP_CLIENT_EV_READY);
	c->msg.size = 1048576;
	cr_assert_eq(begin(), 0);
	expect_sent("MAIL FROM:<sender@example.org> SIZE=1048576\r\n");
}

Test(rules, size_is_declared_only_when_offered_and_known)
{
	start(0);
	hello("250-mx.example.com\r\n250-PIPELINING\r\n250 SIZE\r\n");
	cr_assert_eq(smtp_client_size_limit(c->c), 0);
	simple_msg();
	c->msg.size = 5000000000ull; /* no fixed maximum: anything goes */
	cr_assert_eq(begin(), 0);
	expect_sent("MAIL FROM:<sender@example.org> SIZE=5000000000\r\n");
	reset();
	start(0);
	hello(EHLO_ALL);
	simple_msg();
	c->msg.size = 0; /* unknown */
	cr_assert_eq(begin(), 0);
	expect_sent("MAIL FROM:<sender@example.org>\r\n");
	reset();
	start(0);
	hello(EHLO_PIPE);
	simple_msg();
	c->msg.size = 99;
	cr_assert_eq(begin(), 0);
	expect_sent("MAIL FROM:<sender@example.org>\r\n");
}

Test(rules, an_smtputf8_message_for_a_server_without_it_fails_5_6_7)
{
	start(0);
	hello(EHLO_PIPE);
	simple_msg();
	c->msg.smtputf8 = true;
	cr_assert_eq(begin(), 0);
	expect_nothing();
	expect_local(0, SMTP_CO_FAILED, SMTP_CR_NO_SMTPUTF8, "5.6.7");
	cr_assert_eq(counter(SMTP_CC_UTF8_REFUSED), 1);
}

Test(rules, a_utf8_address_needs_smtputf8_even_without_the_flag)
{
	start(0);
	hello(EHLO_PIPE);
	msg("sender@example.org");
	rcpt("j\xc3\xb6rg@example.com");
	cr_assert_eq(begin(), 0);
	expect_nothing();
	expect_local(0, SMTP_CO_FAILED, SMTP_CR_NO_SMTPUTF8, "5.6.7");
	reset();
	start(0);
	hello(EHLO_ALL);
	msg("s\xc3\xa9nder@example.org");
	rcpt("user@example.com");
	cr_assert_eq(begin(), 0);
	expect_sent("MAIL FROM:<s\xc3\xa9nder@example.org> SMTPUTF8\r\n");
}

Test(rules, eight_bit_content_without_8bitmime_fails_5_6_3_by_default)
{
	start(0);
	hello(EHLO_PIPE);
	simple_msg();
	c->msg.eightbit = true;
	cr_assert_eq(begin(), 0);
	expect_nothing();
	expect_local(0, SMTP_CO_FAILED, SMTP_CR_NO_8BITMIME, "5.6.3");
	cr_assert_eq(counter(SMTP_CC_8BIT_REFUSED), 1);
}

Test(rules, eight_bit_content_is_sent_anyway_when_configured)
{
	c->cfg.send_8bit = true;
	start(0);
	hello(EHLO_PIPE);
	simple_msg();
	c->msg.eightbit = true;
	cr_assert_eq(begin(), 0);
	expect_sent("MAIL FROM:<sender@example.org>\r\nRCPT TO:<user@example.com>\r\nDATA\r\n");
	cr_assert_eq(counter(SMTP_CC_8BIT_UNDECLARED), 1);
}

Test(rules, eight_bit_content_is_declared_where_8bitmime_is_offered)
{
	start(0);
	hello(EHLO_ALL);
	simple_msg();
	c->msg.eightbit = true;
	c->msg.smtputf8 = true;
	c->msg.size = 10;
	cr_assert_eq(begin(), 0);
	expect_sent("MAIL FROM:<sender@example.org> SIZE=10 BODY=8BITMIME SMTPUTF8\r\n");
}

Test(rules, messages_that_cannot_be_sent_are_refused_by_the_api)
{
	start(0);
	simple_msg();
	cr_assert_eq(begin(), -EBUSY);
	hello(EHLO_ALL);
	msg("sender@example.org");
	cr_assert_eq(begin(), -EINVAL); /* no recipient */
	rcpt("user@example.com>\r\nRSET");
	cr_assert_eq(begin(), -EINVAL);
	msg("sender@example.org\n");
	rcpt("user@example.com");
	cr_assert_eq(begin(), -EINVAL);
	msg("sender@example.org");
	c->rcpt[0] = (struct smtp_client_rcpt){ .addr = { (const uint8_t *)"a\0b@x", 5 } };
	c->msg.nrcpt = 1;
	cr_assert_eq(begin(), -EINVAL);
	msg("sender@example.org");
	rcpt("");
	cr_assert_eq(begin(), -EINVAL);
	static char longaddr[300];
	memset(longaddr, 'a', 255);
	memcpy(longaddr + 243, "@example.com", 12);
	msg("sender@example.org");
	rcpt(longaddr);
	cr_assert_eq(begin(), -EINVAL);
	msg("sender@example.org");
	rcpt("user@example.com")->notify = SMTP_NOTIFY_NEVER | SMTP_NOTIFY_SUCCESS;
	cr_assert_eq(begin(), -EINVAL);
	msg("sender@example.org");
	struct smtp_client_rcpt *r = rcpt("user@example.com");
	r->orcpt = str("user@example.com");
	r->orcpt_type = str("rfc 822;");
	cr_assert_eq(begin(), -EINVAL);
	msg("sender@example.org");
	for (unsigned i = 0; i <= c->cfg.max_rcpts && i < MAX_RCPT; i++)
		rcpt("user@example.com");
	c->cfg.max_rcpts = MAX_RCPT - 1;
	cr_assert_eq(begin(), -E2BIG);
	static char huge[5000];
	memset(huge, 'h', sizeof(huge) - 1);
	msg("sender@example.org");
	rcpt("user@example.com")->orcpt = str(huge);
	cr_assert_eq(begin(), -EINVAL);
	msg("sender@example.org");
	rcpt("user@example.com");
	c->msg.envid = str(huge);
	cr_assert_eq(begin(), -EINVAL);
	msg("sender@example.org");
	rcpt("user@example.com");
	c->msg.ret = 7;
	cr_assert_eq(begin(), -EINVAL);
	expect_nothing();
	cr_assert_eq(c->nres, 0);
	cr_assert_eq(events(), SMTP_CLIENT_EV_READY);
}

Test(rules, an_envelope_larger_than_the_arena_is_refused)
{
	c->cfg.envelope_size = 2048;
	start(0);
	hello(EHLO_ALL);
	static char a[40][260];
	msg("sender@example.org");
	for (unsigned i = 0; i < 10; i++) {
		memset(a[i], 'a' + i, 240);
		memcpy(a[i] + 240, "@example.com", 13);
		rcpt(a[i]);
	}
	cr_assert_eq(begin(), -ENOSPC);
	expect_nothing();
	cr_assert_eq(events(), SMTP_CLIENT_EV_READY);
	c->msg.nrcpt = 5;
	cr_assert_eq(begin(), 0);
}

/* ---- dsn ---- */

Test(dsn, dsn_parameters_are_sent_only_when_offered)
{
	msg("sender@example.org");
	struct smtp_client_rcpt *r = rcpt("user@example.com");
	r->notify = SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE;
	r->orcpt = str("a+b@example.com");
	r = rcpt("other@example.com");
	r->notify = SMTP_NOTIFY_NEVER;
	r = rcpt("third@example.com");
	r->notify = SMTP_NOTIFY_DELAY | SMTP_NOTIFY_FAILURE;
	r->orcpt = str("Third@Example.COM");
	r->orcpt_type = str("x-local");
	c->msg.ret = SMTP_RET_HDRS;
	c->msg.envid = str("QQ+1=2");
	struct smtp_client_msg m = c->msg;

	start(0);
	hello(EHLO_PIPE);
	cr_assert_eq(begin(), 0);
	expect_sent("MAIL FROM:<sender@example.org>\r\nRCPT TO:<user@example.com>\r\n"
		    "RCPT TO:<other@example.com>\r\nRCPT TO:<third@example.com>\r\nDATA\r\n");
	reset();
	start(0);
	hello(EHLO_ALL);
	c->msg = m;
	cr_assert_eq(begin(), 0);
	expect_sent(
		"MAIL FROM:<sender@example.org> RET=HDRS ENVID=QQ+2B1+3D2\r\n"
		"RCPT TO:<user@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a+2Bb@example.com\r\n"
		"RCPT TO:<other@example.com> NOTIFY=NEVER\r\n"
		"RCPT TO:<third@example.com> NOTIFY=FAILURE,DELAY ORCPT=x-local;Third@Example.COM\r\n"
		"DATA\r\n");
}

Test(dsn, orcpt_is_xtext_encoded)
{
	start(0);
	hello(EHLO_ALL);
	msg("");
	struct smtp_client_rcpt *r = rcpt("user@example.com");
	r->orcpt = str("a+b=c d\xc3\xa9\x7f~!@example.com");
	c->msg.ret = SMTP_RET_FULL;
	cr_assert_eq(begin(), 0);
	expect_sent(
		"MAIL FROM:<> RET=FULL\r\n"
		"RCPT TO:<user@example.com> ORCPT=rfc822;a+2Bb+3Dc+20d+C3+A9+7F~!@example.com\r\n"
		"DATA\r\n");
}

Test(dsn, orcpt_and_envid_over_the_rfc_3461_limits_are_dropped)
{
	static char big[600];
	memset(big, '+', 200); /* 600 octets as xtext */
	start(0);
	hello(EHLO_ALL);
	msg("sender@example.org");
	struct smtp_client_rcpt *r = rcpt("user@example.com");
	r->orcpt = str(big);
	r->notify = SMTP_NOTIFY_DELAY;
	c->msg.envid = (struct smtp_str){ (const uint8_t *)big, 40 }; /* 120 as xtext */
	cr_assert_eq(begin(), 0);
	expect_sent("MAIL FROM:<sender@example.org>\r\n"
		    "RCPT TO:<user@example.com> NOTIFY=DELAY\r\nDATA\r\n");
	cr_assert_eq(counter(SMTP_CC_DSN_DROPPED), 2);
}

/* ---- replies ---- */

Test(replies, a_multi_line_ehlo_reply_split_at_every_byte_reads_the_same)
{
	const char *greeting = "220 mx.example.com ESMTP\r\n";
	const char *ehlo = EHLO_ALL;
	size_t n = strlen(ehlo);
	for (size_t k = 0; k <= n; k++) {
		reset();
		start(0);
		server(greeting);
		expect_sent("EHLO " HELO_NAME "\r\n");
		server_n(ehlo, k);
		if (k < n)
			cr_assert_eq(state(), SMTP_CLIENT_ST_EHLO, "split at %zu", k);
		server_n(ehlo + k, n - k);
		cr_assert_eq(events(), SMTP_CLIENT_EV_READY, "split at %zu", k);
		cr_assert_eq(smtp_client_ext(c->c),
			     SMTP_EXT_PIPELINING | SMTP_EXT_SIZE | SMTP_EXT_ENHANCEDSTATUSCODES |
				     SMTP_EXT_8BITMIME | SMTP_EXT_DSN | SMTP_EXT_SMTPUTF8 |
				     SMTP_EXT_CHUNKING,
			     "split at %zu", k);
		cr_assert_eq(smtp_client_size_limit(c->c), 1048576, "split at %zu", k);
	}
}

Test(replies, a_whole_transaction_fed_one_octet_at_a_time)
{
	c->split = 1;
	start(0);
	hello(EHLO_ALL);
	msg("sender@example.org");
	rcpt("a@example.com");
	rcpt("b@example.com");
	cr_assert_eq(begin(), 0);
	c->wire_off = c->wire_len;
	server("250 2.1.0 Ok\r\n250-2.1.5 first\r\n250 2.1.5 second\r\n"
	       "550-5.1.1 line one\r\n550 5.1.1 line two\r\n354 go\r\n");
	expect_result(1, SMTP_CO_FAILED, 550, "5.1.1", "line one line two");
	content("x\r\n");
	content_end();
	server("250-2.0.0 multi\r\n250 2.0.0 line final\r\n");
	expect_result(0, SMTP_CO_DELIVERED, 250, "2.0.0", "multi line final");
}

Test(replies, an_enhanced_code_of_the_wrong_class_is_text)
{
	to_content();
	content_end();
	server("550 2.0.0 looks like success\r\n");
	expect_result(0, SMTP_CO_FAILED, 550, "", "2.0.0 looks like success");
}

Test(replies, reply_text_is_sanitised_and_bounded)
{
	start(0);
	hello(EHLO_ALL);
	simple_msg();
	cr_assert_eq(begin(), 0);
	static char big[8192];
	size_t n = 0;
	n += (size_t)sprintf(big + n, "250 ok\r\n");
	n += (size_t)sprintf(big + n, "%s", "550-5.1.1 caf\xc3\xa9\tta\001b\r\n");
	for (int i = 0; i < 10; i++)
		n += (size_t)sprintf(big + n, "550-5.1.1 %0100d\r\n", i);
	n += (size_t)sprintf(big + n, "550 5.1.1 end\r\n");
	server_n(big, n);
	struct res *x = &c->res[0];
	cr_assert(x->seen);
	cr_assert_eq(strlen(x->text), SMTP_CLIENT_TEXT_MAX);
	cr_assert(strncmp(x->text, "caf?? ta?b 000", 14) == 0, "%s", x->text);
	for (size_t i = 0; i < strlen(x->text); i++)
		cr_assert(x->text[i] >= 0x20 && x->text[i] <= 0x7e);
}

/* Greeting, EHLO_ALL, two recipients: MAIL accepted, then the server sends BAD. */
static void malformed_at_rcpt(const char *bad, size_t len, enum smtp_client_reason why)
{
	reset();
	start(0);
	hello(EHLO_ALL);
	msg("sender@example.org");
	rcpt("a@example.com");
	rcpt("b@example.com");
	cr_assert_eq(begin(), 0);
	c->wire_off = c->wire_len;
	server("250 ok\r\n550 5.1.1 unknown\r\n");
	expect_result(0, SMTP_CO_FAILED, 550, "5.1.1", "unknown");
	server_n(bad, len);
	expect_closed_with(why);
	/* the decided one keeps its result; the open one is deferred, the session closes */
	expect_result(0, SMTP_CO_FAILED, 550, "5.1.1", "unknown");
	expect_local(1, SMTP_CO_DEFERRED, why, "4.5.0");
	cr_assert_eq(c->res[1].stage, SMTP_CS_RCPT);
	cr_assert(smtp_client_reason_is_protocol(why));
	expect_tx_done(0, 1, 1);
}

#define MALFORMED(s, why) malformed_at_rcpt(s, sizeof(s) - 1, why)

Test(replies, malformed_reply_codes_are_protocol_errors)
{
	MALFORMED("25 ok\r\n", SMTP_CR_BAD_CODE);
	MALFORMED("2x0 ok\r\n", SMTP_CR_BAD_CODE);
	MALFORMED("600 ok\r\n", SMTP_CR_BAD_CODE);
	MALFORMED("160 ok\r\n", SMTP_CR_BAD_CODE);
	MALFORMED("260 ok\r\n", SMTP_CR_BAD_CODE);
	MALFORMED("2500 ok\r\n", SMTP_CR_BAD_CODE);
	MALFORMED("250x\r\n", SMTP_CR_BAD_CODE);
	MALFORMED("\r\n", SMTP_CR_BAD_CODE);
	MALFORMED(" 250 ok\r\n", SMTP_CR_BAD_CODE);
	MALFORMED("\x00\x00\x00\r\n", SMTP_CR_BAD_CODE);
	cr_assert_eq(counter(SMTP_CC_PROTOCOL_ERRORS), 10);
}

Test(replies, continuation_lines_with_another_code_are_a_protocol_error)
{
	MALFORMED("250-ok\r\n251 ok\r\n", SMTP_CR_CODE_MISMATCH);
	MALFORMED("250-ok\r\n550 no\r\n", SMTP_CR_CODE_MISMATCH);
	MALFORMED("250-ok\r\n250-ok\r\n252 ok\r\n", SMTP_CR_CODE_MISMATCH);
}

Test(replies, bare_line_ends_are_protocol_errors)
{
	MALFORMED("250 ok\n", SMTP_CR_BARE_LF);
	MALFORMED("250-ok\n250 ok\r\n", SMTP_CR_BARE_LF);
	MALFORMED("\n", SMTP_CR_BARE_LF);
	MALFORMED("250 o\rk\r\n", SMTP_CR_BARE_CR);
	MALFORMED("250 ok\r\r\n", SMTP_CR_BARE_CR);
}

Test(replies, an_overlong_line_is_a_protocol_error_before_its_end_arrives)
{
	static char line[600];
	memset(line, 'x', sizeof(line));
	memcpy(line, "250 ", 4);
	/* 511 octets and no LF yet: one more octet can still be the LF */
	reset();
	start(0);
	hello(EHLO_ALL);
	simple_msg();
	cr_assert_eq(begin(), 0);
	server_n(line, 511);
	cr_assert_neq(state(), SMTP_CLIENT_ST_CLOSED);
	server_n("\n", 1);
	expect_closed_with(SMTP_CR_BARE_LF);
	/* exactly 512 with CRLF is fine ... */
	reset();
	start(0);
	hello(EHLO_ALL);
	simple_msg();
	cr_assert_eq(begin(), 0);
	server_n(line, 510);
	server_n("\r\n", 2);
	cr_assert_neq(state(), SMTP_CLIENT_ST_CLOSED);
	/* ... 513 is not, and is caught without waiting for the CRLF */
	malformed_at_rcpt(line, 512, SMTP_CR_LINE_TOO_LONG);
}

Test(replies, a_reply_with_too_many_lines_is_a_protocol_error)
{
	c->cfg.max_reply_lines = 8; /* EHLO_ALL has 8 */
	MALFORMED("550-1\r\n550-2\r\n550-3\r\n550-4\r\n550-5\r\n550-6\r\n550-7\r\n550-8\r\n"
		  "550 9\r\n",
		  SMTP_CR_TOO_MANY_LINES);
	/* eight is fine */
	reset();
	start(0);
	hello(EHLO_ALL);
	simple_msg();
	cr_assert_eq(begin(), 0);
	server("250 ok\r\n550-1\r\n550-2\r\n550-3\r\n550-4\r\n550-5\r\n550-6\r\n550-7\r\n"
	       "550 8\r\n");
	expect_result(0, SMTP_CO_FAILED, 550, "", "1 2 3 4 5 6 7 8");
}

Test(replies, a_reply_that_does_not_fit_the_command_is_a_protocol_error)
{
	MALFORMED("354 go ahead\r\n", SMTP_CR_UNEXPECTED);
	reset();
	start(0);
	hello(EHLO_ALL);
	simple_msg();
	cr_assert_eq(begin(), 0);
	server("250 ok\r\n250 ok\r\n250 ok\r\n"); /* 250 to DATA */
	expect_closed_with(SMTP_CR_UNEXPECTED);
	expect_local(0, SMTP_CO_DEFERRED, SMTP_CR_UNEXPECTED, "4.5.0");
	cr_assert_eq(c->res[0].stage, SMTP_CS_DATA);
	cr_assert_str_eq(c->res[0].text, "protocol error: unexpected reply (DATA)");
}

/* ---- timeouts ---- */

/* The deadline is MS from now; one millisecond early nothing happens. */
static void expect_deadline_in(uint64_t ms)
{
	cr_assert_eq(smtp_client_deadline(c->c), c->now + ms, "deadline in %lld ms, expected %llu",
		     (long long)(smtp_client_deadline(c->c) - c->now), (unsigned long long)ms);
	cr_assert(!smtp_client_timeout(c->c, c->now + ms - 1));
}

static void expect_timeout_after(uint64_t ms, enum smtp_client_stage st)
{
	expect_deadline_in(ms);
	advance(ms);
	expect_closed_with(SMTP_CR_TIMEOUT);
	cr_assert_eq(smtp_client_error(c->c)->stage, st, "stage %s",
		     smtp_client_stage_names[smtp_client_error(c->c)->stage]);
	cr_assert_eq(counter(SMTP_CC_TIMEOUTS), 1);
}

Test(timeouts, the_greeting_is_waited_for_5_minutes)
{
	start(0);
	expect_timeout_after(300000, SMTP_CS_GREETING);
	cr_assert_str_eq(smtp_client_error(c->c)->reply->text, "conversation timed out (greeting)");
	cr_assert_str_eq(smtp_client_error(c->c)->reply->esc, "4.4.2");
}

Test(timeouts, a_partial_reply_does_not_extend_the_wait)
{
	start(0);
	advance(200000);
	server("220-mx.example.com\r\n220 still");
	expect_timeout_after(100000, SMTP_CS_GREETING);
}

Test(timeouts, ehlo_waits_the_command_timeout)
{
	c->cfg.timeout_ms.command = 7000;
	start(0);
	server("220 mx\r\n");
	expect_timeout_after(7000, SMTP_CS_EHLO);
}

Test(timeouts, mail_and_rcpt_wait_5_minutes_each)
{
	start(0);
	hello(EHLO_ALL);
	msg("sender@example.org");
	rcpt("a@example.com");
	rcpt("b@example.com");
	cr_assert_eq(begin(), 0);
	expect_deadline_in(300000);
	advance(250000);
	server("250 ok\r\n");
	expect_deadline_in(300000);
	advance(250000);
	server("250 ok\r\n");
	expect_timeout_after(300000, SMTP_CS_RCPT);
	expect_local(0, SMTP_CO_DEFERRED, SMTP_CR_TIMEOUT, "4.4.2");
	expect_local(1, SMTP_CO_DEFERRED, SMTP_CR_TIMEOUT, "4.4.2");
	cr_assert_str_eq(c->res[1].text, "conversation timed out (RCPT TO)");
}

Test(timeouts, the_mail_timeout_is_its_own_setting)
{
	c->cfg.timeout_ms.mail = 1234;
	start(0);
	hello(EHLO_NONE);
	simple_msg();
	cr_assert_eq(begin(), 0);
	expect_timeout_after(1234, SMTP_CS_MAIL);
	expect_local(0, SMTP_CO_DEFERRED, SMTP_CR_TIMEOUT, "4.4.2");
}

Test(timeouts, the_354_is_waited_for_2_minutes)
{
	start(0);
	hello(EHLO_ALL);
	simple_msg();
	cr_assert_eq(begin(), 0);
	server("250 ok\r\n250 ok\r\n");
	expect_timeout_after(120000, SMTP_CS_DATA);
	expect_local(0, SMTP_CO_DEFERRED, SMTP_CR_TIMEOUT, "4.4.2");
}

Test(timeouts, content_that_stops_moving_times_out_after_3_minutes)
{
	to_content();
	expect_deadline_in(180000);
	advance(170000);
	content("some\r\n");
	expect_deadline_in(180000);
	advance(170000);
	content("more\r\n");
	expect_timeout_after(180000, SMTP_CS_CONTENT);
	expect_local(0, SMTP_CO_DEFERRED, SMTP_CR_TIMEOUT, "4.4.2");
}

Test(timeouts, unsent_content_counts_as_not_moving)
{
	to_content();
	smtp_client_data(c->c, (const uint8_t *)"abc\r\n", 5, c->now);
	cr_assert_eq(smtp_client_data_end(c->c, c->now), 0);
	/* the end of data is queued but the network takes nothing: a data block wait */
	expect_deadline_in(180000);
	const uint8_t *p;
	size_t n = smtp_client_output(c->c, &p);
	smtp_client_output_done(c->c, n - 1, c->now + 100000);
	c->now += 100000;
	expect_deadline_in(180000);
	c->now += 1000;
	smtp_client_output_done(c->c, 1, c->now);
	expect_deadline_in(600000); /* all sent: now the final reply's wait */
}

Test(timeouts, the_final_reply_is_waited_for_10_minutes)
{
	to_content();
	content("x\r\n");
	content_end();
	expect_timeout_after(600000, SMTP_CS_DOT);
	expect_local(0, SMTP_CO_DEFERRED, SMTP_CR_TIMEOUT, "4.4.2");
	cr_assert_str_eq(c->res[0].text, "conversation timed out (end of data)");
}

Test(timeouts, bdat_chunks_wait_3_minutes_and_the_last_10)
{
	static char in[40000];
	memset(in, 'z', sizeof(in));
	to_bdat("250-mx.example.com\r\n250 CHUNKING\r\n");
	server("250 ok\r\n");
	server("250 ok\r\n");
	c->wire_off = c->wire_len;
	cr_assert_eq(smtp_client_data(c->c, (const uint8_t *)in, sizeof(in), c->now), sizeof(in));
	flush();
	expect_sent("BDAT 40000\r\n");
	c->wire_off += sizeof(in);
	expect_deadline_in(180000);
	cr_assert_eq(smtp_client_data_end(c->c, c->now), -EAGAIN);
	advance(1000);
	server("250 ok\r\n");
	content_end();
	expect_sent("BDAT 2 LAST\r\n\r\n");
	expect_timeout_after(600000, SMTP_CS_BDAT);
}

Test(timeouts, rset_and_quit_wait_the_command_timeout)
{
	start(0);
	hello(EHLO_ALL);
	simple_msg();
	cr_assert_eq(begin(), 0);
	server("250 ok\r\n550 no\r\n554 no valid recipients\r\n");
	cr_assert_eq(state(), SMTP_CLIENT_ST_RESET);
	expect_timeout_after(300000, SMTP_CS_RSET);
	cr_assert_eq(c->nres, 1, "the transaction was already decided");

	reset();
	c->ctx.stats.c[SMTP_CC_TIMEOUTS] = 0;
	start(0);
	hello(EHLO_ALL);
	cr_assert_eq(smtp_client_quit(c->c, c->now), 0);
	flush();
	expect_deadline_in(300000);
	advance(300000);
	cr_assert_eq(events(), SMTP_CLIENT_EV_CLOSE);
	cr_assert_null(smtp_client_error(c->c), "no 221 is no failure");
}

Test(timeouts, an_idle_session_has_no_deadline)
{
	start(0);
	hello(EHLO_ALL);
	cr_assert_eq(smtp_client_deadline(c->c), UINT64_MAX);
	cr_assert(!smtp_client_timeout(c->c, UINT64_MAX - 1));
}

/* ---- lost ---- */

Test(lost, before_data_every_recipient_is_deferred)
{
	start(0);
	hello(EHLO_ALL);
	msg("sender@example.org");
	rcpt("a@example.com");
	rcpt("b@example.com");
	cr_assert_eq(begin(), 0);
	server("250 ok\r\n250 ok\r\n550 no\r\n");
	smtp_client_lost(c->c, c->now);
	expect_closed_with(SMTP_CR_CONN_LOST);
	expect_local(0, SMTP_CO_DEFERRED, SMTP_CR_CONN_LOST, "4.4.2");
	cr_assert_eq(c->res[0].stage, SMTP_CS_DATA);
	expect_result(1, SMTP_CO_FAILED, 550, "", "no");
	expect_tx_done(0, 1, 1);
	cr_assert_eq(counter(SMTP_CC_CONN_LOST), 1);
}

Test(lost, mid_data_every_recipient_is_deferred)
{
	to_content();
	content("half of it\r\n");
	smtp_client_lost(c->c, c->now);
	expect_closed_with(SMTP_CR_CONN_LOST);
	expect_local(0, SMTP_CO_DEFERRED, SMTP_CR_CONN_LOST, "4.4.2");
	cr_assert_eq(c->res[0].stage, SMTP_CS_CONTENT);
	cr_assert_str_eq(c->res[0].text, "lost connection (message content)");
	cr_assert_eq(smtp_client_data(c->c, (const uint8_t *)"x", 1, c->now), 0);
	cr_assert_eq(smtp_client_data_end(c->c, c->now), -EINVAL);
}

Test(lost, after_the_end_of_data_without_its_reply_is_deferred)
{
	to_content();
	content("all of it\r\n");
	content_end();
	smtp_client_lost(c->c, c->now);
	expect_local(0, SMTP_CO_DEFERRED, SMTP_CR_CONN_LOST, "4.4.2");
	cr_assert_eq(c->res[0].stage, SMTP_CS_DOT);
}

Test(lost, after_the_final_250_stays_delivered)
{
	to_content();
	content("all of it\r\n");
	content_end();
	server("250 2.0.0 queued\r\n");
	expect_result(0, SMTP_CO_DELIVERED, 250, "2.0.0", "queued");
	smtp_client_lost(c->c, c->now);
	cr_assert_eq(c->nres, 1);
	cr_assert_eq(c->tx_dones, 1);
	expect_result(0, SMTP_CO_DELIVERED, 250, "2.0.0", "queued");
	cr_assert_eq(events(), SMTP_CLIENT_EV_CLOSE);
}

Test(lost, during_the_greeting_is_a_session_failure)
{
	start(0);
	smtp_client_lost(c->c, c->now);
	expect_closed_with(SMTP_CR_CONN_LOST);
	cr_assert_eq(smtp_client_error(c->c)->stage, SMTP_CS_GREETING);
	smtp_client_lost(c->c, c->now); /* twice is harmless */
	cr_assert_eq(counter(SMTP_CC_CONN_LOST), 1);
}

Test(lost, abort_and_free_decide_what_is_open)
{
	to_content();
	smtp_client_abort(c->c, c->now);
	expect_local(0, SMTP_CO_DEFERRED, SMTP_CR_ABORTED, "4.3.2");
	reset();
	to_content();
	smtp_client_free(c->c);
	c->c = NULL;
	expect_local(0, SMTP_CO_DEFERRED, SMTP_CR_ABORTED, "4.3.2");
	cr_assert_eq(c->tx_dones, 1);
}

/* ---- reuse ---- */

static void deliver_one(const char *rcpt_addr, const char *queued)
{
	msg("sender@example.org");
	rcpt(rcpt_addr);
	cr_assert_eq(begin(), 0);
	char want[200];
	snprintf(want, sizeof(want), "MAIL FROM:<sender@example.org>\r\nRCPT TO:<%s>\r\nDATA\r\n",
		 rcpt_addr);
	expect_sent(want);
	server("250 ok\r\n250 ok\r\n354 go\r\n");
	content("body\r\n");
	content_end();
	expect_sent("body\r\n.\r\n");
	server(queued);
}

Test(reuse, two_transactions_on_one_connection)
{
	start(0);
	hello(EHLO_ALL);
	deliver_one("a@example.com", "250 2.0.0 Ok: queued as A\r\n");
	expect_result(0, SMTP_CO_DELIVERED, 250, "2.0.0", "Ok: queued as A");
	cr_assert_eq(events(), SMTP_CLIENT_EV_READY);
	deliver_one("b@example.com", "250 2.0.0 Ok: queued as B\r\n");
	expect_result(0, SMTP_CO_DELIVERED, 250, "2.0.0", "Ok: queued as B");
	expect_tx_done(1, 0, 0);
	cr_assert_eq(counter(SMTP_CC_TRANSACTIONS), 2);
	cr_assert_eq(counter(SMTP_CC_MESSAGES_DELIVERED), 2);
	expect_nothing();
}

Test(reuse, after_a_failed_transaction_rset_then_the_next_one)
{
	start(0);
	hello(EHLO_ALL);
	simple_msg();
	cr_assert_eq(begin(), 0);
	server("250 ok\r\n250 ok\r\n451 4.3.0 not now\r\n");
	expect_result(0, SMTP_CO_DEFERRED, 451, "4.3.0", "not now");
	c->wire_off = c->wire_len - 6;
	expect_sent("RSET\r\n");
	cr_assert_eq(begin(), -EBUSY);
	server("250 2.0.0 Ok\r\n");
	deliver_one("c@example.com", "250 queued\r\n");
	expect_result(0, SMTP_CO_DELIVERED, 250, "", "queued");
}

Test(reuse, a_server_that_refuses_rset_is_not_reused)
{
	start(0);
	hello(EHLO_ALL);
	simple_msg();
	cr_assert_eq(begin(), 0);
	server("250 ok\r\n550 no\r\n554 no\r\n");
	c->wire_off = c->wire_len - 6;
	expect_sent("RSET\r\n");
	server("500 5.5.1 what?\r\n");
	expect_sent("QUIT\r\n");
	cr_assert_eq(smtp_client_error(c->c)->stage, SMTP_CS_RSET);
	server("221 bye\r\n");
	cr_assert_eq(events(), SMTP_CLIENT_EV_CLOSE);
}

Test(reuse, a_new_transaction_waits_for_the_current_one)
{
	to_content();
	cr_assert_eq(smtp_client_tx_begin(c->c, &c->msg, c->now), -EBUSY);
	content_end();
	cr_assert_eq(smtp_client_tx_begin(c->c, &c->msg, c->now), -EBUSY);
	cr_assert_eq(smtp_client_quit(c->c, c->now), -EBUSY);
}

/* ---- starttls ---- */

#define EHLO_TLS "250-mx.example.com\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 STARTTLS\r\n"

Test(starttls, the_hook_sequence_starts_over_with_ehlo)
{
	c->cfg.tls = SMTP_CLIENT_TLS_MAY;
	start(0);
	server("220 mx.example.com ESMTP\r\n");
	expect_sent("EHLO " HELO_NAME "\r\n");
	server(EHLO_TLS);
	expect_sent("STARTTLS\r\n");
	cr_assert_eq(events(), 0);
	server("220 2.0.0 Ready to start TLS\r\n");
	cr_assert_eq(events(), SMTP_CLIENT_EV_STARTTLS);
	expect_nothing();
	expect_deadline_in(300000);
	cr_assert(!smtp_client_tls(c->c));
	smtp_client_tls_done(c->c, true, c->now);
	flush();
	cr_assert(smtp_client_tls(c->c));
	cr_assert_eq(smtp_client_ext(c->c), 0, "RFC 3207 §4.2: everything learned is forgotten");
	expect_sent("EHLO " HELO_NAME "\r\n");
	server("250-mx.example.com\r\n250 8BITMIME\r\n");
	cr_assert_eq(events(), SMTP_CLIENT_EV_READY);
	cr_assert_eq(smtp_client_ext(c->c), SMTP_EXT_8BITMIME);
	cr_assert_eq(smtp_client_size_limit(c->c), 0);
	cr_assert_eq(counter(SMTP_CC_STARTTLS), 1);
	simple_msg();
	cr_assert_eq(begin(), 0);
	expect_sent("MAIL FROM:<sender@example.org>\r\n"); /* no PIPELINING any more */
}

Test(starttls, required_but_not_offered_defers_with_4_7_4)
{
	c->cfg.tls = SMTP_CLIENT_TLS_ENCRYPT;
	start(0);
	server("220 mx\r\n");
	expect_sent("EHLO " HELO_NAME "\r\n");
	server(EHLO_ALL);
	expect_sent("QUIT\r\n");
	const struct smtp_client_result *e = smtp_client_error(c->c);
	cr_assert_eq(e->reason, SMTP_CR_NO_STARTTLS);
	cr_assert_eq(e->outcome, SMTP_CO_DEFERRED);
	cr_assert_str_eq(e->reply->esc, "4.7.4");
	cr_assert_eq(counter(SMTP_CC_NO_TLS), 1);
	cr_assert_eq(events(), 0);
}

Test(starttls, required_after_a_helo_fallback_defers_too)
{
	c->cfg.tls = SMTP_CLIENT_TLS_ENCRYPT;
	start(0);
	server("220 mx\r\n");
	expect_sent("EHLO " HELO_NAME "\r\n");
	server("502 no\r\n");
	expect_sent("HELO " HELO_NAME "\r\n");
	server("250 mx\r\n");
	expect_sent("QUIT\r\n");
	cr_assert_eq(smtp_client_error(c->c)->reason, SMTP_CR_NO_STARTTLS);
	cr_assert_eq(smtp_client_error(c->c)->stage, SMTP_CS_HELO);
}

Test(starttls, opportunistic_goes_on_in_plaintext_when_not_offered_or_refused)
{
	c->cfg.tls = SMTP_CLIENT_TLS_MAY;
	start(0);
	hello(EHLO_ALL);
	reset();
	start(0);
	server("220 mx\r\n");
	expect_sent("EHLO " HELO_NAME "\r\n");
	server(EHLO_TLS);
	expect_sent("STARTTLS\r\n");
	server("454 4.7.0 TLS not available due to local problem\r\n");
	cr_assert_eq(events(), SMTP_CLIENT_EV_READY);
	cr_assert_eq(smtp_client_size_limit(c->c), 1000, "the plaintext EHLO still holds");
	cr_assert_null(smtp_client_error(c->c));
}

Test(starttls, required_and_refused_fails_with_the_reply)
{
	c->cfg.tls = SMTP_CLIENT_TLS_ENCRYPT;
	start(0);
	server("220 mx\r\n");
	expect_sent("EHLO " HELO_NAME "\r\n");
	server(EHLO_TLS);
	expect_sent("STARTTLS\r\n");
	server("454 4.7.0 TLS not available\r\n");
	expect_sent("QUIT\r\n");
	cr_assert_eq(smtp_client_error(c->c)->reply->code, 454);
	cr_assert_eq(smtp_client_error(c->c)->stage, SMTP_CS_STARTTLS);
}

Test(starttls, a_failed_handshake_closes)
{
	c->cfg.tls = SMTP_CLIENT_TLS_ENCRYPT;
	start(0);
	server("220 mx\r\n");
	expect_sent("EHLO " HELO_NAME "\r\n");
	server(EHLO_TLS);
	expect_sent("STARTTLS\r\n");
	server("220 go\r\n");
	smtp_client_tls_done(c->c, false, c->now);
	flush();
	expect_closed_with(SMTP_CR_TLS_FAILED);
	cr_assert_eq(counter(SMTP_CC_TLS_FAILURES), 1);
}

Test(starttls, a_handshake_that_never_ends_times_out)
{
	c->cfg.tls = SMTP_CLIENT_TLS_MAY;
	start(0);
	server("220 mx\r\n");
	expect_sent("EHLO " HELO_NAME "\r\n");
	server(EHLO_TLS);
	expect_sent("STARTTLS\r\n");
	server("220 go\r\n");
	expect_timeout_after(300000, SMTP_CS_TLS);
}

Test(starttls, plaintext_after_the_220_is_an_injection)
{
	c->cfg.tls = SMTP_CLIENT_TLS_MAY;
	start(0);
	server("220 mx\r\n");
	expect_sent("EHLO " HELO_NAME "\r\n");
	server(EHLO_TLS);
	expect_sent("STARTTLS\r\n");
	server("220 go\r\n250-evil.example\r\n250 AUTH PLAIN\r\n");
	expect_closed_with(SMTP_CR_TLS_INJECTION);
	cr_assert_eq(smtp_client_error(c->c)->stage, SMTP_CS_TLS);
}

Test(starttls, no_starttls_without_a_policy_or_under_implicit_tls)
{
	start(0);
	hello(EHLO_TLS);
	reset();
	c->cfg.tls = SMTP_CLIENT_TLS_ENCRYPT;
	start(SMTP_CLIENT_TLS_ON);
	hello(EHLO_TLS);
	cr_assert(smtp_client_tls(c->c));
	smtp_client_tls_done(c->c, true, c->now); /* ignored outside the handshake */
	cr_assert_eq(events(), SMTP_CLIENT_EV_READY);
}

/* ---- interop: this client against this project's server engine ---- */

struct isink {
	uint8_t data[1 << 20];
	size_t len;
	unsigned msgs;
	char sender[300], rcpt[8][300];
	unsigned nrcpt;
	struct smtp_tx tx; /* a copy at end() (strings re-pointed into the fields below) */
	char envid[200], orcpt[8][600];
	uint8_t notify[8];
};

static int is_begin(void *arg, struct smtp_tx *tx)
{
	struct isink *k = arg;
	k->len = 0;
	snprintf(k->sender, sizeof(k->sender), "%.*s", (int)tx->sender.len,
		 (const char *)tx->sender.p);
	k->nrcpt = tx->nrcpt;
	for (unsigned i = 0; i < tx->nrcpt && i < 8; i++) {
		snprintf(k->rcpt[i], sizeof(k->rcpt[i]), "%.*s", (int)tx->rcpt[i].addr.len,
			 (const char *)tx->rcpt[i].addr.p);
		snprintf(k->orcpt[i], sizeof(k->orcpt[i]), "%.*s", (int)tx->rcpt[i].orcpt.len,
			 (const char *)tx->rcpt[i].orcpt.p);
		k->notify[i] = tx->rcpt[i].notify;
	}
	snprintf(k->envid, sizeof(k->envid), "%.*s", (int)tx->envid.len, (const char *)tx->envid.p);
	return SMTP_R_NONE;
}

static int is_chunk(void *arg, struct smtp_tx *tx, const uint8_t *p, size_t n)
{
	struct isink *k = arg;
	(void)tx;
	cr_assert_leq(k->len + n, sizeof(k->data));
	memcpy(k->data + k->len, p, n);
	k->len += n;
	return SMTP_R_NONE;
}

static int is_end(void *arg, struct smtp_tx *tx)
{
	struct isink *k = arg;
	k->msgs++;
	k->tx = *tx;
	return SMTP_R_QUEUED;
}

static void is_abort(void *arg, struct smtp_tx *tx)
{
	(void)arg;
	(void)tx;
}

static const struct smtp_sink_ops isink_ops = { is_begin, is_chunk, is_end, is_abort };

static int is_rcpt_check(void *arg, struct smtp_session *s, const struct smtp_tx *tx,
			 const struct smtp_path *r)
{
	(void)arg;
	(void)s;
	(void)tx;
	if (r->domain.len == 14 && memcmp(r->domain.p, "denied.example", 14) == 0)
		return SMTP_R_RELAY_DENIED;
	return SMTP_R_NONE;
}

struct interop {
	struct smtp_server_config scfg;
	struct smtp_hooks hooks;
	struct smtp_server_ctx sctx;
	struct smtp_session *s;
	struct isink sink;
};

static struct interop *io;

static void io_setup(void)
{
	setup();
	io = calloc(1, sizeof(*io));
	smtp_server_config_default(&io->scfg);
	io->scfg.hostname = "mx.example.com";
	io->scfg.sink = &isink_ops;
	io->scfg.sink_arg = &io->sink;
	io->hooks.rcpt_check = is_rcpt_check;
	io->scfg.hooks = &io->hooks;
	smtp_qid_init(&io->sctx.qid, 1, 42);
}

static void io_teardown(void)
{
	if (io->s)
		smtp_server_free(io->s);
	free(io);
	teardown();
}

TestSuite(interop, .init = io_setup, .fini = io_teardown);

/* Moves octets both ways until both sides are quiet. */
static void pump(void)
{
	for (int round = 0; round < 100000; round++) {
		bool moved = false;
		const uint8_t *p;
		size_t n = smtp_client_output(c->c, &p);
		if (n) {
			size_t used = smtp_server_input(io->s, p, n, c->now);
			smtp_client_output_done(c->c, used, c->now);
			moved = used > 0;
		}
		n = smtp_server_output(io->s, &p);
		if (n) {
			smtp_client_input(c->c, p, n, c->now);
			smtp_server_output_done(io->s, n);
			moved = true;
		}
		if (!moved)
			return;
	}
	cr_assert_fail("the two engines never went quiet");
}

static void io_connect(void)
{
	struct smtp_peer peer = { .family = 4, .addr = { 203, 0, 113, 9 }, .port = 40001 };
	io->s = smtp_server_new(&io->scfg, &io->sctx, &peer, 0, c->now);
	cr_assert_not_null(io->s);
	c->c = smtp_client_new(&c->cfg, &c->ctx, 0, c->now);
	cr_assert_not_null(c->c);
	pump();
	cr_assert_eq(events(), SMTP_CLIENT_EV_READY, "client %s, server %s",
		     smtp_client_state_names[state()], smtp_state_names[smtp_server_state(io->s)]);
}

/* Sends the message in C->msg with CONTENT fed in pieces of PIECE octets. */
static void io_send(const uint8_t *content, size_t n, size_t piece)
{
	memset(c->res, 0, sizeof(c->res));
	c->nres = c->tx_dones = 0;
	cr_assert_eq(smtp_client_tx_begin(c->c, &c->msg, c->now), 0);
	pump();
	if (events() != SMTP_CLIENT_EV_CONTENT)
		return; /* decided before the content */
	size_t off = 0;
	while (off < n) {
		size_t k = n - off < piece ? n - off : piece;
		size_t u = smtp_client_data(c->c, content + off, k, c->now);
		off += u;
		pump();
		cr_assert(u || events() == SMTP_CLIENT_EV_CONTENT || c->tx_dones,
			  "content stuck at %zu", off);
		if (c->tx_dones)
			return;
	}
	int r;
	while ((r = smtp_client_data_end(c->c, c->now)) == -EAGAIN)
		pump();
	cr_assert_eq(r, 0);
	pump();
}

/* The content the server's sink got, without the Received: field it put first. */
static void expect_received_content(const uint8_t *want, size_t n)
{
	const uint8_t *d = io->sink.data, *end = d + io->sink.len;
	const uint8_t *eol = memmem(d, io->sink.len, "\r\n", 2);
	cr_assert_not_null(eol);
	while (eol + 2 < end && (eol[2] == '\t' || eol[2] == ' '))
		eol = memmem(eol + 2, (size_t)(end - eol - 2), "\r\n", 2);
	const uint8_t *body = eol + 2;
	size_t bl = (size_t)(end - body);
	cr_assert_eq(bl, n, "the server got %zu octets of content, %zu were sent", bl, n);
	cr_assert(memcmp(body, want, n) == 0, "the content changed on the way");
}

/* Text with dots at line starts, lone dots, ".." and 8-bit octets; CRLF lines. */
static size_t tricky_content(uint8_t *out, size_t cap)
{
	static const char *const lines[] = { ".", "..",	 ".hidden", "a.b", "caf\xc3\xa9 .",
					     "",  "...", "x",	    ". .", "end" };
	size_t n = 0;
	for (unsigned i = 0; n + 40 < cap; i++) {
		const char *l = lines[i % 10];
		n += (size_t)snprintf((char *)out + n, cap - n, "%s%u\r\n", l, i % 3 ? i : 0);
		if (i % 10 == 5)
			n += (size_t)snprintf((char *)out + n, cap - n, "\r\n");
	}
	return n;
}

Test(interop, pipelined_data_reaches_the_server_unchanged)
{
	static uint8_t body[120000];
	size_t n = tricky_content(body, sizeof(body));
	io_connect();
	msg("sender@example.org");
	rcpt("a@example.com");
	rcpt("b@denied.example");
	rcpt("c@example.com");
	c->msg.eightbit = true;
	c->msg.size = n;
	io_send(body, n - 2, 4096); /* without its final CRLF: the client completes the line */
	expect_result(1, SMTP_CO_FAILED, 554, "5.7.1", "Error: relay access denied");
	cr_assert_eq(c->res[0].outcome, SMTP_CO_DELIVERED);
	cr_assert_eq(c->res[2].outcome, SMTP_CO_DELIVERED);
	cr_assert_eq(c->res[0].code, 250);
	cr_assert(strncmp(c->res[0].text, "Ok: queued as ", 14) == 0);
	expect_tx_done(2, 0, 1);
	expect_received_content(body, n);
	cr_assert_eq(io->sink.tx.body, SMTP_BODY_8BITMIME);
	cr_assert_eq(io->sink.tx.size, n);
	cr_assert_eq(io->sink.nrcpt, 2);
	cr_assert_str_eq(io->sink.rcpt[1], "c@example.com");
}

Test(interop, bdat_chunks_reach_the_server_unchanged)
{
	static uint8_t body[300000];
	size_t n = tricky_content(body, sizeof(body));
	c->cfg.chunking = true;
	io_connect();
	simple_msg();
	c->msg.eightbit = true;
	io_send(body, n, 1000);
	expect_result(0, SMTP_CO_DELIVERED, 250, "2.0.0", NULL);
	expect_received_content(body, n);
	cr_assert(io->sink.tx.bdat);
	cr_assert_eq(io->sink.msgs, 1);
}

Test(interop, without_pipelining_two_messages_then_quit)
{
	static uint8_t body[5000];
	size_t n = tricky_content(body, sizeof(body));
	io->scfg.features &= ~SMTP_F_PIPELINING;
	io_connect();
	cr_assert_eq(smtp_client_ext(c->c) & SMTP_EXT_PIPELINING, 0);
	for (int i = 0; i < 2; i++) {
		simple_msg();
		rcpt("x@denied.example");
		c->msg.eightbit = true;
		io_send(body, n, 333);
		expect_result(0, SMTP_CO_DELIVERED, 250, "2.0.0", NULL);
		expect_result(1, SMTP_CO_FAILED, 554, "5.7.1", NULL);
		expect_received_content(body, n);
	}
	cr_assert_eq(io->sink.msgs, 2);
	cr_assert_eq(smtp_client_quit(c->c, c->now), 0);
	pump();
	cr_assert_eq(events(), SMTP_CLIENT_EV_CLOSE);
	cr_assert(smtp_server_events(io->s) & SMTP_EV_CLOSE);
	cr_assert_null(smtp_client_error(c->c));
}

Test(interop, smtputf8_and_dsn_parameters_arrive_as_sent)
{
	static uint8_t body[] = "Subject: caf\xc3\xa9\r\n\r\nhi\r\n";
	io_connect();
	msg("s\xc3\xa9nder@example.org");
	struct smtp_client_rcpt *r = rcpt("user@example.com");
	r->notify = SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_DELAY;
	r->orcpt = str("Orig+Rcpt=1@example.com");
	c->msg.envid = str("id 42+x");
	c->msg.ret = SMTP_RET_HDRS;
	c->msg.smtputf8 = true;
	c->msg.eightbit = true;
	io_send(body, sizeof(body) - 1, 7);
	expect_result(0, SMTP_CO_DELIVERED, 250, "2.0.0", NULL);
	cr_assert_str_eq(io->sink.sender, "s\xc3\xa9nder@example.org");
	cr_assert(io->sink.tx.smtputf8);
	cr_assert_eq(io->sink.tx.ret, SMTP_RET_HDRS);
	cr_assert_str_eq(io->sink.envid, "id+2042+2Bx");
	cr_assert_str_eq(io->sink.orcpt[0], "rfc822;Orig+2BRcpt+3D1@example.com");
	cr_assert_eq(io->sink.notify[0], SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_DELAY);
	uint8_t d[64];
	ssize_t dl = smtp_xtext_decode((const uint8_t *)io->sink.envid, strlen(io->sink.envid), d,
				       sizeof(d));
	cr_assert_eq(dl, 7);
	cr_assert(memcmp(d, "id 42+x", 7) == 0);
	expect_received_content(body, sizeof(body) - 1);
}

Test(interop, the_server_size_limit_is_honoured_both_ways)
{
	static uint8_t body[3000];
	for (size_t i = 0; i < sizeof(body); i++)
		body[i] = i % 60 == 58 ? '\r' : i % 60 == 59 ? '\n' : 'a';
	io->scfg.max_message_size = 2000;
	io_connect();
	cr_assert_eq(smtp_client_size_limit(c->c), 2000);
	simple_msg();
	c->msg.size = sizeof(body);
	io_send(body, sizeof(body), 512);
	expect_local(0, SMTP_CO_FAILED, SMTP_CR_SIZE, "5.3.4");
	cr_assert_eq(io->sink.msgs, 0);
	/* size not declared: the server finds out at the end */
	simple_msg();
	io_send(body, sizeof(body), 512);
	expect_result(0, SMTP_CO_FAILED, 552, "5.3.4", "Message size exceeds fixed limit");
	cr_assert_eq(c->res[0].stage, SMTP_CS_DOT);
	cr_assert_eq(events(), SMTP_CLIENT_EV_READY);
}

/* ---- MAIL AUTH= (RFC 4954 §5) ---- */

TestSuite(auth_param, .init = setup, .fini = teardown);

#define EHLO_AUTH "250-mx.example.com\r\n250-8BITMIME\r\n250 AUTH PLAIN LOGIN\r\n"

Test(auth_param, the_submitter_goes_as_xtext_to_a_server_offering_auth)
{
	start(0);
	hello(EHLO_AUTH);
	cr_assert(smtp_client_ext(c->c) & SMTP_EXT_AUTH);
	msg("alice@example.org");
	rcpt("user@example.com");
	c->msg.auth = str("al+ce@mx.example.com");
	cr_assert_eq(begin(), 0);
	expect_sent("MAIL FROM:<alice@example.org> AUTH=al+2Bce@mx.example.com\r\n");
}

Test(auth_param, an_unknown_submitter_sends_no_auth_even_to_a_server_offering_it)
{
	/* RFC 4954 §5: AUTH=<> is owed to a server we authenticated to; we never do */
	start(0);
	hello(EHLO_AUTH);
	msg("");
	rcpt("user@example.com");
	cr_assert_eq(begin(), 0);
	expect_sent("MAIL FROM:<>\r\n");
}

Test(auth_param, nothing_is_sent_to_a_server_not_offering_auth)
{
	start(0);
	hello(EHLO_ALL);
	cr_assert_not(smtp_client_ext(c->c) & SMTP_EXT_AUTH);
	msg("alice@example.org");
	rcpt("user@example.com");
	c->msg.auth = str("alice@mx.example.com");
	c->msg.size = 10;
	cr_assert_eq(begin(), 0);
	expect_sent("MAIL FROM:<alice@example.org> SIZE=10\r\nRCPT TO:<user@example.com>\r\n"
		    "DATA\r\n");
}

Test(auth_param, the_old_auth_equals_keyword_is_not_the_auth_extension)
{
	/* "AUTH=LOGIN" is a pre-RFC 2554 spelling some servers add beside "AUTH LOGIN";
	 * alone it does not say the server takes MAIL AUTH= */
	start(0);
	hello("250-mx.example.com\r\n250 AUTH=LOGIN\r\n");
	cr_assert_not(smtp_client_ext(c->c) & SMTP_EXT_AUTH);
	msg("alice@example.org");
	rcpt("user@example.com");
	c->msg.auth = str("alice@mx.example.com");
	cr_assert_eq(begin(), 0);
	expect_sent("MAIL FROM:<alice@example.org>\r\n");
}

Test(auth_param, an_ehlo_after_helo_fallback_offers_nothing)
{
	start(0);
	server("220 mx.example.com ESMTP\r\n");
	expect_sent("EHLO " HELO_NAME "\r\n");
	server("502 5.5.2 no EHLO here\r\n");
	expect_sent("HELO " HELO_NAME "\r\n");
	server("250 mx.example.com\r\n");
	msg("alice@example.org");
	rcpt("user@example.com");
	c->msg.auth = str("alice@mx.example.com");
	cr_assert_eq(begin(), 0);
	expect_sent("MAIL FROM:<alice@example.org>\r\n");
}
