/* Talking to the service manager (sd_notify): readiness, status, reload,
 * stop and watchdog. Every call is a no-op when not run by systemd. */
#ifndef CHATD_NOTIFY_H
#define CHATD_NOTIFY_H

#include <stdint.h>

void notify_ready(int online);
void notify_status(int online);
/* RELOADING=1 with MONOTONIC_USEC= in one datagram, as Type=notify-reload
 * wants; notify_ready() after the reload ends it. */
void notify_reloading(void);
void notify_stopping(void);
void notify_watchdog(void);

/* The watchdog period systemd asked for, in microseconds; 0 when none. */
uint64_t notify_watchdog_usec(void);

#endif
