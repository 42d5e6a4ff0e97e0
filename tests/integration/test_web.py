"""The web port: the page's files over HTTP, bad HTTP input, and IRC over
WebSocket (the IRCv3 transport): the handshake, subprotocols, framing,
fragments, ping and pong, close codes, origins and trusted proxies. The
HTTP and WebSocket clients are written here (tests/webclient.py), so that
each byte sent is the one meant."""
import os
import re
import signal
import socket
import subprocess
import tempfile
import time

from chatdtest import TIMEOUT, WEB_ROOT, ChatdTestCase, Client, main
from webclient import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, Connection,
                       WebSocket, frame, request)


def page_file(name):
    with open(os.path.join(WEB_ROOT, name), "rb") as f:
        return f.read()


class WebTestCase(ChatdTestCase):

    def start_web(self, config=None):
        srv = self.start_irc_server(config, web=True)
        return srv

    def http(self, srv, data, head=False, **kw):
        """Sends DATA on a new connection; returns (response, connection)."""
        c = Connection(srv.web_port, **kw)
        self.addCleanup(c.close)
        c.send(data)
        return c.read_response(head=head), c

    def websocket(self, srv, nick=None, **kw):
        ws = WebSocket(srv.web_port, **kw)
        self.addCleanup(ws.close)
        if nick:
            ws.register(nick, binary=ws.protocol == "binary.ircv3.net")
        return ws

    def irc_client(self, srv, source=None):
        """An IRC client "raw" on the IRC port, registered."""
        irc = Client(srv.irc_port, source=source)
        self.addCleanup(irc.close)
        irc.send("NICK raw\r\nUSER raw 0 * :raw")
        irc.read_until(r" (376|422) ")
        return irc

    def line_client(self, srv):
        c = Client(srv.port)
        self.addCleanup(c.close)
        c.welcome()
        return c


class PageTest(WebTestCase):

    def test_the_page_and_its_files_are_served(self):
        srv = self.start_web()
        r, _ = self.http(srv, request("/"))
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers["content-type"], "text/html; charset=utf-8")
        self.assertEqual(r.body, page_file("index.html"))
        self.assertIn("default-src 'none'", r.headers["content-security-policy"])
        self.assertIn("frame-ancestors 'none'", r.headers["content-security-policy"])
        self.assertEqual(r.headers["x-content-type-options"], "nosniff")
        for name, kind in (("chatd.js", "text/javascript"), ("chatd.css", "text/css"),
                           ("icon.svg", "image/svg+xml"), ("index.html", "text/html")):
            r, _ = self.http(srv, request("/" + name))
            self.assertEqual(r.status, 200, name)
            self.assertTrue(r.headers["content-type"].startswith(kind), r.headers)
            self.assertEqual(r.body, page_file(name))
        # Nothing the page loads comes from elsewhere.
        for name in ("index.html", "chatd.js", "chatd.css"):
            self.assertIsNone(re.search(rb"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", page_file(name)), name)

    def test_head_and_a_conditional_get(self):
        srv = self.start_web()
        full, _ = self.http(srv, request("/chatd.js"))
        r, c = self.http(srv, request("/chatd.js", method="HEAD"), head=True)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers["content-length"], str(len(full.body)))
        self.assertEqual(r.headers["etag"], full.headers["etag"])
        # Kept alive: the same connection answers again, now a 304.
        c.send(request("/chatd.js", headers=["If-None-Match: " + full.headers["etag"]]))
        r = c.read_response()
        self.assertEqual(r.status, 304)
        self.assertEqual(r.body, b"")
        c.send(request("/chatd.js", headers=['If-None-Match: "0000000000000000"']))
        self.assertEqual(c.read_response().body, full.body)

    def test_keep_alive_and_close(self):
        srv = self.start_web()
        c = Connection(srv.web_port)
        self.addCleanup(c.close)
        # Two requests in one write (pipelined), then one that asks to close.
        c.send(request("/") + request("/icon.svg"))
        self.assertEqual(c.read_response().status, 200)
        self.assertEqual(c.read_response().body, page_file("icon.svg"))
        c.send(request("/", headers=["Connection: close"]))
        self.assertEqual(c.read_response().status, 200)
        self.assertEqual(c.expect_closed(), b"")
        # HTTP/1.0 closes unless asked to keep alive.
        r, c = self.http(srv, request("/", version="1.0"))
        self.assertEqual(r.status, 200)
        self.assertEqual(c.expect_closed(), b"")

    def test_a_big_file_to_a_slow_reader_is_sent_whole(self):
        with tempfile.TemporaryDirectory(prefix="chatd-web-root-") as root:
            with open(os.path.join(root, "index.html"), "w") as f:
                f.write("home\n")
            big = os.urandom(3 * 1024 * 1024)
            with open(os.path.join(root, "big.png"), "wb") as f:
                f.write(big)
            # Reading it takes longer than handshake_timeout, which counts
            # from the last byte the client took, not from the request.
            srv = self.start_web({"web": {"root": root}, "limits": {"handshake_timeout": "1"}})
            for headers in ([], ["Connection: close"]):
                c = Connection(srv.web_port)
                self.addCleanup(c.close)
                c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
                c.send(request("/big.png", headers=headers))
                head = b""
                while b"\r\n\r\n" not in head:
                    head += c.sock.recv(4096)
                head, body = head.split(b"\r\n\r\n", 1)
                start = time.monotonic()
                while len(body) < len(big):
                    time.sleep(0.05)
                    data = c.sock.recv(96 * 1024)
                    if not data:
                        break
                    body += data
                self.assertGreater(time.monotonic() - start, 1.5)
                self.assertEqual(len(body), len(big), headers)
                self.assertEqual(body, big)
                if headers:
                    self.assertEqual(c.expect_closed(), b"")

    def test_a_half_closed_client_gets_its_response(self):
        srv = self.start_web()
        c = Connection(srv.web_port)
        self.addCleanup(c.close)
        c.send(request("/"))
        c.sock.shutdown(socket.SHUT_WR)
        self.assertEqual(c.read_response().body, page_file("index.html"))
        self.assertEqual(c.expect_closed(), b"")

    def test_bare_line_feeds_and_http_1_0(self):
        srv = self.start_web()
        r, c = self.http(srv, b"GET /icon.svg HTTP/1.1\nHost: a\n\n")
        self.assertEqual(r.body, page_file("icon.svg"))
        # HTTP/1.0 closes, keep-alive asked or not.
        r, c = self.http(srv, request("/", version="1.0", headers=["Connection: keep-alive"]))
        self.assertEqual(r.status, 200)
        self.assertEqual(c.expect_closed(), b"")

    def test_unknown_paths_and_traversal_are_404(self):
        srv = self.start_web()
        for path in ("/nope", "/../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd",
                     "/..%2f..%2f..%2fetc%2fpasswd", "/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
                     "//etc/passwd", "/./index.html", "/web/../index.html", "/.hidden",
                     "/index.html/", "/chatd.js%00.html".replace("%00", "%2500"),
                     "/..\\..\\etc\\passwd"):
            r, _ = self.http(srv, request(path))
            self.assertEqual(r.status, 404, path)
            self.assertNotIn(b"root:", r.body)
        # A symlink in the root is not followed, a subfolder not served.
        with tempfile.TemporaryDirectory(prefix="chatd-web-root-") as root:
            with open(os.path.join(root, "index.html"), "w") as f:
                f.write("<!doctype html><title>t</title>home\n")
            os.symlink("/etc/passwd", os.path.join(root, "passwd"))
            os.mkdir(os.path.join(root, "sub"))
            with open(os.path.join(root, "sub", "x.txt"), "w") as f:
                f.write("x\n")
            srv = self.start_web({"web": {"root": root}})
            self.assertIn(b"home", self.http(srv, request("/"))[0].body)
            for path in ("/passwd", "/sub/x.txt", "/sub"):
                self.assertEqual(self.http(srv, request(path))[0].status, 404, path)

    def test_a_reload_reads_the_files_again(self):
        with tempfile.TemporaryDirectory(prefix="chatd-web-root-") as root:
            index = os.path.join(root, "index.html")
            with open(index, "w") as f:
                f.write("first\n")
            srv = self.start_web({"web": {"root": root}})
            first, _ = self.http(srv, request("/"))
            self.assertEqual(first.body, b"first\n")
            with open(index, "w") as f:
                f.write("second\n")
            srv.reload()
            srv.log.wait(r"web page: 1 files from \S+ \(reloaded\)")
            r, _ = self.http(srv, request("/", headers=["If-None-Match: " + first.headers["etag"]]))
            self.assertEqual((r.status, r.body), (200, b"second\n"))
            # A root that cannot be served is said, and the files in use stay.
            os.remove(index)
            srv.reload()
            srv.log.wait(r"the web page cannot be served, keeping the files in use: \S+: no index.html")
            self.assertEqual(self.http(srv, request("/"))[0].body, b"second\n")
        # Missing at start: the page's paths are 404, /ws still works.
        srv = self.start_web({"web": {"root": "/nonexistent/chatd-web"}})
        srv.log.wait(r"the web page cannot be served: /nonexistent/chatd-web: No such file")
        self.assertEqual(self.http(srv, request("/"))[0].status, 404)
        self.websocket(srv, "still")

    def test_bad_requests_get_a_status_and_a_close(self):
        srv = self.start_web()
        cases = [
            (b"GARBAGE\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: a\r\nBad Header Line\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\n\r\n", 400),                      # no Host
            (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi", 405),
            (b"DELETE / HTTP/1.1\r\nHost: a\r\n\r\n", 405),
            (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", 400),
            (b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
            (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
            (b"GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            (b"GET /a%00b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            (("GET /%s HTTP/1.1\r\nHost: a\r\n\r\n" % ("a" * 300)).encode(), 414),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"x" * 9000 + b"\r\n\r\n", 431),
            (b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X-A: b\r\n" * 1500, 431),   # never ends
        ]
        for data, status in cases:
            r, c = self.http(srv, data)
            self.assertEqual(r.status, status, data[:80])
            if status == 405:
                self.assertEqual(r.headers["allow"], "GET, HEAD")
            self.assertEqual(c.expect_closed(), b"", data[:80])
        # Still serving.
        self.assertEqual(self.http(srv, request("/"))[0].status, 200)

    def test_ws_path_without_an_upgrade_is_426(self):
        srv = self.start_web()
        r, _ = self.http(srv, request("/ws"))
        self.assertEqual(r.status, 426)
        self.assertEqual(r.headers["upgrade"], "websocket")

    def test_slow_headers_time_out_and_idle_connections_close(self):
        srv = self.start_web({"limits": {"handshake_timeout": "1"}})
        c = Connection(srv.web_port)
        self.addCleanup(c.close)
        c.send(b"GET / HTTP/1.1\r\nHost: a\r\n")  # and never the blank line
        start = time.monotonic()
        r = c.read_response(timeout=5)
        self.assertEqual(r.status, 408)
        self.assertEqual(c.expect_closed(5), b"")
        self.assertLess(time.monotonic() - start, 4)
        # Answered and then silent: closed without a word.
        r, c = self.http(srv, request("/"))
        self.assertEqual(r.status, 200)
        self.assertEqual(c.expect_closed(5), b"")

    def test_a_full_server_answers_503(self):
        srv = self.start_web({"server": {"max_clients": "1"}})
        first = self.line_client(srv)
        r, c = self.http(srv, request("/"))
        self.assertEqual(r.status, 503)
        self.assertIn(b"server full", r.body)
        first.close()


class WebSocketTest(WebTestCase):

    def test_web_irc_and_line_clients_chat(self):
        srv = self.start_web()
        line = self.line_client(srv)
        ws = self.websocket(srv, "webby")
        self.assertEqual(ws.protocol, "text.ircv3.net")
        ws.send_line("JOIN #lobby")
        ws.read_until(r" 366 webby #lobby ")
        line.read_until(r"webby")
        ws.send_line("PRIVMSG #lobby :hello from the browser")
        line.expect("[webby] hello from the browser")
        line.send("hello web <b>&amp;</b>")
        m = ws.read_message()
        self.assertTrue(re.fullmatch(r":\S+ PRIVMSG #lobby :hello web <b>&amp;</b>", m), m)
        # One line per message, without its line end.
        self.assertNotIn("\r", m)
        self.assertNotIn("\n", m)

    def test_subprotocol_negotiation(self):
        srv = self.start_web()
        for offered, chosen in ((["binary.ircv3.net"], "binary.ircv3.net"),
                                (["text.ircv3.net"], "text.ircv3.net"),
                                (["binary.ircv3.net", "text.ircv3.net"], "binary.ircv3.net"),
                                (["text.ircv3.net", "binary.ircv3.net"], "text.ircv3.net"),
                                (["chat", "binary.ircv3.net"], "binary.ircv3.net"),
                                ([], None)):
            ws = self.websocket(srv, protocols=offered)
            self.assertEqual(ws.protocol, chosen, offered)
            ws.send_line("PING :x", binary=chosen == "binary.ircv3.net")
            fin, op, data = ws.read_frame()
            self.assertEqual(op, OP_BINARY if chosen == "binary.ircv3.net" else OP_TEXT)
            self.assertRegex(data, rb"^:\S+ PONG \S+ :x$")
            ws.close()
        r, _ = self.http(srv, request("/ws", headers=[
            "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Protocol: chat"]))
        self.assertEqual(r.status, 400)

    def test_bad_handshakes(self):
        srv = self.start_web()
        base = ["Upgrade: websocket", "Connection: Upgrade"]
        key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="
        for headers, status in ((base + [key, "Sec-WebSocket-Version: 8"], 426),
                                (base + ["Sec-WebSocket-Version: 13"], 400),
                                (base + ["Sec-WebSocket-Key: short", "Sec-WebSocket-Version: 13"], 400)):
            r, c = self.http(srv, request("/ws", headers=headers))
            self.assertEqual(r.status, status, headers)
            self.assertEqual(c.expect_closed(), b"")

    def test_binary_frames_and_text_that_is_not_utf8(self):
        srv = self.start_web()
        irc = self.irc_client(srv)
        text = self.websocket(srv, "texty", protocols=["text.ircv3.net"])
        binary = self.websocket(srv, "binny", protocols=["binary.ircv3.net"])
        irc.send_raw(b"PRIVMSG texty :caf\xe9\r\nPRIVMSG binny :caf\xc3\xa9\r\n")
        m = text.read_message()
        self.assertIsInstance(m, str)
        self.assertTrue(m.endswith("PRIVMSG texty :caf\ufffd"), m)
        m = binary.read_message()
        self.assertIsInstance(m, bytes)
        self.assertTrue(m.endswith("PRIVMSG binny :café".encode()), m)
        binary.send_line("PRIVMSG raw :from binary", binary=True)
        irc.read_until(r"PRIVMSG raw :from binary")

    def test_fragments_and_control_frames_between_them(self):
        srv = self.start_web()
        irc = self.irc_client(srv)
        ws = self.websocket(srv, "frag")
        ws.send(frame(OP_TEXT, "PRIVMSG raw :one ", fin=False) + frame(OP_PING, "p1") +
                frame(OP_CONT, "two ", fin=False) + frame(OP_CONT, "three", fin=True))
        fin, op, data = ws.read_frame()
        self.assertEqual((fin, op, data), (True, OP_PONG, b"p1"))
        irc.read_until(r"PRIVMSG raw :one two three\s*$")
        # A frame cut across writes, a byte at a time.
        for b in frame(OP_TEXT, "PRIVMSG raw :slowly"):
            ws.send(bytes([b]))
        irc.read_until(r"PRIVMSG raw :slowly\s*$")
        # Several lines in one message, with line ends, are each taken.
        ws.send_line("PRIVMSG raw :first\r\nPRIVMSG raw :second\r\n")
        irc.read_until(r"PRIVMSG raw :first\s*$")
        irc.read_until(r"PRIVMSG raw :second\s*$")

    def test_ping_and_pong(self):
        srv = self.start_web()
        ws = self.websocket(srv)
        ws.send_frame(OP_PING, b"\x00\xffpayload")
        self.assertEqual(ws.read_frame(), (True, OP_PONG, b"\x00\xffpayload"))
        ws.send_frame(OP_PONG, b"unasked")  # ignored
        ws.send_frame(OP_PING, b"")
        self.assertEqual(ws.read_frame(), (True, OP_PONG, b""))

    def test_close_handshake(self):
        srv = self.start_web()
        line = self.line_client(srv)
        ws = self.websocket(srv, "leaver")
        ws.send_line("JOIN #lobby")
        ws.read_until(r" 366 ")
        line.read_until(r"leaver")
        ws.send_frame(OP_CLOSE, b"\x03\xe8bye")
        self.assertEqual(ws.read_close(), (1000, ""))
        self.assertEqual(ws.expect_closed(), b"")
        line.read_until(r"leaver")
        # QUIT: the ERROR line, then a close frame of our own.
        ws = self.websocket(srv, "quitter")
        ws.send_line("QUIT :done")
        msgs = []
        while True:
            fin, op, data = ws.read_frame()
            if op == OP_CLOSE:
                break
            msgs.append(data)
        self.assertTrue(any(m.startswith(b"ERROR") for m in msgs), msgs)
        self.assertEqual(data[:2], b"\x03\xe8")

    def test_protocol_errors_close_with_their_codes(self):
        srv = self.start_web()
        cases = [
            (frame(OP_TEXT, "PING x", mask=False), 1002),             # unmasked
            (frame(OP_TEXT, "x" * 9000), 1009),                      # over the limit
            (frame(OP_TEXT, b"PRIVMSG x :\xff\xfe"), 1007),           # text, not UTF-8
            (frame(OP_TEXT, "PING x", rsv=4), 1002),                  # reserved bit
            (frame(OP_CONT, "x"), 1002),                              # nothing to continue
            (frame(OP_PING, "x" * 126), 1002),                        # control frame too long
            (frame(OP_PING, "x", fin=False), 1002),                   # fragmented control
            (frame(OP_TEXT, "a", fin=False) + frame(OP_TEXT, "b"), 1002),  # new inside one
            (frame(0x3, "x"), 1002),                                  # unknown opcode
            (frame(OP_CLOSE, b"\x03"), 1002),                         # 1-byte close
            (frame(OP_CLOSE, b"\x03\xed"), 1002),                     # code 1005 sent
            (frame(OP_TEXT, "a" * 5000, fin=False) + frame(OP_CONT, "b" * 5000), 1009),
            # Announced as 2^40 bytes: refused from the header alone.
            (b"\x81\xff" + (1 << 40).to_bytes(8, "big") + b"mask", 1009),
        ]
        for data, code in cases:
            ws = self.websocket(srv)
            ws.send(data)
            got, _ = ws.read_close()
            self.assertEqual(got, code, data[:40])
            self.assertEqual(ws.expect_closed(), b"", data[:40])
            ws.close()
        self.websocket(srv, "survivor")
        self.assertRegex(srv.log.text(), r"WebSocket error: an unmasked frame from a client; "
                                         r"closing with 1002")

    def test_origins(self):
        srv = self.start_web({"web": {"allowed_origins": "https://chat.example.org"}})
        port = srv.web_port
        for origin in ("http://127.0.0.1:%d" % port, "https://chat.example.org",
                       "HTTPS://CHAT.EXAMPLE.ORG"):
            self.websocket(srv, origin=origin).close()
        for origin in ("http://evil.example", "https://chat.example.org.evil.example",
                       "http://127.0.0.1:%d.evil" % port, "null"):
            with self.assertRaisesRegex(AssertionError, "403"):
                WebSocket(port, origin=origin)

    def test_trusted_proxies_name_the_client(self):
        srv = self.start_web({"web": {"trusted_proxies": "127.0.0.1 10.0.0.0/8"},
                              "limits": {"max_per_ip": "1"}})
        irc = self.irc_client(srv, source="127.0.0.2")  # 127.0.0.1's one slot is the test's
        # The nearest address that is not a trusted proxy is the client's;
        # what the client itself wrote further left counts for nothing.
        ws = self.websocket(srv, "proxied",
                            headers=["X-Forwarded-For: 192.0.2.1, 203.0.113.7, 10.1.2.3"])
        ws.send_line("PRIVMSG raw :hi")
        irc.read_until(r"^:proxied!~proxied@203\.0\.113\.7 PRIVMSG raw :hi")
        # Its limits are its own (max_per_ip 1), not the proxy's.
        other = self.websocket(srv, "other", headers=["X-Forwarded-For: 198.51.100.2"])
        with self.assertRaisesRegex(AssertionError, "429"):
            WebSocket(srv.web_port, headers=["X-Forwarded-For: 203.0.113.7"])
        # A client the header does not name (no header, or nothing we can
        # read) counts as the proxy's own: limits are never lifted.
        unnamed = self.websocket(srv, "unnamed", headers=["X-Forwarded-For: unknown"])
        with self.assertRaisesRegex(AssertionError, "429"):
            WebSocket(srv.web_port)
        unnamed.close()
        # Proxies that add a port: the address is taken without it.
        ported = self.websocket(srv, "ported", headers=["X-Forwarded-For: 192.0.2.44:4711"])
        ported.send_line("PRIVMSG raw :port")
        irc.read_until(r"^:ported!~ported@192\.0\.2\.44 PRIVMSG raw :port")
        # From an address that is no trusted proxy, the header is ignored.
        srv2 = self.start_web({"web": {"trusted_proxies": "10.0.0.0/8"}})
        irc2 = self.irc_client(srv2)
        ws = self.websocket(srv2, "direct", headers=["X-Forwarded-For: 203.0.113.7"])
        ws.send_line("PRIVMSG raw :hi")
        irc2.read_until(r"^:direct!~direct@127\.0\.0\.1 PRIVMSG raw :hi")
        other.close()

    def test_shutdown_says_going_away(self):
        srv = self.start_web()
        ws = self.websocket(srv, "stayer")
        srv.signal(signal.SIGTERM)
        self.assertEqual(ws.read_close(), (1001, "server shutting down"))

    def test_wss_on_the_tls_port(self):
        with tempfile.TemporaryDirectory(prefix="chatd-web-tls-") as d:
            cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                            key, "-out", cert, "-days", "2", "-subj", "/CN=localhost"],
                           check=True, capture_output=True, timeout=30)
            from chatdtest import free_port
            tls_port = free_port()
            srv = self.start_web({"web": {"tls_port": str(tls_port)},
                                  "tls": {"certificate": cert, "key": key}})
            srv.log.wait(r"listening on \S+:%d for the web page over TLS" % tls_port)
            c = Connection(tls_port, tls=True)
            self.addCleanup(c.close)
            c.send(request("/"))
            self.assertEqual(c.read_response().body, page_file("index.html"))
            ws = WebSocket(tls_port, tls=True)
            self.addCleanup(ws.close)
            ws.register("secure")
            ws.send_line("PING :tls")
            self.assertTrue(ws.read_message().endswith(":tls"))


if __name__ == "__main__":
    main()
