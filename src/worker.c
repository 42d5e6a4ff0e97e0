#include "autoconf.h"

#include "worker.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "chat.h"
#include "cpusched.h"
#include "log.h"
#include "util.h"
#include "writer.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

#define READ_BUFFER_SIZE (64 * 1024)
#define EPOLL_BATCH 256
#define GATHER_ROUNDS 2 /* extra non-blocking looks for work before writing */
#define DRAIN_TIMEOUT_MS 2000 /* to write a leaving client's last lines */
/* Input read per loop iteration, from all clients together (one more read
 * may go past it). It bounds what one iteration can add to any output
 * queue, and so memory, while a reader that keeps up is never cut off:
 * see written(). */
#define READ_BUDGET (128 * 1024)
/* A queue is never let grow past 2 * max_sendq + this, whatever happens
 * within one iteration. */
#define QUEUE_HARD_EXTRA (8 * 1024 * 1024)
#define TICK_MS 1000
/* A loop iteration that comes this long after the last, when the tick
 * wakes the loop every TICK_MS, means the worker was not running (SIGSTOP,
 * a slow disk, the machine swapping): a stall, not charged to clients. */
#define STALL_MIN_MS (TICK_MS + 500)

enum event_kind {
	EV_CONNECTION, /* fd, ptr: struct new_connection (ours to free) */
	EV_ROOM,       /* ptr: room, msg, id: connection not to send to, seq: the
			* room's sequence number of the line (see rooms.h) */
	EV_DIRECT,     /* fd + id: the connection, msg */
	EV_CONFIG,     /* ptr: config */
	EV_PING,       /* id: sequence */
	EV_SHUTDOWN,
};

struct new_connection {
	char peer[PEER_MAX];
	struct ip_key ip;
};

struct event {
	enum event_kind kind;
	int fd;
	uint64_t id;
	uint64_t seq;
	void *ptr;
	struct msg *msg;
};

/* Events for the worker, appended by any thread, taken all at once. */
struct inbox {
	pthread_mutex_t lock;
	struct event *items;
	size_t count, cap;
	atomic_bool pending; /* count > 0, readable without the lock */
};

struct worker {
	struct worker_pool *pool;
	int index;
	pthread_t thread;
	bool started;
	int epoll_fd;
	int wake_fd;
	int tick_fd;              /* once a second: idle and stalled connections */
	uint64_t now_ms;
	uint64_t epoch;           /* loop iterations so far */
	size_t read_budget;       /* what this iteration may still read */
	unsigned rotation;        /* where handling an epoll batch starts */
	uint64_t stall_end_ms;    /* when the last stall was seen (0: never) */
	uint64_t stall_ms;        /* and how long it was */
	struct inbox inbox;
	struct event *taken;      /* the batch being handled; swapped with inbox.items */
	size_t taken_cap;
	/* Lines for other workers, gathered over one loop iteration and handed
	 * over in one go: one lock and at most one wake-up per worker per
	 * iteration, and the receiver gets them as a batch it can write out
	 * with few system calls. */
	struct outbox {
		struct event *items;
		size_t count, cap;
		bool needs_wake;      /* flush_outboxes: its inbox was empty */
	} *outboxes;              /* [pool->count] */

	struct config *cfg;
	struct msg *motd;

	struct conn **by_fd;      /* this worker's connections, by socket */
	size_t by_fd_size;
	atomic_int connection_count;

	struct conn_list flush_list;  /* queued output to write this iteration */
	struct conn_list close_list;  /* to close at the end of this iteration */
	struct conn_list drain_list;  /* leaving, oldest first (so by deadline) */

	bool shutting_down;
	atomic_uint_least64_t pong;

	unsigned *queued;         /* deliver_room's count per line */
	size_t queued_cap;

	struct out_cache out_cache;
	struct writer *writer;    /* made on the worker's own thread */
	struct cpusched sched;
	unsigned lines_in;        /* this loop iteration: from clients and the inbox */
	char read_buffer[READ_BUFFER_SIZE];
};

/* ---- inbox ------------------------------------------------------------ */

/* Appends N events to W's inbox, whose lock the caller holds; true when
 * the inbox was empty, so W may be asleep and must be woken. */
static bool inbox_append(struct worker *w, const struct event *evs, size_t n)
{
	if (w->inbox.count + n > w->inbox.cap) {
		size_t cap = w->inbox.cap ? w->inbox.cap : 64;
		while (cap < w->inbox.count + n)
			cap *= 2;
		w->inbox.items = xrealloc(w->inbox.items, cap * sizeof(*evs));
		w->inbox.cap = cap;
	}
	memcpy(w->inbox.items + w->inbox.count, evs, n * sizeof(*evs));
	bool was_empty = w->inbox.count == 0;
	w->inbox.count += n;
	if (was_empty)
		atomic_store_explicit(&w->inbox.pending, true, memory_order_release);
	return was_empty;
}

/* Only the first events of a batch need to wake the worker. */
static void wake(struct worker *w)
{
	uint64_t one = 1;
	if (write(w->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_errno(LOG_ERR, errno, "worker %d: cannot wake", w->index);
}

/* Appends N events to W's inbox and wakes it if it may be asleep. */
static void post_many(struct worker *w, const struct event *evs, size_t n)
{
	pthread_mutex_lock(&w->inbox.lock);
	bool was_empty = inbox_append(w, evs, n);
	pthread_mutex_unlock(&w->inbox.lock);
	if (was_empty)
		wake(w);
}

static void post(struct worker *w, struct event ev)
{
	post_many(w, &ev, 1);
}

/* From worker W's own thread: queues EV for worker TARGET until W hands
 * over its outboxes at the end of the loop iteration. */
static void post_later(struct worker *w, int target, struct event ev)
{
	struct outbox *o = &w->outboxes[target];
	if (o->count == o->cap) {
		o->cap = o->cap ? o->cap * 2 : 64;
		o->items = xrealloc(o->items, o->cap * sizeof(ev));
	}
	o->items[o->count++] = ev;
}

/* Hands over what this iteration gathered for the other workers, to all
 * of them at once: each inbox it fills stays locked until all are filled
 * (locked in index order, so two workers doing this cannot deadlock).
 * Filled one after the other, a line could reach a client on the first
 * worker, and that client's answer reach a third worker before the line
 * did, if this thread lost the CPU in between. It runs before our own
 * clients are written to, so anything they do in reaction comes after it
 * everywhere. */
static void flush_outboxes(struct worker *w)
{
	struct worker **workers = w->pool->workers;
	int count = w->pool->count;

	for (int i = 0; i < count; i++) {
		struct outbox *o = &w->outboxes[i];
		if (o->count) {
			pthread_mutex_lock(&workers[i]->inbox.lock);
			o->needs_wake = inbox_append(workers[i], o->items, o->count);
		}
	}
	for (int i = 0; i < count; i++) {
		struct outbox *o = &w->outboxes[i];
		if (o->count) {
			pthread_mutex_unlock(&workers[i]->inbox.lock);
			if (o->needs_wake)
				wake(workers[i]);
			o->count = 0;
		}
	}
}

void worker_post_connection(struct worker *w, int fd, const char *peer, const struct ip_key *ip)
{
	struct new_connection *nc = xmalloc(sizeof(*nc));
	snprintf(nc->peer, sizeof(nc->peer), "%s", peer);
	nc->ip = *ip;
	atomic_fetch_add_explicit(&w->connection_count, 1, memory_order_relaxed);
	post(w, (struct event){ .kind = EV_CONNECTION, .fd = fd, .ptr = nc });
}

void worker_post_config(struct worker *w, struct config *cfg)
{
	post(w, (struct event){ .kind = EV_CONFIG, .ptr = config_ref(cfg) });
}

void worker_post_ping(struct worker *w, uint64_t seq)
{
	post(w, (struct event){ .kind = EV_PING, .id = seq });
}

void worker_post_shutdown(struct worker *w)
{
	post(w, (struct event){ .kind = EV_SHUTDOWN });
}

uint64_t worker_last_pong(struct worker *w)
{
	return atomic_load_explicit(&w->pong, memory_order_acquire);
}

int worker_connection_count(struct worker *w)
{
	return atomic_load_explicit(&w->connection_count, memory_order_relaxed);
}

/* ---- accessors for chat.c ---------------------------------------------- */

const struct config *worker_config(const struct worker *w)
{
	return w->cfg;
}

struct rooms *worker_rooms(const struct worker *w)
{
	return w->pool->rooms;
}

struct msg *worker_motd(const struct worker *w)
{
	return w->motd;
}

bool worker_shutting_down(const struct worker *w)
{
	return w->shutting_down;
}

uint64_t worker_now_ms(const struct worker *w)
{
	return w->now_ms;
}

uint64_t worker_stalled_since(const struct worker *w, uint64_t since_ms)
{
	if (w->stall_end_ms <= since_ms)
		return 0;
	uint64_t span = w->stall_end_ms - since_ms;
	return span < w->stall_ms ? span : w->stall_ms;
}

bool worker_log_allowed(struct worker *w, const struct conn *c, int priority,
			struct ip_log_note *ret)
{
	return ip_limit_log_allowed(w->pool->ip_limit, &c->ip, priority, w->now_ms, ret);
}

void worker_online_changed(struct worker *w)
{
	struct worker_pool *pool = w->pool;
	if (!atomic_exchange(&pool->status_pending, true)) {
		uint64_t one = 1;
		if (write(pool->status_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			log_errno(LOG_WARNING, errno, "cannot signal status change");
	}
}

/* ---- connections ------------------------------------------------------- */

static void set_epoll_events(struct worker *w, struct conn *c, uint32_t events)
{
	if (c->epoll_events == events)
		return;
	struct epoll_event ev = { .events = events, .data.ptr = c };
	if (epoll_ctl(w->epoll_fd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
		log_errno(LOG_ERR, errno, "epoll_ctl(%s)", c->peer);
	c->epoll_events = events;
}

/* Decides to close C; the close happens at the end of the iteration, so
 * pointers to C in this iteration's epoll events and lists stay valid. */
static void kill_conn(struct worker *w, struct conn *c, const char *reason)
{
	if (c->on_close_list)
		return;
	if (!c->close_reason)
		c->close_reason = reason;
	c->on_close_list = true;
	TAILQ_INSERT_TAIL(&w->close_list, c, close_link);
}

static void mark_for_flush(struct worker *w, struct conn *c)
{
	flush_list_add(&w->flush_list, c);
}

static void too_slow(struct worker *w, struct conn *c)
{
	struct ip_log_note note;
	if (worker_log_allowed(w, c, LOG_NOTICE, &note))
		log_event(LOG_NOTICE, LOG_FIELDS(.peer = c->peer, .nick = c->member.nick,
						 .suppressed = note.suppressed),
			  "%s (%s): more than %zu bytes waiting to be read, disconnecting as too slow%s",
			  c->peer, c->member.nick, w->cfg->max_sendq, note.text);
	kill_conn(w, c, "slow");
}

/* The most a queue may hold at any moment: max_sendq of output the client
 * did not read when it could (see written()) plus what one iteration
 * added, which the read budget keeps far below this. */
static size_t queue_cap(const struct worker *w)
{
	return 2 * w->cfg->max_sendq + QUEUE_HARD_EXTRA;
}

void worker_send(struct worker *w, struct conn *c, struct msg *m)
{
	if (c->on_close_list)
		return;
	if (!conn_queue(c, msg_ref(m), queue_cap(w), w->epoch, &w->out_cache)) {
		msg_unref(m);
		too_slow(w, c);
		return;
	}
	mark_for_flush(w, c);
}

void worker_room_link(struct worker *w, struct conn *c)
{
	TAILQ_INSERT_TAIL(&c->member.room->local[w->index], &c->member, local_link);
}

void worker_room_unlink(struct worker *w, struct conn *c, struct room *room)
{
	TAILQ_REMOVE(&room->local[w->index], &c->member, local_link);
}

/* Fans N lines out to this worker's members of ROOM, in order; LINES[k].id
 * is the connection not to send line k to. Member by member rather than
 * line by line: a batch from another worker touches each connection once.
 * Counts in w->queued[k] how many queues took line k; the caller adds
 * those references. */
static void deliver_room(struct worker *w, struct room *room, const struct event *lines, size_t n)
{
	struct member *mb;
	size_t cap = queue_cap(w);

	if (n > w->queued_cap) {
		w->queued_cap = n;
		w->queued = xrealloc(w->queued, n * sizeof(*w->queued));
	}
	memset(w->queued, 0, n * sizeof(*w->queued));
	TAILQ_FOREACH(mb, &room->local[w->index], local_link) {
		struct conn *c = container_of(mb, struct conn, member);
		if (c->state != CONN_OPEN || c->on_close_list)
			continue;
		bool any = false;
		for (size_t k = 0; k < n; k++) {
			/* Not to its sender, nor about what happened in the room
			 * before this member came in. */
			if (c->id == lines[k].id || mb->joined_seq >= lines[k].seq)
				continue;
			if (!conn_queue(c, lines[k].msg, cap, w->epoch, &w->out_cache)) {
				too_slow(w, c);
				break;
			}
			w->queued[k]++;
			if (!any) {
				mark_for_flush(w, c);
				any = true;
			}
		}
	}
}

void worker_send_room(struct worker *w, struct room *room, struct msg *m, uint64_t except_id,
		      uint64_t seq)
{
	if (seq == 0)
		seq = room_next_seq(room);
	struct event line = { .kind = EV_ROOM, .ptr = room, .msg = m, .id = except_id, .seq = seq };
	deliver_room(w, room, &line, 1);
	/* The references are added in one atomic step; ours keeps M alive
	 * meanwhile. */
	msg_ref_n(m, w->queued[0]);
	for (int i = 0; i < w->pool->count; i++)
		if (i != w->index)
			post_later(w, i, (struct event){ .kind = EV_ROOM, .ptr = room_ref(room),
							 .msg = msg_ref(m), .id = except_id,
							 .seq = seq });
}

/* Delivers the run of N consecutive EV_ROOM events for one room that
 * starts at EVS: nothing else can happen between them, so one pass over
 * the members delivers them all. Each event's own references end here. */
static void deliver_room_events(struct worker *w, struct event *evs, size_t n)
{
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

static struct conn *find_conn(struct worker *w, int fd, uint64_t id)
{
	if (fd < 0 || (size_t)fd >= w->by_fd_size)
		return NULL;
	struct conn *c = w->by_fd[fd];
	return c && c->id == id ? c : NULL;
}

static void send_direct_local(struct worker *w, int fd, uint64_t id, struct msg *m)
{
	struct conn *c = find_conn(w, fd, id);
	if (c && c->state == CONN_OPEN)
		worker_send(w, c, m);
}

void worker_send_direct(struct worker *w, const struct member_address *a, struct msg *m)
{
	if (a->worker == w->index)
		send_direct_local(w, a->fd, a->conn_id, m);
	else
		post_later(w, a->worker, (struct event){ .kind = EV_DIRECT, .fd = a->fd,
							 .id = a->conn_id, .msg = msg_ref(m) });
}

void worker_close_after_flush(struct worker *w, struct conn *c, const char *reason)
{
	if (c->state != CONN_OPEN || c->on_close_list)
		return;
	c->close_reason = reason;
	if (c->entered) {
		c->entered = false;
		chat_disconnected(w, c, reason);
	}
	c->state = CONN_DRAINING;
	c->deadline_ms = monotonic_ms() + DRAIN_TIMEOUT_MS;
	TAILQ_INSERT_TAIL(&w->drain_list, c, drain_link);
	framer_reset(&c->framer);
	set_epoll_events(w, c, EPOLLOUT);
	mark_for_flush(w, c);
}

/* Gives back what the accepting thread counted for a connection. */
static void forget_conn(struct worker *w, const struct ip_key *ip)
{
	ip_limit_release(w->pool->ip_limit, ip, w->now_ms);
	atomic_fetch_sub_explicit(&w->connection_count, 1, memory_order_relaxed);
	atomic_fetch_sub_explicit(&w->pool->connections, 1, memory_order_relaxed);
}

static void add_connection(struct worker *w, int fd, const struct new_connection *nc)
{
	const char *peer = nc->peer;
	if (w->shutting_down) {
		close(fd);
		forget_conn(w, &nc->ip);
		return;
	}
	uint64_t id = atomic_fetch_add(&w->pool->next_conn_id, 1) + 1;
	struct conn *c = conn_new(fd, id, peer);
	c->member.worker = w->index;
	c->ip = nc->ip;
	c->last_line_ms = w->now_ms;

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
		log_errno(LOG_ERR, errno, "epoll_ctl(ADD %s)", peer);
		conn_free(c);
		forget_conn(w, &nc->ip);
		return;
	}
	c->epoll_events = EPOLLIN;
	w->by_fd[fd] = c;
	c->entered = true;
	chat_connected(w, c);
}

static void close_now(struct worker *w, struct conn *c)
{
	if (c->entered) {
		c->entered = false;
		chat_disconnected(w, c, c->close_reason);
	}
	flush_list_remove(&w->flush_list, c);
	if (c->state != CONN_OPEN)
		TAILQ_REMOVE(&w->drain_list, c, drain_link);
	if (epoll_ctl(w->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL) < 0)
		log_errno(LOG_ERR, errno, "epoll_ctl(DEL %s)", c->peer);
	w->by_fd[c->fd] = NULL;
	struct ip_key ip = c->ip;
	conn_free(c);
	forget_conn(w, &ip);
}

/* ---- reading ----------------------------------------------------------- */

struct line_ctx {
	struct worker *w;
	struct conn *c;
};

static bool still_reading(const struct conn *c)
{
	return c->state == CONN_OPEN && !c->on_close_list;
}

static bool on_line(void *ctx, const char *line, size_t len)
{
	struct line_ctx *lc = ctx;
	lc->c->last_line_ms = lc->w->now_ms;
	lc->w->lines_in++;
	chat_line(lc->w, lc->c, line, len);
	return still_reading(lc->c);
}

static bool on_too_long(void *ctx)
{
	struct line_ctx *lc = ctx;
	chat_line_too_long(lc->w, lc->c);
	return still_reading(lc->c);
}

static bool on_dropped(void *ctx, size_t bytes)
{
	struct line_ctx *lc = ctx;
	chat_bytes_dropped(lc->w, lc->c, bytes);
	return still_reading(lc->c);
}

static const struct framer_handler line_handler = { .line = on_line, .too_long = on_too_long,
						    .dropped = on_dropped };

static void conn_readable(struct worker *w, struct conn *c)
{
	/* Past this iteration's budget, the rest waits in the socket (the
	 * level-triggered epoll reports it again next iteration). */
	if (w->read_budget == 0)
		return;
	ssize_t n = read(c->fd, w->read_buffer, sizeof(w->read_buffer));

	if (n > 0) {
		w->read_budget -= (size_t)n < w->read_budget ? (size_t)n : w->read_budget;
		if (c->state != CONN_OPEN)
			return; /* lingering: the peer's last bytes are of no use */
		struct line_ctx lc = { w, c };
		framer_feed(&c->framer, w->read_buffer, (size_t)n, w->cfg->max_line, &line_handler, &lc);
		/* line_timeout times the unfinished line from its start, not
		 * from that of a line this read finished. */
		if (!framer_has_partial(&c->framer))
			c->partial_since_ms = 0;
		else if (framer_partial_is_new(&c->framer))
			c->partial_since_ms = w->now_ms;
		return;
	}
	if (n == 0) {
		/* The peer has nothing more to say, but may still read (a
		 * half-close: nc -N, a script piping into the socket): what it
		 * is owed, replies to its last lines included, goes out first.
		 * With nothing owed it closes at once, its slot freed before
		 * anyone hears that it left; a lingering connection was waiting
		 * for just this EOF. */
		if (c->state == CONN_OPEN && c->out_bytes)
			worker_close_after_flush(w, c, "closed");
		else
			kill_conn(w, c, c->state == CONN_OPEN ? "closed" : c->close_reason);
		return;
	}
	if (errno == EAGAIN || errno == EINTR)
		return;
	if (errno != ECONNRESET)
		log_errno(LOG_INFO, errno, "read from %s", c->peer);
	kill_conn(w, c, errno == ECONNRESET ? "reset" : "error");
}

static void handle_inbox(struct worker *w);

static void conn_event(struct worker *w, struct conn *c, uint32_t events)
{
	if (c->on_close_list)
		return;
	/* Lines posted to us before this client's input arrived come first,
	 * even when they were posted after this epoll batch began. */
	if (atomic_load_explicit(&w->inbox.pending, memory_order_acquire))
		handle_inbox(w);
	if (c->on_close_list)
		return;
	if (c->state == CONN_DRAINING) {
		if (events & (EPOLLERR | EPOLLHUP))
			kill_conn(w, c, c->close_reason);
		else if (events & EPOLLOUT)
			mark_for_flush(w, c);
		return;
	}
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		conn_readable(w, c);
	if ((events & EPOLLOUT) && !c->on_close_list)
		mark_for_flush(w, c);
}

/* ---- writing ----------------------------------------------------------- */

/* How writing C's queue went (see writer_done_fn). */
static void written(void *ctx, struct conn *c, int r)
{
	struct worker *w = ctx;
	if (r < 0) {
		bool reset = r == -EPIPE || r == -ECONNRESET;
		if (!reset)
			log_errno(LOG_INFO, -r, "write to %s", c->peer);
		kill_conn(w, c, reset ? "reset" : "error");
		return;
	}
	if (r == 0) {
		/* Slow is what the client had the chance to read in an earlier
		 * iteration and still did not, once we tried again: not a burst
		 * this iteration brought, which the kernel may take next. */
		if (c->state == CONN_OPEN && conn_waiting(c, w->epoch) > w->cfg->max_sendq) {
			too_slow(w, c);
			return;
		}
		set_epoll_events(w, c, c->state == CONN_OPEN ? EPOLLIN | EPOLLOUT : EPOLLOUT);
		return;
	}
	if (c->state == CONN_DRAINING) {
		/* All said. Closing with unread input would make the kernel send
		 * a reset, which can destroy our last lines before the peer reads
		 * them; with none, close now. Otherwise shut our side and wait
		 * (bounded) for the peer's EOF, discarding what it still sends. */
		int unread = 0;
		if (ioctl(c->fd, FIONREAD, &unread) == 0 && unread == 0) {
			kill_conn(w, c, c->close_reason);
			return;
		}
		shutdown(c->fd, SHUT_WR);
		c->state = CONN_LINGERING;
	}
	set_epoll_events(w, c, EPOLLIN);
}

/* Writes every queue that got output, and closes every connection that was
 * killed; each may cause more of the other (a leave tells a room). */
static void settle(struct worker *w)
{
	struct conn *c;

	flush_outboxes(w);
	while (!TAILQ_EMPTY(&w->flush_list) || !TAILQ_EMPTY(&w->close_list)) {
		while ((c = TAILQ_FIRST(&w->close_list))) {
			TAILQ_REMOVE(&w->close_list, c, close_link);
			close_now(w, c);
		}
		flush_outboxes(w);
		writer_flush(w->writer, &w->flush_list, &w->out_cache, written, w);
	}
}

/* Gives up on leaving connections past their deadline; returns the epoll
 * timeout until the next deadline (-1: none). */
static int expire_drains(struct worker *w)
{
	uint64_t now = monotonic_ms();
	struct conn *c;

	TAILQ_FOREACH(c, &w->drain_list, drain_link) {
		if (c->deadline_ms > now)
			return (int)(c->deadline_ms - now);
		kill_conn(w, c, c->close_reason);
	}
	return -1;
}

/* ---- inbox handling ---------------------------------------------------- */

static void apply_config(struct worker *w, struct config *cfg)
{
	if (w->cfg)
		config_unref(w->cfg);
	w->cfg = cfg;
	if (w->motd)
		msg_unref(w->motd);
	w->motd = chat_format_motd(cfg->motd_lines, cfg->motd_count);
}

static void begin_shutdown(struct worker *w)
{
	struct msg *notice = msg_printf("# server shutting down\n");

	w->shutting_down = true;
	for (size_t fd = 0; fd < w->by_fd_size; fd++) {
		struct conn *c = w->by_fd[fd];
		if (!c || c->state != CONN_OPEN || c->on_close_list)
			continue;
		worker_send(w, c, notice);
		worker_close_after_flush(w, c, "shutdown");
	}
	msg_unref(notice);
}

static void handle_inbox(struct worker *w)
{
	uint64_t count;
	if (read(w->wake_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		log_errno(LOG_ERR, errno, "worker %d: wake fd", w->index);

	/* Take the whole batch; producers go on filling the other vector. */
	pthread_mutex_lock(&w->inbox.lock);
	struct event *events = w->inbox.items;
	size_t n = w->inbox.count;
	size_t cap = w->inbox.cap;
	w->inbox.items = w->taken;
	w->inbox.cap = w->taken_cap;
	w->inbox.count = 0;
	atomic_store_explicit(&w->inbox.pending, false, memory_order_relaxed);
	pthread_mutex_unlock(&w->inbox.lock);
	w->lines_in += (unsigned)n;

	for (size_t i = 0; i < n; i++) {
		struct event *ev = &events[i];
		switch (ev->kind) {
		case EV_CONNECTION:
			add_connection(w, ev->fd, ev->ptr);
			free(ev->ptr);
			break;
		case EV_ROOM: {
			size_t run = 1;
			while (i + run < n && events[i + run].kind == EV_ROOM && events[i + run].ptr == ev->ptr)
				run++;
			deliver_room_events(w, ev, run);
			i += run - 1;
			break;
		}
		case EV_DIRECT:
			send_direct_local(w, ev->fd, ev->id, ev->msg);
			msg_unref(ev->msg);
			break;
		case EV_CONFIG:
			apply_config(w, ev->ptr);
			break;
		case EV_PING:
			atomic_store_explicit(&w->pong, ev->id, memory_order_release);
			break;
		case EV_SHUTDOWN:
			begin_shutdown(w);
			break;
		}
	}
	w->taken = events;
	w->taken_cap = cap;
}

/* ---- timeouts ---------------------------------------------------------- */

/* Once a second: clients silent for idle_timeout, or stuck halfway through
 * a line for line_timeout, are told and let go. */
static void tick(struct worker *w)
{
	uint64_t expirations;
	if (read(w->tick_fd, &expirations, sizeof(expirations)) < 0)
		return;
	/* Right after a stall, lines sent meanwhile may still be unread: the
	 * server's pause is not the clients' silence. */
	if (w->stall_end_ms && w->now_ms - w->stall_end_ms < 2 * TICK_MS)
		return;
	const struct config *cfg = w->cfg;
	uint64_t idle_ms = (uint64_t)cfg->idle_timeout * 1000, line_ms = (uint64_t)cfg->line_timeout * 1000;

	for (size_t fd = 0; fd < w->by_fd_size; fd++) {
		struct conn *c = w->by_fd[fd];
		if (!c || c->state != CONN_OPEN || c->on_close_list)
			continue;
		if (idle_ms && w->now_ms - c->last_line_ms >= idle_ms) {
			struct msg *m = msg_printf("! idle for %d second%s: disconnected\n", cfg->idle_timeout,
						   cfg->idle_timeout == 1 ? "" : "s");
			worker_send(w, c, m);
			msg_unref(m);
			worker_close_after_flush(w, c, "idle");
		} else if (c->partial_since_ms && w->now_ms - c->partial_since_ms >= line_ms) {
			struct msg *m = msg_printf("! line not finished within %d second%s: disconnected\n",
						   cfg->line_timeout, cfg->line_timeout == 1 ? "" : "s");
			worker_send(w, c, m);
			msg_unref(m);
			worker_close_after_flush(w, c, "stalled");
		}
	}
}

/* ---- the loop ---------------------------------------------------------- */

static void handle_events(struct worker *w, struct epoll_event *events, int n)
{
	bool ticked = false;

	/* The inbox first: what other workers posted happened before anything
	 * our clients did in reaction to it (a /join after seeing a line), so
	 * it must be applied first too. */
	for (int i = 0; i < n; i++)
		if (events[i].data.ptr == NULL)
			handle_inbox(w);
	/* The kernel reports ready sockets in the same order each time, so
	 * when the read budget runs out, starting where the last batch did
	 * would serve the same clients first for ever: each batch starts one
	 * further on. */
	int start = (int)(w->rotation++ % (unsigned)n);
	for (int k = 0; k < n; k++) {
		struct epoll_event *ev = &events[(start + k) % n];
		if (ev->data.ptr == w)
			ticked = true;
		else if (ev->data.ptr != NULL)
			conn_event(w, ev->data.ptr, ev->events);
	}
	/* The clock's checks last, once what clients sent has been read. */
	if (ticked)
		tick(w);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct epoll_event events[EPOLL_BATCH];
	const char *why_not;

	w->writer = writer_new(w->pool->io_uring, &why_not);
	if (why_not) /* it worked for the check at start: a limit reached since? */
		log_warning("worker %d: io_uring is not usable (%s); it writes with writev", w->index,
			    why_not);
	cpusched_start(&w->sched, w->pool->sched_plan, w->index);

	for (;;) {
		int timeout = expire_drains(w);
		settle(w);
		if (w->shutting_down && atomic_load(&w->connection_count) == 0)
			break;
		int n = epoll_wait(w->epoll_fd, events, EPOLL_BATCH, timeout);
		uint64_t last = w->now_ms;
		w->now_ms = monotonic_ms();
		/* Before EINTR is looked at: SIGCONT ends a stop with it. */
		if (w->now_ms - last >= STALL_MIN_MS) {
			w->stall_ms = w->now_ms - last;
			w->stall_end_ms = w->now_ms;
			log_notice("worker %d did not run for %llu ms; clients are not charged for it",
				   w->index, (unsigned long long)w->stall_ms);
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_errno(LOG_ERR, errno, "worker %d: epoll_wait", w->index);
			break;
		}
		w->epoch++;
		w->read_budget = READ_BUDGET;
		handle_events(w, events, n);
		/* Under load, take what else is ready before writing: the more
		 * lines per connection, the fewer writev calls per line. When
		 * nothing more is ready this costs one epoll_wait that returns at
		 * once, and no delay. */
		for (int round = 0; round < GATHER_ROUNDS && n > 0 && w->read_budget > 0; round++) {
			n = epoll_wait(w->epoll_fd, events, EPOLL_BATCH, 0);
			if (n > 0)
				handle_events(w, events, n);
		}
		settle(w);
		cpusched_iteration(&w->sched, w->lines_in);
		w->lines_in = 0;
	}
	return NULL;
}

struct worker *worker_new(struct worker_pool *pool, int index, struct config *cfg)
{
	struct worker *w = xcalloc(1, sizeof(*w));
	w->pool = pool;
	w->index = index;
	w->epoll_fd = -1;
	w->wake_fd = -1;
	w->tick_fd = -1;
	w->now_ms = monotonic_ms();
	pthread_mutex_init(&w->inbox.lock, NULL);
	TAILQ_INIT(&w->flush_list);
	TAILQ_INIT(&w->close_list);
	TAILQ_INIT(&w->drain_list);
	w->outboxes = xcalloc((size_t)pool->count, sizeof(*w->outboxes));
	apply_config(w, config_ref(cfg));
	return w;
}

int worker_start(struct worker *w)
{
	w->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (w->epoll_fd < 0)
		return -errno;
	w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->wake_fd < 0)
		return -errno;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	if (epoll_ctl(w->epoll_fd, EPOLL_CTL_ADD, w->wake_fd, &ev) < 0)
		return -errno;
	w->tick_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (w->tick_fd < 0)
		return -errno;
	struct itimerspec second = { .it_interval = { .tv_sec = TICK_MS / 1000 },
				     .it_value = { .tv_sec = TICK_MS / 1000 } };
	if (timerfd_settime(w->tick_fd, 0, &second, NULL) < 0)
		return -errno;
	ev = (struct epoll_event){ .events = EPOLLIN, .data.ptr = w };
	if (epoll_ctl(w->epoll_fd, EPOLL_CTL_ADD, w->tick_fd, &ev) < 0)
		return -errno;
	int r = pthread_create(&w->thread, NULL, worker_main, w);
	if (r != 0)
		return -r;
	w->started = true;
	return 0;
}

void worker_join(struct worker *w)
{
	if (w->started) {
		pthread_join(w->thread, NULL);
		w->started = false;
	}
}

/* Drops what an event nobody will handle still owns. */
static void release_event(struct worker *w, struct event *ev)
{
	if (ev->kind == EV_CONNECTION) {
		close(ev->fd);
		forget_conn(w, &((struct new_connection *)ev->ptr)->ip);
		free(ev->ptr);
	} else if (ev->kind == EV_ROOM) {
		room_unref(ev->ptr);
	} else if (ev->kind == EV_CONFIG) {
		config_unref(ev->ptr);
	}
	if (ev->msg)
		msg_unref(ev->msg);
}

void worker_free(struct worker *w)
{
	if (!w)
		return;
	w->shutting_down = true; /* nobody is told of leaves any more */
	/* Events nobody handled (the worker stopped first) still own things. */
	for (size_t i = 0; i < w->inbox.count; i++)
		release_event(w, &w->inbox.items[i]);
	for (size_t fd = 0; fd < w->by_fd_size; fd++) {
		if (w->by_fd[fd]) {
			struct conn *c = w->by_fd[fd];
			if (c->entered)
				chat_disconnected(w, c, "shutdown");
			ip_limit_release(w->pool->ip_limit, &c->ip, w->now_ms);
			conn_free(c);
		}
	}
	for (int i = 0; w->outboxes && i < w->pool->count; i++) {
		for (size_t k = 0; k < w->outboxes[i].count; k++)
			release_event(w, &w->outboxes[i].items[k]);
		free(w->outboxes[i].items);
	}
	free(w->outboxes);
	out_cache_clear(&w->out_cache);
	writer_free(w->writer);
	free(w->by_fd);
	free(w->inbox.items);
	free(w->taken);
	free(w->queued);
	if (w->motd)
		msg_unref(w->motd);
	if (w->cfg)
		config_unref(w->cfg);
	if (w->epoll_fd >= 0)
		close(w->epoll_fd);
	if (w->wake_fd >= 0)
		close(w->wake_fd);
	if (w->tick_fd >= 0)
		close(w->tick_fd);
	pthread_mutex_destroy(&w->inbox.lock);
	free(w);
}
