/* SPDX-License-Identifier: BSD-3-Clause */
/* One logfmt line per event, rate-limited (see log.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "control/common/log.h"
#include "control/common/sbuf.h"

static struct {
	const char *prog;
	enum cfg_log_level level;
	int fd;		 /* where lines go */
	char path[4096]; /* the file, "" for stdout/stderr */
	struct mx_log_limit limit;
} lg = { .prog = "mxgate", .level = CFG_LOG_INFO, .fd = STDOUT_FILENO };

bool mx_log_limit_take(struct mx_log_limit *l, uint64_t now_ms, uint64_t *suppressed)
{
	const unsigned cap = MX_LOG_BURST * 1000u;

	if (!l->started) {
		l->started = true;
		l->tokens_milli = cap;
		l->last_ms = now_ms;
	}
	if (now_ms > l->last_ms) {
		uint64_t add = (now_ms - l->last_ms) * MX_LOG_RATE; /* ms * lines/s = milli-lines */

		l->tokens_milli =
			add >= cap - l->tokens_milli ? cap : l->tokens_milli + (unsigned)add;
		l->last_ms = now_ms;
	}
	if (l->tokens_milli < 1000) {
		l->suppressed++;
		return false;
	}
	l->tokens_milli -= 1000;
	*suppressed = l->suppressed;
	l->suppressed = 0;
	return true;
}

static int open_file(const char *path)
{
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

int mx_log_open(const char *prog, const struct cfg_logging *cfg)
{
	lg.prog = prog;
	lg.fd = STDOUT_FILENO;
	lg.path[0] = '\0';
	if (cfg == NULL)
		return 0;
	lg.level = cfg->level;
	if (cfg->dest == CFG_LOG_STDERR)
		lg.fd = STDERR_FILENO;
	if (cfg->dest != CFG_LOG_FILE)
		return 0;
	snprintf(lg.path, sizeof(lg.path), "%s", cfg->file);

	int fd = open_file(lg.path);

	if (fd < 0) {
		int e = errno;

		lg.fd = STDERR_FILENO;
		lg.path[0] = '\0';
		return -e;
	}
	lg.fd = fd;
	return 0;
}

int mx_log_reopen(void)
{
	int fd;

	if (lg.path[0] == '\0')
		return 0;
	fd = open_file(lg.path);
	if (fd < 0)
		return -errno; /* keep writing to the old file */
	close(lg.fd);
	lg.fd = fd;
	return 0;
}

void mx_log_set_level(enum cfg_log_level level)
{
	lg.level = level;
}

enum cfg_log_level mx_log_get_level(void)
{
	return lg.level;
}

static void line_start(struct sbuf *b, enum cfg_log_level level, const char *event)
{
	struct timespec ts;
	struct tm tm;
	char when[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	sbuf_printf(b, "ts=%s.%03ldZ level=%s prog=%s event=%s", when, ts.tv_nsec / 1000000,
		    cfg_log_level_name(level), lg.prog, event);
}

static void emit(struct sbuf *b)
{
	size_t off = 0;

	while (!sbuf_failed(b) && off < b->len) {
		ssize_t n = write(lg.fd, b->data + off, b->len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* nowhere to say it: the log is the last resort */
		off += (size_t)n;
	}
	sbuf_free(b);
}

void mx_log(enum cfg_log_level level, const char *event, const char *fmt, ...)
{
	struct sbuf b = { 0 };
	struct timespec now;
	uint64_t suppressed;
	char msg[1024];
	va_list ap;

	if (level > lg.level)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!mx_log_limit_take(&lg.limit,
			       (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000,
			       &suppressed))
		return;
	if (suppressed != 0) {
		line_start(&b, CFG_LOG_WARNING, "log_suppressed");
		sbuf_printf(&b, " count=%llu msg=\"lines dropped by the rate limit (%u/s)\"\n",
			    (unsigned long long)suppressed, MX_LOG_RATE);
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	line_start(&b, level, event);
	sbuf_add(&b, " msg=\"", 6);
	sbuf_add_escaped(&b, msg, '"');
	sbuf_add(&b, "\"\n", 2);
	emit(&b);
}

void mx_log_close(void)
{
	if (lg.path[0] != '\0') {
		close(lg.fd);
		lg.path[0] = '\0';
	}
	lg.fd = STDOUT_FILENO;
}
