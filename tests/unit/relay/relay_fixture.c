/* SPDX-License-Identifier: BSD-3-Clause */
/* The relay engine's test world: clock, scripted next hops, routes, log (relay_fixture.h). */
#include "relay_fixture.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

uint64_t rx_now;
struct timer_wheel rx_wheel;

/* ---- the log ---- */

#define LOG_KEEP 4096
static char *log_lines[LOG_KEEP];
static unsigned n_log;

static void log_write(void *arg, const char *line, size_t n)
{
	(void)arg;
	if (n_log < LOG_KEEP)
		log_lines[n_log++] = strndup(line, n);
	if (getenv("RX_TRACE"))
		fwrite(line, 1, n, stderr);
}

unsigned rx_log_lines(void)
{
	return n_log;
}

unsigned rx_log_count(const char *s)
{
	unsigned n = 0;

	for (unsigned i = 0; i < n_log; i++)
		n += strstr(log_lines[i], s) != NULL;
	return n;
}

void rx_log_dump(void)
{
	for (unsigned i = 0; i < n_log; i++)
		fputs(log_lines[i], stderr);
}

/* ---- scripted next hops ---- */

#define MAX_HOPS 8
#define MAX_CONNS 256
#define MAX_EVENTS 8192

static struct rx_hop hops[MAX_HOPS];
static unsigned n_hops;

static const char default_ehlo[] = "PIPELINING\nSIZE 10000000\n8BITMIME\nSMTPUTF8\nDSN\n"
				   "ENHANCEDSTATUSCODES";

struct rx_hop *rx_hop(uint32_t addr)
{
	for (unsigned i = 0; i < n_hops; i++)
		if (hops[i].addr == addr)
			return &hops[i];
	if (n_hops == MAX_HOPS)
		abort();
	struct rx_hop *h = &hops[n_hops++];
	memset(h, 0, sizeof(*h));
	h->addr = addr;
	h->port = 25;
	h->ehlo = default_ehlo;
	return h;
}

/* One connection as the next hop sees it. */
struct fconn {
	bool used;
	unsigned gen; /* events of an earlier use of the slot are dropped */
	bool engine_closed; /* close() came: nothing more goes to the engine */
	bool server_gone;   /* the server side ended (QUIT, reset) */
	bool counted;	    /* in hop->conns_now */
	struct relay_conn *rc;
	struct rx_hop *hop;
	bool data;	    /* reading message content */
	unsigned msgs, mails;
	char line[1024];
	size_t ll;
	uint8_t *content;
	size_t clen;
	bool rcpt_ok; /* some RCPT of the transaction was accepted */
	char cur_from[128], cur_rcpt[128];
};

static struct fconn conns[MAX_CONNS];
static unsigned block_sends, conns_peak;

unsigned rx_conns_peak(void)
{
	return conns_peak;
}

enum ev_type { EV_CONNECTED, EV_INPUT, EV_LOST, EV_WRITABLE };

struct event {
	enum ev_type type;
	struct fconn *fc;
	unsigned gen;
	int err;
	char *data;
	size_t len;
};

static struct event events[MAX_EVENTS];
static unsigned ev_head, ev_n;

static void push(enum ev_type type, struct fconn *fc, int err, const char *data, size_t len)
{
	if (ev_n == MAX_EVENTS)
		abort();
	struct event *e = &events[(ev_head + ev_n++) % MAX_EVENTS];
	*e = (struct event){ .type = type, .fc = fc, .gen = fc->gen, .err = err };
	if (len) {
		e->data = malloc(len);
		memcpy(e->data, data, len);
		e->len = len;
	}
}

static void reply(struct fconn *fc, const char *s)
{
	char buf[2048];
	int n = snprintf(buf, sizeof(buf), "%s\r\n", s);

	push(EV_INPUT, fc, 0, buf, (size_t)n);
}

static void server_end(struct fconn *fc)
{
	if (fc->counted) {
		fc->hop->conns_now--;
		fc->counted = false;
	}
	fc->server_gone = true;
}

unsigned rx_conns_open(void)
{
	unsigned n = 0;

	for (unsigned i = 0; i < MAX_CONNS; i++)
		n += conns[i].used && !conns[i].engine_closed;
	return n;
}

void rx_block_sends(unsigned n)
{
	block_sends = n;
}

static int t_open(void *arg, struct relay_conn *c, uint32_t addr, uint16_t port)
{
	struct fconn *fc = NULL;

	(void)arg;
	for (unsigned i = 0; i < MAX_CONNS && fc == NULL; i++)
		if (!conns[i].used)
			fc = &conns[i];
	if (fc == NULL)
		return -EADDRNOTAVAIL;
	struct rx_hop *h = rx_hop(addr);
	if (h->port != port)
		return -EINVAL;
	unsigned gen = fc->gen + 1;
	memset(fc, 0, sizeof(*fc));
	fc->gen = gen;
	fc->used = true;
	fc->rc = c;
	fc->hop = h;
	relay_conn_set_udata(c, fc);
	h->connects++;
	if (rx_conns_open() > conns_peak)
		conns_peak = rx_conns_open();
	switch (h->mode) {
	case RX_REFUSE:
		push(EV_CONNECTED, fc, -ECONNREFUSED, NULL, 0);
		break;
	case RX_SILENT:
		break;
	case RX_ACCEPT:
	case RX_GREET_554:
		h->conns++;
		h->conns_now++;
		fc->counted = true;
		if (h->conns_now > h->conns_max)
			h->conns_max = h->conns_now;
		push(EV_CONNECTED, fc, 0, NULL, 0);
		reply(fc, h->mode == RX_ACCEPT ? "220 mx.test ESMTP" : "554 5.3.2 no service for you");
		break;
	}
	return 0;
}

static const char *rcpt_reply(const struct rx_hop *h, const char *addr)
{
	for (unsigned i = 0; i < RX_RULES && h->rcpt[i].addr; i++)
		if (strcasecmp(h->rcpt[i].addr, addr) == 0)
			return h->rcpt[i].reply;
	return "250 2.1.5 Ok";
}

/* The address between <> of a MAIL or RCPT line, into OUT. */
static void path_of(const char *line, char *out, size_t cap)
{
	const char *a = strchr(line, '<'), *b = a ? strchr(a, '>') : NULL;
	size_t n = a && b ? (size_t)(b - a - 1) : 0;

	if (n >= cap)
		n = cap - 1;
	memcpy(out, a ? a + 1 : "", n);
	out[n] = '\0';
}

static void server_line(struct fconn *fc, const char *l, size_t n)
{
	struct rx_hop *h = fc->hop;

	if (fc->data) {
		if (n == 1 && l[0] == '.') {
			fc->data = false;
			if (h->mute_at_dot)
				return;
			if (h->reset_at_dot) { /* queued, and the reply lost with the connection */
				h->msgs++;
				server_end(fc);
				push(EV_LOST, fc, -ECONNRESET, NULL, 0);
				return;
			}
			const char *r = h->data_reply ? h->data_reply : "250 2.0.0 Ok: queued";
			reply(fc, r);
			if (r[0] == '2') {
				h->msgs++;
				fc->msgs++;
				if (fc->msgs > h->max_msgs_per_conn)
					h->max_msgs_per_conn = fc->msgs;
				free(h->content);
				h->content = fc->content;
				h->content_len = fc->clen;
				if (h->msgs <= 16) {
					snprintf(h->senders[h->msgs - 1], 128, "%s", fc->cur_from);
					snprintf(h->rcpt_to[h->msgs - 1], 128, "%s", fc->cur_rcpt);
				}
			} else {
				free(fc->content);
			}
			fc->content = NULL;
			fc->clen = 0;
			return;
		}
		if (n > 0 && l[0] == '.') { /* RFC 5321 §4.5.2 */
			l++;
			n--;
		}
		fc->content = realloc(fc->content, fc->clen + n + 2);
		memcpy(fc->content + fc->clen, l, n);
		memcpy(fc->content + fc->clen + n, "\r\n", 2);
		fc->clen += n + 2;
		return;
	}
	char cmd[8] = "";
	for (size_t i = 0; i < 4 && i < n; i++)
		cmd[i] = (char)toupper((unsigned char)l[i]);
	if (!strcmp(cmd, "EHLO")) {
		/* "250-mx.test", "250-KEYWORD"..., the last line with "250 " (RFC 5321 §4.2.1) */
		char buf[1024];
		size_t o = (size_t)snprintf(buf, sizeof(buf), "250-mx.test"), last = 0;
		const char *k = h->ehlo;
		while (k && *k) {
			const char *e = strchr(k, '\n');
			size_t kl = e ? (size_t)(e - k) : strlen(k);
			last = o + 2;
			o += (size_t)snprintf(buf + o, sizeof(buf) - o, "\r\n250-%.*s", (int)kl, k);
			k = e ? e + 1 : k + kl;
		}
		buf[last + 3] = ' ';
		reply(fc, buf);
	} else if (!strcmp(cmd, "HELO")) {
		reply(fc, "250 mx.test");
	} else if (!strcmp(cmd, "MAIL")) {
		fc->mails++;
		if (h->drop_reused && fc->mails > 1) {
			server_end(fc);
			push(EV_LOST, fc, -ECONNRESET, NULL, 0);
			return;
		}
		snprintf(h->last_mail, sizeof(h->last_mail), "%.*s", (int)n, l);
		path_of(h->last_mail, fc->cur_from, sizeof(fc->cur_from));
		fc->cur_rcpt[0] = '\0';
		fc->rcpt_ok = false;
		reply(fc, h->mail_reply ? h->mail_reply : "250 2.1.0 Ok");
	} else if (!strcmp(cmd, "RCPT")) {
		char a[256];
		snprintf(h->last_rcpt, sizeof(h->last_rcpt), "%.*s", (int)n, l);
		path_of(h->last_rcpt, a, sizeof(a));
		h->rcpts++;
		const char *r = rcpt_reply(h, a);
		if (r[0] == '2') {
			fc->rcpt_ok = true;
			if (fc->cur_rcpt[0] == '\0')
				snprintf(fc->cur_rcpt, sizeof(fc->cur_rcpt), "%.120s", a);
		}
		reply(fc, r);
	} else if (!strcmp(cmd, "DATA")) {
		if (h->mute_at_data)
			return;
		if (h->reset_at_data) {
			server_end(fc);
			push(EV_LOST, fc, -ECONNRESET, NULL, 0);
			return;
		}
		if (!fc->rcpt_ok) {
			reply(fc, "554 5.5.1 no valid recipients");
			return;
		}
		fc->data = true;
		reply(fc, "354 go ahead");
	} else if (!strcmp(cmd, "RSET")) {
		reply(fc, "250 2.0.0 Ok");
	} else if (!strcmp(cmd, "QUIT")) {
		h->quits++;
		reply(fc, "221 2.0.0 Bye");
		server_end(fc);
		push(EV_LOST, fc, 0, NULL, 0);
	} else {
		reply(fc, "502 5.5.2 what?");
	}
}

static int t_send(void *arg, struct relay_conn *c, const uint8_t *p, size_t n)
{
	struct fconn *fc = relay_conn_udata(c);

	(void)arg;
	if (fc == NULL || fc->server_gone)
		return -EPIPE;
	if (block_sends > 0) {
		block_sends--;
		push(EV_WRITABLE, fc, 0, NULL, 0);
		return -EAGAIN;
	}
	for (size_t i = 0; i < n; i++) {
		if (fc->ll < sizeof(fc->line))
			fc->line[fc->ll++] = (char)p[i];
		if (p[i] == '\n' && fc->ll >= 2 && fc->line[fc->ll - 2] == '\r') {
			server_line(fc, fc->line, fc->ll - 2);
			fc->ll = 0;
			if (fc->server_gone)
				break;
		}
	}
	return 0;
}

static void t_close(void *arg, struct relay_conn *c, bool abort)
{
	struct fconn *fc = relay_conn_udata(c);

	(void)arg;
	(void)abort;
	if (fc == NULL)
		return;
	relay_conn_set_udata(c, NULL);
	fc->engine_closed = true;
	server_end(fc);
	free(fc->content);
	fc->content = NULL;
	fc->used = false; /* its events still queued are dropped: engine_closed */
}

const struct relay_transport_ops rx_transport = {
	.open = t_open,
	.send = t_send,
	.close = t_close,
};

/* Delivers the events queued so far (not those they cause). Returns how many. */
static unsigned deliver_events(void)
{
	unsigned n = ev_n;

	for (unsigned k = 0; k < n; k++) {
		struct event e = events[ev_head];

		ev_head = (ev_head + 1) % MAX_EVENTS;
		ev_n--;
		if (e.gen == e.fc->gen && !e.fc->engine_closed && e.fc->used) {
			switch (e.type) {
			case EV_CONNECTED:
				relay_conn_connected(e.fc->rc, e.err);
				break;
			case EV_INPUT:
				relay_conn_input(e.fc->rc, (const uint8_t *)e.data, e.len);
				break;
			case EV_LOST:
				relay_conn_lost(e.fc->rc, e.err);
				break;
			case EV_WRITABLE:
				relay_conn_writable(e.fc->rc);
				break;
			}
		}
		free(e.data);
	}
	return n;
}

/* ---- the engine's config ---- */

static struct cfg_mail_route domains[2];
struct cfg_routes rx_routes;
struct cfg_relay rx_relay;

static uint64_t rx_clock(void *arg)
{
	(void)arg;
	return rx_now;
}

int64_t rx_wall(void)
{
	return RX_WALL0 + (int64_t)((rx_now - RX_T0) / RX_HZ);
}

void rx_config(struct relay_sched_config *c, const struct relay_store_ops *store, void *store_arg)
{
	memset(c, 0, sizeof(*c));
	relay_sched_config_default(c);
	c->routes = &rx_routes;
	c->relay = &rx_relay;
	c->retry = (struct retry_config){
		.first_interval = 60,
		.factor_pct = 200,
		.max_interval = 600,
		.lifetime = 3600,
		.delay_warning = 1800,
		.jitter_pct = 0,
	};
	dsn_config_default(&c->dsn);
	c->dsn.hostname = "mx.example.org";
	c->helo_name = "relay.example.org";
	c->worker_id = 3;
	c->qid_nonce = 0x1234;
	c->seed = 42;
	c->overflow_max = 1000;
	c->log_per_sec = 0;
	c->log_write = log_write;
	c->wheel = &rx_wheel;
	c->clock = rx_clock;
	c->t0 = RX_T0;
	c->wall0 = RX_WALL0;
	c->store = store;
	c->store_arg = store_arg;
	c->transport = &rx_transport;
}

void rx_setup(void)
{
	rx_now = RX_T0;
	timer_wheel_init(&rx_wheel, RX_HZ, 1000, rx_now);
	memset(hops, 0, sizeof(hops));
	n_hops = 0;
	memset(conns, 0, sizeof(conns));
	ev_head = ev_n = 0;
	block_sends = 0;
	conns_peak = 0;
	n_log = 0;
	domains[0] = (struct cfg_mail_route){
		.domain = { .name = "example.com" },
		.hops = { { .addr = HOP_A, .port = 25, .priority = 10, .weight = 1 } },
		.n_hops = 1,
	};
	domains[1] = (struct cfg_mail_route){
		.domain = { .name = "failover.example" },
		.hops = { { .addr = HOP_B1, .port = 25, .priority = 10, .weight = 1 },
			  { .addr = HOP_B2, .port = 25, .priority = 20, .weight = 1 } },
		.n_hops = 2,
	};
	rx_routes = (struct cfg_routes){
		.domains = domains,
		.n_domains = 2,
		.smarthost = { { .addr = HOP_S, .port = 25, .priority = 10, .weight = 1 } },
		.n_smarthost = 1,
	};
	rx_relay = (struct cfg_relay){
		.retry_first_s = 60,
		.retry_max_s = 600,
		.lifetime_h = 1,
		.connections_per_hop = 16,
		.messages_per_connection = 100,
		.idle_timeout_s = 5,
		.connect_timeout_s = 30,
		.pipelining = true,
		.bounce_return_kb = 256,
		.queue_max = 1000,
	};
	rx_hop(HOP_A);
	rx_hop(HOP_B1);
	rx_hop(HOP_B2);
	rx_hop(HOP_S);
}

void rx_teardown(void)
{
	for (unsigned i = 0; i < n_log; i++)
		free(log_lines[i]);
	n_log = 0;
	while (ev_n > 0) {
		free(events[ev_head].data);
		ev_head = (ev_head + 1) % MAX_EVENTS;
		ev_n--;
	}
	for (unsigned i = 0; i < MAX_CONNS; i++)
		free(conns[i].content);
	for (unsigned i = 0; i < n_hops; i++)
		free(hops[i].content);
	memset(conns, 0, sizeof(conns));
	memset(hops, 0, sizeof(hops));
	n_hops = 0;
}

void rx_run(struct relay_sched *s, uint64_t ms, unsigned (*store_step)(void))
{
	uint64_t end = rx_now + ms * 1000;

	while (rx_now < end) {
		unsigned moved = 0;

		for (unsigned round = 0; round < 64; round++) {
			unsigned k = deliver_events();
			if (store_step)
				k += store_step();
			k += s ? relay_sched_poll(s) : 0;
			moved += k;
			if (k == 0 && ev_n == 0)
				break;
		}
		uint64_t step = moved || ev_n ? 1000 : 100000;
		rx_now = rx_now + step < end ? rx_now + step : end;
		timer_wheel_run(&rx_wheel, rx_now);
	}
}
