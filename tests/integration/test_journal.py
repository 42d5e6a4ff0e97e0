#!/usr/bin/env python3
"""chatd logging to a real systemd-journald, checked with journalctl.

systemd is not necessarily PID 1 where the tests run, so this file gives
itself a journal: run directly, it re-executes itself under
`unshare --mount --propagation private`, and inside that private mount
namespace mounts tmpfs over the journal's directories (/run/systemd or
/run/systemd/journal, /run/log, /var/log/journal, plus a journald.conf of its
own), starts /lib/systemd/systemd-journald and runs chatd against it. Nothing
is mounted on the host: the mounts die with the namespace, i.e. with this
process. chatd is put in a cgroup named chatd.service (under a uniquely named
.slice at the root of the cgroup2 hierarchy, removed afterwards) so that
`journalctl -u chatd` works as under systemd.

Skips (exit 77) only when the journal cannot be had: not root, no
unshare/journald, or journald does not start.
"""
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

import chatdtest
from chatdtest import TIMEOUT, Client, wait_for_item

JOURNALD = "/lib/systemd/systemd-journald"
JOURNAL_SOCKET = "/run/systemd/journal/socket"
JOURNAL_VARLINK = "/run/systemd/journal/io.systemd.journal"  # journalctl --sync
# Set in the copy of this file that runs inside the namespace: the mount
# namespace it was started from (it must not be the one it runs in).
INNER_ENV = "CHATD_TEST_JOURNAL_PARENT_NS"
# Why the namespace could not be had (then every test skips).
SKIP_ENV = "CHATD_TEST_JOURNAL_SKIP"

JOURNALD_CONF = """\
[Journal]
Storage=volatile
ReadKMsg=no
ForwardToSyslog=no
ForwardToKMsg=no
ForwardToConsole=no
ForwardToWall=no
RateLimitIntervalSec=0
RuntimeMaxUse=64M
"""

DOCUMENTED_EVENTS = {"start", "connect", "disconnect", "reject", "reload",
                     "reload_failed", "stop", "account_registered", "login_failed", "wall",
                     "log_level"}

# A config with one error, on line 5.
BROKEN_CONFIG = ("[server]\n"
                 "port = 0\n"
                 "bind = 127.0.0.1\n"
                 "threads = 2\n"
                 "max_clients = banana\n"
                 "motd = broken\n"
                 "[log]\n"
                 "level = debug\n"
                 "target = journal\n")
BROKEN_LINE = 5


# ---- the namespace --------------------------------------------------------

def namespace_problem():
    """None when this file can re-run itself in a private mount namespace
    with a journald of its own, else the reason it cannot."""
    if os.geteuid() != 0:
        return "needs root (mounts tmpfs in a private mount namespace, runs systemd-journald)"
    if not os.access(JOURNALD, os.X_OK):
        return "%s is not installed" % JOURNALD
    for tool in ("unshare", "journalctl"):
        if not shutil.which(tool):
            return "%s is not installed" % tool
    r = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    if r.returncode != 0:
        return "cannot create a mount namespace: %s" % r.stdout.decode(errors="replace").strip()
    return None


_libc = ctypes.CDLL(None, use_errno=True)
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2


def sys_mount(source, target, fstype, flags=0, data=None):
    """mount(2) itself: unlike mount(8) it writes nothing to the host's
    /run/mount/utab."""
    enc = lambda s: s.encode() if s is not None else None
    if _libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags),
                   enc(data)) != 0:
        e = ctypes.get_errno()
        raise OSError(e, "mount %s: %s" % (target, os.strerror(e)))


def sys_umount(target):
    _libc.umount2(target.encode(), MNT_DETACH)


def die_with_us():
    """preexec_fn: the child gets SIGKILL if this process dies first, so a
    killed test run leaves no journald (which would keep the namespace and
    its mounts alive). Only used while this process has no other threads."""
    PR_SET_PDEATHSIG = 1
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def die_with_us_argv(argv):
    """The same for a child started when threads exist: setpriv sets it,
    then execs argv (same pid)."""
    if shutil.which("setpriv"):
        return ["setpriv", "--pdeathsig", "KILL", "--"] + list(argv)
    return list(argv)


class PrivateJournal:
    """tmpfs over the journal's directories in this (private) mount namespace,
    and a systemd-journald writing there."""

    def __init__(self):
        self.mounts = []
        self.tmp = tempfile.TemporaryDirectory(prefix="chatd-journald-")
        self.proc = None
        self.output = os.path.join(self.tmp.name, "journald.out")

    def _tmpfs_over(self, path):
        """A tmpfs on path, or on its nearest existing parent when path does
        not exist (on the host we must not create it), then path inside."""
        top = path
        while not os.path.isdir(top):
            top = os.path.dirname(top)
        if top not in self.mounts:
            sys_mount("tmpfs", top, "tmpfs", 0, "mode=0755")
            self.mounts.append(top)
        os.makedirs(path, exist_ok=True)

    def start(self):
        here = os.readlink("/proc/self/ns/mnt")
        if here == os.environ.get(INNER_ENV):
            raise unittest.SkipTest("not in a private mount namespace; refusing to mount")
        try:
            self._mount_all()
        except OSError as e:
            raise unittest.SkipTest("cannot mount the journal's directories: %s" % e)
        with open(self.output, "wb") as out:
            # Not in chatd's RUNTIME_DIRECTORY: journald would put its
            # sockets there.
            self.proc = subprocess.Popen([JOURNALD], stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT,
                                         env=clean_env(drop=("RUNTIME_DIRECTORY",)),
                                         preexec_fn=die_with_us)
        deadline = time.monotonic() + TIMEOUT
        while not (os.path.exists(JOURNAL_SOCKET) and os.path.exists(JOURNAL_VARLINK)):
            if self.proc.poll() is not None:
                raise unittest.SkipTest("systemd-journald exited with %s: %s"
                                        % (self.proc.returncode, self.journald_output()))
            if time.monotonic() > deadline:
                raise unittest.SkipTest("systemd-journald made no %s within %ss: %s"
                                        % (JOURNAL_SOCKET, TIMEOUT, self.journald_output()))
            time.sleep(0.05)

    def _mount_all(self):
        # unshare --propagation private did this already; make sure nothing we
        # mount can propagate back.
        sys_mount(None, "/", None, MS_REC | MS_PRIVATE)
        self._tmpfs_over("/run/systemd/journal")
        self._tmpfs_over("/run/log/journal")
        if os.path.isdir("/var/log/journal"):
            self._tmpfs_over("/var/log/journal")
        # Our own journald.conf: volatile storage (only /run/log/journal), no
        # kernel log import, no rate limit.
        conf = os.path.join(self.tmp.name, "journald.conf")
        with open(conf, "w") as f:
            f.write(JOURNALD_CONF)
        if os.path.isfile("/etc/systemd/journald.conf"):
            sys_mount(conf, "/etc/systemd/journald.conf", None, MS_BIND)
            self.mounts.append("/etc/systemd/journald.conf")
        elif os.path.isdir("/etc/systemd"):
            self._tmpfs_over("/etc/systemd")
            shutil.copy(conf, "/etc/systemd/journald.conf")

    def journald_output(self):
        try:
            with open(self.output, "rb") as f:
                return f.read().decode(errors="replace").strip() or "(no output)"
        except OSError:
            return "(no output)"

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for m in reversed(self.mounts):
            sys_umount(m)
        self.mounts = []
        self.tmp.cleanup()


def clean_env(extra=None, drop=()):
    return chatdtest.clean_env(extra, drop=(INNER_ENV,) + tuple(drop))


# ---- cgroup ---------------------------------------------------------------

class UnitCgroup:
    """/<cgroup2 root>/chatd-test-PID.slice/chatd.service: journald names the
    unit of a process after the first non-slice directory of its cgroup path
    (relative to PID 1's), so chatd in there is logged with
    _SYSTEMD_UNIT=chatd.service. (A parent not ending in .slice would make it
    the unit; the name=systemd v1 hierarchy is not what journald reads when
    cgroup2 is mounted.)"""

    def __init__(self):
        self.root = None
        self.dirs = []
        self.problem = None
        with open("/proc/self/mountinfo") as f:
            for line in f:
                parts = line.split()
                if parts[parts.index("-") + 1] == "cgroup2":
                    self.root = parts[4]
                    break
        if self.root is None:
            self.problem = "no cgroup2 hierarchy is mounted"
            return
        self._remove_stale()
        self.rel = "/chatd-test-%d.slice/chatd.service" % os.getpid()
        path = self.root
        try:
            for part in self.rel.strip("/").split("/"):
                path = os.path.join(path, part)
                os.mkdir(path)
                self.dirs.append(path)
        except OSError as e:
            self.problem = "cannot create the cgroup %s: %s" % (path, e)
            self.remove()
            return
        self.procs = os.path.join(self.dirs[-1], "cgroup.procs")

    def _remove_stale(self):
        """Empty cgroups left by a run of this test that was killed (its pid
        is gone) are removed; anything else is left alone."""
        for name in os.listdir(self.root):
            m = re.fullmatch(r"chatd-test-(\d+)\.slice", name)
            if not m:
                continue
            try:
                os.kill(int(m.group(1)), 0)
                continue
            except ProcessLookupError:
                pass
            except OSError:
                continue
            stale = os.path.join(self.root, name)
            for d in (os.path.join(stale, "chatd.service"), stale):
                try:
                    os.rmdir(d)
                except OSError:
                    pass

    def wrap(self, argv):
        """argv run from a shell that first moves itself into the cgroup,
        then execs (same pid), so chatd is in it from its first log line."""
        if self.problem:
            return argv
        return ["/bin/sh", "-c", 'echo $$ > "$0" || echo "cannot join cgroup $0" >&2; exec "$@"',
                self.procs] + list(argv)

    def contains(self, pid):
        try:
            with open("/proc/%d/cgroup" % pid) as f:
                return any(l.strip() == "0::" + self.rel for l in f)
        except OSError:
            return False

    def remove(self):
        for d in reversed(self.dirs):
            try:
                with open(os.path.join(d, "cgroup.procs")) as f:
                    left = f.read().split()
                for pid in left:  # move stragglers to the root before rmdir
                    try:
                        with open(os.path.join(self.root, "cgroup.procs"), "w") as f:
                            f.write(pid)
                    except OSError:
                        pass
                os.rmdir(d)
            except OSError as e:
                sys.stderr.write("warning: could not remove cgroup %s: %s\n" % (d, e))
        self.dirs = []


# ---- reading the journal --------------------------------------------------

def value(entry, key):
    """A field of a `journalctl -o json` entry as str (binary values come as
    lists of byte values, repeated fields as lists); None when absent."""
    v = entry.get(key)
    if isinstance(v, list):
        if all(isinstance(x, int) for x in v):
            return bytes(v).decode("utf-8", "replace")
        return "\n".join(str(x) for x in v)
    return v


def journalctl(*args):
    r = subprocess.run(["journalctl", "--no-pager"] + list(args), stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(),
                       timeout=TIMEOUT)
    if r.returncode != 0 and b"No entries" not in r.stderr:
        raise AssertionError("journalctl %s failed: %s" % (" ".join(args), r.stderr.decode()))
    return r.stdout.decode("utf-8", "replace")


def journal_entries(*matches):
    journalctl("--sync")
    return [json.loads(l) for l in journalctl("-o", "json", *matches).splitlines() if l.strip()]


def server_sockets(pid):
    """The sockets process PID holds."""
    n = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            n += os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith("socket:")
        except OSError:
            pass  # closed meanwhile
    return n


def wait_until(pred, what, timeout=TIMEOUT):
    """Polls PRED (bounded) for state no line reports."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.01)


class JournalFollower:
    """`journalctl -f -o json` in a thread: wait() blocks until an entry
    matching a predicate has been written to the journal."""

    def __init__(self):
        self.entries = []
        self.cond = threading.Condition()
        self.proc = subprocess.Popen(["journalctl", "--no-pager", "-f", "-n", "all", "-o", "json"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, env=clean_env(),
                                     preexec_fn=die_with_us)
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self):
        for line in iter(self.proc.stdout.readline, b""):
            try:
                e = json.loads(line)
            except ValueError:
                continue
            with self.cond:
                self.entries.append(e)
                self.cond.notify_all()

    def wait(self, pred, what, timeout=TIMEOUT):
        with self.cond:
            i = wait_for_item(self.entries, pred, self.cond.wait,
                              lambda: "no journal entry %s within %ss; journal has:\n%s"
                              % (what, timeout, "\n".join(
                                  "  %s[%s] %s" % (value(e, "SYSLOG_IDENTIFIER"),
                                                   value(e, "_PID"),
                                                   value(e, "MESSAGE"))
                                  for e in self.entries[-40:])),
                              timeout)
            return self.entries[i]

    def wait_pid(self, pid, what, **match):
        """An entry of pid whose fields equal match (MESSAGE may be a regex,
        searched)."""
        rx = re.compile(match.pop("MESSAGE")) if "MESSAGE" in match else None

        def pred(e):
            return (value(e, "_PID") == str(pid)
                    and all(value(e, k) == v for k, v in match.items())
                    and (rx is None or rx.search(value(e, "MESSAGE") or "")))
        return self.wait(pred, "from pid %d: %s" % (pid, what))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait()
        self.thread.join(2)
        self.proc.stdout.close()


def send_native(message, identifier):
    """One entry through the native protocol, like sd_journal_send()."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(("MESSAGE=%s\nSYSLOG_IDENTIFIER=%s\n" % (message, identifier)).encode(),
                 JOURNAL_SOCKET)


# ---- chatd ----------------------------------------------------------------

class Daemon:
    """chatd logging to the journal: its port comes from its `listening on`
    journal entry. Its own stdout/stderr go to a file (not a terminal)."""

    def __init__(self, follower, config, wrap=lambda argv: argv):
        self.dir = tempfile.TemporaryDirectory(prefix="chatd-test-")
        self.config_path = os.path.join(self.dir.name, "chatd.conf")
        chatdtest.write_config(self.config_path, chatdtest.merged_config(config))
        self.output = os.path.join(self.dir.name, "output")
        with open(self.output, "wb") as out:
            argv = wrap(die_with_us_argv([chatdtest.CHATD, "-c", self.config_path]))
            self.proc = subprocess.Popen(argv,
                                         stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, env=clean_env())
        self.pid = self.proc.pid
        self.follower = follower
        try:
            e = self.wait("listening",
                          MESSAGE=r"^listening on 127\.0\.0\.1:(\d+) for the line protocol$")
        except AssertionError as err:
            output = self.own_output()
            self.close()
            raise AssertionError("%s\nchatd's own output:\n%s" % (err, output))
        self.port = int(re.search(r":(\d+) ", value(e, "MESSAGE")).group(1))

    def wait(self, what, **match):
        return self.follower.wait_pid(self.pid, what, **match)

    def own_output(self):
        with open(self.output, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def rewrite(self, config=None, text=None):
        chatdtest.rewrite_config(self.config_path, config, text)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.dir.cleanup()


def check(condition, what):
    if not condition:
        raise AssertionError(what)


def peer(client):
    addr, port = client.sock.getsockname()[:2]
    return "%s:%d" % (addr, port)


# ---- the tests ------------------------------------------------------------

class JournalTest(unittest.TestCase):
    """One chatd session (target = journal, in chatd.service) played in
    setUpClass; the tests check what journalctl shows of it."""

    skip_reason = None

    @classmethod
    def setUpClass(cls):
        try:
            cls.start_journal()
        except unittest.SkipTest as e:
            # Skipped test by test (in setUp), not as a class: a class skipped
            # in setUpClass counts as no test run at all, and chatdtest.main()
            # would then exit 0 instead of automake's 77.
            cls.skip_reason = str(e)
            return
        cls.play_session()

    def setUp(self):
        if self.skip_reason:
            self.skipTest(self.skip_reason)

    @classmethod
    def start_journal(cls):
        if os.environ.get(SKIP_ENV):
            raise unittest.SkipTest(os.environ[SKIP_ENV])
        if INNER_ENV not in os.environ:
            raise unittest.SkipTest("run this file directly (python3 %s): it re-executes "
                                    "itself in a private mount namespace" % __file__)
        cls.journal = PrivateJournal()
        cls.addClassCleanup(cls.journal.stop)
        cls.journal.start()
        cls.follower = JournalFollower()
        cls.addClassCleanup(cls.follower.stop)
        probe = "chatd-test journal probe %s" % uuid.uuid4().hex
        send_native(probe, "chatd-test")
        try:
            cls.follower.wait(lambda e: value(e, "MESSAGE") == probe, "probe", timeout=TIMEOUT)
        except AssertionError:
            raise unittest.SkipTest("journald started but an entry sent to it never showed "
                                    "in journalctl: %s" % cls.journal.journald_output())
        cls.cgroup = UnitCgroup()
        cls.addClassCleanup(cls.cgroup.remove)

    @classmethod
    def play_session(cls):
        cls.marker = "chat-marker-%s" % uuid.uuid4().hex
        d = cls.daemon = Daemon(cls.follower, {
            "server": {"max_clients": "3", "motd": "journal test", "threads": "2"},
            "limits": {"rate": "10", "burst": "20"},
            "log": {"level": "debug", "target": "journal"}}, wrap=cls.cgroup.wrap)
        cls.addClassCleanup(d.close)
        cls.in_cgroup = cls.cgroup.contains(d.pid)
        clients = []

        def connect(nick, online, others):
            c = Client(d.port)
            clients.append(c)
            check(c.welcome() == (["journal test"], nick, online), "greeting of %s" % nick)
            for o in others:
                o.expect("> %s entered (%d online)" % (nick, online))
            return c

        try:
            c1 = connect("guest1", 1, [])
            c2 = connect("guest2", 2, [c1])
            c1.send("/nick alice")
            for c in (c1, c2):
                c.expect("* guest1 is now known as alice")
            c1.send("%s said" % cls.marker)
            c2.expect("[alice] %s said" % cls.marker)
            c1.send("/me %s waves" % cls.marker)
            c2.expect("* alice %s waves" % cls.marker)
            c1.send("/msg guest2 %s psst" % cls.marker)
            for c in (c1, c2):
                c.expect("[alice -> guest2] %s psst" % cls.marker)
            # Passwords go nowhere near the journal.
            cls.secret = "journal-secret-%s" % uuid.uuid4().hex
            c1.send("/register " + cls.secret)
            c1.expect("= registered alice: you are logged in")
            c2.send("/identify alice %s-wrong" % cls.secret)
            c2.expect("! wrong password for alice")
            c3 = connect("guest3", 3, [c1, c2])
            c4 = Client(d.port)
            clients.append(c4)
            c4.expect("! server full (max 3 clients)")
            check(c4.expect_closed() == [], "nothing after server full")
            cls.peers = {"alice": peer(c1), "guest2": peer(c2), "guest3": peer(c3),
                         "rejected": peer(c4)}
            held = server_sockets(d.pid)
            c2.send("/quit off to lunch")
            c2.expect("= bye")
            check(c2.expect_closed() == [], "nothing after = bye")
            # Its slot is free once chatd has closed the socket, after our
            # end closes too; no line says when, so watch chatd's fds, or
            # guest4 below could still find the server full.
            c2.close()
            wait_until(lambda: server_sockets(d.pid) < held, "chatd to close guest2's socket")
            for c in (c1, c3):
                c.expect("< guest2 left: off to lunch (2 online)")
            # A flooder (the shipped rate 10, burst 20) is cut off.
            c5 = connect("guest4", 3, [c1, c3])
            cls.peers["flooder"] = peer(c5)
            c5.send_raw(b"".join(b"flood %d\n" % i for i in range(200)))
            check(c5.expect_closed()[-1] == "! flooding: disconnected", "flooder told")
            for c in (c1, c3):
                c.read_until(r"^< guest4 left \(2 online\)$")
            c3.close()
            c1.expect("< guest3 left (1 online)")
            # An admin's acts, with who did them.
            ctl = [chatdtest.CHATCTL, "-s", os.path.join(d.dir.name, "control.sock")]
            for args in (["wall", "maintenance at ten"], ["log-level", "debug"]):
                r = subprocess.run(ctl + args, capture_output=True, text=True, env=clean_env(),
                                   timeout=TIMEOUT)
                check(r.returncode == 0, "chatctl %s: %s" % (args, r.stderr))
            c1.expect("# maintenance at ten")

            d.rewrite({"server": {"max_clients": "3", "motd": "reloaded", "threads": "2"},
                       "log": {"level": "debug", "target": "journal"}})
            d.proc.send_signal(signal.SIGHUP)
            d.wait("reload", CHATD_EVENT="reload")
            d.rewrite(text=BROKEN_CONFIG)
            d.proc.send_signal(signal.SIGHUP)
            d.wait("reload_failed", CHATD_EVENT="reload_failed")

            d.proc.send_signal(signal.SIGTERM)
            c1.expect("# server shutting down")
            check(c1.expect_closed() == [], "nothing after the shutdown notice")
            cls.exit_status = d.proc.wait(TIMEOUT)
        finally:
            for c in clients:
                c.close()
        cls.entries = [e for e in journal_entries() if value(e, "_PID") == str(d.pid)]
        if os.environ.get("CHATD_TEST_VERBOSE"):
            sys.stderr.write("chatd's journal entries:\n%s\n" % cls.dump(cls))

    # -- helpers

    def of_event(self, event, **match):
        return [e for e in self.entries if value(e, "CHATD_EVENT") == event
                and all(value(e, k) == v for k, v in match.items())]

    def one(self, event, **match):
        found = self.of_event(event, **match)
        self.assertEqual(len(found), 1, "want one %s entry with %r, journal has:\n%s"
                         % (event, match, self.dump()))
        return found[0]

    def dump(self):
        keys = ("PRIORITY", "CHATD_EVENT", "CHATD_PEER", "CHATD_NICK", "CHATD_ONLINE",
                "CHATD_REASON", "CODE_FILE", "CODE_LINE", "MESSAGE")
        return "\n".join("  " + " ".join("%s=%s" % (k, value(e, k)) for k in keys
                                         if value(e, k) is not None)
                         for e in self.entries)

    def assert_entry(self, e, priority, message, **fields):
        self.assertEqual(value(e, "PRIORITY"), str(priority), value(e, "MESSAGE"))
        if isinstance(message, re.Pattern):
            self.assertRegex(value(e, "MESSAGE"), message)
        else:
            self.assertEqual(value(e, "MESSAGE"), message)
        for k, v in fields.items():
            self.assertEqual(value(e, k), v, "%s of %r" % (k, value(e, "MESSAGE")))

    # -- the session

    def test_session_ran_and_exited_cleanly(self):
        self.assertEqual(self.exit_status, 0)
        self.assertNotIn("listening on", self.daemon.own_output(),
                         "with target = journal the log must not also go to stderr")

    def test_every_entry_identifies_chatd_and_its_code(self):
        self.assertTrue(self.entries)
        for e in self.entries:
            msg = value(e, "MESSAGE")
            self.assertIsNotNone(msg)
            self.assertEqual(value(e, "SYSLOG_IDENTIFIER"), "chatd", msg)
            self.assertRegex(value(e, "PRIORITY") or "", r"^[0-7]$", msg)
            code_file = value(e, "CODE_FILE") or ""
            self.assertRegex(code_file, r"(^|/)src/([a-z]+/)?[^/]+\.c$", msg)
            self.assertNotEqual(os.path.basename(code_file), "log.c",
                                "CODE_FILE must be the caller's, not log.c: %r" % msg)
            self.assertRegex(value(e, "CODE_LINE") or "", r"^[1-9][0-9]*$", msg)
            self.assertTrue(value(e, "CODE_FUNC"), msg)

    def test_every_event_kind_is_logged(self):
        events = {value(e, "CHATD_EVENT") for e in self.entries} - {None}
        self.assertEqual(events - DOCUMENTED_EVENTS, set(), "undocumented CHATD_EVENT values")
        self.assertEqual(DOCUMENTED_EVENTS - events, set(), "events never logged:\n" + self.dump())

    def test_no_password_in_the_journal(self):
        self.one("account_registered", CHATD_NICK="alice", PRIORITY="6")
        e = self.one("login_failed", CHATD_NICK="alice", CHATD_COUNT="1")
        self.assertEqual(value(e, "PRIORITY"), "5")
        self.assertEqual(value(e, "CHATD_PEER"), self.peers["guest2"].rsplit(":", 1)[0])
        for entry in journal_entries():
            for k, v in entry.items():
                self.assertNotIn(self.secret, str(v), "a password in the journal's %s" % k)

    def test_start(self):
        e = self.one("start")
        self.assert_entry(e, 6, re.compile(r"^chatd \S+ starting \(2 worker threads\)$"))
        listening = [x for x in self.entries
                     if value(x, "MESSAGE") == "listening on 127.0.0.1:%d for the line protocol"
                     % self.daemon.port]
        self.assertEqual(len(listening), 1, self.dump())
        self.assertEqual(value(listening[0], "PRIORITY"), "6")

    def test_connect(self):
        e = self.one("connect", CHATD_NICK="guest1")
        p = self.peers["alice"]
        self.assertRegex(p, r"^127\.0\.0\.1:\d+$")
        self.assert_entry(e, 6, "connect from %s as guest1 (1 online)" % p,
                          CHATD_PEER=p, CHATD_ONLINE="1")
        for nick, online in (("guest2", "2"), ("guest3", "3")):
            e = self.one("connect", CHATD_NICK=nick)
            self.assert_entry(e, 6, "connect from %s as %s (%s online)"
                              % (self.peers[nick], nick, online),
                              CHATD_PEER=self.peers[nick], CHATD_ONLINE=online)

    def test_disconnect_after_quit(self):
        p = self.peers["guest2"]
        e = self.one("disconnect", CHATD_NICK="guest2")
        self.assert_entry(e, 6, "disconnect %s guest2: quit (2 online)" % p,
                          CHATD_PEER=p, CHATD_REASON="quit", CHATD_ONLINE="2")

    def test_disconnect_of_a_flooder(self):
        p = self.peers["flooder"]
        e = self.one("disconnect", CHATD_PEER=p)
        self.assert_entry(e, 6, "disconnect %s guest4: flood (2 online)" % p,
                          CHATD_PEER=p, CHATD_NICK="guest4", CHATD_REASON="flood",
                          CHATD_ONLINE="2")
        notices = [x for x in self.entries if value(x, "MESSAGE").startswith(
            "%s (guest4): flooding past 10 lines per second" % p)]
        self.assertEqual(len(notices), 1, self.dump())
        self.assertEqual(value(notices[0], "CHATD_REASON"), "flood")

    def test_disconnect_when_client_closes(self):
        p = self.peers["guest3"]
        e = self.one("disconnect", CHATD_NICK="guest3")
        self.assert_entry(e, 6, "disconnect %s guest3: closed (1 online)" % p,
                          CHATD_PEER=p, CHATD_REASON="closed", CHATD_ONLINE="1")

    def test_disconnect_at_shutdown_has_the_current_nick(self):
        p = self.peers["alice"]
        e = self.one("disconnect", CHATD_PEER=p)
        self.assert_entry(e, 6, re.compile(r"^disconnect %s alice: shutdown \(\d+ online\)$"
                                           % re.escape(p)),
                          CHATD_NICK="alice", CHATD_REASON="shutdown")

    def test_reject(self):
        p = self.peers["rejected"]
        e = self.one("reject")
        self.assert_entry(e, 5, "rejected %s: server full (max 3 clients)" % p,
                          CHATD_PEER=p, CHATD_REASON="full")

    def test_admin_actions_have_their_actor(self):
        e = self.one("wall")
        self.assert_entry(e, 5, "wall to 1 online: maintenance at ten",
                          CHATD_ONLINE="1")
        e2 = self.one("log_level")
        self.assert_entry(e2, 4, "log level debug (was debug) until the next reload")
        for entry in (e, e2):
            self.assertRegex(value(entry, "CHATD_ACTOR") or "", r"^root \(uid 0, pid \d+\)$")

    def test_reload(self):
        e = self.one("reload")
        self.assert_entry(e, 6, "config reloaded from %s" % self.daemon.config_path)

    def test_reload_failed(self):
        found = self.of_event("reload_failed")
        self.assertTrue(found, self.dump())
        for e in found:
            self.assert_entry(e, 3, re.compile(r"^reload failed, keeping the old config: %s:\d+: \S"
                                               % re.escape(self.daemon.config_path)))
        self.assertIn(":%d: " % BROKEN_LINE, value(found[0], "MESSAGE"))

    def test_stop(self):
        messages = [value(e, "MESSAGE") for e in self.entries]
        self.assertTrue(any(re.fullmatch(r"shutting down \(signal (SIG)?TERM\)", m or "")
                            for m in messages), self.dump())
        self.assertEqual(messages[-1], "stopped", "stopped must be the last entry")
        self.assertTrue(self.of_event("stop"), self.dump())
        for e in self.entries:
            if re.fullmatch(r"shutting down \(signal (SIG)?TERM\)|stopped", value(e, "MESSAGE")):
                self.assertEqual(value(e, "PRIORITY"), "6")

    def test_chat_text_is_not_logged_above_debug(self):
        for e in self.entries:
            if int(value(e, "PRIORITY")) >= 7:
                continue
            for k in e:
                self.assertNotIn(self.marker, value(e, k) or "",
                                 "chat text in %s of an entry at priority %s: %r"
                                 % (k, value(e, "PRIORITY"), value(e, "MESSAGE")))

    def test_journalctl_unit_finds_the_entries(self):
        if self.cgroup.problem:
            self.skipTest("chatd could not be put in a chatd.service cgroup: %s"
                          % self.cgroup.problem)
        if not self.in_cgroup:
            self.skipTest("chatd did not end up in %s (see its output: %r)"
                          % (self.cgroup.rel, self.daemon.own_output()))
        by_unit = journal_entries("-u", "chatd")
        mine = [e for e in by_unit if value(e, "_PID") == str(self.daemon.pid)]
        self.assertEqual({value(e, "__CURSOR") for e in mine},
                         {value(e, "__CURSOR") for e in self.entries},
                         "journalctl -u chatd must list every entry chatd wrote")
        for e in mine:
            self.assertEqual(value(e, "_SYSTEMD_UNIT"), "chatd.service")
        # The documented way to list connections.
        connects = journal_entries("-u", "chatd", "CHATD_EVENT=connect")
        self.assertEqual(sorted(value(e, "CHATD_NICK") for e in connects
                                if value(e, "_PID") == str(self.daemon.pid)),
                         ["guest1", "guest2", "guest3", "guest4"])

    # -- a second daemon

    def test_auto_target_picks_the_journal(self):
        # stderr is a file here, not a terminal, and the journal socket
        # exists: auto must log to the journal.
        d = Daemon(self.follower, {"log": {"level": "info", "target": "auto"}})
        self.addCleanup(d.close)
        d.wait("start", CHATD_EVENT="start", SYSLOG_IDENTIFIER="chatd")
        c = Client(d.port)
        self.addCleanup(c.close)
        self.assertEqual(c.welcome(), (["Welcome to chatd!"], "guest1", 1))
        e = d.wait("connect", CHATD_EVENT="connect")
        self.assertEqual(value(e, "CHATD_PEER"), peer(c))
        d.proc.send_signal(signal.SIGTERM)
        c.expect("# server shutting down")
        self.assertEqual(d.proc.wait(TIMEOUT), 0)
        d.wait("stopped", MESSAGE=r"^stopped$")
        self.assertNotIn("listening on", d.own_output(),
                         "target = auto with the journal present logged to stderr")

    def test_lines_held_back_are_counted_in_chatd_suppressed(self):
        d = Daemon(self.follower, {"log": {"level": "info", "target": "journal",
                                           "per_address_burst": "2"}})
        self.addCleanup(d.close)
        for _ in range(10):  # 20 lines due, 2 at once
            c = Client(d.port)
            c.welcome()
            c.close()
        time.sleep(1.05)  # a token again, after a second
        c = Client(d.port)
        self.addCleanup(c.close)
        nick = c.welcome()[1]
        e = d.wait("a connect with a count", CHATD_EVENT="connect", CHATD_NICK=nick)
        n = int(value(e, "CHATD_SUPPRESSED") or "0")
        self.assertGreater(n, 0, self.dump())
        self.assertRegex(value(e, "MESSAGE"),
                         r"^connect from %s as %s \(\d+ online\) \(%d more messages about "
                         r"127\.0\.0\.1 not logged\)$" % (re.escape(peer(c)), nick, n))


def reexec_in_namespace():
    """Runs this file again inside a private mount namespace (same pid: exec),
    or marks the tests to be skipped when that cannot be done."""
    if INNER_ENV in os.environ or SKIP_ENV in os.environ:
        return
    problem = namespace_problem()
    if problem:
        os.environ[SKIP_ENV] = problem
        return
    env = dict(os.environ)
    env[INNER_ENV] = os.readlink("/proc/self/ns/mnt")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe("unshare", ["unshare", "--mount", "--propagation", "private", "--",
                           sys.executable, os.path.abspath(__file__)] + sys.argv[1:], env)


if __name__ == "__main__":
    reexec_in_namespace()
    chatdtest.main()
