"""Latency of ``GET /persons/{id_number}`` under concurrent clients on loopback.

    .venv/bin/python -m benchmarks.bench_api [--persons 1000000] [--home var/bench_api]
        [--clients 50] [--seconds 30] [--workers 2] [--reuse]

1. Builds (or with ``--reuse`` takes) a master of N persons: the warehouse test factory's work
   database (registry, grid and pension records, households, houses) plus names, ID numbers and
   phones (``tests/service/factory.enrich``), published with the real ``warehouse.publish``.
2. Creates a ``service`` user and token in the benchmark's own decisions database.
3. Starts ``uvicorn unigrid.service.app:app_from_env`` (``--workers`` processes) on a free
   loopback port, as ``unigrid serve`` does.
4. Fires ``--clients`` concurrent keep-alive clients (asyncio + httpx, one process) looping
   ``GET /persons/{id}?purpose=...`` over random known ID numbers for ``--seconds`` (after a
   short warm-up), and prints p50 / p95 / p99 / max latency and throughput. Every request is a
   full lookup: golden record, source records, households, houses, findings, and an access-log
   entry written to the decisions database before the response.

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


def start_server(home: Path, port: int, workers: int) -> subprocess.Popen:
    """uvicorn with the service factory (settings from UNIGRID_* variables)."""
    env = {**os.environ, "UNIGRID_HOME": str(home),
           "UNIGRID_MASTER_DB": str(home / "unigrid.duckdb"),
           "UNIGRID_DECISIONS_DB": str(home / "decisions.duckdb")}
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "unigrid.service.app:app_from_env",
           "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
           "--no-access-log", "--log-level", "warning"]
    return subprocess.Popen(cmd, env=env, cwd=ROOT)


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


async def load(url: str, token: str, ids: list[str], clients: int, seconds: float,
               warmup: float, seed: int) -> tuple[list[float], int, float]:
    """Latencies (ms) of successful requests in the measured window, errors, window seconds."""
    import httpx

    rnd = random.Random(seed)
    headers = {"Authorization": f"Bearer {token}"}
    lat: list[float] = []
    errors = 0
    t_start = time.monotonic()
    t_measure = t_start + warmup
    t_end = t_measure + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits,
                                 timeout=60) as c:
        async def worker() -> None:
            nonlocal errors
            while True:
                i = ids[rnd.randrange(len(ids))]
                t0 = time.monotonic()
                if t0 >= t_end:
                    return
                try:
                    r = await c.get(f"/persons/{i}", params={"purpose": "性能测试"})
                    ok = r.status_code == 200
                    if not ok:
                        print(f"HTTP {r.status_code}: {r.text[:200]}", file=sys.stderr)
                except httpx.HTTPError as exc:
                    ok = False
                    print(f"client error: {type(exc).__name__}", file=sys.stderr)
                t1 = time.monotonic()
                if t0 >= t_measure:
                    if ok:
                        lat.append((t1 - t0) * 1000)
                    else:
                        errors += 1

        await asyncio.gather(*(worker() for _ in range(clients)))
    return lat, errors, seconds


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank)."""
    v = sorted(values)
    return v[min(len(v) - 1, max(0, int(round(p / 100 * len(v))) - 1))] if v else float("nan")


def run(persons: int, home: Path, clients: int, seconds: float, workers: int, reuse: bool,
        warmup: float = 3.0, seed: int = 1) -> dict[str, float]:
    """Build / reuse, serve, load; return the figures (also printed)."""
    master = build_master(home, persons, reuse)
    ids = sample_ids(master, min(10000, persons), seed)
    token = service_token(home / "decisions.duckdb")
    port = free_port()
    proc = start_server(home, port, workers)
    url = f"http://127.0.0.1:{port}"
    try:
        asyncio.run(wait_ready(url))
        lat, errors, window = asyncio.run(load(url, token, ids, clients, seconds, warmup, seed))
    finally:
        proc.terminate()
        proc.wait(30)
    out = {"persons": persons, "clients": clients, "workers": workers, "requests": len(lat),
           "errors": errors, "throughput_rps": len(lat) / window,
           "p50_ms": percentile(lat, 50), "p95_ms": percentile(lat, 95),
           "p99_ms": percentile(lat, 99), "max_ms": max(lat) if lat else float("nan"),
           "load_avg_1m": os.getloadavg()[0]}
    print(f"GET /persons/{{id_number}}: {out['requests']:,} requests in {window:.0f} s "
          f"({out['throughput_rps']:.0f}/s), {clients} clients, {workers} worker(s), "
          f"{persons:,} persons; p50 {out['p50_ms']:.1f} ms, p95 {out['p95_ms']:.1f} ms, "
          f"p99 {out['p99_ms']:.1f} ms, max {out['max_ms']:.1f} ms; errors {errors}; "
          f"load average {out['load_avg_1m']:.1f} on {os.cpu_count()} cores")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--persons", type=int, default=1_000_000)
    ap.add_argument("--home", type=Path, default=Path("var/bench_api"))
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--reuse", action="store_true", help="reuse a master already built there")
    a = ap.parse_args()
    run(a.persons, a.home.resolve(), a.clients, a.seconds, a.workers, a.reuse)


if __name__ == "__main__":
    main()
