/* chatd's own line protocol (docs/protocol.md). */
#ifndef CHATD_PROTO_LINE_H
#define CHATD_PROTO_LINE_H

#include "core/event.h"

/* EV as a line client reads it ("[alice] hi\n", "> bob entered (2 online)\n"). */
struct msg *line_encode(const struct chat_event *ev);

#endif
