/* SPDX-License-Identifier: BSD-3-Clause */
/* The ctx, capture, clock and frame builders of the net unit tests; see net_fixture.h. */
#include "net_fixture.h"

#include <string.h>

#include <rte_eal.h>
#include <rte_mempool.h>

const struct rte_ether_addr OUR_MAC = {{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}};
const struct rte_ether_addr OUR_MAC1 = {{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}};
const struct rte_ether_addr PEER_MAC = {{0x02, 0x00, 0x00, 0x00, 0x00, 0x99}};
const struct rte_ether_addr GW_MAC = {{0x02, 0x00, 0x00, 0x00, 0x00, 0xfe}};
const struct rte_ether_addr OTHER_MAC = {{0x02, 0x00, 0x00, 0x00, 0x00, 0x42}};
const struct rte_ether_addr BCAST_MAC = {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
const struct rte_ether_addr ZERO_MAC = {{0}};

struct net_ctx fx;
struct dp_stats fx_stats;
struct net_iface fx_if[NET_MAX_IFACES];
unsigned fx_n_if;
struct net_route fx_rt[NET_MAX_ROUTES];
unsigned fx_n_rt;
struct net_params fx_params;
struct rte_mempool *fx_pool;
uint64_t fx_now;
struct fx_sent fx_out[FX_OUT_MAX];
unsigned fx_n_out;
struct fx_learn_rec fx_learned[FX_LEARN_MAX];
unsigned fx_n_learned;

static unsigned avail_at_start;

/*
 * Stand-ins for harness_eal_init()/harness_pool()/harness_frame(), same
 * contract. The harness passes --no-huge with --in-memory, which DPDK 22.11
 * refuses ("--legacy-mem is not compatible with --in-memory": --no-huge
 * implies legacy memory), so every test would fail in its setup. Here EAL
 * runs without hugepages and without shared files (--no-shconf: no IPC, no
 * runtime files), which keeps parallel test processes apart just as well.
 * Once the harness is fixed these three can go back to it.
 */
static struct rte_mempool *test_pool;

struct rte_mempool *fx_mbuf_pool(void)
{
	static int eal_up;
	if (!eal_up) {
		char *argv[] = {"unit_net", "--no-pci", "--no-huge", "--no-shconf",
				"--file-prefix=mxgate_unit_net", "-m", "128", "-l", "0",
				"--log-level=lib.*:error", "--no-telemetry", NULL};
		int argc = (int)(sizeof(argv) / sizeof(argv[0])) - 1;
		cr_assert(rte_eal_init(argc, argv) >= 0, "rte_eal_init failed");
		eal_up = 1;
	}
	if (test_pool == NULL)
		test_pool = rte_pktmbuf_pool_create("unit_pool", 1023, 0, 0,
						    RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
	cr_assert_not_null(test_pool, "mbuf pool");
	return test_pool;
}

struct rte_mbuf *fx_frame(const void *frame, size_t len, uint16_t port)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(fx_mbuf_pool());
	cr_assert_not_null(m);
	char *p = rte_pktmbuf_append(m, (uint16_t)len);
	cr_assert_not_null(p, "frame of %zu bytes does not fit one mbuf", len);
	memcpy(p, frame, len);
	m->port = port;
	return m;
}

static void fx_tx(void *arg, uint16_t port, struct rte_mbuf *m)
{
	(void)arg;
	cr_assert_lt(fx_n_out, FX_OUT_MAX, "too many frames sent");
	cr_assert_eq(m->port, port, "m->port says %u, sent out of %u", m->port, port);
	fx_out[fx_n_out].port = port;
	fx_out[fx_n_out].m = m;
	fx_n_out++;
}

static void fx_learn(void *arg, uint16_t port, uint32_t ip, const struct rte_ether_addr *mac)
{
	(void)arg;
	cr_assert_lt(fx_n_learned, FX_LEARN_MAX);
	fx_learned[fx_n_learned++] = (struct fx_learn_rec){.port = port, .ip = ip, .mac = *mac};
}

int fx_init(void)
{
	if (fx.arp != NULL)
		net_ctx_fini(&fx);
	memset(&fx, 0, sizeof(fx));
	fx.ifaces = fx_if;
	fx.n_ifaces = fx_n_if;
	fx.routes = fx_rt;
	fx.n_routes = fx_n_rt;
	fx.pool = fx_pool;
	fx.stats = &fx_stats;
	fx.tx = fx_tx;
	fx.learn = fx_learn;
	fx.hz = HZ;
	fx.params = fx_params;
	return net_ctx_init(&fx, fx_now);
}

void fx_setup(void)
{
	fx_pool = fx_mbuf_pool();
	memset(&fx, 0, sizeof(fx));
	memset(&fx_stats, 0, sizeof(fx_stats));
	memset(fx_if, 0, sizeof(fx_if));
	memset(fx_rt, 0, sizeof(fx_rt));
	fx_n_out = 0;
	fx_n_learned = 0;
	fx_if[0] = (struct net_iface){
		.port_id = 0,
		.mtu = 1500,
		.mac = OUR_MAC,
		.n_addrs = 1,
		.addrs = {{.addr = OUR_IP, .len = 24}},
	};
	fx_n_if = 1;
	fx_rt[0] = (struct net_route){.dst = 0, .len = 0, .via = GW_IP, .port_id = 0};
	fx_n_rt = 1;
	fx_params = (struct net_params){
		.arp_timeout_s = 60,
		.arp_pending_max = 4,
		.arp_retries = 3,
		.icmp_echo_rate = 100,
		.icmp_echo_burst = 5,
		.icmp_error_rate = 100,
		.icmp_error_burst = 5,
	};
	fx_now = T0;
	avail_at_start = rte_mempool_avail_count(fx_pool);
	cr_assert_eq(fx_init(), 0, "net_ctx_init");
}

void fx_expect_no_leak(void)
{
	net_ctx_fini(&fx);
	cr_expect_null(fx.arp, "fini clears the table pointer");
	for (unsigned i = 0; i < fx_n_out; i++)
		rte_pktmbuf_free(fx_out[i].m);
	fx_n_out = 0;
	unsigned avail = rte_mempool_avail_count(fx_mbuf_pool());
	cr_assert_eq(avail, avail_at_start, "mbufs leaked: %u available, %u at start", avail,
		     avail_at_start);
}

void fx_teardown(void)
{
	/* after a failed assertion: release what the test still held, without judging */
	net_ctx_fini(&fx);
	for (unsigned i = 0; i < fx_n_out; i++)
		rte_pktmbuf_free(fx_out[i].m);
	fx_n_out = 0;
}

void fx_two_ports(void)
{
	fx_if[1] = (struct net_iface){
		.port_id = 1,
		.mtu = 1500,
		.mac = OUR_MAC1,
		.n_addrs = 1,
		.addrs = {{.addr = OUR_IP1, .len = 24}},
	};
	fx_n_if = 2;
	cr_assert_eq(fx_init(), 0, "net_ctx_init with two ports");
}

void fx_input_port(const void *frame, size_t len, uint16_t port)
{
	net_input(&fx, fx_frame(frame, len, port), fx_now);
}

void fx_advance_ms(uint64_t ms)
{
	fx_now += ms * HZ / 1000;
}

uint64_t fx_drops_total(void)
{
	uint64_t t = 0;
	for (unsigned i = 0; i < DP_DROP_MAX; i++)
		t += fx_stats.drop[i];
	return t;
}

void fx_expect_one_drop(enum dp_drop reason)
{
	cr_expect_eq(fx_drop(reason), 1, "%s: %lu", dp_drop_names[reason],
		     (unsigned long)fx_drop(reason));
	cr_expect_eq(fx_drops_total(), 1, "exactly one drop, got %lu",
		     (unsigned long)fx_drops_total());
}

static void put_eth(uint8_t *f, const struct rte_ether_addr *dst,
		    const struct rte_ether_addr *src, uint16_t type)
{
	struct rte_ether_hdr *eth = f_eth(f);
	eth->dst_addr = *dst;
	eth->src_addr = *src;
	eth->ether_type = rte_cpu_to_be_16(type);
}

void fix_ip_cksum(uint8_t *f)
{
	struct rte_ipv4_hdr *ip = f_ip(f);
	ip->hdr_checksum = 0;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
}

void fix_l4_cksum(uint8_t *f)
{
	struct rte_ipv4_hdr *ip = f_ip(f);
	uint16_t l4_len =
		(uint16_t)(rte_be_to_cpu_16(ip->total_length) - (ip->version_ihl & 0xf) * 4);
	switch (ip->next_proto_id) {
	case IPPROTO_TCP: {
		struct rte_tcp_hdr *th = f_l4(f);
		th->cksum = 0;
		th->cksum = rte_ipv4_udptcp_cksum(ip, th);
		break;
	}
	case IPPROTO_UDP: {
		struct rte_udp_hdr *uh = f_l4(f);
		uh->dgram_cksum = 0;
		uh->dgram_cksum = rte_ipv4_udptcp_cksum(ip, uh);
		break;
	}
	case IPPROTO_ICMP: {
		struct rte_icmp_hdr *ih = f_l4(f);
		ih->icmp_cksum = 0;
		ih->icmp_cksum = (uint16_t)~rte_raw_cksum(ih, l4_len);
		break;
	}
	default:
		break;
	}
}

size_t mk_ip(uint8_t *f, uint32_t src, uint32_t dst, uint8_t proto, const void *l4, size_t l4_len)
{
	cr_assert_leq(RTE_ETHER_HDR_LEN + sizeof(struct rte_ipv4_hdr) + l4_len, FRAME_MAX);
	memset(f, 0, RTE_ETHER_HDR_LEN + sizeof(struct rte_ipv4_hdr) + l4_len);
	put_eth(f, &OUR_MAC, &PEER_MAC, RTE_ETHER_TYPE_IPV4);
	struct rte_ipv4_hdr *ip = f_ip(f);
	ip->version_ihl = 0x45;
	ip->total_length = rte_cpu_to_be_16((uint16_t)(sizeof(*ip) + l4_len));
	ip->packet_id = rte_cpu_to_be_16(0x1234);
	ip->time_to_live = 57;
	ip->next_proto_id = proto;
	ip->src_addr = src;
	ip->dst_addr = dst;
	if (l4 != NULL)
		memcpy(ip + 1, l4, l4_len);
	fix_ip_cksum(f);
	return RTE_ETHER_HDR_LEN + sizeof(*ip) + l4_len;
}

size_t mk_icmp(uint8_t *f, uint32_t src, uint32_t dst, uint8_t type, uint8_t code, uint16_t ident,
	       uint16_t seq, const void *data, size_t n)
{
	size_t len = mk_ip(f, src, dst, IPPROTO_ICMP, NULL, sizeof(struct rte_icmp_hdr) + n);
	struct rte_icmp_hdr *ih = f_l4(f);
	ih->icmp_type = type;
	ih->icmp_code = code;
	ih->icmp_ident = rte_cpu_to_be_16(ident);
	ih->icmp_seq_nb = rte_cpu_to_be_16(seq);
	if (n > 0)
		memcpy(ih + 1, data, n);
	fix_l4_cksum(f);
	return len;
}

size_t mk_tcp(uint8_t *f, uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, uint32_t seq,
	      uint32_t ack, uint8_t flags, const void *data, size_t n)
{
	size_t len = mk_ip(f, src, dst, IPPROTO_TCP, NULL, sizeof(struct rte_tcp_hdr) + n);
	struct rte_tcp_hdr *th = f_l4(f);
	th->src_port = rte_cpu_to_be_16(sport);
	th->dst_port = rte_cpu_to_be_16(dport);
	th->sent_seq = rte_cpu_to_be_32(seq);
	th->recv_ack = rte_cpu_to_be_32(ack);
	th->data_off = 5 << 4;
	th->tcp_flags = flags;
	th->rx_win = rte_cpu_to_be_16(64240);
	if (n > 0)
		memcpy(th + 1, data, n);
	fix_l4_cksum(f);
	return len;
}

size_t mk_udp(uint8_t *f, uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport,
	      const void *data, size_t n)
{
	size_t len = mk_ip(f, src, dst, IPPROTO_UDP, NULL, sizeof(struct rte_udp_hdr) + n);
	struct rte_udp_hdr *uh = f_l4(f);
	uh->src_port = rte_cpu_to_be_16(sport);
	uh->dst_port = rte_cpu_to_be_16(dport);
	uh->dgram_len = rte_cpu_to_be_16((uint16_t)(sizeof(*uh) + n));
	if (n > 0)
		memcpy(uh + 1, data, n);
	fix_l4_cksum(f);
	return len;
}

size_t mk_arp(uint8_t *f, uint16_t op, const struct rte_ether_addr *sha, uint32_t sip,
	      const struct rte_ether_addr *tha, uint32_t tip, const struct rte_ether_addr *eth_dst)
{
	memset(f, 0, RTE_ETHER_HDR_LEN + sizeof(struct rte_arp_hdr));
	put_eth(f, eth_dst, sha, RTE_ETHER_TYPE_ARP);
	struct rte_arp_hdr *a = f_arp(f);
	a->arp_hardware = rte_cpu_to_be_16(RTE_ARP_HRD_ETHER);
	a->arp_protocol = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	a->arp_hlen = 6;
	a->arp_plen = 4;
	a->arp_opcode = rte_cpu_to_be_16(op);
	a->arp_data.arp_sha = *sha;
	a->arp_data.arp_sip = sip;
	a->arp_data.arp_tha = *tha;
	a->arp_data.arp_tip = tip;
	return RTE_ETHER_HDR_LEN + sizeof(struct rte_arp_hdr);
}

size_t add_ip_options(uint8_t *f, size_t len, unsigned n)
{
	struct rte_ipv4_hdr *ip = f_ip(f);
	uint8_t *opt = (uint8_t *)(ip + 1);
	cr_assert(n % 4 == 0 && n <= 40 && len + n <= FRAME_MAX);
	memmove(opt + n, opt, len - RTE_ETHER_HDR_LEN - sizeof(*ip));
	memset(opt, 1 /* NOP */, n);
	opt[n - 1] = 0; /* EOL */
	ip->version_ihl = (uint8_t)(0x40 | (5 + n / 4));
	ip->total_length = rte_cpu_to_be_16((uint16_t)(rte_be_to_cpu_16(ip->total_length) + n));
	fix_ip_cksum(f);
	fix_l4_cksum(f);
	return len + n;
}

bool l4_cksum_ok(uint8_t *f)
{
	struct rte_ipv4_hdr *ip = f_ip(f);
	uint16_t l4_len =
		(uint16_t)(rte_be_to_cpu_16(ip->total_length) - (ip->version_ihl & 0xf) * 4);
	if (ip->next_proto_id == IPPROTO_ICMP)
		return rte_raw_cksum(f_l4(f), l4_len) == 0xffff;
	return rte_ipv4_udptcp_cksum_verify(ip, f_l4(f)) == 0;
}

void expect_ipv4_frame(uint8_t *f, size_t len, uint8_t proto, uint32_t src, uint32_t dst)
{
	struct rte_ipv4_hdr *ip = f_ip(f);
	cr_expect_eq(f_eth(f)->ether_type, rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4));
	cr_expect_eq(ip->version_ihl, 0x45, "version 4, no options");
	cr_expect_eq(rte_be_to_cpu_16(ip->total_length), len - RTE_ETHER_HDR_LEN,
		     "total length %u, frame %zu", rte_be_to_cpu_16(ip->total_length), len);
	cr_expect_eq(rte_raw_cksum(ip, sizeof(*ip)), 0xffff, "IPv4 header checksum");
	cr_expect_eq(ip->time_to_live, NET_TTL);
	cr_expect_eq(ip->fragment_offset & rte_cpu_to_be_16(0x3fff), 0, "not a fragment");
	cr_expect_eq(ip->next_proto_id, proto);
	cr_expect_eq(ip->src_addr, src, "source");
	cr_expect_eq(ip->dst_addr, dst, "destination");
	cr_expect(l4_cksum_ok(f), "L4 checksum");
}

struct rte_mbuf *mk_out_packet(uint32_t src, uint32_t dst, uint16_t tag)
{
	uint8_t f[FRAME_MAX];
	size_t len = mk_udp(f, src, dst, 40000, tag, "hello", 5);
	struct rte_mbuf *m = rte_pktmbuf_alloc(fx_pool);
	cr_assert_not_null(m);
	uint8_t *p = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)(len - RTE_ETHER_HDR_LEN));
	memcpy(p, f + RTE_ETHER_HDR_LEN, len - RTE_ETHER_HDR_LEN);
	return m;
}
