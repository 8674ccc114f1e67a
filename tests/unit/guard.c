/* SPDX-License-Identifier: BSD-3-Clause */
/* Guard-page placement: mmap the pages the input needs plus one PROT_NONE page after them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "guard.h"

void guard_release(struct guard *g)
{
	if (g->map)
		munmap(g->map, g->map_len);
	g->map = NULL;
	g->map_len = 0;
}

const uint8_t *guard_place(struct guard *g, const void *data, size_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t pages = (len + page - 1) / page;
	if (pages == 0)
		pages = 1;

	guard_release(g);
	g->map_len = (pages + 1) * page;
	g->map = mmap(NULL, g->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (g->map == MAP_FAILED) {
		perror("guard_place: mmap");
		abort();
	}
	uint8_t *guard = g->map + pages * page;
	if (mprotect(guard, page, PROT_NONE) != 0) {
		perror("guard_place: mprotect");
		abort();
	}
	uint8_t *p = guard - len;
	if (len)
		memcpy(p, data, len);
	return p;
}
