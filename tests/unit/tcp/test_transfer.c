/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Byte-exact transfers between two stacks over the simulated link: sizes from
 * 1 byte to 64 MiB, both directions, loss up to 10 %, duplication,
 * reordering, delay and a bandwidth limit, hundreds of connections at once.
 * Every connection must end cleanly; the same seed gives the same run.
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <rte_ip.h>

#include "dataplane/tcp/tcp_priv.h" /* the send-queue lookup counters */
#include "link.h"

#define PORT 2525
#define CHUNK 1800 /* bytes per mbuf the applications send */

/* The byte at OFFSET of the stream of connection ID in direction DIR. */
static inline uint8_t pattern(uint32_t id, int dir, uint64_t off)
{
	uint64_t x = (off / 8) * 0x9e3779b97f4a7c15ull ^ ((uint64_t)id << 32) ^ (uint64_t)dir << 63;
	x ^= x >> 29;
	return (uint8_t)(x >> (8 * (off % 8)));
}

/* One end of one test connection. */
struct end {
	struct test *t;
	struct tcp_conn *c;
	uint32_t id;
	int dir;          /* 0: client to server data, 1: server to client */
	uint64_t to_send, sent;
	uint64_t to_recv, recvd;
	uint64_t mismatches;
	bool shut, peer_fin, closed;
	enum tcp_close_reason reason;
};

/*
 * How the applications cut their streams: each tcp_send() is a chain of
 * PER_SEND mbufs whose sizes take SIZES in turn (none: one mbuf of CHUNK).
 */
struct cut {
	const uint16_t *sizes;
	unsigned n_sizes, per_send;
};

struct test {
	struct link l;
	unsigned n;
	struct end *cli, *srv;
	unsigned srv_accepted;
	uint64_t up, down; /* bytes each way per connection */
	const struct cut *cut;
	unsigned next_size; /* the next entry of cut->sizes */
};

/* The next chain to send for E, at most LEFT bytes; NULL when the pool is dry. */
static struct rte_mbuf *next_chain(struct end *e, uint64_t left)
{
	struct test *t = e->t;
	struct rte_mbuf *head = NULL, *tail = NULL;
	unsigned pieces = t->cut ? t->cut->per_send : 1;

	for (unsigned i = 0; i < pieces && left; i++) {
		uint16_t want = t->cut ? t->cut->sizes[t->next_size++ % t->cut->n_sizes] : CHUNK;
		uint32_t n = (uint32_t)RTE_MIN((uint64_t)want, left);
		struct rte_mbuf *m = rte_pktmbuf_alloc(link_pool(&t->l));
		if (!m) {
			rte_pktmbuf_free(head);
			return NULL;
		}
		uint8_t *p = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)n);
		uint64_t off = e->sent + (head ? head->pkt_len : 0);
		for (uint32_t j = 0; j < n; j++)
			p[j] = pattern(e->id, e->dir, off + j);
		left -= n;
		if (!head) {
			head = tail = m;
		} else {
			tail->next = m;
			tail = m;
			head->nb_segs++;
			head->pkt_len += n;
		}
	}
	return head;
}

static void pump(struct end *e)
{
	while (e->sent < e->to_send) {
		struct rte_mbuf *m = next_chain(e, e->to_send - e->sent);
		if (!m)
			return;
		uint32_t n = m->pkt_len;
		if (tcp_send(e->c, m) != 0) {
			rte_pktmbuf_free(m);
			return; /* writable() will call again */
		}
		e->sent += n;
	}
	if (!e->shut) {
		e->shut = true;
		tcp_shutdown(e->c);
	}
}

static void on_received(struct tcp_conn *c, struct rte_mbuf *data)
{
	struct end *e = tcp_arg(c);
	unsigned total = 0;

	for (struct rte_mbuf *s = data; s; s = s->next) {
		const uint8_t *p = rte_pktmbuf_mtod(s, const uint8_t *);
		for (unsigned i = 0; i < s->data_len; i++)
			if (p[i] != pattern(e->id, 1 - e->dir, e->recvd + i))
				e->mismatches++;
		e->recvd += s->data_len;
		total += s->data_len;
	}
	rte_pktmbuf_free(data);
	tcp_consumed(c, total);
}

static void on_writable(struct tcp_conn *c)
{
	pump(tcp_arg(c));
}

static void on_peer_closed(struct tcp_conn *c)
{
	struct end *e = tcp_arg(c);
	e->peer_fin = true;
	pump(e); /* a server with nothing to send shuts down now */
}

static void on_closed(struct tcp_conn *c, enum tcp_close_reason reason)
{
	struct end *e = tcp_arg(c);
	e->closed = true;
	e->reason = reason;
	e->c = NULL;
}

static void on_connected(struct tcp_conn *c, int err)
{
	struct end *e = tcp_arg(c);
	cr_assert_eq(err, 0, "connection %u failed: %d", e->id, err);
	pump(e);
}

static const struct tcp_ops client_ops = {
	.connected = on_connected, .received = on_received, .writable = on_writable,
	.peer_closed = on_peer_closed, .closed = on_closed,
};

static void on_accepted(struct tcp_conn *c, void *arg)
{
	struct test *t = arg;
	uint16_t lport, rport;
	uint32_t la, ra;
	tcp_endpoints(c, &la, &lport, &ra, &rport);
	/* the client's port tells which connection this is */
	unsigned id = t->srv_accepted++;
	for (unsigned i = 0; i < t->n; i++)
		if (t->cli[i].c && t->cli[i].c != NULL) {
			uint16_t cl, cr;
			uint32_t a, b;
			tcp_endpoints(t->cli[i].c, &a, &cl, &b, &cr);
			if (cl == rport)
				id = i;
		}
	struct end *e = &t->srv[id];
	e->t = t;
	e->c = c;
	e->id = id;
	e->dir = 1;
	e->to_send = t->down;
	tcp_set_arg(c, e);
	pump(e);
}

static const struct tcp_ops server_ops = {
	.accepted = on_accepted, .received = on_received, .writable = on_writable,
	.peer_closed = on_peer_closed, .closed = on_closed,
};

static bool all_closed(void *arg)
{
	struct test *t = arg;
	for (unsigned i = 0; i < t->n; i++)
		if (!t->cli[i].closed || !t->srv[i].closed)
			return false;
	return true;
}

struct link_stats_out {
	uint64_t end_ns, delivered, dropped;
	struct dp_stats a, b;
	uint64_t seeks[2], seek_steps[2]; /* each stack's send-queue lookups and mbufs walked */
};

/*
 * Runs N connections moving UP bytes client→server and DOWN back, the
 * streams cut as CUT says (NULL: CHUNK-byte sends) on stacks made with
 * PARAMS (NULL: defaults); checks everything.
 */
static void run_cut_transfer(const struct link_props *props, uint64_t seed, unsigned n,
			     uint64_t up, uint64_t down, uint64_t limit_s, const struct cut *cut,
			     const struct tcp_params *params, struct link_stats_out *out)
{
	struct test *t = calloc(1, sizeof(*t));
	t->n = n;
	t->up = up;
	t->down = down;
	t->cut = cut;
	t->cli = calloc(n, sizeof(*t->cli));
	t->srv = calloc(n, sizeof(*t->srv));
	link_init(&t->l, props, seed, params);

	struct tcp_listen_opts lo = {.ops = &server_ops, .arg = t, .syn_backlog = 4096};
	cr_assert_eq(tcp_listen(t->l.stack[1], 0, rte_cpu_to_be_16(PORT), &lo), 0);
	tcp_stack_clock(t->l.stack[0], t->l.now);
	for (unsigned i = 0; i < n; i++) {
		struct end *e = &t->cli[i];
		e->t = t;
		e->id = i;
		e->dir = 0;
		e->to_send = up;
		cr_assert_eq(tcp_connect(t->l.stack[0], t->l.addr[0], t->l.addr[1],
					 rte_cpu_to_be_16(PORT), &client_ops, e, NULL, NULL, &e->c),
			     0);
	}
	bool done = link_run(&t->l, all_closed, t, limit_s * LINK_HZ);
	for (unsigned i = 0; i < n; i++) {
		struct end *c = &t->cli[i], *s = &t->srv[i];
		cr_assert(done, "connection %u did not finish: client sent %lu/%lu got %lu/%lu "
				"closed=%d, server sent %lu/%lu got %lu closed=%d (accepted %u)",
			  i, c->sent, up, c->recvd, down, c->closed, s->sent, down, s->recvd,
			  s->closed, t->srv_accepted);
		cr_assert_eq(s->recvd, up, "connection %u: server got %lu of %lu", i, s->recvd, up);
		cr_assert_eq(c->recvd, down, "connection %u: client got %lu of %lu", i, c->recvd,
			     down);
		cr_assert_eq(s->mismatches + c->mismatches, 0, "connection %u: corrupted bytes", i);
		cr_assert_eq(c->reason, TCP_CLOSE_NORMAL, "connection %u client ended %d", i,
			     c->reason);
		cr_assert_eq(s->reason, TCP_CLOSE_NORMAL, "connection %u server ended %d", i,
			     s->reason);
	}
	if (out) {
		out->end_ns = t->l.now;
		out->delivered = t->l.delivered;
		out->dropped = t->l.dropped;
		out->a = t->l.stats[0];
		out->b = t->l.stats[1];
		for (int i = 0; i < 2; i++) {
			out->seeks[i] = t->l.stack[i]->sq_seeks;
			out->seek_steps[i] = t->l.stack[i]->sq_seek_steps;
		}
	}
	link_fini(&t->l);
	free(t->cli);
	free(t->srv);
	free(t);
}

static void run_transfer(const struct link_props *props, uint64_t seed, unsigned n, uint64_t up,
			 uint64_t down, uint64_t limit_s, struct link_stats_out *out)
{
	run_cut_transfer(props, seed, n, up, down, limit_s, NULL, NULL, out);
}

static const struct link_props clean = {.delay_ns = 1000000};

Test(transfer, one_byte_each_way_over_a_clean_link)
{
	run_transfer(&clean, 1, 1, 1, 1, 10, NULL);
}

Test(transfer, a_megabyte_up_with_nothing_back)
{
	run_transfer(&clean, 2, 1, 1 << 20, 0, 30, NULL);
}

Test(transfer, a_megabyte_down_after_a_small_request)
{
	run_transfer(&clean, 3, 1, 1024, 1 << 20, 30, NULL);
}

static const struct link_props lossy = {
	.loss = 0.01, .dup = 0.01, .reorder = 0.02, .delay_ns = 2000000, .reorder_ns = 3000000,
	.bw_bps = 1000000000,
};

Test(transfer, a_megabyte_each_way_survives_loss_duplication_and_reordering)
{
	run_transfer(&lossy, 4, 1, 1 << 20, 1 << 20, 120, NULL);
}

Test(transfer, ten_percent_loss_still_delivers_every_byte)
{
	const struct link_props p = {.loss = 0.10, .delay_ns = 1000000, .bw_bps = 100000000};
	run_transfer(&p, 5, 1, 256 << 10, 256 << 10, 600, NULL);
}

Test(transfer, hundreds_of_concurrent_connections_over_a_lossy_link, .timeout = 300)
{
	run_transfer(&lossy, 6, 300, 16 << 10, 16 << 10, 600, NULL);
}

Test(transfer, sixty_four_mebibytes_through_a_bandwidth_limited_link, .timeout = 300)
{
	const struct link_props p = {.delay_ns = 500000, .bw_bps = 10000000000ull};
	run_transfer(&p, 7, 1, 64u << 20, 0, 600, NULL);
}

Test(transfer, sizes_from_one_byte_up_cross_every_segment_boundary)
{
	static const uint64_t sizes[] = {1, 2, 1447, 1448, 1449, 2895, 2896, 2897, 65535, 65536,
					 65537, 262143, 262144, 262145};
	for (unsigned i = 0; i < RTE_DIM(sizes); i++)
		run_transfer(&lossy, 100 + i, 1, sizes[i], sizes[RTE_DIM(sizes) - 1 - i], 120, NULL);
}

Test(transfer, the_same_seed_gives_the_same_run)
{
	struct link_stats_out a, b;
	run_transfer(&lossy, 42, 20, 64 << 10, 32 << 10, 120, &a);
	run_transfer(&lossy, 42, 20, 64 << 10, 32 << 10, 120, &b);
	cr_assert_eq(a.end_ns, b.end_ns);
	cr_assert_eq(a.delivered, b.delivered);
	cr_assert_eq(a.dropped, b.dropped);
	cr_assert_eq(memcmp(&a.a, &b.a, sizeof(a.a)), 0, "stack A counters differ");
	cr_assert_eq(memcmp(&a.b, &b.b, sizeof(a.b)), 0, "stack B counters differ");
	cr_assert_gt(a.a.c[DP_C_TCP_RETRANSMITS] + a.b.c[DP_C_TCP_RETRANSMITS], 0,
		     "a lossy run retransmits");
}

/*
 * Streams sent as many small mbufs, odd sizes and single bytes, through loss,
 * duplication and reordering (SACK recovery, rescue retransmissions) and heavy
 * loss (RTOs, go-back-N): every byte arrives, in order. The per-connection
 * mbuf cap is raised so the send queues hold thousands of pieces.
 */
static const uint16_t odd_pieces[] = {1, 3, 7, 2, 5, 11, 1, 64, 13, 1, 2, 9, 333, 1, 17};

static void tiny_params(struct tcp_params *p)
{
	tcp_params_default(p);
	p->mbufs_per_conn = 8192;
}

/* The mbufs walked to find segments' first bytes, per lookup, over both stacks. */
static double steps_per_seek(const struct link_stats_out *o)
{
	return (double)(o->seek_steps[0] + o->seek_steps[1]) / (double)(o->seeks[0] + o->seeks[1]);
}

Test(transfer, streams_of_tiny_sends_survive_loss_sack_and_reordering_byte_exact, .timeout = 300)
{
	struct tcp_params p;
	tiny_params(&p);
	const struct cut cut = {odd_pieces, RTE_DIM(odd_pieces), 50};
	struct link_stats_out o;
	run_cut_transfer(&lossy, 11, 1, 256 << 10, 256 << 10, 300, &cut, &p, &o);
	cr_expect_gt(o.a.c[DP_C_TCP_FAST_RECOVERIES] + o.b.c[DP_C_TCP_FAST_RECOVERIES], 0,
		     "SACK recovery ran");
	/*
	 * Segments of new data step over one mbuf at most; a recovery walks its
	 * retransmission cursor once across the SACKed runs of the flight. Walking
	 * from SND.UNA for every segment cost about 2000 mbufs each here.
	 */
	cr_expect_lt(steps_per_seek(&o), 64.0, "finding a segment's start walked %.1f mbufs",
		     steps_per_seek(&o));
}

Test(transfer, one_byte_sends_survive_ten_percent_loss_byte_exact, .timeout = 300)
{
	struct tcp_params p;
	tiny_params(&p);
	static const uint16_t one[] = {1};
	const struct cut cut = {one, 1, 400};
	const struct link_props heavy = {.loss = 0.10, .delay_ns = 1000000, .bw_bps = 100000000};
	struct link_stats_out o;
	run_cut_transfer(&heavy, 12, 1, 48 << 10, 48 << 10, 600, &cut, &p, &o);
	cr_expect_gt(o.a.c[DP_C_TCP_RTO_TIMEOUTS] + o.b.c[DP_C_TCP_RTO_TIMEOUTS], 0,
		     "retransmission timeouts went back to SND.UNA");
}

/* Active opens pick a source port whose symmetric hash makes this worker the owner. */
#include "dataplane/port/port.h"

struct owner_pick {
	unsigned want, n_workers, asked;
};

static bool owner_ok(void *arg, uint32_t laddr, uint16_t lport, uint32_t raddr, uint16_t rport)
{
	struct owner_pick *o = arg;
	struct rte_ipv4_tuple t = {0};
	o->asked++;
	t.src_addr = rte_be_to_cpu_32(raddr); /* the replies' tuple */
	t.dst_addr = rte_be_to_cpu_32(laddr);
	t.sport = rte_be_to_cpu_16(rport);
	t.dport = rte_be_to_cpu_16(lport);
	return port_flow_owner(port_flow_hash(&t), o->n_workers) == o->want;
}

static const struct tcp_ops quiet_ops = {0};

Test(active_open, source_ports_bring_the_replies_to_the_opening_worker)
{
	struct link l;
	link_init(&l, &clean, 9, NULL);
	for (unsigned nw = 2; nw <= 4; nw++)
		for (unsigned want = 0; want < nw; want++)
			for (int i = 0; i < 20; i++) {
				struct owner_pick o = {.want = want, .n_workers = nw};
				struct tcp_conn *c;
				uint32_t la, ra;
				uint16_t lp, rp;
				cr_assert_eq(tcp_connect(l.stack[0], l.addr[0], l.addr[1],
							 rte_cpu_to_be_16(25), &quiet_ops, NULL,
							 owner_ok, &o, &c),
					     0);
				tcp_endpoints(c, &la, &lp, &ra, &rp);
				/* the reply as the receiving worker classifies it */
				struct rte_ipv4_tuple t = {0};
				t.src_addr = rte_be_to_cpu_32(ra);
				t.dst_addr = rte_be_to_cpu_32(la);
				t.sport = rte_be_to_cpu_16(rp);
				t.dport = rte_be_to_cpu_16(lp);
				cr_assert_eq(port_flow_owner(port_flow_hash(&t), nw), want,
					     "%u workers: port %u lands on the wrong worker", nw,
					     rte_be_to_cpu_16(lp));
				cr_assert_leq(o.asked, 64, "took %u tries to find a port", o.asked);
				tcp_abort(c);
			}
	link_fini(&l);
}
