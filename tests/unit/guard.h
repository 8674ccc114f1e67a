/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Guard-page placement for parser tests (picohttpparser's test.c): the input
 * is copied so that its last octet is the last one before a PROT_NONE page,
 * so reading even one octet past the end faults at once instead of reading
 * stale memory.
 */
#ifndef MX_TEST_GUARD_H
#define MX_TEST_GUARD_H

#include <stddef.h>
#include <stdint.h>

struct guard {
	uint8_t *map;
	size_t map_len;
};

/*
 * Places a copy of DATA[0..LEN) right before a guard page and returns it.
 * The previous placement of G is unmapped first. Aborts the test process if
 * mmap fails (that is a test environment failure, not a result).
 */
const uint8_t *guard_place(struct guard *g, const void *data, size_t len);

/* Unmaps what G holds. G may be reused. */
void guard_release(struct guard *g);

#endif
