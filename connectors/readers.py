"""Readers: one per format, each yielding Arrow record batches of text columns, in bounded chunks.

Every value is read as text (ID numbers keep their leading zeros and their ``x``); every batch
carries ``_row_no`` (1-based data row: below the header for CSV/XLSX, the line for JSON lines,
the result row for SQL) and ``_file`` (the file, or the SQL table). Memory is bounded by the chunk
size, not by the size of the source: CSV and JSON lines are decoded block by block, XLSX is read
with openpyxl's streaming mode, SQL results are streamed (``stream_results`` + ``yield_per``).

Bad input never silently drops rows:
- bytes that do not decode stop the file with ``file:line (byte offset N): bytes .. do not decode
  as gbk``; the rows before it are yielded first;
- a row that cannot be parsed (wrong field count, broken JSON) is skipped, kept in
  ``reader.rejected`` with its position and reason, and the caller fails the source;
- anything else (missing file, corrupt XLSX, unreachable database) raises
  :class:`SourceReadError` with a message that names the file or the database (password hidden).

DuckDB's own CSV reader cannot decode GBK offline (its encodings extension is downloaded at run
time), so CSV bytes are decoded in Python and handed to Arrow's CSV parser as UTF-8.
"""

from __future__ import annotations

import csv
import datetime as dt
import glob
import io
import json
import zipfile
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Iterable, Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from connectors.contract import Contract, environment, expand
from connectors.xlsx_fast import load_workbook as xlsx_load_workbook
from connectors.xlsx_fast import sheet_rows

if TYPE_CHECKING:
    from unigrid.settings import Settings

CHUNK_ROWS = 100_000
"""Rows per batch (XLSX, JSON lines, SQL); CSV batches are bounded by BLOCK_BYTES instead."""
BLOCK_BYTES = 8 << 20
"""Bytes decoded and parsed at a time for CSV and JSON lines."""
MAX_LINE_BYTES = 64 << 20
"""A 'line' longer than this is not a text export (binary file?): stop with a clear error."""
ROW_NO = "_row_no"
FILE = "_file"
DEFAULT_WANTED_URL = "${UNIGRID_WANTED_DB_URL:-sqlite:///{source_root}/ps_wanted.sqlite}"
"""The wanted list's default location, as its contract writes it."""


class SourceReadError(RuntimeError):
    """Reading a source failed. Rows yielded before the error are valid and should still land."""


@dataclass(frozen=True)
class Rejected:
    """A row that could not be parsed: skipped from the batches, never silently dropped."""

    file: str
    row_no: int | None
    reason: str
    text: str | None = None
    """The raw row text (personal data: stored in the work database only, never in messages)."""


@dataclass
class ReadNotes:
    """What a reader noticed besides the rows: rejected rows and warnings (no personal values)."""

    rejected: list[Rejected] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# value -> text


def cell_text(value: Any) -> str | None:
    """A value as a person would see it, as text (XLSX cells, SQL values, JSON scalars).

    Integral numbers keep all their digits; other floats get at most 15 significant digits in
    Excel's style (``4.20502E+17``), so a quality check can flag an ID number whose digits were
    lost. Dates become ISO text (``2023-05-03``; with a time ``2023-05-03 08:30:00``).
    """
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:  # NaN
            return None
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.15g}".upper().replace("E+0", "E+").replace("E-0", "E-")
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0) and value.tzinfo is None:
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _sql_text(value: Any) -> str | None:
    """SQL values to text: like :func:`cell_text` but datetimes always keep their time."""
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, float):
        return None if value != value else repr(value)
    return cell_text(value)


def _json_text(value: Any) -> str | None:
    """JSON values to text: strings as they are, other values as their JSON text."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _strings(values: Sequence[str | None]) -> pa.Array:
    """Arrow string array from ``str``/``None`` values, built from buffers.

    (``pa.array`` on Python objects imports pandas to check for pandas types: seconds of start-up
    in a fresh process.) Raises ``TypeError`` when a value is neither.
    """
    n = len(values)
    data = [b"" if v is None else v.encode("utf-8") for v in values]
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, data), dtype=np.int64, count=n), out=offsets[1:])
    nulls = np.fromiter((v is None for v in values), dtype=bool, count=n)
    null_count = int(nulls.sum())
    bitmap = pa.py_buffer(np.packbits(~nulls, bitorder="little")) if null_count else None
    return pa.Array.from_buffers(pa.large_string(), n, [
        bitmap, pa.py_buffer(offsets), pa.py_buffer(b"".join(data))],
        null_count=null_count).cast(pa.string())


def int_array(values: np.ndarray) -> pa.Array:
    """Arrow int64 array from a NumPy array (without ``pa.array``: see :func:`_strings`)."""
    arr = np.ascontiguousarray(values, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(arr), [None, pa.py_buffer(arr)])


def repeated_text(value: str, n: int) -> pa.Array:
    """Arrow string array of ``n`` times ``value`` (the ``_file`` column)."""
    b = value.encode("utf-8")
    offsets = np.arange(n + 1, dtype=np.int64) * len(b)
    return pa.Array.from_buffers(pa.large_string(), n, [
        None, pa.py_buffer(offsets), pa.py_buffer(b * n)]).cast(pa.string())


def text_array(values: Sequence[Any], convert: Any = cell_text) -> pa.Array:
    """Arrow string array from Python values (fast path when they already are text)."""
    try:
        return _strings(values)
    except (TypeError, AttributeError):
        if any(isinstance(v, (bytes, bytearray)) for v in values):
            try:  # UTF-8 bytes are text as they are (rare: SQL byte columns)
                return pa.array(values, type=pa.string())
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                pass
        return _strings([convert(v) for v in values])


def _batch(columns: list[str], cols: list[Sequence[Any]], row_no: Sequence[int] | np.ndarray,
           file: str, convert: Any = cell_text) -> pa.RecordBatch:
    """A record batch of text columns plus ``_row_no`` and ``_file``."""
    arrays = [text_array(c, convert) for c in cols]
    n = len(row_no)
    arrays += [int_array(np.asarray(row_no, dtype=np.int64)), repeated_text(file, n)]
    return pa.RecordBatch.from_arrays(arrays, names=list(columns) + [ROW_NO, FILE])


def unique_names(names: Iterable[str | None]) -> list[str]:
    """Header names stripped of spaces and BOM; blanks named ``column_N``; duplicates ``X#2``."""
    out: list[str] = []
    for i, n in enumerate(names, start=1):
        name = (str(n) if n is not None else "").replace("\ufeff", "").strip() or f"column_{i}"
        base, k = name, 2
        while name in out:
            name, k = f"{base}#{k}", k + 1
        out.append(name)
    return out


# ---------------------------------------------------------------------------------------------
# decoding


class DecodingStream(io.RawIOBase):
    """Bytes in a declared encoding -> UTF-8 bytes, decoded block by block at line breaks.

    Safe to cut at ``\\n``: no byte 0x0A occurs inside a multi-byte character in UTF-8, GBK or
    GB18030. On undecodable bytes the stream ends after the last complete line before them and
    :attr:`error` says where (file, line, byte offset) and which bytes.
    """

    def __init__(self, raw: IO[bytes], encoding: str, name: str, block: int = BLOCK_BYTES):
        super().__init__()
        self._raw, self._name, self._block = raw, name, block
        self.encoding = encoding
        self._codec = "utf-8" if encoding in ("utf-8", "utf-8-sig") else encoding
        self._pending = b""
        self._out = memoryview(b"")
        self._eof = False
        self._first = True
        self._head: bytes | None = None
        self.consumed = 0
        """Input bytes decoded so far."""
        self.lines = 0
        """Line breaks decoded so far."""
        self.quotes = 0
        """Quote characters (``"``) decoded so far: odd at the end = a quoted field never closed."""
        self.error: str | None = None

    def readable(self) -> bool:  # noqa: D102
        return True

    def readinto(self, b: Any) -> int:  # noqa: D102
        while not len(self._out) and not self._eof:
            self._fill()
        n = min(len(b), len(self._out))
        b[:n] = self._out[:n]
        self._out = self._out[n:]
        return n

    def _fill(self) -> None:
        data = self._raw.read(self._block)
        if data:
            buf = self._pending + data
            cut = buf.rfind(b"\n")
            if cut < 0:
                if len(buf) > MAX_LINE_BYTES:
                    self.error = (f"{self._name}:{self.lines + 1} (byte offset {self.consumed}): "
                                  f"no line break in {MAX_LINE_BYTES >> 20} MiB: not a text export?")
                    self._eof = True
                self._pending = buf
                return
            chunk, self._pending = buf[:cut + 1], buf[cut + 1:]
        else:
            chunk, self._pending, self._eof = self._pending, b"", True
        skip = 0
        if self._first:
            self._first = False
            self._head = chunk[:1 << 16]
            if self._codec == "utf-8" and chunk.startswith(b"\xef\xbb\xbf"):
                skip = 3
        end = len(chunk)
        try:
            text = chunk[skip:].decode(self._codec)
        except UnicodeDecodeError as exc:
            bad_at = skip + exc.start
            line = self.lines + chunk.count(b"\n", 0, bad_at) + 1
            good_end = chunk.rfind(b"\n", 0, bad_at) + 1
            bad = chunk[bad_at:bad_at + max(1, min(exc.end - exc.start, 4))]
            self.error = (f"{self._name}:{line} (byte offset {self.consumed + bad_at}): bytes "
                          f"{bad.hex(' ')} do not decode as {self.encoding}")
            hint = encoding_hint(self.encoding, self._head if self._head is not None else chunk)
            if hint:
                self.error += f"; {hint}"
            end = max(good_end, skip)
            text = chunk[skip:end].decode(self._codec)
            self._eof = True
        self.consumed += len(chunk)
        self.lines += chunk.count(b"\n")
        self.quotes += chunk.count(b'"')
        # UTF-8 input was only validated by decoding: its own bytes are the output
        self._out = (memoryview(chunk)[skip:end] if self._codec == "utf-8"
                     else memoryview(text.encode("utf-8")))


def sniff_encoding(head: bytes) -> str | None:
    """Which of our encodings the first bytes of a file look like (for hints, not decisions)."""
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    try:
        head.decode("utf-8")
        return "utf-8" if any(b > 0x7F for b in head) else None
    except UnicodeDecodeError as exc:
        if exc.start >= len(head) - 3:  # cut inside a character at the end of the sample
            return "utf-8"
    try:
        head.decode("gb18030")
        return "gb18030"
    except UnicodeDecodeError:
        return None


def encoding_hint(declared: str, head: bytes) -> str | None:
    """'the file looks like utf-8, the contract says gbk' when the first bytes suggest another
    encoding family than the declared one (UTF-8 with/without BOM, GBK/GB18030); else None."""
    seen = sniff_encoding(head)
    if not seen:
        return None
    families = ({"utf-8", "utf-8-sig"}, {"gbk", "gb18030"})
    if any({declared, seen} <= f for f in families):
        return None
    return f"the file looks like {seen}, the contract says {declared}"


# ---------------------------------------------------------------------------------------------
# readers


class Reader:
    """Base class: ``columns`` known after opening, ``batches()`` streams the rows."""

    name: str
    columns: list[str]

    def __init__(self) -> None:
        self.notes = ReadNotes()

    @property
    def rejected(self) -> list[Rejected]:
        """Rows that could not be parsed."""
        return self.notes.rejected

    def batches(self) -> Iterator[pa.RecordBatch]:  # pragma: no cover - abstract
        """Record batches of text columns plus ``_row_no`` and ``_file``."""
        raise NotImplementedError

    def close(self) -> None:
        """Release files and connections."""

    def __enter__(self) -> "Reader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _limited(batches: Iterator[pa.RecordBatch], limit: int | None) -> Iterator[pa.RecordBatch]:
    """Stop after ``limit`` rows (None = all)."""
    if limit is None:
        yield from batches
        return
    left = limit
    for b in batches:
        if left <= 0:
            return
        if b.num_rows > left:
            b = b.slice(0, left)
        left -= b.num_rows
        yield b


PREFETCH_BATCHES = 2
"""Batches a file reader may read ahead of the caller (see :func:`prefetched`)."""


def prefetched(batches: Iterator[pa.RecordBatch],
               depth: int = PREFETCH_BATCHES) -> Iterator[pa.RecordBatch]:
    """The same batches, read by a background thread while the caller stores the previous ones.

    Reading is Python (decoding, parsing) and storing is DuckDB, which runs without the GIL: on
    two cores the two overlap. An exception of the reader (:class:`SourceReadError`) comes out
    at the same point of the sequence as without the thread; when the caller stops early, the
    reader is closed in its own thread.
    """
    import queue
    import threading

    q: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for b in batches:
                if not put(b):
                    return
            put(done)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            put(exc)
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="unigrid-read", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


class CsvReader(Reader):
    """CSV in UTF-8 (with or without BOM), GBK or GB18030, parsed by Arrow from decoded blocks."""

    def __init__(self, path: Path, encoding: str = "utf-8", delimiter: str = ",",
                 header_row: int = 1, limit: int | None = None, block: int = BLOCK_BYTES,
                 parse_block: int | None = None):
        super().__init__()
        self.path, self.name = Path(path), str(path)
        self.encoding, self.delimiter, self.header_row = encoding, delimiter, header_row
        self.limit, self.block = limit, block
        self.parse_block = parse_block or block
        """Bytes Arrow parses per batch: one record (quoted line breaks included) must fit."""
        self.columns = self._read_header()

    def _open(self) -> DecodingStream:
        try:
            raw = open(self.path, "rb")
        except OSError as exc:
            raise SourceReadError(f"{self.name}: cannot open: {exc.strerror}") from None
        return DecodingStream(raw, self.encoding, self.name, self.block)

    def _read_header(self) -> list[str]:
        stream = self._open()
        try:
            text = io.TextIOWrapper(io.BufferedReader(stream, 1 << 16), encoding="utf-8",
                                    newline="")
            rows = csv.reader(text, delimiter=self.delimiter)
            header: list[str] | None = None
            for i, row in enumerate(rows, start=1):
                if i == self.header_row:
                    header = row
                    break
        except csv.Error as exc:
            raise SourceReadError(f"{self.name}: header row {self.header_row} is not CSV: {exc}") from None
        finally:
            stream._raw.close()
        if stream.error and header is None:
            raise SourceReadError(stream.error)
        if not header or not any(h.strip() for h in header):
            raise SourceReadError(f"{self.name}: empty file (no header row {self.header_row})")
        return unique_names(header)

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Stream the data rows; undecodable bytes end the file with :class:`SourceReadError`."""
        return _limited(self._batches(), self.limit)

    def _batches(self) -> Iterator[pa.RecordBatch]:
        stream = self._open()
        invalid: list[int] = []
        width = len(self.columns)

        def on_invalid(row: Any) -> str:
            data_row = None if row.number is None else row.number - self.header_row
            hint = " (file truncated?)" if row.actual_columns < row.expected_columns else ""
            self.notes.rejected.append(Rejected(
                self.name, data_row,
                f"has {row.actual_columns} fields, expected {row.expected_columns}{hint}", row.text))
            if data_row is not None:
                invalid.append(data_row)
            return "skip"

        try:
            reader = pacsv.open_csv(
                io.BufferedReader(stream, 1 << 20),
                read_options=pacsv.ReadOptions(column_names=self.columns, skip_rows=self.header_row,
                                               block_size=self.parse_block, use_threads=False),
                parse_options=pacsv.ParseOptions(delimiter=self.delimiter, newlines_in_values=True,
                                                 invalid_row_handler=on_invalid),
                convert_options=pacsv.ConvertOptions(
                    column_types={c: pa.string() for c in self.columns}, null_values=[],
                    strings_can_be_null=False, quoted_strings_can_be_null=False))
            done = 0
            last: pa.RecordBatch | None = None
            while True:
                try:
                    b = reader.read_next_batch()
                except StopIteration:
                    break
                last = b
                n = b.num_rows
                j = np.arange(done + 1, done + n + 1, dtype=np.int64)
                if invalid:
                    inv = np.sort(np.asarray(invalid, dtype=np.int64))
                    j = j + np.searchsorted(inv - np.arange(len(inv)), j, side="right")
                done += n
                yield pa.RecordBatch.from_arrays(
                    list(b.columns[:width]) + [int_array(j), repeated_text(self.name, n)],
                    names=self.columns + [ROW_NO, FILE])
        except pa.ArrowInvalid as exc:
            msg = str(exc).split(":")[0:2]
            raise SourceReadError(f"{self.name}: {': '.join(m.strip() for m in msg)} "
                                  f"(after {stream.lines} lines)") from None
        finally:
            stream._raw.close()
        if stream.error:
            raise SourceReadError(stream.error)
        if stream.quotes % 2 and last is not None and last.num_rows:
            tail = [last.column(i)[last.num_rows - 1].as_py() or "" for i in range(width)]
            if any("\n" in v for v in tail):
                raise SourceReadError(
                    f"{self.name}: data row {done}: a quoted field is never closed, so the rest of "
                    f"the file was read into it (file truncated?)")
            self.notes.warnings.append(f"{self.name}: odd number of quote characters")


class JsonLinesReader(Reader):
    """JSON lines: one object per line; keys are the columns (union over the file)."""

    def __init__(self, path: Path, encoding: str = "utf-8", limit: int | None = None,
                 chunk_rows: int = CHUNK_ROWS, block: int = BLOCK_BYTES):
        super().__init__()
        self.path, self.name, self.encoding = Path(path), str(path), encoding
        self.limit, self.chunk_rows, self.block = limit, chunk_rows, block
        self.columns = self._first_keys()

    def _open(self) -> DecodingStream:
        try:
            raw = open(self.path, "rb")
        except OSError as exc:
            raise SourceReadError(f"{self.name}: cannot open: {exc.strerror}") from None
        return DecodingStream(raw, self.encoding, self.name, self.block)

    def _lines(self, stream: DecodingStream) -> Iterator[tuple[int, dict[str, Any]]]:
        """(line number, object) for each parseable line; broken lines go to ``rejected``."""
        for no, line in enumerate(io.BufferedReader(stream, 1 << 20), start=1):
            s = line.strip()
            if not s:
                continue
            try:
                obj = json.loads(s)
            except json.JSONDecodeError as exc:
                hint = " (file truncated?)" if not line.endswith(b"\n") else ""
                self.notes.rejected.append(Rejected(
                    self.name, no, f"not valid JSON at column {exc.colno}: {exc.msg}{hint}",
                    s.decode("utf-8", "replace")))
                continue
            if not isinstance(obj, dict):
                self.notes.rejected.append(Rejected(self.name, no, "not a JSON object",
                                                    s.decode("utf-8", "replace")))
                continue
            yield no, obj

    def _first_keys(self) -> list[str]:
        """Columns: keys of the objects in the first chunk (later new keys are added as met)."""
        stream = self._open()
        keys: dict[str, None] = {}
        try:
            for i, (_, obj) in enumerate(self._lines(stream)):
                keys.update(dict.fromkeys(obj))
                if i >= self.chunk_rows:
                    break
        finally:
            stream._raw.close()
            self.notes.rejected.clear()
        if not keys:
            if stream.error:
                raise SourceReadError(stream.error)
            raise SourceReadError(f"{self.name}: empty file (no JSON object)")
        return list(keys)

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Stream the objects in chunks; a broken line is rejected, the others still come."""
        return _limited(self._batches(), self.limit)

    def _batches(self) -> Iterator[pa.RecordBatch]:
        stream = self._open()
        try:
            rows: list[dict[str, Any]] = []
            nos: list[int] = []
            for no, obj in self._lines(stream):
                rows.append(obj)
                nos.append(no)
                if len(rows) >= self.chunk_rows:
                    yield self._to_batch(rows, nos)
                    rows, nos = [], []
            if rows:
                yield self._to_batch(rows, nos)
        finally:
            stream._raw.close()
        if stream.error:
            raise SourceReadError(stream.error)

    def _to_batch(self, rows: list[dict[str, Any]], nos: list[int]) -> pa.RecordBatch:
        for r in rows:
            for k in r:
                if k not in self.columns:
                    self.columns.append(k)
        cols = [[r.get(c) for r in rows] for c in self.columns]
        return _batch(self.columns, cols, nos, self.name, _json_text)


class XlsxReader(Reader):
    """XLSX via openpyxl's streaming (read-only) mode; sheet by name or 0-based index."""

    def __init__(self, path: Path, sheet: str | int | None = None, header_row: int = 1,
                 limit: int | None = None, chunk_rows: int = CHUNK_ROWS):
        super().__init__()
        import openpyxl
        from openpyxl.utils.exceptions import InvalidFileException

        self.path, self.name, self.header_row = Path(path), str(path), header_row
        self.limit, self.chunk_rows = limit, chunk_rows
        try:
            self._wb = xlsx_load_workbook(self.path)
        except FileNotFoundError:
            raise SourceReadError(f"{self.name}: cannot open: no such file") from None
        except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, EOFError) as exc:
            raise SourceReadError(f"{self.name}: not a readable XLSX file (truncated or corrupt?): "
                                  f"{type(exc).__name__}") from None
        names = self._wb.sheetnames
        if sheet is None:
            ws = self._wb.worksheets[0]
        elif isinstance(sheet, int):
            if not 0 <= sheet < len(names):
                self.close()
                raise SourceReadError(f"{self.name}: no sheet number {sheet} (0-based); "
                                      f"sheets: {names}")
            ws = self._wb.worksheets[sheet]
        elif sheet in names:
            ws = self._wb[sheet]
        else:
            self.close()
            raise SourceReadError(f"{self.name}: no sheet {sheet!r}; sheets: {names}")
        self.sheet = ws.title
        self._rows = sheet_rows(ws)
        header: tuple[Any, ...] | None = None
        try:
            for i, row in enumerate(self._rows, start=1):
                if i == header_row:
                    header = row
                    break
        except (zipfile.BadZipFile, EOFError, OSError, KeyError) as exc:
            self.close()
            raise SourceReadError(f"{self.name}: sheet {self.sheet!r} unreadable (truncated or "
                                  f"corrupt?): {type(exc).__name__}") from None
        if header is None or not any(v is not None and str(v).strip() for v in header):
            self.close()
            raise SourceReadError(f"{self.name}: sheet {self.sheet!r} is empty "
                                  f"(no header row {header_row})")
        # drop trailing blank header cells
        last = max(i for i, v in enumerate(header) if v is not None and str(v).strip())
        self.columns = unique_names(header[:last + 1])

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Stream the sheet's rows below the header; fully empty rows are skipped."""
        return _limited(self._batches(), self.limit)

    def _batches(self) -> Iterator[pa.RecordBatch]:
        width = len(self.columns)
        rows: list[tuple[Any, ...]] = []
        nos: list[int] = []
        no = 0
        try:
            for row in self._rows:
                no += 1
                if not any(v is not None and v != "" for v in row):
                    continue
                if len(row) > width and any(v is not None and v != "" for v in row[width:]):
                    self.notes.rejected.append(Rejected(
                        self.name, no, f"has values beyond the header's {width} columns",
                        json.dumps([cell_text(v) for v in row], ensure_ascii=False)))
                    continue
                rows.append(tuple(row[:width]) + (None,) * (width - len(row)))
                nos.append(no)
                if len(rows) >= self.chunk_rows:
                    yield _batch(self.columns, list(zip(*rows)), nos, self.name)
                    rows, nos = [], []
        except (zipfile.BadZipFile, EOFError, OSError, KeyError) as exc:
            if rows:
                yield _batch(self.columns, list(zip(*rows)), nos, self.name)
            raise SourceReadError(f"{self.name}: sheet {self.sheet!r} unreadable after data row "
                                  f"{no} (truncated or corrupt?): {type(exc).__name__}") from None
        if rows:
            yield _batch(self.columns, list(zip(*rows)), nos, self.name)

    def close(self) -> None:
        """Close the workbook (read-only workbooks keep the file open)."""
        wb = getattr(self, "_wb", None)
        if wb is not None:
            wb.close()
            self._wb = None


def hide_password(url: str) -> str:
    """A SQLAlchemy URL safe to show (password replaced by ``***``)."""
    try:
        from sqlalchemy.engine import make_url
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a malformed URL is shown cut at '@'
        return url.split("@")[-1]


class SqlReader(Reader):
    """A SQL table or query through SQLAlchemy, streamed in chunks.

    ``since``: only rows whose ``watermark`` column is greater (the predicate runs in the
    database). ``only``: read just these columns (e.g. the key, to find disappeared rows).
    """

    def __init__(self, url: str, table: str | None = None, query: str | None = None,
                 watermark: str | None = None, since: str | None = None,
                 only: Sequence[str] | None = None, limit: int | None = None,
                 chunk_rows: int = CHUNK_ROWS, connect_timeout: int = 10):
        super().__init__()
        import sqlalchemy as sa

        self.url, self.shown_url = url, hide_password(url)
        self.name = table or "query"
        self.limit, self.chunk_rows = limit, chunk_rows
        try:
            u = sa.engine.make_url(url)
        except Exception as exc:  # noqa: BLE001
            raise SourceReadError(f"not a database URL {self.shown_url!r}: {exc}") from None
        if u.get_backend_name() == "sqlite":
            db = u.database or ""
            if db and db != ":memory:" and not Path(db).exists():
                raise SourceReadError(f"{self.shown_url}: SQLite file {db} does not exist")
        args: dict[str, Any] = {}
        if u.get_backend_name() in ("postgresql", "mysql", "mariadb"):
            args["connect_timeout"] = connect_timeout
        try:
            self._engine = sa.create_engine(u, connect_args=args, poolclass=sa.pool.NullPool)
        except Exception as exc:  # noqa: BLE001 - missing driver, bad options
            raise SourceReadError(f"{self.shown_url}: cannot use this database URL: {exc}") from None
        q = self._engine.dialect.identifier_preparer.quote
        cols = ", ".join(q(c) for c in only) if only else "*"
        if table:
            src = ".".join(q(p) for p in table.split("."))
            sql = f"SELECT {cols} FROM {src}"
            if since is not None and watermark:
                sql += f" WHERE {q(watermark)} > :since"
        else:
            sql = f"SELECT {cols} FROM ({query}) AS src"
            if since is not None and watermark:
                sql += f" WHERE src.{q(watermark)} > :since"
        self.sql = sql
        self._params = {"since": since} if since is not None and watermark else {}
        try:
            self._conn = self._engine.connect()
        except sa.exc.DBAPIError as exc:
            self._engine.dispose()
            raise SourceReadError(f"{self.shown_url}: database unreachable: "
                                  f"{_first_line(exc.orig)}") from None
        try:
            self._result = self._conn.execution_options(
                stream_results=True, yield_per=chunk_rows).execute(sa.text(sql), self._params)
        except sa.exc.DBAPIError as exc:
            self.close()
            raise SourceReadError(f"{self.shown_url}: {self.name}: query failed: "
                                  f"{_first_line(exc.orig)}") from None
        self.columns = unique_names(self._result.keys())

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Stream the result in chunks of ``chunk_rows``."""
        return _limited(self._batches(), self.limit)

    def _batches(self) -> Iterator[pa.RecordBatch]:
        import sqlalchemy as sa

        done = 0
        try:
            for part in self._result.partitions(self.chunk_rows):
                cols = list(zip(*part)) if part else [[] for _ in self.columns]
                n = len(part)
                yield _batch(self.columns, cols, np.arange(done + 1, done + n + 1), self.name,
                             _sql_text)
                done += n
                if self.limit is not None and done >= self.limit:
                    break
        except sa.exc.DBAPIError as exc:
            raise SourceReadError(f"{self.shown_url}: {self.name}: reading failed after {done} "
                                  f"rows: {_first_line(exc.orig)}") from None
        finally:
            self.close()

    def close(self) -> None:
        """Close the result, the connection and the engine."""
        for attr in ("_result", "_conn"):
            obj = self.__dict__.pop(attr, None)
            if obj is not None:
                try:
                    obj.close()
                except Exception:  # noqa: BLE001 - closing a broken connection
                    pass
        eng = self.__dict__.pop("_engine", None)
        if eng is not None:
            eng.dispose()


def _first_line(exc: BaseException | None) -> str:
    """First line of a driver error (drivers append SQL and hints below)."""
    return str(exc).strip().splitlines()[0] if exc is not None and str(exc).strip() else type(exc).__name__


# ---------------------------------------------------------------------------------------------
# contract -> readers


def source_url(contract: Contract, settings: "Settings") -> str:
    """The contract's SQLAlchemy URL, expanded (``${VAR:-default}`` from env and settings.extra,
    ``{source_root}``)."""
    assert contract.location.url is not None
    return expand(contract.location.url, environment(dict(settings.extra)),
                  source_root=str(settings.source_root))


def source_files(contract: Contract, settings: "Settings", data: Path | None = None) -> list[Path]:
    """Files a file contract reads: ``data`` if given, else its glob under ``source_root``."""
    if data is not None:
        return [Path(data)]
    assert contract.location.path is not None
    pattern = expand(contract.location.path, environment(dict(settings.extra)),
                     source_root=str(settings.source_root))
    p = Path(pattern)
    full = p if p.is_absolute() else Path(settings.source_root) / p
    files = sorted(Path(f) for f in glob.glob(str(full), recursive=True) if Path(f).is_file())
    if not files:
        raise SourceReadError(f"no file matches {contract.location.path!r} under {settings.source_root}")
    return files


def location_text(contract: Contract, settings: "Settings | None" = None) -> str:
    """Where a contract reads from, for lists and messages (password hidden)."""
    loc = contract.location
    if loc.path:
        return loc.path
    url = source_url(contract, settings) if settings is not None else (loc.url or "")
    return f"{hide_password(url)} {loc.table or 'query'}"


def open_file(contract: Contract, path: Path, limit: int | None = None,
              chunk_rows: int = CHUNK_ROWS) -> Reader:
    """The reader for one file of a file contract."""
    f = contract.format
    if f.type == "csv":
        return CsvReader(path, f.encoding, f.delimiter, f.header_row, limit)
    if f.type == "jsonl":
        return JsonLinesReader(path, f.encoding, limit, chunk_rows)
    if f.type == "xlsx":
        return XlsxReader(path, f.sheet, f.header_row, limit, chunk_rows)
    raise ValueError(f"not a file format: {f.type}")


def open_sql(contract: Contract, settings: "Settings", since: str | None = None,
             only: Sequence[str] | None = None, limit: int | None = None,
             url: str | None = None, chunk_rows: int = CHUNK_ROWS) -> SqlReader:
    """The reader of a SQL contract (``since``: watermark, pushed into the query)."""
    loc = contract.location
    return SqlReader(url or source_url(contract, settings), table=loc.table, query=loc.query,
                     watermark=contract.watermark, since=since, only=only, limit=limit,
                     chunk_rows=chunk_rows)


def open_readers(contract: Contract, settings: "Settings", since: str | None = None,
                 data: Path | str | None = None, limit: int | None = None,
                 chunk_rows: int = CHUNK_ROWS) -> Iterator[Reader]:
    """Readers for a contract, opened one at a time (a file glob may match several files).

    ``data`` overrides the location: a file path for file contracts, a URL for SQL ones.
    Raises :class:`SourceReadError` when nothing can be opened.
    """
    if contract.format.type == "sql":
        yield open_sql(contract, settings, since=since, limit=limit,
                       url=str(data) if data is not None else None, chunk_rows=chunk_rows)
        return
    for path in source_files(contract, settings, Path(data) if data is not None else None):
        yield open_file(contract, path, limit, chunk_rows)
