/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * RFC 4954 §5: the submitter identity behind MAIL AUTH=, decided once when a
 * message is received and passed on as " AUTH=xtext" (nothing when unknown).
 */
#include <string.h>

#include "dataplane/smtp/authparam.h"
#include "dataplane/smtp/client_reply.h"

static int lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static bool same_nocase(const char *a, size_t an, const uint8_t *b, size_t bn)
{
	if (an != bn)
		return false;
	for (size_t i = 0; i < an; i++)
		if (lower((uint8_t)a[i]) != lower(b[i]))
			return false;
	return true;
}

/* USER's mailbox into OUT: USER itself if it has an "@", else USER@DOMAIN. 0: none. */
static size_t user_mailbox(const char *user, const char *domain, char *out, size_t cap)
{
	size_t ul = strlen(user);
	bool at = memchr(user, '@', ul) != NULL;
	size_t dl = at || domain == NULL ? 0 : strlen(domain);

	if (ul == 0 || (!at && dl == 0))
		return 0;
	size_t n = ul + (at ? 0 : 1 + dl);
	if (n > SMTP_AUTHID_MAX || n > cap)
		return 0;
	memcpy(out, user, ul);
	if (!at) {
		out[ul] = '@';
		memcpy(out + ul + 1, domain, dl);
	}
	/* an addr-spec has no space or control octets (RFC 5322 §3.4.1); UTF-8 is xtext-encoded */
	for (size_t i = 0; i < n; i++)
		if ((uint8_t)out[i] <= ' ' || (uint8_t)out[i] == 0x7f)
			return 0;
	return n;
}

size_t smtp_authp_identity(struct smtp_str param, const char *user, const char *domain, char *out,
			   size_t cap)
{
	if (user == NULL)
		return 0;
	size_t n = user_mailbox(user, domain, out, cap);
	if (n == 0 || param.len == 0)
		return n;
	if (param.len == 2 && param.p[0] == '<' && param.p[1] == '>')
		return 0;
	uint8_t claim[SMTP_AUTHP_MAX];
	ssize_t cl = smtp_xtext_decode(param.p, param.len, claim, sizeof(claim));
	if (cl < 0 || !same_nocase(out, n, claim, (size_t)cl))
		return 0;
	return n;
}

ssize_t smtp_authp_format(char *out, size_t cap, struct smtp_str id)
{
	static const char kw[] = " AUTH=";
	const size_t kl = sizeof(kw) - 1;

	if (cap < kl + 2)
		return -1;
	if (id.len == 0 || id.len > SMTP_AUTHID_MAX)
		return 0;
	memcpy(out, kw, kl);
	size_t room = (cap < SMTP_AUTHP_WIRE_MAX ? cap : SMTP_AUTHP_WIRE_MAX) - kl;
	ssize_t xl = smtp_xtext_encode(id.p, id.len, out + kl, room);
	if (xl < 0) /* the caller's buffer is short, or the name would pass the wire limit */
		return cap < SMTP_AUTHP_WIRE_MAX ? -1 : 0;
	return (ssize_t)kl + xl;
}
