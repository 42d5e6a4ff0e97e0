/* The classic detach for hosts without systemd (-d): fork, setsid, fork,
 * chdir /, stdio to /dev/null, pid file. The first process waits until the
 * daemon is listening, so its exit status says whether the start worked. */
#ifndef CHATD_DAEMONIZE_H
#define CHATD_DAEMONIZE_H

/* Returns, in the daemon only, the fd to pass to daemonize_done(); stderr
 * stays open until then so startup errors reach the user. The starting
 * process exits with 0 once the daemon is ready, 1 if it fails. Returns -1
 * (with a message on stderr) when it cannot even fork. */
int daemonize(const char *pidfile);

/* Tells the waiting process that the daemon is listening, and detaches
 * stderr. */
void daemonize_done(int ready_fd);

/* Removes the pid file at exit, if one was written. */
void daemonize_cleanup(void);

#endif
