/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The server's TLS glue (smtpd_tls.h): bytes between mbufs and the memory
 * BIOs of dataplane/tls. The copy in and out is the price of OpenSSL's
 * record layer working on flat buffers; an mbuf holds at most one piece.
 */
#include "dataplane/smtpd/smtpd_tls.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include <openssl/rand.h>
#include <rte_common.h>
#include <rte_random.h>

#include "dataplane/core/dp.h"

static uint8_t ticket_keys[TLS_TICKET_KEYS_LEN];
static pthread_once_t ticket_once = PTHREAD_ONCE_INIT;

static void ticket_keys_make(void)
{
	if (RAND_bytes(ticket_keys, sizeof(ticket_keys)) == 1)
		return;
	for (size_t i = 0; i < sizeof(ticket_keys); i += 8) { /* OpenSSL's RNG failed: DPDK's */
		uint64_t r = rte_rand();

		memcpy(ticket_keys + i, &r, RTE_MIN(sizeof(r), sizeof(ticket_keys) - i));
	}
}

const uint8_t *smtpd_tls_ticket_keys(void)
{
	pthread_once(&ticket_once, ticket_keys_make);
	return ticket_keys;
}

int smtpd_tls_input(struct tls_conn *t, struct rte_mbuf *m)
{
	int rc = 0;

	for (struct rte_mbuf *seg = m; seg != NULL && rc == 0; seg = seg->next)
		rc = tls_input(t, rte_pktmbuf_mtod(seg, const uint8_t *), seg->data_len);
	rte_pktmbuf_free(m);
	return rc;
}

int smtpd_tls_decrypt(struct tls_conn *t, struct rte_mempool *mp, struct rte_mbuf **head,
		      struct rte_mbuf **tail, uint32_t *kept)
{
	int added = 0;

	while (*kept < SMTPD_TLS_PLAIN_MAX) {
		struct rte_mbuf *m = rte_pktmbuf_alloc(mp);
		ssize_t n;

		if (m == NULL)
			return -ENOMEM;
		n = tls_read(t, rte_pktmbuf_mtod(m, uint8_t *), rte_pktmbuf_tailroom(m));
		if (n <= 0) {
			rte_pktmbuf_free(m);
			return n == 0 ? added : (int)n;
		}
		m->data_len = (uint16_t)n;
		m->pkt_len = (uint32_t)n;
		if (*tail != NULL)
			(*tail)->next = m;
		else
			*head = m;
		*tail = m;
		*kept += (uint32_t)n;
		added += (int)n;
	}
	return added;
}

struct rte_mbuf *smtpd_tls_output(struct tls_conn *t, struct smtp_session *s,
				  struct rte_mempool *mp, int *err)
{
	const uint8_t *p;
	size_t n;
	struct rte_mbuf *m;

	*err = 0;
	n = smtp_server_output(s, &p);
	if (n != 0 && tls_handshake_done(t) && tls_conn_fail(t) == TLS_OK) {
		if (tls_write(t, p, n) < 0) {
			*err = -EPROTO;
			return NULL;
		}
		smtp_server_output_done(s, n);
	}
	n = tls_output(t, &p);
	if (n == 0)
		return NULL;
	m = dp_mbuf_chain(mp, p, n);
	if (m == NULL) {
		*err = -ENOMEM;
		return NULL;
	}
	tls_output_done(t, n);
	return m;
}

int smtpd_tls_hook_starttls(void *arg, struct smtp_session *s)
{
	(void)arg;
	(void)s;
	return SMTP_R_NONE;
}
