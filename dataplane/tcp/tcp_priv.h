/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What the files of dataplane/tcp/ share: the connection and stack
 * structures, sequence arithmetic, and the internal entry points between
 * input, output, timers, SACK and reassembly.
 */
#ifndef MX_TCP_PRIV_H
#define MX_TCP_PRIV_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_tcp.h>

#include "dataplane/core/counters.h"
#include "dataplane/core/timer.h"
#include "cc.h"
#include "isn.h"
#include "tcp.h"

/* RFC 9293 §3.3.2 states. */
enum tcp_state {
	TCP_ST_CLOSED,
	TCP_ST_LISTEN, /* listeners only; never a tcp_conn */
	TCP_ST_SYN_SENT,
	TCP_ST_SYN_RECEIVED,
	TCP_ST_ESTABLISHED,
	TCP_ST_FIN_WAIT_1,
	TCP_ST_FIN_WAIT_2,
	TCP_ST_CLOSE_WAIT,
	TCP_ST_CLOSING,
	TCP_ST_LAST_ACK,
	TCP_ST_TIME_WAIT,
};
extern const char *const tcp_state_names[];

/* Modular sequence comparisons (RFC 9293 §3.4). */
static inline bool seq_lt(uint32_t a, uint32_t b) { return (int32_t)(a - b) < 0; }
static inline bool seq_leq(uint32_t a, uint32_t b) { return (int32_t)(a - b) <= 0; }
static inline bool seq_gt(uint32_t a, uint32_t b) { return (int32_t)(a - b) > 0; }
static inline bool seq_geq(uint32_t a, uint32_t b) { return (int32_t)(a - b) >= 0; }
static inline uint32_t seq_max(uint32_t a, uint32_t b) { return seq_gt(a, b) ? a : b; }
static inline uint32_t seq_min(uint32_t a, uint32_t b) { return seq_lt(a, b) ? a : b; }

/* Option kinds (RFC 9293 §3.2, RFC 7323, RFC 2018). */
#define TCPOPT_EOL 0
#define TCPOPT_NOP 1
#define TCPOPT_MSS 2
#define TCPOPT_WS 3
#define TCPOPT_SACK_PERM 4
#define TCPOPT_SACK 5
#define TCPOPT_TS 8

#define TCP_MAX_SACK_BLOCKS 4  /* RFC 2018 §3: 4 without timestamps, 3 with */
#define TCP_SCOREBOARD_MAX 16  /* SACKed ranges remembered by the sender */
#define TCP_DUPTHRESH 3        /* RFC 6675 §2 DupThresh */
#define TCP_MAX_LISTENERS 16
#define TCP_EPHEMERAL_LO 32768 /* active opens pick from this range */
#define TCP_EPHEMERAL_HI 60999

/*
 * TSC to microseconds, floor(tsc / tsc_per_us) with tsc_per_us = hz / 10^6 as
 * the timers use it, by one 64x64->128 multiply and a shift: the divisor's
 * reciprocal (T. Granlund, P. Montgomery, "Division by invariant integers
 * using multiplication", PLDI 1994, theorem 4.2) taken once, at
 * tcp_clock_init(). Exact for every 64-bit TSC value: the multiplier is
 * 2^64 + magic, 65 bits, and 2^(64+shift) <= (2^64 + magic) * tsc_per_us
 * <= 2^(64+shift) + 2^shift.
 */
struct tcp_clock {
	uint64_t tsc_per_us;
	uint64_t magic;
	uint8_t shift;
};
/* Prepares K for a clock of HZ units per second (a TSC, or 10^6 for a microsecond clock). */
void tcp_clock_init(struct tcp_clock *k, uint64_t hz);

static inline uint64_t tcp_clock_us(const struct tcp_clock *k, uint64_t tsc)
{
	unsigned __int128 hi = ((unsigned __int128)tsc * k->magic) >> 64;
	return (uint64_t)((hi + tsc) >> k->shift);
}

/* A sequence range [start, end). */
struct tcp_range {
	uint32_t start, end;
};

/*
 * A place in the send queue: one of its mbufs and the sequence number of that
 * mbuf's first byte. A set position always points into the queue.
 */
struct tcp_sq_pos {
	struct rte_mbuf *m; /* NULL: unset */
	uint32_t seq;
};

/* The send-queue positions a connection keeps (struct tcp_conn sq_cur[]). */
enum tcp_sq_cursor {
	TCP_SQ_NEW,     /* where new data (or go-back-N after an RTO) continues: SND.NXT */
	TCP_SQ_RXT,     /* where retransmissions of holes continue (RFC 6675 HighRxt) */
	TCP_SQ_CURSORS,
	TCP_SQ_NONE = TCP_SQ_CURSORS, /* a one-off read that moves no cursor */
};

/* An out-of-order segment held for reassembly. */
struct tcp_ooo_seg {
	uint32_t seq, len;
	struct rte_mbuf *m; /* payload only */
};

/* Options of a received segment (RFC 9293 §3.1, RFC 7323, RFC 2018). */
struct tcp_seg_opts {
	bool has_mss, has_ws, sack_ok, has_ts;
	uint16_t mss;
	uint8_t ws;
	uint32_t tsval, tsecr;
	unsigned n_sack;
	struct tcp_range sack[TCP_MAX_SACK_BLOCKS];
};

/* A parsed segment on its way through input. */
struct tcp_seg {
	struct rte_mbuf *m;
	const struct rte_ipv4_hdr *ip;
	const struct rte_tcp_hdr *th;
	uint32_t saddr, daddr; /* network order */
	uint16_t sport, dport; /* network order */
	uint32_t seq, ack;
	uint32_t len; /* payload bytes */
	uint32_t wnd; /* unscaled */
	uint8_t flags;
	uint16_t hlen; /* IPv4 + TCP header bytes before the payload */
	struct tcp_seg_opts opt;
};

struct tcp_listener {
	uint32_t addr; /* 0: any */
	uint16_t port;
	bool used;
	unsigned syn_pending; /* half-open connections now */
	struct tcp_listen_opts o;
};

struct tcp_conn {
	struct tcp_conn *hnext; /* connection table chain */
	struct tcp_stack *s;
	uint32_t laddr, raddr;  /* network order */
	uint16_t lport, rport;  /* network order */
	enum tcp_state state;
	const struct tcp_ops *ops;
	void *arg;
	struct tcp_listener *listener; /* while SYN_RECEIVED from a passive open */

	/* flags */
	bool passive;
	bool hs_by_data;   /* passive, ESTABLISHED by a segment with data or FIN: the client's
			    * pure handshake ACK may still come, late (tcp_stale_remember) */
	bool last_acked;   /* our FIN was acked in LAST_ACK: duplicates of that ACK may follow */
	bool app_closed;   /* tcp_close(): nothing more will be read */
	bool fin_queued;   /* tcp_shutdown(): send FIN after the queue */
	bool fin_sent;
	bool fin_rcvd;
	bool ws_ok, sack_ok, ts_ok;
	bool nagle;
	bool ack_now;      /* send an ACK at the next output */
	bool in_recovery;
	bool want_writable;
	bool notified;     /* closed() already called */
	bool in_tw_list;
	bool doomed;       /* destroyed; freed when busy drops to 0 */
	unsigned busy;     /* input or a callback chain is using it */

	/* send sequence space (RFC 9293 §3.3.1) */
	uint32_t iss, snd_una, snd_nxt, snd_max; /* snd_max: highest ever sent */
	uint32_t snd_wnd, snd_wl1, snd_wl2, max_snd_wnd;
	uint8_t snd_wscale;
	/* receive sequence space */
	uint32_t irs, rcv_nxt, rcv_adv; /* rcv_adv: right edge we last announced */
	uint8_t rcv_wscale;
	uint32_t rcv_unconsumed; /* delivered but not yet tcp_consumed() */
	uint32_t last_ack_sent;
	unsigned segs_unacked;   /* full segments received since our last ACK */

	uint16_t mss;      /* effective send MSS (payload per segment, options excluded) */
	uint16_t peer_mss;

	/* timestamps (RFC 7323) */
	uint32_t ts_recent, ts_recent_age_ms, ts_offset;

	/* RTT and RTO (RFC 6298), microseconds */
	uint32_t srtt_us, rttvar_us, rto_us;
	uint32_t rtt_seq;  /* Karn timing without timestamps */
	uint64_t rtt_start_us;
	bool rtt_timing;
	unsigned retries;  /* consecutive RTO expirations */
	uint64_t last_send_us;
	uint64_t last_oow_ack_us; /* last ACK to an out-of-window pure ACK */

	/* congestion control */
	const struct tcp_cc_ops *cc;
	enum tcp_cc_algo active_cc; /* chosen at tcp_connect() */
	struct tcp_cc_state ccs;
	unsigned dupacks;
	uint32_t lt_sent;  /* RFC 3042: sent by limited transmit in this run of duplicate ACKs */
	uint32_t recover;  /* RFC 6582 recover / RFC 6675 RecoveryPoint */
	uint32_t high_rxt; /* RFC 6675 HighRxt */
	uint32_t rescue_rxt; /* RFC 6675 RescueRxt, when rescue_set */
	bool rescue_set;     /* RescueRxt is defined: a rescue went out in this recovery */
	struct tcp_range scoreboard[TCP_SCOREBOARD_MAX]; /* SACKed by the peer, sorted */
	unsigned n_sacked;

	/* send queue: every byte from snd_una on, as a list of mbuf segments (->next) */
	struct rte_mbuf *sq_head, *sq_tail;
	uint32_t sq_bytes;   /* bytes queued from snd_una */
	unsigned sq_mbufs;
	/*
	 * Where building the next segment picks up, so finding its first byte
	 * costs O(1) amortised however long the queue is (many small sends).
	 * tcp_sq_release() and tcp_sq_purge() keep them pointing into the queue.
	 */
	struct tcp_sq_pos sq_cur[TCP_SQ_CURSORS];

	/* reassembly: out-of-order segments, sorted by seq; allocated on first need */
	struct tcp_ooo_seg *ooo;
	unsigned n_ooo;
	unsigned ooo_mbufs; /* mbufs the held segments are made of (received chains) */
	struct tcp_range last_sack_trigger; /* RFC 2018 §4: first SACK block */

	/* timers on the worker's wheel */
	struct timer t_rexmt;   /* retransmission, SYN retries, persist (zero window or SWS) */
	struct timer t_delack;
	struct timer t_keep;    /* keepalive, FIN_WAIT_2 timeout */
	struct timer t_2msl;    /* TIME_WAIT */
	bool persist;           /* t_rexmt is probing a zero window or is the SWS override */
	bool sws_override;      /* the SWS override timeout expired: send into a small window */
	unsigned probes;

	struct tcp_conn *tw_next, **tw_pprev; /* TIME_WAIT FIFO, for recycling */
};

/*
 * A late handshake ACK. When a client's pure ACK of our SYN-ACK reaches us
 * after the data that followed it -- the steering of a software-steered port
 * can reorder a flow across two queues this way, and so can a network --
 * the data completed the handshake, and the connection may even have ended
 * before the ACK arrives. RFC 9293 §3.10.7.1 would answer it with a RST,
 * which resets a client that did nothing wrong (Linux drops its TIME_WAIT on
 * it). We remember, for a few seconds, the one segment that can come that
 * way (same 4-tuple, SEQ = IRS+1, ACK = ISS+1, no data) and drop it alone.
 * The same holds for a duplicate of the ACK that ended a passive close (a
 * retransmitted FIN re-acked by the client while the first ACK was late).
 */
#define TCP_STALE_SLOTS 256
#define TCP_STALE_US (3 * 1000000ull)

struct tcp_stack {
	struct tcp_params p;
	struct timer_wheel *wheel;
	struct rte_mempool *pool;
	struct dp_stats *stats;
	tcp_ip_output_fn out;
	void *out_arg;
	uint16_t local_mtu;
	uint8_t secret[32];
	struct tcp_secret key; /* ISN (RFC 6528), timestamp offsets, SYN cookies */
	uint64_t hz;
	struct tcp_clock clock; /* TSC to microseconds without a division */

	struct tcp_listener listeners[TCP_MAX_LISTENERS];
	struct rte_mempool *conns; /* struct tcp_conn objects */
	struct tcp_conn **table;   /* hash buckets */
	uint32_t table_mask;
	unsigned n_conns;
	unsigned n_time_wait;
	struct tcp_conn *tw_head, **tw_tail;
	/* Closed connections whose handshake ACK may still arrive (tcp_stale_*) */
	struct tcp_stale {
		uint32_t laddr, raddr;
		uint16_t lport, rport;
		uint32_t seq, ack;   /* the late handshake ACK's: IRS+1 and ISS+1 */
		uint32_t fseq, fack; /* a duplicate of the ACK of our FIN: RCV.NXT, SND.MAX */
		bool hs, fin;	     /* which of the two may come */
		uint64_t until_us;
	} stale[TCP_STALE_SLOTS];
	uint16_t next_ephemeral;
	/* RFC 5961 §7: challenge ACKs are rate-limited per stack */
	uint64_t challenge_window_us;
	unsigned challenge_count;
	uint64_t now_us;  /* the clock of the segment or timer being processed */
	uint64_t now_tsc; /* the same in TSC units: what timers are armed from */
	/*
	 * > 0 while the stack handles an event (input, one of its timers, an API
	 * call): callbacks run inside it and use that event's clock. An API call
	 * at 0 reads the clock itself with read_clock.
	 */
	unsigned in_event;
	tcp_clock_fn read_clock;
	void *read_clock_arg;
	/*
	 * Send-queue walking, for tests and benchmarks: segments whose payload
	 * was looked up in the queue, the mbufs stepped over to find where each
	 * payload starts, and the most one lookup stepped over. The cursors keep
	 * this bounded per segment, whatever the queue's length.
	 */
	uint64_t sq_seeks, sq_seek_steps, sq_seek_max;
};

/* clock: microseconds since the wheel's epoch */
static inline uint64_t tcp_now_us(const struct tcp_stack *s, uint64_t now)
{
	return tcp_clock_us(&s->clock, now);
}

/* Sets the stack clock to TSC value NOW. */
static inline void tcp_clock_set(struct tcp_stack *s, uint64_t now)
{
	s->now_tsc = now;
	s->now_us = tcp_clock_us(&s->clock, now);
}

/* Microseconds to TSC units (timers). */
static inline uint64_t tcp_us_to_tsc(const struct tcp_stack *s, uint64_t us)
{
	return us * s->clock.tsc_per_us;
}

/* conn.c */
struct tcp_conn *tcp_conn_lookup(struct tcp_stack *s, uint32_t laddr, uint16_t lport,
				 uint32_t raddr, uint16_t rport);
struct tcp_conn *tcp_conn_new(struct tcp_stack *s, uint32_t laddr, uint16_t lport,
			      uint32_t raddr, uint16_t rport);
/* A closed connection's handshake ACK may still come: remember it (see TCP_STALE_SLOTS). */
void tcp_stale_remember(struct tcp_conn *c);
/* True when G is the late handshake ACK of a connection remembered above. */
bool tcp_stale_match(struct tcp_stack *s, const struct tcp_seg *g);

/* Unlinks and frees c, calling closed(reason) first if the app knows it. */
void tcp_conn_destroy(struct tcp_conn *c, enum tcp_close_reason reason);
/* Keeps c's memory alive across callbacks that may destroy it. */
void tcp_conn_hold(struct tcp_conn *c);
void tcp_conn_release(struct tcp_conn *c);
void tcp_conn_set_state(struct tcp_conn *c, enum tcp_state st);
void tcp_enter_time_wait(struct tcp_conn *c);
struct tcp_listener *tcp_listener_find(struct tcp_stack *s, uint32_t addr, uint16_t port);

/* output.c */
/*
 * The ones' complement sum (RFC 1071) of LEN bytes of chain M from offset
 * OFF, added to SUM (a pseudo-header's), folded to 16 bits; not complemented.
 * Right for pieces of any length, odd ones included.
 */
uint16_t tcp_cksum_mbuf(const struct rte_mbuf *m, uint32_t off, uint32_t len, uint32_t sum);
/* Sends what the windows allow, FIN when due, and an ACK when one is owed. */
void tcp_output(struct tcp_conn *c);
/* Sends a bare segment for c with FLAGS (SYN, SYN|ACK, ACK, RST...) at seq SEQ. */
int tcp_send_ctl(struct tcp_conn *c, uint8_t flags, uint32_t seq);
/* Sends an ACK now (also a challenge ACK). */
void tcp_send_ack(struct tcp_conn *c);
/* A RST answering segment g with no connection (RFC 9293 §3.10.7.1). */
void tcp_send_reset_for(struct tcp_stack *s, const struct tcp_seg *g);
/* Retransmits len bytes from seq (a hole or the RTO segment). Returns bytes sent. */
uint32_t tcp_retransmit(struct tcp_conn *c, uint32_t seq, uint32_t len);
/*
 * RFC 3042 limited transmit, on the first and second duplicate ACK: sends one
 * segment of new data when there is some, the peer's window takes all of it
 * and FlightSize stays within cwnd + 2*SMSS. cwnd is not changed. Returns the
 * bytes sent (0: nothing was allowed or there was nothing to send).
 */
uint32_t tcp_limited_transmit(struct tcp_conn *c);
/* Frees N acknowledged bytes from the front of the send queue (its cursors follow). */
void tcp_sq_release(struct tcp_conn *c, uint32_t n);
/* Frees the whole send queue. */
void tcp_sq_purge(struct tcp_conn *c);
/* The window we announce, scaled for the header. */
uint16_t tcp_rcv_window_field(struct tcp_conn *c, bool syn);
uint32_t tcp_rcv_space(const struct tcp_conn *c);

/* timers.c */
/* The default tcp_clock_fn: rte_rdtsc(). */
uint64_t tcp_read_tsc(void *arg);
/*
 * Brackets the stack's handling of an event that comes with its own clock
 * (input, a TCP timer): callbacks made inside use NOW.
 */
static inline void tcp_event_enter(struct tcp_stack *s, uint64_t now)
{
	s->in_event++;
	tcp_clock_set(s, now);
}
static inline void tcp_event_leave(struct tcp_stack *s)
{
	s->in_event--;
}
/* The same for an API call: the clock is read only when no event is running. */
static inline void tcp_api_enter(struct tcp_stack *s)
{
	if (s->in_event++ == 0)
		tcp_clock_set(s, s->read_clock(s->read_clock_arg));
}
void tcp_timers_init(struct tcp_conn *c);
void tcp_timers_cancel(struct tcp_conn *c);
void tcp_arm_rexmt(struct tcp_conn *c);
/* Arms t_rexmt (with persist set) as the sender SWS override timer (RFC 9293 §3.8.6.2.1). */
void tcp_arm_sws_override(struct tcp_conn *c);
void tcp_rtt_sample(struct tcp_conn *c, uint32_t rtt_us);
void tcp_arm_delack(struct tcp_conn *c);
void tcp_arm_keepalive(struct tcp_conn *c);
void tcp_arm_fin_wait_2(struct tcp_conn *c);

/* sack.c */
/* Adds the segment's SACK blocks to the scoreboard; true when one reported bytes not on it yet. */
bool tcp_sack_update(struct tcp_conn *c, const struct tcp_seg_opts *o);
void tcp_sack_clear(struct tcp_conn *c);
bool tcp_sack_is_sacked(const struct tcp_conn *c, uint32_t seq, uint32_t *end);
bool tcp_sack_is_lost(const struct tcp_conn *c, uint32_t seq);
uint32_t tcp_sack_pipe(const struct tcp_conn *c);
/*
 * RFC 6675 §4 NextSeg() rule (1), or rule (3) with ANY: 0 and seq, len set
 * when a hole above HighRxt is to be retransmitted, else -1.
 */
int tcp_sack_next_seg(struct tcp_conn *c, bool any, uint32_t *seq, uint32_t *len);
/*
 * RFC 6675 §4 NextSeg() rule (4): 0 and seq, len of a segment (at most one
 * SMSS, clear of SACKed bytes) that holds the highest unSACKed sequence
 * number outstanding, when a rescue retransmission is allowed now; else -1.
 */
int tcp_sack_rescue_seg(const struct tcp_conn *c, uint32_t *seq, uint32_t *len);

/* reass.c */
/*
 * Drops N bytes from the front of chain M, freeing the mbufs emptied, and
 * returns what is left (NULL when nothing is).
 */
struct rte_mbuf *tcp_mbuf_trim_front(struct rte_mbuf *m, uint32_t n);
/* Keeps the first KEEP (> 0) bytes of chain M, freeing the mbufs past them. */
void tcp_mbuf_keep(struct rte_mbuf *m, uint32_t keep);
/* Queues an out-of-order payload (takes ownership). Returns 0 or -ENOBUFS (dropped). */
int tcp_reass_insert(struct tcp_conn *c, uint32_t seq, uint32_t len, struct rte_mbuf *m);
/* Delivers queued segments that rcv_nxt has reached. */
void tcp_reass_drain(struct tcp_conn *c);
void tcp_reass_free(struct tcp_conn *c);
/* Fills up to max SACK blocks for our next ACK (RFC 2018 §4). */
unsigned tcp_reass_sack_blocks(const struct tcp_conn *c, struct tcp_range *out, unsigned max);

/* input.c */
/* Hands in-order payload to the application; adjusts rcv_nxt. */
void tcp_deliver(struct tcp_conn *c, struct rte_mbuf *m, uint32_t len);
/* Checks that c may take another mbuf (the per-connection cap). */
bool tcp_conn_can_hold(const struct tcp_conn *c, unsigned n);

#endif
