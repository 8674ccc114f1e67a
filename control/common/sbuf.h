/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A growable text buffer for the control plane's output (Prometheus pages,
 * tables, reply lines). All-zero is an empty buffer. A failed allocation
 * sticks: later appends do nothing and sbuf_failed() says so once, at the end.
 */
#ifndef MX_CTL_SBUF_H
#define MX_CTL_SBUF_H

#include <stdbool.h>
#include <stddef.h>

struct sbuf {
	char *data; /* NUL-terminated while len > 0; NULL when empty */
	size_t len;
	size_t cap;
	bool oom;
};

/* Appends formatted text. */
void sbuf_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends LEN bytes of S. */
void sbuf_add(struct sbuf *b, const char *s, size_t len);

/* Appends S with every byte outside printable ASCII, and QUOTE and '\\', escaped as \\xNN, \\", \\\\. */
void sbuf_add_escaped(struct sbuf *b, const char *s, char quote);

/* True when an append ran out of memory: the content is incomplete. */
static inline bool sbuf_failed(const struct sbuf *b)
{
	return b->oom;
}

/* The text ("" when empty); valid until the next append. */
static inline const char *sbuf_str(const struct sbuf *b)
{
	return b->data != NULL ? b->data : "";
}

/* Gives the caller the text (free() it) and leaves B empty; NULL when empty or failed. */
char *sbuf_take(struct sbuf *b);

/* Frees the text; B is empty again. */
void sbuf_free(struct sbuf *b);

#endif
