/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The application API of a connection (DESIGN.md §5): send with
 * backpressure, consumption-driven receive window, half-close, close, abort,
 * and active open with a source port the caller may constrain (RSS).
 */
#include <errno.h>
#include <string.h>

#include <rte_tcp.h>

#include "tcp_priv.h"

static bool can_send_state(const struct tcp_conn *c)
{
	switch (c->state) {
	case TCP_ST_SYN_SENT:
	case TCP_ST_SYN_RECEIVED:
	case TCP_ST_ESTABLISHED:
	case TCP_ST_CLOSE_WAIT:
		return true;
	default:
		return false;
	}
}

static void consumed(struct tcp_conn *c, unsigned n);
static void shutdown_conn(struct tcp_conn *c);
static void abort_conn(struct tcp_conn *c);
static int connect_conn(struct tcp_stack *s, uint32_t laddr, uint32_t daddr, uint16_t dport,
			const struct tcp_ops *ops, void *arg, tcp_port_ok_fn port_ok,
			void *port_ok_arg, struct tcp_conn **out);

/*
 * An API call runs as an event of the stack: made from a TCP callback it keeps
 * that event's clock; made by the application on its own (from its own timer,
 * on an I/O completion) it reads the clock first, one rdtsc, so its
 * timestamps, RTT timing and timers start from now (tcp_api_enter()).
 */
static void api_output(struct tcp_conn *c)
{
	struct tcp_stack *s = c->s;

	tcp_api_enter(s);
	tcp_output(c);
	tcp_event_leave(s);
}

unsigned tcp_send_space(const struct tcp_conn *c)
{
	if (!can_send_state(c) || c->fin_queued)
		return 0;
	if (c->sq_mbufs >= c->s->p.mbufs_per_conn / 2)
		return 0;
	return c->sq_bytes >= c->s->p.snd_buf ? 0 : c->s->p.snd_buf - c->sq_bytes;
}

int tcp_send(struct tcp_conn *c, struct rte_mbuf *data)
{
	if (c->fin_queued || c->app_closed)
		return -EPIPE;
	if (!can_send_state(c))
		return -ENOTCONN;
	/* The send queue and the reassembly queue share the per-connection mbuf cap. */
	if (data->pkt_len > tcp_send_space(c) ||
	    c->sq_mbufs + data->nb_segs > c->s->p.mbufs_per_conn / 2) {
		c->want_writable = true;
		return -EAGAIN;
	}
	/* Unchain into single segments: the queue is one list of segments. */
	while (data) {
		struct rte_mbuf *next = data->next;
		data->next = NULL;
		data->nb_segs = 1;
		data->pkt_len = data->data_len;
		if (data->data_len == 0) {
			rte_pktmbuf_free_seg(data);
		} else {
			if (c->sq_tail)
				c->sq_tail->next = data;
			else
				c->sq_head = data;
			c->sq_tail = data;
			c->sq_bytes += data->data_len;
			c->sq_mbufs++;
		}
		data = next;
	}
	api_output(c);
	return 0;
}

void tcp_push(struct tcp_conn *c)
{
	bool nagle = c->nagle;
	c->nagle = false;
	api_output(c);
	c->nagle = nagle;
}

void tcp_consumed(struct tcp_conn *c, unsigned n)
{
	struct tcp_stack *s = c->s;

	tcp_api_enter(s);
	consumed(c, n);
	tcp_event_leave(s);
}

static void consumed(struct tcp_conn *c, unsigned n)
{
	uint32_t before = tcp_rcv_space(c);

	c->rcv_unconsumed = n >= c->rcv_unconsumed ? 0 : c->rcv_unconsumed - n;
	/* RFC 1122 §4.2.3.3: announce a window that grew by 2 segments or half the buffer. */
	uint32_t after = tcp_rcv_space(c);
	uint32_t offered = seq_gt(c->rcv_adv, c->rcv_nxt) ? c->rcv_adv - c->rcv_nxt : 0;
	if (after > before && after - offered >= RTE_MIN(2u * c->mss, c->s->p.rcv_buf / 2) &&
	    (c->state == TCP_ST_ESTABLISHED || c->state == TCP_ST_FIN_WAIT_1 ||
	     c->state == TCP_ST_FIN_WAIT_2))
		tcp_send_ack(c);
}

void tcp_shutdown(struct tcp_conn *c)
{
	struct tcp_stack *s = c->s;

	tcp_api_enter(s);
	shutdown_conn(c);
	tcp_event_leave(s);
}

static void shutdown_conn(struct tcp_conn *c)
{
	if (c->fin_queued)
		return;
	switch (c->state) {
	case TCP_ST_SYN_SENT:
		tcp_conn_destroy(c, TCP_CLOSE_ABORTED);
		return;
	case TCP_ST_SYN_RECEIVED:
		/*
		 * RFC 9293 §3.10.4: queued until ESTABLISHED, which established()
		 * turns into FIN_WAIT_1. SND.UNA still counts the SYN here: a FIN
		 * now would be placed, and its ACK recognised, one octet early.
		 */
		c->fin_queued = true;
		return;
	case TCP_ST_ESTABLISHED:
		c->fin_queued = true;
		tcp_conn_set_state(c, TCP_ST_FIN_WAIT_1);
		break;
	case TCP_ST_CLOSE_WAIT:
		c->fin_queued = true;
		tcp_conn_set_state(c, TCP_ST_LAST_ACK);
		break;
	default:
		return;
	}
	tcp_output(c);
}

void tcp_close(struct tcp_conn *c)
{
	struct tcp_stack *s = c->s;

	tcp_api_enter(s);
	c->app_closed = true;
	/* RFC 2525 §2.17: unread data at close means the peer would wait in vain. */
	if (c->rcv_unconsumed > 0 && c->state != TCP_ST_SYN_SENT) {
		abort_conn(c);
	} else if (c->state == TCP_ST_FIN_WAIT_2) {
		/* shut down before: nothing more to send, and now nobody to wait for */
		tcp_arm_fin_wait_2(c);
	} else {
		shutdown_conn(c); /* may free c (SYN_SENT) */
	}
	tcp_event_leave(s);
}

void tcp_abort(struct tcp_conn *c)
{
	struct tcp_stack *s = c->s;

	tcp_api_enter(s);
	abort_conn(c);
	tcp_event_leave(s);
}

static void abort_conn(struct tcp_conn *c)
{
	switch (c->state) {
	case TCP_ST_SYN_RECEIVED:
	case TCP_ST_ESTABLISHED:
	case TCP_ST_FIN_WAIT_1:
	case TCP_ST_FIN_WAIT_2:
	case TCP_ST_CLOSE_WAIT:
		tcp_send_ctl(c, RTE_TCP_RST_FLAG, c->snd_nxt);
		break;
	default:
		break;
	}
	tcp_conn_destroy(c, TCP_CLOSE_ABORTED);
}

/* Picks a free ephemeral port the caller accepts (e.g. one whose RSS hash lands here). */
static int pick_port(struct tcp_stack *s, uint32_t laddr, uint32_t daddr, uint16_t dport,
		     tcp_port_ok_fn ok, void *ok_arg, uint16_t *out)
{
	unsigned range = TCP_EPHEMERAL_HI - TCP_EPHEMERAL_LO + 1;

	for (unsigned i = 0; i < range; i++) {
		uint16_t port = s->next_ephemeral;
		s->next_ephemeral = port == TCP_EPHEMERAL_HI ? TCP_EPHEMERAL_LO : port + 1;
		uint16_t nport = rte_cpu_to_be_16(port);
		if (tcp_conn_lookup(s, laddr, nport, daddr, dport))
			continue;
		if (ok && !ok(ok_arg, laddr, nport, daddr, dport))
			continue;
		*out = nport;
		return 0;
	}
	return -EADDRNOTAVAIL;
}

void tcp_stack_clock(struct tcp_stack *s, uint64_t now)
{
	tcp_clock_set(s, now);
}

void tcp_stack_set_clock(struct tcp_stack *s, tcp_clock_fn read, void *arg)
{
	s->read_clock = read ? read : tcp_read_tsc;
	s->read_clock_arg = read ? arg : NULL;
}

int tcp_connect(struct tcp_stack *s, uint32_t laddr, uint32_t daddr, uint16_t dport,
		const struct tcp_ops *ops, void *arg, tcp_port_ok_fn port_ok, void *port_ok_arg,
		struct tcp_conn **out)
{
	tcp_api_enter(s);
	int rc = connect_conn(s, laddr, daddr, dport, ops, arg, port_ok, port_ok_arg, out);
	tcp_event_leave(s);
	return rc;
}

static int connect_conn(struct tcp_stack *s, uint32_t laddr, uint32_t daddr, uint16_t dport,
			const struct tcp_ops *ops, void *arg, tcp_port_ok_fn port_ok,
			void *port_ok_arg, struct tcp_conn **out)
{
	uint16_t lport;
	int rc = pick_port(s, laddr, daddr, dport, port_ok, port_ok_arg, &lport);

	if (rc != 0)
		return rc;
	struct tcp_conn *c = tcp_conn_new(s, laddr, lport, daddr, dport);
	if (!c)
		return -ENOMEM;
	c->ops = ops;
	c->arg = arg;
	c->iss = tcp_isn(&s->key, laddr, lport, daddr, dport, s->now_us);
	c->ts_offset = tcp_ts_offset(&s->key, laddr, lport, daddr, dport);
	c->snd_una = c->iss;
	c->snd_nxt = c->snd_max = c->iss + 1;
	c->rcv_wscale = s->p.wscale; /* offered; kept only if the peer offers too */
	c->mss = (uint16_t)(s->local_mtu - 40);
	c->active_cc = s->p.cc;
	tcp_conn_set_state(c, TCP_ST_SYN_SENT);
	tcp_send_ctl(c, RTE_TCP_SYN_FLAG, c->iss);
	tcp_arm_rexmt(c);
	*out = c;
	return 0;
}

void tcp_icmp_error(struct tcp_stack *s, uint8_t type, uint8_t code, const void *inner,
		    unsigned len, uint64_t now)
{
	/* RFC 5927 / RFC 1122 §4.2.3.9: soft errors only; a connection attempt
	 * hit by port/protocol unreachable fails. Path MTU discovery is later work. */
	const struct rte_ipv4_hdr *ip = inner;
	if (len < sizeof(*ip) + 8)
		return;
	unsigned ihl = (ip->version_ihl & 0x0f) * 4u;
	if (len < ihl + 8)
		return;
	const struct rte_tcp_hdr *th = (const void *)((const uint8_t *)inner + ihl);
	struct tcp_conn *c = tcp_conn_lookup(s, ip->src_addr, th->src_port, ip->dst_addr,
					     th->dst_port);
	if (!c || c->state != TCP_ST_SYN_SENT)
		return;
	uint32_t seq = rte_be_to_cpu_32(th->sent_seq);
	if (seq != c->iss)
		return; /* RFC 5927 §4.1: the quoted segment must be ours */
	if (type == 3 && (code == 2 || code == 3)) {
		tcp_event_enter(s, now);
		if (c->ops && c->ops->connected)
			c->ops->connected(c, -ECONNREFUSED);
		tcp_conn_destroy(c, TCP_CLOSE_UNREACHABLE);
		tcp_event_leave(s);
	}
}
