/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The MAIL AUTH= parameter (RFC 4954 §5): which submitter identity a message
 * is carried with, and the parameter that passes it on to the next hop. Pure
 * functions over bytes, shared by the store path (smtpd), the relay's client
 * engine and cut-through.
 */
#ifndef MX_SMTP_AUTHPARAM_H
#define MX_SMTP_AUTHPARAM_H

#include <stddef.h>
#include <sys/types.h>

#include "dataplane/smtp/parse.h"

/* A submitter identity: an addr-spec without angle brackets (RFC 5321 §4.5.3.1.3: 256 - 2). */
#define SMTP_AUTHID_MAX 254

/*
 * The whole " AUTH=value" we send, leading space included. RFC 4954 §3 lets
 * the AUTH parameter lengthen a MAIL command by up to 500 characters.
 */
#define SMTP_AUTHP_WIRE_MAX 500

/*
 * Decides the identity a message received in a session is carried with
 * (RFC 4954 §5), into OUT (CAP octets, no NUL). USER is the session's SASL
 * user name, or NULL when it did not authenticate; a name without "@" is
 * made a mailbox under DOMAIN (our host name). PARAM is the MAIL AUTH=
 * value as the client sent it (xtext or "<>"), empty when none was given.
 *
 *   not authenticated           -> none, whatever AUTH= says ("MUST behave
 *                                  as if AUTH=<> was supplied")
 *   authenticated, no AUTH=     -> USER's mailbox (the server MAY supply it)
 *   authenticated, AUTH=<>      -> none (submitter unknown: MUST NOT treat
 *                                  the message as submitted by the client)
 *   authenticated, AUTH=USER's mailbox (compared without regard to case)
 *                               -> that mailbox
 *   authenticated, AUTH=another -> none: we keep no list of clients trusted
 *                                  to vouch for others (as Postfix, which
 *                                  only logs the value as sasl_sender)
 *
 * A USER that cannot be a mailbox (a control octet or space, too long) gives
 * none too. Returns the identity's length, 0 for none.
 */
size_t smtp_authp_identity(struct smtp_str param, const char *user, const char *domain, char *out,
			   size_t cap);

/*
 * Writes the MAIL parameter carrying identity ID into OUT (CAP octets, no
 * NUL): " AUTH=" and ID as xtext (RFC 3461 §4). Only for a next hop whose
 * EHLO offered AUTH: RFC 4954 §5 has a relay pass a trusted submitter on to
 * "any other server which supports the AUTH extension" (SHOULD). Nothing
 * (0) when ID is empty, or when its xtext would pass SMTP_AUTHP_WIRE_MAX (never
 * a truncated name): AUTH=<> is owed only to a server we authenticated to,
 * which we never do, and next hops that offer AUTH but refuse the parameter
 * (aiosmtpd answers 555) would bounce every unauthenticated message for it --
 * Postfix, likewise, sends AUTH=<> only after authenticating. Returns the
 * octets written, or -1 when CAP is short (SMTP_AUTHP_WIRE_MAX is always enough).
 */
ssize_t smtp_authp_format(char *out, size_t cap, struct smtp_str id);

#endif
