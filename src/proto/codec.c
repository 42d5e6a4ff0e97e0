/* Each call goes to the session's protocol. */
#include "autoconf.h"

#include "proto/codec.h"

#include "proto/line.h"

struct msg *event_encode(enum proto proto, const struct chat_event *ev)
{
	switch (proto) {
	case PROTO_LINE:
	case PROTO_COUNT:
		break;
	}
	return line_encode(ev);
}

void codec_open(struct worker *w, struct session *s)
{
	line_open(w, s);
}

bool codec_line(struct worker *w, struct session *s, const char *line, size_t len)
{
	return line_input(w, s, line, len);
}

bool codec_too_long(struct worker *w, struct session *s)
{
	return line_too_long(w, s);
}

struct msg *codec_motd(enum proto proto, char *const *lines, size_t count)
{
	(void)proto;
	return line_motd(lines, count);
}
