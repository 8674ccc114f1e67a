/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Connection establishment (RFC 9293 §3.5, §3.10.7.2-3): the passive open of
 * a listener, the active open with SYN retries, simultaneous open, and what
 * the first segments after the handshake may already carry.
 */
#include "tcp_fixture.h"

#include <errno.h>
#include <string.h>

TestSuite(handshake, .init = fx_setup, .fini = fx_teardown);

TCP_TEST(handshake, syn_is_answered_by_syn_ack_offering_our_options)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_pkt k = fx_peer_syn(&p);

	cr_expect_eq(k.flags, F_SYN | F_ACK);
	cr_expect_eq(k.ack, p.isn + 1);
	cr_expect_eq(k.len, 0, "no data on our SYN-ACK");
	cr_expect(k.df, "DF: no fragmentation (RFC 1191)");
	cr_expect(k.has_mss);
	cr_expect_eq(k.mss, FX_OUR_MSS, "MSS = MTU - 40 (RFC 9293 §3.7.1)");
	cr_expect(k.has_ws);
	cr_expect_eq(k.ws, fx_params.wscale);
	cr_expect(k.sack_perm);
	cr_expect(k.has_ts);
	cr_expect_eq(k.tsecr, fx_peer_tsval(&p), "the SYN's TSval echoed");
	cr_expect_eq(k.win, 65535, "a SYN's window is never scaled (RFC 7323 §2.2)");
	cr_expect_eq(strcmp(fx_state_of(&p), "SYN_RECEIVED"), 0);
	cr_expect_eq(fx_n_conns, 0, "the application hears nothing before the handshake is done");
	cr_expect_eq(fx_drops_total(), 0);
}

TCP_TEST(handshake, handshake_ack_completes_passive_open_and_calls_accepted)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = fx_accept(&p);

	cr_expect(fc->accepted);
	cr_expect_eq(strcmp(fx_state_of(&p), "ESTABLISHED"), 0);
	cr_expect_eq(fx_count(DP_C_TCP_PASSIVE_OPENS), 1);
	fx_expect_silence("a bare handshake ACK needs no answer");
	cr_expect_eq(fx_drops_total(), 0);
}

static void greet(struct fx_conn *fc)
{
	cr_assert_eq(fx_send(fc, 30), 0);
}

TCP_TEST(handshake, greeting_sent_from_accepted_arrives_intact)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	fx_on_accept = greet;
	fx_accept(&p);

	struct fx_pkt k = fx_peer_take(&p);
	cr_assert_eq(k.len, 30, "the whole greeting");
	cr_expect_eq(k.seq, p.our_iss + 1, "data starts right after our SYN");
	cr_expect(fx_is_pattern(k.data, k.len, 0), "the greeting's bytes, from its first");
	fx_peer_ack_all(&p);
	fx_peer_ack(&p);
	cr_expect_eq(fx_drops_total(), 0);
	struct fx_conn *fc = &fx_conns[0];
	cr_assert_eq(fx_send(fc, 20), 0);
	k = fx_peer_take(&p);
	cr_expect_eq(k.seq, p.our_iss + 31);
	cr_expect_eq(k.len, 20);
	cr_expect(fx_is_pattern(k.data, k.len, 30), "the next reply follows the greeting");
}

TCP_TEST(handshake, client_data_right_after_the_handshake_is_delivered)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_conn *fc = fx_accept(&p);

	/* We have sent nothing since the SYN-ACK, whose window (65535) the client may use. */
	fx_peer_send(&p, F_PSH, "EHLO client.example\r\n", 21);
	cr_expect_eq(fc->rx_len, 21);
	cr_expect_eq(memcmp(fc->rx, "EHLO client.example\r\n", 21), 0);
	cr_expect_eq(fx_drop(DP_DROP_TCP_OUT_OF_WINDOW), 0);
}

TCP_TEST(handshake, data_on_the_handshake_ack_is_delivered)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	fx_peer_syn(&p);
	fx_peer_send(&p, F_PSH, "QUIT\r\n", 6);

	cr_assert_eq(fx_n_conns, 1, "the ACK completes the handshake");
	struct fx_conn *fc = &fx_conns[0];
	cr_expect_eq(fc->rx_len, 6);
	cr_expect_eq(memcmp(fc->rx, "QUIT\r\n", 6), 0);
	cr_expect_eq(fx_drop(DP_DROP_TCP_OUT_OF_WINDOW), 0);
}

TCP_TEST(handshake, active_open_sends_syn_with_every_option_and_completes)
{
	struct fx_peer p = fx_peer_new(2525);
	struct tcp_conn *c = NULL;

	cr_assert_eq(tcp_connect(fx_stack, OUR_IP, PEER_IP, rte_cpu_to_be_16(2525), &fx_ops, NULL,
				 NULL, NULL, &c),
		     0);
	struct fx_pkt syn = fx_take();
	cr_expect_eq(syn.flags, F_SYN, "a SYN without ACK");
	cr_expect_eq(syn.ack, 0);
	cr_expect_eq(syn.dport, 2525);
	cr_expect_geq(syn.sport, TCP_EPHEMERAL_LO);
	cr_expect_leq(syn.sport, TCP_EPHEMERAL_HI);
	cr_expect(syn.has_mss && syn.mss == FX_OUR_MSS);
	cr_expect(syn.has_ws && syn.ws == fx_params.wscale);
	cr_expect(syn.sack_perm);
	cr_expect(syn.has_ts);
	cr_expect_eq(syn.tsecr, 0, "nothing to echo yet");
	cr_expect_eq(syn.win, 65535);
	tcp_abort(c);
	fx_discard();

	struct fx_conn *fc = fx_connect(&p);
	cr_expect(fc->connected);
	cr_expect_eq(strcmp(fx_state_of(&p), "ESTABLISHED"), 0);
	cr_expect_eq(fx_count(DP_C_TCP_ACTIVE_OPENS), 1);
	cr_assert_eq(fx_send(fc, 100), 0);
	struct fx_pkt k = fx_peer_take(&p);
	cr_expect_eq(k.seq, p.our_iss + 1);
	cr_expect_eq(k.len, 100);
	cr_expect(fx_is_pattern(k.data, 100, 0));
}

TCP_TEST(handshake, data_queued_before_the_syn_ack_goes_out_after_it)
{
	struct fx_peer p = fx_peer_new(2525);
	struct fx_pkt syn;
	struct fx_conn *fc = fx_open(&p, &syn);
	cr_assert_eq(fx_send(fc, 50), 0, "tcp_send() in SYN-SENT queues");
	fx_expect_silence("no data before the handshake");
	p.nxt = p.isn + 1;
	struct fx_seg g = {.sport = 2525, .dport = syn.sport, .seq = p.isn, .ack = syn.seq + 1,
			   .flags = F_SYN | F_ACK, .win = 65535, .mss = 1460};
	fx_input(&g);
	cr_expect(fc->connected);
	struct fx_pkt k = fx_peer_take(&p);
	cr_expect(k.flags & F_ACK);
	cr_expect_eq(k.seq, syn.seq + 1);
	cr_expect_eq(k.ack, p.isn + 1);
	cr_expect_eq(k.len, 50, "the queued data goes with (or right after) the ACK");
	cr_expect(fx_is_pattern(k.data, k.len, 0));
}

TCP_TEST(handshake, syn_ack_acknowledging_the_wrong_sequence_draws_rst_and_is_ignored)
{
	struct fx_peer p = fx_peer_new(2525);
	struct fx_pkt syn;
	struct fx_conn *fc = fx_open(&p, &syn);

	struct fx_seg g = {.sport = 2525, .dport = syn.sport, .seq = p.isn, .ack = syn.seq + 77,
			   .flags = F_SYN | F_ACK, .win = 65535};
	fx_input(&g);
	/* RFC 9293 §3.10.7.3: <SEQ=SEG.ACK><CTL=RST>, and stay in SYN-SENT. */
	struct fx_pkt k = fx_take();
	cr_expect_eq(k.flags, F_RST);
	cr_expect_eq(k.seq, syn.seq + 77);
	cr_expect_eq(fx_drop(DP_DROP_TCP_BAD_ACK), 1);
	cr_expect_eq(strcmp(fx_state_of(&p), "SYN_SENT"), 0);
	tcp_abort(fc->c);
}

TCP_TEST(handshake, unanswered_syn_is_retried_with_doubling_timeout_then_fails)
{
	struct fx_peer p = fx_peer_new(2525);
	struct fx_pkt syn;
	struct fx_conn *fc = fx_open(&p, &syn);
	uint64_t expect_ms = fx_params.rto_initial_ms;
	for (unsigned i = 0; i < fx_params.syn_retries; i++) {
		uint64_t waited = fx_wait_output_ms(200000);
		cr_expect_eq(waited, expect_ms, "SYN retry %u after %lu ms, not %lu", i + 1,
			     (unsigned long)expect_ms, (unsigned long)waited);
		struct fx_pkt k = fx_take();
		cr_expect_eq(k.flags, F_SYN);
		cr_expect_eq(k.seq, syn.seq, "the same SYN");
		expect_ms *= 2;
	}
	cr_expect_eq(fx_wait_output_ms(200000), 200001, "no more SYNs");
	cr_expect_eq(fc->connect_err, -ETIMEDOUT);
	cr_expect_eq(fc->closed, 1);
	cr_expect_eq(fc->reason, TCP_CLOSE_TIMEOUT);
	cr_expect_eq(strcmp(fx_state_of(&p), "none"), 0);
}

TCP_TEST(handshake, unanswered_syn_ack_is_retried_then_forgotten)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_pkt sa = fx_peer_syn(&p);
	uint64_t expect_ms = fx_params.rto_initial_ms;

	for (unsigned i = 0; i < fx_params.syn_retries; i++) {
		cr_expect_eq(fx_wait_output_ms(200000), expect_ms, "SYN-ACK retry %u", i + 1);
		struct fx_pkt k = fx_take();
		cr_expect_eq(k.flags, F_SYN | F_ACK);
		cr_expect_eq(k.seq, sa.seq);
		expect_ms *= 2;
	}
	fx_wait_output_ms(200000);
	fx_expect_silence("no more SYN-ACKs");
	cr_expect_eq(strcmp(fx_state_of(&p), "none"), 0, "the half-open connection is gone");
	cr_expect_eq(fx_n_conns, 0, "the application never heard of it");
}

TCP_TEST(handshake, simultaneous_open_completes_with_connected)
{
	struct fx_peer p = fx_peer_new(2525);
	struct fx_pkt syn;
	struct fx_conn *fc = fx_open(&p, &syn);
	/* RFC 9293 figure 8: the peer's SYN crosses ours. */
	struct fx_seg g = {.sport = 2525, .dport = syn.sport, .seq = p.isn, .flags = F_SYN,
			   .win = 65535, .mss = 1460};
	fx_input(&g);
	struct fx_pkt k = fx_take();
	cr_expect_eq(k.flags, F_SYN | F_ACK, "line 5: our SYN again, with ACK");
	cr_expect_eq(k.seq, syn.seq);
	cr_expect_eq(k.ack, p.isn + 1);
	cr_expect_eq(strcmp(fx_state_of(&p), "SYN_RECEIVED"), 0);
	cr_expect_not(fc->connected);
	/* Line 6: the peer's SYN-ACK; whichever way it is taken, an ACK of it ends the open. */
	g.flags = F_SYN | F_ACK;
	g.ack = syn.seq + 1;
	fx_input(&g);
	fx_discard();
	g.flags = F_ACK;
	g.seq = p.isn + 1;
	fx_input(&g);
	cr_expect(fc->connected, "connected() once our SYN is acknowledged");
	cr_expect_eq(strcmp(fx_state_of(&p), "ESTABLISHED"), 0);
}

TCP_TEST(handshake, retransmitted_syn_makes_no_second_connection)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	fx_peer_syn(&p);
	unsigned conns = fx_stack->n_conns;

	struct fx_seg g = {.seq = p.isn, .flags = F_SYN, .win = 65535, .mss = 1460,
			   .sack_perm = true, .has_ts = true, .tsval = fx_peer_tsval(&p),
			   .has_ws = true, .ws = 7};
	fx_input(&g);
	cr_expect_eq(fx_stack->n_conns, conns);
	/* The answer (an ACK, RFC 9293 §3.10.7.4, or the SYN-ACK again) acks the SYN. */
	while (fx_pending()) {
		struct fx_pkt k = fx_take();
		cr_expect(k.flags & F_ACK);
		cr_expect_eq(k.ack, p.isn + 1);
		cr_expect_not(k.flags & F_RST);
	}
	fx_peer_ack(&p);
	cr_expect_eq(fx_n_conns, 1);
	cr_expect_eq(strcmp(fx_state_of(&p), "ESTABLISHED"), 0);
}

TCP_TEST(handshake, data_on_a_syn_is_not_acknowledged_before_it_is_resent)
{
	struct fx_peer p = fx_peer_new(PEER_PORT);
	struct fx_seg g = {.seq = p.isn, .flags = F_SYN, .win = 65535, .mss = 1460,
			   .data = "HELO", .len = 4};
	fx_input(&g);
	struct fx_pkt k = fx_take();
	cr_expect_eq(k.flags, F_SYN | F_ACK);
	cr_expect_eq(k.ack, p.isn + 1, "data not kept is not acknowledged");
}

TCP_TEST(handshake, syn_to_a_port_nobody_listens_on_gets_rst_ack)
{
	struct fx_seg g = {.dport = 587, .seq = 0xfffffffe, .flags = F_SYN, .win = 65535,
			   .mss = 1460};
	fx_input(&g);
	struct fx_pkt k = fx_take();
	cr_expect_eq(k.flags, F_RST | F_ACK);
	cr_expect_eq(k.seq, 0);
	cr_expect_eq(k.ack, 0xffffffff, "ACK = SEG.SEQ + SEG.LEN (the SYN counts one)");
	cr_expect_eq(k.sport, 587);
	cr_expect_eq(k.dport, PEER_PORT);
	cr_expect_eq(fx_drop(DP_DROP_TCP_NO_CONN), 1);
	cr_expect_eq(fx_count(DP_C_TCP_RST_SENT), 1);
}

TCP_TEST(handshake, listener_on_any_address_accepts_for_each_of_ours)
{
	struct tcp_listen_opts o = {.ops = &fx_ops, .arg = &fx_stack};
	cr_assert_eq(tcp_listen(fx_stack, 0, rte_cpu_to_be_16(465), &o), 0);
	cr_expect_eq(tcp_listen(fx_stack, 0, rte_cpu_to_be_16(465), &o), -EADDRINUSE);
	struct fx_seg g = {.daddr = IP4(198, 51, 100, 3), .dport = 465, .seq = 1000,
			   .flags = F_SYN, .win = 65535};
	fx_input(&g);
	struct fx_pkt k = fx_take();
	cr_expect_eq(k.flags, F_SYN | F_ACK);
	cr_expect_eq(k.saddr, IP4(198, 51, 100, 3), "answered from the address it was sent to");
}

TCP_TEST(handshake, retransmitted_syn_ack_is_acknowledged_again)
{
	struct fx_peer p = fx_peer_new(2525);
	struct fx_conn *fc = fx_connect(&p);

	/* our ACK was lost: the peer sends its SYN-ACK again */
	struct fx_seg g = fx_peer_seg(&p, F_SYN | F_ACK, NULL, 0);
	g.seq = p.isn;
	fx_input(&g);
	struct fx_pkt k = fx_peer_take(&p);
	cr_expect_eq(k.flags, F_ACK);
	cr_expect_eq(k.ack, p.isn + 1);
	cr_expect(fc->connected);
	cr_expect_eq(fc->closed, 0);
	cr_expect_eq(strcmp(fx_state_of(&p), "ESTABLISHED"), 0);
}

/* An ICMP destination unreachable quoting a SYN (sequence SEQ) of our connection to P. */
static void icmp_unreachable(const struct fx_peer *p, uint8_t code, uint32_t seq)
{
	uint8_t quoted[40] = {0}; /* the error carries 28 bytes: IPv4 header + 8 */
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)quoted;
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->total_length = rte_cpu_to_be_16(60);
	ip->next_proto_id = IPPROTO_TCP;
	ip->src_addr = OUR_IP;
	ip->dst_addr = PEER_IP;
	struct rte_tcp_hdr *th = (struct rte_tcp_hdr *)(ip + 1);
	th->src_port = rte_cpu_to_be_16(p->our_port);
	th->dst_port = rte_cpu_to_be_16(p->port);
	th->sent_seq = rte_cpu_to_be_32(seq);
	tcp_icmp_error(fx_stack, 3, code, quoted, 28, fx_now);
}

TCP_TEST(handshake, icmp_port_unreachable_fails_the_connection_attempt)
{
	struct fx_peer p = fx_peer_new(2525);
	struct fx_pkt syn;
	struct fx_conn *fc = fx_open(&p, &syn);

	icmp_unreachable(&p, 3, syn.seq + 1000); /* quotes a segment that is not ours */
	cr_expect_eq(fc->closed, 0, "RFC 5927 §4.1: the quoted sequence must be ours");
	icmp_unreachable(&p, 3, syn.seq);
	cr_expect_eq(fc->connect_err, -ECONNREFUSED, "RFC 1122 §4.2.3.9: a hard error");
	cr_expect_eq(fc->closed, 1);
	cr_expect_eq(fc->reason, TCP_CLOSE_UNREACHABLE);
	cr_expect_eq(strcmp(fx_state_of(&p), "none"), 0);
}

TCP_TEST(handshake, syn_beyond_a_full_connection_table_is_dropped_and_counted)
{
	fx_params.max_conns = 2;
	fx_restart();
	struct fx_peer a = fx_peer_new(40001), b = fx_peer_new(40002), c = fx_peer_new(40003);
	fx_accept(&a);
	fx_accept(&b);

	struct fx_seg g = {.sport = c.port, .seq = c.isn, .flags = F_SYN, .win = 65535};
	fx_input(&g);
	fx_expect_silence("no room: the SYN is dropped");
	cr_expect_eq(fx_drop(DP_DROP_TCP_CONN_TABLE_FULL), 1);
	cr_expect_eq(fx_stack->n_conns, 2);
	cr_expect_eq(strcmp(fx_state_of(&a), "ESTABLISHED"), 0, "nobody else is disturbed");
}

static bool port_is_3_mod_8(void *arg, uint32_t laddr, uint16_t lport, uint32_t raddr,
			    uint16_t rport)
{
	(void)laddr;
	(void)raddr;
	(void)rport;
	++*(unsigned *)arg;
	return rte_be_to_cpu_16(lport) % 8 == 3;
}

static bool no_port(void *arg, uint32_t laddr, uint16_t lport, uint32_t raddr, uint16_t rport)
{
	(void)arg;
	(void)laddr;
	(void)lport;
	(void)raddr;
	(void)rport;
	return false;
}

TCP_TEST(handshake, active_open_uses_a_source_port_the_caller_accepts)
{
	unsigned asked = 0;
	struct tcp_conn *c = NULL;

	for (int i = 0; i < 4; i++) {
		cr_assert_eq(tcp_connect(fx_stack, OUR_IP, PEER_IP, rte_cpu_to_be_16(25), &fx_ops,
					 NULL, port_is_3_mod_8, &asked, &c),
			     0);
		struct fx_pkt syn = fx_take();
		cr_expect_eq(syn.sport % 8, 3, "an RSS-friendly port, not %u", syn.sport);
	}
	cr_expect_gt(asked, 4, "the callback was consulted");
	cr_expect_eq(tcp_connect(fx_stack, OUR_IP, PEER_IP, rte_cpu_to_be_16(25), &fx_ops, NULL,
				 no_port, NULL, &c),
		     -EADDRNOTAVAIL);
}
