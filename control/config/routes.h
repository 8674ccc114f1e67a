/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The "routes:" section: where accepted mail goes. Per recipient domain an
 * ordered list of next hops (address, port, priority, weight), as MX records
 * would give them, and a smarthost for every other domain. Next hops are
 * IPv4 addresses here; MX lookups through DNS are a later change.
 */
#ifndef MX_CONFIG_ROUTES_H
#define MX_CONFIG_ROUTES_H

#include <stdbool.h>
#include <stdint.h>

#include "control/config/listeners.h"

#define CFG_MAX_NEXT_HOPS 8
#define CFG_TLS_NAME_MAX 254 /* a host name (RFC 1035 §2.3.4) and its NUL */

/* STARTTLS to a next hop (RFC 3207), as Postfix's smtp_tls_security_level. */
enum cfg_hop_tls {
	CFG_HOP_TLS_NONE,    /* "none": never */
	CFG_HOP_TLS_MAY,     /* "may": when offered, unverified; clear text when not offered */
	CFG_HOP_TLS_ENCRYPT, /* "encrypt": required and verified (tls.ca_file, tls_name); else defer */
};

struct cfg_next_hop {
	uint32_t addr;	   /* IPv4, network order */
	uint16_t port;	   /* host order; default 25 */
	uint16_t priority; /* lower first, as MX preference (RFC 5321 §5.1); default 10 */
	uint16_t weight;   /* share among hops of one priority; default 1 */
	uint8_t tls;	   /* enum cfg_hop_tls; default none */
	char tls_name[CFG_TLS_NAME_MAX]; /* name its certificate must carry; "": its address */
};

struct cfg_mail_route {
	struct cfg_domain domain; /* "example.com", or "*.example.net" for names under it */
	struct cfg_next_hop hops[CFG_MAX_NEXT_HOPS]; /* sorted by priority */
	unsigned n_hops;			     /* at least 1 */
};

struct cfg_routes {
	struct cfg_mail_route *domains;
	unsigned n_domains;
	struct cfg_next_hop smarthost[CFG_MAX_NEXT_HOPS]; /* every other domain; sorted */
	unsigned n_smarthost; /* 0: other domains are refused at RCPT (550 5.4.4, unroutable) */
};

#endif
