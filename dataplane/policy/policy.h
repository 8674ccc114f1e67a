/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Mail policy as pure functions over the loaded configuration: who may relay
 * (RFC 5321 §3.6.2, §7.1), and which recipients of our domains exist. No
 * state, no I/O, no allocation: the SMTP glue calls these from its hooks, and
 * tests call them directly.
 *
 * Lists are scanned in order; they are short in a config file. A large
 * recipient table belongs in a map built for lookups (a later change).
 */
#ifndef MX_POLICY_H
#define MX_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "control/config/config.h"

/* What policy_rcpt() decided; the SMTP glue maps each to a reply. */
enum policy_verdict {
	POLICY_OK = 0,
	POLICY_RELAY_DENIED, /* 554 5.7.1: not our domain, and the client may not relay */
	POLICY_RCPT_UNKNOWN, /* 550 5.1.1: our domain, but no such local part */
};

/* The client as policy sees it. */
struct policy_client {
	uint32_t addr;	    /* IPv4, network order */
	bool authenticated; /* AUTH succeeded (none before the TLS issue) */
};

/* True when ADDR (network order) is inside one of P's relay_networks. */
bool policy_relay_network(const struct cfg_policy *p, uint32_t addr);

/*
 * True when DOMAIN (LEN octets, any case, an optional final dot) is one of
 * P's relay domains: equal to an entry, or under a "*." entry. Address
 * literals ("[198.51.100.7]") are never relay domains.
 */
bool policy_relay_domain(const struct cfg_policy *p, const char *domain, size_t len);

/*
 * The recipients entry for DOMAIN: an exact entry first, else the first
 * wildcard that covers it. NULL when the domain has no recipient list (then
 * every local part is taken).
 */
const struct cfg_recipients *policy_recipients_of(const struct cfg_policy *p, const char *domain,
						  size_t len);

/*
 * True when LOCAL (LOCAL_LEN octets as sent; a quoted string is compared
 * without its quotes and escapes) is listed in R, or R takes any local part.
 * Case is ignored, as most MTAs do for the local parts they own.
 */
bool policy_local_known(const struct cfg_recipients *r, const char *local, size_t local_len);

/*
 * The RCPT decision for a client of a listener in MODE. DOMAIN is empty for
 * <Postmaster> without a domain, which is always taken (RFC 5321 §4.5.1), as
 * is postmaster at any relay domain.
 *   relay:      a relay domain from anyone; any other domain only from a
 *               relay network or an authenticated client.
 *   submission: only relay networks or authenticated clients, whatever the domain.
 * Then, for a domain with a recipient list, the local part must be on it.
 */
enum policy_verdict policy_rcpt(const struct cfg_policy *p, enum cfg_listener_mode mode,
				const struct policy_client *c, const char *local, size_t local_len,
				const char *domain, size_t domain_len);

#endif
