"""The dialing stack for integration suites and benchmarks: the carrier fake, the scheduler and
the telephony-gateway, wired to a harness.Suite's Postgres, Redis and api."""
import os
import sys

import harness

FAKE = os.path.join(harness.ROOT, "tests", "fakes", "carrier", "carrier.py")


class Dialing:
    def __init__(self, ctx, gateway_env=None, scheduler_env=None, fake_args=()):
        self.ctx = ctx
        # free_port() may hand out the same port twice in a row: take four distinct ones
        taken = {getattr(ctx, "api_port", None)}
        ports = []
        while len(ports) < 4:
            p = harness.stack.free_port()
            if p not in taken:
                taken.add(p)
                ports.append(p)
        self.fake_port, self.gw_port, self.media_port, self.sched_port = ports
        self.record_dir = os.path.join(ctx.workdir, "recordings")
        os.makedirs(self.record_dir, exist_ok=True)
        fake = f"http://127.0.0.1:{self.fake_port}"
        self.gateway_env = dict(
            PL_GATEWAY_PORT=self.gw_port, PL_GATEWAY_MEDIA_PORT=self.media_port,
            PL_GATEWAY_PUBLIC_URL=f"http://127.0.0.1:{self.gw_port}",
            PL_GATEWAY_MEDIA_URL=f"ws://127.0.0.1:{self.media_port}",
            PL_GATEWAY_RELAY_LISTEN="tcp://127.0.0.1:0",
            PL_TWILIO_BASE_URL=fake, PL_PLIVO_BASE_URL=fake, PL_EXOTEL_BASE_URL=fake,
            PL_RING_TIMEOUT_S=3, PL_RETRY_MINUTE_MS=200, PL_LEASE_TTL_MS=5000,
            PL_LEASE_RENEW_MS=1000, PL_GATEWAY_CLAIM_IDLE_MS=2000)
        self.gateway_env.update(gateway_env or {})
        self.scheduler_env = dict(PL_SCHEDULER_PORT=self.sched_port, PL_SCHEDULER_SWEEP_MS=500,
                                  PL_SCHEDULER_CAP_RETRY_MS=100, PL_RING_TIMEOUT_S=3,
                                  PL_SCHEDULER_CLAIM_IDLE_MS=2000, PL_LEASE_TTL_MS=5000)
        self.scheduler_env.update(scheduler_env or {})
        self.fake_args = list(fake_args)

    def start(self):
        self.start_fake()
        self.start_gateway()
        self.start_scheduler()
        return self

    def start_fake(self):
        env = dict(os.environ)
        args = [sys.executable, FAKE, "--port", str(self.fake_port), "--record-dir",
                self.record_dir] + self.fake_args
        svc = harness.Service("carrier", env, self.fake_port, self.ctx.workdir)
        svc.start_cmd(args)
        self.ctx.services["carrier"] = svc
        self.fake = svc

    def start_gateway(self, name="telephony-gateway"):
        svc = harness.Service(name, self.ctx.env(**self.gateway_env), self.gw_port,
                              self.ctx.workdir, binary="telephony-gateway").start()
        self.ctx.services[name] = svc
        self.gateway = svc
        return svc

    def start_scheduler(self, name="scheduler"):
        svc = harness.Service(name, self.ctx.env(**self.scheduler_env), self.sched_port,
                              self.ctx.workdir, binary="scheduler").start()
        self.ctx.services[name] = svc
        self.scheduler = svc
        return svc

    def start_pipeline(self, name="media-pipeline", **env):
        """A media-pipeline worker; it registers itself in Redis, where the gateway finds it."""
        port = harness.stack.free_port()
        e = dict(PL_PIPELINE_PORT=port, PL_PIPELINE_RELAY_LISTEN="tcp://127.0.0.1:0",
                 PL_PIPELINE_RECORDINGS_DIR=os.path.join(self.ctx.workdir, "pipeline-recordings"),
                 PL_PIPELINE_STT_DECODERS=4, PL_PIPELINE_CAPACITY=8)
        e.update(env)
        svc = harness.Service(name, self.ctx.env(**e), port, self.ctx.workdir,
                              binary="media-pipeline").start()
        self.ctx.services[name] = svc
        return svc

    def fake_get(self, path):
        return self.ctx.http("GET", path, port=self.fake_port)

    def dials(self):
        return self.fake_get("/_fake/dials").json

    def reset(self):
        self.ctx.http("POST", "/_fake/reset", port=self.fake_port, raw=b"")
