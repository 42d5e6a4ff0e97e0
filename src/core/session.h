/* One connected client as the chat core sees it: who it is, where it is,
 * and what the limits counted of it. The network layer embeds it in its
 * connection, which the core never sees. */
#ifndef CHATD_CORE_SESSION_H
#define CHATD_CORE_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/event.h"
#include "core/flood.h"
#include "core/rooms.h"

#define PEER_MAX 64 /* "[v6addr%scope]:port" */
#define SESSION_CERTFP_MAX (32 * 2 + 1)

struct session {
	uint64_t id;          /* unique for the server's life (fds are reused) */
	enum proto proto;     /* what it speaks */
	enum irc_framing framing; /* IRC: over a stream, or a WebSocket */
	bool tls;             /* over TLS */
	char certfp[SESSION_CERTFP_MAX]; /* its TLS client certificate's SHA-256 in
				 * hex, verified by [tls] client_ca; "": none */
	struct member member; /* nick and rooms, once registered */
	char peer[PEER_MAX];  /* the client's address, for the log */
	struct flood flood;   /* [limits] rate and burst */
	size_t dropped_bytes; /* of over-long lines, not yet charged to flood */
	uint64_t guard_ms;    /* when its registered nick is taken from it, unless it
			       * identifies (worker_now_ms); 0: no such deadline */
	uint64_t cluster_version; /* its state's, as told to the other nodes */
	void *codec_state;    /* the protocol's own, owned by proto/codec.c */
};

#endif
