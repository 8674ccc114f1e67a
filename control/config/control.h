/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The management side of the configuration: "control:" (where mxgate-control
 * answers mxgatectl, serves /metrics and finds the dataplane's telemetry
 * socket) and "logging:" (how loud, and where). Types only; control.c fills them.
 */
#ifndef MX_CONFIG_CONTROL_H
#define MX_CONFIG_CONTROL_H

#include <stdbool.h>
#include <stdint.h>

#define CFG_CONTROL_SOCKET_DEFAULT "/run/mxgate/control.sock"
#define CFG_METRICS_DEFAULT	   "127.0.0.1:9464"
/* The telemetry socket of DPDK 22.11 for a file prefix: printf format with one %s. */
#define CFG_TELEMETRY_PATH_FMT	   "/var/run/dpdk/%s/dpdk_telemetry.v2"

struct cfg_control {
	char *socket;		     /* mxgatectl's unix socket: /run/mxgate/control.sock */
	bool metrics_on;	     /* false when metrics_listen is "off" */
	uint32_t metrics_addr;	     /* IPv4, network order: 127.0.0.1 */
	uint16_t metrics_port;	     /* 9464 */
	char *telemetry_socket;	     /* default: from dataplane.memory.file_prefix */
	unsigned sample_interval_ms; /* how often counters are read: 1000 */
	unsigned history_s;	     /* how far back samples are kept, for rates: 300 */
};

/* Most to least severe; a level shows its own lines and every more severe one. */
enum cfg_log_level {
	CFG_LOG_ERROR,	 /* "error" */
	CFG_LOG_WARNING, /* "warning" */
	CFG_LOG_INFO,	 /* "info" (default) */
	CFG_LOG_DEBUG,	 /* "debug" */
};

enum cfg_log_dest {
	CFG_LOG_STDOUT, /* "stdout" (default): systemd's journal takes it from there */
	CFG_LOG_STDERR, /* "stderr" */
	CFG_LOG_FILE,	/* an absolute path, appended to; reopened on SIGHUP */
};

struct cfg_logging {
	enum cfg_log_level level;
	enum cfg_log_dest dest;
	char *file; /* CFG_LOG_FILE only, else NULL */
};

/* "error", "warning", ... for a level; "?" for a value outside the enum. */
const char *cfg_log_level_name(enum cfg_log_level l);

/* Parses a level name as the config spells it; returns 0, or -1 for an unknown name. */
int cfg_log_level_parse(const char *s, enum cfg_log_level *out);

#endif
