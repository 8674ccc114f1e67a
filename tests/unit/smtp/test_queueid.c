/* SPDX-License-Identifier: BSD-3-Clause */
/* Queue ids: unique across workers and restarts, and sorted by time. */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "dataplane/smtp/queueid.h"

static int cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

Test(queueid, ids_are_20_crockford_base32_characters)
{
	struct smtp_qid_gen g;
	char id[SMTP_QID_LEN + 1];
	smtp_qid_init(&g, 7, 0xfeedfacecafebeefull);
	smtp_qid_next(&g, 1767225600, id);
	cr_assert_eq(strlen(id), SMTP_QID_LEN);
	cr_assert_eq(strspn(id, "0123456789ABCDEFGHJKMNPQRSTVWXYZ"), SMTP_QID_LEN, "%s", id);
}

Test(queueid, no_id_repeats_across_workers_boots_and_a_burst_in_one_second)
{
	enum {
		PER = 20000
	};
	static char ids[4 * PER][SMTP_QID_LEN + 1];
	size_t n = 0;
	const uint64_t nonces[2] = { 0x1111111111111111ull, 0x2222222222222222ull };
	for (int boot = 0; boot < 2; boot++)
		for (unsigned w = 0; w < 2; w++) {
			struct smtp_qid_gen g;
			smtp_qid_init(&g, w, nonces[boot]);
			for (int i = 0; i < PER; i++)
				smtp_qid_next(&g, 1767225600, ids[n++]);
		}
	qsort(ids, n, sizeof(ids[0]), cmp);
	for (size_t i = 1; i < n; i++)
		cr_assert_str_neq(ids[i - 1], ids[i], "duplicate id %s", ids[i]);
}

Test(queueid, later_seconds_sort_later)
{
	struct smtp_qid_gen a, b;
	char x[SMTP_QID_LEN + 1], y[SMTP_QID_LEN + 1];
	smtp_qid_init(&a, 4095, ~0ull);
	smtp_qid_init(&b, 0, 0);
	for (int i = 0; i < 1000; i++)
		smtp_qid_next(&a, 1767225600, x);
	smtp_qid_next(&b, 1767225601, y);
	cr_assert_lt(strcmp(x, y), 0, "%s < %s", x, y);
}
