/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Segment output: what the send and congestion windows allow, FIN after the
 * queue, pure ACKs, and RSTs. Payload is not copied for large segments: each
 * piece of the send queue goes out as an indirect mbuf attached to the
 * application's own, so the queue keeps the only real reference (small
 * payloads, or ones scattered over many small sends, are copied). Cursors into
 * the queue find each segment's first byte without walking from the head.
 */
#include <errno.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_tcp.h>

#include "tcp_priv.h"

#define COPY_MAX 256 /* payloads up to this size are copied: cheaper than an attach */
/*
 * A segment whose payload lies in more of the application's mbufs than this
 * is copied too (when it fits the header mbuf): one copy costs less than an
 * indirect mbuf per piece, and NICs bound the mbufs of one packet.
 */
#define ATTACH_MAX 8
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

void tcp_sq_release(struct tcp_conn *c, uint32_t n)
{
	while (n && c->sq_head) {
		struct rte_mbuf *m = c->sq_head;
		uint32_t take = RTE_MIN(n, (uint32_t)m->data_len);
		/* a cursor on a freed mbuf is unset (the head serves); on a trimmed one, moved */
		for (unsigned i = 0; i < TCP_SQ_CURSORS; i++)
			if (c->sq_cur[i].m == m) {
				if (take == m->data_len)
					c->sq_cur[i].m = NULL;
				else
					c->sq_cur[i].seq += take;
			}
		n -= take;
		c->sq_bytes -= take;
		if (take == m->data_len) {
			c->sq_head = m->next;
			if (!c->sq_head)
				c->sq_tail = NULL;
			m->next = NULL;
			rte_pktmbuf_free_seg(m);
			c->sq_mbufs--;
		} else {
			m->data_off = (uint16_t)(m->data_off + take);
			m->data_len = (uint16_t)(m->data_len - take);
		}
	}
}

void tcp_sq_purge(struct tcp_conn *c)
{
	rte_pktmbuf_free(c->sq_head);
	c->sq_head = c->sq_tail = NULL;
	c->sq_bytes = 0;
	c->sq_mbufs = 0;
	for (unsigned i = 0; i < TCP_SQ_CURSORS; i++)
		c->sq_cur[i].m = NULL;
}

/*
 * The mbuf of the send queue that holds byte SEQ (SND.UNA <= SEQ < the end of
 * the queue), walked to from the nearest known place at or before it: the
 * head (at SND.UNA) or a cursor. Building consecutive segments then steps
 * over each mbuf once, whatever the queue's length.
 */
static struct tcp_sq_pos sq_seek(struct tcp_conn *c, uint32_t seq)
{
	struct tcp_sq_pos p = {c->sq_head, c->snd_una};

	for (unsigned i = 0; i < TCP_SQ_CURSORS; i++) {
		const struct tcp_sq_pos *q = &c->sq_cur[i];
		if (q->m && seq_leq(q->seq, seq) && seq_gt(q->seq, p.seq))
			p = *q;
	}
	uint64_t steps = 0;
	while (p.m && seq_geq(seq, p.seq + p.m->data_len)) {
		p.seq += p.m->data_len;
		p.m = p.m->next;
		steps++;
	}
	struct tcp_stack *s = c->s;
	s->sq_seeks++;
	s->sq_seek_steps += steps;
	s->sq_seek_max = RTE_MAX(s->sq_seek_max, steps);
	return p;
}

/*
 * Whether the LEN bytes from OFF into P's mbuf lie in more than ATTACH_MAX
 * mbufs of the queue (an application that sends in small pieces).
 */
static bool many_pieces(struct tcp_sq_pos p, uint32_t off, uint32_t len)
{
	unsigned pieces = 0;

	for (const struct rte_mbuf *m = p.m; m && len; m = m->next, off = 0) {
		if (++pieces > ATTACH_MAX)
			return true;
		len -= RTE_MIN(len, (uint32_t)m->data_len - off);
	}
	return false;
}

/*
 * Appends LEN bytes of the send queue, from sequence number SEQ, to HDR:
 * copied when small or scattered over many small mbufs, else as indirect
 * mbufs. Leaves cursor CUR (unless TCP_SQ_NONE) where the next byte is.
 * Returns 0, -ENOBUFS, or -EINVAL for bytes past the queue's end.
 */
static int attach_payload(struct tcp_conn *c, struct rte_mbuf *hdr, uint32_t seq, uint32_t len,
			  enum tcp_sq_cursor cur)
{
	struct tcp_sq_pos p = sq_seek(c, seq);
	struct rte_mbuf *last = hdr;
	uint32_t off = seq - p.seq;
	bool copy = len <= rte_pktmbuf_tailroom(hdr) &&
		    (len <= COPY_MAX || many_pieces(p, off, len));

	while (len) {
		if (!p.m)
			return -EINVAL; /* past the queue's end: the callers never ask */
		uint32_t piece = RTE_MIN(len, (uint32_t)p.m->data_len - off);
		if (copy) {
			char *dst = rte_pktmbuf_append(hdr, (uint16_t)piece);
			memcpy(dst, rte_pktmbuf_mtod_offset(p.m, char *, off), piece);
		} else {
			struct rte_mbuf *mi = rte_pktmbuf_alloc(c->s->pool);
			if (!mi)
				return -ENOBUFS;
			rte_pktmbuf_attach(mi, p.m);
			mi->data_off = (uint16_t)(p.m->data_off + off);
			mi->data_len = (uint16_t)piece;
			mi->pkt_len = piece;
			last->next = mi;
			last = mi;
			hdr->nb_segs++;
			hdr->pkt_len += piece;
		}
		len -= piece;
		off += piece;
		/* at the end of this mbuf, move on: the cursor then rests where the next byte is */
		if (off == p.m->data_len && p.m->next) {
			p.seq += p.m->data_len;
			p.m = p.m->next;
			off = 0;
		}
	}
	if (cur < TCP_SQ_CURSORS)
		c->sq_cur[cur] = p;
	return 0;
}

/*
 * Not rte_raw_cksum_mbuf() (nor rte_ipv4_udptcp_cksum_mbuf() and _verify()
 * built on it): DPDK 22.11 truncates a piece's 32-bit sum to 16 bits before
 * byte-swapping a piece that starts at an odd offset (later DPDK swaps the 32
 * bits), so a segment whose payload spans an odd-length send went out with a
 * bad checksum, every retransmission too, and such a chain received was
 * dropped. Each piece is reduced before the swap (RFC 1071 §2(B)).
 */
uint16_t tcp_cksum_mbuf(const struct rte_mbuf *m, uint32_t off, uint32_t len, uint32_t sum)
{
	uint32_t done = 0;

	for (; m && off >= m->data_len; m = m->next)
		off -= m->data_len;
	for (; m && done < len; m = m->next, off = 0) {
		uint32_t n = RTE_MIN((uint32_t)m->data_len - off, len - done);
		uint16_t part = rte_raw_cksum(rte_pktmbuf_mtod_offset(m, const char *, off), n);
		sum += (done & 1) ? rte_bswap16(part) : part;
		done += n;
	}
	sum = (sum >> 16) + (sum & 0xffff);
	sum += sum >> 16;
	return (uint16_t)sum;
}

/* The TCP checksum of M (at the IPv4 header, no options), payload chained or not. */
static uint16_t tcp_cksum_chain(const struct rte_mbuf *m, const struct rte_ipv4_hdr *ip)
{
	return (uint16_t)~tcp_cksum_mbuf(m, IP_HDR_LEN, m->pkt_len - IP_HDR_LEN,
					 rte_ipv4_phdr_cksum(ip, 0));
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

/*
 * Builds and sends one segment of c: SEQ, FLAGS and LEN payload bytes from the
 * queue, read through cursor CUR.
 */
static int send_segment(struct tcp_conn *c, uint32_t seq, uint8_t flags, uint32_t len,
			enum tcp_sq_cursor cur)
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
	if (len && attach_payload(c, m, seq, len, cur) != 0) {
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
	return send_segment(c, seq, flags, 0, TCP_SQ_NONE);
}

void tcp_send_ack(struct tcp_conn *c)
{
	/* A pure ACK carries SND.MAX: after a go-back-N retransmission SND.NXT is
	 * behind what the peer holds, and an ACK there would be out of its window
	 * (as in BSD's tcp_output). */
	send_segment(c, c->snd_max, RTE_TCP_ACK_FLAG, 0, TCP_SQ_NONE);
}

/* tcp_retransmit(), reading the queue through cursor CUR. */
static uint32_t retransmit(struct tcp_conn *c, uint32_t seq, uint32_t len, enum tcp_sq_cursor cur)
{
	uint32_t data_end = c->snd_una + c->sq_bytes;
	uint8_t flags = RTE_TCP_ACK_FLAG;

	if (seq_geq(seq, data_end)) {
		/* only the FIN is outstanding there */
		if (c->fin_queued && seq == data_end) {
			send_segment(c, seq, RTE_TCP_ACK_FLAG | RTE_TCP_FIN_FLAG, 0, TCP_SQ_NONE);
			dp_count(c->s->stats, DP_C_TCP_RETRANSMITS, 1);
			return 1;
		}
		return 0;
	}
	len = RTE_MIN(len, RTE_MIN((uint32_t)c->mss, data_end - seq));
	if (seq + len == data_end && c->fin_queued && seq_gt(c->snd_max, data_end))
		flags |= RTE_TCP_FIN_FLAG; /* the FIN went out with this data before */
	if (send_segment(c, seq, flags | RTE_TCP_PSH_FLAG, len, cur) != 0)
		return 0;
	dp_count(c->s->stats, DP_C_TCP_RETRANSMITS, 1);
	return len;
}

uint32_t tcp_retransmit(struct tcp_conn *c, uint32_t seq, uint32_t len)
{
	return retransmit(c, seq, len, TCP_SQ_RXT);
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
	int rc = send_segment(c, c->snd_nxt, flags, len, TCP_SQ_NEW);
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

/*
 * RFC 6675 §5 (C.1)-(C.5) for NextSeg() rule (1) (ANY false: holes IsLost()
 * says are lost) or rule (3) (ANY true: any hole above HighRxt below the
 * highest SACKed byte), while cwnd - pipe >= 1 SMSS. HighRxt follows what
 * was sent (C.2). Returns whether anything was.
 */
static bool sack_retransmit_holes(struct tcp_conn *c, bool any)
{
	uint32_t seq, len;
	bool sent = false;

	while (c->ccs.cwnd >= tcp_sack_pipe(c) + c->mss &&
	       tcp_sack_next_seg(c, any, &seq, &len) == 0) {
		uint32_t n = retransmit(c, seq, len, TCP_SQ_RXT);
		if (!n)
			break;
		c->high_rxt = seq + n;
		sent = true;
	}
	return sent;
}

/*
 * RFC 6675 §4 NextSeg() rule (4): one rescue retransmission per entry into
 * recovery, of a segment holding the highest unSACKed byte outstanding (a
 * lost tail no SACK will ever report). RescueRxt is set to RecoveryPoint;
 * HighRxt is not moved, and the queue's cursors are left where they are.
 */
static bool sack_rescue(struct tcp_conn *c)
{
	uint32_t seq, len;

	if (c->ccs.cwnd < tcp_sack_pipe(c) + c->mss || tcp_sack_rescue_seg(c, &seq, &len) != 0)
		return false;
	if (!retransmit(c, seq, len, TCP_SQ_NONE))
		return false;
	c->rescue_rxt = c->recover;
	c->rescue_set = true;
	return true;
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

	/*
	 * Loss recovery with SACK (RFC 6675 §5 step (C)): NextSeg() rule (1), the
	 * lost holes, first, as the pipe allows; rule (2), new data, below.
	 */
	bool sack_recovery = c->in_recovery && c->sack_ok;
	if (sack_recovery)
		sent = sack_retransmit_holes(c, false);

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
		if (send_segment(c, c->snd_nxt, RTE_TCP_ACK_FLAG | RTE_TCP_FIN_FLAG, 0,
				 TCP_SQ_NONE) == 0) {
			c->snd_nxt++;
			sent = true;
		}
	}
	c->snd_max = seq_max(c->snd_max, c->snd_nxt);

	/*
	 * RFC 6675 §4 NextSeg() rules (3) and (4), the last resorts, when rule (2)
	 * has no new data the receiver's window takes: holes not yet deemed lost,
	 * then one rescue retransmission. They keep the ACK clock going where the
	 * alternative is waiting for the RTO.
	 */
	uint32_t edge = c->snd_una + c->snd_wnd;
	bool rule2 = seq_lt(c->snd_nxt, data_end) && seq_lt(c->snd_nxt, edge);
	if (sack_recovery && !rule2 && c->ccs.cwnd >= tcp_sack_pipe(c) + c->mss) {
		sent |= sack_retransmit_holes(c, true);
		sent |= sack_rescue(c);
	}

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
