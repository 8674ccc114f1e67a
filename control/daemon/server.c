/* SPDX-License-Identifier: BSD-3-Clause */
/* The mxgatectl socket: clients, request lines, replies (see server.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "control/common/log.h"
#include "control/common/sbuf.h"
#include "control/daemon/server.h"

/* Stop taking requests from a client while this much of its replies is unread. */
#define PAUSE_BACKLOG  (1u << 20)
/*
 * After an oversized request: what is still coming is read and dropped, so
 * the close does not reset the connection before the client reads why.
 * Bounded in bytes and in time.
 */
#define DRAIN_MAX      (1u << 20)
#define LISTEN_BACKLOG 64
#define DRAIN_MS       2000

struct client {
	int fd; /* -1: a free slot */
	char in[CTL_MAX_REQUEST];
	size_t in_len;
	struct sbuf out;
	size_t out_off;
	bool closing; /* no more requests: close once the replies are out */
	bool linger;  /* then shut down our side and drain theirs before closing */
	bool draining;
	size_t drained;
	uint64_t last_ms;
};

struct srv {
	int lfd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	srv_handler_fn fn;
	void *ctx;
	struct client clients[SRV_MAX_CLIENTS];
	int polled[1 +
		   SRV_MAX_CLIENTS]; /* slot of each pollfd srv_pollfds() filled; -1: listener */
	struct srv_counters cnt;
};

/* Makes PATH's directory if it is missing (one level, as for /run/mxgate). */
static int make_dir(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash == NULL || slash == dir)
		return 0;
	*slash = '\0';
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* PATH exists: a live daemon answers there (-EADDRINUSE), or it is stale and removed. */
static int clear_stale(const struct sockaddr_un *sa)
{
	struct stat st;
	int fd, rc;

	if (lstat(sa->sun_path, &st) != 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	rc = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	close(fd);
	if (rc == 0)
		return -EADDRINUSE;
	if (unlink(sa->sun_path) != 0 && errno != ENOENT)
		return -errno;
	mx_log(CFG_LOG_INFO, "socket_stale", "removed %s, left by a daemon that is gone",
	       sa->sun_path);
	return 0;
}

struct srv *srv_new(const char *path, srv_handler_fn fn, void *ctx, int *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct srv *s = calloc(1, sizeof(*s));
	int rc;

	if (s == NULL) {
		*err = -ENOMEM;
		return NULL;
	}
	s->lfd = -1;
	s->fn = fn;
	s->ctx = ctx;
	for (unsigned i = 0; i < SRV_MAX_CLIENTS; i++)
		s->clients[i].fd = -1;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		rc = -ENAMETOOLONG;
		goto fail;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if ((rc = make_dir(path)) != 0 || (rc = clear_stale(&sa)) != 0)
		goto fail;
	s->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->lfd < 0) {
		rc = -errno;
		goto fail;
	}
	if (bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		rc = -errno;
		goto fail;
	}
	/* the path is ours from here: srv_free() removes it */
	snprintf(s->path, sizeof(s->path), "%s", path);
	if (chmod(path, 0660) != 0 || listen(s->lfd, LISTEN_BACKLOG) != 0) {
		rc = -errno;
		goto fail;
	}
	return s;
fail:
	*err = rc;
	srv_free(s);
	return NULL;
}

static void client_close(struct client *c)
{
	close(c->fd);
	c->fd = -1;
	c->in_len = 0;
	c->out_off = 0;
	c->closing = false;
	c->linger = false;
	c->draining = false;
	c->drained = 0;
	sbuf_free(&c->out);
}

void srv_free(struct srv *s)
{
	if (s == NULL)
		return;
	for (unsigned i = 0; i < SRV_MAX_CLIENTS; i++)
		if (s->clients[i].fd >= 0)
			client_close(&s->clients[i]);
	if (s->lfd >= 0)
		close(s->lfd);
	if (s->path[0] != '\0')
		unlink(s->path);
	free(s);
}

static size_t backlog(const struct client *c)
{
	return c->out.len - c->out_off;
}

static void queue_reply(struct client *c, char *line)
{
	static const char oom[] =
		"{\"ok\":false,\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}\n";

	if (line == NULL)
		sbuf_add(&c->out, oom, sizeof(oom) - 1);
	else
		sbuf_add(&c->out, line, strlen(line));
	free(line);
	if (sbuf_failed(&c->out))
		c->closing = true; /* what it was owed is lost: end it rather than lie */
}

static void serve_line(struct srv *s, struct client *c, const char *line, size_t len)
{
	struct ctl_request req;
	struct ctl_error err;

	s->cnt.requests++;
	if (ctl_request_parse(line, len, &req, &err) != 0) {
		s->cnt.errors++;
		mx_log(CFG_LOG_DEBUG, "bad_request", "%s: %s", err.code, err.message);
		queue_reply(c, ctl_reply_error(req.id, err.code, err.message));
	} else {
		queue_reply(c, s->fn(s->ctx, &req));
	}
	ctl_request_fini(&req);
}

/* Answers the complete lines held in C's input, as far as its backlog allows. */
static void serve_lines(struct srv *s, struct client *c, bool force)
{
	while (!c->closing && c->in_len != 0 && (force || backlog(c) < PAUSE_BACKLOG)) {
		size_t len = 0;
		ssize_t n = ctl_frame(c->in, c->in_len, sizeof(c->in), &len);

		if (n == 0)
			return;
		if (n < 0) {
			struct ctl_error err;

			s->cnt.requests++;
			s->cnt.errors++;
			ctl_error_set(&err, CTL_E_TOO_LARGE,
				      "request longer than %d bytes; closing the connection",
				      CTL_MAX_REQUEST);
			queue_reply(c, ctl_reply_error(NULL, err.code, err.message));
			c->closing = true;
			c->linger = true;
			c->in_len = 0;
			return;
		}
		if (!ctl_line_blank(c->in, len))
			serve_line(s, c, c->in, len);
		memmove(c->in, c->in + n, c->in_len - (size_t)n);
		c->in_len -= (size_t)n;
	}
}

static void client_read(struct srv *s, struct client *c)
{
	if (c->in_len == sizeof(c->in))
		return; /* full of lines waiting for the backlog to drain: recv would say EOF */

	ssize_t n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, 0);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		/* end of input: what is held is answered (at most one buffer's worth), and a
		 * last request without its newline still counts */
		if (n == 0) {
			serve_lines(s, c, true);
			if (!c->closing && c->in_len != 0 && !ctl_line_blank(c->in, c->in_len))
				serve_line(s, c, c->in, c->in_len);
		}
		c->in_len = 0;
		c->closing = true;
		if (n < 0)
			c->out_off = c->out.len; /* nobody to write to */
		return;
	}
	c->in_len += (size_t)n;
	serve_lines(s, c, false);
}

static void client_write(struct client *c)
{
	while (backlog(c) != 0) {
		ssize_t n = send(c->fd, c->out.data + c->out_off, backlog(c),
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			c->out_off = c->out.len; /* the client went away */
			c->closing = true;
			break;
		}
		c->out_off += (size_t)n;
	}
	sbuf_free(&c->out);
	c->out_off = 0;
}

/* Takes one waiting connection; returns false when none is waiting. */
static bool accept_one(struct srv *s, uint64_t now)
{
	int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0)
		return false;
	for (unsigned i = 0; i < SRV_MAX_CLIENTS; i++) {
		struct client *c = &s->clients[i];

		if (c->fd >= 0)
			continue;
		c->fd = fd;
		c->in_len = 0;
		c->closing = false;
		c->linger = false;
		c->draining = false;
		c->drained = 0;
		c->last_ms = now;
		s->cnt.accepted++;
		return true;
	}
	/* full: say so in one line (the socket buffer takes it), then hang up */
	char *line = ctl_reply_error(NULL, CTL_E_BUSY, "too many clients at once; try again");

	if (line != NULL && send(fd, line, strlen(line), MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		mx_log(CFG_LOG_DEBUG, "busy_reply", "could not tell a client it was refused: %s",
		       strerror(errno));
	free(line);
	close(fd);
	s->cnt.refused_busy++;
	mx_log(CFG_LOG_WARNING, "clients_full", "refused a client: %d are connected",
	       SRV_MAX_CLIENTS);
	return true;
}

/* A lingering client: drop what it still sends until it closes, or the bounds say stop. */
static void drain(struct client *c, short revents, uint64_t now)
{
	char junk[4096];
	ssize_t n = 0;

	if (revents & (POLLIN | POLLHUP | POLLERR))
		n = recv(c->fd, junk, sizeof(junk), MSG_DONTWAIT);
	if (n > 0)
		c->drained += (size_t)n;
	if ((revents != 0 && n <= 0 && !(n < 0 && errno == EAGAIN)) || c->drained > DRAIN_MAX ||
	    now - c->last_ms > DRAIN_MS)
		client_close(c);
}

unsigned srv_pollfds(const struct srv *s, struct pollfd *fds)
{
	struct srv *m = (struct srv *)s; /* polled[] is bookkeeping, not state */
	unsigned n = 0;

	fds[n] = (struct pollfd){ .fd = s->lfd, .events = POLLIN };
	m->polled[n++] = -1;
	for (unsigned i = 0; i < SRV_MAX_CLIENTS; i++) {
		const struct client *c = &s->clients[i];
		short ev = 0;

		if (c->fd < 0)
			continue;
		if (backlog(c) != 0)
			ev |= POLLOUT;
		if ((!c->closing && backlog(c) < PAUSE_BACKLOG) || c->draining)
			ev |= POLLIN;
		fds[n] = (struct pollfd){ .fd = c->fd, .events = ev };
		m->polled[n++] = (int)i;
	}
	return n;
}

void srv_run(struct srv *s, const struct pollfd *fds, unsigned n, uint64_t now)
{
	bool accept_ready = false;

	for (unsigned k = 0; k < n; k++) {
		if (s->polled[k] < 0) {
			accept_ready = (fds[k].revents & POLLIN) != 0;
			continue;
		}

		struct client *c = &s->clients[s->polled[k]];

		if (c->fd != fds[k].fd)
			continue;
		if (c->draining) {
			drain(c, fds[k].revents, now);
			continue;
		}
		if (fds[k].revents & (POLLIN | POLLHUP | POLLERR)) {
			c->last_ms = now;
			client_read(s, c);
		}
		if (backlog(c) != 0) {
			client_write(c);
			serve_lines(s, c,
				    false); /* requests that waited for the backlog to drain */
			client_write(c);
		}
		if (backlog(c) > SRV_MAX_BACKLOG) {
			mx_log(CFG_LOG_WARNING, "client_slow",
			       "closed a client that left %zu reply bytes unread", backlog(c));
			client_close(c);
		} else if (c->closing && backlog(c) == 0 && c->linger) {
			shutdown(c->fd, SHUT_WR);
			c->draining = true;
			c->last_ms = now;
		} else if ((c->closing && backlog(c) == 0) || now - c->last_ms > SRV_IDLE_MS) {
			client_close(c);
		}
	}
	/* all that wait, so a burst of connects never finds the backlog full */
	for (unsigned i = 0; accept_ready && i < LISTEN_BACKLOG; i++)
		if (!accept_one(s, now))
			break;
}

int srv_timeout_ms(const struct srv *s, uint64_t now)
{
	uint64_t first = UINT64_MAX;

	for (unsigned i = 0; i < SRV_MAX_CLIENTS; i++) {
		const struct client *c = &s->clients[i];
		uint64_t t = c->last_ms + (c->draining ? DRAIN_MS : SRV_IDLE_MS) + 1;

		if (c->fd >= 0 && t < first)
			first = t;
	}
	if (first == UINT64_MAX)
		return -1;
	return first <= now ? 0 : (int)(first - now);
}

const struct srv_counters *srv_counters(const struct srv *s)
{
	return &s->cnt;
}

unsigned srv_clients(const struct srv *s)
{
	for (unsigned i = 0, n = 0;; i++) {
		if (i == SRV_MAX_CLIENTS)
			return n;
		n += s->clients[i].fd >= 0;
	}
}
