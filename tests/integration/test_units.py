#!/usr/bin/env python3
"""The systemd units as built: `systemd-analyze verify` says nothing about
them, `systemd-analyze security --offline=true` rates chatd.service at
exposure 2.0 or lower, and the four sockets (the line protocol's and IRC's,
each in the clear and over TLS) all activate chatd.service with the names
chatd reads their protocol from.
(That they really work under systemd is the job of the install test in
tests/system/.)"""
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
        self.irc_socket = os.path.join(self.dir.name, "chatd-irc.socket")
        shutil.copy(unit_path("chatd-irc.socket"), self.irc_socket)
        self.web_socket = os.path.join(self.dir.name, "chatd-web.socket")
        shutil.copy(unit_path("chatd-web.socket"), self.web_socket)
        self.tls_sockets = []
        for name in ("chatd-tls.socket", "chatd-irc-tls.socket", "chatd-web-tls.socket"):
            self.tls_sockets.append(os.path.join(self.dir.name, name))
            shutil.copy(unit_path(name), self.tls_sockets[-1])

    def analyze(self, *args):
        return subprocess.run(["systemd-analyze"] + list(args), cwd=self.dir.name,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=60)

    def test_verify_is_silent(self):
        # verify exits 0 even on unknown keys: any output is a finding.
        # --man=no: the man pages are installed by the package, not here.
        r = self.analyze("verify", "--man=no", self.service, self.socket, self.irc_socket,
                         self.web_socket, *self.tls_sockets)
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

    def socket_settings(self, path):
        """{(section, key): [values]} of the unit file at PATH (verify, above,
        checks that systemd reads it without a complaint)."""
        settings = {}
        section = None
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line.startswith("["):
                    section = line.strip("[]")
                elif "=" in line and not line.startswith("#"):
                    k, v = line.split("=", 1)
                    settings.setdefault((section, k), []).append(v)
        return settings

    def test_sockets_name_their_protocol_and_activate_the_service(self):
        # chatd reads each passed socket's protocol from its name
        # (sd_listen_fds_with_names): "irc" is IRC, any other the line
        # protocol. Without FileDescriptorName= the name would be the unit's,
        # "chatd.socket".
        line = self.socket_settings(self.socket)
        irc = self.socket_settings(self.irc_socket)
        self.assertEqual(line[("Socket", "FileDescriptorName")], ["line"])
        self.assertEqual(irc[("Socket", "FileDescriptorName")], ["irc"])
        self.assertEqual(irc[("Socket", "ListenStream")], ["6667"])
        web = self.socket_settings(self.web_socket)
        self.assertEqual(web[("Socket", "FileDescriptorName")], ["web"])
        self.assertEqual(web[("Socket", "ListenStream")], ["8080"])
        # The TLS ones: "tls", "irc-tls" and "web-tls", on the usual ports.
        tls, irc_tls, web_tls = (self.socket_settings(p) for p in self.tls_sockets)
        self.assertEqual(tls[("Socket", "FileDescriptorName")], ["tls"])
        self.assertEqual(irc_tls[("Socket", "FileDescriptorName")], ["irc-tls"])
        self.assertEqual(irc_tls[("Socket", "ListenStream")], ["6697"])
        self.assertEqual(web_tls[("Socket", "FileDescriptorName")], ["web-tls"])
        self.assertEqual(web_tls[("Socket", "ListenStream")], ["8443"])
        # All go to the one chatd.service: chatd.socket by its name, the
        # others by Service=; all start with the system once enabled (the
        # package enables the TLS ones only when asked: see debian/rules).
        self.assertNotIn(("Socket", "Service"), line)
        for s in (irc, web, tls, irc_tls, web_tls):
            self.assertEqual(s[("Socket", "Service")], ["chatd.service"])
        for s in (line, irc, web, tls, irc_tls, web_tls):
            self.assertEqual(s[("Install", "WantedBy")], ["sockets.target"])
            self.assertEqual(s[("Socket", "BindIPv6Only")], ["both"])
            self.assertNotIn(("Socket", "Accept"), s)
        # The service does not pull the sockets in (Sockets=, Requires=,
        # Wants=): disabling chatd-irc.socket must keep IRC off across
        # restarts of the service, and systemd passes a socket's fds to the
        # service its Service= names without that.
        with open(self.service) as f:
            text = f.read()
        self.assertNotRegex(text, r"(?m)^(Sockets|Requires|Wants|BindsTo)=")


if __name__ == "__main__":
    chatdtest.main()
