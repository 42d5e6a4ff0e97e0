#!/usr/bin/env python3
"""The chat protocol as a user sees it, checked against docs/protocol.md.

Every test starts a real chatd on a free loopback port and talks to it with
real TCP clients. Positives wait for the expected line; negatives ("nobody
else sees it", "no echo") are proved either by a sync command whose reply
must be the very next line, by reading to EOF after a half-close, or, where
neither fits, by a short expect_silence().
"""
import os
import re
import signal
import socket
import tempfile
import unittest

import chatdtest
from chatdtest import SYNC, SYNC_REPLY, ChatdTestCase, Client, have_ipv6_loopback

NAME_RULE = "must be 1-32 letters, digits, _ or -, starting with a letter"


def invalid_name(kind):
    """The reply to an invalid nick or room, verbatim from docs/protocol.md:
    the word NAME stands for the rule, the rejected name is not echoed."""
    return "! invalid %s: NAME %s" % (kind, NAME_RULE)


class ChatTestCase(ChatdTestCase):
    """ChatdTestCase (start_server, connect, crowd, sync) with servers that
    are killed at cleanup, not checked for a clean exit, and helpers of the
    protocol's own."""

    CLEAN_EXIT = False

    def rename(self, c, new, room):
        """c changes its nick; c and everyone in `room` see it."""
        line = "* %s is now known as %s" % (c.nick, new)
        c.send("/nick " + new)
        for o in [c] + [o for o in room if o is not c]:
            o.expect(line)
        c.nick = new

    def finish(self, c):
        """Half-closes c (the server sees it leave) and returns every line
        the server still sent it, up to EOF."""
        c.sock.shutdown(socket.SHUT_WR)
        lines = c.expect_closed()
        self.assertEqual(c.buf, b"", "unterminated data before EOF")
        return lines


class WriteMethodTest(ChatTestCase):
    def test_write_method_logged(self):
        """chatd says once, at start, how it writes: io_uring unless the
        config says no or the kernel refuses it (then with the reason)."""
        srv = self.start_server()
        uring = r"info: writing with io_uring$"
        refused = r"info: writing with writev: io_uring is not usable \(.+\)$"
        if chatdtest.DEFAULT_CONFIG["server"].get("io_uring") == "no":
            srv.log.wait(r"info: writing with writev \(io_uring = no\)$")
        else:
            try:
                with open("/proc/sys/kernel/io_uring_disabled") as f:
                    disabled = int(f.read())
            except FileNotFoundError:
                disabled = 0
            # 1: only for root (as the tests run) and io_uring_group.
            srv.log.wait({0: uring, 1: uring + "|" + refused}.get(disabled, refused))
        a = self.connect(srv)
        b = self.connect(srv, others=[a])
        a.send("ping")
        b.expect("[guest1] ping")
        self.assertEqual(len(re.findall(r"writing with", srv.log.text())), 1, srv.log.text())
        self.assertNotIn("io_uring failed", srv.log.text())


class CourseExchangeTest(ChatTestCase):
    def test_course_exchange(self):
        """The exchange at the end of docs/protocol.md, line for line."""
        srv = self.start_server()
        user1 = Client(srv.port)
        self.addCleanup(user1.close)
        user1.expect("# Welcome to chatd!")
        user1.expect("> Connected to the chat server as guest1 (1 online)")
        user1.send("Hello")
        user1.expect_silence()  # no echo, and Hello is handled before user2 arrives

        user2 = Client(srv.port)
        self.addCleanup(user2.close)
        user2.expect("# Welcome to chatd!")
        user2.expect("> Connected to the chat server as guest2 (2 online)")
        user1.expect("> guest2 entered (2 online)")

        user2.send("World")
        user1.expect("[guest2] World")
        self.assertEqual(self.finish(user2), [], "user2 saw more than the exchange")
        user1.expect("< guest2 left (1 online)")
        self.assertEqual(self.finish(user1), [], "user1 saw more than the exchange")


class MotdTest(ChatTestCase):
    def test_custom_motd(self):
        srv = self.start_server({"server": {"motd": "Hello from the test suite"}})
        c = Client(srv.port)
        self.addCleanup(c.close)
        c.expect("# Hello from the test suite")
        c.expect("> Connected to the chat server as guest1 (1 online)")

    def test_empty_motd_sends_no_hash_lines(self):
        srv = self.start_server({"server": {"motd": ""}})
        c = Client(srv.port)
        self.addCleanup(c.close)
        c.expect("> Connected to the chat server as guest1 (1 online)")

    def test_motd_file_with_several_lines(self):
        tmp = tempfile.TemporaryDirectory(prefix="chatd-motd-")
        self.addCleanup(tmp.cleanup)
        path = os.path.join(tmp.name, "motd.txt")
        lines = ["Welcome to the file MOTD", "Rules: be nice", "Ünïcode ✓ works"]
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        # motd_file wins over motd.
        srv = self.start_server({"server": {"motd": "not this one", "motd_file": path}})
        c = Client(srv.port)
        self.addCleanup(c.close)
        for line in lines:
            c.expect("# " + line)
        c.expect("> Connected to the chat server as guest1 (1 online)")


class ArrivalTest(ChatTestCase):
    def test_default_nicks_count_up(self):
        srv = self.start_server()
        c1, c2, c3 = self.crowd(srv, 3)
        c2.close()
        for c in (c1, c3):
            c.expect("< guest2 left (2 online)")
        # N counts for the life of the server: guest2 is not reused.
        c4 = self.connect(srv, [c1, c3])
        self.assertEqual(c4.nick, "guest4")
        # A taken nick is skipped.
        self.rename(c1, "guest5", [c3, c4])
        c6 = self.connect(srv, [c1, c3, c4])
        self.assertEqual(c6.nick, "guest6")

    def test_online_counts_everyone_in_any_room(self):
        srv = self.start_server()
        c1, c2 = self.crowd(srv, 2)
        c1.send("/join games")
        c1.expect("= you joined games (1 here)")
        c2.expect("< guest1 went to games")
        c3 = self.connect(srv, [c2])  # only the lobby sees it enter
        self.assertEqual(c3.nick, "guest3")
        c1.send("/who")
        c1.expect("= 1 in games: @guest1")  # guest1 saw no "entered"
        c3.close()
        c2.expect("< guest3 left (2 online)")
        c1.send("/quit")
        c1.expect("= bye")
        self.assertEqual(c1.expect_closed(), [])
        c4 = self.connect(srv, [c2])
        c2.send("/who")
        c2.expect("= 2 in lobby: guest2 guest4")
        self.assertEqual(c4.nick, "guest4")

    def test_count_in_greeting(self):
        srv = self.start_server()
        clients = []
        for i in range(1, 5):
            c = Client(srv.port)
            self.addCleanup(c.close)
            c.expect("# Welcome to chatd!")
            c.expect("> Connected to the chat server as guest%d (%d online)" % (i, i))
            for o in clients:
                o.expect("> guest%d entered (%d online)" % (i, i))
            clients.append(c)


class ChatTest(ChatTestCase):
    def test_chat_goes_to_others_without_echo(self):
        srv = self.start_server()
        c1, c2, c3 = self.crowd(srv, 3)
        c1.send("hello everyone")
        c2.expect("[guest1] hello everyone")
        c3.expect("[guest1] hello everyone")
        self.sync(c1)
        c3.send("hi guest1 ✓")
        c1.expect("[guest3] hi guest1 ✓")
        c2.expect("[guest3] hi guest1 ✓")
        self.sync(c1, c2, c3)

    def test_double_slash_sends_a_slash(self):
        srv = self.start_server()
        c1, c2 = self.crowd(srv, 2)
        c1.send("//shrug")
        c2.expect("[guest1] /shrug")
        c1.send("//me is not an action")
        c2.expect("[guest1] /me is not an action")
        self.sync(c1)

    def test_alone_in_the_room(self):
        srv = self.start_server()
        (c1,) = self.crowd(srv, 1)
        c1.send("anybody there?")
        self.sync(c1)


class NickTest(ChatTestCase):
    def test_nick_change_seen_by_room_and_sender(self):
        srv = self.start_server()
        c1, c2, c3 = self.crowd(srv, 3)
        c3.send("/join games")
        c3.expect("= you joined games (1 here)")
        c1.expect("< guest3 went to games")
        c2.expect("< guest3 went to games")
        c1.send("/nick alice")
        c1.expect("* guest1 is now known as alice")
        c2.expect("* guest1 is now known as alice")
        self.sync(c3)  # other rooms do not see it
        c1.send("hi")
        c2.expect("[alice] hi")
        c1.send("/NICK Bob-2_x")  # command names are case-insensitive
        c1.expect("* alice is now known as Bob-2_x")
        c2.expect("* alice is now known as Bob-2_x")

    def test_invalid_nicks(self):
        srv = self.start_server()
        c1, c2 = self.crowd(srv, 2)
        for bad in ["1abc", "_abc", "-abc", "a" * 33, "bad!", "dot.name", "ünï"]:
            c1.send("/nick " + bad)
            c1.expect(invalid_name("nick"))
        c1.send("/nick " + "a" * 32)  # 32 is fine
        c1.expect("* guest1 is now known as " + "a" * 32)
        c2.expect("* guest1 is now known as " + "a" * 32)
        self.sync(c2)  # the failures were not broadcast

    def test_nick_taken_ignoring_case(self):
        srv = self.start_server()
        c1, c2 = self.crowd(srv, 2)
        self.rename(c1, "alice", [c2])
        c2.send("/nick ALICE")
        c2.expect(re.compile(r"! nick taken: (alice|ALICE)"))
        c2.send("/nick alice")
        c2.expect("! nick taken: alice")
        c2.send("/nick Guest1")  # guest1 is free again after the rename
        c2.expect("* guest2 is now known as Guest1")
        c1.expect("* guest2 is now known as Guest1")

    def test_nick_taken_in_another_room(self):
        srv = self.start_server()
        c1, c2 = self.crowd(srv, 2)
        c1.send("/join games")
        c1.expect("= you joined games (1 here)")
        c2.expect("< guest1 went to games")
        c2.send("/nick guest1")
        c2.expect("! nick taken: guest1")

    def test_same_nick(self):
        srv = self.start_server()
        c1, c2 = self.crowd(srv, 2)
        self.rename(c1, "alice", [c2])
        c1.send("/nick alice")
        c1.expect("= you are already alice")
        self.sync(c2)

    def test_nick_usage(self):
        srv = self.start_server()
        (c1,) = self.crowd(srv, 1)
        c1.send("/nick")
        c1.expect("! usage: /nick NAME")
        c1.send("/nick   ")
        c1.expect("! usage: /nick NAME")


class WhoTest(ChatTestCase):
    def test_who_is_sorted(self):
        srv = self.start_server()
        c1, c2, c3 = self.crowd(srv, 3)
        self.rename(c1, "carol", [c2, c3])
        self.rename(c2, "alice", [c1, c3])
        self.rename(c3, "bob", [c1, c2])
        for c in (c1, c2, c3):
            c.send("/who")
            c.expect("= 3 in lobby: alice bob carol")

    def test_who_lists_only_the_room(self):
        srv = self.start_server()
        c1, c2, c3 = self.crowd(srv, 3)
        c2.send("/join games")
        c2.expect("= you joined games (1 here)")
        for c in (c1, c3):
            c.expect("< guest2 went to games")
        c1.send("/Who")
        c1.expect("= 2 in lobby: guest1 guest3")
        c2.send("/who")
        c2.expect("= 1 in games: @guest2")


class MsgTest(ChatTestCase):
    def setUp(self):
        srv = self.start_server()
        self.alice, self.bob, self.carol = self.crowd(srv, 3)
        everyone = [self.alice, self.bob, self.carol]
        self.rename(self.alice, "alice", everyone)
        self.rename(self.bob, "bob", everyone)
        self.rename(self.carol, "carol", everyone)

    def test_private_message_to_another_room(self):
        alice, bob, carol = self.alice, self.bob, self.carol
        bob.send("/join games")
        bob.expect("= you joined games (1 here)")
        alice.expect("< bob went to games")
        carol.expect("< bob went to games")
        alice.send("/msg bob psst, over here")
        bob.expect("[alice -> bob] psst, over here")
        alice.expect("[alice -> bob] psst, over here")
        bob.send("/MSG alice got it")
        alice.expect("[bob -> alice] got it")
        bob.expect("[bob -> alice] got it")
        self.sync(carol)  # nobody else sees private messages

    def test_private_message_same_room(self):
        alice, bob, carol = self.alice, self.bob, self.carol
        alice.send("/msg carol only you")
        carol.expect("[alice -> carol] only you")
        alice.expect("[alice -> carol] only you")
        self.sync(bob)

    def test_msg_errors(self):
        alice, bob, carol = self.alice, self.bob, self.carol
        alice.send("/msg nobody hello")
        alice.expect("! no such nick: nobody")
        alice.send("/msg alice talking to myself")
        alice.expect("! you cannot /msg yourself")
        alice.send("/msg")
        alice.expect("! usage: /msg NICK TEXT")
        alice.send("/msg bob")
        alice.expect("! usage: /msg NICK TEXT")
        self.sync(bob, carol)


class MeTest(ChatTestCase):
    def test_action(self):
        srv = self.start_server()
        c1, c2, c3 = self.crowd(srv, 3)
        c1.send("/me waves")
        c2.expect("* guest1 waves")
        c3.expect("* guest1 waves")
        self.sync(c1)  # no echo
        c2.send("/ME dances wildly")
        c1.expect("* guest2 dances wildly")
        c3.expect("* guest2 dances wildly")
        self.sync(c2)

    def test_me_usage(self):
        srv = self.start_server()
        c1, c2 = self.crowd(srv, 2)
        c1.send("/me")
        c1.expect("! usage: /me TEXT")
        self.sync(c2)


class JoinTest(ChatTestCase):
    def test_join_lines(self):
        srv = self.start_server()
        c1, c2, c3 = self.crowd(srv, 3)
        c1.send("/join games")
        c1.expect("= you joined games (1 here)")
        c2.expect("< guest1 went to games")
        c3.expect("< guest1 went to games")
        c2.send("/join games")
        c2.expect("= you joined games (2 here)")
        c3.expect("< guest2 went to games")
        c1.expect("> guest2 joined games")
        self.sync(c1, c2, c3)
        # and back to the lobby
        c1.send("/join lobby")
        c1.expect("= you joined lobby (2 here)")
        c2.expect("< guest1 went to lobby")
        c3.expect("> guest1 joined lobby")
        self.sync(c1, c2, c3)

    def test_already_in_room(self):
        srv = self.start_server()
        c1, c2 = self.crowd(srv, 2)
        c1.send("/join lobby")
        c1.expect("! you are already in lobby")
        c1.send("/join games")
        c1.expect("= you joined games (1 here)")
        c2.expect("< guest1 went to games")
        c1.send("/join games")
        c1.expect("! you are already in games")
        self.sync(c2)

    def test_join_errors(self):
        srv = self.start_server()
        c1, c2 = self.crowd(srv, 2)
        for bad in ["9lives", "_x", "a" * 33, "no/slash", "ümlaut"]:
            c1.send("/join " + bad)
            c1.expect(invalid_name("room"))
        c1.send("/join")
        c1.expect("! usage: /join ROOM")
        self.sync(c1, c2)
        c1.send("/who")
        c1.expect("= 2 in lobby: guest1 guest2")

    def test_chat_stays_within_rooms(self):
        srv = self.start_server()
        c1, c2, c3 = self.crowd(srv, 3)
        c1.send("/join games")
        c1.expect("= you joined games (1 here)")
        c2.expect("< guest1 went to games")
        c3.expect("< guest1 went to games")
        c2.send("/join games")
        c2.expect("= you joined games (2 here)")
        c1.expect("> guest2 joined games")
        c3.expect("< guest2 went to games")
        c1.send("in games")
        c2.expect("[guest1] in games")
        c3.send("in lobby")
        c3.send("/me is alone")
        self.sync(c1, c2, c3)

    def test_rooms_listing_and_empty_room_goes_away(self):
        srv = self.start_server()
        c1, c2, c3 = self.crowd(srv, 3)
        c1.send("/rooms")
        c1.expect(re.compile(r"= 1 rooms?: lobby \(3\)"))
        c1.send("/join games")
        c1.expect("= you joined games (1 here)")
        for c in (c2, c3):
            c.expect("< guest1 went to games")
        c2.send("/join arcade")
        c2.expect("= you joined arcade (1 here)")
        c3.expect("< guest2 went to arcade")
        c3.send("/ROOMS")
        c3.expect("= 3 rooms: arcade (1), games (1), lobby (1)")
        c1.send("/join lobby")
        c1.expect("= you joined lobby (2 here)")
        c3.expect("> guest1 joined lobby")
        c3.send("/rooms")
        c3.expect("= 2 rooms: arcade (1), lobby (2)")
        c2.send("/join lobby")  # the last one leaves arcade
        c2.expect("= you joined lobby (3 here)")
        c1.expect("> guest2 joined lobby")
        c3.expect("> guest2 joined lobby")
        c1.send("/rooms")
        c1.expect(re.compile(r"= 1 rooms?: lobby \(3\)"))
        c2.send("/join arcade")
        c2.expect("= you joined arcade (1 here)")
        c1.expect("< guest2 went to arcade")
        c3.expect("< guest2 went to arcade")
        mark = srv.log.mark()
        c2.close()  # the last one in arcade disconnects
        srv.log.wait(r"disconnect \S+ guest2: ", start=mark)
        c1.send("/rooms")
        c1.expect(re.compile(r"= 1 rooms?: lobby \(2\)"))
        self.sync(c1, c3)


class CommandTest(ChatTestCase):
    def test_help(self):
        srv = self.start_server()
        c1, c2 = self.crowd(srv, 2)
        c1.send("/help")
        c1.send(SYNC)
        lines = c1.read_until("^" + re.escape(SYNC_REPLY) + "$")[:-1]
        self.assertGreaterEqual(len(lines), 2, lines)
        for line in lines:
            self.assertTrue(line.startswith("= "), line)
        text = "\n".join(lines)
        for cmd in ["/nick", "/who", "/msg", "/me", "/join", "/rooms", "/help", "/quit"]:
            self.assertIn(cmd, text)
        self.sync(c2)

    def test_unknown_command(self):
        srv = self.start_server()
        c1, c2 = self.crowd(srv, 2)
        c1.send("/foo")
        c1.expect("! unknown command: /foo (try /help)")
        c1.send("/foo bar baz")
        c1.expect("! unknown command: /foo (try /help)")
        self.sync(c2)


class LeavingTest(ChatTestCase):
    def test_quit_without_reason(self):
        srv = self.start_server()
        c1, c2 = self.crowd(srv, 2)
        c1.send("/quit")
        c1.expect("= bye")
        self.assertEqual(c1.expect_closed(), [])
        c2.expect("< guest1 left (1 online)")

    def test_quit_with_reason(self):
        srv = self.start_server()
        c1, c2, c3 = self.crowd(srv, 3)
        c1.send("/QUIT off to lunch")
        c1.expect("= bye")
        self.assertEqual(c1.expect_closed(), [])
        c2.expect("< guest1 left: off to lunch (2 online)")
        c3.expect("< guest1 left: off to lunch (2 online)")

    def test_lines_after_quit_are_not_relayed(self):
        srv = self.start_server()
        c1, c2 = self.crowd(srv, 2)
        c1.send_raw(b"/quit bye all\nthis must not be relayed\n")
        c1.expect("= bye")
        c2.expect("< guest1 left: bye all (1 online)")
        self.sync(c2)

    def test_half_close_still_gets_the_replies_it_is_owed(self):
        """A client that sends its last lines and its EOF together (nc -N, a
        script piping into the socket) is answered before it is closed:
        chatd is stopped meanwhile, so that it reads both in one go."""
        srv = self.start_server()
        c1, c2 = self.crowd(srv, 2)
        srv.signal(signal.SIGSTOP)
        try:
            c1.send_raw(b"/who\nbye all\n")
            c1.sock.shutdown(socket.SHUT_WR)
        finally:
            srv.signal(signal.SIGCONT)
        self.assertEqual(c1.expect_closed(), ["= 2 in lobby: guest1 guest2"])
        c2.expect("[guest1] bye all")
        c2.expect("< guest1 left (1 online)")
        srv.log.wait(r"disconnect \S+ guest1: closed ")

    def test_abrupt_disconnect(self):
        srv = self.start_server()
        c1, c2, c3 = self.crowd(srv, 3)
        c1.close()
        c2.expect("< guest1 left (2 online)")
        c3.expect("< guest1 left (2 online)")

    def test_leaving_from_another_room(self):
        srv = self.start_server()
        c1, c2, c3 = self.crowd(srv, 3)
        c1.send("/join games")
        c1.expect("= you joined games (1 here)")
        for c in (c2, c3):
            c.expect("< guest1 went to games")
        c2.send("/join games")
        c2.expect("= you joined games (2 here)")
        c3.expect("< guest2 went to games")
        c1.expect("> guest2 joined games")
        c1.close()
        c2.expect("< guest1 left (2 online)")
        self.sync(c3)  # only the room it was in sees it leave


class ServerFullTest(ChatTestCase):
    def test_server_full(self):
        srv = self.start_server({"server": {"max_clients": "5"}})
        clients = self.crowd(srv, 5)
        extra = Client(srv.port)
        self.addCleanup(extra.close)
        self.assertEqual(extra.expect_closed(), ["! server full (max 5 clients)"])
        self.assertEqual(extra.buf, b"")
        extra.close()
        for c in clients:
            c.send("/who")
            c.expect("= 5 in lobby: guest1 guest2 guest3 guest4 guest5")
        # After one leaves, a newcomer gets in.
        clients[4].close()
        for c in clients[:4]:
            c.expect("< guest5 left (4 online)")
        late = Client(srv.port)
        self.addCleanup(late.close)
        _, nick, online = late.welcome()
        self.assertEqual(online, 5)
        for c in clients[:4]:
            c.expect("> %s entered (5 online)" % nick)
        late.send("made it")
        for c in clients[:4]:
            c.expect("[%s] made it" % nick)


class FramingTest(ChatTestCase):
    def small_line_server(self):
        srv = self.start_server({"limits": {"max_line": "64"}})
        return srv, self.crowd(srv, 2)

    def test_line_too_long(self):
        srv, (c1, c2) = self.small_line_server()
        c1.send("x" * 65)
        c1.expect("! line too long (max 64 bytes)")
        c1.send("next line")
        c2.expect("[guest1] next line")
        self.sync(c1, c2)  # the long line was dropped whole

    def test_line_of_exactly_max_line(self):
        srv, (c1, c2) = self.small_line_server()
        c1.send("b" * 64)
        c2.expect("[guest1] " + "b" * 64)
        c1.send_raw(b"c" * 64 + b"\r\n")  # the \r does not count
        c2.expect("[guest1] " + "c" * 64)
        c1.send("/nick " + "d" * 58)  # commands count whole too: 64 bytes
        c1.expect(invalid_name("nick"))
        self.sync(c1, c2)

    def test_huge_line_in_chunks(self):
        srv, (c1, c2) = self.small_line_server()
        chunk = b"z" * 65536
        for _ in range(16):  # 1 MiB, no newline
            c1.send_raw(chunk)
        c1.send_raw(b"\nstill here\n")
        c2.expect("[guest1] still here")
        c1.send(SYNC)
        self.assertEqual(c1.read_until("^" + re.escape(SYNC_REPLY) + "$"),
                         ["! line too long (max 64 bytes)", SYNC_REPLY])
        self.sync(c2)

    def test_crlf_line_endings(self):
        srv = self.start_server()
        c1, c2 = self.crowd(srv, 2)
        c1.send_raw(b"hello from telnet\r\n")
        c2.expect("[guest1] hello from telnet")
        c1.send_raw(b"/nick telnetuser\r\n")
        c1.expect("* guest1 is now known as telnetuser")
        c2.expect("* guest1 is now known as telnetuser")
        c1.send_raw(b"/who\r\n")
        c1.expect("= 2 in lobby: guest2 telnetuser")
        c1.send_raw(b"/join games\r\n")
        c1.expect("= you joined games (1 here)")
        c2.expect("< telnetuser went to games")

    def test_control_characters_removed(self):
        srv = self.start_server()
        c1, c2 = self.crowd(srv, 2)
        cases = [
            (b"a\x01b\x07c\x08d\x7fe", "abcde"),
            (b"\x1b[31mred\x1b[0m text", "[31mred[0m text"),            # CSI colour
            (b"\x1b]0;pwned\x07title", "]0;pwnedtitle"),                # OSC title
            (b"x\xc2\x9b2Jy", "x2Jy"),                                  # C1 CSI, U+009B
            (b"col1\tcol2", "col1\tcol2"),                              # TAB is kept
            (b"bell\x1b\x1b\x1bend", "bellend"),
        ]
        for raw, want in cases:
            c1.send_raw(raw + b"\n")
            line = c2.expect("[guest1] " + want)
            self.assertIsNone(re.search(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]", line), repr(line))
        c1.send_raw(b"/me \x1b[2Jclears\x07 the screen\n")
        c2.expect("* guest1 [2Jclears the screen")
        c1.send_raw(b"/msg guest2 \x1b[5mblink\n")
        c2.expect("[guest1 -> guest2] [5mblink")
        c1.expect("[guest1 -> guest2] [5mblink")

    def test_invalid_utf8_becomes_replacement_character(self):
        srv = self.start_server()
        c1, c2 = self.crowd(srv, 2)
        cases = [
            (b"caf\xe9 au lait", "caf\ufffd au lait"),
            (b"\x80stray", "\ufffdstray"),
            (b"x\xffy", "x\ufffdy"),
            ("héllo ✓ 😀 ok".encode(), "héllo ✓ 😀 ok"),  # valid UTF-8 untouched
        ]
        for raw, want in cases:
            c1.send_raw(raw + b"\n")
            c2.expect("[guest1] " + want)  # read_line decodes strictly

    def test_invalid_utf8_never_reaches_others(self):
        srv = self.start_server()
        c1, c2 = self.crowd(srv, 2)
        junk = [b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82", b"\xf0\x9f\x98"]
        for raw in junk:
            c1.send_raw(b"<" + raw + b">\n")
            line = c2.read_line()  # raises on invalid UTF-8
            self.assertRegex(line, "^\\[guest1\\] <\ufffd+>$")

    def test_blank_lines_ignored(self):
        srv = self.start_server()
        c1, c2 = self.crowd(srv, 2)
        c1.send_raw(b"\n   \n\t\t\n \t \n\r\n  \r\n")
        c1.send("real line")
        c2.expect("[guest1] real line")
        self.sync(c1, c2)

    def test_line_split_across_many_writes(self):
        srv = self.start_server()
        c1, c2 = self.crowd(srv, 2)
        c1.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for b in "sent one byte at a time ✓\n".encode():
            c1.send_raw(bytes([b]))
        c2.expect("[guest1] sent one byte at a time ✓")
        for b in b"/who\r\n":
            c1.send_raw(bytes([b]))
        c1.expect("= 2 in lobby: guest1 guest2")

    def test_several_lines_in_one_write(self):
        srv = self.start_server()
        c1, c2 = self.crowd(srv, 2)
        c1.send_raw(b"one\ntwo\r\nthree\n/me four\n//five\n")
        for want in ["[guest1] one", "[guest1] two", "[guest1] three", "* guest1 four",
                     "[guest1] /five"]:
            c2.expect(want)
        self.sync(c1, c2)


@unittest.skipUnless(have_ipv6_loopback(), "IPv6 loopback ::1 is not available here")
class IPv6Test(ChatTestCase):
    def test_bind_ipv6_loopback(self):
        srv = self.start_server({"server": {"bind": "::1"}})
        c1 = self.connect(srv, host="::1")
        self.assertEqual(c1.nick, "guest1")
        srv.log.wait(r"connect from \[::1\]:\d+ as guest1 \(1 online\)")
        c2 = self.connect(srv, [c1], host="::1")
        c2.send("over IPv6")
        c1.expect("[guest2] over IPv6")

    def test_bind_any_serves_ipv4_and_ipv6(self):
        srv = self.start_server({"server": {"bind": "::"}})
        v4 = self.connect(srv, host="127.0.0.1")
        v6 = self.connect(srv, [v4], host="::1")
        v4.send("hello from IPv4")
        v6.expect("[guest1] hello from IPv4")
        v6.send("hello from IPv6")
        v4.expect("[guest2] hello from IPv6")


if __name__ == "__main__":
    chatdtest.main()
