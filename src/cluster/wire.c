#include "autoconf.h"

#include "cluster/wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

static void put(struct wire_buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = b->cap * 2 > b->len + n ? b->cap * 2 : b->len + n + 256;
		b->data = xrealloc(b->data, b->cap);
	}
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
}

static void put_u64(struct wire_buf *b, uint64_t v)
{
	uint8_t x[8];
	for (int i = 0; i < 8; i++)
		x[i] = (uint8_t)(v >> (56 - 8 * i));
	put(b, x, sizeof(x));
}

static void put_name(struct wire_buf *b, const char *s)
{
	size_t n = strlen(s);
	uint8_t len = (uint8_t)(n > 255 ? 255 : n);
	put(b, &len, 1);
	put(b, s, len);
}

static void put_u32(struct wire_buf *b, size_t n)
{
	uint8_t len[4] = { (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n };
	put(b, len, sizeof(len));
}

void wire_encode(struct wire_buf *b, const struct wire_record *r)
{
	uint8_t head[4] = { WIRE_VERSION, (uint8_t)r->kind, (uint8_t)(r->flags & WIRE_FLAGS),
			    (uint8_t)r->change };
	put(b, head, sizeof(head));
	put_u64(b, r->origin);
	put_u64(b, r->session);
	put_u64(b, r->id);
	put_u64(b, (uint64_t)r->time_ms);
	put_name(b, r->node);
	put_name(b, r->room);
	put_name(b, r->nick);
	put_name(b, r->user);
	put_name(b, r->host);
	put_name(b, r->other);
	put_name(b, r->realname);
	put_name(b, r->account);
	put_name(b, r->actor);
	size_t rooms = strlen(r->rooms);
	put_u32(b, rooms);
	put(b, r->rooms, rooms);
	size_t n = r->text_len > WIRE_TEXT_MAX ? WIRE_TEXT_MAX : r->text_len;
	put_u32(b, n);
	put(b, r->text, n);
}

void wire_buf_free(struct wire_buf *b)
{
	free(b->data);
	*b = (struct wire_buf){ 0 };
}

struct reader {
	const uint8_t *p, *end;
	bool bad;
};

static uint64_t get_u64(struct reader *rd)
{
	if (rd->end - rd->p < 8) {
		rd->bad = true;
		return 0;
	}
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | rd->p[i];
	rd->p += 8;
	return v;
}

/* A name of at most SIZE - 1 bytes, without NUL, into RET. */
static void get_name(struct reader *rd, char *ret, size_t size, bool may_be_empty)
{
	if (rd->bad || rd->p >= rd->end) {
		rd->bad = true;
		return;
	}
	size_t n = *rd->p++;
	if (n >= size || (size_t)(rd->end - rd->p) < n || (n == 0 && !may_be_empty) ||
	    memchr(rd->p, 0, n)) {
		rd->bad = true;
		return;
	}
	memcpy(ret, rd->p, n);
	ret[n] = 0;
	rd->p += n;
}

static size_t get_u32(struct reader *rd, size_t max)
{
	if (rd->bad || rd->end - rd->p < 4) {
		rd->bad = true;
		return 0;
	}
	size_t n = (size_t)rd->p[0] << 24 | (size_t)rd->p[1] << 16 | (size_t)rd->p[2] << 8 | rd->p[3];
	rd->p += 4;
	if (n > max || (size_t)(rd->end - rd->p) < n) {
		rd->bad = true;
		return 0;
	}
	return n;
}

int wire_decode(const uint8_t *data, size_t len, size_t *off, struct wire_record *ret)
{
	if (*off >= len)
		return 0;
	struct reader rd = { .p = data + *off, .end = data + len };
	if (rd.end - rd.p < 4 || (rd.p[0] != WIRE_VERSION && rd.p[0] != 1) || rd.p[1] == 0 || rd.p[1] > WIRE_KIND_MAX ||
	    (rd.p[2] & ~WIRE_FLAGS) || rd.p[3] > REMOTE_CHANGE_MAX)
		return -EBADMSG;
	ret->kind = (enum wire_kind)rd.p[1];
	ret->flags = rd.p[2];
	ret->change = rd.p[3];
	if (ret->kind == WIRE_ROOM &&
	    (rd.p[0] == 1 || ret->change == 0 || ret->change > WIRE_ROOM_CHANGE_MAX))
		return -EBADMSG; /* none in version 1 */
	rd.p += 4;
	ret->origin = get_u64(&rd);
	ret->session = get_u64(&rd);
	ret->id = get_u64(&rd);
	ret->time_ms = (int64_t)get_u64(&rd);
	get_name(&rd, ret->node, sizeof(ret->node), true);
	get_name(&rd, ret->room, sizeof(ret->room), true);
	get_name(&rd, ret->nick, sizeof(ret->nick), true);
	get_name(&rd, ret->user, sizeof(ret->user), true);
	get_name(&rd, ret->host, sizeof(ret->host), true);
	get_name(&rd, ret->other, sizeof(ret->other), true);
	get_name(&rd, ret->realname, sizeof(ret->realname), true);
	get_name(&rd, ret->account, sizeof(ret->account), true);
	get_name(&rd, ret->actor, sizeof(ret->actor), true);
	size_t rooms = get_u32(&rd, WIRE_ROOMS_MAX);
	if (!rd.bad) {
		memcpy(ret->rooms, rd.p, rooms);
		ret->rooms[rooms] = 0;
		rd.p += rooms;
		if (memchr(ret->rooms, 0, rooms))
			rd.bad = true;
	}
	size_t n = get_u32(&rd, WIRE_TEXT_MAX);
	if (rd.bad)
		return -EBADMSG;
	ret->text = (const char *)rd.p;
	ret->text_len = n;
	rd.p += n;
	*off = (size_t)(rd.p - data);
	return 1;
}
