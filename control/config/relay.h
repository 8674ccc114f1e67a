/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The "spool:" and "relay:" sections: where store-mode listeners keep
 * accepted mail (the per-worker spool), and how it leaves (the relay
 * client: retries, lifetime, connection pools, backpressure).
 */
#ifndef MX_CONFIG_RELAY_H
#define MX_CONFIG_RELAY_H

#include <stdbool.h>
#include <stdint.h>

struct cfg_spool {
	char *directory;	   /* one shard per worker under it: /var/spool/mxgate */
	unsigned commit_window_us; /* group commit window: 200 */
	unsigned commit_bytes_kb;  /* ... or this much content, whichever first: 1024 */
	unsigned size_limit_mb;	   /* all shards together, before 452 4.3.1: 0 = the disk's */
	unsigned segment_mb;	   /* preallocated per segment file: 64 */
	unsigned staging_mb;	   /* per worker, content not yet written: 32; > largest message */
	unsigned max_messages;	   /* spooled, not yet final, per worker: 262144 */
	unsigned probe_interval_ms; /* after a write error, try a write this often: 1000 */
	/* backpressure (451 4.3.2 to new transactions, RFC 3463 "system not accepting") */
	unsigned high_water_percent; /* of size_limit_mb: 90 */
	unsigned commit_latency_ms;  /* a commit slower than this: 200 */
};

struct cfg_relay {
	char *helo_name;	      /* EHLO name: default the host name */
	unsigned retry_first_s;	      /* first retry after a deferral: 300 (Postfix's) */
	unsigned retry_max_s;	      /* backoff ceiling: 4000 (Postfix's) */
	unsigned lifetime_h;	      /* then bounce (4.4.7): 120, five days (RFC 5321 §4.5.4.1) */
	unsigned delay_warning_h;     /* one "still trying" DSN after this: 0 = never */
	unsigned connections_per_hop; /* per worker: 16 */
	unsigned messages_per_connection; /* then QUIT and reconnect: 100 */
	unsigned idle_timeout_s;      /* a pooled idle connection closes after: 5 */
	unsigned connect_timeout_s;   /* SYN to established: 30 */
	bool pipelining;	      /* use PIPELINING when offered: true */
	bool chunking;		      /* use BDAT when CHUNKING is offered: false */
	bool send_8bit;		      /* 8-bit to a server without 8BITMIME: false (bounce) */
	unsigned bounce_return_kb;    /* a DSN returns the message up to this, else headers: 256 */
	unsigned queue_max;	      /* messages waiting for delivery per worker: 100000 */
	/* next-hop replies, client side (RFC 5321 §4.5.3.2); store and cut-through alike */
	unsigned command_timeout_s;    /* greeting, EHLO, MAIL, RCPT, RSET, QUIT: 300 */
	unsigned data_block_timeout_s; /* content not moving (window shut, no send space): 180 */
	unsigned data_end_timeout_s;   /* the reply to the end of data: 600 */
};

#endif
