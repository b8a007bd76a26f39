"""The carrier fake (tests/fakes/carrier/carrier.py) checked against the carriers' wire protocols
as /work/shared/reference/providers.md states them (sections 1-3 and 7), not against our C code.

The suite starts the fake, plus a small stdlib "our server" of its own: an HTTP receiver for the
status callbacks (verifying signatures with code written here, not the fake's), which also serves
TwiML / answer XML and accepts the media WebSocket (a minimal RFC 6455 server) so each carrier's
message sequence, formats, pacing, marks, clear and recordings can be checked.
"""
import base64
import hashlib
import hmac
import importlib.util
import json
import math
import os
import queue
import re
import struct
import subprocess
import sys
import threading
import time
import warnings
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode, urlsplit

import harness

CARRIER_PY = os.path.join(harness.ROOT, "tests", "fakes", "carrier", "carrier.py")
_spec = importlib.util.spec_from_file_location("carrier_fake", CARRIER_PY)
carrier = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(carrier)

D = carrier.DEFAULTS
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
FROM = "+15005550100"


# ------------------------------------------------------------------------------------------------
# The fake as a process

class FakeProcess:
    """Quacks like harness.Service so ctx.close() stops it and failures show its log tail."""

    def __init__(self, port, workdir, *extra):
        self.name = "carrier"
        self.port = port
        self.log_path = os.path.join(workdir, "carrier.log")
        self.record_dir = os.path.join(workdir, "recordings")
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, CARRIER_PY, "--port", str(port), "--record-dir", self.record_dir,
             *extra], stdout=log, stderr=log, cwd=harness.ROOT, start_new_session=True)
        harness.stack.wait_port(port, timeout=10, proc=self.proc)

    def stop(self, kill=False):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")


# ------------------------------------------------------------------------------------------------
# "Our server": callback receiver + media WebSocket server

class ServerWS:
    """The accepting side of one media WebSocket (what our gateway is to the carrier)."""

    def __init__(self, sock, rfile, req):
        self.sock = sock
        self.rfile = rfile
        self.req = req
        self.cond = threading.Condition()
        self.msgs = []  # (monotonic time, parsed JSON)
        self.unmasked_frames = 0
        self.binary_frames = 0
        self.pongs = []
        self.close_code = None
        self.close_sent = False
        self.closed = threading.Event()
        self.done = threading.Event()
        self.wlock = threading.Lock()
        threading.Thread(target=self._reader, daemon=True).start()

    def _read(self, n):
        data = self.rfile.read(n)
        if data is None or len(data) < n:
            raise EOFError
        return data

    def _reader(self):
        frags, frag_op = [], None
        try:
            while True:
                b0, b1 = self._read(2)
                fin, op, n = b0 & 0x80, b0 & 0x0F, b1 & 0x7F
                if n == 126:
                    n = struct.unpack("!H", self._read(2))[0]
                elif n == 127:
                    n = struct.unpack("!Q", self._read(8))[0]
                if not b1 & 0x80:
                    self.unmasked_frames += 1
                    payload = self._read(n)
                else:
                    key = self._read(4)
                    payload = bytes(b ^ key[i % 4] for i, b in enumerate(self._read(n)))
                if op == 0x8:
                    self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 \
                        else 1005
                    if not self.close_sent:
                        self.close_sent = True
                        self._send(0x8, payload[:2])
                    break
                if op == 0x9:
                    self._send(0xA, payload)
                    continue
                if op == 0xA:
                    self.pongs.append(payload)
                    continue
                if op in (0x1, 0x2):
                    frag_op, frags = op, [payload]
                elif op == 0x0:
                    frags.append(payload)
                if not fin:
                    continue
                data = b"".join(frags)
                if frag_op == 0x2:
                    self.binary_frames += 1
                    continue
                with self.cond:
                    self.msgs.append((time.monotonic(), json.loads(data)))
                    self.cond.notify_all()
        except (EOFError, OSError, ValueError):
            pass
        finally:
            self.closed.set()
            with self.cond:
                self.cond.notify_all()

    def _send(self, op, payload, fin=True):
        n = len(payload)
        b0 = (0x80 if fin else 0) | op
        if n < 126:
            hdr = struct.pack("!BB", b0, n)
        elif n < 65536:
            hdr = struct.pack("!BBH", b0, 126, n)
        else:
            hdr = struct.pack("!BBQ", b0, 127, n)
        with self.wlock:
            self.sock.sendall(hdr + payload)

    def send(self, obj, fragments=1, ping_inside=False):
        data = json.dumps(obj).encode()
        if fragments <= 1:
            return self._send(0x1, data)
        step = math.ceil(len(data) / fragments)
        pieces = [data[i:i + step] for i in range(0, len(data), step)]
        for i, p in enumerate(pieces):
            self._send(0x1 if i == 0 else 0x0, p, fin=(i == len(pieces) - 1))
            if i == 0 and ping_inside:
                self._send(0x9, b"are-you-there")

    def close(self, code=1000):
        self.close_sent = True
        self._send(0x8, struct.pack("!H", code))

    def events(self, name=None):
        with self.cond:
            return [(t, m) for t, m in self.msgs if name is None or m.get("event") == name]

    def wait(self, pred, timeout=5.0, what="message"):
        """First (time, msg) with pred(msg); waits for it."""
        def find():
            for t, m in self.msgs:
                if pred(m):
                    return t, m
            return None
        with self.cond:
            self.cond.wait_for(lambda: find() is not None or self.closed.is_set(), timeout)
            hit = find()
        if hit is None:
            names = [m.get("event") for _, m in self.msgs]
            raise AssertionError(f"no {what} within {timeout}s; got events "
                                 f"{names[:10]}...{names[-10:]} closed={self.closed.is_set()}")
        return hit

    def wait_event(self, event_name, timeout=5.0, **match):
        return self.wait(lambda m: m.get("event") == event_name and
                         all(_dig(m, k) == v for k, v in match.items()), timeout, event_name)


def _dig(m, dotted):
    for p in dotted.split("__"):
        m = m.get(p) if isinstance(m, dict) else None
    return m


class Peer:
    """HTTP server standing in for our gateway: records requests, serves documents, accepts WS."""

    def __init__(self):
        self.port = harness.stack.free_port()
        self.cond = threading.Condition()
        self.requests = []
        self.routes = {}  # path -> fn(req) -> (status, body, content type)
        self.ws_waiting = {}  # path -> queue.Queue of ServerWS
        self.ws_refuse = set()
        peer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                peer._handle(self)

            def do_POST(self):
                peer._handle(self)

        self.srv = ThreadingHTTPServer(("127.0.0.1", self.port), H)
        self.srv.daemon_threads = True
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def url(self, path, scheme="http"):
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def expect_ws(self, path):
        self.ws_waiting[path] = queue.Queue()

    def accept_ws(self, path, timeout=5.0):
        try:
            return self.ws_waiting[path].get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"the fake did not open {path} within {timeout}s")

    def _handle(self, h):
        u = urlsplit(h.path)
        n = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(n) if n else b""
        req = {"method": h.command, "path": u.path, "query": u.query, "target": h.path,
               "headers": {k.lower(): v for k, v in h.headers.items()},
               "params": parse_qsl(body.decode() if h.command == "POST" else u.query,
                                   keep_blank_values=True),
               "t": time.monotonic()}
        req["p"] = dict(req["params"])
        if h.headers.get("Upgrade", "").lower() == "websocket":
            return self._ws(h, req)
        with self.cond:
            self.requests.append(req)
            self.cond.notify_all()
        fn = self.routes.get(u.path)
        status, out, ctype = fn(req) if fn else (200, "", "text/plain")
        data = out.encode()
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _ws(self, h, req):
        h.close_connection = True
        path = req["path"]
        hd = req["headers"]
        ok = (path in self.ws_waiting and path not in self.ws_refuse and
              hd.get("sec-websocket-version") == "13" and "sec-websocket-key" in hd and
              "upgrade" in hd.get("connection", "").lower())
        if not ok:
            h.send_response(403)
            h.send_header("Content-Length", "0")
            h.end_headers()
            with self.cond:
                self.requests.append(req)
                self.cond.notify_all()
            return
        accept = base64.b64encode(hashlib.sha1((hd["sec-websocket-key"] + WS_GUID).encode())
                                  .digest()).decode()
        h.connection.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                              "Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept +
                              "\r\n\r\n").encode())
        ws = ServerWS(h.connection, h.rfile, req)
        self.ws_waiting[path].put(ws)
        while not ws.done.wait(0.05):
            if ws.closed.is_set():
                break

    def reqs(self, prefix):
        with self.cond:
            return [r for r in self.requests if r["path"].startswith(prefix)]

    def wait(self, prefix, pred=lambda rs: rs, timeout=8.0):
        with self.cond:
            ok = self.cond.wait_for(lambda: pred([r for r in self.requests
                                                  if r["path"].startswith(prefix)]), timeout)
            rs = [r for r in self.requests if r["path"].startswith(prefix)]
        assert ok, f"requests to {prefix} never satisfied the condition: " \
                   f"{[(r['path'], r['p'].get('CallStatus') or r['p'].get('Status')) for r in rs]}"
        return rs


# ------------------------------------------------------------------------------------------------
# Signature checks written from providers.md (independent of the fake's code)

def twilio_expected(token, url, params):
    s = url + "".join(k + v for k, v in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), s.encode(), hashlib.sha1).digest()).decode()


def check_twilio_sig(peer, r):
    url = peer.url(r["target"])
    params = r["params"] if r["method"] == "POST" else []
    assert r["headers"].get("x-twilio-signature") == twilio_expected(D["twilio_token"], url,
                                                                     params), r


def plivo_expected(token, url, params, nonce):
    u = urlsplit(url)
    base = f"{u.scheme}://{u.netloc}{u.path}"
    q = sorted(parse_qsl(u.query, keep_blank_values=True))
    qs = "&".join(f"{k}={v}" for k, v in q)
    base += "?" + qs + ("." if qs else "") + "".join(k + v for k, v in sorted(params))
    msg = base + "." + nonce
    mac = hmac.new(token.encode(), msg.encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def check_plivo_sig(peer, r):
    h = r["headers"]
    nonce = h.get("x-plivo-signature-v3-nonce")
    assert nonce, r
    want = plivo_expected(D["plivo_token"], peer.url(r["target"]), r["params"], nonce)
    assert want in h.get("x-plivo-signature-v3", "").split(","), r
    assert want in h.get("x-plivo-signature-ma-v3", "").split(","), r


# ------------------------------------------------------------------------------------------------
# Helpers

def basic(user, pw):
    return "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()


def fake(ctx, method, path, form=None, body=None, auth=None):
    headers = {}
    raw = None
    if auth is not None:
        headers["Authorization"] = basic(*auth)
    if form is not None:
        raw = urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    return ctx.http(method, path, body=body, raw=raw, headers=headers, port=ctx.fake.port)


TW_AUTH = (D["twilio_sid"], D["twilio_token"])
PL_AUTH = (D["plivo_id"], D["plivo_token"])
EX_AUTH = (D["exotel_key"], D["exotel_token"])
TW_CALLS = f"/2010-04-01/Accounts/{D['twilio_sid']}/Calls"
PL_CALL = f"/v1/Account/{D['plivo_id']}/Call/"
EX_NEW = f"/v1/accounts/{D['exotel_sid']}/calls/connect"
EX_CLASSIC = f"/v1/Accounts/{D['exotel_sid']}/Calls/connect"

TWILIO_EVENTS = ["initiated", "ringing", "answered", "completed"]


def twilio_dial(ctx, to, tag, events=TWILIO_EVENTS, **extra):
    form = [("To", to), ("From", FROM), ("Url", ctx.peer.url(f"/tw/{tag}/answer")),
            ("StatusCallback", ctx.peer.url(f"/tw/{tag}/status"))]
    form += [("StatusCallbackEvent", e) for e in events]
    form += list(extra.items())
    return fake(ctx, "POST", TW_CALLS + ".json", form=form, auth=TW_AUTH)


def twiml_stream(ctx, tag, params=None, query=""):
    ps = "".join(f'<Parameter name="{k}" value="{v}"/>' for k, v in (params or {}).items())
    doc = ('<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="'
           + ctx.peer.url(f"/media/tw/{tag}", "ws") + query
           + f'">{ps}</Stream></Connect></Response>')
    ctx.peer.routes[f"/tw/{tag}/answer"] = lambda r: (200, doc, "text/xml")
    ctx.peer.expect_ws(f"/media/tw/{tag}")


def plivo_dial(ctx, to, tag, **extra):
    body = {"from": FROM[1:], "to": to, "answer_url": ctx.peer.url(f"/pl/{tag}/answer"),
            "answer_method": "POST", "ring_url": ctx.peer.url(f"/pl/{tag}/ring"),
            "hangup_url": ctx.peer.url(f"/pl/{tag}/hangup?b=2&a=1")}
    body.update(extra)
    return fake(ctx, "POST", PL_CALL, body=body, auth=PL_AUTH)


def statuses(reqs, key="CallStatus"):
    return [r["p"].get(key) for r in reqs]


def call_record(ctx, sid):
    r = fake(ctx, "GET", f"/_fake/calls/{sid}")
    assert r.status == 200, r
    return r.json


def wait_ended(ctx, sid, timeout=8.0):
    return harness.eventually(lambda: (lambda c: c if c["settled"] else None)(
        call_record(ctx, sid)), timeout=timeout)


def tone_pcm(freq, ms, rate, amp=9000):
    n = rate * ms // 1000
    return struct.pack(f"<{n}h", *(int(amp * math.sin(2 * math.pi * freq * i / rate))
                                   for i in range(n)))


def rms_and_crossings(pcm):
    """(RMS, zero crossings per second at 8 kHz) of PCM16 bytes."""
    s = struct.unpack(f"<{len(pcm) // 2}h", pcm)
    rms = math.sqrt(sum(x * x for x in s) / len(s))
    zc = sum(1 for a, b in zip(s, s[1:]) if (a < 0) != (b < 0))
    return rms, zc * 8000 / len(s)


def callee_audio(media, first, last):
    """Decoded PCM16 of Twilio media chunks first..last (1-based, inclusive)."""
    return b"".join(carrier.ulaw_decode(base64.b64decode(m["media"]["payload"]))
                    for _, m in media[first - 1:last])


def read_wav(path):
    data = open(path, "rb").read()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE", path
    tag, ch, rate, byte_rate, align, bits = struct.unpack("<HHIIHH", data[20:36])
    assert (tag, ch, bits, align, byte_rate) == (1, 1, 16, 2, rate * 2), (tag, ch, bits)
    assert data[36:40] == b"data"
    n = struct.unpack("<I", data[40:44])[0]
    assert struct.unpack("<I", data[4:8])[0] == 36 + n and len(data) == 44 + n
    return rate, data[44:]


def check_media_pacing(frames, ms_per_chunk):
    """frames: [(arrival time, timestamp ms)]: never ahead of real time by more than 3 chunks,
    and no slower than real time by more than 15%."""
    t0, ts0 = frames[0]
    for t, ts in frames:
        assert (t - t0) * 1000 >= (ts - ts0) - 3 * ms_per_chunk, ("ran ahead", t - t0, ts - ts0)
    span = frames[-1][0] - t0
    assert span * 1000 <= (frames[-1][1] - ts0) * 1.15 + 60, ("too slow", span, frames[-1][1])


# ------------------------------------------------------------------------------------------------

TTS_SCRIPT = """import math, struct, sys
text = " ".join(sys.argv[1:])
rate = 16000
n = rate * 40 * len(text) // 1000  # 40 ms per character of a 300 Hz "voice"
pcm = struct.pack("<%dh" % n, *(int(10000 * math.sin(2 * math.pi * 300 * i / rate))
                                for i in range(n)))
hdr = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + len(pcm), b"WAVE", b"fmt ", 16, 1, 1,
                  rate, rate * 2, 2, 16, b"data", len(pcm))
sys.stdout.buffer.write(hdr + pcm)
"""


def setup(ctx):
    port = harness.stack.free_port()
    tts = os.path.join(ctx.workdir, "tts.py")
    with open(tts, "w") as f:
        f.write(TTS_SCRIPT)
    ctx.fake = FakeProcess(port, ctx.workdir, "--max-call-seconds", "15",
                           "--voice-cmd", f"{sys.executable} {tts} {{text}}")
    ctx.services["carrier"] = ctx.fake
    ctx.peer = Peer()


def test_mulaw_codec_and_signature_vectors(ctx):
    # providers.md section 7 check values
    assert [carrier.ulaw2lin(u) for u in (0xFF, 0x7F, 0x00, 0x80)] == [0, 0, -32124, 32124]
    assert [carrier.lin2ulaw(s) for s in (0, 1000, -1000, 32767, -32768)] == \
        [0xFF, 0xCE, 0x4E, 0x80, 0x00]
    # bit-exact with CPython audioop for every input (deprecated but present in 3.11)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop
    every = struct.pack("<65536h", *range(-32768, 32768))
    assert carrier.ulaw_encode(every) == audioop.lin2ulaw(every, 2)
    assert carrier.ulaw_decode(bytes(range(256))) == audioop.ulaw2lin(bytes(range(256)), 2)
    # providers.md section 1: Twilio test vector
    assert carrier.twilio_signature(
        "12345", "https://mycompany.com/myapp.php?foo=1&bar=2",
        {"CallSid": "CA1234567890ABCDE", "Caller": "+12349013030", "Digits": "1234",
         "From": "+12349013030", "To": "+18005551212"}) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    # providers.md section 2: Plivo V3 vector, message then signature
    params = {"CallUUID": "abc", "From": "14155550100"}
    assert carrier.plivo_v3_base("https://example.com/answer/", params) + ".12345" == \
        "https://example.com/answer/?CallUUIDabcFrom14155550100.12345"
    assert carrier.plivo_signature_v3("MYTOKEN", "https://example.com/answer/", params,
                                      "12345") == "QG9pb3obHhjArnDrOd2tWKf4rAcpB/KjF6sl21j21oA="
    # with a query string: sorted query, then '.', then the sorted POST params
    assert carrier.plivo_v3_base("https://x.io/h/?b=2&a=1", params) == \
        "https://x.io/h/?a=1&b=2.CallUUIDabcFrom14155550100"
    # WAV round trip through the fake's chunk-walking reader (with a LIST chunk in the way)
    pcm = tone_pcm(300, 50, 16000)
    wav = carrier.wav_bytes(pcm, 16000)
    odd = wav[:36] + b"LIST" + struct.pack("<I", 3) + b"abc\0" + wav[36:]
    odd = odd[:4] + struct.pack("<I", len(odd) - 8) + odd[8:]
    assert carrier.parse_wav(odd) == (pcm, 16000)


def test_basic_auth_required(ctx):
    form = [("To", "+15005550006"), ("From", FROM), ("Url", "http://127.0.0.1:1/x")]
    cases = [
        ("POST", TW_CALLS + ".json", TW_AUTH, "twilio"),
        ("GET", TW_CALLS + "/CA" + "0" * 32 + ".json", TW_AUTH, "twilio"),
        ("POST", PL_CALL, PL_AUTH, "plivo"),
        ("DELETE", PL_CALL + "nope/", PL_AUTH, "plivo"),
        ("POST", EX_NEW, EX_AUTH, "exotel"),
        ("POST", EX_CLASSIC + ".json", EX_AUTH, "exotel"),
    ]
    before = len(fake(ctx, "GET", "/_fake/dials").json)
    for method, path, (user, pw), name in cases:
        kw = {"form": form} if name != "plivo" else {"body": {"to": "1"}}
        if method != "POST":
            kw = {}
        for auth in (None, (user, pw + "x"), (user + "x", pw)):
            r = fake(ctx, method, path, auth=auth, **kw)
            assert r.status == 401, (path, auth, r)
            assert "basic" in r.headers.get("WWW-Authenticate", "").lower()
        if name == "twilio":
            assert r.json["code"] == 20003 and r.json["status"] == 401, r
    # the right credentials on another account's path are refused too
    r = fake(ctx, "POST", "/2010-04-01/Accounts/AC" + "f" * 32 + "/Calls.json", form=form,
             auth=TW_AUTH)
    assert r.status == 401, r
    # no 401 ever dialled: they are in the dial log with status 401 and no sid
    dials = fake(ctx, "GET", "/_fake/dials").json[before:]
    assert dials and all(d["status"] == 401 and d["sid"] is None for d in dials), dials
    assert fake(ctx, "GET", "/_fake/health").json["ok"] is True


def test_create_responses_and_errors(ctx):
    fake(ctx, "POST", "/_fake/reset")
    # Twilio: 201 Call JSON
    r = twilio_dial(ctx, "+15005550002", "create", Timeout="30")
    assert r.status == 201, r
    c = r.json
    assert re.fullmatch(r"CA[0-9a-f]{32}", c["sid"]), c
    assert c["status"] == "queued" and c["direction"] == "outbound-api", c
    assert c["to"] == "+15005550002" and c["from"] == FROM
    assert c["account_sid"] == D["twilio_sid"] and c["api_version"] == "2010-04-01"
    assert c["uri"] == f"{TW_CALLS}/{c['sid']}.json"
    assert c["subresource_uris"]["streams"].endswith("/Streams.json")
    assert parsedate_to_datetime(c["date_created"]).tzinfo is not None
    # fetch, cancel (ringing), then 404 20404
    r = fake(ctx, "GET", c["uri"], auth=TW_AUTH)
    assert r.status == 200 and r.json["sid"] == c["sid"], r
    harness.eventually(lambda: fake(ctx, "GET", c["uri"], auth=TW_AUTH).json["status"]
                       == "ringing", timeout=3)
    r = fake(ctx, "POST", c["uri"], form=[("Status", "canceled")], auth=TW_AUTH)
    assert r.status == 200 and r.json["status"] == "canceled", r
    r = fake(ctx, "POST", c["uri"], form=[("Status", "completed")], auth=TW_AUTH)
    assert r.status == 404 and r.json["code"] == 20404, r
    canceled = ctx.peer.wait("/tw/create/status", lambda rs: "canceled" in statuses(rs))
    assert statuses(canceled) == ["initiated", "ringing", "canceled"], statuses(canceled)
    r = fake(ctx, "GET", TW_CALLS + "/CA" + "1" * 32 + ".json", auth=TW_AUTH)
    assert r.status == 404 and r.json["code"] == 20404, r
    # Twilio: invalid numbers -> 400 21211 (suffix 0003, or To not E.164)
    for to in ("+15005550003", "5005550006", "+0123"):
        r = twilio_dial(ctx, to, "invalid")
        assert r.status == 400, r
        assert r.json["code"] == 21211 and r.json["status"] == 400, r.json
        assert r.json["more_info"] == "https://www.twilio.com/docs/errors/21211"
    r = fake(ctx, "POST", TW_CALLS + ".json", form=[("From", FROM), ("Url", "http://x/")],
             auth=TW_AUTH)
    assert r.status == 400 and r.json["code"] == 21201, r
    # Plivo: 201 call fired / 400 error
    r = plivo_dial(ctx, "15005550002", "create", ring_timeout=30)
    assert r.status == 201, r
    assert set(r.json) == {"api_id", "message", "request_uuid"}, r.json
    assert r.json["message"].lower() == "call fired"
    req_uuid = r.json["request_uuid"]
    for body in ({"from": "1500", "to": "15005550003", "answer_url": "http://x/"},
                 {"from": "15005550100", "to": "15005550006"}):
        r = fake(ctx, "POST", PL_CALL, body=body, auth=PL_AUTH)
        assert r.status == 400 and "api_id" in r.json and r.json["error"], r
    # Plivo: the call UUID arrives on ring_url; DELETE /Call/{uuid}/ -> 204, then 404
    ring = ctx.peer.wait("/pl/create/ring")[0]
    check_plivo_sig(ctx.peer, ring)
    assert ring["p"]["CallStatus"] == "ringing" and ring["p"]["RequestUUID"] == req_uuid
    call_uuid = ring["p"]["CallUUID"]
    r = fake(ctx, "GET", PL_CALL + call_uuid + "/", auth=PL_AUTH)
    assert r.status == 200 and r.json["call_status"] == "ringing", r
    assert fake(ctx, "DELETE", PL_CALL + req_uuid + "/", auth=PL_AUTH).status == 404
    assert fake(ctx, "DELETE", PL_CALL + call_uuid + "/", auth=PL_AUTH).status == 204
    assert fake(ctx, "DELETE", PL_CALL + call_uuid + "/", auth=PL_AUTH).status == 404
    # Exotel: newer form -> {"call": {...}}; classic .json -> {"Call": {...}}; classic -> XML
    r = fake(ctx, "POST", EX_NEW, auth=EX_AUTH, form=[
        ("from", "+919800000002"), ("callerid", "08047000000"),
        ("streamurl", ctx.peer.url("/media/ex/none", "ws")), ("streamtype", "bidirectional")])
    assert r.status == 200 and r.json["call"]["status"] == "in-progress", r
    assert re.fullmatch(r"[0-9a-f]{32}", r.json["call"]["sid"]), r.json
    r = fake(ctx, "POST", EX_CLASSIC + ".json", auth=EX_AUTH, form=[
        ("From", "09800000002"), ("CallerId", "08047000000"),
        ("Url", "http://my.exotel.com/parleyfake/exoml/start_voice/1")])
    assert r.status == 200, r
    call = r.json["Call"]
    assert call["Status"] == "in-progress" and call["Direction"] == "outbound-api", call
    r = fake(ctx, "GET", f"/v1/Accounts/{D['exotel_sid']}/Calls/{call['Sid']}.json",
             auth=EX_AUTH)
    assert r.status == 200 and r.json["Call"]["Sid"] == call["Sid"], r
    r = fake(ctx, "POST", EX_CLASSIC, auth=EX_AUTH, form=[
        ("From", "09800000002"), ("CallerId", "08047000000"), ("Url", "http://x/flow")])
    assert r.status == 200 and r.text.startswith("<?xml") and "<Sid>" in r.text, r
    r = fake(ctx, "POST", EX_NEW, auth=EX_AUTH, form=[
        ("from", "+919800000003"), ("callerid", "08047000000"),
        ("streamurl", "ws://127.0.0.1:1/x")])
    assert r.status == 400 and r.json["RestException"]["Status"] == 400, r
    fake(ctx, "POST", "/_fake/reset")


def test_twilio_stream_call(ctx):
    peer, tag = ctx.peer, "stream"
    twiml_stream(ctx, tag, {"token": "tok-123", "agent_id": "42"})
    r = twilio_dial(ctx, "+15005550006", tag)
    assert r.status == 201, r
    sid = r.json["sid"]
    ws = peer.accept_ws(f"/media/tw/{tag}")
    # the upgrade is signed like a webhook (over the stream URL, no params)
    assert ws.req["headers"].get("x-twilio-signature") == twilio_expected(
        D["twilio_token"], peer.url(f"/media/tw/{tag}", "ws"), []), ws.req["headers"]
    _, first = ws.wait(lambda m: True)
    assert first == {"event": "connected", "protocol": "Call", "version": "1.0.0"}, first
    _, start = ws.wait_event("start")
    assert ws.msgs[1][1] is start and start["sequenceNumber"] == "1", start
    stream_sid = start["streamSid"]
    assert re.fullmatch(r"MZ[0-9a-f]{32}", stream_sid)
    st = start["start"]
    assert st["streamSid"] == stream_sid and st["callSid"] == sid
    assert st["accountSid"] == D["twilio_sid"] and st["tracks"] == ["inbound"]
    assert st["customParameters"] == {"token": "tok-123", "agent_id": "42"}, st
    assert st["mediaFormat"] == {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
    ws.wait(lambda m: m.get("event") == "media" and m["media"]["chunk"] == "10")

    # 1 s of tone sent far ahead of real time, then a mark (fragmented, with a ping inside)
    tone = tone_pcm(440, 1000, 8000)
    ulaw = carrier.ulaw_encode(tone)
    for i in range(0, len(ulaw), 160):
        ws.send({"event": "media", "streamSid": stream_sid,
                 "media": {"payload": base64.b64encode(ulaw[i:i + 160]).decode()}})
    t_sent = time.monotonic()
    ws.send({"event": "mark", "streamSid": stream_sid, "mark": {"name": "m1"}}, fragments=3,
            ping_inside=True)
    t_m1, m1 = ws.wait_event("mark", timeout=4, mark__name="m1")
    assert 0.9 <= t_m1 - t_sent <= 1.6, ("mark echoed after", t_m1 - t_sent)
    assert m1["streamSid"] == stream_sid and isinstance(m1["sequenceNumber"], str)
    assert ws.pongs == [b"are-you-there"], ws.pongs

    # 2 s more, a mark, then clear after 200 ms: the pending mark comes back at once
    silence_then = carrier.ulaw_encode(tone_pcm(1000, 2000, 8000))
    for i in range(0, len(silence_then), 160):
        ws.send({"event": "media", "streamSid": stream_sid,
                 "media": {"payload": base64.b64encode(silence_then[i:i + 160]).decode()}})
    ws.send({"event": "mark", "streamSid": stream_sid, "mark": {"name": "m2"}})
    time.sleep(0.2)
    t_clear = time.monotonic()
    ws.send({"event": "clear", "streamSid": stream_sid})
    t_m2, _ = ws.wait_event("mark", timeout=2, mark__name="m2")
    assert t_m2 - t_clear < 0.3, ("mark after clear took", t_m2 - t_clear)
    ws.wait(lambda m: m.get("event") == "media" and m["media"]["chunk"] == "120", timeout=4)

    # media from the callee: 20 ms μ-law frames, numbered strings, paced at real time
    media = ws.events("media")
    assert len(media) >= 100, len(media)
    seqs = [int(m["sequenceNumber"]) for _, m in ws.events()[1:]]
    assert seqs == list(range(1, len(seqs) + 1)), seqs[:20]
    for n, (_, m) in enumerate(media, 1):
        md = m["media"]
        assert m["streamSid"] == stream_sid and md["track"] == "inbound"
        assert md["chunk"] == str(n) and isinstance(md["timestamp"], str)
        assert len(base64.b64decode(md["payload"])) == 160
    check_media_pacing([(t, int(m["media"]["timestamp"])) for t, m in media], 20)
    assert ws.unmasked_frames == 0 and ws.binary_frames == 0
    # the default callee voice: 1 s of silence, then 1 s of 440 Hz
    assert rms_and_crossings(callee_audio(media, 1, 45))[0] < 50
    rms, zc = rms_and_crossings(callee_audio(media, 55, 95))
    assert rms > 3000 and 800 < zc < 960, (rms, zc)

    # we close the WebSocket: the call ends, completed
    ws.close()
    assert ws.closed.wait(2) and ws.close_code == 1000, ws.close_code
    ws.done.set()
    cbs = peer.wait(f"/tw/{tag}/status", lambda rs: len(rs) >= 4)
    assert statuses(cbs) == ["initiated", "ringing", "in-progress", "completed"], statuses(cbs)
    for i, cb in enumerate(cbs):
        check_twilio_sig(peer, cb)
        p = cb["p"]
        for k in ("AccountSid", "ApiVersion", "CallSid", "CallStatus", "Called", "Caller",
                  "Direction", "From", "To", "Timestamp"):
            assert p.get(k), (k, p)
        assert p["CallbackSource"] == "call-progress-events" and p["SequenceNumber"] == str(i)
        assert p["CallSid"] == sid and p["Called"] == "+15005550006" and p["Caller"] == FROM
        assert p["Direction"] == "outbound-api" and p["ApiVersion"] == "2010-04-01"
        parsedate_to_datetime(p["Timestamp"])
    done = cbs[-1]["p"]
    assert int(done["CallDuration"]) >= 2 and "Duration" in done, done
    assert "CallDuration" not in cbs[2]["p"]
    twiml = peer.reqs(f"/tw/{tag}/answer")
    assert len(twiml) == 1 and twiml[0]["method"] == "POST", twiml
    check_twilio_sig(peer, twiml[0])
    assert twiml[0]["p"]["CallStatus"] == "in-progress" and "AnsweredBy" not in twiml[0]["p"]

    rec = wait_ended(ctx, sid)
    assert rec["status"] == "completed" and rec["hangup_by"] == "server", rec
    m = rec["media"]
    assert m["marks_echoed"] == ["m1", "m2"] and m["clears"] == 1, m
    assert m["received"]["media"] == 150 and m["received"]["mark"] == 2, m["received"]
    assert m["closed_by"] == "server" and m["violations"] == [] and rec["notes"] == [], (m, rec)
    assert [c["http_status"] for c in rec["callbacks"]] == [200] * 5, rec["callbacks"]
    rate, pcm = read_wav(os.path.join(ctx.fake.record_dir, f"{sid}.wav"))
    assert rate == 8000 and rec["recording"].endswith(f"{sid}.wav")
    heard = carrier.ulaw_decode(ulaw)
    assert heard in pcm, "the recording lacks the 1 s tone we sent"
    second = carrier.ulaw_decode(silence_then)
    assert second[:1600] in pcm and second[:3200 * 4] not in pcm, "clear did not drop audio"
    assert 2.3 <= len(pcm) / 16000 <= 8, len(pcm) / 16000


def test_twilio_rest_hangup_and_dtmf(ctx):
    peer, tag = ctx.peer, "hangup"
    twiml_stream(ctx, tag, query="?token=x&amp;y=1")  # Twilio drops a query string
    r = twilio_dial(ctx, "+14155550123", tag, events=[])  # no events: only "completed" is sent
    assert r.status == 201, r
    sid = r.json["sid"]
    ws = peer.accept_ws(f"/media/tw/{tag}")
    _, start = ws.wait_event("start")
    assert ws.req["query"] == "" and start["start"]["customParameters"] == {}
    assert fake(ctx, "POST", f"/_fake/calls/{sid}/dtmf", body={"digit": "5"}).status == 200
    _, d = ws.wait_event("dtmf")
    assert d["dtmf"] == {"track": "inbound_track", "digit": "5"} and d["streamSid"] == \
        start["streamSid"], d
    r = fake(ctx, "GET", f"{TW_CALLS}/{sid}.json", auth=TW_AUTH)
    assert r.json["status"] == "in-progress", r
    r = fake(ctx, "POST", f"{TW_CALLS}/{sid}.json", form=[("Status", "completed")], auth=TW_AUTH)
    assert r.status == 200 and r.json["status"] == "completed", r
    _, stop = ws.wait_event("stop", timeout=2)
    assert stop["stop"] == {"accountSid": D["twilio_sid"], "callSid": sid}, stop
    assert stop["streamSid"] == start["streamSid"] and isinstance(stop["sequenceNumber"], str)
    assert ws.closed.wait(2) and ws.close_code == 1000
    ws.done.set()
    cbs = peer.wait(f"/tw/{tag}/status")
    assert statuses(cbs) == ["completed"], statuses(cbs)
    assert cbs[0]["p"]["SequenceNumber"] == "0"
    r = fake(ctx, "POST", f"{TW_CALLS}/{sid}.json", form=[("Status", "completed")], auth=TW_AUTH)
    assert r.status == 404 and r.json["code"] == 20404, r
    rec = wait_ended(ctx, sid)
    assert rec["hangup_by"] == "api" and rec["media"]["closed_by"] == "carrier", rec
    assert len(rec["notes"]) == 1 and "query string" in rec["notes"][0], rec["notes"]


def test_twilio_machine_detection(ctx):
    peer = ctx.peer
    hang = '<?xml version="1.0" encoding="UTF-8"?><Response><Hangup/></Response>'
    for tag in ("amd-machine", "amd-human"):
        peer.routes[f"/tw/{tag}/answer"] = lambda r: (200, hang, "text/xml")
    a = twilio_dial(ctx, "+15005550005", "amd-machine", MachineDetection="Enable")
    b = twilio_dial(ctx, "+15005550009", "amd-human", MachineDetection="Enable")
    assert a.status == 201 and b.status == 201, (a, b)
    ma = peer.wait("/tw/amd-machine/answer")[0]
    mb = peer.wait("/tw/amd-human/answer")[0]
    check_twilio_sig(peer, ma)
    assert ma["p"]["AnsweredBy"] == "machine_start" and mb["p"]["AnsweredBy"] == "human"
    for tag, sid in (("amd-machine", a.json["sid"]), ("amd-human", b.json["sid"])):
        cbs = peer.wait(f"/tw/{tag}/status", lambda rs: "completed" in statuses(rs))
        assert statuses(cbs) == ["initiated", "ringing", "in-progress", "completed"]
        assert wait_ended(ctx, sid)["answered_by"] in ("machine_start", "human")


def test_plivo_stream_call(ctx):
    peer, tag = ctx.peer, "stream"
    doc = ('<Response><Stream bidirectional="true" keepCallAlive="true" '
           'contentType="audio/x-l16;rate=16000" statusCallbackUrl="'
           + peer.url(f"/pl/{tag}/stream") + '">' + peer.url(f"/media/pl/{tag}", "ws")
           + '</Stream></Response>')
    peer.routes[f"/pl/{tag}/answer"] = lambda r: (200, doc, "application/xml")
    peer.expect_ws(f"/media/pl/{tag}")
    r = plivo_dial(ctx, "+15005550006", tag)
    assert r.status == 201, r
    ws = peer.accept_ws(f"/media/pl/{tag}")
    _, start = ws.wait(lambda m: True)
    assert start["event"] == "start", start  # no "connected" on Plivo
    assert start["sequenceNumber"] == 1, start
    answer = peer.reqs(f"/pl/{tag}/answer")[0]
    check_plivo_sig(peer, answer)
    ap = answer["p"]
    assert ap["CallStatus"] == "in-progress" and ap["Direction"] == "outbound", ap
    for k in ("CallUUID", "From", "To", "ALegUUID", "ALegRequestUUID"):
        assert ap.get(k), (k, ap)
    call_uuid = ap["CallUUID"]
    assert ap["RequestUUID"] == r.json["request_uuid"] == ap["ALegRequestUUID"]
    st = start["start"]
    assert st["callId"] == call_uuid and st["accountId"] == D["plivo_id"], st
    assert st["tracks"] == ["inbound"]
    assert st["mediaFormat"] == {"encoding": "audio/x-l16", "sampleRate": 16000}, st
    stream_id = st["streamId"]
    ws.wait(lambda m: m.get("event") == "media" and m["media"]["chunk"] == 10)

    pcm = tone_pcm(500, 1000, 16000)
    for i in range(0, len(pcm), 640):
        ws.send({"event": "playAudio", "media": {
            "contentType": "audio/x-l16", "sampleRate": 16000,
            "payload": base64.b64encode(pcm[i:i + 640]).decode()}})
    t_sent = time.monotonic()
    ws.send({"event": "checkpoint", "streamId": stream_id, "name": "c1"})
    t_c1, c1 = ws.wait_event("playedStream", timeout=4)
    assert c1 == {"event": "playedStream", "streamId": stream_id, "name": "c1"}, c1
    assert 0.9 <= t_c1 - t_sent <= 1.6, t_c1 - t_sent
    more = carrier.ulaw_encode(tone_pcm(700, 1000, 8000))
    ws.send({"event": "playAudio", "media": {"contentType": "audio/x-mulaw", "sampleRate": "8000",
                                             "payload": base64.b64encode(more).decode()}})
    ws.send({"event": "checkpoint", "streamId": stream_id, "name": "c2"})
    time.sleep(0.1)
    t_clear = time.monotonic()
    ws.send({"event": "clearAudio", "streamId": stream_id})
    t_c2, _ = ws.wait_event("playedStream", timeout=2, name="c2")
    _, cleared = ws.wait_event("clearedAudio", timeout=2)
    assert t_c2 - t_clear < 0.3 and cleared["streamId"] == stream_id
    assert isinstance(cleared["sequenceNumber"], int)

    media = ws.events("media")
    for n, (t, m) in enumerate(media, 1):
        md = m["media"]
        assert isinstance(m["sequenceNumber"], int) and md["chunk"] == n, m
        assert m["streamId"] == stream_id and md["track"] == "inbound"
        assert isinstance(md["timestamp"], str)
        assert abs(int(md["timestamp"]) / 1000 - time.time()) < 30
        assert len(base64.b64decode(md["payload"])) == 640
    check_media_pacing([(t, int(m["media"]["timestamp"])) for t, m in media], 20)

    # we hang up over REST: the fake closes the socket without a stop event
    assert fake(ctx, "DELETE", PL_CALL + call_uuid + "/", auth=PL_AUTH).status == 204
    assert ws.closed.wait(2) and ws.close_code == 1000
    ws.done.set()
    assert not ws.events("stop")
    hang = peer.wait(f"/pl/{tag}/hangup")[0]
    check_plivo_sig(peer, hang)  # its URL has a query string
    hp = hang["p"]
    assert hp["CallStatus"] == "completed" and hp["CallUUID"] == call_uuid, hp
    assert hp["HangupCause"] and int(hp["Duration"]) >= 1 and hp["BillDuration"], hp
    assert fake(ctx, "DELETE", PL_CALL + call_uuid + "/", auth=PL_AUTH).status == 404
    ring = peer.reqs(f"/pl/{tag}/ring")
    assert [x["p"]["CallStatus"] for x in ring] == ["ringing"]
    assert ring[0]["t"] < answer["t"] < hang["t"]
    events = peer.wait(f"/pl/{tag}/stream", lambda rs: len(rs) == 2)
    for e in events:
        check_plivo_sig(peer, e)
    assert [e["p"]["Event"] for e in events] == ["StartStream", "StopStream"]
    rec = wait_ended(ctx, call_uuid)
    assert rec["media"]["marks_echoed"] == ["c1", "c2"] and rec["media"]["violations"] == []
    assert rec["notes"] == [] and rec["media"]["content_type"] == "audio/x-l16;rate=16000"
    rate, heard = read_wav(os.path.join(ctx.fake.record_dir, f"{call_uuid}.wav"))
    assert rate == 16000 and pcm in heard


def test_exotel_stream_call_16k(ctx):
    peer, tag = ctx.peer, "x16"
    peer.expect_ws(f"/media/ex/{tag}")
    r = fake(ctx, "POST", EX_NEW, auth=EX_AUTH, form=[
        ("from", "+919800000006"), ("callerid", "08047000000"),
        ("streamurl", peer.url(f"/media/ex/{tag}", "ws") + "?sample-rate=16000&token=abc"),
        ("streamtype", "bidirectional"), ("statuscallback", peer.url(f"/ex/{tag}/status")),
        ("statuscallbackevents[]", "answered"), ("statuscallbackevents[]", "terminal")])
    assert r.status == 200, r
    sid = r.json["call"]["sid"]
    ws = peer.accept_ws(f"/media/ex/{tag}")
    assert ws.req["query"] == "sample-rate=16000&token=abc"
    _, first = ws.wait(lambda m: True)
    assert first == {"event": "connected"}, first
    _, start = ws.wait_event("start")
    assert start["sequence_number"] == "1", start
    ss = start["start"]
    stream_sid = start["stream_sid"]
    assert ss["stream_sid"] == stream_sid and ss["call_sid"] == sid
    assert ss["account_sid"] == D["exotel_sid"] and ss["custom_parameters"] == {"token": "abc"}
    assert ss["media_format"] == {"encoding": "audio/x-raw", "sample_rate": "16000",
                                  "bit_rate": "16"}, ss
    assert ss["from"] == "+919800000006"
    ws.wait(lambda m: m.get("event") == "media" and m["media"]["chunk"] == "5")
    pcm = tone_pcm(600, 1000, 16000)
    for i in range(0, len(pcm), 3200):
        ws.send({"event": "media", "stream_sid": stream_sid,
                 "media": {"payload": base64.b64encode(pcm[i:i + 3200]).decode()}})
    t_sent = time.monotonic()
    ws.send({"event": "mark", "stream_sid": stream_sid, "mark": {"name": "x1"}})
    t_x1, x1 = ws.wait_event("mark", timeout=4)
    assert x1["mark"] == {"name": "x1"} and x1["stream_sid"] == stream_sid, x1
    assert isinstance(x1["sequence_number"], str) and 0.9 <= t_x1 - t_sent <= 1.6
    media = ws.events("media")
    for n, (_, m) in enumerate(media, 1):
        md = m["media"]
        size = len(base64.b64decode(md["payload"]))
        assert size % 320 == 0 and size >= 3200 and size == 3200, size  # 100 ms at 16 kHz
        assert md["chunk"] == str(n) and isinstance(md["timestamp"], str)
        assert isinstance(m["sequence_number"], str) and m["stream_sid"] == stream_sid
    check_media_pacing([(t, int(m["media"]["timestamp"])) for t, m in media], 100)
    ws.close()  # Exotel has no REST hang-up: closing the socket ends the call
    assert ws.closed.wait(2)
    ws.done.set()
    cbs = peer.wait(f"/ex/{tag}/status", lambda rs: len(rs) == 2)
    assert [c["p"]["EventType"] for c in cbs] == ["answered", "terminal"], cbs
    term = cbs[1]["p"]
    assert term["Status"] == "completed" and term["CallSid"] == sid, term
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", term["DateUpdated"]), term
    assert "RecordingUrl" in term and term["From"] == "+919800000006"
    for c in cbs:  # Exotel signs nothing
        assert not any(h.startswith(("x-twilio", "x-plivo")) for h in c["headers"]), c["headers"]
    rec = wait_ended(ctx, sid)
    assert rec["media"]["violations"] == [] and rec["notes"] == [], rec
    assert rec["hangup_by"] == "server", rec
    assert rec["media"]["chunk_bytes_received"] == {"3200": 10}
    rate, heard = read_wav(os.path.join(ctx.fake.record_dir, f"{sid}.wav"))
    assert rate == 16000 and pcm in heard


def test_exotel_8k_callee_hangup(ctx):
    peer, tag = ctx.peer, "x8"
    peer.expect_ws(f"/media/ex/{tag}")
    r = fake(ctx, "POST", EX_CLASSIC + ".json", auth=EX_AUTH, form=[
        ("From", "09800000004"), ("CallerId", "08047000000"),
        ("Url", peer.url(f"/media/ex/{tag}", "ws")),
        ("StatusCallback", peer.url(f"/ex/{tag}/status"))])
    assert r.status == 200, r
    sid = r.json["Call"]["Sid"]
    ws = peer.accept_ws(f"/media/ex/{tag}")
    _, start = ws.wait_event("start")
    assert start["start"]["media_format"]["sample_rate"] == "8000"
    # a chunk that breaks Exotel's rules is noted by the fake (not a multiple of 320 B)
    ws.send({"event": "media", "stream_sid": start["stream_sid"],
             "media": {"payload": base64.b64encode(bytes(1000)).decode()}})
    t_stop, stop = ws.wait_event("stop", timeout=4)
    assert stop["stop"] == {"call_sid": sid, "account_sid": D["exotel_sid"],
                            "reason": "callended"}, stop
    assert ws.closed.wait(2) and ws.close_code == 1000
    ws.done.set()
    for _, m in ws.events("media"):
        assert len(base64.b64decode(m["media"]["payload"])) == 1600  # 100 ms at 8 kHz
    cbs = peer.wait(f"/ex/{tag}/status")
    assert len(cbs) == 1 and cbs[0]["p"]["Status"] == "completed", cbs
    assert "EventType" not in cbs[0]["p"]  # no events subscribed
    rec = wait_ended(ctx, sid)
    assert rec["hangup_by"] == "callee" and 2 <= rec["duration"] <= 3, rec
    assert any("multiple of 320" in v for v in rec["media"]["violations"]), rec["media"]


def test_unanswered_outcomes(ctx):
    peer = ctx.peer
    t0 = time.monotonic()
    peer.routes["/tw/instant/answer"] = lambda r: (
        200, "<Response><Connect><Stream url=\"ws://127.0.0.1:1/x\"/></Connect></Response>",
        "text/xml")
    assert twilio_dial(ctx, "+15005550001", "busy").status == 201
    assert twilio_dial(ctx, "+15005550002", "noans", Timeout="1").status == 201
    assert twilio_dial(ctx, "+15005550008", "fail").status == 201
    assert twilio_dial(ctx, "+15005550007", "instant").status == 201
    # Plivo <Stream> without keepCallAlive="true": the XML ends after the stream starts -> hang-up
    peer.routes["/pl/nokeep/answer"] = lambda r: (
        200, '<Response><Stream bidirectional="true" contentType="audio/x-mulaw;rate=8000">'
        + peer.url("/media/pl/nokeep", "ws") + "</Stream></Response>", "application/xml")
    peer.expect_ws("/media/pl/nokeep")
    nokeep = plivo_dial(ctx, "15005550006", "nokeep")
    assert nokeep.status == 201
    assert plivo_dial(ctx, "15005550001", "busy").status == 201
    assert plivo_dial(ctx, "15005550002", "noans", ring_timeout=1).status == 201
    assert plivo_dial(ctx, "15005550008", "fail").status == 201
    for tag, num, extra in (("busy", "09800000001", []), ("fail", "09800000008", []),
                            ("noans", "09800000002", [("TimeOut", "1")])):
        r = fake(ctx, "POST", EX_CLASSIC + ".json", auth=EX_AUTH, form=[
            ("From", num), ("CallerId", "08047000000"), ("Url", "http://x/flow"),
            ("StatusCallback", peer.url(f"/ex/{tag}/status"))] + extra)
        assert r.status == 200, r

    def final(prefix, n):
        return peer.wait(prefix, lambda rs: len(rs) >= n)

    assert statuses(final("/tw/busy/status", 2)) == ["initiated", "busy"]
    assert statuses(final("/tw/fail/status", 3)) == ["initiated", "ringing", "failed"]
    inst = final("/tw/instant/status", 4)
    assert statuses(inst) == ["initiated", "ringing", "in-progress", "completed"]
    assert len(peer.reqs("/tw/instant/answer")) == 1
    noans = final("/tw/noans/status", 3)
    assert statuses(noans) == ["initiated", "ringing", "no-answer"]
    assert 0.9 <= noans[2]["t"] - noans[1]["t"] <= 1.5, noans[2]["t"] - noans[1]["t"]
    for r in noans:
        check_twilio_sig(peer, r)
    assert noans[2]["p"]["CallDuration"] == "0"
    for tag, want, ring in (("busy", "busy", 0), ("noans", "no-answer", 1), ("fail", "failed", 1)):
        h = final(f"/pl/{tag}/hangup", 1)[0]
        check_plivo_sig(peer, h)
        assert h["p"]["CallStatus"] == want and h["p"]["Duration"] == "0", (tag, h["p"])
        assert h["p"]["HangupCause"], h["p"]
        assert len(peer.reqs(f"/pl/{tag}/ring")) == ring, tag
        assert not peer.reqs(f"/pl/{tag}/answer")
    ws = peer.accept_ws("/media/pl/nokeep")
    _, start = ws.wait_event("start")
    assert start["start"]["mediaFormat"] == {"encoding": "audio/x-mulaw", "sampleRate": 8000}
    assert ws.closed.wait(2)
    ws.done.set()
    h = final("/pl/nokeep/hangup", 1)[0]
    assert h["p"]["CallStatus"] == "completed", h["p"]
    rec = wait_ended(ctx, nokeep.json["request_uuid"])
    assert any("keepCallAlive" in n for n in rec["notes"]), rec["notes"]
    for tag, want in (("busy", "busy"), ("noans", "no-answer"), ("fail", "failed")):
        cb = final(f"/ex/{tag}/status", 1)
        assert [c["p"]["Status"] for c in cb] == [want], (tag, cb)
    assert time.monotonic() - t0 < 5


def test_dial_counting(ctx):
    assert fake(ctx, "POST", "/_fake/reset").status == 200
    assert fake(ctx, "GET", "/_fake/dials").json == []
    nums = ["+15005551001", "+15005551002", "+15005550003", "+15005551004"]
    for i, n in enumerate(nums):
        twilio_dial(ctx, n, f"count{i}", events=[])
    plivo_dial(ctx, "15005551005", "count5")
    fake(ctx, "POST", EX_NEW, auth=EX_AUTH, form=[
        ("from", "+919800001006"), ("callerid", "08047000000"),
        ("streamurl", "ws://127.0.0.1:1/x")])
    dials = fake(ctx, "GET", "/_fake/dials").json
    assert len(dials) == 6, dials
    tos = [d["to"] for d in dials]
    assert tos == nums + ["15005551005", "+919800001006"], tos
    assert [d["carrier"] for d in dials] == ["twilio"] * 4 + ["plivo", "exotel"]
    assert [d["status"] for d in dials] == [201, 201, 400, 201, 201, 200], dials
    assert dials[0]["urls"]["url"] == ctx.peer.url("/tw/count0/answer")
    assert dials[4]["urls"]["answer_url"] == ctx.peer.url("/pl/count5/answer")
    assert all(d["time"] and d["from"] for d in dials)
    assert len(fake(ctx, "GET", "/_fake/dials?carrier=twilio&status=201").json) == 3
    # each created call is known by its sid
    for d in dials:
        if d["sid"]:
            assert call_record(ctx, d["sid"])["to"] == d["to"]
    fake(ctx, "POST", "/_fake/reset")
    assert fake(ctx, "GET", "/_fake/dials").json == []
    assert fake(ctx, "GET", "/_fake/health").json["calls"] == 0


def test_callee_voice_and_control_api(ctx):
    peer, tag, number = ctx.peer, "voice", "+15005552006"
    # a per-number script: a 22.05 kHz WAV, resampled to the stream's 8 kHz
    wav = os.path.join(ctx.workdir, "voice-22k.wav")
    with open(wav, "wb") as f:
        f.write(carrier.wav_bytes(tone_pcm(800, 500, 22050, amp=12000), 22050))
    r = fake(ctx, "POST", "/_fake/voices", body={"number": number, "script": [{"wav": wav}]})
    assert r.status == 200, r
    twiml_stream(ctx, tag)
    r = twilio_dial(ctx, number, tag)
    assert r.status == 201, r
    sid = r.json["sid"]
    ws = peer.accept_ws(f"/media/tw/{tag}")
    ws.wait(lambda m: m.get("event") == "media" and m["media"]["chunk"] == "30")
    media = ws.events("media")
    rms, zc = rms_and_crossings(callee_audio(media, 2, 23))
    assert rms > 5000 and 1500 < zc < 1700, (rms, zc)
    assert rms_and_crossings(callee_audio(media, 27, 30))[0] < 50
    # the callee says something now (through --voice-cmd): 11 chars -> 440 ms of 300 Hz
    r = fake(ctx, "POST", f"/_fake/calls/{sid}/say", body={"text": "hello world"})
    assert r.status == 200, r
    _, said = ws.wait(lambda m: m.get("event") == "media" and int(m["media"]["chunk"]) > 30 and
                      rms_and_crossings(carrier.ulaw_decode(
                          base64.b64decode(m["media"]["payload"])))[0] > 3000)
    n = int(said["media"]["chunk"])
    ws.wait(lambda m: m.get("event") == "media" and m["media"]["chunk"] == str(n + 22))
    rms, zc = rms_and_crossings(callee_audio(ws.events("media"), n + 1, n + 20))
    assert rms > 5000 and 560 < zc < 640, (rms, zc)
    # the callee hangs up: stop, close, completed by the callee
    assert fake(ctx, "POST", f"/_fake/calls/{sid}/hangup").status == 200
    ws.wait_event("stop", timeout=2)
    assert ws.closed.wait(2)
    ws.done.set()
    cbs = peer.wait(f"/tw/{tag}/status", lambda rs: "completed" in statuses(rs))
    assert statuses(cbs)[-1] == "completed"
    rec = wait_ended(ctx, sid)
    assert rec["hangup_by"] == "callee" and rec["media"]["closed_by"] == "carrier", rec
    assert fake(ctx, "POST", f"/_fake/calls/{sid}/hangup").status == 409
    assert fake(ctx, "GET", "/_fake/calls/CAnope").status == 404


# ------------------------------------------------------------------------------------------------
# Inbound calls: the fake rings our inbound URL as each carrier does (README "Inbound calls").
# "Our server" is the same Peer: it answers the voice webhook and accepts the media WebSocket.

CALLER = "+15551230001"
OURS = "+15005550006"
TW_PARAMS = ("AccountSid", "ApiVersion", "CallSid", "CallStatus", "Called", "Caller", "Direction",
             "From", "To")


def inbound(ctx, **req):
    return fake(ctx, "POST", "/_fake/inbound", body=req)


def inbound_call(ctx, **req):
    r = inbound(ctx, **req)
    assert r.status == 201 and r.json["provider"] == req["provider"], r
    return r.json["call_id"]


def doc_route(ctx, path, doc, status=200, ctype="text/xml"):
    ctx.peer.routes[path] = lambda r: (status, doc, ctype)


def twilio_sig_ok(peer, r):
    got = r["headers"].get("x-twilio-signature")
    return got == twilio_expected(D["twilio_token"], peer.url(r["target"]), r["params"])


def plivo_sig_ok(peer, r):
    h = r["headers"]
    nonce = h.get("x-plivo-signature-v3-nonce")
    return bool(nonce) and plivo_expected(D["plivo_token"], peer.url(r["target"]), r["params"],
                                          nonce) in h.get("x-plivo-signature-v3", "").split(",")


def test_inbound_signature_checkers_match_vectors(ctx):
    # the checks used on the inbound webhooks are this file's own code: hold them to the
    # computed vectors of providers.md sections 1 and 2 first
    assert twilio_expected("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", [
        ("CallSid", "CA1234567890ABCDE"), ("Caller", "+12349013030"), ("Digits", "1234"),
        ("From", "+12349013030"), ("To", "+18005551212")]) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    assert plivo_expected("MYTOKEN", "https://example.com/answer/", [
        ("CallUUID", "abc"), ("From", "14155550100")], "12345") == \
        "QG9pb3obHhjArnDrOd2tWKf4rAcpB/KjF6sl21j21oA="


def test_inbound_request_checked(ctx):
    ok = {"provider": "twilio", "url": ctx.peer.url("/in/never"), "from": CALLER, "to": OURS}
    cases = [
        ({"provider": "sip"}, "provider"), ({"provider": None}, "provider"),
        ({"url": "ftp://x/y"}, "url"), ({"url": None}, "url"),
        ({"from": "15551230001"}, "from"), ({"to": "+0123"}, "to"), ({"to": 15005550006}, "to"),
        ({"script": {"tone_hz": 400}}, "script"), ({"script": [{"volume": 3}]}, "script"),
        ({"signature": "forged"}, "signature"), ({"hangup_after_ms": -1}, "hangup_after_ms"),
        ({"hangup_after_ms": "500"}, "hangup_after_ms"), ({"hangup_after": 500}, "hangup_after"),
    ]
    before = fake(ctx, "GET", "/_fake/health").json["calls"]
    for change, field in cases:
        r = inbound(ctx, **{**ok, **change})
        assert r.status == 400, (change, r)
        assert r.json["field"] == field and r.json["error"].startswith(field + ":"), r.json
    r = fake(ctx, "POST", "/_fake/inbound", body=[ok])
    assert r.status == 400 and "JSON object" in r.json["error"], r
    assert fake(ctx, "GET", "/_fake/health").json["calls"] == before
    assert not ctx.peer.reqs("/in/never")


def test_inbound_twilio_stream_and_rest_hangup(ctx):
    peer = ctx.peer
    doc_route(ctx, "/in/tw/n1", '<?xml version="1.0" encoding="UTF-8"?><Response><Connect>'
              '<Stream url="' + peer.url("/media/in/tw", "ws") + '"><Parameter name="token" '
              'value="tok-in"/><Parameter name="number_id" value="n1"/></Stream></Connect>'
              '</Response>')
    peer.expect_ws("/media/in/tw")
    sid = inbound_call(ctx, provider="twilio", url=peer.url("/in/tw/n1"), **{"from": CALLER},
                       to=OURS, script=[{"silence_ms": 200}, {"tone_hz": 500, "ms": 600}])
    assert re.fullmatch(r"CA[0-9a-f]{32}", sid), sid
    hook = peer.wait("/in/tw/n1")[0]
    assert hook["method"] == "POST", hook
    assert hook["headers"]["content-type"] == "application/x-www-form-urlencoded"
    assert hook["p"] == {"AccountSid": D["twilio_sid"], "ApiVersion": "2010-04-01",
                         "CallSid": sid, "CallStatus": "ringing", "Called": OURS,
                         "Caller": CALLER, "Direction": "inbound", "From": CALLER,
                         "To": OURS}, hook["p"]
    assert [k for k, _ in hook["params"]] == list(TW_PARAMS)
    check_twilio_sig(peer, hook)

    ws = peer.accept_ws("/media/in/tw")
    assert ws.req["headers"].get("x-twilio-signature") == twilio_expected(
        D["twilio_token"], peer.url("/media/in/tw", "ws"), [])
    _, first = ws.wait(lambda m: True)
    assert first == {"event": "connected", "protocol": "Call", "version": "1.0.0"}, first
    _, start = ws.wait_event("start")
    st = start["start"]
    assert st["callSid"] == sid and st["accountSid"] == D["twilio_sid"], st
    assert st["customParameters"] == {"token": "tok-in", "number_id": "n1"}, st
    assert st["mediaFormat"] == {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
    stream_sid = start["streamSid"]

    # the Call resource says inbound; the record too, streamed and not settled
    r = fake(ctx, "GET", f"{TW_CALLS}/{sid}.json", auth=TW_AUTH)
    assert r.status == 200 and r.json["direction"] == "inbound", r
    assert r.json["status"] == "in-progress" and r.json["from"] == CALLER and r.json["to"] == OURS
    rec = call_record(ctx, sid)
    assert rec["direction"] == "inbound" and rec["settled"] is False, rec
    inb = rec["inbound"]
    assert inb["outcome"] == "streamed" and inb["reject_reason"] is None, inb
    wh = inb["webhook"]
    assert wh["url"] == peer.url("/in/tw/n1") and wh["method"] == "POST", wh
    assert wh["http_status"] == 200 and wh["error"] is None and wh["ms"] > 0, wh
    assert wh["params"] == hook["p"] and "<Connect>" in wh["response"], wh
    assert wh["headers"]["X-Twilio-Signature"] == hook["headers"]["x-twilio-signature"]

    # the caller speaks its script at real time: 200 ms of silence, then 500 Hz
    ws.wait(lambda m: m.get("event") == "media" and m["media"]["chunk"] == "40", timeout=3)
    media = ws.events("media")
    assert rms_and_crossings(callee_audio(media, 1, 9))[0] < 50
    rms, zc = rms_and_crossings(callee_audio(media, 12, 38))
    assert rms > 3000 and 900 < zc < 1100, (rms, zc)
    check_media_pacing([(t, int(m["media"]["timestamp"])) for t, m in media], 20)
    # what we say is recorded; marks come back
    ours = carrier.ulaw_encode(tone_pcm(900, 400, 8000))
    for i in range(0, len(ours), 160):
        ws.send({"event": "media", "streamSid": stream_sid,
                 "media": {"payload": base64.b64encode(ours[i:i + 160]).decode()}})
    ws.send({"event": "mark", "streamSid": stream_sid, "mark": {"name": "in1"}})
    ws.wait_event("mark", timeout=3, mark__name="in1")

    # the gateway hangs up an inbound call over REST: stop, close, no status callbacks
    r = fake(ctx, "POST", f"{TW_CALLS}/{sid}.json", form=[("Status", "completed")], auth=TW_AUTH)
    assert r.status == 200 and r.json["status"] == "completed", r
    _, stop = ws.wait_event("stop", timeout=2)
    assert stop["stop"] == {"accountSid": D["twilio_sid"], "callSid": sid}, stop
    assert ws.closed.wait(2) and ws.close_code == 1000
    ws.done.set()
    rec = wait_ended(ctx, sid)
    assert rec["status"] == "completed" and rec["hangup_by"] == "api", rec
    assert rec["inbound"]["outcome"] == "streamed" and rec["media"]["violations"] == []
    assert [c["kind"] for c in rec["callbacks"]] == ["webhook"], rec["callbacks"]
    assert len(peer.reqs("/in/tw/n1")) == 1
    rate, heard = read_wav(os.path.join(ctx.fake.record_dir, f"{sid}.wav"))
    assert rate == 8000 and rec["recording"].endswith(f"{sid}.wav")
    assert carrier.ulaw_decode(ours) in heard
    r = fake(ctx, "POST", f"{TW_CALLS}/{sid}.json", form=[("Status", "completed")], auth=TW_AUTH)
    assert r.status == 404 and r.json["code"] == 20404, r


def test_inbound_plivo_stream_and_delete(ctx):
    peer, caller = ctx.peer, "+15551230002"
    # no script in the request: the caller speaks the one registered for its number
    r = fake(ctx, "POST", "/_fake/voices", body={"number": caller,
                                                  "script": [{"tone_hz": 700, "ms": 800}]})
    assert r.status == 200, r
    doc_route(ctx, "/in/pl/n2", '<Response><Stream bidirectional="true" keepCallAlive="true" '
              'contentType="audio/x-mulaw;rate=8000">' + peer.url("/media/in/pl/tok-2", "ws")
              + "</Stream></Response>", ctype="application/xml")
    peer.expect_ws("/media/in/pl/tok-2")
    uuid_ = inbound_call(ctx, provider="plivo", url=peer.url("/in/pl/n2?v=1"),
                         **{"from": caller}, to=OURS)
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", uuid_)
    hook = peer.wait("/in/pl/n2")[0]
    assert hook["method"] == "POST" and hook["query"] == "v=1", hook
    p = hook["p"]
    assert re.fullmatch(r"[0-9a-f-]{36}", p.pop("ALegRequestUUID")) and p == {
        "CallUUID": uuid_, "From": caller[1:], "To": OURS[1:], "CallStatus": "ringing",
        "Direction": "inbound", "CallerName": caller[1:], "ALegUUID": uuid_,
        "Event": "StartApp"}, p
    check_plivo_sig(peer, hook)  # V3 and Ma-V3, over the URL with its query string

    ws = peer.accept_ws("/media/in/pl/tok-2")
    _, start = ws.wait(lambda m: True)
    assert start["event"] == "start" and start["sequenceNumber"] == 1, start
    st = start["start"]
    assert st["callId"] == uuid_ and st["accountId"] == D["plivo_id"], st
    assert st["mediaFormat"] == {"encoding": "audio/x-mulaw", "sampleRate": 8000}, st
    ws.wait(lambda m: m.get("event") == "media" and m["media"]["chunk"] == 35, timeout=3)
    pl = [carrier.ulaw_decode(base64.b64decode(m["media"]["payload"]))
          for _, m in ws.events("media")]
    rms, zc = rms_and_crossings(b"".join(pl[2:30]))
    assert rms > 3000 and 1300 < zc < 1500, (rms, zc)
    r = fake(ctx, "GET", f"{PL_CALL}{uuid_}/", auth=PL_AUTH)
    assert r.status == 200 and r.json["call_direction"] == "inbound", r
    assert r.json["call_status"] == "in-progress", r

    # DELETE ends an inbound call: the socket closes without a stop event
    assert fake(ctx, "DELETE", f"{PL_CALL}{uuid_}/", auth=PL_AUTH).status == 204
    assert ws.closed.wait(2) and ws.close_code == 1000
    ws.done.set()
    assert not ws.events("stop")
    rec = wait_ended(ctx, uuid_)
    assert rec["hangup_by"] == "api" and rec["inbound"]["outcome"] == "streamed", rec
    assert rec["ids"]["call_uuid"] == uuid_ and rec["from"] == caller, rec
    assert len(peer.reqs("/in/pl/n2")) == 1  # no hangup callback
    assert fake(ctx, "DELETE", f"{PL_CALL}{uuid_}/", auth=PL_AUTH).status == 404
    assert os.path.exists(os.path.join(ctx.fake.record_dir, f"{uuid_}.wav"))


def test_inbound_exotel_get_and_caller_hangup(ctx):
    peer = ctx.peer
    frm, to = "+919876543210", "+918047491899"
    ws_url = peer.url("/media/in/ex", "ws") + "?sample-rate=16000&token=abc"
    doc_route(ctx, "/in/ex/n3/s3cret", json.dumps({"url": ws_url}), ctype="application/json")
    peer.expect_ws("/media/in/ex")
    url = f"http://key1:tok%401@127.0.0.1:{peer.port}/in/ex/n3/s3cret?src=flow"
    sid = inbound_call(ctx, provider="exotel", url=url, **{"from": frm}, to=to,
                       hangup_after_ms=1200, script=[{"tone_hz": 400, "ms": 1000}])
    assert re.fullmatch(r"[0-9a-f]{32}", sid), sid
    hook = peer.wait("/in/ex/n3/s3cret")[0]
    assert hook["method"] == "GET", hook
    assert hook["headers"].get("authorization") == basic("key1", "tok@1"), hook["headers"]
    assert not any(h.startswith(("x-twilio", "x-plivo")) for h in hook["headers"])
    assert [k for k, _ in hook["params"]] == [
        "src", "CallSid", "CallFrom", "CallTo", "Direction", "Created", "CurrentTime",
        "StartTime", "CallType", "flow_id", "tenant_id", "CustomField"], hook["params"]
    p = hook["p"]
    assert p["src"] == "flow" and p["CallSid"] == sid, p
    assert p["CallFrom"] == "09876543210" and p["CallTo"] == "08047491899", p  # national form
    assert p["Direction"] == "incoming" and p["CallType"] == "call-attempt", p
    for k in ("Created", "CurrentTime", "StartTime"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", p[k]), (k, p[k])
    assert p["flow_id"].isdigit() and p["tenant_id"].isdigit() and p["CustomField"] == "", p

    ws = peer.accept_ws("/media/in/ex")
    assert ws.req["query"] == "sample-rate=16000&token=abc"
    _, first = ws.wait(lambda m: True)
    assert first == {"event": "connected"}, first
    _, start = ws.wait_event("start")
    ss = start["start"]
    assert ss["call_sid"] == sid and ss["from"] == frm and ss["to"] == to, ss  # E.164 here
    assert ss["custom_parameters"] == {"token": "abc"}, ss
    assert ss["media_format"]["sample_rate"] == "16000", ss
    ours = tone_pcm(650, 300, 16000)
    for i in range(0, len(ours), 3200):
        ws.send({"event": "media", "stream_sid": start["stream_sid"],
                 "media": {"payload": base64.b64encode(ours[i:i + 3200]).decode()}})
    # the caller hangs up 1.2 s into the stream: stop (callended), then the close
    t_stop, stop = ws.wait_event("stop", timeout=4)
    assert stop["stop"] == {"call_sid": sid, "account_sid": D["exotel_sid"],
                            "reason": "callended"}, stop
    assert ws.closed.wait(2)
    ws.done.set()
    media = ws.events("media")
    assert 6 <= len(media) <= 14, len(media)  # 100 ms chunks for about 1.2 s
    for _, m in media:
        assert len(base64.b64decode(m["media"]["payload"])) == 3200
    rec = wait_ended(ctx, sid)
    assert rec["hangup_by"] == "caller" and rec["inbound"]["outcome"] == "streamed", rec
    assert rec["inbound"]["webhook"]["headers"]["Authorization"] == basic("key1", "tok@1")
    r = fake(ctx, "GET", f"/v1/Accounts/{D['exotel_sid']}/Calls/{sid}.json", auth=EX_AUTH)
    c = r.json["Call"]
    assert c["Direction"] == "inbound" and c["From"] == frm and c["To"] == to, c
    rate, heard = read_wav(os.path.join(ctx.fake.record_dir, f"{sid}.wav"))
    assert rate == 16000 and ours in heard

    # a wrong URL secret: our server answers 403, the call ends there
    doc_route(ctx, "/in/ex/n3/wrong", '{"error":"forbidden"}', status=403,
              ctype="application/json")
    sid = inbound_call(ctx, provider="exotel", url=peer.url("/in/ex/n3/wrong"),
                       **{"from": CALLER}, to=to)
    rec = wait_ended(ctx, sid)
    inb = rec["inbound"]
    assert inb["outcome"] == "refused" and inb["webhook"]["http_status"] == 403, inb
    assert inb["webhook"]["response"] == '{"error":"forbidden"}'
    hook = peer.wait("/in/ex/n3/wrong")[0]
    assert hook["p"]["CallFrom"] == CALLER and "authorization" not in hook["headers"]
    assert rec["media"] is None and rec["recording"] is None, rec


def test_inbound_rejected_refused_and_said(ctx):
    peer = ctx.peer
    peer.expect_ws("/media/in/never")
    stream = ('<Connect><Stream url="' + peer.url("/media/in/never", "ws")
              + '"/></Connect>')
    doc_route(ctx, "/in/rej/busy", f'<Response><Reject reason="busy"/>{stream}</Response>')
    doc_route(ctx, "/in/rej/plain", "<Response><Reject/></Response>")
    doc_route(ctx, "/in/rej/plivo", '<Response><Hangup reason="rejected"/></Response>')
    doc_route(ctx, "/in/rej/403", "forbidden", status=403, ctype="text/plain")
    doc_route(ctx, "/in/rej/say", "<Response><Say>hello there</Say><Hangup/></Response>")
    doc_route(ctx, "/in/rej/garbage", "<Response><Connect>")
    t0 = time.monotonic()
    calls = {
        "busy": ("twilio", peer.url("/in/rej/busy")),
        "plain": ("twilio", peer.url("/in/rej/plain")),
        "plivo": ("plivo", peer.url("/in/rej/plivo")),
        "403": ("twilio", peer.url("/in/rej/403")),
        "down": ("twilio", "http://127.0.0.1:1/in/nobody"),
        "say": ("twilio", peer.url("/in/rej/say")),
        "garbage": ("plivo", peer.url("/in/rej/garbage")),
    }
    ids = {k: inbound_call(ctx, provider=prov, url=url, **{"from": CALLER}, to=OURS)
           for k, (prov, url) in calls.items()}
    recs = {k: wait_ended(ctx, sid) for k, sid in ids.items()}
    assert time.monotonic() - t0 < 4

    def outcome(k):
        inb = recs[k]["inbound"]
        return inb["outcome"], inb["reject_reason"], recs[k]["status"]

    assert outcome("busy") == ("rejected", "busy", "busy")
    assert outcome("plain") == ("rejected", "rejected", "no-answer")
    assert outcome("plivo") == ("rejected", "rejected", "no-answer")
    assert outcome("403") == ("refused", None, "failed")
    assert recs["403"]["inbound"]["webhook"]["response"] == "forbidden"
    assert outcome("down") == ("error", None, "failed")
    assert recs["down"]["inbound"]["webhook"]["error"], recs["down"]["inbound"]
    assert outcome("garbage")[0] == "error" and recs["garbage"]["notes"], recs["garbage"]
    # no WebSocket for any of them; a rejected call was never answered
    assert not peer.reqs("/media/in/never")
    for k in ("busy", "plain", "plivo"):
        assert recs[k]["answered_at"] is None and recs[k]["duration"] == 0, recs[k]
        assert recs[k]["media"] is None and recs[k]["recording"] is None
    # <Say> is noted and, through --voice-cmd, is what the caller heard (11 chars: 440 ms)
    say = recs["say"]
    assert say["inbound"]["said"] == ["hello there"], say["inbound"]
    assert say["inbound"]["outcome"] == "hung_up" and say["answered_at"], say
    rate, heard = read_wav(say["recording"])
    assert rate == 8000 and 0.42 <= len(heard) / 16000 <= 0.46, len(heard)
    rms, zc = rms_and_crossings(heard[800:6400])
    assert rms > 5000 and 560 < zc < 640, (rms, zc)


def test_inbound_signature_modes(ctx):
    peer = ctx.peer

    def guarded(check, reject):
        # answers as our gateway would: 403 to a webhook whose signature does not verify
        return lambda r: (200, f"<Response>{reject}</Response>", "text/xml") if check(peer, r) \
            else (403, "bad signature", "text/plain")

    peer.routes["/in/sig/tw"] = guarded(twilio_sig_ok, "<Reject/>")
    peer.routes["/in/sig/pl"] = guarded(plivo_sig_ok, '<Hangup reason="rejected"/>')
    doc_route(ctx, "/in/sig/ex", "{}", status=403, ctype="application/json")
    urls = {"twilio": peer.url("/in/sig/tw"), "plivo": peer.url("/in/sig/pl"),
            "exotel": f"http://key1:pw1@127.0.0.1:{peer.port}/in/sig/ex"}
    outcome, headers = {}, {}
    for prov, url in urls.items():
        for mode in ("valid", "none", "bad"):
            sid = inbound_call(ctx, provider=prov, url=url, **{"from": CALLER}, to=OURS,
                               signature=mode)
            outcome[prov, mode] = wait_ended(ctx, sid)["inbound"]["outcome"]
            hook = [r for r in peer.reqs("/in/sig/")
                    if sid in (r["p"].get("CallSid"), r["p"].get("CallUUID"))]
            assert len(hook) == 1, hook
            headers[prov, mode] = hook[0]["headers"]
    for prov in ("twilio", "plivo"):
        assert outcome[prov, "valid"] == "rejected", (prov, outcome)
        assert outcome[prov, "none"] == outcome[prov, "bad"] == "refused", (prov, outcome)
    assert "x-twilio-signature" not in headers["twilio", "none"]
    assert headers["twilio", "bad"]["x-twilio-signature"]  # present, but forged
    assert not any(h.startswith("x-plivo") for h in headers["plivo", "none"])
    bad = headers["plivo", "bad"]
    assert bad["x-plivo-signature-v3"] and bad["x-plivo-signature-ma-v3"] and \
        bad["x-plivo-signature-v3-nonce"], bad
    # Exotel signs nothing: "signature" decides the Basic header from the URL's user:password
    assert headers["exotel", "valid"]["authorization"] == basic("key1", "pw1")
    assert "authorization" not in headers["exotel", "none"]
    assert headers["exotel", "bad"]["authorization"] not in (None, basic("key1", "pw1"))


def test_inbound_hangup_while_ringing(ctx):
    peer = ctx.peer
    peer.expect_ws("/media/in/late")
    late = ('<Response><Connect><Stream url="' + peer.url("/media/in/late", "ws")
            + '"/></Connect></Response>')

    def slow(r):  # our server takes its time; the call is hung up meanwhile
        time.sleep(0.6)
        return 200, late, "text/xml"
    peer.routes["/in/slow"] = slow
    tw = inbound_call(ctx, provider="twilio", url=peer.url("/in/slow"), **{"from": CALLER},
                      to=OURS)
    pl = inbound_call(ctx, provider="plivo", url=peer.url("/in/slow"), **{"from": CALLER},
                      to=OURS)  # the document is never run: no matter that it is TwiML
    peer.wait("/in/slow", lambda rs: len(rs) >= 2)
    r = fake(ctx, "GET", f"{TW_CALLS}/{tw}.json", auth=TW_AUTH)
    assert r.json["status"] == "ringing" and r.json["direction"] == "inbound", r.json
    r = fake(ctx, "POST", f"{TW_CALLS}/{tw}.json", form=[("Status", "completed")], auth=TW_AUTH)
    assert r.status == 200 and r.json["status"] == "canceled", r
    assert fake(ctx, "POST", f"/_fake/calls/{pl}/hangup").status == 200  # the caller gives up
    a, b = wait_ended(ctx, tw), wait_ended(ctx, pl)
    assert (a["status"], a["hangup_by"], a["inbound"]["outcome"]) == \
        ("canceled", "api", "hung_up"), a
    assert (b["hangup_by"], b["inbound"]["outcome"]) == ("caller", "hung_up"), b
    assert a["answered_at"] is None and a["media"] is None
    assert not peer.reqs("/media/in/late")


def test_inbound_health_reset_and_caller_control(ctx):
    peer = ctx.peer
    doc_route(ctx, "/in/live", '<Response><Connect><Stream url="'
              + peer.url("/media/in/live", "ws") + '"/></Connect></Response>')
    peer.expect_ws("/media/in/live")
    sid = inbound_call(ctx, provider="twilio", url=peer.url("/in/live"), **{"from": CALLER},
                       to=OURS)
    ws = peer.accept_ws("/media/in/live")
    _, start = ws.wait_event("start")
    # the control API drives the caller as it drives a callee
    assert fake(ctx, "POST", f"/_fake/calls/{sid}/dtmf", body={"digit": "7"}).status == 200
    _, d = ws.wait_event("dtmf")
    assert d["dtmf"]["digit"] == "7", d
    h = fake(ctx, "GET", "/_fake/health").json
    assert h["inbound_calls"] >= 1 and h["live_calls"] >= 1, h
    summary = [c for c in fake(ctx, "GET", "/_fake/calls").json if c["sid"] == sid]
    assert summary and summary[0]["direction"] == "inbound" and \
        summary[0]["outcome"] == "streamed" and summary[0]["from"] == CALLER, summary
    # outbound summaries and records keep their shape: no direction, no inbound
    out = twilio_dial(ctx, "+15005550007", "shape", events=[]).json["sid"]
    summary = [c for c in fake(ctx, "GET", "/_fake/calls").json if c["sid"] == out]
    assert summary and "direction" not in summary[0], summary
    rec = wait_ended(ctx, out)
    assert "direction" not in rec and "inbound" not in rec, rec
    # a reset drops inbound calls with the rest: the live one ends without a stop event
    r = fake(ctx, "POST", "/_fake/reset")
    assert r.status == 200 and r.json["dropped_calls"] >= 1, r
    assert ws.closed.wait(3)
    ws.done.set()
    assert not ws.events("stop")
    h = fake(ctx, "GET", "/_fake/health").json
    assert h["inbound_calls"] == 0 and h["calls"] == 0, h
    assert fake(ctx, "GET", f"/_fake/calls/{sid}").status == 404
