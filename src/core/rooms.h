/* Who is online: nicks (unique ignoring case), rooms and their members.
 *
 * One mutex guards the registry; it is held only for in-memory updates and
 * look-ups, never around I/O. Each member is embedded in a connection owned
 * by one worker thread; only that worker changes the member, and only
 * under the lock, so it may read its own members without locking.
 *
 * A room also keeps, for each worker, the list of that worker's members in
 * it (room->local[w]). Only worker w touches local[w], without any lock:
 * that is what lets a worker fan a line out to its own connections while
 * other workers do the same. Rooms are reference counted: by the registry
 * while anyone is in them, by each member, and by each line in flight. */
#ifndef CHATD_ROOMS_H
#define CHATD_ROOMS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "base/bucket.h"
#include "base/text.h"

#define LOBBY "lobby"

/* An entry of the registry's case-insensitive name tables. */
struct name_entry {
	struct name_entry *next;
	char key[NAME_MAX_LEN + 1]; /* the name in lower case */
};

struct member {
	/* Guarded by the registry lock; written only by the owning worker. */
	struct name_entry nick_entry;
	char nick[NAME_MAX_LEN + 1];
	struct room *room;
	TAILQ_ENTRY(member) room_link;
	uint64_t joined_seq;  /* the room's sequence number of its arrival */
	uint64_t change_seq;  /* and of its last departure or rename: taken under
			       * the lock with the change, so that nobody who
			       * arrives after it hears of it */

	/* Worker-local: this member's place in room->local[worker]. */
	TAILQ_ENTRY(member) local_link;

	/* Set before rooms_enter() and constant after. */
	int worker;
	int fd;
	uint64_t conn_id;
};

TAILQ_HEAD(member_list, member);

struct room {
	atomic_int refs;
	/* Numbers the room's events (arrivals under the registry lock, lines
	 * when they are said): a member hears of an event only if it was
	 * there before it, wherever the event's worker and its own are. */
	atomic_uint_least64_t seq;
	struct name_entry name_entry;
	char name[NAME_MAX_LEN + 1];
	unsigned count;                /* guarded by the registry lock */
	struct member_list members;    /* guarded by the registry lock */
	/* Arrivals and departures told; guarded by the registry lock. */
	struct bucket announced;
	unsigned announce_suppressed;  /* not told since the last one told */
	struct member_list *local;     /* [workers]; local[w] owned by worker w */
};

/* Where a nick's connection lives, for a private message. */
struct member_address {
	int worker;
	int fd;
	uint64_t conn_id;
	char nick[NAME_MAX_LEN + 1];
};

struct room_summary {
	char name[NAME_MAX_LEN + 1];
	unsigned count;
};

struct rooms;

struct rooms *rooms_new(int workers);
void rooms_free(struct rooms *r);

/* Registers M under a fresh guest nick in the lobby; m->room then holds a
 * reference for the caller. Returns the number online; *ret_room_count is
 * the lobby's members, M included. */
int rooms_enter(struct rooms *r, struct member *m, unsigned *ret_room_count);

/* Unregisters M and returns the number online; *ret_room_count is what
 * remains in its room. m->room is left set, and its reference passes to the
 * caller (see rooms.h top: drop local link, unref). */
int rooms_leave(struct rooms *r, struct member *m, unsigned *ret_room_count);

/* Renames M. Returns 0 (old nick in ret_old), -EEXIST when another member
 * has the name, -EALREADY when it is already M's exact nick. */
int rooms_rename(struct rooms *r, struct member *m, const char *nick,
		 char ret_old[NAME_MAX_LEN + 1]);

/* Moves M to room NAME (created when needed). Returns 0 with *ret_old the
 * room left (the caller's reference), *ret_old_count the members left in
 * it and *ret_count the members now in the new one, or -EALREADY when M is
 * in it already. */
int rooms_move(struct rooms *r, struct member *m, const char *name, struct room **ret_old,
	       unsigned *ret_old_count, unsigned *ret_count);

/* Whether an arrival or departure in ROOM may be told now, at most RATE a
 * second (and RATE at once; 0: always). When it may, *ret_suppressed is
 * how many were not told since the last one that was. */
bool rooms_announce(struct rooms *r, struct room *room, int rate, uint64_t now_ms,
		    unsigned *ret_suppressed);

/* Looks a nick up, ignoring case. */
bool rooms_find(struct rooms *r, const char *nick, struct member_address *ret);

/* The nicks in M's room, sorted ignoring case; free() the array. */
size_t rooms_who(struct rooms *r, const struct member *m, char (**ret_nicks)[NAME_MAX_LEN + 1]);

/* Every room with its count, sorted by name; free() the array. */
size_t rooms_list(struct rooms *r, struct room_summary **ret);

int rooms_online(struct rooms *r);

/* A new sequence number for an event in ROOM, happening now. */
uint64_t room_next_seq(struct room *room);

struct room *room_ref(struct room *room);
void room_unref(struct room *room);

#endif
