"""Read preference files (a prompt, a chosen answer, a rejected answer per row) and say what is wrong.

Files are read by `studio.data`'s own readers (CSV, TSV, Excel, JSON, JSONL, odd encodings included), so a
preference file and a Q&A file behave the same; only the columns and the row checks differ. Like `load_data`,
`load_preferences` never raises for bad content: every unusable row is reported by number, never silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# Private helpers of studio.data, used on purpose: the file reading must stay identical for both file kinds.
from studio.data import DataReport, Problem, _cell, _norm, _read_records, _strip_nul, rows_summary

ROLES = ("prompt", "chosen", "rejected", "system")

# Normalised names (lowercase, letters and digits only), best match first.
_SYNONYMS = {
    "prompt": ("prompt", "question", "instruction", "query", "input", "user", "frage", "pregunta"),
    "chosen": ("chosen", "preferred", "good", "accepted", "better", "chosenresponse", "goodanswer", "positive",
               "win", "winner"),
    "rejected": ("rejected", "dispreferred", "bad", "refused", "worse", "rejectedresponse", "badanswer", "negative",
                 "lose", "loser"),
    "system": ("system", "systemprompt", "systemmessage"),
}


@dataclass
class PreferencePair:
    prompt: str
    chosen: str
    rejected: str
    row: int
    system: str = ""

    def conversation(self, system_prompt: str = "") -> dict[str, list[dict[str, str]]]:
        """TRL's conversational preference shape; the trainer applies the model's chat template to it."""
        system = self.system or system_prompt
        prompt = [{"role": "system", "content": system}] if system else []
        prompt.append({"role": "user", "content": self.prompt})
        return {"prompt": prompt, "chosen": [{"role": "assistant", "content": self.chosen}],
                "rejected": [{"role": "assistant", "content": self.rejected}]}


@dataclass
class PreferenceReport:
    path: str
    file_type: str = ""
    columns: dict[str, str] = field(default_factory=dict)
    available_columns: list[str] = field(default_factory=list)
    rows_total: int = 0
    pairs: list[PreferencePair] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    unusable: dict[int, str] = field(default_factory=dict)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "warning"]

    @property
    def ok(self) -> bool:
        return bool(self.pairs) and not any(p.row is None for p in self.errors)

    def summary(self) -> str:
        return rows_summary(self.problems, len(self.pairs), self.rows_total, self.unusable, "preference rows")

    def to_json(self) -> dict:
        return {"rows": len(self.pairs), "rows_total": self.rows_total, "file_type": self.file_type,
                "columns": dict(self.columns), "errors": [p.message for p in self.errors],
                "warnings": [p.message for p in self.warnings]}

    def _fail(self, message: str) -> None:
        self.problems.append(Problem("error", message))

    def _drop(self, row: int, reason: str, message: str) -> None:
        self.problems.append(Problem("error", message, row))
        self.unusable[row] = reason


def load_preferences(path: str | Path, columns: dict[str, str] | None = None,
                     max_bytes: int | None = None) -> PreferenceReport:
    """Read a preference file into pairs; every problem, including a bug in this module, ends up in the report."""
    report = PreferenceReport(path=str(path))
    try:
        _load(Path(path), dict(columns or {}), max_bytes, report)
    except Exception as exc:  # noqa: BLE001 - last line of defence: a bug shows as a message, not a crash
        report._fail(f"Studio could not read this file ({type(exc).__name__}: {exc}). "
                     "This is a bug in Studio; please report it together with the file.")
    return report


def _load(path: Path, columns: dict[str, str], max_bytes: int | None, report: PreferenceReport) -> None:
    reading = DataReport(path=str(path))  # the shared readers report into a DataReport; its findings are copied
    table = _read_records(path, max_bytes, reading)
    report.file_type = reading.file_type
    report.problems += reading.problems
    report.unusable.update(reading.unusable)
    if table is None:
        return
    header, records = table
    report.available_columns = header
    rows = []
    for number, rec in records:
        rec = _strip_nul(rec, [])
        if any(_cell(v).strip() for v in rec.values()):
            rows.append((number, rec))
    report.rows_total = len(rows) + len(report.unusable)
    if not rows:
        if not report.unusable:
            report._fail("The file has a header row but no data rows under it. Add your prompts and answers.")
        return
    mapping = _mapping(header, columns, report)
    if mapping is None:
        return
    report.columns = mapping
    seen: dict[tuple, int] = {}
    for number, rec in rows:
        values = {role: _cell(rec.get(col)).strip() for role, col in mapping.items()}
        empty = [r for r in ("prompt", "chosen", "rejected") if not values[r]]
        if empty:
            verb = "is" if len(empty) == 1 else "are"
            report._drop(number, " and ".join(empty) + " empty", f"Row {number}: the {' and the '.join(empty)} "
                         f"{verb} empty. Fill it in or delete the row.")
            continue
        key = (values.get("system", ""), values["prompt"], values["chosen"], values["rejected"])
        if key in seen:
            report.unusable[number] = f"duplicate of row {seen[key]}"
            report.problems.append(Problem("warning", f"Row {number} repeats row {seen[key]} exactly; only row "
                                           f"{seen[key]} is used. Delete one of them.", number))
            continue
        seen[key] = number
        if values["chosen"] == values["rejected"]:
            report.problems.append(Problem("warning", f"Row {number}: the chosen and the rejected answer are the same, "
                                           "so the row teaches no preference. Write a worse rejected answer or "
                                           "delete the row.", number))
        report.pairs.append(PreferencePair(values["prompt"], values["chosen"], values["rejected"], number,
                                           values.get("system", "")))


def _mapping(header: list[str], override: dict[str, str], report: PreferenceReport) -> dict[str, str] | None:
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
    needed = [r for r in ("prompt", "chosen", "rejected") if r not in mapping]
    for role in needed:
        report._fail(f"Could not tell which column holds the {role} {'answers' if role != 'prompt' else 'prompts'}. "
                     f"Columns found: {found}. Name the columns prompt, chosen and rejected, or set the column "
                     "mapping.")
    if needed:
        return None
    used = [mapping[r] for r in ("prompt", "chosen", "rejected")]
    if len(set(used)) < 3:
        report._fail(f"The prompt, chosen and rejected roles must come from three different columns (got "
                     f"{', '.join(used)}).")
        return None
    return {r: mapping[r] for r in ROLES if r in mapping}


def detect_preferences(path: str | Path, qa_report: DataReport,
                       max_bytes: int | None = None) -> PreferenceReport | None:
    """The file read as preference pairs, when the Q&A reader found no answer column but the preference columns
    (prompt, chosen, rejected) are there; else None, and the Q&A report stands."""
    if qa_report.ok or "answer" in qa_report.columns:
        return None
    report = load_preferences(path, max_bytes=max_bytes)
    return report if report.columns else None
