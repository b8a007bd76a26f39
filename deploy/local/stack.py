#!/usr/bin/env python3
"""Local Postgres and Redis servers for `make run` and for every test suite.

One copy of the start/stop logic, used two ways:
  * `make run` / `make stop`: a persistent stack under .run/ (deploy/local/run.sh, stop.sh);
  * tests: a throwaway stack per suite, on free ports, removed afterwards (tests/run.py).

Postgres refuses to run as root, so the cluster belongs to the `postgres` user and lives in a
fresh `mktemp -d` folder that user can enter (a checkout may sit under a folder it cannot);
.run/ keeps only a pointer to it.
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

PG_BIN = "/usr/lib/postgresql/15/bin"


def free_port():
    """A TCP port free on 127.0.0.1 right now (the kernel's choice)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=15.0, proc=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before port {port} opened")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"port {port} did not open within {timeout}s")


def _as_postgres(args, **kw):
    cmd = args if os.geteuid() != 0 else ["runuser", "-u", "postgres", "--"] + args
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw)


class Postgres:
    def __init__(self, root=None, port=None, fsync=False):
        """root: an existing cluster folder to reuse, or None for a new one. fsync off suits
        throwaway test clusters; benchmarks turn it on to measure what production pays."""
        self.port = port or free_port()
        self.fsync = fsync
        self.root = root
        self.created = False

    @property
    def url(self):
        return f"postgresql://postgres@127.0.0.1:{self.port}/parley"

    def running(self):
        if not self.root or not os.path.exists(os.path.join(self.root, "data", "postmaster.pid")):
            return False
        try:
            _as_postgres([PG_BIN + "/pg_ctl", "-D", self.root + "/data", "status"])
            return True
        except subprocess.CalledProcessError:
            return False

    def start(self):
        if self.root is None or not os.path.isdir(os.path.join(self.root, "data")):
            self.root = tempfile.mkdtemp(prefix="parley-pg-")
            os.chmod(self.root, 0o755)
            shutil.chown(self.root, "postgres", "postgres")
            _as_postgres([PG_BIN + "/initdb", "-D", self.root + "/data", "-U", "postgres",
                          "--auth=trust", "--no-locale", "-E", "UTF8", "--no-sync"])
            self.created = True
        if not self.running():
            os.makedirs(self.root + "/sock", exist_ok=True)
            shutil.chown(self.root + "/sock", "postgres", "postgres")
            _as_postgres([PG_BIN + "/pg_ctl", "-D", self.root + "/data", "-l", self.root + "/log",
                          "-w", "-o",
                          f"-p {self.port} -k {self.root}/sock -c listen_addresses=127.0.0.1 "
                          f"-c fsync={'on' if self.fsync else 'off'} -c max_connections=300"
                          , "start"])
        wait_port(self.port)
        r = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                            "-tAc", "SELECT 1 FROM pg_database WHERE datname='parley'"],
                           stdout=subprocess.PIPE, text=True, check=True)
        if r.stdout.strip() != "1":
            subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                            "-qc", "CREATE DATABASE parley"], check=True)
        return self

    def psql(self, sql, *params):
        """Runs one query, returns rows as lists of strings (psql -tA, '|' separated)."""
        args = ["psql", self.url, "-tAq", "-v", "ON_ERROR_STOP=1"]
        for i, p in enumerate(params):
            args += ["-v", f"p{i + 1}={p}"]
        r = subprocess.run(args, input=sql, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
        if r.returncode != 0:
            raise RuntimeError(f"psql failed: {r.stderr.strip()}")
        return [line.split("|") for line in r.stdout.splitlines() if line != ""]

    def stop(self, remove=False):
        if self.root and self.running():
            _as_postgres([PG_BIN + "/pg_ctl", "-D", self.root + "/data", "-m", "fast", "-w",
                          "stop"])
        if remove and self.root:
            shutil.rmtree(self.root, ignore_errors=True)


class Redis:
    def __init__(self, root, port=None, persist=False):
        self.root = root
        self.port = port or free_port()
        self.persist = persist
        self.proc = None

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"

    def start(self, pidfile=None):
        os.makedirs(self.root, exist_ok=True)
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir",
                self.root, "--save", "", "--appendonly", "yes" if self.persist else "no",
                "--daemonize", "no", "--logfile", os.path.join(self.root, "redis.log")]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        if pidfile:
            with open(pidfile, "w") as f:
                f.write(str(self.proc.pid))
        wait_port(self.port, proc=self.proc)
        return self

    def cli(self, *args):
        r = subprocess.run(["redis-cli", "-p", str(self.port), "--raw"] + [str(a) for a in args],
                           stdout=subprocess.PIPE, text=True, check=True)
        return r.stdout.strip()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def kill_pidfile(path, sig=signal.SIGTERM, timeout=10.0):
    """Stops the process named in a pid file (if alive) and removes the file."""
    try:
        pid = int(open(path).read().strip())
    except (OSError, ValueError):
        return False
    try:
        os.kill(pid, sig)
        deadline = time.time() + timeout
        while time.time() < deadline:
            os.kill(pid, 0)
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    os.unlink(path)
    return True
