#include "autoconf.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "display.h"
#include "proto/framer.h"
#include "modes.h"
#include "base/util.h"

#define STDIN_MAX_LINE (1024 * 1024)

bool is_quit_command(const char *line, size_t len)
{
	return len >= 5 && strncasecmp(line, "/quit", 5) == 0 &&
	       (len == 5 || line[5] == ' ' || line[5] == '\t');
}

struct scripted {
	struct session *session;
	bool color;
};

static void print_server_line(void *ctx, const char *line, size_t len)
{
	struct scripted *sc = ctx;
	char *text = display_format(line, len, sc->color);
	puts(text);
	free(text);
}

static bool send_stdin_line(void *ctx, const char *line, size_t len)
{
	struct session *s = ctx;
	if (is_quit_command(line, len))
		s->quit_sent = true;
	session_send_line(s, line, len);
	return true;
}

static bool stdin_line_too_long(void *ctx)
{
	fprintf(stderr, "chatc: input line longer than %d bytes not sent\n", STDIN_MAX_LINE);
	return true;
}

static const struct framer_handler stdin_handler = { .line = send_stdin_line,
						     .too_long = stdin_line_too_long };

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int run_scripted(struct session *s, const struct client_options *o)
{
	struct scripted sc = { .session = s, .color = o->color };
	struct framer input = { 0 };
	bool stdin_open = true;
	long long quiet_ms = (long long)(o->wait_seconds * 1000), last_activity = now_ms();
	int status = 0;

	s->on_line = print_server_line;
	s->ctx = &sc;
	setvbuf(stdout, NULL, _IOLBF, 0);

	for (;;) {
		struct pollfd p[2] = {
			{ .fd = s->fd, .events = POLLIN | (session_has_output(s) ? POLLOUT : 0) },
			{ .fd = stdin_open ? STDIN_FILENO : -1, .events = POLLIN },
		};
		int timeout = -1;
		if (!stdin_open && !session_has_output(s)) {
			long long left = last_activity + quiet_ms - now_ms();
			if (left <= 0)
				break; /* all sent, and the server has had its say */
			timeout = (int)left;
		}
		if (poll(p, 2, timeout) < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "chatc: poll: %s\n", strerror(errno));
			status = 1;
			break;
		}
		if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			int r = session_read(s);
			last_activity = now_ms();
			if (r < 0) {
				fprintf(stderr, "chatc: connection lost: %s\n", strerror(-r));
				status = 1;
				break;
			}
			if (s->closed) {
				if (!s->quit_sent) {
					fflush(stdout);
					fprintf(stderr, "chatc: connection closed by server\n");
					status = 1;
				}
				break;
			}
		}
		if (p[0].revents & POLLOUT) {
			int r = session_flush(s);
			if (r < 0) {
				fprintf(stderr, "chatc: connection lost: %s\n", strerror(-r));
				status = 1;
				break;
			}
			last_activity = now_ms();
		}
		if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			char buf[16384];
			ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
			if (n > 0) {
				framer_feed(&input, buf, (size_t)n, STDIN_MAX_LINE, &stdin_handler, s);
			} else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
				/* A last line without "\n" is still a line. */
				if (input.partial_len > 0)
					send_stdin_line(s, input.partial, input.partial_len);
				stdin_open = false;
				last_activity = now_ms();
			}
		}
	}
	framer_reset(&input);
	session_flush_blocking(s, 2000);
	fflush(stdout);
	return status;
}
