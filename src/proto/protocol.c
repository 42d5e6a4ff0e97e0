#include "autoconf.h"

#include "proto/protocol.h"

#include <string.h>
#include <strings.h>

#include "base/util.h"

static bool is_space(char c)
{
	return c == ' ' || c == '\t';
}

static void trim(const char **s, size_t *len)
{
	while (*len > 0 && is_space(**s)) {
		(*s)++;
		(*len)--;
	}
	while (*len > 0 && is_space((*s)[*len - 1]))
		(*len)--;
}

/* Splits off the first word of s; the rest, trimmed, stays in s. */
static void next_word(const char **s, size_t *len, const char **ret_word, size_t *ret_word_len)
{
	size_t i = 0;

	trim(s, len);
	while (i < *len && !is_space((*s)[i]))
		i++;
	*ret_word = *s;
	*ret_word_len = i;
	*s += i;
	*len -= i;
	trim(s, len);
}

const struct command_info command_table[] = {
	{ "/nick", CMD_NICK, ARGS_REST, "/nick NAME", "change your nick" },
	{ "/who", CMD_WHO, ARGS_REST, "/who [PAGE]", "who is in your room (100 a page)" },
	{ "/msg", CMD_MSG, ARGS_WORD_TEXT, "/msg NICK TEXT", "private message" },
	{ "/me", CMD_ME, ARGS_TEXT, "/me TEXT", "action" },
	{ "/join", CMD_JOIN, ARGS_REST, "/join ROOM", "move to another room" },
	{ "/rooms", CMD_ROOMS, ARGS_REST, "/rooms [PAGE]", "list the rooms (50 a page)" },
	{ "/topic", CMD_TOPIC, ARGS_TEXT, "/topic [TEXT|-]", "show, set or clear (-) the room's topic" },
	{ "/kick", CMD_KICK, ARGS_WORD_TEXT, "/kick NICK [REASON]", "put NICK out of the room (operators)" },
	{ "/op", CMD_OP, ARGS_REST, "/op NICK", "make NICK an operator of the room (operators)" },
	{ "/deop", CMD_DEOP, ARGS_REST, "/deop NICK", "take NICK's operator status (operators)" },
	{ "/history", CMD_HISTORY, ARGS_REST, "/history [N]", "the room's last N lines (default 50)" },
	{ "/register", CMD_REGISTER, ARGS_TEXT, "/register PASSWORD", "register your nick (8-128 bytes)" },
	{ "/identify", CMD_IDENTIFY, ARGS_TEXT, "/identify [NICK] PASSWORD", "log in (and take NICK)" },
	{ "/password", CMD_PASSWORD, ARGS_WORD_TEXT, "/password OLD NEW", "change your password" },
	{ "/help", CMD_HELP, ARGS_NONE, "/help", "this help" },
	{ "/quit", CMD_QUIT, ARGS_TEXT, "/quit [REASON]", "leave" },
};
const size_t command_table_size = ARRAY_SIZE(command_table);

const struct command_info *command_info(enum command_kind kind)
{
	for (size_t i = 0; i < command_table_size; i++)
		if (command_table[i].kind == kind)
			return &command_table[i];
	return NULL;
}

void protocol_parse(const char *line, size_t len, struct command *ret)
{
	*ret = (struct command){ .kind = CMD_EMPTY };

	const char *rest = line;
	size_t rest_len = len;
	trim(&rest, &rest_len);
	if (rest_len == 0)
		return;
	if (line[0] != '/') {
		ret->kind = CMD_CHAT;
		ret->text = line;
		ret->text_len = len;
		return;
	}
	if (len >= 2 && line[1] == '/') {
		ret->kind = CMD_CHAT;
		ret->text = line + 1;
		ret->text_len = len - 1;
		return;
	}

	const char *word;
	size_t word_len;
	next_word(&rest, &rest_len, &word, &word_len);

	const struct command_info *info = NULL;
	for (size_t i = 0; i < command_table_size && !info; i++)
		if (strlen(command_table[i].name) == word_len &&
		    strncasecmp(command_table[i].name, word, word_len) == 0)
			info = &command_table[i];
	if (!info) {
		ret->kind = CMD_UNKNOWN;
		ret->arg = word;
		ret->arg_len = word_len;
		return;
	}
	ret->kind = info->kind;
	switch (info->args) {
	case ARGS_NONE:
		break;
	case ARGS_REST:
		ret->arg = rest;
		ret->arg_len = rest_len;
		break;
	case ARGS_WORD_TEXT:
		next_word(&rest, &rest_len, &ret->arg, &ret->arg_len);
		ret->text = rest;
		ret->text_len = rest_len;
		break;
	case ARGS_TEXT:
		ret->text = rest;
		ret->text_len = rest_len;
		break;
	}
}

const char *command_name(enum command_kind kind)
{
	const struct command_info *info = command_info(kind);
	if (info)
		return info->name + 1; /* without its "/" */
	switch (kind) {
	case CMD_EMPTY: return "empty";
	case CMD_CHAT: return "chat";
	case CMD_UNKNOWN: return "unknown";
	default: return "?";
	}
}
