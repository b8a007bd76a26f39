"""Phone numbers and inbound setup in the api (docs/inbound.md, "Phone numbers (api)") over real
HTTP and Postgres: registration, listing, soft delete, the one-live-owner rule across accounts,
validation, linking a number to an agent and the URL answered per carrier, unlinking, and
isolation between accounts."""
import os
import re
import subprocess
import threading

import harness

BASE = "https://gw.example.com/parley"  # the api is started with a trailing slash: trimmed
DENIED = {"error": 401, "message": "Access denied", "detail": "Access denied"}
MISSING = "0b5f3a52-7c1e-4a8e-9d62-1f0c2b3a4d5e"  # a UUID no one owns
NUMBER_FIELDS = {"id", "phone_number", "telephony_provider", "credentials_ref", "agent_id",
                 "rented", "price", "renewal_at", "created_at", "updated_at",
                 "humanized_created_at", "humanized_updated_at"}
ID32 = re.compile(r"^[0-9a-f]{32}$")
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")  # as agents and executions

_next = [0]


def fresh_number():
    """A number no other test of the suite registers (+1 415 55x xxxx)."""
    _next[0] += 1
    return f"+1415551{_next[0]:04d}"


def setup(ctx):
    ctx.start_api(PL_INBOUND_BASE_URL=BASE + "/")
    ctx.account, ctx.key = ctx.new_account("alice")
    ctx.other_account, ctx.other_key = ctx.new_account("bob")
    ctx.agent = new_agent(ctx, ctx.key)
    ctx.other_agent = new_agent(ctx, ctx.other_key)


def new_agent(ctx, key):
    r = ctx.http("POST", "/v2/agent", harness.AGENT_FOR_TESTS, key=key)
    assert r.status == 200, r
    return r.json["agent_id"]


def register(ctx, number=None, provider="twilio", key=None, expect=201, **extra):
    body = {"phone_number": number or fresh_number(), "telephony_provider": provider, **extra}
    r = ctx.http("POST", "/phone-numbers", body, key=key or ctx.key)
    assert r.status == expect, (body, r)
    return r.json


def setup_inbound(ctx, number_id, agent_id=None, key=None, **extra):
    body = {"agent_id": agent_id or ctx.agent, "phone_number_id": number_id, **extra}
    return ctx.http("POST", "/inbound/setup", body, key=key or ctx.key)


def dashed(id32):
    return f"{id32[:8]}-{id32[8:12]}-{id32[12:16]}-{id32[16:20]}-{id32[20:]}"


def row(ctx, id32, *columns):
    return ctx.sql(f"SELECT {', '.join(columns)} FROM phone_numbers WHERE id = :'p1'", id32)[0]


def live_numbers(ctx):
    return int(ctx.sql("SELECT count(*) FROM phone_numbers WHERE deleted_at IS NULL")[0][0])


# ---------------------------------------------------------------- auth

def test_auth_required_everywhere(ctx):
    n = register(ctx)
    for method, path, body in [
            ("POST", "/phone-numbers", {"phone_number": "+14155550100",
                                        "telephony_provider": "twilio"}),
            ("GET", "/phone-numbers/all", None), ("GET", f"/phone-numbers/{n['id']}", None),
            ("DELETE", f"/phone-numbers/{n['id']}", None),
            ("POST", "/inbound/setup", {"agent_id": ctx.agent, "phone_number_id": n["id"]}),
            ("POST", "/inbound/unlink", {"phone_number_id": n["id"]})]:
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
            r = ctx.http(method, path, body, headers=headers)
            assert r.status == 401 and r.json == DENIED, (method, path, headers, r)
    got = ctx.http("GET", f"/phone-numbers/{n['id']}", key=ctx.key).json
    assert got["agent_id"] is None and got["updated_at"] == n["updated_at"], got


# ---------------------------------------------------------------- register, read, delete

def test_register_get_list_delete(ctx):
    number = fresh_number()
    n = register(ctx, number, "plivo", unknown_field="ignored", rented=True)
    assert set(n) == NUMBER_FIELDS, n
    assert ID32.match(n["id"]), n
    assert (n["phone_number"], n["telephony_provider"], n["credentials_ref"]) == \
        (number, "plivo", "default")
    assert n["agent_id"] is None and n["rented"] is False
    assert n["price"] is None and n["renewal_at"] is None
    assert TS.match(n["created_at"]) and n["updated_at"] == n["created_at"], n
    assert n["humanized_created_at"] == "just now" == n["humanized_updated_at"], n
    assert row(ctx, n["id"], "account_id", "phone_number") == [ctx.account, number]

    for form in (n["id"], n["id"].upper(), dashed(n["id"]), dashed(n["id"]).upper()):
        r = ctx.http("GET", f"/phone-numbers/{form}", key=ctx.key)
        assert r.status == 200 and r.json == n, (form, r)

    later = register(ctx, credentials_ref="acme_eu_2")
    assert later["credentials_ref"] == "acme_eu_2"
    assert register(ctx, credentials_ref=None)["credentials_ref"] == "default"
    listed = ctx.http("GET", "/phone-numbers/all", key=ctx.key)
    assert listed.status == 200 and isinstance(listed.json, list), listed
    ids = [x["id"] for x in listed.json]
    assert ids.index(later["id"]) < ids.index(n["id"]), ids  # newest first
    assert [x for x in listed.json if x["id"] == n["id"]] == [n]

    r = ctx.http("DELETE", f"/phone-numbers/{dashed(n['id'])}", key=ctx.key)
    assert r.status == 200 and r.json == {
        "message": "The phone number has been removed from your account", "state": "deleted"}, r
    assert row(ctx, n["id"], "deleted_at IS NOT NULL") == ["t"]
    r = ctx.http("GET", f"/phone-numbers/{n['id']}", key=ctx.key)
    assert r.status == 404 and r.json["error"] == 404 and n["id"] in r.json["message"], r
    assert ctx.http("DELETE", f"/phone-numbers/{n['id']}", key=ctx.key).status == 404
    assert n["id"] not in [x["id"] for x in ctx.http("GET", "/phone-numbers/all",
                                                     key=ctx.key).json]


def test_list_is_per_account(ctx):
    acc, key = ctx.new_account("carol")
    assert ctx.http("GET", "/phone-numbers/all", key=key).json == []
    mine = register(ctx, key=key)
    assert [x["id"] for x in ctx.http("GET", "/phone-numbers/all", key=key).json] == [mine["id"]]
    assert mine["id"] not in [x["id"] for x in ctx.http("GET", "/phone-numbers/all",
                                                        key=ctx.key).json]


def test_a_number_is_live_in_one_account(ctx):
    number = fresh_number()
    first = register(ctx, number, "twilio")
    for key in (ctx.key, ctx.other_key):
        r = ctx.http("POST", "/phone-numbers",
                     {"phone_number": number, "telephony_provider": "twilio"}, key=key)
        assert r.status == 409 and number in r.json["message"], r
        assert r.json["message"].startswith("phone_number:"), r
    # the same digits at another carrier are another registration
    register(ctx, number, "exotel")
    assert ctx.sql("SELECT count(*) FROM phone_numbers WHERE phone_number = :'p1'",
                   number) == [["2"]]
    # once deleted, the number may be registered again, by anyone
    assert ctx.http("DELETE", f"/phone-numbers/{first['id']}", key=ctx.key).status == 200
    again = register(ctx, number, "twilio", key=ctx.other_key)
    assert again["id"] != first["id"] and again["agent_id"] is None
    register(ctx, number, "twilio", expect=409)
    assert ctx.http("DELETE", f"/phone-numbers/{again['id']}", key=ctx.other_key).status == 200
    register(ctx, number, "twilio")


def test_concurrent_registrations_one_wins(ctx):
    number, results = fresh_number(), []

    def go(key):
        results.append(ctx.http("POST", "/phone-numbers", {"phone_number": number,
                                                            "telephony_provider": "plivo"},
                                key=key))

    threads = [threading.Thread(target=go, args=(k,)) for k in [ctx.key, ctx.other_key] * 6]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status for r in results) == [201] + [409] * 11, results
    assert ctx.sql("SELECT count(*) FROM phone_numbers WHERE phone_number = :'p1'",
                   number) == [["1"]]


REGISTER_ERRORS = [
    ({"phone_number": None}, "phone_number: is required"),
    ({"phone_number": "4155550100"}, "phone_number: must be an E.164 number"),
    ({"phone_number": "+1 415 555 0100"}, "phone_number: must be an E.164 number"),
    ({"phone_number": "+0123456789"}, "phone_number: must be an E.164 number"),
    ({"phone_number": "+123456"}, "phone_number: must be an E.164 number"),
    ({"phone_number": "+1234567890123456"}, "phone_number: must be an E.164 number"),
    ({"phone_number": 14155550100}, "phone_number: must be an E.164 number"),
    ({"telephony_provider": None}, "telephony_provider: is required"),
    ({"telephony_provider": "vonage"}, "telephony_provider: must be twilio, plivo or exotel"),
    ({"telephony_provider": "Twilio"}, "telephony_provider: must be twilio, plivo or exotel"),
    ({"telephony_provider": 1}, "telephony_provider: must be twilio, plivo or exotel"),
    ({"credentials_ref": ""}, "credentials_ref: must be 1 to 32 characters"),
    ({"credentials_ref": "Acme"}, "credentials_ref: must be 1 to 32 characters"),
    ({"credentials_ref": "acme-eu"}, "credentials_ref: must be 1 to 32 characters"),
    ({"credentials_ref": "a" * 33}, "credentials_ref: must be 1 to 32 characters"),
    ({"credentials_ref": 7}, "credentials_ref: must be 1 to 32 characters"),
]


def test_register_validation_names_the_field(ctx):
    before = live_numbers(ctx)
    for changes, message in REGISTER_ERRORS:
        body = {"phone_number": fresh_number(), "telephony_provider": "twilio", **changes}
        body = {k: v for k, v in body.items() if v is not None}
        r = ctx.http("POST", "/phone-numbers", body, key=ctx.key)
        assert r.status == 422, (changes, r)
        assert r.json["message"].startswith(message), (changes, message, r.json)
        assert r.json["error"] == 422 and r.json["detail"] == r.json["message"], r
    for raw, message in [(b"{nope", "not valid JSON"), (b"", "empty"),
                         (b"[1]", "must be a JSON object")]:
        for path in ("/phone-numbers", "/inbound/setup", "/inbound/unlink"):
            r = ctx.http("POST", path, raw=raw, key=ctx.key)
            assert r.status == 400 and message in r.json["message"], (path, raw, r)
    assert live_numbers(ctx) == before
    # the longest and shortest numbers E.164 allows
    register(ctx, "+123456789012345")
    register(ctx, "+1234567")


def test_path_ids(ctx):
    n = register(ctx)
    for bad in ("abc", n["id"][:-1], n["id"] + "0", "g" * 32, dashed(n["id"])[:-1] + "-",
                n["id"][:8] + "-" + n["id"][8:]):
        for method in ("GET", "DELETE"):
            r = ctx.http(method, f"/phone-numbers/{bad}", key=ctx.key)
            assert r.status == 422 and r.json["message"].startswith("phone_number_id:"), \
                (method, bad, r)
    for method in ("GET", "DELETE"):
        assert ctx.http(method, f"/phone-numbers/{MISSING}", key=ctx.key).status == 404
        assert ctx.http(method, f"/phone-numbers/{MISSING.replace('-', '')}",
                        key=ctx.key).status == 404
    assert ctx.http("PUT", f"/phone-numbers/{n['id']}", key=ctx.key).status == 405
    assert ctx.http("POST", "/phone-numbers/all", key=ctx.key).status == 405
    assert ctx.http("GET", "/inbound/setup", key=ctx.key).status == 405


def test_other_accounts_number_is_not_found(ctx):
    n = register(ctx)
    assert setup_inbound(ctx, n["id"]).status == 200
    for method in ("GET", "DELETE"):
        r = ctx.http(method, f"/phone-numbers/{n['id']}", key=ctx.other_key)
        assert r.status == 404, (method, r)
    r = ctx.http("POST", "/inbound/unlink", {"phone_number_id": n["id"]}, key=ctx.other_key)
    assert r.status == 404 and r.json["message"] == "phone_number_id: phone number not found", r
    got = ctx.http("GET", f"/phone-numbers/{n['id']}", key=ctx.key).json
    assert got["agent_id"] == ctx.agent, got  # untouched
    assert row(ctx, n["id"], "deleted_at IS NULL") == ["t"]


# ---------------------------------------------------------------- inbound setup and unlink

def test_setup_answers_the_carrier_url(ctx):
    for provider in ("twilio", "plivo", "exotel"):
        n = register(ctx, provider=provider)
        secret_before = row(ctx, n["id"], "inbound_secret")[0]
        r = setup_inbound(ctx, n["id"])
        assert r.status == 200, (provider, r)
        assert set(r.json) == {"url", "phone_number", "id"}, r
        assert (r.json["phone_number"], r.json["id"]) == (n["phone_number"], n["id"]), r
        agent, secret, later = row(ctx, n["id"], "agent_id", "inbound_secret",
                                   "updated_at > created_at")
        assert agent == ctx.agent and later == "t", (provider, agent)
        assert re.match(r"^[0-9a-f]{48}$", secret) and secret != secret_before, secret
        if provider == "exotel":
            assert r.json["url"] == f"{BASE}/inbound/exotel/{n['id']}/{secret}", r
        else:
            assert r.json["url"] == f"{BASE}/inbound/{provider}/{n['id']}", r
        got = ctx.http("GET", f"/phone-numbers/{n['id']}", key=ctx.key).json
        assert got["agent_id"] == ctx.agent and got["updated_at"] > got["created_at"], got


def test_setup_again_moves_the_number_and_rotates_the_secret(ctx):
    n = register(ctx, provider="exotel")
    first = setup_inbound(ctx, n["id"]).json["url"]
    second_agent = new_agent(ctx, ctx.key)
    r = setup_inbound(ctx, dashed(n["id"]).upper(), agent_id=second_agent.replace("-", ""))
    assert r.status == 200 and r.json["id"] == n["id"], r
    second = r.json["url"]
    assert first != second and first.rsplit("/", 1)[0] == second.rsplit("/", 1)[0], (first, second)
    assert second.rsplit("/", 1)[1] == row(ctx, n["id"], "inbound_secret")[0]
    got = ctx.http("GET", f"/phone-numbers/{n['id']}", key=ctx.key).json
    assert got["agent_id"] == second_agent, got


def test_setup_needs_the_callers_agent_and_number(ctx):
    n = register(ctx)
    bob_number = register(ctx, key=ctx.other_key)
    doomed = new_agent(ctx, ctx.key)
    assert ctx.http("DELETE", f"/v2/agent/{doomed}", key=ctx.key).status == 200
    gone = register(ctx)
    assert ctx.http("DELETE", f"/phone-numbers/{gone['id']}", key=ctx.key).status == 200
    agent_nf, number_nf = "agent_id: agent not found", "phone_number_id: phone number not found"
    for agent, number, message in [(ctx.other_agent, n["id"], agent_nf),
                                   (doomed, n["id"], agent_nf),
                                   (MISSING, n["id"], agent_nf),
                                   (ctx.agent, bob_number["id"], number_nf),
                                   (ctx.agent, gone["id"], number_nf),
                                   (ctx.agent, MISSING, number_nf)]:
        r = setup_inbound(ctx, number, agent_id=agent)
        assert r.status == 404 and r.json["message"] == message, (agent, number, r)
    for id32 in (n["id"], bob_number["id"], gone["id"]):
        assert row(ctx, id32, "agent_id IS NULL") == ["t"], id32
    # and bob cannot link his number to alice's agent either
    r = setup_inbound(ctx, bob_number["id"], agent_id=ctx.agent, key=ctx.other_key)
    assert r.status == 404 and r.json["message"] == agent_nf, r


SETUP_ERRORS = [
    ({"agent_id": None}, "agent_id: is required"),
    ({"agent_id": "not-a-uuid"}, "agent_id: must be a UUID"),
    ({"agent_id": 5}, "agent_id: must be a UUID"),
    ({"phone_number_id": None}, "phone_number_id: is required"),
    ({"phone_number_id": "123"}, "phone_number_id: must be a UUID"),
    ({"allow_multiple": "yes"}, "allow_multiple: must be true or false"),
    ({"ivr_config": "on"}, "ivr_config: must be an object"),
    ({"ivr_config": {"enabled": "true"}}, "ivr_config.enabled: must be true or false"),
    ({"ivr_config": {"enabled": True, "welcome_message": "Hi"}},
     "ivr_config: IVR is not supported"),
]


def test_setup_validation_names_the_field(ctx):
    n = register(ctx)
    for changes, message in SETUP_ERRORS:
        body = {"agent_id": ctx.agent, "phone_number_id": n["id"], **changes}
        body = {k: v for k, v in body.items() if v is not None}
        r = ctx.http("POST", "/inbound/setup", body, key=ctx.key)
        assert r.status == 422 and r.json["message"].startswith(message), (changes, r)
    assert row(ctx, n["id"], "agent_id", "updated_at = created_at") == ["", "t"]
    # what is accepted: allow_multiple (ignored), an IVR that is off, unknown fields
    for extra in ({"allow_multiple": True}, {"ivr_config": {"enabled": False, "steps": []}},
                  {"ivr_config": {}}, {"ivr_config": None}, {"something": 1}):
        r = setup_inbound(ctx, n["id"], **extra)
        assert r.status == 200 and r.json["url"].startswith(BASE + "/inbound/twilio/"), (extra, r)


def test_unlink(ctx):
    n = register(ctx, provider="exotel")
    url = setup_inbound(ctx, n["id"]).json["url"]
    secret = row(ctx, n["id"], "inbound_secret")[0]
    r = ctx.http("POST", "/inbound/unlink", {"phone_number_id": dashed(n["id"])}, key=ctx.key)
    assert r.status == 200 and r.json == {"url": None, "phone_number": n["phone_number"],
                                          "id": n["id"]}, r
    got = ctx.http("GET", f"/phone-numbers/{n['id']}", key=ctx.key).json
    assert got["agent_id"] is None, got
    assert row(ctx, n["id"], "inbound_secret")[0] == secret  # the next setup rotates it
    # idempotent: unlinking an unlinked number answers the same and changes nothing
    r2 = ctx.http("POST", "/inbound/unlink", {"phone_number_id": n["id"]}, key=ctx.key)
    assert r2.status == 200 and r2.json == r.json, r2
    assert ctx.http("GET", f"/phone-numbers/{n['id']}", key=ctx.key).json == got
    # linking again issues a new URL
    assert setup_inbound(ctx, n["id"]).json["url"] != url
    for body, status, message in [({}, 422, "phone_number_id: is required"),
                                  ({"phone_number_id": "x"}, 422,
                                   "phone_number_id: must be a UUID"),
                                  ({"phone_number_id": MISSING}, 404,
                                   "phone_number_id: phone number not found")]:
        r = ctx.http("POST", "/inbound/unlink", body, key=ctx.key)
        assert r.status == status and r.json["message"].startswith(message), (body, r)


def test_delete_unlinks(ctx):
    n = register(ctx)
    assert setup_inbound(ctx, n["id"]).status == 200
    assert ctx.http("DELETE", f"/phone-numbers/{n['id']}", key=ctx.key).status == 200
    assert row(ctx, n["id"], "agent_id", "deleted_at IS NOT NULL") == ["", "t"]
    for path, body in (("/inbound/unlink", {"phone_number_id": n["id"]}),
                       ("/inbound/setup", {"phone_number_id": n["id"], "agent_id": ctx.agent})):
        assert ctx.http("POST", path, body, key=ctx.key).status == 404, path


# ---------------------------------------------------------------- humanized times

def test_humanized_times(ctx):
    n = register(ctx)
    for created, updated, want_created, want_updated in [
            ("59 seconds", "0 seconds", "just now", "just now"),
            ("61 seconds", "119 seconds", "1 minute ago", "1 minute ago"),
            ("5 minutes 3 seconds", "2 hours 10 minutes", "5 minutes ago", "2 hours ago"),
            ("1 hour", "25 hours", "1 hour ago", "1 day ago"),
            ("3 days 23 hours", "400 days", "3 days ago", "400 days ago"),
            ("-5 minutes", "-1 second", "just now", "just now")]:  # a clock behind ours
        ctx.sql("UPDATE phone_numbers SET created_at = now() - :'p2'::interval,"
                " updated_at = now() - :'p3'::interval WHERE id = :'p1'", n["id"], created,
                updated)
        got = ctx.http("GET", f"/phone-numbers/{n['id']}", key=ctx.key).json
        assert (got["humanized_created_at"], got["humanized_updated_at"]) == \
            (want_created, want_updated), (created, updated, got)
    listed = [x for x in ctx.http("GET", "/phone-numbers/all", key=ctx.key).json
              if x["id"] == n["id"]]
    assert listed[0]["humanized_created_at"] == "just now"


# ---------------------------------------------------------------- configuration

def test_inbound_base_url_is_checked_at_start(ctx):
    api = os.path.join(harness.ROOT, "build", "bin", "api")
    for bad in ("ftp://gw.example.com", "gw.example.com", "https://", "https://gw/x?y=1",
                "http://gw/#top", "http://gw .example.com"):
        r = subprocess.run([api], env=ctx.env(PL_INBOUND_BASE_URL=bad, PL_API_PORT=0),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=10)
        assert r.returncode == 2 and "PL_INBOUND_BASE_URL" in r.stderr, (bad, r.returncode,
                                                                          r.stderr)
    # the default: the local gateway
    svc = ctx.start_api("api-default")
    try:
        n = register(ctx)
        r = ctx.http("POST", "/inbound/setup", {"agent_id": ctx.agent, "phone_number_id": n["id"]},
                     key=ctx.key, port=svc.port)
        assert r.status == 200 and r.json["url"] == \
            f"http://127.0.0.1:8090/inbound/twilio/{n['id']}", r
    finally:
        svc.stop()
