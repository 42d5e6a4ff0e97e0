#include "autoconf.h"

#include "core/flood.h"

#define FORGIVE_DIVISOR 4.0

void flood_init(struct flood *f, int burst, uint64_t now_ms)
{
	*f = (struct flood){ .tokens = burst, .stamp_ms = now_ms };
}

enum flood_verdict flood_check(struct flood *f, int rate, int burst, uint64_t now_ms,
			       uint64_t stalled_ms)
{
	if (rate <= 0)
		return FLOOD_OK;

	/* Time refills the bucket at the rate and forgives strikes at a quarter
	 * of it: a client a little over the rate only loses lines, one that
	 * keeps sending more than 1.25 times the rate piles up strikes until
	 * it is cut off. */
	uint64_t elapsed = now_ms > f->stamp_ms ? now_ms - f->stamp_ms : 0;
	double earned = (double)elapsed * rate / 1000.0;
	if (now_ms > f->stamp_ms)
		f->stamp_ms = now_ms;
	/* Credit beyond the burst, from a stall, is kept until spent and
	 * never topped up; the rest of the bucket is capped by the burst in
	 * force (a reload may have lowered it). */
	f->extra += (double)stalled_ms * rate / 1000.0;
	f->tokens += earned;
	if (f->tokens > burst + f->extra)
		f->tokens = burst + f->extra;
	f->strikes -= earned / FORGIVE_DIVISOR;
	if (f->strikes < 0)
		f->strikes = 0;

	if (f->tokens >= 1.0) {
		f->tokens -= 1.0;
		f->extra = f->tokens > burst ? f->tokens - burst : 0;
		f->warned = false;
		return FLOOD_OK;
	}
	f->extra = 0;
	f->strikes += 1.0;
	if (f->strikes > burst)
		return FLOOD_KICK;
	if (f->warned)
		return FLOOD_DROP;
	f->warned = true;
	return FLOOD_WARN;
}
