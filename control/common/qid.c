/* SPDX-License-Identifier: BSD-3-Clause */
/* Queue ids: which worker owns one (qid.h). */
#include <string.h>

#include "control/common/qid.h"

static const char b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

int ctl_qid_parse(const char *s, char *out)
{
	unsigned __int128 v = 0;

	if (s == NULL || strlen(s) != CTL_QID_LEN)
		return -1;
	for (unsigned i = 0; i < CTL_QID_LEN; i++) {
		char c = s[i] >= 'a' && s[i] <= 'z' ? (char)(s[i] - 'a' + 'A') : s[i];
		const char *p = c != '\0' ? strchr(b32, c) : NULL;

		if (p == NULL)
			return -1;
		out[i] = c;
		v = v << 5 | (unsigned)(p - b32);
	}
	out[CTL_QID_LEN] = '\0';
	/* seconds(36) | worker(12) | nonce(20) | counter(32): the worker sits 52 bits up */
	return (int)((v >> 52) & 0x7ff);
}
