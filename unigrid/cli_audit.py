"""CLI for auditors and the city office: findings review, voter roll, population views.

Personal data leaves the machine only masked unless ``--unmask`` is given, which needs a user and
a stated purpose and is written to the access log.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from unigrid.settings import Settings, load_settings

console = Console()
err = Console(stderr=True)
findings_app = typer.Typer(help="Auditors: list findings, confirm or dismiss them (with a reason).",
                           no_args_is_help=True)


def _settings() -> Settings:
    return load_settings().ensure_dirs()


def _date(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date YYYY-MM-DD", param_hint=option)


def _require_unmask_reason(unmask: bool, user: Optional[str], purpose: Optional[str]) -> None:
    if unmask and not (user and purpose):
        raise typer.BadParameter("--unmask needs --user and --purpose (they go to the access log)",
                                 param_hint="--unmask")


def roll(
    election_date: str = typer.Option(..., "--date", help="Election date YYYY-MM-DD (18 or older on it)."),
    district: str = typer.Option(..., "--district", help="District name, e.g. 西陵区."),
    out: Path = typer.Option(..., "--out", "-o", help="XLSX file to write."),
    unmask: bool = typer.Option(False, "--unmask", help="Full ID numbers (logged)."),
    user: Optional[str] = typer.Option(None, "--user", help="Who exports (access log)."),
    purpose: Optional[str] = typer.Option(None, "--purpose", help="Why (access log)."),
) -> None:
    """Export a district's voter roll (18+ on the date, alive, registered here) to XLSX."""
    from warehouse.access_log import log_access
    from warehouse.queries import NoMasterYet, open_master
    from warehouse.views import export_voter_roll

    d = _date(election_date, "--date")
    _require_unmask_reason(unmask, user, purpose)
    s = _settings()
    try:
        with open_master(s) as con:
            res = export_voter_roll(con, d, district, out, unmask=unmask)
    except NoMasterYet as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(1)
    log_access(s.decisions_db, user or "cli", "admin" if unmask else "cli",
               "export_voter_roll_unmasked" if unmask else "export_voter_roll", None,
               purpose or f"voter roll {district} {d}")
    console.print(f"{res.rows} voters in {district} on {d} -> {res.path} "
                  f"(query {res.query_seconds:.2f} s, write {res.write_seconds:.2f} s)")
    if res.rows == 0:
        err.print(f"[yellow]no voters: is {district!r} a district of this city?[/]")


def views(
    on: str = typer.Option(..., "--date", help="Reference date for ages YYYY-MM-DD."),
    out: Path = typer.Option(..., "--out", "-o", help="XLSX file to write."),
) -> None:
    """Population, sex ratio and age pyramid per district, street, community and grid (XLSX)."""
    from warehouse.queries import NoMasterYet, open_master
    from warehouse.views import export_views

    d = _date(on, "--date")
    try:
        with open_master(_settings()) as con:
            path = export_views(con, d, out)
    except NoMasterYet as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(1)
    console.print(f"population views on {d} -> {path}")


@findings_app.command("list")
def list_findings(
    rule: Optional[str] = typer.Option(None, "--rule", help="Only this rule."),
    status: Optional[str] = typer.Option(None, "--status", help="open, confirmed or dismissed."),
    limit: int = typer.Option(50, "--limit", min=1),
) -> None:
    """Findings of the published master (masked: person ids only)."""
    from unigrid.service.queries import findings
    from warehouse.queries import NoMasterYet, open_master

    try:
        with open_master(_settings()) as con:
            found = findings(con, rule=rule, status=status, limit=limit)
    except NoMasterYet as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(1)
    cols = ("finding_id", "rule", "person_id", "status", "months", "amount_total",
            "last_seen_run")
    rows = [tuple(f[c] for c in cols) for f in found]
    t = Table(title="findings")
    for c in ("finding", "rule", "person", "status", "months", "amount", "last seen"):
        # ids are copied into `findings dismiss ...`: never wrap them
        t.add_column(c, no_wrap=c in ("finding", "person"), min_width=17 if c == "finding" else None)
    for r in rows:
        t.add_row(*["" if v is None else str(v) for v in r])
    console.print(t)


def _review(finding_id: str, status: str, user: str, reason: Optional[str]) -> None:
    from quality.rules.review import ReviewError, record_review
    from unigrid.service.queries import findings
    from warehouse.queries import NoMasterYet, open_master

    s = _settings()
    try:
        with open_master(s) as con:
            found = findings(con, finding_id=finding_id, limit=1)
    except NoMasterYet:
        found = []
    if not found:
        err.print(f"[red]no finding {finding_id} in the published master[/]")
        raise typer.Exit(1)
    evidence_hash = found[0]["evidence_hash"]
    try:
        rid = record_review(s.decisions_db, finding_id, status, user, reason, evidence_hash)
    except ReviewError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(2)
    console.print(f"review {rid}: {finding_id} -> {status} (applies from the next run)")


@findings_app.command("confirm")
def confirm(finding_id: str, user: str = typer.Option(..., "--user"),
            reason: Optional[str] = typer.Option(None, "--reason")) -> None:
    """Confirm a finding."""
    _review(finding_id, "confirmed", user, reason)


@findings_app.command("dismiss")
def dismiss(finding_id: str, user: str = typer.Option(..., "--user"),
            reason: str = typer.Option(..., "--reason", help="Why (required).")) -> None:
    """Dismiss a finding with a reason; it stays dismissed unless its evidence changes."""
    _review(finding_id, "dismissed", user, reason)


@findings_app.command("reopen")
def reopen(finding_id: str, user: str = typer.Option(..., "--user"),
           reason: Optional[str] = typer.Option(None, "--reason")) -> None:
    """Reopen a confirmed or dismissed finding."""
    _review(finding_id, "open", user, reason)
