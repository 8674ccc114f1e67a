/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The dataplane's own TCP client check (/mxgate/tcp_echo_test): an active
 * open from a worker to an echo server, a pattern sent and read back and
 * compared byte by byte. It proves active opens against a foreign stack and
 * is the first piece of mxgate-gen's client role.
 */
#include <errno.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_malloc.h>

#include "dp.h"

#define ECHO_CHUNK 1800
#define ECHO_TIMEOUT_S 60

static inline uint8_t pattern(uint64_t off)
{
	return (uint8_t)((off * 2654435761u) >> 13);
}

static void echo_finish(struct dp_worker *w, int error)
{
	struct dp_cmd *cmd = w->echo_cmd;

	if (!cmd)
		return;
	cmd->u.echo.elapsed_us = (rte_rdtsc() - w->echo_start_tsc) * 1000000 / w->dp->hz;
	cmd->u.echo.error = error;
	w->echo_cmd = NULL;
	dp_cmd_finish(cmd, 0);
}

static void echo_pump(struct tcp_conn *c)
{
	struct dp_worker *w = tcp_arg(c);
	struct dp_cmd *cmd = w->echo_cmd;

	while (cmd && cmd->u.echo.sent < cmd->u.echo.bytes) {
		struct rte_mbuf *m = rte_pktmbuf_alloc(w->pool);
		if (!m)
			return; /* writable() or the deadline will come */
		uint32_t n = (uint32_t)RTE_MIN((uint64_t)ECHO_CHUNK,
					       cmd->u.echo.bytes - cmd->u.echo.sent);
		uint8_t *p = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)n);
		for (uint32_t i = 0; i < n; i++)
			p[i] = pattern(cmd->u.echo.sent + i);
		if (tcp_send(c, m) != 0) {
			rte_pktmbuf_free(m);
			return;
		}
		cmd->u.echo.sent += n;
	}
}

static void echo_connected(struct tcp_conn *c, int err)
{
	struct dp_worker *w = tcp_arg(c);

	if (err) {
		w->echo_conn = NULL;
		echo_finish(w, err);
		return;
	}
	w->echo_cmd->u.echo.connected = true;
	echo_pump(c);
}

static void echo_received(struct tcp_conn *c, struct rte_mbuf *data)
{
	struct dp_worker *w = tcp_arg(c);
	struct dp_cmd *cmd = w->echo_cmd;
	unsigned total = 0;

	for (struct rte_mbuf *s = data; s && cmd; s = s->next) {
		const uint8_t *p = rte_pktmbuf_mtod(s, const uint8_t *);
		for (unsigned i = 0; i < s->data_len; i++)
			cmd->u.echo.mismatches += p[i] != pattern(cmd->u.echo.received + i);
		cmd->u.echo.received += s->data_len;
		total += s->data_len;
	}
	rte_pktmbuf_free(data);
	tcp_consumed(c, total);
	if (cmd && cmd->u.echo.received >= cmd->u.echo.bytes)
		tcp_close(c); /* all back: a normal close, closed() reports */
}

static void echo_closed(struct tcp_conn *c, enum tcp_close_reason reason)
{
	struct dp_worker *w = tcp_arg(c);

	w->echo_conn = NULL;
	echo_finish(w, reason == TCP_CLOSE_NORMAL || reason == TCP_CLOSE_RESET ? 0 : -ECONNABORTED);
}

static void echo_peer_closed(struct tcp_conn *c)
{
	tcp_close(c);
}

static const struct tcp_ops echo_client_ops = {
	.connected = echo_connected,
	.received = echo_received,
	.writable = echo_pump,
	.peer_closed = echo_peer_closed,
	.closed = echo_closed,
};

/* Accepts only source ports whose flow hash makes this worker the owner. */
static bool port_is_ours(void *arg, uint32_t laddr, uint16_t lport, uint32_t raddr,
			 uint16_t rport)
{
	struct dp_worker *w = arg;

	return port_reply_owner(laddr, lport, raddr, rport, w->dp->n_workers) == w->id;
}

void dp_echo_start(struct dp_worker *w, struct dp_cmd *cmd, uint64_t now)
{
	uint32_t src;
	int rc;

	if (w->echo_cmd) {
		dp_cmd_finish(cmd, -EBUSY);
		return;
	}
	src = net_source_for(&w->net, cmd->u.echo.dst);
	if (!src) {
		dp_cmd_finish(cmd, -ENETUNREACH);
		return;
	}
	w->echo_cmd = cmd;
	w->echo_start_tsc = now;
	w->echo_deadline_tsc = now + ECHO_TIMEOUT_S * w->dp->hz;
	rc = tcp_connect(w->tcp, src, cmd->u.echo.dst, rte_cpu_to_be_16(cmd->u.echo.port),
			 &echo_client_ops, w, port_is_ours, w, &w->echo_conn);
	if (rc != 0) {
		w->echo_conn = NULL;
		echo_finish(w, rc);
	}
}

void dp_echo_step(struct dp_worker *w, uint64_t now)
{
	if (w->echo_cmd && now > w->echo_deadline_tsc) {
		if (w->echo_conn) {
			struct tcp_conn *c = w->echo_conn;
			w->echo_conn = NULL;
			tcp_abort(c); /* closed() finishes the command */
		}
		echo_finish(w, -ETIMEDOUT);
	}
}
