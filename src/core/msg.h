/* A line (or a few lines) of server output, formatted once and shared by
 * every recipient's output queue through an atomic reference count. The
 * bytes never change after msg_finish(), so any thread may read them. */
#ifndef CHATD_MSG_H
#define CHATD_MSG_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "base/util.h"

struct msg {
	atomic_uint refs;
	uint32_t len;
	uint32_t cap;
	uint32_t flags;   /* MSG_* */
	char data[];
};

/* The bytes are WebSocket frames (web/websocket.h), not lines: a
 * WebSocket connection is sent them as they are. */
#define MSG_FRAMED 1u

/* A message with room for CAP bytes, one reference, len 0. */
struct msg *msg_new(size_t cap);

/* A message holding the formatted text (the caller adds any "\n"). */
struct msg *msg_printf(const char *fmt, ...) PRINTF_LIKE(1, 2);

struct msg *msg_vprintf(const char *fmt, va_list ap) PRINTF_LIKE(1, 0);

/* Appends to a message that is not shared yet; grows it as needed. */
struct msg *msg_append(struct msg *m, const char *data, size_t len);

/* Gives back the room a message that is not shared yet holds beyond its
 * length. */
struct msg *msg_trim(struct msg *m);

static inline struct msg *msg_ref(struct msg *m)
{
	atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
	return m;
}

/* Adds N references at once: one atomic operation for a whole fan-out. */
static inline void msg_ref_n(struct msg *m, unsigned n)
{
	if (n)
		atomic_fetch_add_explicit(&m->refs, n, memory_order_relaxed);
}

void msg_unref(struct msg *m);

/* Unreferences put off, for one thread: a worker writes the same lines to
 * many connections, and one atomic decrement per line per write pass,
 * instead of one per recipient, keeps the lines' cache lines from bouncing
 * between the workers' CPUs. The lines stay alive until the flush. */
struct msg_release {
	struct msg_release_slot {
		struct msg *msg;
		unsigned count;
	} *slots;               /* open addressing by pointer; cap a power of 2 */
	size_t cap;
	size_t *used;           /* indices of the slots in use, to flush and clear */
	size_t used_count;
};

/* Puts off one unreference of M. */
void msg_release_add(struct msg_release *r, struct msg *m);

/* Applies every unreference put off (freeing what nobody holds any more). */
void msg_release_flush(struct msg_release *r);

/* Flushes, and frees the table. */
void msg_release_clear(struct msg_release *r);

#endif
