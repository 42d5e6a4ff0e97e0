#include "autoconf.h"

#include "admin/control.h"

#include <errno.h>
#include <grp.h>
#include <json-c/json.h>
#include <pthread.h>
#include <pwd.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "admin/actions.h"
#include "admin/commands.h"
#include "base/log.h"
#include "base/util.h"

#define CLIENTS_MAX 32
#define REQUEST_TIMEOUT_MS 10000  /* to send the request */
#define WRITE_TIMEOUT_MS 30000    /* to read what was written, once it waits */
#define OUTPUT_MAX (256u << 20)   /* an answer (who on a million users) */
#define MONITOR_QUEUED_MAX (1u << 20) /* a monitor that reads slower is told what it missed */
#define MAILBOX_MAX 4096          /* events waiting for the main thread */
#define GROUPS_MAX 65536

/* The events monitor follows. */
static const char *const monitored[] = {
	"connect", "disconnect", "kicked", "banned", "ban_added", "ban_removed", "wall", "reload",
	"reload_failed", "log_level", "account_registered", "account_deleted", "password_changed",
	"history_purged", "reject", "oper", "rehash", "login_failed", NULL,
};

enum client_state {
	CLIENT_READING,   /* until its request's line end */
	CLIENT_WAITING,   /* for an answer from another thread */
	CLIENT_MONITOR,   /* sent events until it goes */
	CLIENT_ANSWERED,  /* writes its answer, then closed */
};

struct client {
	LIST_ENTRY(client) link;
	uint64_t id;
	int fd;
	enum client_state state;
	uint64_t deadline_ms;   /* READING: for the request; else for the writes, when stuck */
	char actor[96];
	char in[ADMIN_REQUEST_MAX + 1];
	size_t in_len;
	char *out;
	size_t out_len, out_off, out_cap;
	unsigned long missed;   /* monitor events not sent: it was too slow */
};

struct mail {
	struct mail *next;
	uint64_t client;
	char *line;
};

struct control {
	int epoll_fd;
	int listen_fd;
	int mail_fd;            /* eventfd: mail came */
	int tick_fd;            /* once a second: timeouts */
	char *path;
	char *made_dir;         /* the folder it made for the socket, removed at exit */
	const struct control_host *host;
	gid_t group;
	bool group_known;
	bool group_said;        /* whether it was looked up before */
	LIST_HEAD(, client) clients;
	unsigned client_count, monitor_count;
	uint64_t next_id;

	pthread_mutex_t lock;   /* the mailbox: */
	struct mail *mail_head, **mail_tail;
	size_t mail_count;
	unsigned long mail_dropped; /* monitor events dropped: too many waited */
};

enum { TAG_LISTEN = 1, TAG_MAIL, TAG_TICK, TAG_CLIENT };

/* ---- from any thread --------------------------------------------------------- */

void control_post(struct control *ctl, uint64_t client, char *line)
{
	pthread_mutex_lock(&ctl->lock);
	if (client == 0 && ctl->mail_count >= MAILBOX_MAX) {
		ctl->mail_dropped++;
		pthread_mutex_unlock(&ctl->lock);
		free(line);
		return;
	}
	struct mail *m = xmalloc(sizeof(*m));
	*m = (struct mail){ .client = client, .line = line };
	*ctl->mail_tail = m;
	ctl->mail_tail = &m->next;
	bool first = ctl->mail_count++ == 0;
	pthread_mutex_unlock(&ctl->lock);
	if (first) {
		uint64_t one = 1;
		if (write(ctl->mail_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			log_errno(LOG_WARNING, errno, "control socket: cannot signal");
	}
}

/* The log's copy of a monitored event (any thread; see log_set_tap). */
static void tap(void *ctx, int priority, const struct log_fields *f, const char *message)
{
	struct control *ctl = ctx;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "time", json_object_new_double((double)now.tv_sec +
								(double)(now.tv_nsec / 1000000) / 1000));
	json_object_object_add(o, "event", json_object_new_string(f->event));
	json_object_object_add(o, "level", json_object_new_string(log_level_name(priority)));
	if (f->nick)
		json_object_object_add(o, "nick", json_object_new_string(f->nick));
	if (f->peer)
		json_object_object_add(o, "peer", json_object_new_string(f->peer));
	if (f->reason)
		json_object_object_add(o, "reason", json_object_new_string(f->reason));
	if (f->actor)
		json_object_object_add(o, "actor", json_object_new_string(f->actor));
	json_object_object_add(o, "message", json_object_new_string(message));
	char *line = xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	control_post(ctl, 0, line);
}

/* ---- clients ---------------------------------------------------------------- */

static void client_close(struct control *ctl, struct client *c)
{
	if (c->state == CLIENT_MONITOR && --ctl->monitor_count == 0)
		log_tap_enable(false);
	LIST_REMOVE(c, link);
	ctl->client_count--;
	close(c->fd);
	free(c->out);
	free(c);
}

static void watch(struct control *ctl, struct client *c, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.u64 = TAG_CLIENT + c->id * 4 };
	if (epoll_ctl(ctl->epoll_fd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
		log_errno(LOG_ERR, errno, "control socket: epoll_ctl");
}

/* Writes what C has queued; false when C was closed. */
static bool client_write(struct control *ctl, struct client *c, uint64_t now)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			if (!c->deadline_ms || c->state == CLIENT_MONITOR)
				c->deadline_ms = now + WRITE_TIMEOUT_MS;
			watch(ctl, c, EPOLLOUT);
			return true;
		}
		if (n <= 0) {
			client_close(ctl, c);
			return false;
		}
		c->out_off += (size_t)n;
		c->deadline_ms = 0;
	}
	c->out_off = c->out_len = 0;
	if (c->state == CLIENT_ANSWERED) {
		client_close(ctl, c);
		return false;
	}
	/* A monitor: its EOF (EPOLLIN) says it went. */
	watch(ctl, c, EPOLLIN);
	return true;
}

/* Queues LINE and its line end on C; false when that would pass LIMIT. */
static bool client_queue(struct client *c, const char *line, size_t limit)
{
	size_t len = strlen(line);
	if (c->out_off > 0 && c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (c->out_len - c->out_off + len + 1 > limit)
		return false;
	if (c->out_len + len + 1 > c->out_cap) {
		if (c->out_off > 0) {
			memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
			c->out_len -= c->out_off;
			c->out_off = 0;
		}
		while (c->out_len + len + 1 > c->out_cap)
			c->out_cap = c->out_cap ? c->out_cap * 2 : 4096;
		c->out = xrealloc(c->out, c->out_cap);
	}
	memcpy(c->out + c->out_len, line, len);
	c->out_len += len;
	c->out[c->out_len++] = '\n';
	return true;
}

/* C's answer: written, then C is closed. */
static void client_answer(struct control *ctl, struct client *c, const char *line)
{
	c->state = CLIENT_ANSWERED;
	c->deadline_ms = 0;
	if (!client_queue(c, line, OUTPUT_MAX)) {
		char *err = action_answer_line(false, "the answer is too big to send", NULL, NULL);
		client_queue(c, err, OUTPUT_MAX);
		free(err);
	}
	client_write(ctl, c, monotonic_ms());
}

static void client_event(struct control *ctl, struct client *c, const char *line, uint64_t now)
{
	if (!client_queue(c, line, MONITOR_QUEUED_MAX)) {
		c->missed++;
		return;
	}
	if (c->missed) {
		/* Said late, but said: the monitor knows its view has a gap. */
		char note[160];
		snprintf(note, sizeof(note), "{\"event\":\"missed\",\"count\":%lu,\"message\":\"%lu "
			 "events not shown: the monitor read too slowly\"}", c->missed, c->missed);
		c->missed = 0;
		client_queue(c, note, SIZE_MAX);
	}
	client_write(ctl, c, now);
}

/* Who is at the other end of FD, and whether they may use the socket:
 * root, chatd's own user, or a member of [control] group. */
static bool peer_allowed(struct control *ctl, int fd, char *actor, size_t size)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		log_errno(LOG_ERR, errno, "control socket: SO_PEERCRED");
		snprintf(actor, size, "unknown");
		return false;
	}
	char name[64] = "";
	struct passwd pw, *found = NULL;
	char buf[1024];
	if (getpwuid_r(cred.uid, &pw, buf, sizeof(buf), &found) == 0 && found)
		snprintf(name, sizeof(name), "%s ", found->pw_name);
	snprintf(actor, size, "%s(uid %u, pid %d)", name, (unsigned)cred.uid, (int)cred.pid);
	if (cred.uid == 0 || cred.uid == geteuid())
		return true;
	if (!ctl->group_known)
		return false;
	if (cred.gid == ctl->group)
		return true;
	/* The supplementary groups of the process that connected. */
	gid_t small[64], *groups = small;
	socklen_t glen = sizeof(small);
	bool member = false;
	int r = getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &glen);
	if (r < 0 && errno == ERANGE && glen <= GROUPS_MAX * sizeof(gid_t)) {
		groups = xmalloc(glen);
		r = getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &glen);
	}
	if (r == 0)
		for (size_t i = 0; i < glen / sizeof(gid_t); i++)
			member = member || groups[i] == ctl->group;
	else
		log_errno(LOG_WARNING, errno, "control socket: SO_PEERGROUPS of %s", actor);
	if (groups != small)
		free(groups);
	return member;
}

static void accept_clients(struct control *ctl)
{
	for (;;) {
		int fd = accept4(ctl->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR)
				log_errno(LOG_WARNING, errno, "control socket: accept");
			return;
		}
		char actor[96];
		bool allowed = peer_allowed(ctl, fd, actor, sizeof(actor));
		const char *why = NULL;
		if (!allowed)
			why = "permission denied: only root and members of the group in [control] group "
			      "may use chatd's control socket";
		else if (ctl->client_count >= CLIENTS_MAX)
			why = "too many chatctl connections at once; try again";
		if (why) {
			if (!allowed)
				log_event(LOG_NOTICE, LOG_FIELDS(.event = "control_denied", .actor = actor),
					  "control socket: refused %s (not root nor in the group)", actor);
			struct json_object *o = json_object_new_object();
			json_object_object_add(o, "ok", json_object_new_boolean(false));
			json_object_object_add(o, "denied", json_object_new_boolean(!allowed));
			json_object_object_add(o, "error", json_object_new_string(why));
			char *line = xasprintf("%s ", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
			json_object_put(o);
			size_t len = strlen(line) - 1;
			line[len] = '\n'; /* the NUL's place: a line end, not sent */
			ssize_t w = send(fd, line, len + 1, MSG_NOSIGNAL | MSG_DONTWAIT);
			(void)w;
			free(line);
			close(fd);
			continue;
		}
		struct client *c = xcalloc(1, sizeof(*c));
		c->id = ++ctl->next_id;
		c->fd = fd;
		c->state = CLIENT_READING;
		c->deadline_ms = monotonic_ms() + REQUEST_TIMEOUT_MS;
		snprintf(c->actor, sizeof(c->actor), "%s", actor);
		struct epoll_event ev = { .events = EPOLLIN, .data.u64 = TAG_CLIENT + c->id * 4 };
		if (epoll_ctl(ctl->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			log_errno(LOG_ERR, errno, "control socket: epoll_ctl");
			close(fd);
			free(c);
			continue;
		}
		LIST_INSERT_HEAD(&ctl->clients, c, link);
		ctl->client_count++;
	}
}

/* Runs C's request, LINE: a JSON object with "command", "args" and maybe
 * "password". */
static void run_request(struct control *ctl, struct client *c, const char *line)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *req = json_tokener_parse_ex(tok, line, (int)strlen(line));
	bool whole = json_tokener_get_error(tok) == json_tokener_success;
	json_tokener_free(tok);
	struct json_object *command = NULL, *args = NULL, *password = NULL;
	const char *bad = NULL;
	if (!whole || !req || !json_object_is_type(req, json_type_object))
		bad = "the request is not a JSON object";
	else if (!json_object_object_get_ex(req, "command", &command) ||
		 !json_object_is_type(command, json_type_string))
		bad = "the request names no command";
	else if (json_object_object_get_ex(req, "args", &args) &&
		 !json_object_is_type(args, json_type_array))
		bad = "args must be a list";
	else if (json_object_object_get_ex(req, "password", &password) &&
		 !json_object_is_type(password, json_type_string))
		bad = "password must be a string";

	const char *name = command ? json_object_get_string(command) : NULL;
	size_t used = 0;
	int id = name ? admin_command_find(&name, 1, &used) : -1;
	size_t nargs = args && json_object_is_type(args, json_type_array) ? json_object_array_length(args) : 0;
	const char *argv[8] = { 0 };
	char error[ACTION_ERROR_MAX];
	if (!bad && id < 0) {
		snprintf(error, sizeof(error), "no such command: %.64s", name);
		bad = error;
	} else if (!bad) {
		const struct admin_command *cmd = &admin_commands[id];
		if (nargs < cmd->min_args || nargs > cmd->max_args) {
			snprintf(error, sizeof(error), "usage: %s %s", cmd->name, cmd->args);
			bad = error;
		}
		for (size_t i = 0; !bad && i < nargs; i++) {
			struct json_object *arg = json_object_array_get_idx(args, i);
			if (!json_object_is_type(arg, json_type_string))
				bad = "every argument must be a string";
			else
				argv[i] = json_object_get_string(arg);
		}
		if (!bad && cmd->password && !password)
			bad = "this command needs a password";
	}
	if (bad) {
		char *answer = action_answer_line(false, bad, NULL, NULL);
		client_answer(ctl, c, answer);
		free(answer);
		json_object_put(req);
		return;
	}

	char *text = NULL;
	size_t text_len = 0;
	struct action a = {
		.ctl = ctl,
		.host = ctl->host,
		.id = (enum admin_command_id)id,
		.args = argv,
		.nargs = nargs,
		.password = password ? json_object_get_string(password) : NULL,
		.actor = c->actor,
		.client = c->id,
		.result = json_object_new_object(),
		.text = open_memstream(&text, &text_len),
	};
	if (!a.text) {
		log_errno(LOG_ERR, errno, "control socket: open_memstream");
		json_object_put(a.result);
		json_object_put(req);
		client_close(ctl, c);
		return;
	}
	enum action_outcome outcome = action_run(&a);
	fclose(a.text);
	switch (outcome) {
	case ACTION_DONE:
	case ACTION_FAILED: {
		char *answer = action_answer(&a, outcome, text);
		client_answer(ctl, c, answer);
		free(answer);
		break;
	}
	case ACTION_LATER:
		json_object_put(a.result);
		c->state = CLIENT_WAITING;
		c->deadline_ms = 0;
		watch(ctl, c, EPOLLIN); /* for its EOF */
		break;
	case ACTION_MONITOR:
		json_object_put(a.result);
		c->state = CLIENT_MONITOR;
		c->deadline_ms = 0;
		if (ctl->monitor_count++ == 0)
			log_tap_enable(true);
		client_event(ctl, c, "{\"event\":\"monitor\",\"message\":\"following events\"}",
			     monotonic_ms());
		break;
	}
	free(text);
	if (password)
		explicit_bzero((char *)json_object_get_string(password),
			       (size_t)json_object_get_string_len(password));
	json_object_put(req);
}

static void client_readable(struct control *ctl, struct client *c)
{
	if (c->state != CLIENT_READING) {
		/* Only its EOF (or bytes nobody asked for) can come now. */
		char sink[256];
		ssize_t n = recv(c->fd, sink, sizeof(sink), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			client_close(ctl, c);
		return;
	}
	ssize_t n = recv(c->fd, c->in + c->in_len, ADMIN_REQUEST_MAX - c->in_len, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		client_close(ctl, c);
		return;
	}
	c->in_len += (size_t)n;
	char *end = memchr(c->in, '\n', c->in_len);
	if (!end) {
		if (c->in_len == ADMIN_REQUEST_MAX) {
			explicit_bzero(c->in, sizeof(c->in));
			char *answer = action_answer_line(false, "the request is too long", NULL, NULL);
			client_answer(ctl, c, answer);
			free(answer);
		}
		return;
	}
	*end = '\0';
	size_t len = (size_t)(end - c->in);
	/* The request leaves C (which answering may free), and is wiped
	 * after: it may hold a password. */
	char line[ADMIN_REQUEST_MAX + 1];
	memcpy(line, c->in, len + 1);
	explicit_bzero(c->in, sizeof(c->in));
	if (memchr(line, '\0', len)) {
		char *answer = action_answer_line(false, "the request holds a NUL byte", NULL, NULL);
		client_answer(ctl, c, answer);
		free(answer);
	} else {
		run_request(ctl, c, line);
	}
	explicit_bzero(line, len);
}

static struct client *client_by_id(struct control *ctl, uint64_t id)
{
	struct client *c;
	LIST_FOREACH(c, &ctl->clients, link)
		if (c->id == id)
			return c;
	return NULL;
}

static void read_mail(struct control *ctl)
{
	uint64_t n;
	if (read(ctl->mail_fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_errno(LOG_WARNING, errno, "control socket: eventfd");
	pthread_mutex_lock(&ctl->lock);
	struct mail *m = ctl->mail_head;
	ctl->mail_head = NULL;
	ctl->mail_tail = &ctl->mail_head;
	ctl->mail_count = 0;
	unsigned long dropped = ctl->mail_dropped;
	ctl->mail_dropped = 0;
	pthread_mutex_unlock(&ctl->lock);

	uint64_t now = monotonic_ms();
	struct client *c, *next;
	if (dropped)
		LIST_FOREACH(c, &ctl->clients, link)
			if (c->state == CLIENT_MONITOR)
				c->missed += dropped;
	while (m) {
		struct mail *following = m->next;
		if (m->client == 0) {
			for (c = LIST_FIRST(&ctl->clients); c; c = next) {
				next = LIST_NEXT(c, link); /* c may be closed */
				if (c->state == CLIENT_MONITOR)
					client_event(ctl, c, m->line, now);
			}
		} else if ((c = client_by_id(ctl, m->client)) && c->state == CLIENT_WAITING) {
			client_answer(ctl, c, m->line);
		}
		free(m->line);
		free(m);
		m = following;
	}
}

static void tick(struct control *ctl)
{
	uint64_t n;
	if (read(ctl->tick_fd, &n, sizeof(n)) < 0)
		return;
	uint64_t now = monotonic_ms();
	struct client *c, *next;
	for (c = LIST_FIRST(&ctl->clients); c; c = next) {
		next = LIST_NEXT(c, link);
		if (c->deadline_ms && now >= c->deadline_ms)
			client_close(ctl, c);
	}
}

void control_run(struct control *ctl)
{
	struct epoll_event events[16];
	int n = epoll_wait(ctl->epoll_fd, events, 16, 0);
	for (int i = 0; i < n; i++) {
		uint64_t tag = events[i].data.u64;
		if (tag == TAG_LISTEN) {
			accept_clients(ctl);
		} else if (tag == TAG_MAIL) {
			read_mail(ctl);
		} else if (tag == TAG_TICK) {
			tick(ctl);
		} else {
			struct client *c = client_by_id(ctl, (tag - TAG_CLIENT) / 4);
			if (!c)
				continue; /* closed by an earlier event of this batch */
			if (events[i].events & EPOLLOUT) {
				if (!client_write(ctl, c, monotonic_ms()))
					continue;
			}
			if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				client_readable(ctl, c);
		}
	}
}

/* ---- the socket ---------------------------------------------------------------- */

/* Looks [control] group up (again: a reload, or a group made since);
 * says so when it is missing, once per change. */
static void resolve_group(struct control *ctl, const struct config *cfg)
{
	bool was_known = ctl->group_known;
	gid_t was = ctl->group;
	ctl->group_known = false;
	if (!cfg->control_group[0])
		return;
	struct group gr, *found = NULL;
	char buf[16384];
	int r = getgrnam_r(cfg->control_group, &gr, buf, sizeof(buf), &found);
	if (r != 0 || !found) {
		if (was_known || !ctl->group_said)
			log_info("control socket: group %s does not exist; only root may use it",
				 cfg->control_group);
		ctl->group_said = true;
		return;
	}
	ctl->group = found->gr_gid;
	ctl->group_known = true;
	if (ctl->group_said && (!was_known || was != ctl->group))
		log_info("control socket: root and group %s may use it", cfg->control_group);
	ctl->group_said = true;
}

/* The socket's group and mode: [control] group's and 0660 when it can
 * be given to it, else 0600 (root alone). Returns whether the group may
 * use it. */
static bool set_owner(struct control *ctl, const struct config *cfg)
{
	if (ctl->group_known && chown(ctl->path, (uid_t)-1, ctl->group) < 0) {
		log_errno(LOG_WARNING, errno, "control socket %s: cannot give it to group %s (only "
			  "root may use it)", ctl->path, cfg->control_group);
		ctl->group_known = false;
	}
	if (chmod(ctl->path, ctl->group_known ? 0660 : 0600) < 0) {
		log_errno(LOG_WARNING, errno, "control socket %s: chmod", ctl->path);
		return false;
	}
	return ctl->group_known;
}

void control_set_config(struct control *ctl, const struct config *cfg)
{
	if (!ctl)
		return;
	resolve_group(ctl, cfg);
	set_owner(ctl, cfg);
}

/* Whether a server answers on PATH: a socket left by a chatd that died
 * does not, and may be replaced. */
static bool someone_listens(const struct sockaddr_un *addr)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	bool yes = connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) == 0;
	close(fd);
	return yes;
}

static int add_watch(struct control *ctl, int fd, uint64_t tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = tag };
	return epoll_ctl(ctl->epoll_fd, EPOLL_CTL_ADD, fd, &ev);
}

static int make_socket(struct control *ctl, const struct config *cfg)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	if (strlen(ctl->path) >= sizeof(addr.sun_path)) {
		log_error("control socket %s: the path is too long", ctl->path);
		return -1;
	}
	strcpy(addr.sun_path, ctl->path);
	/* The runtime folder chatd's default is in (systemd makes it for the
	 * unit; a chatd started by hand makes it). */
	char *dir = xstrdup(ctl->path), *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) == 0)
			ctl->made_dir = dir, dir = NULL;
		else if (errno != EEXIST)
			log_errno(LOG_WARNING, errno, "control socket: cannot make %s", dir);
	}
	free(dir);
	struct stat st;
	if (lstat(ctl->path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			log_error("control socket %s: a file that is not a socket is in the way", ctl->path);
			return -1;
		}
		if (someone_listens(&addr)) {
			log_error("control socket %s: another chatd answers on it; set socket in [control] "
				  "to another path, or stop that one", ctl->path);
			return -1;
		}
		unlink(ctl->path);
	}
	ctl->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ctl->listen_fd < 0) {
		log_errno(LOG_ERR, errno, "control socket: socket");
		return -1;
	}
	/* Made with the umask's mode (the service's 0077: 0700), then set;
	 * nobody connects before listen() in any case, and chatd checks
	 * every peer. */
	if (bind(ctl->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		log_errno(LOG_ERR, errno, "control socket %s: bind", ctl->path);
		return -1;
	}
	set_owner(ctl, cfg);
	if (listen(ctl->listen_fd, 16) < 0) {
		log_errno(LOG_ERR, errno, "control socket %s: listen", ctl->path);
		unlink(ctl->path);
		return -1;
	}
	return 0;
}

struct control *control_open(const struct config *cfg, const struct control_host *host)
{
	char *path = config_control_path(cfg);
	if (!path) {
		if (cfg->control_socket)
			log_info("no control socket: socket in [control] is empty");
		else
			log_info("no control socket: no runtime folder is known (set socket in [control] "
				 "of %s)", cfg->path);
		return NULL;
	}
	struct control *ctl = xcalloc(1, sizeof(*ctl));
	ctl->path = path;
	ctl->host = host;
	ctl->listen_fd = ctl->mail_fd = ctl->tick_fd = -1;
	ctl->mail_tail = &ctl->mail_head;
	LIST_INIT(&ctl->clients);
	pthread_mutex_init(&ctl->lock, NULL);
	resolve_group(ctl, cfg);
	struct itimerspec second = { .it_interval = { .tv_sec = 1 }, .it_value = { .tv_sec = 1 } };
	if ((ctl->epoll_fd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    (ctl->mail_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 ||
	    (ctl->tick_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)) < 0 ||
	    timerfd_settime(ctl->tick_fd, 0, &second, NULL) < 0) {
		log_errno(LOG_ERR, errno, "control socket");
		control_close(ctl);
		return NULL;
	}
	if (make_socket(ctl, cfg) < 0) {
		free(ctl->path);
		ctl->path = NULL; /* not ours to remove */
		control_close(ctl);
		return NULL;
	}
	if (add_watch(ctl, ctl->listen_fd, TAG_LISTEN) < 0 || add_watch(ctl, ctl->mail_fd, TAG_MAIL) < 0 ||
	    add_watch(ctl, ctl->tick_fd, TAG_TICK) < 0) {
		log_errno(LOG_ERR, errno, "control socket: epoll_ctl");
		control_close(ctl);
		return NULL;
	}
	log_set_tap(tap, ctl, monitored);
	log_info("control socket: %s (root%s%s)", ctl->path, ctl->group_known ? " and group " : "",
		 ctl->group_known ? cfg->control_group : " alone");
	return ctl;
}

int control_fd(const struct control *ctl)
{
	return ctl->epoll_fd;
}

void control_close(struct control *ctl)
{
	if (!ctl)
		return;
	log_set_tap(NULL, NULL, NULL);
	struct client *c;
	while ((c = LIST_FIRST(&ctl->clients)))
		client_close(ctl, c);
	if (ctl->listen_fd >= 0) {
		close(ctl->listen_fd);
		if (ctl->path)
			unlink(ctl->path);
	}
	if (ctl->made_dir) {
		rmdir(ctl->made_dir); /* left if something else was put there */
		free(ctl->made_dir);
	}
	struct mail *m = ctl->mail_head;
	while (m) {
		struct mail *next = m->next;
		free(m->line);
		free(m);
		m = next;
	}
	if (ctl->mail_fd >= 0)
		close(ctl->mail_fd);
	if (ctl->tick_fd >= 0)
		close(ctl->tick_fd);
	if (ctl->epoll_fd >= 0)
		close(ctl->epoll_fd);
	pthread_mutex_destroy(&ctl->lock);
	free(ctl->path);
	free(ctl);
}
