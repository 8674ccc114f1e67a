/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Per-worker counters: one table of names, one array per worker.
 * Each worker is the only writer of its own array; the telemetry thread
 * reads it with relaxed atomic loads, so no counter ever takes a lock.
 */
#ifndef MX_CORE_COUNTERS_H
#define MX_CORE_COUNTERS_H

#include <stdint.h>

#include "dataplane/smtpd/smtpd_counters.h"

/* Traffic counters: X(ENUM, "telemetry name") */
#define DP_TRAFFIC_COUNTERS(X)                                                                     \
	X(RX_PACKETS, "rx_packets")                                                                \
	X(RX_BYTES, "rx_bytes")                                                                    \
	X(TX_PACKETS, "tx_packets")                                                                \
	X(TX_BYTES, "tx_bytes")                                                                    \
	X(STEERED_OUT, "steered_out")     /* handed to the owning worker */                       \
	X(STEERED_IN, "steered_in")       /* received from another worker */                      \
	X(ARP_IN, "arp_in")                                                                        \
	X(ARP_REPLIES_SENT, "arp_replies_sent")                                                    \
	X(ARP_REQUESTS_SENT, "arp_requests_sent")                                                  \
	X(ARP_GRATUITOUS_SENT, "arp_gratuitous_sent")                                              \
	X(ARP_LEARNED, "arp_learned")                                                              \
	X(IPV4_IN, "ipv4_in")                                                                      \
	X(IPV4_OPTIONS_SKIPPED, "ipv4_options_skipped")                                            \
	X(ICMP_ECHO_IN, "icmp_echo_in")                                                            \
	X(ICMP_ECHO_REPLIES_SENT, "icmp_echo_replies_sent")                                        \
	X(ICMP_ECHO_REQUESTS_SENT, "icmp_echo_requests_sent")                                      \
	X(ICMP_ECHO_REPLIES_IN, "icmp_echo_replies_in")                                            \
	X(ICMP_ERRORS_IN, "icmp_errors_in")                                                        \
	X(ICMP_UNREACH_SENT, "icmp_unreach_sent")                                                  \
	X(TCP_IN, "tcp_in")                                                                        \
	X(TCP_RST_SENT, "tcp_rst_sent")                                                            \
	X(UDP_IN, "udp_in")                                                                        \
	X(TCP_SEGS_IN, "tcp_segs_in")                                                              \
	X(TCP_SEGS_OUT, "tcp_segs_out")                                                            \
	X(TCP_PASSIVE_OPENS, "tcp_passive_opens")                                                  \
	X(TCP_ACTIVE_OPENS, "tcp_active_opens")                                                    \
	X(TCP_RSTS_IN, "tcp_rsts_in")           /* valid resets that ended a connection */         \
	X(TCP_RETRANSMITS, "tcp_retransmits")                                                      \
	X(TCP_RTO_TIMEOUTS, "tcp_rto_timeouts")                                                    \
	X(TCP_FAST_RECOVERIES, "tcp_fast_recoveries")                                              \
	X(TCP_OOO_SEGMENTS, "tcp_ooo_segments")                                                    \
	X(TCP_CHALLENGE_ACKS, "tcp_challenge_acks") /* RFC 5961 */                                 \
	X(TCP_SYNCOOKIES_SENT, "tcp_syncookies_sent")                                              \
	X(TCP_SYNCOOKIES_OK, "tcp_syncookies_ok")                                                  \
	X(TCP_TIME_WAIT_RECYCLED, "tcp_time_wait_recycled")                                        \
	X(TCP_TIME_WAIT_REUSED, "tcp_time_wait_reused") /* a newer SYN took it (RFC 6191) */      \
	SMTPD_COUNTERS(X) /* dataplane/smtpd/smtpd_counters.h */                                     \
	X(BUSY_CYCLES, "busy_cycles")  /* TSC cycles of loop iterations that did work */           \
	X(LOOP_CYCLES, "loop_cycles")  /* TSC cycles of every loop iteration */

/* Drop reasons: X(ENUM, "telemetry name") — every dropped packet lands in exactly one. */
#define DP_DROP_COUNTERS(X)                                                                        \
	X(ETH_RUNT, "eth_runt")                   /* shorter than an Ethernet header */            \
	X(ETH_GIANT, "eth_giant")                 /* longer than MTU + header, or chained */       \
	X(ETH_NOT_FOR_US, "eth_not_for_us")       /* unicast to another MAC, or multicast */       \
	X(ETH_BAD_SOURCE, "eth_bad_source")       /* source MAC multicast: never answered */       \
	X(ETH_VLAN, "eth_vlan")                   /* 802.1Q tagged: not configured */              \
	X(ETH_UNKNOWN_TYPE, "eth_unknown_type")   /* neither IPv4 nor ARP */                       \
	X(ARP_MALFORMED, "arp_malformed")         /* truncated, or not Ethernet/IPv4 */            \
	X(ARP_NOT_FOR_US, "arp_not_for_us")       /* target is not one of our addresses */         \
	X(ARP_PENDING_FULL, "arp_pending_full")   /* queue waiting for resolution was full */      \
	X(ARP_UNRESOLVED, "arp_unresolved")       /* next hop never answered */                    \
	X(ARP_TABLE_FULL, "arp_table_full")                                                        \
	X(IPV4_TRUNCATED, "ipv4_truncated")       /* frame shorter than the IPv4 header */         \
	X(IPV4_BAD_VERSION, "ipv4_bad_version")                                                    \
	X(IPV4_BAD_IHL, "ipv4_bad_ihl")                                                            \
	X(IPV4_BAD_LENGTH, "ipv4_bad_length")     /* total length disagrees with the frame */      \
	X(IPV4_BAD_CHECKSUM, "ipv4_bad_checksum")                                                  \
	X(IPV4_TTL_ZERO, "ipv4_ttl_zero")                                                          \
	X(IPV4_FRAGMENT, "ipv4_fragment")                                                          \
	X(IPV4_BAD_SOURCE, "ipv4_bad_source")     /* multicast, broadcast, loopback, zero */        \
	X(IPV4_NOT_FOR_US, "ipv4_not_for_us")                                                      \
	X(IPV4_UNKNOWN_PROTO, "ipv4_unknown_proto")                                                \
	X(IPV4_NO_ROUTE, "ipv4_no_route")                                                          \
	X(ICMP_MALFORMED, "icmp_malformed")       /* truncated or bad checksum */                  \
	X(ICMP_RATE_LIMITED, "icmp_rate_limited") /* reply or error suppressed by the limiter */   \
	X(ICMP_UNHANDLED, "icmp_unhandled")       /* a type we do not act on */                    \
	X(TCP_MALFORMED, "tcp_malformed")         /* truncated, bad offset or bad checksum */      \
	X(TCP_RST_IN, "tcp_rst_in")               /* a RST to a closed port: never answered */     \
	X(TCP_BAD_OPTIONS, "tcp_bad_options")     /* an option with an impossible length */      \
	X(TCP_BAD_FLAGS, "tcp_bad_flags")         /* SYN+FIN, SYN+RST, no ACK when synchronized */\
	X(TCP_NO_CONN, "tcp_no_conn")             /* no connection or listener: answered by RST */\
	X(TCP_BAD_ACK, "tcp_bad_ack")             /* acks what was never sent, or far too old */  \
	X(TCP_PAWS, "tcp_paws")                   /* RFC 7323 old timestamp */                    \
	X(TCP_OUT_OF_WINDOW, "tcp_out_of_window")                                                  \
	X(TCP_RST_IN_WINDOW, "tcp_rst_in_window") /* RFC 5961: challenged, not obeyed */          \
	X(TCP_SYN_IN_WINDOW, "tcp_syn_in_window") /* RFC 5961: challenged */                      \
	X(TCP_OOO_FULL, "tcp_ooo_full")           /* reassembly queue at its bound */             \
	X(TCP_MBUF_CAP, "tcp_mbuf_cap")           /* connection holds its share of mbufs */       \
	X(TCP_CONN_TABLE_FULL, "tcp_conn_table_full")                                              \
	X(TCP_DATA_AFTER_CLOSE, "tcp_data_after_close") /* answered by RST */                     \
	X(TCP_STALE_ACK, "tcp_stale_ack") /* a closed conn's late handshake or final ACK */ \
	X(UDP_MALFORMED, "udp_malformed")                                                          \
	X(UDP_NO_LISTENER, "udp_no_listener")                                                      \
	X(STEER_RING_FULL, "steer_ring_full")                                                      \
	X(TX_FULL, "tx_full")                     /* the port did not take the burst */            \
	X(MBUF_ALLOC_FAILED, "mbuf_alloc_failed")

#define DP_ENUM_(e, name) DP_C_##e,
#define DP_DROP_ENUM_(e, name) DP_DROP_##e,
enum dp_counter { DP_TRAFFIC_COUNTERS(DP_ENUM_) DP_C_MAX };
enum dp_drop { DP_DROP_COUNTERS(DP_DROP_ENUM_) DP_DROP_MAX };
#undef DP_ENUM_
#undef DP_DROP_ENUM_

extern const char *const dp_counter_names[DP_C_MAX];
extern const char *const dp_drop_names[DP_DROP_MAX];

/* One worker's counters. All-zero is the valid starting value. */
struct dp_stats {
	uint64_t c[DP_C_MAX];
	uint64_t drop[DP_DROP_MAX];
};

/*
 * Single writer (the owning worker): a relaxed load+store is enough and
 * compiles to one add. always_inline: see smtp_count() in dataplane/smtp/smtp.h.
 */
static inline __attribute__((always_inline)) void dp_count(struct dp_stats *s,
							   enum dp_counter c, uint64_t n)
{
	__atomic_store_n(&s->c[c], __atomic_load_n(&s->c[c], __ATOMIC_RELAXED) + n,
			 __ATOMIC_RELAXED);
}

static inline __attribute__((always_inline)) void dp_drop(struct dp_stats *s, enum dp_drop d)
{
	__atomic_store_n(&s->drop[d], __atomic_load_n(&s->drop[d], __ATOMIC_RELAXED) + 1,
			 __ATOMIC_RELAXED);
}

/* Reader side (any thread): a consistent-per-field snapshot. */
void dp_stats_read(const struct dp_stats *s, struct dp_stats *out);
/* Adds every field of b into a. */
void dp_stats_add(struct dp_stats *a, const struct dp_stats *b);

#endif
