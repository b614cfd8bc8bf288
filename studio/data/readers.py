"""Any table a domain expert saves (CSV or TSV with any separator, Excel, JSON, JSONL) as a header and records.

This is the one table reader of the studio: Q&A files, preference files and evaluation files all come through
`read_records`, so an odd encoding or a semicolon-separated export behaves the same everywhere. Readers never
raise for bad content; they tell a `Findings` (the caller's report) what is wrong, in words for a non-programmer.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import json
import math
from pathlib import Path
from typing import Any, Protocol

from studio.data.columns import TURN_KEYS, norm

Records = list[tuple[int, dict]]  # (1-based row, JSONL line or JSON item number, the row's fields by column)

NOT_TEXT = ("{name} does not look like a text table (CSV, TSV or JSON): it holds binary data. "
            "Open it in Excel and save it as 'CSV UTF-8' or as an .xlsx workbook.")
_SAMPLE = 64 * 1024
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


class Findings(Protocol):
    """Where a reader reports: a problem with the whole file, or one row left out and why."""

    file_type: str

    def fail(self, message: str) -> None: ...

    def drop(self, row: int, reason: str, message: str) -> None: ...


def read_records(path: Path, max_bytes: int | None, into: Findings) -> tuple[list[str], Records] | None:
    """(header, numbered records) from any supported file, or None after telling `into` why it cannot be read."""
    if not path.is_file():
        return into.fail(f"File not found: {path}. Check the name and the folder.")
    size = path.stat().st_size
    if max_bytes is not None and size > max_bytes:
        return into.fail(f"The file is {size / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB. "
                         "Split it into smaller files or remove rows you do not need.")
    if size == 0:
        return into.fail(f"{path.name} is empty. Put a header row and your questions and answers in it.")
    raw = path.read_bytes()
    ext = path.suffix.lower()
    if raw.startswith(b"\xd0\xcf\x11\xe0"):
        return into.fail(f"{path.name} is an old Excel (.xls) file or a password-protected workbook. "
                         "Open it in Excel and save it as .xlsx without a password, or as 'CSV UTF-8'.")
    if raw.startswith(b"PK\x03\x04") or ext in (".xlsx", ".xlsm"):
        rows = _read_xlsx(path, ext, into)
        return None if rows is None else _table(rows, into, ragged=False)
    text = decode(raw)
    if text is None:
        return into.fail(NOT_TEXT.format(name=path.name))
    if not text.strip():
        return into.fail(f"{path.name} is empty (only blank lines). Put a header row and your data in it.")
    start = text.lstrip()[:1]
    if ext in (".jsonl", ".ndjson"):
        return _read_jsonl(text, into)
    if ext == ".json" or (ext not in (".csv", ".tsv", ".tab") and start in "[{"):
        return _read_json(text, into)
    rows = _read_csv(text, ext, into)
    return None if rows is None else _table(rows, into, ragged=True)


def decode(raw: bytes) -> str | None:
    """Text in whatever encoding Excel or an editor wrote, or None for binary data."""
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            return raw.decode(encoding, errors="replace")
    head = raw[:4096]
    even, odd = head[0::2], head[1::2]
    if len(head) >= 4 and odd.count(0) > 0.4 * len(odd) and even.count(0) < 0.1 * len(even):
        return raw.decode("utf-16-le", errors="replace")  # Excel's "Unicode text" without its BOM
    if len(head) >= 4 and even.count(0) > 0.4 * len(even) and odd.count(0) < 0.1 * len(odd):
        return raw.decode("utf-16-be", errors="replace")
    control = sum(b < 9 or 13 < b < 32 and b != 27 for b in head) / len(head)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        if control > 0.05:
            return None
        try:
            text = raw.decode("cp1252")  # what Windows Excel writes for "CSV (comma delimited)"
        except UnicodeDecodeError:
            text = raw.decode("latin-1")
    else:
        if control > 0.3:
            return None
    return text.removeprefix("\ufeff")


def cell(value: Any) -> str:
    """A record's value as text: empty for missing (None, or NaN from Excel), JSON for nested lists and objects."""
    if value is None or isinstance(value, float) and math.isnan(value):
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def strip_nul(value: Any, hits: list[bool]) -> Any:
    """`value` without NUL characters (a sign of a broken export), appending to `hits` for each one removed."""
    if isinstance(value, str) and "\x00" in value:
        hits.append(True)
        return value.replace("\x00", "")
    if isinstance(value, list):
        return [strip_nul(v, hits) for v in value]
    if isinstance(value, dict):
        return {k: strip_nul(v, hits) for k, v in value.items()}
    return value


def _read_xlsx(path: Path, ext: str, into: Findings) -> list[list[str]] | None:
    import pandas as pd  # imported here: only Excel files need it

    into.file_type = "xlsx"
    try:
        sheets = pd.read_excel(path, sheet_name=None, header=None, dtype=str, na_filter=False, engine="openpyxl")
    except Exception as exc:  # noqa: BLE001 - openpyxl and zipfile raise many types for a damaged workbook
        if ext not in (".xlsx", ".xlsm"):
            return into.fail(NOT_TEXT.format(name=path.name) + " (It is a zip archive but not an Excel file.)")
        return into.fail(f"{path.name} could not be opened as an Excel workbook ({type(exc).__name__}); it may "
                         "be damaged. Open it in Excel and save it again, or save it as 'CSV UTF-8'.")
    for frame in sheets.values():
        rows = [["" if v is None else str(v) for v in r] for r in frame.itertuples(index=False)]
        if any(c.strip() for r in rows for c in r):
            return rows
    return into.fail(f"{path.name} has no data: every sheet is empty.")


def _read_csv(text: str, ext: str, into: Findings) -> list[list[str]] | None:
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))  # a long answer is data, not an attack
    delimiter = _sniff(text[:_SAMPLE], prefer_tab=ext in (".tsv", ".tab"))
    into.file_type = "tsv" if delimiter == "\t" else "csv"
    try:
        return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        return into.fail(f"The table could not be read ({exc}). Open it in Excel and save it as 'CSV UTF-8'.")


def _sniff(sample: str, prefer_tab: bool) -> str:
    """The delimiter that splits the header into most columns and keeps the rows consistent with it.

    csv.Sniffer alone guesses wrong when answers are full of commas or semicolons, so its guess only breaks ties.
    """
    truncated = len(sample) == _SAMPLE
    if truncated and "\n" in sample:
        sample = sample[: sample.rindex("\n")]
    try:
        sniffed = csv.Sniffer().sniff(sample[:16384], delimiters=",;\t|").delimiter
    except csv.Error:
        sniffed = ""
    order = "\t,;|" if prefer_tab else ",\t;|"

    def score(delimiter: str) -> tuple:
        try:
            rows = list(itertools.islice(csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter), 200))
        except csv.Error:
            return (False, 0.0, False, 0)
        rows = [r for r in rows[: -1 if truncated and len(rows) > 2 else None] if any(c.strip() for c in r)]
        width = len(rows[0]) if rows else 0
        same = sum(len(r) == width for r in rows[1:]) / max(1, len(rows) - 1)
        return (width > 1, round(same, 2), delimiter == sniffed, -order.index(delimiter))

    return max(order, key=score)


def _table(rows: list[list[str]], into: Findings, ragged: bool) -> tuple[list[str], Records]:
    """Header plus numbered records; row 1 is the first row under the header, blank rows keep their number."""
    while rows and not any(c.strip() for c in rows[0]):
        rows = rows[1:]
    if not rows:
        return [], []
    if ragged:  # CSV: trailing empty header cells are export noise; cells beyond the header are a quoting mistake
        width = len(rows[0])
        while width > 1 and not rows[0][width - 1].strip():
            width -= 1
    else:  # Excel: a column with data but no name is still a column
        width = max((i + 1 for r in rows for i, c in enumerate(r) if c.strip()), default=0)
    header: list[str] = []
    for i, name in enumerate((rows[0] + [""] * width)[:width]):
        base = name = name.replace("\x00", "").strip() or f"column {i + 1}"
        for k in itertools.count(2):
            if name not in header:
                break
            name = f"{base} ({k})"
        header.append(name)
    records = []
    for number, cells in enumerate(rows[1:], 1):
        extra = [c for c in cells[width:] if c.strip()]
        if extra and any(c.strip() for c in cells):
            into.drop(number, "has extra cells", f"Row {number} has {len(cells)} cells but the header has {width}; "
                      "a separator inside a cell probably needs quotes around the cell. Fix or delete the row.")
            continue
        records.append((number, dict(zip(header, cells + [""] * (width - len(cells)), strict=False))))
    return header, records


def _read_json(text: str, into: Findings) -> tuple[list[str], Records] | None:
    into.file_type = "json"
    try:
        data = json.loads(text, strict=False)
    except (json.JSONDecodeError, RecursionError) as exc:
        if isinstance(exc, json.JSONDecodeError) and exc.msg == "Extra data" and text.lstrip().startswith("{"):
            return _read_jsonl(text, into)  # one object per line, saved with a .json name
        return into.fail(f"The JSON is broken: {_json_why(exc)}. A missing comma, quote or bracket just before "
                         "that spot is the usual cause.")
    if isinstance(data, dict):
        lists = [k for k, v in data.items() if isinstance(v, list) and any(isinstance(x, dict) for x in v)]
        if any(norm(k) in TURN_KEYS for k in data):
            data = [data]  # a single conversation
        elif len(lists) == 1:
            data = data[lists[0]]
        elif lists:
            return into.fail(f"The JSON object holds several lists ({', '.join(lists)}); Studio reads one. "
                             "Save the one to train on as its own file.")
    if not isinstance(data, list) or not any(isinstance(x, dict) for x in data):
        return into.fail(f"The JSON holds {_describe(data)}, not rows. Studio reads a list of objects such as "
                         '[{"question": "...", "answer": "..."}], or an object holding one such list.')
    records = _objects(enumerate(data, 1), into, "Item {n} is {what}, not an object with named fields such as "
                       "question and answer. Fix or delete it.")
    return _keys(records), records


def _objects(numbered, into: Findings, refusal: str) -> Records:
    """The JSON objects among (number, value) pairs; any other value is a dropped row, told with `refusal`."""
    records = []
    for number, item in numbered:
        if isinstance(item, dict):
            records.append((number, item))
        else:
            into.drop(number, "not an object", refusal.format(n=number, what=_describe(item)))
    return records


def _read_jsonl(text: str, into: Findings) -> tuple[list[str], Records]:
    into.file_type = "jsonl"
    parsed = []
    for number, line in enumerate(text.split("\n"), 1):  # not splitlines(): U+2028 may sit inside a string
        if not line.strip():
            continue
        try:
            parsed.append((number, json.loads(line, strict=False)))
        except (json.JSONDecodeError, RecursionError) as exc:
            why = f"{exc.msg} at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else _json_why(exc)
            into.drop(number, "broken JSON", f"Line {number} is not valid JSON ({why}). "
                      "Fix or delete that line; the other lines were loaded.")
    records = _objects(parsed, into, "Line {n} holds {what}, not an object with named fields such as question and "
                       "answer. Fix or delete that line.")
    return _keys(records), records


def _json_why(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno}, column {exc.colno}"
    return "it is nested too deeply"


def _describe(value: Any) -> str:
    if isinstance(value, list):
        return "an empty list" if not value else f"a list of {_describe(value[0]).split(' ', 1)[1]}s"
    kinds = {dict: "an object", str: "a text", bool: "a true/false value", type(None): "a null"}
    return kinds.get(type(value), "a number")


def _keys(records: Records) -> list[str]:
    return list(dict.fromkeys(str(k) for _, rec in records for k in rec))
