/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Where every key sits in the config file. libcyaml loads values but forgets
 * positions, so one libyaml pass records "key.path[i].key -> line:column" for
 * the checks that run after loading, and catches what libcyaml would report
 * poorly: syntax errors, duplicate keys, aliases, extra documents.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "control/config/config_priv.h"

/* Deeper than any schema we have; stops hostile input from growing the stack without end. */
#define IDX_MAX_DEPTH 32

struct idx_frame {
	enum cfg_node_kind kind; /* CFG_NODE_MAPPING or CFG_NODE_SEQUENCE */
	size_t base;		 /* path length of the container itself */
	unsigned next;		 /* sequence: index of the next entry */
	bool want_key;		 /* mapping: the next node is a key */
	bool skip;		 /* inside a duplicate key's value: walked, not indexed */
	int node;		 /* the container's own node */
	int pending;		 /* mapping: node of the key whose value comes next, or -1 */
};

struct idx_walk {
	struct cfg_ctx *x;
	const uint8_t *data;
	size_t len;
	char *path; /* the path being built; always NUL-terminated */
	size_t path_len;
	size_t path_cap;
	struct idx_frame stack[IDX_MAX_DEPTH];
	unsigned depth;
	bool failed; /* an error was reported; finish the walk to report the others */
};

static struct cfg_pos mark_pos(const yaml_mark_t *m)
{
	return (struct cfg_pos){ .line = (unsigned)m->line + 1, .col = (unsigned)m->column + 1 };
}

/* libyaml's reader errors carry a byte offset, not a mark. */
static struct cfg_pos offset_pos(const uint8_t *data, size_t len, size_t off)
{
	struct cfg_pos p = { .line = 1, .col = 1 };

	for (size_t i = 0; i < off && i < len; i++) {
		if (data[i] == '\n') {
			p.line++;
			p.col = 1;
		} else if ((data[i] & 0xc0) != 0x80) {
			p.col++; /* count characters, not UTF-8 continuation bytes */
		}
	}
	return p;
}

static const char *shown_path(const char *path)
{
	return path[0] != '\0' ? path : CFG_PATH_TOP;
}

static int path_put(struct idx_walk *w, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(w->path + w->path_len, w->path_cap - w->path_len, fmt, ap);
		va_end(ap);
		if (n < 0)
			return -1;
		if (w->path_len + (size_t)n < w->path_cap)
			break;

		size_t cap = (w->path_len + (size_t)n + 1) * 2;
		char *p = realloc(w->path, cap);

		if (p == NULL) {
			w->x->oom = true;
			return -1;
		}
		w->path = p;
		w->path_cap = cap;
	}
	w->path_len += (size_t)n;
	return 0;
}

static void path_cut(struct idx_walk *w, size_t len)
{
	w->path_len = len;
	w->path[len] = '\0';
}

static uint32_t path_hash(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	while (*s != '\0')
		h = (h ^ (uint8_t)*s++) * 16777619u;
	return h;
}

static void slot_put(unsigned *slots, unsigned n_slots, const char *path, unsigned i)
{
	unsigned s = path_hash(path) & (n_slots - 1);

	while (slots[s] != 0)
		s = (s + 1) & (n_slots - 1);
	slots[s] = i + 1;
}

/* Keeps the hash at most half full so lookups stay short. */
static int slots_grow(struct cfg_ctx *x)
{
	unsigned n = x->n_slots != 0 ? x->n_slots * 2 : 64;
	unsigned *slots = calloc(n, sizeof(*slots));

	if (slots == NULL)
		return -1;
	for (unsigned i = 0; i < x->n_nodes; i++)
		slot_put(slots, n, x->nodes[i].path, i);
	free(x->slots);
	x->slots = slots;
	x->n_slots = n;
	return 0;
}

/* Appends a node for the current path, NAME_OFF bytes into it the key's name (or -1);
 * returns its index or -1. */
static int node_add(struct idx_walk *w, struct cfg_pos key, long name_off)
{
	struct cfg_ctx *x = w->x;

	if ((x->n_nodes + 1) * 2 > x->n_slots && slots_grow(x) != 0)
		goto fail;

	if (x->n_nodes == x->cap_nodes) {
		unsigned cap = x->cap_nodes != 0 ? x->cap_nodes * 2 : 32;
		struct cfg_node *n = realloc(x->nodes, cap * sizeof(*n));

		if (n == NULL)
			goto fail;
		x->nodes = n;
		x->cap_nodes = cap;
	}
	struct cfg_node *n = &x->nodes[x->n_nodes];

	*n = (struct cfg_node){ .key = key, .value = key, .parent = -1 };
	n->path = strdup(w->path);
	if (n->path == NULL)
		goto fail;
	if (name_off >= 0)
		n->name = n->path + name_off;
	if (w->depth != 0)
		n->parent = w->stack[w->depth - 1].node;
	slot_put(x->slots, x->n_slots, n->path, x->n_nodes);
	return (int)x->n_nodes++;
fail:
	x->oom = true;
	return -1;
}

static bool scalar_is_null(const yaml_event_t *ev)
{
	const char *v = (const char *)ev->data.scalar.value;

	if (ev->type != YAML_SCALAR_EVENT || ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	return v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
	       strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

/* The value (or entry) at the current path is complete: back to the container. */
static void value_done(struct idx_walk *w)
{
	struct idx_frame *f = &w->stack[w->depth - 1];

	path_cut(w, f->base);
	if (f->kind == CFG_NODE_MAPPING) {
		f->want_key = true;
		f->pending = -1;
	} else {
		f->next++;
	}
}

static int push(struct idx_walk *w, enum cfg_node_kind kind, const yaml_event_t *ev, int node,
		bool skip)
{
	if (w->depth == IDX_MAX_DEPTH) {
		cfg_error(w->x, mark_pos(&ev->start_mark), shown_path(w->path),
			  "nested more than %d levels deep", IDX_MAX_DEPTH);
		return -1;
	}
	w->stack[w->depth++] = (struct idx_frame){
		.kind = kind,
		.base = w->path_len,
		.want_key = true,
		.skip = skip,
		.pending = -1,
		.node = node,
	};
	return 0;
}

/* A mapping key: record it, or report it as a duplicate. */
static int on_key(struct idx_walk *w, struct idx_frame *f, const yaml_event_t *ev)
{
	struct cfg_pos pos = mark_pos(&ev->start_mark);
	const char *key = (const char *)ev->data.scalar.value;
	const struct cfg_node *first;
	long name_off = (long)f->base + (f->base != 0);

	if (path_put(w, f->base != 0 ? ".%s" : "%s", key) != 0)
		return -1;
	f->want_key = false;
	f->pending = -1;
	if (f->skip)
		return 0;
	first = cfg_idx_find(w->x, w->path);
	if (first != NULL) {
		cfg_error(w->x, pos, w->path, "duplicate key; it is already set at line %u",
			  first->key.line);
		w->failed = true;
		return 0; /* the value is walked but not indexed */
	}
	f->pending = node_add(w, pos, name_off);
	return f->pending < 0 ? -1 : 0;
}

/* A node that is a value: a mapping's value, a sequence entry, or the root. */
static int on_value(struct idx_walk *w, const yaml_event_t *ev, enum cfg_node_kind kind)
{
	struct cfg_pos pos = mark_pos(&ev->start_mark);
	struct idx_frame *f = w->depth != 0 ? &w->stack[w->depth - 1] : NULL;
	bool skip = f != NULL && (f->skip || (f->kind == CFG_NODE_MAPPING && f->pending < 0));
	int i = -1;

	if (f != NULL && f->kind == CFG_NODE_SEQUENCE && path_put(w, "[%u]", f->next) != 0)
		return -1;
	if (!skip) {
		if (f == NULL || f->kind == CFG_NODE_SEQUENCE)
			i = node_add(w, pos, -1); /* an entry, or the root with path "" */
		else
			i = f->pending;
		if (i < 0)
			return -1;

		struct cfg_node *n = &w->x->nodes[i];

		n->value = pos;
		n->kind = kind;
		n->is_null = scalar_is_null(ev);
	}
	if (f == NULL)
		w->x->empty = false;
	if (kind != CFG_NODE_SCALAR)
		return push(w, kind, ev, i, skip);
	if (w->depth != 0)
		value_done(w);
	return 0;
}

static int on_event(struct idx_walk *w, const yaml_event_t *ev, unsigned *n_docs)
{
	struct idx_frame *f = w->depth != 0 ? &w->stack[w->depth - 1] : NULL;
	bool at_key = f != NULL && f->kind == CFG_NODE_MAPPING && f->want_key;

	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		if (++*n_docs > 1) {
			cfg_error(w->x, mark_pos(&ev->start_mark), CFG_PATH_TOP,
				  "a second YAML document starts here; the file must hold one");
			return -1;
		}
		return 0;
	case YAML_ALIAS_EVENT:
		cfg_error(w->x, mark_pos(&ev->start_mark), shown_path(w->path),
			  "YAML aliases (*%s) are not supported; write the value out",
			  (const char *)ev->data.alias.anchor);
		w->failed = true;
		if (at_key)
			return -1;
		return on_value(w, ev, CFG_NODE_SCALAR);
	case YAML_SCALAR_EVENT:
		if (at_key)
			return on_key(w, f, ev);
		return on_value(w, ev, CFG_NODE_SCALAR);
	case YAML_MAPPING_START_EVENT:
	case YAML_SEQUENCE_START_EVENT:
		if (at_key) {
			cfg_error(w->x, mark_pos(&ev->start_mark), shown_path(w->path),
				  "a key must be a plain word, not a %s",
				  ev->type == YAML_MAPPING_START_EVENT ? "mapping" : "list");
			return -1;
		}
		return on_value(w, ev,
				ev->type == YAML_MAPPING_START_EVENT ? CFG_NODE_MAPPING :
								       CFG_NODE_SEQUENCE);
	case YAML_MAPPING_END_EVENT:
	case YAML_SEQUENCE_END_EVENT:
		if (w->depth == 0)
			return 0;
		w->depth--;
		if (w->depth != 0)
			value_done(w);
		return 0;
	default:
		return 0;
	}
}

/* Turns libyaml's parser error into one line, with a hint for the usual mistakes. */
static void syntax_error(struct idx_walk *w, const yaml_parser_t *p)
{
	const char *problem = p->problem != NULL ? p->problem : "malformed YAML";
	const char *path = shown_path(w->path);
	struct cfg_pos pos = mark_pos(&p->problem_mark);
	struct cfg_pos ctx = mark_pos(&p->context_mark);
	size_t at = p->problem_mark.index;
	uint8_t c = at < w->len ? w->data[at] : 0;

	if (p->error == YAML_READER_ERROR) {
		pos = offset_pos(w->data, w->len, p->problem_offset);
		cfg_error(w->x, pos, path, "not valid text: %s", problem);
	} else if (strstr(problem, "tab character") != NULL ||
		   (strcmp(problem, "found character that cannot start any token") == 0 &&
		    c == '\t')) {
		cfg_error(w->x, pos, path, "tab character; YAML indents with spaces only");
	} else if (strcmp(problem, "found character that cannot start any token") == 0 && c > ' ' &&
		   c < 0x7f) {
		cfg_error(w->x, pos, path, "'%c' cannot start a value; put the value in quotes", c);
	} else if (strcmp(problem, "mapping values are not allowed in this context") == 0) {
		cfg_error(w->x, pos, path,
			  "unexpected ':'; check this line's indentation, or quote the value");
	} else if (strcmp(problem, "did not find expected key") == 0 && p->context != NULL) {
		cfg_error(w->x, pos, path,
			  "expected a 'key:' lined up with the keys of the mapping at line %u",
			  ctx.line);
	} else if (strcmp(problem, "did not find expected '-' indicator") == 0 &&
		   p->context != NULL) {
		cfg_error(w->x, pos, path,
			  "expected a '- ' entry lined up with the list at line %u", ctx.line);
	} else if (strcmp(problem, "could not find expected ':'") == 0 && p->context != NULL) {
		cfg_error(w->x, ctx, path, "expected 'key: value', found no ':' after the key");
	} else if (p->context != NULL &&
		   strcmp(p->context, "while scanning a quoted scalar") == 0) {
		cfg_error(w->x, ctx, path, "the quoted value has no closing quote");
	} else if (strncmp(problem, "did not find expected ',' or ", 29) == 0 &&
		   p->context != NULL) {
		cfg_error(w->x, pos, path, "expected ',' or '%c' to go on or close the %s at %u:%u",
			  problem[30], strstr(p->context, "sequence") != NULL ? "list" : "mapping",
			  ctx.line, ctx.col);
	} else if (p->context != NULL) {
		cfg_error(w->x, pos, path, "YAML syntax error: %s %s at %u:%u", problem, p->context,
			  ctx.line, ctx.col);
	} else {
		cfg_error(w->x, pos, path, "YAML syntax error: %s", problem);
	}
}

int cfg_idx_build(struct cfg_ctx *x, const uint8_t *data, size_t len)
{
	struct idx_walk w = { .x = x, .data = data, .len = len };
	yaml_parser_t parser;
	yaml_event_t ev;
	unsigned n_docs = 0;
	int rc = -1;

	x->empty = true;
	w.path_cap = 128;
	w.path = malloc(w.path_cap);
	if (w.path == NULL) {
		x->oom = true;
		return -1;
	}
	w.path[0] = '\0';
	if (yaml_parser_initialize(&parser) == 0) {
		x->oom = true;
		goto fail_parser;
	}
	yaml_parser_set_input_string(&parser, data, len);
	for (;;) {
		if (yaml_parser_parse(&parser, &ev) == 0) {
			if (parser.error == YAML_MEMORY_ERROR)
				x->oom = true;
			else
				syntax_error(&w, &parser);
			goto fail;
		}
		if (ev.type == YAML_STREAM_END_EVENT) {
			yaml_event_delete(&ev);
			break;
		}
		int r = on_event(&w, &ev, &n_docs);

		yaml_event_delete(&ev);
		if (r != 0)
			goto fail;
	}
	rc = w.failed ? -1 : 0;
fail:
	yaml_parser_delete(&parser);
fail_parser:
	free(w.path);
	return rc;
}

const struct cfg_node *cfg_idx_find(const struct cfg_ctx *x, const char *path)
{
	if (x->n_slots == 0)
		return NULL;
	for (unsigned s = path_hash(path) & (x->n_slots - 1); x->slots[s] != 0;
	     s = (s + 1) & (x->n_slots - 1))
		if (strcmp(x->nodes[x->slots[s] - 1].path, path) == 0)
			return &x->nodes[x->slots[s] - 1];
	return NULL;
}

/* The nearest node at PATH or above it ("a.b[2].c" -> "a.b[2]" -> "a.b" -> "a" -> ""). */
static const struct cfg_node *find_nearest(const struct cfg_ctx *x, const char *path, bool *exact)
{
	char buf[256];
	size_t n = strlen(path);
	const struct cfg_node *node = cfg_idx_find(x, path);

	*exact = node != NULL;
	if (node != NULL || n >= sizeof(buf))
		return node;
	memcpy(buf, path, n + 1);
	while (n > 0) {
		while (n > 0 && buf[n - 1] != '.' && buf[n - 1] != '[')
			n--;
		if (n > 0)
			n--; /* drop the '.' or '[' too */
		buf[n] = '\0';
		node = cfg_idx_find(x, buf);
		if (node != NULL)
			return node;
	}
	return NULL;
}

struct cfg_pos cfg_pos_value(const struct cfg_ctx *x, const char *path)
{
	bool exact;
	const struct cfg_node *n = find_nearest(x, path, &exact);

	if (n == NULL)
		return (struct cfg_pos){ 1, 1 };
	if (!exact || n->is_null)
		return n->key;
	return n->value;
}

struct cfg_pos cfg_pos_key(const struct cfg_ctx *x, const char *path)
{
	bool exact;
	const struct cfg_node *n = find_nearest(x, path, &exact);

	return n != NULL ? n->key : (struct cfg_pos){ 1, 1 };
}

/*
 * Quoted YAML values and keys may hold control characters; shown raw, a "\n"
 * would split the one-line error. Writes them as \n, \t, \r or \xNN.
 */
static char *one_line(const char *s)
{
	size_t n = 0;
	char *out, *o;

	for (const char *p = s; *p != '\0'; p++)
		n += (unsigned char)*p < 0x20 || *p == 0x7f ? 4 : 1;
	out = malloc(n + 1);
	if (out == NULL)
		return NULL;
	o = out;
	for (const char *p = s; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '\n' || c == '\t' || c == '\r')
			o += sprintf(o, "\\%c", c == '\n' ? 'n' : c == '\t' ? 't' : 'r');
		else if (c < 0x20 || c == 0x7f)
			o += sprintf(o, "\\x%02x", c);
		else
			*o++ = (char)c;
	}
	*o = '\0';
	return out;
}

const char *cfg_pathf(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	return buf;
}

void cfg_error(struct cfg_ctx *x, struct cfg_pos pos, const char *path, const char *fmt, ...)
{
	struct cfg_diag *d;
	char *what = NULL, *line = NULL;
	va_list ap;
	int n;

	if (x->n_diags == x->cap_diags) {
		unsigned cap = x->cap_diags != 0 ? x->cap_diags * 2 : 8;

		d = realloc(x->diags, cap * sizeof(*d));
		if (d == NULL)
			goto fail;
		x->diags = d;
		x->cap_diags = cap;
	}
	va_start(ap, fmt);
	n = vasprintf(&what, fmt, ap);
	va_end(ap);
	if (n < 0)
		goto fail;
	d = &x->diags[x->n_diags];
	d->pos = pos;
	d->seq = x->n_diags;
	n = asprintf(&line, "%s: %s", path, what);
	free(what);
	if (n < 0)
		goto fail;
	d->text = one_line(line);
	free(line);
	if (d->text == NULL)
		goto fail;
	x->n_diags++;
	return;
fail:
	x->oom = true;
}

static int diag_cmp(const void *a, const void *b)
{
	const struct cfg_diag *l = a, *r = b;

	if (l->pos.line != r->pos.line)
		return l->pos.line < r->pos.line ? -1 : 1;
	if (l->pos.col != r->pos.col)
		return l->pos.col < r->pos.col ? -1 : 1;
	return l->seq < r->seq ? -1 : l->seq > r->seq;
}

void cfg_diag_flush(struct cfg_ctx *x, FILE *err)
{
	if (x->n_diags != 0)
		qsort(x->diags, x->n_diags, sizeof(*x->diags), diag_cmp);
	for (unsigned i = 0; err != NULL && i < x->n_diags; i++) {
		const struct cfg_diag *d = &x->diags[i];

		fprintf(err, "%s:%u:%u: %s\n", x->name, d->pos.line != 0 ? d->pos.line : 1,
			d->pos.col != 0 ? d->pos.col : 1, d->text);
	}
	if (x->oom && err != NULL)
		fprintf(err, "%s: cannot load: %s\n", x->name, strerror(ENOMEM));
}

void cfg_ctx_fini(struct cfg_ctx *x)
{
	for (unsigned i = 0; i < x->n_nodes; i++)
		free(x->nodes[i].path);
	free(x->nodes);
	x->nodes = NULL;
	x->n_nodes = 0;
	free(x->slots);
	x->slots = NULL;
	x->n_slots = 0;
	for (unsigned i = 0; i < x->n_diags; i++)
		free(x->diags[i].text);
	free(x->diags);
	x->diags = NULL;
	x->n_diags = 0;
}
