"""Batch calling over real HTTP, Postgres, Redis and nng: multipart CSV uploads validated row by
row, scheduling into one execution + outbox row + dial job per valid contact, the batch's
computed status and counts, stop, delete, isolation between accounts, and uploads that are
refused without writing anything."""
import datetime
import json
import os
import select
import subprocess
import time
import uuid

import harness

NUMBERS_FROM = ["+14155550901", "+14155550902", "+14155550903"]
BAD_ROWS = {  # data index -> (line text, reason fragment)
    10: ("4155550010,Bad,Austin", "contact_number: '4155550010' is not an E.164 number"),
    25: (",Empty,Boston", "contact_number: is empty"),
    50: ("+14155550050,Extra,Chicago,extra", "has 4 fields, the header row has 3"),
    75: ("+0123456789,Zero,Denver", "contact_number: '+0123456789' is not an E.164 number"),
    99: ("+1415abc0099,Letters,Miami", "is not an E.164 number"),
}
BLANK_AFTER = 60  # an empty line follows this data index: not a row, but a line


def setup(ctx):
    ctx.start_api()
    ctx.account, ctx.key = ctx.new_account("batcher")
    ctx.other_account, ctx.other_key = ctx.new_account("outsider")
    ctx.agent_id = agent(ctx, ctx.key)
    ctx.other_agent = agent(ctx, ctx.other_key)


def agent(ctx, key):
    r = ctx.http("POST", "/v2/agent", harness.AGENT_FOR_TESTS, key=key)
    assert r.status == 200, r
    return r.json["agent_id"]


# ---------------------------------------------------------------- helpers

def multipart(fields=(), files=(), boundary=None, quoted=False):
    """(body, headers) of a multipart/form-data request. fields: (name, str|bytes) pairs;
    files: (name, filename, bytes) triples."""
    b = boundary or "----parley" + uuid.uuid4().hex
    out = bytearray()
    for name, value in fields:
        out += f'--{b}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += value.encode() if isinstance(value, str) else value
        out += b"\r\n"
    for name, filename, data in files:
        out += (f'--{b}\r\nContent-Disposition: form-data; name="{name}"; '
                f'filename="{filename}"\r\nContent-Type: text/csv\r\n\r\n').encode()
        out += data + b"\r\n"
    out += f"--{b}--\r\n".encode()
    param = f'"{b}"' if quoted else b
    return bytes(out), {"Content-Type": f"multipart/form-data; boundary={param}"}


def upload(ctx, csv, key=None, agent_id=None, filename="contacts.csv", **fields):
    form = [("agent_id", agent_id or ctx.agent_id)] + list(fields.items())
    body, headers = multipart(form, [("file", filename, csv)])
    return ctx.http("POST", "/batches", raw=body, headers=headers, key=key or ctx.key)


def contacts_csv(n, first=0):
    rows = ["contact_number,name"] + [f"+1415556{i:04d},Person {i}" for i in range(first, first + n)]
    return ("\n".join(rows) + "\n").encode()


def new_batch(ctx, n=3, **fields):
    r = upload(ctx, contacts_csv(n), **fields)
    assert r.status == 200, r
    return r.json["batch_id"]


def schedule(ctx, batch_id, when=None, key=None, form=None, **extra):
    fields = form if form is not None else [("scheduled_at", when or past())]
    body, headers = multipart(fields + list(extra.items()))
    return ctx.http("POST", f"/batches/{batch_id}/schedule", raw=body, headers=headers,
                    key=key or ctx.key)


def past():
    return "2020-01-01T00:00:00Z"


def future(hours=2):
    return datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=hours)


def count(ctx, sql, *params):
    return int(ctx.sql(sql, *params)[0][0])


def totals(ctx):
    """Everything a batch request could write, to prove a refused one wrote nothing."""
    return (count(ctx, "SELECT count(*) FROM batches"),
            count(ctx, "SELECT count(*) FROM batch_contacts"),
            count(ctx, "SELECT count(*) FROM batches WHERE deleted_at IS NOT NULL"),
            count(ctx, "SELECT count(*) FROM executions"),
            count(ctx, "SELECT count(*) FROM execution_events"),
            ctx.sql("SELECT COALESCE(string_agg(status || updated_at::text, ',' ORDER BY id), '')"
                    " FROM batches"),
            int(ctx.redis.cli("XLEN", "parley:dial") or 0),
            int(ctx.redis.cli("ZCARD", "parley:delayed") or 0))


def dial_jobs(ctx):
    """execution_id -> attempt of every entry of the dial stream."""
    raw = ctx.redis.cli("XRANGE", "parley:dial", "-", "+").split("\n")
    jobs = {}
    for i, line in enumerate(raw):
        if line == "execution_id":
            jobs[raw[i + 1]] = raw[i + 3]
    return jobs


def member(eid, attempt="0"):
    return '{"s":"dial","f":["execution_id","%s","attempt","%s"]}' % (eid, attempt)


def batch_executions(ctx, batch_id):
    return ctx.sql("SELECT id, status FROM executions WHERE batch_id = :'p1' ORDER BY id",
                   batch_id)


# ---------------------------------------------------------------- the 100-row batch

def hundred_rows():
    """The CSV of the main scenario: BOM, CRLF, a quoted field with a comma and a doubled
    quote, an empty line, 5 bad rows, and a trailing row of empty fields as spreadsheets write.
    Returns (bytes, [valid (row, number, name, city)])."""
    lines, valid = ["contact_number,name,city"], []
    for i in range(100):
        if i in BAD_ROWS:
            lines.append(BAD_ROWS[i][0])
        else:
            number, name = f"+1415555{i:04d}", f"Name {i}"
            city = 'Springfield, "IL"' if i % 7 == 0 else f"City{i}"
            quoted = '"Springfield, ""IL"""' if i % 7 == 0 else city
            lines.append(f"{number},{name},{quoted}")
            valid.append((i + 2, number, name, city))
        if i == BLANK_AFTER:
            lines.append("")
    lines.append(",,")
    return ("\ufeff" + "\r\n".join(lines) + "\r\n").encode(), valid


def test_upload_validates_every_row(ctx):
    csv, valid = hundred_rows()
    r = upload(ctx, csv, filename="C:\\exports\\q3 leads.csv",
               from_phone_numbers=json.dumps(NUMBERS_FROM),
               retry_config='{"enabled": true, "max_retries": 2, "retry_intervals_minutes": [5]}')
    assert r.status == 200, r
    j = r.json
    assert len(j["batch_id"]) == 32 and int(j["batch_id"], 16) >= 0, j
    assert j["status"] == "created" and j["state"] == "created", j
    assert j["total_contacts"] == 100 and j["valid_contacts"] == 95, j
    assert j["file_name"] == "q3 leads.csv", j
    got = {(x["row"], x["line"]): x["reason"] for x in j["invalid_contacts"]}
    want_rows = {(i + 2, i + 2 + (1 if i > BLANK_AFTER else 0)): BAD_ROWS[i][1] for i in BAD_ROWS}
    assert set(got) == set(want_rows), (got, want_rows)
    for k, fragment in want_rows.items():
        assert fragment in got[k], (k, got[k], fragment)
    ctx.batch_id, ctx.valid = j["batch_id"], valid

    b = ctx.batch_id
    row = ctx.sql("SELECT status, file_name, from_phone_numbers::text, retry_config->>'max_retries',"
                  " total_contacts, valid_contacts, jsonb_array_length(invalid_rows)"
                  " FROM batches WHERE id = :'p1'", b)[0]
    assert row[0] == "created" and row[1] == "q3 leads.csv", row
    assert json.loads(row[2]) == NUMBERS_FROM and row[3] == "2", row
    assert row[4:] == ["100", "95", "5"], row
    stored = ctx.sql("SELECT row_number, contact_number, variables->>'name', variables->>'city',"
                     " variables ? 'contact_number', execution_id IS NULL"
                     " FROM batch_contacts WHERE batch_id = :'p1' ORDER BY row_number", b)
    assert [(int(s[0]), s[1], s[2], s[3]) for s in stored] == valid, stored[:3]
    assert all(s[4] == "f" and s[5] == "t" for s in stored)
    # nothing is dialled before the batch is scheduled
    assert count(ctx, "SELECT count(*) FROM executions WHERE batch_id = :'p1'", b) == 0

    g = ctx.http("GET", f"/batches/{b}", key=ctx.key)
    assert g.status == 200, g
    assert g.json["status"] == "created" and g.json["scheduled_at"] is None, g
    assert g.json["execution_status"] == {} and g.json["from_phone_numbers"] == NUMBERS_FROM
    assert len(g.json["invalid_contacts"]) == 5


def test_schedule_now_creates_one_execution_per_valid_contact(ctx):
    b = ctx.batch_id
    events = subprocess.Popen([os.path.join(harness.ROOT, "build/bin/parley-events"),
                               "exec.status."], env=ctx.env(), stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)  # the subscriber has dialled the api's publisher
        before = totals(ctx)
        jobs_before = dial_jobs(ctx)
        r = schedule(ctx, b, past())
        assert r.status == 200, r
        assert r.json["message"] == "success" and r.json["state"] == "scheduled", r
        assert r.json["batch_status"] == "queued" and r.json["executions"] == 95, r
        after = totals(ctx)
        assert after[3] == before[3] + 95 and after[4] == before[4] + 95, (before, after)
        assert after[6] == before[6] + 95 and after[7] == before[7], (before, after)

        rows = ctx.sql("SELECT e.id, e.status, e.to_number, e.from_number, e.user_data::text,"
                       " e.retry_config->>'max_retries', e.provider, c.row_number, e.scheduled_at"
                       " IS NULL FROM executions e JOIN batch_contacts c ON c.execution_id = e.id"
                       " WHERE e.batch_id = :'p1' ORDER BY c.row_number", b)
        assert len(rows) == 95
        for k, (row, (n, number, name, city)) in enumerate(zip(rows, ctx.valid)):
            assert row[1] == "queued" and row[2] == number and int(row[7]) == n, row
            assert row[3] == NUMBERS_FROM[k % 3], (k, row)  # round-robin in row order
            assert json.loads(row[4]) == {"name": name, "city": city}, row
            assert row[5] == "2" and row[6] == "twilio" and row[8] == "t", row
        ids = {row[0] for row in rows}
        assert ctx.sql("SELECT count(*), count(DISTINCT execution_id), min(status), max(status),"
                       " bool_and(from_status IS NULL) FROM execution_events"
                       " WHERE execution_id IN (SELECT id FROM executions"
                       "  WHERE batch_id = :'p1')", b) == [["95", "95", "queued", "queued", "t"]]
        new_jobs = {k: v for k, v in dial_jobs(ctx).items() if k not in jobs_before}
        assert set(new_jobs) == ids and set(new_jobs.values()) == {"0"}, len(new_jobs)
        # pub/sub may drop part of a burst (common/bus.h): the outbox above is the record;
        # here it is enough that the events went out (test_events_of_a_small_batch counts them)
        seen = heard(events, ids, "queued", want=1)
        assert seen and seen <= ids, seen
    finally:
        events.terminate()
        events.wait()

    g = ctx.http("GET", f"/batches/{b}", key=ctx.key).json
    assert g["status"] == "queued" and g["execution_status"] == {"queued": 95}, g
    assert g["valid_contacts"] == 95 and g["total_contacts"] == 100, g
    assert g["scheduled_at"] is not None and g["file_name"] == "q3 leads.csv", g
    e = ctx.http("GET", f"/batches/{b}/executions", key=ctx.key)
    assert e.status == 200 and len(e.json) == 95, e
    assert [x["telephony_data"]["to_number"] for x in e.json] == [v[1] for v in ctx.valid]
    assert e.json[0]["batch_id"] == b and e.json[0]["batch_run_details"]["status"] == "queued"
    assert e.json[0]["user_data"] == {"name": ctx.valid[0][2], "city": ctx.valid[0][3]}
    one = ctx.http("GET", f"/executions/{e.json[0]['id']}", key=ctx.key).json
    assert one["batch_id"] == b, one

    # scheduling twice creates nothing more
    before = totals(ctx)
    r = schedule(ctx, b, past())
    assert r.status == 409 and "is queued" in r.json["message"], r
    assert totals(ctx) == before


def heard(proc, ids, status, want, timeout=5):
    """The ids of `ids` whose exec.status.<status> event parley-events printed, waiting until
    `want` of them were heard or timeout."""
    seen = set()
    deadline = time.time() + timeout
    fd = proc.stdout.fileno()  # raw reads: select() cannot see lines a file object buffered
    while len(seen) < want and time.time() < deadline:
        if select.select([fd], [], [], 0.1)[0]:
            proc.pending = getattr(proc, "pending", b"") + os.read(fd, 65536)
        *lines, proc.pending = getattr(proc, "pending", b"").split(b"\n")
        for line in lines:
            topic, _, payload = line.decode().partition(" ")
            if topic != f"exec.status.{status}":
                continue
            event = json.loads(payload)
            if event["execution_id"] in ids:
                assert event["from_status"] == (None if status != "stopped" else "queued")
                seen.add(event["execution_id"])
    return seen


def test_events_of_a_small_batch(ctx):
    events = subprocess.Popen([os.path.join(harness.ROOT, "build/bin/parley-events"),
                               "exec.status."], env=ctx.env(), stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        b = new_batch(ctx, 3)
        assert schedule(ctx, b, past()).status == 200
        ids = {row[0] for row in batch_executions(ctx, b)}
        assert heard(events, ids, "queued", want=3) == ids
        assert ctx.http("POST", f"/batches/{b}/stop", key=ctx.key).status == 200
        assert heard(events, ids, "stopped", want=3) == ids
    finally:
        events.terminate()
        events.wait()
    assert ctx.http("DELETE", f"/batches/{b}", key=ctx.key).status == 200


def test_delete_needs_a_stopped_batch_then_stop_stops_everything(ctx):
    b = ctx.batch_id
    before = totals(ctx)
    r = ctx.http("DELETE", f"/batches/{b}", key=ctx.key)
    assert r.status == 409 and "95 executions not finished" in r.json["message"], r
    assert f"POST /batches/{b}/stop" in r.json["message"], r
    assert totals(ctx) == before

    # one call already left the waiting statuses: stop must leave it alone
    first = ctx.sql("SELECT id FROM executions WHERE batch_id = :'p1' ORDER BY id LIMIT 1", b)[0][0]
    ctx.sql("UPDATE executions SET status = 'initiated' WHERE id = :'p1'", first)
    r = ctx.http("POST", f"/batches/{b}/stop", key=ctx.key)
    assert r.status == 200, r
    assert r.json["message"] == "success" and r.json["state"] == "stopped", r
    assert r.json["stopped_executions"] == 94, r
    statuses = dict(ctx.sql("SELECT status, count(*) FROM executions WHERE batch_id = :'p1'"
                            " GROUP BY status", b))
    assert statuses == {"stopped": "94", "initiated": "1"}, statuses
    assert count(ctx, "SELECT count(*) FROM execution_events WHERE status = 'stopped'"
                 " AND from_status = 'queued' AND execution_id IN"
                 " (SELECT id FROM executions WHERE batch_id = :'p1')", b) == 94
    g = ctx.http("GET", f"/batches/{b}", key=ctx.key).json
    assert g["status"] == "stopped", g
    assert g["execution_status"] == {"stopped": 94, "initiated": 1}, g
    # the stream jobs stay; the scheduler drops a job whose execution is no longer waiting
    jobs = "{" + ",".join(dial_jobs(ctx)) + "}"
    assert count(ctx, "SELECT count(*) FROM executions WHERE id = ANY(:'p1'::uuid[])"
                 " AND batch_id = :'p2'", jobs, b) == 95
    assert count(ctx, "SELECT count(*) FROM executions WHERE id = ANY(:'p1'::uuid[])"
                 " AND batch_id = :'p2' AND status = 'queued'", jobs, b) == 0

    r = ctx.http("POST", f"/batches/{b}/stop", key=ctx.key)
    assert r.status == 409 and "already stopped" in r.json["message"], r
    r = schedule(ctx, b, past())
    assert r.status == 409 and "is stopped" in r.json["message"], r
    r = ctx.http("DELETE", f"/batches/{b}", key=ctx.key)  # the live call is not finished
    assert r.status == 409 and "1 executions not finished" in r.json["message"], r
    ctx.sql("UPDATE executions SET status = 'completed' WHERE id = :'p1'", first)
    r = ctx.http("DELETE", f"/batches/{b}", key=ctx.key)
    assert r.status == 200 and r.json == {"message": "success", "state": "deleted"}, r
    for method, path in (("GET", f"/batches/{b}"), ("GET", f"/batches/{b}/executions"),
                         ("DELETE", f"/batches/{b}"), ("POST", f"/batches/{b}/stop")):
        r = ctx.http(method, path, key=ctx.key)
        assert r.status == 404 and b in r.json["message"], (method, path, r)
    r = schedule(ctx, b, past())
    assert r.status == 404, r
    all_ = ctx.http("GET", f"/batches/{ctx.agent_id}/all", key=ctx.key).json
    assert b not in [x["batch_id"] for x in all_]
    # the executions themselves stay readable
    assert ctx.http("GET", f"/executions/{first}", key=ctx.key).json["batch_id"] == b


def test_scheduled_later_then_stopped(ctx):
    when = future(hours=3)
    b = new_batch(ctx, 4)
    before = totals(ctx)
    local = when.astimezone(datetime.timezone(datetime.timedelta(hours=5, minutes=30)))
    r = schedule(ctx, b, local.isoformat(timespec="milliseconds"), bypass_call_guardrails="true")
    assert r.status == 200 and r.json["batch_status"] == "scheduled", r
    after = totals(ctx)
    assert after[3] == before[3] + 4 and after[6] == before[6] and after[7] == before[7] + 4
    rows = ctx.sql("SELECT id, status, extract(epoch FROM scheduled_at) * 1000,"
                   " bypass_call_guardrails, from_number IS NULL FROM executions"
                   " WHERE batch_id = :'p1'", b)
    for eid, status, sched, bypass, no_from in rows:
        assert status == "scheduled" and bypass == "t" and no_from == "t", rows
        assert abs(float(sched) / 1000 - when.timestamp()) < 0.01
        score = ctx.redis.cli("ZSCORE", "parley:delayed", member(eid))
        assert score and abs(float(score) / 1000 - when.timestamp()) < 0.01, (eid, score)
    g = ctx.http("GET", f"/batches/{b}", key=ctx.key).json
    assert g["status"] == "scheduled" and g["execution_status"] == {"scheduled": 4}, g
    got = datetime.datetime.fromisoformat(g["scheduled_at"].replace("Z", "+00:00"))
    assert abs((got - when).total_seconds()) < 0.01, g

    # a single call of the batch stopped through POST /call/{id}/stop leaves the delayed set
    # too: the batch wrote the same job encoding as POST /call does
    r = ctx.http("POST", f"/call/{rows[0][0]}/stop", key=ctx.key)
    assert r.status == 200, r
    assert totals(ctx)[7] == before[7] + 3

    r = ctx.http("POST", f"/batches/{b}/stop", key=ctx.key)
    assert r.status == 200 and r.json["stopped_executions"] == 3, r
    assert totals(ctx)[7] == before[7]  # no job of the batch is due any more
    for eid, *_ in rows:
        assert ctx.redis.cli("ZSCORE", "parley:delayed", member(eid)) == ""
    g = ctx.http("GET", f"/batches/{b}", key=ctx.key).json
    assert g["status"] == "stopped" and g["execution_status"] == {"stopped": 4}, g
    # stopped and settled: it can be deleted
    assert ctx.http("DELETE", f"/batches/{b}", key=ctx.key).status == 200


def test_schedule_body_forms(ctx):
    when = future(hours=1).strftime("%Y-%m-%dT%H:%M:%SZ")
    b1, b2, b3 = new_batch(ctx, 1), new_batch(ctx, 1), new_batch(ctx, 1)
    r = ctx.http("POST", f"/batches/{b1}/schedule", body={"scheduled_at": when}, key=ctx.key)
    assert r.status == 200 and r.json["batch_status"] == "scheduled", r
    r = ctx.http("POST", f"/batches/{b2}/schedule", raw=f"scheduled_at={when}".encode(),
                 headers={"Content-Type": "application/x-www-form-urlencoded"}, key=ctx.key)
    assert r.status == 200 and r.json["batch_status"] == "scheduled", r
    body, headers = multipart([("scheduled_at", when)], boundary="b'()+_,-./:=? x", quoted=True)
    r = ctx.http("POST", f"/batches/{b3}/schedule", raw=body, headers=headers, key=ctx.key)
    assert r.status == 200 and r.json["batch_status"] == "scheduled", r
    for b in (b1, b2, b3):
        assert ctx.http("POST", f"/batches/{b}/stop", key=ctx.key).status == 200


def test_schedule_validation_writes_nothing(ctx):
    b = new_batch(ctx, 2)
    before = totals(ctx)
    for fields, message in [([], "scheduled_at: is required"),
                            ([("scheduled_at", "")], "scheduled_at: is required"),
                            ([("scheduled_at", "tomorrow")], "scheduled_at: 'tomorrow' is not"),
                            ([("scheduled_at", "2024-02-30T10:00:00Z")], "scheduled_at"),
                            ([("scheduled_at", past()), ("bypass_call_guardrails", "yes")],
                             "bypass_call_guardrails: must be true or false"),
                            ([("scheduled_at", b"\xff")], "scheduled_at: is not UTF-8")]:
        r = schedule(ctx, b, form=fields)
        assert r.status == 422 and r.json["message"].startswith(message), (fields, r)
    for raw, headers, status, message in [
            (b"", None, 422, "scheduled_at: is required"),
            (b"scheduled_at=x", {"Content-Type": "text/plain"}, 415, "Content-Type"),
            (b"{not json", {"Content-Type": "application/json"}, 400, "not valid JSON"),
            (b'{"scheduled_at": 5}', {"Content-Type": "application/json"}, 422,
             "scheduled_at: must be a string"),
            (b"--x\r\n", {"Content-Type": "multipart/form-data; boundary=x"}, 400,
             "not valid multipart")]:
        h = dict(headers or {})
        r = ctx.http("POST", f"/batches/{b}/schedule", raw=raw or None, headers=h, key=ctx.key)
        assert r.status == status and message in r.json["message"], (raw, r)
    r = ctx.http("POST", f"/batches/{b}/schedule", raw=b"x" * (1024 * 1024 + 10),
                 headers={"Content-Type": "application/x-www-form-urlencoded"}, key=ctx.key)
    assert r.status == 413, r
    assert totals(ctx) == before


def test_executed_once_every_execution_is_terminal(ctx):
    b = new_batch(ctx, 3)
    assert schedule(ctx, b, past()).status == 200
    ids = [row[0] for row in batch_executions(ctx, b)]
    ctx.sql("UPDATE executions SET status = 'completed' WHERE id = :'p1'", ids[0])
    ctx.sql("UPDATE executions SET status = 'no-answer' WHERE id = :'p1'", ids[1])
    g = ctx.http("GET", f"/batches/{b}", key=ctx.key).json
    assert g["status"] == "queued", g
    ctx.sql("UPDATE executions SET status = 'in-progress' WHERE id = :'p1'", ids[2])
    assert ctx.http("GET", f"/batches/{b}", key=ctx.key).json["status"] == "queued"
    ctx.sql("UPDATE executions SET status = 'busy' WHERE id = :'p1'", ids[2])
    g = ctx.http("GET", f"/batches/{b}", key=ctx.key).json
    assert g["status"] == "executed", g
    assert g["execution_status"] == {"completed": 1, "no-answer": 1, "busy": 1}, g
    listed = {x["batch_id"]: x for x in
              ctx.http("GET", f"/batches/{ctx.agent_id}/all", key=ctx.key).json}
    assert listed[b]["status"] == "executed", listed[b]
    r = ctx.http("POST", f"/batches/{b}/stop", key=ctx.key)
    assert r.status == 409 and "is executed" in r.json["message"], r
    assert ctx.http("DELETE", f"/batches/{b}", key=ctx.key).status == 200


def test_list_by_agent(ctx):
    a = agent(ctx, ctx.key)
    first = new_batch(ctx, 1, agent_id=a)
    second = new_batch(ctx, 2, agent_id=a)
    r = ctx.http("GET", f"/batches/{a}/all", key=ctx.key)
    assert r.status == 200, r
    assert [x["batch_id"] for x in r.json] == [second, first], r  # newest first
    x = r.json[0]
    for field in ("batch_id", "status", "scheduled_at", "from_phone_numbers", "file_name",
                  "valid_contacts", "total_contacts", "execution_status", "created_at",
                  "updated_at"):
        assert field in x, field
    assert x["status"] == "created" and x["valid_contacts"] == 2 and x["from_phone_numbers"] == []
    assert "invalid_contacts" not in x
    empty = agent(ctx, ctx.key)
    assert ctx.http("GET", f"/batches/{empty}/all", key=ctx.key).json == []
    r = ctx.http("GET", f"/batches/{uuid.uuid4()}/all", key=ctx.key)
    assert r.status == 404 and "agent" in r.json["message"], r
    r = ctx.http("GET", "/batches/not-a-uuid/all", key=ctx.key)
    assert r.status == 422 and r.json["message"].startswith("agent_id:"), r
    r = ctx.http("POST", f"/batches/{a}/all", key=ctx.key)
    assert r.status == 405, r


def test_from_phone_numbers_forms(ctx):
    cases = [
        ([("from_phone_numbers", '["+14155550901", "+14155550902"]')],
         ["+14155550901", "+14155550902"]),
        ([("from_phone_numbers", "+14155550901, +14155550902,")],
         ["+14155550901", "+14155550902"]),
        ([("from_phone_numbers", "+14155550901"), ("from_phone_numbers", "+14155550902")],
         ["+14155550901", "+14155550902"]),
        ([("from_phone_number", "+14155550909")], ["+14155550909"]),
    ]
    for extra, want in cases:
        body, headers = multipart([("agent_id", ctx.agent_id)] + extra,
                                  [("file", "c.csv", contacts_csv(3))])
        r = ctx.http("POST", "/batches", raw=body, headers=headers, key=ctx.key)
        assert r.status == 200, (extra, r)
        got = ctx.http("GET", f"/batches/{r.json['batch_id']}", key=ctx.key).json
        assert got["from_phone_numbers"] == want, (extra, got)


def test_other_accounts_batches_are_not_found(ctx):
    b = new_batch(ctx, 2)
    before = totals(ctx)
    ok = ctx.other_key
    for method, path in [("GET", f"/batches/{b}"), ("DELETE", f"/batches/{b}"),
                         ("POST", f"/batches/{b}/stop"), ("GET", f"/batches/{b}/executions"),
                         ("GET", f"/batches/{ctx.agent_id}/all")]:
        r = ctx.http(method, path, key=ok)
        assert r.status == 404 and r.json["error"] == 404, (method, path, r)
    r = schedule(ctx, b, past(), key=ok)
    assert r.status == 404, r
    r = upload(ctx, contacts_csv(2), key=ok)  # the caller's agent_id belongs to another account
    assert r.status == 404 and r.json["message"].startswith("agent_id:"), r
    r = upload(ctx, contacts_csv(2), agent_id=ctx.other_agent)
    assert r.status == 404, r
    assert totals(ctx) == before
    g = ctx.http("GET", f"/batches/{b}", key=ctx.key).json
    assert g["status"] == "created", g


def test_auth_and_path_ids(ctx):
    b = new_batch(ctx, 1)
    for method, path in [("POST", "/batches"), ("GET", f"/batches/{b}"),
                         ("DELETE", f"/batches/{b}"), ("POST", f"/batches/{b}/schedule"),
                         ("POST", f"/batches/{b}/stop"), ("GET", f"/batches/{b}/executions"),
                         ("GET", f"/batches/{ctx.agent_id}/all")]:
        r = ctx.http(method, path, key="pl_nope")
        assert r.status == 401 and r.json["message"] == "Access denied", (method, path, r)
    for method, path in [("GET", "/batches/xyz"), ("DELETE", "/batches/" + "g" * 32),
                         ("POST", "/batches/abc/stop"), ("GET", "/batches/abc/executions"),
                         ("POST", "/batches/" + "a" * 33 + "/schedule")]:
        r = ctx.http(method, path, key=ctx.key)
        assert r.status == 422 and r.json["message"].startswith("batch_id:"), (method, path, r)
    r = ctx.http("GET", "/batches/" + "0" * 32, key=ctx.key)
    assert r.status == 404, r
    r = ctx.http("GET", f"/batches/{b.upper()}", key=ctx.key)  # ids are case-insensitive hex
    assert r.status == 200 and r.json["batch_id"] == b, r


def bad_upload(ctx, status, message, csv=None, fields=None, raw=None, headers=None, key=None):
    if raw is None:
        form = fields if fields is not None else [("agent_id", ctx.agent_id)]
        files = [("file", "c.csv", csv)] if csv is not None else []
        raw, headers = multipart(form, files)
    r = ctx.http("POST", "/batches", raw=raw, headers=headers, key=key or ctx.key)
    assert r.status == status and message in r.json["message"], (status, message, r)
    return r


def test_bad_uploads_write_nothing(ctx):
    before = totals(ctx)
    good = contacts_csv(2)
    a = ctx.agent_id
    # the body
    bad_upload(ctx, 415, "takes multipart/form-data", raw=b'{"agent_id": "x"}',
               headers={"Content-Type": "application/json"})
    bad_upload(ctx, 415, "Content-Type", raw=b"x", headers={"Content-Type": "text/csv"})
    bad_upload(ctx, 400, "boundary parameter is missing", raw=b"--x--",
               headers={"Content-Type": "multipart/form-data"})
    body, headers = multipart([("agent_id", a)], [("file", "c.csv", good)])
    bad_upload(ctx, 400, "ends without the closing boundary", raw=body[:-10], headers=headers)
    bad_upload(ctx, 400, "not followed by CRLF", raw=body.replace(b"\r\n", b"\n"),
               headers=headers)
    bad_upload(ctx, 413, "exceeds the limit", csv=b"contact_number\n" + b"+14155550100\n" * 90000)
    # the fields
    bad_upload(ctx, 422, "agent_id: is required", csv=good, fields=[])
    bad_upload(ctx, 422, "agent_id: must be a UUID", csv=good, fields=[("agent_id", "abc")])
    bad_upload(ctx, 422, "agent_id: is not UTF-8", csv=good, fields=[("agent_id", b"\xff")])
    bad_upload(ctx, 404, f"agent_id: agent {MISSING} not found", csv=good,
               fields=[("agent_id", MISSING)])
    bad_upload(ctx, 422, "file: is required", fields=[("agent_id", a)])
    # a plain field named file is read as the CSV too (no file name)
    bad_upload(ctx, 422, "no contact_number column", fields=[("agent_id", a), ("file", "a,b")])
    bad_upload(ctx, 422, "from_phone_numbers: '12345' is not an E.164", csv=good,
               fields=[("agent_id", a), ("from_phone_numbers", "+14155550100,12345")])
    bad_upload(ctx, 422, "from_phone_numbers: every item", csv=good,
               fields=[("agent_id", a), ("from_phone_numbers", '["+14155550100", 5]')])
    bad_upload(ctx, 422, "from_phone_numbers: '[\"+1' is not a JSON array", csv=good,
               fields=[("agent_id", a), ("from_phone_numbers", '["+1')])
    bad_upload(ctx, 422, "retry_config: is not a JSON object", csv=good,
               fields=[("agent_id", a), ("retry_config", "{enabled: true}")])
    bad_upload(ctx, 422, "retry_config.max_retries: must be an integer from 1 to 3", csv=good,
               fields=[("agent_id", a), ("retry_config", '{"max_retries": 9}')])
    bad_upload(ctx, 422, "retry_config: must be an object", csv=good,
               fields=[("agent_id", a), ("retry_config", "[1]")])
    # the file
    for csv, message in [
            (b"", "file: is empty"),
            (b"\n\n", "file: is empty"),
            (b"name,city\n+14155550100,x\n", "file: the header row has no contact_number column"
                                             " (columns: name, city)"),
            (b"contact_number,name\n\xff\xfe,x\n", "file: is not UTF-8 text"),
            (b"contact_number,name\n+14155550100,\"open\n+14155550101,x\n",
             "file: line 2: field 2 opens a quote that is never closed"),
            (b"contact_number,name\n+14155550100,\"x\"y\n", "file: line 2: field 2 has text"),
            (b"contact_number\n", "file: has a header row but no contact rows"),
            (b"contact_number,,x\n+14155550100,a,b\n", "file: column 2 of the header row"),
            (b"contact_number,name,name\n+14155550100,a,b\n", "file: column 'name' appears twice"),
            (b"contact_number,name\n123,x\n,y\n", "file: none of the 2 contact rows is valid (row"
                                                  " 2: contact_number: '123' is not an E.164"),
            (b"contact_number\n" + b"+14155550100\n" * 10001, "file: more than 10000 contact rows"),
    ]:
        bad_upload(ctx, 422, message, csv=csv)
    bad_upload(ctx, 401, "Access denied", csv=good, key="pl_wrong")
    assert totals(ctx) == before
    # exactly the limit is accepted
    r = upload(ctx, b"contact_number\n" + b"+14155550100\n" * 10000)
    assert r.status == 200 and r.json["valid_contacts"] == 10000, r


MISSING = "0b5f3a52-7c1e-4a8e-9d62-1f0c2b3a4d5e"


def test_ten_thousand_contacts_schedule_in_one_go(ctx):
    csv = ("contact_number,n\n" + "".join(f"+1415{i:07d},{i}\n" for i in range(10000))).encode()
    r = upload(ctx, csv, from_phone_numbers="+14155550901,+14155550902")
    assert r.status == 200 and r.json["valid_contacts"] == 10000, r
    b = r.json["batch_id"]
    before = totals(ctx)
    t0 = time.time()
    r = schedule(ctx, b, future(hours=1).isoformat())
    took = time.time() - t0
    assert r.status == 200 and r.json["executions"] == 10000, r
    after = totals(ctx)
    assert after[3] - before[3] == 10000 and after[4] - before[4] == 10000
    assert after[7] - before[7] == 10000, (before, after)
    assert count(ctx, "SELECT count(*) FROM batch_contacts WHERE batch_id = :'p1'"
                 " AND execution_id IS NOT NULL", b) == 10000
    assert dict(ctx.sql("SELECT from_number, count(*) FROM executions WHERE batch_id = :'p1'"
                        " GROUP BY 1", b)) == {"+14155550901": "5000", "+14155550902": "5000"}
    r = ctx.http("POST", f"/batches/{b}/stop", key=ctx.key)
    assert r.status == 200 and r.json["stopped_executions"] == 10000, r
    assert totals(ctx)[7] == before[7]
    print(f"    (10000 contacts: schedule {took:.2f}s)")
