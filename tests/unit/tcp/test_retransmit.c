/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Loss recovery: the retransmission timer (RFC 6298) with its minimum,
 * backoff and the 3-second rule after a lost SYN-ACK, fast retransmit on the
 * third duplicate ACK (RFC 5681 §3.2), limited transmit on the first two
 * (RFC 3042), NewReno partial ACKs (RFC 6582), SACK recovery that resends
 * only what was lost (RFC 6675), and keepalive
 * (RFC 1122 §4.2.3.6), the other timer that talks to an idle peer.
 */
#include "tcp_fixture.h"

#include <string.h>

TestSuite(retransmit, .init = fx_setup, .fini = fx_teardown);

#define SEG 1448 /* a full segment: MSS 1460 less the timestamp option */

/* Sends LEN bytes from the application and takes everything that went out. */
static unsigned send_and_take(struct fx_peer *p, struct fx_conn *fc, size_t len)
{
	unsigned n = 0;
	cr_assert_eq(fx_send(fc, len), 0);
	while (fx_pending()) {
		struct fx_pkt k = fx_peer_take(p);
		if (k.len)
			n++;
	}
	return n;
}

/* An established connection with one RTT sample of RTT_MS taken (timestamps on). */
static struct fx_conn *with_rtt(struct fx_peer *p, uint64_t rtt_ms)
{
	struct fx_conn *fc = fx_accept(p);
	send_and_take(p, fc, 100);
	fx_advance_ms(rtt_ms);
	fx_peer_ack_all(p);
	fx_peer_ack(p);
	fx_discard();
	return fc;
}

TCP_TEST(retransmit, rto_has_a_floor_and_doubles_on_each_expiry)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = with_rtt(&p, 10);

	/* SRTT 10 ms, RTTVAR 5 ms: RTO = 30 ms, raised to rto_min (RFC 6298 §2.4). */
	send_and_take(&p, fc, 500);
	uint64_t expect = fx_params.rto_min_ms;
	for (int i = 0; i < 5; i++) {
		uint64_t waited = fx_wait_output_ms(100000);
		cr_expect_eq(waited, expect, "retransmission %d after %lu ms, expected %lu", i + 1,
			     (unsigned long)waited, (unsigned long)expect);
		struct fx_pkt k = fx_peer_take(&p);
		cr_expect_eq(k.seq, p.our_iss + 1 + 100, "the unacknowledged data again");
		cr_expect_eq(k.len, 500);
		cr_expect(fx_is_pattern(k.data, k.len, 100));
		expect *= 2; /* RFC 6298 §5.5 */
	}
	cr_expect_eq(fx_count(DP_C_TCP_RTO_TIMEOUTS), 5);
	cr_expect_eq(fx_count(DP_C_TCP_RETRANSMITS), 5);
}

TCP_TEST(retransmit, rto_backoff_stops_at_the_maximum)
{
	fx_params.rto_max_ms = 2000;
	fx_restart();
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = with_rtt(&p, 10);

	send_and_take(&p, fc, 500);
	static const uint64_t expect[] = {200, 400, 800, 1600, 2000, 2000, 2000};
	for (unsigned i = 0; i < RTE_DIM(expect); i++) {
		cr_expect_eq(fx_wait_output_ms(100000), expect[i], "retransmission %u", i + 1);
		fx_discard();
	}
}

TCP_TEST(retransmit, connection_gives_up_after_max_retries_with_a_reset)
{
	fx_params.max_retries = 3;
	fx_restart();
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = with_rtt(&p, 10);

	send_and_take(&p, fc, 500);
	for (int i = 0; i < 3; i++) {
		cr_assert_leq(fx_wait_output_ms(100000), 100000);
		struct fx_pkt k = fx_peer_take(&p);
		cr_expect_eq(k.len, 500);
	}
	cr_assert_leq(fx_wait_output_ms(100000), 100000);
	struct fx_pkt k = fx_peer_take(&p);
	cr_expect(k.flags & F_RST, "the peer is told");
	cr_expect_eq(fc->closed, 1);
	cr_expect_eq(fc->reason, TCP_CLOSE_TIMEOUT);
	cr_expect_eq(strcmp(fx_state_of(&p), "none"), 0);
}

TCP_TEST(retransmit, rto_sends_one_segment_then_slow_starts)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = with_rtt(&p, 10);

	cr_assert_eq(send_and_take(&p, fc, 6 * SEG), 6);
	cr_assert_leq(fx_wait_output_ms(10000), 10000);
	struct fx_pkt k = fx_peer_take(&p);
	cr_expect_eq(k.seq, p.our_iss + 101, "the first unacknowledged segment");
	cr_expect_eq(k.len, SEG);
	fx_expect_silence("RFC 5681 §3.1: the loss window is one segment");
	/* its ACK opens the window by one more segment: two go out */
	p.ack = k.seq + k.len;
	fx_peer_ack(&p);
	unsigned n = 0;
	while (fx_pending()) {
		struct fx_pkt r = fx_peer_take(&p);
		cr_expect_eq(r.seq, p.our_iss + 101 + (1 + n) * SEG, "go-back-N from SND.UNA");
		n++;
	}
	cr_expect_eq(n, 2);
}

TCP_TEST(retransmit, rto_is_three_seconds_when_the_syn_ack_was_lost)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	p.ts_on = false; /* no RTT sample from a retransmitted SYN-ACK (Karn) */
	fx_peer_syn(&p);
	cr_assert_leq(fx_wait_output_ms(5000), 5000, "the SYN-ACK is retransmitted");
	fx_discard();
	fx_peer_ack(&p);
	cr_assert_eq(fx_n_conns, 1);

	send_and_take(&p, &fx_conns[0], 500);
	/* RFC 6298 §5.7: RTO re-initialized to 3 s when data transmission begins. */
	uint64_t waited = fx_wait_output_ms(10000);
	cr_expect_eq(waited, 3000, "first RTO after %lu ms", (unsigned long)waited);
}

/* A connection with NSEG full segments in flight; P's sack_on says whether SACK is used. */
static struct fx_conn *flight_of(struct fx_peer *p, unsigned nseg)
{
	struct fx_conn *fc = with_rtt(p, 10);
	cr_assert_eq(send_and_take(p, fc, nseg * SEG), nseg);
	return fc;
}

/* Start of segment I of the flight. */
static uint32_t seg_at(const struct fx_peer *p, unsigned i)
{
	return p->our_iss + 101 + i * SEG;
}

/* A duplicate ACK carrying up to three SACK blocks. */
static void dup_ack(struct fx_peer *p, unsigned n, const struct tcp_range *b)
{
	struct fx_seg g = fx_peer_seg(p, F_ACK, NULL, 0);
	g.n_sack = n;
	for (unsigned i = 0; i < n; i++)
		g.sack[i] = b[i];
	fx_input(&g);
}

TCP_TEST(retransmit, third_duplicate_ack_triggers_fast_retransmit_whatever_the_iss)
{
	/* Several ports: the ISS differs, and half of all ISSs are above 2^31. */
	for (uint16_t port = 40000; port < 40008; port++) {
		fx_restart();
		uint64_t recoveries = fx_count(DP_C_TCP_FAST_RECOVERIES);
		struct fx_peer p = fx_peer_new(port);
		p.sack_on = false;
		flight_of(&p, 6);
		p.ack = seg_at(&p, 1); /* segment 0 arrived, segment 1 was lost */
		fx_peer_ack(&p);
		fx_discard();
		dup_ack(&p, 0, NULL);
		dup_ack(&p, 0, NULL);
		fx_expect_silence("two duplicate ACKs are not yet a loss");
		dup_ack(&p, 0, NULL);
		cr_assert_gt(fx_pending(), 0, "ISS %u: the third duplicate ACK retransmits at once",
			     p.our_iss);
		struct fx_pkt k = fx_peer_take(&p);
		cr_expect_eq(k.seq, seg_at(&p, 1), "ISS %u: the lost segment", p.our_iss);
		cr_expect_eq(k.len, SEG);
		cr_expect_eq(fx_count(DP_C_TCP_FAST_RECOVERIES), recoveries + 1);
		fx_discard();
	}
}

TCP_TEST(retransmit, limited_transmit_sends_new_data_on_first_two_dupacks)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	p.sack_on = false;
	struct fx_conn *fc = with_rtt(&p, 10);
	struct tcp_conn *c = fx_lookup(&p);

	/* more queued than cwnd lets out */
	unsigned n = send_and_take(&p, fc, 20 * SEG);
	cr_assert_lt(n, 20, "cwnd limits the flight");
	uint32_t cwnd = c->ccs.cwnd;
	/* segment 0 is lost; each later one draws a duplicate ACK */
	for (unsigned d = 1; d <= 2; d++) {
		dup_ack(&p, 0, NULL);
		cr_assert_gt(fx_pending(), 0, "RFC 3042: duplicate ACK %u sends new data", d);
		struct fx_pkt k = fx_peer_take(&p);
		cr_expect_eq(k.seq, seg_at(&p, n + d - 1), "dup ACK %u: the next new segment", d);
		cr_expect_eq(k.len, SEG);
		cr_expect(fx_is_pattern(k.data, k.len, 100 + (n + d - 1) * SEG));
		fx_expect_silence("one segment per duplicate ACK");
		cr_expect_eq(c->ccs.cwnd, cwnd, "dup ACK %u: cwnd MUST NOT change", d);
	}
	cr_expect_eq(fx_count(DP_C_TCP_RETRANSMITS), 0);
	cr_expect_eq(fx_count(DP_C_TCP_FAST_RECOVERIES), 0);
	/* the third is a fast retransmit; ssthresh counts only what was out before */
	dup_ack(&p, 0, NULL);
	cr_assert_gt(fx_pending(), 0);
	struct fx_pkt k = fx_peer_take(&p);
	cr_expect_eq(k.seq, seg_at(&p, 0), "the lost segment");
	cr_expect_eq(fx_count(DP_C_TCP_FAST_RECOVERIES), 1);
	cr_expect_eq(c->ccs.ssthresh, RTE_MAX(n * SEG / 2, 2u * SEG),
		     "RFC 5681 §3.2 step 2: limited transmit is not in FlightSize/2 (%u segments)",
		     n);
}

TCP_TEST(retransmit, limited_transmit_needs_new_data)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	p.sack_on = false;
	flight_of(&p, 6); /* everything queued is in flight */
	uint32_t cwnd = fx_lookup(&p)->ccs.cwnd;

	dup_ack(&p, 0, NULL);
	dup_ack(&p, 0, NULL);
	fx_expect_silence("nothing new to send: limited transmit sends nothing");
	cr_expect_eq(fx_lookup(&p)->ccs.cwnd, cwnd);
	cr_expect_eq(fx_count(DP_C_TCP_RETRANSMITS), 0, "and retransmits nothing early");
}

TCP_TEST(retransmit, limited_transmit_stays_inside_the_peers_window)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	p.sack_on = false;
	p.ws_on = false;         /* a byte-exact window */
	p.rwnd = 100 + 6 * SEG; /* with the 100 bytes of with_rtt(): room for six segments */
	struct fx_conn *fc = with_rtt(&p, 10);

	cr_assert_eq(send_and_take(&p, fc, 8 * SEG), 6, "the peer's window limits the flight");
	dup_ack(&p, 0, NULL);
	dup_ack(&p, 0, NULL);
	fx_expect_silence("RFC 3042: only if the receiver's advertised window allows it");
	/* a segment's worth of window more, and the data waits for an ACK that moves it */
	cr_expect_eq(fx_lookup(&p)->snd_nxt, seg_at(&p, 6));
}

TCP_TEST(retransmit, limited_transmit_with_sack_needs_new_sack_information)
{
	/*
	 * RFC 3042 §2 / RFC 5681 §3.2 step 1: with SACK, only a duplicate ACK that
	 * reports something new may send, so a receiver cannot draw data out by
	 * repeating itself. Segment 0 is lost in both rounds.
	 */
	for (int round = 0; round < 2; round++) {
		fx_restart();
		struct fx_peer p = fx_peer_new(PEER_PORT);
		struct fx_conn *fc = with_rtt(&p, 10);
		cr_assert(p.sack_ok);
		unsigned n = send_and_take(&p, fc, 20 * SEG);
		cr_assert_lt(n, 20);
		struct tcp_range b = {seg_at(&p, 1), seg_at(&p, 2)};
		if (round == 0) {
			/* segment 1 arrives and is SACKed; then the same report again */
			dup_ack(&p, 1, &b);
			cr_assert_gt(fx_pending(), 0, "new SACK information: new data goes");
			struct fx_pkt k = fx_peer_take(&p);
			cr_expect_eq(k.seq, seg_at(&p, n));
			fx_expect_silence("one segment");
			dup_ack(&p, 1, &b);
			fx_expect_silence("the same SACK block again: nothing");
		} else {
			/* a duplicate with no SACK block at all, then segment 1 SACKed */
			dup_ack(&p, 0, NULL);
			fx_expect_silence("no SACK information: nothing");
			dup_ack(&p, 1, &b);
			cr_assert_gt(fx_pending(), 0, "new SACK information: new data goes");
			struct fx_pkt k = fx_peer_take(&p);
			cr_expect_eq(k.seq, seg_at(&p, n));
			fx_expect_silence("one segment");
		}
		cr_expect_eq(fx_count(DP_C_TCP_FAST_RECOVERIES), 0);
		cr_expect_eq(fx_count(DP_C_TCP_RETRANSMITS), 0);
	}
}

TCP_TEST(retransmit, newreno_partial_ack_retransmits_the_next_hole_at_once)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	p.sack_on = false;
	flight_of(&p, 8);

	/* segments 1 and 4 are lost */
	p.ack = seg_at(&p, 1);
	fx_peer_ack(&p);
	for (int i = 0; i < 3; i++)
		dup_ack(&p, 0, NULL);
	struct fx_pkt k = fx_peer_take(&p);
	cr_assert_eq(k.seq, seg_at(&p, 1));
	for (int i = 0; i < 3; i++)
		dup_ack(&p, 0, NULL); /* segments 5-7 arriving */
	fx_discard();
	/* the retransmission fills the first hole: a partial ACK, up to the second one */
	p.ack = seg_at(&p, 4);
	fx_peer_ack(&p);
	cr_assert_gt(fx_pending(), 0, "RFC 6582 §3.2 step 3: a partial ACK retransmits at once");
	k = fx_peer_take(&p);
	cr_expect_eq(k.seq, seg_at(&p, 4), "the next hole");
	cr_expect_eq(k.len, SEG);
	fx_discard();
	/* a full ACK ends recovery */
	p.ack = seg_at(&p, 8);
	fx_peer_ack(&p);
	cr_expect_eq(fx_count(DP_C_TCP_FAST_RECOVERIES), 1);
	cr_expect_eq(fx_lookup(&p)->in_recovery, false);
}

TCP_TEST(retransmit, sack_recovery_retransmits_only_lost_segments)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	flight_of(&p, 10);
	cr_assert(p.sack_ok);

	/* segment 0 arrives; 1 and 5 are lost; the others arrive and are SACKed */
	p.ack = seg_at(&p, 1);
	fx_peer_ack(&p);
	fx_discard();
	unsigned rexmit[10] = {0};
	for (unsigned i = 2; i < 10; i++) {
		if (i == 5)
			continue;
		struct tcp_range b[2];
		unsigned n = 0;
		if (i > 5)
			b[n++] = (struct tcp_range){seg_at(&p, 6), seg_at(&p, i + 1)};
		b[n++] = (struct tcp_range){seg_at(&p, 2), seg_at(&p, RTE_MIN(i, 4u) + 1)};
		dup_ack(&p, n, b);
		while (fx_pending()) {
			struct fx_pkt k = fx_peer_take(&p);
			if (!k.len)
				continue;
			unsigned s = (k.seq - seg_at(&p, 0)) / SEG;
			cr_assert_lt(s, 10, "a segment outside the flight (seq %u)", k.seq);
			rexmit[s]++;
		}
	}
	for (unsigned i = 0; i < 10; i++) {
		if (i == 1 || i == 5)
			cr_expect_eq(rexmit[i], 1, "lost segment %u retransmitted once", i);
		else if (i == 9)
			/* RFC 6675 §4 NextSeg() (4): with the lost holes resent and nothing new to
			 * send, the highest unSACKed segment goes once more, the rescue */
			cr_expect_eq(rexmit[i], 1, "the tail once, as the rescue retransmission");
		else
			cr_expect_eq(rexmit[i], 0, "segment %u was acknowledged or SACKed", i);
	}
	cr_expect_eq(fx_count(DP_C_TCP_FAST_RECOVERIES), 1);
	/* both retransmissions arrive: everything is acknowledged and recovery ends */
	p.ack = seg_at(&p, 10);
	fx_peer_ack(&p);
	cr_expect_eq(fx_lookup(&p)->in_recovery, false);
	cr_expect_eq(fx_lookup(&p)->snd_una, seg_at(&p, 10));
}

TCP_TEST(retransmit, sack_of_three_segments_above_a_hole_is_a_loss_without_three_dupacks)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	flight_of(&p, 6);

	/* segment 0 lost; one ACK SACKs 1-4 (say, three earlier dup ACKs were lost) */
	struct tcp_range b = {seg_at(&p, 1), seg_at(&p, 5)};
	dup_ack(&p, 1, &b);
	cr_assert_gt(fx_pending(), 0, "RFC 6675 §5: IsLost(SND.UNA) starts recovery");
	struct fx_pkt k = fx_peer_take(&p);
	cr_expect_eq(k.seq, seg_at(&p, 0));
}

TCP_TEST(retransmit, keepalive_probes_an_idle_connection_and_gives_up_unanswered)
{
	fx_params.keepalive_idle_s = 60;
	fx_params.keepalive_intvl_s = 10;
	fx_params.keepalive_probes = 3;
	fx_restart();
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = fx_accept(&p);

	uint64_t waited = fx_wait_output_ms(200000);
	cr_expect_eq(waited, 60000, "the first probe after the idle time");
	struct fx_pkt k = fx_peer_take(&p);
	cr_expect_eq(k.seq, p.our_iss, "RFC 1122 §4.2.3.6: SEG.SEQ = SND.NXT - 1");
	cr_expect_leq(k.len, 1);
	for (int i = 0; i < 2; i++) {
		cr_expect_eq(fx_wait_output_ms(200000), 10000, "then every interval");
		fx_peer_take(&p);
	}
	cr_assert_leq(fx_wait_output_ms(200000), 200000);
	k = fx_peer_take(&p);
	cr_expect(k.flags & F_RST, "unanswered: the connection is reset");
	cr_expect_eq(fc->closed, 1);
	cr_expect_eq(fc->reason, TCP_CLOSE_TIMEOUT);
}

TCP_TEST(retransmit, answered_keepalives_keep_the_connection_and_wait_for_idle_again)
{
	fx_params.keepalive_idle_s = 60;
	fx_params.keepalive_intvl_s = 10;
	fx_params.keepalive_probes = 3;
	fx_restart();
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = fx_accept(&p);

	for (int i = 0; i < 6; i++) {
		uint64_t waited = fx_wait_output_ms(200000);
		cr_expect_eq(waited, 60000, "probe %d: sent only after a whole idle time", i + 1);
		fx_peer_take(&p);
		fx_peer_ack(&p); /* alive */
	}
	cr_expect_eq(fc->closed, 0, "a peer that answers is never dropped");
}

TCP_TEST(retransmit, traffic_postpones_keepalive)
{
	fx_params.keepalive_idle_s = 60;
	fx_params.keepalive_intvl_s = 10;
	fx_params.keepalive_probes = 3;
	fx_restart();
	struct fx_peer p = fx_peer_new(PEER_PORT);
	fx_accept(&p);

	for (int i = 0; i < 10; i++) {
		fx_advance_ms(30000);
		fx_peer_send(&p, F_PSH, "NOOP\r\n", 6);
		fx_advance_ms(fx_params.delack_ms + 1);
		while (fx_pending()) {
			struct fx_pkt k = fx_peer_take(&p);
			cr_expect_eq(k.ack, p.nxt, "only ACKs of the data, no probe (%d)", i);
		}
	}
}

TCP_TEST(retransmit, rto_follows_the_measured_round_trip_time)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = with_rtt(&p, 500);

	/* RFC 6298 §2.2: SRTT 500 ms, RTTVAR 250 ms: RTO = 500 + 4 * 250 = 1500 ms */
	send_and_take(&p, fc, 500);
	uint64_t waited = fx_wait_output_ms(10000);
	cr_expect_eq(waited, 1500, "RTO %lu ms", (unsigned long)waited);
}

TCP_TEST(retransmit, no_rtt_sample_from_a_retransmitted_segment)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	p.ts_on = false; /* Karn's algorithm: without timestamps, a retransmission is ambiguous */
	struct fx_conn *fc = fx_accept(&p);

	send_and_take(&p, fc, 500);
	cr_assert_eq(fx_wait_output_ms(10000), fx_params.rto_initial_ms);
	fx_discard();
	fx_advance_ms(10);
	fx_peer_ack_all(&p);
	fx_peer_ack(&p); /* 1010 ms after the first send, 10 ms after the second */
	send_and_take(&p, fc, 500);
	/* RFC 6298 §5: no sample was taken; the backed-off RTO (2 s) stays */
	uint64_t waited = fx_wait_output_ms(10000);
	cr_expect_eq(waited, 2 * fx_params.rto_initial_ms, "RTO %lu ms", (unsigned long)waited);
}

static void greet_big(struct fx_conn *fc)
{
	cr_assert_eq(fx_send(fc, 4 * SEG), 0);
}

TCP_TEST(retransmit, handshake_ack_is_not_a_duplicate_ack)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	p.sack_on = false;
	fx_on_accept = greet_big; /* data goes out from accepted(), before the ACK is processed */
	fx_accept(&p);
	fx_discard();

	/*
	 * RFC 5681 §2: the handshake's ACK acknowledged our SYN (a new ACK), so two more
	 * ACKs of the same number are only the first and second duplicates.
	 */
	dup_ack(&p, 0, NULL);
	dup_ack(&p, 0, NULL);
	fx_expect_silence("two duplicate ACKs are not yet a loss");
	cr_expect_eq(fx_count(DP_C_TCP_FAST_RECOVERIES), 0);
	dup_ack(&p, 0, NULL);
	cr_expect_gt(fx_pending(), 0, "the third one is");
}

TCP_TEST(retransmit, idle_connection_restarts_from_the_initial_window)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = with_rtt(&p, 10);

	/* grow the window well past the initial 10 segments: ACK every second segment */
	for (int round = 0; round < 3; round++) {
		cr_assert_eq(fx_send(fc, 40 * SEG), 0);
		for (int i = 0; i < 200 && fx_pending(); i++) {
			struct fx_pkt a = fx_peer_take(&p);
			struct fx_pkt b = fx_pending() ? fx_peer_take(&p) : a;
			p.ack = b.seq + b.len;
			fx_peer_ack(&p);
		}
	}
	cr_assert_gt(fx_lookup(&p)->ccs.cwnd, 10u * SEG, "the window grew");
	/* RFC 5681 §4.1: idle for more than an RTO, the next burst is at most the IW */
	fx_advance_ms(5000);
	fx_peer_send(&p, F_PSH, "DATA\r\n", 6); /* the reply answers a command */
	unsigned n = send_and_take(&p, fc, 40 * SEG);
	cr_expect_leq(n, 10, "%u segments after the idle period", n);
}

/* Takes what was sent; returns how many data segments, their segment numbers in SEGS. */
static unsigned take_segments(struct fx_peer *p, unsigned *segs, unsigned max)
{
	unsigned n = 0;
	while (fx_pending()) {
		struct fx_pkt k = fx_peer_take(p);
		if (!k.len)
			continue;
		cr_assert_lt(n, max, "more segments than expected");
		cr_expect(fx_is_pattern(k.data, k.len, k.seq - (p->our_iss + 1)));
		segs[n++] = (k.seq - seg_at(p, 0)) / SEG;
	}
	return n;
}

TCP_TEST(retransmit, sack_recovery_rescues_a_lost_tail_once_without_waiting_for_the_rto)
{
	/*
	 * RFC 6675 §4 NextSeg() rule (4): segments 0 and 5, the last, are lost.
	 * No SACK will ever report anything above 5, so no rule finds it; the
	 * rescue retransmission sends the segment holding the highest unSACKed
	 * byte, once per recovery, instead of waiting for the RTO.
	 */
	struct fx_peer p = fx_peer_new(PEER_PORT);
	flight_of(&p, 6);
	struct tcp_range b = {seg_at(&p, 1), seg_at(&p, 5)};
	dup_ack(&p, 1, &b);
	unsigned segs[4];
	unsigned n = take_segments(&p, segs, 4);
	cr_assert_eq(n, 2, "the lost hole and the rescue, %u segments", n);
	cr_expect_eq(segs[0], 0, "NextSeg (1): the hole IsLost() reports");
	cr_expect_eq(segs[1], 5, "NextSeg (4): the tail");
	cr_expect_eq(fx_count(DP_C_TCP_FAST_RECOVERIES), 1);

	/* more duplicates, then the ACK of the first retransmission: no second rescue */
	dup_ack(&p, 1, &b);
	dup_ack(&p, 1, &b);
	p.ack = seg_at(&p, 5);
	fx_peer_ack(&p);
	fx_expect_silence("one rescue per recovery: RescueRxt is RecoveryPoint");
	cr_expect(fx_lookup(&p)->in_recovery, "a partial ACK");
	/* the rescue arrived: all acknowledged well inside the RTO */
	p.ack = seg_at(&p, 6);
	fx_peer_ack(&p);
	cr_expect_not(fx_lookup(&p)->in_recovery);
	cr_expect_eq(fx_lookup(&p)->snd_una, seg_at(&p, 6));
	cr_expect_eq(fx_count(DP_C_TCP_RTO_TIMEOUTS), 0);
	cr_expect_eq(fx_count(DP_C_TCP_RETRANSMITS), 2);
}

TCP_TEST(retransmit, sack_recovery_rescue_is_allowed_again_in_the_next_recovery)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = flight_of(&p, 6);
	struct tcp_range b = {seg_at(&p, 1), seg_at(&p, 5)};
	dup_ack(&p, 1, &b);
	fx_discard();
	p.ack = seg_at(&p, 6);
	fx_peer_ack(&p);
	cr_assert_not(fx_lookup(&p)->in_recovery);

	/* the window grows back (congestion avoidance, RFC 5681 §3.1), every segment acked */
	struct tcp_conn *c = fx_lookup(&p);
	for (int round = 0; c->ccs.cwnd < 6 * SEG; round++) {
		cr_assert_lt(round, 50);
		send_and_take(&p, fc, c->ccs.cwnd);
		fx_peer_ack_all(&p);
		fx_peer_ack(&p);
	}
	/* a second flight, the same losses: a new recovery, a new rescue */
	uint32_t base = c->snd_nxt;
	cr_assert_eq(send_and_take(&p, fc, 6 * SEG), 6);
	struct tcp_range b2 = {base + SEG, base + 5 * SEG};
	dup_ack(&p, 1, &b2);
	unsigned rexmit = 0, rescued = 0;
	while (fx_pending()) {
		struct fx_pkt k = fx_peer_take(&p);
		rexmit += k.len && k.seq == base;
		rescued += k.len && k.seq == base + 5 * SEG;
	}
	cr_expect_eq(fx_count(DP_C_TCP_FAST_RECOVERIES), 2);
	cr_expect_eq(rexmit, 1);
	cr_expect_eq(rescued, 1, "RFC 6675 §4 (4): one rescue per entry into recovery");
}

TCP_TEST(retransmit, sack_recovery_resends_a_hole_not_yet_lost_when_nothing_new_may_go)
{
	/*
	 * RFC 6675 §4 NextSeg() rule (3): 0 and 5 are missing, 7 not reported
	 * yet. IsLost(5) is false (one SACKed segment above it), there is no new
	 * data, and the pipe has room: the hole goes rather than nothing, and
	 * before the rescue (rule (4)) would pick the tail.
	 */
	struct fx_peer p = fx_peer_new(PEER_PORT);
	flight_of(&p, 8);
	struct tcp_range b[2] = {{seg_at(&p, 6), seg_at(&p, 7)}, {seg_at(&p, 1), seg_at(&p, 5)}};
	dup_ack(&p, 2, b);
	unsigned segs[4];
	unsigned n = take_segments(&p, segs, 4);
	cr_assert_eq(n, 2, "%u segments", n);
	cr_expect_eq(segs[0], 0, "NextSeg (1): the lost hole");
	cr_expect_eq(segs[1], 5, "NextSeg (3): the hole below the highest SACK, not the tail");
	fx_expect_silence("the pipe is full");
}
