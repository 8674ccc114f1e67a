/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The MAIL AUTH= parameter (dataplane/smtp/authparam.c, RFC 4954 §5): which
 * submitter identity a message keeps, and the parameter sent to a next hop.
 */
#include <string.h>

#include <criterion/criterion.h>

#include "dataplane/smtp/authparam.h"

static struct smtp_str str(const char *s)
{
	return (struct smtp_str){ (const uint8_t *)s, strlen(s) };
}

/* The identity as a string ("" for none). */
static const char *identity(const char *param, const char *user, const char *domain)
{
	static char out[SMTP_AUTHID_MAX + 1];
	size_t n = smtp_authp_identity(str(param), user, domain, out, SMTP_AUTHID_MAX);
	cr_assert_leq(n, SMTP_AUTHID_MAX);
	out[n] = '\0';
	return out;
}

Test(identity, an_unauthenticated_client_vouches_for_nobody_whatever_auth_says)
{
	cr_assert_str_eq(identity("", NULL, "mx.example.com"), "");
	cr_assert_str_eq(identity("alice@example.com", NULL, "mx.example.com"), "");
	cr_assert_str_eq(identity("<>", NULL, "mx.example.com"), "");
}

Test(identity, an_authenticated_client_without_auth_param_is_the_submitter)
{
	cr_assert_str_eq(identity("", "alice", "mx.example.com"), "alice@mx.example.com");
	cr_assert_str_eq(identity("", "bob@example.org", "mx.example.com"), "bob@example.org");
}

Test(identity, auth_empty_brackets_means_submitter_unknown_even_when_authenticated)
{
	cr_assert_str_eq(identity("<>", "alice", "mx.example.com"), "");
}

Test(identity, auth_naming_the_clients_own_mailbox_is_kept)
{
	cr_assert_str_eq(identity("alice@mx.example.com", "alice", "mx.example.com"),
			 "alice@mx.example.com");
	cr_assert_str_eq(identity("Alice@MX.example.com", "alice", "mx.example.com"),
			 "alice@mx.example.com", "case does not matter");
	/* xtext: "+2B" is "+" */
	cr_assert_str_eq(identity("a+2Bb@example.org", "a+b@example.org", "mx"), "a+b@example.org");
}

Test(identity, auth_naming_someone_else_is_a_claim_we_do_not_trust)
{
	cr_assert_str_eq(identity("bob@example.org", "alice", "mx.example.com"), "");
	cr_assert_str_eq(identity("alice", "alice", "mx.example.com"), "", "not a mailbox");
	cr_assert_str_eq(identity("alice@mx.example.com+", "alice", "mx.example.com"), "",
			 "malformed xtext");
}

Test(identity, a_user_name_that_cannot_be_a_mailbox_gives_none)
{
	cr_assert_str_eq(identity("", "al ice", "mx.example.com"), "");
	cr_assert_str_eq(identity("", "al\tice", "mx.example.com"), "");
	cr_assert_str_eq(identity("", "", "mx.example.com"), "");
	cr_assert_str_eq(identity("", "alice", ""), "", "no domain to put it under");
	char longname[SMTP_AUTHID_MAX + 1];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	cr_assert_str_eq(identity("", longname, "mx.example.com"), "", "too long with a domain");
	longname[10] = '@';
	cr_assert_str_eq(identity("", longname, "mx"), longname, "254 octets fit");
	/* UTF-8 is fine: it goes out as xtext */
	cr_assert_str_eq(identity("", "j\xc3\xb6rg", "mx.example.com"),
			 "j\xc3\xb6rg@mx.example.com");
}

static const char *format(struct smtp_str id)
{
	static char out[SMTP_AUTHP_WIRE_MAX + 1];
	ssize_t n = smtp_authp_format(out, SMTP_AUTHP_WIRE_MAX, id);
	cr_assert_geq(n, 0);
	cr_assert_leq(n, SMTP_AUTHP_WIRE_MAX);
	out[n] = '\0';
	return out;
}

Test(format, an_identity_goes_out_as_xtext_and_none_as_nothing)
{
	cr_assert_str_eq(format(str("alice@mx.example.com")), " AUTH=alice@mx.example.com");
	cr_assert_str_eq(format(str("a+b=c@example.org")), " AUTH=a+2Bb+3Dc@example.org");
	cr_assert_str_eq(format(str("j\xc3\xb6rg@example.org")), " AUTH=j+C3+B6rg@example.org");
	cr_assert_str_eq(format((struct smtp_str){ 0 }), "");
}

Test(format, an_identity_whose_xtext_is_over_the_limit_is_not_sent)
{
	char id[SMTP_AUTHID_MAX];
	memset(id, '+', sizeof(id)); /* 3 octets each as xtext: 762 */
	cr_assert_str_eq(format((struct smtp_str){ (const uint8_t *)id, sizeof(id) }), "");
	memset(id, 'a', sizeof(id));
	const char *f = format((struct smtp_str){ (const uint8_t *)id, sizeof(id) });
	cr_assert_eq(strlen(f), 6 + sizeof(id));
}

Test(format, a_short_buffer_is_refused)
{
	char out[8];
	cr_assert_eq(smtp_authp_format(out, 7, (struct smtp_str){ 0 }), -1);
	cr_assert_eq(smtp_authp_format(out, 8, (struct smtp_str){ 0 }), 0); /* nobody: nothing */
	cr_assert_eq(smtp_authp_format(out, 8, str("alice@example.org")), -1);
}
