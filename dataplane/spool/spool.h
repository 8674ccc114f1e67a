/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The durable spool of one worker (DESIGN.md §3.4 "store"): a shard of
 * append-only segment files under <dir>/<shard id>/, written through
 * io_uring from the worker itself with group commit, so a client's 250 waits
 * for the fdatasync that covers its message and never for anything else.
 *
 * Life of a message:
 *   spool_begin(envelope) -> spool_append(chunk)... -> spool_commit(cb)
 *   ... spool_poll() submits the commit window's batch as one write + one
 *   fdatasync and, when the sync completes, calls cb(cookie, 0, msg): send
 *   the 250 then. An error instead (cb(cookie, -errno, NULL)): 451, nothing
 *   was promised. spool_abort() drops a begun message: nothing reaches disk.
 *   Then spool_state(msg, rcpt, DELIVERED / DEFERRED / FAILED) per recipient
 *   as the relay gets its replies; the last final state frees the message.
 *
 * Threading: a shard belongs to one worker; every function runs on it.
 * Only spool_shard_open() and spool_shard_close() block (start and stop).
 * After open, everything goes through io_uring: writes at explicit offsets
 * linked to IORING_OP_FSYNC(DATASYNC), segment pre-creation (OPENAT, then
 * WRITE+FALLOCATE+FSYNC+directory FSYNC), reads, CLOSE and UNLINKAT. The
 * only system call on the hot path is io_uring_enter, to submit, and never
 * with a wait.
 *
 * Memory is bounded at open: message slots, transaction slots, staging
 * blocks for content not yet written, read slots, segments. Running out is
 * an error code (the SMTP layer answers 452 4.3.1), never growth.
 *
 * Segment deletion: a segment is unlinked once every message in it is final
 * with that state durable, and once no older segment still exists whose
 * messages it holds delivery state for (it carries the lowest segment id it
 * refers to; any existing segment from there up to itself keeps it). A
 * message deferred for days therefore also keeps the segments holding its
 * deferral records.
 *
 * Errors: a failed write or sync fails the messages of that batch (their
 * callbacks get the error; nothing else was acknowledged), abandons the
 * segment, and makes the shard refuse new messages. While refusing, one
 * write is tried per probe_interval_us (what is queued, or a PAD record);
 * its success ends the refusal. ENOSPC shows up when the next segment
 * cannot be preallocated: writes inside a preallocated segment do not run
 * out of space.
 *
 * Disk use: size_limit counts octets in segments (spool_disk_bytes) plus
 * staged ones; the disk also needs room for two preallocated segments (the
 * current one's unused part and the spare).
 */
#ifndef MX_SPOOL_H
#define MX_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataplane/spool/record.h"

struct spool_shard; /* one worker's spool */
struct spool_tx;    /* a message being received: begun, not yet committed */
struct spool_msg;   /* a spooled (durable) message with recipients not yet final */

/*
 * A commit completed. STATUS 0: the message is durable, M is its handle
 * (the shard's, valid until the spool_state() call that makes it final).
 * STATUS < 0 (-EIO, -ENOSPC, ... the write's or sync's error, or -ECANCELED
 * at close): the message is not spooled, M is NULL. Runs from spool_poll()
 * (or spool_shard_close()), never from spool_commit().
 */
typedef void (*spool_commit_cb)(void *cookie, int status, struct spool_msg *m);

/*
 * A read-back completed. STATUS 0: PAYLOAD[0..LEN) is the MESSAGE payload,
 * CRC-checked (decode it with spool_rec_decode_msg()); it lies in the
 * caller's buffer. STATUS < 0: -EIO (read error or short read), -EBADMSG
 * (the record on disk does not check out), -ECANCELED (close).
 */
typedef void (*spool_read_cb)(void *cookie, int status, const uint8_t *payload, size_t len);

/*
 * M has recipients to deliver and nobody holds it: found by recovery (from
 * spool_shard_open()), or a detached commit that became durable (from
 * spool_poll()). Hand it to the relay.
 */
typedef void (*spool_requeue_cb)(void *arg, struct spool_shard *sh, struct spool_msg *m);

struct spool_config {
	const char *dir;	   /* spool.directory; the shard is DIR/<shard_id>/ */
	unsigned shard_id;	   /* the worker's index */
	uint32_t commit_window_us; /* spool.commit_window_us: 200 */
	uint32_t commit_bytes;	   /* spool.commit_bytes: submit early at this many: 1 MiB */
	uint64_t size_limit;	   /* spool.size_limit: segment bytes + staged bytes: 0 = none */
	uint32_t segment_size;	   /* preallocated per segment: 64 MiB; >= staging_bytes + 4 KiB */
	uint32_t max_message;	   /* content octets per message: 32 MiB */
	uint32_t staging_bytes;	   /* memory for content not yet written: 16 MiB */
	uint32_t max_messages;	   /* spooled messages not yet final: 262144 */
	uint32_t max_tx;	   /* messages begun and not yet written: 4096 */
	uint32_t max_rcpts;	   /* recipients per message: 1000 */
	uint32_t max_reads;	   /* read-backs in flight: 64 */
	uint32_t probe_interval_us; /* refusing after an I/O error: retry a write this often: 1 s */
	spool_requeue_cb requeue;   /* may be NULL */
	void *requeue_arg;
};

/* Fills C with the defaults above (no directory: set one). */
void spool_config_default(struct spool_config *c);

/* What spool_shard_open() found. */
struct spool_recovery {
	uint64_t duration_us;	/* the whole open, recovery included */
	uint64_t segments;	/* segment files scanned */
	uint64_t records;	/* valid records */
	uint64_t messages;	/* MESSAGE records found */
	uint64_t requeued;	/* messages with recipients not final: given to requeue() */
	uint64_t torn_tails;	/* segments whose tail held a torn record: truncated */
	uint64_t truncated_bytes;
	uint64_t corrupt;	/* damaged regions inside segments: skipped, later records kept */
	uint64_t quarantined;	/* segments with an unreadable segment record: renamed *.bad */
	uint64_t segments_deleted; /* segments with nothing live: unlinked */
	char error[256];	/* why open failed, or the first damage found (empty: none) */
};

/*
 * Opens shard CFG->shard_id under CFG->dir (creating the directories),
 * recovers it, calls CFG->requeue for every message with recipients not
 * final, and creates a fresh segment to write to. Blocks: call before the
 * worker loop. Returns the shard, or NULL with errno set and REP->error
 * saying why: EINVAL (bad config), an errno from mkdir/open/mmap, ENOMEM,
 * E2BIG (more live messages or segments on disk than the config allows), or
 * io_uring_queue_init()'s error (e.g. EPERM when io_uring is disabled by
 * /proc/sys/kernel/io_uring_disabled or a seccomp filter). REP may be NULL.
 */
struct spool_shard *spool_shard_open(const struct spool_config *cfg, struct spool_recovery *rep);

/*
 * Writes and syncs whatever is committed, waits for every operation in
 * flight (commit callbacks run), aborts begun messages, closes the files
 * and frees SH. Blocks: call after the worker loop. NULL is fine.
 */
void spool_shard_close(struct spool_shard *sh);

/*
 * Starts a message with envelope ENV; SIZE_HINT is MAIL SIZE= (0: none).
 * The envelope is copied. Returns 0 and *TX, or:
 *   -ENOSPC   the spool is at its size limit          -> 452 4.3.1
 *   -EIO      refusing after a write or sync error    -> 452 4.3.1
 *   -ENOBUFS  no transaction/message slot or staging  -> 452 4.3.1
 *   -EFBIG    SIZE_HINT over max_message              -> 552 5.3.4
 *   -EINVAL   ENV breaks a record limit (no recipients, too many, a field too long)
 */
int spool_begin(struct spool_shard *sh, const struct spool_env *env, uint64_t size_hint,
		struct spool_tx **tx);

/*
 * Appends content P[0..N) to TX (copied into the shard's staging blocks).
 * Returns 0, -EFBIG (over max_message: 552 5.3.4) or -ENOBUFS (staging
 * memory exhausted: 452 4.3.1). After an error TX is still begun: abort it.
 */
int spool_append(struct spool_shard *sh, struct spool_tx *tx, const void *p, size_t n);

/*
 * Ends TX's content: it joins the open group commit (the window starts with
 * its first message at NOW_US). CB(COOKIE, ...) comes from a later
 * spool_poll() once the covering fdatasync completed. TX is the shard's
 * from here.
 */
void spool_commit(struct spool_shard *sh, struct spool_tx *tx, uint64_t now_us,
		  spool_commit_cb cb, void *cookie);

/* Drops a begun TX (the client went away, RSET, a refusal): nothing of it is written. */
void spool_abort(struct spool_shard *sh, struct spool_tx *tx);

/*
 * A committed TX's session is gone before its callback (the SMTP sink's
 * abort() while end() is pending): no callback will run. The message is
 * still written; once durable it goes to the config's requeue callback like
 * a recovered one (the client saw no 250 and may send it again: a
 * duplicate, never a loss). Only between spool_commit() and the callback.
 */
void spool_detach(struct spool_shard *sh, struct spool_tx *tx);

/*
 * Records recipient RCPT of M as ST (DELIVERED, DEFERRED with NEXT_ATTEMPT,
 * FAILED) at wall-clock WHEN, with the next hop's REPLY (may be empty). The
 * record goes out with the next group commit. Once every recipient is
 * DELIVERED or FAILED the message is final and M must not be used again.
 * Returns 0, -EINVAL (RCPT out of range or already final, ST invalid,
 * reply too long) or -ENOBUFS (staging memory: try again later).
 */
int spool_state(struct spool_shard *sh, struct spool_msg *m, unsigned rcpt,
		enum spool_rcpt_state st, int64_t when, int64_t next_attempt,
		struct smtp_str reply);

/* Octets spool_read() needs in its buffer for M: the whole record. */
size_t spool_msg_record_size(const struct spool_msg *m);

/*
 * Reads M's record back into BUF (at least spool_msg_record_size(M) octets)
 * and calls CB(COOKIE, ...) from a later spool_poll(). Returns 0, -EINVAL
 * (CAP too small) or -EBUSY (max_reads in flight: try later).
 */
int spool_read(struct spool_shard *sh, struct spool_msg *m, void *buf, size_t cap,
	       spool_read_cb cb, void *cookie);

/*
 * The worker's per-iteration call: reaps completions (callbacks run here),
 * submits the open batch once its window passed or it holds commit_bytes
 * (and the previous sync completed), retries writes while refusing, starts
 * segment pre-creation and deletion. Never blocks. Returns the number of
 * callbacks it ran.
 */
unsigned spool_poll(struct spool_shard *sh, uint64_t now_us);

/* Operations submitted and not yet completed (0: the shard is idle). */
unsigned spool_inflight(const struct spool_shard *sh);

/* 0, or while new messages are refused after a write or sync error, that error (-EIO, -ENOSPC...). */
int spool_refusing(const struct spool_shard *sh);

/* ---- messages ---- */

const char *spool_msg_queue_id(const struct spool_msg *m);
unsigned spool_msg_nrcpt(const struct spool_msg *m);
/* True when recipient RCPT is DELIVERED or FAILED. */
bool spool_msg_rcpt_final(const struct spool_msg *m, unsigned rcpt);
/* The latest DEFERRED record's next attempt (unix s), 0 when none. */
int64_t spool_msg_next_attempt(const struct spool_msg *m);

/* ---- counters ---- */

/* Counters of one shard: X(FIELD, "telemetry name"). Single writer: the worker. */
#define SPOOL_COUNTERS(X)                                                                          \
	X(messages, "spool_messages")		/* committed durably */                            \
	X(bytes, "spool_bytes_written")		/* record octets of those */                       \
	X(commits, "spool_commits")		/* fdatasyncs completed: group commits */          \
	X(state_records, "spool_state_records")                                                    \
	X(write_errors, "spool_write_errors")	/* batches failed by a write or sync */            \
	X(messages_failed, "spool_messages_failed") /* commits answered with an error */          \
	X(refused, "spool_refused")		/* begin() said no */                              \
	X(aborted, "spool_aborted")                                                                \
	X(reads, "spool_reads")                                                                    \
	X(read_errors, "spool_read_errors")                                                        \
	X(recovered, "spool_recovered")		/* messages requeued at open */                    \
	X(torn_tails, "spool_torn_tails")                                                          \
	X(corrupt, "spool_corrupt_regions")                                                        \
	X(segments_created, "spool_segments_created")                                              \
	X(segments_deleted, "spool_segments_deleted")                                              \
	X(segment_errors, "spool_segment_errors") /* pre-creation, close or unlink failed */       \
	X(spool_bytes, "spool_disk_bytes")	/* gauge: octets in segments */                    \
	X(messages_live, "spool_messages_live")	/* gauge: spooled, not final */                    \
	X(bytes_live, "spool_bytes_live")	/* gauge: record octets of those */

/* Commit batch sizes in messages: 0 (state records only), 1, 2-3, 4-7, ..., >= 512 */
#define SPOOL_BATCH_BUCKETS 12
/* Commit latency, commit() to callback, in µs: < 2, < 4, ..., < 2^24, more */
#define SPOOL_LAT_BUCKETS 25

#define SPOOL_C_FIELD_(f, name) uint64_t f;
struct spool_stats {
	SPOOL_COUNTERS(SPOOL_C_FIELD_)
	uint64_t batch_hist[SPOOL_BATCH_BUCKETS];
	uint64_t latency_hist[SPOOL_LAT_BUCKETS];
};
#undef SPOOL_C_FIELD_

/* The shard's counters (its worker writes them; readers on other lcores may see them torn-free). */
const struct spool_stats *spool_stats(const struct spool_shard *sh);

/* The bucket of a latency of US microseconds, and the upper bound of bucket B (µs). */
unsigned spool_latency_bucket(uint64_t us);
uint64_t spool_latency_bucket_max(unsigned b);

#endif
