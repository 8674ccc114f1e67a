/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The sender's SACK scoreboard (RFC 2018) and RFC 6675 loss recovery
 * helpers: IsLost(), the pipe estimate, and NextSeg() for holes and the
 * rescue retransmission.
 */
#include <string.h>

#include "tcp_priv.h"

void tcp_sack_clear(struct tcp_conn *c)
{
	c->n_sacked = 0;
}

/* Drops scoreboard ranges (or parts) at or below the cumulative ACK. */
static void prune(struct tcp_conn *c)
{
	unsigned k = 0;
	for (unsigned i = 0; i < c->n_sacked; i++) {
		struct tcp_range r = c->scoreboard[i];
		if (seq_leq(r.end, c->snd_una))
			continue;
		if (seq_lt(r.start, c->snd_una))
			r.start = c->snd_una;
		c->scoreboard[k++] = r;
	}
	c->n_sacked = k;
}

/* Inserts [start, end) keeping the board sorted and merged; the oldest loses when full. */
static void insert(struct tcp_conn *c, uint32_t start, uint32_t end)
{
	struct tcp_range *b = c->scoreboard;
	unsigned i = 0, n = c->n_sacked;

	while (i < n && seq_lt(b[i].end, start))
		i++;
	/* merge every range that touches [start, end) */
	unsigned j = i;
	while (j < n && seq_leq(b[j].start, end)) {
		start = seq_min(start, b[j].start);
		end = seq_max(end, b[j].end);
		j++;
	}
	if (j > i) {
		b[i].start = start;
		b[i].end = end;
		memmove(&b[i + 1], &b[j], (n - j) * sizeof(*b));
		c->n_sacked = n - (j - i - 1);
		return;
	}
	if (n == TCP_SCOREBOARD_MAX) {
		/* Full: forget the highest range; it will be reported again if still held. */
		if (i == n)
			return;
		n--;
	}
	memmove(&b[i + 1], &b[i], (n - i) * sizeof(*b));
	b[i].start = start;
	b[i].end = end;
	c->n_sacked = n + 1;
}

bool tcp_sack_update(struct tcp_conn *c, const struct tcp_seg_opts *o)
{
	bool news = false;

	prune(c);
	for (unsigned i = 0; i < o->n_sack; i++) {
		uint32_t s = o->sack[i].start, e = o->sack[i].end;
		/* ignore D-SACKs (RFC 2883) and blocks outside what we sent */
		if (!seq_lt(s, e) || seq_leq(e, c->snd_una) || seq_gt(e, c->snd_max))
			continue;
		s = seq_max(s, c->snd_una);
		/* the board is merged: a block already known lies inside one range */
		uint32_t known_end;
		if (!tcp_sack_is_sacked(c, s, &known_end) || seq_lt(known_end, e))
			news = true;
		insert(c, s, e);
	}
	return news;
}

bool tcp_sack_is_sacked(const struct tcp_conn *c, uint32_t seq, uint32_t *end)
{
	for (unsigned i = 0; i < c->n_sacked; i++)
		if (seq_geq(seq, c->scoreboard[i].start) && seq_lt(seq, c->scoreboard[i].end)) {
			if (end)
				*end = c->scoreboard[i].end;
			return true;
		}
	return false;
}

/* RFC 6675 §4 IsLost(): DupThresh SACKed segments, or more than (DupThresh-1)*SMSS bytes, above. */
bool tcp_sack_is_lost(const struct tcp_conn *c, uint32_t seq)
{
	uint32_t bytes = 0, segs = 0;

	for (unsigned i = 0; i < c->n_sacked; i++) {
		const struct tcp_range *r = &c->scoreboard[i];
		if (seq_leq(r->end, seq))
			continue;
		uint32_t len = r->end - seq_max(r->start, seq + 1);
		bytes += len;
		segs += (len + c->mss - 1) / c->mss;
	}
	return segs >= TCP_DUPTHRESH || bytes > (TCP_DUPTHRESH - 1) * (uint32_t)c->mss;
}

/* RFC 6675 §4 SetPipe(): bytes thought to be in the network. */
uint32_t tcp_sack_pipe(const struct tcp_conn *c)
{
	uint32_t pipe = 0;

	for (uint32_t seq = c->snd_una; seq_lt(seq, c->snd_max);) {
		uint32_t end;
		if (tcp_sack_is_sacked(c, seq, &end)) {
			seq = end;
			continue;
		}
		uint32_t len = RTE_MIN((uint32_t)c->mss, c->snd_max - seq);
		if (!tcp_sack_is_lost(c, seq))
			pipe += len;
		if (seq_lt(seq, c->high_rxt))
			pipe += len;
		seq += len;
	}
	return pipe;
}

/*
 * RFC 6675 §4 NextSeg() rules (1) and (3): the first hole (unSACKed bytes) at
 * or above HighRxt and below the highest SACKed byte, one segment of it. Rule
 * (1) wants IsLost() of it; rule (3) (ANY) takes it anyway. IsLost() only
 * weakens going up (fewer SACKed bytes above), so when the first hole is not
 * lost, none above it is.
 */
int tcp_sack_next_seg(struct tcp_conn *c, bool any, uint32_t *seq_out, uint32_t *len_out)
{
	if (!c->n_sacked)
		return -1;
	uint32_t high_sacked = c->scoreboard[c->n_sacked - 1].end;
	uint32_t seq = seq_max(c->snd_una, c->high_rxt);

	while (seq_lt(seq, high_sacked)) {
		uint32_t end;
		if (tcp_sack_is_sacked(c, seq, &end)) {
			seq = end;
			continue;
		}
		if (!any && !tcp_sack_is_lost(c, seq))
			return -1;
		/* one segment, not running into the next SACKed range */
		uint32_t len = c->mss;
		for (unsigned i = 0; i < c->n_sacked; i++)
			if (seq_gt(c->scoreboard[i].start, seq)) {
				len = RTE_MIN(len, c->scoreboard[i].start - seq);
				break;
			}
		*seq_out = seq;
		*len_out = len;
		return 0;
	}
	return -1;
}

int tcp_sack_rescue_seg(const struct tcp_conn *c, uint32_t *seq_out, uint32_t *len_out)
{
	/* "If HighACK is greater than RescueRxt (or RescueRxt is undefined)" */
	if (c->rescue_set && !seq_gt(c->snd_una, c->rescue_rxt))
		return -1;
	/*
	 * END is one past the highest unSACKed byte outstanding: SND.MAX, or the
	 * start of the board's last range (sorted, merged) when that reaches it.
	 */
	uint32_t end = c->snd_max, floor = c->snd_una;
	for (unsigned i = c->n_sacked; i-- > 0;) {
		const struct tcp_range *r = &c->scoreboard[i];
		if (seq_geq(r->end, end)) {
			end = seq_min(end, r->start);
			continue;
		}
		floor = seq_max(floor, r->end); /* the segment stays clear of this range */
		break;
	}
	if (!seq_gt(end, floor))
		return -1; /* nothing outstanding is unSACKed */
	uint32_t len = RTE_MIN(end - floor, (uint32_t)c->mss);
	*seq_out = end - len;
	*len_out = len;
	return 0;
}
