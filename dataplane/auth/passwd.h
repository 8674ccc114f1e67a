/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The password file of authenticated submission: one "user:hash" line per
 * user, the hash in crypt(3) form (yescrypt "$y$", sha512-crypt "$6$",
 * bcrypt "$2b$"...), checked with libxcrypt. Loaded whole into an immutable
 * table at start and on reload; verification is slow by design and runs
 * only on the authentication thread (authd.h), never on a worker.
 */
#ifndef MX_AUTH_PASSWD_H
#define MX_AUTH_PASSWD_H

#include <stddef.h>

struct crypt_data;

/* The longest user name and hash we keep (RFC 4616 §2 bounds the name at 255 octets). */
#define AUTH_USER_MAX 255
#define AUTH_HASH_MAX 255 /* libxcrypt's CRYPT_OUTPUT_SIZE is 384; no scheme we take is near */

struct auth_db;

/*
 * Parses DATA[0..LEN) as a password file; NAME names it in messages. Lines:
 * "user:hash" (anything after a second ':' is ignored, so shadow-style lines
 * work), blank lines and "#" comments. A hash starting with '!' or '*' is
 * a locked account: it never verifies. Returns the table, or NULL with ERR
 * (ERRLEN bytes) saying "NAME:LINE: what is wrong" -- a bad user name, a
 * hash libxcrypt does not take (crypt_checksalt), a user listed twice.
 */
struct auth_db *auth_db_parse(const char *name, const char *data, size_t len, char *err,
			      size_t errlen);

/* auth_db_parse() over the file at PATH; NULL with ERR also when it cannot be read. */
struct auth_db *auth_db_load(const char *path, char *err, size_t errlen);

/* NULL is fine. */
void auth_db_free(struct auth_db *db);

unsigned auth_db_users(const struct auth_db *db);

enum auth_verdict {
	AUTH_V_OK = 0, /* the password is right */
	AUTH_V_BAD,    /* wrong password, unknown user, locked account */
	AUTH_V_ERROR,  /* libxcrypt failed (out of memory...): a temporary failure */
};

/*
 * Checks PASS for USER (NUL-terminated). An unknown user costs what a known
 * one does: a dummy yescrypt hash is computed so timing does not tell who
 * exists. CD is the caller's libxcrypt scratch (large: keep one per thread).
 */
enum auth_verdict auth_db_verify(const struct auth_db *db, const char *user, const char *pass,
				 struct crypt_data *cd);

#endif
