"""Test harness: a fresh Postgres + Redis per suite, the real service binaries, and plain HTTP.

A suite is a module tests/integration/test_<name>.py with functions test_<case>(ctx). The runner
(tests/run.py) builds one Suite context per module, calls each test, and counts passes and
failures. Assertions are plain `assert` (or `ctx.check`), so a failing test names what it saw.
"""
import http.client
import json
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "deploy", "local"))
import stack  # noqa: E402


class Response:
    def __init__(self, status, body, headers):
        self.status = status
        self.text = body.decode("utf-8", "replace")
        self.headers = headers
        try:
            self.json = json.loads(self.text) if self.text else None
        except ValueError:
            self.json = None

    def __repr__(self):
        return f"<{self.status} {self.text[:300]}>"


class Service:
    """One running service binary with its own log file."""

    def __init__(self, name, env, port, logdir, binary=None):
        self.name = name
        self.binary = binary or name
        self.env = env
        self.port = port
        self.log_path = os.path.join(logdir, f"{name}.log")
        self.proc = None

    def start(self):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([os.path.join(ROOT, "build", "bin", self.binary)], env=self.env,
                                     stdout=log, stderr=log, cwd=ROOT, start_new_session=True)
        if self.port:
            stack.wait_port(self.port, timeout=20, proc=self.proc)
        return self

    def start_cmd(self, args):
        """Starts an arbitrary command (a fake, a tool) under this service's name and log."""
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, env=self.env, stdout=log, stderr=log, cwd=ROOT,
                                     start_new_session=True)
        if self.port:
            stack.wait_port(self.port, timeout=20, proc=self.proc)
        return self

    def stop(self, kill=False):
        if self.proc and self.proc.poll() is None:
            (self.proc.kill if kill else self.proc.terminate)()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")


class Suite:
    def __init__(self, name, fsync=False):
        self.name = name
        self.workdir = os.path.join(ROOT, "build", "test-runs", name)
        shutil.rmtree(self.workdir, ignore_errors=True)
        os.makedirs(self.workdir)
        self.pg = stack.Postgres(fsync=fsync).start()
        self.redis = stack.Redis(os.path.join(self.workdir, "redis")).start()
        self.services = {}
        self._conns = {}

    def env(self, **extra):
        e = dict(os.environ)
        e.update({
            "PL_DATABASE_URL": self.pg.url,
            "PL_REDIS_URL": self.redis.url,
            "PL_REDIS_PREFIX": "parley:",
            "PL_MIGRATIONS_DIR": os.path.join(ROOT, "proto", "sql"),
            "PL_LOG_LEVEL": "info",
        })
        e.update({k: str(v) for k, v in extra.items()})
        return e

    def start_api(self, name="api", avoid=(), **extra):
        """Starts an api replica; the first one is the default target of http(). avoid: ports
        handed out but not bound yet (another service's), which the api must not take."""
        port = stack.free_port()
        while port in avoid:
            port = stack.free_port()
        svc = Service(name, self.env(PL_API_PORT=port, **extra), port, self.workdir,
                      binary="api").start()
        self.services[name] = svc
        svc.port = port
        if not hasattr(self, "api_port"):
            self.api_port = port
        return svc

    def admin(self, *args):
        r = subprocess.run([os.path.join(ROOT, "build", "bin", "parley-admin")] + list(args),
                           env=self.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, cwd=ROOT)
        if r.returncode != 0:
            raise RuntimeError(f"parley-admin {args}: {r.stderr}")
        return dict(line.split("=", 1) for line in r.stdout.split())

    def new_account(self, name="Test", concurrency=10):
        out = self.admin("create-account", "--name", name, "--email", f"{name}@example.com",
                         "--concurrency", str(concurrency))
        return out["ACCOUNT_ID"], out["API_KEY"]

    def http(self, method, path, body=None, key=None, headers=None, raw=None, port=None):
        """One request on a fresh connection. body: JSON-able object; raw: bytes sent as-is."""
        conn = http.client.HTTPConnection("127.0.0.1", port or self.api_port, timeout=30)
        h = dict(headers or {})
        if key is not None:
            h["Authorization"] = f"Bearer {key}"
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            h.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        resp = Response(r.status, r.read(), dict(r.getheaders()))
        conn.close()
        return resp

    def sql(self, query, *params):
        return self.pg.psql(query, *params)

    def close(self):
        for s in self.services.values():
            s.stop()
        self.redis.stop()
        self.pg.stop(remove=True)


def eventually(fn, timeout=5.0, interval=0.02):
    """Polls fn until it returns a truthy value; returns it, or raises with the last value."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")


# A minimal valid agent on the local providers, for suites that only need *an* agent.
AGENT_FOR_TESTS = {
    "agent_config": {
        "agent_name": "Test agent",
        "agent_welcome_message": "Hello {name}",
        "tasks": [{
            "task_type": "conversation",
            "tools_config": {
                "llm_agent": {"agent_type": "simple_llm_agent", "agent_flow_type": "streaming",
                              "llm_config": {"provider": "scripted", "model": "parley-scripted"}},
                "synthesizer": {"provider": "local", "provider_config": {"voice": "kal16"}},
                "transcriber": {"provider": "local"},
                "input": {"provider": "twilio", "format": "wav"},
                "output": {"provider": "twilio", "format": "wav"},
            },
            "toolchain": {"execution": "parallel",
                          "pipelines": [["transcriber", "llm", "synthesizer"]]},
            "task_config": {"hangup_after_silence": 10},
        }],
    },
    "agent_prompts": {"task_1": {"system_prompt": "You are a test agent."}},
}
