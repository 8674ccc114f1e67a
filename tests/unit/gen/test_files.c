/* SPDX-License-Identifier: BSD-3-Clause */
/* mxgate-gen --size-dir: bodies from files, normalised, hashed as the sink checks them. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dataplane/gen/content.h"
#include "dataplane/gen/files.h"

static long norm(const char *in, char *out, const char **why)
{
	return gen_file_normalise((const uint8_t *)in, strlen(in), (uint8_t *)out, why);
}

Test(gen_files, line_ends_become_crlf_and_a_last_line_gets_one)
{
	char out[64];
	const char *why = NULL;

	long n = norm("a\nb\r\nc", out, &why);
	cr_assert_eq(n, 9);
	cr_assert_arr_eq(out, "a\r\nb\r\nc\r\n", 9);
	n = norm("x\r\n", out, &why);
	cr_assert_eq(n, 3);
	cr_assert_arr_eq(out, "x\r\n", 3);
	n = norm("\n\n", out, &why); /* empty lines stay lines */
	cr_assert_eq(n, 4);
	cr_assert_arr_eq(out, "\r\n\r\n", 4);
}

Test(gen_files, bad_bodies_are_refused_with_a_reason)
{
	char out[4096];
	const char *why = NULL;

	cr_assert_eq(gen_file_normalise((const uint8_t *)"", 0, (uint8_t *)out, &why), -EINVAL);
	cr_assert(why && strstr(why, "empty"));
	why = NULL;
	cr_assert_eq(gen_file_normalise((const uint8_t *)"a\0b\n", 4, (uint8_t *)out, &why),
		     -EINVAL);
	cr_assert(why && strstr(why, "NUL"));
	why = NULL;
	cr_assert_eq(norm("a\rb\n", out, &why), -EINVAL);
	cr_assert(why && strstr(why, "CR"));
	why = NULL;
	cr_assert_eq(norm("a\r", out, &why), -EINVAL); /* a CR at the very end */

	/* RFC 5321 §4.5.3.1.6: 998 octets before the CRLF, not one more */
	char line[1001];
	memset(line, 'x', 998);
	line[998] = '\n';
	line[999] = '\0';
	cr_assert_eq(norm(line, out, &why), 1000);
	memset(line, 'x', 999);
	line[999] = '\n';
	line[1000] = '\0';
	why = NULL;
	cr_assert_eq(norm(line, out, &why), -EINVAL);
	cr_assert(why && strstr(why, "998"));
}

static char dir[64];

static void put(const char *name, const void *p, size_t n)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, p, n), (ssize_t)n);
	close(fd);
}

static void mkdir_tmp(void)
{
	strcpy(dir, "/tmp/mxgate-gen-files-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void rm_tmp(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

/* What the sink does with a message made of this body: header, then the body. */
static bool sink_accepts(const struct gen_file *f, uint64_t token)
{
	struct gen_body_plan plan = {.len = f->len, .hash = f->hash};
	char hdr[GEN_HEADER_MAX];
	struct gen_scan sc;

	size_t hl = gen_header(hdr, sizeof(hdr), 0x1234, token, "a@example.org", "b@example.com",
			       &plan);
	cr_assert_gt(hl, 0);
	gen_scan_init(&sc);
	gen_scan_feed(&sc, (const uint8_t *)hdr, hl);
	for (size_t off = 0; off < f->len; off += 7) /* in pieces, as TCP delivers it */
		gen_scan_feed(&sc, f->data + off, f->len - off < 7 ? f->len - off : 7);
	return gen_scan_ok(&sc) && sc.token == token;
}

Test(gen_files, a_folder_loads_in_name_order_and_the_sink_check_agrees)
{
	struct gen_files s;
	char err[256] = "";

	mkdir_tmp();
	put("b.txt", "second\n.dot line\n", 17);
	put("a.txt", "first\r\nline", 11);
	put("c.bin", "caf\xc3\xa9\n", 6);
	put(".hidden", "x\n", 2);
	char sub[128];
	snprintf(sub, sizeof(sub), "%s/sub", dir);
	cr_assert_eq(mkdir(sub, 0755), 0);

	cr_assert_eq(gen_files_load(&s, dir, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(s.n, 3);
	cr_assert_eq(s.f[0].len, 13);
	cr_assert_arr_eq(s.f[0].data, "first\r\nline\r\n", 13);
	cr_assert_eq(s.f[1].len, 19);
	cr_assert_arr_eq(s.f[1].data, "second\r\n.dot line\r\n", 19);
	cr_assert_eq(s.f[2].len, 7);
	cr_assert(!s.f[0].eightbit && !s.f[1].eightbit && s.f[2].eightbit);
	cr_assert_eq(s.min_len, 7);
	cr_assert_eq(s.max_len, 19);
	for (unsigned i = 0; i < s.n; i++)
		cr_assert(sink_accepts(&s.f[i], 40 + i), "file %u", i);
	/* and a body that is not the one hashed fails the check */
	s.f[1].data[3] ^= 1;
	cr_assert(!sink_accepts(&s.f[1], 41));
	gen_files_free(&s);
	rm_tmp();
}

Test(gen_files, a_bad_folder_or_file_is_named_in_the_error)
{
	struct gen_files s;
	char err[256] = "";

	cr_assert_eq(gen_files_load(&s, "/nonexistent-mxgate-dir", err, sizeof(err)), -ENOENT);
	cr_assert(strstr(err, "/nonexistent-mxgate-dir"), "%s", err);
	gen_files_free(&s);

	mkdir_tmp();
	cr_assert_eq(gen_files_load(&s, dir, err, sizeof(err)), -ENOENT);
	cr_assert(strstr(err, "no regular files"), "%s", err);
	gen_files_free(&s);

	put("good", "ok\n", 3);
	put("zbad", "bare\rcr\n", 8);
	cr_assert_eq(gen_files_load(&s, dir, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "zbad") && strstr(err, "CR"), "%s", err);
	gen_files_free(&s);
	rm_tmp();
}
