/* SPDX-License-Identifier: BSD-3-Clause */
/* mxgatectl sessions and queue tables (see render_ops.h). */
#include <stdio.h>
#include <string.h>

#include "control/ctl/render_ops.h"

static const char *str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s != NULL ? s : "";
}

static long long num(json_t *o, const char *key)
{
	return (long long)json_integer_value(json_object_get(o, key));
}

/* "4h05m", "2m07s", "31s": an age or a wait at a glance. */
static const char *span(char *buf, size_t cap, long long s)
{
	if (s < 0)
		s = 0;
	if (s >= 86400)
		snprintf(buf, cap, "%lldd%02lldh", s / 86400, s / 3600 % 24);
	else if (s >= 3600)
		snprintf(buf, cap, "%lldh%02lldm", s / 3600, s / 60 % 60);
	else if (s >= 60)
		snprintf(buf, cap, "%lldm%02llds", s / 60, s % 60);
	else
		snprintf(buf, cap, "%llds", s);
	return buf;
}

static void cut_note(struct sbuf *b, json_t *r, const char *what)
{
	if (json_is_true(json_object_get(r, "truncated")))
		sbuf_printf(b, "(the list stops at %lld %s: more exist; use --json for a script)\n",
			    num(r, "limit"), what);
}

void render_sessions(struct sbuf *b, json_t *r)
{
	json_t *all = json_object_get(r, "sessions"), *s;
	char age[32];
	size_t i;

	if (json_array_size(all) == 0) {
		sbuf_printf(b, "no SMTP sessions open\n");
		return;
	}
	sbuf_printf(b, "%-3s %-8s %-21s %-16s %-9s %7s %10s %10s %4s  %s\n", "W", "ID", "CLIENT",
		    "LISTENER", "STATE", "AGE", "BYTES IN", "BYTES OUT", "MSGS", "HELO");
	json_array_foreach(all, i, s) {
		sbuf_printf(b, "%-3lld %-8lld %-21s %-16s %-9s %7s %10lld %10lld %4lld  %s%s%s\n",
			    num(s, "worker"), num(s, "id"), str(s, "client"), str(s, "listener"),
			    str(s, "state"), span(age, sizeof(age), num(s, "age_ms") / 1000),
			    num(s, "bytes_in"), num(s, "bytes_out"), num(s, "messages"),
			    str(s, "helo")[0] ? str(s, "helo") : "-", num(s, "tls") ? " [tls]" : "",
			    num(s, "auth") ? " [auth]" : "");
	}
	sbuf_printf(b, "%zu session%s\n", json_array_size(all), json_array_size(all) == 1 ? "" : "s");
	cut_note(b, r, "sessions");
}

/* The sender as shown: "<>" for the null sender, "?" when not read since the start. */
static const char *sender(json_t *m, char *buf, size_t cap)
{
	if (!num(m, "envelope_known"))
		return "?";
	snprintf(buf, cap, "<%s>", str(m, "sender"));
	return buf;
}

static const char *next_try(json_t *m, char *buf, size_t cap)
{
	const char *st = str(m, "state");

	if (strcmp(st, "held") == 0)
		return "held";
	if (strcmp(st, "deferred") == 0) {
		char in[32];

		snprintf(buf, cap, "in %s", span(in, sizeof(in), num(m, "next_in_s")));
		return buf;
	}
	return "now";
}

void render_queue_list(struct sbuf *b, json_t *r)
{
	json_t *all = json_object_get(r, "messages"), *m;
	char age[32], nx[40], from[160];
	size_t i;

	if (json_array_size(all) == 0) {
		sbuf_printf(b, "the queue is empty\n");
		return;
	}
	sbuf_printf(b, "%-20s %-3s %-10s %7s %9s %-9s %-7s %-28s %s\n", "ID", "W", "STATE", "AGE",
		    "SIZE", "NEXT", "RCPTS", "SENDER", "LAST REPLY");
	json_array_foreach(all, i, m) {
		char rc[24];

		snprintf(rc, sizeof(rc), "%lld/%lld", num(m, "pending"), num(m, "rcpts"));
		sbuf_printf(b, "%-20s %-3lld %-10s %7s %9lld %-9s %-7s %-28s %s\n", str(m, "id"),
			    num(m, "worker"), str(m, "state"),
			    span(age, sizeof(age), num(m, "age_s")), num(m, "size"),
			    next_try(m, nx, sizeof(nx)), rc, sender(m, from, sizeof(from)),
			    str(m, "last_reply")[0] ? str(m, "last_reply") : "-");
	}
	sbuf_printf(b, "%zu message%s (RCPTS: not final/all; SENDER ?: not read since mxgate-dp "
		       "started)\n",
		    json_array_size(all), json_array_size(all) == 1 ? "" : "s");
	cut_note(b, r, "messages");
}

void render_queue_show(struct sbuf *b, json_t *r)
{
	json_t *m = json_object_get(r, "message"), *rc;
	json_t *all = json_object_get(r, "recipients");
	char age[32], nx[40], from[160];
	size_t i;

	sbuf_printf(b, "%-14s %s\n", "id", str(m, "id"));
	sbuf_printf(b, "%-14s %lld\n", "worker", num(m, "worker"));
	sbuf_printf(b, "%-14s %s%s\n", "state", str(m, "state"),
		    num(m, "held") ? " (no delivery until: mxgatectl queue release ID)" : "");
	sbuf_printf(b, "%-14s %s\n", "age", span(age, sizeof(age), num(m, "age_s")));
	sbuf_printf(b, "%-14s %lld octets\n", "size", num(m, "size"));
	sbuf_printf(b, "%-14s %s\n", "sender", sender(m, from, sizeof(from)));
	sbuf_printf(b, "%-14s %lld, %lld not final\n", "recipients", num(m, "rcpts"),
		    num(m, "pending"));
	sbuf_printf(b, "%-14s %s\n", "next attempt", next_try(m, nx, sizeof(nx)));
	sbuf_printf(b, "%-14s %lld since mxgate-dp started\n", "attempts", num(m, "attempts"));
	sbuf_printf(b, "%-14s %s\n", "last reply",
		    str(m, "last_reply")[0] ? str(m, "last_reply") : "-");
	if (json_array_size(all) == 0)
		return;
	sbuf_printf(b, "\n%-5s %-40s %-10s %s\n", "RCPT", "ADDRESS", "STATE", "LAST REPLY");
	json_array_foreach(all, i, rc) {
		sbuf_printf(b, "%-5lld %-40s %-10s %s\n", num(rc, "index"),
			    str(rc, "addr")[0] ? str(rc, "addr") : "?", str(rc, "state"),
			    str(rc, "reply")[0] ? str(rc, "reply") : "-");
	}
	if (!num(m, "envelope_known"))
		sbuf_printf(b, "(addresses show once mxgate-dp has read the message back since it "
			       "started: at its next attempt)\n");
	if (json_is_true(json_object_get(r, "truncated")))
		sbuf_printf(b, "(more recipients exist: use --json)\n");
}

void render_queue_done(struct sbuf *b, json_t *r)
{
	json_t *f = json_object_get(r, "flushed");

	if (f != NULL) {
		long long n = json_integer_value(f);

		sbuf_printf(b, "%lld deferred message%s will be tried now\n", n, n == 1 ? "" : "s");
		return;
	}
	sbuf_printf(b, "%s: %s\n", str(r, "id"), str(r, "done"));
}
