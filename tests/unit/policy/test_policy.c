/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Relay and recipient decisions as a mail operator expects them: our domains
 * from anyone, other domains only from relay networks, submission only from
 * relay networks until AUTH, and unknown local parts of listed domains refused.
 */
#include <arpa/inet.h>
#include <string.h>

#include <criterion/criterion.h>

#include "dataplane/policy/policy.h"

static struct cfg_domain domains[] = {
	{ .name = "example.com" },
	{ .name = "example.net", .wildcard = true },
};
static struct cfg_prefix networks[2];
static char *known[] = { "alice", "bob" };
static struct cfg_recipients rcpts[] = {
	{ .domain = { .name = "example.com" }, .locals = known, .n_locals = 2 },
	{ .domain = { .name = "example.net", .wildcard = true }, .catch_all = true },
};
static struct cfg_policy pol = {
	.relay_domains = domains, .n_relay_domains = 2,
	.relay_networks = networks, .n_relay_networks = 2,
	.recipients = rcpts, .n_recipients = 2,
};

static uint32_t ip(const char *s)
{
	struct in_addr a;

	cr_assert_eq(inet_pton(AF_INET, s, &a), 1);
	return a.s_addr;
}

static void setup(void)
{
	networks[0] = (struct cfg_prefix){ .addr = ip("198.51.100.0"), .len = 24 };
	networks[1] = (struct cfg_prefix){ .addr = ip("203.0.113.7"), .len = 32 };
}

/* The verdict for RCPT TO:<ADDR> from client FROM on a listener in MODE. */
static enum policy_verdict rcpt(enum cfg_listener_mode mode, const char *from, const char *addr)
{
	struct policy_client c = { .addr = ip(from) };
	const char *at = strrchr(addr, '@');

	if (at == NULL)
		return policy_rcpt(&pol, mode, &c, addr, strlen(addr), "", 0);
	return policy_rcpt(&pol, mode, &c, addr, (size_t)(at - addr), at + 1, strlen(at + 1));
}

#define OUTSIDE "203.0.113.200" /* outside both relay networks */

TestSuite(policy, .init = setup);

Test(policy, mail_for_our_domain_is_taken_from_anyone)
{
	cr_assert_eq(rcpt(CFG_MODE_RELAY, OUTSIDE, "alice@example.com"), POLICY_OK);
	cr_assert_eq(rcpt(CFG_MODE_RELAY, OUTSIDE, "Alice@EXAMPLE.com."), POLICY_OK);
}

Test(policy, relaying_elsewhere_from_outside_is_denied)
{
	cr_assert_eq(rcpt(CFG_MODE_RELAY, OUTSIDE, "x@elsewhere.example"), POLICY_RELAY_DENIED);
	cr_assert_eq(rcpt(CFG_MODE_RELAY, OUTSIDE, "x@[198.51.100.2]"), POLICY_RELAY_DENIED);
	cr_assert_eq(rcpt(CFG_MODE_RELAY, OUTSIDE, "x@example.com.evil.example"),
		     POLICY_RELAY_DENIED);
}

Test(policy, relay_networks_may_send_anywhere)
{
	cr_assert_eq(rcpt(CFG_MODE_RELAY, "198.51.100.77", "x@elsewhere.example"), POLICY_OK);
	cr_assert_eq(rcpt(CFG_MODE_RELAY, "203.0.113.7", "x@elsewhere.example"), POLICY_OK);
	cr_assert_eq(rcpt(CFG_MODE_RELAY, "203.0.113.8", "x@elsewhere.example"),
		     POLICY_RELAY_DENIED);
}

Test(policy, wildcard_domain_covers_subdomains_but_not_itself)
{
	cr_assert(policy_relay_domain(&pol, "mx.example.net", 14));
	cr_assert(policy_relay_domain(&pol, "a.b.example.net", 15));
	cr_assert_not(policy_relay_domain(&pol, "example.net", 11));
	cr_assert_not(policy_relay_domain(&pol, "badexample.net", 14));
	cr_assert_eq(rcpt(CFG_MODE_RELAY, OUTSIDE, "anyone@sub.example.net"), POLICY_OK);
}

Test(policy, unknown_local_part_of_a_listed_domain_is_refused)
{
	cr_assert_eq(rcpt(CFG_MODE_RELAY, OUTSIDE, "nobody@example.com"), POLICY_RCPT_UNKNOWN);
	cr_assert_eq(rcpt(CFG_MODE_RELAY, "198.51.100.9", "nobody@example.com"),
		     POLICY_RCPT_UNKNOWN);
	cr_assert_eq(rcpt(CFG_MODE_RELAY, OUTSIDE, "\"bob\"@example.com"), POLICY_OK);
	cr_assert_eq(rcpt(CFG_MODE_RELAY, OUTSIDE, "alic@example.com"), POLICY_RCPT_UNKNOWN);
	cr_assert_eq(rcpt(CFG_MODE_RELAY, OUTSIDE, "alicex@example.com"), POLICY_RCPT_UNKNOWN);
}

Test(policy, postmaster_is_always_taken)
{
	cr_assert_eq(rcpt(CFG_MODE_RELAY, OUTSIDE, "Postmaster"), POLICY_OK);
	cr_assert_eq(rcpt(CFG_MODE_RELAY, OUTSIDE, "postmaster@example.com"), POLICY_OK);
}

Test(policy, submission_takes_only_relay_networks_until_auth)
{
	struct policy_client authed = { .addr = ip(OUTSIDE), .authenticated = true };

	cr_assert_eq(rcpt(CFG_MODE_SUBMISSION, OUTSIDE, "alice@example.com"),
		     POLICY_RELAY_DENIED);
	cr_assert_eq(rcpt(CFG_MODE_SUBMISSION, "198.51.100.9", "x@elsewhere.example"), POLICY_OK);
	cr_assert_eq(policy_rcpt(&pol, CFG_MODE_SUBMISSION, &authed, "x", 1, "elsewhere.example",
				 17),
		     POLICY_OK);
}

Test(policy, empty_policy_relays_nothing_and_checks_no_recipient)
{
	struct cfg_policy none = { 0 };
	struct policy_client c = { .addr = ip("198.51.100.1") };

	cr_assert_eq(policy_rcpt(&none, CFG_MODE_RELAY, &c, "a", 1, "example.com", 11),
		     POLICY_RELAY_DENIED);
	cr_assert_null(policy_recipients_of(&none, "example.com", 11));
}
