/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Start-up recovery of a shard (blocking: it runs before the worker loop).
 *
 * Every segment is scanned in id order and every record's CRCs checked.
 * MESSAGE records become messages, STATE records mark their recipients
 * (last record wins; a final state is never undone). Then:
 *   - a message with a recipient not final is requeued;
 *   - a segment with no live message, and no older existing segment it
 *     holds state for, is unlinked.
 *
 * Damage, decided as follows:
 *   - Torn tail: a bad record (any framing or CRC reason, or a header of
 *     zeros) after which no valid record follows in the segment. A crash
 *     mid-write leaves exactly that, and the record was never acknowledged
 *     (its fdatasync had not completed). The segment is truncated to the
 *     end of its last valid record; counted in torn_tails when the cut-off
 *     part held anything but zeros (the preallocated space is zeros).
 *   - Corruption inside a segment: a bad record followed by a valid one.
 *     Recovery searches forward (8-octet steps) for the next record whose
 *     header and CRC check out under the segment's salt and whose sequence
 *     number is higher than the last good one, and continues there: the
 *     damaged region is reported and counted, later records are kept. A
 *     record quoted in a message's content cannot be mistaken for a real
 *     one: it would need the segment's random salt in both CRCs.
 *   - A segment whose SEGMENT record is unreadable (so its salt is unknown)
 *     is quarantined: renamed to *.bad and reported, never deleted. If the
 *     file holds only zeros it is a spare that a crash caught before it was
 *     durable, and it is removed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dataplane/spool/shard_priv.h"

struct rscan {
	struct spool_shard *sh;
	struct spool_recovery *rep;
	struct spool_msg **hash;
	size_t hmask;
};

static void note(struct spool_recovery *rep, const char *fmt, const char *name, uint64_t off,
		 const char *why)
{
	if (rep->error[0] == '\0')
		snprintf(rep->error, sizeof(rep->error), fmt, name, off, why);
}

static size_t qid_hash(const char *q)
{
	uint64_t h = 1469598103934665603ull;
	for (unsigned i = 0; i < SMTP_QID_LEN; i++)
		h = (h ^ (uint8_t)q[i]) * 1099511628211ull;
	return (size_t)h;
}

static struct spool_msg *lookup(struct rscan *x, const char *qid)
{
	for (struct spool_msg *m = x->hash[qid_hash(qid) & x->hmask]; m; m = m->next)
		if (memcmp(m->qid, qid, SMTP_QID_LEN) == 0)
			return m;
	return NULL;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* The next offset after FROM holding a valid record with a sequence above LAST; 0: none. */
static size_t resync(const uint8_t *buf, size_t size, size_t from, uint32_t salt, uint64_t last)
{
	for (size_t o = (from + SPOOL_REC_ALIGN - 1) & ~(size_t)(SPOOL_REC_ALIGN - 1);
	     o + SPOOL_REC_HDR <= size; o += SPOOL_REC_ALIGN) {
		struct spool_rec r;
		if (buf[o] != (SPOOL_REC_MAGIC & 0xff))
			continue;
		if (spool_rec_frame(buf + o, size - o, salt, (uint32_t)(size - o), &r) ==
			    SPOOL_RE_OK &&
		    r.seq > last)
			return o;
	}
	return 0;
}

/* Applies one valid record found in S at OFF. Returns 0, or -E2BIG when out of message slots. */
static int apply(struct rscan *x, struct spool_seg *s, size_t off, const struct spool_rec *r)
{
	struct spool_shard *sh = x->sh;
	switch (r->type) {
	case SPOOL_REC_MESSAGE: {
		struct spool_env env;
		struct smtp_str content;
		enum spool_rec_err e =
			spool_rec_decode_msg(r->payload, r->len, &env, NULL, 0, &content);
		if (e != SPOOL_RE_OK) {
			x->rep->corrupt++;
			note(x->rep, "spool: %s offset %" PRIu64 ": message record: %s", s->name,
			     off, spool_rec_err_names[e]);
			return 0;
		}
		x->rep->messages++;
		if (lookup(x, env.queue_id) != NULL)
			return 0; /* the same message twice: the first copy stands */
		struct spool_msg *m = spool_msg_alloc(sh, env.nrcpt);
		if (m == NULL) {
			snprintf(x->rep->error, sizeof(x->rep->error),
				 "spool: more live messages on disk than max_messages (%u)",
				 sh->cfg.max_messages);
			return -E2BIG;
		}
		memcpy(m->qid, env.queue_id, SMTP_QID_LEN);
		m->seg = s;
		m->off = off;
		m->size = (uint32_t)r->size;
		size_t h = qid_hash(m->qid) & x->hmask;
		m->next = x->hash[h];
		x->hash[h] = m;
		s->nlive++;
		return 0;
	}
	case SPOOL_REC_STATE: {
		struct spool_state_rec st;
		enum spool_rec_err e = spool_rec_decode_state(r->payload, r->len, &st);
		if (e != SPOOL_RE_OK) {
			x->rep->corrupt++;
			note(x->rep, "spool: %s offset %" PRIu64 ": state record: %s", s->name, off,
			     spool_rec_err_names[e]);
			return 0;
		}
		struct spool_msg *m = lookup(x, st.queue_id);
		if (m == NULL)
			return 0; /* its message's segment is gone: the message was final */
		if (st.rcpt >= m->nrcpt) {
			x->rep->corrupt++;
			note(x->rep, "spool: %s offset %" PRIu64 ": %s", s->name, off,
			     "state for a recipient the message does not have");
			return 0;
		}
		if (m->seg != s && m->seg->id < s->ref_min)
			s->ref_min = m->seg->id;
		if (st.state == SPOOL_RCPT_DEFERRED) {
			if (!spool_msg_rcpt_final(m, st.rcpt))
				m->next_attempt = st.next_attempt;
		} else if (spool_msg_set_final(m, st.rcpt) && m->npending == 0) {
			m->flags |= MSG_FINAL;
			m->seg->nlive--;
		}
		return 0;
	}
	case SPOOL_REC_PAD:
		return 0;
	default: /* a SEGMENT record past the start */
		x->rep->corrupt++;
		note(x->rep, "spool: %s offset %" PRIu64 ": %s", s->name, off,
		     "segment record inside a segment");
		return 0;
	}
}

/* Scans the records of S in BUF[0..SIZE) after its SEGMENT record; sets s->len. */
static int scan(struct rscan *x, struct spool_seg *s, const uint8_t *buf, size_t size)
{
	struct spool_recovery *rep = x->rep;
	size_t off = SPOOL_SEG_REC_SIZE;
	uint64_t last = 0;
	s->len = off;

	while (off < size) {
		struct spool_rec r;
		enum spool_rec_err e =
			spool_rec_frame(buf + off, size - off, s->salt, (uint32_t)(size - off), &r);
		if (e == SPOOL_RE_OK && r.seq > last) {
			rep->records++;
			int rc = apply(x, s, off, &r);
			if (rc)
				return rc;
			last = r.seq;
			if (r.seq >= x->sh->next_seq)
				x->sh->next_seq = r.seq + 1;
			off += r.size;
			s->len = off;
			continue;
		}
		const char *why =
			e == SPOOL_RE_OK ? "sequence number out of order" : spool_rec_err_names[e];
		size_t next = resync(buf, size, off + 1, s->salt, last);
		if (next == 0) {
			if (!all_zero(buf + off, size - off)) {
				rep->torn_tails++;
				note(rep,
				     "spool: %s offset %" PRIu64 ": torn record (%s), truncated",
				     s->name, off, why);
			}
			break;
		}
		rep->corrupt++;
		note(rep, "spool: %s offset %" PRIu64 ": damaged record (%s) skipped", s->name, off,
		     why);
		off = next;
	}
	return 0;
}

/* "seg-<16 lower-case hex>.dat" (or ".dat.bad"): its id; anything else is not ours. */
static int parse_name(const char *n, uint64_t *id, bool *bad)
{
	if (strncmp(n, "seg-", 4) != 0)
		return -1;
	uint64_t v = 0;
	for (int i = 4; i < 20; i++) {
		char c = n[i];
		if (c >= '0' && c <= '9')
			v = v << 4 | (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v << 4 | (uint64_t)(c - 'a' + 10);
		else
			return -1;
	}
	if (strcmp(n + 20, ".dat") == 0)
		*bad = false;
	else if (strcmp(n + 20, ".dat.bad") == 0)
		*bad = true;
	else
		return -1;
	*id = v;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Opens, checks and scans segment ID. Returns 0 or a fatal -errno. */
static int recover_segment(struct rscan *x, uint64_t id)
{
	struct spool_shard *sh = x->sh;
	struct spool_recovery *rep = x->rep;
	char name[SPOOL_SEG_NAME_MAX];
	spool_seg_name(name, id);

	int fd = openat(sh->dirfd, name, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		int e = -errno;
		snprintf(rep->error, sizeof(rep->error), "spool: open %s/%s: %s", sh->path, name,
			 strerror(-e));
		return e;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	size_t size = (size_t)st.st_size;
	const uint8_t *buf = NULL;
	if (size > 0) {
		buf = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
		if (buf == MAP_FAILED) {
			int e = -errno;
			snprintf(rep->error, sizeof(rep->error), "spool: mmap %s/%s: %s", sh->path,
				 name, strerror(-e));
			close(fd);
			return e;
		}
		madvise((void *)buf, size, MADV_SEQUENTIAL);
	}
	rep->segments++;

	struct spool_rec r;
	struct spool_seg_rec sr;
	enum spool_rec_err e = spool_rec_frame(buf, size, SPOOL_SEG_SEED, 64, &r);
	if (e == SPOOL_RE_OK && r.type != SPOOL_REC_SEGMENT)
		e = SPOOL_RE_BAD_TYPE;
	if (e == SPOOL_RE_OK)
		e = spool_rec_decode_segment(r.payload, r.len, &sr);
	if (e == SPOOL_RE_OK && (sr.id != id || sr.shard != sh->cfg.shard_id))
		e = SPOOL_RE_BAD_SEGMENT;
	if (e != SPOOL_RE_OK) {
		bool empty = size == 0 || all_zero(buf, size);
		if (buf)
			munmap((void *)buf, size);
		close(fd);
		if (empty) {
			/* a spare the crash caught before it was durable: never used */
			unlinkat(sh->dirfd, name, 0);
			return 0;
		}
		char bad[SPOOL_SEG_NAME_MAX + 4];
		snprintf(bad, sizeof(bad), "%s.bad", name);
		if (renameat(sh->dirfd, name, sh->dirfd, bad) < 0) {
			int err = -errno;
			snprintf(rep->error, sizeof(rep->error), "spool: quarantine %s: %s", name,
				 strerror(-err));
			return err;
		}
		rep->quarantined++;
		note(rep,
		     "spool: %s offset %" PRIu64 ": segment record unreadable (%s): renamed *.bad",
		     name, 0, spool_rec_err_names[e]);
		return 0;
	}

	struct spool_seg *s = spool_seg_alloc(sh);
	if (s == NULL) {
		munmap((void *)buf, size);
		close(fd);
		snprintf(rep->error, sizeof(rep->error), "spool: more than %u segments",
			 SPOOL_MAX_SEGS);
		return -E2BIG;
	}
	s->id = id;
	s->salt = sr.salt;
	s->fd = fd;
	s->phase = SEG_LIVE;
	memcpy(s->name, name, sizeof(name));
	spool_seg_insert(sh, s);

	int rc = scan(x, s, buf, size);
	munmap((void *)buf, size);
	if (rc)
		return rc;
	if (s->len < size) {
		/* the torn tail, or the preallocated space: nothing will be written there again */
		if (ftruncate(fd, (off_t)s->len) < 0) {
			int err = -errno;
			snprintf(rep->error, sizeof(rep->error), "spool: truncate %s: %s", name,
				 strerror(-err));
			return err;
		}
		rep->truncated_bytes += size - s->len;
	}
	sh->stats.spool_bytes += s->len;
	return 0;
}

/* Deletes what recovery found final, oldest first, so that pins resolve in one pass. */
static int recover_gc(struct spool_shard *sh, struct spool_recovery *rep)
{
	bool any = false;
	for (unsigned i = 0; i < sh->nseg;) {
		struct spool_seg *s = sh->order[i];
		bool pinned = false;
		for (unsigned j = 0; j < i; j++)
			if (sh->order[j]->id >= s->ref_min)
				pinned = true;
		if (s->nlive || pinned) {
			i++;
			continue;
		}
		if (unlinkat(sh->dirfd, s->name, 0) < 0) {
			int e = -errno;
			snprintf(rep->error, sizeof(rep->error), "spool: unlink %s: %s", s->name,
				 strerror(-e));
			return e;
		}
		close(s->fd);
		sh->stats.spool_bytes -= s->len;
		spool_seg_remove(sh, s);
		s->phase = SEG_FREE;
		s->fd = -1;
		rep->segments_deleted++;
		any = true;
	}
	if (any && fsync(sh->dirfd) < 0)
		return -errno;
	return 0;
}

int spool_recover(struct spool_shard *sh, struct spool_recovery *rep)
{
	struct rscan x = { .sh = sh, .rep = rep };
	uint64_t *ids = NULL;
	size_t nids = 0;
	int rc = 0;

	int dfd = dup(sh->dirfd);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (d == NULL) {
		rc = -errno;
		if (dfd >= 0)
			close(dfd);
		snprintf(rep->error, sizeof(rep->error), "spool: read %s: %s", sh->path,
			 strerror(-rc));
		return rc;
	}
	ids = calloc(SPOOL_MAX_SEGS, sizeof(*ids));
	size_t hsize = 1;
	while (hsize < 2 * (size_t)sh->cfg.max_messages)
		hsize <<= 1;
	x.hash = calloc(hsize, sizeof(*x.hash));
	x.hmask = hsize - 1;
	if (ids == NULL || x.hash == NULL) {
		rc = -ENOMEM;
		snprintf(rep->error, sizeof(rep->error), "spool: out of memory");
		goto out;
	}
	struct dirent *de;
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		uint64_t id;
		bool bad;
		if (parse_name(de->d_name, &id, &bad) < 0)
			continue;
		if (id >= sh->next_seg_id)
			sh->next_seg_id = id + 1;
		if (bad)
			continue;
		if (nids == SPOOL_MAX_SEGS) {
			rc = -E2BIG;
			snprintf(rep->error, sizeof(rep->error), "spool: more than %u segments",
				 SPOOL_MAX_SEGS);
			goto out;
		}
		ids[nids++] = id;
	}
	qsort(ids, nids, sizeof(*ids), cmp_u64);
	for (size_t i = 0; i < nids && rc == 0; i++)
		rc = recover_segment(&x, ids[i]);
	if (rc)
		goto out;

	/* final messages are done with; the rest count as live */
	for (uint32_t i = 0; i < sh->cfg.max_messages; i++) {
		struct spool_msg *m = &sh->msgs[i];
		if (!(m->flags & MSG_USED))
			continue;
		m->next = NULL;
		if (m->flags & MSG_FINAL) {
			spool_msg_free(sh, m);
		} else {
			sh->stats.messages_live++;
			sh->stats.bytes_live += m->size;
		}
	}
	rc = recover_gc(sh, rep);
	sh->stats.torn_tails += rep->torn_tails;
	sh->stats.corrupt += rep->corrupt;
	sh->stats.segments_deleted += rep->segments_deleted;
out:
	closedir(d);
	free(ids);
	free(x.hash);
	return rc;
}
