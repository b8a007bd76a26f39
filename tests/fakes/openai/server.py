#!/usr/bin/env python3
"""A fake OpenAI-compatible Chat Completions server (stdlib only) for Parley's tests and demos.

It follows ../../../../shared/reference/providers.md section 5: `POST /v1/chat/completions`
with Bearer auth, streamed (`text/event-stream`, `data: <json>` events, `data: [DONE]`) or not;
the final usage chunk (`choices: []`) when `stream_options.include_usage` is set and `usage: null`
on every earlier chunk; tool-call deltas split across chunks (id/type/name first, then argument
fragments, `finish_reason: "tool_calls"`); `{"error": {...}}` bodies on 4xx/5xx and an error
object mid-stream. `GET /v1/models` lists models. Replies are chosen by the last user message:
rules of a JSON script file (--script), then built-in trigger phrases (see README.md).

The SSE byte stream can be cut at arbitrary byte offsets (--split random|bytes, or the
triggers `fake:bytes` / `fake:random-split`), inside `data:` and inside UTF-8 characters; each
piece is written as its own HTTP chunk and flushed, so the client's reads see every split.

`GET /fake/requests` returns what the server received (method, path, auth header, body, and
how the response ended: complete, client_disconnected, ...; `usage`: the token counts a
non-streamed answer reported); `DELETE /fake/requests` clears it.

Run: python3 tests/fakes/openai/server.py --port 0   (prints "fake-openai listening on
127.0.0.1:<port>" once it accepts connections).
"""
import argparse
import json
import random
import re
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODELS = ["gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "fake-model"]

UNICODE_REPLY = "Grüße aus Köln — café ☕, naïve 日本語 😀!"
LONG_REPLY = " ".join(f"word{i}" for i in range(1, 201)) + "."

ERRORS = {
    401: ("invalid_request_error", "invalid_api_key"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
}
MESSAGES = {
    429: ("Rate limit reached for {model} in organization org-fake on requests per min (RPM): "
          "Limit 3, Used 3, Requested 1. Please try again in 20s."),
    500: "The server had an error while processing your request. Sorry about that!",
}
MIDSTREAM_ERROR = ("The server had an error while processing your request. "
                   "(fake mid-stream error)")


def error_body(status, message, etype=None, code=None):
    return {"error": {"message": message, "type": etype or ERRORS.get(status, ("error",))[0],
                      "param": None, "code": code}}


class Plan:
    """What to answer to one request."""

    def __init__(self):
        self.reply = None             # text content
        self.tool_calls = []          # [(name, arguments_json_text)]
        self.tool_style = "openai"    # openai | ollama (one chunk, no index)
        self.status = None            # an HTTP error status instead of a reply
        self.html_error = False
        self.midstream_error = False
        self.drop = False             # close the connection mid-stream, no [DONE]
        self.first_token_delay_ms = 0
        self.token_delay_ms = None
        self.split = None             # none | random | bytes
        self.crlf = False
        self.no_usage = False
        self.nostream = False         # a whole JSON completion even if stream was asked


def text_of(content):
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def last_user_text(messages):
    for m in reversed(messages):
        if isinstance(m, dict) and m.get("role") == "user":
            return text_of(m.get("content"))
    return ""


def tokens_of(text):
    """Splits a reply the way a tokenizer might: words with their leading space, long words in
    pieces of at most 4 characters (characters, so a token is always whole UTF-8)."""
    out = []
    for m in re.finditer(r"\s*\S+", text):
        w = m.group(0)
        while len(w) > 5:
            out.append(w[:4])
            w = w[4:]
        out.append(w)
    if text and text[-1].isspace():
        out.append(text[len(text.rstrip()):])
    return out or [""]


def prompt_tokens(messages):
    n = 0
    for m in messages:
        if isinstance(m, dict):
            n += 3 + len(text_of(m.get("content")).split())
    return n


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-openai/1"

    def log_message(self, fmt, *args):
        if self.server.opts.verbose:
            sys.stderr.write("fake-openai: " + (fmt % args) + "\n")

    # ---- plumbing ----

    def record(self, body=None):
        rec = {"method": self.command, "path": self.path,
               "authorization": self.headers.get("Authorization"),
               "content_type": self.headers.get("Content-Type"),
               "body": body, "outcome": "pending"}
        with self.server.lock:
            self.server.requests.append(rec)
            del self.server.requests[:-200]
        return rec

    def send_json(self, status, obj, headers=None):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", f"req_fake{self.server.next_id()}")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def send_error_json(self, status, message, etype=None, code=None, headers=None):
        self.send_json(status, error_body(status, message, etype, code), headers)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def authorized(self):
        key = self.server.opts.api_key
        if not key:
            return True
        auth = self.headers.get("Authorization")
        if not auth:
            self.send_error_json(401, "You didn't provide an API key. You need to provide your "
                                 "API key in an Authorization header using Bearer auth (i.e. "
                                 "Authorization: Bearer YOUR_KEY).", code=None)
            return False
        given = auth[7:] if auth.startswith("Bearer ") else auth
        if given != key:
            shown = given[:3] + "*" * 4 + given[-3:] if len(given) > 6 else "***"
            self.send_error_json(401, f"Incorrect API key provided: {shown}. You can find your "
                                 "API key at https://platform.openai.com/account/api-keys.",
                                 code="invalid_api_key")
            return False
        return True

    # ---- routes ----

    def do_GET(self):
        if self.path in ("/v1/models", "/models"):
            self.record()
            if not self.authorized():
                return
            self.send_json(200, {"object": "list", "data": [
                {"id": m, "object": "model", "created": 1700000000, "owned_by": "fake-openai"}
                for m in MODELS]})
        elif self.path == "/fake/requests":
            with self.server.lock:
                recs = json.loads(json.dumps(self.server.requests))
            self.send_json(200, recs)
        else:
            self.send_error_json(404, f"Unknown request URL: GET {self.path}.",
                                 "invalid_request_error", "unknown_url")

    def do_DELETE(self):
        if self.path == "/fake/requests":
            with self.server.lock:
                self.server.requests.clear()
            self.send_json(200, {"deleted": True})
        else:
            self.send_error_json(404, f"Unknown request URL: DELETE {self.path}.",
                                 "invalid_request_error", "unknown_url")

    def do_POST(self):
        raw = self.read_body()
        if self.path not in ("/v1/chat/completions", "/chat/completions"):
            self.record()
            self.send_error_json(404, f"Unknown request URL: POST {self.path}.",
                                 "invalid_request_error", "unknown_url")
            return
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            body = None
        rec = self.record(body if body is not None else raw.decode("utf-8", "replace"))
        if not self.authorized():
            rec["outcome"] = "http_401"
            return
        problem = self.check(body)
        if problem:
            rec["outcome"] = "http_400"
            self.send_error_json(400, problem, "invalid_request_error")
            return
        plan = self.plan(body)
        try:
            self.answer(body, plan, rec)
        except (BrokenPipeError, ConnectionResetError):
            rec["outcome"] = "client_disconnected"
            self.close_connection = True

    @staticmethod
    def check(body):
        if not isinstance(body, dict):
            return "We could not parse the JSON body of your request."
        if not isinstance(body.get("model"), str) or not body["model"]:
            return "you must provide a model parameter"
        msgs = body.get("messages")
        if not isinstance(msgs, list) or not msgs:
            return "'messages' must be a non-empty array"
        for i, m in enumerate(msgs):
            if not isinstance(m, dict) or m.get("role") not in (
                    "system", "developer", "user", "assistant", "tool"):
                return f"Invalid value for 'messages[{i}].role'."
            if m["role"] == "tool" and not m.get("tool_call_id"):
                return f"Missing required parameter: 'messages[{i}].tool_call_id'."
            if m.get("content") is None and not m.get("tool_calls"):
                return f"Invalid value for 'messages[{i}].content': expected a string, got null."
        if "stream_options" in body and not body.get("stream"):
            return "The 'stream_options' parameter is only allowed when 'stream' is enabled."
        if "tools" in body and not isinstance(body["tools"], list):
            return "Invalid type for 'tools': expected an array."
        return None

    def plan(self, body):
        text = last_user_text(body["messages"])
        low = text.lower()
        p = Plan()
        for rule in self.server.script.get("rules", []):
            if re.search(rule.get("match", "$^"), text, re.I):
                self.apply_rule(p, rule, text)
                break
        else:
            self.builtin(p, low, text)
        # Modifier triggers combine with any reply.
        if "fake:bytes" in low:
            p.split = "bytes"
        if "fake:random-split" in low:
            p.split = "random"
        if "fake:crlf" in low:
            p.crlf = True
        if "fake:no-usage" in low:
            p.no_usage = True
        if "fake:nostream" in low:
            p.nostream = True
        m = re.search(r"fake:slow(?:=(\d+))?", low)
        if m:
            p.first_token_delay_ms = int(m.group(1) or self.server.opts.slow_ms)
        m = re.search(r"fake:token-delay=(\d+)", low)
        if m:
            p.token_delay_ms = int(m.group(1))
        return p

    @staticmethod
    def apply_rule(p, rule, text):
        err = rule.get("error")
        if err == "midstream":
            p.midstream_error = True
        elif err == "drop":
            p.drop = True
        elif isinstance(err, int):
            p.status = err
        tc = rule.get("tool_call")
        if tc:
            args = tc.get("arguments", {})
            p.tool_calls.append((tc["name"], args if isinstance(args, str) else json.dumps(args)))
        if "reply" in rule:
            p.reply = rule["reply"].replace("{heard}", text)
        elif not tc:
            p.reply = "OK."
        p.first_token_delay_ms = rule.get("first_token_delay_ms", 0)
        p.token_delay_ms = rule.get("token_delay_ms")
        p.split = rule.get("split")

    def builtin(self, p, low, text):
        if "fake:401" in low:
            p.status = 401
        elif "fake:429" in low:
            p.status = 429
        elif "fake:500" in low:
            p.status = 500
        elif "fake:502-html" in low:
            p.status, p.html_error = 502, True
        elif "fake:tool-parallel" in low:
            p.tool_calls = [("lookup_order", json.dumps({"order_id": "A-1001"})),
                            ("end_call", json.dumps({"reason": "done"}))]
        elif "fake:tool-ollama-parallel" in low:
            p.tool_style = "ollama-chunks"
            p.tool_calls = [("lookup_order", json.dumps({"order_id": "A-1001"})),
                            ("end_call", json.dumps({"reason": "done"}))]
        elif "fake:tool-ollama" in low:
            p.tool_style = "ollama"
            p.tool_calls = [("end_call", json.dumps({"reason": "caller asked"}))]
        elif "fake:tool" in low:
            p.tool_calls = [("end_call", json.dumps({"reason": "caller asked to end the call",
                                                     "note": "naïve café"}))]
        elif "fake:error-midstream" in low:
            p.midstream_error = True
            p.reply = "I was about to say something"
        elif "fake:drop" in low:
            p.drop = True
            p.reply = "This reply never finishes because the connection drops"
        elif "fake:unicode" in low:
            p.reply = UNICODE_REPLY
        elif "fake:long" in low:
            p.reply = LONG_REPLY
            p.token_delay_ms = 30
        elif re.search(r"\bhello\b", low):
            p.reply = "Hello! How can I help you today?"
        else:
            p.reply = f"You said: {text}" if text else "I did not hear anything."
        if p.reply is None and not p.tool_calls and p.status is None:
            p.reply = "OK."

    # ---- answers ----

    def answer(self, body, plan, rec):
        model = body["model"]
        if plan.status is not None:
            rec["outcome"] = f"http_{plan.status}"
            if plan.html_error:
                data = (b"<html><head><title>502 Bad Gateway</title></head><body>"
                        b"<center><h1>502 Bad Gateway</h1></center></body></html>")
                self.send_response(502)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            msg = MESSAGES.get(plan.status, "error").format(model=model)
            etype, code = ERRORS.get(plan.status, ("error", None))
            if plan.status == 401:
                msg = "Incorrect API key provided: sk-***. (fake:401)"
            self.send_error_json(plan.status, msg, etype, code,
                                 {"retry-after": "1"} if plan.status == 429 else None)
            return
        if not body.get("stream") or plan.nostream:
            self.answer_whole(body, plan, rec)
        else:
            self.answer_stream(body, plan, rec)

    def completion_id(self):
        return f"chatcmpl-fake{self.server.next_id()}"

    def answer_whole(self, body, plan, rec):
        if plan.first_token_delay_ms:
            time.sleep(plan.first_token_delay_ms / 1000)
        toks = tokens_of(plan.reply) if plan.reply else []
        msg = {"role": "assistant", "content": plan.reply, "refusal": None}
        if plan.tool_calls:
            msg["tool_calls"] = [{"id": f"call_fake{i}", "type": "function",
                                  "function": {"name": n, "arguments": a}}
                                 for i, (n, a) in enumerate(plan.tool_calls)]
        pt, ct = prompt_tokens(body["messages"]), len(toks) + len(plan.tool_calls) * 8
        self.send_json(200, {
            "id": self.completion_id(), "object": "chat.completion", "created": int(time.time()),
            "model": body["model"], "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "message": msg, "logprobs": None,
                         "finish_reason": "tool_calls" if plan.tool_calls else "stop"}],
            "usage": {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct}})
        rec["usage"] = {"prompt_tokens": pt, "completion_tokens": ct}
        rec["outcome"] = "complete"

    def answer_stream(self, body, plan, rec):
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        cid, created, model = self.completion_id(), int(time.time()), body["model"]
        nl = "\r\n" if (plan.crlf or self.server.opts.crlf) else "\n"
        split = plan.split or self.server.opts.split
        delay = plan.token_delay_ms if plan.token_delay_ms is not None \
            else self.server.opts.token_delay_ms
        rng = random.Random(self.server.opts.seed + self.server.next_id())

        def chunk(delta, finish=None, choices=True):
            obj = {"id": cid, "object": "chat.completion.chunk", "created": created,
                   "model": model, "system_fingerprint": "fp_fake",
                   "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                "finish_reason": finish}] if choices else []}
            if include_usage:
                obj["usage"] = None
            return obj

        def event(obj):
            data = obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False)
            return f"data: {data}{nl}{nl}".encode("utf-8")

        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("x-request-id", f"req_fake{self.server.next_id()}")
        self.end_headers()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def write(data):
            if not data:
                return
            if split == "bytes":
                pieces = [data[i:i + 1] for i in range(len(data))]
            elif split == "random":
                pieces, i = [], 0
                while i < len(data):
                    n = rng.randint(1, self.server.opts.max_chunk)
                    pieces.append(data[i:i + n])
                    i += n
            else:
                pieces = [data]
            for p in pieces:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(p), p))
                self.wfile.flush()

        # Slow first token: keep-alive comments meanwhile (they are not tokens).
        waited = 0
        while waited < plan.first_token_delay_ms:
            step = min(250, plan.first_token_delay_ms - waited)
            time.sleep(step / 1000)
            waited += step
            write(f": keep-alive{nl}{nl}".encode())

        events = [event(chunk({"role": "assistant", "content": "", "refusal": None}))]
        toks = tokens_of(plan.reply) if plan.reply else []
        ntok = 0
        for t in toks:
            events.append(event(chunk({"content": t})))
            ntok += 1
        if plan.tool_calls:
            events += self.tool_events(plan, chunk, event)
            ntok += len(plan.tool_calls) * 8

        if plan.midstream_error:
            events = events[:4]
            events.append(event({"error": {"message": MIDSTREAM_ERROR, "type": "server_error",
                                           "param": None, "code": None}}))
        elif plan.drop:
            events = events[:4]
        else:
            events.append(event(chunk({}, "tool_calls" if plan.tool_calls else "stop")))
            if include_usage and not plan.no_usage:
                pt = prompt_tokens(body["messages"])
                u = chunk({}, choices=False)
                u["usage"] = {"prompt_tokens": pt, "completion_tokens": ntok,
                              "total_tokens": pt + ntok}
                events.append(event(u))
            events.append(event("[DONE]"))

        if not delay and split == "random":
            write(b"".join(events))  # splits fall across event boundaries too
        else:
            for i, e in enumerate(events):
                if delay and i > 1:
                    time.sleep(delay / 1000)
                write(e)
        if plan.drop:
            rec["outcome"] = "dropped"
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
        rec["outcome"] = "error_midstream" if plan.midstream_error else "complete"

    @staticmethod
    def tool_events(plan, chunk, event):
        out = []
        if plan.tool_style == "ollama":
            # One chunk carrying whole calls, without `index` (Ollama's old shape).
            out.append(event(chunk({"tool_calls": [
                {"id": f"call_fake{i}", "type": "function",
                 "function": {"name": n, "arguments": a}}
                for i, (n, a) in enumerate(plan.tool_calls)]})))
            return out
        if plan.tool_style == "ollama-chunks":
            # Whole calls without `index`, one chunk each.
            for i, (n, a) in enumerate(plan.tool_calls):
                out.append(event(chunk({"tool_calls": [
                    {"id": f"call_fake{i}", "type": "function",
                     "function": {"name": n, "arguments": a}}]})))
            return out
        frags = []
        for i, (n, a) in enumerate(plan.tool_calls):
            out.append(event(chunk({"tool_calls": [
                {"index": i, "id": f"call_fake{i}", "type": "function",
                 "function": {"name": n, "arguments": ""}}]})))
            frags.append([a[j:j + 5] for j in range(0, len(a), 5)])
        # Argument fragments; parallel calls interleave.
        while any(frags):
            for i, f in enumerate(frags):
                if f:
                    out.append(event(chunk({"tool_calls": [
                        {"index": i, "function": {"arguments": f.pop(0)}}]})))
        return out


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, opts):
        super().__init__(addr, Handler)
        self.opts = opts
        self.lock = threading.Lock()
        self.requests = []
        self._id = 0
        self.script = {}
        if opts.script:
            with open(opts.script, encoding="utf-8") as f:
                self.script = json.load(f)

    def handle_error(self, request, client_address):
        # A client going away (a cancelled stream, a closed keep-alive connection) is normal.
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)

    def next_id(self):
        with self.lock:
            self._id += 1
            return self._id


def main():
    ap = argparse.ArgumentParser(description="Fake OpenAI-compatible chat completions server")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    ap.add_argument("--api-key", default="sk-fake", help="the Bearer key required")
    ap.add_argument("--no-auth", action="store_true", help="accept any or no key")
    ap.add_argument("--script", help="JSON file of reply rules (see README.md)")
    ap.add_argument("--split", choices=["none", "random", "bytes"], default="none",
                    help="how to cut the SSE byte stream into HTTP chunks")
    ap.add_argument("--max-chunk", type=int, default=7, help="largest random piece (bytes)")
    ap.add_argument("--seed", type=int, default=1, help="random split seed")
    ap.add_argument("--token-delay-ms", type=int, default=0, help="pause between chunks")
    ap.add_argument("--slow-ms", type=int, default=3000, help="first-token delay of fake:slow")
    ap.add_argument("--crlf", action="store_true", help="end SSE lines with CRLF")
    ap.add_argument("--verbose", action="store_true")
    opts = ap.parse_args()
    if opts.no_auth:
        opts.api_key = ""
    srv = Server((opts.host, opts.port), opts)
    print(f"fake-openai listening on {opts.host}:{srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
