/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The "control:" and "logging:" sections: mxgate-control's socket, metrics
 * address, telemetry socket and sampling, and where logs go. Paths are checked
 * for what would make the daemon fail at start (relative, too long for a unix
 * socket, a log directory that is not there) so `config check` says it first.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cyaml/cyaml.h>

#include "control/config/config.h"
#include "control/config/config_priv.h"

/* sun_path holds 108 bytes with the terminating NUL. */
#define MAX_SOCKET_PATH (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)
#define MAX_SAMPLES	86400u /* a day at one per second: the sample store's bound */

/* ---- schema ---- */

/* clang-format off */
#define STR(key, type, member) \
	CYAML_FIELD_STRING_PTR(key, CYAML_FLAG_OPTIONAL, type, member, 0, CYAML_UNLIMITED)

const cyaml_schema_field_t cfg_control_fields[] = {
	STR("socket", struct cfg_raw_control, socket),
	STR("metrics_listen", struct cfg_raw_control, metrics_listen),
	STR("telemetry_socket", struct cfg_raw_control, telemetry_socket),
	STR("sample_interval_ms", struct cfg_raw_control, sample_interval_ms),
	STR("history_s", struct cfg_raw_control, history_s),
	CYAML_FIELD_END
};

const cyaml_schema_field_t cfg_logging_fields[] = {
	STR("level", struct cfg_raw_logging, level),
	STR("destination", struct cfg_raw_logging, destination),
	CYAML_FIELD_END
};
/* clang-format on */

/*
 * An absolute path that fits a unix socket address. *OUT is a copy of RAW or
 * DEF. Returns 0, or -1 after reporting (then *OUT holds a copy of DEF).
 */
static int socket_path(struct cfg_ctx *x, const char *path, const char *raw, const char *def,
		       char **out)
{
	if (cfg_get_str(x, path, raw, def, out) != 0 || raw == NULL)
		return raw == NULL ? 0 : -1;
	if ((*out)[0] != '/') {
		cfg_error(x, cfg_pos_value(x, path), path,
			  "'%s' is not an absolute path; write one such as %s", raw, def);
	} else if (strlen(*out) > MAX_SOCKET_PATH) {
		cfg_error(x, cfg_pos_value(x, path), path,
			  "'%s' is %zu characters; a unix socket path holds at most %zu", raw,
			  strlen(raw), MAX_SOCKET_PATH);
	} else {
		return 0;
	}
	free(*out);
	*out = def != NULL ? strdup(def) : NULL;
	if (def != NULL && *out == NULL)
		x->oom = true;
	return -1;
}

/* "ADDRESS:PORT" with an IPv4 address, or "off". */
static void metrics_listen(struct cfg_ctx *x, const char *raw, struct cfg_control *c)
{
	const char *path = "control.metrics_listen";
	char addr[INET_ADDRSTRLEN];
	const char *v = raw != NULL ? raw : CFG_METRICS_DEFAULT;
	const char *colon = strrchr(v, ':');
	struct in_addr in;
	char *dup = NULL;
	unsigned port;

	c->metrics_on = true;
	c->metrics_addr = htonl(INADDR_LOOPBACK);
	c->metrics_port = 9464;
	if (raw == NULL)
		return;
	if (cfg_get_str(x, path, raw, CFG_METRICS_DEFAULT, &dup) != 0) {
		free(dup);
		return;
	}
	free(dup);
	if (strcmp(raw, "off") == 0) {
		c->metrics_on = false;
		return;
	}
	if (colon == NULL) {
		cfg_error(x, cfg_pos_value(x, path), path,
			  "'%s' has no port; write ADDRESS:PORT such as 127.0.0.1:9464, or off",
			  raw);
		return;
	}
	if ((size_t)(colon - v) >= sizeof(addr) || colon == v) {
		cfg_error(x, cfg_pos_value(x, path), path,
			  "'%s' is not ADDRESS:PORT with an IPv4 address (such as 127.0.0.1:9464)",
			  raw);
		return;
	}
	memcpy(addr, v, (size_t)(colon - v));
	addr[colon - v] = '\0';
	if (inet_pton(AF_INET, addr, &in) != 1) {
		cfg_error(x, cfg_pos_value(x, path), path,
			  "'%s' is not an IPv4 address; write ADDRESS:PORT such as 127.0.0.1:9464",
			  addr);
		return;
	}
	const char *p = colon + 1;

	if (p[0] < '0' || p[0] > '9' || strspn(p, "0123456789") != strlen(p) || strlen(p) > 5 ||
	    (port = (unsigned)strtoul(p, NULL, 10)) == 0 || port > 65535) {
		cfg_error(x, cfg_pos_value(x, path), path, "'%s' is not a port number (1..65535)",
			  p);
		return;
	}
	c->metrics_addr = in.s_addr;
	c->metrics_port = (uint16_t)port;
}

void cfg_control_build(struct cfg_ctx *x, const struct cfg_raw_control *raw,
		       const struct cfg_dataplane *dp, struct cfg_control *c)
{
	static const struct cfg_raw_control none;
	const char *prefix = dp->file_prefix != NULL ? dp->file_prefix : "mxgate";
	char tel[256];

	if (raw == NULL)
		raw = &none;
	socket_path(x, "control.socket", raw->socket, CFG_CONTROL_SOCKET_DEFAULT, &c->socket);
	metrics_listen(x, raw->metrics_listen, c);
	snprintf(tel, sizeof(tel), CFG_TELEMETRY_PATH_FMT, prefix);
	socket_path(x, "control.telemetry_socket", raw->telemetry_socket, tel,
		    &c->telemetry_socket);

	int ok = cfg_get_uint(x, "control.sample_interval_ms", raw->sample_interval_ms, 100, 60000,
			      1000, &c->sample_interval_ms) == 0;

	if (cfg_get_uint(x, "control.history_s", raw->history_s, 2, MAX_SAMPLES, 300,
			 &c->history_s) != 0 ||
	    !ok)
		return;
	/* rates need two samples; memory needs a bound */
	unsigned long long samples =
		(unsigned long long)c->history_s * 1000 / c->sample_interval_ms;

	if (samples < 2)
		cfg_error(x, cfg_pos_value(x, "control.history_s"), "control.history_s",
			  "%u s keeps fewer than 2 samples at one every %u ms; rates need two",
			  c->history_s, c->sample_interval_ms);
	else if (samples > MAX_SAMPLES)
		cfg_error(x, cfg_pos_value(x, "control.history_s"), "control.history_s",
			  "%u s at one sample every %u ms is %llu samples; at most %u are kept",
			  c->history_s, c->sample_interval_ms, samples, MAX_SAMPLES);
}

void cfg_logging_build(struct cfg_ctx *x, const struct cfg_raw_logging *raw, struct cfg_logging *l)
{
	static const struct cfg_raw_logging none;
	const char *path = "logging.destination";
	struct stat st;
	char *dest = NULL;
	int level;

	if (raw == NULL)
		raw = &none;
	cfg_get_enum(x, "logging.level", raw->level, cfg_log_levels, CFG_LOG_INFO, &level);
	l->level = (enum cfg_log_level)level;
	l->dest = CFG_LOG_STDOUT;
	if (cfg_get_str(x, path, raw->destination, "stdout", &dest) != 0 || dest == NULL)
		goto out;
	if (strcmp(dest, "stdout") == 0)
		goto out;
	if (strcmp(dest, "stderr") == 0) {
		l->dest = CFG_LOG_STDERR;
		goto out;
	}
	if (dest[0] != '/') {
		cfg_error(x, cfg_pos_value(x, path), path,
			  "'%s' is neither stdout, stderr nor an absolute file path", dest);
		goto out;
	}
	if (dest[strlen(dest) - 1] == '/' || (stat(dest, &st) == 0 && S_ISDIR(st.st_mode))) {
		cfg_error(x, cfg_pos_value(x, path), path,
			  "'%s' is a directory; name the log file in it", dest);
		goto out;
	}

	char *slash = strrchr(dest, '/');

	if (slash != dest) {
		*slash = '\0';
		if (stat(dest, &st) != 0 || !S_ISDIR(st.st_mode)) {
			cfg_error(x, cfg_pos_value(x, path), path,
				  "directory %s %s; create it or log elsewhere", dest,
				  stat(dest, &st) != 0 ? "does not exist" : "is not a directory");
			goto out;
		}
		*slash = '/';
	}
	l->dest = CFG_LOG_FILE;
	l->file = dest;
	dest = NULL;
out:
	free(dest);
}

void cfg_control_free(struct cfg_control *c, struct cfg_logging *l)
{
	free(c->socket);
	free(c->telemetry_socket);
	memset(c, 0, sizeof(*c));
	free(l->file);
	memset(l, 0, sizeof(*l));
}
