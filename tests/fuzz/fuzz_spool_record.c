/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for the spool's record format (dataplane/spool/record.h),
 * what recovery reads from disk after a crash. The first byte picks a mode:
 *   0: frame records from the buffer as recovery does -- a valid record is
 *      skipped whole, anything else by 8 octets -- and decode every payload;
 *   1: seal the rest as a MESSAGE record (correct CRCs, a random seed), frame
 *      it and decode it, so the payload decoder is reached with any bytes;
 *   2: the same for STATE; 3: for SEGMENT.
 * Every decoded MESSAGE or STATE is encoded again: what the encoder writes
 * must decode to the same fields (the decoder accepts what the encoder
 * writes). Crashes, sanitizer reports and a failed round trip are findings.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/spool/crc32c.h"
#include "dataplane/spool/record.h"

#define MAX_RCPTS 64
#define MAX_LEN (1u << 20)

static void check_str(struct smtp_str a, struct smtp_str b)
{
	if (a.len != b.len || (a.len && memcmp(a.p, b.p, a.len) != 0))
		abort();
}

static void round_trip_msg(const uint8_t *p, size_t n)
{
	static struct smtp_rcpt rcpts[MAX_RCPTS], again[MAX_RCPTS];
	static uint8_t out[MAX_LEN + 65536];
	struct spool_env env, env2;
	struct smtp_str content, content2;

	if (spool_rec_decode_msg(p, n, &env, rcpts, MAX_RCPTS, &content) != SPOOL_RE_OK)
		return;
	size_t len = spool_rec_encode_env(out, sizeof(out), &env);
	if (len == 0)
		return; /* a limit the encoder keeps and this payload broke: fine */
	if (len + content.len > sizeof(out))
		return;
	memcpy(out + len, content.p, content.len);
	if (spool_rec_decode_msg(out, len + content.len, &env2, again, MAX_RCPTS, &content2) !=
	    SPOOL_RE_OK)
		abort(); /* the encoder wrote what the decoder refuses */
	if (strcmp(env.queue_id, env2.queue_id) != 0 || env.nrcpt != env2.nrcpt ||
	    env.received != env2.received || env.ret != env2.ret || env.body != env2.body)
		abort();
	check_str(env.sender, env2.sender);
	check_str(env.helo, env2.helo);
	check_str(env.auth, env2.auth);
	check_str(env.authid, env2.authid); /* version 1 and 2 alike (RFC 4954 §5 identity) */
	check_str(env.auth, env2.auth);
	check_str(env.authid, env2.authid); /* version 1 and 2 alike (RFC 4954 §5 identity) */
	check_str(content, content2);
	for (unsigned i = 0; i < env.nrcpt; i++) {
		check_str(rcpts[i].addr, again[i].addr);
		if (rcpts[i].notify != again[i].notify)
			abort();
	}
}

static void round_trip_state(const uint8_t *p, size_t n)
{
	static uint8_t out[SPOOL_STATE_MAX];
	struct spool_state_rec s, s2;

	if (spool_rec_decode_state(p, n, &s) != SPOOL_RE_OK)
		return;
	size_t len = spool_rec_encode_state(out, sizeof(out), &s);
	if (len == 0)
		return;
	if (spool_rec_decode_state(out, len, &s2) != SPOOL_RE_OK)
		abort();
	if (strcmp(s.queue_id, s2.queue_id) != 0 || s.rcpt != s2.rcpt || s.state != s2.state ||
	    s.when != s2.when || s.next_attempt != s2.next_attempt)
		abort();
	check_str(s.reply, s2.reply);
}

static void decode(const struct spool_rec *r)
{
	struct spool_seg_rec seg;

	switch (r->type) {
	case SPOOL_REC_MESSAGE:
		round_trip_msg(r->payload, r->len);
		break;
	case SPOOL_REC_STATE:
		round_trip_state(r->payload, r->len);
		break;
	case SPOOL_REC_SEGMENT:
		(void)spool_rec_decode_segment(r->payload, r->len, &seg);
		break;
	default:
		break;
	}
}

/* Recovery's walk over a segment's bytes under SEED. */
static void walk(const uint8_t *p, size_t n, uint32_t seed)
{
	size_t off = 0;

	while (off + SPOOL_REC_HDR <= n) {
		struct spool_rec r;

		if (spool_rec_frame(p + off, n - off, seed, MAX_LEN, &r) == SPOOL_RE_OK) {
			if (r.size == 0 || r.size > n - off)
				abort(); /* a framed record must lie inside the buffer */
			decode(&r);
			off += r.size;
		} else {
			off += SPOOL_REC_ALIGN;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[MAX_LEN + 64];

	if (size < 5)
		return 0;
	uint8_t mode = data[0] & 3;
	uint32_t seed;

	memcpy(&seed, data + 1, 4);
	data += 5;
	size -= 5;
	if (mode == 0) {
		walk(data, size, seed);
		return 0;
	}
	static const enum spool_rec_type types[4] = { 0, SPOOL_REC_MESSAGE, SPOOL_REC_STATE,
						      SPOOL_REC_SEGMENT };
	if (size > MAX_LEN)
		size = MAX_LEN;
	size_t len = spool_rec_encode(buf, sizeof(buf), types[mode], 1, seed, data, size);
	if (len == 0)
		abort(); /* the buffer holds any payload up to MAX_LEN */
	struct spool_rec r;
	if (spool_rec_frame(buf, len, seed, MAX_LEN, &r) != SPOOL_RE_OK)
		abort(); /* what spool_rec_encode() sealed must frame */
	if (r.len != size || (size && memcmp(r.payload, data, size) != 0))
		abort();
	decode(&r);
	/* one bit flipped anywhere in the record must be caught */
	size_t bit = (seed % (len * 8));
	buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	if (bit / 8 < SPOOL_REC_HDR + size &&
	    spool_rec_frame(buf, len, seed, MAX_LEN, &r) == SPOOL_RE_OK)
		abort();
	return 0;
}
