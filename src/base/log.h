/* Logging to the journal (with structured CHATD_* fields), syslog or stderr.
 *
 * Levels are syslog priorities (LOG_ERR .. LOG_DEBUG). Every call site passes
 * its file and line through the macros, so journal entries carry CODE_FILE,
 * CODE_LINE and CODE_FUNC of the code that logged, not of this module. */
#ifndef CHATD_LOG_H
#define CHATD_LOG_H

#include <stdbool.h>
#include <syslog.h>

#include "base/util.h"

enum log_target {
	LOG_TARGET_AUTO,
	LOG_TARGET_JOURNAL,
	LOG_TARGET_STDERR,
	LOG_TARGET_SYSLOG,
};

/* Optional structured context of an event; NULL members are left out. */
struct log_fields {
	const char *event;  /* CHATD_EVENT: start, connect, disconnect, ... */
	const char *peer;   /* CHATD_PEER: addr:port */
	const char *nick;   /* CHATD_NICK */
	const char *reason; /* CHATD_REASON */
	const char *actor;  /* CHATD_ACTOR: the admin who did it ("uid 0 (root)",
			     * "oper alice") */
	int online;         /* CHATD_ONLINE, when has_online */
	bool has_online;
	unsigned long suppressed; /* CHATD_SUPPRESSED, when not 0: lines about the
				   * address held back before this one */
	unsigned long long count; /* CHATD_COUNT, when not 0: how many (lines
				   * lost, attempts failed) */
	bool tap_only;      /* for the tap alone: the log held this one back */
};

/* Said with the first line logged about something after some were not
 * (see ip_limit_log_allowed()). */
#define LOG_NOTE_MAX 128
struct log_note {
	unsigned long suppressed; /* lines not logged before this one */
	char text[LOG_NOTE_MAX];  /* " (N more messages about ADDR not logged)", or "" */
};

#define LOG_FIELDS(...) (&(const struct log_fields){ __VA_ARGS__ })
#define LOG_ONLINE(n) .online = (n), .has_online = true

/* Chooses where messages go. AUTO: the journal when our stderr is the
 * journal's stream (JOURNAL_STREAM) or when stderr is no terminal and the
 * journal socket exists; else syslog if daemonized, else stderr. */
void log_open(enum log_target target, bool daemonized);

/* While a daemon starts (-d), errors also go to stderr, still the user's
 * terminal, whatever the target. */
void log_echo_errors(bool on);

void log_set_level(int priority);
int log_get_level(void);
bool log_level_enabled(int priority);

/* Level names as used in the config: debug, info, notice, warning, error. */
bool log_level_from_name(const char *name, int *ret_priority);
const char *log_level_name(int priority);

/* A copy of every event with one of the names in EVENTS (NULL-ended),
 * whatever the level, goes to FN (on the thread that logged; FN must be
 * quick and thread-safe): how chatctl monitor follows them. NULL: none. */
typedef void log_tap_fn(void *ctx, int priority, const struct log_fields *fields,
			const char *message);
void log_set_tap(log_tap_fn *fn, void *ctx, const char *const *events);
/* Whether the tap gets its events (someone follows them); off at first. */
void log_tap_enable(bool on);
/* Whether an EVENT would be tapped now: worth a tap_only call when the
 * log itself holds that event back. */
bool log_tapping(const char *event);

void log_full(const char *file, int line, const char *func, int priority, int errnum,
	      const struct log_fields *fields, const char *fmt, ...) PRINTF_LIKE(7, 8);

#define log_event(prio, fields, ...) \
	log_full(__FILE__, __LINE__, __func__, (prio), 0, (fields), __VA_ARGS__)
/* Appends ": strerror(errnum)" and adds ERRNO= to the journal entry. */
#define log_errno(prio, errnum, ...) \
	log_full(__FILE__, __LINE__, __func__, (prio), (errnum), NULL, __VA_ARGS__)

#define log_debug(...)   log_event(LOG_DEBUG, NULL, __VA_ARGS__)
#define log_info(...)    log_event(LOG_INFO, NULL, __VA_ARGS__)
#define log_notice(...)  log_event(LOG_NOTICE, NULL, __VA_ARGS__)
#define log_warning(...) log_event(LOG_WARNING, NULL, __VA_ARGS__)
#define log_error(...)   log_event(LOG_ERR, NULL, __VA_ARGS__)

#endif
