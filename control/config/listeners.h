/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The SMTP side of the configuration: "listeners:" (the ports mxgate takes
 * mail on, each with a mode, an acknowledgement mode and its limits) and
 * "policy:" (relay domains and networks, recipient lists). Types only; the
 * loader fills them in listeners.c and policy.c.
 */
#ifndef MX_CONFIG_LISTENERS_H
#define MX_CONFIG_LISTENERS_H

#include <stdbool.h>
#include <stdint.h>

#include "control/config/tls.h"

struct cfg_prefix;

#define CFG_MAX_LISTENERS 16

/* What a listener is for (RFC 6409 §3.1 for submission). */
enum cfg_listener_mode {
	CFG_MODE_RELAY,	     /* "relay": port 25, mail for our domains or from our networks */
	CFG_MODE_SUBMISSION, /* "submission": 587/2525, our users only (relay networks until AUTH) */
};

/* When the final 250 goes out (DESIGN.md §3.4). */
enum cfg_ack_mode {
	CFG_ACK_SINK,	     /* "sink": accept, count, discard */
	CFG_ACK_STORE,	     /* "store": 250 once the spool's fdatasync covers the message */
	CFG_ACK_CUT_THROUGH, /* "cut-through": no spool; the next hop's replies, mirrored */
};

struct cfg_listener_limits {
	uint32_t max_message_size;  /* octets, offered as SIZE: 10485760 */
	unsigned max_recipients;    /* per message: 100 */
	unsigned max_errors;	    /* error replies before 421 and close: 20 */
	unsigned command_line;	    /* octets incl. CRLF (RFC 5321 §4.5.3.1.4): 512 */
	unsigned text_line;	    /* octets incl. CRLF (§4.5.3.1.6): 1000 */
	unsigned input_no_crlf;	    /* command input without CRLF before 421 and close: 65536 */
	unsigned sessions;	    /* concurrent sessions per worker: 1024 */
};

struct cfg_listener {
	char *name;			/* unique; default "smtp-PORT" */
	unsigned port;			/* 1..65535, unique */
	enum cfg_listener_mode mode;	/* default relay */
	enum cfg_ack_mode ack;		/* default sink */
	char *hostname;			/* greeting and Received:; default: the host's name */
	unsigned greeting_pause_ms;	/* early-talker window before the 220: 0 */
	bool normalize_bare_eol;	/* bare CR/LF in content rewritten to CRLF, not 554: false */
	enum cfg_listener_tls tls;	/* default starttls when tls.certificates has one, else none */
	bool auth;			/* AUTH offered: default on submission with auth.password_file */
	bool auth_plaintext;		/* AUTH also in the clear (538 otherwise): false */
	struct cfg_listener_limits limits;
};

/* A relay domain: "example.com", or "*.example.net" for every name under example.net. */
struct cfg_domain {
	char *name;    /* lower case, without the "*." */
	bool wildcard; /* subdomains of name (not name itself) */
};

/* The known local parts of one domain; "*" in the list accepts any (catch-all). */
struct cfg_recipients {
	struct cfg_domain domain;
	char **locals; /* as written; compared without regard to case */
	unsigned n_locals;
	bool catch_all;
};

/*
 * Limits per client address, counted across all workers (policy.client_limits),
 * as Postfix's anvil does: concurrent connections, and token buckets for new
 * connections and for messages (MAIL commands), each answered with 421 4.7.0.
 * Rates are per minute; 0 turns a limit off.
 */
struct cfg_client_limits {
	unsigned connections;	    /* concurrent, per address: 50 (Postfix's default) */
	unsigned connection_rate;   /* new connections per minute: 0 */
	unsigned connection_burst;  /* taken at once on top of the rate: default the rate */
	unsigned message_rate;	    /* MAIL commands per minute: 0 */
	unsigned message_burst;	    /* default the rate */
	bool exempt_relay_networks; /* relay_networks are not limited: true */
	unsigned table_size;	    /* addresses tracked at once: 65536 */
};

struct cfg_policy {
	struct cfg_client_limits client_limits;
	struct cfg_domain *relay_domains;
	unsigned n_relay_domains;
	struct cfg_prefix *relay_networks;
	unsigned n_relay_networks;
	struct cfg_recipients *recipients;
	unsigned n_recipients;
};

#endif
