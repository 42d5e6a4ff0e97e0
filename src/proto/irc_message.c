#include "autoconf.h"

#include "proto/irc_message.h"

bool irc_parse(const char *line, size_t len, struct irc_message *ret)
{
	size_t i = 0;

	ret->count = 0;
	while (i < len && line[i] == ' ')
		i++;
	if (i < len && line[i] == ':') { /* a source: clients have none to give */
		while (i < len && line[i] != ' ')
			i++;
		while (i < len && line[i] == ' ')
			i++;
	}
	size_t c = 0;
	while (i < len && line[i] != ' ') {
		/* Upper case; what no command has (a NUL, a control or
		 * non-ASCII byte) as '?', so that it stays unknown and printable. */
		char ch = line[i];
		if (ch >= 'a' && ch <= 'z')
			ch = (char)(ch - 32);
		else if ((unsigned char)ch <= ' ' || (unsigned char)ch >= 0x7f)
			ch = '?';
		if (c + 1 < sizeof(ret->command))
			ret->command[c++] = ch;
		i++;
	}
	ret->command[c] = '\0';
	if (c == 0)
		return false;
	while (i < len && ret->count < IRC_MAX_PARAMS) {
		while (i < len && line[i] == ' ')
			i++;
		if (i >= len)
			break;
		if (line[i] == ':' || ret->count == IRC_MAX_PARAMS - 1) {
			if (line[i] == ':')
				i++;
			ret->params[ret->count] = line + i;
			ret->param_len[ret->count++] = len - i;
			break;
		}
		size_t start = i;
		while (i < len && line[i] != ' ')
			i++;
		ret->params[ret->count] = line + start;
		ret->param_len[ret->count++] = i - start;
	}
	return true;
}

bool irc_next_item(const char **p, size_t *len, const char **ret, size_t *ret_len)
{
	if (*len == 0)
		return false;
	size_t i = 0;
	while (i < *len && (*p)[i] != ',')
		i++;
	*ret = *p;
	*ret_len = i;
	size_t used = i < *len ? i + 1 : i;
	*p += used;
	*len -= used;
	return true;
}
