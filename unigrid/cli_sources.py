"""``unigrid sources ...``: list the source contracts, check one against its data.

``sources_app`` is a typer sub-app; ``unigrid/cli.py`` registers it as ``unigrid sources``.
``check`` is the onboarding tool: it validates a contract file (errors name file and line),
reads the first rows of the data, reports missing and unexpected columns and previews the mapping
(source column -> canonical field -> sample values, masked for ID numbers, names and phones, and
how many of them parse with the declared formats and codes).

Exit codes: 0 the contract reads its data; 1 the contract is invalid or does not fit the data.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

sources_app = typer.Typer(help="Source contracts: list them, check one against its data.",
                          no_args_is_help=True, add_completion=False,
                          pretty_exceptions_enable=False)
console = Console(soft_wrap=True)

SAMPLES = 3
"""Sample values shown per column."""


def _settings(city: Optional[Path]) -> Any:
    from unigrid.settings import load_settings

    s = load_settings()
    if city is not None:
        s = replace(s, source_root=city.resolve() / "exports", truth_dir=city.resolve() / "truth")
    return s


def _parse_preview(values: Any, cm: Any) -> tuple[int, int] | None:
    """(values that parse, values present) with the validation's own parsers; None when the
    field is plain text or the parsers are not available."""
    if cm.value_type in ("text",):
        return None
    try:
        from quality.parse import apply_codes, clean_text, parse_field
    except ImportError:  # pragma: no cover - quality not installed
        return None
    t = clean_text(values)
    if cm.value_type != "sex":
        t = apply_codes(t, cm.codes)
    parsed = parse_field(t, cm)
    present = int(t.notna().sum())
    return int((parsed.notna() & t.notna()).sum()), present


def _how(cm: Any) -> str:
    """Parse instructions of a column map, short."""
    bits = [cm.value_type]
    if cm.formats:
        bits.append(" | ".join(cm.formats))
    if cm.codes:
        bits.append(", ".join(f"{k}->{v}" for k, v in cm.codes.items()))
    if cm.required:
        bits.append("required")
    return "; ".join(bits)


@sources_app.command("check")
def check(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="Contract YAML file."),
    data: Optional[str] = typer.Option(None, "--data", help="Read this file (or SQLAlchemy URL) instead of the contract's location."),
    rows: int = typer.Option(50, "--rows", "-n", min=1, help="Rows to read for the preview."),
    city: Optional[Path] = typer.Option(None, "--city", help="A generated city folder (its exports/ is the source root)."),
) -> None:
    """Validate a contract against its data and preview the mapping."""
    from connectors.contract import ContractError, load_contract
    from connectors.landing import missing_columns_message
    from warehouse.masking import mask_for_field
    from connectors.readers import SourceReadError, location_text, open_readers
    from connectors.stage import _encoding_hint

    try:
        contract = load_contract(file)
    except ContractError as exc:
        console.print(f"[bold red]contract invalid[/]\n{exc}", highlight=False)
        raise typer.Exit(1)
    settings = _settings(city)
    console.print(f"[bold]{contract.name}[/]: {contract.kind}, {contract.department_zh} "
                  f"({contract.department}), {contract.format.type}"
                  f"{'' if contract.format.type == 'sql' else ' ' + contract.format.encoding}, "
                  f"key {'+'.join(contract.key)}", highlight=False)
    try:
        readers = open_readers(contract, settings, data=data, limit=rows)
        reader = next(readers)
    except SourceReadError as exc:
        console.print(f"[bold red]cannot read the data[/]: {exc}", highlight=False)
        raise typer.Exit(1)
    where = reader.name if data or contract.format.type != "sql" else location_text(contract, settings)
    console.print(f"data: {where}", highlight=False)
    import pyarrow as pa

    problems = 0
    with reader:
        columns = list(reader.columns)
        hint = _encoding_hint(contract, reader.name)
        msg = missing_columns_message(contract, reader.columns, reader.name, hint)
        if msg:
            problems += 1
            console.print(f"[bold red]columns do not fit[/]: {msg}", highlight=False)
        try:
            batches = list(reader.batches())
        except SourceReadError as exc:
            problems += 1
            console.print(f"[bold red]read error[/]: {exc}", highlight=False)
            batches = []
        for r in reader.rejected:
            problems += 1
            console.print(f"[red]rejected row[/] {r.file} row {r.row_no}: {r.reason}", highlight=False)
    frame = (pa.Table.from_batches(batches).to_pandas() if batches else None)
    n = 0 if frame is None else len(frame)
    t = Table(title=f"mapping preview ({n} row(s) read)")
    for col in ("source column", "field", "parse", "samples", "parses"):
        t.add_column(col)
    for k in contract.key:
        if not any(c.column == k for c in contract.columns):
            samples = [] if frame is None or k not in frame else frame[k].dropna().head(SAMPLES).tolist()
            t.add_row(k, "(key)", "text", ", ".join(map(str, samples)), "")
    for cm in contract.columns:
        if cm.column not in columns:
            t.add_row(cm.column, cm.field, _how(cm), "[red]missing[/]", "")
            continue
        if frame is None or cm.column not in frame:
            t.add_row(cm.column, cm.field, _how(cm), "", "")
            continue
        values = frame[cm.column]
        shown = values.dropna()
        shown = shown[shown.astype(str).str.strip() != ""].head(SAMPLES)
        samples = ", ".join(str(mask_for_field(cm.field, v)) for v in shown)
        pv = _parse_preview(values, cm)
        parses = ""
        if pv is not None:
            ok, total = pv
            style = "green" if ok == total else "yellow"
            parses = f"[{style}]{ok}/{total}[/]"  # unparseable values are quality's findings
        key_mark = " (key)" if cm.column in contract.key else ""
        t.add_row(cm.column + key_mark, cm.field, _how(cm), samples, parses)
    if contract.watermark and not any(c.column == contract.watermark for c in contract.columns):
        t.add_row(contract.watermark, "(watermark)", "text", "", "")
    console.print(t)
    if frame is not None:
        wanted = set(contract.source_columns)
        extra = [c for c in frame.columns if c not in wanted and not c.startswith("_")]
        if extra:
            console.print(f"unmapped columns (landed in raw, not parsed): {', '.join(extra)}",
                          highlight=False)
    if problems:
        console.print(f"[bold red]{problems} problem(s)[/]")
        raise typer.Exit(1)
    console.print("[green]contract fits the data[/]")


@sources_app.command("list")
def list_(
    contracts_dir: Optional[Path] = typer.Option(None, "--contracts", help="Contracts folder (default: settings.contracts_dir)."),
) -> None:
    """List the source contracts: kind, department, format, location."""
    from connectors.contract import ContractError, load_contract
    from connectors.readers import location_text

    settings = _settings(None)
    folder = contracts_dir or settings.contracts_dir
    t = Table(title=f"source contracts in {folder}")
    for col in ("name", "kind", "department", "format", "location", "key", "watermark",
                "required", "snapshot"):
        t.add_column(col)
    bad = 0
    for path in sorted(Path(folder).glob("*.yaml")):
        try:
            c = load_contract(path)
        except ContractError as exc:
            bad += 1
            console.print(f"[red]{exc}[/]", highlight=False)
            continue
        fmt = c.format.type if c.format.type == "sql" else f"{c.format.type} {c.format.encoding}"
        if c.format.type == "xlsx":
            fmt = f"xlsx sheet {c.format.sheet if c.format.sheet is not None else 0}"
        t.add_row(c.name, c.kind, f"{c.department_zh} {c.department}", fmt,
                  location_text(c, settings), "+".join(c.key), c.watermark or "",
                  "yes" if c.required else "no", c.snapshot)
    console.print(t)
    if bad:
        raise typer.Exit(1)
