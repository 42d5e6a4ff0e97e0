#!/usr/bin/env python3
"""[metrics] listen: /metrics in the Prometheus text format, checked by
promtool (Debian's prometheus package), and its counters moving as real
clients connect, talk and go."""
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from chatdtest import TIMEOUT, ChatdTestCase, Client, main  # noqa: E402
from test_irc import Irc  # noqa: E402

SAMPLE = re.compile(r'^([a-z_]+)(\{[^}]*\})? (\S+)$')


def parse(text):
    """{'name{labels}': value} of every sample."""
    samples = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        m = SAMPLE.match(line)
        assert m, "not a sample: %r" % line
        samples[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return samples


class MetricsTest(ChatdTestCase):
    def setUp(self):
        self.srv = self.start_irc_server({"metrics": {"listen": "127.0.0.1:0"},
                                          "server": {"max_clients": "3"}})
        port = self.srv.log.wait(r"metrics: http://127\.0\.0\.1:(\d+)/metrics").group(1)
        self.url = "http://127.0.0.1:%s/metrics" % port

    def scrape(self):
        with urllib.request.urlopen(self.url, timeout=TIMEOUT) as r:
            self.assertEqual(r.status, 200)
            self.assertEqual(r.headers["Content-Type"], "text/plain; version=0.0.4; charset=utf-8")
            return r.read().decode()

    def test_promtool_accepts_it(self):
        promtool = shutil.which("promtool")
        if not promtool:
            self.skipTest("promtool is not installed (apt-get install prometheus)")
        a = self.connect(self.srv)
        a.send("hello")
        r = subprocess.run([promtool, "check", "metrics"], input=self.scrape(), text=True,
                           capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stdout + r.stderr, "")

    def test_counters_move(self):
        before = parse(self.scrape())
        self.assertEqual(before['chatd_info{version="%s"}' % self.version()], 1)
        self.assertEqual(before["chatd_online"], 0)
        a = self.connect(self.srv)
        b = self.connect(self.srv, [a])
        irc = Irc(self.srv.irc_port, "ircer")
        self.addCleanup(irc.close)
        irc.send("JOIN #lobby")
        irc.until("366")
        a.expect("> ircer joined lobby")
        b.expect("> ircer joined lobby")
        for i in range(5):
            a.send("line %d" % i)
        for i in range(5):
            b.expect("[%s] line %d" % (a.nick, i))
            m = irc.until("PRIVMSG")[-1]
            self.assertEqual(m.params[-1], "line %d" % i)
        irc.send("PRIVMSG %s :psst" % b.nick)
        b.expect("[ircer -> %s] psst" % b.nick)
        # A fourth is over max_clients.
        extra = Client(self.srv.port)
        self.addCleanup(extra.close)
        extra.expect_closed()
        now = parse(self.scrape())
        self.assertEqual(now['chatd_connections{protocol="line",transport="tcp"}'], 2)
        self.assertEqual(now['chatd_connections{protocol="irc",transport="tcp"}'], 1)
        self.assertEqual(now['chatd_connections_accepted_total{protocol="line",transport="tcp"}'], 2)
        self.assertEqual(now['chatd_connections_rejected_total{reason="full"}'], 1)
        self.assertEqual(now["chatd_online"], 3)
        self.assertEqual(now["chatd_online_max"], 3)
        self.assertEqual(now["chatd_rooms"], 1)
        self.assertEqual(now["chatd_messages_total"], 6)
        # b's arrival to a, ircer's to a and b, each room line to two
        # others, the private one to one.
        self.assertEqual(now["chatd_deliveries_total"], 1 + 2 + 5 * 2 + 1)
        self.assertGreaterEqual(now["chatd_lines_received_total"],
                                before["chatd_lines_received_total"] + 6)
        self.assertGreater(now["chatd_received_bytes_total"], before["chatd_received_bytes_total"])
        self.assertGreater(now["chatd_sent_bytes_total"], before["chatd_sent_bytes_total"])
        loops = sum(v for k, v in now.items() if k.startswith("chatd_worker_loops_total"))
        self.assertGreater(loops, 0)
        self.assertEqual(sum(v for k, v in now.items() if k.startswith("chatd_worker_connections")),
                         3)
        a.send("/quit")
        a.expect_closed()
        self.srv.ctl("kick", b.nick)
        b.expect_closed()
        self.srv.ctl("reload")
        later = parse(self.scrape())
        self.assertEqual(later['chatd_disconnects_total{reason="quit"}'], 1)
        self.assertEqual(later['chatd_disconnects_total{reason="kicked"}'], 1)
        self.assertEqual(later['chatd_reloads_total{result="ok"}'], 1)
        self.assertEqual(later["chatd_online"], 1)
        # A connection is open until both sides closed it.
        deadline = time.monotonic() + TIMEOUT
        while later['chatd_connections{protocol="line",transport="tcp"}'] != 0:
            self.assertLess(time.monotonic(), deadline, "the line connections stay open")
            time.sleep(0.05)
            later = parse(self.scrape())

    def version(self):
        return re.search(r"chatd (\S+) starting", self.srv.log.text()).group(1)

    def test_other_paths_and_methods(self):
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(self.url.replace("/metrics", "/"), timeout=TIMEOUT)
        self.assertEqual(e.exception.code, 404)
        req = urllib.request.Request(self.url, method="POST", data=b"x")
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=TIMEOUT)
        self.assertIn(e.exception.code, (400, 405))
        head = urllib.request.Request(self.url, method="HEAD")
        with urllib.request.urlopen(head, timeout=TIMEOUT) as r:
            self.assertEqual(r.read(), b"")
        self.assertIn("chatd_online", self.scrape())


class MetricsOffTest(ChatdTestCase):
    def test_off_by_default(self):
        srv = self.start_server()
        self.assertNotIn("metrics:", srv.log.text())


if __name__ == "__main__":
    main()
