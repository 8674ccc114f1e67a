/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What mxgate-gen's SMTP client sends and its sink checks. Each message
 * carries one header field
 *     X-Mxgate-Gen: <run id, 16 hex digits>-<n> <body octets> <body hash, 16 hex digits>
 * where n is the message's token (unique in the run), and a body of 77-octet
 * lines of a known pattern that ends with a shorter line. The sink hashes the
 * body it receives (whatever the gateway added above it in the header) and
 * compares. Bodies are prefixes of one pattern, so the client builds none:
 * the hash state after every whole line is computed once, and a message's
 * hash costs only its last line.
 */
#ifndef MX_GEN_CONTENT_H
#define MX_GEN_CONTENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GEN_LINE 79 /* a body line: 77 characters and CRLF */
#define GEN_HEADER_MAX 1024
#define GEN_TOKEN_FIELD "X-Mxgate-Gen:"

/* A streaming 64-bit hash (not cryptographic): any chunking gives the same result. */
struct gen_hash {
	uint64_t h, carry, len;
	unsigned nc; /* octets in carry */
};

void gen_hash_init(struct gen_hash *s);
void gen_hash_update(struct gen_hash *s, const uint8_t *p, size_t n);
uint64_t gen_hash_final(const struct gen_hash *s);

/* The body pattern, shared read-only by a worker's sessions. */
struct gen_body {
	uint8_t *lines;        /* max_lines whole lines */
	unsigned max_lines;
	struct gen_hash *at;   /* at[k]: the hash state after k whole lines */
	uint8_t last[GEN_LINE]; /* the last line's octets are a suffix of this one */
};

/*
 * Makes the pattern for bodies of up to MAX_BODY octets. Returns 0 or
 * -ENOMEM; gen_body_free() frees it (also after a failure).
 */
int gen_body_init(struct gen_body *b, size_t max_body);
void gen_body_free(struct gen_body *b);

/* How a body of a given size is cut: K whole lines from b->lines, then the last R octets of b->last. */
struct gen_body_plan {
	unsigned k, r; /* r: 2..GEN_LINE */
	size_t len;    /* k * GEN_LINE + r */
	uint64_t hash;
};

/* Plans a body of LEN octets (at least 2; at most the max_body given to init). */
void gen_body_plan(const struct gen_body *b, size_t len, struct gen_body_plan *p);

/*
 * Writes the header section of message N of run RUN (From, To, Subject,
 * Message-ID, X-Mxgate-Gen, the empty line) into BUF. Returns its length,
 * or 0 when it does not fit in CAP.
 */
size_t gen_header(char *buf, size_t cap, uint64_t run, uint64_t n, const char *from,
		  const char *to, const struct gen_body_plan *p);

/* The sink's view of one message as its content streams in. All-zero is not valid: use init. */
struct gen_scan {
	bool in_body;
	bool have_token; /* an X-Mxgate-Gen field was found and parsed */
	unsigned line_len;
	char line[128]; /* the header line being read (longer lines are cut: not ours) */
	uint64_t run, token, want_len, want_hash;
	struct gen_hash h;
};

void gen_scan_init(struct gen_scan *s);
void gen_scan_feed(struct gen_scan *s, const uint8_t *p, size_t n);
/* The body matched its field: length and hash. False also when there was no field. */
bool gen_scan_ok(const struct gen_scan *s);

#endif
