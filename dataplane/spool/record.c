/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Spool records: framing with two CRC32Cs, and the MESSAGE, STATE and
 * SEGMENT payloads. Pure: bytes in, bytes or a reason out.
 */
#include <string.h>

#include "dataplane/spool/crc32c.h"
#include "dataplane/spool/record.h"

#define SPOOL_RE_NAME_(e) #e,
const char *const spool_rec_err_names[SPOOL_RE_MAX] = { SPOOL_REC_ERRORS(SPOOL_RE_NAME_) };
#undef SPOOL_RE_NAME_

/* ---- little-endian fields ---- */

static inline void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t get32(const uint8_t *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static inline uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* ---- framing ---- */

static uint32_t hdr_crc(const uint8_t *hdr, uint32_t seed)
{
	return spool_crc32c(spool_crc32c(seed, hdr, 12), hdr + 16, 8);
}

void spool_rec_seal(uint8_t *hdr, enum spool_rec_type type, uint32_t len, uint64_t seq,
		    uint32_t seed, uint32_t payload_crc)
{
	memset(hdr, 0, SPOOL_REC_HDR);
	put32(hdr, SPOOL_REC_MAGIC);
	hdr[4] = (uint8_t)type;
	put32(hdr + 8, len);
	put64(hdr + 16, seq);
	put32(hdr + 12, hdr_crc(hdr, seed));
	put32(hdr + 24, spool_crc32c(payload_crc, hdr, 24));
}

size_t spool_rec_encode(uint8_t *out, size_t cap, enum spool_rec_type type, uint64_t seq,
			uint32_t seed, const void *payload, size_t len)
{
	size_t size = spool_rec_size(len);
	if (len > UINT32_MAX || size > cap)
		return 0;
	memmove(out + SPOOL_REC_HDR, payload, len);
	memset(out + SPOOL_REC_HDR + len, 0, size - SPOOL_REC_HDR - len);
	spool_rec_seal(out, type, (uint32_t)len, seq, seed,
		       spool_crc32c(seed, out + SPOOL_REC_HDR, len));
	return size;
}

enum spool_rec_err spool_rec_frame(const uint8_t *buf, size_t n, uint32_t seed, uint32_t max_len,
				   struct spool_rec *r)
{
	static const uint8_t zero[SPOOL_REC_HDR];

	if (n < SPOOL_REC_HDR)
		return SPOOL_RE_SHORT_HEADER;
	if (memcmp(buf, zero, SPOOL_REC_HDR) == 0)
		return SPOOL_RE_ZERO;
	if (get32(buf) != SPOOL_REC_MAGIC)
		return SPOOL_RE_BAD_MAGIC;
	if (get32(buf + 12) != hdr_crc(buf, seed))
		return SPOOL_RE_BAD_HEADER_CRC;
	if (buf[4] < SPOOL_REC_SEGMENT || buf[4] > SPOOL_REC_PAD)
		return SPOOL_RE_BAD_TYPE;
	if (buf[5] != 0 || get16(buf + 6) != 0 || get32(buf + 28) != 0)
		return SPOOL_RE_RESERVED;
	uint32_t len = get32(buf + 8);
	if (len > max_len)
		return SPOOL_RE_TOO_LONG;
	size_t size = spool_rec_size(len);
	if (size > n)
		return SPOOL_RE_SHORT_PAYLOAD;
	uint32_t crc = spool_crc32c(spool_crc32c(seed, buf + SPOOL_REC_HDR, len), buf, 24);
	if (crc != get32(buf + 24))
		return SPOOL_RE_BAD_CRC;
	r->type = (enum spool_rec_type)buf[4];
	r->len = len;
	r->seq = get64(buf + 16);
	r->payload = buf + SPOOL_REC_HDR;
	r->size = size;
	return SPOOL_RE_OK;
}

/* ---- payload writer and reader ---- */

struct wr {
	uint8_t *p;
	size_t cap, len;
	bool bad; /* out of room */
};

static void w_bytes(struct wr *w, const void *p, size_t n)
{
	if (w->bad || w->cap - w->len < n) {
		w->bad = true;
		return;
	}
	if (n)
		memcpy(w->p + w->len, p, n);
	w->len += n;
}

static void w_u8(struct wr *w, uint8_t v)
{
	w_bytes(w, &v, 1);
}

static void w_u16(struct wr *w, uint16_t v)
{
	uint8_t b[2];
	put16(b, v);
	w_bytes(w, b, 2);
}

static void w_u32(struct wr *w, uint32_t v)
{
	uint8_t b[4];
	put32(b, v);
	w_bytes(w, b, 4);
}

static void w_u64(struct wr *w, uint64_t v)
{
	uint8_t b[8];
	put64(b, v);
	w_bytes(w, b, 8);
}

static void w_str(struct wr *w, struct smtp_str s)
{
	w_u16(w, (uint16_t)s.len);
	w_bytes(w, s.p, s.len);
}

struct rd {
	const uint8_t *p;
	size_t n, off;
	enum spool_rec_err err;
};

static const uint8_t *r_take(struct rd *r, size_t n)
{
	if (r->err != SPOOL_RE_OK)
		return NULL;
	if (r->n - r->off < n) {
		r->err = SPOOL_RE_TRUNCATED;
		return NULL;
	}
	const uint8_t *p = r->p + r->off;
	r->off += n;
	return p;
}

static uint8_t r_u8(struct rd *r)
{
	const uint8_t *p = r_take(r, 1);
	return p ? p[0] : 0;
}

static uint16_t r_u16(struct rd *r)
{
	const uint8_t *p = r_take(r, 2);
	return p ? get16(p) : 0;
}

static uint32_t r_u32(struct rd *r)
{
	const uint8_t *p = r_take(r, 4);
	return p ? get32(p) : 0;
}

static uint64_t r_u64(struct rd *r)
{
	const uint8_t *p = r_take(r, 8);
	return p ? get64(p) : 0;
}

static struct smtp_str r_str(struct rd *r, size_t max)
{
	struct smtp_str s = { 0 };
	size_t len = r_u16(r);
	if (r->err == SPOOL_RE_OK && len > max) {
		r->err = SPOOL_RE_FIELD_TOO_LONG;
		return s;
	}
	s.p = r_take(r, len);
	s.len = s.p ? len : 0;
	return s;
}

static void r_fail(struct rd *r, enum spool_rec_err e)
{
	if (r->err == SPOOL_RE_OK)
		r->err = e;
}

bool spool_qid_valid(const char *p)
{
	static const char b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
	for (unsigned i = 0; i < SMTP_QID_LEN; i++)
		if (p[i] == '\0' || !memchr(b32, p[i], 32))
			return false;
	return true;
}

/* ---- MESSAGE ---- */

#define NOTIFY_ALL                                                                                 \
	(SMTP_NOTIFY_NEVER | SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY)
#define ENV_F_SMTPUTF8 0x01

void spool_env_from_tx(struct spool_env *env, const struct smtp_tx *tx, const char *protocol)
{
	memset(env, 0, sizeof(*env));
	memcpy(env->queue_id, tx->queue_id, sizeof(env->queue_id));
	env->received = tx->wall_s;
	env->peer = tx->peer;
	env->ret = tx->ret;
	env->body = tx->body;
	env->smtputf8 = tx->smtputf8;
	env->protocol = (struct smtp_str){ (const uint8_t *)protocol, strlen(protocol) };
	env->client = (struct smtp_str){ (const uint8_t *)tx->client, strlen(tx->client) };
	env->helo = tx->helo;
	env->sender = tx->sender;
	env->envid = tx->envid;
	env->auth = tx->auth;
	env->nrcpt = tx->nrcpt;
	env->rcpt = tx->rcpt;
}

/* An authid is an addr-spec (RFC 4954 §5): no space or control octets; empty is "none". */
static bool authid_ok(struct smtp_str a)
{
	for (size_t i = 0; i < a.len; i++)
		if (a.p[i] <= ' ' || a.p[i] == 0x7f)
			return false;
	return true;
}

/* True when ENV is inside every limit spool_rec_decode_msg() checks. */
static bool env_ok(const struct spool_env *e)
{
	if (!spool_qid_valid(e->queue_id) || e->queue_id[SMTP_QID_LEN] != '\0')
		return false;
	if (e->peer.family != 0 && e->peer.family != 4 && e->peer.family != 6)
		return false;
	if ((unsigned)e->ret > SMTP_RET_HDRS || (unsigned)e->body > SMTP_BODY_BINARYMIME)
		return false;
	if (e->protocol.len > SPOOL_PROTO_MAX || e->client.len > SMTP_ADDR_LITERAL_MAX ||
	    e->helo.len > SPOOL_HELO_MAX || e->sender.len > SMTP_PATH_MAX ||
	    e->envid.len > SMTP_ENVID_MAX || e->auth.len > SMTP_AUTHP_MAX ||
	    e->authid.len > SPOOL_AUTHID_MAX || (e->authid.len && !e->authid.p))
		return false;
	if (!authid_ok(e->authid))
		return false;
	if (e->nrcpt == 0 || e->nrcpt > SPOOL_RCPT_LIMIT || e->rcpt == NULL)
		return false;
	for (unsigned i = 0; i < e->nrcpt; i++) {
		const struct smtp_rcpt *r = &e->rcpt[i];
		if (r->addr.len > SMTP_PATH_MAX || r->orcpt.len > SMTP_ORCPT_MAX ||
		    (r->notify & ~NOTIFY_ALL) != 0)
			return false;
	}
	return true;
}

size_t spool_rec_env_size(const struct spool_env *e)
{
	size_t n = 1 + SMTP_QID_LEN + 8 + 1 + 16 + 2 + 3;
	n += 2 + e->protocol.len + 2 + e->client.len + 2 + e->helo.len + 2 + e->sender.len;
	n += 2 + e->envid.len + 2 + e->auth.len + 4;
	if (e->authid.len)
		n += 2 + e->authid.len;
	for (unsigned i = 0; i < e->nrcpt; i++)
		n += 2 + e->rcpt[i].addr.len + 1 + 2 + e->rcpt[i].orcpt.len;
	return n;
}

size_t spool_rec_encode_env(uint8_t *out, size_t cap, const struct spool_env *e)
{
	if (!env_ok(e))
		return 0;
	struct wr w = { .p = out, .cap = cap };
	w_u8(&w, e->authid.len ? SPOOL_MSG_VERSION_AUTHID : SPOOL_REC_VERSION);
	w_bytes(&w, e->queue_id, SMTP_QID_LEN);
	w_u64(&w, (uint64_t)e->received);
	w_u8(&w, e->peer.family);
	w_bytes(&w, e->peer.addr, 16);
	w_u16(&w, e->peer.port);
	w_u8(&w, (uint8_t)e->ret);
	w_u8(&w, (uint8_t)e->body);
	w_u8(&w, e->smtputf8 ? ENV_F_SMTPUTF8 : 0);
	w_str(&w, e->protocol);
	w_str(&w, e->client);
	w_str(&w, e->helo);
	w_str(&w, e->sender);
	w_str(&w, e->envid);
	w_str(&w, e->auth);
	if (e->authid.len)
		w_str(&w, e->authid);
	w_u32(&w, e->nrcpt);
	for (unsigned i = 0; i < e->nrcpt; i++) {
		w_str(&w, e->rcpt[i].addr);
		w_u8(&w, e->rcpt[i].notify);
		w_str(&w, e->rcpt[i].orcpt);
	}
	return w.bad ? 0 : w.len;
}

enum spool_rec_err spool_rec_decode_msg(const uint8_t *p, size_t n, struct spool_env *e,
					struct smtp_rcpt *rcpts, unsigned max_rcpts,
					struct smtp_str *content)
{
	struct rd r = { .p = p, .n = n };
	memset(e, 0, sizeof(*e));

	uint8_t version = r_u8(&r);
	if (r.err == SPOOL_RE_OK && version != SPOOL_REC_VERSION &&
	    version != SPOOL_MSG_VERSION_AUTHID)
		return SPOOL_RE_BAD_VERSION;
	const uint8_t *qid = r_take(&r, SMTP_QID_LEN);
	if (qid) {
		memcpy(e->queue_id, qid, SMTP_QID_LEN);
		if (!spool_qid_valid(e->queue_id))
			r_fail(&r, SPOOL_RE_BAD_QID);
	}
	e->received = (int64_t)r_u64(&r);
	e->peer.family = r_u8(&r);
	const uint8_t *addr = r_take(&r, 16);
	if (addr)
		memcpy(e->peer.addr, addr, 16);
	e->peer.port = r_u16(&r);
	if (e->peer.family != 0 && e->peer.family != 4 && e->peer.family != 6)
		r_fail(&r, SPOOL_RE_BAD_FAMILY);
	uint8_t ret = r_u8(&r), body = r_u8(&r), flags = r_u8(&r);
	if (ret > SMTP_RET_HDRS || body > SMTP_BODY_BINARYMIME || (flags & ~ENV_F_SMTPUTF8))
		r_fail(&r, SPOOL_RE_BAD_ENUM);
	e->ret = (enum smtp_ret)ret;
	e->body = (enum smtp_body)body;
	e->smtputf8 = flags & ENV_F_SMTPUTF8;
	e->protocol = r_str(&r, SPOOL_PROTO_MAX);
	e->client = r_str(&r, SMTP_ADDR_LITERAL_MAX);
	e->helo = r_str(&r, SPOOL_HELO_MAX);
	e->sender = r_str(&r, SMTP_PATH_MAX);
	e->envid = r_str(&r, SMTP_ENVID_MAX);
	e->auth = r_str(&r, SMTP_AUTHP_MAX);
	if (version == SPOOL_MSG_VERSION_AUTHID) {
		e->authid = r_str(&r, SPOOL_AUTHID_MAX);
		/* empty is what version 1 says; the encoder never writes it as version 2 */
		if (r.err == SPOOL_RE_OK && (e->authid.len == 0 || !authid_ok(e->authid)))
			r_fail(&r, SPOOL_RE_BAD_AUTHID);
	}
	uint32_t nrcpt = r_u32(&r);
	if (r.err == SPOOL_RE_OK && nrcpt == 0)
		return SPOOL_RE_NO_RCPTS;
	if (r.err == SPOOL_RE_OK && (nrcpt > SPOOL_RCPT_LIMIT || (rcpts && nrcpt > max_rcpts)))
		return SPOOL_RE_TOO_MANY_RCPTS;
	for (uint32_t i = 0; i < nrcpt && r.err == SPOOL_RE_OK; i++) {
		struct smtp_rcpt rc;
		rc.addr = r_str(&r, SMTP_PATH_MAX);
		rc.notify = r_u8(&r);
		if (rc.notify & ~NOTIFY_ALL)
			r_fail(&r, SPOOL_RE_BAD_ENUM);
		rc.orcpt = r_str(&r, SMTP_ORCPT_MAX);
		if (rcpts)
			rcpts[i] = rc;
	}
	if (r.err != SPOOL_RE_OK)
		return r.err;
	e->nrcpt = nrcpt;
	e->rcpt = rcpts;
	content->p = p + r.off;
	content->len = n - r.off;
	return SPOOL_RE_OK;
}

/* ---- STATE ---- */

static bool state_ok(enum spool_rcpt_state st, int64_t next_attempt)
{
	switch (st) {
	case SPOOL_RCPT_DEFERRED:
		return next_attempt != 0;
	case SPOOL_RCPT_DELIVERED:
	case SPOOL_RCPT_FAILED:
		return next_attempt == 0;
	default:
		return false;
	}
}

size_t spool_rec_encode_state(uint8_t *out, size_t cap, const struct spool_state_rec *s)
{
	if (!spool_qid_valid(s->queue_id) || !state_ok(s->state, s->next_attempt) ||
	    s->reply.len > SPOOL_REPLY_MAX)
		return 0;
	struct wr w = { .p = out, .cap = cap };
	w_u8(&w, SPOOL_REC_VERSION);
	w_bytes(&w, s->queue_id, SMTP_QID_LEN);
	w_u32(&w, s->rcpt);
	w_u8(&w, (uint8_t)s->state);
	w_u64(&w, (uint64_t)s->when);
	w_u64(&w, (uint64_t)s->next_attempt);
	w_str(&w, s->reply);
	return w.bad ? 0 : w.len;
}

enum spool_rec_err spool_rec_decode_state(const uint8_t *p, size_t n, struct spool_state_rec *s)
{
	struct rd r = { .p = p, .n = n };
	memset(s, 0, sizeof(*s));

	uint8_t version = r_u8(&r);
	if (r.err == SPOOL_RE_OK && version != SPOOL_REC_VERSION)
		return SPOOL_RE_BAD_VERSION;
	const uint8_t *qid = r_take(&r, SMTP_QID_LEN);
	if (qid) {
		memcpy(s->queue_id, qid, SMTP_QID_LEN);
		if (!spool_qid_valid(s->queue_id))
			r_fail(&r, SPOOL_RE_BAD_QID);
	}
	s->rcpt = r_u32(&r);
	s->state = (enum spool_rcpt_state)r_u8(&r);
	s->when = (int64_t)r_u64(&r);
	s->next_attempt = (int64_t)r_u64(&r);
	if (r.err == SPOOL_RE_OK && !state_ok(s->state, s->next_attempt))
		r_fail(&r, SPOOL_RE_BAD_STATE);
	s->reply = r_str(&r, SPOOL_REPLY_MAX);
	if (r.err == SPOOL_RE_OK && r.off != n)
		r_fail(&r, SPOOL_RE_TRAILING);
	return r.err;
}

/* ---- SEGMENT ---- */

size_t spool_rec_encode_segment(uint8_t *out, size_t cap, const struct spool_seg_rec *s)
{
	uint8_t pl[17];
	struct wr w = { .p = pl, .cap = sizeof(pl) };
	w_u8(&w, SPOOL_REC_VERSION);
	w_u32(&w, s->shard);
	w_u64(&w, s->id);
	w_u32(&w, s->salt);
	return spool_rec_encode(out, cap, SPOOL_REC_SEGMENT, 0, SPOOL_SEG_SEED, pl, w.len);
}

enum spool_rec_err spool_rec_decode_segment(const uint8_t *p, size_t n, struct spool_seg_rec *s)
{
	struct rd r = { .p = p, .n = n };
	uint8_t version = r_u8(&r);
	if (r.err == SPOOL_RE_OK && version != SPOOL_REC_VERSION)
		return SPOOL_RE_BAD_VERSION;
	s->shard = r_u32(&r);
	s->id = r_u64(&r);
	s->salt = r_u32(&r);
	if (r.err == SPOOL_RE_OK && r.off != n)
		r_fail(&r, SPOOL_RE_TRAILING);
	if (r.err == SPOOL_RE_OK && s->id == 0)
		r_fail(&r, SPOOL_RE_BAD_SEGMENT);
	return r.err;
}
