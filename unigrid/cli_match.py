"""CLI pieces of the matching package, registered by ``unigrid/cli.py``:

- ``review_app`` (``unigrid review decide | list | undo | explain``): the stewards' decisions;
- ``model_app`` (``unigrid model train``): train a new linkage model version on request;
- :func:`evaluate` (``unigrid evaluate``): score a run against the generator's truth.

No personal data is printed: record references are source names and record keys; the worst
errors that ``evaluate`` lists show masked names and ID numbers.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from unigrid.settings import Settings, load_settings

console = Console()
err = Console(stderr=True)

EXIT_FAILED, EXIT_USAGE = 1, 2

review_app = typer.Typer(help="Review match conflicts: record, list and undo decisions.",
                         no_args_is_help=True, add_completion=False)
model_app = typer.Typer(help="The linkage model (versioned artefacts in the model folder).",
                        no_args_is_help=True, add_completion=False)


def _cell(v: object) -> str:
    """Table cell text; nulls (None, NaN, NA, NaT) as empty."""
    import pandas as pd

    try:
        return "" if pd.isna(v) else str(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(v)


def _settings(city: Optional[Path] = None) -> Settings:
    s = load_settings()
    if city is not None:
        city = city.resolve()
        s = replace(s, source_root=city / "exports", truth_dir=city / "truth")
    return s.ensure_dirs()


@review_app.command("decide")
def decide(
    left: str = typer.Option(..., "--left", help="First record as SOURCE:KEY."),
    right: str = typer.Option(..., "--right", help="Second record as SOURCE:KEY."),
    verdict: str = typer.Option(..., "--verdict", help="same | different | unsure"),
    user: str = typer.Option(..., "--user", help="Who decides."),
    reason: str = typer.Option("", "--reason", help="Why (kept with the decision)."),
) -> None:
    """Record a verdict on a record pair (appended; never overwrites)."""
    from matching.decisions import DecisionError, RecordRef, record_decision

    s = _settings()
    try:
        did = record_decision(s.decisions_db, RecordRef.parse(left), RecordRef.parse(right),
                              verdict, user, reason or None)
    except DecisionError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(EXIT_USAGE)
    console.print(f"decision {did}: {left} / {right} -> {verdict} "
                  "(takes effect on the next match run)")


@review_app.command("undo")
def undo(
    decision_id: int = typer.Argument(..., help="The decision to cancel."),
    user: str = typer.Option(..., "--user", help="Who undoes it."),
    reason: str = typer.Option("", "--reason", help="Why."),
) -> None:
    """Cancel a decision by appending an ``undo`` decision."""
    from matching.decisions import DecisionError, undo_decision

    s = _settings()
    try:
        uid = undo_decision(s.decisions_db, decision_id, user, reason or None)
    except DecisionError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(EXIT_USAGE)
    console.print(f"decision {uid}: undo of {decision_id}")


@review_app.command("list")
def list_(
    what: str = typer.Option("queue", "--show", help="queue (open review items) | decisions "
                             "(the log) | effective (current verdict per pair)"),
    limit: int = typer.Option(50, "--limit", min=1),
    reason: Optional[str] = typer.Option(None, "--reason", help="Only queue items of this reason."),
) -> None:
    """List the review queue of the last match run, or the decisions."""
    from matching.decisions import all_decisions, effective_decisions

    s = _settings()
    if what in ("decisions", "effective"):
        df = all_decisions(s.decisions_db) if what == "decisions" else \
            effective_decisions(s.decisions_db)
        t = Table(title=f"{what} ({len(df)})")
        cols = [c for c in ("decision_id", "left_source", "left_key", "right_source",
                            "right_key", "verdict", "user", "decided_at", "supersedes", "reason")
                if c in df.columns]
        for c in cols:
            t.add_column(c)
        for row in df.tail(limit).itertuples(index=False):
            t.add_row(*[_cell(getattr(row, c)) for c in cols])
        console.print(t)
        return
    if what != "queue":
        err.print("[red]--show must be queue, decisions or effective[/]")
        raise typer.Exit(EXIT_USAGE)
    from warehouse.connection import connect

    if not Path(s.work_db).exists():
        err.print("[red]no work database: run the match stage first[/]")
        raise typer.Exit(EXIT_FAILED)
    con = connect(s.work_db, read_only=True)
    try:
        where, params = ("WHERE reason = ?", [reason]) if reason else ("", [])
        df = con.execute(f"""SELECT queue_no, reason, left_source, left_key, right_source,
                                    right_key, round(match_weight, 2) AS weight, linked_now,
                                    decided
                             FROM link.review_queue {where} ORDER BY queue_no LIMIT {limit}""",
                         params).df()
        total = con.execute(f"SELECT count(*) FROM link.review_queue {where}",
                            params).fetchall()[0][0]
    finally:
        con.close()
    t = Table(title=f"review queue: {total} open items (showing {len(df)})")
    for c in df.columns:
        t.add_column(c)
    for row in df.itertuples(index=False):
        t.add_row(*[_cell(v) for v in row])
    console.print(t)


@review_app.command("explain")
def explain(
    left: str = typer.Option(..., "--left", help="First record as SOURCE:KEY."),
    right: str = typer.Option(..., "--right", help="Second record as SOURCE:KEY."),
) -> None:
    """Per-field match weights of a pair (from the last run, or scored now)."""
    from matching.decisions import DecisionError, RecordRef
    from matching.link import explain_pair
    from matching.model import current_model
    from warehouse.connection import connect

    s = _settings()
    try:
        lref, rref = RecordRef.parse(left), RecordRef.parse(right)
    except DecisionError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(EXIT_USAGE)
    loaded = current_model(s.model_dir)
    con = connect(s.work_db, read_only=True)
    try:
        e = explain_pair(con, (lref.source, lref.key), (rref.source, rref.key),
                         model=loaded[1] if loaded else None)
    except KeyError as exc:
        err.print(f"[red]{exc.args[0]}[/]")
        raise typer.Exit(EXIT_FAILED)
    finally:
        con.close()
    t = Table(title=f"{left} / {right}")
    t.add_column("part")
    t.add_column("value", justify="right")
    for k, v in e.items():
        t.add_row(k, f"{v:.3f}" if isinstance(v, float) else str(v))
    console.print(t)


@model_app.command("train")
def train(
    business_date: Optional[str] = typer.Option(None, "--date", help="Business date YYYY-MM-DD "
                                                "(names the artefact; default today)."),
) -> None:
    """Train a new model version on the current std records and make it current."""
    from matching.stage import train_stage
    from unigrid.stages import RunContext

    s = _settings()
    d = date.fromisoformat(business_date) if business_date else date.today()
    r = train_stage(s, RunContext.for_date(d))
    for m in r.messages:
        console.print(m)


def evaluate(
    city: Optional[Path] = typer.Option(None, "--city", help="A generated city folder "
                                        "(uses its truth/)."),
    worst: int = typer.Option(10, "--worst", min=0, help="How many worst false merges and "
                              "missed links to list."),
    markdown: Optional[Path] = typer.Option(None, "--markdown", help="Also write the figures "
                                            "as Markdown to this file."),
) -> None:
    """Score the last match run (link.person_link) against the generator's truth."""
    from matching.evaluate import evaluate_run, to_markdown

    s = _settings(city)
    truth = Path(s.truth_dir) / "records.parquet"
    if not truth.exists():
        err.print(f"[red]no truth file {truth} (use --city DIR of a generated city)[/]")
        raise typer.Exit(EXIT_USAGE)
    ev = evaluate_run(s.work_db, s.truth_dir, worst=worst)
    o = ev.overall
    console.print(f"precision {o['precision']:.4f}  recall {o['recall']:.4f}  "
                  f"F1 {o['f1']:.4f}  ({o['records']} records, {o['true_persons']} true persons,"
                  f" {o['predicted_persons']} predicted)")
    t = Table(title="per source pair")
    for c in ("source a", "source b", "true pairs", "predicted", "correct", "P", "R", "F1"):
        t.add_column(c)
    for r in ev.per_source_pair.itertuples():
        t.add_row(r.source_a, r.source_b, str(r.true_pairs), str(r.predicted_pairs),
                  str(r.true_positive_pairs), f"{r.precision:.4f}", f"{r.recall:.4f}",
                  f"{r.f1:.4f}")
    console.print(t)
    for title, df in (("worst false merges", ev.false_merges), ("worst missed links",
                                                                ev.missed_links)):
        if worst and len(df):
            tt = Table(title=title)
            for c in df.columns:
                tt.add_column(c)
            for row in df.itertuples(index=False):
                tt.add_row(*[_cell(v) for v in row])
            console.print(tt)
    if ev.unmatched_records.get("truth_not_predicted"):
        console.print(f"{ev.unmatched_records['truth_not_predicted']} truth records are not in "
                      "person_link (quarantined or not extracted)")
    if markdown:
        markdown.write_text(to_markdown(ev) + "\n", encoding="utf-8")
        console.print(f"written {markdown}")
