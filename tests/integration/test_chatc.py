#!/usr/bin/env python3
"""chatc, the command-line client, against a real chatd.

Scripted mode (stdin not a terminal) runs chatc with pipes: options, target
forms, connection errors, an exchange between two chatc processes, the
server closing. Interactive mode (stdin a terminal) is driven for real in
tmux: keys go in with send-keys, the screen comes back with capture-pane,
and every check waits for the screen (polling with a deadline) rather than
sleeping. A fake server, which sends exactly the bytes a test gives it,
covers what chatd itself never sends (raw escape sequences: chatd cleans
them, and chatc must not rely on that).

Environment: CHATD (the daemon), CHATC (the client; default: client/chatc
beside CHATD), CHATD_TEST_TIMEOUT. The interactive tests need tmux and are
skipped without it; each runs its own tmux server (its own socket in a
temporary directory), killed at cleanup.
"""
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import termios
import threading
import time
import unittest

import chatdtest
from chatdtest import CHATD, TIMEOUT, ChatdTestCase, LogWatcher, have_ipv6_loopback

CHATC = os.environ.get("CHATC") or os.path.join(
    os.path.dirname(os.path.abspath(CHATD)), "client", "chatc")
TMUX = shutil.which("tmux")

MOTD = "# Welcome to chatd!"
INVALID_NICK = ("! invalid nick: NAME must be 1-32 letters, digits, _ or -, "
                "starting with a letter")
CLOSED = "chatc: connection closed by server"
# What must never come out of chatc from the network: C0 controls but TAB
# and LF (LF only as the line end), DEL, C1 (as characters, after decoding).
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]")
SGR = re.compile(r"\x1b\[([0-9;]*)m")


def chatc_env(**extra):
    """The test's environment without what would change chatc's behaviour
    behind a test's back (NO_COLOR, an outer tmux), plus extra."""
    env = dict(os.environ)
    for k in ("NO_COLOR", "TMUX", "TMUX_PANE"):
        env.pop(k, None)
    env.update(extra)
    return env


def run_chatc(*args, input=b"", env=None, timeout=TIMEOUT):
    """Runs chatc to completion with stdin a pipe; returns the
    CompletedProcess (bytes)."""
    return subprocess.run([CHATC] + list(args), input=input, capture_output=True,
                          env=env or chatc_env(), timeout=timeout)


def lines(data):
    """bytes -> list of str lines (the last newline does not make an empty
    line)."""
    text = data.decode("utf-8", "replace")
    return text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")


def port_in_use(port):
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        try:
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.settimeout(TIMEOUT)
                s.connect((host, port))
                return True
        except OSError:
            pass
    return False


class RefusingPort:
    """A port on 127.0.0.1 where connections are refused: a socket bound to
    it but not listening. Kept bound for the test, so nothing else can start
    listening there in the meantime."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.sock.close()


class FakeServer:
    """One TCP connection on 127.0.0.1 that sends exactly the bytes given:
    for what chatd never sends (it cleans what clients say)."""

    def __init__(self):
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.port = self.listener.getsockname()[1]
        self.conn = None

    def accept(self):
        self.listener.settimeout(TIMEOUT)
        self.conn, _ = self.listener.accept()
        self.conn.settimeout(TIMEOUT)
        return self

    def send(self, data):
        self.conn.sendall(data)

    def close(self):
        for s in (self.conn, self.listener):
            if s is not None:
                try:
                    s.close()
                except OSError:
                    pass


class Chatc:
    """A scripted chatc whose stdin stays a pipe the test writes to; its
    stdout and stderr lines are collected as they come."""

    def __init__(self, *args, env=None, stdin=subprocess.PIPE):
        self.proc = subprocess.Popen([CHATC] + list(args), stdin=stdin,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=env or chatc_env())
        self.out = LogWatcher(self.proc.stdout)
        self.err = LogWatcher(self.proc.stderr)

    def send(self, text):
        self.proc.stdin.write(text.encode() if isinstance(text, str) else text)
        self.proc.stdin.flush()

    def end_input(self):
        if self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()

    def wait(self, timeout=TIMEOUT):
        """Exit status; chatc must be gone within timeout."""
        try:
            status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("chatc still running after %ss; stdout:\n%s\nstderr:\n%s"
                                 % (timeout, self.out.text(), self.err.text()))
        self.out.thread.join(TIMEOUT)
        self.err.thread.join(TIMEOUT)
        return status

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        try:
            self.end_input()
        except OSError:
            pass
        self.out.thread.join(2)
        self.err.thread.join(2)
        self.proc.stdout.close()
        self.proc.stderr.close()


class ChatcTestCase(ChatdTestCase):
    """ChatdTestCase: start_server (killed at cleanup, not checked for a
    clean exit) and connect (a raw TCP client, past its greeting; others
    see it enter); chatc and a fake server, closed at cleanup."""

    CLEAN_EXIT = False

    @classmethod
    def setUpClass(cls):
        if not os.access(CHATC, os.X_OK):
            raise AssertionError("chatc not found at %s (set CHATC)" % CHATC)

    def chatc(self, *args, **kw):
        c = Chatc(*args, **kw)
        self.addCleanup(c.close)
        return c

    def fake_server(self):
        f = FakeServer()
        self.addCleanup(f.close)
        return f

    def assertClean(self, text):
        m = CONTROL.search(text)
        self.assertIsNone(m, "control character %r reached the output:\n%r"
                          % (m and m.group(0), text))


# ---- scripted mode and the command line ----------------------------------

class CommandLineTest(ChatcTestCase):

    def test_version(self):
        chatd = subprocess.run([CHATD, "-V"], capture_output=True, text=True, timeout=TIMEOUT)
        version = chatd.stdout.split()[-1]
        for opt in ("-V", "--version"):
            with self.subTest(opt):
                r = run_chatc(opt)
                self.assertEqual((r.returncode, r.stdout, r.stderr),
                                 (0, ("chatc %s\n" % version).encode(), b""))

    def test_help(self):
        for opt in ("-h", "--help"):
            with self.subTest(opt):
                r = run_chatc(opt)
                self.assertEqual((r.returncode, r.stderr), (0, b""))
                out = r.stdout.decode()
                self.assertTrue(out.startswith(
                    "Usage: chatc [-n NICK] [-r ROOM] [--tls [--ca FILE | --insecure]] [--no-color]"),
                    out)
                for word in ("-n, --nick", "-r, --room", "--tls", "--ca FILE", "--insecure",
                             "--no-color", "-w, --wait",
                             "-V, --version", "-h, --help", "NO_COLOR", "/help", "/quit"):
                    self.assertIn(word, out)

    def test_bad_arguments_give_usage_on_stderr_and_exit_2(self):
        cases = [["-x"], ["--bogus"], ["-n"], ["-r"], ["-w"], ["-w", "abc"], ["-w", "-1"],
                 ["-n", "1bad"], ["-n", "a" * 33], ["-r", "no room"],
                 ["a", "b", "c"], ["localhost:0"], ["localhost:65536"], ["localhost:abc"],
                 ["--ca", "x.pem"], ["--insecure"], ["--tls", "--ca", "x.pem", "--insecure"],
                 ["localhost:"], ["localhost", "70000"], ["[::1"], ["[::1]x"], [""]]
        for args in cases:
            with self.subTest(args=args):
                r = run_chatc(*args)
                err = r.stderr.decode()
                self.assertEqual(r.returncode, 2, err)
                self.assertEqual(r.stdout, b"")
                self.assertRegex(err, r"\Achatc: \S.*\nUsage: chatc ")

    def test_connection_refused(self):
        with RefusingPort() as p:
            r = run_chatc("127.0.0.1:%d" % p.port)
        self.assertEqual((r.returncode, r.stdout, r.stderr.decode()),
                         (1, b"", "chatc: cannot connect to 127.0.0.1:%d: Connection refused\n"
                          % p.port))

    def test_unresolvable_host(self):
        with RefusingPort() as p:
            r = run_chatc("nosuchhost.invalid:%d" % p.port)
        self.assertEqual((r.returncode, r.stdout), (1, b""))
        self.assertRegex(r.stderr.decode(),
                         r"\Achatc: cannot connect to nosuchhost\.invalid:%d: \S.*\n\Z" % p.port)

    def test_default_port_is_7777(self):
        if port_in_use(7777):
            self.skipTest("something listens on port 7777")
        for args, where in ((["127.0.0.1"], "127.0.0.1:7777"), (["[::1]"], "[::1]:7777"),
                            ([], "localhost:7777")):
            with self.subTest(args=args):
                r = run_chatc(*args)
                self.assertEqual(r.returncode, 1)
                self.assertRegex(r.stderr.decode(),
                                 r"\Achatc: cannot connect to %s: \S.*\n\Z" % re.escape(where))


class TargetTest(ChatcTestCase):

    def check_target(self, *target):
        r = run_chatc(*target, input=b"/quit\n")
        self.assertEqual((r.returncode, r.stderr), (0, b""), r.stdout)
        out = lines(r.stdout)
        self.assertEqual(out[0], MOTD)
        self.assertRegex(out[1], r"^> Connected to the chat server as guest\d+ \(1 online\)$")
        self.assertEqual(out[2:], ["= bye"])

    def test_ipv4_host_colon_port(self):
        srv = self.start_server()
        self.check_target("127.0.0.1:%d" % srv.port)

    def test_host_then_port(self):
        srv = self.start_server()
        self.check_target("127.0.0.1", str(srv.port))

    def test_host_name(self):
        # localhost may resolve to ::1 first: chatc must go on to 127.0.0.1.
        srv = self.start_server()
        self.check_target("localhost:%d" % srv.port)

    @unittest.skipUnless(have_ipv6_loopback(), "no IPv6 loopback")
    def test_ipv6_in_brackets(self):
        srv = self.start_server({"server": {"bind": "::"}})
        self.check_target("[::1]:%d" % srv.port)
        self.check_target("[::1]", str(srv.port))
        self.check_target("::1", str(srv.port))


class ScriptedTest(ChatcTestCase):

    def test_exchange_between_two_chatc(self):
        srv = self.start_server()
        target = "127.0.0.1:%d" % srv.port
        a = self.chatc(target)  # started first, reading
        a.out.wait(r"^> Connected to the chat server as guest1 \(1 online\)$")
        # b's lines come from a pipe that ends at once; -w keeps b listening
        # for a's answer (the server is not quiet that long before it comes).
        b = self.chatc("-w", "3", target)
        b.send("hello from b\n/me waves\n")
        b.end_input()
        a.out.wait(r"^\* guest2 waves$")
        a.send("hi from a\n")
        b.out.wait(r"^\[guest1\] hi from a$")
        self.assertEqual(b.wait(), 0)
        a.out.wait(r"^< guest2 left \(1 online\)$")
        a.end_input()
        self.assertEqual(a.wait(), 0)
        self.assertEqual(b.out.lines, [MOTD, "> Connected to the chat server as guest2 (2 online)",
                                       "[guest1] hi from a"])
        self.assertEqual(a.out.lines, [MOTD, "> Connected to the chat server as guest1 (1 online)",
                                       "> guest2 entered (2 online)",
                                       "[guest2] hello from b",
                                       "* guest2 waves",
                                       "< guest2 left (1 online)"])
        self.assertEqual((a.err.lines, b.err.lines), ([], []))

    def test_nick_and_room_options(self):
        srv = self.start_server()
        other = self.connect(srv)
        r = run_chatc("-n", "bot", "-r", "games", "127.0.0.1:%d" % srv.port, input=b"/quit\n")
        self.assertEqual((r.returncode, r.stderr), (0, b""))
        self.assertEqual(lines(r.stdout), [MOTD,
                                           "> Connected to the chat server as guest2 (2 online)",
                                           "* guest2 is now known as bot",
                                           "= you joined games (1 here)",
                                           "= bye"])
        other.expect("> guest2 entered (2 online)")
        other.expect("* guest2 is now known as bot")
        other.expect("< bot went to games")

    def test_long_options(self):
        srv = self.start_server()
        r = run_chatc("--nick", "bot", "--room", "games", "--no-color", "--wait", "5",
                      "127.0.0.1:%d" % srv.port, input=b"/quit\n")
        self.assertEqual((r.returncode, r.stderr), (0, b""))
        self.assertEqual(lines(r.stdout)[2:], ["* guest1 is now known as bot",
                                               "= you joined games (1 here)", "= bye"])

    def test_printf_pipeline(self):
        srv = self.start_server()
        other = self.connect(srv)
        cmd = "printf '/nick bot\\nhello\\n' | %s 127.0.0.1:%d" % (shlex.quote(CHATC), srv.port)
        r = subprocess.run(["sh", "-c", cmd], capture_output=True, env=chatc_env(),
                           timeout=TIMEOUT)
        self.assertEqual((r.returncode, r.stderr), (0, b""), r.stdout)
        self.assertEqual(lines(r.stdout), [MOTD,
                                           "> Connected to the chat server as guest2 (2 online)",
                                           "* guest2 is now known as bot"])
        other.expect("> guest2 entered (2 online)")
        other.expect("* guest2 is now known as bot")
        other.expect("[bot] hello")
        other.expect("< bot left (1 online)")

    def test_last_line_without_newline_is_sent(self):
        srv = self.start_server()
        other = self.connect(srv)
        r = run_chatc("-w", "0.2", "127.0.0.1:%d" % srv.port, input=b"first\nno newline")
        self.assertEqual(r.returncode, 0)
        other.expect("> guest2 entered (2 online)")
        other.expect("[guest2] first")
        other.expect("[guest2] no newline")

    def test_wait_option_bounds_how_long_chatc_stays(self):
        srv = self.start_server()
        t0 = time.monotonic()
        r = run_chatc("-w", "1.5", "127.0.0.1:%d" % srv.port, input=b"/who\n")
        elapsed = time.monotonic() - t0
        self.assertEqual(r.returncode, 0)
        self.assertEqual(lines(r.stdout)[2:], ["= 1 in lobby: guest1"])
        self.assertGreaterEqual(elapsed, 1.5)
        self.assertLess(elapsed, 1.5 + TIMEOUT / 2)

    def test_quit_exits_0_at_once(self):
        for quit_line, left in (("/quit", "< guest%d left (1 online)"),
                                ("/QUIT see you", "< guest%d left: see you (1 online)")):
            with self.subTest(quit_line):
                srv = self.start_server()
                other = self.connect(srv)
                t0 = time.monotonic()
                # -w 60: only the server's close can end chatc this soon.
                r = run_chatc("-w", "60", "127.0.0.1:%d" % srv.port,
                              input=("hello\n%s\n" % quit_line).encode())
                self.assertLess(time.monotonic() - t0, TIMEOUT)
                self.assertEqual((r.returncode, r.stderr), (0, b""))
                self.assertEqual(lines(r.stdout)[-1], "= bye")
                other.expect("> guest2 entered (2 online)")
                other.expect("[guest2] hello")
                other.expect(left % 2)

    def test_server_shutdown(self):
        srv = self.start_server()
        c = self.chatc("127.0.0.1:%d" % srv.port)  # stdin open: only the server ends it
        c.out.wait(r"^> Connected to the chat server")
        srv.signal(signal.SIGTERM)
        self.assertEqual(c.wait(), 1)
        self.assertEqual(c.out.lines[-1], "# server shutting down")
        self.assertEqual(c.err.lines, [CLOSED])

    def test_server_shutdown_while_waiting_after_stdin_ended(self):
        srv = self.start_server()
        c = self.chatc("-w", "60", "127.0.0.1:%d" % srv.port, stdin=subprocess.DEVNULL)
        c.out.wait(r"^> Connected to the chat server")
        srv.signal(signal.SIGTERM)
        self.assertEqual(c.wait(), 1)
        self.assertEqual(c.out.lines[-1], "# server shutting down")
        self.assertEqual(c.err.lines, [CLOSED])

    def test_notice_comes_before_the_close_message(self):
        srv = self.start_server()
        p = subprocess.Popen([CHATC, "127.0.0.1:%d" % srv.port], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=chatc_env())
        self.addCleanup(lambda: (p.poll() is None and p.kill(), p.wait(), p.stdin.close(),
                                 p.stdout.close()))
        both = LogWatcher(p.stdout)
        both.wait(r"^> Connected to the chat server")
        srv.signal(signal.SIGTERM)
        self.assertEqual(p.wait(TIMEOUT), 1)
        both.thread.join(TIMEOUT)
        self.assertEqual(both.lines[-2:], ["# server shutting down", CLOSED])

    def test_server_full(self):
        srv = self.start_server({"server": {"max_clients": "1"}})
        self.connect(srv)
        c = self.chatc("127.0.0.1:%d" % srv.port)
        self.assertEqual(c.wait(), 1)
        self.assertEqual(c.out.lines, ["! server full (max 1 clients)"])
        self.assertEqual(c.err.lines, [CLOSED])

    def test_escape_sequences_from_another_client_arrive_cleaned(self):
        srv = self.start_server()
        c = self.chatc("127.0.0.1:%d" % srv.port)
        c.out.wait(r"^> Connected to the chat server as guest1")
        other = self.connect(srv)
        other.send_raw(b"evil \x1b[2J\x1b]0;pwned\x07 \x1b[31mred\x1b[0m \xc2\x9b1m end\n")
        c.out.wait(r"^\[guest2\] evil")
        c.send("/quit\n")
        self.assertEqual(c.wait(), 0)
        self.assertIn("[guest2] evil [2J]0;pwned [31mred[0m 1m end", c.out.lines)
        self.assertClean(c.out.text())

    def test_escape_sequences_from_the_network_never_reach_stdout(self):
        # chatc cleans what it receives itself, whatever the server is.
        fake = self.fake_server()
        c = self.chatc("-w", "60", "127.0.0.1:%d" % fake.port, stdin=subprocess.DEVNULL)
        fake.accept()
        fake.send(b"# motd\n"
                  b"> Connected to the chat server as guest1 (1 online)\n"
                  b"[mallory] \x1b[2J\x1b[H\x1b]0;pwned\x07\x1b[31mred\x1b[0m\n"
                  b"[mallory] c1 \xc2\x9b31m del \x7f bs \x08 cr \r bell \x07 nul \x00 end\n"
                  b"[mallory] raw \x9b31m invalid \xff\xfe utf-8 \xc3\xa9 ok\n"
                  b"\x1bc\x1b[?1049h\x1bP+q\x1b\\ last\r\n")
        fake.close()
        self.assertEqual(c.wait(), 1)
        self.assertEqual(c.err.lines, [CLOSED])
        self.assertEqual(c.out.lines, [
            "# motd",
            "> Connected to the chat server as guest1 (1 online)",
            "[mallory] [2J[H]0;pwned[31mred[0m",
            "[mallory] c1 31m del  bs  cr  bell  nul  end",
            "[mallory] raw \ufffd31m invalid \ufffd\ufffd utf-8 \u00e9 ok",
            "c[?1049hP+q\\ last",
        ])
        self.assertClean(c.out.text())

    def test_bidi_and_invisible_characters_from_the_network_are_removed(self):
        # A server that relays them (not chatd): RLO and the isolates would
        # reorder the rest of the line on a terminal that implements BiDi.
        fake = self.fake_server()
        c = self.chatc("-w", "60", "127.0.0.1:%d" % fake.port, stdin=subprocess.DEVNULL)
        fake.accept()
        fake.send("> Connected to the chat server as guest1 (1 online)\n"
                  "[mallory] invoice_\u202Efdp.exe\n"
                  "[mal\u200Blory] abc\u202Edef\u2066x\u200By\uFEFFz\U000E0041\n"
                  "* mallory \u2067waves\u2069 \u2028twice\u2029\n"
                  "\u202E\u200F\n".encode())
        fake.close()
        self.assertEqual(c.wait(), 1)
        self.assertEqual(c.out.lines, [
            "> Connected to the chat server as guest1 (1 online)",
            "[mallory] invoice_fdp.exe",
            "[mallory] abcdefxyz",
            "* mallory waves twice",
            "",  # nothing else on it: empty, as a line of controls is
        ])

    def test_overlong_server_line_is_cut_with_a_note(self):
        fake = self.fake_server()
        c = self.chatc("-w", "60", "127.0.0.1:%d" % fake.port, stdin=subprocess.DEVNULL)
        fake.accept()
        fake.send(b"# before\n" + b"x" * (300 * 1024) + b"\n# after\n")
        fake.close()
        self.assertEqual(c.wait(), 1)
        self.assertEqual(c.out.lines, ["# before",
                                       "! (chatc: a line from the server was too long to show)",
                                       "# after"])

    def test_no_colors_when_stdout_is_not_a_terminal(self):
        srv = self.start_server()
        other = self.connect(srv)
        c = self.chatc("127.0.0.1:%d" % srv.port, env=chatc_env(TERM="xterm-256color"))
        other.expect("> guest2 entered (2 online)")
        other.send("hi from guest1")
        other.send("/me waves")
        c.out.wait(r"^\* guest1 waves$")
        c.send("/nick 1bad\n/who\n/quit\n")
        self.assertEqual(c.wait(), 0)
        self.assertEqual(c.out.lines[2:], ["[guest1] hi from guest1", "* guest1 waves",
                                           INVALID_NICK, "= 2 in lobby: guest1 guest2",
                                           "= bye"])
        self.assertNotIn("\x1b", c.out.text())


# ---- interactive mode, in tmux -------------------------------------------

def proc_stat(pid):
    """The fields of /proc/PID/stat after the command name (which may hold
    spaces): the state letter ("R", "S", "Z"...), the parent's pid, ...;
    None when PID is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def proc_state(pid):
    """PID's state letter, or None when it is gone."""
    fields = proc_stat(pid)
    return fields[0] if fields else None


def child_pids(parent):
    """The pids of PARENT's children, from /proc."""
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        fields = proc_stat(int(name))
        if fields and int(fields[1]) == parent:
            pids.append(int(name))
    return pids


class Tmux:
    """chatc on the terminal of a private tmux server (its own socket, a
    fixed 100x30 window, no status line). The pane runs a shell script that
    records the terminal settings before and after chatc and its exit
    status; the pane stays after it ends so its last screen can be read."""

    COLS, ROWS = 100, 30

    def __init__(self, tc, args, no_color_env=None, job_control=False):
        """job_control: the pane runs an interactive shell (prompt "$ ")
        instead, where chatc is started by typing command_line, so that
        Ctrl-Z and fg work."""
        self.tmp = tempfile.TemporaryDirectory(prefix="chatc-tmux-")
        tc.addCleanup(self.tmp.cleanup)
        d = self.tmp.name
        self.sock = os.path.join(d, "sock")
        self.conf = os.path.join(d, "tmux.conf")
        with open(self.conf, "w") as f:
            f.write("set -g remain-on-exit on\n"
                    "set -g status off\n"
                    "set -g default-shell /bin/sh\n"
                    "set -g default-terminal xterm-256color\n")
        self.status_path = os.path.join(d, "status")
        script = os.path.join(d, "run.sh")
        env_lines = ["unset NO_COLOR"]
        if no_color_env is not None:
            env_lines.append("NO_COLOR=%s; export NO_COLOR" % shlex.quote(no_color_env))
        self.command_line = "%s %s" % (shlex.quote(CHATC), " ".join(shlex.quote(a) for a in args))
        with open(script, "w") as f:
            f.write("cd %s || exit 1\n" % shlex.quote(d) +
                    "TERM=xterm-256color LANG=C.UTF-8 LC_ALL=C.UTF-8 INPUTRC=/dev/null\n"
                    "export TERM LANG LC_ALL INPUTRC\n" +
                    "\n".join(env_lines) + "\n")
            if job_control:
                f.write("PS1='$ ' ENV= exec sh -i\n")
            else:
                f.write(
                    # A caught signal is reset for chatc: Ctrl-C reaches it,
                    # and this shell lives on to record the status.
                    "trap : INT\n"
                    "stty -g > stty.before\n"
                    + self.command_line + "\n"
                    "status=$?\n"
                    "stty -g > stty.after\n"
                    # On the terminal: where chatc left the cursor, and how.
                    "echo \"[exit $status]\"\n"
                    "echo $status > status.tmp\n"
                    "mv status.tmp status\n")
        self.env = chatc_env(TERM="xterm-256color", LANG="C.UTF-8", LC_ALL="C.UTF-8")
        tc.addCleanup(self.kill)
        self.tmux("new-session", "-d", "-s", "chatc", "-x", str(self.COLS), "-y", str(self.ROWS),
                  "-e", "TERM=xterm-256color", "exec sh %s" % shlex.quote(script))

    def tmux(self, *args):
        r = subprocess.run([TMUX, "-u", "-S", self.sock, "-f", self.conf] + list(args),
                           capture_output=True, env=self.env, timeout=TIMEOUT)
        if r.returncode != 0:
            raise AssertionError("tmux %s failed: %s" % (" ".join(args), r.stderr.decode()))
        return r.stdout.decode("utf-8", "replace")

    def kill(self):
        """Ends the tmux server, and makes sure no chatc outlives the test:
        one still running gets the hang-up of its terminal, then, if it has
        not gone within a few seconds, SIGKILL."""
        r = subprocess.run([TMUX, "-S", self.sock, "list-panes", "-a", "-F", "#{pane_pid}"],
                           capture_output=True, env=self.env, timeout=TIMEOUT)
        shells = [int(p) for p in r.stdout.split()] if r.returncode == 0 else []
        children = [pid for shell in shells for pid in child_pids(shell)]
        subprocess.run([TMUX, "-S", self.sock, "kill-server"], capture_output=True,
                       env=self.env, timeout=TIMEOUT)
        deadline = time.monotonic() + 5
        for pid in children:
            # A zombie has ended: its shell, hung up too, left it to init,
            # which may take a second or two to reap it.
            while proc_state(pid) not in (None, "Z") and time.monotonic() < deadline:
                time.sleep(0.02)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    # -- keys
    def type(self, text):
        """Literal text, no Enter."""
        self.tmux("send-keys", "-t", "chatc", "-l", text)

    def keys(self, *names):
        """tmux key names: Enter, Up, Left, C-c, C-d..."""
        self.tmux("send-keys", "-t", "chatc", *names)

    # -- screen
    def screen(self, escapes=False):
        """The visible screen's lines (trailing blanks trimmed by tmux, empty
        rows at the bottom left out); with escapes, with the SGR sequences
        of its colors and attributes."""
        args = ["capture-pane", "-p", "-t", "chatc"] + (["-e"] if escapes else [])
        return self.tmux(*args).rstrip("\n").split("\n")

    def cursor(self):
        x, y = self.tmux("display-message", "-p", "-t", "chatc",
                         "#{cursor_x} #{cursor_y}").split()
        return int(x), int(y)

    def size(self):
        w, h = self.tmux("display-message", "-p", "-t", "chatc",
                         "#{pane_width} #{pane_height}").split()
        return int(w), int(h)

    def open_tty(self):
        """The pane's terminal, opened to read its settings (the caller
        closes it)."""
        tty = self.tmux("display-message", "-p", "-t", "chatc", "#{pane_tty}").strip()
        return os.open(tty, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)

    def echoing(self):
        """Whether the kernel echoes what is typed on the pane's terminal
        now (off while readline owns it)."""
        fd = self.open_tty()
        try:
            return bool(termios.tcgetattr(fd)[3] & termios.ECHO)
        finally:
            os.close(fd)

    def title(self):
        return self.tmux("display-message", "-p", "-t", "chatc", "#{pane_title}").strip()

    def dump(self, escapes=False):
        return "\n".join("%2d|%s" % (i, l if not escapes else repr(l))
                         for i, l in enumerate(self.screen(escapes)))

    def wait(self, pred, what, timeout=TIMEOUT):
        """Polls the screen until pred(lines) is true; returns the lines."""
        deadline = time.monotonic() + timeout
        while True:
            s = self.screen()
            if pred(s):
                return s
            if time.monotonic() > deadline:
                raise AssertionError("screen never showed %s; it shows:\n%s"
                                     % (what, self.dump()))
            time.sleep(0.03)

    def wait_line(self, line, timeout=TIMEOUT):
        """Waits for a screen line equal to line; returns its row."""
        s = self.wait(lambda s: line.rstrip() in s, repr(line), timeout)
        return s.index(line.rstrip())

    def input_line(self):
        """(text of the cursor's row, cursor x)."""
        x, y = self.cursor()
        s = self.screen()
        return (s[y] if y < len(s) else ""), x

    def wait_input(self, text, timeout=TIMEOUT):
        """Waits until the cursor's row is text (a prompt and what is typed,
        single row) with the cursor at its end."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.input_line()
            if got == (text.rstrip(), len(text)):
                return
            if time.monotonic() > deadline:
                raise AssertionError("the input line never became %r (cursor at %d); "
                                     "it is %r (cursor at %d); screen:\n%s"
                                     % (text, len(text), got[0], got[1], self.dump()))
            time.sleep(0.03)

    def content(self):
        """The screen without the empty rows below the last text."""
        s = self.screen()
        while s and s[-1] == "":
            s.pop()
        return s

    def status(self, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.status_path):
            if time.monotonic() > deadline:
                raise AssertionError("chatc did not exit; screen:\n%s" % self.dump())
            time.sleep(0.03)
        with open(self.status_path) as f:
            return int(f.read())

    def terminal_restored(self):
        d = self.tmp.name
        with open(os.path.join(d, "stty.before")) as a, open(os.path.join(d, "stty.after")) as b:
            return a.read() == b.read()


def sgr_params_before(line, text):
    """The SGR parameters of the escape sequences right before text in a
    line of an escaped capture (tmux writes only changes, so attributes
    carried over from an earlier line do not show)."""
    i = line.index(text)
    run = re.search(r"(?:\x1b\[[0-9;]*m)*\Z", line[:i]).group(0)
    return [p for m in SGR.finditer(run) for p in (m.group(1) or "0").split(";")]


@unittest.skipUnless(TMUX, "tmux is not installed (needed to drive chatc on a real terminal)")
class InteractiveTest(ChatcTestCase):

    HEADER = [MOTD, "> Connected to the chat server as guest2 (2 online)",
              "* guest2 is now known as alice"]

    def start(self, *args, nick="alice", room="lobby", no_color_env=None, config=None):
        """A server, a raw client (guest1) in the lobby, and chatc -n NICK
        (guest2) on a terminal, past its prompt."""
        srv = self.start_server(config)
        other = self.connect(srv)
        term = Tmux(self, ["-n", nick] + list(args) + ["127.0.0.1:%d" % srv.port],
                    no_color_env=no_color_env)
        term.wait_input("%s@%s> " % (nick, room))
        other.expect("> guest2 entered (2 online)")
        other.expect("* guest2 is now known as %s" % nick)
        return srv, other, term

    def say(self, term, text):
        term.type(text)
        term.keys("Enter")

    def test_prompt_follows_nick_and_room(self):
        srv, other, term = self.start()
        self.assertEqual(term.content(), self.HEADER + ["alice@lobby>"])
        self.say(term, "/join games")
        term.wait_line("= you joined games (1 here)")
        term.wait_input("alice@games> ")
        self.say(term, "/nick carol")
        term.wait_line("* alice is now known as carol")
        term.wait_input("carol@games> ")
        other.expect("< alice went to games")
        self.assertEqual(term.content(), self.HEADER + [
            "alice@lobby> /join games", "= you joined games (1 here)",
            "alice@games> /nick carol", "* alice is now known as carol", "carol@games>"])

    def test_room_option(self):
        srv, other, term = self.start("-r", "games", room="games")
        term.wait_line("= you joined games (1 here)")

    def test_prompt_before_the_greeting(self):
        fake = self.fake_server()
        term = Tmux(self, ["127.0.0.1:%d" % fake.port])
        fake.accept()
        term.wait_input("> ")
        fake.send(b"# hi\n> Connected to the chat server as guest7 (1 online)\n")
        term.wait_input("guest7@lobby> ")
        self.assertEqual(term.content(), ["# hi", "> Connected to the chat server as guest7 "
                                          "(1 online)", "guest7@lobby>"])

    def test_own_chat_lines_shown_as_sent_commands_as_typed(self):
        srv, other, term = self.start()
        self.say(term, "hello world")
        other.expect("[alice] hello world")
        self.say(term, "//shrug")
        other.expect("[alice] /shrug")
        self.say(term, "/who")
        term.wait_line("= 2 in lobby: alice guest1")
        term.wait_input("alice@lobby> ")
        self.assertEqual(term.content(), self.HEADER + [
            "[you] hello world", "[you] /shrug", "alice@lobby> /who",
            "= 2 in lobby: alice guest1", "alice@lobby>"])

    def test_long_own_lines_replace_their_echo(self):
        # The echo of prompt + line takes one or more rows, a full last row
        # included; "[you] line" must take their place, nothing above lost.
        srv, other, term = self.start()
        prompt = "alice@lobby> "
        cases = [("%d columns" % total, ("%d:" % total).ljust(total - len(prompt), "x"))
                 for total in (99, 100, 101, 150, 200)]
        # Columns, not bytes: 13 + 80 columns, of 2-byte characters and of
        # 3-byte double-width ones.
        cases += [("accents", "\u00e9" * 80), ("wide", "\u4f60\u597d" * 20)]
        for label, text in cases:
            with self.subTest(label):
                term.keys("C-l")  # readline's clear-screen: each case on its own
                term.wait(lambda s: s[0] == prompt.rstrip(), "the prompt at the top")
                marker = "marker " + label
                self.say(term, marker)
                other.expect("[alice] " + marker)
                self.say(term, text)
                other.expect("[alice] " + text)
                shown = "[you] " + text
                expected = ["[you] " + marker] + [shown[i:i + Tmux.COLS]
                                                  for i in range(0, len(shown), Tmux.COLS)]
                term.wait_input(prompt)
                self.assertEqual(term.content(), expected + [prompt.rstrip()],
                                 "screen after the echo of %s:\n%s" % (label, term.dump()))

    def test_half_typed_line_stays_intact_when_a_message_arrives(self):
        srv, other, term = self.start()
        term.type("half typed li")
        term.wait_input("alice@lobby> half typed li")
        other.send("interrupting message")
        row = term.wait_line("[guest1] interrupting message")
        term.wait_input("alice@lobby> half typed li")
        self.assertEqual(term.content(), self.HEADER + ["[guest1] interrupting message",
                                                        "alice@lobby> half typed li"])
        self.assertEqual(term.cursor()[1], row + 1)
        # A burst, scrolling the screen: still intact, all in order above it.
        for i in range(40):
            other.send("burst %d" % i)
        term.wait_line("[guest1] burst 39")
        term.wait_input("alice@lobby> half typed li")
        s = term.content()
        self.assertEqual(s[-11:], ["[guest1] burst %d" % i for i in range(30, 40)]
                         + ["alice@lobby> half typed li"], term.dump())
        term.type("ne")
        term.keys("Enter")
        other.expect("[alice] half typed line")
        term.wait_line("[you] half typed line")
        term.wait_input("alice@lobby> ")

    def test_cursor_inside_the_line_kept_when_a_message_arrives(self):
        srv, other, term = self.start()
        term.type("helo world")
        term.wait_input("alice@lobby> helo world")
        term.keys("Left", "Left", "Left", "Left", "Left", "Left", "Left")
        deadline = time.monotonic() + TIMEOUT
        while term.cursor()[0] != len("alice@lobby> hel") and time.monotonic() < deadline:
            time.sleep(0.03)
        other.send("meanwhile")
        term.wait_line("[guest1] meanwhile")
        self.assertEqual(term.input_line(), ("alice@lobby> helo world", len("alice@lobby> hel")))
        term.type("l")
        term.keys("Enter")
        other.expect("[alice] hello world")
        term.wait_line("[you] hello world")

    def test_long_half_typed_line_stays_intact(self):
        srv, other, term = self.start()
        typed = "y" * 150  # prompt + 150: two rows
        term.type(typed)
        full = "alice@lobby> " + typed
        term.wait(lambda s: s[3:5] == [full[:100], full[100:]], "the two-row input")
        other.send("while typing a lot")
        term.wait_line("[guest1] while typing a lot")
        term.wait(lambda s: s[3:6] == ["[guest1] while typing a lot", full[:100], full[100:]],
                  "the message above the intact two-row input")
        self.assertEqual(term.content(), self.HEADER + ["[guest1] while typing a lot",
                                                        full[:100], full[100:]])
        term.keys("Enter")
        other.expect("[alice] " + typed)

    def test_half_typed_line_survives_a_resize(self):
        srv, other, term = self.start()
        term.type("still here")
        term.wait_input("alice@lobby> still here")
        term.tmux("resize-window", "-t", "chatc", "-x", "60", "-y", "20")
        deadline = time.monotonic() + TIMEOUT
        while term.size() != (60, 20):
            self.assertLess(time.monotonic(), deadline, "the window never became 60x20")
            time.sleep(0.03)
        other.send("after the resize")
        term.wait_line("[guest1] after the resize")
        term.wait_input("alice@lobby> still here")
        # The echo is measured with the new width: 13 + 10 + 47 = 70 columns,
        # two rows of 60.
        term.type(" " + "z" * 46)
        term.keys("Enter")
        text = "still here " + "z" * 46
        other.expect("[alice] " + text)
        term.wait_input("alice@lobby> ")
        shown = "[you] " + text
        self.assertEqual(term.content()[-4:], ["[guest1] after the resize", shown[:60],
                                               shown[60:], "alice@lobby>"], term.dump())

    def test_pasted_lines_are_sent_and_shown_each_as_a_line(self):
        srv, other, term = self.start()
        term.tmux("set-buffer", "line one\nline two")
        # -p: as a terminal pastes, in bracketed-paste mode if chatc asks for it.
        term.tmux("paste-buffer", "-p", "-t", "chatc")
        term.keys("Enter")
        other.expect("[alice] line one")
        other.expect("[alice] line two")
        term.wait_input("alice@lobby> ")
        self.assertEqual(term.content(), self.HEADER + ["[you] line one", "[you] line two",
                                                        "alice@lobby>"])

    def test_the_terminal_does_not_echo_while_pasted_lines_are_handled(self):
        """readline's callback interface gives the terminal back its echo
        while each entered line is handled; keys arriving then (the rest of
        a paste, a quick Enter) were echoed by the kernel among chatc's
        lines. A thread reads the terminal's settings all through a pasted
        block: echo must never be on while chatc runs."""
        srv, other, term = self.start()
        fd = term.open_tty()
        self.addCleanup(os.close, fd)
        polls, echoing = [0], [0]
        done = threading.Event()

        def watch():
            while not done.is_set():
                if termios.tcgetattr(fd)[3] & termios.ECHO:
                    echoing[0] += 1
                polls[0] += 1
        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            count = 100
            term.tmux("set-buffer", "".join("paste %d\n" % i for i in range(count)))
            # From before the paste until the last line has reached the
            # other client (chatc handled it before sending it on): the
            # watcher must have been reading all along, not only before.
            polls_before_paste = polls[0]
            term.tmux("paste-buffer", "-p", "-t", "chatc")
            for i in range(count):
                other.expect("[alice] paste %d" % i)
            polls_while_handled = polls[0] - polls_before_paste
            term.wait_input("alice@lobby> ")
        finally:
            done.set()
            watcher.join()
        self.assertGreater(polls_while_handled, count,
                           "the watcher hardly ran while the lines were handled")
        self.assertEqual(echoing[0], 0, "echo was on in %d of %d reads of the terminal's "
                         "settings" % (echoing[0], polls[0]))
        rows = term.content()
        self.assertEqual(rows[-3:], ["[you] paste 98", "[you] paste 99", "alice@lobby>"])
        term.keys("C-d")
        self.check_left_cleanly(term, other)

    def test_ctrl_z_and_fg_give_the_terminal_to_the_shell_and_back(self):
        """Ctrl-Z leaves the terminal as the shell wants it; fg brings back
        the prompt, what was typed, and readline's mode (no kernel echo),
        which readline would not set again by itself."""
        srv = self.start_server()
        other = self.connect(srv)
        term = Tmux(self, ["-n", "alice", "127.0.0.1:%d" % srv.port], job_control=True)
        term.wait_input("$ ")
        term.type(term.command_line)
        term.keys("Enter")
        term.wait_input("alice@lobby> ")
        other.expect("> guest2 entered (2 online)")
        other.expect("* guest2 is now known as alice")
        term.type("half")
        term.wait_input("alice@lobby> half")
        self.assertFalse(term.echoing())
        term.keys("C-z")
        term.wait_input("$ ")
        self.assertTrue(term.echoing(), "the shell got the terminal without echo")
        term.type("fg")
        term.keys("Enter")
        term.wait_input("alice@lobby> half")
        self.assertFalse(term.echoing(), "after fg the kernel echoes chatc's input")
        term.type(" done")
        term.keys("Enter")
        other.expect("[alice] half done")
        term.wait_input("alice@lobby> ")
        self.assertIn("[you] half done", term.screen())
        other.expect_silence()  # the stop and the redraw sent nothing
        term.keys("C-d")
        other.expect("< alice left (1 online)")
        term.wait_input("$ ")
        self.assertTrue(term.echoing(), "the terminal was not given back after Ctrl-D")

    def test_quit_in_pasted_lines_exits_0(self):
        srv, other, term = self.start()
        term.tmux("set-buffer", "bye all\n/quit")
        term.tmux("paste-buffer", "-p", "-t", "chatc")
        term.keys("Enter")
        other.expect("[alice] bye all")
        self.check_left_cleanly(term, other)

    def test_history_up_arrow(self):
        srv, other, term = self.start()
        self.say(term, "first line")
        other.expect("[alice] first line")
        self.say(term, "second line")
        other.expect("[alice] second line")
        term.wait_input("alice@lobby> ")
        term.keys("Up")
        term.wait_input("alice@lobby> second line")
        term.keys("Up")
        term.wait_input("alice@lobby> first line")
        term.keys("Enter")
        other.expect("[alice] first line")

    def colored_session(self, *args, **kw):
        srv, other, term = self.start(*args, **kw)
        other.send("hi from guest1")
        other.send("/me waves")
        term.wait_line("* guest1 waves")
        self.say(term, "/nick 1bad")
        term.wait_line(INVALID_NICK)
        self.say(term, "hello")
        term.wait_line("[you] hello")
        term.wait_input("alice@lobby> ")
        return srv, other, term

    def test_colors_on_a_terminal(self):
        srv, other, term = self.colored_session()
        esc = term.screen(escapes=True)
        byline = {SGR.sub("", l): l for l in esc}
        # A red error.
        err = byline[INVALID_NICK]
        self.assertIn("31", sgr_params_before(err, "! invalid nick"), repr(err))
        # A color per nick, the same in every line it appears in.
        chat = byline["[guest1] hi from guest1"]
        action = byline["* guest1 waves"]
        color = [p for p in sgr_params_before(chat, "guest1")
                 if re.fullmatch(r"3[0-7]|9[0-7]|38;.*", p)]
        self.assertTrue(color, "no color for the nick: %r" % chat)
        self.assertNotIn("31", color, "red is for errors")
        self.assertEqual([p for p in sgr_params_before(action, "guest1") if p in color], color,
                         "not the same color for guest1: %r vs %r" % (chat, action))
        # The text after the nick is back to normal.
        self.assertRegex(chat, r"guest1(\x1b\[[0-9;]*m)+\] hi from guest1$")
        # Dim notices.
        self.assertIn("2", sgr_params_before(byline[MOTD], MOTD), repr(byline[MOTD]))

    def check_no_colors(self, term):
        esc = term.screen(escapes=True)
        self.assertEqual([l for l in esc if "\x1b" in l], [], term.dump(escapes=True))
        self.assertEqual(esc, term.screen())

    def test_no_color_option(self):
        srv, other, term = self.colored_session("--no-color")
        self.check_no_colors(term)

    def test_no_color_environment(self):
        srv, other, term = self.colored_session(no_color_env="1")
        self.check_no_colors(term)

    def test_escape_sequence_from_another_client_is_harmless(self):
        srv, other, term = self.start()
        term.type("typing")
        term.wait_input("alice@lobby> typing")
        other.send_raw(b"\x1b[2J\x1b[H\x1b]0;pwned\x07\x1b[31mred alert\x1b[0m\n")
        shown = "[guest1] [2J[H]0;pwned[31mred alert[0m"
        term.wait_line(shown)
        term.wait_input("alice@lobby> typing")
        self.assertEqual(term.content(), self.HEADER + [shown, "alice@lobby> typing"])
        self.assertNotEqual(term.title(), "pwned")
        line = [l for l in term.screen(escapes=True) if "red alert" in l][0]
        self.assertNotIn("31", sgr_params_before(line, "red alert"), repr(line))

    def test_escape_sequences_from_the_network_never_reach_the_terminal(self):
        # A server that is not chatd, sending raw escape sequences: chatc
        # must clean them itself.
        fake = self.fake_server()
        term = Tmux(self, ["127.0.0.1:%d" % fake.port])
        fake.accept()
        fake.send(b"# motd\n> Connected to the chat server as guest1 (1 online)\n")
        term.wait_input("guest1@lobby> ")
        term.type("typing")
        term.wait_input("guest1@lobby> typing")
        fake.send(b"[mallory] \x1b[2J\x1b[H\x1b]0;pwned\x07\x1b[31mred\x1b[0m \xc2\x9b1;1H"
                  b" \x1bc\x1b[?1049h bs\x08\x08 cr\r end\n")
        shown = "[mallory] [2J[H]0;pwned[31mred[0m 1;1H c[?1049h bs cr end"
        term.wait_line(shown)
        term.wait_input("guest1@lobby> typing")
        self.assertEqual(term.content(), ["# motd",
                                          "> Connected to the chat server as guest1 (1 online)",
                                          shown, "guest1@lobby> typing"])
        self.assertNotEqual(term.title(), "pwned")
        line = [l for l in term.screen(escapes=True) if "mallory" in l][0]
        self.assertNotIn("31", sgr_params_before(line, "red"), repr(line))
        fake.close()
        self.assertEqual(term.status(), 1)

    def screen_after_exit(self, term):
        """The screen once chatc has ended and the shell has written
        "[exit N]" where chatc left the cursor: the lines after the header,
        without blank lines and tmux's dead-pane note."""
        term.status()
        s = term.wait(lambda s: any(l.startswith("[exit ") for l in s), "the shell's [exit N]")
        return [l for l in s[s.index(self.HEADER[-1]) + 1:]
                if l and not l.startswith("Pane is dead")]

    def check_left_cleanly(self, term, other, left="< alice left (1 online)", screens=None):
        """Exit status 0, the others see chatc leave, the terminal settings
        are back, and (screens: the acceptable screen_after_exit()) nothing
        garbled is left on the screen."""
        self.assertEqual(term.status(), 0, term.dump())
        other.expect(left)
        self.assertTrue(term.terminal_restored(), "terminal settings not restored")
        self.assertNotIn(CLOSED, term.screen())
        if screens is not None:
            self.assertIn(self.screen_after_exit(term), screens,
                          "the screen after leaving:\n" + term.dump())

    def test_quit_command(self):
        srv, other, term = self.start()
        self.say(term, "/quit gone fishing")
        self.check_left_cleanly(term, other, "< alice left: gone fishing (1 online)", screens=[
            ["alice@lobby> /quit gone fishing", "= bye", "[exit 0]"]])

    def test_ctrl_d(self):
        srv, other, term = self.start()
        term.keys("C-d")
        # The line where Ctrl-D was pressed, maybe the server's goodbye, the shell.
        self.check_left_cleanly(term, other, screens=[
            ["alice@lobby>", "= bye", "[exit 0]"],
            ["alice@lobby>", "[exit 0]"]])

    def test_ctrl_c(self):
        srv, other, term = self.start()
        term.type("not to be sent")
        term.wait_input("alice@lobby> not to be sent")
        term.keys("C-c")
        # The other's next line is the leaving one: the half line was not
        # sent. On the screen, the half line (or not), maybe the server's
        # goodbye, the shell.
        self.check_left_cleanly(term, other, screens=[
            ["alice@lobby> not to be sent", "= bye", "[exit 0]"],
            ["alice@lobby> not to be sent", "[exit 0]"],
            ["= bye", "[exit 0]"],
            ["[exit 0]"]])

    def test_lost_connection(self):
        srv, other, term = self.start()
        term.type("half")
        term.wait_input("alice@lobby> half")
        srv.signal(signal.SIGTERM)
        self.assertEqual(term.status(), 1, term.dump())
        self.assertIn(self.screen_after_exit(term), [
            ["# server shutting down", CLOSED, "[exit 1]"],
            ["# server shutting down", "alice@lobby> half", CLOSED, "[exit 1]"]],
            term.dump())
        self.assertTrue(term.terminal_restored(), "terminal settings not restored")

if __name__ == "__main__":
    chatdtest.main()
