/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mxgatectl user add|del|passwd: maintains the password file AUTH checks
 * against (auth.password_file: "user:hash" lines, crypt(3) hashes). Works
 * on the file directly, not through mxgate-control: the dataplane picks the
 * change up at the next config reload. The file is replaced atomically
 * (temporary file, fsync, rename) with mode 0600.
 */
#ifndef MX_CTL_USER_H
#define MX_CTL_USER_H

#include <stdbool.h>
#include <stddef.h>

#define CTL_USER_DEFAULT_FILE "/etc/mxgate/users"

enum ctl_user_op { CTL_USER_ADD, CTL_USER_DEL, CTL_USER_PASSWD };

struct ctl_user_args {
	enum ctl_user_op op;
	const char *user;
	const char *file;    /* --file F, default CTL_USER_DEFAULT_FILE */
	const char *scheme;  /* --scheme yescrypt|sha512|bcrypt: the crypt(3) prefix */
	bool password_stdin; /* --password-stdin: one line from stdin, no prompt */
};

/*
 * Parses ARGV[0..ARGC) after "user" ("add alice --file F"). 0, or -1 with a
 * one-line reason in ERR (ERRLEN bytes): a usage error (exit status 2).
 */
int ctl_user_args_parse(int argc, char *const argv[], struct ctl_user_args *a, char *err,
			size_t errlen);

/* True when NAME can be a user of the password file (passwd.h's rule). */
bool ctl_user_name_ok(const char *name);

/*
 * The password file IN (N octets) with OP applied to USER (HASH for add and
 * passwd): a new line for add at the end, the line removed for del, its
 * hash replaced for passwd (other fields kept). Every other line is kept as
 * it was. Returns a malloc'd text in *OUT (*OUTLEN octets), or -1 with ERR
 * saying why: the user exists already (add), is not there (del, passwd).
 */
int ctl_user_edit(const char *in, size_t n, enum ctl_user_op op, const char *user,
		  const char *hash, char **out, size_t *outlen, char *err, size_t errlen);

/*
 * A crypt(3) hash of PASS with a fresh salt of SCHEME's prefix ("$y$" for
 * yescrypt...). Writes it to OUT (CAP bytes); 0, or -1 with ERR.
 */
int ctl_user_hash(const char *scheme, const char *pass, char *out, size_t cap, char *err,
		  size_t errlen);

/* The whole command: ARGV as ctl_user_args_parse() takes it. Returns the exit status. */
int ctl_user_main(int argc, char *const argv[]);

extern const char ctl_user_usage[];

#endif
