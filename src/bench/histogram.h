/* A latency histogram: fixed memory, about 1% resolution from a
 * microsecond to minutes, for percentiles of millions of samples. */
#ifndef BENCH_HISTOGRAM_H
#define BENCH_HISTOGRAM_H

#include <stdint.h>

#define HIST_SUB 64     /* buckets per power of two */
#define HIST_POWERS 40  /* 2^40 ns is about 18 minutes */

struct histogram {
	uint64_t buckets[HIST_POWERS * HIST_SUB];
	uint64_t count;
	uint64_t max;
};

void histogram_add(struct histogram *h, uint64_t ns);
/* Adds the samples of FROM to INTO. */
void histogram_merge(struct histogram *into, const struct histogram *from);
/* The value below which a fraction Q (0..1) of the samples fall, in ns. */
uint64_t histogram_quantile(const struct histogram *h, double q);

#endif
