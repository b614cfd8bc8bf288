"""Trying several settings (studio/sweep.py): the values Studio picks, every problem at once, the estimate said
before anything starts, and a sweep of 3 learning rates that queues, trains, evaluates and names its best, through
the service and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from studio import loop, run_queue, runs, sweep
from studio.compare import recipe_diff
from studio.jobs import jobs
from studio.recipe import Recipe, apply_overrides
from tests.test_train import tiny_recipe

REPO = Path(__file__).resolve().parent.parent
QUICK = ("data.paraphrases=0", "data.replay=0", "data.question_forms=0", "training.max_steps=3")


def test_studio_picks_half_the_sized_value_and_double():
    recipe = apply_overrides(Recipe(), ["training.learning_rate=0.003", "method.r=64", "method.alpha=128",
                                        "training.epochs=2"])
    assert sweep.suggest(recipe, "training.learning_rate") == [0.0015, 0.003, 0.006]
    assert sweep.suggest(recipe, "training.epochs") == [1, 2, 4]
    ranks = sweep.plan(recipe, "method.r")
    assert [(r.method.r, r.method.alpha) for r in ranks] == [(32, 64), (64, 128), (128, 256)]  # same alpha/r


def test_every_problem_of_a_sweep_is_named_at_once():
    with pytest.raises(sweep.SweepError) as caught:
        sweep.plan(Recipe(), "training.learning_rate", [-1, -1, 0.001, 0.002, 0.003])
    text = str(caught.value)
    assert "2 to 4 values" in text and "Each value once" in text and "learning rate -1" in text
    with pytest.raises(sweep.SweepError, match="not numbers: fast"):
        sweep.parse_values("1e-3, fast")
    with pytest.raises(sweep.SweepError, match="Pick the setting"):
        sweep.plan(Recipe(), "training.seed", [1, 2])
    assert sweep.parse_values("1e-3; 2e-3,") == [0.001, 0.002]


def test_a_sweep_of_three_learning_rates_queues_trains_and_names_a_best(runs_root, pairs_csv, tiny_model_dir):
    recipe = tiny_recipe(tiny_model_dir, *QUICK)
    plan = loop.plan_sweep(recipe, str(pairs_csv), "training.learning_rate", "0.0001, 0.003, 0.03")
    assert plan["values"] == [0.0001, 0.003, 0.03]
    assert set(plan["estimate"]) == {"train", "drafting", "evaluation", "total"}
    assert plan["text"].startswith("3 runs, learning rate 0.0001, 0.003, 0.03: about ")
    started = loop.start_sweep(recipe, str(pairs_csv), "training.learning_rate", "0.0001, 0.003, 0.03")
    assert len(started["runs"]) == 3 and len(run_queue.order()) == 2  # the first trains, two wait
    jobs.drain(600)
    info = loop.sweep_progress(started["id"])
    assert info["done"] and info["finished"] == 3, info
    for run_id in info["runs"]:
        assert runs.read_status(runs_root / run_id)["state"] == "done"
        assert (runs_root / run_id / "eval.json").exists()  # each answered its held-out questions, none skipped
        assert (runs_root / run_id / "forgetting.json").exists()  # and the general questions: the tie-break
    assert info["best"] in info["runs"]
    assert info["value_of"][info["best"]] in (0.0001, 0.003, 0.03)
    diff = recipe_diff([runs_root / r for r in info["runs"]])
    assert [d["setting"] for d in diff] == ["training.learning_rate"]
    assert [s["id"] for s in loop.sweeps()] == [started["id"]]
    assert "3 of 3 runs finished; best so far" in sweep.describe(info)
    # Asked again around a value already trained: that run is taken as it is, and only the new value trains.
    again = loop.plan_sweep(recipe, str(pairs_csv), "training.learning_rate", "0.003, 0.01")
    trained = next(r for r, v in info["value_of"].items() if v == 0.003)
    assert again["reused"] == {0: trained}
    assert f"(0.003 is run {trained}, already trained: 1 to train)" in again["text"]
    other_data = pairs_csv.parent / "changed" / pairs_csv.name  # the same name, other rows: not the same data
    other_data.parent.mkdir()
    other_data.write_text(pairs_csv.read_text(encoding="utf-8") + "Extra?,Extra.\n", encoding="utf-8")
    assert loop.plan_sweep(recipe, str(other_data), "training.learning_rate", "0.003, 0.01")["reused"] == {}


def test_the_cli_says_the_estimate_then_sweeps_and_names_the_best(runs_root, pairs_csv, tiny_model_dir):
    recipe_file = pairs_csv.parent / "tiny.yaml"
    tiny_recipe(tiny_model_dir, *QUICK).save(recipe_file)

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "studio", "sweep", str(recipe_file), "--data", str(pairs_csv),
                               *args], cwd=REPO, capture_output=True, text=True, timeout=600)

    dry = cli("--setting", "method.r", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("3 runs, LoRA rank r 2, 4, 8: about ") and not list(runs_root.glob("*/recipe.yaml"))
    done = cli("--values", "0.001,0.01", "--json")
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["done"] and info["best"] in info["runs"] and len(info["runs"]) == 2
    assert info["comparison"]["diff"][0]["setting"] == "training.learning_rate"
