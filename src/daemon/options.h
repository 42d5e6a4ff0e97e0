/* The daemon's command line. */
#ifndef CHATD_OPTIONS_H
#define CHATD_OPTIONS_H

#include <stdbool.h>
#include <stdio.h>

enum options_verbosity { VERBOSITY_CONFIG, VERBOSITY_VERBOSE, VERBOSITY_QUIET };

struct options {
	const char *config_path;
	int port;              /* -p; -1 when not given */
	bool check_only;       /* -t */
	bool daemonize;        /* -d */
	const char *pidfile;   /* --pidfile, with -d */
	enum options_verbosity verbosity;
	bool show_version;
	bool show_help;
};

/* Parses argv. Returns 0, or 2 (the exit code) after printing the problem
 * and the usage on stderr. */
int options_parse(int argc, char **argv, struct options *ret);

void options_usage(FILE *out);

#endif
