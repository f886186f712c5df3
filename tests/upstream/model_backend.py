#!/usr/bin/python3
"""A fake OpenAI- and Anthropic-compatible model backend for ward's inference tests (Python 3
standard library only).

  model_backend.py --port PORT [--addr ADDR] [--tls-cert CERT --tls-key KEY] [--log FILE]
                   [--ready FILE] [--fail 503|reset] [--api-key KEY] [--latency-ms MS]
                   [--chunk-ms MS] [--models a,b]

HTTP/1.1 with keep-alive, one thread per connection (TLS handshakes too), TCP_NODELAY.
  POST /v1/chat/completions   OpenAI chat: JSON, or with "stream": true an event stream of
                              chat.completion.chunk objects, several chunks --chunk-ms apart
                              (default 20), "data: [DONE]" last; with
                              stream_options.include_usage a final chunk with "choices": [] and
                              the usage (and "usage": null in the others), as OpenAI sends it
  POST /v1/completions        OpenAI legacy completions, the same way (text_completion)
  POST /v1/responses          OpenAI responses: JSON, or the response.* event sequence ending in
                              response.completed, whose response carries the usage
  POST /v1/embeddings         deterministic 8-dimensional vectors; encoding_format "base64"
                              (the SDKs' default) gives little-endian float32 in base64
  POST /v1/messages           Anthropic messages: JSON, or message_start (input tokens),
                              content_block_*, ping, message_delta (output tokens), message_stop
  GET  /v1/models, /v1/models/{id}
                              the Anthropic shape when the request carries anthropic-version or
                              x-api-key, else the OpenAI one; {id} is answered whatever it is
Every answer names the model the request asked for, so a test sees ward's rewrite. The text is
"Hello from the fake backend for <model>." split into words; usage counts the words of the
request's messages/prompt/input/system (at least 1) as input and the reply's words as output.
  --fail 503    every request is read, then answered 503 (a JSON error) before any body byte
  --fail reset  every connection is closed with a TCP reset as soon as it is accepted
  --api-key KEY requests without "Authorization: Bearer KEY" or "x-api-key: KEY" get 401
  --latency-ms  waits this long before answering each request (benchmarks)
The log (--log) gets one JSON line per request, written before the answer:
  {"event": "request", "conn": N, "tls": bool, "method", "path" (target with the query),
   "headers": {lower-case name: value (repeats joined with ", ")}, "model": the body's model or
   null, "stream": bool, "bytes": body length, "status": the status answered}
and {"event": "reset", "peer": ADDR} per connection reset by --fail reset.
The ready file (--ready) is written once the socket listens: "PID PORT\n" (PORT is useful with
--port 0).
"""

import argparse
import base64
import hashlib
import http.server
import json
import os
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.parse

ARGS = None
LOG = None


class Log:
    def __init__(self, path):
        self._lock = threading.Lock()
        self._file = open(path, "a", buffering=1) if path else None
        self._conn = 0

    def next_conn(self):
        with self._lock:
            self._conn += 1
            return self._conn

    def write(self, record):
        if not self._file:
            return
        line = json.dumps(record, separators=(",", ":"))
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()


def count_words(value):
    """Whitespace-separated words in every string inside `value`."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(count_words(v) for v in value)
    if isinstance(value, dict):
        return sum(count_words(v) for v in value.values())
    return 0


def input_tokens(body):
    n = sum(count_words(body.get(k)) for k in ("messages", "prompt", "input", "system",
                                                "instructions"))
    return max(n, 1)


def reply_words(model):
    words = ("Hello from the fake backend for %s." % model).split(" ")
    return [w if i == len(words) - 1 else w + " " for i, w in enumerate(words)]


def embedding(text, dims=8):
    digest = hashlib.sha256(json.dumps(text).encode()).digest()
    return [round((b - 128) / 128.0, 6) for b in digest[:dims]]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ward-fake-model"
    sys_version = ""
    disable_nagle_algorithm = True

    def setup(self):
        super().setup()
        self.conn_id = LOG.next_conn()

    def log_message(self, fmt, *args):  # quiet
        pass

    # ---- plumbing

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

    def _headers_received(self):
        out = {}
        for name, value in self.headers.items():
            key = name.lower()
            out[key] = out[key] + ", " + value if key in out else value
        return out

    def _log(self, status, body, raw):
        model = body.get("model") if isinstance(body, dict) else None
        LOG.write({
            "event": "request",
            "conn": self.conn_id,
            "tls": isinstance(self.connection, ssl.SSLSocket),
            "method": self.command,
            "path": self.path,
            "headers": self._headers_received(),
            "model": model if isinstance(model, str) else None,
            "stream": isinstance(body, dict) and body.get("stream") is True,
            "bytes": len(raw),
            "status": status,
        })

    def _head(self, status, content_type, length=None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if length is None:
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Cache-Control", "no-cache")
        else:
            self.send_header("Content-Length", str(length))
        self.send_header("X-Request-Id", "req_fake_%d" % self.conn_id)

    def _json(self, status, obj):
        data = json.dumps(obj).encode()
        self._head(status, "application/json", len(data))
        self.end_headers()  # flushes the head; the body follows in one more write
        self.wfile.write(data)

    def _error(self, status, kind, message):
        if self._anthropic_style():
            self._json(status, {"type": "error", "error": {"type": kind, "message": message}})
        else:
            self._json(status, {"error": {"message": message, "type": kind, "param": None,
                                          "code": None}})

    def _sse(self, events):
        """Sends (event name or None, JSON object or raw string) pairs, --chunk-ms apart."""
        self._head(200, "text/event-stream; charset=utf-8")
        self.end_headers()
        for i, (name, data) in enumerate(events):
            if i > 0 and ARGS.chunk_ms > 0:
                time.sleep(ARGS.chunk_ms / 1000.0)
            text = data if isinstance(data, str) else json.dumps(data)
            payload = ("event: %s\n" % name if name else "") + "data: %s\n\n" % text
            raw = payload.encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(raw), raw))
        self.wfile.write(b"0\r\n\r\n")

    def _anthropic_style(self):
        return "anthropic-version" in self.headers or "x-api-key" in self.headers

    def _authorized(self):
        if not ARGS.api_key:
            return True
        return (self.headers.get("Authorization") == "Bearer " + ARGS.api_key
                or self.headers.get("x-api-key") == ARGS.api_key)

    # ---- dispatch

    def do_GET(self):
        self._dispatch()

    def do_POST(self):
        self._dispatch()

    def do_PUT(self):
        self._dispatch()

    def do_DELETE(self):
        self._dispatch()

    def _dispatch(self):
        raw = self._read_body() if self.command in ("POST", "PUT") else b""
        body = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
        path = urllib.parse.urlsplit(self.path).path
        posts = {
            "/v1/chat/completions": self._chat,
            "/v1/completions": self._completions,
            "/v1/responses": self._responses,
            "/v1/embeddings": self._embeddings,
            "/v1/messages": self._messages,
        }
        is_models = path == "/v1/models" or path.startswith("/v1/models/")
        if ARGS.fail == "503":
            status = 503
        elif path not in posts and not is_models:
            status = 404
        elif (path in posts) != (self.command == "POST") or (is_models and self.command != "GET"):
            status = 405
        elif not self._authorized():
            status = 401
        elif path in posts and not isinstance(body, dict):
            status = 400
        else:
            status = 200
        self._log(status, body, raw)
        if ARGS.latency_ms > 0:
            time.sleep(ARGS.latency_ms / 1000.0)
        if status == 503:
            return self._error(503, "overloaded_error", "the backend is unavailable (--fail 503)")
        if status == 404:
            return self._error(404, "not_found_error", "no such endpoint")
        if status == 405:
            return self._error(405, "invalid_request_error", "method not allowed")
        if status == 401:
            return self._error(401, "authentication_error", "invalid api key")
        if status == 400:
            return self._error(400, "invalid_request_error", "the body must be a JSON object")
        if is_models:
            return self._models(path)
        return posts[path](body)

    # ---- OpenAI

    def _chat(self, body):
        model = body.get("model", "")
        words = reply_words(model)
        usage = {"prompt_tokens": input_tokens(body), "completion_tokens": len(words)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        created = int(time.time())
        if not body.get("stream"):
            return self._json(200, {
                "id": "chatcmpl-fake", "object": "chat.completion", "created": created,
                "model": model, "system_fingerprint": None,
                "choices": [{"index": 0, "logprobs": None, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": "".join(words),
                                         "refusal": None}}],
                "usage": usage})
        include = bool((body.get("stream_options") or {}).get("include_usage"))

        def chunk(delta, finish=None):
            c = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": created,
                 "model": model, "system_fingerprint": None,
                 "choices": [{"index": 0, "delta": delta, "logprobs": None,
                              "finish_reason": finish}]}
            if include:
                c["usage"] = None
            return (None, c)

        events = [chunk({"role": "assistant", "content": ""})]
        events += [chunk({"content": w}) for w in words]
        events.append(chunk({}, "stop"))
        if include:
            events.append((None, {"id": "chatcmpl-fake", "object": "chat.completion.chunk",
                                  "created": created, "model": model,
                                  "system_fingerprint": None, "choices": [], "usage": usage}))
        events.append((None, "[DONE]"))
        self._sse(events)

    def _completions(self, body):
        model = body.get("model", "")
        words = reply_words(model)
        usage = {"prompt_tokens": input_tokens(body), "completion_tokens": len(words)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        created = int(time.time())
        if not body.get("stream"):
            return self._json(200, {
                "id": "cmpl-fake", "object": "text_completion", "created": created,
                "model": model,
                "choices": [{"index": 0, "text": "".join(words), "logprobs": None,
                             "finish_reason": "stop"}],
                "usage": usage})
        include = bool((body.get("stream_options") or {}).get("include_usage"))

        def chunk(text, finish=None):
            c = {"id": "cmpl-fake", "object": "text_completion", "created": created,
                 "model": model,
                 "choices": [{"index": 0, "text": text, "logprobs": None,
                              "finish_reason": finish}]}
            if include:
                c["usage"] = None
            return (None, c)

        events = [chunk(w) for w in words] + [chunk("", "stop")]
        if include:
            events.append((None, {"id": "cmpl-fake", "object": "text_completion",
                                  "created": created, "model": model, "choices": [],
                                  "usage": usage}))
        events.append((None, "[DONE]"))
        self._sse(events)

    def _responses(self, body):
        model = body.get("model", "")
        words = reply_words(model)
        text = "".join(words)
        n_in = input_tokens(body)
        usage = {"input_tokens": n_in, "input_tokens_details": {"cached_tokens": 0},
                 "output_tokens": len(words), "output_tokens_details": {"reasoning_tokens": 0},
                 "total_tokens": n_in + len(words)}
        part = {"type": "output_text", "text": text, "annotations": []}
        item = {"id": "msg_fake", "type": "message", "status": "completed",
                "role": "assistant", "content": [part]}

        def response(status, output, usage_value):
            return {"id": "resp_fake", "object": "response", "created_at": int(time.time()),
                    "status": status, "error": None, "incomplete_details": None,
                    "instructions": body.get("instructions"), "metadata": {}, "model": model,
                    "output": output, "parallel_tool_calls": True, "temperature": 1.0,
                    "tool_choice": "auto", "tools": [], "top_p": 1.0, "usage": usage_value}

        if not body.get("stream"):
            return self._json(200, response("completed", [item], usage))
        seq = iter(range(1 << 30))

        def event(kind, **fields):
            return (kind, dict({"type": kind, "sequence_number": next(seq)}, **fields))

        ids = {"item_id": "msg_fake", "output_index": 0, "content_index": 0}
        events = [
            event("response.created", response=response("in_progress", [], None)),
            event("response.in_progress", response=response("in_progress", [], None)),
            event("response.output_item.added", output_index=0,
                  item=dict(item, status="in_progress", content=[])),
            event("response.content_part.added", part=dict(part, text=""), **ids),
        ]
        events += [event("response.output_text.delta", delta=w, **ids) for w in words]
        events += [
            event("response.output_text.done", text=text, **ids),
            event("response.content_part.done", part=part, **ids),
            event("response.output_item.done", output_index=0, item=item),
            event("response.completed", response=response("completed", [item], usage)),
        ]
        self._sse(events)

    def _embeddings(self, body):
        model = body.get("model", "")
        inputs = body.get("input")
        if not isinstance(inputs, list) or (inputs and isinstance(inputs[0], int)):
            inputs = [inputs]
        data = []
        for i, text in enumerate(inputs):
            vector = embedding(text)
            if body.get("encoding_format") == "base64":
                vector = base64.b64encode(struct.pack("<%df" % len(vector), *vector)).decode()
            data.append({"object": "embedding", "index": i, "embedding": vector})
        n = input_tokens(body)
        self._json(200, {"object": "list", "data": data, "model": model,
                         "usage": {"prompt_tokens": n, "total_tokens": n}})

    def _models(self, path):
        names = ARGS.models.split(",")
        wanted = urllib.parse.unquote(path[len("/v1/models/"):]) if path != "/v1/models" else None
        if self._anthropic_style():
            def obj(m):
                return {"type": "model", "id": m, "display_name": m,
                        "created_at": "2025-01-01T00:00:00Z"}
            if wanted is not None:
                return self._json(200, obj(wanted))
            return self._json(200, {"data": [obj(m) for m in names], "has_more": False,
                                    "first_id": names[0], "last_id": names[-1]})

        def obj(m):
            return {"id": m, "object": "model", "created": 1700000000, "owned_by": "ward-test"}
        if wanted is not None:
            return self._json(200, obj(wanted))
        self._json(200, {"object": "list", "data": [obj(m) for m in names]})

    # ---- Anthropic

    def _messages(self, body):
        model = body.get("model", "")
        words = reply_words(model)
        n_in = input_tokens(body)
        message = {"id": "msg_fake", "type": "message", "role": "assistant", "model": model,
                   "content": [{"type": "text", "text": "".join(words)}],
                   "stop_reason": "end_turn", "stop_sequence": None,
                   "usage": {"input_tokens": n_in, "output_tokens": len(words)}}
        if not body.get("stream"):
            return self._json(200, message)
        start = dict(message, content=[], stop_reason=None,
                     usage={"input_tokens": n_in, "output_tokens": 1})
        events = [
            ("message_start", {"type": "message_start", "message": start}),
            ("content_block_start", {"type": "content_block_start", "index": 0,
                                     "content_block": {"type": "text", "text": ""}}),
            ("ping", {"type": "ping"}),
        ]
        events += [("content_block_delta",
                    {"type": "content_block_delta", "index": 0,
                     "delta": {"type": "text_delta", "text": w}}) for w in words]
        events += [
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            ("message_delta", {"type": "message_delta",
                               "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                               "usage": {"output_tokens": len(words)}}),
            ("message_stop", {"type": "message_stop"}),
        ]
        self._sse(events)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024  # 200 concurrent streams connect at once

    def __init__(self, addr, ssl_context=None):
        self.address_family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        self._ssl_context = ssl_context
        super().__init__(addr, Handler)

    def server_bind(self):
        if self.address_family == socket.AF_INET6:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()

    def get_request(self):
        sock, addr = self.socket.accept()
        if ARGS.fail == "reset":
            # SO_LINGER with a zero timeout: close() sends RST instead of FIN.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
            LOG.write({"event": "reset", "peer": addr[0]})
            raise OSError("reset on accept (--fail reset)")
        return sock, addr

    def finish_request(self, request, client_address):
        # In the connection's own thread: a slow TLS client does not hold up the others.
        if self._ssl_context:
            request.settimeout(10)
            try:
                request = self._ssl_context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                request.close()
                return
            request.settimeout(None)
            try:
                Handler(request, client_address, self)
            finally:
                self.shutdown_request(request)
            return
        Handler(request, client_address, self)

    def handle_error(self, request, client_address):  # a peer going away is not news
        pass


def main():
    global ARGS, LOG
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--addr", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--log")
    p.add_argument("--ready")
    p.add_argument("--fail", choices=["503", "reset"])
    p.add_argument("--api-key")
    p.add_argument("--latency-ms", type=float, default=0)
    p.add_argument("--chunk-ms", type=float, default=20)
    p.add_argument("--models", default="fake-model,fake-model-large")
    ARGS = p.parse_args()
    if bool(ARGS.tls_cert) != bool(ARGS.tls_key):
        p.error("--tls-cert and --tls-key go together")
    LOG = Log(ARGS.log)
    ctx = None
    if ARGS.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(ARGS.tls_cert, ARGS.tls_key)
        ctx.set_alpn_protocols(["http/1.1"])
    server = Server((ARGS.addr, ARGS.port), ctx)
    if ARGS.ready:
        tmp = ARGS.ready + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d %d\n" % (os.getpid(), server.server_address[1]))
        os.rename(tmp, ARGS.ready)
    server.serve_forever(poll_interval=3600)


if __name__ == "__main__":
    sys.exit(main())
