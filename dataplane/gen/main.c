/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mxgate-gen: a traffic generator on the gateway's own stack. It starts like
 * mxgate-dp (config, EAL, ports, one worker per worker lcore) and runs a load
 * client on every worker (client.c), then prints a line a second and one JSON
 * line with the result. This first piece drives TCP echo/discard services.
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

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>

#include "control/config/config.h"
#include "dataplane/core/dp.h"
#include "dataplane/core/eal.h"
#include "dataplane/gen/client.h"

#define EXIT_USAGE 2
#define LINK_WAIT_S 10  /* for the port's link (memif: the server to accept us) */
#define PING_WAIT_MS 3000
#define DRAIN_WAIT_MS 3000 /* for connections to close after the run */

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
	got_signal = sig;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: mxgate-gen -c FILE --dst ADDR [options] [-- EAL arguments]\n"
		"  -c, --config FILE        configuration (YAML, the schema of mxgate-dp), required\n"
		"      --dst ADDR           server address (IPv4), required\n"
		"      --mode MODE          stream: send to a discard service as fast as the\n"
		"                             window allows (Gbit/s);\n"
		"                           rr: open, send --size bytes, read them back, close,\n"
		"                             again (connections/s);\n"
		"                           echo: stream to an echo service, check every byte back;\n"
		"                           default stream\n"
		"      --port N             server port (default 9 for stream, 7 for rr and echo)\n"
		"      --conns N            stream/echo: connections (default 1)\n"
		"      --concurrency N      rr: connections in flight (default 64)\n"
		"      --size BYTES         rr: request and response size, 1..65536 (default 1024)\n"
		"      --seconds N          how long to run, 1..3600 (default 10)\n"
		"      --file-prefix NAME   EAL file prefix (overrides the config)\n"
		"      --worker-cores LIST  CPUs of the workers, e.g. 1,2 (overrides the config)\n"
		"      --main-core N        CPU of the main lcore (overrides the config)\n"
		"  -h, --help               this text\n"
		"Prints a line each second, then one JSON line:\n"
		"  {\"mode\":..., \"gbps\":..., \"conns_per_s\":..., \"segments\":..., \"errors\":...}\n");
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
	OPT_MAIN
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
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

struct opts {
	const char *config;
	enum gen_mode mode;
	uint32_t dst; /* network order */
	unsigned port, conns, concurrency, size, seconds;
	const char *file_prefix, *worker_cores, *main_core;
};

static const char *const mode_names[] = {
	[GEN_MODE_STREAM] = "stream",
	[GEN_MODE_RR] = "rr",
	[GEN_MODE_ECHO] = "echo",
};

static int parse_args(int argc, char **argv, struct opts *o)
{
	struct in_addr a;
	int opt;

	*o = (struct opts){.conns = 1, .concurrency = 64, .size = 1024, .seconds = 10};
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
			bad = "is not stream, rr or echo";
			for (unsigned i = 0; i < RTE_DIM(mode_names); i++)
				if (strcmp(optarg, mode_names[i]) == 0) {
					o->mode = (enum gen_mode)i;
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
			break;
		case OPT_SIZE:
			if (parse_uint(optarg, 1, 65536, &o->size))
				bad = "is not 1..65536";
			break;
		case OPT_SECONDS:
			if (parse_uint(optarg, 1, 3600, &o->seconds))
				bad = "is not 1..3600";
			break;
		case OPT_PREFIX: o->file_prefix = optarg; break;
		case OPT_WORKERS: o->worker_cores = optarg; break;
		case OPT_MAIN: o->main_core = optarg; break;
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
	if (!o->config || !o->dst) {
		fprintf(stderr, "mxgate-gen: -c FILE and --dst ADDR are required\n");
		usage(stderr);
		return -1;
	}
	if (!o->port)
		o->port = o->mode == GEN_MODE_STREAM ? 9 : 7;
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

/* The totals of every client and of every worker's TCP. */
struct sample {
	uint64_t tsc;
	struct gen_stats g;
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

static void take_sample(const struct dp *dp, struct gen_client *const *clients, struct sample *s)
{
	memset(s, 0, sizeof(*s));
	s->tsc = rte_rdtsc();
	for (unsigned i = 0; i < dp->n_workers; i++) {
		struct gen_stats g;
		struct dp_stats w;
		gen_client_read(clients[i], &g);
		s->g.bytes_sent += g.bytes_sent;
		s->g.bytes_received += g.bytes_received;
		s->g.opened += g.opened;
		s->g.completed += g.completed;
		s->g.errors += g.errors;
		s->g.mismatches += g.mismatches;
		s->active += gen_client_active(clients[i]);
		dp_stats_read(&dp->workers[i]->stats, &w);
		s->segments += w.c[DP_C_TCP_SEGS_IN] + w.c[DP_C_TCP_SEGS_OUT];
		s->busy_cycles += w.c[DP_C_BUSY_CYCLES];
		s->loop_cycles += w.c[DP_C_LOOP_CYCLES];
		s->retransmits += w.c[DP_C_TCP_RETRANSMITS];
	}
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
static void run(struct dp *dp, struct gen_client *const *clients, const struct opts *o,
		struct sample *first, struct sample *last)
{
	struct sample prev, now;

	take_sample(dp, clients, first);
	for (unsigned i = 0; i < dp->n_workers; i++)
		gen_client_start(clients[i]);
	prev = *first;
	for (unsigned sec = 1; sec <= o->seconds && !got_signal; sec++) {
		uint64_t until = first->tsc + (uint64_t)sec * dp->hz;
		while (rte_rdtsc() < until && !got_signal)
			sleep_ms(1);
		take_sample(dp, clients, &now);
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

static struct dp dp; /* static: the telemetry thread may look until it is told not to */

int main(int argc, char **argv)
{
	static struct eal_argv ea;
	struct gen_client *clients[DP_MAX_WORKERS] = {0};
	struct opts o;
	struct sample first, last;
	char err[256] = "";
	int rc, status = EXIT_FAILURE;

	if (parse_args(argc, argv, &o) != 0)
		return EXIT_USAGE;
	struct cfg *cfg = cfg_load(o.config, stderr);
	if (!cfg)
		return EXIT_USAGE;
	if (apply_overrides(cfg, &o) != 0) {
		cfg_free(cfg);
		return EXIT_USAGE;
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

	/* Each worker opens its share. */
	unsigned total = o.mode == GEN_MODE_RR ? o.concurrency : o.conns;
	for (unsigned i = 0; i < dp.n_workers; i++) {
		struct gen_params p = {
			.mode = o.mode,
			.dst = o.dst,
			.port = rte_cpu_to_be_16((uint16_t)o.port),
			.conns = total / dp.n_workers + (i < total % dp.n_workers),
			.size = o.size,
		};
		clients[i] = gen_client_new(&p, dp.workers[i]);
		if (!clients[i]) {
			snprintf(err, sizeof(err), "worker %u: cannot make the client (no route to --dst?)",
				 i);
			goto fail_msg;
		}
	}
	if (dp_telemetry_register(&dp) != 0)
		fprintf(stderr, "mxgate-gen: warning: some telemetry commands did not register\n");

	if (wait_links(&dp) != 0) {
		snprintf(err, sizeof(err), "no link within %d s (is the server side up?)",
			 LINK_WAIT_S);
		goto fail_msg;
	}
	dp_launch(&dp);
	rc = ping_server(&dp, o.dst);
	if (rc != 0) {
		char a[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &o.dst, a, sizeof(a));
		snprintf(err, sizeof(err), "%s does not answer ping: %s", a, strerror(-rc));
		goto fail_msg;
	}
	printf("mxgate-gen: %s to %s port %u, %u connection%s, %u s, %u worker%s\n",
	       mode_names[o.mode], inet_ntoa((struct in_addr){.s_addr = o.dst}), o.port, total,
	       total == 1 ? "" : "s", o.seconds, dp.n_workers, dp.n_workers == 1 ? "" : "s");
	fflush(stdout);

	run(&dp, clients, &o, &first, &last);
	if (got_signal) {
		fprintf(stderr, "mxgate-gen: %s, stopping\n", strsignal(got_signal));
		goto stop;
	}
	print_json(&o, &first, &last, dp.hz);
	status = EXIT_SUCCESS;
	goto stop;

fail_msg:
	fprintf(stderr, "mxgate-gen: %s\n", err);
stop:
	dp_teardown(&dp); /* aborts what is left: the clients hear it */
	for (unsigned i = 0; i < DP_MAX_WORKERS; i++)
		gen_client_free(clients[i]);
	rte_eal_cleanup();
	cfg_free(cfg);
	return status;
}
