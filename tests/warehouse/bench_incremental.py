"""Profile a publish on a real home: seconds per master-building function, then publish steps.

``python -m tests.warehouse.bench_incremental --home H --run R [--build-only] [--mode M]``

1. builds the master of run ``R`` from ``H``'s work database into an in-memory catalog (the live
   master attached as ``prev``, as a publish does) and prints the seconds of every builder
   function (so it shows which table dominates);
2. unless ``--build-only``: publishes run ``R`` into ``H`` (``--mode full`` or ``incremental``)
   and prints the seconds per publish step and the rows inserted / deleted per table.

Prints figures only: speed is never asserted in tests.
"""

from __future__ import annotations

import argparse
import functools
import time
from pathlib import Path

from unigrid.settings import load_settings


def _timed(module, name: str, out: dict[str, float]) -> None:
    fn = getattr(module, name)

    @functools.wraps(fn)
    def wrapper(*a, **k):
        t = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            out[f"{module.__name__.split('.')[-1]}.{name}"] = time.perf_counter() - t

    setattr(module, name, wrapper)


def profile_build(settings, run_id: str) -> dict[str, float]:
    """Seconds of every builder function of one master build (in memory, nothing written)."""
    import warehouse.master_build as mb
    import warehouse.service_tables as st
    from warehouse.connection import connect_attached
    from warehouse.publish import _attach

    out: dict[str, float] = {}
    builders = [n for n in dir(mb) if n.startswith(("build_", "fill_", "stage_inputs",
                                                      "carry_", "create_tables"))
                and n != "build_master"]
    for n in builders:
        _timed(mb, n, out)
    for n in ("build_source_record", "build_person_name", "build_review_queue"):
        _timed(st, n, out)
    try:
        import warehouse.person_doc as pd
        _timed(pd, "build_person_doc", out)
    except ImportError:
        pass
    con = connect_attached(":memory:", "fresh")
    try:
        _attach(con, Path(settings.work_db), mb.WORK)
        has_prev = Path(settings.master_db).exists()
        has_dec = Path(settings.decisions_db).exists()
        if has_prev:
            _attach(con, Path(settings.master_db), mb.PREV)
        if has_dec:
            _attach(con, Path(settings.decisions_db), mb.DECISIONS)
        t = time.perf_counter()
        mb.build_master(con, run_id, has_prev, has_dec)
        out["total"] = time.perf_counter() - t
    finally:
        con.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", required=True, type=Path)
    ap.add_argument("--run", required=True)
    ap.add_argument("--build-only", action="store_true")
    ap.add_argument("--no-profile", action="store_true", help="skip step 1")
    ap.add_argument("--mode", choices=("full", "incremental"), default="incremental")
    args = ap.parse_args()
    settings = load_settings(env={"UNIGRID_HOME": str(args.home)}, cwd=args.home)
    if not args.no_profile:
        prof = profile_build(settings, args.run)
        print("build seconds per function:")
        for name, s in sorted(prof.items(), key=lambda kv: -kv[1]):
            print(f"  {name:40s} {s:8.2f}")
    if args.build_only:
        return
    from warehouse.publish import publish
    res = publish(settings, args.run, force=True, full_rebuild=args.mode == "full")
    print(f"publish {res.mode} ({res.mode_reason}): {res.seconds:.1f} s; steps {res.steps}")
    for t, c in res.changes.items():
        if c["inserted"] or c["deleted"]:
            print(f"  {t:28s} +{c['inserted']:>9,} -{c['deleted']:>9,} = {res.counts[t]:>9,}")
    size = Path(settings.master_db).stat().st_size
    print(f"master file: {size / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
