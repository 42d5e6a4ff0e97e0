/* The listening sockets: bound from the config, or handed over by systemd
 * (socket activation), and accepting from them. */
#ifndef CHATD_LISTENER_H
#define CHATD_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "net/conn.h"

#define LISTENER_MAX 16

/* One listening socket, the protocol its clients speak and whether over
 * TLS. */
struct listen_socket {
	int fd;
	enum proto proto;
	bool tls;
};

struct listener {
	struct listen_socket sockets[LISTENER_MAX];
	size_t count;
	bool activated;   /* the sockets came from systemd */
	int reserve_fd;   /* spare fd, given up to shed a connection at EMFILE */
	unsigned long shed_count;
	long shed_logged_at; /* CLOCK_MONOTONIC second of the last log line */
};

/* What to bind, from the config: ADDRESS (every address it resolves to;
 * "::" is dual-stack) and PORT (0: any free port) for PROTO, over TLS or
 * not. */
struct listen_address {
	const char *address;
	int port;
	enum proto proto;
	bool tls;
};

/* Takes systemd's sockets when there are any, each carrying the protocol
 * its name says (listener_kind_of_name), and binds nothing; else binds
 * each of the COUNT ADDRESSES. Logs each socket with its protocol. Returns
 * 0, or -1 after logging why. */
int listener_open(struct listener *l, const struct listen_address *addresses, size_t count);
void listener_close(struct listener *l);

/* Binds and listens on every address ADDRESS resolves to ("::": IPv4 and
 * IPv6), port PORT (0: a free one, the same for each), non-blocking: up
 * to MAX fds in RET_FDS. Returns how many, or -1 after logging why (for
 * WHAT: "the metrics"). */
int listener_bind(const char *address, int port, const char *what, int *ret_fds, size_t max);

/* Whether one of the sockets carries PROTO over TLS or not. */
bool listener_has(const struct listener *l, enum proto proto, bool tls);

/* What a socket systemd passed under NAME (its socket unit's
 * FileDescriptorName=) carries: "irc" IRC, "irc-tls" IRC over TLS, "tls"
 * the line protocol over TLS, any other name the line protocol. */
void listener_kind_of_name(const char *name, enum proto *proto, bool *tls);

/* "the line protocol", "IRC over TLS", ...: for the log. */
const char *listener_kind_name(enum proto proto, bool tls);

/* Turns on TCP keepalive for an accepted TCP socket: probes after IDLE
 * seconds of silence, so that a peer gone without a word (a cable pulled, a
 * laptop closed) frees its slot. Returns 0 or -errno. */
int listener_set_keepalive(int fd, int idle);

/* Accepts one connection from FD: returns the new non-blocking socket, its
 * peer's address and that as text; -EAGAIN when there is none, or another
 * -errno. At fd exhaustion the connection is accepted and closed at once
 * (shed), using the reserve fd, so the backlog does not make us spin. */
int listener_accept(struct listener *l, int fd, struct sockaddr_storage *ret_addr,
		    char peer[PEER_MAX]);

/* "1.2.3.4:5" or "[::1]:5"; IPv4-mapped IPv6 is shown as IPv4. */
void format_address(const struct sockaddr *sa, char *buf, size_t size);

#endif
