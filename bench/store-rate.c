/* The store thread's sustained rate of writing history lines, for
 * docs/benchmarks.md: chatd's own store (src/store/store.c) on a fresh file,
 * fed as workers feed it (batches of lines from a few rooms), timed from
 * the first line handed over until the last is committed.
 *
 *   store-rate FILE LINES ROOMS BATCH
 *
 * prints "RESULT lines=N seconds=S rate=R written=W dropped=D". Built,
 * never installed. */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: store-rate FILE LINES ROOMS BATCH\n");
		return 2;
	}
	const char *path = argv[1];
	long lines = atol(argv[2]), rooms = atol(argv[3]), batch = atol(argv[4]);
	if (lines <= 0 || rooms <= 0 || batch <= 0) {
		fprintf(stderr, "store-rate: LINES, ROOMS and BATCH must be positive\n");
		return 2;
	}
	char *err = NULL;
	struct store *st = store_open(path, &err);
	if (!st) {
		fprintf(stderr, "store-rate: %s\n", err);
		return 1;
	}
	/* chatd's defaults. */
	struct store_policy policy = { .keep = 1000, .max_age_ms = 30LL * 86400 * 1000,
				       .commit_interval_ms = 100 };
	if (store_start(st, &policy) < 0) {
		fprintf(stderr, "store-rate: cannot start the store thread\n");
		return 1;
	}
	/* A chat line of a typical length. */
	static const char text[] = "the quick brown fox jumps over the lazy dog, and then some more";
	struct hline **b = calloc((size_t)batch, sizeof(*b));
	int64_t *next_no = calloc((size_t)rooms, sizeof(*next_no));
	if (!b || !next_no)
		return 1;
	struct timespec wall;
	clock_gettime(CLOCK_REALTIME, &wall);
	int64_t ms = (int64_t)wall.tv_sec * 1000 + wall.tv_nsec / 1000000;
	double t0 = now_s();
	for (long i = 0; i < lines;) {
		long n = 0;
		for (; n < batch && i < lines; n++, i++) {
			long r = i % rooms;
			char room[32];
			snprintf(room, sizeof(room), "room%ld", r);
			b[n] = hline_new(room, ++next_no[r], ms, (uint64_t)i + 1, HLINE_SAID, "alice",
					 "line", "127.0.0.1", text, sizeof(text) - 1, false);
		}
		store_add(st, b, (size_t)n);
	}
	/* Until every line is written or lost. */
	struct store_stats stats;
	for (;;) {
		store_get_stats(st, &stats);
		if (stats.written + stats.dropped >= (uint64_t)lines)
			break;
		usleep(1000);
	}
	double seconds = now_s() - t0;
	store_close(st);
	printf("RESULT lines=%ld seconds=%.4f rate=%.0f written=%llu dropped=%llu\n", lines, seconds,
	       (double)lines / seconds, (unsigned long long)stats.written,
	       (unsigned long long)stats.dropped);
	free(b);
	free(next_no);
	return stats.dropped ? 3 : 0;
}
