"""Test harness for chatd's integration tests: a real chatd on a free loopback
port, real TCP clients, waiting for lines instead of sleeping.

Environment (set by `make check`): CHATD = path of the built daemon.
"""
import os
import re
import shlex
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
TIMEOUT = float(os.environ.get("CHATD_TEST_TIMEOUT", "10"))
# A command every daemon is started under, e.g. valgrind (see .ci/run).
WRAPPER = shlex.split(os.environ.get("CHATD_WRAPPER", ""))

# Tests talk fast and all from 127.0.0.1: the flood and per-address limits
# are off unless a test sets them (tests of those limits do).
DEFAULT_CONFIG = {
    "server": {"port": "0", "bind": "127.0.0.1", "threads": "2",
               "motd": "Welcome to chatd!"},
    "limits": {"rate": "0", "max_per_ip": "0"},
    "log": {"level": "debug", "target": "stderr"},
}


def write_config(path, sections):
    """Writes an INI file from {section: {key: value}}."""
    with open(path, "w") as f:
        for section, keys in sections.items():
            f.write("[%s]\n" % section)
            for k, v in keys.items():
                f.write("%s = %s\n" % (k, v))


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
        deadline = time.monotonic() + timeout
        i = start
        with self.cond:
            while True:
                while i < len(self.lines):
                    m = rx.search(self.lines[i])
                    if m:
                        return m
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    raise AssertionError("no log line matching %r; log was:\n%s"
                                         % (pattern, "\n".join(self.lines)))
                self.cond.wait(left)

    def mark(self):
        with self.cond:
            return len(self.lines)

    def text(self):
        with self.cond:
            return "\n".join(self.lines)


class Server:
    """A chatd process on a free loopback port (port = 0 in its config; the
    bound port is read from its log)."""

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
        full_env = dict(os.environ)
        for var in ("NOTIFY_SOCKET", "JOURNAL_STREAM", "LISTEN_FDS", "LISTEN_PID",
                    "LISTEN_FDNAMES", "WATCHDOG_USEC", "WATCHDOG_PID"):
            full_env.pop(var, None)
        full_env.update(env or {})
        self.proc = subprocess.Popen(list(prefix) + WRAPPER + [CHATD, "-c", self.config_path] + list(args),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, env=full_env,
                                     start_new_session=new_session)
        self.new_session = new_session
        self.log = LogWatcher(self.proc.stdout)
        self.port = None

    def start(self):
        m = self.log.wait(r"listening on .*:(\d+)")
        self.port = int(m.group(1))
        return self

    def rewrite_config(self, overrides=None, text=None):
        if text is not None:
            with open(self.config_path, "w") as f:
                f.write(text)
        else:
            write_config(self.config_path, merged_config(overrides))

    def signal(self, sig):
        self.proc.send_signal(sig)

    def reload(self):
        """Sends SIGHUP and waits for the daemon to log the outcome."""
        mark = self.log.mark()
        self.signal(signal.SIGHUP)
        return self.log.wait(r"config reloaded|reload failed", start=mark)

    def client(self, **kw):
        return Client(self.port, **kw)

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


class Client:
    """A line-oriented TCP client with timeouts on every read."""

    def __init__(self, port, host="127.0.0.1", read_motd=False):
        self.sock = socket.create_connection((host, port), timeout=TIMEOUT)
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

    def read_line(self, timeout=TIMEOUT):
        """Next line without its newline, as str; raises on timeout or EOF."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("timed out waiting for a line (have %r)" % self.buf)
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                raise AssertionError("timed out waiting for a line (have %r)" % self.buf)
            if not data:
                raise EOFError("connection closed (have %r)" % self.buf)
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode("utf-8", "strict")

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
