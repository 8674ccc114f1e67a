/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mxgate-control's sampler against a fake dataplane: a SOCK_SEQPACKET server
 * in the test that greets like DPDK's telemetry and answers /mxgate/...
 * commands from a table. A sample reads every worker's page of
 * /mxgate/stats (DPDK 22.11 caps one reply at 16 KiB, so the whole table is
 * never asked for), sums the total itself, and is handed over whole or not at
 * all: a page that is an error, null or shaped unlike the others fails it.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "control/common/log.h"
#include "control/daemon/tel.h"

#define MAX_SEEN 64

struct fake {
	char dir[64];
	char path[108];
	int lfd, cfd;
	unsigned workers;	 /* what /mxgate/info says; 0: leave "workers" out */
	int error_page;		 /* this page answers {"error": ...}; -1: none */
	int odd_page;		 /* this page has a counter the others lack; -1: none */
	bool gauges_null;	 /* /mxgate/gauges answers null (an unknown command) */
	char seen[MAX_SEEN][64]; /* commands received, in order */
	unsigned n_seen;
};

struct result {
	unsigned samples;
	json_t *info, *stats, *gauges, *ports; /* of the latest sample */
	unsigned downs;
};

static struct fake f;
static struct result res;

static void on_sample(void *ctx, uint64_t now, json_t *info, json_t *stats, json_t *gauges,
		      json_t *ports)
{
	struct result *r = ctx;

	(void)now;
	r->samples++;
	json_decref(r->info);
	json_decref(r->stats);
	json_decref(r->gauges);
	json_decref(r->ports);
	r->info = json_deep_copy(info);
	r->stats = json_deep_copy(stats);
	r->gauges = json_deep_copy(gauges);
	r->ports = json_deep_copy(ports);
}

static void on_state(void *ctx, bool up)
{
	struct result *r = ctx;

	if (!up)
		r->downs++;
}

static void setup(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	mx_log_open("test_ctl_tel", NULL);
	mx_log_set_level(CFG_LOG_ERROR); /* the sampler's warnings are what we check, not print */
	memset(&f, 0, sizeof(f));
	memset(&res, 0, sizeof(res));
	f.workers = 4;
	f.error_page = -1;
	f.odd_page = -1;
	f.cfd = -1;
	snprintf(f.dir, sizeof(f.dir), "/tmp/test_ctl_tel.XXXXXX");
	cr_assert_not_null(mkdtemp(f.dir));
	snprintf(f.path, sizeof(f.path), "%s/dpdk_telemetry.v2", f.dir);
	f.lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0);
	cr_assert_geq(f.lfd, 0);
	memcpy(sa.sun_path, f.path, strlen(f.path) + 1);
	cr_assert_eq(bind(f.lfd, (struct sockaddr *)&sa, sizeof(sa)), 0, "%s", strerror(errno));
	cr_assert_eq(listen(f.lfd, 1), 0);
}

static void teardown(void)
{
	if (f.cfd >= 0)
		close(f.cfd);
	close(f.lfd);
	unlink(f.path);
	rmdir(f.dir);
	json_decref(res.info);
	json_decref(res.stats);
	json_decref(res.gauges);
	json_decref(res.ports);
	mx_log_close();
}

TestSuite(ctl_tel, .init = setup, .fini = teardown);

static void say(const char *msg)
{
	cr_assert_eq(send(f.cfd, msg, strlen(msg), 0), (ssize_t)strlen(msg));
}

/* The fake dataplane's answer to CMD, as DPDK shapes it: {"<command>": value}. */
static void answer(const char *cmd)
{
	char buf[1024];
	unsigned page;

	if (strcmp(cmd, "/mxgate/info") == 0) {
		if (f.workers != 0)
			snprintf(buf, sizeof(buf),
				 "{\"/mxgate/info\":{\"version\":\"0.1.0\",\"workers\":%u,"
				 "\"uptime_s\":5}}",
				 f.workers);
		else
			snprintf(buf, sizeof(buf),
				 "{\"/mxgate/info\":{\"version\":\"0.1.0\",\"uptime_s\":5}}");
	} else if (sscanf(cmd, "/mxgate/stats,%u", &page) == 1) {
		if ((int)page == f.error_page)
			snprintf(buf, sizeof(buf),
				 "{\"/mxgate/stats\":{\"error\":\"no such row: give a worker "
				 "number from 0 to 1, or total\"}}");
		else
			snprintf(buf, sizeof(buf),
				 "{\"/mxgate/stats\":{\"rx_packets\":%u,\"drop_eth_runt\":%u%s}}",
				 10 * (page + 1), page,
				 (int)page == f.odd_page ? ",\"extra\":1" : "");
	} else if (strcmp(cmd, "/mxgate/gauges") == 0) {
		size_t off = 0;

		if (f.gauges_null) {
			say("{\"/mxgate/gauges\":null}");
			return;
		}
		off += (size_t)snprintf(buf, sizeof(buf), "{\"/mxgate/gauges\":{");
		for (unsigned w = 0; w < f.workers; w++)
			off += (size_t)snprintf(buf + off, sizeof(buf) - off,
						"\"worker%u\":{\"smtp_sessions_open\":%u},", w, w);
		snprintf(buf + off, sizeof(buf) - off, "\"total\":{\"smtp_sessions_open\":%u}}}",
			 f.workers * (f.workers - 1) / 2);
	} else if (strcmp(cmd, "/mxgate/ports") == 0) {
		snprintf(buf, sizeof(buf),
			 "{\"/mxgate/ports\":{\"port0\":{\"name\":\"tap0\",\"ipackets\":3}}}");
	} else {
		cr_assert_fail("the sampler asked for %s", cmd);
	}
	say(buf);
}

/* The fake's side of one round: accept and greet, then answer what came. */
static void serve(void)
{
	char cmd[64];
	ssize_t n;

	if (f.cfd < 0) {
		f.cfd = accept4(f.lfd, NULL, NULL, SOCK_NONBLOCK);
		if (f.cfd >= 0)
			say("{\"version\":\"DPDK 22.11.0\",\"pid\":4242,\"max_output_len\":16384}");
		return;
	}
	while ((n = recv(f.cfd, cmd, sizeof(cmd) - 1, 0)) > 0) {
		cmd[n] = '\0';
		cr_assert_lt(f.n_seen, MAX_SEEN);
		snprintf(f.seen[f.n_seen++], sizeof(f.seen[0]), "%s", cmd);
		answer(cmd);
	}
}

/* ROUNDS of the daemon's loop, a millisecond apart from *NOW on. */
static void pump(struct tel *t, uint64_t *now, unsigned rounds)
{
	for (unsigned i = 0; i < rounds; i++) {
		short rev = 0;

		if (tel_fd(t) >= 0) {
			struct pollfd p = { .fd = tel_fd(t), .events = POLLIN };

			if (poll(&p, 1, 0) > 0)
				rev = p.revents;
		}
		tel_run(t, *now, rev);
		serve();
		*now += 1;
	}
}

static long long cell(json_t *table, const char *row, const char *col)
{
	json_t *v = json_object_get(json_object_get(table, row), col);

	cr_assert(json_is_integer(v), "no %s.%s", row, col);
	return json_integer_value(v);
}

Test(ctl_tel, a_sample_reads_each_worker_s_page_and_sums_the_total_itself)
{
	struct tel *t = tel_new(f.path, 100, on_sample, on_state, &res);
	uint64_t now = 1000;
	static const char *const want[] = { "/mxgate/info",    "/mxgate/stats,0", "/mxgate/stats,1",
					    "/mxgate/stats,2", "/mxgate/stats,3", "/mxgate/gauges",
					    "/mxgate/ports" };

	pump(t, &now, 30);
	cr_assert(tel_up(t));
	cr_assert_eq(res.samples, 1);
	cr_assert_eq(f.n_seen, 7, "asked %u commands", f.n_seen);
	for (unsigned i = 0; i < 7; i++)
		cr_assert_str_eq(f.seen[i], want[i], "command %u", i);
	/* never the whole table: it may exceed one reply */
	cr_assert_eq(json_object_size(res.stats), 5);
	cr_assert_eq(cell(res.stats, "worker0", "rx_packets"), 10);
	cr_assert_eq(cell(res.stats, "worker3", "rx_packets"), 40);
	cr_assert_eq(cell(res.stats, "total", "rx_packets"), 100);
	cr_assert_eq(cell(res.stats, "total", "drop_eth_runt"), 0 + 1 + 2 + 3);
	cr_assert_str_eq(
		json_object_iter_key(json_object_iter(json_object_get(res.stats, "total"))),
		"rx_packets", "the total keeps the dataplane's counter order");
	cr_assert_eq(cell(res.gauges, "worker2", "smtp_sessions_open"), 2);
	cr_assert_eq(cell(res.gauges, "total", "smtp_sessions_open"), 6);
	cr_assert_eq(cell(res.ports, "port0", "ipackets"), 3);
	cr_assert_eq(json_integer_value(json_object_get(res.info, "workers")), 4);
	cr_assert_eq(tel_sample_errors(t), 0);
	cr_assert_str_eq(tel_sample_error(t), "");
	tel_free(t);
}

Test(ctl_tel, one_worker_reads_one_page)
{
	struct tel *t = tel_new(f.path, 100, on_sample, on_state, &res);
	uint64_t now = 1000;

	f.workers = 1;
	pump(t, &now, 20);
	cr_assert_eq(res.samples, 1);
	cr_assert_eq(f.n_seen, 4);
	cr_assert_str_eq(f.seen[1], "/mxgate/stats,0");
	cr_assert_eq(cell(res.stats, "total", "rx_packets"), 10);
	tel_free(t);
}

Test(ctl_tel, a_page_answered_with_an_error_fails_the_sample_in_the_dataplane_s_words)
{
	struct tel *t = tel_new(f.path, 100, on_sample, on_state, &res);
	uint64_t now = 1000;

	f.error_page = 2;
	pump(t, &now, 30);
	cr_assert_eq(res.samples, 0, "a sample without worker2's row was handed over");
	cr_assert_eq(tel_sample_errors(t), 1);
	cr_assert_str_eq(tel_sample_error(t),
			 "/mxgate/stats,2: the dataplane says: no such row: give a worker number "
			 "from 0 to 1, or total");
	cr_assert_str_eq(f.seen[f.n_seen - 1], "/mxgate/stats,2", "it stops at the bad page");
	cr_assert(tel_up(t), "a failed sample is not a lost link");

	/* the next sample, with every page good, goes through and clears the reason */
	f.error_page = -1;
	now += 100;
	pump(t, &now, 30);
	cr_assert_eq(res.samples, 1);
	cr_assert_str_eq(tel_sample_error(t), "");
	cr_assert_eq(res.downs, 0);
	tel_free(t);
}

Test(ctl_tel, pages_with_different_counters_fail_the_sample)
{
	struct tel *t = tel_new(f.path, 100, on_sample, on_state, &res);
	uint64_t now = 1000;

	f.odd_page = 3;
	pump(t, &now, 30);
	cr_assert_eq(res.samples, 0);
	cr_assert_str_eq(tel_sample_error(t),
			 "/mxgate/stats,3: its counters differ from worker0's");
	tel_free(t);
}

Test(ctl_tel, an_info_without_workers_fails_the_sample)
{
	struct tel *t = tel_new(f.path, 100, on_sample, on_state, &res);
	uint64_t now = 1000;

	f.workers = 0;
	pump(t, &now, 20);
	cr_assert_eq(res.samples, 0);
	cr_assert_eq(f.n_seen, 1, "no page is asked without knowing how many there are");
	cr_assert_str_eq(tel_sample_error(t),
			 "/mxgate/info: \"workers\" is not a number from 1 to 256");
	tel_free(t);
}

Test(ctl_tel, a_command_the_dataplane_lacks_fails_the_sample)
{
	struct tel *t = tel_new(f.path, 100, on_sample, on_state, &res);
	uint64_t now = 1000;

	f.gauges_null = true;
	pump(t, &now, 30);
	cr_assert_eq(res.samples, 0);
	cr_assert_str_eq(tel_sample_error(t),
			 "/mxgate/gauges: the dataplane could not answer (null)");
	tel_free(t);
}
