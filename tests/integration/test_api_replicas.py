"""Two api replicas side by side on one Postgres and Redis: each serves every account, and a
change made through one is seen at once through the other (its execution cache is invalidated
by the bus event, not by the cache's time limit)."""
import time

import harness


def setup(ctx):
    # A long cache limit, so only the bus event can explain a fresh read.
    ctx.a = ctx.start_api("api-a", PL_API_EXEC_CACHE_MS=60000)
    ctx.b = ctx.start_api("api-b", PL_API_EXEC_CACHE_MS=60000)
    ctx.account, ctx.key = ctx.new_account("replicas")
    r = ctx.http("POST", "/v2/agent", harness.AGENT_FOR_TESTS, key=ctx.key, port=ctx.a.port)
    ctx.agent_id = r.json["agent_id"]


def test_both_replicas_serve_the_same_data(ctx):
    r = ctx.http("POST", "/call", {"agent_id": ctx.agent_id,
                                   "recipient_phone_number": "+14155550100"},
                 key=ctx.key, port=ctx.b.port)
    assert r.status == 200, r
    eid = r.json["execution_id"]
    for svc in (ctx.a, ctx.b):
        g = ctx.http("GET", f"/executions/{eid}", key=ctx.key, port=svc.port)
        assert g.status == 200 and g.json["status"] == "queued", g


def test_change_through_b_is_seen_through_a(ctx):
    eid = ctx.http("POST", "/call", {"agent_id": ctx.agent_id,
                                     "recipient_phone_number": "+14155550100"},
                   key=ctx.key, port=ctx.a.port).json["execution_id"]
    # A's subscriber has dialled B's publisher: discovery polls the registry every second
    time.sleep(1.5)
    first = ctx.http("GET", f"/executions/{eid}", key=ctx.key, port=ctx.a.port)
    assert first.json["status"] == "queued"
    again = ctx.http("GET", f"/executions/{eid}", key=ctx.key, port=ctx.a.port)
    assert again.json == first.json  # served from A's cache
    stop = ctx.http("POST", f"/call/{eid}/stop", key=ctx.key, port=ctx.b.port)
    assert stop.status == 200, stop
    harness.eventually(
        lambda: ctx.http("GET", f"/executions/{eid}", key=ctx.key,
                         port=ctx.a.port).json["status"] == "stopped", timeout=1.0)


def test_cache_time_limit_bounds_staleness_without_events(ctx):
    """A write no event announces (here: straight SQL) shows once the time limit passes."""
    c = ctx.start_api("api-c", PL_API_EXEC_CACHE_MS=500)
    eid = ctx.http("POST", "/call", {"agent_id": ctx.agent_id,
                                     "recipient_phone_number": "+14155550100"},
                   key=ctx.key, port=c.port).json["execution_id"]
    assert ctx.http("GET", f"/executions/{eid}", key=ctx.key, port=c.port).json["status"] == \
        "queued"
    ctx.sql("UPDATE executions SET status = 'ringing' WHERE id = :'p1'", eid)
    harness.eventually(lambda: ctx.http("GET", f"/executions/{eid}", key=ctx.key,
                                        port=c.port).json["status"] == "ringing", timeout=1.5)
