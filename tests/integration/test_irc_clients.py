#!/usr/bin/env python3
"""Real IRC clients, from Debian's packages, in chatd's rooms beside
line-protocol clients (issue 17): IRC channel #x is chatd's room x.

- WeeChat (weechat-headless) and ii join a room and chat with a line client
  both ways, and each side sees the other's joins, parts, quits, topics,
  nick changes and actions as its protocol shows them.
- irssi, on a terminal in tmux, completes its channel sync (its MODE, WHO and
  ban-list queries all answered, no error numeric) and chats.
- a bot on python3-irc answers a command.

The clients are driven by tests/ircclients.py (which knows no chatd: the same
drivers run against any IRC server). A test skips, saying why, only when its
client is not installed (apt-get install weechat-headless weechat-plugins ii
irssi tmux python3-irc); everything else is a failure.

What a line client is shown of IRC users is docs/protocol.md's wording:
`[nick] text`, `* nick text`, `* old is now known as new`, `> nick joined
room`, `< nick left room: reason` (a PART), `< nick left: reason (N online)`
(a QUIT), `* nick set the topic of room: text`, and on arriving in a room
with a topic `= topic of room: text (set by nick)`.
"""
import os
import re
import socket
import tempfile
import time

import chatdtest
from chatdtest import ChatdTestCase, Server
from ircclients import Bot, Ii, Irssi, WeeChat

HOST = "127.0.0.1"


class LinePeer:
    """A line-protocol client of the test's chatd with a nick of its
    choosing, in a room: the other side of every conversation here. Its
    expect_* methods read lines until the one they want (others, such as
    arrivals of other clients, are passed over) and fail after the
    timeout."""

    def __init__(self, tc, srv, nick, room):
        self.client = tc.connect(srv)
        self.nick = self.client.nick
        self.pending = []  # lines read but not yet expected
        self.room = "lobby"
        self.change_nick(nick)
        if room != "lobby":
            self.enter_room(room)

    @property
    def channel(self):
        return "#" + self.room

    def send(self, line):
        self.client.send(line)

    def expect(self, pattern):
        """The first line, of those read but not yet expected and then of
        those still to come, that matches pattern; it is taken, the others
        stay for later expectations (so that two lines that may come in
        either order, such as a reply and a topic, can be expected one
        after the other)."""
        regex = re.compile(pattern)
        for i, line in enumerate(self.pending):
            if regex.search(line):
                return self.pending.pop(i)
        lines = self.client.read_until(regex)
        self.pending += lines[:-1]
        return lines[-1]

    # -- doing
    def say(self, text):
        self.send(text)

    def me(self, text):
        self.send("/me " + text)

    def topic(self, text):
        self.send("/topic " + text)

    def change_nick(self, new):
        old = self.nick
        self.send("/nick " + new)
        self.expect(r"^\* %s is now known as %s$" % (re.escape(old), re.escape(new)))
        self.nick = new

    def enter_room(self, room):
        self.send("/join " + room)
        self.expect(r"^= you joined %s \(" % re.escape(room))
        self.room = room

    def leave_room(self):
        """Leaves the room for another (for IRC, a PART)."""
        self.enter_room("elsewhere" if self.room == "lobby" else "lobby")

    def quit(self):
        self.send("/quit")
        self.expect(r"^= bye$")

    # -- seeing
    def expect_said(self, nick, text):
        return self.expect(r"^\[%s\] %s$" % (re.escape(nick), re.escape(text)))

    def expect_action(self, nick, text):
        return self.expect(r"^\* %s %s$" % (re.escape(nick), re.escape(text)))

    def expect_arrival(self, nick):
        return self.expect(r"^> %s joined %s$" % (re.escape(nick), re.escape(self.room)))

    def expect_part(self, nick, reason):
        return self.expect(r"^< %s left %s: %s$" % (re.escape(nick), re.escape(self.room),
                                                     re.escape(reason)))

    def expect_quit(self, nick, reason):
        return self.expect(r"^< %s left: %s \(\d+ online\)$" % (re.escape(nick), re.escape(reason)))

    def expect_nick(self, old, new):
        return self.expect(r"^\* %s is now known as %s$" % (re.escape(old), re.escape(new)))

    def expect_topic(self, nick, text):
        """nick set the room's topic to text (seen by the setter too)."""
        return self.expect(r"^\* %s set the topic of %s: %s$"
                           % (re.escape(nick), re.escape(self.room), re.escape(text)))

    def expect_topic_shown(self, nick, text):
        """The topic nick set, as shown on arriving in the room."""
        return self.expect(r"^= topic of %s: %s \(set by %s\)$"
                           % (re.escape(self.room), re.escape(text), re.escape(nick)))


class IrcTestCase(ChatdTestCase):
    """ChatdTestCase with a chatd that also listens for IRC, line peers, and
    IRC clients that are closed at cleanup (before the server is stopped
    and checked for a clean exit)."""

    def start_irc_server(self, config=None):
        """A chatd listening for the line protocol on a port of its choosing
        (srv.port) and for IRC on a free port ([irc] port; srv.irc_port).
        Stopped at cleanup, and checked then for a clean exit."""
        irc_port = chatdtest.free_port()
        overrides = {"irc": {"port": str(irc_port)}}
        for section, keys in (config or {}).items():
            overrides.setdefault(section, {}).update(keys)
        srv = Server(overrides)
        self.addCleanup(srv.close)
        # Both listeners are logged, in either order: the line port is the
        # one that is not the IRC port.
        m = srv.log.wait(r"listening on \S*:(?!%d\b)(\d+)\b" % irc_port)
        srv.port = int(m.group(1))
        srv.log.wait(r"listening on .*\b%d\b" % irc_port)
        if self.CLEAN_EXIT:
            self.addCleanup(self.check_clean_exit, srv)
        srv.irc_port = irc_port
        return srv

    def line_peer(self, srv, nick, room):
        return LinePeer(self, srv, nick, room)

    def irc_client(self, cls, srv, nick, *args):
        """A started IRC client of class cls (a driver of ircclients) on
        srv's IRC port, closed at cleanup."""
        reason = cls.missing()
        if reason:
            self.skipTest(reason)
        client = cls(HOST, srv.irc_port, nick, *args)
        self.addCleanup(client.close)
        return client.start()


class ChatClientTests:
    """What WeeChat and ii must both do in chatd's rooms, beside a line
    client; CLIENT is the driver class, NICK its nick."""

    CLIENT = None
    NICK = None

    def setUp(self):
        super().setUp()
        reason = self.CLIENT.missing()
        if reason:
            self.skipTest(reason)

    def pair(self, room="games", irc_first=True):
        """(chatd, line peer `linus` in room, the IRC client in #room),
        the IRC client joining first (then the line peer arrives, and the
        client sees it) or last (the peer sees the client arrive)."""
        srv = self.start_irc_server()
        if irc_first:
            irc = self.irc_client(self.CLIENT, srv, self.NICK)
            irc.join("#" + room)
            mark = irc.mark("#" + room)
            line = self.line_peer(srv, "linus", room)
            irc.wait_joined("#" + room, "linus", start=mark)
        else:
            line = self.line_peer(srv, "linus", room)
            irc = self.irc_client(self.CLIENT, srv, self.NICK)
            irc.join("#" + room)
            line.expect_arrival(irc.nick)
        return srv, line, irc

    def test_chat_both_ways(self):
        srv, line, irc = self.pair(irc_first=False)
        irc.say(line.channel, "hello from IRC")
        line.expect_said(irc.nick, "hello from IRC")
        line.say("hello from the line")
        irc.wait_said(line.channel, "linus", "hello from the line")
        # Unicode both ways, untouched.
        irc.say(line.channel, "h\u00e9 \u2713 \u65e5\u672c")
        line.expect_said(irc.nick, "h\u00e9 \u2713 \u65e5\u672c")
        line.say("\u00fcber \u2603")
        irc.wait_said(line.channel, "linus", "\u00fcber \u2603")

    def test_chat_in_the_lobby(self):
        """#lobby is the room every line client starts in."""
        srv, line, irc = self.pair(room="lobby", irc_first=False)
        irc.say("#lobby", "hi lobby")
        line.expect_said(irc.nick, "hi lobby")
        line.say("hi IRC")
        irc.wait_said("#lobby", "linus", "hi IRC")

    def test_actions_both_ways(self):
        srv, line, irc = self.pair()
        irc.me(line.channel, "waves at everyone")
        line.expect_action(irc.nick, "waves at everyone")
        line.me("waves back")
        irc.wait_action(line.channel, "linus", "waves back")

    def test_line_client_joins_parts_and_quits(self):
        """The IRC client sees the line client arrive (pair), leave the room,
        come back, and leave the server."""
        srv, line, irc = self.pair()
        mark = irc.mark(line.channel)
        line.leave_room()
        irc.wait_parted("#games", "linus", start=mark)
        mark = irc.mark("#games")
        line.enter_room("games")
        irc.wait_joined("#games", "linus", start=mark)
        mark = irc.mark(irc.event_where("quit", "#games"))
        line.quit()
        irc.wait_quit("#games", "linus", start=mark)

    def test_irc_client_joins_and_parts(self):
        """The line client sees the IRC client arrive (pair), leave the
        channel, come back, and leave the server."""
        srv, line, irc = self.pair(irc_first=False)
        irc.part("#games", "see you")
        line.expect_part(irc.nick, "see you")
        irc.join("#games")
        line.expect_arrival(irc.nick)
        irc.quit("gone for good")
        line.expect_quit(irc.nick, "gone for good")
        self.sync(line.client)

    def test_nick_changes_both_ways(self):
        srv, line, irc = self.pair()
        old = irc.nick
        irc.change_nick(old + "2")
        line.expect_nick(old, old + "2")
        mark = irc.mark(irc.event_where("nick", "#games"))
        line.change_nick("linus2")
        irc.wait_nick_change("#games", "linus", "linus2", start=mark)
        # Both are known by their new nicks.
        line.say("to the new nick")
        irc.wait_said("#games", "linus2", "to the new nick")
        irc.say("#games", "from the new nick")
        line.expect_said(old + "2", "from the new nick")

    def test_topic_set_on_irc(self):
        """The IRC client creates the channel (its operator), sets the
        topic: a line client arriving is shown it; a change is seen."""
        srv = self.start_irc_server()
        irc = self.irc_client(self.CLIENT, srv, self.NICK)
        irc.join("#news")
        irc.topic("#news", "first topic from IRC")
        irc.wait_topic("#news", irc.nick, "first topic from IRC")
        line = self.line_peer(srv, "linus", "news")
        line.expect_topic_shown(irc.nick, "first topic from IRC")
        irc.topic("#news", "second topic from IRC")
        line.expect_topic(irc.nick, "second topic from IRC")

    def test_topic_set_on_the_line(self):
        """The line client creates the room and sets its topic: the IRC
        client is shown it on joining, and sees a change."""
        srv = self.start_irc_server()
        line = self.line_peer(srv, "linus", "news")
        line.topic("topic from the line")
        line.expect_topic("linus", "topic from the line")
        irc = self.irc_client(self.CLIENT, srv, self.NICK)
        mark = irc.mark(irc.event_where("topic_shown", "#news"))
        irc.join("#news")
        irc.wait_topic_shown("#news", "topic from the line", start=mark)
        line.expect_arrival(irc.nick)
        mark = irc.mark("#news")
        line.topic("a newer topic")
        irc.wait_topic("#news", "linus", "a newer topic", start=mark)


class WeeChatTest(ChatClientTests, IrcTestCase):
    CLIENT = WeeChat
    NICK = "wee"


class WeeChatSaslTest(IrcTestCase):
    """WeeChat logs in to a registered account with SASL as it connects,
    PLAIN and SCRAM-SHA-256, and keeps the registered nick past the grace;
    a wrong password fails its login."""

    def setUp(self):
        super().setUp()
        reason = WeeChat.missing()
        if reason:
            self.skipTest(reason)
        tmp = tempfile.TemporaryDirectory(prefix="chatd-sasl-")
        self.addCleanup(tmp.cleanup)
        self.srv = self.start_irc_server({"store": {"path": os.path.join(tmp.name, "chatd.db")},
                                          "accounts": {"grace": "1"}})
        peer = socket.create_connection((HOST, self.srv.port), timeout=chatdtest.TIMEOUT)
        self.addCleanup(peer.close)
        peer.sendall(b"/nick weesasl\n/register sasl-password-1\n/quit\n")
        peer.settimeout(chatdtest.TIMEOUT)
        got = b""
        while b"= registered weesasl" not in got:
            data = peer.recv(4096)
            if not data:
                break
            got += data
        self.assertIn(b"= registered weesasl: you are logged in", got)

    def logs_in(self, mechanism):
        irc = self.irc_client(WeeChat, self.srv, "weesasl", chatdtest.TIMEOUT, None,
                              (mechanism, "weesasl", "sasl-password-1"))
        irc.wait_for(r"You are now logged in as weesasl", None, what="its SASL login (900)")
        self.srv.log.wait(r"login to account weesasl from 127\.0\.0\.1")
        # Past the grace, still weesasl: logged in, the nick is its own.
        irc.join("#after")
        time.sleep(1.5)
        self.assertFalse([l for l in irc.lines(None) if "You are now known as" in l])
        self.assertNotIn("did not identify", self.srv.log.text())

    def test_plain(self):
        self.logs_in("plain")

    def test_scram_sha_256(self):
        self.logs_in("scram-sha-256")

    def test_a_wrong_password_fails(self):
        irc = WeeChat(HOST, self.srv.irc_port, "weesasl", chatdtest.TIMEOUT, None,
                      ("plain", "weesasl", "not-the-password"))
        self.addCleanup(irc.close)
        irc._launch()  # not start(): it does not get as far as registering
        self.srv.log.wait(r"failed login to account weesasl from 127\.0\.0\.1 \(wrong password")


class IiTest(ChatClientTests, IrcTestCase):
    CLIENT = Ii
    NICK = "iiuser"


class IrssiTest(IrcTestCase):
    def setUp(self):
        super().setUp()
        reason = Irssi.missing()
        if reason:
            self.skipTest(reason)

    def test_sync_completes_and_chats(self):
        """irssi joins #lobby, where line clients are: it asks MODE #lobby,
        WHO #lobby and MODE #lobby b, and shows `Join to #lobby was synced`
        with every answer in (324, 315, 368) and no error numeric. Then it
        chats with a line client both ways."""
        srv = self.start_irc_server()
        line = self.line_peer(srv, "linus", "lobby")
        irssi = self.irc_client(Irssi, srv, "irs")
        irssi.join("#lobby")
        line.expect_arrival("irs")
        exchange = irssi.wait_synced("#lobby")
        sent = [q.upper() for q in exchange["sent"]]
        self.assertIn("MODE #LOBBY", sent, exchange)
        self.assertTrue(any(q.startswith("WHO #LOBBY") for q in sent), exchange)
        self.assertIn("MODE #LOBBY B", sent, exchange)
        irssi.say("#lobby", "hello from irssi")
        line.expect_said("irs", "hello from irssi")
        line.say("hello irssi")
        irssi.wait_said("#lobby", "linus", "hello irssi")
        # The line client was in the WHO reply (352; or 354, irssi's WHOX,
        # with its query type 743, should chatd announce WHOX).
        who = re.compile(r">> (@\S+ )?:\S+ (352 irs|354 irs 743) #lobby \S+ \S+ \S+ linus ", re.I)
        self.assertTrue(any(who.match(l) for l in irssi.raw()), irssi.dump())

    def test_sync_in_a_new_channel(self):
        """A channel irssi creates: it is its operator, and the sync is
        the same."""
        srv = self.start_irc_server()
        irssi = self.irc_client(Irssi, srv, "irs")
        irssi.join("#fresh")
        irssi.wait_synced("#fresh")
        line = self.line_peer(srv, "linus", "fresh")
        irssi.wait_joined("#fresh", "linus")
        line.say("anyone here?")
        irssi.wait_said("#fresh", "linus", "anyone here?")


class BotTest(IrcTestCase):
    def setUp(self):
        super().setUp()
        reason = Bot.missing()
        if reason:
            self.skipTest(reason)

    def test_bot_answers_a_command(self):
        """A python3-irc bot in #bots answers `!ping` from a line client
        there with `pong linus`, and ignores other lines."""
        srv = self.start_irc_server()
        line = self.line_peer(srv, "linus", "bots")
        bot = self.irc_client(Bot, srv, "pybot", "#bots")
        bot.wait_joined_channel()
        line.expect_arrival("pybot")
        line.say("just chatting")
        bot.wait_for(r"^heard #bots linus just chatting$")
        line.say("!ping")
        bot.wait_answered("pong linus")
        line.expect_said("pybot", "pong linus")
        self.sync(line.client)  # one answer, no more


if __name__ == "__main__":
    chatdtest.main()
