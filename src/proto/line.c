/* chatd's own line protocol (docs/protocol.md), events encoded: a kind
 * character, a space, the text, "\n". Each msg is allocated to its exact
 * size, since max_sendq counts queued bytes and memory must not be a
 * multiple of them. */
#include "autoconf.h"

#include "proto/line.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/text.h"

/* HEAD (printf-style) + the event's text + TAIL + "\n", in one msg. */
static struct msg *line_with_text(const struct chat_event *ev, const char *tail,
				  const char *head_fmt, ...) PRINTF_LIKE(3, 4);

static struct msg *line_with_text(const struct chat_event *ev, const char *tail,
				  const char *head_fmt, ...)
{
	char head[3 * NAME_MAX_LEN + 64];
	va_list ap;

	va_start(ap, head_fmt);
	int hlen = vsnprintf(head, sizeof(head), head_fmt, ap);
	va_end(ap);
	if (hlen < 0)
		hlen = 0;
	if ((size_t)hlen >= sizeof(head))
		hlen = sizeof(head) - 1;
	size_t tlen = strlen(tail);
	struct msg *m = msg_new((size_t)hlen + ev->text_len + tlen + 1);
	memcpy(m->data, head, (size_t)hlen);
	memcpy(m->data + hlen, ev->text, ev->text_len);
	memcpy(m->data + hlen + ev->text_len, tail, tlen);
	m->data[hlen + ev->text_len + tlen] = '\n';
	m->len = (uint32_t)((size_t)hlen + ev->text_len + tlen + 1);
	return m;
}

struct msg *line_encode(const struct chat_event *ev)
{
	switch (ev->kind) {
	case CHAT_ENTERED:
		return msg_printf("> %s entered (%d online)\n", ev->nick, ev->online);
	case CHAT_LEFT: {
		char tail[32];
		snprintf(tail, sizeof(tail), " (%d online)", ev->online);
		if (ev->text_len)
			return line_with_text(ev, tail, "< %s left: ", ev->nick);
		return msg_printf("< %s left%s\n", ev->nick, tail);
	}
	case CHAT_JOINED:
		return msg_printf("> %s joined %s\n", ev->nick, ev->room);
	case CHAT_WENT:
		return msg_printf("< %s went to %s\n", ev->nick, ev->other);
	case CHAT_SAID:
		return line_with_text(ev, "", "[%s] ", ev->nick);
	case CHAT_ACTION:
		return line_with_text(ev, "", "* %s ", ev->nick);
	case CHAT_RENAMED:
		return msg_printf("* %s is now known as %s\n", ev->nick, ev->other);
	case CHAT_PRIVATE:
		return line_with_text(ev, "", "[%s -> %s] ", ev->nick, ev->other);
	case CHAT_NOTICE:
		return line_with_text(ev, "", "# ");
	case CHAT_CLOSING:
		return line_with_text(ev, ": disconnected", "! ");
	case CHAT_MISSED:
		return msg_printf("# %u more arrival%s and departure%s in %s not shown "
				  "(more than %d a second)\n", ev->count, ev->count == 1 ? "" : "s",
				  ev->count == 1 ? "" : "s", ev->room, ev->rate);
	}
	return msg_printf("# ?\n");
}
