"""An optional judge: a larger model behind an OpenAI-compatible endpoint grades each tuned answer against the
reference (correct / partly / wrong, with a one-line reason).

The held-out check Studio always runs asks whether the tuned answer holds the reference's fact; it cannot tell a
right answer in other words from a wrong one that shares a word, nor a multi-part answer that misses a part. A
judge can, where the expert has one (a local Ollama, a company gateway): its grades are kept in `judge.json` beside
`eval.json` and shown next to the exact-fact figures, never in their place. The endpoint is the expert's or the
operator's (STUDIO_JUDGE_ENDPOINT, STUDIO_JUDGE_MODEL, STUDIO_JUDGE_API_KEY); a shared studio refuses an endpoint
a visitor names (`studio.policy.endpoint_problem`) and uses only the operator's.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

from studio import runs
from studio.data import DocumentError
from studio.docqa import ask_endpoint

FILE = "judge.json"
GRADES = ("correct", "partly", "wrong")
SYSTEM = ("You grade a student's answer against the reference answer for one question. Judge only whether the "
          "student's answer states the same facts as the reference (numbers, names, codes and every part of it); "
          "wording and length do not matter. Reply with exactly one line: the grade (correct, partly or wrong), a "
          "colon, and one short reason.")
_GRADE = re.compile(r"^\W*(correct|partly|partially|wrong|incorrect)\b\W*(.*)$", re.IGNORECASE | re.DOTALL)


class JudgeError(ValueError):
    """The judge cannot be asked; the message says why and what to set."""


def configured() -> tuple[str, str]:
    """(endpoint, model) the operator set in the environment, or empty strings."""
    return os.environ.get("STUDIO_JUDGE_ENDPOINT", "").strip(), os.environ.get("STUDIO_JUDGE_MODEL", "").strip()


def prompt(question: str, reference: str, answer: str) -> str:
    return f"Question: {question}\nReference answer: {reference}\nStudent's answer: {answer}\nGrade:"


def parse(reply: str) -> tuple[str, str]:
    """("correct" | "partly" | "wrong", reason) from the judge's line; an unreadable reply is no grade ("?")."""
    line = next((ln for ln in (reply or "").strip().splitlines() if ln.strip()), "")
    match = _GRADE.match(line.strip())
    if not match:
        return "?", f"The judge answered something else: {line[:120]}"
    word = match.group(1).lower()
    grade = {"partially": "partly", "incorrect": "wrong"}.get(word, word)
    return grade, match.group(2).strip(" :-—")[:300]


def judge_run(run_dir: Path, endpoint: str, model: str, api_key: str | None = None,
              progress: Callable[[int, int], None] | None = None,
              ask: Callable[[str], str] | None = None) -> dict:
    """Grade every tuned answer of the run's held-out evaluation (`eval.json`); writes and returns `judge.json`:
    {"model", "rows": [{"question", "grade", "reason"}], "counts": {grade: n}, "seconds"}."""
    run_dir = Path(run_dir)
    try:
        rows = json.loads((run_dir / "eval.json").read_text(encoding="utf-8")).get("rows", [])
    except (OSError, ValueError):
        rows = []
    if not rows:
        raise JudgeError(f"Run {run_dir.name} has no held-out answers to judge yet: press Evaluate first.")
    if ask is None:
        if not endpoint or not model:
            raise JudgeError("No judge is set: give an OpenAI-compatible endpoint and a model name (or set "
                             "STUDIO_JUDGE_ENDPOINT and STUDIO_JUDGE_MODEL for everyone).")

        def ask(text: str) -> str:
            return ask_endpoint(endpoint, model, text, api_key, 80, system=SYSTEM, temperature=0.0)

    started, graded = time.monotonic(), []
    for i, row in enumerate(rows):
        try:
            grade, reason = parse(ask(prompt(row["question"], row.get("answer", ""), row.get("tuned", ""))))
        except DocumentError as exc:
            raise JudgeError(str(exc)) from None
        graded.append({"question": row["question"], "grade": grade, "reason": reason})
        if progress is not None:
            progress(i + 1, len(rows))
    counts = {g: sum(r["grade"] == g for r in graded) for g in (*GRADES, "?")}
    report = {"model": model, "rows": graded, "counts": counts, "seconds": round(time.monotonic() - started, 1),
              "when": time.time()}
    runs.write_json_atomic(run_dir / FILE, report)
    return report


def read(run_dir: Path) -> dict:
    try:
        return json.loads((Path(run_dir) / FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def summary_line(report: dict) -> str:
    """"The judge (model) graded 20 answers: 14 correct, 3 partly, 3 wrong."."""
    if not report:
        return ""
    c = report.get("counts", {})
    total = sum(c.values())
    line = (f"The judge ({report.get('model') or 'endpoint'}) graded {total} answers: {c.get('correct', 0)} correct, "
            f"{c.get('partly', 0)} partly, {c.get('wrong', 0)} wrong")
    return line + (f", {c['?']} unreadable." if c.get("?") else ".")
