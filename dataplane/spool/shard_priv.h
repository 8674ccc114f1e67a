/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Inside a spool shard: shared by shard.c (the hot path) and recover.c
 * (start-up). Not for other modules.
 */
#ifndef MX_SPOOL_SHARD_PRIV_H
#define MX_SPOOL_SHARD_PRIV_H

#include <liburing.h>
#include <sys/uio.h>

#include "dataplane/spool/spool.h"

#define SPOOL_BLK	    4096u /* staging block: page-sized and page-aligned */
#define SPOOL_MAX_SEGS	    4096u /* segment slots (files on disk at once) */
#define SPOOL_MAX_DELETES   8u	  /* segment deletions in flight */
#define SPOOL_NO_BLK	    UINT32_MAX
#define SPOOL_NO_SEG	    UINT64_MAX
#define SPOOL_SEG_NAME_MAX  32u

enum seg_phase {
	SEG_FREE = 0,
	SEG_OPENING,   /* spare: OPENAT in flight */
	SEG_PREPARING, /* spare: header write, FALLOCATE, FSYNC, directory FSYNC in flight */
	SEG_READY,     /* spare: durable and empty, waiting to become current */
	SEG_LIVE,      /* current, or holding records */
	SEG_DELETING,  /* CLOSE, UNLINKAT, directory FSYNC in flight */
	SEG_CLEANUP,   /* a failed spare: CLOSE and UNLINKAT in flight */
	SEG_STUCK,     /* deletion failed: left for the next start's recovery */
};

struct spool_seg {
	uint64_t id;
	enum seg_phase phase;
	int fd;		   /* -1: none */
	uint32_t salt;	   /* CRC seed of its records */
	uint64_t len;	   /* octets holding records (the next write goes here) */
	uint64_t ref_min;  /* lowest other segment id it holds state records for */
	uint32_t nlive;	   /* its messages not final */
	uint32_t nunsynced; /* its messages final in memory, state not durable yet */
	uint32_t reads;	   /* read-backs in flight */
	unsigned ops;	   /* operations in flight for this phase */
	int err;	   /* first error among them */
	char name[SPOOL_SEG_NAME_MAX];
	uint8_t hdr[SPOOL_SEG_REC_SIZE]; /* the SEGMENT record being written */
};

#define MSG_USED  0x1
#define MSG_FINAL 0x2

struct spool_msg {
	char qid[SMTP_QID_LEN + 1];
	uint8_t flags;
	uint32_t nrcpt, npending;
	uint32_t size;	   /* record octets on disk */
	uint64_t off;	   /* record offset in its segment */
	struct spool_seg *seg;
	int64_t next_attempt;
	uint64_t bits;	   /* final recipients when nrcpt <= 64 */
	uint64_t *xbits;   /* ... otherwise (calloc'd) */
	struct spool_msg *next; /* free list, a batch's finals, a recovery hash chain */
};

struct spool_tx {
	struct spool_msg *m; /* reserved at begin */
	bool used;
	bool committed;
	uint32_t head, tail; /* staging blocks */
	uint32_t tail_used;
	uint64_t len;	     /* payload octets so far: envelope, then content */
	uint64_t content;
	uint32_t crc;	     /* CRC32C(salt, payload so far) */
	uint64_t commit_us;
	spool_commit_cb cb;
	void *cookie;
	struct spool_tx *next;
};

/* One group commit: what accumulates during a window, then one write + one fdatasync. */
struct spool_batch {
	struct spool_tx *txs, **txs_tail;
	uint32_t ntx;
	uint32_t st_head, st_tail; /* state (and probe) records, whole records per block */
	uint32_t nstate;
	struct spool_msg *finals;  /* made final by its state records */
	uint64_t bytes;
	uint64_t ref_min;
	uint64_t opened_us;
	/* while in flight */
	struct spool_seg *seg;
	uint64_t off;
	unsigned ops;
	int err;
};

struct spool_read_slot {
	bool used;
	uint8_t *buf;
	uint32_t len;
	struct spool_seg *seg;
	spool_read_cb cb;
	void *cookie;
};

enum spare_state { SPARE_NONE, SPARE_CREATING, SPARE_READY, SPARE_FAILED };

struct spool_shard {
	struct spool_config cfg;
	char *path; /* DIR/<shard id> */
	int dirfd;
	struct io_uring ring;
	bool ring_ok;
	unsigned inflight; /* SQEs submitted or prepared, CQEs not yet reaped */
	unsigned unsubmitted;
	uint64_t now;
	bool closing;

	uint32_t salt; /* CRC seed of every record written by this run */
	uint64_t next_seq;
	uint64_t next_seg_id;

	/* segments */
	struct spool_seg *segs;	 /* SPOOL_MAX_SEGS slots */
	struct spool_seg **order; /* existing segments, by id */
	unsigned nseg;
	struct spool_seg *cur;	 /* written to; NULL after a write error until a spare takes over */
	struct spool_seg *spare;
	enum spare_state spare_st;
	int spare_err;
	uint64_t spare_retry_us;
	unsigned deleting;
	bool gc_pending;

	/* refusing after an I/O error */
	bool refusing;
	int refuse_err;
	uint64_t probe_us;

	/* staging blocks */
	uint8_t *arena;
	uint32_t nblk;
	uint32_t *blk_next, *blk_used, *blk_free;
	uint32_t nfree;
	uint64_t staged; /* record octets begun or committed and not yet written */

	/* slots */
	struct spool_msg *msgs;
	struct spool_msg *msg_free;
	struct spool_tx *txs;
	struct spool_tx *tx_free;
	struct spool_read_slot *reads;
	uint8_t *envbuf; /* scratch for encoding an envelope */
	size_t envbuf_cap;

	struct spool_batch open, flight;
	bool flying;
	struct iovec *iov;
	unsigned iov_cap;

	struct spool_stats stats;
};

/* shard.c helpers recover.c uses */
struct spool_seg *spool_seg_alloc(struct spool_shard *sh);
void spool_seg_insert(struct spool_shard *sh, struct spool_seg *s); /* into order[], by id */
void spool_seg_remove(struct spool_shard *sh, struct spool_seg *s);
void spool_seg_name(char *out, uint64_t id);
struct spool_msg *spool_msg_alloc(struct spool_shard *sh, unsigned nrcpt);
void spool_msg_free(struct spool_shard *sh, struct spool_msg *m);
/* Marks recipient RCPT of M final; returns true when it was pending. */
bool spool_msg_set_final(struct spool_msg *m, unsigned rcpt);

/* recover.c: scans DIR, fills SH's segments and messages, deletes what is final. */
int spool_recover(struct spool_shard *sh, struct spool_recovery *rep);

#endif
