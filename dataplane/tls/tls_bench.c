/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mxgate-tls-bench: server-side TLS handshakes per second per core through
 * dataplane/tls, in memory (no network): our server context against our
 * client, full handshakes and ticket resumptions. Only the server's cycles
 * count (tls_handshake_cycles, the counter the dataplane exports), so the
 * figure is what one worker core spends per handshake it serves.
 *
 *   mxgate-tls-bench CERT KEY [SECONDS] [VERSION]   (VERSION: 1.2 or 1.3, default 1.3)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "dataplane/tls/tls.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* TSC ticks per second, measured against the monotonic clock. */
static double tsc_hz(void)
{
	double t0 = now_s();
	unsigned long long c0 = __builtin_ia32_rdtsc();

	usleep(200000);
	return (double)(__builtin_ia32_rdtsc() - c0) / (now_s() - t0);
}

static int move(struct tls_conn *from, struct tls_conn *to)
{
	const uint8_t *p;
	size_t n = tls_output(from, &p);

	if (n == 0)
		return 0;
	if (tls_input(to, p, n) != 0)
		return -1;
	tls_output_done(from, n);
	return 1;
}

/* One handshake; RESUME: the client's session to offer. Returns the client's SSL session. */
static SSL_SESSION *one(struct tls_ctx *t, struct tls_stats *sst, struct tls_stats *cst,
			SSL_SESSION *resume, int version)
{
	struct tls_conn *s = tls_server_new(t, sst);
	struct tls_conn *c = tls_client_new(t, cst, "bench.example", false);
	SSL *cs = tls_conn_ssl(c);
	SSL_SESSION *got = NULL;
	uint8_t buf[64];

	if (s == NULL || c == NULL)
		goto out;
	SSL_set_max_proto_version(cs, version);
	if (resume != NULL)
		SSL_set_session(cs, resume);
	for (int i = 0; i < 16; i++) {
		(void)tls_read(c, buf, sizeof(buf));
		(void)tls_read(s, buf, sizeof(buf));
		if (move(c, s) + move(s, c) == 0)
			break;
	}
	(void)tls_read(c, buf, sizeof(buf)); /* TLS 1.3: the ticket */
	if (tls_handshake_done(s) && tls_handshake_done(c)) {
		got = SSL_get1_session(cs);
		SSL_shutdown(cs); /* keeps the session resumable */
	}
out:
	tls_conn_free(s);
	tls_conn_free(c);
	return got;
}

int main(int argc, char **argv)
{
	struct cfg_tls cfg = { 0 };
	struct tls_stats sst = { { 0 } }, cst = { { 0 } };
	char err[256];
	double secs = argc > 3 ? atof(argv[3]) : 2.0;
	int version = argc > 4 && strcmp(argv[4], "1.2") == 0 ? TLS1_2_VERSION : TLS1_3_VERSION;

	if (argc < 3) {
		fprintf(stderr, "usage: %s CERT KEY [SECONDS] [1.2|1.3]\n", argv[0]);
		return 2;
	}
	cfg.certs[0] = (struct cfg_tls_cert){ .cert = argv[1], .key = argv[2] };
	cfg.n_certs = 1;
	cfg.min_version = CFG_TLS_V1_2;
	cfg.session_tickets = true;
	struct tls_ctx *t = tls_ctx_new(&cfg, NULL, err, sizeof(err));
	if (t == NULL) {
		fprintf(stderr, "mxgate-tls-bench: %s\n", err);
		return 1;
	}
	double hz = tsc_hz();
	for (int resumed = 0; resumed < 2; resumed++) {
		SSL_SESSION *sess = resumed ? one(t, &sst, &cst, NULL, version) : NULL;
		uint64_t c0, h0, r0;
		unsigned long n = 0;
		double t0 = now_s(), cpu0 = cpu_s();

		c0 = sst.c[TLS_C_TLS_HANDSHAKE_CYCLES];
		h0 = sst.c[TLS_C_TLS_HANDSHAKES];
		r0 = sst.c[TLS_C_TLS_RESUMED];
		while (now_s() - t0 < secs) {
			SSL_SESSION *s = one(t, &sst, &cst, sess, version);

			if (s == NULL) {
				fprintf(stderr, "mxgate-tls-bench: a handshake failed\n");
				return 1;
			}
			SSL_SESSION_free(s);
			n++;
		}
		double cpu = cpu_s() - cpu0;
		uint64_t cyc = sst.c[TLS_C_TLS_HANDSHAKE_CYCLES] - c0;
		uint64_t hs = sst.c[TLS_C_TLS_HANDSHAKES] - h0;
		uint64_t rs = sst.c[TLS_C_TLS_RESUMED] - r0;

		/* TSC cycles are wall time: on a busy machine they include time others ran */
		printf("%s %-7s %6lu handshakes (%lu resumed): server %9.0f TSC cycles each = "
		       "%6.0f/s per core; client+server CPU %7.1f us each = %6.0f/s per core\n",
		       version == TLS1_3_VERSION ? "TLSv1.3" : "TLSv1.2",
		       resumed ? "resumed" : "full", (unsigned long)hs, (unsigned long)rs,
		       hs ? (double)cyc / (double)hs : 0.0, cyc ? hz * (double)hs / (double)cyc : 0.0,
		       n ? cpu * 1e6 / (double)n : 0.0, cpu > 0 ? (double)n / cpu : 0.0);
		SSL_SESSION_free(sess);
	}
	tls_ctx_free(t);
	return 0;
}
