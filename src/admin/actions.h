/* What each admin command does (admin/commands.h lists them): run by the
 * control socket (control.c) on the main thread, for one request. */
#ifndef CHATD_ADMIN_ACTIONS_H
#define CHATD_ADMIN_ACTIONS_H

#include <stdint.h>
#include <stdio.h>

#include "admin/commands.h"
#include "admin/control.h"

#define ACTION_ERROR_MAX 512

struct action {
	struct control *ctl;
	const struct control_host *host;
	enum admin_command_id id;
	const char *const *args;   /* as many as the command takes */
	size_t nargs;
	const char *password;      /* for those that ask one; NULL otherwise */
	const char *actor;         /* who asks, for the log: "root (uid 0, pid 42)" */
	uint64_t client;           /* the asker, for an answer that comes later */
	struct json_object *result; /* what --json prints: filled in */
	FILE *text;                /* what chatctl prints otherwise */
	char error[ACTION_ERROR_MAX]; /* why it failed */
};

enum action_outcome {
	ACTION_DONE,    /* result and text are the answer */
	ACTION_FAILED,  /* error says why (text may add details) */
	ACTION_LATER,   /* another thread answers (control_post to client) */
	ACTION_MONITOR, /* the client now follows events */
};

enum action_outcome action_run(struct action *a);

/* The answer line for an action that ended (DONE or FAILED): malloc'd. */
char *action_answer(struct action *a, enum action_outcome outcome, const char *text);

/* A JSON answer line: {"ok": OK, "error": ERROR, "text": TEXT, "result":
 * RESULT (taken; may be NULL)}; malloc'd. For answers made on another
 * thread too. */
char *action_answer_line(bool ok, const char *error, const char *text, struct json_object *result);

#endif
