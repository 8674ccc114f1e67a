/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What the relay engine's tests share: a virtual clock (µs) with its own
 * timer wheel, a transport whose next hops are scripted SMTP servers (they
 * answer line by line, as a real one would, one step later), a route table
 * over them, the engine's config, and a loop that runs it all. Addresses
 * come from 203.0.113.0/24 only. The store is the test's: an in-memory one
 * (fake_store.h) or a real spool shard.
 */
#ifndef MX_TEST_RELAY_FIXTURE_H
#define MX_TEST_RELAY_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataplane/relay/relay_sched.h"

#define RX_HZ	 1000000ull /* the virtual clock counts µs */
#define RX_T0	 (1000 * RX_HZ)
#define RX_WALL0 1700000000 /* unix time at RX_T0 */

#define IP4(a, b, c, d)                                                                            \
	((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)

/* The next hops of the test routes (network order), all on port 25. */
#define HOP_A  IP4(203, 0, 113, 10) /* example.com */
#define HOP_B1 IP4(203, 0, 113, 21) /* failover.example, priority 10 */
#define HOP_B2 IP4(203, 0, 113, 22) /* failover.example, priority 20 */
#define HOP_S  IP4(203, 0, 113, 50) /* the smarthost: every other domain */

extern uint64_t rx_now;
extern struct timer_wheel rx_wheel;

/* ---- scripted next hops ---- */

enum rx_hop_mode {
	RX_ACCEPT = 0, /* connects; greets with 220 */
	RX_REFUSE,     /* the connect is refused (RST) */
	RX_SILENT,     /* the connect never completes */
	RX_GREET_554,  /* connects, then 554 at the greeting */
};

#define RX_RULES 8
#define RX_CONTENT_MAX (256 * 1024)

struct rx_hop {
	uint32_t addr;
	uint16_t port;
	enum rx_hop_mode mode;
	const char *ehlo; /* EHLO keywords, one per line ("PIPELINING\nSIZE 10000000\n...") */
	struct {
		const char *addr; /* a recipient (exact, any case) */
		const char *reply; /* its RCPT reply without CRLF: "550 5.1.1 no such user" */
	} rcpt[RX_RULES];
	const char *mail_reply; /* NULL: "250 2.1.0 Ok" */
	const char *data_reply; /* NULL: "250 2.0.0 Ok: queued" */
	bool drop_reused; /* a connection's second MAIL finds it gone (reset, no reply) */
	bool mute_at_dot; /* the end of data is never answered */
	bool reset_at_data; /* DATA resets the connection */
	bool reset_at_dot; /* the end of data is taken (counted in msgs), then a reset, no reply */
	bool mute_at_data; /* DATA is never answered */
	/* what it saw */
	unsigned conns, conns_now, conns_max; /* connections accepted; open now; most at once */
	unsigned connects;		      /* connection attempts, refused and silent ones too */
	unsigned msgs;			      /* messages taken (final 250) */
	unsigned rcpts;			      /* RCPT commands */
	unsigned quits;
	unsigned max_msgs_per_conn;
	char last_mail[512];		       /* the last MAIL command line */
	char last_rcpt[512];		       /* the last RCPT command line */
	uint8_t *content;		       /* the last message taken, unstuffed */
	size_t content_len;
	char senders[16][128]; /* MAIL FROM addresses of messages taken, in order */
	char rcpt_to[16][128]; /* the first RCPT of each */
};

/* The scripted hop at ADDR:25, made (RX_ACCEPT, default EHLO) on first use. */
struct rx_hop *rx_hop(uint32_t addr);

/* Open connections of the transport (the engine's view: open() done, close() not yet). */
unsigned rx_conns_open(void);
/* The most connections open at once, all hops together. */
unsigned rx_conns_peak(void);

/* The transport for the engine (ARG: NULL). */
extern const struct relay_transport_ops rx_transport;

/* Makes the next send() on every connection say -EAGAIN (then writable() comes a step later). */
void rx_block_sends(unsigned n);

/* ---- the engine ---- */

/* The routes: example.com -> A; failover.example -> B1, B2; the rest -> S (unless none). */
extern struct cfg_routes rx_routes;
extern struct cfg_relay rx_relay;

/*
 * Fills C for the tests: the routes and relay above (16 connections per
 * hop, 100 messages per connection, idle 5 s, connect 30 s, pipelining,
 * queue_max 1000), a retry schedule without jitter (first 60 s doubling to
 * 600 s, lifetime 3600 s, delay warning 1800 s), DSNs from mx.example.org,
 * the virtual clock, the transport, STORE/STORE_ARG, and a log that keeps
 * its last lines (rx_log_*).
 */
void rx_config(struct relay_sched_config *c, const struct relay_store_ops *store, void *store_arg);

/* Resets the clock, the wheel, the hops, the routes and the log. Call first. */
void rx_setup(void);
void rx_teardown(void);

/*
 * Runs the world for MS milliseconds of the virtual clock: timers, the
 * transport's events, the store's completions (STORE_STEP, may be NULL;
 * returns how many it ran),
 * and relay_sched_poll(S), in steps of 1 ms (100 ms while nothing moves).
 */
void rx_run(struct relay_sched *s, uint64_t ms, unsigned (*store_step)(void));

/* The wall clock the engine sees now (unix seconds). */
int64_t rx_wall(void);

/* ---- the log ---- */

unsigned rx_log_lines(void);
/* Number of log lines containing S (a substring). */
unsigned rx_log_count(const char *s);
/* Prints the log (for a failing test). */
void rx_log_dump(void);

#endif
