/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Inside the config loader: the index of where each key sits in the file, the
 * error list every check writes to, and the typed readers that turn the
 * strings libcyaml loaded into checked values. Not for use outside this folder.
 */
#ifndef MX_CONFIG_PRIV_H
#define MX_CONFIG_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cyaml/cyaml.h>

#include "control/config/config.h"

/* 1-based, as editors count; {0, 0} means "nowhere", printed as 1:1. */
struct cfg_pos {
	unsigned line;
	unsigned col;
};

enum cfg_node_kind {
	CFG_NODE_SCALAR,
	CFG_NODE_MAPPING,
	CFG_NODE_SEQUENCE,
};

/* One key or sequence entry in the document, e.g. "dataplane.ports[0].mtu". */
struct cfg_node {
	char *path;
	const char *name;     /* the key as written (inside path); NULL for entries and the root */
	int parent;	      /* index of the enclosing node; -1 for the root */
	struct cfg_pos key;   /* the key itself; for sequence entries, the entry */
	struct cfg_pos value; /* start of the value */
	enum cfg_node_kind kind;
	bool is_null; /* plain scalar "", "~" or "null": written but left empty */
};

struct cfg_diag {
	struct cfg_pos pos;
	unsigned seq; /* report order, to keep the sort stable */
	char *text;   /* "key.path: what is wrong" */
};

/* State of one load: the document's index and the errors found so far. */
struct cfg_ctx {
	const char *name;	/* the file, as the operator named it */
	struct cfg_node *nodes; /* in document order: a parent comes before its children */
	unsigned n_nodes;
	unsigned cap_nodes;
	unsigned *slots;  /* hash of path -> node index + 1; 0 is a free slot */
	unsigned n_slots; /* a power of two, at least twice n_nodes */
	bool empty;	  /* the document holds no node at all */
	struct cfg_diag *diags;
	unsigned n_diags;
	unsigned cap_diags;
	bool oom; /* an allocation failed; the load fails with a note saying so */
};

/* Printed in place of a key path for problems that belong to no key. */
#define CFG_PATH_TOP "(top level)"

/*
 * Walks DATA with libyaml once and fills x->nodes. Reports YAML syntax errors,
 * duplicate keys, aliases and extra documents. Returns 0, or -1 when the
 * document cannot be loaded (errors are in x).
 */
int cfg_idx_build(struct cfg_ctx *x, const uint8_t *data, size_t len);

/* The node at PATH, or NULL when the key is not in the file. */
const struct cfg_node *cfg_idx_find(const struct cfg_ctx *x, const char *path);

/*
 * Where to point for a problem with PATH's value: the value, or its key when the
 * value is empty; for a key that is absent, the nearest enclosing key present.
 */
struct cfg_pos cfg_pos_value(const struct cfg_ctx *x, const char *path);

/* Where to point for a problem with PATH's key (e.g. a list with too many entries). */
struct cfg_pos cfg_pos_key(const struct cfg_ctx *x, const char *path);

/* Records one error; PATH is the key path shown to the operator. */
void cfg_error(struct cfg_ctx *x, struct cfg_pos pos, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Writes the errors to ERR in file order, one per line; ERR may be NULL. */
void cfg_diag_flush(struct cfg_ctx *x, FILE *err);

/* Frees the index and the errors; X may then be reused or dropped. */
void cfg_ctx_fini(struct cfg_ctx *x);

/* Schema shorthands: every scalar is loaded as the string written (see below). */
#define CFG_STR(key, type, member) \
	CYAML_FIELD_STRING_PTR(key, CYAML_FLAG_OPTIONAL, type, member, 0, CYAML_UNLIMITED)
/*
 * An absent, null ("key:" alone) or empty list or section loads as NULL: the
 * build step asks the index when it must tell these apart.
 */
#define CFG_OPT_NULL (CYAML_FLAG_OPTIONAL | CYAML_FLAG_POINTER_NULL_STR)

/* snprintf() into BUF for key paths ("dataplane.ports[1].mtu"); returns BUF. */
const char *cfg_pathf(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Typed readers. RAW is the string libcyaml loaded for PATH, NULL when the key
 * is absent, in which case *OUT becomes DEF. Each returns 0, or -1 after
 * reporting what is wrong (then *OUT holds DEF).
 */
int cfg_get_uint(struct cfg_ctx *x, const char *path, const char *raw, unsigned min, unsigned max,
		 unsigned def, unsigned *out);
int cfg_get_bool(struct cfg_ctx *x, const char *path, const char *raw, bool def, bool *out);

/* One accepted spelling of an enum value. */
struct cfg_enum {
	const char *name;
	int value;
};

/* logging.level's names (loglevel.c), ending with {NULL, 0}. */
extern const struct cfg_enum cfg_log_levels[];

/* TAB ends with a {NULL, 0} entry. */
int cfg_get_enum(struct cfg_ctx *x, const char *path, const char *raw, const struct cfg_enum *tab,
		 int def, int *out);

/*
 * A non-empty string; *OUT is a copy of RAW (or of DEF) for the caller to free.
 * DEF may be NULL, then *OUT stays NULL when the key is absent.
 */
int cfg_get_str(struct cfg_ctx *x, const char *path, const char *raw, const char *def, char **out);

/*
 * The document as libcyaml loads it, one struct per mapping. Every scalar is
 * kept as the string written (NULL when the key is absent) and converted by the
 * cfg_get_*() readers: libcyaml 1.3 reads "-1" as a huge unsigned, "0x10" as
 * 16, "1.5" as 1 and "maybe" as true, which an operator should hear about.
 * Lists are NULL with a zero count when absent or empty.
 */
struct cfg_raw_memory {
	char *mode;
	char *size_mb;
	char *in_memory;
	char *file_prefix;
};

struct cfg_raw_port {
	char *name;
	char *device;
	char *mtu;
	char *rx_desc;
	char *tx_desc;
	char *steering;
	char **addresses;
	unsigned n_addresses;
};

struct cfg_raw_route {
	char *dst;
	char *via;
};

struct cfg_raw_arp {
	char *timeout_s;
	char *pending_max;
};

struct cfg_raw_icmp {
	char *echo_rate;
	char *echo_burst;
	char *error_rate;
	char *error_burst;
};

struct cfg_raw_tcp {
	char *cc;
	char *syn_backlog;
	char *max_conns;
	char *rto_min_ms;
	char *delack_ms;
	char *time_wait_max;
	char *rcv_buf_kb;
	char *snd_buf_kb;
	char *echo_port;
	char *discard_port;
};

struct cfg_raw_dataplane {
	char *main_core;
	char **worker_cores;
	unsigned n_worker_cores;
	struct cfg_raw_memory *memory;
	char *idle_sleep_us;
	char *tx_drain_us;
	char *mbufs_per_worker;
	char *steer_ring_size;
	char **eal_args;
	unsigned n_eal_args;
	struct cfg_raw_port *ports;
	unsigned n_ports;
	struct cfg_raw_route *routes;
	unsigned n_routes;
	struct cfg_raw_arp *arp;
	struct cfg_raw_icmp *icmp;
	struct cfg_raw_tcp *tcp;
};

struct cfg_raw_limits {
	char *max_message_size;
	char *max_recipients;
	char *max_errors;
	char *command_line;
	char *text_line;
	char *input_no_crlf;
	char *sessions;
};

struct cfg_raw_listener {
	char *name;
	char *port;
	char *mode;
	char *ack;
	char *hostname;
	char *greeting_pause_ms;
	char *normalize_bare_eol;
	char *tls;
	char *auth;
	char *auth_plaintext;
	struct cfg_raw_limits *limits;
};

struct cfg_raw_recipients {
	char *domain;
	char **local_parts;
	unsigned n_local_parts;
};

struct cfg_raw_client_limits {
	char *connections;
	char *connection_rate;
	char *connection_burst;
	char *message_rate;
	char *message_burst;
	char *exempt_relay_networks;
	char *table_size;
};

struct cfg_raw_policy {
	struct cfg_raw_client_limits *client_limits;
	char **relay_domains;
	unsigned n_relay_domains;
	char **relay_networks;
	unsigned n_relay_networks;
	struct cfg_raw_recipients *recipients;
	unsigned n_recipients;
};

struct cfg_raw_next_hop {
	char *address;
	char *port;
	char *priority;
	char *weight;
	char *tls;
	char *tls_name;
};

struct cfg_raw_mail_route {
	char *domain;
	struct cfg_raw_next_hop *next_hops;
	unsigned n_next_hops;
};

struct cfg_raw_routes {
	struct cfg_raw_mail_route *domains;
	unsigned n_domains;
	struct cfg_raw_next_hop *smarthost;
	unsigned n_smarthost;
};

struct cfg_raw_spool {
	char *directory;
	char *commit_window_us;
	char *commit_bytes_kb;
	char *size_limit_mb;
	char *segment_mb;
	char *staging_mb;
	char *max_messages;
	char *probe_interval_ms;
	char *high_water_percent;
	char *commit_latency_ms;
};

struct cfg_raw_relay {
	char *helo_name;
	char *retry_first_s;
	char *retry_max_s;
	char *lifetime_h;
	char *delay_warning_h;
	char *connections_per_hop;
	char *messages_per_connection;
	char *idle_timeout_s;
	char *connect_timeout_s;
	char *pipelining;
	char *chunking;
	char *send_8bit;
	char *bounce_return_kb;
	char *queue_max;
	char *command_timeout_s;
	char *data_block_timeout_s;
	char *data_end_timeout_s;
};

struct cfg_raw_control {
	char *socket;
	char *metrics_listen;
	char *telemetry_socket;
	char *sample_interval_ms;
	char *history_s;
};

struct cfg_raw_logging {
	char *level;
	char *destination;
};

struct cfg_raw_tls_cert {
	char *cert;
	char *key;
};

struct cfg_raw_tls {
	struct cfg_raw_tls_cert *certificates;
	unsigned n_certificates;
	char *min_version;
	char *ciphers;
	char *ciphersuites;
	char *groups;
	char *session_tickets;
	char *handshake_timeout_ms;
	char *ca_file;
};

struct cfg_raw_auth {
	char *password_file;
	char *max_failures;
	char *lockout_s;
	char *queue_depth;
};

/* The whole file: one pointer per top-level section, NULL when absent. */
struct cfg_raw {
	struct cfg_raw_dataplane *dataplane;
	struct cfg_raw_listener *listeners;
	unsigned n_listeners;
	struct cfg_raw_policy *policy;
	struct cfg_raw_routes *routes;
	struct cfg_raw_spool *spool;
	struct cfg_raw_relay *relay;
	struct cfg_raw_control *control;
	struct cfg_raw_logging *logging;
	struct cfg_raw_tls *tls;
	struct cfg_raw_auth *auth;
};

/*
 * Section "dataplane" (dataplane.c): its keys, and the step that checks them and
 * fills DP. RAW may be NULL (section absent). Reports every problem it finds to X;
 * DP may be partly filled either way, and cfg_dp_free() frees it.
 */
extern const cyaml_schema_field_t cfg_dp_fields[];
void cfg_dp_build(struct cfg_ctx *x, const struct cfg_raw_dataplane *raw, struct cfg_dataplane *dp);

/* Frees what cfg_dp_build() allocated in DP; leaves DP all zero. */
void cfg_dp_free(struct cfg_dataplane *dp);

/* Section "listeners" (listeners.c): one entry's schema, and the step that fills C. */
extern const cyaml_schema_value_t cfg_listener_entry;
void cfg_listeners_build(struct cfg_ctx *x, const struct cfg_raw *raw, struct cfg *c);
void cfg_listeners_free(struct cfg *c);

/*
 * "example.com", or "*.example.net" when ALLOW_WILD, into D (lower case, for
 * the caller to free). Returns 0, or -1 after reporting what is wrong.
 */
int cfg_domain_parse(struct cfg_ctx *x, const char *path, const char *raw, bool allow_wild,
		     struct cfg_domain *d);

/* Section "policy" (policy.c): its keys, and the step that fills C->policy. */
extern const cyaml_schema_field_t cfg_policy_fields[];
void cfg_policy_build(struct cfg_ctx *x, const struct cfg_raw_policy *raw, struct cfg_policy *p);
void cfg_policy_free(struct cfg_policy *p);

/* Section "routes" (routes.c): mail routes by recipient domain, and the smarthost. */
extern const cyaml_schema_field_t cfg_routes_fields[];
void cfg_routes_build(struct cfg_ctx *x, const struct cfg_raw_routes *raw, struct cfg_routes *r);
void cfg_routes_free(struct cfg_routes *r);

/* Sections "spool" and "relay" (relay.c): the store-mode spool and the relay client. */
extern const cyaml_schema_field_t cfg_spool_fields[];
extern const cyaml_schema_field_t cfg_relay_fields[];
void cfg_spool_build(struct cfg_ctx *x, const struct cfg_raw_spool *raw, struct cfg_spool *s);
void cfg_relay_build(struct cfg_ctx *x, const struct cfg_raw_relay *raw, struct cfg_relay *r);
void cfg_spool_free(struct cfg_spool *s);
/* Rules across listeners and spool (a store listener's messages fit the spool's staging). */
void cfg_store_check(struct cfg_ctx *x, const struct cfg *c);
void cfg_relay_free(struct cfg_relay *r);

/*
 * Sections "control" and "logging" (control.c). The control section's defaults
 * derive from DP (the telemetry socket from its file prefix), so it is built after it.
 */
extern const cyaml_schema_field_t cfg_control_fields[];
extern const cyaml_schema_field_t cfg_logging_fields[];
void cfg_control_build(struct cfg_ctx *x, const struct cfg_raw_control *raw,
		       const struct cfg_dataplane *dp, struct cfg_control *c);
void cfg_logging_build(struct cfg_ctx *x, const struct cfg_raw_logging *raw,
		       struct cfg_logging *l);
void cfg_control_free(struct cfg_control *c, struct cfg_logging *l);

/* Section "tls" (tls.c): certificates opened and matched, lists checked by OpenSSL. */
extern const cyaml_schema_field_t cfg_tls_fields[];
void cfg_tls_build(struct cfg_ctx *x, const struct cfg_raw_tls *raw, struct cfg_tls *t);
void cfg_tls_free(struct cfg_tls *t);
/* A listener's "tls:" mode; the tls section is built first (its certificates decide). */
void cfg_listener_tls_build(struct cfg_ctx *x, const struct cfg_tls *t, unsigned i,
			    const char *raw, struct cfg_listener *l);
/* A next hop's "tls:" and "tls_name:" at BASE (routes...next_hops[i]). 0, or -1 (reported). */
int cfg_hop_tls_build(struct cfg_ctx *x, const char *base, const char *tls, const char *name,
		      struct cfg_next_hop *h);

/* Section "auth" (auth.c): the password file and the lockout; built before the listeners. */
extern const cyaml_schema_field_t cfg_auth_fields[];
void cfg_auth_build(struct cfg_ctx *x, const struct cfg_raw_auth *raw, struct cfg_auth *a);
void cfg_auth_free(struct cfg_auth *a);
/* A listener's "auth:" and "auth_plaintext:" (its mode is known by then). */
void cfg_listener_auth_build(struct cfg_ctx *x, const struct cfg_auth *a, unsigned i,
			     const char *raw_auth, const char *raw_plaintext, struct cfg_listener *l);

#endif
