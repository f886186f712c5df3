#!/usr/bin/python3
"""Upstream servers for ward's egress integration tests (Python 3 standard library only).

Serve mode (the test starts it inside a network namespace and stops it by pid):

  upstream.py --addr :: --http-port 8080 [--http-port 8081 ...] [--tcp-port 9000]
              [--tls-port 8443 --cert leaf.pem --key leaf.key] [--tls-cert 8444 other.pem other.key]
              [--tls-legacy 8447 leaf.pem leaf.key]
              [--udp-port 53] [--echo-all] [--log-headers] [--log-bodies] [--git-root DIR]
              --log FILE --ready FILE

  HTTP/1.1 with keep-alive on every --http-port (and --tls-port, TLS over the same handler):
    /                 a small text body
    /echo             JSON: method, path, query, the headers received (in order), body length,
                      the connection id
    /conn             the connection id as text
    /conn-then-close  the same, then the connection is closed (no Connection: close said)
    /refuse-new?s=N   answered, then for N seconds every new connection on any port is closed as
                      soon as it is accepted (logged "REFUSED <port>"): an upstream that stops
                      taking connections while the open ones go on
    /stream?mib=N     N MiB of deterministic pseudo-random bytes, with Content-Length
    /slow             announces 64 MiB, sends 1 KiB every 20 ms; logs "SLOW-ABORTED" when the
                      peer goes away mid-transfer
    /quiet, /quiet/*  "quiet" (200): the request is logged, nothing of it is sent back
    /reflect          what /echo answers, chunked, 5 bytes per write (each its own TLS record),
                      and the Authorization received in a header X-Seen-Authorization
    /gzip             what /echo answers, gzip-compressed (Content-Encoding: gzip) whatever the
                      request's Accept-Encoding
    /range            what /echo answers; with "Range: bytes=A-B", 206 and those bytes only
    /git/*            with --git-root DIR: git smart HTTP (git-http-backend as CGI) over the
                      bare repositories in DIR (/git/repo.git -> DIR/repo.git)
    /simple/wardprobe/, /packages/wardprobe-1.0-py3-none-any.whl
                      a package index as pip reads it (PEP 503) holding one pure-Python wheel,
                      made at start: `import wardprobe; wardprobe.VALUE`
    /npm/wardprobe, /npm/wardprobe/-/wardprobe-1.0.0.tgz
                      a package registry as npm reads it holding one package, made at start:
                      `require("wardprobe").value`; the tarball's address is built from the
                      request's scheme and Host
    any GET with "Upgrade: websocket"
                      a websocket (RFC 6455, version 13, no extension accepted): each text or
                      binary message is logged and sent back as it came; pings are answered, a
                      close frame is answered and ends the connection; under /ws-slow/ the 101
                      comes 2 s after the request
    anything else     404, or with --echo-all what /echo answers
  --tls-cert PORT CERT KEY: one more TLS port with a certificate of its own (repeatable).
  --tls-legacy PORT CERT KEY: likewise, but speaking only TLS 1.0 and 1.1 (a downgraded server).
  --log-headers: one more log line per request, with every header received (see HDRS below).
  --log-bodies: one more log line per request with a body, the body itself (see BODY below).
  --tcp-port: raw TCP; each line received is answered: "STREAM N" sends N MiB of the stream
    content then closes, anything else is echoed back.
  --udp-port: every datagram received is logged (nothing is answered).
  --hold-port: raw TCP; each connection is accepted and held: never read, written or closed.

  The log gets one line per event, flushed at once:
    CONN <id> <kind> <peer> <port>       a connection accepted (kind: http, tls, tcp)
    REQ <id> <port> <METHOD> <target>    a request received on connection <id>
    HDRS <id> <port> <METHOD> <target> <JSON [[name, value], ...]>
                                         with --log-headers, after REQ: the headers received
    BODY <id> <port> <METHOD> <target> <JSON string>
                                         with --log-bodies: the body received (UTF-8, errors
                                         replaced)
    WS <id> <port> TEXT <JSON string>    a websocket text message received
    WS <id> <port> BINARY <length>       a websocket binary message received
    WS <id> <port> CLOSE|EOF             the websocket's end: a close frame, or the peer gone
    TCP <id> <line>                      a raw TCP line
    UDP <peer> <length> <name>           a datagram; <name>: the name a DNS query asks about
                                         ("-" when the datagram is not one)
    SLOW-ABORTED <id>                    /slow lost its peer
  The ready file is written once every socket is listening.

Digest mode: `upstream.py --digest N` prints the sha256 (hex) of what /stream?mib=N sends.
"""

import argparse
import base64
import hashlib
import gzip
import http.server
import io
import json
import os
import random
import socket
import socketserver
import ssl
import struct
import subprocess
import sys
import tarfile
import threading
import time
import urllib.parse
import warnings
import zipfile

MIB = 1 << 20
_BLOCK = random.Random(20240601).randbytes(MIB)


PROBE_VALUE = "installed through ward"


def make_wheel():
    """wardprobe 1.0 as a pure-Python wheel (PEP 427), with the RECORD pip checks."""
    files = {
        "wardprobe/__init__.py": "VALUE = %r\n" % PROBE_VALUE,
        "wardprobe-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: wardprobe\nVersion: 1.0\n",
        "wardprobe-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: ward-test\n"
                                         "Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = ""
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record += "%s,sha256=%s,%d\n" % (name, digest.decode(), len(text.encode()))
    files["wardprobe-1.0.dist-info/RECORD"] = record + "wardprobe-1.0.dist-info/RECORD,,\n"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return out.getvalue()


def make_npm_tarball():
    """wardprobe 1.0.0 as the gzipped tar npm installs (everything under package/)."""
    files = {
        "package/package.json": json.dumps({"name": "wardprobe", "version": "1.0.0",
                                            "main": "index.js"}),
        "package/index.js": "module.exports = { value: %s };\n" % json.dumps(PROBE_VALUE),
    }
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as t:
        for name, text in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(text.encode()), 0o644
            t.addfile(info, io.BytesIO(text.encode()))
    return gzip.compress(raw.getvalue(), mtime=0)


WHEEL = make_wheel()
WHEEL_NAME = "wardprobe-1.0-py3-none-any.whl"
NPM_TARBALL = make_npm_tarball()


def npm_document(base):
    """The registry's document for wardprobe, its tarball under `base` (scheme://host)."""
    version = {
        "name": "wardprobe",
        "version": "1.0.0",
        "main": "index.js",
        "dist": {
            "tarball": base + "/npm/wardprobe/-/wardprobe-1.0.0.tgz",
            "shasum": hashlib.sha1(NPM_TARBALL).hexdigest(),
            "integrity": "sha512-" + base64.b64encode(hashlib.sha512(NPM_TARBALL).digest()).decode(),
        },
    }
    return {"name": "wardprobe", "dist-tags": {"latest": "1.0.0"}, "versions": {"1.0.0": version}}


REFUSE_UNTIL = [0.0]  # /refuse-new: time.monotonic() until which new connections are closed


def stream_chunks(mib):
    """The content of /stream?mib=N: N blocks of 1 MiB, block i is the base block rotated."""
    for i in range(mib):
        k = (i * 7919 + 13) % MIB
        yield _BLOCK[k:] + _BLOCK[:k]


class Log:
    def __init__(self, path):
        self._lock = threading.Lock()
        self._file = open(path, "a", buffering=1) if path else None
        self._conn = 0

    def next_conn(self):
        with self._lock:
            self._conn += 1
            return self._conn

    def write(self, line):
        if not self._file:
            return
        with self._lock:
            self._file.write(line.replace("\n", "\\n").replace("\r", "\\r") + "\n")
            self._file.flush()


# RFC 6455 framing, shared with client.py.
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
WS_TEXT, WS_BINARY, WS_CLOSE, WS_PING, WS_PONG = 1, 2, 8, 9, 10


def ws_accept(key):
    """The Sec-WebSocket-Accept answering Sec-WebSocket-Key `key`."""
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


def ws_frame(opcode, payload, mask=None):
    """One final frame; masked with the 4 bytes `mask` when given (client to server)."""
    head = bytes([0x80 | opcode])
    bit = 0x80 if mask else 0
    n = len(payload)
    if n < 126:
        head += bytes([bit | n])
    elif n < 1 << 16:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        head += mask
    return head + payload


def ws_read_frame(f):
    """The next frame from the binary file `f`: (fin, opcode, unmasked payload), None at EOF."""
    head = f.read(2)
    if len(head) < 2:
        return None
    n = head[1] & 0x7F
    if n == 126:
        n = struct.unpack("!H", f.read(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", f.read(8))[0]
    mask = f.read(4) if head[1] & 0x80 else b""
    payload = f.read(n)
    if len(payload) < n:
        return None
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bool(head[0] & 0x80), head[0] & 0x0F, payload


LOG = Log(None)
ECHO_ALL = False
LOG_HEADERS = False
LOG_BODIES = False
GIT_ROOT = None
GIT_HTTP_BACKEND = "/usr/lib/git-core/git-http-backend"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ward-test-upstream"
    sys_version = ""
    kind = "http"

    def setup(self):
        super().setup()
        self.conn_id = LOG.next_conn()
        self.port = self.server.server_address[1]
        LOG.write("CONN %d %s %s %d" % (self.conn_id, self.kind, self.client_address[0], self.port))

    def log_message(self, fmt, *args):  # quiet
        pass

    def _reply(self, status, body, content_type="text/plain"):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _git(self, url, body):
        """git smart HTTP: git-http-backend as a CGI program (RFC 3875)."""
        env = {
            "PATH": "/usr/bin:/bin",
            "GIT_PROJECT_ROOT": GIT_ROOT,
            "GIT_HTTP_EXPORT_ALL": "1",
            # The repositories belong to whoever made them; this server only reads them.
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "safe.directory",
            "GIT_CONFIG_VALUE_0": "*",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": urllib.parse.unquote(url.path[len("/git"):]),
            "QUERY_STRING": url.query,
            "REMOTE_ADDR": self.client_address[0],
            "CONTENT_LENGTH": str(len(body)),
            "CONTENT_TYPE": self.headers.get("Content-Type") or "",
        }
        for k, v in self.headers.items():
            name = "HTTP_" + k.upper().replace("-", "_")
            if name not in ("HTTP_CONTENT_LENGTH", "HTTP_CONTENT_TYPE", "HTTP_TRANSFER_ENCODING"):
                env[name] = v
        p = subprocess.run([GIT_HTTP_BACKEND], input=body, env=env, capture_output=True)
        head, sep, out = p.stdout.partition(b"\r\n\r\n")
        if not sep:
            head, sep, out = p.stdout.partition(b"\n\n")
        status, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name and name.lower() != "content-length":
                headers.append((name, value.strip()))
        if not sep:
            status, headers, out = 500, [], p.stderr
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(out)

    def _websocket(self):
        self.close_connection = True
        if self.path.startswith("/ws-slow/"):
            time.sleep(2)
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        key = self.headers.get("Sec-WebSocket-Key", "")
        self.send_header("Sec-WebSocket-Accept", ws_accept(key))
        self.end_headers()
        where = "WS %d %d " % (self.conn_id, self.port)
        message, kind = b"", WS_TEXT
        while True:
            try:
                frame = ws_read_frame(self.rfile)
            except OSError:
                frame = None
            if frame is None:
                LOG.write(where + "EOF")
                return
            fin, opcode, payload = frame
            if opcode == WS_CLOSE:
                LOG.write(where + "CLOSE")
                self.wfile.write(ws_frame(WS_CLOSE, payload[:2]))
                return
            if opcode == WS_PING:
                self.wfile.write(ws_frame(WS_PONG, payload))
                continue
            if opcode == WS_PONG:
                continue
            if opcode != 0:  # not a continuation: a new message
                message, kind = b"", opcode
            message += payload
            if not fin:
                continue
            if kind == WS_TEXT:
                LOG.write(where + "TEXT " + json.dumps(message.decode("utf-8", "replace")))
            else:
                LOG.write(where + "BINARY %d" % len(message))
            self.wfile.write(ws_frame(kind, message))

    def _echo(self, url, body):
        self._reply(200, self._echo_json(url, body), "application/json")

    def _echo_json(self, url, body):
        return json.dumps({
            "method": self.command, "path": url.path, "query": url.query, "target": self.path,
            "headers": [[k, v] for k, v in self.headers.items()], "body_length": len(body),
            "conn": self.conn_id}).encode()

    def _reflect(self, url, body):
        data = self._echo_json(url, body)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Seen-Authorization", self.headers.get("Authorization") or "")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i in range(0, len(data), 5):
            piece = data[i:i + 5]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.flush()
            time.sleep(0.002)
        self.wfile.write(b"0\r\n\r\n")

    def _gzip(self, url, body):
        data = gzip.compress(self._echo_json(url, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _range(self, url, body):
        data = self._echo_json(url, body)
        wanted = (self.headers.get("Range") or "").partition("bytes=")[2]
        first, _, last = wanted.partition("-")
        if not first.isdigit() or not last.isdigit():
            return self._reply(200, data, "application/json")
        self.send_response(206)
        self.send_header("Content-Type", "application/json")
        piece = data[int(first):int(last) + 1]
        self.send_header("Content-Range", "bytes %s-%d/%d" % (first, int(first) + len(piece) - 1,
                                                              len(data)))
        self.send_header("Content-Length", str(len(piece)))
        self.end_headers()
        self.wfile.write(piece)

    def _handle(self):
        LOG.write("REQ %d %d %s %s" % (self.conn_id, self.port, self.command, self.path))
        if LOG_HEADERS:
            headers = json.dumps([[k, v] for k, v in self.headers.items()])
            LOG.write("HDRS %d %d %s %s %s" % (self.conn_id, self.port, self.command, self.path,
                                               headers))
        if (self.headers.get("Upgrade") or "").lower() == "websocket" and self.command == "GET":
            if self.path == "/fake-upgrade":
                # A 101 that switches nothing (no Sec-WebSocket-Accept): HTTP goes on.
                self.send_response(101)
                self.send_header("Upgrade", "websocket")
                self.send_header("Connection", "Upgrade")
                self.end_headers()
                return
            self._websocket()
            return
        body = self._read_body()
        if LOG_BODIES and body:
            LOG.write("BODY %d %d %s %s %s" % (self.conn_id, self.port, self.command, self.path,
                                               json.dumps(body.decode("utf-8", "replace"))))
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/":
            self._reply(200, "hello from upstream\n")
        elif url.path == "/conn":
            self._reply(200, "%d\n" % self.conn_id)
        elif url.path == "/conn-then-close":
            # Answered as keep-alive, then the connection is closed: what a server does when its
            # idle timeout strikes between two requests.
            self._reply(200, "%d\n" % self.conn_id)
            self.close_connection = True
        elif url.path == "/refuse-new":
            seconds = float(urllib.parse.parse_qs(url.query).get("s", ["1"])[0])
            REFUSE_UNTIL[0] = time.monotonic() + seconds
            self._reply(200, "refusing new connections for %g s\n" % seconds)
        elif url.path == "/quiet" or url.path.startswith("/quiet/"):
            self._reply(200, "quiet\n")
        elif GIT_ROOT and url.path.startswith("/git/"):
            self._git(url, body)
        elif url.path == "/echo":
            self._echo(url, body)
        elif url.path == "/reflect":
            self._reflect(url, body)
        elif url.path == "/gzip":
            self._gzip(url, body)
        elif url.path == "/range":
            self._range(url, body)
        elif url.path == "/simple/wardprobe/":
            link = '<a href="/packages/%s#sha256=%s">%s</a>' % (
                WHEEL_NAME, hashlib.sha256(WHEEL).hexdigest(), WHEEL_NAME)
            self._reply(200, "<!DOCTYPE html><html><body>%s</body></html>\n" % link, "text/html")
        elif url.path == "/packages/" + WHEEL_NAME:
            self._reply(200, WHEEL, "application/octet-stream")
        elif url.path == "/npm/wardprobe":
            scheme = "https" if self.kind == "tls" else "http"
            base = "%s://%s" % (scheme, self.headers.get("Host") or "api.test")
            self._reply(200, json.dumps(npm_document(base)), "application/json")
        elif url.path == "/npm/wardprobe/-/wardprobe-1.0.0.tgz":
            self._reply(200, NPM_TARBALL, "application/octet-stream")
        elif url.path == "/stream":
            mib = int(urllib.parse.parse_qs(url.query).get("mib", ["1"])[0])
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(mib * MIB))
            self.end_headers()
            if self.command != "HEAD":
                for chunk in stream_chunks(mib):
                    self.wfile.write(chunk)
        elif url.path == "/slow":
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(64 * MIB))
            self.end_headers()
            try:
                for _ in range(64 * 1024):
                    self.wfile.write(b"s" * 1024)
                    self.wfile.flush()
                    time.sleep(0.02)
            except OSError:
                LOG.write("SLOW-ABORTED %d" % self.conn_id)
                self.close_connection = True
        elif ECHO_ALL:
            self._echo(url, body)
        else:
            self._reply(404, "not found\n")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _handle


class TlsHandler(Handler):
    kind = "tls"


class DualStackServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, handler, ssl_context=None):
        self.address_family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        self._ssl_context = ssl_context
        super().__init__(addr, handler)

    def server_bind(self):
        if self.address_family == socket.AF_INET6:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()

    def get_request(self):
        sock, addr = self.socket.accept()
        if time.monotonic() < REFUSE_UNTIL[0]:
            LOG.write("REFUSED %d" % self.server_address[1])
            sock.close()
            raise OSError("refusing new connections")  # socketserver drops the request
        if self._ssl_context:
            sock.settimeout(10)
            try:
                sock = self._ssl_context.wrap_socket(sock, server_side=True)
            except (ssl.SSLError, OSError):
                sock.close()
                raise
            sock.settimeout(None)
        return sock, addr

    def handle_error(self, request, client_address):  # a peer going away is not news
        pass


class TcpHandler(socketserver.StreamRequestHandler):
    def handle(self):
        conn_id = LOG.next_conn()
        LOG.write("CONN %d tcp %s %d" % (conn_id, self.client_address[0], self.server.server_address[1]))
        for raw in self.rfile:
            line = raw.decode(errors="replace").rstrip("\r\n")
            LOG.write("TCP %d %s" % (conn_id, line))
            if line.startswith("STREAM "):
                for chunk in stream_chunks(int(line.split()[1])):
                    self.wfile.write(chunk)
                return
            self.wfile.write(raw)
            self.wfile.flush()


class TcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr):
        self.address_family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        super().__init__(addr, TcpHandler)

    def server_bind(self):
        if self.address_family == socket.AF_INET6:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()

    def handle_error(self, request, client_address):
        pass


def dns_question(data):
    """The name a DNS query asks about (its first question), or "-" when it is not one."""
    labels, at = [], 12
    try:
        while at < len(data) and data[at] != 0:
            length = data[at]
            if length > 63:
                return "-"
            labels.append(data[at + 1:at + 1 + length].decode("ascii", "replace"))
            at += 1 + length
    except IndexError:
        return "-"
    return ".".join(labels) if labels and len(data) > 12 else "-"


def udp_loop(sock):
    while True:
        data, peer = sock.recvfrom(65536)
        LOG.write("UDP %s %d %s" % (peer[0], len(data), dns_question(data)))


def hold_loop(addr, port):
    """Accepts and holds each connection: never reads, writes or closes it."""
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(64)
    held = []
    while True:
        c, peer = s.accept()
        LOG.write("CONN %d hold %s %d" % (LOG.next_conn(), peer[0], port))
        held.append(c)


def main():
    global LOG, ECHO_ALL, LOG_HEADERS, LOG_BODIES, GIT_ROOT
    p = argparse.ArgumentParser()
    p.add_argument("--digest", type=int, help="print the sha256 of /stream?mib=N and exit")
    p.add_argument("--addr", default="::")
    p.add_argument("--http-port", type=int, action="append", default=[])
    p.add_argument("--tls-port", type=int, action="append", default=[])
    p.add_argument("--tcp-port", type=int, action="append", default=[])
    p.add_argument("--udp-port", type=int, action="append", default=[])
    p.add_argument("--hold-port", type=int, action="append", default=[])
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--tls-cert", nargs=3, action="append", default=[],
                   metavar=("PORT", "CERT", "KEY"))
    p.add_argument("--tls-legacy", nargs=3, action="append", default=[],
                   metavar=("PORT", "CERT", "KEY"))
    p.add_argument("--echo-all", action="store_true")
    p.add_argument("--log-headers", action="store_true")
    p.add_argument("--log-bodies", action="store_true")
    p.add_argument("--git-root")
    p.add_argument("--log")
    p.add_argument("--ready")
    a = p.parse_args()

    if a.digest is not None:
        h = hashlib.sha256()
        for chunk in stream_chunks(a.digest):
            h.update(chunk)
        print(h.hexdigest())
        return 0

    LOG = Log(a.log)
    ECHO_ALL, LOG_HEADERS, LOG_BODIES = a.echo_all, a.log_headers, a.log_bodies
    GIT_ROOT = a.git_root
    servers = []
    for port in a.http_port:
        servers.append(DualStackServer((a.addr, port), Handler))
    if a.tls_port:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.cert, a.key)
        for port in a.tls_port:
            servers.append(DualStackServer((a.addr, port), TlsHandler, ctx))
    for port, cert, key in a.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        servers.append(DualStackServer((a.addr, int(port)), TlsHandler, ctx))
    for port, cert, key in a.tls_legacy:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # OpenSSL 3 refuses TLS < 1.2 above level 0
        servers.append(DualStackServer((a.addr, int(port)), TlsHandler, ctx))
    for port in a.tcp_port:
        servers.append(TcpServer((a.addr, port)))
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    for port in a.hold_port:
        threading.Thread(target=hold_loop, args=(a.addr, port), daemon=True).start()
    for port in a.udp_port:
        family = socket.AF_INET6 if ":" in a.addr else socket.AF_INET
        u = socket.socket(family, socket.SOCK_DGRAM)
        if family == socket.AF_INET6:
            u.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        u.bind((a.addr, port))
        threading.Thread(target=udp_loop, args=(u,), daemon=True).start()
    if a.ready:
        tmp = a.ready + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % os.getpid())
        os.rename(tmp, a.ready)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
