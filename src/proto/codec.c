/* Each call goes to the session's protocol. */
#include "autoconf.h"

#include "proto/codec.h"

#include "base/util.h"
#include "proto/irc.h"
#include "proto/line.h"
#include "web/http.h"
#include "web/websocket.h"

struct msg *event_encode(enum format format, const struct chat_event *ev)
{
	if (format == FORMAT_LINE)
		return line_encode(ev);
	enum irc_framing framing = format_framing(format);
	struct msg *m = irc_encode(format_irc(format_tags(format), FRAMING_STREAM), ev);
	if (framing == FRAMING_STREAM)
		return m;
	struct msg *framed = ws_frame_lines(m, framing == FRAMING_WS_BINARY);
	msg_unref(m);
	return framed;
}

void codec_open(struct worker *w, struct session *s)
{
	switch (s->proto) {
	case PROTO_IRC:
		irc_open(w, s);
		return;
	case PROTO_LINE:
	case PROTO_WEB: /* cannot be: it is IRC once in the chat */
	case PROTO_COUNT:
		break;
	}
	line_open(w, s);
}

void codec_free(struct session *s)
{
	if (s->proto == PROTO_IRC)
		irc_free(s);
}

size_t codec_max_line(const struct config *cfg, const struct session *s)
{
	if (s->proto == PROTO_IRC)
		return IRC_INPUT_MAX;
	return cfg->max_line;
}

bool codec_line(struct worker *w, struct session *s, const char *line, size_t len)
{
	if (s->proto == PROTO_IRC)
		return irc_input(w, s, line, len);
	return line_input(w, s, line, len);
}

bool codec_too_long(struct worker *w, struct session *s)
{
	if (s->proto == PROTO_IRC)
		return irc_too_long(w, s);
	return line_too_long(w, s);
}

bool codec_idle(struct worker *w, struct session *s, uint64_t idle_ms)
{
	if (s->proto == PROTO_IRC)
		return irc_idle(w, s, idle_ms);
	return true;
}

void codec_history(struct worker *w, struct session *s, const struct store_query *q)
{
	if (s->proto == PROTO_IRC)
		irc_history(w, s, q);
	else
		line_history(w, s, q);
}

void codec_account(struct worker *w, struct session *s, const struct account_request *r)
{
	if (s->proto == PROTO_IRC)
		irc_account(w, s, r);
	else
		line_account(w, s, r);
}

struct msg *codec_refusal(enum proto proto, const char *peer, const char *why)
{
	if (proto == PROTO_WEB)
		return http_error(503, why, false, true);
	if (proto == PROTO_IRC) {
		char host[64];
		peer_host(peer, host, sizeof(host));
		return msg_printf("ERROR :Closing Link: %s (%s)\r\n", host, why);
	}
	return msg_printf("! %s\n", why);
}

struct msg *codec_motd(char *const *lines, size_t count)
{
	return line_motd(lines, count);
}
