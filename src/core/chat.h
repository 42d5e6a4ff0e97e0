/* The chat itself: what a session's lines mean and who hears about it.
 * Runs on the worker thread that owns the session (see host.h). */
#ifndef CHATD_CHAT_H
#define CHATD_CHAT_H

#include <stdbool.h>
#include <stddef.h>

#include "core/host.h"
#include "core/msg.h"
#include "core/session.h"

/* A new session: registers it, sends the MOTD and greeting, tells its room. */
void chat_connected(struct worker *w, struct session *s);

/* One line from S. Returns false when S is leaving and reading must stop. */
bool chat_line(struct worker *w, struct session *s, const char *line, size_t len);

/* S sent a line longer than max_line; it was dropped. */
bool chat_line_too_long(struct worker *w, struct session *s);

/* BYTES more of S's over-long lines were dropped: each max_line + 1 of
 * them counts as a line against the rate. */
void chat_bytes_dropped(struct worker *w, struct session *s, size_t bytes);

/* S is going (reason: quit, closed, reset, error, slow, shutdown, ...):
 * unregisters it, tells its room (not during shutdown), with FAREWELL (the
 * /quit reason; FAREWELL_LEN 0: none), logs it. */
void chat_disconnected(struct worker *w, struct session *s, const char *reason,
		       const char *farewell, size_t farewell_len);

/* Whether S is in the chat (between chat_connected and chat_disconnected). */
bool chat_joined(const struct session *s);

/* The MOTD as one shared message ("# line\n" per line), or NULL if empty. */
struct msg *chat_format_motd(char *const *lines, size_t count);

#endif
