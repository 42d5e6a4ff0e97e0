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

#include "web/websocket.h"

struct config;
struct conn;
struct sockaddr;
struct worker;

/* Requests answered on one connection before it is closed. */
#define WEB_REQUESTS_MAX 100

struct web_conn {
	enum web_phase {
		WEB_HTTP,
		WEB_SOCKET,
	} phase;
	char *request;          /* a request not yet whole; NULL: none */
	size_t request_len;
	unsigned served;        /* requests answered */
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

/* C, still speaking HTTP, took longer than handshake_timeout since it
 * came or was last answered: told 408 if it had begun a request, and let
 * go. */
void web_timed_out(struct worker *w, struct conn *c);

#endif
