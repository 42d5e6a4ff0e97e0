/* The cluster's wire format: records round-trip, several to a message, and
 * anything short, long or of another version is refused whole. */
#include "autoconf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "src/cluster/wire.h"
#include "unit.h"

static struct wire_record sample(void)
{
	struct wire_record r = { .kind = WIRE_SAID, .flags = WIRE_NOTICE | WIRE_FORMATTING,
				 .origin = 0x0123456789abcdefULL, .session = 42, .id = 7,
				 .time_ms = 1760000000123LL, .text = "h\xc3\xa9llo", .text_len = 6 };
	snprintf(r.node, sizeof(r.node), "chat1");
	snprintf(r.room, sizeof(r.room), "Lobby");
	snprintf(r.nick, sizeof(r.nick), "alice");
	snprintf(r.user, sizeof(r.user), "al");
	snprintf(r.host, sizeof(r.host), "192.0.2.1");
	return r;
}

int main(void)
{
	struct wire_buf b = { 0 };
	struct wire_record in = sample(), out;
	wire_encode(&b, &in);
	struct wire_record member = sample();
	member.kind = WIRE_MEMBER;
	member.change = REMOTE_PARTED;
	member.flags = 0;
	snprintf(member.rooms, sizeof(member.rooms), "lobby tea");
	snprintf(member.other, sizeof(member.other), "bob");
	snprintf(member.account, sizeof(member.account), "alice");
	snprintf(member.actor, sizeof(member.actor), "root (uid 0, pid 1)");
	member.text = "bye";
	member.text_len = 3;
	wire_encode(&b, &member);
	size_t one = 0;

	/* Both back, in order, whole. */
	size_t off = 0;
	CHECK(wire_decode(b.data, b.len, &off, &out) == 1);
	one = off;
	CHECK(out.kind == WIRE_SAID && out.flags == (WIRE_NOTICE | WIRE_FORMATTING));
	CHECK(out.origin == in.origin && out.session == 42 && out.id == 7);
	CHECK(out.time_ms == in.time_ms);
	CHECK_STR(out.node, "chat1");
	CHECK_STR(out.room, "Lobby");
	CHECK_STR(out.nick, "alice");
	CHECK_STR(out.user, "al");
	CHECK_STR(out.host, "192.0.2.1");
	CHECK(out.text_len == 6 && memcmp(out.text, "h\xc3\xa9llo", 6) == 0);
	CHECK(wire_decode(b.data, b.len, &off, &out) == 1);
	CHECK(out.kind == WIRE_MEMBER && out.change == REMOTE_PARTED);
	CHECK_STR(out.rooms, "lobby tea");
	CHECK_STR(out.other, "bob");
	CHECK_STR(out.account, "alice");
	CHECK_STR(out.actor, "root (uid 0, pid 1)");
	CHECK(out.text_len == 3 && memcmp(out.text, "bye", 3) == 0);
	CHECK(wire_decode(b.data, b.len, &off, &out) == 0);
	CHECK(off == b.len);

	/* Cut anywhere: refused, the offset where it was. */
	for (size_t cut = 1; cut < one; cut++) {
		off = 0;
		CHECK(wire_decode(b.data, cut, &off, &out) == -EBADMSG);
		CHECK(off == 0);
	}
	/* Version 1's records (before WIRE_ROOM) are read as ever. */
	uint8_t *v1 = malloc(b.len);
	memcpy(v1, b.data, b.len);
	v1[0] = 1;
	off = 0;
	CHECK(wire_decode(v1, b.len, &off, &out) == 1 && out.kind == WIRE_SAID);
	free(v1);
	/* Another version, an unknown kind, unknown flags, an unknown change. */
	for (size_t at = 0; at < 4; at++) {
		uint8_t *copy = malloc(b.len);
		memcpy(copy, b.data, b.len);
		copy[at] = 0xee;
		off = 0;
		CHECK(wire_decode(copy, b.len, &off, &out) == -EBADMSG);
		free(copy);
	}
	/* A nick is never empty; a name never holds a NUL. */
	struct wire_record bad = sample();
	bad.nick[0] = 0;
	struct wire_buf b2 = { 0 };
	wire_encode(&b2, &bad);
	off = 0;
	CHECK(wire_decode(b2.data, b2.len, &off, &out) == 1); /* empty nicks decode: HELLO has none */
	wire_buf_free(&b2);
	struct wire_record nul = sample();
	wire_encode(&b2, &nul);
	size_t nick_at = 4 + 32 + 1 + strlen("chat1") + 1 + strlen("Lobby") + 1;
	b2.data[nick_at + 1] = 0;
	off = 0;
	CHECK(wire_decode(b2.data, b2.len, &off, &out) == -EBADMSG);
	wire_buf_free(&b2);

	/* A text over WIRE_TEXT_MAX is cut when encoded. */
	char *big = malloc(WIRE_TEXT_MAX + 10);
	memset(big, 'x', WIRE_TEXT_MAX + 10);
	struct wire_record long_text = sample();
	long_text.text = big;
	long_text.text_len = WIRE_TEXT_MAX + 10;
	wire_encode(&b2, &long_text);
	off = 0;
	CHECK(wire_decode(b2.data, b2.len, &off, &out) == 1 && out.text_len == WIRE_TEXT_MAX);
	wire_buf_free(&b2);
	free(big);

	/* A room's change round-trips; one that says no known change is
	 * refused. */
	struct wire_record room = sample();
	room.kind = WIRE_ROOM;
	room.change = WIRE_STATE;
	snprintf(room.rooms, sizeof(room.rooms), "tn");
	snprintf(room.other, sizeof(room.other), "bob");
	wire_encode(&b2, &room);
	off = 0;
	CHECK(wire_decode(b2.data, b2.len, &off, &out) == 1 && out.kind == WIRE_ROOM &&
	      out.change == WIRE_STATE);
	CHECK_STR(out.rooms, "tn");
	CHECK_STR(out.other, "bob");
	for (unsigned change = 0; change <= WIRE_ROOM_CHANGE_MAX + 1; change += WIRE_ROOM_CHANGE_MAX + 1) {
		b2.data[3] = (uint8_t)change;
		off = 0;
		CHECK(wire_decode(b2.data, b2.len, &off, &out) == -EBADMSG);
	}
	wire_buf_free(&b2);
	wire_buf_free(&b);
	return unit_finish("test_wire");
}
