/* SPDX-License-Identifier: BSD-3-Clause */
/* Message bodies from a folder (files.h). */
#include "dataplane/gen/files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dataplane/gen/content.h"

long gen_file_normalise(const uint8_t *in, size_t n, uint8_t *out, const char **why)
{
	size_t o = 0, line = 0;

	if (n == 0) {
		*why = "is empty (a body needs at least one line)";
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		uint8_t c = in[i];
		if (c == 0) {
			*why = "holds a NUL octet";
			return -EINVAL;
		}
		if (c == '\r') {
			if (i + 1 == n || in[i + 1] != '\n') {
				*why = "holds a CR not followed by LF";
				return -EINVAL;
			}
			continue; /* the LF writes the pair */
		}
		if (c == '\n') {
			out[o++] = '\r';
			out[o++] = '\n';
			line = 0;
			continue;
		}
		if (++line > GEN_FILE_LINE_MAX) {
			*why = "has a line longer than 998 octets (RFC 5321 §4.5.3.1.6)";
			return -EINVAL;
		}
		out[o++] = c;
	}
	if (line > 0) { /* no line end at the end */
		out[o++] = '\r';
		out[o++] = '\n';
	}
	return (long)o;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads PATH whole (at most GEN_FILE_MAX octets). Returns 0 or -errno. */
static int read_whole(int dfd, const char *name, uint8_t **buf, size_t *len)
{
	struct stat st;
	int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
	int rc = 0;

	*buf = NULL;
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		goto out;
	}
	if ((uint64_t)st.st_size > GEN_FILE_MAX) {
		rc = -EFBIG;
		goto out;
	}
	*buf = malloc((size_t)st.st_size + 1);
	if (!*buf) {
		rc = -ENOMEM;
		goto out;
	}
	*len = 0;
	while (*len < (size_t)st.st_size) {
		ssize_t r = read(fd, *buf + *len, (size_t)st.st_size - *len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			rc = r < 0 ? -errno : -EIO; /* shrank while read */
			break;
		}
		*len += (size_t)r;
	}
out:
	close(fd);
	return rc;
}

int gen_files_load(struct gen_files *s, const char *dir, char *err, size_t errlen)
{
	char **names = NULL;
	unsigned nn = 0, cap = 0;
	struct dirent *e;
	int rc = 0;

	*s = (struct gen_files){0};
	DIR *d = opendir(dir);
	if (!d) {
		rc = -errno;
		snprintf(err, errlen, "--size-dir %s: %s", dir, strerror(-rc));
		return rc;
	}
	while ((e = readdir(d)) != NULL) {
		struct stat st;
		if (e->d_name[0] == '.')
			continue;
		if (fstatat(dirfd(d), e->d_name, &st, 0) != 0 || !S_ISREG(st.st_mode))
			continue;
		if (nn == GEN_FILES_MAX) {
			snprintf(err, errlen, "--size-dir %s: more than %u files", dir, GEN_FILES_MAX);
			rc = -E2BIG;
			goto out;
		}
		if (nn == cap) {
			cap = cap ? cap * 2 : 64;
			char **nb = realloc(names, cap * sizeof(*names));
			if (!nb) {
				rc = -ENOMEM;
				goto oom;
			}
			names = nb;
		}
		names[nn] = strdup(e->d_name);
		if (!names[nn]) {
			rc = -ENOMEM;
			goto oom;
		}
		nn++;
	}
	if (nn == 0) {
		snprintf(err, errlen, "--size-dir %s: no regular files in it", dir);
		rc = -ENOENT;
		goto out;
	}
	qsort(names, nn, sizeof(*names), cmp_names);
	s->f = calloc(nn, sizeof(*s->f));
	if (!s->f) {
		rc = -ENOMEM;
		goto oom;
	}
	for (unsigned i = 0; i < nn; i++) {
		uint8_t *raw;
		size_t len = 0;
		const char *why = NULL;

		rc = read_whole(dirfd(d), names[i], &raw, &len);
		if (rc != 0) {
			snprintf(err, errlen, "--size-dir: %s/%s: %s", dir, names[i],
				 rc == -EFBIG ? "larger than 64 MiB" : strerror(-rc));
			free(raw);
			goto out;
		}
		struct gen_file *f = &s->f[s->n];
		f->data = malloc(2 * len + 2);
		if (!f->data) {
			free(raw);
			rc = -ENOMEM;
			goto oom;
		}
		long n = gen_file_normalise(raw, len, f->data, &why);
		free(raw);
		s->n++;
		if (n < 0) {
			snprintf(err, errlen, "--size-dir: %s/%s %s", dir, names[i], why);
			rc = (int)n;
			goto out;
		}
		f->len = (size_t)n;
		struct gen_hash h;
		gen_hash_init(&h);
		gen_hash_update(&h, f->data, f->len);
		f->hash = gen_hash_final(&h);
		for (size_t k = 0; k < f->len && !f->eightbit; k++)
			f->eightbit = f->data[k] > 127;
		if (s->n == 1 || f->len < s->min_len)
			s->min_len = f->len;
		if (f->len > s->max_len)
			s->max_len = f->len;
	}
	goto out;
oom:
	snprintf(err, errlen, "--size-dir %s: out of memory", dir);
out:
	for (unsigned i = 0; i < nn; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return rc;
}

void gen_files_free(struct gen_files *s)
{
	if (!s->f)
		return;
	for (unsigned i = 0; i < s->n; i++)
		free(s->f[i].data);
	free(s->f);
	*s = (struct gen_files){0};
}
