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

static const struct {
	const char *word;
	enum command_kind kind;
} commands[] = {
	{ "/nick", CMD_NICK },   { "/who", CMD_WHO },   { "/msg", CMD_MSG },
	{ "/me", CMD_ME },       { "/join", CMD_JOIN }, { "/rooms", CMD_ROOMS },
	{ "/help", CMD_HELP },   { "/quit", CMD_QUIT },
};

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

	ret->kind = CMD_UNKNOWN;
	ret->arg = word;
	ret->arg_len = word_len;
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		if (strlen(commands[i].word) == word_len &&
		    strncasecmp(commands[i].word, word, word_len) == 0) {
			ret->kind = commands[i].kind;
			break;
		}
	}

	ret->arg = NULL;
	ret->arg_len = 0;
	switch (ret->kind) {
	case CMD_NICK:
	case CMD_JOIN:
	case CMD_WHO:
	case CMD_ROOMS:
		ret->arg = rest;
		ret->arg_len = rest_len;
		break;
	case CMD_MSG:
		next_word(&rest, &rest_len, &ret->arg, &ret->arg_len);
		ret->text = rest;
		ret->text_len = rest_len;
		break;
	case CMD_ME:
	case CMD_QUIT:
		ret->text = rest;
		ret->text_len = rest_len;
		break;
	case CMD_UNKNOWN:
		ret->arg = word;
		ret->arg_len = word_len;
		break;
	default:
		break;
	}
}

const char *command_name(enum command_kind kind)
{
	switch (kind) {
	case CMD_EMPTY: return "empty";
	case CMD_CHAT: return "chat";
	case CMD_NICK: return "nick";
	case CMD_WHO: return "who";
	case CMD_MSG: return "msg";
	case CMD_ME: return "me";
	case CMD_JOIN: return "join";
	case CMD_ROOMS: return "rooms";
	case CMD_HELP: return "help";
	case CMD_QUIT: return "quit";
	case CMD_UNKNOWN: return "unknown";
	}
	return "?";
}
