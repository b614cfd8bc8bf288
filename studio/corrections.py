"""Corrections become data: the expert marks a tuned answer right or wrong, types the right one, and the next run
learns from it.

Each mark is a line of the run's `corrections.jsonl` (the question, the model's answer, right or wrong, the
correction, where it was made, who and when); the latest mark of a question counts. `revise` turns them into a new
revision of the run's data: the pairs the run trained on with each corrected answer put in place of its pair's
answer, or added as a new pair where the question was not among them. A revision is a file of its own under
`revisions/` with its SHA-256, the revision before it and what changed (added, edited), so the upload it came
from is never touched and every revision can be downloaded and trained on again. A wrong answer with its
correction is also a preference pair (prompt, chosen = the correction, rejected = the model's answer), for DPO or
ORPO on top of the run.
"""

from __future__ import annotations

import csv
import hashlib
import json
import time
from pathlib import Path

from studio import runs
from studio.data import load_data
from studio.question_forms import normalise
from studio.recipe import load as load_recipe

FILE = "corrections.jsonl"
REVISIONS = "revisions"
CORRECTED = "corrected"  # marks a revision's rows that carry a correction: the next run's evaluation asks them too


class CorrectionError(ValueError):
    """A mark that cannot be kept as it is; the message says what to fix."""


def record(run_dir: Path, question: str, answer: str, right: bool, correction: str = "", source: str = "evaluate",
           who: str = "") -> dict:
    """Keep one mark of a tuned answer. A wrong one needs the right answer, and it must differ from the model's."""
    question, correction = str(question or "").strip(), str(correction or "").strip()
    problems = []
    if not question:
        problems.append("The question is empty: mark an answer from the table or the chat.")
    if not right and not correction:
        problems.append("Type the right answer for a wrong one (the box starts with the model's answer to edit).")
    elif not right and correction == str(answer or "").strip():
        problems.append("The correction is the model's own answer: change it to the right one, or mark it right.")
    if problems:
        raise CorrectionError(" ".join(problems))
    entry = {"question": question, "answer": str(answer or ""), "verdict": "right" if right else "wrong",
             "correction": "" if right else correction, "source": source, "who": who, "when": round(time.time(), 3)}
    runs.append_jsonl(Path(run_dir) / FILE, entry)
    return entry


def latest(run_dir: Path) -> dict[str, dict]:
    """The last mark of each question (by its words, as a person types them: case and spacing aside)."""
    out: dict[str, dict] = {}
    for entry in runs.read_jsonl(Path(run_dir) / FILE):
        out[normalise(entry["question"])] = entry
    return out


def preference_rows(run_dir: Path) -> list[dict]:
    """prompt/chosen/rejected rows from the wrong answers and their corrections (a DPO or ORPO file)."""
    return [{"prompt": e["question"], "chosen": e["correction"], "rejected": e["answer"]}
            for e in latest(run_dir).values() if e["verdict"] == "wrong" and e["answer"].strip()]


def write_preferences(run_dir: Path, out: Path) -> Path:
    rows = preference_rows(run_dir)
    if not rows:
        raise CorrectionError("No wrong answers with corrections yet: mark some first.")
    with open(out, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["prompt", "chosen", "rejected"])
        writer.writeheader()
        writer.writerows(rows)
    return out


def _source_data(run_dir: Path) -> Path:
    recipe = load_recipe(run_dir / "recipe.yaml")
    path = run_dir / "data" / Path(recipe.data.path).name
    if not path.is_file():
        raise CorrectionError(f"The run's own copy of its data ({path.name}) is missing: there is nothing to revise.")
    return path


def revisions(run_dir: Path) -> list[dict]:
    """Every revision of the run's data, oldest first: {"file", "sha256", "upload", "previous", "rows", "added",
    "edited", "who", "when"}. Each is the upload with every correction made until then; added and edited are
    against the upload."""
    folder = Path(run_dir) / REVISIONS
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("rev-*.json"))]


def revise(run_dir: Path, who: str = "") -> Path:
    """A new revision of the run's data with every correction in it; the path of its file (JSONL, chat messages).

    The rows that carry a correction are marked `"corrected": true`, so the run trained on it also answers those
    questions after training (`evaluate.evaluate_heldout`) and the comparison can say whether each one took."""
    run_dir = Path(run_dir)
    marks = {q: e for q, e in latest(run_dir).items() if e["verdict"] == "wrong"}
    if not marks:
        raise CorrectionError("No wrong answers with corrections yet: mark some first.")
    source = _source_data(run_dir)
    report = load_data(source)
    if not report.examples:
        raise CorrectionError(f"The run's data ({source.name}) has no usable rows to revise.")
    examples, edited, seen = [], [], set()
    for example in report.examples:
        messages = [dict(m) for m in example.messages]
        key = normalise(example.question)
        users = [m for m in messages if m["role"] == "user"]
        if key in marks and len(users) == 1 and key not in seen:
            mark = marks[key]
            if messages[-1]["content"].strip() != mark["correction"]:
                edited.append({"question": example.question, "before": messages[-1]["content"],
                               "after": mark["correction"]})
                messages[-1]["content"] = mark["correction"]
            seen.add(key)
            examples.append({"messages": messages, CORRECTED: True})
            continue
        examples.append({"messages": messages})
    added = [{"question": m["question"], "answer": m["correction"]} for q, m in marks.items() if q not in seen]
    examples += [{"messages": [{"role": "user", "content": a["question"]},
                               {"role": "assistant", "content": a["answer"]}], CORRECTED: True} for a in added]
    earlier = revisions(run_dir)
    number = len(earlier) + 1
    folder = run_dir / REVISIONS
    folder.mkdir(exist_ok=True)
    out = folder / f"rev-{number:03d}-{source.stem}.jsonl"
    text = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in examples)
    out.write_text(text, encoding="utf-8")
    manifest = {"file": out.name, "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
                "upload": source.name, "previous": earlier[-1]["file"] if earlier else None, "rows": len(examples),
                "added": added, "edited": edited, "who": who, "when": round(time.time(), 3)}
    runs.write_json_atomic(folder / f"rev-{number:03d}.json", manifest)
    return out


def train_again(run_dir: Path, continue_training: bool = False):
    """(recipe, data file) of a new run on a new revision of the run's data: the run's recipe, from scratch or (SFT
    LoRA runs) continued from its adapter. Checked here for every way in (UI, API, CLI)."""
    run_dir = Path(run_dir)
    recipe = load_recipe(run_dir / "recipe.yaml")
    if recipe.method.objective != "sft":
        raise CorrectionError("The corrections make Q&A pairs, so they train an SFT run; this run is "
                              f"{recipe.method.objective.upper()}. Use its preference pairs instead.")
    if continue_training and recipe.method.name == "full":
        raise CorrectionError("A full fine-tune has no adapter to continue from; train again from scratch.")
    if continue_training and runs.final_weights(run_dir) is None:
        raise CorrectionError(f"Run {run_dir.name} has no finished adapter to continue from; train again from "
                              "scratch.")
    data = revise(run_dir)
    recipe.method.init_adapter = str(run_dir) if continue_training else ""
    return recipe, data
