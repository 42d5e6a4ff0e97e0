/* The control socket: a Unix socket on which chatctl asks a running chatd
 * for what admin/commands.h lists. Only root, chatd's own user and members
 * of [control] group get in (SO_PEERCRED and SO_PEERGROUPS, besides the
 * socket's mode 0660 and group).
 *
 * One request per connection: a line of JSON, {"command": "kick",
 * "args": ["bob", "spamming"]}, answered by one line, {"ok": true,
 * "text": "...", "result": {...}} or {"ok": false, "error": "..."}, and
 * the connection is closed; but for monitor, which is sent a line per
 * event until it goes. Runs on the main thread, in the main loop (its
 * fds are behind one epoll fd of its own); other threads hand it answers
 * and events through a bounded mailbox (control_post). */
#ifndef CHATD_ADMIN_CONTROL_H
#define CHATD_ADMIN_CONTROL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "base/config.h"

struct control;
struct worker_pool;
struct json_object;
struct ban_list;

/* What the server lends the control socket's commands; called on the
 * main thread. */
struct control_host {
	void *server;
	struct worker_pool *pool;
	const struct config *(*config)(void *server);
	/* Reloads the config for ACTOR: 0, or -1 with the file:line errors in
	 * ERRORS (the config in use stays). */
	int (*reload)(void *server, const char *actor, struct config_errors *errors);
	/* Adds the server's facts to RESULT, and says them to TEXT (a
	 * memstream). */
	void (*status)(void *server, struct json_object *result, FILE *text);
	/* The bans in force (core/bans.h), and new ones (taken) to apply at
	 * once everywhere. */
	const struct ban_list *(*bans)(void *server);
	void (*set_bans)(void *server, struct ban_list *bans);
};

/* The socket named by CFG (config_control_path()), made and listening:
 * NULL when off, or when it cannot be made (logged; chatd runs without
 * it). */
struct control *control_open(const struct config *cfg, const struct control_host *host);

/* The fd to watch for input in the main loop, and what to call then. */
int control_fd(const struct control *ctl);
void control_run(struct control *ctl);

/* A new config: who may connect ([control] group) is looked up again. */
void control_set_config(struct control *ctl, const struct config *cfg);

/* Any thread: LINE (a JSON object, malloc'd, taken; without its line end)
 * for client CLIENT (an answer it waits for), or, CLIENT 0, for every
 * monitor (dropped, and counted, when too many wait). */
void control_post(struct control *ctl, uint64_t client, char *line);

/* Closes every client, removes the socket, frees CTL (NULL: nothing). */
void control_close(struct control *ctl);

#endif
