#include "autoconf.h"

#include "daemon/options.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/util.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif

void options_usage(FILE *out)
{
	fprintf(out,
		"Usage: chatd [-c FILE] [-p PORT] [-t] [-d [--pidfile FILE]] [-v|-q] [-V] [-h]\n"
		"A multithreaded chat server; clients speak plain text lines (nc, telnet, chatc).\n"
		"\n"
		"  -c, --config FILE  configuration file (default %s/chatd/chatd.conf)\n"
		"  -p, --port PORT    listen on PORT instead of the configured port\n"
		"  -t, --test         check the configuration and exit\n"
		"  -d, --daemon       detach and run in the background (not under systemd)\n"
		"      --pidfile FILE with -d: write the daemon's pid to FILE\n"
		"  -v, --verbose      log debug messages too\n"
		"  -q, --quiet        log only warnings and errors\n"
		"  -V, --version      print the version and exit\n"
		"  -h, --help         print this help and exit\n"
		"\n"
		"Signals: HUP reloads the configuration, TERM and INT shut down cleanly.\n",
		SYSCONFDIR);
}

static int usage_error(const char *fmt, ...) PRINTF_LIKE(1, 2);

static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "chatd: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	options_usage(stderr);
	return 2;
}

int options_parse(int argc, char **argv, struct options *ret)
{
	enum { OPT_PIDFILE = 256 };
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "port", required_argument, NULL, 'p' },
		{ "test", no_argument, NULL, 't' },
		{ "daemon", no_argument, NULL, 'd' },
		{ "pidfile", required_argument, NULL, OPT_PIDFILE },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;
	long port;

	*ret = (struct options){ .config_path = SYSCONFDIR "/chatd/chatd.conf", .port = -1 };
	opterr = 0; /* we say what was wrong ourselves, then the usage */
	optind = 1;
	while ((opt = getopt_long(argc, argv, ":c:p:tdvqVh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			ret->config_path = optarg;
			break;
		case 'p':
			if (!parse_long(optarg, &port) || port < 0 || port > 65535)
				return usage_error("invalid port: %s (must be 0..65535)", optarg);
			ret->port = (int)port;
			break;
		case 't':
			ret->check_only = true;
			break;
		case 'd':
			ret->daemonize = true;
			break;
		case OPT_PIDFILE:
			ret->pidfile = optarg;
			break;
		case 'v':
			ret->verbosity = VERBOSITY_VERBOSE;
			break;
		case 'q':
			ret->verbosity = VERBOSITY_QUIET;
			break;
		case 'V':
			ret->show_version = true;
			break;
		case 'h':
			ret->show_help = true;
			break;
		case ':':
			return usage_error("option %s needs an argument", argv[optind - 1]);
		default:
			return usage_error("unknown option: %s", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument: %s", argv[optind]);
	if (ret->pidfile && !ret->daemonize)
		return usage_error("%s goes with -d", "--pidfile");
	return 0;
}
