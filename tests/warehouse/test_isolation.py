"""Write-audit-publish under stress: a publish killed midway, readers in other processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.warehouse.conftest import sha256
from tests.warehouse.factory import make_work_db
from unigrid.settings import Settings
from warehouse.publish import publish
from warehouse.queries import latest_run, open_master

REPO = Path(__file__).resolve().parents[2]
RUN1, RUN2 = "20261120", "20261121"

PREAMBLE = """
import json, sys, time
from pathlib import Path
from tests.warehouse.conftest import settings_at
home = Path(sys.argv[1])
settings = settings_at(home)
"""

KILLED_CHILD = PREAMBLE + """
from warehouse.publish import publish
stop_at = sys.argv[2]
def hook(step):
    if step == stop_at:
        (home / "child.at").write_text(step)
        time.sleep(120)
publish(settings, sys.argv[3], hook=hook)
"""

HOLDING_READER = PREAMBLE + """
from warehouse.queries import open_master, latest_run
out = {}
with open_master(settings) as con:
    out["before"] = [latest_run(con)["run_id"],
                     con.execute("SELECT count(*) FROM master.person").fetchone()[0]]
    (home / "reader.ready").write_text("1")
    deadline = time.time() + 120
    while not (home / "reader.go").exists() and time.time() < deadline:
        time.sleep(0.05)
    out["same_connection_after_swap"] = [
        latest_run(con)["run_id"],
        con.execute("SELECT count(*) FROM master.person").fetchone()[0],
        con.execute("SELECT count(*) FROM master.person p JOIN master.person_link l "
                    "USING (person_id)").fetchone()[0]]
with open_master(settings) as con:
    out["new_connection"] = [latest_run(con)["run_id"],
                             con.execute("SELECT count(*) FROM master.person").fetchone()[0]]
(home / "reader.json").write_text(json.dumps(out))
"""

POLLING_READER = PREAMBLE + """
from warehouse.queries import open_master, latest_run
seen, errors, n = set(), [], 0
(home / "poller.ready").write_text("1")
while not (home / "poller.stop").exists():
    try:
        with open_master(settings) as con:
            run = latest_run(con)
            persons = con.execute("SELECT count(*) FROM master.person").fetchone()[0]
            links = con.execute("SELECT count(*) FROM master.person_link").fetchone()[0]
            if persons != run["persons"] or links != run["person_links"]:
                errors.append(f"run {run['run_id']}: {persons} persons, "
                              f"audit says {run['persons']}")
            seen.add(run["run_id"])
            n += 1
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
(home / "poller.json").write_text(json.dumps({"seen": sorted(seen), "errors": errors, "reads": n}))
"""


def _spawn(script: str, *args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-c", script, *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"child ended early: {proc.stderr.read()[-3000:]}")
        if time.time() > deadline:
            proc.kill()
            raise AssertionError(f"timed out waiting for {path.name}")
        time.sleep(0.05)


def kill_publish_at(settings: Settings, stop_at: str, run_id: str) -> None:
    """Run ``publish(run_id)`` in a child process and SIGKILL it at hook step ``stop_at``."""
    child = _spawn(KILLED_CHILD, str(settings.home), stop_at, run_id)
    _wait_for(settings.home / "child.at", child)
    os.kill(child.pid, signal.SIGKILL)
    assert child.wait(timeout=60) == -signal.SIGKILL


@pytest.mark.slow
@pytest.mark.parametrize("stop_at", ["built", "before_swap"])
def test_killed_publish_leaves_master_unchanged_and_next_run_succeeds(
        settings: Settings, stop_at: str) -> None:
    publish(settings, RUN1)
    before = sha256(settings.master_db)
    make_work_db(settings.work_db, persons=41, run_id=RUN2, replace=False)
    kill_publish_at(settings, stop_at, RUN2)
    # the live master is untouched and readable; the half-built file is left behind
    assert sha256(settings.master_db) == before
    with open_master(settings) as con:
        assert latest_run(con)["run_id"] == RUN1
        assert con.execute("SELECT count(*) FROM master.person").fetchone()[0] == 40
    leftovers = sorted(p.name for p in settings.home.glob("master.duckdb.building-*"))
    assert f"master.duckdb.building-{RUN2}" in leftovers
    # the next run cleans up and publishes (the dead child's lock died with it)
    res = publish(settings, RUN2)
    assert f"master.duckdb.building-{RUN2}" in res.removed_leftovers
    assert not list(settings.home.glob("master.duckdb.building-*"))
    with open_master(settings) as con:
        assert latest_run(con)["run_id"] == RUN2
        assert con.execute("SELECT count(*) FROM master.person").fetchone()[0] == 41


@pytest.mark.slow
def test_reader_holding_a_connection_keeps_its_snapshot_new_connection_sees_new_run(
        settings: Settings) -> None:
    publish(settings, RUN1)
    reader = _spawn(HOLDING_READER, str(settings.home))
    _wait_for(settings.home / "reader.ready", reader)
    make_work_db(settings.work_db, persons=41, run_id=RUN2, replace=False)
    res = publish(settings, RUN2)  # while the other process holds its read-only connection
    assert res.counts["master.person"] == 41
    (settings.home / "reader.go").write_text("1")
    assert reader.wait(timeout=120) == 0, reader.stderr.read()[-3000:]
    out = json.loads((settings.home / "reader.json").read_text())
    assert out["before"] == [RUN1, 40]
    assert out["same_connection_after_swap"] == [RUN1, 40, 75]
    assert out["new_connection"] == [RUN2, 41]


@pytest.mark.slow
def test_polling_readers_never_see_a_half_built_master(settings: Settings) -> None:
    publish(settings, RUN1)
    poller = _spawn(POLLING_READER, str(settings.home))
    _wait_for(settings.home / "poller.ready", poller)
    runs = ["20261121", "20261122", "20261123"]
    for i, run in enumerate(runs):
        make_work_db(settings.work_db, persons=41 + i, run_id=run, replace=False)
        publish(settings, run)
        time.sleep(0.3)
    (settings.home / "poller.stop").write_text("1")
    assert poller.wait(timeout=120) == 0, poller.stderr.read()[-3000:]
    out = json.loads((settings.home / "poller.json").read_text())
    assert out["errors"] == []
    assert out["reads"] > 0 and runs[-1] in out["seen"]
    assert set(out["seen"]) <= {RUN1, *runs}
