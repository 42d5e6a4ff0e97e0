/* Lines to a room's members and to one connection, on this worker and, by
 * the hand-over (handoff.h), on the others: a line is one shared msg that
 * each recipient's queue references. */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "core/chat.h"
#include "net/worker_impl.h"
#include "web/websocket.h"

/* A queue is never let grow past 2 * max_sendq + this, whatever happens
 * within one iteration. */
#define QUEUE_HARD_EXTRA (8 * 1024 * 1024)

/* The most a queue may hold at any moment: max_sendq of output the client
 * did not read when it could (see written() in lifecycle.c) plus what one
 * iteration added, which the read budget keeps far below this. */
static size_t queue_cap(const struct worker *w)
{
	return 2 * w->cfg->max_sendq + QUEUE_HARD_EXTRA;
}

void fanout_too_slow(struct worker *w, struct conn *c)
{
	struct log_note note;
	if (worker_log_allowed(w, &c->s, LOG_NOTICE, &note))
		log_event(LOG_NOTICE, LOG_FIELDS(.peer = c->s.peer, .nick = c->s.member.nick,
						 .suppressed = note.suppressed),
			  "%s (%s): more than %zu bytes waiting to be read, disconnecting as too slow%s",
			  c->s.peer, c->s.member.nick, w->cfg->max_sendq, note.text);
	lifecycle_kill(w, c, "slow");
}

void worker_send(struct worker *w, struct session *s, struct msg *m)
{
	struct conn *c = conn_of(s);

	/* The gathered lines' sender is not among their recipients: what
	 * it is told itself (an echo, a reply) cannot be seen to overtake
	 * them, and waiting for them would end the gathering at every
	 * line of an echo-message client. */
	if (w->stage.except_id != s->id)
		fanout_flush(w);
	if (c->state == CONN_DEAD)
		return;
	/* What was made for this session alone (a reply, a numeric) is
	 * framed here; what its format's encoding made is framed already. */
	struct msg *framed = NULL;
	if (s->framing != FRAMING_STREAM && !(m->flags & MSG_FRAMED))
		m = framed = ws_frame_lines(m, s->framing == FRAMING_WS_BINARY);
	if (m->len == 0) {
		/* nothing to send (or nothing left once framed: empty lines) */
	} else if (!conn_queue(c, msg_ref(m), queue_cap(w), &w->out_cache)) {
		msg_unref(m);
		fanout_too_slow(w, c);
	} else {
		lifecycle_mark_for_flush(w, c);
	}
	if (framed)
		msg_unref(framed);
}

void worker_room_link(struct worker *w, struct membership *ms)
{
	fanout_flush(w);
	ms->linked_format = ms->member->format;
	TAILQ_INSERT_TAIL(room_local(ms->room, w->index, ms->linked_format), ms, local_link);
	ms->linked = true;
}

void worker_room_unlink(struct worker *w, struct membership *ms)
{
	fanout_flush(w);
	if (ms->linked) {
		TAILQ_REMOVE(room_local(ms->room, w->index, ms->linked_format), ms, local_link);
		ms->linked = false;
	}
}

/* Fans N lines out to this worker's members of ROOM, in order; LINES[k]
 * goes to the members reading LINES[k].format (each format's members are
 * a list of their own), but not to connection LINES[k].id, nor to one that
 * already got a line of the same .once. Member by member rather than line
 * by line: a batch from another worker touches each connection once.
 * Counts in w->queued[k] how many queues took line k; the caller adds
 * those references. */
static void deliver_room(struct worker *w, struct room *room, const struct event *lines, size_t n)
{
	size_t cap = queue_cap(w);

	if (n > w->queued_cap) {
		w->queued_cap = n;
		w->queued = xrealloc(w->queued, n * sizeof(*w->queued));
		w->picked = xrealloc(w->picked, n * sizeof(*w->picked));
	}
	memset(w->queued, 0, n * sizeof(*w->queued));
	for (int f = 0; f < FORMAT_COUNT; f++) {
		/* The lines in this format, in order. */
		size_t m = 0;
		for (size_t k = 0; k < n; k++)
			if (lines[k].format == (enum format)f)
				w->picked[m++] = k;
		if (m == 0) {
			/* Members whose IRC client changed its caps after the
			 * line was encoded get another IRC encoding of the
			 * same framing. */
			if (f == FORMAT_LINE || TAILQ_EMPTY(room_local(room, w->index, (enum format)f)))
				continue;
			for (int g = FORMAT_IRC; g < FORMAT_COUNT && m == 0; g++) {
				if (format_framing((enum format)g) != format_framing((enum format)f))
					continue;
				for (size_t k = 0; k < n; k++)
					if (lines[k].format == (enum format)g)
						w->picked[m++] = k;
			}
			if (m == 0)
				continue;
		}
		struct membership *ms;
		if (m == 1) {
			/* One line (the usual case): its fields in registers. */
			const struct event *line = &lines[w->picked[0]];
			uint64_t id = line->id, seq = line->seq, once = line->once;
			unsigned queued = 0;
			TAILQ_FOREACH(ms, room_local(room, w->index, (enum format)f), local_link) {
				struct conn *c = container_of(ms->member, struct conn, s.member);
				if (c->state != CONN_OPEN || c->s.id == id || ms->joined_seq >= seq)
					continue;
				if (once) {
					if (c->last_once == once)
						continue;
					c->last_once = once;
				}
				if (!conn_queue(c, line->msg, cap, &w->out_cache)) {
					fanout_too_slow(w, c);
					continue;
				}
				queued++;
				lifecycle_mark_for_flush(w, c);
			}
			w->queued[w->picked[0]] += queued;
			continue;
		}
		TAILQ_FOREACH(ms, room_local(room, w->index, (enum format)f), local_link) {
			struct conn *c = container_of(ms->member, struct conn, s.member);
			if (c->state != CONN_OPEN)
				continue;
			bool any = false;
			for (size_t j = 0; j < m; j++) {
				const struct event *line = &lines[w->picked[j]];
				/* Not to its sender, nor about what happened in the
				 * room before this member came in. */
				if (c->s.id == line->id || ms->joined_seq >= line->seq)
					continue;
				if (line->once) {
					if (c->last_once == line->once)
						continue;
					c->last_once = line->once;
				}
				if (!conn_queue(c, line->msg, cap, &w->out_cache)) {
					fanout_too_slow(w, c);
					break;
				}
				w->queued[w->picked[j]]++;
				if (!any) {
					lifecycle_mark_for_flush(w, c);
					any = true;
				}
			}
		}
	}
	/* Counted once per run of lines, from what was queued: not per
	 * recipient. */
	uint64_t delivered = 0;
	for (size_t k = 0; k < n; k++)
		delivered += (uint64_t)w->queued[k] * lines[k].lines;
	stat_add(&w->stats.deliveries, delivered);
}

/* Sends MSG (per format) to ROOM's members on every worker, now. */
static void send_lines(struct worker *w, struct room *room, struct msg *const msg[FORMAT_COUNT],
		       uint64_t except_id, uint64_t seq, uint64_t once, uint32_t count)
{
	struct event lines[FORMAT_COUNT];
	size_t n = 0;

	for (int f = 0; f < FORMAT_COUNT; f++)
		if (msg[f])
			lines[n++] = (struct event){ .kind = EV_ROOM, .ptr = room, .msg = msg[f],
						     .id = except_id, .seq = seq, .once = once,
						     .format = (enum format)f, .lines = count };
	if (n == 0)
		return;
	deliver_room(w, room, lines, n);
	/* The references are added in one atomic step each; ours keep the
	 * lines alive meanwhile. */
	for (size_t k = 0; k < n; k++)
		msg_ref_n(lines[k].msg, w->queued[k]);
	for (int i = 0; i < w->pool->count; i++) {
		if (i == w->index)
			continue;
		for (size_t k = 0; k < n; k++) {
			struct event ev = lines[k];
			ev.ptr = room_ref(room);
			ev.msg = msg_ref(ev.msg);
			outboxes_add(&w->outboxes, i, ev);
		}
	}
}

/* ---- the stage ------------------------------------------------------------
 * A client's read often holds many lines for one room (a paste, a bot, a
 * burst after a stall). Told one by one, each would cost every recipient a
 * queue slot, an iovec and a copy of its own in the kernel; gathered here
 * while the read is handled, they go out as one message per format, so
 * each recipient's queue takes them in one slot and the kernel copies them
 * in one piece. Only what nothing can tell apart is gathered: lines to the
 * same room, from the same sender, with the same room sequence number (no
 * arrival or departure in between, on any worker) and read in the same
 * formats. Everything else that another client could see come before or
 * after them (a private message, a line to another room, an arrival, a
 * kick) sends them first; what only their sender is told (an echo, a
 * reply) need not wait, as the sender is not among their recipients. */

#define STAGE_MAX_BYTES (16 * 1024)

static bool stage_takes(const struct room_stage *st, const struct room *room,
			const struct room_send *rs, uint64_t seq)
{
	if (st->room != room || st->except_id != rs->except_id || st->seq != seq || rs->once)
		return false;
	for (int f = 0; f < FORMAT_COUNT; f++) {
		if (!st->msg[f] != !rs->msg[f])
			return false;
		if (rs->msg[f] && st->msg[f]->len + rs->msg[f]->len > STAGE_MAX_BYTES)
			return false;
	}
	return true;
}

static void stage_append(struct room_stage *st, const struct room_send *rs)
{
	st->lines++;
	for (int f = 0; f < FORMAT_COUNT; f++) {
		struct msg *m = st->msg[f];
		if (!m)
			continue;
		if (!st->own[f]) {
			/* The first line is shared with its encoder: gather
			 * into a copy of our own from the second on. */
			struct msg *copy = msg_new(2 * ((size_t)m->len + rs->msg[f]->len));
			copy->flags = m->flags;
			copy = msg_append(copy, m->data, m->len);
			msg_unref(m);
			m = copy;
			st->own[f] = true;
		}
		st->msg[f] = msg_append(m, rs->msg[f]->data, rs->msg[f]->len);
	}
}

void fanout_flush(struct worker *w)
{
	struct room_stage st = w->stage;

	if (!st.room)
		return;
	/* Emptied first: sending may close a slow client, which tells its
	 * rooms it left, which comes back here. */
	w->stage = (struct room_stage){ 0 };
	for (int f = 0; f < FORMAT_COUNT; f++)
		if (st.own[f]) /* what max_sendq counts is what it holds */
			st.msg[f] = msg_trim(st.msg[f]);
	send_lines(w, st.room, st.msg, st.except_id, st.seq, 0, st.lines);
	for (int f = 0; f < FORMAT_COUNT; f++)
		if (st.msg[f])
			msg_unref(st.msg[f]);
	room_unref(st.room);
}

void worker_send_room(struct worker *w, struct room *room, const struct room_send *rs)
{
	uint64_t seq = rs->seq ? rs->seq : room_line_seq(room);

	if (stage_takes(&w->stage, room, rs, seq)) {
		stage_append(&w->stage, rs);
		return;
	}
	fanout_flush(w);
	if (rs->once) {
		send_lines(w, room, rs->msg, rs->except_id, seq, rs->once, 1);
		return;
	}
	struct room_stage *st = &w->stage;
	*st = (struct room_stage){ .room = room_ref(room), .except_id = rs->except_id, .seq = seq,
				   .lines = 1 };
	for (int f = 0; f < FORMAT_COUNT; f++)
		if (rs->msg[f])
			st->msg[f] = msg_ref(rs->msg[f]);
}

/* Nothing else can happen between the events of a run, so one pass over
 * the members delivers them all. */
void fanout_room_events(struct worker *w, struct event *evs, size_t n)
{
	fanout_flush(w); /* empty here already: the stage lasts one read */
	deliver_room(w, evs[0].ptr, evs, n);
	for (size_t k = 0; k < n; k++) {
		/* The event's reference becomes the first queue's. */
		if (w->queued[k] > 0)
			msg_ref_n(evs[k].msg, w->queued[k] - 1);
		else
			msg_unref(evs[k].msg);
		room_unref(evs[k].ptr);
	}
}

void fanout_direct_local(struct worker *w, int fd, uint64_t id, struct msg *m)
{
	if (fd < 0 || (size_t)fd >= w->by_fd_size)
		return;
	struct conn *c = w->by_fd[fd];
	if (c && c->s.id == id && c->state == CONN_OPEN) {
		worker_send(w, &c->s, m);
		stat_add(&w->stats.deliveries, 1);
	}
}

void fanout_kick_local(struct worker *w, int fd, uint64_t id, struct kick *k)
{
	struct conn *c = fd >= 0 && (size_t)fd < w->by_fd_size ? w->by_fd[fd] : NULL;
	if (c && c->s.id == id && c->state == CONN_OPEN)
		chat_kicked(w, &c->s, k);
	else
		chat_kick_free(k);
}

void worker_send_kick(struct worker *w, const struct member_address *a, struct kick *k)
{
	fanout_flush(w);
	if (a->worker == w->index)
		fanout_kick_local(w, a->fd, a->conn_id, k);
	else
		outboxes_add(&w->outboxes, a->worker,
			     (struct event){ .kind = EV_KICK, .fd = a->fd, .id = a->conn_id, .ptr = k });
}

void worker_send_direct(struct worker *w, const struct member_address *a, struct msg *m)
{
	fanout_flush(w);
	if (a->worker == w->index)
		fanout_direct_local(w, a->fd, a->conn_id, m);
	else
		outboxes_add(&w->outboxes, a->worker,
			     (struct event){ .kind = EV_DIRECT, .fd = a->fd, .id = a->conn_id,
					     .msg = msg_ref(m) });
}
