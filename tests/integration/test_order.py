#!/usr/bin/env python3
"""Causal order across workers, proven by holding one worker still.

A line for a room is handed by its sender's worker to every other worker's
inbox. If those hand-overs were seen one at a time, a client on the first
worker to get the line could answer it, and the answer reach a client on a
third worker before the line itself did: "answer" above "question". Whether
that happens depends on the sender's thread losing the CPU at just that
moment, which no timing test can arrange, so this test arranges it: gdb,
in non-stop mode, stops worker 0 in the middle of handing a line over (its
other threads run on; tests/unit/test_handoff.c checks the same guarantee
of the hand-over alone, with plain threads), the client on worker 1 answers whatever it gets, and
the client on worker 2 must get the line before the answer.

gdb needs a chatd built without optimisation (-O0 -g) to stop at a source
line and read its variables, so the test runs only with CHATD_GDB_TESTS=1;
.ci/run builds such a chatd and sets it."""
import os
import re
import select
import shutil
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import chatdtest  # noqa: E402
from chatdtest import TIMEOUT, ChatdTestCase  # noqa: E402

GDB = shutil.which("gdb")
ENABLED = os.environ.get("CHATD_GDB_TESTS") == "1"
HANDOFF_C = os.path.join(os.environ.get("CHATD_SRCDIR", "."), "src", "net", "handoff.c")
# Where outboxes_flush has given the line to some workers' inboxes and not
# yet to the others.
HAND_OVER = "o->needs_wake = append_locked(inboxes[i], o->items, o->count);"
# What gdb says when it cannot attach, or cannot read the breakpoint's
# condition (a chatd built with optimisation): fail with it at once.
GDB_FAILURES = (b"ptrace:", b"Could not attach", b"Error in testing condition",
                b"No symbol", b"optimized out")


class Gdb:
    """gdb attached in non-stop mode: a thread stopped at a breakpoint stays
    stopped while the process's other threads run."""

    def __init__(self, tc, pid):
        self.proc = subprocess.Popen([GDB, "-q", "-nx"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        tc.addCleanup(self.close)
        self.out = b""
        for c in ("set pagination off", "set confirm off", "set non-stop on",
                  "attach %d" % pid):
            self.command(c)
        # In non-stop mode attach stops the threads one by one, reporting
        # each: only once all are stopped does "continue -a" resume them all.
        self.wait_threads(lambda running, stopped: running == 0 and stopped > 1, "all stopped")

    def command(self, text):
        self.proc.stdin.write(text.encode() + b"\n")
        self.proc.stdin.flush()

    def wait_for(self, text, timeout=TIMEOUT):
        """Reads gdb's output up to and including text; returns it."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while text.encode() not in self.out:
            if any(failure in self.out for failure in GDB_FAILURES):
                raise AssertionError("gdb failed:\n" + self.out.decode(errors="replace"))
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("gdb never printed %r; it printed:\n%s"
                                     % (text, self.out.decode(errors="replace")))
            if select.select([fd], [], [], min(left, 0.2))[0]:
                data = os.read(fd, 65536)
                if not data:
                    raise AssertionError("gdb exited:\n" + self.out.decode(errors="replace"))
                self.out += data
        end = self.out.index(text.encode()) + len(text)
        seen, self.out = self.out[:end], self.out[end:]
        return seen.decode(errors="replace")

    def ask(self, text):
        """Runs a command; returns its output."""
        self.command(text)
        self.command("echo <done>\\n")
        return self.wait_for("<done>")

    def wait_threads(self, pred, what):
        deadline = time.monotonic() + TIMEOUT
        while True:
            rows = [l for l in self.ask("info threads").splitlines()
                    if re.match(r"\*?\s+\d+\s+Thread ", l)]
            running = sum("(running)" in l for l in rows)
            if pred(running, len(rows) - running):
                return
            if time.monotonic() > deadline:
                raise AssertionError("the threads were never %s:\n%s" % (what, "\n".join(rows)))
            time.sleep(0.05)

    def close(self):
        if self.proc.poll() is None:
            try:
                self.command("detach")
                self.command("quit")
                self.proc.wait(TIMEOUT)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.proc.stdin.close()


def hand_over_line():
    with open(HANDOFF_C) as f:
        for number, line in enumerate(f, 1):
            if HAND_OVER in line:
                return number
    raise AssertionError("%s has no line with %r" % (HANDOFF_C, HAND_OVER))


@unittest.skipUnless(ENABLED, "needs a chatd built with -O0 -g, and CHATD_GDB_TESTS=1")
@unittest.skipUnless(GDB, "gdb is not installed")
class CausalOrderTest(ChatdTestCase):

    def test_an_answer_never_reaches_a_third_worker_before_its_question(self):
        srv = self.start_server({"server": {"threads": "3"}})
        # One after the other, each to the least loaded worker: 0, 1, 2.
        asker, answerer, reader = self.crowd(srv, 3)
        gdb = Gdb(self, srv.proc.pid)
        gdb.ask("break handoff.c:%d if ob->owner == 0 && i == 2 && ob->boxes[2].count > 0"
                % hand_over_line())
        gdb.command("continue -a &")
        gdb.wait_threads(lambda running, stopped: stopped == 0, "all running again")

        asker.send("question")
        gdb.wait_for("hit Breakpoint")
        # Worker 0 holds the line halfway through handing it over. Nobody
        # may have it yet; the answerer answers whatever reaches it.
        try:
            early = answerer.read_line(timeout=0.5)
        except AssertionError:
            early = None
        if early is not None:
            answerer.send("answer to %s" % early)
            time.sleep(0.3)  # time for the answer to reach worker 2 first
        gdb.command("continue -a &")
        if early is None:
            answerer.expect("[guest1] question")
            answerer.send("answer to [guest1] question")
        self.assertEqual(reader.read_lines(2), ["[guest1] question",
                                                "[guest2] answer to [guest1] question"])
        self.assertIsNone(early, "worker 1 had the line while worker 2 did not")
        asker.expect("[guest2] answer to [guest1] question")


if __name__ == "__main__":
    chatdtest.main()
