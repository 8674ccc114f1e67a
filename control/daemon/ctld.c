/* SPDX-License-Identifier: BSD-3-Clause */
/* mxgate-control's core: state, request handlers, the event loop (see ctld.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "control/common/cfg_json.h"
#include "control/common/log.h"
#include "control/common/proto.h"
#include "control/daemon/ctld.h"
#include "control/daemon/http.h"
#include "control/daemon/ops.h"
#include "control/daemon/prom.h"
#include "control/daemon/reload_ops.h"
#include "control/daemon/server.h"
#include "control/daemon/store.h"
#include "control/daemon/tel.h"

#define DEFAULT_SPAN_S 10 /* stats: rates over the last 10 s unless asked otherwise */

struct ctld {
	struct cfg *cfg;
	char *text; /* the config file as loaded */
	size_t text_len;
	char loaded_at[32];
	char metrics_listen[32];
	uint64_t start_ms;
	struct ctl_store *store;
	struct tel *tel;
	struct srv *srv;
	struct http *http;
	uint64_t samples;
	uint64_t bad_samples; /* replies of a shape the store refused */
	int sigfd;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static bool dp_up(const struct ctld *d)
{
	return tel_up(d->tel) && ctl_store_count(d->store) != 0;
}

/* ---- telemetry events ---- */

/* The sampler (tel.h) hands over whole samples only: every worker's row was read. */
static void on_sample(void *ctx, uint64_t now, json_t *info, json_t *stats, json_t *gauges,
		      json_t *ports)
{
	struct ctld *d = ctx;
	int rc = ctl_store_push(d->store, now, info, stats, gauges, ports);

	if (rc < 0) {
		d->bad_samples++;
		mx_log(CFG_LOG_WARNING, "sample_refused",
		       "the dataplane's replies are not shaped as expected (%s); sample dropped",
		       strerror(-rc));
		return;
	}
	if (rc == 1)
		mx_log(CFG_LOG_INFO, "window_restart",
		       "the dataplane's counters started over (it restarted, or its counters "
		       "changed); rates start again");
	d->samples++;
}

static void on_state(void *ctx, bool up)
{
	struct ctld *d = ctx;

	if (!up)
		ctl_store_clear(d->store); /* the next dataplane counts from zero */
}

/* ---- /metrics ---- */

static void render_metrics(void *ctx, struct sbuf *out)
{
	struct ctld *d = ctx;
	struct prom_state st = {
		.up = dp_up(d),
		.connects = tel_connects(d->tel),
		.samples = d->samples,
		.sample_errors = tel_sample_errors(d->tel) + d->bad_samples,
		.uptime_s = (double)(now_ms() - d->start_ms) / 1000.0,
		.version = MXGATE_VERSION,
	};

	prom_render(out, d->store, &st);
}

/* ---- mxgatectl requests ---- */

/* {"row": {"col": value}} of one table, from flat values. */
static json_t *table_json(const struct ctl_layout *l, const uint64_t *v, const double *rates)
{
	json_t *o = json_object();

	for (unsigned r = 0; r < l->n_rows; r++) {
		json_t *row = json_object();

		for (unsigned c = 0; c < l->n_cols; c++) {
			size_t i = (size_t)r * l->n_cols + c;

			json_object_set_new(row, l->cols[c],
					    rates != NULL ? json_real(rates[i]) :
							    json_integer((json_int_t)v[i]));
		}
		json_object_set_new(o, l->rows[r], row);
	}
	return o;
}

/* Rates of table K over SPAN_S, as JSON, with the span used in *SPAN_OUT (json null: none). */
static json_t *rates_json(const struct ctld *d, enum ctl_table_kind k, unsigned span_s,
			  json_t **span_out)
{
	const struct ctl_layout *l = ctl_store_layout(d->store, k);
	double *rates = calloc((size_t)l->n_rows * l->n_cols + 1, sizeof(*rates));
	uint64_t used =
		rates != NULL ? ctl_store_rates(d->store, k, (uint64_t)span_s * 1000, rates) : 0;
	json_t *o = used != 0 ? table_json(l, NULL, rates) : json_null();

	*span_out = used != 0 ? json_real((double)used / 1000.0) : json_null();
	free(rates);
	return o;
}

static json_t *lcores_json(const struct cfg *c)
{
	json_t *w = json_array();

	for (unsigned i = 0; i < c->dp.n_workers; i++)
		json_array_append_new(w, json_integer(c->dp.worker_cores[i]));
	return json_pack("{s:i, s:o}", "main", c->dp.main_core, "workers", w);
}

static json_t *status_ports(json_t *ports)
{
	json_t *a = json_array(), *p;
	const char *key;

	json_object_foreach(ports, key, p) {
		json_t *up = json_object_get(p, "link_up");

		json_array_append_new(
			a, json_pack("{s:s, s:O?, s:o, s:O?, s:O?, s:O?}", "key", key, "name",
				     json_object_get(p, "name"), "link_up",
				     json_is_integer(up) ? json_boolean(json_integer_value(up)) :
							   json_null(),
				     "speed_mbps", json_object_get(p, "link_speed_mbps"), "mtu",
				     json_object_get(p, "mtu"), "addresses",
				     json_object_get(p, "addresses")));
	}
	return a;
}

/* Open SMTP sessions from the latest gauges: "open" (the total) and "open_by_worker". */
static void sessions_open(const struct ctld *d, json_t *o)
{
	const struct ctl_layout *l = ctl_store_layout(d->store, CTL_T_GAUGES);
	const uint64_t *v = ctl_store_latest(d->store, CTL_T_GAUGES);
	int col = ctl_layout_col(l, "smtp_sessions_open");
	json_t *by;

	if (col < 0 || v == NULL) {
		json_object_set_new(o, "open", json_null());
		json_object_set_new(o, "open_by_worker", json_null());
		json_object_set_new(o, "open_note",
				    json_string("mxgate-dp runs no mail service: no sessions"));
		return;
	}
	by = json_object();
	for (unsigned r = 0; r < l->n_rows; r++) {
		json_t *n = json_integer((json_int_t)v[(size_t)r * l->n_cols + col]);

		if (strcmp(l->rows[r], "total") == 0)
			json_object_set_new(o, "open", n);
		else
			json_object_set_new(by, l->rows[r], n);
	}
	json_object_set_new(o, "open_by_worker", by);
}

static json_t *sessions_json(const struct ctld *d)
{
	const struct ctl_layout *l = ctl_store_layout(d->store, CTL_T_STATS);
	const uint64_t *v = ctl_store_latest(d->store, CTL_T_STATS);
	int row = ctl_layout_row(l, "total"), col = ctl_layout_col(l, "smtp_sessions");
	json_t *span = NULL;
	json_t *rates = rates_json(d, CTL_T_STATS, DEFAULT_SPAN_S, &span);
	json_t *per_s = json_object_get(json_object_get(rates, "total"), "smtp_sessions");
	json_t *o = json_pack("{s:O?, s:O?}", "per_s", per_s, "span_s", span);

	json_object_set_new(o, "total",
			    row >= 0 && col >= 0 && v != NULL ?
				    json_integer((json_int_t)v[(size_t)row * l->n_cols + col]) :
				    json_null());
	sessions_open(d, o);
	json_decref(rates);
	json_decref(span);
	return o;
}

/* The delivery queue from the latest counters: its size, the deferred part, a note. */
static json_t *queue_json(const struct ctld *d)
{
	const struct ctl_layout *l = ctl_store_layout(d->store, CTL_T_STATS);
	const uint64_t *v = ctl_store_latest(d->store, CTL_T_STATS);
	int row = ctl_layout_row(l, "total");
	int tracked = ctl_layout_col(l, "relay_queue_tracked");
	int ovf = ctl_layout_col(l, "relay_queue_overflow");
	int def = ctl_layout_col(l, "relay_queue_deferred");
	char note[160];

	if (v == NULL || row < 0 || tracked < 0 || ovf < 0 || def < 0)
		return json_pack("{s:n, s:n, s:s}", "size", "deferred", "note",
				 "unknown: the dataplane reports no relay queue counters");
	const uint64_t *t = v + (size_t)row * l->n_cols;
	uint64_t size = t[tracked] + t[ovf];

	snprintf(note, sizeof(note), "%llu message%s waiting, %llu deferred (mxgatectl queue list)",
		 (unsigned long long)size, size == 1 ? "" : "s", (unsigned long long)t[def]);
	return json_pack("{s:I, s:I, s:s}", "size", (json_int_t)size, "deferred",
			 (json_int_t)t[def], "note", note);
}

static json_t *do_status(struct ctld *d)
{
	uint64_t now = now_ms();
	const struct srv_counters *sc = srv_counters(d->srv);
	json_t *dp, *control;

	control = json_pack("{s:s, s:i, s:f, s:s, s:s, s:s, s:s, s:i, s:i, s:i, s:I, s:I, s:I}",
			    "version", MXGATE_VERSION, "pid", (int)getpid(), "uptime_s",
			    (double)(now - d->start_ms) / 1000.0, "config", d->cfg->path,
			    "loaded_at", d->loaded_at, "socket", d->cfg->control.socket,
			    "metrics_listen", d->metrics_listen, "sample_interval_ms",
			    d->cfg->control.sample_interval_ms, "history_s",
			    d->cfg->control.history_s, "clients", srv_clients(d->srv), "requests",
			    (json_int_t)sc->requests, "request_errors", (json_int_t)sc->errors,
			    "scrapes", (json_int_t)(d->http != NULL ? http_scrapes(d->http) : 0));
	dp = json_pack("{s:b, s:s, s:s, s:I, s:I, s:s}", "connected", dp_up(d), "telemetry_socket",
		       tel_path(d->tel), "last_error", tel_last_error(d->tel), "connects",
		       (json_int_t)tel_connects(d->tel), "sample_errors",
		       (json_int_t)(tel_sample_errors(d->tel) + d->bad_samples),
		       "last_sample_error", tel_sample_error(d->tel));
	json_object_set_new(dp, "for_s",
			    tel_since_ms(d->tel) != 0 ?
				    json_real((double)(now - tel_since_ms(d->tel)) / 1000.0) :
				    json_null());
	json_object_set_new(dp, "lcores_configured", lcores_json(d->cfg));
	if (dp_up(d)) {
		json_t *info = ctl_store_info(d->store);

		json_object_set_new(dp, "pid", json_integer(tel_peer_pid(d->tel)));
		json_object_set_new(dp, "dpdk_version", json_string(tel_peer_version(d->tel)));
		json_object_set(dp, "version", json_object_get(info, "version"));
		json_object_set(dp, "uptime_s", json_object_get(info, "uptime_s"));
		json_object_set(dp, "workers", json_object_get(info, "workers"));
		/* the lcores it runs on, as the config it started with placed them (ours may differ) */
		static const char *const lcores[] = { "main_lcore", "main_cpu", "worker_lcores",
						      "worker_cpus" };

		for (size_t i = 0; i < sizeof(lcores) / sizeof(lcores[0]); i++) {
			json_t *x = json_object_get(info, lcores[i]);

			json_object_set(dp, lcores[i], x != NULL ? x : json_null());
		}
		json_object_set(dp, "config", json_object_get(info, "config"));
		/* reloads: the generation in force, and older ones open sessions still use */
		static const char *const gen[] = { "config_generation", "snapshots_retired",
						   "sessions_on_retired", "log_level" };

		for (size_t i = 0; i < sizeof(gen) / sizeof(gen[0]); i++) {
			json_t *x = json_object_get(info, gen[i]);

			json_object_set(dp, gen[i], x != NULL ? x : json_null());
		}
		json_object_set_new(
			dp, "sample_age_ms",
			json_integer((json_int_t)(now - ctl_store_latest_ms(d->store))));
		json_object_set_new(dp, "ports", status_ports(ctl_store_ports(d->store)));
		json_object_set_new(dp, "sessions", sessions_json(d));
		json_object_set_new(dp, "queue", queue_json(d));
	}
	return json_pack("{s:o, s:o}", "control", control, "dataplane", dp);
}

static char *need_dataplane(struct ctld *d, const struct ctl_request *req)
{
	char msg[400];

	if (tel_last_error(d->tel)[0] == '\0' && tel_sample_error(d->tel)[0] != '\0')
		snprintf(msg, sizeof(msg),
			 "mxgate-dp is not connected (its telemetry answers, but no sample could "
			 "be read: %s)",
			 tel_sample_error(d->tel));
	else
		snprintf(msg, sizeof(msg), "mxgate-dp is not connected (%s)",
			 tel_last_error(d->tel)[0] != '\0' ?
				 tel_last_error(d->tel) :
				 "no sample read yet; try again in a second");
	return ctl_reply_error(req->id, CTL_E_DATAPLANE_DOWN, msg);
}

static json_t *do_stats(struct ctld *d, unsigned span_s)
{
	const struct ctl_layout *l = ctl_store_layout(d->store, CTL_T_STATS);
	json_t *rows = json_array(), *span = NULL;
	json_t *rates = rates_json(d, CTL_T_STATS, span_s, &span);

	for (unsigned r = 0; r < l->n_rows; r++)
		json_array_append_new(rows, json_string(l->rows[r]));
	return json_pack("{s:I, s:i, s:o, s:o, s:o, s:o, s:o}", "sample_age_ms",
			 (json_int_t)(now_ms() - ctl_store_latest_ms(d->store)), "span_asked_s",
			 span_s, "span_s", span, "rows", rows, "counters",
			 table_json(l, ctl_store_latest(d->store, CTL_T_STATS), NULL), "rates",
			 rates, "gauges",
			 table_json(ctl_store_layout(d->store, CTL_T_GAUGES),
				    ctl_store_latest(d->store, CTL_T_GAUGES), NULL));
}

static json_t *do_ports(struct ctld *d)
{
	json_t *span = NULL, *rates = rates_json(d, CTL_T_PORTS, DEFAULT_SPAN_S, &span);
	json_t *ports = json_deep_copy(ctl_store_ports(d->store));
	const char *key;
	json_t *p;

	json_object_foreach(ports, key, p) {
		json_t *r = json_object_get(rates, key);

		json_object_set(p, "rates", r != NULL ? r : json_null());
	}
	json_decref(rates);
	return json_pack("{s:I, s:o, s:o}", "sample_age_ms",
			 (json_int_t)(now_ms() - ctl_store_latest_ms(d->store)), "span_s", span,
			 "ports", ports);
}

static json_t *do_config_show(struct ctld *d)
{
	json_t *text = json_stringn(d->text, d->text_len);

	return json_pack("{s:s, s:s, s:o, s:o}", "path", d->cfg->path, "loaded_at", d->loaded_at,
			 "text", text != NULL ? text : json_null(), "effective",
			 cfg_to_json(d->cfg));
}

/* sessions and queue.*: asked of the dataplane now, page by page (ops.h). */
static char *do_ops(struct ctld *d, const struct ctl_request *req)
{
	json_t *w = json_object_get(ctl_store_info(d->store), "workers");
	unsigned workers = json_is_integer(w) ? (unsigned)json_integer_value(w) : 0;
	struct ops_error e = { 0 };
	json_t *r;

	if (req->cmd->cmd == CTL_CMD_SESSIONS)
		r = ops_sessions(d->cfg->control.telemetry_socket, workers, &e);
	else
		r = ops_queue(d->cfg->control.telemetry_socket, workers,
			      req->cmd->name + sizeof("queue.") - 1, req->qid, &e);
	if (r == NULL)
		return ctl_reply_error(req->id, e.code != NULL ? e.code : CTL_E_INTERNAL,
				       e.message);
	return ctl_reply_ok(req->id, r);
}

/* config.reload (reload_ops.h): mxgate-control keeps the file once mxgate-dp applied it. */
static char *do_reload(struct ctld *d, const struct ctl_request *req)
{
	struct reload_out o;
	time_t wall = time(NULL);
	struct tm tm;

	reload_config(d->cfg, req->file, dp_up(d), &o);
	if (o.result == NULL)
		return ctl_reply_error(req->id, o.code, o.message);
	if (o.cfg != NULL) {
		cfg_free(d->cfg);
		d->cfg = o.cfg;
		free(d->text);
		d->text = o.text;
		d->text_len = o.text != NULL ? o.text_len : 0;
		gmtime_r(&wall, &tm);
		strftime(d->loaded_at, sizeof(d->loaded_at), "%Y-%m-%dT%H:%M:%SZ", &tm);
		mx_log_set_level(d->cfg->logging.level);
	}
	return ctl_reply_ok(req->id, o.result);
}

static char *handle(void *ctx, const struct ctl_request *req)
{
	struct ctld *d = ctx;
	json_t *result = NULL;

	if (req->cmd->missing != NULL) {
		char msg[256];

		snprintf(msg, sizeof(msg), "not available yet: %s", req->cmd->missing);
		return ctl_reply_error(req->id, CTL_E_NOT_AVAILABLE, msg);
	}
	switch (req->cmd->cmd) {
	case CTL_CMD_STATUS:
		result = do_status(d);
		break;
	case CTL_CMD_STATS:
		if (!dp_up(d))
			return need_dataplane(d, req);
		result = do_stats(d, req->span_s != 0 ? req->span_s : DEFAULT_SPAN_S);
		break;
	case CTL_CMD_PORTS:
		if (!dp_up(d))
			return need_dataplane(d, req);
		result = do_ports(d);
		break;
	case CTL_CMD_CONFIG_SHOW:
		result = do_config_show(d);
		break;
	case CTL_CMD_ROUTES:
		result = cfg_routes_json(&d->cfg->routes);
		break;
	case CTL_CMD_CONFIG_RELOAD:
		return do_reload(d, req);
	case CTL_CMD_LOG_LEVEL:
		result = reload_log_level(d->cfg->control.telemetry_socket, dp_up(d),
					  (enum cfg_log_level)req->level);
		break;
	case CTL_CMD_SESSIONS:
	case CTL_CMD_QUEUE:
		if (!dp_up(d))
			return need_dataplane(d, req);
		return do_ops(d, req);
	default:
		return ctl_reply_error(req->id, CTL_E_INTERNAL, "command without a handler");
	}
	if (result == NULL)
		return ctl_reply_error(req->id, CTL_E_INTERNAL, "out of memory");
	return ctl_reply_ok(req->id, result);
}

/* ---- life cycle ---- */

struct ctld *ctld_new(struct cfg *cfg, char *text, size_t len)
{
	struct ctld *d = calloc(1, sizeof(*d));
	const struct cfg_control *cc = &cfg->control;
	struct in_addr in = { .s_addr = cc->metrics_addr };
	char a[INET_ADDRSTRLEN];
	sigset_t sigs;
	time_t wall = time(NULL);
	struct tm tm;
	int err = 0;

	if (d == NULL) {
		cfg_free(cfg);
		free(text);
		return NULL;
	}
	d->cfg = cfg;
	d->text = text;
	d->text_len = len;
	d->sigfd = -1;
	d->start_ms = now_ms();
	gmtime_r(&wall, &tm);
	strftime(d->loaded_at, sizeof(d->loaded_at), "%Y-%m-%dT%H:%M:%SZ", &tm);
	inet_ntop(AF_INET, &in, a, sizeof(a));
	if (cc->metrics_on)
		snprintf(d->metrics_listen, sizeof(d->metrics_listen), "%s:%u", a,
			 cc->metrics_port);
	else
		snprintf(d->metrics_listen, sizeof(d->metrics_listen), "off");

	d->store = ctl_store_new(cc->history_s * 1000 / cc->sample_interval_ms);
	d->tel = tel_new(cc->telemetry_socket, cc->sample_interval_ms, on_sample, on_state, d);
	if (d->store == NULL || d->tel == NULL) {
		mx_log(CFG_LOG_ERROR, "start", "out of memory");
		goto fail;
	}
	d->srv = srv_new(cc->socket, handle, d, &err);
	if (d->srv == NULL) {
		mx_log(CFG_LOG_ERROR, "start", "cannot listen on %s: %s", cc->socket,
		       err == -EADDRINUSE ? "another mxgate-control answers there" :
		       err == -EEXIST	  ? "a file that is not a socket is in the way" :
					    strerror(-err));
		goto fail;
	}
	if (cc->metrics_on) {
		d->http = http_new(cc->metrics_addr, htons(cc->metrics_port), render_metrics, d);
		if (d->http == NULL)
			goto fail;
	}
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	d->sigfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
	if (d->sigfd < 0) {
		mx_log(CFG_LOG_ERROR, "start", "signalfd: %s", strerror(errno));
		goto fail;
	}
	return d;
fail:
	ctld_free(d);
	return NULL;
}

void ctld_free(struct ctld *d)
{
	if (d == NULL)
		return;
	http_free(d->http);
	srv_free(d->srv);
	tel_free(d->tel);
	ctl_store_free(d->store);
	if (d->sigfd >= 0)
		close(d->sigfd);
	cfg_free(d->cfg);
	free(d->text);
	free(d);
}

static int min_timeout(int a, int b)
{
	if (a < 0)
		return b;
	if (b < 0)
		return a;
	return a < b ? a : b;
}

/* Returns 1 to keep running, 0 to stop. */
static int on_signal(struct ctld *d)
{
	struct signalfd_siginfo si;

	while (read(d->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			int rc = mx_log_reopen();

			mx_log(rc == 0 ? CFG_LOG_INFO : CFG_LOG_ERROR, "log_reopen",
			       rc == 0 ? "log file reopened" : "cannot reopen the log file: %s",
			       strerror(-rc));
			continue;
		}
		mx_log(CFG_LOG_INFO, "stop", "stopping on signal %u", si.ssi_signo);
		return 0;
	}
	return 1;
}

int ctld_run(struct ctld *d)
{
	struct pollfd fds[1 + SRV_MAX_CLIENTS + 3];

	mx_log(CFG_LOG_INFO, "ready",
	       "mxgate-control %s ready: control socket %s, metrics %s, telemetry %s",
	       MXGATE_VERSION, d->cfg->control.socket, d->metrics_listen,
	       d->cfg->control.telemetry_socket);
	for (;;) {
		uint64_t now = now_ms();
		unsigned n_srv = srv_pollfds(d->srv, fds), n = n_srv;
		int tel_i = -1, sig_i, timeout;

		tel_run(d->tel, now, 0); /* connect or send when due, before we sleep */
		if (tel_fd(d->tel) >= 0) {
			tel_i = (int)n;
			fds[n++] = (struct pollfd){ .fd = tel_fd(d->tel), .events = POLLIN };
		}
		if (d->http != NULL && http_fd(d->http) >= 0) {
			fds[n++] = (struct pollfd){ .fd = http_fd(d->http), .events = POLLIN };
		}
		sig_i = (int)n;
		fds[n++] = (struct pollfd){ .fd = d->sigfd, .events = POLLIN };
		timeout = min_timeout(tel_timeout_ms(d->tel, now), srv_timeout_ms(d->srv, now));
		if (d->http != NULL)
			timeout = min_timeout(timeout, http_timeout_ms(d->http));
		if (poll(fds, n, timeout) < 0 && errno != EINTR) {
			mx_log(CFG_LOG_ERROR, "poll", "poll: %s", strerror(errno));
			return 1;
		}
		now = now_ms();
		if ((fds[sig_i].revents & POLLIN) && on_signal(d) == 0)
			return 0;
		srv_run(d->srv, fds, n_srv, now);
		tel_run(d->tel, now, tel_i >= 0 ? fds[tel_i].revents : 0);
		if (d->http != NULL)
			http_run(d->http);
	}
}
