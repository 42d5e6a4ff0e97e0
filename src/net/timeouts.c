/* A worker's clock: once a tick, clients silent for idle_timeout or stuck
 * halfway through a line for line_timeout are told and let go, TLS
 * clients that did not finish their handshake within handshake_timeout
 * are closed, and quiet TLS connections give their record buffers back;
 * and the worker notices stalls of its own, which are charged to nobody. */
#include "autoconf.h"

#include <stdio.h>
#include <unistd.h>

#include "base/log.h"
#include "core/chat.h"
#include "cluster/cluster.h"
#include "core/remote.h"
#include "net/worker_impl.h"
#include "proto/codec.h"
#include "tls/failures.h"
#include "net/web.h"
#include "tls/stream.h"

/* A loop iteration that comes this long after the last, when the tick
 * wakes the loop every TICK_MS, means the worker was not running (SIGSTOP,
 * a slow disk, the machine swapping): a stall, not charged to clients. */
#define STALL_MIN_MS (TICK_MS + 500)

void timeouts_woke(struct worker *w, uint64_t last_ms)
{
	if (w->now_ms - last_ms < STALL_MIN_MS)
		return;
	w->stall_ms = w->now_ms - last_ms;
	w->stall_end_ms = w->now_ms;
	log_notice("worker %d did not run for %llu ms; clients are not charged for it", w->index,
		   (unsigned long long)w->stall_ms);
}

uint64_t worker_stalled_since(const struct worker *w, uint64_t since_ms)
{
	if (w->stall_end_ms <= since_ms)
		return 0;
	uint64_t span = w->stall_end_ms - since_ms;
	return span < w->stall_ms ? span : w->stall_ms;
}

/* Tells C why it goes, and lets it go. */
static void time_out(struct worker *w, struct conn *c, const char *reason, const char *what,
		     int seconds)
{
	char text[96];
	int n = snprintf(text, sizeof(text), "%s %d second%s", what, seconds, seconds == 1 ? "" : "s");
	struct chat_event ev = { .kind = CHAT_CLOSING, .text = text, .text_len = (size_t)n,
				 .host = c->s.member.host };
	struct msg *m = event_encode(c->s.member.format, &ev);
	worker_send(w, &c->s, m);
	msg_unref(m);
	lifecycle_drain(w, c, reason, NULL, 0);
}

/* The members of other nodes are checked against the nodes heard this
 * often (ticks). */
#define SWEEP_TICKS 5

static bool peer_gone(void *ctx, uint64_t origin)
{
	return cluster_peer_state(ctx, origin) == PEER_GONE;
}

void timeouts_tick(struct worker *w)
{
	uint64_t expirations;
	if (read(w->tick_fd, &expirations, sizeof(expirations)) < 0)
		return;
	if (w->index == 0 && w->pool->remotes) {
		chat_remote_retry(w, w->pool->remotes);
		if (++w->cluster_ticks % SWEEP_TICKS == 0)
			chat_remote_sweep(w, w->pool->remotes, peer_gone, w->pool->cluster);
	}
	/* Right after a stall, lines sent meanwhile may still be unread: the
	 * server's pause is not the clients' silence. */
	if (w->stall_end_ms && w->now_ms - w->stall_end_ms < 2 * TICK_MS)
		return;
	const struct config *cfg = w->cfg;
	uint64_t idle_ms = (uint64_t)cfg->idle_timeout * 1000, line_ms = (uint64_t)cfg->line_timeout * 1000;
	uint64_t handshake_ms = (uint64_t)cfg->handshake_timeout * 1000;

	for (size_t fd = 0; fd < w->by_fd_size; fd++) {
		struct conn *c = w->by_fd[fd];
		if (c && c->state == CONN_NEW && c->web && (!c->tls || tls_stream_established(c->tls))) {
			web_tick(w, c, handshake_ms); /* a slow request, or an unused connection */
			continue;
		}
		if (c && c->state == CONN_NEW && w->now_ms - c->opened_ms >= handshake_ms) {
			/* Plaintext, garbage or nothing on a TLS port. */
			tls_failure_log(c->s.peer, "handshake timeout", w->now_ms);
			lifecycle_kill(w, c, "handshake_timeout");
			continue;
		}
		if (c && c->tls)
			tls_stream_idle(c->tls);
		if (!c || c->state != CONN_OPEN)
			continue;
		uint64_t idle = w->now_ms - c->last_line_ms;
		if (idle_ms && idle >= idle_ms)
			time_out(w, c, "idle", "idle for", cfg->idle_timeout);
		else if (!codec_idle(w, &c->s, idle))
			time_out(w, c, "ping", "no answer to PING within", cfg->irc_ping_timeout);
		else if (c->partial_since_ms && w->now_ms - c->partial_since_ms >= line_ms)
			time_out(w, c, "stalled", "line not finished within", cfg->line_timeout);
		else if (c->s.guard_ms && w->now_ms >= c->s.guard_ms)
			chat_guard_expired(w, &c->s);
	}
}
