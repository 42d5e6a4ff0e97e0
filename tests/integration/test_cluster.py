#!/usr/bin/env python3
"""Several chatd nodes sharing rooms through NATS JetStream ([cluster]):
real nats-server processes on loopback ports, started, stopped, killed and
restarted here; chatd nodes on their own ports, each with its database.

What is checked: a line said on one node reaches the room's members on the
others, in both protocols; many senders on different nodes, and every
receiver on every node sees one and the same order; NATS going away and
coming back (each node's users chat among themselves meanwhile, are told
so once, and the lines said on either side arrive once afterwards); a NATS
cluster of three that loses one server goes on; accounts and bans shared,
those a node had alone included; a room's topic, modes and operators the
same on every node, one started later too."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from chatdtest import *  # noqa: E402,F401,F403
from natsserver import NatsServer, available  # noqa: E402
from test_irc import Irc  # noqa: E402

DOWN = "the other servers of this network cannot be reached"
BACK = "the other servers of this network are back"
# How long a node may take to notice NATS is back and read the stream
# again (reconnecting every 0.5 s; a restarted server's consumer is made
# again at once).
RECOVERY = 30
# What /identify is answered.
ANSWERS = r"^(= you are logged in as |! wrong password|! \S+ is not registered|! too many failed)"


class ClusterTestCase(ChatdTestCase):
    CLEAN_EXIT = True

    def setUp(self):
        if not available():
            self.skipTest("nats-server is not installed (apt-get install nats-server)")

    def nats(self, **kw):
        ns = NatsServer(**kw)
        self.addCleanup(ns.close)
        return ns.start()

    def node(self, name, urls, replicas=1, config=None, clean_exit=True):
        """A chatd node speaking both protocols, connected to the stream;
        checked for a clean exit at cleanup unless the test kills it."""
        cfg = {"cluster": {"nats": ",".join(urls), "node": name, "replicas": str(replicas)}}
        cfg.update(config or {})
        srv = irc_server(cfg)
        self.addCleanup(srv.close)
        if clean_exit:
            self.addCleanup(self.check_clean_exit, srv)
        srv.log.wait(r"cluster: node %s is connected to NATS" % name, timeout=RECOVERY)
        return srv

    def two_nodes(self):
        """A nats-server and the nodes a and b on it."""
        ns = self.nats()
        return ns, self.node("a", [ns.url]), self.node("b", [ns.url])

    def line_client(self, srv, nick):
        c = self.connect(srv)
        self.take_nick(c, nick)
        return c

    def take_nick(self, c, nick):
        """c becomes nick, asking again while the node still has it taken or
        banned (what another node changed reaches this one a little later)."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            c.send("/nick " + nick)
            line = c.read_until(r"^(\* %s is now known as %s|! nick (taken|banned on this server): "
                                r"%s)$" % (re.escape(c.nick), nick, nick))[-1]
            if line.startswith("* "):
                c.nick = nick
                return
            self.assertLess(time.monotonic(), deadline, "%s stays refused: %s" % (nick, line))
            time.sleep(0.1)

    def until_listed(self, c, nick):
        """Asks /who until nick is among those in c's room (another node's
        member is known once its node's record is read from the stream)."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            c.send("/who")
            listed = c.read_until(r"^= \d+ in ")[-1]
            if nick in [n.lstrip("@+") for n in listed.split(":", 1)[1].split()]:
                return
            self.assertLess(time.monotonic(), deadline, "%s never listed" % nick)
            time.sleep(0.1)

    def no_more_chat(self, c, seconds):
        """No chat line comes to c for that long (arrivals and departures
        may)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                line = c.read_line(timeout=max(0.01, end - time.monotonic()))
            except AssertionError:
                return
            self.assertIsNone(re.match(r"\[[^\]]+\] ", line), "a line more: %r" % line)

    def hears(self, c, nick, text, timeout=TIMEOUT):
        """The next chat line c reads (past arrivals, departures and
        renames) is nick's text."""
        self.assertEqual(self.said_lines(c, 1, timeout), [(nick, text)])

    def irc_client(self, srv, nick, channel="#lobby"):
        c = Irc(srv.irc_port, nick)
        self.addCleanup(c.sock.close)
        c.send("JOIN " + channel)
        c.until("366")
        return c

    def said_lines(self, c, n, timeout=TIMEOUT):
        """The next n chat lines a line client reads, as (nick, text)."""
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < n:
            line = c.read_line(timeout=max(0.1, deadline - time.monotonic()))
            m = re.match(r"\[([^\]]+)\] (.*)", line)
            if m:
                got.append((m.group(1), m.group(2)))
        return got

    def irc_said(self, c, n, timeout=TIMEOUT):
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < n:
            m = c.msg(timeout=max(0.1, deadline - time.monotonic()))
            if m.command == "PRIVMSG":
                got.append((m.source.split("!")[0], m.params[-1]))
        return got


class CrossNodeTest(ClusterTestCase):
    def test_lines_reach_every_node_in_both_protocols(self):
        ns = self.nats()
        a, b, c = (self.node(n, [ns.url]) for n in ("a", "b", "c"))
        alice = self.line_client(a, "alice")
        bob = self.irc_client(b, "bob")
        carol = self.line_client(c, "carol")

        alice.send("hello from a")
        self.assertEqual(self.irc_said(bob, 1), [("alice", "hello from a")])
        self.hears(carol, "alice", "hello from a")

        bob.send("PRIVMSG #lobby :hello from b")
        self.hears(alice, "bob", "hello from b")
        self.hears(carol, "bob", "hello from b")

        carol.send("/me waves")
        alice.read_until(r"^\* carol waves$")
        m = bob.until("PRIVMSG")[-1]
        self.assertEqual((m.command, m.params), ("PRIVMSG", ["#lobby", "\x01ACTION waves\x01"]))
        # Nobody hears their own line back from the stream.
        alice.expect_silence(0.3)
        carol.expect_silence(0.1)

    def test_one_order_for_every_receiver(self):
        ns = self.nats()
        nodes = [self.node(n, [ns.url]) for n in ("a", "b", "c")]
        senders = [self.line_client(srv, "s%s%d" % (name, k))
                   for srv, name in zip(nodes, "abc") for k in (1, 2)]
        receivers = [self.line_client(srv, "r" + name) for srv, name in zip(nodes, "abc")]
        irc = self.irc_client(nodes[1], "ircr")
        per_sender = 150
        for s in senders:
            s.send_raw("".join("%s %d\n" % (s.nick, i) for i in range(per_sender)).encode())
        total = per_sender * len(senders)
        seen = [self.said_lines(r, total, timeout=60) for r in receivers]
        seen.append(self.irc_said(irc, total, timeout=60))
        for got in seen:
            self.assertEqual(len(set(got)), total, "a line twice")
            for s in senders:
                mine = [int(t.split()[1]) for n, t in got if n == s.nick]
                self.assertEqual(mine, list(range(per_sender)), "%s's lines" % s.nick)
        for got in seen[1:]:
            self.assertEqual(got, seen[0], "two receivers saw different orders")
        for r in receivers:
            r.expect_silence(0.2)

    def test_history_on_joining_has_other_nodes_lines(self):
        ns = self.nats()
        history = {"history": {"keep": "100"}}
        a = self.node("a", [ns.url], config=history)
        b = self.node("b", [ns.url], config=history)
        alice = self.irc_client(a, "alice", "#lobby,#tea")
        watcher = self.line_client(b, "watcher")
        for i in range(3):
            alice.send("PRIVMSG #tea :tea %d" % i)
        # Said in a room nobody on b is in, the lines are kept there all the
        # same: once this later line is in, they are too (one stream, one
        # order).
        alice.send("PRIVMSG #lobby :done")
        self.hears(watcher, "alice", "done")
        watcher.send("/join tea")
        watcher.read_until(r"^= you joined tea \(\d+ here\)$")
        watcher.expect("= the last 3 lines in tea:")
        for i in range(3):
            watcher.expect(re.compile(r"~ \S+ \[alice\] tea %d" % i))


    def test_a_restarted_node_catches_up_from_the_stream(self):
        ns = self.nats()
        folder = self.enterContext(tempfile.TemporaryDirectory(prefix="chatd-node-"))
        history = {"history": {"keep": "100"}}
        b_config = dict(history, store={"path": os.path.join(folder, "b.db")})
        a = self.node("a", [ns.url], config=history)
        b = self.node("b", [ns.url], config=b_config)
        alice = self.line_client(a, "alice")
        watcher = self.line_client(b, "watcher")
        alice.send("before")
        self.hears(watcher, "alice", "before")
        watcher.close()
        self.assertEqual(b.stop(), 0)
        for i in range(3):
            alice.send("while b was away %d" % i)
        alice.send("/who")  # the lines are in the stream once a answered
        alice.read_until(r"^= \d+ in lobby")
        b = self.node("b", [ns.url], config=b_config)
        b.log.wait(r"cluster: reading the stream from \d+")
        reader = self.connect(b)
        wanted = ["before"] + ["while b was away %d" % i for i in range(3)]
        deadline = time.monotonic() + TIMEOUT
        while True:
            reader.send("/history 100")
            head = reader.read_until(r"^= (the last|no lines)")[-1]
            n = int(re.search(r"last (\d+) lines", head).group(1)) if "lines" in head \
                else (1 if "last line" in head else 0)
            said = [re.sub(r"^~ \S+ \[alice\] ", "", line)
                    for line in reader.read_lines(n) if "[alice]" in line]
            if said == wanted or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual(said, wanted)


class OperatingTest(ClusterTestCase):
    def test_status_and_metrics_show_the_cluster(self):
        ns = self.nats()
        a = self.node("a", [ns.url], config={"metrics": {"listen": "127.0.0.1:0"}})
        b = self.node("b", [ns.url])
        a.log.wait(r"cluster: node b .* is there")
        alice = self.line_client(a, "alice")
        bob = self.line_client(b, "bob")
        alice.send("hi")
        self.hears(bob, "alice", "hi")
        r = a.ctl("status")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"cluster: +node a, reaches NATS, 1 other node heard "
                                   r"\(\d+ messages published, 0 lost, \d+ read\)")
        port = a.log.wait(r"metrics: http://127\.0\.0\.1:(\d+)/metrics").group(1)
        with urllib.request.urlopen("http://127.0.0.1:%s/metrics" % port, timeout=TIMEOUT) as f:
            text = f.read().decode()
        samples = dict(line.rsplit(" ", 1) for line in text.splitlines()
                       if line and not line.startswith("#"))
        self.assertEqual(samples["chatd_cluster_up"], "1")
        self.assertEqual(samples["chatd_cluster_nodes"], "1")
        self.assertGreater(int(samples["chatd_cluster_published_total"]), 0)
        self.assertGreater(int(samples["chatd_cluster_received_total"]), 0)
        promtool = shutil.which("promtool")
        if promtool:
            r = subprocess.run([promtool, "check", "metrics"], input=text, text=True,
                               capture_output=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


class SecuredNatsTest(ClusterTestCase):
    def test_tls_and_a_password(self):
        if "-fsanitize=thread" in os.environ.get("CHATD_SANITIZERS", ""):
            # nats.c reads and writes one OpenSSL connection from two of its
            # threads (its reader, and whoever publishes): ThreadSanitizer
            # reports that race in libnats and libssl, not in chatd.
            self.skipTest("ThreadSanitizer build: nats.c's TLS reading and writing race")
        from test_tls import Certs
        certs = Certs()
        self.addCleanup(certs.tmp.cleanup)
        ns = self.nats(tls=certs.leaf, user=("chatd", "s3cret"))
        a = self.node("a", [ns.url], config={"cluster": {"nats": ns.url, "node": "a", "ca": certs.ca}})
        b = self.node("b", [ns.url], config={"cluster": {"nats": ns.url, "node": "b", "ca": certs.ca}})
        alice = self.line_client(a, "alice")
        bob = self.line_client(b, "bob")
        alice.send("over TLS")
        self.hears(bob, "alice", "over TLS")
        # A wrong password: the node never reaches NATS, and says so.
        wrong = ns.url.replace("s3cret", "wrong")
        srv = irc_server({"cluster": {"nats": wrong, "node": "c", "ca": certs.ca}})
        self.addCleanup(srv.close)
        srv.log.wait(r"cluster: node c cannot reach NATS: .+ \(trying again\)", timeout=RECOVERY)
        self.assertIsNone(re.search(r"node c is connected", srv.log.text()))


class PresenceTest(ClusterTestCase):
    def test_arrivals_departures_and_lists_across_nodes(self):
        ns, a, b = self.two_nodes()
        alice = self.line_client(a, "alice")
        bob = Irc(b.irc_port, "bob")
        self.addCleanup(bob.sock.close)
        bob.send("JOIN #lobby")
        bob.until("366")
        alice.read_until(r"^> bob joined lobby$")
        # NAMES has alice as soon as b has read her arrival from the stream.
        deadline = time.monotonic() + TIMEOUT
        while True:
            bob.send("NAMES #lobby")
            names = " ".join(m.params[-1] for m in bob.until("366") if m.command == "353")
            if "alice" in names.split() or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual(sorted(names.replace("@", "").split()), ["alice", "bob"])
        # /who, WHO and LIST see the members of every node.
        alice.send("/who")
        who = "\n".join(alice.read_until(r"^= \d+ in lobby|bob"))
        self.assertIn("bob", who)
        bob.send("WHO #lobby")
        who = bob.until("315")
        self.assertEqual(sorted(m.params[5] for m in who if m.command == "352"), ["alice", "bob"])
        bob.send("LIST")
        listed = [m for m in bob.until("323") if m.command == "322"]
        self.assertEqual([(m.params[1], m.params[2]) for m in listed], [("#lobby", "2")])
        # Private messages both ways.
        bob.send("PRIVMSG alice :psst")
        alice.read_until(r"^\[bob -> alice\] psst$")
        alice.send("/msg bob hi bob")
        m = bob.until("PRIVMSG")[-1]
        self.assertEqual((m.source.split("!")[0], m.params), ("alice", ["bob", "hi bob"]))
        # A rename, a part and a quit are seen on the other node.
        bob.send("NICK robert")
        alice.read_until(r"^\* bob is now known as robert$")
        bob.send("PART #lobby :bye")
        alice.read_until(r"^< robert left lobby: bye$")
        bob.send("JOIN #lobby")
        alice.read_until(r"^> robert joined lobby$")
        bob.send("QUIT :gone")
        alice.read_until(r"^< robert left: gone \(1 online\)$")
        # The nick is free again, on the other node too.
        alice.send("/nick robert")
        alice.read_until(r"^\* alice is now known as robert$")

    def test_nick_collision_across_nodes(self):
        ns, a, b = self.two_nodes()
        # Known here already: refused at once.
        alice = self.line_client(a, "alice")
        other = self.connect(b)
        self.until_listed(other, "alice")
        other.send("/nick alice")
        other.expect("! nick taken: alice")
        # Taken on both at once: one keeps it, the other is renamed and told.
        z1 = Irc(a.irc_port, "zed%d" % os.getpid())
        z2 = Irc(b.irc_port, "zz%d" % os.getpid())
        for c in (z1, z2):
            self.addCleanup(c.sock.close)
        nick = "zed"
        z1.send("NICK " + nick)
        z2.send("NICK " + nick)
        # Each node took it (433 when the other's had reached it first).
        took = [c for c in (z1, z2) if c.until("NICK", "433")[-1].command == "NICK"]
        self.assertGreaterEqual(len(took), 1)
        # The bucket decides within a few seconds; one refused there is
        # told and renamed.
        renamed = []
        for c in took:
            got = []
            end = time.monotonic() + 4
            while time.monotonic() < end:
                try:
                    got.append(c.msg(timeout=max(0.05, end - time.monotonic())))
                except AssertionError:
                    break
            told = [m for m in got if m.command == "NOTICE" and
                    "zed is taken on another server" in m.params[-1]]
            if told:
                self.assertEqual([m.command for m in got if m.command == "NICK"], ["NICK"])
                renamed.append(c)
        self.assertEqual(len(took) - len(renamed), 1, "exactly one keeps the nick")

    def test_kicks_reach_a_member_of_another_node(self):
        ns, a, b = self.two_nodes()
        alice = self.irc_client(a, "alice", "#ops")
        bob = self.irc_client(b, "bob", "#ops")
        m = alice.until("JOIN")[-1]
        self.assertEqual((m.source.split("!")[0], m.params[0]), ("bob", "#ops"))
        alice.send("KICK #ops bob :behave")
        m = bob.until("KICK")[-1]
        self.assertEqual((m.source.split("!")[0], m.params), ("alice", ["#ops", "bob", "behave"]))
        m = alice.until("KICK")[-1]
        self.assertEqual(m.params, ["#ops", "bob", "behave"])
        # And out of the chat, by an admin of the other node.
        r = a.ctl("kick", "bob", "enough")
        self.assertEqual(r.returncode, 0, r.stderr)
        m = bob.until("ERROR")[-1]
        self.assertIn("enough", m.params[-1])
        b.log.wait(r"kicked \S+ bob: .*enough.* on node a\)")

    def test_a_killed_node_s_users_leave_within_15_seconds(self):
        ns = self.nats()
        a = self.node("a", [ns.url])
        b = self.node("b", [ns.url], clean_exit=False)
        alice = self.line_client(a, "alice")
        bob = self.line_client(b, "bob")
        alice.read_until(r"^\* \S+ is now known as bob$")
        bob.send("hi")
        self.hears(alice, "bob", "hi")
        b.proc.kill()
        b.proc.wait()
        start = time.monotonic()
        alice.read_until(r"^< bob left: server b lost \(1 online\)$", timeout=20)
        self.assertLess(time.monotonic() - start, 15)
        alice.send("/nick bob")
        alice.read_until(r"^\* alice is now known as bob$")


class SharedTest(ClusterTestCase):
    """Accounts and bans, kept by every node from the cluster's buckets."""

    def register(self, srv, nick, password):
        c = self.line_client(srv, nick)
        c.send("/register " + password)
        c.read_until(r"^= registered %s: you are logged in$" % nick)
        c.close()

    def until_logged_in(self, srv, nick, password):
        """Logs in as nick on srv, asking again while srv has not copied
        the account (or its password) from the bucket yet."""
        c = self.line_client(srv, nick)
        deadline = time.monotonic() + TIMEOUT
        while True:
            c.send("/identify " + password)
            line = c.read_until(ANSWERS)[-1]
            if line.startswith("= ") or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        c.close()
        self.assertEqual(line, "= you are logged in as " + nick)

    def test_an_account_registered_on_one_node_works_on_another(self):
        ns, a, b = self.two_nodes()
        self.register(a, "alice", "a-good-password")
        a.log.wait(r"cluster: the nick alice is free again")
        # b copies it from the bucket: alice's password works there too.
        self.until_logged_in(b, "alice", "a-good-password")

    def test_a_name_is_registered_once_in_the_cluster(self):
        ns, a, b = self.two_nodes()
        self.register(a, "carol", "a-good-password")
        a.log.wait(r"cluster: the nick carol is free again")
        # Whether or not b has copied it yet: the bucket knows the name.
        c2 = self.line_client(b, "carol")
        c2.send("/register another-password")
        c2.read_until(r"^! carol is registered already: /identify PASSWORD$")

    def test_a_ban_set_on_one_node_holds_on_another(self):
        ns, a, b = self.two_nodes()
        spammer = self.line_client(b, "SpamKing")
        r = a.ctl("ban", "add", "spam*", "no spam")
        self.assertEqual(r.returncode, 0, r.stderr)
        spammer.read_until(r"^! banned: no spam")
        b.log.wait(r"ban of spam\* set by another node")
        other = self.connect(b)
        other.send("/nick spammer")
        other.read_until(r"^! nick banned on this server: spammer$")
        r = a.ctl("ban", "del", "spam*")
        self.assertEqual(r.returncode, 0, r.stderr)
        b.log.wait(r"ban of spam\* lifted by another node")
        self.take_nick(other, "spammer")


    def until_accounts(self, srv, names):
        """Asks srv's account list until it is names (what another node
        changed reaches srv a little later)."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            r = srv.ctl("account", "list", json_out=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            listed = [a["name"] for a in json.loads(r.stdout)["accounts"]]
            if listed == names:
                return
            self.assertLess(time.monotonic(), deadline, "accounts: %r" % listed)
            time.sleep(0.1)

    def test_what_a_node_had_alone_is_shared_when_it_joins(self):
        folder = self.enterContext(tempfile.TemporaryDirectory(prefix="chatd-node-"))
        a_store = {"store": {"path": os.path.join(folder, "a.db")}}
        # a, alone: two accounts and a ban.
        alone = irc_server(a_store)
        self.addCleanup(alone.close)
        self.register(alone, "dora", "doras-password")
        self.register(alone, "erin", "erins-old-password")
        r = alone.ctl("ban", "add", "troll*", "no trolls")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(alone.stop(), 0)
        # The cluster has an erin of its own already.
        ns = self.nats()
        b = self.node("b", [ns.url])
        self.register(b, "erin", "erins-cluster-password")
        b.log.wait(r"cluster: the nick erin is free again")
        a = self.node("a", [ns.url], config=a_store)
        a.log.wait(r"cluster: the account dora this node had is shared with the other nodes")
        a.log.wait(r"cluster: the ban of troll\* this node had is shared with the other nodes")
        # a's own account and ban hold on b; the cluster's erin wins on a.
        self.until_accounts(b, ["dora", "erin"])
        self.until_logged_in(b, "dora", "doras-password")
        b.log.wait(r"ban of troll\* set by another node")
        troll = self.connect(b)
        troll.send("/nick trollface")
        troll.read_until(r"^! nick banned on this server: trollface$")
        a.log.wait(r"cluster: the account erin differs on the other nodes: theirs is kept")
        self.until_logged_in(a, "erin", "erins-cluster-password")
        # An account deleted on b while a was away does not come back
        # when a offers it again.
        self.assertEqual(a.stop(), 0)
        r = b.ctl("account", "del", "dora")
        self.assertEqual(r.returncode, 0, r.stderr)
        a = self.node("a", [ns.url], config=a_store)
        a.log.wait(r"cluster: the account dora was deleted on another node: not shared")
        self.until_accounts(a, ["erin"])
        self.until_accounts(b, ["erin"])
        self.until_logged_in(a, "erin", "erins-cluster-password")


class RoomStateTest(ClusterTestCase):
    """A room's topic, modes and operators: decided on one node, made on
    every node in the stream's order."""

    def in_tea(self, srv, nick):
        c = self.line_client(srv, nick)
        c.send("/join tea")
        c.read_until(r"^= you joined tea")
        return c

    def until_in_room(self, srv, room, nicks):
        """Asks srv who is in room until it has all of nicks (members of
        other nodes come with their nodes' records)."""
        deadline = time.monotonic() + TIMEOUT
        while not all(re.search(r"\b%s\b" % n, srv.ctl("who", room).stdout) for n in nicks):
            self.assertLess(time.monotonic(), deadline, "%s never all in %s" % (nicks, room))
            time.sleep(0.1)

    def test_topic_modes_and_operators_hold_on_every_node(self):
        ns, a, b = self.two_nodes()
        alice = self.in_tea(a, "alice")
        watcher = self.in_tea(b, "watcher")
        self.until_listed(watcher, "alice")
        bob = self.irc_client(b, "bob", "#tea")
        # alice made the room: its operator on both nodes, bob is not.
        bob.send("NAMES #tea")
        names = bob.until("353")[-1].params[-1].split()
        self.assertIn("@alice", names)
        self.assertIn("bob", names)

        alice.send("/topic Tea time")
        for c in (alice, watcher):
            c.read_until(r"^\* alice set the topic of tea: Tea time$")
        m = bob.until("TOPIC")[-1]
        self.assertEqual((m.source.split("!")[0], m.params), ("alice", ["#tea", "Tea time"]))

        bob.send("TOPIC #tea :bob was here")  # +t, and bob no operator
        self.assertEqual(bob.until("482", "TOPIC")[-1].command, "482")

        self.until_in_room(a, "tea", ["bob"])
        alice.send("/op bob")
        watcher.read_until(r"^\* alice set mode \+o bob in tea$")
        m = bob.until("MODE")[-1]
        self.assertEqual(m.params, ["#tea", "+o", "bob"])
        bob.send("TOPIC #tea :bob was here")
        for c in (alice, watcher):
            c.read_until(r"^\* bob set the topic of tea: bob was here$")

        bob.send("MODE #tea -t")
        alice.read_until(r"^\* bob set mode -t in tea$")
        watcher.send("/topic anyone may")
        for c in (alice, watcher):
            c.read_until(r"^\* watcher set the topic of tea: anyone may$")
        alice.send("/topic")
        alice.read_until(r"anyone may")

    def test_a_topic_set_while_nats_is_away_reaches_the_others_after(self):
        ns, a, b = self.two_nodes()
        alice = self.in_tea(a, "alice")
        bob = self.in_tea(b, "bob")
        self.until_in_room(a, "tea", ["bob"])
        ns.stop()
        for c in (alice, bob):
            c.read_until(re.escape(DOWN))
        alice.send("/topic made alone")  # made on a at once
        alice.read_until(r"^\* alice set the topic of tea: made alone$")
        ns.start()
        bob.read_until(r"^\* alice set the topic of tea: made alone$", timeout=RECOVERY)
        # Made on a already: not told there twice. bob's line comes after
        # the change in the stream, and so to alice.
        bob.send("after")
        seen = alice.read_until(r"^\[bob\] after$", timeout=RECOVERY)
        self.assertFalse([line for line in seen if "set the topic" in line], seen)

    def test_a_node_started_later_learns_them(self):
        ns, a, b = self.two_nodes()
        alice = self.in_tea(a, "alice")
        self.until_in_room(b, "tea", ["alice"])
        bob = self.irc_client(b, "bob", "#tea")
        bob.send("NAMES #tea")
        self.assertIn("@alice", bob.until("353")[-1].params[-1].split())
        alice.send("/topic Tea time")
        bob.until("TOPIC")
        self.until_in_room(a, "tea", ["bob"])
        alice.send("/op bob")
        bob.until("MODE")
        bob.send("MODE #tea -t")
        alice.read_until(r"^\* bob set mode -t in tea$")
        # c comes: it learns the members from their nodes, and the room
        # as they have it.
        c = self.node("c", [ns.url])
        self.until_in_room(c, "tea", ["alice", "bob"])
        carol = self.irc_client(c, "carol", "#tea")
        deadline = time.monotonic() + TIMEOUT
        while True:
            carol.send("TOPIC #tea")
            m = carol.until("331", "332")[-1]
            if m.command == "332" or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual(m.params[1:], ["#tea", "Tea time"])
        carol.send("NAMES #tea")
        names = carol.until("353")[-1].params[-1].split()
        self.assertEqual(sorted(names), ["@alice", "@bob", "carol"])
        carol.send("MODE #tea")
        self.assertEqual(carol.until("324")[-1].params[2], "+n")
        carol.send("TOPIC #tea :carol may too")  # -t
        alice.read_until(r"^\* carol set the topic of tea: carol may too$")


class NatsOutageTest(ClusterTestCase):
    def chat_and_notice(self, c, n, notice, timeout=RECOVERY):
        """The next n chat lines c reads, and the notice among them or
        before (the notice and the lines come by different paths)."""
        got, told = [], 0
        deadline = time.monotonic() + timeout
        while len(got) < n or not told:
            line = c.read_line(timeout=max(0.1, deadline - time.monotonic()))
            if notice in line:
                told += 1
            m = re.match(r"\[([^\]]+)\] (.*)", line)
            if m:
                got.append((m.group(1), m.group(2)))
        self.assertEqual(told, 1)
        return got

    def test_nats_restart_during_chat(self):
        ns, a, b = self.two_nodes()
        alice = self.line_client(a, "alice")
        anna = self.line_client(a, "anna")
        bob = self.line_client(b, "bob")
        alice.send("before")
        self.hears(anna, "alice", "before")
        self.hears(bob, "alice", "before")

        ns.stop()
        for c in (alice, anna, bob):
            c.read_until(re.escape(DOWN))
        # Each node's users chat among themselves meanwhile.
        for i in range(5):
            alice.send("a %d" % i)
            bob.send("b %d" % i)
        self.assertEqual(self.said_lines(anna, 5), [("alice", "a %d" % i) for i in range(5)])
        alice.expect_silence(0.3)
        a.log.wait(r"cluster: node a lost NATS")

        ns.start()
        # Told once it is back; what the other side said meanwhile comes
        # once, in order; nothing said here comes twice.
        self.assertEqual(self.chat_and_notice(bob, 5, BACK),
                         [("alice", "a %d" % i) for i in range(5)])
        self.assertEqual(self.chat_and_notice(anna, 5, BACK),
                         [("bob", "b %d" % i) for i in range(5)])
        self.assertEqual(self.chat_and_notice(alice, 5, BACK),
                         [("bob", "b %d" % i) for i in range(5)])
        alice.send("after")
        self.hears(anna, "alice", "after")
        self.hears(bob, "alice", "after")
        # Nothing said comes twice. (Arrivals may: had the nodes not heard
        # each other for 10 s, a slow machine's, each lost the other's
        # users and tells them back now.)
        for c in (alice, anna, bob):
            self.no_more_chat(c, 0.5)
        a.log.wait(r"cluster: node a is connected to NATS")

    def test_nats_cluster_loses_a_server(self):
        ports = [free_port() for _ in range(3)]
        servers = [self.nats(name="n%d" % (i + 1), cluster_port=ports[i],
                             routes=[p for p in ports if p != ports[i]]) for i in range(3)]
        urls = [s.url for s in servers]
        a = self.node("a", urls, replicas=3)
        b = self.node("b", urls[::-1], replicas=3)
        alice = self.line_client(a, "alice")
        bob = self.line_client(b, "bob")
        alice.send("one")
        self.hears(bob, "alice", "one", timeout=RECOVERY)

        servers[0].kill()
        # Whichever server each node was on, the chat goes on: lines said
        # from now on arrive, once each, in order.
        for i in range(20):
            alice.send("a %d" % i)
            bob.send("b %d" % i)
            time.sleep(0.05)
        self.assertEqual(self.said_lines(bob, 20, timeout=RECOVERY),
                         [("alice", "a %d" % i) for i in range(20)])
        self.assertEqual(self.said_lines(alice, 20, timeout=RECOVERY),
                         [("bob", "b %d" % i) for i in range(20)])
        bob.expect_silence(0.3)


if __name__ == "__main__":
    main()
