/* A token bucket: RATE tokens a second, BURST at most. Kept as the tokens
 * taken and not yet earned back at stamp_ms, so that a zeroed bucket is
 * full whatever the policy, and one that had no limit is full when a
 * reload sets one. Pure: the caller passes the time, and locks. */
#ifndef CHATD_BASE_BUCKET_H
#define CHATD_BASE_BUCKET_H

#include <stdbool.h>
#include <stdint.h>

struct bucket {
	double used;
	uint64_t stamp_ms;
};

static inline double bucket_earned(const struct bucket *b, double rate, uint64_t now_ms)
{
	/* Threads read the clock at different moments: an earlier now is no
	 * time at all, never a negative one. */
	return now_ms > b->stamp_ms ? (double)(now_ms - b->stamp_ms) * rate / 1000.0 : 0.0;
}

/* Takes a token if there is one (after a reload lowered BURST, at once). */
static inline bool bucket_take(struct bucket *b, double rate, double burst, uint64_t now_ms)
{
	b->used -= bucket_earned(b, rate, now_ms);
	if (b->used < 0)
		b->used = 0;
	if (b->used > burst)
		b->used = burst;
	if (now_ms > b->stamp_ms)
		b->stamp_ms = now_ms;
	if (b->used + 1.0 > burst)
		return false;
	b->used += 1.0;
	return true;
}

/* A bucket of no limit (rate or burst 0) is always full. */
static inline bool bucket_full(const struct bucket *b, double rate, double burst, uint64_t now_ms)
{
	return rate <= 0 || burst <= 0 || b->used <= bucket_earned(b, rate, now_ms);
}

#endif
