#include "autoconf.h"

#include "display.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/text.h"
#include "base/util.h"

#define RESET "\033[0m"
#define DIM "\033[2m"
#define RED "\033[1;31m"
#define BOLD "\033[1m"

/* Red is kept for errors. */
static const char *const nick_colors[] = {
	"\033[32m", "\033[33m", "\033[34m", "\033[35m", "\033[36m",
	"\033[92m", "\033[93m", "\033[94m", "\033[95m", "\033[96m",
};

bool display_want_color(bool no_color_option)
{
	const char *no_color = getenv("NO_COLOR");
	return !no_color_option && !(no_color && *no_color) && isatty(STDOUT_FILENO);
}

/* A growing string. */
struct out {
	char *s;
	size_t len, cap;
};

static void put(struct out *o, const char *s, size_t len)
{
	o->s = xgrow(o->s, &o->cap, o->len + len + 1, 128);
	memcpy(o->s + o->len, s, len);
	o->len += len;
	o->s[o->len] = '\0';
}

static void puts_(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

static const char *nick_color(const char *nick, size_t len)
{
	unsigned h = 2166136261u;
	for (size_t i = 0; i < len; i++) {
		char c = nick[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a'); /* nicks are unique ignoring case */
		h = (h ^ (unsigned char)c) * 16777619u;
	}
	return nick_colors[h % ARRAY_SIZE(nick_colors)];
}

/* S in the STYLE's color, then back to normal. */
static void put_styled(struct out *o, const char *style, const char *s, size_t len)
{
	puts_(o, style);
	put(o, s, len);
	puts_(o, RESET);
}

static void put_nick(struct out *o, const char *nick, size_t len)
{
	put_styled(o, nick_color(nick, len), nick, len);
}

/* "[alice] text" or "[alice -> bob] text": the nicks in their colors. */
static void put_chat(struct out *o, const char *s, size_t len)
{
	const char *end = memchr(s, ']', len);
	if (!end) {
		put(o, s, len);
		return;
	}
	const char *names = s + 1;
	size_t names_len = (size_t)(end - names);
	const char *arrow = NULL;
	for (size_t i = 0; i + 4 <= names_len; i++)
		if (memcmp(names + i, " -> ", 4) == 0)
			arrow = names + i;
	put(o, "[", 1);
	if (arrow) {
		put_nick(o, names, (size_t)(arrow - names));
		puts_(o, " -> ");
		put_nick(o, arrow + 4, names_len - (size_t)(arrow - names) - 4);
	} else {
		put_nick(o, names, names_len);
	}
	put(o, end, len - (size_t)(end - s));
}

/* "~ 2026-12-06T14:03:05Z [alice] hi", a line said before: dimmed, at
 * the local time, the rest as a chat line. */
static void put_history(struct out *o, const char *s, size_t len)
{
	char stamp[32], local[48];
	struct tm tm = { 0 };
	const char *rest = len > 2 ? memchr(s + 2, ' ', len - 2) : NULL;
	size_t stamp_len = rest ? (size_t)(rest - s) - 2 : 0;
	if (!rest || stamp_len >= sizeof(stamp)) {
		put_styled(o, DIM, s, len);
		return;
	}
	memcpy(stamp, s + 2, stamp_len);
	stamp[stamp_len] = '\0';
	const char *end = strptime(stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
	time_t t = end && !*end ? timegm(&tm) : (time_t)-1;
	struct tm lt;
	if (t == (time_t)-1 || !localtime_r(&t, &lt) ||
	    !strftime(local, sizeof(local), "~ %Y-%m-%d %H:%M ", &lt))
		snprintf(local, sizeof(local), "~ %s ", stamp);
	put_styled(o, DIM, local, strlen(local));
	rest++;
	size_t rest_len = len - (size_t)(rest - s);
	if (rest_len && rest[0] == '[')
		put_chat(o, rest, rest_len);
	else
		put_styled(o, DIM, rest, rest_len);
}

char *display_format(const char *line, size_t len, bool color)
{
	struct out o = { 0 };
	char *clean = xmalloc(TEXT_CLEAN_MAX(len) + 1);
	size_t n = text_clean(clean, line, len);

	if (!color || n == 0) {
		put(&o, clean, n);
	} else {
		switch (clean[0]) {
		case '!':
			put_styled(&o, RED, clean, n);
			break;
		case '#':
		case '>':
		case '<':
			put_styled(&o, DIM, clean, n);
			break;
		case '[':
			put_chat(&o, clean, n);
			break;
		case '~':
			put_history(&o, clean, n);
			break;
		case '*': {
			/* "* alice waves": the actor in color */
			const char *nick = clean + 2;
			const char *sp = n > 2 ? memchr(nick, ' ', n - 2) : NULL;
			if (n > 2 && clean[1] == ' ' && sp) {
				put(&o, "* ", 2);
				put_nick(&o, nick, (size_t)(sp - nick));
				put(&o, sp, n - (size_t)(sp - clean));
			} else {
				put(&o, clean, n);
			}
			break;
		}
		default:
			put(&o, clean, n);
			break;
		}
	}
	free(clean);
	if (!o.s)
		put(&o, "", 0);
	return o.s;
}

char *display_own(const char *text, size_t len, bool color)
{
	struct out o = { 0 };
	char *clean = xmalloc(TEXT_CLEAN_MAX(len) + 1);
	size_t n = text_clean(clean, text, len);

	if (color)
		puts_(&o, "[" BOLD "you" RESET "] ");
	else
		puts_(&o, "[you] ");
	put(&o, clean, n);
	free(clean);
	return o.s;
}
