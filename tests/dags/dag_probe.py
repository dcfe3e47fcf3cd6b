"""Run the nightly DAG once with ``dag.test()`` (executed in a subprocess by the tests).

argv: dags folder, business date. Prints one ``RESULT{json}`` line: run state and task states.
"""

import json
import sys
from datetime import date, datetime, time, timezone

from airflow.dag_processing.dagbag import DagBag

bag = DagBag(dag_folder=sys.argv[1])
dag = bag.dags["unigrid_nightly"]
d = date.fromisoformat(sys.argv[2])
dr = dag.test(logical_date=datetime.combine(d, time(18, 0), tzinfo=timezone.utc),
              run_conf={"business_date": sys.argv[2]})
states = {ti.task_id + (f"[{ti.map_index}]" if ti.map_index >= 0 else ""): str(ti.state)
          for ti in dr.get_task_instances()}
print("RESULT" + json.dumps({"state": str(dr.state), "tasks": states}))
