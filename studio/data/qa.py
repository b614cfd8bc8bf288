"""Q&A files into chat examples: which column is the question, which the answer, and what is wrong with each row.

`load_data` never raises for bad content: the person reading its problems is not a programmer, so each one names
the row and the fix in plain words, and a row that cannot be used is reported, never silently dropped.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from studio.data.columns import SYNONYMS, TURN_KEYS, find_column, norm
from studio.data.readers import Records, cell, read_records, strip_nul

ROLES = ("question", "answer", "context", "system")
LONG_CELL = 20_000  # characters; far beyond what max_length tokens can hold, so the user should know
PREVIEW_ROWS = 20
_TURN_ROLES = {"system": "system", "user": "user", "human": "user", "prompter": "user", "assistant": "assistant",
               "gpt": "assistant", "bot": "assistant", "model": "assistant", "chatgpt": "assistant"}
_WORD = {"user": "question", "assistant": "answer", "system": "system prompt"}


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
class Report:
    """What reading one file found: its columns and every problem, in plain words (Q&A and preference files)."""

    path: str
    file_type: str = ""
    columns: dict[str, str] = field(default_factory=dict)
    available_columns: list[str] = field(default_factory=list)
    rows_total: int = 0
    problems: list[Problem] = field(default_factory=list)
    unusable: dict[int, str] = field(default_factory=dict)  # row -> short reason, for the summary line

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "warning"]

    noun: ClassVar[str] = "rows"

    def usable(self) -> list:
        """The rows the file yields (examples or pairs): what the subclass reads."""
        raise NotImplementedError

    @property
    def ok(self) -> bool:
        return bool(self.usable()) and not any(p.row is None for p in self.errors)

    def summary(self) -> str:
        return rows_summary(self.problems, len(self.usable()), self.rows_total, self.unusable, self.noun)

    def to_json(self) -> dict:
        return {"rows": len(self.usable()), "rows_total": self.rows_total, "file_type": self.file_type,
                "columns": dict(self.columns), "errors": [p.message for p in self.errors],
                "warnings": [p.message for p in self.warnings]}

    def fail(self, message: str) -> None:
        self.problems.append(Problem("error", message))

    def repeats(self, number: int, key: tuple, seen: dict[tuple, int]) -> bool:
        """True, with a warning, when row `number` holds what an earlier row held; else `seen` remembers it."""
        if key in seen:
            self.unusable[number] = f"duplicate of row {seen[key]}"
            self.problems.append(Problem("warning", f"Row {number} repeats row {seen[key]} exactly; only row "
                                         f"{seen[key]} is used. Delete one of them.", number))
            return True
        seen[key] = number
        return False

    def drop(self, row: int, reason: str, message: str) -> None:
        self.problems.append(Problem("error", message, row))
        self.unusable[row] = reason


R = TypeVar("R", bound=Report)


@dataclass
class DataReport(Report):
    format: str = "unknown"
    examples: list[Example] = field(default_factory=list)
    preview: list[dict] = field(default_factory=list)

    def usable(self) -> list:
        return self.examples

    def to_json(self) -> dict:
        return super().to_json() | {"format": self.format}


def load_data(path: str | Path, columns: dict[str, str] | None = None, max_bytes: int | None = None) -> DataReport:
    """Read a data file into examples; every problem, including a bug in this module, ends up in the report."""
    return read_into(DataReport(path=str(path)), columns, max_bytes, _build)


def read_into(report: R, columns: dict[str, str] | None, max_bytes: int | None, build) -> R:
    """The file at `report.path` read and handed to `build(header, records, columns, report)`; every problem,
    including a bug in Studio, ends up in the report rather than as an exception."""
    try:
        table = read_records(Path(report.path), max_bytes, report)
        if table is not None:
            build(*table, dict(columns or {}), report)
    except Exception as exc:  # noqa: BLE001 - last line of defence: a bug shows as a message, not a crash
        report.fail(f"Studio could not read this file ({type(exc).__name__}: {exc}). "
                    "This is a bug in Studio; please report it together with the file.")
    return report


def _build(header: list[str], records: Records, columns: dict[str, str], report: DataReport) -> None:
    """Detect the shape, turn records into examples and report every row that is skipped or suspicious."""
    report.available_columns = header
    nul_rows, rows = [], []
    for number, rec in records:
        hits: list[bool] = []
        rec = strip_nul(rec, hits)
        if any(cell(v).strip() for v in rec.values()):
            rows.append((number, rec))
            nul_rows += [number] if hits else []
    report.rows_total = len(rows) + len(report.unusable)
    report.preview = [{str(k): cell(v)[:500] for k, v in rec.items()} for _, rec in rows[:PREVIEW_ROWS]]
    if not rows:
        if not report.unusable:
            report.fail("The file has a header row but no data rows under it. Add your questions and answers.")
        return
    turn_key = None if columns else next((k for k in header if norm(k) in TURN_KEYS), None)
    if turn_key:
        report.format = "messages" if norm(turn_key) == "messages" else "sharegpt"
    else:
        mapping = _mapping(header, columns, report)
        if mapping is None:
            return
        report.columns = mapping
        q, a = norm(mapping["question"]), norm(mapping["answer"])
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
        if report.repeats(number, key, seen):
            continue
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


def map_roles(header: list[str], override: dict[str, str], names: dict[str, list[str]], report: Report
              ) -> dict[str, str] | None:
    """Role -> column for the roles in `names`: the caller's choices first (checked: each problem reported, and
    None), then each other role's first free column among its synonyms in `names`."""
    found, roles = ", ".join(header), tuple(names)
    bad = [r for r in override if r not in roles]
    missing = [c for r, c in override.items() if c and r in roles and c not in header]
    for role in bad:
        report.fail(f"The column mapping has the role '{role}'; the roles are {', '.join(roles)}.")
    for col in missing:
        report.fail(f"The column mapping names the column '{col}', which is not in the file. Columns found: {found}.")
    if bad or missing:
        return None
    mapping = {r: c for r, c in override.items() if c}
    for role in roles:
        if role not in override:
            col = find_column(header, names[role], taken=mapping.values())
            if col:
                mapping[role] = col
    return mapping


def _mapping(header: list[str], override: dict[str, str], report: DataReport) -> dict[str, str] | None:
    """Role -> column: the caller's choices first, then names matched against the synonym lists."""
    found = ", ".join(header)
    mapping = map_roles(header, override, {role: SYNONYMS[role] for role in ROLES}, report)
    if mapping is None:
        return None
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
        report.fail(f"Could not tell which column holds the {role}s. Columns found: {found}.{hint} "
                    "Name the columns 'question' and 'answer', or set the column mapping.")
    if not needed and mapping["question"] == mapping["answer"]:
        report.fail(f"The question and the answer both come from the column '{mapping['question']}'. "
                    "Pick two different columns.")
        return None
    return None if needed else {r: mapping[r] for r in ROLES if r in mapping}


def _from_columns(number: int, rec: dict, mapping: dict[str, str], report: DataReport) -> Example | None:
    values = {role: cell(rec.get(col)).strip() for role, col in mapping.items()}
    empty = [r for r in ("question", "answer") if not values[r]]
    if empty:
        verb = "is" if len(empty) == 1 else "are"
        report.drop(number, " and ".join(empty) + " empty", f"Row {number}: the {' and the '.join(empty)} {verb} "
                    "empty. Fill it in or delete the row.")
        return None
    question = values["question"] + (f"\n\n{values['context']}" if values.get("context") else "")
    messages = [{"role": "system", "content": values["system"]}] if values.get("system") else []
    messages += [{"role": "user", "content": question}, {"role": "assistant", "content": values["answer"]}]
    return Example(messages, number)


def _content(value: Any) -> str:
    if isinstance(value, list):  # OpenAI content parts: [{"type": "text", "text": "..."}]
        return "".join(p.get("text", "") if isinstance(p, dict) else cell(p) for p in value)
    return cell(value)


def _from_turns(number: int, rec: dict, key: str, report: DataReport) -> Example | None:
    turns = rec.get(key)
    if not isinstance(turns, list) or not turns:
        report.drop(number, "no conversation", f"Row {number}: '{key}' should be a list of turns such as "
                    '{"role": "user", "content": "..."}. Fix or delete the row.')
        return None
    messages = []
    if cell(rec.get("system")).strip():
        messages.append({"role": "system", "content": cell(rec["system"]).strip()})
    for i, turn in enumerate(turns, 1):
        turn = turn if isinstance(turn, dict) else {}
        name = turn.get("role", turn.get("from"))
        role = _TURN_ROLES.get(str(name).strip().lower())
        if role is None:
            report.drop(number, f"turn {i} unknown role", f"Row {number}: turn {i} has the role '{name}'; Studio "
                        "knows system, user and assistant (or human and gpt). Fix the role or remove the turn.")
            return None
        text = _content(turn.get("content", turn.get("value"))).strip()
        if not text:
            report.drop(number, f"turn {i} empty", f"Row {number}: turn {i} ({role}) is empty. "
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
        report.drop(number, why, f"Row {number}: the conversation {'has ' * (not talk)}{why}. It needs a user "
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
