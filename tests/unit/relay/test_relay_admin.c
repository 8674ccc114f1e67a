/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The operator's queue operations on the relay engine (relay_admin.h),
 * against scripted next hops and the in-memory store on a virtual clock:
 * listing and showing what is queued, flush, hold and release (a spool
 * record each, so a restart keeps them), delete (recipients final without
 * delivery and without a bounce), and the errors each one answers.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "dataplane/core/svc.h"
#include "dataplane/relay/relay_admin.h"
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

TestSuite(relay_admin, .init = setup, .fini = teardown);

static void start(void)
{
	s = relay_sched_new(&cfg);
	cr_assert_not_null(s);
}

static void run_ms(uint64_t ms)
{
	rx_run(s, ms, fs_step);
}

static void run_s(uint64_t sec)
{
	run_ms(sec * 1000);
}

/* The hop of example.com answers 451 to RCPT for every recipient named. */
static void tempfail(const char *a0, const char *a1)
{
	struct rx_hop *h = rx_hop(HOP_A);

	h->rcpt[0].addr = a0;
	h->rcpt[0].reply = "451 4.3.0 try again later";
	h->rcpt[1].addr = a1;
	h->rcpt[1].reply = a1 ? "451 4.3.0 try again later" : NULL;
}

static void recover(void)
{
	struct rx_hop *h = rx_hop(HOP_A);

	for (unsigned i = 0; i < RX_RULES; i++)
		h->rcpt[i].addr = NULL;
}

static struct spool_msg *queue1(const char *sender, const char *rcpt)
{
	struct spool_msg *m = fs_add(&(struct fs_msg){ .sender = sender, .rcpt = { rcpt } });

	relay_sched_submit(s, m);
	return m;
}

static unsigned list_all(struct relay_qinfo *out, unsigned max)
{
	uint64_t pos = 0;
	unsigned n = 0;
	struct relay_qinfo qi;

	while (relay_sched_q_next(s, &pos, &qi))
		if (n < max)
			out[n++] = qi;
	return n;
}

Test(relay_admin, a_deferred_message_is_listed_with_its_envelope_reply_and_next_attempt)
{
	struct relay_qinfo q[4];

	tempfail("bob@example.com", NULL);
	start();
	struct spool_msg *m = queue1("alice@sender.example", "bob@example.com");
	run_ms(500);
	cr_assert_eq(list_all(q, 4), 1);
	cr_assert_str_eq(q[0].qid, m->qid);
	cr_assert_eq(q[0].state, RELAY_Q_STATE_DEFERRED);
	cr_assert_str_eq(relay_qstate_names[q[0].state], "deferred");
	cr_assert(q[0].envelope_known);
	cr_assert_str_eq(q[0].sender, "alice@sender.example");
	cr_assert_eq(q[0].nrcpt, 1);
	cr_assert_eq(q[0].pending, 1);
	cr_assert_eq(q[0].size, m->len);
	cr_assert_eq(q[0].failures, 1);
	cr_assert_eq(q[0].next_attempt, rx_wall() + 60, "first retry after 60 s: %lld",
		     (long long)q[0].next_attempt);
	cr_assert_str_eq(q[0].last_reply, "451 4.3.0 try again later");

	struct relay_qrcpt r;
	cr_assert_eq(relay_sched_q_rcpt(s, m->qid, 0, &r), 0);
	cr_assert_str_eq(r.addr, "bob@example.com");
	cr_assert_str_eq(r.state, "deferred");
	cr_assert_eq(r.code, 451);
	cr_assert_eq(relay_sched_q_rcpt(s, m->qid, 1, &r), -ERANGE);
}

Test(relay_admin, a_message_not_read_since_start_is_listed_without_its_envelope)
{
	struct relay_qinfo qi;

	start();
	struct spool_msg *m = fs_add(&(struct fs_msg){ .rcpt = { "bob@example.com" } });
	m->next_attempt = rx_wall() + 600; /* as recovery finds a deferred one */
	relay_sched_submit(s, m);
	run_ms(10);
	cr_assert_eq(relay_sched_q_find(s, m->qid, &qi), 0);
	cr_assert_eq(qi.state, RELAY_Q_STATE_DEFERRED);
	cr_assert_not(qi.envelope_known);
	cr_assert_str_eq(qi.sender, "");
	cr_assert_eq(qi.next_attempt, rx_wall() + 600);
	cr_assert_gt(qi.arrival, 0, "the arrival comes from the queue id");
}

Test(relay_admin, unknown_and_malformed_ids_are_not_found)
{
	struct relay_qinfo qi;
	struct relay_qrcpt r;
	unsigned left;

	start();
	queue1(NULL, "bob@example.com");
	cr_assert_eq(relay_sched_q_find(s, "00000000000000000000", &qi), -ENOENT);
	cr_assert_eq(relay_sched_q_find(s, "short", &qi), -ENOENT);
	cr_assert_eq(relay_sched_q_find(s, "", &qi), -ENOENT);
	cr_assert_eq(relay_sched_q_rcpt(s, "00000000000000000000", 0, &r), -ENOENT);
	cr_assert_eq(relay_sched_q_hold(s, "00000000000000000000"), -ENOENT);
	cr_assert_eq(relay_sched_q_release(s, "00000000000000000000"), -ENOENT);
	cr_assert_eq(relay_sched_q_delete(s, "00000000000000000000", &left), -ENOENT);
}

Test(relay_admin, flush_retries_deferred_messages_now_and_leaves_held_ones)
{
	tempfail("bob@example.com", "carol@example.com");
	start();
	struct spool_msg *a = queue1(NULL, "bob@example.com");
	struct spool_msg *b = queue1(NULL, "carol@example.com");
	run_ms(500);
	cr_assert_eq(fs_state(a, 0), SPOOL_RCPT_DEFERRED);
	cr_assert_eq(fs_state(b, 0), SPOOL_RCPT_DEFERRED);
	cr_assert_eq(relay_sched_q_hold(s, b->qid), 0);

	recover();
	cr_assert_eq(relay_sched_q_flush(s), 1, "one deferred message, one held");
	run_ms(500); /* far before the 60 s retry */
	cr_assert(a->final, "the flushed message went at once");
	cr_assert_eq(fs_state(a, 0), SPOOL_RCPT_DELIVERED);
	cr_assert_not(b->final, "the held one did not move");
	cr_assert_eq(rx_hop(HOP_A)->msgs, 1);
	cr_assert_eq(relay_sched_q_flush(s), 0, "nothing deferred is left");
	cr_assert_eq(fs.misuse, 0);
}

Test(relay_admin, a_held_message_is_not_tried_until_released_and_the_hold_is_a_spool_record)
{
	struct relay_qinfo qi;

	tempfail("bob@example.com", NULL);
	start();
	struct spool_msg *m = queue1(NULL, "bob@example.com");
	run_ms(500);
	cr_assert_eq(relay_sched_q_hold(s, m->qid), 0);
	cr_assert_eq(m->next_attempt, RELAY_HOLD_NEXT, "recovery reads this next attempt back");
	cr_assert_str_eq(m->reply[0], RELAY_HELD_REPLY);
	cr_assert_eq(relay_sched_q_hold(s, m->qid), -EALREADY);
	cr_assert_eq(relay_sched_q_find(s, m->qid, &qi), 0);
	cr_assert_eq(qi.state, RELAY_Q_STATE_HELD);

	recover();
	unsigned conns = rx_hop(HOP_A)->connects;
	run_s(3 * 3600); /* past every retry and the lifetime */
	cr_assert_eq(rx_hop(HOP_A)->connects, conns, "no attempt while held");
	cr_assert_not(m->final);
	cr_assert_eq(fs.injected, 0, "no bounce while held");

	cr_assert_eq(relay_sched_q_release(s, m->qid), 0);
	cr_assert_neq(m->next_attempt, RELAY_HOLD_NEXT, "the release is a record too");
	cr_assert_eq(relay_sched_q_release(s, m->qid), -EINVAL, "not held any more");
	run_ms(500);
	cr_assert(m->final);
	cr_assert_eq(fs.misuse, 0);
	cr_assert_eq(rx_log_count("status=held by=operator"), 1);
	cr_assert_eq(rx_log_count("status=released by=operator"), 1);
}

Test(relay_admin, a_hold_found_by_recovery_keeps_the_message_held)
{
	struct relay_qinfo qi;

	start();
	struct spool_msg *m = fs_add(&(struct fs_msg){ .rcpt = { "bob@example.com" } });
	m->next_attempt = RELAY_HOLD_NEXT; /* what recovery reads back after a hold */
	relay_sched_submit(s, m);
	run_s(600);
	cr_assert_eq(rx_hop(HOP_A)->connects, 0, "a held message is not tried after a restart");
	cr_assert_eq(relay_sched_q_find(s, m->qid, &qi), 0);
	cr_assert_eq(qi.state, RELAY_Q_STATE_HELD);
	cr_assert_eq(relay_sched_q_flush(s), 0, "flush leaves it held");
	cr_assert_eq(relay_sched_q_release(s, m->qid), 0);
	run_ms(500);
	cr_assert(m->final);
	cr_assert_eq(fs_state(m, 0), SPOOL_RCPT_DELIVERED);
}

Test(relay_admin, delete_makes_every_recipient_final_without_delivery_or_bounce)
{
	struct relay_qinfo q[4];
	unsigned left = 99;

	tempfail("bob@example.com", "carol@example.com");
	start();
	struct spool_msg *m = fs_add(&(struct fs_msg){
		.sender = "alice@sender.example", .rcpt = { "bob@example.com", "carol@example.com" } });
	relay_sched_submit(s, m);
	struct spool_msg *keep = queue1(NULL, "dave@example.com");
	run_ms(500);
	cr_assert(keep->final);
	cr_assert_eq(relay_sched_q_delete(s, m->qid, &left), 0);
	cr_assert_eq(left, 0);
	cr_assert(m->final, "the spool lets go of it: recovery will not requeue it");
	for (unsigned i = 0; i < 2; i++) {
		cr_assert_eq(fs_state(m, i), SPOOL_RCPT_FAILED);
		cr_assert_str_eq(m->reply[i], RELAY_DELETED_REPLY);
	}
	recover();
	run_s(3600);
	cr_assert_eq(fs.injected, 0, "no bounce for a deleted message");
	cr_assert_eq(rx_hop(HOP_A)->msgs, 1, "only the other message was delivered");
	cr_assert_eq(list_all(q, 4), 0);
	cr_assert_eq(rx_log_count("status=deleted by=operator nrcpt=2 dsn=none"), 1);
	cr_assert_eq(fs.misuse, 0);
}

Test(relay_admin, a_delete_the_spool_cannot_take_whole_is_finished_by_a_second_delete)
{
	unsigned left = 0;

	tempfail("bob@example.com", "carol@example.com");
	start();
	struct spool_msg *m = fs_add(&(struct fs_msg){
		.rcpt = { "bob@example.com", "carol@example.com", "erin@example.com" } });
	rx_hop(HOP_A)->rcpt[2].addr = "erin@example.com";
	rx_hop(HOP_A)->rcpt[2].reply = "451 4.3.0 later";
	relay_sched_submit(s, m);
	run_ms(500);
	cr_assert_eq(fs_state(m, 0), SPOOL_RCPT_DEFERRED);
	/* the spool has no staging for the first record */
	fs.state_enobufs = 1;
	cr_assert_eq(relay_sched_q_delete(s, m->qid, &left), -ENOBUFS);
	cr_assert_eq(left, 3, "nothing was taken");
	cr_assert_not(m->final);
	struct relay_qinfo qi;
	cr_assert_eq(relay_sched_q_find(s, m->qid, &qi), 0, "still queued");
	cr_assert_eq(qi.state, RELAY_Q_STATE_DEFERRED);
	cr_assert_eq(relay_sched_q_delete(s, m->qid, &left), 0);
	cr_assert(m->final);
	cr_assert_eq(fs.misuse, 0);
}

Test(relay_admin, a_message_being_delivered_cannot_be_held_or_deleted_until_the_attempt_ends)
{
	unsigned left;

	rx_hop(HOP_A)->mute_at_dot = true; /* the attempt stays open */
	start();
	struct spool_msg *m = queue1(NULL, "bob@example.com");
	run_ms(200);
	struct relay_qinfo qi;
	cr_assert_eq(relay_sched_q_find(s, m->qid, &qi), 0);
	cr_assert_eq(qi.state, RELAY_Q_STATE_DELIVERING);
	cr_assert_eq(relay_sched_q_hold(s, m->qid), -EBUSY);
	cr_assert_eq(relay_sched_q_delete(s, m->qid, &left), -EBUSY);
	cr_assert_eq(relay_sched_q_release(s, m->qid), -EINVAL);
	cr_assert_eq(fs.misuse, 0);
}

Test(relay_admin, the_list_cursor_walks_every_message_once)
{
	struct relay_qinfo qi;
	char seen[8][24];
	uint64_t pos = 0;
	unsigned n = 0;

	tempfail("bob@example.com", NULL);
	start();
	for (unsigned i = 0; i < 5; i++)
		queue1(NULL, "bob@example.com");
	run_ms(500);
	while (relay_sched_q_next(s, &pos, &qi)) {
		cr_assert_lt(n, 5);
		for (unsigned k = 0; k < n; k++)
			cr_assert_str_neq(seen[k], qi.qid, "listed twice");
		snprintf(seen[n++], sizeof(seen[0]), "%s", qi.qid);
	}
	cr_assert_eq(n, 5);
	cr_assert_not(relay_sched_q_next(s, &pos, &qi), "past the end stays at the end");
}

/* ---- the pages telemetry sends (relay_admin_page) ---- */

static const struct dp_svc_val *col(const struct dp_svc_page *p, unsigned r, const char *key)
{
	for (unsigned c = 0; c < p->ncols[r]; c++)
		if (strcmp(p->rows[r][c].key, key) == 0)
			return &p->rows[r][c];
	cr_assert_fail("row %u has no '%s'", r, key);
	return NULL;
}

Test(relay_admin, a_long_queue_is_listed_in_pages_that_name_the_next_cursor)
{
	static struct dp_svc_page p;
	static char seen[40][DP_SVC_STR_MAX];
	unsigned n = 0, pages = 0;

	tempfail("bob@example.com", NULL);
	start();
	for (unsigned i = 0; i < 40; i++)
		queue1(NULL, "bob@example.com");
	run_ms(1000);
	uint64_t cursor = 0;
	do {
		memset(&p, 0, sizeof(p));
		p.op = DP_SVC_QUEUE_LIST;
		p.cursor = cursor;
		cr_assert_eq(relay_admin_page(s, &p), 0);
		cr_assert_gt(p.nrows, 0);
		for (unsigned r = 0; r < p.nrows; r++) {
			cr_assert_lt(n, 40);
			snprintf(seen[n], sizeof(seen[n]), "%s", col(&p, r, "id")->s);
			for (unsigned k = 0; k < n; k++)
				cr_assert_str_neq(seen[k], seen[n], "listed twice");
			n++;
			cr_assert_str_eq(col(&p, r, "state")->s, "deferred");
			cr_assert_str_eq(col(&p, r, "last_reply")->s, "451 4.3.0 try again later");
		}
		cursor = p.next[p.nrows - 1];
		pages++;
	} while (cursor != DP_SVC_END);
	cr_assert_eq(n, 40, "every message once: %u", n);
	cr_assert_eq(pages, 2, "32 rows, then 8");
}

Test(relay_admin, show_pages_the_message_then_its_recipients_and_refusals_say_why)
{
	static struct dp_svc_page p;

	tempfail("bob@example.com", NULL);
	start();
	struct spool_msg *m = fs_add(&(struct fs_msg){
		.sender = "alice@sender.example", .rcpt = { "bob@example.com", "carol@example.com" } });
	relay_sched_submit(s, m);
	run_ms(500);
	memset(&p, 0, sizeof(p));
	p.op = DP_SVC_QUEUE_SHOW;
	snprintf(p.arg, sizeof(p.arg), "%s", m->qid);
	cr_assert_eq(relay_admin_page(s, &p), 0);
	cr_assert_eq(p.nrows, 3);
	cr_assert_str_eq(col(&p, 0, "kind")->s, "message");
	cr_assert_str_eq(col(&p, 0, "sender")->s, "alice@sender.example");
	cr_assert_eq(col(&p, 0, "pending")->i, 1, "carol was delivered");
	cr_assert_str_eq(col(&p, 1, "addr")->s, "bob@example.com");
	cr_assert_str_eq(col(&p, 1, "state")->s, "deferred");
	cr_assert_str_eq(col(&p, 2, "addr")->s, "carol@example.com");
	cr_assert_str_eq(col(&p, 2, "state")->s, "delivered");
	cr_assert_eq(col(&p, 2, "code")->i, 250);
	cr_assert_eq(p.next[0], 1);
	cr_assert_eq(p.next[2], DP_SVC_END);
	/* a later page starts at the recipient the cursor names */
	memset(&p, 0, sizeof(p));
	p.op = DP_SVC_QUEUE_SHOW;
	p.cursor = 2;
	snprintf(p.arg, sizeof(p.arg), "%s", m->qid);
	cr_assert_eq(relay_admin_page(s, &p), 0);
	cr_assert_eq(p.nrows, 1);
	cr_assert_str_eq(col(&p, 0, "addr")->s, "carol@example.com");

	memset(&p, 0, sizeof(p));
	p.op = DP_SVC_QUEUE_RELEASE;
	snprintf(p.arg, sizeof(p.arg), "%s", m->qid);
	cr_assert_eq(relay_admin_page(s, &p), -EINVAL);
	char want[128];
	snprintf(want, sizeof(want), "message %s is not held", m->qid);
	cr_assert_str_eq(p.error, want);
	memset(&p, 0, sizeof(p));
	p.op = DP_SVC_QUEUE_HOLD;
	snprintf(p.arg, sizeof(p.arg), "00000000000000000000");
	cr_assert_eq(relay_admin_page(s, &p), -ENOENT);
	cr_assert_str_eq(p.error, "no message 00000000000000000000 in this worker's queue");
}

static int finished_rc = 1;
static unsigned finished;

static void on_finish(void *arg, int rc)
{
	(void)arg;
	finished_rc = rc;
	finished++;
}

Test(relay_admin, show_reads_back_the_envelope_of_a_message_not_read_since_start)
{
	static struct dp_svc_page p;
	struct relay_qinfo qi;

	start();
	struct spool_msg *m = fs_add(&(struct fs_msg){
		.sender = "alice@sender.example", .rcpt = { "bob@example.com" } });
	m->next_attempt = rx_wall() + 600; /* as recovery finds a deferred one */
	relay_sched_submit(s, m);
	run_ms(10);
	cr_assert_eq(relay_sched_q_find(s, m->qid, &qi), 0);
	cr_assert_not(qi.envelope_known);

	memset(&p, 0, sizeof(p));
	p.op = DP_SVC_QUEUE_SHOW;
	snprintf(p.arg, sizeof(p.arg), "%s", m->qid);
	cr_assert_eq(relay_admin_page_async(s, &p, on_finish, NULL), -EINPROGRESS);
	cr_assert_eq(finished, 0, "the read completes later");
	run_ms(10);
	cr_assert_eq(finished, 1);
	cr_assert_eq(finished_rc, 0);
	cr_assert_eq(p.nrows, 2);
	cr_assert_eq(col(&p, 0, "envelope_known")->i, 1);
	cr_assert_str_eq(col(&p, 0, "sender")->s, "alice@sender.example");
	cr_assert_str_eq(col(&p, 0, "state")->s, "deferred");
	cr_assert_str_eq(col(&p, 1, "addr")->s, "bob@example.com");
	cr_assert_str_eq(col(&p, 1, "state")->s, "pending");
	cr_assert_eq(rx_hop(HOP_A)->connects, 0, "reading it back is no delivery attempt");
	cr_assert_eq(relay_sched_q_find(s, m->qid, &qi), 0);
	cr_assert(qi.envelope_known, "the list knows it from now on");

	/* known now: answered at once */
	memset(&p, 0, sizeof(p));
	p.op = DP_SVC_QUEUE_SHOW;
	snprintf(p.arg, sizeof(p.arg), "%s", m->qid);
	cr_assert_eq(relay_admin_page_async(s, &p, on_finish, NULL), 0);
	cr_assert_eq(finished, 1);
}

Test(relay_admin, a_read_in_flight_at_free_finishes_the_show_as_cancelled)
{
	static struct dp_svc_page p;

	start();
	struct spool_msg *m = fs_add(&(struct fs_msg){ .rcpt = { "bob@example.com" } });
	m->next_attempt = rx_wall() + 600;
	relay_sched_submit(s, m);
	run_ms(10);
	fs.hold_reads = true;
	memset(&p, 0, sizeof(p));
	p.op = DP_SVC_QUEUE_SHOW;
	snprintf(p.arg, sizeof(p.arg), "%s", m->qid);
	finished = 0;
	cr_assert_eq(relay_admin_page_async(s, &p, on_finish, NULL), -EINPROGRESS);
	fs.hold_reads = false;
	relay_sched_free(s); /* drains the read */
	s = NULL;
	cr_assert_eq(finished, 1);
	cr_assert_eq(finished_rc, -ECANCELED);
}
