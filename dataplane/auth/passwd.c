/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The password table (passwd.h): users sorted by name for bsearch, every
 * string in one allocation, and a dummy hash for unknown users.
 */
#include "dataplane/auth/passwd.h"

#include <crypt.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FILE_MAX (64u << 20) /* a password file larger than this is not one */

struct auth_user {
	const char *name;
	const char *hash;
	bool locked;
};

struct auth_db {
	struct auth_user *users;
	unsigned n;
	char *strings;
	char dummy[CRYPT_OUTPUT_SIZE]; /* what an unknown user's password is checked against */
};

static void say(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct auth_user *)a)->name, ((const struct auth_user *)b)->name);
}

/* User names are printable ASCII or UTF-8 octets: no ':', no control characters, no spaces. */
static bool name_ok(const char *s, size_t n)
{
	if (n == 0 || n > AUTH_USER_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c == 0x7f || c == ':')
			return false;
	}
	return true;
}

/* A yescrypt hash of a random phrase: unknown users cost one yescrypt computation too. */
static int make_dummy(struct auth_db *db)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *cd = calloc(1, sizeof(*cd));

	if (cd == NULL)
		return -ENOMEM;
	if (crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof(salt)) == NULL ||
	    crypt_rn("no such user", salt, cd, sizeof(*cd)) == NULL ||
	    strlen(cd->output) >= sizeof(db->dummy)) {
		free(cd);
		return -EIO;
	}
	strcpy(db->dummy, cd->output);
	free(cd);
	return 0;
}

struct auth_db *auth_db_parse(const char *name, const char *data, size_t len, char *err,
			      size_t errlen)
{
	struct auth_db *db = calloc(1, sizeof(*db));
	unsigned cap = 0, lineno = 0;
	char *w;

	if (db == NULL) {
		say(err, errlen, "%s: out of memory", name);
		return NULL;
	}
	db->strings = malloc(len + 1);
	if (db->strings == NULL) {
		say(err, errlen, "%s: out of memory", name);
		goto fail;
	}
	w = db->strings;
	for (size_t off = 0; off < len;) {
		const char *line = data + off, *nl = memchr(line, '\n', len - off);
		size_t ll = nl ? (size_t)(nl - line) : len - off;

		off += ll + (nl != NULL);
		lineno++;
		if (ll > 0 && line[ll - 1] == '\r')
			ll--;
		if (ll == 0 || line[0] == '#')
			continue;
		if (memchr(line, '\0', ll) != NULL) {
			say(err, errlen, "%s:%u: a NUL octet: not a password file", name, lineno);
			goto fail;
		}
		const char *colon = memchr(line, ':', ll);
		if (colon == NULL) {
			say(err, errlen, "%s:%u: expected user:hash", name, lineno);
			goto fail;
		}
		size_t ul = (size_t)(colon - line);
		const char *h = colon + 1, *hend = memchr(h, ':', (size_t)(line + ll - h));
		size_t hl = hend ? (size_t)(hend - h) : (size_t)(line + ll - h);

		if (!name_ok(line, ul)) {
			say(err, errlen,
			    "%s:%u: bad user name: 1 to %d octets, no spaces, ':' or control "
			    "characters",
			    name, lineno, AUTH_USER_MAX);
			goto fail;
		}
		if (hl == 0 || hl > AUTH_HASH_MAX) {
			say(err, errlen, "%s:%u: user '%.*s' has no usable hash", name, lineno,
			    (int)ul, line);
			goto fail;
		}
		if (db->n == cap) {
			unsigned nc = cap ? cap * 2 : 64;
			struct auth_user *u = realloc(db->users, nc * sizeof(*u));
			if (u == NULL) {
				say(err, errlen, "%s: out of memory", name);
				goto fail;
			}
			db->users = u;
			cap = nc;
		}
		struct auth_user *u = &db->users[db->n];
		u->name = w;
		memcpy(w, line, ul);
		w[ul] = '\0';
		w += ul + 1;
		u->locked = h[0] == '!' || h[0] == '*';
		if (u->locked) { /* "!$y$..." keeps the hash for unlocking later */
			h++;
			hl--;
		}
		u->hash = w;
		memcpy(w, h, hl);
		w[hl] = '\0';
		w += hl + 1;
		if (!u->locked || hl > 0) {
			int cs = crypt_checksalt(u->hash);
			if (cs == CRYPT_SALT_METHOD_LEGACY) {
				say(err, errlen,
				    "%s:%u: user '%s' has a legacy hash (DES, MD5...): set a new "
				    "password with mxgatectl user passwd",
				    name, lineno, u->name);
				goto fail;
			}
			if (cs != CRYPT_SALT_OK && cs != CRYPT_SALT_TOO_CHEAP) {
				say(err, errlen,
				    "%s:%u: user '%s': not a crypt(3) hash libxcrypt knows "
				    "(yescrypt $y$, sha512-crypt $6$, bcrypt $2b$...)",
				    name, lineno, u->name);
				goto fail;
			}
		}
		db->n++;
	}
	if (db->n > 1) {
		qsort(db->users, db->n, sizeof(*db->users), by_name);
		for (unsigned i = 1; i < db->n; i++) {
			if (strcmp(db->users[i - 1].name, db->users[i].name) == 0) {
				say(err, errlen, "%s: user '%s' is listed twice", name,
				    db->users[i].name);
				goto fail;
			}
		}
	}
	if (make_dummy(db) != 0) {
		say(err, errlen, "%s: libxcrypt cannot make a yescrypt hash", name);
		goto fail;
	}
	return db;
fail:
	auth_db_free(db);
	return NULL;
}

struct auth_db *auth_db_load(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0, cap = 0;

	if (f == NULL) {
		say(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	for (;;) {
		if (len == cap) {
			size_t nc = cap ? cap * 2 : 65536;
			char *nb;
			if (nc > FILE_MAX) {
				say(err, errlen, "%s: larger than %u MiB: not a password file", path,
				    FILE_MAX >> 20);
				goto fail;
			}
			nb = realloc(buf, nc);
			if (nb == NULL) {
				say(err, errlen, "%s: out of memory", path);
				goto fail;
			}
			buf = nb;
			cap = nc;
		}
		size_t got = fread(buf + len, 1, cap - len, f);
		len += got;
		if (got == 0) {
			if (ferror(f)) {
				say(err, errlen, "%s: %s", path, strerror(errno));
				goto fail;
			}
			break;
		}
	}
	fclose(f);
	struct auth_db *db = auth_db_parse(path, buf ? buf : "", len, err, errlen);
	if (buf != NULL) {
		explicit_bzero(buf, len); /* hashes are not secrets, but no need to leave them */
		free(buf);
	}
	return db;
fail:
	fclose(f);
	free(buf);
	return NULL;
}

void auth_db_free(struct auth_db *db)
{
	if (db == NULL)
		return;
	free(db->users);
	free(db->strings);
	free(db);
}

unsigned auth_db_users(const struct auth_db *db)
{
	return db ? db->n : 0;
}

/* Equal strings, in time that depends on their lengths only. */
static bool same(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char d = la != lb;

	for (size_t i = 0; i < la && i < lb; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

enum auth_verdict auth_db_verify(const struct auth_db *db, const char *user, const char *pass,
				 struct crypt_data *cd)
{
	struct auth_user key = { .name = user };
	const struct auth_user *u =
		db && db->n ? bsearch(&key, db->users, db->n, sizeof(*db->users), by_name) : NULL;
	const char *setting = u != NULL && !u->locked ? u->hash : db ? db->dummy : NULL;
	char *out;

	if (setting == NULL)
		return AUTH_V_ERROR;
	memset(cd, 0, sizeof(*cd));
	out = crypt_rn(pass, setting, cd, sizeof(*cd));
	if (out == NULL || out[0] == '*') { /* "*0"/"*1": libxcrypt's failure tokens */
		explicit_bzero(cd, sizeof(*cd));
		return u != NULL && !u->locked ? AUTH_V_ERROR : AUTH_V_BAD;
	}
	bool ok = u != NULL && !u->locked && same(out, u->hash);
	explicit_bzero(cd, sizeof(*cd));
	return ok ? AUTH_V_OK : AUTH_V_BAD;
}
