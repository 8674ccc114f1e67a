/* SPDX-License-Identifier: BSD-3-Clause */
/* The stack, clock, capture, application and scripted peer of the TCP tests; see tcp_fixture.h. */
#include "tcp_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_mempool.h>

#define OPT_EOL 0
#define OPT_NOP 1
#define OPT_MSS 2
#define OPT_WS 3
#define OPT_SACK_PERM 4
#define OPT_SACK 5
#define OPT_TS 8

struct tcp_stack *fx_stack;
struct timer_wheel fx_wheel;
struct dp_stats fx_stats;
struct tcp_params fx_params;
uint16_t fx_mtu;
uint64_t fx_now;
unsigned fx_clock_reads;
struct fx_conn fx_conns[FX_CONNS];
unsigned fx_n_conns;
void (*fx_on_accept)(struct fx_conn *fc);

static struct rte_mempool *pool;
static unsigned avail_at_start;
static struct rte_mbuf *out[FX_OUT_MAX];
static uint32_t out_dst[FX_OUT_MAX];
static unsigned n_out, n_taken;
static uint16_t listen_port;
static unsigned listen_backlog;

static const uint8_t secret[32] = {
	0x6d, 0x78, 0x67, 0x61, 0x74, 0x65, 0x2d, 0x74, 0x63, 0x70, 0x2d, 0x74, 0x65, 0x73, 0x74,
	0x73, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee,
	0xff, 0x01,
};

/* ---- the application ---- */

static struct fx_conn *new_record(struct tcp_conn *c)
{
	cr_assert_lt(fx_n_conns, FX_CONNS, "too many connections for the fixture");
	struct fx_conn *fc = &fx_conns[fx_n_conns++];
	memset(fc, 0, offsetof(struct fx_conn, rx));
	fc->rx_len = 0;
	fc->rx_calls = 0;
	fc->manual_consume = false;
	fc->tx_off = 0;
	fc->c = c;
	tcp_set_arg(c, fc);
	return fc;
}

static void app_accepted(struct tcp_conn *c, void *larg)
{
	cr_assert_eq(larg, &fx_stack, "accepted() gets the listener's arg");
	struct fx_conn *fc = new_record(c);
	fc->accepted = true;
	if (fx_on_accept)
		fx_on_accept(fc);
}

static void app_connected(struct tcp_conn *c, int err)
{
	struct fx_conn *fc = tcp_arg(c);
	cr_assert_not_null(fc, "connected() on a connection the application never opened");
	fc->connected = err == 0;
	fc->connect_err = err;
}

static void app_received(struct tcp_conn *c, struct rte_mbuf *m)
{
	struct fx_conn *fc = tcp_arg(c);
	cr_assert_not_null(fc, "data before accepted()");
	uint32_t n = rte_pktmbuf_pkt_len(m);
	cr_assert_leq(fc->rx_len + n, sizeof(fc->rx), "the fixture's receive buffer is full");
	const void *p = rte_pktmbuf_read(m, 0, n, fc->rx + fc->rx_len);
	cr_assert_not_null(p, "a received chain shorter than its pkt_len");
	if (p != fc->rx + fc->rx_len)
		memcpy(fc->rx + fc->rx_len, p, n);
	fc->rx_len += n;
	fc->rx_calls++;
	rte_pktmbuf_free(m);
	if (!fc->manual_consume)
		tcp_consumed(c, n);
}

static void app_peer_closed(struct tcp_conn *c)
{
	struct fx_conn *fc = tcp_arg(c);
	cr_assert_not_null(fc);
	fc->peer_closed++;
}

static void app_writable(struct tcp_conn *c)
{
	struct fx_conn *fc = tcp_arg(c);
	cr_assert_not_null(fc);
	fc->writable++;
}

static void app_closed(struct tcp_conn *c, enum tcp_close_reason reason)
{
	struct fx_conn *fc = tcp_arg(c);
	if (!fc)
		return; /* a passive open that never completed: the application never knew it */
	cr_assert_eq(fc->closed, 0, "closed() twice");
	fc->closed++;
	fc->reason = reason;
	fc->c = NULL;
}

const struct tcp_ops fx_ops = {
	.accepted = app_accepted,
	.connected = app_connected,
	.received = app_received,
	.peer_closed = app_peer_closed,
	.writable = app_writable,
	.closed = app_closed,
};

int fx_send(struct fx_conn *fc, size_t len)
{
	struct rte_mbuf *head = NULL, *tail = NULL;
	uint64_t off = fc->tx_off;

	cr_assert_not_null(fc->c, "sending on a closed connection");
	while (len) {
		struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
		cr_assert_not_null(m, "the test pool ran dry");
		uint16_t n = (uint16_t)RTE_MIN(len, (size_t)2000);
		uint8_t *p = (uint8_t *)rte_pktmbuf_append(m, n);
		for (uint16_t i = 0; i < n; i++)
			p[i] = fx_pattern(off + i);
		off += n;
		len -= n;
		if (!head) {
			head = tail = m;
		} else {
			tail->next = m;
			tail = m;
			head->nb_segs++;
			head->pkt_len += n;
		}
	}
	int rc = tcp_send(fc->c, head);
	if (rc == 0)
		fc->tx_off = off;
	else
		rte_pktmbuf_free(head);
	return rc;
}

bool fx_is_pattern(const uint8_t *p, size_t len, uint64_t off)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != fx_pattern(off + i))
			return false;
	return true;
}

/* ---- the stack ---- */

/* FX_TRACE=1 prints every packet in and out: time, direction, flags, seq/ack, window, length. */
static void trace(const struct rte_mbuf *m, const char *dir)
{
	static int on = -1;
	if (on < 0)
		on = getenv("FX_TRACE") != NULL;
	if (!on)
		return;
	const struct rte_ipv4_hdr *ip = rte_pktmbuf_mtod(m, const struct rte_ipv4_hdr *);
	const struct rte_tcp_hdr *th = (const struct rte_tcp_hdr *)(ip + 1);
	unsigned hl = (th->data_off >> 4) * 4u;
	uint8_t f = th->tcp_flags;
	fprintf(stderr, "%10.3f ms %s %s%s%s%s%s seq=%u ack=%u win=%u len=%u\n",
		(double)(fx_now - FX_T0) / 1e6, dir, f & F_SYN ? "S" : "", f & F_ACK ? "." : "",
		f & F_FIN ? "F" : "", f & F_RST ? "R" : "", f & F_PSH ? "P" : "",
		rte_be_to_cpu_32(th->sent_seq), rte_be_to_cpu_32(th->recv_ack),
		rte_be_to_cpu_16(th->rx_win),
		(unsigned)(rte_be_to_cpu_16(ip->total_length) - sizeof(*ip) - hl));
}

static void capture(void *arg, struct rte_mbuf *m, uint32_t dst)
{
	(void)arg;
	trace(m, "out");
	cr_assert_lt(n_out, FX_OUT_MAX, "too many packets sent and not taken");
	out_dst[n_out] = dst;
	out[n_out++] = m;
}

void fx_listen(uint16_t port, unsigned syn_backlog)
{
	struct tcp_listen_opts o = {
		.ops = &fx_ops, .arg = &fx_stack, .syn_backlog = syn_backlog, .cc = TCP_CC_NEWRENO,
	};
	cr_assert_eq(tcp_listen(fx_stack, OUR_IP, rte_cpu_to_be_16(port), &o), 0, "tcp_listen");
	listen_port = port;
	listen_backlog = syn_backlog;
}

/* The worker clock the stack reads when the test calls it outside a callback. */
static uint64_t read_clock(void *arg)
{
	(void)arg;
	fx_clock_reads++;
	return fx_now;
}

static void make_stack(void)
{
	fx_stack = tcp_stack_new(&fx_params, &fx_wheel, pool, &fx_stats, capture, NULL, fx_mtu,
				 secret);
	cr_assert_not_null(fx_stack, "tcp_stack_new");
	tcp_stack_set_clock(fx_stack, read_clock, NULL);
}

void fx_setup(void)
{
	pool = harness_pool();
	avail_at_start = rte_mempool_avail_count(pool);
	memset(&fx_stats, 0, sizeof(fx_stats));
	n_out = n_taken = 0;
	fx_n_conns = 0;
	fx_clock_reads = 0;
	fx_on_accept = NULL;
	fx_now = FX_T0;
	timer_wheel_init(&fx_wheel, FX_HZ, 1000, fx_now);
	tcp_params_default(&fx_params);
	fx_mtu = FX_MTU;
	make_stack();
	fx_listen(OUR_PORT, 0);
}

void fx_restart(void)
{
	tcp_stack_free(fx_stack);
	fx_stack = NULL;
	fx_discard();
	fx_n_conns = 0;
	timer_wheel_init(&fx_wheel, FX_HZ, 1000, fx_now);
	make_stack();
	fx_listen(listen_port, listen_backlog);
}

static void free_all(void)
{
	tcp_stack_free(fx_stack);
	fx_stack = NULL;
	for (unsigned i = 0; i < n_out; i++)
		rte_pktmbuf_free(out[i]);
	n_out = n_taken = 0;
}

void fx_teardown(void)
{
	free_all();
}

void fx_expect_no_leak(void)
{
	free_all();
	cr_expect_eq(fx_wheel.armed, 0, "%u timers still armed after the stack was freed",
		     fx_wheel.armed);
	cr_expect_eq(rte_mempool_avail_count(pool), avail_at_start, "%u mbufs leaked",
		     avail_at_start - rte_mempool_avail_count(pool));
}

void fx_advance_ns(uint64_t ns)
{
	fx_now += ns;
	timer_wheel_run(&fx_wheel, fx_now);
}

void fx_skip_ms(uint64_t ms)
{
	fx_now += ms * FX_MS;
}

uint64_t fx_wait_output_ms(uint64_t max_ms)
{
	for (uint64_t ms = 1; ms <= max_ms; ms++) {
		fx_advance_ms(1);
		if (fx_pending())
			return ms;
	}
	return max_ms + 1;
}

uint64_t fx_drops_total(void)
{
	uint64_t n = 0;
	for (unsigned i = 0; i < DP_DROP_MAX; i++)
		n += fx_stats.drop[i];
	return n;
}

/* ---- crafted segments ---- */

static unsigned put32(uint8_t *o, uint32_t v)
{
	o[0] = (uint8_t)(v >> 24);
	o[1] = (uint8_t)(v >> 16);
	o[2] = (uint8_t)(v >> 8);
	o[3] = (uint8_t)v;
	return 4;
}

static uint32_t get32(const uint8_t *o)
{
	return (uint32_t)o[0] << 24 | (uint32_t)o[1] << 16 | (uint32_t)o[2] << 8 | o[3];
}

static unsigned build_options(const struct fx_seg *g, uint8_t *o)
{
	unsigned n = 0;

	if (g->raw_opts) {
		cr_assert_leq(g->raw_opts_len, 40);
		memcpy(o, g->raw_opts, g->raw_opts_len);
		n = g->raw_opts_len;
		while (n % 4)
			o[n++] = OPT_EOL;
		return n;
	}
	if (g->mss) {
		o[n++] = OPT_MSS;
		o[n++] = 4;
		o[n++] = (uint8_t)(g->mss >> 8);
		o[n++] = (uint8_t)g->mss;
	}
	if (g->sack_perm) {
		o[n++] = OPT_NOP;
		o[n++] = OPT_NOP;
		o[n++] = OPT_SACK_PERM;
		o[n++] = 2;
	}
	if (g->has_ts) {
		o[n++] = OPT_NOP;
		o[n++] = OPT_NOP;
		o[n++] = OPT_TS;
		o[n++] = 10;
		n += put32(o + n, g->tsval);
		n += put32(o + n, g->tsecr);
	}
	if (g->has_ws) {
		o[n++] = OPT_NOP;
		o[n++] = OPT_WS;
		o[n++] = 3;
		o[n++] = g->ws;
	}
	if (g->n_sack) {
		cr_assert_leq(n + 4 + 8 * g->n_sack, 40, "too many options for one segment");
		o[n++] = OPT_NOP;
		o[n++] = OPT_NOP;
		o[n++] = OPT_SACK;
		o[n++] = (uint8_t)(2 + 8 * g->n_sack);
		for (unsigned i = 0; i < g->n_sack; i++) {
			n += put32(o + n, g->sack[i].start);
			n += put32(o + n, g->sack[i].end);
		}
	}
	cr_assert_leq(n, 40, "too many options for one segment");
	while (n % 4)
		o[n++] = OPT_EOL;
	return n;
}

/* M as a chain: its first HLEN bytes alone, then pieces of G's sizes in turn. Frees M. */
static struct rte_mbuf *as_chain(struct rte_mbuf *m, unsigned hlen, const struct fx_seg *g)
{
	struct rte_mbuf *head = NULL, *tail = NULL;
	unsigned off = 0, k = 0;

	while (off < m->pkt_len) {
		unsigned n = off == 0 ? hlen : g->pieces[k++ % g->n_pieces];
		cr_assert_gt(n, 0, "a piece of 0 bytes");
		n = RTE_MIN(n, m->pkt_len - off);
		struct rte_mbuf *x = rte_pktmbuf_alloc(pool);
		cr_assert_not_null(x, "the test pool ran dry");
		char *to = rte_pktmbuf_append(x, (uint16_t)n);
		memcpy(to, rte_pktmbuf_mtod_offset(m, char *, off), n);
		if (!head) {
			head = tail = x;
		} else {
			tail->next = x;
			tail = x;
			head->nb_segs++;
			head->pkt_len += n;
		}
		off += n;
	}
	rte_pktmbuf_free(m);
	return head;
}

struct rte_mbuf *fx_build(const struct fx_seg *g)
{
	uint8_t opts[44];
	unsigned olen = build_options(g, opts);
	unsigned hlen = sizeof(struct rte_ipv4_hdr) + sizeof(struct rte_tcp_hdr) + olen;
	struct rte_mbuf *m = rte_pktmbuf_alloc(pool);

	cr_assert_not_null(m, "the test pool ran dry");
	uint8_t *p = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)(hlen + g->len + g->pad));
	cr_assert_not_null(p, "a crafted segment of %u bytes does not fit one mbuf",
			   hlen + g->len + g->pad);
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)p;
	struct rte_tcp_hdr *th = (struct rte_tcp_hdr *)(ip + 1);

	memset(p, 0, hlen);
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->total_length = rte_cpu_to_be_16((uint16_t)(hlen + g->len));
	ip->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);
	ip->time_to_live = 64;
	ip->next_proto_id = IPPROTO_TCP;
	ip->src_addr = g->saddr ? g->saddr : PEER_IP;
	ip->dst_addr = g->daddr ? g->daddr : OUR_IP;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	th->src_port = rte_cpu_to_be_16(g->sport ? g->sport : PEER_PORT);
	th->dst_port = rte_cpu_to_be_16(g->dport ? g->dport : OUR_PORT);
	th->sent_seq = rte_cpu_to_be_32(g->seq);
	th->recv_ack = rte_cpu_to_be_32(g->ack);
	th->data_off = (uint8_t)(((sizeof(*th) + olen) / 4) << 4);
	th->tcp_flags = g->flags;
	th->rx_win = rte_cpu_to_be_16(g->win);
	memcpy(th + 1, opts, olen);
	if (g->len)
		memcpy(p + hlen, g->data, g->len);
	th->cksum = rte_ipv4_udptcp_cksum(ip, th);
	if (g->bad_cksum)
		th->cksum ^= rte_cpu_to_be_16(0x0100);
	memset(p + hlen + g->len, 0xa5, g->pad);
	if (g->n_pieces)
		m = as_chain(m, hlen, g);
	return m;
}

void fx_input(const struct fx_seg *g)
{
	struct rte_mbuf *m = fx_build(g);
	trace(m, "in ");
	tcp_input(fx_stack, m, fx_now);
}

/* ---- captured output ---- */

unsigned fx_pending(void)
{
	return n_out - n_taken;
}

static void parse_options(struct fx_pkt *k)
{
	const uint8_t *o = k->opts;
	unsigned i = 0;

	while (i < k->opt_len) {
		uint8_t kind = o[i];
		if (kind == OPT_EOL)
			break;
		if (kind == OPT_NOP) {
			i++;
			continue;
		}
		cr_assert_lt(i + 1, k->opt_len, "option %u runs past the header", kind);
		uint8_t len = o[i + 1];
		cr_assert(len >= 2 && i + len <= k->opt_len, "option %u has length %u", kind, len);
		switch (kind) {
		case OPT_MSS:
			cr_assert_eq(len, 4);
			k->has_mss = true;
			k->mss = (uint16_t)(o[i + 2] << 8 | o[i + 3]);
			break;
		case OPT_WS:
			cr_assert_eq(len, 3);
			k->has_ws = true;
			k->ws = o[i + 2];
			break;
		case OPT_SACK_PERM:
			cr_assert_eq(len, 2);
			k->sack_perm = true;
			break;
		case OPT_TS:
			cr_assert_eq(len, 10);
			k->has_ts = true;
			k->tsval = get32(o + i + 2);
			k->tsecr = get32(o + i + 6);
			break;
		case OPT_SACK:
			cr_assert(len >= 10 && (len - 2) % 8 == 0, "SACK option of length %u", len);
			k->n_sack = (len - 2) / 8u;
			cr_assert_leq(k->n_sack, 4);
			for (unsigned b = 0; b < k->n_sack; b++) {
				k->sack[b].start = get32(o + i + 2 + 8 * b);
				k->sack[b].end = get32(o + i + 6 + 8 * b);
			}
			break;
		default:
			cr_assert_fail("we sent an option of kind %u", kind);
		}
		i += len;
	}
}

struct fx_pkt fx_take(void)
{
	struct fx_pkt k;
	uint8_t buf[2048 + 128];

	cr_assert_gt(fx_pending(), 0, "expected a packet from the stack, none was sent");
	struct rte_mbuf *m = out[n_taken];
	memset(&k, 0, sizeof(k));
	k.dst = out_dst[n_taken];
	out[n_taken++] = NULL;
	k.nb_segs = m->nb_segs;
	cr_assert_leq(m->pkt_len, sizeof(buf), "a packet of %u bytes", m->pkt_len);
	const uint8_t *p = rte_pktmbuf_read(m, 0, m->pkt_len, buf);
	cr_assert_not_null(p);
	const struct rte_ipv4_hdr *ip = (const struct rte_ipv4_hdr *)p;
	cr_assert_eq(ip->version_ihl, RTE_IPV4_VHL_DEF, "IPv4 without options");
	cr_assert_eq(rte_be_to_cpu_16(ip->total_length), m->pkt_len, "IPv4 total length");
	cr_assert_eq(ip->next_proto_id, IPPROTO_TCP);
	const struct rte_tcp_hdr *th = (const struct rte_tcp_hdr *)(ip + 1);
	k.ol_flags = m->ol_flags;
	k.l2_len = (uint8_t)m->l2_len;
	k.l3_len = (uint8_t)m->l3_len;
	k.l4_len = (uint8_t)m->l4_len;
	k.ip_cksum = ip->hdr_checksum;
	k.tcp_cksum = th->cksum;
	if (m->ol_flags & RTE_MBUF_F_TX_IP_CKSUM)
		cr_assert_eq(ip->hdr_checksum, 0, "an offloaded IPv4 checksum is left to the NIC");
	else
		cr_assert_eq(rte_ipv4_cksum(ip), 0, "IPv4 header checksum");
	if ((m->ol_flags & RTE_MBUF_F_TX_L4_MASK) == RTE_MBUF_F_TX_TCP_CKSUM)
		cr_assert_eq(th->cksum, rte_ipv4_phdr_cksum(ip, m->ol_flags),
			     "an offloaded TCP checksum holds the pseudo-header sum");
	else
		cr_assert_eq(rte_ipv4_udptcp_cksum_verify(ip, th), 0,
			     "TCP checksum of a packet we sent");
	k.saddr = ip->src_addr;
	k.daddr = ip->dst_addr;
	k.ttl = ip->time_to_live;
	k.df = (rte_be_to_cpu_16(ip->fragment_offset) & RTE_IPV4_HDR_DF_FLAG) != 0;
	k.sport = rte_be_to_cpu_16(th->src_port);
	k.dport = rte_be_to_cpu_16(th->dst_port);
	k.seq = rte_be_to_cpu_32(th->sent_seq);
	k.ack = rte_be_to_cpu_32(th->recv_ack);
	k.flags = th->tcp_flags;
	k.win = rte_be_to_cpu_16(th->rx_win);
	unsigned thl = (th->data_off >> 4) * 4u;
	cr_assert(thl >= sizeof(*th) && sizeof(*ip) + thl <= m->pkt_len, "TCP header length %u",
		  thl);
	k.opt_len = thl - (unsigned)sizeof(*th);
	memcpy(k.opts, th + 1, k.opt_len);
	parse_options(&k);
	k.len = m->pkt_len - (unsigned)sizeof(*ip) - thl;
	memcpy(k.data, p + sizeof(*ip) + thl, k.len);
	rte_pktmbuf_free(m);
	return k;
}

void fx_discard(void)
{
	while (n_taken < n_out) {
		rte_pktmbuf_free(out[n_taken]);
		out[n_taken++] = NULL;
	}
}

void fx_expect_silence(const char *why)
{
	if (fx_pending() == 0)
		return;
	struct fx_pkt k = fx_take();
	cr_assert_fail("%s: expected no packet, got flags 0x%02x seq %u ack %u len %u", why,
		       k.flags, k.seq, k.ack, k.len);
}

/* ---- the scripted peer ---- */

struct fx_peer fx_peer_new(uint16_t port)
{
	return (struct fx_peer){
		.port = port,
		.our_port = OUR_PORT,
		.isn = 0xfffff800u + (port & 0x3ffu), /* its data soon wraps around 2^32 */
		.mss = 1460,
		.ws_on = true,
		.ws = 7,
		.sack_on = true,
		.ts_on = true,
		.rwnd = 256 * 1024,
		.ts_base = 5000000,
	};
}

uint32_t fx_peer_tsval(const struct fx_peer *p)
{
	return p->ts_base + (uint32_t)((fx_now - FX_T0) / FX_MS);
}

uint16_t fx_peer_win(const struct fx_peer *p)
{
	uint32_t w = p->ws_ok ? p->rwnd >> p->ws : p->rwnd;
	return (uint16_t)RTE_MIN(w, (uint32_t)UINT16_MAX);
}

struct fx_seg fx_peer_seg(const struct fx_peer *p, uint8_t flags, const void *data, unsigned len)
{
	struct fx_seg g = {
		.sport = p->port,
		.dport = p->our_port,
		.seq = p->nxt,
		.ack = (flags & F_ACK) ? p->ack : 0,
		.flags = flags,
		.win = fx_peer_win(p),
		.data = data,
		.len = len,
	};
	if (p->ts_ok) {
		g.has_ts = true;
		g.tsval = fx_peer_tsval(p);
		g.tsecr = p->ts_recent;
	}
	return g;
}

void fx_peer_send(struct fx_peer *p, uint8_t flags, const void *data, unsigned len)
{
	struct fx_seg g = fx_peer_seg(p, flags | F_ACK, data, len);
	fx_input(&g);
	p->nxt += len + !!(flags & F_FIN);
}

void fx_peer_ack(struct fx_peer *p)
{
	fx_peer_send(p, F_ACK, NULL, 0);
}

struct fx_pkt fx_peer_take(struct fx_peer *p)
{
	struct fx_pkt k = fx_take();

	cr_assert_eq(k.saddr, OUR_IP, "from our address");
	cr_assert_eq(k.daddr, PEER_IP, "to the peer");
	cr_assert_eq(k.dst, PEER_IP, "the output callback is told the peer's address");
	cr_assert_eq(k.dport, p->port, "to the peer's port %u, not %u", p->port, k.dport);
	cr_assert_eq(k.sport, p->our_port, "from our port %u, not %u", p->our_port, k.sport);
	if (k.has_ts)
		p->ts_recent = k.tsval;
	uint32_t end = k.seq + k.len + !!(k.flags & F_SYN) + !!(k.flags & F_FIN);
	if (!(k.flags & F_RST) && seq_gt(end, p->high))
		p->high = end;
	return k;
}

struct fx_pkt fx_peer_syn(struct fx_peer *p)
{
	struct fx_seg g = {
		.sport = p->port,
		.dport = p->our_port,
		.seq = p->isn,
		.flags = F_SYN,
		.win = (uint16_t)RTE_MIN(p->rwnd, (uint32_t)UINT16_MAX),
		.mss = p->mss,
		.sack_perm = p->sack_on,
		.has_ts = p->ts_on,
		.tsval = fx_peer_tsval(p),
		.has_ws = p->ws_on,
		.ws = p->ws,
	};
	p->nxt = p->isn + 1;
	fx_input(&g);
	struct fx_pkt k = fx_peer_take(p);
	cr_assert_eq(k.flags, F_SYN | F_ACK, "a SYN-ACK, got flags 0x%02x", k.flags);
	cr_assert_eq(k.ack, p->isn + 1, "the SYN-ACK acknowledges the SYN");
	p->our_iss = k.seq;
	p->ack = k.seq + 1;
	p->high = k.seq + 1;
	p->ts_ok = p->ts_on && k.has_ts;
	p->sack_ok = p->sack_on && k.sack_perm;
	p->ws_ok = p->ws_on && k.has_ws;
	p->our_ws = p->ws_ok ? k.ws : 0;
	p->our_mss = k.mss;
	return k;
}

struct fx_conn *fx_accept(struct fx_peer *p)
{
	unsigned before = fx_n_conns;

	fx_peer_syn(p);
	fx_peer_ack(p);
	cr_assert_eq(fx_n_conns, before + 1, "the handshake completes with accepted()");
	struct fx_conn *fc = &fx_conns[before];
	cr_assert(fc->accepted);
	cr_assert_not_null(fc->c);
	return fc;
}

struct fx_conn *fx_open(struct fx_peer *p, struct fx_pkt *syn_out)
{
	struct tcp_conn *c = NULL;

	cr_assert_eq(tcp_connect(fx_stack, OUR_IP, PEER_IP, rte_cpu_to_be_16(p->port), &fx_ops,
				 NULL, NULL, NULL, &c),
		     0, "tcp_connect");
	struct fx_conn *fc = new_record(c);
	struct fx_pkt syn = fx_take();
	cr_assert_eq(syn.flags, F_SYN, "a SYN alone, got flags 0x%02x", syn.flags);
	p->our_port = syn.sport;
	p->our_iss = syn.seq;
	p->ack = syn.seq + 1;
	p->high = syn.seq + 1;
	if (syn_out)
		*syn_out = syn;
	return fc;
}

struct fx_conn *fx_connect(struct fx_peer *p)
{
	struct fx_pkt syn;
	struct fx_conn *fc = fx_open(p, &syn);

	p->ts_ok = p->ts_on && syn.has_ts;
	p->sack_ok = p->sack_on && syn.sack_perm;
	p->ws_ok = p->ws_on && syn.has_ws;
	p->our_ws = p->ws_ok ? syn.ws : 0;
	p->our_mss = syn.mss;
	if (syn.has_ts)
		p->ts_recent = syn.tsval;
	struct fx_seg g = {
		.sport = p->port,
		.dport = p->our_port,
		.seq = p->isn,
		.ack = p->ack,
		.flags = F_SYN | F_ACK,
		.win = (uint16_t)RTE_MIN(p->rwnd, (uint32_t)UINT16_MAX),
		.mss = p->mss,
		.sack_perm = p->sack_ok,
		.has_ts = p->ts_ok,
		.tsval = fx_peer_tsval(p),
		.tsecr = p->ts_recent,
		.has_ws = p->ws_ok,
		.ws = p->ws,
	};
	p->nxt = p->isn + 1;
	fx_input(&g);
	cr_assert(fc->connected, "connected() after the SYN-ACK (err %d)", fc->connect_err);
	struct fx_pkt ack = fx_peer_take(p);
	cr_assert_eq(ack.flags, F_ACK, "the handshake's ACK, got flags 0x%02x", ack.flags);
	cr_assert_eq(ack.ack, p->isn + 1);
	return fc;
}

struct tcp_conn *fx_lookup(const struct fx_peer *p)
{
	return tcp_conn_lookup(fx_stack, OUR_IP, rte_cpu_to_be_16(p->our_port), PEER_IP,
			       rte_cpu_to_be_16(p->port));
}

const char *fx_state_of(const struct fx_peer *p)
{
	struct tcp_conn *c = fx_lookup(p);
	return c ? tcp_state_names[c->state] : "none";
}
