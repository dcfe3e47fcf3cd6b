"""The DAG file imports cleanly, cheaply, and has the promised shape."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.airflow

PROBE = textwrap.dedent("""
    import json, sys
    from airflow.dag_processing.dagbag import DagBag
    heavy = ("duckdb", "pandas", "great_expectations", "splink", "connectors", "quality",
             "matching", "warehouse")
    before = set(sys.modules)
    bag = DagBag(dag_folder=sys.argv[1])
    dag = bag.dags.get("unigrid_nightly")
    out = {
        "errors": {k: str(v) for k, v in bag.import_errors.items()},
        "dags": sorted(bag.dags),
        "heavy": sorted(m for m in heavy if m in sys.modules and m not in before),
    }
    if dag is not None:
        out.update({
            "tasks": [t.task_id for t in dag.tasks],
            "schedule": str(dag.timetable.expression),
            "tz": str(dag.timezone),
            "catchup": dag.catchup,
            "max_active_runs": dag.max_active_runs,
            "params": sorted(dag.params.keys()),
            "extract_retries": dag.get_task("extract").retries,
            "extract_serial": dag.get_task("extract").max_active_tis_per_dagrun,
            "downstream_of_validate": sorted(dag.get_task("validate").downstream_task_ids),
            "has_failure_callback": dag.default_args.get("on_failure_callback") is not None,
        })
    print("RESULT" + json.dumps(out))
""")


@pytest.fixture(scope="module")
def parsed(airflow_home: dict[str, str]) -> dict:
    env = dict(airflow_home, UNIGRID_AIRFLOW_RETRIES="3")
    proc = subprocess.run([sys.executable, "-c", PROBE, str(REPO / "dags")], env=env,
                          capture_output=True, text=True, timeout=300)
    line = next(l for l in proc.stdout.splitlines() if l.startswith("RESULT"))
    return json.loads(line[len("RESULT"):])


def test_dagbag_imports_without_errors(parsed: dict) -> None:
    assert parsed["errors"] == {}
    assert parsed["dags"] == ["unigrid_nightly"]


def test_parse_time_imports_nothing_heavy(parsed: dict) -> None:
    assert parsed["heavy"] == []


@pytest.mark.parametrize(("key", "expected"), [
    ("schedule", "0 2 * * *"),
    ("tz", "Asia/Shanghai"),
    ("catchup", False),
    ("max_active_runs", 1),
    ("params", ["business_date", "full_rebuild"]),
    ("extract_retries", 3),
    ("extract_serial", 1),
    ("downstream_of_validate", ["standardise"]),
    ("has_failure_callback", True),
])
def test_dag_shape(parsed: dict, key: str, expected) -> None:
    assert parsed[key] == expected


def test_stage_tasks_in_order(parsed: dict) -> None:
    tasks = parsed["tasks"]
    order = ["plan", "extract", "validate", "standardise", "match", "check", "publish", "report"]
    assert [t for t in tasks if t in order] == order
