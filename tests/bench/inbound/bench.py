#!/usr/bin/env python3
"""Inbound answer benchmark (issue 6): how fast the telephony-gateway answers a carrier's inbound
voice webhook, at a steady rate of new calls.

The load generator plays Twilio: every request is a signed "a call comes in" webhook
(X-Twilio-Signature over the URL and the form, as reference/providers.md §1 has it) for a new
CallSid from a new caller, to one registered number linked to an agent with an inbound_limit (so
the caller count runs under its lock). Each answer is the whole inbound path: the number, agent
and account read, the signature checked, the rules, the concurrency lease in Redis, the
inbound_accept statement (execution, attempt and outbox event in one transaction), the bus
publish, the TwiML. No media stream follows (the carrier fake is not involved), so the figure is
the gateway's answer alone.

Prints p50/p99/max of webhook sent → TwiML received, the CPU per call by process and Postgres
transactions per call. A caller hears ringing meanwhile; Twilio waits up to 15 s for the answer.

Usage: bench.py [calls, default 1000] [rate per second, default 100] [--fsync]
"""
import base64
import hashlib
import hmac
import os
import sys
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
import harness  # noqa: E402
import loadgen  # noqa: E402
from dialing import Dialing  # noqa: E402
from loadgen import cpu_seconds, pct  # noqa: E402

FSYNC = "--fsync" in sys.argv[1:]
ARGS = [a for a in sys.argv[1:] if a != "--fsync"]
CALLS = int(ARGS[0]) if len(ARGS) > 0 else 1000
RATE = float(ARGS[1]) if len(ARGS) > 1 else 100.0
CONNECTIONS = 32
TWILIO_SID, TWILIO_TOKEN = "AC00000000000000000000000000000001", "twilio-fake-token"
NUMBER = "+15005550100"


def webhook(port, url, i):
    """Twilio's inbound webhook for call i, signed, as raw HTTP/1.1 bytes."""
    params = {"AccountSid": TWILIO_SID, "ApiVersion": "2010-04-01", "CallSid": f"CA{i:032x}",
              "CallStatus": "ringing", "Called": NUMBER, "Caller": f"+1555{i:07d}",
              "Direction": "inbound", "From": f"+1555{i:07d}", "To": NUMBER}
    signed = url + "".join(k + v for k, v in sorted(params.items()))
    sig = base64.b64encode(hmac.new(TWILIO_TOKEN.encode(), signed.encode(),
                                    hashlib.sha1).digest()).decode()
    body = urllib.parse.urlencode(params).encode()
    path = urllib.parse.urlparse(url).path
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Twilio-Signature: {sig}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def main():
    with open("/proc/loadavg") as f:
        load0 = " ".join(f.read().split()[:3])  # other work on the machine skews the figures
    ctx = harness.Suite("bench-inbound", fsync=FSYNC)
    try:
        d = Dialing(ctx, gateway_env={"PL_LOG_LEVEL": "warn"})
        ctx.start_api(avoid=(d.fake_port, d.gw_port, d.media_port, d.sched_port),
                      PL_LOG_LEVEL="warn", PL_INBOUND_BASE_URL=f"http://127.0.0.1:{d.gw_port}")
        d.start_gateway()
        _, key = ctx.new_account("bench", concurrency=1000000)
        body = harness.AGENT_FOR_TESTS
        body["agent_config"]["tasks"][0]["task_config"]["inbound_limit"] = 3
        aid = ctx.http("POST", "/v2/agent", body, key=key).json["agent_id"]
        nid = ctx.http("POST", "/phone-numbers", {"phone_number": NUMBER,
                                                  "telephony_provider": "twilio"}, key=key).json["id"]
        url = ctx.http("POST", "/inbound/setup", {"agent_id": aid, "phone_number_id": nid},
                       key=key).json["url"]
        reqs = [webhook(d.gw_port, url, i) for i in range(CALLS)]
        xacts0 = ctx.sql("SELECT xact_commit + xact_rollback FROM pg_stat_database"
                         " WHERE datname = current_database()")[0][0]
        t0 = time.time() + 0.5
        cpu0 = cpu_seconds(ctx)
        sent, done, answers, late = loadgen.run(d.gw_port, reqs, t0,
                                                [i / RATE for i in range(CALLS)], CONNECTIONS)
        cpu1 = cpu_seconds(ctx)
        span = done[-1] - sent[0]
        bad = [a for a in answers if a[0] != 200 or b"<Stream" not in a[1]]
        ms = [(done[i] - sent[i]) * 1000 for i in range(CALLS)]
        xacts = ctx.sql("SELECT xact_commit + xact_rollback FROM pg_stat_database"
                        " WHERE datname = current_database()")[0][0]
        rows = ctx.sql("SELECT count(*) FROM executions WHERE call_type = 'inbound'"
                       " AND status = 'in-progress'")[0][0]
        print(f"sent {CALLS} inbound webhooks in {span:.1f} s ({(CALLS - 1) / span:.0f}/s); "
              f"{len(bad)} not answered with a stream; {rows} in-progress inbound executions; "
              f"sends behind schedule: p99 {pct(late, 0.99):.1f} ms")
        cpu = {k: cpu1.get(k, 0) - cpu0.get(k, 0) for k in cpu1}
        total = sum(cpu.values())
        parts = ", ".join(f"{k} {v:.2f} s" for k, v in sorted(cpu.items(), key=lambda kv: -kv[1])
                          if v >= 0.005)
        print(f"CPU: {total * 1000 / CALLS:.1f} ms per call ({total / span:.2f} of "
              f"{os.cpu_count()} cores); {parts}")
        print(f"Postgres transactions: {(int(xacts) - int(xacts0)) / CALLS:.1f} per call")
        print(f"\nPostgres fsync {'on' if FSYNC else 'off (--fsync turns it on)'}; "
              f"load average before the run {load0}")
        print(f"inbound webhook -> streaming TwiML  n={CALLS:5d}  p50 {pct(ms, 0.5):6.1f} ms"
              f"  p99 {pct(ms, 0.99):6.1f} ms  max {max(ms):6.1f} ms  at {RATE:.0f} calls/s")
        if bad or int(rows) != CALLS:
            sys.exit(f"FAILED: {len(bad)} bad answers, {rows} executions for {CALLS} calls")
    finally:
        ctx.close()


if __name__ == "__main__":
    main()
