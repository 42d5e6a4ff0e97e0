#!/usr/bin/env python3
"""chatd under systemd's service protocol, checked for real: the test owns the
NOTIFY_SOCKET (an AF_UNIX datagram socket, as systemd does) and reads what
the daemon sends: READY=1, STATUS=, RELOADING=1 + MONOTONIC_USEC= on SIGHUP,
STOPPING=1, WATCHDOG=1. Also SIGHUP reloads (new MOTD, broken file, port
change), SIGTERM/SIGINT shutdown as clients see it, and socket activation
through the real systemd-socket-activate.
"""
import collections
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import unittest

import chatdtest
from chatdtest import TIMEOUT, Client, free_port, wait_for_item

# How long a clean shutdown may take: the server flushes for about two
# seconds (docs/protocol.md), then must be gone.
SHUTDOWN_LIMIT = 5.0

Datagram = collections.namedtuple("Datagram", "index text lines pid when")


def assert_nothing_listens(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    try:
        s.connect(("127.0.0.1", port))
    except ConnectionRefusedError:
        return
    finally:
        s.close()
    raise AssertionError("something accepts connections on 127.0.0.1:%d" % port)


class NotifySocket:
    """What systemd listens on for sd_notify(): an AF_UNIX datagram socket.
    Every datagram received is kept (with the sender's pid from
    SCM_CREDENTIALS), so tests can check order and search back."""

    def __init__(self):
        self._dir = tempfile.TemporaryDirectory(prefix="chatd-notify-")
        self.path = os.path.join(self._dir.name, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(self.path)
        self.received = []

    def close(self):
        self.sock.close()
        self._dir.cleanup()

    def mark(self):
        self._receive(0)
        return len(self.received)

    def _receive(self, timeout):
        """Receives what is queued, waiting up to timeout for the first one."""
        wait = timeout
        while True:
            if wait > 0:
                self.sock.settimeout(wait)
            else:
                self.sock.setblocking(False)
            try:
                data, anc, _flags, _addr = self.sock.recvmsg(
                    65536, socket.CMSG_SPACE(struct.calcsize("iII")))
            except (socket.timeout, BlockingIOError):
                return
            pid = None
            for level, kind, cdata in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("iII", cdata[:struct.calcsize("iII")])[0]
            text = data.decode("utf-8", "replace")
            self.received.append(Datagram(len(self.received), text,
                                          [l for l in text.split("\n") if l],
                                          pid, time.monotonic()))
            wait = 0

    def wait(self, pred, what, timeout=TIMEOUT, start=0):
        """The first datagram at index >= start for which pred(datagram) is
        true; waits for more up to timeout, then fails listing all received."""
        i = wait_for_item(self.received, pred, self._receive,
                          lambda: "no notify datagram %s within %.1fs; received:\n%s"
                          % (what, timeout, self.dump()),
                          timeout, start)
        return self.received[i]

    def wait_line(self, line, start=0, timeout=TIMEOUT):
        return self.wait(lambda d: line in d.lines, repr(line), timeout, start)

    def wait_status(self, pattern, start=0, timeout=TIMEOUT):
        rx = re.compile(pattern)
        return self.wait(lambda d: any(rx.fullmatch(l) for l in d.lines),
                         "with a line matching %r" % pattern, timeout, start)

    def collect(self, seconds):
        """Everything that arrives within seconds (only to prove a negative)."""
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._receive(left)

    def dump(self):
        return "\n".join("  #%d pid=%s %r" % (d.index, d.pid, d.text) for d in self.received) \
            or "  (nothing)"


def fields(datagram):
    out = {}
    for line in datagram.lines:
        k, sep, v = line.partition("=")
        if sep:
            out[k] = v
    return out


def status_online(n):
    return r"STATUS=.*\b%d\b.*online.*" % n


class NotifyTestCase(unittest.TestCase):
    """Each test gets its own notify socket; servers and clients are closed
    (killed if need be) at cleanup."""

    def setUp(self):
        self.notify = NotifySocket()
        self.addCleanup(self.notify.close)

    def server(self, config=None, env=None, prefix=None, start=True):
        env = dict(env or {}, NOTIFY_SOCKET=self.notify.path)
        srv = chatdtest.Server(config=config, env=env, prefix=prefix or (),
                               new_session=prefix is not None)
        self.addCleanup(srv.close)
        if start:
            srv.start()
        return srv

    def client(self, port):
        c = Client(port)
        self.addCleanup(c.close)
        return c

    def join(self, srv, nick, online, others=()):
        """Connects a client and checks its greeting and everyone's notice."""
        c = self.client(srv.port)
        _motd, got_nick, got_online = c.welcome()
        self.assertEqual((got_nick, got_online), (nick, online))
        for o in others:
            o.expect("> %s entered (%d online)" % (nick, online))
        return c

    def mono_usec(self):
        return int(time.clock_gettime(time.CLOCK_MONOTONIC) * 1000000)


class ReadyAndStatusTest(NotifyTestCase):

    def test_ready_once_listening(self):
        srv = self.server(start=False)
        ready = self.notify.wait_line("READY=1")
        # READY=1 means "accepting": the listening line is logged and a
        # client gets its greeting right away.
        srv.start()
        self.assertEqual(ready.pid, srv.proc.pid,
                         "READY=1 must come from the main pid (systemd's NotifyAccess=main)")
        c = self.client(srv.port)
        self.assertEqual(c.welcome(), (["Welcome to chatd!"], "guest1", 1))
        self.assertEqual([d for d in self.notify.received if "READY=1" in d.lines], [ready],
                         "READY=1 sent more than once at startup:\n" + self.notify.dump())

    def test_status_follows_client_count(self):
        srv = self.server()
        self.notify.wait_line("READY=1")
        clients = []
        for n in (1, 2, 3):
            mark = self.notify.mark()
            clients.append(self.join(srv, "guest%d" % n, n, others=clients))
            self.notify.wait_status(status_online(n), start=mark)
        for n in (2, 1, 0):
            mark = self.notify.mark()
            leaving = clients.pop()
            leaving.close()
            for o in clients:
                o.expect("< %s left (%d online)" % (leaving.nick, n))
            self.notify.wait_status(status_online(n), start=mark)
        # The status systemctl shows now is the last one sent.
        statuses = [l for d in self.notify.received for l in d.lines if l.startswith("STATUS=")]
        self.assertRegex(statuses[-1], status_online(0))


class ReloadTest(NotifyTestCase):

    def test_sighup_sends_reloading_with_monotonic_usec_then_ready(self):
        srv = self.server()
        self.notify.wait_line("READY=1")
        mark = self.notify.mark()
        before = self.mono_usec()
        srv.reload()
        reloading = self.notify.wait_line("RELOADING=1", start=mark)
        after = self.mono_usec()
        f = fields(reloading)
        self.assertIn("MONOTONIC_USEC", f,
                      "RELOADING=1 and MONOTONIC_USEC= must be in the same datagram: %r"
                      % reloading.text)
        self.assertRegex(f["MONOTONIC_USEC"], r"^[0-9]+$")
        usec = int(f["MONOTONIC_USEC"])
        # CLOCK_MONOTONIC in microseconds, taken between our kill() and our
        # receiving it (50 ms of slack for rounding).
        self.assertTrue(before - 50000 <= usec <= after + 50000,
                        "MONOTONIC_USEC=%d is not CLOCK_MONOTONIC in usec "
                        "(expected between %d and %d)" % (usec, before, after))
        ready = self.notify.wait_line("READY=1", start=reloading.index + 1)
        self.assertEqual((reloading.pid, ready.pid), (srv.proc.pid, srv.proc.pid))

    def test_new_motd_for_new_clients_old_clients_stay(self):
        srv = self.server(config={"server": {"motd": "first motd"}})
        old = self.client(srv.port)
        self.assertEqual(old.welcome(), (["first motd"], "guest1", 1))
        srv.rewrite_config({"server": {"motd": "second motd"}})
        m = srv.reload()
        self.assertEqual(m.group(0), "config reloaded")
        srv.log.wait(r"config reloaded from %s( |$)" % re.escape(srv.config_path))
        new = self.client(srv.port)
        self.assertEqual(new.welcome(), (["second motd"], "guest2", 2))
        old.expect("> guest2 entered (2 online)")
        old.send("still here after the reload")
        new.expect("[guest1] still here after the reload")
        new.send("hello old timer")
        old.expect("[guest2] hello old timer")

    def test_broken_config_on_reload_keeps_the_old_one(self):
        srv = self.server(config={"server": {"motd": "good motd"}})
        self.notify.wait_line("READY=1")
        old = self.client(srv.port)
        self.assertEqual(old.welcome(), (["good motd"], "guest1", 1))
        srv.rewrite_config(text="[server]\n"
                                "port = 0\n"
                                "bind = 127.0.0.1\n"
                                "threads = 2\n"
                                "max_clients = banana\n"
                                "motd = broken motd\n"
                                "[log]\n"
                                "level = debug\n"
                                "target = stderr\n")
        mark = self.notify.mark()
        m = srv.reload()
        self.assertEqual(m.group(0), "reload failed", srv.log.text())
        m = srv.log.wait(r"reload failed, keeping the old config: (.*):(\d+): \S")
        self.assertEqual((m.group(1), m.group(2)), (srv.config_path, "5"),
                         "the error must name the file and the line of max_clients")
        # Still running, still the old MOTD, old client still there.
        new = self.client(srv.port)
        self.assertEqual(new.welcome(), (["good motd"], "guest2", 2))
        old.expect("> guest2 entered (2 online)")
        new.send("after the failed reload")
        old.expect("[guest2] after the failed reload")
        # systemd waits for READY=1 after RELOADING=1 whatever the outcome.
        reloading = self.notify.wait_line("RELOADING=1", start=mark)
        self.notify.wait_line("READY=1", start=reloading.index + 1)
        self.assertIsNone(srv.proc.poll())

    def test_port_change_takes_effect_after_a_restart(self):
        srv = self.server(config={"server": {"motd": "before"}})
        old = self.client(srv.port)
        old.welcome()
        new_port = free_port()
        srv.rewrite_config({"server": {"port": str(new_port), "motd": "after"}})
        m = srv.reload()
        self.assertEqual(m.group(0), "config reloaded", srv.log.text())
        srv.log.wait(r"port changed in %s: takes effect after a restart"
                     % re.escape(srv.config_path))
        # The old port still serves (with the rest of the new config)...
        c = self.client(srv.port)
        self.assertEqual(c.welcome(), (["after"], "guest2", 2))
        old.expect("> guest2 entered (2 online)")
        # ...and the daemon did not start listening on the new one.
        assert_nothing_listens(new_port)


class WatchdogTest(NotifyTestCase):
    USEC = 200000

    def check_pings(self, srv):
        self.notify.wait_line("READY=1")
        start = self.notify.mark()
        t0 = time.monotonic()
        seen = 0
        i = start
        # Five pings; systemd would kill a service that is silent for
        # WATCHDOG_USEC, so five must come within about 5 * 0.2 s.
        while seen < 5:
            d = self.notify.wait_line("WATCHDOG=1", start=i, timeout=3.0)
            self.assertEqual(d.pid, srv.proc.pid)
            seen += 1
            i = d.index + 1
        elapsed = time.monotonic() - t0
        self.assertLess(elapsed, 5 * self.USEC / 1e6 + 0.5,
                        "WATCHDOG=1 must come more often than every WATCHDOG_USEC")
        self.assertIsNone(srv.proc.poll())

    def test_watchdog_pings_with_watchdog_usec(self):
        srv = self.server(env={"WATCHDOG_USEC": str(self.USEC)})
        self.check_pings(srv)

    def test_watchdog_pings_when_watchdog_pid_is_the_daemon(self):
        # systemd sets WATCHDOG_PID to the main pid; a wrapper that execs
        # chatd knows that pid before chatd runs.
        srv = self.server(env={"WATCHDOG_USEC": str(self.USEC)},
                          prefix=["/bin/sh", "-c",
                                  'WATCHDOG_PID=$$; export WATCHDOG_PID; exec "$@"', "sh"])
        self.check_pings(srv)

    def test_no_watchdog_without_watchdog_usec(self):
        srv = self.server()
        self.notify.wait_line("READY=1")
        # A negative: nothing during 5 would-be watchdog periods.
        self.notify.collect(5 * self.USEC / 1e6)
        pings = [d for d in self.notify.received if "WATCHDOG=1" in d.lines]
        self.assertEqual(pings, [], "WATCHDOG=1 sent though WATCHDOG_USEC is not set")
        self.assertIsNone(srv.proc.poll())


class ShutdownTest(NotifyTestCase):

    def check_shutdown(self, sig, name):
        srv = self.server()
        self.notify.wait_line("READY=1")
        c1 = self.join(srv, "guest1", 1)
        c2 = self.join(srv, "guest2", 2, others=[c1])
        c2.send("/nick bob")
        c2.expect("* guest2 is now known as bob")
        c1.expect("* guest2 is now known as bob")
        mark = self.notify.mark()
        t0 = time.monotonic()
        srv.signal(sig)
        for c in (c1, c2):
            c.expect("# server shutting down")
            self.assertEqual(c.expect_closed(), [], "nothing may follow the shutdown notice")
        try:
            status = srv.proc.wait(SHUTDOWN_LIMIT)
        except subprocess.TimeoutExpired:
            raise AssertionError("chatd still running %.1fs after %s" % (SHUTDOWN_LIMIT, name))
        elapsed = time.monotonic() - t0
        self.assertEqual(status, 0, "exit status after %s" % name)
        self.assertLess(elapsed, SHUTDOWN_LIMIT)
        stopping = self.notify.wait_line("STOPPING=1", start=mark, timeout=1)
        self.assertEqual(stopping.pid, srv.proc.pid)
        srv.log.wait(r"shutting down \(signal (SIG)?%s\)" % name[3:])
        srv.log.wait(r"\bstopped( \[stop\])?$")

    def test_sigterm(self):
        self.check_shutdown(signal.SIGTERM, "SIGTERM")

    def test_sigint(self):
        self.check_shutdown(signal.SIGINT, "SIGINT")


@unittest.skipUnless(shutil.which("systemd-socket-activate"),
                     "systemd-socket-activate is not installed")
class SocketActivationTest(NotifyTestCase):

    def test_socket_activated_start(self):
        listen_port = free_port()
        config_port = free_port()
        while config_port == listen_port:
            config_port = free_port()
        # Non---accept mode: systemd-socket-activate listens, waits for the
        # first connection, then execs chatd (same pid) with the listening
        # socket as fd 3 (LISTEN_FDS=1, LISTEN_PID). It passes on only the
        # variables named with -E.
        srv = self.server(
            config={"server": {"port": str(config_port), "motd": "activated motd"}},
            prefix=["systemd-socket-activate", "-l", "127.0.0.1:%d" % listen_port,
                    "-E", "NOTIFY_SOCKET=%s" % self.notify.path],
            start=False)
        srv.log.wait(r"Listening on 127\.0\.0\.1:%d\b" % listen_port)
        self.notify.mark()
        self.assertEqual(self.notify.received, [], "chatd ran before the first connection")

        first = self.client(listen_port)
        self.assertEqual(first.welcome(), (["activated motd"], "guest1", 1))
        # Without --fdname the socket has no name ("unknown"): the line protocol.
        srv.log.wait(r'listening on 127\.0\.0\.1:%d for the line protocol '
                     r'\(socket-activated, name "unknown"\)$' % listen_port)
        srv.port = listen_port
        ready = self.notify.wait_line("READY=1")
        self.assertEqual(ready.pid, srv.proc.pid)
        second = self.join(srv, "guest2", 2, others=[first])
        second.send("through the passed socket")
        first.expect("[guest2] through the passed socket")
        assert_nothing_listens(config_port)

        mark = self.notify.mark()
        srv.signal(signal.SIGTERM)
        for c in (first, second):
            c.expect("# server shutting down")
            self.assertEqual(c.expect_closed(), [])
        self.assertEqual(srv.proc.wait(SHUTDOWN_LIMIT), 0)
        self.notify.wait_line("STOPPING=1", start=mark, timeout=1)

    def activate(self, names, config=None):
        """chatd under systemd-socket-activate with one loopback socket per
        name in NAMES (None: no --fdname at all), exec'd at the first
        connection to the first one, which is returned greeted, with the
        ports in the order of NAMES. The config turns IRC on, on a port of
        its own, which must not be bound."""
        ports = []
        while len(ports) < len(names) + 1:
            p = free_port()
            if p not in ports:
                ports.append(p)
        listen, config_irc_port = ports[:-1], ports[-1]
        prefix = ["systemd-socket-activate"]
        for p in listen:
            prefix += ["-l", "127.0.0.1:%d" % p]
        if names[0] is not None:
            prefix.append("--fdname=" + ":".join(names))
        prefix += ["-E", "NOTIFY_SOCKET=%s" % self.notify.path]
        cfg = {"irc": {"port": str(config_irc_port)}}
        cfg.update(config or {})
        srv = self.server(config=cfg, prefix=prefix, start=False)
        for p in listen:
            srv.log.wait(r"Listening on 127\.0\.0\.1:%d\b" % p)
        first = self.client(listen[0])
        first.welcome()
        srv.port = listen[0]
        self.notify.wait_line("READY=1")
        assert_nothing_listens(config_irc_port)
        return srv, first, listen

    def test_two_named_sockets_line_and_irc(self):
        # What chatd.socket and chatd-irc.socket pass: FileDescriptorName=
        # is the name; systemd-socket-activate's --fdname names the sockets
        # in the order of -l.
        srv, first, (line_port, irc_port) = self.activate(["chatd", "irc"])
        srv.log.wait(r'listening on 127\.0\.0\.1:%d for the line protocol '
                     r'\(socket-activated, name "chatd"\)$' % line_port)
        srv.log.wait(r'listening on 127\.0\.0\.1:%d for IRC '
                     r'\(socket-activated, name "irc"\)$' % irc_port)
        self.assertNotIn("no IRC", srv.log.text())
        # Each accepts: the line socket speaks the line protocol...
        second = self.join(srv, "guest2", 2, others=[first])
        second.send("through the line socket")
        first.expect("[guest2] through the line socket")
        # ...and the IRC one takes connections (what it says is the codec's).
        with socket.create_connection(("127.0.0.1", irc_port), timeout=TIMEOUT):
            pass
        self.assertEqual(srv.stop(), 0)

    def test_the_web_names_serve_the_page(self):
        srv, first, ports = self.activate(["line", "web"],
                                          config={"web": {"root": chatdtest.WEB_ROOT}})
        srv.log.wait(r'listening on 127\.0\.0\.1:%d for the web page \(http, ws\) '
                     r'\(socket-activated, name "web"\)$' % ports[1])
        page = socket.create_connection(("127.0.0.1", ports[1]), timeout=chatdtest.TIMEOUT)
        self.addCleanup(page.close)
        page.sendall(b"GET / HTTP/1.0\r\n\r\n")
        got = b""
        while True:
            data = page.recv(65536)
            if not data:
                break
            got += data
        self.assertTrue(got.startswith(b"HTTP/1.1 200 OK\r\n"), got[:200])
        self.assertIn(b"<title>chatd</title>", got)
        self.assertEqual(srv.stop(), 0)

    def test_any_other_name_is_the_line_protocol(self):
        srv, first, ports = self.activate(["line", "chat"])
        for name, port in zip(["line", "chat"], ports):
            srv.log.wait(r'listening on 127\.0\.0\.1:%d for the line protocol '
                         r'\(socket-activated, name "%s"\)$' % (port, name))
        srv.log.wait(r'no IRC: systemd passed no socket named "irc" \(under socket '
                     r'activation \[irc\] port is not used\)$')
        # The second socket greets a line client too.
        other = self.client(ports[1])
        _motd, nick, online = other.welcome()
        self.assertEqual(online, 2)
        first.expect("> %s entered (2 online)" % nick)
        self.assertEqual(srv.stop(), 0)


if __name__ == "__main__":
    chatdtest.main()
