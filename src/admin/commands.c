#include "autoconf.h"

#include "admin/commands.h"

#include <string.h>

#define READS true
#define CHANGES false

const struct admin_command admin_commands[ADMIN_COMMAND_COUNT] = {
	[ADMIN_STATUS] = { "status", "", "the server: uptime, people, listeners, store",
			   0, 0, false, READS, false },
	[ADMIN_WHO] = { "who", "[ROOM]", "everyone online, or in ROOM", 0, 1, false, READS, false },
	[ADMIN_ROOMS] = { "rooms", "", "every room, its size and topic", 0, 0, false, READS,
			  false },
	[ADMIN_KICK] = { "kick", "NICK [REASON]", "disconnect NICK, telling it REASON", 1, 2, true,
			 CHANGES, false },
	[ADMIN_BAN_ADD] = { "ban add", "MASK [DURATION] [REASON]",
			    "ban an address, network or nick mask (spam*)",
			    1, 3, true, CHANGES, false },
	[ADMIN_BAN_DEL] = { "ban del", "MASK", "lift a ban", 1, 1, false, CHANGES, false },
	[ADMIN_BAN_LIST] = { "ban list", "", "the bans in force", 0, 0, false, READS, false },
	[ADMIN_WALL] = { "wall", "MESSAGE", "tell everyone online MESSAGE", 1, 1, true, CHANGES,
			 false },
	[ADMIN_RELOAD] = { "reload", "",
			   "read the config again, or say its errors",
			   0, 0, false, CHANGES, false },
	[ADMIN_LOG_LEVEL] = { "log-level", "[LEVEL]",
			      "print or set the log level (until a reload)",
			      0, 1, false, CHANGES, false },
	[ADMIN_ACCOUNT_LIST] = { "account list", "", "the registered accounts", 0, 0, false, READS,
				 false },
	[ADMIN_ACCOUNT_ADD] = { "account add", "NAME",
				"register NAME (password from the terminal or stdin)",
				1, 1, false, CHANGES, true },
	[ADMIN_ACCOUNT_DEL] = { "account del", "NAME", "delete account NAME", 1, 1, false, CHANGES,
				false },
	[ADMIN_ACCOUNT_PASSWD] = { "account passwd", "NAME",
				   "set NAME's password (read as for account add)", 1, 1,
				   false, CHANGES, true },
	[ADMIN_HISTORY_PURGE] = { "history purge", "ROOM", "forget every line said in ROOM", 1, 1,
				  false, CHANGES, false },
	[ADMIN_MONITOR] = { "monitor", "",
			    "follow connections, kicks, bans and admins' acts",
			    0, 0, false, READS, false },
};

int admin_command_find(const char *const *words, size_t n, size_t *ret_used)
{
	for (size_t used = n >= 2 ? 2 : n; used >= 1; used--) {
		char name[64];
		size_t len = 0;
		for (size_t i = 0; i < used; i++) {
			size_t w = strlen(words[i]);
			if (len + w + 2 > sizeof(name))
				return -1;
			if (i)
				name[len++] = ' ';
			memcpy(name + len, words[i], w);
			len += w;
		}
		name[len] = '\0';
		for (int id = 0; id < ADMIN_COMMAND_COUNT; id++) {
			if (strcmp(admin_commands[id].name, name) == 0) {
				*ret_used = used;
				return id;
			}
		}
	}
	return -1;
}
