"""Preference files (a prompt, a chosen answer, a rejected answer per row) into pairs, and what is wrong.

Files are read by the same reader as Q&A files (CSV, TSV, Excel, JSON, JSONL, odd encodings included), so a
preference file and a Q&A file behave the same; only the columns and the row checks differ. Like `load_data`,
`load_preferences` never raises for bad content: every unusable row is reported by number, never silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from studio.data.columns import SYNONYMS
from studio.data.qa import DataReport, Problem, Report, map_roles, read_into
from studio.data.readers import cell, strip_nul

PREFERENCE_ROLES = ("prompt", "chosen", "rejected", "system")
# A preference prompt is a question by another name; "prompt", TRL's own name for it, comes first here.
_NAMES = {"prompt": ("prompt", *(n for n in SYNONYMS["question"] if n != "prompt")),
          **{role: SYNONYMS[role] for role in ("chosen", "rejected", "system")}}


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
class PreferenceReport(Report):
    pairs: list[PreferencePair] = field(default_factory=list)
    noun: ClassVar[str] = "preference rows"

    def usable(self) -> list:
        return self.pairs


def load_preferences(path: str | Path, columns: dict[str, str] | None = None,
                     max_bytes: int | None = None) -> PreferenceReport:
    """Read a preference file into pairs; every problem, including a bug in this module, ends up in the report."""
    return read_into(PreferenceReport(path=str(path)), columns, max_bytes, _build)


def _build(header: list[str], records, columns: dict[str, str], report: PreferenceReport) -> None:
    report.available_columns = header
    rows = []
    for number, rec in records:
        rec = strip_nul(rec, [])
        if any(cell(v).strip() for v in rec.values()):
            rows.append((number, rec))
    report.rows_total = len(rows) + len(report.unusable)
    if not rows:
        if not report.unusable:
            report.fail("The file has a header row but no data rows under it. Add your prompts and answers.")
        return
    mapping = _mapping(header, columns, report)
    if mapping is None:
        return
    report.columns = mapping
    seen: dict[tuple, int] = {}
    for number, rec in rows:
        values = {role: cell(rec.get(col)).strip() for role, col in mapping.items()}
        empty = [r for r in ("prompt", "chosen", "rejected") if not values[r]]
        if empty:
            verb = "is" if len(empty) == 1 else "are"
            report.drop(number, " and ".join(empty) + " empty", f"Row {number}: the {' and the '.join(empty)} "
                        f"{verb} empty. Fill it in or delete the row.")
            continue
        key = (values.get("system", ""), values["prompt"], values["chosen"], values["rejected"])
        if report.repeats(number, key, seen):
            continue
        if values["chosen"] == values["rejected"]:
            report.problems.append(Problem("warning", f"Row {number}: the chosen and the rejected answer are the same, "
                                           "so the row teaches no preference. Write a worse rejected answer or "
                                           "delete the row.", number))
        report.pairs.append(PreferencePair(values["prompt"], values["chosen"], values["rejected"], number,
                                           values.get("system", "")))


def _mapping(header: list[str], override: dict[str, str], report: PreferenceReport) -> dict[str, str] | None:
    """Role -> column: the caller's choices first, then names matched against the synonym lists."""
    found = ", ".join(header)
    mapping = map_roles(header, override, {role: _NAMES[role] for role in PREFERENCE_ROLES}, report)
    if mapping is None:
        return None
    needed = [r for r in ("prompt", "chosen", "rejected") if r not in mapping]
    for role in needed:
        report.fail(f"Could not tell which column holds the {role} {'answers' if role != 'prompt' else 'prompts'}. "
                    f"Columns found: {found}. Name the columns prompt, chosen and rejected, or set the column "
                    "mapping.")
    if needed:
        return None
    used = [mapping[r] for r in ("prompt", "chosen", "rejected")]
    if len(set(used)) < 3:
        report.fail(f"The prompt, chosen and rejected roles must come from three different columns (got "
                    f"{', '.join(used)}).")
        return None
    return {r: mapping[r] for r in PREFERENCE_ROLES if r in mapping}


def detect_preferences(path: str | Path, qa_report: DataReport,
                       max_bytes: int | None = None) -> PreferenceReport | None:
    """The file read as preference pairs, when the Q&A reader found no answer column but the preference columns
    (prompt, chosen, rejected) are there; else None, and the Q&A report stands."""
    if qa_report.ok or "answer" in qa_report.columns:
        return None
    report = load_preferences(path, max_bytes=max_bytes)
    return report if report.columns else None
