/* SPDX-License-Identifier: BSD-3-Clause */
/* Copying bytes into mbufs for the applications on a worker's TCP stack (dp.h). */
#include <string.h>

#include <rte_mbuf.h>

#include "dataplane/core/dp.h"

struct rte_mbuf *dp_mbuf_chain(struct rte_mempool *pool, const void *src, size_t n)
{
	const uint8_t *p = src;
	struct rte_mbuf *head = NULL, *tail = NULL;

	while (n > 0) {
		struct rte_mbuf *m = rte_pktmbuf_alloc(pool);

		if (m == NULL) {
			rte_pktmbuf_free(head);
			return NULL;
		}
		uint16_t k = (uint16_t)RTE_MIN(n, (size_t)rte_pktmbuf_tailroom(m));

		memcpy(rte_pktmbuf_mtod(m, uint8_t *), p, k);
		m->data_len = k;
		m->pkt_len = k;
		if (head == NULL) {
			head = m;
		} else {
			tail->next = m;
			head->nb_segs++;
			head->pkt_len += k;
		}
		tail = m;
		p += k;
		n -= k;
	}
	return head;
}
