"""The stage order shared by the CLI (``unigrid run``) and the Airflow DAG.

Each stage is a plain function ``(settings, ctx) -> StageResult``. The heavy work lives in the
domain packages (connectors, quality, matching, warehouse); this module only orders the stages,
imports those packages lazily (so the DAG file parses fast) and records what each stage did.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Callable, Mapping

from unigrid.settings import Settings


class NotImplementedStage(RuntimeError):
    """Raised by a stage that a later issue fills in: an honest error, never a fake success."""


class StageFailed(RuntimeError):
    """A stage ran and found it must not continue (e.g. a required source failed)."""


@dataclass(frozen=True)
class RunContext:
    """What identifies one run: its id, business date and options."""

    run_id: str
    business_date: date
    full_rebuild: bool = False
    sources: tuple[str, ...] | None = None
    """Restrict to these contract names (None = every contract)."""

    @staticmethod
    def for_date(business_date: date, full_rebuild: bool = False,
                 sources: tuple[str, ...] | None = None) -> "RunContext":
        """The run of one business date. Re-running a date reuses its id (idempotent)."""
        return RunContext(run_id=business_date.strftime("%Y%m%d"), business_date=business_date,
                          full_rebuild=full_rebuild, sources=sources)


@dataclass
class StageResult:
    """What a stage did, for the run summary, XCom and ``audit.run``."""

    stage: str
    status: str = "ok"  # ok | partial | failed | not_implemented
    seconds: float = 0.0
    counts: dict[str, Any] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (XCom, run summary file)."""
        return {"stage": self.stage, "status": self.status, "seconds": round(self.seconds, 3),
                "counts": self.counts, "messages": self.messages}


StageFn = Callable[[Settings, RunContext], StageResult]


def _report(settings: Settings, ctx: RunContext) -> StageResult:
    """The report stage, given the rules' Chinese titles (warehouse may not import quality)."""
    from quality.rules import rule_infos
    from warehouse.report.stage import report_stage
    return report_stage(settings, ctx, rules=rule_infos())


_STAGE_FUNCTIONS: dict[str, str] = {
    "extract": "connectors.stage:extract_stage",
    "validate": "quality.stage:validate_stage",
    "standardise": "matching.stage:standardise_stage",
    "match": "matching.stage:match_stage",
    "check": "quality.rules.runner:check_stage",
    "publish": "warehouse.publish:publish_stage",
    "report": "unigrid.stages:_report",
}
"""Stage name -> ``module:function``, in run order; imported only when the stage runs, so that
the CLI and the DAG file start without loading the heavy packages."""


def _lazy(target: str) -> StageFn:
    """A stage function that imports ``module:function`` on its first call."""
    module, _, name = target.partition(":")

    def stage(settings: Settings, ctx: RunContext) -> StageResult:
        import importlib
        return getattr(importlib.import_module(module), name)(settings, ctx)

    stage.__name__ = name
    return stage


STAGES: Mapping[str, StageFn] = {n: _lazy(t) for n, t in _STAGE_FUNCTIONS.items()}
"""Stage name -> function, in run order.

``check`` runs before ``publish`` (DESIGN.md draws it after): the findings are computed in the work
database and published in the same atomic swap as the master they cite, so readers never see
findings about persons they cannot look up, and a failed run keeps yesterday's findings too.
"""


def run_stage(name: str, settings: Settings, ctx: RunContext) -> StageResult:
    """Run one stage by name, timing it and turning 'not yet implemented' into a result."""
    fn = STAGES[name]
    t0 = time.perf_counter()
    try:
        result = fn(settings, ctx)
    except NotImplementedStage as exc:
        result = StageResult(stage=name, status="not_implemented", messages=[str(exc)])
    except StageFailed as exc:
        result = StageResult(stage=name, status="failed", messages=[str(exc)])
    except Exception as exc:  # noqa: BLE001 - a stage bug must end as a failed stage, not a crash
        trace = _save_traceback(settings, ctx, name)
        result = StageResult(stage=name, status="failed",
                             messages=[f"{type(exc).__name__}: {exc}", f"traceback: {trace}"])
    result.seconds = time.perf_counter() - t0
    return result


def _save_traceback(settings: Settings, ctx: RunContext, stage: str) -> Path:
    """Write the current exception's traceback to ``<home>/logs`` (not to the console log)."""
    import traceback

    path = Path(settings.home) / "logs" / f"{ctx.run_id}-{stage}.traceback.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(traceback.format_exc(), encoding="utf-8")
    return path


def run_all(settings: Settings, ctx: RunContext, until: str | None = None,
            on_stage: Callable[[StageResult], None] | None = None) -> list[StageResult]:
    """Run the stages in order; stop after ``until`` or at the first failed/unbuilt stage."""
    results: list[StageResult] = []
    for name in STAGES:
        r = run_stage(name, settings, ctx)
        results.append(r)
        if on_stage:
            on_stage(r)
        if r.status in ("failed", "not_implemented") or name == until:
            break
    return results


def now_iso() -> str:
    """Current local time as ISO text (for summaries)."""
    return datetime.now().astimezone().isoformat(timespec="seconds")
