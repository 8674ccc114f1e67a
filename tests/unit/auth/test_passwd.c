/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The password file (dataplane/auth/passwd.c): every hash scheme we promise
 * verifies, wrong passwords and unknown users do not, and each malformed
 * file is refused with a message that names the line.
 */
#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "dataplane/auth/passwd.h"

static struct crypt_data *cd;
static char err[512];

static void setup(void)
{
	cd = calloc(1, sizeof(*cd));
	err[0] = '\0';
}

static void teardown(void)
{
	free(cd);
}

TestSuite(passwd, .init = setup, .fini = teardown);

/* crypt(3) of PASS under a fresh salt of scheme PREFIX at COST (0: libxcrypt's default). */
static const char *hash(const char *prefix, unsigned long cost, const char *pass)
{
	static char out[4][CRYPT_OUTPUT_SIZE];
	static unsigned k;
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data d = { 0 };

	cr_assert_not_null(crypt_gensalt_rn(prefix, cost, NULL, 0, salt, sizeof(salt)), "%s", prefix);
	cr_assert_not_null(crypt_rn(pass, salt, &d, sizeof(d)));
	k = (k + 1) % 4;
	strcpy(out[k], d.output);
	return out[k];
}

static struct auth_db *parse(const char *text)
{
	return auth_db_parse("users", text, strlen(text), err, sizeof(err));
}

static void check_scheme(const char *prefix, unsigned long cost)
{
	char file[1024];
	snprintf(file, sizeof(file), "alice:%s\nbob:%s\n", hash(prefix, cost, "s3cret"),
		 hash(prefix, cost, "other"));
	struct auth_db *db = parse(file);
	cr_assert_not_null(db, "%s: %s", prefix, err);
	cr_assert_eq(auth_db_users(db), 2);
	cr_assert_eq(auth_db_verify(db, "alice", "s3cret", cd), AUTH_V_OK, "%s", prefix);
	cr_assert_eq(auth_db_verify(db, "alice", "s3cret ", cd), AUTH_V_BAD, "%s", prefix);
	cr_assert_eq(auth_db_verify(db, "alice", "other", cd), AUTH_V_BAD, "%s", prefix);
	cr_assert_eq(auth_db_verify(db, "bob", "other", cd), AUTH_V_OK, "%s", prefix);
	cr_assert_eq(auth_db_verify(db, "carol", "s3cret", cd), AUTH_V_BAD, "%s", prefix);
	auth_db_free(db);
}

Test(passwd, yescrypt_verifies)
{
	check_scheme("$y$", 0);
}

Test(passwd, sha512_crypt_verifies)
{
	check_scheme("$6$", 0);
}

Test(passwd, bcrypt_verifies)
{
	check_scheme("$2b$", 4);
}

Test(passwd, known_vectors_from_other_tools_verify)
{
	/* made with `mkpasswd -m sha-512 -S saltsalt password` and `-m bcrypt -R 4` elsewhere */
	struct auth_db *db =
		parse("u1:$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2/jctKu9YterLp8wwnSq."
		      "qc.eoxqOmSuNp2xS0ktL3nh/\n");
	cr_assert_not_null(db, "%s", err);
	cr_assert_eq(auth_db_verify(db, "u1", "password", cd), AUTH_V_OK);
	cr_assert_eq(auth_db_verify(db, "u1", "Password", cd), AUTH_V_BAD);
	auth_db_free(db);
}

Test(passwd, comments_blank_lines_crlf_and_shadow_fields_are_fine)
{
	char file[1024];
	snprintf(file, sizeof(file), "# users\n\nalice:%s:19000:0:99999:7:::\r\ndave:%s\n",
		 hash("$6$", 0, "pw"), hash("$6$", 0, "pw2"));
	struct auth_db *db = parse(file);
	cr_assert_not_null(db, "%s", err);
	cr_assert_eq(auth_db_users(db), 2);
	cr_assert_eq(auth_db_verify(db, "alice", "pw", cd), AUTH_V_OK);
	cr_assert_eq(auth_db_verify(db, "dave", "pw2", cd), AUTH_V_OK);
	auth_db_free(db);
}

Test(passwd, locked_accounts_never_verify)
{
	char file[512];
	snprintf(file, sizeof(file), "alice:!%s\nbob:*\n", hash("$6$", 0, "pw"));
	struct auth_db *db = parse(file);
	cr_assert_not_null(db, "%s", err);
	cr_assert_eq(auth_db_verify(db, "alice", "pw", cd), AUTH_V_BAD);
	cr_assert_eq(auth_db_verify(db, "bob", "", cd), AUTH_V_BAD);
	auth_db_free(db);
}

Test(passwd, an_empty_file_has_no_users)
{
	struct auth_db *db = parse("");
	cr_assert_not_null(db, "%s", err);
	cr_assert_eq(auth_db_users(db), 0);
	cr_assert_eq(auth_db_verify(db, "alice", "pw", cd), AUTH_V_BAD);
	auth_db_free(db);
}

Test(passwd, unknown_users_cost_a_hash_too)
{
	/* the dummy is yescrypt at the default cost: an unknown user is not answered at once */
	char file[512];
	struct timespec t0, t1;
	snprintf(file, sizeof(file), "alice:%s\n", hash("$y$", 0, "pw"));
	struct auth_db *db = parse(file);
	cr_assert_not_null(db, "%s", err);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cr_assert_eq(auth_db_verify(db, "nobody", "pw", cd), AUTH_V_BAD);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long us = (t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000;
	/* yescrypt's default cost is ~10 ms; a table lookup alone is under a microsecond */
	cr_assert_gt(us, 500, "unknown user answered in %ld us", us);
	auth_db_free(db);
}

static void refused(const char *text, const char *needle)
{
	struct auth_db *db = parse(text);
	cr_assert_null(db, "accepted: %s", text);
	cr_assert_not_null(strstr(err, needle), "'%s' not in '%s'", needle, err);
}

Test(passwd, malformed_files_are_refused_with_the_line)
{
	refused("alice\n", "users:1: expected user:hash");
	refused("# c\nalice:\n", "users:2: user 'alice' has no usable hash");
	refused("al ice:$6$x$y\n", "users:1: bad user name");
	refused(":$6$x$y\n", "users:1: bad user name");
	refused("alice:$zz$nothash\n", "users:1: user 'alice': not a crypt(3) hash");
	refused("alice:abJnggxhB/yWI\n", "users:1: user 'alice' has a legacy hash");
	refused("alice:$1$salt$qJH7.N4xYta3aEG/dfqo/0\n", "legacy hash");
	static const char nul[] = "alice:$6$x\0y\n";
	cr_assert_null(auth_db_parse("users", nul, sizeof(nul) - 1, err, sizeof(err)));
	cr_assert_not_null(strstr(err, "users:1: a NUL octet"), "%s", err);
}

Test(passwd, a_user_listed_twice_is_refused)
{
	char file[512];
	snprintf(file, sizeof(file), "alice:%s\nbob:%s\nalice:%s\n", hash("$6$", 0, "a"),
		 hash("$6$", 0, "b"), hash("$6$", 0, "c"));
	refused(file, "user 'alice' is listed twice");
}

Test(passwd, load_reads_a_file_and_says_why_it_cannot)
{
	char path[] = "/tmp/mx-auth-passwd-XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	char line[256];
	int n = snprintf(line, sizeof(line), "alice:%s\n", hash("$6$", 0, "pw"));
	cr_assert_eq(write(fd, line, (size_t)n), n);
	close(fd);
	struct auth_db *db = auth_db_load(path, err, sizeof(err));
	cr_assert_not_null(db, "%s", err);
	cr_assert_eq(auth_db_verify(db, "alice", "pw", cd), AUTH_V_OK);
	auth_db_free(db);
	unlink(path);
	cr_assert_null(auth_db_load(path, err, sizeof(err)));
	cr_assert_not_null(strstr(err, "No such file"), "%s", err);
}
