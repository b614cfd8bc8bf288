"""Read the files a domain expert has (CSV, TSV, Excel, JSON, JSONL) into chat examples, and say what is wrong.

`load_data` never raises for bad content: the person reading its problems is not a programmer, so each one names
the row and the fix in plain words, and a row that cannot be used is reported, never silently dropped.
The second half turns examples into token ids with a mask that trains on the answers only.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import json
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROLES = ("question", "answer", "context", "system")
LONG_CELL = 20_000  # characters; far beyond what max_length tokens can hold, so the user should know
PREVIEW_ROWS = 20
_SAMPLE = 64 * 1024

# Normalised column names (lowercase, letters and digits only), best match first. "instruction" comes before
# "input" so Alpaca's instruction/input/output maps input to context, while a plain input/output file still works.
_SYNONYMS = {
    "question": ("question", "questions", "q", "instruction", "prompt", "query", "input", "user", "userinput",
                 "userquestion", "ask", "frage", "pregunta", "domanda", "vraag", "inputtext", "prompttext"),
    "answer": ("answer", "answers", "a", "response", "output", "completion", "reply", "assistant", "target",
               "expectedanswer", "expectedoutput", "antwort", "respuesta", "risposta", "réponse", "reponse",
               "antwoord", "outputtext", "responsetext"),
    "context": ("context", "input", "background", "passage", "document", "additionalcontext", "kontext"),
    "system": ("system", "systemprompt", "systemmessage"),
}
_TURN_KEYS = ("messages", "conversations", "conversation")
_TURN_ROLES = {"system": "system", "user": "user", "human": "user", "prompter": "user", "assistant": "assistant",
               "gpt": "assistant", "bot": "assistant", "model": "assistant", "chatgpt": "assistant"}
_WORD = {"user": "question", "assistant": "answer", "system": "system prompt"}
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_NOT_TEXT = ("{name} does not look like a text table (CSV, TSV or JSON): it holds binary data. "
             "Open it in Excel and save it as 'CSV UTF-8' or as an .xlsx workbook.")


@dataclass
class Problem:
    level: str  # "error" | "warning"
    message: str
    row: int | None = None  # 1-based data row, JSONL line or JSON item; None for the whole file


@dataclass
class Example:
    messages: list[dict[str, str]]  # system?, user, assistant, ... ; always ends with an assistant turn
    row: int

    @property
    def question(self) -> str:
        return next((m["content"] for m in self.messages if m["role"] == "user"), "")

    @property
    def answer(self) -> str:
        return next((m["content"] for m in reversed(self.messages) if m["role"] == "assistant"), "")


def rows_summary(problems: list[Problem], usable: int, total: int, unusable: dict[int, str], noun: str) -> str:
    """"38 of 41 rows usable; 3 unusable: row 7 answer empty, ...; 2 warnings." or the file-level errors."""
    fatal = [p.message for p in problems if p.level == "error" and p.row is None]
    if fatal:
        return " ".join(fatal)
    text = f"{usable} of {total} {noun} usable"
    if unusable:
        reasons = [f"row {row} {why}" for row, why in sorted(unusable.items())]
        more = len(reasons) - 5
        text += f"; {len(reasons)} unusable: " + ", ".join(reasons[:5]) + (f" and {more} more" if more > 0 else "")
    warnings = sum(p.level == "warning" for p in problems)
    return text + (f"; {warnings} warning{'s' * (warnings != 1)}" if warnings else "") + "."


@dataclass
class DataReport:
    path: str
    file_type: str = ""
    format: str = "unknown"
    columns: dict[str, str] = field(default_factory=dict)
    available_columns: list[str] = field(default_factory=list)
    rows_total: int = 0
    examples: list[Example] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    preview: list[dict] = field(default_factory=list)
    unusable: dict[int, str] = field(default_factory=dict)  # row -> short reason, for the summary line

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "warning"]

    @property
    def ok(self) -> bool:
        return bool(self.examples) and not any(p.row is None for p in self.errors)

    def summary(self) -> str:
        return rows_summary(self.problems, len(self.examples), self.rows_total, self.unusable, "rows")

    def to_json(self) -> dict:
        return {"rows": len(self.examples), "rows_total": self.rows_total, "format": self.format,
                "file_type": self.file_type, "columns": dict(self.columns),
                "errors": [p.message for p in self.errors], "warnings": [p.message for p in self.warnings]}

    def _fail(self, message: str) -> None:
        self.problems.append(Problem("error", message))

    def _drop(self, row: int, reason: str, message: str) -> None:
        self.problems.append(Problem("error", message, row))
        self.unusable[row] = reason


def load_data(path: str | Path, columns: dict[str, str] | None = None, max_bytes: int | None = None) -> DataReport:
    """Read a data file into examples; every problem, including a bug in this module, ends up in the report."""
    report = DataReport(path=str(path))
    try:
        _load(Path(path), dict(columns or {}), max_bytes, report)
    except Exception as exc:  # noqa: BLE001 - last line of defence: a bug shows as a message, not a crash
        report._fail(f"Studio could not read this file ({type(exc).__name__}: {exc}). "
                     "This is a bug in Studio; please report it together with the file.")
    return report


def _load(path: Path, columns: dict[str, str], max_bytes: int | None, report: DataReport) -> None:
    table = _read_records(path, max_bytes, report)
    if table is not None:
        _build(*table, columns, report)


def _read_records(path: Path, max_bytes: int | None, report: DataReport
                  ) -> tuple[list[str], list[tuple[int, dict]]] | None:
    """(header, numbered records) from any supported file, or None after reporting why it cannot be read.

    Kept apart from `_build` so other row shapes (preference pairs) read files exactly as Q&A files are read.
    """
    if not path.is_file():
        return report._fail(f"File not found: {path}. Check the name and the folder.")
    size = path.stat().st_size
    if max_bytes is not None and size > max_bytes:
        return report._fail(f"The file is {size / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB. "
                            "Split it into smaller files or remove rows you do not need.")
    if size == 0:
        return report._fail(f"{path.name} is empty. Put a header row and your questions and answers in it.")
    raw = path.read_bytes()
    ext = path.suffix.lower()
    if raw.startswith(b"\xd0\xcf\x11\xe0"):
        return report._fail(f"{path.name} is an old Excel (.xls) file or a password-protected workbook. "
                            "Open it in Excel and save it as .xlsx without a password, or as 'CSV UTF-8'.")
    if raw.startswith(b"PK\x03\x04") or ext in (".xlsx", ".xlsm"):
        rows = _read_xlsx(path, ext, report)
        return None if rows is None else _table(rows, report, ragged=False)
    text = _decode(raw)
    if text is None:
        return report._fail(_NOT_TEXT.format(name=path.name))
    if not text.strip():
        return report._fail(f"{path.name} is empty (only blank lines). Put a header row and your data in it.")
    start = text.lstrip()[:1]
    if ext in (".jsonl", ".ndjson"):
        return _read_jsonl(text, report)
    if ext == ".json" or (ext not in (".csv", ".tsv", ".tab") and start in "[{"):
        return _read_json(text, report)
    rows = _read_csv(text, ext, report)
    return None if rows is None else _table(rows, report, ragged=True)


def _decode(raw: bytes) -> str | None:
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


def _read_xlsx(path: Path, ext: str, report: DataReport) -> list[list[str]] | None:
    import pandas as pd  # imported here: only Excel files need it

    report.file_type = "xlsx"
    try:
        sheets = pd.read_excel(path, sheet_name=None, header=None, dtype=str, na_filter=False, engine="openpyxl")
    except Exception as exc:  # noqa: BLE001 - openpyxl and zipfile raise many types for a damaged workbook
        if ext not in (".xlsx", ".xlsm"):
            return report._fail(_NOT_TEXT.format(name=path.name) + " (It is a zip archive but not an Excel file.)")
        return report._fail(f"{path.name} could not be opened as an Excel workbook ({type(exc).__name__}); it may "
                            "be damaged. Open it in Excel and save it again, or save it as 'CSV UTF-8'.")
    for frame in sheets.values():
        rows = [["" if v is None else str(v) for v in r] for r in frame.itertuples(index=False)]
        if any(c.strip() for r in rows for c in r):
            return rows
    return report._fail(f"{path.name} has no data: every sheet is empty.")


def _read_csv(text: str, ext: str, report: DataReport) -> list[list[str]] | None:
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))  # a long answer is data, not an attack
    delimiter = _sniff(text[:_SAMPLE], prefer_tab=ext in (".tsv", ".tab"))
    report.file_type = "tsv" if delimiter == "\t" else "csv"
    try:
        return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        return report._fail(f"The table could not be read ({exc}). Open it in Excel and save it as 'CSV UTF-8'.")


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


def _table(rows: list[list[str]], report: DataReport, ragged: bool) -> tuple[list[str], list[tuple[int, dict]]]:
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
            report._drop(number, "has extra cells", f"Row {number} has {len(cells)} cells but the header has {width}; "
                         "a separator inside a cell probably needs quotes around the cell. Fix or delete the row.")
            continue
        records.append((number, dict(zip(header, cells + [""] * (width - len(cells)), strict=False))))
    return header, records


def _read_json(text: str, report: DataReport) -> tuple[list[str], list[tuple[int, dict]]] | None:
    report.file_type = "json"
    try:
        data = json.loads(text, strict=False)
    except (json.JSONDecodeError, RecursionError) as exc:
        if isinstance(exc, json.JSONDecodeError) and exc.msg == "Extra data" and text.lstrip().startswith("{"):
            return _read_jsonl(text, report)  # one object per line, saved with a .json name
        return report._fail(f"The JSON is broken: {_json_why(exc)}. A missing comma, quote or bracket just before "
                            "that spot is the usual cause.")
    if isinstance(data, dict):
        lists = [k for k, v in data.items() if isinstance(v, list) and any(isinstance(x, dict) for x in v)]
        if any(_norm(k) in _TURN_KEYS for k in data):
            data = [data]  # a single conversation
        elif len(lists) == 1:
            data = data[lists[0]]
        elif lists:
            return report._fail(f"The JSON object holds several lists ({', '.join(lists)}); Studio reads one. "
                                "Save the one to train on as its own file.")
    if not isinstance(data, list) or not any(isinstance(x, dict) for x in data):
        return report._fail(f"The JSON holds {_describe(data)}, not rows. Studio reads a list of objects such as "
                            '[{"question": "...", "answer": "..."}], or an object holding one such list.')
    records = []
    for i, item in enumerate(data, 1):
        if isinstance(item, dict):
            records.append((i, item))
        else:
            report._drop(i, "not an object", f"Item {i} is {_describe(item)}, not an object with named fields "
                         "such as question and answer. Fix or delete it.")
    return _keys(records), records


def _read_jsonl(text: str, report: DataReport) -> tuple[list[str], list[tuple[int, dict]]]:
    report.file_type = "jsonl"
    records = []
    for number, line in enumerate(text.split("\n"), 1):  # not splitlines(): U+2028 may sit inside a string
        if not line.strip():
            continue
        try:
            item = json.loads(line, strict=False)
        except (json.JSONDecodeError, RecursionError) as exc:
            why = f"{exc.msg} at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else _json_why(exc)
            report._drop(number, "broken JSON", f"Line {number} is not valid JSON ({why}). "
                         "Fix or delete that line; the other lines were loaded.")
            continue
        if isinstance(item, dict):
            records.append((number, item))
        else:
            report._drop(number, "not an object", f"Line {number} holds {_describe(item)}, not an object with "
                         "named fields such as question and answer. Fix or delete that line.")
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


def _keys(records: list[tuple[int, dict]]) -> list[str]:
    return list(dict.fromkeys(str(k) for _, rec in records for k in rec))


def _norm(name: str) -> str:
    return "".join(ch for ch in str(name).lower() if ch.isalnum())


def _cell(value: Any) -> str:
    if value is None or isinstance(value, float) and math.isnan(value):
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _strip_nul(value: Any, hits: list[bool]) -> Any:
    if isinstance(value, str) and "\x00" in value:
        hits.append(True)
        return value.replace("\x00", "")
    if isinstance(value, list):
        return [_strip_nul(v, hits) for v in value]
    if isinstance(value, dict):
        return {k: _strip_nul(v, hits) for k, v in value.items()}
    return value


def _build(header: list[str], records: list[tuple[int, dict]], columns: dict[str, str], report: DataReport) -> None:
    """Detect the shape, turn records into examples and report every row that is skipped or suspicious."""
    report.available_columns = header
    nul_rows, rows = [], []
    for number, rec in records:
        hits: list[bool] = []
        rec = _strip_nul(rec, hits)
        if any(_cell(v).strip() for v in rec.values()):
            rows.append((number, rec))
            nul_rows += [number] if hits else []
    report.rows_total = len(rows) + len(report.unusable)
    report.preview = [{str(k): _cell(v)[:500] for k, v in rec.items()} for _, rec in rows[:PREVIEW_ROWS]]
    if not rows:
        if not report.unusable:
            report._fail("The file has a header row but no data rows under it. Add your questions and answers.")
        return
    turn_key = None if columns else next((k for k in header if _norm(k) in _TURN_KEYS), None)
    if turn_key:
        report.format = "messages" if _norm(turn_key) == "messages" else "sharegpt"
    else:
        mapping = _mapping(header, columns, report)
        if mapping is None:
            return
        report.columns = mapping
        q, a = _norm(mapping["question"]), _norm(mapping["answer"])
        report.format = "alpaca" if q == "instruction" else "prompt_completion" if (q, a) == (
            "prompt", "completion") else "qa"
    seen: dict[tuple, int] = {}
    asked: dict[tuple, int] = {}
    for number, rec in rows:
        example = _from_turns(number, rec, turn_key, report) if turn_key else _from_columns(
            number, rec, report.columns, report)
        if example is None:
            continue
        key = tuple((m["role"], m["content"]) for m in example.messages)
        if key in seen:
            report.unusable[number] = f"duplicate of row {seen[key]}"
            report.problems.append(Problem("warning", f"Row {number} repeats row {seen[key]} exactly; only row "
                                           f"{seen[key]} is used. Delete one of them.", number))
            continue
        seen[key] = number
        if key[:-1] in asked:
            report.problems.append(Problem("warning", f"Row {number} asks the same as row {asked[key[:-1]]} but "
                                           "answers differently; both are used. Check which answer is right.", number))
        asked.setdefault(key[:-1], number)
        for m in example.messages:
            if len(m["content"]) > LONG_CELL:
                report.problems.append(Problem("warning", f"Row {number}: the {_WORD[m['role']]} is "
                                               f"{len(m['content']):,} characters long. Training only sees the first "
                                               "data.max_length tokens (roughly 4 characters each), so the rest is "
                                               "cut off. Shorten it or split it into several rows.", number))
        report.examples.append(example)
    if nul_rows:
        named = ", ".join(map(str, nul_rows[:10])) + (f" and {len(nul_rows) - 10} more" if len(nul_rows) > 10 else "")
        report.problems.append(Problem("warning", f"Removed invisible NUL characters (a sign of a broken export) "
                                       f"from row{'s' * (len(nul_rows) > 1)} {named}. Check that they read right.",
                                       nul_rows[0]))


def _mapping(header: list[str], override: dict[str, str], report: DataReport) -> dict[str, str] | None:
    """Role -> column: the caller's choices first, then names matched against the synonym lists."""
    found = ", ".join(header)
    bad = [r for r in override if r not in ROLES]
    missing = [c for r, c in override.items() if c and r in ROLES and c not in header]
    for role in bad:
        report._fail(f"The column mapping has the role '{role}'; the roles are {', '.join(ROLES)}.")
    for col in missing:
        report._fail(f"The column mapping names the column '{col}', which is not in the file. Columns found: {found}.")
    if bad or missing:
        return None
    mapping = {r: c for r, c in override.items() if c}
    for role in ROLES:
        if role not in override:
            names = {_norm(c): c for c in reversed(header) if c not in mapping.values()}
            col = next((names[s] for s in _SYNONYMS[role] if s in names), None)
            if col:
                mapping[role] = col
    needed = [r for r in ("question", "answer") if r not in mapping]
    free = [c for c in header if c not in mapping.values()]
    if needed and len(header) == 2 and len(free) == len(needed):
        mapping.update(zip(needed, free, strict=False))
        report.problems.append(Problem("warning", f"The column names ({found}) were not recognised, so "
                                       f"'{mapping['question']}' is used as the question and '{mapping['answer']}' "
                                       "as the answer. If that is wrong, set the column mapping; if the first line is "
                                       "a real question, add a header line such as question,answer."))
        needed = []
    for role in needed:
        hint = " Only one column was found: the file may use an unusual separator." if len(header) == 1 else ""
        report._fail(f"Could not tell which column holds the {role}s. Columns found: {found}.{hint} "
                     "Name the columns 'question' and 'answer', or set the column mapping.")
    if not needed and mapping["question"] == mapping["answer"]:
        report._fail(f"The question and the answer both come from the column '{mapping['question']}'. "
                     "Pick two different columns.")
        return None
    return None if needed else {r: mapping[r] for r in ROLES if r in mapping}


def _from_columns(number: int, rec: dict, mapping: dict[str, str], report: DataReport) -> Example | None:
    values = {role: _cell(rec.get(col)).strip() for role, col in mapping.items()}
    empty = [r for r in ("question", "answer") if not values[r]]
    if empty:
        verb = "is" if len(empty) == 1 else "are"
        report._drop(number, " and ".join(empty) + " empty", f"Row {number}: the {' and the '.join(empty)} {verb} "
                     "empty. Fill it in or delete the row.")
        return None
    question = values["question"] + (f"\n\n{values['context']}" if values.get("context") else "")
    messages = [{"role": "system", "content": values["system"]}] if values.get("system") else []
    messages += [{"role": "user", "content": question}, {"role": "assistant", "content": values["answer"]}]
    return Example(messages, number)


def _content(value: Any) -> str:
    if isinstance(value, list):  # OpenAI content parts: [{"type": "text", "text": "..."}]
        return "".join(p.get("text", "") if isinstance(p, dict) else _cell(p) for p in value)
    return _cell(value)


def _from_turns(number: int, rec: dict, key: str, report: DataReport) -> Example | None:
    turns = rec.get(key)
    if not isinstance(turns, list) or not turns:
        report._drop(number, "no conversation", f"Row {number}: '{key}' should be a list of turns such as "
                     '{"role": "user", "content": "..."}. Fix or delete the row.')
        return None
    messages = []
    if _cell(rec.get("system")).strip():
        messages.append({"role": "system", "content": _cell(rec["system"]).strip()})
    for i, turn in enumerate(turns, 1):
        turn = turn if isinstance(turn, dict) else {}
        name = turn.get("role", turn.get("from"))
        role = _TURN_ROLES.get(str(name).strip().lower())
        if role is None:
            report._drop(number, f"turn {i} unknown role", f"Row {number}: turn {i} has the role '{name}'; Studio "
                         "knows system, user and assistant (or human and gpt). Fix the role or remove the turn.")
            return None
        text = _content(turn.get("content", turn.get("value"))).strip()
        if not text:
            report._drop(number, f"turn {i} empty", f"Row {number}: turn {i} ({role}) is empty. "
                         "Fill it in or remove the turn.")
            return None
        messages.append({"role": role, "content": text})
    dangling = 0
    while messages and messages[-1]["role"] != "assistant":
        messages.pop()
        dangling += 1
    talk = [m["role"] for m in messages if m["role"] != "system"]
    if not talk or talk[0] != "user":
        why = "no answer" if not talk else "starts with an answer"
        report._drop(number, why, f"Row {number}: the conversation {'has ' * (not talk)}{why}. It needs a user "
                     "turn followed by an assistant turn.")
        return None
    if dangling:
        report.problems.append(Problem("warning", f"Row {number}: the conversation ends with {dangling} turn(s) after "
                                       "the last answer; they were left out.", number))
    return Example(messages, number)


def examples_from_pairs(pairs: list[tuple[str, str]]) -> list[Example]:
    return [Example([{"role": "user", "content": q}, {"role": "assistant", "content": a}], i)
            for i, (q, a) in enumerate(pairs, 1)]


def default_eval_size(n: int) -> int:
    """About 10% held out (at most 100), but none below 60 examples.

    Small uploads are usually fact sheets: a held-out fact is a fact the model never learns, and users
    expect all of theirs to be known. Their evaluation uses paraphrases or the training questions instead.
    """
    return 0 if n < 60 else min(100, round(n * 0.1))


def split_examples(examples: list[Example], eval_size: float | None, seed: int
                   ) -> tuple[list[Example], list[Example]]:
    """(train, eval), each in file order; the seed picks which rows are held out, so a rerun holds out the same."""
    n = len(examples)
    if eval_size is None:
        count = default_eval_size(n)
    elif eval_size < 0:
        raise ValueError(f"eval_size must be 0 or more, not {eval_size}")
    elif 0 < eval_size < 1:
        count = max(1, round(n * eval_size))
    else:
        count = int(eval_size)
    count = max(0, min(count, n - 1))  # never leave training empty
    held = set(random.Random(seed).sample(range(n), count))
    return [e for i, e in enumerate(examples) if i not in held], [e for i, e in enumerate(examples) if i in held]


def _chat(example: Example, system_prompt: str) -> list[dict[str, str]]:
    messages = [dict(m) for m in example.messages]
    if system_prompt and not any(m["role"] == "system" for m in messages):
        messages.insert(0, {"role": "system", "content": system_prompt})
    return messages


def _ids(tokenizer, messages: list[dict[str, str]], generation_prompt: bool = False) -> list[int]:
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def tokenize_example(tokenizer, example: Example, system_prompt: str = "", max_length: int = 512) -> dict:
    """Token ids plus a mask that is 1 on each assistant turn and its end-of-turn tokens, 0 on everything else.

    Training on prompts too would teach the model to write questions; the mask keeps the loss on the answers.
    """
    messages = _chat(example, system_prompt)
    ids = _ids(tokenizer, messages)
    mask = [0] * len(ids)
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        # For ChatML-style templates both renders tokenise to exact prefixes of `ids`; where a template merges
        # tokens across the boundary, the token counts are still the best alignment available.
        start = len(_ids(tokenizer, messages[:i], generation_prompt=True))
        end = len(_ids(tokenizer, messages[: i + 1]))
        mask[start:end] = [1] * len(mask[start:end])
    truncated = len(ids) > max_length
    ids, mask = ids[:max_length], mask[:max_length]
    return {"input_ids": ids, "completion_mask": mask, "truncated": truncated or not any(mask)}


def render_example(tokenizer, example: Example, system_prompt: str = "", max_length: int = 512
                   ) -> list[tuple[str, bool]]:
    """The text the model sees, in runs of (text, trained), so a preview can grey out what is not learned."""
    tokens = tokenize_example(tokenizer, example, system_prompt, max_length)
    pairs = zip(tokens["input_ids"], tokens["completion_mask"], strict=False)
    return [(tokenizer.decode([t for t, _ in run], skip_special_tokens=False), bool(flag))
            for flag, run in itertools.groupby(pairs, key=lambda p: p[1])]


def token_lengths(tokenizer, examples: list[Example], system_prompt: str = "") -> list[int]:
    return [len(_ids(tokenizer, _chat(e, system_prompt))) for e in examples]


def shared_prefix_length(tokenizer, system_prompt: str = "") -> int:
    """Tokens every example starts with (the chat template's system turn and the user turn's header).

    CPU training computes them once per packed row (packed_attention.SharedPrefixCollator); the time
    estimate counts them so.
    """
    a, b = (_ids(tokenizer, _chat(Example([{"role": "user", "content": text}], 0), system_prompt))
            for text in ("Who?", "Where is it?"))
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


def length_problems(tokenizer, examples: list[Example], system_prompt: str, max_length: int) -> list[Problem]:
    """One warning per example that max_length would cut (the first 10 by name), so nobody trains on half answers."""
    lengths = token_lengths(tokenizer, examples, system_prompt)
    long = [(e, n) for e, n in zip(examples, lengths, strict=True) if n > max_length]
    problems = []
    for example, n in long[:10]:
        kept = tokenize_example(tokenizer, example, system_prompt, max_length)["completion_mask"]
        what = "its question alone fills it, so nothing is learned from it" if not any(kept) else "the end is cut off"
        problems.append(Problem("warning", f"Row {example.row} is {n} tokens, more than data.max_length "
                                f"({max_length}); {what}. Raise data.max_length or shorten row {example.row}.",
                                example.row))
    if len(long) > 10:
        problems.append(Problem("warning", f"{len(long) - 10} more rows are longer than data.max_length "
                                f"({max_length}). Raise data.max_length or shorten them."))
    return problems
