/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The "listeners:" section: the SMTP ports of the dataplane, each with its
 * mode (relay or submission), its acknowledgement mode and its limits. No
 * listeners by default: a box takes mail only where the file says so.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cyaml/cyaml.h>

#include "control/config/config.h"
#include "control/config/config_priv.h"

#define MAX_NAME_LEN 32
#define MAX_HOSTNAME_LEN 253 /* RFC 1035 §2.3.4 */

/* ---- schema ---- */

/* clang-format off */

static const cyaml_schema_field_t limits_fields[] = {
	CFG_STR("max_message_size", struct cfg_raw_limits, max_message_size),
	CFG_STR("max_recipients", struct cfg_raw_limits, max_recipients),
	CFG_STR("max_errors", struct cfg_raw_limits, max_errors),
	CFG_STR("command_line", struct cfg_raw_limits, command_line),
	CFG_STR("text_line", struct cfg_raw_limits, text_line),
	CFG_STR("input_no_crlf", struct cfg_raw_limits, input_no_crlf),
	CFG_STR("sessions", struct cfg_raw_limits, sessions),
	CYAML_FIELD_END
};

static const cyaml_schema_field_t listener_fields[] = {
	CFG_STR("name", struct cfg_raw_listener, name),
	CFG_STR("port", struct cfg_raw_listener, port),
	CFG_STR("mode", struct cfg_raw_listener, mode),
	CFG_STR("ack", struct cfg_raw_listener, ack),
	CFG_STR("hostname", struct cfg_raw_listener, hostname),
	CFG_STR("greeting_pause_ms", struct cfg_raw_listener, greeting_pause_ms),
	CFG_STR("normalize_bare_eol", struct cfg_raw_listener, normalize_bare_eol),
	CFG_STR("tls", struct cfg_raw_listener, tls),
	CFG_STR("auth", struct cfg_raw_listener, auth),
	CFG_STR("auth_plaintext", struct cfg_raw_listener, auth_plaintext),
	CYAML_FIELD_MAPPING_PTR("limits", CFG_OPT_NULL, struct cfg_raw_listener, limits,
				limits_fields),
	CYAML_FIELD_END
};

const cyaml_schema_value_t cfg_listener_entry = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct cfg_raw_listener, listener_fields),
};

static const struct cfg_enum modes[] = {
	{ "relay", CFG_MODE_RELAY },
	{ "submission", CFG_MODE_SUBMISSION },
	{ NULL, 0 },
};
/* clang-format on */

static bool only_chars(const char *s, const char *extra)
{
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && strchr(extra, *s) == NULL)
			return false;
	return true;
}

static void build_ack(struct cfg_ctx *x, const char *path, const char *raw, struct cfg_listener *l)
{
	static const struct cfg_enum acks[] = {
		{ "sink", CFG_ACK_SINK },
		{ "store", CFG_ACK_STORE },
		{ "cut-through", CFG_ACK_CUT_THROUGH },
		{ NULL, 0 },
	};
	int v = CFG_ACK_SINK;

	l->ack = CFG_ACK_SINK;
	if (cfg_get_enum(x, path, raw, acks, CFG_ACK_SINK, &v) == 0)
		l->ack = (enum cfg_ack_mode)v;
}

static void build_limits(struct cfg_ctx *x, const char *base, const struct cfg_raw_limits *raw,
			 struct cfg_listener_limits *o)
{
	static const struct cfg_raw_limits none;
	char path[96];
	unsigned size;

	if (raw == NULL)
		raw = &none;
	/* SIZE 0 would mean "no limit" (RFC 1870 §4): every message needs a bound here. */
	cfg_get_uint(x, cfg_pathf(path, sizeof(path), "%s.max_message_size", base),
		     raw->max_message_size, 1024, 1u << 30, 10u << 20, &size);
	o->max_message_size = size;
	/* RFC 5321 §4.5.3.1.8: at least 100 recipients must be taken */
	cfg_get_uint(x, cfg_pathf(path, sizeof(path), "%s.max_recipients", base), raw->max_recipients,
		     1, 10000, 100, &o->max_recipients);
	cfg_get_uint(x, cfg_pathf(path, sizeof(path), "%s.max_errors", base), raw->max_errors, 1, 1000,
		     20, &o->max_errors);
	cfg_get_uint(x, cfg_pathf(path, sizeof(path), "%s.command_line", base), raw->command_line, 512,
		     65536, 512, &o->command_line);
	/* 0: no text line limit */
	cfg_get_uint(x, cfg_pathf(path, sizeof(path), "%s.text_line", base), raw->text_line, 0,
		     1u << 20, 1000, &o->text_line);
	cfg_get_uint(x, cfg_pathf(path, sizeof(path), "%s.input_no_crlf", base), raw->input_no_crlf,
		     1024, 1u << 24, 65536, &o->input_no_crlf);
	if (o->input_no_crlf < o->command_line) {
		cfg_pathf(path, sizeof(path), "%s.input_no_crlf", base);
		cfg_error(x, cfg_pos_value(x, path), path,
			  "%u is below command_line (%u): a whole command must fit", o->input_no_crlf,
			  o->command_line);
	}
	cfg_get_uint(x, cfg_pathf(path, sizeof(path), "%s.sessions", base), raw->sessions, 1, 1u << 20,
		     1024, &o->sessions);
}

static void build_listener(struct cfg_ctx *x, unsigned i, const struct cfg_raw_listener *raw,
			   struct cfg_listener *l)
{
	char base[48], path[96], def[16];
	int mode = CFG_MODE_RELAY;

	cfg_pathf(base, sizeof(base), "listeners[%u]", i);
	if (raw->port == NULL)
		cfg_error(x, cfg_pos_value(x, base), base,
			  "no port; write the TCP port to take mail on (25, 587, 2525...)");
	else
		cfg_get_uint(x, cfg_pathf(path, sizeof(path), "%s.port", base), raw->port, 1, 65535, 25,
			     &l->port);
	snprintf(def, sizeof(def), "smtp-%u", l->port);
	if (cfg_get_str(x, cfg_pathf(path, sizeof(path), "%s.name", base), raw->name, def, &l->name) ==
		    0 &&
	    l->name != NULL && (strlen(l->name) > MAX_NAME_LEN || !only_chars(l->name, "-_."))) {
		cfg_error(x, cfg_pos_value(x, path), path,
			  "'%s': use up to %d letters, digits, '-', '_' or '.'", l->name,
			  MAX_NAME_LEN);
	}
	cfg_get_enum(x, cfg_pathf(path, sizeof(path), "%s.mode", base), raw->mode, modes,
		     CFG_MODE_RELAY, &mode);
	l->mode = (enum cfg_listener_mode)mode;
	build_ack(x, cfg_pathf(path, sizeof(path), "%s.ack", base), raw->ack, l);
	if (cfg_get_str(x, cfg_pathf(path, sizeof(path), "%s.hostname", base), raw->hostname, NULL,
			&l->hostname) == 0 &&
	    l->hostname != NULL &&
	    (strlen(l->hostname) > MAX_HOSTNAME_LEN || !only_chars(l->hostname, "-."))) {
		cfg_error(x, cfg_pos_value(x, path), path,
			  "'%s' is not a host name (letters, digits, '-' and '.')", l->hostname);
	}
	/* Postfix postscreen's greet_wait is 6 s; a minute is already absurd */
	cfg_get_uint(x, cfg_pathf(path, sizeof(path), "%s.greeting_pause_ms", base),
		     raw->greeting_pause_ms, 0, 60000, 0, &l->greeting_pause_ms);
	/* off by default: a bare LF in content is how SMTP smuggling starts */
	cfg_get_bool(x, cfg_pathf(path, sizeof(path), "%s.normalize_bare_eol", base),
		     raw->normalize_bare_eol, false, &l->normalize_bare_eol);
	build_limits(x, cfg_pathf(path, sizeof(path), "%s.limits", base), raw->limits, &l->limits);
}

void cfg_listeners_build(struct cfg_ctx *x, const struct cfg_raw *raw, struct cfg *c)
{
	const char *list = "listeners";
	char path[64], other[64];
	unsigned n = raw != NULL ? raw->n_listeners : 0;

	if (n > CFG_MAX_LISTENERS)
		cfg_error(x, cfg_pos_key(x, list), list, "%u listeners; at most %d are supported", n,
			  CFG_MAX_LISTENERS);
	c->n_listeners = n < CFG_MAX_LISTENERS ? n : CFG_MAX_LISTENERS;
	for (unsigned i = 0; i < c->n_listeners; i++) {
		build_listener(x, i, &raw->listeners[i], &c->listeners[i]);
		cfg_listener_tls_build(x, &c->tls, i, raw->listeners[i].tls, &c->listeners[i]);
	}
	/* AUTH per listener: its mode decides the default (auth.c) */
	for (unsigned i = 0; i < c->n_listeners; i++)
		cfg_listener_auth_build(x, &c->auth, i, raw->listeners[i].auth,
					raw->listeners[i].auth_plaintext, &c->listeners[i]);
	/* cut-through relays at once: without a route no recipient could be taken */
	for (unsigned i = 0; i < c->n_listeners; i++) {
		const struct cfg_raw_routes *r = raw->routes;

		if (c->listeners[i].ack != CFG_ACK_CUT_THROUGH ||
		    (r != NULL && (r->n_domains > 0 || r->n_smarthost > 0)))
			continue;
		cfg_pathf(path, sizeof(path), "listeners[%u].ack", i);
		cfg_error(x, cfg_pos_value(x, path), path,
			  "cut-through needs somewhere to relay to: add routes.domains or "
			  "routes.smarthost");
	}
	/* Report the later of two clashing entries, pointing back at the first. */
	for (unsigned i = 0; i < c->n_listeners; i++) {
		for (unsigned j = 0; j < i; j++) {
			const struct cfg_listener *a = &c->listeners[j], *b = &c->listeners[i];

			cfg_pathf(other, sizeof(other), "listeners[%u]", j);
			if (a->port != 0 && a->port == b->port) {
				cfg_pathf(path, sizeof(path), "listeners[%u].port", i);
				cfg_error(x, cfg_pos_value(x, path), path,
					  "port %u is already taken by listener '%s' at line %u",
					  b->port, a->name ? a->name : "", cfg_pos_value(x, other).line);
			}
			/* same port: the port's error says it all (default names follow it) */
			if (a->port != b->port && a->name != NULL && b->name != NULL &&
			    strcmp(a->name, b->name) == 0) {
				cfg_pathf(path, sizeof(path), "listeners[%u].name", i);
				cfg_error(x, cfg_pos_value(x, path), path,
					  "'%s' is already the name of the listener at line %u",
					  b->name, cfg_pos_value(x, other).line);
			}
		}
	}
}

void cfg_listeners_free(struct cfg *c)
{
	for (unsigned i = 0; i < c->n_listeners; i++) {
		free(c->listeners[i].name);
		free(c->listeners[i].hostname);
	}
	memset(c->listeners, 0, sizeof(c->listeners));
	c->n_listeners = 0;
}
