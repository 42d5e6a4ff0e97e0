#!/usr/bin/env python3
"""No client, and no pause of the server's own, takes service away from
the others: readers that keep up are never cut off as slow, whatever burst
one loop iteration brings them; a server stall is charged to nobody; lines
the server drops (blank, over-long) still count against the rate; a room
is not flooded with arrivals and departures; replies the server chooses
to send come in pages that fit any max_sendq; and a newcomer never hears of
what happened before it arrived.
"""
import re
import signal
import socket
import tempfile
import threading
import time

from chatdtest import (CHATD, SYNC, SYNC_REPLY, TIMEOUT, ChatdTestCase, Client,
                       run_chatd, write_config)


class Reader:
    """A client reading as fast as it can in a thread of its own, as chatc
    or nc does, collecting its lines."""

    def __init__(self, client):
        self.client = client
        self.lines = []
        self.closed = False
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self):
        buf = b""
        sock = self.client.sock
        sock.settimeout(None)
        while True:
            try:
                data = sock.recv(1 << 20)
            except OSError:
                data = b""
            if not data:
                with self.cond:
                    self.closed = True
                    self.cond.notify_all()
                return
            buf += data
            *done, buf = buf.split(b"\n")
            with self.cond:
                self.lines.extend(line.decode() for line in done)
                self.cond.notify_all()

    def wait_for(self, pred, what, timeout=TIMEOUT * 3):
        """Waits until pred(lines) is true; fails if the connection closes
        first or after timeout."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred(self.lines):
                left = deadline - time.monotonic()
                if self.closed or left <= 0:
                    raise AssertionError("%s: %s after %d lines, the last %r" % (
                        what, "closed" if self.closed else "timed out", len(self.lines),
                        [line[:60] for line in self.lines[-3:]]))
                self.cond.wait(left)

    def count(self, prefix):
        with self.cond:
            return sum(line.startswith(prefix) for line in self.lines)


class FairnessTestCase(ChatdTestCase):
    def settle(self, *clients):
        """Reads what each client was sent up to the reply to a command
        sent now, and checks none of it was an error ("! ...")."""
        for c in clients:
            c.send(SYNC)
            errors = [line for line in c.read_until("^" + re.escape(SYNC_REPLY) + "$")[:-1]
                      if line.startswith("!")]
            self.assertEqual(errors, [], c.nick)

    def readers(self, srv, n, others):
        """n clients that read continuously, each seen to enter by others."""
        clients = []
        for _ in range(n):
            clients.append(self.connect(srv, others + clients))
        return [Reader(c) for c in clients]


# ---- 1. a reader is slow when what it was sent stays unread ------------------

class BurstTest(FairnessTestCase):
    def test_a_reader_that_keeps_up_is_not_cut_off_by_a_burst_above_max_sendq(self):
        """One sender writes 2 MB of 1000-byte lines at once, with max_sendq
        64 KiB and no rate limit: readers reading continuously get it all."""
        srv = self.start_server({"limits": {"max_sendq": "65536"}})
        sender = self.connect(srv)
        readers = self.readers(srv, 2, [sender])
        pad = "z" * 990
        n = 2000
        sender.send_raw("".join("%d %s\n" % (i, pad) for i in range(n)).encode())
        for r in readers:
            r.wait_for(lambda lines: len(lines) >= n, "reader")
            self.assertEqual(r.lines, ["[guest1] %d %s" % (i, pad) for i in range(n)])
        self.assertNotIn("too slow", srv.log.text())

    def test_ten_bursts_of_invalid_bytes_within_the_limits_cut_nobody(self):
        """With the default limits, ten connections from one address each
        send their allowed burst of 20 lines of 2048 bytes of 0xFF; each
        byte becomes a 3-byte U+FFFD, so every member is sent 1.2 MB at
        once: readers that keep up get all of it."""
        srv = self.start_server({"limits": {"rate": "10", "burst": "20", "max_per_ip": "20"}})
        senders = [self.connect(srv)]
        for _ in range(9):
            senders.append(self.connect(srv, senders))
        readers = self.readers(srv, 2, senders)
        line = b"\xff" * 2048 + b"\n"
        for s in senders:
            s.send_raw(line * 20)
        garbage = "\ufffd" * 2048
        for r in readers:
            r.wait_for(lambda lines: sum(line.endswith(garbage) for line in lines) >= 200,
                       "reader")
        self.assertNotIn("too slow", srv.log.text())
        time.sleep(0.2)  # the senders spent their burst: the sync needs a token
        self.settle(*senders)


# ---- 1 and 4: a stall of the server's own ------------------------------------

class StallTest(FairnessTestCase):
    def stall_while_sending(self, srv, senders, per_second, seconds, stall, text):
        """Each sender sends per_second lines a second for seconds, in a
        thread of its own; the server is stopped (SIGSTOP) for stall seconds
        from a quarter of a second in. Returns the lines each sent."""
        sent = [[] for _ in senders]
        errors = []

        def send(i, client):
            start = time.monotonic()
            try:
                for k in range(int(per_second * seconds)):
                    time.sleep(max(0.0, start + k / per_second - time.monotonic()))
                    line = text(i, k)
                    client.send_raw(line + b"\n")
                    sent[i].append(k)
            except OSError as e:
                errors.append(e)

        threads = [threading.Thread(target=send, args=(i, c)) for i, c in enumerate(senders)]
        for t in threads:
            t.start()
        time.sleep(0.25)
        srv.signal(signal.SIGSTOP)
        try:
            time.sleep(stall)
        finally:
            srv.signal(signal.SIGCONT)
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        return sent

    def test_clients_within_the_rate_are_not_charged_for_a_stall(self):
        """Three clients send 8 lines a second (the limit is 10, burst 20);
        the server stops for 4 seconds: on resuming it reads 32 lines from
        each at once, and takes them all, with no warning."""
        srv = self.start_server({"limits": {"rate": "10", "burst": "20"}})
        senders = [self.connect(srv)]
        for _ in range(2):
            senders.append(self.connect(srv, senders))
        (reader,) = self.readers(srv, 1, senders)
        sent = self.stall_while_sending(srv, senders, 8, 5, 4.0,
                                        lambda i, k: b"from %d line %d" % (i, k))
        total = sum(len(s) for s in sent)
        reader.wait_for(lambda lines: len(lines) >= total, "reader")
        for i, c in enumerate(senders):
            self.assertEqual([line for line in reader.lines if line.startswith("[%s]" % c.nick)],
                             ["[%s] from %d line %d" % (c.nick, i, k) for k in sent[i]])
        self.settle(*senders)  # no "! slow down"
        self.assertNotIn("flooding", srv.log.text())
        srv.log.wait(r"worker \d did not run for \d+ ms; clients are not charged for it")

    def test_a_stall_cuts_no_reader_that_was_within_every_limit(self):
        """Ten clients from one address send 8 lines a second of 2000 bytes
        of 0xFF while the server is stopped for 3 seconds: when it resumes,
        1.4 MB waits for each member, more than max_sendq (1 MiB), and the
        readers that keep up get all of it."""
        srv = self.start_server({"limits": {"rate": "10", "burst": "20", "max_per_ip": "20"}})
        senders = [self.connect(srv)]
        for _ in range(9):
            senders.append(self.connect(srv, senders))
        readers = self.readers(srv, 2, senders)
        sent = self.stall_while_sending(srv, senders, 8, 3.5, 3.0,
                                        lambda i, k: b"%d %d " % (i, k) + b"\xff" * 2000)
        total = sum(len(s) for s in sent)
        for r in readers:
            r.wait_for(lambda lines: len(lines) >= total, "reader")
            self.assertEqual(r.count("! "), 0)
        self.assertNotIn("too slow", srv.log.text())
        self.assertNotIn("flooding", srv.log.text())
        self.settle(*senders)


# ---- 6. every line and every byte counts ---------------------------------------

class DroppedLinesTest(FairnessTestCase):
    LIMITS = {"limits": {"rate": "10", "burst": "20"}}
    FLOODING = ["! slow down (at most 10 lines per second)", "! flooding: disconnected"]

    def test_a_flood_of_newlines_is_cut_off(self):
        srv = self.start_server(self.LIMITS)
        other = self.connect(srv)
        flooder = self.connect(srv, [other])
        try:
            flooder.send_raw(b"\n" * (1 << 20))
        except OSError:
            pass  # cut off before all of it was taken
        self.assertEqual(flooder.expect_closed(), self.FLOODING)
        other.expect("< guest2 left (1 online)")
        self.assert_serving(srv, [other])

    def test_a_flood_of_over_long_lines_gets_few_replies_and_is_cut_off(self):
        srv = self.start_server(self.LIMITS)
        other = self.connect(srv)
        flooder = self.connect(srv, [other])
        try:
            flooder.send_raw((b"x" * 3000 + b"\n") * 200)
        except OSError:
            pass
        lines = flooder.expect_closed()
        self.assertEqual(lines[-2:], self.FLOODING)
        too_long = lines[:-2]
        self.assertTrue(0 < len(too_long) <= 20, lines)
        self.assertEqual(set(too_long), {"! line too long (max 2048 bytes)"})
        other.expect("< guest2 left (1 online)")
        self.assert_serving(srv, [other])

    def test_an_endless_line_is_cut_off_long_before_line_timeout(self):
        """Each max_line + 1 bytes of a line being dropped count as a line:
        4 MiB without a newline is a flood, not 30 seconds of free CPU."""
        srv = self.start_server(self.LIMITS)
        other = self.connect(srv)
        flooder = self.connect(srv, [other])
        start = time.monotonic()
        try:
            flooder.send_raw(b"y" * (4 << 20))
        except OSError:
            pass
        lines = flooder.expect_closed()
        self.assertEqual(lines, ["! line too long (max 2048 bytes)"] + self.FLOODING)
        self.assertLess(time.monotonic() - start, 10)  # line_timeout is 30
        other.expect("< guest2 left (1 online)")
        self.assert_serving(srv, [other])

    def test_with_no_rate_limit_dropped_lines_cost_no_disconnect(self):
        srv = self.start_server()  # rate = 0: the admin turned the limit off
        a = self.connect(srv)
        a.send_raw(b"\n" * 1000 + (b"x" * 3000 + b"\n") * 3)
        for _ in range(3):
            a.expect("! line too long (max 2048 bytes)")
        self.sync(a)


# ---- 2. arrivals and departures at most announce_rate a second per room -------

class AnnouncementRateTest(FairnessTestCase):
    def test_connect_close_churn_is_not_relayed_to_the_room_line_by_line(self):
        srv = self.start_server({"limits": {"announce_rate": "5"}})
        watcher = self.connect(srv)
        start = time.monotonic()
        cycles = 200
        for _ in range(cycles):
            c = Client(srv.port)
            c.welcome()
            c.close()
        # A second later the room hears again, and is told what it missed.
        time.sleep(1.1)
        late = Client(srv.port)
        self.addCleanup(late.close)
        late.welcome()
        elapsed = time.monotonic() - start
        lines = watcher.read_until(r"^> %s entered " % late.nick)[:-1]
        told = [line for line in lines if line[0] in "<>"]
        missed = [re.fullmatch(r"# (\d+) more arrivals and departures in lobby not shown "
                               r"\(more than 5 a second\)", line) for line in lines
                  if line[0] == "#"]
        self.assertTrue(missed and all(missed), lines)
        self.assertEqual(len(told) + sum(int(m.group(1)) for m in missed), 2 * cycles)
        # At most 5 at once and 5 a second after.
        self.assertLessEqual(len(told), 5 + 5 * elapsed, lines)


# ---- 3. replies the server chooses to send fit any max_sendq ------------------

class LongReplyTest(FairnessTestCase):
    def test_a_motd_that_cannot_fit_max_sendq_is_a_config_error(self):
        with self.subTest("chatd -t"):
            srv_dir = self.enterContext(tempfile.TemporaryDirectory())
            motd = srv_dir + "/motd"
            with open(motd, "w") as f:
                f.write(("m" * 99 + "\n") * 100)  # 10 KB
            conf = srv_dir + "/chatd.conf"
            write_config(conf, {"server": {"motd_file": motd},
                                "limits": {"max_sendq": "8192"}})
            r = run_chatd("-t", "-c", conf, text=True)
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            self.assertIn("chatd.conf:4: max_sendq: the MOTD is 10200 bytes as sent, more than "
                          "max_sendq - 256 = 7936: no client could be sent it; shorten the MOTD "
                          "or raise max_sendq", r.stderr)
            write_config(conf, {"server": {"motd_file": motd},
                                "limits": {"max_sendq": "10456"}})
            r = run_chatd("-t", "-c", conf, text=True)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_who_and_rooms_come_in_pages_with_a_small_max_sendq(self):
        """300 members with 32-character nicks, then each in a room named
        alike: /who and /rooms would each be about 10 KB in one line, more
        than max_sendq = 8192. (The crowd is made with the default
        max_sendq, as the members do not read what it tells them.)"""
        srv = self.start_server()
        asker = self.connect(srv)
        members = []
        for i in range(299):
            c = Client(srv.port)
            self.addCleanup(c.close)
            c.welcome()
            c.send("/nick n%031d" % i)
            members.append(c)
        # Members on two workers: their lines may come in any order.
        renamed = 0
        while renamed < len(members):
            renamed += " is now known as n" in asker.read_line()
        self.reload_with(srv, {"limits": {"max_sendq": "8192"}})
        asker.send("/who")
        first = asker.read_line()
        self.assertTrue(first.startswith("= 300 in lobby, page 1 of 3: guest1 n0"), first[:80])
        self.assertEqual(len(first.split(": ", 1)[1].split()), 100)
        asker.send("/who 3")
        last = asker.read_line()
        self.assertTrue(last.startswith("= 300 in lobby, page 3 of 3: "), last[:80])
        self.assertEqual(last.split(": ", 1)[1].split()[-1], "n%031d" % 298)
        asker.send("/who 4")
        asker.expect("! no page 4: /who has 3 pages")

        self.reload_with(srv, {})
        for i, c in enumerate(members):
            c.send("/join r%031d" % i)
        went = 0
        while went < len(members):
            went += asker.read_line().startswith("< n")
        self.reload_with(srv, {"limits": {"max_sendq": "8192"}})
        asker.send("/rooms")
        page = asker.read_line()
        self.assertTrue(page.startswith("= 300 rooms, page 1 of 6: lobby (1), r0"), page[:80])
        asker.send("/rooms 6")
        page = asker.read_line()
        self.assertTrue(page.startswith("= 300 rooms, page 6 of 6: r"), page[:80])
        self.assertTrue(page.endswith("r%031d (1)" % 298), page[-60:])
        self.sync(asker)
        self.assertNotIn("too slow", srv.log.text())

    def reload_with(self, srv, overrides):
        srv.rewrite_config(overrides)
        self.assertIn("config reloaded", srv.reload().group(0))


# ---- 8. a newcomer hears nothing from before its own welcome ---------------------

class ArrivalOrderTest(FairnessTestCase):
    PAIRS = 200

    def test_two_clients_arriving_together_each_hear_only_of_later_arrivals(self):
        """Pairs connect at the same moment, each likely on another worker:
        neither may hear of an arrival its own greeting already counted."""
        srv = self.start_server()
        stale = []
        for p in range(self.PAIRS):
            pair = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(2)]
            for s in pair:
                s.setblocking(False)
                s.connect_ex(("127.0.0.1", srv.port))
            clients = []
            for s in pair:
                s.setblocking(True)
                c = Client.__new__(Client)
                c.sock, c.buf, c.nick = s, b"", None
                clients.append(c)
            try:
                online = [c.welcome()[2] for c in clients]
                for c in clients:
                    c.send("bye from %s" % c.nick)
                for me, other, my_online in ((clients[0], clients[1], online[0]),
                                             (clients[1], clients[0], online[1])):
                    # Guest numbers are given in the order of arrival.
                    for line in me.read_until(r"^\[%s\] bye from " % other.nick):
                        m = re.fullmatch(r"> guest(\d+) entered \(\d+ online\)", line)
                        if m and int(m.group(1)) < int(me.nick[5:]):
                            stale.append("pair %d: %s (welcomed with %d online) heard %r"
                                         % (p, me.nick, my_online, line))
            finally:
                for c in clients:
                    c.close()
        self.assertEqual(stale, [], "\n".join(stale))


if __name__ == "__main__":
    import chatdtest
    chatdtest.main()
