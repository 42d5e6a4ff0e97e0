/* The chat itself: what a connection's lines mean and who hears about it.
 * Runs on the worker thread that owns the connection. */
#ifndef CHATD_CHAT_H
#define CHATD_CHAT_H

#include <stdbool.h>
#include <stddef.h>

#include "conn.h"
#include "worker.h"

/* A new connection: registers it, sends the MOTD and greeting, tells its room. */
void chat_connected(struct worker *w, struct conn *c);

/* One line from C. Returns false when C is leaving and reading must stop. */
bool chat_line(struct worker *w, struct conn *c, const char *line, size_t len);

/* C sent a line longer than max_line; it was dropped. */
bool chat_line_too_long(struct worker *w, struct conn *c);

/* BYTES more of C's over-long lines were dropped: each max_line + 1 of
 * them counts as a line against the rate. */
void chat_bytes_dropped(struct worker *w, struct conn *c, size_t bytes);

/* C is going (reason: quit, closed, reset, error, slow, shutdown):
 * unregisters it, tells its room (not during shutdown), logs it. */
void chat_disconnected(struct worker *w, struct conn *c, const char *reason);

/* The MOTD as one shared message ("# line\n" per line), or NULL if empty. */
struct msg *chat_format_motd(char *const *lines, size_t count);

#endif
