#include "autoconf.h"

#include "daemon/daemonize.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"

static char *pidfile_path;

static int write_pidfile(const char *path)
{
	FILE *f = fopen(path, "we");
	if (!f)
		return -errno;
	fprintf(f, "%ld\n", (long)getpid());
	if (fclose(f) != 0)
		return -errno;
	return 0;
}

/* The pid file's path must survive the chdir("/"). */
static char *absolute_path(const char *path)
{
	char cwd[PATH_MAX];
	if (path[0] == '/' || !getcwd(cwd, sizeof(cwd)))
		return xstrdup(path);
	return xasprintf("%s/%s", cwd, path);
}

int daemonize(const char *pidfile)
{
	int ready[2];

	if (pidfile)
		pidfile_path = absolute_path(pidfile);
	if (pipe2(ready, O_CLOEXEC) < 0) {
		fprintf(stderr, "chatd: pipe: %s\n", strerror(errno));
		return -1;
	}
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "chatd: fork: %s\n", strerror(errno));
		return -1;
	}
	if (pid > 0) {
		/* The starting process: wait for the daemon's word. */
		char ok = 0;
		close(ready[1]);
		ssize_t n;
		do
			n = read(ready[0], &ok, 1);
		while (n < 0 && errno == EINTR);
		_exit(n == 1 && ok == 'R' ? 0 : 1);
	}
	close(ready[0]);
	if (setsid() < 0) {
		fprintf(stderr, "chatd: setsid: %s\n", strerror(errno));
		_exit(1);
	}
	/* A second fork: the daemon is no session leader, so it can never get a
	 * controlling terminal back. The middle process just goes. */
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "chatd: fork: %s\n", strerror(errno));
		_exit(1);
	}
	if (pid > 0)
		_exit(0);

	if (chdir("/") < 0) {
		fprintf(stderr, "chatd: chdir /: %s\n", strerror(errno));
		_exit(1);
	}
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0 || dup2(null, STDIN_FILENO) < 0 || dup2(null, STDOUT_FILENO) < 0) {
		fprintf(stderr, "chatd: /dev/null: %s\n", strerror(errno));
		_exit(1);
	}
	close(null);
	if (pidfile_path) {
		int r = write_pidfile(pidfile_path);
		if (r < 0) {
			fprintf(stderr, "chatd: cannot write pid file %s: %s\n", pidfile_path, strerror(-r));
			_exit(1);
		}
	}
	return ready[1];
}

void daemonize_done(int ready_fd)
{
	if (ready_fd < 0)
		return;
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, STDERR_FILENO);
		close(null);
	}
	ssize_t w = write(ready_fd, "R", 1);
	(void)w; /* the starting process may have been killed; nothing to do */
	close(ready_fd);
}

void daemonize_cleanup(void)
{
	if (pidfile_path) {
		unlink(pidfile_path);
		free(pidfile_path);
		pidfile_path = NULL;
	}
}
