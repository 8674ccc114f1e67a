/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * SYN cookies: what the SYN negotiated comes back from the ACK, only for
 * the 4-tuple and client ISN it was made for, only for 192-256 s, and
 * guessing one is as hard as its 27-bit MAC.
 */
#include <arpa/inet.h>
#include <string.h>

#include <criterion/criterion.h>

#include "dataplane/tcp/syncookie.h"

#define T0 1000000000ull /* seconds; slot-aligned (a multiple of 64) */

static struct tcp_secret secret_from(uint8_t seed)
{
	uint8_t b[32];
	struct tcp_secret k;

	for (int i = 0; i < 32; i++)
		b[i] = (uint8_t)(seed * 29 + i * 11 + 3);
	tcp_secret_init(&k, b);
	return k;
}

/* splitmix64: a fixed sequence, so every run tests the same values. */
static uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* A SYN from 198.51.100.20:49152 to 203.0.113.10:25 with MSS 1460 and no other option. */
static struct tcp_syncookie_in syn(void)
{
	return (struct tcp_syncookie_in){
		.laddr = htonl(0xcb00710a),
		.raddr = htonl(0xc6336414),
		.lport = htons(25),
		.rport = htons(49152),
		.client_isn = 0x12345678,
		.mss = 1460,
	};
}

/* The ACK a well-behaved client sends back for SYN answered with COOKIE and TSVAL. */
static struct tcp_syncookie_check_in ack(const struct tcp_syncookie_in *s, uint32_t cookie,
					 uint32_t tsval)
{
	return (struct tcp_syncookie_check_in){
		.laddr = s->laddr,
		.raddr = s->raddr,
		.lport = s->lport,
		.rport = s->rport,
		.client_isn = s->client_isn,
		.cookie = cookie,
		.has_ts = s->has_ts,
		.tsecr = s->has_ts ? tsval : 0,
	};
}

/* Makes the cookie at MADE, checks the client's ACK at CHECKED. */
static int round_trip(const struct tcp_secret *k, const struct tcp_syncookie_in *s, uint64_t made,
		      uint64_t checked, struct tcp_syncookie_opts *o)
{
	uint32_t cookie = tcp_syncookie_make(k, s, made);
	struct tcp_syncookie_check_in a = ack(s, cookie, tcp_syncookie_tsval(s, 0x40000000));

	return tcp_syncookie_check(k, &a, checked, o);
}

Test(syncookie, round_trip_yields_each_table_mss)
{
	struct tcp_secret k = secret_from(1);

	for (int i = 0; i < TCP_SYNCOOKIE_MSS_N; i++) {
		struct tcp_syncookie_in s = syn();
		struct tcp_syncookie_opts o;

		s.mss = tcp_syncookie_mss_table[i];
		cr_assert_eq(round_trip(&k, &s, T0, T0 + 1, &o), 0, "mss %u", s.mss);
		cr_assert_eq(o.mss, s.mss);
	}
}

Test(syncookie, a_client_mss_between_entries_rounds_down_to_the_entry_below)
{
	static const struct {
		uint16_t client, got;
	} v[] = {
		{ 0, 536 },   /* no MSS option */
		{ 100, 536 }, /* below every entry: the floor any host accepts */
		{ 535, 536 },	{ 537, 536 },	{ 1219, 536 },	{ 1221, 1220 }, { 1299, 1220 },
		{ 1379, 1300 }, { 1400, 1380 }, { 1439, 1380 }, { 1448, 1440 }, { 1451, 1440 },
		{ 1459, 1452 }, { 1461, 1460 }, { 8959, 1460 }, { 9000, 8960 }, { 65535, 8960 },
	};
	struct tcp_secret k = secret_from(2);

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		struct tcp_syncookie_in s = syn();
		struct tcp_syncookie_opts o;

		s.mss = v[i].client;
		cr_assert_eq(round_trip(&k, &s, T0, T0, &o), 0);
		cr_assert_eq(o.mss, v[i].got, "client mss %u gave %u, want %u", v[i].client, o.mss,
			     v[i].got);
	}
}

Test(syncookie, mss_of_tells_what_the_cookie_will_carry)
{
	struct tcp_secret k = secret_from(16);

	for (unsigned mss = 0; mss <= 10000; mss += 37) {
		struct tcp_syncookie_in s = syn();
		struct tcp_syncookie_opts o;

		s.mss = (uint16_t)mss;
		cr_assert_eq(round_trip(&k, &s, T0, T0, &o), 0);
		cr_assert_eq(tcp_syncookie_mss_of(&s), o.mss, "client mss %u", mss);
	}
}

Test(syncookie, the_mss_table_ascends)
{
	for (int i = 1; i < TCP_SYNCOOKIE_MSS_N; i++)
		cr_assert_lt(tcp_syncookie_mss_table[i - 1], tcp_syncookie_mss_table[i]);
	cr_assert_eq(tcp_syncookie_mss_table[0], 536);
}

Test(syncookie, with_timestamps_wscale_and_sack_come_back_from_the_tsecr)
{
	struct tcp_secret k = secret_from(3);

	for (int ws = -1; ws <= 14; ws++) {
		for (int sack = 0; sack <= 1; sack++) {
			struct tcp_syncookie_in s = syn();
			struct tcp_syncookie_opts o;

			s.has_ts = true;
			s.has_ws = ws >= 0;
			s.wscale = ws >= 0 ? (uint8_t)ws : 0;
			s.sack_ok = sack;
			cr_assert_eq(round_trip(&k, &s, T0, T0 + 10, &o), 0);
			cr_assert(o.has_ts);
			cr_assert_eq(o.mss, 1460);
			cr_assert_eq(o.has_ws, ws >= 0, "ws %d", ws);
			if (ws >= 0)
				cr_assert_eq(o.wscale, ws);
			cr_assert_eq(o.sack_ok, sack, "ws %d sack %d", ws, sack);
		}
	}
}

Test(syncookie, a_window_shift_above_14_is_taken_as_14)
{
	struct tcp_secret k = secret_from(4);
	struct tcp_syncookie_in s = syn();
	struct tcp_syncookie_opts o;

	s.has_ts = true;
	s.has_ws = true;
	s.wscale = 15;
	cr_assert_eq(round_trip(&k, &s, T0, T0, &o), 0);
	cr_assert(o.has_ws);
	cr_assert_eq(o.wscale, 14);
}

Test(syncookie, without_timestamps_the_connection_gets_no_wscale_and_no_sack)
{
	struct tcp_secret k = secret_from(5);
	struct tcp_syncookie_in s = syn();
	struct tcp_syncookie_opts o;

	s.has_ws = true;
	s.wscale = 7;
	s.sack_ok = true;
	s.mss = 1440;
	cr_assert_eq(round_trip(&k, &s, T0, T0, &o), 0);
	cr_assert_not(o.has_ts);
	cr_assert_not(o.has_ws);
	cr_assert_not(o.sack_ok);
	cr_assert_eq(o.mss, 1440, "the MSS still comes back");
}

Test(syncookie, the_tsval_never_runs_ahead_of_our_timestamp_clock)
{
	struct tcp_syncookie_in s = syn();
	/* either side of a multiple of 32 (the option bits), and of the 32-bit wrap */
	static const uint32_t clocks[] = {
		0, 1, 31, 32, 33, 0x7fffffff, 0x80000000, 0xfffffff0, 0xffffffff,
	};

	s.has_ts = true;
	s.sack_ok = true;
	for (int ws = -1; ws <= 14; ws++) {
		s.has_ws = ws >= 0;
		s.wscale = ws >= 0 ? (uint8_t)ws : 0;
		for (size_t i = 0; i < sizeof(clocks) / sizeof(clocks[0]); i++) {
			uint32_t now = clocks[i], ts = tcp_syncookie_tsval(&s, now);
			int32_t ahead = (int32_t)(ts - now);

			cr_assert(ahead <= 0 && ahead > -32, "tsval %#x at clock %#x", ts, now);
			cr_assert_eq(ts & 0xf, ws >= 0 ? (uint32_t)ws : 0xfu);
			cr_assert(ts & 0x10, "sack bit");
		}
	}
}

Test(syncookie, without_timestamps_the_tsval_is_just_the_clock)
{
	struct tcp_syncookie_in s = syn();

	s.has_ws = true;
	s.wscale = 3;
	cr_assert_eq(tcp_syncookie_tsval(&s, 0xdeadbeef), 0xdeadbeef);
}

Test(syncookie, a_retransmitted_syn_in_the_same_slot_gets_the_same_cookie)
{
	struct tcp_secret k = secret_from(6);
	struct tcp_syncookie_in s = syn();

	cr_assert_eq(tcp_syncookie_make(&k, &s, T0), tcp_syncookie_make(&k, &s, T0 + 63));
}

Test(syncookie, a_cookie_for_one_connection_fails_for_another)
{
	struct tcp_secret k = secret_from(7);
	struct tcp_syncookie_in s = syn();
	struct tcp_syncookie_opts o;
	uint32_t cookie = tcp_syncookie_make(&k, &s, T0);
	struct tcp_syncookie_check_in good = ack(&s, cookie, 0), a;

	cr_assert_eq(tcp_syncookie_check(&k, &good, T0, &o), 0);

	a = good;
	a.laddr ^= htonl(1);
	cr_assert_eq(tcp_syncookie_check(&k, &a, T0, &o), -1, "local address");
	a = good;
	a.raddr ^= htonl(1);
	cr_assert_eq(tcp_syncookie_check(&k, &a, T0, &o), -1, "remote address");
	a = good;
	a.lport = htons(587);
	cr_assert_eq(tcp_syncookie_check(&k, &a, T0, &o), -1, "local port");
	a = good;
	a.rport ^= htons(1);
	cr_assert_eq(tcp_syncookie_check(&k, &a, T0, &o), -1, "remote port");
	a = good;
	a.client_isn += 1;
	cr_assert_eq(tcp_syncookie_check(&k, &a, T0, &o), -1, "client ISN");
	a = good;
	a.laddr = good.raddr;
	a.raddr = good.laddr;
	a.lport = good.rport;
	a.rport = good.lport;
	cr_assert_eq(tcp_syncookie_check(&k, &a, T0, &o), -1, "the reversed direction");
}

Test(syncookie, a_cookie_fails_under_another_secret)
{
	struct tcp_secret k1 = secret_from(8), k2 = secret_from(9);
	struct tcp_syncookie_in s = syn();
	struct tcp_syncookie_opts o;
	struct tcp_syncookie_check_in a = ack(&s, tcp_syncookie_make(&k1, &s, T0), 0);

	cr_assert_eq(tcp_syncookie_check(&k2, &a, T0, &o), -1);
}

Test(syncookie, the_cookie_key_is_the_second_half_of_the_secret)
{
	uint8_t b[32];
	struct tcp_secret k1, k2;
	struct tcp_syncookie_in s = syn();

	memset(b, 0xa5, sizeof(b));
	tcp_secret_init(&k1, b);
	b[2] ^= 1; /* the ISN key */
	tcp_secret_init(&k2, b);
	cr_assert_eq(tcp_syncookie_make(&k1, &s, T0), tcp_syncookie_make(&k2, &s, T0));
	b[30] ^= 1; /* the cookie key */
	tcp_secret_init(&k2, b);
	cr_assert_neq(tcp_syncookie_make(&k1, &s, T0), tcp_syncookie_make(&k2, &s, T0));
}

Test(syncookie, the_previous_slots_are_still_accepted)
{
	struct tcp_secret k = secret_from(10);
	struct tcp_syncookie_in s = syn();
	struct tcp_syncookie_opts o;

	/* made at the start of a slot: good for its slot and the next three */
	for (uint64_t age = 0; age < 256; age += 17)
		cr_assert_eq(round_trip(&k, &s, T0, T0 + age, &o), 0, "%llu s old",
			     (unsigned long long)age);
	cr_assert_eq(round_trip(&k, &s, T0, T0 + 255, &o), 0);
	/* made at the end of a slot: still at least 192 s */
	cr_assert_eq(round_trip(&k, &s, T0 + 63, T0 + 63 + 192, &o), 0);
	cr_assert_eq(round_trip(&k, &s, T0 + 63, T0 + 64, &o), 0, "the very next slot");
}

Test(syncookie, an_expired_cookie_fails)
{
	struct tcp_secret k = secret_from(11);
	uint64_t rs = 99;

	for (int n = 0; n < 200; n++) {
		struct tcp_syncookie_in s = syn();
		struct tcp_syncookie_opts o;
		uint64_t made = T0 + rnd(&rs) % 64;

		s.client_isn = (uint32_t)rnd(&rs);
		/* every slot age from 4 (256 s after the slot began) to 1000 */
		for (uint64_t slots = 4; slots < 1000; slots++) {
			uint64_t now = (T0 & ~63ull) + slots * 64 + rnd(&rs) % 64;

			cr_assert_eq(round_trip(&k, &s, made, now, &o), -1, "%llu slots later",
				     (unsigned long long)slots);
		}
	}
}

Test(syncookie, a_cookie_from_a_later_slot_than_now_fails)
{
	struct tcp_secret k = secret_from(12);
	struct tcp_syncookie_in s = syn();
	struct tcp_syncookie_opts o;

	cr_assert_eq(round_trip(&k, &s, T0 + 64, T0 + 63, &o), -1);
}

Test(syncookie, flipping_any_bit_of_a_cookie_makes_it_fail)
{
	struct tcp_secret k = secret_from(13);
	struct tcp_syncookie_in s = syn();
	struct tcp_syncookie_opts o;
	uint32_t cookie;

	s.mss = 536; /* a forger would like a larger MSS index */
	cookie = tcp_syncookie_make(&k, &s, T0 + 100);
	for (int bit = 0; bit < 32; bit++) {
		struct tcp_syncookie_check_in a = ack(&s, cookie ^ (1u << bit), 0);

		cr_assert_eq(tcp_syncookie_check(&k, &a, T0 + 100, &o), -1, "bit %d", bit);
	}
}

Test(syncookie, a_failed_check_leaves_the_output_untouched)
{
	struct tcp_secret k = secret_from(14);
	struct tcp_syncookie_in s = syn();
	struct tcp_syncookie_opts o, before;
	struct tcp_syncookie_check_in a = ack(&s, tcp_syncookie_make(&k, &s, T0) ^ 0x80000000u, 0);

	memset(&o, 0x77, sizeof(o));
	before = o;
	cr_assert_eq(tcp_syncookie_check(&k, &a, T0, &o), -1);
	cr_assert_eq(memcmp(&o, &before, sizeof(o)), 0);
}

/*
 * Every random 32-bit value has a valid slot field (4 of 4) and a valid MSS
 * index (8 of 8), so only the 27-bit MAC stands between a forger and a
 * connection: 10^6 tries accept 10^6 / 2^27 = 0.0075 on average. Poisson:
 * P(>= 1) = 0.74%, P(>= 3) = 7e-8. Fewer than 3 is what a 27-bit MAC gives;
 * a MAC really 20 bits wide would average 0.95 and fail this 7.5% of the time,
 * and one 16 bits wide (15.3 expected) practically never passes.
 */
Test(syncookie, forged_cookies_are_accepted_no_more_often_than_the_mac_width_allows)
{
	struct tcp_secret k = secret_from(15);
	struct tcp_syncookie_in s = syn();
	uint64_t rs = 2024;
	unsigned accepted = 0;

	for (int i = 0; i < 1000000; i++) {
		struct tcp_syncookie_opts o;
		struct tcp_syncookie_check_in a = ack(&s, (uint32_t)rnd(&rs), 0);

		a.client_isn = (uint32_t)(rnd(&rs) >> 32);
		accepted += tcp_syncookie_check(&k, &a, T0 + i % 256, &o) == 0;
	}
	cr_assert_lt(accepted, 3, "%u of 1,000,000 forged cookies accepted", accepted);
}
