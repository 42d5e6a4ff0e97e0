/* One IRC message as a client sends it, split into its command and
 * parameters (the "Modern IRC client protocol" message format). Pure: no
 * state, nothing copied but the command's name; parameters point into
 * the line. */
#ifndef CHATD_PROTO_IRC_MESSAGE_H
#define CHATD_PROTO_IRC_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>

#define IRC_MAX_PARAMS 15

struct irc_message {
	char command[32];    /* upper-cased, bytes no command has as '?'; a
			      * longer one is cut (and unknown) */
	const char *params[IRC_MAX_PARAMS];
	size_t param_len[IRC_MAX_PARAMS];
	int count;
};

/* Splits LINE (without its tags, which the caller skips; a source is
 * skipped here). The trailing parameter (after " :") may hold spaces and
 * be empty; the fifteenth parameter takes the rest of the line. False
 * when there is no command. */
bool irc_parse(const char *line, size_t len, struct irc_message *ret);

/* Takes the next comma-separated item off *P (*LEN bytes): false when
 * none is left. Items may be empty ("a,,b"). */
bool irc_next_item(const char **p, size_t *len, const char **ret, size_t *ret_len);

#endif
