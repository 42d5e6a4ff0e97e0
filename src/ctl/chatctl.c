/* chatctl: asks a running chatd, through its control socket, what an admin
 * asks (admin/commands.h lists it), and prints the answer: the text chatd
 * wrote for people, or with --json its result as JSON. */
#include "autoconf.h"

#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "admin/commands.h"
#include "base/config.h"
#include "base/util.h"

static void usage(FILE *out)
{
	fprintf(out, "Usage: chatctl [--json] [-s SOCKET] COMMAND [ARGS]\n"
		     "Operates a running chatd through its control socket.\n\n"
		     "Options:\n"
		     "  -j, --json          print the result as JSON (one object; monitor: one per line)\n"
		     "  -s, --socket=PATH   the control socket (default: %s)\n"
		     "  -h, --help          this help\n"
		     "  -V, --version       chatctl's version\n\nCommands:\n",
		"/run/chatd/" CONFIG_CONTROL_FILE);
	for (int i = 0; i < ADMIN_COMMAND_COUNT; i++) {
		const struct admin_command *c = &admin_commands[i];
		char head[64];
		snprintf(head, sizeof(head), "%s%s%s", c->name, c->args[0] ? " " : "", c->args);
		fprintf(out, "  %-32s %s\n", head, c->summary);
	}
	fprintf(out, "\nExit status: 0 done, 1 chatd refused or failed (it says why), 2 usage,\n"
		     "3 chatd not reachable, 4 permission denied. See chatctl(8).\n");
}

/* The password for NAME: from the terminal, asked twice without echo, or
 * the first line of standard input. NULL (said why) on failure. */
static char *read_password(const char *name)
{
	char *first = NULL, *second = NULL;
	size_t cap = 0;
	bool tty = isatty(STDIN_FILENO);
	struct termios old, quiet;
	if (tty) {
		if (tcgetattr(STDIN_FILENO, &old) < 0) {
			perror("chatctl: tcgetattr");
			return NULL;
		}
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
		fprintf(stderr, "New password for %s: ", name);
	}
	ssize_t n = getline(&first, &cap, stdin);
	if (tty && n >= 0) {
		fprintf(stderr, "\nAgain: ");
		cap = 0;
		if (getline(&second, &cap, stdin) < 0) {
			free(second);
			second = NULL;
		}
	}
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	if (n < 0) {
		fprintf(stderr, "chatctl: no password given\n");
		free(first);
		return NULL;
	}
	first[strcspn(first, "\r\n")] = '\0';
	if (tty) {
		bool same = second && strcmp(first, strtok(second, "\r\n") ? second : "") == 0;
		if (second) {
			explicit_bzero(second, strlen(second));
			free(second);
		}
		if (!same) {
			fprintf(stderr, "chatctl: the passwords differ\n");
			explicit_bzero(first, strlen(first));
			free(first);
			return NULL;
		}
	}
	return first;
}

/* Where chatd's control socket is when -s does not say: as chatd chooses
 * it ($RUNTIME_DIRECTORY, /run/chatd for root, $XDG_RUNTIME_DIR/chatd),
 * but the system service's for anyone, when it is there. */
static char *default_socket(void)
{
	static const char system_socket[] = "/run/chatd/" CONFIG_CONTROL_FILE;
	if (!getenv("RUNTIME_DIRECTORY") && access(system_socket, F_OK) == 0)
		return xstrdup(system_socket);
	char *path = runtime_path(CONFIG_CONTROL_FILE);
	return path ? path : xstrdup(system_socket);
}

static void wipe_password(struct json_object *req)
{
	struct json_object *p;
	if (json_object_object_get_ex(req, "password", &p))
		explicit_bzero((char *)json_object_get_string(p), (size_t)json_object_get_string_len(p));
}

/* A connection to PATH: its fd, or minus the exit status (said why). */
static int connect_to(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(addr.sun_path)) {
		fprintf(stderr, "chatctl: the socket's path is too long: %s\n", path);
		return -ADMIN_EXIT_USAGE;
	}
	strcpy(addr.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		perror("chatctl: socket");
		return -ADMIN_EXIT_UNREACHABLE;
	}
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int e = errno;
		close(fd);
		fprintf(stderr, "chatctl: cannot reach chatd at %s: %s\n", path, strerror(e));
		if (e == EACCES || e == EPERM) {
			fprintf(stderr, "chatctl: only root and members of chatd's admin group (chatd-admin "
					"by default) may use it\n");
			return -ADMIN_EXIT_DENIED;
		}
		if (e == ENOENT || e == ECONNREFUSED)
			fprintf(stderr, "chatctl: is chatd running? (systemctl status chatd; another "
					"socket: chatctl -s PATH)\n");
		return -ADMIN_EXIT_UNREACHABLE;
	}
	return fd;
}

/* False when chatd closed the connection first (it may have said why:
 * read its answer still). */
static bool send_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
			return false;
		if (n < 0) {
			fprintf(stderr, "chatctl: sending to chatd: %s\n", strerror(errno));
			return false;
		}
		data += n;
		len -= (size_t)n;
	}
	return true;
}

static const char *get_string(struct json_object *o, const char *key)
{
	struct json_object *v;
	return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
		       ? json_object_get_string(v)
		       : NULL;
}

/* One event of monitor, as a person reads it. */
static void print_event(struct json_object *o)
{
	struct json_object *t;
	char stamp[32] = "";
	if (json_object_object_get_ex(o, "time", &t)) {
		time_t when = (time_t)json_object_get_double(t);
		struct tm tm;
		localtime_r(&when, &tm);
		strftime(stamp, sizeof(stamp), "%H:%M:%S ", &tm);
	}
	const char *event = get_string(o, "event"), *message = get_string(o, "message");
	const char *actor = get_string(o, "actor");
	printf("%s%-12s %s%s%s%s\n", stamp, event ? event : "?", message ? message : "",
	       actor ? " (by " : "", actor ? actor : "", actor ? ")" : "");
	fflush(stdout);
}

/* Reads lines from FD: the answer (one), or monitor's events (until chatd
 * closes). Returns the exit status. */
static int read_answers(int fd, bool json, bool monitor)
{
	FILE *in = fdopen(fd, "r");
	if (!in) {
		perror("chatctl: fdopen");
		return ADMIN_EXIT_UNREACHABLE;
	}
	char *line = NULL;
	size_t cap = 0;
	int status = ADMIN_EXIT_UNREACHABLE;
	bool answered = false;
	while (getline(&line, &cap, in) >= 0) {
		struct json_object *o = json_tokener_parse(line);
		if (!o || !json_object_is_type(o, json_type_object)) {
			fprintf(stderr, "chatctl: chatd answered something that is not JSON\n");
			json_object_put(o);
			status = ADMIN_EXIT_FAILED;
			break;
		}
		struct json_object *ok;
		bool is_answer = json_object_object_get_ex(o, "ok", &ok);
		if (monitor && !is_answer) {
			answered = true;
			if (json) {
				fputs(line, stdout);
				fflush(stdout);
			} else {
				print_event(o);
			}
			json_object_put(o);
			continue;
		}
		answered = true;
		const char *error = get_string(o, "error"), *text = get_string(o, "text");
		struct json_object *result = NULL, *denied = NULL;
		json_object_object_get_ex(o, "result", &result);
		if (json_object_get_boolean(ok)) {
			status = ADMIN_EXIT_OK;
			if (json)
				printf("%s\n", json_object_to_json_string_ext(
						       result, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE));
			else if (text)
				fputs(text, stdout);
		} else {
			bool refused = json_object_object_get_ex(o, "denied", &denied) &&
				       json_object_get_boolean(denied);
			status = refused ? ADMIN_EXIT_DENIED : ADMIN_EXIT_FAILED;
			if (json && result)
				printf("%s\n", json_object_to_json_string_ext(
						       result, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE));
			if (text)
				fputs(text, stderr);
			fprintf(stderr, "chatctl: %s\n", error ? error : "failed");
		}
		json_object_put(o);
		break;
	}
	if (!answered)
		fprintf(stderr, "chatctl: chatd closed the connection without an answer\n");
	else if (monitor && status == ADMIN_EXIT_UNREACHABLE)
		fprintf(stderr, "chatctl: chatd closed the connection (stopped?)\n");
	free(line);
	fclose(in);
	return status;
}

int main(int argc, char **argv)
{
	static const struct option long_options[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "socket", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	bool json = false;
	const char *socket_path = NULL;
	int opt;
	/* "+": options before the command only; its arguments are its own
	 * (a kick reason may start with "-"). */
	while ((opt = getopt_long(argc, argv, "+js:hV", long_options, NULL)) != -1) {
		switch (opt) {
		case 'j':
			json = true;
			break;
		case 's':
			socket_path = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("chatctl %s\n", PACKAGE_VERSION);
			return 0;
		default:
			usage(stderr);
			return ADMIN_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return ADMIN_EXIT_USAGE;
	}
	size_t nwords = (size_t)(argc - optind), used;
	const char *const *words = (const char *const *)argv + optind;
	int id = admin_command_find(words, nwords, &used);
	if (id < 0) {
		fprintf(stderr, "chatctl: no such command: %s (chatctl --help lists them)\n", words[0]);
		return ADMIN_EXIT_USAGE;
	}
	const struct admin_command *cmd = &admin_commands[id];
	size_t nargs = nwords - used;
	if (nargs < cmd->min_args || (nargs > cmd->max_args && !cmd->rest)) {
		fprintf(stderr, "usage: chatctl %s %s\n", cmd->name, cmd->args);
		return ADMIN_EXIT_USAGE;
	}

	struct json_object *req = json_object_new_object();
	json_object_object_add(req, "command", json_object_new_string(cmd->name));
	struct json_object *args = json_object_new_array();
	for (size_t i = 0; i < nargs; i++) {
		if (cmd->rest && json_object_array_length(args) + 1 == cmd->max_args) {
			/* The last takes the rest of the words. */
			size_t len = 0;
			for (size_t k = i; k < nargs; k++)
				len += strlen(words[used + k]) + 1;
			char *rest = xmalloc(len + 1), *p = rest;
			for (size_t k = i; k < nargs; k++)
				p += sprintf(p, "%s%s", k > i ? " " : "", words[used + k]);
			json_object_array_add(args, json_object_new_string(rest));
			free(rest);
			break;
		}
		json_object_array_add(args, json_object_new_string(words[used + i]));
	}
	json_object_object_add(req, "args", args);

	/* Asked before connecting: chatd gives a connection 10 s for its
	 * request, a person typing a password twice may take longer. */
	char *password = NULL;
	if (cmd->password && !(password = read_password(words[used]))) {
		json_object_put(req);
		return ADMIN_EXIT_USAGE;
	}
	if (password) {
		json_object_object_add(req, "password", json_object_new_string(password));
		explicit_bzero(password, strlen(password));
		free(password);
	}
	char *path = socket_path ? xstrdup(socket_path) : default_socket();
	int fd = connect_to(path);
	free(path);
	if (fd < 0) {
		wipe_password(req);
		json_object_put(req);
		return -fd;
	}
	const char *line = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	char *request = xasprintf("%s\n", line);
	send_all(fd, request, strlen(request));
	explicit_bzero(request, strlen(request)); /* it may hold a password */
	free(request);
	wipe_password(req);
	json_object_put(req);
	return read_answers(fd, json, id == ADMIN_MONITOR);
}
