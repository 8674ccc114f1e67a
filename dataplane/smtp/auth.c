/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * AUTH PLAIN (RFC 4616) and LOGIN (the de facto exchange of
 * draft-murchison-sasl-login) over RFC 4954's 334 challenges (auth.h).
 */
#include "dataplane/smtp/auth.h"

#include <string.h>

#include "dataplane/smtp/reply.h"

/* RFC 4616 message: [authzid] NUL authcid NUL passwd; 3 fields of up to 255 octets. */
#define PLAIN_MAX (3 * SMTP_AUTH_FIELD_MAX + 2)

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_val(uint8_t c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

ptrdiff_t smtp_base64_decode(const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
	size_t o = 0;

	if (n % 4 != 0)
		return -1;
	for (size_t i = 0; i < n; i += 4) {
		int v[4];
		unsigned pad = 0;

		for (unsigned k = 0; k < 4; k++) {
			if (in[i + k] == '=') {
				/* only the last quantum pads, at most "==", and nothing after it */
				if (i + 4 != n || k < 2)
					return -1;
				pad++;
				v[k] = 0;
				continue;
			}
			if (pad) /* "=" followed by a letter */
				return -1;
			v[k] = b64_val(in[i + k]);
			if (v[k] < 0)
				return -1;
		}
		uint32_t q = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
			     (uint32_t)v[3];
		/* RFC 4648 §3.5: pad bits must be zero, so each octet string has one encoding */
		if ((pad == 1 && (q & 0xff)) || (pad == 2 && (q & 0xffff)))
			return -1;
		size_t take = 3 - pad;
		if (o + take > cap)
			return -1;
		out[o++] = (uint8_t)(q >> 16);
		if (take > 1)
			out[o++] = (uint8_t)(q >> 8);
		if (take > 2)
			out[o++] = (uint8_t)q;
	}
	return (ptrdiff_t)o;
}

ptrdiff_t smtp_base64_encode(const uint8_t *in, size_t n, char *out, size_t cap)
{
	size_t need = (n + 2) / 3 * 4;

	if (need + 1 > cap)
		return -1;
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t q = (uint32_t)in[i] << 16;
		if (i + 1 < n)
			q |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < n)
			q |= in[i + 2];
		out[o++] = b64[q >> 18 & 63];
		out[o++] = b64[q >> 12 & 63];
		out[o++] = i + 1 < n ? b64[q >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? b64[q & 63] : '=';
	}
	out[o] = '\0';
	return (ptrdiff_t)o;
}

void smtp_auth_clear(struct smtp_auth *a)
{
	/* volatile: the password must really be gone, not optimised away as a dead store */
	volatile char *p = a->passwd;
	for (size_t i = 0; i < sizeof(a->passwd); i++)
		p[i] = 0;
	memset(a->authzid, 0, sizeof(a->authzid));
	memset(a->authcid, 0, sizeof(a->authcid));
	a->mech = SMTP_AUTH_MECH_NONE;
	a->step = 0;
	a->authzid_len = a->authcid_len = a->passwd_len = 0;
}

static bool mech_is(const struct smtp_str *m, const char *name)
{
	size_t n = strlen(name);
	if (m->len != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = m->p[i];
		if (c >= 'a' && c <= 'z')
			c = (uint8_t)(c - 'a' + 'A');
		if (c != (uint8_t)name[i])
			return false;
	}
	return true;
}

/* Copies P[0..N) into a NUL-terminated field; false when it does not fit. */
static bool set_field(char *dst, uint16_t *len, const uint8_t *p, size_t n)
{
	if (n > SMTP_AUTH_FIELD_MAX)
		return false;
	memcpy(dst, p, n);
	dst[n] = '\0';
	*len = (uint16_t)n;
	return true;
}

/* Ends the exchange with reply R (anything but NONE wipes what was gathered). */
static int finish(struct smtp_auth *a, int r)
{
	if (r != SMTP_R_NONE)
		smtp_auth_clear(a);
	else
		a->mech = SMTP_AUTH_MECH_NONE;
	return r;
}

/* RFC 4616 §2: message = [authzid] UTF8NUL authcid UTF8NUL passwd, no other NUL. */
static int plain_message(struct smtp_auth *a, const uint8_t *m, size_t n)
{
	const uint8_t *z1 = memchr(m, 0, n);
	if (z1 == NULL)
		return finish(a, SMTP_R_AUTH_FAILED);
	const uint8_t *c = z1 + 1;
	const uint8_t *z2 = memchr(c, 0, (size_t)(m + n - c));
	if (z2 == NULL)
		return finish(a, SMTP_R_AUTH_FAILED);
	const uint8_t *pw = z2 + 1;
	size_t pwl = (size_t)(m + n - pw);
	if (memchr(pw, 0, pwl) != NULL) /* a third NUL: not a PLAIN message */
		return finish(a, SMTP_R_AUTH_FAILED);
	if (!set_field(a->authzid, &a->authzid_len, m, (size_t)(z1 - m)) ||
	    !set_field(a->authcid, &a->authcid_len, c, (size_t)(z2 - c)) ||
	    !set_field(a->passwd, &a->passwd_len, pw, pwl) || a->authcid_len == 0 ||
	    a->passwd_len == 0)
		return finish(a, SMTP_R_AUTH_FAILED);
	/*
	 * RFC 4616 §2: an authzid asks to act as someone else. We have no
	 * rules for that, so only the identity itself is allowed.
	 */
	if (a->authzid_len != 0 &&
	    (a->authzid_len != a->authcid_len || memcmp(a->authzid, a->authcid, a->authcid_len) != 0))
		return finish(a, SMTP_R_AUTH_FAILED);
	return finish(a, SMTP_R_NONE);
}

/* LOGIN's fields are text: no NUL (it would cut the name short for crypt(3)). */
static bool login_field(char *dst, uint16_t *len, const uint8_t *p, size_t n)
{
	return n > 0 && memchr(p, 0, n) == NULL && set_field(dst, len, p, n);
}

static int response(struct smtp_auth *a, const struct smtp_str *resp, struct smtp_str *challenge)
{
	uint8_t buf[SMTP_AUTH_LINE_MAX / 4 * 3 + 3]; /* whatever a line can carry */
	ptrdiff_t n = smtp_base64_decode(resp->p, resp->len, buf, sizeof(buf));

	if (n < 0)
		return finish(a, SMTP_R_AUTH_BAD_BASE64);
	if ((size_t)n > PLAIN_MAX)
		return finish(a, SMTP_R_AUTH_FAILED);
	if (a->mech == SMTP_AUTH_MECH_PLAIN)
		return plain_message(a, buf, (size_t)n);
	if (a->step == 0) {
		if (!login_field(a->authcid, &a->authcid_len, buf, (size_t)n))
			return finish(a, SMTP_R_AUTH_FAILED);
		a->step = 1;
		challenge->p = (const uint8_t *)"UGFzc3dvcmQ6"; /* "Password:" */
		challenge->len = 12;
		return SMTP_R_AUTH_CHALLENGE;
	}
	if (!login_field(a->passwd, &a->passwd_len, buf, (size_t)n))
		return finish(a, SMTP_R_AUTH_FAILED);
	return finish(a, SMTP_R_NONE);
}

int smtp_auth_start(struct smtp_auth *a, const struct smtp_str *mech,
		    const struct smtp_str *initial, struct smtp_str *challenge)
{
	smtp_auth_clear(a);
	if (mech_is(mech, "PLAIN"))
		a->mech = SMTP_AUTH_MECH_PLAIN;
	else if (mech_is(mech, "LOGIN"))
		a->mech = SMTP_AUTH_MECH_LOGIN;
	else
		return SMTP_R_AUTH_MECH;

	if (initial != NULL && initial->len != 0) {
		/* "=" is an initial response of zero length (RFC 4954 §4) */
		struct smtp_str empty = { initial->p, 0 };
		bool eq = initial->len == 1 && initial->p[0] == '=';
		return response(a, eq ? &empty : initial, challenge);
	}
	if (a->mech == SMTP_AUTH_MECH_PLAIN) {
		challenge->p = (const uint8_t *)""; /* RFC 4616 §2: an empty challenge */
		challenge->len = 0;
	} else {
		challenge->p = (const uint8_t *)"VXNlcm5hbWU6"; /* "Username:" */
		challenge->len = 12;
	}
	return SMTP_R_AUTH_CHALLENGE;
}

int smtp_auth_step(struct smtp_auth *a, const struct smtp_str *line, struct smtp_str *challenge)
{
	if (a->mech == SMTP_AUTH_MECH_NONE)
		return finish(a, SMTP_R_AUTH_FAILED);
	return response(a, line, challenge);
}
