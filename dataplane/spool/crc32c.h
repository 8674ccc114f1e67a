/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78; RFC 3720 §12.1, the
 * checksum iSCSI and ext4 use) for spool records. No EAL: the record code and
 * its tests link it on their own. SSE4.2's crc32 instruction when the CPU has
 * it, slice-by-8 tables otherwise; both give the same values.
 */
#ifndef MX_SPOOL_CRC32C_H
#define MX_SPOOL_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/*
 * Continues CRC (0 to start) over P[0..N) and returns the new value. The
 * pre- and post-inversion are inside, so calls chain:
 * spool_crc32c(spool_crc32c(0, a, n), b, m) is the CRC of a || b.
 */
uint32_t spool_crc32c(uint32_t crc, const void *p, size_t n);

/* The table-driven path on its own, so tests can hold both paths to the same values. */
uint32_t spool_crc32c_sw(uint32_t crc, const void *p, size_t n);

#endif
