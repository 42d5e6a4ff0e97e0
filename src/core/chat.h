/* The chat itself, knowing no wire format: sessions come and go, join and
 * leave rooms, say things, change nick, run rooms, and everyone concerned
 * hears of it as events (event.h), which each protocol encodes. A
 * protocol's codec (proto/) parses what its clients send and calls these;
 * the replies to commands are the codec's. Runs on the worker thread that
 * owns the session (see host.h). */
#ifndef CHATD_CHAT_H
#define CHATD_CHAT_H

#include <stdbool.h>
#include <stddef.h>

#include "core/event.h"
#include "core/host.h"
#include "core/msg.h"
#include "core/session.h"

/* S joins the chat as NICK (NULL: a guest nick), in no room, or at once
 * in ROOM, which hears CHAT_ENTERED (a line client's arrival: nobody
 * there hears of an arrival the newcomer's count of those online
 * includes); the room's newest lines, as many as [history] replay, in
 * SNAP (when not NULL; the caller shows and releases them). Returns the
 * number online, or -EEXIST when another has NICK, -EACCES when NICK is
 * banned. */
int chat_register(struct worker *w, struct session *s, const char *nick, const char *room,
		  struct history_snapshot *snap);

/* S is going (reason: quit, closed, reset, error, slow, shutdown, ...):
 * unregisters it, tells its rooms (not during shutdown), with FAREWELL
 * (the quit reason; FAREWELL_LEN 0: none), logs it. */
void chat_disconnected(struct worker *w, struct session *s, const char *reason,
		       const char *farewell, size_t farewell_len);

/* Whether S is in the chat (between chat_register and chat_disconnected). */
bool chat_joined(const struct session *s);

/* One line from S counts against [limits] rate: false when it is dropped
 * (S was told to slow down, or, flooding, is being disconnected). */
bool chat_allow_line(struct worker *w, struct session *s);

/* BYTES more of S's over-long lines were dropped: each max_line + 1 of
 * them counts as a line against the rate. */
void chat_bytes_dropped(struct worker *w, struct session *s, size_t bytes);

/* S comes into room NAME (a valid name; made if new, with S its
 * operator): the room hears CHAT_JOINED, and S too with ECHO. 0 with the
 * members now there in *RET_COUNT and the lines S is to be shown in SNAP
 * (as chat_register); -EALREADY when S is in it; -E2BIG: in too many
 * rooms. */
int chat_join(struct worker *w, struct session *s, const char *name, bool echo,
	      unsigned *ret_count, struct history_snapshot *snap);

/* S leaves room NAME, saying REASON (LEN 0: none), heard by S too with
 * ECHO: 0, or -ENOTCONN when S is not in it. */
int chat_part(struct worker *w, struct session *s, const char *name, const char *reason,
	      size_t len, bool echo);

/* S (in one room or none) moves to room NAME: its old room hears
 * CHAT_WENT. As chat_join (without ECHO) otherwise. */
int chat_move(struct worker *w, struct session *s, const char *name, unsigned *ret_count,
	      struct history_snapshot *snap);

/* S says TEXT (KIND CHAT_SAID, or CHAT_ACTION: does it; NOTICE: as a
 * notice) to ROOM, and hears it too with ECHO. False when the text cleans
 * to nothing, and nothing was said. */
bool chat_say(struct worker *w, struct session *s, struct room *room, enum chat_event_kind kind,
	      bool notice, const char *text, size_t len, bool echo);

/* In a cluster: EV, a line said in room EV->room (on this node or
 * another), as the room stream orders it: kept in the room's history and
 * the store, and told to the room's members here but the session
 * EXCEPT_ID (0: none). */
void chat_relayed(struct worker *w, const struct chat_event *ev, uint64_t except_id);

/* EV, a room's topic or mode changed by another node (or this one) in
 * the cluster's order (EV->stream_seq): made here, whoever decided it,
 * and told to the room. 0, or -ENOENT when the room is not here (yet),
 * -EALREADY when nothing changed (or the room is as of a later change
 * already), -EINVAL for a change that is not one of a room's. */
int chat_room_relayed(struct worker *w, const struct chat_event *ev);

/* S becomes NICK (a valid name; NULL: a fresh guest nick). 0, told once to
 * everyone who shares a room with S and to S; -EEXIST when another has it; -EALREADY when it is
 * S's exact nick already; -EACCES when it is banned. */
int chat_rename(struct worker *w, struct session *s, const char *nick);

/* S is logged in to ACCOUNT (its name as registered): a nick that is
 * ACCOUNT is S's to keep. */
void chat_logged_in(struct worker *w, struct session *s, const char *account);

/* S kept a registered nick past [accounts] grace without identifying: it
 * becomes a guest, which everyone who shares a room with it is told. */
void chat_guard_expired(struct worker *w, struct session *s);

/* In a cluster: S's nick is another node's (it claimed it first): S
 * becomes a guest, and is told why. */
void chat_nick_taken(struct worker *w, struct session *s);

/* S says TEXT to NICK alone (as a notice, or an action), and is sent it
 * too with ECHO. 0; -ENOENT: no such nick; -ELOOP: NICK is S (unless
 * ECHO); -ENODATA: the text cleans to nothing. *RET_AWAY (when not NULL)
 * gets NICK's away message, "" when NICK is here. */
int chat_private(struct worker *w, struct session *s, const char *nick, const char *text,
		 size_t len, bool notice, bool action, bool echo, char *ret_away);

/* S sets room NAME's topic (LEN 0: clears it): told to the room, S too.
 * 0; -ENOTCONN: S is not in it; -EPERM: +t and S is not its operator. */
int chat_topic(struct worker *w, struct session *s, const char *name, const char *text,
	       size_t len);

/* S gives (ON) or takes NICK's status MODE ('o', 'v') in room NAME, or
 * sets room mode MODE ('t', 'n'; NICK NULL): told to the room, S too. 0
 * or as rooms_set_status() and rooms_set_mode() (-EALREADY: nothing
 * changed, told to nobody). */
int chat_mode(struct worker *w, struct session *s, const char *name, char mode, bool on,
	      const char *nick);

/* S puts NICK out of room NAME, saying REASON: done by NICK's worker
 * (chat_kicked). 0 or as rooms_may_kick(). */
int chat_kick(struct worker *w, struct session *s, const char *name, const char *nick,
	      const char *reason, size_t len);

/* On S's worker: K (see worker_send_kick) puts S out of K's room, if S is
 * still in it since the kick was decided (K->joined_seq; 0: any time, for
 * a kick decided on another node); the room and S hear of it. Frees K. */
void chat_kicked(struct worker *w, struct session *s, struct kick *k);

/* Frees a kick nobody carried out. */
void chat_kick_free(struct kick *k);

/* S is away, saying TEXT (LEN 0: back). */
void chat_away(struct worker *w, struct session *s, const char *text, size_t len);

/* S now reads FORMAT. */
void chat_set_format(struct worker *w, struct session *s, enum format format);

/* S leaves, saying FAREWELL; what S is owed goes out first. */
void chat_quit(struct worker *w, struct session *s, const char *farewell, size_t len);

#endif
