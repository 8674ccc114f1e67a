/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Long AUTH lines in buffers lent by a worker's pool (smtp_server_config.
 * auth_lines, dataplane/smtp/server.c): a session reserves a command line
 * (RFC 5321 §4.5.3.1.4) instead of the 12288 octets an AUTH line may take
 * (RFC 4954 §4); a line that outgrows it while arriving in pieces borrows
 * a buffer, and gives it back once the line is read. None free: 454 4.7.0
 * (RFC 4954 §6). Input comes in TCP-sized pieces, as on the wire: a line
 * that arrives whole is read where it lies and needs no buffer at all.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "conv.h"
#include "dataplane/smtp/auth.h"

#define MSS 1460

static struct smtp_auth sa;
static unsigned cancels;

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
	r = strcmp(sa.authcid, "alice") == 0 && strcmp(sa.passwd, "s3cret") == 0 ?
		    SMTP_R_AUTH_OK :
		    SMTP_R_AUTH_FAILED;
	smtp_auth_clear(&sa);
	return r;
}

static struct smtp_line_pool *pool_new(unsigned n)
{
	void *mem = aligned_alloc(16, (smtp_line_pool_size(n) + 15) & ~(size_t)15);

	cr_assert_not_null(mem);
	return smtp_line_pool_init(mem, n);
}

static struct conv *session(struct smtp_line_pool *pool)
{
	struct conv *c = calloc(1, sizeof(*c));

	cr_assert_not_null(c);
	conv_init(c);
	c->hooks.auth = hook;
	c->hooks.auth_mechs = SMTP_AUTH_MECHS;
	c->cfg.auth_lines = pool;
	conv_start(c, SMTP_SESSION_TLS);
	conv_skip_reply(c, "220");
	conv_ehlo(c);
	return c;
}

static void done(struct conv *c)
{
	conv_end(c);
	free(c);
}

/*
 * "AUTH PLAIN " and an initial response of B64 base64 octets (a multiple of
 * 4), CRLF: 13 + B64 octets, NUL-terminated. LONG_B64 makes the longest
 * that fits 12288 octets before the CRLF (RFC 4954 §4).
 */
#define LONG_B64  12276
#define LONG_LINE (13 + LONG_B64)
static char *auth_line(size_t b64)
{
	char *l = malloc(13 + b64 + 1);

	cr_assert_not_null(l);
	memcpy(l, "AUTH PLAIN ", 11);
	memset(l + 11, 'A', b64);
	memcpy(l + 11 + b64, "\r\n", 3);
	return l;
}

/* Sends P[0..N) in pieces of MSS octets, as TCP hands them over. */
static void send_pieces(struct conv *c, const char *p, size_t n)
{
	for (size_t off = 0; off < n; off += MSS)
		conv_send_n(c, p + off, n - off < MSS ? n - off : MSS);
}

Test(auth_lines, a_session_reserves_a_command_line_not_an_auth_line)
{
	struct smtp_server_config cfg;
	struct smtp_hooks h = { .auth = hook, .auth_mechs = SMTP_AUTH_MECHS };
	struct smtp_line_pool *pool = pool_new(1);

	smtp_server_config_default(&cfg);
	size_t plain = smtp_server_size(&cfg);
	cfg.hooks = &h;
	size_t own = smtp_server_size(&cfg);
	cfg.auth_lines = pool;
	size_t lent = smtp_server_size(&cfg);

	printf("session memory (max_cmd_line %u): no AUTH %zu octets, AUTH with its own line "
	       "buffer %zu, AUTH with lent buffers %zu; one lent buffer: %zu octets\n",
	       cfg.max_cmd_line, plain, own, lent, smtp_line_pool_size(1));
	cr_assert_eq(lent, plain, "AUTH costs a session nothing more than a command line");
	cr_assert_geq(own - lent, (size_t)SMTP_AUTH_LINE_MAX - cfg.max_cmd_line);
	free(pool);
}

Test(auth_lines, auth_plain_lines_of_12288_octets_in_pieces_are_read)
{
	struct smtp_line_pool *pool = pool_new(1);
	struct conv *c = session(pool);
	char *l = auth_line(LONG_B64);
	static char resp[12288 + 3];

	send_pieces(c, l, LONG_LINE);
	/* all-zero octets decode: a malformed PLAIN message, not a too-long line nor a 454 */
	conv_expect(c, "535 5.7.8 Error: authentication failed");
	cr_assert_eq(smtp_line_pool_available(pool), 1, "the buffer went back");
	/* a response of exactly 12288 octets of base64 inside the exchange */
	conv_send(c, "AUTH PLAIN\r\n");
	conv_expect(c, "334 ");
	memset(resp, 'A', 12288);
	memcpy(resp + 12288, "\r\n", 3);
	send_pieces(c, resp, 12290);
	conv_expect(c, "535 5.7.8 Error: authentication failed");
	cr_assert_eq(smtp_line_pool_available(pool), 1);
	/* and a right one in pieces too */
	conv_send(c, "AUTH PLAIN\r\n");
	conv_expect(c, "334 ");
	conv_send(c, "AGFsaWNl");
	conv_send(c, "AHMzY3JldA==\r\n");
	conv_expect(c, "235 2.7.0 Authentication successful");
	cr_assert_eq(c->ctx.stats.c[SMTP_C_AUTH_NO_LINE_BUFFER], 0);
	free(l);
	done(c);
	free(pool);
}

Test(auth_lines, a_second_long_auth_line_while_the_only_buffer_is_lent_gets_454)
{
	struct smtp_line_pool *pool = pool_new(1);
	struct conv *a = session(pool), *b = session(pool);
	char *l = auth_line(LONG_B64);

	/* A is halfway through its line: it holds the buffer */
	send_pieces(a, l, 6 * MSS);
	cr_assert_eq(smtp_line_pool_available(pool), 0);
	conv_expect_nothing(a);
	/* B's line outgrows its own 512 octets: no buffer left */
	send_pieces(b, l, 2 * MSS);
	conv_expect(b, "454 4.7.0 Temporary authentication failure");
	cr_assert_eq(b->ctx.stats.c[SMTP_C_AUTH_NO_LINE_BUFFER], 1);
	/* the rest of B's line is dropped unread; B goes on */
	send_pieces(b, l + 2 * MSS, LONG_LINE - 2 * MSS);
	conv_expect_nothing(b);
	conv_send(b, "NOOP\r\n");
	conv_expect(b, "250 2.0.0 Ok");
	/* A finishes and gives the buffer back; then B may try again */
	send_pieces(a, l + 6 * MSS, LONG_LINE - 6 * MSS);
	conv_expect(a, "535 5.7.8 Error: authentication failed");
	cr_assert_eq(smtp_line_pool_available(pool), 1);
	send_pieces(b, l, LONG_LINE);
	conv_expect(b, "535 5.7.8 Error: authentication failed");
	cr_assert_eq(smtp_line_pool_available(pool), 1);
	free(l);
	done(a);
	done(b);
	free(pool);
}

Test(auth_lines, inside_the_exchange_a_long_response_without_a_buffer_ends_it_with_454)
{
	struct smtp_line_pool *pool = pool_new(1);
	struct conv *a = session(pool), *b = session(pool);
	char *l = auth_line(LONG_B64);

	send_pieces(a, l, 3 * MSS); /* A holds the buffer */
	conv_send(b, "AUTH LOGIN\r\n");
	conv_expect(b, "334 VXNlcm5hbWU6");
	send_pieces(b, l + 11, 2 * MSS);
	conv_expect(b, "454 4.7.0 Temporary authentication failure");
	cr_assert_eq(cancels, 1, "the hook heard that the exchange is over");
	cr_assert_eq(smtp_server_state(b->s), SMTP_ST_HELO);
	free(l);
	done(a);
	done(b);
	free(pool);
}

Test(auth_lines, a_line_longer_than_12288_is_still_500_5_5_6_and_returns_the_buffer)
{
	struct smtp_line_pool *pool = pool_new(1);
	struct conv *c = session(pool);
	char *l = auth_line(16000);

	send_pieces(c, l, 13 + 16000);
	conv_expect(c, "500 5.5.6 Error: authentication exchange line is too long");
	cr_assert_eq(smtp_line_pool_available(pool), 1);
	conv_send(c, "NOOP\r\n");
	conv_expect(c, "250 2.0.0 Ok");
	/* other commands keep the command line's limit */
	char noop[700];
	memcpy(noop, "NOOP ", 5);
	memset(noop + 5, 'x', 600);
	memcpy(noop + 605, "\r\n", 3);
	send_pieces(c, noop, 607);
	conv_expect(c, "500 5.5.2 Error: line too long");
	free(l);
	done(c);
	free(pool);
}

Test(auth_lines, a_session_that_ends_mid_line_gives_the_buffer_back)
{
	struct smtp_line_pool *pool = pool_new(1);
	struct conv *c = session(pool);
	char *l = auth_line(LONG_B64);

	send_pieces(c, l, 4 * MSS);
	cr_assert_eq(smtp_line_pool_available(pool), 0);
	done(c); /* the client went away */
	cr_assert_eq(smtp_line_pool_available(pool), 1);
	free(l);
	free(pool);
}
