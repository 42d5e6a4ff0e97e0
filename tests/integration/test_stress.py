#!/usr/bin/env python3
"""Stress, scaled down to run in seconds: 50 clients in one room, 10 of them
sending 1000 numbered lines each as fast as they can, on a server with two
workers (so lines cross threads). Meanwhile the config is reloaded every
50 ms with a new MOTD, and extra clients come and go, /join other rooms, quit
or vanish. Every one of the 50 who stayed must receive every line of every
other sender exactly once, in each sender's order.

Set CHATD_STRESS_SCALE (default 1) to multiply the lines per sender.
"""
import os
import re
import selectors
import signal
import socket
import struct
import threading
import time

import chatdtest
from chatdtest import SYNC, SYNC_REPLY, TIMEOUT, ChatdTestCase, Client

STAYERS = 50
SENDERS = 10
LINES = 1000 * int(os.environ.get("CHATD_STRESS_SCALE", "1"))
BATCH = 100
CHURNERS = 3
RELOAD_EVERY = 0.02
DEADLINE = 60.0
PAD = b"the quick brown fox"


class Reader:
    """What one stayer has received: for each sender, the number of its
    next line; anything else is an error."""

    def __init__(self, client, senders):
        self.client = client
        self.next = {s.nick.encode(): 0 for s in senders if s is not client}
        self.remaining = LINES * len(self.next)
        self.buf = client.buf
        client.buf = b""

    def feed(self, data, errors):
        self.buf += data
        if b"\n" not in data:
            return
        lines = self.buf.split(b"\n")
        self.buf = lines.pop()
        for line in lines:
            self.take(line, errors)

    def take(self, line, errors):
        if line[:1] == b"!":
            errors.append("%s got %r" % (self.client.nick, line))
            return
        if line[:1] != b"[":
            return  # arrivals, departures: churners
        close = line.find(b"] ")
        nick = line[1:close]
        want = self.next.get(nick)
        if want is None:
            return  # a churner talking
        n = int(line[close + 2:line.index(b" ", close + 2)])
        if n != want:
            errors.append("%s got line %d of %s, expected %d"
                          % (self.client.nick, n, nick.decode(), want))
        self.next[nick] = n + 1
        self.remaining -= 1


class StressTest(ChatdTestCase):
    def setUp(self):
        # Must exit cleanly once the clients are closed (ChatdTestCase).
        self.srv = self.start_server(self.config(0))
        self.done = threading.Event()
        self.errors = []  # list.append is atomic; read after the threads end

    def config(self, generation):
        return {"server": {"threads": "2", "motd": "motd %s" % generation},
                "limits": {"rate": "0", "max_sendq": str(16 << 20)}}

    def write_generation(self, generation):
        self.srv.rewrite_config(self.config(generation))  # atomic: never half a file

    # ---- the background activity ----------------------------------------

    def reloader(self, stats):
        generation = 0
        while not self.done.wait(RELOAD_EVERY):
            generation += 1
            self.write_generation(generation)
            self.srv.signal(signal.SIGHUP)
            stats["sighups"] = generation

    def churner(self, index, stats):
        cycle = 0
        while not self.done.is_set():
            cycle += 1
            try:
                c = Client(self.srv.port)
                try:
                    motd, nick, _ = c.welcome()
                    if not (len(motd) == 1 and re.fullmatch(r"motd \d+", motd[0])):
                        self.errors.append("churner got MOTD %r" % motd)
                    room = "room%d" % (cycle % 3)
                    c.send("/join " + room)
                    c.read_until(r"^= you joined %s \(\d+ here\)$" % room)
                    c.send("churn %d says hi" % cycle)
                    how = (cycle + index) % 3
                    if how == 0:
                        c.send("/quit bye")
                        c.read_until(r"^= bye$")
                        c.expect_closed()
                    elif how == 1:
                        c.send("/join lobby")
                        c.read_until(r"^= you joined lobby ")
                        c.send("back in the lobby")
                    else:  # vanish with a reset
                        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                          struct.pack("ii", 1, 0))
                finally:
                    c.close()
            except Exception as e:  # noqa: BLE001 - reported by the test
                self.errors.append("churner %d, cycle %d: %r" % (index, cycle, e))
                return
            stats["churn"] += 1

    def sender(self, client, barrier):
        lines = [b"%d %s\n" % (n, PAD) for n in range(LINES)]
        barrier.wait(TIMEOUT)
        try:
            for first in range(0, LINES, BATCH):
                client.sock.sendall(b"".join(lines[first:first + BATCH]))
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.errors.append("sender %s: %r" % (client.nick, e))

    # ---- the test -----------------------------------------------------------

    def test_every_line_arrives_once_and_in_order(self):
        srv = self.srv
        stayers = []
        for i in range(STAYERS):
            c = self.connect(srv)
            self.assertEqual((c.nick, c.online), ("guest%d" % (i + 1), i + 1))
            stayers.append(c)
        senders = stayers[:SENDERS]
        readers = [Reader(c, senders) for c in stayers]
        expected_total = sum(r.remaining for r in readers)

        stats = {"sighups": 0, "churn": 0}
        background = [threading.Thread(target=self.reloader, args=(stats,), daemon=True)]
        background += [threading.Thread(target=self.churner, args=(i, stats), daemon=True)
                       for i in range(CHURNERS)]
        barrier = threading.Barrier(SENDERS + 1)
        sending = [threading.Thread(target=self.sender, args=(c, barrier), daemon=True)
                   for c in senders]
        for t in background + sending:
            t.start()

        sel = selectors.DefaultSelector()
        for r in readers:
            r.client.sock.setblocking(False)
            sel.register(r.client.sock, selectors.EVENT_READ, r)
        barrier.wait(TIMEOUT)
        started = time.monotonic()
        deadline = started + DEADLINE
        pending = len(readers)
        try:
            while pending and not self.errors:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                for key, _ in sel.select(min(left, 1.0)):
                    r = key.data
                    try:
                        data = r.client.sock.recv(1 << 20)
                    except BlockingIOError:
                        continue
                    except OSError as e:
                        data = b""
                        self.errors.append("%s: %r" % (r.client.nick, e))
                    if not data:
                        self.errors.append("%s was disconnected" % r.client.nick)
                        sel.unregister(r.client.sock)
                        continue
                    was = r.remaining
                    r.feed(data, self.errors)
                    if was and not r.remaining:
                        pending -= 1
            seconds = time.monotonic() - started
        finally:
            self.done.set()
            for t in sending + background:
                t.join(TIMEOUT)
            sel.close()

        received = expected_total - sum(r.remaining for r in readers)
        reloads = len(re.findall(r"config reloaded", srv.log.text()))
        print("\n  %d clients, %d senders x %d lines: %d of %d lines delivered in %.2f s "
              "(%.0f lines/s); %d SIGHUPs (%d reloads), %d churn cycles"
              % (STAYERS, SENDERS, LINES, received, expected_total, seconds,
                 received / max(seconds, 1e-6), stats["sighups"], reloads, stats["churn"]))
        self.assertEqual(self.errors, [])
        for r in readers:
            self.assertEqual(r.remaining, 0, "%s is missing lines: %s" % (
                r.client.nick, {k.decode(): v for k, v in r.next.items() if v != LINES}))

        # Nothing more is on its way: no second copy of any line.
        for r in readers:
            c = r.client
            c.sock.settimeout(TIMEOUT)
            c.buf = r.buf
            c.send(SYNC)
            for line in c.read_until("^" + re.escape(SYNC_REPLY) + "$")[:-1]:
                r.take(line.encode(), self.errors)
        self.assertEqual(self.errors, [])
        self.assertTrue(all(n == LINES for r in readers for n in r.next.values()))

        self.assertGreater(stats["sighups"], 0)
        self.assertGreater(reloads, 0)
        self.assertNotIn("reload failed", srv.log.text())
        self.assertIsNone(re.search(r"disconnect \S+ guest([1-9]|[1-4]\d|50): ",
                                    srv.log.text()), "a stayer was disconnected")
        # The last reload is the config in force.
        self.write_generation("final")
        self.assertIn("config reloaded", srv.reload().group(0))
        late = self.connect(srv)
        self.assertEqual(late.motd, ["motd final"])
        for c in stayers:
            c.read_until(r"^> %s entered " % late.nick)
        late.send("the end")
        for c in stayers:
            c.expect("[%s] the end" % late.nick)


if __name__ == "__main__":
    chatdtest.main()
