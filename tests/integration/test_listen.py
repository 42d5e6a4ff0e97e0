#!/usr/bin/env python3
"""Where chatd listens, and for which protocol: the line protocol on
[server] bind:port, IRC on [irc] bind:port unless that port is 0; each
listening address logged with its protocol; the [irc] keys checked like
every other key (a bad value is an error naming the file, the line and the
key); what a reload does with them. (Socket activation, where systemd's
socket names say the protocol, is in test_systemd.py.)

The IRC listener is checked at the TCP level only: what is said on it is the
IRC codec's business, tested with it.
"""
import os
import re
import socket
import subprocess
import tempfile
import unittest

import chatdtest
from chatdtest import (TIMEOUT, ChatdTestCase, Client, free_port, merged_config, run_chatd,
                       write_config)


def listening_ports(pid):
    """The TCP ports the process PID has listening sockets on (from its fds
    and /proc/net/tcp{,6} of its network namespace), as a sorted list."""
    inodes = set()
    fd_dir = "/proc/%d/fd" % pid
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except FileNotFoundError:
            continue  # closed meanwhile
        m = re.fullmatch(r"socket:\[(\d+)\]", target)
        if m:
            inodes.add(m.group(1))
    ports = []
    for table in ("tcp", "tcp6"):
        try:
            with open("/proc/%d/net/%s" % (pid, table)) as f:
                rows = f.read().splitlines()[1:]
        except FileNotFoundError:
            continue  # no IPv6
        for row in rows:
            fields = row.split()
            # local_address, state 0A (LISTEN), inode
            if fields[3] == "0A" and fields[9] in inodes:
                ports.append(int(fields[1].rsplit(":", 1)[1], 16))
    return sorted(ports)


def accepts(port, host="127.0.0.1"):
    """Whether a TCP connection to host:port is accepted."""
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT):
            return True
    except ConnectionRefusedError:
        return False


class ListenTest(ChatdTestCase):

    def test_irc_listens_beside_the_line_protocol(self):
        srv = self.start_irc_server()
        self.assertNotEqual(srv.port, srv.irc_port)
        srv.log.wait(r"listening on 127\.0\.0\.1:%d for the line protocol$" % srv.port)
        srv.log.wait(r"listening on 127\.0\.0\.1:%d for IRC$" % srv.irc_port)
        self.assertEqual(listening_ports(srv.proc.pid), sorted([srv.port, srv.irc_port]))
        self.assertTrue(accepts(srv.irc_port), "the IRC port accepts no connection")
        # The line protocol's port still speaks the line protocol.
        a = self.connect(srv)
        self.assertEqual(a.motd, ["Welcome to chatd!"])

    def test_irc_port_0_opens_no_irc_listener(self):
        srv = self.start_server({"irc": {"port": "0"}})
        srv.log.wait(r"no IRC: \[irc\] port = 0$")
        self.assertEqual(listening_ports(srv.proc.pid), [srv.port])
        self.assertNotIn("for IRC", srv.log.text())
        # Not "any free port", as 0 is for [server] port: one listening line.
        self.assertEqual(len(re.findall(r"listening on", srv.log.text())), 1, srv.log.text())

    def test_irc_bind_of_its_own(self):
        # All of 127.0.0.0/8 is loopback on Linux: the line protocol on
        # 127.0.0.1, IRC on 127.0.0.2 only.
        srv = self.start_irc_server({"irc": {"bind": "127.0.0.2"}})
        srv.log.wait(r"listening on 127\.0\.0\.2:%d for IRC$" % srv.irc_port)
        self.assertTrue(accepts(srv.irc_port, "127.0.0.2"))
        self.assertFalse(accepts(srv.irc_port, "127.0.0.1"),
                         "IRC listens on 127.0.0.1 though [irc] bind = 127.0.0.2")

    def test_a_taken_irc_port_stops_the_start(self):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            with tempfile.TemporaryDirectory(prefix="chatd-listen-") as d:
                path = os.path.join(d, "chatd.conf")
                write_config(path, merged_config({"irc": {"port": str(port)}}))
                res = run_chatd("-c", path, text=True)
        out = res.stdout + res.stderr
        self.assertEqual(res.returncode, 1, out)
        self.assertIn("cannot listen on 127.0.0.1:%d for IRC: Address already in use" % port, out)

    def test_reload_irc_port_and_bind_need_a_restart_the_rest_applies(self):
        srv = self.start_irc_server({"irc": {"network": "before"}})
        old_irc = srv.irc_port
        new_irc = free_port()
        mark = srv.log.mark()
        srv.rewrite_config({"irc": {"port": str(new_irc), "bind": "127.0.0.2",
                                    "network": "after", "server_name": "irc.example.org",
                                    "password": "s3cret", "ping_timeout": "60"}})
        self.assertEqual(srv.reload().group(0), "config reloaded", srv.log.text())
        path = re.escape(srv.config_path)
        srv.log.wait(r"warning: \[irc\] port changed in %s: takes effect after a restart" % path,
                     start=mark)
        srv.log.wait(r"warning: \[irc\] bind changed in %s: takes effect after a restart" % path,
                     start=mark)
        srv.log.wait(r"config reloaded from", start=mark)
        # Only those two: the other [irc] keys apply on reload.
        warned = re.findall(r"warning: (.*) changed in ", "\n".join(srv.log.lines[mark:]))
        self.assertEqual(sorted(warned), ["[irc] bind", "[irc] port"], srv.log.text())
        self.assertNotIn("s3cret", srv.log.text(), "the password is in the log")
        # Still the old IRC port, not the new one.
        self.assertEqual(listening_ports(srv.proc.pid), sorted([srv.port, old_irc]))
        self.assertTrue(accepts(old_irc))
        # And the line protocol serves on.
        self.connect(srv)


class ConfigErrorTest(unittest.TestCase):
    """A bad [irc] value stops the start, and -t reports it, as
    FILE:LINE: KEY: message; nothing listens."""

    CASES = [
        ("port", "6668 # irc", "port: not a number: 6668 # irc"
         " (a comment after a value starts with ' ;', not '#')"),
        ("port", "65536", "port: must be 0..65535"),
        ("bind", "127.0.0.1 ::1", "bind: must be one address or host name, without spaces: "
         "127.0.0.1 ::1"),
        ("server_name", "irc_server", "server_name: must be one word of letters, digits, "
         "'.' and '-', at most 63 bytes: irc_server"),
        ("password", "two words", "password: must be one word of at most 128 bytes, without "
         "spaces or control characters, not starting with ':'"),
        ("network", "My Network", "network: must be one word of letters, digits, '.', '-' and "
         "'_', at most 32 bytes: My Network"),
        ("ping_timeout", "5", "ping_timeout: must be 0 or 10..86400"),
    ]

    def setUp(self):
        tmp = tempfile.TemporaryDirectory(prefix="chatd-listen-")
        self.addCleanup(tmp.cleanup)
        self.dir = tmp.name

    def test_bad_irc_values(self):
        for key, value, message in self.CASES:
            with self.subTest(key=key, value=value):
                path = os.path.join(self.dir, "chatd.conf")
                # [irc] comes last in the file: find the key's line.
                write_config(path, merged_config({"irc": {"port": "0", key: value}}))
                with open(path) as f:
                    line = 1 + f.read().splitlines().index("%s = %s" % (key, value))
                for args in (("-t", "-c", path), ("-c", path)):
                    res = run_chatd(*args, text=True)
                    out = res.stdout + res.stderr
                    self.assertEqual(res.returncode, 1, out)
                    self.assertIn("%s:%d: %s" % (path, line, message), out)
                    self.assertNotIn("listening on", out)
                    self.assertNotIn("config ok", out)

    def test_both_protocols_on_one_port(self):
        path = os.path.join(self.dir, "chatd.conf")
        port = free_port()
        write_config(path, merged_config({"server": {"port": str(port)},
                                          "irc": {"port": str(port)}}))
        with open(path) as f:
            line = 1 + f.read().splitlines().index("port = %d" % port, 2)
        res = run_chatd("-t", "-c", path, text=True)
        self.assertEqual(res.returncode, 1, res.stdout + res.stderr)
        self.assertIn("%s:%d: port: [server] port and [irc] port are both %d on the same "
                      "address; change one, or set [irc] port = 0 to turn IRC off"
                      % (path, line, port), res.stderr)

    def test_good_irc_section(self):
        path = os.path.join(self.dir, "chatd.conf")
        write_config(path, merged_config({"irc": {
            "port": "6697", "bind": "::1", "server_name": "irc.example.org",
            "password": "s3cret", "network": "Example-Net", "ping_timeout": "0"}}))
        res = run_chatd("-t", "-c", path, text=True)
        self.assertEqual((res.returncode, res.stdout), (0, "chatd: config ok\n"), res.stderr)


if __name__ == "__main__":
    chatdtest.main()
