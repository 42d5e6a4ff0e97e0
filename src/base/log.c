#include "autoconf.h"

#include "base/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

#define JOURNAL_SOCKET "/run/systemd/journal/socket"

static atomic_int log_level = LOG_INFO;
static enum log_target log_target = LOG_TARGET_STDERR;
static atomic_bool echo_errors; /* switched off by the main thread once workers run */

static const struct {
	const char *name;
	int priority;
} level_names[] = {
	{ "debug", LOG_DEBUG },
	{ "info", LOG_INFO },
	{ "notice", LOG_NOTICE },
	{ "warning", LOG_WARNING },
	{ "error", LOG_ERR },
};

bool log_level_from_name(const char *name, int *ret_priority)
{
	for (size_t i = 0; i < ARRAY_SIZE(level_names); i++) {
		if (ascii_equal_nocase(name, level_names[i].name)) {
			*ret_priority = level_names[i].priority;
			return true;
		}
	}
	return false;
}

const char *log_level_name(int priority)
{
	static const char *const names[] = {
		"emerg", "alert", "crit", "error", "warning", "notice", "info", "debug",
	};
	return priority >= 0 && priority < (int)ARRAY_SIZE(names) ? names[priority] : "?";
}

/* True when JOURNAL_STREAM names the device and inode of our stderr, the
 * documented way to tell that stderr is connected to the journal. */
static bool stderr_is_journal_stream(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
		return false;
	if (fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_open(enum log_target target, bool daemonized)
{
	if (target == LOG_TARGET_AUTO) {
		if (stderr_is_journal_stream() ||
		    (!isatty(STDERR_FILENO) && access(JOURNAL_SOCKET, W_OK) == 0))
			target = LOG_TARGET_JOURNAL;
		else if (daemonized)
			target = LOG_TARGET_SYSLOG;
		else
			target = LOG_TARGET_STDERR;
	}
	if (target == LOG_TARGET_SYSLOG)
		openlog("chatd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	log_target = target;
}

void log_echo_errors(bool on)
{
	atomic_store_explicit(&echo_errors, on, memory_order_relaxed);
}

void log_set_level(int priority)
{
	atomic_store_explicit(&log_level, priority, memory_order_relaxed);
}

int log_get_level(void)
{
	return atomic_load_explicit(&log_level, memory_order_relaxed);
}

bool log_level_enabled(int priority)
{
	return priority <= log_get_level();
}

static void log_to_journal(const char *file, int line, const char *func, int priority,
			   int errnum, const struct log_fields *f, const char *message)
{
	char prio_field[16], errno_field[24], online_field[32], suppressed_field[48],
		count_field[48];
	char *owned[6] = { 0 };
	struct iovec iov[14];
	int n = 0, k = 0;

#define ADD_STATIC(s) iov[n++] = (struct iovec){ .iov_base = (void *)(s), .iov_len = strlen(s) }
#define ADD_OWNED(s) do { owned[k] = (s); ADD_STATIC(owned[k]); k++; } while (0)
	ADD_OWNED(xasprintf("MESSAGE=%s", message));
	snprintf(prio_field, sizeof(prio_field), "PRIORITY=%d", priority);
	ADD_STATIC(prio_field);
	ADD_STATIC("SYSLOG_IDENTIFIER=chatd");
	if (errnum) {
		snprintf(errno_field, sizeof(errno_field), "ERRNO=%d", errnum);
		ADD_STATIC(errno_field);
	}
	if (f) {
		if (f->event)
			ADD_OWNED(xasprintf("CHATD_EVENT=%s", f->event));
		if (f->peer)
			ADD_OWNED(xasprintf("CHATD_PEER=%s", f->peer));
		if (f->nick)
			ADD_OWNED(xasprintf("CHATD_NICK=%s", f->nick));
		if (f->reason)
			ADD_OWNED(xasprintf("CHATD_REASON=%s", f->reason));
		if (f->actor)
			ADD_OWNED(xasprintf("CHATD_ACTOR=%s", f->actor));
		if (f->has_online) {
			snprintf(online_field, sizeof(online_field), "CHATD_ONLINE=%d", f->online);
			ADD_STATIC(online_field);
		}
		if (f->suppressed) {
			snprintf(suppressed_field, sizeof(suppressed_field), "CHATD_SUPPRESSED=%lu",
				 f->suppressed);
			ADD_STATIC(suppressed_field);
		}
		if (f->count) {
			snprintf(count_field, sizeof(count_field), "CHATD_COUNT=%llu", f->count);
			ADD_STATIC(count_field);
		}
	}
#undef ADD_OWNED
#undef ADD_STATIC
	char code_file[256], code_line[32];
	snprintf(code_file, sizeof(code_file), "CODE_FILE=%s", file);
	snprintf(code_line, sizeof(code_line), "CODE_LINE=%d", line);
	int r = sd_journal_sendv_with_location(code_file, code_line, func, iov, n);
	if (r < 0)
		fprintf(stderr, "chatd: %s: %s\n", log_level_name(priority), message);
	for (int i = 0; i < k; i++)
		free(owned[i]);
}

static void log_to_stderr(int priority, const struct log_fields *f, const char *message)
{
	struct timespec ts;
	struct tm tm;
	char stamp[32], line[4096];

	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
	int len = snprintf(line, sizeof(line), "%s.%03ld %s: %s", stamp, ts.tv_nsec / 1000000,
			   log_level_name(priority), message);
	if (f && f->event && len >= 0 && (size_t)len < sizeof(line))
		len += snprintf(line + len, sizeof(line) - (size_t)len, " [%s]", f->event);
	if (f && f->actor && len >= 0 && (size_t)len < sizeof(line))
		len += snprintf(line + len, sizeof(line) - (size_t)len, " (by %s)", f->actor);
	if (len < 0)
		return;
	if ((size_t)len >= sizeof(line) - 1)
		len = sizeof(line) - 2;
	line[len++] = '\n';
	/* One write per line, so lines of concurrent threads never interleave. */
	ssize_t w = write(STDERR_FILENO, line, (size_t)len);
	(void)w;
}

/* Set once by the main thread before the workers start, cleared after
 * they stop: read without a lock. */
static log_tap_fn *tap_fn;
static void *tap_ctx;
static const char *const *tap_events;
static atomic_bool tap_on;

void log_set_tap(log_tap_fn *fn, void *ctx, const char *const *events)
{
	tap_fn = fn;
	tap_ctx = ctx;
	tap_events = events;
}

void log_tap_enable(bool on)
{
	atomic_store_explicit(&tap_on, on, memory_order_release);
}

bool log_tapping(const char *event)
{
	if (!atomic_load_explicit(&tap_on, memory_order_acquire) || !tap_fn || !event)
		return false;
	for (const char *const *e = tap_events; *e; e++)
		if (strcmp(*e, event) == 0)
			return true;
	return false;
}

static bool tapped(const struct log_fields *f)
{
	return f && log_tapping(f->event);
}

void log_full(const char *file, int line, const char *func, int priority, int errnum,
	      const struct log_fields *fields, const char *fmt, ...)
{
	char message[2048];
	va_list ap;

	bool tap = tapped(fields);
	if (!tap && (!log_level_enabled(priority) || (fields && fields->tap_only)))
		return;
	int saved_errno = errno;
	va_start(ap, fmt);
	int len = vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	if (len >= 0 && errnum && (size_t)len < sizeof(message))
		snprintf(message + len, sizeof(message) - (size_t)len, ": %s", strerror(errnum));
	if (tap)
		tap_fn(tap_ctx, priority, fields, message);
	if (!log_level_enabled(priority) || (fields && fields->tap_only)) {
		errno = saved_errno;
		return;
	}

	if (atomic_load_explicit(&echo_errors, memory_order_relaxed) && priority <= LOG_ERR && log_target != LOG_TARGET_STDERR)
		fprintf(stderr, "chatd: %s\n", message);
	switch (log_target) {
	case LOG_TARGET_JOURNAL:
		log_to_journal(file, line, func, priority, errnum, fields, message);
		break;
	case LOG_TARGET_SYSLOG:
		syslog(priority, "%s", message);
		break;
	default:
		log_to_stderr(priority, fields, message);
		break;
	}
	errno = saved_errno;
}
