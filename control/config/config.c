/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Loads mxgate.yaml: libyaml indexes key positions, libcyaml loads the schema,
 * then each section checks what the values mean. Every problem becomes one
 * "FILE:LINE:COLUMN: key.path: what is wrong" line, all of them in one run.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cyaml/cyaml.h>

#include "control/config/config.h"
#include "control/config/config_priv.h"

/* A config is a page of YAML; this only stops a wrong path (a disk image) from being slurped. */
#define CFG_MAX_FILE_SIZE (4u << 20)

/* libcyaml's log of one failed load; a load logs a message and a short backtrace. */
#define CY_LOG_MAX 8192

/*
 * The top-level sections. To add one (say "spool"): put its as-loaded struct in
 * config_priv.h with a pointer to it in struct cfg_raw, write its schema and
 * build step in spool.c, then add one line here and one in build_sections().
 */
/* clang-format off */
static const cyaml_schema_field_t top_fields[] = {
	CYAML_FIELD_MAPPING_PTR("dataplane", CYAML_FLAG_OPTIONAL | CYAML_FLAG_POINTER_NULL_STR,
				struct cfg_raw, dataplane, cfg_dp_fields),
	CYAML_FIELD_SEQUENCE_COUNT("listeners", CYAML_FLAG_OPTIONAL | CYAML_FLAG_POINTER_NULL_STR,
				   struct cfg_raw, listeners, n_listeners, &cfg_listener_entry, 0,
				   CYAML_UNLIMITED),
	CYAML_FIELD_MAPPING_PTR("policy", CYAML_FLAG_OPTIONAL | CYAML_FLAG_POINTER_NULL_STR,
				struct cfg_raw, policy, cfg_policy_fields),
	CYAML_FIELD_MAPPING_PTR("routes", CYAML_FLAG_OPTIONAL | CYAML_FLAG_POINTER_NULL_STR,
				struct cfg_raw, routes, cfg_routes_fields),
	CYAML_FIELD_MAPPING_PTR("spool", CYAML_FLAG_OPTIONAL | CYAML_FLAG_POINTER_NULL_STR,
				struct cfg_raw, spool, cfg_spool_fields),
	CYAML_FIELD_MAPPING_PTR("relay", CYAML_FLAG_OPTIONAL | CYAML_FLAG_POINTER_NULL_STR,
				struct cfg_raw, relay, cfg_relay_fields),
	CYAML_FIELD_MAPPING_PTR("control", CYAML_FLAG_OPTIONAL | CYAML_FLAG_POINTER_NULL_STR,
				struct cfg_raw, control, cfg_control_fields),
	CYAML_FIELD_MAPPING_PTR("logging", CYAML_FLAG_OPTIONAL | CYAML_FLAG_POINTER_NULL_STR,
				struct cfg_raw, logging, cfg_logging_fields),
	CYAML_FIELD_MAPPING_PTR("tls", CYAML_FLAG_OPTIONAL | CYAML_FLAG_POINTER_NULL_STR,
				struct cfg_raw, tls, cfg_tls_fields),
	CYAML_FIELD_MAPPING_PTR("auth", CYAML_FLAG_OPTIONAL | CYAML_FLAG_POINTER_NULL_STR,
				struct cfg_raw, auth, cfg_auth_fields),
	CYAML_FIELD_END
};

static const cyaml_schema_value_t top_schema = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, struct cfg_raw, top_fields),
};
/* clang-format on */

static void build_sections(struct cfg_ctx *x, const struct cfg_raw *raw, struct cfg *c)
{
	cfg_dp_build(x, raw != NULL ? raw->dataplane : NULL, &c->dp);
	cfg_auth_build(x, raw != NULL ? raw->auth : NULL, &c->auth); /* the listeners ask for it */
	cfg_tls_build(x, raw != NULL ? raw->tls : NULL, &c->tls); /* listeners ask for it */
	cfg_listeners_build(x, raw, c);
	cfg_policy_build(x, raw != NULL ? raw->policy : NULL, &c->policy);
	cfg_routes_build(x, raw != NULL ? raw->routes : NULL, &c->routes);
	cfg_spool_build(x, raw != NULL ? raw->spool : NULL, &c->spool);
	cfg_relay_build(x, raw != NULL ? raw->relay : NULL, &c->relay);
	cfg_store_check(x, c);
	cfg_control_build(x, raw != NULL ? raw->control : NULL, &c->dp, &c->control);
	cfg_logging_build(x, raw != NULL ? raw->logging : NULL, &c->logging);
}

/* ---- typed readers over the loaded strings ---- */

static const struct cfg_node *null_node(const struct cfg_ctx *x, const char *path)
{
	const struct cfg_node *n = cfg_idx_find(x, path);

	return n != NULL && n->is_null ? n : NULL;
}

int cfg_get_uint(struct cfg_ctx *x, const char *path, const char *raw, unsigned min, unsigned max,
		 unsigned def, unsigned *out)
{
	const struct cfg_node *empty = null_node(x, path);
	const char *digits = raw;
	unsigned long long v;
	char *end;

	*out = def;
	if (raw == NULL)
		return 0;
	if (empty != NULL && empty->name == NULL) {
		/* a list entry: there is no key to remove */
		cfg_error(x, cfg_pos_value(x, path), path,
			  "no value; write a number between %u and %u", min, max);
		return -1;
	}
	if (empty != NULL) {
		cfg_error(
			x, cfg_pos_value(x, path), path,
			"no value; write a number between %u and %u, or remove the key for the default %u",
			min, max, def);
		return -1;
	}
	if (digits[0] == '-' || digits[0] == '+')
		digits++;
	if (digits[0] < '0' || digits[0] > '9' || strspn(digits, "0123456789") != strlen(digits)) {
		cfg_error(x, cfg_pos_value(x, path), path,
			  "'%s' is not a number; expected a whole number between %u and %u", raw,
			  min, max);
		return -1;
	}
	errno = 0;
	v = strtoull(digits, &end, 10);
	if (raw[0] == '-' || errno == ERANGE || v < min || v > max) {
		cfg_error(x, cfg_pos_value(x, path), path, "%s is not between %u and %u", raw, min,
			  max);
		return -1;
	}
	*out = (unsigned)v;
	return 0;
}

int cfg_get_bool(struct cfg_ctx *x, const char *path, const char *raw, bool def, bool *out)
{
	static const char *const yes[] = { "true", "yes", "on" };
	static const char *const no[] = { "false", "no", "off" };

	*out = def;
	if (raw == NULL)
		return 0;
	for (unsigned i = 0; i < 3; i++) {
		if (strcasecmp(raw, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(raw, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	if (null_node(x, path) != NULL)
		cfg_error(x, cfg_pos_value(x, path), path,
			  "no value; write true or false, or remove the key for the default %s",
			  def ? "true" : "false");
	else
		cfg_error(x, cfg_pos_value(x, path), path, "'%s' is not true or false", raw);
	return -1;
}

static void enum_list(const struct cfg_enum *tab, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (unsigned i = 0; tab[i].name != NULL && off < len; i++) {
		int n = snprintf(buf + off, len - off, "%s%s", i != 0 ? ", " : "", tab[i].name);

		if (n < 0)
			break;
		off += (size_t)n;
	}
}

int cfg_get_enum(struct cfg_ctx *x, const char *path, const char *raw, const struct cfg_enum *tab,
		 int def, int *out)
{
	const char *def_name = "";
	char names[160];

	*out = def;
	if (raw == NULL)
		return 0;
	for (unsigned i = 0; tab[i].name != NULL; i++) {
		if (strcmp(raw, tab[i].name) == 0) {
			*out = tab[i].value;
			return 0;
		}
		if (tab[i].value == def)
			def_name = tab[i].name;
	}
	enum_list(tab, names, sizeof(names));
	if (null_node(x, path) != NULL)
		cfg_error(x, cfg_pos_value(x, path), path,
			  "no value; write one of: %s, or remove the key for the default %s", names,
			  def_name);
	else
		cfg_error(x, cfg_pos_value(x, path), path, "'%s' is not one of: %s", raw, names);
	return -1;
}

int cfg_get_str(struct cfg_ctx *x, const char *path, const char *raw, const char *def, char **out)
{
	const char *v = raw != NULL ? raw : def;
	int rc = 0;

	*out = NULL;
	if (raw != NULL && (null_node(x, path) != NULL || raw[0] == '\0')) {
		if (def != NULL)
			cfg_error(x, cfg_pos_value(x, path), path,
				  "empty; write a value, or remove the key for the default '%s'",
				  def);
		else
			cfg_error(x, cfg_pos_value(x, path), path, "empty; a value is required");
		v = def;
		rc = -1;
	}
	if (v != NULL) {
		*out = strdup(v);
		if (*out == NULL)
			x->oom = true;
	}
	return rc;
}

/* ---- unknown keys, checked against the same schema libcyaml loads ---- */

/* Edit distance, for "did you mean"; A and B are short keys. */
static unsigned edit_distance(const char *a, const char *b)
{
	unsigned row[64];
	size_t la = strlen(a), lb = strlen(b);

	if (lb >= 64 || la >= 64)
		return 64;
	for (size_t j = 0; j <= lb; j++)
		row[j] = (unsigned)j;
	for (size_t i = 1; i <= la; i++) {
		unsigned diag = row[0];

		row[0] = (unsigned)i;
		for (size_t j = 1; j <= lb; j++) {
			unsigned up = row[j];
			unsigned best = diag + (a[i - 1] != b[j - 1]);

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

static void report_unknown_key(struct cfg_ctx *x, const struct cfg_node *n,
			       const cyaml_schema_field_t *f)
{
	const char *best = NULL;
	unsigned best_d = ~0u;
	char names[256];
	size_t off = 0;

	for (unsigned i = 0; f[i].key != NULL; i++) {
		unsigned d = edit_distance(n->name, f[i].key);

		if (d < best_d) {
			best_d = d;
			best = f[i].key;
		}
		if (off < sizeof(names)) {
			int w = snprintf(names + off, sizeof(names) - off, "%s%s",
					 i != 0 ? ", " : "", f[i].key);

			off += w > 0 ? (size_t)w : 0;
		}
	}
	if (best != NULL && best_d <= 2 && best_d < strlen(n->name))
		cfg_error(x, n->key, n->path, "unknown key; did you mean '%s'?", best);
	else
		cfg_error(x, n->key, n->path, "unknown key; expected one of: %s", names);
}

/*
 * Finds every key the schema does not know, so one run lists all the typos;
 * libcyaml would stop at the first. Values whose shape does not fit the schema
 * are left for libcyaml to report.
 */
static void check_keys(struct cfg_ctx *x)
{
	const cyaml_schema_value_t **sch;

	if (x->n_nodes == 0)
		return;
	sch = calloc(x->n_nodes, sizeof(*sch));
	if (sch == NULL) {
		x->oom = true;
		return;
	}
	sch[0] = &top_schema;
	for (unsigned i = 1; i < x->n_nodes; i++) {
		const struct cfg_node *n = &x->nodes[i];
		const cyaml_schema_value_t *up = n->parent >= 0 ? sch[n->parent] : NULL;

		if (up == NULL)
			continue;
		if (n->name == NULL) {
			if (up->type == CYAML_SEQUENCE || up->type == CYAML_SEQUENCE_FIXED)
				sch[i] = up->sequence.entry;
			continue;
		}
		if (up->type != CYAML_MAPPING)
			continue;

		const cyaml_schema_field_t *f = up->mapping.fields;

		for (unsigned k = 0; f[k].key != NULL; k++)
			if (strcmp(f[k].key, n->name) == 0)
				sch[i] = &f[k].value;
		if (sch[i] == NULL)
			report_unknown_key(x, n, f);
	}
	free(sch);
}

/* ---- libcyaml: load, and turn its log into one line ---- */

struct cy_log {
	char buf[CY_LOG_MAX];
	size_t len;
};

static void cy_log_fn(cyaml_log_t level, void *ctx, const char *fmt, va_list args)
{
	struct cy_log *log = ctx;
	int n;

	if (level < CYAML_LOG_ERROR || log->len >= sizeof(log->buf) - 1)
		return;
	n = vsnprintf(log->buf + log->len, sizeof(log->buf) - log->len, fmt, args);
	if (n > 0)
		log->len += (size_t)n < sizeof(log->buf) - log->len ?
				    (size_t)n :
				    sizeof(log->buf) - log->len - 1;
}

static const char *cy_type_words(const char *type)
{
	if (strcmp(type, "MAPPING") == 0)
		return "a mapping of keys";
	if (strncmp(type, "SEQUENCE", 8) == 0)
		return "a list";
	return "a single value";
}

static const char *cy_event_words(const char *event, const struct cfg_node *n)
{
	if (strcmp(event, "SCALAR") == 0)
		return n != NULL && n->is_null ? "nothing" : "a single value";
	if (strcmp(event, "SEQUENCE_START") == 0)
		return "a list";
	if (strcmp(event, "MAPPING_START") == 0)
		return "a mapping";
	return event;
}

/*
 * libcyaml logs "Load: <what>", "Load: Backtrace:", then one "  in ..." line
 * per level, innermost first, with the line and column of the event at hand.
 * Rebuild the key path from the backtrace and say the what in plain words.
 */
static void cy_report(struct cfg_ctx *x, const struct cy_log *log, cyaml_err_t e)
{
	char path[512] = "", what[256] = "", comp[32][136];
	struct cfg_pos pos = { 1, 1 };
	unsigned n_comp = 0;
	bool have_pos = false;
	const char *line = log->buf;

	while (line < log->buf + log->len && *line != '\0') {
		const char *nl = strchr(line, '\n');
		size_t len = nl != NULL ? (size_t)(nl - line) : strlen(line);
		char key[128];
		unsigned a, l, c;
		bool got = false;

		if (sscanf(line, "  in mapping field '%127[^']' (line: %u, column: %u)", key, &l,
			   &c) == 3 &&
		    n_comp < 32) {
			snprintf(comp[n_comp++], sizeof(comp[0]), ".%s", key);
			got = true;
		} else if (sscanf(line, "  in sequence entry '%u' (line: %u, column: %u)", &a, &l,
				  &c) == 3 &&
			   n_comp < 32) {
			snprintf(comp[n_comp++], sizeof(comp[0]), "[%u]", a != 0 ? a - 1 : 0);
			got = true;
		} else if (sscanf(line, "  in mapping (line: %u, column: %u)", &l, &c) == 2) {
			got = n_comp == 0;
		} else if (what[0] == '\0' && strncmp(line, "Load: ", 6) == 0 &&
			   strncmp(line, "Load: Backtrace:", 16) != 0) {
			snprintf(what, sizeof(what), "%.*s", (int)(len - 6), line + 6);
		}
		if (got && !have_pos) {
			pos = (struct cfg_pos){ l, c }; /* the innermost level */
			have_pos = true;
		}
		line += len + (nl != NULL);
	}
	for (unsigned i = n_comp; i > 0; i--) {
		size_t off = strlen(path);
		const char *cp = comp[i - 1];

		if (off == 0 && cp[0] == '.')
			cp++; /* no dot before the first key */
		snprintf(path + off, sizeof(path) - off, "%s", cp);
	}

	const struct cfg_node *n = cfg_idx_find(x, path);
	const char *shown = path[0] != '\0' ? path : CFG_PATH_TOP;
	char want[32], got[32];

	if (n != NULL)
		pos = cfg_pos_value(x, path);
	if (sscanf(what, "Expecting %31[A-Z_], got event: %31[A-Z_]", want, got) == 2)
		cfg_error(x, pos, shown, "expected %s, found %s", cy_type_words(want),
			  cy_event_words(got, n));
	else if (what[0] != '\0')
		cfg_error(x, pos, shown, "cannot load: %s", what);
	else
		cfg_error(x, pos, shown, "cannot load: %s", cyaml_strerror(e));
}

static int load_raw(struct cfg_ctx *x, const uint8_t *data, size_t len, struct cfg_raw **raw)
{
	struct cy_log *log = calloc(1, sizeof(*log));
	cyaml_config_t cc = {
		.log_fn = cy_log_fn,
		.log_ctx = log,
		.mem_fn = cyaml_mem,
		.log_level = CYAML_LOG_ERROR,
		/* unknown keys were reported by check_keys(); aliases by the index */
		.flags = CYAML_CFG_IGNORE_UNKNOWN_KEYS | CYAML_CFG_NO_ALIAS,
	};
	cyaml_err_t e;

	*raw = NULL;
	if (log == NULL) {
		x->oom = true;
		return -1;
	}
	e = cyaml_load_data(data, len, &cc, &top_schema, (cyaml_data_t **)raw, NULL);
	if (e == CYAML_ERR_OOM)
		x->oom = true;
	else if (e != CYAML_OK)
		cy_report(x, log, e);
	free(log);
	return e == CYAML_OK ? 0 : -1;
}

static void raw_free(struct cfg_raw *raw)
{
	cyaml_config_t cc = { .mem_fn = cyaml_mem, .log_level = CYAML_LOG_ERROR };

	if (raw != NULL)
		cyaml_free(&cc, &top_schema, raw, 0);
}

/* ---- the API ---- */

struct cfg *cfg_load_data(const char *name, const uint8_t *data, size_t len, FILE *err)
{
	struct cfg_ctx x = { .name = name };
	struct cfg_raw *raw = NULL;
	struct cfg *c = NULL;

	if (data == NULL)
		data = (const uint8_t *)""; /* libyaml wants a buffer even when it is empty */
	if (cfg_idx_build(&x, data, len) != 0)
		goto fail;
	if (x.n_nodes != 0 && x.nodes[0].kind == CFG_NODE_SCALAR && x.nodes[0].is_null)
		x.empty = true; /* "---" or "~" alone: a document with nothing in it */
	check_keys(&x);
	if (!x.empty && load_raw(&x, data, len, &raw) != 0)
		goto fail;
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		x.oom = true;
		goto fail;
	}
	c->path = strdup(name);
	if (c->path == NULL)
		x.oom = true;
	build_sections(&x, raw, c);
	if (x.n_diags != 0 || x.oom)
		goto fail;
	raw_free(raw);
	cfg_ctx_fini(&x);
	return c;
fail:
	if (x.n_diags == 0 && !x.oom)
		cfg_error(&x, (struct cfg_pos){ 1, 1 }, CFG_PATH_TOP, "cannot load");
	cfg_diag_flush(&x, err);
	cfg_free(c);
	raw_free(raw);
	cfg_ctx_fini(&x);
	return NULL;
}

struct cfg *cfg_load(const char *path, FILE *err)
{
	struct cfg *c = NULL;
	uint8_t *data = NULL;
	size_t len = 0, cap = 0;
	FILE *f = fopen(path, "rb");
	int e = 0;

	if (f == NULL) {
		e = errno;
		goto fail;
	}
	for (;;) {
		if (len == cap) {
			uint8_t *p;

			if (cap >= CFG_MAX_FILE_SIZE) {
				e = EFBIG;
				goto fail;
			}
			cap = cap != 0 ? cap * 2 : 8192;
			p = realloc(data, cap);
			if (p == NULL) {
				e = ENOMEM;
				goto fail;
			}
			data = p;
		}

		size_t n = fread(data + len, 1, cap - len, f);

		len += n;
		if (n != 0)
			continue;
		if (ferror(f)) {
			e = errno != 0 ? errno : EIO;
			goto fail;
		}
		break;
	}
	c = cfg_load_data(path, data, len, err);
	free(data);
	fclose(f);
	return c;
fail:
	if (err != NULL)
		fprintf(err, "%s: cannot read: %s\n", path, strerror(e));
	free(data);
	if (f != NULL)
		fclose(f);
	return NULL;
}

void cfg_free(struct cfg *c)
{
	if (c == NULL)
		return;
	cfg_dp_free(&c->dp);
	cfg_listeners_free(c);
	cfg_policy_free(&c->policy);
	cfg_routes_free(&c->routes);
	cfg_spool_free(&c->spool);
	cfg_relay_free(&c->relay);
	cfg_control_free(&c->control, &c->logging);
	cfg_tls_free(&c->tls);
	cfg_auth_free(&c->auth);
	free(c->path);
	c->path = NULL;
	free(c);
}

char *cfg_prefix_str(const struct cfg_prefix *p, char *buf, size_t len)
{
	char a[INET_ADDRSTRLEN];
	struct in_addr in = { .s_addr = p->addr };

	if (len == 0)
		return buf;
	inet_ntop(AF_INET, &in, a, sizeof(a));
	snprintf(buf, len, "%s/%u", a, p->len);
	return buf;
}
