"""Post-processing end to end (docs/postprocess.md): real calls through the carrier fake, the
media-pipeline and the postprocessor end `completed` with transcript, usage, costs checked
against the pricing file, extracted data and summary (scripted provider, and the OpenAI-compatible
fake answering JSON, or invalid JSON twice), and a signed recording URL the api serves (and
refuses tampered or expired). An unanswered call stays no-answer at zero cost. Executions seeded
in call-disconnected cover the rest: no figures from the pipeline, SIGKILL of the postprocessor
in the middle of an extraction (completed once, debited once), and two replicas side by side."""
import copy
import hashlib
import hmac
import http.client
import itertools
import json
import os
import sys
import time
import urllib.parse
import uuid

import harness
from calls import status, turns, wait_status
from dialing import Dialing

OPENAI_FAKE = os.path.join(harness.ROOT, "tests", "fakes", "openai", "server.py")
KEY = "pp-test-signing-key"
FINAL = {"completed", "no-answer", "busy", "failed", "canceled", "stopped", "error"}

# Non-zero prices for the local engines too, so every component of the arithmetic shows.
PRICING = {
    "currency": "USD",
    "platform": {"per_minute": 3.0},
    "network": {"per_minute": {"twilio": 1.2, "default": 2.0}},
    "transcriber": {"per_second": {"local": 0.02, "default": 0.05}},
    "llm": {"per_1k_tokens": {"scripted": {"input": 0, "output": 0},
                              "gpt-4o-mini": {"input": 0.5, "output": 1.5},
                              "default": {"input": 1.0, "output": 2.0}}},
    "synthesizer": {"per_character": {"local": 0.003, "default": 0.01}},
}
RULES = [
    {"keywords": ["price"], "reply": "It costs ten dollars. Anything else?"},
    {"keywords": ["goodbye"], "reply": "Goodbye!", "hangup": True},
]
KEYWORDS = ["what is the price", "goodbye"]
SCRIPT = [{"silence_ms": 4000}, {"text": "what is the price"}, {"silence_ms": 4500},
          {"text": "goodbye"}, {"silence_ms": 10000}]
SCRIPTED_EXTRACTION = {"asked_price": True, "day": None, "source": "scripted"}
SCRIPTED_SUMMARY = "The caller asked for the price and said goodbye."


def setup(ctx):
    ctx.start_api(PL_RECORDING_SIGNING_KEY=KEY)
    ctx.dialing = Dialing(ctx, fake_args=["--voice-cmd", "espeak-ng -s 150 --stdout {text}",
                                          "--max-call-seconds", "60"]).start()
    ctx.dialing.start_pipeline()
    ctx.account, ctx.key = ctx.new_account("postprocess", concurrency=50)
    ctx.pricing = os.path.join(ctx.workdir, "pricing.json")
    with open(ctx.pricing, "w") as f:
        json.dump(PRICING, f)
    ctx.openai_port = harness.stack.free_port()
    script = os.path.join(ctx.workdir, "openai-script.json")
    with open(script, "w") as f:
        json.dump({"rules": [
            {"match": "EXTRACT-OK", "reply": '{"asked_price": true, "day": "tuesday"}'},
            {"match": "EXTRACT-BAD", "reply": "Sure! The caller asked about the price."},
            {"match": "EXTRACT-SLOW", "reply": '{"slow": true}', "first_token_delay_ms": 6000},
            {"match": "EXTRACT-BRISK", "reply": '{"brisk": true}', "first_token_delay_ms": 300},
            {"match": "SUMMARY-OK", "reply": "The caller asked about the price."},
        ]}, f)
    svc = harness.Service("fake-openai", dict(os.environ), ctx.openai_port, ctx.workdir)
    svc.start_cmd([sys.executable, OPENAI_FAKE, "--port", str(ctx.openai_port), "--script",
                   script])
    ctx.services["fake-openai"] = svc
    # The first test's calls must be found through the bus: the sweep runs once at start, then
    # not again before they are over.
    start_pp(ctx, PL_POSTPROCESS_SWEEP_MS=120000)


def start_pp(ctx, name="postprocessor", **env):
    port = harness.stack.free_port()
    e = dict(PL_POSTPROCESS_PORT=port, PL_PRICING_FILE=ctx.pricing,
             PL_PUBLIC_API_URL=f"http://127.0.0.1:{ctx.api_port}", PL_RECORDING_SIGNING_KEY=KEY,
             PL_POSTPROCESS_MEDIA_WAIT_MS=3000, PL_POSTPROCESS_SWEEP_MS=500)
    e.update(env)
    svc = harness.Service(name, ctx.env(**e), port, ctx.workdir, binary="postprocessor").start()
    ctx.services[name] = svc
    return svc


# ---------------------------------------------------------------- helpers

def openai_llm(ctx, **extra):
    return dict({"provider": "openai", "model": "gpt-4o-mini", "api_key": "sk-fake",
                 "base_url": f"http://127.0.0.1:{ctx.openai_port}/v1"}, **extra)


def agent(ctx, conversation_llm=None, tasks=()):
    """An agent on the local engines; `tasks`: extra (task_type, llm_config) pairs."""
    body = copy.deepcopy(harness.AGENT_FOR_TESTS)
    task = body["agent_config"]["tasks"][0]
    task["tools_config"]["llm_agent"]["llm_config"] = conversation_llm or {
        "provider": "scripted", "model": "parley-scripted", "scripted": {"rules": RULES}}
    task["tools_config"]["transcriber"]["keywords"] = KEYWORDS  # what the callee says
    task["task_config"] = {"hangup_after_silence": 8, "call_terminate": 60}
    for i, (kind, llm) in enumerate(tasks):
        body["agent_config"]["tasks"].append({
            "task_type": kind,
            "tools_config": {"llm_agent": {"agent_type": "simple_llm_agent",
                                           "agent_flow_type": "streaming", "llm_config": llm}}})
        body["agent_prompts"][f"task_{i + 2}"] = {"system_prompt": f"{kind} task"}
    r = ctx.http("POST", "/v2/agent", body, key=ctx.key)
    assert r.status == 200, r
    return r.json["agent_id"]


_SEQ = itertools.count(int(time.time()) % 100000)


def place(ctx, agent_id, script, ending="0006"):
    to = f"+15{next(_SEQ) % 10000000:07d}{ending}"
    r = ctx.http("POST", "/_fake/voices", {"number": to, "script": script},
                 port=ctx.dialing.fake_port)
    assert r.status == 200, r
    r = ctx.http("POST", "/call", {"agent_id": agent_id, "recipient_phone_number": to},
                 key=ctx.key)
    assert r.status == 200, r
    return r.json["execution_id"]


def row(ctx, eid):
    cols = ["status", "transcript", "conversation_duration", "total_cost", "cost_breakdown",
            "usage_breakdown", "extracted_data", "summary", "recording_url", "recording_path",
            "error_message", "telephony_data", "account_id"]
    r = ctx.sql("SELECT " + ", ".join(f"COALESCE(to_jsonb({c})::text, 'null')" for c in cols) +
                " FROM executions WHERE id = :'p1'", eid)[0]
    return {c: json.loads(v) for c, v in zip(cols, r)}


def settle(ctx, eid, timeout=90):
    return wait_status(ctx, eid, FINAL, timeout)


def disconnected_to_completed(ctx, eid):
    """Seconds between the two outbox rows."""
    return float(ctx.sql(
        "SELECT extract(epoch FROM max(created_at) FILTER (WHERE status = 'completed') -"
        " max(created_at) FILTER (WHERE status = 'call-disconnected'))"
        " FROM execution_events WHERE execution_id = :'p1'", eid)[0][0])


def events(ctx, eid, st):
    return int(ctx.sql("SELECT count(*) FROM execution_events WHERE execution_id = :'p1'"
                       " AND status = :'p2'", eid, st)[0][0])


def ledger(ctx, eid):
    return ctx.sql("SELECT amount FROM wallet_ledger WHERE execution_id = :'p1'", eid)


def wallet(ctx, account):
    return float(ctx.sql("SELECT wallet FROM accounts WHERE id = :'p1'", account)[0][0])


def cents(x):
    """Rounding of cost.c: half away from zero, to a hundredth of a cent."""
    return float(int(abs(x) * 100 + 0.5 + 1e-9)) / 100 * (1 if x >= 0 else -1)


def expected_costs(e):
    """cost_breakdown recomputed in Python from PRICING and the stored usage and duration."""
    u, d = e["usage_breakdown"], e["conversation_duration"]
    carrier = e["telephony_data"].get("provider") or "default"
    net = PRICING["network"]["per_minute"]
    tr = PRICING["transcriber"]["per_second"]
    sy = PRICING["synthesizer"]["per_character"]
    llm_prices = PRICING["llm"]["per_1k_tokens"]
    # The pipeline does not repeat the providers in usage_breakdown: the postprocessor takes them
    # from the agent, and every agent of this suite uses the local transcriber and synthesizer.
    tprov = u.get("transcriber_provider", "local")
    sprov = u.get("synthesizer_provider", "local")
    llm = sum(t["input"] / 1000 * llm_prices.get(m, llm_prices["default"])["input"] +
              t["output"] / 1000 * llm_prices.get(m, llm_prices["default"])["output"]
              for m, t in u["llm_model"].items())
    return {
        "platform": cents(PRICING["platform"]["per_minute"] * d / 60),
        "network": cents(net.get(carrier, net["default"]) * d / 60),
        "transcriber": cents(tr.get(tprov, tr["default"]) * u["transcriber_duration"]),
        "synthesizer": cents(sy.get(sprov, sy["default"]) * u["synthesizer_characters"]),
        "llm": cents(llm),
    }


def check_costs(e):
    want = expected_costs(e)
    got = e["cost_breakdown"]
    assert set(got) == set(want), got
    for k in want:  # one rounding step apart at most (float vs. the C arithmetic)
        assert abs(got[k] - want[k]) <= 0.0101, (k, got, want, e["usage_breakdown"])
    assert abs(e["total_cost"] - sum(got.values())) < 1e-6, (e["total_cost"], got)
    assert e["total_cost"] > 0, e


def expected_transcript(ctx, eid):
    return "".join(f"{r}: {c.replace(chr(10), ' ')}\n" for r, c in turns(ctx, eid) if c.strip())


def sign(eid, exp, key=KEY):
    return hmac.new(key.encode(), f"{eid}.{exp}".encode(), hashlib.sha256).hexdigest()


def get_url(ctx, url):
    u = urllib.parse.urlsplit(url)
    return ctx.http("GET", u.path + "?" + u.query, port=u.port)


def fake_requests(ctx, marker):
    reqs = ctx.http("GET", "/fake/requests", port=ctx.openai_port).json
    return [r for r in reqs if marker in json.dumps(r.get("body"))]


def tokens_reported(ctx, *markers):
    """{input, output} the fake reported over the requests carrying any of the markers."""
    reqs = [r for m in markers for r in fake_requests(ctx, m)]
    assert reqs and all(r.get("usage") for r in reqs), reqs
    return {"input": sum(r["usage"]["prompt_tokens"] for r in reqs),
            "output": sum(r["usage"]["completion_tokens"] for r in reqs)}


def task_tokens(ctx, eid):
    """usage_breakdown.llm_model of the post-call tasks' model (the conversation is scripted)."""
    return row(ctx, eid)["usage_breakdown"]["llm_model"].get("gpt-4o-mini")


def check_completed_call(ctx, eid):
    """What every completed real call carries."""
    e = row(ctx, eid)
    assert e["status"] == "completed", e
    assert events(ctx, eid, "completed") == 1
    assert e["transcript"] == expected_transcript(ctx, eid), e["transcript"]
    assert e["transcript"].startswith("assistant: ") and "user: what is the price" in \
        e["transcript"], e["transcript"]
    assert abs(e["conversation_duration"] - float(e["telephony_data"]["duration"])) < 1e-6, e
    u = e["usage_breakdown"]
    for k in ("synthesizer_characters", "synthesizer_model", "transcriber_duration",
              "transcriber_model", "llm_tokens", "llm_model"):
        assert k in u, (k, u)
    assert u["transcriber_duration"] > 3 and u["synthesizer_characters"] > 20, u
    check_costs(e)
    assert [float(a[0]) for a in ledger(ctx, eid)] == [round(e["total_cost"] / 100, 4)]
    assert e["error_message"] is None, e
    return e


# ---------------------------------------------------------------- tests

def test_full_calls_end_completed(ctx):
    """Three real calls at once: scripted extraction and summary; OpenAI-compatible extraction
    (JSON) and summary; OpenAI-compatible extraction answering invalid JSON twice."""
    before = wallet(ctx, ctx.account)
    scripted = agent(ctx, conversation_llm={
        "provider": "scripted", "model": "parley-scripted",
        "extraction_details": "asked_price: did the caller ask the price",
        "summarization_details": "one sentence",
        "scripted": {"rules": RULES, "extraction": SCRIPTED_EXTRACTION,
                     "summary": SCRIPTED_SUMMARY}})
    openai_ok = agent(ctx, tasks=[
        ("extraction", openai_llm(ctx, extraction_details="EXTRACT-OK: asked_price, day")),
        ("summarization", openai_llm(ctx, summarization_details="SUMMARY-OK"))])
    openai_bad = agent(ctx, tasks=[
        ("extraction", openai_llm(ctx, extraction_details="EXTRACT-BAD: asked_price"))])
    ids = {name: place(ctx, a, SCRIPT) for name, a in
           (("scripted", scripted), ("ok", openai_ok), ("bad", openai_bad))}
    for name, eid in ids.items():
        assert settle(ctx, eid) == "completed", (name, row(ctx, eid))

    e = check_completed_call(ctx, ids["scripted"])
    assert e["extracted_data"] == SCRIPTED_EXTRACTION, e["extracted_data"]
    assert e["summary"] == SCRIPTED_SUMMARY, e["summary"]

    e = check_completed_call(ctx, ids["ok"])
    assert e["extracted_data"] == {"asked_price": True, "day": "tuesday"}, e["extracted_data"]
    assert e["summary"] == "The caller asked about the price.", e["summary"]
    reqs = fake_requests(ctx, "EXTRACT-OK")
    assert len(reqs) == 1 and reqs[0]["authorization"] == "Bearer sk-fake", reqs
    body = reqs[0]["body"]
    assert body["stream"] is False and body["response_format"] == {"type": "json_object"}, body
    assert "user: what is the price" in body["messages"][-1]["content"], body
    logs = ctx.http("GET", f"/executions/{ids['ok']}/log", key=ctx.key).json["data"]
    assert {(x["type"], x["component"], x["provider"]) for x in logs} >= {
        ("request", "extraction", "openai"), ("response", "extraction", "openai"),
        ("request", "summarization", "openai"), ("response", "summarization", "openai")}, logs

    # the tasks' tokens are billed with the conversation's (check_completed_call priced them)
    assert task_tokens(ctx, ids["ok"]) == tokens_reported(ctx, "EXTRACT-OK", "SUMMARY-OK")

    e = check_completed_call(ctx, ids["bad"])  # still completed, error_message untouched
    err = e["extracted_data"]["error"]
    assert "extraction failed twice" in err and "not valid JSON" in err, e["extracted_data"]
    assert e["summary"] is None
    assert len(fake_requests(ctx, "EXTRACT-BAD")) == 2  # tried once more, then recorded
    assert task_tokens(ctx, ids["bad"]) == tokens_reported(ctx, "EXTRACT-BAD")  # both paid
    assert task_tokens(ctx, ids["scripted"]) is None  # nothing called

    spent = sum(row(ctx, i)["total_cost"] for i in ids.values()) / 100
    assert abs(wallet(ctx, ctx.account) - (before - spent)) < 1e-4, (before, spent)

    # what clients read: the execution object through the api
    got = ctx.http("GET", f"/executions/{ids['ok']}", key=ctx.key).json
    assert got["status"] == "completed" and got["extracted_data"]["day"] == "tuesday", got
    assert got["telephony_data"]["recording_url"] == row(ctx, ids["ok"])["recording_url"], got
    ctx.recorded = ids["scripted"]

    # found through exec.status.call-disconnected (the sweep was not due): completed as soon
    # as the pipeline's figures were in and the LLM had answered
    for name, eid in ids.items():
        assert disconnected_to_completed(ctx, eid) < 3, (name, disconnected_to_completed(ctx, eid))
    ctx.services["postprocessor"].stop()
    start_pp(ctx)


def test_recording_url_serves_the_wav_and_refuses_forgeries(ctx):
    eid = ctx.recorded
    e = row(ctx, eid)
    url = e["recording_url"]
    u = urllib.parse.urlsplit(url)
    q = dict(urllib.parse.parse_qsl(u.query))
    assert url.startswith(f"http://127.0.0.1:{ctx.api_port}/recordings/{eid}.wav?exp="), url
    assert abs(int(q["exp"]) - (time.time() + 7 * 86400)) < 600, q  # 7 days by default
    assert q["sig"] == sign(eid, q["exp"]), q  # the documented algorithm
    r = get_url(ctx, url)  # no Bearer key
    assert r.status == 200 and r.headers["Content-Type"] == "audio/wav", r
    with open(e["recording_path"], "rb") as f:
        wav = f.read()
    conn = http.client.HTTPConnection("127.0.0.1", ctx.api_port, timeout=30)
    conn.request("GET", u.path + "?" + u.query)
    raw = conn.getresponse().read()
    conn.close()
    assert raw == wav and raw[:4] == b"RIFF" and raw[8:12] == b"WAVE", len(raw)

    def query(exp, sig):
        return f"{u.path}?exp={exp}&sig={sig}"

    tampered = q["sig"][:-1] + ("0" if q["sig"][-1] != "0" else "1")
    other_call = eid[:-1] + ("0" if eid[-1] != "0" else "1")  # never the same id
    for path in (query(q["exp"], tampered),                       # altered signature
                 query(int(q["exp"]) + 3600, q["sig"]),           # a longer life
                 query(q["exp"], sign(eid, q["exp"], "guess")),   # another key
                 u.path,                                          # no signature at all
                 query(q["exp"], q["sig"]).replace(eid, other_call)):  # another call
        r = ctx.http("GET", path)
        assert r.status == 403 and r.json["error"] == 403, (path, r)
    old = int(time.time()) - 60
    r = ctx.http("GET", query(old, sign(eid, old)))
    assert r.status == 410 and "expired" in r.json["message"], r
    later = int(time.time()) + 60
    none = str(uuid.uuid4())
    r = ctx.http("GET", f"/recordings/{none}.wav?exp={later}&sig={sign(none, later)}")
    assert r.status == 404, r

    def raw_get(path, headers):
        conn = http.client.HTTPConnection("127.0.0.1", ctx.api_port, timeout=30)
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        out = (resp.status, dict(resp.getheaders()), resp.read())
        conn.close()
        return out

    # seeking: one byte range at a time, as players ask; the owner's API key opens the expired
    # link (and the bare path); another account's key finds nothing; several ranges: the whole
    n = len(wav)
    signed = u.path + "?" + u.query
    st, h, body = raw_get(signed, {"Range": "bytes=44-1043"})
    assert (st, h["Content-Range"], body) == (206, f"bytes 44-1043/{n}", wav[44:1044]), (st, h)
    st, h, body = raw_get(signed, {"Range": "bytes=-100"})
    assert (st, h["Content-Range"], body) == (206, f"bytes {n - 100}-{n - 1}/{n}", wav[-100:])
    st, h, body = raw_get(signed, {"Range": f"bytes={n}-"})
    assert st == 416 and h["Content-Range"] == f"bytes */{n}", (st, h, body)
    st, h, body = raw_get(signed, {"Range": "bytes=0-1,4-5"})
    assert (st, body) == (200, wav) and h["Accept-Ranges"] == "bytes", (st, h)
    owner = {"Authorization": f"Bearer {ctx.key}"}
    st, _, body = raw_get(query(old, sign(eid, old)), owner)  # an expired link, the owner's key
    assert (st, body) == (200, wav), st
    st, _, body = raw_get(u.path, owner)
    assert (st, body) == (200, wav), st
    _, other_key = ctx.new_account("recording-other")
    st, _, body = raw_get(u.path, {"Authorization": f"Bearer {other_key}"})
    assert st == 404 and b"has no recording" in body, (st, body)
    st, _, _ = raw_get(u.path, {"Authorization": "Bearer pl_wrong"})
    assert st == 401


def test_no_answer_costs_nothing_and_stays_no_answer(ctx):
    a = agent(ctx)
    eid = place(ctx, a, [{"silence_ms": 1000}], ending="0002")
    assert settle(ctx, eid, timeout=30) == "no-answer"
    harness.eventually(lambda: row(ctx, eid)["cost_breakdown"] is not None, timeout=10)
    e = row(ctx, eid)
    assert e["status"] == "no-answer" and e["total_cost"] == 0, e
    assert e["cost_breakdown"] == {"llm": 0, "network": 0, "platform": 0, "synthesizer": 0,
                                   "transcriber": 0}, e
    assert not ledger(ctx, eid) and events(ctx, eid, "completed") == 0
    assert e["transcript"] is None and e["recording_url"] is None


# ---------------------------------------------------------------- seeded executions

def seed(ctx, agent_id, marker, usage=None, duration=30, provider="twilio"):
    """An execution left in call-disconnected, as the gateway and the pipeline leave one."""
    turns_json = json.dumps([
        {"seq": 0, "role": "assistant", "content": "Hello, how can I help?", "s": 0, "en": 2000},
        {"seq": 1, "role": "user", "content": f"this is {marker}", "s": 2500, "en": 4000}])
    tele = json.dumps({"duration": duration, "provider": provider, "hangup_by": "Callee"})
    return ctx.sql(
        "WITH e AS (INSERT INTO executions (account_id, agent_id, status, to_number, provider,"
        "  telephony_data, usage_breakdown)"
        "  VALUES (:'p1', :'p2', 'call-disconnected', '+15550001234', :'p6', :'p3'::jsonb,"
        "  NULLIF(:'p4', '')::jsonb) RETURNING id, account_id),"
        " ev AS (INSERT INTO execution_events (execution_id, account_id, status, from_status)"
        "  SELECT id, account_id, 'call-disconnected', 'in-progress' FROM e),"
        " t AS (INSERT INTO transcript_turns (execution_id, attempt, seq, role, content,"
        "  start_ms, end_ms) SELECT e.id, 0, x.seq, x.role, x.content, x.s, x.en FROM e,"
        "  jsonb_to_recordset(:'p5'::jsonb) AS x(seq int, role text, content text, s int, en int))"
        " SELECT id FROM e",
        ctx.account, agent_id, tele, json.dumps(usage) if usage else "", turns_json,
        provider)[0][0]


USAGE = {"synthesizer_characters": 100, "synthesizer_model": "kal16",
         "synthesizer_provider": "local", "transcriber_duration": 20.0,
         "transcriber_model": "pocketsphinx-en-us", "transcriber_provider": "local",
         "llm_tokens": 3000, "llm_model": {"gpt-4o-mini": {"input": 2000, "output": 1000}}}


def check_seeded_usage(e, req):
    """A seeded call's usage: USAGE's gpt-4o-mini tokens plus what the fake reported for the
    extraction request `req`."""
    got = req["usage"]
    assert req["outcome"] == "complete" and got["prompt_tokens"] > 0, req
    u = e["usage_breakdown"]
    assert u["llm_model"]["gpt-4o-mini"] == {"input": 2000 + got["prompt_tokens"],
                                             "output": 1000 + got["completion_tokens"]}, u
    assert u["llm_tokens"] == 3000 + got["prompt_tokens"] + got["completion_tokens"], u


def test_goes_on_without_the_pipeline_figures(ctx):
    """No usage_breakdown within PL_POSTPROCESS_MEDIA_WAIT_MS (3 s here): completed anyway, with
    default usage; the cost is then the platform and network minutes (carrier not priced:
    the table's default)."""
    a = agent(ctx)
    t0 = time.time()
    eid = seed(ctx, a, "no-figures", duration=45, provider="plivo")
    assert settle(ctx, eid, timeout=15) == "completed"
    assert time.time() - t0 >= 2.5, "completed before the media wait was over"
    e = row(ctx, eid)
    assert e["usage_breakdown"]["transcriber_duration"] == 0
    assert e["usage_breakdown"]["llm_model"] == {} and e["usage_breakdown"]["llm_tokens"] == 0
    assert e["cost_breakdown"] == {"llm": 0, "network": 1.5, "platform": 2.25,
                                   "synthesizer": 0, "transcriber": 0}, e["cost_breakdown"]
    assert e["total_cost"] == 3.75
    assert e["transcript"] == "assistant: Hello, how can I help?\nuser: this is no-figures\n"
    assert e["recording_url"] is None and e["extracted_data"] is None
    assert [float(x[0]) for x in ledger(ctx, eid)] == [0.0375]


def test_sigkill_mid_extraction_completes_once_and_debits_once(ctx):
    a = agent(ctx, tasks=[("extraction", openai_llm(ctx, extraction_details="EXTRACT-SLOW"))])
    ctx.services["postprocessor"].stop()
    victim = start_pp(ctx, name="pp-victim")
    before = wallet(ctx, ctx.account)
    eid = seed(ctx, a, "sigkill-case", usage=USAGE)
    harness.eventually(lambda: fake_requests(ctx, "sigkill-case"), timeout=10)
    victim.stop(kill=True)  # SIGKILL while the LLM is thinking
    assert status(ctx, eid) == "call-disconnected" and not ledger(ctx, eid)
    assert wallet(ctx, ctx.account) == before
    start_pp(ctx)
    assert settle(ctx, eid, timeout=30) == "completed"
    e = row(ctx, eid)
    assert e["extracted_data"] == {"slow": True}, e
    assert events(ctx, eid, "completed") == 1
    reqs = fake_requests(ctx, "sigkill-case")
    assert len(reqs) == 2  # asked again after the restart
    # the call's gpt-4o-mini tokens plus the extraction that completed (the killed job's are
    # not billed: its results were never stored)
    check_seeded_usage(e, reqs[-1])
    # 20 s local STT at 0.02, 100 chars at 0.003, 30 s twilio; gpt-4o-mini 2000 in/1000 out =
    # 2.5, and the extraction's tokens on top
    assert {k: v for k, v in e["cost_breakdown"].items() if k != "llm"} == {
        "network": 0.6, "platform": 1.5, "synthesizer": 0.3, "transcriber": 0.4}, e
    assert e["cost_breakdown"]["llm"] > 2.5, e["cost_breakdown"]
    check_costs(e)
    assert [float(x[0]) for x in ledger(ctx, eid)] == [round(e["total_cost"] / 100, 4)]
    assert abs(wallet(ctx, ctx.account) - (before - e["total_cost"] / 100)) < 1e-9


def test_two_replicas_process_each_execution_once(ctx):
    start_pp(ctx, name="pp-second", PL_POSTPROCESS_SWEEP_MS=100)
    a = agent(ctx, tasks=[("extraction", openai_llm(ctx, extraction_details="EXTRACT-BRISK"))])
    before = wallet(ctx, ctx.account)
    ids = {f"replica-case-{i}": seed(ctx, a, f"replica-case-{i}", usage=USAGE) for i in range(8)}
    for eid in ids.values():
        assert settle(ctx, eid, timeout=30) == "completed"
    for marker, eid in ids.items():
        assert events(ctx, eid, "completed") == 1
        assert len(ledger(ctx, eid)) == 1
        reqs = fake_requests(ctx, marker + "\\n")
        assert len(reqs) == 1, marker  # one extraction each
        e = row(ctx, eid)
        assert e["extracted_data"] == {"brisk": True}
        check_seeded_usage(e, reqs[0])
        check_costs(e)
    spent = sum(row(ctx, eid)["total_cost"] for eid in ids.values()) / 100
    assert abs(wallet(ctx, ctx.account) - (before - spent)) < 1e-9
    ctx.services["pp-second"].stop()


def test_sigterm_finishes_the_job_in_hand(ctx):
    a = agent(ctx, tasks=[("extraction", openai_llm(ctx, extraction_details="EXTRACT-SLOW"))])
    eid = seed(ctx, a, "sigterm-case", usage=USAGE)
    harness.eventually(lambda: fake_requests(ctx, "sigterm-case"), timeout=10)
    pp = ctx.services["postprocessor"]
    t0 = time.time()
    pp.proc.terminate()
    assert pp.proc.wait(20) == 0
    assert time.time() - t0 > 2, "exited without finishing the extraction"
    assert status(ctx, eid) == "completed" and row(ctx, eid)["extracted_data"] == {"slow": True}
    start_pp(ctx)
