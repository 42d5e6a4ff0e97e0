/* Flood control for one client: a token bucket (rate lines per second, up
 * to burst at once) and a verdict on sustained flooding. Pure: the caller
 * passes the time, so it is tested without waiting. */
#ifndef CHATD_FLOOD_H
#define CHATD_FLOOD_H

#include <stdbool.h>
#include <stdint.h>

struct flood {
	double tokens;     /* lines the client may send now */
	double extra;      /* of which beyond the burst: a stall's credit */
	double strikes;    /* dropped lines, forgiven at the rate */
	uint64_t stamp_ms; /* when tokens and strikes were last brought up to date */
	bool warned;       /* told "slow down" since the last accepted line */
};

enum flood_verdict {
	FLOOD_OK,        /* take the line */
	FLOOD_WARN,      /* drop it, and tell the client to slow down */
	FLOOD_DROP,      /* drop it silently: already told */
	FLOOD_KICK,      /* dropped more than burst lines without easing off */
};

void flood_init(struct flood *f, int burst, uint64_t now_ms);

/* One line arrives. RATE 0 means no limit. STALLED_MS is how long, since
 * the bucket was last brought up to date (f->stamp_ms), the server was not
 * reading its clients (a stall: SIGSTOP, a slow disk): lines handled now
 * may have arrived all through that time, so that time's worth of lines is
 * allowed on top of the burst, kept until spent and never topped up. The
 * server's stall is not charged to the client. */
enum flood_verdict flood_check(struct flood *f, int rate, int burst, uint64_t now_ms,
			       uint64_t stalled_ms);

#endif
