#!/usr/bin/env python3
"""Accounts from both protocols: /register, /identify, /password; SASL
PLAIN and SCRAM-SHA-256 (a scripted client), REGISTER, NickServ; a
registered nick taken without identifying, renamed after the grace; failed
logins limited; no password in the log or, unhashed, in the database;
accounts across a restart."""

import base64
import hashlib
import hmac
import os
import re
import secrets
import sqlite3
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from chatdtest import ChatdTestCase, main  # noqa: E402
from test_irc import Irc  # noqa: E402

PASSWORD = "correct-horse-battery"


class AccountsTestCase(ChatdTestCase):
    GRACE = "2"

    def setUp(self):
        tmp = tempfile.TemporaryDirectory(prefix="chatd-accounts-")
        self.addCleanup(tmp.cleanup)
        self.db = os.path.join(tmp.name, "chatd.db")

    def start(self, **accounts):
        config = {"store": {"path": self.db}, "irc": {"server_name": "irc.test"},
                  "accounts": dict({"grace": self.GRACE}, **accounts)}
        self.srv = self.start_irc_server(config)
        return self.srv

    def line(self, nick=None):
        c = self.connect(self.srv)
        if nick:
            c.send("/nick " + nick)
            c.expect("* %s is now known as %s" % (c.nick, nick))
            c.nick = nick
        return c

    def irc(self, nick, caps=None, register=True):
        c = Irc(self.srv.irc_port, nick if register else None, caps=caps)
        self.addCleanup(c.close)
        return c

    def identified(self, nick, password=PASSWORD):
        """A line client logged in to NICK's account, and named NICK."""
        c = self.line()
        c.send("/identify %s %s" % (nick, password))
        c.expect("= you are logged in as " + nick)
        c.expect("* %s is now known as %s" % (c.nick, nick))
        c.nick = nick
        return c

    def registered(self, nick, password=PASSWORD):
        """NICK registered (by a line client that then leaves)."""
        c = self.line(nick)
        c.send("/register " + password)
        c.expect("= registered %s: you are logged in" % nick)
        # Gone from the chat (the nick free) once "= bye" is read.
        c.send("/quit")
        c.expect("= bye")
        c.close()
        return c


class LineAccountsTest(AccountsTestCase):
    def test_register_identify_password(self):
        self.start()
        a = self.line("alice")
        a.send("/register short")
        a.expect("! a password is 8-128 bytes")
        a.send("/register")
        a.expect("! usage: /register PASSWORD")
        a.send("/password old new")
        a.expect("! you are not logged in: /identify PASSWORD first")
        a.send("/register " + PASSWORD)
        a.expect("= registered alice: you are logged in")
        a.send("/register " + PASSWORD)
        a.expect("! you are logged in as alice already")
        a.send("/password wrongwrong newpassword")
        a.expect("! wrong password for alice")
        a.send("/password %s new-password" % PASSWORD)
        a.expect("= password changed")
        b = self.connect(self.srv, [a])
        a.close()
        b.expect("< alice left (1 online)")
        b.send("/identify alice not-the-password")
        b.expect("! wrong password for alice")
        b.send("/identify nobody whatever1")
        b.expect("! nobody is not registered (/register PASSWORD registers your nick)")
        b.send("/identify alice " + PASSWORD)
        b.expect("! wrong password for alice")  # changed above
        b.send("/identify alice new-password")
        b.expect("= you are logged in as alice")
        b.expect("* %s is now known as alice" % b.nick)
        self.sync(b)
        # A second account for the same nick cannot be made.
        c = self.line("carol")
        c.send("/nick Alice2")
        c.expect("* carol is now known as Alice2")
        c.send("/register " + PASSWORD)
        c.expect("= registered Alice2: you are logged in")
        c.send("/password %s a-new-password" % "wrongpass")
        c.expect("! wrong password for Alice2")
        # Two words or more: a nick, then a password that may hold spaces.
        c.send("/password %s %s" % (PASSWORD, "with spaces in it"))
        c.expect("= password changed")
        e = self.line()
        e.send("/identify Alice2 with spaces in it")
        e.expect("= you are logged in as Alice2")

    def test_identify_with_the_current_nick_and_case(self):
        self.start()
        self.registered("Dave")
        d = self.line("dave")  # the same nick, another case: protected
        d.expect(re.compile(r"! dave is a registered nick: /identify PASSWORD within 2 seconds, "
                            r"or you will be renamed"))
        d.send("/identify " + PASSWORD)
        d.expect("= you are logged in as Dave")
        d.expect("* dave is now known as Dave")
        time.sleep(2.5)
        self.sync(d)  # not renamed: it identified

    def test_a_registered_nick_taken_is_renamed_after_the_grace(self):
        self.start()
        self.registered("erin")
        watcher = self.line()
        t0 = time.monotonic()
        x = self.line()
        watcher.expect(re.compile(r"> guest\d+ entered \(\d+ online\)"))
        x.send("/nick erin")
        x.expect("* %s is now known as erin" % x.nick)
        x.expect("! erin is a registered nick: /identify PASSWORD within 2 seconds, or you will be "
                 "renamed")
        watcher.expect("* %s is now known as erin" % x.nick)
        m = re.fullmatch(r"\* erin is now known as (guest\d+)", x.read_line(timeout=10))
        self.assertIsNotNone(m)
        guest = m.group(1)
        self.assertGreaterEqual(time.monotonic() - t0, 1.5)
        x.expect("! you did not identify for erin within 2 seconds: you are now %s" % guest)
        watcher.expect("* erin is now known as %s" % guest)
        self.srv.log.wait(r"did not identify for the registered nick erin: renamed %s" % guest)

    def test_failed_logins_are_limited_and_logged(self):
        self.start()
        self.registered("frank")
        c = self.line()
        for _ in range(5):
            c.send("/identify frank wrong-password")
            c.expect("! wrong password for frank")
        # The sixth is refused, the right password too, for the window.
        c.send("/identify frank " + PASSWORD)
        m = c.expect(re.compile(r"! too many failed logins for frank or from your address: try "
                                r"again in (\d+) seconds"))
        self.assertGreater(int(re.search(r"in (\d+) seconds", m).group(1)), 590)
        self.srv.log.wait(r"notice: failed login to account frank from 127\.0\.0\.1 \(wrong "
                          r"password; 5 for the account")
        self.srv.log.wait(r"logins to account frank from 127\.0\.0\.1 refused: too many failures")
        # Per address: five more failures on other accounts, then nothing.
        for i in range(5):
            c.send("/identify nobody%d wrong-password" % i)
            c.expect("! nobody%d is not registered (/register PASSWORD registers your nick)" % i)
        c.send("/identify someone some-password")
        c.expect(re.compile(r"! too many failed logins for someone or from your address: try "
                            r"again in \d+ seconds"))

    def test_no_password_in_the_log_or_the_file(self):
        self.start()
        secret = "s3cret-" + secrets.token_hex(8)
        g = self.line("gina")
        g.send("/register " + secret)
        g.expect("= registered gina: you are logged in")
        g.send("/password %s %s-2" % (secret, secret))
        g.expect("= password changed")
        h = self.connect(self.srv, [g])
        h.send("/identify gina %s-wrong" % secret)
        h.expect("! wrong password for gina")
        self.sync(g, h)
        self.assertEqual(self.srv.stop(), 0)
        log = self.srv.log.text()
        self.assertIn("account gina registered", log)
        self.assertNotIn(secret, log)
        with open(self.db, "rb") as f:
            data = f.read()
        for suffix in ("-wal",):
            if os.path.exists(self.db + suffix):
                with open(self.db + suffix, "rb") as f:
                    data += f.read()
        self.assertNotIn(secret.encode(), data)
        db = sqlite3.connect(self.db)
        (hash_,) = db.execute("SELECT hash FROM accounts WHERE name = 'gina'").fetchone()
        db.close()
        self.assertTrue(hash_.startswith("$y$"), hash_)

    def test_a_registered_room_keeps_its_founder_and_topic(self):
        self.start()
        self.registered("nora")
        a = self.identified("nora")
        a.send("/join Garden")
        a.expect("= you joined Garden (1 here)")
        self.srv.log.wait(r"room Garden registered to account nora")
        a.send("/topic roses in bloom")
        a.expect("* nora set the topic of Garden: roses in bloom")
        a.close()
        # A room made by a guest is nobody's.
        g = self.line()
        g.send("/join shed")
        g.expect("= you joined shed (1 here)")
        self.assertNotIn("room shed registered", self.srv.log.text())
        g.close()
        self.assertEqual(self.srv.stop(), 0)

        self.start()
        b = self.line("olga")
        b.send("/join garden")
        b.expect("= you joined Garden (1 here)")
        b.expect("= topic of Garden: roses in bloom (set by nora)")
        b.send("/who")
        b.expect("= 1 in Garden: olga")  # not the founder: no operator
        c = self.identified("nora")
        c.send("/join Garden")
        c.expect("= you joined Garden (2 here)")
        c.expect("= topic of Garden: roses in bloom (set by nora)")
        c.send("/who")
        c.expect("= 2 in Garden: @nora olga")

    def test_accounts_survive_a_restart(self):
        self.start()
        self.registered("hank")
        self.assertEqual(self.srv.stop(), 0)
        self.start()
        c = self.line("hank")
        c.expect(re.compile(r"! hank is a registered nick: .*"))
        c.send("/identify " + PASSWORD)
        c.expect("= you are logged in as hank")


def scram_client(nick, password):
    """A SCRAM-SHA-256 client's messages, as functions of the server's."""
    nonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = "n=%s,r=%s" % (nick, nonce)

    def final(server_first):
        attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
        assert attrs["r"].startswith(nonce)
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(attrs["s"]),
                                     int(attrs["i"]))
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = "c=biws,r=" + attrs["r"]
        auth = ",".join((first_bare, server_first, without_proof)).encode()
        signature = hmac.new(stored_key, auth, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        expect = base64.b64encode(hmac.new(server_key, auth, hashlib.sha256).digest()).decode()
        return without_proof + ",p=" + base64.b64encode(proof).decode(), "v=" + expect
    return "n,," + first_bare, final


def b64(text):
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


class IrcAccountsTest(AccountsTestCase):
    def sasl_start(self, nick, mech):
        c = self.irc(nick, register=False)
        c.send("CAP LS 302")
        ls = c.expect("CAP", "*", "LS")
        self.assertIn("sasl=PLAIN,SCRAM-SHA-256", ls.params[-1].split())
        c.send("NICK " + nick)
        c.send("USER u 0 * :Real")
        c.send("CAP REQ :sasl")
        self.assertEqual(c.expect("CAP").params[1:], ["ACK", "sasl"])
        c.send("AUTHENTICATE " + mech)
        c.expect("AUTHENTICATE", "+")
        return c

    def test_sasl_plain(self):
        self.start()
        self.registered("ivy")
        c = self.sasl_start("ivy", "PLAIN")
        c.send("AUTHENTICATE " + b64("\0ivy\0" + PASSWORD))
        m = c.expect("900")
        self.assertEqual(m.params[2], "ivy")
        c.expect("903")
        c.send("CAP END")
        burst = c.until("376", "422")
        self.assertFalse(any(m.command == "NOTICE" and "registered nick" in m.params[-1]
                             for m in burst))
        c.send("WHOIS ivy")
        whois = c.until("318")
        self.assertIn(["ivy", "ivy", "is logged in as"],
                      [m.params[1:] for m in whois if m.command == "330"])
        c.sync()
        # Wrong password: 904, and nothing else changes.
        d = self.sasl_start("ivy2", "PLAIN")
        d.send("AUTHENTICATE " + b64("ivy\0ivy\0wrong-password"))
        d.expect("904")
        d.send("AUTHENTICATE *")
        d.expect("904")
        # An unknown mechanism: 908 and 904.
        d.send("AUTHENTICATE EXTERNAL")
        d.expect("908")
        d.expect("904")

    def test_sasl_scram_sha_256(self):
        self.start()
        self.registered("Jack")
        c = self.sasl_start("jack", "SCRAM-SHA-256")
        first, final = scram_client("jack", PASSWORD)
        c.send("AUTHENTICATE " + b64(first))
        server_first = base64.b64decode(c.expect("AUTHENTICATE").params[0]).decode()
        client_final, server_final = final(server_first)
        c.send("AUTHENTICATE " + b64(client_final))
        got = base64.b64decode(c.expect("AUTHENTICATE").params[0]).decode()
        self.assertEqual(got, server_final)
        c.send("AUTHENTICATE +")
        m = c.expect("900")
        self.assertEqual(m.params[2], "Jack")  # the account as registered
        c.expect("903")
        c.send("CAP END")
        c.until("376", "422")

        d = self.sasl_start("jack2", "SCRAM-SHA-256")
        first, final = scram_client("jack", "not the password")
        d.send("AUTHENTICATE " + b64(first))
        server_first = base64.b64decode(d.expect("AUTHENTICATE").params[0]).decode()
        client_final, _ = final(server_first)
        d.send("AUTHENTICATE " + b64(client_final))
        d.expect("904")
        self.srv.log.wait(r"failed login to account jack from 127\.0\.0\.1 \(wrong password "
                          r"\(SCRAM-SHA-256\)")
        e = self.sasl_start("jack3", "SCRAM-SHA-256")
        e.send("AUTHENTICATE " + b64("p=tls-unique,,n=jack,r=abc"))
        e.expect("904")

    def test_register_command(self):
        self.start()
        c = self.irc("kate", caps=[])
        c.send("REGISTER * * short")
        c.expect("FAIL", "REGISTER", "WEAK_PASSWORD")
        c.send("REGISTER other * " + "x" * 20)
        c.expect("FAIL", "REGISTER", "ACCOUNT_NAME_MUST_BE_NICK", "other")
        c.send("REGISTER kate kate@example.org :" + PASSWORD)
        c.expect("REGISTER", "SUCCESS", "kate")
        self.assertEqual(c.expect("900").params[2], "kate")
        c.send("REGISTER * * :" + PASSWORD)
        c.expect("FAIL", "REGISTER", "ALREADY_AUTHENTICATED")
        c.send("QUIT")
        c.closed()
        d = self.irc("kate2", caps=[])
        d.send("NICK Kate")
        d.until("NOTICE")  # the registered nick's warning
        d.send("REGISTER * * :" + PASSWORD)
        d.expect("FAIL", "REGISTER", "ACCOUNT_EXISTS", "Kate")

    def test_nickserv(self):
        self.start()
        c = self.irc("liam", caps=[])
        c.send("PRIVMSG NickServ :HELP")
        helps = [c.expect("NOTICE") for _ in range(4)]
        self.assertEqual(helps[0].source, "NickServ!NickServ@irc.test")
        c.send("PRIVMSG NickServ :REGISTER " + PASSWORD)
        self.assertEqual(c.expect("NOTICE").params[-1], "liam is now registered to you.")
        c.expect("900")
        c.close()
        d = self.irc("other", caps=[])
        d.send("PRIVMSG NickServ :IDENTIFY liam wrong-password")
        self.assertEqual(d.expect("NOTICE").params[-1], "Invalid password for liam.")
        d.send("PRIVMSG NickServ :IDENTIFY liam " + PASSWORD)
        self.assertEqual(d.expect("NOTICE").params[-1], "You are now identified for liam.")
        d.expect("900")
        m = d.expect("NICK")
        self.assertEqual(m.params[0], "liam")
        d.send("PRIVMSG NickServ :FROB")
        self.assertIn("Unknown command FROB", d.expect("NOTICE").params[-1])
        # Nobody may be NickServ.
        d.send("NICK NickServ")
        d.expect("433")

    def test_irc_nick_guard(self):
        self.start()
        self.registered("mona")
        c = self.irc("mona", caps=[])
        notices = [m for m in c.burst if m.command == "NOTICE"]
        self.assertTrue(any("mona is a registered nick: identify within 2 seconds" in m.params[-1]
                            for m in notices), [m.raw for m in c.burst])
        m = c.expect("NICK")
        self.assertEqual(m.nick, "mona")
        self.assertRegex(m.params[0], r"^guest\d+$")
        n = c.expect("NOTICE")
        self.assertEqual(n.source, "NickServ!NickServ@irc.test")
        self.assertIn("You did not identify for mona within 2 seconds", n.params[-1])


if __name__ == "__main__":
    main()
