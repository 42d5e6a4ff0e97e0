#include "autoconf.h"

#include "net/stats.h"

#include <string.h>

const char *const stats_reason_names[STATS_REASON_COUNT] = {
	[STATS_QUIT] = "quit",
	[STATS_CLOSED] = "closed",
	[STATS_RESET] = "reset",
	[STATS_ERROR] = "error",
	[STATS_SLOW] = "slow",
	[STATS_FLOOD] = "flood",
	[STATS_IDLE] = "idle",
	[STATS_PING] = "ping",
	[STATS_STALLED] = "stalled",
	[STATS_HANDSHAKE_TIMEOUT] = "handshake_timeout",
	[STATS_TLS] = "tls",
	[STATS_HTTP] = "http",
	[STATS_WEBSOCKET] = "websocket",
	[STATS_KICKED] = "kicked",
	[STATS_BANNED] = "banned",
	[STATS_SHUTDOWN] = "shutdown",
	[STATS_OTHER] = "other",
};

enum stats_reason stats_reason_of(const char *reason)
{
	for (int i = 0; reason && i < STATS_OTHER; i++)
		if (strcmp(reason, stats_reason_names[i]) == 0)
			return (enum stats_reason)i;
	return STATS_OTHER;
}

void stats_add_to(struct stats_sum *to, const struct worker_stats *from)
{
	for (int p = 0; p < PROTO_COUNT; p++) {
		for (int t = 0; t < 2; t++) {
			to->open[p][t] += stat_get(&from->open[p][t]);
			to->accepted[p][t] += stat_get(&from->accepted[p][t]);
		}
	}
	to->lines_in += stat_get(&from->lines_in);
	to->bytes_in += stat_get(&from->bytes_in);
	to->bytes_out += stat_get(&from->bytes_out);
	to->deliveries += stat_get(&from->deliveries);
	to->messages += stat_get(&from->messages);
	to->tls_handshakes += stat_get(&from->tls_handshakes);
	to->tls_failures += stat_get(&from->tls_failures);
	to->banned += stat_get(&from->banned);
	for (int r = 0; r < STATS_REASON_COUNT; r++)
		to->disconnects[r] += stat_get(&from->disconnects[r]);
}
