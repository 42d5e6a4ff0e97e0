#!/usr/bin/env python3
"""The systemd units as built: `systemd-analyze verify` says nothing about
them, and `systemd-analyze security --offline=true` rates chatd.service at
exposure 2.0 or lower. (That they really work under systemd is the job of
the install test in tests/system/.)"""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import chatdtest

BUILDDIR = os.path.dirname(os.path.dirname(os.path.abspath(chatdtest.CHATD)))
SRCDIR = os.environ.get("CHATD_SRCDIR") or os.path.join(os.path.dirname(__file__), "..", "..")
MAX_EXPOSURE = 2.0


def unit_path(name):
    for base in (BUILDDIR, SRCDIR):
        path = os.path.join(base, "systemd", name)
        if os.path.exists(path):
            return path
    raise unittest.SkipTest("%s not built" % name)


@unittest.skipIf(shutil.which("systemd-analyze") is None, "systemd-analyze is not installed")
class UnitTest(unittest.TestCase):
    def setUp(self):
        # The units name the installed binary; point them at the built one,
        # which verify checks exists and is executable.
        self.dir = tempfile.TemporaryDirectory(prefix="chatd-units-")
        self.addCleanup(self.dir.cleanup)
        with open(unit_path("chatd.service")) as f:
            service = f.read()
        installed = re.search(r"^ExecStart=(\S+)", service, re.M).group(1)
        self.service = os.path.join(self.dir.name, "chatd.service")
        with open(self.service, "w") as f:
            f.write(service.replace(installed, chatdtest.CHATD))
        self.socket = os.path.join(self.dir.name, "chatd.socket")
        shutil.copy(unit_path("chatd.socket"), self.socket)

    def analyze(self, *args):
        return subprocess.run(["systemd-analyze"] + list(args), cwd=self.dir.name,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=60)

    def test_verify_is_silent(self):
        # verify exits 0 even on unknown keys: any output is a finding.
        # --man=no: the man pages are installed by the package, not here.
        r = self.analyze("verify", "--man=no", self.service, self.socket)
        self.assertEqual(r.stdout + r.stderr, "", "systemd-analyze verify complained")
        self.assertEqual(r.returncode, 0)

    def test_security_exposure(self):
        r = self.analyze("security", "--offline=true", "--threshold=%d" % (MAX_EXPOSURE * 10),
                         self.service)
        m = re.search(r"Overall exposure level for chatd.service: ([0-9.]+)", r.stdout)
        self.assertIsNotNone(m, r.stdout + r.stderr)
        exposure = float(m.group(1))
        print("exposure %.1f (at most %.1f)" % (exposure, MAX_EXPOSURE))
        self.assertLessEqual(exposure, MAX_EXPOSURE, r.stdout)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_service_shape(self):
        with open(self.service) as f:
            text = f.read()
        for line in ("Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "Restart=on-failure",
                     "DynamicUser=yes", "CapabilityBoundingSet=\n"):
            self.assertIn(line, text)
        self.assertRegex(text, r"ExecStartPre=\S+/chatd -t ")
        self.assertRegex(text, r"WatchdogSec=\d+")
        with open(self.socket) as f:
            self.assertRegex(f.read(), r"(?m)^ListenStream=7777$")


if __name__ == "__main__":
    chatdtest.main()
