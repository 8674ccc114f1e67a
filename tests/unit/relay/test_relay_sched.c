/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The relay's delivery engine against scripted next hops and an in-memory
 * store, on a virtual clock: delivery and what the spool is told, the
 * connection pools (reuse, cap, idle close, recycling, stale connections),
 * failover between a route's hops, deferrals and backoff, retries, bounces
 * (only for the failed recipient, never for the null sender, only once
 * durable), lifetime expiry, the delay warning, backpressure, and the
 * bounded reads.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "fake_store.h"
#include "relay_fixture.h"

static struct relay_sched *s;
static struct relay_sched_config cfg;

static void setup(void)
{
	rx_setup();
	fs_reset();
	rx_config(&cfg, &fs_ops, NULL);
}

static void teardown(void)
{
	relay_sched_free(s);
	s = NULL;
	fs_free();
	rx_teardown();
}

TestSuite(relay, .init = setup, .fini = teardown);

static void start(void)
{
	s = relay_sched_new(&cfg);
	cr_assert_not_null(s, "the engine takes the test config");
}

static void run_ms(uint64_t ms)
{
	rx_run(s, ms, fs_step);
}

static void run_s(uint64_t sec)
{
	run_ms(sec * 1000);
}

static uint64_t C(enum relay_counter c)
{
	return relay_sched_stats(s)->c[c];
}

static struct spool_msg *add1(const char *rcpt)
{
	return fs_add(&(struct fs_msg){ .rcpt = { rcpt } });
}

static struct spool_msg *submit1(const char *rcpt)
{
	struct spool_msg *m = add1(rcpt);

	relay_sched_submit(s, m);
	return m;
}

static void assert_clean(void)
{
	cr_assert_eq(fs.misuse, 0, "the engine touched a final message or recipient");
}

/* ---- delivery ---- */

Test(relay, a_message_is_delivered_over_one_connection_and_every_recipient_is_recorded)
{
	struct spool_msg *m = fs_add(&(struct fs_msg){ .rcpt = { "bob@example.com",
								 "carol@Example.COM" } });
	struct spool_env env;
	struct smtp_rcpt r[FS_MAX_RCPTS];
	struct smtp_str content;
	char size[32];

	start();
	cr_assert_eq(relay_sched_n_hops(s), 4, "A, B1, B2 and the smarthost, once each");
	relay_sched_submit(s, m);
	run_ms(200);

	cr_assert(m->final, "both recipients are final");
	cr_assert_eq(fs_state(m, 0), SPOOL_RCPT_DELIVERED);
	cr_assert_eq(fs_state(m, 1), SPOOL_RCPT_DELIVERED);
	cr_assert_str_eq(m->reply[0], "250 2.0.0 Ok: queued", "the next hop's reply is kept");
	struct rx_hop *a = rx_hop(HOP_A);
	cr_assert_eq(a->conns, 1);
	cr_assert_eq(a->msgs, 1);
	cr_assert_eq(a->rcpts, 2, "one transaction for both recipients");
	fs_decode(m, &env, r, &content);
	cr_assert_eq(a->content_len, content.len);
	cr_assert_eq(memcmp(a->content, content.p, content.len), 0,
		     "the next hop gets the spooled content, Received: header and all");
	snprintf(size, sizeof(size), " SIZE=%zu", content.len);
	cr_assert_not_null(strstr(a->last_mail, "MAIL FROM:<alice@sender.example>"), "%s",
			   a->last_mail);
	cr_assert_not_null(strstr(a->last_mail, size), "%s", a->last_mail);
	cr_assert_null(strstr(a->last_mail, "BODY="), "7-bit content needs no BODY=");
	cr_assert_eq(C(RELAY_MSGS_QUEUED), 1);
	cr_assert_eq(C(RELAY_MSGS_DELIVERED), 1);
	cr_assert_eq(C(RELAY_RCPTS_DELIVERED), 2);
	cr_assert_eq(C(RELAY_TRANSACTIONS), 1);
	cr_assert_eq(C(RELAY_CONNS_OPENED), 1);
	cr_assert_eq(relay_sched_hop_stats(s, 0)->rcpts_delivered, 2, "per-hop counters too");
	cr_assert_eq(rx_log_count("status=queued"), 1);
	cr_assert_eq(rx_log_count("status=delivered"), 2, "one log line per recipient");
	cr_assert_eq(rx_log_count("relay=[203.0.113.10]:25"), 2);
	cr_assert_eq(rx_log_count(m->qid), 3);
	assert_clean();
}

Test(relay, eight_bit_content_goes_with_body_8bitmime_and_dsn_parameters_pass_through)
{
	static const char c8[] = "Received: x\r\nSubject: caf\xc3\xa9\r\n\r\nd\xc3\xa9j\xc3\xa0 vu\r\n";
	struct spool_msg *m = fs_add(&(struct fs_msg){
		.rcpt = { "bob@example.com" },
		.notify = { SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY },
		.orcpt = { "rfc822;b+2Bob@example.com" },
		.content = c8,
		.ret = SMTP_RET_HDRS,
		.envid = "QQ+2B1",
	});

	start();
	relay_sched_submit(s, m);
	run_ms(200);
	struct rx_hop *a = rx_hop(HOP_A);
	cr_assert_eq(a->msgs, 1);
	cr_assert_not_null(strstr(a->last_mail, " BODY=8BITMIME"), "%s", a->last_mail);
	cr_assert_not_null(strstr(a->last_mail, " RET=HDRS"), "%s", a->last_mail);
	cr_assert_not_null(strstr(a->last_mail, " ENVID=QQ+2B1"), "%s", a->last_mail);
	cr_assert_not_null(strstr(a->last_rcpt, " NOTIFY=FAILURE,DELAY"), "%s", a->last_rcpt);
	cr_assert_not_null(strstr(a->last_rcpt, " ORCPT=rfc822;b+2Bob@example.com"), "%s",
			   a->last_rcpt);
	assert_clean();
}

Test(relay, recipients_of_different_routes_go_to_their_own_hops)
{
	struct spool_msg *m = fs_add(&(struct fs_msg){
		.rcpt = { "bob@example.com", "x@failover.example", "y@elsewhere.example" } });

	start();
	relay_sched_submit(s, m);
	run_ms(300);
	cr_assert(m->final);
	cr_assert_eq(rx_hop(HOP_A)->msgs, 1);
	cr_assert_eq(rx_hop(HOP_B1)->msgs, 1, "the route's first priority");
	cr_assert_eq(rx_hop(HOP_B2)->connects, 0);
	cr_assert_eq(rx_hop(HOP_S)->msgs, 1, "other domains: the smarthost");
	cr_assert_eq(C(RELAY_TRANSACTIONS), 3);
	assert_clean();
}

Test(relay, more_recipients_than_a_transaction_takes_are_split)
{
	cfg.max_rcpts = 2;
	struct spool_msg *m = fs_add(&(struct fs_msg){
		.rcpt = { "a@example.com", "b@example.com", "c@example.com", "d@example.com",
			  "e@example.com" } });

	start();
	relay_sched_submit(s, m);
	run_ms(500);
	cr_assert(m->final);
	cr_assert_eq(rx_hop(HOP_A)->msgs, 3, "2 + 2 + 1 recipients");
	cr_assert_eq(rx_hop(HOP_A)->rcpts, 5);
	cr_assert_eq(C(RELAY_RCPTS_DELIVERED), 5);
	assert_clean();
}

/* ---- connection pools ---- */

Test(relay, a_pooled_connection_carries_messages_per_connection_then_is_replaced)
{
	rx_relay.messages_per_connection = 2;
	rx_relay.connections_per_hop = 1;
	start();
	for (int i = 0; i < 5; i++)
		submit1("bob@example.com");
	run_ms(2000);

	struct rx_hop *a = rx_hop(HOP_A);
	cr_assert_eq(a->msgs, 5);
	cr_assert_eq(a->conns, 3, "2 + 2 + 1 messages");
	cr_assert_eq(a->max_msgs_per_conn, 2);
	cr_assert_eq(a->conns_max, 1, "one at a time: the cap is 1");
	cr_assert_eq(C(RELAY_CONNS_REUSED), 2, "each connection's second message");
	cr_assert_eq(C(RELAY_CONNS_RECYCLED), 2);
	cr_assert_geq(a->quits, 2, "a recycled connection ends with QUIT");
	assert_clean();
}

Test(relay, connections_per_hop_is_a_cap_and_deliveries_wait_for_a_connection)
{
	rx_relay.connections_per_hop = 2;
	start();
	for (int i = 0; i < 8; i++)
		submit1("bob@example.com");
	run_ms(2000);

	struct rx_hop *a = rx_hop(HOP_A);
	cr_assert_eq(a->msgs, 8);
	cr_assert_eq(a->conns_max, 2, "never more than the cap at once");
	cr_assert_eq(a->conns, 2, "the two are reused for the rest");
	cr_assert_gt(C(RELAY_CONN_WAITS), 0);
	cr_assert_eq(C(RELAY_MSGS_DELIVERED), 8);
	assert_clean();
}

Test(relay, an_idle_connection_is_reused_then_closes_after_idle_timeout)
{
	start();
	submit1("bob@example.com");
	run_ms(200);
	cr_assert_eq(rx_conns_open(), 1, "kept in the pool");
	submit1("carol@example.com");
	run_ms(200);
	cr_assert_eq(rx_hop(HOP_A)->conns, 1, "the pooled connection took the second message");
	cr_assert_eq(C(RELAY_CONNS_REUSED), 1);
	run_ms(4000);
	cr_assert_eq(rx_conns_open(), 1, "idle for 4 s of 5");
	run_ms(1500);
	cr_assert_eq(rx_conns_open(), 0, "closed after idle_timeout_s");
	cr_assert_eq(rx_hop(HOP_A)->quits, 1, "politely, with QUIT");
	cr_assert_eq(C(RELAY_CONNS_IDLE_CLOSED), 1);
	assert_clean();
}

Test(relay, a_pooled_connection_found_dead_is_replaced_without_a_deferral)
{
	rx_relay.connections_per_hop = 1;
	rx_hop(HOP_A)->drop_reused = true;
	start();
	struct spool_msg *m1 = submit1("bob@example.com");
	struct spool_msg *m2 = submit1("carol@example.com");
	run_ms(1000);
	cr_assert(m1->final && m2->final);
	cr_assert_eq(fs_state(m2, 0), SPOOL_RCPT_DELIVERED);
	cr_assert_eq(C(RELAY_RCPTS_DEFERRED), 0, "a dead pooled connection is not the message's fault");
	cr_assert_eq(C(RELAY_CONNS_STALE), 1);
	cr_assert_eq(rx_hop(HOP_A)->conns, 2);
	assert_clean();
}

Test(relay, output_the_transport_cannot_take_resumes_when_writable)
{
	start();
	rx_block_sends(3);
	struct spool_msg *m = submit1("bob@example.com");
	run_ms(500);
	cr_assert(m->final);
	cr_assert_eq(fs_state(m, 0), SPOOL_RCPT_DELIVERED);
	assert_clean();
}

Test(relay, the_engine_wide_cap_is_shared_and_an_idle_connection_makes_room)
{
	cfg.max_conns = 1;
	start();
	struct spool_msg *m1 = submit1("bob@example.com");
	run_ms(300);
	cr_assert(m1->final);
	cr_assert_eq(rx_conns_open(), 1, "A's connection waits in the pool");
	struct spool_msg *m2 = submit1("x@failover.example");
	run_ms(300);
	cr_assert(m2->final, "B1 did not wait for A's idle timeout");
	cr_assert_eq(rx_conns_peak(), 1, "never more than max_conns at once");
	cr_assert_eq(rx_hop(HOP_A)->quits, 1, "A's idle connection left politely");
	assert_clean();
}

Test(relay, a_next_hop_that_stops_answering_times_out_and_the_message_is_deferred)
{
	rx_hop(HOP_A)->mute_at_dot = true;
	start();
	struct spool_msg *m = submit1("bob@example.com");
	run_s(599);
	cr_assert_eq(fs_state(m, 0), SPOOL_RCPT_PENDING, "RFC 5321 §4.5.3.2.6: 10 minutes for the reply");
	run_s(2);
	cr_assert_eq(fs_state(m, 0), SPOOL_RCPT_DEFERRED);
	cr_assert_not_null(strstr(m->reply[0], "4.4.2 conversation timed out"), "%s", m->reply[0]);
	cr_assert_eq(C(RELAY_CONNS_LOST), 1);
	cr_assert_eq(rx_conns_open(), 0);
	assert_clean();
}

Test(relay, a_connection_reset_mid_transaction_defers_the_recipients)
{
	rx_hop(HOP_A)->reset_at_data = true;
	start();
	struct spool_msg *m = fs_add(&(struct fs_msg){ .rcpt = { "bob@example.com",
								 "carol@example.com" } });
	relay_sched_submit(s, m);
	run_ms(500);
	cr_assert_eq(fs_state(m, 0), SPOOL_RCPT_DEFERRED);
	cr_assert_eq(fs_state(m, 1), SPOOL_RCPT_DEFERRED);
	cr_assert_not_null(strstr(m->reply[0], "lost connection"), "%s", m->reply[0]);
	cr_assert_eq(C(RELAY_CONNS_LOST), 1);
	cr_assert_eq(fs.injected, 0);
	rx_hop(HOP_A)->reset_at_data = false;
	run_s(61);
	cr_assert(m->final);
	assert_clean();
}

/* ---- failover ---- */

Test(relay, a_refused_hop_fails_over_to_the_next_one)
{
	rx_hop(HOP_B1)->mode = RX_REFUSE;
	start();
	struct spool_msg *m = submit1("x@failover.example");
	run_ms(500);
	cr_assert(m->final);
	cr_assert_eq(fs_state(m, 0), SPOOL_RCPT_DELIVERED);
	cr_assert_eq(rx_hop(HOP_B1)->connects, 1);
	cr_assert_eq(rx_hop(HOP_B2)->msgs, 1);
	cr_assert_eq(C(RELAY_HOP_FAILOVERS), 1);
	cr_assert_eq(C(RELAY_CONNS_FAILED), 1);
	cr_assert_eq(relay_sched_hop_stats(s, 1)->conns_failed, 1, "B1's own counters");
	cr_assert_eq(relay_sched_hop_stats(s, 1)->failovers, 1);

	/* B1 is down for hop_down_s: the next message goes straight to B2 */
	submit1("y@failover.example");
	run_ms(500);
	cr_assert_eq(rx_hop(HOP_B1)->connects, 1, "a down hop is skipped");
	cr_assert_eq(rx_hop(HOP_B2)->msgs, 2);
	assert_clean();
}

Test(relay, a_silent_hop_times_out_and_the_next_one_delivers)
{
	rx_hop(HOP_B1)->mode = RX_SILENT;
	start();
	struct spool_msg *m = submit1("x@failover.example");
	run_s(29);
	cr_assert_eq(fs_state(m, 0), SPOOL_RCPT_PENDING, "still waiting for the connect");
	run_s(2);
	cr_assert_eq(fs_state(m, 0), SPOOL_RCPT_DELIVERED, "connect_timeout_s, then B2");
	cr_assert_eq(rx_hop(HOP_B2)->msgs, 1);
	assert_clean();
}

Test(relay, a_hop_refusing_at_the_greeting_is_left_for_the_next_one)
{
	rx_hop(HOP_B1)->mode = RX_GREET_554;
	start();
	struct spool_msg *m = submit1("x@failover.example");
	run_ms(500);
	cr_assert_eq(fs_state(m, 0), SPOOL_RCPT_DELIVERED);
	cr_assert_eq(rx_hop(HOP_B2)->msgs, 1);
	cr_assert_eq(rx_hop(HOP_B1)->quits, 1, "RFC 5321 §3.1: QUIT after a 554 greeting");
	assert_clean();
}

Test(relay, a_connection_lost_after_mail_fails_over_to_the_next_hop_in_the_same_attempt)
{
	rx_hop(HOP_B1)->reset_at_data = true;
	start();
	struct spool_msg *m = submit1("x@failover.example");
	run_ms(500);
	cr_assert(m->final, "delivered in the first attempt");
	cr_assert_eq(fs_state(m, 0), SPOOL_RCPT_DELIVERED);
	cr_assert_eq(rx_hop(HOP_B1)->msgs, 0);
	cr_assert_eq(rx_hop(HOP_B2)->msgs, 1, "exactly once, by the second hop");
	cr_assert_str_eq(rx_hop(HOP_B2)->rcpt_to[0], "x@failover.example");
	cr_assert_eq(C(RELAY_RCPTS_DEFERRED), 0, "no deferral: the attempt went on");
	cr_assert_eq(C(RELAY_HOP_FAILOVERS), 1);
	cr_assert_eq(C(RELAY_CONNS_LOST), 1);
	cr_assert_eq(relay_sched_hop_stats(s, 1)->failovers, 1, "counted on B1, the hop it left");
	cr_assert_eq(rx_log_count("status=failover relay=[203.0.113.21]:25"), 1);
	cr_assert_eq(rx_log_count("relay=[203.0.113.22]:25"), 1, "delivered= names B2");
	assert_clean();
}

Test(relay, a_421_mid_transaction_fails_over_and_a_recipient_refused_before_keeps_its_550)
{
	struct rx_hop *b1 = rx_hop(HOP_B1);
	b1->rcpt[0].addr = "bad@failover.example";
	b1->rcpt[0].reply = "550 5.1.1 no such user";
	b1->rcpt[1].addr = "x@failover.example";
	b1->rcpt[1].reply = "421 4.3.2 shutting down";
	start();
	struct spool_msg *m = fs_add(&(struct fs_msg){
		.rcpt = { "bad@failover.example", "x@failover.example", "y@failover.example" } });
	relay_sched_submit(s, m);
	run_ms(1000);
	cr_assert_eq(fs_state(m, 0), SPOOL_RCPT_FAILED, "B1's 550 stands: no second opinion");
	cr_assert_eq(fs_state(m, 1), SPOOL_RCPT_DELIVERED);
	cr_assert_eq(fs_state(m, 2), SPOOL_RCPT_DELIVERED);
	struct rx_hop *b2 = rx_hop(HOP_B2);
	cr_assert_eq(b2->msgs, 1);
	cr_assert_eq(b2->rcpts, 2, "only the two B1 did not decide");
	cr_assert_eq(b1->msgs, 0);
	cr_assert_eq(fs.injected, 1, "one bounce, for bad@ only");
	cr_assert_eq(C(RELAY_HOP_FAILOVERS), 1);
	cr_assert_eq(C(RELAY_RCPTS_DEFERRED), 0);
	assert_clean();
}

Test(relay, a_connection_lost_after_the_end_of_data_is_deferred_and_no_other_hop_is_tried)
{
	/* RFC 1047: the hop may have queued it; a second hop now would be a sure duplicate */
	rx_hop(HOP_B1)->reset_at_dot = true;
	start();
	struct spool_msg *m = submit1("x@failover.example");
	run_ms(500);
	cr_assert_eq(fs_state(m, 0), SPOOL_RCPT_DEFERRED);
	cr_assert_not_null(strstr(m->reply[0], "lost connection"), "%s", m->reply[0]);
	cr_assert_eq(rx_hop(HOP_B2)->connects, 0, "never another hop in the same attempt");
	cr_assert_eq(C(RELAY_HOP_FAILOVERS), 0);
	cr_assert_eq(rx_hop(HOP_B1)->msgs, 1, "B1 took it (the risk the retry runs)");
	rx_hop(HOP_B1)->reset_at_dot = false;
	run_s(61);
	cr_assert(m->final, "the retry delivers it");
	cr_assert_eq(rx_hop(HOP_B1)->msgs, 2, "the duplicate RFC 1047 accepts, over a loss");
	assert_clean();
}

Test(relay, a_hop_lost_mid_transaction_with_no_hop_left_defers_with_its_reason)
{
	rx_hop(HOP_B1)->reset_at_data = true;
	rx_hop(HOP_B2)->reset_at_data = true;
	start();
	struct spool_msg *m = submit1("x@failover.example");
	run_ms(500);
	cr_assert_eq(fs_state(m, 0), SPOOL_RCPT_DEFERRED);
	cr_assert_not_null(strstr(m->reply[0], "lost connection"), "%s", m->reply[0]);
	cr_assert_eq(rx_hop(HOP_B1)->connects, 1);
	cr_assert_eq(rx_hop(HOP_B2)->connects, 1, "each hop once in the attempt");
	cr_assert_eq(C(RELAY_HOP_FAILOVERS), 1);
	assert_clean();
}

Test(relay, a_hop_that_stops_answering_before_the_end_of_data_times_out_into_the_next_hop)
{
	rx_relay.command_timeout_s = 20; /* the 354's wait: min(command, 2 minutes) */
	rx_hop(HOP_B1)->mute_at_data = true;
	start();
	struct spool_msg *m = submit1("x@failover.example");
	run_s(19);
	cr_assert_eq(fs_state(m, 0), SPOOL_RCPT_PENDING, "still waiting for B1's 354");
	cr_assert_eq(rx_hop(HOP_B2)->connects, 0);
	run_s(2);
	cr_assert_eq(fs_state(m, 0), SPOOL_RCPT_DELIVERED, "B1 never had the content: B2 now");
	cr_assert_eq(rx_hop(HOP_B2)->msgs, 1);
	cr_assert_eq(C(RELAY_HOP_FAILOVERS), 1);
	cr_assert_eq(C(RELAY_RCPTS_DEFERRED), 0);
	assert_clean();
}

Test(relay, the_configured_timeouts_replace_rfc_5321s_minimums)
{
	rx_relay.data_end_timeout_s = 30;
	rx_hop(HOP_A)->mute_at_dot = true;
	start();
	struct spool_msg *m = submit1("bob@example.com");
	run_s(29);
	cr_assert_eq(fs_state(m, 0), SPOOL_RCPT_PENDING);
	run_s(2);
	cr_assert_eq(fs_state(m, 0), SPOOL_RCPT_DEFERRED, "data_end_timeout_s, not 10 minutes");
	cr_assert_not_null(strstr(m->reply[0], "4.4.2 conversation timed out"), "%s", m->reply[0]);
	assert_clean();
}

Test(relay, all_hops_down_defers_every_recipient_and_retries_with_backoff)
{
	rx_hop(HOP_B1)->mode = RX_REFUSE;
	rx_hop(HOP_B2)->mode = RX_REFUSE;
	start();
	struct spool_msg *m = fs_add(&(struct fs_msg){ .rcpt = { "x@failover.example",
								 "y@failover.example" } });
	relay_sched_submit(s, m);
	run_ms(500);
	int64_t t1 = rx_wall();
	cr_assert_eq(fs_state(m, 0), SPOOL_RCPT_DEFERRED);
	cr_assert_eq(fs_state(m, 1), SPOOL_RCPT_DEFERRED);
	cr_assert_not_null(strstr(m->reply[0], "4.4.1"), "%s", m->reply[0]);
	cr_assert_not_null(strstr(m->reply[0], "refused"), "%s", m->reply[0]);
	cr_assert(m->next_attempt >= t1 + 59 && m->next_attempt <= t1 + 60,
		  "first retry after first_interval: %lld vs %lld", (long long)m->next_attempt,
		  (long long)t1);
	cr_assert_eq(C(RELAY_MSGS_DEFERRED), 1);
	cr_assert_eq(rx_log_count("status=deferred"), 2);
	cr_assert_eq(rx_log_count("attempts=1 "), 2);

	run_s(50);
	cr_assert_eq(rx_hop(HOP_B1)->connects + rx_hop(HOP_B2)->connects, 2,
		     "nothing is tried before the next attempt");
	run_s(15);
	int64_t t2 = rx_wall();
	cr_assert_eq(C(RELAY_MSGS_DEFERRED), 2, "tried again at its next attempt");
	cr_assert(m->next_attempt > t2 + 100 && m->next_attempt <= t2 + 120,
		  "the interval doubles: %lld vs %lld", (long long)m->next_attempt, (long long)t2);

	rx_hop(HOP_B2)->mode = RX_ACCEPT;
	run_s(125);
	cr_assert(m->final, "delivered once a hop is back");
	cr_assert_eq(fs_state(m, 0), SPOOL_RCPT_DELIVERED);
	cr_assert_eq(rx_hop(HOP_B2)->msgs, 1);
	cr_assert_eq(rx_log_count("status=delivered"), 2);
	cr_assert_eq(rx_log_count("attempts=3 "), 2, "the third attempt delivered");
	assert_clean();
}

/* ---- retries and bounces ---- */

Test(relay, a_4xx_reply_is_retried_later_and_then_delivered)
{
	struct rx_hop *a = rx_hop(HOP_A);

	a->rcpt[0].addr = "bob@example.com";
	a->rcpt[0].reply = "451 4.3.0 try again later";
	start();
	struct spool_msg *m = submit1("bob@example.com");
	run_ms(500);
	cr_assert_eq(fs_state(m, 0), SPOOL_RCPT_DEFERRED);
	cr_assert_str_eq(m->reply[0], "451 4.3.0 try again later");
	cr_assert_eq(fs.injected, 0, "a deferral bounces nothing");

	a->rcpt[0].addr = NULL;
	run_s(61);
	cr_assert(m->final);
	cr_assert_eq(fs_state(m, 0), SPOOL_RCPT_DELIVERED);
	cr_assert_eq(C(RELAY_RCPTS_DEFERRED), 1);
	cr_assert_eq(C(RELAY_RCPTS_DELIVERED), 1);
	cr_assert_eq(relay_sched_hop_stats(s, 0)->replies_4xx, 1);
	assert_clean();
}

Test(relay, a_5xx_for_one_recipient_bounces_that_recipient_only)
{
	struct rx_hop *a = rx_hop(HOP_A);
	struct spool_env env;
	struct smtp_rcpt r[FS_MAX_RCPTS];
	struct smtp_str content;

	a->rcpt[0].addr = "dave@example.com";
	a->rcpt[0].reply = "550 5.1.1 <dave@example.com>: no such user";
	start();
	struct spool_msg *m = fs_add(&(struct fs_msg){
		.rcpt = { "bob@example.com", "dave@example.com", "carol@example.com" } });
	relay_sched_submit(s, m);
	run_ms(1000);

	cr_assert(m->final);
	cr_assert_eq(fs_state(m, 0), SPOOL_RCPT_DELIVERED);
	cr_assert_eq(fs_state(m, 1), SPOOL_RCPT_FAILED);
	cr_assert_eq(fs_state(m, 2), SPOOL_RCPT_DELIVERED);
	cr_assert_str_eq(m->reply[1], "550 5.1.1 <dave@example.com>: no such user");

	cr_assert_eq(fs.injected, 1, "one DSN");
	struct spool_msg *dsn = fs_injected(0);
	cr_assert_not_null(dsn);
	fs_decode(dsn, &env, r, &content);
	cr_assert_eq(env.sender.len, 0, "a DSN has the null reverse-path (RFC 3464 §1)");
	cr_assert_eq(env.nrcpt, 1);
	cr_assert_eq(r[0].addr.len, strlen("alice@sender.example"));
	cr_assert_eq(memcmp(r[0].addr.p, "alice@sender.example", r[0].addr.len), 0);
	cr_assert(fs_content_has(dsn, "Final-Recipient: rfc822; dave@example.com"));
	cr_assert(fs_content_has(dsn, "Action: failed"));
	cr_assert(fs_content_has(dsn, "Status: 5.1.1"));
	cr_assert(fs_content_has(dsn, "Remote-MTA: dns; [203.0.113.10]"));
	cr_assert(fs_content_has(dsn, "Diagnostic-Code: smtp; 550 5.1.1"));
	cr_assert(!fs_content_has(dsn, "rfc822; bob@example.com"), "delivered ones are not in it");
	cr_assert(!fs_content_has(dsn, "rfc822; carol@example.com"));
	cr_assert(fs_content_has(dsn, "Hello."), "RET not given: the whole original comes back");

	/* the DSN itself is relayed like any message: sender.example goes to the smarthost */
	struct rx_hop *sh = rx_hop(HOP_S);
	cr_assert_eq(sh->msgs, 1);
	cr_assert_str_eq(sh->senders[0], "", "MAIL FROM:<>");
	cr_assert_str_eq(sh->rcpt_to[0], "alice@sender.example");
	cr_assert(dsn->final);
	cr_assert_eq(C(RELAY_DSN_BOUNCES), 1);
	cr_assert_eq(C(RELAY_MSGS_BOUNCED), 1);
	cr_assert_eq(C(RELAY_MSGS_QUEUED), 2, "the original and its DSN");
	cr_assert_eq(rx_log_count("status=bounced"), 1);
	cr_assert_eq(rx_log_count("status=dsn-queued kind=failure"), 1);
	assert_clean();
}

Test(relay, a_failure_is_recorded_only_once_its_bounce_is_durable)
{
	struct rx_hop *a = rx_hop(HOP_A);

	a->rcpt[0].addr = "dave@example.com";
	a->rcpt[0].reply = "550 5.1.1 no such user";
	fs.hold_commits = true;
	start();
	struct spool_msg *m = submit1("dave@example.com");
	run_ms(1000);
	cr_assert_eq(fs.injected, 1);
	cr_assert_eq(fs_state(m, 0), SPOOL_RCPT_PENDING,
		     "a crash now repeats the bounce rather than losing it");
	fs.hold_commits = false;
	run_ms(100);
	cr_assert_eq(fs_state(m, 0), SPOOL_RCPT_FAILED);
	cr_assert(m->final);
	assert_clean();
}

Test(relay, a_bounce_the_spool_cannot_take_leaves_the_recipient_deferred)
{
	struct rx_hop *a = rx_hop(HOP_A);

	a->rcpt[0].addr = "dave@example.com";
	a->rcpt[0].reply = "550 5.1.1 no such user";
	fs.inject_error = -ENOSPC;
	start();
	struct spool_msg *m = submit1("dave@example.com");
	run_ms(1000);
	cr_assert_eq(fs_state(m, 0), SPOOL_RCPT_DEFERRED, "not failed without its bounce");
	cr_assert_eq(C(RELAY_DSN_ERRORS), 1);

	fs.inject_error = 0;
	run_s(61);
	cr_assert_eq(fs_state(m, 0), SPOOL_RCPT_FAILED, "the retry fails it again, with a DSN");
	cr_assert_eq(fs.injected, 1);
	cr_assert_eq(C(RELAY_DSN_BOUNCES), 1);
	assert_clean();
}

Test(relay, a_bounce_whose_commit_fails_leaves_the_recipient_deferred)
{
	struct rx_hop *a = rx_hop(HOP_A);

	a->rcpt[0].addr = "dave@example.com";
	a->rcpt[0].reply = "550 5.1.1 no such user";
	fs.commit_error = -EIO;
	start();
	struct spool_msg *m = submit1("dave@example.com");
	run_ms(1000);
	cr_assert_eq(fs_state(m, 0), SPOOL_RCPT_DEFERRED);
	cr_assert_eq(C(RELAY_DSN_ERRORS), 1);
	assert_clean();
}

Test(relay, the_null_sender_is_never_bounced)
{
	struct rx_hop *a = rx_hop(HOP_A);

	a->rcpt[0].addr = "dave@example.com";
	a->rcpt[0].reply = "550 5.1.1 no such user";
	start();
	struct spool_msg *m = fs_add(&(struct fs_msg){ .sender = "", .rcpt = { "dave@example.com" } });
	relay_sched_submit(s, m);
	run_ms(1000);
	cr_assert(m->final);
	cr_assert_eq(fs_state(m, 0), SPOOL_RCPT_FAILED);
	cr_assert_eq(fs.injected, 0, "RFC 5321 §4.5.5: no bounce to <>");
	cr_assert_eq(C(RELAY_DSN_SUPPRESSED), 1);
	cr_assert_not_null(strstr(rx_hop(HOP_A)->last_mail, "MAIL FROM:<>"));
	assert_clean();
}

Test(relay, notify_never_means_no_bounce)
{
	struct rx_hop *a = rx_hop(HOP_A);

	a->rcpt[0].addr = "dave@example.com";
	a->rcpt[0].reply = "550 5.1.1 no such user";
	start();
	struct spool_msg *m = fs_add(&(struct fs_msg){ .rcpt = { "dave@example.com" },
						       .notify = { SMTP_NOTIFY_NEVER } });
	relay_sched_submit(s, m);
	run_ms(1000);
	cr_assert_eq(fs_state(m, 0), SPOOL_RCPT_FAILED);
	cr_assert_eq(fs.injected, 0, "RFC 3461 §4.1: NOTIFY=NEVER");
	assert_clean();
}

Test(relay, an_unroutable_recipient_fails_5_4_4_and_the_others_are_delivered)
{
	rx_routes.n_smarthost = 0;
	start();
	struct spool_msg *m = fs_add(&(struct fs_msg){ .sender = "alice@example.com",
						       .rcpt = { "bob@example.com",
								 "x@nowhere.example" } });
	relay_sched_submit(s, m);
	run_ms(1000);
	cr_assert(m->final);
	cr_assert_eq(fs_state(m, 0), SPOOL_RCPT_DELIVERED);
	cr_assert_eq(fs_state(m, 1), SPOOL_RCPT_FAILED);
	cr_assert_not_null(strstr(m->reply[1], "5.4.4"), "%s", m->reply[1]);
	cr_assert_eq(C(RELAY_RCPTS_UNROUTABLE), 1);
	cr_assert_eq(fs.injected, 1);
	cr_assert(fs_content_has(fs_injected(0), "Status: 5.4.4"));
	cr_assert_eq(rx_hop(HOP_A)->msgs, 2, "the message, then its DSN to alice@example.com");
	assert_clean();
}

Test(relay, a_message_past_its_lifetime_bounces_with_4_4_7_after_one_delay_warning)
{
	struct rx_hop *a = rx_hop(HOP_A);

	a->rcpt[0].addr = "bob@example.com";
	a->rcpt[0].reply = "451 4.2.0 mailbox busy";
	start();
	struct spool_msg *m = submit1("bob@example.com");
	run_s(1700);
	cr_assert_eq(fs_state(m, 0), SPOOL_RCPT_DEFERRED);
	cr_assert_eq(fs.injected, 0, "no warning before delay_warning");
	run_s(500);
	cr_assert_eq(fs.injected, 1, "one delay warning after 1800 s");
	struct spool_msg *w = fs_injected(0);
	cr_assert(fs_content_has(w, "Action: delayed"));
	cr_assert(fs_content_has(w, "Status: 4.2.0"));
	cr_assert(fs_content_has(w, "Will-Retry-Until:"));
	cr_assert(!fs_content_has(w, "Hello."), "a delay report returns the header only");

	run_s(1450);
	cr_assert(m->final, "the lifetime (3600 s) is over");
	cr_assert_eq(fs_state(m, 0), SPOOL_RCPT_FAILED);
	cr_assert_eq(fs.injected, 2, "still only one warning, then the bounce");
	struct spool_msg *b = fs_injected(1);
	cr_assert(fs_content_has(b, "Action: failed"));
	cr_assert(fs_content_has(b, "Status: 4.4.7"), "RFC 3463 §3.5: delivery time expired");
	cr_assert(fs_content_has(b, "451 4.2.0 mailbox busy"), "the last reply as diagnostic");
	cr_assert_eq(C(RELAY_MSGS_EXPIRED), 1);
	cr_assert_eq(C(RELAY_RCPTS_EXPIRED), 1);
	cr_assert_eq(C(RELAY_DSN_DELAYS), 1);
	cr_assert_eq(C(RELAY_DSN_BOUNCES), 1);
	cr_assert_eq(rx_log_count("status=bounced(expired)"), 1);
	assert_clean();
}

Test(relay, a_recovered_message_waits_for_its_next_attempt_and_owes_no_second_warning)
{
	struct spool_msg *m = fs_add(&(struct fs_msg){ .rcpt = { "bob@example.com" },
						       .received = rx_wall() - 2000 });
	struct rx_hop *a = rx_hop(HOP_A);

	m->st[0] = SPOOL_RCPT_DEFERRED;
	m->next_attempt = rx_wall() + 100;
	a->rcpt[0].addr = "bob@example.com";
	a->rcpt[0].reply = "450 4.2.1 later";
	start();
	relay_sched_submit(s, m);
	run_s(90);
	cr_assert_eq(a->connects, 0, "its next attempt has not come");
	run_s(20);
	cr_assert_eq(a->rcpts, 1, "tried at its next attempt");
	cr_assert_eq(fs_state(m, 0), SPOOL_RCPT_DEFERRED);
	cr_assert_eq(fs.injected, 0, "past the warning time before the restart: no warning now");
	assert_clean();
}

/* ---- the queue ---- */

Test(relay, queue_max_makes_the_relay_congested_and_the_overflow_is_delivered_later)
{
	rx_relay.queue_max = 3;
	start();
	struct spool_msg *m[5];
	for (int i = 0; i < 5; i++) {
		m[i] = submit1("bob@example.com");
		cr_assert_eq(relay_sched_congested(s), i >= 2, "message %d", i);
	}
	cr_assert_eq(C(RELAY_OVERFLOWED), 2, "kept as bare pointers past queue_max");
	run_ms(3000);
	for (int i = 0; i < 5; i++)
		cr_assert(m[i]->final, "message %d", i);
	cr_assert(!relay_sched_congested(s));
	cr_assert_eq(rx_hop(HOP_A)->msgs, 5);
	assert_clean();
}

Test(relay, past_the_overflow_list_a_message_is_left_in_the_spool)
{
	rx_relay.queue_max = 1;
	cfg.overflow_max = 1;
	start();
	submit1("bob@example.com");
	submit1("bob@example.com");
	struct spool_msg *lost = submit1("bob@example.com");
	cr_assert_eq(C(RELAY_OVERFLOW_LOST), 1);
	run_ms(2000);
	cr_assert_eq(rx_hop(HOP_A)->msgs, 2);
	cr_assert(!lost->final, "untouched: the next start's recovery hands it over again");
	assert_clean();
}

Test(relay, reads_are_bounded_and_every_message_still_goes)
{
	cfg.max_loaded = 2;
	fs.max_reads = 1;
	start();
	struct spool_msg *m[6];
	for (int i = 0; i < 6; i++)
		m[i] = submit1("bob@example.com");
	run_ms(3000);
	for (int i = 0; i < 6; i++)
		cr_assert(m[i]->final, "message %d", i);
	cr_assert_eq(fs.reads_peak, 1, "the store's limit holds");
	cr_assert_gt(C(RELAY_READ_BUSY), 0, "-EBUSY is waited out");
	assert_clean();
}

Test(relay, loaded_messages_are_bounded_by_max_loaded)
{
	cfg.max_loaded = 2;
	fs.hold_reads = true;
	start();
	for (int i = 0; i < 6; i++)
		submit1("bob@example.com");
	run_ms(100);
	cr_assert_eq(fs.reads_started, 2);
	cr_assert_eq(C(RELAY_Q_READY), 4, "the rest wait their turn");
	fs.hold_reads = false;
	run_ms(3000);
	cr_assert_eq(rx_hop(HOP_A)->msgs, 6);
	assert_clean();
}

Test(relay, a_read_error_defers_the_message_and_the_read_is_retried)
{
	start();
	struct spool_msg *m = add1("bob@example.com");
	m->read_errors = 1;
	relay_sched_submit(s, m);
	run_ms(500);
	cr_assert(!m->final);
	cr_assert_eq(C(RELAY_READ_ERRORS), 1);
	run_s(61);
	cr_assert(m->final);
	cr_assert_eq(fs_state(m, 0), SPOOL_RCPT_DELIVERED);
	assert_clean();
}

Test(relay, state_records_that_find_no_staging_are_written_later)
{
	fs.state_enobufs = 2;
	start();
	struct spool_msg *m = fs_add(&(struct fs_msg){ .rcpt = { "bob@example.com",
								 "carol@example.com" } });
	relay_sched_submit(s, m);
	run_ms(500);
	cr_assert(m->final);
	cr_assert_eq(fs_state(m, 0), SPOOL_RCPT_DELIVERED);
	cr_assert_eq(fs_state(m, 1), SPOOL_RCPT_DELIVERED);
	cr_assert_eq(C(RELAY_STATE_RETRIES), 2);
	assert_clean();
}

Test(relay, freeing_mid_delivery_closes_connections_and_detaches_dsns)
{
	struct rx_hop *a = rx_hop(HOP_A);

	a->rcpt[0].addr = "dave@example.com";
	a->rcpt[0].reply = "550 5.1.1 no such user";
	fs.hold_commits = true;
	start();
	submit1("dave@example.com");
	submit1("bob@failover.example");
	rx_hop(HOP_B1)->mode = RX_SILENT;
	run_ms(500);
	cr_assert_eq(fs.injected, 1);
	cr_assert_gt(rx_conns_open(), 0);
	relay_sched_free(s);
	s = NULL;
	cr_assert_eq(rx_conns_open(), 0, "every connection closed");
	cr_assert_eq(fs.detached, 1, "the DSN commit no longer calls into the engine");
	fs.hold_commits = false;
	fs_step();
	assert_clean();
}

Test(relay, a_config_the_engine_cannot_use_is_refused)
{
	cfg.retry.lifetime = 0;
	cr_assert_null(relay_sched_new(&cfg));
	rx_config(&cfg, &fs_ops, NULL);
	cfg.helo_name = "bad name with spaces";
	cr_assert_null(relay_sched_new(&cfg), "the SMTP client engine refuses the EHLO name");
	rx_config(&cfg, &fs_ops, NULL);
	rx_relay.queue_max = 0;
	cr_assert_null(relay_sched_new(&cfg));
}

/* ---- new routes while running (a config reload: relay_sched_set_routes()) ---- */

#define HOP_N IP4(203, 0, 113, 30) /* where a reload moves example.com */

static struct cfg_mail_route moved_domains[2];
static struct cfg_routes moved;

/* rx_routes with example.com moved from A to N (A named nowhere any more). */
static const struct cfg_routes *routes_moved(void)
{
	moved = rx_routes;
	memcpy(moved_domains, rx_routes.domains, sizeof(moved_domains));
	moved_domains[0].hops[0].addr = HOP_N;
	moved.domains = moved_domains;
	return &moved;
}

Test(relay, a_deferred_message_retried_after_new_routes_goes_to_the_new_hop)
{
	struct rx_hop *a = rx_hop(HOP_A), *n = rx_hop(HOP_N);

	a->rcpt[0].addr = "bob@example.com";
	a->rcpt[0].reply = "451 4.3.0 try again later";
	start();
	struct spool_msg *m = submit1("bob@example.com");
	run_ms(500);
	cr_assert_eq(fs_state(m, 0), SPOOL_RCPT_DEFERRED, "the first attempt, at A, deferred");
	cr_assert_eq(a->rcpts, 1);

	cr_assert_eq(relay_sched_set_routes(s, routes_moved()), 0);
	cr_assert_eq(relay_sched_n_hops(s), 5, "N added; A kept (its counters, its pool)");
	cr_assert_eq(relay_sched_hop_stats(s, 0)->replies_4xx, 1, "A's counters survive");
	a->rcpt[0].addr = NULL; /* A would take it now: it must not be asked */
	run_s(61);
	cr_assert(m->final);
	cr_assert_eq(fs_state(m, 0), SPOOL_RCPT_DELIVERED);
	cr_assert_eq(n->msgs, 1, "the retry went to the new hop");
	cr_assert_eq(a->msgs, 0);
	cr_assert_eq(a->rcpts, 1, "and A was not asked again");
	cr_assert_eq(relay_sched_hop_stats(s, 4)->rcpts_delivered, 1, "N's own counters");
	cr_assert_eq(rx_log_count("relay=[203.0.113.30]:25"), 1, "logged with the new hop");
	cr_assert_eq(rx_log_count("routes set: 2 domain routes, 5 next hops known"), 1);
	/* and other routes are as they were: the smarthost still takes the rest */
	struct spool_msg *m2 = submit1("zed@elsewhere.example");
	run_ms(500);
	cr_assert_eq(fs_state(m2, 0), SPOOL_RCPT_DELIVERED);
	cr_assert_eq(rx_hop(HOP_S)->msgs, 1);
	assert_clean();
}

Test(relay, an_attempt_under_way_keeps_its_hops_failover_included_across_new_routes)
{
	struct rx_hop *b1 = rx_hop(HOP_B1), *b2 = rx_hop(HOP_B2), *n = rx_hop(HOP_N);
	static struct cfg_mail_route doms[2];
	static struct cfg_routes r2;

	b1->mode = RX_SILENT; /* the first hop's connect hangs for connect_timeout_s (30 s) */
	start();
	struct spool_msg *m = submit1("bob@failover.example");
	run_ms(500);
	cr_assert_eq(b1->connects, 1, "the attempt began at B1");
	cr_assert(!m->final);

	/* failover.example now goes to N alone */
	r2 = rx_routes;
	memcpy(doms, rx_routes.domains, sizeof(doms));
	doms[1].hops[0] = (struct cfg_next_hop){ .addr = HOP_N, .port = 25, .priority = 10,
						 .weight = 1 };
	doms[1].n_hops = 1;
	r2.domains = doms;
	cr_assert_eq(relay_sched_set_routes(s, &r2), 0);
	run_s(31);
	cr_assert(m->final);
	cr_assert_eq(fs_state(m, 0), SPOOL_RCPT_DELIVERED);
	cr_assert_eq(b2->msgs, 1, "the attempt failed over along the hops it began with");
	cr_assert_eq(n->connects, 0, "not to the new table's hop");
	cr_assert_eq(C(RELAY_RCPTS_DEFERRED), 0);

	/* the next message goes by the new table */
	struct spool_msg *m2 = submit1("carol@failover.example");
	run_ms(500);
	cr_assert_eq(fs_state(m2, 0), SPOOL_RCPT_DELIVERED);
	cr_assert_eq(n->msgs, 1);
	cr_assert_eq(b2->msgs, 1);
	cr_assert_eq(b1->connects, 1);
	assert_clean();
}

Test(relay, a_hop_the_new_routes_still_name_keeps_its_pooled_connection)
{
	struct rx_hop *a = rx_hop(HOP_A);
	static struct cfg_mail_route doms[3];
	static struct cfg_routes more;

	start();
	struct spool_msg *m1 = submit1("bob@example.com");
	run_ms(500);
	cr_assert_eq(fs_state(m1, 0), SPOOL_RCPT_DELIVERED);
	cr_assert_eq(a->conns, 1);

	/* a third domain, also to A, and no smarthost: the rest is unroutable now */
	more = rx_routes;
	memcpy(doms, rx_routes.domains, 2 * sizeof(doms[0]));
	doms[2] = (struct cfg_mail_route){
		.domain = { .name = "example.net" },
		.hops = { { .addr = HOP_A, .port = 25, .priority = 10, .weight = 1 } },
		.n_hops = 1,
	};
	more.domains = doms;
	more.n_domains = 3;
	more.n_smarthost = 0;
	cr_assert_eq(relay_sched_set_routes(s, &more), 0);
	cr_assert_eq(relay_sched_n_hops(s), 4, "every hop was known: the same ids");

	struct spool_msg *m2 = submit1("dan@example.net");
	struct spool_msg *m3 = submit1("eve@elsewhere.example");
	run_ms(500);
	cr_assert_eq(fs_state(m2, 0), SPOOL_RCPT_DELIVERED);
	cr_assert_eq(a->conns, 1, "A's idle connection took the new domain's message");
	cr_assert_eq(a->msgs, 2);
	cr_assert_eq(fs_state(m3, 0), SPOOL_RCPT_FAILED, "no smarthost any more: 5.4.4");
	cr_assert_eq(rx_hop(HOP_S)->connects, 0);
	cr_assert_eq(fs.injected, 1, "eve's bounce");
	cr_assert_eq(C(RELAY_RCPTS_UNROUTABLE), 2,
		     "eve, then her bounce to alice@sender.example: no route for that either");
	cr_assert_eq(relay_sched_set_routes(s, NULL), -EINVAL);
	assert_clean();
}

Test(relay, a_hop_whose_tls_policy_new_routes_change_gets_new_connections)
{
	struct rx_hop *a = rx_hop(HOP_A);
	static struct cfg_mail_route doms[2];
	static struct cfg_routes r2;

	start();
	struct spool_msg *m1 = submit1("bob@example.com");
	run_ms(500);
	cr_assert_eq(fs_state(m1, 0), SPOOL_RCPT_DELIVERED);
	cr_assert_eq(a->conns, 1);
	cr_assert_eq(rx_conns_open(), 1, "kept idle, opened under tls: none");

	r2 = rx_routes;
	memcpy(doms, rx_routes.domains, sizeof(doms));
	doms[0].hops[0].tls = CFG_HOP_TLS_MAY; /* A offers no STARTTLS: still clear, but asked */
	r2.domains = doms;
	cr_assert_eq(relay_sched_set_routes(s, &r2), 0);
	struct spool_msg *m2 = submit1("carol@example.com");
	run_ms(500);
	cr_assert_eq(fs_state(m2, 0), SPOOL_RCPT_DELIVERED);
	cr_assert_eq(a->conns, 2, "the connection of the old policy was not reused");
	cr_assert_eq(a->quits, 1, "it left with QUIT");
	cr_assert_eq(C(RELAY_CONNS_RECYCLED), 1);
	/* the same policy again: the new connection is kept and reused */
	cr_assert_eq(relay_sched_set_routes(s, &r2), 0);
	struct spool_msg *m3 = submit1("dan@example.com");
	run_ms(500);
	cr_assert_eq(fs_state(m3, 0), SPOOL_RCPT_DELIVERED);
	cr_assert_eq(a->conns, 2);
	assert_clean();
}

/* ---- the submitter identity (RFC 4954 §5) ---- */

static const char ehlo_auth[] = "PIPELINING\nSIZE 10000000\n8BITMIME\nDSN\nAUTH PLAIN LOGIN\n";

Test(relay, the_submitter_goes_as_auth_to_a_hop_offering_auth_and_is_logged)
{
	rx_hop(HOP_A)->ehlo = ehlo_auth;
	struct spool_msg *m = fs_add(&(struct fs_msg){ .rcpt = { "bob@example.com" },
						       .authid = "carol@mx.example.org" });
	start();
	relay_sched_submit(s, m);
	run_ms(200);
	struct rx_hop *a = rx_hop(HOP_A);
	cr_assert_eq(a->msgs, 1);
	cr_assert_not_null(strstr(a->last_mail, " AUTH=carol@mx.example.org"), "%s", a->last_mail);
	cr_assert_eq(rx_log_count("status=delivered"), 1);
	cr_assert_eq(rx_log_count("auth=<carol@mx.example.org> to=<bob@example.com>"), 1);
	assert_clean();
}

Test(relay, a_message_without_a_submitter_goes_without_auth_and_logs_no_user)
{
	rx_hop(HOP_A)->ehlo = ehlo_auth;
	start();
	submit1("bob@example.com");
	run_ms(200);
	struct rx_hop *a = rx_hop(HOP_A);
	cr_assert_eq(a->msgs, 1);
	cr_assert_null(strstr(a->last_mail, "AUTH="), "%s", a->last_mail);
	cr_assert_eq(rx_log_count("status=delivered"), 1);
	cr_assert_eq(rx_log_count("auth="), 0);
	assert_clean();
}

Test(relay, a_hop_not_offering_auth_gets_no_auth_parameter)
{
	struct spool_msg *m = fs_add(&(struct fs_msg){ .rcpt = { "bob@example.com" },
						       .authid = "carol@mx.example.org" });
	start();
	relay_sched_submit(s, m);
	run_ms(200);
	struct rx_hop *a = rx_hop(HOP_A);
	cr_assert_eq(a->msgs, 1);
	cr_assert_null(strstr(a->last_mail, "AUTH="), "%s", a->last_mail);
	cr_assert_eq(rx_log_count("auth=<carol@mx.example.org>"), 1, "logged all the same");
	assert_clean();
}
