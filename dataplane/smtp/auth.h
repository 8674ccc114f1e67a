/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The server's side of an SMTP AUTH exchange (RFC 4954) for the PLAIN (RFC
 * 4616) and LOGIN mechanisms, as a pure state machine over client lines: it
 * decodes base64 strictly, answers with challenges, and ends with the
 * credentials to verify or the reply that refuses them. No I/O, no
 * allocation; verification is someone else's job (dataplane/auth/).
 */
#ifndef MX_SMTP_AUTH_H
#define MX_SMTP_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataplane/smtp/parse.h"

/* RFC 4616 §2: authzid, authcid and passwd are each at most 255 octets. */
#define SMTP_AUTH_FIELD_MAX 255
/*
 * RFC 4954 §4: 12288 octets is a sufficient line length for deployed
 * mechanisms; a longer line fails the AUTH command with 500 5.5.6. This is
 * the whole line, CRLF included, so 12288 octets of base64 always fit.
 */
#define SMTP_AUTH_LINE_MAX (12288 + 2)

enum smtp_auth_mech { SMTP_AUTH_MECH_NONE = 0, SMTP_AUTH_MECH_PLAIN, SMTP_AUTH_MECH_LOGIN };

/* One exchange. All-zero is the idle state. */
struct smtp_auth {
	enum smtp_auth_mech mech;
	uint8_t step; /* LOGIN: 0 waiting for the user name, 1 for the password */
	uint16_t authzid_len, authcid_len, passwd_len;
	char authzid[SMTP_AUTH_FIELD_MAX + 1]; /* NUL-terminated; "" when none was given */
	char authcid[SMTP_AUTH_FIELD_MAX + 1]; /* the user name */
	char passwd[SMTP_AUTH_FIELD_MAX + 1];
};

/*
 * Strict RFC 4648 §4 base64: the alphabet only, a length that is a multiple
 * of 4, "=" padding only at the end, and zero pad bits (§3.5: no other
 * encoding of the same octets is taken). Writes the octets to OUT (CAP
 * bytes) and returns their count, or -1 when IN is not canonical base64 or
 * the result does not fit. An empty IN decodes to 0 octets.
 */
ptrdiff_t smtp_base64_decode(const uint8_t *in, size_t n, uint8_t *out, size_t cap);

/* Encodes IN[0..N) into OUT (CAP bytes, NUL-terminated); returns the length, or -1 if short. */
ptrdiff_t smtp_base64_encode(const uint8_t *in, size_t n, char *out, size_t cap);

/* The mechanisms offered in EHLO, in the AUTH keyword's form. */
#define SMTP_AUTH_MECHS "PLAIN LOGIN"

/*
 * Starts an exchange for AUTH MECH [INITIAL] (the parsed command). INITIAL
 * empty means no initial response; "=" is an empty one (RFC 4954 §4).
 * Returns, with A filled as far as the client got:
 *   SMTP_R_NONE            the credentials are complete: verify them
 *   SMTP_R_AUTH_CHALLENGE  send *CHALLENGE (base64, static) as "334 ..."
 *   SMTP_R_AUTH_MECH       504 5.5.4: not PLAIN or LOGIN
 *   SMTP_R_AUTH_BAD_BASE64 501 5.5.2: the response is not base64
 *   SMTP_R_AUTH_FAILED     535 5.7.8: a malformed message, or authzid != authcid
 * Any result but CHALLENGE leaves the exchange over (A idle unless NONE).
 */
int smtp_auth_start(struct smtp_auth *a, const struct smtp_str *mech,
		    const struct smtp_str *initial, struct smtp_str *challenge);

/*
 * The client's line LINE (without CRLF) in answer to a challenge. "*" is not
 * handled here: the engine cancels the exchange itself (RFC 4954 §4).
 * Returns as smtp_auth_start().
 */
int smtp_auth_step(struct smtp_auth *a, const struct smtp_str *line, struct smtp_str *challenge);

/* Forgets the exchange, overwriting the password. */
void smtp_auth_clear(struct smtp_auth *a);

#endif
