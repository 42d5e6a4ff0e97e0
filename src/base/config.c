#include "autoconf.h"

#include "base/config.h"

#include <arpa/inet.h>
#include <crypt.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/text.h"
#include "base/util.h"

#define DEFAULT_MOTD "Welcome to chatd!"

/* A garbage file must not bury the one useful message under thousands. */
#define ERRORS_MAX 20

/* A real config is a few hundred bytes; this keeps "chatd -c /dev/zero" or
 * a mistyped path to a disk image from reading forever. */
#define CONFIG_FILE_MAX (1024 * 1024)

enum section {
	SEC_NONE = -1,    /* before the first [section] header */
	SEC_UNKNOWN = -2, /* after a header that was reported as unknown or broken */
	SEC_SERVER = 0,
	SEC_LIMITS,
	SEC_LOG,
	SEC_IRC,
	SEC_TLS,
	SEC_STORE,
	SEC_HISTORY,
	SEC_ACCOUNTS,
	SEC_WEB,
	SEC_CONTROL,
	SEC_METRICS,
	SEC_CLUSTER,
	SEC_OPERATORS,
};

static const char *const section_names[] = {
	[SEC_SERVER] = "server",
	[SEC_LIMITS] = "limits",
	[SEC_LOG] = "log",
	[SEC_IRC] = "irc",
	[SEC_TLS] = "tls",
	[SEC_STORE] = "store",
	[SEC_HISTORY] = "history",
	[SEC_ACCOUNTS] = "accounts",
	[SEC_WEB] = "web",
	[SEC_CONTROL] = "control",
	[SEC_METRICS] = "metrics",
	[SEC_CLUSTER] = "cluster",
	[SEC_OPERATORS] = "operators",
};

enum key_id {
	KEY_PORT,
	KEY_TLS_PORT,
	KEY_BIND,
	KEY_MAX_CLIENTS,
	KEY_THREADS,
	KEY_IO_URING,
	KEY_MOTD,
	KEY_MOTD_FILE,
	KEY_MAX_LINE,
	KEY_MAX_SENDQ,
	KEY_RATE,
	KEY_BURST,
	KEY_MAX_PER_IP,
	KEY_IDLE_TIMEOUT,
	KEY_LINE_TIMEOUT,
	KEY_KEEPALIVE,
	KEY_ANNOUNCE_MAX,
	KEY_ANNOUNCE_RATE,
	KEY_CONNECT_RATE,
	KEY_HANDSHAKE_TIMEOUT,
	KEY_LEVEL,
	KEY_TARGET,
	KEY_PER_ADDRESS_BURST,
	KEY_IRC_PORT,
	KEY_IRC_TLS_PORT,
	KEY_IRC_BIND,
	KEY_IRC_SERVER_NAME,
	KEY_IRC_PASSWORD,
	KEY_IRC_NETWORK,
	KEY_IRC_PING_TIMEOUT,
	KEY_IRC_STS_DURATION,
	KEY_TLS_CERTIFICATE,
	KEY_TLS_KEY,
	KEY_TLS_CLIENT_CA,
	KEY_STORE_PATH,
	KEY_STORE_COMMIT_INTERVAL,
	KEY_HISTORY_KEEP,
	KEY_HISTORY_MAX_AGE,
	KEY_HISTORY_REPLAY,
	KEY_ACCOUNTS_GRACE,
	KEY_WEB_PORT,
	KEY_WEB_TLS_PORT,
	KEY_WEB_BIND,
	KEY_WEB_ROOT,
	KEY_WEB_ALLOWED_ORIGINS,
	KEY_WEB_TRUSTED_PROXIES,
	KEY_CONTROL_SOCKET,
	KEY_CONTROL_GROUP,
	KEY_METRICS_LISTEN,
	KEY_CLUSTER_NATS,
	KEY_CLUSTER_NODE,
	KEY_CLUSTER_CREDENTIALS,
	KEY_CLUSTER_CA,
	KEY_CLUSTER_REPLICAS,
	KEY_COUNT
};

struct key;
struct loader;

/* Stores VALUE into ld->cfg; returns NULL or the complaint (malloc'd), which
 * the caller prefixes with "FILE:LINE: KEY: ". */
typedef char *parse_fn(struct loader *ld, const struct key *key, const char *value);

struct key {
	enum section section;
	const char *name;
	parse_fn *parse;
	long min, max;  /* numbers only */
	bool or_zero;   /* numbers only: 0 (off) is allowed too, below min */
	size_t offset;  /* of the field in struct config: numbers, yes/no */
};

struct error {
	int line; /* 0: about the whole file */
	char *msg;
};

struct loader {
	const char *path;
	struct config *cfg;
	FILE *file;
	int read_errno;
	size_t bytes;
	bool too_big;

	int lineno;
	enum section section;
	char *buf; /* one physical line, bounded; see read_line() */
	size_t bufsize;

	int key_line[KEY_COUNT]; /* where each key was set; 0 = not set */
	bool key_bad[KEY_COUNT]; /* its value was rejected */
	char *motd;              /* the motd value; NULL = not given */

	struct error errors[ERRORS_MAX];
	size_t nerrors;
	size_t more_errors; /* found beyond ERRORS_MAX */
};

static parse_fn parse_int, parse_size, parse_bind, parse_motd, parse_motd_file, parse_level,
	parse_target, parse_bool, parse_irc_bind, parse_server_name, parse_password,
	parse_network, parse_path, parse_duration, parse_web_bind, parse_origins, parse_proxies,
	parse_control_socket, parse_control_group, parse_metrics_listen, parse_cluster_nats,
	parse_cluster_node;
static char *parse_operator(struct loader *ld, const char *name, const char *value);

#define NUM(id, sec, name, fn, lo, hi, field) \
	[id] = { sec, name, fn, lo, hi, false, offsetof(struct config, field) }
/* 0 or LO..HI */
#define NUM0(id, sec, name, fn, lo, hi, field) \
	[id] = { sec, name, fn, lo, hi, true, offsetof(struct config, field) }
#define STR(id, sec, name, fn) [id] = { sec, name, fn, 0, 0, false, 0 }
/* A file's path; empty: not set. */
#define PATH(id, sec, name, field) \
	[id] = { sec, name, parse_path, 0, 0, false, offsetof(struct config, field) }

static const struct key keys[KEY_COUNT] = {
	NUM(KEY_PORT, SEC_SERVER, "port", parse_int, 0, 65535, port),
	NUM(KEY_TLS_PORT, SEC_SERVER, "tls_port", parse_int, 0, 65535, tls_port),
	STR(KEY_BIND, SEC_SERVER, "bind", parse_bind),
	NUM(KEY_MAX_CLIENTS, SEC_SERVER, "max_clients", parse_int, 1, CONFIG_MAX_CLIENTS_LIMIT,
	    max_clients),
	NUM(KEY_THREADS, SEC_SERVER, "threads", parse_int, 0, CONFIG_MAX_THREADS, threads),
	NUM(KEY_IO_URING, SEC_SERVER, "io_uring", parse_bool, 0, 1, io_uring),
	STR(KEY_MOTD, SEC_SERVER, "motd", parse_motd),
	STR(KEY_MOTD_FILE, SEC_SERVER, "motd_file", parse_motd_file),
	NUM(KEY_MAX_LINE, SEC_LIMITS, "max_line", parse_size, CONFIG_MAX_LINE_MIN,
	    CONFIG_MAX_LINE_MAX, max_line),
	NUM(KEY_MAX_SENDQ, SEC_LIMITS, "max_sendq", parse_size, 4096, 1073741824, max_sendq),
	NUM(KEY_RATE, SEC_LIMITS, "rate", parse_int, 0, 1000000, rate),
	NUM(KEY_BURST, SEC_LIMITS, "burst", parse_int, 1, 1000000, burst),
	NUM(KEY_MAX_PER_IP, SEC_LIMITS, "max_per_ip", parse_int, 0, CONFIG_MAX_CLIENTS_LIMIT, max_per_ip),
	NUM(KEY_IDLE_TIMEOUT, SEC_LIMITS, "idle_timeout", parse_int, 0, 31536000, idle_timeout),
	NUM(KEY_LINE_TIMEOUT, SEC_LIMITS, "line_timeout", parse_int, 1, 3600, line_timeout),
	NUM(KEY_KEEPALIVE, SEC_LIMITS, "keepalive", parse_int, 0, 32767, keepalive),
	NUM(KEY_ANNOUNCE_MAX, SEC_LIMITS, "announce_max", parse_int, 0, CONFIG_MAX_CLIENTS_LIMIT,
	    announce_max),
	NUM(KEY_ANNOUNCE_RATE, SEC_LIMITS, "announce_rate", parse_int, 0, 1000000, announce_rate),
	NUM(KEY_CONNECT_RATE, SEC_LIMITS, "connect_rate", parse_int, 0, 1000000, connect_rate),
	NUM(KEY_HANDSHAKE_TIMEOUT, SEC_LIMITS, "handshake_timeout", parse_int, 1, 3600,
	    handshake_timeout),
	STR(KEY_LEVEL, SEC_LOG, "level", parse_level),
	STR(KEY_TARGET, SEC_LOG, "target", parse_target),
	NUM(KEY_PER_ADDRESS_BURST, SEC_LOG, "per_address_burst", parse_int, 0, 1000000,
	    log_per_address_burst),
	NUM(KEY_IRC_PORT, SEC_IRC, "port", parse_int, 0, 65535, irc_port),
	NUM(KEY_IRC_TLS_PORT, SEC_IRC, "tls_port", parse_int, 0, 65535, irc_tls_port),
	STR(KEY_IRC_BIND, SEC_IRC, "bind", parse_irc_bind),
	STR(KEY_IRC_SERVER_NAME, SEC_IRC, "server_name", parse_server_name),
	STR(KEY_IRC_PASSWORD, SEC_IRC, "password", parse_password),
	STR(KEY_IRC_NETWORK, SEC_IRC, "network", parse_network),
	NUM0(KEY_IRC_PING_TIMEOUT, SEC_IRC, "ping_timeout", parse_int, CONFIG_IRC_PING_TIMEOUT_MIN,
	     CONFIG_IRC_PING_TIMEOUT_MAX, irc_ping_timeout),
	NUM(KEY_IRC_STS_DURATION, SEC_IRC, "sts_duration", parse_int, 0, 31536000, irc_sts_duration),
	PATH(KEY_TLS_CERTIFICATE, SEC_TLS, "certificate", tls_certificate),
	PATH(KEY_TLS_KEY, SEC_TLS, "key", tls_key),
	PATH(KEY_TLS_CLIENT_CA, SEC_TLS, "client_ca", tls_client_ca),
	PATH(KEY_STORE_PATH, SEC_STORE, "path", store_path),
	NUM(KEY_STORE_COMMIT_INTERVAL, SEC_STORE, "commit_interval", parse_int, 1, 10000,
	    store_commit_interval),
	NUM(KEY_HISTORY_KEEP, SEC_HISTORY, "keep", parse_int, 0, CONFIG_HISTORY_KEEP_MAX, history_keep),
	NUM0(KEY_HISTORY_MAX_AGE, SEC_HISTORY, "max_age", parse_duration, 60, 315360000,
	     history_max_age),
	NUM(KEY_HISTORY_REPLAY, SEC_HISTORY, "replay", parse_int, 0, CONFIG_HISTORY_REPLAY_MAX,
	    history_replay),
	NUM(KEY_ACCOUNTS_GRACE, SEC_ACCOUNTS, "grace", parse_int, 1, 3600, accounts_grace),
	NUM(KEY_WEB_PORT, SEC_WEB, "port", parse_int, 0, 65535, web_port),
	NUM(KEY_WEB_TLS_PORT, SEC_WEB, "tls_port", parse_int, 0, 65535, web_tls_port),
	STR(KEY_WEB_BIND, SEC_WEB, "bind", parse_web_bind),
	PATH(KEY_WEB_ROOT, SEC_WEB, "root", web_root),
	STR(KEY_WEB_ALLOWED_ORIGINS, SEC_WEB, "allowed_origins", parse_origins),
	STR(KEY_WEB_TRUSTED_PROXIES, SEC_WEB, "trusted_proxies", parse_proxies),
	STR(KEY_CONTROL_SOCKET, SEC_CONTROL, "socket", parse_control_socket),
	STR(KEY_CONTROL_GROUP, SEC_CONTROL, "group", parse_control_group),
	STR(KEY_METRICS_LISTEN, SEC_METRICS, "listen", parse_metrics_listen),
	STR(KEY_CLUSTER_NATS, SEC_CLUSTER, "nats", parse_cluster_nats),
	STR(KEY_CLUSTER_NODE, SEC_CLUSTER, "node", parse_cluster_node),
	PATH(KEY_CLUSTER_CREDENTIALS, SEC_CLUSTER, "credentials", cluster_credentials),
	PATH(KEY_CLUSTER_CA, SEC_CLUSTER, "ca", cluster_ca),
	NUM(KEY_CLUSTER_REPLICAS, SEC_CLUSTER, "replicas", parse_int, 1, 5, cluster_replicas),
};

static const struct {
	const char *name;
	enum log_target target;
} target_names[] = {
	{ "auto", LOG_TARGET_AUTO },
	{ "journal", LOG_TARGET_JOURNAL },
	{ "stderr", LOG_TARGET_STDERR },
	{ "syslog", LOG_TARGET_SYSLOG },
};

/* ---- errors ------------------------------------------------------------ */

/* Messages end up on a terminal or in the journal, and may quote bytes of a
 * binary file: escape control characters so they cannot do damage. */
static char *escape_controls(const char *s)
{
	char *out = xmalloc(strlen(s) * 4 + 1), *o = out;

	size_t left = strlen(s);
	while (*s) {
		unsigned char c = (unsigned char)*s;
		size_t n = c >= 0x80 ? text_utf8_length(s, left) : 1;
		if (c < 0x20 || c == 0x7f || n == 0) {
			/* Invalid UTF-8 too: the journal keeps a message with it as
			 * a blob that journalctl does not show. */
			o += sprintf(o, "\\x%02x", c);
			n = 1;
		} else {
			memcpy(o, s, n);
			o += n;
		}
		s += n;
		left -= n;
	}
	*o = '\0';
	return out;
}

/* Keeps the errors sorted by line, as checks made after parsing (motd_file,
 * max_sendq against max_line) belong among the others, and keeps only the
 * first ERRORS_MAX. */
static void add_error(struct loader *ld, int line, const char *fmt, ...) PRINTF_LIKE(3, 4);
static void add_error(struct loader *ld, int line, const char *fmt, ...)
{
	size_t pos = ld->nerrors;
	va_list ap;
	char *msg, *full;

	while (pos > 0 && ld->errors[pos - 1].line > line)
		pos--;
	if (pos == ERRORS_MAX) {
		ld->more_errors++;
		return;
	}
	if (ld->nerrors == ERRORS_MAX) {
		free(ld->errors[ERRORS_MAX - 1].msg);
		ld->nerrors--;
		ld->more_errors++;
	}

	va_start(ap, fmt);
	int n = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (n < 0)
		abort(); /* out of memory, as in xasprintf() */
	if (line > 0)
		full = xasprintf("%s:%d: %s", ld->path, line, msg);
	else
		full = xasprintf("%s: %s", ld->path, msg);
	free(msg);

	memmove(&ld->errors[pos + 1], &ld->errors[pos], (ld->nerrors - pos) * sizeof(ld->errors[0]));
	ld->errors[pos].line = line;
	ld->errors[pos].msg = escape_controls(full);
	ld->nerrors++;
	free(full);
}

static bool has_error_at(const struct loader *ld, int line)
{
	for (size_t i = 0; i < ld->nerrors; i++)
		if (ld->errors[i].line == line)
			return true;
	return false;
}

/* inih only knows ';' for comments after a value; "port = 7777 # web" is a
 * classic, so say so when a value looks like that. */
static const char *comment_hint(const char *value)
{
	const char *hash = strchr(value, '#');

	if (hash && (hash == value || isspace((unsigned char)hash[-1])))
		return " (a comment after a value starts with ' ;', not '#')";
	return "";
}

/* ---- values ------------------------------------------------------------ */

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

static char *parse_number(const struct key *key, const char *value, long *ret)
{
	long v;
	const char *zero = key->or_zero ? "0 or " : "";

	if (parse_long(value, &v) && ((v >= key->min && v <= key->max) || (key->or_zero && v == 0))) {
		*ret = v;
		return NULL;
	}
	if (!*value)
		return xasprintf("missing value (must be %s%ld..%ld)", zero, key->min, key->max);
	/* "-1" and "99999999999999999999" are numbers, just not acceptable ones. */
	if (all_digits(value) || (value[0] == '-' && all_digits(value + 1)))
		return xasprintf("must be %s%ld..%ld", zero, key->min, key->max);
	return xasprintf("not a number: %s%s", value, comment_hint(value));
}

static char *parse_int(struct loader *ld, const struct key *key, const char *value)
{
	long v;
	char *err = parse_number(key, value, &v);

	if (!err)
		*(int *)(void *)((char *)ld->cfg + key->offset) = (int)v;
	return err;
}

/* Seconds, or a number with a unit: s, m (minutes), h, d (days). */
static char *parse_duration(struct loader *ld, const struct key *key, const char *value)
{
	static const char units[] = "smhd";
	static const long seconds[] = { 1, 60, 3600, 86400 };
	size_t len = strlen(value);
	long scale = 1, v;
	char number[32];

	const char *unit = len > 1 ? strchr(units, value[len - 1]) : NULL;
	if (unit && *unit) {
		scale = seconds[unit - units];
		len--;
	}
	if (!*value)
		return xasprintf("missing value (a number of seconds, or of m, h or d: 30d)");
	if (len >= sizeof(number))
		return xasprintf("not a duration: %s", value);
	memcpy(number, value, len);
	number[len] = '\0';
	if (!parse_long(number, &v))
		return xasprintf("not a duration: %s (a number of seconds, or of m, h or d: 30d)%s",
				 value, comment_hint(value));
	if (v < 0 || v > key->max / scale || (v * scale < key->min && !(key->or_zero && v == 0)))
		return xasprintf("must be %s%lds..%lds (%ld days), or that many m, h or d",
				 key->or_zero ? "0 or " : "", key->min, key->max, key->max / 86400);
	*(int *)(void *)((char *)ld->cfg + key->offset) = (int)(v * scale);
	return NULL;
}

static char *parse_size(struct loader *ld, const struct key *key, const char *value)
{
	long v;
	char *err = parse_number(key, value, &v);

	if (!err)
		*(size_t *)(void *)((char *)ld->cfg + key->offset) = (size_t)v;
	return err;
}

/* NULL, or what is wrong with VALUE as a bind address (malloc'd). */
static char *address_problem(const char *value)
{
	for (const char *p = value; *p; p++)
		if (isspace((unsigned char)*p))
			return xasprintf("must be one address or host name, without spaces: %s%s", value,
					 comment_hint(value));
	return NULL;
}

static char *parse_bind(struct loader *ld, const struct key *key, const char *value)
{
	(void)key;
	if (!*value)
		return xstrdup("must not be empty (:: means every IPv4 and IPv6 address)");
	char *err = address_problem(value);
	if (err)
		return err;
	free(ld->cfg->bind);
	ld->cfg->bind = xstrdup(value);
	return NULL;
}

/* Empty: the [server] bind. */
/* An optional bind ([irc], [web]): empty means the [server] one. */
static char *set_optional_bind(char **field, const char *value)
{
	char *err = *value ? address_problem(value) : NULL;
	if (err)
		return err;
	free(*field);
	*field = *value ? xstrdup(value) : NULL;
	return NULL;
}

static char *parse_irc_bind(struct loader *ld, const struct key *key, const char *value)
{
	(void)key;
	return set_optional_bind(&ld->cfg->irc_bind, value);
}

static char *parse_web_bind(struct loader *ld, const struct key *key, const char *value)
{
	(void)key;
	return set_optional_bind(&ld->cfg->web_bind, value);
}


/* VALUE's space-separated words, each checked by CHECK (NULL: fine, else
 * the complaint), into *RET_WORDS (malloc'd) and *RET_COUNT. */
static char *split_words(const char *value, size_t max, char *(*check)(const char *word),
			 char ***ret_words, size_t *ret_count)
{
	char **words = NULL;
	size_t count = 0;
	const char *p = value;
	while (*p) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		const char *start = p;
		while (*p && *p != ' ' && *p != '\t')
			p++;
		char *word = xasprintf("%.*s", (int)(p - start), start);
		char *why = count == max ? xasprintf("at most %zu entries", max) : check(word);
		if (why) {
			free(word);
			for (size_t i = 0; i < count; i++)
				free(words[i]);
			free(words);
			return why;
		}
		words = xrealloc(words, (count + 1) * sizeof(*words));
		words[count++] = word;
	}
	*ret_words = words;
	*ret_count = count;
	return NULL;
}

static void free_words(char **words, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(words[i]);
	free(words);
}

/* "*", or scheme://host[:port] as a browser's Origin header has it. */
static char *check_origin(const char *word)
{
	if (strcmp(word, "*") == 0)
		return NULL;
	const char *host = strncmp(word, "http://", 7) == 0 ? word + 7 :
			   strncmp(word, "https://", 8) == 0 ? word + 8 : NULL;
	if (!host || !*host || strpbrk(host, "/?#@ "))
		return xasprintf("%s is not an origin: write it as the browser sends it, "
				 "https://chat.example.org or http://host:8080 (no path), or *", word);
	return NULL;
}

static char *parse_origins(struct loader *ld, const struct key *key, const char *value)
{
	(void)key;
	char **words;
	size_t count;
	char *why = split_words(value, CONFIG_WEB_LIST_MAX, check_origin, &words, &count);
	if (why)
		return why;
	for (size_t i = 0; i < count; i++)
		ascii_lower(words[i], words[i], strlen(words[i]) + 1);
	free_words(ld->cfg->web_origins, ld->cfg->web_origin_count);
	ld->cfg->web_origins = words;
	ld->cfg->web_origin_count = count;
	return NULL;
}

bool config_cidr_parse(const char *text, struct config_cidr *ret)
{
	char addr[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(text, '/');
	size_t n = slash ? (size_t)(slash - text) : strlen(text);
	if (n == 0 || n >= sizeof(addr))
		return false;
	memcpy(addr, text, n);
	addr[n] = '\0';
	int max;
	memset(ret, 0, sizeof(*ret));
	struct in_addr v4;
	if (inet_pton(AF_INET, addr, &v4) == 1) {
		ret->bytes[10] = ret->bytes[11] = 0xff;
		memcpy(ret->bytes + 12, &v4, 4);
		max = 32;
	} else if (inet_pton(AF_INET6, addr, ret->bytes) == 1) {
		max = 128;
	} else {
		return false;
	}
	int prefix = max;
	if (slash) {
		char *end;
		long v = strtol(slash + 1, &end, 10);
		if (!slash[1] || *end || v < 0 || v > max)
			return false;
		prefix = (int)v;
	}
	ret->prefix = prefix + (max == 32 ? 96 : 0);
	return true;
}

bool config_cidr_contains(const struct config_cidr *c, const uint8_t addr[16])
{
	int bits = c->prefix;
	for (int i = 0; i < 16 && bits > 0; i++, bits -= 8) {
		uint8_t mask = bits >= 8 ? 0xff : (uint8_t)(0xff << (8 - bits));
		if ((addr[i] & mask) != (c->bytes[i] & mask))
			return false;
	}
	return true;
}

static char *check_cidr(const char *word)
{
	struct config_cidr c;
	if (!config_cidr_parse(word, &c))
		return xasprintf("%s is not an address or network (192.0.2.10, 10.0.0.0/8, ::1, "
				 "fd00::/8)", word);
	return NULL;
}

static char *parse_proxies(struct loader *ld, const struct key *key, const char *value)
{
	(void)key;
	char **words;
	size_t count;
	char *why = split_words(value, CONFIG_WEB_LIST_MAX, check_cidr, &words, &count);
	if (why)
		return why;
	free(ld->cfg->web_proxies);
	ld->cfg->web_proxies = xcalloc(count ? count : 1, sizeof(*ld->cfg->web_proxies));
	for (size_t i = 0; i < count; i++)
		config_cidr_parse(words[i], &ld->cfg->web_proxies[i]);
	ld->cfg->web_proxy_count = count;
	free_words(words, count);
	return NULL;
}

/* Not isalnum(): the same whatever the locale. */
static bool ascii_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* IRC puts the server's name in front of every line it sends (":name 001
 * nick ..."), as one word a client can tell from a nick: the characters of a
 * host name, as long as RFC 2812 allows. */
static bool server_name_valid(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > CONFIG_IRC_SERVER_NAME_MAX)
		return false;
	for (const char *p = name; *p; p++)
		if (!ascii_alnum(*p) && *p != '.' && *p != '-')
			return false;
	return true;
}

#define SERVER_NAME_RULE "one word of letters, digits, '.' and '-', at most 63 bytes"

/* The host name, as the default server name: returns it (malloc'd) or NULL
 * and, in *ret_why when not NULL, why it cannot be one (malloc'd). */
static char *host_server_name(char **ret_why)
{
	char host[256]; /* HOST_NAME_MAX is 64 */

	if (ret_why)
		*ret_why = NULL;
	if (gethostname(host, sizeof(host)) < 0) {
		if (ret_why)
			*ret_why = xasprintf("the host name cannot be read (%s)", strerror(errno));
		return NULL;
	}
	host[sizeof(host) - 1] = '\0'; /* POSIX leaves a cut name unterminated */
	if (!server_name_valid(host)) {
		if (ret_why)
			*ret_why = xasprintf("the host name \"%s\" cannot be one (" SERVER_NAME_RULE ")",
					     host);
		return NULL;
	}
	return xstrdup(host);
}

/* Empty: the host name. */
static char *parse_server_name(struct loader *ld, const struct key *key, const char *value)
{
	(void)key;
	if (!*value)
		return NULL; /* the default stays; finish() checks it */
	if (!server_name_valid(value))
		return xasprintf("must be " SERVER_NAME_RULE ": %s%s", value, comment_hint(value));
	free(ld->cfg->irc_server_name);
	ld->cfg->irc_server_name = xstrdup(value);
	return NULL;
}

/* Empty: no password. Clients send it as one word of a PASS command, and
 * one that starts with ':' reads differently sent bare and as the last
 * parameter. The value is never quoted back: error messages reach the log. */
static char *parse_password(struct loader *ld, const struct key *key, const char *value)
{
	(void)key;
	size_t len = strlen(value);
	bool ok = len <= CONFIG_IRC_PASSWORD_MAX && value[0] != ':';

	for (const char *p = value; *p && ok; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			ok = false;
	if (!ok)
		return xasprintf("must be one word of at most %d bytes, without spaces or control "
				 "characters, not starting with ':'", CONFIG_IRC_PASSWORD_MAX);
	free(ld->cfg->irc_password);
	ld->cfg->irc_password = len ? xstrdup(value) : NULL;
	return NULL;
}

/* One token of ISUPPORT's NETWORK=, which clients show as the network's name. */
static char *parse_network(struct loader *ld, const struct key *key, const char *value)
{
	(void)key;
	size_t len = strlen(value);
	bool ok = len > 0 && len <= CONFIG_IRC_NETWORK_MAX;

	for (const char *p = value; *p && ok; p++)
		if (!ascii_alnum(*p) && *p != '.' && *p != '-' && *p != '_')
			ok = false;
	if (!ok)
		return xasprintf("must be one word of letters, digits, '.', '-' and '_', at most %d "
				 "bytes: %s%s", CONFIG_IRC_NETWORK_MAX, value, comment_hint(value));
	free(ld->cfg->irc_network);
	ld->cfg->irc_network = xstrdup(value);
	return NULL;
}

/* Relative to the config file, so a config and the files it names can move
 * together and the result does not depend on the daemon's working
 * directory. */
static char *resolve_path(const char *config_path, const char *file)
{
	const char *slash = strrchr(config_path, '/');

	if (file[0] == '/' || !slash)
		return xstrdup(file);
	if (slash == config_path)
		return xasprintf("/%s", file);
	return xasprintf("%.*s/%s", (int)(slash - config_path), config_path, file);
}

static char *parse_path(struct loader *ld, const struct key *key, const char *value)
{
	char **field = (char **)(void *)((char *)ld->cfg + key->offset);
	free(*field);
	*field = *value ? resolve_path(ld->path, value) : NULL;
	return NULL;
}

/* Empty: no control socket (unlike a PATH, where empty is the default). */
static char *parse_control_socket(struct loader *ld, const struct key *key, const char *value)
{
	(void)key;
	if (strlen(value) >= CONFIG_SOCKET_PATH_MAX)
		return xasprintf("too long for a socket's path (at most %d bytes)",
				 CONFIG_SOCKET_PATH_MAX - 1);
	free(ld->cfg->control_socket);
	ld->cfg->control_socket = *value ? resolve_path(ld->path, value) : xstrdup("");
	if (strlen(ld->cfg->control_socket) >= CONFIG_SOCKET_PATH_MAX)
		return xasprintf("too long for a socket's path once made absolute (at most %d bytes)",
				 CONFIG_SOCKET_PATH_MAX - 1);
	return NULL;
}

/* A group name as useradd(8) takes them: empty is root alone. */
static char *parse_control_group(struct loader *ld, const struct key *key, const char *value)
{
	(void)key;
	size_t len = strlen(value);
	if (len > 32)
		return xasprintf("must be a group name of at most 32 characters: %s", value);
	for (size_t i = 0; i < len; i++) {
		char ch = value[i];
		if (!ascii_alnum(ch) && ch != '_' && ch != '-' && ch != '.' && !(ch == '$' && i == len - 1))
			return xasprintf("must be a group name (letters, digits, _ - .): %s%s", value,
					 comment_hint(value));
	}
	if (value[0] == '-')
		return xasprintf("a group name cannot start with '-': %s", value);
	free(ld->cfg->control_group);
	ld->cfg->control_group = xstrdup(value);
	return NULL;
}

/* ADDRESS:PORT, [IPv6]:PORT; empty: off. */
static char *parse_metrics_listen(struct loader *ld, const struct key *key, const char *value)
{
	(void)key;
	free(ld->cfg->metrics_address);
	ld->cfg->metrics_address = NULL;
	ld->cfg->metrics_port = 0;
	if (!*value)
		return NULL;
	const char *colon = strrchr(value, ':');
	const char *host = value, *host_end = colon;
	if (value[0] == '[') {
		const char *close = strchr(value, ']');
		if (!close || close[1] != ':')
			return xasprintf("must be ADDRESS:PORT or [IPv6]:PORT, e.g. 127.0.0.1:9177: %s%s",
					 value, comment_hint(value));
		host = value + 1;
		host_end = close;
		colon = close + 1;
	}
	long port;
	if (!colon || host_end == host || !all_digits(colon + 1) ||
	    (port = strtol(colon + 1, NULL, 10)) < 0 || port > 65535)
		return xasprintf("must be ADDRESS:PORT (a port up to 65535; 0: any free one), e.g. "
				 "127.0.0.1:9177: "
				 "%s%s", value, comment_hint(value));
	char *address = xasprintf("%.*s", (int)(host_end - host), host);
	char *err = address_problem(address);
	if (err) {
		free(address);
		return err;
	}
	ld->cfg->metrics_address = address;
	ld->cfg->metrics_port = (int)port;
	return NULL;
}

static void free_cluster_urls(struct config *cfg)
{
	for (size_t i = 0; i < cfg->cluster_url_count; i++)
		free(cfg->cluster_urls[i]);
	free(cfg->cluster_urls);
	cfg->cluster_urls = NULL;
	cfg->cluster_url_count = 0;
}

/* NATS servers, separated by commas or spaces: nats://, tls://, with
 * user:password@ if needed; empty: no cluster. */
static char *parse_cluster_nats(struct loader *ld, const struct key *key, const char *value)
{
	(void)key;
	struct config *cfg = ld->cfg;
	free_cluster_urls(cfg);
	char *copy = xstrdup(value), *save = NULL;
	for (char *url = strtok_r(copy, ", \t", &save); url; url = strtok_r(NULL, ", \t", &save)) {
		const char *rest = strstr(url, "://");
		bool scheme = rest && ((rest - url == 4 && strncmp(url, "nats", 4) == 0) ||
				       (rest - url == 3 && strncmp(url, "tls", 3) == 0));
		char *err = NULL;
		if (!scheme || !rest[3] || strchr(rest + 3, '/'))
			err = xasprintf("must be NATS server URLs, nats://HOST:PORT or tls://HOST:PORT, "
					"separated by commas: %s%s", url, comment_hint(value));
		else if (cfg->cluster_url_count == CONFIG_CLUSTER_URLS_MAX)
			err = xasprintf("at most %d servers", CONFIG_CLUSTER_URLS_MAX);
		if (err) {
			free(copy);
			free_cluster_urls(cfg);
			return err;
		}
		cfg->cluster_urls = xrealloc(cfg->cluster_urls,
					     (cfg->cluster_url_count + 1) * sizeof(*cfg->cluster_urls));
		cfg->cluster_urls[cfg->cluster_url_count++] = xstrdup(url);
	}
	free(copy);
	return NULL;
}

/* A node's name is part of NATS subjects and message ids. Empty: the
 * host name's first label. */
static char *parse_cluster_node(struct loader *ld, const struct key *key, const char *value)
{
	(void)key;
	size_t len = strlen(value);
	if (len > CONFIG_CLUSTER_NODE_MAX)
		return xasprintf("at most %d characters: %s", CONFIG_CLUSTER_NODE_MAX, value);
	for (size_t i = 0; i < len; i++)
		if (!ascii_alnum(value[i]) && value[i] != '-' && value[i] != '_')
			return xasprintf("must be letters, digits, - and _: %s%s", value,
					 comment_hint(value));
	free(ld->cfg->cluster_node);
	ld->cfg->cluster_node = len ? xstrdup(value) : NULL;
	return NULL;
}

static char *parse_motd(struct loader *ld, const struct key *key, const char *value)
{
	(void)key;
	free(ld->motd);
	ld->motd = xstrdup(value);
	return NULL;
}

static char *parse_motd_file(struct loader *ld, const struct key *key, const char *value)
{
	(void)key;
	free(ld->cfg->motd_file);
	ld->cfg->motd_file = *value ? xstrdup(value) : NULL;
	return NULL;
}

static char *parse_level(struct loader *ld, const struct key *key, const char *value)
{
	(void)key;
	if (!log_level_from_name(value, &ld->cfg->log_level))
		return xasprintf("must be one of debug, info, notice, warning, error%s",
				 comment_hint(value));
	return NULL;
}

static char *parse_bool(struct loader *ld, const struct key *key, const char *value)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	bool *field = (bool *)((char *)ld->cfg + key->offset);
	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		if (ascii_equal_nocase(value, yes[i]) || ascii_equal_nocase(value, no[i])) {
			*field = ascii_equal_nocase(value, yes[i]);
			return NULL;
		}
	}
	return xasprintf("must be yes or no%s", comment_hint(value));
}

static char *parse_target(struct loader *ld, const struct key *key, const char *value)
{
	(void)key;
	for (size_t i = 0; i < ARRAY_SIZE(target_names); i++) {
		if (ascii_equal_nocase(value, target_names[i].name)) {
			ld->cfg->log_target = target_names[i].target;
			return NULL;
		}
	}
	return xasprintf("must be one of auto, journal, stderr, syslog%s", comment_hint(value));
}

/* ---- reading the file ----------------------------------------------------- */

/* inih's own line handling is the weak spot: it truncates long lines into
 * fragments, reports only the first syntax error, has no line numbers in the
 * handler, and (with multi-line values on in Debian's build) treats an
 * indented "key = value" as the continuation of the key above. So every line
 * passes through here first: we count it, judge it the way inih would, report
 * what is wrong with it, and hand inih either a clean line or an empty one. */

static const char *find_chars_or_comment(const char *s, const char *chars)
{
	bool was_space = false;

	while (*s && !(chars && strchr(chars, *s)) && !(was_space && *s == ';')) {
		was_space = isspace((unsigned char)*s);
		s++;
	}
	return s;
}

static enum section find_section(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(section_names); i++)
		if (ascii_equal_nocase(name, section_names[i]))
			return (enum section)i;
	return SEC_UNKNOWN;
}

static void section_header(struct loader *ld, const char *start, const char *end)
{
	while (start < end && isspace((unsigned char)*start))
		start++;
	while (end > start && isspace((unsigned char)end[-1]))
		end--;

	char *name = xstrndup(start, (size_t)(end - start));
	ld->section = find_section(name);
	if (ld->section == SEC_UNKNOWN)
		add_error(ld, ld->lineno, "unknown section [%s]", name);
	free(name);
}

/* LINE has no leading whitespace; returns whether inih may see it. */
static bool check_line(struct loader *ld, const char *line)
{
	const char *end;

	if (!*line || *line == ';' || *line == '#')
		return true;

	if (*line == '[') {
		end = find_chars_or_comment(line + 1, "]");
		if (*end != ']') {
			add_error(ld, ld->lineno, "syntax error (missing ']' in section header)");
			/* Its keys would only add noise about a section we cannot name. */
			ld->section = SEC_UNKNOWN;
			return false;
		}
		section_header(ld, line + 1, end);
		/* inih ignores the rest; "[server] port = 1" would lose the key. */
		for (end++; isspace((unsigned char)*end); end++)
			;
		if (*end && *end != ';' && *end != '#')
			add_error(ld, ld->lineno,
				  "syntax error (text after ']'; a section header stands alone)");
		return true;
	}

	end = find_chars_or_comment(line, "=:");
	if ((*end != '=' && *end != ':') || end == line) {
		add_error(ld, ld->lineno, "syntax error (expected key = value)");
		return false;
	}
	return true;
}

static char *read_line(char *str, int num, void *stream)
{
	struct loader *ld = stream;
	/* inih needs room for "\r\n\0" after the longest line it can take. */
	size_t max = num > 3 ? (size_t)num - 3 : 0;
	size_t n = 0, stored = 0, start = 0;
	bool nul = false;
	int c, last = EOF;

	if (ld->too_big || ld->read_errno)
		return NULL;
	if (!ld->buf) {
		/* A BOM, the longest line, one byte more to notice it is too long. */
		ld->bufsize = max + 8;
		ld->buf = xmalloc(ld->bufsize);
	}

	/* Byte by byte, keeping only what could fit: a 100 kB line costs no
	 * memory, and a NUL byte cannot hide the rest of its line. */
	while ((c = getc(ld->file)) != EOF && c != '\n') {
		if (++ld->bytes > CONFIG_FILE_MAX) {
			ld->too_big = true;
			return NULL;
		}
		if (c == '\0')
			nul = true;
		if (stored < ld->bufsize)
			ld->buf[stored++] = (char)c;
		n++;
		last = c;
	}
	if (c == EOF && ferror(ld->file)) {
		ld->read_errno = errno ? errno : EIO;
		return NULL;
	}
	if (c == EOF && n == 0)
		return NULL;
	if (c == '\n')
		ld->bytes++;
	ld->lineno++;

	if (ld->lineno == 1 && stored >= 3 && memcmp(ld->buf, "\xef\xbb\xbf", 3) == 0) {
		start = 3;
		n -= 3;
	}
	if (last == '\r')
		n--;

	str[0] = '\0';
	if (nul) {
		add_error(ld, ld->lineno, "NUL byte in line");
		return str;
	}
	if (n > max) {
		add_error(ld, ld->lineno, "line too long (max %zu bytes; put a long MOTD in motd_file)",
			  max);
		return str;
	}

	const char *line = ld->buf + start;
	while (n > 0 && isspace((unsigned char)*line)) {
		line++;
		n--;
	}
	memcpy(str, line, n);
	str[n] = '\0';
	if (!check_line(ld, str))
		str[0] = '\0';
	return str;
}

/* ANYWHERE: find the key in whichever section it lives, for hints. */
static const struct key *find_key(enum section section, bool anywhere, const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if ((anywhere || keys[i].section == section) && ascii_equal_nocase(name, keys[i].name))
			return &keys[i];
	return NULL;
}

/* Always returns 1: inih's error return would only remember the first line,
 * and we record every error ourselves. The section comes from read_line(),
 * which saw the header in full (inih truncates section names). */
static int handle_key(void *user, const char *section, const char *name, const char *value)
{
	struct loader *ld = user;
	const struct key *key, *elsewhere;
	(void)section;

	if (ld->section == SEC_UNKNOWN)
		return 1; /* its header was reported; one message is enough */
	if (ld->section == SEC_OPERATORS) {
		char *err = parse_operator(ld, name, value);
		if (err) {
			add_error(ld, ld->lineno, "%s", err);
			free(err);
		}
		return 1;
	}

	key = find_key(ld->section, false, name);
	if (!key) {
		elsewhere = find_key(ld->section, true, name);
		char *hint = elsewhere ? xasprintf(" (it belongs in [%s])",
						   section_names[elsewhere->section])
				       : xstrdup("");
		if (ld->section == SEC_NONE)
			add_error(ld, ld->lineno, "key '%s' before any [section]%s", name, hint);
		else
			add_error(ld, ld->lineno, "unknown key '%s' in section [%s]%s", name,
				  section_names[ld->section], hint);
		free(hint);
		return 1;
	}

	/* A duplicate key is an error rather than "the last one wins": with no
	 * include files there is no legitimate override, and a second "port ="
	 * further down is almost always an edit that went to the wrong line. */
	size_t idx = (size_t)(key - keys);
	if (ld->key_line[idx]) {
		add_error(ld, ld->lineno, "duplicate key '%s' in [%s] (first set at line %d)",
			  key->name, section_names[key->section], ld->key_line[idx]);
		return 1;
	}
	ld->key_line[idx] = ld->lineno;

	char *err = key->parse(ld, key, value);
	if (err) {
		ld->key_bad[idx] = true;
		add_error(ld, ld->lineno, "%s: %s", key->name, err);
		free(err);
	}
	return 1;
}

/* [operators]: every key is an operator's name, its value the hash of
 * its password (crypt(3): mkpasswd -m yescrypt, or openssl passwd -6). */
static char *parse_operator(struct loader *ld, const char *name, const char *value)
{
	struct config *cfg = ld->cfg;
	size_t len = strlen(name);
	bool valid = len > 0 && len <= CONFIG_OPERATOR_NAME_MAX;
	for (size_t i = 0; valid && i < len; i++)
		valid = ascii_alnum(name[i]) || name[i] == '_' || name[i] == '-';
	if (!valid)
		return xasprintf("operator '%s': a name is 1 to %d letters, digits, _ or -", name,
				 CONFIG_OPERATOR_NAME_MAX);
	if (config_operator_hash(cfg, name))
		return xasprintf("operator '%s' is set twice", name);
	if (cfg->operator_count == CONFIG_OPERATORS_MAX)
		return xasprintf("more than %d operators", CONFIG_OPERATORS_MAX);
	int how = crypt_checksalt(value);
	if (value[0] != '$' || (how != CRYPT_SALT_OK && how != CRYPT_SALT_METHOD_LEGACY))
		return xasprintf("operator '%s': not a password hash crypt(3) knows (make one with "
				 "mkpasswd -m yescrypt, or openssl passwd -6)", name);
	if (how == CRYPT_SALT_METHOD_LEGACY)
		return xasprintf("operator '%s': a hash of a method too weak to use (make one with "
				 "mkpasswd -m yescrypt)", name);
	cfg->operators = xrealloc(cfg->operators, (cfg->operator_count + 1) * sizeof(*cfg->operators));
	struct config_operator *op = &cfg->operators[cfg->operator_count++];
	snprintf(op->name, sizeof(op->name), "%s", name);
	op->hash = xstrdup(value);
	return NULL;
}

const char *config_operator_hash(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->operator_count; i++)
		if (strcasecmp(cfg->operators[i].name, name) == 0)
			return cfg->operators[i].hash;
	return NULL;
}

/* ---- after parsing --------------------------------------------------------- */

static void set_motd(struct config *cfg, char **lines, size_t count)
{
	for (size_t i = 0; i < cfg->motd_count; i++)
		free(cfg->motd_lines[i]);
	free(cfg->motd_lines);
	cfg->motd_lines = lines;
	cfg->motd_count = count;
}

/* Returns NULL and sets the lines, or the complaint (malloc'd). */
static char *read_motd_file(const char *path, char ***ret_lines, size_t *ret_count)
{
	char *data = NULL, **lines = NULL, *err = NULL;
	size_t len = 0, count = 0;
	struct stat st;
	ssize_t r;

	/* O_NONBLOCK: a FIFO must not hang a reload. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return xasprintf("cannot read %s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0) {
		err = xasprintf("cannot read %s: %s", path, strerror(errno));
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		err = xasprintf("cannot read %s: %s", path, strerror(EISDIR));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		err = xasprintf("%s: not a regular file", path);
		goto out;
	}

	data = xmalloc(CONFIG_MOTD_FILE_MAX + 1);
	while (len <= CONFIG_MOTD_FILE_MAX) {
		r = read(fd, data + len, CONFIG_MOTD_FILE_MAX + 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			err = xasprintf("cannot read %s: %s", path, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	if (len > CONFIG_MOTD_FILE_MAX) {
		err = xasprintf("%s: more than %d bytes", path, CONFIG_MOTD_FILE_MAX);
		goto out;
	}

	lines = xcalloc(CONFIG_MOTD_LINES_MAX, sizeof(*lines));
	for (size_t pos = 0; pos < len;) {
		char *nl = memchr(data + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - data) : len;
		size_t llen = end - pos;

		if (count == CONFIG_MOTD_LINES_MAX) {
			err = xasprintf("%s: more than %d lines", path, CONFIG_MOTD_LINES_MAX);
			goto out;
		}
		if (memchr(data + pos, '\0', llen)) {
			err = xasprintf("%s: NUL byte in line %zu", path, count + 1);
			goto out;
		}
		if (llen > 0 && data[end - 1] == '\r')
			llen--;
		lines[count++] = xstrndup(data + pos, llen);
		pos = end + 1;
	}
	*ret_lines = lines;
	*ret_count = count;
	lines = NULL;

out:
	if (lines) {
		for (size_t i = 0; i < count; i++)
			free(lines[i]);
		free(lines);
	}
	free(data);
	close(fd);
	return err;
}

/* The MOTD is sent whole to every client as it connects: one that could
 * never fit in max_sendq (cleaned and with "# " and "\n" around each line,
 * plus the greeting after it) would make no sense of that limit. */
static void check_motd_fits(struct loader *ld)
{
	struct config *cfg = ld->cfg;
	size_t bytes = 0;

	if (ld->key_bad[KEY_MAX_SENDQ] || ld->key_bad[KEY_MOTD_FILE] || cfg->motd_count == 0)
		return;
	for (size_t i = 0; i < cfg->motd_count; i++) {
		struct text_buf c;
		text_buf_clean(&c, cfg->motd_lines[i], strlen(cfg->motd_lines[i]));
		bytes += c.len + 3; /* "# " and "\n" */
		text_buf_free(&c);
	}
	if (bytes + CONFIG_GREETING_MAX <= cfg->max_sendq)
		return;
	int line = ld->key_line[cfg->motd_file ? KEY_MOTD_FILE : KEY_MOTD];
	const char *key = cfg->motd_file ? "motd_file" : "motd";
	if (ld->key_line[KEY_MAX_SENDQ] > line) {
		line = ld->key_line[KEY_MAX_SENDQ];
		key = "max_sendq";
	}
	add_error(ld, line,
		  "%s: the MOTD is %zu bytes as sent, more than max_sendq - %d = %zu: no client "
		  "could be sent it; shorten the MOTD or raise max_sendq",
		  key, bytes, CONFIG_GREETING_MAX, cfg->max_sendq - CONFIG_GREETING_MAX);
}

/* The later of two keys' lines (0 for a key not set), and that key. */
static int later_key(const struct loader *ld, enum key_id a, enum key_id b, enum key_id *ret)
{
	*ret = ld->key_line[b] > ld->key_line[a] ? b : a;
	return ld->key_line[*ret];
}

static void check_irc(struct loader *ld)
{
	struct config *cfg = ld->cfg;

	/* Only a name not set can be missing: a bad one was reported. */
	if (!cfg->irc_server_name && !ld->key_bad[KEY_IRC_SERVER_NAME]) {
		char *why = NULL, *name = host_server_name(&why);
		if (name) { /* the host was renamed meanwhile */
			cfg->irc_server_name = name;
		} else {
			add_error(ld, ld->key_line[KEY_IRC_SERVER_NAME],
				  "server_name: not set, and %s: set server_name in [irc]", why);
			free(why);
		}
	}
}

/* In a cluster, the node needs a name: by default, the host name's first
 * label. */
static void check_cluster(struct loader *ld)
{
	struct config *cfg = ld->cfg;
	if (cfg->cluster_url_count == 0 || cfg->cluster_node || ld->key_bad[KEY_CLUSTER_NODE])
		return;
	char host[256];
	if (gethostname(host, sizeof(host)) < 0)
		host[0] = 0;
	host[sizeof(host) - 1] = 0;
	host[strcspn(host, ".")] = 0;
	size_t len = strlen(host);
	bool ok = len > 0 && len <= CONFIG_CLUSTER_NODE_MAX;
	for (size_t i = 0; ok && i < len; i++)
		ok = ascii_alnum(host[i]) || host[i] == '-' || host[i] == '_';
	if (ok)
		cfg->cluster_node = xstrdup(host);
	else
		add_error(ld, ld->key_line[KEY_CLUSTER_NATS],
			  "node: not set, and the host name \"%s\" cannot be one (letters, digits, - "
			  "and _, at most %d): set node in [cluster]", host, CONFIG_CLUSTER_NODE_MAX);
}

/* Two listeners on one address and port cannot be: say so here, so that
 * chatd -t catches it, rather than as a failed bind at start. */
static void check_ports(struct loader *ld)
{
	struct config *cfg = ld->cfg;
	const struct {
		enum key_id key, bind_key;
		const char *what;
		int port;
		const char *bind;
	} ports[] = {
		{ KEY_PORT, KEY_BIND, "[server] port", cfg->port, cfg->bind },
		{ KEY_TLS_PORT, KEY_BIND, "[server] tls_port", cfg->tls_port, cfg->bind },
		{ KEY_IRC_PORT, KEY_IRC_BIND, "[irc] port", cfg->irc_port, config_irc_bind(cfg) },
		{ KEY_IRC_TLS_PORT, KEY_IRC_BIND, "[irc] tls_port", cfg->irc_tls_port,
		  config_irc_bind(cfg) },
		{ KEY_WEB_PORT, KEY_WEB_BIND, "[web] port", cfg->web_port, config_web_bind(cfg) },
		{ KEY_WEB_TLS_PORT, KEY_WEB_BIND, "[web] tls_port", cfg->web_tls_port,
		  config_web_bind(cfg) },
	};
	if (ld->key_bad[KEY_BIND] || ld->key_bad[KEY_IRC_BIND] || ld->key_bad[KEY_WEB_BIND])
		return;
	for (size_t i = 0; i < ARRAY_SIZE(ports); i++) {
		for (size_t j = i + 1; j < ARRAY_SIZE(ports); j++) {
			/* 0 is off, or for [server] port any free port: no clash. */
			if (ld->key_bad[ports[i].key] || ld->key_bad[ports[j].key] ||
			    ports[i].port == 0 || ports[i].port != ports[j].port ||
			    strcmp(ports[i].bind, ports[j].bind) != 0)
				continue;
			enum key_id key;
			int line = later_key(ld, ports[i].key, ports[j].key, &key);
			add_error(ld, line, "%s: %s and %s are both %d on the same address; change one%s",
				  keys[key].name, ports[i].what, ports[j].what, ports[i].port,
				  ports[j].key == KEY_IRC_PORT ? ", or set [irc] port = 0 to turn IRC off"
							       : "");
		}
	}
}

/* A TLS port needs a certificate and its key; the key may come from the
 * systemd credential CONFIG_TLS_KEY_CREDENTIAL (LoadCredential= in the
 * unit) when [tls] key is not set or empty (as in the shipped file). */
static void check_tls(struct loader *ld)
{
	struct config *cfg = ld->cfg;
	const char *creds = getenv("CREDENTIALS_DIRECTORY");

	if (!cfg->tls_key && !ld->key_bad[KEY_TLS_KEY] && creds && *creds) {
		char *path = xasprintf("%s/%s", creds, CONFIG_TLS_KEY_CREDENTIAL);
		if (access(path, F_OK) == 0)
			cfg->tls_key = path;
		else
			free(path);
	}
	if (!cfg->tls_port && !cfg->irc_tls_port && !cfg->web_tls_port)
		return;
	enum key_id port_key = cfg->tls_port ? KEY_TLS_PORT :
			       cfg->irc_tls_port ? KEY_IRC_TLS_PORT : KEY_WEB_TLS_PORT;
	if (!cfg->tls_certificate)
		add_error(ld, ld->key_line[port_key],
			  "%s: a TLS port needs a certificate: set certificate in [tls]",
			  keys[port_key].name);
	else if (!cfg->tls_key)
		add_error(ld, ld->key_line[port_key],
			  "%s: a TLS port needs the certificate's key: set key in [tls], or pass it as "
			  "the systemd credential %s", keys[port_key].name, CONFIG_TLS_KEY_CREDENTIAL);
}

static void finish(struct loader *ld)
{
	struct config *cfg = ld->cfg;
	int line;

	/* A slow client must still be able to hold a few maximum-length lines,
	 * each with the sender's name in front; below that every long message
	 * would cut off whoever receives it. */
	if (!ld->key_bad[KEY_MAX_LINE] && !ld->key_bad[KEY_MAX_SENDQ] &&
	    cfg->max_sendq < cfg->max_line * 3 + 64) {
		if (ld->key_line[KEY_MAX_SENDQ])
			add_error(ld, ld->key_line[KEY_MAX_SENDQ],
				  "max_sendq: must be at least 3 * max_line + 64 = %zu, so a slow "
				  "client can hold a few full-length lines (max_line is %zu)",
				  cfg->max_line * 3 + 64, cfg->max_line);
		else
			add_error(ld, ld->key_line[KEY_MAX_LINE],
				  "max_line: needs max_sendq >= 3 * max_line + 64 = %zu, so a slow "
				  "client can hold a few full-length lines; set max_sendq in [limits] "
				  "(it is %zu)",
				  cfg->max_line * 3 + 64, cfg->max_sendq);
	}

	if (cfg->motd_file) {
		char **lines = NULL, *path = resolve_path(ld->path, cfg->motd_file);
		size_t count = 0;
		char *err = read_motd_file(path, &lines, &count);

		line = ld->key_line[KEY_MOTD_FILE];
		if (err) {
			add_error(ld, line, "motd_file: %s", err);
			free(err);
		} else {
			set_motd(cfg, lines, count);
		}
		free(path);
	} else if (ld->motd) {
		char **lines = NULL;
		size_t count = 0;

		if (*ld->motd) {
			lines = xmalloc(sizeof(*lines));
			lines[count++] = ld->motd;
			ld->motd = NULL;
		}
		set_motd(cfg, lines, count);
	}
	/* max_per_ip = 0 says "no limits per address": the rate of new
	 * connections per address goes with it, unless set too. */
	if (cfg->max_per_ip == 0 && !ld->key_line[KEY_CONNECT_RATE])
		cfg->connect_rate = 0;
	check_motd_fits(ld);
	check_irc(ld);
	check_ports(ld);
	check_tls(ld);
	check_cluster(ld);
}

static void parse_file(struct loader *ld)
{
	struct stat st;
	/* O_NONBLOCK: a FIFO or a terminal must not hang a start or a reload
	 * (the main thread reloads; while it waited nothing would be accepted). */
	int fd = open(ld->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

	if (fd < 0) {
		add_error(ld, 0, "cannot read: %s", strerror(errno));
		return;
	}
	/* Linux lets us open a directory; say so instead of a read error. */
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		add_error(ld, 0, "cannot read: %s", strerror(EISDIR));
		close(fd);
		return;
	}
	/* A regular file, or a device such as /dev/null for all defaults. */
	if (!S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode)) {
		add_error(ld, 0, "cannot read: not a regular file");
		close(fd);
		return;
	}
	ld->file = fdopen(fd, "r");
	if (!ld->file) {
		add_error(ld, 0, "cannot read: %s", strerror(errno));
		close(fd);
		return;
	}

	int r = ini_parse_stream(read_line, ld, handle_key, ld);

	if (ld->read_errno)
		add_error(ld, 0, "cannot read: %s", strerror(ld->read_errno));
	else if (ld->too_big)
		add_error(ld, 0, "larger than %d bytes; is this really the config file?",
			  CONFIG_FILE_MAX);
	else if (r > 0 && !has_error_at(ld, r))
		/* read_line() hands inih only lines it has checked, so this is a
		 * line inih judges differently; never a line already reported. */
		add_error(ld, r, "syntax error (expected key = value)");
	else if (r < 0)
		add_error(ld, 0, "cannot parse (inih error %d)", r);

	fclose(ld->file);
	ld->file = NULL;

	if (!ld->read_errno && !ld->too_big)
		finish(ld);
}

/* ---- public ---------------------------------------------------------------- */

struct config *config_new_default(void)
{
	struct config *cfg = xcalloc(1, sizeof(*cfg));

	atomic_init(&cfg->refcount, 1);
	cfg->port = 7777;
	cfg->bind = xstrdup("::");
	cfg->max_clients = 1024;
	cfg->threads = 0;
	cfg->io_uring = true;
	cfg->motd_lines = xmalloc(sizeof(*cfg->motd_lines));
	cfg->motd_lines[0] = xstrdup(DEFAULT_MOTD);
	cfg->motd_count = 1;
	cfg->motd_file = NULL;
	cfg->max_line = 2048;
	cfg->max_sendq = 1048576;
	cfg->rate = 10;
	cfg->burst = 20;
	cfg->max_per_ip = 20;
	cfg->idle_timeout = 0;
	cfg->line_timeout = 30;
	cfg->keepalive = 300;
	cfg->announce_max = 500;
	cfg->announce_rate = 10;
	cfg->connect_rate = 10;
	cfg->handshake_timeout = 10;
	cfg->log_level = LOG_INFO;
	cfg->log_target = LOG_TARGET_AUTO;
	cfg->log_per_address_burst = 20;
	cfg->irc_port = CONFIG_IRC_PORT_DEFAULT;
	cfg->irc_bind = NULL;
	cfg->irc_server_name = host_server_name(NULL);
	cfg->irc_password = NULL;
	cfg->irc_network = xstrdup("chatd");
	cfg->irc_ping_timeout = 240;
	cfg->irc_sts_duration = 300;
	cfg->store_commit_interval = 100;
	cfg->history_keep = 1000;
	cfg->history_max_age = 30 * 86400;
	cfg->history_replay = 20;
	cfg->accounts_grace = 30;
	cfg->web_port = 0;
	cfg->web_tls_port = 0;
	cfg->control_group = xstrdup(CONFIG_CONTROL_GROUP);
	cfg->cluster_replicas = 1;
	return cfg;
}

int config_load(const char *path, struct config **ret, struct config_errors *errors)
{
	struct loader ld = {
		.path = path,
		.section = SEC_NONE,
	};

	*ret = NULL;
	if (errors)
		*errors = (struct config_errors){ 0 };

	ld.cfg = config_new_default();
	ld.cfg->path = xstrdup(path);
	parse_file(&ld);

	free(ld.buf);
	free(ld.motd);

	if (ld.nerrors == 0) {
		*ret = ld.cfg;
		return 0;
	}

	config_unref(ld.cfg);
	if (!errors) {
		for (size_t i = 0; i < ld.nerrors; i++)
			free(ld.errors[i].msg);
		return -1;
	}
	errors->messages = xcalloc(ld.nerrors + 1, sizeof(char *));
	for (size_t i = 0; i < ld.nerrors; i++)
		errors->messages[i] = ld.errors[i].msg;
	errors->count = ld.nerrors;
	if (ld.more_errors)
		errors->messages[errors->count++] =
			xasprintf("%s: ... and %zu more error%s", path, ld.more_errors,
				  ld.more_errors == 1 ? "" : "s");
	return -1;
}

struct config *config_ref(struct config *cfg)
{
	if (cfg)
		atomic_fetch_add_explicit(&cfg->refcount, 1, memory_order_relaxed);
	return cfg;
}

void config_unref(struct config *cfg)
{
	if (!cfg)
		return;
	/* acq_rel: the thread that frees must see every other thread's reads
	 * as finished. */
	if (atomic_fetch_sub_explicit(&cfg->refcount, 1, memory_order_acq_rel) != 1)
		return;
	set_motd(cfg, NULL, 0);
	free(cfg->path);
	free(cfg->bind);
	free(cfg->motd_file);
	free(cfg->irc_bind);
	free(cfg->irc_server_name);
	free(cfg->irc_password);
	free(cfg->irc_network);
	free(cfg->tls_certificate);
	free(cfg->tls_key);
	free(cfg->tls_client_ca);
	free(cfg->store_path);
	free(cfg->web_bind);
	free(cfg->web_root);
	free_words(cfg->web_origins, cfg->web_origin_count);
	free(cfg->web_proxies);
	for (size_t i = 0; i < cfg->operator_count; i++) {
		explicit_bzero(cfg->operators[i].hash, strlen(cfg->operators[i].hash));
		free(cfg->operators[i].hash);
	}
	free(cfg->operators);
	free(cfg->control_socket);
	free(cfg->control_group);
	free(cfg->metrics_address);
	free_cluster_urls(cfg);
	free(cfg->cluster_node);
	free(cfg->cluster_credentials);
	free(cfg->cluster_ca);
	free(cfg);
}

void config_errors_free(struct config_errors *errors)
{
	if (!errors)
		return;
	for (size_t i = 0; i < errors->count; i++)
		free(errors->messages[i]);
	free(errors->messages);
	errors->messages = NULL;
	errors->count = 0;
}

int config_cpu_count(void)
{
	cpu_set_t set;

	/* The CPUs we may run on (taskset, cgroup cpusets via systemd's
	 * CPUAffinity=), not all the machine has. */
	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		return CPU_COUNT(&set);
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

int config_worker_count(const struct config *cfg)
{
	int n = cfg->threads ? cfg->threads : config_cpu_count();

	if (n < 1)
		n = 1;
	if (n > CONFIG_MAX_THREADS)
		n = CONFIG_MAX_THREADS;
	return n;
}

char *config_store_path(const struct config *cfg)
{
	if (cfg->store_path)
		return xstrdup(cfg->store_path);
	/* systemd may give several folders, separated by colons: the first. */
	const char *dir = getenv("STATE_DIRECTORY");
	if (dir && *dir == '/')
		return xasprintf("%.*s/%s", (int)strcspn(dir, ":"), dir, CONFIG_STORE_FILE);
	dir = getenv("XDG_STATE_HOME");
	if (dir && *dir == '/')
		return xasprintf("%s/chatd/%s", dir, CONFIG_STORE_FILE);
	dir = getenv("HOME");
	if (dir && *dir == '/')
		return xasprintf("%s/.local/state/chatd/%s", dir, CONFIG_STORE_FILE);
	return NULL;
}

char *config_control_path(const struct config *cfg)
{
	if (cfg->control_socket)
		return *cfg->control_socket ? xstrdup(cfg->control_socket) : NULL;
	return runtime_path(CONFIG_CONTROL_FILE);
}

bool config_same_control(const struct config *a, const struct config *b)
{
	char *pa = config_control_path(a), *pb = config_control_path(b);
	bool same = (!pa && !pb) || (pa && pb && strcmp(pa, pb) == 0);
	free(pa);
	free(pb);
	return same;
}

const char *config_irc_bind(const struct config *cfg)
{
	return cfg->irc_bind ? cfg->irc_bind : cfg->bind;
}

const char *config_web_bind(const struct config *cfg)
{
	return cfg->web_bind ? cfg->web_bind : cfg->bind;
}
