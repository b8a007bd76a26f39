"""Conversations end to end: api → scheduler → telephony-gateway → carrier fake (Twilio, Plivo,
Exotel) ⇄ media WebSocket ⇄ nng relay ⇄ media-pipeline (local pocketsphinx, flite, scripted or
OpenAI-compatible LLM). The fake's callee speaks scripted lines with espeak-ng and records what it
hears; the recording is transcribed with parley-transcribe (the pipeline's own local engine)."""
import copy
import itertools
import json
import os
import sys
import time

import calls
import harness
from calls import execution, heard, status, wait_status
from dialing import Dialing

CARRIERS = ("twilio", "plivo", "exotel")
FINAL = {"completed", "no-answer", "busy", "failed", "canceled", "stopped", "error",
         "call-disconnected"}
OPENAI_FAKE = os.path.join(harness.ROOT, "tests", "fakes", "openai", "server.py")

WELCOME = "Hello! How can I help you today?"
LONG_WELCOME = ("Hello! This is the Parley test agent calling about your appointment. "
                "We have several times available next week. Monday morning is free. "
                "Tuesday afternoon is also free. Wednesday is almost full. "
                "Please tell me which day suits you best.")
KEYWORDS = ["what is the price", "goodbye", "okay", "hello", "tuesday"]
RULES = [
    {"keywords": ["price"], "reply": "It costs ten dollars. Anything else?"},
    {"keywords": ["tuesday"], "reply": "Tuesday it is. See you then."},
    {"keywords": ["goodbye"], "reply": "Goodbye!", "hangup": True},
]


def setup(ctx):
    ctx.start_api()
    ctx.dialing = Dialing(ctx, fake_args=["--voice-cmd", "espeak-ng -s 150 --stdout {text}",
                                          "--max-call-seconds", "60"]).start()
    ctx.rec_dir = os.path.join(ctx.workdir, "pipeline-recordings")
    ctx.pipeline = ctx.dialing.start_pipeline(PL_PIPELINE_RECORDINGS_DIR=ctx.rec_dir)
    ctx.account, ctx.key = ctx.new_account("conversation", concurrency=50)
    ctx.openai_port = harness.stack.free_port()
    script = os.path.join(ctx.workdir, "openai-script.json")
    with open(script, "w") as f:
        json.dump({"rules": [
            {"match": "price", "reply": "The price is ten dollars. Anything else?"},
            {"match": "goodbye", "error": "midstream"},
        ]}, f)
    svc = harness.Service("fake-openai", dict(os.environ), ctx.openai_port, ctx.workdir)
    svc.start_cmd([sys.executable, OPENAI_FAKE, "--port", str(ctx.openai_port), "--script",
                   script])
    ctx.services["fake-openai"] = svc


def agent(ctx, carrier="twilio", welcome=WELCOME, llm=None, **task_config):
    body = copy.deepcopy(harness.AGENT_FOR_TESTS)
    body["agent_config"]["agent_welcome_message"] = welcome
    task = body["agent_config"]["tasks"][0]
    tools = task["tools_config"]
    tools["input"]["provider"] = tools["output"]["provider"] = carrier
    tools["transcriber"]["keywords"] = KEYWORDS
    tools["llm_agent"]["llm_config"] = llm or {
        "provider": "scripted", "model": "parley-scripted",
        "scripted": {"rules": RULES, "fallback": "Sorry, I did not get that."}}
    task["task_config"] = dict({"hangup_after_silence": 8, "call_terminate": 60,
                                "number_of_words_for_interruption": 2}, **task_config)
    r = ctx.http("POST", "/v2/agent", body, key=ctx.key)
    assert r.status == 200, r
    return r.json["agent_id"]


_SEQ = itertools.count(int(time.time()) % 100000)


def number(i):
    return f"+15{i}{next(_SEQ) % 1000000:06d}0006"


def place(ctx, agent_id, script, i=0):
    """Dials a fresh number whose callee says `script` (fake script items), returns the id."""
    to = number(i)
    for form in (to, to.lstrip("+")):  # Plivo's numbers come without '+'
        r = ctx.http("POST", "/_fake/voices", {"number": form, "script": script},
                     port=ctx.dialing.fake_port)
        assert r.status == 200, r
    r = ctx.http("POST", "/call", {"agent_id": agent_id, "recipient_phone_number": to},
                 key=ctx.key)
    assert r.status == 200, r
    return r.json["execution_id"]


def settle(ctx, eid, timeout=60):
    return wait_status(ctx, eid, FINAL, timeout)


def turns(ctx, eid):
    return calls.turns(ctx, eid, interrupted=True)


def finished(ctx, eid):
    """Waits for the pipeline's final store (usage, latency, recording) after the call ended."""
    harness.eventually(lambda: ctx.sql("SELECT usage_breakdown IS NOT NULL FROM executions"
                                       " WHERE id = :'p1'", eid)[0][0] == "t", timeout=10)
    row = ctx.sql("SELECT usage_breakdown, latency_data, recording_path, error_message"
                  " FROM executions WHERE id = :'p1'", eid)[0]
    return json.loads(row[0]), json.loads(row[1]), row[2], row[3]


def heard_by_callee(ctx, eid):
    """Text of what the callee heard, from the fake's recording."""
    return heard(ctx.dialing.record_dir, execution(ctx, eid)["telephony_data"]["provider_call_id"])


def roles(ts):
    return [t[0] for t in ts]


def test_conversation_on_each_carrier(ctx):
    """Welcome heard; the callee asks, hears the scripted answer; says goodbye; the agent's
    reply ends the call (llm_prompted_hangup) — on Twilio, Plivo and Exotel at once."""
    script = [{"silence_ms": 4500}, {"text": "what is the price"}, {"silence_ms": 4500},
              {"text": "goodbye"}, {"silence_ms": 10000}]
    ids = {c: place(ctx, agent(ctx, c), script, i) for i, c in enumerate(CARRIERS)}
    for carrier, eid in ids.items():
        assert settle(ctx, eid) == "call-disconnected", (carrier, status(ctx, eid))
        ts = turns(ctx, eid)
        assert ts[0] == ("assistant", WELCOME, False), (carrier, ts)
        assert ("user", "what is the price", False) in ts, (carrier, ts)
        assert ("assistant", "It costs ten dollars. Anything else?", False) in ts, (carrier, ts)
        assert ts[-2:] == [("user", "goodbye", False), ("assistant", "Goodbye!", False)], ts
        t = execution(ctx, eid)["telephony_data"]
        assert t["hangup_by"] == "Caller" and t["hangup_reason"] == "llm_prompted_hangup", t
        usage, latency, rec, err = finished(ctx, eid)
        assert usage["transcriber_duration"] > 5 and usage["synthesizer_characters"] >= len(
            WELCOME) + len("Goodbye!"), usage
        assert usage["llm_model"] == {"scripted": {"input": 0, "output": 0}} or \
            "parley-scripted" in usage["llm_model"], usage
        assert latency["time_to_first_audio"] is not None, latency
        for kind in ("transcriber", "llm", "synthesizer"):
            turn_lat = latency[kind]["turns"]
            assert [t["turn"] for t in turn_lat] == [1, 2], latency
            assert all(len(t["turn_latency"]) == 1 and t["turn_latency"][0] >= 0
                       for t in turn_lat), latency
        assert rec and os.path.exists(rec) and os.path.getsize(rec) > 8000 * 2 * 2 * 5, rec
        assert not err, err
        heard = heard_by_callee(ctx, eid)
        assert "hello" in heard or "help" in heard, (carrier, heard)
        assert "ten" in heard or "dollars" in heard or "costs" in heard, (carrier, heard)


def openai_llm(ctx):
    return {"provider": "openai", "model": "gpt-4o-mini", "api_key": "sk-fake",
            "base_url": f"http://127.0.0.1:{ctx.openai_port}/v1"}


def test_barge_in_trims_history_and_backchannel_does_not(ctx):
    a = agent(ctx, welcome=LONG_WELCOME, llm=openai_llm(ctx))
    barge = place(ctx, a, [{"silence_ms": 3500}, {"text": "what is the price"},
                           {"silence_ms": 20000}])
    calm = place(ctx, a, [{"silence_ms": 3000}, {"text": "okay"}, {"silence_ms": 20000}], 1)
    reply = ("assistant", "The price is ten dollars. Anything else?", False)
    ts = harness.eventually(lambda: reply in turns(ctx, barge) and turns(ctx, barge),
                            timeout=40, interval=0.2)
    assert ts[0][0] == "assistant" and ts[0][2], ts  # cut by the caller
    assert LONG_WELCOME.startswith(ts[0][1]) and len(ts[0][1]) < len(LONG_WELCOME), ts
    assert ts[1] == ("user", "what is the price", False), ts
    # The model is told what the caller heard, not the whole welcome.
    sent = [r["body"]["messages"] for r in ctx.http(
        "GET", "/fake/requests", port=ctx.openai_port).json if r["path"].endswith("completions")]
    asked = [m for m in sent if m[-1] == {"role": "user", "content": "what is the price"}]
    assert asked, sent
    assert {"role": "assistant", "content": ts[0][1]} in asked[0], asked[0]
    calm_turns = harness.eventually(lambda: turns(ctx, calm) or None, timeout=40, interval=0.2)
    assert calm_turns[0] == ("assistant", LONG_WELCOME, False), calm_turns
    assert all(t[0] == "assistant" for t in calm_turns), calm_turns  # "okay" was no turn
    for eid in (barge, calm):
        ctx.http("POST", f"/_fake/calls/{execution(ctx, eid)['telephony_data']['provider_call_id']}"
                 "/hangup", port=ctx.dialing.fake_port, raw=b"")
    for eid in (barge, calm):
        assert settle(ctx, eid) == "call-disconnected", status(ctx, eid)


def test_hangup_rules(ctx):
    silent = [{"silence_ms": 60000}]
    cases = {
        "inactivity": (agent(ctx, hangup_after_silence=3, call_hangup_message="Goodbye for now."),
                       "inactivity_timeout"),
        "online": (agent(ctx, hangup_after_silence=6, check_if_user_online=True,
                         trigger_user_online_message_after=2,
                         check_user_online_message="Are you still there?"),
                   "inactivity_timeout"),
        "terminate": (agent(ctx, hangup_after_silence=60, call_terminate=10), "call_terminate"),
    }
    ids = {k: place(ctx, a, silent, i) for i, (k, (a, _)) in enumerate(cases.items())}
    for k, eid in ids.items():
        assert settle(ctx, eid, timeout=40) == "call-disconnected", (k, status(ctx, eid))
        t = execution(ctx, eid)["telephony_data"]
        assert t["hangup_by"] == "Caller" and t["hangup_reason"] == cases[k][1], (k, t)
    assert turns(ctx, ids["inactivity"])[-1] == ("assistant", "Goodbye for now.", False)
    online = [t[1] for t in turns(ctx, ids["online"])]
    assert online == [WELCOME, "Are you still there?"], online
    d = execution(ctx, ids["terminate"])["telephony_data"]["duration"]
    assert 9 <= float(d) <= 16, d


def test_callee_hangs_up_and_llm_failure(ctx):
    caller_hangs_up = place(ctx, agent(ctx), [{"silence_ms": 1000}], 2)
    openai_agent = agent(ctx, llm=openai_llm(ctx))
    talk = place(ctx, openai_agent, [{"silence_ms": 4500}, {"text": "what is the price"},
                                     {"silence_ms": 5000}, {"text": "goodbye"},
                                     {"silence_ms": 20000}])
    eid = caller_hangs_up
    harness.eventually(lambda: turns(ctx, eid) or None, timeout=30)
    sid = execution(ctx, eid)["telephony_data"]["provider_call_id"]
    ctx.http("POST", f"/_fake/calls/{sid}/hangup", port=ctx.dialing.fake_port, raw=b"")
    assert settle(ctx, eid) == "call-disconnected"
    assert execution(ctx, eid)["telephony_data"]["hangup_by"] == "Callee"
    finished(ctx, eid)

    assert settle(ctx, talk, timeout=60) == "call-disconnected", status(ctx, talk)
    ts = turns(ctx, talk)
    assert ("assistant", "The price is ten dollars. Anything else?", False) in ts, ts
    t = execution(ctx, talk)["telephony_data"]
    assert t["hangup_reason"] == "llm_error", t
    usage, _, _, err = finished(ctx, talk)
    assert err and err.startswith("llm_error"), err
    assert usage["llm_model"]["gpt-4o-mini"]["input"] > 0, usage
    assert ts[-1][0] == "assistant" and "went wrong" in ts[-1][1], ts  # the fallback was said


def test_sigterm_drains_live_calls(ctx):
    """SIGTERM: the worker leaves the registry (a new call finds no capacity), its live call goes
    on to end by the agent's own rule, and then the process exits by itself."""
    a = agent(ctx, hangup_after_silence=5)
    live = place(ctx, a, [{"silence_ms": 60000}])
    harness.eventually(lambda: turns(ctx, live) or None, timeout=30)
    ctx.pipeline.proc.terminate()
    harness.eventually(lambda: ctx.http("GET", "/readyz", port=ctx.pipeline.port).status == 503,
                       timeout=5)
    late = place(ctx, a, [{"silence_ms": 60000}], 1)
    assert settle(ctx, late) == "error", status(ctx, late)
    assert execution(ctx, late)["error_message"] == "no media-pipeline capacity"
    assert settle(ctx, live) == "call-disconnected", status(ctx, live)
    assert execution(ctx, live)["telephony_data"]["hangup_reason"] == "inactivity_timeout"
    assert ctx.pipeline.proc.wait(timeout=20) == 0
    finished(ctx, live)
    ctx.pipeline = ctx.dialing.start_pipeline(PL_PIPELINE_RECORDINGS_DIR=ctx.rec_dir)
