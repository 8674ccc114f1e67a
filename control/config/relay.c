/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The "spool:" and "relay:" sections (relay.h). Defaults follow Postfix
 * where it has the same knob (minimal_backoff_time, maximal_backoff_time,
 * maximal_queue_lifetime), so an operator's expectations carry over.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <cyaml/cyaml.h>

#include "control/config/config.h"
#include "control/config/config_priv.h"

#define MAX_HELO_LEN 253 /* RFC 1035 §2.3.4 */

/* clang-format off */
const cyaml_schema_field_t cfg_spool_fields[] = {
	CFG_STR("directory", struct cfg_raw_spool, directory),
	CFG_STR("commit_window_us", struct cfg_raw_spool, commit_window_us),
	CFG_STR("commit_bytes_kb", struct cfg_raw_spool, commit_bytes_kb),
	CFG_STR("size_limit_mb", struct cfg_raw_spool, size_limit_mb),
	CFG_STR("segment_mb", struct cfg_raw_spool, segment_mb),
	CFG_STR("staging_mb", struct cfg_raw_spool, staging_mb),
	CFG_STR("max_messages", struct cfg_raw_spool, max_messages),
	CFG_STR("probe_interval_ms", struct cfg_raw_spool, probe_interval_ms),
	CFG_STR("high_water_percent", struct cfg_raw_spool, high_water_percent),
	CFG_STR("commit_latency_ms", struct cfg_raw_spool, commit_latency_ms),
	CYAML_FIELD_END
};

const cyaml_schema_field_t cfg_relay_fields[] = {
	CFG_STR("helo_name", struct cfg_raw_relay, helo_name),
	CFG_STR("retry_first_s", struct cfg_raw_relay, retry_first_s),
	CFG_STR("retry_max_s", struct cfg_raw_relay, retry_max_s),
	CFG_STR("lifetime_h", struct cfg_raw_relay, lifetime_h),
	CFG_STR("delay_warning_h", struct cfg_raw_relay, delay_warning_h),
	CFG_STR("connections_per_hop", struct cfg_raw_relay, connections_per_hop),
	CFG_STR("messages_per_connection", struct cfg_raw_relay, messages_per_connection),
	CFG_STR("idle_timeout_s", struct cfg_raw_relay, idle_timeout_s),
	CFG_STR("connect_timeout_s", struct cfg_raw_relay, connect_timeout_s),
	CFG_STR("pipelining", struct cfg_raw_relay, pipelining),
	CFG_STR("chunking", struct cfg_raw_relay, chunking),
	CFG_STR("send_8bit", struct cfg_raw_relay, send_8bit),
	CFG_STR("bounce_return_kb", struct cfg_raw_relay, bounce_return_kb),
	CFG_STR("queue_max", struct cfg_raw_relay, queue_max),
	CFG_STR("command_timeout_s", struct cfg_raw_relay, command_timeout_s),
	CFG_STR("data_block_timeout_s", struct cfg_raw_relay, data_block_timeout_s),
	CFG_STR("data_end_timeout_s", struct cfg_raw_relay, data_end_timeout_s),
	CYAML_FIELD_END
};
/* clang-format on */

static bool host_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > MAX_HELO_LEN)
		return false;
	for (const char *p = s; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'))
			return false;
	return true;
}

void cfg_spool_build(struct cfg_ctx *x, const struct cfg_raw_spool *raw, struct cfg_spool *s)
{
	static const struct cfg_raw_spool none;
	const char *b = "spool";
	char path[64];

	if (raw == NULL)
		raw = &none;
	if (cfg_get_str(x, cfg_pathf(path, sizeof(path), "%s.directory", b), raw->directory,
			"/var/spool/mxgate", &s->directory) == 0 &&
	    s->directory != NULL && s->directory[0] != '/')
		cfg_error(x, cfg_pos_value(x, path), path,
			  "'%s' is not an absolute path; a daemon's working directory is not "
			  "the operator's",
			  s->directory);
	/* 0: commit each message on its own (no batching): for tests of latency */
	cfg_get_uint(x, cfg_pathf(path, sizeof(path), "%s.commit_window_us", b),
		     raw->commit_window_us, 0, 1000000, 200, &s->commit_window_us);
	cfg_get_uint(x, cfg_pathf(path, sizeof(path), "%s.commit_bytes_kb", b), raw->commit_bytes_kb,
		     4, 65536, 1024, &s->commit_bytes_kb);
	cfg_get_uint(x, cfg_pathf(path, sizeof(path), "%s.size_limit_mb", b), raw->size_limit_mb, 0,
		     1u << 30, 0, &s->size_limit_mb);
	cfg_get_uint(x, cfg_pathf(path, sizeof(path), "%s.segment_mb", b), raw->segment_mb, 1, 4096,
		     64, &s->segment_mb);
	cfg_get_uint(x, cfg_pathf(path, sizeof(path), "%s.staging_mb", b), raw->staging_mb, 1, 4094,
		     32, &s->staging_mb);
	if (s->segment_mb <= s->staging_mb)
		cfg_error(x, cfg_pos_value(x, "spool.segment_mb"), "spool.segment_mb",
			  "%u MiB must be more than spool.staging_mb (%u MiB): a segment takes a "
			  "whole staged batch",
			  s->segment_mb, s->staging_mb);
	cfg_get_uint(x, cfg_pathf(path, sizeof(path), "%s.max_messages", b), raw->max_messages, 16,
		     1u << 24, 262144, &s->max_messages);
	cfg_get_uint(x, cfg_pathf(path, sizeof(path), "%s.probe_interval_ms", b),
		     raw->probe_interval_ms, 10, 60000, 1000, &s->probe_interval_ms);
	cfg_get_uint(x, cfg_pathf(path, sizeof(path), "%s.high_water_percent", b),
		     raw->high_water_percent, 1, 100, 90, &s->high_water_percent);
	cfg_get_uint(x, cfg_pathf(path, sizeof(path), "%s.commit_latency_ms", b),
		     raw->commit_latency_ms, 1, 60000, 200, &s->commit_latency_ms);
	if (s->size_limit_mb != 0 && s->size_limit_mb < 2 * s->segment_mb)
		cfg_error(x, cfg_pos_value(x, "spool.size_limit_mb"), "spool.size_limit_mb",
			  "%u MiB holds fewer than two %u MiB segments (spool.segment_mb)",
			  s->size_limit_mb, s->segment_mb);
}

void cfg_relay_build(struct cfg_ctx *x, const struct cfg_raw_relay *raw, struct cfg_relay *r)
{
	static const struct cfg_raw_relay none;
	const char *b = "relay";
	char path[64];

	if (raw == NULL)
		raw = &none;
	if (cfg_get_str(x, cfg_pathf(path, sizeof(path), "%s.helo_name", b), raw->helo_name, NULL,
			&r->helo_name) == 0 &&
	    r->helo_name != NULL && !host_name_ok(r->helo_name))
		cfg_error(x, cfg_pos_value(x, path), path,
			  "'%s' is not a host name (letters, digits, '-' and '.')", r->helo_name);
	cfg_get_uint(x, cfg_pathf(path, sizeof(path), "%s.retry_first_s", b), raw->retry_first_s, 1,
		     86400, 300, &r->retry_first_s);
	cfg_get_uint(x, cfg_pathf(path, sizeof(path), "%s.retry_max_s", b), raw->retry_max_s, 1,
		     7 * 86400, 4000, &r->retry_max_s);
	if (r->retry_max_s < r->retry_first_s)
		cfg_error(x, cfg_pos_value(x, "relay.retry_max_s"), "relay.retry_max_s",
			  "%u is below relay.retry_first_s (%u)", r->retry_max_s, r->retry_first_s);
	cfg_get_uint(x, cfg_pathf(path, sizeof(path), "%s.lifetime_h", b), raw->lifetime_h, 1,
		     100 * 24, 120, &r->lifetime_h);
	cfg_get_uint(x, cfg_pathf(path, sizeof(path), "%s.delay_warning_h", b), raw->delay_warning_h,
		     0, 100 * 24, 0, &r->delay_warning_h);
	if (r->delay_warning_h >= r->lifetime_h && r->delay_warning_h != 0)
		cfg_error(x, cfg_pos_value(x, "relay.delay_warning_h"), "relay.delay_warning_h",
			  "%u h is not before the bounce at relay.lifetime_h (%u h)",
			  r->delay_warning_h, r->lifetime_h);
	cfg_get_uint(x, cfg_pathf(path, sizeof(path), "%s.connections_per_hop", b),
		     raw->connections_per_hop, 1, 4096, 16, &r->connections_per_hop);
	cfg_get_uint(x, cfg_pathf(path, sizeof(path), "%s.messages_per_connection", b),
		     raw->messages_per_connection, 1, 1000000, 100, &r->messages_per_connection);
	cfg_get_uint(x, cfg_pathf(path, sizeof(path), "%s.idle_timeout_s", b), raw->idle_timeout_s,
		     0, 3600, 5, &r->idle_timeout_s);
	cfg_get_uint(x, cfg_pathf(path, sizeof(path), "%s.connect_timeout_s", b),
		     raw->connect_timeout_s, 1, 600, 30, &r->connect_timeout_s);
	cfg_get_bool(x, cfg_pathf(path, sizeof(path), "%s.pipelining", b), raw->pipelining, true,
		     &r->pipelining);
	cfg_get_bool(x, cfg_pathf(path, sizeof(path), "%s.chunking", b), raw->chunking, false,
		     &r->chunking);
	cfg_get_bool(x, cfg_pathf(path, sizeof(path), "%s.send_8bit", b), raw->send_8bit, false,
		     &r->send_8bit);
	cfg_get_uint(x, cfg_pathf(path, sizeof(path), "%s.bounce_return_kb", b),
		     raw->bounce_return_kb, 0, 1u << 20, 256, &r->bounce_return_kb);
	cfg_get_uint(x, cfg_pathf(path, sizeof(path), "%s.queue_max", b), raw->queue_max, 1,
		     1u << 24, 100000, &r->queue_max);
	/*
	 * RFC 5321 §4.5.3.2 gives these as minimums (5, 3 and 10 minutes):
	 * the defaults. Shorter ones are the operator's call -- a cut-through
	 * client waits for them (its own patience is 10 minutes at most).
	 */
	cfg_get_uint(x, cfg_pathf(path, sizeof(path), "%s.command_timeout_s", b),
		     raw->command_timeout_s, 1, 3600, 300, &r->command_timeout_s);
	cfg_get_uint(x, cfg_pathf(path, sizeof(path), "%s.data_block_timeout_s", b),
		     raw->data_block_timeout_s, 1, 3600, 180, &r->data_block_timeout_s);
	cfg_get_uint(x, cfg_pathf(path, sizeof(path), "%s.data_end_timeout_s", b),
		     raw->data_end_timeout_s, 1, 3600, 600, &r->data_end_timeout_s);
}

void cfg_spool_free(struct cfg_spool *s)
{
	free(s->directory);
	memset(s, 0, sizeof(*s));
}

void cfg_relay_free(struct cfg_relay *r)
{
	free(r->helo_name);
	memset(r, 0, sizeof(*r));
}

/*
 * Rules across sections, once listeners and the spool are built: a store
 * listener's largest message must fit the spool's staging memory (the
 * spool keeps 32 KiB of it for records and a Received: header).
 */
void cfg_store_check(struct cfg_ctx *x, const struct cfg *c)
{
	char path[64];

	for (unsigned i = 0; i < c->n_listeners; i++) {
		const struct cfg_listener *l = &c->listeners[i];
		uint64_t need = (uint64_t)l->limits.max_message_size + (64u << 10);

		if (l->ack != CFG_ACK_STORE || need <= (uint64_t)c->spool.staging_mb << 20)
			continue;
		cfg_pathf(path, sizeof(path), "listeners[%u].limits.max_message_size", i);
		cfg_error(x, cfg_pos_value(x, path), path,
			  "%u octets do not fit spool.staging_mb (%u MiB) with room to spare; "
			  "raise spool.staging_mb to at least %" PRIu64,
			  l->limits.max_message_size, c->spool.staging_mb, (need >> 20) + 1);
	}
}
