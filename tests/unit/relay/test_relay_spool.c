/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The relay engine on a real spool shard (relay_spool.c over spool.h, with
 * io_uring in a temporary directory) and scripted next hops: what it
 * delivers, bounces and defers is what the shard has on disk after a
 * restart -- nothing left for a delivered or bounced message, the deferral
 * and its next attempt for a deferred one -- and a DSN it spools is a
 * message of the shard like any other.
 */
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "dataplane/relay/relay_spool.h"
#include "relay_fixture.h"
#include "spool/fixture.h"

static char *dir;
static struct spool_shard *sh;
static struct relay_spool rs;
static struct relay_sched *s;
static struct relay_sched_config cfg;
static struct fx_requeued requeued;

static uint64_t clock_us(void *arg)
{
	(void)arg;
	return rx_now; /* the fixture's clock counts µs */
}

static void open_shard(void)
{
	struct spool_config c;
	struct spool_recovery rep;

	fx_config(&c, dir);
	c.requeue = fx_requeue;
	c.requeue_arg = &requeued;
	memset(&requeued, 0, sizeof(requeued));
	sh = spool_shard_open(&c, &rep);
	cr_assert_not_null(sh, "open: %s", rep.error);
	rs = (struct relay_spool){ .sh = sh, .clock_us = clock_us };
}

static void close_shard(void)
{
	spool_shard_close(sh);
	sh = NULL;
}

static void setup(void)
{
	rx_setup();
	dir = fx_tmpdir();
	open_shard();
	rx_config(&cfg, &relay_spool_ops, &rs);
}

static void teardown(void)
{
	relay_sched_free(s);
	s = NULL;
	spool_shard_close(sh);
	sh = NULL;
	fx_rmtree(dir);
	free(dir);
	rx_teardown();
}

TestSuite(relay_spool, .init = setup, .fini = teardown);

/*
 * One step of the shard for the fixture's loop: submit what is due on the
 * virtual clock, then wait (in real time) for io_uring to finish it, so
 * the virtual clock never runs ahead of the disk.
 */
static unsigned shard_step(void)
{
	unsigned n = spool_poll(sh, rx_now);

	for (unsigned i = 0; i < 2000000 && spool_inflight(sh) > 0; i++) {
		n += spool_poll(sh, rx_now);
		sched_yield();
	}
	return n;
}

static void run_ms(uint64_t ms)
{
	rx_run(s, ms, shard_step);
}

struct committed {
	unsigned n;
	int status;
	struct spool_msg *m;
};

static void on_commit(void *cookie, int status, struct spool_msg *m)
{
	struct committed *c = cookie;

	c->n++;
	c->status = status;
	c->m = m;
}

/* Spools a small text message from alice@sender.example to RCPTS (NULL-terminated). */
static struct spool_msg *spool_msg(const char *const *rcpts)
{
	static const char content[] = "Received: from client.example ([198.51.100.7])\r\n"
				      "\tby mx.example.org with ESMTP\r\n"
				      "Subject: spooled\r\n\r\nA line.\r\n";
	struct smtp_rcpt r[8];
	unsigned n = 0;

	while (rcpts[n] != NULL) {
		r[n] = (struct smtp_rcpt){ .addr = { (const uint8_t *)rcpts[n], strlen(rcpts[n]) } };
		n++;
	}
	struct spool_env env = {
		.received = rx_wall(),
		.protocol = { (const uint8_t *)"ESMTP", 5 },
		.client = { (const uint8_t *)"[198.51.100.7]", 14 },
		.helo = { (const uint8_t *)"client.example", 14 },
		.sender = { (const uint8_t *)"alice@sender.example", 20 },
		.nrcpt = n,
		.rcpt = r,
	};
	struct smtp_qid_gen g;
	smtp_qid_init(&g, 1, 77);
	smtp_qid_next(&g, (uint64_t)env.received, env.queue_id);
	struct spool_tx *tx;
	cr_assert_eq(spool_begin(sh, &env, sizeof(content) - 1, &tx), 0);
	cr_assert_eq(spool_append(sh, tx, content, sizeof(content) - 1), 0);
	struct committed c = { 0 };
	spool_commit(sh, tx, rx_now, on_commit, &c);
	for (unsigned i = 0; i < 100 && c.n == 0; i++) {
		rx_now += 1000;
		shard_step();
	}
	cr_assert_eq(c.n, 1);
	cr_assert_eq(c.status, 0);
	return c.m;
}

Test(relay_spool, delivered_and_bounced_messages_leave_nothing_to_recover)
{
	struct rx_hop *a = rx_hop(HOP_A);

	a->rcpt[0].addr = "dave@example.com";
	a->rcpt[0].reply = "550 5.1.1 no such user";
	struct spool_msg *m = spool_msg((const char *const[]){ "bob@example.com",
							       "dave@example.com", NULL });
	s = relay_sched_new(&cfg);
	cr_assert_not_null(s);
	relay_sched_submit(s, m);
	run_ms(2000);

	cr_assert_eq(a->msgs, 1, "bob's copy");
	cr_assert_eq(a->content_len, strlen("Received: from client.example ([198.51.100.7])\r\n"
					    "\tby mx.example.org with ESMTP\r\n"
					    "Subject: spooled\r\n\r\nA line.\r\n"));
	struct rx_hop *smart = rx_hop(HOP_S);
	cr_assert_eq(smart->msgs, 1, "the DSN went to alice via the smarthost");
	cr_assert_str_eq(smart->senders[0], "");
	cr_assert_not_null(memmem(smart->content, smart->content_len, "dave@example.com", 16));
	const struct relay_stats *st = relay_sched_stats(s);
	cr_assert_eq(st->c[RELAY_MSGS_BOUNCED], 1);
	cr_assert_eq(st->c[RELAY_MSGS_DELIVERED], 1, "the DSN");
	cr_assert_eq(st->c[RELAY_READ_ERRORS], 0);
	cr_assert_eq(spool_stats(sh)->messages_live, 0, "both final in the shard");

	relay_sched_free(s);
	s = NULL;
	close_shard();
	open_shard();
	cr_assert_eq(requeued.n, 0, "a restart finds nothing to deliver again");
}

Test(relay_spool, a_deferred_message_comes_back_after_a_restart_at_its_next_attempt)
{
	struct rx_hop *a = rx_hop(HOP_A);

	a->rcpt[0].addr = "bob@example.com";
	a->rcpt[0].reply = "451 4.3.0 later";
	struct spool_msg *m = spool_msg((const char *const[]){ "bob@example.com", NULL });
	char qid[SMTP_QID_LEN + 1];
	memcpy(qid, spool_msg_queue_id(m), sizeof(qid));
	s = relay_sched_new(&cfg);
	cr_assert_not_null(s);
	relay_sched_submit(s, m);
	run_ms(1000);
	int64_t next = spool_msg_next_attempt(m);
	cr_assert(next >= rx_wall() + 58 && next <= rx_wall() + 60, "next %lld now %lld",
		  (long long)next, (long long)rx_wall());

	/* a restart: the engine and the shard go, the shard's recovery hands it back */
	relay_sched_free(s);
	s = NULL;
	close_shard();
	open_shard();
	cr_assert_eq(requeued.n, 1);
	cr_assert_str_eq(requeued.qid[0], qid);
	cr_assert_eq(spool_msg_next_attempt(requeued.m[0]), next, "the deferral was durable");

	a->rcpt[0].addr = NULL;
	s = relay_sched_new(&cfg);
	cr_assert_not_null(s);
	relay_sched_submit(s, requeued.m[0]);
	run_ms(30000);
	cr_assert_eq(a->msgs, 0, "not before its next attempt");
	run_ms(31000);
	cr_assert_eq(a->msgs, 1);
	cr_assert_eq(spool_stats(sh)->messages_live, 0);

	relay_sched_free(s);
	s = NULL;
	close_shard();
	open_shard();
	cr_assert_eq(requeued.n, 0);
}
