/* A connection's life on its worker: one state machine (see conn.h), whose
 * every change goes through set_state(), and the writing and closing that
 * move it along. */
#include "autoconf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "core/chat.h"
#include "net/worker_impl.h"
#include "proto/codec.h"
#include "tls/context.h"
#include "net/web.h"
#include "tls/stream.h"

#define DRAIN_TIMEOUT_MS 2000 /* to write a leaving client's last lines */

static const char *const state_names[] = {
	[CONN_NEW] = "new", [CONN_OPEN] = "open", [CONN_DRAINING] = "draining",
	[CONN_LINGERING] = "lingering", [CONN_DEAD] = "dead",
};

static bool allowed(enum conn_state from, enum conn_state to)
{
	switch (to) {
	case CONN_OPEN:
		return from == CONN_NEW;
	case CONN_DRAINING:
		return from == CONN_NEW || from == CONN_OPEN;
	case CONN_LINGERING:
		return from == CONN_DRAINING;
	case CONN_DEAD:
		return from != CONN_DEAD;
	case CONN_NEW:
		break;
	}
	return false;
}

static void set_epoll_events(struct worker *w, struct conn *c, uint32_t events)
{
	if (c->epoll_events == events)
		return;
	struct epoll_event ev = { .events = events, .data.ptr = c };
	if (epoll_ctl(w->epoll_fd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
		log_errno(LOG_ERR, errno, "epoll_ctl(%s)", c->s.peer);
	c->epoll_events = events;
}

/* EPOLLIN when C's input is to be read: it is in the chat (or shaking
 * hands), and owed no answer (see conn.h, waiting). */
static uint32_t input_events(const struct conn *c)
{
	return (c->state == CONN_OPEN || c->state == CONN_NEW) && !c->waiting ? EPOLLIN : 0;
}

void lifecycle_wait(struct worker *w, struct conn *c)
{
	if (c->waiting++ == 0)
		set_epoll_events(w, c, c->epoll_events & ~(uint32_t)EPOLLIN);
}

bool lifecycle_answered(struct worker *w, struct conn *c)
{
	if (c->waiting == 0 || --c->waiting > 0)
		return false;
	set_epoll_events(w, c, c->epoll_events | input_events(c));
	return true;
}

void lifecycle_forget(struct worker *w, const struct ip_key *ip)
{
	if (ip)
		ip_limit_release(w->pool->ip_limit, ip, w->now_ms);
	atomic_fetch_sub_explicit(&w->connection_count, 1, memory_order_relaxed);
	atomic_fetch_sub_explicit(&w->pool->connections, 1, memory_order_relaxed);
}

/* The one place a connection changes state, with all that each change
 * entails. REASON (the first one given sticks) and FAREWELL (the /quit
 * reason) are for the chat and the log when C leaves the chat. */
static void set_state(struct worker *w, struct conn *c, enum conn_state to, const char *reason,
		      const char *farewell, size_t farewell_len)
{
	enum conn_state from = c->state;

	if (!allowed(from, to)) {
		log_error("%s: no way from %s to %s (a bug; left %s)", c->s.peer, state_names[from],
			  state_names[to], state_names[from]);
		return;
	}
	if (!c->close_reason)
		c->close_reason = reason;
	c->state = to;
	/* Counted when decided, once: leaving may take a while. */
	if ((from == CONN_NEW || from == CONN_OPEN) && (to == CONN_DRAINING || to == CONN_DEAD))
		stat_add(&w->stats.disconnects[stats_reason_of(c->close_reason)], 1);

	switch (to) {
	case CONN_OPEN:
		codec_open(w, &c->s);
		break;
	case CONN_DRAINING:
		if (chat_joined(&c->s))
			chat_disconnected(w, &c->s, c->close_reason, farewell, farewell_len);
		web_closing(w, c, c->close_reason);
		c->deadline_ms = monotonic_ms() + DRAIN_TIMEOUT_MS;
		TAILQ_INSERT_TAIL(&w->drain_list, c, drain_link);
		framer_reset(&c->framer);
		set_epoll_events(w, c, EPOLLOUT);
		lifecycle_mark_for_flush(w, c);
		break;
	case CONN_LINGERING:
		shutdown(c->fd, SHUT_WR);
		set_epoll_events(w, c, EPOLLIN);
		break;
	case CONN_DEAD:
		/* It leaves the chat when it is freed, at the end of the
		 * iteration: a kill can come from within a fan-out, which the
		 * departure's own fan-out must not disturb. */
		if (from == CONN_DRAINING || from == CONN_LINGERING)
			TAILQ_REMOVE(&w->drain_list, c, drain_link);
		flush_list_remove(&w->flush_list, c);
		TAILQ_INSERT_TAIL(&w->close_list, c, close_link);
		break;
	case CONN_NEW:
		break;
	}
}

void lifecycle_add(struct worker *w, int fd, const struct new_connection *nc)
{
	if (w->shutting_down) {
		close(fd);
		lifecycle_forget(w, nc->ip_counted ? &nc->ip : NULL);
		return;
	}
	uint64_t id = atomic_fetch_add(&w->pool->next_conn_id, 1) + 1;
	struct conn *c = conn_new(fd, id, nc->peer);
	c->s.member.worker = w->index;
	c->s.proto = nc->proto;
	c->s.tls = nc->tls;
	c->ip = nc->ip;
	c->ip_counted = nc->ip_counted;
	if (nc->proto == PROTO_WEB)
		c->web = web_conn_new();
	c->last_line_ms = w->now_ms;
	c->opened_ms = w->now_ms;
	if (nc->tls) {
		if (!w->tls_ctx) { /* cannot be: the listener needs a context */
			log_error("%s: no TLS context; closed", nc->peer);
			conn_free(c);
			lifecycle_forget(w, nc->ip_counted ? &nc->ip : NULL);
			return;
		}
		c->tls = tls_stream_new(w->tls_ctx);
	}

	if ((size_t)fd >= w->by_fd_size) {
		size_t size = w->by_fd_size ? w->by_fd_size : 64;
		while (size <= (size_t)fd)
			size *= 2;
		w->by_fd = xrealloc(w->by_fd, size * sizeof(*w->by_fd));
		memset(w->by_fd + w->by_fd_size, 0, (size - w->by_fd_size) * sizeof(*w->by_fd));
		w->by_fd_size = size;
	}
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
	if (epoll_ctl(w->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		log_errno(LOG_ERR, errno, "epoll_ctl(ADD %s)", nc->peer);
		conn_free(c);
		lifecycle_forget(w, nc->ip_counted ? &nc->ip : NULL);
		return;
	}
	c->epoll_events = EPOLLIN;
	w->by_fd[fd] = c;
	c->port_proto = nc->proto;
	snprintf(c->s.member.via, sizeof(c->s.member.via), "%s%s",
		 nc->proto == PROTO_LINE ? "line" : nc->proto == PROTO_IRC ? "irc" : "web",
		 nc->tls ? "+tls" : "");
	stat_add(&w->stats.open[nc->proto][nc->tls], 1);
	stat_add(&w->stats.accepted[nc->proto][nc->tls], 1);
	if (!c->tls && !c->web)
		set_state(w, c, CONN_OPEN, NULL, NULL, 0);
}

void lifecycle_established(struct worker *w, struct conn *c)
{
	if (log_level_enabled(LOG_DEBUG)) {
		char how[96];
		tls_stream_describe(c->tls, how, sizeof(how));
		log_debug("%s: TLS handshake done (%s)", c->s.peer, how);
	}
	tls_stream_peer_fingerprint(c->tls, c->s.certfp);
	if (c->s.certfp[0])
		log_event(LOG_INFO, LOG_FIELDS(.event = "tls_client_certificate", .peer = c->s.peer),
			  "%s: client certificate SHA-256 %s", c->s.peer, c->s.certfp);
	if (!c->web)
		set_state(w, c, CONN_OPEN, NULL, NULL, 0);
}

void lifecycle_open(struct worker *w, struct conn *c)
{
	set_state(w, c, CONN_OPEN, NULL, NULL, 0);
}

void lifecycle_drain(struct worker *w, struct conn *c, const char *reason, const char *farewell,
		     size_t farewell_len)
{
	if (c->state == CONN_NEW || c->state == CONN_OPEN)
		set_state(w, c, CONN_DRAINING, reason, farewell, farewell_len);
}

void lifecycle_kill(struct worker *w, struct conn *c, const char *reason)
{
	if (c->state != CONN_DEAD)
		set_state(w, c, CONN_DEAD, reason, NULL, 0);
}

void lifecycle_peer_closed(struct worker *w, struct conn *c)
{
	/* The peer has nothing more to say, but may still read (a half-close:
	 * nc -N, a script piping into the socket): what it is owed, replies to
	 * its last lines included, goes out first. With nothing owed it closes
	 * at once; a lingering connection was waiting for just this EOF. */
	if (lifecycle_reading(c) && c->out_bytes)
		lifecycle_drain(w, c, "closed", NULL, 0);
	else
		lifecycle_kill(w, c, "closed");
}

bool lifecycle_reading(const struct conn *c)
{
	return c->state == CONN_OPEN || (c->state == CONN_NEW && c->web);
}

/* Frees a DEAD connection. Its slot is given back before anyone can hear
 * that it left (what it queues goes out after this), so a client told of
 * the departure can take the slot at once. */
static void close_now(struct worker *w, struct conn *c)
{
	lifecycle_forget(w, c->ip_counted ? &c->ip : NULL);
	if (chat_joined(&c->s))
		chat_disconnected(w, &c->s, c->close_reason, NULL, 0);
	if (epoll_ctl(w->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL) < 0)
		log_errno(LOG_ERR, errno, "epoll_ctl(DEL %s)", c->s.peer);
	w->by_fd[c->fd] = NULL;
	stat_sub(&w->stats.open[c->port_proto][c->s.tls], 1);
	conn_free(c);
}

/* How writing C's queue went (see writer_done_fn). */
static void written(void *ctx, struct conn *c, int r)
{
	struct worker *w = ctx;
	stat_add(&w->stats.bytes_out, c->written_total - c->stat_written);
	c->stat_written = c->written_total;
	if (r < 0) {
		bool reset = r == -EPIPE || r == -ECONNRESET;
		if (!reset)
			log_errno(LOG_INFO, -r, "write to %s", c->s.peer);
		lifecycle_kill(w, c, reset ? "reset" : "error");
		return;
	}
	size_t old = conn_attempted(c, w->epoch);
	if (r == 0) {
		/* Slow is what the client had the chance to read in an earlier
		 * iteration and still did not, once we tried again: not a burst
		 * this iteration brought, which the kernel may take next. */
		if (c->state == CONN_OPEN && old > w->cfg->max_sendq) {
			fanout_too_slow(w, c);
			return;
		}
		set_epoll_events(w, c, input_events(c) | EPOLLOUT);
		return;
	}
	if (web_written(w, c))
		return; /* an HTTP client's last response: now DRAINING, all written */
	if (c->state == CONN_DRAINING) {
		/* All said. Closing with unread input would make the kernel send
		 * a reset, which can destroy our last lines before the peer reads
		 * them; with none, close now. Otherwise shut our side and wait
		 * (bounded) for the peer's EOF, discarding what it still sends. */
		int unread = 0;
		if (ioctl(c->fd, FIONREAD, &unread) == 0 && unread == 0)
			lifecycle_kill(w, c, c->close_reason);
		else
			set_state(w, c, CONN_LINGERING, NULL, NULL, 0);
		return;
	}
	set_epoll_events(w, c, input_events(c));
}

void lifecycle_settle(struct worker *w)
{
	struct conn *c;

	fanout_flush(w);
	worker_store_flush(w);
	worker_cluster_flush(w);
	outboxes_flush(&w->outboxes, w->pool->inboxes);
	while (!TAILQ_EMPTY(&w->flush_list) || !TAILQ_EMPTY(&w->close_list)) {
		while ((c = TAILQ_FIRST(&w->close_list))) {
			TAILQ_REMOVE(&w->close_list, c, close_link);
			close_now(w, c);
		}
		/* What other workers must hear first goes before our own
		 * clients are written to (see handoff.h). */
		fanout_flush(w);
		worker_store_flush(w);
		worker_cluster_flush(w);
		outboxes_flush(&w->outboxes, w->pool->inboxes);
		writer_flush(w->writer, &w->flush_list, &w->out_cache, written, w);
	}
}

int lifecycle_expire_drains(struct worker *w)
{
	uint64_t now = monotonic_ms();
	struct conn *c, *next;

	for (c = TAILQ_FIRST(&w->drain_list); c; c = next) {
		next = TAILQ_NEXT(c, drain_link);
		if (c->deadline_ms > now)
			return (int)(c->deadline_ms - now);
		lifecycle_kill(w, c, c->close_reason);
	}
	return -1;
}

void lifecycle_free_all(struct worker *w)
{
	for (size_t fd = 0; fd < w->by_fd_size; fd++) {
		struct conn *c = w->by_fd[fd];
		if (!c)
			continue;
		if (chat_joined(&c->s))
			chat_disconnected(w, &c->s, "shutdown", NULL, 0);
		if (c->ip_counted)
			ip_limit_release(w->pool->ip_limit, &c->ip, w->now_ms);
		conn_free(c);
		w->by_fd[fd] = NULL;
	}
}

/* ---- for the chat core (host.h) -------------------------------------------- */

bool worker_session_open(const struct session *s)
{
	return container_of(s, struct conn, s)->state == CONN_OPEN;
}

void worker_close_after_flush(struct worker *w, struct session *s, const char *reason,
			      const char *farewell, size_t farewell_len)
{
	lifecycle_drain(w, conn_of(s), reason, farewell, farewell_len);
}
