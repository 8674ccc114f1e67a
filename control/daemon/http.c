/* SPDX-License-Identifier: BSD-3-Clause */
/* /metrics over libmicrohttpd in external epoll mode (see http.h). */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "control/common/log.h"
#include "control/daemon/http.h"
#include "control/daemon/prom.h"

struct http {
	struct MHD_Daemon *d;
	http_render_fn fn;
	void *ctx;
	uint64_t scrapes;
};

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && msg[n - 1] == '\n')
		msg[--n] = '\0';
	mx_log(CFG_LOG_WARNING, "http", "%s", msg);
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type,
			     char *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
	enum MHD_Result rc;

	if (r == NULL) {
		if (mode == MHD_RESPMEM_MUST_FREE)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	rc = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_size, void **req_cls)
{
	static const char not_found[] = "not found: mxgate-control serves /metrics\n";
	static const char bad_method[] = "only GET and HEAD\n";
	static const char index_page[] = "mxgate-control: metrics are at /metrics\n";
	struct http *h = cls;

	(void)version;
	(void)upload_data;
	if (*req_cls == NULL) {
		*req_cls = h; /* first call: headers only; answer on the next */
		return MHD_YES;
	}
	if (*upload_size != 0) {
		*upload_size = 0; /* a body we do not read */
		return MHD_YES;
	}
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", (char *)bad_method,
			     sizeof(bad_method) - 1, MHD_RESPMEM_PERSISTENT);
	if (strcmp(url, "/") == 0)
		return reply(conn, MHD_HTTP_OK, "text/plain", (char *)index_page,
			     sizeof(index_page) - 1, MHD_RESPMEM_PERSISTENT);
	if (strcmp(url, "/metrics") != 0)
		return reply(conn, MHD_HTTP_NOT_FOUND, "text/plain", (char *)not_found,
			     sizeof(not_found) - 1, MHD_RESPMEM_PERSISTENT);

	struct sbuf page = { 0 };

	h->fn(h->ctx, &page);

	size_t len = page.len;
	char *body = sbuf_take(&page); /* NULL when it ran out of memory */

	if (body == NULL) {
		static const char oom[] = "out of memory\n";

		return reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain", (char *)oom,
			     sizeof(oom) - 1, MHD_RESPMEM_PERSISTENT);
	}
	h->scrapes++;
	return reply(conn, MHD_HTTP_OK, PROM_CONTENT_TYPE, body, len, MHD_RESPMEM_MUST_FREE);
}

struct http *http_new(uint32_t addr, uint16_t port, http_render_fn fn, void *ctx)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = addr,
				  .sin_port = port };
	struct http *h = calloc(1, sizeof(*h));
	char a[INET_ADDRSTRLEN];

	if (h == NULL)
		return NULL;
	inet_ntop(AF_INET, &sa.sin_addr, a, sizeof(a));
	if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) != MHD_YES) {
		mx_log(CFG_LOG_ERROR, "http", "this libmicrohttpd has no epoll support");
		free(h);
		return NULL;
	}
	h->fn = fn;
	h->ctx = ctx;
	h->d = MHD_start_daemon(
		MHD_USE_EPOLL | MHD_USE_ERROR_LOG, ntohs(port), NULL, NULL, on_request, h,
		MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_SOCK_ADDR,
		(struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_MAX_CONNS,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_CONN_TIMEOUT_S, MHD_OPTION_END);
	if (h->d == NULL) {
		mx_log(CFG_LOG_ERROR, "http", "cannot serve /metrics on %s:%u (see above)", a,
		       ntohs(port));
		free(h);
		return NULL;
	}
	mx_log(CFG_LOG_INFO, "http_up", "serving /metrics on http://%s:%u/metrics", a, ntohs(port));
	return h;
}

void http_free(struct http *h)
{
	if (h == NULL)
		return;
	MHD_stop_daemon(h->d);
	free(h);
}

int http_fd(const struct http *h)
{
	const union MHD_DaemonInfo *i = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);

	return i != NULL ? i->epoll_fd : -1;
}

int http_timeout_ms(const struct http *h)
{
	MHD_UNSIGNED_LONG_LONG to;

	if (MHD_get_timeout(h->d, &to) != MHD_YES)
		return -1;
	return to > 60000 ? 60000 : (int)to;
}

void http_run(struct http *h)
{
	MHD_run(h->d);
}

uint64_t http_scrapes(const struct http *h)
{
	return h->scrapes;
}
