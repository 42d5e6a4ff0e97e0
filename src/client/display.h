/* How chatc shows server lines: cleaned of control characters and escape
 * sequences (nothing from the network reaches the terminal raw), and, when
 * colors are on, a stable color per nick, dim notices and red errors. */
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
