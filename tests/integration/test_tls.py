"""TLS on chatd's listeners: the line protocol and IRC over TLS with real
clients (Python's ssl, openssl s_client, chatc --tls, WeeChat), certificates
made here with the openssl command, bad input on a TLS port, and
certificates replaced under load, by SIGHUP and by the files alone."""
import os
import random
import re
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

from chatdtest import (CHATD, TIMEOUT, Client, ChatdTestCase, Server, clean_env, free_port,
                       main, run_chatd)
import ircclients

CHATC = os.environ.get("CHATC") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "client", "chatc")


def openssl(*args, **kw):
    return subprocess.run(["openssl"] + list(args), check=True, capture_output=True,
                          timeout=30, **kw)


class Certs:
    """A private CA and certificates it signed, in a temporary directory:
    leaf (localhost and 127.0.0.1), leaf2 (the same names, another key: a
    renewal), short (expires in 3 days), expired, other (for another host
    only), client (a client certificate), and self-signed ones (rogue, for
    a client the CA never saw)."""

    def __init__(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="chatd-tls-")
        self.dir = self.tmp.name
        self.ca = self.path("ca.pem")
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.path("ca.key"),
                "-out", self.ca, "-days", "30", "-subj", "/CN=chatd test CA")
        names = "subjectAltName=DNS:localhost,IP:127.0.0.1"
        self.leaf = self.issue("leaf", "/CN=localhost", names, 30)
        self.leaf2 = self.issue("leaf2", "/CN=localhost", names, 30)
        self.short = self.issue("short", "/CN=localhost", names, 3)
        self.expired = self.issue("expired", "/CN=localhost", names, 0)
        self.other = self.issue("other", "/CN=other.example", "subjectAltName=DNS:other.example", 30)
        self.client = self.issue("client", "/CN=alice", "extendedKeyUsage=clientAuth", 30)
        self.rogue = (self.path("rogue.pem"), self.path("rogue.key"))
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.rogue[1],
                "-out", self.rogue[0], "-days", "30", "-subj", "/CN=rogue")

    def path(self, name):
        return os.path.join(self.dir, name)

    def issue(self, name, subject, ext, days):
        """(certificate, key) signed by the CA."""
        key, csr, cert, extfile = (self.path(name + s) for s in (".key", ".csr", ".pem", ".ext"))
        with open(extfile, "w") as f:
            f.write(ext + "\n")
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", subject)
        openssl("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.path("ca.key"),
                "-CAcreateserial", "-out", cert, "-days", str(days), "-extfile", extfile)
        return cert, key

    def fingerprint(self, cert):
        """The SHA-256 of a PEM certificate's DER, lower-case hex."""
        out = openssl("x509", "-in", cert, "-noout", "-fingerprint", "-sha256").stdout.decode()
        return out.strip().split("=", 1)[1].replace(":", "").lower()


CERTS = None


def setUpModule():
    global CERTS
    CERTS = Certs()


def tearDownModule():
    CERTS.tmp.cleanup()


def copy(src, dst):
    """Replaces dst with src's bytes as a renewal tool does: a new file
    renamed over the old one."""
    with open(src, "rb") as f:
        data = f.read()
    tmp = dst + ".new"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, dst)


def client_context(ca=None, cert=None, check_hostname=True):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = check_hostname
    if ca:
        ctx.load_verify_locations(ca)
    else:
        ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(*cert)
    return ctx


class TlsClient(Client):
    """A line client over TLS, verifying the server against the test CA as
    `localhost`."""

    def __init__(self, port, ca=None, cert=None, host="127.0.0.1", server_hostname="localhost"):
        raw = socket.create_connection((host, port), timeout=TIMEOUT)
        ctx = client_context(ca or CERTS.ca, cert)
        self.sock = ctx.wrap_socket(raw, server_hostname=server_hostname)
        self.buf = b""
        self.nick = None

    def fingerprint(self):
        import hashlib
        return hashlib.sha256(self.sock.getpeercert(binary_form=True)).hexdigest()


class TlsTestCase(ChatdTestCase):

    def start_tls_server(self, config=None, cert=None, irc=False, tries=3):
        """A started server with the line protocol over TLS (srv.tls_port)
        besides plaintext, and with irc, IRC both ways too (srv.irc_port,
        srv.irc_tls_port). cert: (certificate, key), copied into the
        server's directory as cert.pem and key.pem (srv.cert, srv.key), so a
        test can replace them."""
        cert = cert or CERTS.leaf
        for attempt in range(tries):
            cfg = {s: dict(k) for s, k in (config or {}).items()}
            cfg.setdefault("server", {})["tls_port"] = str(free_port())
            if irc:
                cfg.setdefault("irc", {}).update(port=str(free_port()), tls_port=str(free_port()))
            files = tempfile.TemporaryDirectory(prefix="chatd-tls-files-")
            self.addCleanup(files.cleanup)
            tls = cfg.setdefault("tls", {})
            tls.setdefault("certificate", os.path.join(files.name, "cert.pem"))
            tls.setdefault("key", os.path.join(files.name, "key.pem"))
            copy(cert[0], tls["certificate"])
            copy(cert[1], tls["key"])
            srv = Server(cfg)
            srv.cert, srv.key = tls["certificate"], tls["key"]
            try:
                srv.start()
                srv.tls_port = int(srv.log.wait(
                    r"listening on \S+:(\d+) for the line protocol over TLS").group(1))
                if irc:
                    srv.irc_tls_port = int(srv.log.wait(r"listening on \S+:(\d+) for IRC over TLS").group(1))
            except AssertionError:
                taken = "Address already in use" in srv.log.text()
                srv.close()
                if not taken or attempt == tries - 1:
                    raise
                continue
            self.addCleanup(srv.close)
            if self.CLEAN_EXIT:
                self.addCleanup(self.check_clean_exit, srv)
            return srv

    def tls_connect(self, srv, others=(), **kw):
        return self.connect(srv, others, client=TlsClient(srv.tls_port, **kw))


class TestTlsChat(TlsTestCase):

    def test_line_protocol_over_tls_chats_with_plaintext(self):
        srv = self.start_tls_server()
        m = srv.log.wait(r"TLS certificate in use: subject CN=localhost, issuer CN=chatd test CA, "
                         r"expires \S+ \S+ UTC, SHA-256 ([0-9a-f]{64}) \[tls_certificate\]")
        self.assertEqual(m.group(1), CERTS.fingerprint(CERTS.leaf[0]))
        plain = self.connect(srv)
        secure = self.tls_connect(srv, [plain])
        self.assertEqual(secure.fingerprint(), CERTS.fingerprint(CERTS.leaf[0]))
        self.assertIn(secure.sock.version(), ("TLSv1.3", "TLSv1.2"))
        secure.send("hello in private")
        plain.expect("[%s] hello in private" % secure.nick)
        plain.send("x" * 2000)
        secure.expect("[%s] %s" % (plain.nick, "x" * 2000))
        self.sync(plain, secure)
        secure.send("/quit bye")
        plain.expect("< %s left: bye (1 online)" % secure.nick)
        secure.expect_closed()

    def test_a_burst_arrives_whole_and_in_order(self):
        """Many lines to a TLS reader at once: sealed into records of up to
        16 KiB from the shared lines, all of them, in order."""
        srv = self.start_tls_server()
        reader = self.tls_connect(srv)
        writer = self.connect(srv, [reader])
        lines = ["line %05d %s" % (i, "y" * (i % 300)) for i in range(3000)]
        writer.send("\n".join(lines))
        got = reader.read_lines(len(lines))
        self.assertEqual(got, ["[%s] %s" % (writer.nick, l) for l in lines])
        self.sync(reader)

    def test_irc_over_tls_and_sts(self):
        srv = self.start_tls_server(irc=True)
        plain = Client(srv.irc_port)
        self.addCleanup(plain.close)
        plain.send("CAP LS 302\r\n")
        self.assertIn("sts=port=%d" % srv.irc_tls_port, plain.read_until(r" CAP \* LS ")[-1])
        plain.send("CAP LS\r\n")  # without 302, no values: no sts
        self.assertNotIn("sts", plain.read_until(r" CAP \* LS ")[-1])
        secure = TlsClient(srv.irc_tls_port)
        self.addCleanup(secure.close)
        secure.send("CAP LS 302\r\n")
        self.assertIn("sts=duration=300", secure.read_until(r" CAP \* LS ")[-1])
        secure.send("CAP REQ :sts\r\n")  # informational: never requested
        secure.read_until(r" CAP \* NAK :sts")
        secure.send("CAP END\r\nNICK tlsbob\r\nUSER bob 0 * :Bob\r\nJOIN #lobby\r\n")
        secure.read_until(r" 001 tlsbob ")
        secure.read_until(r" 366 tlsbob #lobby ")
        line = self.connect(srv)  # in the lobby
        secure.read_until(r"JOIN #lobby")
        line.send("hi bob")
        secure.read_until(r"^:%s!\S+ PRIVMSG #lobby :hi bob" % line.nick)
        secure.send("PRIVMSG #lobby :hi from TLS\r\n")
        line.read_until(r"^\[tlsbob\] hi from TLS$")

    def test_openssl_s_client_tls12_and_13_only(self):
        srv = self.start_tls_server()
        for version in ("-tls1_2", "-tls1_3"):
            out = subprocess.run(
                ["openssl", "s_client", version, "-connect", "127.0.0.1:%d" % srv.tls_port,
                 "-CAfile", CERTS.ca, "-verify_hostname", "localhost", "-verify_return_error",
                 "-ign_eof"], input=b"/quit\n", capture_output=True, timeout=TIMEOUT)
            self.assertEqual(out.returncode, 0, out.stderr.decode()[-2000:])
            self.assertIn(b"Connected to the chat server as", out.stdout)
            self.assertIn(b"Verify return code: 0 (ok)", out.stdout)
        out = subprocess.run(
            ["openssl", "s_client", "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0", "-connect",
             "127.0.0.1:%d" % srv.tls_port], input=b"", capture_output=True, timeout=TIMEOUT)
        self.assertNotEqual(out.returncode, 0)
        self.assertNotIn(b"Connected to the chat server", out.stdout)
        srv.log.wait(r"TLS handshake with \S+ failed: unsupported protocol")  # refused by chatd
        self.assert_serving(srv)


class TestTlsBadInput(TlsTestCase):

    def test_plaintext_garbage_and_nothing_are_closed(self):
        srv = self.start_tls_server({"limits": {"handshake_timeout": "1"}})
        a = self.tls_connect(srv)
        b = self.tls_connect(srv, [a])
        mark = srv.log.mark()
        started = time.monotonic()
        plaintext = socket.create_connection(("127.0.0.1", srv.tls_port), timeout=TIMEOUT)
        plaintext.sendall(b"NICK bob\r\nUSER bob 0 * :bob\r\n")
        garbage = socket.create_connection(("127.0.0.1", srv.tls_port), timeout=TIMEOUT)
        garbage.sendall(bytes(random.Random(1).getrandbits(8) for _ in range(3000)))
        silent = socket.create_connection(("127.0.0.1", srv.tls_port), timeout=TIMEOUT)
        half = socket.create_connection(("127.0.0.1", srv.tls_port), timeout=TIMEOUT)
        half.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # a hello cut short
        for s in (plaintext, garbage):
            self.assertIn(self.read_to_end(s)[:1], (b"", b"\x15"))  # nothing, or an alert
        srv.log.wait(r"TLS handshake with \S+ failed: wrong version number \[tls_failed\]", start=mark)
        for s in (silent, half):
            self.assertEqual(self.read_to_end(s), b"")
        self.assertLess(time.monotonic() - started, 1 + 1 + 2)  # the timeout, a tick, slack
        srv.log.wait(r"TLS handshake with \S+ failed: handshake timeout", start=mark)
        a.send("undisturbed")
        b.expect("[%s] undisturbed" % a.nick)
        self.sync(a, b)
        self.assertEqual(len(re.findall(r"connect from .* as ", srv.log.text())), 2)  # a and b
        for s in (plaintext, garbage, silent, half):
            s.close()

    def read_to_end(self, s):
        data = b""
        s.settimeout(TIMEOUT)
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                return data
            if not chunk:
                return data
            data += chunk

    def test_failed_handshakes_are_logged_once_a_second_per_reason(self):
        srv = self.start_tls_server()
        mark = srv.log.mark()
        for _ in range(40):
            s = socket.create_connection(("127.0.0.1", srv.tls_port), timeout=TIMEOUT)
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            self.read_to_end(s)
            s.close()
        time.sleep(1.1)
        s = socket.create_connection(("127.0.0.1", srv.tls_port), timeout=TIMEOUT)
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        self.read_to_end(s)
        s.close()
        m = srv.log.wait(r"failed: http request \(and (\d+) more for the same reason not logged\)",
                         start=mark)
        logged = re.findall(r"TLS handshake with \S+ failed: http request",
                            "\n".join(srv.log.lines[mark:]))
        self.assertEqual(len(logged) + int(m.group(1)), 41)
        self.assertLessEqual(len(logged), 41 // 2)  # the 40 took far less than 20 s

    def test_garbage_records_after_the_handshake(self):
        """A client that finishes its handshake, then sends records that are
        not what the session's keys made (or not records at all): closed,
        with nobody else disturbed."""
        srv = self.start_tls_server()
        a = self.tls_connect(srv)
        rnd = random.Random(7)
        for i in range(30):
            raw = socket.create_connection(("127.0.0.1", srv.tls_port), timeout=TIMEOUT)
            obj, incoming, outgoing = self.handshake(raw)
            kind = i % 5
            if kind == 0:    # an application record of random bytes
                body = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 600)))
                data = b"\x17\x03\x03" + len(body).to_bytes(2, "big") + body
            elif kind == 1:  # a record longer than TLS allows
                data = b"\x17\x03\x03\x48\x01" + bytes(100)
            elif kind == 2:  # an unknown record type
                data = b"\x42\x03\x03\x00\x05hello"
            elif kind == 3:  # a handshake message, again (no renegotiation)
                data = b"\x16\x03\x03\x00\x04\x01\x00\x00\x00"
            else:            # a real record with one bit flipped
                obj.write(b"hello\n")
                data = bytearray(outgoing.read())
                data[-1] ^= 1
                data = bytes(data)
            raw.sendall(data)
            raw.settimeout(TIMEOUT)
            try:
                while raw.recv(65536):
                    pass
            except ConnectionResetError:
                pass
            raw.close()
        b = self.tls_connect(srv)
        a.read_until(r"^> %s entered" % b.nick)
        b.send("still here")
        a.expect("[%s] still here" % b.nick)
        self.assertEqual(len(re.findall(r"connect from .* as ", srv.log.text())), 30 + 2)

    def handshake(self, raw):
        """A TLS session over RAW that this test can bypass: an SSLObject
        over memory BIOs, the handshake done; returns (obj, in, out)."""
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = client_context(CERTS.ca).wrap_bio(incoming, outgoing, server_hostname="localhost")
        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                raw.sendall(outgoing.read())
                data = raw.recv(65536)
                if not data:
                    raise AssertionError("closed during the handshake")
                incoming.write(data)
        raw.sendall(outgoing.read())
        return obj, incoming, outgoing


class TestTlsConfig(TlsTestCase):

    def check(self, tls, server=None):
        d = tempfile.TemporaryDirectory(prefix="chatd-tls-check-")
        self.addCleanup(d.cleanup)
        path = os.path.join(d.name, "chatd.conf")
        with open(path, "w") as f:
            f.write("[server]\ntls_port = 7778\n%s[tls]\n%s" % (server or "", tls))
        return run_chatd("-t", "-c", path, text=True)

    def test_chatd_t_reports_certificate_problems(self):
        r = self.check("certificate = %s\nkey = %s\n" % CERTS.leaf)
        self.assertEqual((r.returncode, r.stdout.strip()), (0, "chatd: config ok"), r.stderr)
        r = self.check("certificate = /nonexistent/cert.pem\nkey = %s\n" % CERTS.leaf[1])
        self.assertEqual(r.returncode, 1)
        self.assertIn("[tls] certificate /nonexistent/cert.pem: No such file or directory", r.stderr)
        r = self.check("certificate = %s\nkey = %s\n" % (CERTS.leaf[0], CERTS.leaf2[1]))
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr, r"\[tls\] key %s does not match the certificate %s \(.+\)"
                         % (re.escape(CERTS.leaf2[1]), re.escape(CERTS.leaf[0])))
        r = self.check("certificate = %s\nkey = %s\n" % (CERTS.ca, CERTS.leaf[1]))  # not a key
        self.assertEqual(r.returncode, 1)
        r = self.check("certificate = %s\nkey = %s\n" % (CERTS.leaf[1], CERTS.leaf[1]))
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr, r"\[tls\] certificate %s: \S" % re.escape(CERTS.leaf[1]))
        r = self.check("")
        self.assertEqual(r.returncode, 1)
        self.assertIn("tls_port: a TLS port needs a certificate", r.stderr)

    def test_a_bad_certificate_at_start_is_fatal_and_said(self):
        srv = Server({"server": {"tls_port": str(free_port())},
                      "tls": {"certificate": CERTS.leaf[0], "key": CERTS.leaf2[1]}})
        self.addCleanup(srv.close)
        srv.log.wait(r"TLS: \[tls\] key \S+ does not match the certificate")
        self.assertEqual(srv.proc.wait(TIMEOUT), 1)

    def test_expiry_is_warned_of(self):
        srv = self.start_tls_server(cert=CERTS.short)
        srv.log.wait(r"the TLS certificate \S+ \(CN=localhost\) expires in 2 days: renew it "
                     r".*\[tls_expiring\]")
        time.sleep(1.1)  # CERTS.expired is valid for its first second only
        srv = self.start_tls_server(cert=CERTS.expired)
        srv.log.wait(r"the TLS certificate \S+ \(CN=localhost\) has expired: .*\[tls_expired\]")

    def test_client_certificates(self):
        srv = self.start_tls_server({"tls": {"client_ca": CERTS.ca}})
        mark = srv.log.mark()
        alice = self.tls_connect(srv, cert=CERTS.client)
        srv.log.wait(r"client certificate SHA-256 %s \[tls_client_certificate\]"
                     % CERTS.fingerprint(CERTS.client[0]), start=mark)
        anonymous = self.tls_connect(srv, [alice])
        with self.assertRaises((ssl.SSLError, ConnectionResetError, EOFError, AssertionError)):
            rogue = TlsClient(srv.tls_port, cert=CERTS.rogue)
            self.addCleanup(rogue.close)
            rogue.welcome()
        srv.log.wait(r"TLS handshake with \S+ failed: ", start=mark)
        anonymous.send("hi")
        alice.expect("[%s] hi" % anonymous.nick)


class TestTlsReload(TlsTestCase):

    CLIENTS = 50
    LINES = 12

    def chat_while(self, srv, clients, action):
        """Every client says LINES lines while action() runs in between;
        each must hear every other's lines, in order."""
        def talk(c, i):
            for k in range(self.LINES):
                c.send("from %d line %d" % (i, k))
                time.sleep(0.02)
        threads = [threading.Thread(target=talk, args=(c, i)) for i, c in enumerate(clients)]
        for t in threads:
            t.start()
        try:
            action()
        finally:
            for t in threads:
                t.join(TIMEOUT)
        for i, c in enumerate(clients):
            lines = c.read_lines((len(clients) - 1) * self.LINES, timeout=3 * TIMEOUT)
            seen = {}
            for line in lines:
                m = re.fullmatch(r"\[\S+\] from (\d+) line (\d+)", line)
                self.assertIsNotNone(m, line)
                j, k = int(m.group(1)), int(m.group(2))
                self.assertEqual(k, seen.get(j, -1) + 1, "client %d: lines of %d out of order" % (i, j))
                seen[j] = k
        self.sync(*clients)

    def crowd_tls(self, srv):
        clients = []
        for _ in range(self.CLIENTS):
            c = TlsClient(srv.tls_port)
            self.addCleanup(c.close)
            c.welcome()
            clients.append(c)
        # Everyone has seen everyone arrive before the chat starts.
        for i, c in enumerate(clients):
            c.read_lines(len(clients) - 1 - i)
        return clients

    def test_sighup_and_replaced_files_under_load(self):
        srv = self.start_tls_server()
        clients = self.crowd_tls(srv)
        old, new = (CERTS.fingerprint(c) for c in (CERTS.leaf[0], CERTS.leaf2[0]))

        def by_signal():
            copy(CERTS.leaf2[0], srv.cert)
            copy(CERTS.leaf2[1], srv.key)
            mark = srv.log.mark()
            srv.reload()
            srv.log.wait(r"TLS certificate reloaded: .* SHA-256 %s" % new, start=mark)
        self.chat_while(srv, clients, by_signal)
        c = TlsClient(srv.tls_port)
        self.addCleanup(c.close)
        self.assertEqual(c.fingerprint(), new)
        c.welcome()
        for o in clients:
            o.read_line()  # c entered

        def by_files():
            mark = srv.log.mark()
            copy(CERTS.leaf[1], srv.key)
            copy(CERTS.leaf[0], srv.cert)
            srv.log.wait(r"TLS certificate reloaded \(the files changed\): .* SHA-256 %s" % old,
                         start=mark, timeout=3 * TIMEOUT)
        self.chat_while(srv, clients + [c], by_files)
        d = TlsClient(srv.tls_port)
        self.addCleanup(d.close)
        self.assertEqual(d.fingerprint(), old)
        self.assertNotRegex(srv.log.text(), r"disconnect .*: (slow|tls|error)")

    def test_a_broken_replacement_keeps_the_certificate_in_use(self):
        srv = self.start_tls_server()
        a = self.tls_connect(srv)
        old = CERTS.fingerprint(CERTS.leaf[0])
        copy(CERTS.leaf2[1], srv.key)  # a key that does not match
        mark = srv.log.mark()
        srv.reload()
        srv.log.wait(r"TLS \(reloaded\): keeping the certificate in use: \[tls\] key \S+ does not "
                     r"match the certificate \S+ .*\[tls_reload_failed\]", start=mark)
        with open(srv.cert, "wb") as f:  # not a certificate at all, no signal
            f.write(b"-----BEGIN CERTIFICATE-----\nnonsense\n")
        srv.log.wait(r"TLS \(reloaded \(the files changed\)\): keeping the certificate in use: "
                     r"\[tls\] certificate", start=mark, timeout=3 * TIMEOUT)
        b = TlsClient(srv.tls_port)
        self.addCleanup(b.close)
        self.assertEqual(b.fingerprint(), old)
        self.connect(srv, [a], client=b)
        b.send("still fine")
        a.expect("[%s] still fine" % b.nick)


BENCH = os.environ.get("CHATD_BENCH") or os.path.join(
    os.path.dirname(os.path.abspath(CHATD)), "bench", "chatd-bench")


class TestBenchTls(TlsTestCase):

    def test_chatd_bench_over_tls(self):
        """chatd-bench --tls, against the line protocol's and IRC's TLS
        ports: every line once and in order, the kernel's receive time
        stamps still read, and the server's connections really TLS."""
        srv = self.start_tls_server({"limits": {"max_sendq": "16777216"}}, irc=True)
        for proto, port in (("chatd", srv.tls_port), ("irc", srv.irc_tls_port)):
            r = subprocess.run([BENCH, "--port", str(port), "--proto", proto, "--tls", "--clients", "12",
                                "--senders", "3", "--messages", "300", "--window", "8", "--pid",
                                str(srv.proc.pid), "--timeout", "20"],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            fields = dict(kv.split("=", 1) for kv in
                          re.search(r"^RESULT (.*)$", r.stdout, re.M).group(1).split())
            self.assertEqual(fields["tls"], "1")
            self.assertEqual(int(fields["deliveries"]), 3 * 300 * 11)
            for key in ("lost", "duplicated", "misordered", "unexpected", "unsent", "disconnected",
                        "unstamped"):
                self.assertEqual(fields[key], "0", key)
        self.assertEqual(len(re.findall(r"TLS handshake done", srv.log.text())), 2 * 12)
        r = subprocess.run([BENCH, "--port", "1", "--proto", "mixed", "--irc-port", "2", "--tls",
                            "--clients", "2", "--senders", "1", "--messages", "1"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn("--tls is not for --proto mixed", r.stderr)


class TestChatcTls(TlsTestCase):

    def chatc(self, *args, stdin="/quit\n"):
        return subprocess.run([CHATC, "--no-color"] + list(args), input=stdin.encode(),
                              capture_output=True, timeout=TIMEOUT, env=clean_env())

    def test_chatc_over_tls(self):
        srv = self.start_tls_server()
        watcher = self.connect(srv)
        r = self.chatc("--tls", "--ca", CERTS.ca, "-n", "secure", "localhost:%d" % srv.tls_port,
                       stdin="hello over TLS\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        watcher.read_until(r"^\[secure\] hello over TLS$")
        self.assertEqual(r.stderr, b"")

    def test_chatc_refuses_what_it_cannot_verify(self):
        srv = self.start_tls_server()
        r = self.chatc("--tls", "localhost:%d" % srv.tls_port)  # the system's CAs
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"the server's certificate is not trusted: unable to get local issuer", r.stderr)
        fp = CERTS.fingerprint(CERTS.leaf[0]).upper()
        self.assertIn(":".join(fp[i:i + 2] for i in range(0, 64, 2)).encode(), r.stderr)
        self.assertIn(b"--ca FILE", r.stderr)
        r = self.chatc("--tls", "--insecure", "localhost:%d" % srv.tls_port)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"--insecure: the server's certificate is not checked", r.stderr)
        r = self.chatc("--tls", "--ca", CERTS.ca, "localhost:%d" % srv.port)  # the plaintext port
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"TLS handshake failed", r.stderr)

    def test_chatc_refuses_another_hosts_certificate(self):
        srv = self.start_tls_server(cert=CERTS.other)
        r = self.chatc("--tls", "--ca", CERTS.ca, "localhost:%d" % srv.tls_port)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"the server's certificate is not trusted: it is not for localhost", r.stderr)
        r = self.chatc("--tls", "--ca", CERTS.ca, "127.0.0.1:%d" % srv.tls_port)
        self.assertIn(b"it is not for 127.0.0.1", r.stderr)


@unittest.skipIf(ircclients.WeeChat.missing(), ircclients.WeeChat.missing())
class TestWeeChatTls(TlsTestCase):

    def test_weechat_over_tls(self):
        srv = self.start_tls_server(irc=True)
        line = self.connect(srv)  # in the lobby
        wee = ircclients.WeeChat("127.0.0.1", srv.irc_tls_port, "weetls", tls_ca=CERTS.ca)
        self.addCleanup(wee.close)
        wee.start()
        wee.join("#lobby")
        line.read_until(r"^> weetls joined lobby")
        wee.say("#lobby", "hello over TLS")
        line.read_until(r"^\[weetls\] hello over TLS$")
        mark = wee.mark("#lobby")
        line.send("hello weechat")
        wee.wait_said("#lobby", line.nick, "hello weechat", start=mark)
        wee.quit()


if __name__ == "__main__":
    main()
