/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * AUTH PLAIN and LOGIN (dataplane/smtp/auth.c): strict base64, the RFC 4616
 * message with its authzid and NULs, the LOGIN exchange -- and the whole
 * exchange in the server engine, answered at once or later (pending), with
 * the RFC 4954 replies for every bad input.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "conv.h"
#include "dataplane/smtp/auth.h"
#include "guard.h"

/* ---- base64 ---- */

static ptrdiff_t dec(struct guard *g, const char *in, uint8_t *out, size_t cap)
{
	size_t n = strlen(in);
	const uint8_t *p = n ? guard_place(g, in, n) : (const uint8_t *)"";
	return smtp_base64_decode(p, n, out, cap);
}

Test(base64, canonical_input_decodes_at_the_end_of_a_page)
{
	struct guard g = { 0 };
	uint8_t out[64];
	cr_assert_eq(dec(&g, "dGVzdAB0ZXN0AHRlc3Q=", out, sizeof(out)), 14);
	cr_assert_eq(memcmp(out, "test\0test\0test", 14), 0);
	cr_assert_eq(dec(&g, "YQ==", out, sizeof(out)), 1);
	cr_assert_eq(out[0], 'a');
	cr_assert_eq(dec(&g, "YWI=", out, sizeof(out)), 2);
	cr_assert_eq(dec(&g, "YWJj", out, sizeof(out)), 3);
	cr_assert_eq(dec(&g, "", out, sizeof(out)), 0);
	guard_release(&g);
}

Test(base64, anything_not_canonical_is_refused)
{
	struct guard g = { 0 };
	uint8_t out[64];
	static const char *const bad[] = {
		"YQ",	     /* no padding */
		"YQ=",	     /* short padding */
		"Y===",	     /* three pads */
		"YQ==YQ==",  /* padding in the middle */
		"Y=Q=",	     /* a letter after a pad */
		"YR==",	     /* non-zero pad bits (RFC 4648 §3.5) */
		"YWJ=",	     /* same with one pad */
		"YW J",	     /* a space */
		"YW-j",	     /* the URL alphabet */
		"YW_j",	     /* the URL alphabet */
		"YWJj\x80\x80\x80\x80", /* 8-bit */
		"====",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(dec(&g, bad[i], out, sizeof(out)), -1, "%s", bad[i]);
	/* a NUL inside */
	static const uint8_t nul[] = { 'Y', 0, 'J', 'j' };
	cr_assert_eq(smtp_base64_decode(guard_place(&g, nul, 4), 4, out, sizeof(out)), -1);
	/* does not fit */
	cr_assert_eq(dec(&g, "YWJj", out, 2), -1);
	guard_release(&g);
}

Test(base64, encode_and_decode_agree)
{
	uint8_t in[256], back[256];
	char enc[400];
	for (unsigned i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 37 + 11);
	for (size_t n = 0; n <= sizeof(in); n += 7) {
		ptrdiff_t e = smtp_base64_encode(in, n, enc, sizeof(enc));
		cr_assert_eq((size_t)e, (n + 2) / 3 * 4);
		cr_assert_eq(smtp_base64_decode((const uint8_t *)enc, (size_t)e, back, sizeof(back)),
			     (ptrdiff_t)n);
		cr_assert_eq(memcmp(in, back, n), 0);
	}
	cr_assert_eq(smtp_base64_encode(in, 3, enc, 4), -1); /* no room for the NUL */
}

/* ---- the SASL state machine ---- */

static struct smtp_auth a;
static struct smtp_str ch;

static struct smtp_str str(const char *s)
{
	return (struct smtp_str){ (const uint8_t *)s, strlen(s) };
}

static int start(const char *mech, const char *initial)
{
	struct smtp_str m = str(mech), i = str(initial ? initial : "");
	ch = (struct smtp_str){ 0 };
	return smtp_auth_start(&a, &m, &i, &ch);
}

static int step(const char *line)
{
	struct smtp_str l = str(line);
	return smtp_auth_step(&a, &l, &ch);
}

/* base64 of N octets at P */
static const char *b64(const void *p, size_t n)
{
	static char out[1024];
	cr_assert_geq(smtp_base64_encode(p, n, out, sizeof(out)), 0);
	return out;
}

Test(plain, initial_response_without_authzid)
{
	cr_assert_eq(start("PLAIN", b64("\0alice\0s3cret", 13)), SMTP_R_NONE);
	cr_assert_str_eq(a.authcid, "alice");
	cr_assert_str_eq(a.passwd, "s3cret");
	cr_assert_eq(a.authzid_len, 0);
	cr_assert_eq(a.passwd_len, 6);
}

Test(plain, mechanism_names_ignore_case)
{
	cr_assert_eq(start("plain", b64("\0alice\0pw", 9)), SMTP_R_NONE);
	cr_assert_eq(start("LoGiN", NULL), SMTP_R_AUTH_CHALLENGE);
}

Test(plain, authzid_equal_to_authcid_is_taken)
{
	cr_assert_eq(start("PLAIN", b64("alice\0alice\0pw", 14)), SMTP_R_NONE);
	cr_assert_str_eq(a.authzid, "alice");
	cr_assert_str_eq(a.authcid, "alice");
}

Test(plain, authzid_of_someone_else_is_refused)
{
	cr_assert_eq(start("PLAIN", b64("root\0alice\0pw", 13)), SMTP_R_AUTH_FAILED);
	cr_assert_eq(a.passwd[0], 0, "the password is wiped");
	cr_assert_eq(a.mech, SMTP_AUTH_MECH_NONE);
}

Test(plain, empty_challenge_then_the_response)
{
	cr_assert_eq(start("PLAIN", NULL), SMTP_R_AUTH_CHALLENGE);
	cr_assert_eq(ch.len, 0, "RFC 4616: the server's challenge is empty");
	cr_assert_eq(step(b64("\0bob\0pa ss", 10)), SMTP_R_NONE);
	cr_assert_str_eq(a.authcid, "bob");
	cr_assert_str_eq(a.passwd, "pa ss");
}

Test(plain, embedded_nuls_beyond_the_two_separators_are_refused)
{
	cr_assert_eq(start("PLAIN", b64("\0alice\0pass\0word", 17)), SMTP_R_AUTH_FAILED);
	cr_assert_eq(start("PLAIN", b64("\0\0alice\0pw", 11)), SMTP_R_AUTH_FAILED);
}

Test(plain, missing_fields_are_refused)
{
	cr_assert_eq(start("PLAIN", b64("alice", 5)), SMTP_R_AUTH_FAILED);	/* no NUL */
	cr_assert_eq(start("PLAIN", b64("\0alice", 6)), SMTP_R_AUTH_FAILED);	/* one NUL */
	cr_assert_eq(start("PLAIN", b64("\0\0pw", 4)), SMTP_R_AUTH_FAILED);	/* no authcid */
	cr_assert_eq(start("PLAIN", b64("\0alice\0", 7)), SMTP_R_AUTH_FAILED); /* no password */
}

Test(plain, equals_sign_is_an_empty_initial_response)
{
	/* "=" (RFC 4954 §4) is a zero-length response: no PLAIN message in it */
	cr_assert_eq(start("PLAIN", "="), SMTP_R_AUTH_FAILED);
}

Test(plain, bad_base64_is_501_5_5_2)
{
	cr_assert_eq(start("PLAIN", "AGFsaWNlAHB3"), SMTP_R_NONE);
	cr_assert_eq(start("PLAIN", "AGFsaWNlAHB"), SMTP_R_AUTH_BAD_BASE64);
	cr_assert_eq(start("PLAIN", NULL), SMTP_R_AUTH_CHALLENGE);
	cr_assert_eq(step("not base64!"), SMTP_R_AUTH_BAD_BASE64);
	cr_assert_eq(smtp_reply_code(SMTP_R_AUTH_BAD_BASE64), 501);
	cr_assert_str_eq(smtp_replies[SMTP_R_AUTH_BAD_BASE64].esc, "5.5.2");
}

Test(plain, fields_over_255_octets_are_refused)
{
	char m[600];
	m[0] = 0;
	memset(m + 1, 'u', 256);
	m[257] = 0;
	memcpy(m + 258, "pw", 2);
	cr_assert_eq(start("PLAIN", b64(m, 260)), SMTP_R_AUTH_FAILED);
	memset(m + 1, 'u', 255);
	m[256] = 0;
	memcpy(m + 257, "pw", 2);
	cr_assert_eq(start("PLAIN", b64(m, 259)), SMTP_R_NONE);
	cr_assert_eq(a.authcid_len, 255);
}

Test(plain, unknown_mechanisms_are_504)
{
	cr_assert_eq(start("CRAM-MD5", NULL), SMTP_R_AUTH_MECH);
	cr_assert_eq(start("PLAINX", NULL), SMTP_R_AUTH_MECH);
	cr_assert_eq(smtp_reply_code(SMTP_R_AUTH_MECH), 504);
}

Test(login, username_then_password_challenges)
{
	cr_assert_eq(start("LOGIN", NULL), SMTP_R_AUTH_CHALLENGE);
	cr_assert_eq(ch.len, 12);
	cr_assert_eq(memcmp(ch.p, "VXNlcm5hbWU6", 12), 0); /* "Username:" */
	cr_assert_eq(step(b64("carol", 5)), SMTP_R_AUTH_CHALLENGE);
	cr_assert_eq(memcmp(ch.p, "UGFzc3dvcmQ6", 12), 0); /* "Password:" */
	cr_assert_eq(step(b64("hunter2", 7)), SMTP_R_NONE);
	cr_assert_str_eq(a.authcid, "carol");
	cr_assert_str_eq(a.passwd, "hunter2");
}

Test(login, initial_response_is_the_user_name)
{
	cr_assert_eq(start("LOGIN", b64("carol", 5)), SMTP_R_AUTH_CHALLENGE);
	cr_assert_eq(memcmp(ch.p, "UGFzc3dvcmQ6", 12), 0);
	cr_assert_eq(step(b64("pw", 2)), SMTP_R_NONE);
	cr_assert_str_eq(a.authcid, "carol");
}

Test(login, nul_inside_a_field_or_an_empty_field_is_refused)
{
	cr_assert_eq(start("LOGIN", NULL), SMTP_R_AUTH_CHALLENGE);
	cr_assert_eq(step(b64("car\0ol", 6)), SMTP_R_AUTH_FAILED);
	cr_assert_eq(start("LOGIN", NULL), SMTP_R_AUTH_CHALLENGE);
	cr_assert_eq(step(""), SMTP_R_AUTH_FAILED); /* empty user name */
	cr_assert_eq(start("LOGIN", b64("carol", 5)), SMTP_R_AUTH_CHALLENGE);
	cr_assert_eq(step(b64("p\0w", 3)), SMTP_R_AUTH_FAILED);
	cr_assert_eq(a.passwd_len, 0);
}

Test(login, a_step_without_an_exchange_fails)
{
	smtp_auth_clear(&a);
	cr_assert_eq(step(b64("x", 1)), SMTP_R_AUTH_FAILED);
}

/* ---- in the engine ---- */

static struct conv *c;
static struct smtp_auth sa;
static bool pending;		 /* the hook answers later */
static struct smtp_auth waiting; /* what a pending answer will be about */
static unsigned cancels;

static void setup(void)
{
	c = calloc(1, sizeof(*c));
	conv_init(c);
	pending = false;
	cancels = 0;
	smtp_auth_clear(&sa);
}

static void teardown(void)
{
	if (c->s)
		conv_end(c);
	free(c);
}

TestSuite(engine, .init = setup, .fini = teardown);

static int verify(const struct smtp_auth *x)
{
	return strcmp(x->authcid, "alice") == 0 && strcmp(x->passwd, "s3cret") == 0 ?
		       SMTP_R_AUTH_OK :
		       SMTP_R_AUTH_FAILED;
}

/* The glue's way: smtp_auth_* does the exchange, a table stands for the password file. */
static int hook(void *arg, struct smtp_session *s, const struct smtp_cmd *cmd,
		const struct smtp_str *line, struct smtp_str *challenge)
{
	int r;
	(void)arg;
	(void)s;
	if (!cmd && !line) {
		cancels++;
		smtp_auth_clear(&sa);
		return SMTP_R_NONE;
	}
	r = cmd ? smtp_auth_start(&sa, &cmd->mech, &cmd->initial, challenge) :
		  smtp_auth_step(&sa, line, challenge);
	if (r != SMTP_R_NONE)
		return r;
	if (pending) {
		waiting = sa;
		smtp_auth_clear(&sa);
		return SMTP_HOOK_PENDING;
	}
	r = verify(&sa);
	smtp_auth_clear(&sa);
	return r;
}

static void start_tls_session(void)
{
	c->hooks.auth = hook;
	c->hooks.auth_mechs = SMTP_AUTH_MECHS;
	conv_start(c, SMTP_SESSION_TLS);
	conv_skip_reply(c, "220");
}

static uint64_t counter(enum smtp_counter k)
{
	return c->ctx.stats.c[k];
}

static void send_b64(const void *p, size_t n)
{
	char line[1100];
	snprintf(line, sizeof(line), "%s\r\n", b64(p, n));
	conv_send(c, line);
}

Test(engine, plain_with_initial_response_and_mechanisms_in_ehlo)
{
	char line[200];
	start_tls_session();
	conv_send(c, "EHLO client.example.com\r\n");
	cr_assert_not_null(
		memmem(c->in + c->in_off, c->in_len - c->in_off, "250-AUTH PLAIN LOGIN\r\n", 22));
	conv_skip_reply(c, "250");
	snprintf(line, sizeof(line), "AUTH PLAIN %s\r\n", b64("\0alice\0s3cret", 13));
	conv_send(c, line);
	conv_expect(c, "235 2.7.0 Authentication successful");
	cr_assert(smtp_server_authenticated(c->s));
	cr_assert_str_eq(smtp_server_protocol(c->s), "ESMTPSA"); /* RFC 3848 */
}

Test(engine, login_exchange_and_a_wrong_password)
{
	start_tls_session();
	conv_ehlo(c);
	conv_send(c, "AUTH LOGIN\r\n");
	conv_expect(c, "334 VXNlcm5hbWU6");
	send_b64("alice", 5);
	conv_expect(c, "334 UGFzc3dvcmQ6");
	send_b64("wrong", 5);
	conv_expect(c, "535 5.7.8 Error: authentication failed");
	cr_assert_not(smtp_server_authenticated(c->s));
	conv_send(c, "AUTH LOGIN\r\n");
	conv_expect(c, "334 VXNlcm5hbWU6");
	send_b64("alice", 5);
	conv_expect(c, "334 UGFzc3dvcmQ6");
	send_b64("s3cret", 6);
	conv_expect(c, "235 2.7.0 Authentication successful");
	cr_assert_eq(counter(SMTP_C_AUTH_SUCCESS), 1);
	cr_assert_eq(counter(SMTP_C_AUTH_FAILURE), 1);
}

Test(engine, star_cancels_with_501)
{
	start_tls_session();
	conv_ehlo(c);
	conv_send(c, "AUTH LOGIN\r\n");
	conv_expect(c, "334 VXNlcm5hbWU6");
	conv_send(c, "*\r\n");
	conv_expect(c, "501 5.0.0 Authentication aborted");
	cr_assert_eq(cancels, 1, "the hook hears the exchange is over");
	cr_assert_eq(counter(SMTP_C_AUTH_CANCELLED), 1);
	conv_send(c, "NOOP\r\n");
	conv_expect(c, "250 2.0.0 Ok");
}

Test(engine, undecodable_responses_are_501_5_5_2)
{
	start_tls_session();
	conv_ehlo(c);
	conv_send(c, "AUTH PLAIN\r\n");
	conv_expect(c, "334 ");
	conv_send(c, "AGFsaWNl*\r\n");
	conv_expect(c, "501 5.5.2 Error: cannot decode the response (base64)");
	/* in the AUTH line itself: a character the base64 alphabet lacks */
	conv_send(c, "AUTH PLAIN AGFsaWNl!AHB3\r\n");
	conv_expect(c, "501 5.5.2 Error: cannot decode the response (base64)");
	/* 8-bit and NUL octets inside the exchange are bad base64, not bad commands */
	conv_send(c, "AUTH LOGIN\r\n");
	conv_expect(c, "334 VXNlcm5hbWU6");
	conv_send_n(c, "YW\0x\r\n", 6);
	conv_expect(c, "501 5.5.2 Error: cannot decode the response (base64)");
	conv_send(c, "AUTH LOGIN\r\n");
	conv_expect(c, "334 VXNlcm5hbWU6");
	conv_send(c, "YWxp\xc3\xa9\r\n");
	conv_expect(c, "501 5.5.2 Error: cannot decode the response (base64)");
	cr_assert_geq(counter(SMTP_C_AUTH_BAD_BASE64), 3);
}

Test(engine, empty_line_is_an_empty_response)
{
	start_tls_session();
	conv_ehlo(c);
	conv_send(c, "AUTH PLAIN\r\n");
	conv_expect(c, "334 ");
	conv_send(c, "\r\n");
	conv_expect(c, "535 5.7.8 Error: authentication failed");
}

Test(engine, bare_lf_inside_the_exchange_is_refused)
{
	start_tls_session();
	conv_ehlo(c);
	conv_send(c, "AUTH PLAIN\r\n");
	conv_expect(c, "334 ");
	conv_send(c, "AGFsaWNl\nAHB3\r\n");
	conv_expect(c, "500 5.5.2 Error: bare <LF> received");
	cr_assert_eq(cancels, 1);
	cr_assert_eq(smtp_server_state(c->s), SMTP_ST_HELO);
}

Test(engine, long_responses_up_to_12288_octets_are_read)
{
	/* RFC 4954 §4: 12288 octets of base64, well past the 512 of a command */
	static char line[SMTP_AUTH_LINE_MAX + 100];
	start_tls_session();
	conv_ehlo(c);
	conv_send(c, "AUTH PLAIN\r\n");
	conv_expect(c, "334 ");
	memset(line, 'A', 12288);
	memcpy(line + 12288, "\r\n", 3);
	conv_send(c, line);
	/* it decodes (all zero octets): a malformed PLAIN message, not a too-long line */
	conv_expect(c, "535 5.7.8 Error: authentication failed");
	/* the AUTH command line itself may carry that much too */
	memcpy(line, "AUTH PLAIN ", 11);
	memset(line + 11, 'A', 12276);
	memcpy(line + 11 + 12276, "\r\n", 3);
	conv_send(c, line);
	conv_expect(c, "535 5.7.8 Error: authentication failed");
}

Test(engine, over_long_auth_lines_are_500_5_5_6)
{
	static char line[20000];
	start_tls_session();
	conv_ehlo(c);
	conv_send(c, "AUTH PLAIN\r\n");
	conv_expect(c, "334 ");
	memset(line, 'A', 16000);
	memcpy(line + 16000, "\r\n", 3);
	conv_send(c, line);
	conv_expect(c, "500 5.5.6 Error: authentication exchange line is too long");
	cr_assert_eq(cancels, 1);
	cr_assert_eq(counter(SMTP_C_AUTH_LINE_TOO_LONG), 1);
	conv_send(c, "NOOP\r\n");
	conv_expect(c, "250 2.0.0 Ok");
	memcpy(line, "auth plain ", 11);
	conv_send(c, line);
	conv_expect(c, "500 5.5.6 Error: authentication exchange line is too long");
	/* other commands keep the 512-octet limit */
	memcpy(line, "NOOP ", 5);
	memset(line + 5, 'x', 600);
	memcpy(line + 605, "\r\n", 3);
	conv_send(c, line);
	conv_expect(c, "500 5.5.2 Error: line too long");
	cr_assert_eq(counter(SMTP_C_AUTH_LINE_TOO_LONG), 2);
}

Test(engine, auth_before_ehlo_is_503)
{
	start_tls_session();
	conv_send(c, "AUTH PLAIN\r\n");
	conv_expect(c, "503 5.5.1 Error: send EHLO first");
	conv_send(c, "HELO client.example.com\r\n");
	conv_skip_reply(c, "250");
	conv_send(c, "AUTH PLAIN\r\n");
	conv_expect(c, "503 5.5.1 Error: send EHLO first");
}

Test(engine, auth_twice_is_503)
{
	char line[200];
	start_tls_session();
	conv_ehlo(c);
	snprintf(line, sizeof(line), "AUTH PLAIN %s\r\n", b64("\0alice\0s3cret", 13));
	conv_send(c, line);
	conv_expect(c, "235 2.7.0 Authentication successful");
	conv_send(c, line);
	conv_expect(c, "503 5.5.1 Error: already authenticated");
}

Test(engine, auth_inside_a_transaction_is_503)
{
	start_tls_session();
	conv_ehlo(c);
	conv_send(c, "MAIL FROM:<a@example.org>\r\n");
	conv_expect(c, "250 2.1.0 Ok");
	conv_send(c, "AUTH PLAIN\r\n");
	conv_expect(c, "503 5.5.1 Error: MAIL transaction in progress");
}

Test(engine, auth_in_the_clear_is_538)
{
	c->hooks.auth = hook;
	c->hooks.auth_mechs = SMTP_AUTH_MECHS;
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_send(c, "EHLO client.example.com\r\n");
	cr_assert_null(memmem(c->in + c->in_off, c->in_len - c->in_off, "AUTH", 4));
	conv_skip_reply(c, "250");
	conv_send(c, "AUTH PLAIN\r\n");
	conv_expect(c, "538 5.7.11 Encryption required for requested authentication mechanism");
	cr_assert_eq(counter(SMTP_C_AUTH_NEEDS_TLS), 1);
}

Test(engine, auth_in_the_clear_where_the_listener_allows_it)
{
	c->hooks.auth = hook;
	c->hooks.auth_mechs = SMTP_AUTH_MECHS;
	c->cfg.auth_requires_tls = false;
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	conv_send(c, "AUTH LOGIN\r\n");
	conv_expect(c, "334 VXNlcm5hbWU6");
	conv_send(c, "*\r\n");
	conv_expect(c, "501 5.0.0 Authentication aborted");
	cr_assert_str_eq(smtp_server_protocol(c->s), "ESMTP");
}

Test(engine, unknown_mechanism_is_504)
{
	start_tls_session();
	conv_ehlo(c);
	conv_send(c, "AUTH CRAM-MD5\r\n");
	conv_expect(c, "504 5.5.4 Unrecognized authentication type");
}

Test(engine, a_pending_answer_holds_input_until_it_comes)
{
	char line[200];
	start_tls_session();
	conv_ehlo(c);
	pending = true;
	snprintf(line, sizeof(line), "AUTH PLAIN %s\r\nMAIL FROM:<a@example.org>\r\n",
		 b64("\0alice\0s3cret", 13));
	c->cfg.forbid_unauth_pipelining = false;
	conv_send(c, line);
	conv_expect_nothing(c);
	cr_assert_eq(smtp_server_state(c->s), SMTP_ST_PENDING);
	cr_assert_eq(smtp_server_pending_cmd(c->s), SMTP_V_AUTH);
	cr_assert(smtp_server_events(c->s) & SMTP_EV_PENDING);
	/* a MAIL/RCPT decision or a message end does not release it */
	smtp_server_cmd_done(c->s, SMTP_R_NONE, NULL, c->now);
	smtp_server_tx_done(c->s, SMTP_R_QUEUED, c->now);
	cr_assert_eq(smtp_server_state(c->s), SMTP_ST_PENDING);
	smtp_server_auth_done(c->s, verify(&waiting), NULL, c->now);
	conv_flush(c);
	conv_expect(c, "235 2.7.0 Authentication successful");
	conv_resume(c);
	conv_expect(c, "250 2.1.0 Ok");
}

Test(engine, a_pending_421_ends_the_session)
{
	char line[200];
	start_tls_session();
	conv_ehlo(c);
	pending = true;
	snprintf(line, sizeof(line), "AUTH PLAIN %s\r\n", b64("\0alice\0nope", 11));
	conv_send(c, line);
	smtp_server_auth_done(c->s, SMTP_R_AUTH_LOCKED, NULL, c->now);
	conv_flush(c);
	conv_expect(c, "421 4.7.0 mx.example.com Error: too many failed authentications, try again "
		       "later");
	cr_assert(conv_closed(c));
}

Test(engine, a_session_that_ends_while_pending_tells_the_hook)
{
	start_tls_session();
	conv_ehlo(c);
	pending = true;
	conv_send(c, "AUTH LOGIN\r\n");
	conv_expect(c, "334 VXNlcm5hbWU6");
	send_b64("alice", 5);
	conv_expect(c, "334 UGFzc3dvcmQ6");
	send_b64("s3cret", 6);
	cr_assert_eq(smtp_server_state(c->s), SMTP_ST_PENDING);
	conv_advance(c, c->cfg.timeout_ms.command + 1);
	conv_expect(c, "421 4.4.2 mx.example.com Error: timeout exceeded");
	cr_assert_eq(cancels, 1);
	smtp_server_auth_done(c->s, SMTP_R_AUTH_OK, NULL, c->now); /* too late: ignored */
	cr_assert_not(smtp_server_authenticated(c->s));
}

Test(engine, mail_auth_parameter_is_taken_once_authenticated)
{
	char line[200];
	start_tls_session();
	conv_ehlo(c);
	snprintf(line, sizeof(line), "AUTH PLAIN %s\r\n", b64("\0alice\0s3cret", 13));
	conv_send(c, line);
	conv_expect(c, "235 2.7.0 Authentication successful");
	conv_send(c, "MAIL FROM:<alice@example.org> AUTH=alice@example.org\r\n");
	conv_expect(c, "250 2.1.0 Ok");
	cr_assert_eq(smtp_server_tx(c->s)->auth.len, 17);
}

/* ---- MAIL AUTH= (RFC 4954 §5) ---- */

Test(engine, mail_auth_empty_brackets_and_xtext_are_taken_before_authenticating)
{
	/* §5: a client that has not authenticated may send AUTH=; we treat it as <>
	 * (smtp_authp_identity()), but the parameter itself is not an error */
	start_tls_session();
	conv_ehlo(c);
	conv_send(c, "MAIL FROM:<alice@example.org> AUTH=<>\r\n");
	conv_expect(c, "250 2.1.0 Ok");
	cr_assert_eq(smtp_server_tx(c->s)->auth.len, 2);
	cr_assert_not(smtp_server_authenticated(c->s));
	conv_send(c, "RSET\r\n");
	conv_expect(c, "250 2.0.0 Ok");
	conv_send(c, "MAIL FROM:<a+b@example.org> AUTH=a+2Bb@example.org\r\n");
	conv_expect(c, "250 2.1.0 Ok");
	const struct smtp_str *a = &smtp_server_tx(c->s)->auth;
	cr_assert(a->len == 17 && memcmp(a->p, "a+2Bb@example.org", 17) == 0, "kept as sent");
}

Test(engine, mail_auth_with_malformed_xtext_is_501_5_5_4)
{
	/* "=" and CTLs are outside RFC 5321's esmtp-value: the parameter's syntax is bad */
	static const struct {
		const char *param, *reply;
	} bad[] = {
		{ "AUTH=alice+2bx@example.org", "501 5.5.4 Bad AUTH parameter value" }, /* hex case */
		{ "AUTH=alice+2", "501 5.5.4 Bad AUTH parameter value" }, /* "+" short of digits */
		{ "AUTH=a=b@example.org", "501 5.5.4 Bad parameter syntax" }, /* "=" never */
		{ "AUTH=a\x01b@example.org", "501 5.5.4 Bad parameter syntax" }, /* a CTL */
		{ "AUTH", "501 5.5.4 Bad AUTH parameter value" },	  /* no value */
		{ "AUTH=", "501 5.5.4 Bad AUTH parameter value" },	  /* an empty value */
	};
	char line[200];
	start_tls_session();
	conv_ehlo(c);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(line, sizeof(line), "MAIL FROM:<alice@example.org> %s\r\n", bad[i].param);
		conv_send(c, line);
		conv_expect(c, bad[i].reply);
		cr_assert_eq(smtp_server_state(c->s), SMTP_ST_HELO, "%s", bad[i].param);
	}
	conv_send(c, "MAIL FROM:<alice@example.org> AUTH=<> AUTH=<>\r\n");
	conv_expect(c, "501 5.5.4 Duplicate AUTH parameter");
	cr_assert_eq(smtp_server_state(c->s), SMTP_ST_HELO);
}

Test(engine, mail_auth_where_auth_is_not_offered_is_555_like_any_unknown_parameter)
{
	/* AUTH is offered under TLS only: in the clear, AUTH= is not a parameter we know */
	c->hooks.auth = hook;
	c->hooks.auth_mechs = SMTP_AUTH_MECHS;
	c->cfg.auth_requires_tls = true;
	conv_start(c, 0);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	conv_send(c, "MAIL FROM:<alice@example.org> AUTH=<>\r\n");
	conv_expect(c, "555 5.5.4 Unsupported option: AUTH");
	conv_send(c, "MAIL FROM:<alice@example.org> AUTH=alice@example.org\r\n");
	conv_expect(c, "555 5.5.4 Unsupported option: AUTH");
	conv_send(c, "MAIL FROM:<alice@example.org>\r\n");
	conv_expect(c, "250 2.1.0 Ok");
}
