/* A worker thread: its own epoll loop over the connections it owns. This
 * file is the loop: reading what clients send, the inbox, config and
 * shutdown. The rest of a worker is in lifecycle.c, fanout.c and
 * timeouts.c (see worker_impl.h). */
#include "autoconf.h"

#include "net/worker.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "cluster/cluster.h"
#include "core/bans.h"
#include "core/chat.h"
#include "core/remote.h"
#include "net/worker_impl.h"
#include "proto/codec.h"
#include "tls/failures.h"
#include "net/web.h"
#include "tls/stream.h"
#include "web/site.h"

#define EPOLL_BATCH 256
#define GATHER_ROUNDS 2 /* extra non-blocking looks for work before writing */
/* Input read per loop iteration, from all clients together (one more read
 * may go past it). It bounds what one iteration can add to any output
 * queue, and so memory, while a reader that keeps up is never cut off:
 * see written() in lifecycle.c. */
#define READ_BUDGET (128 * 1024)

/* ---- from other threads ---------------------------------------------------- */

static void post(struct worker *w, struct event ev)
{
	inbox_post(&w->inbox, &ev, 1);
}

void worker_post_connection(struct worker *w, int fd, enum proto proto, bool tls, const char *peer,
			    const struct ip_key *ip, bool counted)
{
	struct new_connection *nc = xcalloc(1, sizeof(*nc));
	nc->proto = proto;
	nc->tls = tls;
	snprintf(nc->peer, sizeof(nc->peer), "%s", peer);
	nc->ip = *ip;
	nc->ip_counted = counted;
	atomic_fetch_add_explicit(&w->connection_count, 1, memory_order_relaxed);
	post(w, (struct event){ .kind = EV_CONNECTION, .fd = fd, .ptr = nc });
}

void worker_post_config(struct worker *w, struct config *cfg)
{
	post(w, (struct event){ .kind = EV_CONFIG, .ptr = config_ref(cfg) });
}

void worker_post_tls(struct worker *w, void *ctx)
{
	SSL_CTX_up_ref(ctx);
	post(w, (struct event){ .kind = EV_TLS, .ptr = ctx });
}

void worker_post_site(struct worker *w, struct site *site)
{
	post(w, (struct event){ .kind = EV_SITE, .ptr = site ? site_ref(site) : NULL });
}

void worker_post_disconnect(struct worker *w, int fd, uint64_t conn_id, const char *reason,
			    const char *text, const char *actor)
{
	struct disconnect *d = xcalloc(1, sizeof(*d));
	snprintf(d->reason, sizeof(d->reason), "%s", reason);
	snprintf(d->text, sizeof(d->text), "%s", text);
	snprintf(d->actor, sizeof(d->actor), "%s", actor);
	post(w, (struct event){ .kind = EV_DISCONNECT, .fd = fd, .id = conn_id, .ptr = d });
}

void worker_post_bans(struct worker *w, struct ban_list *bans)
{
	post(w, (struct event){ .kind = EV_BANS, .ptr = ban_list_ref(bans) });
}

void worker_post_wall(struct worker *w, const char *text)
{
	post(w, (struct event){ .kind = EV_WALL, .ptr = xstrdup(text) });
}

bool worker_pool_kick(struct worker_pool *pool, const char *nick, const char *text,
		      const char *actor, char ret_nick[NAME_MAX_LEN + 1])
{
	struct member_address to;
	if (!rooms_find(pool->rooms, nick, &to))
		return false;
	if (to.worker < 0) {
		/* A member of another node: put out there. */
		if (!pool->cluster)
			return false;
		struct wire_record r = { .kind = WIRE_KICK, .origin = cluster_self(pool->cluster),
					 .session = to.conn_id, .time_ms = wall_clock_ms(), .text = text,
					 .text_len = strlen(text) };
		snprintf(r.node, sizeof(r.node), "%s", cluster_node(pool->cluster));
		snprintf(r.nick, sizeof(r.nick), "%s", cluster_node(pool->cluster));
		snprintf(r.other, sizeof(r.other), "%s", to.nick);
		snprintf(r.actor, sizeof(r.actor), "%s on node %s", actor, cluster_node(pool->cluster));
		struct cluster_batch *b = NULL;
		cluster_batch_add(&b, CLUSTER_TO_NODE, to.origin, &r);
		cluster_post(pool->cluster, b);
		memcpy(ret_nick, to.nick, NAME_MAX_LEN + 1);
		return true;
	}
	worker_post_disconnect(pool->workers[to.worker], to.fd, to.conn_id, "kicked", text, actor);
	memcpy(ret_nick, to.nick, NAME_MAX_LEN + 1);
	return true;
}

int worker_pool_wall(struct worker_pool *pool, const char *text, const char *actor)
{
	size_t len = strlen(text);
	if (len > WALL_MAX)
		return -E2BIG;
	struct text_buf clean;
	text_buf_clean_chat(&clean, text, len);
	bool blank = text_buf_blank(&clean);
	text_buf_free(&clean);
	if (blank)
		return -ENODATA;
	for (int i = 0; i < pool->count; i++)
		worker_post_wall(pool->workers[i], text);
	int online = rooms_online(pool->rooms);
	log_event(LOG_NOTICE, LOG_FIELDS(.event = "wall", .actor = actor, LOG_ONLINE(online)),
		  "wall to %d online: %s", online, text);
	return online;
}

static void post_cluster(struct worker *w, struct cluster_delivery d, const uint8_t *data,
			 size_t len)
{
	struct cluster_delivery *copy = xmalloc(sizeof(*copy) + len);
	*copy = d;
	copy->len = len;
	if (len)
		memcpy(copy->data, data, len);
	post(w, (struct event){ .kind = EV_CLUSTER, .ptr = copy });
}

void worker_post_cluster(struct worker *w, uint64_t seq, const uint8_t *data, size_t len)
{
	post_cluster(w, (struct cluster_delivery){ .what = CLUSTER_RECORDS, .seq = seq }, data, len);
}

void worker_post_node_lost(struct worker *w, uint64_t origin, const char *node)
{
	struct cluster_delivery d = { .what = CLUSTER_NODE_LOST, .origin = origin };
	snprintf(d.node, sizeof(d.node), "%s", node);
	post_cluster(w, d, NULL, 0);
}

void worker_post_tell_all(struct worker *w, bool reclaim)
{
	post_cluster(w, (struct cluster_delivery){ .what = CLUSTER_TELL_ALL, .reclaim = reclaim },
		     NULL, 0);
}

void worker_post_nick_refused(struct worker *w, int fd, uint64_t session, const char *nick)
{
	struct cluster_delivery d = { .what = CLUSTER_NICK_REFUSED, .origin = session,
				      .seq = (uint64_t)fd };
	snprintf(d.node, sizeof(d.node), "%s", nick);
	post_cluster(w, d, NULL, 0);
}

void worker_post_ping(struct worker *w, uint64_t seq)
{
	post(w, (struct event){ .kind = EV_PING, .id = seq });
}

/* On the store thread: Q's answer to its asker's worker. */
static void history_answered(struct store_query *q)
{
	post(q->ctx, (struct event){ .kind = EV_HISTORY, .ptr = q });
}

void worker_store_line(struct worker *w, struct hline *l)
{
	if (!w->pool->store) {
		hline_unref(l);
		return;
	}
	if (w->store_count == w->store_cap) {
		w->store_cap = w->store_cap ? w->store_cap * 2 : 64;
		w->store_lines = xrealloc(w->store_lines, w->store_cap * sizeof(*w->store_lines));
	}
	w->store_lines[w->store_count++] = l;
}

static struct conn *open_conn(struct worker *w, int fd, uint64_t id)
{
	struct conn *c = fd >= 0 && (size_t)fd < w->by_fd_size ? w->by_fd[fd] : NULL;
	return c && c->s.id == id && c->state == CONN_OPEN ? c : NULL;
}

/* A record of this node, about what EV's nick did. */
static struct wire_record record_of(struct worker *w, enum wire_kind kind,
				    const struct chat_event *ev)
{
	struct cluster *c = w->pool->cluster;
	struct wire_record r = {
		.kind = kind,
		.flags = (ev->notice ? WIRE_NOTICE : 0) | (ev->formatting ? WIRE_FORMATTING : 0),
		.origin = cluster_self(c),
		.id = ev->id,
		.time_ms = ev->time_ms,
		.text = ev->text,
		.text_len = ev->text_len,
	};
	snprintf(r.node, sizeof(r.node), "%s", cluster_node(c));
	snprintf(r.nick, sizeof(r.nick), "%s", ev->nick);
	snprintf(r.user, sizeof(r.user), "%s", ev->user ? ev->user : "");
	snprintf(r.host, sizeof(r.host), "%s", ev->host ? ev->host : "");
	return r;
}

bool worker_cluster_line(struct worker *w, uint64_t session, const struct chat_event *ev)
{
	struct cluster *c = w->pool->cluster;
	if (!c)
		return false;
	bool up = cluster_up(c);
	struct wire_record r = record_of(w, ev->kind == CHAT_ACTION ? WIRE_ACTION : WIRE_SAID, ev);
	r.session = session;
	if (!up)
		r.flags |= WIRE_DELIVERED;
	snprintf(r.room, sizeof(r.room), "%s", ev->room);
	cluster_batch_add(&w->cluster_out, CLUSTER_TO_ROOM, 0, &r);
	return up;
}

bool worker_clustered(const struct worker *w)
{
	return w->pool->cluster != NULL;
}

bool worker_cluster_room(struct worker *w, const struct chat_event *ev, bool made)
{
	struct cluster *c = w->pool->cluster;
	if (!c || (!made && !cluster_up(c)))
		return false;
	struct wire_record r = record_of(w, WIRE_ROOM, ev);
	r.change = ev->kind == CHAT_TOPIC ? WIRE_TOPIC : WIRE_MODE;
	if (made)
		r.flags |= WIRE_DELIVERED;
	snprintf(r.room, sizeof(r.room), "%s", ev->room);
	snprintf(r.other, sizeof(r.other), "%s", ev->other ? ev->other : "");
	cluster_batch_add(&w->cluster_out, CLUSTER_TO_ROOM, 0, &r);
	return true;
}

void worker_cluster_private(struct worker *w, const struct member_address *to,
			    const struct chat_event *ev)
{
	if (!w->pool->cluster)
		return;
	struct wire_record r = record_of(w, WIRE_PRIVATE, ev);
	if (ev->action)
		r.flags |= WIRE_ACTION_FLAG;
	r.session = to->conn_id;
	snprintf(r.other, sizeof(r.other), "%s", to->nick);
	cluster_batch_add(&w->cluster_out, CLUSTER_TO_NODE, to->origin, &r);
}

void worker_cluster_kick(struct worker *w, const struct member_address *to, struct kick *k)
{
	if (w->pool->cluster) {
		struct wire_record r = { .kind = WIRE_KICK, .origin = cluster_self(w->pool->cluster),
					 .session = to->conn_id, .time_ms = wall_clock_ms(),
					 .text = k->reason, .text_len = k->reason_len };
		snprintf(r.node, sizeof(r.node), "%s", cluster_node(w->pool->cluster));
		snprintf(r.room, sizeof(r.room), "%s", k->room);
		snprintf(r.nick, sizeof(r.nick), "%s", k->by);
		snprintf(r.user, sizeof(r.user), "%s", k->by_user);
		snprintf(r.host, sizeof(r.host), "%s", k->by_host);
		snprintf(r.other, sizeof(r.other), "%s", to->nick);
		cluster_batch_add(&w->cluster_out, CLUSTER_TO_NODE, to->origin, &r);
	}
	chat_kick_free(k);
}

/* A kick from another node, for a member here: carried out by its own
 * worker, in the room of that name now (or, with no room, out of the
 * chat). */
static void relay_kick(struct worker *w, const struct wire_record *r)
{
	struct member_address to;
	if (!rooms_find(w->pool->rooms, r->other, &to) || to.worker < 0 || to.conn_id != r->session)
		return; /* gone meanwhile */
	if (!r->room[0]) {
		char text[sizeof(((struct disconnect *)NULL)->text)];
		snprintf(text, sizeof(text), "%.*s", (int)r->text_len, r->text);
		worker_post_disconnect(w->pool->workers[to.worker], to.fd, to.conn_id, "kicked", text,
				       r->actor);
		return;
	}
	struct room_history *rh;
	struct room *room = rooms_room(w->pool->rooms, r->room, &rh);
	if (!room)
		return;
	size_t n = r->text_len > TOPIC_MAX_LEN ? TOPIC_MAX_LEN : r->text_len;
	struct kick *k = xcalloc(1, sizeof(*k) + n + 1);
	snprintf(k->room, sizeof(k->room), "%s", room->name);
	snprintf(k->by, sizeof(k->by), "%s", r->nick);
	snprintf(k->by_user, sizeof(k->by_user), "%s", r->user);
	snprintf(k->by_host, sizeof(k->by_host), "%s", r->host);
	k->conn_id = r->session;
	k->room_ref = room;
	k->joined_seq = 0; /* decided there: whatever its arrival here */
	memcpy(k->reason, r->text, n);
	k->reason_len = n;
	worker_send_kick(w, &to, k);
}

void worker_cluster_member(struct worker *w, struct session *s, int change, const char *room,
			   const char *other, const char *text, size_t text_len)
{
	struct cluster *c = w->pool->cluster;
	if (!c)
		return;
	struct wire_record r = {
		.kind = WIRE_MEMBER,
		.change = (enum remote_change)change,
		.origin = cluster_self(c),
		.session = s->id,
		.id = ++s->cluster_version,
		.time_ms = wall_clock_ms(),
		.text = text,
		.text_len = text ? text_len : 0,
	};
	const struct member *m = &s->member;
	snprintf(r.node, sizeof(r.node), "%s", cluster_node(c));
	snprintf(r.room, sizeof(r.room), "%s", room ? room : "");
	snprintf(r.nick, sizeof(r.nick), "%s", m->nick);
	snprintf(r.user, sizeof(r.user), "%s", m->user);
	snprintf(r.host, sizeof(r.host), "%s", m->host);
	snprintf(r.other, sizeof(r.other), "%s", other ? other : "");
	snprintf(r.realname, sizeof(r.realname), "%s", m->realname);
	snprintf(r.account, sizeof(r.account), "%s", m->account);
	if (change != REMOTE_QUIT)
		rooms_member_rooms(w->pool->rooms, m, r.rooms, sizeof(r.rooms));
	cluster_batch_add(&w->cluster_out, CLUSTER_TO_MEMBERS, 0, &r);
	/* Its nick claimed when taken (its first record, or a rename), given
	 * back when it goes. */
	if (change == REMOTE_QUIT || change == REMOTE_RENAMED)
		cluster_release(c, change == REMOTE_QUIT ? m->nick : other, s->id);
	if (change == REMOTE_RENAMED || s->cluster_version == 1)
		cluster_claim(c, m->nick, s->id, w->index, conn_of(s)->fd);
}

void worker_cluster_flush(struct worker *w)
{
	if (w->cluster_out) {
		cluster_post(w->pool->cluster, w->cluster_out);
		w->cluster_out = NULL;
	}
}

/* Another node asked for our members: each worker tells the state of
 * its own; after NATS was away (RECLAIM), their nicks are claimed again,
 * as another node may have taken one meanwhile. */
static void tell_all_members(struct worker *w, bool reclaim)
{
	for (size_t fd = 0; fd < w->by_fd_size; fd++) {
		struct conn *c = w->by_fd[fd];
		if (!c || c->state != CONN_OPEN || !chat_joined(&c->s))
			continue;
		worker_cluster_member(w, &c->s, REMOTE_STATE, NULL, NULL, NULL, 0);
		if (reclaim)
			cluster_claim(w->pool->cluster, c->s.member.nick, c->s.id, w->index, c->fd);
	}
}

/* Node TO, new to this one, asked for what it may not know: the topic
 * and modes of each room changed through the cluster, as made here. */
static void tell_rooms(struct worker *w, uint64_t to)
{
	struct cluster *c = w->pool->cluster;
	struct room_info *list;
	size_t n = rooms_list(w->pool->rooms, &list);
	for (size_t i = 0; i < n; i++) {
		const struct room_info *st = &list[i];
		if (st->state_seq == 0)
			continue;
		struct wire_record r = { .kind = WIRE_ROOM, .change = WIRE_STATE,
					 .origin = cluster_self(c), .id = st->state_seq,
					 .time_ms = (int64_t)st->topic_time * 1000, .text = st->topic,
					 .text_len = strlen(st->topic) };
		snprintf(r.node, sizeof(r.node), "%s", cluster_node(c));
		snprintf(r.room, sizeof(r.room), "%s", st->name);
		snprintf(r.other, sizeof(r.other), "%s", st->topic_by);
		snprintf(r.rooms, sizeof(r.rooms), "%s%s%s", st->topic_ops ? "t" : "",
			 st->no_external ? "n" : "", st->secret ? "s" : "");
		cluster_batch_add(&w->cluster_out, CLUSTER_TO_NODE, to, &r);
	}
	free(list);
}

#define ROOM_RECORD_WAIT_MS 30000
#define ROOM_RECORDS_WAITING 1024

/* A record of a room that is not here yet (see room_record()). */
struct pending_room {
	struct wire_record r;  /* its text a copy of its own */
	uint64_t seq;          /* the stream's number (0: sent to this node) */
	uint64_t until_ms;
};

/* What R's nick did, with TEXT (cleaned), as an event numbered ID. */
static struct chat_event record_event(const struct worker *w, const struct wire_record *r,
				      const char *text, size_t len, uint64_t id)
{
	return (struct chat_event){
		.nick = r->nick, .user = r->user, .host = r->host, .room = r->room,
		.text = text, .text_len = len,
		.formatting = (r->flags & WIRE_FORMATTING) != 0,
		.notice = (r->flags & WIRE_NOTICE) != 0,
		.id = id, .time_ms = r->time_ms, .server = w->cfg->irc_server_name,
	};
}

/* R, a room's change read from the stream (SEQ), or the room as another
 * node has it (tell_rooms()), made here, its text cleaned already: false
 * while there is no such room here. */
static bool room_record(struct worker *w, const struct wire_record *r, uint64_t seq)
{
	size_t len = r->text_len;
	int err;
	if (r->change == WIRE_STATE) {
		struct room_info st = { .topic_time = (time_t)(r->time_ms / 1000), .state_seq = r->id,
					.topic_ops = strchr(r->rooms, 't') != NULL,
					.no_external = strchr(r->rooms, 'n') != NULL,
					.secret = strchr(r->rooms, 's') != NULL };
		snprintf(st.name, sizeof(st.name), "%s", r->room);
		snprintf(st.topic, sizeof(st.topic), "%.*s", (int)len, r->text);
		snprintf(st.topic_by, sizeof(st.topic_by), "%s", r->other);
		struct store_room saved = { 0 };
		err = rooms_apply_state(w->pool->rooms, &st, &saved);
		if (err == 0 && saved.founder[0])
			worker_store_room(w, &saved);
	} else {
		struct chat_event ev = record_event(w, r, r->text, len, seq);
		ev.kind = r->change == WIRE_TOPIC ? CHAT_TOPIC : CHAT_MODE;
		ev.other = r->other[0] ? r->other : NULL;
		ev.stream_seq = seq;
		err = chat_room_relayed(w, &ev);
	}
	return err != -ENOENT;
}

/* R made here, or kept for a while if the member that makes its room
 * here is still on its way (a member's record can come after its room's
 * change, and a room's state comes straight, not through the stream). */
static void room_record_or_wait(struct worker *w, const struct wire_record *r, uint64_t seq)
{
	if (room_record(w, r, seq) || w->pending_count == ROOM_RECORDS_WAITING)
		return;
	w->pending_rooms = xrealloc(w->pending_rooms, (w->pending_count + 1) * sizeof(*w->pending_rooms));
	struct pending_room *p = &w->pending_rooms[w->pending_count++];
	p->r = *r;
	char *text = xmalloc(r->text_len + 1);
	memcpy(text, r->text, r->text_len);
	p->r.text = text;
	p->seq = seq;
	p->until_ms = w->now_ms + ROOM_RECORD_WAIT_MS;
}

/* The records waiting for their room, tried again in the order they
 * came (and those waiting too long dropped). */
static void retry_room_records(struct worker *w)
{
	size_t kept = 0;
	for (size_t i = 0; i < w->pending_count; i++) {
		struct pending_room *p = &w->pending_rooms[i];
		if (!room_record(w, &p->r, p->seq) && w->now_ms < p->until_ms)
			w->pending_rooms[kept++] = *p;
		else
			free((char *)p->r.text);
	}
	w->pending_count = kept;
	if (kept == 0) {
		free(w->pending_rooms);
		w->pending_rooms = NULL;
	}
}

/* The nick D names is another node's: its session, if it still has it,
 * is renamed. */
static void nick_refused(struct worker *w, const struct cluster_delivery *d)
{
	struct conn *c = open_conn(w, (int)d->seq, d->origin);
	if (c && chat_joined(&c->s) && strcasecmp(c->s.member.nick, d->node) == 0)
		chat_nick_taken(w, &c->s);
}

/* A private message from another node, for the session it names. */
static void relay_private(struct worker *w, const struct wire_record *r,
			  const struct chat_event *ev)
{
	struct member_address to;
	if (!rooms_find(w->pool->rooms, r->other, &to) || to.worker < 0 || to.conn_id != r->session)
		return; /* gone meanwhile */
	struct msg *m = event_encode(to.format, ev);
	worker_send_direct(w, &to, m);
	msg_unref(m);
}

/* Records of the stream (SEQ > 0), each kept and told here in the
 * stream's order, or sent to this node alone (SEQ 0): only worker 0 gets
 * them. A record that does not decode, or names what no client could, is
 * dropped and logged: a node of another version, or something else
 * publishing to the stream. */
static void relay_cluster(struct worker *w, const struct cluster_delivery *d)
{
	uint64_t self = cluster_self(w->pool->cluster);
	struct wire_record r;
	size_t off = 0;
	int k;
	while ((k = wire_decode(d->data, d->len, &off, &r)) > 0) {
		bool from_stream = d->seq > 0;
		if (r.kind == WIRE_KICK) {
			if (!from_stream && r.origin != self)
				relay_kick(w, &r);
			continue;
		}
		if (r.kind == WIRE_HELLO) {
			if (!from_stream) {
				for (int i = 0; i < w->pool->count; i++)
					worker_post_tell_all(w->pool->workers[i], false);
				tell_rooms(w, r.origin);
			}
			continue;
		}
		/* Told here when it happened; or, read again after a restart,
		 * by this node's earlier life (its members gone, its lines
		 * said while the stream was away in the store already). A
		 * room's change made here while the stream was away is made
		 * again in the stream's order, as on every node. */
		bool ours = r.origin == self || strcmp(r.node, cluster_node(w->pool->cluster)) == 0;
		if (ours && (r.kind == WIRE_MEMBER ||
			     (r.kind != WIRE_ROOM && (r.flags & WIRE_DELIVERED))))
			continue;
		bool by_nick = r.kind != WIRE_ROOM || r.change != WIRE_STATE;
		if ((by_nick && !text_is_valid_name(r.nick, strlen(r.nick))) ||
		    (r.kind != WIRE_MEMBER && r.kind != WIRE_PRIVATE &&
		     !text_is_valid_name(r.room, strlen(r.room)))) {
			k = -EBADMSG;
			break;
		}
		struct text_buf clean;
		text_buf_clean_chat(&clean, r.text, r.text_len);
		/* The stream's number: the same on every node. */
		struct chat_event ev = record_event(w, &r, clean.text, clean.len,
						    from_stream ? d->seq : worker_event_id(w));
		if (r.kind == WIRE_MEMBER && from_stream) {
			struct remote_update u = {
				.change = r.change, .origin = r.origin, .node = r.node,
				.session = r.session, .version = r.id, .nick = r.nick, .user = r.user,
				.host = r.host, .realname = r.realname, .account = r.account,
				.rooms = r.rooms, .room = r.room, .other = r.other, .text = clean.text,
				.text_len = text_buf_blank(&clean) ? 0 : clean.len,
				.formatting = clean.formatting, .id = d->seq, .time_ms = r.time_ms,
			};
			chat_remote(w, w->pool->remotes, &u);
			if (w->pending_count)
				retry_room_records(w);
		} else if (r.kind == WIRE_PRIVATE && !from_stream && !text_buf_blank(&clean)) {
			ev.kind = CHAT_PRIVATE;
			ev.other = r.other;
			ev.action = (r.flags & WIRE_ACTION_FLAG) != 0;
			relay_private(w, &r, &ev);
		} else if ((r.kind == WIRE_SAID || r.kind == WIRE_ACTION) && from_stream &&
			   !text_buf_blank(&clean)) {
			ev.kind = r.kind == WIRE_ACTION ? CHAT_ACTION : CHAT_SAID;
			ev.stream_seq = d->seq;
			chat_relayed(w, &ev, r.origin == self ? r.session : 0);
		} else if (r.kind == WIRE_ROOM && from_stream == (r.change != WIRE_STATE)) {
			r.text = clean.text; /* a topic may be blank: none */
			r.text_len = text_buf_blank(&clean) ? 0 : clean.len;
			room_record_or_wait(w, &r, d->seq);
		}
		text_buf_free(&clean);
	}
	if (k < 0) {
		uint64_t now = w->now_ms;
		if (now - w->cluster_bad_logged_ms >= 60000 || !w->cluster_bad_logged_ms) {
			w->cluster_bad_logged_ms = now ? now : 1;
			log_event(LOG_WARNING, LOG_FIELDS(.event = "cluster_error"),
				  "cluster: a message (%zu bytes) %s is not chatd's, dropped", d->len,
				  d->seq ? "of the stream" : "sent to this node");
		}
	}
}

static void handle_cluster(struct worker *w, const struct cluster_delivery *d)
{
	if (!w->pool->cluster)
		return;
	if (d->what == CLUSTER_RECORDS)
		relay_cluster(w, d);
	else if (d->what == CLUSTER_NODE_LOST)
		chat_remote_node_lost(w, w->pool->remotes, d->origin, d->node);
	else if (d->what == CLUSTER_NICK_REFUSED)
		nick_refused(w, d);
	else
		tell_all_members(w, d->reclaim);
}

void worker_store_room(struct worker *w, const struct store_room *room)
{
	if (!w->pool->store)
		return;
	/* After the lines said before it. */
	worker_store_flush(w);
	store_save_room(w->pool->store, room);
}

void worker_store_flush(struct worker *w)
{
	if (w->store_count) {
		store_add(w->pool->store, w->store_lines, w->store_count);
		w->store_count = 0;
	}
}

void worker_history_query(struct worker *w, struct session *s, struct store_query *q)
{
	if (!w->pool->store) {
		q->error = -ENOSYS;
		codec_history(w, s, q);
		store_query_free(q);
		return;
	}
	/* Our own lines first, so the answer has them. */
	worker_store_flush(w);
	q->ctx = w;
	q->fd = conn_of(s)->fd;
	q->conn_id = s->id;
	q->done = history_answered;
	store_query(w->pool->store, q);
	lifecycle_wait(w, conn_of(s));
}

bool worker_nick_registered(struct worker *w, const char *nick)
{
	return w->pool->accounts && accounts_registered(w->pool->accounts, nick);
}

/* On the accounts thread: R's answer to its asker's worker. */
static void account_answered(struct account_request *r)
{
	post(r->ctx, (struct event){ .kind = EV_ACCOUNT, .ptr = r });
}

void worker_account_request(struct worker *w, struct session *s, struct account_request *r)
{
	r->ctx = w;
	r->fd = conn_of(s)->fd;
	r->conn_id = s->id;
	r->done = account_answered;
	peer_host(s->peer, r->address, sizeof(r->address));
	if (!w->pool->accounts) {
		r->result = -ENOSYS;
		codec_account(w, s, r);
		account_request_free(r);
		return;
	}
	accounts_request(w->pool->accounts, r);
	lifecycle_wait(w, conn_of(s));
}

/* The connection FD + ID, if it is still there and open. */

void worker_post_shutdown(struct worker *w)
{
	post(w, (struct event){ .kind = EV_SHUTDOWN });
}

uint64_t worker_last_pong(struct worker *w)
{
	return atomic_load_explicit(&w->pong, memory_order_acquire);
}

const struct worker_stats *worker_stats(const struct worker *w)
{
	return &w->stats;
}

int worker_connection_count(struct worker *w)
{
	return atomic_load_explicit(&w->connection_count, memory_order_relaxed);
}

/* ---- for the chat core (host.h) -------------------------------------------- */

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

bool worker_log_allowed(struct worker *w, const struct session *s, int priority,
			struct log_note *ret)
{
	return ip_limit_log_allowed(w->pool->ip_limit, &container_of(s, struct conn, s)->ip, priority, w->now_ms, ret);
}

uint64_t worker_event_id(struct worker *w)
{
	return w->pool->id_base + ++w->events * (uint64_t)w->pool->count + (uint64_t)w->index;
}

void worker_said(struct worker *w)
{
	stat_add(&w->stats.messages, 1);
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

/* ---- reading ------------------------------------------------------------- */

struct line_ctx {
	struct worker *w;
	struct conn *c;
};

static bool on_line(void *ctx, const char *line, size_t len)
{
	struct line_ctx *lc = ctx;
	lc->c->last_line_ms = lc->w->now_ms;
	stat_add(&lc->w->stats.lines_in, 1);
	/* A line that asked the store or accounts thread something stops
	 * the rest until the answer (see hold()). */
	return codec_line(lc->w, &lc->c->s, line, len) && lifecycle_reading(lc->c) &&
	       !lc->c->waiting;
}

static bool on_too_long(void *ctx)
{
	struct line_ctx *lc = ctx;
	return codec_too_long(lc->w, &lc->c->s) && lifecycle_reading(lc->c);
}

static bool on_dropped(void *ctx, size_t bytes)
{
	struct line_ctx *lc = ctx;
	chat_bytes_dropped(lc->w, &lc->c->s, bytes);
	return lifecycle_reading(lc->c);
}

static const struct framer_handler line_handler = { .line = on_line, .too_long = on_too_long,
						    .dropped = on_dropped };

/* Keeps LEN bytes of C's input, read but not handled, for when the answer
 * it waits for has come (bounded: nothing more is read meanwhile). */
static void hold(struct conn *c, const char *data, size_t len)
{
	if (len == 0)
		return;
	c->held = xrealloc(c->held, c->held_len + len);
	memcpy(c->held + c->held_len, data, len);
	c->held_len += len;
}

/* LEN bytes of what C sent, in the clear. */
static bool feed(struct line_ctx *lc, const char *data, size_t len)
{
	struct conn *c = lc->c;
	if (c->waiting) {
		hold(c, data, len);
		return lifecycle_reading(c);
	}
	if (!framer_feed(&c->framer, data, len, codec_max_line(lc->w->cfg, &c->s), &line_handler, lc) &&
	    c->waiting && lifecycle_reading(c))
		hold(c, data + c->framer.taken, len - c->framer.taken);
	return lifecycle_reading(c);
}

/* The line-timeout clock after a feed: it times an unfinished line from
 * its start, not from that of a line the feed finished. */
static void partial_clock(struct worker *w, struct conn *c)
{
	if (!framer_has_partial(&c->framer))
		c->partial_since_ms = 0;
	else if (framer_partial_is_new(&c->framer))
		c->partial_since_ms = w->now_ms;
}

bool worker_feed(struct worker *w, struct conn *c, const char *data, size_t len)
{
	struct line_ctx lc = { w, c };
	return feed(&lc, data, len);
}

/* An answer C waited for came (and was handled): when it waits for no
 * more, what it held is handled now, as if just read. */
static void answered(struct worker *w, struct conn *c)
{
	if (!lifecycle_answered(w, c) || !c->held)
		return;
	char *held = c->held;
	size_t n = c->held_len;
	c->held = NULL;
	c->held_len = 0;
	struct line_ctx lc = { w, c };
	feed(&lc, held, n);
	free(held);
	fanout_flush(w);
	partial_clock(w, c);
}

static bool on_established(void *ctx)
{
	struct line_ctx *lc = ctx;
	stat_add(&lc->w->stats.tls_handshakes, 1);
	lifecycle_established(lc->w, lc->c);
	return lifecycle_reading(lc->c);
}

/* LEN bytes from C, decrypted if over TLS: lines, or for the web port,
 * HTTP and then WebSocket frames. */
static bool take_input(struct line_ctx *lc, char *data, size_t len)
{
	if (!lc->c->web)
		return feed(lc, data, len);
	web_input(lc->w, lc->c, data, len);
	return lifecycle_reading(lc->c);
}

static bool on_plaintext(void *ctx, char *data, size_t len)
{
	return take_input(ctx, data, len);
}

static const struct tls_stream_handler tls_handler = { .established = on_established,
							.data = on_plaintext };

/* N bytes from a TLS client: its handshake, then its lines. */
static void tls_readable(struct line_ctx *lc, size_t n)
{
	struct worker *w = lc->w;
	struct conn *c = lc->c;

	if (c->state != CONN_NEW && !lifecycle_reading(c))
		return; /* lingering: the peer's last bytes are of no use */
	bool handshake = !tls_stream_established(c->tls);
	enum tls_status status = tls_stream_input(c->tls, w->read_buffer, n, &tls_handler, lc);
	/* A handshake message, an alert, a session ticket to send (replies
	 * to the lines it carried were queued as anyone's are). */
	if (c->state != CONN_DEAD && tls_stream_pending(c->tls) > 0)
		lifecycle_mark_for_flush(w, c);
	switch (status) {
	case TLS_OK:
	case TLS_STOPPED:
		break;
	case TLS_CLOSED:
		lifecycle_peer_closed(w, c);
		break;
	case TLS_FAILED:
		if (handshake)
			stat_add(&w->stats.tls_failures, 1);
		if (handshake)
			tls_failure_log(c->s.peer, tls_stream_reason(c->tls), w->now_ms);
		else
			log_info("%s: TLS error: %s", c->s.peer, tls_stream_reason(c->tls));
		lifecycle_drain(w, c, "tls", NULL, 0); /* with its alert */
		break;
	}
}

/* After each epoll_wait and read: the time, and whether the worker was
 * stopped meanwhile (a stop can come anywhere in an iteration, and what
 * piled up then must not be charged to the clock before it). */
static void read_clock(struct worker *w)
{
	uint64_t last = w->now_ms;
	w->now_ms = monotonic_ms();
	timeouts_woke(w, last);
}

static void conn_readable(struct worker *w, struct conn *c)
{
	/* Past this iteration's budget, the rest waits in the socket (the
	 * level-triggered epoll reports it again next iteration). */
	if (w->read_budget == 0)
		return;
	ssize_t n = read(c->fd, w->read_buffer, sizeof(w->read_buffer));

	if (n > 0) {
		read_clock(w);
		stat_add(&w->stats.bytes_in, (uint64_t)n);
		w->read_budget -= (size_t)n < w->read_budget ? (size_t)n : w->read_budget;
		struct line_ctx lc = { w, c };
		if (c->tls)
			tls_readable(&lc, (size_t)n);
		else if (lifecycle_reading(c))
			take_input(&lc, w->read_buffer, (size_t)n);
		else
			return; /* lingering: the peer's last bytes are of no use */
		fanout_flush(w);
		partial_clock(w, c);
		return;
	}
	if (n == 0) {
		lifecycle_peer_closed(w, c);
		return;
	}
	if (errno == EAGAIN || errno == EINTR)
		return;
	if (errno != ECONNRESET)
		log_errno(LOG_INFO, errno, "read from %s", c->s.peer);
	lifecycle_kill(w, c, errno == ECONNRESET ? "reset" : "error");
}

static void handle_inbox(struct worker *w);

static void conn_event(struct worker *w, struct conn *c, uint32_t events)
{
	/* Lines posted to us before this client's input arrived come first,
	 * even when they were posted after this epoll batch began. */
	if (c->state != CONN_DEAD && inbox_pending(&w->inbox))
		handle_inbox(w);
	switch (c->state) {
	case CONN_DEAD:
		return;
	case CONN_DRAINING:
		if (events & (EPOLLERR | EPOLLHUP))
			lifecycle_kill(w, c, c->close_reason);
		else if (events & EPOLLOUT)
			lifecycle_mark_for_flush(w, c);
		return;
	case CONN_NEW:
	case CONN_OPEN:
	case CONN_LINGERING:
		break;
	}
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		conn_readable(w, c);
	if ((events & EPOLLOUT) && c->state != CONN_DEAD)
		lifecycle_mark_for_flush(w, c);
}

/* ---- the inbox ------------------------------------------------------------- */

static void apply_config(struct worker *w, struct config *cfg)
{
	if (w->cfg)
		config_unref(w->cfg);
	w->cfg = cfg;
	if (w->motd)
		msg_unref(w->motd);
	w->motd = codec_motd(cfg->motd_lines, cfg->motd_count);
}

/* TEXT (LEN bytes) as the server's notice to every client in the chat,
 * each format encoded once; with SHUTDOWN, then each leaves, and those not
 * yet in the chat are let go. */
static void tell_everyone(struct worker *w, const char *text, size_t len, bool shutdown)
{
	struct text_buf clean;
	text_buf_clean_chat(&clean, text, len);
	struct chat_event ev = { .kind = CHAT_NOTICE, .text = clean.text, .text_len = clean.len,
				 .formatting = clean.formatting, .server = w->cfg->irc_server_name };
	struct msg *notice[FORMAT_COUNT] = { NULL }; /* each encoded once, if needed */

	for (size_t fd = 0; fd < w->by_fd_size; fd++) {
		struct conn *c = w->by_fd[fd];
		if (shutdown && c && c->state == CONN_NEW) /* a TLS handshake: nothing to say */
			lifecycle_kill(w, c, "shutdown");
		if (!c || c->state != CONN_OPEN)
			continue;
		enum format f = c->s.member.format;
		if (!notice[f])
			notice[f] = event_encode(f, &ev);
		worker_send(w, &c->s, notice[f]);
		if (shutdown)
			lifecycle_drain(w, c, "shutdown", NULL, 0);
	}
	for (int f = 0; f < FORMAT_COUNT; f++)
		if (notice[f])
			msg_unref(notice[f]);
	text_buf_free(&clean);
}

static void begin_shutdown(struct worker *w)
{
	static const char text[] = "server shutting down";
	w->shutting_down = true;
	tell_everyone(w, text, sizeof(text) - 1, true);
}

/* An admin puts C out for REASON ("kicked", "banned"), telling it TEXT
 * (when it can be told: not in a TLS handshake or on HTTP), and the log
 * who did it (ACTOR). */
static void put_out(struct worker *w, struct conn *c, const char *reason, const char *text,
		    const char *actor)
{
	log_event(LOG_NOTICE, LOG_FIELDS(.event = reason, .peer = c->s.peer, .nick = c->s.member.nick,
					 .reason = reason, .actor = actor),
		  "%s %s %s: %s", reason, c->s.peer, c->s.member.nick[0] ? c->s.member.nick : "-", text);
	if (c->state != CONN_OPEN) {
		lifecycle_kill(w, c, reason);
		return;
	}
	struct chat_event ev = { .kind = CHAT_CLOSING, .text = text, .text_len = strlen(text),
				 .host = c->s.member.host };
	struct msg *m = event_encode(c->s.member.format, &ev);
	worker_send(w, &c->s, m);
	msg_unref(m);
	lifecycle_drain(w, c, reason, NULL, 0);
}

static void disconnect_local(struct worker *w, int fd, uint64_t id, const struct disconnect *d)
{
	struct conn *c = open_conn(w, fd, id);
	if (c)
		put_out(w, c, d->reason, d->text, d->actor);
}

/* The ban in force on C's address (once known: a trusted proxy's client
 * is known from its request) or nick; NULL: none. */
static const struct ban *ban_on(struct worker *w, const struct conn *c)
{
	if (!w->bans)
		return NULL;
	int64_t now = time(NULL);
	uint8_t addr[16];
	const struct ban *b = NULL;
	if ((c->ip_counted || c->port_proto != PROTO_WEB) && ban_peer_address(c->s.peer, addr))
		b = ban_list_address(w->bans, addr, now);
	if (!b && chat_joined(&c->s))
		b = ban_list_nick(w->bans, c->s.member.nick, now);
	return b;
}

/* New bans: whoever they match goes at once. */
static void apply_bans(struct worker *w, struct ban_list *bans)
{
	ban_list_unref(w->bans);
	w->bans = bans;
	for (size_t fd = 0; fd < w->by_fd_size; fd++) {
		struct conn *c = w->by_fd[fd];
		if (!c || (c->state != CONN_OPEN && c->state != CONN_NEW))
			continue;
		const struct ban *b = ban_on(w, c);
		if (b) {
			char text[BAN_REASON_MAX + 16];
			ban_message(b, text, sizeof(text));
			put_out(w, c, "banned", text, b->actor);
		}
	}
}

bool worker_refuse_banned(struct worker *w, struct conn *c)
{
	const struct ban *b = ban_on(w, c);
	if (!b)
		return false;
	char text[BAN_REASON_MAX + 16];
	ban_message(b, text, sizeof(text));
	stat_add(&w->stats.banned, 1);
	/* Within [log] per_address_burst, as the main thread's refusals. */
	struct log_note note;
	bool logged = ip_limit_log_allowed(w->pool->ip_limit, &c->ip, LOG_NOTICE, w->now_ms, &note);
	if (logged || log_tapping("reject"))
		log_event(LOG_NOTICE, LOG_FIELDS(.event = "reject", .peer = c->s.peer, .reason = "banned",
						 .suppressed = note.suppressed, .tap_only = !logged),
			  "rejected %s: %s%s", c->s.peer, text, note.text);
	return true;
}

bool worker_admin_kick(struct worker *w, const char *nick, const char *text, const char *actor,
		       char ret_nick[NAME_MAX_LEN + 1])
{
	return worker_pool_kick(w->pool, nick, text, actor, ret_nick);
}

int worker_admin_wall(struct worker *w, const char *text, const char *actor)
{
	return worker_pool_wall(w->pool, text, actor);
}

bool worker_nick_banned(struct worker *w, const char *nick)
{
	return ban_list_nick(w->bans, nick, time(NULL)) != NULL;
}

static void handle_inbox(struct worker *w)
{
	size_t n;
	struct event *events = inbox_take(&w->inbox, &n);

	for (size_t i = 0; i < n; i++) {
		struct event *ev = &events[i];
		switch (ev->kind) {
		case EV_CONNECTION:
			lifecycle_add(w, ev->fd, ev->ptr);
			free(ev->ptr);
			break;
		case EV_ROOM: {
			size_t run = 1;
			while (i + run < n && events[i + run].kind == EV_ROOM && events[i + run].ptr == ev->ptr)
				run++;
			fanout_room_events(w, ev, run);
			i += run - 1;
			break;
		}
		case EV_DIRECT:
			fanout_direct_local(w, ev->fd, ev->id, ev->msg);
			msg_unref(ev->msg);
			break;
		case EV_KICK:
			fanout_kick_local(w, ev->fd, ev->id, ev->ptr);
			break;
		case EV_CONFIG:
			apply_config(w, ev->ptr);
			break;
		case EV_TLS:
			SSL_CTX_free(w->tls_ctx);
			w->tls_ctx = ev->ptr;
			break;
		case EV_SITE:
			site_unref(w->site);
			w->site = ev->ptr;
			break;
		case EV_HISTORY: {
			struct store_query *q = ev->ptr;
			struct conn *c = open_conn(w, q->fd, q->conn_id);
			if (c)
				codec_history(w, &c->s, q);
			store_query_free(q);
			if (c)
				answered(w, c);
			break;
		}
		case EV_ACCOUNT: {
			struct account_request *r = ev->ptr;
			struct conn *c = open_conn(w, r->fd, r->conn_id);
			if (c)
				codec_account(w, &c->s, r);
			account_request_free(r);
			if (c)
				answered(w, c);
			break;
		}
		case EV_DISCONNECT:
			disconnect_local(w, ev->fd, ev->id, ev->ptr);
			free(ev->ptr);
			break;
		case EV_BANS:
			apply_bans(w, ev->ptr);
			break;
		case EV_WALL:
			tell_everyone(w, ev->ptr, strlen(ev->ptr), false);
			free(ev->ptr);
			break;
		case EV_CLUSTER:
			handle_cluster(w, ev->ptr);
			free(ev->ptr);
			break;
		case EV_PING:
			atomic_store_explicit(&w->pong, ev->id, memory_order_release);
			break;
		case EV_SHUTDOWN:
			begin_shutdown(w);
			break;
		}
	}
}

/* ---- the loop -------------------------------------------------------------- */

static void handle_events(struct worker *w, struct epoll_event *events, int n)
{
	bool ticked = false;

	if (n <= 0) /* a timeout: a leaving connection's deadline (lifecycle.c) */
		return;
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
		timeouts_tick(w);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct epoll_event events[EPOLL_BATCH];
	const char *why_not;
	uint64_t woke_ns = monotonic_ns();

	w->writer = writer_new(w->pool->io_uring, &why_not);
	if (why_not) /* it worked for the check at start: a limit reached since? */
		log_warning("worker %d: io_uring is not usable (%s); it writes with writev", w->index,
			    why_not);

	for (;;) {
		int timeout = lifecycle_expire_drains(w);
		lifecycle_settle(w);
		if (w->shutting_down && atomic_load(&w->connection_count) == 0)
			break;
		stat_add(&w->stats.busy_ns, monotonic_ns() - woke_ns);
		int n = epoll_wait(w->epoll_fd, events, EPOLL_BATCH, timeout);
		woke_ns = monotonic_ns();
		stat_add(&w->stats.loops, 1);
		read_clock(w); /* before EINTR: SIGCONT ends a stop with it */
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
			read_clock(w); /* a stop may have come in between */
			if (n > 0)
				handle_events(w, events, n);
		}
		lifecycle_settle(w);
	}
	return NULL;
}

struct worker *worker_new(struct worker_pool *pool, int index, struct config *cfg)
{
	struct worker *w = xcalloc(1, sizeof(*w));
	w->pool = pool;
	w->index = index;
	w->epoll_fd = -1;
	w->tick_fd = -1;
	w->now_ms = monotonic_ms();
	w->inbox_error = inbox_init(&w->inbox, index);
	pool->inboxes[index] = &w->inbox;
	TAILQ_INIT(&w->flush_list);
	TAILQ_INIT(&w->close_list);
	TAILQ_INIT(&w->drain_list);
	outboxes_init(&w->outboxes, pool->count, index);
	apply_config(w, config_ref(cfg));
	return w;
}

int worker_start(struct worker *w)
{
	if (w->inbox_error)
		return w->inbox_error;
	w->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (w->epoll_fd < 0)
		return -errno;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	if (epoll_ctl(w->epoll_fd, EPOLL_CTL_ADD, w->inbox.wake_fd, &ev) < 0)
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
	char name[16];
	snprintf(name, sizeof(name), "chatd-worker%d", w->index);
	pthread_setname_np(w->thread, name);
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
static void release_event(struct event *ev, void *ctx)
{
	struct worker *w = ctx;

	if (ev->kind == EV_CONNECTION) {
		struct new_connection *nc = ev->ptr;
		close(ev->fd);
		lifecycle_forget(w, nc->ip_counted ? &nc->ip : NULL);
		free(nc);
	} else if (ev->kind == EV_ROOM) {
		room_unref(ev->ptr);
	} else if (ev->kind == EV_CONFIG) {
		config_unref(ev->ptr);
	} else if (ev->kind == EV_TLS) {
		SSL_CTX_free(ev->ptr);
	} else if (ev->kind == EV_SITE) {
		site_unref(ev->ptr);
	} else if (ev->kind == EV_KICK) {
		chat_kick_free(ev->ptr);
	} else if (ev->kind == EV_HISTORY) {
		store_query_free(ev->ptr);
	} else if (ev->kind == EV_ACCOUNT) {
		account_request_free(ev->ptr);
	} else if (ev->kind == EV_DISCONNECT || ev->kind == EV_WALL || ev->kind == EV_CLUSTER) {
		free(ev->ptr);
	} else if (ev->kind == EV_BANS) {
		ban_list_unref(ev->ptr);
	}
	if (ev->msg)
		msg_unref(ev->msg);
}

void worker_free(struct worker *w)
{
	if (!w)
		return;
	w->shutting_down = true; /* nobody is told of leaves any more */
	lifecycle_free_all(w);
	/* Events nobody handled (the worker stopped first) still own things. */
	outboxes_destroy(&w->outboxes, release_event, w);
	inbox_destroy(&w->inbox, release_event, w);
	out_cache_clear(&w->out_cache);
	writer_free(w->writer);
	for (size_t i = 0; i < w->store_count; i++)
		hline_unref(w->store_lines[i]);
	free(w->store_lines);
	cluster_batch_free(w->cluster_out);
	for (size_t i = 0; i < w->pending_count; i++)
		free((char *)w->pending_rooms[i].r.text);
	free(w->pending_rooms);
	free(w->by_fd);
	free(w->queued);
	free(w->picked);
	SSL_CTX_free(w->tls_ctx);
	site_unref(w->site);
	ban_list_unref(w->bans);
	if (w->motd)
		msg_unref(w->motd);
	if (w->cfg)
		config_unref(w->cfg);
	if (w->epoll_fd >= 0)
		close(w->epoll_fd);
	if (w->tick_fd >= 0)
		close(w->tick_fd);
	free(w);
}
