/* Unit tests for src/proto/irc_message.c: IRC messages split into command
 * and parameters as the "Modern IRC client protocol" document describes,
 * and comma-separated targets. */
#include "autoconf.h"

#include "src/proto/irc_message.h"
#include "unit.h"

/* Parameter I of M as a NUL-terminated string (static buffer). */
static const char *param(const struct irc_message *m, int i)
{
	static char buf[1024];
	size_t len = m->param_len[i] < sizeof(buf) - 1 ? m->param_len[i] : sizeof(buf) - 1;
	memcpy(buf, m->params[i], len);
	buf[len] = '\0';
	return buf;
}

static bool parse(const char *line, struct irc_message *m)
{
	return irc_parse(line, strlen(line), m);
}

static void test_command_and_params(void)
{
	struct irc_message m;

	CHECK(parse("privmsg #lobby :hello there", &m));
	CHECK_STR(m.command, "PRIVMSG");
	CHECK_INT(m.count, 2);
	CHECK_STR(param(&m, 0), "#lobby");
	CHECK_STR(param(&m, 1), "hello there");

	CHECK(parse("NICK alice", &m));
	CHECK_INT(m.count, 1);
	CHECK_STR(param(&m, 0), "alice");

	CHECK(parse("QUIT", &m));
	CHECK_STR(m.command, "QUIT");
	CHECK_INT(m.count, 0);
}

static void test_trailing(void)
{
	struct irc_message m;

	/* An empty trailing parameter is a parameter (TOPIC #x : clears). */
	CHECK(parse("TOPIC #x :", &m));
	CHECK_INT(m.count, 2);
	CHECK_INT(m.param_len[1], 0);
	/* A colon inside a middle parameter is part of it. */
	CHECK(parse("PRIVMSG a:b :c :d", &m));
	CHECK_STR(param(&m, 0), "a:b");
	CHECK_STR(param(&m, 1), "c :d");
	/* Runs of spaces separate like one. */
	CHECK(parse("USER  u   0 *   :Real Name", &m));
	CHECK_INT(m.count, 4);
	CHECK_STR(param(&m, 2), "*");
	CHECK_STR(param(&m, 3), "Real Name");
}

static void test_source_and_blank(void)
{
	struct irc_message m;

	CHECK(parse(":alice!u@h PRIVMSG bob :x", &m));
	CHECK_STR(m.command, "PRIVMSG");
	CHECK_STR(param(&m, 0), "bob");
	CHECK(!parse("", &m));
	CHECK(!parse("    ", &m));
	CHECK(!parse(":onlyasource", &m));
}

static void test_fifteen_params(void)
{
	struct irc_message m;

	CHECK(parse("X 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17", &m));
	CHECK_INT(m.count, IRC_MAX_PARAMS);
	CHECK_STR(param(&m, 13), "14");
	CHECK_STR(param(&m, 14), "15 16 17");
}

static void test_long_command_is_cut(void)
{
	struct irc_message m;
	char line[100];

	memset(line, 'a', 60);
	strcpy(line + 60, " x");
	CHECK(parse(line, &m));
	CHECK_INT(strlen(m.command), sizeof(m.command) - 1);
	CHECK_STR(param(&m, 0), "x");
}

static void test_items(void)
{
	const char *list = "#a,#b,,#c";
	const char *p = list, *item;
	size_t len = strlen(list), item_len;
	const char *want[] = { "#a", "#b", "", "#c" };
	int n = 0;

	while (irc_next_item(&p, &len, &item, &item_len)) {
		CHECK(n < 4);
		if (n < 4)
			CHECK(item_len == strlen(want[n]) && memcmp(item, want[n], item_len) == 0);
		n++;
	}
	CHECK_INT(n, 4);
	len = 0;
	CHECK(!irc_next_item(&p, &len, &item, &item_len));
}

int main(void)
{
	test_command_and_params();
	test_trailing();
	test_source_and_blank();
	test_fifteen_params();
	test_long_command_is_cut();
	test_items();
	return unit_finish("test_irc_message");
}
