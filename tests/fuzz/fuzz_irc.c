/* libFuzzer target: an IRC client's byte stream through the framer and the
 * IRC message parser, then every parameter through the comma-list splitter
 * and the text cleaner, as the IRC codec runs them. The first byte picks
 * where the stream is cut between two reads. */
#include "autoconf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/text.h"
#include "proto/framer.h"
#include "proto/irc_message.h"

#define MAX_LINE 1024

static void inside(const char *p, size_t len, const char *line, size_t line_len)
{
	if (p < line || p + len > line + line_len)
		abort();
}

static bool on_line(void *ctx, const char *line, size_t len)
{
	struct irc_message m;

	(void)ctx;
	if (len > MAX_LINE)
		abort();
	if (!irc_parse(line, len, &m))
		return true;
	if (m.count < 0 || m.count > IRC_MAX_PARAMS || strlen(m.command) >= sizeof(m.command) ||
	    m.command[0] == '\0')
		abort();
	for (int i = 0; i < m.count; i++) {
		inside(m.params[i], m.param_len[i], line, len);
		const char *p = m.params[i], *item;
		size_t left = m.param_len[i], item_len, total = 0;
		while (irc_next_item(&p, &left, &item, &item_len)) {
			inside(item, item_len, m.params[i], m.param_len[i]);
			total += item_len + 1;
			if (total > m.param_len[i] + 1)
				abort();
		}
		char *clean = malloc(TEXT_CLEAN_MAX(m.param_len[i]) + 1);
		size_t n = text_clean(clean, m.params[i], m.param_len[i]);
		if (text_utf8_prefix(clean, n, 64) > 64)
			abort();
		text_is_valid_name(m.params[i], m.param_len[i]);
		free(clean);
	}
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
	framer_reset(&f);
	return 0;
}
