/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mxgate-gen --size-dir DIR: message bodies from a folder of files. Every
 * regular file of DIR (not its subfolders, not hidden ones), in name order,
 * becomes one body, read once at start: line ends normalised to CRLF (a bare
 * LF gets its CR; RFC 5322 §2.3, RFC 5321 §2.3.8), a CRLF added at the end
 * when the file has none. Each body keeps its length and content.h hash, so
 * the X-Mxgate-Gen field the sink checks is computed once per file. A file
 * with a line over 998 octets (RFC 5321 §4.5.3.1.6, RFC 5322 §2.1.1), a
 * NUL, a bare CR, or no octet at all is refused with its name.
 */
#ifndef MX_GEN_FILES_H
#define MX_GEN_FILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GEN_FILES_MAX 65536		 /* bodies per folder */
#define GEN_FILE_MAX (64u << 20)	 /* octets per file, as read */
#define GEN_FILE_LINE_MAX 998		 /* octets per line, CRLF excluded */

struct gen_file {
	uint8_t *data; /* normalised body */
	size_t len;
	uint64_t hash; /* gen_hash of data */
	bool eightbit; /* an octet over 127: BODY=8BITMIME */
};

struct gen_files {
	struct gen_file *f;
	unsigned n;
	size_t min_len, max_len;
};

/*
 * Loads every regular file of DIR into S. Returns 0, or -errno with a line
 * for the user in ERR (the file and what is wrong). gen_files_free() frees
 * S, also after a failure.
 */
int gen_files_load(struct gen_files *s, const char *dir, char *err, size_t errlen);
void gen_files_free(struct gen_files *s);

/*
 * Normalises one body (exposed for the tests): IN's N octets into OUT (at
 * least 2 * N + 2 octets). Returns the length, or -EINVAL with what is
 * wrong in WHY.
 */
long gen_file_normalise(const uint8_t *in, size_t n, uint8_t *out, const char **why);

#endif
