/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Queue ids as the operator types them (dataplane/smtp/queueid.h): 20
 * characters of Crockford base32 holding seconds (36 bits), the worker (12),
 * a boot nonce (20) and a counter (32). The worker field says which worker
 * owns the message: its low 11 bits (the relay's own DSNs set the 12th).
 * Pure: mxgatectl checks what it was given, mxgate-control routes by it.
 */
#ifndef MX_CTL_QID_H
#define MX_CTL_QID_H

#define CTL_QID_LEN 20

/*
 * Checks S as a queue id; OUT (CTL_QID_LEN + 1 bytes) receives it upper-cased.
 * Returns the owning worker (>= 0), or -1 when S is not a queue id.
 */
int ctl_qid_parse(const char *s, char *out);

#endif
