#include "autoconf.h"

#include "core/remote.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/log.h"
#include "base/text.h"
#include "base/util.h"
#include "core/chat_impl.h"

struct remote_member {
	struct remote_member *next;   /* in its hash chain */
	uint64_t origin, session, version;
	char node[NAME_MAX_LEN + 1];
	/* The nick its node gives it, while another member here has it (two
	 * nodes took it at once, and the cluster's bucket decides which keeps
	 * it: the other is renamed soon): "" when none. Not in the registry
	 * yet (member.registered false), it waits with its rooms. */
	char wanted[NAME_MAX_LEN + 1];
	char *wanted_rooms;
	struct member member;
};

/* The members of other nodes by (origin, session): only the cluster's
 * worker touches the table and the members (the registry's lock guards
 * what others read of them, as for any member). */
struct remotes {
	struct remote_member **buckets;
	size_t size, count;  /* size: a power of two */
	size_t waiting;      /* members with a wanted nick */
};

struct remotes *remotes_new(void)
{
	struct remotes *rs = xcalloc(1, sizeof(*rs));
	rs->size = 256;
	rs->buckets = xcalloc(rs->size, sizeof(*rs->buckets));
	return rs;
}

static size_t bucket_of(const struct remotes *rs, uint64_t origin, uint64_t session)
{
	uint64_t h = (origin ^ (session * 0x9e3779b97f4a7c15ULL)) * 0xff51afd7ed558ccdULL;
	return (size_t)(h >> 32) & (rs->size - 1);
}

static struct remote_member **slot_of(struct remotes *rs, uint64_t origin, uint64_t session)
{
	struct remote_member **p = &rs->buckets[bucket_of(rs, origin, session)];
	while (*p && ((*p)->origin != origin || (*p)->session != session))
		p = &(*p)->next;
	return p;
}

static void insert(struct remotes *rs, struct remote_member *rm)
{
	if (rs->count >= rs->size) {
		struct remote_member **old = rs->buckets;
		size_t old_size = rs->size;
		rs->size *= 2;
		rs->buckets = xcalloc(rs->size, sizeof(*rs->buckets));
		for (size_t i = 0; i < old_size; i++) {
			for (struct remote_member *m = old[i], *next; m; m = next) {
				next = m->next;
				struct remote_member **b = &rs->buckets[bucket_of(rs, m->origin, m->session)];
				m->next = *b;
				*b = m;
			}
		}
		free(old);
	}
	struct remote_member **b = &rs->buckets[bucket_of(rs, rm->origin, rm->session)];
	rm->next = *b;
	*b = rm;
	rs->count++;
}

static void set_wanted(struct remotes *rs, struct remote_member *rm, const char *nick,
		       const char *rooms)
{
	if (!rm->wanted[0])
		rs->waiting++;
	snprintf(rm->wanted, sizeof(rm->wanted), "%s", nick);
	if (rooms) {
		free(rm->wanted_rooms);
		rm->wanted_rooms = xstrdup(rooms);
	}
}

static void clear_wanted(struct remotes *rs, struct remote_member *rm)
{
	if (rm->wanted[0])
		rs->waiting--;
	rm->wanted[0] = 0;
	free(rm->wanted_rooms);
	rm->wanted_rooms = NULL;
}

/* RM out of the table, and freed. */
static void forget(struct remotes *rs, struct remote_member *rm)
{
	struct remote_member **p = slot_of(rs, rm->origin, rm->session);
	if (*p == rm) {
		*p = rm->next;
		rs->count--;
	}
	clear_wanted(rs, rm);
	free(rm);
}

void remotes_free(struct remotes *rs, struct rooms *r)
{
	if (!rs)
		return;
	for (size_t i = 0; i < rs->size; i++) {
		for (struct remote_member *rm = rs->buckets[i], *next; rm; rm = next) {
			next = rm->next;
			if (rm->member.registered)
				rooms_leave(r, &rm->member);
			free(rm->wanted_rooms);
			struct membership *ms;
			while ((ms = TAILQ_FIRST(&rm->member.rooms))) {
				TAILQ_REMOVE(&rm->member.rooms, ms, member_link);
				membership_free(ms);
			}
			free(rm);
		}
	}
	free(rs->buckets);
	free(rs);
}

/* An event about RM, numbered and stamped as U is. */
static struct chat_event event_of(struct worker *w, const struct remote_member *rm,
				  const struct remote_update *u, enum chat_event_kind kind)
{
	return (struct chat_event){ .kind = kind, .nick = rm->member.nick, .user = rm->member.user,
				    .host = rm->member.host, .id = u->id, .time_ms = u->time_ms,
				    .server = worker_config(w)->irc_server_name };
}

/* RM has left; the rooms it was in are told (once each member here), and
 * it is gone. */
static void quit(struct worker *w, struct remotes *rs, struct remote_member *rm,
		 const struct remote_update *u)
{
	int online = rooms_leave(worker_rooms(w), &rm->member);
	worker_online_changed(w);
	struct chat_event ev = event_of(w, rm, u, CHAT_LEFT);
	ev.online = online;
	ev.text = u->text;
	ev.text_len = u->text_len;
	ev.formatting = u->formatting;
	struct encoded e = { 0 };
	struct membership *ms;
	while ((ms = TAILQ_FIRST(&rm->member.rooms))) {
		TAILQ_REMOVE(&rm->member.rooms, ms, member_link);
		ev.room = ms->room->name;
		announce(w, 0, ms->room, ms->left_count + 1, &e, &ev, ms->change_seq, u->id);
		membership_free(ms);
	}
	encoded_free(&e);
	forget(rs, rm);
}

/* RM is now U->nick, which the rooms it is in are told: false when
 * another member here has that nick. */
static bool renamed(struct worker *w, struct remote_member *rm, const struct remote_update *u)
{
	char old[NAME_MAX_LEN + 1];
	int r = rooms_rename(worker_rooms(w), &rm->member, u->nick, old);
	if (r == -EALREADY)
		return true;
	if (r < 0)
		return false;
	struct chat_event ev = event_of(w, rm, u, CHAT_RENAMED);
	ev.nick = old;
	ev.other = rm->member.nick;
	struct encoded e = { 0 };
	struct membership *ms;
	TAILQ_FOREACH(ms, &rm->member.rooms, member_link) {
		ev.room = ms->room->name;
		encode_for(&e, ms->room, &ev);
		send_room(w, ms->room, &e, 0, ms->change_seq, u->id);
	}
	encoded_free(&e);
	return true;
}

/* The status before a room's name in a member's record ('@': operator,
 * '+': voice): its length. */
static size_t status_mark(const char *p, bool *op, bool *voice)
{
	*op = *p == '@';
	*voice = *p == '+';
	return *op || *voice;
}

/* Whether NAME is among the space-separated ROOMS. */
static bool listed(const char *rooms, const char *name)
{
	size_t len = strlen(name);
	for (const char *p = rooms; *p;) {
		bool op, voice;
		p += status_mark(p, &op, &voice);
		size_t n = strcspn(p, " ");
		if (n == len && strncasecmp(p, name, n) == 0)
			return true;
		p += n;
		p += strspn(p, " ");
	}
	return false;
}

static bool concerns(const struct remote_update *u, enum remote_change change, const char *room)
{
	return u->change == change && strcasecmp(u->room, room) == 0;
}

/* RM is in no room it is not in U->rooms any more: each is told. */
static void departures(struct worker *w, struct remote_member *rm, const struct remote_update *u)
{
	struct membership *ms, *next;
	for (ms = TAILQ_FIRST(&rm->member.rooms); ms; ms = next) {
		next = TAILQ_NEXT(ms, member_link);
		if (listed(u->rooms, ms->room->name))
			continue;
		char name[NAME_MAX_LEN + 1];
		unsigned count;
		snprintf(name, sizeof(name), "%s", ms->room->name);
		if (rooms_part(worker_rooms(w), &rm->member, name, &ms, &count) < 0)
			continue;
		struct chat_event ev = event_of(w, rm, u, CHAT_PARTED);
		ev.room = ms->room->name;
		struct encoded e = { 0 };
		if (concerns(u, REMOTE_KICKED, name)) {
			/* Everyone is told, crowded room or not: it is no
			 * departure of its own. */
			ev.kind = CHAT_KICKED;
			ev.nick = u->other;
			ev.user = ev.host = "";
			ev.other = rm->member.nick;
			ev.text = u->text;
			ev.text_len = u->text_len;
			ev.formatting = u->formatting;
			encode_for(&e, ms->room, &ev);
			send_room(w, ms->room, &e, 0, ms->change_seq, 0);
		} else {
			if (concerns(u, REMOTE_WENT, name)) {
				ev.kind = CHAT_WENT;
				ev.other = u->other;
			} else if (concerns(u, REMOTE_PARTED, name)) {
				ev.text = u->text;
				ev.text_len = u->text_len;
				ev.formatting = u->formatting;
			}
			announce(w, 0, ms->room, ms->left_count + 1, &e, &ev, ms->change_seq, 0);
		}
		encoded_free(&e);
		membership_free(ms);
		next = TAILQ_FIRST(&rm->member.rooms); /* the list changed */
	}
}

/* RM is in every room of U->rooms: each it came into is told. */
static void arrivals(struct worker *w, struct remote_member *rm, const struct remote_update *u)
{
	for (const char *p = u->rooms; *p;) {
		bool op, voice;
		p += status_mark(p, &op, &voice);
		size_t n = strcspn(p, " ");
		char name[NAME_MAX_LEN + 1];
		bool valid = n < sizeof(name) && text_is_valid_name(p, n);
		if (valid)
			snprintf(name, sizeof(name), "%.*s", (int)n, p);
		p += n;
		p += strspn(p, " ");
		if (!valid || rooms_membership(&rm->member, name))
			continue;
		struct membership *ms;
		unsigned count;
		if (rooms_join(worker_rooms(w), &rm->member, name, &ms, &count, NULL, NULL, NULL) < 0)
			continue;
		/* Its status as its node has it, not as a first arrival here
		 * would make it; later changes come as the room's. */
		rooms_set_member_status(worker_rooms(w), ms, op, voice);
		struct chat_event ev = event_of(w, rm, u, CHAT_JOINED);
		ev.room = ms->room->name;
		if (concerns(u, REMOTE_ENTERED, name)) {
			ev.kind = CHAT_ENTERED;
			ev.online = rooms_online(worker_rooms(w));
		}
		struct encoded e = { 0 };
		announce(w, 0, ms->room, count, &e, &ev, ms->joined_seq, 0);
		encoded_free(&e);
	}
}

/* RM into the registry as NICK: false when another member here has it. */
static bool enter(struct worker *w, struct remote_member *rm, const char *nick)
{
	if (rooms_enter(worker_rooms(w), &rm->member, nick, NULL, NULL, NULL, NULL) < 0)
		return false;
	worker_online_changed(w);
	return true;
}

static void log_waiting(const struct remote_member *rm, const char *nick)
{
	log_event(LOG_NOTICE, LOG_FIELDS(.event = "cluster_conflict", .nick = nick),
		  "cluster: %s of node %s has a nick a member here has: shown once the cluster "
		  "decides whose it is", nick, rm->node);
}

void chat_remote(struct worker *w, struct remotes *rs, const struct remote_update *u)
{
	struct remote_member **slot = slot_of(rs, u->origin, u->session);
	struct remote_member *rm = *slot;
	if (!rm) {
		if (u->change == REMOTE_QUIT)
			return;
		rm = xcalloc(1, sizeof(*rm));
		rm->origin = u->origin;
		rm->session = u->session;
		snprintf(rm->node, sizeof(rm->node), "%s", u->node);
		struct member *m = &rm->member;
		m->worker = -1;
		m->fd = -1;
		m->origin = u->origin;
		m->conn_id = u->session;
		m->format = FORMAT_LINE;
		m->signon = time(NULL);
		snprintf(m->user, sizeof(m->user), "%s", u->user);
		snprintf(m->host, sizeof(m->host), "%s", u->host);
		snprintf(m->realname, sizeof(m->realname), "%s", u->realname);
		snprintf(m->via, sizeof(m->via), "@%s", u->node);
		insert(rs, rm);
	} else if (u->version <= rm->version) {
		return; /* seen already, or older than what was */
	}
	rm->version = u->version;
	if (u->change == REMOTE_QUIT) {
		if (rm->member.registered)
			quit(w, rs, rm, u);
		else
			forget(rs, rm);
		return;
	}
	if (!rm->member.registered) {
		if (!enter(w, rm, u->nick)) {
			if (strcasecmp(rm->wanted, u->nick) != 0)
				log_waiting(rm, u->nick);
			set_wanted(rs, rm, u->nick, u->rooms);
			return;
		}
		clear_wanted(rs, rm);
	} else if (strcmp(rm->member.nick, u->nick) != 0) {
		if (renamed(w, rm, u)) {
			clear_wanted(rs, rm);
		} else {
			if (strcasecmp(rm->wanted, u->nick) != 0)
				log_waiting(rm, u->nick);
			set_wanted(rs, rm, u->nick, NULL);
		}
	}
	if (strcmp(rm->member.account, u->account) != 0)
		rooms_set_account(worker_rooms(w), &rm->member, u->account);
	departures(w, rm, u);
	arrivals(w, rm, u);
}

void chat_remote_retry(struct worker *w, struct remotes *rs)
{
	for (size_t i = 0; rs->waiting && i < rs->size; i++) {
		for (struct remote_member *rm = rs->buckets[i]; rm; rm = rm->next) {
			if (!rm->wanted[0])
				continue;
			struct remote_update u = {
				.change = REMOTE_STATE, .origin = rm->origin, .node = rm->node,
				.session = rm->session, .version = rm->version, .nick = rm->wanted,
				.rooms = rm->wanted_rooms ? rm->wanted_rooms : "", .room = "", .other = "",
				.id = worker_event_id(w), .time_ms = wall_clock_ms(),
			};
			if (!rm->member.registered) {
				if (!enter(w, rm, rm->wanted))
					continue;
				arrivals(w, rm, &u);
			} else if (!renamed(w, rm, &u)) {
				continue;
			}
			clear_wanted(rs, rm);
		}
	}
}

size_t chat_remote_sweep(struct worker *w, struct remotes *rs,
			 bool (*gone)(void *ctx, uint64_t origin), void *ctx)
{
	/* Nodes asked about once each per sweep. */
	struct { uint64_t origin; bool gone; char node[NAME_MAX_LEN + 1]; } seen[64];
	size_t nseen = 0, n = 0;
	for (size_t i = 0; i < rs->size; i++) {
		for (struct remote_member *rm = rs->buckets[i]; rm; rm = rm->next) {
			size_t k = 0;
			while (k < nseen && seen[k].origin != rm->origin)
				k++;
			if (k == nseen) {
				if (nseen == sizeof(seen) / sizeof(*seen))
					continue;
				seen[nseen].origin = rm->origin;
				seen[nseen].gone = gone(ctx, rm->origin);
				snprintf(seen[nseen].node, sizeof(seen[nseen].node), "%s", rm->node);
				nseen++;
			}
		}
	}
	for (size_t k = 0; k < nseen; k++)
		if (seen[k].gone)
			n += chat_remote_node_lost(w, rs, seen[k].origin, seen[k].node);
	return n;
}

size_t chat_remote_node_lost(struct worker *w, struct remotes *rs, uint64_t origin,
			     const char *node)
{
	char why[NAME_MAX_LEN + 32];
	int len = snprintf(why, sizeof(why), "server %s lost", node);
	int64_t now = wall_clock_ms();
	size_t n = 0;
	for (size_t i = 0; i < rs->size; i++) {
		struct remote_member *rm = rs->buckets[i], *next;
		for (; rm; rm = next) {
			next = rm->next;
			if (rm->origin != origin)
				continue;
			/* A number of its own for each: told once in each room
			 * it was in, but every one of them told. */
			struct remote_update u = {
				.change = REMOTE_QUIT, .origin = origin, .node = node, .text = why,
				.text_len = (size_t)len, .id = worker_event_id(w),
				.time_ms = now,
			};
			quit(w, rs, rm, &u);
			n++;
		}
	}
	return n;
}
