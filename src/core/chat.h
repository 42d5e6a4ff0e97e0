/* The chat itself, knowing no wire format: sessions come and go, say
 * things, change nick and room, and everyone concerned hears of it as
 * events (event.h), which each protocol encodes. A protocol's codec
 * (proto/) parses what its clients send and calls these; the replies to
 * commands are the codec's. Runs on the worker thread that owns the
 * session (see host.h). */
#ifndef CHATD_CHAT_H
#define CHATD_CHAT_H

#include <stdbool.h>
#include <stddef.h>

#include "core/event.h"
#include "core/host.h"
#include "core/msg.h"
#include "core/session.h"

/* S joins the chat: a guest nick, the lobby, its room told. Returns the
 * number online. */
int chat_connected(struct worker *w, struct session *s);

/* S is going (reason: quit, closed, reset, error, slow, shutdown, ...):
 * unregisters it, tells its room (not during shutdown), with FAREWELL (the
 * /quit reason; FAREWELL_LEN 0: none), logs it. */
void chat_disconnected(struct worker *w, struct session *s, const char *reason,
		       const char *farewell, size_t farewell_len);

/* Whether S is in the chat (between chat_connected and chat_disconnected). */
bool chat_joined(const struct session *s);

/* One line from S counts against [limits] rate: false when it is dropped
 * (S was told to slow down, or, flooding, is being disconnected). */
bool chat_allow_line(struct worker *w, struct session *s);

/* BYTES more of S's over-long lines were dropped: each max_line + 1 of
 * them counts as a line against the rate. */
void chat_bytes_dropped(struct worker *w, struct session *s, size_t bytes);

/* S says TEXT (or does it, KIND CHAT_ACTION) to its room. False when the
 * text cleans to nothing, and nothing was said. */
bool chat_say(struct worker *w, struct session *s, enum chat_event_kind kind, const char *text,
	      size_t len);

/* S becomes NICK (a valid name). 0, told to S's room and S; -EEXIST when
 * another has it; -EALREADY when it is S's exact nick already. */
int chat_rename(struct worker *w, struct session *s, const char *nick);

/* S moves to room NAME (a valid name; made if new). 0, with the members now
 * there in *RET_COUNT; -EALREADY when S is in it. */
int chat_move(struct worker *w, struct session *s, const char *name, unsigned *ret_count);

/* S says TEXT to NICK alone (and is sent it too, with ECHO). 0; -ENOENT:
 * no such nick; -ELOOP: NICK is S; -ENODATA: the text cleans to nothing. */
int chat_private(struct worker *w, struct session *s, const char *nick, const char *text,
		 size_t len, bool echo);

/* S leaves, saying FAREWELL; what S is owed goes out first. */
void chat_quit(struct worker *w, struct session *s, const char *farewell, size_t len);

#endif
