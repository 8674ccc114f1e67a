/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mxgate-gen: a traffic generator on the gateway's own stack. It starts like
 * mxgate-dp (config, EAL, ports, one worker per worker lcore) and runs a load
 * client on every worker, then prints a line a second and a result: one JSON
 * line, and for the SMTP roles a table before it. Roles: TCP load against
 * echo/discard services (client.c), SMTP load against a gateway
 * (smtp_load.c), and an SMTP sink for what a gateway forwards (sink.c).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_random.h>

#include "control/config/config.h"
#include "dataplane/core/dp.h"
#include "dataplane/core/eal.h"
#include "dataplane/gen/client.h"
#include "dataplane/gen/files.h"
#include "dataplane/gen/hist.h"
#include "dataplane/gen/sink.h"
#include "dataplane/gen/smtp_load.h"

#define EXIT_USAGE 2
#define LINK_WAIT_S 10  /* for the port's link (memif: the server to accept us) */
#define PING_WAIT_MS 3000
#define DRAIN_WAIT_MS 3000 /* for connections to close after the run */
#define SINK_SETTLE_MS 300 /* after --expect was met: late duplicates still count */
#define SINK_TOKENS_DEFAULT (1u << 24)
#define SIZE_MAX_MSG 10485760u

/* The TCP modes are enum gen_mode; the SMTP roles follow them. */
enum { MODE_SMTP = GEN_MODE_ECHO + 1, MODE_SINK, MODE_MAX };

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
	got_signal = sig;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: mxgate-gen -c FILE --dst ADDR [options] [-- EAL arguments]\n"
		"       mxgate-gen -c FILE --mode sink [options] [-- EAL arguments]\n"
		"  -c, --config FILE        configuration (YAML, the schema of mxgate-dp), required\n"
		"      --dst ADDR           server address (IPv4), required but for sink\n"
		"      --mode MODE          stream: send to a discard service as fast as the\n"
		"                             window allows (Gbit/s);\n"
		"                           rr: open, send --size bytes, read them back, close,\n"
		"                             again (connections/s);\n"
		"                           echo: stream to an echo service, check every byte back;\n"
		"                           smtp: SMTP sessions sending mail to a gateway;\n"
		"                           sink: an SMTP server on our address that takes mail,\n"
		"                             checks each body and counts tokens;\n"
		"                           default stream\n"
		"      --port N             server port (default 9 for stream, 7 for rr and echo,\n"
		"                           25 for smtp); sink: the port to listen on (25)\n"
		"      --conns N            stream/echo: connections (default 1)\n"
		"      --concurrency N      rr: connections in flight (default 64); smtp: sessions\n"
		"                           at once (default 16); sink: sessions at most (1024)\n"
		"      --size BYTES|MIN-MAX rr: request and response size, 1..65536 (default 1024);\n"
		"                           smtp: message size (header and body), fixed or uniform\n"
		"      --seconds N          how long to run, 1..3600 (default 10; with --messages\n"
		"                           or --expect, the bound: default 600)\n"
		"  smtp:\n"
		"      --messages N         messages in all, then stop (default: until --seconds)\n"
		"      --per-session N      messages per connection before QUIT (default 1)\n"
		"      --rate N             new connections a second at most (default: no cap)\n"
		"      --rcpts N            recipients per message, 1..100 (default 1)\n"
		"      --no-pipelining      do not use PIPELINING even when offered\n"
		"      --from ADDR          sender (default gen@mxgate-gen.test)\n"
		"      --to ADDR            first recipient (default alice@example.com);\n"
		"                           others are local+N@domain\n"
		"      --helo NAME          EHLO name (default mxgate-gen.test)\n"
		"      --size-dir DIR       message bodies: the files of DIR, round robin (instead\n"
		"                           of --size; line ends made CRLF)\n"
		"      --retries N          send a transaction deferred (4xx, connection lost) again,\n"
		"                           up to N times (default 20; 0: never)\n"
		"      --backoff-ms MIN-MAX wait before a retry: doubling from MIN to MAX ms, plus\n"
		"                           up to half at random (default 1-1000)\n"
		"      --acked-out FILE     with --messages: write the acked tokens, one a line\n"
		"      --reply-timeout S    wait at most S seconds for any reply (default: RFC\n"
		"                           5321's, 5 to 10 minutes); a timeout defers: retried\n"
		"      --run-id HEX         16 hex digits in every token (default random);\n"
		"                           sink: accept only this run (default: the first seen)\n"
		"      --tls MODE           none: clear text (default);\n"
		"                           starttls: STARTTLS required (RFC 3207): a server that\n"
		"                             does not offer it is a session error, never clear text;\n"
		"                           implicit: the handshake right after connect, then the\n"
		"                             220 (RFC 8314; --port defaults to 465)\n"
		"      --tls-ca FILE        verify the server's certificate against the CAs in FILE\n"
		"                           (PEM) and --tls-name (default: no verification)\n"
		"      --tls-name NAME      SNI, and the name the certificate must carry with --tls-ca\n"
		"                           (default: none; with --tls-ca, --dst as an IP SAN)\n"
		"      --tls-ciphers LIST   TLS 1.2 cipher list (OpenSSL syntax; default OpenSSL's)\n"
		"      --tls-ciphersuites L TLS 1.3 cipher suites (default OpenSSL's)\n"
		"      --tls-groups LIST    key exchange groups, e.g. X25519:P-256 (default OpenSSL's)\n"
		"      --tls-resume         offer the latest session ticket a worker got on its new\n"
		"                           sessions: abbreviated handshakes (default: full ones)\n"
		"  sink:\n"
		"      --expect N           tokens 0..N-1 are expected: stop once all came, report\n"
		"                           the missing ones as lost\n"
		"      --acked-from FILE    wait for FILE (a client's --acked-out), then for every\n"
		"                           token in it: stop once all came, report the missing\n"
		"                           ones as lost\n"
		"      --file-prefix NAME   EAL file prefix (overrides the config)\n"
		"      --worker-cores LIST  CPUs of the workers, e.g. 1,2 (overrides the config)\n"
		"      --main-core N        CPU of the main lcore (overrides the config)\n"
		"  -h, --help               this text\n"
		"Prints a line each second, then (smtp, sink) a table, then one JSON line:\n"
		"  {\"mode\":..., \"gbps\":..., \"conns_per_s\":..., \"segments\":..., \"errors\":...}\n"
		"  {\"mode\":\"smtp\", \"msgs_per_s\":..., \"acked\":..., \"latency_us\":{...}, ...}\n"
		"  {\"mode\":\"sink\", \"messages\":..., \"unique\":..., \"duplicates\":..., \"lost\":...}\n");
}

static int parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	*out = (unsigned)v;
	return 0;
}

enum {
	OPT_DST = 256,
	OPT_MODE,
	OPT_PORT,
	OPT_CONNS,
	OPT_CONC,
	OPT_SIZE,
	OPT_SECONDS,
	OPT_PREFIX,
	OPT_WORKERS,
	OPT_MAIN,
	OPT_MESSAGES,
	OPT_PER_SESSION,
	OPT_RATE,
	OPT_RCPTS,
	OPT_NO_PIPELINING,
	OPT_FROM,
	OPT_TO,
	OPT_HELO,
	OPT_RUN_ID,
	OPT_EXPECT,
	OPT_SIZE_DIR,
	OPT_RETRIES,
	OPT_BACKOFF,
	OPT_ACKED_OUT,
	OPT_ACKED_FROM,
	OPT_REPLY_TIMEOUT,
	OPT_TLS,
	OPT_TLS_CA,
	OPT_TLS_NAME,
	OPT_TLS_CIPHERS,
	OPT_TLS_SUITES,
	OPT_TLS_GROUPS,
	OPT_TLS_RESUME,
};

static const struct option long_opts[] = {
	{"config", required_argument, NULL, 'c'},
	{"dst", required_argument, NULL, OPT_DST},
	{"mode", required_argument, NULL, OPT_MODE},
	{"port", required_argument, NULL, OPT_PORT},
	{"conns", required_argument, NULL, OPT_CONNS},
	{"concurrency", required_argument, NULL, OPT_CONC},
	{"size", required_argument, NULL, OPT_SIZE},
	{"seconds", required_argument, NULL, OPT_SECONDS},
	{"file-prefix", required_argument, NULL, OPT_PREFIX},
	{"worker-cores", required_argument, NULL, OPT_WORKERS},
	{"main-core", required_argument, NULL, OPT_MAIN},
	{"messages", required_argument, NULL, OPT_MESSAGES},
	{"per-session", required_argument, NULL, OPT_PER_SESSION},
	{"rate", required_argument, NULL, OPT_RATE},
	{"rcpts", required_argument, NULL, OPT_RCPTS},
	{"no-pipelining", no_argument, NULL, OPT_NO_PIPELINING},
	{"from", required_argument, NULL, OPT_FROM},
	{"to", required_argument, NULL, OPT_TO},
	{"helo", required_argument, NULL, OPT_HELO},
	{"run-id", required_argument, NULL, OPT_RUN_ID},
	{"expect", required_argument, NULL, OPT_EXPECT},
	{"size-dir", required_argument, NULL, OPT_SIZE_DIR},
	{"retries", required_argument, NULL, OPT_RETRIES},
	{"backoff-ms", required_argument, NULL, OPT_BACKOFF},
	{"acked-out", required_argument, NULL, OPT_ACKED_OUT},
	{"acked-from", required_argument, NULL, OPT_ACKED_FROM},
	{"reply-timeout", required_argument, NULL, OPT_REPLY_TIMEOUT},
	{"tls", required_argument, NULL, OPT_TLS},
	{"tls-ca", required_argument, NULL, OPT_TLS_CA},
	{"tls-name", required_argument, NULL, OPT_TLS_NAME},
	{"tls-ciphers", required_argument, NULL, OPT_TLS_CIPHERS},
	{"tls-ciphersuites", required_argument, NULL, OPT_TLS_SUITES},
	{"tls-groups", required_argument, NULL, OPT_TLS_GROUPS},
	{"tls-resume", no_argument, NULL, OPT_TLS_RESUME},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

struct opts {
	const char *config;
	int mode; /* enum gen_mode, MODE_SMTP or MODE_SINK */
	uint32_t dst; /* network order */
	unsigned port, conns, concurrency, size, size_max, seconds;
	const char *file_prefix, *worker_cores, *main_core;
	/* smtp and sink */
	uint64_t messages; /* 0: until --seconds */
	unsigned per_session, rate, rcpts;
	bool no_pipelining;
	const char *from, *to, *helo;
	uint64_t run_id; /* 0: random (smtp), the first seen (sink) */
	uint64_t expect; /* sink: 0: not known */
	const char *size_dir;
	unsigned retries, backoff_min, backoff_max, reply_timeout;
	const char *acked_out, *acked_from;
	enum gen_tls tls;
	char *tls_ca, *tls_name, *tls_ciphers, *tls_suites, *tls_groups; /* optarg's */
	bool tls_resume;
	bool conc_set, size_set, seconds_set;
};

static const char *const tls_names[] = {
	[GEN_TLS_NONE] = "none",
	[GEN_TLS_STARTTLS] = "starttls",
	[GEN_TLS_IMPLICIT] = "implicit",
};

static const char *const mode_names[MODE_MAX] = {
	[GEN_MODE_STREAM] = "stream",
	[GEN_MODE_RR] = "rr",
	[GEN_MODE_ECHO] = "echo",
	[MODE_SMTP] = "smtp",
	[MODE_SINK] = "sink",
};

static int parse_u64(const char *s, uint64_t min, uint64_t max, int base, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, base);
	if (errno || end == s || *end || *s == '-' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* "N" or "MIN-MAX" */
static int parse_range(const char *s, unsigned min, unsigned max, unsigned *lo, unsigned *hi)
{
	char buf[32];
	char *dash;

	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	dash = strchr(buf, '-');
	if (dash)
		*dash = '\0';
	if (parse_uint(buf, min, max, lo) != 0)
		return -1;
	if (!dash) {
		*hi = *lo;
		return 0;
	}
	return parse_uint(dash + 1, *lo, max, hi);
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	struct in_addr a;
	int opt;

	*o = (struct opts){.conns = 1, .concurrency = 64, .size = 1024, .size_max = 1024,
			   .seconds = 10, .per_session = 1, .rcpts = 1,
			   .from = "gen@mxgate-gen.test", .to = "alice@example.com",
			   .helo = "mxgate-gen.test", .retries = 20, .backoff_min = 1,
			   .backoff_max = 1000};
	while ((opt = getopt_long(argc, argv, "c:h", long_opts, NULL)) != -1) {
		const char *bad = NULL;
		switch (opt) {
		case 'c': o->config = optarg; break;
		case OPT_DST:
			if (inet_pton(AF_INET, optarg, &a) != 1)
				bad = "is not an IPv4 address";
			o->dst = a.s_addr;
			break;
		case OPT_MODE:
			bad = "is not stream, rr, echo, smtp or sink";
			for (int i = 0; i < MODE_MAX; i++)
				if (strcmp(optarg, mode_names[i]) == 0) {
					o->mode = i;
					bad = NULL;
				}
			break;
		case OPT_PORT:
			if (parse_uint(optarg, 1, 65535, &o->port))
				bad = "is not 1..65535";
			break;
		case OPT_CONNS:
			if (parse_uint(optarg, 1, 65536, &o->conns))
				bad = "is not 1..65536";
			break;
		case OPT_CONC:
			if (parse_uint(optarg, 1, 65536, &o->concurrency))
				bad = "is not 1..65536";
			o->conc_set = true;
			break;
		case OPT_SIZE:
			if (parse_range(optarg, 1, SIZE_MAX_MSG, &o->size, &o->size_max))
				bad = "is not N or MIN-MAX (1..10485760)";
			o->size_set = true;
			break;
		case OPT_SECONDS:
			if (parse_uint(optarg, 1, 3600, &o->seconds))
				bad = "is not 1..3600";
			o->seconds_set = true;
			break;
		case OPT_PREFIX: o->file_prefix = optarg; break;
		case OPT_WORKERS: o->worker_cores = optarg; break;
		case OPT_MAIN: o->main_core = optarg; break;
		case OPT_MESSAGES:
			if (parse_u64(optarg, 1, UINT64_MAX / 2, 10, &o->messages))
				bad = "is not a positive count";
			break;
		case OPT_PER_SESSION:
			if (parse_uint(optarg, 1, 1000000, &o->per_session))
				bad = "is not 1..1000000";
			break;
		case OPT_RATE:
			if (parse_uint(optarg, 1, 100000000, &o->rate))
				bad = "is not 1..100000000";
			break;
		case OPT_RCPTS:
			if (parse_uint(optarg, 1, 100, &o->rcpts))
				bad = "is not 1..100";
			break;
		case OPT_NO_PIPELINING: o->no_pipelining = true; break;
		case OPT_FROM:
		case OPT_TO:
			if (!strchr(optarg, '@') || strlen(optarg) > 200 || strpbrk(optarg, " <>\r\n"))
				bad = "is not a mailbox (local@domain)";
			*(opt == OPT_FROM ? &o->from : &o->to) = optarg;
			break;
		case OPT_HELO:
			if (!*optarg || strlen(optarg) > 200 || strpbrk(optarg, " \r\n"))
				bad = "is not a host name";
			o->helo = optarg;
			break;
		case OPT_RUN_ID:
			if (strlen(optarg) > 16 || parse_u64(optarg, 1, UINT64_MAX, 16, &o->run_id))
				bad = "is not 1..16 hex digits, not all zero";
			break;
		case OPT_EXPECT:
			if (parse_u64(optarg, 1, 1u << 30, 10, &o->expect))
				bad = "is not 1..1073741824";
			break;
		case OPT_SIZE_DIR: o->size_dir = optarg; break;
		case OPT_RETRIES:
			if (parse_uint(optarg, 0, 1000, &o->retries))
				bad = "is not 0..1000";
			break;
		case OPT_BACKOFF:
			if (parse_range(optarg, 1, 60000, &o->backoff_min, &o->backoff_max))
				bad = "is not MIN-MAX milliseconds (1..60000)";
			break;
		case OPT_ACKED_OUT: o->acked_out = optarg; break;
		case OPT_ACKED_FROM: o->acked_from = optarg; break;
		case OPT_REPLY_TIMEOUT:
			if (parse_uint(optarg, 1, 3600, &o->reply_timeout))
				bad = "is not 1..3600 seconds";
			break;
		case OPT_TLS:
			bad = "is not none, starttls or implicit";
			for (unsigned i = 0; i < RTE_DIM(tls_names); i++)
				if (strcmp(optarg, tls_names[i]) == 0) {
					o->tls = (enum gen_tls)i;
					bad = NULL;
				}
			break;
		case OPT_TLS_CA:
			if (access(optarg, R_OK) != 0)
				bad = "cannot be read";
			o->tls_ca = optarg;
			break;
		case OPT_TLS_NAME:
			/* RFC 6066 §3: a host name; RFC 1035 §2.3.4: at most 253 octets */
			if (!*optarg || strlen(optarg) > 253 ||
			    strspn(optarg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
					   "0123456789.-") != strlen(optarg))
				bad = "is not a host name";
			o->tls_name = optarg;
			break;
		case OPT_TLS_RESUME: o->tls_resume = true; break;
		case OPT_TLS_CIPHERS:
		case OPT_TLS_SUITES:
		case OPT_TLS_GROUPS:
			if (!*optarg)
				bad = "is empty";
			*(opt == OPT_TLS_CIPHERS ? &o->tls_ciphers
			  : opt == OPT_TLS_SUITES ? &o->tls_suites
						  : &o->tls_groups) = optarg;
			break;
		case 'h': usage(stdout); exit(EXIT_SUCCESS);
		default: usage(stderr); return -1;
		}
		if (bad) {
			const struct option *lo = long_opts;
			while (lo->val != opt)
				lo++;
			fprintf(stderr, "mxgate-gen: --%s: '%s' %s\n", lo->name, optarg, bad);
			return -1;
		}
	}
	if (!o->config || (!o->dst && o->mode != MODE_SINK)) {
		fprintf(stderr, "mxgate-gen: -c FILE and --dst ADDR are required\n");
		usage(stderr);
		return -1;
	}
	if (o->mode <= GEN_MODE_ECHO && (o->size > 65536 || o->size != o->size_max)) {
		fprintf(stderr, "mxgate-gen: --size: rr takes one size, 1..65536\n");
		return -1;
	}
	if (o->size_dir && (o->mode != MODE_SMTP || o->size_set)) {
		fprintf(stderr, "mxgate-gen: --size-dir is for --mode smtp, instead of --size\n");
		return -1;
	}
	if (o->acked_out && (o->mode != MODE_SMTP || !o->messages)) {
		fprintf(stderr, "mxgate-gen: --acked-out is for --mode smtp with --messages\n");
		return -1;
	}
	if (o->acked_from && o->mode != MODE_SINK) {
		fprintf(stderr, "mxgate-gen: --acked-from is for --mode sink\n");
		return -1;
	}
	if ((o->tls || o->tls_ca || o->tls_name || o->tls_ciphers || o->tls_suites ||
	     o->tls_groups || o->tls_resume) && o->mode != MODE_SMTP) {
		fprintf(stderr, "mxgate-gen: --tls and --tls-* are for --mode smtp\n");
		return -1;
	}
	if ((o->tls_ca || o->tls_name || o->tls_ciphers || o->tls_suites || o->tls_groups ||
	     o->tls_resume) &&
	    o->tls == GEN_TLS_NONE) {
		fprintf(stderr, "mxgate-gen: --tls-* options need --tls starttls or implicit\n");
		return -1;
	}
	if (o->mode == MODE_SMTP && !o->conc_set)
		o->concurrency = 16;
	if (o->mode == MODE_SINK && !o->conc_set)
		o->concurrency = 1024;
	if (o->mode >= MODE_SMTP && (o->messages || o->expect || o->acked_from) && !o->seconds_set)
		o->seconds = 600;
	if (!o->port)
		o->port = o->mode == GEN_MODE_STREAM ? 9
			  : o->tls == GEN_TLS_IMPLICIT ? 465 /* RFC 8314 §7.3 */
			  : o->mode >= MODE_SMTP       ? 25
						       : 7;
	return 0;
}

/* Command-line overrides of the config. */
static int apply_overrides(struct cfg *cfg, const struct opts *o)
{
	struct cfg_dataplane *d = &cfg->dp;

	if (o->main_core && parse_uint(o->main_core, 0, 1023, &d->main_core) != 0) {
		fprintf(stderr, "mxgate-gen: --main-core: '%s' is not a CPU number\n", o->main_core);
		return -1;
	}
	if (o->worker_cores) {
		char buf[256];
		unsigned n = 0;
		if (strlen(o->worker_cores) >= sizeof(buf))
			return -1;
		strcpy(buf, o->worker_cores);
		for (char *save = NULL, *t = strtok_r(buf, ",", &save); t;
		     t = strtok_r(NULL, ",", &save)) {
			if (n == CFG_MAX_WORKERS || parse_uint(t, 0, 1023, &d->worker_cores[n]) != 0) {
				fprintf(stderr, "mxgate-gen: --worker-cores: '%s' is not a list of CPUs\n",
					o->worker_cores);
				return -1;
			}
			n++;
		}
		if (n == 0)
			return -1;
		d->n_workers = n;
	}
	if (o->file_prefix) {
		if (!*o->file_prefix || strspn(o->file_prefix,
					       "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
					       "0123456789_-") != strlen(o->file_prefix)) {
			fprintf(stderr, "mxgate-gen: --file-prefix: '%s' is not [A-Za-z0-9_-]+\n",
				o->file_prefix);
			return -1;
		}
		char *p = strdup(o->file_prefix);
		if (!p)
			return -1;
		free(d->file_prefix);
		d->file_prefix = p;
	}
	return 0;
}

static struct cfg_tls g_tls_cfg;	/* the client side's settings, for every worker */
static char g_tls_name[INET_ADDRSTRLEN]; /* --dst, the name to verify without --tls-name */

/*
 * The TLS options as a client config (no certificates: cfg/tls.h), tried
 * once here so a bad list or CA file is a usage error before any port is
 * touched. Returns 0 or -1 (said on stderr).
 */
static int tls_options(const struct opts *o)
{
	static const struct { const char *key, *opt; } names[] = {
		{"tls.ciphersuites", "--tls-ciphersuites"},
		{"tls.ciphers", "--tls-ciphers"},
		{"tls.groups", "--tls-groups"},
		{"tls.ca_file", "--tls-ca"},
	};
	char err[256];
	struct tls_ctx *t;

	if (o->tls == GEN_TLS_NONE)
		return 0;
	g_tls_cfg = (struct cfg_tls){
		.min_version = CFG_TLS_V1_2,
		.ciphers = o->tls_ciphers,
		.ciphersuites = o->tls_suites,
		.groups = o->tls_groups,
		.ca_file = o->tls_ca,
	};
	inet_ntop(AF_INET, &o->dst, g_tls_name, sizeof(g_tls_name));
	t = tls_ctx_new(&g_tls_cfg, NULL, err, sizeof(err));
	if (t != NULL) {
		tls_ctx_free(t);
		return 0;
	}
	for (unsigned i = 0; i < RTE_DIM(names); i++) {
		size_t n = strlen(names[i].key);
		if (strncmp(err, names[i].key, n) == 0) {
			fprintf(stderr, "mxgate-gen: %s%s\n", names[i].opt, err + n);
			return -1;
		}
	}
	fprintf(stderr, "mxgate-gen: TLS: %s\n", err);
	return -1;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

/* Waits for every port's link; memif's comes up once the server accepted us. */
static int wait_links(const struct dp *dp)
{
	for (unsigned t = 0; t < LINK_WAIT_S * 10 && !got_signal; t++) {
		unsigned up = 0;
		for (unsigned i = 0; i < dp->n_ports; i++) {
			struct rte_eth_link link;
			if (rte_eth_link_get_nowait(dp->ports[i].port_id, &link) == 0 &&
			    link.link_status == RTE_ETH_LINK_UP)
				up++;
		}
		if (up == dp->n_ports)
			return 0;
		sleep_ms(100);
	}
	return -ETIMEDOUT;
}

/*
 * Pings the server from worker 0 once: it resolves ARP before the first SYN
 * (a burst of handshakes would overflow the queue of packets waiting for it)
 * and proves the path. Returns 0 or -errno.
 */
static int ping_server(struct dp *dp, uint32_t dst)
{
	struct dp_cmd *cmd = rte_zmalloc("gen_ping", sizeof(*cmd), 0);
	int rc;

	if (!cmd)
		return -ENOMEM;
	cmd->type = DP_CMD_PING;
	cmd->u.ping.dst = dst;
	cmd->u.ping.count = 1;
	rc = dp_cmd_submit(dp, 0, cmd);
	if (rc != 0) {
		rte_free(cmd);
		return rc;
	}
	rc = dp_cmd_wait(cmd, PING_WAIT_MS);
	if (rc != 0)
		return rc; /* the worker owns cmd now */
	rc = cmd->result ? cmd->result : cmd->u.ping.received == 1 ? 0 : -EHOSTUNREACH;
	rte_free(cmd);
	return rc;
}

/* The totals of every worker's role and of every worker's TCP. */
struct sample {
	uint64_t tsc;
	struct gen_stats g;          /* TCP modes */
	struct gen_smtp_stats sm;    /* smtp */
	struct gen_sink_stats sk;    /* sink */
	uint64_t segments, busy_cycles, loop_cycles, retransmits;
	uint64_t run_ns, wait_ns; /* worker threads: on a CPU, and runnable but waiting for one */
	unsigned active;
};

/*
 * Adds up the kernel's schedstat of our worker threads (EAL names them
 * rte-worker-N): time on a CPU and time runnable but waiting for one. A
 * polling worker that waits shares its core with something else, and every
 * cycle figure of the run is worse for it.
 */
static void read_schedstat(uint64_t *run_ns, uint64_t *wait_ns)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;

	*run_ns = *wait_ns = 0;
	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		char path[300], comm[32] = "";
		unsigned long long run = 0, wait = 0;
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (!fgets(comm, sizeof(comm), f))
			comm[0] = '\0';
		fclose(f);
		if (strncmp(comm, "rte-worker", 10) != 0)
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/schedstat", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fscanf(f, "%llu %llu", &run, &wait) == 2) {
			*run_ns += run;
			*wait_ns += wait;
		}
		fclose(f);
	}
	closedir(d);
}

static int g_mode; /* the run's mode, for take_sample() */
static enum gen_tls g_tls; /* --tls, for the live line */
static struct gen_files g_files;   /* --size-dir */
static uint64_t *g_acked_bits;	   /* --acked-out: bit T once token T was acked */
static uint64_t g_acked_nbits;

/* --acked-from: the client's acked tokens, once its file appeared. */
static struct {
	uint64_t *tok;
	size_t n, seen; /* tok[0..seen) were all seen by the sink */
	bool loaded;
	uint64_t next_try_tsc;
} g_acked;

/* Writes the acked tokens to PATH (through PATH.tmp, renamed: a reader sees all or nothing). */
static int write_acked(const char *path)
{
	char tmp[4096];
	FILE *f;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	f = fopen(tmp, "w");
	if (!f)
		return -errno;
	for (uint64_t t = 0; t < g_acked_nbits; t++)
		if (__atomic_load_n(&g_acked_bits[t / 64], __ATOMIC_RELAXED) & (1ull << (t % 64)))
			fprintf(f, "%" PRIu64 "\n", t);
	if (fclose(f) != 0 || rename(tmp, path) != 0) {
		int rc = -errno;
		unlink(tmp);
		return rc;
	}
	return 0;
}

/* Loads --acked-from once it exists. Returns 0 (loaded), -ENOENT (not yet) or -errno. */
static int load_acked(const char *path)
{
	FILE *f = fopen(path, "r");
	size_t cap = 0;
	uint64_t t;

	if (!f)
		return -errno;
	while (fscanf(f, "%" SCNu64, &t) == 1) {
		if (g_acked.n == cap) {
			cap = cap ? cap * 2 : 4096;
			uint64_t *nt = realloc(g_acked.tok, cap * sizeof(*nt));
			if (!nt) {
				fclose(f);
				return -ENOMEM;
			}
			g_acked.tok = nt;
		}
		g_acked.tok[g_acked.n++] = t;
	}
	int bad = !feof(f);
	fclose(f);
	if (bad)
		return -EINVAL;
	g_acked.loaded = true;
	return 0;
}

static bool token_seen(const struct gen_tokens *tk, uint64_t t)
{
	return t < tk->nbits &&
	       (__atomic_load_n(&tk->bits[t / 64], __ATOMIC_RELAXED) & (1ull << (t % 64)));
}

static const struct gen_tokens *g_tokens; /* the sink's map */

/*
 * The totals now. SCHED: also the workers' run and wait times from /proc (a
 * directory walk and two files a thread: for the line each second, not for
 * the checks in between, which share a CPU with a worker).
 */
static void take_sample(const struct dp *dp, void *const *apps, struct sample *s, bool sched)
{
	memset(s, 0, sizeof(*s));
	s->tsc = rte_rdtsc();
	for (unsigned i = 0; i < dp->n_workers; i++) {
		struct gen_stats g = {0};
		struct dp_stats w;
		if (g_mode == MODE_SMTP) {
			gen_smtp_read(apps[i], &s->sm, NULL);
			s->active += gen_smtp_active(apps[i]);
		} else if (g_mode == MODE_SINK) {
			gen_sink_read(apps[i], &s->sk);
			s->active += gen_sink_active(apps[i]);
		} else {
			gen_client_read(apps[i], &g);
			s->active += gen_client_active(apps[i]);
		}
		s->g.bytes_sent += g.bytes_sent;
		s->g.bytes_received += g.bytes_received;
		s->g.opened += g.opened;
		s->g.completed += g.completed;
		s->g.errors += g.errors;
		s->g.mismatches += g.mismatches;
		dp_stats_read(&dp->workers[i]->stats, &w);
		s->segments += w.c[DP_C_TCP_SEGS_IN] + w.c[DP_C_TCP_SEGS_OUT];
		s->busy_cycles += w.c[DP_C_BUSY_CYCLES];
		s->loop_cycles += w.c[DP_C_LOOP_CYCLES];
		s->retransmits += w.c[DP_C_TCP_RETRANSMITS];
	}
	if (sched)
		read_schedstat(&s->run_ns, &s->wait_ns);
}

/* Share of the run the workers spent waiting for a CPU, in percent. */
static double wait_pct(const struct sample *a, const struct sample *b)
{
	uint64_t run = b->run_ns - a->run_ns, wait = b->wait_ns - a->wait_ns;
	return run + wait ? 100.0 * (double)wait / (double)(run + wait) : 0;
}

/* Payload bytes that count for the mode: sent to discard, or read back from echo. */
static uint64_t payload(enum gen_mode mode, const struct sample *s)
{
	return mode == GEN_MODE_STREAM ? s->g.bytes_sent : s->g.bytes_received;
}

static void print_live(const struct opts *o, unsigned sec, const struct sample *a,
		       const struct sample *b, uint64_t hz)
{
	double dt = (double)(b->tsc - a->tsc) / (double)hz;
	double gbps = (double)(payload(o->mode, b) - payload(o->mode, a)) * 8 / dt / 1e9;
	double cps = (double)(b->g.completed - a->g.completed) / dt;
	uint64_t segs = b->segments - a->segments;
	double busy = b->loop_cycles > a->loop_cycles
			      ? 100.0 * (double)(b->busy_cycles - a->busy_cycles) /
					(double)(b->loop_cycles - a->loop_cycles)
			      : 0;

	printf("mxgate-gen: %3us %8.3f Gbit/s %9.0f conn/s %9.0f seg/s  active %u  errors %" PRIu64
	       "  busy %.0f%%  cpu wait %.0f%%\n",
	       sec, gbps, cps, (double)segs / dt, b->active, b->g.errors, busy, wait_pct(a, b));
	fflush(stdout);
}

static void print_json(const struct opts *o, const struct sample *a, const struct sample *b,
		       uint64_t hz)
{
	double dt = (double)(b->tsc - a->tsc) / (double)hz;
	uint64_t bytes = payload(o->mode, b) - payload(o->mode, a);
	uint64_t segs = b->segments - a->segments;
	uint64_t busy = b->busy_cycles - a->busy_cycles;
	char dst[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &o->dst, dst, sizeof(dst));
	printf("{\"mode\":\"%s\",\"dst\":\"%s\",\"port\":%u,\"seconds\":%.3f,\"conns\":%u,"
	       "\"size\":%u,\"gbps\":%.3f,\"conns_per_s\":%.0f,\"bytes\":%" PRIu64
	       ",\"completed\":%" PRIu64 ",\"opened\":%" PRIu64 ",\"segments\":%" PRIu64
	       ",\"retransmits\":%" PRIu64 ",\"errors\":%" PRIu64 ",\"mismatches\":%" PRIu64
	       ",\"gen_busy_cycles\":%" PRIu64 ",\"gen_busy_pct\":%.1f,\"gen_cpu_wait_pct\":%.1f"
	       ",\"tsc_hz\":%" PRIu64 "}\n",
	       mode_names[o->mode], dst, o->port, dt,
	       o->mode == GEN_MODE_RR ? o->concurrency : o->conns,
	       o->mode == GEN_MODE_RR ? o->size : 0, (double)bytes * 8 / dt / 1e9,
	       (double)(b->g.completed - a->g.completed) / dt, bytes,
	       b->g.completed - a->g.completed, b->g.opened - a->g.opened, segs,
	       b->retransmits - a->retransmits, b->g.errors - a->g.errors,
	       b->g.mismatches - a->g.mismatches, busy,
	       b->loop_cycles > a->loop_cycles
		       ? 100.0 * (double)busy / (double)(b->loop_cycles - a->loop_cycles)
		       : 0,
	       wait_pct(a, b), hz);
	fflush(stdout);
}

/* Runs the clients for o->seconds, a line a second; fills the samples at start and stop. */
static void run(struct dp *dp, void *const *clients, const struct opts *o,
		struct sample *first, struct sample *last)
{
	struct sample prev, now;

	take_sample(dp, clients, first, true);
	for (unsigned i = 0; i < dp->n_workers; i++)
		gen_client_start(clients[i]);
	prev = *first;
	for (unsigned sec = 1; sec <= o->seconds && !got_signal; sec++) {
		uint64_t until = first->tsc + (uint64_t)sec * dp->hz;
		while (rte_rdtsc() < until && !got_signal)
			sleep_ms(1);
		take_sample(dp, clients, &now, true);
		print_live(o, sec, &prev, &now, dp->hz);
		prev = now;
	}
	/* The result is what happened up to here; closing the streams is not part of it. */
	*last = prev;
	for (unsigned i = 0; i < dp->n_workers; i++)
		gen_client_stop(clients[i]);
	for (unsigned t = 0; t < DRAIN_WAIT_MS; t++) {
		unsigned active = 0;
		for (unsigned i = 0; i < dp->n_workers; i++)
			active += gen_client_active(clients[i]);
		if (!active)
			break;
		sleep_ms(1);
	}
}

/* ---- the SMTP roles ---- */

static double secs(const struct sample *a, const struct sample *b, uint64_t hz)
{
	return (double)(b->tsc - a->tsc) / (double)hz;
}

static double busy_pct(const struct sample *a, const struct sample *b)
{
	return b->loop_cycles > a->loop_cycles ? 100.0 * (double)(b->busy_cycles - a->busy_cycles) /
							 (double)(b->loop_cycles - a->loop_cycles)
					       : 0;
}

static uint64_t smtp_errors(const struct gen_smtp_stats *s)
{
	return s->session_errors + s->msgs_failed;
}

static uint64_t sink_errors(const struct gen_sink_stats *s)
{
	return s->body_bad + s->no_token + s->other_run + s->out_of_range + s->sessions_aborted;
}

static void print_live_smtp(unsigned sec, const struct sample *a, const struct sample *b,
			    uint64_t hz)
{
	double dt = secs(a, b, hz);

	if (g_mode == MODE_SMTP) {
		char hs[48] = "";

		if (g_tls != GEN_TLS_NONE)
			snprintf(hs, sizeof(hs), "  %.0f TLS hs/s",
				 (double)(b->sm.tls.c[TLS_C_TLS_HANDSHAKES] -
					  a->sm.tls.c[TLS_C_TLS_HANDSHAKES]) /
					 dt);
		printf("mxgate-gen: %3us %9.0f msg/s %8.3f Gbit/s  active %u  acked %" PRIu64
		       "  retries %" PRIu64 "  errors %" PRIu64 "%s  busy %.0f%%  cpu wait %.0f%%\n",
		       sec, (double)(b->sm.msgs_acked - a->sm.msgs_acked) / dt,
		       (double)(b->sm.bytes_acked - a->sm.bytes_acked) * 8 / dt / 1e9, b->active,
		       b->sm.msgs_acked, b->sm.retries_4xx + b->sm.retries_lost, smtp_errors(&b->sm),
		       hs, busy_pct(a, b), wait_pct(a, b));
	} else
		printf("mxgate-gen: %3us %9.0f msg/s %8.3f Gbit/s  active %u  messages %" PRIu64
		       "  unique %" PRIu64 "  duplicates %" PRIu64 "  errors %" PRIu64
		       "  busy %.0f%%  cpu wait %.0f%%\n",
		       sec, (double)(b->sk.messages - a->sk.messages) / dt,
		       (double)(b->sk.bytes - a->sk.bytes) * 8 / dt / 1e9, b->active, b->sk.messages,
		       b->sk.unique, b->sk.duplicates, sink_errors(&b->sk), busy_pct(a, b),
		       wait_pct(a, b));
	fflush(stdout);
}

static const char *const lat_names[3] = {"connect", "mail", "dot"};
static const char *const lat_labels[4] = {"connect -> 220", "MAIL -> reply",
					  "end of data -> reply", "TLS handshake"};

/* TLS figures: failure reasons, versions and ciphers as the TLS module counts them. */
struct tls_label {
	const char *name;
	enum tls_counter c;
};

static const struct tls_label tls_fails[] = {
	{"protocol", TLS_C_TLS_FAIL_PROTOCOL}, {"version", TLS_C_TLS_FAIL_VERSION},
	{"cipher", TLS_C_TLS_FAIL_CIPHER},     {"verify", TLS_C_TLS_FAIL_VERIFY},
	{"closed", TLS_C_TLS_FAIL_CLOSED},     {"timeout", TLS_C_TLS_FAIL_TIMEOUT},
	{"alert", TLS_C_TLS_FAIL_ALERT},       {"other", TLS_C_TLS_FAIL_OTHER},
	{NULL, 0},
};
static const struct tls_label tls_versions[] = {
	{"tls1_2", TLS_C_TLS_V1_2}, {"tls1_3", TLS_C_TLS_V1_3}, {"other", TLS_C_TLS_V_OTHER},
	{NULL, 0},
};
static const struct tls_label tls_ciphers[] = {
	{"aes128_gcm", TLS_C_TLS_CIPHER_AES128_GCM},
	{"aes256_gcm", TLS_C_TLS_CIPHER_AES256_GCM},
	{"chacha20_poly1305", TLS_C_TLS_CIPHER_CHACHA20},
	{"other", TLS_C_TLS_CIPHER_OTHER},
	{NULL, 0},
};

static uint64_t tls_failures(const struct tls_stats *t)
{
	uint64_t n = 0;

	for (const struct tls_label *l = tls_fails; l->name; l++)
		n += t->c[l->c];
	return n;
}

/* "name N, name N" of L's non-zero counters into BUF, or "none". */
static void tls_list(char *buf, size_t len, const struct tls_stats *t, const struct tls_label *l)
{
	size_t n = 0;

	buf[0] = '\0';
	for (; l->name && n < len; l++)
		if (t->c[l->c])
			n += (size_t)snprintf(buf + n, len - n, "%s%s %" PRIu64, n ? ", " : "", l->name,
					      t->c[l->c]);
	if (n == 0)
		snprintf(buf, len, "none");
}

/* {"name":N,...} of every counter of L. */
static void tls_json(const struct tls_stats *t, const struct tls_label *l)
{
	printf("{");
	for (const struct tls_label *f = l; f->name; f++)
		printf("%s\"%s\":%" PRIu64, f == l ? "" : ",", f->name, t->c[f->c]);
	printf("}");
}

static void print_smtp_tls_table(const struct opts *o, const struct gen_smtp_stats *t,
				 double hs_rate)
{
	char buf[256];

	if (o->tls == GEN_TLS_NONE)
		return;
	printf("  %-22s %12" PRIu64 "  %.0f/s, %s, %s%s; resumed %" PRIu64 "\n",
	       "TLS handshakes", t->tls.c[TLS_C_TLS_HANDSHAKES], hs_rate, tls_names[o->tls],
	       o->tls_ca ? "verified against " : "not verified", o->tls_ca ? o->tls_ca : "",
	       t->tls.c[TLS_C_TLS_RESUMED]);
	tls_list(buf, sizeof(buf), &t->tls, tls_versions);
	printf("  %-22s %12s  %s\n", "TLS versions", "", buf);
	tls_list(buf, sizeof(buf), &t->tls, tls_ciphers);
	printf("  %-22s %12s  %s\n", "TLS ciphers", "", buf);
	tls_list(buf, sizeof(buf), &t->tls, tls_fails);
	printf("  %-22s %12" PRIu64 "  (%s; STARTTLS not offered %" PRIu64 ")\n", "TLS failures",
	       tls_failures(&t->tls), buf, t->tls_not_offered);
}

static void print_smtp_tls_json(const struct opts *o, const struct gen_smtp_stats *t,
				const struct hist *h, double hs_rate)
{
	printf(",\"tls\":{\"mode\":\"%s\",\"verify\":%s,\"resume\":%s,\"started\":%" PRIu64
	       ",\"handshakes\":%" PRIu64 ",\"handshakes_per_s\":%.0f,\"resumed\":%" PRIu64
	       ",\"failures\":%" PRIu64 ",\"not_offered\":%" PRIu64
	       ",\"errors_after_handshake\":%" PRIu64 ",\"handshake_cycles\":%" PRIu64
	       ",\"failed\":",
	       tls_names[o->tls], o->tls_ca ? "true" : "false", o->tls_resume ? "true" : "false",
	       t->tls_started,
	       t->tls.c[TLS_C_TLS_HANDSHAKES], hs_rate, t->tls.c[TLS_C_TLS_RESUMED],
	       tls_failures(&t->tls), t->tls_not_offered,
	       t->tls.c[TLS_C_TLS_ERRORS_AFTER_HANDSHAKE], t->tls.c[TLS_C_TLS_HANDSHAKE_CYCLES]);
	tls_json(&t->tls, tls_fails);
	printf(",\"versions\":");
	tls_json(&t->tls, tls_versions);
	printf(",\"ciphers\":");
	tls_json(&t->tls, tls_ciphers);
	printf(",\"handshake_us\":{\"p50\":%" PRIu64 ",\"p99\":%" PRIu64 ",\"p999\":%" PRIu64
	       ",\"max\":%" PRIu64 ",\"n\":%" PRIu64 "}}",
	       hist_quantile(h, 0.5), hist_quantile(h, 0.99), hist_quantile(h, 0.999), h->max,
	       h->n);
}

static void print_smtp_report(const struct opts *o, const struct sample *first,
			      const struct sample *at_stop, const struct sample *last,
			      const struct gen_smtp_hists *h, uint64_t hz)
{
	double dt = secs(first, at_stop, hz);
	const struct gen_smtp_stats *t = &last->sm;
	uint64_t acked_w = at_stop->sm.msgs_acked - first->sm.msgs_acked;
	double rate = dt > 0 ? (double)acked_w / dt : 0;
	double gbps = dt > 0 ? (double)(at_stop->sm.bytes_acked - first->sm.bytes_acked) * 8 / dt / 1e9
			     : 0;
	const struct hist *hs[4] = {&h->connect, &h->mail, &h->dot, &h->tls};
	double hs_rate = dt > 0 ? (double)(at_stop->sm.tls.c[TLS_C_TLS_HANDSHAKES] -
					   first->sm.tls.c[TLS_C_TLS_HANDSHAKES]) /
					  dt
				: 0;
	char dst[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &o->dst, dst, sizeof(dst));
	printf("\nmxgate-gen smtp: %s port %u, %u sessions, %u per session, size %u-%u, %u rcpt%s, "
	       "pipelining %s, tls %s\n",
	       dst, o->port, o->concurrency, o->per_session, o->size, o->size_max, o->rcpts,
	       o->rcpts == 1 ? "" : "s", o->no_pipelining ? "off" : "on", tls_names[o->tls]);
	printf("  %-22s %12.3f s\n", "measured", dt);
	printf("  %-22s %12.0f msg/s  %.3f Gbit/s\n", "rate", rate, gbps);
	printf("  %-22s %12" PRIu64 "\n", "messages started", t->msgs_started);
	printf("  %-22s %12" PRIu64 "\n", "messages acked", t->msgs_acked);
	printf("  %-22s %12" PRIu64 "\n", "messages failed", t->msgs_failed);
	printf("  %-22s %12" PRIu64 "  (after 4xx %" PRIu64 ", after a lost connection %" PRIu64
	       "; gave up %" PRIu64 ")\n",
	       "retries", t->retries_4xx + t->retries_lost, t->retries_4xx, t->retries_lost,
	       t->retries_exhausted);
	printf("  %-22s %12" PRIu64 "\n", "messages unfinished",
	       t->msgs_started - t->msgs_acked - t->msgs_failed);
	printf("  %-22s %12" PRIu64 "  (ok %" PRIu64 ", errors %" PRIu64 ")\n", "sessions",
	       t->sessions_opened, t->sessions_ok, t->session_errors);
	printf("  %-22s %10s %10s %10s %10s %10s\n", "latency (us)", "p50", "p99", "p99.9", "max",
	       "count");
	for (int i = 0; i < (o->tls != GEN_TLS_NONE ? 4 : 3); i++)
		printf("  %-22s %10" PRIu64 " %10" PRIu64 " %10" PRIu64 " %10" PRIu64 " %10" PRIu64
		       "\n",
		       lat_labels[i], hist_quantile(hs[i], 0.5), hist_quantile(hs[i], 0.99),
		       hist_quantile(hs[i], 0.999), hs[i]->max, hs[i]->n);
	print_smtp_tls_table(o, t, hs_rate);
	printf("  %-22s", "replies");
	for (unsigned c = 0; c < GEN_CODES; c++)
		if (t->codes[c])
			printf(" %u:%" PRIu64, c + 200, t->codes[c]);
	printf("\n");

	printf("{\"mode\":\"smtp\",\"dst\":\"%s\",\"port\":%u,\"run_id\":\"%016" PRIx64 "\","
	       "\"seconds\":%.3f,\"sessions\":%u,\"per_session\":%u,\"size_min\":%u,\"size_max\":%u,"
	       "\"rcpts\":%u,\"pipelining\":%s,\"msgs_per_s\":%.0f,\"gbps\":%.3f,"
	       "\"started\":%" PRIu64 ",\"acked\":%" PRIu64 ",\"failed\":%" PRIu64
	       ",\"bytes_acked\":%" PRIu64 ",\"sessions_opened\":%" PRIu64 ",\"sessions_ok\":%" PRIu64
	       ",\"session_errors\":%" PRIu64 ",\"errors\":%" PRIu64 ",\"retries_4xx\":%" PRIu64
	       ",\"retries_lost\":%" PRIu64 ",\"retries_exhausted\":%" PRIu64
	       ",\"unfinished\":%" PRIu64 ",\"size_dir_files\":%u,\"latency_us\":{",
	       dst, o->port, o->run_id, dt, o->concurrency, o->per_session, o->size, o->size_max,
	       o->rcpts, o->no_pipelining ? "false" : "true", rate, gbps, t->msgs_started,
	       t->msgs_acked, t->msgs_failed, t->bytes_acked, t->sessions_opened, t->sessions_ok,
	       t->session_errors, smtp_errors(t), t->retries_4xx, t->retries_lost,
	       t->retries_exhausted, t->msgs_started - t->msgs_acked - t->msgs_failed, g_files.n);
	for (int i = 0; i < 3; i++)
		printf("%s\"%s\":{\"p50\":%" PRIu64 ",\"p99\":%" PRIu64 ",\"p999\":%" PRIu64
		       ",\"max\":%" PRIu64 ",\"n\":%" PRIu64 "}",
		       i ? "," : "", lat_names[i], hist_quantile(hs[i], 0.5),
		       hist_quantile(hs[i], 0.99), hist_quantile(hs[i], 0.999), hs[i]->max, hs[i]->n);
	printf("},\"replies\":{");
	for (unsigned c = 0, n = 0; c < GEN_CODES; c++)
		if (t->codes[c])
			printf("%s\"%u\":%" PRIu64, n++ ? "," : "", c + 200, t->codes[c]);
	printf("},\"segments\":%" PRIu64 ",\"retransmits\":%" PRIu64 ",\"gen_busy_cycles\":%" PRIu64
	       ",\"gen_busy_pct\":%.1f,\"gen_cpu_wait_pct\":%.1f,\"tsc_hz\":%" PRIu64,
	       at_stop->segments - first->segments, at_stop->retransmits - first->retransmits,
	       at_stop->busy_cycles - first->busy_cycles, busy_pct(first, at_stop),
	       wait_pct(first, at_stop), hz);
	print_smtp_tls_json(o, t, &h->tls, hs_rate);
	printf("}\n");
	fflush(stdout);
}

static void print_sink_report(const struct opts *o, const struct gen_tokens *tk,
			      const struct sample *first, const struct sample *last, uint64_t hz)
{
	double dt = secs(first, last, hz);
	const struct gen_sink_stats *t = &last->sk;
	uint64_t run = __atomic_load_n(&tk->run, __ATOMIC_RELAXED);
	char lost[32] = "null";

	uint64_t acked_seen = 0;
	if (o->acked_from && g_acked.loaded) {
		for (size_t i = 0; i < g_acked.n; i++)
			acked_seen += token_seen(tk, g_acked.tok[i]);
		snprintf(lost, sizeof(lost), "%" PRIu64, (uint64_t)g_acked.n - acked_seen);
	} else if (o->expect) {
		snprintf(lost, sizeof(lost), "%" PRIu64,
			 o->expect > t->unique ? o->expect - t->unique : 0);
	}
	char acked_listed[32] = "null", acked_seen_s[32] = "null";
	if (o->acked_from && g_acked.loaded) {
		snprintf(acked_listed, sizeof(acked_listed), "%zu", g_acked.n);
		snprintf(acked_seen_s, sizeof(acked_seen_s), "%" PRIu64, acked_seen);
	}
	printf("\nmxgate-gen sink: port %u, run %016" PRIx64 "\n", o->port, run);
	printf("  %-22s %12.3f s\n", "measured", dt);
	printf("  %-22s %12.0f msg/s  %.3f Gbit/s\n", "rate",
	       dt > 0 ? (double)(t->messages - first->sk.messages) / dt : 0,
	       dt > 0 ? (double)(t->bytes - first->sk.bytes) * 8 / dt / 1e9 : 0);
	printf("  %-22s %12" PRIu64 "\n", "messages", t->messages);
	printf("  %-22s %12" PRIu64 "  (bad %" PRIu64 ")\n", "bodies verified", t->body_ok,
	       t->body_bad);
	printf("  %-22s %12" PRIu64 "\n", "tokens unique", t->unique);
	printf("  %-22s %12" PRIu64 "\n", "duplicates", t->duplicates);
	if (o->acked_from)
		printf("  %-22s %12s  (of %zu acked by the client%s)\n", "lost", lost, g_acked.n,
		       g_acked.loaded ? "" : "; its list never came");
	else
		printf("  %-22s %12s  (of --expect %" PRIu64 ")\n", "lost", lost, o->expect);
	printf("  %-22s %12" PRIu64 "  (other run %" PRIu64 ", past the map %" PRIu64 ")\n",
	       "no token", t->no_token, t->other_run, t->out_of_range);
	printf("  %-22s %12" PRIu64 "  (aborted %" PRIu64 ", refused %" PRIu64 ")\n", "sessions",
	       t->sessions, t->sessions_aborted, t->sessions_refused);
	printf("{\"mode\":\"sink\",\"port\":%u,\"run_id\":\"%016" PRIx64 "\",\"seconds\":%.3f,"
	       "\"messages\":%" PRIu64 ",\"msgs_per_s\":%.0f,\"gbps\":%.3f,\"bytes\":%" PRIu64
	       ",\"body_ok\":%" PRIu64 ",\"body_bad\":%" PRIu64 ",\"unique\":%" PRIu64
	       ",\"duplicates\":%" PRIu64 ",\"expect\":%" PRIu64 ",\"lost\":%s,\"token_max\":%" PRIu64
	       ",\"no_token\":%" PRIu64 ",\"other_run\":%" PRIu64 ",\"out_of_range\":%" PRIu64
	       ",\"sessions\":%" PRIu64 ",\"sessions_aborted\":%" PRIu64 ",\"sessions_refused\":%" PRIu64
	       ",\"tx_aborted\":%" PRIu64 ",\"acked_listed\":%s,\"acked_seen\":%s"
	       ",\"errors\":%" PRIu64 ",\"segments\":%" PRIu64
	       ",\"gen_busy_cycles\":%" PRIu64 ",\"gen_busy_pct\":%.1f,\"tsc_hz\":%" PRIu64 "}\n",
	       o->port, run, dt, t->messages,
	       dt > 0 ? (double)(t->messages - first->sk.messages) / dt : 0,
	       dt > 0 ? (double)(t->bytes - first->sk.bytes) * 8 / dt / 1e9 : 0, t->bytes, t->body_ok,
	       t->body_bad, t->unique, t->duplicates, o->expect, lost, t->token_max, t->no_token,
	       t->other_run, t->out_of_range, t->sessions, t->sessions_aborted, t->sessions_refused,
	       t->aborted, acked_listed, acked_seen_s, sink_errors(t), last->segments - first->segments,
	       last->busy_cycles - first->busy_cycles, busy_pct(first, last), hz);
	fflush(stdout);
}

/* True when the run has what it came for: smtp's messages all done, or the sink's --expect met. */
static bool smtp_finished(const struct dp *dp, void *const *apps, const struct opts *o,
			  const struct sample *now)
{
	if (g_mode == MODE_SINK && o->acked_from) {
		if (!g_acked.loaded) {
			if (rte_rdtsc() < g_acked.next_try_tsc)
				return false;
			g_acked.next_try_tsc = rte_rdtsc() + dp->hz / 20;
			int rc = load_acked(o->acked_from);
			if (rc == -ENOENT)
				return false;
			if (rc != 0) {
				fprintf(stderr, "mxgate-gen: --acked-from %s: %s\n", o->acked_from,
					rc == -EINVAL ? "not a list of tokens" : strerror(-rc));
				got_signal = SIGTERM;
				return false;
			}
		}
		while (g_acked.seen < g_acked.n && token_seen(g_tokens, g_acked.tok[g_acked.seen]))
			g_acked.seen++;
		return g_acked.seen == g_acked.n;
	}
	if (g_mode == MODE_SINK)
		return o->expect && now->sk.unique >= o->expect;
	if (!o->messages)
		return false;
	for (unsigned i = 0; i < dp->n_workers; i++)
		if (!gen_smtp_done(apps[i]))
			return false;
	return true;
}

/*
 * The SMTP roles' run: a line a second until --seconds, or until the run is
 * finished (checked every millisecond); then smtp stops beginning messages
 * and waits for its sessions to QUIT. AT_STOP is the sample when the
 * measured part ended, LAST the one after the drain (the totals).
 */
static void run_smtp(struct dp *dp, void *const *apps, const struct opts *o,
		     struct sample *first, struct sample *at_stop, struct sample *last)
{
	struct sample prev, now;
	bool done = false;

	take_sample(dp, apps, first, true);
	if (g_mode == MODE_SMTP)
		for (unsigned i = 0; i < dp->n_workers; i++)
			gen_smtp_start(apps[i]);
	prev = *first;
	/* a run bounded by a count checks each millisecond whether it is done */
	bool bounded = o->acked_from || (g_mode == MODE_SINK ? o->expect != 0 : o->messages != 0);

	for (unsigned sec = 1; sec <= o->seconds && !got_signal && !done; sec++) {
		uint64_t until = first->tsc + (uint64_t)sec * dp->hz;
		while (rte_rdtsc() < until && !got_signal) {
			sleep_ms(1);
			if (!bounded)
				continue;
			take_sample(dp, apps, &now, false);
			if (smtp_finished(dp, apps, o, &now)) {
				done = true;
				break;
			}
		}
		take_sample(dp, apps, &now, true);
		print_live_smtp(sec, &prev, &now, dp->hz);
		prev = now;
	}
	*at_stop = prev;
	if (g_mode == MODE_SINK) {
		sleep_ms(SINK_SETTLE_MS); /* a duplicate right behind the last one still counts */
		take_sample(dp, apps, last, true);
		return;
	}
	for (unsigned i = 0; i < dp->n_workers; i++)
		gen_smtp_stop(apps[i]);
	for (unsigned t = 0; t < DRAIN_WAIT_MS; t++) {
		unsigned active = 0;
		for (unsigned i = 0; i < dp->n_workers; i++)
			active += gen_smtp_active(apps[i]);
		if (!active)
			break;
		sleep_ms(1);
	}
	take_sample(dp, apps, last, true);
}

/* Makes every worker's app for the mode; returns 0 or -1 with ERR. */
static int make_apps(struct dp *dp, const struct opts *o, struct gen_tokens *tk, void **apps,
		     char *err, size_t errlen)
{
	unsigned n = dp->n_workers;

	for (unsigned i = 0; i < n; i++) {
		unsigned share = o->concurrency / n + (i < o->concurrency % n);
		if (g_mode == MODE_SMTP) {
			uint64_t msgs = o->messages ? o->messages / n + (i < o->messages % n)
						    : UINT64_MAX;
			struct gen_smtp_params p = {
				.dst = o->dst,
				.port = rte_cpu_to_be_16((uint16_t)o->port),
				.sessions = share,
				.per_session = o->per_session,
				.messages = msgs,
				.token_first = i,
				.token_step = n,
				.rate = o->rate ? RTE_MAX(o->rate / n, 1u) : 0,
				.size_min = o->size,
				.size_max = o->size_max,
				.rcpts = o->rcpts,
				.pipelining = !o->no_pipelining,
				.from = o->from,
				.to = o->to,
				.helo = o->helo,
				.run = o->run_id,
				.files = o->size_dir ? &g_files : NULL,
				.max_retries = o->retries,
				.backoff_min_ms = o->backoff_min,
				.backoff_max_ms = o->backoff_max,
				.reply_timeout_ms = o->reply_timeout * 1000,
				.acked_bits = g_acked_bits,
				.acked_nbits = g_acked_nbits,
				.tls = o->tls,
				.tls_cfg = &g_tls_cfg,
				.tls_name = o->tls_name ? o->tls_name : o->tls_ca ? g_tls_name : NULL,
				.tls_verify = o->tls_ca != NULL,
				.tls_resume = o->tls_resume,
			};
			apps[i] = gen_smtp_new(&p, dp->workers[i]);
		} else if (g_mode == MODE_SINK) {
			struct gen_sink_params p = {
				.port = rte_cpu_to_be_16((uint16_t)o->port),
				.sessions = RTE_MAX(share, 1u),
				.hostname = "sink.mxgate-gen.test",
				.tokens = tk,
			};
			apps[i] = gen_sink_new(&p, dp->workers[i]);
		} else {
			unsigned total = o->mode == GEN_MODE_RR ? o->concurrency : o->conns;
			struct gen_params p = {
				.mode = (enum gen_mode)o->mode,
				.dst = o->dst,
				.port = rte_cpu_to_be_16((uint16_t)o->port),
				.conns = total / n + (i < total % n),
				.size = o->size,
			};
			apps[i] = gen_client_new(&p, dp->workers[i]);
		}
		if (!apps[i]) {
			snprintf(err, errlen, "worker %u: cannot make the %s role (%s)", i,
				 mode_names[g_mode],
				 g_mode == MODE_SINK ? "out of memory, or the port is taken"
						     : "no route to --dst, or out of memory?");
			return -1;
		}
	}
	return 0;
}

static void free_apps(void **apps)
{
	for (unsigned i = 0; i < DP_MAX_WORKERS; i++) {
		if (g_mode == MODE_SMTP)
			gen_smtp_free(apps[i]);
		else if (g_mode == MODE_SINK)
			gen_sink_free(apps[i]);
		else
			gen_client_free(apps[i]);
		apps[i] = NULL;
	}
}

static struct dp dp; /* static: the telemetry thread may look until it is told not to */

int main(int argc, char **argv)
{
	static struct eal_argv ea;
	static struct sample first, at_stop, last;
	static struct gen_smtp_hists hists;
	void *apps[DP_MAX_WORKERS] = {0};
	struct gen_tokens tokens = {0};
	struct opts o;
	char err[256] = "";
	int rc, status = EXIT_FAILURE;

	if (parse_args(argc, argv, &o) != 0)
		return EXIT_USAGE;
	g_mode = o.mode;
	g_tls = o.tls;
	struct cfg *cfg = cfg_load(o.config, stderr);
	if (!cfg)
		return EXIT_USAGE;
	if (apply_overrides(cfg, &o) != 0 || tls_options(&o) != 0) {
		cfg_free(cfg);
		return EXIT_USAGE;
	}
	/* the bodies first: a bad folder is said before any port is touched */
	if (o.size_dir) {
		if (gen_files_load(&g_files, o.size_dir, err, sizeof(err)) != 0) {
			fprintf(stderr, "mxgate-gen: %s\n", err);
			gen_files_free(&g_files);
			cfg_free(cfg);
			return EXIT_FAILURE;
		}
		/* what --size reports: the bodies' range (the header adds its own) */
		o.size = (unsigned)RTE_MIN(g_files.min_len, (size_t)SIZE_MAX_MSG);
		o.size_max = (unsigned)RTE_MIN(g_files.max_len, (size_t)SIZE_MAX_MSG);
	}
	if (eal_argv_build(&ea, cfg, argv[0], argv + optind, argc - optind) < 0) {
		fprintf(stderr, "mxgate-gen: EAL command line too long\n");
		cfg_free(cfg);
		return EXIT_USAGE;
	}
	if (rte_eal_init(ea.argc, ea.argv) < 0) {
		fprintf(stderr, "mxgate-gen: EAL start failed: %s\n", rte_strerror(rte_errno));
		cfg_free(cfg);
		return EXIT_FAILURE;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	if (dp_setup(&dp, cfg, err, sizeof(err)) != 0) {
		for (unsigned i = 0; i < cfg->dp.n_ports; i++)
			if (strstr(cfg->dp.ports[i].device, "role=client") &&
			    strncmp(err, "port ", 5) == 0)
				snprintf(err + strlen(err), sizeof(err) - strlen(err),
					 " (is the memif server up?)");
		goto fail_msg;
	}
	if (o.mode == MODE_SMTP && !o.run_id)
		while (!o.run_id)
			o.run_id = rte_rand();
	if (o.acked_out) {
		if (o.messages > (1u << 30)) {
			snprintf(err, sizeof(err), "--acked-out takes --messages up to 1073741824");
			goto fail_msg;
		}
		g_acked_nbits = o.messages;
		g_acked_bits = calloc((g_acked_nbits + 63) / 64, sizeof(uint64_t));
		if (!g_acked_bits) {
			snprintf(err, sizeof(err), "no memory for the acked-token map");
			goto fail_msg;
		}
	}
	g_tokens = &tokens;
	if (o.mode == MODE_SINK) {
		tokens.run = o.run_id;
		tokens.nbits = o.expect ? o.expect : SINK_TOKENS_DEFAULT;
		tokens.bits = calloc((tokens.nbits + 63) / 64, sizeof(uint64_t));
		if (!tokens.bits) {
			snprintf(err, sizeof(err), "no memory for the token map");
			goto fail_msg;
		}
	}

	/* Each worker takes its share. */
	if (make_apps(&dp, &o, &tokens, apps, err, sizeof(err)) != 0)
		goto fail_msg;
	if (dp_telemetry_register(&dp) != 0)
		fprintf(stderr, "mxgate-gen: warning: some telemetry commands did not register\n");

	if (wait_links(&dp) != 0) {
		snprintf(err, sizeof(err), "no link within %d s (is the server side up?)",
			 LINK_WAIT_S);
		goto fail_msg;
	}
	dp_launch(&dp);
	if (o.mode != MODE_SINK) {
		rc = ping_server(&dp, o.dst);
		if (rc != 0) {
			char a[INET_ADDRSTRLEN];
			inet_ntop(AF_INET, &o.dst, a, sizeof(a));
			snprintf(err, sizeof(err), "%s does not answer ping: %s", a, strerror(-rc));
			goto fail_msg;
		}
	}
	if (o.mode == MODE_SINK) {
		printf("mxgate-gen: sink on port %u, up to %u sessions, %u s, %u worker%s\n", o.port,
		       o.concurrency, o.seconds, dp.n_workers, dp.n_workers == 1 ? "" : "s");
	} else if (o.mode == MODE_SMTP) {
		printf("mxgate-gen: smtp to %s port %u, %u session%s, run %016" PRIx64
		       ", %u s, %u worker%s\n",
		       inet_ntoa((struct in_addr){.s_addr = o.dst}), o.port, o.concurrency,
		       o.concurrency == 1 ? "" : "s", o.run_id, o.seconds, dp.n_workers,
		       dp.n_workers == 1 ? "" : "s");
	} else {
		unsigned total = o.mode == GEN_MODE_RR ? o.concurrency : o.conns;
		printf("mxgate-gen: %s to %s port %u, %u connection%s, %u s, %u worker%s\n",
		       mode_names[o.mode], inet_ntoa((struct in_addr){.s_addr = o.dst}), o.port,
		       total, total == 1 ? "" : "s", o.seconds, dp.n_workers,
		       dp.n_workers == 1 ? "" : "s");
	}
	fflush(stdout);

	if (o.mode >= MODE_SMTP)
		run_smtp(&dp, apps, &o, &first, &at_stop, &last);
	else
		run(&dp, apps, &o, &first, &last);
	if (got_signal) {
		fprintf(stderr, "mxgate-gen: %s, stopping\n", strsignal(got_signal));
		/* a sink is usually ended this way: what it counted is still its result */
		if (o.mode != MODE_SINK || o.acked_from)
			goto stop;
	}
	if (o.mode == MODE_SMTP) {
		for (unsigned i = 0; i < dp.n_workers; i++)
			gen_smtp_read(apps[i], &(struct gen_smtp_stats){0}, &hists);
		print_smtp_report(&o, &first, &at_stop, &last, &hists, dp.hz);
		if (o.acked_out && (rc = write_acked(o.acked_out)) != 0) {
			snprintf(err, sizeof(err), "--acked-out %s: %s", o.acked_out, strerror(-rc));
			goto fail_msg;
		}
	} else if (o.mode == MODE_SINK) {
		print_sink_report(&o, &tokens, &first, &last, dp.hz);
	} else {
		print_json(&o, &first, &last, dp.hz);
	}
	status = EXIT_SUCCESS;
	goto stop;

fail_msg:
	fprintf(stderr, "mxgate-gen: %s\n", err);
stop:
	dp_teardown(&dp); /* aborts what is left: the clients hear it */
	free_apps(apps);
	free(tokens.bits);
	free(g_acked_bits);
	free(g_acked.tok);
	gen_files_free(&g_files);
	rte_eal_cleanup();
	cfg_free(cfg);
	return status;
}
