#include "autoconf.h"

#include "histogram.h"

/* Values under HIST_SUB ns get a bucket each; above, each power of two is
 * split into HIST_SUB equal buckets. */
static unsigned bucket_of(uint64_t v)
{
	if (v < HIST_SUB)
		return (unsigned)v;
	unsigned msb = 63 - (unsigned)__builtin_clzll(v);
	unsigned shift = msb - 6; /* HIST_SUB == 1 << 6 */
	unsigned b = (msb - 5) * HIST_SUB + (unsigned)((v >> shift) - HIST_SUB);
	return b < HIST_POWERS * HIST_SUB ? b : HIST_POWERS * HIST_SUB - 1;
}

/* The upper edge of bucket B. */
static uint64_t bucket_top(unsigned b)
{
	if (b < HIST_SUB)
		return b;
	unsigned power = b / HIST_SUB + 5, sub = b % HIST_SUB;
	unsigned shift = power - 6;
	return ((uint64_t)(HIST_SUB + sub + 1) << shift) - 1;
}

void histogram_add(struct histogram *h, uint64_t ns)
{
	h->buckets[bucket_of(ns)]++;
	h->count++;
	if (ns > h->max)
		h->max = ns;
}

void histogram_merge(struct histogram *into, const struct histogram *from)
{
	for (unsigned b = 0; b < HIST_POWERS * HIST_SUB; b++)
		into->buckets[b] += from->buckets[b];
	into->count += from->count;
	if (from->max > into->max)
		into->max = from->max;
}

uint64_t histogram_quantile(const struct histogram *h, double q)
{
	if (h->count == 0)
		return 0;
	uint64_t rank = (uint64_t)(q * (double)h->count);
	if (rank >= h->count)
		rank = h->count - 1;
	uint64_t seen = 0;
	for (unsigned b = 0; b < HIST_POWERS * HIST_SUB; b++) {
		seen += h->buckets[b];
		if (seen > rank) {
			uint64_t top = bucket_top(b);
			return top < h->max ? top : h->max;
		}
	}
	return h->max;
}
