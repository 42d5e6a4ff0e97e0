/* Parsing of what a client sends: one line into one command. The replies'
 * wording lives in chat.c; docs/protocol.md is the contract for both. */
#ifndef CHATD_PROTOCOL_H
#define CHATD_PROTOCOL_H

#include <stddef.h>

enum command_kind {
	CMD_EMPTY,   /* blank line: ignored */
	CMD_CHAT,    /* text: the line (for "//x", the line from its second "/") */
	CMD_NICK,    /* arg: the new nick (rest of the line, trimmed) */
	CMD_WHO,     /* arg: the page asked for (may be empty) */
	CMD_MSG,     /* arg: target nick; text: the message (may be empty) */
	CMD_ME,      /* text: the action */
	CMD_JOIN,    /* arg: the room (rest of the line, trimmed) */
	CMD_ROOMS,   /* arg: the page asked for (may be empty) */
	CMD_HELP,
	CMD_QUIT,    /* text: the reason (may be empty) */
	CMD_TOPIC,   /* text: the new topic ("-": none; empty: show it) */
	CMD_KICK,    /* arg: the nick; text: why (may be empty) */
	CMD_OP,      /* arg: the nick */
	CMD_DEOP,    /* arg: the nick */
	CMD_HISTORY, /* arg: how many lines (may be empty) */
	CMD_REGISTER, /* text: the password */
	CMD_IDENTIFY, /* text: [nick] password */
	CMD_PASSWORD, /* arg: the old password; text: the new one */
	CMD_UNKNOWN, /* arg: the command word, "/" included */
};

/* Points into the parsed line; nothing is copied or NUL-terminated. */
struct command {
	enum command_kind kind;
	const char *arg;
	size_t arg_len;
	const char *text;
	size_t text_len;
};

/* The commands, one entry each: what parsing, /help and usage errors all
 * read (chat.c dispatches on the kind). */
struct command_info {
	const char *name;   /* "/nick", matched ignoring case */
	enum command_kind kind;
	enum command_args {
		ARGS_NONE,      /* anything after the name is ignored */
		ARGS_REST,      /* arg: the rest of the line, trimmed */
		ARGS_WORD_TEXT, /* arg: the next word; text: the rest */
		ARGS_TEXT,      /* text: the rest of the line, trimmed */
	} args;
	const char *usage;  /* "/nick NAME", for /help and "! usage: ..." */
	const char *help;   /* "change your nick" */
};

extern const struct command_info command_table[];
extern const size_t command_table_size;

/* The entry for KIND; NULL for CMD_EMPTY, CMD_CHAT and CMD_UNKNOWN. */
const struct command_info *command_info(enum command_kind kind);

/* Parses LINE (no newline). Command words are case-insensitive; arguments
 * are separated by runs of spaces or tabs and trimmed at both ends. */
void protocol_parse(const char *line, size_t len, struct command *ret);

const char *command_name(enum command_kind kind);

#endif
