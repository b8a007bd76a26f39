#!/usr/bin/env python3
"""A webhook receiver for Parley's tests and `make run` (stdlib only).

Every request other than /_fake/* is taken as a webhook: the receiver records it (method, path,
headers, raw body, arrival time, the answer it gave) and answers according to its mode. With
--secret it also checks X-Parley-Signature exactly as docs/webhooks.md tells receivers to
(`verify()` below is the documented snippet) and records the verdict.

Control (JSON):
  POST /_fake/mode      {"mode": "ok"}                        200 {"ok": true}
                        {"mode": "status", "status": 500}     that status, a short text body
                        {"mode": "delay", "delay_ms": 3000}   waits, then 200 (a client with a
                                                              shorter timeout sees a timeout)
                        {"mode": "garbage"}                   bytes that are not HTTP, then close
                        {"mode": "close"}                     closes without answering
                        {"mode": "redirect", "location": U}   302 to U
                        {"mode": "big", "bytes": N}           200 with an N-byte body
  GET  /_fake/received  [{"method","path","headers","body","t","answered","signature_ok"}...]
  POST /_fake/reset     forgets what was received; mode back to ok

Run: python3 tests/fakes/receiver/receiver.py --port 0 [--secret S] [--mode JSON]  (prints
"fake-receiver listening on 127.0.0.1:<port>" once it accepts connections).
"""
import argparse
import hashlib
import hmac
import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 4 << 20


def verify(secret, header, body, tolerance_s=300, now=None):
    """The receiver side of X-Parley-Signature (docs/webhooks.md): True when `header`
    ("t=<unix>,v1=<hex>") signs the raw `body` bytes with `secret` and t is recent."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        t = int(parts["t"])
        got = parts["v1"]
    except (KeyError, ValueError):
        return False
    if abs((now or time.time()) - t) > tolerance_s:
        return False
    want = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(want, got)


class State:
    def __init__(self, secret):
        self.lock = threading.Lock()
        self.mode = {"mode": "ok"}
        self.received = []
        self.secret = secret


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-receiver/1"

    def setup(self):
        super().setup()
        # Headers and body go out in separate writes: without NODELAY the second waits for the
        # client's delayed ACK (~40 ms), which would be measured as our latency.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, body, ctype="application/json", extra=None):
        data = body if isinstance(body, bytes) else body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n < 0 or n > MAX_BODY:
            return None
        return self.rfile.read(n)

    def do_GET(self):
        st = self.server.state
        if self.path == "/_fake/received":
            with st.lock:
                body = json.dumps(st.received)
            return self.reply(200, body)
        return self.reply(404, '{"error": "not found"}')

    def do_POST(self):
        st = self.server.state
        body = self.read_body()
        if body is None:
            return self.reply(413, '{"error": "too large"}')
        if self.path == "/_fake/mode":
            with st.lock:
                st.mode = json.loads(body or b"{}")
            return self.reply(200, '{"ok": true}')
        if self.path == "/_fake/reset":
            with st.lock:
                st.mode = {"mode": "ok"}
                st.received = []
            return self.reply(200, '{"ok": true}')
        self.webhook(body)

    def webhook(self, body):
        st = self.server.state
        entry = {"method": self.command, "path": self.path, "t": time.time(),
                 "headers": {k: v for k, v in self.headers.items()},
                 "body": body.decode("utf-8", "replace"), "answered": None,
                 "signature_ok": None}
        if st.secret is not None:
            entry["signature_ok"] = verify(st.secret, self.headers.get("X-Parley-Signature", ""),
                                           body)
        with st.lock:
            mode = dict(st.mode)
            st.received.append(entry)
        m = mode.get("mode", "ok")
        if m == "delay":
            time.sleep(mode.get("delay_ms", 1000) / 1000.0)
        if m == "garbage":
            entry["answered"] = "garbage"
            self.wfile.write(b"this is not http at all\r\n\r\n")
            self.close_connection = True
            return
        if m == "close":
            entry["answered"] = "closed"
            self.close_connection = True
            return
        if m == "status":
            status = int(mode.get("status", 500))
            entry["answered"] = status
            return self.reply(status, "receiver says no", "text/plain")
        if m == "redirect":
            entry["answered"] = 302
            return self.reply(302, "", "text/plain", {"Location": mode.get("location", "/")})
        if m == "big":
            entry["answered"] = 200
            return self.reply(200, b"x" * int(mode.get("bytes", 1 << 20)), "text/plain")
        entry["answered"] = 200
        self.reply(200, '{"ok": true}')


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--secret", default=None, help="verify X-Parley-Signature with this secret")
    ap.add_argument("--mode", default='{"mode": "ok"}',
                    help="the mode to start in, as POST /_fake/mode takes it (JSON)")
    args = ap.parse_args()
    srv = ThreadingHTTPServer((args.host, args.port), Handler)
    srv.daemon_threads = True
    srv.state = State(args.secret)
    srv.state.mode = json.loads(args.mode)
    print(f"fake-receiver listening on {args.host}:{srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
