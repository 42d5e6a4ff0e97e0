#!/usr/bin/env python3
"""chatd's IRC port, spoken over raw sockets: registration and its edge
cases, the commands and numerics of docs/irc.md, IRCv3 caps, limits, and
IRC and line clients in the same rooms seeing the same chat."""

import os
import re
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from chatdtest import TIMEOUT, ChatdTestCase, main  # noqa: E402


class Irc:
    """An IRC client: CRLF lines, each parsed as (tags, source, command, params)."""

    def __init__(self, port, nick=None, user="u", caps=None, password=None, source=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT,
                                             source_address=None if source is None else (source, 0))
        self.buf = b""
        self.nick = nick
        if nick:
            self.register(nick, user, caps, password)

    def register(self, nick, user="u", caps=None, password=None):
        if caps is not None:
            self.send("CAP LS 302")
        if password is not None:
            self.send("PASS " + password)
        self.send("NICK " + nick)
        self.send("USER %s 0 * :Real %s" % (user, nick))
        if caps is not None:
            if caps:
                self.send("CAP REQ :" + " ".join(caps))
            self.send("CAP END")
        self.nick = nick
        self.burst = self.until("376", "422")

    def send(self, line):
        if isinstance(line, str):
            line = line.encode()
        self.sock.sendall(line + b"\r\n")

    def line(self, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while b"\r\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("timed out waiting for a line (have %r)" % self.buf)
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                raise AssertionError("timed out waiting for a line (have %r)" % self.buf)
            if not data:
                raise EOFError("closed (have %r)" % self.buf)
            self.buf += data
        raw, self.buf = self.buf.split(b"\r\n", 1)
        return raw.decode()

    def msg(self, timeout=TIMEOUT):
        return parse(self.line(timeout))

    def until(self, *commands, timeout=TIMEOUT):
        """Messages up to and including the first whose command is one of commands."""
        got = []
        while True:
            m = self.msg(timeout)
            got.append(m)
            if m.command in commands:
                return got

    def expect(self, command, *params):
        """The next message: its command and first params."""
        m = self.msg()
        if m.command != command or list(m.params[:len(params)]) != list(params):
            raise AssertionError("expected %s %r, got %r" % (command, params, m.raw))
        return m

    def silence(self, seconds=0.3):
        self.sock.settimeout(seconds)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return
        raise AssertionError("expected nothing, got %r" % (self.buf + data))

    def sync(self):
        """Nothing is pending: a PING's PONG is the next message."""
        self.send("PING :sync")
        m = self.msg()
        while m.command == "PING":  # the server's own, answered
            self.send("PONG :" + m.params[-1])
            m = self.msg()
        if m.command != "PONG" or m.params[-1] != "sync":
            raise AssertionError("expected the PONG, got %r" % m.raw)

    def closed(self):
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            self.sock.settimeout(deadline - time.monotonic())
            try:
                data = self.sock.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not data:
                return True
            self.buf += data
        return False

    def close(self):
        self.sock.close()


class Message:
    def __init__(self, raw, tags, source, command, params):
        self.raw, self.tags, self.source, self.command, self.params = raw, tags, source, command, params

    @property
    def nick(self):
        return self.source.split("!")[0] if self.source else None

    def __repr__(self):
        return "Message(%r)" % self.raw


def parse(raw):
    rest, tags, source = raw, {}, None
    if rest.startswith("@"):
        t, rest = rest[1:].split(" ", 1)
        for item in t.split(";"):
            k, _, v = item.partition("=")
            tags[k] = v
    if rest.startswith(":"):
        source, rest = rest[1:].split(" ", 1)
    if " :" in rest:
        rest, trailing = rest.split(" :", 1)
        params = rest.split() + [trailing]
    else:
        params = rest.split()
    return Message(raw, tags, source, params[0], params[1:])


class IrcTestCase(ChatdTestCase):
    def start(self, irc=None, limits=None, server=None):
        config = {"irc": dict({"server_name": "irc.test", "network": "TestNet"}, **(irc or {}))}
        if limits:
            config["limits"] = dict(limits)
        if server:
            config["server"] = dict(server)
        srv = self.start_irc_server(config)
        self.irc_port = srv.irc_port
        return srv

    def irc(self, nick=None, **kw):
        c = Irc(self.irc_port, nick, **kw)
        self.addCleanup(c.close)
        return c

    def line(self, srv, others=()):
        return self.connect(srv, others)

    def join_all(self, clients, *channels):
        """Each client joins CHANNELS in one JOIN, and has read their NAMES."""
        for c in clients:
            c.send("JOIN " + ",".join(channels))
            for _ in channels:
                c.until("366")


class RegistrationTest(IrcTestCase):
    def test_welcome_burst_is_what_modern_clients_expect(self):
        self.start()
        c = self.irc("alice")
        numerics = [m.command for m in c.burst]
        for code in ("001", "002", "003", "004", "005", "251", "254", "255", "375", "372", "376"):
            self.assertIn(code, numerics)
        self.assertLess(numerics.index("001"), numerics.index("005"))
        self.assertLess(numerics.index("005"), numerics.index("251"))
        self.assertLess(numerics.index("255"), numerics.index("375"))
        self.assertTrue(all(m.source == "irc.test" for m in c.burst))
        welcome = c.burst[0]
        self.assertEqual(welcome.params[0], "alice")
        self.assertIn("TestNet", welcome.params[-1])
        self.assertTrue(welcome.params[-1].endswith("alice!~u@127.0.0.1"))
        isupport = {}
        for m in c.burst:
            if m.command == "005":
                for token in m.params[1:-1]:
                    k, _, v = token.partition("=")
                    isupport[k] = v
        self.assertEqual(isupport["CASEMAPPING"], "ascii")
        self.assertEqual(isupport["CHANTYPES"], "#")
        self.assertEqual(isupport["PREFIX"], "(ov)@+")
        self.assertEqual(isupport["CHANMODES"], ",,,nst")
        self.assertEqual(isupport["NICKLEN"], "32")
        self.assertEqual(isupport["CHANNELLEN"], "33")
        self.assertEqual(isupport["TOPICLEN"], "300")
        self.assertEqual(isupport["NETWORK"], "TestNet")
        motd = [m.params[-1] for m in c.burst if m.command == "372"]
        self.assertEqual(motd, ["- Welcome to chatd!"])
        c.send("LUSERS")
        self.assertIn("There are 1 users", c.expect("251").params[-1])

    def test_an_empty_motd_is_422(self):
        self.start(server={"motd": ""})
        c = self.irc("alice")
        self.assertEqual(c.burst[-1].command, "422")

    def test_cap_negotiation_held_open_pauses_registration(self):
        self.start()
        c = self.irc()
        c.send("CAP LS 302")
        ls = c.expect("CAP", "*", "LS")
        self.assertEqual(set(ls.params[-1].split()),
                         {"multi-prefix", "message-tags", "server-time", "echo-message",
                          "userhost-in-names", "batch", "draft/chathistory",
                          "sasl=PLAIN,SCRAM-SHA-256", "draft/account-registration"})
        c.send("NICK alice")
        c.send("USER u 0 * :Alice")
        c.silence(0.5)  # no 001 while negotiating
        c.send("CAP REQ :server-time bogus-cap")
        nak = c.expect("CAP", "alice", "NAK")
        self.assertEqual(nak.params[-1], "server-time bogus-cap")
        c.send("CAP REQ :server-time multi-prefix")
        c.expect("CAP", "alice", "ACK")
        c.send("CAP LIST")
        self.assertEqual(set(c.expect("CAP", "alice", "LIST").params[-1].split()),
                         {"server-time", "multi-prefix"})
        c.silence(0.3)
        c.send("CAP END")
        c.expect("001", "alice")
        c.until("376")
        c.send("CAP REQ :-multi-prefix")
        c.expect("CAP", "alice", "ACK")

    def test_nick_collision_gets_433_and_a_retry_registers(self):
        self.start()
        self.irc("alice")
        c = self.irc()
        c.send("NICK ALICE")  # case-insensitive
        c.expect("433", "*", "ALICE")
        c.send("USER u 0 * :x")
        c.silence()
        c.send("NICK alice2")
        c.expect("001", "alice2")

    def test_a_line_clients_nick_collides_too(self):
        srv = self.start()
        line = self.line(srv)
        c = self.irc()
        c.send("NICK " + line.nick)
        c.expect("433", "*", line.nick)

    def test_garbage_and_commands_before_registration(self):
        self.start()
        c = self.irc()
        c.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # a TLS hello, say
        c.send("JOIN #lobby")
        c.send("PRIVMSG alice :hi")
        for _ in range(3):  # the garbage is an unknown command too
            c.expect("451", "*")
        c.send("")
        c.send("PING :early")
        self.assertEqual(c.expect("PONG").params[-1], "early")
        c.register("late")
        self.assertEqual(c.burst[0].command, "001")

    def test_user_twice_and_pass_after_registration_are_462(self):
        self.start()
        c = self.irc("alice")
        c.send("USER a 0 * :again")
        c.expect("462", "alice")
        c.send("PASS x")
        c.expect("462", "alice")

    def test_server_password(self):
        self.start(irc={"password": "sesame"})
        bad = self.irc()
        bad.send("PASS wrong")
        bad.send("NICK bad")
        bad.send("USER u 0 * :x")
        bad.expect("464", "bad")
        self.assertEqual(bad.msg().command, "ERROR")
        self.assertTrue(bad.closed())
        none = self.irc()
        none.send("NICK none")
        none.send("USER u 0 * :x")
        none.expect("464", "none")
        good = self.irc("good", password="sesame")
        self.assertEqual(good.burst[0].command, "001")

    def test_erroneous_nicks(self):
        self.start()
        c = self.irc()
        for bad in ("9lives", "a|b", "x" * 33, "[away]"):
            c.send("NICK " + bad)
            self.assertEqual(c.msg().command, "432")
        c.send("NICK")
        c.expect("431")


class LineLimitTest(IrcTestCase):
    def test_a_line_over_512_bytes_is_417_and_the_connection_stays(self):
        self.start()
        a = self.irc("alice")
        b = self.irc("bob")
        a.send("JOIN #r")
        a.until("366")
        b.send("JOIN #r")
        b.until("366")
        a.until("JOIN")
        a.send("PRIVMSG #r :" + "x" * 600)
        a.expect("417", "alice")
        b.silence()
        # Tags do not count against the 512 bytes.
        a.send("@+draft/x=" + "y" * 1000 + " PRIVMSG #r :tagged")
        self.assertEqual(b.expect("PRIVMSG", "#r").params[-1], "tagged")
        # Client tags beyond 4094 bytes, and beyond tags and line
        # together, the line is dropped whole.
        a.send("@+x=" + "y" * 4100 + " PRIVMSG #r :too many tags")
        a.expect("417", "alice")
        a.send("@+x=" + "y" * 9000 + " PRIVMSG #r :too much")
        a.expect("417", "alice")
        a.sync()
        b.silence()

    def test_long_text_from_a_line_client_arrives_split_at_512_bytes(self):
        srv = self.start()
        irc = self.irc("ircuser", caps=["server-time", "message-tags"])
        irc.send("JOIN #lobby")
        irc.until("366")
        line = self.line(srv)
        irc.expect("JOIN", "#lobby")
        text = "".join("word%d é " % i for i in range(300))[:1500].strip()
        line.send(text)
        parts = []
        got = 0
        while got < len(text.encode()):
            m = irc.msg()
            self.assertEqual(m.command, "PRIVMSG")
            raw = m.raw.encode()
            without_tags = raw.split(b" ", 1)[1]
            self.assertLessEqual(len(without_tags) + 2, 512)
            self.assertIn("time", m.tags)
            self.assertIn("msgid", m.tags)
            parts.append(m.params[-1])
            got += len(m.params[-1].encode())
        self.assertGreater(len(parts), 3)
        self.assertEqual("".join(parts), text)
        self.assertEqual(len({m for m in parts}), len(parts))


class ChannelTest(IrcTestCase):
    def join(self, c, channel):
        c.send("JOIN " + channel)
        return c.until("366")

    def pair(self, channel, alice_user="u"):
        """alice (its operator) and then bob in CHANNEL, alice told of bob."""
        a = self.irc("alice", user=alice_user)
        b = self.irc("bob")
        self.join(a, channel)
        self.join(b, channel)
        a.expect("JOIN", channel)
        return a, b

    def test_join_several_names_topic_and_join_0(self):
        self.start()
        a = self.irc("alice")
        got = self.join(a, "#one,#two,bad,#three")
        joins = [m.params[0] for m in got if m.command == "JOIN"]
        self.assertEqual(joins, ["#one"])
        got += a.until("366") + a.until("366")
        joins = [m.params[0] for m in got if m.command == "JOIN"]
        self.assertEqual(joins, ["#one", "#two", "#three"])
        self.assertIn("403", [m.command for m in got])
        names = [m for m in got if m.command == "353"]
        self.assertEqual(names[0].params[1:], ["=", "#one", "@alice"])
        b = self.irc("bob")
        got = self.join(b, "#one")
        self.assertEqual([m.params[-1] for m in got if m.command == "353"], ["@alice bob"])
        a.expect("JOIN", "#one")
        a.send("JOIN 0")
        parts = [a.expect("PART").params[0] for _ in range(3)]
        self.assertEqual(sorted(parts), ["#one", "#three", "#two"])
        self.assertEqual(b.expect("PART", "#one").nick, "alice")

    def test_part_errors_and_reason(self):
        self.start()
        a = self.irc("alice")
        b = self.irc("bob")
        a.send("PART #nowhere")
        a.expect("403", "alice")
        self.join(a, "#r")
        b.send("PART #r")
        b.expect("442", "bob", "#r")
        self.join(b, "#r")
        a.expect("JOIN", "#r")
        b.send("PART #r :see you")
        self.assertEqual(b.expect("PART", "#r").params[-1], "see you")
        m = a.expect("PART", "#r")
        self.assertEqual((m.nick, m.params[-1]), ("bob", "see you"))

    def test_topic_operators_and_modes(self):
        self.start()
        a, b = self.pair("#r")
        b.send("TOPIC #r")
        b.expect("331", "bob", "#r")
        b.send("TOPIC #r :mine")
        b.expect("482", "bob", "#r")
        a.send("TOPIC #r :the topic")
        for c in (a, b):
            m = c.expect("TOPIC", "#r", "the topic")
            self.assertEqual(m.nick, "alice")
        b.send("TOPIC #r")
        b.expect("332", "bob", "#r", "the topic")
        self.assertEqual(b.expect("333", "bob", "#r").params[2], "alice")
        a.send("TOPIC #r :the topic")  # unchanged: nobody is told
        for c in (a, b):
            c.sync()
        a.send("MODE #r")
        a.expect("324", "alice", "#r", "+nt")
        a.expect("329", "alice", "#r")
        a.send("MODE #r b")
        a.expect("368", "alice", "#r")
        a.send("MODE #r -t")
        for c in (a, b):
            c.expect("MODE", "#r", "-t")
        b.send("TOPIC #r :now anyone")
        for c in (a, b):
            c.expect("TOPIC", "#r", "now anyone")
        b.send("MODE #r +t")
        b.expect("482", "bob", "#r")
        a.send("MODE #r +o bob")
        for c in (a, b):
            c.expect("MODE", "#r", "+o", "bob")
        b.send("NAMES #r")
        self.assertEqual(b.expect("353").params[-1], "@alice @bob")
        b.expect("366")
        a.send("MODE #r +x")
        a.expect("472", "alice", "x")
        a.send("MODE #r +o nobody")
        a.expect("401", "alice", "nobody")
        a.send("MODE alice")
        a.expect("221", "alice")
        a.send("MODE alice +i")
        a.expect("MODE", "alice", "+i")
        a.send("MODE alice +Z")
        a.expect("501", "alice")
        a.send("MODE bob +i")
        a.expect("502", "alice")

    def test_a_secret_channel_is_seen_by_its_members_only(self):
        srv = self.start()
        a = self.irc("alice")
        b = self.irc("bob")
        self.join(a, "#hidden")
        a.send("MODE #hidden +s")
        a.expect("MODE", "#hidden", "+s")
        a.send("MODE #hidden")
        a.expect("324", "alice", "#hidden", "+nst")
        a.expect("329")
        a.send("NAMES #hidden")
        self.assertEqual(a.expect("353").params[1:3], ["@", "#hidden"])
        a.expect("366")
        for command in ("LIST", "NAMES #hidden", "WHO #hidden", "WHOIS alice"):
            b.send(command)
            got = b.until("323", "366", "315", "318")
            self.assertFalse([m for m in got if "hidden" in m.raw and m.command != "366"
                              and m.command != "315"], command)
        b.send("TOPIC #hidden")
        b.expect("442", "bob", "#hidden")
        line = self.line(srv)
        line.send("/rooms")
        line.expect("= 1 room: lobby (1)")
        self.join(b, "#hidden")
        b.send("LIST")
        self.assertEqual([m.params[1] for m in b.until("323") if m.command == "322"],
                         ["#hidden", "#lobby"])

    def test_kick(self):
        self.start()
        a, b = self.pair("#r")
        b.send("KICK #r alice")
        b.expect("482", "bob", "#r")
        a.send("KICK #r nobody")
        a.expect("401", "alice", "nobody")
        a.send("KICK #r bob :behave")
        for c in (a, b):
            m = c.expect("KICK", "#r", "bob", "behave")
            self.assertEqual(m.nick, "alice")
        a.send("NAMES #r")
        self.assertEqual(a.expect("353").params[-1], "@alice")
        a.expect("366")
        a.send("KICK #r bob")
        a.expect("441", "alice", "bob", "#r")
        b.send("PRIVMSG #r :let me in")
        b.expect("404", "bob", "#r")

    def test_who_whois_list_ison_userhost_away(self):
        self.start()
        a, b = self.pair("#r", alice_user="al")
        b.send("AWAY :lunch")
        b.expect("306", "bob")
        a.send("WHO #r")
        who = a.until("315")
        rows = {m.params[5]: m for m in who if m.command == "352"}
        self.assertEqual(sorted(rows), ["alice", "bob"])
        self.assertEqual(rows["alice"].params[1:5], ["#r", "~al", "127.0.0.1", "irc.test"])
        self.assertEqual(rows["alice"].params[6], "H@")
        self.assertEqual(rows["bob"].params[6], "G")
        self.assertEqual(rows["bob"].params[-1], "0 Real bob")
        a.send("WHOIS bob")
        whois = {m.command: m for m in a.until("318")}
        self.assertEqual(whois["311"].params[1:4], ["bob", "~u", "127.0.0.1"])
        self.assertEqual(whois["319"].params[-1], "#r")
        self.assertEqual(whois["301"].params[-1], "lunch")
        a.send("WHOIS nobody")
        a.expect("401", "alice", "nobody")
        a.expect("318", "alice", "nobody")
        a.send("PRIVMSG bob :are you there")
        a.expect("301", "alice", "bob", "lunch")
        b.expect("PRIVMSG", "bob", "are you there")
        b.send("AWAY")
        b.expect("305", "bob")
        a.send("LIST")
        lst = a.until("323")
        self.assertEqual([m.params[1:3] for m in lst if m.command == "322"], [["#r", "2"]])
        a.send("ISON bob nobody ALICE")
        self.assertEqual(a.expect("303").params[-1], "bob alice")
        a.send("USERHOST bob")
        self.assertEqual(a.expect("302").params[-1], "bob=+~u@127.0.0.1")

    def test_unknown_commands_and_missing_parameters(self):
        self.start()
        a = self.irc("alice")
        a.send("FROBNICATE x")
        a.expect("421", "alice", "FROBNICATE")
        a.send("JOIN")
        a.expect("461", "alice", "JOIN")
        a.send("PRIVMSG")
        a.expect("411", "alice")
        a.send("PRIVMSG bob")
        a.expect("412", "alice")
        a.send("PRIVMSG nobody :hi")
        a.expect("401", "alice", "nobody")
        a.send("PRIVMSG #nowhere :hi")
        a.expect("403", "alice", "#nowhere")
        a.send("NOTICE nobody :hi")  # NOTICE never gets an error
        a.sync()


class CapsTest(IrcTestCase):
    def test_server_time_msgid_and_echo_message(self):
        self.start()
        a = self.irc("alice", caps=["server-time", "message-tags", "echo-message"])
        b = self.irc("bob", caps=["server-time"])
        c = self.irc("carol")
        self.join_all((a, b, c), "#r")
        a.until("JOIN")
        a.until("JOIN")
        b.until("JOIN")
        a.send("PRIVMSG #r :tagged hello")
        mine = a.expect("PRIVMSG", "#r", "tagged hello")
        got_b = b.expect("PRIVMSG", "#r", "tagged hello")
        got_c = c.expect("PRIVMSG", "#r", "tagged hello")
        self.assertRegex(mine.tags["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertIn("msgid", mine.tags)
        self.assertEqual(set(got_b.tags), {"time"})
        self.assertEqual(got_c.tags, {})
        self.assertEqual(mine.tags["time"], got_b.tags["time"])
        b.send("PRIVMSG #r :no echo for bob")
        b.silence()
        a.expect("PRIVMSG", "#r", "no echo for bob")
        c.expect("PRIVMSG", "#r", "no echo for bob")
        # A burst: the echoes, and the others' copies, each in order and
        # each line with its own tags.
        a.sock.sendall(b"".join(b"PRIVMSG #r :burst %d\r\n" % i for i in range(40)))
        for x in (a, b, c):
            got = [x.expect("PRIVMSG", "#r", "burst %d" % i) for i in range(40)]
            if x is a:
                self.assertEqual(len({m.tags["msgid"] for m in got}), 40)


class PingTest(IrcTestCase):
    def test_a_silent_client_is_pinged_and_one_that_answers_stays(self):
        self.start(irc={"ping_timeout": "10"})
        unregistered = self.irc()
        unregistered.send("NICK never")
        quiet = self.irc("quiet")
        answers = self.irc("answers")
        self.assertEqual(answers.msg(timeout=8).command, "PING")
        ping = quiet.msg(timeout=2)
        self.assertEqual(ping.command, "PING")
        answers.send("PONG :" + ping.params[-1])
        m = quiet.msg(timeout=8)
        self.assertEqual(m.command, "ERROR")
        self.assertIn("PING", m.params[-1])
        self.assertTrue(quiet.closed())
        m = unregistered.msg(timeout=2)
        while m.command == "PING":  # pinged too, but answering does not register it
            m = unregistered.msg(timeout=2)
        self.assertEqual(m.command, "ERROR")
        self.assertIn("Registration timed out", m.params[-1])
        answers.sync()


class MixedTest(IrcTestCase):
    """IRC and line clients in one room see the same chat."""

    def test_irc_and_line_clients_chat_both_ways(self):
        srv = self.start()
        irc = self.irc("ircy")
        irc.send("JOIN #lobby")
        irc.until("366")
        line = self.line(srv)
        m = irc.expect("JOIN", "#lobby")
        self.assertEqual(m.source, "%s!line@127.0.0.1" % line.nick)
        irc.send("PRIVMSG #lobby :hello from irc")
        line.expect("[ircy] hello from irc")
        irc.send("PRIVMSG #lobby :\x01ACTION waves\x01")
        line.expect("* ircy waves")
        line.send("hello from line")
        irc.expect("PRIVMSG", "#lobby", "hello from line")
        line.send("/me bows")
        irc.expect("PRIVMSG", "#lobby", "\x01ACTION bows\x01")
        line.send("/nick lina")
        line.expect("* %s is now known as lina" % line.nick)
        m = irc.expect("NICK", "lina")
        self.assertEqual(m.nick, line.nick)
        line.send("/msg ircy psst")
        line.expect("[lina -> ircy] psst")
        self.assertEqual(irc.expect("PRIVMSG", "ircy", "psst").nick, "lina")
        irc.send("PRIVMSG lina :back")
        line.expect("[ircy -> lina] back")
        irc.send("NICK ircy2")
        irc.expect("NICK", "ircy2")
        line.expect("* ircy is now known as ircy2")
        line.send("/who")
        line.expect("= 2 in lobby: ircy2 lina")
        irc.send("PART #lobby :bye now")
        irc.expect("PART", "#lobby")
        line.expect("< ircy2 left lobby: bye now")

    def test_a_burst_in_one_write_keeps_its_order_with_what_comes_between(self):
        # A client's lines to one room, read together, go out as one
        # message per protocol; whatever else the same read does (a line
        # to another room, a private message, a departure) keeps its place
        # among them, for recipients on either worker and in either protocol.
        srv = self.start()
        a = self.irc("alice")
        b = self.irc("bob")
        self.join_all((a, b), "#lobby", "#other")
        a.expect("JOIN", "#lobby")  # bob's
        a.expect("JOIN", "#other")
        line = self.line(srv)
        for x in (a, b):
            x.expect("JOIN", "#lobby")  # the line client's
            x.sync()
        burst = ["PRIVMSG #lobby :one %d" % i for i in range(50)]
        burst += ["PRIVMSG #other :between", "PRIVMSG bob :direct"]
        burst += ["PRIVMSG #lobby :two %d" % i for i in range(50)]
        burst += ["PART #lobby :done"]
        a.sock.sendall("".join(x + "\r\n" for x in burst).encode())
        got = [b.msg() for _ in burst]
        self.assertEqual([(m.command, m.params[0], m.params[-1]) for m in got],
                         [(x.split(" ", 1)[0],) + tuple(x.split(" ", 1)[1].split(" :", 1)) for x in burst])
        self.assertEqual(["[alice] one %d" % i for i in range(50)] + ["[alice] two %d" % i for i in range(50)]
                         + ["< alice left lobby: done"], [line.read_line() for _ in range(101)])
        # The same from a line client, whose lines go to IRC clients too.
        line.send_raw(("".join("l%d\n" % i for i in range(30)) + "/msg bob psst\n"
                       + "".join("m%d\n" % i for i in range(30))).encode())
        got = [b.msg() for _ in range(61)]
        self.assertEqual([m.params[-1] for m in got],
                         ["l%d" % i for i in range(30)] + ["psst"] + ["m%d" % i for i in range(30)])
        self.assertEqual([m.params[0] for m in got], ["#lobby"] * 30 + ["bob"] + ["#lobby"] * 30)

    def test_formatting_reaches_irc_clients_and_not_line_clients(self):
        srv = self.start()
        a = self.irc("ircya")
        b = self.irc("ircyb")
        self.join_all((a, b), "#lobby")
        a.expect("JOIN", "#lobby")
        line = self.line(srv)
        a.expect("JOIN", "#lobby")
        b.expect("JOIN", "#lobby")
        a.send("PRIVMSG #lobby :\x02bold\x02 \x0304,01red\x0f and \x1b[31mansi")
        self.assertEqual(b.expect("PRIVMSG", "#lobby").params[-1],
                         "\x02bold\x02 \x0304,01red\x0f and [31mansi")
        line.expect("[ircya] bold red and [31mansi")
        a.send("PRIVMSG ircyb :\x01VERSION\x01")
        self.assertEqual(b.expect("PRIVMSG", "ircyb").params[-1], "\x01VERSION\x01")

    def test_topic_kick_and_moves_between_protocols(self):
        srv = self.start()
        line = self.line(srv)
        line.send("/join games")
        line.expect("= you joined games (1 here)")
        irc = self.irc("ircy")
        irc.send("JOIN #games")
        got = irc.until("366")
        self.assertEqual([m.params[-1] for m in got if m.command == "353"],
                         ["@%s ircy" % line.nick])
        line.expect("> ircy joined games")
        line.send("/topic chess at 8")
        line.expect("* %s set the topic of games: chess at 8" % line.nick)
        m = irc.expect("TOPIC", "#games", "chess at 8")
        self.assertEqual(m.nick, line.nick)
        line.send("/topic chess at 8")  # unchanged: shown to its setter only
        line.expect("= topic of games: chess at 8 (set by %s)" % line.nick)
        line.send("/op ircy")
        line.expect("* %s set mode +o ircy in games" % line.nick)
        irc.expect("MODE", "#games", "+o", "ircy")
        irc.send("KICK #games %s :your turn" % line.nick)
        irc.expect("KICK", "#games", line.nick, "your turn")
        line.expect("< %s was kicked from games by ircy: your turn" % line.nick)
        line.send("still here?")
        line.expect("! you are in no room: /join ROOM")
        line.send("/join games")
        line.expect("= you joined games (2 here)")
        line.expect("= topic of games: chess at 8 (set by %s)" % line.nick)
        irc.expect("JOIN", "#games")
        line.send("/join lobby")
        line.expect("= you joined lobby (1 here)")
        m = irc.expect("PART", "#games")
        self.assertIn("lobby", m.params[-1])

    def test_a_quit_or_nick_change_reaches_each_once_across_shared_rooms(self):
        srv = self.start()
        a = self.irc("alice")
        b = self.irc("bob")
        self.join_all((a, b), "#one", "#two", "#three")
        for _ in range(3):
            a.expect("JOIN")
        line = self.line(srv)
        b.send("NICK bobby")
        b.expect("NICK", "bobby")
        a.expect("NICK", "bobby")
        a.sync()
        b.send("QUIT :off")
        m = a.expect("QUIT", "Quit: off")
        self.assertEqual(m.nick, "bobby")
        a.sync()
        line.send("/who")
        line.expect("= 1 in lobby: %s" % line.nick)

    def test_a_line_client_leaving_is_a_quit_to_irc(self):
        srv = self.start()
        irc = self.irc("ircy")
        irc.send("JOIN #lobby")
        irc.until("366")
        line = self.line(srv)
        irc.expect("JOIN", "#lobby")
        line.send("/quit gone fishing")
        line.expect("= bye")
        m = irc.expect("QUIT", "Quit: gone fishing")
        self.assertEqual(m.nick, line.nick)

    def test_irc_quit_is_seen_by_line_clients(self):
        srv = self.start()
        line = self.line(srv)
        irc = self.irc("ircy")
        irc.send("JOIN #lobby")
        irc.until("366")
        line.expect("> ircy joined lobby")
        irc.send("QUIT :bye all")
        self.assertEqual(irc.msg().command, "ERROR")
        line.expect("< ircy left: bye all (1 online)")


class LimitsTest(IrcTestCase):
    def test_a_listing_stops_at_half_of_max_sendq_and_says_so(self):
        self.start(limits={"max_line": "1024", "max_sendq": "4096"})
        a = self.irc("alice")
        a.send("JOIN " + ",".join("#room%02d" % i for i in range(50)))
        for _ in range(50):
            a.until("366")
        a.send("LIST")
        got = a.until("323")
        listed = [m for m in got if m.command == "322"]
        self.assertGreater(len(listed), 10)
        self.assertLess(len(listed), 50)
        self.assertTrue(sum(len(m.raw) + 2 for m in listed) <= 2048)
        self.assertIn("reply cut short", [m for m in got if m.command == "NOTICE"][0].params[-1])
        a.send("LIST #room4*")
        self.assertEqual(len([m for m in a.until("323") if m.command == "322"]), 10)

    def test_one_mode_line_changes_at_most_six_modes(self):
        self.start()
        a = self.irc("alice")
        b = self.irc("bob")
        a.send("JOIN #amp")
        a.until("366")
        b.send("JOIN #amp")
        b.until("366")
        a.expect("JOIN", "#amp")
        a.send("MODE #amp " + "-t+t" * 100)
        a.send("PING :sync")
        self.assertEqual([m.command for m in a.until("PONG")], ["MODE"] * 6 + ["PONG"])
        changes = 0
        b.send("PING :sync")
        while True:
            m = b.msg()
            if m.command == "PONG":
                break
            self.assertEqual(m.command, "MODE")
            changes += 1
        self.assertEqual(changes, 6)

    def test_a_full_server_refuses_an_irc_client_in_irc(self):
        srv = self.start(server={"max_clients": "1"})
        self.line(srv)
        c = self.irc()
        m = c.msg()
        self.assertEqual(m.command, "ERROR")
        self.assertEqual(m.params[-1], "Closing Link: 127.0.0.1 (server full (max 1 clients))")
        self.assertTrue(c.closed())

    def test_flooding_irc_client_is_told_then_cut(self):
        srv = self.start(limits={"rate": "5", "burst": "5", "max_per_ip": "0",
                                 "connect_rate": "0", "announce_rate": "0"})
        c = self.irc("flood")
        for i in range(100):
            try:
                c.send("PRIVMSG flood :%d" % i)
            except OSError:
                break
        seen = []
        try:
            while True:
                m = c.msg(timeout=5)
                seen.append(m)
                if m.command == "ERROR":
                    break
        except EOFError:
            pass
        commands = [m.command for m in seen]
        self.assertIn("NOTICE", commands)
        self.assertEqual(commands[-1], "ERROR")
        self.assertIn("flooding", seen[-1].params[-1])
        self.assertTrue(c.closed())
        srv.log.wait(r"flooding past 5 lines per second")


if __name__ == "__main__":
    main()
