"""Fast XLSX rows: the worksheet XML scanned with regular expressions, openpyxl as the fallback.

openpyxl's read-only mode spends ~20 microseconds of Python per cell (and, when a sheet has no
``<dimension>`` element, parses the whole sheet once more just to learn that at load time).
:func:`sheet_rows` yields exactly what ``ws.iter_rows(values_only=True)`` yields for the cells
that plain writers produce (numbers, shared strings, inline strings, booleans, ISO dates, errors,
date-styled numbers): row by row, ``(row_number, [(column, value), ...])`` found by one regular
expression per block of XML, values converted with openpyxl's own helpers. Anything else
(formulas, rich text, CDATA, namespace prefixes, whitespace between cells, ...) is not guessed at:
the rows already yielded are skipped and openpyxl's own iterator takes over from there, so the
result is the same either way. ``tests/connectors/test_xlsx_fast.py`` checks the equality.
"""

from __future__ import annotations

import re
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

BLOCK_BYTES = 8 << 20
"""Bytes of worksheet XML scanned at a time (cut after a ``</row>``)."""

_ROW_ATTRS = re.compile(r'(?:\s+[\w:]+="[^"&<]*")*\s*')
"""What may stand between ``<row`` and ``>`` (anything else: openpyxl reads the sheet)."""
_CELL_TEXT = (r'(?:/>|>(?:<v>([^<]*)</v>|<v\s*/>|'
              r'<is><t(?:\s+xml:space="preserve")?(>[^<]*)</t></is>|(<is><t\s*/></is>))?</c>)')
_CELL = re.compile(r'<c((?:\s+[\w:]+="[^"&]*")*)\s*' + _CELL_TEXT)
"""Any cell: attributes in any order (parsed by _ATTR)."""
_CELL_RST = re.compile(r'<c(?: r="([A-Z]{1,3})[0-9]+")?(?: s="([0-9]+)")?(?: t="(\w+)")?\s*'
                       + _CELL_TEXT)
"""A cell whose attributes are (a subset of) r, s, t in that order, as writers put them."""
_CELLS_RST = re.compile(r'(?:<c(?: r="[A-Z]{1,3}[0-9]+")?(?: s="[0-9]+")?(?: t="\w+")?\s*'
                        + _CELL_TEXT.replace("(", "(?:").replace("(?:?:", "(?:") + ")*")
"""A row body made only of such cells."""
_ATTR = re.compile(r'([\w:]+)="([^"]*)"')
_ROW_NUMBER = re.compile(r' r="([0-9]+)"')
_COORD = re.compile(r"([A-Z]{1,3})([0-9]+)")
_DIMENSION = re.compile(rb'<dimension\s+ref="([^"]*)"\s*/>')


class _Unsupported(Exception):
    """The XML uses something the fast path does not handle: openpyxl reads it instead."""


@contextmanager
def _no_size_scan() -> Iterator[None]:
    """openpyxl without the load-time scan of every sheet for its ``<dimension>``.

    ``ReadOnlyWorksheet._get_size`` parses the whole sheet when the element is missing; the
    dimensions are read later by :func:`sheet_rows` (or by ``_get_size`` itself before a
    fallback), for the one sheet that is read.
    """
    from openpyxl.worksheet._read_only import ReadOnlyWorksheet

    original = ReadOnlyWorksheet._get_size
    ReadOnlyWorksheet._get_size = lambda self: None  # type: ignore[method-assign]
    try:
        yield
    finally:
        ReadOnlyWorksheet._get_size = original  # type: ignore[method-assign]


def load_workbook(path: Path | str) -> Any:
    """``openpyxl.load_workbook(path, read_only=True, data_only=True)`` without the size scan."""
    import openpyxl

    with _no_size_scan():
        return openpyxl.load_workbook(path, read_only=True, data_only=True)


_ENTITY = re.compile(r"&(?:(lt|gt|amp|quot|apos)|#([0-9]+)|#x([0-9a-fA-F]+));")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'"}


def _entity(m: re.Match[str]) -> str:
    if m.group(1):
        return _NAMED[m.group(1)]
    return chr(int(m.group(2)) if m.group(2) else int(m.group(3), 16))


def _text(s: str) -> str:
    """Element text as an XML parser gives it: line ends normalised, entities resolved."""
    if "\r" in s:
        s = s.replace("\r\n", "\n").replace("\r", "\n")
    if "&" in s:
        if "&" in _ENTITY.sub("", s):
            raise _Unsupported("entity")
        s = _ENTITY.sub(_entity, s)
    return s


class _Cells:
    """Cell values as openpyxl's ``WorkSheetParser.parse_cell`` makes them (``data_only``)."""

    def __init__(self, ws: Any):
        from openpyxl.utils.datetime import from_excel, from_ISO8601
        from openpyxl.worksheet._reader import _cast_number

        self.cast, self.from_excel, self.from_iso = _cast_number, from_excel, from_ISO8601
        wb = ws.parent
        self.shared = ws._shared_strings
        self.epoch = wb.epoch
        self.dates = wb._date_formats
        self.deltas = wb._timedelta_formats
        self.columns: dict[str, int] = {}

    def column(self, letters: str) -> int:
        """1-based column of a column name such as ``AB``."""
        col = self.columns.get(letters)
        if col is None:
            from openpyxl.utils.cell import column_index_from_string
            col = self.columns[letters] = column_index_from_string(letters)
        return col

    def value(self, t: str, s: str, v: str | None, inline: str | None, empty_inline: bool,
              ref: str = "") -> Any:
        """The value of one cell of type ``t`` and style ``s`` (``v``: text of ``<v>``;
        ``inline``: text of ``<is><t>``; regex groups that did not match are ``None`` or '')."""
        if t == "inlineStr":
            if inline is not None:
                return _text(inline)
            return "" if empty_inline else None
        if not v:
            return None
        value: Any = _text(v)
        if t == "n":
            value = self.cast(value)
            style = int(s) if s else 0
            if style in self.dates:
                try:
                    value = self.from_excel(value, self.epoch, timedelta=style in self.deltas)
                except (OverflowError, ValueError):
                    warnings.warn(f"Cell {ref} is marked as a date but the serial value {value} "
                                  f"is outside the limits for dates. The cell will be treated "
                                  f"as an error.")
                    value = "#VALUE!"
        elif t == "s":
            value = self.shared[int(value)]
        elif t == "b":
            value = bool(int(value))
        elif t == "d":
            value = self.from_iso(value)
        return value


def _row_cells(body: str, cells: _Cells) -> list[tuple[int, Any]]:
    """``[(column, value)]`` of one row's XML; :class:`_Unsupported` for anything unexpected."""
    out: list[tuple[int, Any]] = []
    col = 0
    value = cells.value
    if _CELLS_RST.fullmatch(body):
        inline_ok = "&" not in body and "\r" not in body
        columns = cells.columns
        for letters, s, t, v, inline, empty in _CELL_RST.findall(body):
            col = (columns.get(letters) or cells.column(letters)) if letters else col + 1
            if t == "inlineStr" and inline_ok:  # inline: '' absent, '>' + text when present
                out.append((col, inline[1:] if inline else ("" if empty else None)))
            else:
                out.append((col, value(t or "n", s, v or None, inline[1:] if inline else None,
                                       bool(empty), letters)))
        return out
    pos = 0
    for c in _CELL.finditer(body):
        if c.start() != pos:
            raise _Unsupported("unexpected cell content")
        pos = c.end()
        attrs = dict(_ATTR.findall(c.group(1)))
        ref = attrs.get("r")
        if ref:
            m = _COORD.fullmatch(ref)
            if not m:
                raise _Unsupported(f"cell reference {ref!r}")
            col = cells.column(m.group(1))
        else:
            col += 1
        out.append((col, value(attrs.get("t", "n"), attrs.get("s", ""), c.group(2),
                               c.group(3)[1:] if c.group(3) else None,
                               c.group(4) is not None, ref or "")))
    if pos != len(body):
        raise _Unsupported("unexpected cell content")
    return out


def _parsed_rows(xml: str, cells: _Cells,
                 counter: list[int]) -> Iterator[tuple[int, list[tuple[int, Any]]]]:
    """``(row number, [(column, value)])`` for every ``<row>`` of a block of sheet data; raises
    :class:`_Unsupported` when the block holds anything else."""
    pos, n = 0, len(xml)
    find = xml.find
    while True:
        start = find("<row", pos)
        if start < 0:
            break
        if start != pos and xml[pos:start].strip():
            raise _Unsupported("content between rows")
        head_end = find(">", start)
        if head_end < 0:
            raise _Unsupported("unterminated row")
        if xml[head_end - 1] == "/":  # <row .../>
            attrs, body, pos = xml[start + 4:head_end - 1], "", head_end + 1
        else:
            end = find("</row>", head_end)
            if end < 0:
                raise _Unsupported("unterminated row")
            attrs, body, pos = xml[start + 4:head_end], xml[head_end + 1:end], end + 6
        if attrs and not _ROW_ATTRS.fullmatch(attrs):
            raise _Unsupported("row attributes")
        r = _ROW_NUMBER.match(attrs) if attrs else None  # r="12" first, as writers put it
        if r is not None:
            counter[0] = int(r.group(1))
        else:
            r_text = dict(_ATTR.findall(attrs)).get("r") if attrs else None
            if r_text is not None:
                num = float(r_text)
                if not num.is_integer():
                    raise _Unsupported(f"row number {r_text!r}")
                counter[0] = int(num)
            else:
                counter[0] += 1
        yield counter[0], _row_cells(body, cells)
    if pos < n and xml[pos:].strip():
        raise _Unsupported("content between rows")


def _blocks(src: Any, block: int) -> Iterator[bytes]:
    """The sheet data's XML in blocks that end after a ``</row>``; the first block is preceded
    by nothing (the part before ``<sheetData>`` is dropped, its ``<dimension>`` noted)."""
    pending = b""
    started = False
    while True:
        data = src.read(block)
        buf = pending + data
        if not started:
            at = buf.find(b"<sheetData")
            if at < 0:
                if not data:
                    raise _Unsupported("no sheetData")
                pending = buf
                continue
            end = buf.find(b">", at)
            if end < 0:
                if not data:
                    raise _Unsupported("unterminated sheetData")
                pending = buf
                continue
            started = True
            if buf[end - 1:end] == b"/":
                return
            buf = buf[end + 1:]
        stop = buf.find(b"</sheetData>")
        if stop >= 0:
            if buf[:stop].strip():
                yield buf[:stop]
            return
        if not data:
            raise _Unsupported("sheetData never closed")
        cut = buf.rfind(b"</row>")
        if cut < 0:
            pending = buf
            continue
        cut += len(b"</row>")
        yield buf[:cut]
        pending = buf[cut:]


def _sheet(src: Any, cells: _Cells, block: int) -> Iterator[tuple[int, list[tuple[int, Any]]]]:
    """Every ``<row>`` of the sheet XML in ``src``: ``(row number, [(column, value)])``."""
    counter = [0]
    for xml in _blocks(src, block):
        yield from _parsed_rows(xml.decode("utf-8"), cells, counter)


def _dimensions(ws: Any) -> tuple[int | None, int | None]:
    """``(max_column, max_row)`` from the sheet's ``<dimension ref>`` as openpyxl reads it."""
    from openpyxl.utils.cell import range_boundaries

    with ws._get_source() as src:
        head = b""
        while b"<sheetData" not in head:
            data = src.read(1 << 16)
            if not data:
                break
            head += data
    decl = re.match(rb'<\?xml[^>]*encoding="([^"]*)"', head)
    if decl and decl.group(1).lower().replace(b"-", b"") != b"utf8":
        raise _Unsupported("not UTF-8")
    at = head.find(b"<sheetData")
    m = _DIMENSION.search(head, 0, at if at >= 0 else len(head))
    if not m:
        return None, None
    try:
        _, _, max_col, max_row = range_boundaries(m.group(1).decode())
    except (ValueError, TypeError):
        return None, None
    return max_col, max_row


def _fast(ws: Any, max_col: int | None, max_row: int | None,
          block: int) -> Iterator[tuple[Any, ...]]:
    """``ws.iter_rows(values_only=True)`` by regular expressions (see the module docstring)."""
    cells = _Cells(ws)
    empty_row: tuple[Any, ...] | list[Any] = (None,) * max_col if max_col is not None else []
    line = 1  # openpyxl's `counter`: the next row number to yield
    idx = 1
    with ws._get_source() as src:
        for idx, row in _sheet(src, cells, block):
            if max_row is not None and idx > max_row:
                break
            while line < idx:
                line += 1
                yield empty_row
            if line <= idx:
                line += 1
                if not row and not max_col:
                    yield ()
                    continue
                width = max_col or row[-1][0]
                new = [None] * width
                for col, value in row:
                    if 1 <= col <= width:
                        new[col - 1] = value
                yield tuple(new)
    if max_row is not None and max_row < idx:
        while line <= max_row:
            line += 1
            yield empty_row


def sheet_rows(ws: Any, block: int = BLOCK_BYTES) -> Iterator[tuple[Any, ...]]:
    """The rows of a read-only worksheet opened by :func:`load_workbook`, as
    ``ws.iter_rows(values_only=True)`` gives them (fast path, openpyxl where it must)."""
    done = 0
    try:
        max_col, max_row = _dimensions(ws)
        for row in _fast(ws, max_col, max_row, block):
            yield row
            done += 1
        return
    except (_Unsupported, UnicodeDecodeError, ValueError, IndexError):
        pass
    ws._get_size()  # the dimensions openpyxl would have read at load time
    for i, row in enumerate(ws.iter_rows(values_only=True)):
        if i >= done:
            yield row
