#!/usr/bin/python3
"""Clients for ward's egress integration tests, run INSIDE a sandbox (standard library only,
except the `requests` subcommand). Every subcommand prints one JSON object on stdout.

  raw PAYLOAD [--pad N] [--timeout S]
        Sends PAYLOAD (Python escapes such as \\r\\n are decoded; "@PAD@" becomes N x "a") to the
        proxy at 127.0.0.1:3128 and reads one response: {"status", "headers", "body", "closed",
        "elapsed"}; status is "EOF", "RESET" or "TIMEOUT" when no response came.
  urllib URL [--cafile F]       urllib.request with the proxy variables: {"status", "body"}
  requests URL [--cafile F]     the requests library, likewise
  direct IP PORT                a TCP connect ignoring the proxy: {"ok", "error", "elapsed"}
  udp IP PORT                   one UDP datagram sent ignoring the proxy: {"ok", "error"}
  dns NAME                      getaddrinfo: {"ok", "error", "elapsed"}
  tunnels HOST:PORT N           N CONNECT tunnels held open at once, then the first closed and
                                one more opened: {"statuses": [...], "after_close": status}
  idle HOST:PORT WAIT           one CONNECT tunnel to an echo server: a line goes through, then
                                waits up to WAIT seconds for the proxy to close it:
                                {"status", "echo", "closed_after"} (null: still open)
  reload KEEP_URL PROBE_URL     for hot-reload tests, with the test driving through files in the
                                current directory: a keep-alive connection does GET KEEP_URL,
                                "step1" is created, "go" is awaited; then new connections GET
                                PROBE_URL until it answers 200 (10 s at most), then the old
                                connection sends its second request, then a fresh connection does
                                GET KEEP_URL: {"first", "probe", "probe_tries", "old_second",
                                "old_second_body", "fresh"}
  tunnel-reload GONE KEPT PROBE_URL
                                for hot-reload tests: CONNECT tunnels to two echo servers
                                (HOST:PORT each), a line through each, then "step1", "go" and
                                the probe as for `reload`; then one more line through each:
                                {"gone_first", "kept_first", "probe", "probe_tries",
                                "gone_second", "kept_second"}, each line's echo or "EOF",
                                "RESET", "TIMEOUT", "SEND:<errno>", "CONNECT <status>"
  ws-reload GONE KEPT PROBE_URL
                                for hot-reload tests: two websockets, GONE and KEPT each
                                HOST:PORT/PATH (as `ws`, one tunnel each),
                                a text frame through each, then "step1", "go" and the probe as
                                for `reload`; then one more frame through each:
                                {"gone_first", "kept_first", "probe", "probe_tries",
                                "gone_second", "kept_second"}: each frame's echo, or how the
                                connection ended ("EOF", "RESET", "CLOSE:<code>", "TIMEOUT")
  tls-peer HOST:PORT [--cafile F]
                                a CONNECT tunnel, then a TLS handshake for HOST verified against
                                the default trust store (SSL_CERT_FILE, ...) or F: {"connect",
                                "ok", "error", "issuer", "subject", "san"} (issuer and subject:
                                their commonName)
  tls-reload HOST:PORT KEEP_PATH PROBE_METHOD PROBE_PATH
                                `reload` inside TLS (the default trust store): a keep-alive TLS
                                connection through one CONNECT tunnel does GET KEEP_PATH, "step1"
                                is created, "go" is awaited; new tunnels send PROBE_METHOD
                                PROBE_PATH until it answers 200 (10 s at most); then the old
                                connection sends GET KEEP_PATH again, then a fresh one does:
                                {"first", "probe", "probe_tries", "old_second", "fresh"}
  tls-raw HOST:PORT PAYLOAD [--timeout S] [--delay S]
                                a CONNECT tunnel, TLS for HOST (the default trust store), then
                                (--delay seconds later) PAYLOAD (escapes decoded as for `raw`)
                                in one write; reads
                                responses until the connection closes or S seconds pass:
                                {"connect", "error", "statuses": [...], "end": "EOF"|"TIMEOUT"|...}
  ws HOST:PORT PATH [MESSAGE...] [--timeout S]
                                a CONNECT tunnel, TLS for HOST (the default trust store), a
                                websocket handshake for PATH (offering permessage-deflate), then
                                each MESSAGE as one masked text frame, each followed by a wait (S
                                seconds at most) for the frame coming back; a close frame at the
                                end: {"connect", "error", "status", "accept_ok", "extensions",
                                "echoes": [text, ...], "end"}; "end" is null when every message
                                came back, else why not: "EOF", "RESET", "TIMEOUT", "CLOSE:<code>"
"""

import argparse
import base64
import codecs
import errno
import json
import os
import socket
import ssl
import sys
import time
import urllib.parse

from upstream import WS_CLOSE, WS_TEXT, ws_accept, ws_frame, ws_read_frame

PROXY = ("127.0.0.1", 3128)


def read_response(sock, timeout):
    """One HTTP response from `sock`: (status, headers, body), status "EOF"/"RESET"/"TIMEOUT"."""
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return ("EOF" if not data else "PARTIAL:" + data[:200].decode("latin-1")), {}, ""
            data += chunk
    except socket.timeout:
        return "TIMEOUT", {}, ""
    except ConnectionResetError:
        return "RESET", {}, ""
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    try:
        status = int(parts[1])
    except (IndexError, ValueError):
        return "BAD:" + lines[0][:200], {}, ""
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    length = int(headers.get("content-length", "0") or 0)
    try:
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    return status, headers, rest[:length].decode("utf-8", "replace")


def is_closed(sock, timeout=2.0):
    """True when the peer closes `sock` (EOF or reset) within `timeout`."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except socket.timeout:
        return False
    except OSError:
        return True


def request_bytes(method, url, extra_headers=()):
    host = urllib.parse.urlsplit(url).netloc
    head = "%s %s HTTP/1.1\r\nHost: %s\r\n" % (method, url, host)
    for h in extra_headers:
        head += h + "\r\n"
    return (head + "\r\n").encode()


def send_request(sock, url, timeout=10):
    try:
        sock.sendall(request_bytes("GET", url))
    except OSError as e:
        return "SEND:" + errno.errorcode.get(e.errno, str(e.errno)), ""
    status, _, body = read_response(sock, timeout)
    return status, body


def connect_proxy():
    return socket.create_connection(PROXY, timeout=10)


def cmd_raw(a):
    payload = codecs.decode(a.payload, "unicode_escape").encode("latin-1")
    payload = payload.replace(b"@PAD@", b"a" * a.pad)
    start = time.monotonic()
    s = connect_proxy()
    try:
        s.sendall(payload)
    except OSError:
        pass
    status, headers, body = read_response(s, a.timeout)
    elapsed = time.monotonic() - start
    closed = is_closed(s) if isinstance(status, int) else True
    return {"status": status, "headers": headers, "body": body, "closed": closed,
            "elapsed": round(elapsed, 3)}


def cmd_urllib(a):
    import ssl
    import urllib.error
    import urllib.request

    ctx = ssl.create_default_context(cafile=a.cafile) if a.cafile else None
    try:
        with urllib.request.urlopen(a.url, timeout=20, context=ctx) as r:
            return {"status": r.status, "body": r.read().decode("utf-8", "replace")}
    except urllib.error.HTTPError as e:
        return {"status": e.code, "body": e.read().decode("utf-8", "replace")}
    except Exception as e:  # noqa: BLE001 - reported to the test
        return {"status": "ERROR", "body": repr(e)}


def cmd_requests(a):
    import requests

    try:
        r = requests.get(a.url, timeout=20, verify=a.cafile or True)
        return {"status": r.status_code, "body": r.text}
    except Exception as e:  # noqa: BLE001
        return {"status": "ERROR", "body": repr(e)}


def errname(e):
    return errno.errorcode.get(e.errno, str(e)) if getattr(e, "errno", None) else repr(e)


def cmd_direct(a):
    start = time.monotonic()
    family = socket.AF_INET6 if ":" in a.ip else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(30)
    try:
        s.connect((a.ip, a.port))
        out = {"ok": True, "error": ""}
    except OSError as e:
        out = {"ok": False, "error": errname(e)}
    out["elapsed"] = round(time.monotonic() - start, 3)
    return out


def cmd_udp(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.sendto(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x06secret\x04test\x00\x00\x10\x00\x01",
                 (a.ip, a.port))
        return {"ok": True, "error": ""}
    except OSError as e:
        return {"ok": False, "error": errname(e)}


def cmd_dns(a):
    start = time.monotonic()
    try:
        res = socket.getaddrinfo(a.name, 80, type=socket.SOCK_STREAM)
        out = {"ok": True, "error": "", "addresses": sorted({r[4][0] for r in res})}
    except socket.gaierror as e:
        out = {"ok": False, "error": "%s (%s)" % (e.strerror, e.errno)}
    out["elapsed"] = round(time.monotonic() - start, 3)
    return out


def open_tunnel(target):
    s = connect_proxy()
    s.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, target)).encode())
    status, _, _ = read_response(s, 10)
    return s, status


def cmd_tunnels(a):
    socks, statuses = [], []
    for _ in range(a.n):
        s, status = open_tunnel(a.target)
        socks.append(s)
        statuses.append(status)
    socks[0].close()
    after = None
    for _ in range(100):  # the proxy notices the close asynchronously: poll
        s, after = open_tunnel(a.target)
        socks.append(s)
        if after == 200:
            break
        time.sleep(0.05)
    return {"statuses": statuses, "after_close": after}


def cmd_idle(a):
    s, status = open_tunnel(a.target)
    out = {"status": status, "echo": "", "closed_after": None}
    if status != 200:
        return out
    s.sendall(b"ping\n")
    s.settimeout(5)
    try:
        out["echo"] = s.recv(100).decode()
    except OSError as e:
        out["echo"] = errname(e)
    start = time.monotonic()
    if is_closed(s, a.wait):
        out["closed_after"] = round(time.monotonic() - start, 3)
    return out


def wait_file(name, seconds):
    deadline = time.monotonic() + seconds
    while not os.path.exists(name):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def forward_status(url):
    """GET `url` through the proxy on a new connection: its status."""
    s = connect_proxy()
    status, _ = send_request(s, url)
    s.close()
    return status


def await_reload(out, probe):
    """The middle of a hot-reload test: creates "step1", waits for "go", then calls `probe` (it
    returns a status) until it answers 200, 10 s at most. Sets out's "probe" and "probe_tries";
    False when "go" never appeared."""
    open("step1", "w").close()
    if not wait_file("go", 30):
        out["error"] = "go never appeared"
        return False
    tries, status = 0, None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        tries += 1
        status = probe()
        if status == 200:
            break
        time.sleep(0.05)
    out["probe"], out["probe_tries"] = status, tries
    return True


def cmd_reload(a):
    out = {}
    old = connect_proxy()
    out["first"], _ = send_request(old, a.keep_url)
    if not await_reload(out, lambda: forward_status(a.probe_url)):
        return out
    out["old_second"], out["old_second_body"] = send_request(old, a.keep_url, timeout=5)
    fresh = connect_proxy()
    out["fresh"], _ = send_request(fresh, a.keep_url)
    return out


def echo_line(sock, line, timeout=5):
    """`line` through a tunnel to an echo server: what came back, or how the tunnel ended."""
    try:
        sock.sendall((line + "\n").encode())
    except OSError as e:
        return "SEND:" + errname(e)
    sock.settimeout(timeout)
    got = b""
    try:
        while not got.endswith(b"\n"):
            chunk = sock.recv(100)
            if not chunk:
                return got.decode(errors="replace") or "EOF"
            got += chunk
    except socket.timeout:
        return "TIMEOUT"
    except OSError as e:
        return "RESET" if e.errno == errno.ECONNRESET else errname(e)
    return got.decode(errors="replace").rstrip("\n")


def cmd_tunnel_reload(a):
    out = {}
    tunnels = {}
    for name, target in (("gone", a.gone), ("kept", a.kept)):
        s, status = open_tunnel(target)
        tunnels[name] = s
        out[name + "_first"] = echo_line(s, name + "-one") if status == 200 else "CONNECT %s" % status
    if not await_reload(out, lambda: forward_status(a.probe_url)):
        return out
    for name, s in tunnels.items():
        out[name + "_second"] = echo_line(s, name + "-two")
    return out


def tls_tunnel(target, cafile=None):
    """A CONNECT tunnel to `target`, TLS over it: (ssl socket or None, CONNECT status, error)."""
    s, status = open_tunnel(target)
    if status != 200:
        s.close()
        return None, status, ""
    ctx = ssl.create_default_context(cafile=cafile) if cafile else ssl.create_default_context()
    try:
        return ctx.wrap_socket(s, server_hostname=target.rsplit(":", 1)[0]), status, ""
    except (ssl.SSLError, OSError) as e:
        s.close()
        return None, status, getattr(e, "verify_message", None) or str(e)


def common_name(name):
    for rdn in name or ():
        for key, value in rdn:
            if key == "commonName":
                return value
    return ""


def cmd_tls_peer(a):
    tls, status, error = tls_tunnel(a.target, a.cafile)
    out = {"connect": status, "ok": tls is not None, "error": error}
    if tls:
        cert = tls.getpeercert()
        out["issuer"] = common_name(cert.get("issuer"))
        out["subject"] = common_name(cert.get("subject"))
        out["san"] = [v for k, v in cert.get("subjectAltName", ()) if k == "DNS"]
        tls.close()
    return out


def tls_request(sock, method, host, path, timeout=10):
    """One request on a TLS connection: its status ("EOF", "RESET", "SEND:..." when none)."""
    head = "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: 0\r\n\r\n" % (method, path, host)
    try:
        sock.sendall(head.encode())
    except OSError as e:
        return "SEND:" + errname(e)
    try:
        status, _, _ = read_response(sock, timeout)
    except ssl.SSLError:  # a close without close_notify
        return "EOF"
    except OSError:
        return "RESET"
    return status


def cmd_tls_reload(a):
    def probe():
        s, connect, _ = tls_tunnel(a.target)
        if not s:
            return connect
        status = tls_request(s, a.probe_method, a.target, a.probe_path)
        s.close()
        return status

    out = {}
    old, status, error = tls_tunnel(a.target)
    if not old:
        return {"first": "CONNECT %s %s" % (status, error)}
    out["first"] = tls_request(old, "GET", a.target, a.keep_path)
    if not await_reload(out, probe):
        return out
    out["old_second"] = tls_request(old, "GET", a.target, a.keep_path, timeout=5)
    fresh, status, error = tls_tunnel(a.target)
    out["fresh"] = tls_request(fresh, "GET", a.target, a.keep_path) if fresh else status
    return out


def cmd_tls_raw(a):
    tls, status, error = tls_tunnel(a.target)
    out = {"connect": status, "error": error, "statuses": [], "end": None}
    if not tls:
        return out
    time.sleep(a.delay)
    tls.sendall(codecs.decode(a.payload, "unicode_escape").encode("latin-1"))
    deadline = time.monotonic() + a.timeout
    data = b""
    while out["end"] is None:
        # Every complete response in the buffer (heads with Content-Length, as both ward and the
        # test upstream send them).
        while b"\r\n\r\n" in data:
            head, _, rest = data.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            length = 0
            for line in lines[1:]:
                k, _, v = line.partition(":")
                if k.strip().lower() == "content-length":
                    length = int(v.strip() or 0)
            if len(rest) < length:
                break
            parts = lines[0].split(" ", 2)
            out["statuses"].append(int(parts[1]) if len(parts) > 1 and parts[1].isdigit()
                                   else "BAD:" + lines[0][:100])
            data = rest[length:]
        left = deadline - time.monotonic()
        if left <= 0:
            out["end"] = "TIMEOUT"
            break
        tls.settimeout(left)
        try:
            chunk = tls.recv(65536)
        except socket.timeout:
            out["end"] = "TIMEOUT"
            break
        except ssl.SSLError:
            chunk = b""
        except OSError:
            out["end"] = "RESET"
            break
        if not chunk:
            out["end"] = "EOF"
        data += chunk
    return out


def ws_exchange(tls, reader, text, timeout):
    """Sends `text` as a masked text frame on `tls` and reads the frame coming back from `reader`
    (tls.makefile): (echo, None) or (None, why the connection ended)."""
    try:
        tls.sendall(ws_frame(WS_TEXT, text.encode(), mask=os.urandom(4)))
        tls.settimeout(timeout)
        frame = ws_read_frame(reader)
    except socket.timeout:
        return None, "TIMEOUT"
    except ssl.SSLError:  # a close without close_notify
        return None, "EOF"
    except OSError:
        return None, "RESET"
    if frame is None:
        return None, "EOF"
    _, opcode, payload = frame
    if opcode == WS_CLOSE:
        return None, "CLOSE:%d" % (int.from_bytes(payload[:2], "big") if payload else 0)
    return payload.decode("utf-8", "replace"), None


def ws_open(target, path, timeout):
    """A websocket through a CONNECT tunnel and TLS for HOST: (tls, reader) or (None, why)."""
    tls, status, error = tls_tunnel(target)
    if not tls:
        return None, "CONNECT %s %s" % (status, error)
    key = base64.b64encode(os.urandom(16)).decode()
    tls.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
                 % (path, target, key)).encode())
    try:
        status, _, _ = read_response(tls, timeout)
    except (ssl.SSLError, OSError) as e:
        return None, "ERROR:" + errname(e)
    if status != 101:
        return None, "STATUS %s" % status
    return tls, tls.makefile("rb")


def cmd_ws_reload(a):
    out = {}
    sockets = {}
    for name, where in (("gone", a.gone), ("kept", a.kept)):
        target, path = where.split("/", 1)
        tls, reader = ws_open(target, "/" + path, 5)
        if not tls:
            out[name + "_first"] = reader
            continue
        sockets[name] = (tls, reader)
        echo, end = ws_exchange(tls, reader, name + "-one", 5)
        out[name + "_first"] = echo if echo is not None else end
    if not await_reload(out, lambda: forward_status(a.probe_url)):
        return out
    for name, (tls, reader) in sockets.items():
        echo, end = ws_exchange(tls, reader, name + "-two", 5)
        out[name + "_second"] = echo if echo is not None else end
    return out


def cmd_ws(a):
    tls, status, error = tls_tunnel(a.target)
    out = {"connect": status, "error": error, "status": None, "accept_ok": False,
           "extensions": None, "echoes": [], "end": None}
    if not tls:
        return out
    key = base64.b64encode(os.urandom(16)).decode()
    tls.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
                 "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
                 % (a.path, a.target, key)).encode())
    try:
        status, headers, _ = read_response(tls, a.timeout)
    except (ssl.SSLError, OSError) as e:
        status, headers = "ERROR:" + errname(e), {}
    out["status"] = status
    out["accept_ok"] = headers.get("sec-websocket-accept") == ws_accept(key)
    out["extensions"] = headers.get("sec-websocket-extensions")
    if status != 101:
        return out
    reader = tls.makefile("rb")
    for text in a.messages:
        echo, out["end"] = ws_exchange(tls, reader, text, a.timeout)
        if out["end"]:
            return out
        out["echoes"].append(echo)
    try:
        tls.sendall(ws_frame(WS_CLOSE, (1000).to_bytes(2, "big"), mask=os.urandom(4)))
        ws_read_frame(reader)
    except (ssl.SSLError, OSError):
        pass
    return out


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("raw")
    r.add_argument("payload")
    r.add_argument("--pad", type=int, default=0)
    r.add_argument("--timeout", type=float, default=10)
    for name in ("urllib", "requests"):
        c = sub.add_parser(name)
        c.add_argument("url")
        c.add_argument("--cafile")
    for name in ("direct", "udp"):
        c = sub.add_parser(name)
        c.add_argument("ip")
        c.add_argument("port", type=int)
    d = sub.add_parser("dns")
    d.add_argument("name")
    t = sub.add_parser("tunnels")
    t.add_argument("target")
    t.add_argument("n", type=int)
    i = sub.add_parser("idle")
    i.add_argument("target")
    i.add_argument("wait", type=float)
    rl = sub.add_parser("reload")
    rl.add_argument("keep_url")
    rl.add_argument("probe_url")
    wr = sub.add_parser("ws-reload")
    wr.add_argument("gone")
    wr.add_argument("kept")
    wr.add_argument("probe_url")
    tu = sub.add_parser("tunnel-reload")
    tu.add_argument("gone")
    tu.add_argument("kept")
    tu.add_argument("probe_url")
    tp = sub.add_parser("tls-peer")
    tp.add_argument("target")
    tp.add_argument("--cafile")
    tr = sub.add_parser("tls-reload")
    tr.add_argument("target")
    tr.add_argument("keep_path")
    tr.add_argument("probe_method")
    tr.add_argument("probe_path")
    tw = sub.add_parser("tls-raw")
    tw.add_argument("target")
    tw.add_argument("payload")
    tw.add_argument("--timeout", type=float, default=5)
    tw.add_argument("--delay", type=float, default=0)
    ws = sub.add_parser("ws")
    ws.add_argument("target")
    ws.add_argument("path")
    ws.add_argument("messages", nargs="*")
    ws.add_argument("--timeout", type=float, default=5)
    a = p.parse_args()
    result = globals()["cmd_" + a.cmd.replace("-", "_")](a)
    print(json.dumps(result))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
