"""The OpenAI fake (tests/fakes/openai/server.py) checked against the Chat Completions wire
protocol as /work/shared/reference/providers.md section 5 states it, not against our C client:
raw HTTP and a small SSE reader written here.

Run alone: python3 tests/run.py fake_openai
"""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import harness

SERVER_PY = os.path.join(harness.ROOT, "tests", "fakes", "openai", "server.py")
KEY = "sk-suite"
state = {}


class FakeProcess:
    """Lets the suite's close() stop the fake like a service."""

    def __init__(self, name, args, logdir):
        self.name = name
        self.log_path = os.path.join(logdir, f"{name}.log")
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([sys.executable, SERVER_PY, "--port", "0"] + args,
                                     stdout=subprocess.PIPE, stderr=log, cwd=harness.ROOT)
        line = self.proc.stdout.readline().decode()
        self.port = int(line.rsplit(":", 1)[1])

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")


def setup(ctx):
    script = os.path.join(ctx.workdir, "script.json")
    with open(script, "w") as f:
        json.dump({"rules": [
            {"match": r"\bopening hours\b", "reply": "We open at nine, {heard}!"},
            {"match": r"^transfer me$", "tool_call": {"name": "transfer_call",
                                                     "arguments": {"to": "+15550100"}}},
            {"match": r"^overloaded$", "error": 500},
        ]}, f)
    ctx.services["fake-openai"] = FakeProcess("fake-openai", ["--api-key", KEY, "--script",
                                                              script], ctx.workdir)
    state["port"] = ctx.services["fake-openai"].port


def raw_post(path, body, key=KEY, extra_headers=""):
    """POSTs over a plain socket; returns (status, headers, [chunk bytes...] or body bytes)."""
    data = json.dumps(body).encode() if not isinstance(body, bytes) else body
    s = socket.create_connection(("127.0.0.1", state["port"]), timeout=10)
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    s.sendall((f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{auth}"
               f"{extra_headers}Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
               ).encode() + data)
    buf = b""
    while True:
        got = s.recv(65536)
        if not got:
            break
        buf += got
    s.close()
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
    if headers.get("transfer-encoding") == "chunked":
        chunks = []
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            n = int(size_line, 16)
            if n == 0:
                break
            chunks.append(rest[:n])
            rest = rest[n + 2:]
        return status, headers, chunks
    return status, headers, rest


def sse_events(data):
    """data: events of an SSE byte stream (LF or CRLF), in order; comments counted apart."""
    text = data.decode("utf-8")
    events, comments = [], 0
    for block in text.replace("\r\n", "\n").split("\n\n"):
        lines = [ln for ln in block.split("\n") if ln]
        comments += sum(1 for ln in lines if ln.startswith(":"))
        datas = [ln[5:].lstrip(" ") if ln.startswith("data:") else None for ln in lines]
        datas = [d for d in datas if d is not None]
        if datas:
            events.append("\n".join(datas))
    return events, comments


def chat(messages, stream=True, usage=True, **extra):
    body = {"model": "gpt-4o-mini", "messages": messages, **extra}
    if stream:
        body["stream"] = True
        if usage:
            body["stream_options"] = {"include_usage": True}
    return raw_post("/v1/chat/completions", body)


def user(text):
    return [{"role": "system", "content": "be brief"}, {"role": "user", "content": text}]


def test_stream_follows_the_chunk_format(ctx):
    status, headers, chunks = chat(user("hello"))
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    events, _ = sse_events(b"".join(chunks))
    assert events[-1] == "[DONE]"
    objs = [json.loads(e) for e in events[:-1]]
    assert all(o["object"] == "chat.completion.chunk" and o["model"] == "gpt-4o-mini"
               for o in objs)
    assert len({o["id"] for o in objs}) == 1
    assert objs[0]["choices"][0]["delta"]["role"] == "assistant"
    assert objs[0]["choices"][0]["delta"]["content"] == ""
    text = "".join(o["choices"][0]["delta"].get("content") or "" for o in objs if o["choices"])
    assert text == "Hello! How can I help you today?"
    # usage: null on every chunk but the last, which has no choices.
    assert all("usage" in o and o["usage"] is None for o in objs[:-1])
    last = objs[-1]
    assert last["choices"] == [] and last["usage"]["total_tokens"] == (
        last["usage"]["prompt_tokens"] + last["usage"]["completion_tokens"])
    assert objs[-2]["choices"][0]["finish_reason"] == "stop"
    assert objs[-2]["choices"][0]["delta"] == {}


def test_no_usage_unless_asked(ctx):
    _, _, chunks = chat(user("hello"), usage=False)
    events, _ = sse_events(b"".join(chunks))
    objs = [json.loads(e) for e in events[:-1]]
    assert all("usage" not in o for o in objs)
    assert all(o["choices"] for o in objs)


def test_whole_completion(ctx):
    status, headers, body = chat(user("hello"), stream=False)
    assert status == 200 and headers["content-type"] == "application/json"
    j = json.loads(body)
    assert j["object"] == "chat.completion"
    assert j["choices"][0]["message"] == {"role": "assistant", "refusal": None,
                                          "content": "Hello! How can I help you today?"}
    assert j["choices"][0]["finish_reason"] == "stop"
    assert j["usage"]["total_tokens"] > 0


def test_auth_and_validation_errors(ctx):
    status, _, body = raw_post("/v1/chat/completions", {"model": "m", "messages": user("x")},
                               key=None)
    assert status == 401 and "didn't provide an API key" in json.loads(body)["error"]["message"]
    status, _, body = raw_post("/v1/chat/completions", {"model": "m", "messages": user("x")},
                               key="sk-wrong-one")
    err = json.loads(body)["error"]
    assert status == 401 and err["code"] == "invalid_api_key"
    assert err["message"].startswith("Incorrect API key provided: sk-")
    assert set(err) == {"message", "type", "param", "code"}
    status, _, body = raw_post("/v1/chat/completions",
                               {"model": "m", "messages": user("x"),
                                "stream_options": {"include_usage": True}})
    assert status == 400 and "stream_options" in json.loads(body)["error"]["message"]
    status, _, body = raw_post("/v1/chat/completions", {"messages": user("x")})
    assert status == 400 and "model" in json.loads(body)["error"]["message"]
    status, _, body = raw_post("/v1/chat/completions", b"{not json")
    assert status == 400


def test_http_error_statuses(ctx):
    status, headers, body = chat(user("fake:429"))
    err = json.loads(body)["error"]
    assert status == 429 and headers["retry-after"] == "1"
    assert err["code"] == "rate_limit_exceeded" and "Rate limit reached" in err["message"]
    status, _, body = chat(user("fake:500"))
    assert status == 500 and json.loads(body)["error"]["type"] == "server_error"
    status, _, body = chat(user("overloaded"))  # a script rule
    assert status == 500


def test_splits_cut_inside_utf8(ctx):
    _, _, chunks = chat(user("fake:unicode fake:bytes"))
    assert all(len(c) == 1 for c in chunks)
    _, _, chunks = chat(user("fake:unicode fake:random-split"))
    cut_inside = 0
    for c in chunks[1:]:
        if c and (c[0] & 0xC0) == 0x80:  # a piece starting with a continuation byte
            cut_inside += 1
    assert len(chunks) > 20 and cut_inside > 0
    events, _ = sse_events(b"".join(chunks))
    text = "".join(json.loads(e)["choices"][0]["delta"].get("content") or ""
                   for e in events[:-1] if json.loads(e)["choices"])
    assert text == "Grüße aus Köln — café ☕, naïve 日本語 😀!"


def test_crlf_line_ends(ctx):
    _, _, chunks = chat(user("hello fake:crlf"))
    raw = b"".join(chunks)
    assert b"\r\n\r\n" in raw and b"\n\n" not in raw.replace(b"\r\n", b"")
    events, _ = sse_events(raw)
    assert events[-1] == "[DONE]"


def test_tool_call_deltas(ctx):
    _, _, chunks = chat(user("fake:tool"), tools=[{"type": "function", "function": {
        "name": "end_call", "parameters": {"type": "object", "properties": {}}}}])
    events, _ = sse_events(b"".join(chunks))
    objs = [json.loads(e) for e in events[:-1]]
    frags = [o["choices"][0]["delta"]["tool_calls"][0] for o in objs
             if o["choices"] and "tool_calls" in o["choices"][0]["delta"]]
    first = frags[0]
    assert first["index"] == 0 and first["id"] and first["type"] == "function"
    assert first["function"] == {"name": "end_call", "arguments": ""}
    assert len(frags) > 3
    assert all(set(f) == {"index", "function"} and set(f["function"]) == {"arguments"}
               for f in frags[1:])
    args = json.loads("".join(f["function"]["arguments"] for f in frags))
    assert args["reason"] == "caller asked to end the call"
    assert [o for o in objs if o["choices"]][-1]["choices"][0]["finish_reason"] == "tool_calls"
    # A script rule can make a tool call too.
    _, _, chunks = chat(user("transfer me"))
    events, _ = sse_events(b"".join(chunks))
    assert '"transfer_call"' in "".join(events)


def test_error_mid_stream_and_drop(ctx):
    _, _, chunks = chat(user("fake:error-midstream"))
    events, _ = sse_events(b"".join(chunks))
    assert "[DONE]" not in events
    assert json.loads(events[-1])["error"]["message"].endswith("(fake mid-stream error)")
    assert any(json.loads(e).get("choices") for e in events[:-1])
    _, _, chunks = chat(user("fake:drop"))
    events, _ = sse_events(b"".join(chunks))
    assert "[DONE]" not in events and all("error" not in json.loads(e) for e in events)


def test_slow_first_token_sends_keepalives(ctx):
    t0 = time.time()
    _, _, chunks = chat(user("hello fake:slow=600"))
    assert time.time() - t0 >= 0.6
    events, comments = sse_events(b"".join(chunks))
    assert comments >= 2 and events[-1] == "[DONE]"


def test_script_rules_and_request_log(ctx):
    _, _, chunks = chat(user("what are your opening hours"))
    events, _ = sse_events(b"".join(chunks))
    text = "".join(json.loads(e)["choices"][0]["delta"].get("content") or ""
                   for e in events[:-1] if json.loads(e)["choices"])
    assert text == "We open at nine, what are your opening hours!"
    with urllib.request.urlopen(f"http://127.0.0.1:{state['port']}/fake/requests") as r:
        log = json.load(r)
    last = [x for x in log if x["path"] == "/v1/chat/completions"][-1]
    assert last["authorization"] == f"Bearer {KEY}" and last["outcome"] == "complete"
    assert last["body"]["messages"][-1]["content"] == "what are your opening hours"
    req = urllib.request.Request(f"http://127.0.0.1:{state['port']}/v1/models",
                                 headers={"Authorization": f"Bearer {KEY}"})
    with urllib.request.urlopen(req) as r:
        models = json.load(r)
    assert models["object"] == "list" and any(m["id"] == "gpt-4o-mini" for m in models["data"])

