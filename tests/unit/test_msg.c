/* Shared lines and their put-off unreferences (msg_release): every
 * unreference is applied once, whatever the table did meanwhile (grew,
 * or flushed early at its largest), and a line nobody holds is freed. */
#include "autoconf.h"

#include "src/core/msg.h"
#include "unit.h"

#define MANY 100000 /* distinct lines: more than the table holds before flushing early */

static unsigned refs(struct msg *m)
{
	return atomic_load(&m->refs);
}

int main(void)
{
	struct msg_release r = { 0 };
	struct msg **lines = xmalloc(MANY * sizeof(*lines));

	/* Each line: ours, plus one reference per "recipient" (i % 7 + 1 of
	 * them), put off one by one in the order a write pass would. */
	for (size_t i = 0; i < MANY; i++) {
		lines[i] = msg_printf("line %zu\n", i);
		msg_ref_n(lines[i], (unsigned)(i % 7 + 1));
	}
	for (unsigned round = 0; round < 7; round++)
		for (size_t i = 0; i < MANY; i++)
			if (round < i % 7 + 1)
				msg_release_add(&r, lines[i]);
	CHECK(r.cap <= 65536);
	msg_release_flush(&r);
	CHECK_INT(r.used_count, 0);
	size_t wrong = 0;
	for (size_t i = 0; i < MANY; i++)
		wrong += refs(lines[i]) != 1;
	CHECK_INT(wrong, 0);

	/* The last reference put off frees the line (ASan and valgrind would
	 * see a leak or a double free otherwise). */
	for (size_t i = 0; i < MANY; i++)
		msg_release_add(&r, lines[i]);
	msg_release_flush(&r);
	CHECK_INT(r.used_count, 0);

	/* Flushing an empty table, and clearing one, is harmless. */
	msg_release_flush(&r);
	struct msg *m = msg_printf("x\n");
	msg_release_add(&r, msg_ref(m));
	CHECK_INT(refs(m), 2);
	msg_release_clear(&r); /* flushes first */
	CHECK_INT(refs(m), 1);
	CHECK(r.slots == NULL && r.cap == 0);
	msg_unref(m);

	free(lines);
	return unit_finish("test_msg");
}
