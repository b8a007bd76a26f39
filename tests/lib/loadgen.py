"""Open-loop HTTP load for the benchmarks: requests sent at their due times from one thread over
keep-alive connections, each with one request in flight (as civetweb serves them), so the load
generator costs little CPU and adds no thread hand-offs of its own; and the percentiles and CPU
figures the benchmarks print."""
import os
import selectors
import socket
import time


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p))] if v else float("nan")


class _Conn:
    """One keep-alive connection with at most one request in flight."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.buf = b""
        self.index = None  # the request whose answer is awaited

    def response(self):
        """(status, body) of the complete response in buf (consumed), or None while incomplete."""
        head_end = self.buf.find(b"\r\n\r\n")
        if head_end < 0:
            return None
        head = self.buf[:head_end].decode("latin-1").split("\r\n")
        length = 0
        for line in head[1:]:
            k, _, v = line.partition(":")
            if k.strip().lower() == "content-length":
                length = int(v)
            elif k.strip().lower() == "transfer-encoding":
                raise RuntimeError("chunked answers are not expected")
        if len(self.buf) < head_end + 4 + length:
            return None
        body = self.buf[head_end + 4:head_end + 4 + length]
        self.buf = self.buf[head_end + 4 + length:]
        return int(head[0].split()[1]), body


def run(port, requests, t0, due, connections=64):
    """Sends raw request i (bytes) at t0 + due[i] over `connections` connections to port. Returns
    (sent, done, answers, late): send and answer times per request, (status, body) per request,
    and the ms each send left after its due time."""
    conns = [_Conn(port) for _ in range(connections)]
    idle = list(conns)
    sel = selectors.DefaultSelector()
    for c in conns:
        sel.register(c.sock, selectors.EVENT_READ, c)
    n = len(requests)
    sent, done, answers, late = [None] * n, [None] * n, [None] * n, []
    i = busy = 0
    while i < n or busy:
        now = time.time()
        if i < n and idle and now >= t0 + due[i]:
            c = idle.pop(0)  # the longest idle: every connection stays in use
            c.index = i
            sent[i] = time.time()
            c.sock.sendall(requests[i])
            late.append((sent[i] - (t0 + due[i])) * 1000)
            i += 1
            busy += 1
            continue
        timeout = max(0.0, t0 + due[i] - time.time()) if i < n and idle else None
        for k, _ in sel.select(timeout):
            c = k.data
            data = c.sock.recv(65536)
            if not data and c.index is None:  # closed while idle (keep-alive timeout): reopen
                sel.unregister(c.sock)
                c.sock.close()
                idle.remove(c)
                conns.remove(c)
                c = _Conn(port)
                conns.append(c)
                idle.append(c)
                sel.register(c.sock, selectors.EVENT_READ, c)
                continue
            if not data:
                raise RuntimeError("the server closed a connection with a request in flight")
            c.buf += data
            got = c.response()
            if got is not None:
                done[c.index] = time.time()
                answers[c.index] = got
                c.index = None
                idle.append(c)
                busy -= 1
    for c in conns:
        sel.unregister(c.sock)
        c.sock.close()
    return sent, done, answers, late


def cpu_seconds(ctx):
    """CPU seconds (user + system) used so far by each process of a harness.Suite's stack:
    Postgres (the postmaster, the backends it has reaped, the live ones), Redis, every service,
    this load generator."""
    hz = os.sysconf("SC_CLK_TCK")

    def stat(pid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()
        except OSError:
            return None

    out = {}
    with open(os.path.join(ctx.pg.root, "data", "postmaster.pid")) as f:
        pm = f.readline().strip()
    pg = 0
    for pid in os.listdir("/proc"):
        st = stat(pid) if pid.isdigit() else None
        if st is not None and (pid == pm or st[1] == pm):
            pg += int(st[11]) + int(st[12]) + (int(st[13]) + int(st[14]) if pid == pm else 0)
    out["postgres"] = pg / hz
    procs = [("redis", ctx.redis.proc.pid), ("load generator", os.getpid())]
    procs += [(name, svc.proc.pid) for name, svc in ctx.services.items() if svc.proc]
    for name, pid in procs:
        st = stat(pid)
        if st is not None:
            out[name] = out.get(name, 0) + (int(st[11]) + int(st[12])) / hz
    return out
