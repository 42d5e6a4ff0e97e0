/* Bans: masks, durations, matching, and the lists made from lists. */
#include "autoconf.h"

#include <stdlib.h>

#include "src/admin/commands.h"
#include "src/core/bans.h"
#include "unit.h"

static struct ban make(const char *mask, int64_t expires, const char *reason)
{
	struct ban b = { .expires = expires };
	const char *err = NULL;
	CHECK(ban_parse_mask(mask, &b, &err));
	snprintf(b.reason, sizeof(b.reason), "%s", reason);
	return b;
}

static const uint8_t *v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
	static uint8_t addr[16];
	const uint8_t x[16] = { [10] = 0xff, [11] = 0xff, a, b, c, d };
	memcpy(addr, x, 16);
	return addr;
}

int main(void)
{
	struct ban b;
	const char *err;

	CHECK(ban_parse_mask("192.0.2.7", &b, &err) && b.kind == BAN_ADDRESS);
	CHECK(ban_parse_mask("2001:db8::/32", &b, &err) && b.kind == BAN_ADDRESS);
	CHECK_STR(b.mask, "2001:db8::/32");
	CHECK(ban_parse_mask("Spam*", &b, &err) && b.kind == BAN_NICK);
	CHECK_STR(b.mask, "spam*");
	CHECK(ban_parse_mask("t?oll", &b, &err) && b.kind == BAN_NICK);
	CHECK(!ban_parse_mask("*", &b, &err));
	CHECK(!ban_parse_mask("?*?", &b, &err));
	CHECK(!ban_parse_mask("", &b, &err));
	CHECK(!ban_parse_mask("a b", &b, &err));
	CHECK(!ban_parse_mask("nick!user@host", &b, &err));
	CHECK(!ban_parse_mask("10.0.0.0/33", &b, &err)); /* not a network, nor a nick */

	int64_t d;
	CHECK(ban_parse_duration("90s", &d) && d == 90);
	CHECK(ban_parse_duration("30m", &d) && d == 1800);
	CHECK(ban_parse_duration("12h", &d) && d == 43200);
	CHECK(ban_parse_duration("7d", &d) && d == 7 * 86400);
	CHECK(ban_parse_duration("2w", &d) && d == 14 * 86400);
	CHECK(ban_parse_duration("3600", &d) && d == 3600);
	CHECK(!ban_parse_duration("0", &d));
	CHECK(!ban_parse_duration("h", &d));
	CHECK(!ban_parse_duration("spam", &d));
	CHECK(!ban_parse_duration("-5m", &d));
	CHECK(!ban_parse_duration("99999999999d", &d));

	struct ban list[3] = { make("198.51.100.0/24", 0, "net"), make("troll*", 0, ""),
			       make("192.0.2.9", 100, "for a while") };
	struct ban_list *l = ban_list_of(list, 3);
	CHECK_INT(l->count, 3);
	const struct ban *hit = ban_list_address(l, v4(198, 51, 100, 77), 50);
	CHECK(hit && strcmp(hit->reason, "net") == 0);
	CHECK(ban_list_address(l, v4(198, 51, 101, 1), 50) == NULL);
	CHECK(ban_list_address(l, v4(192, 0, 2, 9), 99) != NULL);
	CHECK(ban_list_address(l, v4(192, 0, 2, 9), 100) == NULL); /* expired */
	CHECK(ban_list_nick(l, "TrollKing", 0) != NULL);
	CHECK(ban_list_nick(l, "atroll", 0) == NULL);
	CHECK(ban_list_address(NULL, v4(1, 2, 3, 4), 0) == NULL);

	uint8_t peer[16];
	CHECK(ban_peer_address("198.51.100.3:5000", peer) && ban_list_address(l, peer, 0));
	CHECK(ban_peer_address("[2001:db8::1]:5000", peer));
	CHECK(ban_peer_address("203.0.113.7", peer));
	CHECK(!ban_peer_address("unix", peer));

	/* Replacing a ban of the same mask; removing; expiring. */
	struct ban again = make("TROLL*", 0, "again");
	struct ban_list *l2 = ban_list_with(l, &again);
	CHECK_INT(l2->count, 3);
	CHECK_STR(ban_list_nick(l2, "trolly", 0)->reason, "again");
	struct ban kept = make("Troll*", 0, ""); /* as chatctl ban del Troll* */
	struct ban_list *l3 = ban_list_without(l2, kept.mask);
	CHECK(l3 && l3->count == 2 && !ban_list_nick(l3, "trolly", 0));
	CHECK(ban_list_without(l3, "nobody*") == NULL);
	struct ban_list *l4 = ban_list_expired(l3, 100);
	CHECK(l4 && l4->count == 1);
	CHECK(ban_list_expired(l4, 1000) == NULL);

	char text[300];
	ban_message(&list[0], text, sizeof(text));
	CHECK_STR(text, "banned: net");
	ban_message(&list[1], text, sizeof(text));
	CHECK_STR(text, "banned");

	/* The command table: one entry per id, found by its words. */
	for (int id = 0; id < ADMIN_COMMAND_COUNT; id++) {
		const char *words[2] = { admin_commands[id].name, NULL };
		char name[64];
		snprintf(name, sizeof(name), "%s", admin_commands[id].name);
		char *space = strchr(name, ' ');
		size_t used = 0, n = 1;
		if (space) {
			*space = '\0';
			words[0] = name;
			words[1] = space + 1;
			n = 2;
		}
		CHECK_INT(admin_command_find(words, n, &used), id);
		CHECK_INT(used, n);
		CHECK(admin_commands[id].summary && admin_commands[id].min_args <= admin_commands[id].max_args);
	}
	const char *ban_only[1] = { "ban" };
	size_t used;
	CHECK_INT(admin_command_find(ban_only, 1, &used), -1);

	ban_list_unref(l);
	ban_list_unref(l2);
	ban_list_unref(l3);
	ban_list_unref(l4);
	return unit_finish("test_bans");
}
