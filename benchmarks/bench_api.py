"""Latency of ``GET /persons/{id_number}`` under concurrent clients on loopback.

    .venv/bin/python -m benchmarks.bench_api [--persons 1000000] [--home var/bench_api]
        [--clients 50] [--seconds 30] [--workers 1] [--reuse] [--client auto|python|wrk|both]

1. Builds (or with ``--reuse`` takes) a master of N persons: the warehouse test factory's work
   database (registry, grid and pension records, households, houses) plus names, ID numbers and
   phones (``tests/service/factory.enrich``), published with the real ``warehouse.publish``.
2. Creates a ``service`` user and token in the benchmark's own decisions database.
3. Starts ``uvicorn unigrid.service.app:app_from_env`` (``--workers`` processes) on a free
   loopback port, as ``unigrid serve`` does.
4. Fires ``--clients`` concurrent closed-loop keep-alive clients looping
   ``GET /persons/{id}?purpose=...`` over random known ID numbers for ``--seconds`` (after a
   short warm-up), and prints p50 / p95 / p99 / max latency and throughput. ``--client``:
   ``wrk`` (C, one thread; optional, ``apt-get install wrk``), ``python`` (built in: asyncio
   raw streams, one process), ``both``, or ``auto`` (wrk when installed, else python). Every
   request is a full lookup (the person's published document, open findings after reviews,
   masking) and an access-log entry fsynced to the journal before the response.

Client and server share the machine: on 2 cores the client's own CPU use is part of the figure.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent


def build_master(home: Path, persons: int, reuse: bool) -> Path:
    """The master of ``persons`` persons under ``home`` (built unless reused); its path."""
    from tests.service.factory import RUN_ID, enrich, settings_at
    from tests.warehouse.factory import make_work_db
    from warehouse.publish import publish

    s = settings_at(home)
    if reuse and s.master_db.exists():
        print(f"reusing {s.master_db}")
        return s.master_db
    home.mkdir(parents=True, exist_ok=True)
    for p in (s.master_db, s.decisions_db):
        p.unlink(missing_ok=True)
    t0 = time.perf_counter()
    make_work_db(s.work_db, persons=persons, run_id=RUN_ID)
    enrich(s.work_db)
    t1 = time.perf_counter()
    res = publish(s, RUN_ID, force=True)
    print(f"work db {t1 - t0:.0f} s, publish {res.seconds:.0f} s: "
          f"{res.counts['master.person']:,} persons, "
          f"{res.counts['master.source_record']:,} source records, "
          f"master {s.master_db.stat().st_size / 1e6:.0f} MB")
    return s.master_db


def sample_ids(master: Path, n: int, seed: int) -> list[str]:
    """``n`` random ID numbers of the master."""
    from warehouse.queries import open_master

    with open_master(master) as con:
        ids = [r[0] for r in con.execute(
            "SELECT id_number FROM (SELECT id_number FROM master.person "
            f"WHERE id_number IS NOT NULL) USING SAMPLE {n} ROWS (reservoir, {seed})"
        ).fetchall()]
    return ids


def count_persons(master: Path) -> int:
    """Persons in a published master."""
    from warehouse.queries import open_master

    with open_master(master) as con:
        return int(con.execute("SELECT count(*) FROM master.person").fetchone()[0])


def service_token(decisions_db: Path) -> str:
    """A fresh service user's API token in the benchmark's decisions database."""
    from unigrid.service.auth import add_user, issue_token

    name = f"bench{int(time.time())}"
    add_user(decisions_db, name, "service")
    return issue_token(decisions_db, name, "api", 1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_cmd(port: int, workers: int) -> list[str]:
    """uvicorn with the service factory as ``unigrid serve`` runs it (no access log, no proxy
    headers; uvloop and httptools when installed)."""
    return [sys.executable, "-m", "uvicorn", "--factory", "unigrid.service.app:app_from_env",
            "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
            "--no-access-log", "--no-proxy-headers", "--log-level", "warning"]


def client_kinds(client: str) -> list[str]:
    """The load clients ``--client`` names: ``auto`` is wrk when installed, else python."""
    import shutil

    return {"auto": ["wrk" if shutil.which("wrk") else "python"], "both": ["python", "wrk"],
            "python": ["python"], "wrk": ["wrk"]}[client]


def start_server(home: Path, port: int, workers: int) -> subprocess.Popen:
    """uvicorn with the service factory (settings from UNIGRID_* variables)."""
    env = {**os.environ, "UNIGRID_HOME": str(home),
           "UNIGRID_MASTER_DB": str(home / "unigrid.duckdb"),
           "UNIGRID_DECISIONS_DB": str(home / "decisions.duckdb")}
    return subprocess.Popen(server_cmd(port, workers), env=env, cwd=ROOT)


async def wait_ready(url: str, timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as c:
        while time.monotonic() < deadline:
            try:
                if (await c.get(f"{url}/health")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("server did not start")


async def _get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
               request: bytes) -> int:
    """Send one keep-alive HTTP/1.1 request and read the whole response; its status."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    body = await reader.readexactly(length)
    if status != 200:
        # the status only: an error body (422) can echo the ID number asked for
        print(f"HTTP {status} ({len(body)} bytes)", file=sys.stderr)
    return status


async def load(url: str, token: str, ids: list[str], clients: int, seconds: float,
               warmup: float, seed: int, probe: "Callable[[], None] | None" = None,
               ) -> tuple[list[float], int, float]:
    """Latencies (ms) of successful requests in the measured window, errors, window seconds.

    ``clients`` closed-loop keep-alive connections in this one process, written on raw
    asyncio streams (an HTTP library costs the shared cores more than the server's work).
    ``probe`` is called when the measured window starts and when it ends (CPU counters)."""
    from urllib.parse import quote, urlsplit

    u = urlsplit(url)
    rnd = random.Random(seed)
    purpose = quote("性能测试")
    lat: list[float] = []
    errors = 0
    t_measure = time.monotonic() + warmup
    t_end = t_measure + seconds

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(u.hostname, u.port)
        try:
            while True:
                i = ids[rnd.randrange(len(ids))]
                req = (f"GET /persons/{i}?purpose={purpose} HTTP/1.1\r\nHost: {u.netloc}\r\n"
                       f"Authorization: Bearer {token}\r\n\r\n").encode()
                t0 = time.monotonic()
                if t0 >= t_end:
                    return
                try:
                    ok = await _get(reader, writer, req) == 200
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    print(f"client error: {type(exc).__name__}", file=sys.stderr)
                    writer.close()
                    reader, writer = await asyncio.open_connection(u.hostname, u.port)
                    ok = False
                t1 = time.monotonic()
                if t0 >= t_measure:
                    if ok:
                        lat.append((t1 - t0) * 1000)
                    else:
                        errors += 1
        finally:
            writer.close()

    async def probe_at(t: float) -> None:
        await asyncio.sleep(max(0.0, t - time.monotonic()))
        if probe is not None:
            probe()

    await asyncio.gather(*(worker() for _ in range(clients)), probe_at(t_measure),
                         probe_at(t_end))
    return lat, errors, seconds


WRK_SCRIPT = r"""
local ids = {}
for line in io.lines(os.getenv("UG_IDS")) do ids[#ids + 1] = line end
local headers = {["Authorization"] = "Bearer " .. os.getenv("UG_TOKEN")}
local purpose = os.getenv("UG_PURPOSE")
math.randomseed(tonumber(os.getenv("UG_SEED")))
request = function()
  return wrk.format("GET", "/persons/" .. ids[math.random(#ids)] .. "?purpose=" .. purpose,
                    headers)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("UGRESULT %d %d %.3f %.3f %.3f %.3f %.3f\n", summary.requests,
    e.connect + e.read + e.write + e.status + e.timeout, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
"""


def wrk_load(url: str, token: str, ids: list[str], clients: int, seconds: float,
             warmup: float, seed: int, probe: "Callable[[], None] | None" = None,
             ) -> dict[str, float]:
    """The same load with ``wrk`` (C, one thread: far lighter than a Python client), if it is
    installed: requests, errors, window, p50 / p95 / p99 / max in ms, and ``client_cpu_s``
    (wrk's user + system CPU seconds in the measured run). ``probe`` is called just before and
    just after the measured run."""
    import resource
    import shutil
    import tempfile
    from urllib.parse import quote

    exe = shutil.which("wrk")
    if exe is None:
        raise FileNotFoundError("wrk is not installed (apt-get install wrk)")
    with tempfile.TemporaryDirectory() as tmp:
        script, idfile = Path(tmp) / "persons.lua", Path(tmp) / "ids.txt"
        script.write_text(WRK_SCRIPT)
        idfile.write_text("\n".join(ids) + "\n")
        env = {**os.environ, "UG_IDS": str(idfile), "UG_TOKEN": token,
               "UG_PURPOSE": quote("性能测试"), "UG_SEED": str(seed)}
        base = [exe, "-t", "1", "-c", str(clients), "-s", str(script), "--timeout", "60s", url]
        if warmup > 0:
            subprocess.run(base[:1] + ["-d", f"{max(1, round(warmup))}s"] + base[1:], env=env,
                           check=True, capture_output=True)
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        if probe is not None:
            probe()
        out = subprocess.run(base[:1] + ["-d", f"{round(seconds)}s"] + base[1:], env=env,
                             check=True, capture_output=True, text=True).stdout
        if probe is not None:
            probe()
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next(x for x in out.splitlines() if x.startswith("UGRESULT"))
    n, err, window, p50, p95, p99, mx = (float(v) for v in line.split()[1:])
    return {"requests": int(n) - int(err), "errors": int(err), "window": window,
            "p50_ms": p50, "p95_ms": p95, "p99_ms": p99, "max_ms": mx,
            "client_cpu_s": (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)}


class CpuProbe:
    """CPU seconds (user + system) of the server's process tree, and of this process, between
    two calls: what the measured window cost the server and the built-in client."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.marks: list[tuple[float, float]] = []

    def server_cpu(self) -> float:
        """User + system CPU seconds of the server and its worker processes so far."""
        import psutil

        root = psutil.Process(self.server_pid)
        total = 0.0
        for p in [root, *root.children(recursive=True)]:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return total

    def __call__(self) -> None:
        self.marks.append((self.server_cpu(), time.process_time()))

    def window(self) -> tuple[float, float]:
        """(server CPU s, this process's CPU s) between the first and the last mark."""
        if len(self.marks) < 2:
            return float("nan"), float("nan")
        (s0, c0), (s1, c1) = self.marks[0], self.marks[-1]
        return s1 - s0, c1 - c0


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank)."""
    v = sorted(values)
    return v[min(len(v) - 1, max(0, int(round(p / 100 * len(v))) - 1))] if v else float("nan")


def _report(client: str, out: dict, clients: int, workers: int, persons: int) -> None:
    print(f"GET /persons/{{id_number}} [{client} client]: {out['requests']:,} requests in "
          f"{out['window']:.0f} s ({out['throughput_rps']:.0f}/s), {clients} clients, "
          f"{workers} worker(s), {persons:,} persons; p50 {out['p50_ms']:.1f} ms, "
          f"p95 {out['p95_ms']:.1f} ms, p99 {out['p99_ms']:.1f} ms, max {out['max_ms']:.1f} ms; "
          f"errors {out['errors']}; load average {out['load_avg_1m']:.1f} on "
          f"{os.cpu_count()} cores; CPU per request: server {out['server_cpu_ms_per_req']:.3f} "
          f"ms, client {out['client_cpu_ms_per_req']:.3f} ms")


def measure(kind: str, url: str, token: str, ids: list[str], clients: int, seconds: float,
            warmup: float, seed: int, server_pid: int) -> dict:
    """One load run with client ``kind`` (``wrk`` or ``python``) against the server at
    ``url`` (process ``server_pid``): latency percentiles, throughput, and CPU seconds of
    server and client in the measured window (total and per request)."""
    probe = CpuProbe(server_pid)
    if kind == "wrk":
        out = wrk_load(url, token, ids, clients, seconds, warmup, seed, probe)
        server_cpu, _ = probe.window()
    else:
        lat, errors, window = asyncio.run(load(url, token, ids, clients, seconds, warmup, seed,
                                               probe))
        out = {"requests": len(lat), "errors": errors, "window": window,
               "p50_ms": percentile(lat, 50), "p95_ms": percentile(lat, 95),
               "p99_ms": percentile(lat, 99), "max_ms": max(lat) if lat else float("nan")}
        server_cpu, out["client_cpu_s"] = probe.window()
    n = max(1, out["requests"] + out["errors"])
    out.update({"client": kind, "clients": clients, "throughput_rps": out["requests"] /
                out["window"], "server_cpu_s": server_cpu,
                "server_cpu_ms_per_req": 1000 * server_cpu / n,
                "client_cpu_ms_per_req": 1000 * out["client_cpu_s"] / n,
                "load_avg_1m": os.getloadavg()[0]})
    return out


def run(persons: int, home: Path, clients: int, seconds: float, workers: int, reuse: bool,
        warmup: float = 3.0, seed: int = 1, client: str = "auto") -> list[dict[str, float]]:
    """Build / reuse, serve, load with the chosen client(s); return the figures (printed)."""
    master = build_master(home, persons, reuse)
    if reuse:
        persons = count_persons(master)
    ids = sample_ids(master, min(10000, persons), seed)
    token = service_token(home / "decisions.duckdb")
    kinds = client_kinds(client)
    port = free_port()
    proc = start_server(home, port, workers)
    url = f"http://127.0.0.1:{port}"
    results = []
    try:
        asyncio.run(wait_ready(url))
        for kind in kinds:
            out = measure(kind, url, token, ids, clients, seconds, warmup, seed, proc.pid)
            out.update({"persons": persons, "workers": workers})
            _report(kind, out, clients, workers, persons)
            results.append(out)
    finally:
        proc.terminate()
        proc.wait(30)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--persons", type=int, default=1_000_000)
    ap.add_argument("--home", type=Path, default=Path("var/bench_api"))
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--workers", type=int, default=1,
                    help="uvicorn worker processes (1: one worker and its lookup thread use "
                    "both cores; two workers measured slower on 2 cores, see docs/service.md)")
    ap.add_argument("--reuse", action="store_true", help="reuse a master already built there")
    ap.add_argument("--client", choices=["auto", "python", "wrk", "both"], default="auto",
                    help="load client: wrk if installed (auto), the built-in asyncio one, "
                    "or both one after the other")
    a = ap.parse_args()
    run(a.persons, a.home.resolve(), a.clients, a.seconds, a.workers, a.reuse,
        client=a.client)


if __name__ == "__main__":
    main()
