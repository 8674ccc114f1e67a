/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A spool shard's hot path: staging, group commit through io_uring,
 * delivery state, read-back, segment pre-creation and deletion, and the
 * refusing state after an I/O error. Start-up recovery is in recover.c.
 *
 * io_uring use (liburing 2.3; io_uring_enter(2), io_uring_prep_*(3)):
 * one batch in flight at a time, as WRITEV SQEs at explicit offsets linked
 * (IOSQE_IO_LINK) to one IORING_OP_FSYNC with IORING_FSYNC_DATASYNC, so the
 * sync starts only after every write of the batch completed in full; a
 * failed or short write breaks the link and the sync completes -ECANCELED.
 * A batch's callbacks run when its sync's CQE is reaped, never earlier.
 * Keeping one batch in flight means a failed batch never leaves a hole
 * before acknowledged records: after an error the segment is abandoned
 * (Linux may drop the dirty pages of a failed fsync, so nothing more is
 * trusted to it) and writing resumes in a fresh one.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dataplane/spool/crc32c.h"
#include "dataplane/spool/shard_priv.h"

/* user_data of an SQE: kind in the top byte, an index or a length below */
enum op_kind {
	OP_WRITE = 1,
	OP_SYNC,
	OP_SEG,
	OP_READ,
	OP_PROBE_CLOSE
};
#define OP_UD(kind, v) ((uint64_t)(kind) << 56 | (uint64_t)(v))
#define OP_KIND(ud)    ((unsigned)((ud) >> 56))
#define OP_VAL(ud)     ((ud) & ((1ull << 56) - 1))

#ifndef UIO_MAXIOV
#define UIO_MAXIOV 1024 /* Linux's IOV_MAX */
#endif

static const uint8_t zeros[SPOOL_REC_ALIGN];

void spool_config_default(struct spool_config *c)
{
	memset(c, 0, sizeof(*c));
	c->commit_window_us = 200;
	c->commit_bytes = 1u << 20;
	c->segment_size = 64u << 20;
	c->max_message = 16u << 20;
	c->staging_bytes = 32u << 20;
	c->max_messages = 262144;
	c->max_tx = 4096;
	c->max_rcpts = 1000;
	c->max_reads = 64;
	c->probe_interval_us = 1000000;
}

static uint64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- histograms ---- */

unsigned spool_latency_bucket(uint64_t us)
{
	unsigned b = 0;
	while (b < SPOOL_LAT_BUCKETS - 1 && us >= (2ull << b))
		b++;
	return b;
}

uint64_t spool_latency_bucket_max(unsigned b)
{
	return b >= SPOOL_LAT_BUCKETS - 1 ? UINT64_MAX : (2ull << b);
}

static unsigned batch_bucket(uint32_t n)
{
	unsigned b = 0;
	if (n == 0)
		return 0;
	while (b < SPOOL_BATCH_BUCKETS - 2 && n >= (2u << b))
		b++;
	return b + 1;
}

/* ---- slots ---- */

void spool_seg_name(char *out, uint64_t id)
{
	snprintf(out, SPOOL_SEG_NAME_MAX, "seg-%016llx.dat", (unsigned long long)id);
}

struct spool_seg *spool_seg_alloc(struct spool_shard *sh)
{
	for (unsigned i = 0; i < SPOOL_MAX_SEGS; i++)
		if (sh->segs[i].phase == SEG_FREE) {
			struct spool_seg *s = &sh->segs[i];
			memset(s, 0, sizeof(*s));
			s->fd = -1;
			s->ref_min = SPOOL_NO_SEG;
			return s;
		}
	return NULL;
}

void spool_seg_insert(struct spool_shard *sh, struct spool_seg *s)
{
	unsigned i = sh->nseg;
	while (i > 0 && sh->order[i - 1]->id > s->id) {
		sh->order[i] = sh->order[i - 1];
		i--;
	}
	sh->order[i] = s;
	sh->nseg++;
}

void spool_seg_remove(struct spool_shard *sh, struct spool_seg *s)
{
	for (unsigned i = 0; i < sh->nseg; i++)
		if (sh->order[i] == s) {
			memmove(&sh->order[i], &sh->order[i + 1],
				(sh->nseg - i - 1) * sizeof(sh->order[0]));
			sh->nseg--;
			return;
		}
}

struct spool_msg *spool_msg_alloc(struct spool_shard *sh, unsigned nrcpt)
{
	struct spool_msg *m = sh->msg_free;
	if (m == NULL || nrcpt == 0)
		return NULL;
	uint64_t *x = NULL;
	if (nrcpt > 64) {
		x = calloc((nrcpt + 63) / 64, sizeof(*x)); /* rare: large recipient lists */
		if (x == NULL)
			return NULL;
	}
	sh->msg_free = m->next;
	memset(m, 0, sizeof(*m));
	m->flags = MSG_USED;
	m->nrcpt = m->npending = nrcpt;
	m->xbits = x;
	return m;
}

void spool_msg_free(struct spool_shard *sh, struct spool_msg *m)
{
	free(m->xbits);
	memset(m, 0, sizeof(*m));
	m->next = sh->msg_free;
	sh->msg_free = m;
}

bool spool_msg_set_final(struct spool_msg *m, unsigned rcpt)
{
	uint64_t *w = m->xbits ? &m->xbits[rcpt / 64] : &m->bits;
	uint64_t bit = 1ull << (rcpt % 64);
	if (*w & bit)
		return false;
	*w |= bit;
	m->npending--;
	return true;
}

bool spool_msg_rcpt_final(const struct spool_msg *m, unsigned rcpt)
{
	if (rcpt >= m->nrcpt)
		return false;
	uint64_t w = m->xbits ? m->xbits[rcpt / 64] : m->bits;
	return (w >> (rcpt % 64)) & 1;
}

const char *spool_msg_queue_id(const struct spool_msg *m)
{
	return m->qid;
}

unsigned spool_msg_nrcpt(const struct spool_msg *m)
{
	return m->nrcpt;
}

int64_t spool_msg_next_attempt(const struct spool_msg *m)
{
	return m->next_attempt;
}

size_t spool_msg_record_size(const struct spool_msg *m)
{
	return m->size;
}

const struct spool_stats *spool_stats(const struct spool_shard *sh)
{
	return &sh->stats;
}

unsigned spool_inflight(const struct spool_shard *sh)
{
	return sh->inflight;
}

int spool_refusing(const struct spool_shard *sh)
{
	return sh->refusing ? sh->refuse_err : 0;
}

/* ---- staging blocks ---- */

static uint32_t blk_get(struct spool_shard *sh)
{
	if (sh->nfree == 0)
		return SPOOL_NO_BLK;
	uint32_t b = sh->blk_free[--sh->nfree];
	sh->blk_next[b] = SPOOL_NO_BLK;
	sh->blk_used[b] = 0;
	return b;
}

static void blk_put_chain(struct spool_shard *sh, uint32_t b)
{
	while (b != SPOOL_NO_BLK) {
		uint32_t next = sh->blk_next[b];
		sh->blk_free[sh->nfree++] = b;
		b = next;
	}
}

static inline uint8_t *blk_ptr(const struct spool_shard *sh, uint32_t b)
{
	return sh->arena + (size_t)b * SPOOL_BLK;
}

/* Copies P[0..N) to the end of TX's chain; the CRC covers it when CRC is set. */
static int tx_stage(struct spool_shard *sh, struct spool_tx *tx, const void *p, size_t n, bool crc)
{
	const uint8_t *s = p;
	/* count the blocks first, so a refusal leaves TX as it was */
	size_t room = SPOOL_BLK - tx->tail_used;
	if (n > room && (n - room + SPOOL_BLK - 1) / SPOOL_BLK > sh->nfree)
		return -ENOBUFS;
	if (crc && n)
		tx->crc = spool_crc32c(tx->crc, p, n);
	while (n) {
		if (tx->tail_used == SPOOL_BLK) {
			uint32_t b = blk_get(sh);
			sh->blk_next[tx->tail] = b;
			sh->blk_used[tx->tail] = SPOOL_BLK;
			tx->tail = b;
			tx->tail_used = 0;
		}
		size_t k = SPOOL_BLK - tx->tail_used;
		if (k > n)
			k = n;
		memcpy(blk_ptr(sh, tx->tail) + tx->tail_used, s, k);
		tx->tail_used += (uint32_t)k;
		s += k;
		n -= k;
	}
	return 0;
}

static void tx_release(struct spool_shard *sh, struct spool_tx *tx)
{
	blk_put_chain(sh, tx->head);
	memset(tx, 0, sizeof(*tx));
	tx->next = sh->tx_free;
	sh->tx_free = tx;
}

/* ---- SQEs ---- */

/*
 * Hands queued SQEs to the kernel (io_uring_enter without waiting). On an
 * error (-EBUSY while completions overflow, -EINTR) they stay queued and the
 * next poll tries again.
 */
static void submit(struct spool_shard *sh)
{
	if (io_uring_submit(&sh->ring) >= 0)
		sh->unsubmitted = 0;
}

static struct io_uring_sqe *sqe_get(struct spool_shard *sh)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&sh->ring);
	if (sqe == NULL) {
		/* the ring is sized for every bounded operation at once (ring_size()),
		 * so a full SQ only means "submit what is queued" */
		submit(sh);
		sqe = io_uring_get_sqe(&sh->ring);
		assert(sqe != NULL);
	}
	sh->inflight++;
	sh->unsubmitted++;
	return sqe;
}

/* Makes room for a linked chain of N SQEs, so that no submission splits it. */
static void sq_reserve(struct spool_shard *sh, unsigned n)
{
	if (io_uring_sq_space_left(&sh->ring) < n)
		submit(sh);
}

/* ---- segments: pre-creation and deletion ---- */

static unsigned seg_index(const struct spool_shard *sh, const struct spool_seg *s)
{
	return (unsigned)(s - sh->segs);
}

static void spare_failed(struct spool_shard *sh, int err)
{
	sh->spare = NULL;
	sh->spare_st = SPARE_FAILED;
	sh->spare_err = err;
	sh->spare_retry_us = sh->now + sh->cfg.probe_interval_us;
	sh->stats.segment_errors++;
}

/* Starts creating the next segment: OPENAT now, the rest when it completes. */
static void spare_start(struct spool_shard *sh)
{
	struct spool_seg *s = spool_seg_alloc(sh);
	if (s == NULL) {
		spare_failed(sh, -EMFILE);
		return;
	}
	struct io_uring_sqe *sqe = sqe_get(sh);
	s->id = sh->next_seg_id++;
	s->salt = sh->salt;
	spool_seg_name(s->name, s->id);
	struct spool_seg_rec sr = { .shard = sh->cfg.shard_id, .id = s->id, .salt = s->salt };
	spool_rec_encode_segment(s->hdr, sizeof(s->hdr), &sr);
	s->phase = SEG_OPENING;
	s->ops = 1;
	io_uring_prep_openat(sqe, sh->dirfd, s->name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	io_uring_sqe_set_data64(sqe, OP_UD(OP_SEG, seg_index(sh, s)));
	sh->spare = s;
	sh->spare_st = SPARE_CREATING;
}

/* Makes spare S durable: header, space, then its metadata, then its directory entry. */
static void seg_prepare(struct spool_shard *sh, struct spool_seg *s)
{
	/* header, then the space, then the file's metadata (size and extents),
	 * then the directory entry: the segment is durable before first use */
	struct io_uring_sqe *q[4];
	sq_reserve(sh, 4);
	for (int i = 0; i < 4; i++)
		q[i] = sqe_get(sh);
	io_uring_prep_write(q[0], s->fd, s->hdr, SPOOL_SEG_REC_SIZE, 0);
	io_uring_prep_fallocate(q[1], s->fd, 0, 0, sh->cfg.segment_size);
	io_uring_prep_fsync(q[2], s->fd, 0);
	io_uring_prep_fsync(q[3], sh->dirfd, 0);
	for (int i = 0; i < 4; i++) {
		if (i < 3)
			q[i]->flags |= IOSQE_IO_LINK;
		io_uring_sqe_set_data64(q[i], OP_UD(OP_SEG, seg_index(sh, s)));
	}
	s->phase = SEG_PREPARING;
	s->ops = 4;
	s->err = 0;
}

/* Closes and unlinks S. DIRSYNC: the unlink is made durable too. */
static void seg_unlink(struct spool_shard *sh, struct spool_seg *s, enum seg_phase phase,
		       bool dirsync)
{
	s->ops = 0;
	s->err = 0;
	s->phase = phase;
	sq_reserve(sh, 3);
	if (s->fd >= 0) {
		struct io_uring_sqe *c = sqe_get(sh);
		io_uring_prep_close(c, s->fd);
		io_uring_sqe_set_data64(c, OP_UD(OP_SEG, seg_index(sh, s)));
		s->fd = -1;
		s->ops++;
	}
	struct io_uring_sqe *u = sqe_get(sh);
	io_uring_prep_unlinkat(u, sh->dirfd, s->name, 0);
	io_uring_sqe_set_data64(u, OP_UD(OP_SEG, seg_index(sh, s)));
	s->ops++;
	if (dirsync) {
		u->flags |= IOSQE_IO_LINK;
		struct io_uring_sqe *f = sqe_get(sh);
		io_uring_prep_fsync(f, sh->dirfd, 0);
		io_uring_sqe_set_data64(f, OP_UD(OP_SEG, seg_index(sh, s)));
		s->ops++;
	}
}

static void seg_op_done(struct spool_shard *sh, struct spool_seg *s, int res)
{
	if (s->phase == SEG_OPENING && res >= 0)
		s->fd = res;
	if (res < 0 && s->err == 0)
		s->err = res;
	if (--s->ops > 0)
		return;

	switch (s->phase) {
	case SEG_OPENING:
		if (s->err) {
			spare_failed(sh, s->err);
			s->phase = SEG_FREE;
		} else {
			seg_prepare(sh, s);
		}
		break;
	case SEG_PREPARING:
		if (s->err) {
			spare_failed(sh, s->err);
			seg_unlink(sh, s, SEG_CLEANUP, false);
		} else {
			s->phase = SEG_READY;
			s->len = SPOOL_SEG_REC_SIZE;
			sh->spare_st = SPARE_READY;
			sh->stats.segments_created++;
		}
		break;
	case SEG_CLEANUP:
		s->phase = SEG_FREE;
		break;
	case SEG_DELETING:
		sh->deleting--;
		if (s->err) {
			s->phase = SEG_STUCK; /* the next start's recovery deletes it */
			sh->stats.segment_errors++;
		} else {
			spool_seg_remove(sh, s);
			sh->stats.segments_deleted++;
			sh->stats.spool_bytes -= s->len;
			s->phase = SEG_FREE;
			sh->gc_pending = true;
		}
		break;
	default:
		break;
	}
}

/* True while an older segment that S holds delivery state for still exists. */
static bool seg_pinned(const struct spool_shard *sh, const struct spool_seg *s)
{
	for (unsigned i = 0; i < sh->nseg && sh->order[i]->id < s->id; i++)
		if (sh->order[i]->id >= s->ref_min)
			return true;
	return false;
}

static void gc(struct spool_shard *sh)
{
	sh->gc_pending = false;
	for (unsigned i = 0; i < sh->nseg; i++) {
		struct spool_seg *s = sh->order[i];
		if (s == sh->cur || s->phase != SEG_LIVE || s->nlive || s->nunsynced || s->reads ||
		    seg_pinned(sh, s))
			continue;
		if (sh->deleting >= SPOOL_MAX_DELETES) {
			sh->gc_pending = true;
			return;
		}
		sh->deleting++;
		seg_unlink(sh, s, SEG_DELETING, true);
	}
}

/* ---- batches ---- */

static bool batch_empty(const struct spool_batch *b)
{
	return b->ntx == 0 && b->nstate == 0;
}

static void batch_reset(struct spool_batch *b)
{
	memset(b, 0, sizeof(*b));
	b->txs_tail = &b->txs;
	b->st_head = b->st_tail = SPOOL_NO_BLK;
	b->ref_min = SPOOL_NO_SEG;
}

/* Room for a whole record of SIZE octets in the open batch's state blocks. */
static uint8_t *state_room(struct spool_shard *sh, size_t size)
{
	struct spool_batch *b = &sh->open;
	if (b->st_tail == SPOOL_NO_BLK || sh->blk_used[b->st_tail] + size > SPOOL_BLK) {
		uint32_t nb = blk_get(sh);
		if (nb == SPOOL_NO_BLK)
			return NULL;
		if (b->st_tail == SPOOL_NO_BLK)
			b->st_head = nb;
		else
			sh->blk_next[b->st_tail] = nb;
		b->st_tail = nb;
	}
	uint8_t *p = blk_ptr(sh, b->st_tail) + sh->blk_used[b->st_tail];
	sh->blk_used[b->st_tail] += (uint32_t)size;
	return p;
}

static inline uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Answers every message of the list TXS with ERR: their clients get no 250. */
static unsigned fail_txs(struct spool_shard *sh, struct spool_tx *txs, int err)
{
	unsigned n = 0;
	for (struct spool_tx *t = txs, *nx; t; t = nx) {
		nx = t->next;
		spool_commit_cb cb = t->cb;
		void *cookie = t->cookie;
		sh->staged -= spool_rec_size(t->len);
		spool_msg_free(sh, t->m);
		tx_release(sh, t);
		sh->stats.messages_failed++;
		if (cb)
			cb(cookie, err, NULL);
		n++;
	}
	return n;
}

static void enter_refusing(struct spool_shard *sh, int err)
{
	sh->stats.write_errors++;
	sh->refusing = true;
	sh->refuse_err = err;
	sh->probe_us = sh->now + sh->cfg.probe_interval_us;
}

/*
 * Batch B failed with ERR: its messages are answered with the error, and its
 * state records go back to the open batch, ahead of newer ones, to be
 * written with the next batch (at close they are dropped: recovery then
 * requeues those recipients -- a duplicate delivery, never a loss).
 */
static unsigned batch_fail(struct spool_shard *sh, struct spool_batch *b, int err)
{
	enter_refusing(sh, err);
	if (b->seg != NULL && b->seg == sh->cur)
		sh->cur = NULL; /* abandoned: its tail is junk that recovery cuts off */

	if (b->nstate && sh->closing) {
		for (uint32_t k = b->st_head; k != SPOOL_NO_BLK; k = sh->blk_next[k])
			sh->staged -= sh->blk_used[k];
		blk_put_chain(sh, b->st_head);
		for (struct spool_msg *m = b->finals, *nx; m; m = nx) {
			nx = m->next;
			m->seg->nunsynced--;
			spool_msg_free(sh, m);
		}
	} else if (b->nstate) {
		struct spool_batch *o = &sh->open;
		uint64_t st_bytes = 0;
		for (uint32_t k = b->st_head; k != SPOOL_NO_BLK; k = sh->blk_next[k])
			st_bytes += sh->blk_used[k];
		if (batch_empty(o))
			o->opened_us = sh->now;
		if (o->st_head == SPOOL_NO_BLK)
			o->st_tail = b->st_tail;
		else
			sh->blk_next[b->st_tail] = o->st_head;
		o->st_head = b->st_head;
		o->nstate += b->nstate;
		o->bytes += st_bytes;
		if (b->ref_min < o->ref_min)
			o->ref_min = b->ref_min;
		struct spool_msg **tail = &b->finals;
		while (*tail)
			tail = &(*tail)->next;
		*tail = o->finals;
		o->finals = b->finals;
	}
	return fail_txs(sh, b->txs, err);
}

/* The batch in flight completed: its sync covers everything it wrote. */
static unsigned flight_done(struct spool_shard *sh)
{
	struct spool_batch b = sh->flight;
	sh->flying = false;
	batch_reset(&sh->flight);
	if (b.err)
		return batch_fail(sh, &b, b.err);

	unsigned n = 0;
	struct spool_seg *seg = b.seg;
	seg->len = b.off + b.bytes;
	if (b.ref_min < seg->id && b.ref_min < seg->ref_min)
		seg->ref_min = b.ref_min;
	sh->stats.spool_bytes += b.bytes;
	sh->stats.commits++;
	sh->stats.batch_hist[batch_bucket(b.ntx)]++;
	sh->staged -= b.bytes;
	if (sh->refusing) {
		sh->refusing = false;
		sh->refuse_err = 0;
	}
	blk_put_chain(sh, b.st_head);
	for (struct spool_msg *m = b.finals, *nx; m; m = nx) {
		nx = m->next;
		m->seg->nunsynced--;
		spool_msg_free(sh, m);
		sh->gc_pending = true;
	}
	for (struct spool_tx *t = b.txs, *nx; t; t = nx) {
		nx = t->next;
		struct spool_msg *m = t->m;
		spool_commit_cb cb = t->cb;
		void *cookie = t->cookie;
		uint64_t lat = sh->now > t->commit_us ? sh->now - t->commit_us : 0;
		sh->stats.latency_hist[spool_latency_bucket(lat)]++;
		seg->nlive++;
		sh->stats.messages++;
		sh->stats.bytes += m->size;
		sh->stats.messages_live++;
		sh->stats.bytes_live += m->size;
		tx_release(sh, t);
		if (cb)
			cb(cookie, 0, m);
		else if (sh->cfg.requeue) /* detached: its session is gone, the relay takes it */
			sh->cfg.requeue(sh->cfg.requeue_arg, sh, m);
		n++;
	}
	return n;
}

static bool batch_due(const struct spool_shard *sh)
{
	const struct spool_batch *b = &sh->open;
	if (batch_empty(b))
		return false;
	if (sh->closing)
		return true;
	/* refusing: one attempt per probe interval, so a failing disk is not hammered (nor
	 * a fresh segment used up) at the commit window's rate */
	if (sh->refusing)
		return sh->now >= sh->probe_us;
	return b->bytes >= sh->cfg.commit_bytes ||
	       sh->now - b->opened_us >= sh->cfg.commit_window_us;
}

/* Seals the open batch's records, lays them out as iovecs and submits WRITEVs + FSYNC. */
static unsigned batch_submit(struct spool_shard *sh)
{
	if (sh->flying || !batch_due(sh))
		return 0;

	struct spool_batch *o = &sh->open;
	if (sh->cur == NULL || sh->cur->len + o->bytes > sh->cfg.segment_size) {
		switch (sh->spare_st) {
		case SPARE_READY:
			sh->cur = sh->spare;
			sh->cur->phase = SEG_LIVE;
			spool_seg_insert(sh, sh->cur);
			sh->stats.spool_bytes += sh->cur->len;
			sh->spare = NULL;
			sh->spare_st = SPARE_NONE;
			spare_start(sh);
			break;
		case SPARE_CREATING:
			return 0; /* the batch waits for its segment */
		case SPARE_NONE:
			spare_start(sh);
			return 0;
		case SPARE_FAILED: {
			/* no segment to write to: answer the messages now rather than keep
			 * their clients waiting; state records wait for a segment */
			if (o->ntx == 0)
				return 0;
			struct spool_tx *txs = o->txs;
			for (struct spool_tx *t = txs; t; t = t->next)
				o->bytes -= spool_rec_size(t->len);
			o->txs = NULL;
			o->txs_tail = &o->txs;
			o->ntx = 0;
			enter_refusing(sh, sh->spare_err);
			return fail_txs(sh, txs, sh->spare_err);
		}
		}
	}

	if (sh->refusing)
		sh->probe_us = sh->now + sh->cfg.probe_interval_us;
	struct spool_batch *b = &sh->flight;
	*b = *o;
	batch_reset(o);
	sh->flying = true;
	b->seg = sh->cur;
	b->off = sh->cur->len;

	/* messages first, in commit order, then state records; sequence numbers follow disk order */
	unsigned niov = 0;
	uint64_t off = b->off;
	for (struct spool_tx *t = b->txs; t; t = t->next) {
		uint8_t *hdr = blk_ptr(sh, t->head);
		spool_rec_seal(hdr, SPOOL_REC_MESSAGE, (uint32_t)t->len, sh->next_seq++, sh->salt,
			       t->crc);
		size_t size = spool_rec_size(t->len);
		for (uint32_t k = t->head; k != SPOOL_NO_BLK; k = sh->blk_next[k]) {
			size_t used = k == t->tail ? t->tail_used : SPOOL_BLK;
			sh->iov[niov++] = (struct iovec){ blk_ptr(sh, k), used };
		}
		size_t pad = size - SPOOL_REC_HDR - t->len;
		if (pad)
			sh->iov[niov++] = (struct iovec){ (void *)zeros, pad };
		t->m->seg = b->seg;
		t->m->off = off;
		t->m->size = (uint32_t)size;
		off += size;
	}
	for (uint32_t k = b->st_head; k != SPOOL_NO_BLK; k = sh->blk_next[k]) {
		uint8_t *p = blk_ptr(sh, k);
		for (uint32_t at = 0; at < sh->blk_used[k];) {
			uint32_t len = le32(p + at + 8);
			uint8_t *pl = p + at + SPOOL_REC_HDR;
			spool_rec_seal(p + at, (enum spool_rec_type)p[at + 4], len, sh->next_seq++,
				       sh->salt, spool_crc32c(sh->salt, pl, len));
			at += (uint32_t)spool_rec_size(len);
		}
		sh->iov[niov++] = (struct iovec){ p, sh->blk_used[k] };
		off += sh->blk_used[k];
	}

	b->ops = 0;
	b->err = 0;
	sq_reserve(sh, (niov + UIO_MAXIOV - 1) / UIO_MAXIOV + 1);
	uint64_t woff = b->off;
	for (unsigned i = 0; i < niov;) {
		unsigned k = niov - i < UIO_MAXIOV ? niov - i : UIO_MAXIOV;
		size_t len = 0;
		for (unsigned j = 0; j < k; j++)
			len += sh->iov[i + j].iov_len;
		struct io_uring_sqe *sqe = sqe_get(sh);
		io_uring_prep_writev(sqe, b->seg->fd, &sh->iov[i], k, woff);
		sqe->flags |= IOSQE_IO_LINK;
		io_uring_sqe_set_data64(sqe, OP_UD(OP_WRITE, len));
		b->ops++;
		woff += len;
		i += k;
	}
	struct io_uring_sqe *sqe = sqe_get(sh);
	io_uring_prep_fsync(sqe, b->seg->fd, IORING_FSYNC_DATASYNC);
	io_uring_sqe_set_data64(sqe, OP_UD(OP_SYNC, 0));
	b->ops++;
	return 0;
}

/* ---- completions ---- */

static unsigned read_done(struct spool_shard *sh, unsigned i, int res)
{
	struct spool_read_slot *r = &sh->reads[i];
	spool_read_cb cb = r->cb;
	void *cookie = r->cookie;
	int status = 0;
	struct spool_rec rec = { 0 };

	if (res < 0)
		status = res;
	else if ((uint32_t)res != r->len)
		status = -EIO;
	else if (spool_rec_frame(r->buf, r->len, r->seg->salt, r->len, &rec) != SPOOL_RE_OK ||
		 rec.type != SPOOL_REC_MESSAGE)
		status = -EBADMSG;
	r->seg->reads--;
	if (r->seg->reads == 0)
		sh->gc_pending = true;
	memset(r, 0, sizeof(*r));
	if (status) {
		sh->stats.read_errors++;
		cb(cookie, status, NULL, 0);
	} else {
		cb(cookie, 0, rec.payload, rec.len);
	}
	return 1;
}

static unsigned reap(struct spool_shard *sh)
{
	unsigned n = 0;
	struct io_uring_cqe *cqe;
	while (io_uring_peek_cqe(&sh->ring, &cqe) == 0) {
		uint64_t ud = io_uring_cqe_get_data64(cqe);
		int res = cqe->res;
		io_uring_cqe_seen(&sh->ring, cqe);
		sh->inflight--;
		switch (OP_KIND(ud)) {
		case OP_WRITE:
			if (sh->flight.err == 0 && res >= 0 && (uint64_t)res != OP_VAL(ud))
				res = -EIO; /* short write: the link is broken, the sync cancelled */
					    /* fall through */
		case OP_SYNC:
			if (res < 0 && (sh->flight.err == 0 || sh->flight.err == -ECANCELED))
				sh->flight.err = res;
			if (--sh->flight.ops == 0)
				n += flight_done(sh);
			break;
		case OP_SEG:
			seg_op_done(sh, &sh->segs[OP_VAL(ud)], res);
			break;
		case OP_READ:
			n += read_done(sh, (unsigned)OP_VAL(ud), res);
			break;
		default:
			break;
		}
	}
	return n;
}

/* ---- the API ---- */

int spool_begin(struct spool_shard *sh, const struct spool_env *env, uint64_t size_hint,
		struct spool_tx **out)
{
	if (env->nrcpt == 0 || env->nrcpt > sh->cfg.max_rcpts)
		return -EINVAL;
	size_t envlen = spool_rec_encode_env(sh->envbuf, sh->envbuf_cap, env);
	if (envlen == 0)
		return -EINVAL;
	if (size_hint > sh->cfg.max_message)
		return -EFBIG;
	int err = 0;
	if (sh->refusing)
		err = -EIO;
	else if (sh->cfg.size_limit &&
		 sh->stats.spool_bytes + sh->staged + spool_rec_size(envlen + size_hint) >
			 sh->cfg.size_limit)
		err = -ENOSPC;
	else if (sh->tx_free == NULL || sh->nfree == 0)
		err = -ENOBUFS;
	if (err) {
		sh->stats.refused++;
		return err;
	}

	struct spool_tx *tx = sh->tx_free;
	struct spool_msg *m = spool_msg_alloc(sh, env->nrcpt);
	if (m == NULL) {
		sh->stats.refused++;
		return -ENOBUFS;
	}
	sh->tx_free = tx->next;
	memset(tx, 0, sizeof(*tx));
	tx->used = true;
	tx->m = m;
	memcpy(m->qid, env->queue_id, SMTP_QID_LEN);
	tx->head = tx->tail = blk_get(sh);
	tx->tail_used = SPOOL_REC_HDR; /* sealed at submission */
	tx->crc = sh->salt;
	if (tx_stage(sh, tx, sh->envbuf, envlen, true) < 0) {
		spool_msg_free(sh, m);
		tx_release(sh, tx);
		sh->stats.refused++;
		return -ENOBUFS;
	}
	tx->len = envlen;
	sh->staged += SPOOL_REC_HDR + envlen;
	*out = tx;
	return 0;
}

int spool_append(struct spool_shard *sh, struct spool_tx *tx, const void *p, size_t n)
{
	if (tx->content + n > sh->cfg.max_message)
		return -EFBIG;
	int r = tx_stage(sh, tx, p, n, true);
	if (r < 0)
		return r;
	tx->len += n;
	tx->content += n;
	sh->staged += n;
	return 0;
}

void spool_commit(struct spool_shard *sh, struct spool_tx *tx, uint64_t now_us, spool_commit_cb cb,
		  void *cookie)
{
	size_t size = spool_rec_size(tx->len);
	if (batch_empty(&sh->open))
		sh->open.opened_us = now_us;
	tx->committed = true;
	tx->cb = cb;
	tx->cookie = cookie;
	tx->commit_us = now_us;
	tx->next = NULL;
	*sh->open.txs_tail = tx;
	sh->open.txs_tail = &tx->next;
	sh->open.ntx++;
	sh->open.bytes += size;
	sh->staged += size - SPOOL_REC_HDR - tx->len; /* the padding */
}

void spool_detach(struct spool_shard *sh, struct spool_tx *tx)
{
	(void)sh;
	tx->cb = NULL;
	tx->cookie = NULL;
}

void spool_abort(struct spool_shard *sh, struct spool_tx *tx)
{
	sh->staged -= SPOOL_REC_HDR + tx->len;
	spool_msg_free(sh, tx->m);
	tx_release(sh, tx);
	sh->stats.aborted++;
}

int spool_state(struct spool_shard *sh, struct spool_msg *m, unsigned rcpt,
		enum spool_rcpt_state st, int64_t when, int64_t next_attempt, struct smtp_str reply)
{
	if (!(m->flags & MSG_USED) || (m->flags & MSG_FINAL) || rcpt >= m->nrcpt ||
	    spool_msg_rcpt_final(m, rcpt))
		return -EINVAL;
	struct spool_state_rec s = { .rcpt = rcpt,
				     .state = st,
				     .when = when,
				     .next_attempt = next_attempt,
				     .reply = reply };
	memcpy(s.queue_id, m->qid, sizeof(s.queue_id));
	uint8_t pl[SPOOL_STATE_MAX];
	size_t len = spool_rec_encode_state(pl, sizeof(pl), &s);
	if (len == 0)
		return -EINVAL;
	size_t size = spool_rec_size(len);
	bool was_empty = batch_empty(&sh->open);
	uint8_t *p = state_room(sh, size);
	if (p == NULL)
		return -ENOBUFS;
	/* a provisional header carries type and length until submission seals it */
	spool_rec_encode(p, size, SPOOL_REC_STATE, 0, sh->salt, pl, len);
	if (was_empty)
		sh->open.opened_us = sh->now;
	sh->open.nstate++;
	sh->open.bytes += size;
	sh->staged += size;
	if (m->seg->id < sh->open.ref_min)
		sh->open.ref_min = m->seg->id;
	sh->stats.state_records++;

	if (st == SPOOL_RCPT_DEFERRED) {
		m->next_attempt = next_attempt;
	} else if (spool_msg_set_final(m, rcpt) && m->npending == 0) {
		m->flags |= MSG_FINAL;
		m->seg->nlive--;
		m->seg->nunsynced++;
		sh->stats.messages_live--;
		sh->stats.bytes_live -= m->size;
		m->next = sh->open.finals;
		sh->open.finals = m;
	}
	return 0;
}

int spool_read(struct spool_shard *sh, struct spool_msg *m, void *buf, size_t cap, spool_read_cb cb,
	       void *cookie)
{
	if (cap < m->size || m->seg == NULL || m->seg->fd < 0)
		return -EINVAL;
	for (unsigned i = 0; i < sh->cfg.max_reads; i++) {
		struct spool_read_slot *r = &sh->reads[i];
		if (r->used)
			continue;
		struct io_uring_sqe *sqe = sqe_get(sh);
		*r = (struct spool_read_slot){ .used = true,
					       .buf = buf,
					       .len = m->size,
					       .seg = m->seg,
					       .cb = cb,
					       .cookie = cookie };
		m->seg->reads++;
		sh->stats.reads++;
		io_uring_prep_read(sqe, m->seg->fd, buf, m->size, m->off);
		io_uring_sqe_set_data64(sqe, OP_UD(OP_READ, i));
		return 0;
	}
	return -EBUSY;
}

unsigned spool_poll(struct spool_shard *sh, uint64_t now_us)
{
	sh->now = now_us;
	unsigned n = reap(sh);

	if (sh->spare_st == SPARE_NONE ||
	    (sh->spare_st == SPARE_FAILED && !sh->closing && now_us >= sh->spare_retry_us))
		spare_start(sh);
	if (!sh->closing) {
		/* refusing and nothing to write: probe with a PAD record (new messages are
		 * refused, so without a probe nothing would ever find out the disk is back) */
		if (sh->refusing && !sh->flying && batch_empty(&sh->open) &&
		    now_us >= sh->probe_us) {
			uint8_t *p = state_room(sh, SPOOL_REC_HDR);
			if (p != NULL) {
				spool_rec_encode(p, SPOOL_REC_HDR, SPOOL_REC_PAD, 0, sh->salt,
						 zeros, 0);
				sh->open.nstate++;
				sh->open.bytes += SPOOL_REC_HDR;
				sh->open.opened_us = now_us;
				sh->staged += SPOOL_REC_HDR;
			}
		}
	}
	n += batch_submit(sh);
	if (sh->gc_pending && !sh->closing)
		gc(sh);
	if (sh->unsubmitted)
		submit(sh);
	return n;
}

/* ---- open and close ---- */

static int check_config(const struct spool_config *c, char *err, size_t errlen)
{
	const char *why = NULL;
	if (c->dir == NULL || c->dir[0] == '\0')
		why = "no spool directory";
	else if (c->commit_bytes == 0)
		why = "commit_bytes must be > 0";
	else if (c->staging_bytes < 16 * SPOOL_BLK)
		why = "staging_bytes must be >= 64 KiB";
	else if (c->max_rcpts == 0 || c->max_rcpts > SPOOL_RCPT_LIMIT)
		why = "max_rcpts out of range";
	else if ((uint64_t)c->max_message + 8 * SPOOL_BLK > c->staging_bytes)
		why = "staging_bytes must exceed max_message by 32 KiB";
	else if ((uint64_t)c->segment_size < (uint64_t)c->staging_bytes + 2 * SPOOL_BLK)
		why = "segment_size must exceed staging_bytes by 8 KiB";
	else if (c->max_messages == 0 || c->max_tx == 0 || c->max_reads == 0)
		why = "max_messages, max_tx and max_reads must be > 0";
	else if (c->probe_interval_us == 0)
		why = "probe_interval_us must be > 0";
	if (why)
		snprintf(err, errlen, "spool: %s", why);
	return why ? -EINVAL : 0;
}

static unsigned ring_size(const struct spool_shard *sh)
{
	/* every bounded operation at once: a batch, a spare and a failed one being
	 * cleaned up, deletions, reads */
	unsigned need = (sh->iov_cap + UIO_MAXIOV - 1) / UIO_MAXIOV + 1;
	need += 4 + 2 + 2 + 3 * SPOOL_MAX_DELETES + sh->cfg.max_reads;
	unsigned n = 8;
	while (n < need + 8)
		n <<= 1;
	return n;
}

static int mkdirs(const char *path)
{
	if (mkdir(path, 0750) == 0 || errno == EEXIST)
		return 0;
	return -errno;
}

/* The first segment of this run: created synchronously, as open may block. */
static int first_segment(struct spool_shard *sh, char *err, size_t errlen)
{
	struct spool_seg *s = spool_seg_alloc(sh);
	if (s == NULL) {
		snprintf(err, errlen, "spool: too many segments");
		return -E2BIG;
	}
	s->id = sh->next_seg_id++;
	s->salt = sh->salt;
	spool_seg_name(s->name, s->id);
	struct spool_seg_rec sr = { .shard = sh->cfg.shard_id, .id = s->id, .salt = s->salt };
	spool_rec_encode_segment(s->hdr, sizeof(s->hdr), &sr);
	int fd = openat(sh->dirfd, s->name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	int e = 0;
	if (fd < 0)
		e = -errno;
	else if (pwrite(fd, s->hdr, SPOOL_SEG_REC_SIZE, 0) != SPOOL_SEG_REC_SIZE)
		e = errno ? -errno : -EIO;
	else if ((e = -posix_fallocate(fd, 0, sh->cfg.segment_size)) != 0)
		;
	else if (fsync(fd) < 0 || fsync(sh->dirfd) < 0)
		e = -errno;
	if (e) {
		snprintf(err, errlen, "spool: creating %s/%s: %s", sh->path, s->name, strerror(-e));
		if (fd >= 0) {
			close(fd);
			unlinkat(sh->dirfd, s->name, 0);
		}
		return e;
	}
	s->fd = fd;
	s->phase = SEG_LIVE;
	s->len = SPOOL_SEG_REC_SIZE;
	spool_seg_insert(sh, s);
	sh->cur = s;
	sh->stats.spool_bytes += s->len;
	sh->stats.segments_created++;
	return 0;
}

static void shard_free(struct spool_shard *sh)
{
	if (sh->segs)
		for (unsigned i = 0; i < SPOOL_MAX_SEGS; i++)
			if (sh->segs[i].fd >= 0 && sh->segs[i].phase != SEG_FREE)
				close(sh->segs[i].fd);
	if (sh->msgs)
		for (uint32_t i = 0; i < sh->cfg.max_messages; i++)
			free(sh->msgs[i].xbits);
	if (sh->ring_ok)
		io_uring_queue_exit(&sh->ring);
	if (sh->dirfd >= 0)
		close(sh->dirfd);
	free(sh->segs);
	free(sh->order);
	free(sh->arena);
	free(sh->blk_next);
	free(sh->blk_used);
	free(sh->blk_free);
	free(sh->msgs);
	free(sh->txs);
	free(sh->reads);
	free(sh->envbuf);
	free(sh->iov);
	free(sh->path);
	free(sh);
}

struct spool_shard *spool_shard_open(const struct spool_config *cfg, struct spool_recovery *rep)
{
	struct spool_recovery dummy;
	if (rep == NULL)
		rep = &dummy;
	memset(rep, 0, sizeof(*rep));
	uint64_t t0 = mono_us();
	int e = check_config(cfg, rep->error, sizeof(rep->error));
	if (e) {
		errno = -e;
		return NULL;
	}

	struct spool_shard *sh = calloc(1, sizeof(*sh));
	if (sh == NULL) {
		snprintf(rep->error, sizeof(rep->error), "spool: out of memory");
		errno = ENOMEM;
		return NULL;
	}
	sh->cfg = *cfg;
	sh->dirfd = -1;
	batch_reset(&sh->open);
	batch_reset(&sh->flight);

	size_t plen = strlen(cfg->dir) + 16;
	sh->path = malloc(plen);
	sh->nblk = cfg->staging_bytes / SPOOL_BLK;
	sh->segs = calloc(SPOOL_MAX_SEGS, sizeof(*sh->segs));
	sh->order = calloc(SPOOL_MAX_SEGS, sizeof(*sh->order));
	sh->arena = aligned_alloc(SPOOL_BLK, (size_t)sh->nblk * SPOOL_BLK);
	sh->blk_next = calloc(sh->nblk, sizeof(uint32_t));
	sh->blk_used = calloc(sh->nblk, sizeof(uint32_t));
	sh->blk_free = calloc(sh->nblk, sizeof(uint32_t));
	sh->msgs = calloc(cfg->max_messages, sizeof(*sh->msgs));
	sh->txs = calloc(cfg->max_tx, sizeof(*sh->txs));
	sh->reads = calloc(cfg->max_reads, sizeof(*sh->reads));
	/* the largest envelope: fixed part, six strings at their limits, every recipient at its */
	sh->envbuf_cap = 64 + SPOOL_PROTO_MAX + SMTP_ADDR_LITERAL_MAX + SPOOL_HELO_MAX +
			 SMTP_PATH_MAX + SMTP_ENVID_MAX + SMTP_AUTHP_MAX + 12 +
			 (size_t)cfg->max_rcpts * (5 + SMTP_PATH_MAX + SMTP_ORCPT_MAX);
	sh->envbuf = malloc(sh->envbuf_cap);
	sh->iov_cap = sh->nblk + cfg->max_tx + 2;
	sh->iov = calloc(sh->iov_cap, sizeof(*sh->iov));
	if (!sh->path || !sh->segs || !sh->order || !sh->arena || !sh->blk_next || !sh->blk_used ||
	    !sh->blk_free || !sh->msgs || !sh->txs || !sh->reads || !sh->envbuf || !sh->iov) {
		snprintf(rep->error, sizeof(rep->error), "spool: out of memory");
		e = -ENOMEM;
		goto fail;
	}
	for (unsigned i = 0; i < SPOOL_MAX_SEGS; i++)
		sh->segs[i].fd = -1;
	for (uint32_t i = 0; i < sh->nblk; i++)
		sh->blk_free[i] = sh->nblk - 1 - i;
	sh->nfree = sh->nblk;
	for (uint32_t i = cfg->max_messages; i-- > 0;) {
		sh->msgs[i].next = sh->msg_free;
		sh->msg_free = &sh->msgs[i];
	}
	for (uint32_t i = cfg->max_tx; i-- > 0;) {
		sh->txs[i].next = sh->tx_free;
		sh->tx_free = &sh->txs[i];
	}
	if (getrandom(&sh->salt, sizeof(sh->salt), 0) != sizeof(sh->salt))
		sh->salt = (uint32_t)(t0 * 2654435761u) ^ (uint32_t)getpid();

	snprintf(sh->path, plen, "%s/%u", cfg->dir, cfg->shard_id);
	if ((e = mkdirs(cfg->dir)) != 0 || (e = mkdirs(sh->path)) != 0) {
		snprintf(rep->error, sizeof(rep->error), "spool: mkdir %s: %s", sh->path,
			 strerror(-e));
		goto fail;
	}
	sh->dirfd = open(sh->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sh->dirfd < 0) {
		e = -errno;
		snprintf(rep->error, sizeof(rep->error), "spool: open %s: %s", sh->path,
			 strerror(-e));
		goto fail;
	}

	unsigned entries = ring_size(sh);
	e = io_uring_queue_init(entries, &sh->ring, 0);
	if (e < 0) {
		snprintf(
			rep->error, sizeof(rep->error), "spool: io_uring_queue_init(%u): %s%s",
			entries, strerror(-e),
			e == -EPERM || e == -ENOSYS ?
				" (io_uring disabled: kernel.io_uring_disabled sysctl or seccomp?)" :
			e == -ENOMEM ? " (RLIMIT_MEMLOCK too low?)" :
				       "");
		goto fail;
	}
	sh->ring_ok = true;

	sh->next_seq = 1;
	sh->next_seg_id = 1;
	if ((e = spool_recover(sh, rep)) != 0)
		goto fail;
	if ((e = first_segment(sh, rep->error, sizeof(rep->error))) != 0)
		goto fail;

	for (uint32_t i = 0; i < cfg->max_messages; i++) {
		struct spool_msg *m = &sh->msgs[i];
		if ((m->flags & MSG_USED) && !(m->flags & MSG_FINAL)) {
			rep->requeued++;
			sh->stats.recovered++;
			if (cfg->requeue)
				cfg->requeue(cfg->requeue_arg, sh, m);
		}
	}
	sh->now = mono_us();
	spare_start(sh);
	submit(sh);
	rep->duration_us = mono_us() - t0;
	return sh;

fail:
	shard_free(sh);
	errno = -e;
	return NULL;
}

void spool_shard_close(struct spool_shard *sh)
{
	if (sh == NULL)
		return;
	sh->closing = true;
	/* begun but never committed: the session layer should have aborted them */
	for (uint32_t i = 0; i < sh->cfg.max_tx; i++)
		if (sh->txs[i].used && !sh->txs[i].committed)
			spool_abort(sh, &sh->txs[i]);
	for (;;) {
		spool_poll(sh, mono_us());
		if (sh->inflight == 0 && batch_empty(&sh->open) && !sh->flying)
			break;
		if (sh->inflight == 0 && !sh->flying && sh->spare_st == SPARE_FAILED) {
			/* nowhere to write what is left: its callbacks get the error */
			struct spool_batch b = sh->open;
			batch_reset(&sh->open);
			batch_fail(sh, &b, sh->spare_err);
			continue;
		}
		struct io_uring_cqe *cqe;
		if (sh->inflight)
			io_uring_wait_cqe(&sh->ring, &cqe); /* reaped by the next spool_poll() */
	}
	shard_free(sh);
}
