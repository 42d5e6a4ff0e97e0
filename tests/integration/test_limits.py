#!/usr/bin/env python3
"""Robustness: many short connections, a client that never reads, clients
that vanish mid-line, hostile bytes. A starting set that later work extends.

Each test ends by showing the server still serves: clients connect and chat.
"""
import re
import socket
import struct
import unittest

import chatdtest
from chatdtest import TIMEOUT, Client, Server

SYNC = "/sync-point"
SYNC_REPLY = "! unknown command: /sync-point (try /help)"


class LimitsTestCase(unittest.TestCase):
    def start_server(self, config=None, **kw):
        return self.enterContext(Server(config, **kw))

    def connect(self, srv, others=()):
        c = Client(srv.port)
        self.addCleanup(c.close)
        _, nick, online = c.welcome()
        c.online = online
        for o in others:
            o.expect("> %s entered (%d online)" % (nick, online))
        return c

    def sync(self, *clients):
        for c in clients:
            c.send(SYNC)
            c.expect(SYNC_REPLY)

    def assert_serving(self, srv, others=()):
        """A new pair of clients can still connect and chat, and the online
        count shows nobody but `others` is left over."""
        a = self.connect(srv, others)
        self.assertEqual(a.online, len(others) + 1)
        b = self.connect(srv, list(others) + [a])
        a.send("still serving")
        for o in list(others) + [b]:
            o.expect("[%s] still serving" % a.nick)
        return a, b


class ConnectionChurnTest(LimitsTestCase):
    def test_many_connect_close_cycles(self):
        srv = self.start_server()
        watcher = self.connect(srv)
        cycles = 200
        for i in range(cycles):
            c = Client(srv.port)
            try:
                if i % 2 == 0:
                    c.welcome()  # a polite client: reads the greeting first
                # odd cycles close at once, the greeting unread
            finally:
                c.close()
        # Every one of them entered and left the lobby exactly once.
        entered = left = 0
        while left < cycles:
            line = watcher.read_line()
            if re.fullmatch(r"> guest\d+ entered \(\d+ online\)", line):
                entered += 1
            elif re.fullmatch(r"< guest\d+ left \(\d+ online\)", line):
                left += 1
            else:
                self.fail("unexpected line %r" % line)
        self.assertEqual(entered, cycles)
        self.sync(watcher)
        a, _ = self.assert_serving(srv, [watcher])
        self.assertEqual(a.nick, "guest%d" % (cycles + 2))  # numbers count on


class SlowReaderTest(LimitsTestCase):
    LINE_PAD = "x" * 180
    BATCH = 100
    MAX_BATCHES = 300  # 2 senders x 30000 lines x ~200 bytes: far above any buffer

    def test_client_that_never_reads_is_cut_off(self):
        srv = self.start_server({"limits": {"max_sendq": "65536"}})
        a = self.connect(srv)
        b = self.connect(srv, [a])
        r = self.connect(srv, [a, b])
        # The slow client: a small receive buffer, and it never reads at all.
        slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(slow.close)
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.settimeout(TIMEOUT)
        slow.connect(("127.0.0.1", srv.port))
        m = re.fullmatch(r"> (guest\d+) entered \(4 online\)", a.read_line())
        self.assertTrue(m)
        slow_nick = m.group(1)
        b.expect("> %s entered (4 online)" % slow_nick)
        r.expect("> %s entered (4 online)" % slow_nick)

        left_line = "< %s left (3 online)" % slow_nick
        received = {"a": [], "b": []}  # what r got from each sender, in order
        seen_left = {a: False, b: False, r: False}
        sent = 0

        def drain(client, want):
            """Reads until the last line of the batch from each sender in
            want arrived; returns the chat lines, notes the slow one leaving."""
            got = []
            pending = set(want)
            while pending:
                line = client.read_line()
                if line == left_line:
                    self.assertFalse(seen_left[client], "left twice")
                    seen_left[client] = True
                    continue
                m = re.fullmatch(r"\[(guest\d+)\] (\w) (\d+) " + self.LINE_PAD, line)
                self.assertTrue(m, "unexpected line %r" % line)
                got.append((m.group(2), int(m.group(3))))
                if int(m.group(3)) == sent - 1:
                    pending.discard(m.group(2))
            return got

        batches = 0
        while not all(seen_left.values()):
            batches += 1
            self.assertLessEqual(batches, self.MAX_BATCHES,
                                 "the client that never reads was not cut off")
            first = sent
            sent += self.BATCH
            a.send_raw("".join("a %d %s\n" % (n, self.LINE_PAD)
                               for n in range(first, sent)).encode())
            b.send_raw("".join("b %d %s\n" % (n, self.LINE_PAD)
                               for n in range(first, sent)).encode())
            for tag, n in drain(r, {"a", "b"}):
                received[tag].append(n)
            self.assertEqual(sorted(t for t, _ in drain(a, {"b"})), ["b"] * self.BATCH)
            self.assertEqual(sorted(t for t, _ in drain(b, {"a"})), ["a"] * self.BATCH)

        # One more batch after the cut, then check r got everything in order.
        first = sent
        sent += self.BATCH
        a.send_raw("".join("a %d %s\n" % (n, self.LINE_PAD)
                           for n in range(first, sent)).encode())
        for tag, n in drain(r, {"a"}):
            received[tag].append(n)
        b.send_raw("".join("b %d %s\n" % (n, self.LINE_PAD)
                           for n in range(first, sent)).encode())
        for tag, n in drain(r, {"b"}):
            received[tag].append(n)
        self.assertEqual(received["a"], list(range(sent)))
        self.assertEqual(received["b"], list(range(sent)))
        srv.log.wait(r"disconnect \S+ %s: slow \(3 online\)" % slow_nick)
        self.sync(r)


class AbruptCloseTest(LimitsTestCase):
    def test_reset_mid_line(self):
        srv = self.start_server()
        a = self.connect(srv)
        b = self.connect(srv, [a])
        c = self.connect(srv, [a, b])
        c.send_raw(b"half a line that never ends")
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.sock.close()  # RST instead of FIN
        for o in (a, b):
            o.expect("< guest3 left (2 online)")  # and not the half line
        self.sync(a, b)
        a.send("after the reset")
        b.expect("[guest1] after the reset")
        self.assert_serving(srv, [a, b])

    def test_reset_after_greeting_unread(self):
        srv = self.start_server()
        a = self.connect(srv)
        count = 20
        for _ in range(count):
            c = Client(srv.port)
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.send("hello then gone")
            c.sock.close()
        left = 0
        while left < count:  # each one enters, maybe speaks, and leaves
            line = a.read_line()
            self.assertRegex(line, r"^(> guest\d+ entered|\[guest\d+\] hello then gone$"
                                   r"|< guest\d+ left \(\d+ online\)$)")
            left += line.startswith("<")
        self.sync(a)
        self.assert_serving(srv, [a])


class HostileBytesTest(LimitsTestCase):
    def test_nul_bytes_removed(self):
        srv = self.start_server()
        a = self.connect(srv)
        b = self.connect(srv, [a])
        a.send_raw(b"nul\x00in\x00the\x00middle\n")
        b.expect("[guest1] nulinthemiddle")
        a.send_raw(b"\x00\x00trailing\x00\x00\n")
        b.expect("[guest1] trailing")
        a.send_raw(b"/me \x00waves\n")
        b.expect("* guest1 waves")
        self.sync(a, b)

    def test_ten_kilobyte_nick(self):
        srv = self.start_server({"limits": {"max_line": "16384"}})
        a = self.connect(srv)
        b = self.connect(srv, [a])
        nick = "n" * 10240
        a.send("/nick " + nick)
        a.expect("! invalid nick: NAME must be 1-32 letters, digits, _ or -, "
                 "starting with a letter")
        self.sync(a, b)
        a.send("/who")
        a.expect("= 2 in lobby: guest1 guest2")


if __name__ == "__main__":
    chatdtest.main()
