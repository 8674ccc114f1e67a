/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The "dataplane:" section: cores, memory, ports, addresses, routes, ARP and
 * ICMP limits. Its libcyaml schema, and the checks that turn the loaded strings
 * into struct cfg_dataplane while reporting every value that makes no sense.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cyaml/cyaml.h>

#include "control/config/config.h"
#include "control/config/config_priv.h"

#define MAX_CORE       1023
#define MAX_NAME_LEN   32
/* /var/run/dpdk/<prefix>/dpdk_telemetry.v2 must fit in a unix socket path (108 bytes). */
#define MAX_PREFIX_LEN 64

/* ---- schema ---- */

/* clang-format off */

static const cyaml_schema_value_t str_entry = {
	CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 0, CYAML_UNLIMITED),
};

static const cyaml_schema_field_t memory_fields[] = {
	CFG_STR("mode", struct cfg_raw_memory, mode),
	CFG_STR("size_mb", struct cfg_raw_memory, size_mb),
	CFG_STR("in_memory", struct cfg_raw_memory, in_memory),
	CFG_STR("file_prefix", struct cfg_raw_memory, file_prefix),
	CYAML_FIELD_END
};

static const cyaml_schema_field_t port_fields[] = {
	CFG_STR("name", struct cfg_raw_port, name),
	CFG_STR("device", struct cfg_raw_port, device),
	CFG_STR("mtu", struct cfg_raw_port, mtu),
	CFG_STR("rx_desc", struct cfg_raw_port, rx_desc),
	CFG_STR("tx_desc", struct cfg_raw_port, tx_desc),
	CFG_STR("steering", struct cfg_raw_port, steering),
	CYAML_FIELD_SEQUENCE_COUNT("addresses", CFG_OPT_NULL, struct cfg_raw_port, addresses,
				   n_addresses, &str_entry, 0, CYAML_UNLIMITED),
	CYAML_FIELD_END
};

static const cyaml_schema_value_t port_entry = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct cfg_raw_port, port_fields),
};

static const cyaml_schema_field_t route_fields[] = {
	CFG_STR("dst", struct cfg_raw_route, dst),
	CFG_STR("via", struct cfg_raw_route, via),
	CYAML_FIELD_END
};

static const cyaml_schema_value_t route_entry = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct cfg_raw_route, route_fields),
};

static const cyaml_schema_field_t arp_fields[] = {
	CFG_STR("timeout_s", struct cfg_raw_arp, timeout_s),
	CFG_STR("pending_max", struct cfg_raw_arp, pending_max),
	CYAML_FIELD_END
};

static const cyaml_schema_field_t icmp_fields[] = {
	CFG_STR("echo_rate", struct cfg_raw_icmp, echo_rate),
	CFG_STR("echo_burst", struct cfg_raw_icmp, echo_burst),
	CFG_STR("error_rate", struct cfg_raw_icmp, error_rate),
	CFG_STR("error_burst", struct cfg_raw_icmp, error_burst),
	CYAML_FIELD_END
};

static const cyaml_schema_field_t tcp_fields[] = {
	CFG_STR("cc", struct cfg_raw_tcp, cc),
	CFG_STR("syn_backlog", struct cfg_raw_tcp, syn_backlog),
	CFG_STR("max_conns", struct cfg_raw_tcp, max_conns),
	CFG_STR("rto_min_ms", struct cfg_raw_tcp, rto_min_ms),
	CFG_STR("delack_ms", struct cfg_raw_tcp, delack_ms),
	CFG_STR("time_wait_max", struct cfg_raw_tcp, time_wait_max),
	CFG_STR("rcv_buf_kb", struct cfg_raw_tcp, rcv_buf_kb),
	CFG_STR("snd_buf_kb", struct cfg_raw_tcp, snd_buf_kb),
	CFG_STR("echo_port", struct cfg_raw_tcp, echo_port),
	CFG_STR("discard_port", struct cfg_raw_tcp, discard_port),
	CYAML_FIELD_END
};

const cyaml_schema_field_t cfg_dp_fields[] = {
	CFG_STR("main_core", struct cfg_raw_dataplane, main_core),
	CYAML_FIELD_SEQUENCE_COUNT("worker_cores", CFG_OPT_NULL, struct cfg_raw_dataplane,
				   worker_cores, n_worker_cores, &str_entry, 0, CYAML_UNLIMITED),
	CYAML_FIELD_MAPPING_PTR("memory", CFG_OPT_NULL, struct cfg_raw_dataplane, memory,
				memory_fields),
	CFG_STR("idle_sleep_us", struct cfg_raw_dataplane, idle_sleep_us),
	CFG_STR("tx_drain_us", struct cfg_raw_dataplane, tx_drain_us),
	CFG_STR("mbufs_per_worker", struct cfg_raw_dataplane, mbufs_per_worker),
	CFG_STR("steer_ring_size", struct cfg_raw_dataplane, steer_ring_size),
	CYAML_FIELD_SEQUENCE_COUNT("eal_args", CFG_OPT_NULL, struct cfg_raw_dataplane, eal_args,
				   n_eal_args, &str_entry, 0, CYAML_UNLIMITED),
	CYAML_FIELD_SEQUENCE_COUNT("ports", CFG_OPT_NULL, struct cfg_raw_dataplane, ports, n_ports,
				   &port_entry, 0, CYAML_UNLIMITED),
	CYAML_FIELD_SEQUENCE_COUNT("routes", CFG_OPT_NULL, struct cfg_raw_dataplane, routes,
				   n_routes, &route_entry, 0, CYAML_UNLIMITED),
	CYAML_FIELD_MAPPING_PTR("arp", CFG_OPT_NULL, struct cfg_raw_dataplane, arp, arp_fields),
	CYAML_FIELD_MAPPING_PTR("icmp", CFG_OPT_NULL, struct cfg_raw_dataplane, icmp, icmp_fields),
	CYAML_FIELD_MAPPING_PTR("tcp", CFG_OPT_NULL, struct cfg_raw_dataplane, tcp, tcp_fields),
	CYAML_FIELD_END
};

static const struct cfg_enum memory_modes[] = {
	{ "hugepages", CFG_MEM_HUGEPAGES },
	{ "no-huge", CFG_MEM_NO_HUGE },
	{ NULL, 0 },
};

static const struct cfg_enum tcp_ccs[] = {
	{ "newreno", CFG_CC_NEWRENO },
	{ "cubic", CFG_CC_CUBIC },
	{ NULL, 0 },
};

static const struct cfg_enum steerings[] = {
	{ "auto", CFG_STEER_AUTO },
	{ "hardware", CFG_STEER_HARDWARE },
	{ "software", CFG_STEER_SOFTWARE },
	{ NULL, 0 },
};
/* clang-format on */

/* ---- helpers ---- */

/* The line a key path starts on, for "already used at line N". */
static unsigned line_of(const struct cfg_ctx *x, const char *path)
{
	return cfg_pos_value(x, path).line;
}

/* True when the key is written with a value, even an empty list; "key:" alone counts as absent. */
static bool present(const struct cfg_ctx *x, const char *path)
{
	const struct cfg_node *n = cfg_idx_find(x, path);

	return n != NULL && !n->is_null;
}

static bool only_chars(const char *s, const char *extra)
{
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && strchr(extra, *s) == NULL)
			return false;
	return true;
}

static uint32_t mask_of(unsigned len)
{
	return len == 0 ? 0 : ~0u << (32 - len);
}

static const char *ip_str(uint32_t host, char *buf)
{
	struct in_addr in = { .s_addr = htonl(host) };

	return inet_ntop(AF_INET, &in, buf, INET_ADDRSTRLEN);
}

static const char *net_str(uint32_t host, unsigned len, char *buf, size_t size)
{
	struct cfg_prefix p = { .addr = htonl(host & mask_of(len)), .len = (uint8_t)len };

	return cfg_prefix_str(&p, buf, size);
}

/* Dotted quad to host order; inet_pton also refuses leading zeros ("010" is not octal here). */
static int ip_parse(const char *s, uint32_t *host)
{
	struct in_addr in;

	if (inet_pton(AF_INET, s, &in) != 1)
		return -1;
	*host = ntohl(in.s_addr);
	return 0;
}

enum pfx_err {
	PFX_OK,
	PFX_BAD,    /* not "a.b.c.d/len" */
	PFX_NO_LEN, /* an address without "/len" */
	PFX_LEN,    /* len above 32 */
};

static enum pfx_err prefix_parse(const char *s, uint32_t *host, unsigned *len)
{
	const char *slash = strchr(s, '/');
	char a[INET_ADDRSTRLEN];
	size_t n = slash != NULL ? (size_t)(slash - s) : strlen(s);

	if (n >= sizeof(a))
		return PFX_BAD;
	memcpy(a, s, n);
	a[n] = '\0';
	if (ip_parse(a, host) != 0)
		return PFX_BAD;
	if (slash == NULL)
		return PFX_NO_LEN;
	slash++;
	if (slash[0] < '0' || slash[0] > '9' || strspn(slash, "0123456789") != strlen(slash) ||
	    strlen(slash) > 3)
		return PFX_BAD;
	*len = (unsigned)atoi(slash);
	return *len > 32 ? PFX_LEN : PFX_OK;
}

/* Why a host can't use address A, or NULL when it can. */
static const char *unusable(uint32_t a)
{
	if (a == 0)
		return "the unspecified address";
	if ((a >> 24) == 0)
		return "in 0.0.0.0/8, which hosts cannot use";
	if ((a >> 24) == 127)
		return "a loopback address";
	if ((a >> 28) == 0xe)
		return "a multicast address";
	if (a == 0xffffffffu)
		return "the broadcast address";
	if ((a >> 28) == 0xf)
		return "a reserved (240.0.0.0/4) address";
	return NULL;
}

static bool hex_n(const char *s, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]))
			return false;
	return true;
}

/*
 * "DDDD:BB:DD.F" or "BB:DD.F", optionally followed by ",devargs" as EAL's
 * allowlist takes it; anything else is a vdev name.
 */
static bool is_pci(const char *s)
{
	size_t n = strcspn(s, ",");

	if (n == 12) {
		if (!hex_n(s, 4) || s[4] != ':')
			return false;
		s += 5;
	} else if (n != 7) {
		return false;
	}
	return hex_n(s, 2) && s[2] == ':' && hex_n(s + 3, 2) && s[5] == '.' && s[6] >= '0' &&
	       s[6] <= '7';
}

/* What must differ between two ports' devices: the PCI address, or the vdev's name. */
static void device_key(const char *dev, bool pci, char *key, size_t len)
{
	size_t n = strcspn(dev, ",");

	if (pci)
		snprintf(key, len, "%s%.*s", n == 7 ? "0000:" : "", (int)n, dev);
	else
		snprintf(key, len, "%.*s", (int)n, dev);
	for (char *p = key; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
}

/* ---- sections ---- */

static void build_cores(struct cfg_ctx *x, const struct cfg_raw_dataplane *raw,
			struct cfg_dataplane *dp)
{
	const char *list = "dataplane.worker_cores";
	char path[64];

	cfg_get_uint(x, "dataplane.main_core", raw->main_core, 0, MAX_CORE, 0, &dp->main_core);
	if (raw->n_worker_cores == 0) {
		if (present(x, list))
			cfg_error(x, cfg_pos_value(x, list), list,
				  "empty; at least one worker core is required");
		dp->worker_cores[0] = 1;
		dp->n_workers = 1;
		return;
	}
	if (raw->n_worker_cores > CFG_MAX_WORKERS)
		cfg_error(x, cfg_pos_key(x, list), list,
			  "%u worker cores; at most %d are supported", raw->n_worker_cores,
			  CFG_MAX_WORKERS);
	for (unsigned i = 0; i < raw->n_worker_cores && i < CFG_MAX_WORKERS; i++)
		cfg_get_uint(x, cfg_pathf(path, sizeof(path), "%s[%u]", list, i), raw->worker_cores[i],
			     0, MAX_CORE, 1, &dp->worker_cores[i]);
	dp->n_workers =
		raw->n_worker_cores < CFG_MAX_WORKERS ? raw->n_worker_cores : CFG_MAX_WORKERS;
}

static void build_memory(struct cfg_ctx *x, const struct cfg_raw_memory *raw,
			 struct cfg_dataplane *dp)
{
	static const struct cfg_raw_memory none;
	const char *prefix = "dataplane.memory.file_prefix";
	int mode;

	if (raw == NULL)
		raw = &none;
	cfg_get_enum(x, "dataplane.memory.mode", raw->mode, memory_modes, CFG_MEM_HUGEPAGES, &mode);
	dp->memory_mode = (enum cfg_memory_mode)mode;
	cfg_get_uint(x, "dataplane.memory.size_mb", raw->size_mb, 64, 1048576, 512, &dp->memory_mb);
	cfg_get_bool(x, "dataplane.memory.in_memory", raw->in_memory, true, &dp->in_memory);
	if (cfg_get_str(x, prefix, raw->file_prefix, "mxgate", &dp->file_prefix) == 0 &&
	    dp->file_prefix != NULL &&
	    (!only_chars(dp->file_prefix, "_-") || strlen(dp->file_prefix) > MAX_PREFIX_LEN))
		cfg_error(
			x, cfg_pos_value(x, prefix), prefix,
			"'%s' is not a valid file prefix: use up to %d letters, digits, '_' or '-'",
			dp->file_prefix, MAX_PREFIX_LEN);
}

static void build_eal_args(struct cfg_ctx *x, const struct cfg_raw_dataplane *raw,
			   struct cfg_dataplane *dp)
{
	char path[64];

	if (raw->n_eal_args == 0)
		return;
	dp->eal_args = calloc(raw->n_eal_args, sizeof(*dp->eal_args));
	if (dp->eal_args == NULL) {
		x->oom = true;
		return;
	}
	dp->n_eal_args = raw->n_eal_args;
	for (unsigned i = 0; i < raw->n_eal_args; i++)
		cfg_get_str(x, cfg_pathf(path, sizeof(path), "dataplane.eal_args[%u]", i),
			    raw->eal_args[i], NULL, &dp->eal_args[i]);
}

/* Addresses assigned so far, to catch one given twice. */
struct addr_seen {
	uint32_t addr[CFG_MAX_PORTS * CFG_MAX_ADDRS]; /* host order */
	unsigned len[CFG_MAX_PORTS * CFG_MAX_ADDRS];
	char where[CFG_MAX_PORTS * CFG_MAX_ADDRS][48];
	unsigned n;
	unsigned bad; /* addresses that did not parse; on-link checks would only echo them */
};

/* Returns 0 when *OUT holds a usable address, -1 after reporting why not. */
static int build_address(struct cfg_ctx *x, const char *path, const char *raw,
			 struct cfg_prefix *out, struct addr_seen *seen)
{
	struct cfg_pos pos = cfg_pos_value(x, path);
	char a[INET_ADDRSTRLEN], net[24];
	uint32_t h = 0;
	unsigned len = 0;
	char *s = NULL;

	if (cfg_get_str(x, path, raw, NULL, &s) != 0 || s == NULL)
		goto bad;
	switch (prefix_parse(s, &h, &len)) {
	case PFX_OK:
		break;
	case PFX_NO_LEN:
		cfg_error(x, pos, path, "'%s' has no prefix length; write it as %s/24 or the like",
			  s, s);
		goto bad;
	case PFX_LEN:
		cfg_error(x, pos, path, "prefix length %u is not between 1 and 32", len);
		goto bad;
	default:
		cfg_error(x, pos, path,
			  "'%s' is not an IPv4 address with a prefix length (a.b.c.d/len)", s);
		goto bad;
	}
	free(s);
	ip_str(h, a);
	if (len == 0) {
		cfg_error(x, pos, path, "prefix length 0 is not between 1 and 32");
		goto bad_free;
	}
	if (unusable(h) != NULL) {
		cfg_error(x, pos, path, "%s is %s", a, unusable(h));
		goto bad_free;
	}
	if (len <= 30 && (h & ~mask_of(len)) == 0) {
		cfg_error(x, pos, path, "%s is the network address of %s; use a host address", a,
			  net_str(h, len, net, sizeof(net)));
		goto bad_free;
	}
	if (len <= 30 && (h | mask_of(len)) == 0xffffffffu) {
		cfg_error(x, pos, path, "%s is the broadcast address of %s", a,
			  net_str(h, len, net, sizeof(net)));
		goto bad_free;
	}
	for (unsigned i = 0; i < seen->n; i++) {
		if (seen->addr[i] == h) {
			cfg_error(x, pos, path, "%s is already assigned at %s (line %u)", a,
				  seen->where[i], line_of(x, seen->where[i]));
			return -1;
		}
	}
	out->addr = htonl(h);
	out->len = (uint8_t)len;
	if (seen->n < CFG_MAX_PORTS * CFG_MAX_ADDRS) {
		seen->addr[seen->n] = h;
		seen->len[seen->n] = len;
		snprintf(seen->where[seen->n], sizeof(seen->where[0]), "%s", path);
		seen->n++;
	}
	return 0;
bad:
	free(s);
bad_free:
	seen->bad++;
	return -1;
}

/* A NIC descriptor ring: drivers want multiples of 32 (vector RX) within 64..4096. */
static uint16_t ring_size(struct cfg_ctx *x, const char *path, const char *raw)
{
	unsigned v;

	if (cfg_get_uint(x, path, raw, 64, 4096, 1024, &v) == 0 && v % 32 != 0) {
		cfg_error(x, cfg_pos_value(x, path), path, "%u is not a multiple of 32", v);
		v = 1024;
	}
	return (uint16_t)v;
}

static void build_port(struct cfg_ctx *x, unsigned i, const struct cfg_raw_port *raw,
		       struct cfg_port *p, struct addr_seen *seen)
{
	char path[96], base[48], def_name[16];
	unsigned v;
	int steer;

	cfg_pathf(base, sizeof(base), "dataplane.ports[%u]", i);
	snprintf(def_name, sizeof(def_name), "port%u", i);
	cfg_pathf(path, sizeof(path), "%s.name", base);
	if (cfg_get_str(x, path, raw->name, def_name, &p->name) == 0 && p->name != NULL &&
	    (!only_chars(p->name, "_-.") || strlen(p->name) > MAX_NAME_LEN))
		cfg_error(x, cfg_pos_value(x, path), path,
			  "'%s' is not a valid name: use up to %d letters, digits, '_', '-' or '.'",
			  p->name, MAX_NAME_LEN);

	cfg_pathf(path, sizeof(path), "%s.device", base);
	if (raw->device == NULL)
		cfg_error(
			x, cfg_pos_key(x, base), path,
			"missing; give a PCI address (0000:01:00.0) or a vdev (net_tap0,iface=mxg0)");
	else if (cfg_get_str(x, path, raw->device, NULL, &p->device) == 0 && p->device != NULL)
		p->is_pci = is_pci(p->device);

	cfg_get_uint(x, cfg_pathf(path, sizeof(path), "%s.mtu", base), raw->mtu, 68, 9000, 1500, &v);
	p->mtu = (uint16_t)v;
	p->rx_desc = ring_size(x, cfg_pathf(path, sizeof(path), "%s.rx_desc", base), raw->rx_desc);
	p->tx_desc = ring_size(x, cfg_pathf(path, sizeof(path), "%s.tx_desc", base), raw->tx_desc);
	cfg_get_enum(x, cfg_pathf(path, sizeof(path), "%s.steering", base), raw->steering, steerings,
		     CFG_STEER_AUTO, &steer);
	p->steering = (enum cfg_steering)steer;

	cfg_pathf(path, sizeof(path), "%s.addresses", base);
	if (raw->n_addresses == 0) {
		cfg_error(x, cfg_pos_value(x, path), path,
			  "%s; give at least one address with its prefix, e.g. 198.51.100.2/24",
			  cfg_idx_find(x, path) != NULL ? "empty" : "missing");
		seen->bad++;
	} else if (raw->n_addresses > CFG_MAX_ADDRS) {
		cfg_error(x, cfg_pos_key(x, path), path,
			  "%u addresses; at most %d per port are supported", raw->n_addresses,
			  CFG_MAX_ADDRS);
	}
	for (unsigned a = 0; a < raw->n_addresses && a < CFG_MAX_ADDRS; a++)
		if (build_address(x, cfg_pathf(path, sizeof(path), "%s.addresses[%u]", base, a),
				  raw->addresses[a], &p->addrs[p->n_addrs], seen) == 0)
			p->n_addrs++;
}

/* Names and devices must differ between ports; report the later of two. */
static void check_ports_unique(struct cfg_ctx *x, struct cfg_dataplane *dp)
{
	char path[64], other[48], ki[64], kj[64];

	for (unsigned i = 0; i < dp->n_ports; i++) {
		for (unsigned j = 0; j < i; j++) {
			const struct cfg_port *a = &dp->ports[j], *b = &dp->ports[i];

			cfg_pathf(other, sizeof(other), "dataplane.ports[%u]", j);
			if (a->name != NULL && b->name != NULL && strcmp(a->name, b->name) == 0) {
				cfg_pathf(path, sizeof(path), "dataplane.ports[%u].name", i);
				cfg_error(x, cfg_pos_value(x, path), path,
					  "name '%s' is already used by %s (line %u)", b->name,
					  other, line_of(x, other));
			}
			if (a->device == NULL || b->device == NULL)
				continue;
			device_key(a->device, a->is_pci, kj, sizeof(kj));
			device_key(b->device, b->is_pci, ki, sizeof(ki));
			if (strcmp(ki, kj) == 0) {
				cfg_pathf(path, sizeof(path), "dataplane.ports[%u].device", i);
				cfg_error(x, cfg_pos_value(x, path), path,
					  "device %s is already used by %s (line %u)", ki, other,
					  line_of(x, other));
			}
		}
	}
}

static void build_ports(struct cfg_ctx *x, const struct cfg_raw_dataplane *raw,
			struct cfg_dataplane *dp, struct addr_seen *seen)
{
	const char *list = "dataplane.ports";

	if (raw->n_ports == 0) {
		if (x->empty)
			cfg_error(x, cfg_pos_value(x, list), list,
				  "missing (the file is empty); at least one port is required");
		else
			cfg_error(x, cfg_pos_value(x, list), list,
				  "%s; at least one port is required",
				  cfg_idx_find(x, list) != NULL ? "empty" : "missing");
		seen->bad++;
		return;
	}
	if (raw->n_ports > CFG_MAX_PORTS)
		cfg_error(x, cfg_pos_key(x, list), list, "%u ports; at most %d are supported",
			  raw->n_ports, CFG_MAX_PORTS);
	dp->n_ports = raw->n_ports < CFG_MAX_PORTS ? raw->n_ports : CFG_MAX_PORTS;
	for (unsigned i = 0; i < dp->n_ports; i++) {
		char path[64];

		build_port(x, i, &raw->ports[i], &dp->ports[i], seen);
		/* DPDK 22.11's net_tap hands a process its queues' descriptors in one
		 * message of at most 8: two per worker (RX and TX), so 4 workers. */
		if (dp->ports[i].device != NULL && strncmp(dp->ports[i].device, "net_tap", 7) == 0 &&
		    dp->n_workers > 4)
			cfg_error(x, cfg_pos_value(x, cfg_pathf(path, sizeof(path),
							     "dataplane.ports[%u].device", i)),
				  path,
				  "net_tap takes at most 4 workers (DPDK 22.11 passes 8 queue "
				  "descriptors at most); dataplane.worker_cores lists %u",
				  dp->n_workers);
	}
	check_ports_unique(x, dp);
}

/* The gateway must sit in a port's subnet, and be neither that subnet's edge nor ourselves. */
static void check_via(struct cfg_ctx *x, const char *path, uint32_t via,
		      const struct addr_seen *seen)
{
	struct cfg_pos pos = cfg_pos_value(x, path);
	char a[INET_ADDRSTRLEN], net[24], nets[256] = "";
	size_t off = 0;

	ip_str(via, a);
	for (unsigned i = 0; i < seen->n; i++) {
		uint32_t m = mask_of(seen->len[i]);

		if (via == seen->addr[i]) {
			cfg_error(x, pos, path, "%s is this gateway's own address (%s)", a,
				  seen->where[i]);
			return;
		}
		if (((via ^ seen->addr[i]) & m) != 0)
			continue;
		if (seen->len[i] <= 30 && ((via & ~m) == 0 || (via | m) == 0xffffffffu)) {
			cfg_error(x, pos, path, "%s is the %s address of %s", a,
				  (via & ~m) == 0 ? "network" : "broadcast",
				  net_str(via, seen->len[i], net, sizeof(net)));
			return;
		}
		return; /* on-link */
	}
	if (seen->bad != 0)
		return; /* a port address is wrong; that error says enough */
	for (unsigned i = 0; i < seen->n && off < sizeof(nets); i++) {
		int n = snprintf(nets + off, sizeof(nets) - off, "%s%s", i != 0 ? ", " : "",
				 net_str(seen->addr[i], seen->len[i], net, sizeof(net)));

		off += n > 0 ? (size_t)n : 0;
	}
	cfg_error(x, pos, path, "%s is not on-link: no port has an address in its subnet (%s)", a,
		  nets);
}

static void build_route(struct cfg_ctx *x, unsigned i, const struct cfg_raw_route *raw,
			struct cfg_dataplane *dp, const struct addr_seen *seen)
{
	struct cfg_route *r = &dp->routes[dp->n_routes];
	char path[64], base[48], a[INET_ADDRSTRLEN], net[24], host[INET_ADDRSTRLEN];
	bool ok = true;
	uint32_t h = 0, via = 0;
	unsigned len = 0;
	char *s = NULL;

	cfg_pathf(base, sizeof(base), "dataplane.routes[%u]", i);
	cfg_pathf(path, sizeof(path), "%s.dst", base);
	if (raw->dst == NULL) {
		cfg_error(
			x, cfg_pos_key(x, base), path,
			"missing; give the destination prefix, e.g. 0.0.0.0/0 for the default route");
		ok = false;
	} else if (cfg_get_str(x, path, raw->dst, NULL, &s) != 0 || s == NULL) {
		ok = false;
	} else {
		switch (prefix_parse(s, &h, &len)) {
		case PFX_OK:
			if ((h & ~mask_of(len)) != 0) {
				cfg_error(x, cfg_pos_value(x, path), path,
					  "%s has host bits set (%s); the network is %s", s,
					  ip_str(h & ~mask_of(len), host),
					  net_str(h, len, net, sizeof(net)));
				ok = false;
			}
			break;
		case PFX_NO_LEN:
			cfg_error(x, cfg_pos_value(x, path), path,
				  "'%s' has no prefix length; write %s/32 for a single host", s, s);
			ok = false;
			break;
		case PFX_LEN:
			cfg_error(x, cfg_pos_value(x, path), path,
				  "prefix length %u is not between 0 and 32", len);
			ok = false;
			break;
		default:
			cfg_error(x, cfg_pos_value(x, path), path,
				  "'%s' is not an IPv4 prefix (a.b.c.d/len)", s);
			ok = false;
		}
		free(s);
		s = NULL;
	}

	cfg_pathf(path, sizeof(path), "%s.via", base);
	if (raw->via == NULL) {
		cfg_error(x, cfg_pos_key(x, base), path,
			  "missing; give the next-hop gateway's address");
		ok = false;
	} else if (cfg_get_str(x, path, raw->via, NULL, &s) != 0 || s == NULL) {
		ok = false;
	} else if (ip_parse(s, &via) != 0) {
		cfg_error(x, cfg_pos_value(x, path), path, "'%s' is not an IPv4 address (a.b.c.d)",
			  s);
		ok = false;
	} else if (unusable(via) != NULL) {
		cfg_error(x, cfg_pos_value(x, path), path, "%s is %s, not a unicast gateway",
			  ip_str(via, a), unusable(via));
		ok = false;
	} else {
		check_via(x, path, via, seen);
	}
	free(s);
	if (!ok)
		return;
	for (unsigned j = 0; j < dp->n_routes; j++) {
		if (dp->routes[j].dst.addr == htonl(h) && dp->routes[j].dst.len == len) {
			char other[48];

			cfg_pathf(path, sizeof(path), "%s.dst", base);
			cfg_pathf(other, sizeof(other), "dataplane.routes[%u]", j);
			cfg_error(x, cfg_pos_value(x, path), path,
				  "%s is already routed by %s (line %u)",
				  net_str(h, len, net, sizeof(net)), other, line_of(x, other));
			return;
		}
	}
	r->dst.addr = htonl(h);
	r->dst.len = (uint8_t)len;
	r->via = htonl(via);
	dp->n_routes++;
}

static void build_routes(struct cfg_ctx *x, const struct cfg_raw_dataplane *raw,
			 struct cfg_dataplane *dp, const struct addr_seen *seen)
{
	const char *list = "dataplane.routes";

	if (raw->n_routes > CFG_MAX_ROUTES)
		cfg_error(x, cfg_pos_key(x, list), list, "%u routes; at most %d are supported",
			  raw->n_routes, CFG_MAX_ROUTES);
	for (unsigned i = 0; i < raw->n_routes && i < CFG_MAX_ROUTES; i++)
		build_route(x, i, &raw->routes[i], dp, seen);
}

static void build_tcp(struct cfg_ctx *x, const struct cfg_raw_dataplane *raw,
		      struct cfg_dataplane *dp)
{
	static const struct cfg_raw_tcp no_tcp;
	const struct cfg_raw_tcp *t = raw->tcp != NULL ? raw->tcp : &no_tcp;
	struct cfg_tcp *o = &dp->tcp;
	int cc = CFG_CC_NEWRENO;

	cfg_get_enum(x, "dataplane.tcp.cc", t->cc, tcp_ccs, CFG_CC_NEWRENO, &cc);
	o->cc = (enum cfg_tcp_cc)cc;
	cfg_get_uint(x, "dataplane.tcp.syn_backlog", t->syn_backlog, 1, 1048576, 1024,
		     &o->syn_backlog);
	cfg_get_uint(x, "dataplane.tcp.max_conns", t->max_conns, 16, 4194304, 65536,
		     &o->max_conns);
	cfg_get_uint(x, "dataplane.tcp.rto_min_ms", t->rto_min_ms, 1, 60000, 200, &o->rto_min_ms);
	cfg_get_uint(x, "dataplane.tcp.delack_ms", t->delack_ms, 1, 500, 40, &o->delack_ms);
	cfg_get_uint(x, "dataplane.tcp.time_wait_max", t->time_wait_max, 16, 4194304, 8192,
		     &o->time_wait_max);
	cfg_get_uint(x, "dataplane.tcp.rcv_buf_kb", t->rcv_buf_kb, 16, 65536, 256, &o->rcv_buf_kb);
	cfg_get_uint(x, "dataplane.tcp.snd_buf_kb", t->snd_buf_kb, 16, 65536, 256, &o->snd_buf_kb);
	cfg_get_uint(x, "dataplane.tcp.echo_port", t->echo_port, 0, 65535, 0, &o->echo_port);
	cfg_get_uint(x, "dataplane.tcp.discard_port", t->discard_port, 0, 65535, 0,
		     &o->discard_port);
	if (o->echo_port && o->echo_port == o->discard_port)
		cfg_error(x, cfg_pos_value(x, "dataplane.tcp.discard_port"),
			  "dataplane.tcp.discard_port", "%u is already the echo port",
			  o->discard_port);
}

static void build_limits(struct cfg_ctx *x, const struct cfg_raw_dataplane *raw,
			 struct cfg_dataplane *dp)
{
	static const struct cfg_raw_arp no_arp;
	static const struct cfg_raw_icmp no_icmp;
	const struct cfg_raw_arp *arp = raw->arp != NULL ? raw->arp : &no_arp;
	const struct cfg_raw_icmp *icmp = raw->icmp != NULL ? raw->icmp : &no_icmp;

	cfg_get_uint(x, "dataplane.arp.timeout_s", arp->timeout_s, 1, 86400, 300,
		     &dp->arp_timeout_s);
	cfg_get_uint(x, "dataplane.arp.pending_max", arp->pending_max, 1, 256, 8,
		     &dp->arp_pending_max);
	/* rates: 0 means unlimited */
	cfg_get_uint(x, "dataplane.icmp.echo_rate", icmp->echo_rate, 0, 1000000, 10000,
		     &dp->icmp_echo_rate);
	cfg_get_uint(x, "dataplane.icmp.echo_burst", icmp->echo_burst, 1, 1000000, 2000,
		     &dp->icmp_echo_burst);
	cfg_get_uint(x, "dataplane.icmp.error_rate", icmp->error_rate, 0, 1000000, 100,
		     &dp->icmp_error_rate);
	cfg_get_uint(x, "dataplane.icmp.error_burst", icmp->error_burst, 1, 1000000, 50,
		     &dp->icmp_error_burst);
}

void cfg_dp_build(struct cfg_ctx *x, const struct cfg_raw_dataplane *raw, struct cfg_dataplane *dp)
{
	static const struct cfg_raw_dataplane none;
	const char *ring = "dataplane.steer_ring_size";
	struct addr_seen *seen = calloc(1, sizeof(*seen));

	if (seen == NULL) {
		x->oom = true;
		return;
	}
	if (raw == NULL)
		raw = &none;
	build_cores(x, raw, dp);
	build_memory(x, raw->memory, dp);
	cfg_get_uint(x, "dataplane.idle_sleep_us", raw->idle_sleep_us, 0, 100000, 0,
		     &dp->idle_sleep_us);
	cfg_get_uint(x, "dataplane.tx_drain_us", raw->tx_drain_us, 1, 100000, 100,
		     &dp->tx_drain_us);
	cfg_get_uint(x, "dataplane.mbufs_per_worker", raw->mbufs_per_worker, 1024, 16777216, 8191,
		     &dp->mbufs_per_worker);
	if (cfg_get_uint(x, ring, raw->steer_ring_size, 64, 65536, 1024, &dp->steer_ring_size) ==
		    0 &&
	    (dp->steer_ring_size & (dp->steer_ring_size - 1)) != 0) {
		cfg_error(x, cfg_pos_value(x, ring), ring,
			  "%u is not a power of two (64, 128, 256, ... 65536)",
			  dp->steer_ring_size);
		dp->steer_ring_size = 1024;
	}
	build_eal_args(x, raw, dp);
	build_ports(x, raw, dp, seen);
	build_routes(x, raw, dp, seen);
	build_limits(x, raw, dp);
	build_tcp(x, raw, dp);
	free(seen);
}

void cfg_dp_free(struct cfg_dataplane *dp)
{
	for (unsigned i = 0; i < dp->n_eal_args; i++)
		free(dp->eal_args[i]);
	free(dp->eal_args);
	for (unsigned i = 0; i < dp->n_ports; i++) {
		free(dp->ports[i].name);
		free(dp->ports[i].device);
	}
	free(dp->file_prefix);
	memset(dp, 0, sizeof(*dp));
}
