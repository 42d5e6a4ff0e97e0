/* The protocols behind one interface: what the network layer calls for a
 * session, by the protocol it speaks (session.h), and the encoding of
 * events for the core (event.h). */
#ifndef CHATD_PROTO_CODEC_H
#define CHATD_PROTO_CODEC_H

#include <stdbool.h>
#include <stddef.h>

#include "core/event.h"
#include "core/host.h"

/* A new connection: its protocol's welcome, and into the chat. */
void codec_open(struct worker *w, struct session *s);

/* One complete line from S (without its line end). False when S is
 * leaving and reading must stop. */
bool codec_line(struct worker *w, struct session *s, const char *line, size_t len);

/* S sent a line longer than max_line; it was dropped. Like codec_line. */
bool codec_too_long(struct worker *w, struct session *s);

/* The MOTD as PROTO's clients read it, or NULL when there is none. */
struct msg *codec_motd(enum proto proto, char *const *lines, size_t count);

#endif
