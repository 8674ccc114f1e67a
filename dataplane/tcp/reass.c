/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Out-of-order reassembly: a bounded, sorted array of payload segments per
 * connection, allocated on first need, and the SACK blocks (RFC 2018 §4)
 * that describe it to the sender.
 */
#include <errno.h>
#include <string.h>

#include <rte_malloc.h>

#include "tcp_priv.h"

struct rte_mbuf *tcp_mbuf_trim_front(struct rte_mbuf *m, uint32_t n)
{
	while (m && n >= m->data_len) {
		struct rte_mbuf *next = m->next;
		uint32_t pkt_len = m->pkt_len;
		uint16_t nb = m->nb_segs;
		n -= m->data_len;
		m->next = NULL;
		m->nb_segs = 1;
		uint32_t dl = m->data_len;
		rte_pktmbuf_free_seg(m);
		m = next;
		if (m) {
			m->pkt_len = pkt_len - dl;
			m->nb_segs = (uint16_t)(nb - 1);
		}
	}
	if (m && n) {
		m->data_off = (uint16_t)(m->data_off + n);
		m->data_len = (uint16_t)(m->data_len - n);
		m->pkt_len -= n;
	}
	return m;
}

void tcp_mbuf_keep(struct rte_mbuf *m, uint32_t keep)
{
	if (keep >= m->pkt_len)
		return;
	struct rte_mbuf *tail = m;
	uint32_t left = keep;
	uint16_t nb = 1;
	while (tail->data_len < left && tail->next) {
		left -= tail->data_len;
		tail = tail->next;
		nb++;
	}
	tail->data_len = (uint16_t)left;
	rte_pktmbuf_free(tail->next);
	tail->next = NULL;
	m->pkt_len = keep;
	m->nb_segs = nb;
}

int tcp_reass_insert(struct tcp_conn *c, uint32_t seq, uint32_t len, struct rte_mbuf *m)
{
	struct tcp_stack *s = c->s;
	unsigned max = s->p.ooo_max_segs;

	if (!c->ooo) {
		c->ooo = rte_malloc("tcp_ooo", sizeof(*c->ooo) * max, 0);
		if (!c->ooo)
			goto drop;
	}
	/* Skip what we already hold: overlapping and duplicate retransmissions. */
	unsigned i = 0;
	while (i < c->n_ooo && seq_leq(c->ooo[i].seq + c->ooo[i].len, seq))
		i++;
	if (i < c->n_ooo && seq_leq(c->ooo[i].seq, seq)) {
		uint32_t have_end = c->ooo[i].seq + c->ooo[i].len;
		if (seq_geq(have_end, seq + len))
			goto drop_dup; /* wholly duplicate */
		m = tcp_mbuf_trim_front(m, have_end - seq);
		len -= have_end - seq;
		seq = have_end;
		i++;
	}
	if (i < c->n_ooo && seq_lt(c->ooo[i].seq, seq + len)) {
		/* overlaps the next held segment: keep only the part before it */
		uint32_t keep = c->ooo[i].seq - seq;
		if (keep == 0)
			goto drop_dup;
		tcp_mbuf_keep(m, keep);
		len = keep;
	}
	if (c->n_ooo == max)
		goto drop;
	memmove(&c->ooo[i + 1], &c->ooo[i], (c->n_ooo - i) * sizeof(*c->ooo));
	c->ooo[i] = (struct tcp_ooo_seg){.seq = seq, .len = len, .m = m};
	c->n_ooo++;
	c->ooo_mbufs += m->nb_segs;
	c->last_sack_trigger = (struct tcp_range){seq, seq + len};
	dp_count(s->stats, DP_C_TCP_OOO_SEGMENTS, 1);
	return 0;

drop_dup:
	rte_pktmbuf_free(m);
	return 0;
drop:
	dp_drop(s->stats, DP_DROP_TCP_OOO_FULL);
	rte_pktmbuf_free(m);
	return -ENOBUFS;
}

void tcp_reass_drain(struct tcp_conn *c)
{
	while (c->n_ooo && seq_leq(c->ooo[0].seq, c->rcv_nxt)) {
		struct tcp_ooo_seg g = c->ooo[0];
		memmove(&c->ooo[0], &c->ooo[1], (c->n_ooo - 1) * sizeof(*c->ooo));
		c->n_ooo--;
		c->ooo_mbufs -= g.m->nb_segs;
		uint32_t end = g.seq + g.len;
		if (seq_leq(end, c->rcv_nxt)) {
			rte_pktmbuf_free(g.m);
			continue;
		}
		uint32_t skip = c->rcv_nxt - g.seq;
		struct rte_mbuf *m = tcp_mbuf_trim_front(g.m, skip);
		tcp_deliver(c, m, g.len - skip);
		if (c->doomed)
			return; /* the application aborted from received() */
	}
}

void tcp_reass_free(struct tcp_conn *c)
{
	for (unsigned i = 0; i < c->n_ooo; i++)
		rte_pktmbuf_free(c->ooo[i].m);
	c->n_ooo = 0;
	c->ooo_mbufs = 0;
	rte_free(c->ooo);
	c->ooo = NULL;
}

/* RFC 2018 §4: the block holding the latest segment first, then the others. */
unsigned tcp_reass_sack_blocks(const struct tcp_conn *c, struct tcp_range *out, unsigned max)
{
	struct tcp_range merged[64];
	unsigned n = 0;

	for (unsigned i = 0; i < c->n_ooo && n < RTE_DIM(merged); i++) {
		uint32_t s = c->ooo[i].seq, e = s + c->ooo[i].len;
		if (n && seq_geq(merged[n - 1].end, s))
			merged[n - 1].end = seq_max(merged[n - 1].end, e);
		else
			merged[n++] = (struct tcp_range){s, e};
	}
	unsigned k = 0;
	for (unsigned i = 0; i < n && k < max; i++)
		if (seq_geq(c->last_sack_trigger.start, merged[i].start) &&
		    seq_leq(c->last_sack_trigger.end, merged[i].end))
			out[k++] = merged[i];
	for (unsigned i = n; i-- > 0 && k < max;)
		if (!(k && out[0].start == merged[i].start))
			out[k++] = merged[i];
	return k;
}
