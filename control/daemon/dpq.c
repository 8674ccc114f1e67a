/* SPDX-License-Identifier: BSD-3-Clause */
/* Blocking telemetry questions for operator commands (see dpq.h). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "control/daemon/dpq.h"

#define DPQ_BUF (64u << 10) /* DPDK 22.11 replies hold 16 KiB at most */

struct dpq {
	int fd;
	uint64_t deadline_ms;
	char buf[DPQ_BUF];
	char code[32];
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* One message into q->buf: its length, or -1 with ERR set. */
static ssize_t recv_msg(struct dpq *q, char *err, size_t errlen)
{
	for (;;) {
		uint64_t now = mono_ms();
		struct pollfd pfd = { .fd = q->fd, .events = POLLIN };

		if (now >= q->deadline_ms) {
			snprintf(err, errlen, "the dataplane did not answer within %u ms",
				 DPQ_DEADLINE_MS);
			return -1;
		}
		int n = poll(&pfd, 1, (int)(q->deadline_ms - now));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			continue; /* the deadline decides */
		ssize_t r = recv(q->fd, q->buf, sizeof(q->buf) - 1, MSG_TRUNC);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r <= 0) {
			snprintf(err, errlen, "the dataplane closed its telemetry connection");
			return -1;
		}
		if ((size_t)r >= sizeof(q->buf)) {
			snprintf(err, errlen, "a telemetry reply of %zd bytes is too long", r);
			return -1;
		}
		q->buf[r] = '\0';
		return r;
	}
}

struct dpq *dpq_open(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct dpq *q = calloc(1, sizeof(*q));

	if (q == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	q->deadline_ms = mono_ms() + DPQ_DEADLINE_MS;
	q->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (q->fd < 0 || connect(q->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		snprintf(err, errlen, "cannot reach the dataplane's telemetry at %s: %s", path,
			 strerror(errno));
		dpq_close(q);
		return NULL;
	}
	if (recv_msg(q, err, errlen) < 0) { /* the greeting */
		dpq_close(q);
		return NULL;
	}
	return q;
}

json_t *dpq_call(struct dpq *q, const char *cmd, const char **code, char *err, size_t errlen)
{
	json_error_t jerr;
	char name[64];
	const char *comma = strchr(cmd, ',');
	size_t nlen = comma != NULL ? (size_t)(comma - cmd) : strlen(cmd);
	json_t *root, *v, *e;
	ssize_t n;

	*code = NULL;
	if (nlen >= sizeof(name) || send(q->fd, cmd, strlen(cmd), MSG_NOSIGNAL) < 0) {
		snprintf(err, errlen, "cannot ask the dataplane: %s", strerror(errno));
		return NULL;
	}
	memcpy(name, cmd, nlen);
	name[nlen] = '\0';
	n = recv_msg(q, err, errlen);
	if (n < 0)
		return NULL;
	root = json_loadb(q->buf, (size_t)n, 0, &jerr);
	v = json_object_get(root, name);
	if (v == NULL || json_is_null(v)) {
		/* DPDK answers a callback's error with {"CMD": null} */
		snprintf(err, errlen, "the dataplane could not answer %s%s", name,
			 root == NULL ? " (not JSON)" : "");
		json_decref(root);
		return NULL;
	}
	e = json_object_get(v, "error");
	if (json_is_string(e)) {
		json_t *c = json_object_get(v, "code");

		snprintf(q->code, sizeof(q->code), "%s",
			 json_is_string(c) ? json_string_value(c) : "failed");
		*code = q->code;
		snprintf(err, errlen, "%s", json_string_value(e));
		json_decref(root);
		return NULL;
	}
	json_incref(v);
	json_decref(root);
	return v;
}

void dpq_close(struct dpq *q)
{
	if (q == NULL)
		return;
	if (q->fd >= 0)
		close(q->fd);
	free(q);
}
