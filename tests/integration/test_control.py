#!/usr/bin/env python3
"""chatctl against a real chatd: each command's effect as real clients see
it, the control socket's permissions (a user and a group made here, removed
after), its answers to bad requests, and chatctl's exit codes."""
import grp
import json
import os
import pwd
import re
import socket
import subprocess
import sys
import time
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from chatdtest import CHATCTL, TIMEOUT, ChatdTestCase, Client, Server, main  # noqa: E402
from test_irc import Irc  # noqa: E402
from webclient import WebSocket  # noqa: E402


def ask(path, raw, timeout=TIMEOUT):
    """Sends RAW bytes on the control socket; the answer line, parsed."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(raw)
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return json.loads(data)


class CtlTestCase(ChatdTestCase):
    """self.srv, and chatctl on it that must succeed."""

    def ctl_ok(self, *args, **kw):
        r = self.srv.ctl(*args, **kw)
        self.assertEqual(r.returncode, 0, "chatctl %s: %s%s" % (args, r.stdout, r.stderr))
        return r


class ControlTest(CtlTestCase):
    def setUp(self):
        self.srv = self.start_irc_server()

    def test_status(self):
        r = self.ctl_ok("status")
        self.assertRegex(r.stdout, r"chatd \S+, pid %d" % self.srv.proc.pid)
        self.assertIn("the line protocol", r.stdout)
        status = json.loads(self.ctl_ok("status", json_out=True).stdout)
        self.assertEqual(status["pid"], self.srv.proc.pid)
        self.assertEqual(status["online"], 0)
        self.assertEqual({l["protocol"] for l in status["listeners"]}, {"line", "irc"})
        self.assertIn("control socket: %s" % self.srv.control_path, self.srv.log.text())

    def test_who_and_rooms(self):
        a = self.connect(self.srv)
        irc = Irc(self.srv.irc_port, "bob")
        self.addCleanup(irc.close)
        irc.send("JOIN #lobby,#ops")
        irc.until("366")
        irc.until("366")
        irc.send("TOPIC #ops :for admins")
        irc.until("TOPIC")
        who = json.loads(self.ctl_ok("who", json_out=True).stdout)
        self.assertEqual(who["count"], 2)
        by_nick = {m["nick"]: m for m in who["members"]}
        self.assertEqual(by_nick[a.nick]["via"], "line")
        self.assertEqual(by_nick["bob"]["via"], "irc")
        self.assertEqual(by_nick["bob"]["rooms"], 2)
        self.assertEqual(by_nick["bob"]["address"], "127.0.0.1")
        ops = json.loads(self.ctl_ok("who", "#ops", json_out=True).stdout)
        self.assertEqual([(m["nick"], m["op"]) for m in ops["members"]], [("bob", True)])
        text = self.ctl_ok("who", "lobby").stdout
        self.assertRegex(text, r"(?m)^bob\s+irc\s+127\.0\.0\.1")
        self.assertIn("2 people in lobby", text)
        r = self.srv.ctl("who", "nowhere")
        self.assertEqual(r.returncode, 1)
        self.assertIn("no such room: nowhere", r.stderr)
        rooms = json.loads(self.ctl_ok("rooms", json_out=True).stdout)
        self.assertEqual({(r["name"], r["members"]) for r in rooms["rooms"]},
                         {("lobby", 2), ("ops", 1)})
        self.assertIn("for admins", self.ctl_ok("rooms").stdout)

    def test_kick_tells_the_reason(self):
        a = self.connect(self.srv)
        b = self.connect(self.srv, [a])
        irc = Irc(self.srv.irc_port, "carol")
        self.addCleanup(irc.close)
        r = self.ctl_ok("kick", b.nick, "spamming", "links")
        self.assertEqual(r.stdout, "kicked %s\n" % b.nick)
        b.expect("! kicked by an admin: spamming links: disconnected")
        b.expect_closed()
        a.expect("< %s left (2 online)" % b.nick)
        self.srv.log.wait(r"kicked .* %s: kicked by an admin: spamming links \[kicked\] "
                          r"\(by root \(uid 0, pid \d+\)\)" % b.nick)
        self.srv.log.wait(r"disconnect \S+ %s: kicked" % b.nick)
        self.ctl_ok("kick", "CAROL")
        m = irc.until("ERROR")[-1]
        self.assertIn("kicked by an admin", m.params[-1])
        self.assertTrue(irc.closed())
        r = self.srv.ctl("kick", "nobody")
        self.assertEqual(r.returncode, 1)
        self.assertIn("nobody online is called nobody", r.stderr)
        self.assert_serving(self.srv, [a])

    def test_wall(self):
        a = self.connect(self.srv)
        irc = Irc(self.srv.irc_port, "dave")
        self.addCleanup(irc.close)
        r = self.ctl_ok("wall", "maintenance", "at", "ten")
        self.assertEqual(r.stdout, "told 2 people\n")
        a.expect("# maintenance at ten")
        m = irc.until("NOTICE")[-1]
        self.assertEqual(m.params, ["*", "maintenance at ten"])
        self.srv.log.wait(r"wall to 2 online: maintenance at ten \[wall\] \(by root")
        self.assertEqual(self.srv.ctl("wall", " ").returncode, 1)
        self.sync(a)

    def test_reload(self):
        self.assertEqual(self.ctl_ok("reload").stdout, "reloaded\n")
        self.srv.log.wait(r"config reloaded .*\[reload\] \(by root")
        with open(self.srv.config_path, "a") as f:
            f.write("\n[accounts]\ngrace = many\n")
        r = self.srv.ctl("reload")
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr, r"chatd\.conf:\d+: grace: ")
        self.assertIn("reload failed; the config in use stays", r.stderr)
        result = json.loads(self.srv.ctl("reload", json_out=True).stdout)
        self.assertRegex(result["errors"][0], r"chatd\.conf:\d+: grace: ")
        self.assertIn('"failed_reloads": 2', self.ctl_ok("status", json_out=True).stdout)
        self.assert_serving(self.srv)

    def test_log_level(self):
        self.assertEqual(self.ctl_ok("log-level").stdout, "debug\n")
        self.ctl_ok("log-level", "warning")
        self.assertEqual(self.ctl_ok("log-level").stdout, "warning\n")
        self.srv.log.wait(r"log level warning \(was debug\) until the next reload \[log_level\]")
        mark = self.srv.log.mark()
        self.connect(self.srv)
        r = self.srv.ctl("log-level", "loud")
        self.assertEqual(r.returncode, 1)
        self.assertIn("no such level: loud", r.stderr)
        self.ctl_ok("reload")  # back to the config's
        self.assertEqual(self.ctl_ok("log-level").stdout, "debug\n")
        self.assertNotRegex("\n".join(self.srv.log.lines[mark:]), r"connect from")

    def test_monitor_follows_events(self):
        proc = subprocess.Popen([CHATCTL, "-s", self.srv.control_path, "--json", "monitor"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(proc.wait)
        self.addCleanup(proc.kill)
        first = json.loads(proc.stdout.readline())
        self.assertEqual(first["event"], "monitor")
        # Events the log holds back are still followed.
        self.ctl_ok("log-level", "warning")
        json.loads(proc.stdout.readline())  # log_level
        a = self.connect(self.srv)
        ev = json.loads(proc.stdout.readline())
        self.assertEqual((ev["event"], ev["nick"]), ("connect", a.nick))
        self.ctl_ok("kick", a.nick, "bye")
        kick = json.loads(proc.stdout.readline())
        self.assertEqual((kick["event"], kick["nick"], kick["reason"]), ("kicked", a.nick, "kicked"))
        self.assertRegex(kick["actor"], r"^root \(uid 0, pid \d+\)$")
        gone = json.loads(proc.stdout.readline())
        self.assertEqual((gone["event"], gone["reason"]), ("disconnect", "kicked"))
        # People read it too; it ends when chatd does.
        text = subprocess.Popen([CHATCTL, "-s", self.srv.control_path, "monitor"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(text.wait)
        self.addCleanup(text.kill)
        text.stdout.readline()
        b = self.connect(self.srv)
        self.assertRegex(text.stdout.readline(), r"^\d\d:\d\d:\d\d connect\s+connect from \S+ as %s"
                         % b.nick)
        b.close()
        self.srv.stop()
        self.assertEqual(text.wait(TIMEOUT), 3)
        self.assertIn("chatd closed the connection", text.stderr.read())

    def test_bad_requests(self):
        path = self.srv.control_path
        self.assertEqual(ask(path, b"not json\n"),
                         {"ok": False, "error": "the request is not a JSON object"})
        self.assertEqual(ask(path, b'{"command": "dance"}\n')["error"], "no such command: dance")
        self.assertEqual(ask(path, b'{"command": "kick"}\n')["error"], "usage: kick NICK [REASON]")
        self.assertEqual(ask(path, b'{"command": "kick", "args": [1]}\n')["error"],
                         "every argument must be a string")
        self.assertEqual(ask(path, b'{"command": "status", "args": "x"}\n')["error"],
                         "args must be a list")
        self.assertEqual(ask(path, b'{"command": "status", "args": {"a": 1}}\n')["error"],
                         "args must be a list")
        self.assertEqual(ask(path, b'{"command": "who"}\x00\n')["error"],
                         "the request holds a NUL byte")
        self.assertEqual(ask(path, b"x" * 20000)["error"], "the request is too long")
        self.assertTrue(ask(path, b'{"command": "rooms", "args": []}\n')["ok"])
        self.assert_serving(self.srv)

    def test_exit_codes(self):
        self.assertEqual(self.srv.ctl("dance").returncode, 2)
        self.assertEqual(self.srv.ctl("kick").returncode, 2)
        self.assertEqual(self.srv.ctl("who", "a", "b").returncode, 2)
        r = subprocess.run([CHATCTL, "--help"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0)
        for name in ("status", "who", "kick", "wall", "reload", "log-level", "monitor"):
            self.assertRegex(r.stdout, r"(?m)^  %s\b" % name)
        # chatctl(8) has an entry for each command of the table.
        srcdir = os.environ.get("CHATD_SRCDIR", os.path.join(os.path.dirname(__file__), "..", ".."))
        with open(os.path.join(srcdir, "docs", "chatctl.8")) as f:
            page = f.read().replace("\\-", "-")
        names = re.findall(r"(?m)^  ([a-z-]+(?: [a-z]+)?)(?= [A-Z\[]| {2,})", r.stdout)
        self.assertEqual(len(names), 16, r.stdout)
        for name in names:
            self.assertTrue(re.search(r"(?m)^\.B[IR]* \"?%s\b" % re.escape(name), page),
                            "chatctl(8) has no entry for " + name)
        r = subprocess.run([CHATCTL, "-s", self.srv.control_path + ".none", "status"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 3)
        self.assertIn("is chatd running?", r.stderr)


class BanTest(CtlTestCase):
    def setUp(self):
        self.srv = self.start_irc_server({"limits": {"max_per_ip": "0"}})

    def test_address_ban_disconnects_and_refuses(self):
        a = self.connect(self.srv)
        other = self.connect(self.srv, [a], client=Client(self.srv.port, source="127.0.0.2"))
        irc = Irc(self.srv.irc_port, "ircer")
        self.addCleanup(irc.close)
        r = self.ctl_ok("ban", "add", "127.0.0.1", "2h", "spam", "bots")
        self.assertRegex(r.stdout, r"^banned 127\.0\.0\.1 until \d{4}-\d\d-\d\d \d\d:\d\d: spam bots\n$")
        a.expect("! banned: spam bots: disconnected")
        a.expect_closed()
        m = irc.until("ERROR")[-1]
        self.assertIn("banned: spam bots", m.params[-1])
        other.read_until(re.compile(r"^< %s left" % a.nick))
        self.srv.log.wait(r"banned 127\.0\.0\.1:\d+ %s: banned: spam bots \[banned\] \(by root" % a.nick)
        # New connections from it are turned away at once.
        again = Client(self.srv.port)
        self.addCleanup(again.close)
        self.assertEqual(again.expect_closed(), ["! banned: spam bots"])
        self.srv.log.wait(r"rejected 127\.0\.0\.1:\d+: banned: spam bots \[reject\]")
        listed = json.loads(self.ctl_ok("ban", "list", json_out=True).stdout)["bans"]
        self.assertEqual([(b["mask"], b["kind"], b["reason"]) for b in listed],
                         [("127.0.0.1", "address", "spam bots")])
        self.assertGreater(listed[0]["expires"], time.time() + 7000)
        self.assertRegex(listed[0]["by"], r"^root \(uid 0, pid \d+\)$")
        # Lifted: welcome again.
        self.assertEqual(self.ctl_ok("ban", "del", "127.0.0.1").stdout, "lifted the ban of 127.0.0.1\n")
        self.connect(self.srv, [other])
        r = self.srv.ctl("ban", "del", "127.0.0.1")
        self.assertEqual(r.returncode, 1)
        self.assertIn("no ban of 127.0.0.1", r.stderr)

    def test_network_ban_survives_a_restart_and_expires(self):
        self.ctl_ok("ban", "add", "127.0.0.0/30", "temporary")
        self.ctl_ok("ban", "add", "10.1.0.0/16", "2s")
        self.srv.stop()
        srv = self.start_server({"store": {"path": os.path.join(self.srv.dir.name, "chatd.db")},
                                 "control": {"socket": self.srv.control_path}})
        listed = json.loads(srv.ctl("ban", "list", json_out=True).stdout)["bans"]
        self.assertEqual({b["mask"] for b in listed}, {"127.0.0.0/30", "10.1.0.0/16"})
        self.assertEqual(next(b for b in listed if b["mask"] == "127.0.0.0/30")["reason"],
                         "temporary")
        c = Client(srv.port, source="127.0.0.2")
        self.addCleanup(c.close)
        self.assertEqual(c.expect_closed(), ["! banned: temporary"])
        self.connect(srv, client=Client(srv.port, source="127.0.0.5"))
        srv.log.wait(r"the ban of 10\.1\.0\.0/16 expired", timeout=15)
        listed = json.loads(srv.ctl("ban", "list", json_out=True).stdout)["bans"]
        self.assertEqual([b["mask"] for b in listed], ["127.0.0.0/30"])

    def test_nick_ban(self):
        a = self.connect(self.srv)
        a.send("/nick SpamKing")
        a.expect("* %s is now known as SpamKing" % a.nick)
        b = self.connect(self.srv, [a])
        self.ctl_ok("ban", "add", "spam*")
        a.expect("! banned: disconnected")
        a.expect_closed()
        b.expect("< SpamKing left (1 online)")
        b.send("/nick spammer")
        b.expect("! nick banned on this server: spammer")
        irc = Irc(self.srv.irc_port)
        self.addCleanup(irc.close)
        irc.send("NICK Spamalot")
        irc.send("USER u 0 * :u")
        m = irc.msg()
        self.assertEqual((m.command, m.params[1:]), ("432", ["Spamalot", "Nickname is banned on this server"]))
        irc.send("NICK fine")
        irc.until("376", "422")
        irc.send("NICK spam2")
        self.assertEqual(irc.msg().command, "432")
        for bad in ("*", "**?", "a b", "ni!ck"):
            r = self.srv.ctl("ban", "add", bad)
            self.assertEqual(r.returncode, 1, bad)
        self.assertEqual(json.loads(self.ctl_ok("who", json_out=True).stdout)["count"], 2)
        # Lifted, however the mask is written: the nick is free again.
        self.assertEqual(self.ctl_ok("ban", "del", "SPAM*").stdout, "lifted the ban of spam*\n")
        b.send("/nick spammer")
        b.expect("* %s is now known as spammer" % b.nick)
        self.sync(b)


class WebBanTest(ChatdTestCase):
    def test_a_proxied_client_is_judged_by_its_own_address(self):
        srv = self.start_irc_server({"web": {"trusted_proxies": "127.0.0.1"}}, web=True)
        ws = WebSocket(srv.web_port, headers=["X-Forwarded-For: 203.0.113.8"])
        self.addCleanup(ws.close)
        ws.send_line("NICK webber")
        ws.send_line("USER w 0 * :w")
        while " 001 " not in ws.read_message():
            pass
        r = srv.ctl("ban", "add", "203.0.113.8/30", "proxy", "abuse")
        self.assertEqual(r.returncode, 0, r.stderr)
        while True:
            m = ws.read_message()
            if m.startswith("ERROR"):
                break
        self.assertIn("banned: proxy abuse", m)
        with self.assertRaisesRegex(AssertionError, "403"):
            WebSocket(srv.web_port, headers=["X-Forwarded-For: 203.0.113.9"])
        # The proxy itself is not banned, nor its other clients.
        WebSocket(srv.web_port, headers=["X-Forwarded-For: 203.0.113.7"]).close()


def password_hash(password):
    """A crypt(3) hash of PASSWORD, as an admin makes one (openssl passwd -6)."""
    return subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=password, text=True,
                          capture_output=True, check=True).stdout.strip()


class OperTest(ChatdTestCase):
    """IRC operators: OPER with the config's hashed password, then KILL,
    WALLOPS and REHASH, the same acts as chatctl's, logged with the
    operator as actor."""

    def setUp(self):
        self.srv = self.start_irc_server({"operators": {"root-op": password_hash("s3cret pass")}})

    def irc(self, nick):
        c = Irc(self.srv.irc_port, nick)
        self.addCleanup(c.close)
        return c

    def test_oper_and_its_commands(self):
        op = self.irc("opnick")
        victim = self.irc("victim")
        line = self.connect(self.srv)
        op.send("KILL victim :no")
        self.assertEqual(op.msg().command, "481")
        op.send("OPER root-op wrong")
        self.assertEqual(op.msg().command, "464")
        self.srv.log.wait(r"failed login to account oper:root-op")
        op.send("OPER nobody s3cret pass")
        self.assertEqual(op.msg().command, "464")
        op.send("OPER root-op :s3cret pass")
        self.assertEqual(op.msg().command, "381")
        m = op.msg()
        self.assertEqual((m.command, m.params), ("MODE", ["opnick", "+o"]))
        self.srv.log.wait(r"opnick \(\S+\) is now the IRC operator root-op \[oper\] "
                          r"\(by oper root-op \(opnick from 127\.0\.0\.1\)\)")
        victim.send("WHOIS opnick")
        self.assertIn("313", [m.command for m in victim.until("318")])
        op.send("MODE opnick")
        self.assertEqual(op.until("221")[-1].params[1], "+o")
        op.send("KILL ghost :who")
        self.assertEqual(op.msg().command, "401")
        op.send("KILL victim :spamming")
        m = victim.until("ERROR")[-1]
        self.assertIn("Killed by opnick: spamming", m.params[-1])
        self.assertTrue(victim.closed())
        self.srv.log.wait(r"kicked \S+ victim: Killed by opnick: spamming \[kicked\] "
                          r"\(by oper root-op \(opnick from 127\.0\.0\.1\)\)")
        op.send("WALLOPS :back in five")
        line.read_until(r"^# opnick: back in five$")
        self.srv.log.wait(r"wall to \d online: opnick: back in five \[wall\] \(by oper root-op")
        mark = self.srv.log.mark()
        op.send("REHASH")
        m = op.until("382")[-1]
        self.assertEqual(m.params[1:], ["chatd.conf", "Rehashing"])
        self.srv.log.wait(r"REHASH by oper root-op .*\[rehash\]", start=mark)
        self.srv.log.wait(r"config reloaded", start=mark)
        # Giving it up.
        op.send("MODE opnick -o")
        op.until("MODE")
        op.send("WALLOPS :again")
        self.assertEqual(op.msg().command, "481")

    def test_operators_removed_by_a_reload(self):
        op = self.irc("opnick")
        op.send("OPER root-op :s3cret pass")
        self.assertEqual(op.msg().command, "381")
        self.srv.rewrite_config({"operators": {}, "irc": {"port": str(self.srv.irc_port)}})
        self.assertEqual(self.srv.ctl("reload").returncode, 0)
        # An operator no more: its powers went with the config's entry.
        op.send("WALLOPS :still?")
        self.assertEqual(op.until("481")[-1].command, "481")
        op.send("OPER root-op :s3cret pass")
        self.assertEqual(op.msg().command, "464")


class AccountHistoryTest(ChatdTestCase):
    def setUp(self):
        self.srv = self.start_server({"history": {"keep": "100"}})

    def test_accounts(self):
        r = self.srv.ctl("account", "add", "alice", input="correct horse\n")
        self.assertEqual((r.returncode, r.stdout), (0, "registered alice\n"), r.stderr)
        self.srv.log.wait(r"account alice registered by an admin \[account_registered\] \(by root")
        r = self.srv.ctl("account", "add", "alice", input="another one\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("that account exists already", r.stderr)
        r = self.srv.ctl("account", "add", "bob", input="short\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("a password is 8 to 128 bytes", r.stderr)
        self.assertEqual(self.srv.ctl("account", "add", "bob", input="").returncode, 2)
        accounts = json.loads(self.srv.ctl("account", "list", json_out=True).stdout)["accounts"]
        self.assertEqual([a["name"] for a in accounts], ["alice"])
        c = self.connect(self.srv)
        c.send("/identify alice correct horse")
        c.expect("= you are logged in as alice")
        c.expect("* %s is now known as alice" % c.nick)
        self.assertEqual(self.srv.ctl("account", "passwd", "alice", input="battery staple\n").stdout,
                         "set the password of alice\n")
        d = self.connect(self.srv, [c])
        d.send("/identify alice correct horse")
        d.expect("! wrong password for alice")
        d.send("/identify alice battery staple")
        d.expect("= you are logged in as alice")
        self.assertEqual(self.srv.ctl("account", "del", "alice").stdout, "deleted alice\n")
        self.srv.log.wait(r"account alice deleted \[account_deleted\]")
        e = self.connect(self.srv)
        e.send("/identify alice battery staple")
        e.expect("! alice is not registered (/register PASSWORD registers your nick)")
        r = self.srv.ctl("account", "del", "alice")
        self.assertEqual(r.returncode, 1)
        self.assertIn("no such account", r.stderr)
        self.assertEqual(self.srv.ctl("account", "passwd", "no one", input="whatever12\n").returncode, 1)

    def test_history_purge(self):
        a = self.connect(self.srv)
        a.send("/join games")
        a.read_until(re.compile(r"^= you joined games"))
        a.send("remember me")
        a.send("/join lobby")
        a.read_until(re.compile(r"^= you joined lobby"))
        a.send("and me")
        self.sync(a)  # said before b comes: b is shown it as history
        b = self.connect(self.srv, [a])
        b.read_until(re.compile(r"~ .* \[%s\] and me" % a.nick))
        r = self.srv.ctl("history", "purge", "#lobby")
        self.assertEqual(r.stdout, "forgot every line said in lobby\n")
        self.srv.log.wait(r"history of lobby purged \[history_purged\]")
        c = Client(self.srv.port)
        self.addCleanup(c.close)
        motd, nick, online = c.welcome()
        c.send("/history")
        c.expect("= no lines kept in lobby")
        c.send("/join games")
        c.read_until(re.compile(r"^= you joined games"))
        c.read_until(re.compile(r"~ .* \[%s\] remember me" % a.nick))
        self.assertEqual(self.srv.ctl("history", "purge", "no room!").returncode, 1)


class PermissionTest(ChatdTestCase):
    """Root, members of [control] group, and nobody else."""

    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("makes a user and a group: needs root")
        for tool in ("useradd", "groupadd", "runuser"):
            if subprocess.run(["which", tool], capture_output=True).returncode:
                self.skipTest("%s is not installed" % tool)
        tag = uuid.uuid4().hex[:8]
        self.group = "chatdt-" + tag
        self.member, self.outsider = "chatdm-" + tag, "chatdo-" + tag
        subprocess.run(["groupadd", self.group], check=True)
        self.addCleanup(subprocess.run, ["groupdel", self.group])
        for user, groups in ((self.member, [self.group]), (self.outsider, [])):
            subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin"] +
                           (["-G", ",".join(groups)] if groups else []) + [user], check=True)
            self.addCleanup(subprocess.run, ["userdel", user])
        self.srv = self.start_server({"control": {"group": self.group}})
        # Its folder is 0700: let anyone reach the socket, whose own mode
        # and chatd's check of the peer are what is tested.
        os.chmod(os.path.dirname(self.srv.control_path), 0o755)

    def test_group_member_allowed_outsider_refused(self):
        st = os.stat(self.srv.control_path)
        self.assertEqual(st.st_mode & 0o777, 0o660)
        self.assertEqual(grp.getgrgid(st.st_gid).gr_name, self.group)
        r = self.srv.ctl("status", user=self.member)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.srv.ctl("status", user=self.outsider)
        self.assertEqual(r.returncode, 4, r.stdout + r.stderr)
        self.assertIn("permission denied", r.stderr.lower())
        # Past the socket's mode (a mistake, say), chatd itself refuses.
        os.chmod(self.srv.control_path, 0o666)
        r = self.srv.ctl("wall", "hello", user=self.outsider)
        self.assertEqual(r.returncode, 4, r.stdout + r.stderr)
        self.assertIn("only root and members of the group", r.stderr)
        uid = pwd.getpwnam(self.outsider).pw_uid
        self.srv.log.wait(r"control socket: refused %s \(uid %d, pid \d+\)" % (self.outsider, uid))
        self.assertNotIn("wall to", self.srv.log.text())

    def test_group_missing_root_alone(self):
        self.srv.rewrite_config({"control": {"group": "chatd-no-such-group"}})
        self.assertEqual(self.srv.ctl("reload").returncode, 0)
        self.srv.log.wait(r"group chatd-no-such-group does not exist; only root may use it")
        self.assertEqual(os.stat(self.srv.control_path).st_mode & 0o777, 0o600)
        os.chmod(self.srv.control_path, 0o666)
        self.assertEqual(self.srv.ctl("status", user=self.member).returncode, 4)
        self.assertEqual(self.srv.ctl("status").returncode, 0)
        # The group back: its members are let in again, mode and all.
        self.srv.rewrite_config({"control": {"group": self.group}})
        self.assertEqual(self.srv.ctl("reload").returncode, 0)
        self.srv.log.wait(r"control socket: root and group %s may use it" % self.group)
        self.assertEqual(os.stat(self.srv.control_path).st_mode & 0o777, 0o660)
        self.assertEqual(self.srv.ctl("status", user=self.member).returncode, 0)


class OffTest(ChatdTestCase):
    def test_empty_socket_is_off(self):
        srv = self.start_server({"control": {"socket": ""}})
        srv.log.wait(r"no control socket: socket in \[control\] is empty")
        self.assertFalse(os.path.exists(os.path.join(srv.dir.name, "control.sock")))

    def test_socket_removed_at_exit_and_stale_one_replaced(self):
        srv = self.start_server()
        self.assertTrue(os.path.exists(srv.control_path))
        srv.stop()
        self.assertFalse(os.path.exists(srv.control_path))
        # One left by a chatd that died is taken over.
        shared = {"control": {"socket": srv.control_path}}
        srv2 = self.enterContext(Server(shared))
        srv2.proc.kill()
        srv2.proc.wait()
        self.assertTrue(os.path.exists(srv.control_path))
        srv3 = self.start_server(shared)
        r = srv3.ctl("status")
        self.assertEqual(r.returncode, 0, r.stderr)
        # While it runs, another chatd on the same socket does without.
        srv4 = self.start_server(shared)
        srv4.log.wait(r"another chatd answers on it")
        self.assertIn("pid %d" % srv3.proc.pid, srv3.ctl("status").stdout)


if __name__ == "__main__":
    main()
