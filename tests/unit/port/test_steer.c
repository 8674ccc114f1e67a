/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Flow ownership: the symmetric hash sends both directions of a flow to one
 * worker, and every worker owns a share of flows.
 */
#include <stdlib.h>

#include <criterion/criterion.h>

#include "dataplane/port/port.h"

static struct rte_ipv4_tuple tuple(uint32_t s, uint32_t d, uint16_t sp, uint16_t dp)
{
	struct rte_ipv4_tuple t = {0};
	t.src_addr = s;
	t.dst_addr = d;
	t.sport = sp;
	t.dport = dp;
	return t;
}

Test(steer, both_directions_of_a_flow_hash_alike)
{
	srand(7);
	for (int i = 0; i < 10000; i++) {
		uint32_t a = 0xc6336400u | (uint32_t)(rand() & 0xff); /* 198.51.100.x */
		uint32_t b = 0xcb007100u | (uint32_t)(rand() & 0xff); /* 203.0.113.x */
		uint16_t pa = (uint16_t)rand(), pb = (uint16_t)rand();
		struct rte_ipv4_tuple fwd = tuple(a, b, pa, pb), rev = tuple(b, a, pb, pa);
		cr_assert_eq(port_flow_hash(&fwd), port_flow_hash(&rev), "flow %d", i);
	}
}

Test(steer, every_worker_owns_a_fair_share_of_flows)
{
	for (unsigned nw = 1; nw <= 4; nw++) {
		unsigned owned[4] = {0};
		for (uint16_t sport = 1024; sport < 1024 + 4000; sport++) {
			struct rte_ipv4_tuple t = tuple(0xc6336401u, 0xc6336402u, sport, 25);
			unsigned o = port_flow_owner(port_flow_hash(&t), nw);
			cr_assert_lt(o, nw);
			owned[o]++;
		}
		for (unsigned w = 0; w < nw; w++)
			cr_assert_gt(owned[w], 4000 / nw / 2, "%u workers: worker %u owns %u", nw, w,
				     owned[w]);
	}
}

/* What an active open checks (port_reply_owner) is who receives the replies: the worker
 * that owns the flow as the replies arrive, in host order, their source first. */
Test(steer, the_reply_owner_of_an_active_open_is_the_owner_of_its_replies)
{
	const uint32_t laddr = 0xc6336402u, raddr = 0xcb007119u; /* us, the next hop */

	for (unsigned nw = 1; nw <= 4; nw++)
		for (uint16_t sport = 32768; sport < 32768 + 2000; sport++) {
			struct rte_ipv4_tuple reply = tuple(raddr, laddr, 25, sport);
			unsigned want = port_flow_owner(port_flow_hash(&reply), nw);

			cr_assert_eq(port_reply_owner(rte_cpu_to_be_32(laddr), rte_cpu_to_be_16(sport),
						      rte_cpu_to_be_32(raddr), rte_cpu_to_be_16(25),
						      nw),
				     want, "%u workers, source port %u", nw, sport);
		}
}

Test(steer, device_name_is_the_part_before_the_arguments)
{
	char out[32];
	port_device_name("net_tap0,iface=mxg0", out, sizeof(out));
	cr_assert_str_eq(out, "net_tap0");
	port_device_name("0000:01:00.0", out, sizeof(out));
	cr_assert_str_eq(out, "0000:01:00.0");
	port_device_name("net_memif_with_a_long_name,role=server", out, 8);
	cr_assert_str_eq(out, "net_mem");
}

Test(steer, virtual_devices_get_software_steering)
{
	cr_assert(port_driver_cannot_steer("net_tap"));
	cr_assert(port_driver_cannot_steer("net_memif"));
	cr_assert(port_driver_cannot_steer("net_ring"));
	cr_assert(port_driver_cannot_steer("net_af_packet"));
	cr_assert_not(port_driver_cannot_steer("net_ice"));
	cr_assert_not(port_driver_cannot_steer("net_mlx5"));
}
