"""The api service over real HTTP, Postgres, Redis and nng: every endpoint and status code,
validation, auth and cross-account isolation, idempotency, and what POST /call leaves behind."""
import copy
import datetime
import os
import subprocess
import threading
import time

import harness

AGENT = {
    "agent_config": {
        "agent_name": "Alfred",
        "agent_welcome_message": "Hello {name}",
        "webhook_url": None,
        "agent_type": "other",
        "calling_guardrails": {"call_start_hour": 9, "call_end_hour": 17},
        "tasks": [{
            "task_type": "conversation",
            "tools_config": {
                "llm_agent": {"agent_type": "simple_llm_agent", "agent_flow_type": "streaming",
                              "llm_config": {"provider": "openai", "model": "gpt-4.1-mini",
                                             "max_tokens": 150, "temperature": 0.2}},
                "synthesizer": {"provider": "elevenlabs",
                                "provider_config": {"voice": "Nila", "voice_id": "V1",
                                                    "model": "eleven_turbo_v2_5"},
                                "stream": True, "buffer_size": 250, "audio_format": "wav"},
                "transcriber": {"provider": "deepgram", "model": "nova-2", "language": "en",
                                "stream": True, "sampling_rate": 16000, "encoding": "linear16",
                                "endpointing": 100},
                "input": {"provider": "twilio", "format": "wav"},
                "output": {"provider": "twilio", "format": "wav"},
                "api_tools": None,
            },
            "toolchain": {"execution": "parallel",
                          "pipelines": [["transcriber", "llm", "synthesizer"]]},
            "task_config": {"hangup_after_silence": 10, "number_of_words_for_interruption": 2,
                            "call_terminate": 90, "backchanneling": False},
        }],
    },
    "agent_prompts": {"task_1": {"system_prompt": "You are Alfred."}},
}


def agent_body(**changes):
    """AGENT with dotted-path changes, e.g. {"tasks.0.task_config.call_terminate": 5}."""
    body = copy.deepcopy(AGENT)
    for path, value in changes.items():
        node = body
        parts = path.split(".")
        for p in parts[:-1]:
            node = node[int(p)] if isinstance(node, list) else node[p]
        last = parts[-1]
        if isinstance(node, list):
            node[int(last)] = value
        elif value is DELETE:
            node.pop(last, None)
        else:
            node[last] = value
    return body


DELETE = object()


def setup(ctx):
    ctx.start_api(PL_API_THREADS=32)
    ctx.account, ctx.key = ctx.new_account("alice", concurrency=7)
    ctx.other_account, ctx.other_key = ctx.new_account("bob")
    r = ctx.http("POST", "/v2/agent", AGENT, key=ctx.key)
    assert r.status == 200, r
    ctx.agent_id = r.json["agent_id"]


def count(ctx, sql, *params):
    return int(ctx.sql(sql, *params)[0][0])


def totals(ctx):
    """Everything a write could leave behind, to prove a refused request wrote nothing."""
    return (count(ctx, "SELECT count(*) FROM executions"),
            count(ctx, "SELECT count(*) FROM execution_events"),
            count(ctx, "SELECT count(*) FROM agents"),
            count(ctx, "SELECT count(*) FROM idempotency_keys"),
            int(ctx.redis.cli("XLEN", "parley:dial") or 0),
            int(ctx.redis.cli("ZCARD", "parley:delayed") or 0))


def call(ctx, key=None, headers=None, **body):
    body.setdefault("agent_id", ctx.agent_id)
    body.setdefault("recipient_phone_number", "+14155550100")
    return ctx.http("POST", "/call", body, key=key or ctx.key, headers=headers)


# ---------------------------------------------------------------- auth and isolation

def test_auth_required_everywhere(ctx):
    denied = {"error": 401, "message": "Access denied", "detail": "Access denied"}
    paths = [("GET", "/v2/agent/all"), ("GET", f"/v2/agent/{ctx.agent_id}"),
             ("POST", "/call"), ("GET", "/user/me"),
             ("GET", "/executions/00000000-0000-0000-0000-000000000000")]
    for method, path in paths:
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"},
                        {"Authorization": "Bearer "}):
            r = ctx.http(method, path, headers=headers, raw=b"{}" if method == "POST" else None)
            assert r.status == 401, (method, path, headers, r)
            assert r.json == denied, r


def test_revoked_key_is_refused(ctx):
    acc, key = ctx.new_account("carol")
    # a key never used before the revocation (the in-process cache holds only used keys)
    ctx.sql("UPDATE api_keys SET revoked_at = now() WHERE account_id = :'p1'", acc)
    assert ctx.http("GET", "/user/me", key=key).status == 401


def test_other_account_sees_404(ctx):
    before = totals(ctx)
    eid = call(ctx).json["execution_id"]
    before = totals(ctx)
    ok = ctx.other_key
    a = ctx.agent_id
    for method, path, body in [("GET", f"/v2/agent/{a}", None),
                               ("PUT", f"/v2/agent/{a}", AGENT),
                               ("PATCH", f"/v2/agent/{a}", {"agent_config": {"agent_name": "x"}}),
                               ("DELETE", f"/v2/agent/{a}", None),
                               ("POST", f"/v2/agent/{a}/stop", None),
                               ("GET", f"/v2/agent/{a}/executions", None),
                               ("GET", f"/executions/{eid}", None),
                               ("GET", f"/executions/{eid}/log", None),
                               ("POST", f"/call/{eid}/stop", None)]:
        r = ctx.http(method, path, body, key=ok)
        assert r.status == 404, (method, path, r)
        assert r.json["error"] == 404 and r.json["message"], r
    r = call(ctx, key=ok)
    assert r.status == 404 and "agent_id" in r.json["message"], r
    assert totals(ctx) == before
    assert ctx.http("GET", "/v2/agent/all", key=ok).json == []
    # and the owner still sees everything unchanged
    assert ctx.http("GET", f"/v2/agent/{a}", key=ctx.key).json["agent_name"] == "Alfred"
    assert ctx.http("GET", f"/executions/{eid}", key=ctx.key).json["status"] == "queued"


# ---------------------------------------------------------------- agents

def test_agent_lifecycle(ctx):
    r = ctx.http("POST", "/v2/agent", agent_body(**{"agent_config.agent_name": "Life"}),
                 key=ctx.key)
    assert r.status == 200 and r.json["status"] == "created" and r.json["state"] == "created", r
    aid = r.json["agent_id"]
    g = ctx.http("GET", f"/v2/agent/{aid}", key=ctx.key)
    assert g.status == 200, g
    for field in ("id", "agent_name", "agent_type", "agent_status", "created_at", "updated_at",
                  "tasks", "agent_prompts"):
        assert field in g.json, field
    assert g.json["id"] == aid and g.json["agent_name"] == "Life"
    assert g.json["agent_prompts"] == AGENT["agent_prompts"]
    assert g.json["tasks"][0]["tools_config"]["llm_agent"]["llm_config"]["model"] == "gpt-4.1-mini"
    all_ = ctx.http("GET", "/v2/agent/all", key=ctx.key)
    assert all_.status == 200 and isinstance(all_.json, list)
    assert all_.json[0]["id"] == aid  # newest first
    assert ctx.agent_id in [a["id"] for a in all_.json]

    put = agent_body(**{"agent_config.agent_name": "Life2",
                        "agent_config.webhook_url": "https://example.com/hook",
                        "agent_prompts": {"task_1": {"system_prompt": "new"}}})
    r = ctx.http("PUT", f"/v2/agent/{aid}", put, key=ctx.key)
    assert r.status == 200 and r.json == {"agent_id": aid, "status": "updated",
                                          "state": "updated"}, r
    g = ctx.http("GET", f"/v2/agent/{aid}", key=ctx.key).json
    assert g["agent_name"] == "Life2" and g["webhook_url"] == "https://example.com/hook"
    assert g["agent_prompts"]["task_1"]["system_prompt"] == "new"

    patch = {"agent_config": {"agent_name": "Patched", "agent_welcome_message": "Yo",
                              "telephony_provider": "plivo",
                              "synthesizer": {"provider": "openai",
                                              "provider_config": {"voice": "alloy"}}}}
    r = ctx.http("PATCH", f"/v2/agent/{aid}", patch, key=ctx.key)
    assert r.status == 200 and r.json == {"message": "success", "state": "updated"}, r
    g = ctx.http("GET", f"/v2/agent/{aid}", key=ctx.key).json
    tools = g["tasks"][0]["tools_config"]
    assert g["agent_name"] == "Patched" and g["agent_welcome_message"] == "Yo"
    assert tools["input"]["provider"] == "plivo" and tools["output"]["provider"] == "plivo"
    assert tools["synthesizer"]["provider"] == "openai"
    assert g["agent_prompts"]["task_1"]["system_prompt"] == "new"  # untouched by PATCH

    r = ctx.http("PATCH", f"/v2/agent/{aid}", {"agent_prompts": {"task_1": {"system_prompt": "p"}}},
                 key=ctx.key)
    assert r.status == 200, r
    assert ctx.http("GET", f"/v2/agent/{aid}", key=ctx.key).json["agent_prompts"] == \
        {"task_1": {"system_prompt": "p"}}

    r = ctx.http("DELETE", f"/v2/agent/{aid}", key=ctx.key)
    assert r.status == 200 and r.json == {"message": "success", "state": "deleted"}, r
    assert ctx.http("GET", f"/v2/agent/{aid}", key=ctx.key).status == 404
    assert ctx.http("DELETE", f"/v2/agent/{aid}", key=ctx.key).status == 404
    assert ctx.http("PUT", f"/v2/agent/{aid}", AGENT, key=ctx.key).status == 404
    assert aid not in [a["id"] for a in ctx.http("GET", "/v2/agent/all", key=ctx.key).json]
    r = call(ctx, agent_id=aid)
    assert r.status == 404, r


def test_pipelines_accept_both_documented_forms(ctx):
    for pipelines in ([["transcriber", "llm", "synthesizer"]], ["transcriber", "llm", "synthesizer"]):
        body = agent_body(**{"agent_config.tasks.0.toolchain.pipelines": pipelines})
        assert ctx.http("POST", "/v2/agent", body, key=ctx.key).status == 200


def test_agent_with_extraction_task_and_tools(ctx):
    body = agent_body()
    body["agent_config"]["tasks"].append({
        "task_type": "extraction",
        "tools_config": {"llm_agent": {"llm_config": {"provider": "openai", "model": "gpt-4o",
                                                      "extraction_details": "name: the name"}}}})
    body["agent_config"]["tasks"][0]["tools_config"]["api_tools"] = {
        "tools": [{"name": "check_slot", "description": "checks", "parameters": {}}],
        "tools_params": {"check_slot": {"url": "https://example.com/slots", "method": "POST",
                                        "param": "{\"d\": \"%(day)s\"}"}}}
    r = ctx.http("POST", "/v2/agent", body, key=ctx.key)
    assert r.status == 200, r


VALIDATION_CASES = [
    ({"agent_config": DELETE}, "agent_config: is required"),
    ({"agent_prompts": DELETE}, "agent_prompts: is required"),
    ({"agent_config.agent_name": DELETE}, "agent_config.agent_name: is required"),
    ({"agent_config.agent_name": ""}, "agent_config.agent_name: must not be empty"),
    ({"agent_config.agent_name": 42}, "agent_config.agent_name: must be a string"),
    ({"agent_config.tasks": []}, "agent_config.tasks: must be a non-empty array"),
    ({"agent_config.tasks": DELETE}, "agent_config.tasks: is required"),
    ({"agent_config.webhook_url": "not a url"}, "agent_config.webhook_url"),
    ({"agent_config.webhook_url": "ftp://x.com/h"}, "agent_config.webhook_url"),
    ({"agent_config.calling_guardrails.call_start_hour": 24},
     "agent_config.calling_guardrails.call_start_hour: must be between 0 and 23"),
    ({"agent_config.tasks.0.task_type": "chitchat"}, "agent_config.tasks[0].task_type: unknown"),
    ({"agent_config.tasks.0.tools_config.llm_agent.llm_config.provider": "acme"},
     "agent_config.tasks[0].tools_config.llm_agent.llm_config.provider: unknown LLM provider"),
    ({"agent_config.tasks.0.tools_config.llm_agent.llm_config.temperature": 3},
     "llm_config.temperature: must be between 0 and 2"),
    ({"agent_config.tasks.0.tools_config.llm_agent.llm_config.max_tokens": "many"},
     "llm_config.max_tokens: must be an integer"),
    ({"agent_config.tasks.0.tools_config.synthesizer.provider": "polly"},
     "tools_config.synthesizer.provider: unknown synthesizer provider 'polly'"),
    ({"agent_config.tasks.0.tools_config.synthesizer": DELETE},
     "agent_config.tasks[0].tools_config.synthesizer: is required"),
    ({"agent_config.tasks.0.tools_config.transcriber.provider": "whisper"},
     "tools_config.transcriber.provider: unknown transcriber provider"),
    ({"agent_config.tasks.0.tools_config.transcriber.sampling_rate": 100},
     "transcriber.sampling_rate: must be between 8000 and 48000"),
    ({"agent_config.tasks.0.tools_config.input.provider": "vonage"},
     "tools_config.input.provider: unknown telephony provider 'vonage'"),
    ({"agent_config.tasks.0.task_config.hangup_after_silence": 0},
     "task_config.hangup_after_silence: must be between 1 and 3600"),
    ({"agent_config.tasks.0.task_config.number_of_words_for_interruption": 2.5},
     "task_config.number_of_words_for_interruption: must be an integer"),
    ({"agent_config.tasks.0.task_config.call_terminate": -5},
     "task_config.call_terminate: must be between"),
    ({"agent_config.tasks.0.task_config.backchanneling": "yes"},
     "task_config.backchanneling: must be true or false"),
    ({"agent_config.tasks.0.task_config.whitelist_phone_numbers": ["12345"]},
     "task_config.whitelist_phone_numbers: item 0 is not an E.164 number"),
    ({"agent_config.tasks.0.toolchain.execution": "sometimes"},
     "toolchain.execution: unknown execution mode"),
    ({"agent_config.tasks.0.toolchain.pipelines": [["transcriber", "brain"]]},
     "toolchain.pipelines[0]"),
    ({"agent_prompts": {"task_1": {}}}, "agent_prompts.task_1.system_prompt: is required"),
    ({"agent_prompts": {"intro": {"system_prompt": "x"}}}, "agent_prompts.intro: keys must be"),
    ({"agent_prompts": "be nice"}, "agent_prompts: must be an object"),
]


def test_agent_validation_names_the_field(ctx):
    before = totals(ctx)
    for changes, message in VALIDATION_CASES:
        body = agent_body(**changes)
        for method, path in (("POST", "/v2/agent"), ("PUT", f"/v2/agent/{ctx.agent_id}")):
            r = ctx.http(method, path, body, key=ctx.key)
            assert r.status == 422, (changes, r)
            assert message in r.json["message"], (changes, message, r.json["message"])
            assert r.json["error"] == 422 and r.json["detail"] == r.json["message"]
    assert totals(ctx) == before
    assert ctx.http("GET", f"/v2/agent/{ctx.agent_id}", key=ctx.key).json["agent_name"] == "Alfred"


def test_agent_patch_validation(ctx):
    a = ctx.agent_id
    for body, status, message in [
            ({"agent_config": {"tasks": []}}, 422, "agent_config.tasks: cannot be patched"),
            ({"agent_config": {"webhook_url": "nope"}}, 422, "agent_config.webhook_url"),
            ({"agent_config": {"synthesizer": {"provider": "polly"}}}, 422, "synthesizer.provider"),
            ({"agent_config": {"telephony_provider": "vonage"}}, 422, "input.provider"),
            ({}, 422, "nothing to patch")]:
        r = ctx.http("PATCH", f"/v2/agent/{a}", body, key=ctx.key)
        assert r.status == status and message in r.json["message"], (body, r)
    g = ctx.http("GET", f"/v2/agent/{a}", key=ctx.key).json
    assert g["agent_name"] == "Alfred" and g["webhook_url"] is None


def test_bad_request_bodies(ctx):
    before = totals(ctx)
    for raw, status, msg in [(b"{not json", 400, "not valid JSON"), (b"", 400, "empty"),
                             (b"[1,2]", 400, "must be a JSON object"),
                             (b'{"a":1} x', 400, "not valid JSON"),
                             (b"\"str\"", 400, "must be a JSON object")]:
        for path in ("/v2/agent", "/call"):
            r = ctx.http("POST", path, raw=raw, key=ctx.key)
            assert r.status == status and msg in r.json["message"], (path, raw, r)
    deep = b'{"a":' * 800 + b"1" + b"}" * 800
    for path in ("/v2/agent", "/call"):
        r = ctx.http("POST", path, raw=deep, key=ctx.key)
        assert r.status == 400 and "deeper than 64 levels" in r.json["message"], (path, r)
    r = ctx.http("PATCH", f"/v2/agent/{ctx.agent_id}", raw=deep, key=ctx.key)
    assert r.status == 400, r
    for raw in (b'{"agent_id": "A\xff"}', b'{"user_data": {"k": "\xc3"}}', b'{"a": "x\x00y"}'):
        r = ctx.http("POST", "/call", raw=raw, key=ctx.key)
        assert r.status == 400 and "UTF-8" in r.json["message"], (raw, r)
    r = ctx.http("POST", "/v2/agent", raw=b'{"agent_config": {"agent_name": "A\xff"}}', key=ctx.key)
    assert r.status == 400, r
    big = b'{"agent_id": "' + b"x" * (1024 * 1024 + 10) + b'"}'
    for path in ("/v2/agent", "/call", f"/v2/agent/{ctx.agent_id}"):
        method = "PUT" if path.startswith("/v2/agent/") else "POST"
        r = ctx.http(method, path, raw=big, key=ctx.key)
        assert r.status == 413 and r.json["error"] == 413, (path, r)
    assert totals(ctx) == before
    # the server still answers after all that
    assert ctx.http("GET", "/user/me", key=ctx.key).status == 200


def test_path_ids_must_be_uuids(ctx):
    for method, path in [("GET", "/v2/agent/abc"), ("GET", "/executions/123"),
                         ("POST", "/call/xyz/stop"), ("GET", "/v2/agent/abc/executions")]:
        r = ctx.http(method, path, key=ctx.key)
        assert r.status == 422 and "is not a UUID" in r.json["message"], (path, r)


def test_unknown_path_and_method(ctx):
    assert ctx.http("GET", "/nowhere", key=ctx.key).status == 404
    r = ctx.http("DELETE", "/call", key=ctx.key)
    assert r.status == 405 and r.json["error"] == 405, r
    for path in ("/healthz", "/readyz", "/metrics"):
        assert ctx.http("POST", path, raw=b"{}").status == 405, path


# ---------------------------------------------------------------- calls

def test_call_leaves_one_execution_one_job_one_event(ctx):
    events = subprocess.Popen([os.path.join(harness.ROOT, "build/bin/parley-events"),
                               "exec.status."], env=ctx.env(), stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    try:
        time.sleep(0.5)  # the subscriber has dialled the api's publisher
        before = totals(ctx)
        r = call(ctx, recipient_phone_number="+919876543210", from_phone_number="+14155550111",
                 user_data={"name": "Bruce"}, agent_data={"voice_id": "Sam"},
                 retry_config={"enabled": True, "max_retries": 2,
                               "retry_on_statuses": ["busy"], "retry_intervals_minutes": [1, 5]},
                 bypass_call_guardrails=True)
        assert r.status == 200, r
        assert set(r.json) == {"message", "status", "execution_id"}
        assert r.json["message"] == "done" and r.json["status"] == "queued"
        eid = r.json["execution_id"]
        after = totals(ctx)
        assert after[0] == before[0] + 1 and after[1] == before[1] + 1 and after[4] == before[4] + 1
        assert after[2:4] == before[2:4] and after[5] == before[5]
        row = ctx.sql("SELECT status, to_number, from_number, user_data->>'name', provider,"
                      " bypass_call_guardrails FROM executions WHERE id = :'p1'", eid)[0]
        assert row == ["queued", "+919876543210", "+14155550111", "Bruce", "twilio", "t"], row
        assert ctx.sql("SELECT status, from_status IS NULL FROM execution_events"
                       " WHERE execution_id = :'p1'", eid) == [["queued", "t"]]
        last = ctx.redis.cli("XREVRANGE", "parley:dial", "+", "-", "COUNT", "1").split("\n")
        assert last[1:] == ["execution_id", eid, "attempt", "0"], last
        line = harness.eventually(lambda: _read_event(events, eid), timeout=5)
        assert line.startswith("exec.status.queued {"), line
    finally:
        events.terminate()


def _read_event(proc, eid):
    import select
    while select.select([proc.stdout], [], [], 0.1)[0]:
        line = proc.stdout.readline()
        if eid in line:
            return line
    return None


def test_execution_object_shape(ctx):
    eid = call(ctx, user_data={"name": "Bruce"}).json["execution_id"]
    r = ctx.http("GET", f"/executions/{eid}", key=ctx.key)
    assert r.status == 200, r
    e = r.json
    for field in ("id", "agent_id", "batch_id", "status", "conversation_duration", "total_cost",
                  "cost_breakdown", "usage_breakdown", "transcript", "extracted_data", "summary",
                  "answered_by_voice_mail", "error_message", "created_at", "updated_at",
                  "scheduled_at", "user_data", "context_details", "telephony_data",
                  "transfer_call_data", "batch_run_details", "latency_data"):
        assert field in e, field
    assert e["id"] == eid and e["agent_id"] == ctx.agent_id and e["status"] == "queued"
    assert e["conversation_duration"] == 0 and e["total_cost"] == 0
    assert e["transcript"] is None and e["extracted_data"] is None
    assert e["cost_breakdown"] == {"llm": 0, "network": 0, "platform": 0, "synthesizer": 0,
                                   "transcriber": 0}
    assert e["context_details"] == {"name": "Bruce"}
    t = e["telephony_data"]
    assert t["to_number"] == "+14155550100" and t["call_type"] == "outbound"
    assert t["provider"] == "twilio" and t["recording_url"] is None
    assert t["duration"] is None and t["hangup_by"] is None
    datetime.datetime.fromisoformat(e["created_at"].replace("Z", "+00:00"))


def test_scheduled_call(ctx):
    before = totals(ctx)
    when = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=2))
    local = when.astimezone(datetime.timezone(datetime.timedelta(hours=5, minutes=30)))
    r = call(ctx, scheduled_at=local.isoformat(timespec="milliseconds"))
    assert r.status == 200 and r.json["status"] == "queued", r
    eid = r.json["execution_id"]
    after = totals(ctx)
    assert after[0] == before[0] + 1 and after[4] == before[4] and after[5] == before[5] + 1
    e = ctx.http("GET", f"/executions/{eid}", key=ctx.key).json
    assert e["status"] == "scheduled"
    got = datetime.datetime.fromisoformat(e["scheduled_at"].replace("Z", "+00:00"))
    assert abs((got - when).total_seconds()) < 0.01, (got, when)
    score = float(ctx.redis.cli("ZSCORE", "parley:delayed",
                                '{"s":"dial","f":["execution_id","%s","attempt","0"]}' % eid))
    assert abs(score / 1000 - when.timestamp()) < 0.01
    # the stop removes it from the delayed set too
    r = ctx.http("POST", f"/call/{eid}/stop", key=ctx.key)
    assert r.status == 200 and r.json == {"message": "done", "status": "stopped",
                                          "execution_id": eid}, r
    assert totals(ctx)[5] == before[5]


def test_scheduled_at_forms(ctx):
    soon = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
    for text in (soon.strftime("%Y-%m-%dT%H:%M:%SZ"), soon.strftime("%Y-%m-%dT%H:%M:%S"),
                 soon.strftime("%Y-%m-%dT%H:%M:%S.000+00:00")):
        r = call(ctx, scheduled_at=text)
        assert r.status == 200, (text, r)
        e = ctx.http("GET", f"/executions/{r.json['execution_id']}", key=ctx.key).json
        assert e["status"] == "scheduled", text
    r = call(ctx, scheduled_at=None)  # null means now
    assert r.status == 200
    assert ctx.http("GET", f"/executions/{r.json['execution_id']}", key=ctx.key).json[
        "status"] == "queued"


CALL_ERRORS = [
    ({"agent_id": None}, 422, "agent_id: is required"),
    ({"agent_id": "not-a-uuid"}, 422, "agent_id: must be a UUID"),
    ({"agent_id": 12}, 422, "agent_id: must be a UUID"),
    ({"agent_id": "00000000-0000-0000-0000-000000000000"}, 404, "agent_id: agent"),
    ({"recipient_phone_number": None}, 422, "recipient_phone_number: is required"),
    ({"recipient_phone_number": "4155550100"}, 422, "recipient_phone_number: must be an E.164"),
    ({"recipient_phone_number": "+1 415 555 0100"}, 422, "recipient_phone_number"),
    ({"recipient_phone_number": "+0123456789"}, 422, "recipient_phone_number"),
    ({"recipient_phone_number": 14155550100}, 422, "recipient_phone_number"),
    ({"from_phone_number": "12"}, 422, "from_phone_number: must be an E.164"),
    ({"scheduled_at": "tomorrow at noon"}, 422, "scheduled_at: must be an ISO 8601"),
    ({"scheduled_at": "2024-02-30T10:00:00Z"}, 422, "scheduled_at: must be an ISO 8601"),
    ({"scheduled_at": "2020-01-01T10:00:00Z"}, 422, "scheduled_at: 2020-01-01T10:00:00Z is in the past"),
    ({"scheduled_at": 1700000000}, 422, "scheduled_at"),
    ({"user_data": "name=Bruce"}, 422, "user_data: must be an object"),
    ({"agent_data": []}, 422, "agent_data: must be an object"),
    ({"agent_data": {"voice_id": 5}}, 422, "agent_data.voice_id: must be a string"),
    ({"bypass_call_guardrails": "yes"}, 422, "bypass_call_guardrails: must be true or false"),
    ({"retry_config": {"max_retries": 5}}, 422, "retry_config.max_retries"),
    ({"retry_config": {"retry_on_statuses": ["completed"]}}, 422, "retry_config.retry_on_statuses"),
    ({"retry_config": {"retry_intervals_minutes": "30"}}, 422, "retry_config.retry_intervals_minutes"),
    ({"retry_config": {"enabled": "true"}}, 422, "retry_config.enabled"),
    ({"retry_config": []}, 422, "retry_config: must be an object"),
]


def test_call_validation_writes_nothing(ctx):
    before = totals(ctx)
    for changes, status, message in CALL_ERRORS:
        body = {"agent_id": ctx.agent_id, "recipient_phone_number": "+14155550100"}
        body.update(changes)
        body = {k: v for k, v in body.items() if not (v is None and k in ("agent_id",
                                                                          "recipient_phone_number"))}
        r = ctx.http("POST", "/call", body, key=ctx.key)
        assert r.status == status, (changes, r)
        assert message in r.json["message"], (changes, message, r.json)
    assert totals(ctx) == before


def test_idempotency_key(ctx):
    before = totals(ctx)
    h = {"Idempotency-Key": "order-42"}
    r1 = call(ctx, headers=h, user_data={"n": 1})
    r2 = call(ctx, headers=h, user_data={"n": 1})
    assert r1.status == 200 and r2.status == 200, (r1, r2)
    assert r1.json == r2.json
    after = totals(ctx)
    assert after[0] == before[0] + 1 and after[1] == before[1] + 1 and after[4] == before[4] + 1
    assert after[3] == before[3] + 1
    r3 = call(ctx, headers=h, user_data={"n": 2})
    assert r3.status == 422 and "Idempotency-Key" in r3.json["message"], r3
    # keys are per account: bob may use the same key text for his own call
    bob_agent = ctx.http("POST", "/v2/agent", AGENT, key=ctx.other_key).json["agent_id"]
    r4 = call(ctx, key=ctx.other_key, headers=h, agent_id=bob_agent, user_data={"n": 1})
    assert r4.status == 200 and r4.json["execution_id"] != r1.json["execution_id"]
    r5 = call(ctx, headers={"Idempotency-Key": "k" * 256})
    assert r5.status == 422
    r6 = call(ctx, headers={"Idempotency-Key": "caf\xe9"})  # Latin-1 bytes on the wire
    assert r6.status == 422 and "Idempotency-Key" in r6.json["message"], r6


def test_idempotency_under_concurrency(ctx):
    before = totals(ctx)
    results = []

    def go():
        results.append(call(ctx, headers={"Idempotency-Key": "race-1"}))

    threads = [threading.Thread(target=go) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.status == 200 for r in results), results
    assert len({r.json["execution_id"] for r in results}) == 1
    after = totals(ctx)
    assert after[0] == before[0] + 1 and after[4] == before[4] + 1


def test_stop_call(ctx):
    eid = call(ctx).json["execution_id"]
    r = ctx.http("POST", f"/call/{eid}/stop", key=ctx.key)
    assert r.status == 200 and r.json["status"] == "stopped", r
    assert ctx.http("GET", f"/executions/{eid}", key=ctx.key).json["status"] == "stopped"
    assert ctx.sql("SELECT status, from_status FROM execution_events WHERE execution_id = :'p1'"
                   " ORDER BY id", eid) == [["queued", ""], ["stopped", "queued"]]
    r = ctx.http("POST", f"/call/{eid}/stop", key=ctx.key)
    assert r.status == 409 and "is stopped" in r.json["message"], r
    # a call already dialling cannot be stopped
    eid2 = call(ctx).json["execution_id"]
    ctx.sql("UPDATE executions SET status = 'ringing' WHERE id = :'p1'", eid2)
    r = ctx.http("POST", f"/call/{eid2}/stop", key=ctx.key)
    assert r.status == 409 and "is ringing" in r.json["message"], r
    r = ctx.http("POST", "/call/00000000-0000-0000-0000-000000000000/stop", key=ctx.key)
    assert r.status == 404


def test_agent_stop_stops_waiting_calls(ctx):
    aid = ctx.http("POST", "/v2/agent", AGENT, key=ctx.key).json["agent_id"]
    q1 = call(ctx, agent_id=aid).json["execution_id"]
    later = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)).isoformat()
    s1 = call(ctx, agent_id=aid, scheduled_at=later).json["execution_id"]
    busy = call(ctx, agent_id=aid).json["execution_id"]
    ctx.sql("UPDATE executions SET status = 'in-progress' WHERE id = :'p1'", busy)
    r = ctx.http("POST", f"/v2/agent/{aid}/stop", key=ctx.key)
    assert r.status == 200, r
    assert sorted(r.json["stopped_executions"]) == sorted([q1, s1])
    for eid, status in ((q1, "stopped"), (s1, "stopped"), (busy, "in-progress")):
        assert ctx.http("GET", f"/executions/{eid}", key=ctx.key).json["status"] == status
    assert ctx.http("POST", f"/v2/agent/{aid}/stop", key=ctx.key).json == {
        "stopped_executions": []}


def test_agent_executions_pagination_and_filters(ctx):
    aid = ctx.http("POST", "/v2/agent", AGENT, key=ctx.key).json["agent_id"]
    ids = [call(ctx, agent_id=aid).json["execution_id"] for _ in range(23)]
    ctx.sql("UPDATE executions SET status = 'completed', answered_by_voice_mail = true"
            " WHERE id = :'p1'", ids[0])
    r = ctx.http("GET", f"/v2/agent/{aid}/executions", key=ctx.key)
    assert r.status == 200, r
    page = r.json
    assert (page["page_number"], page["page_size"], page["total"], page["has_more"]) == \
        (1, 20, 23, True)
    assert len(page["data"]) == 20 and page["data"][0]["id"] == ids[-1]  # newest first
    p2 = ctx.http("GET", f"/v2/agent/{aid}/executions?page_number=2", key=ctx.key).json
    assert len(p2["data"]) == 3 and p2["has_more"] is False
    assert {e["id"] for e in page["data"] + p2["data"]} == set(ids)
    p3 = ctx.http("GET", f"/v2/agent/{aid}/executions?page_number=3&page_size=50",
                  key=ctx.key).json
    assert p3["data"] == [] and p3["total"] == 23
    done = ctx.http("GET", f"/v2/agent/{aid}/executions?status=completed", key=ctx.key).json
    assert [e["id"] for e in done["data"]] == [ids[0]] and done["total"] == 1
    vm = ctx.http("GET", f"/v2/agent/{aid}/executions?answered_by_voice_mail=true",
                  key=ctx.key).json
    assert vm["total"] == 1
    assert ctx.http("GET", f"/v2/agent/{aid}/executions?call_type=inbound",
                    key=ctx.key).json["total"] == 0
    assert ctx.http("GET", f"/v2/agent/{aid}/executions?provider=twilio",
                    key=ctx.key).json["total"] == 23
    future = "2999-01-01T00:00:00.000Z"
    assert ctx.http("GET", f"/v2/agent/{aid}/executions?from={future}",
                    key=ctx.key).json["total"] == 0
    assert ctx.http("GET", f"/v2/agent/{aid}/executions?to={future}&from=2000-01-01T00:00:00Z",
                    key=ctx.key).json["total"] == 23
    for q, field in (("page_size=51", "page_size"), ("page_number=0", "page_number"),
                     ("batch_id=%FF", "batch_id"), ("provider=%C3", "provider"),
                     ("page_size=abc", "page_size"), ("status=done", "status"),
                     ("call_type=sideways", "call_type"), ("from=yesterday", "from"),
                     ("answered_by_voice_mail=maybe", "answered_by_voice_mail")):
        r = ctx.http("GET", f"/v2/agent/{aid}/executions?{q}", key=ctx.key)
        assert r.status == 422 and r.json["message"].startswith(field), (q, r)
    r = ctx.http("GET", "/v2/agent/00000000-0000-0000-0000-000000000000/executions", key=ctx.key)
    assert r.status == 404


def test_execution_log(ctx):
    eid = call(ctx).json["execution_id"]
    r = ctx.http("GET", f"/executions/{eid}/log", key=ctx.key)
    assert r.status == 200 and r.json == {"status": "success", "data": []}, r
    ctx.sql("INSERT INTO execution_logs (execution_id, type, component, provider, data)"
            " VALUES (:'p1', 'request', 'llm', 'openai', 'hello')", eid)
    d = ctx.http("GET", f"/executions/{eid}/log", key=ctx.key).json["data"]
    assert len(d) == 1 and d[0]["type"] == "request" and d[0]["component"] == "llm"
    assert d[0]["provider"] == "openai" and d[0]["data"] == "hello" and d[0]["created_at"]
    assert ctx.http("GET", "/executions/00000000-0000-0000-0000-000000000000/log",
                    key=ctx.key).status == 404


def test_user_me(ctx):
    acc, key = ctx.new_account("dora", concurrency=3)
    me = ctx.http("GET", "/user/me", key=key)
    assert me.status == 200, me
    assert me.json == {"id": acc, "name": "dora", "email": "dora@example.com", "wallet": 100,
                       "concurrency": {"max": 3, "current": 0}}
    aid = ctx.http("POST", "/v2/agent", AGENT, key=key).json["agent_id"]
    for status in ("in-progress", "ringing", "completed"):
        eid = call(ctx, key=key, agent_id=aid).json["execution_id"]
        ctx.sql("UPDATE executions SET status = :'p1' WHERE id = :'p2'", status, eid)
    assert ctx.http("GET", "/user/me", key=key).json["concurrency"]["current"] == 2


def test_rate_limit(ctx):
    """PL_API_RATE_LIMIT per account: over it, 429 with Retry-After and the error body, nothing
    done (a refused POST /call writes no execution); other accounts unaffected; a bad key is
    still 401; the budget refills at the rate. On a replica of its own, limited to 4 per second
    in bursts of 4."""
    svc = ctx.start_api(name="api-limited", PL_API_RATE_LIMIT=4, PL_API_RATE_BURST=4)
    port = svc.port
    acc, key = ctx.new_account("erin")
    _, other = ctx.new_account("fay")
    aid = ctx.http("POST", "/v2/agent", AGENT, key=key).json["agent_id"]  # on the default api
    body = {"agent_id": aid, "recipient_phone_number": "+14155550123"}
    got = [ctx.http("GET", "/user/me", key=key, port=port).status for _ in range(4)]
    assert got == [200] * 4, got
    before = count(ctx, "SELECT count(*) FROM executions WHERE account_id = :'p1'", acc)
    r = ctx.http("POST", "/call", body, key=key, port=port)
    assert r.status == 429 and r.json["error"] == 429, r
    assert "rate limit" in r.json["message"] and "4 requests per second" in r.json["message"], r
    assert int(r.headers["Retry-After"]) >= 1, r.headers
    assert count(ctx, "SELECT count(*) FROM executions WHERE account_id = :'p1'", acc) == before
    assert ctx.http("GET", "/user/me", key=other, port=port).status == 200  # another account
    assert ctx.http("GET", "/user/me", key="pl_wrong", port=port).status == 401
    assert ctx.http("GET", "/healthz", port=port).status == 200  # no key, no budget
    time.sleep(0.6)  # 4 per second: two tokens back
    r = ctx.http("POST", "/call", body, key=key, port=port)
    assert r.status == 200, r
    assert count(ctx, "SELECT count(*) FROM executions WHERE account_id = :'p1'", acc) == before + 1
    m = ctx.http("GET", "/metrics", port=port).text
    assert 'pl_http_requests_total{route="call_create",code="4xx"} 1' in m, m[:2000]
    svc.stop()


def test_ops_endpoints(ctx):
    assert ctx.http("GET", "/healthz").json == {"status": "ok"}
    assert ctx.http("GET", "/readyz").json == {"status": "ready"}
    m = ctx.http("GET", "/metrics")
    assert m.status == 200 and "text/plain" in m.headers["Content-Type"]
    assert 'pl_http_requests_total{route="call_create",code="2xx"}' in m.text
    assert 'pl_http_request_seconds_bucket{route="execution_get",le="+Inf"}' in m.text


def test_readyz_reports_lost_redis_and_recovers(ctx):
    ctx.redis.stop()
    try:
        r = ctx.http("GET", "/readyz")
        assert r.status == 503 and "redis" in r.json["message"], r
    finally:
        ctx.redis.start()
    harness.eventually(lambda: ctx.http("GET", "/readyz").status == 200, timeout=5)
    # and calls flow again through a reconnected pool
    harness.eventually(lambda: call(ctx).status == 200, timeout=5)
