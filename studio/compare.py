"""Two or more runs side by side: which settings differ, how each did, and question by question what changed.

The expert's loop is train, read the answers, change something, train again; this says what the change did. It
reads only the run folders (recipe.yaml, status.json, metrics.jsonl, eval.json, forgetting.json), so it works on
runs from before a restart, from the CLI (`python -m studio compare A B`) and from the scripting API alike.

A question counts as answered when its tuned answer contains the reference's fact (the `contains` score the
evaluation table shows); one whose tuned answer states another number or code than the reference is wrong
whatever else it says. Runs are matched question by question on their held-out evaluation (`eval.json`); the
questions an expert marked wrong in the first run count as unanswered there, with the correction as the reference,
and a run trained on the corrections answers them after training, so the comparison says whether each took.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from studio import runs
from studio.corrections import latest
from studio.evaluate import value_mismatch
from studio.recipe import load as load_recipe

# Bookkeeping, not settings a person chose (data.path stays: a run on a revision of the data differs by it).
_NOT_SETTINGS = {"output_dir", "run_name"}


def settings(run_dir: Path) -> dict[str, object]:
    """The run's recipe as dotted setting names ("training.learning_rate") to values."""
    return flat_settings(load_recipe(Path(run_dir) / "recipe.yaml"))


def flat_settings(recipe) -> dict[str, object]:
    """A recipe as dotted setting names to values, without the bookkeeping that differs between any two runs."""
    flat: dict[str, object] = {}

    def walk(prefix: str, value) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else key, inner)
        else:
            flat[prefix] = value

    walk("", asdict(recipe))
    return {k: v for k, v in flat.items() if k not in _NOT_SETTINGS}


def recipe_diff(run_dirs: list[Path]) -> list[dict]:
    """Only the settings that differ between the runs: [{"setting", "values": [one per run]}]."""
    all_settings = [settings(d) for d in run_dirs]
    names = sorted(set().union(*all_settings))
    return [{"setting": name, "values": [s.get(name) for s in all_settings]} for name in names
            if len({json.dumps(s.get(name), sort_keys=True, default=str) for s in all_settings}) > 1]


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def latest_marks(run_dir: Path) -> list[dict]:
    """The expert's wrong marks of the run's answers, each with its correction."""
    return [m for m in latest(Path(run_dir)).values() if m["verdict"] == "wrong"]


def answered(row: dict) -> bool | None:
    """Whether the tuned answer holds the reference's fact (None where the row has no reference to check)."""
    contains = row.get("tuned_scores", {}).get("contains")
    if contains is None:
        return None
    return bool(contains) and value_mismatch(row.get("tuned", ""), row.get("answer", "")) is None


def summary(run_dir: Path) -> dict:
    """One run's figures: its loss, its held-out questions answered, the forgetting check, its time."""
    run_dir = Path(run_dir)
    info = runs.summarize(run_dir)
    report = _read_json(run_dir / "eval.json")
    checked = [a for a in (answered(r) for r in report.get("rows", [])) if a is not None]
    forgetting = _read_json(run_dir / "forgetting.json")
    judged = _read_json(run_dir / "judge.json").get("counts") or {}
    return {"run_id": info["run_id"], "state": info["state"], "final_loss": info["final_loss"],
            "eval_loss": info["eval_loss"], "seconds": info["seconds"],
            "answered": sum(checked) if checked else None, "questions": len(checked) if checked else None,
            "forgetting_flag": forgetting.get("flag"), "forgetting": forgetting.get("message"),
            # The optional judge's grades (studio.judge), beside the exact-fact check, never in its place.
            "judged_correct": judged.get("correct"), "judged": sum(judged.values()) if judged else None}


def per_question(run_a: Path, run_b: Path) -> list[dict]:
    """The held-out questions both runs were evaluated on, each marked improved, regressed, still wrong or still
    right from run A to run B, with both answers: the questions corrected in A first, then the changes."""
    rows_a = {r["question"]: r for r in _read_json(Path(run_a) / "eval.json").get("rows", [])}
    for mark in latest_marks(run_a):  # what the expert marked wrong in A: A's answer, the correction as reference
        rows_a[mark["question"]] = {"question": mark["question"], "answer": mark["correction"],
                                    "tuned": mark["answer"], "tuned_scores": {"contains": False}, "corrected": True}
    out = []
    for row_b in _read_json(Path(run_b) / "eval.json").get("rows", []):
        row_a = rows_a.get(row_b["question"])
        if row_a is None:
            continue
        was, now = answered(row_a), answered(row_b)
        if was is None or now is None:
            change = "not checked"
        else:
            change = {(False, True): "improved", (True, False): "regressed", (False, False): "still wrong",
                      (True, True): "still right"}[was, now]
        out.append({"question": row_b["question"], "reference": row_b.get("answer", ""), "change": change,
                    "before": row_a.get("tuned", ""), "after": row_b.get("tuned", ""),
                    "corrected": bool(row_a.get("corrected"))})
    order = {"improved": 0, "regressed": 1, "still wrong": 2, "still right": 3, "not checked": 4}
    return sorted(out, key=lambda r: (not r["corrected"], order[r["change"]]))


def compare(run_dirs: list[Path]) -> dict:
    """Everything a comparison shows, as plain data: the recipe diff, each run's figures, the best run (`best`),
    the loss curves (step, loss) and, between the first run and each later one, the questions that changed."""
    if len(run_dirs) < 2:
        raise ValueError("Pick at least two runs to compare.")
    run_dirs = [Path(d) for d in run_dirs]
    for d in run_dirs:
        if not (d / "recipe.yaml").exists():
            raise ValueError(f"{d.name} is not a run folder (it has no recipe.yaml).")
    curves = {d.name: [(m["step"], m["loss"]) for m in runs.read_metrics(d) if m.get("loss") is not None]
              for d in run_dirs}
    changes = {d.name: per_question(run_dirs[0], d) for d in run_dirs[1:]}
    summaries = [summary(d) for d in run_dirs]
    return {"runs": [d.name for d in run_dirs], "diff": recipe_diff(run_dirs), "summary": summaries,
            "best": _best(summaries), "curves": curves, "questions": changes}


def best(run_dirs: list[Path]) -> str | None:
    """The run that answered most held-out questions; a tie goes to the one the forgetting check did not flag,
    then to the lower held-out loss. None when no run has been evaluated."""
    return _best([summary(d) for d in run_dirs])


def _best(summaries: list[dict]) -> str | None:
    scored = [s for s in summaries if s["answered"] is not None]
    if not scored:
        return None
    return max(scored, key=lambda s: (s["answered"] / s["questions"], not s["forgetting_flag"],
                                      -(s["eval_loss"] if s["eval_loss"] is not None else float("inf"))))["run_id"]


def describe(result: dict) -> str:
    """The comparison as plain text, for the CLI."""
    lines = ["Settings that differ:" if result["diff"] else "The recipes are the same."]
    for item in result["diff"]:
        lines.append(f"  {item['setting']}: " + " | ".join(str(v) for v in item["values"]))
    lines.append("")
    for s in result["summary"]:
        answered_text = (f"{s['answered']} of {s['questions']} held-out questions answered"
                         if s["answered"] is not None else "not evaluated")
        loss = f"loss {s['final_loss']}" if s["final_loss"] is not None else "no loss yet"
        flag = "; the forgetting check flagged it" if s["forgetting_flag"] else ""
        lines.append(f"{s['run_id']}: {answered_text}; {loss}; {s['seconds']} s{flag}")
    for run_id, rows in result["questions"].items():
        counts = {c: sum(r["change"] == c for r in rows) for c in ("improved", "regressed", "still wrong")}
        lines.append(f"\n{result['runs'][0]} -> {run_id}: {counts['improved']} improved, {counts['regressed']} "
                     f"regressed, {counts['still wrong']} still wrong")
        for r in rows:
            if r["change"] in ("improved", "regressed"):
                lines.append(f"  {r['change']}: {r['question']}\n    before: {r['before']}\n    after: {r['after']}")
    return "\n".join(lines)
