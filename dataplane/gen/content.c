/* SPDX-License-Identifier: BSD-3-Clause */
/* mxgate-gen's message content and its check (content.h). */
#include "dataplane/gen/content.h"

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define K1 0x9e3779b97f4a7c15ull

static inline uint64_t mix(uint64_t h, uint64_t w)
{
	h ^= w;
	h *= K1;
	return h ^ (h >> 32);
}

void gen_hash_init(struct gen_hash *s)
{
	*s = (struct gen_hash){.h = 0x6d78676174652d67ull};
}

void gen_hash_update(struct gen_hash *s, const uint8_t *p, size_t n)
{
	s->len += n;
	while (n && s->nc) {
		s->carry |= (uint64_t)*p++ << (8 * s->nc);
		n--;
		if (++s->nc == 8) {
			s->h = mix(s->h, s->carry);
			s->carry = 0;
			s->nc = 0;
		}
	}
	for (; n >= 8; p += 8, n -= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		s->h = mix(s->h, le64toh(w));
	}
	while (n--)
		s->carry |= (uint64_t)*p++ << (8 * s->nc++);
}

uint64_t gen_hash_final(const struct gen_hash *s)
{
	uint64_t h = s->h;

	if (s->nc)
		h = mix(h, s->carry);
	h ^= s->len;
	h ^= h >> 33; /* murmur3's finaliser */
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	return h ^ (h >> 33);
}

/* Line J: letters shifted by J, so lines out of order or repeated change the hash. */
static void fill_line(uint8_t *l, unsigned j)
{
	for (unsigned i = 0; i < GEN_LINE - 2; i++)
		l[i] = (uint8_t)('a' + (i + j) % 26);
	l[GEN_LINE - 2] = '\r';
	l[GEN_LINE - 1] = '\n';
}

int gen_body_init(struct gen_body *b, size_t max_body)
{
	*b = (struct gen_body){0};
	b->max_lines = (unsigned)(max_body / GEN_LINE + 1);
	b->lines = malloc((size_t)b->max_lines * GEN_LINE);
	b->at = malloc(((size_t)b->max_lines + 1) * sizeof(*b->at));
	if (!b->lines || !b->at)
		return -ENOMEM;
	gen_hash_init(&b->at[0]);
	for (unsigned j = 0; j < b->max_lines; j++) {
		fill_line(b->lines + (size_t)j * GEN_LINE, j);
		b->at[j + 1] = b->at[j];
		gen_hash_update(&b->at[j + 1], b->lines + (size_t)j * GEN_LINE, GEN_LINE);
	}
	for (unsigned i = 0; i < GEN_LINE - 2; i++)
		b->last[i] = (uint8_t)('A' + i % 26);
	b->last[GEN_LINE - 2] = '\r';
	b->last[GEN_LINE - 1] = '\n';
	return 0;
}

void gen_body_free(struct gen_body *b)
{
	free(b->lines);
	free(b->at);
	*b = (struct gen_body){0};
}

void gen_body_plan(const struct gen_body *b, size_t len, struct gen_body_plan *p)
{
	struct gen_hash h;

	if (len < 2)
		len = 2;
	p->k = (unsigned)((len - 2) / GEN_LINE);
	if (p->k > b->max_lines)
		p->k = b->max_lines;
	p->r = (unsigned)(len - (size_t)p->k * GEN_LINE);
	if (p->r > GEN_LINE) /* only when the pattern is too short: cut the body */
		p->r = GEN_LINE;
	p->len = (size_t)p->k * GEN_LINE + p->r;
	h = b->at[p->k];
	gen_hash_update(&h, b->last + GEN_LINE - p->r, p->r);
	p->hash = gen_hash_final(&h);
}

size_t gen_header(char *buf, size_t cap, uint64_t run, uint64_t n, const char *from,
		  const char *to, const struct gen_body_plan *p)
{
	int len = snprintf(buf, cap,
			   "From: <%s>\r\n"
			   "To: <%s>\r\n"
			   "Subject: mxgate-gen %016" PRIx64 " message %" PRIu64 "\r\n"
			   "Message-ID: <%016" PRIx64 ".%" PRIu64 "@mxgate-gen>\r\n"
			   GEN_TOKEN_FIELD " %016" PRIx64 "-%" PRIu64 " %zu %016" PRIx64 "\r\n"
			   "\r\n",
			   from, to, run, n, run, n, run, n, p->len, p->hash);
	return len > 0 && (size_t)len < cap ? (size_t)len : 0;
}

void gen_scan_init(struct gen_scan *s)
{
	memset(s, 0, offsetof(struct gen_scan, line));
	s->run = s->token = s->want_len = s->want_hash = 0;
	gen_hash_init(&s->h);
}

static void header_line(struct gen_scan *s)
{
	const size_t fl = sizeof(GEN_TOKEN_FIELD) - 1;
	uint64_t run, token, hash;
	size_t len;

	if (s->line_len <= 2) { /* CRLF alone (or LF): the body starts */
		s->in_body = true;
		return;
	}
	if (s->have_token || s->line_len < fl || strncasecmp(s->line, GEN_TOKEN_FIELD, fl) != 0)
		return;
	s->line[s->line_len < sizeof(s->line) ? s->line_len : sizeof(s->line) - 1] = '\0';
	if (sscanf(s->line + fl, " %16" SCNx64 "-%" SCNu64 " %zu %16" SCNx64, &run, &token, &len,
		   &hash) == 4) {
		s->have_token = true;
		s->run = run;
		s->token = token;
		s->want_len = len;
		s->want_hash = hash;
	}
}

void gen_scan_feed(struct gen_scan *s, const uint8_t *p, size_t n)
{
	while (n && !s->in_body) {
		const uint8_t *nl = memchr(p, '\n', n);
		size_t take = nl ? (size_t)(nl - p) + 1 : n;
		size_t room = sizeof(s->line) - 1 - (s->line_len < sizeof(s->line) - 1 ? s->line_len : sizeof(s->line) - 1);

		memcpy(s->line + (sizeof(s->line) - 1 - room), p, take < room ? take : room);
		s->line_len += (unsigned)take;
		p += take;
		n -= take;
		if (nl) {
			header_line(s);
			s->line_len = 0;
		}
	}
	if (n)
		gen_hash_update(&s->h, p, n);
}

bool gen_scan_ok(const struct gen_scan *s)
{
	return s->have_token && s->in_body && s->h.len == s->want_len &&
	       gen_hash_final(&s->h) == s->want_hash;
}
