/* Unit tests for src/protocol.c: one client line into one command, as
 * docs/protocol.md describes. */
#include "autoconf.h"

#include "src/proto/protocol.h"
#include "unit.h"

#include <stdbool.h>
#include <stdint.h>

static const char *kind_str(enum command_kind k)
{
	static const char *const names[] = {
		"CMD_EMPTY", "CMD_CHAT", "CMD_NICK", "CMD_WHO", "CMD_MSG", "CMD_ME",
		"CMD_JOIN", "CMD_ROOMS", "CMD_HELP", "CMD_QUIT", "CMD_UNKNOWN",
	};
	return (unsigned)k < sizeof(names) / sizeof(names[0]) ? names[k] : "(bad kind)";
}

/* True when [p, p + n) lies inside [line, line + len]. */
static bool inside(const char *p, size_t n, const char *line, size_t len)
{
	if (n == 0)
		return true;  /* an empty field may point anywhere (or be NULL) */
	uintptr_t a = (uintptr_t)p, lo = (uintptr_t)line;
	return p && a >= lo && n <= len && a - lo <= len - n;
}

/* Parses IN from a heap copy of exactly IN_LEN bytes (no NUL after it, so
 * valgrind sees any read past the end) and checks the kind and, unless
 * NULL, the arg and text. WANT_TEXT_IS_LINE: text must be the line itself. */
static void check_parse_at(const char *file, int line, const char *in, size_t in_len,
			   enum command_kind want_kind, const char *want_arg,
			   const char *want_text, bool want_text_is_line)
{
	char *buf = calloc(in_len ? in_len : 1, 1);
	if (!buf)
		abort();
	memcpy(buf, in, in_len);
	struct command cmd;
	memset(&cmd, 0xA5, sizeof(cmd));
	protocol_parse(buf, in_len, &cmd);

	/* only the fields the kind defines are looked at */
	bool has_arg = cmd.kind == CMD_NICK || cmd.kind == CMD_MSG ||
		       cmd.kind == CMD_JOIN || cmd.kind == CMD_UNKNOWN;
	bool has_text = cmd.kind == CMD_CHAT || cmd.kind == CMD_MSG ||
			cmd.kind == CMD_ME || cmd.kind == CMD_QUIT;
	if (!has_arg) {
		cmd.arg = NULL;
		cmd.arg_len = 0;
	}
	if (!has_text) {
		cmd.text = NULL;
		cmd.text_len = 0;
	}

	const char *problem = NULL;
	if (cmd.kind != want_kind)
		problem = "kind";
	else if (!inside(cmd.arg, cmd.arg_len, buf, in_len))
		problem = "arg points outside the line";
	else if (!inside(cmd.text, cmd.text_len, buf, in_len))
		problem = "text points outside the line";
	else if (want_arg && (cmd.arg_len != strlen(want_arg) ||
			      memcmp(cmd.arg, want_arg, cmd.arg_len) != 0))
		problem = "arg";
	else if (want_text && (cmd.text_len != strlen(want_text) ||
			       memcmp(cmd.text, want_text, cmd.text_len) != 0))
		problem = "text";
	else if (want_text_is_line && (cmd.text != buf || cmd.text_len != in_len))
		problem = "text is not the line itself";

	unit_checks++;
	if (problem) {
		unit_failures++;
		fprintf(stderr, "%s:%d: protocol_parse(\"", file, line);
		unit_print_bytes(in, in_len);
		fprintf(stderr, "\"): %s wrong: got %s", problem, kind_str(cmd.kind));
		if (inside(cmd.arg, cmd.arg_len, buf, in_len)) {
			fprintf(stderr, " arg \"");
			unit_print_bytes(cmd.arg, cmd.arg_len);
			fprintf(stderr, "\"");
		} else {
			fprintf(stderr, " arg (outside, len %zu)", cmd.arg_len);
		}
		if (inside(cmd.text, cmd.text_len, buf, in_len)) {
			fprintf(stderr, " text \"");
			unit_print_bytes(cmd.text, cmd.text_len);
			fprintf(stderr, "\"");
		} else {
			fprintf(stderr, " text (outside, len %zu)", cmd.text_len);
		}
		fprintf(stderr, "; want %s", kind_str(want_kind));
		if (want_arg)
			fprintf(stderr, " arg \"%s\"", want_arg);
		if (want_text)
			fprintf(stderr, " text \"%s\"", want_text);
		fprintf(stderr, "\n");
	}
	free(buf);
}

/* KIND only */
#define PARSE_KIND(s, kind) \
	check_parse_at(__FILE__, __LINE__, (s), sizeof(s) - 1, (kind), NULL, NULL, false)
/* KIND and arg (text not looked at) */
#define PARSE_ARG(s, kind, arg) \
	check_parse_at(__FILE__, __LINE__, (s), sizeof(s) - 1, (kind), (arg), NULL, false)
/* KIND and text (arg not looked at) */
#define PARSE_TEXT(s, kind, text) \
	check_parse_at(__FILE__, __LINE__, (s), sizeof(s) - 1, (kind), NULL, (text), false)
/* KIND, arg and text */
#define PARSE_BOTH(s, kind, arg, text) \
	check_parse_at(__FILE__, __LINE__, (s), sizeof(s) - 1, (kind), (arg), (text), false)
/* chat whose text is the whole line */
#define PARSE_CHAT_LINE(s) \
	check_parse_at(__FILE__, __LINE__, (s), sizeof(s) - 1, CMD_CHAT, NULL, (s), true)

static void test_empty(void)
{
	PARSE_KIND("", CMD_EMPTY);
	PARSE_KIND(" ", CMD_EMPTY);
	PARSE_KIND("\t", CMD_EMPTY);
	PARSE_KIND("   \t ", CMD_EMPTY);
	PARSE_KIND(" \t \t\t  ", CMD_EMPTY);
}

static void test_chat(void)
{
	PARSE_CHAT_LINE("hello");
	PARSE_CHAT_LINE("Hello, World!");
	PARSE_CHAT_LINE("x");
	PARSE_CHAT_LINE("hello /nick x");
	PARSE_CHAT_LINE("caf\xC3\xA9 \xE2\x82\xAC");
	/* a chat line is the line, not trimmed; only a leading "/" makes a command */
	PARSE_CHAT_LINE("  hello  ");
	PARSE_CHAT_LINE("\thello");
	PARSE_CHAT_LINE(" /nick alice");
	PARSE_CHAT_LINE("\\/nick");

	/* "//": the rest from its second "/" */
	check_parse_at(__FILE__, __LINE__, "//shrug", 7, CMD_CHAT, NULL, "/shrug", false);
	PARSE_TEXT("//", CMD_CHAT, "/");
	PARSE_TEXT("//nick alice", CMD_CHAT, "/nick alice");
	PARSE_TEXT("/// x ", CMD_CHAT, "// x ");
	PARSE_TEXT("// ", CMD_CHAT, "/ ");

	/* "//x" text points at the second "/" of the line itself */
	const char line[] = "//shrug";
	struct command cmd;
	protocol_parse(line, 7, &cmd);
	CHECK_INT(cmd.kind, CMD_CHAT);
	CHECK(cmd.text == line + 1);
	CHECK_INT(cmd.text_len, 6);
}

static void test_nick(void)
{
	PARSE_ARG("/nick alice", CMD_NICK, "alice");
	PARSE_ARG("/NICK  alice  ", CMD_NICK, "alice");
	PARSE_ARG("/Nick alice", CMD_NICK, "alice");
	PARSE_ARG("/nIcK Alice", CMD_NICK, "Alice");
	PARSE_ARG("/nick\talice", CMD_NICK, "alice");
	PARSE_ARG("/nick \t alice\t \t", CMD_NICK, "alice");
	PARSE_ARG("/nick a", CMD_NICK, "a");
	/* rest of the line, trimmed: chat.c rejects it as no valid name */
	PARSE_ARG("/nick alice bob", CMD_NICK, "alice bob");
	PARSE_ARG("/nick  al\tice  ", CMD_NICK, "al\tice");
	/* no argument */
	PARSE_ARG("/nick", CMD_NICK, "");
	PARSE_ARG("/nick ", CMD_NICK, "");
	PARSE_ARG("/NICK \t  ", CMD_NICK, "");
	PARSE_ARG("/nick\t", CMD_NICK, "");
}

static void test_msg(void)
{
	PARSE_BOTH("/msg bob hi there", CMD_MSG, "bob", "hi there");
	PARSE_BOTH("/msg bob", CMD_MSG, "bob", "");
	PARSE_BOTH("/msg bob   ", CMD_MSG, "bob", "");
	PARSE_BOTH("/msg bob \t", CMD_MSG, "bob", "");
	PARSE_BOTH("/msg", CMD_MSG, "", "");
	PARSE_BOTH("/msg   ", CMD_MSG, "", "");
	PARSE_BOTH("/MSG Bob hi", CMD_MSG, "Bob", "hi");
	PARSE_BOTH("/Msg bob x", CMD_MSG, "bob", "x");
	PARSE_BOTH("/msg\tbob\thi\tthere", CMD_MSG, "bob", "hi\tthere");
	PARSE_BOTH("/msg  bob   hi   there  ", CMD_MSG, "bob", "hi   there");
	PARSE_BOTH("/msg \t bob \t hi \t ", CMD_MSG, "bob", "hi");
	PARSE_BOTH("/msg bob /me is here", CMD_MSG, "bob", "/me is here");
	PARSE_BOTH("/msg bob //x", CMD_MSG, "bob", "//x");
}

static void test_me(void)
{
	PARSE_TEXT("/me waves", CMD_ME, "waves");
	PARSE_TEXT("/ME waves", CMD_ME, "waves");
	PARSE_TEXT("/me  waves  hello  ", CMD_ME, "waves  hello");
	PARSE_TEXT("/me\twaves", CMD_ME, "waves");
	PARSE_TEXT("/me", CMD_ME, "");
	PARSE_TEXT("/me   ", CMD_ME, "");
}

static void test_join(void)
{
	PARSE_ARG("/join games", CMD_JOIN, "games");
	PARSE_ARG("/JOIN games", CMD_JOIN, "games");
	PARSE_ARG("/join\tgames\t", CMD_JOIN, "games");
	PARSE_ARG("/join   games   ", CMD_JOIN, "games");
	PARSE_ARG("/join big room", CMD_JOIN, "big room");
	PARSE_ARG("/join", CMD_JOIN, "");
	PARSE_ARG("/join  ", CMD_JOIN, "");
}

static void test_simple_commands(void)
{
	PARSE_KIND("/who", CMD_WHO);
	PARSE_KIND("/WHO", CMD_WHO);
	PARSE_KIND("/Who", CMD_WHO);
	PARSE_KIND("/who ", CMD_WHO);
	PARSE_KIND("/who\t", CMD_WHO);
	PARSE_KIND("/rooms", CMD_ROOMS);
	PARSE_KIND("/ROOMS", CMD_ROOMS);
	PARSE_KIND("/rooms  ", CMD_ROOMS);
	PARSE_KIND("/help", CMD_HELP);
	PARSE_KIND("/Help", CMD_HELP);
	PARSE_KIND("/help ", CMD_HELP);
}

static void test_quit(void)
{
	PARSE_TEXT("/quit", CMD_QUIT, "");
	PARSE_TEXT("/quit ", CMD_QUIT, "");
	PARSE_TEXT("/QUIT", CMD_QUIT, "");
	PARSE_TEXT("/quit off to lunch", CMD_QUIT, "off to lunch");
	PARSE_TEXT("/Quit   bye  ", CMD_QUIT, "bye");
	PARSE_TEXT("/quit\tbye\t", CMD_QUIT, "bye");
}

static void test_unknown(void)
{
	PARSE_ARG("/foo bar", CMD_UNKNOWN, "/foo");
	PARSE_ARG("/foo", CMD_UNKNOWN, "/foo");
	PARSE_ARG("/FOO", CMD_UNKNOWN, "/FOO");
	PARSE_ARG("/foo\tbar", CMD_UNKNOWN, "/foo");
	PARSE_ARG("/foo  ", CMD_UNKNOWN, "/foo");
	PARSE_ARG("/", CMD_UNKNOWN, "/");
	PARSE_ARG("/ ", CMD_UNKNOWN, "/");
	PARSE_ARG("/ nick alice", CMD_UNKNOWN, "/");
	PARSE_ARG("/\t", CMD_UNKNOWN, "/");
	/* whole words only, no prefixes or abbreviations */
	PARSE_ARG("/nickname x", CMD_UNKNOWN, "/nickname");
	PARSE_ARG("/nick_ x", CMD_UNKNOWN, "/nick_");
	PARSE_ARG("/nic alice", CMD_UNKNOWN, "/nic");
	PARSE_ARG("/n alice", CMD_UNKNOWN, "/n");
	PARSE_ARG("/whoami", CMD_UNKNOWN, "/whoami");
	PARSE_ARG("/wh", CMD_UNKNOWN, "/wh");
	PARSE_ARG("/msgbob hi", CMD_UNKNOWN, "/msgbob");
	PARSE_ARG("/mee waves", CMD_UNKNOWN, "/mee");
	PARSE_ARG("/m", CMD_UNKNOWN, "/m");
	PARSE_ARG("/joingames", CMD_UNKNOWN, "/joingames");
	PARSE_ARG("/room", CMD_UNKNOWN, "/room");
	PARSE_ARG("/roomsx", CMD_UNKNOWN, "/roomsx");
	PARSE_ARG("/helpme", CMD_UNKNOWN, "/helpme");
	PARSE_ARG("/quitter", CMD_UNKNOWN, "/quitter");
	PARSE_ARG("/q", CMD_UNKNOWN, "/q");
	PARSE_ARG("/chat hi", CMD_UNKNOWN, "/chat");
	PARSE_ARG("/empty", CMD_UNKNOWN, "/empty");
	PARSE_ARG("/unknown", CMD_UNKNOWN, "/unknown");
	PARSE_ARG("/nick\xC3\xA9 x", CMD_UNKNOWN, "/nick\xC3\xA9");
	PARSE_ARG("/n\xC3\xAF" "ck x", CMD_UNKNOWN, "/n\xC3\xAF" "ck");
	/* a NUL is no separator */
	check_parse_at(__FILE__, __LINE__, "/nick\0x", 7, CMD_UNKNOWN, NULL, NULL, false);
	check_parse_at(__FILE__, __LINE__, "/who\0", 5, CMD_UNKNOWN, NULL, NULL, false);
}

static void test_length_respected(void)
{
	/* only LEN bytes are the line */
	const char s[] = "/nick alice!!!";
	check_parse_at(__FILE__, __LINE__, s, 11, CMD_NICK, "alice", NULL, false);
	check_parse_at(__FILE__, __LINE__, s, 5, CMD_NICK, "", NULL, false);
	check_parse_at(__FILE__, __LINE__, s, 4, CMD_UNKNOWN, "/nic", NULL, false);
	check_parse_at(__FILE__, __LINE__, "/who are you", 4, CMD_WHO, NULL, NULL, false);
	check_parse_at(__FILE__, __LINE__, "/msg bob hi there", 11, CMD_MSG, "bob", "hi", false);
	check_parse_at(__FILE__, __LINE__, "/msg bob hi there", 8, CMD_MSG, "bob", "", false);
	check_parse_at(__FILE__, __LINE__, "hello", 3, CMD_CHAT, NULL, "hel", false);
	check_parse_at(__FILE__, __LINE__, "  x", 2, CMD_EMPTY, NULL, NULL, false);
	check_parse_at(__FILE__, __LINE__, "//shrug", 4, CMD_CHAT, NULL, "/sh", false);

	/* a long line */
	size_t len = 100000;
	char *big = malloc(len);
	if (!big)
		abort();
	memcpy(big, "/msg bob ", 9);
	memset(big + 9, 'x', len - 9);
	struct command cmd;
	protocol_parse(big, len, &cmd);
	CHECK_INT(cmd.kind, CMD_MSG);
	CHECK_INT(cmd.arg_len, 3);
	CHECK(cmd.arg == big + 5);
	CHECK_INT(cmd.text_len, len - 9);
	CHECK(cmd.text == big + 9);
	free(big);
}

static void test_command_name(void)
{
	const char *seen[CMD_UNKNOWN + 1];
	for (int k = CMD_EMPTY; k <= CMD_UNKNOWN; k++) {
		const char *name = command_name((enum command_kind)k);
		seen[k] = name;
		unit_checks++;
		if (!name || !*name) {
			unit_failures++;
			fprintf(stderr, "%s:%d: command_name(%s) is %s\n", __FILE__, __LINE__,
				kind_str((enum command_kind)k), name ? "\"\"" : "NULL");
			continue;
		}
		for (int j = CMD_EMPTY; j < k; j++) {
			unit_checks++;
			if (seen[j] && strcmp(seen[j], name) == 0) {
				unit_failures++;
				fprintf(stderr, "%s:%d: command_name(%s) and command_name(%s) are both \"%s\"\n",
					__FILE__, __LINE__, kind_str((enum command_kind)j),
					kind_str((enum command_kind)k), name);
			}
		}
	}
}

int main(void)
{
	test_empty();
	test_chat();
	test_nick();
	test_msg();
	test_me();
	test_join();
	test_simple_commands();
	test_quit();
	test_unknown();
	test_length_respected();
	test_command_name();
	return unit_finish("test_protocol");
}
