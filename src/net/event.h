/* What one thread hands a worker thread (see handoff.h): a new connection
 * from the listener, lines for the worker's members of a room, a line for
 * one of its connections, a new config or TLS context, a watchdog ping,
 * shutdown. */
#ifndef CHATD_NET_EVENT_H
#define CHATD_NET_EVENT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/msg.h"
#include "net/conn.h"
#include "net/iplimit.h"

enum event_kind {
	EV_CONNECTION, /* fd, ptr: struct new_connection (the receiver's to free) */
	EV_ROOM,       /* ptr: room, msg: the line as FORMAT reads it, id: the
			* connection not to send to, seq: the room's sequence
			* number of the line (see room_line_seq()), once: see
			* struct room_send, lines */
	EV_DIRECT,     /* fd + id: the connection, msg */
	EV_KICK,       /* fd + id: the connection, ptr: struct kick (the
			* receiver's to free) */
	EV_CONFIG,     /* ptr: config */
	EV_TLS,        /* ptr: SSL_CTX, a reference: new TLS handshakes use it */
	EV_SITE,       /* ptr: struct site, a reference: the web page's files */
	EV_HISTORY,    /* ptr: struct store_query, answered (the receiver's
			* to free): for the connection q->fd + q->conn_id */
	EV_ACCOUNT,    /* ptr: struct account_request, answered (the receiver's
			* to free): for the connection r->fd + r->conn_id */
	EV_DISCONNECT, /* fd + id: the connection, ptr: struct disconnect (the
			* receiver's to free): an admin puts it out */
	EV_WALL,       /* ptr: the text (the receiver's to free): the server's
			* notice to everyone */
	EV_BANS,       /* ptr: struct ban_list, a reference: the bans from now on */
	EV_CLUSTER,    /* ptr: struct cluster_delivery (the receiver's to free) */
	EV_PING,       /* id: sequence */
	EV_SHUTDOWN,
};

struct new_connection {
	enum proto proto;  /* what the listening socket it came from carries */
	bool tls;          /* and whether over TLS */
	char peer[PEER_MAX];
	struct ip_key ip;
	bool ip_counted;   /* ip was counted (not a trusted proxy's) */
};

/* An admin's kick (chatctl kick, IRC KILL) or ban of one connection. */
struct disconnect {
	char reason[16];   /* the close reason: "kicked", "banned" */
	char text[512];    /* what the client is told */
	char actor[192];   /* who did it, for the log */
};

/* What the cluster hands the workers. */
struct cluster_delivery {
	enum {
		CLUSTER_RECORDS,   /* to worker 0: records (cluster/wire.h) */
		CLUSTER_NODE_LOST, /* to worker 0: node origin is gone */
		CLUSTER_TELL_ALL,  /* to each worker: tell the others the state of
				    * each of its members (and with reclaim, claim
				    * their nicks again) */
		CLUSTER_NICK_REFUSED, /* to a worker: node is the nick another node
				       * claimed, of its session origin (socket
				       * seq) */
	} what;
	bool reclaim;
	uint64_t seq;      /* the records' number in the stream; 0: sent to this
			    * node alone */
	uint64_t origin;
	char node[NAME_MAX_LEN + 1];
	size_t len;
	uint8_t data[];
};

struct event {
	enum event_kind kind;
	int fd;
	uint64_t id;
	uint64_t seq;
	uint64_t once;
	void *ptr;
	struct msg *msg;
	enum format format;
	uint32_t lines;    /* EV_ROOM: how many lines msg holds (for the metrics) */
};

#endif
