/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The send queue and its cursors (dataplane/tcp/output.c): an application
 * that sends in many small mbufs (a pipelining SMTP server's replies, a
 * generator's odd-sized pieces) gets every byte out exactly, in order,
 * through ACKs that end inside an mbuf, an RTO that goes back to SND.UNA
 * (RFC 6298 §5.4), SACK retransmissions from the middle of the queue
 * (RFC 6675) and zero-window probes (RFC 9293 §3.8.6.1); and building a
 * segment steps over a bounded number of mbufs to find its first byte,
 * however long the queue is.
 */
#include "tcp_fixture.h"

#include <string.h>

#include <rte_mempool.h>

#define SEG 1448       /* a full segment: MSS 1460 less the timestamp option */
#define SQ_MBUFS 16383 /* the application's own small mbufs */

/* Odd and even sizes, so segments start and end anywhere inside an mbuf. */
static const uint16_t tiny[] = {1, 3, 7, 2, 5, 11, 1, 64, 13, 1, 2, 9};
static const uint16_t one[] = {1};

static struct rte_mempool *sq_pool;
static unsigned sq_pool_full;

/* The fixture with room for long queues: the per-connection cap and the send buffer raised. */
static void sq_setup(void)
{
	fx_setup();
	fx_params.mbufs_per_conn = 2 * SQ_MBUFS;
	fx_params.snd_buf = 1 << 20;
	fx_restart();
	sq_pool = rte_pktmbuf_pool_create("sq_pool", SQ_MBUFS, 0, 0, RTE_PKTMBUF_HEADROOM + 128,
					  SOCKET_ID_ANY);
	cr_assert_not_null(sq_pool);
	sq_pool_full = rte_mempool_avail_count(sq_pool);
}

TestSuite(send_queue, .init = sq_setup, .fini = fx_teardown);

/* Queues N mbufs with one tcp_send(); mbuf i holds SIZES[i % N_SIZES] pattern bytes. */
static size_t send_pieces(struct fx_conn *fc, unsigned n, const uint16_t *sizes, unsigned n_sizes)
{
	struct rte_mbuf *head = NULL, *tail = NULL;
	size_t bytes = 0;

	for (unsigned i = 0; i < n; i++) {
		struct rte_mbuf *m = rte_pktmbuf_alloc(sq_pool);
		cr_assert_not_null(m, "the application's pool ran dry");
		uint16_t len = sizes[i % n_sizes];
		uint8_t *d = (uint8_t *)rte_pktmbuf_append(m, len);
		for (uint16_t j = 0; j < len; j++)
			d[j] = fx_pattern(fc->tx_off + bytes + j);
		bytes += len;
		if (!head) {
			head = tail = m;
		} else {
			tail->next = m;
			tail = m;
			head->nb_segs++;
			head->pkt_len += len;
		}
	}
	cr_assert_eq(tcp_send(fc->c, head), 0, "tcp_send of %u mbufs", n);
	fc->tx_off += bytes;
	return bytes;
}

/* The stream offset of our sequence number SEQ. */
static uint64_t off_of(const struct fx_peer *p, uint32_t seq)
{
	return seq - (p->our_iss + 1);
}

/* Takes one segment and checks that its payload is the stream at its offset. */
static struct fx_pkt take_exact(struct fx_peer *p)
{
	struct fx_pkt k = fx_peer_take(p);
	cr_assert(fx_is_pattern(k.data, k.len, off_of(p, k.seq)),
		  "the %u bytes at stream offset %lu are not what was queued there", k.len,
		  (unsigned long)off_of(p, k.seq));
	return k;
}

/*
 * Plays a peer that has the stream up to offset GOT, takes what follows in
 * order and ACKs every segment, until offset TOTAL has arrived; each segment
 * is checked against the stream.
 */
static void drain_in_order(struct fx_peer *p, uint64_t got, uint64_t total)
{
	for (int round = 0; got < total; round++) {
		cr_assert_lt(round, 10000, "stalled at %lu of %lu bytes", (unsigned long)got,
			     (unsigned long)total);
		if (!fx_pending())
			fx_wait_output_ms(100000);
		while (fx_pending()) {
			struct fx_pkt k = take_exact(p);
			if (!k.len)
				continue;
			cr_assert_eq(off_of(p, k.seq), got, "no gap, no overlap");
			got += k.len;
			p->ack = k.seq + k.len;
			fx_peer_ack(p);
		}
	}
	cr_assert_eq(got, total);
}

/* Takes the segments sent now, checks each is exact and where the last ended; returns it. */
static uint64_t take_flight(struct fx_peer *p, uint64_t from, unsigned *nseg)
{
	unsigned n = 0;
	while (fx_pending()) {
		struct fx_pkt k = take_exact(p);
		if (!k.len)
			continue;
		cr_assert_eq(off_of(p, k.seq), from, "segment %u starts where the last ended", n);
		from += k.len;
		n++;
	}
	if (nseg)
		*nseg = n;
	return from;
}

/* Every mbuf the application gave is back in its pool once the stack is gone. */
static void expect_queue_freed(void)
{
	tcp_stack_free(fx_stack);
	fx_stack = NULL;
	cr_expect_eq(rte_mempool_avail_count(sq_pool), sq_pool_full,
		     "%u of the application's mbufs were not freed",
		     sq_pool_full - rte_mempool_avail_count(sq_pool));
}

/* At most one mbuf stepped over to find where any segment so far started. */
static void expect_cursor_steps_at_most_one(void)
{
	cr_expect_gt(fx_stack->sq_seeks, 0);
	cr_expect_leq(fx_stack->sq_seek_max, 1,
		      "a segment's first byte took %lu steps to find in the queue",
		      (unsigned long)fx_stack->sq_seek_max);
}

TCP_TEST(send_queue, a_long_queue_of_tiny_sends_goes_out_byte_exact_and_in_order)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = fx_accept(&p);

	size_t total = send_pieces(fc, 12000, tiny, RTE_DIM(tiny));
	drain_in_order(&p, 0, total);
	cr_expect_eq(fx_lookup(&p)->sq_bytes, 0, "all acknowledged and freed");
	cr_expect_eq(fx_count(DP_C_TCP_RETRANSMITS), 0);
	expect_cursor_steps_at_most_one();
	expect_queue_freed();
}

TCP_TEST(send_queue, one_byte_sends_appended_while_earlier_ones_go_out_arrive_whole)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = fx_accept(&p);
	fx_lookup(&p)->nagle = true; /* small sends wait and join later ones in one segment */

	/*
	 * Each round queues 700 one-byte mbufs while the last round's tail is still
	 * unacknowledged: segments start in one send and end in the next, and a
	 * segment that ended at the end of the queue is followed by one that starts
	 * in mbufs queued after it.
	 */
	uint64_t sent = 0;
	for (int round = 0; round < 12; round++) {
		send_pieces(fc, 700, one, 1);
		sent = take_flight(&p, sent, NULL);
		if (round % 3 == 2) {
			p.ack = p.high;
			fx_peer_ack(&p);
			sent = take_flight(&p, sent, NULL);
		}
	}
	p.ack = p.high;
	fx_peer_ack(&p);
	drain_in_order(&p, sent, 12 * 700);
	expect_cursor_steps_at_most_one();
	expect_queue_freed();
}

TCP_TEST(send_queue, acks_that_end_inside_an_mbuf_leave_the_next_segment_exact)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = fx_accept(&p);
	size_t total = send_pieces(fc, 12000, tiny, RTE_DIM(tiny));

	/*
	 * The peer acknowledges all but the last byte it has, so the queue's head
	 * is cut inside the very mbuf the next segment starts in.
	 */
	uint64_t sent = 0;
	for (int round = 0; sent < total; round++) {
		cr_assert_lt(round, 1000);
		sent = take_flight(&p, sent, NULL);
		p.ack = p.high - (sent < total ? 1 : 0);
		fx_peer_ack(&p);
	}
	cr_expect_eq(fx_count(DP_C_TCP_RETRANSMITS), 0);
	cr_expect_eq(fx_lookup(&p)->sq_bytes, 0);
	expect_cursor_steps_at_most_one();
	expect_queue_freed();
}

TCP_TEST(send_queue, rto_goes_back_to_the_first_unacknowledged_byte_inside_an_mbuf)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = fx_accept(&p);
	size_t total = send_pieces(fc, 12000, tiny, RTE_DIM(tiny));

	unsigned n;
	take_flight(&p, 0, &n);
	cr_assert_eq(n, 10, "the initial window");
	/* the first two segments and 501 bytes of the third arrive; the rest is lost */
	uint64_t una = 2 * SEG + 501;
	p.ack = p.our_iss + 1 + (uint32_t)una;
	fx_peer_ack(&p);
	fx_discard(); /* what that ACK let out is lost too */
	cr_assert_leq(fx_wait_output_ms(10000), 10000, "the RTO fires");
	struct fx_pkt k = take_exact(&p);
	cr_expect_eq(off_of(&p, k.seq), una, "RFC 6298 §5.4: from the first unacknowledged byte");
	cr_expect_eq(k.len, SEG);
	fx_expect_silence("one segment after an RTO");
	p.ack = k.seq + k.len;
	fx_peer_ack(&p);
	/* go-back-N from there: every later byte again, in order */
	drain_in_order(&p, una + k.len, total);
	expect_cursor_steps_at_most_one();
	expect_queue_freed();
}

/* Start of segment I of the first flight. */
static uint32_t seg_at(const struct fx_peer *p, unsigned i)
{
	return p->our_iss + 1 + i * SEG;
}

/*
 * Queues N mbufs of tiny pieces and plays a first flight of ten segments of
 * which 2 and 6 are lost: the peer ACKs up to 2 and SACKs the others. Checks
 * each retransmission and what follows it byte for byte, then drains the
 * queue (the stack stays, for its counters). Returns the queue's byte count.
 */
static size_t sack_holes_scenario(unsigned n)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = fx_accept(&p);
	size_t total = send_pieces(fc, n, tiny, RTE_DIM(tiny));
	unsigned nseg;

	uint64_t high = take_flight(&p, 0, &nseg);
	cr_assert_eq(nseg, 10);
	p.ack = seg_at(&p, 2);
	fx_peer_ack(&p);
	struct tcp_range sacked[2] = {{seg_at(&p, 7), seg_at(&p, 10)},
				      {seg_at(&p, 3), seg_at(&p, 6)}};
	unsigned rexmit[10] = {0};
	for (int dup = 0; dup < 3; dup++) {
		struct fx_seg g = fx_peer_seg(&p, F_ACK, NULL, 0);
		g.n_sack = 2;
		memcpy(g.sack, sacked, sizeof(sacked));
		fx_input(&g);
		while (fx_pending()) {
			struct fx_pkt k = take_exact(&p);
			if (!k.len)
				continue;
			uint64_t off = off_of(&p, k.seq);
			if (off < 10 * SEG) {
				rexmit[off / SEG]++;
				cr_expect_eq(off % SEG, 0);
			} else {
				cr_expect_eq(off, high, "new data goes on from SND.NXT");
				high += k.len;
			}
		}
	}
	for (unsigned i = 0; i < 10; i++)
		cr_expect_eq(rexmit[i], i == 2 || i == 6, "segment %u retransmitted %u times", i,
			     rexmit[i]);
	cr_expect_gt(high, 10 * SEG, "the pipe had room for new data in recovery");
	/* both holes filled: everything up to what went out since is acknowledged */
	p.ack = p.our_iss + 1 + (uint32_t)high;
	fx_peer_ack(&p);
	cr_expect_eq(fx_lookup(&p)->in_recovery, false);
	drain_in_order(&p, high, total);
	return total;
}

TCP_TEST(send_queue, sack_retransmits_holes_from_the_middle_of_the_queue_byte_exact)
{
	sack_holes_scenario(12000);
	cr_expect_eq(fx_count(DP_C_TCP_FAST_RECOVERIES), 1);
	expect_queue_freed();
}

TCP_TEST(send_queue, finding_where_a_segment_starts_does_not_depend_on_the_queue_length)
{
	/*
	 * The same losses with a queue of 6000 mbufs and one of 16000: the most
	 * mbufs stepped over for one segment is the same, the walk from the first
	 * hole's retransmission across the SACKed run to the second hole; every
	 * other segment (new data, ACK-clocked, as the window grows) steps over
	 * one at most. Without the cursors each segment walked from the queue's
	 * head, SND.UNA, across all that was in flight: thousands of steps each
	 * once the window is open, more the longer the transfer lets it grow.
	 */
	static const unsigned lens[2] = {6000, 16000};
	uint64_t seeks[2], steps[2], max[2];
	for (int i = 0; i < 2; i++) {
		if (i)
			fx_restart();
		size_t total = sack_holes_scenario(lens[i]);
		cr_assert_gt(total, 4u * 10 * SEG, "longer than the flights it is sent in");
		seeks[i] = fx_stack->sq_seeks;
		steps[i] = fx_stack->sq_seek_steps;
		max[i] = fx_stack->sq_seek_max;
		expect_queue_freed();
	}
	cr_expect_eq(max[0], max[1], "the most steps for one segment: %lu with %u mbufs queued, "
		     "%lu with %u", (unsigned long)max[0], lens[0], (unsigned long)max[1], lens[1]);
	cr_expect_leq(max[1], 3 * SEG, "at most the SACKed run between the holes");
	cr_expect_gt(seeks[1], seeks[0], "the longer queue takes more segments");
	cr_expect_leq(steps[1] - steps[0], seeks[1] - seeks[0],
		      "each segment more costs at most one step more: %lu steps for %lu segments",
		      (unsigned long)(steps[1] - steps[0]), (unsigned long)(seeks[1] - seeks[0]));
}

TCP_TEST(send_queue, zero_window_probes_then_the_queue_resumes_where_it_stopped)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = fx_accept(&p);
	size_t total = send_pieces(fc, 12000, tiny, RTE_DIM(tiny));

	uint64_t sent = take_flight(&p, 0, NULL);
	/* the peer takes it all but its reader stalls: the window closes */
	p.rwnd = 0;
	p.ack = p.high;
	fx_peer_ack(&p);
	fx_expect_silence("a closed window takes nothing");
	for (int i = 0; i < 3; i++) {
		cr_assert_leq(fx_wait_output_ms(100000), 100000, "probe %d", i + 1);
		struct fx_pkt k = take_exact(&p);
		cr_expect_leq(k.len, 1, "a probe carries at most one byte");
		fx_peer_ack(&p); /* still closed */
	}
	/* the reader catches up: the window opens and the queue goes on from SND.NXT */
	p.rwnd = 256 * 1024;
	fx_peer_ack(&p);
	drain_in_order(&p, sent, total);
	expect_cursor_steps_at_most_one();
	expect_queue_freed();
}
