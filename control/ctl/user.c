/* SPDX-License-Identifier: BSD-3-Clause */
/* mxgatectl user add|del|passwd (user.h). */
#include "control/ctl/user.h"
#include "control/ctl/args.h"

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#define USER_MAX 255 /* RFC 4616 §2; dataplane/auth/passwd.h */
#define PASS_MAX 255
#define FILE_MAX (64u << 20)

const char ctl_user_usage[] =
	"usage: mxgatectl user add|del|passwd USER [--file F] [--password-stdin]\n"
	"                                [--scheme yescrypt|sha512|bcrypt]\n"
	"  add     a new user; the password is asked for twice on the terminal\n"
	"  del     remove the user\n"
	"  passwd  set a new password\n"
	"  --file F          the password file (auth.password_file), default " CTL_USER_DEFAULT_FILE
	"\n"
	"  --password-stdin  read the password as one line from stdin, no prompt\n"
	"  --scheme S        the crypt(3) hash: yescrypt (default), sha512, bcrypt\n"
	"then run mxgatectl config reload: the dataplane reads the file again.\n"
	"exit status: 0 success, 1 failure, 2 usage\n";

bool ctl_user_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > USER_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c <= 0x20 || c == 0x7f || c == ':')
			return false;
	}
	return true;
}

static const char *scheme_prefix(const char *scheme)
{
	if (strcmp(scheme, "yescrypt") == 0)
		return "$y$";
	if (strcmp(scheme, "sha512") == 0)
		return "$6$";
	if (strcmp(scheme, "bcrypt") == 0)
		return "$2b$";
	return NULL;
}

int ctl_user_args_parse(int argc, char *const argv[], struct ctl_user_args *a, char *err,
			size_t errlen)
{
	int pos = 0;

	memset(a, 0, sizeof(*a));
	a->file = CTL_USER_DEFAULT_FILE;
	a->scheme = "yescrypt";
	for (int i = 0; i < argc; i++) {
		const char *s = argv[i];

		if (strcmp(s, "--password-stdin") == 0) {
			a->password_stdin = true;
		} else if (strcmp(s, "--file") == 0 || strcmp(s, "--scheme") == 0) {
			if (i + 1 >= argc)
				return ctl_errf(err, errlen, "%s needs a value", s);
			if (s[2] == 'f')
				a->file = argv[++i];
			else
				a->scheme = argv[++i];
		} else if (strncmp(s, "--file=", 7) == 0) {
			a->file = s + 7;
		} else if (strncmp(s, "--scheme=", 9) == 0) {
			a->scheme = s + 9;
		} else if (s[0] == '-' && s[1] != '\0') {
			return ctl_errf(err, errlen, "unknown option '%s'", s);
		} else if (pos == 0) {
			if (strcmp(s, "add") == 0)
				a->op = CTL_USER_ADD;
			else if (strcmp(s, "del") == 0)
				a->op = CTL_USER_DEL;
			else if (strcmp(s, "passwd") == 0)
				a->op = CTL_USER_PASSWD;
			else
				return ctl_errf(err, errlen, "'%s': expected add, del or passwd", s);
			pos++;
		} else if (pos == 1) {
			a->user = s;
			pos++;
		} else {
			return ctl_errf(err, errlen, "unexpected argument '%s'", s);
		}
	}
	if (pos == 0)
		return ctl_errf(err, errlen, "user: expected add, del or passwd");
	if (a->user == NULL)
		return ctl_errf(err, errlen, "which user?");
	if (!ctl_user_name_ok(a->user))
		return ctl_errf(err, errlen,
			    "'%s': a user name is 1 to %d octets without spaces, ':' or control "
			    "characters",
			    a->user, USER_MAX);
	if (a->file[0] == '\0')
		return ctl_errf(err, errlen, "--file needs a path");
	if (scheme_prefix(a->scheme) == NULL)
		return ctl_errf(err, errlen, "--scheme '%s': yescrypt, sha512 or bcrypt", a->scheme);
	if (a->op == CTL_USER_DEL && a->password_stdin)
		return ctl_errf(err, errlen, "del takes no password");
	return 0;
}

/* The user field of the line at P (LEN octets, no newline) is NAME? */
static bool line_is(const char *p, size_t len, const char *name)
{
	size_t n = strlen(name);

	return len > n && p[n] == ':' && memcmp(p, name, n) == 0;
}

int ctl_user_edit(const char *in, size_t n, enum ctl_user_op op, const char *user,
		  const char *hash, char **out, size_t *outlen, char *err, size_t errlen)
{
	size_t cap = n + strlen(user) + (hash ? strlen(hash) : 0) + 4, o = 0;
	char *buf = malloc(cap);
	bool found = false;

	if (buf == NULL)
		return ctl_errf(err, errlen, "out of memory");
	for (size_t off = 0; off < n;) {
		const char *line = in + off, *nl = memchr(line, '\n', n - off);
		size_t ll = nl ? (size_t)(nl - line) : n - off, whole = ll + (nl != NULL);

		off += whole;
		if (!found && line_is(line, ll, user)) {
			found = true;
			if (op == CTL_USER_DEL)
				continue;
			if (op == CTL_USER_PASSWD) {
				size_t ul = strlen(user), hl = strlen(hash);
				const char *rest = memchr(line + ul + 1, ':', ll - ul - 1);
				size_t restl = rest ? (size_t)(line + ll - rest) : 0;

				if (rest == NULL && ll > 0 && line[ll - 1] == '\r')
					rest = line + ll - 1, restl = 1; /* keep a CRLF file CRLF */
				memcpy(buf + o, line, ul + 1);
				o += ul + 1;
				memcpy(buf + o, hash, hl);
				o += hl;
				if (restl > 0) /* memcpy's source may not be NULL, even for 0 octets */
					memcpy(buf + o, rest, restl);
				o += restl;
				buf[o++] = '\n';
				continue;
			}
		}
		memcpy(buf + o, line, whole);
		o += whole;
		if (nl == NULL) /* a last line without its newline gets one */
			buf[o++] = '\n';
	}
	if (op == CTL_USER_ADD) {
		if (found) {
			free(buf);
			return ctl_errf(err, errlen, "user '%s' exists already (passwd changes a password)",
				    user);
		}
		o += (size_t)sprintf(buf + o, "%s:%s\n", user, hash);
	} else if (!found) {
		free(buf);
		return ctl_errf(err, errlen, "no user '%s'", user);
	}
	*out = buf;
	*outlen = o;
	return 0;
}

int ctl_user_hash(const char *scheme, const char *pass, char *out, size_t cap, char *err,
		  size_t errlen)
{
	const char *prefix = scheme_prefix(scheme);
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *cd;
	int rc = 0;

	if (prefix == NULL)
		return ctl_errf(err, errlen, "unknown scheme '%s'", scheme);
	if (crypt_gensalt_rn(prefix, 0, NULL, 0, salt, sizeof(salt)) == NULL)
		return ctl_errf(err, errlen, "crypt_gensalt(%s): %s", prefix, strerror(errno));
	cd = calloc(1, sizeof(*cd));
	if (cd == NULL)
		return ctl_errf(err, errlen, "out of memory");
	if (crypt_rn(pass, salt, cd, sizeof(*cd)) == NULL || cd->output[0] == '*')
		rc = ctl_errf(err, errlen, "crypt(%s) failed", prefix);
	else if (strlen(cd->output) >= cap)
		rc = ctl_errf(err, errlen, "hash too long");
	else
		strcpy(out, cd->output);
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return rc;
}

/* ---- I/O: the password and the file ---- */

/* One line from F into BUF without its newline; -1 at EOF or when too long. */
static int read_line(FILE *f, char *buf, size_t cap)
{
	if (fgets(buf, (int)cap, f) == NULL)
		return -1;
	size_t n = strlen(buf);
	if (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	else if (!feof(f))
		return -1; /* longer than the buffer */
	if (n > 0 && buf[n - 1] == '\r')
		buf[--n] = '\0';
	return 0;
}

/* Asks on the terminal without echo. */
static int ask(FILE *tty, const char *prompt, char *buf, size_t cap)
{
	struct termios old, quiet;
	int fd = fileno(tty), rc;

	fputs(prompt, stderr);
	fflush(stderr);
	if (tcgetattr(fd, &old) != 0)
		return -1;
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	quiet.c_lflag |= ECHONL;
	if (tcsetattr(fd, TCSAFLUSH, &quiet) != 0)
		return -1;
	rc = read_line(tty, buf, cap);
	tcsetattr(fd, TCSAFLUSH, &old);
	return rc;
}

static int get_password(const struct ctl_user_args *a, char *pass, size_t cap)
{
	char again[PASS_MAX + 2];

	if (a->password_stdin || !isatty(STDIN_FILENO)) {
		if (read_line(stdin, pass, cap) != 0) {
			fprintf(stderr, "mxgatectl: user: no password on stdin (or over %d octets)\n",
				PASS_MAX);
			return -1;
		}
	} else {
		FILE *tty = fopen("/dev/tty", "r+");
		int rc;

		if (tty == NULL) {
			fprintf(stderr, "mxgatectl: user: no terminal: use --password-stdin\n");
			return -1;
		}
		rc = ask(tty, "Password: ", pass, cap);
		if (rc == 0)
			rc = ask(tty, "Again: ", again, sizeof(again));
		fclose(tty);
		if (rc != 0) {
			fprintf(stderr, "mxgatectl: user: could not read the password\n");
			return -1;
		}
		if (strcmp(pass, again) != 0) {
			explicit_bzero(again, sizeof(again));
			fprintf(stderr, "mxgatectl: user: the passwords differ\n");
			return -1;
		}
		explicit_bzero(again, sizeof(again));
	}
	if (pass[0] == '\0') {
		fprintf(stderr, "mxgatectl: user: an empty password is not a password\n");
		return -1;
	}
	return 0;
}

/* The whole file; *BUF NULL and 0 octets when it does not exist. */
static int read_file(const char *path, char **buf, size_t *len)
{
	FILE *f = fopen(path, "rb");
	size_t cap = 0;

	*buf = NULL;
	*len = 0;
	if (f == NULL)
		return errno == ENOENT ? 0 : -errno;
	for (;;) {
		if (*len == cap) {
			char *nb;
			cap = cap ? cap * 2 : 65536;
			if (cap > FILE_MAX || (nb = realloc(*buf, cap)) == NULL) {
				fclose(f);
				return -EFBIG;
			}
			*buf = nb;
		}
		size_t got = fread(*buf + *len, 1, cap - *len, f);
		*len += got;
		if (got == 0)
			break;
	}
	int e = ferror(f) ? -EIO : 0;
	fclose(f);
	return e;
}

/* Writes TEXT to a temporary file beside PATH, mode 0600, synced, then renames it over PATH. */
static int replace_file(const char *path, const char *text, size_t n)
{
	char tmp[4096], dir[4096];
	int fd, e = 0;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	fd = mkstemp(tmp);
	if (fd < 0)
		return -errno;
	if (fchmod(fd, 0600) != 0)
		e = -errno;
	for (size_t off = 0; e == 0 && off < n;) {
		ssize_t w = write(fd, text + off, n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			e = -errno;
		else
			off += (size_t)w;
	}
	if (e == 0 && fsync(fd) != 0)
		e = -errno;
	if (close(fd) != 0 && e == 0)
		e = -errno;
	if (e == 0 && rename(tmp, path) != 0)
		e = -errno;
	if (e != 0) {
		unlink(tmp);
		return e;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	fd = open(dirname(dir), O_RDONLY | O_DIRECTORY);
	if (fd >= 0) { /* the rename itself must survive a crash */
		fsync(fd);
		close(fd);
	}
	return 0;
}

int ctl_user_main(int argc, char *const argv[])
{
	struct ctl_user_args a;
	char err[512], pass[PASS_MAX + 2], hash[CRYPT_OUTPUT_SIZE] = "", lockpath[4096];
	char *in = NULL, *out = NULL;
	size_t inlen, outlen;
	int lock = -1, rc = 1, e;

	if (argc >= 1 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0)) {
		fputs(ctl_user_usage, stdout);
		return 0;
	}
	if (ctl_user_args_parse(argc, argv, &a, err, sizeof(err)) != 0) {
		fprintf(stderr, "mxgatectl: user: %s\n%s", err, ctl_user_usage);
		return 2;
	}
	if (a.op != CTL_USER_DEL) {
		if (get_password(&a, pass, sizeof(pass)) != 0)
			return 1;
		e = ctl_user_hash(a.scheme, pass, hash, sizeof(hash), err, sizeof(err));
		explicit_bzero(pass, sizeof(pass));
		if (e != 0) {
			fprintf(stderr, "mxgatectl: user: %s\n", err);
			return 1;
		}
	}
	/* two mxgatectl at once must not lose one's change: a lock beside the file */
	snprintf(lockpath, sizeof(lockpath), "%s.lock", a.file);
	lock = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lock < 0 || flock(lock, LOCK_EX) != 0) {
		fprintf(stderr, "mxgatectl: user: %s: %s\n", lockpath, strerror(errno));
		goto out;
	}
	e = read_file(a.file, &in, &inlen);
	if (e != 0) {
		fprintf(stderr, "mxgatectl: user: %s: %s\n", a.file, strerror(-e));
		goto out;
	}
	if (in == NULL && a.op != CTL_USER_ADD) {
		fprintf(stderr, "mxgatectl: user: %s: no such file\n", a.file);
		goto out;
	}
	if (ctl_user_edit(in ? in : "", inlen, a.op, a.user, hash, &out, &outlen, err,
			  sizeof(err)) != 0) {
		fprintf(stderr, "mxgatectl: user: %s: %s\n", a.file, err);
		goto out;
	}
	e = replace_file(a.file, out, outlen);
	if (e != 0) {
		fprintf(stderr, "mxgatectl: user: %s: %s\n", a.file, strerror(-e));
		goto out;
	}
	printf("%s: user %s %s; run mxgatectl config reload to apply\n", a.file, a.user,
	       a.op == CTL_USER_ADD ? "added" : a.op == CTL_USER_DEL ? "removed" : "updated");
	rc = 0;
out:
	if (lock >= 0)
		close(lock);
	free(in);
	free(out);
	return rc;
}
