#!/usr/bin/env python3
"""Room history: what a joiner is shown (line protocol and IRC), /history,
IRCv3 CHATHISTORY, and the store under it: across a restart (SIGTERM:
nothing missing), across kill -9 under load (what is missing is within the
commit interval), on a full file system, and files it must refuse."""

import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from chatdtest import (TIMEOUT, ChatdTestCase, Server, main, merged_config,  # noqa: E402
                       run_chatd, write_config)
from test_irc import Irc  # noqa: E402

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
HISTORY_ON = {"history": {"keep": "1000"}}


def history_line(nick, text, action=False):
    """A regex for one line of history as line clients read it."""
    said = r"\* %s %s" % (re.escape(nick), re.escape(text)) if action else \
        r"\[%s\] %s" % (re.escape(nick), re.escape(text))
    return re.compile(r"~ %s %s" % (STAMP, said))


def with_history(extra=None):
    cfg = {"history": dict(HISTORY_ON["history"])}
    for section, keys in (extra or {}).items():
        cfg.setdefault(section, {}).update(keys)
    return cfg


class LineHistoryTest(ChatdTestCase):
    def test_replay_on_connect_and_on_join(self):
        srv = self.start_server(with_history())
        a = self.connect(srv)
        a.send("one")
        a.send("/me two")
        a.send("three")
        self.sync(a)
        b = self.connect(srv, [a])
        b.expect("= the last 3 lines in lobby:")
        b.expect(history_line(a.nick, "one"))
        b.expect(history_line(a.nick, "two", action=True))
        b.expect(history_line(a.nick, "three"))
        self.sync(b)
        # Live lines after: not shown as history, and not twice.
        a.send("four")
        b.expect("[%s] four" % a.nick)

        a.send("/join games")
        a.expect("= you joined games (1 here)")
        a.send("in games")
        self.sync(a)
        b.read_until(r"went to games")
        b.send("/join games")
        b.expect("= you joined games (2 here)")
        b.expect("= the last line in games:")
        b.expect(history_line(a.nick, "in games"))
        self.sync(b)
        # Private messages are not kept.
        a.send("/msg %s secret" % b.nick)
        b.expect("[%s -> %s] secret" % (a.nick, b.nick))
        b.send("/history")
        b.expect("= the last line in games:")
        b.expect(history_line(a.nick, "in games"))
        self.sync(b)

    def test_a_room_without_lines_shows_nothing(self):
        srv = self.start_server(with_history())
        a = self.connect(srv)
        a.send("/join quiet")
        a.expect("= you joined quiet (1 here)")
        self.sync(a)
        a.send("/history")
        a.expect("= no lines kept in quiet")

    def test_history_command(self):
        srv = self.start_server(with_history())
        a = self.connect(srv)
        for i in range(60):
            a.send("line %d" % i)
        self.sync(a)
        a.send("/history 2")
        a.expect("= the last 2 lines in lobby:")
        a.expect(history_line(a.nick, "line 58"))
        a.expect(history_line(a.nick, "line 59"))
        a.send("/history")
        a.expect("= the last 50 lines in lobby:")
        lines = a.read_lines(50)
        self.assertRegex(lines[0], history_line(a.nick, "line 10"))
        self.assertRegex(lines[-1], history_line(a.nick, "line 59"))
        for bad in ("0", "x", "501", "-1"):
            a.send("/history " + bad)
            a.expect("! usage: /history [N] (N: 1-500)")
        self.sync(a)

    def test_history_off(self):
        srv = self.start_server({"history": {"keep": "0"}})
        a = self.connect(srv)
        a.send("not kept")
        self.sync(a)
        b = self.connect(srv, [a])
        self.sync(b)
        b.send("/history")
        b.expect("= this server keeps no history")

    def said_then_shown(self, history, said, shown, asked, prefix):
        """With HISTORY, one client says SAID lines (PREFIX0, PREFIX1, ...);
        the next is shown the last SHOWN of them on connecting, and the
        last ASKED by /history 50."""
        srv = self.start_server(with_history({"history": history}))
        a = self.connect(srv)
        for i in range(said):
            a.send("%s%d" % (prefix, i))
        self.sync(a)
        b = self.connect(srv, [a])
        for command, n in ((None, shown), ("/history 50", asked)):
            if command:
                b.send(command)
            b.expect("= the last %d lines in lobby:" % n)
            for i in range(said - n, said):
                b.expect(history_line(a.nick, "%s%d" % (prefix, i)))
        self.sync(b)

    def test_keep_bounds_what_is_shown(self):
        self.said_then_shown({"keep": "5", "replay": "20"}, 100, 5, 5, "n")

    def test_replay_count(self):
        self.said_then_shown({"replay": "3"}, 10, 3, 10, "r")

    def test_joiners_see_every_line_once_while_a_room_is_busy(self):
        """A line said while someone joins is either in what the joiner is
        shown or sent to it live: never both, never neither."""
        srv = self.start_server(with_history({"history": {"replay": "100"}}))
        sender = self.connect(srv)
        sender.send("/join busy")
        sender.expect("= you joined busy (1 here)")
        total = 3000
        done = threading.Event()

        def talk():
            for i in range(total):
                sender.send("m%d" % i)
                if i % 100 == 99:
                    time.sleep(0.005)
            done.set()
        t = threading.Thread(target=talk)
        t.start()
        joiners = []
        try:
            while not done.is_set() and len(joiners) < 12:
                c = self.connect(srv)
                c.send("/join busy")
                joiners.append(c)
                time.sleep(0.01)
        finally:
            t.join()
        self.assertGreater(len(joiners), 2)
        for c in joiners:
            seen = []
            while not seen or seen[-1] != total - 1:
                line = c.read_line()
                m = re.fullmatch(r"(?:~ %s )?\[%s\] m(\d+)" % (STAMP, sender.nick), line)
                if m:
                    seen.append(int(m.group(1)))
            self.assertEqual(seen, list(range(seen[0], total)),
                             "a joiner's lines are not every line once, in order")


class IrcHistoryTest(ChatdTestCase):
    def setUp(self):
        self.srv = self.start_irc_server(with_history({"irc": {"server_name": "irc.test"}}))
        self.line = self.connect(self.srv)
        for text in ("one", "two", "three"):
            self.line.send(text)
        self.line.send("/me waves")
        self.sync(self.line)

    def irc(self, nick, caps):
        c = Irc(self.srv.irc_port, nick, caps=caps)
        self.addCleanup(c.close)
        return c

    def join(self, c):
        c.send("JOIN #lobby")
        return c.until("366")

    def test_replay_in_a_batch_with_tags(self):
        c = self.irc("alice", ["batch", "server-time", "message-tags"])
        self.join(c)
        start = c.expect("BATCH")
        self.assertEqual(start.params[1:], ["chathistory", "#lobby"])
        ref = start.params[0][1:]
        self.assertTrue(start.params[0].startswith("+"))
        texts = []
        for _ in range(4):
            m = c.msg()
            self.assertEqual(m.tags.get("batch"), ref)
            self.assertRegex(m.tags.get("time", ""), r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            self.assertRegex(m.tags.get("msgid", ""), r"^[0-9a-f]+$")
            self.assertEqual(m.command, "PRIVMSG")
            self.assertEqual(m.params[0], "#lobby")
            self.assertEqual(m.nick, self.line.nick)
            texts.append(m.params[1])
        self.assertEqual(texts, ["one", "two", "three", "\x01ACTION waves\x01"])
        c.expect("BATCH", "-" + ref)
        c.sync()

    def test_replay_as_notices_without_server_time(self):
        c = self.irc("bob", [])
        self.join(c)
        got = [c.msg() for _ in range(4)]
        for m, want in zip(got, ("<%s> one", "<%s> two", "<%s> three", "* %s waves")):
            self.assertEqual(m.source, "irc.test")
            self.assertEqual(m.command, "NOTICE")
            self.assertEqual(m.params[0], "#lobby")
            self.assertRegex(m.params[1], r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] " +
                             re.escape(want % self.line.nick) + "$")
        c.sync()

    def chathistory(self, c, *args):
        """The lines of a CHATHISTORY's batch, as messages."""
        c.send("CHATHISTORY " + " ".join(args))
        start = c.expect("BATCH")
        ref = start.params[0][1:]
        got = []
        while True:
            m = c.msg()
            if m.command == "BATCH":
                self.assertEqual(m.params, ["-" + ref])
                return got
            self.assertEqual(m.tags.get("batch"), ref)
            got.append(m)

    def test_chathistory(self):
        c = self.irc("carol", ["batch", "server-time", "message-tags", "draft/chathistory"])
        isupport = " ".join(" ".join(m.params) for m in c.burst if m.command == "005")
        self.assertIn("CHATHISTORY=100", isupport)
        self.assertIn("MSGREFTYPES=timestamp,msgid", isupport)
        self.join(c)
        c.sync()  # with draft/chathistory, nothing is replayed on JOIN
        texts = lambda ms: [m.params[1] for m in ms]  # noqa: E731
        latest = self.chathistory(c, "LATEST #lobby * 10")
        self.assertEqual(texts(latest), ["one", "two", "three", "\x01ACTION waves\x01"])
        ids = [m.tags["msgid"] for m in latest]
        self.assertEqual(texts(self.chathistory(c, "LATEST #lobby * 2")),
                         ["three", "\x01ACTION waves\x01"])
        self.assertEqual(texts(self.chathistory(c, "LATEST #lobby msgid=%s 10" % ids[1])),
                         ["three", "\x01ACTION waves\x01"])
        self.assertEqual(texts(self.chathistory(c, "BEFORE #lobby msgid=%s 10" % ids[2])),
                         ["one", "two"])
        self.assertEqual(texts(self.chathistory(c, "AFTER #lobby msgid=%s 1" % ids[0])), ["two"])
        self.assertEqual(texts(self.chathistory(c, "AROUND #lobby msgid=%s 3" % ids[1])),
                         ["one", "two", "three"])
        self.assertEqual(texts(self.chathistory(c, "BETWEEN #lobby msgid=%s msgid=%s 10"
                                                % (ids[0], ids[3]))), ["two", "three"])
        self.assertEqual(texts(self.chathistory(c, "BETWEEN #lobby msgid=%s msgid=%s 1"
                                                % (ids[3], ids[0]))), ["three"])
        self.assertEqual(len(self.chathistory(c, "AFTER #lobby timestamp=2000-01-01T00:00:00.000Z 10")),
                         4)
        self.assertEqual(texts(self.chathistory(c, "BEFORE #lobby timestamp=2999-01-01T00:00:00.000Z 1")),
                         ["\x01ACTION waves\x01"])
        # Private conversations are not kept: an empty batch.
        self.assertEqual(self.chathistory(c, "LATEST %s * 10" % self.line.nick), [])
        # An unknown msgid: an empty batch too.
        self.assertEqual(self.chathistory(c, "BEFORE #lobby msgid=ffff 10"), [])

        def fail(args, *want):
            c.send("CHATHISTORY " + args)
            m = c.expect("FAIL", "CHATHISTORY", *want)
            return m
        fail("", "NEED_MORE_PARAMS")
        fail("FOO #lobby * 1", "UNKNOWN_COMMAND", "FOO")
        fail("LATEST #lobby *", "NEED_MORE_PARAMS", "LATEST")
        fail("LATEST #lobby * 0", "INVALID_PARAMS", "LATEST")
        fail("BEFORE #lobby * 5", "INVALID_PARAMS", "BEFORE")
        fail("BEFORE #lobby timestamp=yesterday 5", "INVALID_PARAMS", "BEFORE")
        fail("LATEST #elsewhere * 5", "INVALID_TARGET", "LATEST", "#elsewhere")
        c.sync()

    def test_the_limit_is_capped_and_live_msgids_are_kept(self):
        c = self.irc("dave", ["batch", "server-time", "message-tags", "draft/chathistory"])
        self.join(c)
        c.sync()
        for i in range(120):
            self.line.send("x%d" % i)
        live = [c.msg() for _ in range(120)]
        got = self.chathistory(c, "LATEST #lobby * 500")
        self.assertEqual(len(got), 100)
        self.assertEqual([m.tags["msgid"] for m in got], [m.tags["msgid"] for m in live[20:]])
        self.assertEqual([m.tags["time"] for m in got], [m.tags["time"] for m in live[20:]])


class PersistenceTest(ChatdTestCase):
    def setUp(self):
        tmp = tempfile.TemporaryDirectory(prefix="chatd-store-")
        self.addCleanup(tmp.cleanup)
        self.db = os.path.join(tmp.name, "state", "chatd.db")

    def config(self, **history):
        return {"store": {"path": self.db, "commit_interval": "100"},
                "history": dict({"keep": "1000"}, **history)}

    def stored(self):
        """The texts in the file, oldest first, after an integrity check."""
        db = sqlite3.connect(self.db)
        try:
            self.assertEqual(db.execute("PRAGMA integrity_check").fetchone()[0], "ok")
            return [r[0] for r in db.execute("SELECT text FROM lines WHERE room = 'lobby' "
                                             "ORDER BY no")]
        finally:
            db.close()

    def wait_stored(self, text):
        """Waits (bounded) until TEXT is committed to the file."""
        deadline = time.monotonic() + TIMEOUT
        while text not in self.stored():
            self.assertLess(time.monotonic(), deadline, "%r never committed" % text)
            time.sleep(0.02)

    def test_sigterm_loses_nothing(self):
        srv = self.start_server(self.config())
        a = self.connect(srv)
        for i in range(300):
            a.send("kept %d" % i)
        self.sync(a)
        self.assertEqual(srv.stop(), 0)
        self.assertEqual(os.stat(self.db).st_mode & 0o777, 0o600)
        self.assertEqual(os.stat(os.path.dirname(self.db)).st_mode & 0o777, 0o700)
        self.assertEqual(self.stored(), ["kept %d" % i for i in range(300)])

        srv2 = self.start_server(self.config())
        b = self.connect(srv2)
        b.expect("= the last 20 lines in lobby:")
        for i in range(280, 300):
            b.expect(history_line(a.nick, "kept %d" % i))
        b.send("/history 300")
        b.expect("= the last 300 lines in lobby:")
        lines = b.read_lines(300)
        self.assertRegex(lines[0], history_line(a.nick, "kept 0"))
        # Numbering goes on where it stopped: a line said now is the newest.
        b.send("after the restart")
        self.sync(b)
        b.send("/history 1")
        b.expect("= the last line in lobby:")
        b.expect(history_line(b.nick, "after the restart"))

    def test_kill_9_under_load_loses_at_most_the_commit_interval(self):
        srv = self.enterContext(Server(self.config()))  # killed: no clean exit to check
        listeners = [self.connect(srv) for _ in range(5)]
        a = self.connect(srv)
        sent = []
        t0 = time.monotonic()
        i = 0
        # About 1.5 s of chat at about 500 lines a second, then kill -9 at once.
        while time.monotonic() - t0 < 1.5:
            a.send("load %d" % i)
            sent.append(time.monotonic())
            i += 1
            time.sleep(0.002)
        srv.proc.kill()
        killed = time.monotonic()
        srv.proc.wait()
        del listeners
        stored = self.stored()
        n = len(stored)
        self.assertEqual(stored, ["load %d" % k for k in range(n)],
                         "what is kept is not the first lines, in order")
        missing = len(sent) - n
        # Each missing line was sent within the commit interval (100 ms)
        # before the kill, give or take the time a line takes to reach the
        # store (a margin for slow builds: sanitizers, valgrind).
        window = 0.1 + 0.4
        late = [s for s in sent[n:] if killed - s > window]
        print("kill -9: %d of %d lines kept, %d missing, the oldest missing sent %.0f ms "
              "before the kill" % (n, len(sent), missing,
                                   (killed - sent[n]) * 1000 if missing else 0))
        self.assertEqual(late, [], "lines sent more than %.0f ms before the kill are missing"
                         % (window * 1000))

    def test_a_full_file_system(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to mount a small tmpfs")
        mnt = tempfile.mkdtemp(prefix="chatd-full-")
        self.addCleanup(os.rmdir, mnt)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", mnt],
                           capture_output=True)
        if r.returncode != 0:
            self.skipTest("cannot mount a tmpfs: %s" % r.stderr.decode().strip())
        self.addCleanup(subprocess.run, ["umount", mnt], check=True)
        self.db = os.path.join(mnt, "chatd.db")
        srv = self.start_server(self.config())
        a = self.connect(srv)
        b = self.connect(srv, [a])
        a.send("before")
        b.expect("[%s] before" % a.nick)
        self.sync(a)
        self.wait_stored("before")
        filler = os.path.join(mnt, "filler")
        with open(filler, "wb", buffering=0) as f:  # nothing left to flush at close
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        mark = srv.log.mark()
        # Chat goes on while nothing can be written.
        for i in range(200):
            a.send("full %d %s" % (i, "x" * 200))
        for i in range(200):
            b.expect("[%s] full %d %s" % (a.nick, i, "x" * 200))
        srv.log.wait(r"warning: .*chatd\.db: \d+ history lines? not written: .*full",
                     start=mark)
        os.unlink(filler)
        a.send("after")
        b.expect("[%s] after" % a.nick)
        srv.log.wait(r"history lines are written again", start=mark)
        self.sync(a)
        a.send("/history 1")
        a.expect("= the last line in lobby:")
        a.expect(history_line(a.nick, "after"))
        self.assertEqual(srv.stop(), 0)
        texts = self.stored()
        self.assertEqual(texts[0], "before")
        self.assertEqual(texts[-1], "after")


class StoreFileTest(ChatdTestCase):
    def setUp(self):
        tmp = tempfile.TemporaryDirectory(prefix="chatd-store-")
        self.addCleanup(tmp.cleanup)
        self.dir = tmp.name

    def refused(self, db, message):
        conf = os.path.join(self.dir, "chatd.conf")
        write_config(conf, merged_config({"store": {"path": db}}))
        res = run_chatd("-c", conf, timeout=TIMEOUT)
        out = (res.stdout + res.stderr).decode()
        self.assertEqual(res.returncode, 1, out)
        self.assertIn(message, out)
        self.assertNotIn("listening on", out)

    def test_a_folder_is_not_a_database(self):
        os.mkdir(os.path.join(self.dir, "adir"))
        self.refused(os.path.join(self.dir, "adir"),
                     "cannot open the database %s: Is a directory" % os.path.join(self.dir, "adir"))

    def test_not_a_database(self):
        path = os.path.join(self.dir, "junk.db")
        with open(path, "wb") as f:
            f.write(b"this is not an SQLite file at all, just some bytes\n" * 100)
        self.refused(path, "cannot open the database %s: " % path)

    def test_a_newer_schema_is_refused(self):
        path = os.path.join(self.dir, "newer.db")
        db = sqlite3.connect(path)
        db.execute("PRAGMA user_version = 99")
        db.commit()
        db.close()
        self.refused(path, "%s: made by a newer chatd (schema version 99" % path)

    def test_an_empty_file_is_set_up(self):
        path = os.path.join(self.dir, "empty.db")
        open(path, "wb").close()
        srv = self.start_server({"store": {"path": path}, "history": {"keep": "10"}})
        a = self.connect(srv)
        a.send("hello")
        self.sync(a)
        self.assertEqual(srv.stop(), 0)
        db = sqlite3.connect(path)
        self.assertEqual(db.execute("PRAGMA user_version").fetchone()[0], 5)
        self.assertEqual(db.execute("PRAGMA journal_mode").fetchone()[0], "wal")
        self.assertEqual(db.execute("SELECT text FROM lines").fetchall(), [("hello",)])
        db.close()

    def test_a_version_1_file_is_migrated(self):
        """A file of the first schema (history only) gains the accounts,
        rooms, bans and streams tables at start, and keeps its lines."""
        path = os.path.join(self.dir, "v1.db")
        db = sqlite3.connect(path)
        db.executescript("""
            CREATE TABLE lines (room TEXT NOT NULL, no INTEGER NOT NULL, time_ms INTEGER NOT NULL,
              msgid INTEGER NOT NULL, kind INTEGER NOT NULL, nick TEXT NOT NULL,
              user TEXT NOT NULL, host TEXT NOT NULL, text TEXT NOT NULL,
              formatting INTEGER NOT NULL, PRIMARY KEY (room, no)) WITHOUT ROWID;
            PRAGMA user_version = 1;
        """)
        db.execute("INSERT INTO lines VALUES ('lobby', 1, ?, 7, 0, 'old', 'line', 'h', "
                   "'from version 1', 0)", (int(time.time() * 1000),))
        db.commit()
        db.close()
        srv = self.start_server({"store": {"path": path}, "history": {"keep": "10"}})
        srv.log.wait(r"v1\.db: schema updated from version 1 to 5")
        a = self.connect(srv)
        a.expect("= the last line in lobby:")
        a.expect(history_line("old", "from version 1"))
        a.send("/nick zed")
        a.expect("* %s is now known as zed" % a.nick)
        a.send("/register a-good-password")
        a.expect("= registered zed: you are logged in")
        self.assertEqual(srv.stop(), 0)
        db = sqlite3.connect(path)
        self.assertEqual(db.execute("PRAGMA user_version").fetchone()[0], 5)
        self.assertEqual(db.execute("SELECT name FROM accounts").fetchall(), [("zed",)])
        self.assertEqual(db.execute("SELECT count(*) FROM bans").fetchone()[0], 0)
        self.assertEqual(db.execute("SELECT count(*) FROM streams").fetchone()[0], 0)
        db.close()


if __name__ == "__main__":
    main()
