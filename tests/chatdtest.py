"""Test harness for chatd's integration tests: a real chatd on a free loopback
port, real TCP clients, waiting for lines instead of sleeping.

Environment (set by `make check`): CHATD = path of the built daemon.
"""
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

CHATD = os.environ.get("CHATD") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "src", "chatd")
CHATCTL = os.environ.get("CHATCTL") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "src", "ctl", "chatctl")
TIMEOUT = float(os.environ.get("CHATD_TEST_TIMEOUT", "10"))
# A command every daemon is started under, e.g. valgrind (see .ci/run).
WRAPPER = shlex.split(os.environ.get("CHATD_WRAPPER", ""))

# Tests talk fast and all from 127.0.0.1: the flood and per-address limits,
# and the rate of arrivals a room is told of, and the throttle of log lines
# about one address (tests wait for lines about hundreds of clients), are
# off unless a test sets them (tests of those limits do). IRC is off (its
# default port, 6667, is not the tests' to take): tests of IRC start a server
# with irc_server() or ChatdTestCase.start_irc_server(), which picks a free
# port; and the server does not ping its IRC clients, so that a slow test is
# not told "PING" in the middle of what it checks. Each server keeps its
# database in its own folder, and keeps no history (a client joining a room
# would be shown what earlier clients said there): tests of history turn it
# on ([history] keep).
DEFAULT_CONFIG = {
    "server": {"port": "0", "bind": "127.0.0.1", "threads": "2",
               "motd": "Welcome to chatd!"},
    "limits": {"rate": "0", "max_per_ip": "0", "connect_rate": "0", "announce_rate": "0"},
    "log": {"level": "debug", "target": "stderr", "per_address_burst": "0"},
    "irc": {"port": "0", "ping_timeout": "0"},
    "store": {"path": "chatd.db"},
    "control": {"socket": "control.sock"},
    "history": {"keep": "0"},
}

# A command chatd does not know: its reply must be the next line a client
# reads, which proves nothing else was pending for it (see ChatdTestCase.sync).
SYNC = "/sync-point"
SYNC_REPLY = "! unknown command: /sync-point (try /help)"
# What AddressSanitizer, UndefinedBehaviorSanitizer and ThreadSanitizer
# write to chatd's log when they find something.
SANITIZER_REPORT = r"ERROR: \w+Sanitizer|runtime error: |WARNING: ThreadSanitizer"
# What systemd (or a test run under it) may have set that would change what
# chatd does: the service protocol, socket activation, journal logging.
SYSTEMD_ENV = ("NOTIFY_SOCKET", "JOURNAL_STREAM", "LISTEN_FDS", "LISTEN_PID",
               "LISTEN_FDNAMES", "WATCHDOG_USEC", "WATCHDOG_PID", "STATE_DIRECTORY",
               "CREDENTIALS_DIRECTORY", "RUNTIME_DIRECTORY")
# Where a chatd whose config names no database keeps it (XDG_STATE_HOME),
# and its control socket when its config names none (RUNTIME_DIRECTORY, as
# systemd's RuntimeDirectory= sets it): this process's own folders, gone
# when it ends, never the user's nor /run/chatd. Made when first needed:
# a test that re-executes itself must not leave the first one's behind.
_HOMES = {}


def _home(kind):
    if kind not in _HOMES:
        _HOMES[kind] = tempfile.TemporaryDirectory(prefix="chatd-test-%s-" % kind)
    return _HOMES[kind].name



def chatctl_for_anyone():
    """A copy of chatctl any user may run: the build tree may be in a
    folder only its owner reaches (CI's sanitizer builds)."""
    path = os.path.join(_home("ctl"), "chatctl")
    if not os.path.exists(path):
        os.chmod(_home("ctl"), 0o755)
        shutil.copy(CHATCTL, path)
        os.chmod(path, 0o755)
    return path


def clean_env(extra=None, drop=()):
    """This process's environment without SYSTEMD_ENV, with chatd's state
    and runtime folders in temporary ones, plus extra, without the names
    in drop: for chatd and the tools the tests run."""
    env = dict(os.environ)
    for var in SYSTEMD_ENV:
        env.pop(var, None)
    env["XDG_STATE_HOME"] = _home("state")
    env["RUNTIME_DIRECTORY"] = _home("run")
    env.update(extra or {})
    for var in drop:
        env.pop(var, None)
    return env


def run_chatd(*args, timeout=TIMEOUT, prefix=(), **kw):
    """Runs chatd (under prefix, not under WRAPPER) to completion with stdin
    /dev/null and a clean environment; returns the CompletedProcess (bytes
    unless kw says text=True)."""
    return subprocess.run(list(prefix) + [CHATD] + list(args), stdin=subprocess.DEVNULL,
                          capture_output=True, env=clean_env(), timeout=timeout, **kw)


def free_port():
    """A port nobody listens on right now on 127.0.0.1 (bind to port 0,
    read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def have_ipv6_loopback():
    """Whether a socket can be bound to ::1 here."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def config_text(sections):
    """The text of an INI file from {section: {key: value}}."""
    return "".join("[%s]\n" % section + "".join("%s = %s\n" % kv for kv in keys.items())
                   for section, keys in sections.items())


def write_config(path, sections):
    """Writes an INI file from {section: {key: value}}."""
    with open(path, "w") as f:
        f.write(config_text(sections))


def rewrite_config(path, overrides=None, text=None):
    """Replaces the config at path with text, or else with DEFAULT_CONFIG
    merged with overrides. Atomically: written to a file beside it that is
    then renamed over it, so a chatd reloading meanwhile (SIGHUP) reads the
    old file or the new one, never half of one. Whatever is at path (a
    file, a FIFO, nothing; not a directory) is replaced; the new file has
    the usual mode (umask), like a file written in place."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(config_text(merged_config(overrides)) if text is None else text)
    os.replace(tmp, path)


def wait_for_item(items, pred, more, failure, timeout=TIMEOUT, start=0, ended=None):
    """The index of the first of items, from index start, for which pred is
    true. While there is none, more(seconds_left) is called to wait for
    items to be added (by more itself, or by another thread under a lock
    the caller holds); after timeout, or once ended() says no more can come,
    raises AssertionError(failure())."""
    deadline = time.monotonic() + timeout
    i = start
    while True:
        while i < len(items):
            if pred(items[i]):
                return i
            i += 1
        left = deadline - time.monotonic()
        if left <= 0 or (ended is not None and ended()):
            raise AssertionError(failure())
        more(left)


def merged_config(overrides):
    cfg = {s: dict(k) for s, k in DEFAULT_CONFIG.items()}
    for section, keys in (overrides or {}).items():
        cfg.setdefault(section, {}).update(keys)
    return cfg


class LogWatcher:
    """Collects the lines of a stream in a thread; wait() blocks until a line
    matching a regex arrives (searching lines already seen first)."""

    def __init__(self, stream):
        self.lines = []
        self.cond = threading.Condition()
        self.closed = False
        self.thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self.thread.start()

    def _pump(self, stream):
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if os.environ.get("CHATD_TEST_VERBOSE"):
                sys.stderr.write("chatd| %s\n" % line)
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def wait(self, pattern, timeout=TIMEOUT, start=0):
        """Returns the re.Match of the first line at index >= start matching
        pattern; raises AssertionError after timeout."""
        rx = re.compile(pattern)
        with self.cond:
            i = wait_for_item(self.lines, rx.search, self.cond.wait,
                              lambda: "no log line matching %r; log was:\n%s"
                              % (pattern, "\n".join(self.lines)),
                              timeout, start, ended=lambda: self.closed)
            return rx.search(self.lines[i])

    def mark(self):
        with self.cond:
            return len(self.lines)

    def text(self):
        with self.cond:
            return "\n".join(self.lines)


class Server:
    """A chatd process on a free loopback port (port = 0 in its config; the
    bound port is read from its log). When its config turns IRC on, start()
    also waits for the IRC listener and sets irc_port (else it is None)."""

    def __init__(self, config=None, args=(), env=None, config_text=None, prefix=(),
                 new_session=False):
        """prefix: a command that execs chatd (a wrapper, systemd-socket-activate).
        new_session: start it in a session of its own, so close() can kill
        whatever the prefix leaves behind."""
        self.dir = tempfile.TemporaryDirectory(prefix="chatd-test-")
        self.config_path = os.path.join(self.dir.name, "chatd.conf")
        if config_text is not None:
            with open(self.config_path, "w") as f:
                f.write(config_text)
        else:
            write_config(self.config_path, merged_config(config))
        self.irc_wanted = config_text is None and merged_config(config)["irc"].get("port") != "0"
        self.web_wanted = (config_text is None and
                           merged_config(config).get("web", {}).get("port", "0") != "0")
        full_env = clean_env(env)
        # Its control socket: in its folder, as DEFAULT_CONFIG says, or
        # where its config says.
        socket_path = "control.sock" if config_text is not None else \
            merged_config(config)["control"].get("socket", "control.sock")
        self.control_path = os.path.join(self.dir.name, socket_path)
        self.proc = subprocess.Popen(list(prefix) + WRAPPER + [CHATD, "-c", self.config_path] + list(args),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, env=full_env,
                                     start_new_session=new_session)
        self.new_session = new_session
        self.log = LogWatcher(self.proc.stdout)
        self.port = None
        self.irc_port = None
        self.web_port = None

    def start(self):
        m = self.log.wait(r"listening on \S+:(\d+) for the line protocol")
        self.port = int(m.group(1))
        if self.irc_wanted:
            m = self.log.wait(r"listening on \S+:(\d+) for IRC")
            self.irc_port = int(m.group(1))
        if self.web_wanted:
            m = self.log.wait(r"listening on \S+:(\d+) for the web page \(http")
            self.web_port = int(m.group(1))
        return self

    def rewrite_config(self, overrides=None, text=None):
        """Replaces the config file (atomically: see rewrite_config)."""
        rewrite_config(self.config_path, overrides, text)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def reload(self):
        """Sends SIGHUP and waits for the daemon to log the outcome."""
        mark = self.log.mark()
        self.signal(signal.SIGHUP)
        return self.log.wait(r"config reloaded|reload failed", start=mark)

    def client(self, **kw):
        return Client(self.port, **kw)

    def ctl(self, *args, json_out=False, input=None, user=None, timeout=TIMEOUT):
        """Runs chatctl on this server's control socket (the one its config
        names by default): a CompletedProcess with text stdout and stderr.
        user: run as that user (runuser), not as this process's."""
        ctl = chatctl_for_anyone() if user else CHATCTL
        cmd = [ctl, "-s", self.control_path] + (["--json"] if json_out else []) + list(args)
        if user:
            cmd = ["runuser", "-u", user, "--"] + cmd
        return subprocess.run(cmd, capture_output=True, text=True, input=input,
                              timeout=timeout, env=clean_env())

    def stop(self, timeout=TIMEOUT):
        """SIGTERM, then waits; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("chatd did not exit within %ss of SIGTERM" % timeout)

    def close(self):
        if self.new_session and self.proc.returncode is None:
            try:  # not reaped yet, so the process group is still ours
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.thread.join(2)
        self.proc.stdout.close()
        self.dir.cleanup()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()


PORT_TAKEN = r"cannot listen on \S+ for (IRC|the web page)\S*: Address already in use"
# The page's files, in the source tree.
WEB_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "web")


def irc_server(config=None, tries=3, web=False, **kw):
    """A started Server speaking IRC too, on a port found free on 127.0.0.1
    just before (the [irc] bind is the tests' [server] bind, 127.0.0.1),
    besides the line protocol: srv.port and srv.irc_port; with web, the web
    port too (srv.web_port), serving the source tree's page. config
    overrides as for Server, [irc] and [web] ones included; should another
    process take a port in between, it tries again with others. The caller
    closes it."""
    for attempt in range(tries):
        config = dict(config or {})
        irc = {"port": str(free_port())}
        irc.update(config.get("irc", {}))
        config["irc"] = irc
        if web:
            page = {"port": str(free_port()), "root": WEB_ROOT}
            page.update(config.get("web", {}))
            config["web"] = page
        srv = Server(config, **kw)
        try:
            return srv.start()
        except AssertionError:
            taken = re.search(PORT_TAKEN, srv.log.text())
            srv.close()
            if not taken or attempt == tries - 1:
                raise


class Client:
    """A line-oriented TCP client with timeouts on every read."""

    def __init__(self, port, host="127.0.0.1", read_motd=False, source=None):
        """source: the local address to connect from, e.g. 127.0.0.2 (all of
        127.0.0.0/8 is loopback on Linux), to be another peer to chatd."""
        self.sock = socket.create_connection(
            (host, port), timeout=TIMEOUT,
            source_address=None if source is None else (source, 0))
        self.buf = b""
        self.nick = None

    def send(self, text):
        if isinstance(text, str):
            text = text.encode()
        if not text.endswith(b"\n"):
            text += b"\n"
        self.sock.sendall(text)

    def send_raw(self, data):
        self.sock.sendall(data)

    def _receive(self, deadline, timed_out, closed, size=65536):
        """Adds what arrives before deadline to the buffer; raises
        AssertionError(timed_out()) at the deadline, EOFError(closed()) at EOF."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(timed_out())
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(size)
        except socket.timeout:
            raise AssertionError(timed_out())
        if not data:
            raise EOFError(closed())
        self.buf += data

    def read_line(self, timeout=TIMEOUT):
        """Next line without its newline, as str; raises on timeout or EOF."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            self._receive(deadline,
                          lambda: "timed out waiting for a line (have %r)" % self.buf,
                          lambda: "connection closed (have %r)" % self.buf)
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode("utf-8", "strict")

    def read_lines(self, n, timeout=TIMEOUT):
        """The next n lines, as n calls of read_line would return them (the
        same decoding and errors, one timeout for all), but taken from the
        buffer in bulk: read_line copies the rest of the buffer for every
        line, which adds up at megabytes."""
        lines = []
        deadline = time.monotonic() + timeout
        while True:
            pos = 0
            try:
                while len(lines) < n:
                    end = self.buf.find(b"\n", pos)
                    if end < 0:
                        break
                    line = self.buf[pos:end]
                    pos = end + 1
                    lines.append(line.decode("utf-8", "strict"))
            finally:
                if pos:
                    self.buf = self.buf[pos:]
            if len(lines) == n:
                return lines
            self._receive(deadline,
                          lambda: "timed out after %d of %d lines (have %r)"
                          % (len(lines), n, self.buf),
                          lambda: "connection closed after %d of %d lines (have %r)"
                          % (len(lines), n, self.buf),
                          size=1 << 20)

    def expect(self, expected, timeout=TIMEOUT):
        """Reads one line and asserts it equals expected (str) or matches it
        (compiled regex). Returns the line."""
        line = self.read_line(timeout)
        if isinstance(expected, re.Pattern):
            if not expected.fullmatch(line):
                raise AssertionError("line %r does not match %r" % (line, expected.pattern))
        elif line != expected:
            raise AssertionError("expected %r, got %r" % (expected, line))
        return line

    def read_until(self, pattern, timeout=TIMEOUT):
        """Reads lines until one matches the regex; returns all lines read."""
        rx = re.compile(pattern)
        lines = []
        deadline = time.monotonic() + timeout
        while True:
            line = self.read_line(max(0.01, deadline - time.monotonic()))
            lines.append(line)
            if rx.search(line):
                return lines

    def welcome(self):
        """Reads MOTD lines up to the greeting; returns (motd_lines, nick, online)."""
        motd = []
        while True:
            line = self.read_line()
            m = re.fullmatch(r"> Connected to the chat server as (\S+) \((\d+) online\)", line)
            if m:
                self.nick = m.group(1)
                return motd, m.group(1), int(m.group(2))
            if not line.startswith("# "):
                raise AssertionError("unexpected line before greeting: %r" % line)
            motd.append(line[2:])

    def expect_silence(self, seconds=0.3):
        """Asserts nothing arrives for a short while. Only used to prove a
        negative (no echo, nobody else notices); positives always wait for a line."""
        self.sock.settimeout(seconds)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            data = None
        if data is not None:
            self.buf += data
            raise AssertionError("expected silence, got %r" % self.buf)

    def expect_closed(self, timeout=TIMEOUT):
        """Reads (and returns) remaining lines until the server closes."""
        lines = []
        while True:
            try:
                lines.append(self.read_line(timeout))
            except EOFError:
                return lines

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class ChatdTestCase(unittest.TestCase):
    """Helpers shared by the tests: servers that are always stopped, clients
    that are always closed, and the bookkeeping of who sees whom arrive.

    CLEAN_EXIT: whether each server of start_server, once the test's clients
    are closed, must stop on SIGTERM with exit 0 and without a sanitizer
    report in its log (leaks included, in a sanitizer build)."""

    CLEAN_EXIT = True

    def start_server(self, config=None, **kw):
        """A started Server (see Server for config and kw), closed at cleanup
        (after check_clean_exit, with CLEAN_EXIT)."""
        srv = self.enterContext(Server(config, **kw))
        if self.CLEAN_EXIT:
            self.addCleanup(self.check_clean_exit, srv)
        return srv

    def start_irc_server(self, config=None, **kw):
        """A started server speaking IRC too (see irc_server), on srv.port
        (the line protocol) and srv.irc_port; closed at cleanup as
        start_server's are."""
        srv = irc_server(config, **kw)
        self.addCleanup(srv.close)
        if self.CLEAN_EXIT:
            self.addCleanup(self.check_clean_exit, srv)
        return srv

    def check_clean_exit(self, srv):
        status = srv.stop()
        self.assertIsNone(re.search(SANITIZER_REPORT, srv.log.text()),
                          "sanitizer report:\n" + srv.log.text()[-5000:])
        self.assertEqual(status, 0, "chatd exited with %s" % status)

    def connect(self, srv, others=(), client=None, host="127.0.0.1"):
        """Connects a client (or takes client, connected already), reads its
        MOTD and greeting (kept as c.motd, c.nick, c.online), closes it at
        cleanup, and checks that each client in `others` (the lobby) sees it
        enter."""
        c = client or Client(srv.port, host=host)
        self.addCleanup(c.close)
        motd, nick, online = c.welcome()
        c.motd = motd
        c.online = online
        for o in others:
            o.expect("> %s entered (%d online)" % (nick, online))
        return c

    def crowd(self, srv, n):
        """n clients in the lobby, guest1..guestn on a fresh server."""
        clients = []
        for i in range(n):
            c = self.connect(srv, clients)
            self.assertEqual(c.nick, "guest%d" % (i + 1))
            clients.append(c)
        return clients

    def sync(self, *clients):
        """Asserts that nothing is pending for each client: the reply to a
        command sent now must be the next line it reads."""
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


def main():
    """unittest.main, with automake's exit codes: 77 when every test skipped."""
    prog = unittest.main(exit=False, verbosity=2)
    result = prog.result
    if not result.wasSuccessful():
        sys.exit(1)
    # A SkipTest from setUpClass counts as a skip but not as a test run.
    if result.skipped and len(result.skipped) >= result.testsRun:
        sys.exit(77)
    sys.exit(0)
