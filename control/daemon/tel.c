/* SPDX-License-Identifier: BSD-3-Clause */
/* The non-blocking telemetry client and sampler (see tel.h). */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "control/common/log.h"
#include "control/daemon/tel.h"

#define TEL_MIN_BUF (64u << 10)
#define TEL_MAX_BUF (16u << 20)

enum tel_state {
	TEL_DOWN,     /* waiting for the next connection attempt */
	TEL_GREETING, /* connected, the server's greeting not read yet */
	TEL_IDLE,     /* connected, waiting for the next sample time */
	TEL_WAIT,     /* a command sent, its reply not read yet */
};

#define TEL_CMD_MAX 64

struct tel {
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	unsigned interval_ms;
	tel_sample_fn on_sample;
	tel_state_fn on_state;
	void *ctx;

	enum tel_state state;
	int fd;
	uint64_t due_ms; /* next attempt (DOWN), sample (IDLE) or deadline (GREETING, WAIT) */
	uint64_t next_sample_ms;
	unsigned backoff_ms;
	bool started;
	bool warned; /* the current outage was logged at warning level */
	char *buf;
	size_t buf_size;
	/* A sample is /mxgate/info, /mxgate/stats,N for each of its workers, /mxgate/gauges
	 * and /mxgate/ports, asked one after the other: STEP counts the replies read. */
	unsigned step;
	unsigned workers;      /* of this sample, from its /mxgate/info */
	char cmd[TEL_CMD_MAX]; /* the command whose reply is awaited */
	uint64_t sample_ms;    /* when the first command of this sample went out */
	json_t *info, *stats, *gauges, *ports;

	uint64_t connects;
	uint64_t sample_errors;
	uint64_t since_ms;
	pid_t peer_pid;
	char peer_version[64];
	char last_error[256];
	char sample_error[256];
};

struct tel *tel_new(const char *path, unsigned interval_ms, tel_sample_fn on_sample,
		    tel_state_fn on_state, void *ctx)
{
	struct tel *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	snprintf(t->path, sizeof(t->path), "%s", path);
	t->interval_ms = interval_ms;
	t->on_sample = on_sample;
	t->on_state = on_state;
	t->ctx = ctx;
	t->fd = -1;
	t->state = TEL_DOWN;
	t->backoff_ms = TEL_BACKOFF_MIN_MS;
	return t;
}

static void drop_replies(struct tel *t)
{
	json_decref(t->info);
	json_decref(t->stats);
	json_decref(t->gauges);
	json_decref(t->ports);
	t->info = t->stats = t->gauges = t->ports = NULL;
	t->step = 0;
	t->workers = 0;
}

void tel_free(struct tel *t)
{
	if (t == NULL)
		return;
	drop_replies(t);
	if (t->fd >= 0)
		close(t->fd);
	free(t->buf);
	free(t);
}

/* The link is lost (or never came): close, schedule a retry, tell the owner once. */
static void lose(struct tel *t, uint64_t now, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void lose(struct tel *t, uint64_t now, const char *fmt, ...)
{
	bool was_up = t->state != TEL_DOWN && t->state != TEL_GREETING;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(t->last_error, sizeof(t->last_error), fmt, ap);
	va_end(ap);
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
	drop_replies(t);
	t->state = TEL_DOWN;
	if (was_up) {
		t->backoff_ms = TEL_BACKOFF_MIN_MS;
		t->since_ms = now;
		t->warned = true;
		mx_log(CFG_LOG_WARNING, "telemetry_lost",
		       "lost the dataplane's telemetry at %s: %s; reconnecting", t->path,
		       t->last_error);
		t->on_state(t->ctx, false);
	} else if (!t->warned) {
		t->warned = true;
		mx_log(CFG_LOG_WARNING, "telemetry_unavailable",
		       "cannot reach the dataplane's telemetry at %s: %s; retrying every %u ms at "
		       "most",
		       t->path, t->last_error, TEL_BACKOFF_MAX_MS);
	} else {
		mx_log(CFG_LOG_DEBUG, "telemetry_retry", "%s: %s; next try in %u ms", t->path,
		       t->last_error, t->backoff_ms);
	}
	t->due_ms = now + t->backoff_ms;
	t->backoff_ms =
		t->backoff_ms * 2 > TEL_BACKOFF_MAX_MS ? TEL_BACKOFF_MAX_MS : t->backoff_ms * 2;
}

static void try_connect(struct tel *t, uint64_t now)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		lose(t, now, "socket: %s", strerror(errno));
		return;
	}
	memcpy(sa.sun_path, t->path, sizeof(sa.sun_path));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int e = errno;

		close(fd);
		lose(t, now, "%s",
		     e == ENOENT       ? "no such socket (is mxgate-dp running?)" :
		     e == ECONNREFUSED ? "connection refused (mxgate-dp stopped)" :
					 strerror(e));
		return;
	}
	t->fd = fd;
	t->state = TEL_GREETING;
	t->due_ms = now + TEL_REPLY_TIMEOUT_MS;
}

/* Reads one message into t->buf; returns its length, 0 when none is there yet, or -1 (lost). */
static ssize_t read_msg(struct tel *t, uint64_t now)
{
	ssize_t n;

	if (t->buf == NULL) {
		t->buf = malloc(TEL_MIN_BUF);
		if (t->buf == NULL) {
			lose(t, now, "out of memory");
			return -1;
		}
		t->buf_size = TEL_MIN_BUF;
	}
	n = recv(t->fd, t->buf, t->buf_size - 1, MSG_TRUNC);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n < 0) {
		lose(t, now, "recv: %s", strerror(errno));
		return -1;
	}
	if (n == 0) {
		lose(t, now, "the dataplane closed the connection");
		return -1;
	}
	if ((size_t)n >= t->buf_size) {
		lose(t, now, "a reply of %zd bytes is longer than the %zu announced", n,
		     t->buf_size - 1);
		return -1;
	}
	t->buf[n] = '\0';
	return n;
}

static void greeting(struct tel *t, uint64_t now)
{
	json_error_t jerr;
	ssize_t n = read_msg(t, now);
	json_t *g, *v;

	if (n <= 0)
		return;
	g = json_loadb(t->buf, (size_t)n, 0, &jerr);
	if (!json_is_object(g)) {
		json_decref(g);
		lose(t, now, "the greeting is not a JSON object: %s", t->buf);
		return;
	}
	v = json_object_get(g, "max_output_len");
	if (json_is_integer(v) && json_integer_value(v) > 0 &&
	    (size_t)json_integer_value(v) + 1 > t->buf_size) {
		size_t want = (size_t)json_integer_value(v) + 1;
		char *p = want <= TEL_MAX_BUF ? realloc(t->buf, want) : NULL;

		if (p == NULL) {
			json_decref(g);
			lose(t, now, "cannot hold replies of %zu bytes", want - 1);
			return;
		}
		t->buf = p;
		t->buf_size = want;
	}
	v = json_object_get(g, "pid");
	t->peer_pid = json_is_integer(v) ? (pid_t)json_integer_value(v) : 0;
	v = json_object_get(g, "version");
	snprintf(t->peer_version, sizeof(t->peer_version), "%s",
		 json_is_string(v) ? json_string_value(v) : "");
	json_decref(g);
	t->connects++;
	t->since_ms = now;
	t->warned = false;
	t->last_error[0] = '\0';
	t->backoff_ms = TEL_BACKOFF_MIN_MS;
	t->state = TEL_IDLE;
	t->next_sample_ms = now;
	t->due_ms = now;
	mx_log(CFG_LOG_INFO, "telemetry_up",
	       "connected to the dataplane's telemetry at %s (pid %d, %s)", t->path,
	       (int)t->peer_pid, t->peer_version);
	t->on_state(t->ctx, true);
}

/* The command of step STEP: info, a stats page per worker, gauges, ports. */
static void step_command(const struct tel *t, char *buf, size_t len)
{
	if (t->step == 0)
		snprintf(buf, len, "/mxgate/info");
	else if (t->step <= t->workers)
		snprintf(buf, len, "/mxgate/stats,%u", t->step - 1);
	else if (t->step == t->workers + 1)
		snprintf(buf, len, "/mxgate/gauges");
	else
		snprintf(buf, len, "/mxgate/ports");
}

static void send_next(struct tel *t, uint64_t now)
{
	size_t n;

	step_command(t, t->cmd, sizeof(t->cmd));
	n = strlen(t->cmd);
	if (send(t->fd, t->cmd, n, MSG_NOSIGNAL) != (ssize_t)n) {
		lose(t, now, "send %s: %s", t->cmd, strerror(errno));
		return;
	}
	t->state = TEL_WAIT;
	t->due_ms = now + TEL_REPLY_TIMEOUT_MS;
}

static void sample_failed(struct tel *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void sample_failed(struct tel *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(t->sample_error, sizeof(t->sample_error), fmt, ap);
	va_end(ap);
	t->sample_errors++;
	mx_log(CFG_LOG_WARNING, "sample_failed", "%s", t->sample_error);
	drop_replies(t);
	t->state = TEL_IDLE;
	t->due_ms = t->next_sample_ms;
}

/*
 * Checks a page of /mxgate/stats: an object of non-negative integers holding
 * the same names as the first page. Returns NULL, or what is wrong.
 */
static const char *page_problem(json_t *page, json_t *first)
{
	const char *key;
	json_t *v;

	json_object_foreach(page, key, v) {
		if (!json_is_integer(v) || json_integer_value(v) < 0)
			return "a counter is not a non-negative integer";
		if (first != NULL && json_object_get(first, key) == NULL)
			return "its counters differ from worker0's";
	}
	if (json_object_size(page) == 0)
		return "it holds no counters";
	if (first != NULL && json_object_size(page) != json_object_size(first))
		return "its counters differ from worker0's";
	return NULL;
}

/* The "total" row: every counter summed over the pages of this sample. */
static int add_total(struct tel *t)
{
	json_t *first = json_object_get(t->stats, "worker0"), *total = json_object(), *v;
	const char *key;
	char row[32];

	if (total == NULL)
		return -ENOMEM;
	json_object_foreach(first, key, v) {
		json_int_t sum = 0;

		for (unsigned i = 0; i < t->workers; i++) {
			snprintf(row, sizeof(row), "worker%u", i);
			sum += json_integer_value(
				json_object_get(json_object_get(t->stats, row), key));
		}
		if (json_object_set_new(total, key, json_integer(sum)) != 0) {
			json_decref(total);
			return -ENOMEM;
		}
	}
	return json_object_set_new(t->stats, "total", total) == 0 ? 0 : -ENOMEM;
}

/* Takes V, the value of the reply to step STEP; false when the sample failed (said why). */
static bool take(struct tel *t, json_t *v)
{
	json_t *err = json_object_get(v, "error");
	char row[32];

	if (json_is_string(err)) {
		sample_failed(t, "%s: the dataplane says: %s", t->cmd, json_string_value(err));
		return false;
	}
	if (t->step == 0) {
		json_t *w = json_object_get(v, "workers");
		json_int_t n = json_is_integer(w) ? json_integer_value(w) : 0;

		if (n < 1 || n > TEL_MAX_WORKERS) {
			sample_failed(t, "%s: \"workers\" is not a number from 1 to %d", t->cmd,
				      TEL_MAX_WORKERS);
			return false;
		}
		t->workers = (unsigned)n;
		t->info = json_incref(v);
		t->stats = json_object();
		if (t->stats == NULL) {
			sample_failed(t, "out of memory");
			return false;
		}
	} else if (t->step <= t->workers) {
		const char *why = page_problem(v, json_object_get(t->stats, "worker0"));

		if (why != NULL) {
			sample_failed(t, "%s: %s", t->cmd, why);
			return false;
		}
		snprintf(row, sizeof(row), "worker%u", t->step - 1);
		json_object_set(t->stats, row, v);
	} else if (t->step == t->workers + 1) {
		t->gauges = json_incref(v);
	} else {
		t->ports = json_incref(v);
	}
	t->step++;
	return true;
}

static void reply(struct tel *t, uint64_t now)
{
	char key[TEL_CMD_MAX];
	json_error_t jerr;
	ssize_t n = read_msg(t, now);
	json_t *r, *v;

	if (n <= 0)
		return;
	/* the reply is keyed by the command without its parameters */
	snprintf(key, sizeof(key), "%s", t->cmd);
	key[strcspn(key, ",")] = '\0';
	r = json_loadb(t->buf, (size_t)n, 0, &jerr);
	v = json_object_get(r, key);
	if (!json_is_object(v)) {
		json_decref(r);
		sample_failed(t, "%s: %s", t->cmd,
			      v != NULL ? "the dataplane could not answer (null)" :
					  "the reply is not the expected JSON object");
		return;
	}
	if (!take(t, v)) {
		json_decref(r);
		return;
	}
	json_decref(r);
	if (t->ports == NULL) {
		send_next(t, now);
		return;
	}
	if (add_total(t) != 0) {
		sample_failed(t, "out of memory");
		return;
	}
	t->sample_error[0] = '\0';
	t->on_sample(t->ctx, t->sample_ms, t->info, t->stats, t->gauges, t->ports);
	drop_replies(t);
	t->state = TEL_IDLE;
	t->due_ms = t->next_sample_ms;
}

void tel_run(struct tel *t, uint64_t now, short revents)
{
	if (!t->started) {
		t->started = true;
		t->due_ms = now;
	}
	if (t->fd >= 0 && (revents & (POLLERR | POLLHUP)) != 0 && (revents & POLLIN) == 0) {
		lose(t, now, "the dataplane closed the connection");
		return;
	}
	switch (t->state) {
	case TEL_DOWN:
		if (now >= t->due_ms)
			try_connect(t, now);
		break;
	case TEL_GREETING:
		if (revents & POLLIN)
			greeting(t, now);
		else if (now >= t->due_ms)
			lose(t, now, "no greeting within %d ms", TEL_REPLY_TIMEOUT_MS);
		break;
	case TEL_IDLE:
		if (now >= t->next_sample_ms) {
			/* the next one is due an interval later, or now if we fell behind */
			t->next_sample_ms += t->interval_ms;
			if (t->next_sample_ms <= now)
				t->next_sample_ms = now + t->interval_ms;
			t->step = 0;
			t->sample_ms = now;
			send_next(t, now);
		}
		break;
	case TEL_WAIT:
		if (revents & POLLIN)
			reply(t, now);
		else if (now >= t->due_ms)
			lose(t, now, "%s: no reply within %d ms", t->cmd, TEL_REPLY_TIMEOUT_MS);
		break;
	}
}

int tel_fd(const struct tel *t)
{
	return t->fd;
}

int tel_timeout_ms(const struct tel *t, uint64_t now)
{
	uint64_t due = t->state == TEL_IDLE ? t->next_sample_ms : t->due_ms;

	if (!t->started || due <= now)
		return 0;
	return due - now > 60000 ? 60000 : (int)(due - now);
}

bool tel_up(const struct tel *t)
{
	return t->state == TEL_IDLE || t->state == TEL_WAIT;
}

uint64_t tel_connects(const struct tel *t)
{
	return t->connects;
}

uint64_t tel_sample_errors(const struct tel *t)
{
	return t->sample_errors;
}

uint64_t tel_since_ms(const struct tel *t)
{
	return t->since_ms;
}

pid_t tel_peer_pid(const struct tel *t)
{
	return t->peer_pid;
}

const char *tel_peer_version(const struct tel *t)
{
	return t->peer_version;
}

const char *tel_last_error(const struct tel *t)
{
	return t->last_error;
}

const char *tel_sample_error(const struct tel *t)
{
	return t->sample_error;
}

const char *tel_path(const struct tel *t)
{
	return t->path;
}
