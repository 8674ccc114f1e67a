/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mxgate-gen's sink role: an SMTP server on one worker's TCP stack (the pure
 * server engine, dataplane/smtp/smtp.h) that accepts whatever is sent to it,
 * checks each message's body against its X-Mxgate-Gen field (content.h) and
 * accounts tokens: first sightings, duplicates, other runs. The token map
 * is shared by the workers (atomic bit operations), so a duplicate that
 * arrives on another worker is still one.
 */
#ifndef MX_GEN_SINK_H
#define MX_GEN_SINK_H

#include <stdbool.h>
#include <stdint.h>

#include "dataplane/core/dp.h"

/* The tokens of one run, shared by every worker's sink. */
struct gen_tokens {
	uint64_t run;	   /* atomic; 0: taken from the first message that has one */
	uint64_t nbits;	   /* tokens 0..nbits-1 are tracked */
	uint64_t *bits;
};

struct gen_sink_params {
	uint16_t port;	      /* network order */
	unsigned sessions;    /* at once on this worker, at most */
	const char *hostname; /* in the 220 and Received: */
	struct gen_tokens *tokens;
};

/* Running totals; the worker is the only writer. */
struct gen_sink_stats {
	uint64_t sessions;	 /* accepted */
	uint64_t sessions_refused; /* over the sessions limit */
	uint64_t sessions_aborted; /* reset or timed out before the client's QUIT */
	uint64_t messages;	 /* accepted (250 after the end of data) */
	uint64_t bytes;		 /* their content octets, as received (with trace fields) */
	uint64_t body_ok;	 /* the body matched its field */
	uint64_t body_bad;	 /* it did not: corrupted, cut, or reordered */
	uint64_t no_token;	 /* no X-Mxgate-Gen field */
	uint64_t other_run;	 /* a field of another run */
	uint64_t unique;	 /* tokens seen for the first time */
	uint64_t duplicates;	 /* tokens seen before */
	uint64_t out_of_range;	 /* tokens past the map */
	uint64_t token_max;	 /* the largest token seen, plus one (0: none) */
	uint64_t aborted;	 /* transactions dropped after DATA (RSET, lost connection) */
};

struct gen_sink;

/*
 * Listens on P->port of worker W's stack. Returns the sink or NULL (out of
 * memory, the port taken). P->tokens and P->hostname must outlive it.
 */
struct gen_sink *gen_sink_new(const struct gen_sink_params *p, struct dp_worker *w);
/* Frees K after its worker was freed (its TCP stack closes the sessions through K). NULL is fine. */
void gen_sink_free(struct gen_sink *k);
/* From any thread: sessions open now. */
unsigned gen_sink_active(const struct gen_sink *k);
/* From any thread: adds K's totals to OUT (token_max: the largest). */
void gen_sink_read(const struct gen_sink *k, struct gen_sink_stats *out);

#endif
