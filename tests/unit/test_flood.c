/* Flood control, driven by a clock the test owns. */
#include "autoconf.h"

#include "src/core/flood.h"
#include "unit.h"

/* Sends lines every interval_ms for duration_ms; counts the verdicts. */
static void run(int rate, int burst, unsigned interval_ms, unsigned duration_ms, int counts[4],
		uint64_t *kicked_at)
{
	struct flood f;
	uint64_t t = 1000;

	flood_init(&f, burst, t);
	for (int i = 0; i < 4; i++)
		counts[i] = 0;
	*kicked_at = 0;
	for (unsigned elapsed = 0; elapsed <= duration_ms; elapsed += interval_ms) {
		enum flood_verdict v = flood_check(&f, rate, burst, t + elapsed, 0);
		counts[v]++;
		if (v == FLOOD_KICK) {
			*kicked_at = elapsed;
			return;
		}
	}
}

int main(void)
{
	int c[4];
	uint64_t kicked;
	struct flood f;

	/* No limit. */
	run(0, 1, 1, 1000, c, &kicked);
	CHECK_INT(c[FLOOD_OK], 1001);

	/* A burst is taken whole, the next line is dropped with one warning. */
	flood_init(&f, 5, 0);
	for (int i = 0; i < 5; i++)
		CHECK_INT(flood_check(&f, 10, 5, 0, 0), FLOOD_OK);
	CHECK_INT(flood_check(&f, 10, 5, 0, 0), FLOOD_WARN);
	CHECK_INT(flood_check(&f, 10, 5, 0, 0), FLOOD_DROP);
	/* A tenth of a second later (rate 10) one more line is fine, and the
	 * warning is re-armed. */
	CHECK_INT(flood_check(&f, 10, 5, 100, 0), FLOOD_OK);
	CHECK_INT(flood_check(&f, 10, 5, 100, 0), FLOOD_WARN);

	/* At the rate, forever fine. */
	run(10, 20, 100, 600000, c, &kicked);
	CHECK_INT(kicked, 0);
	CHECK_INT(c[FLOOD_WARN] + c[FLOOD_DROP], 0);

	/* A little over the rate (1.2x): lines dropped, never cut off. */
	run(10, 20, 83, 600000, c, &kicked);
	CHECK_INT(kicked, 0);
	CHECK(c[FLOOD_WARN] > 0);

	/* Twice the rate: cut off within a few seconds. */
	run(10, 20, 50, 60000, c, &kicked);
	CHECK(kicked > 0 && kicked < 10000);

	/* A blast: cut off after burst accepted and burst + 1 dropped. */
	run(10, 20, 0 + 1, 1000, c, &kicked);
	CHECK(kicked > 0);
	CHECK(c[FLOOD_OK] >= 20 && c[FLOOD_OK] <= 22);

	/* Time running backwards (it is monotonic, but be safe) is no gift. */
	flood_init(&f, 1, 1000);
	CHECK_INT(flood_check(&f, 1, 1, 1000, 0), FLOOD_OK);
	CHECK(flood_check(&f, 1, 1, 1000, 0) != FLOOD_OK);
	CHECK(flood_check(&f, 1, 1, 500, 0) != FLOOD_OK);

	/* A server stall of 5 s while the client sent 8 lines a second (rate
	 * 10, burst 20): the 40 lines are read at once when the server goes on,
	 * and all are taken; the credit is not kept as a lasting bonus beyond
	 * what the stall earned. */
	flood_init(&f, 20, 0);
	for (int i = 0; i < 40; i++)
		CHECK_INT(flood_check(&f, 10, 20, 5000, 5000), FLOOD_OK);
	for (int i = 0; i < 30; i++)
		CHECK_INT(flood_check(&f, 10, 20, 5000, 0), FLOOD_OK);
	CHECK_INT(flood_check(&f, 10, 20, 5000, 0), FLOOD_WARN);
	/* Without the stall's credit, the same pile is over the burst. */
	flood_init(&f, 20, 0);
	int ok = 0;
	for (int i = 0; i < 40; i++)
		ok += flood_check(&f, 10, 20, 5000, 0) == FLOOD_OK;
	CHECK_INT(ok, 20);
	/* Credit left from a stall is not topped up by later time. */
	flood_init(&f, 20, 0);
	CHECK_INT(flood_check(&f, 10, 20, 5000, 5000), FLOOD_OK); /* 69 left */
	CHECK_INT(flood_check(&f, 10, 20, 8000, 0), FLOOD_OK);    /* 68 left, not 98 */
	ok = 0;
	for (int i = 0; i < 80; i++)
		ok += flood_check(&f, 10, 20, 8000, 0) == FLOOD_OK;
	CHECK_INT(ok, 68);

	/* A reload that lowers the burst applies at once. */
	flood_init(&f, 20, 0);
	CHECK_INT(flood_check(&f, 10, 5, 0, 0), FLOOD_OK);
	ok = 1;
	for (int i = 0; i < 10; i++)
		ok += flood_check(&f, 10, 5, 0, 0) == FLOOD_OK;
	CHECK_INT(ok, 5);

	return unit_finish("test_flood");
}
