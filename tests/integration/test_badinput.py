#!/usr/bin/env python3
"""Bad input, one test each: what a hostile or broken client sends (1 MiB
without a newline, NUL bytes, invalid UTF-8, terminal escape sequences, a
BiDi overrides and invisible characters, a client that only writes, a
reset in the middle of a line, thousands of
connect/close cycles, a 10 kB nick, /msg to oneself and to nobody, commands
without their arguments) and what a broken config file is (binary garbage,
empty, a directory, unreadable, a 100 kB line).

Each gets a clear reply or log line, and the server goes on serving the
others: every client test ends with clients that still chat, every config
test with chatd refusing to start (exit 1, FILE:LINE) or, on reload, keeping
its old config.
"""
import os
import random
import re
import signal
import socket
import struct
import subprocess
import tempfile
import time
import unittest

import chatdtest
from chatdtest import (TIMEOUT, ChatdTestCase, Client, config_text, merged_config,
                       run_chatd, write_config)

PEER = r"127\.0\.0\.1:\d+"
CONTROLS = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")  # all but TAB


class BadInputTestCase(ChatdTestCase):
    """Servers from start_server must exit cleanly (ChatdTestCase)."""

    def assert_clean(self, line):
        self.assertIsNone(CONTROLS.search(line), "control character in %r" % line)


# ---- what clients send ----------------------------------------------------------

class LongLineTest(BadInputTestCase):
    def test_one_mebibyte_without_a_newline(self):
        srv = self.start_server()
        a = self.connect(srv)
        b = self.connect(srv, [a])
        a.send_raw(b"x" * (1 << 20))
        a.expect("! line too long (max 2048 bytes)")
        self.sync(b)  # b saw nothing of it
        a.send_raw(b"y" * (1 << 20))  # the same line goes on: no second warning
        a.send_raw(b" end of the long line\nafter it\n")
        b.expect("[guest1] after it")
        self.sync(a, b)
        self.assertIsNone(srv.proc.poll())
        self.assert_serving(srv, [a, b])

    def test_ten_kilobyte_nick(self):
        srv = self.start_server()
        a = self.connect(srv)
        b = self.connect(srv, [a])
        a.send("/nick " + "n" * 10240)  # longer than max_line
        a.expect("! line too long (max 2048 bytes)")
        self.sync(a, b)
        a.send("/who")
        a.expect("= 2 in lobby: guest1 guest2")

    def test_ten_kilobyte_nick_within_max_line(self):
        srv = self.start_server({"limits": {"max_line": "16384"}})
        a = self.connect(srv)
        b = self.connect(srv, [a])
        a.send("/nick " + "n" * 10240)
        a.expect("! invalid nick: NAME must be 1-32 letters, digits, _ or -, "
                 "starting with a letter")
        a.send("/nick " + "n" * 33)
        a.expect("! invalid nick: NAME must be 1-32 letters, digits, _ or -, "
                 "starting with a letter")
        self.sync(a, b)
        a.send("/who")
        a.expect("= 2 in lobby: guest1 guest2")
        a.send("/nick " + "n" * 32)  # the longest there may be
        for o in (a, b):
            o.expect("* guest1 is now known as %s" % ("n" * 32))


class HostileBytesTest(BadInputTestCase):
    def test_nul_bytes_removed(self):
        srv = self.start_server()
        a = self.connect(srv)
        b = self.connect(srv, [a])
        a.send_raw(b"nul\x00in\x00the\x00middle\n")
        b.expect("[guest1] nulinthemiddle")
        a.send_raw(b"\x00\x00trailing\x00\x00\n")
        b.expect("[guest1] trailing")
        a.send_raw(b"/me \x00waves\n")
        b.expect("* guest1 waves")
        a.send_raw(b"\x00\x00\x00\n")  # nothing left once cleaned: not relayed
        a.send_raw(b"/nick ab\x00cd\n")
        a.expect("! invalid nick: NAME must be 1-32 letters, digits, _ or -, "
                 "starting with a letter")
        self.sync(a, b)
        self.assert_serving(srv, [a, b])

    # Each invalid sequence becomes one U+FFFD per maximal invalid subpart,
    # as Python's "replace" does too; C1 controls (U+0080..U+009F) go.
    INVALID_UTF8 = [
        b"\xff", b"\xfe", b"\xc3\x28", b"\xe2\x82x", b"\xc0\xaf", b"\xed\xa0\x80",
        b"\xf4\x90\x80\x80", b"\xf0\x9f\x98", b"\x80\xbf", b"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80",
    ]

    def test_invalid_utf8_becomes_replacement_characters(self):
        srv = self.start_server()
        a = self.connect(srv)
        b = self.connect(srv, [a])
        raw = b"|".join(self.INVALID_UTF8)
        text = raw.decode("utf-8", "replace")
        self.assertEqual(text.count("\ufffd"), 16)
        a.send_raw(b"chat " + raw + b" \xc2\x85c1\n")
        b.expect("[guest1] chat " + text + " c1")  # read_line decodes strictly
        a.send_raw(b"/me " + raw + b"\n")
        b.expect("* guest1 " + text)
        a.send_raw(b"/msg guest2 " + raw + b"\n")
        for o in (a, b):
            o.expect("[guest1 -> guest2] " + text)
        a.send_raw(b"/nick \xc3\xa9t\xc3\xa9\n")
        a.expect("! invalid nick: NAME must be 1-32 letters, digits, _ or -, "
                 "starting with a letter")
        a.send_raw(b"/join \xff\n")
        a.expect("! invalid room: NAME must be 1-32 letters, digits, _ or -, "
                 "starting with a letter")
        a.send_raw(b"/\xff\xfe\n")
        a.expect("! unknown command: /\ufffd\ufffd (try /help)")
        a.send_raw(b"/quit " + raw + b"\n")
        a.expect("= bye")
        b.expect("< guest1 left: %s (1 online)" % text)
        self.sync(b)
        self.assert_serving(srv, [b])

    # What a client might try on the terminals of others: colors, clearing
    # the screen, setting the title (OSC 0), a hyperlink (OSC 8), DCS, the
    # 8-bit CSI (raw 0x9b: invalid UTF-8; as U+009B: a C1 control), bell,
    # backspace and carriage return to overwrite what is shown.
    ESCAPES = (b"\x1b[31mred\x1b[0m \x1b[2J\x1b[H \x1b]0;pwned\x07 "
               b"\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\ \x1bP+q\x1b\\ "
               b"\x9b2J \xc2\x9b2J bell\x07 bs\x08\x08 cr\rover\ttab")
    CLEANED = ("[31mred[0m [2J[H ]0;pwned ]8;;http://x\\link]8;;\\ P+q\\ "
               "\ufffd2J 2J bell bs crover\ttab")

    def test_ansi_and_osc_escape_sequences_are_removed(self):
        srv = self.start_server()
        a = self.connect(srv)
        b = self.connect(srv, [a])
        a.send_raw(self.ESCAPES + b"\n")
        self.assert_clean(b.expect("[guest1] " + self.CLEANED))
        a.send_raw(b"/me " + self.ESCAPES + b"\n")
        b.expect("* guest1 " + self.CLEANED)
        a.send_raw(b"/msg guest2 " + self.ESCAPES + b"\n")
        for o in (a, b):
            o.expect("[guest1 -> guest2] " + self.CLEANED)
        a.send_raw(b"//\x1b[5m\n")
        b.expect("[guest1] /[5m")
        a.send_raw(b"/\x1b[2J\n")
        a.expect("! unknown command: /[2J (try /help)")
        a.send_raw(b"/nick \x1b[31mevil\n")
        a.expect("! invalid nick: NAME must be 1-32 letters, digits, _ or -, "
                 "starting with a letter")
        a.send_raw(b"/join \x1b]0;x\x07\n")
        a.expect("! invalid room: NAME must be 1-32 letters, digits, _ or -, "
                 "starting with a letter")
        a.send_raw(b"/quit " + self.ESCAPES + b"\n")
        a.expect("= bye")
        b.expect("< guest1 left: %s (1 online)" % self.CLEANED)
        self.sync(b)
        self.assert_serving(srv, [b])

    # DAEMON BUG (src/chat.c do_msg): "! no such nick: %.*s" echoes the raw
    # argument, up to 32 bytes: escape sequences, control characters and
    # invalid UTF-8 go back to the client as they came (only to the sender,
    # but protocol.md promises UTF-8 lines, and a nc/telnet user pasting
    # something gets their own terminal repainted). Clean it like the
    # "unknown command" reply. Remove the decorator once fixed.
    def test_no_such_nick_reply_is_cleaned(self):
        srv = self.start_server()
        a = self.connect(srv)
        a.send_raw(b"/msg \x1b[2J\x1b]0;x\x07\xff hi\n")
        self.assert_clean(a.read_line())  # raises on invalid UTF-8 first

    # A terminal that implements BiDi shows what follows U+202E (RLO) or
    # U+2066..U+2069 (isolates) reordered: "invoice_\u202Efdp.exe" reads
    # "invoice_exe.pdf". Zero-width characters, the BOM and tags are not
    # seen at all, and U+2028/U+2029 break the line on some terminals. The
    # server strips them all.
    INVISIBLE = "abc\u202Edef\u2066x\u200By\uFEFFz\U000E0041"
    EVERY_EDGE = ("\u200B\u200F\u2028\u2029\u202A\u202E\u2066\u2069\uFEFF"
                  "\U000E0000\U000E007F")

    def test_bidi_and_invisible_characters_are_removed(self):
        srv = self.start_server()
        a = self.connect(srv)
        b = self.connect(srv, [a])
        a.send(self.INVISIBLE)
        b.expect("[guest1] abcdefxyz")
        a.send("invoice_\u202Efdp.exe")
        b.expect("[guest1] invoice_fdp.exe")
        a.send("/me " + self.INVISIBLE)
        b.expect("* guest1 abcdefxyz")
        a.send("/msg guest2 " + self.INVISIBLE)
        for o in (a, b):
            o.expect("[guest1 -> guest2] abcdefxyz")
        # Nothing else on the line: as blank as a line of controls.
        a.send(self.EVERY_EDGE)
        a.send(" \u200B\t\u202E ")
        a.send("/me " + self.EVERY_EDGE)
        a.expect("! usage: /me TEXT")
        a.send("/msg guest2 " + self.EVERY_EDGE)
        a.expect("! usage: /msg NICK TEXT")
        # The name is echoed cleaned, as with a control in it: no RLO comes
        # back, though what is shown is then not quite what was typed.
        a.send("/msg gue\u202Est2 hi")
        a.expect("! no such nick: guest2")
        self.sync(a, b)  # b got none of it
        a.send("/quit " + self.INVISIBLE)
        a.expect("= bye")
        b.expect("< guest1 left: abcdefxyz (1 online)")
        self.sync(b)
        self.assert_serving(srv, [b])

    def test_bidi_and_invisible_characters_in_names_are_refused(self):
        srv = self.start_server()
        a = self.connect(srv)
        b = self.connect(srv, [a])
        for name in ("al\u202Eice", "alice\u200B", "\u200Balice", "\u2066bob", "bob\uFEFF",
                     "bob\U000E0041"):
            a.send("/nick " + name)
            a.expect("! invalid nick: NAME must be 1-32 letters, digits, _ or -, "
                     "starting with a letter")
            a.send("/join " + name)
            a.expect("! invalid room: NAME must be 1-32 letters, digits, _ or -, "
                     "starting with a letter")
        self.sync(a, b)  # b got none of it
        a.send("/who")
        a.expect("= 2 in lobby: guest1 guest2")
        a.send("/rooms")
        a.expect("= 1 room: lobby (2)")


class WriteOnlyClientTest(BadInputTestCase):
    MAX_BATCHES = 1000  # of 1000 /help each: 10 million reply lines at most

    def test_client_that_only_writes_is_cut_off_as_slow(self):
        """It sends /help over and over and never reads a reply: once its
        replies pile up past max_sendq it is disconnected; others go on."""
        srv = self.start_server({"limits": {"max_sendq": "16384"}})
        a = self.connect(srv)
        w = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(w.close)
        w.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        w.settimeout(TIMEOUT)
        w.connect(("127.0.0.1", srv.port))
        a.expect("> guest2 entered (2 online)")
        batch = b"/help\n" * 1000
        for sent in range(1, self.MAX_BATCHES + 1):
            try:
                w.sendall(batch)
            except (ConnectionResetError, BrokenPipeError):
                break
        else:
            self.fail("still connected after %d /help" % (self.MAX_BATCHES * 1000))
        srv.log.wait(r"%s \(guest2\): more than 16384 bytes waiting to be read, "
                     r"disconnecting as too slow" % PEER)
        srv.log.wait(r"disconnect %s guest2: slow \(1 online\) \[disconnect\]" % PEER)
        a.expect("< guest2 left (1 online)")
        self.sync(a)
        self.assert_serving(srv, [a])


class AbruptCloseTest(BadInputTestCase):
    def test_reset_in_the_middle_of_a_line(self):
        srv = self.start_server()
        a = self.connect(srv)
        b = self.connect(srv, [a])
        c = self.connect(srv, [a, b])
        c.send_raw(b"half a line that never ends")
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.sock.close()  # RST instead of FIN
        for o in (a, b):
            o.expect("< guest3 left (2 online)")  # and not the half line
        srv.log.wait(r"disconnect %s guest3: reset \(2 online\) \[disconnect\]" % PEER)
        self.sync(a, b)
        a.send("after the reset")
        b.expect("[guest1] after the reset")
        self.assert_serving(srv, [a, b])

    def test_reset_with_the_greeting_unread(self):
        srv = self.start_server()
        a = self.connect(srv)
        count = 20
        for _ in range(count):
            c = Client(srv.port)
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.send("hello then gone")
            c.sock.close()
        left = 0
        while left < count:  # each one enters, maybe speaks, and leaves
            line = a.read_line()
            self.assertRegex(line, r"^(> guest\d+ entered|\[guest\d+\] hello then gone$"
                                   r"|< guest\d+ left \(\d+ online\)$)")
            left += line.startswith("<")
        self.sync(a)
        self.assert_serving(srv, [a])


class LeavingTest(BadInputTestCase):
    def test_a_client_that_quits_and_never_closes_is_let_go_at_the_deadline(self):
        """/quit with more input after it, and the socket kept open: the
        server writes "= bye", shuts its side and waits at most 2 s for the
        peer's EOF; its worker has nothing else to wake it, so its wait
        ends in a timeout. The time passing is the point: this sleeps."""
        srv = self.start_server()
        watcher = self.connect(srv)
        quitter = self.connect(srv, [watcher])
        quitter.send_raw(b"/quit\n" + b"x" * 100000)
        watcher.expect("< guest2 left (1 online)")
        quitter.expect("= bye")
        time.sleep(3)
        self.assertIsNone(srv.proc.poll(), "chatd died:\n" + srv.log.text()[-2000:])
        self.assert_serving(srv, [watcher])


class ConnectionChurnTest(BadInputTestCase):
    CYCLES = 2000

    def test_thousands_of_connect_close_cycles(self):
        srv = self.start_server()
        watcher = self.connect(srv)
        for i in range(self.CYCLES):
            c = Client(srv.port)
            try:
                if i % 4 == 0:
                    c.welcome()  # a polite client: reads the greeting first
                elif i % 4 == 1:
                    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                      struct.pack("ii", 1, 0))  # RST
                # else: closes at once, the greeting unread
            finally:
                c.close()
        # Every one of them entered and left the lobby exactly once.
        entered = left = 0
        while left < self.CYCLES:
            line = watcher.read_line()
            if re.fullmatch(r"> guest\d+ entered \(\d+ online\)", line):
                entered += 1
            elif re.fullmatch(r"< guest\d+ left \(\d+ online\)", line):
                left += 1
            else:
                self.fail("unexpected line %r" % line)
        self.assertEqual(entered, self.CYCLES)
        self.sync(watcher)
        a, _ = self.assert_serving(srv, [watcher])
        self.assertEqual(a.nick, "guest%d" % (self.CYCLES + 2))  # numbers count on


class CommandArgumentsTest(BadInputTestCase):
    def test_msg_to_oneself_and_to_nobody(self):
        srv = self.start_server({"limits": {"max_line": "16384"}})
        a = self.connect(srv)
        b = self.connect(srv, [a])
        for line, reply in [
            ("/msg guest1 hi me", "! you cannot /msg yourself"),
            ("/msg GUEST1 hi me", "! you cannot /msg yourself"),
            ("/msg nobody hi", "! no such nick: nobody"),
            ("/msg 1abc hi", "! no such nick: 1abc"),
            ("/msg %s hi" % ("n" * 10240), "! no such nick: %s" % ("n" * 32)),
        ]:
            a.send(line)
            a.expect(reply)
        self.sync(b)  # b got none of it
        b.send("/quit")
        b.expect("= bye")
        a.expect("< guest2 left (1 online)")
        a.send("/msg guest2 are you there")
        a.expect("! no such nick: guest2")
        self.sync(a)
        self.assert_serving(srv, [a])

    def test_commands_with_missing_arguments(self):
        srv = self.start_server()
        a = self.connect(srv)
        b = self.connect(srv, [a])
        for line, reply in [
            ("/nick", "! usage: /nick NAME"),
            ("/nick   \t ", "! usage: /nick NAME"),
            ("/NICK", "! usage: /nick NAME"),
            ("/msg", "! usage: /msg NICK TEXT"),
            ("/msg guest2", "! usage: /msg NICK TEXT"),
            ("/msg guest2    ", "! usage: /msg NICK TEXT"),
            ("/me", "! usage: /me TEXT"),
            ("/me    ", "! usage: /me TEXT"),
            ("/join", "! usage: /join ROOM"),
            ("/join  ", "! usage: /join ROOM"),
            ("/", "! unknown command: / (try /help)"),
            ("/ nick x", "! unknown command: / (try /help)"),
            ("/who extra words", "! usage: /who [PAGE]"),
            ("/who 0", "! usage: /who [PAGE]"),
            ("/who 2", "! no page 2: /who has 1 page"),
            ("/who 1", "= 2 in lobby: guest1 guest2"),
            ("/rooms extra", "! usage: /rooms [PAGE]"),
            ("/rooms 99999999999999999999", "! usage: /rooms [PAGE]"),
            ("/rooms 1", "= 1 room: lobby (2)"),
        ]:
            a.send(line)
            a.expect(reply)
        a.send("/help me")
        lines = a.read_until(r"^= other lines are said to your room")
        self.assertTrue(all(l.startswith("= ") for l in lines), lines)
        self.sync(a, b)  # b got none of it
        a.send("/quit")
        a.expect("= bye")
        b.expect("< guest1 left (1 online)")
        self.sync(b)
        self.assert_serving(srv, [b])


# ---- config files -----------------------------------------------------------------

def drop_privileges_prefix():
    """As root, file permissions do not stop reads: run chatd as nobody
    (setpriv, from util-linux) so that a chmod 000 file is unreadable."""
    if os.geteuid() != 0:
        return ()
    if subprocess.run(["sh", "-c", "command -v setpriv"], capture_output=True).returncode:
        raise unittest.SkipTest("running as root and setpriv is missing: "
                                "cannot make a file unreadable for chatd")
    return ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--")


class ConfigFileTest(BadInputTestCase):
    """Each broken file: at start, a clear FILE[:LINE] error and exit 1; on
    reload, the old config stays (a client still gets the old MOTD)."""

    OLD = {"server": {"motd": "the old config"}}

    def setUp(self):
        tmp = tempfile.TemporaryDirectory(prefix="chatd-badconf-")
        self.addCleanup(tmp.cleanup)
        self.dir = tmp.name

    def garbage(self):
        return random.Random(1).randbytes(8192)

    def long_line(self):
        return b"[server]\nmotd = " + b"x" * 100000 + b"\n"

    def assert_refused_at_start(self, path, message, prefix=()):
        """chatd -c PATH exits 1 at once with message, and so does -t."""
        for args in (("-c", path), ("-t", "-c", path)):
            res = run_chatd(*args, prefix=prefix)
            out = res.stdout + res.stderr
            self.assertEqual(res.returncode, 1, "exit %d; output:\n%r" % (res.returncode, out))
            self.assertIn(message.encode(), out)
            self.assertNotIn(b"listening on", out)
            self.assertNotIn(b"config ok", out)
        return out

    def assert_reload_keeps_old_config(self, make_bad, message, **server_kw):
        srv = self.start_server(self.OLD, **server_kw)
        a = self.connect(srv)
        self.assertEqual(a.motd, ["the old config"])
        make_bad(srv.config_path)
        mark = srv.log.mark()
        self.assertIn("reload failed", srv.reload().group(0))
        srv.log.wait(r"error: reload failed, keeping the old config: .*%s"
                     % re.escape(message), start=mark)
        self.assertNotIn("config reloaded", srv.log.text())
        b = self.connect(srv, [a])
        self.assertEqual(b.motd, ["the old config"])
        b.send("still serving")
        a.expect("[guest2] still serving")
        # A good file again: the next reload takes it.
        if os.path.isdir(srv.config_path):
            os.rmdir(srv.config_path)
        elif os.path.exists(srv.config_path):
            os.chmod(srv.config_path, 0o644)
        srv.rewrite_config({"server": {"motd": "the new config"}})
        self.assertIn("config reloaded", srv.reload().group(0))
        c = self.connect(srv, [a, b])
        self.assertEqual(c.motd, ["the new config"])
        return srv

    def test_binary_garbage(self):
        path = os.path.join(self.dir, "garbage.conf")
        with open(path, "wb") as f:
            f.write(self.garbage())
        out = self.assert_refused_at_start(path, "%s:1: " % path)
        lines = out.rstrip(b"\n").split(b"\n")
        # Not thousands of lines: the first 20 errors, then a count.
        self.assertLessEqual(len(lines), 21, out)
        self.assertRegex(lines[-1], rb"\.\.\. and \d+ more errors?$")
        for line in lines:
            self.assertTrue(line.startswith(path.encode() + b":"), line)
            self.assertIsNone(re.search(rb"[\x00-\x1f\x7f]", line), line)  # escaped

        def write_garbage(p):
            with open(p, "wb") as f:
                f.write(self.garbage())
        self.assert_reload_keeps_old_config(write_garbage, "chatd.conf:1: ")

    # DAEMON BUG (src/config.c escape_controls): errors quoting a binary file
    # escape C0 controls but pass bytes >= 0x80 through, so they are not
    # UTF-8; journald stores such a MESSAGE as a blob and journalctl shows
    # "[N blob data]" instead of FILE:LINE and the reason, for exactly the
    # "reload failed" an admin needs to read. Escape invalid UTF-8 (and C1)
    # as \xNN too. Remove the decorator once fixed.
    def test_errors_about_binary_garbage_are_utf8(self):
        path = os.path.join(self.dir, "garbage.conf")
        with open(path, "wb") as f:
            f.write(self.garbage())
        res = run_chatd("-t", "-c", path)
        self.assertEqual(res.returncode, 1)
        (res.stdout + res.stderr).decode("utf-8")  # raises

    def test_empty_file_is_a_valid_config(self):
        path = os.path.join(self.dir, "empty.conf")
        open(path, "w").close()
        res = run_chatd("-t", "-c", path)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn(b"chatd: config ok", res.stdout)
        # Reloaded: every key at its default (the default MOTD), except what
        # needs a restart (port and bind: warned about).
        srv = self.start_server(self.OLD)
        a = self.connect(srv)
        self.assertEqual(a.motd, ["the old config"])
        mark = srv.log.mark()
        srv.rewrite_config(text="")
        self.assertIn("config reloaded", srv.reload().group(0))
        srv.log.wait(r"warning: bind changed in %s: takes effect after a restart"
                     % re.escape(srv.config_path), start=mark)
        srv.log.wait(r"warning: port changed in %s: takes effect after a restart"
                     % re.escape(srv.config_path), start=mark)
        b = self.connect(srv, [a])  # the same port still
        self.assertEqual(b.motd, ["Welcome to chatd!"])

    def test_empty_file_starts(self):
        """With an empty file chatd listens on :: (every address), so this
        runs in a network namespace of its own, where only loopback exists."""
        if os.geteuid() != 0:
            self.skipTest("starting with defaults listens on every address; "
                          "needs root for a private network namespace (unshare -n)")
        if subprocess.run(["unshare", "--net", "true"], capture_output=True).returncode:
            self.skipTest("cannot create a network namespace (unshare -n)")
        srv = self.start_server(config_text="", args=("-p", "0"),
                                prefix=("unshare", "--net", "--"))
        self.assertRegex(srv.log.wait(r"listening on .*").group(0),
                         r"listening on \[::\]:\d+ for the line protocol$")
        # ...and, with every default, IRC on port 6667 of every address too.
        srv.log.wait(r"listening on \[::\]:6667 for IRC$")

    def test_directory(self):
        path = os.path.join(self.dir, "dir.conf")
        os.mkdir(path)
        self.assert_refused_at_start(path, "%s: cannot read: Is a directory" % path)

        def make_dir(p):
            os.unlink(p)
            os.mkdir(p)
        self.assert_reload_keeps_old_config(make_dir, "chatd.conf: cannot read: Is a directory")

    def test_unreadable(self):
        prefix = drop_privileges_prefix()
        os.chmod(self.dir, 0o755)  # so that only the file's mode stops nobody
        path = os.path.join(self.dir, "unreadable.conf")
        write_config(path, merged_config(self.OLD))
        os.chmod(path, 0)
        self.assert_refused_at_start(path, "%s: cannot read: Permission denied" % path,
                                     prefix=prefix)

        # The harness's directory is private (0700): let nobody in first,
        # and let it make its database there (sticky, like /tmp).
        server_prefix = ()
        if prefix and chatdtest.WRAPPER:
            self.skipTest("(the start was checked) on reload: chatd would run as nobody "
                          "under %s, which may not be able to write its logs"
                          % chatdtest.WRAPPER[0])
        if prefix:
            server_prefix = ("sh", "-c", 'for last; do :; done; '
                             'chmod 1777 "$(dirname "$last")" && exec "$0" "$@"') + prefix
        self.assert_reload_keeps_old_config(
            lambda p: os.chmod(p, 0), "chatd.conf: cannot read: Permission denied",
            prefix=server_prefix)

    def test_hundred_kilobyte_line(self):
        path = os.path.join(self.dir, "long.conf")
        with open(path, "wb") as f:
            f.write(self.long_line())
        out = self.assert_refused_at_start(path, "%s:2: line too long (max " % path)
        # The maximum is inih's (197 as Debian builds it); the hint is ours.
        self.assertRegex(out, rb":2: line too long \(max \d+ bytes; put a long MOTD in motd_file\)")

        def write_long(p):
            with open(p, "wb") as f:
                f.write(self.long_line())
        self.assert_reload_keeps_old_config(write_long, "chatd.conf:2: line too long")

    # DAEMON BUG (src/config.c parse_file): the config is opened without
    # O_NONBLOCK and not checked to be a regular file, so a FIFO (or a
    # device that blocks) as the config hangs chatd in open(): at start
    # "chatd -t" and "chatd" never return, and on SIGHUP the main thread
    # blocks, so no connection is accepted and SIGTERM is never handled.
    # motd_file already does it right (O_NONBLOCK, S_ISREG). Remove the
    # decorators once fixed.
    def test_fifo_at_start(self):
        path = os.path.join(self.dir, "fifo.conf")
        os.mkfifo(path)
        try:
            res = run_chatd("-t", "-c", path, timeout=2)
        except subprocess.TimeoutExpired:
            self.fail("chatd -t hangs on a FIFO")
        self.assertEqual(res.returncode, 1)
        self.assertIn(path.encode(), res.stderr)

    def test_fifo_on_reload(self):
        srv = self.start_server(self.OLD)
        a = self.connect(srv)
        os.unlink(srv.config_path)
        os.mkfifo(srv.config_path)
        mark = srv.log.mark()
        srv.signal(signal.SIGHUP)
        try:
            outcome = srv.log.wait(r"config reloaded|reload failed", timeout=2, start=mark)
        finally:
            # Unblock a chatd stuck in open(): hand it its config through
            # the FIFO (ENXIO: nobody has it open, nothing to unblock).
            try:
                fd = os.open(srv.config_path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                fd = None
            if fd is not None:
                with os.fdopen(fd, "w") as f:
                    f.write(config_text(merged_config(self.OLD)))
            srv.log.wait(r"config reloaded|reload failed", start=mark)
            os.unlink(srv.config_path)
            srv.rewrite_config(self.OLD)
        self.assertIn("reload failed", outcome.group(0))
        b = self.connect(srv, [a])
        self.assertEqual(b.motd, ["the old config"])

if __name__ == "__main__":
    chatdtest.main()
