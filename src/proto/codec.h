/* The protocols behind one interface: what the network layer calls for a
 * session, by the protocol it speaks (session.h), and the encoding of
 * events for the core (event.h). */
#ifndef CHATD_PROTO_CODEC_H
#define CHATD_PROTO_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/config.h"
#include "core/event.h"
#include "core/host.h"

/* A new connection: its protocol's welcome, and for the line protocol
 * into the chat (an IRC client registers first). */
void codec_open(struct worker *w, struct session *s);

/* Frees what the protocol keeps for S. */
void codec_free(struct session *s);

/* The longest line S's protocol takes, without its line end. */
size_t codec_max_line(const struct config *cfg, const struct session *s);

/* One complete line from S (without its line end). False when S is
 * leaving and reading must stop. */
bool codec_line(struct worker *w, struct session *s, const char *line, size_t len);

/* S sent a line longer than codec_max_line; it was dropped. Like
 * codec_line. */
bool codec_too_long(struct worker *w, struct session *s);

/* S was silent for IDLE_MS: false when it is to be let go for it (an IRC
 * client that did not answer a PING). */
bool codec_idle(struct worker *w, struct session *s, uint64_t idle_ms);

/* The store's answer to a question S asked (worker_history_query). */
void codec_history(struct worker *w, struct session *s, const struct store_query *q);

/* The accounts thread's answer to what S asked (worker_account_request). */
void codec_account(struct worker *w, struct session *s, const struct account_request *r);

/* What a connection to PROTO's port from PEER that is refused at once
 * (server full, too many from its address) is sent: WHY, in its words. */
struct msg *codec_refusal(enum proto proto, const char *peer, const char *why);

/* The MOTD as line clients read it, or NULL when there is none. */
struct msg *codec_motd(char *const *lines, size_t count);

#endif
