/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * TCP input (RFC 9293 §3.10.7): parse and check a segment, find its
 * connection or listener, then one switch over the connection's state. The
 * segment's mbuf belongs to this file until it is delivered, queued for
 * reassembly, or freed.
 */
#include <errno.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_ip.h>
#include <rte_tcp.h>

#include "isn.h"
#include "syncookie.h"
#include "tcp_priv.h"

#define MAX_WSCALE 14 /* RFC 7323 §2.3 */
#define CHALLENGE_ACKS_PER_S 1000
#define F_SYN RTE_TCP_SYN_FLAG
#define F_ACK RTE_TCP_ACK_FLAG
#define F_RST RTE_TCP_RST_FLAG
#define F_FIN RTE_TCP_FIN_FLAG

static void drop(struct tcp_stack *s, struct rte_mbuf *m, enum dp_drop reason)
{
	dp_drop(s->stats, reason);
	rte_pktmbuf_free(m);
}

/* Options (RFC 9293 §3.2): a bad length ends parsing and fails the segment. */
static int parse_options(const uint8_t *p, unsigned len, bool syn, struct tcp_seg_opts *o)
{
	unsigned i = 0;

	memset(o, 0, sizeof(*o));
	while (i < len) {
		uint8_t kind = p[i];
		if (kind == TCPOPT_EOL)
			break;
		if (kind == TCPOPT_NOP) {
			i++;
			continue;
		}
		if (i + 1 >= len || p[i + 1] < 2 || i + p[i + 1] > len)
			return -1;
		uint8_t olen = p[i + 1];
		const uint8_t *v = p + i + 2;
		switch (kind) {
		case TCPOPT_MSS:
			if (olen != 4)
				return -1;
			if (syn) {
				o->has_mss = true;
				o->mss = (uint16_t)(v[0] << 8 | v[1]);
			}
			break;
		case TCPOPT_WS:
			if (olen != 3)
				return -1;
			if (syn) {
				o->has_ws = true;
				o->ws = RTE_MIN(v[0], (uint8_t)MAX_WSCALE);
			}
			break;
		case TCPOPT_SACK_PERM:
			if (olen != 2)
				return -1;
			if (syn)
				o->sack_ok = true;
			break;
		case TCPOPT_SACK:
			if (olen < 10 || (olen - 2) % 8)
				return -1;
			for (unsigned b = 0; b < (unsigned)(olen - 2) / 8 && b < TCP_MAX_SACK_BLOCKS;
			     b++) {
				rte_be32_t s, e;
				memcpy(&s, v + 8 * b, 4);
				memcpy(&e, v + 8 * b + 4, 4);
				o->sack[b].start = rte_be_to_cpu_32(s);
				o->sack[b].end = rte_be_to_cpu_32(e);
				o->n_sack = b + 1;
			}
			break;
		case TCPOPT_TS: {
			if (olen != 10)
				return -1;
			rte_be32_t a, b;
			memcpy(&a, v, 4);
			memcpy(&b, v + 4, 4);
			o->has_ts = true;
			o->tsval = rte_be_to_cpu_32(a);
			o->tsecr = rte_be_to_cpu_32(b);
			break;
		}
		default:
			break; /* unknown options are skipped by their length */
		}
		i += olen;
	}
	return 0;
}

/* Fills g from m (m at the IPv4 header). Returns 0 or a drop reason. */
static int parse_segment(struct tcp_stack *s, struct rte_mbuf *m, struct tcp_seg *g)
{
	const struct rte_ipv4_hdr *ip = rte_pktmbuf_mtod(m, const struct rte_ipv4_hdr *);
	uint16_t ihl = (uint16_t)((ip->version_ihl & 0x0f) * 4);
	uint16_t total = rte_be_to_cpu_16(ip->total_length);
	(void)s;

	if (rte_pktmbuf_data_len(m) < ihl + sizeof(struct rte_tcp_hdr) || total > m->pkt_len)
		return DP_DROP_TCP_MALFORMED;
	const struct rte_tcp_hdr *th = (const struct rte_tcp_hdr *)((const uint8_t *)ip + ihl);
	uint16_t thl = (uint16_t)((th->data_off >> 4) * 4);
	if (thl < sizeof(*th) || ihl + thl > total || ihl + thl > rte_pktmbuf_data_len(m))
		return DP_DROP_TCP_MALFORMED;
	/*
	 * A NIC that checked the sum is believed either way; else it is computed
	 * here, over a chain too: tcp_cksum_mbuf(), since DPDK 22.11's
	 * rte_ipv4_udptcp_cksum_mbuf_verify() gets a chain wrong whose piece
	 * before the last has an odd length (see output.c).
	 */
	uint64_t ck = m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK;
	if (ck == RTE_MBUF_F_RX_L4_CKSUM_BAD ||
	    (ck == RTE_MBUF_F_RX_L4_CKSUM_UNKNOWN &&
	     tcp_cksum_mbuf(m, ihl, total - ihl, rte_ipv4_phdr_cksum(ip, 0)) != 0xffff))
		return DP_DROP_TCP_MALFORMED;

	memset(g, 0, sizeof(*g));
	g->m = m;
	g->ip = ip;
	g->th = th;
	g->saddr = ip->src_addr;
	g->daddr = ip->dst_addr;
	g->sport = th->src_port;
	g->dport = th->dst_port;
	g->seq = rte_be_to_cpu_32(th->sent_seq);
	g->ack = rte_be_to_cpu_32(th->recv_ack);
	g->wnd = rte_be_to_cpu_16(th->rx_win);
	g->flags = th->tcp_flags & 0x3f; /* CWR/ECE are not negotiated */
	g->hlen = (uint16_t)(ihl + thl);
	g->len = total - g->hlen;
	if (parse_options((const uint8_t *)(th + 1), thl - sizeof(*th), g->flags & F_SYN, &g->opt))
		return DP_DROP_TCP_BAD_OPTIONS;
	/* Impossible combinations (RFC 9293 §3.10.7; SYN+FIN and SYN+RST are never valid). */
	if ((g->flags & F_SYN) && (g->flags & (F_FIN | F_RST)))
		return DP_DROP_TCP_BAD_FLAGS;
	/* No SYN, ACK or RST: each state drops it, but a closed port answers it (§3.10.7.1). */
	/* Trimmed of any Ethernet padding past the total length, wherever in the chain it lies. */
	tcp_mbuf_keep(m, total);
	return 0;
}

static void process_data(struct tcp_conn *c, struct tcp_seg *g);

/* RFC 5961 §7: a challenge ACK, within a per-stack rate. */
static void challenge_ack(struct tcp_conn *c)
{
	struct tcp_stack *s = c->s;

	if (s->now_us - s->challenge_window_us >= 1000000) {
		s->challenge_window_us = s->now_us;
		s->challenge_count = 0;
	}
	if (++s->challenge_count > CHALLENGE_ACKS_PER_S)
		return;
	dp_count(s->stats, DP_C_TCP_CHALLENGE_ACKS, 1);
	tcp_send_ack(c);
}

bool tcp_conn_can_hold(const struct tcp_conn *c, unsigned n)
{
	return c->sq_mbufs + c->ooo_mbufs + n <= c->s->p.mbufs_per_conn;
}

void tcp_deliver(struct tcp_conn *c, struct rte_mbuf *m, uint32_t len)
{
	c->rcv_nxt += len;
	c->rcv_unconsumed += len;
	if (c->app_closed || !c->ops || !c->ops->received) {
		rte_pktmbuf_free(m);
		c->rcv_unconsumed -= len;
		return;
	}
	c->ops->received(c, m);
}

/* Applies the negotiated options of a SYN exchange. */
static void negotiate(struct tcp_conn *c, const struct tcp_seg_opts *o, bool we_offered_all)
{
	struct tcp_stack *s = c->s;
	uint16_t our_max = (uint16_t)(s->local_mtu - 40);

	c->peer_mss = o->has_mss ? o->mss : (uint16_t)s->p.mss_default;
	c->ws_ok = o->has_ws && we_offered_all;
	c->snd_wscale = c->ws_ok ? o->ws : 0;
	c->rcv_wscale = c->ws_ok ? s->p.wscale : 0;
	c->sack_ok = o->sack_ok && we_offered_all;
	c->ts_ok = o->has_ts && we_offered_all;
	if (c->ts_ok)
		c->ts_recent = o->tsval;
	c->mss = RTE_MIN(c->peer_mss, our_max);
	/* RFC 7323 §2.2 / RFC 6691: options come out of the MSS; a peer's MSS under 12 must
	 * not wrap it to 65525 (floored below). */
	if (c->ts_ok)
		c->mss = c->mss > 12 ? (uint16_t)(c->mss - 12) : 0;
	if (c->mss < 64)
		c->mss = 64;
}

static void cc_start(struct tcp_conn *c, enum tcp_cc_algo algo)
{
	c->cc = tcp_cc_get(algo);
	if (!c->cc)
		c->cc = &tcp_cc_newreno;
	c->cc->init(&c->ccs, c->mss, c->s->now_us);
	c->recover = c->iss; /* RFC 6582 §3.2 step 1: "initialized to the ISS" */
}

/* A connection became ESTABLISHED. */
static void established(struct tcp_conn *c)
{
	struct tcp_stack *s = c->s;

	/* a tcp_shutdown() in SYN_RECEIVED (a simultaneous open) sends its FIN now */
	tcp_conn_set_state(c, c->fin_queued ? TCP_ST_FIN_WAIT_1 : TCP_ST_ESTABLISHED);
	/* RFC 6298 §5.7: after a SYN or SYN-ACK timed out, data starts with an RTO of 3 s. */
	if (c->retries && c->rto_us < 3000000)
		c->rto_us = 3000000;
	c->retries = 0;
	timer_cancel(s->wheel, &c->t_rexmt);
	tcp_arm_keepalive(c);
	if (c->passive) {
		if (c->listener) {
			if (c->listener->syn_pending)
				c->listener->syn_pending--;
			void *larg = c->listener->o.arg;
			c->listener = NULL;
			dp_count(s->stats, DP_C_TCP_PASSIVE_OPENS, 1);
			if (c->ops && c->ops->accepted)
				c->ops->accepted(c, larg);
		}
	} else {
		dp_count(s->stats, DP_C_TCP_ACTIVE_OPENS, 1);
		if (c->ops && c->ops->connected)
			c->ops->connected(c, 0);
	}
}

/* RFC 9293 §3.10.7.2 for a listener: a SYN gets a SYN-ACK (a cookie when the backlog is full). */
static void listen_input(struct tcp_stack *s, struct tcp_listener *l, struct tcp_seg *g)
{
	struct rte_mbuf *m = g->m;

	if (g->flags & F_RST) {
		drop(s, m, DP_DROP_TCP_RST_IN);
		return;
	}
	if ((g->flags & F_ACK) && tcp_stale_match(s, g)) {
		drop(s, m, DP_DROP_TCP_STALE_ACK); /* the connection it belonged to ended */
		return;
	}
	if (g->flags & F_ACK) {
		/* Maybe the third step of a SYN-cookie handshake. */
		struct tcp_syncookie_opts so;
		struct tcp_syncookie_check_in in = {
			.laddr = g->daddr, .lport = g->dport, .raddr = g->saddr, .rport = g->sport,
			.client_isn = g->seq - 1, .cookie = g->ack - 1,
			.has_ts = g->opt.has_ts, .tsecr = g->opt.tsecr,
		};
		if (!(g->flags & F_SYN) &&
		    tcp_syncookie_check(&s->key, &in, s->now_us / 1000000,
					&so) == 0) {
			struct tcp_conn *c = tcp_conn_new(s, g->daddr, g->dport, g->saddr, g->sport);
			if (!c) {
				tcp_send_reset_for(s, g);
				drop(s, m, DP_DROP_TCP_CONN_TABLE_FULL);
				return;
			}
			dp_count(s->stats, DP_C_TCP_SYNCOOKIES_OK, 1);
			struct tcp_seg_opts o = {.has_mss = true, .mss = so.mss, .has_ws = so.has_ws,
						 .ws = so.wscale, .sack_ok = so.sack_ok,
						 .has_ts = so.has_ts, .tsval = g->opt.tsval};
			c->passive = true;
			c->ops = l->o.ops;
			c->nagle = l->o.nagle;
			c->ts_offset = tcp_ts_offset(&s->key, c->laddr, c->lport, c->raddr, c->rport);
			c->irs = g->seq - 1;
			c->rcv_nxt = g->seq;
			/* the window our SYN-ACK offered (unscaled): the client may use it now */
			c->rcv_adv = c->rcv_nxt + RTE_MIN(tcp_rcv_space(c), (uint32_t)UINT16_MAX);
			c->iss = g->ack - 1;
			c->snd_una = c->snd_nxt = c->snd_max = g->ack;
			c->snd_wl1 = g->seq;
			c->snd_wl2 = g->ack;
			negotiate(c, &o, true);
			c->snd_wnd = g->wnd << c->snd_wscale;
			c->max_snd_wnd = c->snd_wnd;
			cc_start(c, l->o.cc);
			c->listener = l;
			l->syn_pending++; /* balanced in established() */
			tcp_conn_set_state(c, TCP_ST_SYN_RECEIVED);
			tcp_conn_hold(c); /* accepted() or received() may abort it */
			established(c);
			/*
			 * The ACK may carry data (a pipelining client) and a FIN: processed as
			 * in ESTABLISHED, so text past the window our SYN-ACK offered is
			 * trimmed (RFC 9293 §3.10.7.4) and the mbuf cap holds.
			 */
			if (!c->doomed && (g->len || (g->flags & F_FIN))) {
				c->hs_by_data = true;
				process_data(c, g);
				if (!c->doomed)
					tcp_output(c);
			}
			tcp_conn_release(c);
			rte_pktmbuf_free(g->m); /* NULL when process_data() took it */
			return;
		}
		/* RFC 9293 §3.10.7.2: any ACK to a listener gets a RST. */
		tcp_send_reset_for(s, g);
		drop(s, m, DP_DROP_TCP_NO_CONN);
		return;
	}
	if (!(g->flags & F_SYN)) {
		drop(s, m, DP_DROP_TCP_BAD_FLAGS);
		return;
	}

	if (l->syn_pending >= l->o.syn_backlog) {
		/* RFC 4987 §3.6: keep no state; the cookie is our ISN. */
		struct tcp_syncookie_in in = {
			.laddr = g->daddr, .lport = g->dport, .raddr = g->saddr, .rport = g->sport,
			.client_isn = g->seq, .mss = g->opt.has_mss ? g->opt.mss : 536,
			.has_ws = g->opt.has_ws, .wscale = g->opt.ws, .sack_ok = g->opt.sack_ok,
			.has_ts = g->opt.has_ts,
		};
		struct tcp_conn tmp;
		memset(&tmp, 0, sizeof(tmp));
		tmp.s = s;
		tmp.laddr = g->daddr;
		tmp.lport = g->dport;
		tmp.raddr = g->saddr;
		tmp.rport = g->sport;
		tmp.state = TCP_ST_SYN_RECEIVED;
		tmp.iss = tcp_syncookie_make(&s->key, &in,
					     s->now_us / 1000000);
		tmp.rcv_nxt = g->seq + 1;
		tmp.rcv_adv = tmp.rcv_nxt;
		/* Without timestamps the cookie has nowhere to keep WS and SACK: offer neither. */
		struct tcp_seg_opts offer = g->opt;
		if (!offer.has_ts)
			offer.has_ws = offer.sack_ok = false;
		negotiate(&tmp, &offer, true);
		if (tmp.ts_ok) {
			/* the offset depends only on the tuple: the cookie's ACK finds it again */
			uint32_t off = tcp_ts_offset(&s->key, g->daddr, g->dport, g->saddr, g->sport);
			uint32_t now_ms = (uint32_t)(s->now_us / 1000);
			tmp.ts_offset = tcp_syncookie_tsval(&in, now_ms + off) - now_ms;
		}
		tmp.mss = (uint16_t)tcp_syncookie_mss_of(&in);
		tcp_send_ctl(&tmp, F_SYN | F_ACK, tmp.iss);
		dp_count(s->stats, DP_C_TCP_SYNCOOKIES_SENT, 1);
		rte_pktmbuf_free(m);
		return;
	}

	struct tcp_conn *c = tcp_conn_new(s, g->daddr, g->dport, g->saddr, g->sport);
	if (!c) {
		drop(s, m, DP_DROP_TCP_CONN_TABLE_FULL);
		return;
	}
	c->passive = true;
	c->listener = l;
	l->syn_pending++;
	c->ops = l->o.ops;
	c->nagle = l->o.nagle;
	c->irs = g->seq;
	c->rcv_nxt = g->seq + 1;
	c->rcv_adv = c->rcv_nxt;
	c->iss = tcp_isn(&s->key, c->laddr, c->lport, c->raddr,
			 c->rport, s->now_us);
	c->snd_una = c->iss;
	c->snd_nxt = c->snd_max = c->iss + 1;
	c->ts_offset = tcp_ts_offset(&s->key, c->laddr, c->lport, c->raddr, c->rport);
	negotiate(c, &g->opt, true);
	c->snd_wnd = g->wnd; /* a SYN's window is never scaled (RFC 7323 §2.2) */
	c->max_snd_wnd = c->snd_wnd;
	c->snd_wl1 = g->seq;
	c->snd_wl2 = c->iss;
	cc_start(c, l->o.cc);
	tcp_conn_set_state(c, TCP_ST_SYN_RECEIVED);
	tcp_send_ctl(c, F_SYN | F_ACK, c->iss);
	tcp_arm_rexmt(c);
	rte_pktmbuf_free(m); /* data on a SYN is not kept; the peer will resend it */
}

/* RFC 9293 §3.10.7.3: SYN-SENT. */
static void syn_sent_input(struct tcp_conn *c, struct tcp_seg *g)
{
	struct tcp_stack *s = c->s;

	if (g->flags & F_ACK) {
		if (seq_leq(g->ack, c->iss) || seq_gt(g->ack, c->snd_max)) {
			if (!(g->flags & F_RST))
				tcp_send_reset_for(s, g);
			drop(s, g->m, DP_DROP_TCP_BAD_ACK);
			return;
		}
	}
	if (g->flags & F_RST) {
		if (g->flags & F_ACK) {
			rte_pktmbuf_free(g->m);
			dp_count(s->stats, DP_C_TCP_RSTS_IN, 1);
			if (c->ops && c->ops->connected)
				c->ops->connected(c, -ECONNREFUSED);
			tcp_conn_destroy(c, TCP_CLOSE_REFUSED);
			return;
		}
		drop(s, g->m, DP_DROP_TCP_RST_IN);
		return;
	}
	if (!(g->flags & F_SYN)) {
		drop(s, g->m, DP_DROP_TCP_BAD_FLAGS);
		return;
	}
	c->irs = g->seq;
	c->rcv_nxt = g->seq + 1;
	c->rcv_adv = c->rcv_nxt;
	negotiate(c, &g->opt, true);
	if (c->ts_ok && g->opt.tsecr && (g->flags & F_ACK)) {
		uint32_t now_ts = (uint32_t)(s->now_us / 1000) + c->ts_offset;
		tcp_rtt_sample(c, (now_ts - g->opt.tsecr) * 1000);
	}
	c->snd_wnd = g->wnd;
	c->max_snd_wnd = c->snd_wnd;
	c->snd_wl1 = g->seq;
	c->snd_wl2 = g->ack;
	cc_start(c, c->active_cc);
	if (c->retries)
		tcp_cc_syn_was_lost(&c->ccs);
	if (g->flags & F_ACK) {
		c->snd_una = g->ack;
		c->ack_now = true;
		rte_pktmbuf_free(g->m);
		established(c);
		if (!c->doomed)
			tcp_output(c);
		return;
	}
	/* Simultaneous open (RFC 9293 §3.5, figure 8). */
	tcp_conn_set_state(c, TCP_ST_SYN_RECEIVED);
	tcp_send_ctl(c, F_SYN | F_ACK, c->iss);
	rte_pktmbuf_free(g->m);
}

/* RFC 9293 §3.10.7.4, first check: is any of the segment inside the receive window? */
static bool acceptable(const struct tcp_conn *c, const struct tcp_seg *g)
{
	uint32_t wnd = seq_gt(c->rcv_adv, c->rcv_nxt) ? c->rcv_adv - c->rcv_nxt : 0;
	uint32_t seglen = g->len + !!(g->flags & F_SYN) + !!(g->flags & F_FIN);

	if (seglen == 0) {
		if (wnd == 0)
			return g->seq == c->rcv_nxt;
		return seq_geq(g->seq, c->rcv_nxt) && seq_lt(g->seq, c->rcv_nxt + wnd);
	}
	/* "special allowance ... to accept valid ACKs": at RCV.NXT its ACK counts, its text not */
	if (wnd == 0)
		return g->seq == c->rcv_nxt;
	return (seq_geq(g->seq, c->rcv_nxt) && seq_lt(g->seq, c->rcv_nxt + wnd)) ||
	       (seq_geq(g->seq + seglen - 1, c->rcv_nxt) &&
		seq_lt(g->seq + seglen - 1, c->rcv_nxt + wnd));
}

/*
 * An out-of-window pure ACK is answered at most every OOW_ACK_INTERVAL_US per
 * connection, so two confused ends cannot ping-pong ACKs forever (Linux's
 * tcp_invalid_ratelimit does the same). Segments with data are always answered.
 */
#define OOW_ACK_INTERVAL_US 500000
static bool oow_ack_limited(struct tcp_conn *c, const struct tcp_seg *g)
{
	if (g->len || (g->flags & (F_SYN | F_FIN)))
		return false;
	if (c->last_oow_ack_us && c->s->now_us - c->last_oow_ack_us < OOW_ACK_INTERVAL_US)
		return true;
	c->last_oow_ack_us = c->s->now_us;
	return false;
}

/* RFC 7323 §5.3 R1: a timestamp older than TS.Recent marks an old duplicate. */
static bool paws_reject(const struct tcp_conn *c, const struct tcp_seg *g)
{
	if (!c->ts_ok || !g->opt.has_ts || (g->flags & F_RST))
		return false;
	if ((int32_t)(g->opt.tsval - c->ts_recent) >= 0)
		return false;
	/* RFC 7323 §5.5: a TS.Recent idle for over 24 days is no longer trusted. */
	uint32_t idle_ms = (uint32_t)(c->s->now_us / 1000) - c->ts_recent_age_ms;
	return idle_ms < 24u * 24 * 3600 * 1000;
}

static void enter_recovery(struct tcp_conn *c)
{
	struct tcp_stack *s = c->s;

	dp_count(s->stats, DP_C_TCP_FAST_RECOVERIES, 1);
	c->in_recovery = true;
	c->recover = c->snd_max;
	c->rescue_set = false; /* RFC 6675 §4 NextSeg (4): one rescue per entry into recovery */
	/* RFC 5681 §3.2 step 2: what limited transmit sent does not count toward ssthresh */
	c->ccs.flight = c->snd_max - c->snd_una - c->lt_sent;
	c->cc->on_enter_recovery(&c->ccs, s->now_us);
	c->rtt_timing = false;
	/* RFC 6675 §5 step (4.2) / RFC 6582 §3.2 step 2: the first hole goes now. */
	uint32_t n = tcp_retransmit(c, c->snd_una, c->mss);
	c->high_rxt = c->snd_una + n;
	if (!c->sack_ok)
		tcp_cc_recovery_inflate(&c->ccs, TCP_DUPTHRESH * c->mss); /* RFC 5681 §3.2 step 3 */
	tcp_arm_rexmt(c);
}

/*
 * RFC 9293 §3.10.7.4, fifth check, with RFC 5961 §5 ACK validation, RFC 6298
 * timing, RFC 5681/6582/6675 congestion response and RFC 3042 limited
 * transmit. Returns -1 when the segment must be dropped.
 */
static int process_ack(struct tcp_conn *c, struct tcp_seg *g)
{
	struct tcp_stack *s = c->s;

	if (seq_gt(g->ack, c->snd_max)) {
		tcp_send_ack(c); /* acks something never sent: RFC 9293 says ACK and drop */
		dp_drop(s->stats, DP_DROP_TCP_BAD_ACK);
		return -1;
	}
	if (seq_lt(g->ack, c->snd_una - c->max_snd_wnd)) {
		challenge_ack(c); /* RFC 5961 §5.2: too old to be real */
		dp_drop(s->stats, DP_DROP_TCP_BAD_ACK);
		return -1;
	}
	/* The peer answers: never give up probing it (RFC 1122 §4.2.2.17, §4.2.3.6). */
	c->probes = 0;
	bool sack_news = c->sack_ok && g->opt.n_sack && tcp_sack_update(c, &g->opt);

	uint32_t old_wnd = c->snd_wnd;
	if (seq_lt(c->snd_wl1, g->seq) || (c->snd_wl1 == g->seq && seq_leq(c->snd_wl2, g->ack))) {
		c->snd_wnd = g->wnd << c->snd_wscale;
		c->snd_wl1 = g->seq;
		c->snd_wl2 = g->ack;
		c->max_snd_wnd = RTE_MAX(c->max_snd_wnd, c->snd_wnd);
	}
	/* RFC 1122 §4.2.2.17: a receiver answering from behind a closed window is alive. */
	if (c->snd_wnd == 0)
		c->retries = 0;

	if (seq_gt(g->ack, c->snd_una)) {
		uint32_t acked = g->ack - c->snd_una;
		uint32_t rtt_us = 0;

		/* RFC 7323 §4.1 with timestamps, else Karn's one timed segment. */
		if (c->ts_ok && g->opt.has_ts && g->opt.tsecr) {
			uint32_t now_ts = (uint32_t)(s->now_us / 1000) + c->ts_offset;
			rtt_us = (now_ts - g->opt.tsecr) * 1000;
			if (rtt_us < 100000000)
				tcp_rtt_sample(c, rtt_us);
		} else if (c->rtt_timing && seq_gt(g->ack, c->rtt_seq)) {
			rtt_us = (uint32_t)(s->now_us - c->rtt_start_us);
			tcp_rtt_sample(c, rtt_us);
			c->rtt_timing = false;
		}
		tcp_sq_release(c, RTE_MIN(acked, c->sq_bytes));
		c->snd_una = g->ack;
		if (seq_lt(c->snd_nxt, c->snd_una))
			c->snd_nxt = c->snd_una;
		c->retries = 0;
		c->probes = 0;
		c->persist = false;

		if (c->in_recovery) {
			if (seq_geq(g->ack, c->recover)) {
				c->in_recovery = false;
				c->dupacks = 0;
				c->ccs.flight = c->snd_max - c->snd_una;
				c->cc->on_exit_recovery(&c->ccs, s->now_us);
			} else if (!c->sack_ok) {
				/* RFC 6582 §3.2 step 3: partial ACK: retransmit, deflate. */
				tcp_retransmit(c, c->snd_una, c->mss);
				tcp_cc_recovery_partial_ack(&c->ccs, acked);
				tcp_arm_rexmt(c);
			}
		} else {
			c->dupacks = 0;
			c->ccs.flight = c->snd_max - c->snd_una;
			c->cc->on_ack(&c->ccs, acked, c->srtt_us, s->now_us);
		}
		/* RFC 6298 §5.2/5.3 */
		if (c->snd_una == c->snd_max)
			timer_cancel(s->wheel, &c->t_rexmt);
		else
			tcp_arm_rexmt(c);
		if (c->want_writable && tcp_send_space(c) > 0) {
			c->want_writable = false;
			if (c->ops && c->ops->writable)
				c->ops->writable(c);
		}
		return 0;
	}

	/* RFC 5681 §2 duplicate ACK: no data, no window change, data outstanding. */
	if (g->ack == c->snd_una && g->len == 0 && !(g->flags & (F_SYN | F_FIN)) &&
	    c->snd_wnd == old_wnd && c->snd_una != c->snd_max) {
		if (++c->dupacks == 1)
			c->lt_sent = 0;
		if (!c->in_recovery) {
			bool lost = c->sack_ok ? (c->dupacks >= TCP_DUPTHRESH ||
						  tcp_sack_is_lost(c, c->snd_una))
					       : c->dupacks == TCP_DUPTHRESH;
			/* RFC 6582 §3.2 step 1: not again for losses of the same window */
			if (lost && seq_gt(g->ack - 1, c->recover - 1))
				enter_recovery(c);
			else if (lost && !c->sack_ok)
				c->dupacks = 0;
			/*
			 * RFC 3042 / RFC 5681 §3.2 step 1: the first two send new data.
			 * With SACK only a duplicate that brings news may (RFC 3042 §2):
			 * a receiver cannot conjure sends out of repeated ACKs.
			 */
			else if (!lost && c->dupacks < TCP_DUPTHRESH && (!c->sack_ok || sack_news))
				c->lt_sent += tcp_limited_transmit(c);
		} else if (!c->sack_ok) {
			tcp_cc_recovery_inflate(&c->ccs, c->mss); /* RFC 5681 §3.2 step 4 */
		}
	}
	return 0;
}

/* RFC 9293 §3.10.7.4, seventh and eighth checks: payload, then FIN. */
static void process_data(struct tcp_conn *c, struct tcp_seg *g)
{
	struct tcp_stack *s = c->s;
	struct rte_mbuf *m = g->m;
	uint32_t seq = g->seq, len = g->len;
	bool fin = g->flags & F_FIN;

	/* the payload only; in a received chain it may start in a later mbuf */
	g->m = NULL;
	m = tcp_mbuf_trim_front(m, g->hlen);
	if (len && c->app_closed) {
		/* RFC 9293 §3.10.4 / RFC 1122 §4.2.2.13: data nobody will read. */
		rte_pktmbuf_free(m);
		dp_drop(s->stats, DP_DROP_TCP_DATA_AFTER_CLOSE);
		tcp_send_ctl(c, F_RST, c->snd_nxt);
		tcp_conn_destroy(c, TCP_CLOSE_ABORTED);
		return;
	}
	/* trim what we already have */
	if (seq_lt(seq, c->rcv_nxt)) {
		uint32_t dup = c->rcv_nxt - seq;
		if (dup >= len) {
			len = 0;
		} else {
			m = tcp_mbuf_trim_front(m, dup);
			len -= dup;
		}
		seq = c->rcv_nxt;
	}
	/* trim what lies beyond the window; a FIN there goes too */
	uint32_t right = c->rcv_adv;
	if (len && seq_gt(seq + len, right)) {
		uint32_t keep = seq_gt(right, seq) ? right - seq : 0;
		if (keep < len) {
			if (keep)
				tcp_mbuf_keep(m, keep);
			len = keep;
			fin = false;
			c->ack_now = true; /* RFC 9293 §3.8.6.1: a probe learns our window */
		}
	}
	if (len == 0) {
		rte_pktmbuf_free(m);
		m = NULL;
	}
	/* RFC 9293 §3.10.7.4 / RFC 5681 §4.2: anything not at RCV.NXT gets an ACK at once. */
	if (seq != c->rcv_nxt)
		c->ack_now = true;
	if (m && !tcp_conn_can_hold(c, m->nb_segs)) {
		rte_pktmbuf_free(m);
		dp_drop(s->stats, DP_DROP_TCP_MBUF_CAP);
		c->ack_now = true; /* the window tells the peer to slow down */
		return;
	}
	if (m && seq == c->rcv_nxt) {
		bool had_holes = c->n_ooo > 0;
		tcp_deliver(c, m, len);
		if (c->doomed)
			return;
		tcp_reass_drain(c);
		if (c->doomed)
			return;
		/* RFC 5681 §4.2: ACK every second full segment; at once when filling a hole. */
		if (had_holes || ++c->segs_unacked >= 2 || len < c->mss)
			c->ack_now = c->ack_now || had_holes || c->segs_unacked >= 2;
		if (!c->ack_now)
			tcp_arm_delack(c);
	} else if (m) {
		tcp_reass_insert(c, seq, len, m);
		c->ack_now = true; /* RFC 5681 §4.2: out of order gets an immediate (dup) ACK */
		fin = false;       /* a FIN beyond a hole waits for the peer to resend it */
	}

	if (fin && seq + len == c->rcv_nxt) {
		c->rcv_nxt++;
		c->fin_rcvd = true;
		c->ack_now = true;
		switch (c->state) {
		case TCP_ST_ESTABLISHED:
			tcp_conn_set_state(c, TCP_ST_CLOSE_WAIT);
			break;
		case TCP_ST_FIN_WAIT_1:
			/* our FIN was not acked yet (else we'd be in FIN_WAIT_2) */
			tcp_conn_set_state(c, TCP_ST_CLOSING);
			break;
		case TCP_ST_FIN_WAIT_2:
			tcp_send_ack(c);
			tcp_enter_time_wait(c);
			return;
		default:
			break;
		}
		if (c->ops && c->ops->peer_closed && !c->app_closed)
			c->ops->peer_closed(c);
	}
}

/* Segments for synchronized states (SYN_RECEIVED onward), RFC 9293 §3.10.7.4. */
static void sync_input(struct tcp_conn *c, struct tcp_seg *g)
{
	struct tcp_stack *s = c->s;

	if (paws_reject(c, g)) {
		dp_drop(s->stats, DP_DROP_TCP_PAWS);
		if (!(g->flags & F_RST) && !oow_ack_limited(c, g))
			tcp_send_ack(c);
		goto free;
	}
	if (!acceptable(c, g)) {
		if (!(g->flags & F_RST) && !oow_ack_limited(c, g))
			tcp_send_ack(c);
		/* RFC 9293 §3.10.7.4 TIME-WAIT: the peer's FIN again restarts 2 MSL. */
		if (c->state == TCP_ST_TIME_WAIT && (g->flags & F_FIN) &&
		    g->seq + g->len + 1 == c->rcv_nxt)
			tcp_enter_time_wait(c);
		dp_drop(s->stats, DP_DROP_TCP_OUT_OF_WINDOW);
		goto free;
	}
	/* RFC 7323 §4.3: remember the timestamp of the segment at the left window edge. */
	if (c->ts_ok && g->opt.has_ts && seq_leq(g->seq, c->last_ack_sent)) {
		c->ts_recent = g->opt.tsval;
		c->ts_recent_age_ms = (uint32_t)(s->now_us / 1000);
	}

	if (g->flags & F_RST) {
		/* RFC 5961 §3.2: only an exact match resets; in-window draws a challenge. */
		if (g->seq != c->rcv_nxt) {
			challenge_ack(c);
			dp_drop(s->stats, DP_DROP_TCP_RST_IN_WINDOW);
			goto free;
		}
		dp_count(s->stats, DP_C_TCP_RSTS_IN, 1);
		rte_pktmbuf_free(g->m);
		/* a passive SYN_RECEIVED just goes away (back to LISTEN) */
		tcp_conn_destroy(c, TCP_CLOSE_RESET);
		return;
	}
	if (g->flags & F_SYN) {
		/* RFC 5961 §4.2: a SYN in a synchronized state draws a challenge ACK. */
		challenge_ack(c);
		dp_drop(s->stats, DP_DROP_TCP_SYN_IN_WINDOW);
		goto free;
	}
	if (!(g->flags & F_ACK)) {
		dp_drop(s->stats, DP_DROP_TCP_BAD_FLAGS);
		goto free;
	}
	/* RFC 1122 §4.2.3.6: keepalives wait for an interval with nothing received. */
	if (c->state == TCP_ST_ESTABLISHED || c->state == TCP_ST_CLOSE_WAIT)
		tcp_arm_keepalive(c);

	bool syn_acked = false; /* the ACK is applied here: not a duplicate ACK (RFC 5681 §2) */
	if (c->state == TCP_ST_SYN_RECEIVED) {
		if (seq_leq(g->ack, c->snd_una) || seq_gt(g->ack, c->snd_max)) {
			tcp_send_reset_for(s, g);
			dp_drop(s->stats, DP_DROP_TCP_BAD_ACK);
			goto free;
		}
		/* RFC 9293 §3.10.7.4: the ACK of our SYN moves SND.UNA before anything is sent. */
		c->snd_una = g->ack;
		c->snd_wnd = g->wnd << c->snd_wscale;
		c->max_snd_wnd = c->snd_wnd;
		c->snd_wl1 = g->seq;
		c->snd_wl2 = g->ack;
		if (c->retries)
			tcp_cc_syn_was_lost(&c->ccs);
		c->hs_by_data = g->len != 0 || (g->flags & F_FIN);
		established(c);
		if (c->doomed)
			goto free;
		syn_acked = true;
	}

	uint32_t fin_seq = c->snd_una + c->sq_bytes; /* where our FIN sits, if queued */
	bool fin_was_out = c->fin_queued && seq_gt(c->snd_max, fin_seq);
	if ((!syn_acked && process_ack(c, g) != 0) || c->doomed)
		goto free;
	bool our_fin_acked = fin_was_out && seq_gt(c->snd_una, fin_seq);

	switch (c->state) {
	case TCP_ST_FIN_WAIT_1:
		if (our_fin_acked) {
			tcp_conn_set_state(c, TCP_ST_FIN_WAIT_2);
			if (c->app_closed)
				tcp_arm_fin_wait_2(c);
		}
		break;
	case TCP_ST_CLOSING:
		if (our_fin_acked) {
			tcp_enter_time_wait(c);
			goto free;
		}
		break;
	case TCP_ST_LAST_ACK:
		if (our_fin_acked) {
			c->last_acked = true;
			rte_pktmbuf_free(g->m);
			tcp_conn_destroy(c, TCP_CLOSE_NORMAL);
			return;
		}
		break;
	case TCP_ST_TIME_WAIT:
		/* a retransmitted FIN: ACK it and restart 2*MSL (RFC 9293 §3.10.7.4) */
		if (g->flags & F_FIN) {
			tcp_send_ack(c);
			tcp_enter_time_wait(c);
		}
		goto free;
	default:
		break;
	}

	switch (c->state) {
	case TCP_ST_ESTABLISHED:
	case TCP_ST_FIN_WAIT_1:
	case TCP_ST_FIN_WAIT_2:
		process_data(c, g);
		break;
	default:
		/* CLOSE_WAIT, CLOSING, LAST_ACK: the peer already sent FIN; ignore text */
		break;
	}
	if (c->doomed || c->state == TCP_ST_TIME_WAIT)
		goto free;
	/* the FIN in FIN_WAIT_1 may have been acked along with data */
	if (c->state == TCP_ST_CLOSING && c->fin_queued && c->snd_una == c->snd_max &&
	    c->sq_bytes == 0 && our_fin_acked) {
		tcp_enter_time_wait(c);
		goto free;
	}
	tcp_output(c);
free:
	rte_pktmbuf_free(g->m);
}

/* RFC 6191: a new SYN may reuse a TIME_WAIT 4-tuple when it is clearly newer. */
static bool time_wait_reusable(const struct tcp_conn *c, const struct tcp_seg *g)
{
	if (!(g->flags & F_SYN) || (g->flags & (F_ACK | F_RST)))
		return false;
	if (c->ts_ok && g->opt.has_ts)
		return (int32_t)(g->opt.tsval - c->ts_recent) > 0;
	return seq_gt(g->seq, c->rcv_nxt);
}

/* Everything tcp_input() does, on the clock it set. */
static void input(struct tcp_stack *s, struct rte_mbuf *m)
{
	struct tcp_seg g;
	int reason;

	dp_count(s->stats, DP_C_TCP_SEGS_IN, 1);
	reason = parse_segment(s, m, &g);
	if (reason) {
		drop(s, m, (enum dp_drop)reason);
		return;
	}

	struct tcp_conn *c = tcp_conn_lookup(s, g.daddr, g.dport, g.saddr, g.sport);
	if (c && c->state == TCP_ST_TIME_WAIT && time_wait_reusable(c, &g)) {
		dp_count(s->stats, DP_C_TCP_TIME_WAIT_REUSED, 1);
		tcp_conn_destroy(c, TCP_CLOSE_NORMAL);
		c = NULL;
	}
	if (!c) {
		struct tcp_listener *l = tcp_listener_find(s, g.daddr, g.dport);
		if (l) {
			listen_input(s, l, &g);
			return;
		}
		/* RFC 9293 §3.10.7.1: CLOSED. */
		if ((g.flags & F_ACK) && tcp_stale_match(s, &g)) {
			drop(s, m, DP_DROP_TCP_STALE_ACK);
			return;
		}
		if (!(g.flags & F_RST))
			tcp_send_reset_for(s, &g);
		drop(s, m, (g.flags & F_RST) ? DP_DROP_TCP_RST_IN : DP_DROP_TCP_NO_CONN);
		return;
	}

	tcp_conn_hold(c);
	if (c->state == TCP_ST_SYN_SENT)
		syn_sent_input(c, &g);
	else
		sync_input(c, &g);
	tcp_conn_release(c);
}

void tcp_input(struct tcp_stack *s, struct rte_mbuf *m, uint64_t now)
{
	tcp_event_enter(s, now);
	input(s, m);
	tcp_event_leave(s);
}
