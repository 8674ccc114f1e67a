/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The spool record format (dataplane/spool/record.c): round trips, every
 * reason a record is refused, and CRC coverage of every bit. Inputs sit
 * right before a guard page, so any read past the end crashes the test.
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "dataplane/spool/crc32c.h"
#include "dataplane/spool/record.h"
#include "fixture.h"
#include "guard.h"

static struct guard g;

static void fini(void)
{
	guard_release(&g);
}

TestSuite(crc32c);
TestSuite(frame, .fini = fini);
TestSuite(message, .fini = fini);
TestSuite(state, .fini = fini);
TestSuite(segment, .fini = fini);

/* ---- CRC32C ---- */

Test(crc32c, matches_the_rfc_3720_check_values)
{
	/* RFC 3720 B.4: 32 octets of zeros, of ones, ascending; and the usual "123456789" */
	uint8_t z[32] = { 0 }, o[32], inc[32];
	memset(o, 0xff, sizeof(o));
	for (int i = 0; i < 32; i++)
		inc[i] = (uint8_t)i;
	cr_assert_eq(spool_crc32c(0, z, 32), 0x8a9136aau);
	cr_assert_eq(spool_crc32c(0, o, 32), 0x62a8ab43u);
	cr_assert_eq(spool_crc32c(0, inc, 32), 0x46dd794eu);
	cr_assert_eq(spool_crc32c(0, "123456789", 9), 0xe3069283u);
}

Test(crc32c, hardware_and_table_paths_agree_and_chain)
{
	uint8_t buf[1031];
	fx_content(buf, sizeof(buf), 7);
	for (size_t n = 0; n <= sizeof(buf); n += 13) {
		cr_assert_eq(spool_crc32c(0, buf, n), spool_crc32c_sw(0, buf, n), "n=%zu", n);
		uint32_t a = spool_crc32c(0x1234, buf, n / 3);
		cr_assert_eq(spool_crc32c(a, buf + n / 3, n - n / 3), spool_crc32c(0x1234, buf, n));
	}
}

/* ---- framing ---- */

static size_t pad_record(uint8_t *out, size_t cap, uint64_t seq, uint32_t seed, size_t len)
{
	uint8_t pl[256];
	fx_content(pl, len, 3);
	return spool_rec_encode(out, cap, SPOOL_REC_PAD, seq, seed, pl, len);
}

static enum spool_rec_err frame(const uint8_t *rec, size_t n, uint32_t seed, struct spool_rec *r)
{
	const uint8_t *p = guard_place(&g, rec, n);
	return spool_rec_frame(p, n, seed, 1u << 20, r);
}

Test(frame, a_record_round_trips_with_its_type_sequence_and_payload)
{
	uint8_t buf[512], pl[100];
	fx_content(pl, sizeof(pl), 1);
	size_t n = spool_rec_encode(buf, sizeof(buf), SPOOL_REC_STATE, 0x1122334455667788ull,
				    0xdeadbeef, pl, sizeof(pl));
	cr_assert_eq(n, 136); /* 32 + 100, padded to 8 */
	struct spool_rec r;
	cr_assert_eq(frame(buf, n, 0xdeadbeef, &r), SPOOL_RE_OK);
	cr_assert_eq(r.type, SPOOL_REC_STATE);
	cr_assert_eq(r.seq, 0x1122334455667788ull);
	cr_assert_eq(r.len, 100);
	cr_assert_eq(r.size, 136);
	cr_assert(memcmp(r.payload, pl, sizeof(pl)) == 0);
	cr_assert_eq(spool_rec_encode(buf, 135, SPOOL_REC_STATE, 1, 0, pl, sizeof(pl)), 0,
		     "a short buffer is refused");
}

Test(frame, every_framing_reason_is_reported)
{
	uint8_t rec[128], bad[128];
	struct spool_rec r;
	size_t n = pad_record(rec, sizeof(rec), 9, 77, 40);

	cr_assert_eq(frame(rec, 31, 77, &r), SPOOL_RE_SHORT_HEADER);
	memset(bad, 0, sizeof(bad));
	cr_assert_eq(frame(bad, n, 77, &r), SPOOL_RE_ZERO);
	memcpy(bad, rec, n);
	bad[0] ^= 1;
	cr_assert_eq(frame(bad, n, 77, &r), SPOOL_RE_BAD_MAGIC);
	memcpy(bad, rec, n);
	bad[8] ^= 1; /* length */
	cr_assert_eq(frame(bad, n, 77, &r), SPOOL_RE_BAD_HEADER_CRC);
	cr_assert_eq(frame(rec, n, 78, &r), SPOOL_RE_BAD_HEADER_CRC, "another seed");
	cr_assert_eq(frame(rec, n - 1, 77, &r), SPOOL_RE_SHORT_PAYLOAD);
	memcpy(bad, rec, n);
	bad[SPOOL_REC_HDR + 5] ^= 0x40;
	cr_assert_eq(frame(bad, n, 77, &r), SPOOL_RE_BAD_CRC);
	const uint8_t *p = guard_place(&g, rec, n);
	cr_assert_eq(spool_rec_frame(p, n, 77, 39, &r), SPOOL_RE_TOO_LONG);

	/* type and reserved fields behind a valid header CRC: re-sealed by hand */
	struct {
		size_t at;
		uint8_t v;
		enum spool_rec_err want;
	} cases[] = {
		{ 4, 0, SPOOL_RE_BAD_TYPE },	{ 4, 5, SPOOL_RE_BAD_TYPE },
		{ 5, 1, SPOOL_RE_RESERVED },	{ 6, 1, SPOOL_RE_RESERVED },
		{ 7, 0x80, SPOOL_RE_RESERVED }, { 28, 1, SPOOL_RE_RESERVED },
		{ 31, 1, SPOOL_RE_RESERVED },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memcpy(bad, rec, n);
		bad[cases[i].at] = cases[i].v;
		uint32_t h = spool_crc32c(spool_crc32c(77, bad, 12), bad + 16, 8);
		memcpy(bad + 12, &h, 4);
		cr_assert_eq(frame(bad, n, 77, &r), cases[i].want, "octet %zu: %s", cases[i].at,
			     spool_rec_err_names[frame(bad, n, 77, &r)]);
	}
}

Test(frame, a_flipped_bit_anywhere_in_header_or_payload_is_detected)
{
	uint8_t rec[256], bad[256];
	struct spool_rec r;
	size_t n = pad_record(rec, sizeof(rec), 5, 0xabcdef01, 123); /* 155 + 5 padding */
	for (size_t i = 0; i < SPOOL_REC_HDR + 123; i++)
		for (int bit = 0; bit < 8; bit++) {
			memcpy(bad, rec, n);
			bad[i] ^= (uint8_t)(1u << bit);
			enum spool_rec_err e = frame(bad, n, 0xabcdef01, &r);
			cr_assert_neq(e, SPOOL_RE_OK, "octet %zu bit %d passed", i, bit);
		}
}

/* ---- MESSAGE ---- */

Test(message, the_envelope_and_content_round_trip)
{
	struct fx_env e;
	fx_env(&e, 42, 5);
	e.env.smtputf8 = true;
	e.env.auth = (struct smtp_str){ (const uint8_t *)"<>", 2 };
	size_t envlen = spool_rec_env_size(&e.env);
	uint8_t buf[2048];
	cr_assert_eq(spool_rec_encode_env(buf, sizeof(buf), &e.env), envlen);
	static const char content[] = "Received: from x\r\nSubject: hi\r\n\r\n.body\r\n";
	memcpy(buf + envlen, content, sizeof(content) - 1);
	size_t n = envlen + sizeof(content) - 1;

	const uint8_t *p = guard_place(&g, buf, n);
	struct spool_env d;
	struct smtp_rcpt rc[8];
	struct smtp_str c;
	cr_assert_eq(spool_rec_decode_msg(p, n, &d, rc, 8, &c), SPOOL_RE_OK);
	cr_assert_str_eq(d.queue_id, e.env.queue_id);
	cr_assert_eq(d.received, e.env.received);
	cr_assert_eq(d.peer.family, 4);
	cr_assert(memcmp(d.peer.addr, e.env.peer.addr, 16) == 0);
	cr_assert_eq(d.peer.port, 40000);
	cr_assert_eq(d.ret, SMTP_RET_HDRS);
	cr_assert_eq(d.body, SMTP_BODY_8BITMIME);
	cr_assert(d.smtputf8);
#define SAME(f) cr_assert(d.f.len == e.env.f.len && memcmp(d.f.p, e.env.f.p, d.f.len) == 0, #f)
	SAME(protocol);
	SAME(client);
	SAME(helo);
	SAME(sender);
	SAME(envid);
	SAME(auth);
#undef SAME
	cr_assert_eq(d.nrcpt, 5);
	cr_assert_eq(d.rcpt, rc);
	for (unsigned i = 0; i < 5; i++) {
		cr_assert_eq(rc[i].addr.len, e.rcpt[i].addr.len);
		cr_assert(memcmp(rc[i].addr.p, e.rcpt[i].addr.p, rc[i].addr.len) == 0);
		cr_assert_eq(rc[i].notify, e.rcpt[i].notify);
		cr_assert_eq(rc[i].orcpt.len, e.rcpt[i].orcpt.len);
	}
	cr_assert_eq(c.len, sizeof(content) - 1);
	cr_assert(memcmp(c.p, content, c.len) == 0);

	/* recipients counted only */
	cr_assert_eq(spool_rec_decode_msg(p, n, &d, NULL, 0, &c), SPOOL_RE_OK);
	cr_assert_eq(d.nrcpt, 5);
}

Test(message, the_encoder_refuses_what_the_decoder_would)
{
	struct fx_env e;
	uint8_t buf[4096];
	fx_env(&e, 1, 1);
	e.env.nrcpt = 0;
	cr_assert_eq(spool_rec_encode_env(buf, sizeof(buf), &e.env), 0, "no recipients");
	fx_env(&e, 1, 1);
	e.env.queue_id[3] = 'U'; /* not in Crockford's alphabet */
	cr_assert_eq(spool_rec_encode_env(buf, sizeof(buf), &e.env), 0, "queue id");
	fx_env(&e, 1, 1);
	uint8_t long_helo[SPOOL_HELO_MAX + 1];
	memset(long_helo, 'a', sizeof(long_helo));
	e.env.helo = (struct smtp_str){ long_helo, sizeof(long_helo) };
	cr_assert_eq(spool_rec_encode_env(buf, sizeof(buf), &e.env), 0, "helo");
	fx_env(&e, 1, 1);
	e.env.peer.family = 5;
	cr_assert_eq(spool_rec_encode_env(buf, sizeof(buf), &e.env), 0, "family");
	fx_env(&e, 1, 1);
	e.rcpt[0].notify = 0x10;
	cr_assert_eq(spool_rec_encode_env(buf, sizeof(buf), &e.env), 0, "notify");
	fx_env(&e, 1, 1);
	cr_assert_eq(spool_rec_encode_env(buf, 20, &e.env), 0, "short buffer");
}

/* Encodes fx_env(1, 2) and returns its length in BUF. */
static size_t good_env(uint8_t *buf, size_t cap)
{
	struct fx_env e;
	fx_env(&e, 1, 2);
	size_t n = spool_rec_encode_env(buf, cap, &e.env);
	cr_assert_gt(n, 0);
	return n;
}

static enum spool_rec_err decode_msg(const uint8_t *buf, size_t n, unsigned max_rcpts)
{
	const uint8_t *p = guard_place(&g, buf, n);
	struct spool_env d;
	struct smtp_rcpt rc[8];
	struct smtp_str c;
	return spool_rec_decode_msg(p, n, &d, rc, max_rcpts, &c);
}

/* Offsets inside fx_env(1, 2)'s encoding (see record.h). */
#define O_VERSION 0
#define O_QID	  1
#define O_FAMILY  29
#define O_RET	  48
#define O_BODY	  49
#define O_FLAGS	  50
#define O_PROTO	  51

Test(message, every_payload_reason_is_reported)
{
	uint8_t buf[1024], bad[1024];
	size_t n = good_env(buf, sizeof(buf));
	cr_assert_eq(decode_msg(buf, n, 8), SPOOL_RE_OK);

	struct {
		size_t at;
		uint8_t v;
		enum spool_rec_err want;
	} cases[] = {
		{ O_VERSION, 0, SPOOL_RE_BAD_VERSION },
		{ O_VERSION, 3, SPOOL_RE_BAD_VERSION },
		{ O_QID + 4, 'I', SPOOL_RE_BAD_QID },
		{ O_FAMILY, 9, SPOOL_RE_BAD_FAMILY },
		{ O_RET, 3, SPOOL_RE_BAD_ENUM },
		{ O_BODY, 4, SPOOL_RE_BAD_ENUM },
		{ O_FLAGS, 2, SPOOL_RE_BAD_ENUM },
		{ O_PROTO, SPOOL_PROTO_MAX + 1, SPOOL_RE_FIELD_TOO_LONG },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memcpy(bad, buf, n);
		bad[cases[i].at] = cases[i].v;
		enum spool_rec_err e = decode_msg(bad, n, 8);
		cr_assert_eq(e, cases[i].want, "case %zu: got %s", i, spool_rec_err_names[e]);
	}
	/* every cut inside the envelope is TRUNCATED */
	for (size_t k = 0; k < n; k++) {
		enum spool_rec_err e = decode_msg(buf, k, 8);
		cr_assert_eq(e, SPOOL_RE_TRUNCATED, "cut at %zu: %s", k, spool_rec_err_names[e]);
	}
	/* the recipient count sits after the six strings */
	size_t o = O_PROTO;
	for (int s = 0; s < 6; s++)
		o += 2 + (buf[o] | buf[o + 1] << 8);
	memcpy(bad, buf, n);
	memset(bad + o, 0, 4);
	cr_assert_eq(decode_msg(bad, n, 8), SPOOL_RE_NO_RCPTS);
	cr_assert_eq(decode_msg(buf, n, 1), SPOOL_RE_TOO_MANY_RCPTS, "caller's array");
	memcpy(bad, buf, n);
	bad[o] = 0xa1, bad[o + 1] = 0x86, bad[o + 2] = 0x01, bad[o + 3] = 0; /* 100001 */
	cr_assert_eq(decode_msg(bad, n, 8), SPOOL_RE_TOO_MANY_RCPTS, "over the limit");
	/* recipient 0: addr string, then NOTIFY */
	size_t a = o + 4;
	size_t notify = a + 2 + (buf[a] | buf[a + 1] << 8);
	memcpy(bad, buf, n);
	bad[notify] = 0x20;
	cr_assert_eq(decode_msg(bad, n, 8), SPOOL_RE_BAD_ENUM, "notify");
	memcpy(bad, buf, n);
	bad[a] = 0x01, bad[a + 1] = 0x01; /* 257 > SMTP_PATH_MAX */
	cr_assert_eq(decode_msg(bad, n, 8), SPOOL_RE_FIELD_TOO_LONG, "address");
}

/* ---- STATE ---- */

static struct spool_state_rec a_state(void)
{
	struct spool_state_rec s = { .rcpt = 3,
				     .state = SPOOL_RCPT_DEFERRED,
				     .when = 1767229200,
				     .next_attempt = 1767230100 };
	fx_qid(s.queue_id, 99);
	s.reply = (struct smtp_str){ (const uint8_t *)"451 4.7.1 greylisted", 20 };
	return s;
}

static enum spool_rec_err decode_state(const uint8_t *buf, size_t n, struct spool_state_rec *s)
{
	return spool_rec_decode_state(guard_place(&g, buf, n), n, s);
}

Test(state, a_delivery_state_round_trips)
{
	struct spool_state_rec s = a_state(), d;
	uint8_t buf[SPOOL_STATE_MAX];
	size_t n = spool_rec_encode_state(buf, sizeof(buf), &s);
	cr_assert_eq(n, 1 + 20 + 4 + 1 + 8 + 8 + 2 + 20);
	cr_assert_eq(decode_state(buf, n, &d), SPOOL_RE_OK);
	cr_assert_str_eq(d.queue_id, s.queue_id);
	cr_assert_eq(d.rcpt, 3);
	cr_assert_eq(d.state, SPOOL_RCPT_DEFERRED);
	cr_assert_eq(d.when, s.when);
	cr_assert_eq(d.next_attempt, s.next_attempt);
	cr_assert_eq(d.reply.len, 20);
	cr_assert(memcmp(d.reply.p, s.reply.p, 20) == 0);
}

Test(state, the_encoder_refuses_inconsistent_states)
{
	uint8_t buf[SPOOL_STATE_MAX];
	struct spool_state_rec s = a_state();
	s.next_attempt = 0;
	cr_assert_eq(spool_rec_encode_state(buf, sizeof(buf), &s), 0, "deferred without a time");
	s = a_state();
	s.state = SPOOL_RCPT_DELIVERED;
	cr_assert_eq(spool_rec_encode_state(buf, sizeof(buf), &s), 0, "delivered with a time");
	s = a_state();
	s.state = SPOOL_RCPT_PENDING;
	cr_assert_eq(spool_rec_encode_state(buf, sizeof(buf), &s), 0, "pending is no record");
	s = a_state();
	s.reply.len = SPOOL_REPLY_MAX + 1;
	cr_assert_eq(spool_rec_encode_state(buf, sizeof(buf), &s), 0, "reply too long");
}

Test(state, every_payload_reason_is_reported)
{
	struct spool_state_rec s = a_state(), d;
	uint8_t buf[SPOOL_STATE_MAX + 8], bad[SPOOL_STATE_MAX + 8];
	size_t n = spool_rec_encode_state(buf, sizeof(buf), &s);

	memcpy(bad, buf, n);
	bad[0] = 7;
	cr_assert_eq(decode_state(bad, n, &d), SPOOL_RE_BAD_VERSION);
	memcpy(bad, buf, n);
	bad[5] = 'o';
	cr_assert_eq(decode_state(bad, n, &d), SPOOL_RE_BAD_QID);
	memcpy(bad, buf, n);
	bad[25] = 4; /* state */
	cr_assert_eq(decode_state(bad, n, &d), SPOOL_RE_BAD_STATE);
	memcpy(bad, buf, n);
	memset(bad + 34, 0, 8); /* deferred, next attempt 0 */
	cr_assert_eq(decode_state(bad, n, &d), SPOOL_RE_BAD_STATE);
	memcpy(bad, buf, n);
	bad[42] = (SPOOL_REPLY_MAX + 1) & 0xff, bad[43] = (SPOOL_REPLY_MAX + 1) >> 8;
	cr_assert_eq(decode_state(bad, n, &d), SPOOL_RE_FIELD_TOO_LONG);
	memcpy(bad, buf, n);
	bad[n] = 0;
	cr_assert_eq(decode_state(bad, n + 1, &d), SPOOL_RE_TRAILING);
	for (size_t k = 0; k < n; k++)
		cr_assert_eq(decode_state(buf, k, &d), SPOOL_RE_TRUNCATED, "cut at %zu", k);
}

/* ---- SEGMENT ---- */

Test(segment, the_segment_record_round_trips_under_the_fixed_seed)
{
	struct spool_seg_rec s = { .shard = 3, .id = 0x123456789aull, .salt = 0xfeedf00d }, d;
	uint8_t buf[SPOOL_SEG_REC_SIZE];
	cr_assert_eq(spool_rec_encode_segment(buf, sizeof(buf), &s), SPOOL_SEG_REC_SIZE);
	struct spool_rec r;
	const uint8_t *p = guard_place(&g, buf, sizeof(buf));
	cr_assert_eq(spool_rec_frame(p, sizeof(buf), SPOOL_SEG_SEED, 64, &r), SPOOL_RE_OK);
	cr_assert_eq(r.type, SPOOL_REC_SEGMENT);
	cr_assert_eq(spool_rec_decode_segment(r.payload, r.len, &d), SPOOL_RE_OK);
	cr_assert_eq(d.shard, 3);
	cr_assert_eq(d.id, s.id);
	cr_assert_eq(d.salt, s.salt);
	cr_assert_eq(spool_rec_encode_segment(buf, sizeof(buf) - 1, &s), 0);
}

Test(segment, every_payload_reason_is_reported)
{
	struct spool_seg_rec s = { .shard = 1, .id = 7, .salt = 1 }, d;
	uint8_t buf[SPOOL_SEG_REC_SIZE], pl[18];
	spool_rec_encode_segment(buf, sizeof(buf), &s);
	memcpy(pl, buf + SPOOL_REC_HDR, 17);
	pl[0] = 2;
	cr_assert_eq(spool_rec_decode_segment(pl, 17, &d), SPOOL_RE_BAD_VERSION);
	pl[0] = 1;
	memset(pl + 5, 0, 8); /* id 0 */
	cr_assert_eq(spool_rec_decode_segment(pl, 17, &d), SPOOL_RE_BAD_SEGMENT);
	memcpy(pl, buf + SPOOL_REC_HDR, 17);
	cr_assert_eq(spool_rec_decode_segment(pl, 16, &d), SPOOL_RE_TRUNCATED);
	pl[17] = 0;
	cr_assert_eq(spool_rec_decode_segment(pl, 18, &d), SPOOL_RE_TRAILING);
}

Test(segment, reason_names_cover_every_reason)
{
	for (int i = 0; i < SPOOL_RE_MAX; i++)
		cr_assert(spool_rec_err_names[i] != NULL && spool_rec_err_names[i][0] != '\0');
	cr_assert_str_eq(spool_rec_err_names[SPOOL_RE_BAD_CRC], "BAD_CRC");
}

Test(message, the_envelope_comes_from_the_smtp_transaction_without_copies)
{
	struct smtp_rcpt rc[2] = {
		{ .addr = { (const uint8_t *)"a@example.com", 13 }, .notify = SMTP_NOTIFY_NEVER },
		{ .addr = { (const uint8_t *)"b@example.com", 13 },
		  .orcpt = { (const uint8_t *)"rfc822;b@example.com", 20 } },
	};
	struct smtp_tx tx = {
		.active = true,
		.sender = { (const uint8_t *)"s@example.org", 13 },
		.helo = { (const uint8_t *)"mx.example.org", 14 },
		.client = "[198.51.100.9]",
		.peer = { .family = 4, .addr = { 198, 51, 100, 9 }, .port = 2525 },
		.body = SMTP_BODY_8BITMIME,
		.ret = SMTP_RET_FULL,
		.smtputf8 = true,
		.envid = { (const uint8_t *)"QQ314159", 8 },
		.nrcpt = 2,
		.rcpt = rc,
		.queue_id = "0123456789ABCDEFGHJK",
		.wall_s = 1767225600,
	};
	struct spool_env e;
	spool_env_from_tx(&e, &tx, "UTF8SMTPS");
	cr_assert_str_eq(e.queue_id, tx.queue_id);
	cr_assert_eq(e.received, 1767225600);
	cr_assert_eq(e.sender.p, tx.sender.p);
	cr_assert_eq(e.helo.p, tx.helo.p);
	cr_assert_eq(e.rcpt, rc);
	cr_assert_eq(e.nrcpt, 2);
	cr_assert_eq(e.client.len, 14);
	cr_assert(memcmp(e.client.p, "[198.51.100.9]", 14) == 0);
	cr_assert_eq(e.protocol.len, 9);
	cr_assert_eq(e.peer.port, 2525);
	cr_assert(e.smtputf8);
	cr_assert_eq(e.ret, SMTP_RET_FULL);
	uint8_t buf[1024];
	cr_assert_eq(spool_rec_encode_env(buf, sizeof(buf), &e), spool_rec_env_size(&e));
}

/* ---- the submitter identity (RFC 4954 §5): MESSAGE version 2 ---- */

TestSuite(authid, .fini = fini);

static const struct smtp_str alice = { (const uint8_t *)"alice@mx.example.com", 20 };

static enum spool_rec_err decode_env(const uint8_t *buf, size_t n, struct spool_env *d,
				     struct smtp_rcpt *rc, struct smtp_str *c)
{
	return spool_rec_decode_msg(guard_place(&g, buf, n), n, d, rc, 8, c);
}

Test(authid, a_message_with_an_identity_round_trips_as_version_2)
{
	struct fx_env e;
	fx_env(&e, 7, 3);
	e.env.auth = (struct smtp_str){ (const uint8_t *)"alice@mx.example.com", 20 };
	e.env.authid = alice;
	uint8_t buf[2048];
	size_t n = spool_rec_encode_env(buf, sizeof(buf), &e.env);
	cr_assert_eq(n, spool_rec_env_size(&e.env));
	cr_assert_eq(buf[O_VERSION], SPOOL_MSG_VERSION_AUTHID);
	memcpy(buf + n, "body\r\n", 6);

	struct spool_env d;
	struct smtp_rcpt rc[8];
	struct smtp_str c;
	cr_assert_eq(decode_env(buf, n + 6, &d, rc, &c), SPOOL_RE_OK);
	cr_assert_eq(d.authid.len, 20);
	cr_assert(memcmp(d.authid.p, "alice@mx.example.com", 20) == 0);
	cr_assert_eq(d.auth.len, 20);
	cr_assert_eq(d.nrcpt, 3);
	cr_assert_eq(rc[2].addr.len, e.rcpt[2].addr.len);
	cr_assert(memcmp(rc[2].addr.p, e.rcpt[2].addr.p, rc[2].addr.len) == 0);
	cr_assert(c.len == 6 && memcmp(c.p, "body\r\n", 6) == 0);
}

Test(authid, a_message_without_an_identity_is_still_written_as_version_1)
{
	/* so a reader from before version 2 reads every message that carries no identity */
	struct fx_env e;
	fx_env(&e, 7, 1);
	uint8_t buf[1024];
	size_t n = spool_rec_encode_env(buf, sizeof(buf), &e.env);
	cr_assert_gt(n, 0);
	cr_assert_eq(buf[O_VERSION], SPOOL_REC_VERSION);
	struct spool_env d;
	struct smtp_rcpt rc[8];
	struct smtp_str c;
	cr_assert_eq(decode_env(buf, n, &d, rc, &c), SPOOL_RE_OK);
	cr_assert_eq(d.authid.len, 0);
}

/* Little-endian writers for a payload built by hand, field by field, from record.h. */
static size_t put_u(uint8_t *p, uint64_t v, int octets)
{
	for (int i = 0; i < octets; i++)
		p[i] = (uint8_t)(v >> (8 * i));
	return (size_t)octets;
}

static size_t put_s(uint8_t *p, const char *s)
{
	size_t n = strlen(s);
	put_u(p, n, 2);
	memcpy(p + 2, s, n);
	return 2 + n;
}

Test(authid, a_version_1_record_written_before_version_2_existed_is_read)
{
	/* the MESSAGE layout of version 1, assembled by hand rather than by the encoder */
	uint8_t p[512];
	size_t o = 0;
	p[o++] = 1;
	memcpy(p + o, "0123456789ABCDEFGHJK", 20);
	o += 20;
	o += put_u(p + o, 1767225600, 8);
	p[o++] = 4;
	memset(p + o, 0, 16);
	memcpy(p + o, (uint8_t[]){ 203, 0, 113, 5 }, 4);
	o += 16;
	o += put_u(p + o, 41000, 2);
	p[o++] = SMTP_RET_FULL;
	p[o++] = SMTP_BODY_7BIT;
	p[o++] = 0;
	o += put_s(p + o, "ESMTPSA");
	o += put_s(p + o, "[203.0.113.5]");
	o += put_s(p + o, "client.example.org");
	o += put_s(p + o, "carol@example.com");
	o += put_s(p + o, "");
	o += put_s(p + o, "carol@mx.example.com"); /* AUTH= as sent: no identity field */
	o += put_u(p + o, 1, 4);
	o += put_s(p + o, "someone@elsewhere.example.org");
	p[o++] = 0;
	o += put_s(p + o, "");
	memcpy(p + o, "Subject: old\r\n\r\nx\r\n", 19);
	o += 19;

	struct spool_env d;
	struct smtp_rcpt rc[8];
	struct smtp_str c;
	cr_assert_eq(decode_env(p, o, &d, rc, &c), SPOOL_RE_OK);
	cr_assert_str_eq(d.queue_id, "0123456789ABCDEFGHJK");
	cr_assert_eq(d.peer.port, 41000);
	cr_assert(d.auth.len == 20 && memcmp(d.auth.p, "carol@mx.example.com", 20) == 0);
	cr_assert_eq(d.authid.len, 0, "version 1: no identity, relayed as AUTH=<>");
	cr_assert_eq(d.nrcpt, 1);
	cr_assert(rc[0].addr.len == 29 && memcmp(rc[0].addr.p, "someone@elsewhere", 17) == 0);
	cr_assert(c.len == 19 && memcmp(c.p, "Subject: old", 12) == 0);

	/* the same octets framed as a record pass the CRCs as they always did */
	uint8_t rec[600];
	size_t rn = spool_rec_encode(rec, sizeof(rec), SPOOL_REC_MESSAGE, 5, 0x5a17, p, o);
	cr_assert_gt(rn, 0);
	struct spool_rec r;
	cr_assert_eq(spool_rec_frame(guard_place(&g, rec, rn), rn, 0x5a17, 1u << 20, &r),
		     SPOOL_RE_OK);
	cr_assert_eq(spool_rec_decode_msg(r.payload, r.len, &d, rc, 8, &c), SPOOL_RE_OK);
}

/* Offset of the identity's length in fx_env(1, 2) with AUTHID: after the six strings. */
static size_t authid_at(const uint8_t *buf)
{
	size_t o = O_PROTO;
	for (int s = 0; s < 6; s++)
		o += 2 + (buf[o] | buf[o + 1] << 8);
	return o;
}

Test(authid, an_over_long_empty_or_garbage_identity_is_refused)
{
	struct fx_env e;
	uint8_t buf[2048], bad[2048];
	fx_env(&e, 1, 2);
	e.env.authid = alice;
	size_t n = spool_rec_encode_env(buf, sizeof(buf), &e.env);
	cr_assert_gt(n, 0);
	size_t a = authid_at(buf);
	cr_assert_eq(buf[a] | buf[a + 1] << 8, 20);
	struct spool_env d;
	struct smtp_rcpt rc[8];
	struct smtp_str c;
	/* every cut inside a version 2 envelope is TRUNCATED */
	for (size_t k = 0; k < n; k++)
		cr_assert_eq(decode_env(buf, k, &d, rc, &c), SPOOL_RE_TRUNCATED, "cut at %zu", k);

	memcpy(bad, buf, n);
	bad[a] = SPOOL_AUTHID_MAX + 1, bad[a + 1] = 0;
	cr_assert_eq(decode_env(bad, n, &d, rc, &c), SPOOL_RE_FIELD_TOO_LONG);
	memcpy(bad, buf, n);
	bad[a + 2 + 5] = ' ';
	cr_assert_eq(decode_env(bad, n, &d, rc, &c), SPOOL_RE_BAD_AUTHID, "a space");
	memcpy(bad, buf, n);
	bad[a + 2 + 5] = '\n';
	cr_assert_eq(decode_env(bad, n, &d, rc, &c), SPOOL_RE_BAD_AUTHID, "a control octet");
	/* version 2 with an empty identity: what version 1 says, never written as 2 */
	memcpy(bad, buf, a);
	bad[a] = 0, bad[a + 1] = 0;
	memcpy(bad + a + 2, buf + a + 2 + 20, n - a - 2 - 20);
	cr_assert_eq(decode_env(bad, n - 20, &d, rc, &c), SPOOL_RE_BAD_AUTHID);
	/* version 1 octets relabelled 2: the recipient count is read as the identity */
	fx_env(&e, 1, 2);
	size_t n1 = spool_rec_encode_env(buf, sizeof(buf), &e.env);
	memcpy(bad, buf, n1);
	bad[O_VERSION] = SPOOL_MSG_VERSION_AUTHID;
	cr_assert_neq(decode_env(bad, n1, &d, rc, &c), SPOOL_RE_OK);
}

Test(authid, the_encoder_refuses_an_identity_the_decoder_would)
{
	struct fx_env e;
	uint8_t buf[2048];
	char longid[SPOOL_AUTHID_MAX + 1];
	memset(longid, 'a', sizeof(longid));
	fx_env(&e, 1, 1);
	e.env.authid = (struct smtp_str){ (const uint8_t *)longid, sizeof(longid) };
	cr_assert_eq(spool_rec_encode_env(buf, sizeof(buf), &e.env), 0, "too long");
	e.env.authid.len = SPOOL_AUTHID_MAX;
	cr_assert_gt(spool_rec_encode_env(buf, sizeof(buf), &e.env), 0, "at the limit");
	e.env.authid = (struct smtp_str){ (const uint8_t *)"al ice@example.com", 18 };
	cr_assert_eq(spool_rec_encode_env(buf, sizeof(buf), &e.env), 0, "a space");
}
