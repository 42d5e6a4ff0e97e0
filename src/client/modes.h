/* chatc's two ways to run: interactive (stdin is a terminal: a readline
 * prompt with incoming lines printed above it) and scripted (stdin is not:
 * send its lines, print the server's, leave when both are done). */
#ifndef CHATC_MODES_H
#define CHATC_MODES_H

#include <stdbool.h>

#include "session.h"

struct client_options {
	const char *nick;
	const char *room;
	bool color;
	double wait_seconds; /* scripted: how long the server must be quiet */
};

/* Each returns chatc's exit code. */
int run_interactive(struct session *s, const struct client_options *o);
int run_scripted(struct session *s, const struct client_options *o);

/* True for "/quit" and "/quit reason", any case: the server will close. */
bool is_quit_command(const char *line, size_t len);

#endif
