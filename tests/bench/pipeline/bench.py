"""media-pipeline capacity: N concurrent spoken calls through the real stack (api → scheduler →
gateway → carrier fake ⇄ relay ⇄ one media-pipeline worker), each a full conversation (welcome,
the callee asks a question, the scripted agent answers, the callee says goodbye, the agent hangs
up). Prints the worker's CPU per call-second (from /proc), its frames in/out, what it dropped, and
whether every call completed its turns — the cost of one live call on this machine.

Usage: python3 tests/bench/pipeline/bench.py [calls ...]   (default: 1 4 8)"""
import copy
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "lib"))
import harness  # noqa: E402
from dialing import Dialing  # noqa: E402

SCRIPT = [{"silence_ms": 3500}, {"text": "what is the price"}, {"silence_ms": 4500},
          {"text": "goodbye"}, {"silence_ms": 15000}]
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def metric(ctx, port, name):
    text = ctx.http("GET", "/metrics", port=port).text
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith(name) and not line.startswith("#"))


def main():
    sizes = [int(a) for a in sys.argv[1:]] or [1, 4, 8]
    ctx = harness.Suite("bench-pipeline")
    try:
        ctx.start_api()
        d = Dialing(ctx, fake_args=["--voice-cmd", "espeak-ng -s 150 --stdout {text}",
                                    "--max-call-seconds", "120"]).start()
        pipe = d.start_pipeline(PL_PIPELINE_CAPACITY=64, PL_PIPELINE_STT_DECODERS=max(sizes))
        _, key = ctx.new_account("bench", concurrency=200)
        body = copy.deepcopy(harness.AGENT_FOR_TESTS)
        task = body["agent_config"]["tasks"][0]
        body["agent_config"]["agent_welcome_message"] = "Hello! How can I help you today?"
        task["tools_config"]["transcriber"]["keywords"] = ["what is the price", "goodbye"]
        task["tools_config"]["llm_agent"]["llm_config"] = {
            "provider": "scripted", "model": "parley-scripted", "scripted": {"rules": [
                {"keywords": ["price"], "reply": "It costs ten dollars. Anything else?"},
                {"keywords": ["goodbye"], "reply": "Goodbye!", "hangup": True}]}}
        agent = ctx.http("POST", "/v2/agent", body, key=key).json["agent_id"]
        ctx.http("POST", "/_fake/voices", {"script": SCRIPT}, port=d.fake_port)
        print(f"{'calls':>5} {'wall s':>7} {'call-s':>7} {'worker CPU s':>12} "
              f"{'CPU ms per call-s':>17} {'frames in/out':>15} {'dropped':>7} {'4 turns':>7}")
        n = 0
        for size in sizes:
            before = cpu_seconds(pipe.proc.pid)
            fin = metric(ctx, pipe.port, 'pl_pipeline_frames_total{dir="in"}')
            fout = metric(ctx, pipe.port, 'pl_pipeline_frames_total{dir="out"}')
            drop = metric(ctx, pipe.port, "pl_pipeline_stt_dropped_total")
            t0 = time.time()
            ids = []
            for _ in range(size):
                n += 1
                to = f"+1555{n:06d}0006"
                r = ctx.http("POST", "/call", {"agent_id": agent, "recipient_phone_number": to},
                             key=key)
                ids.append(r.json["execution_id"])

            def done():
                rows = ctx.sql("SELECT count(*) FROM executions WHERE id = ANY(:'p1'::uuid[])"
                               " AND status IN ('call-disconnected', 'error', 'completed')",
                               "{" + ",".join(ids) + "}")
                return int(rows[0][0]) == len(ids)
            harness.eventually(done, timeout=120, interval=0.5)
            wall = time.time() - t0
            time.sleep(1.5)  # the calls' final jobs
            cpu = cpu_seconds(pipe.proc.pid) - before
            call_s = sum(float(json.loads(ctx.sql(
                "SELECT telephony_data FROM executions WHERE id = :'p1'", e)[0][0]).get(
                "duration") or 0) for e in ids)
            turns_ok = sum(1 for e in ids if int(ctx.sql(
                "SELECT count(*) FROM transcript_turns WHERE execution_id = :'p1'", e)[0][0]) >= 5)
            fi = metric(ctx, pipe.port, 'pl_pipeline_frames_total{dir="in"}') - fin
            fo = metric(ctx, pipe.port, 'pl_pipeline_frames_total{dir="out"}') - fout
            dr = metric(ctx, pipe.port, "pl_pipeline_stt_dropped_total") - drop
            per = 1000 * cpu / call_s if call_s else float("nan")
            print(f"{size:>5} {wall:>7.1f} {call_s:>7.0f} {cpu:>12.2f} {per:>17.1f} "
                  f"{int(fi):>7}/{int(fo):<7} {int(dr):>7} {turns_ok:>3}/{size:<3}", flush=True)
    finally:
        ctx.close()


if __name__ == "__main__":
    main()
