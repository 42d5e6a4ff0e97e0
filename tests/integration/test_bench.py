#!/usr/bin/env python3
"""chatd-bench: its figures against a real chatd, and its error counts
against a relay that loses, duplicates and reorders lines on purpose (chatd
does none of that, so only such a relay can show that chatd-bench sees it).

Environment: CHATD_BENCH, the built load generator (default:
src/bench/chatd-bench next to the daemon)."""
import asyncio
import os
import re
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import chatdtest  # noqa: E402

BENCH = os.environ.get("CHATD_BENCH") or os.path.join(
    os.path.dirname(os.path.abspath(chatdtest.CHATD)), "bench", "chatd-bench")


def run_bench(port, *args, timeout=30):
    """Runs chatd-bench; returns (exit status, RESULT fields, output)."""
    proc = subprocess.run([BENCH, "--port", str(port)] + [str(a) for a in args],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    m = re.search(r"^RESULT (.*)$", proc.stdout, re.M)
    fields = dict(kv.split("=", 1) for kv in m.group(1).split()) if m else {}
    return proc.returncode, fields, proc.stdout + proc.stderr


class FaultyRelay:
    """A chat relay in chatd's line format that, for benchmark lines
    ("~B sender seq time"), does one of three things wrong: it never
    delivers sender 0's line `drop` to one recipient, delivers sender 0's
    line `dup` twice to everyone, and delivers sender 1's line `swap` to
    everyone after the line that follows it. Loopback only; stopped by
    close()."""

    def __init__(self, drop=None, dup=None, swap=None):
        self.drop, self.dup, self.swap = drop, dup, swap
        self.loop = asyncio.new_event_loop()
        self.started = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        if not self.started.wait(10):
            raise AssertionError("the relay did not start")

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.clients = []
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self._client, "127.0.0.1", 0))
        self.port = self.server.sockets[0].getsockname()[1]
        self.started.set()
        self.loop.run_forever()
        self.loop.close()

    async def _shutdown(self):
        self.server.close()
        for w in self.clients:
            w.close()
        await asyncio.gather(self.server.wait_closed(), *(w.wait_closed() for w in self.clients),
                             return_exceptions=True)
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.cancel()
        self.loop.stop()

    async def _client(self, reader, writer):
        index = len(self.clients)
        self.clients.append(writer)
        writer.write(b"> Connected to the chat server as b%d\n" % index)
        held = {}
        dropped = False
        while True:
            line = await reader.readline()
            if not line:
                break
            m = re.match(rb"~B (\d+) (\d+) ", line)
            key = (int(m.group(1)), int(m.group(2))) if m else None
            out = b"[b%d] " % index + line
            for other in self.clients:
                if other is writer:
                    continue
                if key == (0, self.drop) and not dropped:
                    dropped = True  # one recipient only
                    continue
                if key == (1, self.swap):
                    held[other] = out
                    continue
                other.write(out)
                if key == (0, self.dup):
                    other.write(out)
                if self.swap is not None and key == (1, self.swap + 1) and other in held:
                    other.write(held.pop(other))

    def close(self):
        asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop)
        self.thread.join(10)


class BenchTest(chatdtest.ChatdTestCase):

    def relay(self, **faults):
        r = FaultyRelay(**faults)
        self.addCleanup(r.close)
        return r

    def test_window_blast_against_chatd(self):
        srv = self.start_server({"limits": {"max_sendq": "16777216"}})
        status, r, out = run_bench(srv.port, "--clients", 12, "--senders", 3, "--messages", 300,
                                   "--window", 8, "--pid", srv.proc.pid, "--timeout", 20)
        self.assertEqual(status, 0, out)
        self.assertEqual(int(r["expected"]), 3 * 300 * 11)
        self.assertEqual(r["deliveries"], r["expected"])
        for key in ("lost", "duplicated", "misordered", "unexpected", "unsent", "timed_out", "disconnected"):
            self.assertEqual(r[key], "0", key)
        self.assertEqual(float(r["late_max_ms"]), 0)  # nothing is scheduled with a window
        self.assertEqual(int(r["ready"]), 12)
        self.assertGreater(float(r["rate"]), 0)
        self.assertGreater(float(r["server_cpu_s"]), 0)  # from /proc, with --pid
        self.assertGreater(int(r["rss_connected_kib"]), 0)

    def test_paced_lines_and_both_latencies(self):
        srv = self.start_server()
        status, r, out = run_bench(srv.port, "--clients", 10, "--senders", 2, "--messages", 40,
                                   "--rate", 200, "--timeout", 20)
        self.assertEqual(status, 0, out)
        self.assertEqual(int(r["deliveries"]), 2 * 40 * 9)
        self.assertEqual(r["unstamped"], "0")
        # Every line reaches its socket before it is read, so each quantile
        # of arrival is at most the same quantile of reading.
        for q in ("p50_ms", "p99_ms", "max_ms"):
            self.assertGreater(float(r[q]), 0, q)
            self.assertLessEqual(float(r["arrival_" + q]), float(r[q]), q)
        # 80 lines at 200 a second take about 0.4 s.
        self.assertGreater(float(r["seconds"]), 0.3)
        # How late lines left against the schedule: a percentile is a
        # histogram bucket's top, up to 2% above the largest sample.
        late = [float(r[k]) for k in ("late_p50_ms", "late_p99_ms", "late_max_ms")]
        self.assertLessEqual(late[0], late[1])
        self.assertLessEqual(late[1], late[2] * 1.02 + 0.001)
        self.assertGreater(late[2], 0)

    def test_lost_duplicated_and_misordered_lines_are_counted(self):
        relay = self.relay(drop=10, dup=20, swap=30)
        status, r, out = run_bench(relay.port, "--clients", 6, "--senders", 2, "--messages", 40,
                                   "--rate", 400, "--timeout", 3)
        self.assertEqual(status, 3, out)
        self.assertEqual(r["lost"], "1", out)
        self.assertEqual(r["duplicated"], "5", out)  # line 20 to each of the 5 others
        self.assertEqual(r["misordered"], "5", out)  # line 30 after 31, at each of the 5
        self.assertEqual(r["unsent"], "0", out)
        self.assertEqual(r["timed_out"], "1", out)  # the lost line never came

    def test_a_lost_line_holds_its_senders_window(self):
        relay = self.relay(drop=10)
        status, r, out = run_bench(relay.port, "--clients", 6, "--senders", 2, "--messages", 100,
                                   "--window", 4, "--timeout", 5)
        self.assertEqual(status, 3, out)
        # The one delivery that never happened is the one lost; the lines
        # sender 0 could not send after it are counted apart.
        self.assertEqual(r["lost"], "1", out)
        self.assertEqual(int(r["unsent"]), 100 - (10 + 4), out)
        self.assertEqual(r["timed_out"], "1", out)
        self.assertEqual(r["duplicated"], "0", out)
        self.assertRegex(out, r"86 lines never sent")

    def test_a_clean_relay_passes(self):
        relay = self.relay()
        status, r, out = run_bench(relay.port, "--clients", 6, "--senders", 2, "--messages", 50,
                                   "--window", 4, "--timeout", 10)
        self.assertEqual(status, 0, out)
        self.assertEqual(int(r["deliveries"]), 2 * 50 * 5)


if __name__ == "__main__":
    chatdtest.main()
