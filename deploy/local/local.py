#!/usr/bin/env python3
"""`make run` and `make stop`: the whole platform on this machine, under .run/.

up:   starts (or reuses) a Postgres cluster and a Redis, applies migrations, starts every service
      binary that exists, creates a demo account, API key, agent and inbound number once, and
      prints a curl that places a call and one that has the carrier fake ring the demo number.
      Running it again reuses all of that.
down: stops what `up` started (services, Redis, Postgres). Data stays for the next `up`.

Ports (override with environment variables): PARLEY_PG_PORT 55432, PARLEY_REDIS_PORT 56379,
PARLEY_API_PORT 8080.
"""
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import stack  # noqa: E402

RUN = os.path.join(ROOT, ".run")
PG_PORT = int(os.environ.get("PARLEY_PG_PORT", "55432"))
REDIS_PORT = int(os.environ.get("PARLEY_REDIS_PORT", "56379"))
API_PORT = int(os.environ.get("PARLEY_API_PORT", "8080"))
CARRIER_PORT = int(os.environ.get("PARLEY_CARRIER_PORT", "8099"))
RECEIVER_PORT = int(os.environ.get("PARLEY_RECEIVER_PORT", "8098"))
RECEIVER = os.path.join(ROOT, "tests", "fakes", "receiver", "receiver.py")
CARRIER = os.path.join(ROOT, "tests", "fakes", "carrier", "carrier.py")

# Services in start order; each runs if its binary has been built.
SERVICES = ["api", "scheduler", "telephony-gateway", "media-pipeline", "postprocessor",
            "webhook-dispatcher"]

DEMO_AGENT = {
    "agent_config": {
        "agent_name": "Parley demo agent",
        "agent_welcome_message": "Hello {name}, this is the Parley demo. How can I help you?",
        # The demo's webhook receiver (tests/fakes/receiver): every status change lands there.
        "webhook_url": f"http://127.0.0.1:{RECEIVER_PORT}/parley-webhook",
        "tasks": [{
            "task_type": "conversation",
            "tools_config": {
                "llm_agent": {"agent_type": "simple_llm_agent", "agent_flow_type": "streaming",
                              "llm_config": {
                                  "provider": "scripted", "model": "parley-scripted",
                                  "extraction_details": "asked_who: did the caller ask who we are",
                                  "summarization_details": "one sentence",
                                  "scripted": {
                                      "extraction": {"asked_who": True, "source": "scripted"},
                                      "summary": "The caller asked who the agent is, said hello"
                                                 " and goodbye."}}},
                "synthesizer": {"provider": "local", "provider_config": {"voice": "kal16"},
                                "stream": True, "audio_format": "wav"},
                "transcriber": {"provider": "local", "language": "en", "stream": True,
                                "keywords": ["who are you", "are you a robot", "hello",
                                             "goodbye", "thank you", "what can you do"]},
                "input": {"provider": "twilio", "format": "wav"},
                "output": {"provider": "twilio", "format": "wav"},
            },
            "toolchain": {"execution": "parallel",
                          "pipelines": [["transcriber", "llm", "synthesizer"]]},
            "task_config": {"hangup_after_silence": 10, "call_terminate": 120},
        }],
    },
    "agent_prompts": {"task_1": {"system_prompt": "You are a friendly demo agent."}},
}


# The inbound demo: the same agent greeting callers it knows nothing about, on this number
# (registered with the carrier fake's Twilio; docs/inbound.md).
DEMO_INBOUND_AGENT = json.loads(json.dumps(DEMO_AGENT))
DEMO_INBOUND_AGENT["agent_config"]["agent_name"] = "Parley demo inbound agent"
DEMO_INBOUND_AGENT["agent_config"]["agent_welcome_message"] = (
    "Thank you for calling the Parley demo. How can I help you?")
DEMO_NUMBER = "+15005550100"
DEMO_CALLER = "+15551230001"

# What the carrier fake's callee says on demo calls, pauses included.
DEMO_CALLEE = [{"silence_ms": 5000}, {"text": "who are you"}, {"silence_ms": 8000},
               {"text": "hello"}, {"silence_ms": 10000}, {"text": "goodbye"},
               {"silence_ms": 10000}]


PIPELINE_PORT = 8094  # media-pipeline's health port (PL_PIPELINE_PORT default)


def env():
    e = dict(os.environ)
    e.update({
        "PL_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{PG_PORT}/parley",
        "PL_REDIS_URL": f"redis://127.0.0.1:{REDIS_PORT}",
        "PL_MIGRATIONS_DIR": os.path.join(ROOT, "proto", "sql"),
        "PL_API_PORT": str(API_PORT),
        "PL_PIPELINE_RECORDINGS_DIR": os.path.join(RUN, "pipeline-recordings"),
        "PL_PRICING_FILE": os.path.join(ROOT, "proto", "pricing.json"),
        "PL_PUBLIC_API_URL": f"http://127.0.0.1:{API_PORT}",
        # The demo's webhook receiver is on loopback, which the SSRF guard refuses by default.
        "PL_WEBHOOK_ALLOW_PRIVATE": "1",
        # An agent's ingest source on loopback is refused the same way by the gateway.
        "PL_INBOUND_INGEST_ALLOW_PRIVATE": "1",
    })
    return e


def read_kv(path):
    try:
        with open(path) as f:
            return dict(line.strip().split("=", 1) for line in f if "=" in line)
    except OSError:
        return {}


def write_kv(path, kv):
    with open(path, "w") as f:
        for k, v in kv.items():
            f.write(f"{k}={v}\n")


def alive(pidfile):
    try:
        os.kill(int(open(pidfile).read()), 0)
        return True
    except (OSError, ValueError):
        return False


def api(method, path, key, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{API_PORT}{path}", method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": f"Bearer {key}",
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def up():
    os.makedirs(os.path.join(RUN, "logs"), exist_ok=True)
    os.makedirs(os.path.join(RUN, "pids"), exist_ok=True)
    pointer = os.path.join(RUN, "pgroot")
    root = open(pointer).read().strip() if os.path.exists(pointer) else None
    pg = stack.Postgres(root=root, port=PG_PORT)
    pg.start()
    with open(pointer, "w") as f:
        f.write(pg.root)
    print(f"postgres  {pg.url}  (cluster {pg.root})")

    redis_pid = os.path.join(RUN, "pids", "redis.pid")
    if not alive(redis_pid):
        stack.Redis(os.path.join(RUN, "redis"), port=REDIS_PORT, persist=True).start(redis_pid)
    print(f"redis     redis://127.0.0.1:{REDIS_PORT}")

    subprocess.run([os.path.join(ROOT, "build", "bin", "parley-admin"), "migrate"], env=env(),
                   check=True)
    # The carrier fake stands in for Twilio, Plivo and Exotel: the default carrier of make run.
    carrier_pid = os.path.join(RUN, "pids", "carrier.pid")
    if os.path.exists(CARRIER) and not alive(carrier_pid):
        os.makedirs(os.path.join(RUN, "recordings"), exist_ok=True)
        log = open(os.path.join(RUN, "logs", "carrier.log"), "ab")
        p = subprocess.Popen([sys.executable, CARRIER, "--port", str(CARRIER_PORT),
                              "--record-dir", os.path.join(RUN, "recordings"),
                              "--voice-cmd", "espeak-ng -s 150 --stdout {text}",
                              "--max-call-seconds", "300"],
                             stdout=log, stderr=log, start_new_session=True)
        with open(carrier_pid, "w") as f:
            f.write(str(p.pid))
        stack.wait_port(CARRIER_PORT, timeout=10, proc=p)
        # The demo callee's side of the conversation (the fake speaks it with espeak-ng).
        req = urllib.request.Request(
            f"http://127.0.0.1:{CARRIER_PORT}/_fake/voices", method="POST",
            headers={"Content-Type": "application/json"},
            data=json.dumps({"script": DEMO_CALLEE}).encode())
        urllib.request.urlopen(req, timeout=10).read()
    if os.path.exists(CARRIER):
        print(f"carrier   fake Twilio/Plivo/Exotel on http://127.0.0.1:{CARRIER_PORT}"
              " (recordings in .run/recordings)")
    receiver_pid = os.path.join(RUN, "pids", "receiver.pid")
    if os.path.exists(RECEIVER) and not alive(receiver_pid):
        log = open(os.path.join(RUN, "logs", "receiver.log"), "ab")
        p = subprocess.Popen([sys.executable, RECEIVER, "--port", str(RECEIVER_PORT)],
                             stdout=log, stderr=log, start_new_session=True)
        with open(receiver_pid, "w") as f:
            f.write(str(p.pid))
        stack.wait_port(RECEIVER_PORT, timeout=10, proc=p)
    if os.path.exists(RECEIVER):
        print(f"receiver  webhook receiver on http://127.0.0.1:{RECEIVER_PORT}"
              " (what it got: GET /_fake/received)")
    for name in SERVICES:
        binary = os.path.join(ROOT, "build", "bin", name)
        pidfile = os.path.join(RUN, "pids", f"{name}.pid")
        if not os.path.exists(binary):
            continue
        if not alive(pidfile):
            log = open(os.path.join(RUN, "logs", f"{name}.log"), "ab")
            p = subprocess.Popen([binary], env=env(), cwd=ROOT, stdout=log, stderr=log,
                                 start_new_session=True)
            with open(pidfile, "w") as f:
                f.write(str(p.pid))
            if name == "api":
                stack.wait_port(API_PORT, timeout=20, proc=p)
            if name == "media-pipeline":  # loads its speech models, then registers: wait for it
                stack.wait_port(PIPELINE_PORT, timeout=60, proc=p)
        print(f"{name:<9} running (log .run/logs/{name}.log)")

    demo_path = os.path.join(RUN, "demo.env")
    demo = read_kv(demo_path)
    if "API_KEY" in demo and api("GET", "/user/me", demo["API_KEY"])[0] == 401:
        demo = {}  # the cluster was recreated (a wiped /tmp): make a new demo account
    if "API_KEY" not in demo:
        out = subprocess.run([os.path.join(ROOT, "build", "bin", "parley-admin"), "create-account",
                              "--name", "Demo", "--email", "demo@parley.local", "--concurrency",
                              "10", "--wallet", "100"], env=env(), check=True,
                             stdout=subprocess.PIPE, text=True).stdout
        demo = dict(line.split("=", 1) for line in out.split())
    for name, body in (("AGENT_ID", DEMO_AGENT), ("INBOUND_AGENT_ID", DEMO_INBOUND_AGENT)):
        status, _ = api("GET", f"/v2/agent/{demo.get(name, 'x')}", demo["API_KEY"])
        if status != 200:
            status, got = api("POST", "/v2/agent", demo["API_KEY"], body)
            if status != 200:
                sys.exit(f"creating a demo agent failed: {status} {got}")
            demo[name] = got["agent_id"]
    demo_number(demo)
    write_kv(demo_path, demo)

    key, agent = demo["API_KEY"], demo["AGENT_ID"]
    ring = json.dumps({"provider": "twilio", "url": demo["INBOUND_URL"], "from": DEMO_CALLER,
                       "to": DEMO_NUMBER})
    print(f"""
Parley is running: http://127.0.0.1:{API_PORT}   (demo credentials in .run/demo.env)

Place a call:
  curl -s -X POST http://127.0.0.1:{API_PORT}/call \\
    -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\
    -d '{{"agent_id": "{agent}", "recipient_phone_number": "+15005550006", "user_data": {{"name": "Ada"}}}}'

Then watch it (the call talks for about 40 s, then ends `completed`):
  curl -s http://127.0.0.1:{API_PORT}/executions/<execution_id> -H 'Authorization: Bearer {key}'
  curl -s http://127.0.0.1:{RECEIVER_PORT}/_fake/received     # the signed webhooks, one per status

Or have the carrier fake ring the demo number {DEMO_NUMBER} as Twilio would (an inbound call):
  curl -s -X POST http://127.0.0.1:{CARRIER_PORT}/_fake/inbound \\
    -H 'Content-Type: application/json' -d '{ring}'
  curl -s 'http://127.0.0.1:{API_PORT}/v2/agent/{demo["INBOUND_AGENT_ID"]}/executions' \\
    -H 'Authorization: Bearer {key}'

Stop everything with: make stop
""")


def demo_number(demo):
    """Registers the demo number once and links it to the inbound demo agent."""
    key = demo["API_KEY"]
    status, got = api("GET", f"/phone-numbers/{demo.get('PHONE_NUMBER_ID', 'x' * 32)}", key)
    if status != 200:
        status, got = api("POST", "/phone-numbers", key,
                          {"phone_number": DEMO_NUMBER, "telephony_provider": "twilio"})
        if status != 201:
            sys.exit(f"registering the demo number failed: {status} {got}")
        demo["PHONE_NUMBER_ID"] = got["id"]
    if got.get("agent_id") != demo["INBOUND_AGENT_ID"] or "INBOUND_URL" not in demo:
        status, got = api("POST", "/inbound/setup", key, {
            "agent_id": demo["INBOUND_AGENT_ID"], "phone_number_id": demo["PHONE_NUMBER_ID"]})
        if status != 200:
            sys.exit(f"linking the demo number failed: {status} {got}")
        demo["INBOUND_URL"] = got["url"]


def down():
    for name in reversed(SERVICES):
        if stack.kill_pidfile(os.path.join(RUN, "pids", f"{name}.pid")):
            print(f"stopped {name}")
    if stack.kill_pidfile(os.path.join(RUN, "pids", "carrier.pid")):
        print("stopped carrier fake")
    if stack.kill_pidfile(os.path.join(RUN, "pids", "receiver.pid")):
        print("stopped webhook receiver")
    if stack.kill_pidfile(os.path.join(RUN, "pids", "redis.pid")):
        print("stopped redis")
    pointer = os.path.join(RUN, "pgroot")
    if os.path.exists(pointer):
        pg = stack.Postgres(root=open(pointer).read().strip(), port=PG_PORT)
        if pg.running():
            pg.stop()
            print("stopped postgres")


if __name__ == "__main__":
    {"up": up, "down": down}[sys.argv[1]]()
