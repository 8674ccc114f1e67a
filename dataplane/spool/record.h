/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The spool's on-disk record format: a pure module over byte buffers (no
 * I/O, no allocation, no EAL), so the shard, recovery, tests and fuzzers
 * share one encoder and one decoder.
 *
 * A segment file is a sequence of records, each starting at a multiple of 8:
 *
 *   0  u32 magic   "MXSR" (0x5253584d little-endian)
 *   4  u8  type    SPOOL_REC_*
 *   5  u8  flags   0
 *   6  u16 rsvd    0
 *   8  u32 len     payload octets (the header and the padding not included)
 *  12  u32 hcrc    CRC32C(seed, octets 0..12 and 16..24): the framing alone
 *  16  u64 seq     the shard's record sequence number, increasing on disk
 *  24  u32 crc     CRC32C(CRC32C(seed, payload), octets 0..24): all of it
 *  28  u32 rsvd    0
 *  32  payload, then zeros up to the next multiple of 8
 *
 * All integers are little-endian. The payload comes first in the CRC so that
 * a writer can checksum content as it streams in and seal the header last.
 * The header CRC lets recovery tell "payload damaged, framing intact: skip
 * LEN octets" from "framing lost: search for the next record". Every record
 * after a segment's first is checked with the segment's random salt as CRC
 * seed, so a record quoted inside a message's content can never pass for a
 * real one when recovery searches past damage.
 *
 * Payloads (strings are u16 length + octets; no terminators):
 *   SEGMENT  u8 version, u32 shard, u64 segment id, u32 salt  (seed 0)
 *   MESSAGE  u8 version, qid[20], i64 received (unix s), u8 family,
 *            u8 addr[16], u16 port, u8 ret, u8 body, u8 flags, str protocol,
 *            str client, str helo, str sender, str envid, str auth,
 *            [version 2: str authid,]
 *            u32 nrcpt, nrcpt x (str addr, u8 notify, str orcpt),
 *            then the content (dot-unstuffed, our Received: first) to the end
 *
 * A MESSAGE is written as version 1 unless it has an authid, so only mail
 * that carries one needs a reader of version 2; both versions are read.
 * STATE and SEGMENT payloads are version 1.
 *   STATE    u8 version, qid[20], u32 rcpt, u8 state, i64 when (unix s),
 *            i64 next attempt (unix s; deferred only), str reply
 *   PAD      anything (written by the shard's write probe; ignored)
 */
#ifndef MX_SPOOL_RECORD_H
#define MX_SPOOL_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataplane/smtp/smtp.h"

#define SPOOL_REC_MAGIC	  0x5253584du
#define SPOOL_REC_HDR	  32u
#define SPOOL_REC_ALIGN	  8u
#define SPOOL_REC_VERSION 1u
#define SPOOL_MSG_VERSION_AUTHID 2u /* a MESSAGE with an authid (RFC 4954 §5) */
#define SPOOL_SEG_SEED	  0u /* CRC seed of the SEGMENT record (the salt is inside it) */

/* Field limits the decoder enforces (RFC 5321 §4.5.3.1, RFC 3461 §4) */
#define SPOOL_PROTO_MAX	 16u   /* "UTF8SMTPSA" is the longest keyword */
#define SPOOL_HELO_MAX	 512u  /* a HELO argument fits a command line */
#define SPOOL_AUTHID_MAX 254u  /* an addr-spec: a path less its brackets (SMTP_AUTHID_MAX) */
#define SPOOL_REPLY_MAX	 2048u /* a (multi-line) reply kept for a DSN */
#define SPOOL_RCPT_LIMIT 100000u

/* Bytes of a SEGMENT record, header and padding included. */
#define SPOOL_SEG_REC_SIZE (SPOOL_REC_HDR + 24u)

enum spool_rec_type {
	SPOOL_REC_SEGMENT = 1,
	SPOOL_REC_MESSAGE = 2,
	SPOOL_REC_STATE = 3,
	SPOOL_REC_PAD = 4,
};

/*
 * Why a record is refused. Framing reasons first (spool_rec_frame), then
 * payload reasons (spool_rec_decode_*). SPOOL_RE_OK is 0.
 */
#define SPOOL_REC_ERRORS(X)                                                                        \
	X(OK)                                                                                      \
	X(SHORT_HEADER)	  /* fewer than 32 octets left */                                          \
	X(ZERO)		  /* an all-zero header: space never written */                            \
	X(BAD_MAGIC)                                                                               \
	X(BAD_HEADER_CRC) /* the framing fields are damaged */                                     \
	X(BAD_TYPE)	  /* not a SPOOL_REC_* we know */                                          \
	X(RESERVED)	  /* flags or a reserved field not zero */                                 \
	X(TOO_LONG)	  /* len over the caller's limit */                                        \
	X(SHORT_PAYLOAD)  /* payload (and padding) run past the buffer: torn */                    \
	X(BAD_CRC)	  /* header and payload do not match their CRC */                          \
	X(BAD_VERSION)	  /* payload version we do not know */                                     \
	X(TRUNCATED)	  /* a field runs past the payload */                                      \
	X(TRAILING)	  /* octets after the last field */                                        \
	X(FIELD_TOO_LONG) /* a string over its limit */                                            \
	X(BAD_QID)	  /* not 20 Crockford base32 characters */                                 \
	X(BAD_FAMILY)	  /* client address family not 0, 4 or 6 */                               \
	X(BAD_ENUM)	  /* RET, BODY, flags or NOTIFY out of range */                            \
	X(NO_RCPTS)                                                                                \
	X(TOO_MANY_RCPTS) /* over SPOOL_RCPT_LIMIT or the caller's array */                        \
	X(BAD_STATE)	  /* unknown state, or next attempt given/missing */                       \
	X(BAD_SEGMENT)	  /* segment record fields out of range */                                 \
	X(BAD_AUTHID)	  /* version 2 authid empty or not an addr-spec */

#define SPOOL_RE_ENUM_(e) SPOOL_RE_##e,
enum spool_rec_err { SPOOL_REC_ERRORS(SPOOL_RE_ENUM_) SPOOL_RE_MAX };
#undef SPOOL_RE_ENUM_

extern const char *const spool_rec_err_names[SPOOL_RE_MAX];

/* A framed record inside a buffer. */
struct spool_rec {
	enum spool_rec_type type;
	uint32_t len;	       /* payload octets */
	uint64_t seq;
	const uint8_t *payload; /* into the caller's buffer */
	size_t size;	       /* octets the record occupies: header, payload, padding */
};

/* Octets a record with a LEN-octet payload occupies on disk. */
static inline size_t spool_rec_size(size_t len)
{
	return (SPOOL_REC_HDR + len + SPOOL_REC_ALIGN - 1) & ~(size_t)(SPOOL_REC_ALIGN - 1);
}

/*
 * Writes the header of a record into HDR (32 octets): TYPE, payload length
 * LEN, sequence SEQ, and the CRCs from SEED and PAYLOAD_CRC, which is
 * spool_crc32c(SEED, payload) computed by the caller (possibly piecewise).
 */
void spool_rec_seal(uint8_t *hdr, enum spool_rec_type type, uint32_t len, uint64_t seq,
		    uint32_t seed, uint32_t payload_crc);

/*
 * Encodes a whole record with PAYLOAD[0..LEN) into OUT (CAP octets), padding
 * included. Returns spool_rec_size(LEN), or 0 when CAP is short.
 */
size_t spool_rec_encode(uint8_t *out, size_t cap, enum spool_rec_type type, uint64_t seq,
			uint32_t seed, const void *payload, size_t len);

/*
 * Checks the record at the start of BUF[0..N): framing, MAX_LEN, both CRCs
 * under SEED. Returns SPOOL_RE_OK and fills *R (payload points into BUF), or
 * the first reason it is not a record. Never reads BUF[N] or beyond. The
 * padding after the payload must be inside BUF but is not checked (a
 * sector torn inside the padding harms nothing).
 */
enum spool_rec_err spool_rec_frame(const uint8_t *buf, size_t n, uint32_t seed, uint32_t max_len,
				   struct spool_rec *r);

/* ---- the envelope: MESSAGE payloads ---- */

/*
 * What the spool keeps about a message besides its content. Strings are
 * slices: into the smtp_tx when encoding, into the payload when decoded.
 */
struct spool_env {
	char queue_id[SMTP_QID_LEN + 1];
	int64_t received;	/* wall clock at MAIL, unix seconds */
	struct smtp_peer peer;	/* family 0 when unknown */
	enum smtp_ret ret;
	enum smtp_body body;
	bool smtputf8;
	struct smtp_str protocol; /* the listener's keyword: "ESMTPS" ... (RFC 3848) */
	struct smtp_str client;	  /* "[198.51.100.7]" */
	struct smtp_str helo;
	struct smtp_str sender;	  /* empty for the null reverse-path */
	struct smtp_str envid;	  /* RFC 3461 ENVID= xtext as sent */
	struct smtp_str auth;	  /* RFC 4954 MAIL AUTH= as sent */
	struct smtp_str authid;	  /* RFC 4954 §5 submitter mailbox we vouch for (see
				   * smtp_authp_identity()); empty: unknown, AUTH=<> */
	unsigned nrcpt;
	const struct smtp_rcpt *rcpt; /* rcpt[0..nrcpt); NOTIFY and ORCPT as sent */
};

/*
 * Fills ENV from a transaction TX of the SMTP engine and the listener's
 * protocol keyword PROTOCOL (a static string). The slices point into TX,
 * which must outlive ENV. AUTHID is left empty: the session decides it.
 */
void spool_env_from_tx(struct spool_env *env, const struct smtp_tx *tx, const char *protocol);

/* Octets spool_rec_encode_env() writes for ENV (an upper bound is not enough: exact). */
size_t spool_rec_env_size(const struct spool_env *env);

/*
 * Writes ENV as the start of a MESSAGE payload into OUT (CAP octets); the
 * content follows it in the same payload. Returns the octets written, or 0
 * when CAP is short or ENV breaks a limit the decoder would refuse (a field
 * too long, no recipients, a bad queue id): the decoder accepts whatever
 * this encoder writes.
 */
size_t spool_rec_encode_env(uint8_t *out, size_t cap, const struct spool_env *env);

/*
 * Decodes a MESSAGE payload P[0..N). Fills ENV; recipients go to RCPTS[0..
 * MAX_RCPTS) and ENV->rcpt points there (RCPTS may be NULL with MAX_RCPTS 0:
 * they are checked and counted only). *CONTENT is the content. Slices point
 * into P. Returns SPOOL_RE_OK or the reason.
 */
enum spool_rec_err spool_rec_decode_msg(const uint8_t *p, size_t n, struct spool_env *env,
					struct smtp_rcpt *rcpts, unsigned max_rcpts,
					struct smtp_str *content);

/* ---- delivery state: STATE payloads ---- */

enum spool_rcpt_state {
	SPOOL_RCPT_PENDING = 0,	 /* not a record value: no state recorded yet */
	SPOOL_RCPT_DELIVERED = 1,
	SPOOL_RCPT_DEFERRED = 2, /* try again at next_attempt */
	SPOOL_RCPT_FAILED = 3,	 /* bounced (or never to be bounced: null sender) */
};

struct spool_state_rec {
	char queue_id[SMTP_QID_LEN + 1];
	uint32_t rcpt; /* index into the message's recipients */
	enum spool_rcpt_state state;
	int64_t when;	      /* unix seconds */
	int64_t next_attempt; /* DEFERRED: unix seconds; otherwise 0 */
	struct smtp_str reply; /* the next hop's reply, for the DSN; may be empty */
};

/* Largest STATE payload. */
#define SPOOL_STATE_MAX (1u + SMTP_QID_LEN + 4u + 1u + 8u + 8u + 2u + SPOOL_REPLY_MAX)

/* Writes S as a STATE payload into OUT (CAP octets): its length, or 0 (CAP short, S invalid). */
size_t spool_rec_encode_state(uint8_t *out, size_t cap, const struct spool_state_rec *s);

/* Decodes a STATE payload P[0..N) into *S (reply points into P). */
enum spool_rec_err spool_rec_decode_state(const uint8_t *p, size_t n, struct spool_state_rec *s);

/* ---- segment headers: SEGMENT payloads ---- */

struct spool_seg_rec {
	uint32_t shard;
	uint64_t id;
	uint32_t salt; /* CRC seed of every later record in the segment */
};

/* Writes the whole SEGMENT record (header included) into OUT: SPOOL_SEG_REC_SIZE, or 0. */
size_t spool_rec_encode_segment(uint8_t *out, size_t cap, const struct spool_seg_rec *s);

/* Decodes a SEGMENT payload P[0..N). */
enum spool_rec_err spool_rec_decode_segment(const uint8_t *p, size_t n, struct spool_seg_rec *s);

/* True when P is a queue id: SMTP_QID_LEN Crockford base32 characters. */
bool spool_qid_valid(const char *p);

#endif
