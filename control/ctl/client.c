/* SPDX-License-Identifier: BSD-3-Clause */
/* mxgatectl's connection to mxgate-control (see client.h). */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "control/common/proto.h"
#include "control/ctl/client.h"

struct ctl_conn {
	int fd;
	char *buf; /* bytes received after the last reply line */
	size_t len;
	size_t cap;
};

struct ctl_conn *ctl_conn_open(const char *path, int *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ctl_conn *c;
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		*err = -ENAMETOOLONG;
		return NULL;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*err = -errno;
		return NULL;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		*err = -errno;
		close(fd);
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		*err = -ENOMEM;
		close(fd);
		return NULL;
	}
	c->fd = fd;
	return c;
}

void ctl_conn_close(struct ctl_conn *c)
{
	if (c == NULL)
		return;
	close(c->fd);
	free(c->buf);
	free(c);
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n != 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int ctl_conn_call(struct ctl_conn *c, const char *cmd, json_t *args, json_t **reply)
{
	json_t *req = json_pack("{s:s}", "cmd", cmd);
	int64_t deadline = mono_ms() + CTL_CALL_TIMEOUT_MS;
	char *line;
	int rc;

	*reply = NULL;
	if (req == NULL)
		return -ENOMEM;
	if (args != NULL)
		json_object_set(req, "args", args);
	line = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (line == NULL)
		return -ENOMEM;
	rc = send_all(c->fd, line, strlen(line));
	if (rc == 0)
		rc = send_all(c->fd, "\n", 1);
	free(line);
	if (rc != 0)
		return rc;
	for (;;) {
		char *nl = c->len != 0 ? memchr(c->buf, '\n', c->len) : NULL;

		if (nl != NULL) {
			size_t n = (size_t)(nl - c->buf);
			json_error_t jerr;

			*reply = json_loadb(c->buf, n, 0, &jerr);
			memmove(c->buf, nl + 1, c->len - n - 1);
			c->len -= n + 1;
			if (!json_is_object(*reply)) {
				json_decref(*reply);
				*reply = NULL;
				return -EPROTO;
			}
			return 0;
		}
		if (c->len >= CTL_MAX_REPLY)
			return -EMSGSIZE;
		if (c->cap - c->len < 65536) {
			char *p = realloc(c->buf, c->cap + 65536);

			if (p == NULL)
				return -ENOMEM;
			c->buf = p;
			c->cap += 65536;
		}

		int64_t left = deadline - mono_ms();
		struct pollfd pfd = { .fd = c->fd, .events = POLLIN };

		if (left <= 0)
			return -ETIMEDOUT;
		rc = poll(&pfd, 1, (int)left);
		if (rc < 0 && errno == EINTR)
			return -EINTR;
		if (rc <= 0)
			continue;

		ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);

		if (n == 0)
			return -ECONNRESET;
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n > 0)
			c->len += (size_t)n;
	}
}
