/* chatc: the command-line client of chatd. Wires the parts together:
 * options, target, connection, then the interactive or scripted mode. */
#include "autoconf.h"

#include <getopt.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "display.h"
#include "modes.h"
#include "session.h"
#include "target.h"
#include "base/text.h"

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: chatc [-n NICK] [-r ROOM] [--no-color] [-w SECONDS] [HOST[:PORT] | HOST [PORT]]\n"
		"Chat with a chatd server (default %s, port %s). IPv6: [::1]:7777.\n"
		"\n"
		"  -n, --nick NICK     take this nick right after connecting\n"
		"  -r, --room ROOM     join this room right after connecting\n"
		"      --no-color      no colors (also when NO_COLOR is set or not on a terminal)\n"
		"  -w, --wait SECONDS  with stdin not a terminal: after it ends, leave once the\n"
		"                      server has been quiet this long (default 1)\n"
		"  -V, --version       print the version and exit\n"
		"  -h, --help          print this help and exit\n"
		"\n"
		"In the chat: /help lists the commands; /quit, Ctrl-D or Ctrl-C leaves.\n",
		DEFAULT_HOST, DEFAULT_PORT);
}

static int usage_error(const char *what)
{
	fprintf(stderr, "chatc: %s\n", what);
	usage(stderr);
	return 2;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "nick", required_argument, NULL, 'n' },
		{ "room", required_argument, NULL, 'r' },
		{ "no-color", no_argument, NULL, 'C' },
		{ "wait", required_argument, NULL, 'w' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct client_options o = { .wait_seconds = 1.0 };
	bool no_color = false;
	char err[256], where[300];
	int opt;

	setlocale(LC_ALL, "");
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":n:r:w:Vh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			if (!text_is_valid_name(optarg, strlen(optarg)))
				return usage_error("invalid nick (1-32 letters, digits, _ or -, starting with a letter)");
			o.nick = optarg;
			break;
		case 'r':
			if (!text_is_valid_name(optarg, strlen(optarg)))
				return usage_error("invalid room (1-32 letters, digits, _ or -, starting with a letter)");
			o.room = optarg;
			break;
		case 'C':
			no_color = true;
			break;
		case 'w': {
			char *end;
			o.wait_seconds = strtod(optarg, &end);
			if (*end || end == optarg || o.wait_seconds < 0 || o.wait_seconds > 3600)
				return usage_error("invalid -w: must be 0..3600 seconds");
			break;
		}
		case 'V':
			printf("chatc %s\n", PACKAGE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		case ':':
			snprintf(err, sizeof(err), "option %s needs an argument", argv[optind - 1]);
			return usage_error(err);
		default:
			snprintf(err, sizeof(err), "unknown option: %s", argv[optind - 1]);
			return usage_error(err);
		}
	}

	struct target t;
	if (target_parse(&t, argc - optind, argv + optind, err, sizeof(err)) < 0)
		return usage_error(err);
	target_format(&t, where, sizeof(where));
	int fd = target_connect(&t, err, sizeof(err));
	if (fd < 0) {
		fprintf(stderr, "chatc: cannot connect to %s: %s\n", where, err);
		return 1;
	}

	o.color = display_want_color(no_color);
	struct session s;
	session_init(&s, fd, NULL, NULL);
	char line[64];
	if (o.nick) {
		snprintf(line, sizeof(line), "/nick %s", o.nick);
		session_send_line(&s, line, strlen(line));
	}
	if (o.room) {
		snprintf(line, sizeof(line), "/join %s", o.room);
		session_send_line(&s, line, strlen(line));
	}
	int status = isatty(STDIN_FILENO) ? run_interactive(&s, &o) : run_scripted(&s, &o);
	session_close(&s);
	return status;
}
