/* What an admin can ask a running chatd through its control socket: the
 * one list that chatctl parses its command line from, prints its help
 * from, and chatd runs (admin/actions.c); docs/chatctl.8 follows it
 * (a test checks). No I/O. */
#ifndef CHATD_ADMIN_COMMANDS_H
#define CHATD_ADMIN_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>

enum admin_command_id {
	ADMIN_STATUS,
	ADMIN_WHO,
	ADMIN_ROOMS,
	ADMIN_KICK,
	ADMIN_BAN_ADD,
	ADMIN_BAN_DEL,
	ADMIN_BAN_LIST,
	ADMIN_WALL,
	ADMIN_RELOAD,
	ADMIN_LOG_LEVEL,
	ADMIN_ACCOUNT_LIST,
	ADMIN_ACCOUNT_ADD,
	ADMIN_ACCOUNT_DEL,
	ADMIN_ACCOUNT_PASSWD,
	ADMIN_HISTORY_PURGE,
	ADMIN_MONITOR,
	ADMIN_COMMAND_COUNT
};

struct admin_command {
	const char *name;    /* one or two words: "status", "ban add" */
	const char *args;    /* for the usage: "NICK [REASON]" */
	const char *summary; /* one line */
	unsigned min_args, max_args;
	bool rest;           /* the last argument takes the rest of the words */
	bool reads;          /* changes nothing (--json prints its result) */
	bool password;       /* asks for a password, read by chatctl (never an argument) */
};

extern const struct admin_command admin_commands[ADMIN_COMMAND_COUNT];

/* The command WORDS[0..N) start with (two words before one): its id, with
 * the number of words its name took in *RET_USED; -1 when none. */
int admin_command_find(const char *const *words, size_t n, size_t *ret_used);

/* A request's line, as chatctl sends it: at most this long. */
#define ADMIN_REQUEST_MAX (16 * 1024)

/* chatctl's exit codes (docs/chatctl.8). */
enum admin_exit {
	ADMIN_EXIT_OK = 0,
	ADMIN_EXIT_FAILED = 1,      /* chatd did not do it (the reason is printed) */
	ADMIN_EXIT_USAGE = 2,       /* a wrong command line */
	ADMIN_EXIT_UNREACHABLE = 3, /* no chatd on the socket */
	ADMIN_EXIT_DENIED = 4,      /* not root, nor in [control] group */
};

#endif
