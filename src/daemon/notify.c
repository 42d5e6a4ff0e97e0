#include "autoconf.h"

#include "daemon/notify.h"

#include <time.h>

#include <systemd/sd-daemon.h>

#include "base/log.h"

static void send_notify(const char *what, int r)
{
	if (r < 0)
		log_errno(LOG_WARNING, -r, "sd_notify(%s)", what);
}

#define ONLINE_FMT "STATUS=%d client%s online"
#define ONLINE_ARGS(n) (n), (n) == 1 ? "" : "s"

void notify_ready(int online)
{
	send_notify("READY", sd_notifyf(0, "READY=1\n" ONLINE_FMT, ONLINE_ARGS(online)));
}

void notify_status(int online)
{
	send_notify("STATUS", sd_notifyf(0, ONLINE_FMT, ONLINE_ARGS(online)));
}

void notify_reloading(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	unsigned long long usec = (unsigned long long)ts.tv_sec * 1000000ULL +
				  (unsigned long long)ts.tv_nsec / 1000;
	send_notify("RELOADING",
		    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading the config", usec));
}

void notify_stopping(void)
{
	send_notify("STOPPING", sd_notify(0, "STOPPING=1\nSTATUS=shutting down"));
}

void notify_watchdog(void)
{
	send_notify("WATCHDOG", sd_notify(0, "WATCHDOG=1"));
}

uint64_t notify_watchdog_usec(void)
{
	uint64_t usec = 0;
	return sd_watchdog_enabled(0, &usec) > 0 ? usec : 0;
}
