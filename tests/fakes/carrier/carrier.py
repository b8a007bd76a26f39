#!/usr/bin/env python3
"""Carrier fake: one process that stands in for Twilio, Plivo and Exotel.

It serves the three carriers' call REST APIs on one port, plays the callee whose behaviour the
dialled number's last four digits choose (docs/dialing.md, "The carrier fake"), sends the
carriers' status callbacks (signed the way each carrier signs them), fetches TwiML / answer XML,
and opens the media WebSocket to the URL it names, speaking that carrier's message set
(/work/shared/reference/providers.md sections 1-3 and 7). A JSON control API under /_fake/
lets tests see every dial and every call, and place inbound calls (POST /_fake/inbound: the
carrier calls our number's voice webhook, signed, and streams if the answer says so). Standard
library only (Python 3.11).

One asyncio event loop runs the HTTP server (carrier REST and control API), every call's
lifecycle (one task per call: its callbacks one after another) and the outgoing requests, over
keep-alive connections. Only media WebSockets, which stream in real time, run on threads of their
own. A thread per call and per connection cost more CPU than the calls themselves at a few hundred
calls a second.

    python3 carrier.py --port 8099 [--record-dir DIR] [...]      (see README.md and --help)
"""
import argparse
import asyncio
import base64
import gc
import hashlib
import hmac
import html
import http.client
import json
import math
import os
import random
import re
import secrets
import shlex
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import traceback
import uuid
import xml.etree.ElementTree as ET
from array import array
from collections import deque, namedtuple
from datetime import datetime, timezone
from email.utils import formatdate
from http import HTTPStatus
from http.server import DEFAULT_ERROR_CONTENT_TYPE, DEFAULT_ERROR_MESSAGE
from urllib.parse import parse_qsl, quote_plus, unquote, urlencode, urlsplit, urlunsplit

DEFAULTS = {
    "twilio_sid": "AC" + "0" * 31 + "1",
    "twilio_token": "twilio-fake-token",
    "plivo_id": "MAFAKEAUTHID0000000",
    "plivo_token": "plivo-fake-token",
    "exotel_sid": "parleyfake",
    "exotel_key": "exotel-key",
    "exotel_token": "exotel-token",
}

# Last four digits of the dialled number -> callee behaviour (docs/dialing.md).
SUFFIXES = {
    "0006": "normal",
    "0001": "busy",
    "0002": "no-answer",
    "0003": "invalid",
    "0004": "callee-hangup",
    "0005": "machine",
    "0007": "instant",
    "0008": "failed",
}

_BIG_ENDIAN = sys.byteorder == "big"


_log_lines = []
_log_lock = threading.Lock()
_log_write_lock = threading.RLock()
LOG_FLUSH_S = 0.05


def log(msg):
    """One line to stderr. Lines are written together every LOG_FLUSH_S by a writer thread (and
    at exit or SIGTERM): a write per line, each a system call on the event loop's thread, cost
    more than the lines."""
    t = time.time()
    line = "%s.%03d %s\n" % (time.strftime("%H:%M:%S", time.localtime(t)), int((t % 1) * 1000),
                              msg)
    with _log_lock:
        _log_lines.append(line)


def log_flush():
    with _log_write_lock:  # batches leave in the order their lines were logged
        with _log_lock:
            if not _log_lines:
                return
            text = "".join(_log_lines)
            _log_lines.clear()
        try:
            sys.stderr.write(text)
            sys.stderr.flush()
        except (OSError, ValueError):
            pass


def _log_writer():
    while True:
        time.sleep(LOG_FLUSH_S)
        log_flush()


class Threads:
    """Runs each task (a media session, a Plivo stream event) on a thread of its own, as
    threading.Thread(...).start() would, but reuses threads whose task has finished. A thread idle
    for IDLE_S ends."""
    IDLE_S = 60.0

    def __init__(self):
        self.lock = threading.Lock()
        self.tasks = deque()
        self.idle = 0
        self.cv = threading.Condition(self.lock)

    def start(self, target, *args, name=None):
        with self.lock:
            if self.idle > len(self.tasks):
                self.tasks.append((target, args, name))
                self.cv.notify()
                return
        threading.Thread(target=self._run, args=((target, args, name),), daemon=True).start()

    def _run(self, task):
        me = threading.current_thread()
        while True:
            target, args, name = task
            me.name = name or f"task-{target.__name__}"
            try:
                target(*args)
            except Exception:
                log(f"thread {name or target.__name__} crashed:\n{traceback.format_exc()}")
            task = self._next()
            if task is None:
                return

    def _next(self):
        """The next task, or None once idle for IDLE_S."""
        with self.lock:
            self.idle += 1
            deadline = time.monotonic() + self.IDLE_S
            while not self.tasks:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cv.wait(left)
            self.idle -= 1
            return self.tasks.popleft() if self.tasks else None


THREADS = Threads()
LOOP = None  # the event loop (main)


async def in_thread(target, *args, name=None):
    """Runs target(*args) on a thread of its own (THREADS) and waits for its result."""
    loop = asyncio.get_running_loop()
    fut = loop.create_future()

    def done(ok, value):
        if not fut.done():
            (fut.set_result if ok else fut.set_exception)(value)

    def run():
        try:
            r = target(*args)
        except BaseException as e:  # noqa: B902 (handed to the awaiting task)
            loop.call_soon_threadsafe(done, False, e)
        else:
            loop.call_soon_threadsafe(done, True, r)
    THREADS.start(run, name=name)
    return await fut


def spawn(coro):
    """A task of its own on the loop, kept referenced until it ends."""
    task = LOOP.create_task(coro)
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)
    return task


_TASKS = set()


def behaviour_of(number):
    digits = re.sub(r"\D", "", str(number or ""))
    return SUFFIXES.get(digits[-4:], "normal")


def rfc2822(t):
    return time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(t)) if t else None


def ymdhms(t):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) if t else None


def iso(t):
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds") if t else None


def hex32():
    return secrets.token_hex(16)


# ------------------------------------------------------------------------------------------------
# G.711 mu-law (providers.md section 7, CCITT/Sun style; bit-exact with CPython audioop)

_SEG_UEND = (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF)


def lin2ulaw(s):
    """One signed 16-bit sample -> one mu-law byte."""
    v = s >> 2
    if v < 0:
        v = -v
        mask = 0x7F
    else:
        mask = 0xFF
    if v > 8159:
        v = 8159
    v += 0x21
    seg = 0
    while seg < 8 and v > _SEG_UEND[seg]:
        seg += 1
    if seg >= 8:
        return 0x7F ^ mask
    return ((seg << 4) | ((v >> (seg + 1)) & 0x0F)) ^ mask


def ulaw2lin(u):
    """One mu-law byte -> one signed 16-bit sample."""
    u = ~u & 0xFF
    t = ((u & 0x0F) << 3) + 0x84
    t <<= (u & 0x70) >> 4
    return (0x84 - t) if (u & 0x80) else (t - 0x84)


ULAW_DECODE = [ulaw2lin(i) for i in range(256)]
# lin2ulaw depends on s >> 2 only: one entry per 14-bit value, indexed by (s >> 2) & 0x3FFF
ULAW_ENCODE = bytes(lin2ulaw((i - 16384 if i >= 8192 else i) << 2) for i in range(16384))


def pcm_samples(pcm):
    """PCM16 little-endian bytes -> array('h')."""
    a = array("h")
    a.frombytes(bytes(pcm[:len(pcm) // 2 * 2]))
    if _BIG_ENDIAN:
        a.byteswap()
    return a


def samples_pcm(a):
    if _BIG_ENDIAN:
        a = array("h", a)
        a.byteswap()
    return a.tobytes()


def ulaw_encode(pcm):
    enc = ULAW_ENCODE
    return bytes(enc[(s >> 2) & 0x3FFF] for s in pcm_samples(pcm))


def ulaw_decode(data):
    dec = ULAW_DECODE
    return samples_pcm(array("h", [dec[b] for b in data]))


def resample(pcm, src, dst):
    """Linear-interpolation resampler for PCM16 mono (good enough for a fake's callee voice)."""
    if src == dst or not pcm:
        return bytes(pcm)
    s = pcm_samples(pcm)
    n = len(s)
    m = max(1, int(round(n * dst / src)))
    step = src / dst
    out = array("h", [0]) * m
    for i in range(m):
        pos = i * step
        j = int(pos)
        if j >= n - 1:
            out[i] = s[n - 1]
        else:
            a = s[j]
            out[i] = int(a + (s[j + 1] - a) * (pos - j))
    return samples_pcm(out)


def tone(freq, ms, rate, amplitude=8000):
    n = rate * ms // 1000
    w = 2 * math.pi * freq / rate
    return samples_pcm(array("h", [int(amplitude * math.sin(w * i)) for i in range(n)]))


def silence(ms, rate):
    return bytes(rate * ms // 1000 * 2)


# ------------------------------------------------------------------------------------------------
# WAV (canonical RIFF; the reader walks chunks, providers.md section 7)

def parse_wav(data):
    """WAV bytes -> (PCM16 mono bytes, sample rate). PCM16 (any channel count, mixed down),
    8-bit PCM and mu-law are accepted; a data size of 0 or 0xFFFFFFFF means 'to the end'."""
    if len(data) < 12 or data[0:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a RIFF/WAVE file")
    pos = 12
    fmt = None
    while pos + 8 <= len(data):
        cid = data[pos:pos + 4]
        size = struct.unpack("<I", data[pos + 4:pos + 8])[0]
        body_at = pos + 8
        if cid == b"fmt ":
            fmt = struct.unpack("<HHIIHH", data[body_at:body_at + 16])
        elif cid == b"data":
            if size in (0, 0xFFFFFFFF) or body_at + size > len(data):
                size = len(data) - body_at
            if fmt is None:
                raise ValueError("data chunk before fmt chunk")
            return _wav_to_pcm16(fmt, data[body_at:body_at + size])
        pos = body_at + size + (size & 1)
    raise ValueError("no data chunk")


def _wav_to_pcm16(fmt, body):
    tag, channels, rate, _, _, bits = fmt
    if tag == 0xFFFE:  # WAVE_FORMAT_EXTENSIBLE: assume the PCM subformat
        tag = 1
    if tag == 1 and bits == 16:
        s = pcm_samples(body)
    elif tag == 1 and bits == 8:
        s = array("h", [(b - 128) << 8 for b in body])
    elif tag == 7 and bits == 8:
        s = array("h", [ULAW_DECODE[b] for b in body])
    else:
        raise ValueError(f"unsupported WAV format tag {tag} / {bits} bits")
    if channels > 1:
        s = array("h", [sum(s[i:i + channels]) // channels
                        for i in range(0, len(s) - channels + 1, channels)])
    return samples_pcm(s), rate


def wav_bytes(pcm, rate):
    n = len(pcm)
    return (b"RIFF" + struct.pack("<I", 36 + n) + b"WAVE" + b"fmt " +
            struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16) + b"data" +
            struct.pack("<I", n) + pcm)


# ------------------------------------------------------------------------------------------------
# Signatures

def _pairs(params):
    if params is None:
        return []
    if isinstance(params, dict):
        out = []
        for k, v in params.items():
            if isinstance(v, (list, tuple)):
                out.extend((k, str(x)) for x in v)
            else:
                out.append((k, str(v)))
        return out
    return [(k, str(v)) for k, v in params]


_FORM_SAFE = re.compile(r"[A-Za-z0-9_.~-]*")  # what quote_plus leaves as it is


def form_encode(pairs):
    """urlencode(pairs) for (str, str) pairs: the same text, without running quote_plus over the
    many values that need no quoting."""
    safe = _FORM_SAFE.fullmatch
    return "&".join((k if safe(k) else quote_plus(k)) + "=" + (v if safe(v) else quote_plus(v))
                    for k, v in pairs)


def twilio_signature(token, url, params=None):
    """X-Twilio-Signature: base64(HMAC-SHA1(token, URL + sorted params as key+value)); repeated
    keys have their values sorted and each appended (providers.md section 1)."""
    grouped = {}
    for k, v in _pairs(params):
        grouped.setdefault(k, []).append(v)
    s = url
    for k in sorted(grouped):
        for v in sorted(grouped[k]):
            s += k + v
    return base64.b64encode(hmac.new(token.encode(), s.encode(), hashlib.sha1).digest()).decode()


def _plivo_sorted_query(query):
    parts = []
    for k in sorted(query):
        parts.append("&".join(f"{k}={v}" for v in sorted(query[k])))
    return "&".join(parts)


def plivo_v3_base(url, params=None, method="POST"):
    """The string Plivo's V3 signature covers before '.' + nonce (plivo-python signature_v3)."""
    u = urlsplit(url)
    base = urlunsplit((u.scheme, u.netloc, u.path, "", ""))
    query = {}
    for k, v in parse_qsl(u.query, keep_blank_values=True):
        query.setdefault(k, []).append(v)
    pairs = _pairs(params)
    if method.upper() == "GET":
        for k, v in pairs:
            query.setdefault(k, []).append(v)
        qs = _plivo_sorted_query(query)
        return base + ("?" + qs if qs else "")
    qs = _plivo_sorted_query(query)
    if pairs:
        base += "?" + qs + ("." if qs else "")
        grouped = {}
        for k, v in pairs:
            grouped.setdefault(k, []).append(v)
        base += "".join("".join(f"{k}{v}" for v in sorted(grouped[k])) for k in sorted(grouped))
    elif qs:
        base += "?" + qs
    return base


def plivo_signature_v3(token, url, params, nonce, method="POST"):
    """X-Plivo-Signature-V3: base64(HMAC-SHA256(token, base + '.' + nonce))."""
    msg = plivo_v3_base(url, params, method) + "." + str(nonce)
    mac = hmac.new(token.encode(), msg.encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


# ------------------------------------------------------------------------------------------------
# WebSocket client (RFC 6455): masking, text frames, ping/pong, close handshake, fragmentation

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class WSError(Exception):
    pass


def _mask(data, key):
    n = len(data)
    if not n:
        return b""
    m = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(m, "little")).to_bytes(n, "little")


class WSClient:
    def __init__(self, url, headers=None, timeout=5.0, note=None):
        self.url = url
        self.headers = dict(headers or {})
        self.timeout = timeout
        self.note = note or (lambda msg: None)  # protocol oddities seen on the peer's side
        self.sock = None
        self.buf = bytearray()
        self.send_lock = threading.Lock()
        self.close_sent = False
        self.close_received = None
        self.handshake_status = None
        self.pings = 0

    def connect(self):
        u = urlsplit(self.url)
        if u.scheme not in ("ws", "wss"):
            raise WSError(f"unsupported URL scheme {u.scheme!r}")
        host = u.hostname
        port = u.port or (443 if u.scheme == "wss" else 80)
        sock = socket.create_connection((host, port), timeout=self.timeout)
        try:
            if u.scheme == "wss":
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
            key = base64.b64encode(os.urandom(16)).decode()
            path = (u.path or "/") + ("?" + u.query if u.query else "")
            hosthdr = f"[{host}]" if ":" in host else host
            if u.port:
                hosthdr += f":{u.port}"
            lines = [f"GET {path} HTTP/1.1", f"Host: {hosthdr}", "Upgrade: websocket",
                     "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
                     "Sec-WebSocket-Version: 13", "User-Agent: parley-carrier-fake/1.0"]
            if u.username is not None:
                cred = f"{unquote(u.username)}:{unquote(u.password or '')}"
                lines.append("Authorization: Basic " + base64.b64encode(cred.encode()).decode())
            lines += [f"{k}: {v}" for k, v in self.headers.items()]
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(4096)
                if not chunk:
                    raise WSError("connection closed during the handshake")
                data += chunk
                if len(data) > 65536:
                    raise WSError("handshake response too large")
            head, rest = data.split(b"\r\n\r\n", 1)
            hl = head.decode("latin-1").split("\r\n")
            parts = hl[0].split(" ", 2)
            try:
                self.handshake_status = int(parts[1])
            except (IndexError, ValueError):
                raise WSError(f"bad status line {hl[0]!r}")
            if self.handshake_status != 101:
                raise WSError(f"handshake refused: {hl[0]}")
            hdrs = {}
            for line in hl[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    hdrs[k.strip().lower()] = v.strip()
            expect = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
            if hdrs.get("sec-websocket-accept") != expect:
                raise WSError("bad Sec-WebSocket-Accept")
            if hdrs.get("upgrade", "").lower() != "websocket":
                raise WSError("response lacks 'Upgrade: websocket'")
            if "upgrade" not in hdrs.get("connection", "").lower():
                raise WSError("response lacks 'Connection: Upgrade'")
        except BaseException:
            sock.close()
            raise
        sock.settimeout(None)
        self.sock = sock
        self.buf = bytearray(rest)

    def _frame(self, opcode, payload, fin=True):
        n = len(payload)
        b0 = (0x80 if fin else 0) | opcode
        if n < 126:
            hdr = struct.pack("!BB", b0, 0x80 | n)
        elif n < 65536:
            hdr = struct.pack("!BBH", b0, 0x80 | 126, n)
        else:
            hdr = struct.pack("!BBQ", b0, 0x80 | 127, n)
        key = os.urandom(4)
        return hdr + key + _mask(payload, key)

    def send(self, opcode, payload):
        with self.send_lock:
            if self.close_sent or self.sock is None:
                raise WSError("websocket closed")
            self.sock.sendall(self._frame(opcode, payload))

    def send_text(self, text):
        self.send(0x1, text.encode())

    def close(self, code=1000, reason=""):
        """Sends our close frame (once); the peer's reply is read by recv_message."""
        with self.send_lock:
            if self.close_sent or self.sock is None:
                return
            self.close_sent = True
            try:
                self.sock.sendall(self._frame(0x8, struct.pack("!H", code) + reason.encode()[:120]))
            except OSError:
                pass

    def shutdown(self):
        if self.sock is None:
            return
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("peer closed the connection")
            self.buf += chunk
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def recv_message(self):
        """Next complete message: ('text', str) | ('binary', bytes) | ('close', code, reason).
        Pings are answered, pongs dropped, fragments reassembled. Raises EOFError at EOF."""
        frag_op = None
        frags = []
        while True:
            b0, b1 = self._read(2)
            fin, op = b0 & 0x80, b0 & 0x0F
            if b0 & 0x70:
                self.note("frame with RSV bits set (no extension negotiated)")
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._read(8))[0]
            key = self._read(4) if b1 & 0x80 else None
            payload = self._read(n)
            if key is not None:
                self.note("masked frame from the server (RFC 6455 5.1: servers must not mask)")
                payload = _mask(payload, key)
            if op >= 0x8:
                if not fin or n > 125:
                    self.note("fragmented or oversized control frame")
                if op == 0x9:
                    self.pings += 1
                    try:
                        self.send(0xA, payload)
                    except (OSError, WSError):
                        pass
                    continue
                if op == 0xA:
                    continue
                if op == 0x8:
                    code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                    reason = payload[2:].decode("utf-8", "replace")
                    self.close_received = code
                    self.close(1000 if code in (1005, 1006) else code)
                    return ("close", code, reason)
                self.note(f"unknown control opcode {op}")
                continue
            if op == 0x0:
                if frag_op is None:
                    self.note("continuation frame without a message start")
                    continue
                frags.append(payload)
            elif op in (0x1, 0x2):
                if frag_op is not None:
                    self.note("new data frame inside a fragmented message")
                frag_op = op
                frags = [payload]
            else:
                self.note(f"unknown data opcode {op}")
                continue
            if fin:
                data = b"".join(frags)
                kind = frag_op
                frag_op, frags = None, []
                if kind == 0x1:
                    try:
                        return ("text", data.decode("utf-8"))
                    except UnicodeDecodeError:
                        self.note("text frame is not valid UTF-8")
                        return ("text", data.decode("utf-8", "replace"))
                return ("binary", data)


# ------------------------------------------------------------------------------------------------
# Calls

class Call:
    """One call, outbound (we dialled `to` from our number `frm`) or inbound (the caller `frm`
    dialled our number `to`). The fake plays the person on the far side: the callee of an outbound
    call, the caller of an inbound one."""

    def __init__(self, carrier, sid, to, frm, params, direction="outbound"):
        self.carrier = carrier
        self.sid = sid
        self.ids = {"sid": sid}
        self.to = to
        self.frm = frm
        self.params = params  # carrier-specific request settings (dict)
        self.direction = direction
        self.person = "caller" if direction == "inbound" else "callee"  # who the fake plays
        self.behaviour = "caller" if direction == "inbound" else behaviour_of(to)
        # inbound only: the voice webhook and what its answer did (README "Inbound calls")
        self.inbound = {"webhook": None, "outcome": "pending", "reject_reason": None,
                        "said": []} if direction == "inbound" else None
        self.preheard = bytearray()  # 8 kHz PCM16 the person heard before any stream (<Say>)
        self.created = time.time()
        self.updated = self.created
        self.status = "queued"
        self.pending_status = None  # what a REST hang-up asked for, until the call has ended
        self.ringing_at = None
        self.answered_at = None
        self.ended_at = None
        self.answered_by = None
        self.hangup_by = None
        self.hangup_reason = None
        self.hangup_cause = None
        self.lock = threading.Lock()
        self.stop_event = threading.Event()  # for the media thread
        self.astop = asyncio.Event()  # the same, for the call's task on the loop
        self.stop_kind = None  # api | callee | reset
        self.ended = threading.Event()
        self.settled = threading.Event()  # ended and its final callbacks sent
        self.ending = False  # a REST hang-up was accepted: later ones get 404
        self.timeline = []
        self.notes = []  # protocol deviations seen outside the media socket
        self.callbacks = []
        self.twilio_seq = 0
        self.media = None  # media stats (dict) once a stream is attempted
        self.recording = None
        self.recording_path = None
        self.dtmf = deque()
        self.say = deque()  # pcm-producing script items queued by the control API
        self.script = None
        self.session = None

    def event(self, what):
        with self.lock:
            self.timeline.append({"t": round(time.time() - self.created, 3), "event": what})
            self.updated = time.time()

    def note(self, msg):
        with self.lock:
            if msg not in self.notes:
                self.notes.append(msg)
        log(f"{self.carrier} {self.sid}: {msg}")

    def request_stop(self, kind):
        with self.lock:
            if self.stop_kind is None:
                self.stop_kind = kind
        self.stop_event.set()
        if LOOP is not None:
            LOOP.call_soon_threadsafe(self.astop.set)

    async def wait(self, seconds):
        """Sleeps; True if a stop was requested meanwhile."""
        if self.stop_event.is_set():
            return True
        try:
            await asyncio.wait_for(self.astop.wait(), max(0.0, seconds))
        except TimeoutError:
            pass
        return self.stop_event.is_set()

    @property
    def customer(self):
        """The far side's number: whom we dialled, or who dialled us."""
        return self.frm if self.direction == "inbound" else self.to

    @property
    def our_number(self):
        """The carrier number on our side (the caller id we dialled from, or the number dialled)."""
        return self.to if self.direction == "inbound" else self.frm

    def set_outcome(self, outcome, reject_reason=None):
        """Inbound calls: what the webhook's answer came to (README "Inbound calls")."""
        with self.lock:
            self.inbound["outcome"] = outcome
            if reject_reason is not None:
                self.inbound["reject_reason"] = reject_reason

    def media_connected(self):
        self.event("media-connected")
        if self.inbound is not None:
            self.set_outcome("streamed")

    def live(self):
        return not self.ended.is_set()

    def duration(self):
        if not self.answered_at:
            return 0
        end = self.ended_at or time.time()
        return max(1, math.ceil(end - self.answered_at - 1e-6))

    def record(self):
        with self.lock:
            media = json.loads(json.dumps(self.media)) if self.media else None
            rec = {
                "carrier": self.carrier, "sid": self.sid, "ids": dict(self.ids), "to": self.to,
                "from": self.frm, "behaviour": self.behaviour, "status": self.status,
                "live": self.live(), "settled": self.settled.is_set(),
                "created": iso(self.created),
                "ringing_at": iso(self.ringing_at), "answered_at": iso(self.answered_at),
                "ended_at": iso(self.ended_at), "duration": self.duration(),
                "answered_by": self.answered_by, "hangup_by": self.hangup_by,
                "hangup_reason": self.hangup_reason, "notes": list(self.notes),
                "timeline": list(self.timeline),
                "callbacks": list(self.callbacks), "media": media,
                "recording": self.recording_path,
                "request": {k: sorted(v) if isinstance(v, set) else v
                            for k, v in self.params.items()},
            }
            if self.inbound is not None:  # outbound records keep their shape
                rec["direction"] = "inbound"
                rec["inbound"] = json.loads(json.dumps(self.inbound))
            return rec


class Voice:
    """The callee's outgoing audio: queued PCM16 segments at the stream rate, else silence."""

    def __init__(self):
        self.segs = deque()
        self.lock = threading.Lock()

    def add(self, pcm):
        if pcm:
            with self.lock:
                self.segs.append(bytes(pcm))

    def read(self, n):
        out = bytearray()
        with self.lock:
            while self.segs and len(out) < n:
                seg = self.segs[0]
                take = n - len(out)
                if len(seg) <= take:
                    out += seg
                    self.segs.popleft()
                else:
                    out += seg[:take]
                    self.segs[0] = seg[take:]
        if len(out) < n:
            out += bytes(n - len(out))
        return bytes(out)


class MediaSession:
    """One media WebSocket of one call: the carrier is the client and our server accepts."""
    chunk_ms = 20  # outbound media chunk duration
    end_after_open = False  # Plivo <Stream> without keepCallAlive: the XML ends, so does the call

    def __init__(self, fake, call, url, rate, headers=None):
        self.fake = fake
        self.call = call
        self.url = url
        self.rate = rate
        self.frame_bytes = rate * 2 * 20 // 1000  # PCM16 per 20 ms tick
        self.out_lock = threading.RLock()
        self.qlock = threading.Lock()
        self.queue = deque()  # ("a", pcm) | ("m", name): what our server asked the callee to hear
        self.ready_marks = []
        self.seq = 0
        self.chunk_no = 0
        # the recording: what the person heard before the stream (<Say>), then the stream's audio
        self.heard = bytearray(resample(call.preheard, 8000, rate))
        self.out_buf = bytearray()
        self.voice = Voice()
        self.peer_closed = threading.Event()
        self.stats = {
            "url": url, "carrier": call.carrier, "connected": False, "handshake_status": None,
            "error": None, "rate": rate, "sent": {}, "received": {}, "marks_echoed": [],
            "clears": 0, "heard_bytes": 0, "heard_ms": 0, "media_chunks_sent": 0,
            "violations": [], "closed_by": None, "close_code": None, "pings": 0,
            "started_at": None, "ended_at": None,
        }
        call.media = self.stats
        self.ws = WSClient(url, headers, note=self.violation)

    # -- helpers shared by the carriers
    def violation(self, msg):
        with self.call.lock:
            v = self.stats["violations"]
            if len(v) < 50 and msg not in v:
                v.append(msg)
        log(f"{self.call.carrier} {self.call.sid} media: {msg}")

    def _count(self, key, event):
        with self.call.lock:
            d = self.stats[key]
            d[event] = d.get(event, 0) + 1

    def send_raw(self, obj):
        with self.out_lock:
            self.ws.send_text(json.dumps(obj, separators=(",", ":")))
        self._count("sent", obj.get("event", "?"))

    def emit(self, build):
        """Sends build(next sequence number); numbering and sending are atomic."""
        with self.out_lock:
            self.seq += 1
            self.send_raw(build(self.seq))

    def queue_audio(self, pcm):
        if not pcm:
            return
        with self.qlock:
            self.queue.append(("a", bytes(pcm)))
        with self.call.lock:
            self.stats["heard_bytes"] += len(pcm)
            self.stats["heard_ms"] = self.stats["heard_bytes"] * 1000 // (2 * self.rate)

    def queue_mark(self, name):
        with self.qlock:
            self.queue.append(("m", name))

    def clear(self):
        """Drops queued audio; returns the names of the marks still pending, in order."""
        with self.qlock:
            names = self.ready_marks + [v for k, v in self.queue if k == "m"]
            self.ready_marks = []
            self.queue.clear()
        with self.call.lock:
            self.stats["clears"] += 1
        return names

    def _echo(self, name):
        with self.call.lock:
            self.stats["marks_echoed"].append(name)
        self.echo_mark(name)

    # -- per-carrier hooks
    def on_open(self):
        raise NotImplementedError

    def on_message(self, event, obj):
        raise NotImplementedError

    def send_media(self, pcm):
        raise NotImplementedError

    def echo_mark(self, name):
        raise NotImplementedError

    def send_dtmf(self, digit):
        raise NotImplementedError

    def on_hangup(self, reason):
        pass

    # -- the loop
    def tick(self):
        while self.call.dtmf:
            self.send_dtmf(self.call.dtmf.popleft())
        while self.call.say:
            self.voice.add(self.fake.render([self.call.say.popleft()], self.rate))
        # marks whose audio finished playing during the previous tick, or with nothing before them
        with self.qlock:
            ready, self.ready_marks = self.ready_marks, []
            while self.queue and self.queue[0][0] == "m":
                ready.append(self.queue.popleft()[1])
        for name in ready:
            self._echo(name)
        # play 20 ms of what our server sent (silence when nothing is queued)
        need = self.frame_bytes
        got = bytearray()
        with self.qlock:
            while self.queue and len(got) < need:
                kind, val = self.queue[0]
                if kind == "m":
                    self.ready_marks.append(val)
                    self.queue.popleft()
                    continue
                take = need - len(got)
                if len(val) <= take:
                    got += val
                    self.queue.popleft()
                else:
                    got += val[:take]
                    self.queue[0] = ("a", val[take:])
        if len(got) < need:
            got += bytes(need - len(got))
        self.heard += got
        # the callee speaks
        self.out_buf += self.voice.read(self.frame_bytes)
        chunk = self.frame_bytes * self.chunk_ms // 20
        if len(self.out_buf) >= chunk:
            pcm = bytes(self.out_buf[:chunk])
            del self.out_buf[:chunk]
            self.chunk_no += 1
            self.send_media(pcm)
            with self.call.lock:
                self.stats["media_chunks_sent"] += 1

    def _reader(self):
        try:
            while True:
                msg = self.ws.recv_message()
                if msg[0] == "close":
                    with self.call.lock:
                        self.stats["close_code"] = msg[1]
                    break
                if msg[0] == "binary":
                    self._count("received", "<binary>")
                    self.violation("binary frame received (carriers take JSON text frames only; "
                                   "Twilio warning 31950)")
                    continue
                try:
                    obj = json.loads(msg[1])
                    event = obj["event"]
                except (ValueError, KeyError, TypeError):
                    self._count("received", "<invalid>")
                    self.violation(f"not a JSON message with an event: {msg[1][:80]!r}")
                    continue
                self._count("received", str(event))
                try:
                    self.on_message(event, obj)
                except (KeyError, TypeError, ValueError, AttributeError) as e:
                    self.violation(f"malformed {event!r} message ({type(e).__name__}: {e})")
        except (EOFError, OSError, WSError):
            pass
        finally:
            self.peer_closed.set()

    def run(self, callee_hangup_at, deadline):
        """Streams until someone hangs up; returns why: ws-closed, ws-failed, api, callee,
        reset, max-time."""
        call = self.call
        try:
            self.ws.connect()
        except (OSError, WSError, ssl.SSLError) as e:
            with call.lock:
                self.stats["error"] = f"{type(e).__name__}: {e}"
                self.stats["handshake_status"] = self.ws.handshake_status
            log(f"{call.carrier} {call.sid} media: cannot open {self.url}: {e}")
            return "ws-failed"
        with call.lock:
            self.stats["connected"] = True
            self.stats["handshake_status"] = 101
            self.stats["started_at"] = iso(time.time())
        log(f"{call.carrier} {call.sid} media: connected to {self.url}")
        call.media_connected()
        for item in call.script or []:
            self.voice.add(self.fake.render([item], self.rate))
        reader = threading.Thread(target=self._reader, daemon=True,
                                  name=f"ws-reader-{call.sid}")
        reader.start()
        reason = None
        try:
            self.on_open()
        except (OSError, WSError):
            reason = "ws-closed"
        if reason is None and self.end_after_open:
            reason = "xml-ended"
        next_t = time.monotonic()
        while reason is None:
            now = time.monotonic()
            if self.peer_closed.is_set():
                reason = "ws-closed"
            elif call.stop_event.is_set():
                reason = call.stop_kind or "api"
            elif callee_hangup_at is not None and now >= callee_hangup_at:
                reason = "callee"
            elif now >= deadline:
                reason = "max-time"
            elif now < next_t:
                time.sleep(min(next_t - now, 0.005))
            else:
                try:
                    self.tick()
                except (OSError, WSError):
                    reason = "ws-closed"
                next_t += 0.02
                if time.monotonic() - next_t > 0.2:  # fell far behind: resync, never burst
                    next_t = time.monotonic()
        if reason == "ws-closed":
            closed_by = "server"
        else:
            closed_by = "carrier"
            if reason != "reset":
                try:
                    self.on_hangup(reason)
                except (OSError, WSError):
                    pass
            self.ws.close(1000, "call ended")
        reader.join(2.0)
        self.ws.shutdown()
        reader.join(1.0)
        with call.lock:
            self.stats["closed_by"] = closed_by
            self.stats["pings"] = self.ws.pings
            self.stats["ended_at"] = iso(time.time())
        call.recording = (bytes(self.heard), self.rate)
        log(f"{call.carrier} {call.sid} media: closed by {closed_by} ({reason})")
        self.on_closed()
        return reason

    def on_closed(self):
        pass


class TwilioSession(MediaSession):
    def __init__(self, fake, call, url, custom, headers):
        super().__init__(fake, call, url, 8000, headers)
        self.stream_sid = "MZ" + hex32()
        self.custom = custom
        self.stats["stream_sid"] = self.stream_sid
        self.stats["custom_parameters"] = custom

    def on_open(self):
        self.send_raw({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        self.emit(lambda s: {
            "event": "start", "sequenceNumber": str(s), "streamSid": self.stream_sid,
            "start": {"accountSid": self.fake.cfg.twilio_sid, "streamSid": self.stream_sid,
                      "callSid": self.call.sid, "tracks": ["inbound"],
                      "customParameters": self.custom,
                      "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000,
                                      "channels": 1}}})

    def send_media(self, pcm):
        payload = base64.b64encode(ulaw_encode(pcm)).decode()
        chunk = self.chunk_no
        self.emit(lambda s: {
            "event": "media", "sequenceNumber": str(s), "streamSid": self.stream_sid,
            "media": {"track": "inbound", "chunk": str(chunk), "timestamp": str((chunk - 1) * 20),
                      "payload": payload}})

    def on_message(self, event, obj):
        if event in ("media", "mark", "clear") and obj.get("streamSid") != self.stream_sid:
            self.violation(f"{event} with streamSid {obj.get('streamSid')!r} "
                           f"(expected {self.stream_sid})")
        if event == "media":
            data = base64.b64decode(obj["media"]["payload"], validate=True)
            self.queue_audio(ulaw_decode(data))
        elif event == "mark":
            self.queue_mark(str(obj["mark"]["name"]))
        elif event == "clear":
            for name in self.clear():
                self._echo(name)
        else:
            self.violation(f"unknown event {event!r} (Twilio accepts media, mark, clear)")

    def echo_mark(self, name):
        self.emit(lambda s: {"event": "mark", "sequenceNumber": str(s),
                             "streamSid": self.stream_sid, "mark": {"name": name}})

    def send_dtmf(self, digit):
        self.emit(lambda s: {"event": "dtmf", "sequenceNumber": str(s),
                             "streamSid": self.stream_sid,
                             "dtmf": {"track": "inbound_track", "digit": digit}})

    def on_hangup(self, reason):
        self.emit(lambda s: {"event": "stop", "sequenceNumber": str(s),
                             "streamSid": self.stream_sid,
                             "stop": {"accountSid": self.fake.cfg.twilio_sid,
                                      "callSid": self.call.sid}})


def parse_content_type(ct):
    """Plivo contentType -> (codec, rate) or None."""
    m = re.fullmatch(r"\s*audio/x-(l16|mulaw)\s*(?:;\s*rate\s*=\s*(\d+))?\s*", ct or "")
    if not m:
        return None
    codec, rate = m.group(1), int(m.group(2) or 8000)
    if (codec, rate) not in (("l16", 8000), ("l16", 16000), ("mulaw", 8000)):
        return None
    return codec, rate


class PlivoSession(MediaSession):
    def __init__(self, fake, call, url, codec, rate, bidirectional, extra_headers):
        super().__init__(fake, call, url, rate)
        self.codec = codec
        self.stream_id = str(uuid.uuid4())
        self.bidirectional = bidirectional
        self.extra_headers = extra_headers
        self.stats["stream_id"] = self.stream_id
        self.stats["content_type"] = f"audio/x-{codec};rate={rate}"
        self.status_cb = (None, "POST")  # <Stream statusCallbackUrl/Method>

    def stream_event(self, event):
        url, method = self.status_cb
        if url:
            p = [("Event", event), ("CallUUID", self.call.ids.get("call_uuid")),
                 ("StreamID", self.stream_id), ("Timestamp", ymdhms(time.time()))]
            self.fake.http_out_sync(self.call, f"stream:{event}", url, method, p, "plivo")

    def on_closed(self):
        self.stream_event("StopStream")

    def _extra(self, obj):
        if self.extra_headers is not None:
            obj["extra_headers"] = self.extra_headers
        return obj

    def on_open(self):
        THREADS.start(self.stream_event, "StartStream")
        self.emit(lambda s: self._extra({
            "event": "start", "sequenceNumber": s,
            "start": {"callId": self.call.ids.get("call_uuid"), "streamId": self.stream_id,
                      "accountId": self.fake.cfg.plivo_id, "tracks": ["inbound"],
                      "mediaFormat": {"encoding": f"audio/x-{self.codec}",
                                      "sampleRate": self.rate}}}))

    def send_media(self, pcm):
        data = ulaw_encode(pcm) if self.codec == "mulaw" else pcm
        payload = base64.b64encode(data).decode()
        chunk = self.chunk_no
        self.emit(lambda s: self._extra({
            "event": "media", "sequenceNumber": s, "streamId": self.stream_id,
            "media": {"track": "inbound", "timestamp": str(int(time.time() * 1000)),
                      "chunk": chunk, "payload": payload}}))

    def on_message(self, event, obj):
        sid = obj.get("streamId")
        if sid is not None and sid != self.stream_id:
            self.violation(f"{event} with streamId {sid!r} (expected {self.stream_id})")
        if event == "playAudio":
            if not self.bidirectional:
                self.violation("playAudio on a stream that is not bidirectional (ignored)")
                return
            media = obj["media"]
            ct = media.get("contentType")
            sr = int(media.get("sampleRate"))
            fmt = parse_content_type(f"{ct};rate={sr}")
            if fmt is None:
                self.violation(f"playAudio with unsupported contentType/sampleRate {ct}/{sr}")
                return
            data = base64.b64decode(media["payload"], validate=True)
            pcm = ulaw_decode(data) if fmt[0] == "mulaw" else data
            self.queue_audio(resample(pcm, fmt[1], self.rate))
        elif event == "checkpoint":
            self.queue_mark(str(obj["name"]))
        elif event == "clearAudio":
            for name in self.clear():
                self._echo(name)
            self.emit(lambda s: {"event": "clearedAudio", "streamId": self.stream_id,
                                 "sequenceNumber": s})
        elif event == "sendDTMF":
            pass  # accepted; the callee has no ears for DTMF
        else:
            self.violation(f"unknown event {event!r} "
                           "(Plivo accepts playAudio, checkpoint, clearAudio, sendDTMF)")

    def echo_mark(self, name):
        self.send_raw({"event": "playedStream", "streamId": self.stream_id, "name": name})

    def send_dtmf(self, digit):
        self.send_raw({"event": "dtmf", "streamId": self.stream_id, "dtmf": {"digit": digit}})


class ExotelSession(MediaSession):
    chunk_ms = 100

    def __init__(self, fake, call, url, rate, custom):
        super().__init__(fake, call, url, rate)
        self.stream_sid = hex32()
        self.custom = custom
        self.stats["stream_sid"] = self.stream_sid
        self.stats["custom_parameters"] = custom
        self.stats["chunk_bytes_received"] = {}

    def on_open(self):
        self.send_raw({"event": "connected"})
        self.emit(lambda s: {
            "event": "start", "sequence_number": str(s), "stream_sid": self.stream_sid,
            "start": {"stream_sid": self.stream_sid, "call_sid": self.call.sid,
                      "account_sid": self.fake.cfg.exotel_sid, "from": self.call.customer,
                      "to": self.call.our_number, "custom_parameters": self.custom,
                      "media_format": {"encoding": "audio/x-raw", "sample_rate": str(self.rate),
                                       "bit_rate": "16"}}})

    def send_media(self, pcm):
        payload = base64.b64encode(pcm).decode()
        chunk = self.chunk_no
        self.emit(lambda s: {
            "event": "media", "sequence_number": str(s), "stream_sid": self.stream_sid,
            "media": {"chunk": str(chunk), "timestamp": str(chunk * 100), "payload": payload}})

    def on_message(self, event, obj):
        if event in ("media", "mark", "clear") and obj.get("stream_sid") != self.stream_sid:
            self.violation(f"{event} with stream_sid {obj.get('stream_sid')!r} "
                           f"(expected {self.stream_sid})")
        if event == "media":
            data = base64.b64decode(obj["media"]["payload"], validate=True)
            n = len(data)
            with self.call.lock:
                d = self.stats["chunk_bytes_received"]
                d[str(n)] = d.get(str(n), 0) + 1
            if n % 320:
                self.violation(f"media chunk of {n} B is not a multiple of 320 B")
            if n < 3200:
                self.violation(f"media chunk of {n} B is under Exotel's 3.2 KB minimum")
            if n > 100 * 1024:
                self.violation(f"media chunk of {n} B is over Exotel's 100 KB maximum")
            self.queue_audio(data)
        elif event == "mark":
            self.queue_mark(str(obj["mark"]["name"]))
        elif event == "clear":
            for name in self.clear():
                self._echo(name)
        else:
            self.violation(f"unknown event {event!r} (Exotel accepts media, mark, clear)")

    def echo_mark(self, name):
        self.emit(lambda s: {"event": "mark", "sequence_number": str(s),
                             "stream_sid": self.stream_sid, "mark": {"name": name}})

    def send_dtmf(self, digit):
        self.emit(lambda s: {"event": "dtmf", "sequence_number": str(s),
                             "stream_sid": self.stream_sid,
                             "dtmf": {"digit": digit, "duration": "100"}})

    def on_hangup(self, reason):
        self.emit(lambda s: {"event": "stop", "sequence_number": str(s),
                             "stream_sid": self.stream_sid,
                             "stop": {"call_sid": self.call.sid,
                                      "account_sid": self.fake.cfg.exotel_sid,
                                      "reason": "callended"}})


# ------------------------------------------------------------------------------------------------
# The fake

E164 = re.compile(r"^\+[1-9]\d{1,14}$")
LOOSE_NUMBER = re.compile(r"^\+?\d{6,15}$")


# What an answer document (TwiML, Plivo XML, Exotel JSON) or its fetch came to. kind: "stream"
# (session: the MediaSession to run), "reject" (reason: the document's), "hangup" (the document
# ended the call), "stopped" (a hang-up came while it ran), "refused" (non-2xx), "error" (no
# answer, or one the carrier cannot run). why: for the record's hangup_reason.
Answer = namedtuple("Answer", "kind why session reason", defaults=(None, None, None))

# POST /_fake/inbound fields (README "Inbound calls")
INBOUND_FIELDS = {"provider", "url", "from", "to", "script", "signature", "hangup_after_ms"}
SCRIPT_KEYS = ("wav", "text", "silence_ms", "tone_hz")


def script_error(items):
    """Why items is not a voice script (a list of items, each with one of SCRIPT_KEYS), or None."""
    if not isinstance(items, list):
        return "must be a list of items"
    for it in items:
        if not isinstance(it, dict) or not any(k in it for k in SCRIPT_KEYS):
            return "item needs wav, text, silence_ms or tone_hz"
    return None


def exotel_national(number):
    """Exotel India writes Indian numbers in national form: +91 and 10 digits -> 0 and the 10
    digits. Other numbers are sent as given."""
    return "0" + number[3:] if re.fullmatch(r"\+91\d{10}", number) else number


def stable_digits(text, n):
    """n digits (no leading zero) derived from text: the same flow or account gets the same id."""
    h = int(hashlib.sha1(text.encode()).hexdigest(), 16)
    return str(10 ** (n - 1) + h % (9 * 10 ** (n - 1)))


class HttpError(Exception):
    def __init__(self, status, body):
        super().__init__(status)
        self.status = status
        self.body = body


def is_http_url(u):
    try:
        p = urlsplit(u or "")
    except ValueError:
        return False
    return p.scheme in ("http", "https") and bool(p.netloc)


class _Conn:
    """One HTTP/1.1 client connection (asyncio streams): the request leaves in one write, the
    answer is parsed here (Content-Length, chunked, or to the close)."""
    MAX_BODY = 200 * 1024  # kept of an answer; a longer answer is cut and its connection closed

    def __init__(self, reader, writer, host, port):
        self.reader, self.writer = reader, writer
        self.host, self.port = host, port

    @classmethod
    async def open(cls, scheme, host, port):
        default = 443 if scheme == "https" else 80
        if scheme == "https":
            r, w = await asyncio.open_connection(host, port or default,
                                                 ssl=ssl.create_default_context(),
                                                 server_hostname=host)
        else:
            r, w = await asyncio.open_connection(host, port or default)
        sock = w.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        return cls(r, w, host, port)

    def close(self):
        try:
            self.writer.close()
        except (OSError, RuntimeError):
            pass

    def usable(self):
        return not self.writer.is_closing() and not self.reader.at_eof()

    async def _line(self):
        try:
            line = await self.reader.readuntil(b"\r\n")
        except asyncio.IncompleteReadError as e:
            if e.partial:
                raise http.client.IncompleteRead(e.partial) from None
            return None
        except asyncio.LimitOverrunError:
            raise http.client.LineTooLong("header line") from None
        return line[:-2]

    async def _exactly(self, n):
        try:
            return await self.reader.readexactly(n)
        except asyncio.IncompleteReadError as e:
            raise http.client.IncompleteRead(e.partial, n - len(e.partial)) from None

    async def request(self, method, path, body, headers):
        """Sends the request http.client would send (same header lines, same order) in one
        write; returns (status, body bytes, reusable)."""
        host = self.host.encode("idna").decode("ascii") if not self.host.isascii() else self.host
        if ":" in host:
            host = f"[{host}]"
        lines = [f"{method} {path} HTTP/1.1",
                 f"Host: {host}" if self.port is None else f"Host: {host}:{self.port}",
                 "Accept-Encoding: identity"]
        if not any(k.lower() == "content-length" for k in headers):
            if body is not None:
                lines.append(f"Content-Length: {len(body)}")
            elif method in ("PATCH", "POST", "PUT"):
                lines.append("Content-Length: 0")
        lines += [f"{k}: {v}" for k, v in headers.items()]
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.writer.write(data + body if body else data)
        await self.writer.drain()
        while True:
            line = await self._line()
            if line is None:
                raise http.client.RemoteDisconnected("Remote end closed connection without"
                                                     " response")
            parts = line.decode("iso-8859-1").split(None, 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
                raise http.client.BadStatusLine(line.decode("iso-8859-1"))
            version, status = parts[0], int(parts[1])
            hdrs = {}
            while True:
                h = await self._line()
                if h is None:
                    raise http.client.IncompleteRead(b"")
                if not h:
                    break
                k, _, v = h.decode("iso-8859-1").partition(":")
                k = k.strip().lower()
                hdrs[k] = (hdrs[k] + ", " + v.strip()) if k in hdrs else v.strip()
            if status != 100:
                break
        conn_hdr = hdrs.get("connection", "").lower()
        will_close = "close" in conn_hdr or (version == "HTTP/1.0" and "keep-alive" not in
                                             conn_hdr)
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return status, b"", not will_close
        if "chunked" in hdrs.get("transfer-encoding", "").lower():
            out = bytearray()
            while True:
                size_line = await self._line()
                if size_line is None:
                    raise http.client.IncompleteRead(bytes(out))
                n = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if n == 0:
                    while await self._line():  # trailers up to the empty line
                        pass
                    break
                out += await self._exactly(n)
                await self._exactly(2)
                if len(out) > self.MAX_BODY:
                    return status, bytes(out[:self.MAX_BODY]), False
            return status, bytes(out), not will_close
        length = hdrs.get("content-length")
        if length is not None and length.strip().isdigit():
            n = int(length)
            if n > self.MAX_BODY:
                return status, await self._exactly(self.MAX_BODY), False
            return status, await self._exactly(n), not will_close
        return status, await self.reader.read(self.MAX_BODY), False  # to the close


class ConnPool:
    """Keep-alive HTTP connections to the servers the fake calls back, reused across requests and
    calls, as a carrier's HTTP client does. The requests on the wire are the ones http.client
    sends; only the TCP connection may be an earlier one. A connection idle for IDLE_S is not
    reused (servers close idle ones, ours after PL_GATEWAY_KEEPALIVE_MS); a reused connection the
    server had closed meanwhile fails before any answer, and only then is the request sent again,
    once, on a new connection (as browsers and urllib3 do: the server never saw it). At most
    MAX_OPEN connections to one server are open at a time (our gateway serves each on a thread of
    its own, 64 by default); a request waits for one, and that wait counts in its time. Used on
    the loop only."""
    IDLE_S = 2.0
    MAX_OPEN = 48  # per server; idle ones are kept up to this number too

    def __init__(self):
        self.idle = {}  # (scheme, host, port) -> [(connection, idle since)]
        self.slots = {}  # (scheme, host, port) -> asyncio.Semaphore(MAX_OPEN)

    def _take(self, key):
        now = time.monotonic()
        lst = self.idle.get(key)
        while lst:
            c, since = lst.pop()
            if now - since < self.IDLE_S and c.usable():
                return c
            c.close()
        return None

    def _put(self, key, conn):
        self.idle.setdefault(key, []).append((conn, time.monotonic()))

    async def request(self, url, method, body, headers, timeout):
        """One request within timeout seconds; returns (status, text of at most 200 KiB)."""
        try:
            return await asyncio.wait_for(self._request(url, method, body, headers), timeout)
        except TimeoutError:
            raise TimeoutError("timed out") from None

    async def _request(self, url, method, body, headers):
        u = urlsplit(url)
        key = (u.scheme, u.hostname, u.port)
        slots = self.slots.get(key)
        if slots is None:
            slots = self.slots[key] = asyncio.Semaphore(self.MAX_OPEN)
        async with slots:
            return await self._send(u, key, method, body, headers)

    async def _send(self, u, key, method, body, headers):
        path = (u.path or "/") + ("?" + u.query if u.query else "")
        for attempt in (0, 1):
            conn = self._take(key)
            reused = conn is not None
            if conn is None:
                conn = await _Conn.open(u.scheme, u.hostname, u.port)
            try:
                status, data, keep = await conn.request(method, path, body, headers)
            except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError,
                    http.client.RemoteDisconnected):
                conn.close()
                if reused and attempt == 0:
                    continue  # the server had closed it while idle; it never saw this request
                raise
            except BaseException:
                conn.close()
                raise
            if keep:
                self._put(key, conn)
            else:
                conn.close()
            return status, data.decode("utf-8", "replace")


class Fake:
    def __init__(self, cfg):
        self.cfg = cfg
        self.conns = ConnPool()
        self.lock = threading.Lock()
        self.calls = {}  # every id of a call -> Call
        self.call_list = []
        self.dials = []
        self.voices = {}  # dialled number (or "*") -> script
        self.started = time.time()

    # -- registry
    def register(self, call):
        with self.lock:
            for v in call.ids.values():
                self.calls[v] = call
            self.call_list.append(call)

    def add_id(self, call, key, value):
        with self.lock:
            call.ids[key] = value
            self.calls[value] = call

    def find(self, cid):
        with self.lock:
            return self.calls.get(cid)

    def record_dial(self, carrier, to, frm, urls, status, sid, params):
        with self.lock:
            self.dials.append({"carrier": carrier, "to": to, "from": frm, "time": iso(time.time()),
                               "epoch": time.time(), "urls": urls, "status": status, "sid": sid,
                               "params": params})

    def reset(self):
        with self.lock:
            calls = list(self.call_list)
            self.calls.clear()
            self.call_list.clear()
            self.dials.clear()
            self.voices.clear()
        for c in calls:
            c.request_stop("reset")
        log(f"reset: {len(calls)} call(s) dropped")
        return len(calls)

    # -- callee voice
    def script_for(self, number):
        with self.lock:
            s = self.voices.get(number) or self.voices.get("*")
        if s is not None:
            return list(s)
        if self.cfg.voice_wav:
            return [{"wav": self.cfg.voice_wav}]
        return [{"silence_ms": 1000}, {"tone_hz": 440, "ms": 1000}]

    def render(self, items, rate):
        out = bytearray()
        for item in items:
            try:
                if "wav" in item:
                    with open(item["wav"], "rb") as f:
                        pcm, src = parse_wav(f.read())
                    out += resample(pcm, src, rate)
                elif "silence_ms" in item:
                    out += silence(int(item["silence_ms"]), rate)
                elif "tone_hz" in item:
                    out += tone(float(item["tone_hz"]), int(item.get("ms", 1000)), rate,
                                int(item.get("amplitude", 8000)))
                elif "text" in item:
                    if not self.cfg.voice_cmd:
                        log("script text item ignored: no --voice-cmd")
                        continue
                    argv = [a.replace("{text}", str(item["text"]))
                            for a in shlex.split(self.cfg.voice_cmd)]
                    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       timeout=30, check=True)
                    pcm, src = parse_wav(r.stdout)
                    out += resample(pcm, src, rate)
                else:
                    log(f"unknown script item {item!r}")
            except (OSError, ValueError, subprocess.SubprocessError) as e:
                log(f"script item {item!r} failed: {e}")
        return bytes(out)

    # -- outgoing HTTP (callbacks, answer documents)
    def http_out_sync(self, call, kind, url, method, params, signer):
        """http_out for a thread other than the loop's (a media session's)."""
        return asyncio.run_coroutine_threadsafe(
            self.http_out(call, kind, url, method, params, signer), LOOP).result()

    async def http_out(self, call, kind, url, method, params, signer):
        """Sends one carrier-to-us request; records it on the call; returns (status, body)."""
        entry, _, text = await self.http_request(call, kind, url, method, params, signer)
        return entry["http_status"], text

    def sign_headers(self, signer, sign, method, target, pairs):
        """The signature headers a carrier puts on a request to us. sign: "valid" (the
        configured tokens), "bad" (a wrong token: a forged request) or "none" (no headers)."""
        if signer is None or sign == "none":
            return {}
        forged = sign == "bad"
        if signer == "twilio":
            token = self.cfg.twilio_token + ("-forged" if forged else "")
            return {"X-Twilio-Signature": twilio_signature(
                token, target, pairs if method != "GET" else None)}
        nonce = str(random.randrange(10 ** 19, 10 ** 20))
        sp = pairs if method != "GET" else None
        token, main = self.cfg.plivo_token, self.cfg.plivo_main_token
        if forged:
            token, main = token + "-forged", main + "-forged"
        return {"X-Plivo-Signature-V3-Nonce": nonce,
                "X-Plivo-Signature-V3": plivo_signature_v3(token, target, sp, nonce, method),
                "X-Plivo-Signature-Ma-V3": plivo_signature_v3(main, target, sp, nonce, method)}

    async def http_request(self, call, kind, url, method, params, signer, sign="valid",
                           headers=None):
        """Sends one carrier-to-us request (GET: params in the query, else a form body), signed
        by signer (twilio | plivo | None) as sign says, with headers added; records it in
        call.callbacks. Returns (the recorded entry, the headers sent, the answer's text)."""
        method = (method or "POST").upper()
        pairs = _pairs(params)
        sent = {"User-Agent": f"parley-carrier-fake ({call.carrier})"}
        body = None
        target = url
        if method == "GET":
            if pairs:
                target = url + ("&" if urlsplit(url).query else "?") + form_encode(pairs)
        else:
            body = form_encode(pairs).encode()
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        sent.update(self.sign_headers(signer, sign, method, target, pairs))
        sent.update(headers or {})
        entry = {"kind": kind, "url": url, "method": method, "params": dict(pairs),
                 "t": round(time.time() - call.created, 3), "http_status": None, "error": None}
        status, text = None, ""
        t0 = time.monotonic()
        try:
            status, text = await self.conns.request(target, method, body, sent,
                                                    self.cfg.callback_timeout)
        except (OSError, http.client.HTTPException, ValueError) as e:
            entry["error"] = f"{type(e).__name__}: {e}"
        entry["http_status"] = status
        entry["ms"] = round((time.monotonic() - t0) * 1000, 2)
        if kind in ("twiml", "answer_url", "webhook") or \
                (status is not None and not 200 <= status < 300):
            entry["response"] = text[:2000]
        with call.lock:
            call.callbacks.append(entry)
        if status is None or not 200 <= status < 300:
            log(f"{call.carrier} {call.sid} {kind} {method} {url} -> "
                f"{status if status is not None else entry['error']} (not retried)")
        else:
            log(f"{call.carrier} {call.sid} {kind} -> {status}")
        return entry, sent, text

    # -- Twilio callbacks
    def twilio_params(self, call, status):
        p = [("AccountSid", self.cfg.twilio_sid), ("ApiVersion", "2010-04-01"),
             ("CallSid", call.sid), ("CallStatus", status), ("Called", call.to),
             ("Caller", call.frm),
             ("Direction", "inbound" if call.direction == "inbound" else "outbound-api"),
             ("From", call.frm),
             ("To", call.to)]
        if call.params.get("machine_detection") and call.answered_by \
                and not call.params.get("async_amd"):
            p.append(("AnsweredBy", call.answered_by))
        return p

    async def twilio_status(self, call, event, status):
        cb = call.params.get("status_callback")
        if not cb or event not in call.params["status_events"]:
            return
        p = self.twilio_params(call, status)
        p += [("CallbackSource", "call-progress-events"), ("SequenceNumber", str(call.twilio_seq)),
              ("Timestamp", rfc2822(time.time()))]
        call.twilio_seq += 1
        if event == "completed":
            p += [("CallDuration", str(call.duration())),
                  ("Duration", str(math.ceil(call.duration() / 60))),
                  ("SipResponseCode", {"completed": "200", "busy": "486", "no-answer": "487",
                                       "canceled": "487", "failed": "503"}.get(status, "200"))]
        await self.http_out(call, f"status:{status}", cb, call.params["status_callback_method"],
                            p, "twilio")

    # -- Plivo callbacks
    def plivo_params(self, call, status):
        return [("CallUUID", call.ids.get("call_uuid", "")),
                ("RequestUUID", call.ids["request_uuid"]), ("From", call.frm), ("To", call.to),
                ("Direction", "outbound"), ("CallStatus", status)]

    # -- lifecycle
    def start(self, call):
        """Plays the call out in a task on the loop. The person speaks the request's script (an
        inbound call's "script"), else the one registered for their number (POST /_fake/voices),
        else the default voice."""
        script = call.params.get("script")
        call.script = list(script) if script is not None else self.script_for(call.customer)
        spawn(self._lifecycle_guard(call))

    async def _lifecycle_guard(self, call):
        try:
            if call.direction == "inbound":
                await self._inbound_lifecycle(call)
            else:
                await self._lifecycle(call)
        except Exception:
            log(f"{call.carrier} {call.sid} lifecycle crashed:\n{traceback.format_exc()}")
            if call.live():
                if call.inbound is not None:
                    call.set_outcome("error")
                await self.finish(call, "failed", "carrier", "carrier fake internal error")

    def _set_status(self, call, status, event=None):
        with call.lock:
            call.status = status
            call.updated = time.time()
        call.event(event or status)
        log(f"{call.carrier} {call.sid} {event or status}")

    async def _lifecycle(self, call):
        cfg = self.cfg
        b = call.behaviour
        ring_s, answer_s = cfg.ring_ms / 1000, cfg.answer_ms / 1000
        if call.carrier == "twilio":
            call.event("initiated")
            await self.twilio_status(call, "initiated", "initiated")
        instant = b == "instant"
        if not instant and await call.wait(ring_s):
            return await self.end_unanswered(call)
        if b == "busy":
            return await self.finish(call, "busy", "callee", "callee busy")
        with call.lock:
            call.ringing_at = time.time()
        self._set_status(call, "ringing")
        if call.carrier == "twilio":
            await self.twilio_status(call, "ringing", "ringing")
        elif call.carrier == "plivo":
            if call.params.get("ring_url"):
                await self.http_out(call, "ring_url", call.params["ring_url"],
                                    call.params.get("ring_method", "POST"),
                                    self.plivo_params(call, "ringing") + [("Event", "Ring")],
                                    "plivo")
        if b == "no-answer":
            if await call.wait(call.params["ring_timeout"]):
                return await self.end_unanswered(call)
            status = cfg.plivo_noanswer_status if call.carrier == "plivo" else "no-answer"
            return await self.finish(call, status, "callee", "no answer within the ring timeout")
        if b == "failed":
            if await call.wait(ring_s):
                return await self.end_unanswered(call)
            return await self.finish(call, "failed", "carrier", "carrier failed the call")
        if not instant and await call.wait(answer_s):
            return await self.end_unanswered(call)
        target = await self.answer(call)
        if call.stop_event.is_set():
            return await self.finish_stopped(call)
        if instant:
            return await self.finish(call, "completed", "callee", "callee hung up at once")
        if target is None:
            return await self.finish(call, "completed", "carrier",
                                     call.hangup_reason or "no media stream to connect")
        hangup_after = cfg.callee_hangup_ms / 1000 if b == "callee-hangup" else None
        return await self.finish_stream(call, await self.stream(call, target, hangup_after))

    async def stream(self, call, session, hangup_after):
        """Runs the media session (on a thread of its own) until someone hangs up: our server,
        the REST API, the person after hangup_after seconds (None: never), or the time limit
        (--max-call-seconds, or the dial's smaller TimeLimit). Returns why (MediaSession.run)."""
        call.session = session
        cfg = self.cfg
        now = time.monotonic()
        limit = min(cfg.max_call_seconds, call.params.get("time_limit") or cfg.max_call_seconds)
        hang_at = None if hangup_after is None else now + hangup_after
        return await in_thread(session.run, hang_at, now + limit, name=f"media-{call.sid}")

    async def finish_stream(self, call, reason):
        """Ends a call whose media session ended for reason (MediaSession.run)."""
        if reason == "reset":
            return await self.finish(call, "completed", "reset", "fake reset")
        person = call.person  # stop kind "callee" is the person the fake plays, either way
        by, why = {
            "ws-closed": ("server", "media WebSocket closed by our server"),
            "ws-failed": ("carrier", "media WebSocket could not be opened"),
            "api": ("api", "hung up through the REST API"),
            "callee": (person, f"{person} hung up"),
            "max-time": (person, "maximum call time reached"),
            "xml-ended": ("carrier", "answer XML ended (<Stream> without keepCallAlive=\"true\")"),
        }.get(reason, ("carrier", reason))
        return await self.finish(call, "completed", by, why)

    async def end_unanswered(self, call):
        """A stop before the answer: REST cancel, control-API hangup (callee declines), reset."""
        kind = call.stop_kind
        if kind == "reset":
            return await self.finish(call, "canceled", "reset", "fake reset")
        if kind == "callee":
            return await self.finish(call, "busy", "callee", "callee declined")
        if call.carrier == "twilio":
            return await self.finish(call, "canceled", "api", "canceled through the REST API")
        return await self.finish(call, "completed", "api", "canceled through the REST API")

    async def finish_stopped(self, call):
        kind = call.stop_kind
        by = {"reset": "reset", "callee": "callee"}.get(kind, "api")
        return await self.finish(call, "completed", by, "hung up before the media started")

    def pick_up(self, call):
        """The carrier answers the call. An outbound call is answered by the callee before its
        document is fetched (a no-op here); an inbound one when its document first does
        something other than reject it."""
        with call.lock:
            if call.answered_at is not None:
                return
            call.answered_at = time.time()
        self._set_status(call, "in-progress", "answered")

    async def answer(self, call):
        """Answers the call: answered callbacks, the answer document; returns a MediaSession or
        None (no stream: the call then ends)."""
        with call.lock:
            call.answered_at = time.time()
        self._set_status(call, "in-progress", "answered")
        machine = call.behaviour == "machine"
        if call.carrier == "twilio":
            md = call.params.get("machine_detection")
            if md:
                if machine:
                    call.answered_by = "machine_end_beep" if md == "DetectMessageEnd" \
                        else "machine_start"
                else:
                    call.answered_by = "human"
            await self.twilio_status(call, "answered", "in-progress")
            if md and call.params.get("async_amd"):
                spawn(self._twilio_async_amd(call))
            elif md and await call.wait(self.cfg.amd_ms / 1000):
                return None
            return await self.twilio_twiml(call)
        if call.carrier == "plivo":
            md = call.params.get("machine_detection")
            if md and call.params.get("machine_detection_url"):
                call.answered_by = "machine" if machine else "human"
                spawn(self._plivo_amd(call, machine))
            return await self.plivo_answer(call)
        # exotel
        if "answered" in call.params["status_events"] and call.params.get("status_callback"):
            await self.http_out(call, "status:answered", call.params["status_callback"], "POST",
                                self.exotel_params(call, "in-progress", "answered"), None)
        url = call.params.get("stream_url")
        if not url:
            call.hangup_reason = "no stream URL (classic Url is not a ws:// URL)"
            return None
        return self.exotel_session(call, url)

    def exotel_session(self, call, url):
        """The media session for an Exotel Voicebot stream URL: ?sample-rate= picks the rate;
        the other query parameters become start.custom_parameters."""
        rate = 8000
        custom = {}
        for k, v in parse_qsl(urlsplit(url).query, keep_blank_values=True):
            if k == "sample-rate":
                if v in ("8000", "16000", "24000"):
                    rate = int(v)
                else:
                    call.note(f"bad sample-rate {v!r}; using 8000")
            else:
                custom[k] = v
        if len(custom) > 3:
            call.note(f"{len(custom)} custom parameters (Exotel allows 3)")
        return ExotelSession(self, call, url, rate, custom)

    async def _twilio_async_amd(self, call):
        if await call.wait(self.cfg.amd_ms / 1000):
            return
        cb = call.params.get("async_amd_callback")
        if cb:
            p = [("AccountSid", self.cfg.twilio_sid), ("CallSid", call.sid),
                 ("AnsweredBy", call.answered_by),
                 ("MachineDetectionDuration", str(self.cfg.amd_ms))]
            await self.http_out(call, "amd", cb,
                                call.params.get("async_amd_callback_method", "POST"), p, "twilio")

    async def _plivo_amd(self, call, machine):
        if await call.wait(self.cfg.amd_ms / 1000):
            return
        p = self.plivo_params(call, "in-progress") + [("Machine", "true" if machine else "false")]
        await self.http_out(call, "machine_detection_url", call.params["machine_detection_url"],
                            call.params.get("machine_detection_method", "POST"), p, "plivo")

    # -- answer documents (TwiML, Plivo XML): shared by outbound and inbound calls

    @staticmethod
    def outbound_target(call, answer):
        """What an outbound call does with its document's Answer: stream, or end (for
        answer.why, kept as the hang-up reason)."""
        if answer.kind == "stream":
            return answer.session
        if answer.why:
            call.hangup_reason = answer.why
        return None

    @staticmethod
    def parse_response(call, text, what):
        """(root, None) for a <Response> document, else (None, an "error" Answer)."""
        try:
            root = ET.fromstring(text.strip())
        except ET.ParseError as e:
            why = f"{what} does not parse: {e}"
            call.note(why)
            return None, Answer("error", why)
        if root.tag != "Response":
            return None, Answer("error", f"{what} root is <{root.tag}>, not <Response>")
        return root, None

    async def pause(self, call, el):
        """<Pause length>/<Wait length>: the call is answered and waits. True if it was stopped
        meanwhile."""
        self.pick_up(call)
        return await call.wait(float(el.get("length", "1")))

    async def say(self, call, el):
        """An inbound call's <Say>/<Speak>: the call is answered, the text is noted
        (inbound.said) and, with --voice-cmd, spoken into what the caller hears, taking as long
        as it lasts. True if the call was stopped meanwhile."""
        self.pick_up(call)
        text = (el.text or "").strip()
        with call.lock:
            call.inbound["said"].append(text)
        if not self.cfg.voice_cmd:
            return call.stop_event.is_set()
        pcm = await in_thread(self.render, [{"text": text}], 8000, name=f"say-{call.sid}")
        call.preheard += pcm
        return await call.wait(len(pcm) / 16000)

    async def twilio_twiml(self, call):
        p = self.twilio_params(call, "in-progress")
        if call.params.get("machine_detection") and not call.params.get("async_amd"):
            p = [x for x in p if x[0] != "AnsweredBy"] + [
                ("AnsweredBy", call.answered_by),
                ("MachineDetectionDuration", str(self.cfg.amd_ms))]
        if call.params.get("twiml") and not call.params.get("url"):
            text = call.params["twiml"]
        else:
            status, text = await self.http_out(call, "twiml", call.params["url"],
                                               call.params["method"], p, "twilio")
            if status is None or not 200 <= status < 300:
                call.hangup_reason = f"TwiML fetch failed ({status})"
                return None
        return self.outbound_target(call, await self.run_twiml(call, text))

    async def run_twiml(self, call, text):
        """Runs a TwiML document's verbs as Twilio does, up to the first that hands the call to
        a stream or ends it; returns an Answer. <Reject> and <Say> are taken on inbound calls
        only (<Reject> is for incoming calls; outbound calls keep the verbs they had)."""
        root, failed = self.parse_response(call, text, "TwiML")
        if root is None:
            return failed
        inbound = call.inbound is not None
        for verb in root:
            if verb.tag == "Connect":
                stream = verb.find("Stream")
                if stream is None:
                    return Answer("error", "<Connect> without <Stream> (not supported by the fake)")
                self.pick_up(call)
                return Answer("stream", session=self.twilio_session(call, stream))
            if verb.tag == "Hangup":
                self.pick_up(call)  # only <Reject> leaves a call unanswered
                return Answer("hangup", "TwiML <Hangup/>")
            if verb.tag == "Pause":
                if await self.pause(call, verb):
                    return Answer("stopped")
                continue
            if inbound and verb.tag == "Reject":
                reason = verb.get("reason", "rejected")
                return Answer("reject", f'TwiML <Reject reason="{reason}"/>', reason=reason)
            if inbound and verb.tag == "Say":
                if await self.say(call, verb):
                    return Answer("stopped")
                continue
            why = f"TwiML verb <{verb.tag}> not supported by the fake"
            call.note(why)
            return Answer("error", why)
        return Answer("hangup", "TwiML ran out of verbs")

    def twilio_session(self, call, stream):
        """The media session for a <Connect><Stream> element."""
        url = stream.get("url", "")
        u = urlsplit(url)
        if u.query:
            call.note("<Stream url> has a query string; Twilio does not support one (dropped)")
            url = urlunsplit((u.scheme, u.netloc, u.path, "", ""))
        if u.scheme != "wss":
            log(f"twilio {call.sid}: <Stream url> is {u.scheme}:// (Twilio takes wss only; "
                f"the fake accepts ws for local tests)")
        custom = {}
        for prm in stream.findall("Parameter"):
            custom[prm.get("name", "")] = prm.get("value", "")
        headers = {"X-Twilio-Signature": twilio_signature(self.cfg.twilio_token, url)}
        return TwilioSession(self, call, url, custom, headers)

    async def plivo_answer(self, call):
        p = self.plivo_params(call, "in-progress") + [
            ("ALegUUID", call.ids["call_uuid"]), ("ALegRequestUUID", call.ids["request_uuid"]),
            ("Event", "StartApp")]
        status, text = await self.http_out(call, "answer_url", call.params["answer_url"],
                                           call.params.get("answer_method", "POST"), p, "plivo")
        if status is None or not 200 <= status < 300:
            call.hangup_reason = f"answer_url failed ({status})"
            return None
        return self.outbound_target(call, await self.run_plivo_xml(call, text))

    async def run_plivo_xml(self, call, text):
        """Runs a Plivo answer XML's elements up to the first that hands the call to a stream or
        ends it; returns an Answer. A <Hangup> before any <Stream> is a rejection (its reason
        attribute, if any, is the reason). <Speak> is taken on inbound calls only."""
        if len(text.encode()) > 100 * 1024:
            return Answer("error", "answer XML over Plivo's 100 KB limit")
        root, failed = self.parse_response(call, text, "answer XML")
        if root is None:
            return failed
        inbound = call.inbound is not None
        for el in root:
            if el.tag == "Stream":
                self.pick_up(call)
                return Answer("stream", session=self.plivo_session(call, el))
            if el.tag == "Hangup":
                return Answer("reject", "answer XML <Hangup/>", reason=el.get("reason"))
            if el.tag in ("Wait", "Pause"):
                if await self.pause(call, el):
                    return Answer("stopped")
                continue
            if inbound and el.tag == "Speak":
                if await self.say(call, el):
                    return Answer("stopped")
                continue
            why = f"XML element <{el.tag}> not supported by the fake"
            call.note(why)
            return Answer("error", why)
        return Answer("hangup", "answer XML ran out of elements")

    def plivo_session(self, call, el):
        """The media session for a <Stream> element."""
        url = (el.text or "").strip()
        ct = el.get("contentType", "audio/x-l16;rate=8000")
        fmt = parse_content_type(ct)
        if fmt is None:
            call.note(f"unsupported contentType {ct!r}; using l16 8000")
            fmt = ("l16", 8000)
        bidi = el.get("bidirectional", "false").lower() == "true"
        keep = el.get("keepCallAlive", "false").lower() == "true"
        if bidi and el.get("audioTrack", "inbound") != "inbound":
            call.note("audioTrack must be inbound when bidirectional")
        extra = el.get("extraHeaders")
        if extra is not None:
            extra = ";".join(x.strip() for x in extra.split(",") if x.strip())
        session = PlivoSession(self, call, url, fmt[0], fmt[1], bidi, extra)
        session.end_after_open = not keep
        session.status_cb = (el.get("statusCallbackUrl"), el.get("statusCallbackMethod", "POST"))
        if not keep:
            call.note('<Stream> without keepCallAlive="true": Plivo moves on to the '
                      'next element and, with none, hangs up')
        return session

    # -- inbound calls (README "Inbound calls"; docs/inbound.md)

    def inbound_create(self, req):
        """POST /_fake/inbound: checks the request, registers the call (ringing) and returns
        (201, {"call_id", "provider"}, call); the caller starts once the answer is written."""
        def bad(field, msg):
            return HttpError(400, {"error": f"{field}: {msg}", "field": field})

        unknown = sorted(set(req) - INBOUND_FIELDS)
        if unknown:
            raise bad(unknown[0], f"unknown field (known: {', '.join(sorted(INBOUND_FIELDS))})")
        provider = req.get("provider")
        if provider not in ("twilio", "plivo", "exotel"):
            raise bad("provider", "must be twilio, plivo or exotel")
        if not isinstance(req.get("url"), str) or not is_http_url(req["url"]):
            raise bad("url", "must be an http:// or https:// URL")
        for k in ("from", "to"):
            if not isinstance(req.get(k), str) or not E164.match(req[k]):
                raise bad(k, "must be an E.164 number ('+' then up to 15 digits)")
        script = req.get("script")
        if script is not None and script_error(script):
            raise bad("script", script_error(script))
        sign = req.get("signature", "valid")
        if sign not in ("valid", "none", "bad"):
            raise bad("signature", "must be valid, none or bad")
        after = req.get("hangup_after_ms")
        if after is not None and (isinstance(after, bool) or not isinstance(after, (int, float))
                                  or after < 0):
            raise bad("hangup_after_ms", "must be a number of milliseconds, 0 or more")
        params = {"provider": provider, "url": req["url"], "from": req["from"], "to": req["to"],
                  "signature": sign, "hangup_after_ms": after}
        if script is not None:
            params["script"] = script
        sid = {"twilio": lambda: "CA" + hex32(), "plivo": lambda: str(uuid.uuid4()),
               "exotel": hex32}[provider]()
        call = Call(provider, sid, req["to"], req["from"], params, direction="inbound")
        if provider == "plivo":  # the CallUUID; the A leg's request uuid goes with it
            call.ids = {"call_uuid": sid, "request_uuid": str(uuid.uuid4())}
        call.status = "ringing"
        call.ringing_at = call.created
        self.register(call)
        log(f"{provider} inbound {sid} from {call.frm} to {call.to} -> {req['url']}")
        return 201, {"call_id": sid, "provider": provider}, call

    async def _inbound_lifecycle(self, call):
        """The carrier calls our number's voice webhook, runs what it answers and, if that is a
        stream, plays the caller on it. No status callbacks: none is registered for an inbound
        call, so the call ends with the stream (or the REST hang-up, or the caller)."""
        call.event("ringing")
        webhook = {"twilio": self.twilio_inbound, "plivo": self.plivo_inbound,
                   "exotel": self.exotel_inbound}[call.carrier]
        answer = await webhook(call)
        if answer.kind == "stream" and not call.stop_event.is_set():
            after_ms = call.params["hangup_after_ms"]
            after = None if after_ms is None else after_ms / 1000
            reason = await self.stream(call, answer.session, after)
            if not answer.session.stats["connected"]:
                call.set_outcome("error")
            return await self.finish_stream(call, reason)
        if call.preheard:  # a <Say> before the call ended is all the caller heard
            call.recording = (bytes(call.preheard), 8000)
        return await self.finish_unstreamed(call, answer)

    async def finish_unstreamed(self, call, answer):
        """Ends an inbound call that never streamed, setting its outcome from the answer."""
        answered = call.answered_at is not None
        if call.stop_event.is_set():  # a hang-up while the webhook or the document ran
            call.set_outcome("hung_up")
            kind = call.stop_kind
            status = "canceled" if call.carrier == "twilio" and not answered else "completed"
            if kind == "reset":
                return await self.finish(call, status, "reset", "fake reset")
            by = "caller" if kind == "callee" else "api"
            return await self.finish(call, status, by, "hung up before the media started")
        if answer.kind == "reject":
            # Twilio ends a rejected call busy (reason "busy") or no-answer; the fake does the
            # same for Plivo, whose docs do not say
            call.set_outcome("rejected", answer.reason)
            status = "completed" if answered else \
                "busy" if answer.reason == "busy" else "no-answer"
            return await self.finish(call, status, "server", answer.why)
        if answer.kind == "hangup":
            call.set_outcome("hung_up")
            return await self.finish(call, "completed", "server", answer.why)
        call.set_outcome(answer.kind)  # refused | error
        by = "server" if answer.kind == "refused" else "carrier"
        return await self.finish(call, "completed" if answered else "failed", by, answer.why)

    async def inbound_webhook(self, call, method, params, signer, headers=None,
                              ok=range(200, 300)):
        """Sends the call's voice webhook to the request's url, signed as its "signature" says,
        and keeps it as inbound.webhook. Returns (None, the answer's text) if the status is in
        ok, else (an Answer, text): "stopped" if a hang-up came meanwhile (the carrier then
        runs no document), else "error" or "refused"."""
        entry, sent, text = await self.http_request(
            call, "webhook", call.params["url"], method, params, signer,
            call.params["signature"], headers)
        status = entry["http_status"]
        with call.lock:
            call.inbound["webhook"] = {
                "url": entry["url"], "method": entry["method"], "params": entry["params"],
                "headers": sent, "http_status": status, "response": text[:4096],
                "ms": entry["ms"], "error": entry["error"]}
        if call.stop_event.is_set():
            return Answer("stopped"), text
        if status is None:
            return Answer("error", f"voice webhook failed: {entry['error']}"), text
        if status not in ok:
            return Answer("refused", f"voice webhook answered HTTP {status}"), text
        return None, text

    async def twilio_inbound(self, call):
        """Twilio POSTs the number's "A call comes in" URL with the call's parameters
        (CallStatus=ringing, Direction=inbound) and runs the TwiML it answers."""
        failed, text = await self.inbound_webhook(call, "POST",
                                                  self.twilio_params(call, "ringing"), "twilio")
        return failed or await self.run_twiml(call, text)

    async def plivo_inbound(self, call):
        """Plivo POSTs the application's answer URL (numbers without '+') and runs the XML it
        answers."""
        frm, to = call.frm.lstrip("+"), call.to.lstrip("+")
        uuid_ = call.ids["call_uuid"]
        p = [("CallUUID", uuid_), ("From", frm), ("To", to), ("CallStatus", "ringing"),
             ("Direction", "inbound"), ("CallerName", frm), ("ALegUUID", uuid_),
             ("ALegRequestUUID", call.ids["request_uuid"]), ("Event", "StartApp")]
        failed, text = await self.inbound_webhook(call, "POST", p, "plivo")
        return failed or await self.run_plivo_xml(call, text)

    async def exotel_inbound(self, call):
        """The number's flow reaches a Voicebot applet whose URL is our HTTPS endpoint: Exotel
        GETs it with the call's details (Indian numbers in national form) and connects the
        WebSocket named by the JSON answer's "url". Exotel signs nothing; a URL's user:password
        is sent as Basic auth."""
        url = call.params["url"]
        created = ymdhms(call.created)
        p = [("CallSid", call.sid), ("CallFrom", exotel_national(call.frm)),
             ("CallTo", exotel_national(call.to)), ("Direction", "incoming"),
             ("Created", created), ("CurrentTime", ymdhms(time.time())),
             ("StartTime", created), ("CallType", "call-attempt"),
             ("flow_id", stable_digits(urlsplit(url).path, 6)),
             ("tenant_id", stable_digits(self.cfg.exotel_sid, 5)), ("CustomField", "")]
        failed, text = await self.inbound_webhook(call, "GET", p, None, self.exotel_basic(call),
                                                  ok=(200,))
        if failed:
            return failed
        try:
            ws_url = json.loads(text).get("url")
        except (ValueError, AttributeError):
            ws_url = None
        if not isinstance(ws_url, str) or urlsplit(ws_url).scheme not in ("ws", "wss"):
            return Answer("error", 'voice webhook answer is not JSON with a ws:// or wss:// "url"')
        self.pick_up(call)
        return Answer("stream", session=self.exotel_session(call, ws_url))

    def exotel_basic(self, call):
        """The Authorization header of an Exotel webhook: the URL's user:password as Basic, if
        it has them. "signature": "none" leaves it out; "bad" sends a wrong password."""
        u = urlsplit(call.params["url"])
        sign = call.params["signature"]
        if sign == "none" or (sign == "valid" and u.username is None):
            return {}
        cred = f"{unquote(u.username or 'exotel')}:{unquote(u.password or '')}"
        if sign == "bad":
            cred += "-forged"
        return {"Authorization": "Basic " + base64.b64encode(cred.encode()).decode()}

    def exotel_params(self, call, status, event):
        p = [("CallSid", call.sid), ("Status", status), ("RecordingUrl", ""),
             ("DateUpdated", ymdhms(time.time()))]
        if call.params["status_events"]:
            p += [("EventType", event), ("DateCreated", ymdhms(call.created)),
                  ("To", call.frm), ("From", call.to), ("PhoneNumberSid", call.frm),
                  ("Direction", "outbound-api"),
                  ("StartTime", ymdhms(call.created)),
                  ("EndTime", ymdhms(call.ended_at) if call.ended_at else ""),
                  ("ConversationDuration", str(call.duration()))]
        return p

    async def finish(self, call, status, by, reason):
        try:
            await self._finish(call, status, by, reason)
        finally:
            call.settled.set()

    async def _finish(self, call, status, by, reason):
        with call.lock:
            if call.ended.is_set():
                return
            call.status = status
            call.ended_at = time.time()
            call.updated = call.ended_at
            call.hangup_by = by
            if reason and not (call.hangup_reason and by == "carrier"):
                call.hangup_reason = reason
            call.pending_status = None
        call.event(status)
        log(f"{call.carrier} {call.sid} {status} (by {by}: {call.hangup_reason}; "
            f"{call.duration()} s)")
        if call.recording is not None and self.cfg.record_dir:
            pcm, rate = call.recording
            name = call.ids.get("call_uuid", call.sid) if call.carrier == "plivo" else call.sid
            path = os.path.join(self.cfg.record_dir, f"{name}.wav")
            try:
                with open(path + ".tmp", "wb") as f:
                    f.write(wav_bytes(pcm, rate))
                os.replace(path + ".tmp", path)
                call.recording_path = path
            except OSError as e:
                log(f"{call.carrier} {call.sid}: cannot write {path}: {e}")
        call.ended.set()
        if call.stop_kind == "reset" or call.direction == "inbound":
            return  # no status callback is registered for an inbound call
        if call.carrier == "twilio":
            await self.twilio_status(call, "completed", status)
        elif call.carrier == "plivo":
            if call.params.get("hangup_url"):
                cause = {"completed": "NORMAL_CLEARING", "busy": "USER_BUSY",
                         "no-answer": "NO_ANSWER", "timeout": "NO_ANSWER",
                         "failed": "NETWORK_OUT_OF_ORDER"}.get(status, "NORMAL_CLEARING")
                if by == "api" and not call.answered_at:
                    cause = "ORIGINATOR_CANCEL"
                source = {"callee": "Callee", "api": "API Request", "server": "Answer XML",
                          "carrier": "Plivo"}.get(by, "Unknown")
                d = str(call.duration())
                p = self.plivo_params(call, status) + [
                    ("Event", "Hangup"), ("HangupCause", cause), ("HangupSource", source),
                    ("Duration", d), ("BillDuration", d),
                    ("StartTime", ymdhms(call.created)),
                    ("AnswerTime", ymdhms(call.answered_at) or ""),
                    ("EndTime", ymdhms(call.ended_at))]
                await self.http_out(call, "hangup_url", call.params["hangup_url"],
                                    call.params.get("hangup_method", "POST"), p, "plivo")
        else:
            if call.params.get("status_callback"):
                await self.http_out(call, f"status:{status}", call.params["status_callback"],
                                    "POST", self.exotel_params(call, status, "terminal"), None)

    # ------------------------------------------------------------------------------------------
    # REST: Twilio

    def twilio_error(self, status, code, message):
        return HttpError(status, {"code": code, "message": message,
                                  "more_info": f"https://www.twilio.com/docs/errors/{code}",
                                  "status": status})

    def twilio_json(self, call):
        acct = self.cfg.twilio_sid
        base = f"/2010-04-01/Accounts/{acct}/Calls/{call.sid}"
        status = call.pending_status or call.status
        subs = ["notifications", "recordings", "payments", "events", "siprec", "streams",
                "transcriptions", "user_defined_message_subscriptions", "user_defined_messages"]
        sub = {s: f"{base}/{''.join(w.capitalize() for w in s.split('_'))}.json" for s in subs}
        return {
            "account_sid": acct, "annotation": None, "answered_by": call.answered_by,
            "api_version": "2010-04-01", "caller_name": None,
            "date_created": rfc2822(call.created), "date_updated": rfc2822(call.updated),
            "direction": "inbound" if call.direction == "inbound" else "outbound-api",
            "duration": str(call.duration()) if call.ended_at else None,
            "end_time": rfc2822(call.ended_at), "forwarded_from": None, "from": call.frm,
            "from_formatted": call.frm, "group_sid": None, "parent_call_sid": None,
            "phone_number_sid": None, "price": None, "price_unit": "USD", "queue_time": "0",
            "sid": call.sid, "start_time": rfc2822(call.answered_at or call.ringing_at),
            "status": status, "subresource_uris": sub, "to": call.to, "to_formatted": call.to,
            "trunk_sid": None, "uri": base + ".json",
        }

    def twilio_create(self, acct, form, query):
        first = {}
        multi = {}
        for k, v in form:
            first.setdefault(k, v)
            multi.setdefault(k, []).append(v)
        to, frm = first.get("To"), first.get("From")
        url, twiml = first.get("Url"), first.get("Twiml")
        urls = {"url": url, "method": first.get("Method", "POST"),
                "status_callback": first.get("StatusCallback"),
                "status_callback_method": first.get("StatusCallbackMethod", "POST"),
                "status_callback_events": multi.get("StatusCallbackEvent", [])}

        def fail(err):
            self.record_dial("twilio", to, frm, urls, err.status, None, dict(first))
            log(f"twilio create to {to}: {err.status} {err.body.get('code')}")
            return err

        if not to:
            raise fail(self.twilio_error(400, 21201, "No 'To' number is specified"))
        if not frm:
            raise fail(self.twilio_error(400, 21213, "No 'From' number is specified"))
        if not url and not twiml:
            if first.get("ApplicationSid"):
                raise fail(self.twilio_error(400, 21205, "ApplicationSid is not supported by "
                                                         "the carrier fake; send Url"))
            raise fail(self.twilio_error(400, 21205, "Url parameter is required."))
        if url and not is_http_url(url):
            raise fail(self.twilio_error(400, 21205, f"Url is not a valid URL: {url}"))
        if not E164.match(to) or behaviour_of(to) == "invalid":
            raise fail(self.twilio_error(400, 21211,
                                         f"The 'To' number {to} is not a valid phone number."))
        if not E164.match(frm):
            raise fail(self.twilio_error(400, 21212, f"The 'From' number {frm} is not a valid "
                                                     "phone number, shortcode, or alphanumeric "
                                                     "sender ID."))
        method = first.get("Method", "POST").upper()
        cbm = first.get("StatusCallbackMethod", "POST").upper()
        if method not in ("GET", "POST") or cbm not in ("GET", "POST"):
            raise fail(self.twilio_error(400, 21207 if method not in ("GET", "POST") else 21609,
                                         "Method must be GET or POST"))
        cb = first.get("StatusCallback")
        if cb and not is_http_url(cb):
            raise fail(self.twilio_error(400, 21609, f"Invalid StatusCallback url {cb}"))
        events = set()
        for v in multi.get("StatusCallbackEvent", []):
            events.update(v.split())
        bad = events - {"initiated", "ringing", "answered", "completed"}
        if bad:
            raise fail(self.twilio_error(400, 21626, f"Invalid StatusCallbackEvent {sorted(bad)}"))
        try:
            timeout = int(first.get("Timeout", "60"))
            time_limit = int(first.get("TimeLimit", "14400"))
        except ValueError:
            raise fail(self.twilio_error(400, 21216, "Timeout and TimeLimit must be integers"))
        timeout = min(max(timeout, 1), 600)
        md = first.get("MachineDetection")
        if md is not None and md not in ("Enable", "DetectMessageEnd"):
            raise fail(self.twilio_error(400, 21219, f"Invalid MachineDetection {md}"))
        sid = "CA" + hex32()
        params = {
            "url": url, "twiml": twiml, "method": method, "status_callback": cb,
            "status_callback_method": cbm, "status_events": events or {"completed"},
            "ring_timeout": timeout, "time_limit": time_limit, "machine_detection": md,
            "async_amd": first.get("AsyncAmd", "false").lower() == "true",
            "async_amd_callback": first.get("AsyncAmdStatusCallback"),
            "async_amd_callback_method": first.get("AsyncAmdStatusCallbackMethod", "POST"),
        }
        call = Call("twilio", sid, to, frm, params)
        self.register(call)
        self.record_dial("twilio", to, frm, urls, 201, sid, dict(first))
        log(f"twilio create {sid} to {to} ({call.behaviour})")
        return 201, self.twilio_json(call), call

    def twilio_call(self, acct, csid):
        call = self.find(csid)
        if call is None or call.carrier != "twilio" or call.sid != csid:
            raise self.twilio_error(404, 20404, f"The requested resource /2010-04-01/Accounts/"
                                                f"{acct}/Calls/{csid}.json was not found")
        return call

    def twilio_update(self, acct, csid, form):
        call = self.twilio_call(acct, csid)
        first = dict(reversed(form))
        st = first.get("Status")
        if st is None:
            if first.get("Url") or first.get("Twiml"):
                raise self.twilio_error(400, 20001, "Call redirect (Url/Twiml) is not supported "
                                                    "by the carrier fake")
            raise self.twilio_error(400, 20001, "Status is required")
        if st not in ("completed", "canceled"):
            raise self.twilio_error(400, 21218, f"Invalid Status {st}")
        with call.lock:
            if call.ended.is_set() or call.ending:
                gone = True
            else:
                gone = False
                answered = call.answered_at is not None
                if st == "canceled" and answered:
                    pass  # Twilio: canceled does not affect an in-progress call
                else:
                    call.ending = True
                    call.pending_status = "completed" if answered else "canceled"
        if gone:
            raise self.twilio_error(404, 20404, f"The requested resource /2010-04-01/Accounts/"
                                                f"{acct}/Calls/{csid}.json was not found")
        if call.ending:
            log(f"twilio {csid} update Status={st}")
            call.request_stop("api")
        return 200, self.twilio_json(call)

    # ------------------------------------------------------------------------------------------
    # REST: Plivo

    def plivo_error(self, status, message):
        return HttpError(status, {"api_id": str(uuid.uuid4()), "error": message})

    def plivo_create(self, auth_id, body):
        try:
            req = json.loads(body or b"{}")
            if not isinstance(req, dict):
                raise ValueError("not an object")
        except ValueError:
            self.record_dial("plivo", None, None, {}, 400, None, None)
            raise self.plivo_error(400, "request body must be a JSON object")
        to = None if req.get("to") is None else str(req.get("to"))
        frm = None if req.get("from") is None else str(req.get("from"))
        urls = {k: req.get(k) for k in ("answer_url", "ring_url", "hangup_url",
                                        "machine_detection_url", "fallback_url")}

        def fail(msg):
            self.record_dial("plivo", to, frm, urls, 400, None, req)
            log(f"plivo create to {to}: 400 {msg}")
            return self.plivo_error(400, msg)

        for k in ("from", "to", "answer_url"):
            if not req.get(k):
                raise fail(f"{k} parameter is required")
        if "<" in to:
            raise fail("bulk calls ('<' in to) are not supported by the carrier fake")
        if not (LOOSE_NUMBER.match(to) or to.startswith("sip:")) or behaviour_of(to) == "invalid":
            raise fail(f"invalid 'to' number {to}")
        if not LOOSE_NUMBER.match(frm):
            raise fail(f"invalid 'from' number {frm}")
        for k in ("answer_url", "ring_url", "hangup_url", "machine_detection_url"):
            if req.get(k) and not is_http_url(req[k]):
                raise fail(f"{k} is not a valid URL")
        for k in ("answer_method", "ring_method", "hangup_method", "machine_detection_method"):
            if req.get(k) and str(req[k]).upper() not in ("GET", "POST"):
                raise fail(f"{k} must be GET or POST")
        try:
            ring_timeout = int(req.get("ring_timeout", 60))
            time_limit = int(req.get("time_limit", 14400))
        except (TypeError, ValueError):
            raise fail("ring_timeout and time_limit must be integers")
        md = req.get("machine_detection")
        request_uuid = str(uuid.uuid4())
        params = {
            "answer_url": req["answer_url"],
            "answer_method": str(req.get("answer_method", "POST")).upper(),
            "ring_url": req.get("ring_url"),
            "ring_method": str(req.get("ring_method", "POST")).upper(),
            "hangup_url": req.get("hangup_url"),
            "hangup_method": str(req.get("hangup_method", "POST")).upper(),
            "ring_timeout": max(1, ring_timeout), "time_limit": time_limit,
            "machine_detection": str(md).lower() if md not in (None, False, "") else None,
            "machine_detection_url": req.get("machine_detection_url"),
            "machine_detection_method": str(req.get("machine_detection_method",
                                                    "POST")).upper(),
        }
        call = Call("plivo", request_uuid, to, frm, params)
        call.ids = {"request_uuid": request_uuid, "call_uuid": str(uuid.uuid4())}
        self.register(call)
        self.record_dial("plivo", to, frm, urls, 201, request_uuid, req)
        log(f"plivo create {request_uuid} (call {call.ids['call_uuid']}) to {to} "
            f"({call.behaviour})")
        return 201, {"api_id": str(uuid.uuid4()), "message": "call fired",
                     "request_uuid": request_uuid}, call

    def plivo_call(self, cid, key):
        call = self.find(cid)
        if call is None or call.carrier != "plivo" or call.ids.get(key) != cid:
            raise self.plivo_error(404, "not found")
        return call

    def plivo_hangup(self, cid, key):
        call = self.plivo_call(cid, key)
        with call.lock:
            gone = call.ended.is_set() or call.ending
            if key == "request_uuid" and call.answered_at:
                gone = True  # Request cancel is for queued/ringing calls only
            if not gone:
                call.ending = True
                call.pending_status = "completed"
        if gone:
            raise self.plivo_error(404, "not found")
        log(f"plivo {call.sid} hangup via DELETE /{'Call' if key == 'call_uuid' else 'Request'}/")
        call.request_stop("api")
        return 204, None

    def plivo_details(self, cid):
        call = self.plivo_call(cid, "call_uuid")
        st = call.pending_status or call.status
        return 200, {
            "api_id": str(uuid.uuid4()), "call_uuid": call.ids["call_uuid"],
            "request_uuid": call.ids["request_uuid"], "call_status": st,
            "call_direction": call.direction, "from_number": call.frm, "to_number": call.to,
            "initiation_time": ymdhms(call.created), "answer_time": ymdhms(call.answered_at),
            "end_time": ymdhms(call.ended_at),
            "call_duration": call.duration() if call.ended_at else None,
            "bill_duration": call.duration() if call.ended_at else None,
            "hangup_cause_name": None, "hangup_source": None,
            "resource_uri": f"/v1/Account/{self.cfg.plivo_id}/Call/{call.ids['call_uuid']}/",
        }

    # ------------------------------------------------------------------------------------------
    # REST: Exotel

    def exotel_error(self, status, message):
        return HttpError(status, {"RestException": {"Status": status, "Message": message}})

    def exotel_create(self, form, classic):
        first = dict(reversed(form))
        if classic:
            frm, callerid, url = first.get("From"), first.get("CallerId"), first.get("Url")
            cb = first.get("StatusCallback")
            events = [v for k, v in form if k in ("StatusCallbackEvents[]", "StatusCallbackEvents")]
            stream = url if url and urlsplit(url).scheme in ("ws", "wss") else None
            time_limit = first.get("TimeLimit")
            ring_timeout = first.get("TimeOut")
        else:
            frm, callerid, url = first.get("from"), first.get("callerid"), first.get("streamurl")
            cb = first.get("statuscallback")
            events = [v for k, v in form if k in ("statuscallbackevents[]", "statuscallbackevents")]
            stream = url
            time_limit = first.get("timelimit")
            ring_timeout = first.get("timeout")
        urls = {"url" if classic else "streamurl": url, "statuscallback": cb,
                "statuscallbackevents": events}

        def fail(msg):
            self.record_dial("exotel", frm, callerid, urls, 400, None, first)
            log(f"exotel create to {frm}: 400 {msg}")
            return self.exotel_error(400, msg)

        names = ("From", "CallerId", "Url") if classic else ("from", "callerid", "streamurl")
        for name, val in zip(names, (frm, callerid, url)):
            if not val:
                raise fail(f"Missing parameter {name}")
        if not LOOSE_NUMBER.match(frm) or behaviour_of(frm) == "invalid":
            raise fail(f"Invalid phone number {frm}")
        if not classic and urlsplit(url).scheme not in ("ws", "wss"):
            raise fail("streamurl must be a ws:// or wss:// URL")
        if cb and not is_http_url(cb):
            raise fail("StatusCallback is not a valid URL")
        bad = set(events) - {"terminal", "answered"}
        if bad:
            raise fail(f"Invalid StatusCallbackEvents {sorted(bad)}")
        try:
            time_limit = int(time_limit) if time_limit else None
            ring_timeout = int(ring_timeout) if ring_timeout else 60
        except ValueError:
            raise fail("TimeLimit/TimeOut must be integers")
        sid = hex32()
        params = {"stream_url": stream, "status_callback": cb, "status_events": set(events),
                  "time_limit": time_limit, "ring_timeout": max(1, ring_timeout),
                  "classic": classic, "url": url}
        # Exotel dials From (the customer) first; CallerId is the ExoPhone.
        call = Call("exotel", sid, frm, callerid, params)
        call.status = "in-progress"
        self.register(call)
        self.record_dial("exotel", frm, callerid, urls, 200, sid, first)
        log(f"exotel create {sid} to {frm} ({call.behaviour})")
        return 200, self.exotel_json(call, classic), call

    def exotel_status(self, call):
        st = call.status
        return "in-progress" if st in ("queued", "ringing") else st

    def exotel_json(self, call, classic):
        c = {"Sid": call.sid, "ParentCallSid": None, "DateCreated": ymdhms(call.created),
             "DateUpdated": ymdhms(call.updated), "AccountSid": self.cfg.exotel_sid,
             "To": call.our_number, "From": call.customer, "PhoneNumberSid": call.our_number,
             "Status": self.exotel_status(call), "StartTime": ymdhms(call.created),
             "EndTime": ymdhms(call.ended_at), "Duration": call.duration() if call.ended_at
             else None, "Price": None,
             "Direction": "inbound" if call.direction == "inbound" else "outbound-api",
             "AnsweredBy": None,
             "ForwardedFrom": None, "CallerName": None,
             "Uri": f"/v1/Accounts/{self.cfg.exotel_sid}/Calls/{call.sid}.json",
             "RecordingUrl": None}
        if classic:
            return {"Call": c}
        return {"call": {re.sub(r"(?<!^)(?=[A-Z])", "_", k).lower(): v for k, v in c.items()}}

    def exotel_get(self, csid, classic):
        call = self.find(csid)
        if call is None or call.carrier != "exotel":
            raise self.exotel_error(404, f"Call {csid} not found")
        return 200, self.exotel_json(call, classic)


def exotel_xml(obj):
    call = obj["Call"]
    parts = "".join(f"<{k}>{'' if v is None else xml_escape(str(v))}</{k}>" for k, v in call.items())
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<TwilioResponse><Call>{parts}</Call>' \
           f'</TwilioResponse>\n'


def xml_escape(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# ------------------------------------------------------------------------------------------------
# HTTP

ROUTES = [
    ("POST", r"/2010-04-01/Accounts/([^/]+)/Calls\.json", "twilio", "t_create"),
    ("POST", r"/2010-04-01/Accounts/([^/]+)/Calls/([^/]+)\.json", "twilio", "t_update"),
    ("GET", r"/2010-04-01/Accounts/([^/]+)/Calls/([^/]+)\.json", "twilio", "t_fetch"),
    ("POST", r"/v1/Account/([^/]+)/Call/", "plivo", "p_create"),
    ("DELETE", r"/v1/Account/([^/]+)/Call/([^/]+)/", "plivo", "p_hangup"),
    ("GET", r"/v1/Account/([^/]+)/Call/([^/]+)/", "plivo", "p_get"),
    ("DELETE", r"/v1/Account/([^/]+)/Request/([^/]+)/", "plivo", "p_cancel"),
    ("POST", r"/v1/accounts/([^/]+)/calls/connect", "exotel", "e_create"),
    ("POST", r"/v1/Accounts/([^/]+)/Calls/connect(\.json)?", "exotel", "e_create_classic"),
    ("GET", r"/v1/Accounts/([^/]+)/Calls/([^/.]+)(\.json)?", "exotel", "e_get_classic"),
    ("GET", r"/v1/accounts/([^/]+)/calls/([^/.]+)", "exotel", "e_get"),
    ("GET", r"/_fake/health", None, "f_health"),
    ("GET", r"/_fake/dials", None, "f_dials"),
    ("GET", r"/_fake/calls", None, "f_calls"),
    ("GET", r"/_fake/calls/([^/]+)", None, "f_call"),
    ("POST", r"/_fake/reset", None, "f_reset"),
    ("POST", r"/_fake/calls/([^/]+)/dtmf", None, "f_dtmf"),
    ("POST", r"/_fake/calls/([^/]+)/hangup", None, "f_hangup"),
    ("POST", r"/_fake/calls/([^/]+)/say", None, "f_say"),
    ("POST", r"/_fake/voices", None, "f_voices"),
    ("POST", r"/_fake/inbound", None, "f_inbound"),
]
ROUTES = [(m, re.compile(p + "$"), c, h) for m, p, c, h in ROUTES]


class _Headers(dict):
    """Request headers by lower-case name (the first of repeated ones)."""

    def get(self, name, default=None):
        return dict.get(self, name.lower(), default)


def _status_line(status):
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    return f"HTTP/1.1 {status} {phrase}"


class Handler:
    """One request of the carrier REST or control API, answered as http.server's
    BaseHTTPRequestHandler would (status line, Server and Date headers, keep-alive). The request
    has been read whole by serve_connection; the answer is collected in `out` and written by it."""
    server_version = "parley-carrier-fake/1.0"
    sys_version = "Python/" + sys.version.split()[0]
    fake = None  # set by main

    def __init__(self, command, path, headers, body):
        self.command = command
        self.path = path
        self.headers = headers
        self.body = body
        self.out = bytearray()

    def _body(self):
        return self.body

    def _head(self, status, headers):
        lines = [_status_line(status), f"Server: {self.server_version} {self.sys_version}",
                 f"Date: {formatdate(usegmt=True)}"]
        lines += [f"{k}: {v}" for k, v in headers]
        self.out += ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "strict")

    def _send(self, status, obj, ctype="application/json", headers=None):
        if obj is None:
            data = b""
        elif isinstance(obj, (bytes, str)):
            data = obj.encode() if isinstance(obj, str) else obj
        else:
            data = (json.dumps(obj, indent=None) + "\n").encode()
        h = [("Content-Type", ctype)] if data or status != 204 else []
        h.append(("Content-Length", str(len(data))))
        h += list((headers or {}).items())
        self._head(status, h)
        if data and self.command != "HEAD":
            self.out += data

    def send_error(self, status, message):
        """An error page as http.server sends it; the connection then closes."""
        body = (DEFAULT_ERROR_MESSAGE % {"code": status, "message": html.escape(message),
                                         "explain": html.escape(HTTPStatus(status).description)}
                ).encode("UTF-8", "replace")
        self._head(status, [("Connection", "close"),
                            ("Content-Type", DEFAULT_ERROR_CONTENT_TYPE),
                            ("Content-Length", str(len(body)))])
        if self.command != "HEAD":
            self.out += body

    def _auth_ok(self, carrier, acct):
        cfg = self.fake.cfg
        user, pw = {"twilio": (cfg.twilio_sid, cfg.twilio_token),
                    "plivo": (cfg.plivo_id, cfg.plivo_token),
                    "exotel": (cfg.exotel_key, cfg.exotel_token)}[carrier]
        path_acct = {"twilio": cfg.twilio_sid, "plivo": cfg.plivo_id,
                     "exotel": cfg.exotel_sid}[carrier]
        h = self.headers.get("Authorization", "")
        if not h.lower().startswith("basic "):
            return False
        try:
            got = base64.b64decode(h[6:].strip(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return False
        return hmac.compare_digest(got, f"{user}:{pw}") and acct == path_acct

    def _unauthorized(self, carrier):
        if carrier == "twilio":
            body = {"code": 20003, "message": "Authenticate",
                    "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401}
        elif carrier == "plivo":
            body = {"api_id": str(uuid.uuid4()), "error": "authentication failed"}
        else:
            body = {"RestException": {"Status": 401, "Message": "Authentication failed"}}
        self._send(401, body, headers={"WWW-Authenticate": f'Basic realm="{carrier} (fake)"'})

    def _dispatch(self):
        fake = self.fake
        u = urlsplit(self.path)
        path = u.path
        body = self._body()
        allowed = set()
        for method, rx, carrier, name in ROUTES:
            m = rx.match(path)
            if not m:
                continue
            if method != self.command:
                allowed.add(method)
                continue
            groups = m.groups()
            if carrier and not self._auth_ok(carrier, unquote(groups[0])):
                if name in ("t_create", "p_create", "e_create", "e_create_classic"):
                    fake.record_dial(carrier, None, None, {}, 401, None, None)
                log(f"{carrier} {self.command} {path}: 401 (bad or missing Basic auth)")
                return self._unauthorized(carrier)
            try:
                return getattr(self, name)(groups, body, u)
            except HttpError as e:
                return self._send(e.status, e.body)
        if allowed:
            return self._send(405, {"error": f"method {self.command} not allowed on {path}"},
                              headers={"Allow": ", ".join(sorted(allowed))})
        log(f"{self.command} {path}: 404 (no such route in the carrier fake)")
        self._send(404, {"error": f"no route {self.command} {path} in the carrier fake"})

    METHODS = ("GET", "POST", "DELETE")

    def _form(self, body):
        return parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)

    def _created(self, status, obj, call, ctype="application/json"):
        self._send(status, obj, ctype)
        self.fake.start(call)  # after the response is on the wire

    # -- Twilio
    def t_create(self, g, body, u):
        status, obj, call = self.fake.twilio_create(unquote(g[0]), self._form(body), u.query)
        self._created(status, obj, call)

    def t_update(self, g, body, u):
        self._send(*self.fake.twilio_update(g[0], unquote(g[1]), self._form(body)))

    def t_fetch(self, g, body, u):
        self._send(200, self.fake.twilio_json(self.fake.twilio_call(g[0], unquote(g[1]))))

    # -- Plivo
    def p_create(self, g, body, u):
        status, obj, call = self.fake.plivo_create(g[0], body)
        self._created(status, obj, call)

    def p_hangup(self, g, body, u):
        self._send(*self.fake.plivo_hangup(unquote(g[1]), "call_uuid"))

    def p_cancel(self, g, body, u):
        self._send(*self.fake.plivo_hangup(unquote(g[1]), "request_uuid"))

    def p_get(self, g, body, u):
        self._send(*self.fake.plivo_details(unquote(g[1])))

    # -- Exotel
    def e_create(self, g, body, u):
        status, obj, call = self.fake.exotel_create(self._form(body), classic=False)
        self._created(status, obj, call)

    def e_create_classic(self, g, body, u):
        as_json = bool(g[1])
        status, obj, call = self.fake.exotel_create(self._form(body), classic=True)
        if as_json:
            self._created(status, obj, call)
        else:
            self._created(status, exotel_xml(obj), call, "application/xml")

    def e_get_classic(self, g, body, u):
        status, obj = self.fake.exotel_get(unquote(g[1]), True)
        if g[2]:
            self._send(status, obj)
        else:
            self._send(status, exotel_xml(obj), "application/xml")

    def e_get(self, g, body, u):
        self._send(*self.fake.exotel_get(unquote(g[1]), False))

    # -- control API
    def f_health(self, g, body, u):
        f = self.fake
        with f.lock:
            live = sum(1 for c in f.call_list if c.live())
            inbound = sum(1 for c in f.call_list if c.direction == "inbound")
            n, d = len(f.call_list), len(f.dials)
        self._send(200, {"ok": True, "calls": n, "live_calls": live, "inbound_calls": inbound,
                         "dials": d, "uptime_s": round(time.time() - f.started, 1)})

    def f_dials(self, g, body, u):
        q = dict(parse_qsl(u.query))
        with self.fake.lock:
            dials = list(self.fake.dials)
        for k in ("carrier", "to", "status"):
            if k in q:
                dials = [d for d in dials if str(d.get(k)) == q[k]]
        self._send(200, dials)

    def f_calls(self, g, body, u):
        with self.fake.lock:
            calls = list(self.fake.call_list)
        self._send(200, [self._summary(c) for c in calls])

    @staticmethod
    def _summary(c):
        s = {"carrier": c.carrier, "sid": c.sid, "ids": c.ids, "to": c.to, "status": c.status,
             "live": c.live()}
        if c.direction == "inbound":  # outbound summaries keep their shape
            s.update({"direction": "inbound", "from": c.frm,
                      "outcome": c.inbound["outcome"]})
        return s

    def _call(self, g):
        call = self.fake.find(unquote(g[0]))
        if call is None:
            raise HttpError(404, {"error": f"no call {g[0]}"})
        return call

    def f_call(self, g, body, u):
        self._send(200, self._call(g).record())

    def f_reset(self, g, body, u):
        self._send(200, {"ok": True, "dropped_calls": self.fake.reset()})

    def _json(self, body):
        try:
            obj = json.loads(body or b"{}")
        except ValueError:
            raise HttpError(400, {"error": "body must be JSON"})
        if not isinstance(obj, dict):
            raise HttpError(400, {"error": "body must be a JSON object"})
        return obj

    def f_dtmf(self, g, body, u):
        call = self._call(g)
        digits = str(self._json(body).get("digit", ""))
        if not re.fullmatch(r"[0-9*#A-D]+", digits):
            raise HttpError(400, {"error": "digit must be 0-9, *, #, A-D"})
        if not call.live():
            raise HttpError(409, {"error": "call has ended"})
        for d in digits:
            call.dtmf.append(d)
        self._send(200, {"ok": True, "queued": digits})

    def f_hangup(self, g, body, u):
        call = self._call(g)
        if not call.live():
            raise HttpError(409, {"error": "call has ended"})
        log(f"{call.carrier} {call.sid}: callee hangs up (control API)")
        call.request_stop("callee")
        self._send(200, {"ok": True})

    def f_say(self, g, body, u):
        call = self._call(g)
        req = self._json(body)
        items = req.get("script") or [req]
        if script_error(items):
            raise HttpError(400, {"error": script_error(items)})
        if not call.live():
            raise HttpError(409, {"error": "call has ended"})
        for it in items:
            call.say.append(it)
        self._send(200, {"ok": True, "queued": len(items)})

    def f_voices(self, g, body, u):
        req = self._json(body)
        script = req.get("script")
        if not isinstance(script, list):
            raise HttpError(400, {"error": "script must be a list"})
        with self.fake.lock:
            self.fake.voices[req.get("number") or "*"] = script
        self._send(200, {"ok": True})

    def f_inbound(self, g, body, u):
        status, obj, call = self.fake.inbound_create(self._json(body))
        self._created(status, obj, call)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description="Carrier fake (Twilio, Plivo, Exotel).")
    ap.add_argument("--port", type=int, default=8099)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--record-dir", default=None,
                    help="write what the callee heard to DIR/{call id}.wav at hang-up")
    for k, v in DEFAULTS.items():
        ap.add_argument("--" + k.replace("_", "-"), default=v)
    ap.add_argument("--plivo-main-token", default=None,
                    help="token for X-Plivo-Signature-Ma-V3 (default: --plivo-token)")
    ap.add_argument("--ring-ms", type=int, default=300, help="create -> ringing")
    ap.add_argument("--answer-ms", type=int, default=300, help="ringing -> answer")
    ap.add_argument("--callee-hangup-ms", type=int, default=2000,
                    help="answer -> callee hang-up for suffix 0004")
    ap.add_argument("--max-call-seconds", type=float, default=20.0)
    ap.add_argument("--amd-ms", type=int, default=300, help="answering-machine detection time")
    ap.add_argument("--callback-timeout", type=float, default=5.0)
    ap.add_argument("--plivo-noanswer-status", default="no-answer",
                    choices=["no-answer", "timeout"],
                    help="Plivo CallStatus sent when the ring timeout expires")
    ap.add_argument("--voice-wav", default=None, help="default callee voice (WAV, PCM16 mono)")
    ap.add_argument("--voice-cmd", default=None,
                    help="TTS command writing a WAV to stdout, {text} replaced "
                         "(e.g. 'espeak-ng --stdout {text}')")
    cfg = ap.parse_args(argv)
    if cfg.plivo_main_token is None:
        cfg.plivo_main_token = cfg.plivo_token
    return cfg


async def _request_head(reader):
    """(request line, [header lines]) of the next request; None at the end of the connection.
    Raises ValueError(status, message) for a request http.server refuses."""
    try:
        line = await reader.readuntil(b"\r\n")
    except asyncio.IncompleteReadError as e:
        if not e.partial:
            return None
        line = e.partial
    except asyncio.LimitOverrunError:
        raise ValueError(414, "Request-URI Too Long") from None
    headers = []
    while True:
        try:
            h = await reader.readuntil(b"\r\n")
        except asyncio.IncompleteReadError:
            return None
        except asyncio.LimitOverrunError:
            raise ValueError(431, "Line too long") from None
        if h == b"\r\n":
            break
        headers.append(h)
        if len(headers) > 100:
            raise ValueError(431, "Too many headers")
    return line, headers


async def serve_connection(reader, writer):
    """HTTP/1.1 over one connection: requests one after another, keep-alive unless the client
    asks otherwise (or speaks HTTP/1.0), as http.server does."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
    try:
        while True:
            try:
                head = await _request_head(reader)
            except ValueError as e:
                h = Handler(None, "", _Headers(), b"")
                h.send_error(*e.args)
                writer.write(h.out)
                await writer.drain()
                break
            if head is None:
                break
            line, raw_headers = head
            words = line.decode("iso-8859-1").rstrip("\r\n").split()
            if not words:
                break
            h = Handler(words[0], words[1] if len(words) > 1 else "", _Headers(), b"")
            close = True
            if len(words) == 3:
                version = words[2]
                m = re.fullmatch(r"HTTP/(\d{1,10})\.(\d{1,10})", version)
                if not m:
                    h.send_error(400, f"Bad request version ({version!r})")
                elif (int(m.group(1)), int(m.group(2))) >= (2, 0):
                    h.send_error(505, f"Invalid HTTP version ({version[5:]})")
                elif (int(m.group(1)), int(m.group(2))) >= (1, 1):
                    close = False
            elif len(words) == 2:
                if words[0] != "GET":
                    h.send_error(400, f"Bad HTTP/0.9 request type ({words[0]!r})")
            else:
                h.send_error(400, f"Bad request syntax ({line.decode('iso-8859-1').strip()!r})")
            if h.out:
                writer.write(h.out)
                await writer.drain()
                break
            if h.path.startswith("//"):
                h.path = "/" + h.path.lstrip("/")
            for raw in raw_headers:
                k, _, v = raw.decode("iso-8859-1").partition(":")
                k = k.strip().lower()
                if k and k not in h.headers:
                    h.headers[k] = v.strip()
            conntype = h.headers.get("Connection", "").lower()
            if conntype == "close":
                close = True
            elif conntype == "keep-alive":
                close = False
            if h.headers.get("Expect", "").lower() == "100-continue" and not close:
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            try:
                n = int(h.headers.get("Content-Length") or 0)
                h.body = await reader.readexactly(n) if n > 0 else b""
            except ValueError:
                h.send_error(400, "Bad Content-Length")
                close = True
            except asyncio.IncompleteReadError:
                break
            if not h.out:
                if h.command not in Handler.METHODS:
                    h.send_error(501, f"Unsupported method ({h.command!r})")
                    close = True
                else:
                    try:
                        h._dispatch()
                    except Exception:
                        log(f"{h.command} {h.path} crashed:\n{traceback.format_exc()}")
                        break
            writer.write(h.out)
            await writer.drain()
            if close:
                break
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def _gc_keeper():
    """The fake keeps every call's record until a reset, so its heap only grows, and a full
    collection by the cyclic GC, which walks all of it, stopped the loop for tens of ms at a
    thousand calls. Every second, the young generations are collected and whatever survives is
    frozen out of later collections (records are not garbage; cycles among them that a reset
    drops stay allocated)."""
    while True:
        await asyncio.sleep(1.0)
        gc.collect(1)
        gc.freeze()


async def serve(cfg):
    global LOOP
    LOOP = asyncio.get_running_loop()
    spawn(_gc_keeper())
    srv = await asyncio.start_server(serve_connection, cfg.host, cfg.port, backlog=1024,
                                     reuse_address=True)
    log(f"carrier fake listening on http://{cfg.host}:{cfg.port} (twilio {cfg.twilio_sid}, "
        f"plivo {cfg.plivo_id}, exotel {cfg.exotel_sid})")
    async with srv:
        await srv.serve_forever()


def main(argv=None):
    cfg = parse_args(argv)
    if cfg.record_dir:
        os.makedirs(cfg.record_dir, exist_ok=True)
    Handler.fake = Fake(cfg)
    threading.Thread(target=_log_writer, daemon=True, name="log-writer").start()

    def on_term(signum, frame):  # the lines not yet written, then the default action
        log_flush()
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    signal.signal(signal.SIGTERM, on_term)
    try:
        asyncio.run(serve(cfg))
    except KeyboardInterrupt:
        pass
    finally:
        log_flush()


if __name__ == "__main__":
    main()
