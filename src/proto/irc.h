/* IRC (docs/irc.md): the codec between IRC clients and the chat core.
 * Registration (CAP, PASS, NICK, USER), the commands and their numerics,
 * and events encoded as IRC messages, with the IRCv3 tags a client asked
 * for (its format, see event.h). */
#ifndef CHATD_PROTO_IRC_H
#define CHATD_PROTO_IRC_H

#include <stdbool.h>
#include <stddef.h>

#include "core/event.h"
#include "core/host.h"

/* The longest line an IRC client may send: 512 bytes with "\r\n", plus
 * its message tags ("@" + at most 4094 bytes + " "). */
#define IRC_LINE_MAX 510
#define IRC_CLIENT_TAGS_MAX 4094
#define IRC_INPUT_MAX (IRC_CLIENT_TAGS_MAX + 2 + IRC_LINE_MAX)

/* EV as an IRC client reading FORMAT reads it: one or more "\r\n" lines,
 * each at most 512 bytes without its tags (long text is split). */
struct msg *irc_encode(enum format format, const struct chat_event *ev);

/* L, a line of ROOM's history, for a client without server-time: a notice
 * from SERVER to the channel, "[2026-12-06 14:03:05] <alice> hi". */
struct msg *irc_encode_history_notice(const char *server, const char *room, const struct hline *l);

/* The accounts thread's answer to S's AUTHENTICATE, REGISTER or NickServ. */
void irc_account(struct worker *w, struct session *s, const struct account_request *r);

/* The store's answer to S's CHATHISTORY. */
void irc_history(struct worker *w, struct session *s, const struct store_query *q);

/* A new IRC connection: not in the chat until it registers. */
void irc_open(struct worker *w, struct session *s);
void irc_free(struct session *s);

/* One line from S. False when S is leaving and reading must stop. */
bool irc_input(struct worker *w, struct session *s, const char *line, size_t len);

/* S sent a line longer than IRC allows; it was dropped. Like irc_input. */
bool irc_too_long(struct worker *w, struct session *s);

/* S said nothing for IDLE_MS: pings it at half of [irc] ping_timeout;
 * returns false when it is past all of it (S is to be let go). */
bool irc_idle(struct worker *w, struct session *s, uint64_t idle_ms);

#endif
