/* libFuzzer target: a client's byte stream through the line framer, the
 * command parser and the text cleaner, exactly as a worker runs them. The
 * first byte picks where the stream is cut between two reads. */
#include "autoconf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/framer.h"
#include "proto/protocol.h"
#include "base/text.h"

#define MAX_LINE 256

static bool on_line(void *ctx, const char *line, size_t len)
{
	struct command cmd;
	char *clean = malloc(TEXT_CLEAN_MAX(len) + 1);

	if (len > MAX_LINE)
		abort(); /* the framer let an over-long line through */
	protocol_parse(line, len, &cmd);
	if (cmd.arg && (cmd.arg < line || cmd.arg + cmd.arg_len > line + len))
		abort();
	if (cmd.text && (cmd.text < line || cmd.text + cmd.text_len > line + len))
		abort();
	if (cmd.arg)
		text_is_valid_name(cmd.arg, cmd.arg_len);
	size_t n = text_clean(clean, cmd.text ? cmd.text : line, cmd.text ? cmd.text_len : len);
	/* What comes out is clean: no control characters but TAB, and cleaning
	 * it again changes nothing. */
	for (size_t i = 0; i < n; i++)
		if (((unsigned char)clean[i] < 0x20 && clean[i] != '\t') || clean[i] == 0x7f)
			abort();
	char *again = malloc(TEXT_CLEAN_MAX(n) + 1);
	if (text_clean(again, clean, n) != n || memcmp(again, clean, n) != 0)
		abort();
	free(again);
	free(clean);
	(void)ctx;
	return true;
}

static bool on_too_long(void *ctx)
{
	(void)ctx;
	return true;
}

static const struct framer_handler handler = { .line = on_line, .too_long = on_too_long };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct framer f = { 0 };

	if (size == 0)
		return 0;
	size_t cut = data[0] % (size + 1);
	const char *bytes = (const char *)data + 1;
	size--;
	if (cut > size)
		cut = size;
	framer_feed(&f, bytes, cut, MAX_LINE, &handler, NULL);
	framer_feed(&f, bytes + cut, size - cut, MAX_LINE, &handler, NULL);
	if (f.partial_cap > MAX_LINE + 1)
		abort(); /* memory for a partial line must stay bounded */
	framer_reset(&f);
	return 0;
}
