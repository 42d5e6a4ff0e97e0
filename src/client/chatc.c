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
#include "tls.h"
#include "base/text.h"

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: chatc [-n NICK] [-r ROOM] [--tls [--ca FILE | --insecure]] [--no-color]\n"
		"             [-w SECONDS] [HOST[:PORT] | HOST [PORT]]\n"
		"Chat with a chatd server (default %s, port %s; %s with --tls). IPv6: [::1]:7777.\n"
		"\n"
		"  -n, --nick NICK     take this nick right after connecting\n"
		"  -r, --room ROOM     join this room right after connecting\n"
		"      --tls           connect over TLS, checking the server's certificate against\n"
		"                      the system's CA store and HOST\n"
		"      --ca FILE       with --tls: trust the CA certificates in FILE instead\n"
		"      --insecure      with --tls: check nothing (anyone in between can read and\n"
		"                      change the chat)\n"
		"      --no-color      no colors (also when NO_COLOR is set or not on a terminal)\n"
		"  -w, --wait SECONDS  with stdin not a terminal: after it ends, leave once the\n"
		"                      server has been quiet this long (default 1)\n"
		"  -V, --version       print the version and exit\n"
		"  -h, --help          print this help and exit\n"
		"\n"
		"In the chat: /help lists the commands; /quit, Ctrl-D or Ctrl-C leaves.\n",
		DEFAULT_HOST, DEFAULT_PORT, DEFAULT_TLS_PORT);
}

#define TLS_HANDSHAKE_TIMEOUT_MS 10000

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
		{ "tls", no_argument, NULL, 'T' },
		{ "ca", required_argument, NULL, 'A' },
		{ "insecure", no_argument, NULL, 'I' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct client_options o = { .wait_seconds = 1.0 };
	bool no_color = false, tls = false;
	struct tls_client_options tls_options = { 0 };
	char err[512], where[300];
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
		case 'T':
			tls = true;
			break;
		case 'A':
			tls_options.ca_file = optarg;
			break;
		case 'I':
			tls_options.insecure = true;
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

	if ((tls_options.ca_file || tls_options.insecure) && !tls)
		return usage_error(tls_options.ca_file ? "--ca needs --tls" : "--insecure needs --tls");
	if (tls_options.ca_file && tls_options.insecure)
		return usage_error("--ca and --insecure do not go together");

	struct target t;
	if (target_parse(&t, argc - optind, argv + optind, tls ? DEFAULT_TLS_PORT : DEFAULT_PORT, err,
			 sizeof(err)) < 0)
		return usage_error(err);
	target_format(&t, where, sizeof(where));
	int fd = target_connect(&t, err, sizeof(err));
	if (fd < 0) {
		fprintf(stderr, "chatc: cannot connect to %s: %s\n", where, err);
		return 1;
	}
	SSL *ssl = NULL;
	if (tls) {
		if (tls_options.insecure)
			fprintf(stderr, "chatc: --insecure: the server's certificate is not checked; "
				"anyone in between can read and change the chat\n");
		ssl = client_tls_connect(fd, t.host, &tls_options, TLS_HANDSHAKE_TIMEOUT_MS, err,
					 sizeof(err));
		if (!ssl) {
			fprintf(stderr, "chatc: %s: %s\n", where, err);
			close(fd);
			return 1;
		}
	}

	o.color = display_want_color(no_color);
	struct session s;
	session_init(&s, fd, ssl, NULL, NULL);
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
