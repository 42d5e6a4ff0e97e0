/* chatd's own line protocol (docs/protocol.md): the codec between its
 * clients' lines and the chat core. */
#ifndef CHATD_PROTO_LINE_H
#define CHATD_PROTO_LINE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/event.h"
#include "core/host.h"

/* EV as a line client reads it ("[alice] hi\n", "> bob entered (2 online)\n"). */
struct msg *line_encode(const struct chat_event *ev);

/* A new line client: into the chat, then the MOTD and the greeting. */
void line_open(struct worker *w, struct session *s);

/* One line from S. Returns false when S is leaving and reading must stop. */
bool line_input(struct worker *w, struct session *s, const char *line, size_t len);

/* S sent a line longer than max_line; it was dropped. Like line_input. */
bool line_too_long(struct worker *w, struct session *s);

/* The store's answer to S's /history. */
void line_history(struct worker *w, struct session *s, const struct store_query *q);

/* The accounts thread's answer to S's /register, /identify or /password. */
void line_account(struct worker *w, struct session *s, const struct account_request *r);

/* The MOTD as line clients read it ("# line\n" each), or NULL if empty. */
struct msg *line_motd(char *const *lines, size_t count);

#endif
