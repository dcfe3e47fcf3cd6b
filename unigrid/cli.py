"""The ``unigrid`` command line. Thin: parses options, calls stage functions, prints summaries.

Exit codes scripts can trust:
  0  everything asked for succeeded
  1  a stage failed (data or environment problem; the message says which)
  2  usage error (bad option or argument)
  3  a stage is not implemented yet (nothing after it ran)
  4  the run finished but degraded (e.g. an optional source failed and is stale)
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from unigrid.settings import Settings, load_settings
from unigrid.stages import STAGES, RunContext, StageResult, run_all, run_stage

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOT_IMPLEMENTED, EXIT_DEGRADED = 0, 1, 2, 3, 4

app = typer.Typer(help="unigrid: link departmental person records into one master database.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
console = Console(stderr=False)
err = Console(stderr=True)


def _settings(city: Optional[Path]) -> Settings:
    """Load settings; ``--city DIR`` points sources and truth at a generated city."""
    s = load_settings()
    if city is not None:
        from dataclasses import replace
        city = city.resolve()
        s = replace(s, source_root=city / "exports", truth_dir=city / "truth")
    return s.ensure_dirs()


def _ctx(business_date: Optional[str], full: bool, sources: Optional[list[str]]) -> RunContext:
    try:
        d = date.fromisoformat(business_date) if business_date else date.today()
    except ValueError:
        raise typer.BadParameter(f"{business_date!r} is not a date YYYY-MM-DD", param_hint="--date")
    return RunContext.for_date(d, full_rebuild=full, sources=tuple(sources) if sources else None)


def _exit_code(results: list[StageResult]) -> int:
    statuses = {r.status for r in results}
    if "failed" in statuses:
        return EXIT_FAILED
    if "not_implemented" in statuses:
        return EXIT_NOT_IMPLEMENTED
    if "partial" in statuses:
        return EXIT_DEGRADED
    return EXIT_OK


_STATUS_STYLE = {"ok": "green", "partial": "yellow", "failed": "bold red",
                 "not_implemented": "magenta"}


def print_summary(results: list[StageResult], settings: Settings, ctx: RunContext) -> None:
    """The run summary: one row per stage, then where to look."""
    t = Table(title=f"unigrid run {ctx.run_id} (business date {ctx.business_date})")
    t.add_column("stage")
    t.add_column("status")
    t.add_column("seconds", justify="right")
    t.add_column("counts")
    for r in results:
        counts = ", ".join(f"{k}={v}" for k, v in r.counts.items() if not isinstance(v, dict))
        t.add_row(r.stage, f"[{_STATUS_STYLE.get(r.status, 'white')}]{r.status}[/]",
                  f"{r.seconds:.1f}", counts)
    console.print(t)
    for r in results:
        for m in r.messages:
            console.print(f"[{_STATUS_STYLE.get(r.status, 'white')}]{r.stage}:[/] {m}")
    console.print(f"work database:   {settings.work_db}")
    console.print(f"master database: {settings.master_db}")
    console.print(f"reports:         {settings.report_dir}")


def _write_summary(results: list[StageResult], settings: Settings, ctx: RunContext) -> Path:
    path = settings.home / "runs" / f"{ctx.run_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"run_id": ctx.run_id, "business_date": str(ctx.business_date),
                                "stages": [r.to_dict() for r in results]},
                               ensure_ascii=False, indent=2), encoding="utf-8")
    return path


def _run_stages(names: list[str], city: Optional[Path], business_date: Optional[str],
                full: bool, sources: Optional[list[str]]) -> None:
    settings = _settings(city)
    ctx = _ctx(business_date, full, sources)
    results: list[StageResult] = []
    for name in names:
        with console.status(f"[bold]{name}[/] ..."):
            r = run_stage(name, settings, ctx)
        results.append(r)
        if r.status in ("failed", "not_implemented"):
            break
    print_summary(results, settings, ctx)
    summary = _write_summary(results, settings, ctx)
    console.print(f"run summary:     {summary}")
    raise typer.Exit(_exit_code(results))


CityOpt = typer.Option(None, "--city", help="A generated city folder (uses its exports/ and truth/).")
DateOpt = typer.Option(None, "--date", help="Business date YYYY-MM-DD (default: today). The run id is derived from it.")
FullOpt = typer.Option(False, "--full", help="Full rebuild instead of an incremental run.")
SourcesOpt = typer.Option(None, "--source", "-s", help="Only this source contract (repeatable).")


@app.command()
def generate(
    persons: int = typer.Option(20000, "--persons", "-n", min=100, help="Number of persons in the city."),
    seed: int = typer.Option(7, "--seed", help="Random seed: same seed, same city."),
    out: Path = typer.Option(Path("var/city"), "--out", "-o", help="Output folder."),
    day: int = typer.Option(1, "--day", min=1, help="Snapshot day: 2 writes the next night's exports."),
    sql_url: Optional[str] = typer.Option(None, "--sql-url", help="SQLAlchemy URL to load the SQL-held source into (default: a SQLite file in the exports)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing output folder."),
    churn: Optional[float] = typer.Option(None, "--churn", min=0.0, max=1.0, help="Day 2+: share of rows updated per day besides life events (default 0.01, about 1 % of all records changed; 0: life events only)."),
) -> None:
    """Generate a synthetic city and every department's export (plus ground truth)."""
    from dataclasses import replace

    from unigrid.synthetic import DEFAULT_CONFIG, generate_city

    config = replace(DEFAULT_CONFIG, daily_update_rate=churn) if churn is not None else None

    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=err, transient=True) as bar:
        tasks: dict[str, int] = {}

        def progress(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = bar.add_task(step, total=total)
            bar.update(tasks[step], completed=done, total=total)

        try:
            manifest = generate_city(persons=persons, seed=seed, out=out, day=day, sql_url=sql_url,
                                     force=force, progress=progress, config=config)
        except FileExistsError as exc:
            err.print(f"[red]{exc}[/] (use --force to overwrite)")
            raise typer.Exit(EXIT_FAILED)
    t = Table(title=f"city seed={seed} persons={persons} day={day} -> {out}")
    t.add_column("source")
    t.add_column("file / table")
    t.add_column("records", justify="right")
    for src in manifest["sources"]:
        t.add_row(src["name"], src["location"], str(src["records"]))
    console.print(t)
    console.print(f"truth: {Path(out) / 'truth'}   seconds: {manifest['seconds']:.1f}")


def _stage_command(name: str):
    def cmd(city: Optional[Path] = CityOpt, business_date: Optional[str] = DateOpt,
            full: bool = FullOpt, sources: Optional[list[str]] = SourcesOpt) -> None:
        _run_stages([name], city, business_date, full, sources)
    cmd.__name__ = name
    cmd.__doc__ = f"Run only the {name} stage for a business date."
    return cmd


for _name in STAGES:
    app.command(name=_name)(_stage_command(_name))


def _register_subapps() -> None:
    """Sub-command groups owned by the domain-facing modules."""
    from unigrid.cli_audit import findings_app, roll, views
    from unigrid.cli_serve import serve, users_app
    from unigrid.cli_sources import sources_app
    app.add_typer(sources_app, name="sources")
    app.command()(serve)
    app.add_typer(users_app, name="users")
    app.add_typer(findings_app, name="findings")
    app.command()(roll)
    app.command()(views)
    _register_matching()


def _register_matching() -> None:
    """Review decisions, the model, and ``evaluate`` (links, then the discrepancy rules)."""
    import functools

    from unigrid.cli_match import evaluate as evaluate_links
    from unigrid.cli_match import model_app, review_app

    app.add_typer(review_app, name="review")
    app.add_typer(model_app, name="model")

    @app.command(name="evaluate")
    @functools.wraps(evaluate_links)
    def evaluate(**kwargs):  # type: ignore[no-untyped-def]
        evaluate_links(**kwargs)
        print_rule_evaluation(_settings(kwargs.get("city")))


def print_rule_evaluation(settings: Settings) -> None:
    """Per-rule precision / recall of the findings against the planted anomalies."""
    from quality.rules.evaluate import evaluate_rules

    df = evaluate_rules(settings)
    t = Table(title="cross-department checks vs planted anomalies")
    for c in df.columns:
        t.add_column(str(c))
    for row in df.itertuples(index=False):
        t.add_row(*[f"{v:.4f}" if isinstance(v, float) else str(v) for v in row])
    console.print(t)


_register_subapps()


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True,
                                "help_option_names": []})
def bench(ctx: typer.Context) -> None:
    """City-scale benchmark: generate, full run, day-2 run, baselines (``unigrid bench --help``)."""
    from unigrid.bench import main as bench_main
    raise typer.Exit(bench_main(list(ctx.args)))


@app.command()
def run(city: Optional[Path] = CityOpt, business_date: Optional[str] = DateOpt,
        full: bool = FullOpt, sources: Optional[list[str]] = SourcesOpt) -> None:
    """Run every stage in order (extract ... report) and print the run summary."""
    _run_stages(list(STAGES), city, business_date, full, sources)


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
