/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Segment output: what the send and congestion windows allow, FIN after the
 * queue, pure ACKs, and RSTs. Payload is never copied for large segments:
 * each piece of the send queue goes out as an indirect mbuf attached to the
 * application's own, so the queue keeps the only real reference.
 */
#include <errno.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_tcp.h>

#include "tcp_priv.h"

#define COPY_MAX 256 /* payloads up to this size are copied: cheaper than an attach */
#define IP_HDR_LEN ((uint16_t)sizeof(struct rte_ipv4_hdr))
#define TCP_HDR_LEN ((uint16_t)sizeof(struct rte_tcp_hdr))

uint32_t tcp_rcv_space(const struct tcp_conn *c)
{
	uint32_t buf = c->s->p.rcv_buf;
	return c->rcv_unconsumed >= buf ? 0 : buf - c->rcv_unconsumed;
}

uint16_t tcp_rcv_window_field(struct tcp_conn *c, bool syn)
{
	uint32_t space = tcp_rcv_space(c);
	uint8_t shift = (!syn && c->ws_ok) ? c->rcv_wscale : 0;

	/* RFC 9293 §3.8.6.2.2: never shrink the window we already offered. */
	if (!syn && seq_gt(c->rcv_adv, c->rcv_nxt + space))
		space = c->rcv_adv - c->rcv_nxt;
	/* Receiver SWS avoidance (RFC 9293 §3.8.6.2.2): don't offer a sliver. */
	if (space < c->mss && space < c->s->p.rcv_buf / 2 && !syn)
		space = seq_gt(c->rcv_adv, c->rcv_nxt) ? c->rcv_adv - c->rcv_nxt : 0;
	uint32_t field = space >> shift;
	if (field > UINT16_MAX)
		field = UINT16_MAX;
	/* The right edge we offer; a SYN's window is unscaled (RFC 7323 §2.2). */
	if (seq_gt(c->rcv_nxt + (field << shift), c->rcv_adv))
		c->rcv_adv = c->rcv_nxt + (field << shift);
	return (uint16_t)field;
}

static uint32_t ts_now(const struct tcp_conn *c)
{
	return (uint32_t)(c->s->now_us / 1000) + c->ts_offset;
}

/* Writes our options for a segment with FLAGS; returns their length (a multiple of 4). */
static unsigned write_options(struct tcp_conn *c, uint8_t *o, uint8_t flags)
{
	unsigned n = 0;

	if (flags & RTE_TCP_SYN_FLAG) {
		uint16_t mss = (uint16_t)(c->s->local_mtu - IP_HDR_LEN - TCP_HDR_LEN);
		o[n++] = TCPOPT_MSS;
		o[n++] = 4;
		o[n++] = (uint8_t)(mss >> 8);
		o[n++] = (uint8_t)mss;
		/* On a SYN-ACK, echo only what the peer offered (RFC 7323 §2.2, RFC 2018 §2). */
		bool active = !(flags & RTE_TCP_ACK_FLAG);
		if (active || c->sack_ok) {
			o[n++] = TCPOPT_SACK_PERM;
			o[n++] = 2;
		} else {
			o[n++] = TCPOPT_NOP;
			o[n++] = TCPOPT_NOP;
		}
		if (active || c->ts_ok) {
			o[n++] = TCPOPT_TS;
			o[n++] = 10;
			rte_be32_t v = rte_cpu_to_be_32(ts_now(c));
			memcpy(o + n, &v, 4);
			v = rte_cpu_to_be_32(active ? 0 : c->ts_recent);
			memcpy(o + n + 4, &v, 4);
			n += 8;
		}
		if (active || c->ws_ok) {
			o[n++] = TCPOPT_NOP;
			o[n++] = TCPOPT_WS;
			o[n++] = 3;
			o[n++] = c->rcv_wscale;
		}
		while (n % 4)
			o[n++] = TCPOPT_NOP;
		return n;
	}
	if (c->ts_ok) {
		o[n++] = TCPOPT_NOP;
		o[n++] = TCPOPT_NOP;
		o[n++] = TCPOPT_TS;
		o[n++] = 10;
		rte_be32_t v = rte_cpu_to_be_32(ts_now(c));
		memcpy(o + n, &v, 4);
		v = rte_cpu_to_be_32(c->ts_recent);
		memcpy(o + n + 4, &v, 4);
		n += 8;
	}
	if (c->sack_ok && c->n_ooo && !(flags & RTE_TCP_RST_FLAG)) {
		struct tcp_range b[TCP_MAX_SACK_BLOCKS];
		unsigned k = tcp_reass_sack_blocks(c, b, c->ts_ok ? 3 : 4);
		if (k) {
			o[n++] = TCPOPT_NOP;
			o[n++] = TCPOPT_NOP;
			o[n++] = TCPOPT_SACK;
			o[n++] = (uint8_t)(2 + 8 * k);
			for (unsigned i = 0; i < k; i++) {
				rte_be32_t v = rte_cpu_to_be_32(b[i].start);
				memcpy(o + n, &v, 4);
				v = rte_cpu_to_be_32(b[i].end);
				memcpy(o + n + 4, &v, 4);
				n += 8;
			}
		}
	}
	return n;
}

/*
 * Appends LEN bytes of the send queue, starting OFF bytes after snd_una, to
 * HDR: copied when small, else as indirect mbufs. Returns 0 or -ENOBUFS.
 */
static int attach_payload(struct tcp_conn *c, struct rte_mbuf *hdr, uint32_t off, uint32_t len)
{
	struct rte_mbuf *seg = c->sq_head, *last = hdr;

	while (seg && off >= seg->data_len) {
		off -= seg->data_len;
		seg = seg->next;
	}
	if (len <= COPY_MAX && len <= rte_pktmbuf_tailroom(hdr)) {
		while (len) {
			uint32_t piece = RTE_MIN(len, (uint32_t)seg->data_len - off);
			char *dst = rte_pktmbuf_append(hdr, (uint16_t)piece);
			memcpy(dst, rte_pktmbuf_mtod_offset(seg, char *, off), piece);
			len -= piece;
			off = 0;
			seg = seg->next;
		}
		return 0;
	}
	while (len) {
		uint32_t piece = RTE_MIN(len, (uint32_t)seg->data_len - off);
		struct rte_mbuf *mi = rte_pktmbuf_alloc(c->s->pool);
		if (!mi)
			return -ENOBUFS;
		rte_pktmbuf_attach(mi, seg);
		mi->data_off = (uint16_t)(seg->data_off + off);
		mi->data_len = (uint16_t)piece;
		mi->pkt_len = piece;
		last->next = mi;
		last = mi;
		hdr->nb_segs++;
		hdr->pkt_len += piece;
		len -= piece;
		off = 0;
		seg = seg->next;
	}
	return 0;
}

/*
 * The TCP checksum of M (at the IPv4 header), payload chained or not. Not
 * rte_ipv4_udptcp_cksum_mbuf(): DPDK 22.11's rte_raw_cksum_mbuf() truncates a
 * piece's 32-bit sum to 16 bits before byte-swapping a piece that starts at
 * an odd offset (later DPDK swaps the 32 bits), so a segment whose payload
 * spans an odd-length send went out with a bad checksum, every retransmission
 * too. Each piece is reduced before the swap (RFC 1071 §2(B)).
 */
static uint16_t tcp_cksum_chain(const struct rte_mbuf *m, const struct rte_ipv4_hdr *ip)
{
	uint32_t sum = rte_ipv4_phdr_cksum(ip, 0), off = IP_HDR_LEN, done = 0;

	for (const struct rte_mbuf *seg = m; seg; seg = seg->next, off = 0) {
		uint32_t len = seg->data_len - off;
		uint16_t part = rte_raw_cksum(rte_pktmbuf_mtod_offset(seg, const char *, off), len);
		sum += (done & 1) ? rte_bswap16(part) : part;
		done += len;
	}
	sum = (sum >> 16) + (sum & 0xffff);
	sum += sum >> 16;
	return (uint16_t)~sum;
}

/*
 * Whether a piece of M before its last has an odd length. DPDK 22.11's
 * net_tap sums each piece of a chain on its own as if it began at an even
 * offset (the flaw tcp_cksum_chain() works around in software), so such a
 * chain left to it goes out with a bad TCP checksum: seen as InCsumErrors at
 * the kernel and a connection that stalls on its retransmissions.
 */
static bool odd_piece_inside(const struct rte_mbuf *m)
{
	for (; m->next; m = m->next)
		if (m->data_len & 1)
			return true;
	return false;
}

/*
 * The IPv4 and TCP checksums of M (at the IPv4 header, TCP header of THL
 * bytes): in software, or left to the NIC with what its offload needs, the
 * header lengths and the pseudo-header sum (DPDK's TX checksum contract). The
 * net layer prepends the Ethernet header that l2_len accounts for. A segment
 * whose payload spans an odd-length send (rare: the pieces are the
 * application's sends) is summed here, whatever the NIC offers.
 */
static void finish_cksums(const struct tcp_stack *s, struct rte_mbuf *m, struct rte_ipv4_hdr *ip,
			  struct rte_tcp_hdr *th, uint16_t thl)
{
	ip->hdr_checksum = 0;
	th->cksum = 0;
	if (s->p.tx_csum_offload && !odd_piece_inside(m)) {
		m->l2_len = RTE_ETHER_HDR_LEN;
		m->l3_len = IP_HDR_LEN;
		m->l4_len = thl; /* the API wants it only for TSO; older net_tap reads it too */
		m->ol_flags |=
			RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_TCP_CKSUM;
		th->cksum = rte_ipv4_phdr_cksum(ip, m->ol_flags);
		return;
	}
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	th->cksum = tcp_cksum_chain(m, ip);
}

/* Builds and sends one segment of c: SEQ, FLAGS and LEN payload bytes from the queue. */
static int send_segment(struct tcp_conn *c, uint32_t seq, uint8_t flags, uint32_t len)
{
	struct tcp_stack *s = c->s;
	uint8_t opts[40];
	struct rte_mbuf *m = rte_pktmbuf_alloc(s->pool);

	if (!m) {
		dp_drop(s->stats, DP_DROP_MBUF_ALLOC_FAILED);
		return -ENOBUFS;
	}
	/* Every segment but the first SYN of an active open carries ACK (RFC 9293 §3.10.7.4). */
	if (c->state != TCP_ST_SYN_SENT)
		flags |= RTE_TCP_ACK_FLAG;
	unsigned olen = write_options(c, opts, flags);
	/*
	 * RFC 9293 §3.7.1: options come out of the effective MSS. c->mss leaves room
	 * for timestamps only, so SACK blocks (after them) that would push a data
	 * segment past it, and past the MTU, are left off: as many as need be.
	 */
	unsigned ts_len = c->ts_ok ? 12 : 0;
	if (!(flags & RTE_TCP_SYN_FLAG) && olen > ts_len && len + olen > c->mss + ts_len) {
		unsigned room = c->mss + ts_len > len ? c->mss + ts_len - len : 0;
		unsigned k = room >= ts_len + 12 ? (room - ts_len - 4) / 8 : 0;
		olen = k ? ts_len + 4 + 8 * k : ts_len;
		opts[ts_len + 3] = (uint8_t)(2 + 8 * k);
	}
	uint16_t hlen = (uint16_t)(IP_HDR_LEN + TCP_HDR_LEN + olen);
	char *p = rte_pktmbuf_append(m, hlen);
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)p;
	struct rte_tcp_hdr *th = (struct rte_tcp_hdr *)(p + IP_HDR_LEN);

	memcpy(p + IP_HDR_LEN + TCP_HDR_LEN, opts, olen);
	if (len && attach_payload(c, m, seq - c->snd_una, len) != 0) {
		rte_pktmbuf_free(m);
		dp_drop(s->stats, DP_DROP_MBUF_ALLOC_FAILED);
		return -ENOBUFS;
	}
	/* The ACK field reflects what we have, even on a retransmission. */
	th->src_port = c->lport;
	th->dst_port = c->rport;
	th->sent_seq = rte_cpu_to_be_32(seq);
	th->recv_ack = (flags & RTE_TCP_ACK_FLAG) ? rte_cpu_to_be_32(c->rcv_nxt) : 0;
	th->data_off = (uint8_t)(((TCP_HDR_LEN + olen) / 4) << 4);
	th->tcp_flags = flags;
	th->rx_win = (flags & RTE_TCP_RST_FLAG)
			     ? 0
			     : rte_cpu_to_be_16(tcp_rcv_window_field(c, flags & RTE_TCP_SYN_FLAG));
	th->cksum = 0;
	th->tcp_urp = 0;
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->type_of_service = 0;
	ip->total_length = rte_cpu_to_be_16((uint16_t)m->pkt_len);
	ip->packet_id = 0;
	ip->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);
	ip->time_to_live = 64;
	ip->next_proto_id = IPPROTO_TCP;
	ip->src_addr = c->laddr;
	ip->dst_addr = c->raddr;
	finish_cksums(s, m, ip, th, (uint16_t)(TCP_HDR_LEN + olen));

	if (flags & RTE_TCP_ACK_FLAG) {
		c->last_ack_sent = c->rcv_nxt;
		c->segs_unacked = 0;
		c->ack_now = false;
		timer_cancel(s->wheel, &c->t_delack);
	}
	c->last_send_us = s->now_us;
	dp_count(s->stats, DP_C_TCP_SEGS_OUT, 1);
	if (flags & RTE_TCP_RST_FLAG)
		dp_count(s->stats, DP_C_TCP_RST_SENT, 1);
	s->out(s->out_arg, m, c->raddr);
	return 0;
}

int tcp_send_ctl(struct tcp_conn *c, uint8_t flags, uint32_t seq)
{
	return send_segment(c, seq, flags, 0);
}

void tcp_send_ack(struct tcp_conn *c)
{
	/* A pure ACK carries SND.MAX: after a go-back-N retransmission SND.NXT is
	 * behind what the peer holds, and an ACK there would be out of its window
	 * (as in BSD's tcp_output). */
	send_segment(c, c->snd_max, RTE_TCP_ACK_FLAG, 0);
}

uint32_t tcp_retransmit(struct tcp_conn *c, uint32_t seq, uint32_t len)
{
	uint32_t data_end = c->snd_una + c->sq_bytes;
	uint8_t flags = RTE_TCP_ACK_FLAG;

	if (seq_geq(seq, data_end)) {
		/* only the FIN is outstanding there */
		if (c->fin_queued && seq == data_end) {
			send_segment(c, seq, RTE_TCP_ACK_FLAG | RTE_TCP_FIN_FLAG, 0);
			dp_count(c->s->stats, DP_C_TCP_RETRANSMITS, 1);
			return 1;
		}
		return 0;
	}
	len = RTE_MIN(len, RTE_MIN((uint32_t)c->mss, data_end - seq));
	if (seq + len == data_end && c->fin_queued && seq_gt(c->snd_max, data_end))
		flags |= RTE_TCP_FIN_FLAG; /* the FIN went out with this data before */
	if (send_segment(c, seq, flags | RTE_TCP_PSH_FLAG, len) != 0)
		return 0;
	dp_count(c->s->stats, DP_C_TCP_RETRANSMITS, 1);
	return len;
}

/* Sends LEN new bytes at SND.NXT (of UNSENT queued there), FIN with the last; advances SND.NXT. */
static int send_new_data(struct tcp_conn *c, uint32_t len, uint32_t unsent)
{
	uint8_t flags = RTE_TCP_ACK_FLAG;
	if (len == unsent)
		flags |= RTE_TCP_PSH_FLAG;
	bool with_fin = len == unsent && c->fin_queued;
	if (with_fin)
		flags |= RTE_TCP_FIN_FLAG;
	int rc = send_segment(c, c->snd_nxt, flags, len);
	if (rc != 0)
		return rc;
	/* Karn (RFC 6298 §3): time only data never sent before, never a retransmission. */
	if (!c->rtt_timing && !c->ts_ok && seq_geq(c->snd_nxt, c->snd_max)) {
		c->rtt_timing = true;
		c->rtt_seq = c->snd_nxt;
		c->rtt_start_us = c->s->now_us;
	}
	c->snd_nxt += len + (with_fin ? 1 : 0);
	return 0;
}

uint32_t tcp_limited_transmit(struct tcp_conn *c)
{
	uint32_t data_end = c->snd_una + c->sq_bytes;

	/* previously unsent data only (not after a go-back-N), in a state that sends data */
	if (c->snd_nxt != c->snd_max || !seq_lt(c->snd_nxt, data_end))
		return 0;
	if (c->state != TCP_ST_ESTABLISHED && c->state != TCP_ST_CLOSE_WAIT &&
	    c->state != TCP_ST_FIN_WAIT_1)
		return 0;
	uint32_t unsent = data_end - c->snd_nxt;
	uint32_t len = RTE_MIN(unsent, (uint32_t)c->mss);
	/* the receiver's advertised window allows the whole segment */
	if (seq_gt(c->snd_nxt + len, c->snd_una + c->snd_wnd))
		return 0;
	/* FlightSize stays within cwnd + 2*SMSS; cwnd itself is left alone */
	if (c->snd_nxt - c->snd_una + len > c->ccs.cwnd + 2u * c->mss)
		return 0;
	if (c->nagle && len < c->mss)
		return 0;
	if (send_new_data(c, len, unsent) != 0)
		return 0;
	c->snd_max = seq_max(c->snd_max, c->snd_nxt);
	return len;
}

/* The bytes in flight as RFC 6675 counts them, or plainly without SACK. */
static uint32_t flight(const struct tcp_conn *c)
{
	if (c->in_recovery && c->sack_ok)
		return tcp_sack_pipe(c);
	return c->snd_nxt - c->snd_una;
}

void tcp_output(struct tcp_conn *c)
{
	struct tcp_stack *s = c->s;
	bool sent = false;

	switch (c->state) {
	case TCP_ST_ESTABLISHED:
	case TCP_ST_CLOSE_WAIT:
	case TCP_ST_FIN_WAIT_1:
	case TCP_ST_CLOSING:
	case TCP_ST_LAST_ACK:
		break;
	case TCP_ST_TIME_WAIT:
	case TCP_ST_FIN_WAIT_2:
		if (c->ack_now)
			tcp_send_ack(c);
		return;
	default:
		return;
	}

	/* Loss recovery with SACK (RFC 6675 §5 step (C)): holes first, as the pipe allows. */
	if (c->in_recovery && c->sack_ok) {
		uint32_t seq, len;
		while (c->ccs.cwnd >= tcp_sack_pipe(c) + c->mss &&
		       tcp_sack_next_seg(c, &seq, &len) == 0) {
			uint32_t n = tcp_retransmit(c, seq, len);
			if (!n)
				break;
			c->high_rxt = seq + n;
			sent = true;
		}
	}

	uint32_t data_end = c->snd_una + c->sq_bytes;
	/* RFC 5681 §4.1: after an idle period the window restarts; the algorithm decides. */
	if (c->snd_una == c->snd_max && seq_lt(c->snd_nxt, data_end) && c->last_send_us &&
	    c->cc)
		c->cc->on_idle_restart(&c->ccs, s->now_us - c->last_send_us, c->rto_us, s->now_us);
	for (;;) {
		if (!seq_lt(c->snd_nxt, data_end))
			break;
		uint32_t unsent = data_end - c->snd_nxt;
		uint32_t wnd = RTE_MIN(c->ccs.cwnd, c->snd_wnd);
		uint32_t in_flight = flight(c);
		uint32_t usable = wnd > in_flight ? wnd - in_flight : 0;
		/* never past the peer's right edge */
		uint32_t edge = c->snd_una + c->snd_wnd;
		if (seq_leq(edge, c->snd_nxt))
			usable = 0;
		else
			usable = RTE_MIN(usable, edge - c->snd_nxt);
		uint32_t len = RTE_MIN(RTE_MIN(unsent, usable), (uint32_t)c->mss);
		if (len == 0)
			break;
		/*
		 * Sender SWS avoidance (RFC 9293 §3.8.6.2.1) and Nagle (RFC 1122
		 * §4.2.3.4), unless the override timeout just expired (rule 4).
		 */
		if (len < c->mss && len < unsent && len < c->max_snd_wnd / 2 && !c->sws_override)
			break;
		if (c->nagle && len < c->mss && c->snd_nxt != c->snd_una)
			break;
		if (send_new_data(c, len, unsent) != 0)
			break;
		sent = true;
	}

	/* A FIN with no data left to carry it. */
	if (c->fin_queued && c->snd_nxt == data_end) {
		if (send_segment(c, c->snd_nxt, RTE_TCP_ACK_FLAG | RTE_TCP_FIN_FLAG, 0) == 0) {
			c->snd_nxt++;
			sent = true;
		}
	}
	c->snd_max = seq_max(c->snd_max, c->snd_nxt);

	if (!sent && c->ack_now)
		tcp_send_ack(c);

	if (c->snd_una != c->snd_max) {
		if (!timer_armed(&c->t_rexmt) || c->persist) {
			c->persist = false;
			tcp_arm_rexmt(c);
		}
	} else if (seq_lt(c->snd_nxt, data_end) && !timer_armed(&c->t_rexmt)) {
		/*
		 * Data waits with nothing in flight, so no ACK will come to send it:
		 * the window is zero (probe it, RFC 9293 §3.8.6.1) or too small for
		 * SWS avoidance (send into it at the override timeout, §3.8.6.2.1).
		 */
		c->persist = true;
		if (c->snd_wnd == 0)
			tcp_arm_rexmt(c);
		else
			tcp_arm_sws_override(c);
	}
}

/*
 * A RST for a segment that has no connection (RFC 9293 §3.10.7.1): if the
 * segment had ACK, <SEQ=SEG.ACK><CTL=RST>; else <SEQ=0><ACK=SEG.SEQ+SEG.LEN>
 * <CTL=RST,ACK>. A RST is never answered.
 */
void tcp_send_reset_for(struct tcp_stack *s, const struct tcp_seg *g)
{
	if (g->flags & RTE_TCP_RST_FLAG)
		return;
	struct rte_mbuf *m = rte_pktmbuf_alloc(s->pool);
	if (!m) {
		dp_drop(s->stats, DP_DROP_MBUF_ALLOC_FAILED);
		return;
	}
	char *p = rte_pktmbuf_append(m, IP_HDR_LEN + TCP_HDR_LEN);
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)p;
	struct rte_tcp_hdr *th = (struct rte_tcp_hdr *)(p + IP_HDR_LEN);
	memset(p, 0, IP_HDR_LEN + TCP_HDR_LEN);
	th->src_port = g->dport;
	th->dst_port = g->sport;
	th->data_off = (TCP_HDR_LEN / 4) << 4;
	if (g->flags & RTE_TCP_ACK_FLAG) {
		th->sent_seq = rte_cpu_to_be_32(g->ack);
		th->tcp_flags = RTE_TCP_RST_FLAG;
	} else {
		uint32_t seglen = g->len + !!(g->flags & RTE_TCP_SYN_FLAG) +
				  !!(g->flags & RTE_TCP_FIN_FLAG);
		th->recv_ack = rte_cpu_to_be_32(g->seq + seglen);
		th->tcp_flags = RTE_TCP_RST_FLAG | RTE_TCP_ACK_FLAG;
	}
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->total_length = rte_cpu_to_be_16(IP_HDR_LEN + TCP_HDR_LEN);
	ip->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);
	ip->time_to_live = 64;
	ip->next_proto_id = IPPROTO_TCP;
	ip->src_addr = g->daddr;
	ip->dst_addr = g->saddr;
	finish_cksums(s, m, ip, th, TCP_HDR_LEN);
	dp_count(s->stats, DP_C_TCP_RST_SENT, 1);
	s->out(s->out_arg, m, g->saddr);
}
