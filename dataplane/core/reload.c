/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Config reload and log levels at run time (reload.h). Everything here runs
 * on the telemetry thread under telemetry.c's lock: loading and checking a
 * file takes milliseconds and never touches a worker; the swap itself is
 * one pointer store (snap.c).
 */
#include "dataplane/core/reload.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_log.h>

#include "control/common/log.h"
#include "control/config/restart.h"
#include "dataplane/core/snap.h"

int dp_log_level = CFG_LOG_INFO;

/* Outcomes since start; guarded by the telemetry lock like everything here. */
static struct {
	uint64_t applied;
	uint64_t invalid;
	uint64_t refused; /* keys that need a restart */
	uint64_t failed;  /* out of memory and the like */
} st;

/* One string of a telemetry array: cut to what a telemetry string holds. */
static void add_line(struct rte_tel_data *a, const char *s)
{
	char buf[RTE_TEL_MAX_STRING_LEN];
	size_t n = strlen(s);

	if (n < sizeof(buf)) {
		rte_tel_data_add_array_string(a, s);
		return;
	}
	memcpy(buf, s, sizeof(buf) - 4);
	memcpy(buf + sizeof(buf) - 4, "...", 4);
	rte_tel_data_add_array_string(a, buf);
}

struct restart_list {
	struct rte_tel_data *keys, *why;
	unsigned n;
	char first[RTE_TEL_MAX_STRING_LEN]; /* for the log line */
};

static void on_restart(void *arg, const char *key, const char *o, const char *n, const char *why)
{
	struct restart_list *l = arg;
	char line[512];

	snprintf(line, sizeof(line), "%s: %s -> %s", key, o, n);
	if (l->n++ == 0)
		snprintf(l->first, sizeof(l->first), "%s", key);
	if (l->n > RTE_TEL_MAX_ARRAY_ENTRIES)
		return; /* counted, and the count is in the reply */
	add_line(l->keys, line);
	add_line(l->why, why);
}

/* "FILE:LINE:COL: key: what" lines in ERRS as "LINE:COL: key: what" strings in A. */
static unsigned error_lines(struct rte_tel_data *a, char *errs, const char *path)
{
	size_t plen = strlen(path);
	unsigned n = 0;
	char *save = NULL;

	for (char *line = strtok_r(errs, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, path, plen) == 0 && line[plen] == ':')
			line += plen + 1;
		if (n++ < RTE_TEL_MAX_ARRAY_ENTRIES)
			add_line(a, line);
	}
	return n;
}

static int reply_invalid(struct rte_tel_data *d, const char *path, char *errs)
{
	struct rte_tel_data *a = rte_tel_data_alloc();
	unsigned n = 0;

	st.invalid++;
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_string(d, "status", "invalid");
	rte_tel_data_add_dict_string(d, "file", path);
	if (a != NULL) {
		rte_tel_data_start_array(a, RTE_TEL_STRING_VAL);
		n = error_lines(a, errs, path);
		rte_tel_data_add_dict_container(d, "errors", a, 0);
	}
	rte_tel_data_add_dict_u64(d, "error_count", n);
	mx_log(CFG_LOG_WARNING, "config_reload",
	       "%s is not valid (%u error%s); nothing changed", path, n, n == 1 ? "" : "s");
	return 0;
}

int dp_reload_tel(struct dp *dp, const char *params, struct rte_tel_data *d)
{
	const struct cfg *run = dp_snap_cfg(dp);
	const char *path = params != NULL && *params != '\0' ? params : run->path;
	struct restart_list rl = { 0 };
	char *errs = NULL, err[RTE_TEL_MAX_STRING_LEN];
	size_t errs_len = 0;
	FILE *ef;
	struct cfg *c;
	int64_t gen;

	if (dp->snaps == NULL) {
		rte_tel_data_start_dict(d);
		rte_tel_data_add_dict_string(d, "error", "this program cannot reload its config");
		return 0;
	}
	if (path == NULL) {
		rte_tel_data_start_dict(d);
		rte_tel_data_add_dict_string(d, "error", "no file given and none loaded at start");
		return 0;
	}
	ef = open_memstream(&errs, &errs_len);
	if (ef == NULL)
		return -ENOMEM;
	c = cfg_load(path, ef);
	if (c != NULL && dp->cfg_fixup != NULL && dp->cfg_fixup(c) != 0) {
		fprintf(ef, "%s: the command line's overrides of mxgate-dp do not apply to it\n",
			path);
		cfg_free(c);
		c = NULL;
	}
	fclose(ef);
	if (c == NULL) {
		reply_invalid(d, path, errs != NULL ? errs : (char *)"");
		free(errs);
		return 0;
	}
	free(errs);

	/* all or nothing: a key that needs a restart keeps the whole file out */
	rl.keys = rte_tel_data_alloc();
	rl.why = rte_tel_data_alloc();
	if (rl.keys == NULL || rl.why == NULL) {
		rte_tel_data_free(rl.keys);
		rte_tel_data_free(rl.why);
		cfg_free(c);
		st.failed++;
		return -ENOMEM;
	}
	rte_tel_data_start_array(rl.keys, RTE_TEL_STRING_VAL);
	rte_tel_data_start_array(rl.why, RTE_TEL_STRING_VAL);
	cfg_restart_diff(dp->cfg, c, CFG_RESTART_DP, on_restart, &rl);

	enum cfg_log_level level = c->logging.level;

	gen = 0;
	if (rl.n == 0) {
		gen = dp_snap_publish(dp, c, err, sizeof(err)); /* takes c */
		c = NULL;
		if (gen == -E2BIG) { /* the mail service says what only a restart can serve */
			const char *colon = strchr(err, ':');

			add_line(rl.keys, err);
			add_line(rl.why, "session memory is reserved at start");
			rl.n = 1;
			snprintf(rl.first, sizeof(rl.first), "%.*s",
				 colon != NULL ? (int)(colon - err) : (int)strlen(err), err);
		}
	} else {
		cfg_free(c);
		c = NULL;
	}
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_string(d, "file", path);
	if (rl.n != 0) {
		st.refused++;
		rte_tel_data_add_dict_string(d, "status", "restart_needed");
		rte_tel_data_add_dict_container(d, "restart", rl.keys, 0);
		rte_tel_data_add_dict_container(d, "restart_why", rl.why, 0);
		rte_tel_data_add_dict_u64(d, "restart_count", rl.n);
		mx_log(CFG_LOG_WARNING, "config_reload",
		       "%s changes %u setting%s that need a restart (%s%s); nothing changed", path,
		       rl.n, rl.n == 1 ? "" : "s", rl.first, rl.n > 1 ? ", ..." : "");
		return 0;
	}
	rte_tel_data_free(rl.keys);
	rte_tel_data_free(rl.why);
	if (gen < 0) {
		st.failed++;
		rte_tel_data_add_dict_string(d, "status", "failed");
		rte_tel_data_add_dict_string(d, "error", err);
		mx_log(CFG_LOG_ERROR, "config_reload", "%s: %s; nothing changed", path, err);
		return 0;
	}
	st.applied++;
	dp_log_set_level(level);
	unsigned retired = dp_snap_reclaim(dp);

	rte_tel_data_add_dict_string(d, "status", "applied");
	rte_tel_data_add_dict_u64(d, "generation", (uint64_t)gen);
	rte_tel_data_add_dict_u64(d, "retired", retired);
	mx_log(CFG_LOG_INFO, "config_reload",
	       "%s applied as generation %lld; sessions already open keep the settings they "
	       "started with (%u older generation%s still in use)",
	       path, (long long)gen, retired, retired == 1 ? "" : "s");
	return 0;
}

void dp_log_set_level(enum cfg_log_level level)
{
	static const uint32_t rte[] = {
		[CFG_LOG_ERROR] = RTE_LOG_ERR,
		[CFG_LOG_WARNING] = RTE_LOG_WARNING,
		[CFG_LOG_INFO] = RTE_LOG_INFO,
		[CFG_LOG_DEBUG] = RTE_LOG_DEBUG,
	};

	if ((unsigned)level > CFG_LOG_DEBUG)
		return;
	__atomic_store_n(&dp_log_level, (int)level, __ATOMIC_RELAXED);
	mx_log_set_level(level);
	rte_log_set_global_level(rte[level]);
}

int dp_log_level_tel(struct dp *dp, const char *params, struct rte_tel_data *d)
{
	enum cfg_log_level level, was = (enum cfg_log_level)__atomic_load_n(&dp_log_level,
									   __ATOMIC_RELAXED);
	char msg[RTE_TEL_MAX_STRING_LEN];

	(void)dp;
	rte_tel_data_start_dict(d);
	if (params != NULL && *params != '\0') {
		if (cfg_log_level_parse(params, &level) != 0) {
			snprintf(msg, sizeof(msg),
				 "'%.40s' is not a log level (error, warning, info, debug)", params);
			rte_tel_data_add_dict_string(d, "error", msg);
			return 0;
		}
		dp_log_set_level(level);
		/* a warning, so it shows at every level but error */
		mx_log(CFG_LOG_WARNING, "log_level", "log level %s (was %s)",
		       cfg_log_level_name(level), cfg_log_level_name(was));
		rte_tel_data_add_dict_string(d, "previous", cfg_log_level_name(was));
		was = level;
	}
	rte_tel_data_add_dict_string(d, "level", cfg_log_level_name(was));
	return 0;
}

void dp_reload_info(struct dp *dp, struct rte_tel_data *d)
{
	struct dp_snap_status s;

	dp_snap_status(dp, &s);
	rte_tel_data_add_dict_u64(d, "config_generation", s.gen);
	rte_tel_data_add_dict_u64(d, "reloads_applied", st.applied);
	rte_tel_data_add_dict_u64(d, "reloads_invalid", st.invalid);
	rte_tel_data_add_dict_u64(d, "reloads_refused", st.refused);
	rte_tel_data_add_dict_u64(d, "reloads_failed", st.failed);
	rte_tel_data_add_dict_u64(d, "snapshots_retired", s.retired);
	rte_tel_data_add_dict_u64(d, "snapshots_freed", s.freed);
	rte_tel_data_add_dict_u64(d, "sessions_on_retired", s.sessions < 0 ? 0 : (uint64_t)s.sessions);
	rte_tel_data_add_dict_string(d, "log_level",
				     cfg_log_level_name((enum cfg_log_level)__atomic_load_n(
					     &dp_log_level, __ATOMIC_RELAXED)));
}
