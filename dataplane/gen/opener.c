/* SPDX-License-Identifier: BSD-3-Clause */
/* Connection slots and active opens of a load client (opener.h). */
#include "dataplane/gen/opener.h"

#include <errno.h>

#include <rte_lcore.h>
#include <rte_malloc.h>

/* Accepts only source ports whose flow hash makes this worker the owner, as steering sees it. */
static bool port_is_ours(void *arg, uint32_t laddr, uint16_t lport, uint32_t raddr,
			 uint16_t rport)
{
	const struct gen_opener *o = arg;

	return port_reply_owner(laddr, lport, raddr, rport, o->w->dp->n_workers) == o->w->id;
}

int gen_opener_init(struct gen_opener *o, struct dp_worker *w, uint32_t dst, uint16_t port,
		    unsigned n)
{
	int socket = (int)rte_lcore_to_socket_id(w->lcore_id);

	*o = (struct gen_opener){.w = w, .dst = dst, .port = port, .n = n};
	o->src = net_source_for(&w->net, dst);
	if (!o->src)
		return -EHOSTUNREACH;
	o->free = rte_malloc_socket("gen_opener", sizeof(unsigned) * (n ? n : 1), 0, socket);
	if (!o->free)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++) /* slot 0 on top */
		o->free[o->n_free++] = n - 1 - i;
	return 0;
}

void gen_opener_fini(struct gen_opener *o)
{
	rte_free(o->free);
	o->free = NULL;
}

int gen_opener_connect(struct gen_opener *o, const struct tcp_ops *ops, void *arg,
		       struct tcp_conn **c, uint64_t now)
{
	o->n_free--; /* taken before the call: callbacks may come from inside it */
	__atomic_store_n(&o->active, o->active + 1, __ATOMIC_RELAXED);
	int rc = tcp_connect(o->w->tcp, o->src, o->dst, o->port, ops, arg, port_is_ours, o, c);
	if (rc != 0) {
		o->n_free++; /* the slot is still on top of the stack */
		__atomic_store_n(&o->active, o->active - 1, __ATOMIC_RELAXED);
		o->next_tsc = now + GEN_OPEN_BACKOFF_MS * (o->w->dp->hz / 1000);
	}
	return rc;
}

void gen_opener_release(struct gen_opener *o, unsigned i)
{
	o->free[o->n_free++] = i;
	__atomic_store_n(&o->active, o->active - 1, __ATOMIC_RELAXED);
}
