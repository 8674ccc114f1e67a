/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Echo and discard over the TCP stack. Echo sends back the very mbufs it
 * received (no copy) and only reports them consumed once the send queue took
 * them, so a client that does not read sees our window close: backpressure
 * end to end.
 */
#include "testsvc.h"

#include <errno.h>

#include <rte_byteorder.h>
#include <rte_mbuf.h>

#include "tcp_priv.h"

/* Echo: the connection's arg is the chain waiting for send space (or NULL). */
static void echo_flush(struct tcp_conn *c)
{
	struct rte_mbuf *m = tcp_arg(c);

	if (!m)
		return;
	uint32_t len = m->pkt_len;
	if (tcp_send(c, m) == 0) {
		tcp_set_arg(c, NULL);
		tcp_consumed(c, len);
	}
}

static void echo_received(struct tcp_conn *c, struct rte_mbuf *data)
{
	struct rte_mbuf *pending = tcp_arg(c);

	if (pending) {
		if (rte_pktmbuf_chain(pending, data) != 0) {
			/* more segments than a chain holds: give up on this client */
			rte_pktmbuf_free(data);
			tcp_abort(c);
			return;
		}
	} else {
		tcp_set_arg(c, data);
	}
	echo_flush(c);
}

static void echo_writable(struct tcp_conn *c)
{
	echo_flush(c);
}

static void echo_peer_closed(struct tcp_conn *c)
{
	echo_flush(c);
	tcp_shutdown(c); /* after what is queued */
}

static void echo_closed(struct tcp_conn *c, enum tcp_close_reason reason)
{
	(void)reason;
	rte_pktmbuf_free(tcp_arg(c));
	tcp_set_arg(c, NULL);
}

static void echo_accepted(struct tcp_conn *c, void *arg)
{
	(void)arg;
	tcp_set_arg(c, NULL);
}

static const struct tcp_ops echo_ops = {
	.accepted = echo_accepted,
	.received = echo_received,
	.writable = echo_writable,
	.peer_closed = echo_peer_closed,
	.closed = echo_closed,
};

static void discard_received(struct tcp_conn *c, struct rte_mbuf *data)
{
	uint32_t len = data->pkt_len;
	rte_pktmbuf_free(data);
	tcp_consumed(c, len);
}

static void discard_peer_closed(struct tcp_conn *c)
{
	tcp_close(c);
}

static const struct tcp_ops discard_ops = {
	.received = discard_received,
	.peer_closed = discard_peer_closed,
};

int tcp_testsvc_start(struct tcp_stack *s, uint16_t echo_port, uint16_t discard_port)
{
	int rc;

	if (echo_port) {
		struct tcp_listen_opts o = {.ops = &echo_ops, .cc = s->p.cc};
		rc = tcp_listen(s, 0, rte_cpu_to_be_16(echo_port), &o);
		if (rc)
			return rc;
	}
	if (discard_port) {
		struct tcp_listen_opts o = {.ops = &discard_ops, .cc = s->p.cc};
		rc = tcp_listen(s, 0, rte_cpu_to_be_16(discard_port), &o);
		if (rc)
			return rc;
	}
	return 0;
}
