#include "autoconf.h"

#include "admin/metrics.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "core/msg.h"
#include "net/listener.h"
#include "web/http.h"

#define CLIENTS_MAX 16
#define TIMEOUT_MS 10000 /* for the request, and for reading the answer */
#define SOCKETS_MAX 4

const char *const metrics_reject_names[REJECT_COUNT] = {
	[REJECT_FULL] = "full",
	[REJECT_PER_IP] = "per_ip",
	[REJECT_RATE] = "rate",
	[REJECT_BANNED] = "banned",
};

/* ---- the text format ---------------------------------------------------------- */

static void family(FILE *out, const char *name, const char *type, const char *help)
{
	fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample(FILE *out, const char *name, uint64_t value)
{
	fprintf(out, "%s %llu\n", name, (unsigned long long)value);
}

static const char *const proto_labels[PROTO_COUNT] = {
	[PROTO_LINE] = "line", [PROTO_IRC] = "irc", [PROTO_WEB] = "web",
};

void metrics_render(const struct metrics_snapshot *snap, FILE *out)
{
	const struct stats_sum *sum = &snap->sum;

	family(out, "chatd_info", "gauge", "The chatd version that runs.");
	fprintf(out, "chatd_info{version=\"%s\"} 1\n", PACKAGE_VERSION);
	family(out, "chatd_start_time_seconds", "gauge", "When chatd started, in seconds since the epoch.");
	sample(out, "chatd_start_time_seconds", (uint64_t)snap->started);

	family(out, "chatd_connections", "gauge",
	       "Connections open, by the protocol of the port they came in on and its transport.");
	for (int p = 0; p < PROTO_COUNT; p++)
		for (int t = 0; t < 2; t++)
			fprintf(out, "chatd_connections{protocol=\"%s\",transport=\"%s\"} %llu\n",
				proto_labels[p], t ? "tls" : "tcp", (unsigned long long)sum->open[p][t]);
	family(out, "chatd_connections_accepted_total", "counter",
	       "Connections taken, by protocol and transport.");
	for (int p = 0; p < PROTO_COUNT; p++)
		for (int t = 0; t < 2; t++)
			fprintf(out, "chatd_connections_accepted_total{protocol=\"%s\",transport=\"%s\"} "
				"%llu\n", proto_labels[p], t ? "tls" : "tcp",
				(unsigned long long)sum->accepted[p][t]);
	family(out, "chatd_connections_rejected_total", "counter",
	       "Connections turned away at once, by why.");
	for (int r = 0; r < REJECT_COUNT; r++)
		fprintf(out, "chatd_connections_rejected_total{reason=\"%s\"} %llu\n",
			metrics_reject_names[r],
			(unsigned long long)(snap->rejected[r] + (r == REJECT_BANNED ? sum->banned : 0)));
	family(out, "chatd_disconnects_total", "counter",
	       "Connections ended, by why (the close reason of the log).");
	for (int r = 0; r < STATS_REASON_COUNT; r++)
		fprintf(out, "chatd_disconnects_total{reason=\"%s\"} %llu\n", stats_reason_names[r],
			(unsigned long long)sum->disconnects[r]);

	/* The metrics of one value each. */
	const struct {
		const char *name, *type, *help;
		uint64_t value;
	} single[] = {
		{ "chatd_online", "gauge", "People in the chat.", (uint64_t)snap->online },
		{ "chatd_online_max", "gauge", "The most people ever in the chat at once since start.",
		  (uint64_t)snap->max_online },
		{ "chatd_rooms", "gauge", "Rooms that exist.", (uint64_t)snap->rooms },
		{ "chatd_accounts", "gauge", "Registered accounts.", snap->accounts },
		{ "chatd_lines_received_total", "counter", "Lines read from clients.", sum->lines_in },
		{ "chatd_messages_total", "counter", "Lines said, in rooms and privately.", sum->messages },
		{ "chatd_deliveries_total", "counter",
		  "Lines of the chat queued to their recipients (one per recipient).", sum->deliveries },
		{ "chatd_received_bytes_total", "counter",
		  "Bytes read from clients (over TLS: encrypted).", sum->bytes_in },
		{ "chatd_sent_bytes_total", "counter", "Bytes written to clients (over TLS: encrypted).",
		  sum->bytes_out },
		{ "chatd_history_written_total", "counter", "Lines written to the room history.",
		  snap->history_written },
		{ "chatd_history_dropped_total", "counter",
		  "Lines the room history lost (a failed write, a full queue).", snap->history_dropped },
		{ "chatd_tls_handshakes_total", "counter", "TLS handshakes done.", sum->tls_handshakes },
		{ "chatd_tls_handshake_failures_total", "counter", "TLS handshakes that failed.",
		  sum->tls_failures },
	};
	for (size_t i = 0; i < ARRAY_SIZE(single); i++) {
		family(out, single[i].name, single[i].type, single[i].help);
		sample(out, single[i].name, single[i].value);
	}

	if (snap->clustered) {
		const struct {
			const char *name, *type, *help;
			uint64_t value;
		} cluster[] = {
			{ "chatd_cluster_up", "gauge",
			  "1 while this node reaches NATS and reads the cluster's stream.", snap->cluster_up },
			{ "chatd_cluster_nodes", "gauge", "Other nodes of the cluster heard.",
			  (uint64_t)snap->cluster_nodes },
			{ "chatd_cluster_published_total", "counter",
			  "Messages this node published to the cluster's stream.", snap->cluster_published },
			{ "chatd_cluster_lost_total", "counter",
			  "Messages the cluster's stream could not be given.", snap->cluster_lost },
			{ "chatd_cluster_received_total", "counter",
			  "Messages read from the cluster's stream.", snap->cluster_received },
		};
		for (size_t i = 0; i < ARRAY_SIZE(cluster); i++) {
			family(out, cluster[i].name, cluster[i].type, cluster[i].help);
			sample(out, cluster[i].name, cluster[i].value);
		}
	}

	family(out, "chatd_reloads_total", "counter", "Config reloads, by result.");
	fprintf(out, "chatd_reloads_total{result=\"ok\"} %llu\n", (unsigned long long)snap->reloads_ok);
	fprintf(out, "chatd_reloads_total{result=\"failed\"} %llu\n",
		(unsigned long long)snap->reloads_failed);

	family(out, "chatd_worker_busy_seconds_total", "counter",
	       "Time each worker thread spent working (not waiting for events).");
	for (int i = 0; i < snap->workers; i++)
		fprintf(out, "chatd_worker_busy_seconds_total{worker=\"%d\"} %.6f\n", i,
			(double)snap->worker[i].busy_ns / 1e9);
	family(out, "chatd_worker_loops_total", "counter", "Loop iterations of each worker thread.");
	for (int i = 0; i < snap->workers; i++)
		fprintf(out, "chatd_worker_loops_total{worker=\"%d\"} %llu\n", i,
			(unsigned long long)snap->worker[i].loops);
	family(out, "chatd_worker_connections", "gauge", "Connections each worker thread holds.");
	for (int i = 0; i < snap->workers; i++)
		fprintf(out, "chatd_worker_connections{worker=\"%d\"} %d\n", i,
			snap->worker[i].connections);
}

/* ---- the HTTP side ---------------------------------------------------------- */

struct scraper {
	LIST_ENTRY(scraper) link;
	int fd;
	uint64_t deadline_ms;
	char in[HTTP_HEADER_MAX];
	size_t in_len;
	struct msg *out;     /* the response, once made */
	size_t out_off;
};

struct metrics {
	int epoll_fd;
	int fds[SOCKETS_MAX];
	int fd_count;
	int tick_fd;
	void (*collect)(void *ctx, struct metrics_snapshot *ret);
	void *ctx;
	LIST_HEAD(, scraper) scrapers;
	unsigned count;
};

/* epoll tags: a listening socket's index, the tick, or a scraper. */
#define TAG_TICK SOCKETS_MAX

static void scraper_close(struct metrics *m, struct scraper *s)
{
	LIST_REMOVE(s, link);
	m->count--;
	close(s->fd);
	if (s->out)
		msg_unref(s->out);
	free(s);
}

/* Writes what is left of S's response; closes it once all is written. */
static void scraper_write(struct metrics *m, struct scraper *s)
{
	while (s->out_off < s->out->len) {
		ssize_t n = send(s->fd, s->out->data + s->out_off, s->out->len - s->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = s };
			epoll_ctl(m->epoll_fd, EPOLL_CTL_MOD, s->fd, &ev);
			return;
		}
		if (n <= 0)
			break;
		s->out_off += (size_t)n;
	}
	scraper_close(m, s);
}

static struct msg *respond(struct metrics *m, const char *buf, size_t len)
{
	struct http_request req;
	int status = http_request_parse(buf, len, &req);
	if (status)
		return http_error(status, req.error, req.head, true);
	if (strcmp(req.path, "/metrics") != 0)
		return http_error(404, "the metrics are at /metrics", req.head, true);
	struct metrics_snapshot *snap = xcalloc(1, sizeof(*snap));
	m->collect(m->ctx, snap);
	char *body = NULL;
	size_t body_len = 0;
	FILE *out = open_memstream(&body, &body_len);
	if (!out) {
		free(snap);
		return http_error(500, "out of memory", req.head, true);
	}
	metrics_render(snap, out);
	fclose(out);
	free(snap);
	struct msg *r = http_response(200, "Cache-Control: no-store\r\n",
				      "text/plain; version=0.0.4; charset=utf-8", body, body_len,
				      req.head, true);
	free(body);
	return r;
}

static void scraper_readable(struct metrics *m, struct scraper *s)
{
	if (s->out) { /* writing: only its EOF or a reset can come */
		scraper_close(m, s);
		return;
	}
	ssize_t n = recv(s->fd, s->in + s->in_len, sizeof(s->in) - s->in_len, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		scraper_close(m, s);
		return;
	}
	s->in_len += (size_t)n;
	size_t len = http_request_length(s->in, s->in_len);
	if (len == 0 && s->in_len < sizeof(s->in))
		return;
	s->out = len ? respond(m, s->in, len) : http_error(431, "the request is too long", false, true);
	s->deadline_ms = monotonic_ms() + TIMEOUT_MS;
	scraper_write(m, s);
}

static void accept_scrapers(struct metrics *m, int fd)
{
	for (;;) {
		int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0) {
			if (errno != EAGAIN && errno != EINTR)
				log_errno(LOG_WARNING, errno, "metrics: accept");
			return;
		}
		if (m->count >= CLIENTS_MAX) {
			close(cfd);
			continue;
		}
		struct scraper *s = xcalloc(1, sizeof(*s));
		s->fd = cfd;
		s->deadline_ms = monotonic_ms() + TIMEOUT_MS;
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = s };
		if (epoll_ctl(m->epoll_fd, EPOLL_CTL_ADD, cfd, &ev) < 0) {
			log_errno(LOG_ERR, errno, "metrics: epoll_ctl");
			close(cfd);
			free(s);
			continue;
		}
		LIST_INSERT_HEAD(&m->scrapers, s, link);
		m->count++;
	}
}

static void tick(struct metrics *m)
{
	uint64_t n;
	if (read(m->tick_fd, &n, sizeof(n)) < 0)
		return;
	uint64_t now = monotonic_ms();
	struct scraper *s, *next;
	for (s = LIST_FIRST(&m->scrapers); s; s = next) {
		next = LIST_NEXT(s, link);
		if (now >= s->deadline_ms)
			scraper_close(m, s);
	}
}

/* Listening sockets and the tick are tagged by small numbers, scrapers
 * by their address. */
static bool is_tag(const void *p)
{
	return (uintptr_t)p <= TAG_TICK;
}

void metrics_run(struct metrics *m)
{
	struct epoll_event events[16];
	int n = epoll_wait(m->epoll_fd, events, 16, 0);
	/* Closing a scraper frees it: the listening sockets and the tick
	 * last, after this batch's scrapers were handled. */
	for (int i = 0; i < n; i++) {
		if (is_tag(events[i].data.ptr))
			continue;
		struct scraper *s = events[i].data.ptr;
		if (events[i].events & EPOLLOUT)
			scraper_write(m, s);
		else
			scraper_readable(m, s);
	}
	for (int i = 0; i < n; i++) {
		uintptr_t tag = (uintptr_t)events[i].data.ptr;
		if (!is_tag(events[i].data.ptr))
			continue;
		if (tag == TAG_TICK)
			tick(m);
		else
			accept_scrapers(m, m->fds[tag]);
	}
}

struct metrics *metrics_open(const struct config *cfg,
			     void (*collect)(void *ctx, struct metrics_snapshot *ret), void *ctx)
{
	if (!cfg->metrics_address)
		return NULL;
	struct metrics *m = xcalloc(1, sizeof(*m));
	m->collect = collect;
	m->ctx = ctx;
	m->tick_fd = m->epoll_fd = -1;
	LIST_INIT(&m->scrapers);
	m->fd_count = listener_bind(cfg->metrics_address, cfg->metrics_port, "the metrics", m->fds,
				    SOCKETS_MAX);
	if (m->fd_count < 0) {
		m->fd_count = 0;
		log_error("no metrics: [metrics] listen = %s:%d cannot be used", cfg->metrics_address,
			  cfg->metrics_port);
		metrics_close(m);
		return NULL;
	}
	struct itimerspec second = { .it_interval = { .tv_sec = 1 }, .it_value = { .tv_sec = 1 } };
	if ((m->epoll_fd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    (m->tick_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)) < 0 ||
	    timerfd_settime(m->tick_fd, 0, &second, NULL) < 0) {
		log_errno(LOG_ERR, errno, "metrics");
		metrics_close(m);
		return NULL;
	}
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = (void *)(uintptr_t)TAG_TICK };
	int r = epoll_ctl(m->epoll_fd, EPOLL_CTL_ADD, m->tick_fd, &ev);
	for (int i = 0; i < m->fd_count && r == 0; i++) {
		ev.data.ptr = (void *)(uintptr_t)i;
		r = epoll_ctl(m->epoll_fd, EPOLL_CTL_ADD, m->fds[i], &ev);
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		char addr[PEER_MAX] = "?";
		if (getsockname(m->fds[i], (struct sockaddr *)&ss, &len) == 0)
			format_address((struct sockaddr *)&ss, addr, sizeof(addr));
		log_info("metrics: http://%s/metrics", addr);
	}
	if (r < 0) {
		log_errno(LOG_ERR, errno, "metrics: epoll_ctl");
		metrics_close(m);
		return NULL;
	}
	return m;
}

int metrics_fd(const struct metrics *m)
{
	return m->epoll_fd;
}

void metrics_close(struct metrics *m)
{
	if (!m)
		return;
	struct scraper *s;
	while ((s = LIST_FIRST(&m->scrapers)))
		scraper_close(m, s);
	for (int i = 0; i < m->fd_count; i++)
		close(m->fds[i]);
	if (m->tick_fd >= 0)
		close(m->tick_fd);
	if (m->epoll_fd >= 0)
		close(m->epoll_fd);
	free(m);
}
