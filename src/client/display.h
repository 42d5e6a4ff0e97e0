/* How chatc shows server lines: cleaned as chatd cleans what clients send
 * (text_clean: no control characters or escape sequences, no invisible or
 * direction-changing characters; nothing from the network reaches the
 * terminal raw, whatever the server), and, when colors are on, a stable
 * color per nick, dim notices and red errors. */
#ifndef CHATC_DISPLAY_H
#define CHATC_DISPLAY_H

#include <stdbool.h>
#include <stddef.h>

/* A server line as it should be printed, without "\n"; free() it. */
char *display_format(const char *line, size_t len, bool color);

/* The user's own chat line, shown as sent: "[you] text". */
char *display_own(const char *text, size_t len, bool color);

/* Colors are for terminals, and only when nobody said no (NO_COLOR,
 * --no-color). */
bool display_want_color(bool no_color_option);

#endif
