/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DATA / BDAT content scanner. One octet-driven state machine over the line
 * grammar; octets are handed on as runs (slices of the input) that break
 * only where a stuffing dot is dropped or a normalising CR/LF is inserted.
 *
 * Held state is tiny and never needs the input again: a '.' at the start of
 * a line is held until we know whether it is a stuffing dot or the start of
 * the end-of-data line, and so is a CR after it. A CR inside a line is
 * emitted with its run straight away: whether it turns out bare or not, what
 * follows it can be decided without it.
 */
#include <string.h>

#include "dataplane/smtp/data.h"

enum {
	ST_BOL,	   /* at the start of a line: after CRLF, or at the start of the data */
	ST_TEXT,   /* inside a line (also: right after a normalised line end) */
	ST_CR,	   /* inside a line, the last octet was CR (already in the run) */
	ST_DOT,	   /* DOT mode: a '.' at the start of a line, held */
	ST_DOT_CR, /* DOT mode: ".\r" at the start of a line, both held */
	ST_DONE,
};

static const uint8_t crlf[2] = { '\r', '\n' };
static const char received_name[] = "received:";

void smtp_data_init(struct smtp_data_scan *d, enum smtp_data_mode mode, unsigned max_line,
		    bool normalize)
{
	memset(d, 0, sizeof(*d));
	d->mode = mode;
	d->st = ST_BOL;
	d->normalize = normalize;
	d->max_line = (max_line && max_line < 3) ? 3 : max_line; /* room for one octet and CRLF */
	d->in_header = true;
}

static inline void out(struct smtp_data_scan *d, const uint8_t *p, size_t n, smtp_data_emit_fn emit,
		       void *arg)
{
	if (n == 0 || d->discard)
		return;
	d->emitted += n;
	emit(arg, p, n);
}

/*
 * A violation at P[AT]: what came before it goes out first, so the content
 * handed on is the same however the input was split; then nothing more.
 */
static void violation(struct smtp_data_scan *d, uint8_t flag, const uint8_t *p, size_t *run,
		      size_t at, smtp_data_emit_fn emit, void *arg)
{
	if (at > *run)
		out(d, p + *run, at - *run, emit, arg);
	*run = at;
	d->flags |= flag;
	d->discard = true;
}

/* A new (output) line begins. */
static inline void line_start(struct smtp_data_scan *d)
{
	d->line_len = 0;
	d->hdr_match = d->in_header ? 0 : 0xff;
}

/* A line ended (with a real or a normalised CRLF). */
static inline void line_end(struct smtp_data_scan *d)
{
	if (d->in_header && d->line_len == 0)
		d->in_header = false;
	line_start(d);
}

/* Counts "Received:" at the start of header lines (RFC 5321 §6.3 loop detection). */
static inline void header_octet(struct smtp_data_scan *d, uint8_t c)
{
	if (d->hdr_match == 0xff)
		return;
	if (c >= 'A' && c <= 'Z')
		c += 'a' - 'A';
	if (c == (uint8_t)received_name[d->hdr_match]) {
		if (++d->hdr_match == sizeof(received_name) - 1) {
			d->received++;
			d->hdr_match = 0xff;
		}
	} else {
		d->hdr_match = 0xff;
	}
}

/* Consumes line content from P[I] up to the next CR, LF or NUL; returns where it stopped. */
static inline size_t text_run(struct smtp_data_scan *d, const uint8_t *p, size_t i, size_t n,
			      size_t *run, smtp_data_emit_fn emit, void *arg)
{
	size_t s = i;
	if (d->in_header && d->hdr_match != 0xff) {
		while (i < n && p[i] != '\r' && p[i] != '\n' && p[i] != 0)
			header_octet(d, p[i++]);
	} else {
		while (i < n && p[i] != '\r' && p[i] != '\n' && p[i] != 0)
			i++;
	}
	uint64_t before = d->line_len;
	d->line_len += i - s;
	if (d->max_line && d->line_len > d->max_line - 2u && d->mode != SMTP_DATA_BINARY &&
	    !(d->flags & SMTP_DATA_LONG_LINE)) {
		/* the first octet past the limit is the violation */
		uint64_t allowed = before < d->max_line - 2u ? d->max_line - 2u - before : 0;
		violation(d, SMTP_DATA_LONG_LINE, p, run, s + (size_t)allowed, emit, arg);
	}
	return i;
}

size_t smtp_data_scan(struct smtp_data_scan *d, const uint8_t *p, size_t n, smtp_data_emit_fn emit,
		      void *arg)
{
	size_t i = 0, run = 0; /* p[run..i) is content not handed on yet */
	const bool dot = d->mode == SMTP_DATA_DOT;
	const bool binary = d->mode == SMTP_DATA_BINARY;

	if (d->done)
		return 0;
	if (binary && !d->in_header) {
		out(d, p, n, emit, arg);
		return n;
	}
	while (i < n) {
		uint8_t c = p[i];
		switch (d->st) {
		case ST_BOL:
			if (c == '.' && dot) {
				out(d, p + run, i - run, emit, arg);
				run = ++i;
				d->st = ST_DOT;
				continue;
			}
			line_start(d);
			d->st = ST_TEXT;
			__attribute__((fallthrough)); /* c is the first octet of the line */
		case ST_TEXT:
			i = text_run(d, p, i, n, &run, emit, arg);
			if (i == n)
				break;
			if (p[i] == '\r') {
				d->st = ST_CR;
				i++;
				continue;
			}
			if (p[i] == 0) {
				if (!binary)
					violation(d, SMTP_DATA_NUL, p, &run, i, emit, arg);
				d->line_len++;
				d->hdr_match = 0xff;
				i++;
				continue;
			}
			/* a bare LF */
			if (binary) {
				i++;
				continue;
			}
			if (!d->normalize) {
				violation(d, SMTP_DATA_BARE_LF, p, &run, i, emit, arg);
				i++;
				continue;
			}
			d->flags |= SMTP_DATA_NORMALIZED;
			out(d, p + run, i - run, emit, arg);
			out(d, crlf, 1, emit, arg);
			run = i++; /* the LF goes out with the next run */
			line_end(d);
			continue;
		case ST_CR:
			if (c == '\n') {
				i++;
				line_end(d);
				d->st = ST_BOL;
				if (binary && !d->in_header) {
					out(d, p + run, n - run, emit, arg);
					return n;
				}
				continue;
			}
			/* the CR before c was bare; c is looked at again in ST_TEXT */
			d->st = ST_TEXT;
			if (binary)
				continue;
			if (!d->normalize) {
				violation(d, SMTP_DATA_BARE_CR, p, &run, i, emit, arg);
				continue;
			}
			d->flags |= SMTP_DATA_NORMALIZED;
			out(d, p + run, i - run, emit, arg);
			out(d, crlf + 1, 1, emit, arg);
			run = i;
			line_end(d);
			continue;
		case ST_DOT:
			if (c == '\r') {
				run = ++i; /* hold the CR too */
				d->st = ST_DOT_CR;
				continue;
			}
			/* a stuffing dot (already dropped): the line starts with c */
			line_start(d);
			d->st = ST_TEXT;
			continue;
		case ST_DOT_CR:
			if (c == '\n') {
				d->st = ST_DONE;
				d->done = true;
				return i + 1;
			}
			/* ".\r" then not LF: the dot was stuffing, the CR is bare */
			line_start(d);
			d->st = ST_TEXT;
			if (!d->normalize) {
				violation(d, SMTP_DATA_BARE_CR, p, &run, i, emit, arg);
				continue;
			}
			d->flags |= SMTP_DATA_NORMALIZED;
			out(d, crlf, 2, emit, arg);
			line_end(d);
			continue;
		default:
			return i;
		}
	}
	out(d, p + run, n - run, emit, arg);
	return n;
}

void smtp_data_end(struct smtp_data_scan *d, smtp_data_emit_fn emit, void *arg)
{
	if (d->st != ST_CR || d->mode == SMTP_DATA_BINARY)
		return;
	d->st = ST_TEXT;
	if (!d->normalize) {
		size_t run = 0;
		violation(d, SMTP_DATA_BARE_CR, NULL, &run, 0, emit, arg);
		return;
	}
	d->flags |= SMTP_DATA_NORMALIZED;
	out(d, crlf + 1, 1, emit, arg);
}
