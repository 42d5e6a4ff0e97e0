/* The encoders of every protocol, behind the one call the core makes
 * (core/event.h). */
#include "autoconf.h"

#include "core/event.h"
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
