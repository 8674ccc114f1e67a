/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Test services on the TCP stack, off unless configured: echo (RFC 862) and
 * discard (RFC 863), for interop tests and benchmarks.
 */
#ifndef MX_TCP_TESTSVC_H
#define MX_TCP_TESTSVC_H

#include <stdint.h>

#include "tcp.h"

/* Listens on the given ports (host order; 0 = not that one). Returns 0 or -errno. */
int tcp_testsvc_start(struct tcp_stack *s, uint16_t echo_port, uint16_t discard_port);

#endif
