/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mxgate-gen's SMTP client role: concurrent SMTP sessions from one worker's
 * TCP stack, each driving the relay's pure client engine
 * (dataplane/smtp/client.h) as dataplane/relay/relay.c does, sending
 * messages built by content.h. It measures connect->220, MAIL->reply and
 * end of data->final reply per message into fixed histograms (hist.h) and
 * counts replies by code. Runs in the worker loop (dp_worker.app_poll) and
 * its TCP callbacks; the main lcore flips its state and reads its totals.
 */
#ifndef MX_GEN_SMTP_LOAD_H
#define MX_GEN_SMTP_LOAD_H

#include <stdbool.h>
#include <stdint.h>

#include "dataplane/core/dp.h"
#include "dataplane/gen/files.h"
#include "dataplane/gen/hist.h"
#include "dataplane/tls/tls.h"

/* TLS of the load client's sessions. */
enum gen_tls {
	GEN_TLS_NONE,	  /* clear text */
	GEN_TLS_STARTTLS, /* RFC 3207, required: a server that does not offer it is an error */
	GEN_TLS_IMPLICIT, /* RFC 8314 §3.3: the handshake right after connect, then the 220 */
};

struct gen_smtp_params {
	uint32_t dst;		 /* the gateway, network order */
	uint16_t port;		 /* network order */
	unsigned sessions;	 /* sessions kept open at once by this worker (0: none) */
	unsigned per_session;	 /* messages per connection, then QUIT; >= 1 */
	uint64_t messages;	 /* messages this worker starts in all; UINT64_MAX: until stopped */
	uint64_t token_first;	 /* tokens: first, first + step, first + 2 * step, ... */
	uint64_t token_step;
	unsigned rate;		 /* new connections a second on this worker; 0: no cap */
	unsigned size_min, size_max; /* message octets (header and body), uniform */
	unsigned rcpts;		 /* recipients per message, 1..100 */
	bool pipelining;	 /* use PIPELINING when offered */
	const char *from;	 /* envelope and header sender */
	const char *to;		 /* first recipient; the others are local+N@domain */
	const char *helo;	 /* EHLO name */
	uint64_t run;		 /* run id, in every token */
	const struct gen_files *files; /* bodies from files, round robin; NULL: the pattern */
	/*
	 * A transaction deferred (a 4xx reply, or the connection lost or timed
	 * out before the final reply) is sent again with the same token, up to
	 * max_retries times (0: never), after a backoff that doubles from
	 * backoff_min_ms to backoff_max_ms (plus up to half of it at random).
	 * The session that got the 4xx waits for it; a token whose connection
	 * went is taken by the next session first.
	 */
	unsigned max_retries;
	unsigned backoff_min_ms, backoff_max_ms;
	/* every reply timeout of the client engine, ms; 0: RFC 5321 §4.5.3.2's (5 to 10 min) */
	unsigned reply_timeout_ms;
	/* NULL, or a bitmap of acked_nbits tokens shared by the workers: bit T set once T is acked */
	uint64_t *acked_bits;
	uint64_t acked_nbits;
	/*
	 * TLS: with tls other than NONE, each worker makes its own client
	 * tls_ctx from tls_cfg (no certificates: ca_file, cipher and group
	 * lists). tls_name is sent as SNI (not for an address literal);
	 * tls_verify checks the server's chain against tls_cfg->ca_file and
	 * that it carries tls_name (an address literal: an IP SAN).
	 */
	enum gen_tls tls;
	const struct cfg_tls *tls_cfg;
	const char *tls_name;
	bool tls_verify;
	/* offer the worker's latest session ticket on every new session (RFC 8446 §2.2) */
	bool tls_resume;
};

/* Replies counted by code, 200..599 (others in the last slot). */
#define GEN_CODES 401
#define GEN_CODE_OTHER 400

/* Running totals; the worker is the only writer. */
struct gen_smtp_stats {
	uint64_t sessions_opened;   /* tcp_connect() calls that started a handshake */
	uint64_t sessions_ok;	    /* ended after our QUIT */
	uint64_t session_errors;    /* failed opens, resets, timeouts, refusals, protocol errors */
	uint64_t msgs_started;	    /* transactions begun (tokens used) */
	uint64_t msgs_acked;	    /* final 2xx after the end of data for every recipient */
	uint64_t msgs_failed;	    /* 5xx, or deferred once more than max_retries allow */
	uint64_t retries_4xx;	    /* transactions sent again after a 4xx reply */
	uint64_t retries_lost;	    /* ... after the connection was lost or timed out */
	uint64_t retries_exhausted; /* messages failed because max_retries were used up */
	uint64_t bytes_acked;	    /* content octets of the acked messages */
	uint64_t codes[GEN_CODES];  /* final reply lines seen, by code - 200 */
	uint64_t tls_not_offered;   /* sessions ended: STARTTLS required, not offered or refused */
	uint64_t tls_started;	    /* ClientHellos sent */
	struct tls_stats tls;	    /* handshakes by version and cipher, failures by reason */
};

struct gen_smtp_hists {
	struct hist connect; /* SYN sent -> 220 read, us */
	struct hist mail;    /* MAIL sent -> its reply read, us */
	struct hist dot;     /* end of data sent -> final reply read, us */
	struct hist tls;     /* ClientHello written -> handshake done, us */
};

struct gen_smtp;

/*
 * Makes worker W's SMTP client (idle until gen_smtp_start()); installs it as
 * W's app_poll. Returns it, or NULL (out of memory, no route to p->dst, bad
 * parameters, a TLS context that cannot be made). P's strings and tls_cfg
 * must outlive it.
 */
struct gen_smtp *gen_smtp_new(const struct gen_smtp_params *p, struct dp_worker *w);

/* Frees G after its worker was freed (aborting connections calls back into G). NULL is fine. */
void gen_smtp_free(struct gen_smtp *g);

/* From any thread: start opening sessions. */
void gen_smtp_start(struct gen_smtp *g);
/* From any thread: begin no new message; sessions QUIT when their message is done. */
void gen_smtp_stop(struct gen_smtp *g);
/* From any thread: sessions open now. */
unsigned gen_smtp_active(const struct gen_smtp *g);
/* From any thread: messages waiting for a retry with no session (their connection went). */
unsigned gen_smtp_orphans(const struct gen_smtp *g);
/* From any thread: true once the message limit was reached, no retry waits and every session ended. */
bool gen_smtp_done(const struct gen_smtp *g);
/* From any thread: adds G's totals to OUT (a private copy), and its histograms to H. */
void gen_smtp_read(const struct gen_smtp *g, struct gen_smtp_stats *out,
		   struct gen_smtp_hists *h);

#endif
