/* A connection to the web port, on its worker: HTTP requests (the page's
 * files, from the worker's site) until one upgrades /ws to a WebSocket;
 * then IRC, a line per message, through the connection's framer like any
 * IRC client's. Its conn stays NEW (out of the chat) while it speaks
 * HTTP and becomes OPEN with the upgrade.
 *
 *   HTTP --GET /ws, Upgrade--> SOCKET
 *    |  \--GET, HEAD: a file, 304, 404 (and HTTP again, kept alive)
 *    +--bad request: 4xx and close */
#ifndef CHATD_NET_WEB_H
#define CHATD_NET_WEB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "web/websocket.h"

struct config;
struct conn;
struct sockaddr;
struct worker;

struct web_conn {
	enum web_phase {
		WEB_HTTP,
		WEB_SOCKET,
	} phase;
	char *request;          /* a request not yet whole; NULL: none */
	size_t request_len;
	bool close_when_written; /* HTTP: the last response is queued; closed once
				  * it is all written (however long a big file
				  * takes a client that keeps reading) */
	size_t tick_written;    /* HTTP: written_total at the last tick */
	bool close_sent;        /* our close frame is queued */
	struct ws_decoder decoder;
};

struct web_conn *web_conn_new(void);
void web_conn_free(struct web_conn *wc);

/* LEN bytes C sent (decrypted, when over TLS). */
void web_input(struct worker *w, struct conn *c, char *data, size_t len);

/* Whether a connection from SA comes from one of [web] trusted_proxies. */
bool web_from_trusted_proxy(const struct config *cfg, const struct sockaddr *sa);

/* C leaves (DRAINING): over a WebSocket, a close frame goes after its last
 * lines, with a code for REASON. */
void web_closing(struct worker *w, struct conn *c, const char *reason);

/* Once a tick, for C still speaking HTTP: a response being written that
 * moved since the last tick keeps it; otherwise, once handshake_timeout
 * has passed since it came or was last answered (or last read a byte of
 * a response), it is let go, told 408 if it had begun a request. */
void web_tick(struct worker *w, struct conn *c, uint64_t timeout_ms);

/* C's queue is all written: true when C, still speaking HTTP, was to close
 * after it (it is then leaving). */
bool web_written(struct worker *w, struct conn *c);

#endif
