/* Writes connections' output queues for one worker. With io_uring, one
 * system call carries the writes of a whole loop iteration (up to
 * WRITER_BATCH connections); without it (an old kernel, a seccomp filter,
 * io_uring switched off, io_uring_disabled), one writev per connection.
 * On this kind of machine a system call costs over a microsecond, several
 * times a small loopback send's own work, so a line to a room of 200 gets to
 * everyone in well under half the time. A writer belongs to one worker
 * thread and must be created on it. */
#ifndef CHATD_WRITER_H
#define CHATD_WRITER_H

#include <stdbool.h>

#include "net/conn.h"

struct writer;

/* A writer for the calling thread; never NULL. With WANT_URING (after
 * writer_uring_usable() said yes) it uses io_uring if it can still make a
 * ring, and WHY_NOT then says why not (or is NULL when it does). */
struct writer *writer_new(bool want_uring, const char **why_not);

void writer_free(struct writer *wr);

/* Whether this kernel lets us write with io_uring as the writer does (a
 * ring made, checked and closed again); if not, WHY_NOT says why. */
bool writer_uring_usable(const char **why_not);

/* "io_uring" or "writev". */
const char *writer_method(const struct writer *wr);

/* What happened to one connection's queue: 1 all written, 0 the socket is
 * full (wait for EPOLLOUT), or -errno. */
typedef void writer_done_fn(void *ctx, struct conn *c, int result);

/* Writes the queue of every connection on LIST, taking each off it (and
 * skipping those on their way to be closed), and tells DONE how each went,
 * after all of them were written. DONE may put connections on LIST again;
 * they are written in turn before this returns. The lines written are
 * unreferenced at the end, once each (see msg_release). */
void writer_flush(struct writer *wr, struct conn_list *list, struct out_cache *oc,
		  writer_done_fn *done, void *ctx);

#endif
