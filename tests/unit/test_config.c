/* Unit tests of the config loader: values, defaults, and above all the
 * error messages an admin sees for a broken file. */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/config.h"
#include "unit.h"
#include "base/util.h"

static char *data_dir; /* tests/unit/data, absolute */
static char *tmp_dir;  /* our scratch directory, also the working directory */

/* inih's limit as the config loader sees it: room for "\r\n\0". */
static int max_line_len(void)
{
	return ini_max_line - 3;
}

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
		fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
		exit(2);
	}
}

static void remove_file(const char *path)
{
	if (unlink(path) < 0 && errno != ENOENT)
		fprintf(stderr, "cannot remove %s: %s\n", path, strerror(errno));
}

static void dump_errors(const struct config_errors *errs)
{
	for (size_t i = 0; i < errs->count; i++)
		fprintf(stderr, "    got: %s\n", errs->messages[i]);
}

/* Loads PATH and checks that exactly the errors WANT (NULL-terminated; empty
 * for success) come out, each given without the PREFIX every message starts
 * with. Returns the config on success, for the caller to look at. */
static struct config *expect_path(int line, const char *path, const char *prefix,
				  const char *const *want)
{
	struct config_errors errs = { .messages = (char **)1, .count = 99 };
	struct config *cfg = (struct config *)1;
	size_t nwant = 0;
	bool ok = true;

	while (want[nwant])
		nwant++;

	int r = config_load(path, &cfg, &errs);

	unit_checks++;
	if (nwant == 0 && (r != 0 || !cfg || errs.count != 0 || errs.messages)) {
		fprintf(stderr, "%s:%d: loading %s failed, want success\n", __FILE__, line, path);
		ok = false;
	} else if (nwant > 0 && (r != -1 || cfg)) {
		fprintf(stderr, "%s:%d: loading %s succeeded, want %zu errors\n", __FILE__, line,
			path, nwant);
		ok = false;
	} else if (errs.count != nwant) {
		fprintf(stderr, "%s:%d: %s: %zu errors, want %zu\n", __FILE__, line, path,
			errs.count, nwant);
		ok = false;
	} else {
		for (size_t i = 0; i < nwant; i++) {
			char *full = xasprintf("%s%s", prefix, want[i]);
			if (strcmp(errs.messages[i], full) != 0) {
				fprintf(stderr, "%s:%d: error %zu is \"%s\", want \"%s\"\n", __FILE__,
					line, i, errs.messages[i], full);
				ok = false;
			}
			free(full);
		}
	}
	if (!ok) {
		unit_failures++;
		for (size_t i = 0; i < nwant; i++)
			fprintf(stderr, "    want: %s%s\n", prefix, want[i]);
		dump_errors(&errs);
	}
	config_errors_free(&errs);
	CHECK(errs.count == 0 && errs.messages == NULL);
	if (r != 0)
		return NULL;
	if (!ok) {
		config_unref(cfg);
		return NULL;
	}
	return cfg;
}

/* Same for a file made of CONTENT (LEN bytes), written to t.conf in our
 * working directory and loaded as "t.conf", so messages read
 * "t.conf:LINE: ..." exactly as given. */
static struct config *expect_data(int line, const void *content, size_t len,
				  const char *const *want)
{
	write_file("t.conf", content, len);
	return expect_path(line, "t.conf", "", want);
}

#define WANT(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define NO_ERRORS ((const char *const[]){ NULL })
#define EXPECT(content, ...) \
	expect_data(__LINE__, (content), strlen(content), WANT(__VA_ARGS__))
#define EXPECT_OK(content) expect_data(__LINE__, (content), strlen(content), NO_ERRORS)

/* Loads a file that sets one key, expecting no errors; NULL if it had some. */
static struct config *load_one(int line, const char *section, const char *key, const char *value)
{
	char *text = xasprintf("[%s]\n%s = %s\n", section, key, value);
	struct config *cfg = expect_data(line, text, strlen(text), NO_ERRORS);
	free(text);
	return cfg;
}

/* The host name, the default [irc] server_name, when it can be one (the
 * rule of config.c, restated): else NULL. */
static char *host_server_name(void)
{
	char host[256];

	if (gethostname(host, sizeof(host)) < 0)
		return NULL;
	host[sizeof(host) - 1] = '\0';
	size_t len = strlen(host);
	if (len == 0 || len > 63)
		return NULL;
	for (const char *p = host; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '-'))
			return NULL;
	return xstrdup(host);
}

static void check_defaults(const struct config *cfg, const char *path)
{
	if (path)
		CHECK_STR(cfg->path, path);
	else
		CHECK(cfg->path == NULL);
	CHECK_INT(cfg->refcount, 1);
	CHECK_INT(cfg->port, 7777);
	CHECK_STR(cfg->bind, "::");
	CHECK_INT(cfg->max_clients, 1024);
	CHECK_INT(cfg->threads, 0);
	CHECK(cfg->io_uring);
	CHECK_INT(cfg->motd_count, 1);
	if (cfg->motd_count == 1)
		CHECK_STR(cfg->motd_lines[0], "Welcome to chatd!");
	CHECK(cfg->motd_file == NULL);
	CHECK_INT(cfg->max_line, 2048);
	CHECK_INT(cfg->max_sendq, 1048576);
	CHECK_INT(cfg->rate, 10);
	CHECK_INT(cfg->burst, 20);
	CHECK_INT(cfg->max_per_ip, 20);
	CHECK_INT(cfg->idle_timeout, 0);
	CHECK_INT(cfg->line_timeout, 30);
	CHECK_INT(cfg->keepalive, 300);
	CHECK_INT(cfg->announce_max, 500);
	CHECK_INT(cfg->announce_rate, 10);
	CHECK_INT(cfg->connect_rate, 10);
	CHECK_INT(cfg->log_level, LOG_INFO);
	CHECK_INT(cfg->log_target, LOG_TARGET_AUTO);
	CHECK_INT(cfg->log_per_address_burst, 20);
	CHECK(cfg->store_path == NULL);
	CHECK_INT(cfg->store_commit_interval, 100);
	CHECK_INT(cfg->history_keep, 1000);
	CHECK_INT(cfg->history_max_age, 30 * 86400);
	CHECK_INT(cfg->history_replay, 20);
	CHECK_INT(cfg->accounts_grace, 30);
	CHECK_INT(cfg->web_port, 0);
	CHECK_INT(cfg->web_tls_port, 0);
	CHECK(cfg->web_bind == NULL);
	CHECK_STR(config_web_bind(cfg), "::");
	CHECK(cfg->web_root == NULL);
	CHECK_INT(cfg->web_origin_count, 0);
	CHECK_INT(cfg->web_proxy_count, 0);
	CHECK_INT(cfg->irc_port, 6667);
	CHECK(cfg->irc_bind == NULL);
	CHECK_STR(config_irc_bind(cfg), "::");
	char *host = host_server_name();
	if (host)
		CHECK_STR(cfg->irc_server_name, host);
	else
		fprintf(stderr, "note: this host's name cannot be a server name; not checked\n");
	free(host);
	CHECK(cfg->irc_password == NULL);
	CHECK_STR(cfg->irc_network, "chatd");
	CHECK_INT(cfg->irc_ping_timeout, 240);
}

static void test_defaults(void)
{
	struct config *cfg = config_new_default();

	check_defaults(cfg, NULL);
	config_unref(cfg);

	cfg = EXPECT_OK("");
	if (cfg)
		check_defaults(cfg, "t.conf");
	config_unref(cfg);

	cfg = EXPECT_OK("# only comments\n; and blank lines\n\n   \n\t\n");
	if (cfg)
		check_defaults(cfg, "t.conf");
	config_unref(cfg);

	cfg = EXPECT_OK("[server]\n[limits]\n[log]\n[irc]\n");
	if (cfg)
		check_defaults(cfg, "t.conf");
	config_unref(cfg);

	/* Empty means the default for [irc]'s optional strings. */
	cfg = EXPECT_OK("[irc]\nbind =\nserver_name =\npassword =\n");
	if (cfg)
		check_defaults(cfg, "t.conf");
	config_unref(cfg);
}

static void test_shipped(void)
{
	char *path = xasprintf("%s/../../../etc/chatd.conf", data_dir);
	struct config *cfg = expect_path(__LINE__, path, "", NO_ERRORS);

	/* The shipped file turns the web page on; everything else is as built
	 * in. */
	if (cfg) {
		CHECK_INT(cfg->web_port, 8080);
		cfg->web_port = 0;
		check_defaults(cfg, path);
	}
	config_unref(cfg);

	/* Every line must fit, with room to spare for local edits. */
	FILE *f = fopen(path, "r");
	char line[4096];
	CHECK(f != NULL);
	while (f && fgets(line, sizeof(line), f))
		CHECK(strlen(line) <= 120);
	if (f)
		fclose(f);
	free(path);
}

static void test_good_files(void)
{
	char *path = xasprintf("%s/good.conf", data_dir);
	struct config *cfg = expect_path(__LINE__, path, "", NO_ERRORS);

	if (cfg) {
		CHECK_INT(cfg->port, 6667);
		CHECK_STR(cfg->bind, "127.0.0.1");
		CHECK_INT(cfg->max_clients, 50);
		CHECK_INT(cfg->threads, 4);
		CHECK_INT(cfg->motd_count, 1);
		CHECK_STR(cfg->motd_lines[0], "Hello there, friends!");
		CHECK(cfg->motd_file == NULL);
		CHECK_INT(cfg->max_line, 512);
		CHECK_INT(cfg->max_sendq, 65536);
		CHECK_INT(cfg->log_level, LOG_DEBUG);
		CHECK_INT(cfg->log_target, LOG_TARGET_STDERR);
		CHECK_INT(config_worker_count(cfg), 4);
		CHECK_INT(cfg->irc_port, 6697);
		CHECK_STR(cfg->irc_bind, "::1");
		CHECK_STR(config_irc_bind(cfg), "::1");
		CHECK_STR(cfg->irc_server_name, "irc.example.org");
		CHECK_STR(cfg->irc_password, "s3cret");
		CHECK_STR(cfg->irc_network, "Example-Net");
		CHECK_INT(cfg->irc_ping_timeout, 600);
	}
	config_unref(cfg);
	free(path);

	path = xasprintf("%s/partial.conf", data_dir);
	cfg = expect_path(__LINE__, path, "", NO_ERRORS);
	if (cfg) {
		CHECK_INT(cfg->port, 8000);
		CHECK_INT(cfg->log_level, LOG_WARNING);
		CHECK_STR(cfg->bind, "::");
		CHECK_INT(cfg->max_clients, 1024);
		CHECK_INT(cfg->threads, 0);
		CHECK_INT(cfg->motd_count, 1);
		CHECK_STR(cfg->motd_lines[0], "Welcome to chatd!");
		CHECK_INT(cfg->max_line, 2048);
		CHECK_INT(cfg->max_sendq, 1048576);
		CHECK_INT(cfg->log_target, LOG_TARGET_AUTO);
		CHECK_INT(cfg->irc_port, 6667);
		CHECK_STR(config_irc_bind(cfg), "::");
		CHECK_STR(cfg->irc_network, "chatd");
	}
	config_unref(cfg);
	free(path);

	/* CRLF line ends, a UTF-8 byte order mark, no newline at the end. */
	cfg = EXPECT_OK("\xef\xbb\xbf[server]\r\nport = 1234\r\nmotd = caf\xc3\xa9\r\n"
			"[log]\r\ntarget = journal");
	if (cfg) {
		CHECK_INT(cfg->port, 1234);
		CHECK_STR(cfg->motd_lines[0], "caf\xc3\xa9");
		CHECK_INT(cfg->log_target, LOG_TARGET_JOURNAL);
	}
	config_unref(cfg);

	/* Indented keys are keys, not continuations of the one above (inih's
	 * multi-line values would make "bind = x" part of port's value). */
	cfg = EXPECT_OK("[server]\n    port = 1\n    bind = 10.0.0.1\n\tthreads = 2\n");
	if (cfg) {
		CHECK_INT(cfg->port, 1);
		CHECK_STR(cfg->bind, "10.0.0.1");
		CHECK_INT(cfg->threads, 2);
	}
	config_unref(cfg);

	/* An empty motd means no MOTD; a ';' without a space before it is text. */
	cfg = EXPECT_OK("[server]\nmotd =\n");
	if (cfg)
		CHECK_INT(cfg->motd_count, 0);
	config_unref(cfg);
	cfg = EXPECT_OK("[server]\nmotd = a;b # c\n");
	if (cfg && cfg->motd_count == 1)
		CHECK_STR(cfg->motd_lines[0], "a;b # c");
	config_unref(cfg);

	/* An empty motd_file is the same as none. */
	cfg = EXPECT_OK("[server]\nmotd_file =\nmotd = hi\n");
	if (cfg) {
		CHECK(cfg->motd_file == NULL);
		CHECK_INT(cfg->motd_count, 1);
		CHECK_STR(cfg->motd_lines[0], "hi");
	}
	config_unref(cfg);
}

static void test_enums(void)
{
	static const struct {
		const char *name;
		int level;
	} levels[] = {
		{ "debug", LOG_DEBUG }, { "info", LOG_INFO }, { "notice", LOG_NOTICE },
		{ "warning", LOG_WARNING }, { "ERROR", LOG_ERR },
	};
	static const struct {
		const char *name;
		enum log_target target;
	} targets[] = {
		{ "auto", LOG_TARGET_AUTO }, { "journal", LOG_TARGET_JOURNAL },
		{ "stderr", LOG_TARGET_STDERR }, { "SysLog", LOG_TARGET_SYSLOG },
	};

	for (size_t i = 0; i < ARRAY_SIZE(levels); i++) {
		struct config *cfg = load_one(__LINE__, "log", "level", levels[i].name);
		CHECK_INT(cfg ? cfg->log_level : -1, levels[i].level);
		config_unref(cfg);
	}
	for (size_t i = 0; i < ARRAY_SIZE(targets); i++) {
		struct config *cfg = load_one(__LINE__, "log", "target", targets[i].name);
		CHECK_INT(cfg ? (int)cfg->log_target : -1, targets[i].target);
		config_unref(cfg);
	}

	static const struct {
		const char *name;
		bool value;
	} bools[] = {
		{ "yes", true }, { "no", false }, { "TRUE", true }, { "false", false },
		{ "on", true }, { "Off", false }, { "1", true }, { "0", false },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bools); i++) {
		struct config *cfg = load_one(__LINE__, "server", "io_uring", bools[i].name);
		CHECK_INT(cfg ? cfg->io_uring : -1, bools[i].value);
		config_unref(cfg);
	}
	EXPECT("[server]\nio_uring = maybe\n", "t.conf:2: io_uring: must be yes or no");
	EXPECT("[server]\nio_uring =\n", "t.conf:2: io_uring: must be yes or no");
	EXPECT("[server]\nio_uring = 2\n", "t.conf:2: io_uring: must be yes or no");

	EXPECT("[log]\nlevel = verbose\n",
	       "t.conf:2: level: must be one of debug, info, notice, warning, error");
	EXPECT("[log]\nlevel =\n",
	       "t.conf:2: level: must be one of debug, info, notice, warning, error");
	EXPECT("[log]\nlevel = warn\n",
	       "t.conf:2: level: must be one of debug, info, notice, warning, error");
	EXPECT("[log]\ntarget = file\n",
	       "t.conf:2: target: must be one of auto, journal, stderr, syslog");
	EXPECT("[log]\ntarget = stderr # for now\n",
	       "t.conf:2: target: must be one of auto, journal, stderr, syslog"
	       " (a comment after a value starts with ' ;', not '#')");
}

struct range_case {
	const char *section, *key;
	long min, max;
	size_t offset;
	bool is_size;
	const char *extra; /* more lines in the same section, e.g. to satisfy max_sendq */
};

static long read_field(const struct config *cfg, const struct range_case *c)
{
	const char *p = (const char *)cfg + c->offset;

	return c->is_size ? (long)*(const size_t *)p : (long)*(const int *)p;
}

static void test_ranges(void)
{
	static const struct range_case cases[] = {
		{ "server", "port", 0, 65535, offsetof(struct config, port), false, "" },
		{ "server", "max_clients", 1, 1000000, offsetof(struct config, max_clients), false, "" },
		{ "server", "threads", 0, 256, offsetof(struct config, threads), false, "" },
		{ "limits", "max_line", 64, 1048576, offsetof(struct config, max_line), true,
		  "max_sendq = 1073741824\n" },
		{ "limits", "max_sendq", 4096, 1073741824, offsetof(struct config, max_sendq), true,
		  "max_line = 64\n" },
		{ "limits", "rate", 0, 1000000, offsetof(struct config, rate), false, "" },
		{ "limits", "burst", 1, 1000000, offsetof(struct config, burst), false, "" },
		{ "limits", "max_per_ip", 0, 1000000, offsetof(struct config, max_per_ip), false, "" },
		{ "limits", "idle_timeout", 0, 31536000, offsetof(struct config, idle_timeout), false, "" },
		{ "limits", "line_timeout", 1, 3600, offsetof(struct config, line_timeout), false, "" },
		{ "limits", "keepalive", 0, 32767, offsetof(struct config, keepalive), false, "" },
		{ "limits", "announce_max", 0, 1000000, offsetof(struct config, announce_max), false, "" },
		{ "limits", "announce_rate", 0, 1000000, offsetof(struct config, announce_rate), false, "" },
		{ "limits", "connect_rate", 0, 1000000, offsetof(struct config, connect_rate), false, "" },
		{ "log", "per_address_burst", 0, 1000000, offsetof(struct config, log_per_address_burst),
		  false, "" },
		{ "irc", "port", 0, 65535, offsetof(struct config, irc_port), false, "" },
		{ "store", "commit_interval", 1, 10000, offsetof(struct config, store_commit_interval),
		  false, "" },
		{ "history", "keep", 0, 1000000, offsetof(struct config, history_keep), false, "" },
		{ "history", "replay", 0, 100, offsetof(struct config, history_replay), false, "" },
		{ "accounts", "grace", 1, 3600, offsetof(struct config, accounts_grace), false, "" },
	};

	CHECK_INT(CONFIG_MAX_CLIENTS_LIMIT, 1000000);
	CHECK_INT(CONFIG_MAX_THREADS, 256);
	CHECK_INT(CONFIG_MAX_LINE_MIN, 64);
	CHECK_INT(CONFIG_MAX_LINE_MAX, 1048576);

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct range_case *c = &cases[i];
		char *range = xasprintf("must be %ld..%ld", c->min, c->max);
		const long good[] = { c->min, c->max, c->min + 1, c->max - 1 };
		const long bad[] = { c->min - 1, c->max + 1 };

		for (size_t j = 0; j < ARRAY_SIZE(good); j++) {
			char *text = xasprintf("[%s]\n%s = %ld\n%s", c->section, c->key, good[j],
					       c->extra);
			struct config *cfg = EXPECT_OK(text);
			if (cfg)
				CHECK_INT(read_field(cfg, c), good[j]);
			config_unref(cfg);
			free(text);
		}

		for (size_t j = 0; j < ARRAY_SIZE(bad); j++) {
			char *text = xasprintf("[%s]\n%s = %ld\n%s", c->section, c->key, bad[j],
					       c->extra);
			char *want = xasprintf("t.conf:2: %s: %s", c->key, range);
			EXPECT(text, want);
			free(text);
			free(want);
		}

		static const struct {
			const char *value, *message;
		} junk[] = {
			{ "12abc", "not a number: 12abc" },
			{ "-1", NULL },
			{ "-0x10", "not a number: -0x10" },
			{ "+5", "not a number: +5" },
			{ "0x10", "not a number: 0x10" },
			{ "1e3", "not a number: 1e3" },
			{ "1 000", "not a number: 1 000" },
			{ "99999999999999999999", NULL },
			{ "-99999999999999999999", NULL },
			{ "", "" },
			{ "1024 # the default", "not a number: 1024 # the default"
			  " (a comment after a value starts with ' ;', not '#')" },
		};
		for (size_t j = 0; j < ARRAY_SIZE(junk); j++) {
			char *text = xasprintf("[%s]\n%s = %s\n%s", c->section, c->key,
					       junk[j].value, c->extra);
			char *want;
			if (!junk[j].message)
				want = xasprintf("t.conf:2: %s: %s", c->key, range);
			else if (!*junk[j].message)
				want = xasprintf("t.conf:2: %s: missing value (%s)", c->key, range);
			else
				want = xasprintf("t.conf:2: %s: %s", c->key, junk[j].message);
			EXPECT(text, want);
			free(text);
			free(want);
		}
		free(range);
	}

	/* Leading zeros are still decimal. */
	struct config *cfg = EXPECT_OK("[server]\nport = 0080\n");
	if (cfg)
		CHECK_INT(cfg->port, 80);
	config_unref(cfg);

	/* 0 (never) or 10..86400: nothing in between. */
	static const long pings_good[] = { 0, 10, 11, 240, 86399, 86400 };
	for (size_t i = 0; i < ARRAY_SIZE(pings_good); i++) {
		char *text = xasprintf("[irc]\nping_timeout = %ld\n", pings_good[i]);
		cfg = EXPECT_OK(text);
		if (cfg)
			CHECK_INT(cfg->irc_ping_timeout, pings_good[i]);
		config_unref(cfg);
		free(text);
	}
	static const char *const pings_bad[] = { "1", "9", "86401", "-1", "99999999999999999999" };
	for (size_t i = 0; i < ARRAY_SIZE(pings_bad); i++) {
		char *text = xasprintf("[irc]\nping_timeout = %s\n", pings_bad[i]);
		EXPECT(text, "t.conf:2: ping_timeout: must be 0 or 10..86400");
		free(text);
	}
	EXPECT("[irc]\nping_timeout =\n",
	       "t.conf:2: ping_timeout: missing value (must be 0 or 10..86400)");
	EXPECT("[irc]\nping_timeout = 4m\n", "t.conf:2: ping_timeout: not a number: 4m");
}

static void test_strings(void)
{
	EXPECT("[server]\nbind =\n",
	       "t.conf:2: bind: must not be empty (:: means every IPv4 and IPv6 address)");
	EXPECT("[server]\nbind = 127.0.0.1 # local\n",
	       "t.conf:2: bind: must be one address or host name, without spaces: "
	       "127.0.0.1 # local (a comment after a value starts with ' ;', not '#')");

	struct config *cfg = EXPECT_OK("[server]\nbind = chat.example.org\n");
	if (cfg)
		CHECK_STR(cfg->bind, "chat.example.org");
	config_unref(cfg);
}

static void test_irc_strings(void)
{
	struct config *cfg;

	/* bind: unset (or empty) follows [server] bind. */
	cfg = EXPECT_OK("[server]\nbind = 127.0.0.1\n");
	if (cfg) {
		CHECK(cfg->irc_bind == NULL);
		CHECK_STR(config_irc_bind(cfg), "127.0.0.1");
	}
	config_unref(cfg);
	cfg = EXPECT_OK("[server]\nbind = 127.0.0.1\n[irc]\nbind = ::1\n");
	if (cfg) {
		CHECK_STR(config_irc_bind(cfg), "::1");
		CHECK_STR(cfg->bind, "127.0.0.1");
	}
	config_unref(cfg);
	EXPECT("[irc]\nbind = ::1 # v6\n",
	       "t.conf:2: bind: must be one address or host name, without spaces: "
	       "::1 # v6 (a comment after a value starts with ' ;', not '#')");

	/* server_name: a host name's characters, at most 63 bytes. */
	static const char *const names_good[] = {
		"irc.example.org", "x", "IRC-1.Example.NET", "localhost", "1.2.3.4",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", /* 63 */
	};
	for (size_t i = 0; i < ARRAY_SIZE(names_good); i++) {
		cfg = load_one(__LINE__, "irc", "server_name", names_good[i]);
		if (cfg)
			CHECK_STR(cfg->irc_server_name, names_good[i]);
		config_unref(cfg);
	}
	static const char *const names_bad[] = {
		"irc_server", "irc server", "caf\xc3\xa9.example", "a:b", "*.example.org",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", /* 64 */
	};
	for (size_t i = 0; i < ARRAY_SIZE(names_bad); i++) {
		char *text = xasprintf("[irc]\nserver_name = %s\n", names_bad[i]);
		char *want = xasprintf("t.conf:2: server_name: must be one word of letters, digits, "
				       "'.' and '-', at most 63 bytes: %s", names_bad[i]);
		EXPECT(text, want);
		free(want);
		free(text);
	}

	/* password: one word; the value is never repeated in the message. */
	cfg = load_one(__LINE__, "irc", "password", "correct-horse;battery#staple");
	if (cfg)
		CHECK_STR(cfg->irc_password, "correct-horse;battery#staple");
	config_unref(cfg);
	char pw[130];
	memset(pw, 'p', sizeof(pw));
	pw[128] = '\0';
	cfg = load_one(__LINE__, "irc", "password", pw);
	if (cfg)
		CHECK_INT(strlen(cfg->irc_password), 128);
	config_unref(cfg);
	pw[128] = 'p';
	pw[129] = '\0';
	static const char pw_rule[] = "t.conf:2: password: must be one word of at most 128 bytes, "
				      "without spaces or control characters, not starting with ':'";
	const char *const pws_bad[] = { pw, "two words", ":colon", "tab\there" };
	for (size_t i = 0; i < ARRAY_SIZE(pws_bad); i++) {
		char *text = xasprintf("[irc]\npassword = %s\n", pws_bad[i]);
		EXPECT(text, pw_rule);
		free(text);
	}

	/* network: one word of at most 32 bytes. */
	static const char *const nets_good[] = {
		"Libera.Chat", "OFTC", "my_net-2", "abcdefghijklmnopqrstuvwxyz012345", /* 32 */
	};
	for (size_t i = 0; i < ARRAY_SIZE(nets_good); i++) {
		cfg = load_one(__LINE__, "irc", "network", nets_good[i]);
		if (cfg)
			CHECK_STR(cfg->irc_network, nets_good[i]);
		config_unref(cfg);
	}
	static const char *const nets_bad[] = {
		"", "My Net", "net=work", "abcdefghijklmnopqrstuvwxyz0123456", /* 33 */
	};
	for (size_t i = 0; i < ARRAY_SIZE(nets_bad); i++) {
		char *text = xasprintf("[irc]\nnetwork = %s\n", nets_bad[i]);
		char *want = xasprintf("t.conf:2: network: must be one word of letters, digits, '.', "
				       "'-' and '_', at most 32 bytes: %s", nets_bad[i]);
		EXPECT(text, want);
		free(want);
		free(text);
	}
}

/* Both protocols on one address and port: an error at the later of the two
 * port keys, naming it. */
static void test_irc_port_clash(void)
{
	EXPECT("[server]\nport = 6667\n",
	       "t.conf:2: port: [server] port and [irc] port are both 6667 on the same address; "
	       "change one, or set [irc] port = 0 to turn IRC off");
	EXPECT("[irc]\nport = 7777\n",
	       "t.conf:2: port: [server] port and [irc] port are both 7777 on the same address; "
	       "change one, or set [irc] port = 0 to turn IRC off");
	EXPECT("[irc]\nport = 5000\n[server]\nbind = 10.0.0.1\nport = 5000\n[irc]\n",
	       "t.conf:5: port: [server] port and [irc] port are both 5000 on the same address; "
	       "change one, or set [irc] port = 0 to turn IRC off");
	/* An [irc] bind the same as [server]'s, spelled out. */
	EXPECT("[server]\nbind = ::1\nport = 5000\n[irc]\nport = 5000\nbind = ::1\n",
	       "t.conf:5: port: [server] port and [irc] port are both 5000 on the same address; "
	       "change one, or set [irc] port = 0 to turn IRC off");

	struct config *cfg = EXPECT_OK("[server]\nport = 6667\n[irc]\nport = 0\n");
	if (cfg)
		CHECK_INT(cfg->irc_port, 0);
	config_unref(cfg);
	cfg = EXPECT_OK("[server]\nport = 0\n[irc]\nport = 0\n");
	config_unref(cfg);
	cfg = EXPECT_OK("[server]\nport = 6667\nbind = 127.0.0.1\n[irc]\nbind = 127.0.0.2\n");
	config_unref(cfg);
	/* No second complaint about a port already rejected. */
	EXPECT("[server]\nport = 6667\nbind =\n",
	       "t.conf:3: bind: must not be empty (:: means every IPv4 and IPv6 address)");
}

static void test_tls(void)
{
	/* A TLS port needs the files; a relative path is the config's folder's. */
	EXPECT("[server]\ntls_port = 7778\n",
	       "t.conf:2: tls_port: a TLS port needs a certificate: set certificate in [tls]");
	EXPECT("[irc]\ntls_port = 6697\n[tls]\ncertificate = c.pem\n",
	       "t.conf:2: tls_port: a TLS port needs the certificate's key: set key in [tls], or pass "
	       "it as the systemd credential chatd-tls-key");
	struct config *cfg = EXPECT_OK("[server]\ntls_port = 7778\n[tls]\ncertificate = c.pem\n"
				       "key = /k.pem\nclient_ca =\n");
	if (cfg) {
		CHECK_STR(cfg->tls_certificate, "c.pem"); /* t.conf has no folder */
		CHECK_STR(cfg->tls_key, "/k.pem");
		CHECK(cfg->tls_client_ca == NULL);
		CHECK_INT(cfg->handshake_timeout, 10);
		CHECK_INT(cfg->irc_sts_duration, 300);
	}
	config_unref(cfg);
	/* Every pair of listeners on one address and port is an error. */
	EXPECT("[server]\nport = 7000\ntls_port = 7000\n[tls]\ncertificate = c\nkey = k\n",
	       "t.conf:3: tls_port: [server] port and [server] tls_port are both 7000 on the same "
	       "address; change one");
	EXPECT("[server]\ntls_port = 6697\n[irc]\ntls_port = 6697\n[tls]\ncertificate = c\nkey = k\n",
	       "t.conf:4: tls_port: [server] tls_port and [irc] tls_port are both 6697 on the same "
	       "address; change one");

	/* The key as a systemd credential: when [tls] key is not set, or set
	 * empty as in the shipped file, and the credential is there. */
	char *creds = xasprintf("%s/creds", tmp_dir);
	mkdir(creds, 0700);
	char *key = xasprintf("%s/chatd-tls-key", creds);
	write_file(key, "k", 1);
	setenv("CREDENTIALS_DIRECTORY", creds, 1);
	const char *texts[] = { "[server]\ntls_port = 7778\n[tls]\ncertificate = c.pem\n",
				"[server]\ntls_port = 7778\n[tls]\ncertificate = c.pem\nkey =\n" };
	for (size_t i = 0; i < ARRAY_SIZE(texts); i++) {
		cfg = expect_data(__LINE__, texts[i], strlen(texts[i]), NO_ERRORS);
		if (cfg)
			CHECK_STR(cfg->tls_key, key);
		config_unref(cfg);
	}
	cfg = EXPECT_OK("[server]\ntls_port = 7778\n[tls]\ncertificate = c.pem\nkey = /mine.pem\n");
	if (cfg)
		CHECK_STR(cfg->tls_key, "/mine.pem"); /* a key set wins */
	config_unref(cfg);
	unlink(key);
	EXPECT("[server]\ntls_port = 7778\n[tls]\ncertificate = c.pem\nkey =\n",
	       "t.conf:2: tls_port: a TLS port needs the certificate's key: set key in [tls], or pass "
	       "it as the systemd credential chatd-tls-key");
	unsetenv("CREDENTIALS_DIRECTORY");
	rmdir(creds);
	free(key);
	free(creds);
}

static void test_web(void)
{
	struct config *cfg = EXPECT_OK("[web]\nport = 8080\ntls_port = 8443\nbind = 127.0.0.1\n"
				       "root = page\nallowed_origins = https://Chat.Example.org  *\n"
				       "trusted_proxies = 127.0.0.1 10.0.0.0/8 ::1 fd00::/8\n"
				       "[tls]\ncertificate = c.pem\nkey = k.pem\n");
	if (cfg) {
		CHECK_INT(cfg->web_port, 8080);
		CHECK_INT(cfg->web_tls_port, 8443);
		CHECK_STR(config_web_bind(cfg), "127.0.0.1");
		CHECK_STR(cfg->web_root, "page");
		CHECK_INT(cfg->web_origin_count, 2);
		if (cfg->web_origin_count == 2) {
			CHECK_STR(cfg->web_origins[0], "https://chat.example.org");
			CHECK_STR(cfg->web_origins[1], "*");
		}
		CHECK_INT(cfg->web_proxy_count, 4);
		static const uint8_t v4[16] = { [10] = 0xff, [11] = 0xff, 10, 200, 3, 4 };
		static const uint8_t v4_out[16] = { [10] = 0xff, [11] = 0xff, 11, 0, 0, 1 };
		static const uint8_t v6[16] = { 0xfd, 0x12, [15] = 1 };
		static const uint8_t loop6[16] = { [15] = 1 };
		if (cfg->web_proxy_count == 4) {
			CHECK(config_cidr_contains(&cfg->web_proxies[1], v4));
			CHECK(!config_cidr_contains(&cfg->web_proxies[1], v4_out));
			CHECK(!config_cidr_contains(&cfg->web_proxies[0], v4));
			CHECK(config_cidr_contains(&cfg->web_proxies[2], loop6));
			CHECK(config_cidr_contains(&cfg->web_proxies[3], v6));
			CHECK(!config_cidr_contains(&cfg->web_proxies[3], loop6));
		}
	}
	config_unref(cfg);

	EXPECT("[web]\nallowed_origins = chat.example.org\n",
	       "t.conf:2: allowed_origins: chat.example.org is not an origin: write it as the browser "
	       "sends it, https://chat.example.org or http://host:8080 (no path), or *");
	EXPECT("[web]\nallowed_origins = https://chat.example.org/page\n",
	       "t.conf:2: allowed_origins: https://chat.example.org/page is not an origin: write it as "
	       "the browser sends it, https://chat.example.org or http://host:8080 (no path), or *");
	EXPECT("[web]\ntrusted_proxies = 10.0.0.0/33\n",
	       "t.conf:2: trusted_proxies: 10.0.0.0/33 is not an address or network (192.0.2.10, "
	       "10.0.0.0/8, ::1, fd00::/8)");
	EXPECT("[web]\ntrusted_proxies = proxy.example.org\n",
	       "t.conf:2: trusted_proxies: proxy.example.org is not an address or network "
	       "(192.0.2.10, 10.0.0.0/8, ::1, fd00::/8)");
	EXPECT("[web]\ntls_port = 8443\n",
	       "t.conf:2: tls_port: a TLS port needs a certificate: set certificate in [tls]");
	EXPECT("[web]\nbind = 127.0.0.1 ::1\n",
	       "t.conf:2: bind: must be one address or host name, without spaces: 127.0.0.1 ::1");
	EXPECT("[irc]\nport = 8080\n[web]\nport = 8080\n",
	       "t.conf:4: port: [irc] port and [web] port are both 8080 on the same address; change one");
}

static void test_control_and_metrics(void)
{
	struct config *cfg = EXPECT_OK("[control]\nsocket = run/ctl.sock\ngroup = ops-team\n"
				       "[metrics]\nlisten = 127.0.0.1:9177\n");
	if (cfg) {
		CHECK_STR(cfg->control_socket, "run/ctl.sock");
		CHECK_STR(cfg->control_group, "ops-team");
		CHECK_STR(cfg->metrics_address, "127.0.0.1");
		CHECK_INT(cfg->metrics_port, 9177);
		char *path = config_control_path(cfg);
		CHECK_STR(path, "run/ctl.sock");
		free(path);
	}
	config_unref(cfg);
	cfg = EXPECT_OK("[control]\nsocket =\ngroup =\n[metrics]\nlisten = [::1]:0\n");
	if (cfg) {
		CHECK(config_control_path(cfg) == NULL);
		CHECK_STR(cfg->control_group, "");
		CHECK_STR(cfg->metrics_address, "::1");
		CHECK_INT(cfg->metrics_port, 0);
	}
	config_unref(cfg);
	/* Not set: the runtime folder's. */
	cfg = EXPECT_OK("[server]\nport = 1\n");
	if (cfg) {
		setenv("RUNTIME_DIRECTORY", "/run/chatd-x:/run/other", 1);
		char *path = config_control_path(cfg);
		CHECK_STR(path, "/run/chatd-x/control.sock");
		free(path);
		unsetenv("RUNTIME_DIRECTORY");
		CHECK(cfg->metrics_address == NULL);
		CHECK_STR(cfg->control_group, "chatd-admin");
	}
	config_unref(cfg);

	EXPECT("[metrics]\nlisten = 9177\n",
	       "t.conf:2: listen: must be ADDRESS:PORT (a port up to 65535; 0: any free one), e.g. "
	       "127.0.0.1:9177: 9177");
	EXPECT("[metrics]\nlisten = localhost:http\n",
	       "t.conf:2: listen: must be ADDRESS:PORT (a port up to 65535; 0: any free one), e.g. "
	       "127.0.0.1:9177: localhost:http");
	EXPECT("[metrics]\nlisten = [::1:9177\n",
	       "t.conf:2: listen: must be ADDRESS:PORT or [IPv6]:PORT, e.g. 127.0.0.1:9177: [::1:9177");
	EXPECT("[control]\ngroup = wheel admin\n",
	       "t.conf:2: group: must be a group name (letters, digits, _ - .): wheel admin");
	EXPECT("[control]\nsocket = /run/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock\n",
	       "t.conf:2: socket: too long for a socket's path (at most 107 bytes)");
}

static void test_cluster(void)
{
	struct config *cfg = EXPECT_OK("[cluster]\nnats = nats://10.0.0.1:4222, tls://u:p@nats2:4222 "
				       "nats://[::1]:4222\nnode = chat-1_a\nreplicas = 3\n"
				       "credentials = nats.creds\n");
	if (cfg) {
		CHECK_INT(cfg->cluster_url_count, 3);
		if (cfg->cluster_url_count == 3) {
			CHECK_STR(cfg->cluster_urls[0], "nats://10.0.0.1:4222");
			CHECK_STR(cfg->cluster_urls[1], "tls://u:p@nats2:4222");
			CHECK_STR(cfg->cluster_urls[2], "nats://[::1]:4222");
		}
		CHECK_STR(cfg->cluster_node, "chat-1_a");
		CHECK_INT(cfg->cluster_replicas, 3);
		CHECK_STR(cfg->cluster_credentials, "nats.creds");
		CHECK(cfg->cluster_ca == NULL);
	}
	config_unref(cfg);
	/* None: no cluster, and no node name is needed. */
	cfg = EXPECT_OK("[cluster]\nnats =\n");
	if (cfg) {
		CHECK_INT(cfg->cluster_url_count, 0);
		CHECK_INT(cfg->cluster_replicas, 1);
	}
	config_unref(cfg);
	/* The node's name defaults to the host name's first label. */
	cfg = EXPECT_OK("[cluster]\nnats = nats://127.0.0.1:4222\n");
	if (cfg) {
		char host[256];
		gethostname(host, sizeof(host));
		host[strcspn(host, ".")] = 0;
		CHECK_STR(cfg->cluster_node, host);
	}
	config_unref(cfg);
	EXPECT("[cluster]\nnats = http://127.0.0.1:4222\n",
	       "t.conf:2: nats: must be NATS server URLs, nats://HOST:PORT or tls://HOST:PORT, "
	       "separated by commas: http://127.0.0.1:4222");
	EXPECT("[cluster]\nnats = nats://127.0.0.1:4222/x\n",
	       "t.conf:2: nats: must be NATS server URLs, nats://HOST:PORT or tls://HOST:PORT, "
	       "separated by commas: nats://127.0.0.1:4222/x");
	EXPECT("[cluster]\nnode = chat.example\n",
	       "t.conf:2: node: must be letters, digits, - and _: chat.example");
	EXPECT("[cluster]\nreplicas = 7\n", "t.conf:2: replicas: must be 1..5");
}

static void test_operators(void)
{
	static const char sha512[] = "$6$aB3dEfGh$Kq2dCz8f0mR1m0TQ8kq6W2b5sY0nqkQe4m7WbZz9A3lU7n5bYjJrS1"
				     "cQ0yD8pJ5f6g7h8i9j0k1l2m3n4o5p6q7";
	char *text = xasprintf("[operators]\nalice = %s\nBob_2 = $y$j9T$Vq2P0lW5m1xJc8Zk3Ra9u.$"
			       "Y5vEVVQN/leoBuusmsMkij3H3psjema1hULSgAbs.A1\n", sha512);
	struct config *cfg = EXPECT_OK(text);
	free(text);
	if (cfg) {
		CHECK_INT(cfg->operator_count, 2);
		CHECK_STR(config_operator_hash(cfg, "ALICE"), sha512);
		CHECK(config_operator_hash(cfg, "bob_2") != NULL);
		CHECK(config_operator_hash(cfg, "carol") == NULL);
	}
	config_unref(cfg);
	EXPECT("[operators]\nalice = secret\n",
	       "t.conf:2: operator 'alice': not a password hash crypt(3) knows (make one with "
	       "mkpasswd -m yescrypt, or openssl passwd -6)");
	EXPECT("[operators]\nalice = abcdefghijklm\n",
	       "t.conf:2: operator 'alice': not a password hash crypt(3) knows (make one with "
	       "mkpasswd -m yescrypt, or openssl passwd -6)");
	EXPECT("[operators]\nal!ce = $y$j9T$Vq2P0lW5m1xJc8Zk3Ra9u.$Y5vEVVQN/leoBuusmsMkij3H3psjema1hULSgAbs.A1\n",
	       "t.conf:2: operator 'al!ce': a name is 1 to 32 letters, digits, _ or -");
	EXPECT("[operators]\na = $y$j9T$Vq2P0lW5m1xJc8Zk3Ra9u.$Y5vEVVQN/leoBuusmsMkij3H3psjema1hULSgAbs.A1\n"
	       "A = $y$j9T$Vq2P0lW5m1xJc8Zk3Ra9u.$Y5vEVVQN/leoBuusmsMkij3H3psjema1hULSgAbs.A1\n",
	       "t.conf:3: operator 'A' is set twice");
}

static void test_store_and_history(void)
{
	/* max_age: seconds, or with a unit; 0 is no limit. */
	static const struct { const char *value; int seconds; } ages[] = {
		{ "30d", 30 * 86400 }, { "60", 60 }, { "60s", 60 }, { "90m", 5400 }, { "12h", 43200 },
		{ "0", 0 }, { "3650d", 3650 * 86400 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(ages); i++) {
		char *text = xasprintf("[history]\nmax_age = %s\n", ages[i].value);
		struct config *cfg = expect_data(__LINE__, text, strlen(text), NO_ERRORS);
		if (cfg)
			CHECK_INT(cfg->history_max_age, ages[i].seconds);
		config_unref(cfg);
		free(text);
	}
	EXPECT("[history]\nmax_age = 59\n",
	       "t.conf:2: max_age: must be 0 or 60s..315360000s (3650 days), or that many m, h or d");
	EXPECT("[history]\nmax_age = 3651d\n",
	       "t.conf:2: max_age: must be 0 or 60s..315360000s (3650 days), or that many m, h or d");
	EXPECT("[history]\nmax_age = 30 days\n",
	       "t.conf:2: max_age: not a duration: 30 days (a number of seconds, or of m, h or d: 30d)");
	EXPECT("[history]\nmax_age = d\n",
	       "t.conf:2: max_age: not a duration: d (a number of seconds, or of m, h or d: 30d)");
	EXPECT("[history]\nmax_age =\n",
	       "t.conf:2: max_age: missing value (a number of seconds, or of m, h or d: 30d)");

	/* The database: a path relative to the config's folder, or where
	 * systemd, XDG or the home folder say. */
	struct config *cfg = EXPECT_OK("[store]\npath = /var/x/chat.db\n");
	if (cfg) {
		char *p = config_store_path(cfg);
		CHECK_STR(p, "/var/x/chat.db");
		free(p);
	}
	config_unref(cfg);
	cfg = config_new_default();
	setenv("STATE_DIRECTORY", "/var/lib/chatd:/var/lib/other", 1);
	char *p = config_store_path(cfg);
	CHECK_STR(p, "/var/lib/chatd/chatd.db");
	free(p);
	unsetenv("STATE_DIRECTORY");
	setenv("XDG_STATE_HOME", "/home/u/.state", 1);
	p = config_store_path(cfg);
	CHECK_STR(p, "/home/u/.state/chatd/chatd.db");
	free(p);
	unsetenv("XDG_STATE_HOME");
	setenv("HOME", "/home/u", 1);
	p = config_store_path(cfg);
	CHECK_STR(p, "/home/u/.local/state/chatd/chatd.db");
	free(p);
	unsetenv("HOME");
	CHECK(config_store_path(cfg) == NULL);
	config_unref(cfg);
}

/* A host whose name cannot be a server name: the default cannot be used,
 * and a config that relies on it says so. Run in a child with a UTS
 * namespace of its own, where it may rename its host; skipped without
 * the privilege to make one. */
static void test_irc_unusable_host_name(void)
{
	pid_t pid = fork();

	if (pid < 0) {
		fprintf(stderr, "fork: %s\n", strerror(errno));
		CHECK(pid >= 0);
		return;
	}
	if (pid == 0) {
		static const char host[] = "under_score";
		if (unshare(CLONE_NEWUTS) < 0 || sethostname(host, strlen(host)) < 0) {
			fprintf(stderr, "note: no UTS namespace (%s); an unusable host name is not "
				"tested\n", strerror(errno));
			_exit(77);
		}
		struct config *cfg = config_new_default();
		CHECK(cfg->irc_server_name == NULL);
		config_unref(cfg);
		EXPECT("[server]\nport = 1\n",
		       "t.conf: server_name: not set, and the host name \"under_score\" cannot be one "
		       "(one word of letters, digits, '.' and '-', at most 63 bytes): set server_name "
		       "in [irc]");
		EXPECT("[irc]\nserver_name =\n",
		       "t.conf:2: server_name: not set, and the host name \"under_score\" cannot be "
		       "one (one word of letters, digits, '.' and '-', at most 63 bytes): set "
		       "server_name in [irc]");
		cfg = EXPECT_OK("[irc]\nserver_name = chat.example.org\n");
		if (cfg)
			CHECK_STR(cfg->irc_server_name, "chat.example.org");
		config_unref(cfg);
		/* One complaint about a name given and bad, not a second one. */
		EXPECT("[irc]\nserver_name = a_b\n",
		       "t.conf:2: server_name: must be one word of letters, digits, '.' and '-', at "
		       "most 63 bytes: a_b");
		fflush(stderr);
		_exit(unit_failures ? 1 : 0);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			fprintf(stderr, "waitpid: %s\n", strerror(errno));
			CHECK(0);
			return;
		}
	}
	unit_checks++;
	if (!WIFEXITED(status) || (WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != 77)) {
		unit_failures++;
		fprintf(stderr, "%s:%d: the child with an unusable host name failed (status %#x)\n",
			__FILE__, __LINE__, status);
	}
}

/* max_sendq must hold a few full lines; the message names the key that was
 * set, at its line. */
static void test_sendq_vs_line(void)
{
	EXPECT("[limits]\nmax_line = 2000\nmax_sendq = 6063\n",
	       "t.conf:3: max_sendq: must be at least 3 * max_line + 64 = 6064, so a slow client "
	       "can hold a few full-length lines (max_line is 2000)");
	struct config *cfg = EXPECT_OK("[limits]\nmax_line = 2000\nmax_sendq = 6064\n");
	config_unref(cfg);
	EXPECT("[limits]\nmax_sendq = 4096\n",
	       "t.conf:2: max_sendq: must be at least 3 * max_line + 64 = 6208, so a slow client "
	       "can hold a few full-length lines (max_line is 2048)");
	EXPECT("[limits]\nmax_line = 1048576\n",
	       "t.conf:2: max_line: needs max_sendq >= 3 * max_line + 64 = 3145792, so a slow "
	       "client can hold a few full-length lines; set max_sendq in [limits] (it is 1048576)");
	/* Reported in line order even though it is checked last. */
	EXPECT("[limits]\nmax_sendq = 4096\nbogus = 1\n",
	       "t.conf:2: max_sendq: must be at least 3 * max_line + 64 = 6208, so a slow client "
	       "can hold a few full-length lines (max_line is 2048)",
	       "t.conf:3: unknown key 'bogus' in section [limits]");
	/* No follow-up complaint about a value that was already rejected. */
	EXPECT("[limits]\nmax_line = 10\nmax_sendq = 4096\n",
	       "t.conf:2: max_line: must be 64..1048576");
}

/* max_per_ip = 0 turns the per-address connection rate off too, unless
 * that is set as well, in either order. */
static void test_per_address_limits_off(void)
{
	struct config *cfg = EXPECT_OK("[limits]\nmax_per_ip = 0\n");
	CHECK_INT(cfg->connect_rate, 0);
	config_unref(cfg);
	cfg = EXPECT_OK("[limits]\nmax_per_ip = 0\nconnect_rate = 5\n");
	CHECK_INT(cfg->connect_rate, 5);
	config_unref(cfg);
	cfg = EXPECT_OK("[limits]\nconnect_rate = 5\nmax_per_ip = 0\n");
	CHECK_INT(cfg->connect_rate, 5);
	config_unref(cfg);
	cfg = EXPECT_OK("[limits]\nmax_per_ip = 3\n");
	CHECK_INT(cfg->connect_rate, 10);
	config_unref(cfg);
}

static void test_sections_and_keys(void)
{
	/* One message per unknown section, at its header; its keys are not
	 * reported again. */
	EXPECT("[bar]\nfoo = 1\nport = 2\n[server]\nport = 3\n", "t.conf:1: unknown section [bar]");
	EXPECT("[server]\nfoo = 1\n", "t.conf:2: unknown key 'foo' in section [server]");
	EXPECT("[server]\nlevel = debug\n",
	       "t.conf:2: unknown key 'level' in section [server] (it belongs in [log])");
	EXPECT("[server]\nserver_name = x\n",
	       "t.conf:2: unknown key 'server_name' in section [server] (it belongs in [irc])");
	EXPECT("[irc]\nmotd = hi\n",
	       "t.conf:2: unknown key 'motd' in section [irc] (it belongs in [server])");
	/* [irc] port is not [server] port: each may be set once. */
	struct config *both = EXPECT_OK("[server]\nport = 1\n[irc]\nport = 2\n");
	if (both) {
		CHECK_INT(both->port, 1);
		CHECK_INT(both->irc_port, 2);
	}
	config_unref(both);
	EXPECT("[irc]\nport = 1\nPort = 2\n",
	       "t.conf:3: duplicate key 'port' in [irc] (first set at line 2)");
	EXPECT("port = 1\n", "t.conf:1: key 'port' before any [section] (it belongs in [server])");
	EXPECT("foo = 1\n", "t.conf:1: key 'foo' before any [section]");
	EXPECT("[server]\nport = 1\nPORT = 2\n",
	       "t.conf:3: duplicate key 'port' in [server] (first set at line 2)");
	EXPECT("[server]\nport = 1\n[log]\n[server]\nport = 2\n",
	       "t.conf:5: duplicate key 'port' in [server] (first set at line 2)");
	EXPECT("[server\nport = 1\n", "t.conf:1: syntax error (missing ']' in section header)");
	EXPECT("[server] port = 1\n",
	       "t.conf:1: syntax error (text after ']'; a section header stands alone)");
	struct config *cfg = EXPECT_OK("[server] ; the server\nport = 1\n");
	config_unref(cfg);
	EXPECT("[server]\n= 1\n", "t.conf:2: syntax error (expected key = value)");
	/* Every syntax error, not only the first one inih would report. */
	EXPECT("[server]\nport 7777\nbind\n\n[log]\nlevel debug\n",
	       "t.conf:2: syntax error (expected key = value)",
	       "t.conf:3: syntax error (expected key = value)",
	       "t.conf:6: syntax error (expected key = value)");
	/* Control characters are shown escaped, never sent to the terminal. */
	EXPECT("[server]\nf\x1b[2Jo = 1\n",
	       "t.conf:2: unknown key 'f\\x1b[2Jo' in section [server]");
}

static void test_many_errors(void)
{
	char *path = xasprintf("%s/errors.conf", data_dir);
	char *prefix = xasprintf("%s:", path);

	expect_path(__LINE__, path, prefix,
		    WANT("3: port: must be 0..65535",
			 "4: bind: must not be empty (:: means every IPv4 and IPv6 address)",
			 "5: max_clients: not a number: 12abc",
			 "6: unknown key 'colour' in section [server]",
			 "7: threads: must be 0..256",
			 "10: max_line: must be 64..1048576",
			 "11: unknown section [bar]",
			 "14: level: must be one of debug, info, notice, warning, error",
			 "15: target: must be one of auto, journal, stderr, syslog"
			 " (a comment after a value starts with ' ;', not '#')",
			 "16: syntax error (expected key = value)",
			 "17: unknown key 'port' in section [log] (it belongs in [server])",
			 "19: ping_timeout: must be 0 or 10..86400",
			 "20: server_name: must be one word of letters, digits, '.' and '-', at most "
			 "63 bytes: my_server"));
	free(prefix);
	free(path);

	/* The example from the docs, word for word. */
	static const char doc_example[] = "# chatd\n\n[server]\nport = 7777\nbind = ::\n\n"
					  "max_clients = 0\n";
	write_file("chatd.conf", doc_example, strlen(doc_example));
	expect_path(__LINE__, "chatd.conf", "", WANT("chatd.conf:7: max_clients: must be 1..1000000"));
	remove_file("chatd.conf");

	/* Past 20 errors the rest are counted, not listed. */
	char *text = xstrdup("[server]\n");
	for (int i = 0; i < 30; i++) {
		char *more = xasprintf("%sk%d = 1\n", text, i);
		free(text);
		text = more;
	}
	const char *want[23];
	char *msgs[21];
	for (int i = 0; i < 20; i++)
		want[i] = msgs[i] = xasprintf("t.conf:%d: unknown key 'k%d' in section [server]",
					      i + 2, i);
	want[20] = msgs[20] = xstrdup("t.conf: ... and 10 more errors");
	want[21] = NULL;
	expect_data(__LINE__, text, strlen(text), want);
	for (int i = 0; i < 21; i++)
		free(msgs[i]);
	free(text);

	EXPECT("[server]\na = 1\nb = 1\nc = 1\nd = 1\ne = 1\nf = 1\ng = 1\nh = 1\ni = 1\nj = 1\n"
	       "k = 1\nl = 1\nm = 1\nn = 1\no = 1\np = 1\nq = 1\nr = 1\ns = 1\nt = 1\nu = 1\n",
	       "t.conf:2: unknown key 'a' in section [server]",
	       "t.conf:3: unknown key 'b' in section [server]",
	       "t.conf:4: unknown key 'c' in section [server]",
	       "t.conf:5: unknown key 'd' in section [server]",
	       "t.conf:6: unknown key 'e' in section [server]",
	       "t.conf:7: unknown key 'f' in section [server]",
	       "t.conf:8: unknown key 'g' in section [server]",
	       "t.conf:9: unknown key 'h' in section [server]",
	       "t.conf:10: unknown key 'i' in section [server]",
	       "t.conf:11: unknown key 'j' in section [server]",
	       "t.conf:12: unknown key 'k' in section [server]",
	       "t.conf:13: unknown key 'l' in section [server]",
	       "t.conf:14: unknown key 'm' in section [server]",
	       "t.conf:15: unknown key 'n' in section [server]",
	       "t.conf:16: unknown key 'o' in section [server]",
	       "t.conf:17: unknown key 'p' in section [server]",
	       "t.conf:18: unknown key 'q' in section [server]",
	       "t.conf:19: unknown key 'r' in section [server]",
	       "t.conf:20: unknown key 's' in section [server]",
	       "t.conf:21: unknown key 't' in section [server]",
	       "t.conf: ... and 1 more error");
}

static void test_long_lines(void)
{
	int max = max_line_len();
	char *long_msg = xasprintf("line too long (max %d bytes; put a long MOTD in motd_file)", max);

	CHECK_INT(max, 197); /* Debian's inih; the shipped config's comments say so */

	/* A line of exactly the maximum fits, with LF or CRLF; one more does not. */
	for (int crlf = 0; crlf <= 1; crlf++) {
		size_t motd_len = (size_t)max - strlen("motd = ");
		char *motd = xmalloc(motd_len + 1);
		memset(motd, 'x', motd_len);
		motd[motd_len] = '\0';

		char *text = xasprintf("[server]\nmotd = %s%s\nport = 1\n", motd, crlf ? "\r" : "");
		struct config *cfg = EXPECT_OK(text);
		if (cfg && cfg->motd_count == 1) {
			CHECK_STR(cfg->motd_lines[0], motd);
			CHECK_INT(cfg->port, 1);
		}
		config_unref(cfg);
		free(text);

		text = xasprintf("[server]\nmotd = %sx%s\nport = 1\n", motd, crlf ? "\r" : "");
		char *want = xasprintf("t.conf:2: %s", long_msg);
		EXPECT(text, want);
		free(want);
		free(text);
		free(motd);
	}

	/* 100 kB on line 3: one message, and the lines after it keep their
	 * numbers and are still parsed. */
	size_t big = 100 * 1024;
	char *text = xmalloc(big + 200);
	size_t len = (size_t)sprintf(text, "[server]\nport = 1\nmotd = ");
	memset(text + len, 'A', big);
	len += big;
	len += (size_t)sprintf(text + len, "\nbind = ::1\nthreads = 999\n\n");
	char *want1 = xasprintf("t.conf:3: %s", long_msg);
	expect_data(__LINE__, text, len, WANT(want1, "t.conf:5: threads: must be 0..256"));

	/* Long lines back to back, and one without '=' (no second "syntax
	 * error" for the same line), then a good key that must still count. */
	len = (size_t)sprintf(text, "[server]\n");
	for (int i = 0; i < 3; i++) {
		memset(text + len, i == 1 ? '=' : 'B', 30000);
		len += 30000;
		text[len++] = '\n';
	}
	len += (size_t)sprintf(text + len, "port = x\n");
	char *want2 = xasprintf("t.conf:2: %s", long_msg);
	char *want3 = xasprintf("t.conf:3: %s", long_msg);
	char *want4 = xasprintf("t.conf:4: %s", long_msg);
	expect_data(__LINE__, text, len,
		    WANT(want2, want3, want4, "t.conf:5: port: not a number: x"));

	/* The last line, without a newline. */
	len = (size_t)sprintf(text, "[server]\nmotd = ");
	memset(text + len, 'C', 5000);
	len += 5000;
	expect_data(__LINE__, text, len, WANT(want2));

	free(want1);
	free(want2);
	free(want3);
	free(want4);
	free(text);
	free(long_msg);
}

static void test_bad_files(void)
{
	char *want;

	/* Missing file, directory, unreadable file: no line number. */
	expect_path(__LINE__, "does-not-exist.conf", "",
		    WANT("does-not-exist.conf: cannot read: No such file or directory"));
	CHECK(mkdir("sub.d", 0755) == 0);
	expect_path(__LINE__, "sub.d", "", WANT("sub.d: cannot read: Is a directory"));
	want = xasprintf("%s: cannot read: Is a directory", tmp_dir);
	expect_path(__LINE__, tmp_dir, "", WANT(want));
	free(want);
	CHECK(rmdir("sub.d") == 0);

	if (geteuid() != 0) { /* root reads anything */
		write_file("secret.conf", "", 0);
		CHECK(chmod("secret.conf", 0) == 0);
		expect_path(__LINE__, "secret.conf", "",
			    WANT("secret.conf: cannot read: Permission denied"));
		remove_file("secret.conf");
	}

	/* A NUL byte: one error for its line, the rest goes on. */
	static const char nul[] = "[server]\nport = 7\0 77\nthreads = x\n";
	expect_data(__LINE__, nul, sizeof(nul) - 1,
		    WANT("t.conf:2: NUL byte in line", "t.conf:3: threads: not a number: x"));
	static const char nul_comment[] = "# \0\n[server]\n";
	expect_data(__LINE__, nul_comment, sizeof(nul_comment) - 1,
		    WANT("t.conf:1: NUL byte in line"));

	/* Binary garbage: a bounded list of clear messages. */
	size_t len = 64 * 1024;
	unsigned char *junk = xmalloc(len);
	unsigned int seed = 12345;
	for (size_t i = 0; i < len; i++) {
		seed = seed * 1103515245 + 12345;
		junk[i] = (unsigned char)(seed >> 16);
	}
	write_file("t.conf", junk, len);
	struct config *cfg = (struct config *)1;
	struct config_errors errs;
	CHECK_INT(config_load("t.conf", &cfg, &errs), -1);
	CHECK(cfg == NULL);
	CHECK_INT(errs.count, 21);
	for (size_t i = 0; i < errs.count; i++) {
		const char *m = errs.messages[i];
		CHECK(strncmp(m, "t.conf:", 7) == 0);
		for (const unsigned char *p = (const unsigned char *)m; *p; p++)
			CHECK(*p >= 0x20 && *p != 0x7f);
	}
	if (errs.count == 21) {
		CHECK(strncmp(errs.messages[20], "t.conf: ... and ", 16) == 0);
		CHECK(strstr(errs.messages[20], " more errors") != NULL);
	}
	config_errors_free(&errs);

	/* Printable garbage: syntax errors, with their lines. */
	EXPECT("GIF89a\nxx yy\n\n[[[\n",
	       "t.conf:1: syntax error (expected key = value)",
	       "t.conf:2: syntax error (expected key = value)",
	       "t.conf:4: syntax error (missing ']' in section header)");

	/* Something that is clearly not a config file, however large. */
	size_t huge = 2 * 1024 * 1024;
	char *zeros = xcalloc(1, huge);
	memset(zeros, '#', huge);
	write_file("t.conf", zeros, huge);
	expect_path(__LINE__, "t.conf", "",
		    WANT("t.conf: larger than 1048576 bytes; is this really the config file?"));
	free(zeros);
	free(junk);

	/* errors may be NULL when the caller only wants to know. */
	cfg = (struct config *)1;
	write_file("t.conf", "[bar]\n", 6);
	CHECK_INT(config_load("t.conf", &cfg, NULL), -1);
	CHECK(cfg == NULL);
}

static void test_motd_file(void)
{
	/* Relative to the config's directory, not to our working directory. */
	char *path = xasprintf("%s/motd/motd.conf", data_dir);
	struct config *cfg = expect_path(__LINE__, path, "", NO_ERRORS);
	if (cfg) {
		CHECK_STR(cfg->motd_file, "motd.txt");
		CHECK_INT(cfg->motd_count, 3);
		if (cfg->motd_count == 3) {
			CHECK_STR(cfg->motd_lines[0], "Welcome to the test server.");
			CHECK_STR(cfg->motd_lines[1], "");
			CHECK_STR(cfg->motd_lines[2], "Be nice.");
		}
	}
	config_unref(cfg);
	free(path);

	/* A config given without a directory: relative to the working directory. */
	write_file("m.txt", "one\r\ntwo", 8);
	cfg = EXPECT_OK("[server]\nmotd_file = m.txt\n");
	if (cfg) {
		CHECK_INT(cfg->motd_count, 2);
		if (cfg->motd_count == 2) {
			CHECK_STR(cfg->motd_lines[0], "one");
			CHECK_STR(cfg->motd_lines[1], "two");
		}
	}
	config_unref(cfg);

	/* An absolute path. */
	char *abs = xasprintf("%s/m.txt", tmp_dir);
	char *text = xasprintf("[server]\nmotd_file = %s\n", abs);
	cfg = EXPECT_OK(text);
	if (cfg)
		CHECK_INT(cfg->motd_count, 2);
	config_unref(cfg);
	free(text);
	free(abs);

	/* An empty file is an empty MOTD. */
	write_file("m.txt", "", 0);
	cfg = EXPECT_OK("[server]\nmotd_file = m.txt\n");
	if (cfg)
		CHECK_INT(cfg->motd_count, 0);
	config_unref(cfg);

	/* Missing: the message names the path we tried and why it failed. */
	char *cfg_path = xasprintf("%s/t.conf", tmp_dir);
	write_file(cfg_path, "[server]\nmotd_file = nope.txt\nport = x\n", 39);
	char *want = xasprintf("%s:2: motd_file: cannot read %s/nope.txt: No such file or directory",
			       cfg_path, tmp_dir);
	char *want2 = xasprintf("%s:3: port: not a number: x", cfg_path);
	expect_path(__LINE__, cfg_path, "", WANT(want, want2));
	free(want);
	free(want2);

	/* No directory part in "t.conf": the path is used as given. */
	EXPECT("[server]\nmotd_file = .\n", "t.conf:2: motd_file: cannot read .: Is a directory");
	EXPECT("[server]\nmotd_file = /dev/null/x\n",
	       "t.conf:2: motd_file: cannot read /dev/null/x: Not a directory");
	EXPECT("[server]\nmotd_file = /dev/zero\n",
	       "t.conf:2: motd_file: /dev/zero: not a regular file");

	/* Size: 64 KiB is fine, one byte more is not. */
	char *buf = xmalloc(CONFIG_MOTD_FILE_MAX + 1);
	memset(buf, 'm', CONFIG_MOTD_FILE_MAX + 1);
	for (int i = 1; i < 100; i++)
		buf[i * 600] = '\n';
	write_file("m.txt", buf, CONFIG_MOTD_FILE_MAX);
	cfg = EXPECT_OK("[server]\nmotd_file = m.txt\n");
	if (cfg)
		CHECK_INT(cfg->motd_count, 100);
	config_unref(cfg);
	write_file("m.txt", buf, CONFIG_MOTD_FILE_MAX + 1);
	EXPECT("[server]\nmotd_file = m.txt\n", "t.conf:2: motd_file: m.txt: more than 65536 bytes");

	/* Lines: 100 (with or without a final newline) are fine, 101 are not. */
	for (int i = 0; i < 101; i++)
		buf[i * 2] = 'x', buf[i * 2 + 1] = '\n';
	write_file("m.txt", buf, 200);
	cfg = EXPECT_OK("[server]\nmotd_file = m.txt\n");
	if (cfg)
		CHECK_INT(cfg->motd_count, 100);
	config_unref(cfg);
	write_file("m.txt", buf, 199);
	cfg = EXPECT_OK("[server]\nmotd_file = m.txt\n");
	if (cfg)
		CHECK_INT(cfg->motd_count, 100);
	config_unref(cfg);
	write_file("m.txt", buf, 201);
	EXPECT("[server]\nmotd_file = m.txt\n", "t.conf:2: motd_file: m.txt: more than 100 lines");

	/* It must fit in max_sendq with room for the greeting: 100 lines of
	 * 99 bytes are 10200 bytes as sent ("# " and "\n" each). The error
	 * goes to the line of whichever key came last. */
	for (int i = 0; i < 100; i++) {
		memset(buf + i * 100, 'm', 99);
		buf[i * 100 + 99] = '\n';
	}
	write_file("m.txt", buf, 10000);
	EXPECT("[server]\nmotd_file = m.txt\n[limits]\nmax_sendq = 10455\n",
	       "t.conf:4: max_sendq: the MOTD is 10200 bytes as sent, more than max_sendq - 256 = "
	       "10199: no client could be sent it; shorten the MOTD or raise max_sendq");
	EXPECT("[limits]\nmax_sendq = 10455\n[server]\nmotd_file = m.txt\n",
	       "t.conf:4: motd_file: the MOTD is 10200 bytes as sent, more than max_sendq - 256 = "
	       "10199: no client could be sent it; shorten the MOTD or raise max_sendq");
	cfg = EXPECT_OK("[server]\nmotd_file = m.txt\n[limits]\nmax_sendq = 10456\n");
	config_unref(cfg);
	/* As sent means cleaned: an invalid byte becomes a 3-byte U+FFFD. */
	memset(buf, 0xff, 1300);
	write_file("m.txt", buf, 1300);
	EXPECT("[limits]\nmax_line = 64\nmax_sendq = 4096\n[server]\nmotd_file = m.txt\n",
	       "t.conf:5: motd_file: the MOTD is 3903 bytes as sent, more than max_sendq - 256 = "
	       "3840: no client could be sent it; shorten the MOTD or raise max_sendq");
	write_file("m.txt", "ok\nbad\0line\n", 12);
	EXPECT("[server]\nmotd_file = m.txt\n", "t.conf:2: motd_file: m.txt: NUL byte in line 2");

	/* Read at every load: a changed file shows in the next config. */
	write_file("m.txt", "first\n", 6);
	cfg = EXPECT_OK("[server]\nmotd_file = m.txt\n");
	if (cfg)
		CHECK_STR(cfg->motd_lines[0], "first");
	config_unref(cfg);
	write_file("m.txt", "second\n", 7);
	cfg = EXPECT_OK("[server]\nmotd_file = m.txt\n");
	if (cfg)
		CHECK_STR(cfg->motd_lines[0], "second");
	config_unref(cfg);

	remove_file("m.txt");
	remove_file(cfg_path);
	free(cfg_path);
	free(buf);
}

static void test_refcount(void)
{
	struct config *cfg = EXPECT_OK("[server]\nport = 5\n");

	if (!cfg)
		return;
	CHECK_INT(atomic_load(&cfg->refcount), 1);
	CHECK(config_ref(cfg) == cfg);
	CHECK_INT(atomic_load(&cfg->refcount), 2);
	config_unref(cfg);
	CHECK_INT(atomic_load(&cfg->refcount), 1);
	CHECK_INT(cfg->port, 5);
	config_unref(cfg); /* freed: valgrind would see a leak or a bad read */

	config_unref(NULL);
	CHECK(config_ref(NULL) == NULL);

	struct config_errors errs = { 0 };
	config_errors_free(&errs);
	config_errors_free(NULL);
}

static void test_worker_count(void)
{
	struct config *cfg = config_new_default();
	cpu_set_t set;

	int n = config_worker_count(cfg);
	CHECK(n >= 1 && n <= CONFIG_MAX_THREADS);
	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) <= CONFIG_MAX_THREADS)
		CHECK_INT(n, CPU_COUNT(&set));
	cfg->threads = 1;
	CHECK_INT(config_worker_count(cfg), 1);
	cfg->threads = CONFIG_MAX_THREADS;
	CHECK_INT(config_worker_count(cfg), CONFIG_MAX_THREADS);
	config_unref(cfg);
}

static char *find_data_dir(void)
{
	const char *env = getenv("CHATD_TEST_DATA");
	char *rel = NULL, *abs;

	if (!env || !*env) {
		/* Run by hand from the source tree: next to this file. */
		const char *slash = strrchr(__FILE__, '/');
		rel = slash ? xasprintf("%.*s/data", (int)(slash - __FILE__), __FILE__)
			    : xstrdup("data");
		env = rel;
	}
	abs = realpath(env, NULL);
	if (!abs) {
		fprintf(stderr, "test data not found at %s (set CHATD_TEST_DATA): %s\n", env,
			strerror(errno));
		exit(2);
	}
	free(rel);
	return abs;
}

int main(void)
{
	char template[] = "/tmp/test_config.XXXXXX";

	data_dir = find_data_dir();
	tmp_dir = mkdtemp(template);
	if (!tmp_dir || chdir(tmp_dir) < 0) {
		fprintf(stderr, "cannot make a scratch directory: %s\n", strerror(errno));
		return 2;
	}

	test_defaults();
	test_shipped();
	test_good_files();
	test_enums();
	test_ranges();
	test_strings();
	test_irc_strings();
	test_irc_port_clash();
	test_tls();
	test_store_and_history();
	test_web();
	test_control_and_metrics();
	test_cluster();
	test_operators();
	test_irc_unusable_host_name();
	test_sendq_vs_line();
	test_per_address_limits_off();
	test_sections_and_keys();
	test_many_errors();
	test_long_lines();
	test_bad_files();
	test_motd_file();
	test_refcount();
	test_worker_count();

	remove_file("t.conf");
	if (chdir("/") < 0 || rmdir(tmp_dir) < 0)
		fprintf(stderr, "cannot remove %s: %s\n", tmp_dir, strerror(errno));
	free(data_dir);
	return unit_finish("test_config");
}
