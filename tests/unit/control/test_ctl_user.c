/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mxgatectl user add|del|passwd (control/ctl/user.c): its arguments (each
 * usage error), the edit of the password file's text (other lines kept as
 * they were), the hashes it makes, and the whole command on a real file:
 * mode 0600, exit statuses 0, 1 and 2.
 */
#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/redirect.h>

#include "control/ctl/user.h"

static char err[512];

static int parse(const char *a0, const char *a1, const char *a2, const char *a3, const char *a4,
		 struct ctl_user_args *a)
{
	char *argv[6] = { 0 };
	int argc = 0;
	const char *in[5] = { a0, a1, a2, a3, a4 };
	for (int i = 0; i < 5 && in[i]; i++)
		argv[argc++] = (char *)in[i];
	err[0] = '\0';
	return ctl_user_args_parse(argc, argv, a, err, sizeof(err));
}

Test(ctl_user, arguments_are_read)
{
	struct ctl_user_args a;
	cr_assert_eq(parse("add", "alice", NULL, NULL, NULL, &a), 0, "%s", err);
	cr_assert_eq(a.op, CTL_USER_ADD);
	cr_assert_str_eq(a.user, "alice");
	cr_assert_str_eq(a.file, CTL_USER_DEFAULT_FILE);
	cr_assert_str_eq(a.scheme, "yescrypt");
	cr_assert_not(a.password_stdin);
	cr_assert_eq(parse("passwd", "--file", "/tmp/u", "bob", "--password-stdin", &a), 0, "%s",
		     err);
	cr_assert_eq(a.op, CTL_USER_PASSWD);
	cr_assert_str_eq(a.file, "/tmp/u");
	cr_assert(a.password_stdin);
	cr_assert_eq(parse("del", "bob", "--file=/x", "--scheme=bcrypt", NULL, &a), 0, "%s", err);
	cr_assert_eq(a.op, CTL_USER_DEL);
	cr_assert_str_eq(a.file, "/x");
	cr_assert_str_eq(a.scheme, "bcrypt");
}

static void usage_error(const char *a0, const char *a1, const char *a2, const char *a3,
			const char *want)
{
	struct ctl_user_args a;
	cr_assert_eq(parse(a0, a1, a2, a3, NULL, &a), -1, "accepted");
	cr_assert_str_eq(err, want);
}

Test(ctl_user, usage_errors_say_what_is_wrong)
{
	usage_error(NULL, NULL, NULL, NULL, "user: expected add, del or passwd");
	usage_error("list", NULL, NULL, NULL, "'list': expected add, del or passwd");
	usage_error("add", NULL, NULL, NULL, "which user?");
	usage_error("add", "a:b", NULL, NULL,
		    "'a:b': a user name is 1 to 255 octets without spaces, ':' or control "
		    "characters");
	usage_error("add", "a b", NULL, NULL,
		    "'a b': a user name is 1 to 255 octets without spaces, ':' or control "
		    "characters");
	usage_error("add", "alice", "bob", NULL, "unexpected argument 'bob'");
	usage_error("add", "alice", "--file", NULL, "--file needs a value");
	usage_error("add", "alice", "--file=", NULL, "--file needs a path");
	usage_error("add", "alice", "--scheme", "md5", "--scheme 'md5': yescrypt, sha512 or bcrypt");
	usage_error("add", "alice", "-x", NULL, "unknown option '-x'");
	usage_error("del", "alice", "--password-stdin", NULL, "del takes no password");
}

static char *edit(const char *in, enum ctl_user_op op, const char *user, const char *hash)
{
	char *out = NULL;
	size_t n = 0;
	err[0] = '\0';
	if (ctl_user_edit(in, strlen(in), op, user, hash, &out, &n, err, sizeof(err)) != 0)
		return NULL;
	char *s = malloc(n + 1);
	memcpy(s, out, n);
	s[n] = '\0';
	free(out);
	return s;
}

Test(ctl_user, add_appends_and_keeps_every_other_line)
{
	char *s = edit("# users\nbob:$6$x$y\n\n", CTL_USER_ADD, "alice", "$y$h");
	cr_assert_str_eq(s, "# users\nbob:$6$x$y\n\nalice:$y$h\n");
	free(s);
	s = edit("", CTL_USER_ADD, "alice", "$y$h");
	cr_assert_str_eq(s, "alice:$y$h\n");
	free(s);
	s = edit("bob:$6$x$y", CTL_USER_ADD, "alice", "$y$h"); /* no final newline */
	cr_assert_str_eq(s, "bob:$6$x$y\nalice:$y$h\n");
	free(s);
	cr_assert_null(edit("alice:$6$x$y\n", CTL_USER_ADD, "alice", "$y$h"));
	cr_assert_str_eq(err, "user 'alice' exists already (passwd changes a password)");
	/* a prefix of another name is another user */
	s = edit("alice2:$6$x$y\n", CTL_USER_ADD, "alice", "$y$h");
	cr_assert_str_eq(s, "alice2:$6$x$y\nalice:$y$h\n");
	free(s);
}

Test(ctl_user, del_removes_only_that_line)
{
	char *s = edit("a:1\nalice:$6$x$y\nb:2\n", CTL_USER_DEL, "alice", NULL);
	cr_assert_str_eq(s, "a:1\nb:2\n");
	free(s);
	cr_assert_null(edit("a:1\n", CTL_USER_DEL, "alice", NULL));
	cr_assert_str_eq(err, "no user 'alice'");
}

Test(ctl_user, passwd_replaces_the_hash_and_keeps_other_fields)
{
	char *s = edit("a:1\nalice:$6$old:19000:0::\nb:2\n", CTL_USER_PASSWD, "alice", "$y$new");
	cr_assert_str_eq(s, "a:1\nalice:$y$new:19000:0::\nb:2\n");
	free(s);
	s = edit("alice:$6$old\r\n", CTL_USER_PASSWD, "alice", "$y$new");
	cr_assert_str_eq(s, "alice:$y$new\r\n");
	free(s);
	cr_assert_null(edit("a:1\n", CTL_USER_PASSWD, "alice", "$y$h"));
	cr_assert_str_eq(err, "no user 'alice'");
}

Test(ctl_user, hashes_of_each_scheme_verify)
{
	static const char *const schemes[][2] = {
		{ "yescrypt", "$y$" }, { "sha512", "$6$" }, { "bcrypt", "$2b$" }
	};
	for (int i = 0; i < 3; i++) {
		char h[CRYPT_OUTPUT_SIZE];
		struct crypt_data d = { 0 };
		cr_assert_eq(ctl_user_hash(schemes[i][0], "pw", h, sizeof(h), err, sizeof(err)), 0,
			     "%s", err);
		cr_assert_eq(strncmp(h, schemes[i][1], strlen(schemes[i][1])), 0, "%s", h);
		cr_assert_not_null(crypt_rn("pw", h, &d, sizeof(d)));
		cr_assert_str_eq(d.output, h);
	}
	char h[8];
	cr_assert_eq(ctl_user_hash("yescrypt", "pw", h, sizeof(h), err, sizeof(err)), -1);
}

/* Runs ctl_user_main() in a child with STDIN on its stdin; returns the exit status. */
static int run(const char *stdin_text, const char *a0, const char *a1, const char *a2,
	       const char *a3, const char *a4)
{
	int p[2];
	cr_assert_eq(pipe(p), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		char *argv[6] = { 0 };
		int argc = 0;
		const char *in[5] = { a0, a1, a2, a3, a4 };
		for (int i = 0; i < 5 && in[i]; i++)
			argv[argc++] = (char *)in[i];
		close(p[1]);
		dup2(p[0], 0);
		freopen("/dev/null", "w", stdout);
		freopen("/dev/null", "w", stderr);
		_exit(ctl_user_main(argc, argv));
	}
	close(p[0]);
	if (stdin_text)
		cr_assert_eq(write(p[1], stdin_text, strlen(stdin_text)), (ssize_t)strlen(stdin_text));
	close(p[1]);
	int st;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	static char buf[4096];
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = '\0';
	return buf;
}

Test(ctl_user, the_command_edits_the_file_atomically_with_mode_0600)
{
	char dir[] = "/tmp/mx-ctl-user-XXXXXX", path[256];
	struct stat st;
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/users", dir);

	cr_assert_eq(run("s3cret\n", "add", "alice", "--file", path, "--password-stdin"), 0);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600);
	char *s = slurp(path);
	cr_assert_eq(strncmp(s, "alice:$y$", 9), 0, "%s", s);
	char h[CRYPT_OUTPUT_SIZE];
	struct crypt_data d = { 0 };
	snprintf(h, sizeof(h), "%.*s", (int)strcspn(s + 6, "\n"), s + 6);
	cr_assert_not_null(crypt_rn("s3cret", h, &d, sizeof(d)));
	cr_assert_str_eq(d.output, h, "the password on stdin is the one hashed");

	cr_assert_eq(run("x\n", "add", "alice", "--file", path, "--password-stdin"), 1,
		     "a user that exists");
	cr_assert_eq(run("new\n", "passwd", "alice", "--file", path, "--scheme=sha512"), 0,
		     "stdin is not a terminal: read as with --password-stdin");
	cr_assert_eq(strncmp(slurp(path), "alice:$6$", 9), 0);
	cr_assert_eq(run("\n", "add", "bob", "--file", path, "--password-stdin"), 1,
		     "an empty password");
	cr_assert_eq(run(NULL, "add", "bob", "--file", path, "--password-stdin"), 1, "no input");
	cr_assert_eq(run(NULL, "del", "alice", "--file", path, NULL), 0);
	cr_assert_str_eq(slurp(path), "");
	cr_assert_eq(run(NULL, "del", "alice", "--file", path, NULL), 1, "gone already");
	cr_assert_eq(run(NULL, "frob", "alice", NULL, NULL, NULL), 2, "usage");
	char missing[300];
	snprintf(missing, sizeof(missing), "%s/none", dir);
	cr_assert_eq(run(NULL, "del", "alice", "--file", missing, NULL), 1, "no file");
	unlink(path);
	snprintf(path, sizeof(path), "%s/users.lock", dir);
	unlink(path);
	rmdir(dir);
}
