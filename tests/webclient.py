"""HTTP and WebSocket (RFC 6455) clients for the tests of chatd's web port,
on the standard library alone: the requests are written by hand, so that a
test can send exactly the bytes it means, broken ones included.
"""
import base64
import hashlib
import os
import re
import socket
import ssl
import struct
import time

from chatdtest import TIMEOUT

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class Response:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers  # lower-case names
        self.body = body

    def __repr__(self):
        return "<HTTP %d %s %r %r>" % (self.status, self.reason, self.headers, self.body[:200])


class Connection:
    """A TCP connection to the web port, reading with a deadline."""

    def __init__(self, port, host="127.0.0.1", source=None, tls=False):
        """tls: over TLS, taking whatever certificate the server shows."""
        self.sock = socket.create_connection(
            (host, port), timeout=TIMEOUT,
            source_address=None if source is None else (source, 0))
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost")
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def _more(self, deadline, what):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("timed out waiting for %s (have %r)" % (what, self.buf[:300]))
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise AssertionError("timed out waiting for %s (have %r)" % (what, self.buf[:300]))
        except ConnectionResetError:
            data = b""
        if not data:
            raise EOFError("closed while waiting for %s (have %r)" % (what, self.buf[:300]))
        self.buf += data

    def read_exact(self, n, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while len(self.buf) < n:
            self._more(deadline, "%d bytes" % n)
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_response(self, head=False, timeout=TIMEOUT):
        """One HTTP response (its body by Content-Length; none for HEAD,
        101 and 304)."""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            self._more(deadline, "a response")
        top, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = top.decode("latin-1").split("\r\n")
        m = re.fullmatch(r"HTTP/1\.1 (\d{3}) (.*)", lines[0])
        if not m:
            raise AssertionError("not a status line: %r" % lines[0])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        status = int(m.group(1))
        body = b""
        if not head and status not in (101, 304):
            body = self.read_exact(int(headers.get("content-length", "0")),
                                   max(0.01, deadline - time.monotonic()))
        return Response(status, m.group(2), headers, body)

    def expect_closed(self, timeout=TIMEOUT):
        """Reads until EOF; returns what came."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._more(deadline, "the close")
            except EOFError:
                data, self.buf = self.buf, b""
                return data

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def request(path, method="GET", host="127.0.0.1", headers=(), version="1.1"):
    lines = ["%s %s HTTP/%s" % (method, path, version), "Host: %s" % host]
    lines += list(headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def accept_key(key):
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def frame(opcode, payload, fin=True, mask=True, rsv=0):
    """One frame as a client sends it (masked, unless mask is False)."""
    if isinstance(payload, str):
        payload = payload.encode()
    head = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
    n = len(payload)
    bit = 0x80 if mask else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 65536:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


class WebSocket(Connection):
    """A WebSocket to /ws: connected and upgraded by the constructor."""

    def __init__(self, port, protocols=("text.ircv3.net",), origin=None, headers=(),
                 host="127.0.0.1", source=None, tls=False):
        super().__init__(port, host, source, tls)
        key = base64.b64encode(os.urandom(16)).decode()
        extra = ["Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: " + key,
                 "Sec-WebSocket-Version: 13"]
        if protocols:
            extra.append("Sec-WebSocket-Protocol: " + ", ".join(protocols))
        if origin:
            extra.append("Origin: " + origin)
        self.send(request("/ws", host="%s:%d" % (host, port), headers=extra + list(headers)))
        self.response = self.read_response()
        if self.response.status != 101:
            self.close()
            raise AssertionError("no upgrade: %r" % self.response)
        if self.response.headers.get("sec-websocket-accept") != accept_key(key):
            raise AssertionError("wrong Sec-WebSocket-Accept: %r" % self.response)
        self.protocol = self.response.headers.get("sec-websocket-protocol")

    def send_frame(self, opcode, payload, **kw):
        self.send(frame(opcode, payload, **kw))

    def send_line(self, line, binary=False):
        self.send_frame(OP_BINARY if binary else OP_TEXT, line)

    def read_frame(self, timeout=TIMEOUT):
        """(fin, opcode, payload) of the next frame; server frames are
        never masked."""
        deadline = time.monotonic() + timeout
        left = lambda: max(0.01, deadline - time.monotonic())
        b0, b1 = self.read_exact(2, left())
        if b1 & 0x80:
            raise AssertionError("a masked frame from the server")
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self.read_exact(2, left()))[0]
        elif n == 127:
            n = struct.unpack("!Q", self.read_exact(8, left()))[0]
        return bool(b0 & 0x80), b0 & 0x0F, self.read_exact(n, left())

    def read_message(self, timeout=TIMEOUT):
        """The next data message (str for text, bytes for binary), answering
        nothing itself; a close frame raises EOFError with its code."""
        fin, op, data = self.read_frame(timeout)
        if op == OP_CLOSE:
            code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else None
            raise EOFError("close frame %r %r" % (code, data[2:]))
        if op == OP_TEXT:
            return data.decode("utf-8")
        return data

    def read_until(self, pattern, timeout=TIMEOUT):
        """Messages up to the first that matches the regex; returns them."""
        rx = re.compile(pattern)
        got = []
        deadline = time.monotonic() + timeout
        while True:
            m = self.read_message(max(0.01, deadline - time.monotonic()))
            text = m if isinstance(m, str) else m.decode("utf-8", "replace")
            got.append(m)
            if rx.search(text):
                return got

    def read_close(self, timeout=TIMEOUT):
        """Skips data frames up to a close frame; returns (code, reason)."""
        deadline = time.monotonic() + timeout
        while True:
            fin, op, data = self.read_frame(max(0.01, deadline - time.monotonic()))
            if op == OP_CLOSE:
                code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else None
                return code, data[2:].decode("utf-8")

    def register(self, nick, binary=False):
        """NICK and USER; returns the messages up to the end of the MOTD."""
        self.send_line("NICK " + nick, binary)
        self.send_line("USER %s 0 * :%s" % (nick, nick), binary)
        return self.read_until(r" (376|422) ")
