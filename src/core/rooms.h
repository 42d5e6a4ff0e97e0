/* Who is online: nicks (unique ignoring case), rooms, and who is in which
 * (memberships). A line-protocol member is always in one room; an IRC
 * member in any number, up to ROOMS_PER_MEMBER.
 *
 * One mutex guards the registry; it is held only for in-memory updates and
 * look-ups, never around I/O. Each member is embedded in a connection owned
 * by one worker thread; only that worker changes the member and its
 * memberships, and only under the lock, so it may read its own without
 * locking. Operator status, topics and modes are read and changed under the
 * lock by anyone (an operator gives +o to a member of another worker).
 *
 * A room also keeps, for each worker and format, the list of that
 * worker's memberships in it reading that format (room_local()). Only
 * worker w touches its lists,
 * without any lock: that is what lets a worker fan a line out to its own
 * connections while other workers do the same. Rooms are reference
 * counted: by the registry while anyone is in them, by each membership,
 * and by each line in flight. */
#ifndef CHATD_ROOMS_H
#define CHATD_ROOMS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>
#include <time.h>

#include "base/bucket.h"
#include "base/text.h"
#include "core/event.h"
#include "core/history.h"
#include "store/store.h"

#define LOBBY "lobby"
#define ROOMS_PER_MEMBER 50
#define TOPIC_MAX_LEN 300
#define AWAY_MAX_LEN 200
#define USER_MAX_LEN 16
#define REALNAME_MAX_LEN 64
#define HOST_MAX_LEN 63

/* An entry of the registry's case-insensitive name tables. */
struct name_entry {
	struct name_entry *next;
	char key[NAME_MAX_LEN + 1]; /* the name in lower case */
};

struct member;

/* One member in one room. */
struct membership {
	struct member *member;
	struct room *room;             /* a reference */
	TAILQ_ENTRY(membership) room_link;   /* room->members: registry lock */
	TAILQ_ENTRY(membership) member_link; /* member->rooms: see the top */
	TAILQ_ENTRY(membership) local_link;  /* room_local(): worker-local */
	uint64_t joined_seq;  /* the room's sequence number of the arrival */
	uint64_t change_seq;  /* and of the last departure or rename: taken under
			       * the lock with the change, so that nobody who
			       * arrives after it hears of it */
	unsigned left_count;  /* members left in the room after its departure */
	bool op;              /* a channel operator: registry lock */
	bool voice;           /* +v (IRC's voice; changes nothing): registry lock */
	bool linked;          /* in room_local() (worker-local) */
	enum format linked_format; /* which one */
};

TAILQ_HEAD(membership_list, membership);

struct member {
	/* First, what a fan-out reads of every recipient. */
	enum format format;            /* changed only by rooms_set_format() */

	/* Guarded by the registry lock; written only by the owning worker
	 * (away and the rest too: others read them under the lock). */
	bool registered;               /* its nick is in the registry */
	bool invisible;                /* IRC's +i: not listed by WHO masks */
	char oper[NAME_MAX_LEN + 1];   /* the IRC operator it is (OPER); "": none */
	unsigned room_count;
	struct membership_list rooms;  /* in the order joined */
	struct name_entry nick_entry;
	char nick[NAME_MAX_LEN + 1];
	char away[AWAY_MAX_LEN + 1];   /* "": here */
	char account[NAME_MAX_LEN + 1]; /* logged in to; "": none (rooms_set_account) */

	/* Set before rooms_enter() and constant after. */
	int worker;                    /* -1: a member of another node (remote.h) */
	uint64_t origin;               /* that node (0: this one) */
	int fd;
	uint64_t conn_id;
	time_t signon;
	char user[USER_MAX_LEN + 1];
	char host[HOST_MAX_LEN + 1];
	char realname[REALNAME_MAX_LEN + 1];
	char via[12];                  /* the port it came in on: "irc", "web+tls", ... */
};

/* Whether M is a member of another node of a cluster (core/remote.h). */
static inline bool member_is_remote(const struct member *m)
{
	return m->worker < 0;
}

struct room {
	atomic_int refs;
	/* Numbers the room's arrivals, departures and renames (under the
	 * registry lock); other events take the next number without taking
	 * it (room_line_seq()): a member hears of an event only if it was
	 * there before it, wherever the event's worker and its own are. */
	atomic_uint_least64_t seq;
	/* Members reading each format: an event is encoded in those only.
	 * Changed under the lock before the change's sequence number is taken
	 * (see room_formats()). */
	atomic_uint formats[FORMAT_COUNT];
	struct name_entry name_entry;
	char name[NAME_MAX_LEN + 1];
	/* The rest guarded by the registry lock. */
	unsigned count;
	struct membership_list members;
	struct bucket announced;       /* arrivals and departures told */
	unsigned announce_suppressed;  /* not told since the last one told */
	char topic[TOPIC_MAX_LEN + 1];
	char topic_by[NAME_MAX_LEN + 1];
	time_t topic_time;
	time_t created;
	bool topic_ops;                /* +t: only operators set the topic */
	bool no_external;              /* +n: only members say things to it */
	bool secret;                   /* +s: not shown to those outside it */
	uint64_t state_seq;            /* in a cluster: the stream's number of
					* the last change made here (0: none) */
	uint64_t mark;                 /* rooms_match()'s, under the lock */
	struct room_history *history;  /* its lines: the registry's, constant */
	struct membership_list *local; /* see room_local() */
};

/* Where a nick's connection lives, for a private message or a kick. */
struct member_address {
	int worker;                    /* -1: on another node, origin */
	uint64_t origin;
	int fd;
	uint64_t conn_id;
	char nick[NAME_MAX_LEN + 1];
	char away[AWAY_MAX_LEN + 1];
	enum format format;
};

/* What anyone may know of a room. */
struct room_info {
	char name[NAME_MAX_LEN + 1];
	unsigned count;
	char topic[TOPIC_MAX_LEN + 1];
	char topic_by[NAME_MAX_LEN + 1];
	time_t topic_time;
	time_t created;
	bool topic_ops, no_external, secret;
	uint64_t state_seq;
};

/* A member of a room, as NAMES and WHO show it. */
struct room_entry {
	char nick[NAME_MAX_LEN + 1];
	char user[USER_MAX_LEN + 1];
	char host[HOST_MAX_LEN + 1];
	char realname[REALNAME_MAX_LEN + 1];
	bool op, voice, away;
};

/* What WHOIS tells of a nick. */
struct member_info {
	char nick[NAME_MAX_LEN + 1];
	char user[USER_MAX_LEN + 1];
	char host[HOST_MAX_LEN + 1];
	char realname[REALNAME_MAX_LEN + 1];
	char away[AWAY_MAX_LEN + 1];
	char account[NAME_MAX_LEN + 1];
	bool oper;
	time_t signon;
	enum format format;
	size_t room_count;
	struct { char name[NAME_MAX_LEN + 1]; bool op, voice, secret; } rooms[ROOMS_PER_MEMBER];
};

/* What an admin is shown of a member (chatctl who). */
struct member_summary {
	char nick[NAME_MAX_LEN + 1];
	char user[USER_MAX_LEN + 1];
	char host[HOST_MAX_LEN + 1];
	char account[NAME_MAX_LEN + 1];
	char via[12];
	char oper[NAME_MAX_LEN + 1];   /* the IRC operator it is; "": none */
	bool away, op;                 /* op: in the room asked about */
	time_t signon;
	unsigned room_count;
};

struct rooms;

struct rooms *rooms_new(int workers);
/* Guests are named "guestN-SUFFIX" (cut to fit) from now on: in a cluster,
 * the node's name, so that the nodes' guests do not collide. */
void rooms_set_guest_suffix(struct rooms *r, const char *suffix);
void rooms_free(struct rooms *r);

/* Registers M as NICK (NULL: a fresh guest nick), and at once in room
 * ROOM (NULL: none; the membership in *RET, the members there in
 * *RET_COUNT, and SNAP->want of its newest lines in SNAP, when not NULL).
 * Returns the number online, or -EEXIST when another has NICK. */
int rooms_enter(struct rooms *r, struct member *m, const char *nick, const char *room,
		struct membership **ret, unsigned *ret_count, struct history_snapshot *snap);

/* Unregisters M and takes it out of every room; returns the number online.
 * Its memberships stay on m->rooms, each with its change_seq, for the
 * caller to tell the rooms and then free (membership_free). */
int rooms_leave(struct rooms *r, struct member *m);

/* Puts M in room NAME (a valid name; made, with M its operator, if new;
 * the lobby has no operator). M is logged in to ACCOUNT (NULL or "":
 * none): a room it makes is registered to ACCOUNT, its record in
 * *RET_SAVED (founder left empty otherwise) for the caller to save; a
 * registered room's operator is its founder, whenever they join, and
 * nobody else on joining.
 * 0 with the membership in *RET and the members now there in *RET_COUNT;
 * -EALREADY when M is in it, -E2BIG when M is in ROOMS_PER_MEMBER rooms. */
int rooms_join(struct rooms *r, struct member *m, const char *name, struct membership **ret,
	       unsigned *ret_count, struct history_snapshot *snap, const char *account,
	       struct store_room *ret_saved);

/* Forgets the history in memory of each room that is not there, not
 * registered, and said nothing since BEFORE_MS (ms since the epoch; the
 * store keeps its lines still, until max_age): memory does not grow with
 * every room ever made. Returns how many were forgotten. */
size_t rooms_sweep(struct rooms *r, int64_t before_ms);

/* Forgets the lines of room NAME in memory (an admin's purge; the store
 * purges its own): false when it has none there. */
bool rooms_history_purge(struct rooms *r, const char *name);

/* The rooms registered to ACCOUNT (deleted) are registered no more. */
void rooms_unregister(struct rooms *r, const char *account);

/* At start: a room registered to an account, as the store kept it. */
void rooms_room_load(struct rooms *r, const struct store_room *saved);

/* At start: room NAME's newest lines (their references are taken) and
 * its last line number, from the store; CAP: how many to keep. */
void rooms_history_load(struct rooms *r, const char *name, int64_t last_no, struct hline **lines,
			size_t n, unsigned cap);

/* Room NAME (a reference, or NULL when nobody is in it) and its
 * history, made if new, in *RET_HISTORY. */
struct room *rooms_room(struct rooms *r, const char *name, struct room_history **ret_history);

/* Takes M out of room NAME: 0 with the membership (off m->rooms, its
 * change_seq set; the caller unlinks it and frees it) in *RET and the
 * members left in *RET_COUNT; -ENOTCONN when M is not in it. */
int rooms_part(struct rooms *r, struct member *m, const char *name, struct membership **ret,
	       unsigned *ret_count);

/* Drops what a membership holds, once out of every list. */
void membership_free(struct membership *ms);

/* M's membership of room NAME, or NULL (M's own worker only). */
struct membership *rooms_membership(const struct member *m, const char *name);

/* M's rooms (M's worker's to ask), space-separated, each after '@' where
 * M is an operator, '+' where it has voice, into BUF (cut to whole names
 * at SIZE). */
void rooms_member_rooms(struct rooms *r, const struct member *m, char *buf, size_t size);

/* MS's status (a member of another node, as its node has it). */
void rooms_set_member_status(struct rooms *r, struct membership *ms, bool op, bool voice);

/* Renames M (NICK NULL: to a fresh guest nick). Returns 0 (old nick in
 * ret_old; each membership's change_seq set), -EEXIST when another member
 * has the name (or it is reserved), -EALREADY when it is already M's exact
 * nick. */
int rooms_rename(struct rooms *r, struct member *m, const char *nick,
		 char ret_old[NAME_MAX_LEN + 1]);

/* Whether NICK is kept from everyone (a service's name). */
bool rooms_reserved(const char *nick);

/* M now reads FORMAT: each room it is in counts it there. */
void rooms_set_format(struct rooms *r, struct member *m, enum format format);

/* M is logged in to ACCOUNT. */
void rooms_set_account(struct rooms *r, struct member *m, const char *account);

/* Sets (TEXT non-empty) or clears M's away message. */
void rooms_set_away(struct rooms *r, struct member *m, const char *text);

/* M is the IRC operator NAME. */
void rooms_set_oper(struct rooms *r, struct member *m, const char *name);

/* M is (not) listed by WHO masks to those who share no room with it. */
void rooms_set_invisible(struct rooms *r, struct member *m, bool on);

/* Up to MAX members whose nick matches MASK (fnmatch(3), ignoring case),
 * visible to VIEWER (not invisible, or sharing a room with it), sorted;
 * free() the array. */
size_t rooms_match(struct rooms *r, const struct member *viewer, const char *mask, size_t max,
		   struct room_entry **ret);

/* Whether an arrival or departure in ROOM may be told now, at most RATE a
 * second (and RATE at once; 0: always). When it may, *ret_suppressed is
 * how many were not told since the last one that was. */
bool rooms_announce(struct rooms *r, struct room *room, int rate, uint64_t now_ms,
		    unsigned *ret_suppressed);

/* Looks a nick up, ignoring case. */
bool rooms_find(struct rooms *r, const char *nick, struct member_address *ret);

/* What WHO and USERHOST tell of NICK (no room: op and voice false);
 * false when nobody has it. */
bool rooms_entry(struct rooms *r, const char *nick, struct room_entry *ret);

/* What WHOIS tells of NICK; false when nobody has it. */
bool rooms_whois(struct rooms *r, const char *nick, struct member_info *ret);

/* Room NAME's facts; false when there is no such room. */
bool rooms_info(struct rooms *r, const char *name, struct room_info *ret);

/* The members of room NAME, sorted ignoring case when SORTED, else in
 * the order they came (free() the array); 0 and NULL when there is no
 * such room. */
size_t rooms_names(struct rooms *r, const char *name, bool sorted, struct room_entry **ret);

/* Everyone online (ROOM NULL), or in room ROOM, sorted by nick (free()
 * the array); -ENOENT when there is no room ROOM. */
ssize_t rooms_everyone(struct rooms *r, const char *room, struct member_summary **ret);

/* Every room, sorted by name; free() the array. */
size_t rooms_list(struct rooms *r, struct room_info **ret);

/* What an operator of a room may do; each returns 0 or:
 * -ENOTCONN: M is not in the room; -EPERM: M is not its operator (for the
 * topic, only when +t); -ENOENT: no such nick; -ESRCH: the nick is not in
 * the room; -EALREADY: nothing would change. */
/* Sets room NAME's topic (cleaned, at most TOPIC_MAX_LEN bytes); the
 * topic it has already is -EALREADY, and nobody is told. A registered
 * room's record, with the new topic, in *RET_SAVED for the caller to save
 * (founder left empty otherwise). */
int rooms_set_topic(struct rooms *r, struct member *m, const char *name, const char *topic,
		    struct store_room *ret_saved);
/* Gives (ON) or takes NICK's status MODE ('o': operator, 'v': voice) in
 * room NAME; the nick as registered in RET_NICK. */
int rooms_set_status(struct rooms *r, struct member *m, const char *name, const char *nick,
		     char mode, bool on, char ret_nick[NAME_MAX_LEN + 1]);
/* Sets a room mode: 't', 'n' or 's'; -EINVAL for any other. */
int rooms_set_mode(struct rooms *r, struct member *m, const char *name, char mode, bool on);
/* The same checks, nothing changed (in a cluster, the change is made
 * when it comes back in the stream's order: rooms_apply_*()). */
int rooms_may_set_topic(struct rooms *r, struct member *m, const char *name, const char *topic);
int rooms_may_set_status(struct rooms *r, struct member *m, const char *name, const char *nick,
			 char mode, bool on, char ret_nick[NAME_MAX_LEN + 1]);
int rooms_may_set_mode(struct rooms *r, struct member *m, const char *name, char mode, bool on);
/* The changes, decided elsewhere (by BY, at WHEN, for the topic), SEQ
 * the cluster stream's number of the change: no check of who; -ENOENT
 * when there is no room NAME here. */
int rooms_apply_topic(struct rooms *r, const char *name, const char *topic, const char *by,
		      time_t when, uint64_t seq, struct store_room *ret_saved);
int rooms_apply_status(struct rooms *r, const char *name, const char *nick, char mode, bool on,
		       uint64_t seq, char ret_nick[NAME_MAX_LEN + 1]);
int rooms_apply_mode(struct rooms *r, const char *name, char mode, bool on, uint64_t seq);
/* Room ST->name as another node has it, after the stream's change
 * ST->state_seq: taken (topic and modes) only if this node has made no
 * later change of it: 0, -EALREADY, or -ENOENT. *RET_SAVED as for
 * rooms_set_topic(). */
int rooms_apply_state(struct rooms *r, const struct room_info *st, struct store_room *ret_saved);
/* Whether M may kick NICK from room NAME; its address in *RET, the room
 * (a reference) in *RET_ROOM and NICK's arrival there in *RET_JOINED_SEQ.
 * The kick itself is done by NICK's own worker (chat_kicked). */
int rooms_may_kick(struct rooms *r, struct member *m, const char *name, const char *nick,
		   struct member_address *ret, struct room **ret_room, uint64_t *ret_joined_seq);
/* Whether M may say something to room NAME: 0, -ENOENT (no such room) or
 * -ENOTCONN (+n and M is not in it); *RET then holds a reference. */
int rooms_may_say(struct rooms *r, struct member *m, const char *name, struct room **ret);

int rooms_online(struct rooms *r);
/* The most ever online at once, and the invisible now online. */
void rooms_counts(struct rooms *r, int *ret_online, int *ret_max, int *ret_invisible);
/* Rooms that exist. */
int rooms_count(struct rooms *r);

/* A new sequence number for an arrival, a departure or a rename in ROOM,
 * happening now. */
uint64_t room_next_seq(struct room *room);

/* The number of an event in ROOM that changes nobody's membership (a line,
 * a topic): that of the next arrival or departure, not taken. Everyone in
 * the room before that next change hears the event, and nobody after it.
 * Events between the same two changes share it, and no counter is written
 * (and bounced between CPUs) per line. */
uint64_t room_line_seq(struct room *room);

/* Whether anyone in ROOM reads FORMAT; read after the event's sequence
 * number was taken, it counts everyone who is to hear of the event. */
static inline bool room_formats(struct room *room, enum format f)
{
	return atomic_load(&room->formats[f]) > 0;
}

/* Worker W's members of ROOM reading FORMAT: only W touches the list. */
static inline struct membership_list *room_local(struct room *room, int w, enum format format)
{
	return &room->local[(size_t)w * FORMAT_COUNT + (size_t)format];
}

struct room *room_ref(struct room *room);
void room_unref(struct room *room);

#endif
