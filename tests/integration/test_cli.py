#!/usr/bin/env python3
"""The command line: chatd [-c FILE] [-p PORT] [-t] [-d [--pidfile FILE]] [-v|-q] [-V] [-h].

Short-lived invocations (-V, -h, -t, bad options, bad configs) run chatd to
completion and check its exit status and output. Long-running ones use the
harness's Server, or for -d a daemon found through its pidfile that is
always killed at the end.
"""
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import chatdtest
from chatdtest import (CHATD, TIMEOUT, Client, Server, clean_env, free_port, merged_config,
                       write_config)

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get("CHATD_SRCDIR") or os.path.normpath(os.path.join(HERE, "..", ".."))


def run_chatd(*args, timeout=TIMEOUT):
    """Runs chatd to completion; returns the CompletedProcess (text)."""
    return chatdtest.run_chatd(*args, timeout=timeout, text=True, errors="replace")


def wait_for(predicate, timeout=TIMEOUT, what="condition"):
    """Polls predicate (bounded) for state we cannot be told about, such as
    a process that is not our child going away."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.02)


def process_gone(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")  # exited, not reaped yet


def project_version():
    try:
        with open(os.path.join(SRCDIR, "configure.ac")) as f:
            m = re.search(r"AC_INIT\(\[chatd\],\s*\[([^\]]+)\]", f.read())
            return m.group(1) if m else None
    except OSError:
        return None


class CliTestCase(unittest.TestCase):
    def setUp(self):
        tmp = tempfile.TemporaryDirectory(prefix="chatd-cli-")
        self.addCleanup(tmp.cleanup)
        self.dir = tmp.name

    def config_file(self, text=None, overrides=None, name="chatd.conf"):
        path = os.path.join(self.dir, name)
        if text is not None:
            with open(path, "w") as f:
                f.write(text)
        else:
            write_config(path, merged_config(overrides))
        return path

    def output(self, res):
        return res.stdout + res.stderr

    def assertExit(self, res, code):
        self.assertEqual(res.returncode, code,
                         "exit %d, want %d; stdout:\n%s\nstderr:\n%s"
                         % (res.returncode, code, res.stdout, res.stderr))


class InfoOptionsTest(CliTestCase):
    def test_version(self):
        res = run_chatd("-V")
        self.assertExit(res, 0)
        self.assertRegex(res.stdout, r"^chatd \d+\.\d+\.\d+\S*\n")
        version = project_version()
        if version:
            self.assertEqual(res.stdout.splitlines()[0], "chatd " + version)

    def test_help(self):
        res = run_chatd("-h")
        self.assertExit(res, 0)
        self.assertRegex(res.stdout, r"(?i)usage")
        for opt in ["-c", "-p", "-t", "-d", "--pidfile", "-v", "-q", "-V", "-h"]:
            self.assertIn(opt, res.stdout)
        self.assertEqual(res.stderr, "")

    def test_bad_option(self):
        for args in (["-Z"], ["--no-such-option"], ["-p"], ["-c"]):
            with self.subTest(args=args):
                res = run_chatd(*args)
                self.assertExit(res, 2)
                self.assertRegex(res.stderr, r"(?i)usage")
                self.assertEqual(res.stdout, "")


class ConfigCheckTest(CliTestCase):
    def test_good_config(self):
        path = self.config_file()
        res = run_chatd("-t", "-c", path)
        self.assertExit(res, 0)
        self.assertIn("chatd: config ok", self.output(res))

    def test_bad_config(self):
        path = self.config_file("[server]\nport = 0\nmax_clients = 0\n")
        res = run_chatd("-t", "-c", path)
        self.assertExit(res, 1)
        out = self.output(res)
        self.assertIn("%s:3: max_clients: must be 1..1000000" % path, out)
        self.assertNotIn("config ok", out)

    def test_every_error_listed(self):
        path = self.config_file("[server]\n"            # 1
                                "port = 70000\n"        # 2
                                "max_clients = 0\n"     # 3
                                "threads = 100000\n"    # 4
                                "[limits]\n"            # 5
                                "max_line = 10\n"       # 6
                                "[log]\n"               # 7
                                "level = loud\n")       # 8
        res = run_chatd("-t", "-c", path)
        self.assertExit(res, 1)
        out = self.output(res)
        for line, key in [(2, "port"), (3, "max_clients"), (4, "threads"),
                          (6, "max_line"), (8, "level")]:
            self.assertRegex(out, r"(?m)%s:%d: .*\b%s\b" % (re.escape(path), line, key))
        self.assertIn("%s:3: max_clients: must be 1..1000000" % path, out)

    def test_syntax_error(self):
        path = self.config_file("[server]\nthis line has no equals sign\nport = 0\n")
        res = run_chatd("-t", "-c", path)
        self.assertExit(res, 1)
        self.assertIn("%s:2: " % path, self.output(res))

    def test_missing_config_file(self):
        path = os.path.join(self.dir, "does-not-exist.conf")
        for args in (["-t", "-c", path], ["-c", path]):
            with self.subTest(args=args):
                res = run_chatd(*args)
                self.assertExit(res, 1)
                self.assertIn(path, self.output(res))

    def test_start_with_bad_config(self):
        path = self.config_file("[server]\nport = 0\nmax_clients = 0\n")
        res = run_chatd("-c", path)
        self.assertExit(res, 1)
        self.assertIn("%s:3: max_clients: must be 1..1000000" % path, self.output(res))
        self.assertNotIn("listening on", self.output(res))

    def test_shipped_config_passes(self):
        path = os.path.join(SRCDIR, "etc", "chatd.conf")
        self.assertTrue(os.path.exists(path), "the shipped config %s is missing" % path)
        res = run_chatd("-t", "-c", path)
        self.assertExit(res, 0)
        self.assertIn("chatd: config ok", self.output(res))


class PortOptionTest(CliTestCase):
    def test_port_overrides_config(self):
        config_port, port = free_port(), free_port()
        with Server({"server": {"port": str(config_port)}}, args=["-p", str(port)]) as srv:
            self.assertEqual(srv.port, port)
            srv.log.wait(r"listening on 127\.0\.0\.1:%d\b" % port)
            c = srv.client()
            self.addCleanup(c.close)
            c.expect("# Welcome to chatd!")
            c.expect("> Connected to the chat server as guest1 (1 online)")
            self.assertEqual(srv.stop(), 0)
            self.assertNotIn(":%d" % config_port, srv.log.text())

    def test_a_taken_port_is_named_with_its_address(self):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            path = self.config_file("[server]\nbind = 127.0.0.1\nport = %d\n" % port)
            res = run_chatd("-c", path)
            self.assertExit(res, 1)
            self.assertIn("cannot listen on 127.0.0.1:%d for the line protocol: "
                          "Address already in use" % port,
                          self.output(res))


class DaemonTest(CliTestCase):
    def start_daemon(self, config_path, *extra):
        """Runs chatd -d and returns (exit status, stdout, stderr). Output
        goes to files, so a daemon that kept our pipes could not hang us."""
        out_path = os.path.join(self.dir, "out")
        err_path = os.path.join(self.dir, "err")
        with open(out_path, "w") as out, open(err_path, "w") as err:
            proc = subprocess.Popen([CHATD, "-c", config_path, "-d"] + list(extra),
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    env=clean_env())
            try:
                rc = proc.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise AssertionError("chatd -d did not return")
        with open(out_path) as out, open(err_path) as err:
            return rc, proc.pid, out.read(), err.read()

    def kill_daemon(self, pid, pidfile):
        """Cleanup: SIGKILL the daemon if it is still ours and alive."""
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                cmdline = f.read()
        except OSError:
            return
        if pidfile.encode() in cmdline and not process_gone(pid):
            os.kill(pid, signal.SIGKILL)

    def test_daemonize(self):
        port = free_port()
        config = self.config_file(overrides={"log": {"level": "info"}})
        pidfile = os.path.join(self.dir, "chatd.pid")
        rc, parent, out, err = self.start_daemon(config, "-p", str(port), "--pidfile", pidfile)
        self.assertEqual(rc, 0, "stdout:\n%s\nstderr:\n%s" % (out, err))
        self.assertTrue(os.path.exists(pidfile), "no pidfile")
        with open(pidfile) as f:
            pid = int(f.read().strip())
        self.addCleanup(self.kill_daemon, pid, pidfile)
        self.assertNotEqual(pid, parent)
        self.assertFalse(process_gone(pid), "the daemon is not running")
        # Detached: a session of its own (src/daemonize.h forks again after
        # setsid, so the daemon itself need not lead it), no controlling
        # terminal, cwd /, stdio on /dev/null.
        sid = os.getsid(pid)
        self.assertNotEqual(sid, os.getsid(0), "the daemon stayed in our session")
        self.assertEqual(os.getpgid(pid), sid, "the daemon is not in its new session's group")
        with open("/proc/%d/stat" % pid) as f:
            tty_nr = int(f.read().rsplit(")", 1)[1].split()[4])
        self.assertEqual(tty_nr, 0, "the daemon has a controlling terminal")
        self.assertEqual(os.readlink("/proc/%d/cwd" % pid), "/")
        for fd in (0, 1, 2):
            self.assertEqual(os.readlink("/proc/%d/fd/%d" % (pid, fd)), "/dev/null",
                             "fd %d of the daemon" % fd)

        # Listening as soon as the command returned: no retry.
        c1 = Client(port)
        self.addCleanup(c1.close)
        _, nick, _ = c1.welcome()
        self.assertEqual(nick, "guest1")
        c2 = Client(port)
        self.addCleanup(c2.close)
        c2.welcome()
        c1.expect("> guest2 entered (2 online)")
        c2.send("daemonized and chatting")
        c1.expect("[guest2] daemonized and chatting")

        os.kill(pid, signal.SIGTERM)
        for c in (c1, c2):
            c.expect("# server shutting down")
            self.assertEqual(c.expect_closed(), [])
        wait_for(lambda: process_gone(pid), what="the daemon to exit after SIGTERM")
        self.assertFalse(os.path.exists(pidfile), "pidfile left behind after SIGTERM")

    def test_daemonize_bad_config(self):
        config = self.config_file("[server]\nport = 0\nmax_clients = 0\n")
        pidfile = os.path.join(self.dir, "chatd.pid")
        rc, _, out, err = self.start_daemon(config, "--pidfile", pidfile)
        self.assertEqual(rc, 1, "stdout:\n%s\nstderr:\n%s" % (out, err))
        self.assertIn("%s:3: max_clients: must be 1..1000000" % config, err)
        self.assertFalse(os.path.exists(pidfile))


class VerbosityTest(CliTestCase):
    def connect_when_listening(self, srv, port):
        """With -q the port is not logged: poll until the daemon accepts."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            if srv.proc.poll() is not None:
                raise AssertionError("chatd exited:\n" + srv.log.text())
            try:
                return Client(port)
            except ConnectionRefusedError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def chat_a_little(self, srv, port):
        c1 = self.connect_when_listening(srv, port)
        self.addCleanup(c1.close)
        c1.welcome()
        c2 = Client(port)
        self.addCleanup(c2.close)
        c2.welcome()
        c1.expect("> guest2 entered (2 online)")
        c2.send("some chat")
        c1.expect("[guest2] some chat")
        c2.send("/nick renamed")  # logged at debug
        c1.expect("* guest2 is now known as renamed")
        c2.expect("* guest2 is now known as renamed")
        c2.close()
        c1.expect("< renamed left (1 online)")
        c1.close()

    def stopped_log(self, srv):
        self.assertEqual(srv.stop(), 0)
        srv.log.thread.join(TIMEOUT)
        return srv.log.lines

    def test_quiet_hides_info(self):
        port = free_port()
        # Not `with Server() as srv`: that waits for "listening on", an info line.
        with contextlib.closing(Server({"log": {"level": "debug"}},
                                       args=["-q", "-p", str(port)])) as srv:
            self.chat_a_little(srv, port)
            lines = self.stopped_log(srv)
        self.assertFalse(any("connect from" in l for l in lines), "\n".join(lines))
        self.assertFalse(any(re.search(r"\b(info|debug): ", l) for l in lines),
                         "\n".join(lines))

    def test_default_level_logs_connects(self):
        with Server({"log": {"level": "info"}}) as srv:
            self.chat_a_little(srv, srv.port)
            lines = self.stopped_log(srv)
        self.assertTrue(any("connect from" in l for l in lines), "\n".join(lines))
        self.assertFalse(any(" debug: " in l for l in lines), "\n".join(lines))

    def test_verbose_enables_debug(self):
        with Server({"log": {"level": "warning"}}, args=["-v"]) as srv:
            self.chat_a_little(srv, srv.port)
            lines = self.stopped_log(srv)
        self.assertTrue(any("connect from" in l for l in lines), "\n".join(lines))
        self.assertTrue(any(" debug: " in l for l in lines), "\n".join(lines))


@unittest.skipUnless(shutil.which("taskset"), "needs taskset (util-linux)")
class WorkerCountTest(CliTestCase):
    """threads = N beyond the CPUs chatd may run on starts N workers, with a
    warning; chatd runs on one CPU here (taskset), whatever the machine has."""
    MORE = re.compile(r"warning: threads = (\d+) is more than the (\d+) CPUs? chatd may run on")

    def log_on_one_cpu(self, threads):
        cpu = str(min(os.sched_getaffinity(0)))
        with Server({"server": {"threads": str(threads)}}, prefix=("taskset", "-c", cpu)) as srv:
            # One after the other: connected together, the two would race
            # for guest1 on their workers.
            a = srv.client()
            self.addCleanup(a.close)
            a.welcome()
            b = srv.client()
            self.addCleanup(b.close)
            b.welcome()
            b.send("served")  # the two are on different workers when there are two
            a.read_until(r"\[guest2\] served")
            self.assertEqual(srv.stop(), 0)
            srv.log.thread.join(TIMEOUT)
            return srv.log.lines

    def test_more_workers_than_cpus_warned(self):
        lines = self.log_on_one_cpu(3)
        self.assertTrue(any("starting (3 worker threads)" in l for l in lines), "\n".join(lines))
        found = [m.groups() for m in map(self.MORE.search, lines) if m]
        self.assertEqual(found, [("3", "1")], "\n".join(lines))

    def test_one_per_cpu_not_warned(self):
        for threads in (0, 1):
            lines = self.log_on_one_cpu(threads)
            self.assertTrue(any("starting (1 worker thread)" in l for l in lines), "\n".join(lines))
            self.assertFalse(any(self.MORE.search(l) for l in lines), "\n".join(lines))


if __name__ == "__main__":
    chatdtest.main()
