#!/usr/bin/env python3
"""chatd-bench: its figures against a real chatd, and its error counts
against a relay that loses, duplicates and reorders lines on purpose (chatd
does none of that, so only such a relay can show that chatd-bench sees it).
And the minimal relay of bench/relay.c, make bench's yardstick: it must
deliver every line once and in order, or its figures mean nothing.

Environment: CHATD_BENCH, the built load generator (default:
src/bench/chatd-bench next to the daemon); CHATD_RELAY, the built relay
(default: bench/relay in the build tree)."""
import asyncio
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import chatdtest  # noqa: E402

BENCH = os.environ.get("CHATD_BENCH") or os.path.join(
    os.path.dirname(os.path.abspath(chatdtest.CHATD)), "bench", "chatd-bench")


RELAY = os.environ.get("CHATD_RELAY") or os.path.join(
    os.path.dirname(os.path.abspath(chatdtest.CHATD)), "..", "bench", "relay")


def run_bench(port, *args, timeout=30):
    """Runs chatd-bench; returns (exit status, RESULT fields, output)."""
    proc = subprocess.run([BENCH, "--port", str(port)] + [str(a) for a in args],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    m = re.search(r"^RESULT (.*)$", proc.stdout, re.M)
    fields = dict(kv.split("=", 1) for kv in m.group(1).split()) if m else {}
    return proc.returncode, fields, proc.stdout + proc.stderr


class FaultyRelay:
    """A chat relay in chatd's line format that, for benchmark lines
    ("~B sender seq time"), does one of three things wrong: it never
    delivers sender 0's line `drop` to one recipient, delivers sender 0's
    line `dup` twice to everyone, and delivers sender 1's line `swap` to
    everyone after the line that follows it. Loopback only; stopped by
    close()."""

    def __init__(self, drop=None, dup=None, swap=None):
        self.drop, self.dup, self.swap = drop, dup, swap
        self.loop = asyncio.new_event_loop()
        self.started = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        if not self.started.wait(10):
            raise AssertionError("the relay did not start")

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.clients = []
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self._client, "127.0.0.1", 0))
        self.port = self.server.sockets[0].getsockname()[1]
        self.started.set()
        self.loop.run_forever()
        self.loop.close()

    async def _shutdown(self):
        self.server.close()
        for w in self.clients:
            w.close()
        await asyncio.gather(self.server.wait_closed(), *(w.wait_closed() for w in self.clients),
                             return_exceptions=True)
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.cancel()
        self.loop.stop()

    async def _client(self, reader, writer):
        index = len(self.clients)
        self.clients.append(writer)
        writer.write(b"> Connected to the chat server as b%d\n" % index)
        held = {}
        dropped = False
        while True:
            line = await reader.readline()
            if not line:
                break
            m = re.match(rb"~B (\d+) (\d+) ", line)
            key = (int(m.group(1)), int(m.group(2))) if m else None
            out = b"[b%d] " % index + line
            for other in self.clients:
                if other is writer:
                    continue
                if key == (0, self.drop) and not dropped:
                    dropped = True  # one recipient only
                    continue
                if key == (1, self.swap):
                    held[other] = out
                    continue
                other.write(out)
                if key == (0, self.dup):
                    other.write(out)
                if self.swap is not None and key == (1, self.swap + 1) and other in held:
                    other.write(held.pop(other))

    def close(self):
        asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop)
        self.thread.join(10)


class TwoProtocolRelay:
    """A chat relay that speaks chatd's lines on one port and IRC on
    another, in shared rooms (room R is IRC's #R), as chatd with an IRC
    port does, as far as chatd-bench needs: line clients are greeted and
    /join; IRC clients register (NICK, USER; a PING they must answer) and
    JOIN; a line said in a room goes to its other members, each in its own
    protocol. Counts what it relayed from each protocol to each. Loopback
    only; stopped by close()."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.started = threading.Event()
        self.members = {}  # room -> [(writer, proto)]
        self.relayed = {}  # (from proto, to proto) -> lines
        self.pongs = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        if not self.started.wait(10):
            raise AssertionError("the relay did not start")

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.writers = []
        self.servers = [self.loop.run_until_complete(asyncio.start_server(handler, "127.0.0.1", 0))
                        for handler in (self._line_client, self._irc_client)]
        self.port, self.irc_port = (srv.sockets[0].getsockname()[1] for srv in self.servers)
        self.started.set()
        self.loop.run_forever()
        self.loop.close()

    async def _shutdown(self):
        for srv in self.servers:
            srv.close()
        for w in self.writers:
            w.close()
        await asyncio.gather(*(srv.wait_closed() for srv in self.servers),
                             *(w.wait_closed() for w in self.writers), return_exceptions=True)
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.cancel()
        self.loop.stop()

    def _say(self, room, writer, proto, nick, text):
        for other, to in self.members.get(room, []):
            if other is writer:
                continue
            # Counted first: a write may reach chatd-bench, which may end and
            # have the count read, before this thread runs again.
            self.relayed[(proto, to)] = self.relayed.get((proto, to), 0) + 1
            if to == "irc":
                other.write(b":%s!u@127.0.0.1 PRIVMSG #%s :%s\r\n" % (nick, room, text))
            else:
                other.write(b"[%s] %s\n" % (nick, text))

    async def _line_client(self, reader, writer):
        self.writers.append(writer)
        nick = b"guest%d" % len(self.writers)
        writer.write(b"> Connected to the chat server as %s (1 online)\n" % nick)
        room = None
        while line := await reader.readline():
            line = line.rstrip(b"\n")
            if line.startswith(b"/join "):
                room = line[6:]
                self.members.setdefault(room, []).append((writer, "line"))
                writer.write(b"= you joined %s (%d here)\n" % (room, len(self.members[room])))
            elif room is not None:
                self._say(room, writer, "line", nick, line)

    async def _irc_client(self, reader, writer):
        self.writers.append(writer)
        nick = None
        while line := await reader.readline():
            cmd, _, rest = line.rstrip(b"\r\n").partition(b" ")
            if cmd == b"NICK":
                nick = rest
            elif cmd == b"USER":
                writer.write(b":fake 001 %s :Welcome\r\nPING :fake\r\n" % nick)
            elif cmd == b"PONG":
                self.pongs += 1
            elif cmd == b"JOIN":
                room = rest[1:]
                self.members.setdefault(room, []).append((writer, "irc"))
                writer.write(b":%s!u@127.0.0.1 JOIN %s\r\n:fake 353 %s = %s :%s\r\n"
                             b":fake 366 %s %s :End of /NAMES list.\r\n" % (nick, rest, nick, rest, nick, nick, rest))
            elif cmd == b"PRIVMSG":
                target, _, text = rest.partition(b" :")
                self._say(target[1:], writer, "irc", nick, text)

    def close(self):
        asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop)
        self.thread.join(10)


class MinimalRelay:
    """bench/relay on a free loopback port, with THREADS threads; killed by
    close(). Its stderr goes to a file, read for sanitizer reports."""

    def __init__(self, threads):
        self.errors = tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen([RELAY, "0", str(threads)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self.errors)
        deadline = time.monotonic() + chatdtest.TIMEOUT
        while time.monotonic() < deadline and self.proc.poll() is None:
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", self.text())
            if m:
                self.port = int(m.group(1))
                return
            time.sleep(0.02)
        self.close()
        raise AssertionError("the relay did not start: " + self.text())

    def text(self):
        self.errors.seek(0)
        return self.errors.read()

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self.errors.close()


class BenchTest(chatdtest.ChatdTestCase):

    def relay(self, **faults):
        r = FaultyRelay(**faults)
        self.addCleanup(r.close)
        return r

    def minimal_relay(self, threads=2):
        r = MinimalRelay(threads)
        self.addCleanup(r.close)
        self.addCleanup(lambda: self.assertIsNone(re.search(chatdtest.SANITIZER_REPORT, r.text()), r.text()))
        return r

    def test_window_blast_against_chatd(self):
        srv = self.start_server({"limits": {"max_sendq": "16777216"}})
        status, r, out = run_bench(srv.port, "--clients", 12, "--senders", 3, "--messages", 300,
                                   "--window", 8, "--pid", srv.proc.pid, "--timeout", 20)
        self.assertEqual(status, 0, out)
        self.assertEqual(int(r["expected"]), 3 * 300 * 11)
        self.assertEqual(r["deliveries"], r["expected"])
        for key in ("lost", "duplicated", "misordered", "unexpected", "unsent", "timed_out", "disconnected"):
            self.assertEqual(r[key], "0", key)
        self.assertEqual(float(r["late_max_ms"]), 0)  # nothing is scheduled with a window
        self.assertEqual(int(r["ready"]), 12)
        self.assertGreater(float(r["rate"]), 0)
        self.assertGreater(float(r["server_cpu_s"]), 0)  # from /proc, with --pid
        self.assertGreater(int(r["rss_connected_kib"]), 0)

    def test_paced_lines_and_both_latencies(self):
        srv = self.start_server()
        status, r, out = run_bench(srv.port, "--clients", 10, "--senders", 2, "--messages", 40,
                                   "--rate", 200, "--timeout", 20)
        self.assertEqual(status, 0, out)
        self.assertEqual(int(r["deliveries"]), 2 * 40 * 9)
        self.assertEqual(r["unstamped"], "0")
        # Every line reaches its socket before it is read, so each quantile
        # of arrival is at most the same quantile of reading.
        for q in ("p50_ms", "p99_ms", "max_ms"):
            self.assertGreater(float(r[q]), 0, q)
            self.assertLessEqual(float(r["arrival_" + q]), float(r[q]), q)
        # 80 lines at 200 a second take about 0.4 s.
        self.assertGreater(float(r["seconds"]), 0.3)
        # How late lines left against the schedule: a percentile is a
        # histogram bucket's top, up to 2% above the largest sample.
        late = [float(r[k]) for k in ("late_p50_ms", "late_p99_ms", "late_max_ms")]
        self.assertLessEqual(late[0], late[1])
        self.assertLessEqual(late[1], late[2] * 1.02 + 0.001)
        self.assertGreater(late[2], 0)

    def test_lost_duplicated_and_misordered_lines_are_counted(self):
        relay = self.relay(drop=10, dup=20, swap=30)
        status, r, out = run_bench(relay.port, "--clients", 6, "--senders", 2, "--messages", 40,
                                   "--rate", 400, "--timeout", 3)
        self.assertEqual(status, 3, out)
        self.assertEqual(r["lost"], "1", out)
        self.assertEqual(r["duplicated"], "5", out)  # line 20 to each of the 5 others
        self.assertEqual(r["misordered"], "5", out)  # line 30 after 31, at each of the 5
        self.assertEqual(r["unsent"], "0", out)
        self.assertEqual(r["timed_out"], "1", out)  # the lost line never came

    def test_a_lost_line_holds_its_senders_window(self):
        relay = self.relay(drop=10)
        status, r, out = run_bench(relay.port, "--clients", 6, "--senders", 2, "--messages", 100,
                                   "--window", 4, "--timeout", 5)
        self.assertEqual(status, 3, out)
        # The one delivery that never happened is the one lost; the lines
        # sender 0 could not send after it are counted apart.
        self.assertEqual(r["lost"], "1", out)
        self.assertEqual(int(r["unsent"]), 100 - (10 + 4), out)
        self.assertEqual(r["timed_out"], "1", out)
        self.assertEqual(r["duplicated"], "0", out)
        self.assertRegex(out, r"86 lines never sent")

    def test_a_clean_relay_passes(self):
        relay = self.relay()
        status, r, out = run_bench(relay.port, "--clients", 6, "--senders", 2, "--messages", 50,
                                   "--window", 4, "--timeout", 10)
        self.assertEqual(status, 0, out)
        self.assertEqual(int(r["deliveries"]), 2 * 50 * 5)


    def test_a_mixed_room_crosses_protocols(self):
        for rooms in (1, 2):
            relay = TwoProtocolRelay()
            self.addCleanup(relay.close)
            status, r, out = run_bench(relay.port, "--proto", "mixed", "--irc-port", relay.irc_port,
                                       "--clients", 8, "--senders", 4, "--messages", 100, "--rooms", rooms,
                                       "--window", 8, "--timeout", 20)
            self.assertEqual(status, 0, out)
            self.assertEqual(r["proto"], "mixed")
            self.assertEqual(int(r["expected"]), 4 * 100 * (8 // rooms - 1))
            self.assertEqual(r["deliveries"], r["expected"], out)
            for key in ("lost", "duplicated", "misordered", "unexpected", "unsent", "timed_out", "disconnected"):
                self.assertEqual(r[key], "0", key)
            # Half of each room's clients, and of its senders, on each side:
            # every pair of protocols carried lines.
            self.assertEqual(sorted(relay.relayed), [(a, b) for a in ("irc", "line") for b in ("irc", "line")])
            self.assertEqual(sum(relay.relayed.values()), int(r["expected"]))
            self.assertEqual(relay.pongs, 8 // 2)  # every IRC client answered its PING

    def irc_server(self):
        """A chatd that also listens for IRC, and its IRC port; the test is
        skipped where this chatd has no [irc] port."""
        port = chatdtest.free_port()
        config = {"irc": {"port": str(port)}, "limits": {"max_sendq": "16777216"}}
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "chatd.conf")
            chatdtest.write_config(path, chatdtest.merged_config(config))
            if chatdtest.run_chatd("-t", "-c", path).returncode != 0:
                self.skipTest("this chatd has no [irc] port")
        srv = self.start_server(config)
        deadline = time.monotonic() + chatdtest.TIMEOUT
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=chatdtest.TIMEOUT).close()
                return srv, port
            except ConnectionRefusedError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def test_irc_and_a_mixed_room_against_chatd(self):
        srv, irc_port = self.irc_server()
        for proto, port, extra in (("irc", irc_port, []), ("mixed", srv.port, ["--irc-port", irc_port])):
            status, r, out = run_bench(port, "--proto", proto, *extra, "--clients", 12, "--senders", 4,
                                       "--messages", 300, "--window", 8, "--pid", srv.proc.pid,
                                       "--timeout", 20)
            self.assertEqual(status, 0, out)
            self.assertEqual(r["proto"], proto)
            self.assertEqual(int(r["expected"]), 4 * 300 * 11)
            self.assertEqual(r["deliveries"], r["expected"], out)
            for key in ("lost", "duplicated", "misordered", "unexpected", "unsent", "timed_out", "disconnected"):
                self.assertEqual(r[key], "0", key)
            self.assertGreater(float(r["server_cpu_s"]), 0)

    def test_irc_over_websocket_against_chatd(self):
        srv = self.start_irc_server(web=True)
        status, r, out = run_bench(srv.web_port, "--proto", "ws", "--clients", 12, "--senders", 4,
                                   "--messages", 300, "--window", 8, "--pid", srv.proc.pid,
                                   "--timeout", 20)
        self.assertEqual(status, 0, out)
        self.assertEqual(r["proto"], "ws")
        self.assertEqual(int(r["expected"]), 4 * 300 * 11)
        self.assertEqual(r["deliveries"], r["expected"], out)
        for key in ("lost", "duplicated", "misordered", "unexpected", "unsent", "timed_out", "disconnected"):
            self.assertEqual(r[key], "0", key)

    def test_mixed_needs_an_irc_port(self):
        status, _, out = run_bench(1, "--proto", "mixed", "--clients", 2, "--senders", 1, "--messages", 1)
        self.assertEqual(status, 1)
        self.assertIn("--proto mixed needs --irc-port", out)
        status, _, out = run_bench(1, "--irc-port", 2, "--clients", 2, "--senders", 1, "--messages", 1)
        self.assertEqual(status, 1)
        self.assertIn("--irc-port is for --proto mixed", out)

    def test_the_minimal_relay_delivers_every_line_once_in_order(self):
        relay = self.minimal_relay()
        for reads in ([], ["--no-io-uring"]):
            status, r, out = run_bench(relay.port, "--clients", 8, "--senders", 3, "--messages", 200,
                                       "--window", 8, "--pid", relay.proc.pid, "--timeout", 20, *reads)
            self.assertEqual(status, 0, out)
            self.assertEqual(int(r["expected"]), 3 * 200 * 7)
            self.assertEqual(r["deliveries"], r["expected"], out)
            for key in ("lost", "duplicated", "misordered", "unexpected", "unsent", "timed_out", "disconnected"):
                self.assertEqual(r[key], "0", key)
            self.assertGreater(float(r["server_cpu_s"]), 0)
        self.assertIsNone(relay.proc.poll())

    def test_the_minimal_relay_keeps_order_for_a_slow_reader(self):
        # A client that reads nothing while a first run's 150,000 lines
        # (about 5 MB) pass, more than the kernel's socket buffers take
        # (net.ipv4.tcp_wmem allows 4 MB): the relay's sends to it come up
        # short and the rest waits in the relay's own buffer. Then it reads
        # slowly while a second run passes, whose lines must queue behind
        # that rest, however much room the reads make in the socket.
        relay = self.minimal_relay()
        slow = socket.socket()
        self.addCleanup(slow.close)
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.connect(("127.0.0.1", relay.port))
        slow.settimeout(chatdtest.TIMEOUT)
        senders, clients, messages = 5, 10, (30000, 3000)
        lines = []

        def read_slowly():
            data = b""
            while len(lines) < 1 + senders * sum(messages):
                chunk = slow.recv(4096)
                if not chunk:
                    return
                data += chunk
                *done, data = data.split(b"\n")
                lines.extend(done)
                time.sleep(0.001)

        reader = threading.Thread(target=read_slowly, daemon=True)
        for run in range(2):
            if run == 1:
                reader.start()
            status, r, out = run_bench(relay.port, "--clients", clients, "--senders", senders,
                                       "--messages", messages[run], "--window", 16, "--timeout", 20)
            self.assertEqual(status, 0, out)
        reader.join(3 * chatdtest.TIMEOUT)
        self.assertFalse(reader.is_alive())
        self.assertRegex(lines[0], rb"^> Connected to the chat server as u1$")
        nexts = {}
        for i, line in enumerate(lines[1:]):
            m = re.match(rb"^\[u(\d+)\] ~B (\d+) (\d+) [0-9a-f]{16}$", line)
            self.assertTrue(m, line)
            nick, sender, seq = (int(g) for g in m.groups())
            # The first run's clients are u2..u11, the second's u12..u21.
            self.assertEqual(nick > 1 + clients, i >= senders * messages[0], line)
            self.assertEqual(seq, nexts.get((nick, sender), 0), line)
            nexts[(nick, sender)] = seq + 1
        self.assertEqual(sorted(nexts.values()), [messages[1]] * senders + [messages[0]] * senders)

if __name__ == "__main__":
    chatdtest.main()
