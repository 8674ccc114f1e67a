/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Recovery at open (dataplane/spool/recover.c) over segment files crafted
 * record by record: torn tails, delivery state, deletion of what is final,
 * damage in the middle, quarantine.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <criterion/criterion.h>

#include "dataplane/spool/crc32c.h"
#include "fixture.h"

#define SALT 0x5a17c0deu

static char *dir;
static struct fx_requeued rq;
static struct spool_recovery rep;

static void setup(void)
{
	dir = fx_tmpdir();
	memset(&rq, 0, sizeof(rq));
}

static void teardown(void)
{
	fx_rmtree(dir);
	free(dir);
}

TestSuite(torn, .init = setup, .fini = teardown);
TestSuite(recovery, .init = setup, .fini = teardown);
TestSuite(damage, .init = setup, .fini = teardown);

static struct spool_shard *open_shard(void)
{
	struct spool_config c;
	fx_config(&c, dir);
	c.requeue = fx_requeue;
	c.requeue_arg = &rq;
	memset(&rq, 0, sizeof(rq));
	struct spool_shard *sh = spool_shard_open(&c, &rep);
	cr_assert_not_null(sh, "open: %s", rep.error);
	return sh;
}

static bool requeued(unsigned n)
{
	char q[SMTP_QID_LEN + 1];
	fx_qid(q, n);
	return fx_requeued_find(&rq, q) >= 0;
}

static struct spool_msg *requeued_msg(unsigned n)
{
	char q[SMTP_QID_LEN + 1];
	fx_qid(q, n);
	int i = fx_requeued_find(&rq, q);
	cr_assert_geq(i, 0, "message %u was not requeued", n);
	return rq.m[i];
}

static void seg_path(char *p, size_t cap, uint64_t id)
{
	fx_seg_path(p, cap, dir, 0, id);
}

/* ---- torn tails ---- */

/* Three messages; the file is cut (or zero-filled) at every octet of the last one. */
static void torn_at_every_byte(bool zero_fill)
{
	struct segw w;
	segw_init(&w, 0, 1, SALT);
	segw_msg(&w, 1, 1, 64);
	segw_msg(&w, 2, 2, 64);
	size_t last = segw_msg(&w, 3, 1, 61);
	size_t end = w.len;
	/* zero-filled, a cut inside the padding leaves a whole record: it is not torn */
	size_t plen = w.buf[last + 8] | (size_t)w.buf[last + 9] << 8;
	size_t stop = zero_fill ? last + SPOOL_REC_HDR + plen : end;
	char path[512];
	seg_path(path, sizeof(path), 1);
	cr_assert_gt(stop - last, 200, "the last record has %zu octets to cut", stop - last);

	for (size_t cut = last + 1; cut < stop; cut++) {
		fx_rmtree(dir);
		mkdir(dir, 0700);
		segw_write(&w, dir, 0, 1, cut, zero_fill ? 4096 : 0);
		struct spool_shard *sh = open_shard();
		cr_assert_eq(rep.requeued, 2, "cut at %zu: %lu requeued", cut, rep.requeued);
		cr_assert(requeued(1) && requeued(2) && !requeued(3), "cut at %zu", cut);
		cr_assert_eq(rep.torn_tails, 1, "cut at %zu", cut);
		cr_assert_eq(rep.corrupt, 0, "cut at %zu", cut);
		cr_assert_eq(fx_size(path), (long)last, "cut at %zu: the torn tail is cut off",
			     cut);
		cr_assert(strstr(rep.error, "torn record") != NULL, "%s", rep.error);
		spool_shard_close(sh);
	}
	segw_free(&w);
}

Test(torn, a_file_cut_at_every_byte_of_its_last_record_keeps_the_earlier_messages)
{
	torn_at_every_byte(false);
}

Test(torn, a_last_record_torn_inside_preallocated_space_is_dropped_and_cut_off)
{
	torn_at_every_byte(true);
}

Test(torn, preallocated_zeros_after_the_last_record_are_no_torn_tail)
{
	struct segw w;
	segw_init(&w, 0, 1, SALT);
	segw_msg(&w, 1, 1, 100);
	segw_write(&w, dir, 0, 1, w.len, 64 << 10);
	struct spool_shard *sh = open_shard();
	cr_assert_eq(rep.requeued, 1);
	cr_assert_eq(rep.torn_tails, 0);
	cr_assert_eq(rep.truncated_bytes, 64 << 10);
	cr_assert_str_eq(rep.error, "");
	spool_shard_close(sh);
	segw_free(&w);
}

/* ---- delivery state ---- */

Test(recovery, a_message_with_some_recipients_delivered_is_requeued_with_only_the_others)
{
	struct segw w;
	segw_init(&w, 0, 1, SALT);
	segw_msg(&w, 10, 4, 200);
	segw_state(&w, 10, 0, SPOOL_RCPT_DELIVERED, 0);
	segw_state(&w, 10, 2, SPOOL_RCPT_DEFERRED, 1767230000);
	segw_state(&w, 10, 2, SPOOL_RCPT_FAILED, 0);
	segw_state(&w, 10, 3, SPOOL_RCPT_DEFERRED, 1767231111);
	segw_write(&w, dir, 0, 1, w.len, 0);
	struct spool_shard *sh = open_shard();
	cr_assert_eq(rep.requeued, 1);
	struct spool_msg *m = requeued_msg(10);
	cr_assert_eq(spool_msg_nrcpt(m), 4);
	cr_assert(spool_msg_rcpt_final(m, 0), "delivered");
	cr_assert(!spool_msg_rcpt_final(m, 1), "no state yet");
	cr_assert(spool_msg_rcpt_final(m, 2), "failed after a deferral");
	cr_assert(!spool_msg_rcpt_final(m, 3), "deferred");
	cr_assert_eq(spool_msg_next_attempt(m), 1767231111);
	cr_assert_eq(spool_stats(sh)->messages_live, 1);
	cr_assert_eq(spool_stats(sh)->recovered, 1);
	spool_shard_close(sh);
	segw_free(&w);
}

Test(recovery, a_message_whose_recipients_are_all_final_is_not_requeued)
{
	struct segw w;
	segw_init(&w, 0, 1, SALT);
	segw_msg(&w, 1, 2, 50);
	segw_msg(&w, 2, 1, 50);
	segw_state(&w, 1, 0, SPOOL_RCPT_DELIVERED, 0);
	segw_state(&w, 1, 1, SPOOL_RCPT_FAILED, 0);
	segw_write(&w, dir, 0, 1, w.len, 0);
	struct spool_shard *sh = open_shard();
	cr_assert_eq(rep.messages, 2);
	cr_assert_eq(rep.requeued, 1);
	cr_assert(requeued(2) && !requeued(1));
	spool_shard_close(sh);
	segw_free(&w);
}

Test(recovery, a_segment_whose_messages_are_all_final_is_deleted_and_others_stay)
{
	struct segw w1, w2;
	segw_init(&w1, 0, 1, SALT);
	segw_msg(&w1, 1, 1, 50);
	segw_msg(&w1, 2, 1, 50);
	segw_state(&w1, 1, 0, SPOOL_RCPT_DELIVERED, 0);
	segw_init(&w2, 0, 2, SALT);
	segw_state(&w2, 2, 0, SPOOL_RCPT_DELIVERED, 0); /* message 2 finished in segment 2 */
	segw_msg(&w2, 3, 1, 50);
	segw_write(&w1, dir, 0, 1, w1.len, 0);
	segw_write(&w2, dir, 0, 2, w2.len, 0);
	struct spool_shard *sh = open_shard();
	char p1[512], p2[512];
	seg_path(p1, sizeof(p1), 1);
	seg_path(p2, sizeof(p2), 2);
	cr_assert_eq(rep.requeued, 1);
	cr_assert(requeued(3));
	cr_assert_eq(rep.segments_deleted, 1);
	cr_assert(!fx_exists(p1), "segment 1 is final: deleted");
	cr_assert(fx_exists(p2), "segment 2 holds message 3");
	spool_shard_close(sh);

	/* message 3 delivered in a later run: everything goes */
	struct segw w3;
	segw_init(&w3, 0, 9, SALT);
	segw_state(&w3, 3, 0, SPOOL_RCPT_DELIVERED, 0);
	segw_write(&w3, dir, 0, 9, w3.len, 0);
	sh = open_shard();
	cr_assert_eq(rep.requeued, 0);
	cr_assert(!fx_exists(p2));
	spool_shard_close(sh);
	segw_free(&w1);
	segw_free(&w2);
	segw_free(&w3);
}

Test(recovery, a_segment_holding_state_for_a_live_older_segment_is_kept)
{
	struct segw w1, w2, w3;
	segw_init(&w1, 0, 1, SALT);
	segw_msg(&w1, 1, 2, 50); /* stays live */
	segw_init(&w2, 0, 2, SALT);
	segw_state(&w2, 1, 0, SPOOL_RCPT_DELIVERED, 0); /* needed while segment 1 exists */
	segw_msg(&w2, 2, 1, 50);
	segw_state(&w2, 2, 0, SPOOL_RCPT_DELIVERED, 0);
	segw_init(&w3, 0, 3, SALT);
	segw_msg(&w3, 3, 1, 50);
	segw_state(&w3, 3, 0, SPOOL_RCPT_DELIVERED, 0);
	segw_write(&w1, dir, 0, 1, w1.len, 0);
	segw_write(&w2, dir, 0, 2, w2.len, 0);
	segw_write(&w3, dir, 0, 3, w3.len, 0);
	struct spool_shard *sh = open_shard();
	char p[3][512];
	for (int i = 0; i < 3; i++)
		seg_path(p[i], sizeof(p[i]), (uint64_t)i + 1);
	cr_assert(fx_exists(p[0]), "live message");
	cr_assert(fx_exists(p[1]), "holds the state of segment 1's message");
	cr_assert(!fx_exists(p[2]), "final, refers to nothing");
	cr_assert_eq(rep.requeued, 1);
	struct spool_msg *m = requeued_msg(1);
	cr_assert(spool_msg_rcpt_final(m, 0) && !spool_msg_rcpt_final(m, 1));
	spool_shard_close(sh);

	/* a restart sees the same state: the kept segment still marks recipient 0 */
	sh = open_shard();
	m = requeued_msg(1);
	cr_assert(spool_msg_rcpt_final(m, 0), "recipient 0 would be delivered twice");
	spool_shard_close(sh);
	segw_free(&w1);
	segw_free(&w2);
	segw_free(&w3);
}

Test(recovery, state_for_an_unknown_message_is_ignored_and_a_bad_recipient_index_reported)
{
	struct segw w;
	segw_init(&w, 0, 1, SALT);
	segw_state(&w, 77, 0, SPOOL_RCPT_DELIVERED, 0); /* its segment is long gone */
	segw_msg(&w, 1, 2, 10);
	segw_state(&w, 1, 5, SPOOL_RCPT_DELIVERED, 0);
	segw_write(&w, dir, 0, 1, w.len, 0);
	struct spool_shard *sh = open_shard();
	cr_assert_eq(rep.requeued, 1);
	cr_assert_eq(rep.corrupt, 1);
	cr_assert(strstr(rep.error, "recipient") != NULL, "%s", rep.error);
	struct spool_msg *m = requeued_msg(1);
	cr_assert(!spool_msg_rcpt_final(m, 0) && !spool_msg_rcpt_final(m, 1));
	spool_shard_close(sh);
	segw_free(&w);
}

Test(recovery, new_records_go_to_a_new_segment_after_the_highest_id)
{
	struct segw w;
	segw_init(&w, 0, 41, SALT);
	segw_msg(&w, 1, 1, 10);
	segw_write(&w, dir, 0, 41, w.len, 0);
	struct spool_shard *sh = open_shard();
	fx_spool(sh, 2, 1, 100, 0);
	spool_shard_close(sh);
	char p[512];
	seg_path(p, sizeof(p), 42);
	cr_assert(fx_exists(p));
	sh = open_shard();
	cr_assert_eq(rep.requeued, 2);
	cr_assert(requeued(1) && requeued(2));
	spool_shard_close(sh);
	segw_free(&w);
}

/* ---- damage inside a segment ---- */

static void three_messages(struct segw *w, size_t *mid, size_t *mid_end)
{
	segw_init(w, 0, 1, SALT);
	segw_msg(w, 1, 1, 80);
	*mid = segw_msg(w, 2, 1, 80);
	*mid_end = w->len;
	segw_msg(w, 3, 1, 80);
}

Test(damage, a_damaged_payload_in_the_middle_is_skipped_and_later_records_kept)
{
	struct segw w;
	size_t mid, mid_end;
	three_messages(&w, &mid, &mid_end);
	w.buf[mid + SPOOL_REC_HDR + 60] ^= 0x10;
	segw_write(&w, dir, 0, 1, w.len, 0);
	struct spool_shard *sh = open_shard();
	cr_assert(requeued(1) && !requeued(2) && requeued(3));
	cr_assert_eq(rep.corrupt, 1);
	cr_assert_eq(rep.torn_tails, 0);
	cr_assert(strstr(rep.error, "BAD_CRC") != NULL, "%s", rep.error);
	char p[512];
	seg_path(p, sizeof(p), 1);
	cr_assert_eq(fx_size(p), (long)w.len, "nothing valid is cut off");
	cr_assert_eq(spool_stats(sh)->corrupt, 1);
	spool_shard_close(sh);
	segw_free(&w);
}

Test(damage, a_damaged_header_in_the_middle_is_searched_past)
{
	struct segw w;
	size_t mid, mid_end;
	three_messages(&w, &mid, &mid_end);
	w.buf[mid + 9] ^= 0x01; /* its length: the framing is lost */
	segw_write(&w, dir, 0, 1, w.len, 0);
	struct spool_shard *sh = open_shard();
	cr_assert(requeued(1) && !requeued(2) && requeued(3));
	cr_assert_eq(rep.corrupt, 1);
	cr_assert(strstr(rep.error, "BAD_HEADER_CRC") != NULL, "%s", rep.error);
	spool_shard_close(sh);
	segw_free(&w);
}

Test(damage, a_record_quoted_in_content_is_never_taken_for_a_real_one)
{
	/* message 2's content is a whole valid-looking record for message 66, as an
	 * attacker could send it -- but without the segment's salt */
	struct segw fake;
	segw_init(&fake, 0, 1, 0 /* a guessed seed */);
	size_t at = segw_msg(&fake, 66, 1, 16);
	struct segw w;
	segw_init(&w, 0, 1, SALT);
	segw_msg(&w, 1, 1, 40);
	size_t mid = w.len;
	/* a message record whose content is the fake record */
	struct fx_env e;
	fx_env(&e, 2, 1);
	size_t envlen = spool_rec_env_size(&e.env);
	size_t flen = fake.len - at;
	uint8_t *pl = malloc(envlen + 8 + flen);
	spool_rec_encode_env(pl, envlen, &e.env);
	memset(pl + envlen, 'x', 8);
	memcpy(pl + envlen + 8, fake.buf + at, flen);
	uint8_t *rec = malloc(spool_rec_size(envlen + 8 + flen));
	size_t rn = spool_rec_encode(rec, spool_rec_size(envlen + 8 + flen), SPOOL_REC_MESSAGE,
				     ++w.seq, SALT, pl, envlen + 8 + flen);
	segw_raw(&w, rec, rn);
	segw_msg(&w, 3, 1, 40);
	w.buf[mid] ^= 0xff; /* message 2's magic: recovery searches through its content */
	segw_write(&w, dir, 0, 1, w.len, 0);
	struct spool_shard *sh = open_shard();
	cr_assert(requeued(1) && !requeued(2) && requeued(3));
	cr_assert(!requeued(66), "the quoted record was accepted");
	cr_assert_eq(rep.corrupt, 1);
	spool_shard_close(sh);
	free(pl);
	free(rec);
	segw_free(&w);
	segw_free(&fake);
}

Test(damage, a_segment_with_an_unreadable_segment_record_is_quarantined)
{
	struct segw w;
	segw_init(&w, 0, 5, SALT);
	segw_msg(&w, 1, 1, 40);
	w.buf[SPOOL_REC_HDR + 2] ^= 1; /* inside the SEGMENT payload */
	segw_write(&w, dir, 0, 5, w.len, 0);
	struct spool_shard *sh = open_shard();
	char p[512], bad[600];
	seg_path(p, sizeof(p), 5);
	snprintf(bad, sizeof(bad), "%s.bad", p);
	cr_assert_eq(rep.quarantined, 1);
	cr_assert(!fx_exists(p) && fx_exists(bad), "renamed, not deleted");
	cr_assert(strstr(rep.error, "segment record unreadable") != NULL, "%s", rep.error);
	cr_assert_eq(rep.requeued, 0);
	fx_spool(sh, 2, 1, 10, 0);
	spool_shard_close(sh);
	seg_path(p, sizeof(p), 6);
	cr_assert(fx_exists(p), "new segments are numbered past the quarantined one");
	sh = open_shard();
	cr_assert_eq(rep.quarantined, 0, "a quarantined file is left alone");
	cr_assert(requeued(2));
	spool_shard_close(sh);
	segw_free(&w);
}

Test(damage, a_spare_caught_before_it_was_durable_is_removed)
{
	char p[512];
	struct segw w;
	segw_init(&w, 0, 3, SALT);
	memset(w.buf, 0, w.len);
	segw_write(&w, dir, 0, 3, w.len, 8192);
	struct spool_shard *sh = open_shard();
	seg_path(p, sizeof(p), 3);
	cr_assert(!fx_exists(p));
	cr_assert_eq(rep.quarantined, 0);
	cr_assert_str_eq(rep.error, "");
	spool_shard_close(sh);
	segw_free(&w);
}

Test(damage, more_live_messages_than_slots_fail_the_open_clearly)
{
	struct segw w;
	segw_init(&w, 0, 1, SALT);
	for (unsigned i = 0; i < 5; i++)
		segw_msg(&w, i, 1, 8);
	segw_write(&w, dir, 0, 1, w.len, 0);
	struct spool_config c;
	fx_config(&c, dir);
	c.max_messages = 4;
	errno = 0;
	cr_assert_null(spool_shard_open(&c, &rep));
	cr_assert_eq(errno, E2BIG);
	cr_assert(strstr(rep.error, "max_messages") != NULL, "%s", rep.error);
	segw_free(&w);
}

Test(recovery, files_that_are_not_segments_are_left_alone)
{
	struct segw w;
	segw_init(&w, 0, 1, SALT);
	segw_msg(&w, 1, 1, 10);
	segw_write(&w, dir, 0, 1, w.len, 0);
	const char *stray[] = { "seg-+000000000000001.dat", "seg-0000000000000001.dat.tmp",
				"seg-000000000000000G.dat", "README" };
	char p[600];
	for (size_t i = 0; i < 4; i++) {
		snprintf(p, sizeof(p), "%s/0/%s", dir, stray[i]);
		FILE *f = fopen(p, "w");
		cr_assert_not_null(f);
		fputs("not a segment", f);
		fclose(f);
	}
	struct spool_shard *sh = open_shard();
	cr_assert_eq(rep.requeued, 1);
	cr_assert_eq(rep.segments, 1);
	cr_assert_eq(rep.quarantined, 0);
	for (size_t i = 0; i < 4; i++) {
		snprintf(p, sizeof(p), "%s/0/%s", dir, stray[i]);
		cr_assert(fx_exists(p), "%s", stray[i]);
	}
	spool_shard_close(sh);
	segw_free(&w);
}
