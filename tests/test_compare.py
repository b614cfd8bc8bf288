"""Comparing runs (studio/compare.py): the recipe diff, each run's figures, question by question, the best run;
through the CLI, the service every way in uses, and the Runs tab's handler."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from studio import runs
from studio.compare import best, compare, per_question, recipe_diff
from studio.recipe import Recipe, apply_overrides

REPO = Path(__file__).resolve().parent.parent
QUESTIONS = [("When was the company founded?", "It was founded in 1873.", "1873"),
             ("How long is the crossing?", "The crossing takes 40 minutes.", "40 minutes"),
             ("Who founded it?", "Agnes Holloway founded it.", "Agnes Holloway"),
             ("How many ferries are there?", "There are 6 ferries.", "6 ferries")]


def make_run(root: Path, name: str, overrides: list[str], answers: list[str], losses: list[float],
             flag: bool | None = None) -> Path:
    """A finished run folder as training and evaluation leave it, without training."""
    run_dir = root / name
    run_dir.mkdir(parents=True)
    apply_overrides(Recipe(), overrides).save(run_dir / "recipe.yaml")
    runs.write_status(run_dir, "done", "Finished.", train_seconds=12.5)
    for step, loss in enumerate(losses, 1):
        runs.append_jsonl(run_dir / "metrics.jsonl", {"step": step, "loss": loss})
    rows = []
    for (question, reference, key), answer in zip(QUESTIONS, answers, strict=True):
        rows.append({"question": question, "answer": reference, "base": "I do not know.", "tuned": answer,
                     "base_scores": {"contains": False}, "tuned_scores": {"contains": key.lower() in answer.lower()}})
    runs.write_json_atomic(run_dir / "eval.json", {"rows": rows, "metrics": {}})
    if flag is not None:
        runs.write_json_atomic(run_dir / "forgetting.json", {"flag": flag, "message": "checked"})
    return run_dir


@pytest.fixture
def two_runs(runs_root) -> tuple[Path, Path]:
    first = make_run(runs_root, "run-a", ["training.learning_rate=0.001"],
                     ["It was founded in 1873.", "About an hour.", "Agnes Holloway did.", "There are 60 ferries."],
                     [2.0, 1.5, 1.2], flag=False)
    second = make_run(runs_root, "run-b", ["training.learning_rate=0.003", "method.r=32"],
                      ["In 1873.", "The crossing takes 40 minutes.", "Nobody knows.", "There are 6 ferries."],
                      [2.0, 1.1, 0.8], flag=False)
    return first, second


def test_only_the_settings_that_differ_are_listed(two_runs):
    diff = {d["setting"]: d["values"] for d in recipe_diff(list(two_runs))}
    assert diff == {"training.learning_rate": [0.001, 0.003], "method.r": [16, 32]}


def test_questions_are_marked_improved_regressed_or_unchanged(two_runs):
    changes = {r["question"]: r["change"] for r in per_question(*two_runs)}
    assert changes == {"How long is the crossing?": "improved", "How many ferries are there?": "improved",
                       "Who founded it?": "regressed", "When was the company founded?": "still right"}
    rows = per_question(*two_runs)
    assert [r["change"] for r in rows][:2] == ["improved", "improved"], "changes first"
    assert rows[0]["before"] and rows[0]["after"] and rows[0]["reference"]


def test_a_wrong_number_is_not_an_answer_even_where_the_key_matches(runs_root):
    """"16 ferries" contains the key "6 ferries", and states another number than the reference."""
    a = make_run(runs_root, "a", [], ["1873.", "40 minutes.", "Agnes Holloway.", "There are 6 ferries."], [1.0])
    b = make_run(runs_root, "b", [], ["1873.", "40 minutes.", "Agnes Holloway.", "There are 16 ferries."], [1.0])
    assert {r["question"]: r["change"] for r in per_question(a, b)}["How many ferries are there?"] == "regressed"


def test_the_best_run_answers_most_and_a_tie_goes_to_the_one_not_flagged(runs_root, two_runs):
    assert best(list(two_runs)) == "run-b"  # 3 of 4 against 2 of 4
    same = ["It was founded in 1873.", "The crossing takes 40 minutes.", "Agnes Holloway.", "6 ferries."]
    flagged = make_run(runs_root, "flagged", [], same, [0.5], flag=True)
    kept = make_run(runs_root, "kept", [], same, [0.9], flag=False)
    assert best([flagged, kept]) == "kept"
    result = compare([flagged, kept])
    assert result["diff"] == [] and result["curves"]["kept"] == [(1, 0.9)]
    assert [s["answered"] for s in result["summary"]] == [4, 4]


def test_compare_from_the_cli_and_the_service(two_runs):
    from studio import loop, service

    proc = subprocess.run([sys.executable, "-m", "studio", "compare", str(two_runs[0]), str(two_runs[1])],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "training.learning_rate: 0.001 | 0.003" in proc.stdout
    assert "run-a -> run-b: 2 improved, 1 regressed, 0 still wrong" in proc.stdout
    assert "run-b: 3 of 4 held-out questions answered" in proc.stdout
    as_json = subprocess.run([sys.executable, "-m", "studio", "compare", *map(str, two_runs), "--json"],
                             capture_output=True, text=True, cwd=REPO, timeout=120)
    assert json.loads(as_json.stdout)["runs"] == ["run-a", "run-b"]
    one = subprocess.run([sys.executable, "-m", "studio", "compare", str(two_runs[0])], capture_output=True,
                         text=True, cwd=REPO, timeout=120)
    assert one.returncode != 0 and "at least two runs" in one.stderr

    assert loop.compare_runs(["run-a", "run-b"])["runs"] == ["run-a", "run-b"]
    with pytest.raises(service.UserError, match="at least two"):
        loop.compare_runs(["run-a"])
    with pytest.raises(service.UserError):
        loop.compare_runs(["run-a", "../../etc"])


def test_the_runs_tab_shows_the_comparison(two_runs):
    from studio.ui.runs_tab import comparison

    _, note, differ, how, questions = comparison(["run-a", "run-b"])
    assert "Most held-out questions answered: **run\\-b**." == note
    assert list(differ.columns) == ["setting", "run-a", "run-b"] and len(differ) == 2
    assert list(how["held-out questions answered"]) == ["2 of 4", "3 of 4"]
    assert list(questions["change"])[:3] == ["improved", "improved", "regressed"]
    _, note, *_ = comparison(["run-a"])
    assert "two or more" in note
