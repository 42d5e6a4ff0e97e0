#include "autoconf.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "display.h"
#include "modes.h"
#include "base/text.h"
#include "base/util.h"

#define QUIT_WAIT_MS 2000 /* for the server's "= bye" and close after /quit */

/* readline's callback interface hands lines to a plain function, so the
 * state it needs lives here; chatc has one terminal and one session. */
static struct {
	struct session *session;
	bool color;
	bool done;        /* leave the loop */
	bool prompting;   /* readline owns the bottom line */
	int status;
	char nick[NAME_MAX_LEN + 1];
	char room[NAME_MAX_LEN + 1];
	char prompt[2 * NAME_MAX_LEN + 8];
} ui;

static void update_prompt(void)
{
	if (ui.nick[0])
		snprintf(ui.prompt, sizeof(ui.prompt), "%s@%s> ", ui.nick, ui.room);
	else
		snprintf(ui.prompt, sizeof(ui.prompt), "> ");
	rl_set_prompt(ui.prompt);
}

/* Prints a line above the prompt, leaving what the user is typing intact:
 * the prompt and input are wiped, the line printed, and readline redraws
 * its line (text and cursor position unchanged) below it. */
static void print_above_prompt(FILE *out, const char *text)
{
	if (!ui.prompting) {
		fprintf(out, "%s\n", text);
		return;
	}
	rl_clear_visible_line();
	fprintf(out, "%s\n", text);
	fflush(out);
	rl_on_new_line();
	rl_redisplay();
}

/* Follows the nick and room in the server's lines, for the prompt. */
static void track(const char *line)
{
	char name[NAME_MAX_LEN + 1], other[NAME_MAX_LEN + 1];

	if (sscanf(line, "> Connected to the chat server as %32[A-Za-z0-9_-] (", name) == 1) {
		snprintf(ui.nick, sizeof(ui.nick), "%s", name);
		snprintf(ui.room, sizeof(ui.room), "lobby");
	} else if (sscanf(line, "* %32[A-Za-z0-9_-] is now known as %32[A-Za-z0-9_-]", name, other) == 2 &&
		   strcmp(name, ui.nick) == 0) {
		snprintf(ui.nick, sizeof(ui.nick), "%s", other);
	} else if (sscanf(line, "= you joined %32[A-Za-z0-9_-] (", name) == 1) {
		snprintf(ui.room, sizeof(ui.room), "%s", name);
	} else {
		return;
	}
	update_prompt();
}

static void on_server_line(void *ctx, const char *line, size_t len)
{
	char *plain = display_format(line, len, false);
	track(plain);
	if (ui.color) {
		char *text = display_format(line, len, true);
		print_above_prompt(stdout, text);
		free(text);
	} else {
		print_above_prompt(stdout, plain);
	}
	free(plain);
}

/* Columns a string takes on the terminal (wide characters count twice). */
static size_t display_width(const char *s)
{
	mbstate_t st = { 0 };
	size_t width = 0, len = strlen(s);
	while (len > 0) {
		wchar_t wc;
		size_t n = mbrtowc(&wc, s, len, &st);
		if (n == (size_t)-1 || n == (size_t)-2) {
			width++;
			s++;
			len--;
			memset(&st, 0, sizeof(st));
			continue;
		}
		if (n == 0)
			break;
		int w = wcwidth(wc);
		width += w > 0 ? (size_t)w : 0;
		s += n;
		len -= n;
	}
	return width;
}

/* Replaces the echo of what was just entered (prompt + line, now above the
 * cursor) with TEXT. */
static void replace_echo(const char *line, const char *text)
{
	int rows, cols;
	rl_get_screen_size(&rows, &cols);
	if (cols <= 0 || !isatty(STDOUT_FILENO)) {
		printf("%s\n", text);
		return;
	}
	size_t width = display_width(ui.prompt) + display_width(line);
	size_t used_rows = width ? (width - 1) / (size_t)cols + 1 : 1;
	printf("\033[%zuA\r\033[J%s\n", used_rows, text);
}

/* readline's callback interface gives the terminal its earlier settings
 * (echo, line editing) for as long as the line handler runs. Keys that
 * arrive in that gap, such as the rest of a paste or a quick Enter, would
 * be echoed by the kernel among our lines and break the display, so
 * readline's own reset does nothing and chatc resets the terminal once,
 * when the prompt goes for good. */
static void keep_terminal_mode(void)
{
}

static void stop_prompting(void)
{
	rl_callback_handler_remove();
	rl_deprep_terminal();
	ui.prompting = false;
}

/* Ctrl-D, Ctrl-C: the prompt goes (what was typed stays on the screen,
 * unsent), and we leave as /quit would. */
static void leave(void)
{
	if (ui.prompting) {
		rl_point = rl_end;
		rl_redisplay();
		stop_prompting();
		printf("\n");
	}
	session_send_line(ui.session, "/quit", 5);
	ui.session->quit_sent = true;
	ui.done = true;
}

static void on_input_line(char *line)
{
	if (!line) {
		/* Ctrl-D: leave as /quit would. */
		leave();
		return;
	}
	size_t len = strlen(line);
	if (len == 0 || text_is_blank(line, len)) {
		free(line);
		return;
	}
	add_history(line);
	session_send_line(ui.session, line, len);
	if (is_quit_command(line, len)) {
		ui.session->quit_sent = true;
		stop_prompting();
	} else if (line[0] != '/' || line[1] == '/') {
		const char *said = line[0] == '/' ? line + 1 : line;
		char *text = display_own(said, strlen(said), ui.color);
		replace_echo(line, text);
		free(text);
	}
	free(line);
}

static int block_signals(void)
{
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGWINCH);
	sigaddset(&mask, SIGTSTP);
	sigaddset(&mask, SIGCONT);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return -1;
	return signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
}

/* After a stop (Ctrl-Z, or SIGSTOP from elsewhere) the shell has set the
 * terminal its own way, and readline, which did not see the stop, would
 * not set it again: chatc does, and redraws the prompt and what was typed. */
static void resume(void)
{
	if (!ui.prompting)
		return;
	rl_deprep_terminal(); /* nothing to do when suspend() did it */
	rl_prep_terminal(1);
	rl_forced_update_display();
}

/* Ctrl-Z: the terminal goes back to its settings from before chatc, and
 * chatc stops as SIGTSTP's default action would stop it (the shell reports
 * it stopped); it goes on from here when continued. */
static void suspend(void)
{
	struct sigaction action;
	if (sigaction(SIGTSTP, NULL, &action) == 0 && action.sa_handler == SIG_IGN)
		return;
	if (ui.prompting) {
		rl_deprep_terminal();
		printf("\n");
		fflush(stdout);
	}
	sigset_t tstp, cont;
	sigemptyset(&tstp);
	sigaddset(&tstp, SIGTSTP);
	sigemptyset(&cont);
	sigaddset(&cont, SIGCONT);
	raise(SIGTSTP);
	sigprocmask(SIG_UNBLOCK, &tstp, NULL); /* stopped here until continued */
	sigprocmask(SIG_BLOCK, &tstp, NULL);
	/* The SIGCONT that continued us is answered here, not again from the
	 * signalfd; and if no stop happened (an orphaned process group), the
	 * terminal must be set back all the same. */
	sigtimedwait(&cont, NULL, &(struct timespec){ 0 });
	resume();
}

static void handle_signal(int sfd)
{
	struct signalfd_siginfo si;
	while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGWINCH) {
			rl_resize_terminal();
		} else if (si.ssi_signo == SIGTSTP) {
			suspend();
		} else if (si.ssi_signo == SIGCONT) {
			resume();
		} else {
			/* Ctrl-C (or TERM, HUP): leave cleanly, as /quit. */
			leave();
		}
	}
}

int run_interactive(struct session *s, const struct client_options *o)
{
	ui.session = s;
	ui.color = o->color;
	s->on_line = on_server_line;
	s->ctx = NULL;

	int sfd = block_signals();
	if (sfd < 0) {
		fprintf(stderr, "chatc: signalfd: %s\n", strerror(errno));
		return 1;
	}
	/* We handle the signals; readline must leave them to us. */
	rl_catch_signals = 0;
	rl_catch_sigwinch = 0;
	rl_readline_name = "chatc";
	rl_initialize(); /* reads inputrc; our settings below come after it */
	/* A pasted block must arrive as the lines it is, each sent and shown
	 * on its own (and a pasted /quit be a /quit). */
	rl_variable_bind("enable-bracketed-paste", "off");
	/* Tab has nothing to complete in a chat; file names would be wrong. */
	rl_bind_key('\t', rl_insert);
	rl_deprep_term_function = keep_terminal_mode;
	update_prompt();
	rl_callback_handler_install(ui.prompt, on_input_line);
	ui.prompting = true;

	while (!ui.done) {
		struct pollfd p[3] = {
			/* After /quit, keys have nowhere to go. */
			{ .fd = ui.prompting ? STDIN_FILENO : -1, .events = POLLIN },
			{ .fd = s->fd, .events = POLLIN | (session_has_output(s) ? POLLOUT : 0) },
			{ .fd = sfd, .events = POLLIN },
		};
		/* After /quit, the server has QUIT_WAIT_MS to close. */
		int n = poll(p, 3, s->quit_sent ? QUIT_WAIT_MS : -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (n == 0)
			break;
		if (p[2].revents & POLLIN)
			handle_signal(sfd);
		if (p[0].revents & (POLLIN | POLLHUP | POLLERR))
			rl_callback_read_char();
		if (p[1].revents & POLLOUT && session_flush(s) < 0)
			s->closed = true;
		if (p[1].revents & (POLLIN | POLLHUP | POLLERR) && session_read(s) < 0)
			s->closed = true;
		if (s->closed) {
			ui.done = true;
			if (!s->quit_sent) {
				rl_clear_visible_line();
				ui.status = 1;
			}
		}
	}

	if (ui.prompting) {
		rl_clear_visible_line();
		stop_prompting();
	}
	/* After Ctrl-D or Ctrl-C: let the server say "= bye" and close. */
	if (s->quit_sent && !s->closed) {
		session_flush_blocking(s, QUIT_WAIT_MS);
		struct pollfd p = { .fd = s->fd, .events = POLLIN };
		while (!s->closed && poll(&p, 1, QUIT_WAIT_MS) > 0 && session_read(s) == 0)
			;
	}
	close(sfd);
	fflush(stdout);
	if (ui.status)
		fprintf(stderr, "chatc: connection closed by server\n");
	return ui.status;
}
