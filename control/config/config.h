/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The mxgate configuration: one YAML schema (libcyaml) shared by mxgate-dp and
 * mxgate-control. Loading checks structure and types; validation checks
 * meaning, and every error names file:line:column and the key path.
 */
#ifndef MX_CONFIG_H
#define MX_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "control/config/auth.h"
#include "control/config/control.h"
#include "control/config/listeners.h"
#include "control/config/relay.h"
#include "control/config/routes.h"
#include "control/config/tls.h"

#define CFG_MAX_WORKERS 16
#define CFG_MAX_PORTS 4
#define CFG_MAX_ADDRS 8
#define CFG_MAX_ROUTES 64

enum cfg_memory_mode {
	CFG_MEM_HUGEPAGES, /* "hugepages": hugetlbfs pages (production) */
	CFG_MEM_NO_HUGE,   /* "no-huge": anonymous memory, for laptops and tests */
};

enum cfg_steering {
	CFG_STEER_AUTO,     /* "auto": software unless the driver is known to steer by RSS */
	CFG_STEER_HARDWARE, /* "hardware": trust the NIC's RSS (symmetric Toeplitz) */
	CFG_STEER_SOFTWARE, /* "software": re-steer every flow packet to its owner */
};

/* An IPv4 prefix; addr in network byte order. */
struct cfg_prefix {
	uint32_t addr;
	uint8_t len; /* 0..32 */
};

struct cfg_port {
	char *name;   /* operator's name, e.g. "wan"; unique */
	char *device; /* PCI address "0000:01:00.0" or a vdev "net_tap0,iface=mxg0" */
	bool is_pci;  /* derived at validation: device parses as a PCI address */
	uint16_t mtu;            /* default 1500; 68..9000 */
	uint16_t rx_desc;        /* default 1024 */
	uint16_t tx_desc;        /* default 1024 */
	enum cfg_steering steering;   /* default auto */
	struct cfg_prefix addrs[CFG_MAX_ADDRS]; /* "198.51.100.2/24" */
	unsigned n_addrs;        /* at least 1 */
};

struct cfg_route {
	struct cfg_prefix dst; /* "0.0.0.0/0" for the default route */
	uint32_t via;          /* gateway, network order; must be on-link for some port */
};

enum cfg_tcp_cc {
	CFG_CC_NEWRENO, /* "newreno" (RFC 5681, RFC 6582) */
	CFG_CC_CUBIC,   /* "cubic" (RFC 9438) */
};

/* The TCP stack of every worker (dataplane.tcp). */
struct cfg_tcp {
	enum cfg_tcp_cc cc;      /* default newreno */
	unsigned syn_backlog;    /* half-open connections per listener before SYN cookies: 1024 */
	unsigned max_conns;      /* per worker: 65536 */
	unsigned rto_min_ms;     /* RFC 6298 minimum RTO: 200 */
	unsigned delack_ms;      /* delayed ACK timer: 40 */
	unsigned time_wait_max;  /* TIME_WAIT entries per worker before recycling: 8192 */
	unsigned rcv_buf_kb;     /* receive window ceiling: 256 */
	unsigned snd_buf_kb;     /* send queue per connection: 256 */
	unsigned echo_port;      /* test service (RFC 862), 0 = off (default) */
	unsigned discard_port;   /* test service (RFC 863), 0 = off (default) */
};

struct cfg_dataplane {
	unsigned main_core;                     /* default 0 */
	unsigned worker_cores[CFG_MAX_WORKERS]; /* CPU of worker i; default [1] */
	unsigned n_workers;                     /* 1..CFG_MAX_WORKERS */
	enum cfg_memory_mode memory_mode;       /* default hugepages */
	unsigned memory_mb;                     /* default 512; used for no-huge, and as -m */
	bool in_memory;                         /* default true: no shared files (no secondaries) */
	char *file_prefix;                      /* default "mxgate"; names the telemetry socket dir */
	unsigned idle_sleep_us;                 /* default 0 (pure polling); >0 naps when idle */
	unsigned tx_drain_us;                   /* default 100 */
	unsigned mbufs_per_worker;              /* default 8191 */
	unsigned steer_ring_size;               /* default 1024, power of two */
	char **eal_args;                        /* extra EAL arguments, appended last */
	unsigned n_eal_args;
	struct cfg_port ports[CFG_MAX_PORTS];
	unsigned n_ports;                       /* at least 1 */
	struct cfg_route routes[CFG_MAX_ROUTES];
	unsigned n_routes;
	unsigned arp_timeout_s;                 /* default 300 */
	unsigned arp_pending_max;               /* per entry, default 8 */
	unsigned icmp_echo_rate;                /* replies/s per worker, default 10000 */
	unsigned icmp_echo_burst;               /* default 2000 */
	unsigned icmp_error_rate;               /* errors/s per worker, default 100 */
	unsigned icmp_error_burst;              /* default 50 */
	struct cfg_tcp tcp;
};

struct cfg {
	char *path; /* file it came from */
	struct cfg_dataplane dp;
	struct cfg_listener listeners[CFG_MAX_LISTENERS]; /* SMTP ports (listeners.c) */
	unsigned n_listeners;
	struct cfg_policy policy; /* relay and recipient policy (policy.c) */
	struct cfg_routes routes; /* next hops by recipient domain (routes.c) */
	struct cfg_spool spool;	  /* store mode's spool (relay.c) */
	struct cfg_relay relay;	  /* the relay client (relay.c) */
	struct cfg_control control; /* mxgate-control (control.c) */
	struct cfg_logging logging;
	struct cfg_tls tls;	  /* certificates and protocol settings (tls.c) */
	struct cfg_auth auth;	  /* AUTH's password file and lockout (auth.c) */
};

/*
 * Loads and validates FILE. Returns a config to free with cfg_free(), or NULL
 * after writing every error it found to ERR, one per line, as
 * "FILE:LINE:COLUMN: KEY.PATH: what is wrong".
 */
struct cfg *cfg_load(const char *path, FILE *err);

/* Same as cfg_load() over a buffer; NAME stands for the file in messages. */
struct cfg *cfg_load_data(const char *name, const uint8_t *data, size_t len, FILE *err);

/* Frees a config from cfg_load*(); NULL is fine. */
void cfg_free(struct cfg *c);

/* Formats an IPv4 prefix as "a.b.c.d/len" into buf (at least 19 bytes); returns buf. */
char *cfg_prefix_str(const struct cfg_prefix *p, char *buf, size_t len);

#endif
